//! # runtime::routes: LOT ROUTEs running in the live hub (spec §6)
//!
//! Owns the MQTT_BRIDGE routes: one task per deployed route keeps a connection to the remote
//! broker (TCP or TLS, MQTT 3.1.1 or 5, on the project's own codec), forwards this hub's
//! messages out and the remote's in, buffers what it cannot deliver in redb (through
//! `storage::route_buffer`) and publishes its retained `$SYS/Coreflux/Routes/<Name>/status`.
//! Must not touch: authorization, models and actions (`engine`), command parsing, redb itself.
//!
//! # Layout
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Routes`], the cheap-clone manager: deploy, the publish path, shutdown (start here) |
//! | `config.rs` | a deployed route -> [`BridgeConfig`] (ENV / SECRET resolved, mappings by direction) |
//! | `topic_map.rs` | `+` / `#` remapping from one side's topic to the other's |
//! | `bridge.rs` | the route task: connection, store and forward, acks, no loops |
//! | `client.rs` | TCP / TLS connect, CONNECT / CONNACK, packet read and write |
//! | `writer.rs` | the thread that writes every route's buffer in grouped transactions |
//! | `status.rs` | counters, connection state and the status JSON |
//!
//! # Lifecycle (what the runtime wires)
//! `Routes::new(storage)` -> [`Routes::on_deployed`] with the restored snapshot (routes wait) ->
//! [`Routes::attach`] the broker inside the tokio runtime (routes start) -> `on_deployed` on
//! every change (a replaced route's old task says DISCONNECT before the new one connects; a
//! removed route's buffer is deleted) -> [`Routes::on_publish`] from the `on_publish` hook for
//! every accepted PUBLISH -> [`Routes::shutdown`] (buffers kept for the next start).
//!
//! # The publish path
//! [`Routes::on_publish`] runs inline on the broker's async workers: one atomic load when no
//! route is deployed; otherwise a read lock to clone an `Arc`, the outbound filters of each
//! route, and a `try_send` into the route's channel. It never blocks: a full channel drops the
//! message and counts it in the route's `dropped`.

mod bridge;
mod client;
pub mod config;
mod status;
pub mod topic_map;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use thiserror::Error;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::broker::hooks::PublishObservation;
use crate::lot::Definition;
use crate::lot::ast::{DefinitionAst, RouteType};
use crate::storage::{BufferOp, Storage};

pub use bridge::{DRAIN_RATE, STATUS_EVERY, WINDOW};
pub use config::BridgeConfig;
pub use status::{Connection, RouteStatus};
pub use topic_map::TopicMap;

use bridge::{Bridge, Outbound};
use writer::Writer;

/// Messages waiting between the publish path and one route's task before new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 65_536;

/// Why a route cannot run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RouteError {
    #[error("route type {0} is not supported by lothub yet")]
    Unsupported(&'static str),
    #[error(
        "route {0}: lothub runs an MQTT_BRIDGE between this hub (WITH BROKER SELF) and one remote broker; one side must be BROKER SELF"
    )]
    NeedsSelf(String),
    #[error("route {route}: {key} must be {want}")]
    BadValue {
        route: String,
        key: String,
        want: String,
    },
    #[error("environment variable {0} is not set (GET ENV)")]
    MissingEnv(String),
    #[error("secret {0} does not exist (GET SECRET)")]
    MissingSecret(String),
    #[error("{0}")]
    Storage(String),
}

/// The listener name of the pseudo client a route publishes into the hub as: how the publish
/// path recognises a message that came in over that route.
pub fn listener_tag(route: &str) -> String {
    format!("route:{route}")
}

/// Checks that `def` (a ROUTE) can run here: the deploy path calls it before installing, so an
/// unsupported route is refused with a clear error instead of deployed and idle.
pub fn check(def: &Definition, storage: &Storage) -> Result<(), RouteError> {
    match &def.ast {
        DefinitionAst::Route(route) => BridgeConfig::from_route(route, storage).map(|_| ()),
        _ => Ok(()),
    }
}

/// The route manager: a cheap-clone handle (one `Arc`).
#[derive(Clone)]
pub struct Routes {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    writer: Writer,
    /// Set by `attach`, taken back by `shutdown`: the broker's hooks usually hold this manager,
    /// so keeping the broker after shutdown would be a reference cycle (and keep storage open).
    broker: RwLock<Option<(Broker, Handle)>>,
    /// What the publish path reads: the live routes' outbound filters and channels.
    live: RwLock<Arc<Vec<Arc<Live>>>>,
    /// Whether any route is live (the publish path's first, lock-free test).
    any: AtomicBool,
    /// Running tasks by route name; also the deployed definitions waiting for `attach`.
    running: Mutex<HashMap<String, Running>>,
    pending: Mutex<Option<Vec<Arc<Definition>>>>,
}

/// What the publish path needs of one route.
struct Live {
    tag: String,
    outbound: Vec<TopicMap>,
    tx: mpsc::Sender<Outbound>,
    status: Arc<RouteStatus>,
}

struct Running {
    source: String,
    cancel: CancellationToken,
    handle: Option<JoinHandle<()>>,
    live: Option<Arc<Live>>,
    status: Arc<RouteStatus>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("routes", &self.inner.running.lock().len())
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// A manager on `storage` (route buffers, ENV, SECRET). Starts the buffer writer thread.
    pub fn new(storage: Storage) -> Routes {
        Routes {
            inner: Arc::new(Inner {
                writer: Writer::start(storage.clone()),
                storage,
                broker: RwLock::new(None),
                live: RwLock::new(Arc::new(Vec::new())),
                any: AtomicBool::new(false),
                running: Mutex::new(HashMap::new()),
                pending: Mutex::new(None),
            }),
        }
    }

    /// Gives the manager the running broker; must be called inside the tokio runtime (route
    /// tasks are spawned on it). Routes deployed before this start now. Later calls are ignored.
    pub fn attach(&self, broker: Broker) {
        {
            let mut slot = self.inner.broker.write();
            if slot.is_some() {
                return;
            }
            let Ok(handle) = Handle::try_current() else {
                tracing::error!(
                    "Routes::attach called outside the tokio runtime: routes not started"
                );
                return;
            };
            *slot = Some((broker, handle));
        }
        if let Some(defs) = self.inner.pending.lock().take() {
            self.deploy(&defs);
        }
    }

    /// The runtime's new snapshot: starts new routes, replaces changed ones, stops removed ones.
    pub fn on_deployed(&self, snapshot: &crate::runtime::Deployed) {
        let defs: Vec<Arc<Definition>> = snapshot.routes.iter().cloned().collect();
        self.deploy(&defs);
    }

    /// The same as [`Routes::on_deployed`] for a plain list of ROUTE definitions (every route
    /// not in `defs` is stopped and its buffer deleted).
    pub fn deploy(&self, defs: &[Arc<Definition>]) {
        let Some((broker, handle)) = self.inner.broker.read().clone() else {
            *self.inner.pending.lock() = Some(defs.to_vec());
            return;
        };
        let (broker, handle) = (&broker, &handle);
        let mut running = self.inner.running.lock();
        let wanted: HashMap<&str, &Arc<Definition>> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let names: Vec<String> = running.keys().cloned().collect();
        for name in names {
            if !wanted.contains_key(name.as_str())
                && let Some(old) = running.remove(&name)
            {
                self.stop(old, Some(name), handle);
            }
        }
        for def in defs {
            if running
                .get(&def.name)
                .is_some_and(|r| r.source == def.source)
            {
                continue;
            }
            let previous = running.remove(&def.name);
            let run = self.start(def, broker, handle, previous);
            running.insert(def.name.clone(), run);
        }
        let live: Vec<Arc<Live>> = running.values().filter_map(|r| r.live.clone()).collect();
        self.inner.any.store(!live.is_empty(), Ordering::Release);
        *self.inner.live.write() = Arc::new(live);
    }

    /// Starts `def`'s task; it first waits for `previous` (same name) to end, so the old
    /// connection is closed (DISCONNECT) and its buffer writes are done before the new one loads.
    fn start(
        &self,
        def: &Definition,
        broker: &Broker,
        handle: &Handle,
        previous: Option<Running>,
    ) -> Running {
        let route_type = match &def.ast {
            DefinitionAst::Route(r) => r.route_type.value,
            _ => RouteType::MqttBridge,
        };
        let status = Arc::new(RouteStatus::new(&def.name, route_type.as_str()));
        let prev_handle = previous.and_then(|mut p| {
            p.cancel.cancel();
            p.handle.take()
        });
        let config = match &def.ast {
            DefinitionAst::Route(r) => BridgeConfig::from_route(r, &self.inner.storage),
            _ => Err(RouteError::Unsupported("?")),
        };
        let cancel = CancellationToken::new();
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(route = %def.name, error = %e, "route not started");
                status.set_error(e.to_string());
                status.set_connection(Connection::Disconnected);
                status.publish(Some(broker));
                return Running {
                    source: def.source.clone(),
                    cancel,
                    handle: prev_handle,
                    live: None,
                    status,
                };
            }
        };
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let live = Arc::new(Live {
            tag: listener_tag(&def.name),
            outbound: config.outbound.clone(),
            tx,
            status: status.clone(),
        });
        let bridge = Bridge::new(
            config,
            status.clone(),
            self.inner.writer.clone(),
            broker.clone(),
            rx,
            cancel.clone(),
        );
        let task = handle.spawn(async move {
            if let Some(prev) = prev_handle {
                let _ = prev.await;
            }
            bridge.run().await;
        });
        Running {
            source: def.source.clone(),
            cancel,
            handle: Some(task),
            live: Some(live),
            status,
        }
    }

    /// Stops a route; with `forget`, deletes its buffer once the task has ended and clears its
    /// retained status.
    fn stop(&self, mut old: Running, forget: Option<String>, handle: &Handle) {
        old.cancel.cancel();
        let task = old.handle.take();
        let writer = self.inner.writer.clone();
        let broker = self.inner.broker.read().as_ref().map(|(b, _)| b.clone());
        let topic = old.status.topic();
        handle.spawn(async move {
            if let Some(t) = task {
                let _ = t.await;
            }
            if let Some(route) = forget {
                writer.op(BufferOp::Clear { route });
                if let Some(b) = broker {
                    let _ = b.publish_simple(
                        &topic,
                        bytes::Bytes::new(),
                        crate::protocol::packet::QoS::AtMostOnce,
                        true,
                    );
                }
            }
        });
    }

    /// Every accepted PUBLISH (from the runtime's `on_publish` hook). Never blocks.
    pub fn on_publish(&self, obs: &PublishObservation<'_>) {
        if !self.inner.any.load(Ordering::Acquire) {
            return;
        }
        let live = self.inner.live.read().clone();
        for route in live.iter() {
            // A message that came in over this route never goes back out over it.
            if obs.client.is_some_and(|c| *c.listener == *route.tag) {
                continue;
            }
            let Some(topic) = route.outbound.iter().find_map(|m| m.map(obs.topic)) else {
                continue;
            };
            let msg = Outbound {
                topic,
                payload: obs.payload.clone(),
                retain: obs.retain,
            };
            if route.tx.try_send(msg).is_err() {
                route.status.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The status JSON of every deployed route (for `-listRoutes` and tests).
    pub fn statuses(&self) -> Vec<serde_json::Value> {
        let running = self.inner.running.lock();
        let mut out: Vec<_> = running.values().map(|r| r.status.to_json()).collect();
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        out
    }

    /// The live status of route `name`.
    pub fn status(&self, name: &str) -> Option<Arc<RouteStatus>> {
        self.inner
            .running
            .lock()
            .get(name)
            .map(|r| r.status.clone())
    }

    /// Stops every route (connections closed with DISCONNECT), waits for them and for the
    /// buffer writes, then ends the writer thread. Buffers stay for the next start.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.inner.running.lock();
            running
                .drain()
                .filter_map(|(_, mut r)| {
                    r.cancel.cancel();
                    r.handle.take()
                })
                .collect()
        };
        self.inner.any.store(false, Ordering::Release);
        *self.inner.live.write() = Arc::new(Vec::new());
        for t in tasks {
            let _ = t.await;
        }
        self.inner.writer.flush(true).await;
        *self.inner.broker.write() = None;
    }
}
