//! Opt-in timing runs for docs/benchmarks.md, "Durability" (set `LOTHUB_STORAGE_BENCH=1`, run
//! with `--release --nocapture`; without the variable each test does a small run that only
//! checks the counts, so it stays cheap in `cargo test`).
//!
//! - QoS 1 publishing to an offline persistent session: one rumqttc publisher, the same
//!   in-process hub with no store (in memory), `MemoryStore`, and `RedbStore` on a temp dir
//!   (acks held for the group commit). Rate = messages / time from first publish to last PUBACK.
//! - Start-up: 100,000 retained messages and 1,000 persistent sessions (10 queued messages
//!   each) written through the store, then open + load + listening of a new hub, timed.

mod common;

use common::*;
use lothub::app::HubOptions;
use lothub::broker::store::{QueuedRecord, QueuedState, SessionRecord, StoredMessage};
use lothub::broker::{BrokerSettings, MemoryStore, NoopStore, Store};
use lothub::protocol::packet::{Properties, QoS, SubscriptionOptions};
use lothub::storage::{RedbStore, Storage};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bench() -> bool {
    std::env::var("LOTHUB_STORAGE_BENCH").is_ok_and(|v| v == "1")
}

fn settings() -> BrokerSettings {
    BrokerSettings {
        max_queued_messages: 1_000_000,
        max_queued_bytes: usize::MAX,
        ..BrokerSettings::default()
    }
}

/// Publishes `count` QoS 1 messages to a topic an offline persistent session subscribed to;
/// returns messages per second (first publish to last PUBACK).
async fn offline_rate(store: Arc<dyn Store>, count: usize, inflight: u16) -> f64 {
    let hub = start_hub_with(HubOptions {
        settings: settings(),
        store,
        sys_interval: None,
        ..HubOptions::default()
    })
    .await;
    let mut o = v4_options(&hub, "keeper");
    o.set_clean_session(false);
    let (mut keeper, _) = v4_connect(o).await;
    keeper.subscribe("bench/#", rumqttc::QoS::AtLeastOnce).await;
    keeper.disconnect().await;

    let mut o = v4_options(&hub, "publisher");
    o.set_inflight(inflight);
    let (mut publ, _) = v4_connect(o).await;
    let client = publ.client.clone();
    let payload = vec![b'x'; 64];
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..count {
            client
                .publish("bench/t", rumqttc::QoS::AtLeastOnce, false, payload.clone())
                .await
                .unwrap();
        }
    });
    let mut acked = 0;
    tokio::time::timeout(Duration::from_secs(120), async {
        while acked < count {
            if let Some(Ev4::In(rumqttc::Packet::PubAck(_))) = publ.events.recv().await {
                acked += 1;
            }
        }
    })
    .await
    .expect("every PUBACK within 120 s");
    let secs = start.elapsed().as_secs_f64();
    sender.await.unwrap();
    drop(publ);
    hub.shutdown().await;
    count as f64 / secs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_to_an_offline_session_with_and_without_redb() {
    let count = if bench() { 20_000 } else { 500 };
    for inflight in [100u16, 1000] {
        let none = offline_rate(Arc::new(NoopStore), count, inflight).await;
        let memory = offline_rate(Arc::new(MemoryStore::new()), count, inflight).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::new(Storage::open(dir.path()).unwrap()).unwrap());
        let redb = offline_rate(store.clone(), count, inflight).await;
        let stats = store.stats();
        println!(
            "offline QoS 1, {count} x 64 B, client inflight {inflight}: no store {none:.0}/s, MemoryStore {memory:.0}/s, RedbStore {redb:.0}/s ({:.0}% of no store; {} commits)",
            100.0 * redb / none,
            stats.commits
        );
        // Every message was queued durably for the session.
        drop(store);
        let store = RedbStore::new(Storage::open(dir.path()).unwrap()).unwrap();
        let sessions = store.load_sessions().unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].queued.len(), count);
        if !bench() {
            break;
        }
    }
}

fn message(topic: String) -> StoredMessage {
    StoredMessage {
        topic,
        payload: bytes::Bytes::from_static(b"retained payload of about forty bytes.."),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
        expires_at_unix: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_with_many_retained_messages_and_sessions() {
    let (retained, sessions, queued) = if bench() {
        (100_000, 1_000, 10)
    } else {
        (1_000, 10, 2)
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::new(Storage::open(dir.path()).unwrap()).unwrap();
        for i in 0..retained {
            store.put_retained(&message(format!("site/{}/dev/{i}", i % 100)));
        }
        for s in 0..sessions {
            let client_id = format!("client-{s}");
            store.put_session(&SessionRecord {
                client_id: client_id.clone(),
                expiry_secs: u32::MAX,
                subscriptions: vec![lothub::broker::store::StoredSubscription {
                    filter: format!("site/{}/#", s % 100),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        ..SubscriptionOptions::default()
                    },
                    subscription_id: None,
                }],
            });
            for q in 0..queued {
                let mut m = message(format!("site/{}/dev/x", s % 100));
                m.retain = false;
                store.queue_push(
                    &client_id,
                    &QueuedRecord {
                        seq: q + 1,
                        message: m,
                        qos: QoS::AtLeastOnce,
                        retain: false,
                        subscription_ids: Vec::new(),
                        state: QueuedState::Queued,
                    },
                );
            }
        }
        store.flush().unwrap();
    }
    let start = Instant::now();
    let store = Arc::new(RedbStore::new(Storage::open(dir.path()).unwrap()).unwrap());
    let opened = start.elapsed();
    let hub = start_hub_with(HubOptions {
        settings: settings(),
        store,
        sys_interval: None,
        ..HubOptions::default()
    })
    .await;
    let listening = start.elapsed();
    println!(
        "start-up with {retained} retained messages and {sessions} sessions ({queued} queued each): open {:.3} s, listening {:.3} s",
        opened.as_secs_f64(),
        listening.as_secs_f64()
    );
    // The state is really loaded: a retained message and a restored session.
    let (mut fresh, _) = v4_connect(v4_options(&hub, "fresh")).await;
    fresh
        .subscribe("site/7/dev/7", rumqttc::QoS::AtLeastOnce)
        .await;
    assert!(fresh.next_publish().await.retain);
    let mut o = v4_options(&hub, "client-3");
    o.set_clean_session(false);
    let (_c, ack) = v4_connect(o).await;
    assert!(ack.session_present);
    hub.shutdown().await;
}
