//! `lothub backup FILE` and `lothub restore FILE`: the configuration of a *stopped* hub as one
//! JSON document ([`ConfigSnapshot`]: users with their hashes, LOT definitions in deployment
//! order, env, secrets still sealed), and `--recover` for a corrupt data file.
//!
//! Both open the data directory's [`Storage`] directly, so a running hub (which holds the redb
//! lock) makes them fail with "in use by another running hub (process N)" instead of writing
//! behind its back; on a running hub use `-backup` / `-restore` over MQTT. The backup file is
//! written atomically (temporary file, fsync, rename); the restore replaces the configuration
//! in one transaction ([`Storage::replace_configuration`]). Run-time state (retained messages,
//! sessions, KEEP values) is not part of a backup: see docs/storage.md, "Backup and restore".
//!
//! Must not touch: the running hub. Start reading at [`run_backup`].

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::{ConfigSnapshot, DATA_FILE, KEY_FILE, Storage, StorageError};

/// The meta key the runtime sets once it has seeded a new data directory (root and the seed
/// rules); a restore sets it so the first start after it keeps the restored rules as they are.
const SEEDED: &str = "seeded";

/// `lothub backup FILE`: returns the process exit code (0 ok, 1 failure, message on stderr).
pub fn run_backup(file: &Path, data_dir: &Path) -> i32 {
    report("backup", backup(file, data_dir))
}

/// `lothub restore FILE`: returns the process exit code.
pub fn run_restore(file: &Path, data_dir: &Path, force: bool) -> i32 {
    report("restore", restore(file, data_dir, force))
}

fn report(what: &str, result: Result<String, String>) -> i32 {
    match result {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(message) => {
            eprintln!("lothub {what}: {message}");
            1
        }
    }
}

/// Exports the configuration of `data_dir` into `file`; returns what to print.
pub fn backup(file: &Path, data_dir: &Path) -> Result<String, String> {
    let data_file = data_dir.join(DATA_FILE);
    if !data_file.exists() {
        return Err(format!(
            "no data file at {} (is --data-dir right?)",
            data_file.display()
        ));
    }
    let storage = Storage::open(data_dir).map_err(|e| e.to_string())?;
    let snapshot = storage.export_configuration().map_err(|e| e.to_string())?;
    let mut json = serde_json::to_vec_pretty(&snapshot).map_err(|e| e.to_string())?;
    json.push(b'\n');
    write_atomically(file, &json).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(format!(
        "backed up {} users, {} definitions, {} env variables and {} secrets (still sealed: keep {} of {} apart) to {}",
        snapshot.users.len(),
        snapshot.definitions.len(),
        snapshot.env.len(),
        snapshot.secrets.len(),
        KEY_FILE,
        data_dir.display(),
        file.display()
    ))
}

/// Replaces the configuration of `data_dir` with the document in `file`; returns what to print.
/// A directory that already holds anything needs `force`.
pub fn restore(file: &Path, data_dir: &Path, force: bool) -> Result<String, String> {
    let text = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let snapshot: ConfigSnapshot = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a lothub backup: {e}", file.display()))?;
    let occupied = std::fs::read_dir(data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied && !force {
        return Err(format!(
            "the data directory {} is not empty; restore into a new directory, or add --force to replace its configuration (users, definitions, env, secrets)",
            data_dir.display()
        ));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let key_existed = data_dir.join(KEY_FILE).exists();
    let storage = Storage::open(data_dir).map_err(|e| e.to_string())?;
    storage
        .replace_configuration(&snapshot)
        .map_err(|e| e.to_string())?;
    storage.set_meta(SEEDED, "1").map_err(|e| e.to_string())?;
    let mut message = format!(
        "restored {} users, {} definitions, {} env variables and {} secrets into {}",
        snapshot.users.len(),
        snapshot.definitions.len(),
        snapshot.env.len(),
        snapshot.secrets.len(),
        data_dir.display()
    );
    if !snapshot.secrets.is_empty() && !key_existed {
        message.push_str(&format!(
            "; the secrets open only with the {KEY_FILE} of the hub that sealed them: copy it into {} before starting",
            data_dir.display()
        ));
    }
    Ok(message)
}

/// `--recover`: if the data file of `data_dir` is corrupt or unreadable, moves it aside (to
/// `lothub.redb.corrupt-<unix seconds>`) so the hub starts empty, and returns the new name. A
/// readable file (or none) is left alone (`Ok(None)`): `--recover` never throws away good data.
/// A locked file or one from a newer lothub is an error, as at a normal start.
pub fn recover(data_dir: &Path) -> Result<Option<PathBuf>, String> {
    if !data_dir.join(DATA_FILE).exists() {
        return Ok(None);
    }
    match Storage::open(data_dir) {
        Ok(storage) => {
            drop(storage);
            Ok(None)
        }
        Err(StorageError::Corrupt { .. }) => Storage::recover(data_dir)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, then renames it over `path`:
/// a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_string());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
