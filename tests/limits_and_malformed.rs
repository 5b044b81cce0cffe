//! Limits and malformed input end to end (broker.md "Limits and protection" and "Pitfalls",
//! issue #2). Each test checks that the offending connection is closed (with the MQTT 5 reason
//! code where the client speaks 5) AND that the hub still serves another client afterwards.
//!
//! Malformed packets are written as raw bytes: no client library will produce them.

mod support;

use lothub::protocol::packet::{Packet, ProtocolVersion, QoS, reason};
use std::time::Duration;
use support::raw::{Raw, Read, assert_still_serving, connect_packet, publish};
use tokio::time::timeout;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Appends the MQTT variable byte integer encoding of `n`.
fn varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

/// A PUBLISH written by hand: any topic bytes, any flags, optional packet id.
fn raw_publish(flags: u8, topic: &[u8], pkid: Option<u16>, v5: bool, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    if let Some(id) = pkid {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if v5 {
        body.push(0); // empty property block
    }
    body.extend_from_slice(payload);
    let mut out = vec![0x30 | flags];
    varint(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Sends `bytes` on a fresh connected session of `version` and returns the close reason.
async fn close_reason_after(
    addr: std::net::SocketAddr,
    version: ProtocolVersion,
    bytes: &[u8],
) -> Option<u8> {
    let mut c = Raw::connect(addr, version, "offender").await;
    c.send_bytes(bytes).await;
    c.expect_closed().await
}

#[tokio::test]
async fn five_byte_remaining_length_is_malformed() {
    let hub = support::start(|_| {}).await;
    let bad = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    assert_eq!(
        close_reason_after(hub.addr, V5, &bad).await,
        Some(reason::MALFORMED_PACKET)
    );
    // Before CONNECT too: a CONNECT whose length has 5 bytes.
    let mut c = Raw::open(hub.addr, V5).await;
    c.send_bytes(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).await;
    c.expect_closed().await;
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn first_packet_must_be_connect() {
    let hub = support::start(|_| {}).await;
    for first in [
        vec![0xC0, 0x00],                                     // PINGREQ
        raw_publish(0, b"a/b", None, false, b"x"),            // PUBLISH
        vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00], // SUBSCRIBE
    ] {
        let mut c = Raw::open(hub.addr, V311).await;
        c.send_bytes(&first).await;
        // No CONNACK, no PINGRESP: just closed.
        match c.read().await {
            Read::Closed => {}
            other => panic!("expected the socket closed, got {other:?}"),
        }
    }
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn wildcard_in_publish_topic_closes() {
    let hub = support::start(|_| {}).await;
    for topic in [&b"a/+/b"[..], b"a/#", b"#"] {
        let r = close_reason_after(hub.addr, V5, &raw_publish(0, topic, None, true, b"x")).await;
        assert_eq!(r, Some(reason::TOPIC_NAME_INVALID), "topic {topic:?}");
    }
    // 3.1.1 has no DISCONNECT from the server: closed is all it can see.
    assert_eq!(
        close_reason_after(hub.addr, V311, &raw_publish(0, b"a/+", None, false, b"x")).await,
        None
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn nul_character_in_topic_closes() {
    let hub = support::start(|_| {}).await;
    let r = close_reason_after(hub.addr, V5, &raw_publish(0, b"a\0b", None, true, b"x")).await;
    // §1.5.4 calls U+0000 in a string a Malformed Packet; 0x90 (topic name invalid) is also a
    // faithful answer for a PUBLISH topic.
    assert!(
        matches!(
            r,
            Some(reason::MALFORMED_PACKET | reason::TOPIC_NAME_INVALID)
        ),
        "got {r:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn invalid_utf8_in_topic_is_malformed() {
    let hub = support::start(|_| {}).await;
    for topic in [&[b'a', 0xC3, 0x28][..], &[0xED, 0xA0, 0x80], &[0xFF]] {
        let r = close_reason_after(hub.addr, V5, &raw_publish(0, topic, None, true, b"x")).await;
        assert_eq!(r, Some(reason::MALFORMED_PACKET), "topic bytes {topic:?}");
    }
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn reserved_flags_are_malformed() {
    let hub = support::start(|_| {}).await;
    // SUBSCRIBE must have flags 0b0010 (§3.8.1); here 0b0000.
    let subscribe_bad_flags = [0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x00];
    assert_eq!(
        close_reason_after(hub.addr, V5, &subscribe_bad_flags).await,
        Some(reason::MALFORMED_PACKET)
    );
    // PINGREQ with a flag bit set.
    assert_eq!(
        close_reason_after(hub.addr, V5, &[0xC1, 0x00]).await,
        Some(reason::MALFORMED_PACKET)
    );
    // PUBLISH with QoS 3 (both QoS bits set, §3.3.1.2).
    assert_eq!(
        close_reason_after(
            hub.addr,
            V5,
            &raw_publish(0b0110, b"a", Some(1), true, b"x")
        )
        .await,
        Some(reason::MALFORMED_PACKET)
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn oversize_packet_refused_before_the_body_arrives() {
    let hub = support::start(|s| s.broker.max_packet_size = 4096).await;
    let mut c = Raw::connect(hub.addr, V5, "big").await;
    // Announce a 100 MB PUBLISH and send only its fixed header: the hub must refuse it from the
    // header alone rather than wait for (or allocate) the body.
    let mut header = vec![0x30];
    varint(&mut header, 100 * 1024 * 1024);
    c.send_bytes(&header).await;
    assert_eq!(c.expect_closed().await, Some(reason::PACKET_TOO_LARGE));
    // A whole packet just over the limit.
    let r = close_reason_after(
        hub.addr,
        V5,
        &raw_publish(0, b"t", None, true, &vec![0u8; 4096]),
    )
    .await;
    assert_eq!(r, Some(reason::PACKET_TOO_LARGE));
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn packet_id_zero_on_qos1_closes() {
    let hub = support::start(|_| {}).await;
    let r = close_reason_after(
        hub.addr,
        V5,
        &raw_publish(0b0010, b"t", Some(0), true, b"x"),
    )
    .await;
    assert!(
        matches!(r, Some(reason::MALFORMED_PACKET | reason::PROTOCOL_ERROR)),
        "got {r:?}"
    );
    assert_eq!(
        close_reason_after(
            hub.addr,
            V311,
            &raw_publish(0b0100, b"t", Some(0), false, b"x")
        )
        .await,
        None
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn connect_deadline_closes_silent_and_slow_sockets() {
    let hub = support::start(|s| s.broker.connect_timeout = Duration::from_secs(1)).await;
    let started = tokio::time::Instant::now();
    let mut silent = Raw::open(hub.addr, V5).await;
    // Slow loris: the first two bytes of a CONNECT, then nothing.
    let mut slow = Raw::open(hub.addr, V5).await;
    slow.send_bytes(&[0x10, 0x20]).await;
    for c in [&mut silent, &mut slow] {
        match c.read_within(Duration::from_secs(4)).await {
            Read::Closed => {}
            other => panic!("socket without CONNECT not closed: {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed before the deadline: {elapsed:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn max_connections_refuses_the_extra_client() {
    let hub = support::start(|s| s.broker.max_connections = 3).await;
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(Raw::connect(hub.addr, V5, &format!("held-{i}")).await);
    }
    let mut extra = Raw::open(hub.addr, V5).await;
    extra
        .send(&Packet::Connect(Box::new(connect_packet(V5, "extra"))))
        .await;
    let mut accepted = false;
    loop {
        match extra.read().await {
            Read::Packet(Packet::ConnAck(ack)) if ack.reason == 0 => accepted = true,
            Read::Packet(Packet::ConnAck(ack)) => {
                assert!(ack.reason >= 0x80, "{ack:?}");
            }
            Read::Packet(_) => {}
            Read::Closed => break,
            Read::Timeout => break,
            Read::Garbage(e) => panic!("{e}"),
        }
        if accepted {
            break;
        }
    }
    assert!(
        !accepted,
        "a fourth connection was accepted with max_connections = 3"
    );
    // The held ones still work; freeing one makes room again.
    held[0].sync().await;
    drop(held.pop());
    let mut ok = false;
    for _ in 0..20 {
        let mut c = Raw::open(hub.addr, V5).await;
        c.send(&Packet::Connect(Box::new(connect_packet(V5, "later"))))
            .await;
        if let Read::Packet(Packet::ConnAck(ack)) = c.read().await
            && ack.reason == 0
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a slot freed by a disconnect was not reused");
}

#[tokio::test]
async fn slow_subscriber_does_not_stall_others_and_drops_are_counted() {
    let hub = support::start(|s| {
        s.broker.max_queued_messages = 50;
        s.sys_interval = Duration::from_secs(1);
    })
    .await;
    // The slow subscriber: tiny receive buffer, never reads after SUBACK.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = timeout(support::raw::WAIT, socket.connect(hub.addr))
        .await
        .unwrap()
        .unwrap();
    let mut slow = Raw::from_stream(stream, V5);
    slow.send(&Packet::Connect(Box::new(connect_packet(V5, "slow"))))
        .await;
    assert!(matches!(
        slow.read().await,
        Read::Packet(Packet::ConnAck(_))
    ));
    slow.subscribe("flood/#", QoS::AtMostOnce).await;

    let mut fast = Raw::connect(hub.addr, V5, "fast").await;
    fast.subscribe("flood/#", QoS::AtMostOnce).await;
    let mut sys = Raw::connect(hub.addr, V5, "sys-reader").await;
    sys.subscribe("$SYS/broker/messages/publish/dropped", QoS::AtMostOnce)
        .await;

    let mut publisher = Raw::connect(hub.addr, V5, "flooder").await;
    let payload = vec![b'x'; 16 * 1024];
    const N: u16 = 600;
    let flood = async {
        for i in 1..=N {
            // QoS 1 paces the publisher by its PUBACKs: a stalled hub would stall it too.
            let r = publisher
                .publish(publish("flood/t", &payload, QoS::AtLeastOnce, i))
                .await;
            assert_eq!(r, Some(0));
        }
    };
    let drain = async {
        let mut got = 0u16;
        while got < N {
            let p = fast.next_publish().await;
            assert_eq!(p.payload.len(), payload.len());
            got += 1;
        }
        got
    };
    let (_, got) = timeout(Duration::from_secs(60), async {
        tokio::join!(flood, drain)
    })
    .await
    .expect("the publisher or the fast subscriber was stalled by the slow one");
    assert_eq!(got, N);

    // The slow subscriber's overflow shows up in $SYS/broker/messages/publish/dropped.
    let dropped = timeout(Duration::from_secs(10), async {
        loop {
            let p = sys.next_publish().await;
            let n: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
            if n > 0 {
                return n;
            }
        }
    })
    .await
    .expect("publish/dropped never rose above 0");
    assert!(dropped > 0);
    drop(slow);
    assert_still_serving(hub.addr).await;
}
