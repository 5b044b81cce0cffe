//! # storage: the hub's durable state in one redb file (the only code that imports redb)
//!
//! Owns `<data_dir>/lothub.redb` (every table is defined, with its key and value layout, in
//! [`tables`]), `<data_dir>/secret.key` (the key that encrypts secrets at rest) and
//! `<data_dir>/lothub.pid` (who holds the data file, for the "already in use" error).
//!
//! Two faces:
//! - [`Storage`]: a cheap-clone handle with the synchronous configuration API (users, LOT
//!   definitions, env, secrets, KEEP TOPIC values, meta, backup and restore). Each change is
//!   committed durably before the method returns, because a command's success reply depends on
//!   it; callers run these off the async workers (`spawn_blocking`).
//! - [`RedbStore`]: the broker's [`crate::broker::store::Store`] (retained messages, persistent
//!   sessions and their queues), fed by write-through events that a dedicated writer thread
//!   groups into one transaction every few milliseconds.
//!
//! Must not touch: MQTT semantics (the broker decides what is stored), password hashing (the
//! caller hands over PHC strings), LOT parsing (definitions are stored as source text).
//!
//! Start reading at [`Storage::open`], then [`tables`], then `config.rs` and `redb_store.rs`.
//! `docs/storage.md` states the durability guarantee and the backup procedure.

mod codec;
mod config;
mod error;
mod redb_store;
mod route_buffer;
mod secrets;
pub mod tables;
#[cfg(test)]
mod tests;

pub use config::{
    ConfigSnapshot, Definition, DefinitionChange, DefinitionKind, SealedSecret, UserRecord,
};
pub use error::StorageError;
pub use redb_store::{RedbStore, RedbStoreOptions, WriterStats};
pub use route_buffer::{BufferOp, BufferedMessage};

use chacha20poly1305::ChaCha20Poly1305;
use redb::{Database, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the database inside the data directory.
pub const DATA_FILE: &str = "lothub.redb";
/// File name of the secret key inside the data directory.
pub const KEY_FILE: &str = "secret.key";
/// File name holding the process id of the hub that has the data file open.
pub const PID_FILE: &str = "lothub.pid";

/// redb's page cache; the default (1 GiB) is far more than a hub needs on a small gateway.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

pub(crate) type Tx = WriteTransaction;

/// A handle on the open data file. Cloning is cheap (an `Arc`); every clone sees the same file.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    cipher: ChaCha20Poly1305,
    /// The database file, or `<memory>`; named in every error.
    path: PathBuf,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (creating if needed) `data_dir`, its `lothub.redb` and its `secret.key`, and
    /// brings the file to the current schema.
    ///
    /// Refuses with [`StorageError::Locked`] when another hub holds the file (naming its process
    /// id when known) and with [`StorageError::Corrupt`] when the file is not a readable lothub
    /// database: never a silent empty hub.
    pub fn open(data_dir: &Path) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
        let cipher = secrets::load_or_create_key(&data_dir.join(KEY_FILE))?;
        let path = data_dir.join(DATA_FILE);
        let pid_path = data_dir.join(PID_FILE);
        // redb asserts on some damaged files (a truncated one) instead of returning an error:
        // that is a corrupt file too, not a crash of the hub.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(&path)
        }))
        .map_err(|panic| StorageError::Corrupt {
            path: path.clone(),
            detail: panic_text(panic.as_ref()),
        })?;
        let db = opened.map_err(|e| open_error(&path, &pid_path, e))?;
        // Only the lock holder writes the pid file, so when the lock is refused later the file
        // names the holder. Best effort: a read-only directory must not stop the hub.
        if let Err(e) = std::fs::write(&pid_path, format!("{}\n", std::process::id())) {
            tracing::warn!(path = %pid_path.display(), error = %e, "cannot write the pid file");
        }
        Storage::init(db, cipher, path)
    }

    /// A fresh database in memory with a random secret key (tests, and hubs without a data
    /// directory).
    pub fn in_memory() -> Result<Storage, StorageError> {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StorageError::Database(e.to_string()))?;
        Storage::init(db, secrets::ephemeral_key(), PathBuf::from("<memory>"))
    }

    fn init(
        db: Database,
        cipher: ChaCha20Poly1305,
        path: PathBuf,
    ) -> Result<Storage, StorageError> {
        let txn = db.begin_write()?;
        let found = tables::migrate(&txn, &path)?;
        txn.commit()?;
        if found != tables::SCHEMA_VERSION {
            tracing::info!(path = %path.display(), from = found, to = tables::SCHEMA_VERSION, "storage schema migrated");
        }
        Ok(Storage {
            inner: Arc::new(Inner { db, cipher, path }),
        })
    }

    /// Moves a corrupt `lothub.redb` aside (to `lothub.redb.corrupt-<unix seconds>`) so that the
    /// next [`Storage::open`] starts empty; returns the new name. For the `--recover` option.
    pub fn recover(data_dir: &Path) -> Result<PathBuf, StorageError> {
        let path = data_dir.join(DATA_FILE);
        let aside = data_dir.join(format!("{DATA_FILE}.corrupt-{}", unix_now()));
        std::fs::rename(&path, &aside).map_err(|e| StorageError::io(&path, e))?;
        tracing::warn!(from = %path.display(), to = %aside.display(), "moved the data file aside; starting empty");
        Ok(aside)
    }

    /// The database file (or `<memory>`).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A value of the `meta` table (e.g. a "seeded" flag).
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StorageError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(tables::META)?;
        Ok(table.get(key)?.map(|v| v.value().to_string()))
    }

    /// Sets a value of the `meta` table, durably.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.open_table(tables::META)?.insert(key, value)?;
            Ok(())
        })
    }

    /// Runs `f` in one write transaction and commits it durably (fsync) before returning.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Tx) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let txn = self.inner.db.begin_write()?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }
}

/// Maps redb's open failures onto the operator-facing errors.
fn open_error(path: &Path, pid_path: &Path, e: redb::DatabaseError) -> StorageError {
    use redb::DatabaseError as D;
    use redb::StorageError as S;
    let corrupt = |detail: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    match e {
        D::DatabaseAlreadyOpen => StorageError::Locked {
            path: path.to_path_buf(),
            holder: std::fs::read_to_string(pid_path)
                .ok()
                .and_then(|s| s.trim().parse().ok()),
        },
        D::UpgradeRequired(v) => corrupt(format!("written in the older redb file format {v}")),
        D::Storage(S::Corrupted(detail)) => corrupt(detail),
        D::Storage(S::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            corrupt("not a lothub database (bad magic number)".into())
        }
        D::Storage(S::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
            ) =>
        {
            StorageError::io(path, io)
        }
        other => corrupt(other.to_string()),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the database engine panicked".into());
    format!("damaged file: {text}")
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
