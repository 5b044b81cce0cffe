//! `lothub user add|remove|passwd|list --data-dir DIR` through the binary, on a stopped hub's
//! data directory; then a hub started on that directory accepts the user. A data directory held
//! by a running hub (here: this process, which has the redb file open) is refused with a clear
//! message.

mod commands_support;
mod common;

use commands_support::*;
use lothub::storage::Storage;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn lothub(args: &[&str], dir: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--data-dir");
    all.push(dir.to_str().unwrap());
    Command::new(env!("CARGO_BIN_EXE_lothub"))
        .args(&all)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn add_list_passwd_remove_on_a_stopped_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = lothub(
        &[
            "user",
            "add",
            "alice",
            "pw-1",
            "--flag",
            "AllowedSystemConfiguration",
            "--group",
            "ops",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "user \"alice\" added");

    let out = lothub(&["user", "list"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert_eq!(
        listing.trim(),
        "alice\tflags: AllowedSystemConfiguration\tgroups: ops"
    );
    assert!(!listing.contains("argon2"));

    // The password from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lothub"))
        .args([
            "user",
            "passwd",
            "alice",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw-2\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let storage = Storage::open(dir.path()).unwrap();
    let alice = storage.get_user("alice").unwrap().unwrap();
    assert!(alice.password_hash.starts_with("$argon2id$"));
    assert!(lothub::auth::verify_password(&alice.password_hash, b"pw-2"));
    assert_eq!(alice.flags.get("AllowedSystemConfiguration"), Some(&true));
    drop(storage);

    let out = lothub(&["user", "remove", "root"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("root cannot be removed"));
    let out = lothub(&["user", "remove", "alice"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lothub(&["user", "remove", "alice"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no user \"alice\""));
    let out = lothub(&["user", "add", "bad+name", "x"], dir.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_running_hub_holds_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let out = lothub(&["user", "add", "bob", "pw"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("the hub is running"), "{err}");
    drop(storage);
}

#[tokio::test]
async fn the_hub_started_on_the_dir_accepts_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let out = lothub(&["user", "add", "carol", "pw-c"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let storage = Storage::open(dir.path()).unwrap();
    let h = start_cmd_hub_on(Some(storage)).await;
    assert_eq!(h.connack_v5("c1", "carol", "pw-c").await, 0x00);
    assert_eq!(h.connack_v5("c2", "carol", "nope").await, 0x86);
    // First start still created root and the seed rules.
    assert_eq!(h.connack_v5("r1", "root", ROOT_PW).await, 0x00);
    let mut op = h.operator().await;
    let r = ok(op.cmd("-list Rules").await, "List");
    assert!(r["data"].as_array().unwrap().len() >= 20, "{r}");
    h.shutdown().await;
}
