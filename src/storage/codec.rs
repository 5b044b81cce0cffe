//! Binary value layouts of the message tables (`retained-1`, `sessions-1`, `session-queue-1`).
//!
//! All integers big-endian; `str` and `bytes` are a u32 length then the bytes. Each value starts
//! with a layout byte (1 today) so a later layout can be told apart in a migration.
//!
//! message (v1): `u8 1 | u8 flags (bits 0-1 QoS, bit 2 RETAIN, bit 3 has expiry) |
//! [u64 expires_at_unix] | str topic | bytes payload | properties`
//!
//! properties: `u8 mask (bit 0 payload format u8, bit 1 message expiry u32, bit 2 content type
//! str, bit 3 response topic str, bit 4 correlation data bytes, bit 5 topic alias u16) | the
//! present fields in that order | u32 n, n x u32 subscription ids | u32 n, n x (str, str) user
//! properties`. Only the properties a PUBLISH can carry are stored (the broker stores nothing
//! else on a message).
//!
//! session (v1): `u8 1 | u32 expiry_secs | u64 written_unix | u32 n | n x subscription`, a
//! subscription being `str filter | u8 options (bits 0-1 QoS, bit 2 No Local, bit 3 Retain As
//! Published, bits 4-5 Retain Handling) | u8 has id | [u32 id]`.
//!
//! queued (v1): `u8 1 | u8 QoS | u8 RETAIN | u8 state (0 queued, 1 sent, 2 released) | u16
//! packet id (0 when queued) | u32 n, n x u32 subscription ids | message`. The `seq` is the key.

use crate::broker::store::{
    QueuedRecord, QueuedState, SessionRecord, StoredMessage, StoredSubscription,
};
use crate::protocol::packet::{Properties, QoS, SubscriptionOptions};
use bytes::Bytes;

const LAYOUT: u8 = 1;

/// A value that does not follow its layout.
#[derive(Debug)]
pub struct DecodeError(pub String);

type Result<T> = std::result::Result<T, DecodeError>;

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        // MQTT bounds every field far below 4 GiB (max packet 256 MiB), so the cast is exact.
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(DecodeError(format!(
                "truncated: need {n} bytes, {} left",
                self.0.len()
            )));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| DecodeError("invalid UTF-8".into()))
    }
    fn count(&mut self, min_item_size: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        // A corrupt count must not make us allocate gigabytes before failing.
        if n.saturating_mul(min_item_size) > self.0.len() {
            return Err(DecodeError(format!("count {n} exceeds the value")));
        }
        Ok(n)
    }
    fn layout(&mut self) -> Result<()> {
        match self.u8()? {
            LAYOUT => Ok(()),
            v => Err(DecodeError(format!("unknown layout {v}"))),
        }
    }
    fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(format!("{} trailing bytes", self.0.len())))
        }
    }
}

fn qos(v: u8) -> Result<QoS> {
    QoS::from_u8(v).ok_or_else(|| DecodeError(format!("QoS {v}")))
}

fn write_message(w: &mut W, m: &StoredMessage) {
    w.u8(LAYOUT);
    let flags = m.qos as u8 | u8::from(m.retain) << 2 | u8::from(m.expires_at_unix.is_some()) << 3;
    w.u8(flags);
    if let Some(at) = m.expires_at_unix {
        w.u64(at);
    }
    w.bytes(m.topic.as_bytes());
    w.bytes(&m.payload);
    let p = &m.properties;
    let mask = u8::from(p.payload_format_indicator.is_some())
        | u8::from(p.message_expiry_interval.is_some()) << 1
        | u8::from(p.content_type.is_some()) << 2
        | u8::from(p.response_topic.is_some()) << 3
        | u8::from(p.correlation_data.is_some()) << 4
        | u8::from(p.topic_alias.is_some()) << 5;
    w.u8(mask);
    if let Some(v) = p.payload_format_indicator {
        w.u8(v);
    }
    if let Some(v) = p.message_expiry_interval {
        w.u32(v);
    }
    if let Some(v) = &p.content_type {
        w.bytes(v.as_bytes());
    }
    if let Some(v) = &p.response_topic {
        w.bytes(v.as_bytes());
    }
    if let Some(v) = &p.correlation_data {
        w.bytes(v);
    }
    if let Some(v) = p.topic_alias {
        w.u16(v);
    }
    w.u32(p.subscription_identifiers.len() as u32);
    for id in &p.subscription_identifiers {
        w.u32(*id);
    }
    w.u32(p.user_properties.len() as u32);
    for (k, v) in &p.user_properties {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
}

fn read_message(r: &mut R<'_>) -> Result<StoredMessage> {
    r.layout()?;
    let flags = r.u8()?;
    let expires_at_unix = if flags & 8 != 0 { Some(r.u64()?) } else { None };
    let topic = r.str()?;
    let payload = Bytes::copy_from_slice(r.bytes()?);
    let mask = r.u8()?;
    let mut p = Properties::default();
    if mask & 1 != 0 {
        p.payload_format_indicator = Some(r.u8()?);
    }
    if mask & 2 != 0 {
        p.message_expiry_interval = Some(r.u32()?);
    }
    if mask & 4 != 0 {
        p.content_type = Some(r.str()?);
    }
    if mask & 8 != 0 {
        p.response_topic = Some(r.str()?);
    }
    if mask & 16 != 0 {
        p.correlation_data = Some(Bytes::copy_from_slice(r.bytes()?));
    }
    if mask & 32 != 0 {
        p.topic_alias = Some(r.u16()?);
    }
    let n = r.count(4)?;
    p.subscription_identifiers = (0..n).map(|_| r.u32()).collect::<Result<_>>()?;
    let n = r.count(8)?;
    p.user_properties = (0..n)
        .map(|_| Ok((r.str()?, r.str()?)))
        .collect::<Result<_>>()?;
    Ok(StoredMessage {
        topic,
        payload,
        qos: qos(flags & 3)?,
        retain: flags & 4 != 0,
        properties: p,
        expires_at_unix,
    })
}

/// Encodes a retained (or queued) message.
pub fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(32 + m.topic.len() + m.payload.len()));
    write_message(&mut w, m);
    w.0
}

pub fn decode_message(v: &[u8]) -> Result<StoredMessage> {
    let mut r = R(v);
    let m = read_message(&mut r)?;
    r.end()?;
    Ok(m)
}

/// A session row: the record plus the wall-clock second it was last written.
pub fn encode_session(s: &SessionRecord, written_unix: u64) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(32 + 32 * s.subscriptions.len()));
    w.u8(LAYOUT);
    w.u32(s.expiry_secs);
    w.u64(written_unix);
    w.u32(s.subscriptions.len() as u32);
    for sub in &s.subscriptions {
        w.bytes(sub.filter.as_bytes());
        let o = sub.options;
        w.u8(o.qos as u8
            | u8::from(o.no_local) << 2
            | u8::from(o.retain_as_published) << 3
            | (o.retain_handling & 3) << 4);
        match sub.subscription_id {
            Some(id) => {
                w.u8(1);
                w.u32(id);
            }
            None => w.u8(0),
        }
    }
    w.0
}

/// Decodes a session row into the record (for `client_id`) and its written time.
pub fn decode_session(client_id: &str, v: &[u8]) -> Result<(SessionRecord, u64)> {
    let mut r = R(v);
    r.layout()?;
    let expiry_secs = r.u32()?;
    let written = r.u64()?;
    let n = r.count(6)?;
    let mut subscriptions = Vec::with_capacity(n);
    for _ in 0..n {
        let filter = r.str()?;
        let o = r.u8()?;
        let subscription_id = if r.u8()? != 0 { Some(r.u32()?) } else { None };
        subscriptions.push(StoredSubscription {
            filter,
            options: SubscriptionOptions {
                qos: qos(o & 3)?,
                no_local: o & 4 != 0,
                retain_as_published: o & 8 != 0,
                retain_handling: (o >> 4) & 3,
            },
            subscription_id,
        });
    }
    r.end()?;
    Ok((
        SessionRecord {
            client_id: client_id.to_string(),
            expiry_secs,
            subscriptions,
        },
        written,
    ))
}

/// A queue row (the `seq` lives in the key).
pub fn encode_queued(q: &QueuedRecord) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(
        48 + q.message.topic.len() + q.message.payload.len(),
    ));
    w.u8(LAYOUT);
    w.u8(q.qos as u8);
    w.u8(u8::from(q.retain));
    let (state, pkid) = match q.state {
        QueuedState::Queued => (0, 0),
        QueuedState::Sent { pkid } => (1, pkid),
        QueuedState::Released { pkid } => (2, pkid),
    };
    w.u8(state);
    w.u16(pkid);
    w.u32(q.subscription_ids.len() as u32);
    for id in &q.subscription_ids {
        w.u32(*id);
    }
    write_message(&mut w, &q.message);
    w.0
}

pub fn decode_queued(seq: u64, v: &[u8]) -> Result<QueuedRecord> {
    let mut r = R(v);
    r.layout()?;
    let q = qos(r.u8()?)?;
    let retain = r.u8()? != 0;
    let state = r.u8()?;
    let pkid = r.u16()?;
    let state = match state {
        0 => QueuedState::Queued,
        1 => QueuedState::Sent { pkid },
        2 => QueuedState::Released { pkid },
        s => return Err(DecodeError(format!("queue state {s}"))),
    };
    let n = r.count(4)?;
    let subscription_ids = (0..n).map(|_| r.u32()).collect::<Result<_>>()?;
    let message = read_message(&mut r)?;
    r.end()?;
    Ok(QueuedRecord {
        seq,
        message,
        qos: q,
        retain,
        subscription_ids,
        state,
    })
}

/// Rewrites only the state of an encoded queue row (bytes 3..6), leaving the message untouched.
pub fn set_queued_state(v: &mut [u8], state: QueuedState) -> Result<()> {
    if v.len() < 6 || v[0] != LAYOUT {
        return Err(DecodeError("queue row too short or unknown layout".into()));
    }
    let (s, pkid) = match state {
        QueuedState::Queued => (0, 0u16),
        QueuedState::Sent { pkid } => (1, pkid),
        QueuedState::Released { pkid } => (2, pkid),
    };
    v[3] = s;
    v[4..6].copy_from_slice(&pkid.to_be_bytes());
    Ok(())
}
