//! Robustness under hostile or chaotic clients (broker.md "Malformed input ... is never a panic"):
//! seeded random garbage after a valid CONNECT, connections cut mid-packet, and connection churn
//! while messages flow. Afterwards the hub still serves and its connected-clients gauge is back
//! to what the test left connected.

mod support;

use lothub::protocol::packet::{Packet, ProtocolVersion, QoS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use support::raw::{Raw, Read, assert_still_serving, connect_packet, publish};
use tokio::task::JoinSet;
use tokio::time::timeout;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Waits until the hub's connected-clients gauge equals `n` (disconnects are asynchronous).
async fn connected_becomes(hub: &support::TestHub, n: u64) {
    let stats = hub.hub.broker().stats();
    let reached = timeout(Duration::from_secs(10), async {
        while stats.clients_connected() != n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "clients/connected stuck at {} (expected {n})",
        stats.clients_connected()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_random_garbage_never_kills_the_hub() {
    let hub = support::start(|s| s.broker.max_packet_size = 64 * 1024).await;
    let addr = hub.addr;
    let mut tasks = JoinSet::new();
    for seed in 0..64u64 {
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let version = if seed % 2 == 0 { V5 } else { V311 };
            let mut c = Raw::connect(addr, version, &format!("garbage-{seed}")).await;
            let len = rng.gen_range(1..512);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            // Half the time, start with a plausible PUBLISH header to get past the first byte.
            if seed % 4 < 2 {
                bytes[0] = 0x30 | (bytes[0] & 0x0F);
            }
            c.send_bytes(&bytes).await;
            // Either the hub closes us, or it is waiting for more bytes; both are fine, a hang
            // of the whole hub is not (checked below).
            let _ = c.read_within(Duration::from_millis(500)).await;
        });
    }
    timeout(Duration::from_secs(30), async {
        while let Some(r) = tasks.join_next().await {
            r.expect("a garbage client task panicked");
        }
    })
    .await
    .expect("garbage clients did not finish");
    assert_still_serving(addr).await;
    connected_becomes(&hub, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_mid_packet_are_cleaned_up() {
    let hub = support::start(|_| {}).await;
    let addr = hub.addr;
    for i in 0..30u16 {
        let mut c = Raw::connect(addr, V5, &format!("cut-{i}")).await;
        // The first half of a SUBSCRIBE or a PUBLISH, then the socket goes away.
        if i % 2 == 0 {
            c.send_bytes(&[0x82, 0x0A, 0x00, 0x01, 0x00]).await;
        } else {
            c.send_bytes(&[0x32, 0x40, 0x00, 0x05, b'a', b'/']).await;
        }
        drop(c);
    }
    // And a CONNECT cut in the middle.
    let mut half = Raw::open(addr, V5).await;
    half.send_bytes(&[0x10, 0x20, 0x00, 0x04, b'M']).await;
    drop(half);
    connected_becomes(&hub, 0).await;
    assert_still_serving(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_while_messages_flow() {
    let hub = support::start(|_| {}).await;
    let addr = hub.addr;
    let mut steady = Raw::connect(addr, V5, "steady").await;
    steady.subscribe("churn/#", QoS::AtLeastOnce).await;

    let mut tasks = JoinSet::new();
    for w in 0..8u16 {
        tasks.spawn(async move {
            for round in 0..10u16 {
                let id = format!("churner-{w}");
                let mut c = connect_packet(V5, &id);
                // Alternate clean and persistent sessions, and takeovers of the same id.
                c.clean_start = round % 2 == 0;
                c.properties.session_expiry_interval = Some(if round % 2 == 0 { 0 } else { 5 });
                let (mut raw, ack) = Raw::connect_with(addr, c).await;
                assert_eq!(ack.reason, 0);
                raw.subscribe(&format!("churn/{w}"), QoS::AtLeastOnce).await;
                raw.publish(publish(
                    &format!("churn/{w}"),
                    &round.to_be_bytes(),
                    QoS::AtLeastOnce,
                    round + 1,
                ))
                .await;
                if round % 3 == 0 {
                    raw.send(&Packet::Disconnect(Default::default())).await;
                }
                drop(raw);
            }
        });
    }
    timeout(Duration::from_secs(60), async {
        while let Some(r) = tasks.join_next().await {
            r.expect("a churning client panicked");
        }
    })
    .await
    .expect("churn did not finish");
    // The steady subscriber saw all 80 messages.
    let mut seen = 0;
    while seen < 80 {
        match steady.read().await {
            Read::Packet(Packet::Publish(p)) => {
                seen += 1;
                steady
                    .send(&Packet::PubAck(lothub::protocol::packet::PubAck::new(
                        p.pkid,
                    )))
                    .await;
            }
            Read::Packet(_) => {}
            other => panic!("steady subscriber lost after {seen}: {other:?}"),
        }
    }
    connected_becomes(&hub, 1).await;
    assert_still_serving(addr).await;
}
