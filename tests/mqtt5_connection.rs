//! MQTT 5 connection-level features end to end (broker.md "Protocol", issue #2): Receive
//! Maximum both ways, Maximum Packet Size both ways, shared subscriptions, assigned client ids,
//! server keep-alive, will delay.
//!
//! Each test starts its own hub on 127.0.0.1:0 (see `support`).

mod support;

use bytes::Bytes;
use lothub::protocol::packet::{Packet, Properties, ProtocolVersion, PubAck, QoS, Will, reason};
use std::sync::Arc;
use std::time::Duration;
use support::raw::{QUIET, Raw, connect_packet, publish};
use support::rum::V311;

const V5P: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn receive_maximum_exceeded_disconnects_0x93() {
    let hub = support::start(|s| s.broker.receive_maximum = 2).await;
    let (mut c, ack) = Raw::connect_with(hub.addr, connect_packet(V5P, "rm")).await;
    assert_eq!(ack.properties.receive_maximum, Some(2));
    // QoS 2 without PUBREL keeps each one unacknowledged (§4.9: counted until PUBCOMP).
    for pkid in 1..=3u16 {
        c.send(&Packet::Publish(publish(
            "rm/t",
            b"x",
            QoS::ExactlyOnce,
            pkid,
        )))
        .await;
    }
    assert_eq!(
        c.expect_closed().await,
        Some(reason::RECEIVE_MAXIMUM_EXCEEDED)
    );
    support::raw::assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn maximum_packet_size_inbound_is_announced_and_enforced() {
    let hub = support::start(|s| s.broker.max_packet_size = 1024).await;
    let (mut c, ack) = Raw::connect_with(hub.addr, connect_packet(V5P, "mps-in")).await;
    assert_eq!(ack.properties.maximum_packet_size, Some(1024));
    c.send(&Packet::Publish(publish(
        "mps/t",
        &[7u8; 2000],
        QoS::AtMostOnce,
        0,
    )))
    .await;
    assert_eq!(c.expect_closed().await, Some(reason::PACKET_TOO_LARGE));
    support::raw::assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn maximum_packet_size_outbound_drops_too_large_messages() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5P, "mps-out");
    c.properties.maximum_packet_size = Some(200);
    let (mut small, _) = Raw::connect_with(hub.addr, c).await;
    small.subscribe("mps/#", QoS::AtLeastOnce).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "mps-src").await;
    publisher
        .publish(publish("mps/big", &[1u8; 1000], QoS::AtLeastOnce, 1))
        .await;
    publisher
        .publish(publish("mps/small", b"ok", QoS::AtLeastOnce, 2))
        .await;
    // §3.1.2.11.4: the server MUST NOT send a packet larger than the client's maximum; it
    // discards it and carries on.
    let p = small.next_publish().await;
    assert_eq!(&*p.topic, "mps/small");
    small.sync().await;
}

#[tokio::test]
async fn shared_subscription_round_robin_with_rumqttc() {
    let hub = support::start(|_| {}).await;
    let mut members = Vec::new();
    for i in 0..3 {
        let m = V311::connect(hub.addr, &format!("worker-{i}")).await;
        m.client
            .subscribe("$share/workers/jobs/+", rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        members.push(m);
    }
    for m in &mut members {
        m.suback().await;
    }
    let mut watcher = V311::connect(hub.addr, "watcher").await;
    watcher
        .client
        .subscribe("jobs/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    watcher.suback().await;

    let publisher = V311::connect(hub.addr, "boss").await;
    for i in 0..9 {
        publisher
            .client
            .publish(
                "jobs/build",
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await
            .unwrap();
    }
    for _ in 0..9 {
        watcher
            .publish_within(support::raw::WAIT)
            .await
            .expect("the plain subscriber gets every job");
    }
    let mut total = 0;
    for m in &mut members {
        let mut n = 0;
        while m.publish_within(QUIET).await.is_some() {
            n += 1;
        }
        assert_eq!(n, 3, "round robin gives each of 3 members 3 of 9 jobs");
        total += n;
    }
    assert_eq!(total, 9);
}

#[tokio::test]
async fn empty_client_id_gets_an_assigned_identifier() {
    let hub = support::start(|_| {}).await;
    let (mut c, ack) = Raw::connect_with(hub.addr, connect_packet(V5P, "")).await;
    assert_eq!(ack.reason, 0);
    let assigned = ack
        .properties
        .assigned_client_identifier
        .expect("MQTT 5 CONNACK carries the assigned id");
    assert!(!assigned.is_empty());
    c.sync().await;
    let (_, ack2) = Raw::connect_with(hub.addr, connect_packet(V5P, "")).await;
    assert_ne!(
        ack2.properties.assigned_client_identifier.as_deref(),
        Some(assigned.as_str()),
        "two clients must not share an assigned id"
    );
    // The first one was not taken over by the second.
    c.sync().await;
    // 3.1.1 with clean session: accepted too (no way to tell the id).
    let (_, ack3) = Raw::connect_with(hub.addr, connect_packet(ProtocolVersion::V3_1_1, "")).await;
    assert_eq!(ack3.reason, 0);
}

#[tokio::test]
async fn server_keep_alive_caps_the_client_value() {
    let hub = support::start(|s| s.broker.max_keepalive = 30).await;
    let mut c = connect_packet(V5P, "ka-big");
    c.keep_alive = 600;
    let (_, ack) = Raw::connect_with(hub.addr, c).await;
    assert_eq!(ack.reason, 0);
    assert_eq!(ack.properties.server_keep_alive, Some(30));
    let mut c = connect_packet(V5P, "ka-small");
    c.keep_alive = 10;
    let (_, ack) = Raw::connect_with(hub.addr, c).await;
    assert!(
        matches!(ack.properties.server_keep_alive, None | Some(10)),
        "a value under the cap is kept: {ack:?}"
    );
}

fn will_connect(id: &str, delay: u32) -> lothub::protocol::packet::Connect {
    let mut c = connect_packet(V5P, id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    c.will = Some(Will {
        topic: Arc::from("wills/".to_string() + id),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(delay),
            ..Properties::default()
        },
    });
    c
}

#[tokio::test]
async fn will_delay_postpones_and_reconnect_cancels() {
    let hub = support::start(|_| {}).await;
    let mut watcher = Raw::connect(hub.addr, V5P, "will-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    // Dropped without DISCONNECT: the will waits 2 s.
    let (dying, _) = Raw::connect_with(hub.addr, will_connect("w-late", 2)).await;
    // A second client with the same delay comes back within it: its will is never sent.
    let (back, _) = Raw::connect_with(hub.addr, will_connect("w-back", 2)).await;
    drop(dying);
    drop(back);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_back_again, ack) = Raw::connect_with(hub.addr, will_connect("w-back", 2)).await;
    assert!(ack.session_present);

    assert!(
        watcher
            .maybe_publish(Duration::from_millis(1000))
            .await
            .is_none(),
        "will sent before its delay"
    );
    let p = watcher.next_publish().await;
    assert_eq!(&*p.topic, "wills/w-late");
    assert!(
        watcher
            .maybe_publish(Duration::from_millis(2500))
            .await
            .is_none(),
        "the will of a client that reconnected was sent"
    );
}

#[tokio::test]
async fn outbound_receive_maximum_of_the_client_is_respected() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5P, "rm-out");
    c.properties.receive_maximum = Some(2);
    let (mut sub, _) = Raw::connect_with(hub.addr, c).await;
    sub.subscribe("rmo/t", QoS::AtLeastOnce).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "rm-out-pub").await;
    for i in 1..=5u16 {
        publisher
            .publish(publish("rmo/t", &[i as u8], QoS::AtLeastOnce, i))
            .await;
    }
    // Unacknowledged: only 2 may be in flight (§3.3.4, Receive Maximum).
    let first = sub.next_publish().await;
    let second = sub.next_publish().await;
    assert!(
        sub.maybe_publish(QUIET).await.is_none(),
        "a third QoS 1 PUBLISH exceeded the client's Receive Maximum of 2"
    );
    sub.send(&Packet::PubAck(PubAck::new(first.pkid))).await;
    let third = sub.next_publish().await;
    assert!(sub.maybe_publish(QUIET).await.is_none());
    for p in [&second, &third] {
        sub.send(&Packet::PubAck(PubAck::new(p.pkid))).await;
    }
    let fourth = sub.next_publish().await;
    let fifth = sub.next_publish().await;
    let order: Vec<u8> = [&first, &second, &third, &fourth, &fifth]
        .iter()
        .map(|p| p.payload[0])
        .collect();
    assert_eq!(order, vec![1, 2, 3, 4, 5], "in-order delivery");
}

#[tokio::test]
async fn keep_alive_is_enforced_at_the_capped_value() {
    let hub = support::start(|s| s.broker.max_keepalive = 1).await;
    let mut c = connect_packet(V5P, "ka-enforced");
    c.keep_alive = 600;
    let (mut raw, ack) = Raw::connect_with(hub.addr, c).await;
    assert_eq!(ack.properties.server_keep_alive, Some(1));
    let started = tokio::time::Instant::now();
    // Silent client: closed after 1.5 x the server keep-alive (§3.1.2.10), not 1.5 x 600 s.
    let reason = raw.expect_closed().await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed <= Duration::from_secs(4),
        "closed after {elapsed:?}"
    );
    assert!(
        matches!(reason, None | Some(reason::KEEP_ALIVE_TIMEOUT)),
        "reason {reason:?}"
    );
}

#[tokio::test]
async fn keep_alive_zero_is_capped_too() {
    let hub = support::start(|s| s.broker.max_keepalive = 30).await;
    let mut c = connect_packet(V5P, "ka-zero");
    c.keep_alive = 0;
    let (_, ack) = Raw::connect_with(hub.addr, c).await;
    assert_eq!(ack.reason, 0);
    assert_eq!(
        ack.properties.server_keep_alive,
        Some(30),
        "keep-alive 0 (off) must not escape max_keepalive"
    );
}

#[tokio::test]
async fn will_delay_is_capped_by_session_expiry() {
    let hub = support::start(|_| {}).await;
    let mut watcher = Raw::connect(hub.addr, V5P, "cap-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let mut c = will_connect("w-capped", 30);
    c.properties.session_expiry_interval = Some(1);
    let (dying, _) = Raw::connect_with(hub.addr, c).await;
    let started = tokio::time::Instant::now();
    drop(dying);
    // §3.1.3.2.2: sent when the delay elapses OR the session ends, whichever is first.
    let p = watcher.next_publish().await;
    assert_eq!(&*p.topic, "wills/w-capped");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "will waited for its 30 s delay instead of the 1 s session expiry"
    );
}

#[tokio::test]
async fn will_after_disconnect_with_will_but_not_after_normal_disconnect() {
    let hub = support::start(|_| {}).await;
    let mut watcher = Raw::connect(hub.addr, V5P, "dw-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    let (mut normal, _) = Raw::connect_with(hub.addr, will_connect("w-normal", 0)).await;
    normal
        .send(&Packet::Disconnect(
            lothub::protocol::packet::Disconnect::default(),
        ))
        .await;
    let (mut with_will, _) = Raw::connect_with(hub.addr, will_connect("w-0x04", 0)).await;
    with_will
        .send(&Packet::Disconnect(lothub::protocol::packet::Disconnect {
            reason: reason::DISCONNECT_WITH_WILL,
            properties: Properties::default(),
        }))
        .await;
    let p = watcher.next_publish().await;
    assert_eq!(&*p.topic, "wills/w-0x04");
    assert!(
        watcher.maybe_publish(QUIET).await.is_none(),
        "a will was sent after a normal DISCONNECT"
    );
}

#[tokio::test]
async fn messages_expiring_in_an_online_queue_are_not_delivered() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5P, "blocked");
    c.properties.receive_maximum = Some(1);
    let (mut sub, _) = Raw::connect_with(hub.addr, c).await;
    sub.subscribe("blk/t", QoS::AtLeastOnce).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "blk-pub").await;
    for i in 1..=3u16 {
        let mut p = publish("blk/t", &[i as u8], QoS::AtLeastOnce, i);
        p.properties.message_expiry_interval = Some(1);
        publisher.publish(p).await;
    }
    let mut p = publish("blk/t", &[9], QoS::AtLeastOnce, 9);
    p.properties.message_expiry_interval = Some(60);
    publisher.publish(p).await;
    // The first one fills the window of 1; the others wait in the hub past their expiry.
    let first = sub.next_publish().await;
    assert_eq!(first.payload[0], 1);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    sub.send(&Packet::PubAck(PubAck::new(first.pkid))).await;
    let next = sub.next_publish().await;
    assert_eq!(
        next.payload[0], 9,
        "a message whose expiry elapsed while queued was delivered"
    );
}

#[tokio::test]
async fn shared_group_prefers_online_members() {
    let hub = support::start(|_| {}).await;
    let mut online = Raw::connect(hub.addr, V5P, "sg-online").await;
    online.subscribe("$share/g/sg/t", QoS::AtLeastOnce).await;
    let mut c = connect_packet(V5P, "sg-offline");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut offline, _) = Raw::connect_with(hub.addr, c).await;
    offline.subscribe("$share/g/sg/t", QoS::AtLeastOnce).await;
    offline
        .send(&Packet::Disconnect(
            lothub::protocol::packet::Disconnect::default(),
        ))
        .await;
    drop(offline);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut publisher = Raw::connect(hub.addr, V5P, "sg-pub").await;
    for i in 1..=4u16 {
        publisher
            .publish(publish("sg/t", &[i as u8], QoS::AtLeastOnce, i))
            .await;
    }
    for i in 1..=4u8 {
        let p = online.next_publish().await;
        assert_eq!(p.payload[0], i, "a job went to the offline member");
        online.send(&Packet::PubAck(PubAck::new(p.pkid))).await;
    }
}

#[tokio::test]
async fn unsubscribing_a_shared_member_gives_its_share_to_the_others() {
    let hub = support::start(|_| {}).await;
    let mut a = Raw::connect(hub.addr, V5P, "su-a").await;
    a.subscribe("$share/g/su/t", QoS::AtMostOnce).await;
    let mut b = Raw::connect(hub.addr, V5P, "su-b").await;
    b.subscribe("$share/g/su/t", QoS::AtMostOnce).await;
    b.send(&Packet::Unsubscribe(
        lothub::protocol::packet::Unsubscribe {
            pkid: 2,
            filters: vec!["$share/g/su/t".into()],
            properties: Properties::default(),
        },
    ))
    .await;
    match b.packet().await {
        Packet::UnsubAck(ack) => assert_eq!(ack.reasons, vec![reason::SUCCESS]),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    let mut publisher = Raw::connect(hub.addr, V5P, "su-pub").await;
    for i in 1..=4u16 {
        publisher
            .publish(publish("su/t", &[i as u8], QoS::AtLeastOnce, i))
            .await;
    }
    for _ in 0..4 {
        a.next_publish().await;
    }
    assert!(b.maybe_publish(QUIET).await.is_none());
}

#[tokio::test]
async fn retained_message_too_large_for_the_client_is_skipped() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "rbig-pub").await;
    let mut big = publish("rbig/big", &[1u8; 1000], QoS::AtLeastOnce, 1);
    big.retain = true;
    publisher.publish(big).await;
    let mut small = publish("rbig/small", b"s", QoS::AtLeastOnce, 2);
    small.retain = true;
    publisher.publish(small).await;
    let mut c = connect_packet(V5P, "rbig-sub");
    c.properties.maximum_packet_size = Some(100);
    let (mut sub, _) = Raw::connect_with(hub.addr, c).await;
    sub.subscribe("rbig/#", QoS::AtMostOnce).await;
    let p = sub.next_publish().await;
    assert_eq!(&*p.topic, "rbig/small");
    assert!(sub.maybe_publish(QUIET).await.is_none());
}

#[tokio::test]
async fn will_properties_are_forwarded() {
    let hub = support::start(|_| {}).await;
    let mut watcher = Raw::connect(hub.addr, V5P, "wp-watch").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let mut c = will_connect("w-props", 0);
    if let Some(w) = c.will.as_mut() {
        w.properties.user_properties = vec![("why".into(), "test".into())];
        w.properties.content_type = Some("text/plain".into());
        w.properties.message_expiry_interval = Some(50);
    }
    let (dying, _) = Raw::connect_with(hub.addr, c).await;
    drop(dying);
    let p = watcher.next_publish().await;
    assert_eq!(&*p.topic, "wills/w-props");
    assert_eq!(
        p.properties.user_properties,
        vec![("why".to_string(), "test".to_string())]
    );
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    assert!(matches!(
        p.properties.message_expiry_interval,
        Some(45..=50)
    ));
}

#[tokio::test]
async fn no_retained_messages_for_a_new_shared_subscription() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5P, "sr-pub").await;
    let mut p = publish("sr/state", b"kept", QoS::AtLeastOnce, 1);
    p.retain = true;
    publisher.publish(p).await;
    // Shared subscriptions get no retained messages on subscribe (MQTT 5 shared-subscription
    // rules as VerneMQ's maintainers read them, vernemq#337): otherwise every member would get
    // the same retained message, defeating the sharing.
    let mut member = Raw::connect(hub.addr, V5P, "sr-member").await;
    member
        .subscribe("$share/g/sr/state", QoS::AtLeastOnce)
        .await;
    assert!(
        member.maybe_publish(QUIET).await.is_none(),
        "retained message sent to a shared subscription"
    );
    // Later publications still reach the group.
    publisher
        .publish(publish("sr/state", b"live", QoS::AtLeastOnce, 2))
        .await;
    assert_eq!(&member.next_publish().await.payload[..], b"live");
}
