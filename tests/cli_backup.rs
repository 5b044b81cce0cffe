//! Start-up safety and the offline storage commands through the real binary: a second hub on
//! the same data directory is refused naming the first one's process; a corrupt data file is
//! refused with its path and the recovery command; `--recover` moves it aside and starts empty;
//! `lothub backup` / `lothub restore` round-trip the configuration, and restore refuses a
//! non-empty directory without `--force`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Kills the child on drop so a failing assertion never leaves a hub running.
struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hub_command(dir: &Path, port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lothub"));
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--root-password", "x"])
        .args(extra)
        .env_remove("RUST_LOG");
    cmd
}

/// Starts a hub whose stderr goes to `log`, and waits until it listens.
fn start(dir: &Path, extra: &[&str], log: &Path) -> Hub {
    let port = free_port();
    let child = hub_command(dir, port, extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut hub = Hub(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = hub.0.try_wait() {
            panic!(
                "lothub exited early with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return hub;
        }
        assert!(Instant::now() < deadline, "lothub did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a hub expected to refuse to start; returns its output (bounded: it must exit).
fn refused(dir: &Path, extra: &[&str]) -> Output {
    let mut child = hub_command(dir, free_port(), extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lothub did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn lothub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lothub"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_second_hub_on_the_same_data_dir_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let first = start(&dir, &[], &tmp.path().join("first.log"));
    let out = refused(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("is in use by another running hub")
            && err.contains(&format!("(process {})", first.0.id())),
        "{err}"
    );
    assert!(
        err.contains(&dir.join("lothub.redb").display().to_string()),
        "{err}"
    );
}

#[test]
fn a_corrupt_data_file_is_refused_then_recovered_with_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let data_file = dir.join("lothub.redb");
    let garbage = b"this is not a redb file at all, just bytes".repeat(200);
    std::fs::write(&data_file, &garbage).unwrap();

    let out = refused(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "data file {} is corrupt or unreadable",
            data_file.display()
        )) && err.contains("--recover"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&data_file).unwrap(),
        garbage,
        "never overwritten"
    );

    let log = tmp.path().join("recover.log");
    let hub = start(&dir, &["--recover"], &log);
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lothub.redb.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(dir.join(&aside[0])).unwrap(), garbage);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("moved the unreadable data file aside") && said.contains(&aside[0]),
        "{said}"
    );
    drop(hub);

    // A readable file is never moved by --recover.
    let log = tmp.path().join("again.log");
    let hub = start(&dir, &["--recover"], &log);
    drop(hub);
    let count = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("lothub.redb.corrupt-")
        })
        .count();
    assert_eq!(count, 1);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("nothing to recover")
    );
}

#[test]
fn backup_and_restore_round_trip_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    // A first start seeds root and the seed rules; then an extra user, offline.
    drop(start(&a, &[], &tmp.path().join("a.log")));
    let a_str = a.to_str().unwrap();
    let out = lothub(&[
        "user",
        "add",
        "alice",
        "pw-1",
        "--group",
        "ops",
        "--data-dir",
        a_str,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let file = tmp.path().join("backup.json");
    let file_str = file.to_str().unwrap();
    let out = lothub(&["backup", file_str, "--data-dir", a_str]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backed up 2 users"),
        "{}",
        text(&out.stdout)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let users: Vec<&str> = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(users.contains(&"alice") && users.contains(&"root"), "{doc}");
    assert!(
        !doc["definitions"].as_array().unwrap().is_empty(),
        "the seed rules are in the backup"
    );

    // Into a new directory.
    let b = tmp.path().join("b");
    let b_str = b.to_str().unwrap();
    let out = lothub(&["restore", file_str, "--data-dir", b_str]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = tmp.path().join("again.json");
    let out = lothub(&["backup", again.to_str().unwrap(), "--data-dir", b_str]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc_b: serde_json::Value = serde_json::from_slice(&std::fs::read(&again).unwrap()).unwrap();
    assert_eq!(doc, doc_b, "the restored configuration differs");
    let out = lothub(&["user", "list", "--data-dir", b_str]);
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("alice\t") && l.ends_with("groups: ops")),
        "{listing}"
    );

    // A hub started on the restored directory runs with it.
    drop(start(&b, &[], &tmp.path().join("b.log")));
    let out = lothub(&["backup", again.to_str().unwrap(), "--data-dir", b_str]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc_started: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&again).unwrap()).unwrap();
    assert_eq!(
        doc["definitions"], doc_started["definitions"],
        "the first start after a restore must not re-seed the rules"
    );

    // A non-empty directory needs --force.
    let out = lothub(&["restore", file_str, "--data-dir", a_str]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    let out = lothub(&["user", "remove", "alice", "--data-dir", a_str]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lothub(&["restore", file_str, "--data-dir", a_str, "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lothub(&["user", "list", "--data-dir", a_str]);
    assert!(
        text(&out.stdout).contains("alice"),
        "alice is back after restore --force"
    );

    // Not a backup: refused, nothing changed.
    std::fs::write(&file, "{\"nope\": 1}").unwrap();
    let out = lothub(&["restore", file_str, "--data-dir", a_str, "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not a lothub backup"),
        "{}",
        text(&out.stderr)
    );
}
