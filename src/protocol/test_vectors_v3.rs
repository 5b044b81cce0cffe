//! Byte-vector tests for MQTT 3.1.1 (and the 3.1 CONNECT): every packet type, hand-written from
//! the 3.1.1 spec's figures, decoded, re-encoded to the same bytes, and cut at every prefix.

use super::packet::*;
use super::test_support::{packet, roundtrip};
use bytes::Bytes;
use std::sync::Arc;

const V: ProtocolVersion = ProtocolVersion::V3_1_1;

fn connect(protocol: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

#[test]
fn connect_minimal() {
    // §3.1.2: name "MQTT", level 4, flags clean session, keep alive 60, client id "c1".
    let bytes = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'c', b'1',
    ];
    roundtrip(&bytes, V, &Packet::Connect(Box::new(connect(V, "c1"))));
}

#[test]
fn connect_with_will_user_and_password() {
    let body = [
        &[0, 4, b'M', b'Q', b'T', b'T', 4][..],
        // user name, password, will retain, will QoS 1, will flag, clean session.
        &[0b1110_1110, 0, 10],
        &[0, 2, b'i', b'd'],
        &[0, 3, b'w', b'/', b't'],
        &[0, 3, b'b', b'y', b'e'],
        &[0, 1, b'u'],
        &[0, 2, 0xFF, 0x00],
    ]
    .concat();
    let expected = Connect {
        keep_alive: 10,
        will: Some(Will {
            topic: Arc::from("w/t"),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(&[0xFF, 0x00])),
        ..connect(V, "id")
    };
    roundtrip(
        &packet(0x10, &body),
        V,
        &Packet::Connect(Box::new(expected)),
    );
}

#[test]
fn connect_mqtt_3_1() {
    // MQTT 3.1: protocol name "MQIsdp", level 3.
    let body = [
        &[0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60][..],
        &[0, 2, b'c', b'1'],
    ]
    .concat();
    let expected = connect(ProtocolVersion::V3_1, "c1");
    let p = Packet::Connect(Box::new(expected));
    roundtrip(&packet(0x10, &body), ProtocolVersion::V3_1, &p);
}

#[test]
fn connect_empty_client_id_with_clean_session() {
    let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0];
    let expected = Connect {
        keep_alive: 0,
        ..connect(V, "")
    };
    roundtrip(&bytes, V, &Packet::Connect(Box::new(expected)));
}

#[test]
fn connack_accepted_and_refused() {
    let ok = ConnAck {
        session_present: true,
        reason: reason::SUCCESS,
        properties: Properties::default(),
    };
    roundtrip(&[0x20, 2, 0x01, 0x00], V, &Packet::ConnAck(ok));
    // Return code 5 (not authorized) is stored as the MQTT 5 reason 0x87.
    let refused = ConnAck {
        reason: reason::NOT_AUTHORIZED,
        ..ConnAck::default()
    };
    roundtrip(&[0x20, 2, 0x00, 0x05], V, &Packet::ConnAck(refused));
}

#[test]
fn connack_mqtt5_reason_is_mapped_for_3_x() {
    let mut out = bytes::BytesMut::new();
    let p = Packet::ConnAck(ConnAck {
        reason: reason::BANNED,
        ..ConnAck::default()
    });
    super::encode(&p, V, &mut out).unwrap();
    assert_eq!(&out[..], &[0x20, 2, 0, 5]);
}

fn publish(qos: QoS, pkid: u16, topic: &str, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: Arc::from(topic),
        pkid,
        payload: Bytes::from_static(payload),
        properties: Properties::default(),
    }
}

#[test]
fn publish_qos0() {
    let bytes = [0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'];
    let p = publish(QoS::AtMostOnce, 0, "a/b", b"hi");
    roundtrip(&bytes, V, &Packet::Publish(p));
}

#[test]
fn publish_qos1_dup_retain() {
    let bytes = [0x3B, 8, 0, 1, b't', 0x12, 0x34, b'x', b'y', b'z'];
    let p = Publish {
        dup: true,
        retain: true,
        ..publish(QoS::AtLeastOnce, 0x1234, "t", b"xyz")
    };
    roundtrip(&bytes, V, &Packet::Publish(p));
}

#[test]
fn publish_qos2_empty_payload() {
    let bytes = [0x34, 5, 0, 1, b't', 0, 7];
    let p = publish(QoS::ExactlyOnce, 7, "t", b"");
    roundtrip(&bytes, V, &Packet::Publish(p));
}

#[test]
fn publish_flow_acks() {
    roundtrip(&[0x40, 2, 0, 1], V, &Packet::PubAck(PubAck::new(1)));
    roundtrip(&[0x50, 2, 0, 2], V, &Packet::PubRec(PubAck::new(2)));
    roundtrip(&[0x62, 2, 0, 3], V, &Packet::PubRel(PubAck::new(3)));
    roundtrip(
        &[0x70, 2, 0xFF, 0xFF],
        V,
        &Packet::PubComp(PubAck::new(0xFFFF)),
    );
}

#[test]
fn ack_reason_is_dropped_for_3_x() {
    let mut out = bytes::BytesMut::new();
    let ack = PubAck {
        reason: reason::NO_MATCHING_SUBSCRIBERS,
        ..PubAck::new(9)
    };
    super::encode(&Packet::PubAck(ack), V, &mut out).unwrap();
    assert_eq!(&out[..], &[0x40, 2, 0, 9]);
}

#[test]
fn subscribe_two_filters() {
    let bytes = [0x82, 12, 0, 10, 0, 3, b'a', b'/', b'#', 1, 0, 1, b'+', 2];
    let p = Subscribe {
        pkid: 10,
        filters: vec![
            SubscribeFilter {
                filter: "a/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            },
            SubscribeFilter {
                filter: "+".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    ..Default::default()
                },
            },
        ],
        properties: Properties::default(),
    };
    roundtrip(&bytes, V, &Packet::Subscribe(p));
}

#[test]
fn suback_with_failure() {
    let p = SubAck {
        pkid: 10,
        reasons: vec![1, 0x80],
        properties: Properties::default(),
    };
    roundtrip(&[0x90, 4, 0, 10, 1, 0x80], V, &Packet::SubAck(p));
    // An MQTT 5 refusal (0x87 not authorized) becomes the only 3.1.1 failure code 0x80.
    let mut out = bytes::BytesMut::new();
    let v5_codes = SubAck {
        pkid: 1,
        reasons: vec![0x87, 0],
        properties: Properties::default(),
    };
    super::encode(&Packet::SubAck(v5_codes), V, &mut out).unwrap();
    assert_eq!(&out[..], &[0x90, 4, 0, 1, 0x80, 0]);
}

#[test]
fn unsubscribe_and_unsuback() {
    let bytes = [0xA2, 9, 0, 11, 0, 3, b'a', b'/', b'#', 0, 0];
    // The second filter is empty: the codec keeps it, the broker judges filters.
    let p = Unsubscribe {
        pkid: 11,
        filters: vec!["a/#".into(), String::new()],
        properties: Properties::default(),
    };
    roundtrip(&bytes, V, &Packet::Unsubscribe(p));
    let ack = UnsubAck {
        pkid: 11,
        reasons: vec![],
        properties: Properties::default(),
    };
    roundtrip(&[0xB0, 2, 0, 11], V, &Packet::UnsubAck(ack));
}

#[test]
fn ping_and_disconnect() {
    roundtrip(&[0xC0, 0], V, &Packet::PingReq);
    roundtrip(&[0xD0, 0], V, &Packet::PingResp);
    roundtrip(&[0xE0, 0], V, &Packet::Disconnect(Disconnect::default()));
}

#[test]
fn two_packets_in_one_buffer_decode_one_at_a_time() {
    let mut buf = bytes::BytesMut::from(&[0x40, 2, 0, 1, 0xC0, 0, 0x40][..]);
    let d = |b: &mut bytes::BytesMut| super::decode(b, Some(V), 1024).unwrap();
    assert_eq!(d(&mut buf), Some(Packet::PubAck(PubAck::new(1))));
    assert_eq!(d(&mut buf), Some(Packet::PingReq));
    assert_eq!(d(&mut buf), None);
    assert_eq!(&buf[..], &[0x40]);
}
