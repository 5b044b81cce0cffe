//! Bytes -> [`Packet`]: the fixed header (§2.1), then one reader per packet type (§3.1-§3.15).
//!
//! [`decode`] is called by the connection's read loop with everything read so far. It needs at
//! most the fixed header to reject an oversize packet, so a client cannot make the hub buffer a
//! body it will refuse. Once a whole packet is present its bytes are split off and frozen, and
//! every field (payload, correlation data, ...) is a zero-copy slice of them.
//!
//! Start reading at [`decode`]; the per-packet readers follow the order of the spec.

use super::error::ProtocolError;
use super::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, ProtocolVersion, PubAck, Publish, QoS, SubAck,
    Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe, Will, reason,
};
use super::properties::{PropCtx, decode_properties};
use super::topic::{TopicError, parse_shared};
use super::wire::{
    VarInt, parse_varint, read_arc_str, read_binary, read_string, read_u8, read_u16,
};
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;

/// Ok(None) = need more bytes (normal, not an error). On Ok(Some) exactly one packet's bytes are
/// consumed from `buf`. `version` is None until CONNECT has been decoded: then only CONNECT is
/// accepted, anything else is an error (first packet must be CONNECT).
///
/// `max_packet_size` bounds the whole packet, fixed header included (MQTT 5 §3.1.2.11.4 counts it
/// the same way). On an error the connection must be closed: `buf` is left in an unspecified state.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, ProtocolError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = first >> 4;
    // §3.1: the first packet from the client MUST be CONNECT; refuse it from its first byte.
    if version.is_none() && packet_type != 1 {
        return Err(ProtocolError::FirstPacketNotConnect(packet_type));
    }
    let (remaining, header_len) = match parse_varint(&buf[1..])? {
        VarInt::Done(v, n) => (v as usize, 1 + n),
        VarInt::Incomplete => return Ok(None),
    };
    let size = header_len + remaining;
    if size > max_packet_size {
        return Err(ProtocolError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    let mut body = buf.split_to(size).freeze();
    body.advance(header_len);
    decode_body(first, body, version).map(Some)
}

/// §2.1.3: the flags each packet type must carry (PUBLISH has its own, checked by its reader).
fn check_flags(flags: u8, expected: u8) -> Result<(), ProtocolError> {
    if flags != expected {
        return Err(ProtocolError::Malformed(
            "reserved fixed-header flags are wrong",
        ));
    }
    Ok(())
}

/// Refuses bytes left after the last field of a fixed-shape packet.
fn expect_end(b: &Bytes) -> Result<(), ProtocolError> {
    if !b.is_empty() {
        return Err(ProtocolError::Malformed(
            "unexpected bytes at the end of the packet",
        ));
    }
    Ok(())
}

fn decode_body(
    first: u8,
    body: Bytes,
    version: Option<ProtocolVersion>,
) -> Result<Packet, ProtocolError> {
    let packet_type = first >> 4;
    let flags = first & 0x0F;
    if packet_type == 1 {
        check_flags(flags, 0)?;
        return decode_connect(body).map(|c| Packet::Connect(Box::new(c)));
    }
    let v = version.ok_or(ProtocolError::FirstPacketNotConnect(packet_type))?;
    let expected_flags = match packet_type {
        3 => flags,
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    check_flags(flags, expected_flags)?;
    Ok(match packet_type {
        2 => Packet::ConnAck(decode_connack(body, v)?),
        3 => Packet::Publish(decode_publish(flags, body, v)?),
        4 => Packet::PubAck(decode_ack(body, v)?),
        5 => Packet::PubRec(decode_ack(body, v)?),
        6 => Packet::PubRel(decode_ack(body, v)?),
        7 => Packet::PubComp(decode_ack(body, v)?),
        8 => Packet::Subscribe(decode_subscribe(body, v)?),
        9 => Packet::SubAck(decode_suback(body, v)?),
        10 => Packet::Unsubscribe(decode_unsubscribe(body, v)?),
        11 => Packet::UnsubAck(decode_unsuback(body, v)?),
        12 => {
            expect_end(&body)?;
            Packet::PingReq
        }
        13 => {
            expect_end(&body)?;
            Packet::PingResp
        }
        14 => Packet::Disconnect(decode_disconnect(body, v)?),
        15 if v.is_v5() => Packet::Auth(decode_auth(body)?),
        15 => return Err(ProtocolError::Malformed("AUTH is an MQTT 5 packet")),
        _ => return Err(ProtocolError::Malformed("reserved packet type 0")),
    })
}

/// CONNECT (§3.1). The protocol name and level pick the version for the rest of the packet.
fn decode_connect(mut b: Bytes) -> Result<Connect, ProtocolError> {
    let name = read_binary(&mut b)?;
    let level = read_u8(&mut b)?;
    let protocol = match (&name[..], level) {
        (b"MQIsdp", 3) => ProtocolVersion::V3_1,
        (b"MQTT", 4) => ProtocolVersion::V3_1_1,
        (b"MQTT", 5) => ProtocolVersion::V5,
        _ => {
            // Bounded for the log line; the name is attacker-controlled.
            let shown = &name[..name.len().min(32)];
            return Err(ProtocolError::UnsupportedProtocolVersion {
                name: String::from_utf8_lossy(shown).into_owned(),
                level,
            });
        }
    };
    let v5 = protocol.is_v5();
    let flags = read_u8(&mut b)?;
    // §3.1.2.3: the reserved flag MUST be 0.
    if flags & 0x01 != 0 {
        return Err(ProtocolError::Malformed("reserved CONNECT flag is set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos_bits = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    let will_qos = QoS::from_u8(will_qos_bits).ok_or(ProtocolError::Malformed("will QoS 3"))?;
    // §3.1.2.6, §3.1.2.7: without a will, its QoS and retain MUST be 0.
    if !will_flag && (will_qos_bits != 0 || will_retain) {
        return Err(ProtocolError::Malformed(
            "will QoS or retain set without the will flag",
        ));
    }
    // 3.1.1 §3.1.2.9: a password needs a user name (MQTT 5 lifted this).
    if !v5 && has_password && !has_username {
        return Err(ProtocolError::Malformed(
            "password flag without user name flag",
        ));
    }
    let keep_alive = read_u16(&mut b)?;
    let properties = if v5 {
        decode_properties(&mut b, PropCtx::Connect)?
    } else {
        Default::default()
    };
    let client_id = read_string(&mut b)?;
    if client_id.is_empty() {
        match protocol {
            ProtocolVersion::V3_1 => {
                return Err(ProtocolError::ClientIdNotValid(
                    "MQTT 3.1 needs a client id",
                ));
            }
            // 3.1.1 §3.1.3.1: an empty client id requires clean session 1.
            ProtocolVersion::V3_1_1 if !clean_start => {
                return Err(ProtocolError::ClientIdNotValid(
                    "empty client id with clean session 0",
                ));
            }
            _ => {}
        }
    }
    let will = if will_flag {
        let properties = if v5 {
            decode_properties(&mut b, PropCtx::Will)?
        } else {
            Default::default()
        };
        let topic = read_arc_str(&mut b)?;
        check_topic_name(&topic)?;
        let payload = read_binary(&mut b)?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(read_string(&mut b)?)
    } else {
        None
    };
    let password = if has_password {
        Some(read_binary(&mut b)?)
    } else {
        None
    };
    expect_end(&b)?;
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// A topic name must not hold wildcards (§4.7.1) and must not be empty (§4.7.3); NUL and UTF-8
/// were already checked when the string was read.
fn check_topic_name(topic: &str) -> Result<(), ProtocolError> {
    if topic.is_empty() {
        return Err(TopicError::Empty.into());
    }
    if topic.bytes().any(|c| c == b'+' || c == b'#') {
        return Err(TopicError::WildcardInName.into());
    }
    Ok(())
}

/// CONNACK (§3.2). 3.x return codes are mapped to MQTT 5 reason codes.
fn decode_connack(mut b: Bytes, v: ProtocolVersion) -> Result<ConnAck, ProtocolError> {
    let flags = read_u8(&mut b)?;
    if flags & 0xFE != 0 {
        return Err(ProtocolError::Malformed("reserved CONNACK flags are set"));
    }
    let code = read_u8(&mut b)?;
    let (reason, properties) = if v.is_v5() {
        (code, decode_properties(&mut b, PropCtx::ConnAck)?)
    } else {
        (reason::from_v3_connack(code), Default::default())
    };
    expect_end(&b)?;
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        reason,
        properties,
    })
}

/// PUBLISH (§3.3). The payload is everything after the variable header, shared, not copied.
fn decode_publish(flags: u8, mut b: Bytes, v: ProtocolVersion) -> Result<Publish, ProtocolError> {
    let dup = flags & 0x08 != 0;
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(ProtocolError::Malformed("PUBLISH QoS 3"))?;
    let retain = flags & 0x01 != 0;
    // MQTT 5 §3.3.1.1 [MQTT-3.3.1-2]: DUP MUST be 0 for QoS 0.
    if dup && qos == QoS::AtMostOnce {
        return Err(if v.is_v5() {
            ProtocolError::Protocol("DUP set on a QoS 0 PUBLISH")
        } else {
            ProtocolError::Malformed("DUP set on a QoS 0 PUBLISH")
        });
    }
    let topic: Arc<str> = read_arc_str(&mut b)?;
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        read_pkid(&mut b)?
    };
    let properties = if v.is_v5() {
        decode_properties(&mut b, PropCtx::Publish)?
    } else {
        Default::default()
    };
    // MQTT 5 §3.3.2.1: an empty topic is how a topic alias is used; without one it is an error.
    if topic.is_empty() && v.is_v5() {
        if properties.topic_alias.is_none() {
            return Err(ProtocolError::Protocol(
                "empty topic name without a topic alias",
            ));
        }
    } else {
        check_topic_name(&topic)?;
    }
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        pkid,
        payload: b,
        properties,
    })
}

/// A packet identifier where 0 is not allowed (§2.2.1).
fn read_pkid(b: &mut Bytes) -> Result<u16, ProtocolError> {
    match read_u16(b)? {
        0 => Err(ProtocolError::Malformed("packet identifier 0")),
        id => Ok(id),
    }
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-§3.7). MQTT 5 may omit the reason (then 0) and the
/// properties (§3.4.2.1).
fn decode_ack(mut b: Bytes, v: ProtocolVersion) -> Result<PubAck, ProtocolError> {
    let pkid = read_u16(&mut b)?;
    let mut ack = PubAck::new(pkid);
    if v.is_v5() && !b.is_empty() {
        ack.reason = read_u8(&mut b)?;
        if !b.is_empty() {
            ack.properties = decode_properties(&mut b, PropCtx::Ack)?;
        }
    }
    expect_end(&b)?;
    Ok(ack)
}

/// SUBSCRIBE (§3.8). Filters are not validated here: MQTT 5 answers a bad filter with a SUBACK
/// reason (0x8F), which is the broker's decision; only the grammar is the codec's.
fn decode_subscribe(mut b: Bytes, v: ProtocolVersion) -> Result<Subscribe, ProtocolError> {
    let pkid = read_pkid(&mut b)?;
    let properties = if v.is_v5() {
        decode_properties(&mut b, PropCtx::Subscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !b.is_empty() {
        let filter = read_string(&mut b)?;
        let options = decode_sub_options(read_u8(&mut b)?, v)?;
        // MQTT 5 §3.8.3.1 [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error.
        if options.no_local && parse_shared(&filter).is_some() {
            return Err(ProtocolError::Protocol("no local on a shared subscription"));
        }
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(ProtocolError::Malformed("SUBSCRIBE without a topic filter"));
    }
    Ok(Subscribe {
        pkid,
        filters,
        properties,
    })
}

/// The subscription options byte (MQTT 5 §3.8.3.1; 3.1.1 §3.8.3.1 has only the QoS bits).
fn decode_sub_options(byte: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, ProtocolError> {
    let reserved = if v.is_v5() { 0xC0 } else { 0xFC };
    if byte & reserved != 0 {
        return Err(ProtocolError::Malformed(
            "reserved subscription option bits are set",
        ));
    }
    let qos = match QoS::from_u8(byte & 0x03) {
        Some(q) => q,
        None if v.is_v5() => return Err(ProtocolError::Protocol("subscription QoS 3")),
        None => return Err(ProtocolError::Malformed("subscription QoS 3")),
    };
    let retain_handling = (byte >> 4) & 0x03;
    if retain_handling == 3 {
        return Err(ProtocolError::Protocol("retain handling 3"));
    }
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// SUBACK (§3.9): one return/reason code per filter.
fn decode_suback(mut b: Bytes, v: ProtocolVersion) -> Result<SubAck, ProtocolError> {
    let pkid = read_u16(&mut b)?;
    let properties = if v.is_v5() {
        decode_properties(&mut b, PropCtx::SubAck)?
    } else {
        Default::default()
    };
    if b.is_empty() {
        return Err(ProtocolError::Malformed("SUBACK without a return code"));
    }
    Ok(SubAck {
        pkid,
        reasons: b.to_vec(),
        properties,
    })
}

/// UNSUBSCRIBE (§3.10).
fn decode_unsubscribe(mut b: Bytes, v: ProtocolVersion) -> Result<Unsubscribe, ProtocolError> {
    let pkid = read_pkid(&mut b)?;
    let properties = if v.is_v5() {
        decode_properties(&mut b, PropCtx::Unsubscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !b.is_empty() {
        filters.push(read_string(&mut b)?);
    }
    if filters.is_empty() {
        return Err(ProtocolError::Malformed(
            "UNSUBSCRIBE without a topic filter",
        ));
    }
    Ok(Unsubscribe {
        pkid,
        filters,
        properties,
    })
}

/// UNSUBACK (§3.11): 3.x carries only the packet id.
fn decode_unsuback(mut b: Bytes, v: ProtocolVersion) -> Result<UnsubAck, ProtocolError> {
    let pkid = read_u16(&mut b)?;
    if !v.is_v5() {
        expect_end(&b)?;
        return Ok(UnsubAck {
            pkid,
            reasons: Vec::new(),
            properties: Default::default(),
        });
    }
    let properties = decode_properties(&mut b, PropCtx::UnsubAck)?;
    Ok(UnsubAck {
        pkid,
        reasons: b.to_vec(),
        properties,
    })
}

/// DISCONNECT (§3.14): empty in 3.x; in MQTT 5 reason and properties may each be omitted.
fn decode_disconnect(mut b: Bytes, v: ProtocolVersion) -> Result<Disconnect, ProtocolError> {
    let mut d = Disconnect::default();
    if v.is_v5() && !b.is_empty() {
        d.reason = read_u8(&mut b)?;
        if !b.is_empty() {
            d.properties = decode_properties(&mut b, PropCtx::Disconnect)?;
        }
    }
    expect_end(&b)?;
    Ok(d)
}

/// AUTH (MQTT 5 §3.15): an empty body means reason 0 (success) without properties.
fn decode_auth(mut b: Bytes) -> Result<Auth, ProtocolError> {
    let mut a = Auth::default();
    if !b.is_empty() {
        a.reason = read_u8(&mut b)?;
        if !b.is_empty() {
            a.properties = decode_properties(&mut b, PropCtx::Auth)?;
        }
    }
    expect_end(&b)?;
    Ok(a)
}
