//! The publisher and subscriber tasks, and the end-to-end flow control between them.
//!
//! Publishers batch: up to [`BATCH`] PUBLISH packets are encoded into one buffer and written with
//! one `write_all`. QoS 1 publishers keep at most `window` messages unacknowledged, released by
//! PUBACKs read on the other half of the socket. Independently, [`Flow`] caps the deliveries
//! still owed to subscribers (sent x subscribers - delivered), so the bench measures the rate a
//! broker sustains without building an unbounded queue (and without tripping a broker's
//! per-client queue limit, which would turn a throughput test into a loss test).

use crate::client::Conn;
use crate::stats::{HEADER_LEN, Histogram, SeqTracker, now_ns, read_header, write_header};
use crate::stream::send_all;
use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use lothub::protocol::packet::{Packet, Properties, ProtocolVersion, PubAck, Publish, QoS};
use lothub::protocol::{decode, encode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, Semaphore, watch};

/// Messages written per `write_all` when not rate-limited: enough to amortise the system call.
pub const BATCH: usize = 64;
/// A write blocked this long means the broker stopped reading: the publisher stops early.
const WRITE_STALL: Duration = Duration::from_secs(10);

/// Deliveries owed versus made, shared by every task of a run.
pub struct Flow {
    /// Deliveries expected so far: each sent message times the subscribers that should get it.
    pub expected: AtomicU64,
    /// Distinct messages received by all subscribers.
    pub delivered: AtomicU64,
    /// Most deliveries that may be outstanding; 0 = no cap.
    pub limit: u64,
    /// Woken by subscribers after each read batch.
    pub progress: Notify,
}

impl Flow {
    pub fn new(limit: u64) -> Flow {
        Flow {
            expected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            limit,
            progress: Notify::new(),
        }
    }

    fn outstanding(&self) -> u64 {
        let e = self.expected.load(Ordering::Relaxed);
        e.saturating_sub(self.delivered.load(Ordering::Relaxed))
    }

    /// Waits until fewer than `limit` deliveries are outstanding and returns how many more
    /// may go (u64::MAX without a cap); None if `deadline` came first.
    async fn wait_room(&self, deadline: Instant) -> Option<u64> {
        if self.limit == 0 {
            return Some(u64::MAX);
        }
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let outstanding = self.outstanding();
            if outstanding < self.limit {
                return Some(self.limit - outstanding);
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return None;
            }
        }
    }
}

/// What a publisher is and where it sends.
pub struct PubTask {
    pub id: u32,
    pub topic: Arc<str>,
    /// Subscribers that receive each of its messages.
    pub fan: u64,
    pub qos: QoS,
    pub payload: usize,
    /// Messages per second for this publisher; 0 = unpaced.
    pub rate: f64,
    pub window: usize,
    /// Messages at most; u64::MAX = until the deadline.
    pub limit: u64,
}

/// Paces a publisher to `rate` messages per second (0 = unpaced): how many may go now.
fn allowance(rate: f64, start: Instant, sent: u64, cap: usize) -> usize {
    if rate <= 0.0 {
        return cap;
    }
    let due = (rate * start.elapsed().as_secs_f64()) as u64 + 1;
    (due.saturating_sub(sent) as usize).min(cap)
}

/// Appends one PUBLISH to `wbuf` through the codec, then stamps the header into its payload
/// (the payload is the packet's tail), so the payload template is shared, never copied.
fn push_publish(
    wbuf: &mut BytesMut,
    base: &Publish,
    pkid: u16,
    v: ProtocolVersion,
    header: (u32, u64, u64),
) -> Result<()> {
    let mut p = base.clone();
    p.pkid = pkid;
    encode(&Packet::Publish(p), v, wbuf)?;
    let start = wbuf.len() - base.payload.len();
    let (id, seq, ts) = header;
    write_header(&mut wbuf[start..start + HEADER_LEN], id, seq, ts);
    Ok(())
}

/// Sends until `deadline` (or `t.limit` messages) and returns how many were sent.
pub async fn publisher(
    conn: Conn,
    t: PubTask,
    flow: Arc<Flow>,
    deadline: Instant,
    epoch: Instant,
) -> Result<u64> {
    let base = Publish {
        dup: false,
        qos: t.qos,
        retain: false,
        topic: t.topic.clone(),
        pkid: 0,
        payload: Bytes::from(vec![0u8; t.payload]),
        properties: Properties::default(),
    };
    let Conn {
        stream,
        mut rbuf,
        version,
    } = conn;
    let (mut rd, mut wr) = stream.into_split();
    // QoS 1 window; QoS 0 never waits on it.
    let window = Arc::new(Semaphore::new(t.window.max(1)));
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let (window, acked) = (window.clone(), acked.clone());
        tokio::spawn(async move {
            loop {
                while let Some(pkt) = decode(&mut rbuf, Some(version), 1 << 20)? {
                    if let Packet::PubAck(_) = pkt {
                        acked.fetch_add(1, Ordering::Relaxed);
                        window.add_permits(1);
                    }
                }
                rbuf.reserve(16 * 1024);
                if rd.read_buf(&mut rbuf).await? == 0 {
                    return Ok::<(), anyhow::Error>(());
                }
            }
        })
    };
    let qos1 = t.qos == QoS::AtLeastOnce;
    let start = Instant::now();
    let mut wbuf = BytesMut::with_capacity(BATCH * (t.payload + t.topic.len() + 8));
    let mut sent = 0u64;
    let mut pkid: u16 = 0;
    while Instant::now() < deadline && sent < t.limit {
        let n = allowance(t.rate, start, sent, BATCH).min((t.limit - sent) as usize);
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        // QoS 1: hold one window slot first (an await), then check the flow cap; nothing is
        // awaited between that check and `expected.fetch_add` below, so publishers sharing the
        // runtime cannot all claim the same room.
        if qos1 {
            match tokio::time::timeout_at(deadline.into(), window.acquire()).await {
                Ok(permit) => permit?.forget(),
                Err(_) => break,
            }
        }
        let Some(room) = flow.wait_room(deadline).await else {
            break;
        };
        let n = n.min((room / t.fan.max(1)).max(1) as usize);
        let mut take = n;
        if qos1 {
            take = 1;
            while take < n && window.try_acquire().map(|p| p.forget()).is_ok() {
                take += 1;
            }
        }
        for _ in 0..take {
            if qos1 {
                pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
            }
            let header = (t.id, sent, now_ns(epoch));
            push_publish(&mut wbuf, &base, pkid, version, header)?;
            sent += 1;
        }
        flow.expected
            .fetch_add(take as u64 * t.fan, Ordering::Relaxed);
        match tokio::time::timeout(WRITE_STALL, send_all(&mut wr, &wbuf)).await {
            Ok(r) => r.context("writing PUBLISH")?,
            Err(_) => {
                eprintln!(
                    "publisher {}: broker stopped reading for {WRITE_STALL:?}; stopping",
                    t.id
                );
                break;
            }
        }
        wbuf.clear();
    }
    // Let the last window be acknowledged before disconnecting, so nothing is cut off in flight.
    let wait_until = Instant::now() + Duration::from_secs(5);
    while qos1
        && acked.load(Ordering::Relaxed) < sent
        && Instant::now() < wait_until
        && !reader.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reader.abort();
    let unacked = sent.saturating_sub(acked.load(Ordering::Relaxed));
    if qos1 && unacked > 0 {
        eprintln!(
            "publisher {}: {unacked} of {sent} messages never acknowledged",
            t.id
        );
    }
    let mut d = BytesMut::new();
    encode(&Packet::Disconnect(Default::default()), version, &mut d)?;
    let _ = tokio::time::timeout(Duration::from_secs(1), send_all(&mut wr, &d)).await;
    Ok(sent)
}

/// What one subscriber task saw.
#[derive(Default)]
pub struct SubResult {
    pub hist: Histogram,
    pub seqs: SeqTracker,
    pub received: u64,
    pub last_ns: u64,
}

/// Receives until told to stop, acknowledging QoS 1 deliveries in one write per read. A broken
/// connection ends the task early but keeps what was counted (it shows up as lost messages).
pub async fn subscriber(
    mut conn: Conn,
    mut stop: watch::Receiver<bool>,
    flow: Arc<Flow>,
    epoch: Instant,
) -> SubResult {
    let mut r = SubResult::default();
    let mut acks = BytesMut::new();
    let v = conn.version;
    let outcome: Result<()> = async {
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                res = conn.fill() => res?,
            }
            let before = r.received;
            while let Some(pkt) = conn.try_decode()? {
                let Packet::Publish(p) = pkt else { continue };
                if p.qos == QoS::AtLeastOnce {
                    encode(&Packet::PubAck(PubAck::new(p.pkid)), v, &mut acks)?;
                }
                if let Some((id, seq, sent)) = read_header(&p.payload) {
                    let now = now_ns(epoch);
                    if r.seqs.record(id, seq) {
                        r.received += 1;
                    }
                    r.hist.record(now.saturating_sub(sent) / 1000);
                    r.last_ns = now;
                }
            }
            if r.received > before {
                flow.delivered
                    .fetch_add(r.received - before, Ordering::Relaxed);
                flow.progress.notify_waiters();
            }
            if !acks.is_empty() {
                tokio::time::timeout(WRITE_STALL, send_all(&mut conn.stream, &acks))
                    .await
                    .context("broker stopped reading acknowledgements")??;
                acks.clear();
            }
        }
    }
    .await;
    if let Err(e) = outcome {
        eprintln!("subscriber: {e:#}");
    }
    conn.disconnect().await;
    r
}
