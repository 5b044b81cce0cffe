//! # app: wiring a running hub together
//!
//! Owns the start and stop order: build the [`Broker`] from [`HubOptions`], load persisted state
//! *before* any listener accepts a connection, bind every listener, start the `$SYS` task; on
//! shutdown, stop accepting, let the connections say goodbye (DISCONNECT 0x8B, wills), flush the
//! store. Must not know protocol details or config parsing: the CLI maps the config onto
//! [`HubOptions`]. Start reading at [`Hub::start`].

use crate::broker::ratelimit::{ConnectionRateLimiter, IpFilter};
use crate::broker::{AllowAll, Broker, BrokerError, BrokerSettings, Hooks, NoopStore, Store};
use crate::protocol::packet::QoS;
use crate::transport::tcp::{Admission, serve_tcp};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Failures to start the hub.
#[derive(Debug, Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the stored state: {0}")]
    Load(#[from] BrokerError),
}

/// Per-IP connection rate limit: `per_window` new connections per `window` and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRate {
    pub per_window: u32,
    pub window: Duration,
}

/// Everything [`Hub::start`] needs. `Default`: default settings, no listener, allow-all hooks,
/// no persistence, `$SYS` every 10 s.
#[derive(Clone)]
pub struct HubOptions {
    pub settings: BrokerSettings,
    /// Plain TCP listeners to bind (`127.0.0.1:0` picks a free port; see [`Hub::local_addrs`]).
    pub tcp_listeners: Vec<SocketAddr>,
    pub hooks: Arc<dyn Hooks>,
    pub store: Arc<dyn Store>,
    /// How often `$SYS/broker/...` is published; `None` turns it off.
    pub sys_interval: Option<Duration>,
    /// IP allow/deny lists applied by every listener.
    pub ip_filter: Option<IpFilter>,
    /// Per-IP connection rate, `None` for unlimited.
    pub connection_rate: Option<ConnectionRate>,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            settings: BrokerSettings::default(),
            tcp_listeners: Vec::new(),
            hooks: Arc::new(AllowAll),
            store: Arc::new(NoopStore),
            sys_interval: Some(Duration::from_secs(10)),
            ip_filter: None,
            connection_rate: None,
        }
    }
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("settings", &self.settings)
            .field("tcp_listeners", &self.tcp_listeners)
            .field("sys_interval", &self.sys_interval)
            .finish_non_exhaustive()
    }
}

/// A running hub: the broker, its listeners and background tasks.
pub struct Hub {
    broker: Broker,
    addrs: Vec<SocketAddr>,
    admission: Arc<Admission>,
    tasks: Vec<JoinHandle<()>>,
}

impl Hub {
    /// Builds the broker, loads the store, binds every listener and starts the `$SYS` task.
    pub async fn start(opts: HubOptions) -> Result<Hub, AppError> {
        let broker = Broker::new(opts.settings, opts.hooks, opts.store);
        broker.load_from_store()?;
        let admission = Arc::new(Admission {
            filter: opts.ip_filter.filter(|f| !f.is_open()),
            rate: opts.connection_rate.map(|r| {
                parking_lot::Mutex::new(ConnectionRateLimiter::new(r.per_window, r.window, 100_000))
            }),
        });
        let mut listeners = Vec::new();
        for addr in opts.tcp_listeners {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| AppError::Bind { addr, source })?;
            listeners.push(listener);
        }
        let mut hub = Hub {
            broker: broker.clone(),
            addrs: Vec::new(),
            admission: admission.clone(),
            tasks: Vec::new(),
        };
        for listener in listeners {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "listening (tcp)");
                hub.addrs.push(addr);
            }
            hub.spawn(serve_tcp(listener, broker.clone(), admission.clone()));
        }
        if let Some(every) = opts.sys_interval {
            hub.spawn(sys_task(broker.clone(), every));
        }
        Ok(hub)
    }

    /// The bound address of every TCP listener, in the order given.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// A handle on the broker (publish from the hub, serve other transports, stats).
    pub fn broker(&self) -> Broker {
        self.broker.clone()
    }

    /// The admission rules of the TCP listeners, for other listener kinds to share.
    pub fn admission(&self) -> Arc<Admission> {
        self.admission.clone()
    }

    /// Runs `task` (e.g. a TLS or WebSocket accept loop) for the life of the hub. It must end
    /// when [`Broker::shutdown_token`] is cancelled; [`Hub::shutdown`] waits for it.
    pub fn spawn<F>(&mut self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task));
    }

    /// Graceful shutdown: stop accepting, DISCONNECT 0x8B to MQTT 5 clients, wills, store flush.
    pub async fn shutdown(self) {
        if let Err(e) = self.broker.shutdown().await {
            tracing::error!(error = %e, "store flush failed during shutdown");
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Publishes the Mosquitto-style `$SYS/broker/...` statistics (retained) every `every`.
async fn sys_task(broker: Broker, every: Duration) {
    let shutdown = broker.shutdown_token();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        broker.refresh_stats();
        for (topic, payload) in broker.stats().render() {
            let _ = broker.publish_simple(topic, payload, QoS::AtMostOnce, true);
        }
    }
}
