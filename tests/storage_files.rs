//! Storage on real files in a temp dir: everything comes back after a reopen, secrets are not
//! in the file in clear, the key file is private, and a locked or corrupt file refuses to open
//! with an error naming it.

use lothub::storage::{
    DATA_FILE, DefinitionKind, KEY_FILE, PID_FILE, Storage, StorageError, UserRecord,
};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

const SECRET: &str = "plaintext-Secret-4f1c9a";

fn root() -> UserRecord {
    UserRecord {
        name: "root".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        flags: BTreeMap::from([("AllowedSystemConfiguration".into(), true)]),
        groups: BTreeSet::from(["admins".into()]),
    }
}

fn fill(s: &Storage) {
    s.put_user(&root()).unwrap();
    s.put_definition(DefinitionKind::Model, "M", "DEFINE MODEL M")
        .unwrap();
    s.put_definition(DefinitionKind::Rule, "R", "DEFINE RULE R")
        .unwrap();
    s.set_env("PLANT", "Porto").unwrap();
    s.set_secret("db_password", SECRET).unwrap();
    s.keep_topic("kept/a", b"42").unwrap();
    s.set_meta("seeded", "1").unwrap();
}

#[test]
fn reopen_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(dir.path()).unwrap();
        fill(&s);
        assert_eq!(s.path(), dir.path().join(DATA_FILE));
    }
    let s = Storage::open(dir.path()).unwrap();
    assert_eq!(s.get_user("root").unwrap(), Some(root()));
    let defs = s.list_all_definitions().unwrap();
    assert_eq!(
        defs.iter()
            .map(|d| (d.kind, d.name.as_str(), d.source.as_str()))
            .collect::<Vec<_>>(),
        [
            (DefinitionKind::Model, "M", "DEFINE MODEL M"),
            (DefinitionKind::Rule, "R", "DEFINE RULE R")
        ]
    );
    assert_eq!(s.get_env("PLANT").unwrap().as_deref(), Some("Porto"));
    assert_eq!(
        s.get_secret("db_password").unwrap().as_deref(),
        Some(SECRET)
    );
    assert_eq!(
        s.kept_topics().unwrap(),
        vec![("kept/a".to_string(), b"42".to_vec())]
    );
    assert_eq!(s.get_meta("seeded").unwrap().as_deref(), Some("1"));
}

#[test]
fn secrets_are_not_in_the_data_file_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(dir.path()).unwrap();
        fill(&s);
    }
    let raw = std::fs::read(dir.path().join(DATA_FILE)).unwrap();
    // Sanity: the search would find an unencrypted value (env values are stored in clear).
    assert!(raw.windows(5).any(|w| w == b"Porto"));
    assert!(!raw.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    // Without its key file the data file cannot give the secret back.
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let s = Storage::open(dir.path()).unwrap();
    assert!(matches!(
        s.get_secret("db_password"),
        Err(StorageError::Secret { .. })
    ));
}

#[test]
fn key_file_is_created_with_mode_0600_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    drop(Storage::open(dir.path()).unwrap());
    let key_path = dir.path().join(KEY_FILE);
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key.trim().len(), 64);
    drop(Storage::open(dir.path()).unwrap());
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
}

#[test]
fn a_bad_key_file_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(KEY_FILE), "short").unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::KeyFile { .. }), "{err}");
    assert!(err.to_string().contains(KEY_FILE), "{err}");
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Storage::open(dir.path()).unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    match &err {
        StorageError::Locked { path, holder } => {
            assert_eq!(path, &dir.path().join(DATA_FILE));
            assert_eq!(*holder, Some(std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(DATA_FILE) && text.contains("in use"),
        "{text}"
    );
    assert!(
        text.contains(&format!("process {}", std::process::id())),
        "{text}"
    );
    assert!(dir.path().join(PID_FILE).exists());
    drop(first);
    // Once the holder closes the file, it opens again.
    Storage::open(dir.path()).unwrap();
}

#[test]
fn a_corrupt_file_is_refused_with_its_path_and_recover_moves_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATA_FILE);
    std::fs::write(
        &path,
        b"this is not a database, just garbage bytes".repeat(100),
    )
    .unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("--recover"), "{text}");
    // The garbage is untouched: refusing must never overwrite the operator's file.
    assert!(std::fs::read(&path).unwrap().starts_with(b"this is not"));

    let aside = Storage::recover(dir.path()).unwrap();
    assert!(std::fs::read(&aside).unwrap().starts_with(b"this is not"));
    let s = Storage::open(dir.path()).unwrap();
    assert!(s.list_users().unwrap().is_empty());
}

#[test]
fn a_truncated_database_is_refused_not_emptied() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(dir.path()).unwrap();
        fill(&s);
    }
    let path = dir.path().join(DATA_FILE);
    let bytes = std::fs::read(&path).unwrap();
    // Keep the header (magic number) but cut the rest: the pages the header points to are gone.
    std::fs::write(&path, &bytes[..bytes.len().min(600)]).unwrap();
    let err = Storage::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(DATA_FILE), "{err}");
}
