//! Mosquitto-style `$SYS/broker/...` statistics end to end (commands-and-sys.md §4): the topics
//! appear, retained, with plausible values that follow what this test's own clients do; `#` and
//! `+` at the first level never match them; clients cannot publish into `$SYS/broker`.

mod support;

use lothub::protocol::packet::{ProtocolVersion, QoS};
use std::collections::HashMap;
use std::time::Duration;
use support::raw::{QUIET, Raw, publish};
use tokio::time::timeout;

const V5: ProtocolVersion = ProtocolVersion::V5;

async fn fast_sys_hub() -> support::TestHub {
    support::start(|s| s.sys_interval = Duration::from_secs(1)).await
}

/// Reads whole `$SYS` ticks (the hub publishes `version` first and `uptime` last, see
/// `Stats::render`) until `done` holds for one tick's values, within 10 s.
async fn wait_for(
    c: &mut Raw,
    what: &str,
    mut done: impl FnMut(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let mut last = HashMap::new();
    let found = timeout(Duration::from_secs(10), async {
        loop {
            let mut tick = HashMap::new();
            let mut started = false;
            loop {
                let p = c.next_publish().await;
                let value = String::from_utf8(p.payload.to_vec()).expect("$SYS payload is text");
                if &*p.topic == "$SYS/broker/version" {
                    started = true;
                    tick.clear();
                }
                let end = &*p.topic == "$SYS/broker/uptime";
                tick.insert(p.topic.to_string(), value);
                if started && end {
                    break;
                }
            }
            if done(&tick) {
                return tick;
            }
            last = tick;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("$SYS never showed {what}; last tick: {last:#?}"))
}

fn num(map: &HashMap<String, String>, suffix: &str) -> Option<u64> {
    map.get(&format!("$SYS/broker/{suffix}"))?.parse().ok()
}

#[tokio::test]
async fn every_listed_topic_appears_with_plausible_values() {
    let hub = fast_sys_hub().await;
    let mut reader = Raw::connect(hub.addr, V5, "sys-reader").await;
    reader.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;
    let _a = Raw::connect(hub.addr, V5, "sys-a").await;
    let _b = Raw::connect(hub.addr, V5, "sys-b").await;

    let counters = [
        "clients/connected",
        "clients/disconnected",
        "clients/maximum",
        "clients/total",
        "messages/received",
        "messages/sent",
        "messages/publish/received",
        "messages/publish/sent",
        "messages/publish/dropped",
        "messages/retained/count",
        "subscriptions/count",
        "load/bytes/received",
        "load/bytes/sent",
    ];
    let seen = wait_for(&mut reader, "3 connected clients and every topic", |m| {
        num(m, "clients/connected") == Some(3)
            && m.contains_key("$SYS/broker/version")
            && m.contains_key("$SYS/broker/uptime")
            && counters.iter().all(|c| num(m, c).is_some())
    })
    .await;

    let version = &seen["$SYS/broker/version"];
    assert!(version.starts_with("lothub "), "version: {version}");
    let uptime = &seen["$SYS/broker/uptime"];
    let secs = uptime
        .strip_suffix(" seconds")
        .and_then(|n| n.parse::<u64>().ok());
    assert!(matches!(secs, Some(0..=60)), "uptime: {uptime}");
    assert!(num(&seen, "clients/maximum").unwrap() >= 3);
    assert!(num(&seen, "clients/total").unwrap() >= 3);
    // Our reader's own SUBSCRIBE and three CONNECTs were received; SUBACKs were sent.
    assert!(num(&seen, "messages/received").unwrap() >= 4);
    assert!(num(&seen, "messages/sent").unwrap() >= 4);
    assert!(num(&seen, "subscriptions/count").unwrap() >= 1);
    assert!(num(&seen, "load/bytes/received").unwrap() > 0);
    assert!(num(&seen, "load/bytes/sent").unwrap() > 0);
}

#[tokio::test]
async fn counters_follow_client_activity() {
    let hub = fast_sys_hub().await;
    let mut reader = Raw::connect(hub.addr, V5, "sys-reader").await;
    reader.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;

    let mut worker = Raw::connect(hub.addr, V5, "sys-worker").await;
    worker.subscribe("sysdemo/a", QoS::AtMostOnce).await;
    worker.subscribe("sysdemo/b", QoS::AtMostOnce).await;
    for i in 1..=5u16 {
        let mut p = publish(&format!("sysdemo/r{i}"), b"v", QoS::AtLeastOnce, i);
        p.retain = true;
        worker.publish(p).await;
    }
    worker
        .publish(publish("sysdemo/a", b"x", QoS::AtLeastOnce, 9))
        .await;
    worker.next_publish().await;

    // The retained count includes the hub's own retained $SYS topics, so judge it by its change:
    // once the $SYS topics themselves are stored (uptime >= 3 s), clearing our 5 retained
    // messages must lower it by exactly 5.
    let before = wait_for(&mut reader, "the worker's activity", |m| {
        num(m, "messages/retained/count").is_some_and(|n| n >= 5)
            && m.get("$SYS/broker/uptime")
                .and_then(|u| u.strip_suffix(" seconds")?.parse::<u64>().ok())
                .is_some_and(|u| u >= 3)
            && num(m, "subscriptions/count").is_some_and(|n| n >= 3)
            && num(m, "messages/publish/received").is_some_and(|n| n >= 6)
            && num(m, "messages/publish/sent").is_some_and(|n| n >= 1)
            && num(m, "clients/connected") == Some(2)
    })
    .await;
    let retained_before = num(&before, "messages/retained/count").unwrap();
    for i in 1..=5u16 {
        let mut p = publish(&format!("sysdemo/r{i}"), b"", QoS::AtLeastOnce, 20 + i);
        p.retain = true;
        worker.publish(p).await;
    }
    wait_for(&mut reader, "the retained count drop by 5", |m| {
        num(m, "messages/retained/count") == Some(retained_before - 5)
    })
    .await;

    drop(worker);
    wait_for(&mut reader, "the worker's disconnect", |m| {
        num(m, "clients/connected") == Some(1)
    })
    .await;
}

#[tokio::test]
async fn first_level_wildcards_do_not_match_sys() {
    let hub = fast_sys_hub().await;
    let mut hash = Raw::connect(hub.addr, V5, "hash").await;
    hash.subscribe("#", QoS::AtMostOnce).await;
    let mut plus = Raw::connect(hub.addr, V5, "plus").await;
    plus.subscribe("+/broker/uptime", QoS::AtMostOnce).await;
    let mut direct = Raw::connect(hub.addr, V5, "direct").await;
    direct
        .subscribe("$SYS/broker/uptime", QoS::AtMostOnce)
        .await;
    // The direct subscriber proves $SYS messages are flowing during the window.
    let p = direct.next_publish().await;
    assert_eq!(&*p.topic, "$SYS/broker/uptime");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while let Some(p) = hash.maybe_publish(QUIET).await {
        assert!(!p.topic.starts_with('$'), "# matched {}", p.topic);
    }
    assert!(plus.maybe_publish(QUIET).await.is_none(), "+ matched $SYS");
}

#[tokio::test]
async fn clients_cannot_publish_into_sys_broker() {
    let hub = fast_sys_hub().await;
    let mut watcher = Raw::connect(hub.addr, V5, "sys-watch").await;
    watcher
        .subscribe("$SYS/broker/clients/connected", QoS::AtMostOnce)
        .await;
    let mut intruder = Raw::connect(hub.addr, V5, "intruder").await;
    let mut fake = publish("$SYS/broker/clients/connected", b"999", QoS::AtLeastOnce, 1);
    fake.retain = true;
    // Either refused with a reason code or silently dropped; never delivered or retained.
    let _ = intruder.publish(fake).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    while let Some(p) = watcher
        .maybe_publish(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        assert_ne!(&p.payload[..], b"999", "a client wrote into $SYS/broker");
    }
}

#[tokio::test]
async fn offline_persistent_sessions_count_as_disconnected() {
    let hub = fast_sys_hub().await;
    let mut reader = Raw::connect(hub.addr, V5, "sys-reader").await;
    reader.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;
    let mut c = lothub::protocol::packet::Connect {
        clean_start: false,
        ..support::raw::connect_packet(V5, "sys-persistent")
    };
    c.properties.session_expiry_interval = Some(300);
    let (mut persistent, _) = Raw::connect_with(hub.addr, c.clone()).await;
    persistent.sync().await;
    persistent
        .send(&lothub::protocol::packet::Packet::Disconnect(
            Default::default(),
        ))
        .await;
    drop(persistent);
    let tick = wait_for(&mut reader, "one offline session", |m| {
        num(m, "clients/disconnected") == Some(1) && num(m, "clients/connected") == Some(1)
    })
    .await;
    assert_eq!(num(&tick, "clients/total"), Some(2));
    // Resuming the session moves it back to connected.
    let (_back, ack) = Raw::connect_with(hub.addr, c).await;
    assert!(ack.session_present);
    wait_for(&mut reader, "the session resumed", |m| {
        num(m, "clients/disconnected") == Some(0) && num(m, "clients/connected") == Some(2)
    })
    .await;
}

#[tokio::test]
async fn byte_counters_include_our_traffic() {
    let hub = fast_sys_hub().await;
    let mut reader = Raw::connect(hub.addr, V5, "sys-reader").await;
    reader.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;
    let before = wait_for(&mut reader, "a first complete tick", |m| {
        num(m, "load/bytes/received").is_some() && num(m, "load/bytes/sent").is_some()
    })
    .await;
    let rx0 = num(&before, "load/bytes/received").unwrap();
    let tx0 = num(&before, "load/bytes/sent").unwrap();
    let mut c = Raw::connect(hub.addr, V5, "sys-bytes").await;
    c.subscribe("bytes/t", QoS::AtMostOnce).await;
    c.publish(publish("bytes/t", &[0u8; 20_000], QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(c.next_publish().await.payload.len(), 20_000);
    wait_for(&mut reader, "20 KB more each way", |m| {
        num(m, "load/bytes/received").is_some_and(|n| n >= rx0 + 20_000)
            && num(m, "load/bytes/sent").is_some_and(|n| n >= tx0 + 20_000)
    })
    .await;
}
