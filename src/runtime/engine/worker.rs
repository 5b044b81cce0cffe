//! The engine's worker: one OS thread that drains the job queue and runs models and actions.
//!
//! Why a thread of its own: the LOT evaluator is synchronous (CALL ACTION recurses, KEEP TOPIC
//! commits to storage with an fsync, GET ENV reads storage), so running it on tokio's async
//! workers could stall connections. Here a slow action delays only the jobs behind it. Why one:
//! jobs run in the order their messages were published, which ON CHANGE (compare with the
//! previous payload of the topic) and models (the last values they read) rely on.
//!
//! Decisions: ON CHANGE compares with the previous payload the worker saw on that same topic (per
//! topic, not per action); the first message seen on a topic since the hub started counts as a
//! change. A model's output and an action's publishes carry the run's chain, so the definitions
//! they trigger are refused when already in it (silently: that is loop protection) or when the
//! chain is full (reported on the refused definition's Error topic).
//!
//! Must not touch: the trigger index (jobs arrive with their targets already matched).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use ahash::AHashMap;
use bytes::Bytes;

use crate::lot::ast::{Action, Model};
use crate::lot::eval::{self, Outputs, RuntimeError};
use crate::lot::value::Value;

use super::Shared;
use super::context::{Chain, HubContext, Link, Refused};
use super::program::{Program, Target};

/// Work for the worker.
pub(crate) enum Job {
    /// A PUBLISH matched these targets of `program`.
    Message {
        topic: Arc<str>,
        payload: Bytes,
        targets: Vec<u32>,
        program: Arc<Program>,
        chain: Option<Arc<Chain>>,
    },
    /// A timer tick or ON START of the action `name` deployed with `source` (skipped when the
    /// action has been replaced or removed since the job was queued).
    Run {
        name: String,
        source: Arc<str>,
    },
    /// A client connected (or disconnected): run these ON CONNECT (ON DISCONNECT) actions.
    Client {
        actions: Vec<Arc<Action>>,
        program: Arc<Program>,
        client_id: Arc<str>,
        user: Option<Arc<str>>,
    },
    Stop,
}

/// Who started an action run, for [`execute`].
pub(crate) struct Start<'a> {
    pub trigger: Option<(&'a str, &'a Bytes)>,
    pub client: Option<(&'a str, Option<&'a str>)>,
    pub chain: Arc<Chain>,
    pub inputs: Vec<(String, Value)>,
    /// Collect what the action publishes (for `-runAction`).
    pub record: bool,
}

/// Drains `jobs` until [`Job::Stop`] or the engine's cancellation.
pub(crate) fn run(shared: Arc<Shared>, jobs: Receiver<Job>) {
    // Payload of the previous message per topic, for ON CHANGE (only topics an ON CHANGE filter
    // matches get here).
    let mut previous: AHashMap<Arc<str>, Bytes> = AHashMap::new();
    loop {
        if shared.cancel.is_cancelled() {
            return;
        }
        match jobs.recv_timeout(Duration::from_millis(200)) {
            Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(job) => process(&shared, job, &mut previous),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn process(shared: &Shared, job: Job, previous: &mut AHashMap<Arc<str>, Bytes>) {
    match job {
        Job::Message {
            topic,
            payload,
            targets,
            program,
            chain,
        } => {
            let watches_change = targets
                .iter()
                .any(|&i| matches!(program.targets[i as usize], Target::Change(_)));
            let changed = watches_change && {
                let copy = Bytes::copy_from_slice(&payload);
                previous.insert(topic.clone(), copy).as_ref() != Some(&payload)
            };
            for i in targets {
                match &program.targets[i as usize] {
                    Target::Model(m) => run_model(shared, &program, m, &topic, &payload, &chain),
                    Target::Topic(a) => triggered(shared, &program, a, &topic, &payload, &chain),
                    Target::Change(a) if changed => {
                        triggered(shared, &program, a, &topic, &payload, &chain)
                    }
                    Target::Change(_) => {}
                }
            }
        }
        Job::Run { name, source } => {
            let program = shared.program.read().clone();
            let current = program.action_sources.get(&name);
            let (Some(action), true) = (
                program.actions.get(&name),
                current.is_some_and(|s| *s == source),
            ) else {
                return;
            };
            let start = Start {
                trigger: None,
                client: None,
                chain: Chain::start(Link::Action(Arc::from(name.as_str()))),
                inputs: Vec::new(),
                record: false,
            };
            let _ = execute(shared, &program, action, start);
        }
        Job::Client {
            actions,
            program,
            client_id,
            user,
        } => {
            for action in &actions {
                let start = Start {
                    trigger: None,
                    client: Some((&client_id, user.as_deref())),
                    chain: Chain::start(Link::Action(Arc::from(action.name.value.as_str()))),
                    inputs: Vec::new(),
                    record: false,
                };
                let _ = execute(shared, &program, action, start);
            }
        }
        Job::Stop => {}
    }
}

/// An ON TOPIC / ON CHANGE action started by a message of `parent` (None: from a client).
fn triggered(
    shared: &Shared,
    program: &Program,
    action: &Arc<Action>,
    topic: &str,
    payload: &Bytes,
    parent: &Option<Arc<Chain>>,
) {
    let name = action.name.value.as_str();
    let chain = match Chain::extend(parent.as_ref(), Link::Action(Arc::from(name))) {
        Ok(c) => c,
        Err(refused) => return refused_run(shared, "Actions", name, refused, parent),
    };
    let start = Start {
        trigger: Some((topic, payload)),
        client: None,
        chain,
        inputs: Vec::new(),
        record: false,
    };
    let _ = execute(shared, program, action, start);
}

/// A definition a chain did not start: a loop is silent (that is the protection working), a
/// chain cut at the depth cap is reported on the definition's Error topic (spec §4).
fn refused_run(
    shared: &Shared,
    kind: &str,
    name: &str,
    refused: Refused,
    parent: &Option<Arc<Chain>>,
) {
    let Some(parent) = parent else { return };
    if refused == Refused::TooDeep {
        let line = format!(
            "{name}: action chain cut at depth {}: {} -> {name}",
            crate::lot::context::MAX_CHAIN_DEPTH,
            parent.describe()
        );
        shared.report(kind, name, &line, parent);
    }
}

/// Runs `action`; a run-time error is reported on `$SYS/Coreflux/Actions/<Name>/Error` and
/// returned. Returns the outputs and, when `start.record`, what the action published.
pub(crate) fn execute(
    shared: &Shared,
    program: &Program,
    action: &Action,
    start: Start<'_>,
) -> Result<(Outputs, Vec<(String, Bytes)>), RuntimeError> {
    let mut ctx = HubContext::new(shared, program, start.chain.clone());
    if let Some((topic, payload)) = start.trigger {
        ctx = ctx.trigger(topic, payload);
    }
    if let Some((client_id, user)) = start.client {
        ctx.client_id = Some(client_id);
        ctx.user = user;
    }
    if start.record {
        ctx.published = Some(Vec::new());
    }
    let result = eval::run_action(action, &mut ctx, &start.inputs);
    let published = ctx.published.take().unwrap_or_default();
    match result {
        Ok(outputs) => Ok((outputs, published)),
        Err(e) => {
            let name = action.name.value.as_str();
            shared.report("Actions", name, &e.to_string(), &start.chain);
            Err(e)
        }
    }
}

/// Evaluates `model` for one trigger message and publishes its JSON; each field that failed
/// gives a line on `$SYS/Coreflux/Models/<Name>/Error`.
fn run_model(
    shared: &Shared,
    program: &Program,
    model: &Arc<Model>,
    topic: &str,
    payload: &Bytes,
    parent: &Option<Arc<Chain>>,
) {
    let name = model.name.value.as_str();
    let chain = match Chain::extend(parent.as_ref(), Link::Model(Arc::from(name))) {
        Ok(c) => c,
        Err(refused) => return refused_run(shared, "Models", name, refused, parent),
    };
    let mut ctx = HubContext::new(shared, program, chain.clone()).trigger(topic, payload);
    let out = eval::eval_model(model, &mut ctx);
    for e in &out.errors {
        shared.report("Models", name, &e.to_string(), &chain);
    }
    if let Some(t) = &out.topic {
        let payload = Bytes::from(out.payload());
        shared.publish(t, payload, out.qos, out.retain, &chain);
    }
}
