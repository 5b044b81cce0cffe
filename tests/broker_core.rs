//! The broker core over real sockets: rumqttc clients (3.1.1 and 5) and raw bytes against a hub
//! started in-process on 127.0.0.1:0. Timing-dependent behaviour (keep-alive, session expiry,
//! CONNECT deadline) uses short configured intervals so the file runs in a few seconds.

mod common;

use common::*;
use lothub::broker::BrokerSettings;
use lothub::protocol::packet::{
    Disconnect, Packet, Properties, ProtocolVersion, PubAck, QoS, reason,
};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use std::time::Duration;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

#[tokio::test]
async fn connack_for_both_versions_announces_limits_to_v5() {
    let hub = start_hub().await;
    let (c4, ack4) = v4_connect(v4_options(&hub, "c4")).await;
    assert_eq!(ack4.code, rumqttc::ConnectReturnCode::Success);
    assert!(!ack4.session_present);
    let (c5, ack5) = v5_connect(v5_options(&hub, "c5")).await;
    let props = ack5.properties.expect("MQTT 5 CONNACK carries properties");
    let defaults = BrokerSettings::default();
    assert_eq!(props.receive_max, Some(defaults.receive_maximum));
    assert_eq!(props.max_packet_size, Some(defaults.max_packet_size as u32));
    assert_eq!(props.topic_alias_max, Some(defaults.topic_alias_maximum));
    c4.disconnect().await;
    c5.disconnect().await;
    hub.shutdown().await;
}

#[tokio::test]
async fn qos_0_1_2_both_directions_v4() {
    let hub = start_hub().await;
    let (mut sub, _) = v4_connect(v4_options(&hub, "sub")).await;
    sub.subscribe("q/+", rumqttc::QoS::ExactlyOnce).await;
    let (mut pubc, _) = v4_connect(v4_options(&hub, "pub")).await;
    for (i, qos) in [
        rumqttc::QoS::AtMostOnce,
        rumqttc::QoS::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce,
    ]
    .into_iter()
    .enumerate()
    {
        pubc.client
            .publish(format!("q/{i}"), qos, false, vec![i as u8; 3])
            .await
            .unwrap();
        let p = sub.next_publish().await;
        assert_eq!(p.topic, format!("q/{i}"));
        assert_eq!(p.qos, qos);
        assert_eq!(&p.payload[..], &[i as u8; 3]);
    }
    // The publisher's QoS 1 and 2 flows complete (PUBACK, then PUBREC -> PUBREL -> PUBCOMP).
    pubc.next_matching("PUBACK", |p| {
        matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
    })
    .await;
    pubc.next_matching("PUBCOMP", |p| {
        matches!(p, rumqttc::Packet::PubComp(_)).then_some(())
    })
    .await;
    hub.shutdown().await;
}

#[tokio::test]
async fn delivery_qos_is_min_of_publish_and_subscription() {
    let hub = start_hub().await;
    let (mut sub, _) = v5_connect(v5_options(&hub, "sub")).await;
    sub.subscribe("d/x", QoS5::AtLeastOnce).await;
    let (pubc, _) = v5_connect(v5_options(&hub, "pub")).await;
    pubc.client
        .publish("d/x", QoS5::ExactlyOnce, false, "two")
        .await
        .unwrap();
    assert_eq!(sub.next_publish().await.qos, QoS5::AtLeastOnce);
    pubc.client
        .publish("d/x", QoS5::AtMostOnce, false, "zero")
        .await
        .unwrap();
    assert_eq!(sub.next_publish().await.qos, QoS5::AtMostOnce);
    hub.shutdown().await;
}

#[tokio::test]
async fn raw_qos2_receiver_flow_and_duplicate_is_not_redelivered() {
    let hub = start_hub().await;
    let mut sub = Raw::connect(&hub, "sub", V311).await;
    raw_subscribe(&mut sub, "r/#", QoS::ExactlyOnce).await;
    let mut publ = Raw::connect(&hub, "pub", V311).await;
    let p = publish_packet("r/1", QoS::ExactlyOnce, 7, b"once");
    publ.send(&Packet::Publish(p.clone())).await;
    assert_eq!(publ.recv().await, Some(Packet::PubRec(PubAck::new(7))));
    // Resent before PUBREL (DUP): acknowledged again, delivered only once (§4.3.3).
    let mut dup = p;
    dup.dup = true;
    publ.send(&Packet::Publish(dup)).await;
    assert_eq!(publ.recv().await, Some(Packet::PubRec(PubAck::new(7))));
    publ.send(&Packet::PubRel(PubAck::new(7))).await;
    assert_eq!(publ.recv().await, Some(Packet::PubComp(PubAck::new(7))));

    let Some(Packet::Publish(got)) = sub.recv().await else {
        panic!("subscriber gets the message")
    };
    assert_eq!(
        (got.qos, &got.payload[..]),
        (QoS::ExactlyOnce, &b"once"[..])
    );
    sub.send(&Packet::PubRec(PubAck::new(got.pkid))).await;
    assert_eq!(
        sub.recv().await,
        Some(Packet::PubRel(PubAck::new(got.pkid)))
    );
    sub.send(&Packet::PubComp(PubAck::new(got.pkid))).await;
    // Nothing else: the duplicate was not routed.
    sub.send(&Packet::PingReq).await;
    assert_eq!(sub.recv().await, Some(Packet::PingResp));
    hub.shutdown().await;
}

#[tokio::test]
async fn retained_message_delivered_on_subscribe_and_cleared_by_empty_payload() {
    let hub = start_hub().await;
    let (pubc, _) = v4_connect(v4_options(&hub, "pub")).await;
    pubc.client
        .publish("ret/a", rumqttc::QoS::AtLeastOnce, true, "kept")
        .await
        .unwrap();
    let (mut s1, _) = v4_connect(v4_options(&hub, "s1")).await;
    // The publish may still be in flight: subscribe until the retained message shows up.
    eventually("retained message stored", || {
        hub.broker().refresh_stats();
        hub.broker()
            .stats()
            .render()
            .iter()
            .any(|(t, v)| *t == "$SYS/broker/messages/retained/count" && v == "1")
    })
    .await;
    s1.subscribe("ret/#", rumqttc::QoS::AtLeastOnce).await;
    let p = s1.next_publish().await;
    assert!(
        p.retain,
        "retained messages sent on subscribe carry RETAIN 1"
    );
    assert_eq!(&p.payload[..], b"kept");

    pubc.client
        .publish("ret/a", rumqttc::QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    // s1 gets the clearing message live (RETAIN 0 as it is not retain-as-published).
    let cleared = s1.next_publish().await;
    assert!(cleared.payload.is_empty());
    let (mut s2, _) = v4_connect(v4_options(&hub, "s2")).await;
    s2.subscribe("ret/#", rumqttc::QoS::AtLeastOnce).await;
    s2.expect_no_publish(Duration::from_millis(300)).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn keep_alive_expiry_closes_with_0x8d() {
    let hub = start_hub().await;
    let mut c = connect_opts("sleepy", V5, true);
    c.keep_alive = 1;
    let started = tokio::time::Instant::now();
    let (mut raw, _) = Raw::connect_with(&hub, Packet::Connect(Box::new(c))).await;
    let got = raw.until_closed().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(3),
        "closed after {waited:?}, expected about 1.5 s"
    );
    assert_eq!(
        got.last(),
        Some(&Packet::Disconnect(Disconnect {
            reason: reason::KEEP_ALIVE_TIMEOUT,
            properties: Properties::default()
        }))
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn max_keepalive_caps_the_client_value() {
    let hub = start_hub_with_settings(BrokerSettings {
        max_keepalive: 10,
        ..BrokerSettings::default()
    })
    .await;
    let mut o = v5_options(&hub, "long");
    o.set_keep_alive(Duration::from_secs(100));
    let (_c, ack) = v5_connect(o).await;
    assert_eq!(ack.properties.unwrap().server_keep_alive, Some(10));
    // 3.1.1 cannot be told: refused with return code 2.
    let mut c = connect_opts("long4", V311, true);
    c.keep_alive = 100;
    let (_raw, ack) = Raw::connect_with(&hub, Packet::Connect(Box::new(c))).await;
    match ack {
        Packet::ConnAck(a) => assert_eq!(a.reason, reason::CLIENT_IDENTIFIER_NOT_VALID),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_at_highest_qos() {
    let hub = start_hub().await;
    let (mut sub, _) = v4_connect(v4_options(&hub, "over")).await;
    sub.subscribe("o/+", rumqttc::QoS::AtMostOnce).await;
    sub.subscribe("o/#", rumqttc::QoS::ExactlyOnce).await;
    sub.subscribe("o/a", rumqttc::QoS::AtLeastOnce).await;
    let (pubc, _) = v4_connect(v4_options(&hub, "pub")).await;
    pubc.client
        .publish("o/a", rumqttc::QoS::ExactlyOnce, false, "x")
        .await
        .unwrap();
    let p = sub.next_publish().await;
    assert_eq!(p.qos, rumqttc::QoS::ExactlyOnce);
    sub.expect_no_publish(Duration::from_millis(300)).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn empty_client_id_is_assigned_on_v5_and_refused_for_v311_persistent() {
    let hub = start_hub().await;
    let (_raw, ack) =
        Raw::connect_with(&hub, Packet::Connect(Box::new(connect_opts("", V5, true)))).await;
    match ack {
        Packet::ConnAck(a) => {
            assert_eq!(a.reason, 0);
            let id = a
                .properties
                .assigned_client_identifier
                .expect("assigned id");
            assert!(!id.is_empty());
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let (_raw, ack) = Raw::connect_with(
        &hub,
        Packet::Connect(Box::new(connect_opts("", V311, false))),
    )
    .await;
    match ack {
        Packet::ConnAck(a) => assert_eq!(a.reason, reason::CLIENT_IDENTIFIER_NOT_VALID),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    // 3.1.1 with clean session: accepted with a generated id.
    let raw = Raw::connect(&hub, "", V311).await;
    drop(raw);
    hub.shutdown().await;
}

/// Starts a subscriber and checks that it still gets messages (the hub survived).
async fn hub_still_serves(hub: &TestHub) {
    let (mut sub, _) = v4_connect(v4_options(hub, "alive-sub")).await;
    sub.subscribe("alive", rumqttc::QoS::AtLeastOnce).await;
    let (pubc, _) = v4_connect(v4_options(hub, "alive-pub")).await;
    pubc.client
        .publish("alive", rumqttc::QoS::AtLeastOnce, false, "yes")
        .await
        .unwrap();
    assert_eq!(&sub.next_publish().await.payload[..], b"yes");
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let hub = start_hub().await;
    let (mut bystander, _) = v4_connect(v4_options(&hub, "bystander")).await;
    bystander.subscribe("by/#", rumqttc::QoS::AtMostOnce).await;

    // A remaining length of five bytes (max is four, §1.5.5).
    let mut raw = Raw::open(&hub, V311).await;
    raw.send_bytes(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    assert_eq!(raw.until_closed().await, vec![]);

    // First packet not CONNECT.
    let mut raw = Raw::open(&hub, V311).await;
    raw.send_bytes(&[0xC0, 0x00]).await; // PINGREQ
    assert_eq!(raw.until_closed().await, vec![]);

    // MQTT 5, after CONNECT: PUBLISH with a wildcard in its topic -> DISCONNECT 0x90 or 0x81.
    let mut raw = Raw::connect(&hub, "bad5", V5).await;
    // PUBLISH QoS 0, topic "a/#", no properties.
    raw.send_bytes(&[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00])
        .await;
    let got = raw.until_closed().await;
    match got.last() {
        Some(Packet::Disconnect(d)) => assert!(d.reason >= 0x80, "error reason, got {d:?}"),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }

    // Reserved flags set on SUBSCRIBE (must be 0b0010).
    let mut raw = Raw::connect(&hub, "bad4", V311).await;
    raw.send_bytes(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'x', 0x00])
        .await;
    assert_eq!(raw.until_closed().await, vec![]);

    // Packet id 0 on QoS 1.
    let mut raw = Raw::connect(&hub, "bad-id", V311).await;
    raw.send_bytes(&[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00])
        .await;
    assert_eq!(raw.until_closed().await, vec![]);

    // Oversize packet announced in the fixed header: refused before its body arrives.
    let small = start_hub_with_settings(BrokerSettings {
        max_packet_size: 1024,
        ..BrokerSettings::default()
    })
    .await;
    let mut raw = Raw::connect(&small, "big", V5).await;
    raw.send_bytes(&[0x30, 0xFF, 0xFF, 0x03]).await;
    let got = raw.until_closed().await;
    assert!(
        matches!(got.last(), Some(Packet::Disconnect(d)) if d.reason == reason::PACKET_TOO_LARGE)
    );
    small.shutdown().await;

    // The bystander was not disturbed and the hub serves new clients.
    bystander
        .expect_no_publish(Duration::from_millis(100))
        .await;
    hub_still_serves(&hub).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn socket_without_connect_is_closed_after_the_deadline() {
    let hub = start_hub_with_settings(BrokerSettings {
        connect_timeout: Duration::from_millis(300),
        ..BrokerSettings::default()
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut raw = Raw::open(&hub, V311).await;
    assert_eq!(raw.until_closed().await, vec![]);
    assert!(started.elapsed() >= Duration::from_millis(250));
    hub.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_0x8b_to_v5_clients() {
    let hub = start_hub().await;
    let mut raw = Raw::connect(&hub, "bye", V5).await;
    let broker = hub.broker();
    let closing = tokio::spawn(async move { raw.until_closed().await });
    hub.shutdown().await;
    let got = closing.await.unwrap();
    assert_eq!(
        got.last(),
        Some(&Packet::Disconnect(Disconnect {
            reason: reason::SERVER_SHUTTING_DOWN,
            properties: Properties::default()
        }))
    );
    assert_eq!(broker.connection_count(), 0);
}

#[tokio::test]
async fn too_many_user_properties_are_refused_per_message() {
    let hub = start_hub_with_settings(BrokerSettings {
        max_user_properties: 2,
        ..BrokerSettings::default()
    })
    .await;
    let mut c = Raw::connect(&hub, "props", V5).await;
    let mut p = publish_packet("up/t", QoS::AtLeastOnce, 9, b"x");
    p.properties.user_properties = (0..3).map(|i| (format!("k{i}"), "v".to_string())).collect();
    c.send(&Packet::Publish(p)).await;
    let Some(Packet::PubAck(ack)) = c.recv().await else {
        panic!("PUBACK expected")
    };
    assert_eq!(
        (ack.pkid, ack.reason),
        (9, reason::IMPLEMENTATION_SPECIFIC_ERROR)
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn enhanced_authentication_methods_are_refused() {
    let hub = start_hub().await;
    let mut c = connect_opts("auth", V5, true);
    c.properties.authentication_method = Some("SCRAM-SHA-1".to_string());
    let (_raw, ack) = Raw::connect_with(&hub, Packet::Connect(Box::new(c))).await;
    assert!(matches!(ack, Packet::ConnAck(a) if a.reason == reason::BAD_AUTHENTICATION_METHOD));
    hub.shutdown().await;
}

#[tokio::test]
async fn connection_over_the_limit_gets_connack_0x97() {
    let hub = start_hub_with_settings(BrokerSettings {
        max_connections: 1,
        ..BrokerSettings::default()
    })
    .await;
    let _held = Raw::connect(&hub, "held", V5).await;
    let (mut extra, ack) = Raw::connect_with(&hub, connect_packet("extra", V5)).await;
    assert!(matches!(ack, Packet::ConnAck(a) if a.reason == reason::QUOTA_EXCEEDED));
    assert_eq!(extra.until_closed().await, vec![]);
    hub.shutdown().await;
}

#[tokio::test]
async fn denied_ip_is_closed_before_any_mqtt() {
    let hub = start_hub_with(lothub::app::HubOptions {
        ip_filter: Some(
            lothub::broker::ratelimit::IpFilter::new(Vec::<String>::new(), ["127.0.0.1"]).unwrap(),
        ),
        sys_interval: None,
        ..Default::default()
    })
    .await;
    let mut raw = Raw::open(&hub, V311).await;
    raw.send(&connect_packet("denied", V311)).await;
    assert_eq!(
        raw.until_closed().await,
        vec![],
        "no CONNACK for a denied address"
    );
    hub.shutdown().await;
}
