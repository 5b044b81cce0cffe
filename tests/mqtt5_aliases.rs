//! Topic aliases under pressure (MQTT 5 §3.3.2.3.4): more topics than the client's Topic Alias
//! Maximum, retained messages published through an alias, and wills next to aliases.
//! The basic cases are in `mqtt5_features.rs`.

mod support;

use lothub::protocol::packet::{Packet, ProtocolVersion, QoS};
use std::collections::HashMap;
use support::raw::{Raw, connect_packet, publish};

const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn broker_aliases_stay_consistent_when_topics_outnumber_the_maximum() {
    let hub = support::start(|_| {}).await;
    let mut c = connect_packet(V5, "alias-small");
    c.properties.topic_alias_maximum = Some(2);
    let (mut sub, _) = Raw::connect_with(hub.addr, c).await;
    sub.subscribe("many/#", QoS::AtMostOnce).await;
    let mut publisher = Raw::connect(hub.addr, V5, "alias-many-src").await;

    let topics: Vec<String> = (0..5).map(|i| format!("many/{i}")).collect();
    let mut sent = Vec::new();
    for round in 0..4 {
        for (i, t) in topics.iter().enumerate() {
            // A mix of repeats and new topics, so the broker has to replace aliases.
            let t = if round % 2 == 0 { t } else { &topics[i % 2] };
            let n = sent.len() as u16;
            sent.push(t.clone());
            publisher
                .send(&Packet::Publish(publish(
                    t,
                    &n.to_be_bytes(),
                    QoS::AtMostOnce,
                    0,
                )))
                .await;
        }
    }
    // The client's view of the alias table, updated exactly as §3.3.2.3.4 says.
    let mut table: HashMap<u16, String> = HashMap::new();
    for (n, expected) in sent.iter().enumerate() {
        let p = sub.next_publish().await;
        assert_eq!(
            u16::from_be_bytes([p.payload[0], p.payload[1]]),
            n as u16,
            "lost or reordered"
        );
        let topic = match p.properties.topic_alias {
            None => p.topic.to_string(),
            Some(alias) => {
                assert!(
                    (1..=2).contains(&alias),
                    "alias {alias} above our maximum 2"
                );
                if p.topic.is_empty() {
                    table
                        .get(&alias)
                        .cloned()
                        .unwrap_or_else(|| panic!("alias {alias} used before being set"))
                } else {
                    table.insert(alias, p.topic.to_string());
                    p.topic.to_string()
                }
            }
        };
        assert_eq!(&topic, expected, "message {n} resolved to the wrong topic");
    }
}

#[tokio::test]
async fn retained_message_published_through_an_alias_keeps_its_topic() {
    let hub = support::start(|_| {}).await;
    let mut publisher = Raw::connect(hub.addr, V5, "alias-retain").await;
    let mut first = publish("ar/temp", b"20", QoS::AtLeastOnce, 1);
    first.properties.topic_alias = Some(1);
    publisher.publish(first).await;
    let mut second = publish("", b"21", QoS::AtLeastOnce, 2);
    second.retain = true;
    second.properties.topic_alias = Some(1);
    publisher.publish(second).await;

    let mut late = Raw::connect(hub.addr, V5, "alias-retain-late").await;
    late.subscribe("ar/#", QoS::AtMostOnce).await;
    let p = late.next_publish().await;
    assert_eq!(&*p.topic, "ar/temp", "retained under the wrong topic");
    assert_eq!(&p.payload[..], b"21");
    assert!(p.retain);
    assert_eq!(
        p.properties.topic_alias, None,
        "the publisher's alias leaked to another client"
    );
}

#[tokio::test]
async fn aliases_are_per_connection() {
    let hub = support::start(|_| {}).await;
    let mut sub = Raw::connect(hub.addr, V5, "alias-iso-sub").await;
    sub.subscribe("iso/#", QoS::AtMostOnce).await;
    let mut a = Raw::connect(hub.addr, V5, "alias-iso-a").await;
    let mut b = Raw::connect(hub.addr, V5, "alias-iso-b").await;
    let mut pa = publish("iso/a", b"a1", QoS::AtMostOnce, 0);
    pa.properties.topic_alias = Some(1);
    a.send(&Packet::Publish(pa)).await;
    let mut pb = publish("iso/b", b"b1", QoS::AtMostOnce, 0);
    pb.properties.topic_alias = Some(1);
    b.send(&Packet::Publish(pb)).await;
    let mut pa = publish("", b"a2", QoS::AtMostOnce, 0);
    pa.properties.topic_alias = Some(1);
    a.send(&Packet::Publish(pa)).await;

    let mut got = HashMap::new();
    for _ in 0..3 {
        let p = sub.next_publish().await;
        got.insert(p.payload.to_vec(), p.topic.to_string());
    }
    assert_eq!(
        got[&b"a2".to_vec()],
        "iso/a",
        "alias 1 of A resolved with B's table"
    );
    assert_eq!(got[&b"b1".to_vec()], "iso/b");

    // After a reconnect the table is empty again (§3.3.2.3.4: aliases last one connection).
    drop(a);
    let mut a = Raw::connect(hub.addr, V5, "alias-iso-a").await;
    let mut pa = publish("", b"a3", QoS::AtMostOnce, 0);
    pa.properties.topic_alias = Some(1);
    a.send(&Packet::Publish(pa)).await;
    assert!(
        a.expect_closed().await.is_some_and(|r| r >= 0x80),
        "an alias from the previous connection was accepted"
    );
}
