//! MQTT 5 properties (§2.2.2): decoding with the per-packet whitelist of §2.2.2.2, and encoding.
//!
//! One [`Properties`] struct serves every packet; [`PropCtx`] says which packet a property block
//! belongs to, and the decoder refuses (protocol error) any property the spec does not allow
//! there, any single-valued property that repeats, and more than [`MAX_USER_PROPERTIES`] user
//! properties. The encoder writes whatever is set: the broker builds what it sends.

use super::error::ProtocolError;
use super::packet::Properties;
use super::wire::{
    MAX_VARINT, check_field, field_len, read_binary, read_string, read_u8, read_u16, read_u32,
    read_varint, varint_len, write_field, write_varint,
};
use bytes::{BufMut, Bytes, BytesMut};

/// Cap on user properties in one property block, so a client cannot make the hub hold a huge
/// list per message (Mosquitto CVE-2021-41039 had the unbounded version).
pub const MAX_USER_PROPERTIES: usize = 256;

/// The packet (or will) a property block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropCtx {
    Connect,
    ConnAck,
    Publish,
    Will,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropCtx {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

const fn mask(ctxs: &[PropCtx]) -> u16 {
    let mut m = 0;
    let mut i = 0;
    while i < ctxs.len() {
        m |= ctxs[i].bit();
        i += 1;
    }
    m
}

use PropCtx as C;
const PUB_WILL: u16 = mask(&[C::Publish, C::Will]);
const ALL: u16 = u16::MAX;

/// The packets each property identifier may appear on (§2.2.2.2 table); `None` = unknown id.
fn allowed_on(id: u32) -> Option<u16> {
    Some(match id {
        0x01..=0x03 | 0x08 | 0x09 => PUB_WILL,
        0x0B => mask(&[C::Publish, C::Subscribe]),
        0x11 => mask(&[C::Connect, C::ConnAck, C::Disconnect]),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28..=0x2A => C::ConnAck.bit(),
        0x15 | 0x16 => mask(&[C::Connect, C::ConnAck, C::Auth]),
        0x17 | 0x19 => C::Connect.bit(),
        0x18 => C::Will.bit(),
        0x1C => mask(&[C::ConnAck, C::Disconnect]),
        0x1F => mask(&[
            C::ConnAck,
            C::Ack,
            C::SubAck,
            C::UnsubAck,
            C::Disconnect,
            C::Auth,
        ]),
        0x21 | 0x22 | 0x27 => mask(&[C::Connect, C::ConnAck]),
        0x23 => C::Publish.bit(),
        0x26 => ALL,
        _ => return None,
    })
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), ProtocolError> {
    if slot.is_some() {
        return Err(ProtocolError::Protocol("property appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only legal values are 0 and 1 (e.g. Retain Available, §3.2.2.3.5).
fn read_flag(b: &mut Bytes) -> Result<u8, ProtocolError> {
    let v = read_u8(b)?;
    if v > 1 {
        return Err(ProtocolError::Protocol("property value must be 0 or 1"));
    }
    Ok(v)
}

/// A two-byte property for which 0 is a protocol error (Receive Maximum, Topic Alias).
fn read_nonzero_u16(b: &mut Bytes) -> Result<u16, ProtocolError> {
    match read_u16(b)? {
        0 => Err(ProtocolError::Protocol("property value must not be 0")),
        v => Ok(v),
    }
}

/// Reads a property block (length then properties) for packet `ctx`.
pub fn decode_properties(b: &mut Bytes, ctx: PropCtx) -> Result<Properties, ProtocolError> {
    let len = read_varint(b)? as usize;
    if b.len() < len {
        return Err(ProtocolError::Malformed(
            "property length exceeds the packet",
        ));
    }
    let mut p = b.split_to(len);
    let mut props = Properties::default();
    while !p.is_empty() {
        let id = read_varint(&mut p)?;
        let allowed =
            allowed_on(id).ok_or(ProtocolError::Malformed("unknown property identifier"))?;
        if allowed & ctx.bit() == 0 {
            return Err(ProtocolError::Protocol(
                "property not allowed on this packet",
            ));
        }
        let q = &mut props;
        match id {
            0x01 => set(&mut q.payload_format_indicator, read_flag(&mut p)?)?,
            0x02 => set(&mut q.message_expiry_interval, read_u32(&mut p)?)?,
            0x03 => set(&mut q.content_type, read_string(&mut p)?)?,
            0x08 => set(&mut q.response_topic, read_string(&mut p)?)?,
            0x09 => set(&mut q.correlation_data, read_binary(&mut p)?)?,
            0x0B => {
                let v = read_varint(&mut p)?;
                if v == 0 {
                    return Err(ProtocolError::Protocol("subscription identifier 0"));
                }
                // §3.8.2.1.2: at most one on SUBSCRIBE; PUBLISH carries one per subscription.
                if ctx != PropCtx::Publish && !q.subscription_identifiers.is_empty() {
                    return Err(ProtocolError::Protocol(
                        "subscription identifier appears more than once",
                    ));
                }
                if q.subscription_identifiers.len() >= MAX_USER_PROPERTIES {
                    return Err(ProtocolError::Protocol("too many subscription identifiers"));
                }
                q.subscription_identifiers.push(v);
            }
            0x11 => set(&mut q.session_expiry_interval, read_u32(&mut p)?)?,
            0x12 => set(&mut q.assigned_client_identifier, read_string(&mut p)?)?,
            0x13 => set(&mut q.server_keep_alive, read_u16(&mut p)?)?,
            0x15 => set(&mut q.authentication_method, read_string(&mut p)?)?,
            0x16 => set(&mut q.authentication_data, read_binary(&mut p)?)?,
            0x17 => set(&mut q.request_problem_information, read_flag(&mut p)?)?,
            0x18 => set(&mut q.will_delay_interval, read_u32(&mut p)?)?,
            0x19 => set(&mut q.request_response_information, read_flag(&mut p)?)?,
            0x1A => set(&mut q.response_information, read_string(&mut p)?)?,
            0x1C => set(&mut q.server_reference, read_string(&mut p)?)?,
            0x1F => set(&mut q.reason_string, read_string(&mut p)?)?,
            0x21 => set(&mut q.receive_maximum, read_nonzero_u16(&mut p)?)?,
            0x22 => set(&mut q.topic_alias_maximum, read_u16(&mut p)?)?,
            0x23 => set(&mut q.topic_alias, read_nonzero_u16(&mut p)?)?,
            0x24 => set(&mut q.maximum_qos, read_flag(&mut p)?)?,
            0x25 => set(&mut q.retain_available, read_flag(&mut p)?)?,
            0x26 => {
                if q.user_properties.len() >= MAX_USER_PROPERTIES {
                    return Err(ProtocolError::Protocol("too many user properties"));
                }
                let k = read_string(&mut p)?;
                let v = read_string(&mut p)?;
                q.user_properties.push((k, v));
            }
            0x27 => match read_u32(&mut p)? {
                0 => return Err(ProtocolError::Protocol("maximum packet size 0")),
                v => set(&mut q.maximum_packet_size, v)?,
            },
            0x28 => set(&mut q.wildcard_subscription_available, read_flag(&mut p)?)?,
            0x29 => set(&mut q.subscription_identifier_available, read_flag(&mut p)?)?,
            0x2A => set(&mut q.shared_subscription_available, read_flag(&mut p)?)?,
            _ => unreachable!("allowed_on returned Some for an id without a decoder"),
        }
    }
    Ok(props)
}

fn str_len(s: &Option<String>) -> Result<usize, ProtocolError> {
    match s {
        Some(s) => check_field(s.as_bytes()).map(|_| 1 + field_len(s.as_bytes())),
        None => Ok(0),
    }
}

fn bin_len(b: &Option<Bytes>) -> Result<usize, ProtocolError> {
    match b {
        Some(b) => check_field(b).map(|_| 1 + field_len(b)),
        None => Ok(0),
    }
}

fn fixed_len<T>(v: &Option<T>, size: usize) -> usize {
    if v.is_some() { 1 + size } else { 0 }
}

/// Length of the property block's body (without its own length prefix), checking every field.
pub fn properties_len(p: &Properties) -> Result<usize, ProtocolError> {
    let mut n = fixed_len(&p.payload_format_indicator, 1)
        + fixed_len(&p.message_expiry_interval, 4)
        + str_len(&p.content_type)?
        + str_len(&p.response_topic)?
        + bin_len(&p.correlation_data)?
        + fixed_len(&p.session_expiry_interval, 4)
        + str_len(&p.assigned_client_identifier)?
        + fixed_len(&p.server_keep_alive, 2)
        + str_len(&p.authentication_method)?
        + bin_len(&p.authentication_data)?
        + fixed_len(&p.request_problem_information, 1)
        + fixed_len(&p.will_delay_interval, 4)
        + fixed_len(&p.request_response_information, 1)
        + str_len(&p.response_information)?
        + str_len(&p.server_reference)?
        + str_len(&p.reason_string)?
        + fixed_len(&p.receive_maximum, 2)
        + fixed_len(&p.topic_alias_maximum, 2)
        + fixed_len(&p.topic_alias, 2)
        + fixed_len(&p.maximum_qos, 1)
        + fixed_len(&p.retain_available, 1)
        + fixed_len(&p.maximum_packet_size, 4)
        + fixed_len(&p.wildcard_subscription_available, 1)
        + fixed_len(&p.subscription_identifier_available, 1)
        + fixed_len(&p.shared_subscription_available, 1);
    for &id in &p.subscription_identifiers {
        if id == 0 || id > MAX_VARINT {
            return Err(ProtocolError::Encode(
                "subscription identifier out of range",
            ));
        }
        n += 1 + varint_len(id as usize);
    }
    for (k, v) in &p.user_properties {
        check_field(k.as_bytes())?;
        check_field(v.as_bytes())?;
        n += 1 + field_len(k.as_bytes()) + field_len(v.as_bytes());
    }
    Ok(n)
}

/// Length of the whole property block: the length prefix plus `body_len`.
pub fn block_len(body_len: usize) -> usize {
    varint_len(body_len) + body_len
}

/// Writes the property block; `body_len` is what [`properties_len`] returned for `p`.
pub fn write_properties(buf: &mut BytesMut, p: &Properties, body_len: usize) {
    write_varint(buf, body_len);
    if body_len == 0 {
        return;
    }
    let byte = |buf: &mut BytesMut, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            buf.put_u8(id);
            buf.put_u8(v);
        }
    };
    let short = |buf: &mut BytesMut, id: u8, v: Option<u16>| {
        if let Some(v) = v {
            buf.put_u8(id);
            buf.put_u16(v);
        }
    };
    let long = |buf: &mut BytesMut, id: u8, v: Option<u32>| {
        if let Some(v) = v {
            buf.put_u8(id);
            buf.put_u32(v);
        }
    };
    let data = |buf: &mut BytesMut, id: u8, v: Option<&[u8]>| {
        if let Some(v) = v {
            buf.put_u8(id);
            write_field(buf, v);
        }
    };
    byte(buf, 0x01, p.payload_format_indicator);
    long(buf, 0x02, p.message_expiry_interval);
    data(buf, 0x03, p.content_type.as_deref().map(str::as_bytes));
    data(buf, 0x08, p.response_topic.as_deref().map(str::as_bytes));
    data(buf, 0x09, p.correlation_data.as_deref());
    for &id in &p.subscription_identifiers {
        buf.put_u8(0x0B);
        write_varint(buf, id as usize);
    }
    long(buf, 0x11, p.session_expiry_interval);
    data(
        buf,
        0x12,
        p.assigned_client_identifier.as_deref().map(str::as_bytes),
    );
    short(buf, 0x13, p.server_keep_alive);
    data(
        buf,
        0x15,
        p.authentication_method.as_deref().map(str::as_bytes),
    );
    data(buf, 0x16, p.authentication_data.as_deref());
    byte(buf, 0x17, p.request_problem_information);
    long(buf, 0x18, p.will_delay_interval);
    byte(buf, 0x19, p.request_response_information);
    data(
        buf,
        0x1A,
        p.response_information.as_deref().map(str::as_bytes),
    );
    data(buf, 0x1C, p.server_reference.as_deref().map(str::as_bytes));
    data(buf, 0x1F, p.reason_string.as_deref().map(str::as_bytes));
    short(buf, 0x21, p.receive_maximum);
    short(buf, 0x22, p.topic_alias_maximum);
    short(buf, 0x23, p.topic_alias);
    byte(buf, 0x24, p.maximum_qos);
    byte(buf, 0x25, p.retain_available);
    for (k, v) in &p.user_properties {
        buf.put_u8(0x26);
        write_field(buf, k.as_bytes());
        write_field(buf, v.as_bytes());
    }
    long(buf, 0x27, p.maximum_packet_size);
    byte(buf, 0x28, p.wildcard_subscription_available);
    byte(buf, 0x29, p.subscription_identifier_available);
    byte(buf, 0x2A, p.shared_subscription_available);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &'static [u8], ctx: PropCtx) -> Result<Properties, ProtocolError> {
        decode_properties(&mut Bytes::from_static(bytes), ctx)
    }

    #[test]
    fn whitelist_per_packet() {
        // Topic Alias (0x23) belongs to PUBLISH only.
        assert_eq!(
            decode(&[3, 0x23, 0, 5], PropCtx::Publish)
                .unwrap()
                .topic_alias,
            Some(5)
        );
        let err = decode(&[3, 0x23, 0, 5], PropCtx::Connect).unwrap_err();
        assert_eq!(err.reason_code(), 0x82);
        // Will Delay Interval (0x18) only in the will properties.
        assert!(decode(&[5, 0x18, 0, 0, 0, 9], PropCtx::Will).is_ok());
        assert_eq!(
            decode(&[5, 0x18, 0, 0, 0, 9], PropCtx::Publish)
                .unwrap_err()
                .reason_code(),
            0x82
        );
    }

    #[test]
    fn repeats_and_bad_values() {
        let twice = &[6, 0x02, 0, 0, 0, 1, 0x02][..];
        // Truncated second value: malformed before the duplicate is even seen.
        assert!(decode_properties(&mut Bytes::from_static(twice), PropCtx::Publish).is_err());
        let dup = &[10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2][..];
        assert_eq!(
            decode_properties(&mut Bytes::from_static(dup), PropCtx::Publish)
                .unwrap_err()
                .reason_code(),
            0x82
        );
        assert_eq!(
            decode(&[2, 0x0B, 0], PropCtx::Subscribe)
                .unwrap_err()
                .reason_code(),
            0x82
        );
        assert_eq!(
            decode(&[4, 0x0B, 1, 0x0B, 2], PropCtx::Subscribe)
                .unwrap_err()
                .reason_code(),
            0x82
        );
        assert_eq!(
            decode(&[4, 0x0B, 1, 0x0B, 2], PropCtx::Publish)
                .unwrap()
                .subscription_identifiers,
            vec![1, 2]
        );
        assert_eq!(
            decode(&[3, 0x21, 0, 0], PropCtx::Connect)
                .unwrap_err()
                .reason_code(),
            0x82
        );
        assert_eq!(
            decode(&[2, 0x01, 2], PropCtx::Publish)
                .unwrap_err()
                .reason_code(),
            0x82
        );
        assert_eq!(
            decode(&[2, 0x7F, 0], PropCtx::Publish)
                .unwrap_err()
                .reason_code(),
            0x81
        );
        // Property length larger than what follows.
        assert_eq!(
            decode(&[9, 0x01, 0], PropCtx::Publish)
                .unwrap_err()
                .reason_code(),
            0x81
        );
    }

    #[test]
    fn user_properties_are_bounded() {
        let one = [0x26u8, 0, 1, b'k', 0, 1, b'v'];
        let mut body = Vec::new();
        for _ in 0..MAX_USER_PROPERTIES {
            body.extend_from_slice(&one);
        }
        let mut ok = BytesMut::new();
        write_varint(&mut ok, body.len());
        ok.extend_from_slice(&body);
        let props = decode_properties(&mut ok.freeze(), PropCtx::Publish).unwrap();
        assert_eq!(props.user_properties.len(), MAX_USER_PROPERTIES);
        body.extend_from_slice(&one);
        let mut too_many = BytesMut::new();
        write_varint(&mut too_many, body.len());
        too_many.extend_from_slice(&body);
        let err = decode_properties(&mut too_many.freeze(), PropCtx::Publish).unwrap_err();
        assert_eq!(err, ProtocolError::Protocol("too many user properties"));
    }

    #[test]
    fn encode_then_decode_keeps_order() {
        let p = Properties {
            message_expiry_interval: Some(30),
            content_type: Some("text/plain".into()),
            user_properties: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            subscription_identifiers: vec![7, 300],
            ..Properties::default()
        };
        let len = properties_len(&p).unwrap();
        let mut buf = BytesMut::new();
        write_properties(&mut buf, &p, len);
        assert_eq!(buf.len(), block_len(len));
        let back = decode_properties(&mut buf.freeze(), PropCtx::Publish).unwrap();
        assert_eq!(back, p);
    }
}
