//! # transport::identity: the client certificate's Common Name, for `use_identity_as_username`
//!
//! Owns one job: find the subject CN in a DER X.509 certificate with a small, strict DER walk
//! (no extra crate; rustls has already verified the chain and signature before we look).
//! Must not touch: verification, sockets, broker state. Start at [`common_name`].
//!
//! Only the path to the subject is walked: `Certificate -> tbsCertificate -> subject -> RDNs`.
//! DER (X.690 section 10) is definite-length only, so an indefinite length is malformed here.

use thiserror::Error;

/// Why a certificate gave no usable user name.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The bytes are not the DER shape of an X.509 certificate.
    #[error("certificate is not well-formed DER")]
    Malformed,
    /// The subject has no commonName attribute.
    #[error("certificate subject has no common name (CN)")]
    NoCommonName,
    /// The CN is empty, in an unsupported string type, or not valid text. MQTT user names are
    /// UTF-8 without U+0000 [MQTT-1.5.4-1, MQTT-1.5.4-2], so a CN with NUL is refused too.
    #[error("certificate common name is not a usable user name")]
    BadCommonName,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version` in tbsCertificate (RFC 5280 section 4.1).
const VERSION_TAG: u8 = 0xA0;
/// id-at-commonName, OID 2.5.4.3.
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];

const UTF8_STRING: u8 = 0x0C;
const PRINTABLE_STRING: u8 = 0x13;
const TELETEX_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const UNIVERSAL_STRING: u8 = 0x1C;
const BMP_STRING: u8 = 0x1E;

/// The first commonName in the certificate's subject (the same choice Mosquitto makes).
pub fn common_name(cert_der: &[u8]) -> Result<String, IdentityError> {
    let mut outer = Reader::new(cert_der);
    let certificate = outer.expect(SEQUENCE)?;
    if !outer.is_empty() {
        return Err(IdentityError::Malformed);
    }
    let mut cert = Reader::new(certificate);
    let mut tbs = Reader::new(cert.expect(SEQUENCE)?);
    if tbs.peek_tag() == Some(VERSION_TAG) {
        tbs.next()?;
    }
    tbs.expect(INTEGER)?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature AlgorithmIdentifier
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    let mut subject = Reader::new(tbs.expect(SEQUENCE)?);
    while !subject.is_empty() {
        let mut rdn = Reader::new(subject.expect(SET)?);
        while !rdn.is_empty() {
            let mut attribute = Reader::new(rdn.expect(SEQUENCE)?);
            let oid = attribute.expect(OID)?;
            let (tag, value) = attribute.next()?;
            if oid == CN_OID {
                return decode_string(tag, value);
            }
        }
    }
    Err(IdentityError::NoCommonName)
}

/// Turns one of the X.520 DirectoryString choices into a Rust string.
fn decode_string(tag: u8, value: &[u8]) -> Result<String, IdentityError> {
    let text = match tag {
        UTF8_STRING => {
            String::from_utf8(value.to_vec()).map_err(|_| IdentityError::BadCommonName)?
        }
        // TeletexString is T.61 in theory and ASCII in practice; anything else is refused
        // rather than guessed at, since the result becomes an identity.
        PRINTABLE_STRING | IA5_STRING | TELETEX_STRING if value.is_ascii() => {
            String::from_utf8(value.to_vec()).map_err(|_| IdentityError::BadCommonName)?
        }
        BMP_STRING if value.len().is_multiple_of(2) => {
            let units = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| IdentityError::BadCommonName)?
        }
        UNIVERSAL_STRING if value.len().is_multiple_of(4) => value
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect::<Option<String>>()
            .ok_or(IdentityError::BadCommonName)?,
        _ => return Err(IdentityError::BadCommonName),
    };
    if text.is_empty() || text.contains('\0') {
        return Err(IdentityError::BadCommonName);
    }
    Ok(text)
}

/// A cursor over a run of DER tag-length-value items.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next item's tag and contents.
    fn next(&mut self) -> Result<(u8, &'a [u8]), IdentityError> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(IdentityError::Malformed)?;
        // High-tag-number form (low five bits all set) never occurs on the path we walk.
        if tag & 0x1F == 0x1F {
            return Err(IdentityError::Malformed);
        }
        let (&first, after_len) = after_tag.split_first().ok_or(IdentityError::Malformed)?;
        let (len, body) = if first < 0x80 {
            (usize::from(first), after_len)
        } else {
            // Long form: 1..=4 length octets (0x80 alone would be BER's indefinite length).
            let count = usize::from(first & 0x7F);
            if count == 0 || count > 4 || after_len.len() < count {
                return Err(IdentityError::Malformed);
            }
            let (len_bytes, body) = after_len.split_at(count);
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, body)
        };
        if body.len() < len {
            return Err(IdentityError::Malformed);
        }
        let (contents, rest) = body.split_at(len);
        self.rest = rest;
        Ok((tag, contents))
    }

    /// The next item's contents, which must carry `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], IdentityError> {
        match self.next()? {
            (found, contents) if found == tag => Ok(contents),
            _ => Err(IdentityError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    fn cert_with_subject(dn: DistinguishedName) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn with_cn(value: DnValue) -> Vec<u8> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Plant 4");
        dn.push(DnType::CommonName, value);
        dn.push(DnType::CountryName, "PT");
        cert_with_subject(dn)
    }

    #[test]
    fn utf8_common_name_is_found_among_other_attributes() {
        let der = with_cn(DnValue::Utf8String("sensor-17.línea".into()));
        assert_eq!(common_name(&der).unwrap(), "sensor-17.línea");
    }

    #[test]
    fn printable_and_bmp_strings_decode() {
        let printable = with_cn(DnValue::PrintableString("press 3".try_into().unwrap()));
        assert_eq!(common_name(&printable).unwrap(), "press 3");
        let bmp = with_cn(DnValue::BmpString("Ωmega".try_into().unwrap()));
        assert_eq!(common_name(&bmp).unwrap(), "Ωmega");
    }

    #[test]
    fn the_first_common_name_wins() {
        let der = hand_built(&[
            (&[0x55, 0x04, 0x0A], UTF8_STRING, b"org"),
            (&CN_OID, UTF8_STRING, b"one"),
            (&CN_OID, UTF8_STRING, b"two"),
        ]);
        assert_eq!(common_name(&der).unwrap(), "one");
    }

    #[test]
    fn subject_without_cn_is_reported() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "no cn here");
        assert_eq!(
            common_name(&cert_with_subject(dn)),
            Err(IdentityError::NoCommonName)
        );
    }

    #[test]
    fn nul_or_empty_cn_is_refused() {
        let der = with_cn(DnValue::Utf8String("bad\0name".into()));
        assert_eq!(common_name(&der), Err(IdentityError::BadCommonName));
        let der = with_cn(DnValue::Utf8String(String::new()));
        assert_eq!(common_name(&der), Err(IdentityError::BadCommonName));
    }

    #[test]
    fn garbage_and_truncation_are_malformed_not_panics() {
        assert_eq!(common_name(&[]), Err(IdentityError::Malformed));
        assert_eq!(
            common_name(&[0x30, 0x80, 0x00, 0x00]),
            Err(IdentityError::Malformed)
        );
        assert_eq!(
            common_name(&[0x30, 0x85, 1, 2, 3, 4, 5]),
            Err(IdentityError::Malformed)
        );
        let der = with_cn(DnValue::Utf8String("x".into()));
        for cut in 0..der.len() {
            assert!(
                common_name(&der[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
    }

    #[test]
    fn hand_built_certificate_without_version_field() {
        let der = hand_built(&[(&CN_OID, IA5_STRING, b"ab")]);
        assert_eq!(common_name(&der).unwrap(), "ab");
        let teletex_latin1 = hand_built(&[(&CN_OID, TELETEX_STRING, &[0xE9])]);
        assert_eq!(
            common_name(&teletex_latin1),
            Err(IdentityError::BadCommonName)
        );
    }

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        assert!(
            contents.len() < 0x80,
            "test helper only writes short lengths"
        );
        [&[tag, contents.len() as u8][..], contents].concat()
    }

    /// A certificate skeleton with empty algorithm/issuer/validity and one RDN per attribute.
    fn hand_built(attributes: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        let rdns: Vec<u8> = attributes
            .iter()
            .flat_map(|(oid, tag, value)| {
                let attribute = [tlv(OID, oid), tlv(*tag, value)].concat();
                tlv(SET, &tlv(SEQUENCE, &attribute))
            })
            .collect();
        let tbs = [
            tlv(INTEGER, &[1]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &rdns),
        ]
        .concat();
        tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
    }
}
