//! The configuration state API of [`Storage`]: users, LOT definitions, env, KEEP TOPIC values,
//! and the whole-configuration export / atomic replace behind `-backup` and `-restore`.
//! Secrets are in `secrets.rs`. Every method that changes something commits durably before it
//! returns.

use super::error::StorageError;
use super::tables::{DEFINITIONS, ENV, KEPT, META, SECRETS, USERS};
use super::{Storage, Tx};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::{BTreeMap, BTreeSet};

/// A hub user. Storage never hashes: `password_hash` is the argon2id PHC string the caller made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub password_hash: String,
    /// Built-in (`AllowedUserManagement`, ...) and custom flags.
    #[serde(default)]
    pub flags: BTreeMap<String, bool>,
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// The value stored in `users-1` (the name is the key).
#[derive(Serialize, Deserialize)]
struct UserValue {
    password_hash: String,
    flags: BTreeMap<String, bool>,
    groups: BTreeSet<String>,
}

/// The kinds of LOT definition the hub deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DefinitionKind {
    Model,
    Action,
    Route,
    Rule,
}

impl DefinitionKind {
    /// The order a restart redeploys kinds in (models, actions, routes, rules).
    pub const ALL: [DefinitionKind; 4] = [
        DefinitionKind::Model,
        DefinitionKind::Action,
        DefinitionKind::Route,
        DefinitionKind::Rule,
    ];

    /// The key text stored in `definitions-1`.
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::Model => "Model",
            DefinitionKind::Action => "Action",
            DefinitionKind::Route => "Route",
            DefinitionKind::Rule => "Rule",
        }
    }

    fn parse(s: &str) -> Option<DefinitionKind> {
        DefinitionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One deployed LOT definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub kind: DefinitionKind,
    pub name: String,
    pub source: String,
    /// Deployment sequence: increases with every put (a replacement gets a new, higher one).
    pub seq: u64,
}

#[derive(Serialize, Deserialize)]
struct DefinitionValue {
    seq: u64,
    source: String,
}

/// One step of an atomic multi-definition deployment ([`Storage::apply_definitions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionChange {
    Put {
        kind: DefinitionKind,
        name: String,
        source: String,
    },
    Remove {
        kind: DefinitionKind,
        name: String,
    },
}

/// A secret as exported: still sealed (nonce and ciphertext, hex), readable only with the
/// `secret.key` of the hub that sealed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub name: String,
    pub sealed_hex: String,
}

/// The whole configuration, as `-backup` exports it and `-restore` replaces it. KEEP TOPIC
/// values, retained messages, sessions and `meta` are run-time state, not configuration: they
/// are neither exported nor replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSnapshot {
    /// Format of this document; 1 today.
    pub format: u32,
    pub users: Vec<UserRecord>,
    /// In deployment order.
    pub definitions: Vec<Definition>,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<SealedSecret>,
}

/// The snapshot format this code writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("storage values always serialize")
}

fn from_json<T: DeserializeOwned>(table: &'static str, v: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(v).map_err(|e| StorageError::Decode {
        table,
        detail: e.to_string(),
    })
}

/// Hands out the next deployment sequence number inside `tx`.
fn next_definition_seq(tx: &Tx) -> Result<u64, StorageError> {
    let mut meta = tx.open_table(META)?;
    let last = match meta.get("definition_seq")? {
        Some(v) => v.value().parse::<u64>().unwrap_or(0),
        None => 0,
    };
    let next = last + 1;
    meta.insert("definition_seq", next.to_string().as_str())?;
    Ok(next)
}

fn put_definition_in(
    tx: &Tx,
    kind: DefinitionKind,
    name: &str,
    source: &str,
) -> Result<u64, StorageError> {
    let seq = next_definition_seq(tx)?;
    let value = to_json(&DefinitionValue {
        seq,
        source: source.to_string(),
    });
    tx.open_table(DEFINITIONS)?
        .insert((kind.as_str(), name), value.as_slice())?;
    Ok(seq)
}

/// Empties a table inside `tx` (delete and recreate).
fn clear<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &Tx,
    table: TableDefinition<K, V>,
) -> Result<(), StorageError> {
    tx.delete_table(table)?;
    tx.open_table(table)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

impl Storage {
    /// Creates or replaces a user.
    pub fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        let value = to_json(&UserValue {
            password_hash: user.password_hash.clone(),
            flags: user.flags.clone(),
            groups: user.groups.clone(),
        });
        self.write(|tx| {
            tx.open_table(USERS)?
                .insert(user.name.as_str(), value.as_slice())?;
            Ok(())
        })
    }

    pub fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(USERS)?;
        let Some(v) = table.get(name)? else {
            return Ok(None);
        };
        let u: UserValue = from_json("users-1", v.value())?;
        Ok(Some(UserRecord {
            name: name.to_string(),
            password_hash: u.password_hash,
            flags: u.flags,
            groups: u.groups,
        }))
    }

    /// Removes a user; `false` if there was none.
    pub fn remove_user(&self, name: &str) -> Result<bool, StorageError> {
        self.write(|tx| Ok(tx.open_table(USERS)?.remove(name)?.is_some()))
    }

    /// Every user, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let u: UserValue = from_json("users-1", v.value())?;
            out.push(UserRecord {
                name: k.value().to_string(),
                password_hash: u.password_hash,
                flags: u.flags,
                groups: u.groups,
            });
        }
        Ok(out)
    }

    /// Deploys (or replaces by name) one definition; returns its deployment sequence.
    pub fn put_definition(
        &self,
        kind: DefinitionKind,
        name: &str,
        source: &str,
    ) -> Result<u64, StorageError> {
        self.write(|tx| put_definition_in(tx, kind, name, source))
    }

    /// Removes one definition; `false` if there was none.
    pub fn remove_definition(
        &self,
        kind: DefinitionKind,
        name: &str,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            Ok(tx
                .open_table(DEFINITIONS)?
                .remove((kind.as_str(), name))?
                .is_some())
        })
    }

    /// Removes every definition of `kind` (`-removeAllModels`, ...); returns how many.
    pub fn remove_all_definitions(&self, kind: DefinitionKind) -> Result<usize, StorageError> {
        self.write(|tx| {
            let mut table = tx.open_table(DEFINITIONS)?;
            let mut n = 0;
            table.retain(|(k, _), _| {
                let keep = k != kind.as_str();
                n += usize::from(!keep);
                keep
            })?;
            Ok(n)
        })
    }

    /// Applies every change in one transaction: all of them or none (`-lot` deployment).
    /// Puts get increasing sequence numbers in batch order.
    pub fn apply_definitions(&self, changes: &[DefinitionChange]) -> Result<(), StorageError> {
        self.write(|tx| {
            for change in changes {
                match change {
                    DefinitionChange::Put { kind, name, source } => {
                        put_definition_in(tx, *kind, name, source)?;
                    }
                    DefinitionChange::Remove { kind, name } => {
                        tx.open_table(DEFINITIONS)?
                            .remove((kind.as_str(), name.as_str()))?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The definitions of `kind`, in deployment order.
    pub fn list_definitions(&self, kind: DefinitionKind) -> Result<Vec<Definition>, StorageError> {
        let mut all = self.list_all_definitions()?;
        all.retain(|d| d.kind == kind);
        Ok(all)
    }

    /// Every definition, in deployment order (a restart redeploys kinds in
    /// [`DefinitionKind::ALL`] order and, within a kind, in this order).
    pub fn list_all_definitions(&self) -> Result<Vec<Definition>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(DEFINITIONS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let (kind, name) = k.value();
            let kind = DefinitionKind::parse(kind).ok_or_else(|| StorageError::Decode {
                table: "definitions-1",
                detail: format!("unknown kind {kind:?}"),
            })?;
            let d: DefinitionValue = from_json("definitions-1", v.value())?;
            out.push(Definition {
                kind,
                name: name.to_string(),
                source: d.source,
                seq: d.seq,
            });
        }
        out.sort_by_key(|d| d.seq);
        Ok(out)
    }

    pub fn set_env(&self, name: &str, value: &str) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.open_table(ENV)?.insert(name, value)?;
            Ok(())
        })
    }

    pub fn get_env(&self, name: &str) -> Result<Option<String>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(ENV)?;
        Ok(table.get(name)?.map(|v| v.value().to_string()))
    }

    /// Removes an env variable; `false` if there was none.
    pub fn remove_env(&self, name: &str) -> Result<bool, StorageError> {
        self.write(|tx| Ok(tx.open_table(ENV)?.remove(name)?.is_some()))
    }

    pub fn list_env(&self) -> Result<BTreeMap<String, String>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(ENV)?;
        let mut out = BTreeMap::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.insert(k.value().to_string(), v.value().to_string());
        }
        Ok(out)
    }

    /// Stores the KEEP TOPIC value of `topic` (replacing the previous one).
    pub fn keep_topic(&self, topic: &str, payload: &[u8]) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.open_table(KEPT)?.insert(topic, payload)?;
            Ok(())
        })
    }

    /// Forgets the KEEP TOPIC value of `topic`; `false` if there was none.
    pub fn remove_kept(&self, topic: &str) -> Result<bool, StorageError> {
        self.write(|tx| Ok(tx.open_table(KEPT)?.remove(topic)?.is_some()))
    }

    /// Every kept topic with its value, sorted by topic.
    pub fn kept_topics(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(KEPT)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The whole configuration (users with their hashes, definitions, env, sealed secrets).
    pub fn export_configuration(&self) -> Result<ConfigSnapshot, StorageError> {
        let txn = self.db().begin_read()?;
        let mut secrets = Vec::new();
        for row in txn.open_table(SECRETS)?.iter()? {
            let (k, v) = row?;
            secrets.push(SealedSecret {
                name: k.value().to_string(),
                sealed_hex: hex(v.value()),
            });
        }
        drop(txn);
        Ok(ConfigSnapshot {
            format: SNAPSHOT_FORMAT,
            users: self.list_users()?,
            definitions: self.list_all_definitions()?,
            env: self.list_env()?,
            secrets,
        })
    }

    /// Replaces users, definitions, env and secrets with `snapshot` in one transaction: after a
    /// crash the file holds either the old configuration or the new one, never a mix.
    /// Definitions keep their sequence numbers, so the deployment order survives a round trip.
    pub fn replace_configuration(&self, snapshot: &ConfigSnapshot) -> Result<(), StorageError> {
        let bad = |detail: String| StorageError::Decode {
            table: "snapshot",
            detail,
        };
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(bad(format!("unsupported format {}", snapshot.format)));
        }
        let mut sealed = Vec::with_capacity(snapshot.secrets.len());
        for s in &snapshot.secrets {
            let bytes = unhex(&s.sealed_hex)
                .ok_or_else(|| bad(format!("secret {:?}: sealed_hex is not hex", s.name)))?;
            sealed.push((s.name.as_str(), bytes));
        }
        self.write(|tx| {
            clear(tx, USERS)?;
            clear(tx, DEFINITIONS)?;
            clear(tx, ENV)?;
            clear(tx, SECRETS)?;
            {
                let mut users = tx.open_table(USERS)?;
                for u in &snapshot.users {
                    let value = to_json(&UserValue {
                        password_hash: u.password_hash.clone(),
                        flags: u.flags.clone(),
                        groups: u.groups.clone(),
                    });
                    users.insert(u.name.as_str(), value.as_slice())?;
                }
                let mut defs = tx.open_table(DEFINITIONS)?;
                for d in &snapshot.definitions {
                    let value = to_json(&DefinitionValue {
                        seq: d.seq,
                        source: d.source.clone(),
                    });
                    defs.insert((d.kind.as_str(), d.name.as_str()), value.as_slice())?;
                }
                let mut env = tx.open_table(ENV)?;
                for (k, v) in &snapshot.env {
                    env.insert(k.as_str(), v.as_str())?;
                }
                let mut secrets = tx.open_table(SECRETS)?;
                for (name, bytes) in &sealed {
                    secrets.insert(*name, bytes.as_slice())?;
                }
            }
            // New deployments must sort after every restored one.
            let max_seq = snapshot
                .definitions
                .iter()
                .map(|d| d.seq)
                .max()
                .unwrap_or(0);
            let mut meta = tx.open_table(META)?;
            let current = match meta.get("definition_seq")? {
                Some(v) => v.value().parse::<u64>().unwrap_or(0),
                None => 0,
            };
            meta.insert("definition_seq", current.max(max_seq).to_string().as_str())?;
            Ok(())
        })
    }
}
