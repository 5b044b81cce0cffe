//! Wire primitives shared by every packet: integers, the Variable Byte Integer, UTF-8 strings and
//! binary data (MQTT 5 §1.5), read from a [`Bytes`] holding exactly one packet's body and written
//! into a [`BytesMut`].
//!
//! Readers never trust a length prefix: every read checks the bytes actually present first, so a
//! lying length can neither panic nor allocate more than the packet holds. Writers assume the
//! caller reserved the space (see `encode.rs`) and checked the lengths with the `*_len` helpers.

use super::error::ProtocolError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::sync::Arc;

/// Largest value a Variable Byte Integer can carry (§1.5.5): four bytes of seven bits.
pub const MAX_VARINT: u32 = 268_435_455;

const EOF: ProtocolError = ProtocolError::Malformed("packet ends before a field is complete");

pub fn read_u8(b: &mut Bytes) -> Result<u8, ProtocolError> {
    if b.is_empty() {
        return Err(EOF);
    }
    Ok(b.get_u8())
}

pub fn read_u16(b: &mut Bytes) -> Result<u16, ProtocolError> {
    if b.len() < 2 {
        return Err(EOF);
    }
    Ok(b.get_u16())
}

pub fn read_u32(b: &mut Bytes) -> Result<u32, ProtocolError> {
    if b.len() < 4 {
        return Err(EOF);
    }
    Ok(b.get_u32())
}

/// Outcome of parsing a Variable Byte Integer from a prefix that may be incomplete.
#[derive(Debug, PartialEq, Eq)]
pub enum VarInt {
    /// The value and how many bytes it took.
    Done(u32, usize),
    /// The bytes stop in the middle of the integer.
    Incomplete,
}

/// Parses a Variable Byte Integer at the start of `bytes` (§1.5.5). A fifth byte is malformed
/// even when it is not there yet: four bytes with the continuation bit set already prove it.
pub fn parse_varint(bytes: &[u8]) -> Result<VarInt, ProtocolError> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(VarInt::Done(value, i + 1));
        }
    }
    if bytes.len() >= 4 {
        return Err(ProtocolError::Malformed(
            "variable byte integer longer than 4 bytes",
        ));
    }
    Ok(VarInt::Incomplete)
}

/// Reads a Variable Byte Integer that must be complete inside `b`.
pub fn read_varint(b: &mut Bytes) -> Result<u32, ProtocolError> {
    match parse_varint(b)? {
        VarInt::Done(v, n) => {
            b.advance(n);
            Ok(v)
        }
        VarInt::Incomplete => Err(EOF),
    }
}

/// Reads Binary Data (§1.5.6): a two-byte length then that many bytes, shared with `b`.
pub fn read_binary(b: &mut Bytes) -> Result<Bytes, ProtocolError> {
    let len = usize::from(read_u16(b)?);
    if b.len() < len {
        return Err(EOF);
    }
    Ok(b.split_to(len))
}

/// §1.5.4: well-formed UTF-8 (no surrogates, which `from_utf8` already refuses) and no U+0000.
fn check_utf8(raw: &[u8]) -> Result<&str, ProtocolError> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| ProtocolError::Malformed("string is not valid UTF-8"))?;
    if raw.contains(&0) {
        return Err(ProtocolError::Malformed("string contains U+0000"));
    }
    Ok(s)
}

/// Reads a UTF-8 Encoded String (§1.5.4).
pub fn read_string(b: &mut Bytes) -> Result<String, ProtocolError> {
    let raw = read_binary(b)?;
    Ok(check_utf8(&raw)?.to_owned())
}

/// Reads a UTF-8 Encoded String into the shared form used for topic names.
pub fn read_arc_str(b: &mut Bytes) -> Result<Arc<str>, ProtocolError> {
    let raw = read_binary(b)?;
    Ok(Arc::from(check_utf8(&raw)?))
}

/// Number of bytes the Variable Byte Integer encoding of `v` takes.
pub fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `v` as a Variable Byte Integer; `v` must be at most [`MAX_VARINT`].
pub fn write_varint(buf: &mut BytesMut, mut v: usize) {
    loop {
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if v == 0 {
            return;
        }
    }
}

/// Encoded size of a string or binary field: two length bytes plus the data.
pub fn field_len(data: &[u8]) -> usize {
    2 + data.len()
}

/// Refuses data a two-byte length prefix cannot describe.
pub fn check_field(data: &[u8]) -> Result<(), ProtocolError> {
    if data.len() > usize::from(u16::MAX) {
        return Err(ProtocolError::Encode(
            "string or binary field over 65535 bytes",
        ));
    }
    Ok(())
}

/// Writes a string or binary field; the length was checked with [`check_field`].
pub fn write_field(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u16(data.len() as u16);
    buf.put_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries_from_the_spec() {
        // §1.5.5 table: the smallest and largest value of each length.
        let cases: &[(u32, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(value, bytes) in cases {
            assert_eq!(
                parse_varint(bytes).unwrap(),
                VarInt::Done(value, bytes.len())
            );
            let mut out = BytesMut::new();
            write_varint(&mut out, value as usize);
            assert_eq!(&out[..], bytes, "encoding {value}");
            assert_eq!(varint_len(value as usize), bytes.len());
        }
    }

    #[test]
    fn varint_incomplete_and_too_long() {
        assert_eq!(parse_varint(&[]).unwrap(), VarInt::Incomplete);
        assert_eq!(parse_varint(&[0x80, 0x80]).unwrap(), VarInt::Incomplete);
        assert!(matches!(
            parse_varint(&[0x80, 0x80, 0x80, 0x80]),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            parse_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn strings_are_checked() {
        let mut ok = Bytes::from_static(&[0, 3, b'a', b'/', b'b']);
        assert_eq!(read_string(&mut ok).unwrap(), "a/b");
        let mut nul = Bytes::from_static(&[0, 2, b'a', 0]);
        assert!(read_string(&mut nul).is_err());
        let mut bad = Bytes::from_static(&[0, 2, 0xC3, 0x28]);
        assert!(read_string(&mut bad).is_err());
        // A surrogate half encoded as UTF-8 (U+D800) is not well-formed UTF-8.
        let mut surrogate = Bytes::from_static(&[0, 3, 0xED, 0xA0, 0x80]);
        assert!(read_string(&mut surrogate).is_err());
        let mut short = Bytes::from_static(&[0, 9, b'a']);
        assert!(read_binary(&mut short).is_err());
    }
}
