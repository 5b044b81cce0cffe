//! Deploying and removing LOT definitions: `-add<Kind>`, `-lot`, `-remove<Kind>`,
//! `-removeAll<Kind>s`, `-restoreRules`, `-list`, and the redeployment at start.
//!
//! Every change goes the same way, under the runtime's write lock: compile against what is
//! deployed, commit to storage (one transaction: all definitions of a text or none), build the
//! next [`Deployed`] snapshot, swap it in, tell the engine, publish the `$SYS` topics. A text
//! that does not compile, or a storage failure, changes nothing: the old definitions stay in
//! force (lot-language.md §7).

use std::collections::HashSet;
use std::sync::Arc;

use thiserror::Error;

use super::deployed::{Change, Deployed, lot_kind, storage_kind};
use super::rules::SEED_RULES;
use super::{Runtime, RuntimeError};
use crate::lot::{self, Definition, Kind, KnownNames, LotError};
use crate::storage::{ConfigSnapshot, DefinitionChange, DefinitionKind, StorageError};

/// One definition a deployment put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedItem {
    pub kind: Kind,
    pub name: String,
    /// A definition of that kind and name was already deployed and is now replaced.
    pub replaced: bool,
}

/// Why a deployment changed nothing.
#[derive(Debug, Error)]
pub enum DeployError {
    /// The text does not compile; every error with its line and column (1-based, counted from
    /// the first line of the text).
    #[error("{} error(s) in the LOT text", .0.len())]
    Compile(Vec<LotError>),
    #[error("the text holds no definition")]
    Empty,
    /// `-addRule` given a MODEL, and so on.
    #[error("expected a {expected} definition, found {found} {name}")]
    WrongKind {
        expected: Kind,
        found: Kind,
        name: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Runtime {
    /// Compiles `text` (one or several definitions of any kind) and deploys all of it or nothing;
    /// a definition with the name of a deployed one of its kind replaces it. Durable before it
    /// returns Ok. Blocking.
    pub fn deploy(&self, text: &str) -> Result<Vec<DeployedItem>, DeployError> {
        self.deploy_as(text, None)
    }

    /// As [`Runtime::deploy`], refusing any definition that is not of `kind` (`-addRule` ...).
    pub fn deploy_kind(&self, text: &str, kind: Kind) -> Result<Vec<DeployedItem>, DeployError> {
        self.deploy_as(text, Some(kind))
    }

    fn deploy_as(&self, text: &str, only: Option<Kind>) -> Result<Vec<DeployedItem>, DeployError> {
        let _guard = self.inner.write.lock();
        let current = self.snapshot();
        let defs =
            lot::compile(text, None, &known_names(&current)).map_err(DeployError::Compile)?;
        if defs.is_empty() {
            return Err(DeployError::Empty);
        }
        if let Some(expected) = only
            && let Some(d) = defs.iter().find(|d| d.kind != expected)
        {
            return Err(DeployError::WrongKind {
                expected,
                found: d.kind,
                name: d.name.clone(),
            });
        }
        let refused: Vec<LotError> = defs
            .iter()
            .filter_map(|d| {
                let e = super::routes::check(d, &self.inner.storage).err()?;
                Some(route_error(text, d, &e.to_string()))
            })
            .collect();
        if !refused.is_empty() {
            return Err(DeployError::Compile(refused));
        }
        let stored: Vec<DefinitionChange> = defs
            .iter()
            .map(|d| DefinitionChange::Put {
                kind: storage_kind(d.kind),
                name: d.name.clone(),
                source: d.source.clone(),
            })
            .collect();
        self.inner.storage.apply_definitions(&stored)?;
        let items = defs
            .iter()
            .map(|d| DeployedItem {
                kind: d.kind,
                name: d.name.clone(),
                replaced: current.of(d.kind).get(&d.name).is_some(),
            })
            .collect();
        let defs: Vec<Arc<Definition>> = defs.into_iter().map(Arc::new).collect();
        let changes: Vec<Change> = defs.iter().cloned().map(Change::Put).collect();
        let next = self.install(current.with_changes(&changes));
        for def in &defs {
            self.publish_definition(def);
        }
        self.publish_lists(&next, defs.iter().map(|d| d.kind));
        Ok(items)
    }

    /// Removes the definition `name` of `kind`; `Ok(false)` if there was none. Blocking.
    pub fn remove(&self, kind: Kind, name: &str) -> Result<bool, RuntimeError> {
        let _guard = self.inner.write.lock();
        let current = self.snapshot();
        let removed = self
            .inner
            .storage
            .remove_definition(storage_kind(kind), name)?;
        if !removed && current.of(kind).get(name).is_none() {
            return Ok(false);
        }
        let next = self.install(current.with_changes(&[Change::Remove(kind, name.to_string())]));
        self.clear_definition(kind, name);
        self.publish_lists(&next, [kind]);
        Ok(true)
    }

    /// Removes every definition of `kind`; returns how many were deployed. Blocking.
    pub fn remove_all(&self, kind: Kind) -> Result<usize, RuntimeError> {
        let _guard = self.inner.write.lock();
        let current = self.snapshot();
        self.inner
            .storage
            .remove_all_definitions(storage_kind(kind))?;
        let names = current.of(kind).names();
        let next = self.install(current.with_changes(&[Change::RemoveAll(kind)]));
        for name in &names {
            self.clear_definition(kind, name);
        }
        self.publish_lists(&next, [kind]);
        Ok(names.len())
    }

    /// `-restoreRules`: deploys the seed rules again (replacing any of the same names; other
    /// rules stay). Blocking.
    pub fn restore_rules(&self) -> Result<Vec<DeployedItem>, DeployError> {
        self.deploy_as(SEED_RULES, Some(Kind::Rule))
    }

    /// The deployed definitions of `kind` as (name, source), in deployment order.
    pub fn list(&self, kind: Kind) -> Vec<(String, String)> {
        self.snapshot()
            .of(kind)
            .iter()
            .map(|d| (d.name.clone(), d.source.clone()))
            .collect()
    }

    /// First start (no `seeded` mark in storage): the seed rules, stored. Root is created by
    /// the user side of seeding (`users.rs`).
    pub(super) fn seed_rules(&self) -> Result<(), RuntimeError> {
        let defs = lot::compile(SEED_RULES, Some("seed rules"), &KnownNames::default()).map_err(
            |errors| {
                // The seed text is ours: an error here is a bug caught by the tests.
                let first = errors.first().map(ToString::to_string).unwrap_or_default();
                RuntimeError::Seed(first)
            },
        )?;
        let changes: Vec<DefinitionChange> = defs
            .iter()
            .map(|d| DefinitionChange::Put {
                kind: DefinitionKind::Rule,
                name: d.name.clone(),
                source: d.source.clone(),
            })
            .collect();
        self.inner.storage.apply_definitions(&changes)?;
        Ok(())
    }

    /// Compiles every stored definition and installs them as the first snapshot, kinds in the
    /// order models, actions, routes, rules. A stored definition that no longer compiles is
    /// logged and skipped (it stays stored, so a fixed version of the hub brings it back).
    pub(super) fn redeploy_stored(&self) -> Result<(), RuntimeError> {
        let _guard = self.inner.write.lock();
        let (changes, failed) = compile_stored(self.inner.storage.list_all_definitions()?);
        for (kind, name, e) in failed {
            tracing::error!(kind = kind.as_str(), %name, error = %e.headline(), "stored definition does not compile; not deployed");
        }
        let next = Deployed::default().with_changes(&changes);
        tracing::info!(
            rules = next.rules.len(),
            models = next.models.len(),
            actions = next.actions.len(),
            routes = next.routes.len(),
            "LOT definitions deployed"
        );
        self.install(next);
        Ok(())
    }

    /// `-restore`: replaces users, definitions, env and secrets with `snapshot` (a `-backup`
    /// document) in one storage transaction, then the live users and definitions. Refused,
    /// changing nothing, when a definition does not compile or root is missing. Blocking.
    pub fn restore_configuration(&self, snapshot: &ConfigSnapshot) -> Result<(), RuntimeError> {
        let _guard = self.inner.write.lock();
        if !snapshot
            .users
            .iter()
            .any(|u| u.name == crate::auth::ROOT_USER)
        {
            return Err(RuntimeError::InvalidBackup(
                "it has no root user".to_string(),
            ));
        }
        let (changes, failed) = compile_stored(snapshot.definitions.clone());
        if let Some((kind, name, e)) = failed.first() {
            return Err(RuntimeError::InvalidBackup(format!(
                "{} {name} does not compile: {}",
                kind.as_str(),
                e.headline()
            )));
        }
        self.inner.storage.replace_configuration(snapshot)?;
        self.reload_users()?;
        let current = self.snapshot();
        let base = Deployed {
            generation: current.generation,
            ..Deployed::default()
        };
        let next = self.install(base.with_changes(&changes));
        for kind in [Kind::Model, Kind::Action, Kind::Route, Kind::Rule] {
            for old in current.of(kind).iter() {
                if next.of(kind).get(&old.name).is_none() {
                    self.clear_definition(kind, &old.name);
                }
            }
        }
        self.publish_all_sys();
        Ok(())
    }

    /// Compiles `text` against what is deployed without deploying it.
    pub fn check_text(&self, text: &str) -> Result<Vec<Definition>, Vec<LotError>> {
        lot::compile(text, None, &known_names(&self.snapshot()))
    }
}

/// Stored definitions -> snapshot changes, kinds in the order models, actions, routes, rules
/// (deployment order within a kind); names resolve against every stored name. Returns the
/// definitions that do not compile separately.
fn compile_stored(
    mut stored: Vec<crate::storage::Definition>,
) -> (Vec<Change>, Vec<(DefinitionKind, String, LotError)>) {
    stored.sort_by_key(|d| d.seq);
    // Stable: deployment order within a kind.
    stored.sort_by_key(|d| DefinitionKind::ALL.iter().position(|k| *k == d.kind));
    let known = KnownNames {
        models: names_of(&stored, DefinitionKind::Model),
        actions: names_of(&stored, DefinitionKind::Action),
    };
    let mut changes = Vec::with_capacity(stored.len());
    let mut failed = Vec::new();
    for d in stored {
        match lot::compile(&d.source, None, &known) {
            Ok(defs) => changes.extend(
                defs.into_iter()
                    .filter(|def| def.kind == lot_kind(d.kind) && def.name == d.name)
                    .map(|def| Change::Put(Arc::new(def))),
            ),
            Err(errors) => {
                for e in errors {
                    failed.push((d.kind, d.name.clone(), e));
                }
            }
        }
    }
    (changes, failed)
}

/// A route that compiles but cannot run here (`routes::check`), as an error on its DEFINE line.
fn route_error(text: &str, def: &Definition, message: &str) -> LotError {
    let (line, col) = match &def.ast {
        lot::ast::DefinitionAst::Route(r) => (r.span.line, r.span.col),
        _ => (1, 1),
    };
    LotError {
        file: None,
        definition: Some(format!("{} {}", def.kind, def.name)),
        line,
        col,
        message: message.to_string(),
        source_line: text
            .lines()
            .nth(line.saturating_sub(1) as usize)
            .unwrap_or_default()
            .to_string(),
    }
}

/// The model and action names of a snapshot, for the compiler's name resolution.
fn known_names(d: &Deployed) -> KnownNames {
    KnownNames {
        models: d.models.iter().map(|m| m.name.clone()).collect(),
        actions: d.actions.iter().map(|a| a.name.clone()).collect(),
    }
}

fn names_of(stored: &[crate::storage::Definition], kind: DefinitionKind) -> HashSet<String> {
    stored
        .iter()
        .filter(|d| d.kind == kind)
        .map(|d| d.name.clone())
        .collect()
}
