//! # runtime::engine: MODELs and ACTIONs running in the live hub (spec §3, §4)
//!
//! Owns what happens after a PUBLISH is accepted as far as LOT is concerned: which deployed
//! models and actions it starts, the last-value store they read, the timers of scheduled actions,
//! ON START / ON CONNECT / ON DISCONNECT, `-runAction`, loop protection and the
//! `$SYS/Coreflux/Actions|Models/<Name>/Error` lines. Must not touch: authorization (rules),
//! routes, command parsing, the broker's internals (it publishes through [`Broker::publish`] like
//! any hub component, and sees PUBLISHes through the runtime's `on_publish` hook).
//!
//! # Layout
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Engine`], the cheap-clone handle, and its public API (start here) |
//! | `program.rs` | one deployment's models and actions with their trigger and readable-topic indexes |
//! | `filter_index.rs` | topic filters -> values, matched in one walk |
//! | `values.rs` | the last-value store (GET TOPIC, model TOPIC sources, KEEP TOPIC) |
//! | `worker.rs` | the worker thread that runs models and actions, in publish order |
//! | `context.rs` | the evaluator's `Context` over the hub; chains and loop protection |
//! | `schedule.rs` | ON EVERY / AT / TIMESTAMP / CRON timers |
//!
//! # The publish path
//! [`Engine::on_publish`] runs inline on the broker's async worker for every accepted PUBLISH.
//! With nothing deployed that watches topics it is one atomic load. Otherwise it takes the
//! snapshot's read lock, records the payload only if some deployed definition can read that
//! topic (see `values.rs`: the store holds readable topics, not every topic), and matches the
//! topic in the trigger index (one hash lookup per level on matching branches; a topic whose
//! first level no trigger names is dismissed at once). Only a match allocates: a job goes to a
//! bounded queue with `try_send`. When the queue is full the job is dropped, counted
//! ([`EngineStats::dropped`]) and logged (at the 1st, 2nd, 4th, 8th... drop, so a flood does
//! not flood the log): a slow or failing action never blocks a publisher.
//!
//! # Lifecycle (what the runtime wires)
//! `Engine::new(storage)` (loads KEEP TOPIC values) -> [`Engine::attach`] the broker ->
//! [`Engine::on_deployed`] with the restored snapshot -> [`Engine::start`] inside the tokio
//! runtime (worker thread, timers, ON START of every action) -> `on_deployed` on every change
//! (replaced or removed actions lose their timers; new or replaced ON START actions run) ->
//! [`Engine::shutdown`].

mod context;
mod filter_index;
mod program;
mod schedule;
mod values;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::broker::hooks::PublishObservation;
use crate::broker::{Broker, ClientInfo};
use crate::lot::Definition;
use crate::lot::ast::TriggerKind;
use crate::lot::eval::RuntimeError;
use crate::lot::value::Value;
use crate::protocol::packet::QoS;
use crate::storage::Storage;

use super::Deployed;
use context::{Chain, Link};
use program::{Hit, Program};
use values::LastValues;
use worker::{Job, Start};

/// Jobs waiting for the worker before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;

/// The engine: a cheap-clone handle (one `Arc`).
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What [`Engine::run_action`] returns: the action's OUTPUTs (RETURN order) and every message it
/// published (including those of actions it called), in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    pub outputs: Vec<(String, serde_json::Value)>,
    pub published: Vec<(String, String)>,
}

impl ActionRun {
    /// `{"outputs": {name: value...}, "published": [{"topic", "payload"}...]}` for the
    /// `-runAction` reply's `data`.
    pub fn to_json(&self) -> serde_json::Value {
        let outputs: serde_json::Map<String, serde_json::Value> =
            self.outputs.iter().cloned().collect();
        let published: Vec<serde_json::Value> = self
            .published
            .iter()
            .map(|(t, p)| serde_json::json!({"topic": t, "payload": p}))
            .collect();
        serde_json::json!({"outputs": outputs, "published": published})
    }
}

/// Why [`Engine::run_action`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown action {0}")]
    UnknownAction(String),
    #[error("inputs must be a JSON object of name: value")]
    BadInputs,
    /// The action failed; the same text went to `$SYS/Coreflux/Actions/<Name>/Error`.
    #[error("{0}")]
    Run(#[from] RuntimeError),
    #[error("the action run was interrupted")]
    Interrupted,
}

/// Counters for `-status` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Jobs dropped because the queue was full.
    pub dropped: u64,
    /// Topics in the last-value store.
    pub recorded_topics: usize,
    /// New topics not recorded because the store was full (see `values.rs`).
    pub unrecorded_topics: u64,
    /// Scheduled actions with a live timer.
    pub timers: usize,
}

/// Everything the engine's handles, worker and timers share.
pub(crate) struct Shared {
    storage: Storage,
    broker: OnceLock<Broker>,
    program: RwLock<Arc<Program>>,
    /// Whether the deployed program watches any topic: the publish path's first (and, with no
    /// LOT deployed, only) check.
    watching: AtomicBool,
    values: LastValues,
    queue: SyncSender<Job>,
    dropped: AtomicU64,
    state: Mutex<State>,
    cancel: CancellationToken,
}

/// What changes at start, deployment and shutdown.
struct State {
    jobs: Option<Receiver<Job>>,
    handle: Option<Handle>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// Scheduled action -> (source it was started for, its timer's token).
    timers: HashMap<String, (Arc<str>, CancellationToken)>,
}

impl Engine {
    /// An engine over `storage` with nothing deployed. KEEP TOPIC values are loaded from it; a
    /// storage read error is logged and the engine starts with an empty store.
    pub fn new(storage: Storage) -> Engine {
        let (queue, jobs) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared {
            storage,
            broker: OnceLock::new(),
            program: RwLock::new(Arc::new(Program::default())),
            watching: AtomicBool::new(false),
            values: LastValues::default(),
            queue,
            dropped: AtomicU64::new(0),
            state: Mutex::new(State {
                jobs: Some(jobs),
                handle: None,
                worker: None,
                timers: HashMap::new(),
            }),
            cancel: CancellationToken::new(),
        });
        if let Err(e) = shared.values.load(&shared.storage) {
            tracing::error!(error = %e, "cannot load the KEEP TOPIC values");
        }
        Engine { shared }
    }

    /// The broker the engine publishes through (model outputs, PUBLISH, Error lines). Only the
    /// first call counts.
    pub fn attach(&self, broker: Broker) {
        let _ = self.shared.broker.set(broker);
    }

    /// A new deployment: rebuilds the trigger index, restarts the timers of replaced actions,
    /// stops those of removed ones and, once started, runs new or replaced ON START actions.
    pub fn on_deployed(&self, snapshot: &Arc<Deployed>) {
        self.deploy(snapshot.models.iter().chain(snapshot.actions.iter()));
    }

    /// As [`Engine::on_deployed`], from the deployed MODEL and ACTION definitions (other kinds
    /// are ignored).
    pub fn deploy<'a>(&self, definitions: impl IntoIterator<Item = &'a Arc<Definition>>) {
        let program = Arc::new(Program::build(definitions.into_iter().map(|d| &**d)));
        let previous = std::mem::replace(&mut *self.shared.program.write(), program.clone());
        self.shared
            .watching
            .store(program.watches_topics(), Ordering::Release);
        let mut state = self.shared.state.lock();
        if state.handle.is_some() {
            self.schedule(&mut state, &program, Some(&previous));
        }
    }

    /// The publish path (see the module header): cheap, never blocks.
    pub fn on_publish(&self, obs: &PublishObservation<'_>) {
        if !self.shared.watching.load(Ordering::Acquire) {
            return;
        }
        let program = self.shared.program.read();
        let mut read = program.record_all;
        let mut targets = Vec::new();
        program.index.for_each_match(obs.topic, |hit| match hit {
            Hit::Read => read = true,
            Hit::Target(i) => targets.push(*i),
        });
        if read {
            self.shared.values.record(obs.topic, obs.payload);
        }
        if targets.is_empty() {
            return;
        }
        let job = Job::Message {
            topic: Arc::from(obs.topic),
            payload: obs.payload.clone(),
            targets,
            program: program.clone(),
            chain: context::current_chain(),
        };
        drop(program);
        self.shared.enqueue(job);
    }

    /// A client connected: queues the ON CONNECT actions.
    pub fn on_connect(&self, client: &ClientInfo) {
        self.client_event(client, true);
    }

    /// A client's connection ended: queues the ON DISCONNECT actions.
    pub fn on_disconnect(&self, client: &ClientInfo) {
        self.client_event(client, false);
    }

    fn client_event(&self, client: &ClientInfo, connect: bool) {
        let program = self.shared.program.read().clone();
        let actions = if connect {
            &program.on_connect
        } else {
            &program.on_disconnect
        };
        if actions.is_empty() {
            return;
        }
        let job = Job::Client {
            actions: actions.clone(),
            program: program.clone(),
            client_id: client.client_id.clone(),
            user: client.username.clone(),
        };
        self.shared.enqueue(job);
    }

    /// `-runAction` and tests: runs the deployed action `name` now with `inputs` (a JSON object,
    /// or null for none), off the async workers and outside the job queue (a command is answered
    /// even while the worker is busy). Its publishes go through the broker like any others.
    pub async fn run_action(
        &self,
        name: &str,
        inputs: serde_json::Value,
    ) -> Result<ActionRun, EngineError> {
        let program = self.shared.program.read().clone();
        let action = program
            .actions
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownAction(name.to_string()))?;
        let inputs: Vec<(String, Value)> = match inputs {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (k, Value::from_json(v)))
                .collect(),
            _ => return Err(EngineError::BadInputs),
        };
        let shared = self.shared.clone();
        let run = tokio::task::spawn_blocking(move || {
            let start = Start {
                trigger: None,
                client: None,
                chain: Chain::start(Link::Action(Arc::from(action.name.value.as_str()))),
                inputs,
                record: true,
            };
            worker::execute(&shared, &program, &action, start)
        });
        let (outputs, published) = run.await.map_err(|_| EngineError::Interrupted)??;
        Ok(ActionRun {
            outputs: outputs.into_iter().map(|(n, v)| (n, v.to_json())).collect(),
            published: published
                .into_iter()
                .map(|(t, p)| (t, String::from_utf8_lossy(&p).into_owned()))
                .collect(),
        })
    }

    /// Starts the worker thread and the timers, and runs every ON START action. Call once,
    /// inside the tokio runtime, after [`Engine::attach`] and the first deployment.
    pub fn start(&self) {
        let Ok(handle) = Handle::try_current() else {
            tracing::error!("Engine::start called outside the tokio runtime: LOT stays stopped");
            return;
        };
        let mut state = self.shared.state.lock();
        let Some(jobs) = state.jobs.take() else {
            return;
        };
        let shared = self.shared.clone();
        let worker_handle = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("lothub-lot".into())
            .spawn(move || {
                // Broker calls read tokio's clock: give the thread the runtime's context.
                let _guard = worker_handle.enter();
                worker::run(shared, jobs)
            });
        match spawned {
            Ok(t) => state.worker = Some(t),
            Err(e) => tracing::error!(error = %e, "cannot start the LOT worker thread"),
        }
        state.handle = Some(handle);
        let program = self.shared.program.read().clone();
        self.schedule(&mut state, &program, None);
    }

    /// Stops the timers and the worker (the job in progress finishes; queued jobs are dropped).
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let _ = self.shared.queue.try_send(Job::Stop);
        let worker = {
            let mut state = self.shared.state.lock();
            state.timers.clear();
            state.worker.take()
        };
        if let Some(worker) = worker {
            let joined = tokio::task::spawn_blocking(move || worker.join());
            if tokio::time::timeout(Duration::from_secs(5), joined)
                .await
                .is_err()
            {
                tracing::warn!(
                    "the LOT worker did not stop within 5 s (an action is still running)"
                );
            }
        }
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            recorded_topics: self.shared.values.len(),
            unrecorded_topics: self.shared.values.refused(),
            timers: self.shared.state.lock().timers.len(),
        }
    }

    /// The last value the engine holds for `topic` (what GET TOPIC would read).
    pub fn last_value(&self, topic: &str) -> Option<Bytes> {
        self.shared.last_value(topic)
    }

    /// Brings timers in line with `program`; `previous` is None at start (every ON START action
    /// runs) and the replaced program on a deployment (only new or changed ones run).
    fn schedule(&self, state: &mut State, program: &Program, previous: Option<&Program>) {
        let Some(handle) = state.handle.clone() else {
            return;
        };
        state.timers.retain(|name, (source, token)| {
            let keep = program.action_sources.get(name) == Some(source);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (name, action) in program.scheduled() {
            let source = program.action_sources[name].clone();
            let Some(trigger) = &action.trigger else {
                continue;
            };
            if matches!(trigger.kind, TriggerKind::Start) {
                let fresh = previous.is_none_or(|p| p.action_sources.get(name) != Some(&source));
                if fresh {
                    self.shared.enqueue(Job::Run {
                        name: name.clone(),
                        source,
                    });
                }
                continue;
            }
            if state.timers.contains_key(name) {
                continue;
            }
            let token = self.shared.cancel.child_token();
            let shared = Arc::downgrade(&self.shared);
            let job_name = name.clone();
            let job_source = source.clone();
            let fire = move || {
                if let Some(shared) = shared.upgrade() {
                    shared.enqueue(Job::Run {
                        name: job_name.clone(),
                        source: job_source.clone(),
                    });
                }
            };
            if schedule::spawn(&handle, &trigger.kind, token.clone(), fire) {
                state.timers.insert(name.clone(), (source, token));
            }
        }
    }
}

impl Shared {
    fn enqueue(&self, job: Job) {
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::error!(
                        dropped = n,
                        capacity = QUEUE_CAPACITY,
                        "LOT engine queue full: a model or action run was dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Spec §5 `GET TOPIC`: the last value the hub saw on `topic` (published or kept), else its
    /// retained message (which may predate every deployment, or come from the store at start).
    fn last_value(&self, topic: &str) -> Option<Bytes> {
        self.values
            .get(topic)
            .or_else(|| self.broker.get()?.retained_payload(topic))
    }

    /// Publishes through the broker with `chain` as the publishing chain (loop protection).
    fn publish(&self, topic: &str, payload: Bytes, qos: u8, retain: bool, chain: &Arc<Chain>) {
        let Some(broker) = self.broker.get() else {
            tracing::warn!(
                topic,
                "LOT publish before the engine was attached to a broker"
            );
            return;
        };
        let qos = QoS::from_u8(qos).unwrap_or_default();
        let result =
            context::with_chain(chain, || broker.publish_simple(topic, payload, qos, retain));
        if let Err(e) = result {
            tracing::warn!(topic, error = %e, "LOT publish refused");
        }
    }

    /// A run-time error line on `$SYS/Coreflux/<kind>/<name>/Error` (live, not retained) and
    /// in the log.
    fn report(&self, kind: &str, name: &str, line: &str, chain: &Arc<Chain>) {
        tracing::warn!(definition = name, error = line, "LOT run-time error");
        let topic = format!("$SYS/Coreflux/{kind}/{name}/Error");
        self.publish(&topic, Bytes::from(line.to_string()), 0, false, chain);
    }
}
