//! Everything durable comes back after a restart on the same data directory (issue #5, "Proof"):
//! users, rules, models, actions, routes, env, secrets, KEEP TOPIC values, retained messages and
//! a persistent session with its queued QoS 1 messages. A hub with the LOT runtime as its hooks
//! runs on a real redb file in a temp dir, is shut down, and a new hub and runtime are started
//! on the same directory.

mod common;

use common::runtime::*;
use common::*;
use lothub::lot::Kind;
use lothub::storage::Storage;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PubAckReason};
use std::time::Duration;

const LOT: &str = "\
DEFINE RULE DenyRaw WITH PRIORITY 500 FOR Publish TO TOPIC \"raw/#\" DENY
DEFINE MODEL Room WITH TOPIC \"rooms/+/state\"
    ADD DOUBLE \"temp\" WITH TOPIC \"sensors/+/temp\" AS TRIGGER
    ADD STRING \"site\" WITH \"plant1\"
DEFINE ACTION Keep
ON TOPIC \"cfg/set\" DO
    KEEP TOPIC \"cfg/limit\" WITH PAYLOAD
DEFINE ACTION Read
ON TOPIC \"cfg/get\" DO
    PUBLISH TOPIC \"cfg/value\" WITH GET TOPIC \"cfg/limit\"
";

/// A bridge toward a port nobody listens on: it deploys and retries quietly.
fn route(port: u16) -> String {
    format!(
        "DEFINE ROUTE Plant WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"127.0.0.1\"\n        WITH BROKER_PORT '{port}'\n        WITH CLIENT_ID \"edge-Plant\"\n        WITH PROTOCOL_VERSION 4\n        WITH KEEP_ALIVE 30\n        WITH QOS 1\n    ADD MAPPING m0\n        WITH SOURCE_TOPIC \"factory/#\"\n        WITH DESTINATION_TOPIC \"sites/a/factory/#\"\n        WITH DIRECTION \"out\"\n"
    )
}

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn persistent(h: &RuntimeHub, id: &str) -> rumqttc::MqttOptions {
    let mut o = v4_options(&h.hub, id);
    o.set_clean_session(false);
    o
}

fn names(h: &RuntimeHub, kind: Kind) -> Vec<String> {
    h.runtime
        .list(kind)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_durable_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_runtime_hub(Storage::open(dir.path()).unwrap(), settings(true)).await;
    h.with(|r| {
        r.add_user("alice", "pw-a").unwrap();
        r.add_to_group("alice", "ops").unwrap();
        r.set_env("SITE", "plant1").unwrap();
        r.set_secret("TOKEN", "s3cr3t").unwrap();
    })
    .await;
    h.deploy(LOT).await;
    h.deploy(&route(unused_port())).await;

    // KEEP TOPIC value.
    let (dev, _) = v4_connect(v4_options(&h.hub, "dev")).await;
    dev.client
        .publish("cfg/set", rumqttc::QoS::AtLeastOnce, false, "42")
        .await
        .unwrap();
    eventually("the kept value", || {
        h.runtime.engine().last_value("cfg/limit").is_some()
    })
    .await;
    drop(dev);

    // An offline persistent session with queued messages, and a retained message.
    let (mut keeper, _) = v4_connect(persistent(&h, "keeper")).await;
    keeper.subscribe("plant/#", rumqttc::QoS::AtLeastOnce).await;
    keeper.disconnect().await;
    let (mut publ, _) = v4_connect(v4_options(&h.hub, "publisher")).await;
    publ.client
        .publish("plant/status", rumqttc::QoS::AtLeastOnce, true, "running")
        .await
        .unwrap();
    for i in 0..3 {
        publ.client
            .publish(
                "plant/line",
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("m{i}"),
            )
            .await
            .unwrap();
    }
    for _ in 0..4 {
        publ.next_matching("PUBACK", |p| {
            matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
        })
        .await;
    }
    publ.disconnect().await;
    h.shutdown().await;

    // Same directory, new storage handle, hub and runtime.
    let h = start_runtime_hub(Storage::open(dir.path()).unwrap(), settings(true)).await;

    let users = h.with(|r| r.list_users().unwrap()).await;
    let alice = users
        .iter()
        .find(|u| u.name == "alice")
        .expect("alice is back");
    assert!(alice.groups.contains("ops"));
    assert_eq!(
        v5_connect_code(h.v5_login("a", "alice", "pw-a")).await,
        ConnectReturnCode::Success
    );
    let (env, secret) = h
        .with(|r| (r.env("SITE").unwrap(), r.secret("TOKEN").unwrap()))
        .await;
    assert_eq!(env.as_deref(), Some("plant1"));
    assert_eq!(secret.as_deref(), Some("s3cr3t"));

    assert!(names(&h, Kind::Rule).contains(&"DenyRaw".to_string()));
    assert_eq!(names(&h, Kind::Model), vec!["Room"]);
    let mut actions = names(&h, Kind::Action);
    actions.sort();
    assert_eq!(actions, vec!["Keep", "Read"]);
    assert_eq!(names(&h, Kind::Route), vec!["Plant"]);
    assert!(
        h.runtime.routes().status("Plant").is_some(),
        "the route runs again"
    );

    // The rule is enforced, not only listed.
    let (mut p5, _) = v5_connect(v5_options(&h.hub, "p5")).await;
    assert_eq!(p5.puback("raw/1", "x").await, PubAckReason::NotAuthorized);

    // The model runs again.
    let (mut sub, _) = v4_connect(v4_options(&h.hub, "sub")).await;
    sub.subscribe("rooms/#", rumqttc::QoS::AtMostOnce).await;
    sub.subscribe("cfg/value", rumqttc::QoS::AtMostOnce).await;
    // The model reads the topic through the runtime's hooks, not a subscription: no
    // subscriber, but the publish is allowed.
    let reason = p5.puback("sensors/r1/temp", "21.5").await;
    assert_ne!(reason, PubAckReason::NotAuthorized);
    let p = sub.next_publish().await;
    assert_eq!(p.topic, "rooms/r1/state");
    let state: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(state["temp"].as_f64(), Some(21.5));

    // The kept value is read back by an action.
    p5.puback("cfg/get", "").await;
    let p = sub.next_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("cfg/value", &b"42"[..])
    );

    // The persistent session and the retained message.
    let (mut keeper, ack) = v4_connect(persistent(&h, "keeper")).await;
    assert!(
        ack.session_present,
        "the persistent session was not restored"
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let p = keeper.next_publish().await;
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    assert_eq!(got, ["running", "m0", "m1", "m2"]);
    keeper.expect_no_publish(Duration::from_millis(200)).await;
    let (mut fresh, _) = v4_connect(v4_options(&h.hub, "fresh")).await;
    fresh
        .subscribe("plant/status", rumqttc::QoS::AtLeastOnce)
        .await;
    let p = fresh.next_publish().await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"running");
    h.shutdown().await;
}
