//! Helpers for the route tests: an edge hub whose hooks feed a [`Routes`] manager, a cloud hub
//! (or any broker on a port), and a [`Tap`] that records every PUBLISH a hub accepts, so tests
//! can assert on what arrived without racing a subscriber against the bridge.
#![allow(dead_code)]

use lothub::app::{Hub, HubOptions};
use lothub::broker::hooks::PublishObservation;
use lothub::broker::{Broker, Hooks};
use lothub::lot::{self, Definition, KnownNames};
use lothub::runtime::routes::Routes;
use lothub::storage::Storage;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One accepted PUBLISH as a hub saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub topic: String,
    pub payload: String,
    /// The publisher's listener name (`route:<Name>` for a route's publishes), `None` for the
    /// hub's own.
    pub listener: Option<String>,
}

/// Records every PUBLISH and hands it to the routes (when given).
#[derive(Default)]
pub struct Tap {
    pub routes: Option<Routes>,
    pub seen: Mutex<Vec<Seen>>,
}

impl Hooks for Tap {
    fn on_publish(&self, obs: &PublishObservation<'_>) {
        self.seen.lock().push(Seen {
            topic: obs.topic.to_string(),
            payload: String::from_utf8_lossy(obs.payload).into_owned(),
            listener: obs.client.map(|c| c.listener.to_string()),
        });
        if let Some(r) = &self.routes {
            r.on_publish(obs);
        }
    }
}

impl Tap {
    /// Payloads seen on `topic`, in order.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.topic == topic)
            .map(|s| s.payload.clone())
            .collect()
    }

    pub fn count(&self, topic: &str) -> usize {
        self.seen.lock().iter().filter(|s| s.topic == topic).count()
    }

    /// Waits until `cond` holds on the recorded list (at most `max`), panicking with `what`.
    pub async fn wait_for(&self, what: &str, max: Duration, cond: impl Fn(&[Seen]) -> bool) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            if cond(&self.seen.lock()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let n = self.seen.lock().len();
                panic!("timed out waiting for {what} ({n} publishes seen)");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A hub on `addr` (`127.0.0.1:0` for a free port) whose hooks are `tap`.
pub async fn hub_on(addr: SocketAddr, tap: Arc<Tap>) -> Hub {
    let mut last = None;
    // Rebinding the port of a hub that just stopped may need a moment.
    for _ in 0..50 {
        match Hub::start(HubOptions {
            tcp_listeners: vec![addr],
            hooks: tap.clone(),
            sys_interval: None,
            ..HubOptions::default()
        })
        .await
        {
            Ok(hub) => return hub,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot start a hub on {addr}: {last:?}");
}

/// A cloud hub on a free port (or `port`).
pub async fn cloud(port: u16) -> (Hub, Arc<Tap>) {
    let tap = Arc::new(Tap::default());
    let hub = hub_on(SocketAddr::from(([127, 0, 0, 1], port)), tap.clone()).await;
    (hub, tap)
}

/// An edge hub with a route manager on `storage`, running `lot_text`'s routes.
pub struct Edge {
    pub hub: Hub,
    pub tap: Arc<Tap>,
    pub routes: Routes,
}

impl Edge {
    pub async fn start(storage: Storage, lot_text: &str) -> Edge {
        let routes = Routes::new(storage);
        let tap = Arc::new(Tap {
            routes: Some(routes.clone()),
            seen: Mutex::new(Vec::new()),
        });
        let hub = hub_on("127.0.0.1:0".parse().unwrap(), tap.clone()).await;
        routes.attach(hub.broker());
        routes.deploy(&compile(lot_text));
        Edge { hub, tap, routes }
    }

    pub fn broker(&self) -> Broker {
        self.hub.broker()
    }

    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(15), async {
            self.routes.shutdown().await;
            self.hub.shutdown().await;
        })
        .await
        .expect("edge shutdown took too long");
    }

    /// Waits until route `name` reports `connection`.
    pub async fn wait_connection(&self, name: &str, connection: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let st = self.routes.status(name).expect("route deployed").to_json();
            if st["connection"] == connection {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "route {name} never reached {connection}: {st}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Compiles LOT text into definitions (panics on a compile error).
pub fn compile(text: &str) -> Vec<Arc<Definition>> {
    lot::compile(text, None, &KnownNames::default())
        .unwrap_or_else(|e| panic!("LOT does not compile: {e:?}"))
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// An MQTT_BRIDGE route from this hub to 127.0.0.1:`port` with the given mappings
/// (`(source, destination, direction)`).
pub fn bridge_text(name: &str, port: u16, version: u8, mappings: &[(&str, &str, &str)]) -> String {
    let mut t = format!(
        "DEFINE ROUTE {name} WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"127.0.0.1\"\n        WITH BROKER_PORT '{port}'\n        WITH CLIENT_ID \"edge-{name}\"\n        WITH PROTOCOL_VERSION {version}\n        WITH KEEP_ALIVE 30\n        WITH QOS 1\n"
    );
    for (i, (src, dst, dir)) in mappings.iter().enumerate() {
        t.push_str(&format!(
            "    ADD MAPPING m{i}\n        WITH SOURCE_TOPIC \"{src}\"\n        WITH DESTINATION_TOPIC \"{dst}\"\n        WITH DIRECTION \"{dir}\"\n"
        ));
    }
    t
}

/// A Mosquitto broker run as a child process on 127.0.0.1:`port`, with persistence in `dir`
/// (so a graceful stop and start keeps sessions and queued messages, like a real cloud).
pub struct Mosquitto {
    child: std::process::Child,
    pub port: u16,
}

/// The mosquitto binary, if installed.
pub fn mosquitto_binary() -> Option<std::path::PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Mosquitto {
    /// Starts mosquitto and waits until it accepts connections.
    pub async fn start(bin: &std::path::Path, port: u16, dir: &std::path::Path) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\nmax_queued_messages 200000\nlog_dest none\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Mosquitto { child, port }
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait for the exit.
    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message a [`Collector`] received: topic, payload, arrival time.
pub type Received = (String, Vec<u8>, std::time::Instant);

/// A subscriber (rumqttc, MQTT 3.1.1) that records what it receives with the arrival time, and
/// keeps reconnecting (persistent session) across a broker restart.
pub struct Collector {
    pub got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Connects as `id` with a persistent session and subscribes to `filter` at `qos`; returns
    /// once the SUBACK arrived.
    pub async fn start(port: u16, id: &str, filter: &str, qos: rumqttc::QoS) -> Collector {
        let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_clean_session(false);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(1000);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 1000);
        client.subscribe(filter, qos).await.unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let (subacked_tx, subacked_rx) = tokio::sync::oneshot::channel();
        let mut subacked_tx = Some(subacked_tx);
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        sink.lock().push((
                            p.topic.clone(),
                            p.payload.to_vec(),
                            std::time::Instant::now(),
                        ));
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(tx) = subacked_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subacked_rx)
            .await
            .expect("SUBACK from the collector's broker")
            .unwrap();
        Collector { got, task }
    }

    /// Payloads received on `topic`, in order.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        self.got
            .lock()
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, p, _)| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.got.lock().len()
    }

    /// Waits until at least `n` messages arrived (at most `max`).
    pub async fn wait_len(&self, n: usize, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "collector got {} of {n} messages",
                self.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
