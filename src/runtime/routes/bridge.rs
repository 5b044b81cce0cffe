//! One MQTT_BRIDGE route at run time: the task that keeps a connection to the remote broker,
//! forwards this hub's messages out, the remote's messages in, and stores what it cannot deliver.
//!
//! # Store and forward
//! Every message for the remote with QoS 1/2 gets a sequence number and is kept (in memory and,
//! through [`Writer`], in the `route-buffer-1` table) until the remote's PUBACK (QoS 1) or
//! PUBCOMP (QoS 2); only then is it deleted. Its packet id is derived from the sequence number,
//! so after a reconnect or a hub restart the same message goes out with the same packet id: with
//! the remote's persistent session (clean start 0) that makes a resend (DUP = 1, MQTT 5
//! §4.4) and a PUBREL after PUBREC (§4.3.3) mean what they should. Messages are sent in sequence
//! order, at most `window` in flight; the backlog found at connect is drained at most
//! [`DRAIN_RATE`] messages per second. Above BUFFER_MESSAGES the oldest is dropped and counted.
//!
//! # No loops
//! What comes in from the remote is published into the hub under a pseudo client whose listener
//! is `route:<Name>`; the publish path skips the route a message came in on. Toward an MQTT 5
//! remote, subscriptions use No Local so the remote does not echo our own messages back; an
//! MQTT 3.1.1 remote has no No Local, so messages we sent that our own subscription will bring
//! back are remembered (topic + payload hash) and their echo is dropped.

mod packets;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{self, Conn, ConnError};
use super::config::BridgeConfig;
use super::status::{Connection, RouteStatus};
use super::writer::Writer;
use crate::broker::{Broker, ClientInfo};
use crate::protocol::packet::{
    Disconnect, Packet, Properties, ProtocolVersion, PubAck, Publish, QoS, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};
use crate::storage::{BufferOp, BufferedMessage};
use packets::{echo_expected, echo_key};

/// Backlog drain rate after a reconnect, messages per second (no tidal wave on the remote).
pub const DRAIN_RATE: u64 = 10_000;
/// Messages in flight toward the remote at most (lowered to the remote's Receive Maximum).
pub const WINDOW: usize = 1_000;
/// Status republished at least this often (spec §6: at least every 30 s).
pub const STATUS_EVERY: Duration = Duration::from_secs(30);
/// Reconnect backoff: first wait, and the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Packet ids 1..=PKID_SPAN carry messages; PKID_SUBSCRIBE is the SUBSCRIBE's own.
const PKID_SPAN: u64 = 65_000;
const PKID_SUBSCRIBE: u16 = 65_535;

/// A message from the publish path, already remapped to its remote topic.
#[derive(Debug)]
pub struct Outbound {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

/// One buffered message.
struct Entry {
    msg: BufferedMessage,
    payload: Bytes,
    /// Sent on some connection before: a resend carries DUP = 1.
    sent: bool,
    /// QoS 2: PUBREC received, PUBREL (not the PUBLISH) is what remains to send.
    released: bool,
    /// Sent on the current connection, waiting for its acknowledgement.
    in_flight: bool,
}

fn pkid_of(seq: u64) -> u16 {
    (seq % PKID_SPAN) as u16 + 1
}

/// The route task's state (owned by the task; counters are shared through [`RouteStatus`]).
pub struct Bridge {
    cfg: BridgeConfig,
    status: Arc<RouteStatus>,
    writer: Writer,
    broker: Broker,
    rx: mpsc::Receiver<Outbound>,
    cancel: CancellationToken,
    origin: ClientInfo,
    queue: BTreeMap<u64, Entry>,
    next_seq: u64,
    /// Packet id -> sequence number of messages in flight on this connection.
    in_flight: HashMap<u16, u64>,
    /// Incoming QoS 2 packet ids published into the hub, waiting for PUBREL (§4.3.3 method A).
    incoming_qos2: HashMap<u16, ()>,
    /// 3.1.1 echo suppression: hash of (remote topic, payload) -> echoes expected.
    echoes: HashMap<u64, u32>,
    window: usize,
    /// Sequence numbers up to this one were waiting when the connection came up (drained at
    /// [`DRAIN_RATE`]); `drain_started` and `drained` pace them.
    backlog_end: u64,
    drain_started: Instant,
    drained: u64,
    /// The next sequence number to send on this connection (everything before it was sent on
    /// this connection already, or acknowledged).
    cursor: u64,
    status_due: Instant,
}

impl Bridge {
    pub fn new(
        cfg: BridgeConfig,
        status: Arc<RouteStatus>,
        writer: Writer,
        broker: Broker,
        rx: mpsc::Receiver<Outbound>,
        cancel: CancellationToken,
    ) -> Bridge {
        let origin = ClientInfo {
            client_id: Arc::from(format!("$route/{}", cfg.name)),
            username: None,
            peer: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            listener: Arc::from(super::listener_tag(&cfg.name)),
            protocol: ProtocolVersion::V5,
        };
        Bridge {
            cfg,
            status,
            writer,
            broker,
            rx,
            cancel,
            origin,
            queue: BTreeMap::new(),
            next_seq: 1,
            in_flight: HashMap::new(),
            incoming_qos2: HashMap::new(),
            echoes: HashMap::new(),
            window: WINDOW,
            backlog_end: 0,
            drain_started: Instant::now(),
            drained: 0,
            cursor: 0,
            status_due: Instant::now(),
        }
    }

    /// Runs the route until it is cancelled (removed, replaced or the hub stops). On cancel an
    /// open connection is closed with DISCONNECT.
    pub async fn run(mut self) {
        for (seq, msg) in self.writer.load(&self.cfg.name).await {
            let payload = Bytes::from(msg.payload.clone());
            self.queue.insert(
                seq,
                Entry {
                    msg,
                    payload,
                    sent: false,
                    released: false,
                    in_flight: false,
                },
            );
            self.next_seq = seq + 1;
        }
        self.update_buffered();
        let tls = if self.cfg.remote.use_tls {
            match client::tls_config(&self.cfg.remote) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.status.set_error(e);
                    self.set_connection(Connection::Disconnected);
                    self.idle(None).await;
                    return;
                }
            }
        } else {
            None
        };
        let remote = self.cfg.remote.clone();
        let mut failures: u64 = 0;
        let mut state = Connection::Connecting;
        loop {
            self.set_connection(state);
            let attempt = client::connect(&remote, tls.clone());
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    m = self.rx.recv() => match m {
                        Some(m) => {
                        self.enqueue(m, false);
                    }
                        None => return,
                    },
                    _ = tokio::time::sleep_until(self.status_due) => self.publish_status(),
                    r = &mut attempt => break r,
                }
            };
            match result {
                Ok(conn) => {
                    failures = 0;
                    let ended = self.online(conn).await;
                    for e in self.queue.values_mut() {
                        e.in_flight = false;
                    }
                    self.in_flight.clear();
                    match ended {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(route = %self.cfg.name, error = %e, "bridge connection lost");
                            self.status.set_error(e);
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(route = %self.cfg.name, error = %e, failures, "bridge connect failed");
                    self.status.set_error(e);
                    let retries = self.cfg.remote.retries;
                    if retries > 0 && failures >= retries {
                        self.set_connection(Connection::Disconnected);
                        self.idle(None).await;
                        return;
                    }
                }
            }
            state = Connection::Reconnecting;
            self.set_connection(state);
            let exp = BACKOFF_FIRST.saturating_mul(1 << failures.min(10) as u32);
            let wait = exp
                .min(BACKOFF_MAX)
                .mul_f64(rand::thread_rng().gen_range(0.8..1.2));
            if self.idle(Some(wait)).await {
                return;
            }
        }
    }

    /// Waits `dur` (forever with `None`) while still buffering messages; true when cancelled.
    async fn idle(&mut self, dur: Option<Duration>) -> bool {
        let until = dur.map(|d| Instant::now() + d);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return true,
                m = self.rx.recv() => match m {
                    Some(m) => {
                        self.enqueue(m, false);
                    }
                    None => return true,
                },
                _ = tokio::time::sleep_until(self.status_due) => self.publish_status(),
                _ = sleep_opt(until) => return false,
            }
        }
    }

    fn set_connection(&mut self, c: Connection) {
        self.status.set_connection(c);
        self.publish_status();
    }

    fn publish_status(&mut self) {
        self.update_buffered();
        self.status.publish(Some(&self.broker));
        self.status_due = Instant::now() + STATUS_EVERY;
    }

    fn update_buffered(&self) {
        self.status
            .buffered
            .store(self.queue.len() as u64, Ordering::Relaxed);
    }

    /// Takes one message from the publish path: QoS 0 goes out now or is dropped; QoS 1/2 is
    /// buffered (oldest dropped above BUFFER_MESSAGES).
    fn enqueue(&mut self, m: Outbound, connected: bool) -> Option<Packet> {
        let qos = self.cfg.remote.qos;
        if qos == QoS::AtMostOnce {
            if connected {
                return Some(Packet::Publish(Publish {
                    dup: false,
                    qos,
                    retain: m.retain,
                    topic: Arc::from(m.topic.as_str()),
                    pkid: 0,
                    payload: m.payload,
                    properties: Properties::default(),
                }));
            }
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let cap = self.cfg.remote.buffer_messages;
        if cap == 0 && !connected {
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let msg = BufferedMessage {
            qos: qos as u8,
            retain: m.retain,
            topic: m.topic,
            payload: m.payload.to_vec(),
        };
        self.writer.op(BufferOp::Append {
            route: self.cfg.name.clone(),
            seq,
            msg: msg.clone(),
        });
        self.queue.insert(
            seq,
            Entry {
                msg,
                payload: m.payload,
                sent: false,
                released: false,
                in_flight: false,
            },
        );
        while self.queue.len() > cap.max(1) {
            let Some((old, e)) = self.queue.pop_first() else {
                break;
            };
            if e.in_flight {
                self.in_flight.remove(&pkid_of(old));
            }
            self.writer.op(BufferOp::Remove {
                route: self.cfg.name.clone(),
                seq: old,
            });
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.update_buffered();
        None
    }

    /// One connection's life. `Ok` when the route was cancelled (DISCONNECT sent), `Err` when
    /// the connection failed.
    async fn online(&mut self, mut conn: Conn) -> Result<(), ConnError> {
        self.window = WINDOW.min(usize::from(conn.receive_maximum));
        let v5 = conn.version.is_v5();
        if !self.cfg.inbound.is_empty() {
            let filters = self
                .cfg
                .inbound
                .iter()
                .map(|m| SubscribeFilter {
                    filter: m.filter().to_string(),
                    options: SubscriptionOptions {
                        qos: self.cfg.remote.qos,
                        no_local: v5,
                        retain_as_published: v5,
                        retain_handling: 0,
                    },
                })
                .collect();
            conn.send(&Packet::Subscribe(Subscribe {
                pkid: PKID_SUBSCRIBE,
                filters,
                properties: Properties::default(),
            }))?;
        }
        self.set_connection(Connection::Connected);
        tracing::info!(route = %self.cfg.name, remote = %format!("{}:{}", self.cfg.remote.address, self.cfg.remote.port), "bridge connected");
        self.backlog_end = self.next_seq.saturating_sub(1);
        self.drain_started = Instant::now();
        self.drained = 0;
        self.cursor = 0;
        let keep_alive = Duration::from_secs(u64::from(self.cfg.remote.keep_alive));
        let mut last_sent = Instant::now();
        let mut last_recv = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let throttle = self.pump(&mut conn)?;
            if conn.pending() > 0 {
                conn.flush().await?;
                last_sent = Instant::now();
            }
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    let _ = conn.send(&Packet::Disconnect(Disconnect::default()));
                    let _ = conn.flush().await;
                    return Ok(());
                }
                p = conn.read_packet() => {
                    last_recv = Instant::now();
                    self.on_packet(&mut conn, p?)?;
                }
                m = self.rx.recv() => {
                    let Some(m) = m else {
                        let _ = conn.send(&Packet::Disconnect(Disconnect::default()));
                        let _ = conn.flush().await;
                        return Ok(());
                    };
                    let mut next = Some(m);
                    // Take what else is waiting in one go: one flush for a burst.
                    let mut n = 0;
                    while let Some(m) = next.take() {
                        if let Some(p) = self.enqueue(m, true) {
                            conn.send(&p)?;
                        }
                        n += 1;
                        if n < 256 {
                            next = self.rx.try_recv().ok();
                        }
                    }
                }
                _ = tick.tick() => {
                    if !keep_alive.is_zero() {
                        if last_recv.elapsed() > keep_alive.mul_f64(1.5) {
                            return Err("keep-alive timeout: no packet from the remote".into());
                        }
                        if last_sent.elapsed() >= keep_alive {
                            conn.send(&Packet::PingReq)?;
                        }
                    }
                }
                _ = tokio::time::sleep_until(self.status_due) => self.publish_status(),
                _ = sleep_opt(throttle) => {}
            }
        }
    }

    /// Sends what the window and the drain rate allow, in sequence order: first the resends of
    /// this connection (DUP, or PUBREL for released QoS 2), then new messages. Returns when to
    /// try again if the drain rate held something back.
    fn pump(&mut self, conn: &mut Conn) -> Result<Option<Instant>, ConnError> {
        let Some((&oldest, _)) = self.queue.first_key_value() else {
            return Ok(None);
        };
        let mut wake = None;
        let mut to_send = Vec::new();
        for (&seq, e) in self.queue.range(self.cursor..) {
            if self.in_flight.len() + to_send.len() >= self.window {
                break;
            }
            if e.in_flight {
                continue;
            }
            // A packet id must not be reused while an older message still holds it.
            if seq >= oldest + PKID_SPAN {
                break;
            }
            if seq <= self.backlog_end {
                let allowed = self.drain_started.elapsed().as_secs_f64() * DRAIN_RATE as f64;
                if self.drained as f64 >= allowed.max(1.0) {
                    let due = (self.drained + 1) as f64 / DRAIN_RATE as f64;
                    wake = Some(self.drain_started + Duration::from_secs_f64(due));
                    break;
                }
                self.drained += 1;
            }
            to_send.push(seq);
        }
        if let Some(&last) = to_send.last() {
            self.cursor = last + 1;
        }
        for seq in to_send {
            let Some(e) = self.queue.get_mut(&seq) else {
                continue;
            };
            let pkid = pkid_of(seq);
            let packet = if e.released {
                Packet::PubRel(PubAck::new(pkid))
            } else {
                Packet::Publish(Publish {
                    dup: e.sent,
                    qos: QoS::from_u8(e.msg.qos).unwrap_or(QoS::AtLeastOnce),
                    retain: e.msg.retain,
                    topic: Arc::from(e.msg.topic.as_str()),
                    pkid,
                    payload: e.payload.clone(),
                    properties: Properties::default(),
                })
            };
            if !e.sent && !conn.version.is_v5() && echo_expected(&self.cfg.inbound, &e.msg.topic) {
                *self
                    .echoes
                    .entry(echo_key(&e.msg.topic, &e.payload))
                    .or_default() += 1;
            }
            e.sent = true;
            e.in_flight = true;
            self.in_flight.insert(pkid, seq);
            conn.send(&packet)?;
        }
        Ok(wake)
    }

    /// Removes an acknowledged message from the buffer.
    fn complete(&mut self, pkid: u16, refused: bool) {
        let Some(seq) = self.in_flight.remove(&pkid) else {
            return;
        };
        if self.queue.remove(&seq).is_some() {
            self.writer.op(BufferOp::Remove {
                route: self.cfg.name.clone(),
                seq,
            });
            let counter = if refused {
                &self.status.failed
            } else {
                &self.status.forwarded
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.update_buffered();
        }
    }
}

async fn sleep_opt(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
