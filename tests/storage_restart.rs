//! End to end through a real MQTT client (rumqttc, MQTT 3.1.1): a hub on a RedbStore in a temp
//! dir keeps a retained message and a persistent session's queued QoS 1 messages across a
//! graceful restart, and across a simulated kill -9 (a copy of the data directory taken once the
//! acknowledged messages are durable, opened by a new hub without any shutdown).

mod common;

use common::*;
use lothub::app::HubOptions;
use lothub::storage::{DATA_FILE, KEY_FILE, RedbStore, Storage, StorageError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn options(store: Arc<RedbStore>) -> HubOptions {
    HubOptions {
        store,
        sys_interval: None,
        ..HubOptions::default()
    }
}

/// Opens the data dir, retrying while the previous hub's last handle is being released.
async fn open_store(dir: &Path) -> Arc<RedbStore> {
    let storage = within("the data file lock to be released", async {
        loop {
            match Storage::open(dir) {
                Ok(s) => return s,
                Err(StorageError::Locked { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("cannot open {}: {e}", dir.display()),
            }
        }
    })
    .await;
    Arc::new(RedbStore::new(storage).unwrap())
}

fn persistent(hub: &TestHub, id: &str) -> rumqttc::MqttOptions {
    let mut o = v4_options(hub, id);
    o.set_clean_session(false);
    o
}

/// Leaves an offline persistent session "keeper" subscribed to `plant/#`, then publishes a
/// retained `plant/status` and `count` QoS 1 messages, waiting for each PUBACK.
async fn leave_session_and_publish(hub: &TestHub, count: usize) {
    let (mut keeper, _) = v4_connect(persistent(hub, "keeper")).await;
    keeper.subscribe("plant/#", rumqttc::QoS::AtLeastOnce).await;
    keeper.disconnect().await;

    let (mut publ, _) = v4_connect(v4_options(hub, "publisher")).await;
    publ.client
        .publish("plant/status", rumqttc::QoS::AtLeastOnce, true, "running")
        .await
        .unwrap();
    for i in 0..count {
        publ.client
            .publish(
                "plant/line/1",
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("m{i}"),
            )
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < count + 1 {
        publ.next_matching("PUBACK", |p| {
            matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
        })
        .await;
        acked += 1;
    }
    publ.disconnect().await;
}

/// Reconnects "keeper" and checks it gets its session back with every queued message, in order.
async fn expect_session_back(hub: &TestHub, count: usize) {
    let (mut keeper, ack) = v4_connect(persistent(hub, "keeper")).await;
    assert!(
        ack.session_present,
        "the persistent session was not restored"
    );
    let mut got = Vec::new();
    for _ in 0..count + 1 {
        let p = keeper.next_publish().await;
        assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce);
        got.push((
            p.topic.clone(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    let mut want = vec![("plant/status".to_string(), "running".to_string())];
    want.extend((0..count).map(|i| ("plant/line/1".to_string(), format!("m{i}"))));
    assert_eq!(got, want);
    keeper.expect_no_publish(Duration::from_millis(200)).await;

    // The retained message is back for a new subscriber.
    let (mut fresh, _) = v4_connect(v4_options(hub, "fresh")).await;
    fresh
        .subscribe("plant/status", rumqttc::QoS::AtLeastOnce)
        .await;
    let p = fresh.next_publish().await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"running");
}

#[tokio::test]
async fn retained_and_queued_messages_survive_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let hub = start_hub_with(options(store.clone())).await;
    leave_session_and_publish(&hub, 5).await;
    hub.shutdown().await;
    drop(store);

    let store = open_store(dir.path()).await;
    let hub = start_hub_with(options(store.clone())).await;
    expect_session_back(&hub, 5).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn durable_messages_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let hub = start_hub_with(options(store.clone())).await;
    leave_session_and_publish(&hub, 20).await;
    // Once what was acknowledged is durable, the file is what a kill -9 would leave behind: no
    // flush, no clean close (redb sees an unclean file and repairs it on open).
    within(
        "the acknowledged messages to be durable",
        store.wait_durable(store.durable_point()),
    )
    .await;
    let crashed = tempfile::tempdir().unwrap();
    for file in [DATA_FILE, KEY_FILE] {
        std::fs::copy(dir.path().join(file), crashed.path().join(file)).unwrap();
    }

    let store2 = open_store(crashed.path()).await;
    let hub2 = start_hub_with(options(store2)).await;
    expect_session_back(&hub2, 20).await;
    hub2.shutdown().await;
    hub.shutdown().await;
}
