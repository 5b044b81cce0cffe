//! Every refusal rule of the decoder, each asserting the MQTT 5 reason code the broker will send
//! (0x81 malformed, 0x82 protocol error, 0x84 unsupported version, 0x85 client id, 0x90 topic
//! name, 0x95 too large).

use super::packet::ProtocolVersion;
use super::test_support::{BIG, packet, reason_of};
use super::{ProtocolError, decode};
use bytes::BytesMut;

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A CONNECT body for `name`/`level` with `flags`, no properties, client id "c" and `rest`.
fn connect(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&[0, 1, b'c']);
    body.extend_from_slice(rest);
    packet(0x10, &body)
}

#[test]
fn remaining_length_of_five_bytes_is_malformed() {
    // Four continuation bytes prove a fifth: refused without waiting for it.
    assert_eq!(reason_of(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF], V5), 0x81);
    assert_eq!(reason_of(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01], V3), 0x81);
}

#[test]
fn oversize_packet_fails_from_the_header_alone() {
    // 2 + 16383 bytes announced, only the header present, limit 1000.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0x7F][..]);
    let err = decode(&mut buf, Some(V5), 1000).unwrap_err();
    assert_eq!(err.reason_code(), 0x95);
    assert_eq!(
        err,
        ProtocolError::PacketTooLarge {
            size: 3 + 16_383,
            max: 1000
        }
    );
    // The limit counts the whole packet: 2 + 4 bytes against a limit of 6 passes, of 5 fails.
    let ack = [0x40, 2, 0, 1];
    assert!(
        decode(&mut BytesMut::from(&ack[..]), Some(V3), 4)
            .unwrap()
            .is_some()
    );
    let err = decode(&mut BytesMut::from(&ack[..]), Some(V3), 3).unwrap_err();
    assert_eq!(err.reason_code(), 0x95);
    // The largest legal Remaining Length with a limit above it waits for bytes, no allocation.
    let mut huge = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let cap = huge.capacity();
    assert_eq!(decode(&mut huge, Some(V3), usize::MAX).unwrap(), None);
    assert_eq!(huge.capacity(), cap);
}

#[test]
fn first_packet_must_be_connect() {
    let mut buf = BytesMut::from(&[0xC0, 0][..]);
    let err = decode(&mut buf, None, BIG).unwrap_err();
    assert_eq!(err, ProtocolError::FirstPacketNotConnect(12));
    assert_eq!(err.reason_code(), 0x82);
    // Decided from the first byte alone.
    let mut one = BytesMut::from(&[0x30][..]);
    assert_eq!(decode(&mut one, None, BIG).unwrap_err().reason_code(), 0x82);
}

#[test]
fn reserved_fixed_header_flags() {
    for bytes in [
        &[0x60, 2, 0, 1][..],            // PUBREL must be 0b0010
        &[0x63, 2, 0, 1],                // PUBREL must be 0b0010
        &[0x41, 2, 0, 1],                // PUBACK must be 0
        &[0x80, 6, 0, 1, 0, 1, b'a', 0], // SUBSCRIBE must be 0b0010
        &[0xA0, 5, 0, 1, 0, 1, b'a'],    // UNSUBSCRIBE must be 0b0010
        &[0xC1, 0],                      // PINGREQ must be 0
        &[0xE2, 0],                      // DISCONNECT must be 0
    ] {
        assert_eq!(reason_of(bytes, V3), 0x81, "{bytes:02X?}");
        assert_eq!(reason_of(bytes, V5), 0x81, "{bytes:02X?}");
    }
    let mut c = connect(b"MQTT", 4, 0x02, &[]);
    c[0] = 0x11;
    assert_eq!(reason_of(&c, V3), 0x81);
}

#[test]
fn reserved_packet_type_and_auth_outside_v5() {
    assert_eq!(reason_of(&[0x00, 0], V5), 0x81);
    assert_eq!(reason_of(&[0xF0, 0], V3), 0x81);
    assert_eq!(reason_of(&[0xF0, 0], ProtocolVersion::V3_1), 0x81);
}

#[test]
fn publish_flag_rules() {
    // QoS 3 is malformed in every version.
    assert_eq!(reason_of(&[0x36, 5, 0, 1, b't', 0, 1], V3), 0x81);
    assert_eq!(reason_of(&[0x36, 6, 0, 1, b't', 0, 1, 0], V5), 0x81);
    // DUP on QoS 0: protocol error in MQTT 5, malformed in 3.1.1.
    assert_eq!(reason_of(&[0x38, 4, 0, 1, b't', b'x'], V5), 0x82);
    assert_eq!(reason_of(&[0x38, 3, 0, 1, b't'], V3), 0x81);
    // Packet identifier 0 on QoS 1 and 2.
    assert_eq!(reason_of(&[0x32, 5, 0, 1, b't', 0, 0], V3), 0x81);
    assert_eq!(reason_of(&[0x34, 6, 0, 1, b't', 0, 0, 0], V5), 0x81);
}

#[test]
fn publish_topic_rules() {
    assert_eq!(reason_of(&[0x30, 5, 0, 3, b'a', b'/', b'+'], V3), 0x90);
    assert_eq!(reason_of(&[0x30, 6, 0, 3, b'a', b'/', b'#', 0], V5), 0x90);
    assert_eq!(reason_of(&[0x30, 3, 0, 1, 0], V3), 0x81); // U+0000
    assert_eq!(reason_of(&[0x30, 4, 0, 2, 0xC3, 0x28], V3), 0x81); // bad UTF-8
    assert_eq!(reason_of(&[0x30, 2, 0, 0], V3), 0x90); // empty in 3.1.1
    assert_eq!(reason_of(&[0x30, 3, 0, 0, 0], V5), 0x82); // empty without alias
    // Topic length running past the packet.
    assert_eq!(reason_of(&[0x30, 3, 0, 9, b'a'], V3), 0x81);
    // Topic alias 0 is a protocol error (§3.3.2.3.4).
    assert_eq!(reason_of(&[0x30, 7, 0, 1, b't', 3, 0x23, 0, 0], V5), 0x82);
}

#[test]
fn subscribe_rules() {
    // Packet identifier 0.
    assert_eq!(reason_of(&[0x82, 6, 0, 0, 0, 1, b'a', 0], V3), 0x81);
    assert_eq!(reason_of(&[0xA2, 5, 0, 0, 0, 1, b'a'], V3), 0x81);
    // No topic filter at all.
    assert_eq!(reason_of(&[0x82, 2, 0, 1], V3), 0x81);
    assert_eq!(reason_of(&[0x82, 3, 0, 1, 0], V5), 0x81);
    assert_eq!(reason_of(&[0xA2, 2, 0, 1], V3), 0x81);
    assert_eq!(reason_of(&[0xA2, 3, 0, 1, 0], V5), 0x81);
    // Filter without its options byte.
    assert_eq!(reason_of(&[0x82, 5, 0, 1, 0, 1, b'a'], V3), 0x81);
    // 3.1.1: the upper six option bits are reserved; QoS 3.
    assert_eq!(reason_of(&[0x82, 6, 0, 1, 0, 1, b'a', 0x04], V3), 0x81);
    assert_eq!(reason_of(&[0x82, 6, 0, 1, 0, 1, b'a', 0x03], V3), 0x81);
    // MQTT 5: bits 6-7 reserved (malformed); QoS 3 and retain handling 3 are protocol errors.
    assert_eq!(reason_of(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x40], V5), 0x81);
    assert_eq!(reason_of(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x03], V5), 0x82);
    assert_eq!(reason_of(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30], V5), 0x82);
    // No Local on a shared subscription (§3.8.3.1).
    let shared = [&[0x82, 16, 0, 1, 0, 0, 10][..], b"$share/g/a", &[0x04]].concat();
    assert_eq!(reason_of(&shared, V5), 0x82);
}

#[test]
fn property_rules_inside_packets() {
    // Topic Alias on SUBSCRIBE: not allowed there.
    assert_eq!(
        reason_of(&[0x82, 10, 0, 1, 3, 0x23, 0, 1, 0, 1, b'a', 0], V5),
        0x82
    );
    // Subscription identifier 0.
    assert_eq!(
        reason_of(&[0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, b'a', 0], V5),
        0x82
    );
    // Message expiry twice on PUBLISH.
    let dup = [
        &[0x30, 14, 0, 1, b't', 10][..],
        &[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1],
    ]
    .concat();
    assert_eq!(reason_of(&dup, V5), 0x82);
    // Property length past the end of the packet.
    assert_eq!(reason_of(&[0x40, 4, 0, 1, 0, 9], V5), 0x81);
    // Reason String (allowed on acks) on PUBLISH is not allowed.
    assert_eq!(
        reason_of(&[0x30, 8, 0, 1, b't', 4, 0x1F, 0, 1, b'x'], V5),
        0x82
    );
}

#[test]
fn connect_protocol_name_and_level() {
    for (name, level) in [
        (&b"MQTT"[..], 3),
        (b"MQTT", 6),
        (b"MQIsdp", 4),
        (b"MQTX", 4),
        (b"", 4),
    ] {
        let c = connect(name, level, 0x02, &[]);
        assert_eq!(reason_of(&c, V3), 0x84, "{name:?} level {level}");
    }
}

#[test]
fn connect_flag_rules() {
    // Reserved bit 0.
    assert_eq!(reason_of(&connect(b"MQTT", 4, 0x03, &[]), V3), 0x81);
    assert_eq!(reason_of(&connect(b"MQTT", 5, 0x03, &[]), V5), 0x81);
    // Will QoS or retain without the will flag.
    assert_eq!(reason_of(&connect(b"MQTT", 4, 0x0A, &[]), V3), 0x81);
    assert_eq!(reason_of(&connect(b"MQTT", 5, 0x22, &[]), V5), 0x81);
    // Will QoS 3.
    let will = [0, 1, b'w', 0, 0];
    assert_eq!(reason_of(&connect(b"MQTT", 4, 0x1E, &will), V3), 0x81);
    // Password without user name: malformed in 3.1.1, fine in 5 (covered by the vectors).
    assert_eq!(
        reason_of(&connect(b"MQTT", 4, 0x42, &[0, 1, b'p']), V3),
        0x81
    );
    // Will topic with a wildcard.
    let wild = [0, 1, b'#', 0, 0];
    assert_eq!(reason_of(&connect(b"MQTT", 4, 0x06, &wild), V3), 0x90);
    // Trailing garbage after the last field.
    assert_eq!(reason_of(&connect(b"MQTT", 4, 0x02, &[0xAA]), V3), 0x81);
    // User name flag without the user name.
    assert_eq!(reason_of(&connect(b"MQTT", 4, 0x82, &[]), V3), 0x81);
}

#[test]
fn connect_client_id_rules() {
    let empty_id = |level: u8, name: &[u8], flags: u8| {
        let mut body = vec![0, name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, flags, 0, 60]);
        if level == 5 {
            body.push(0);
        }
        body.extend_from_slice(&[0, 0]);
        packet(0x10, &body)
    };
    // 3.1.1 §3.1.3.1: empty id needs clean session.
    assert_eq!(reason_of(&empty_id(4, b"MQTT", 0x00), V3), 0x85);
    // 3.1: an id is always required.
    assert_eq!(reason_of(&empty_id(3, b"MQIsdp", 0x02), V3), 0x85);
    // MQTT 5: the server assigns one, even without clean start.
    assert!(super::test_support::decode_one(&empty_id(5, b"MQTT", 0x00), V5).is_ok());
}

#[test]
fn ping_and_disconnect_must_be_empty() {
    assert_eq!(reason_of(&[0xC0, 1, 0], V3), 0x81);
    assert_eq!(reason_of(&[0xD0, 1, 0], V5), 0x81);
    assert_eq!(reason_of(&[0xE0, 1, 0], V3), 0x81);
    assert_eq!(reason_of(&[0x40, 3, 0, 1, 0], V3), 0x81); // 3.1.1 acks are exactly 2 bytes
    assert_eq!(reason_of(&[0x40, 1, 0], V5), 0x81);
    assert_eq!(reason_of(&[0x20, 3, 0, 0, 0], V3), 0x81);
    assert_eq!(reason_of(&[0x20, 3, 0x02, 0, 0], V5), 0x81); // reserved CONNACK flag
}
