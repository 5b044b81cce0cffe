//! Admission control and per-session bounds end to end (broker.md "Limits and protection"): IP
//! allow/deny lists, per-IP connection rate, per-client publish rate, topic level bound, user
//! property bound, offline queue bound, retained bound, the pre-auth CONNECT cap. Each test also
//! checks that the hub keeps serving well-behaved clients.

mod support;

use bytes::Bytes;
use lothub::app::ConnectionRate;
use lothub::broker::ratelimit::IpFilter;
use lothub::protocol::packet::{Disconnect, Packet, Properties, ProtocolVersion, QoS, reason};
use std::time::Duration;
use support::raw::{QUIET, Raw, Read, assert_still_serving, connect_packet, opts, publish};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Opens a socket and sends CONNECT; true if the hub answered with a successful CONNACK.
async fn admitted(addr: std::net::SocketAddr, id: &str) -> bool {
    let mut c = Raw::open(addr, V5).await;
    c.send(&Packet::Connect(Box::new(connect_packet(V5, id))))
        .await;
    matches!(c.read().await, Read::Packet(Packet::ConnAck(a)) if a.reason == 0)
}

#[tokio::test]
async fn deny_list_refuses_the_address() {
    let hub = support::start(|t| {
        t.ip_filter = Some(IpFilter::new(Vec::<&str>::new(), ["127.0.0.0/8"]).unwrap());
    })
    .await;
    assert!(
        !admitted(hub.addr, "denied").await,
        "denied address admitted"
    );

    let hub = support::start(|t| {
        t.ip_filter = Some(IpFilter::new(["10.0.0.0/8"], Vec::<&str>::new()).unwrap());
    })
    .await;
    assert!(
        !admitted(hub.addr, "not-allowed").await,
        "address outside the allow list admitted"
    );

    let hub = support::start(|t| {
        t.ip_filter = Some(IpFilter::new(["127.0.0.1/32"], ["10.0.0.0/8"]).unwrap());
    })
    .await;
    assert!(admitted(hub.addr, "allowed").await);
}

#[tokio::test]
async fn per_ip_connection_rate_is_limited() {
    let hub = support::start(|t| {
        t.connection_rate = Some(ConnectionRate {
            per_window: 3,
            window: Duration::from_secs(60),
        });
    })
    .await;
    let mut results = Vec::new();
    for i in 0..5 {
        results.push(admitted(hub.addr, &format!("rate-{i}")).await);
    }
    assert_eq!(results, vec![true, true, true, false, false]);
}

#[tokio::test]
async fn publish_rate_limit_disconnects_with_0x96() {
    let hub = support::start(|t| t.broker.max_publish_rate = 5).await;
    let mut c = Raw::connect(hub.addr, V5, "chatty").await;
    for _ in 0..50 {
        c.send(&Packet::Publish(publish(
            "rate/t",
            b"x",
            QoS::AtMostOnce,
            0,
        )))
        .await;
    }
    assert_eq!(c.expect_closed().await, Some(reason::MESSAGE_RATE_TOO_HIGH));
    // A client within the rate is fine.
    let mut calm = Raw::connect(hub.addr, V5, "calm").await;
    calm.subscribe("calm/t", QoS::AtLeastOnce).await;
    calm.publish(publish("calm/t", b"ok", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(&calm.next_publish().await.payload[..], b"ok");
}

#[tokio::test]
async fn topic_level_bound_applies_to_names_and_filters() {
    let hub = support::start(|t| t.broker.max_topic_levels = 5).await;
    let mut c = Raw::connect(hub.addr, V5, "levels").await;
    let reasons = c
        .subscribe_with(
            1,
            &[
                ("a/b/c/d/e", opts(QoS::AtMostOnce)),
                ("a/b/c/d/e/f", opts(QoS::AtMostOnce)),
            ],
            Properties::default(),
        )
        .await;
    assert_eq!(reasons[0], 0);
    assert!(
        reasons[1] >= 0x80,
        "a 6-level filter was granted with max_topic_levels = 5: {reasons:?}"
    );
    c.send(&Packet::Publish(publish(
        "a/b/c/d/e/f",
        b"x",
        QoS::AtMostOnce,
        0,
    )))
    .await;
    assert_eq!(c.expect_closed().await, Some(reason::TOPIC_NAME_INVALID));
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn user_property_bound_refuses_the_message() {
    let hub = support::start(|t| t.broker.max_user_properties = 4).await;
    let mut sub = Raw::connect(hub.addr, V5, "up-sub").await;
    sub.subscribe("up/t", QoS::AtLeastOnce).await;
    let mut c = Raw::connect(hub.addr, V5, "up-pub").await;
    let mut p = publish("up/t", b"many", QoS::AtLeastOnce, 1);
    p.properties.user_properties = (0..5).map(|i| (format!("k{i}"), "v".into())).collect();
    let code = c.publish(p).await.expect("PUBACK");
    assert!(code >= 0x80, "5 user properties accepted with a bound of 4");
    let mut p = publish("up/t", b"few", QoS::AtLeastOnce, 2);
    p.properties.user_properties = (0..4).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(c.publish(p).await, Some(0));
    let got = sub.next_publish().await;
    assert_eq!(
        &got.payload[..],
        b"few",
        "the over-bound message was delivered"
    );
}

#[tokio::test]
async fn offline_queue_is_bounded() {
    let hub = support::start(|t| t.broker.max_queued_messages = 3).await;
    let mut c = connect_packet(V5, "offline-q");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = Raw::connect_with(hub.addr, c.clone()).await;
    sub.subscribe("oq/t", QoS::AtLeastOnce).await;
    sub.send(&Packet::Disconnect(Disconnect::default())).await;
    drop(sub);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut publisher = Raw::connect(hub.addr, V5, "oq-pub").await;
    for i in 1..=6u16 {
        publisher
            .publish(publish("oq/t", &[i as u8], QoS::AtLeastOnce, i))
            .await;
    }
    let (mut sub, ack) = Raw::connect_with(hub.addr, c).await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    while let Some(p) = sub.maybe_publish(Duration::from_millis(800)).await {
        got.push(p.payload[0]);
        sub.send(&Packet::PubAck(lothub::protocol::packet::PubAck::new(
            p.pkid,
        )))
        .await;
    }
    // With only QoS 1 queued, the new message is the one dropped: the first 3 survive.
    assert_eq!(got, vec![1, 2, 3], "queue bound of 3 not applied");
}

#[tokio::test]
async fn retained_bound_refuses_new_topics_but_still_delivers() {
    let hub = support::start(|t| {
        t.broker.max_retained = 2;
        t.sys_off = true;
    })
    .await;
    let mut live = Raw::connect(hub.addr, V5, "rb-live").await;
    live.subscribe("rb/#", QoS::AtMostOnce).await;
    let mut publisher = Raw::connect(hub.addr, V5, "rb-pub").await;
    for (i, t) in ["rb/1", "rb/2", "rb/3"].iter().enumerate() {
        let mut p = publish(t, b"v", QoS::AtLeastOnce, i as u16 + 1);
        p.retain = true;
        publisher.publish(p).await;
    }
    for _ in 0..3 {
        live.next_publish().await;
    }
    let mut late = Raw::connect(hub.addr, V5, "rb-late").await;
    late.subscribe("rb/#", QoS::AtMostOnce).await;
    let mut topics = Vec::new();
    while let Some(p) = late.maybe_publish(QUIET).await {
        topics.push(p.topic.to_string());
    }
    topics.sort();
    assert_eq!(topics, vec!["rb/1", "rb/2"]);
    // Replacing an existing retained topic is still allowed at the bound.
    let mut p = publish("rb/1", b"new", QoS::AtLeastOnce, 9);
    p.retain = true;
    publisher.publish(p).await;
    let mut again = Raw::connect(hub.addr, V5, "rb-again").await;
    again.subscribe("rb/1", QoS::AtMostOnce).await;
    assert_eq!(&again.next_publish().await.payload[..], b"new");
}

#[tokio::test]
async fn oversized_connect_is_refused_before_authentication() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5, "huge-connect");
    c.username = Some("u".into());
    c.password = Some(Bytes::from(vec![b'p'; 60_000]));
    c.properties.user_properties = (0..20)
        .map(|i| (format!("k{i}"), "x".repeat(1000)))
        .collect();
    let mut raw = Raw::open(hub.addr, V5).await;
    raw.send(&Packet::Connect(Box::new(c))).await;
    loop {
        match raw.read().await {
            Read::Closed => break,
            Read::Packet(Packet::ConnAck(a)) => {
                assert!(a.reason >= 0x80, "80 KB CONNECT accepted: {a:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn subscription_options_reserved_bits_are_malformed() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "sub-reserved").await;
    // SUBSCRIBE pkid 1, no properties, filter "a", options 0xC0 (reserved bits 6-7 set).
    c.send_bytes(&[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0xC0])
        .await;
    assert_eq!(c.expect_closed().await, Some(reason::MALFORMED_PACKET));
    // Retain handling 3 is a Protocol Error (§3.8.3.1).
    let mut c = Raw::connect(hub.addr, V5, "sub-rh3").await;
    c.send_bytes(&[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x30])
        .await;
    let r = c.expect_closed().await;
    assert!(
        matches!(r, Some(reason::PROTOCOL_ERROR | reason::MALFORMED_PACKET)),
        "{r:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_subscribe_over_many_retained_messages_does_not_stall_the_hub() {
    let hub = support::start(|t| t.sys_off = true).await;
    let mut loader = Raw::connect(hub.addr, V5, "ret-loader").await;
    const N: usize = 20_000;
    for i in 0..N {
        let mut p = publish(&format!("bulk/{}/{}", i % 100, i), b"v", QoS::AtMostOnce, 0);
        p.retain = true;
        loader.send(&Packet::Publish(p)).await;
    }
    loader.sync().await;
    assert_eq!(hub.hub.broker().stats().clients_connected(), 1);

    let mut probe = Raw::connect(hub.addr, V5, "ret-probe").await;
    probe.subscribe("probe/rt", QoS::AtMostOnce).await;
    // The wildcard subscriber never reads: its retained backlog must not block anyone.
    let mut greedy = Raw::connect(hub.addr, V5, "ret-greedy").await;
    greedy
        .send(&Packet::Subscribe(lothub::protocol::packet::Subscribe {
            pkid: 1,
            filters: vec![lothub::protocol::packet::SubscribeFilter {
                filter: "#".into(),
                options: opts(QoS::AtMostOnce),
            }],
            properties: Properties::default(),
        }))
        .await;
    for i in 0..5u8 {
        let started = tokio::time::Instant::now();
        probe
            .publish(publish("probe/rt", &[i], QoS::AtMostOnce, 0))
            .await;
        let p = probe.next_publish().await;
        assert_eq!(p.payload[0], i);
        let rtt = started.elapsed();
        assert!(
            rtt < Duration::from_secs(1),
            "round trip took {rtt:?} while a wildcard subscriber drained {N} retained messages"
        );
    }
    // And the greedy subscriber does get retained messages when it finally reads.
    let first = greedy.next_publish().await;
    assert!(first.retain && first.topic.starts_with("bulk/"));
}
