//! The engine without sockets: the publish path's cost and its bounded queue, the last-value
//! store, and a timed action on paused tokio time. End-to-end behaviour from MQTT clients is in
//! `runtime_models.rs` and `runtime_actions.rs`.

mod common;
mod engine_common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use engine_common::deploy;
use lothub::broker::hooks::PublishObservation;
use lothub::protocol::packet::{Properties, QoS};
use lothub::runtime::engine::{Engine, QUEUE_CAPACITY};
use lothub::storage::Storage;

fn observe(engine: &Engine, topic: &str, payload: &Bytes) {
    observe_with(engine, topic, payload, &Properties::default());
}

fn observe_with(engine: &Engine, topic: &str, payload: &Bytes, properties: &Properties) {
    engine.on_publish(&PublishObservation {
        client: None,
        topic,
        payload,
        qos: QoS::AtMostOnce,
        retain: false,
        properties,
    });
}

/// 20 ON TOPIC actions and 10 models, none matching `bench/...` (the speed setup).
fn not_matching_lot() -> String {
    let mut text = String::new();
    for i in 0..20 {
        text += &format!(
            "DEFINE ACTION Alarm{i}\nON TOPIC \"plant/line{i}/+/alarm\" DO\n    PUBLISH TOPIC \"alerts/{i}\" WITH PAYLOAD\n"
        );
    }
    for i in 0..10 {
        text += &format!(
            "DEFINE MODEL Machine{i} WITH TOPIC \"machines/{i}/+/state\"\n    ADD DOUBLE \"temp\" WITH TOPIC \"sensors/{i}/+/temp\" AS TRIGGER\n    ADD DOUBLE \"hum\" WITH TOPIC \"sensors/{i}/+/hum\"\n"
        );
    }
    text
}

#[test]
fn a_full_queue_drops_and_counts() {
    let engine = Engine::new(Storage::in_memory().unwrap());
    deploy(
        &engine,
        "DEFINE ACTION A\nON TOPIC \"t/+\" DO\n    SET \"x\" WITH PAYLOAD\n",
    );
    // Not started: nothing drains the queue.
    let payload = Bytes::from_static(b"1");
    for _ in 0..QUEUE_CAPACITY + 5 {
        observe(&engine, "t/a", &payload);
    }
    assert_eq!(engine.stats().dropped, 5);
    // A topic no trigger matches never reaches the queue.
    observe(&engine, "other", &payload);
    assert_eq!(engine.stats().dropped, 5);
}

#[test]
fn publish_path_cost_with_nothing_matching() {
    let engine = Engine::new(Storage::in_memory().unwrap());
    let payload = Bytes::from_static(b"0123456789abcdef");
    let topics: Vec<String> = (0..64).map(|i| format!("bench/{i}/data")).collect();
    let n = 200_000;
    let properties = Properties::default();
    let time = |engine: &Engine| {
        let start = Instant::now();
        for i in 0..n {
            observe_with(engine, &topics[i % topics.len()], &payload, &properties);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let empty = time(&engine);
    deploy(&engine, &not_matching_lot());
    let loaded = time(&engine);
    // Reported, not asserted (build profile and machine load decide the figure); what is
    // asserted is that none of it queued work or recorded a value.
    println!(
        "on_publish: {empty:.1} ns with nothing deployed, {loaded:.1} ns with 20 actions + 10 models not matching"
    );
    assert_eq!(engine.stats().dropped, 0);
    assert_eq!(engine.stats().recorded_topics, 0);
    // The same engine does react to a topic its models read.
    observe(&engine, "sensors/3/k/hum", &payload);
    assert_eq!(engine.last_value("sensors/3/k/hum"), Some(payload));
}

/// Lets the runtime's timer tasks and the engine's worker thread catch up, polling `cond`.
async fn settle(rounds: usize, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..rounds {
        tokio::task::yield_now().await;
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[tokio::test(start_paused = true)]
async fn on_every_counts_periods_from_deployment_on_paused_time() {
    let engine = Engine::new(Storage::in_memory().unwrap());
    deploy(
        &engine,
        "DEFINE ACTION Count\nON EVERY 10 MINUTES DO\n    KEEP TOPIC \"ticks\" WITH GET TOPIC \"ticks\" + 1\n",
    );
    engine.start();
    let ticks = |engine: &Engine| {
        engine
            .last_value("ticks")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    tokio::time::advance(Duration::from_secs(599)).await;
    let early = settle(40, || ticks(&engine).is_some()).await;
    assert!(
        !early,
        "nothing before the first period, have {:?}",
        ticks(&engine)
    );
    for expected in ["1", "2", "3"] {
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(
            settle(400, || ticks(&engine).as_deref() == Some(expected)).await,
            "tick {expected}, have {:?}",
            ticks(&engine)
        );
    }
    engine.shutdown().await;
}
