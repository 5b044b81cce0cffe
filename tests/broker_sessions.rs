//! Sessions over real sockets: persistent sessions and their offline queues, DUP redelivery,
//! session expiry, takeover, wills (with delay), and state surviving a restart through the
//! store. Short configured intervals keep the file fast.

mod common;

use bytes::Bytes;
use common::*;
use lothub::app::HubOptions;
use lothub::broker::{BrokerSettings, MemoryStore};
use lothub::protocol::packet::{
    Disconnect, Packet, Properties, ProtocolVersion, PubAck, QoS, Will, reason,
};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use std::sync::Arc;
use std::time::Duration;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

#[tokio::test]
async fn will_sent_on_connection_loss_not_on_normal_disconnect() {
    let hub = start_hub().await;
    let (mut watcher, _) = v4_connect(v4_options(&hub, "watcher")).await;
    watcher
        .subscribe("wills/#", rumqttc::QoS::AtLeastOnce)
        .await;

    let mut o = v4_options(&hub, "dies");
    o.set_last_will(rumqttc::LastWill::new(
        "wills/dies",
        "gone",
        rumqttc::QoS::AtLeastOnce,
        false,
    ));
    let (dies, _) = v4_connect(o).await;
    drop(dies); // socket closed without DISCONNECT
    let p = watcher.next_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("wills/dies", &b"gone"[..])
    );

    let mut o = v4_options(&hub, "polite");
    o.set_last_will(rumqttc::LastWill::new(
        "wills/polite",
        "gone",
        rumqttc::QoS::AtLeastOnce,
        false,
    ));
    let (polite, _) = v4_connect(o).await;
    polite.disconnect().await;
    watcher.expect_no_publish(Duration::from_millis(300)).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn v5_disconnect_with_will_reason_publishes_the_will() {
    let hub = start_hub().await;
    let mut watcher = Raw::connect(&hub, "watcher", V5).await;
    raw_subscribe(&mut watcher, "w5/#", QoS::AtMostOnce).await;
    let mut c = connect_opts("leaver", V5, true);
    c.will = Some(Will {
        topic: Arc::from("w5/leaver"),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    let (mut leaver, _) = Raw::connect_with(&hub, Packet::Connect(Box::new(c))).await;
    leaver
        .send(&Packet::Disconnect(Disconnect {
            reason: reason::DISCONNECT_WITH_WILL,
            properties: Properties::default(),
        }))
        .await;
    let Some(Packet::Publish(p)) = watcher.recv().await else {
        panic!("will expected")
    };
    assert_eq!(&*p.topic, "w5/leaver");
    hub.shutdown().await;
}

#[tokio::test]
async fn takeover_disconnects_old_connection_with_0x8e() {
    let hub = start_hub().await;
    let mut old = Raw::connect(&hub, "same", V5).await;
    let _new = Raw::connect(&hub, "same", V5).await;
    let got = old.until_closed().await;
    assert_eq!(
        got.last(),
        Some(&Packet::Disconnect(Disconnect {
            reason: reason::SESSION_TAKEN_OVER,
            properties: Properties::default()
        }))
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn persistent_session_queues_offline_messages_in_order() {
    let hub = start_hub().await;
    let mut o = v4_options(&hub, "persist");
    o.set_clean_session(false);
    let (mut c, ack) = v4_connect(o.clone()).await;
    assert!(!ack.session_present);
    c.subscribe("off/#", rumqttc::QoS::AtLeastOnce).await;
    c.disconnect().await;

    let (pubc, _) = v4_connect(v4_options(&hub, "pub")).await;
    for i in 0..5u8 {
        pubc.client
            .publish("off/x", rumqttc::QoS::AtLeastOnce, false, vec![i])
            .await
            .unwrap();
    }
    pubc.disconnect().await;

    let (mut c, ack) = v4_connect(o).await;
    assert!(ack.session_present, "the persistent session is resumed");
    for i in 0..5u8 {
        let p = c.next_publish().await;
        assert_eq!(&p.payload[..], &[i], "queued messages arrive in order");
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn unacked_messages_are_redelivered_with_dup_after_reconnect() {
    let hub = start_hub().await;
    let (mut sub, _) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("d", V311, false))),
    )
    .await;
    raw_subscribe(&mut sub, "dup/t", QoS::AtLeastOnce).await;
    let mut publ = Raw::connect(&hub, "p", V311).await;
    for (pkid, payload) in [(1u16, &b"one"[..]), (2, &b"two"[..])] {
        let mut p = publish_packet("dup/t", QoS::AtLeastOnce, pkid, b"");
        p.payload = Bytes::from_static(payload);
        publ.send(&Packet::Publish(p)).await;
        assert_eq!(publ.recv().await, Some(Packet::PubAck(PubAck::new(pkid))));
    }
    let mut first_ids = Vec::new();
    for _ in 0..2 {
        let Some(Packet::Publish(p)) = sub.recv().await else {
            panic!("delivery expected")
        };
        assert!(!p.dup);
        first_ids.push(p.pkid);
    }
    drop(sub); // never acknowledged
    let (mut sub, ack) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("d", V311, false))),
    )
    .await;
    assert!(matches!(ack, Packet::ConnAck(a) if a.session_present));
    for (expected_id, payload) in first_ids.iter().zip([&b"one"[..], &b"two"[..]]) {
        let Some(Packet::Publish(p)) = sub.recv().await else {
            panic!("redelivery expected")
        };
        assert!(p.dup, "redelivery carries DUP");
        assert_eq!(p.pkid, *expected_id, "same packet id");
        assert_eq!(&p.payload[..], payload, "in order");
        sub.send(&Packet::PubAck(PubAck::new(p.pkid))).await;
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn session_expiry_ends_the_session() {
    let hub = start_hub().await;
    let mut o = v5_options(&hub, "exp");
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(1));
    let (mut c, _) = v5_connect(o.clone()).await;
    c.subscribe("exp/t", QoS5::AtLeastOnce).await;
    c.disconnect().await;
    // Within the expiry the session is kept...
    let (c, ack) = v5_connect(o.clone()).await;
    assert!(ack.session_present);
    c.disconnect().await;
    // ...after it, it is gone.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_c, ack) = v5_connect(o).await;
    assert!(!ack.session_present, "session expired");
    hub.shutdown().await;
}

#[tokio::test]
async fn offline_queue_is_bounded_and_drops_are_counted() {
    let hub = start_hub_with_settings(BrokerSettings {
        max_queued_messages: 3,
        ..BrokerSettings::default()
    })
    .await;
    let (mut c, _) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("slow", V311, false))),
    )
    .await;
    raw_subscribe(&mut c, "b/#", QoS::AtLeastOnce).await;
    drop(c);
    eventually("session offline", || {
        hub.broker().stats().clients_connected() == 0
    })
    .await;
    let mut publ = Raw::connect(&hub, "p", V311).await;
    for i in 1..=10u16 {
        publ.send(&Packet::Publish(publish_packet(
            "b/x",
            QoS::AtLeastOnce,
            i,
            b"m",
        )))
        .await;
        assert_eq!(publ.recv().await, Some(Packet::PubAck(PubAck::new(i))));
    }
    assert_eq!(hub.broker().stats().publish_dropped_count(), 7);
    let (mut c, _) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("slow", V311, false))),
    )
    .await;
    for _ in 0..3 {
        let Some(Packet::Publish(p)) = c.recv().await else {
            panic!("queued message expected")
        };
        c.send(&Packet::PubAck(PubAck::new(p.pkid))).await;
    }
    c.send(&Packet::PingReq).await;
    assert_eq!(c.recv().await, Some(Packet::PingResp), "only 3 were kept");
    hub.shutdown().await;
}

#[tokio::test]
async fn retained_and_persistent_sessions_survive_a_restart_through_the_store() {
    let store = Arc::new(MemoryStore::new());
    let opts = || HubOptions {
        store: store.clone(),
        sys_interval: None,
        ..HubOptions::default()
    };
    let hub = start_hub_with(opts()).await;
    let (mut c, _) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("keep", V311, false))),
    )
    .await;
    raw_subscribe(&mut c, "s/#", QoS::AtLeastOnce).await;
    drop(c);
    eventually("session offline", || {
        hub.broker().stats().clients_connected() == 0
    })
    .await;
    let mut publ = Raw::connect(&hub, "p", V311).await;
    let mut retained = publish_packet("s/r", QoS::AtLeastOnce, 1, b"ret");
    retained.retain = true;
    publ.send(&Packet::Publish(retained)).await;
    assert_eq!(publ.recv().await, Some(Packet::PubAck(PubAck::new(1))));
    hub.shutdown().await;

    let hub = start_hub_with(opts()).await;
    let (mut c, ack) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("keep", V311, false))),
    )
    .await;
    assert!(matches!(ack, Packet::ConnAck(a) if a.session_present));
    let Some(Packet::Publish(p)) = c.recv().await else {
        panic!("the queued message survives the restart")
    };
    assert_eq!(&p.payload[..], b"ret");
    let (mut fresh, _) = v4_connect(v4_options(&hub, "fresh")).await;
    fresh.subscribe("s/#", rumqttc::QoS::AtMostOnce).await;
    assert!(
        fresh.next_publish().await.retain,
        "the retained message survives"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn will_delay_is_capped_by_the_session_expiry() {
    let hub = start_hub().await;
    let mut watcher = Raw::connect(&hub, "watcher", V5).await;
    raw_subscribe(&mut watcher, "wd/#", QoS::AtMostOnce).await;
    let mut c = connect_opts("delayed", V5, true);
    c.properties.session_expiry_interval = Some(1);
    c.will = Some(Will {
        topic: Arc::from("wd/delayed"),
        payload: Bytes::from_static(b"late"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(3600),
            ..Properties::default()
        },
    });
    let (raw, _) = Raw::connect_with(&hub, Packet::Connect(Box::new(c))).await;
    let started = tokio::time::Instant::now();
    drop(raw);
    let Some(Packet::Publish(p)) = watcher.recv().await else {
        panic!("will expected when the session ends")
    };
    let waited = started.elapsed();
    assert_eq!(&*p.topic, "wd/delayed");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "will after {waited:?}, expected at the 1 s session expiry, not the 1 h delay"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn clean_start_discards_an_offline_session_and_its_gauge() {
    let hub = start_hub().await;
    let (mut c, _) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("gauge", V311, false))),
    )
    .await;
    raw_subscribe(&mut c, "g/#", QoS::AtLeastOnce).await;
    drop(c);
    let stats = hub.broker().stats();
    eventually("one offline session", || stats.clients_disconnected() == 1).await;
    let (_c, ack) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("gauge", V311, true))),
    )
    .await;
    assert!(matches!(ack, Packet::ConnAck(a) if !a.session_present));
    assert_eq!(stats.clients_disconnected(), 0);
    assert_eq!(stats.clients_connected(), 1);
    hub.shutdown().await;
}
