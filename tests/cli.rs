//! The `lothub` binary as operators use it: sub-commands, exit codes, messages, and a real start,
//! MQTT CONNECT and SIGTERM shutdown. Only 127.0.0.1 is used; every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod tls_support;

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

/// Starts the binary with `args`, stderr captured for [`stop`].
fn spawn_hub(args: &[&std::ffi::OsStr]) -> Hub {
    let child = lothub()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Hub(child)
}

/// SIGTERM, then the exit status (within 10 s) and everything the hub logged.
fn stop(mut hub: Hub) -> (Option<i32>, String) {
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
    (status.code(), log)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn hub_starts_accepts_a_connect_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = local(free_port());
    let listen = addr.to_string();
    let mut hub = spawn_hub(&[
        "--listen".as_ref(),
        listen.as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);

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

    let (code, log) = stop(hub);
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(
        log.contains(&listen),
        "start line names the listener:\n{log}"
    );
    assert!(
        log.contains(&data.display().to_string()),
        "and the data dir:\n{log}"
    );
}

#[test]
fn tls_and_ws_listeners_of_a_config_file_serve_mqtt() {
    let pki = tls_support::Pki::new("lothub test CA");
    let files = tls_support::ServerFiles::new(&pki.leaf("localhost"));
    let (tcp, tls, ws) = (local(free_port()), local(free_port()), local(free_port()));
    let config = format!(
        "[[listeners]]\nkind = \"tcp\"\nbind = \"{tcp}\"\n\
         [[listeners]]\nkind = \"tls\"\nbind = \"{tls}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [[listeners]]\nkind = \"ws\"\nbind = \"{ws}\"\n",
        files.cert.display(),
        files.key.display()
    );
    let config_path = files.path().join("hub.toml");
    std::fs::write(&config_path, config).unwrap();
    let data = files.path().join("data");
    let mut hub = spawn_hub(&[
        "--config".as_ref(),
        config_path.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    for addr in [tcp, tls, ws] {
        wait_for_port(&mut hub, addr);
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Errors are collected rather than unwrapped so that a failure shows the hub's log.
    let outcome: Result<(), String> = runtime.block_on(async {
        let client = tls_support::client_config(&pki.cert_pem, None);
        let stream = tls_support::tls_connect(tls, client)
            .await
            .map_err(|e| format!("TLS connect: {e}"))?;
        let ack = tls_support::Mqtt::new(stream)
            .connect("over-tls", None)
            .await
            .map_err(|e| format!("MQTT over TLS: {e:?}"))?;
        if ack.reason != 0 {
            return Err(format!("CONNACK over TLS refused: {ack:?}"));
        }

        let mut request = format!("ws://{ws}/mqtt").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
        let wait = tls_support::WAIT;
        let (mut socket, _) = tokio::time::timeout(wait, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| "WebSocket upgrade timed out".to_string())?
            .map_err(|e| format!("WebSocket upgrade: {e}"))?;
        socket
            .send(Message::Binary(CONNECT_311.to_vec().into()))
            .await
            .map_err(|e| format!("WebSocket send: {e}"))?;
        let reply = tokio::time::timeout(wait, socket.next())
            .await
            .map_err(|_| "no CONNACK over WebSocket within 5 s".to_string())?
            .ok_or("WebSocket closed before CONNACK")?
            .map_err(|e| format!("WebSocket read: {e}"))?;
        if reply.clone().into_data().as_ref() != [0x20, 0x02, 0x00, 0x00] {
            return Err(format!("unexpected reply over WebSocket: {reply:?}"));
        }
        Ok(())
    });

    let (code, log) = stop(hub);
    if let Err(e) = outcome {
        panic!("{e}\nlog:\n{log}");
    }
    assert_eq!(code, Some(0), "log:\n{log}");
    for addr in [tcp, tls, ws] {
        assert!(
            log.contains(&addr.to_string()),
            "{addr} in the start line:\n{log}"
        );
    }
}

#[test]
fn unusable_certificate_refuses_to_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let out = run(&["--config", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("listeners[0]: "), "{}", stderr(&out));
}

/// Starts a hub with `log_level = "error"` and the given `RUST_LOG`, waits for its port, stops it
/// and returns its log.
fn log_of_quiet_hub(rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let addr = local(free_port());
    let path = write_config(
        dir.path(),
        &format!("log_level = \"error\"\n[[listeners]]\nkind = \"tcp\"\nbind = \"{addr}\"\n"),
    );
    let mut cmd = lothub();
    cmd.args(["--config", &path, "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(value) = rust_log {
        cmd.env("RUST_LOG", value);
    }
    let mut hub = Hub(cmd.spawn().unwrap());
    wait_for_port(&mut hub, addr);
    let (code, log) = stop(hub);
    assert_eq!(code, Some(0), "log:\n{log}");
    log
}

#[test]
fn rust_log_wins_over_log_level() {
    let quiet = log_of_quiet_hub(None);
    assert!(
        !quiet.contains("running"),
        "log_level = error hides INFO:\n{quiet}"
    );
    let loud = log_of_quiet_hub(Some("info"));
    assert!(
        loud.contains("running"),
        "RUST_LOG=info shows the start line:\n{loud}"
    );
}

#[test]
fn lot_check_reports_valid_and_invalid_files() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("lot-examples/rules");
    let valid: Vec<std::path::PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lot"))
        .collect();
    assert!(
        !valid.is_empty(),
        "no LOT examples in {}",
        examples.display()
    );
    let out = lothub()
        .args(["lot", "check"])
        .args(&valid)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("RULE"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lot");
    std::fs::write(&bad, "DEFINE RULE x\nbad stuff\n").unwrap();
    let out = lothub().args(["lot", "check"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:1:", bad.display())),
        "file:line:col in {err}"
    );
}
