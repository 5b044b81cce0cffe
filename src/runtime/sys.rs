//! The retained `$SYS/Coreflux/...` topics that show the runtime's state
//! (commands-and-sys.md §4): the version, the users (no hashes), every deployed definition's
//! source, the list of names per kind, and each action's DESCRIPTION. A removed definition's
//! topics are cleared with an empty retained message (MQTT §3.3.1.3).
//!
//! Published through [`crate::broker::Broker::publish`] (no authorization asked; rules decide
//! who may *read* them: the seed rule `AllowSubscribeSys` keeps them to
//! AllowedSystemConfiguration holders). Before [`Runtime::attach`] nothing is published;
//! [`Runtime::start`] publishes everything once.

use bytes::Bytes;

use super::Runtime;
use super::deployed::{Deployed, kind_title};
use crate::lot::ast::DefinitionAst;
use crate::lot::{Definition, Kind};
use crate::protocol::packet::QoS;

/// `$SYS/Coreflux/Version`.
pub const VERSION_TOPIC: &str = "$SYS/Coreflux/Version";
/// `$SYS/Coreflux/Config/Users`.
pub const USERS_TOPIC: &str = "$SYS/Coreflux/Config/Users";

/// `$SYS/Coreflux/Rules`, `.../Models`, ...
pub fn list_topic(kind: Kind) -> String {
    format!("$SYS/Coreflux/{}s", kind_title(kind))
}

/// `$SYS/Coreflux/Rules/<name>`, ...
pub fn source_topic(kind: Kind, name: &str) -> String {
    format!("$SYS/Coreflux/{}s/{name}", kind_title(kind))
}

impl Runtime {
    fn retain(&self, topic: &str, payload: impl Into<Bytes>) {
        let Some(broker) = self.inner.broker.get() else {
            return;
        };
        if let Err(e) = broker.publish_simple(topic, payload, QoS::AtMostOnce, true) {
            tracing::debug!(topic, error = %e, "cannot publish a $SYS/Coreflux topic");
        }
    }

    /// A deployed definition's source, and an action's DESCRIPTION.
    pub(super) fn publish_definition(&self, def: &Definition) {
        self.retain(&source_topic(def.kind, &def.name), def.source.clone());
        if let DefinitionAst::Action(action) = &def.ast {
            let topic = format!("{}/Description", source_topic(def.kind, &def.name));
            match &action.description {
                Some(d) => self.retain(&topic, d.value.clone()),
                None => self.retain(&topic, Bytes::new()),
            }
        }
    }

    /// Clears a removed definition's topics.
    pub(super) fn clear_definition(&self, kind: Kind, name: &str) {
        self.retain(&source_topic(kind, name), Bytes::new());
        if kind == Kind::Action {
            self.retain(
                &format!("{}/Description", source_topic(kind, name)),
                Bytes::new(),
            );
        }
    }

    /// The JSON list of names of each kind in `kinds` (duplicates are published once).
    pub(super) fn publish_lists(&self, deployed: &Deployed, kinds: impl IntoIterator<Item = Kind>) {
        let mut done = Vec::with_capacity(4);
        for kind in kinds {
            if done.contains(&kind) {
                continue;
            }
            done.push(kind);
            let names = deployed.of(kind).names();
            let json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
            self.retain(&list_topic(kind), json);
        }
    }

    /// `$SYS/Coreflux/Config/Users`: names, flags and groups.
    pub(super) fn publish_users(&self) {
        match self.list_users() {
            Ok(users) => {
                let json = serde_json::to_string(&users).unwrap_or_else(|_| "[]".into());
                self.retain(USERS_TOPIC, json);
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the users for $SYS"),
        }
    }

    /// Everything, once (at start).
    pub(super) fn publish_all_sys(&self) {
        let version = serde_json::json!({
            "name": "lothub",
            "version": env!("CARGO_PKG_VERSION"),
            "mqtt": ["3.1.1", "5.0"],
        });
        self.retain(VERSION_TOPIC, version.to_string());
        self.publish_users();
        let deployed = self.snapshot();
        for kind in [Kind::Model, Kind::Action, Kind::Route, Kind::Rule] {
            for def in deployed.of(kind).iter() {
                self.publish_definition(def);
            }
        }
        self.publish_lists(
            &deployed,
            [Kind::Model, Kind::Action, Kind::Route, Kind::Rule],
        );
    }
}
