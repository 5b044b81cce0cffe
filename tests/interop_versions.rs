//! Mixed protocol versions on one listener and everyday behaviours around them (broker.md
//! "Protocol"): 3.1, 3.1.1 and 5 clients exchanging messages, properties dropped toward 3.x,
//! unsubscribe, invalid filters, Response Information, fan-out ordering, keep-alive kept by
//! PINGREQ.

mod support;

use lothub::protocol::packet::{Packet, Properties, ProtocolVersion, QoS, Unsubscribe, reason};
use std::time::Duration;
use support::raw::{QUIET, Raw, connect_packet, opts, publish};
use support::rum::V311;

const V31: ProtocolVersion = ProtocolVersion::V3_1;
const V311P: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn all_three_versions_exchange_messages() {
    let hub = support::start(|_| {}).await;
    let mut clients = Vec::new();
    for (v, id) in [(V31, "v31"), (V311P, "v311"), (V5, "v5")] {
        let mut c = Raw::connect(hub.addr, v, id).await;
        c.subscribe("mix/#", QoS::AtLeastOnce).await;
        clients.push(c);
    }
    for i in 0..3 {
        let topic = format!("mix/from{i}");
        clients[i]
            .publish(publish(&topic, topic.as_bytes(), QoS::AtLeastOnce, 10))
            .await;
        for c in clients.iter_mut() {
            let p = c.next_publish().await;
            assert_eq!(&*p.topic, topic);
            assert_eq!(&p.payload[..], topic.as_bytes());
        }
    }
}

#[tokio::test]
async fn v5_properties_are_dropped_toward_v311_and_absent_from_v311_messages() {
    let hub = support::start(|_| {}).await;
    // The 3.1.1 subscriber is rumqttc: a client library that would choke on v5 bytes.
    let mut old = V311::connect(hub.addr, "old-sub").await;
    old.client
        .subscribe("props/x", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    old.suback().await;
    let mut new = Raw::connect(hub.addr, V5, "new-sub").await;
    new.subscribe("props/x", QoS::AtLeastOnce).await;

    let mut p = publish("props/x", b"with-props", QoS::AtLeastOnce, 1);
    p.properties.user_properties = vec![("k".into(), "v".into())];
    p.properties.content_type = Some("text/plain".into());
    let mut publisher = Raw::connect(hub.addr, V5, "v5-pub").await;
    publisher.publish(p).await;
    let got = old
        .publish_within(support::raw::WAIT)
        .await
        .expect("3.1.1 subscriber got the v5 message");
    assert_eq!(&got.payload[..], b"with-props");
    assert_eq!(
        new.next_publish().await.properties.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );

    old.client
        .publish("props/x", rumqttc::QoS::AtLeastOnce, false, "plain")
        .await
        .unwrap();
    let got = new.next_publish().await;
    assert_eq!(&got.payload[..], b"plain");
    assert!(got.properties.user_properties.is_empty());
    assert_eq!(got.properties.content_type, None);
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_reports_missing_subscriptions() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "unsub").await;
    c.subscribe("u/+", QoS::AtMostOnce).await;
    c.send(&Packet::Unsubscribe(Unsubscribe {
        pkid: 5,
        filters: vec!["u/+".into(), "never/subscribed".into()],
        properties: Properties::default(),
    }))
    .await;
    match c.packet().await {
        Packet::UnsubAck(ack) => {
            assert_eq!(ack.pkid, 5);
            assert_eq!(
                ack.reasons,
                vec![reason::SUCCESS, reason::NO_SUBSCRIPTION_EXISTED]
            );
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    c.publish(publish("u/1", b"x", QoS::AtMostOnce, 0)).await;
    c.sync().await;
    assert!(
        c.maybe_publish(QUIET).await.is_none(),
        "delivered after UNSUBSCRIBE"
    );
}

#[tokio::test]
async fn invalid_filters_are_refused_in_suback() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "bad-filters").await;
    let reasons = c
        .subscribe_with(
            1,
            &[
                ("ok/#", opts(QoS::AtMostOnce)),
                ("a/#/b", opts(QoS::AtMostOnce)),
                ("a+/b", opts(QoS::AtMostOnce)),
                ("$share//t", opts(QoS::AtMostOnce)),
            ],
            Properties::default(),
        )
        .await;
    // MQTT 5 §3.9.3: 0x8F Topic Filter invalid, per filter; the connection stays up.
    assert_eq!(reasons[0], 0);
    for r in &reasons[1..] {
        assert!(
            *r == reason::TOPIC_FILTER_INVALID || *r == reason::UNSPECIFIED_ERROR,
            "{reasons:?}"
        );
    }
    c.sync().await;
}

#[tokio::test]
async fn response_information_is_returned_when_requested() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5, "rri");
    c.properties.request_response_information = Some(1);
    let (_, ack) = Raw::connect_with(hub.addr, c).await;
    let info = ack
        .properties
        .response_information
        .expect("Response Information in CONNACK");
    assert!(!info.is_empty());
    let (_, ack) = Raw::connect_with(hub.addr, connect_packet(V5, "no-rri")).await;
    assert_eq!(
        ack.properties.response_information, None,
        "sent without being requested (§3.1.2.11.6)"
    );
}

#[tokio::test]
async fn fan_out_keeps_per_topic_order_for_every_subscriber() {
    let hub = support::start(|_| {}).await;
    let mut subs = Vec::new();
    for i in 0..20 {
        let mut c = Raw::connect(hub.addr, V5, &format!("fan-{i}")).await;
        c.subscribe("fan/t", QoS::AtLeastOnce).await;
        subs.push(c);
    }
    let mut publisher = Raw::connect(hub.addr, V5, "fan-pub").await;
    const N: u16 = 100;
    for i in 1..=N {
        publisher
            .send(&Packet::Publish(publish(
                "fan/t",
                &i.to_be_bytes(),
                QoS::AtMostOnce,
                0,
            )))
            .await;
    }
    for c in subs.iter_mut() {
        let mut last = 0u16;
        for _ in 0..N {
            let p = c.next_publish().await;
            let n = u16::from_be_bytes([p.payload[0], p.payload[1]]);
            assert_eq!(n, last + 1, "out of order or lost");
            last = n;
            if p.qos == QoS::AtLeastOnce {
                c.send(&Packet::PubAck(lothub::protocol::packet::PubAck::new(
                    p.pkid,
                )))
                .await;
            }
        }
    }
}

#[tokio::test]
async fn pingreq_keeps_a_short_keep_alive_connection_open() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5, "pinger");
    c.keep_alive = 1;
    let (mut raw, _) = Raw::connect_with(hub.addr, c).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        raw.sync().await;
    }
    // 3 s with a 1 s keep-alive: still connected because of the pings.
    raw.subscribe("ping/t", QoS::AtMostOnce).await;
}
