//! Every redb table of lothub, in one place, with its key and value layout, and the schema
//! migrations run at open.
//!
//! Names carry a version (`sessions-1`): a change of key or value layout creates a new table
//! name and a migration step that copies the old table into the new one and deletes the old one,
//! inside the open transaction. `meta` alone is unversioned, because it holds the schema version.
//!
//! Value encodings: configuration tables hold JSON (`serde_json`, readable in a hex dump, small
//! and rarely written); message tables hold the explicit binary layouts of [`super::codec`]
//! (payloads are raw bytes, and these rows are written at message rate).

use super::error::StorageError;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// Schema version written by this code.
pub const SCHEMA_VERSION: u32 = 1;

/// `meta` (unversioned). Key: UTF-8 name. Value: UTF-8 text.
/// Keys used by lothub: `schema_version` (decimal), `definition_seq` (decimal, last deployment
/// sequence handed out), `alive_unix` (decimal seconds, the RedbStore writer's heartbeat), and
/// any key set through [`super::Storage::set_meta`] (e.g. "seeded" flags).
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// `users-1`. Key: user name (UTF-8). Value: JSON
/// `{"password_hash": "<argon2 PHC string>", "flags": {"<flag>": bool}, "groups": ["<group>"]}`.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users-1");

/// `definitions-1`: deployed LOT definitions. Key: `(kind, name)`, both UTF-8, kind one of
/// `Model`, `Action`, `Route`, `Rule`. Value: JSON `{"seq": u64, "source": "<LOT text>"}`; `seq`
/// is the deployment sequence (from `meta.definition_seq`), so a restart redeploys in order.
pub const DEFINITIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("definitions-1");

/// `env-1`. Key: variable name (UTF-8). Value: its value (UTF-8).
pub const ENV: TableDefinition<&str, &str> = TableDefinition::new("env-1");

/// `secrets-1`. Key: secret name (UTF-8). Value: 12-byte random nonce followed by the
/// ChaCha20-Poly1305 ciphertext of the UTF-8 value with its 16-byte tag; the associated data is
/// the secret's name, so a value moved to another name fails to decrypt. The key is in
/// `<data_dir>/secret.key`, never in this file.
pub const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets-1");

/// `kept-1`: KEEP TOPIC values. Key: topic (UTF-8). Value: the raw payload bytes.
pub const KEPT: TableDefinition<&str, &[u8]> = TableDefinition::new("kept-1");

/// `retained-1`. Key: topic (UTF-8). Value: the message layout of [`super::codec`] (v1).
pub const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained-1");

/// `sessions-1`: persistent sessions. Key: client id (UTF-8). Value: the session layout of
/// [`super::codec`] (v1): expiry, last-written time, subscriptions.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions-1");

/// `session-queue-1`: QoS 1/2 messages queued for or in flight to a persistent session.
/// Key: `(client id, seq)`, so one session's queue is one key range in delivery order.
/// Value: the queued layout of [`super::codec`] (v1): QoS, RETAIN, state (queued / sent with
/// packet id / released with packet id), subscription ids, then the message layout.
pub const QUEUE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("session-queue-1");

/// `route-buffer-1`: messages an MQTT_BRIDGE route still has to deliver to its remote broker.
/// Key: `(route name, seq)`, so one route's buffer is one key range in sending order. Value:
/// `[qos u8][retain u8][topic length u16 BE][topic UTF-8][payload]` (see `route_buffer.rs`).
/// A row is deleted only after the remote's PUBACK / PUBCOMP.
pub const ROUTE_BUFFER: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("route-buffer-1");

/// Creates every table (a no-op for those that exist) so that readers never meet a missing one.
fn create_all(txn: &WriteTransaction) -> Result<(), StorageError> {
    txn.open_table(META)?;
    txn.open_table(USERS)?;
    txn.open_table(DEFINITIONS)?;
    txn.open_table(ENV)?;
    txn.open_table(SECRETS)?;
    txn.open_table(KEPT)?;
    txn.open_table(RETAINED)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(QUEUE)?;
    txn.open_table(ROUTE_BUFFER)?;
    Ok(())
}

/// One upgrade step: from schema `from` to `from + 1`, run inside the open transaction.
type Migration = fn(&WriteTransaction) -> Result<(), StorageError>;

/// The upgrade steps, indexed by the version they start from. Version 0 is a new, empty file:
/// its step is "create every table". A layout change appends a step here (copy `x-1` into `x-2`,
/// delete `x-1`) and bumps [`SCHEMA_VERSION`].
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] = [create_all];

/// Brings the file to [`SCHEMA_VERSION`] inside `txn`; returns the version found. `path` is only
/// for the error message.
pub(crate) fn migrate(txn: &WriteTransaction, path: &std::path::Path) -> Result<u32, StorageError> {
    let found = {
        let meta = txn.open_table(META)?;
        let v = meta.get("schema_version")?;
        match v {
            None => 0,
            Some(v) => v
                .value()
                .parse::<u32>()
                .map_err(|_| StorageError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("meta.schema_version is {:?}", v.value()),
                })?,
        }
    };
    if found > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for step in &MIGRATIONS[found as usize..] {
        step(txn)?;
    }
    // Tables of the current version exist even when an older step did not create them all.
    create_all(txn)?;
    if found != SCHEMA_VERSION {
        let mut meta = txn.open_table(META)?;
        meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())?;
    }
    Ok(found)
}
