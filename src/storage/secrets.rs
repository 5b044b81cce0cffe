//! Secrets at rest: the key file (`<data_dir>/secret.key`, created once with mode 0600) and the
//! ChaCha20-Poly1305 sealing of each value (random 96-bit nonce per value, stored beside the
//! ciphertext; the secret's name is the associated data).
//!
//! The key never enters the redb file, so a copy of `lothub.redb` alone (a backup, a stolen
//! disk image of the data file) does not reveal a secret.

use super::error::StorageError;
use super::tables::SECRETS;
use super::{Storage, Tx};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use redb::ReadableTable;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

const NONCE_LEN: usize = 12;

/// Reads the key file, or creates it (mode 0600, 32 random bytes as 64 hex digits) if absent.
pub(crate) fn load_or_create_key(path: &Path) -> Result<ChaCha20Poly1305, StorageError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), "secret key file is readable by other users; chmod 600 it");
            }
            let key = parse_hex_key(text.trim()).ok_or_else(|| StorageError::KeyFile {
                path: path.to_path_buf(),
                detail: "expected 64 hexadecimal digits (a 32-byte key)".into(),
            })?;
            Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            // create_new: never overwrite a key another process wrote meanwhile; mode 0600 is
            // applied at creation, so there is no window in which the file is world-readable.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| StorageError::io(path, e))?;
            file.write_all(format!("{hex}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| StorageError::io(path, e))?;
            tracing::info!(path = %path.display(), "created the secret key file; back it up with the data file");
            Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
        }
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// A random key for an in-memory store.
pub(crate) fn ephemeral_key() -> ChaCha20Poly1305 {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

fn parse_hex_key(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

pub(crate) fn seal(cipher: &ChaCha20Poly1305, name: &str, value: &str) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: value.as_bytes(),
                aad: name.as_bytes(),
            },
        )
        .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub(crate) fn open(
    cipher: &ChaCha20Poly1305,
    name: &str,
    sealed: &[u8],
) -> Result<String, StorageError> {
    let fail = |detail: &str| StorageError::Secret {
        name: name.to_string(),
        detail: detail.to_string(),
    };
    if sealed.len() < NONCE_LEN + 16 {
        return Err(fail("stored value is too short"));
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: name.as_bytes(),
            },
        )
        .map_err(|_| fail("authentication failed (wrong key or altered value)"))?;
    String::from_utf8(plain).map_err(|_| fail("value is not UTF-8"))
}

impl Storage {
    /// Stores `value` encrypted under the hub's key (replaces any previous value).
    pub fn set_secret(&self, name: &str, value: &str) -> Result<(), StorageError> {
        let sealed = seal(&self.inner.cipher, name, value);
        self.write(|tx: &Tx| {
            tx.open_table(SECRETS)?.insert(name, sealed.as_slice())?;
            Ok(())
        })
    }

    /// The decrypted value of secret `name`.
    pub fn get_secret(&self, name: &str) -> Result<Option<String>, StorageError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        match table.get(name)? {
            Some(v) => open(&self.inner.cipher, name, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Removes secret `name`; `false` if there was none.
    pub fn remove_secret(&self, name: &str) -> Result<bool, StorageError> {
        self.write(|tx: &Tx| Ok(tx.open_table(SECRETS)?.remove(name)?.is_some()))
    }

    /// The names of every secret, sorted (values are never listed).
    pub fn list_secret_names(&self) -> Result<Vec<String>, StorageError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        let mut names = Vec::new();
        for row in table.iter()? {
            let (k, _) = row?;
            names.push(k.value().to_string());
        }
        Ok(names)
    }
}
