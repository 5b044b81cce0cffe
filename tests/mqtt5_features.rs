//! MQTT 5 message features end to end (broker.md "Protocol", issue #2 "What must work"):
//! properties passed through, request/response, message expiry, topic aliases both ways,
//! subscription identifiers, no-local, retain-as-published, retain handling. Connection-level
//! features (Receive Maximum, packet size, shared subscriptions, client ids, keep-alive, will
//! delay) are in `mqtt5_connection.rs`.
//!
//! Each test starts its own hub on 127.0.0.1:0 and talks to it with rumqttc where the library can
//! express the feature, and with the raw codec client (`support::raw`) where it cannot.

mod support;

use bytes::Bytes;
use lothub::protocol::packet::{
    Disconnect, Packet, Properties, ProtocolVersion, QoS, SubscriptionOptions, reason,
};
use std::collections::HashMap;
use std::time::Duration;
use support::raw::{QUIET, Raw, connect_packet, opts, publish};
use support::rum::V5;

const V5P: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn user_properties_content_type_and_payload_format_pass_through() {
    let hub = support::start(|_| {}).await;
    let mut sub = V5::connect(hub.addr, "props-sub", |_| {}).await;
    sub.client
        .subscribe("props/t", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .unwrap();
    sub.suback().await;
    let publisher = V5::connect(hub.addr, "props-pub", |_| {}).await;
    let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        user_properties: vec![
            ("b".into(), "2".into()),
            ("a".into(), "1".into()),
            ("b".into(), "3".into()),
        ],
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties(
            "props/t",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "{\"x\":1}",
            props,
        )
        .await
        .unwrap();
    let got = sub.next_publish().await;
    let p = got.properties.expect("properties forwarded");
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    // Order and duplicates kept (MQTT 5 §3.3.2.3.7).
    assert_eq!(
        p.user_properties,
        vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "3".to_string()),
        ]
    );
    assert_eq!(&got.payload[..], b"{\"x\":1}");
}

#[tokio::test]
async fn request_response_properties_round_trip() {
    let hub = support::start(|_| {}).await;
    let mut responder = V5::connect(hub.addr, "responder", |_| {}).await;
    responder
        .client
        .subscribe("svc/request", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .unwrap();
    responder.suback().await;
    let mut requester = V5::connect(hub.addr, "requester", |_| {}).await;
    requester
        .client
        .subscribe(
            "svc/reply/requester",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    requester.suback().await;

    let request_props = rumqttc::v5::mqttbytes::v5::PublishProperties {
        response_topic: Some("svc/reply/requester".into()),
        correlation_data: Some(Bytes::from_static(b"corr-42")),
        ..Default::default()
    };
    requester
        .client
        .publish_with_properties(
            "svc/request",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "ping",
            request_props,
        )
        .await
        .unwrap();
    let request = responder.next_publish().await;
    let rp = request.properties.expect("request properties");
    let reply_to = rp.response_topic.expect("response topic forwarded");
    let corr = rp.correlation_data.expect("correlation data forwarded");
    assert_eq!(reply_to, "svc/reply/requester");
    assert_eq!(&corr[..], b"corr-42");

    let reply_props = rumqttc::v5::mqttbytes::v5::PublishProperties {
        correlation_data: Some(corr),
        ..Default::default()
    };
    responder
        .client
        .publish_with_properties(
            reply_to,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "pong",
            reply_props,
        )
        .await
        .unwrap();
    let reply = requester.next_publish().await;
    assert_eq!(&reply.payload[..], b"pong");
    assert_eq!(
        reply.properties.and_then(|p| p.correlation_data).as_deref(),
        Some(&b"corr-42"[..])
    );
}

/// Connects a persistent MQTT 5 session (clean start 0, session expiry 300 s).
async fn persistent(addr: std::net::SocketAddr, id: &str) -> (Raw, bool) {
    let mut c = connect_packet(V5P, id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (raw, ack) = Raw::connect_with(addr, c).await;
    assert_eq!(ack.reason, 0);
    (raw, ack.session_present)
}

#[tokio::test]
async fn message_expiry_remaining_interval_and_expired_not_delivered_from_queue() {
    let hub = support::start(|_| {}).await;
    let (mut sub, _) = persistent(hub.addr, "expiry-sub").await;
    sub.subscribe("exp/#", QoS::AtLeastOnce).await;
    sub.send(&Packet::Disconnect(Disconnect::default())).await;
    drop(sub);

    let mut publisher = Raw::connect(hub.addr, V5P, "expiry-pub").await;
    let mut long = publish("exp/long", b"long", QoS::AtLeastOnce, 1);
    long.properties.message_expiry_interval = Some(60);
    let mut short = publish("exp/short", b"short", QoS::AtLeastOnce, 2);
    short.properties.message_expiry_interval = Some(1);
    assert_eq!(publisher.publish(short).await, Some(0));
    assert_eq!(publisher.publish(long).await, Some(0));
    // Wait past the short message's expiry, and long enough that the long one has lost a second.
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let (mut sub, present) = persistent(hub.addr, "expiry-sub").await;
    assert!(present, "session must be present");
    let first = sub.next_publish().await;
    assert_eq!(&*first.topic, "exp/long", "expired message was delivered");
    let remaining = first
        .properties
        .message_expiry_interval
        .expect("remaining expiry forwarded");
    assert!(
        (1..=58).contains(&remaining),
        "remaining expiry should be about 57-58 s, got {remaining}"
    );
    assert!(sub.maybe_publish(QUIET).await.is_none());
}

#[tokio::test]
async fn expired_retained_message_not_delivered() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "ret-exp-pub").await;
    let mut p = publish("rexp/short", b"gone", QoS::AtLeastOnce, 1);
    p.retain = true;
    p.properties.message_expiry_interval = Some(1);
    publisher.publish(p).await;
    let mut p = publish("rexp/long", b"kept", QoS::AtLeastOnce, 2);
    p.retain = true;
    p.properties.message_expiry_interval = Some(100);
    publisher.publish(p).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let mut sub = Raw::connect(hub.addr, V5P, "ret-exp-sub").await;
    sub.subscribe("rexp/#", QoS::AtLeastOnce).await;
    let got = sub.next_publish().await;
    assert_eq!(&*got.topic, "rexp/long");
    assert!(got.retain);
    let remaining = got.properties.message_expiry_interval.unwrap();
    assert!((1..=98).contains(&remaining), "remaining {remaining}");
    assert!(
        sub.maybe_publish(QUIET).await.is_none(),
        "expired retained delivered"
    );
}

#[tokio::test]
async fn topic_alias_from_client_is_resolved() {
    let hub = support::start(|_| {}).await;
    let mut sub = Raw::connect(hub.addr, V5P, "alias-sub").await;
    sub.subscribe("alias/+", QoS::AtMostOnce).await;
    let (mut publisher, ack) = Raw::connect_with(hub.addr, connect_packet(V5P, "alias-pub")).await;
    let max = ack.properties.topic_alias_maximum.unwrap_or(0);
    assert!(max > 0, "hub announces Topic Alias Maximum > 0: {ack:?}");

    let mut first = publish("alias/x", b"1", QoS::AtMostOnce, 0);
    first.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(first)).await;
    let mut second = publish("", b"2", QoS::AtMostOnce, 0);
    second.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(second)).await;
    // Re-map alias 1 to another topic (§3.3.2.3.4).
    let mut third = publish("alias/y", b"3", QoS::AtMostOnce, 0);
    third.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(third)).await;
    let mut fourth = publish("", b"4", QoS::AtMostOnce, 0);
    fourth.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(fourth)).await;

    let mut got = Vec::new();
    for _ in 0..4 {
        let p = sub.next_publish().await;
        got.push((p.topic.to_string(), p.payload.clone()));
        assert_eq!(p.properties.topic_alias, None, "sub did not allow aliases");
    }
    assert_eq!(
        got,
        vec![
            ("alias/x".to_string(), Bytes::from("1")),
            ("alias/x".to_string(), Bytes::from("2")),
            ("alias/y".to_string(), Bytes::from("3")),
            ("alias/y".to_string(), Bytes::from("4")),
        ]
    );

    // An alias above the announced maximum is a protocol error: DISCONNECT 0x94.
    let mut bad = publish("alias/z", b"x", QoS::AtMostOnce, 0);
    bad.properties.topic_alias = Some(max.saturating_add(1));
    publisher.send(&Packet::Publish(bad)).await;
    assert_eq!(
        publisher.expect_closed().await,
        Some(reason::TOPIC_ALIAS_INVALID)
    );
}

#[tokio::test]
async fn unknown_topic_alias_disconnects() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "alias-unknown").await;
    let mut p = publish("", b"x", QoS::AtMostOnce, 0);
    p.properties.topic_alias = Some(3);
    publisher.send(&Packet::Publish(p)).await;
    let reason = publisher.expect_closed().await;
    assert!(
        matches!(
            reason,
            Some(reason::PROTOCOL_ERROR | reason::TOPIC_ALIAS_INVALID)
        ),
        "got {reason:?}"
    );
    support::raw::assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn broker_assigns_topic_aliases_to_clients_that_allow_them() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5P, "alias-recv");
    c.properties.topic_alias_maximum = Some(4);
    let (mut sub, _) = Raw::connect_with(hub.addr, c).await;
    sub.subscribe("ba/#", QoS::AtMostOnce).await;
    let mut plain = Raw::connect(hub.addr, V5P, "alias-plain").await;
    plain.subscribe("ba/#", QoS::AtMostOnce).await;

    let mut publisher = Raw::connect(hub.addr, V5P, "alias-src").await;
    let topics = ["ba/1", "ba/1", "ba/2", "ba/1", "ba/2", "ba/2"];
    for (i, t) in topics.iter().enumerate() {
        publisher
            .send(&Packet::Publish(publish(t, &[i as u8], QoS::AtMostOnce, 0)))
            .await;
    }
    let mut aliases: HashMap<u16, String> = HashMap::new();
    let mut used_alias_only = 0;
    for (i, expected) in topics.iter().enumerate() {
        let p = sub.next_publish().await;
        assert_eq!(&p.payload[..], &[i as u8]);
        let topic = match p.properties.topic_alias {
            Some(alias) => {
                assert!(
                    (1..=4).contains(&alias),
                    "alias {alias} above our maximum 4"
                );
                if p.topic.is_empty() {
                    used_alias_only += 1;
                    aliases
                        .get(&alias)
                        .cloned()
                        .expect("alias used before it was set")
                } else {
                    aliases.insert(alias, p.topic.to_string());
                    p.topic.to_string()
                }
            }
            None => p.topic.to_string(),
        };
        assert_eq!(&topic, expected);
        // The client that announced no Topic Alias Maximum never gets an alias (§3.3.2.3.4).
        let q = plain.next_publish().await;
        assert_eq!(&*q.topic, *expected);
        assert_eq!(q.properties.topic_alias, None);
    }
    assert!(
        used_alias_only >= 3,
        "repeated topics should be sent as alias-only PUBLISHes, got {used_alias_only}"
    );
}

#[tokio::test]
async fn one_copy_carries_every_matching_subscription_identifier() {
    let hub = support::start(|_| {}).await;
    let mut sub = Raw::connect(hub.addr, V5P, "subid").await;
    let with_id = |id| Properties {
        subscription_identifiers: vec![id],
        ..Properties::default()
    };
    assert_eq!(
        sub.subscribe_with(1, &[("sid/+", opts(QoS::AtLeastOnce))], with_id(5))
            .await,
        vec![1]
    );
    assert_eq!(
        sub.subscribe_with(2, &[("sid/#", opts(QoS::AtMostOnce))], with_id(7))
            .await,
        vec![0]
    );
    assert_eq!(
        sub.subscribe_with(3, &[("other/#", opts(QoS::AtMostOnce))], with_id(9))
            .await,
        vec![0]
    );
    let mut publisher = Raw::connect(hub.addr, V5P, "subid-pub").await;
    publisher
        .publish(publish("sid/a", b"x", QoS::AtLeastOnce, 1))
        .await;
    let p = sub.next_publish().await;
    let mut ids = p.properties.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, vec![5, 7]);
    // Overlapping subscriptions: delivered once, at the highest granted QoS.
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert!(sub.maybe_publish(QUIET).await.is_none(), "second copy sent");
}

#[tokio::test]
async fn no_local_suppresses_own_messages_only() {
    let hub = support::start(|_| {}).await;
    let mut me = Raw::connect(hub.addr, V5P, "nolocal-me").await;
    let nl = SubscriptionOptions {
        no_local: true,
        ..opts(QoS::AtLeastOnce)
    };
    me.subscribe_with(1, &[("nl/t", nl)], Properties::default())
        .await;
    let mut other = Raw::connect(hub.addr, V5P, "nolocal-other").await;
    other.subscribe("nl/t", QoS::AtLeastOnce).await;

    me.publish(publish("nl/t", b"mine", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(&other.next_publish().await.payload[..], b"mine");
    assert!(
        me.maybe_publish(QUIET).await.is_none(),
        "no-local echoed back"
    );

    other
        .publish(publish("nl/t", b"theirs", QoS::AtLeastOnce, 2))
        .await;
    assert_eq!(&me.next_publish().await.payload[..], b"theirs");
}

#[tokio::test]
async fn retain_as_published_keeps_the_flag() {
    let hub = support::start(|_| {}).await;
    let mut keep = Raw::connect(hub.addr, V5P, "rap-keep").await;
    let rap = SubscriptionOptions {
        retain_as_published: true,
        ..opts(QoS::AtMostOnce)
    };
    keep.subscribe_with(1, &[("rap/t", rap)], Properties::default())
        .await;
    let mut clear = Raw::connect(hub.addr, V5P, "rap-clear").await;
    clear.subscribe("rap/t", QoS::AtMostOnce).await;

    let mut publisher = Raw::connect(hub.addr, V5P, "rap-pub").await;
    let mut p = publish("rap/t", b"r", QoS::AtLeastOnce, 1);
    p.retain = true;
    publisher.publish(p).await;
    assert!(
        keep.next_publish().await.retain,
        "retain-as-published lost the flag"
    );
    assert!(
        !clear.next_publish().await.retain,
        "live message kept RETAIN without RAP"
    );
}

#[tokio::test]
async fn retain_handling_0_1_2() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "rh-pub").await;
    let mut p = publish("rh/t", b"stored", QoS::AtLeastOnce, 1);
    p.retain = true;
    publisher.publish(p).await;

    let rh = |n| SubscriptionOptions {
        retain_handling: n,
        ..opts(QoS::AtMostOnce)
    };
    let none = Properties::default;

    // 0: on every subscribe, including a repeated one.
    let mut c0 = Raw::connect(hub.addr, V5P, "rh-0").await;
    c0.subscribe_with(1, &[("rh/t", rh(0))], none()).await;
    assert_eq!(&c0.next_publish().await.payload[..], b"stored");
    c0.subscribe_with(2, &[("rh/t", rh(0))], none()).await;
    assert_eq!(&c0.next_publish().await.payload[..], b"stored");

    // 1: only when the subscription is new.
    let mut c1 = Raw::connect(hub.addr, V5P, "rh-1").await;
    c1.subscribe_with(1, &[("rh/t", rh(1))], none()).await;
    assert_eq!(&c1.next_publish().await.payload[..], b"stored");
    c1.subscribe_with(2, &[("rh/t", rh(1))], none()).await;
    assert!(
        c1.maybe_publish(QUIET).await.is_none(),
        "RH 1 resent on re-subscribe"
    );

    // 2: never.
    let mut c2 = Raw::connect(hub.addr, V5P, "rh-2").await;
    c2.subscribe_with(1, &[("rh/t", rh(2))], none()).await;
    assert!(
        c2.maybe_publish(QUIET).await.is_none(),
        "RH 2 sent retained"
    );
}

#[tokio::test]
async fn live_message_keeps_its_expiry_interval() {
    let hub = support::start(|_| {}).await;
    let mut sub = Raw::connect(hub.addr, V5P, "live-exp-sub").await;
    sub.subscribe("lexp/t", QoS::AtLeastOnce).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "live-exp-pub").await;
    let mut p = publish("lexp/t", b"x", QoS::AtLeastOnce, 1);
    p.properties.message_expiry_interval = Some(100);
    publisher.publish(p).await;
    let got = sub.next_publish().await;
    assert!(
        matches!(got.properties.message_expiry_interval, Some(99..=100)),
        "{:?}",
        got.properties.message_expiry_interval
    );
}

#[tokio::test]
async fn topic_alias_zero_is_invalid() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "alias-zero").await;
    let mut p = publish("a/b", b"x", QoS::AtMostOnce, 0);
    p.properties.topic_alias = Some(0);
    publisher.send(&Packet::Publish(p)).await;
    // §3.3.2.3.4: "A Topic Alias of 0 is not permitted" [MQTT-3.3.2-8]. The spec ties 0x94 to
    // an alias above the maximum; for 0 a plain Protocol Error is as faithful.
    let reason = publisher.expect_closed().await;
    assert!(
        matches!(
            reason,
            Some(reason::TOPIC_ALIAS_INVALID | reason::PROTOCOL_ERROR)
        ),
        "got {reason:?}"
    );
    support::raw::assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn retained_messages_sent_on_subscribe_carry_the_subscription_identifier() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "rsid-pub").await;
    let mut p = publish("rsid/t", b"kept", QoS::AtLeastOnce, 1);
    p.retain = true;
    publisher.publish(p).await;
    let mut sub = Raw::connect(hub.addr, V5P, "rsid-sub").await;
    let props = Properties {
        subscription_identifiers: vec![42],
        ..Properties::default()
    };
    sub.subscribe_with(1, &[("rsid/#", opts(QoS::AtLeastOnce))], props)
        .await;
    let got = sub.next_publish().await;
    assert!(got.retain);
    assert_eq!(got.properties.subscription_identifiers, vec![42]);
}

#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5P, "shared-nl").await;
    let nl = SubscriptionOptions {
        no_local: true,
        ..opts(QoS::AtMostOnce)
    };
    c.send(&Packet::Subscribe(lothub::protocol::packet::Subscribe {
        pkid: 1,
        filters: vec![lothub::protocol::packet::SubscribeFilter {
            filter: "$share/g/t".into(),
            options: nl,
        }],
        properties: Properties::default(),
    }))
    .await;
    // §3.8.3.1 [MQTT-3.8.3-4]: No Local on a Shared Subscription is a Protocol Error.
    assert_eq!(c.expect_closed().await, Some(reason::PROTOCOL_ERROR));
    support::raw::assert_still_serving(hub.addr).await;
}
