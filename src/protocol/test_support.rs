//! Helpers shared by the codec's byte-vector tests (test builds only).
//!
//! [`roundtrip`] is the core check: hand-written bytes decode to the expected packet, encode back
//! to the same bytes, `encoded_len` agrees, and every strict prefix is "need more bytes".

use super::packet::{Packet, ProtocolVersion};
use super::{ProtocolError, decode, encode, encoded_len};
use bytes::BytesMut;

/// Generous limit for tests that are not about the size limit.
pub const BIG: usize = 1 << 20;

/// Decodes `bytes` as the first packet (`version` None) when it is a CONNECT, else under `version`.
pub fn decode_one(bytes: &[u8], version: ProtocolVersion) -> Result<Option<Packet>, ProtocolError> {
    let v = if bytes.first().is_some_and(|b| b >> 4 == 1) {
        None
    } else {
        Some(version)
    };
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, v, BIG)
}

/// The decode error's reason code for `bytes`; panics (fails the test) if they decode.
pub fn reason_of(bytes: &[u8], version: ProtocolVersion) -> u8 {
    match decode_one(bytes, version) {
        Err(e) => e.reason_code(),
        Ok(p) => panic!("expected an error for {bytes:02X?}, decoded {p:?}"),
    }
}

/// Asserts `bytes` decode to `expected` under `version`, consuming everything, that `expected`
/// encodes back to exactly `bytes`, and that each strict prefix decodes to Ok(None).
pub fn roundtrip(bytes: &[u8], version: ProtocolVersion, expected: &Packet) {
    let mut buf = BytesMut::from(bytes);
    let v = if matches!(expected, Packet::Connect(_)) {
        None
    } else {
        Some(version)
    };
    let got = decode(&mut buf, v, BIG)
        .unwrap_or_else(|e| panic!("decoding {bytes:02X?}: {e}"))
        .expect("a complete packet");
    assert_eq!(&got, expected, "decoded packet");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    let mut out = BytesMut::new();
    encode(expected, version, &mut out).expect("encodes");
    assert_eq!(&out[..], bytes, "re-encoded bytes");
    assert_eq!(encoded_len(expected, version), bytes.len(), "encoded_len");
    for cut in 0..bytes.len() {
        let mut part = BytesMut::from(&bytes[..cut]);
        let r = decode(&mut part, v, BIG);
        assert!(matches!(r, Ok(None)), "prefix of {cut} bytes gave {r:?}");
        assert_eq!(part.len(), cut, "a prefix must not be consumed");
    }
}

/// Builds a packet from a fixed-header byte and a body, computing the Remaining Length.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    bytes::BufMut::put_u8(&mut out, first);
    super::wire::write_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out.to_vec()
}
