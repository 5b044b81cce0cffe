//! The store-and-forward buffers of MQTT_BRIDGE routes (table `route-buffer-1`).
//!
//! A route keeps every QoS 1/2 message it has to send to its remote broker here until the remote
//! acknowledged it (PUBACK, or PUBCOMP for QoS 2), so nothing is lost across an outage or a hub
//! restart. The route's own writer groups many appends and removals into one transaction
//! ([`Storage::route_buffer_apply`]); this file only knows rows, not MQTT.

use super::Storage;
use super::error::StorageError;
use super::tables::ROUTE_BUFFER;

/// One buffered message, as a route hands it over and gets it back after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferedMessage {
    /// 1 or 2 (QoS 0 messages are never buffered).
    pub qos: u8,
    pub retain: bool,
    /// The topic on the remote broker (already remapped).
    pub topic: String,
    pub payload: Vec<u8>,
}

/// One change of a route's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BufferOp {
    /// Keep `msg` as number `seq` of `route`.
    Append {
        route: String,
        seq: u64,
        msg: BufferedMessage,
    },
    /// The remote acknowledged (or the route dropped) message `seq` of `route`.
    Remove { route: String, seq: u64 },
    /// Forget every message of `route` (the route was removed).
    Clear { route: String },
}

/// Value layout v1: `[qos u8][retain u8][topic length u16 BE][topic UTF-8][payload...]`.
fn encode(msg: &BufferedMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + msg.topic.len() + msg.payload.len());
    out.push(msg.qos);
    out.push(u8::from(msg.retain));
    let len = u16::try_from(msg.topic.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&msg.topic.as_bytes()[..usize::from(len)]);
    out.extend_from_slice(&msg.payload);
    out
}

fn decode(bytes: &[u8]) -> Option<BufferedMessage> {
    let (&qos, rest) = bytes.split_first()?;
    let (&retain, rest) = rest.split_first()?;
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let rest = &rest[2..];
    let topic = std::str::from_utf8(rest.get(..len)?).ok()?.to_string();
    Some(BufferedMessage {
        qos,
        retain: retain != 0,
        topic,
        payload: rest[len..].to_vec(),
    })
}

impl Storage {
    /// Applies `ops` in order in one durable transaction (group commit for a route's writer).
    pub fn route_buffer_apply(&self, ops: &[BufferOp]) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut table = tx.open_table(ROUTE_BUFFER)?;
            for op in ops {
                match op {
                    BufferOp::Append { route, seq, msg } => {
                        table.insert((route.as_str(), *seq), encode(msg).as_slice())?;
                    }
                    BufferOp::Remove { route, seq } => {
                        table.remove((route.as_str(), *seq))?;
                    }
                    BufferOp::Clear { route } => {
                        table.retain_in(
                            (route.as_str(), 0)..=(route.as_str(), u64::MAX),
                            |_, _| false,
                        )?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Every buffered message of `route`, oldest first, with its sequence number. A row that
    /// cannot be decoded is skipped with a warning (never a crash of the route).
    pub fn route_buffer_load(
        &self,
        route: &str,
    ) -> Result<Vec<(u64, BufferedMessage)>, StorageError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(ROUTE_BUFFER)?;
        let mut out = Vec::new();
        for row in table.range((route, 0)..=(route, u64::MAX))? {
            let (key, value) = row?;
            let seq = key.value().1;
            match decode(value.value()) {
                Some(msg) => out.push((seq, msg)),
                None => tracing::warn!(route, seq, "skipping an unreadable route buffer row"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str) -> BufferedMessage {
        BufferedMessage {
            qos: 1,
            retain: false,
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn append_remove_clear_keep_order_per_route() {
        let s = Storage::in_memory().unwrap();
        let append = |route: &str, seq, m| BufferOp::Append {
            route: route.into(),
            seq,
            msg: m,
        };
        s.route_buffer_apply(&[
            append("a", 2, msg("t/2", "two")),
            append("a", 1, msg("t/1", "one")),
            append("b", 1, msg("u/1", "other")),
            append("a", 3, msg("t/3", "three")),
            BufferOp::Remove {
                route: "a".into(),
                seq: 2,
            },
        ])
        .unwrap();
        let a = s.route_buffer_load("a").unwrap();
        assert_eq!(
            a.iter()
                .map(|(s, m)| (*s, m.topic.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "t/1"), (3, "t/3")]
        );
        assert_eq!(a[1].1.payload, b"three");
        s.route_buffer_apply(&[BufferOp::Clear { route: "a".into() }])
            .unwrap();
        assert!(s.route_buffer_load("a").unwrap().is_empty());
        assert_eq!(s.route_buffer_load("b").unwrap().len(), 1);
    }

    #[test]
    fn layout_round_trips() {
        let m = BufferedMessage {
            qos: 2,
            retain: true,
            topic: "sites/a/ü".into(),
            payload: vec![0, 1, 255],
        };
        assert_eq!(decode(&encode(&m)), Some(m));
        assert_eq!(decode(&[1]), None);
    }
}
