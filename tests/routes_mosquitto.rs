//! MQTT_BRIDGE routes against a real Mosquitto as the cloud broker (issue #6, `.ci/run`): out,
//! in, both without loops (3.1.1 and 5), and 1,000 QoS 1 messages across a Mosquitto restart.
//! Mosquitto runs as a child process on a free loopback port. Without a mosquitto binary these
//! tests say so and pass, unless LOTHUB_REQUIRE_MOSQUITTO is set (CI sets it, and installs
//! mosquitto first). With LOTHUB_BRIDGE_BENCH=1 a measurement of forwarding speed and latency
//! runs too (`cargo test --release --test routes_mosquitto -- --nocapture bench`).

mod routes_support;

use lothub::protocol::packet::QoS;
use lothub::storage::Storage;
use routes_support::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn mosquitto_or_skip(test: &str) -> Option<PathBuf> {
    match mosquitto_binary() {
        Some(b) => Some(b),
        None if std::env::var_os("LOTHUB_REQUIRE_MOSQUITTO").is_some() => {
            panic!("LOTHUB_REQUIRE_MOSQUITTO is set but mosquitto is not installed")
        }
        None => {
            eprintln!("{test}: skipped, mosquitto is not installed");
            None
        }
    }
}

/// Publishes on Mosquitto with a throwaway rumqttc client (QoS 1, waits for the PUBACK).
async fn publish_on(port: u16, topic: &str, payload: &str) {
    let opts = rumqttc::MqttOptions::new(format!("pub-{}", rand_id()), "127.0.0.1", port);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
    client
        .publish(
            topic,
            rumqttc::QoS::AtLeastOnce,
            false,
            payload.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = eventloop.poll().await
            {
                return;
            }
        }
    })
    .await
    .expect("PUBACK from mosquitto");
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn out_in_both(version: u8) {
    let Some(bin) = mosquitto_or_skip("out_in_both") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mosq = Mosquitto::start(&bin, port, dir.path()).await;
    let factory = Collector::start(
        port,
        "c-factory",
        "sites/a/factory/#",
        rumqttc::QoS::AtLeastOnce,
    )
    .await;
    let shared = Collector::start(port, "c-shared", "shared/#", rumqttc::QoS::AtLeastOnce).await;
    let text = bridge_text(
        "Cloud",
        port,
        version,
        &[
            ("factory/#", "sites/a/factory/#", "out"),
            ("commands/#", "sites/a/commands/#", "in"),
            ("shared/#", "shared/#", "both"),
        ],
    );
    let edge = Edge::start(Storage::in_memory().unwrap(), &text).await;
    edge.wait_connection("Cloud", "Connected").await;

    edge.broker()
        .publish_simple("factory/l1/temp", "21.5", QoS::AtLeastOnce, false)
        .unwrap();
    factory.wait_len(1, LONG).await;
    assert_eq!(factory.payloads("sites/a/factory/l1/temp"), vec!["21.5"]);

    // `in` (and `both` from the cloud side): the SUBSCRIBE goes out right after CONNACK.
    let deadline = tokio::time::Instant::now() + LONG;
    while edge.tap.count("commands/m1/stop") == 0 {
        publish_on(port, "sites/a/commands/m1/stop", "now").await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "in mapping never delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    publish_on(port, "shared/from-cloud", "c1").await;
    edge.broker()
        .publish_simple("shared/from-edge", "e1", QoS::AtLeastOnce, false)
        .unwrap();
    edge.tap
        .wait_for("shared/from-cloud on the edge", LONG, |s| {
            s.iter().any(|m| m.topic == "shared/from-cloud")
        })
        .await;
    shared.wait_len(2, LONG).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Each message exactly once on each side: no echo, no loop.
    assert_eq!(shared.payloads("shared/from-edge"), vec!["e1"]);
    assert_eq!(shared.payloads("shared/from-cloud"), vec!["c1"]);
    assert_eq!(edge.tap.payloads("shared/from-edge"), vec!["e1"]);
    assert_eq!(edge.tap.payloads("shared/from-cloud"), vec!["c1"]);

    edge.stop().await;
    mosq.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_out_in_both_mqtt311() {
    out_in_both(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_out_in_both_mqtt5() {
    out_in_both(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restart_loses_nothing() {
    let Some(bin) = mosquitto_or_skip("mosquitto_restart_loses_nothing") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mosq = Mosquitto::start(&bin, port, dir.path()).await;
    // A persistent-session subscriber: Mosquitto keeps its queue across the restart.
    let collector =
        Collector::start(port, "c-outage", "sites/a/#", rumqttc::QoS::AtLeastOnce).await;
    let text = bridge_text("Out", port, 4, &[("factory/#", "sites/a/factory/#", "out")]);
    let edge = Edge::start(Storage::in_memory().unwrap(), &text).await;
    edge.wait_connection("Out", "Connected").await;

    mosq.stop();
    edge.wait_connection("Out", "Reconnecting").await;
    let b = edge.broker();
    for i in 0..1000 {
        b.publish_simple("factory/seq", i.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
    }
    let mosq = Mosquitto::start(&bin, port, dir.path()).await;
    collector.wait_len(1000, LONG).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let want: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(collector.payloads("sites/a/factory/seq"), want);
    let st = edge.routes.status("Out").unwrap().to_json();
    assert_eq!(st["messages"]["dropped"], 0);
    edge.stop().await;
    mosq.stop();
}

/// Not a check: the speed figures for docs/benchmarks.md (LOTHUB_BRIDGE_BENCH=1, release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_bridge_to_mosquitto() {
    if std::env::var_os("LOTHUB_BRIDGE_BENCH").is_none() {
        eprintln!("bench_bridge_to_mosquitto: set LOTHUB_BRIDGE_BENCH=1 to run");
        return;
    }
    let Some(bin) = mosquitto_or_skip("bench") else {
        return;
    };
    let version: u8 = std::env::var("LOTHUB_BRIDGE_BENCH_VERSION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mosq = Mosquitto::start(&bin, port, dir.path()).await;
    let collector = Collector::start(port, "c-bench", "bench/#", rumqttc::QoS::AtMostOnce).await;
    let text = bridge_text("Bench", port, version, &[("load/#", "bench/#", "out")]);
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start(Storage::open(data.path()).unwrap(), &text).await;
    edge.wait_connection("Bench", "Connected").await;
    let status = edge.routes.status("Bench").unwrap();
    let b = edge.broker();
    let base = Instant::now();
    let stamp = |i: usize| {
        format!(
            "{i:010} {:020} {}",
            base.elapsed().as_nanos(),
            "x".repeat(32)
        )
    };

    // Throughput: as fast as the bridge takes them (the publisher waits while 50k are queued).
    let n = 200_000;
    let t0 = Instant::now();
    for i in 0..n {
        while status.buffered.load(std::sync::atomic::Ordering::Relaxed) > 50_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        b.publish_simple("load/t", stamp(i), QoS::AtLeastOnce, false)
            .unwrap();
        if i % 1000 == 999 {
            tokio::task::yield_now().await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while status.forwarded.load(std::sync::atomic::Ordering::Relaxed) < n as u64 {
        assert!(
            Instant::now() < deadline,
            "bench: not all messages were acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let acked = t0.elapsed();
    collector.wait_len(n, Duration::from_secs(60)).await;
    let received = t0.elapsed();
    println!(
        "BRIDGE_BENCH version={version} throughput: {n} QoS 1 messages (78-byte payload) acknowledged by mosquitto in {:.2}s = {:.0} msg/s; all received by a subscriber in {:.2}s = {:.0} msg/s; dropped={}",
        acked.as_secs_f64(),
        n as f64 / acked.as_secs_f64(),
        received.as_secs_f64(),
        n as f64 / received.as_secs_f64(),
        status.dropped.load(std::sync::atomic::Ordering::Relaxed)
    );

    // Latency at a steady 5,000 msg/s for 4 s: publish on the edge -> subscriber on mosquitto.
    collector.got.lock().clear();
    let rate = 5_000u64;
    let total = (rate * 4) as usize;
    let start = tokio::time::Instant::now();
    for i in 0..total {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        b.publish_simple("load/lat", stamp(i), QoS::AtLeastOnce, false)
            .unwrap();
    }
    collector.wait_len(total, Duration::from_secs(60)).await;
    let mut lat: Vec<u128> = collector
        .got
        .lock()
        .iter()
        .map(|(_, p, at)| {
            let text = String::from_utf8_lossy(p);
            let sent: u128 = text.split(' ').nth(1).unwrap().parse().unwrap();
            at.duration_since(base).as_nanos() - sent
        })
        .collect();
    lat.sort_unstable();
    let pct = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1e6;
    println!(
        "BRIDGE_BENCH version={version} latency at {rate} msg/s ({total} messages): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    edge.stop().await;
    mosq.stop();
}
