//! Protocol errors that conforming brokers must catch (MQTT 5 §4.13, 3.1.1 §4.8): a second
//! CONNECT, bad CONNECT fields, DUP on QoS 0, empty SUBSCRIBE/UNSUBSCRIBE, subscription
//! identifier 0, PUBREL for an unknown id, session expiry set on DISCONNECT after 0. Each closes
//! (or refuses) only the offender; the hub keeps serving.

mod support;

use lothub::protocol::packet::{
    Disconnect, Packet, Properties, ProtocolVersion, PubAck, QoS, reason,
};
use support::raw::{Raw, Read, assert_still_serving, connect_packet, opts, publish};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Writes `bytes` as the first thing on a new socket; returns the CONNACK reason (if any) and
/// asserts the socket is closed or refused.
async fn connect_refused(
    addr: std::net::SocketAddr,
    version: ProtocolVersion,
    bytes: &[u8],
) -> Option<u8> {
    let mut c = Raw::open(addr, version).await;
    c.send_bytes(bytes).await;
    let mut code = None;
    loop {
        match c.read().await {
            Read::Closed => return code,
            Read::Packet(Packet::ConnAck(a)) => {
                assert_ne!(a.reason, 0, "bad CONNECT accepted: {a:?}");
                code = Some(a.reason);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A 3.1.1 CONNECT with the given flags byte and payload, written by hand.
fn v311_connect(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3C];
    body.extend_from_slice(payload);
    let mut out = vec![0x10, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

fn str16(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

#[tokio::test]
async fn second_connect_is_a_protocol_error() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "twice").await;
    c.send(&Packet::Connect(Box::new(connect_packet(V5, "twice"))))
        .await;
    assert_eq!(c.expect_closed().await, Some(reason::PROTOCOL_ERROR));
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn bad_connect_fields_are_refused() {
    let hub = support::start(|_| {}).await;
    // Reserved flag bit 0 set (§3.1.2.3).
    connect_refused(hub.addr, V311, &v311_connect(0x03, &str16(b"id"))).await;
    // Password flag without user name flag (3.1.1 [MQTT-3.1.2-22]).
    let mut payload = str16(b"id");
    payload.extend(str16(b"pw"));
    connect_refused(hub.addr, V311, &v311_connect(0x42, &payload)).await;
    // Will QoS 3.
    let mut payload = str16(b"id");
    payload.extend(str16(b"will/t"));
    payload.extend(str16(b"x"));
    connect_refused(hub.addr, V311, &v311_connect(0x1E, &payload)).await;
    // Will topic with a wildcard.
    let mut payload = str16(b"id");
    payload.extend(str16(b"will/#"));
    payload.extend(str16(b"x"));
    connect_refused(hub.addr, V311, &v311_connect(0x06, &payload)).await;
    // Client id that is not UTF-8.
    connect_refused(hub.addr, V311, &v311_connect(0x02, &str16(&[0xFF, 0xFE]))).await;
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_the_right_connack() {
    let hub = support::start(|_| {}).await;
    // 3.1.1-shaped CONNECT with level 6: 3.1.1 return code 1 (unacceptable protocol version).
    let mut bytes = v311_connect(0x02, &str16(b"id"));
    bytes[8] = 6;
    let code = connect_refused(hub.addr, V311, &bytes).await;
    assert!(
        matches!(code, None | Some(reason::UNSUPPORTED_PROTOCOL_VERSION)),
        "{code:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn dup_flag_on_qos0_is_malformed() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "dup0").await;
    // PUBLISH, DUP=1, QoS 0: [MQTT-3.3.1-2].
    c.send_bytes(&[0x38, 0x04, 0x00, 0x01, b't', 0x00]).await;
    // The spec names no code; the packet parses, so Protocol Error fits as well as Malformed.
    let r = c.expect_closed().await;
    assert!(
        matches!(r, Some(reason::PROTOCOL_ERROR | reason::MALFORMED_PACKET)),
        "{r:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn empty_subscribe_and_unsubscribe_are_protocol_errors() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "empty-sub").await;
    // SUBSCRIBE pkid 1, empty properties, no filters ([MQTT-3.8.3-2]).
    c.send_bytes(&[0x82, 0x03, 0x00, 0x01, 0x00]).await;
    let r = c.expect_closed().await;
    assert!(
        matches!(r, Some(reason::PROTOCOL_ERROR | reason::MALFORMED_PACKET)),
        "{r:?}"
    );
    let mut c = Raw::connect(hub.addr, V5, "empty-unsub").await;
    c.send_bytes(&[0xA2, 0x03, 0x00, 0x01, 0x00]).await;
    let r = c.expect_closed().await;
    assert!(
        matches!(r, Some(reason::PROTOCOL_ERROR | reason::MALFORMED_PACKET)),
        "{r:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn subscription_identifier_zero_is_a_protocol_error() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "subid0").await;
    // SUBSCRIBE pkid 1, properties: 0x0B subscription identifier 0; filter "a" QoS 0.
    c.send_bytes(&[
        0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'a', 0x00,
    ])
    .await;
    let r = c.expect_closed().await;
    assert!(
        matches!(r, Some(reason::PROTOCOL_ERROR | reason::MALFORMED_PACKET)),
        "{r:?}"
    );
    assert_still_serving(hub.addr).await;
}

#[tokio::test]
async fn pubrel_for_an_unknown_id_gets_0x92_and_stray_pubacks_are_ignored() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "stray").await;
    c.send(&Packet::PubAck(PubAck::new(77))).await;
    c.send(&Packet::PubRel(PubAck::new(78))).await;
    match c.packet().await {
        Packet::PubComp(ack) => {
            assert_eq!(ack.pkid, 78);
            assert_eq!(ack.reason, reason::PACKET_IDENTIFIER_NOT_FOUND);
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    // Still connected and working.
    c.subscribe("stray/t", QoS::AtMostOnce).await;
    c.publish(publish("stray/t", b"ok", QoS::AtLeastOnce, 3))
        .await;
    assert_eq!(&c.next_publish().await.payload[..], b"ok");
}

#[tokio::test]
async fn session_expiry_on_disconnect_after_zero_is_a_protocol_error() {
    let hub = support::start(|_| {}).await;
    let mut watcher = Raw::connect(hub.addr, V5, "sx-watch").await;
    watcher.subscribe("sx/will", QoS::AtLeastOnce).await;
    let mut connect = connect_packet(V5, "sx");
    connect.will = Some(lothub::protocol::packet::Will {
        topic: "sx/will".into(),
        payload: bytes::Bytes::from_static(b"w"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    let (mut c, _) = Raw::connect_with(hub.addr, connect).await;
    // CONNECT had no Session Expiry (0); DISCONNECT sets one: [MQTT-3.14.2-2].
    c.send(&Packet::Disconnect(Disconnect {
        reason: 0,
        properties: Properties {
            session_expiry_interval: Some(100),
            ..Properties::default()
        },
    }))
    .await;
    let r = c.expect_closed().await;
    assert!(matches!(r, None | Some(reason::PROTOCOL_ERROR)), "{r:?}");
    // The DISCONNECT was not a normal one, so the will is published (§3.14.4).
    let p = watcher.next_publish().await;
    assert_eq!(&*p.topic, "sx/will");
}

#[tokio::test]
async fn granted_qos_2_and_repeated_filters_in_one_subscribe() {
    let hub = support::start(|_| {}).await;
    let mut c = Raw::connect(hub.addr, V5, "rep").await;
    let reasons = c
        .subscribe_with(
            1,
            &[
                ("rep/t", opts(QoS::AtMostOnce)),
                ("rep/t", opts(QoS::ExactlyOnce)),
            ],
            Properties::default(),
        )
        .await;
    assert_eq!(reasons, vec![0, 2]);
    let mut p = Raw::connect(hub.addr, V5, "rep-pub").await;
    p.publish(publish("rep/t", b"x", QoS::ExactlyOnce, 1)).await;
    let got = c.next_publish().await;
    // The later filter replaced the earlier one (§3.8.4): one copy, QoS 2.
    assert_eq!(got.qos, QoS::ExactlyOnce);
    assert!(c.maybe_publish(support::raw::QUIET).await.is_none());
}
