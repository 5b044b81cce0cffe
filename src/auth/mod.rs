//! # auth: passwords and the root bootstrap
//!
//! Owns password hashing (argon2id, PHC strings: `$argon2id$v=19$m=...`), verification, the
//! choice of root's first password, and a small cache of successful verifications so that a
//! reconnect storm does not pay a full argon2 hash per CONNECT. Must not touch: storage (the
//! runtime stores the PHC strings), rules, the broker. Start reading at [`hash_password`].
//!
//! Threading: hashing and verification are deliberately slow (tens of milliseconds); callers run
//! them on the blocking pool (the broker calls `Hooks::authenticate` there).
//!
//! # The verification cache ([`VerifyCache`])
//! After a password verified against a stored hash, the cache keeps, per user name, the stored
//! PHC string and a *cheap* argon2id digest of the password under a salt drawn at random when
//! the process starts (never stored). A later CONNECT with the same user compares the cheap digest
//! of the offered password instead of running the full hash. The entry is used only while the
//! stored PHC string is the same one, so a password change or a removed user invalidates it
//! without a call. Failures are never cached (a wrong password always costs a full hash).
//! Cost of the trade: someone who can read the hub's memory could brute-force the cheap digest
//! faster than the stored hash; such an attacker could read passwords off the wire anyway.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use thiserror::Error;

/// The name of the user that rules never restrict (spec §2, anti-lockout).
pub const ROOT_USER: &str = "root";
/// Root's password when none is given (the Coreflux default), with a WARN at every start.
pub const DEFAULT_ROOT_PASSWORD: &str = "coreflux";
/// The environment variable that gives root's first password.
pub const ROOT_PASSWORD_ENV: &str = "LOTHUB_ROOT_PASSWORD";
/// The most users the verification cache remembers; beyond it, it starts over.
const CACHE_CAPACITY: usize = 4096;

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// A new argon2id PHC string for `password` (random salt, the argon2 crate's default cost).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. An unparsable or empty string never matches.
pub fn verify_password(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Root's first password and where it came from, most important first: the command line, the
/// environment, the config, else [`DEFAULT_ROOT_PASSWORD`] (the source is named in the log).
pub fn bootstrap_root_password<'a>(
    cli: Option<&'a str>,
    env: Option<&'a str>,
    config: Option<&'a str>,
) -> (&'a str, &'static str) {
    match (cli, env, config) {
        (Some(p), _, _) => (p, "--root-password"),
        (None, Some(p), _) => (p, ROOT_PASSWORD_ENV),
        (None, None, Some(p)) => (p, "config auth.root_password"),
        (None, None, None) => (DEFAULT_ROOT_PASSWORD, "the default"),
    }
}

/// Successful verifications, see the module header.
pub struct VerifyCache {
    hasher: Argon2<'static>,
    salt: [u8; 16],
    entries: Mutex<HashMap<String, (String, [u8; 32])>>,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyCache")
            .field("entries", &self.entries.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        // The smallest argon2id cost: a keyed digest, not a password hash (see the header).
        let params = Params::new(Params::MIN_M_COST, 1, 1, Some(32)).expect("valid argon2 params");
        VerifyCache {
            hasher: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            salt,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl VerifyCache {
    fn digest(&self, password: &[u8]) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        self.hasher
            .hash_password_into(password, &self.salt, &mut out)
            .ok()?;
        Some(out)
    }

    /// Verifies `password` for `user` against the stored `phc`, through the cache.
    pub fn verify(&self, user: &str, phc: &str, password: &[u8]) -> bool {
        let digest = self.digest(password);
        if let Some(d) = digest {
            let hit = self
                .entries
                .lock()
                .get(user)
                .is_some_and(|(stored, cached)| stored == phc && constant_eq(cached, &d));
            if hit {
                return true;
            }
        }
        if !verify_password(phc, password) {
            return false;
        }
        if let Some(d) = digest {
            let mut entries = self.entries.lock();
            if entries.len() >= CACHE_CAPACITY && !entries.contains_key(user) {
                entries.clear();
            }
            entries.insert(user.to_string(), (phc.to_string(), d));
        }
        true
    }

    /// Forgets `user` (password changed or user removed; the PHC check would catch it too).
    pub fn forget(&self, user: &str) {
        self.entries.lock().remove(user);
    }
}

/// Compares two digests without an early exit.
fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("s3cret"));
        assert!(verify_password(&h, b"s3cret"));
        assert!(!verify_password(&h, b"wrong"));
        assert!(!verify_password("", b""));
        assert!(!verify_password("not a hash", b"x"));
    }

    #[test]
    fn cache_accepts_the_right_password_only_and_follows_the_stored_hash() {
        let cache = VerifyCache::default();
        let h1 = hash_password("one").unwrap();
        assert!(cache.verify("u", &h1, b"one"));
        assert!(cache.verify("u", &h1, b"one"), "cached path");
        assert!(!cache.verify("u", &h1, b"two"));
        let h2 = hash_password("two").unwrap();
        assert!(
            !cache.verify("u", &h2, b"one"),
            "old password after a change"
        );
        assert!(cache.verify("u", &h2, b"two"));
    }

    #[test]
    fn bootstrap_source_order() {
        assert_eq!(
            bootstrap_root_password(Some("a"), Some("b"), Some("c")),
            ("a", "--root-password")
        );
        assert_eq!(
            bootstrap_root_password(None, Some("b"), Some("c")),
            ("b", ROOT_PASSWORD_ENV)
        );
        assert_eq!(bootstrap_root_password(None, None, Some("c")).0, "c");
        assert_eq!(
            bootstrap_root_password(None, None, None),
            (DEFAULT_ROOT_PASSWORD, "the default")
        );
    }
}
