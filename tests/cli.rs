//! The `lothub` binary as operators use it: sub-commands, exit codes, messages, and a real start,
//! MQTT CONNECT and SIGTERM shutdown. Only 127.0.0.1 is used; every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn lothub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lothub"));
    cmd.env_remove("RUST_LOG")
        .env_remove("LOTHUB_ROOT_PASSWORD");
    cmd
}

fn run(args: &[&str]) -> Output {
    lothub().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn config_print_is_the_default_file_byte_for_byte() {
    let out = run(&["config", "print"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lothub.toml")).unwrap();
    assert_eq!(out.stdout, file);
}

#[test]
fn help_lists_the_options_and_sub_commands() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--config <FILE>",
        "--listen <ADDR:PORT>",
        "--data-dir <DIR>",
        "--root-password <PW>",
        "config",
        "lot",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = run(&["lot", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("check"));
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("lothub.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn unknown_key_refuses_to_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[limits]\nmax_packet_sise = 4096\n");
    let out = run(&["--config", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("unknown key \"max_packet_sise\" (in [limits])"),
        "{err}"
    );
    assert!(err.contains(&path), "names the file: {err}");
}

#[test]
fn bad_value_refuses_to_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[[listeners]]\nkind = \"tcp\"\nbind = \"127.0.0.1:0\"\n\
         [[listeners]]\nkind = \"foo\"\nbind = \"127.0.0.1:0\"\n",
    );
    let out = run(&["--config", &path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "listeners[1].kind: unknown listener kind \"foo\", expected tcp, tls, ws or wss"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_config_file_and_bad_listen_exit_2() {
    let out = run(&["--config", "/nonexistent/lothub.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read config file /nonexistent/lothub.toml"));
    let out = run(&["--listen", "localhost:1883"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected IP:PORT"),
        "{}",
        stderr(&out)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child on drop so a failing assertion never leaves a hub running.
struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(hub: &mut Hub, addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = hub.0.try_wait() {
            panic!("lothub exited early with {status}");
        }
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            return s;
        }
        assert!(Instant::now() < deadline, "lothub did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// MQTT 3.1.1 CONNECT, clean session, keep-alive 60, client id "cli-test" (MQTT 3.1.1 3.1).
const CONNECT_311: &[u8] = &[
    0x10, 20, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 8, b'c', b'l', b'i', b'-', b't',
    b'e', b's', b't',
];

#[test]
fn hub_starts_accepts_a_connect_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = lothub()
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut hub = Hub(child);

    let mut stream = wait_for_port(&mut hub, addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(CONNECT_311).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    // CONNACK, remaining length 2, session present 0, return code 0 (accepted).
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    assert!(data.is_dir(), "data directory created");

    let pid = hub.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = hub.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    hub.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(
        log.contains(&addr.to_string()),
        "start line names the listener:\n{log}"
    );
    assert!(
        log.contains(&data.display().to_string()),
        "and the data dir:\n{log}"
    );
}
