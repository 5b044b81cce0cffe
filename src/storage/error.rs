//! [`StorageError`]: every way the storage module can fail, worded for an operator (each start-up
//! failure names the file and what to do about it).

use std::path::PathBuf;
use thiserror::Error;

/// A failure of the storage module.
#[derive(Debug, Error)]
pub enum StorageError {
    /// Another process (normally another running hub) holds the data file's lock.
    #[error(
        "data file {path} is in use by another running hub{}; stop that hub or use another data directory",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, holder: Option<u32> },

    /// The data file cannot be read as a lothub database.
    #[error(
        "data file {path} is corrupt or unreadable ({detail}); start with --recover to move it aside and start empty, or restore a backup"
    )]
    Corrupt { path: PathBuf, detail: String },

    /// The data file was written by a newer lothub.
    #[error(
        "data file {path} has schema version {found}, this lothub understands up to {supported}; upgrade lothub"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The secret key file exists but is not a 32-byte key.
    #[error("secret key file {path} is invalid: {detail}")]
    KeyFile { path: PathBuf, detail: String },

    /// A secret could not be decrypted (the key file does not belong to this data file, or the
    /// stored value was tampered with).
    #[error("secret {name:?} cannot be decrypted with this hub's secret.key: {detail}")]
    Secret { name: String, detail: String },

    /// A stored value does not follow its table's layout.
    #[error("table {table}: stored value cannot be decoded: {detail}")]
    Decode { table: &'static str, detail: String },

    /// An error from the database engine while the hub runs.
    #[error("database error: {0}")]
    Database(String),

    /// The RedbStore writer thread has stopped; nothing more can be made durable.
    #[error("the storage writer thread has stopped")]
    WriterGone,
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
}

macro_rules! database_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> StorageError {
                StorageError::Database(e.to_string())
            }
        }
    )*};
}

database_error!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
