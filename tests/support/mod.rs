//! Support for the broker-features end-to-end tests (`mqtt5_features`, `limits_and_malformed`,
//! `sys_topics`): a hub started in-process on 127.0.0.1:0 with per-test settings ([`start`]), a
//! raw codec client ([`raw`]) and rumqttc wrappers ([`rum`]).
//!
//! Separate from the lead's `tests/common` (owned by the broker core) so that both can evolve
//! without stepping on each other.
#![allow(dead_code)] // each test binary uses a different subset

pub mod raw;
pub mod rum;

use lothub::app::{ConnectionRate, Hub, HubOptions};
use lothub::broker::BrokerSettings;
use lothub::broker::ratelimit::IpFilter;
use std::net::SocketAddr;
use std::time::Duration;

/// What a test may change before the hub starts.
pub struct Tweaks {
    pub broker: BrokerSettings,
    /// `$SYS/broker/...` publication period (the default 10 s is too slow for tests).
    pub sys_interval: Duration,
    /// Turns the `$SYS` task off (its retained topics would count against `max_retained`).
    pub sys_off: bool,
    pub ip_filter: Option<IpFilter>,
    pub connection_rate: Option<ConnectionRate>,
}

/// A running hub; dropped with the test's runtime.
pub struct TestHub {
    pub addr: SocketAddr,
    pub hub: Hub,
}

/// Starts a hub on 127.0.0.1:0 after applying `tweak`.
pub async fn start(tweak: impl FnOnce(&mut Tweaks)) -> TestHub {
    let mut t = Tweaks {
        broker: BrokerSettings::default(),
        sys_interval: Duration::from_secs(10),
        sys_off: false,
        ip_filter: None,
        connection_rate: None,
    };
    tweak(&mut t);
    let opts = HubOptions {
        settings: t.broker,
        tcp_listeners: vec!["127.0.0.1:0".parse().unwrap()],
        sys_interval: (!t.sys_off).then_some(t.sys_interval),
        ip_filter: t.ip_filter,
        connection_rate: t.connection_rate,
        ..HubOptions::default()
    };
    let hub = tokio::time::timeout(raw::WAIT, Hub::start(opts))
        .await
        .expect("hub start timed out")
        .expect("hub failed to start");
    let addr = hub.local_addrs()[0];
    TestHub { addr, hub }
}
