//! [`HubContext`]: the LOT evaluator's [`Context`] over the live hub, and the action chain
//! ([`Chain`]) that loop protection follows.
//!
//! How a chain is followed (spec §4: "an action's publish does not trigger the same action again
//! within the same chain; cap chains at a depth of 16"): the broker calls `on_publish` inline,
//! on the thread that publishes. Before the engine publishes for a definition it puts that run's
//! chain in a thread-local ([`with_chain`]); `on_publish` reads it ([`current_chain`]) and hands
//! it to the jobs the message starts. So a chain crosses PUBLISH, model outputs and CALL ACTION
//! without the broker knowing about LOT. Messages from clients see no chain (a fresh one).
//!
//! Must not touch: the trigger index, timers. Everything the evaluator does to the hub goes
//! through [`super::Shared`].

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::RngCore;

use crate::lot::ast::{Action, Model};
use crate::lot::context::{Context, MAX_CHAIN_DEPTH};
use crate::lot::eval::{self, EvalError, Outputs};
use crate::lot::value::Value;

use super::Shared;
use super::program::Program;

/// One definition run in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    Action(Arc<str>),
    Model(Arc<str>),
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Action(n) => write!(f, "ACTION {n}"),
            Link::Model(n) => write!(f, "MODEL {n}"),
        }
    }
}

/// The definitions an event has run so far, oldest first; `depth` is 0 for the first.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub depth: u32,
    pub links: Vec<Link>,
}

/// Why a definition was not started by a message of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It already ran in this chain: its own output does not start it again.
    Loop,
    /// The chain already holds [`MAX_CHAIN_DEPTH`] runs.
    TooDeep,
}

impl Chain {
    /// A chain that starts with `link`.
    pub fn start(link: Link) -> Arc<Chain> {
        Arc::new(Chain {
            depth: 0,
            links: vec![link],
        })
    }

    /// `parent` (if any) followed by `link`, for a definition a message of `parent` triggers.
    pub fn extend(parent: Option<&Arc<Chain>>, link: Link) -> Result<Arc<Chain>, Refused> {
        let Some(parent) = parent else {
            return Ok(Chain::start(link));
        };
        if parent.links.contains(&link) {
            return Err(Refused::Loop);
        }
        parent.push(link).ok_or(Refused::TooDeep)
    }

    /// This chain one level deeper with `link` (CALL ACTION may call an action already in the
    /// chain: recursion is bounded by the depth alone). None past the depth cap.
    pub fn push(&self, link: Link) -> Option<Arc<Chain>> {
        let depth = self.depth + 1;
        if depth >= MAX_CHAIN_DEPTH {
            return None;
        }
        let mut links = self.links.clone();
        links.push(link);
        Some(Arc::new(Chain { depth, links }))
    }

    /// `A -> B -> C`, for error lines.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.links.iter().map(|l| l.to_string()).collect();
        names.join(" -> ")
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Chain>>> = const { RefCell::new(None) };
}

/// The chain of the definition publishing on this thread right now, if any.
pub(crate) fn current_chain() -> Option<Arc<Chain>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` (a publish) with `chain` as this thread's current chain.
pub(crate) fn with_chain<T>(chain: &Arc<Chain>, f: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|c| c.replace(Some(chain.clone())));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    out
}

/// One evaluation's view of the hub.
pub(crate) struct HubContext<'a> {
    pub shared: &'a Shared,
    pub program: &'a Program,
    pub trigger_topic: Option<&'a str>,
    pub trigger_payload: Option<&'a Bytes>,
    pub client_id: Option<&'a str>,
    pub user: Option<&'a str>,
    pub chain: Arc<Chain>,
    /// Every publish of this run, when the caller wants them (`-runAction` replies).
    pub published: Option<Vec<(String, Bytes)>>,
    rng: rand::rngs::ThreadRng,
}

impl<'a> HubContext<'a> {
    pub fn new(shared: &'a Shared, program: &'a Program, chain: Arc<Chain>) -> HubContext<'a> {
        HubContext {
            shared,
            program,
            trigger_topic: None,
            trigger_payload: None,
            client_id: None,
            user: None,
            chain,
            published: None,
            rng: rand::thread_rng(),
        }
    }

    /// Sets the triggering message.
    pub fn trigger(mut self, topic: &'a str, payload: &'a Bytes) -> HubContext<'a> {
        self.trigger_topic = Some(topic);
        self.trigger_payload = Some(payload);
        self
    }
}

impl Context for HubContext<'_> {
    fn trigger_topic(&self) -> Option<&str> {
        self.trigger_topic
    }

    fn trigger_payload(&self) -> Option<&Bytes> {
        self.trigger_payload
    }

    fn get_topic(&self, topic: &str) -> Option<Bytes> {
        self.shared.last_value(topic)
    }

    fn keep_topic(&mut self, topic: &str, payload: Bytes) {
        if let Err(e) = self
            .shared
            .values
            .keep(&self.shared.storage, topic, payload)
        {
            tracing::error!(topic, error = %e, "KEEP TOPIC: the value could not be stored durably");
        }
    }

    fn publish(&mut self, topic: &str, payload: Bytes, retain: bool, qos: u8) {
        if let Some(list) = &mut self.published {
            list.push((topic.to_string(), payload.clone()));
        }
        self.shared
            .publish(topic, payload, qos, retain, &self.chain);
    }

    fn env(&self, name: &str) -> Option<String> {
        self.shared.storage.get_env(name).ok().flatten()
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.shared.storage.get_secret(name).ok().flatten()
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn rng(&mut self) -> &mut dyn RngCore {
        &mut self.rng
    }

    fn client_id(&self) -> Option<&str> {
        self.client_id
    }

    fn user(&self) -> Option<&str> {
        self.user
    }

    fn depth(&self) -> u32 {
        self.chain.depth
    }

    fn model(&self, name: &str) -> Option<Arc<Model>> {
        self.program.models.get(name).cloned()
    }

    fn call_action(
        &mut self,
        name: &str,
        inputs: Vec<(String, Value)>,
    ) -> Result<Outputs, EvalError> {
        let action: Arc<Action> = self
            .program
            .actions
            .get(name)
            .cloned()
            .ok_or_else(|| EvalError::UnknownAction(name.to_string()))?;
        let deeper = self
            .chain
            .push(Link::Action(Arc::from(name)))
            .ok_or(EvalError::DepthExceeded(MAX_CHAIN_DEPTH))?;
        // The callee runs in the same hub one level deeper, with no trigger (spec §4).
        let chain = std::mem::replace(&mut self.chain, deeper);
        let trigger = (self.trigger_topic.take(), self.trigger_payload.take());
        let result = eval::run_action(&action, self, &inputs);
        (self.trigger_topic, self.trigger_payload) = trigger;
        self.chain = chain;
        result.map_err(|e| EvalError::Called(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: &str) -> Link {
        Link::Action(Arc::from(n))
    }

    #[test]
    fn loops_and_depth() {
        let c = Chain::start(a("A"));
        assert_eq!(Chain::extend(Some(&c), a("A")).unwrap_err(), Refused::Loop);
        let mut c = c;
        for i in 1..MAX_CHAIN_DEPTH {
            c = Chain::extend(Some(&c), a(&format!("X{i}"))).unwrap();
        }
        assert_eq!(c.depth, MAX_CHAIN_DEPTH - 1);
        assert_eq!(
            Chain::extend(Some(&c), a("Last")).unwrap_err(),
            Refused::TooDeep
        );
        assert!(c.describe().starts_with("ACTION A -> ACTION X1"));
        assert!(current_chain().is_none());
        let seen = with_chain(&c, current_chain);
        assert_eq!(seen.map(|s| s.depth), Some(MAX_CHAIN_DEPTH - 1));
        assert!(current_chain().is_none());
    }
}
