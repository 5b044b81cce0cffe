//! The durability guarantee through the real binary (docs/storage.md, "Durability"): once the
//! hub has sent PUBACK for a QoS 1 PUBLISH, the message survives a kill -9 for every persistent
//! session it was queued to, and a retained message likewise.
//!
//! The test starts `lothub` as a child process on a temp data directory, leaves an offline
//! persistent session subscribed with QoS 1, publishes a retained message and N QoS 1 messages
//! (pipelined, so the last acks come from the last group-commit windows), sends SIGKILL
//! (`Child::kill`) the moment the last PUBACK arrives, restarts the binary on the same directory
//! and checks that the subscriber gets every acknowledged message and the retained one.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGES: usize = 500;

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

/// Starts the binary on `dir` and waits until it accepts connections. Its log goes to
/// `<dir>/../hub-<n>.log` for a failing run's diagnosis.
fn start(dir: &Path, port: u16, log: &Path) -> Hub {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_lothub"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--root-password", "x"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut hub = Hub(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = hub.0.try_wait() {
            panic!("lothub exited early with {status}");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return hub;
        }
        assert!(Instant::now() < deadline, "lothub did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn options(port: u16, id: &str, clean: bool) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(clean);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let mut hub = start(&data, port, &tmp.path().join("hub-1.log"));

    let (mut keeper, _) = v4_connect(options(port, "keeper", false)).await;
    keeper.subscribe("plant/#", rumqttc::QoS::AtLeastOnce).await;
    keeper.disconnect().await;

    let (mut publ, _) = v4_connect(options(port, "publisher", true)).await;
    publ.client
        .publish("plant/status", rumqttc::QoS::AtLeastOnce, true, "running")
        .await
        .unwrap();
    let client = publ.client.clone();
    // Pipelined from another task: rumqttc keeps up to 100 in flight, so acks arrive in
    // batches that each wait for one group commit.
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            client
                .publish(
                    "plant/line/1",
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    format!("m{i}"),
                )
                .await
                .unwrap();
        }
    });
    let mut acked = 0;
    while acked < MESSAGES + 1 {
        publ.next_matching("PUBACK", |p| {
            matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
        })
        .await;
        acked += 1;
    }
    // SIGKILL at once: no flush, no graceful stop.
    hub.0.kill().unwrap();
    hub.0.wait().unwrap();
    sender.await.unwrap();
    drop(publ);

    let port = free_port();
    let hub = start(&data, port, &tmp.path().join("hub-2.log"));
    let (mut keeper, ack) = v4_connect(options(port, "keeper", false)).await;
    assert!(ack.session_present, "the persistent session was lost");
    let mut want: BTreeSet<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    want.insert("running".to_string());
    let mut got = BTreeSet::new();
    // QoS 1 allows a duplicate; every acknowledged message must be there at least once. Stop
    // at the first 3 s without a message so a loss reports what is missing.
    while got.len() < want.len() {
        match tokio::time::timeout(Duration::from_secs(3), keeper.next_publish()).await {
            Ok(p) => {
                got.insert(String::from_utf8_lossy(&p.payload).into_owned());
            }
            Err(_) => break,
        }
    }
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost to kill -9: {missing:?}",
        missing.len()
    );
    assert_eq!(got, want);

    let (mut fresh, _) = v4_connect(options(port, "fresh", true)).await;
    fresh
        .subscribe("plant/status", rumqttc::QoS::AtLeastOnce)
        .await;
    let p = fresh.next_publish().await;
    assert!(p.retain, "the retained message did not survive kill -9");
    assert_eq!(&p.payload[..], b"running");
    drop(hub);
}
