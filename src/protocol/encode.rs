//! [`Packet`] -> bytes, for one protocol version.
//!
//! Sizes are computed first ([`encoded_len`] shares that code), so `encode` reserves once and
//! writes straight into the caller's buffer: no intermediate allocation per packet. For 3.x the
//! MQTT 5-only parts are dropped: properties, ack reason codes; CONNACK reasons are mapped with
//! [`reason::to_v3_connack`] and SUBACK failure codes collapse to 0x80.
//!
//! Start reading at [`encode`].

use super::error::ProtocolError;
use super::packet::Properties;
use super::packet::{
    Connect, Packet, ProtocolVersion, PubAck, Publish, QoS, SubAck, Subscribe, SubscriptionOptions,
    UnsubAck, Unsubscribe, reason,
};
use super::properties::{block_len, properties_len, write_properties};
use super::wire::{MAX_VARINT, check_field, field_len, varint_len, write_field, write_varint};
use bytes::{BufMut, BytesMut};

/// Sizes worked out once and used by both the length computation and the writer.
struct Plan {
    /// Remaining Length of the fixed header.
    remaining: usize,
    /// Body length of the packet's own property block (0 for 3.x).
    props: usize,
    /// Body length of the will property block (CONNECT only).
    will_props: usize,
}

/// Size in bytes `encode` would produce (used for the client's Maximum Packet Size);
/// `usize::MAX` when the packet cannot be encoded at all, so any size check refuses it.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    match plan(packet, version) {
        Ok(p) => 1 + varint_len(p.remaining) + p.remaining,
        Err(_) => usize::MAX,
    }
}

/// Appends the encoding of `packet` for `version` to `buf` (3.x: properties and ack reason codes
/// dropped; CONNACK reason mapped with reason::to_v3_connack). CONNECT is written for the
/// version it names in `protocol`, since it is the packet that announces the version.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let plan = plan(packet, version)?;
    buf.reserve(1 + varint_len(plan.remaining) + plan.remaining);
    buf.put_u8(first_byte(packet));
    write_varint(buf, plan.remaining);
    let v5 = version.is_v5();
    match packet {
        Packet::Connect(c) => write_connect(buf, c, &plan),
        Packet::ConnAck(c) => {
            buf.put_u8(u8::from(c.session_present));
            if v5 {
                buf.put_u8(c.reason);
                write_properties(buf, &c.properties, plan.props);
            } else {
                buf.put_u8(reason::to_v3_connack(c.reason));
            }
        }
        Packet::Publish(p) => {
            write_field(buf, p.topic.as_bytes());
            if p.qos != QoS::AtMostOnce {
                buf.put_u16(p.pkid);
            }
            if v5 {
                write_properties(buf, &p.properties, plan.props);
            }
            buf.put_slice(&p.payload);
        }
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            buf.put_u16(a.pkid);
            write_reason_and_props(buf, plan.remaining - 2, a.reason, &a.properties, plan.props);
        }
        Packet::Subscribe(s) => {
            buf.put_u16(s.pkid);
            if v5 {
                write_properties(buf, &s.properties, plan.props);
            }
            for f in &s.filters {
                write_field(buf, f.filter.as_bytes());
                buf.put_u8(options_byte(&f.options, v5));
            }
        }
        Packet::SubAck(s) => {
            buf.put_u16(s.pkid);
            if v5 {
                write_properties(buf, &s.properties, plan.props);
                buf.put_slice(&s.reasons);
            } else {
                // 3.1.1 §3.9.3: only 0, 1, 2 and 0x80 exist; every MQTT 5 refusal is 0x80.
                for &r in &s.reasons {
                    buf.put_u8(if r >= 0x80 { 0x80 } else { r });
                }
            }
        }
        Packet::Unsubscribe(u) => {
            buf.put_u16(u.pkid);
            if v5 {
                write_properties(buf, &u.properties, plan.props);
            }
            for f in &u.filters {
                write_field(buf, f.as_bytes());
            }
        }
        Packet::UnsubAck(u) => {
            buf.put_u16(u.pkid);
            if v5 {
                write_properties(buf, &u.properties, plan.props);
                buf.put_slice(&u.reasons);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => {
            write_reason_and_props(buf, plan.remaining, d.reason, &d.properties, plan.props)
        }
        Packet::Auth(a) => {
            write_reason_and_props(buf, plan.remaining, a.reason, &a.properties, plan.props)
        }
    }
    Ok(())
}

/// §2.1.2: packet type in the high nibble, the flags of §2.1.3 in the low one.
fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(p) => {
            0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
        }
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    }
}

fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    let mut b = o.qos as u8;
    if v5 {
        b |= u8::from(o.no_local) << 2;
        b |= u8::from(o.retain_as_published) << 3;
        b |= (o.retain_handling & 0x03) << 4;
    }
    b
}

/// The MQTT 5 tail of acks, DISCONNECT and AUTH: `tail` bytes are left to write (0: nothing,
/// 1: the reason alone, more: reason and property block). 3.x plans always leave 0.
fn write_reason_and_props(buf: &mut BytesMut, tail: usize, reason: u8, p: &Properties, len: usize) {
    if tail >= 1 {
        buf.put_u8(reason);
    }
    if tail > 1 {
        write_properties(buf, p, len);
    }
}

/// Length of the reason/property tail (MQTT 5 §3.4.2.1: both may be omitted when they are
/// the defaults, and are, to keep the common ack at 4 bytes).
fn reason_tail(v5: bool, reason: u8, props: usize) -> usize {
    match (v5, reason, props) {
        (false, _, _) => 0,
        (true, 0, 0) => 0,
        (true, _, 0) => 1,
        (true, _, n) => 1 + block_len(n),
    }
}

fn str_field(s: &str) -> Result<usize, ProtocolError> {
    check_field(s.as_bytes())?;
    Ok(field_len(s.as_bytes()))
}

fn v5_props(v5: bool, p: &Properties) -> Result<usize, ProtocolError> {
    if v5 { properties_len(p) } else { Ok(0) }
}

fn plan(packet: &Packet, version: ProtocolVersion) -> Result<Plan, ProtocolError> {
    let v5 = version.is_v5();
    let mut will_props = 0;
    let (props, remaining) = match packet {
        Packet::Connect(c) => {
            let cv5 = c.protocol.is_v5();
            let props = v5_props(cv5, &c.properties)?;
            let (len, wp) = connect_len(c, props)?;
            will_props = wp;
            (props, len)
        }
        Packet::ConnAck(c) => {
            let props = v5_props(v5, &c.properties)?;
            (props, 2 + if v5 { block_len(props) } else { 0 })
        }
        Packet::Publish(p) => publish_len(p, v5)?,
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack_len(a, v5)?
        }
        Packet::Subscribe(s) => subscribe_len(s, v5)?,
        Packet::SubAck(s) => suback_len(s, v5)?,
        Packet::Unsubscribe(u) => unsubscribe_len(u, v5)?,
        Packet::UnsubAck(u) => unsuback_len(u, v5)?,
        Packet::PingReq | Packet::PingResp => (0, 0),
        Packet::Disconnect(d) => {
            let props = v5_props(v5, &d.properties)?;
            (props, reason_tail(v5, d.reason, props))
        }
        Packet::Auth(a) => {
            if !v5 {
                return Err(ProtocolError::Encode("AUTH exists only in MQTT 5"));
            }
            let props = properties_len(&a.properties)?;
            (props, reason_tail(true, a.reason, props))
        }
    };
    if remaining > MAX_VARINT as usize {
        return Err(ProtocolError::Encode("packet body over 268435455 bytes"));
    }
    Ok(Plan {
        remaining,
        props,
        will_props,
    })
}

/// CONNECT body length and the will property length.
fn connect_len(c: &Connect, props: usize) -> Result<(usize, usize), ProtocolError> {
    let v5 = c.protocol.is_v5();
    let name = protocol_name(c.protocol);
    let mut n = field_len(name) + 1 + 1 + 2 + str_field(&c.client_id)?;
    if v5 {
        n += block_len(props);
    }
    let mut will_props = 0;
    if let Some(w) = &c.will {
        if v5 {
            will_props = properties_len(&w.properties)?;
            n += block_len(will_props);
        }
        check_field(&w.payload)?;
        n += str_field(&w.topic)? + field_len(&w.payload);
    }
    if let Some(u) = &c.username {
        n += str_field(u)?;
    }
    if let Some(p) = &c.password {
        check_field(p)?;
        n += field_len(p);
    }
    Ok((n, will_props))
}

fn protocol_name(v: ProtocolVersion) -> &'static [u8] {
    match v {
        ProtocolVersion::V3_1 => b"MQIsdp",
        _ => b"MQTT",
    }
}

fn write_connect(buf: &mut BytesMut, c: &Connect, plan: &Plan) {
    let v5 = c.protocol.is_v5();
    write_field(buf, protocol_name(c.protocol));
    buf.put_u8(c.protocol.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos as u8) << 3) | (u8::from(w.retain) << 5);
    }
    flags |= u8::from(c.password.is_some()) << 6;
    flags |= u8::from(c.username.is_some()) << 7;
    buf.put_u8(flags);
    buf.put_u16(c.keep_alive);
    if v5 {
        write_properties(buf, &c.properties, plan.props);
    }
    write_field(buf, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        if v5 {
            write_properties(buf, &w.properties, plan.will_props);
        }
        write_field(buf, w.topic.as_bytes());
        write_field(buf, &w.payload);
    }
    if let Some(u) = &c.username {
        write_field(buf, u.as_bytes());
    }
    if let Some(p) = &c.password {
        write_field(buf, p);
    }
}

fn publish_len(p: &Publish, v5: bool) -> Result<(usize, usize), ProtocolError> {
    if p.qos != QoS::AtMostOnce && p.pkid == 0 {
        return Err(ProtocolError::Encode("packet id 0 on a QoS 1/2 PUBLISH"));
    }
    if p.topic.is_empty() && !(v5 && p.properties.topic_alias.is_some()) {
        return Err(ProtocolError::Encode(
            "empty topic name without a topic alias",
        ));
    }
    let props = v5_props(v5, &p.properties)?;
    let mut n = str_field(&p.topic)? + p.payload.len();
    if p.qos != QoS::AtMostOnce {
        n += 2;
    }
    if v5 {
        n += block_len(props);
    }
    Ok((props, n))
}

fn ack_len(a: &PubAck, v5: bool) -> Result<(usize, usize), ProtocolError> {
    let props = v5_props(v5, &a.properties)?;
    Ok((props, 2 + reason_tail(v5, a.reason, props)))
}

fn subscribe_len(s: &Subscribe, v5: bool) -> Result<(usize, usize), ProtocolError> {
    if s.pkid == 0 || s.filters.is_empty() {
        return Err(ProtocolError::Encode(
            "SUBSCRIBE needs a packet id and a filter",
        ));
    }
    let props = v5_props(v5, &s.properties)?;
    let mut n = 2 + if v5 { block_len(props) } else { 0 };
    for f in &s.filters {
        n += str_field(&f.filter)? + 1;
    }
    Ok((props, n))
}

fn suback_len(s: &SubAck, v5: bool) -> Result<(usize, usize), ProtocolError> {
    let props = v5_props(v5, &s.properties)?;
    Ok((
        props,
        2 + if v5 { block_len(props) } else { 0 } + s.reasons.len(),
    ))
}

fn unsubscribe_len(u: &Unsubscribe, v5: bool) -> Result<(usize, usize), ProtocolError> {
    if u.pkid == 0 || u.filters.is_empty() {
        return Err(ProtocolError::Encode(
            "UNSUBSCRIBE needs a packet id and a filter",
        ));
    }
    let props = v5_props(v5, &u.properties)?;
    let mut n = 2 + if v5 { block_len(props) } else { 0 };
    for f in &u.filters {
        n += str_field(f)?;
    }
    Ok((props, n))
}

fn unsuback_len(u: &UnsubAck, v5: bool) -> Result<(usize, usize), ProtocolError> {
    if !v5 {
        return Ok((0, 2));
    }
    let props = properties_len(&u.properties)?;
    Ok((props, 2 + block_len(props) + u.reasons.len()))
}
