//! Shared helpers for the integration tests: an in-process hub on 127.0.0.1:0, rumqttc MQTT
//! 3.1.1 ([`V4`]) and MQTT 5 ([`V5`]) clients whose event loops run in the background, and a
//! [`Raw`] client that speaks bytes through lothub's own codec for what a client library
//! cannot express (malformed packets, alias misuse, Receive Maximum abuse).
//!
//! Every wait is bounded by [`WAIT`] (or a given duration) and panics with a message on
//! timeout, so a broken feature fails fast instead of hanging the suite.
//!
//! Usage from a test file: `mod common; use common::*;`. Stable API for every test file under
//! `tests/`: add helpers, do not change the existing signatures.
#![allow(dead_code)]

pub mod runtime;

use bytes::{Bytes, BytesMut};
use lothub::app::{Hub, HubOptions};
use lothub::broker::{Broker, BrokerSettings};
use lothub::protocol::packet::{
    Connect, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe, SubscribeFilter,
    SubscriptionOptions,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The default bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(5);

/// A hub started in-process on 127.0.0.1 with a free port.
pub struct TestHub {
    pub hub: Hub,
    pub addr: SocketAddr,
}

impl TestHub {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn broker(&self) -> Broker {
        self.hub.broker()
    }

    pub async fn shutdown(self) {
        timeout(Duration::from_secs(10), self.hub.shutdown())
            .await
            .expect("hub shutdown took too long");
    }
}

/// A hub with default settings, `$SYS` publishing off.
pub async fn start_hub() -> TestHub {
    start_hub_with_settings(BrokerSettings::default()).await
}

/// A hub with these settings, `$SYS` publishing off.
pub async fn start_hub_with_settings(settings: BrokerSettings) -> TestHub {
    start_hub_with(HubOptions {
        settings,
        sys_interval: None,
        ..HubOptions::default()
    })
    .await
}

/// A hub with these options; one TCP listener on 127.0.0.1:0 is added when none is given.
pub async fn start_hub_with(mut opts: HubOptions) -> TestHub {
    if opts.tcp_listeners.is_empty() {
        opts.tcp_listeners.push("127.0.0.1:0".parse().unwrap());
    }
    let hub = Hub::start(opts).await.expect("hub starts");
    let addr = hub.local_addrs()[0];
    TestHub { hub, addr }
}

/// Waits for `fut` at most [`WAIT`], panicking with `what` on timeout.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls `cond` every 10 ms until it holds, at most [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// MQTT 3.1.1 through rumqttc

/// What the background event loop of a [`V4`] client reports.
#[derive(Debug)]
pub enum Ev4 {
    In(rumqttc::Packet),
    /// The event loop ended with this error (the connection is gone).
    Closed(String),
}

/// A rumqttc MQTT 3.1.1 client whose event loop runs in a task; incoming packets arrive on
/// `events`. Dropping it aborts the loop, which closes the socket without DISCONNECT.
pub struct V4 {
    pub client: rumqttc::AsyncClient,
    pub events: mpsc::UnboundedReceiver<Ev4>,
    task: JoinHandle<()>,
}

impl Drop for V4 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options for client `id` against `hub`: clean session, keep-alive 30 s.
pub fn v4_options(hub: &TestHub, id: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", hub.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects and waits for CONNACK; returns the client and the CONNACK.
pub async fn v4_connect(opts: rumqttc::MqttOptions) -> (V4, rumqttc::ConnAck) {
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(p)) => {
                    if tx.send(Ev4::In(p)).is_err() {
                        return;
                    }
                }
                Ok(rumqttc::Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = tx.send(Ev4::Closed(e.to_string()));
                    return;
                }
            }
        }
    });
    let mut c = V4 {
        client,
        events: rx,
        task,
    };
    let ack = within("CONNACK (3.1.1)", async {
        loop {
            match c.events.recv().await {
                Some(Ev4::In(rumqttc::Packet::ConnAck(a))) => return a,
                Some(Ev4::Closed(e)) => panic!("connection failed before CONNACK: {e}"),
                Some(_) => {}
                None => panic!("event loop ended before CONNACK"),
            }
        }
    })
    .await;
    (c, ack)
}

impl V4 {
    /// The next incoming packet matching `pick`, skipping others.
    pub async fn next_matching<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&rumqttc::Packet) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                match self.events.recv().await {
                    Some(Ev4::In(p)) => {
                        if let Some(v) = pick(&p) {
                            return v;
                        }
                    }
                    Some(Ev4::Closed(e)) => {
                        panic!("connection closed while waiting for {what}: {e}")
                    }
                    None => panic!("event loop ended while waiting for {what}"),
                }
            }
        })
        .await
    }

    pub async fn next_publish(&mut self) -> rumqttc::Publish {
        self.next_matching("PUBLISH", |p| match p {
            rumqttc::Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    pub async fn suback(&mut self) -> rumqttc::SubAck {
        self.next_matching("SUBACK", |p| match p {
            rumqttc::Packet::SubAck(a) => Some(a.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) -> rumqttc::SubAck {
        self.client.subscribe(filter, qos).await.unwrap();
        self.suback().await
    }

    /// Asserts that no PUBLISH arrives within `d`.
    pub async fn expect_no_publish(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match ev {
                Some(Ev4::In(rumqttc::Packet::Publish(p))) => {
                    panic!("unexpected PUBLISH on {}: {:?}", p.topic, p.payload)
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// Waits until the event loop reports the connection gone; returns its error text.
    pub async fn closed(&mut self) -> String {
        within("the connection to close", async {
            loop {
                match self.events.recv().await {
                    Some(Ev4::Closed(e)) => return e,
                    Some(_) => {}
                    None => return String::from("event loop ended"),
                }
            }
        })
        .await
    }

    /// Sends DISCONNECT and waits for the socket to close.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        self.closed().await;
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 through rumqttc::v5

pub use rumqttc::v5::mqttbytes::v5::Packet as Packet5;

#[derive(Debug)]
pub enum Ev5 {
    /// Boxed: MQTT 5 packets are large and most events are small.
    In(Box<Packet5>),
    Closed(String),
}

/// A rumqttc MQTT 5 client, as [`V4`].
pub struct V5 {
    pub client: rumqttc::v5::AsyncClient,
    pub events: mpsc::UnboundedReceiver<Ev5>,
    task: JoinHandle<()>,
}

impl Drop for V5 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options for MQTT 5 client `id` against `hub`: clean start, keep-alive 30 s.
pub fn v5_options(hub: &TestHub, id: &str) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", hub.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects and waits for CONNACK.
pub async fn v5_connect(
    opts: rumqttc::v5::MqttOptions,
) -> (V5, rumqttc::v5::mqttbytes::v5::ConnAck) {
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(opts, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(p)) => {
                    if tx.send(Ev5::In(Box::new(p))).is_err() {
                        return;
                    }
                }
                Ok(rumqttc::v5::Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = tx.send(Ev5::Closed(format!("{e:?}")));
                    return;
                }
            }
        }
    });
    let mut c = V5 {
        client,
        events: rx,
        task,
    };
    let ack = within("CONNACK (5)", async {
        loop {
            match c.events.recv().await {
                Some(Ev5::In(p)) if matches!(*p, Packet5::ConnAck(_)) => {
                    let Packet5::ConnAck(a) = *p else {
                        unreachable!()
                    };
                    return a;
                }
                Some(Ev5::Closed(e)) => panic!("connection failed before CONNACK: {e}"),
                Some(_) => {}
                None => panic!("event loop ended before CONNACK"),
            }
        }
    })
    .await;
    (c, ack)
}

impl V5 {
    pub async fn next_matching<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Packet5) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                match self.events.recv().await {
                    Some(Ev5::In(p)) => {
                        if let Some(v) = pick(p.as_ref()) {
                            return v;
                        }
                    }
                    Some(Ev5::Closed(e)) => {
                        panic!("connection closed while waiting for {what}: {e}")
                    }
                    None => panic!("event loop ended while waiting for {what}"),
                }
            }
        })
        .await
    }

    pub async fn next_publish(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        self.next_matching("PUBLISH (5)", |p| match p {
            Packet5::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    pub async fn suback(&mut self) -> rumqttc::v5::mqttbytes::v5::SubAck {
        self.next_matching("SUBACK (5)", |p| match p {
            Packet5::SubAck(a) => Some(a.clone()),
            _ => None,
        })
        .await
    }

    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: rumqttc::v5::mqttbytes::QoS,
    ) -> rumqttc::v5::mqttbytes::v5::SubAck {
        self.client.subscribe(filter, qos).await.unwrap();
        self.suback().await
    }

    pub async fn expect_no_publish(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match ev {
                Some(Ev5::In(p)) if matches!(*p, Packet5::Publish(_)) => {
                    panic!("unexpected PUBLISH: {p:?}")
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// Waits until the connection is gone; returns the DISCONNECT the broker sent, if any.
    pub async fn closed(&mut self) -> Option<rumqttc::v5::mqttbytes::v5::Disconnect> {
        within("the connection to close (5)", async {
            let mut disconnect = None;
            loop {
                match self.events.recv().await {
                    Some(Ev5::In(p)) if matches!(*p, Packet5::Disconnect(_)) => {
                        if let Packet5::Disconnect(d) = *p {
                            disconnect = Some(d);
                        }
                    }
                    Some(Ev5::Closed(_)) | None => return disconnect,
                    Some(_) => {}
                }
            }
        })
        .await
    }

    pub async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        self.closed().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Raw bytes through lothub's codec

/// A bare TCP client that writes and reads packets with lothub's own codec.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
}

/// A CONNECT for `id` (clean start, keep-alive 30 s, no properties).
pub fn connect_packet(id: &str, version: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 30,
        client_id: id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }))
}

impl Raw {
    /// Opens a socket without sending anything.
    pub async fn open(hub: &TestHub, version: ProtocolVersion) -> Raw {
        let stream = TcpStream::connect(hub.addr).await.expect("tcp connect");
        Raw {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    /// Opens a socket, sends `connect` and returns the CONNACK.
    pub async fn connect_with(hub: &TestHub, connect: Packet) -> (Raw, Packet) {
        let version = match &connect {
            Packet::Connect(c) => c.protocol,
            _ => panic!("connect_with needs a CONNECT"),
        };
        let mut raw = Raw::open(hub, version).await;
        raw.send(&connect).await;
        let ack = raw.recv().await.expect("CONNACK");
        (raw, ack)
    }

    /// Connects as `id` with a plain CONNECT; panics unless the CONNACK is a success.
    pub async fn connect(hub: &TestHub, id: &str, version: ProtocolVersion) -> Raw {
        let (raw, ack) = Raw::connect_with(hub, connect_packet(id, version)).await;
        match ack {
            Packet::ConnAck(a) if a.reason == 0 => raw,
            other => panic!("expected a successful CONNACK, got {other:?}"),
        }
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        lothub::protocol::encode(packet, self.version, &mut out).expect("encodable test packet");
        self.send_bytes(&out).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // A write error means the broker already closed the socket: the reads will show it.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next packet, or `None` when the broker closed the connection. Panics after [`WAIT`].
    pub async fn recv(&mut self) -> Option<Packet> {
        within("a packet from the broker", async {
            loop {
                match lothub::protocol::decode(&mut self.buf, Some(self.version), usize::MAX) {
                    Ok(Some(p)) => return Some(p),
                    Ok(None) => {}
                    Err(e) => panic!("broker sent bytes our codec refuses: {e}"),
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }

    /// Reads until the broker closes the socket; returns the packets received before that.
    pub async fn until_closed(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        while let Some(p) = self.recv().await {
            got.push(p);
        }
        got
    }
}

// ---------------------------------------------------------------------------------------------
// Packet builders for the raw client

/// A PUBLISH without properties.
pub fn publish_packet(topic: &str, qos: QoS, pkid: u16, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: Arc::from(topic),
        pkid,
        payload: Bytes::from_static(payload),
        properties: Properties::default(),
    }
}

/// A SUBSCRIBE to one filter with default options at `qos`.
pub fn subscribe_packet(pkid: u16, filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid,
        filters: vec![SubscribeFilter {
            filter: filter.to_string(),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
        properties: Properties::default(),
    })
}

/// The CONNECT of [`connect_packet`] with Clean Start / Clean Session set to `clean`.
pub fn connect_opts(id: &str, version: ProtocolVersion, clean: bool) -> Connect {
    match connect_packet(id, version) {
        Packet::Connect(mut c) => {
            c.clean_start = clean;
            *c
        }
        _ => unreachable!("connect_packet builds a CONNECT"),
    }
}

/// Subscribes `raw` to `filter` and asserts the SUBACK grants `qos`.
pub async fn raw_subscribe(raw: &mut Raw, filter: &str, qos: QoS) {
    raw.send(&subscribe_packet(1, filter, qos)).await;
    match raw.recv().await {
        Some(Packet::SubAck(a)) => assert_eq!(a.reasons, vec![qos as u8]),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}
