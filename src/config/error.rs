//! The one error type of the config boundary. Every variant names the offending key (or the file
//! line for a syntax error) so an operator can fix the file without reading code.

use std::path::PathBuf;

/// Why a configuration was refused. `Display` is the message shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// A key that lothub does not know (usually a typo).
    #[error("unknown key \"{key}\" ({location}); known keys here: {expected}")]
    UnknownKey {
        /// The unknown key as written.
        key: String,
        /// `at top level`, `in [limits]`, `in listeners[1]`.
        location: String,
        /// The keys allowed at that place, comma-separated.
        expected: String,
    },
    /// A known key with a value lothub refuses.
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted path of the key: `limits.max_packet_size`, `listeners[1].kind`.
        key: String,
        /// Why the value is refused and what is expected.
        reason: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The dotted key the error is about, when it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }
}
