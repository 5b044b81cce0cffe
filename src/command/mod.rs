//! # command: `$SYS/Coreflux/Command`, the hub's management interface over MQTT
//!
//! Owns the command text ([`parse`]), the verb table ([`verb`]), one file per family of verbs
//! (each with its parse / apply / reply), the JSON replies ([`reply`]) and the worker that runs
//! commands in arrival order. Must not touch: storage behind the runtime's back (every change
//! goes through [`Runtime`], which commits it before returning), the broker's internals (it
//! publishes replies through [`Broker::publish`]), LOT compilation details.
//!
//! # Layout
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Commands`]: the sink the runtime forwards command PUBLISHes to, the worker, replies out |
//! | [`parse`] | payload text -> [`Request`] (verb, arguments, `-requestId`), pure |
//! | [`verb`] | [`Verb`]: every verb, its name and its management scope |
//! | [`reply`] | [`Reply`]: the JSON answer |
//! | `user.rs` | `-addUser` ... `-listUsers` |
//! | `definition.rs` | `-add<Kind>`, `-remove<Kind>`, `-removeAll<Kind>s`, `-restoreRules`, `-lot`, `-list`, `-listRoutes` |
//! | `setting.rs` | env and secrets |
//! | `backup.rs` | `-backup`, `-restore` |
//! | `status.rs`, `run_action.rs` | `-status`, `-runAction` |
//!
//! Start reading at [`Commands::start`], then `run_one`.
//!
//! # Flow of one command
//! A client PUBLISHes to `$SYS/Coreflux/Command`. The broker lets it through only because the
//! topic is listed in `BrokerSettings::client_sys_publish_topics` ([`CLIENT_SYS_TOPICS`]) *and*
//! the runtime's `authorize_publish` allows the `CommandCall` scope; a refused client gets
//! PUBACK/PUBREC 0x87 (MQTT 5) and never a reply. The runtime's `on_publish` hands the accepted
//! PUBLISH to [`Commands`] (a [`CommandSink`]), which copies it into a bounded queue and returns
//! at once: the broker's async worker never waits for a password hash or a redb commit. One
//! task takes commands off the queue in arrival order and runs each on the blocking pool; the
//! reply goes to `$SYS/Coreflux/Command/Output` and, for an MQTT 5 request with a Response
//! Topic, to that topic with the request's Correlation Data.

pub mod parse;
pub mod reply;
pub mod verb;

mod backup;
mod definition;
mod run_action;
mod setting;
mod status;
mod user;

pub use parse::Request;
pub use reply::{ErrorItem, Reply};
pub use verb::Verb;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::broker::hooks::PublishObservation;
use crate::broker::{Broker, ClientInfo};
use crate::protocol::packet::{Properties, Publish, QoS};
use crate::runtime::{COMMAND_TOPIC, CONFIG_NEW_TOPIC, CommandSink, Runtime};

/// Where replies are published (not retained).
pub const OUTPUT_TOPIC: &str = "$SYS/Coreflux/Command/Output";
/// The `$SYS` topics clients may publish to (subject to the rules): put them in
/// `BrokerSettings::client_sys_publish_topics` when the runtime runs.
pub const CLIENT_SYS_TOPICS: [&str; 2] = [COMMAND_TOPIC, CONFIG_NEW_TOPIC];
/// Commands waiting to run; beyond this a command is dropped with a WARN (a client flooding the
/// command topic must not grow the hub's memory without bound).
const QUEUE: usize = 1024;

/// One command as received: what the worker needs after the PUBLISH is gone.
struct Job {
    client: ClientInfo,
    payload: Bytes,
    /// MQTT 5 Response Topic, when the request has a usable one.
    response_topic: Option<String>,
    correlation_data: Option<Bytes>,
}

/// What one verb's `apply` hands back: the reply for everyone, and optionally a `data` that
/// only the requester's Response Topic may see (`-backup`).
pub(crate) struct Outcome {
    pub reply: Reply,
    pub private_data: Option<Value>,
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome {
            reply,
            private_data: None,
        }
    }
}

/// What a verb's `apply` sees of the request.
pub(crate) struct Call<'a> {
    pub runtime: &'a Runtime,
    pub client: &'a ClientInfo,
    pub request: &'a Request,
    /// The reply's `command` (`AddRule`).
    pub command: String,
    /// Whether the request carries an MQTT 5 Response Topic.
    pub has_response_topic: bool,
}

/// The command service: the [`CommandSink`] installed in the runtime. Cheap to clone.
#[derive(Clone)]
pub struct Commands {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    /// Starts the worker (inside a tokio runtime) and installs the service as the runtime's
    /// command sink. Call after [`Runtime::attach`]: replies are published through that broker
    /// and the worker stops when it shuts down.
    pub fn start(runtime: &Runtime) -> Commands {
        let (queue, rx) = mpsc::channel(QUEUE);
        let commands = Commands { queue };
        tokio::spawn(worker(runtime.clone(), rx));
        runtime.set_command_sink(Arc::new(commands.clone()));
        commands
    }

    /// Queues one command PUBLISH (the runtime's `on_publish` calls this for the command
    /// topic). Never blocks.
    pub fn handle(&self, client: &ClientInfo, publish: &PublishObservation<'_>) {
        let props = publish.properties;
        // A Response Topic must be a plain topic name; `$`-topics are the hub's own and a reply
        // must not be able to impersonate one.
        let response_topic = props
            .response_topic
            .clone()
            .filter(|t| !t.is_empty() && !t.starts_with('$') && !t.contains(['+', '#']));
        let job = Job {
            client: client.clone(),
            payload: Bytes::copy_from_slice(publish.payload),
            response_topic,
            correlation_data: props.correlation_data.clone(),
        };
        if let Err(e) = self.queue.try_send(job) {
            let dropped = match &e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            tracing::warn!(client_id = %dropped.client.client_id, "command dropped: the command queue is full or stopped");
        }
    }
}

impl CommandSink for Commands {
    fn on_command(&self, client: &ClientInfo, publish: &PublishObservation<'_>) {
        self.handle(client, publish);
    }
}

/// Runs queued commands one after the other until the hub shuts down.
async fn worker(runtime: Runtime, mut rx: mpsc::Receiver<Job>) {
    let shutdown = runtime.broker().map(Broker::shutdown_token);
    loop {
        let job = match &shutdown {
            Some(token) => tokio::select! {
                _ = token.cancelled() => return,
                job = rx.recv() => job,
            },
            None => rx.recv().await,
        };
        let Some(job) = job else { return };
        let outcome = run_one(&runtime, &job).await;
        send_reply(&runtime, &job, outcome);
    }
}

/// Parses, checks and applies one command.
async fn run_one(runtime: &Runtime, job: &Job) -> Outcome {
    let request = match Request::parse(&job.payload) {
        Ok(r) => r,
        Err(e) => return Reply::fail("Unknown", e.to_string()).into(),
    };
    let command = request.command_name();
    let Some(verb) = Verb::lookup(&request.verb) else {
        let mut reply = Reply::fail(&command, format!("Unknown command: -{}", request.verb));
        reply.request_id = request.request_id.clone();
        return reply.into();
    };
    let command = parse::pascal_case(verb.name());
    let request_id = request.request_id.clone();
    let mut outcome = if let Some(scope) = verb.scope()
        && !runtime.authorize_scope(&job.client, scope)
    {
        Reply::denied(&command, verb.name()).into()
    } else if verb == Verb::RunAction {
        let call = Call {
            runtime,
            client: &job.client,
            request: &request,
            command,
            has_response_topic: job.response_topic.is_some(),
        };
        run_action::apply(&call).await
    } else {
        // Password hashing and redb commits block: off the async workers, one at a time.
        let runtime = runtime.clone();
        let client = job.client.clone();
        let has_response_topic = job.response_topic.is_some();
        let cmd = command.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let call = Call {
                runtime: &runtime,
                client: &client,
                request: &request,
                command: cmd,
                has_response_topic,
            };
            apply_blocking(verb, &call)
        })
        .await;
        match joined {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, command = %command, "command panicked");
                Reply::fail(&command, "internal error while running the command").into()
            }
        }
    };
    outcome.reply.request_id = request_id;
    outcome
}

/// Every verb but `-runAction` (which is async).
fn apply_blocking(verb: Verb, call: &Call<'_>) -> Outcome {
    match verb {
        Verb::AddUser
        | Verb::RemoveUser
        | Verb::ChangeUserPassword
        | Verb::ChangeUserSettings
        | Verb::AddUserToGroup
        | Verb::RemoveUserFromGroup
        | Verb::ListUsers => user::apply(verb, call).into(),
        Verb::Add(_)
        | Verb::Remove(_)
        | Verb::RemoveAll(_)
        | Verb::RestoreRules
        | Verb::ListRoutes
        | Verb::Lot
        | Verb::List => definition::apply(verb, call).into(),
        Verb::SetEnv
        | Verb::RemoveEnv
        | Verb::ListEnv
        | Verb::SetSecret
        | Verb::RemoveSecret
        | Verb::ListSecrets => setting::apply(verb, call).into(),
        Verb::Backup | Verb::Restore => backup::apply(verb, call),
        Verb::Status => status::apply(call).into(),
        Verb::RunAction => Reply::fail(&call.command, "-runAction runs asynchronously").into(),
    }
}

/// Publishes the reply on the output topic and, for MQTT 5 requests with a Response Topic,
/// to that topic with the request's Correlation Data (MQTT 5 §4.10).
fn send_reply(runtime: &Runtime, job: &Job, outcome: Outcome) {
    let Some(broker) = runtime.broker() else {
        tracing::warn!("command reply not sent: the runtime has no broker attached");
        return;
    };
    let Outcome {
        mut reply,
        private_data,
    } = outcome;
    tracing::info!(
        client_id = %job.client.client_id,
        user = job.client.username.as_deref().unwrap_or(""),
        command = %reply.command,
        success = reply.success,
        "command"
    );
    publish_json(broker, OUTPUT_TOPIC, reply.to_json(), None);
    if let Some(topic) = &job.response_topic {
        if private_data.is_some() {
            reply.data = private_data;
        }
        publish_json(broker, topic, reply.to_json(), job.correlation_data.clone());
    }
}

fn publish_json(broker: &Broker, topic: &str, payload: Vec<u8>, correlation: Option<Bytes>) {
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: Arc::from(topic),
        pkid: 0,
        payload: Bytes::from(payload),
        properties: Properties {
            content_type: Some("application/json".to_string()),
            payload_format_indicator: Some(1),
            correlation_data: correlation,
            ..Properties::default()
        },
    };
    if let Err(e) = broker.publish(publish) {
        tracing::warn!(topic, error = %e, "command reply not published");
    }
}
