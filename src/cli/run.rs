//! Starting the hub from a resolved [`Config`]: tracing, data directory, tokio runtime, the app,
//! then waiting for SIGINT/SIGTERM. The one place where config values become the app's options
//! ([`hub_options`]) and where tls/ws/wss listeners are attached to the running hub.
//!
//! Config keys read elsewhere or not yet used by the running hub are listed in
//! [`not_yet_applied`], which logs a warning for each one set, so an operator is never misled.
//! `metrics.bind` starts the Prometheus endpoint ([`crate::metrics`]) next to the listeners.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::app::{ConnectionRate, Hub, HubOptions};
use crate::broker::BrokerSettings;
use crate::broker::ratelimit::IpFilter;
use crate::command::{CLIENT_SYS_TOPICS, Commands};
use crate::config::{Config, ListenerConfig, ListenerKind};
use crate::metrics::{MetricsServer, Sources};
use crate::runtime::{Runtime, RuntimeSettings};
use crate::storage::{RedbStore, Storage};
use crate::transport::accept::{
    self, Handshake, HandshakeLimits, TlsHandshake, WsHandshake, WssHandshake,
};
use crate::transport::reload::{DEFAULT_RELOAD_INTERVAL, ReloadableTls};
use crate::transport::tls::{TlsSettings, build_server_config};
use crate::transport::ws::WsSettings;

/// Runs the hub until SIGINT or SIGTERM; `Ok(())` after a graceful shutdown.
pub fn run_hub(config: Config) -> anyhow::Result<()> {
    init_tracing(&config.log_level);
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lothub")
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
}

/// Logs go to stderr. `RUST_LOG` wins over `log_level` (both take tracing filter syntax).
fn init_tracing(log_level: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(&value).unwrap_or_else(|e| {
            eprintln!("lothub: ignoring RUST_LOG={value:?} ({e}); using log_level {log_level:?}");
            EnvFilter::new(log_level)
        }),
        _ => EnvFilter::new(log_level),
    };
    // A second initialisation (tests calling run_hub twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Maps the config onto the broker's settings; every `[limits]` key lands in one field.
pub fn broker_settings(config: &Config) -> BrokerSettings {
    let l = &config.limits;
    let defaults = BrokerSettings::default();
    let max_packet_size = l.max_packet_size as usize;
    BrokerSettings {
        max_packet_size,
        connect_timeout: l.connect_timeout(),
        // The pre-authentication cap never exceeds the packet limit itself.
        max_connect_packet_size: defaults.max_connect_packet_size.min(max_packet_size),
        max_connections: l.max_connections as usize,
        receive_maximum: l.receive_maximum,
        max_inflight: l.max_inflight,
        max_queued_messages: l.max_queued_messages as usize,
        max_queued_bytes: usize::try_from(l.max_queued_bytes).unwrap_or(usize::MAX),
        max_retained: l.max_retained as usize,
        max_topic_length: usize::from(l.max_topic_length),
        max_topic_levels: usize::from(l.max_topic_levels),
        max_keepalive: l.max_keepalive_secs,
        default_session_expiry: Duration::from_secs(u64::from(l.default_session_expiry_secs)),
        max_session_expiry: Duration::from_secs(u64::from(l.max_session_expiry_secs)),
        topic_alias_maximum: l.topic_alias_maximum,
        max_publish_rate: l.publish_rate,
        max_user_properties: usize::from(l.max_user_properties),
        ..defaults
    }
}

/// The app's options for `config`: settings, plain TCP listeners, `$SYS` interval, admission.
/// tls/ws/wss listeners are attached after start by [`attach_listener`].
pub fn hub_options(config: &Config) -> anyhow::Result<HubOptions> {
    let ip_filter = IpFilter::from_nets(config.network.allow.clone(), config.network.deny.clone());
    Ok(HubOptions {
        settings: broker_settings(config),
        tcp_listeners: config
            .listeners
            .iter()
            .filter(|l| l.kind == ListenerKind::Tcp)
            .map(|l| l.bind)
            .collect(),
        sys_interval: Some(config.sys.interval()),
        ip_filter: Some(ip_filter),
        connection_rate: (config.limits.connection_rate > 0).then(|| ConnectionRate {
            per_window: config.limits.connection_rate,
            window: Duration::from_secs(1),
        }),
        ..HubOptions::default()
    })
}

/// Keys that parse and validate but that the running hub does not act on yet (their subsystems
/// arrive with later issues). Each set one is worth a warning at start.
/// None today: `metrics.bind`, the last one, is served by [`crate::metrics`].
fn not_yet_applied(_config: &Config) -> Vec<&'static str> {
    Vec::new()
}

async fn serve(config: Config) -> anyhow::Result<()> {
    for key in not_yet_applied(&config) {
        tracing::warn!("config key ignored: {key}");
    }
    let (runtime, store) = open_state(&config)?;
    let mut options = HubOptions {
        hooks: runtime.hooks(),
        store: store.clone(),
        ..hub_options(&config)?
    };
    // Clients may publish into `$SYS/` only to the command topics (rules decide who).
    options.settings.client_sys_publish_topics =
        CLIENT_SYS_TOPICS.iter().map(|t| t.to_string()).collect();
    let mut hub = Hub::start(options).await.context("cannot start the hub")?;
    runtime.attach(hub.broker());
    runtime.start();
    Commands::start(&runtime);
    let mut listeners: Vec<String> = hub
        .local_addrs()
        .iter()
        .map(|addr| format!("tcp:{addr}"))
        .collect();
    for listener in config
        .listeners
        .iter()
        .filter(|l| l.kind != ListenerKind::Tcp)
    {
        let addr = attach_listener(&mut hub, listener, &config, &runtime).await?;
        listeners.push(format!("{}:{addr}", listener.kind));
    }
    if let Some(bind) = config.metrics.bind {
        let sources = Sources::new(hub.broker())
            .with_runtime(runtime.clone())
            .with_store(store);
        let server = MetricsServer::bind(bind, sources).await?;
        listeners.push(format!("metrics:http://{}/metrics", server.local_addr()?));
        let shutdown = hub.broker().shutdown_token();
        hub.spawn(server.serve(shutdown));
    }
    tracing::info!(
        listeners = %listeners.join(", "),
        data_dir = %config.data_dir.display(),
        "lothub {} running",
        env!("CARGO_PKG_VERSION")
    );
    let signal = wait_for_signal().await?;
    tracing::info!(signal, "shutting down");
    runtime.shutdown().await;
    hub.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the data directory (the broker's store and the configuration state) and the LOT
/// runtime: on first start root and the seed rules are created; stored definitions are
/// redeployed, then the `lot.files` of the config are deployed in order (an error stops the start).
/// Runs before any listener accepts a client.
fn open_state(config: &Config) -> anyhow::Result<(Runtime, Arc<RedbStore>)> {
    let storage = Storage::open(&config.data_dir).with_context(|| {
        format!(
            "cannot open the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = RedbStore::new(storage.clone()).context("cannot start the storage writer")?;
    let settings = RuntimeSettings {
        allow_anonymous: config.auth.allow_anonymous,
        root_password: config.auth.root_password.clone(),
    };
    let runtime = Runtime::new(storage, settings).context("cannot start the LOT runtime")?;
    for file in &config.lot.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the LOT file {}", file.display()))?;
        match runtime.deploy(&text) {
            Ok(items) => {
                tracing::info!(file = %file.display(), definitions = items.len(), "LOT file deployed")
            }
            Err(crate::runtime::DeployError::Compile(errors)) => {
                for e in &errors {
                    tracing::error!(file = %file.display(), "{e}");
                }
                anyhow::bail!("the LOT file {} does not compile", file.display());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot deploy {}", file.display())),
        }
    }
    Ok((runtime, Arc::new(store)))
}

/// Binds a tls, ws or wss listener and runs its accept loop on the hub. Returns the bound
/// address. Certificate files are read here, so a bad one stops the start.
async fn attach_listener(
    hub: &mut Hub,
    listener: &ListenerConfig,
    config: &Config,
    runtime: &Runtime,
) -> anyhow::Result<SocketAddr> {
    let socket = TcpListener::bind(listener.bind)
        .await
        .with_context(|| format!("cannot listen on {} ({})", listener.bind, listener.kind))?;
    let addr = socket.local_addr().context("listener address")?;
    if listener.kind.is_tls() && listener.use_identity_as_username {
        // Clients of this listener log in with their certificate's CN: no password.
        runtime.trust_tls_identity(accept::listener_name(listener.kind.as_str(), &socket));
    }
    let limits = HandshakeLimits {
        timeout: config.limits.connect_timeout(),
        ..HandshakeLimits::default()
    };
    let ws = || {
        Arc::new(WsSettings {
            path: listener.ws_path().to_string(),
            // One WebSocket message carries at least one whole MQTT packet.
            max_message_bytes: WsSettings::default()
                .max_message_bytes
                .max(config.limits.max_packet_size as usize + 1024),
        })
    };
    match listener.kind {
        ListenerKind::Tcp => anyhow::bail!("tcp listeners are bound by the hub itself"),
        ListenerKind::Ws => spawn_accept(hub, socket, WsHandshake { ws: ws() }, limits),
        ListenerKind::Tls => {
            let tls = load_tls(hub, listener)?;
            spawn_accept(hub, socket, TlsHandshake { tls }, limits);
        }
        ListenerKind::Wss => {
            let tls = load_tls(hub, listener)?;
            spawn_accept(hub, socket, WssHandshake { tls, ws: ws() }, limits);
        }
    }
    Ok(addr)
}

/// The transport's view of a tls/wss listener entry.
fn tls_settings(listener: &ListenerConfig) -> Option<TlsSettings> {
    Some(TlsSettings {
        cert: listener.cert.clone()?,
        key: listener.key.clone()?,
        client_ca: listener.client_ca.clone(),
        require_client_cert: listener.require_client_cert,
        use_identity_as_username: listener.use_identity_as_username,
    })
}

/// Builds every tls/wss listener's TLS configuration once, so that an unusable certificate or
/// key is reported as a configuration error (naming the listener) before anything starts.
pub fn check_tls(config: &Config) -> Result<(), String> {
    for (i, listener) in config.listeners.iter().enumerate() {
        if !listener.kind.is_tls() {
            continue;
        }
        let settings = tls_settings(listener).ok_or_else(|| {
            format!(
                "listeners[{i}]: a {} listener needs cert and key",
                listener.kind
            )
        })?;
        build_server_config(&settings).map_err(|e| format!("listeners[{i}]: {e}"))?;
    }
    Ok(())
}

/// Loads the listener's certificates and starts the watcher that reloads them when they change.
fn load_tls(hub: &mut Hub, listener: &ListenerConfig) -> anyhow::Result<ReloadableTls> {
    let Some(settings) = tls_settings(listener) else {
        anyhow::bail!(
            "{} listener on {} without cert and key",
            listener.kind,
            listener.bind
        );
    };
    let tls = ReloadableTls::load(settings)
        .with_context(|| format!("{} listener on {}", listener.kind, listener.bind))?;
    let watcher = tls.spawn_watcher(DEFAULT_RELOAD_INTERVAL, hub.broker().shutdown_token());
    hub.spawn(async move {
        let _ = watcher.await;
    });
    Ok(tls)
}

/// Runs the transport's accept loop for one listener on the hub; admission (IP lists, per-IP
/// rate) is shared with the TCP listeners and checked before the handshake.
fn spawn_accept<H: Handshake>(
    hub: &mut Hub,
    socket: TcpListener,
    handshake: H,
    limits: HandshakeLimits,
) {
    let (broker, admission) = (hub.broker(), hub.admission());
    hub.spawn(accept::serve(socket, handshake, limits, broker, admission));
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and returns its name.
async fn wait_for_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT").context("cannot listen for SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")?;
        Ok("Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text).unwrap()
    }

    #[test]
    fn every_limit_reaches_the_broker_settings() {
        let c = config(
            "[limits]\nmax_connections = 7\nmax_packet_size = 2048\nreceive_maximum = 9\n\
             max_inflight = 11\nmax_queued_messages = 13\nmax_queued_bytes = 17\n\
             max_retained = 19\nconnect_timeout_secs = 3\nmax_keepalive_secs = 23\n\
             max_topic_length = 29\nmax_topic_levels = 31\npublish_rate = 37\n\
             max_user_properties = 41\ndefault_session_expiry_secs = 43\n\
             max_session_expiry_secs = 47\ntopic_alias_maximum = 53\n",
        );
        let s = broker_settings(&c);
        assert_eq!(s.max_connections, 7);
        assert_eq!(s.max_packet_size, 2048);
        assert_eq!(
            s.max_connect_packet_size, 2048,
            "pre-auth cap within the packet limit"
        );
        assert_eq!((s.receive_maximum, s.max_inflight), (9, 11));
        assert_eq!((s.max_queued_messages, s.max_queued_bytes), (13, 17));
        assert_eq!(s.max_retained, 19);
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert_eq!(s.max_keepalive, 23);
        assert_eq!((s.max_topic_length, s.max_topic_levels), (29, 31));
        assert_eq!(s.max_publish_rate, 37);
        assert_eq!(s.max_user_properties, 41);
        assert_eq!(s.default_session_expiry, Duration::from_secs(43));
        assert_eq!(s.max_session_expiry, Duration::from_secs(47));
        assert_eq!(s.topic_alias_maximum, 53);
    }

    #[test]
    fn default_config_matches_broker_defaults_where_both_define_one() {
        let s = broker_settings(&Config::default());
        let d = BrokerSettings::default();
        assert_eq!(s.max_packet_size, d.max_packet_size);
        assert_eq!(s.connect_timeout, d.connect_timeout);
        assert_eq!(s.max_connections, d.max_connections);
        assert_eq!(
            (s.receive_maximum, s.max_inflight),
            (d.receive_maximum, d.max_inflight)
        );
        assert_eq!(s.max_queued_messages, d.max_queued_messages);
        assert_eq!(s.max_queued_bytes, d.max_queued_bytes);
        assert_eq!(s.max_retained, d.max_retained);
        assert_eq!(s.max_topic_levels, d.max_topic_levels);
        assert_eq!(s.default_session_expiry, d.default_session_expiry);
        assert_eq!(s.max_session_expiry, d.max_session_expiry);
    }

    #[test]
    fn hub_options_listeners_sys_and_admission() {
        let c = config(
            "[[listeners]]\nkind = \"tcp\"\nbind = \"127.0.0.1:1\"\n\
             [[listeners]]\nkind = \"ws\"\nbind = \"127.0.0.1:2\"\n\
             [sys]\ninterval_secs = 4\n[limits]\nconnection_rate = 5\n\
             [network]\ndeny = [\"10.0.0.0/8\"]\n",
        );
        let o = hub_options(&c).unwrap();
        assert_eq!(o.tcp_listeners, vec!["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(o.sys_interval, Some(Duration::from_secs(4)));
        let rate = o.connection_rate.unwrap();
        assert_eq!((rate.per_window, rate.window), (5, Duration::from_secs(1)));
        let filter = o.ip_filter.unwrap();
        assert!(!filter.allows("10.1.1.1".parse().unwrap()));
        assert!(filter.allows("192.168.1.1".parse().unwrap()));
        assert!(
            hub_options(&Config::default())
                .unwrap()
                .connection_rate
                .is_none()
        );
    }

    #[test]
    fn metrics_bind_is_applied_not_warned_about() {
        assert!(not_yet_applied(&Config::default()).is_empty());
        let c = config("[metrics]\nbind = \"127.0.0.1:9000\"\n");
        assert!(not_yet_applied(&c).is_empty());
    }
}
