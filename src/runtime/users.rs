//! Users as the hub sees them (commands-and-sys.md §3): the user API the `-addUser` ...
//! `-listUsers` verbs call, root's bootstrap, CONNECT authentication, and env and secrets
//! passed through to storage.
//!
//! Storage holds the truth (argon2id PHC strings, flags, groups); the runtime keeps an in-memory
//! map of [`UserView`]s, rebuilt after every change, so that a rule check never reads the
//! database. Every change bumps the decision epoch: cached delivery decisions that depended on a
//! user's flags or groups are recomputed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::rules::TopicMode;
use super::{Runtime, RuntimeError, is_root};
use crate::auth::{self, DEFAULT_ROOT_PASSWORD, ROOT_USER};
use crate::broker::{AuthDecision, AuthRequest};
use crate::lot::ast::Scope;
use crate::storage::UserRecord;

/// What rules and CONNECT need of a user.
#[derive(Debug)]
pub(crate) struct UserView {
    pub(crate) password_hash: String,
    /// The flags set to true.
    pub(crate) flags: Vec<String>,
    pub(crate) groups: Vec<String>,
}

/// A user as `-listUsers` and `$SYS/Coreflux/Config/Users` show it: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub flags: BTreeMap<String, bool>,
    pub groups: BTreeSet<String>,
}

/// The meta key that marks a seeded store.
const SEEDED: &str = "seeded";

/// User, flag and group names: not empty, no white space (commands split on it), no MQTT
/// wildcards (CVE-2017-7650: a name must never be able to act as a topic wildcard).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+' || c == '#')
}

impl Runtime {
    /// First start: root (with the bootstrap password) and the seed rules. Later starts only
    /// recreate root if it went missing (root cannot be removed through the runtime).
    pub(super) fn seed(&self) -> Result<(), RuntimeError> {
        let storage = &self.inner.storage;
        if storage.get_user(ROOT_USER)?.is_none() {
            let password = self
                .inner
                .settings
                .root_password
                .as_deref()
                .unwrap_or(DEFAULT_ROOT_PASSWORD);
            storage.put_user(&UserRecord {
                name: ROOT_USER.to_string(),
                password_hash: auth::hash_password(password)?,
                flags: BTreeMap::new(),
                groups: BTreeSet::new(),
            })?;
            tracing::info!("created the root user");
        }
        if storage.get_meta(SEEDED)?.is_none() {
            self.seed_rules()?;
            storage.set_meta(SEEDED, "1")?;
            tracing::info!("first start: seed rules deployed");
        }
        Ok(())
    }

    /// The WARN of commands-and-sys.md §3, at every start while root keeps the default password.
    pub(super) fn warn_default_root_password(&self) {
        let users = self.inner.users.read().clone();
        if let Some(root) = users.get(ROOT_USER)
            && auth::verify_password(&root.password_hash, DEFAULT_ROOT_PASSWORD.as_bytes())
        {
            tracing::warn!(
                "the root user still has the default password 'coreflux': change it (-changeUserPassword root <new>, or start a new data directory with --root-password / LOTHUB_ROOT_PASSWORD)"
            );
        }
    }

    /// Rebuilds the in-memory users from storage and bumps the decision epoch.
    pub(super) fn reload_users(&self) -> Result<(), RuntimeError> {
        let map: HashMap<String, Arc<UserView>> = self
            .inner
            .storage
            .list_users()?
            .into_iter()
            .map(|u| {
                let view = UserView {
                    password_hash: u.password_hash,
                    flags: u
                        .flags
                        .into_iter()
                        .filter_map(|(f, on)| on.then_some(f))
                        .collect(),
                    groups: u.groups.into_iter().collect(),
                };
                (u.name, Arc::new(view))
            })
            .collect();
        *self.inner.users.write() = Arc::new(map);
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Applies `change` to the stored user `name`, then refreshes the live view and
    /// `$SYS/Coreflux/Config/Users`.
    fn update_user<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut UserRecord) -> T,
    ) -> Result<T, RuntimeError> {
        let _guard = self.inner.write.lock();
        let mut user = self
            .inner
            .storage
            .get_user(name)?
            .ok_or_else(|| RuntimeError::NoSuchUser(name.to_string()))?;
        let out = change(&mut user);
        self.inner.storage.put_user(&user)?;
        self.users_changed()?;
        Ok(out)
    }

    fn users_changed(&self) -> Result<(), RuntimeError> {
        self.reload_users()?;
        self.publish_users();
        Ok(())
    }

    /// `-addUser`: a new user with no flags and no groups. Blocking (hashes the password).
    pub fn add_user(&self, name: &str, password: &str) -> Result<(), RuntimeError> {
        if !valid_name(name) {
            return Err(RuntimeError::InvalidUserName(name.to_string()));
        }
        let hash = auth::hash_password(password)?;
        let _guard = self.inner.write.lock();
        if self.inner.storage.get_user(name)?.is_some() {
            return Err(RuntimeError::UserExists(name.to_string()));
        }
        self.inner.storage.put_user(&UserRecord {
            name: name.to_string(),
            password_hash: hash,
            flags: BTreeMap::new(),
            groups: BTreeSet::new(),
        })?;
        self.users_changed()
    }

    /// `-removeUser`: `Ok(false)` if there was no such user; root cannot be removed. Clients
    /// already connected as that user stay connected, with no flags and no groups.
    pub fn remove_user(&self, name: &str) -> Result<bool, RuntimeError> {
        if is_root(Some(name)) {
            return Err(RuntimeError::RootProtected);
        }
        let _guard = self.inner.write.lock();
        let removed = self.inner.storage.remove_user(name)?;
        self.inner.verify.forget(name);
        if removed {
            self.users_changed()?;
        }
        Ok(removed)
    }

    /// `-changeUserPassword`. Blocking (hashes the password).
    pub fn change_password(&self, name: &str, password: &str) -> Result<(), RuntimeError> {
        let hash = auth::hash_password(password)?;
        self.update_user(name, |u| u.password_hash = hash)?;
        self.inner.verify.forget(name);
        Ok(())
    }

    /// `-changeUserSettings <user> <Flag> true|false` (built-in or custom flag).
    pub fn set_flag(&self, name: &str, flag: &str, value: bool) -> Result<(), RuntimeError> {
        if !valid_name(flag) {
            return Err(RuntimeError::InvalidName {
                what: "flag",
                name: flag.to_string(),
            });
        }
        self.update_user(name, |u| {
            u.flags.insert(flag.to_string(), value);
        })
    }

    /// `-addUserToGroup`; `Ok(false)` if the user already was in it.
    pub fn add_to_group(&self, name: &str, group: &str) -> Result<bool, RuntimeError> {
        if !valid_name(group) {
            return Err(RuntimeError::InvalidName {
                what: "group",
                name: group.to_string(),
            });
        }
        self.update_user(name, |u| u.groups.insert(group.to_string()))
    }

    /// `-removeUserFromGroup`; `Ok(false)` if the user was not in it.
    pub fn remove_from_group(&self, name: &str, group: &str) -> Result<bool, RuntimeError> {
        self.update_user(name, |u| u.groups.remove(group))
    }

    /// `-listUsers`: names, flags and groups, sorted by name; never hashes.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, RuntimeError> {
        Ok(self
            .inner
            .storage
            .list_users()?
            .into_iter()
            .map(|u| UserInfo {
                name: u.name,
                flags: u.flags,
                groups: u.groups,
            })
            .collect())
    }

    /// `-setEnv`.
    pub fn set_env(&self, name: &str, value: &str) -> Result<(), RuntimeError> {
        Ok(self.inner.storage.set_env(name, value)?)
    }

    /// `-removeEnv`; `Ok(false)` if it was not set.
    pub fn remove_env(&self, name: &str) -> Result<bool, RuntimeError> {
        Ok(self.inner.storage.remove_env(name)?)
    }

    /// `-listEnv`.
    pub fn list_env(&self) -> Result<BTreeMap<String, String>, RuntimeError> {
        Ok(self.inner.storage.list_env()?)
    }

    /// GET ENV.
    pub fn env(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        Ok(self.inner.storage.get_env(name)?)
    }

    /// `-setSecret` (stored encrypted).
    pub fn set_secret(&self, name: &str, value: &str) -> Result<(), RuntimeError> {
        Ok(self.inner.storage.set_secret(name, value)?)
    }

    /// `-removeSecret`; `Ok(false)` if it was not set.
    pub fn remove_secret(&self, name: &str) -> Result<bool, RuntimeError> {
        Ok(self.inner.storage.remove_secret(name)?)
    }

    /// `-listSecrets`: names only.
    pub fn list_secrets(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(self.inner.storage.list_secret_names()?)
    }

    /// GET SECRET.
    pub fn secret(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        Ok(self.inner.storage.get_secret(name)?)
    }

    fn is_identity_listener(&self, listener: &str) -> bool {
        self.inner
            .identity_listeners
            .read()
            .iter()
            .any(|l| **l == *listener)
    }

    /// CONNECT (commands-and-sys.md §3): an unknown user or a wrong password is
    /// `BadCredentials` (0x86 / 4); an anonymous client when anonymous access is off, or a
    /// client a Connect rule refuses, is `NotAuthorized` (0x87 / 5). Root skips the rules.
    pub(super) fn authenticate_request(&self, request: &AuthRequest) -> AuthDecision {
        match request.username.as_deref() {
            None => {
                // MQTT 3.1.1 §3.1.2.9: a password without a user name is not a credential.
                if request.password.is_some() {
                    return AuthDecision::BadCredentials;
                }
                if !self.inner.settings.allow_anonymous {
                    return AuthDecision::NotAuthorized;
                }
            }
            Some(_) if self.is_identity_listener(&request.client.listener) => {
                // The transport verified the certificate and took its CN as the user name.
            }
            Some(name) => {
                let users = self.inner.users.read().clone();
                let (Some(user), Some(password)) = (users.get(name), request.password.as_ref())
                else {
                    return AuthDecision::BadCredentials;
                };
                if !self
                    .inner
                    .verify
                    .verify(name, &user.password_hash, password)
                {
                    return AuthDecision::BadCredentials;
                }
            }
        }
        if self.check(&request.client, Scope::Connect, TopicMode::Name, None) {
            AuthDecision::Allow
        } else {
            AuthDecision::NotAuthorized
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        assert!(valid_name("sensor-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("dev+"));
        assert!(!valid_name("#"));
    }
}
