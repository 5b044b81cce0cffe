//! The broker's hook points over real sockets: authentication results mapped onto CONNACK for
//! both protocol versions, publish / subscribe / delivery authorization, and the observers
//! (`on_publish`, `on_connect`, `on_disconnect`).

mod common;

use common::*;
use lothub::app::HubOptions;
use lothub::broker::hooks::PublishObservation;
use lothub::broker::{AuthDecision, AuthRequest, ClientInfo, DisconnectReason, Hooks};
use lothub::protocol::packet::{
    Connect, Packet, Properties, ProtocolVersion, PubAck, Publish, QoS, Subscribe, SubscribeFilter,
    SubscriptionOptions, reason,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Refuses user `bad` (bad credentials) and `banned` (not authorized); denies publishing under
/// `secret/` and subscribing to filters starting with `secret`; keeps `d/blocked` from client
/// `picky`; records what it observes.
#[derive(Default)]
struct TestHooks {
    published: Mutex<Vec<String>>,
    connected: Mutex<Vec<String>>,
    disconnected: Mutex<Vec<(String, DisconnectReason)>>,
}

impl Hooks for TestHooks {
    fn authenticate(&self, request: &AuthRequest) -> AuthDecision {
        match request.username.as_deref() {
            Some("bad") => AuthDecision::BadCredentials,
            Some("banned") => AuthDecision::NotAuthorized,
            _ => AuthDecision::Allow,
        }
    }
    fn authorize_publish(&self, _client: &ClientInfo, topic: &str) -> bool {
        !topic.starts_with("secret/")
    }
    fn authorize_subscribe(&self, _client: &ClientInfo, filter: &str) -> bool {
        !filter.starts_with("secret")
    }
    fn checks_delivery(&self) -> bool {
        true
    }
    fn authorize_delivery(&self, client: &ClientInfo, topic: &str) -> bool {
        !(&*client.client_id == "picky" && topic == "d/blocked")
    }
    fn on_publish(&self, observation: &PublishObservation<'_>) {
        self.published.lock().push(observation.topic.to_string());
    }
    fn on_connect(&self, client: &ClientInfo) {
        self.connected.lock().push(client.client_id.to_string());
    }
    fn on_disconnect(&self, client: &ClientInfo, reason: DisconnectReason) {
        self.disconnected
            .lock()
            .push((client.client_id.to_string(), reason));
    }
}

async fn hub_with(hooks: Arc<TestHooks>) -> TestHub {
    start_hub_with(HubOptions {
        hooks,
        sys_interval: None,
        ..HubOptions::default()
    })
    .await
}

fn connect_as(id: &str, user: &str, version: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 30,
        client_id: id.to_string(),
        will: None,
        username: Some(user.to_string()),
        password: Some(bytes::Bytes::from_static(b"pw")),
        properties: Properties::default(),
    }))
}

fn publish(topic: &str, qos: QoS, pkid: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: Arc::from(topic),
        pkid,
        payload: bytes::Bytes::from_static(b"x"),
        properties: Properties::default(),
    })
}

fn subscribe(filter: &str) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter {
            filter: filter.to_string(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
        }],
        properties: Properties::default(),
    })
}

#[tokio::test]
async fn authentication_results_map_to_connack_codes() {
    let hub = hub_with(Arc::default()).await;
    for (user, v5_code, v3_code) in [
        ("bad", reason::BAD_USER_NAME_OR_PASSWORD, 4u8),
        ("banned", reason::NOT_AUTHORIZED, 5u8),
    ] {
        let (_raw, ack) = Raw::connect_with(&hub, connect_as("c", user, ProtocolVersion::V5)).await;
        assert!(
            matches!(&ack, Packet::ConnAck(a) if a.reason == v5_code),
            "{user}: {ack:?}"
        );

        // MQTT 3.1.1 return codes checked on the wire: 20 02 00 <code>.
        let mut raw = Raw::open(&hub, ProtocolVersion::V3_1_1).await;
        raw.send(&connect_as("c", user, ProtocolVersion::V3_1_1))
            .await;
        let mut wire = Vec::new();
        within("refusal CONNACK", raw.stream.read_to_end(&mut wire))
            .await
            .unwrap();
        assert_eq!(wire, vec![0x20, 0x02, 0x00, v3_code], "{user}");
    }
    let ok = Raw::connect_with(&hub, connect_as("c", "good", ProtocolVersion::V5)).await;
    assert!(matches!(ok.1, Packet::ConnAck(a) if a.reason == 0));
    hub.shutdown().await;
}

#[tokio::test]
async fn denied_publish_is_refused_on_v5_and_silently_dropped_on_v311() {
    let hooks = Arc::new(TestHooks::default());
    let hub = hub_with(hooks.clone()).await;
    let mut watcher = Raw::connect(&hub, "watcher", ProtocolVersion::V5).await;
    watcher.send(&subscribe("#")).await;
    assert!(matches!(watcher.recv().await, Some(Packet::SubAck(_))));

    let mut p5 = Raw::connect(&hub, "p5", ProtocolVersion::V5).await;
    p5.send(&publish("secret/a", QoS::AtLeastOnce, 3)).await;
    let Some(Packet::PubAck(ack)) = p5.recv().await else {
        panic!("PUBACK expected")
    };
    assert_eq!((ack.pkid, ack.reason), (3, reason::NOT_AUTHORIZED));

    let mut p4 = Raw::connect(&hub, "p4", ProtocolVersion::V3_1_1).await;
    p4.send(&publish("secret/b", QoS::AtLeastOnce, 4)).await;
    assert_eq!(p4.recv().await, Some(Packet::PubAck(PubAck::new(4))));

    // An allowed message goes through, and is the only one the watcher sees.
    p4.send(&publish("open/c", QoS::AtMostOnce, 0)).await;
    let Some(Packet::Publish(got)) = watcher.recv().await else {
        panic!("allowed message expected")
    };
    assert_eq!(&*got.topic, "open/c");
    assert_eq!(*hooks.published.lock(), vec!["open/c".to_string()]);
    hub.shutdown().await;
}

#[tokio::test]
async fn denied_subscribe_gets_0x87_on_v5_and_0x80_on_v311() {
    let hub = hub_with(Arc::default()).await;
    let mut c5 = Raw::connect(&hub, "s5", ProtocolVersion::V5).await;
    c5.send(&subscribe("secret/#")).await;
    assert!(
        matches!(c5.recv().await, Some(Packet::SubAck(a)) if a.reasons == vec![reason::NOT_AUTHORIZED])
    );
    let mut c4 = Raw::connect(&hub, "s4", ProtocolVersion::V3_1_1).await;
    c4.send(&subscribe("secret/#")).await;
    assert!(matches!(c4.recv().await, Some(Packet::SubAck(a)) if a.reasons == vec![0x80]));
    hub.shutdown().await;
}

#[tokio::test]
async fn delivery_authorization_filters_per_recipient() {
    let hub = hub_with(Arc::default()).await;
    let (mut picky, _) = v4_connect(v4_options(&hub, "picky")).await;
    picky.subscribe("d/#", rumqttc::QoS::AtLeastOnce).await;
    let (mut other, _) = v4_connect(v4_options(&hub, "other")).await;
    other.subscribe("d/#", rumqttc::QoS::AtLeastOnce).await;
    let (pubc, _) = v4_connect(v4_options(&hub, "pub")).await;
    for topic in ["d/blocked", "d/ok"] {
        pubc.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, "m")
            .await
            .unwrap();
    }
    assert_eq!(other.next_publish().await.topic, "d/blocked");
    assert_eq!(other.next_publish().await.topic, "d/ok");
    assert_eq!(
        picky.next_publish().await.topic,
        "d/ok",
        "d/blocked was withheld"
    );
    picky.expect_no_publish(Duration::from_millis(200)).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn connect_and_disconnect_observers_see_each_client_and_reason() {
    let hooks = Arc::new(TestHooks::default());
    let hub = hub_with(hooks.clone()).await;
    let (polite, _) = v4_connect(v4_options(&hub, "polite")).await;
    polite.disconnect().await;
    let (rude, _) = v4_connect(v4_options(&hub, "rude")).await;
    drop(rude);
    eventually("both disconnects observed", || {
        hooks.disconnected.lock().len() == 2
    })
    .await;
    assert_eq!(*hooks.connected.lock(), vec!["polite", "rude"]);
    let seen = hooks.disconnected.lock().clone();
    assert!(seen.contains(&("polite".to_string(), DisconnectReason::Normal)));
    assert!(seen.contains(&("rude".to_string(), DisconnectReason::ConnectionLost)));
    hub.shutdown().await;
}

#[tokio::test]
async fn shutdown_publishes_the_wills_of_connected_clients() {
    let hooks = Arc::new(TestHooks::default());
    let hub = hub_with(hooks.clone()).await;
    let mut o = v4_options(&hub, "willer");
    o.set_last_will(rumqttc::LastWill::new(
        "wills/willer",
        "down",
        rumqttc::QoS::AtMostOnce,
        false,
    ));
    let (_c, _) = v4_connect(o).await;
    hub.shutdown().await;
    assert_eq!(*hooks.published.lock(), vec!["wills/willer".to_string()]);
}
