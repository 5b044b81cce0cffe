//! [`Deployed`]: the immutable snapshot of every deployed LOT definition, swapped whole on change.
//!
//! Readers (the publish path, the engine, the command replies) clone the `Arc` and never see a
//! half-applied deployment. Building a new snapshot (`with_changes`) is the only way to change
//! one; it also rebuilds the rule index ([`super::rules::RuleIndex`]) once, so no check pays for it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::lot::{Definition, Kind};
use crate::storage::DefinitionKind;

use super::rules::RuleIndex;

/// The definitions of one kind, in deployment order, with lookup by name.
#[derive(Debug, Clone, Default)]
pub struct Defs {
    order: Vec<Arc<Definition>>,
    by_name: HashMap<String, usize>,
}

impl Defs {
    /// The definition named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Definition>> {
        self.by_name.get(name).map(|&i| &self.order[i])
    }

    /// Every definition, oldest deployment first (a replacement counts as a new deployment).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Definition>> {
        self.order.iter()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The names, in deployment order.
    pub fn names(&self) -> Vec<String> {
        self.order.iter().map(|d| d.name.clone()).collect()
    }

    /// Adds `def`, replacing (and moving to the end) a definition of the same name.
    fn put(&mut self, def: Arc<Definition>) {
        self.remove(&def.name);
        self.by_name.insert(def.name.clone(), self.order.len());
        self.order.push(def);
    }

    fn remove(&mut self, name: &str) -> bool {
        let Some(i) = self.by_name.remove(name) else {
            return false;
        };
        self.order.remove(i);
        for idx in self.by_name.values_mut() {
            if *idx > i {
                *idx -= 1;
            }
        }
        true
    }

    fn clear(&mut self) -> usize {
        let n = self.order.len();
        self.order.clear();
        self.by_name.clear();
        n
    }
}

/// Everything deployed, at one generation.
#[derive(Debug, Default)]
pub struct Deployed {
    pub rules: Defs,
    pub models: Defs,
    pub actions: Defs,
    pub routes: Defs,
    /// Increases by one with every change (never reused while the hub runs).
    pub generation: u64,
    /// The rules indexed by scope and first topic level, built once per snapshot.
    pub(crate) index: RuleIndex,
}

/// One change to apply to a snapshot.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Put(Arc<Definition>),
    Remove(Kind, String),
    RemoveAll(Kind),
}

impl Deployed {
    /// The definitions of `kind`.
    pub fn of(&self, kind: Kind) -> &Defs {
        match kind {
            Kind::Rule => &self.rules,
            Kind::Model => &self.models,
            Kind::Action => &self.actions,
            Kind::Route => &self.routes,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut Defs {
        match kind {
            Kind::Rule => &mut self.rules,
            Kind::Model => &mut self.models,
            Kind::Action => &mut self.actions,
            Kind::Route => &mut self.routes,
        }
    }

    /// A new snapshot: this one with `changes` applied, at the next generation.
    pub(crate) fn with_changes(&self, changes: &[Change]) -> Deployed {
        let mut next = Deployed {
            rules: self.rules.clone(),
            models: self.models.clone(),
            actions: self.actions.clone(),
            routes: self.routes.clone(),
            generation: self.generation + 1,
            index: RuleIndex::default(),
        };
        for change in changes {
            match change {
                Change::Put(def) => next.of_mut(def.kind).put(def.clone()),
                Change::Remove(kind, name) => {
                    next.of_mut(*kind).remove(name);
                }
                Change::RemoveAll(kind) => {
                    next.of_mut(*kind).clear();
                }
            }
        }
        next.index = RuleIndex::build(&next.rules);
        next
    }
}

/// The storage's name for a kind.
pub(crate) fn storage_kind(kind: Kind) -> DefinitionKind {
    match kind {
        Kind::Rule => DefinitionKind::Rule,
        Kind::Model => DefinitionKind::Model,
        Kind::Action => DefinitionKind::Action,
        Kind::Route => DefinitionKind::Route,
    }
}

/// The LOT kind of a stored definition.
pub(crate) fn lot_kind(kind: DefinitionKind) -> Kind {
    match kind {
        DefinitionKind::Rule => Kind::Rule,
        DefinitionKind::Model => Kind::Model,
        DefinitionKind::Action => Kind::Action,
        DefinitionKind::Route => Kind::Route,
    }
}

/// `Rule`, `Model`, ... as used in `$SYS/Coreflux/<Kind>s` and in replies.
pub fn kind_title(kind: Kind) -> &'static str {
    match kind {
        Kind::Rule => "Rule",
        Kind::Model => "Model",
        Kind::Action => "Action",
        Kind::Route => "Route",
    }
}
