//! # lot::context: what the evaluator needs from the hub, as a trait
//!
//! The evaluator ([`super::eval`]) never touches the broker: everything it reads or does goes
//! through [`Context`] (trigger, topic store, publish sink, env and secrets, clock, random source,
//! called actions, deployed models). The runtime implements it over the live hub; [`TestContext`]
//! implements it in memory for tests (ours and the runtime's).
//!
//! Must not touch: the broker, sockets, files. Start reading at [`Context`].

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::{RngCore, SeedableRng, rngs::StdRng};

use super::ast::{Action, Model};
use super::eval::{self, EvalError, Outputs};
use super::value::Value;

/// The deepest chain of actions started by one event (spec §4): the action the event started is
/// depth 0, an action it calls (or triggers by publishing) depth 1, and so on. Calling beyond
/// this depth is refused with [`EvalError::DepthExceeded`].
pub const MAX_CHAIN_DEPTH: u32 = 16;

/// Everything an evaluation reads from or does to the hub. One value per execution (the trigger
/// belongs to it), so implementations may be cheap borrowing wrappers.
pub trait Context {
    /// The topic of the message that triggered the action or model (None for schedules, ON START,
    /// called actions).
    fn trigger_topic(&self) -> Option<&str>;
    /// The payload of that message.
    fn trigger_payload(&self) -> Option<&Bytes>;
    /// The last payload the hub saw on `topic` (published, retained or kept), for GET TOPIC and
    /// MODEL `TOPIC` sources. `topic` is a concrete topic name (wildcards already filled).
    fn get_topic(&self, topic: &str) -> Option<Bytes>;
    /// KEEP TOPIC: store without delivering.
    fn keep_topic(&mut self, topic: &str, payload: Bytes);
    /// PUBLISH TOPIC (retain false, QoS 0) and PUBLISH MODEL (the model's flags), through the
    /// normal broker path.
    fn publish(&mut self, topic: &str, payload: Bytes, retain: bool, qos: u8);
    /// GET ENV (values set with `-setEnv`).
    fn env(&self, name: &str) -> Option<String>;
    /// GET SECRET (values set with `-setSecret`).
    fn secret(&self, name: &str) -> Option<String>;
    /// The current instant, for TIMESTAMP.
    fn now(&self) -> DateTime<Utc>;
    /// The random source for RANDOM INT / DOUBLE / UUID (seedable in tests).
    fn rng(&mut self) -> &mut dyn RngCore;
    /// CLIENTID in ON CONNECT / ON DISCONNECT actions.
    fn client_id(&self) -> Option<&str>;
    /// USER in ON CONNECT / ON DISCONNECT actions (None for an anonymous client).
    fn user(&self) -> Option<&str>;
    /// How deep in an action chain this execution is (0 for the action an event started).
    fn depth(&self) -> u32;
    /// A deployed model, for PUBLISH MODEL and `FROM Parent`.
    fn model(&self, name: &str) -> Option<Arc<Model>>;
    /// CALL ACTION: the hub resolves `name`, refuses when `depth() + 1` would pass
    /// [`MAX_CHAIN_DEPTH`], runs the callee with [`eval::run_action`] at `depth() + 1` with no
    /// trigger, and returns its outputs. Wrap the callee's error with [`EvalError::Called`].
    fn call_action(
        &mut self,
        name: &str,
        inputs: Vec<(String, Value)>,
    ) -> Result<Outputs, EvalError>;
}

/// One message handed to [`Context::publish`], as recorded by [`TestContext`].
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    pub qos: u8,
}

impl Published {
    /// The payload as text (lossy), for assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// An in-memory [`Context`]: a topic store, a list of what was published, env and secrets maps,
/// a fixed clock, a seeded random source, and deployed actions and models for CALL ACTION and
/// PUBLISH MODEL. Public so the runtime's tests can use it too.
#[derive(Debug)]
pub struct TestContext {
    pub trigger_topic: Option<String>,
    pub trigger_payload: Option<Bytes>,
    /// Last payload per topic: what GET TOPIC reads and KEEP TOPIC writes.
    pub store: HashMap<String, Bytes>,
    /// Every PUBLISH, in order. Publishing also updates `store` (the hub remembers last values).
    pub published: Vec<Published>,
    pub env: HashMap<String, String>,
    pub secrets: HashMap<String, String>,
    pub now: DateTime<Utc>,
    pub rng: StdRng,
    pub client_id: Option<String>,
    pub user: Option<String>,
    pub depth: u32,
    pub actions: HashMap<String, Arc<Action>>,
    pub models: HashMap<String, Arc<Model>>,
}

impl Default for TestContext {
    fn default() -> Self {
        TestContext::new()
    }
}

impl TestContext {
    /// An empty context at 2025-03-17T14:25:30.123Z with random seed 7.
    pub fn new() -> TestContext {
        let now = DateTime::from_timestamp_millis(1_742_221_530_123).unwrap_or_default();
        TestContext {
            trigger_topic: None,
            trigger_payload: None,
            store: HashMap::new(),
            published: Vec::new(),
            env: HashMap::new(),
            secrets: HashMap::new(),
            now,
            rng: StdRng::seed_from_u64(7),
            client_id: None,
            user: None,
            depth: 0,
            actions: HashMap::new(),
            models: HashMap::new(),
        }
    }

    /// Sets the triggering message.
    pub fn with_trigger(mut self, topic: &str, payload: impl Into<Bytes>) -> TestContext {
        self.trigger_topic = Some(topic.to_string());
        self.trigger_payload = Some(payload.into());
        self
    }

    /// Stores a last value for `topic`.
    pub fn with_topic(mut self, topic: &str, payload: impl Into<Bytes>) -> TestContext {
        self.store.insert(topic.to_string(), payload.into());
        self
    }

    /// The stored value of `topic` as text, for assertions.
    pub fn stored(&self, topic: &str) -> Option<String> {
        self.store
            .get(topic)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

impl Context for TestContext {
    fn trigger_topic(&self) -> Option<&str> {
        self.trigger_topic.as_deref()
    }

    fn trigger_payload(&self) -> Option<&Bytes> {
        self.trigger_payload.as_ref()
    }

    fn get_topic(&self, topic: &str) -> Option<Bytes> {
        self.store.get(topic).cloned()
    }

    fn keep_topic(&mut self, topic: &str, payload: Bytes) {
        self.store.insert(topic.to_string(), payload);
    }

    fn publish(&mut self, topic: &str, payload: Bytes, retain: bool, qos: u8) {
        self.store.insert(topic.to_string(), payload.clone());
        self.published.push(Published {
            topic: topic.to_string(),
            payload,
            retain,
            qos,
        });
    }

    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn rng(&mut self) -> &mut dyn RngCore {
        &mut self.rng
    }

    fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn depth(&self) -> u32 {
        self.depth
    }

    fn model(&self, name: &str) -> Option<Arc<Model>> {
        self.models.get(name).cloned()
    }

    fn call_action(
        &mut self,
        name: &str,
        inputs: Vec<(String, Value)>,
    ) -> Result<Outputs, EvalError> {
        let action = self
            .actions
            .get(name)
            .cloned()
            .ok_or_else(|| EvalError::UnknownAction(name.to_string()))?;
        if self.depth + 1 >= MAX_CHAIN_DEPTH {
            return Err(EvalError::DepthExceeded(MAX_CHAIN_DEPTH));
        }
        // The callee runs in the same hub (store, publish sink) one level deeper, with no trigger.
        let trigger = (self.trigger_topic.take(), self.trigger_payload.take());
        self.depth += 1;
        let result = eval::run_action(&action, self, &inputs);
        self.depth -= 1;
        (self.trigger_topic, self.trigger_payload) = trigger;
        result.map_err(|e| EvalError::Called(Box::new(e)))
    }
}
