//! Property tests: `decode(encode(p)) == p` for generated packets of every version (generating
//! only what each version can carry), and arbitrary bytes never panic nor grow the buffer.

use super::packet::*;
use super::properties::PropCtx;
use super::{decode, encode, encoded_len};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use std::sync::Arc;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.é€/-]{0,12}"
}

fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(/[a-z0-9]{0,6}){0,3}"
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        topic(),
        Just("#".to_string()),
        "[a-z]{1,4}/\\+/[a-z]{1,4}/#"
    ]
}

fn bin() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Properties with every field random, then cleared where `ctx` does not allow it (§2.2.2.2).
fn props(ctx: PropCtx) -> BoxedStrategy<Properties> {
    let flag = || prop::option::of(0u8..=1);
    let part1 = (
        flag(),
        prop::option::of(any::<u32>()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(bin()),
        prop::collection::vec(1u32..=268_435_455, 0..3),
        prop::option::of(any::<u32>()),
        prop::option::of(text()),
        prop::option::of(any::<u16>()),
        prop::option::of(text()),
        prop::option::of(bin()),
        flag(),
    );
    let part2 = (
        prop::option::of(any::<u32>()),
        flag(),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(1u16..),
        prop::option::of(any::<u16>()),
        prop::option::of(1u16..),
        flag(),
        flag(),
        prop::collection::vec((text(), text()), 0..3),
        prop::option::of(1u32..),
    );
    let part3 = (flag(), flag(), flag());
    (part1, part2, part3)
        .prop_map(move |(a, b, c)| {
            let mut p = Properties {
                payload_format_indicator: a.0,
                message_expiry_interval: a.1,
                content_type: a.2,
                response_topic: a.3,
                correlation_data: a.4,
                subscription_identifiers: a.5,
                session_expiry_interval: a.6,
                assigned_client_identifier: a.7,
                server_keep_alive: a.8,
                authentication_method: a.9,
                authentication_data: a.10,
                request_problem_information: a.11,
                will_delay_interval: b.0,
                request_response_information: b.1,
                response_information: b.2,
                server_reference: b.3,
                reason_string: b.4,
                receive_maximum: b.5,
                topic_alias_maximum: b.6,
                topic_alias: b.7,
                maximum_qos: b.8,
                retain_available: b.9,
                user_properties: b.10,
                maximum_packet_size: b.11,
                wildcard_subscription_available: c.0,
                subscription_identifier_available: c.1,
                shared_subscription_available: c.2,
            };
            restrict(&mut p, ctx);
            p
        })
        .boxed()
}

/// Clears every property `ctx` may not carry, mirroring the §2.2.2.2 table.
fn restrict(p: &mut Properties, ctx: PropCtx) {
    use PropCtx as C;
    let on = |ctxs: &[PropCtx]| ctxs.contains(&ctx);
    let pub_will = on(&[C::Publish, C::Will]);
    if !pub_will {
        p.payload_format_indicator = None;
        p.message_expiry_interval = None;
        p.content_type = None;
        p.response_topic = None;
        p.correlation_data = None;
    }
    match ctx {
        C::Publish => {}
        C::Subscribe => p.subscription_identifiers.truncate(1),
        _ => p.subscription_identifiers.clear(),
    }
    if !on(&[C::Connect, C::ConnAck, C::Disconnect]) {
        p.session_expiry_interval = None;
    }
    if ctx != C::ConnAck {
        p.assigned_client_identifier = None;
        p.server_keep_alive = None;
        p.response_information = None;
        p.maximum_qos = None;
        p.retain_available = None;
        p.wildcard_subscription_available = None;
        p.subscription_identifier_available = None;
        p.shared_subscription_available = None;
    }
    if !on(&[C::Connect, C::ConnAck, C::Auth]) {
        p.authentication_method = None;
        p.authentication_data = None;
    }
    if ctx != C::Connect {
        p.request_problem_information = None;
        p.request_response_information = None;
    }
    if ctx != C::Will {
        p.will_delay_interval = None;
    }
    if !on(&[C::ConnAck, C::Disconnect]) {
        p.server_reference = None;
    }
    if !on(&[
        C::ConnAck,
        C::Ack,
        C::SubAck,
        C::UnsubAck,
        C::Disconnect,
        C::Auth,
    ]) {
        p.reason_string = None;
    }
    if !on(&[C::Connect, C::ConnAck]) {
        p.receive_maximum = None;
        p.topic_alias_maximum = None;
        p.maximum_packet_size = None;
    }
    if ctx != C::Publish {
        p.topic_alias = None;
    }
}

/// Properties for `ctx` under `v`: always empty for 3.x.
fn props_for(v: ProtocolVersion, ctx: PropCtx) -> BoxedStrategy<Properties> {
    if v.is_v5() {
        props(ctx)
    } else {
        Just(Properties::default()).boxed()
    }
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = (
        topic(),
        bin(),
        qos(),
        any::<bool>(),
        props_for(v, PropCtx::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic: Arc::from(topic),
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        "[a-zA-Z0-9-]{1,23}",
        prop::option::of(will),
        prop::option::of(text()),
        prop::option::of(bin()),
        props_for(v, PropCtx::Connect),
    )
        .prop_map(
            move |(clean, ka, id, will, username, password, properties)| {
                // 3.x: a password needs a user name.
                let password = if v.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start: clean,
                    keep_alive: ka,
                    client_id: id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn ack_reason(v: ProtocolVersion) -> BoxedStrategy<u8> {
    if v.is_v5() {
        any::<u8>().boxed()
    } else {
        Just(0).boxed()
    }
}

fn ack(v: ProtocolVersion) -> impl Strategy<Value = PubAck> {
    (any::<u16>(), ack_reason(v), props_for(v, PropCtx::Ack)).prop_map(
        |(pkid, reason, properties)| PubAck {
            pkid,
            reason,
            properties,
        },
    )
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic(),
        1u16..,
        bin(),
        props_for(v, PropCtx::Publish),
    )
        .prop_map(|(qos, dup, retain, topic, pkid, payload, properties)| {
            let qos0 = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !qos0,
                qos,
                retain,
                topic: Arc::from(topic),
                pkid: if qos0 { 0 } else { pkid },
                payload,
                properties,
            })
        })
}

fn sub_options(v: ProtocolVersion) -> impl Strategy<Value = SubscriptionOptions> {
    (qos(), any::<bool>(), any::<bool>(), 0u8..=2).prop_map(move |(qos, nl, rap, rh)| {
        if v.is_v5() {
            SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: rh,
            }
        } else {
            SubscriptionOptions {
                qos,
                ..Default::default()
            }
        }
    })
}

fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let connack_reason = if v.is_v5() {
        any::<u8>().boxed()
    } else {
        prop::sample::select(vec![0u8, 0x84, 0x85, 0x86, 0x87, 0x88]).boxed()
    };
    let suback_reasons = if v.is_v5() {
        prop::collection::vec(any::<u8>(), 1..4).boxed()
    } else {
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0x80]), 1..4).boxed()
    };
    let unsuback_reasons = if v.is_v5() {
        prop::collection::vec(any::<u8>(), 0..4).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let mut options = vec![
        connect(v).boxed(),
        (
            any::<bool>(),
            connack_reason,
            props_for(v, PropCtx::ConnAck),
        )
            .prop_map(|(session_present, reason, properties)| {
                Packet::ConnAck(ConnAck {
                    session_present,
                    reason,
                    properties,
                })
            })
            .boxed(),
        publish(v).boxed(),
        ack(v).prop_map(Packet::PubAck).boxed(),
        ack(v).prop_map(Packet::PubRec).boxed(),
        ack(v).prop_map(Packet::PubRel).boxed(),
        ack(v).prop_map(Packet::PubComp).boxed(),
        (
            1u16..,
            prop::collection::vec((filter(), sub_options(v)), 1..4),
            props_for(v, PropCtx::Subscribe),
        )
            .prop_map(|(pkid, fs, properties)| {
                Packet::Subscribe(Subscribe {
                    pkid,
                    filters: fs
                        .into_iter()
                        .map(|(filter, options)| SubscribeFilter { filter, options })
                        .collect(),
                    properties,
                })
            })
            .boxed(),
        (any::<u16>(), suback_reasons, props_for(v, PropCtx::SubAck))
            .prop_map(|(pkid, reasons, properties)| {
                Packet::SubAck(SubAck {
                    pkid,
                    reasons,
                    properties,
                })
            })
            .boxed(),
        (
            1u16..,
            prop::collection::vec(filter(), 1..4),
            props_for(v, PropCtx::Unsubscribe),
        )
            .prop_map(|(pkid, filters, properties)| {
                Packet::Unsubscribe(Unsubscribe {
                    pkid,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (
            any::<u16>(),
            unsuback_reasons,
            props_for(v, PropCtx::UnsubAck),
        )
            .prop_map(|(pkid, reasons, properties)| {
                Packet::UnsubAck(UnsubAck {
                    pkid,
                    reasons,
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        (ack_reason(v), props_for(v, PropCtx::Disconnect))
            .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
            .boxed(),
    ];
    if v.is_v5() {
        options.push(
            (any::<u8>(), props(PropCtx::Auth))
                .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
                .boxed(),
        );
    }
    prop::strategy::Union::new(options).boxed()
}

fn check_roundtrip(p: &Packet, v: ProtocolVersion) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    encode(p, v, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(buf.len(), encoded_len(p, v));
    let version = if matches!(p, Packet::Connect(_)) {
        None
    } else {
        Some(v)
    };
    let back = decode(&mut buf, version, usize::MAX)
        .map_err(|e| TestCaseError::fail(format!("{e} for {p:?}")))?;
    prop_assert_eq!(back.as_ref(), Some(p));
    prop_assert!(buf.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roundtrip_v5(p in packet(ProtocolVersion::V5)) {
        check_roundtrip(&p, ProtocolVersion::V5)?;
    }

    #[test]
    fn roundtrip_v311(p in packet(ProtocolVersion::V3_1_1)) {
        check_roundtrip(&p, ProtocolVersion::V3_1_1)?;
    }

    #[test]
    fn roundtrip_v31(p in packet(ProtocolVersion::V3_1)) {
        check_roundtrip(&p, ProtocolVersion::V3_1)?;
    }

    /// Arbitrary bytes: no panic, the buffer never grows (decode never reserves), every decoded
    /// packet comes from bytes that were there, and the loop always makes progress or stops.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        start in prop::sample::select(vec![
            None,
            Some(ProtocolVersion::V3_1),
            Some(ProtocolVersion::V3_1_1),
            Some(ProtocolVersion::V5),
        ]),
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        let cap = buf.capacity();
        let mut version = start;
        loop {
            let before = buf.len();
            match decode(&mut buf, version, 1 << 20) {
                Ok(Some(p)) => {
                    prop_assert!(buf.len() < before);
                    if let Packet::Connect(c) = &p {
                        version = Some(c.protocol);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        prop_assert!(buf.capacity() <= cap);
    }

    /// Valid packets with random bytes flipped: still no panic.
    #[test]
    fn mutated_packets_never_panic(
        p in packet(ProtocolVersion::V5),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut buf = BytesMut::new();
        encode(&p, ProtocolVersion::V5, &mut buf).unwrap();
        for (i, b) in flips {
            let at = i.index(buf.len());
            buf[at] = b;
        }
        let version = if matches!(p, Packet::Connect(_)) { None } else { Some(ProtocolVersion::V5) };
        let _ = decode(&mut buf, version, 1 << 20);
    }
}
