//! Byte-vector tests for MQTT 5: every packet type with and without properties, hand-written
//! from the MQTT 5 spec, decoded, re-encoded to the same bytes, and cut at every prefix.

use super::packet::*;
use super::test_support::{packet, roundtrip};
use bytes::Bytes;
use std::sync::Arc;

const V: ProtocolVersion = ProtocolVersion::V5;

#[test]
fn connect_with_properties_and_will() {
    let body = [
        &[0, 4, b'M', b'Q', b'T', b'T', 5][..],
        // password, user name, will QoS 2, will flag; clean start 0.
        &[0b1101_0100, 0, 30],
        // properties: session expiry 10, receive maximum 20, user property k=v.
        &[
            15, 0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x26, 0, 1, b'k', 0, 1, b'v',
        ],
        &[0, 2, b'c', b'1'],
        // will properties: will delay 5, content type "t".
        &[9, 0x03, 0, 1, b't', 0x18, 0, 0, 0, 5],
        &[0, 1, b'w'],
        &[0, 0],
        &[0, 1, b'u'],
        &[0, 1, b'p'],
    ]
    .concat();
    let expected = Connect {
        protocol: V,
        clean_start: false,
        keep_alive: 30,
        client_id: "c1".into(),
        will: Some(Will {
            topic: Arc::from("w"),
            payload: Bytes::new(),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Properties {
                content_type: Some("t".into()),
                will_delay_interval: Some(5),
                ..Default::default()
            },
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties {
            session_expiry_interval: Some(10),
            receive_maximum: Some(20),
            user_properties: vec![("k".into(), "v".into())],
            ..Default::default()
        },
    };
    roundtrip(
        &packet(0x10, &body),
        V,
        &Packet::Connect(Box::new(expected)),
    );
}

#[test]
fn connect_password_without_user_name_is_allowed_in_v5() {
    let body = [
        &[0, 4, b'M', b'Q', b'T', b'T', 5, 0b0100_0010, 0, 0, 0][..],
        &[0, 0],
        &[0, 1, b'p'],
    ]
    .concat();
    let expected = Connect {
        protocol: V,
        clean_start: true,
        keep_alive: 0,
        client_id: String::new(),
        will: None,
        username: None,
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::default(),
    };
    roundtrip(
        &packet(0x10, &body),
        V,
        &Packet::Connect(Box::new(expected)),
    );
}

#[test]
fn connack_with_properties() {
    let bytes = [
        0x20, 13, 0x01, 0x00, 10, 0x12, 0, 2, b'i', b'd', 0x21, 0, 10, 0x25, 0,
    ];
    let p = ConnAck {
        session_present: true,
        reason: 0,
        properties: Properties {
            assigned_client_identifier: Some("id".into()),
            receive_maximum: Some(10),
            retain_available: Some(0),
            ..Default::default()
        },
    };
    roundtrip(&bytes, V, &Packet::ConnAck(p));
    let refused = ConnAck {
        reason: reason::BAD_USER_NAME_OR_PASSWORD,
        ..ConnAck::default()
    };
    roundtrip(&[0x20, 3, 0, 0x86, 0], V, &Packet::ConnAck(refused));
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
fn publish_qos1_no_properties() {
    let bytes = [0x32, 10, 0, 3, b'a', b'/', b'b', 0, 1, 0, b'h', b'i'];
    let p = publish(QoS::AtLeastOnce, 1, "a/b", b"hi");
    roundtrip(&bytes, V, &Packet::Publish(p));
}

#[test]
fn publish_with_every_publish_property() {
    let props = [
        &[0x01, 1][..],
        &[0x02, 0, 0, 0, 60],
        &[0x03, 0, 4, b'j', b's', b'o', b'n'],
        &[0x08, 0, 1, b'r'],
        &[0x09, 0, 2, 1, 2],
        &[0x0B, 0x80, 0x01],
        &[0x0B, 5],
        &[0x23, 0, 3],
        &[0x26, 0, 1, b'a', 0, 1, b'b'],
    ]
    .concat();
    let body = [&[0, 1, b't'][..], &[props.len() as u8], &props, b"payload"].concat();
    let p = Publish {
        retain: true,
        properties: Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            content_type: Some("json".into()),
            response_topic: Some("r".into()),
            correlation_data: Some(Bytes::from_static(&[1, 2])),
            subscription_identifiers: vec![128, 5],
            topic_alias: Some(3),
            user_properties: vec![("a".into(), "b".into())],
            ..Default::default()
        },
        ..publish(QoS::AtMostOnce, 0, "t", b"payload")
    };
    roundtrip(&packet(0x31, &body), V, &Packet::Publish(p));
}

#[test]
fn publish_empty_topic_with_alias() {
    let bytes = [0x30, 7, 0, 0, 3, 0x23, 0, 1, b'x'];
    let p = Publish {
        properties: Properties {
            topic_alias: Some(1),
            ..Default::default()
        },
        ..publish(QoS::AtMostOnce, 0, "", b"x")
    };
    roundtrip(&bytes, V, &Packet::Publish(p));
}

#[test]
fn acks_short_and_long_forms() {
    // §3.4.2.1: reason and properties omitted when success without properties.
    roundtrip(&[0x40, 2, 0, 1], V, &Packet::PubAck(PubAck::new(1)));
    let with_reason = PubAck {
        reason: reason::NO_MATCHING_SUBSCRIBERS,
        ..PubAck::new(1)
    };
    roundtrip(&[0x40, 3, 0, 1, 0x10], V, &Packet::PubAck(with_reason));
    let with_props = PubAck {
        pkid: 1,
        reason: reason::UNSPECIFIED_ERROR,
        properties: Properties {
            reason_string: Some("x".into()),
            ..Default::default()
        },
    };
    let bytes = [0x40, 8, 0, 1, 0x80, 4, 0x1F, 0, 1, b'x'];
    roundtrip(&bytes, V, &Packet::PubAck(with_props));
    let rec = PubAck {
        reason: reason::NO_MATCHING_SUBSCRIBERS,
        ..PubAck::new(2)
    };
    roundtrip(&[0x50, 3, 0, 2, 0x10], V, &Packet::PubRec(rec));
    let rel = PubAck {
        reason: reason::PACKET_IDENTIFIER_NOT_FOUND,
        ..PubAck::new(3)
    };
    roundtrip(&[0x62, 3, 0, 3, 0x92], V, &Packet::PubRel(rel));
    roundtrip(&[0x70, 2, 0, 4], V, &Packet::PubComp(PubAck::new(4)));
}

#[test]
fn ack_with_explicit_empty_properties_decodes() {
    // A sender may write reason 0 and an empty property block; it decodes to the short form.
    let mut buf = bytes::BytesMut::from(&[0x40, 4, 0, 1, 0, 0][..]);
    let p = super::decode(&mut buf, Some(V), 100).unwrap();
    assert_eq!(p, Some(Packet::PubAck(PubAck::new(1))));
}

#[test]
fn subscribe_with_options_and_identifier() {
    let bytes = [0x82, 11, 0, 10, 2, 0x0B, 7, 0, 3, b'a', b'/', b'#', 0x2D];
    let p = Subscribe {
        pkid: 10,
        filters: vec![SubscribeFilter {
            filter: "a/#".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: 2,
            },
        }],
        properties: Properties {
            subscription_identifiers: vec![7],
            ..Default::default()
        },
    };
    roundtrip(&bytes, V, &Packet::Subscribe(p));
}

#[test]
fn suback_unsubscribe_unsuback() {
    let suback = SubAck {
        pkid: 10,
        reasons: vec![1, reason::NOT_AUTHORIZED],
        properties: Properties::default(),
    };
    roundtrip(&[0x90, 5, 0, 10, 0, 1, 0x87], V, &Packet::SubAck(suback));
    let unsub = Unsubscribe {
        pkid: 11,
        filters: vec!["a/#".into()],
        properties: Properties {
            user_properties: vec![("k".into(), String::new())],
            ..Default::default()
        },
    };
    let bytes = [
        0xA2, 14, 0, 11, 6, 0x26, 0, 1, b'k', 0, 0, 0, 3, b'a', b'/', b'#',
    ];
    roundtrip(&bytes, V, &Packet::Unsubscribe(unsub));
    let unsuback = UnsubAck {
        pkid: 11,
        reasons: vec![0, reason::NO_SUBSCRIPTION_EXISTED],
        properties: Properties::default(),
    };
    roundtrip(
        &[0xB0, 5, 0, 11, 0, 0, 0x11],
        V,
        &Packet::UnsubAck(unsuback),
    );
}

#[test]
fn ping_disconnect_auth() {
    roundtrip(&[0xC0, 0], V, &Packet::PingReq);
    roundtrip(&[0xD0, 0], V, &Packet::PingResp);
    roundtrip(&[0xE0, 0], V, &Packet::Disconnect(Disconnect::default()));
    let taken_over = Disconnect {
        reason: reason::SESSION_TAKEN_OVER,
        properties: Properties::default(),
    };
    roundtrip(&[0xE0, 1, 0x8E], V, &Packet::Disconnect(taken_over));
    let with_will = Disconnect {
        reason: reason::DISCONNECT_WITH_WILL,
        properties: Properties {
            session_expiry_interval: Some(0),
            ..Default::default()
        },
    };
    let bytes = [0xE0, 7, 0x04, 5, 0x11, 0, 0, 0, 0];
    roundtrip(&bytes, V, &Packet::Disconnect(with_will));
    roundtrip(&[0xF0, 0], V, &Packet::Auth(Auth::default()));
    let cont = Auth {
        reason: reason::CONTINUE_AUTHENTICATION,
        properties: Properties {
            authentication_method: Some("abc".into()),
            ..Default::default()
        },
    };
    let bytes = [0xF0, 8, 0x18, 6, 0x15, 0, 3, b'a', b'b', b'c'];
    roundtrip(&bytes, V, &Packet::Auth(cont));
}

#[test]
fn encoding_for_3_x_drops_properties() {
    let p = Publish {
        properties: Properties {
            message_expiry_interval: Some(5),
            ..Default::default()
        },
        ..publish(QoS::AtMostOnce, 0, "t", b"x")
    };
    let mut out = bytes::BytesMut::new();
    super::encode(&Packet::Publish(p), ProtocolVersion::V3_1_1, &mut out).unwrap();
    assert_eq!(&out[..], &[0x30, 4, 0, 1, b't', b'x']);
    let mut out = bytes::BytesMut::new();
    let auth = Packet::Auth(Auth::default());
    assert!(super::encode(&auth, ProtocolVersion::V3_1_1, &mut out).is_err());
    assert_eq!(
        super::encoded_len(&auth, ProtocolVersion::V3_1_1),
        usize::MAX
    );
}
