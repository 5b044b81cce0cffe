//! `lothub user add|remove|passwd|list --data-dir DIR`: the user database of a *stopped* hub.
//!
//! Opens the data directory's [`Storage`] directly (a running hub holds the redb lock, so this
//! then fails with "the hub is running" instead of writing behind its back), hashes passwords
//! with the auth module's argon2id helper, and never prints a hash. On a running hub, use the
//! `-addUser` family of commands over MQTT instead (docs/commands.md).
//!
//! Must not touch: anything of the running hub; rules (a user's rights come from flags, groups
//! and rules, see docs/security.md).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::auth::ROOT_USER;
use crate::storage::{Storage, StorageError, UserRecord};

/// `lothub user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or replace one of the same name). The password is read from standard input
    /// (one line) when not given.
    Add {
        /// User name.
        name: String,
        /// Password (prefer standard input: command lines are visible to other local users).
        password: Option<String>,
        /// Flag to set, e.g. AllowedSystemConfiguration; repeatable.
        #[arg(long = "flag", value_name = "FLAG")]
        flags: Vec<String>,
        /// Group to join; repeatable.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Data directory of the stopped hub.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Remove a user (root cannot be removed).
    Remove {
        name: String,
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Change a user's password (read from standard input when not given).
    Passwd {
        name: String,
        password: Option<String>,
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// List users with their flags and groups (never password hashes).
    List {
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Runs one `lothub user` sub-command; returns the process exit code (0 ok, 1 failure, with
/// the message on stderr).
pub fn run(command: &UserCommand) -> i32 {
    match execute(command, &mut std::io::stdin().lock()) {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            0
        }
        Err(message) => {
            eprintln!("lothub user: {message}");
            1
        }
    }
}

/// Does the work; `stdin` supplies passwords not given as arguments. Returns what to print.
pub fn execute(command: &UserCommand, stdin: &mut dyn BufRead) -> Result<String, String> {
    match command {
        UserCommand::Add {
            name,
            password,
            flags,
            groups,
            data_dir,
        } => {
            check_name(name)?;
            let password = password_or_stdin(password.as_deref(), stdin)?;
            let storage = open(data_dir)?;
            let existed = storage.get_user(name).map_err(|e| e.to_string())?.is_some();
            let user = UserRecord {
                name: name.clone(),
                password_hash: hash(&password)?,
                flags: flags
                    .iter()
                    .map(|f| (f.clone(), true))
                    .collect::<BTreeMap<_, _>>(),
                groups: groups.iter().cloned().collect(),
            };
            storage.put_user(&user).map_err(|e| e.to_string())?;
            Ok(if existed {
                format!("user {name:?} replaced")
            } else {
                format!("user {name:?} added")
            })
        }
        UserCommand::Remove { name, data_dir } => {
            if name == ROOT_USER {
                return Err("root cannot be removed".into());
            }
            let storage = open(data_dir)?;
            if storage.remove_user(name).map_err(|e| e.to_string())? {
                Ok(format!("user {name:?} removed"))
            } else {
                Err(format!("no user {name:?}"))
            }
        }
        UserCommand::Passwd {
            name,
            password,
            data_dir,
        } => {
            let password = password_or_stdin(password.as_deref(), stdin)?;
            let storage = open(data_dir)?;
            let Some(mut user) = storage.get_user(name).map_err(|e| e.to_string())? else {
                return Err(format!("no user {name:?}"));
            };
            user.password_hash = hash(&password)?;
            storage.put_user(&user).map_err(|e| e.to_string())?;
            Ok(format!("password of {name:?} changed"))
        }
        UserCommand::List { data_dir } => {
            let storage = open(data_dir)?;
            let users = storage.list_users().map_err(|e| e.to_string())?;
            Ok(users.iter().map(describe).collect::<Vec<_>>().join("\n"))
        }
    }
}

/// One line per user: `name  flags: A, B  groups: g` (set flags only).
fn describe(user: &UserRecord) -> String {
    let flags: Vec<&str> = user
        .flags
        .iter()
        .filter(|(_, on)| **on)
        .map(|(f, _)| f.as_str())
        .collect();
    let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
    format!(
        "{}\tflags: {}\tgroups: {}",
        user.name,
        if flags.is_empty() {
            "-".to_string()
        } else {
            flags.join(", ")
        },
        if groups.is_empty() {
            "-".to_string()
        } else {
            groups.join(", ")
        },
    )
}

fn check_name(name: &str) -> Result<(), String> {
    // The runtime's rule: commands split on white space, and a name must never act as an MQTT
    // wildcard (CVE-2017-7650).
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '+' || c == '#';
    if name.is_empty() || name.chars().any(bad) {
        return Err(format!(
            "invalid user name {name:?}: no spaces, control characters, '+' or '#'"
        ));
    }
    Ok(())
}

fn password_or_stdin(given: Option<&str>, stdin: &mut dyn BufRead) -> Result<String, String> {
    let password = match given {
        Some(p) => p.to_string(),
        None => {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err("the password must not be empty".into());
    }
    Ok(password)
}

fn open(data_dir: &Path) -> Result<Storage, String> {
    if !data_dir.join(crate::storage::DATA_FILE).exists() && !data_dir.exists() {
        // Creating a data directory here is fine (a hub started on it later finds the users),
        // but a typo should not silently create one somewhere else: say where it went.
        eprintln!(
            "lothub user: creating data directory {}",
            data_dir.display()
        );
    }
    Storage::open(data_dir).map_err(|e| match e {
        StorageError::Locked { .. } => format!(
            "the hub is running on {} ({e}); stop it first, or manage users over MQTT with -addUser",
            data_dir.display()
        ),
        other => other.to_string(),
    })
}

fn hash(password: &str) -> Result<String, String> {
    crate::auth::hash_password(password).map_err(|e| e.to_string())
}
