//! The Prometheus text exposition format (version 0.0.4) of the hub's counters: pure, no I/O,
//! so the exact output is unit-tested here. The server in `mod.rs` gathers the inputs and calls
//! [`render`].
//!
//! Broker values come from [`Stats::render`] (the same numbers `$SYS/broker/...` publishes), so
//! the two views can never disagree; [`BROKER`] maps each `$SYS` topic to its metric name.

use std::fmt::Write as _;

use crate::broker::sys::{Stats, version_string};
use crate::runtime::engine::EngineStats;
use crate::storage::WriterStats;

/// A metric's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (until the hub restarts).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// `$SYS` topic -> metric name, type, help. `clients_total` keeps Mosquitto's meaning
/// (connected plus offline persistent sessions) and can go down when sessions expire, hence a
/// gauge despite its name.
pub const BROKER: [(&str, &str, Kind, &str); 13] = [
    (
        "$SYS/broker/clients/connected",
        "lothub_clients_connected",
        Kind::Gauge,
        "Clients connected now.",
    ),
    (
        "$SYS/broker/clients/disconnected",
        "lothub_clients_disconnected",
        Kind::Gauge,
        "Persistent sessions whose client is offline.",
    ),
    (
        "$SYS/broker/clients/maximum",
        "lothub_clients_maximum",
        Kind::Gauge,
        "Most clients connected at once since start.",
    ),
    (
        "$SYS/broker/clients/total",
        "lothub_clients_total",
        Kind::Gauge,
        "Clients the hub knows: connected plus offline persistent sessions.",
    ),
    (
        "$SYS/broker/messages/received",
        "lothub_messages_received_total",
        Kind::Counter,
        "MQTT packets received, of any type.",
    ),
    (
        "$SYS/broker/messages/sent",
        "lothub_messages_sent_total",
        Kind::Counter,
        "MQTT packets sent, of any type.",
    ),
    (
        "$SYS/broker/messages/publish/received",
        "lothub_publish_received_total",
        Kind::Counter,
        "PUBLISH packets received from clients.",
    ),
    (
        "$SYS/broker/messages/publish/sent",
        "lothub_publish_sent_total",
        Kind::Counter,
        "PUBLISH packets sent to clients.",
    ),
    (
        "$SYS/broker/messages/publish/dropped",
        "lothub_publish_dropped_total",
        Kind::Counter,
        "PUBLISH deliveries dropped (full queues, limits).",
    ),
    (
        "$SYS/broker/messages/retained/count",
        "lothub_retained_messages",
        Kind::Gauge,
        "Retained messages held.",
    ),
    (
        "$SYS/broker/subscriptions/count",
        "lothub_subscriptions",
        Kind::Gauge,
        "Subscriptions held (connected and offline sessions).",
    ),
    (
        "$SYS/broker/load/bytes/received",
        "lothub_bytes_received_total",
        Kind::Counter,
        "Bytes received from clients.",
    ),
    (
        "$SYS/broker/load/bytes/sent",
        "lothub_bytes_sent_total",
        Kind::Counter,
        "Bytes sent to clients.",
    ),
];

/// Counters of one route (the numbers of its `$SYS/Coreflux/Routes/<Name>/status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteCounters {
    pub name: String,
    pub forwarded: u64,
    pub buffered: u64,
    pub dropped: u64,
    pub failed: u64,
}

/// What the hub offers beyond the broker's [`Stats`]; `None`/empty parts are left out.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Open client connections, CONNECT pending included.
    pub connections: Option<u64>,
    /// Sessions known (connected and offline persistent ones).
    pub sessions: Option<u64>,
    pub engine: Option<EngineStats>,
    pub store: Option<WriterStats>,
    pub routes: Vec<RouteCounters>,
}

/// The whole `/metrics` body: every family with `# HELP` and `# TYPE`, one `name value` (or
/// `name{label="..."} value`) line per sample, `\n` line ends.
pub fn render(stats: &Stats, extra: &Extra) -> String {
    let mut out = Out(String::with_capacity(4096));
    let broker = stats.render();
    for (topic, name, kind, help) in BROKER {
        // Every topic is in `Stats::render`; the unit tests check that none is missing.
        if let Some((_, value)) = broker.iter().find(|(t, _)| *t == topic) {
            let value = value.parse().unwrap_or(0);
            out.one(name, kind, help, value);
        }
    }
    out.one(
        "lothub_uptime_seconds",
        Kind::Gauge,
        "Seconds since the hub started.",
        stats.uptime_secs(),
    );
    out.family(
        "lothub_build_info",
        Kind::Gauge,
        "Always 1; the version is in the label.",
        &[(label("version", &version_string()), 1)],
    );
    if let Some(n) = extra.connections {
        out.one(
            "lothub_connections_open",
            Kind::Gauge,
            "Open client connections, CONNECT pending included.",
            n,
        );
    }
    if let Some(n) = extra.sessions {
        out.one(
            "lothub_sessions",
            Kind::Gauge,
            "Sessions known: connected and offline persistent ones.",
            n,
        );
    }
    if let Some(e) = extra.engine {
        engine(&mut out, e);
    }
    if let Some(s) = extra.store {
        store(&mut out, s);
    }
    routes(&mut out, &extra.routes);
    out.0
}

fn engine(out: &mut Out, e: EngineStats) {
    out.one(
        "lothub_lot_jobs_dropped_total",
        Kind::Counter,
        "LOT jobs (rule, model, action runs) dropped because the queue was full.",
        e.dropped,
    );
    out.one(
        "lothub_lot_recorded_topics",
        Kind::Gauge,
        "Topics in the LOT last-value store.",
        e.recorded_topics as u64,
    );
    out.one(
        "lothub_lot_unrecorded_topics_total",
        Kind::Counter,
        "New topics the LOT last-value store refused because it was full.",
        e.unrecorded_topics,
    );
    out.one(
        "lothub_lot_timers",
        Kind::Gauge,
        "Scheduled LOT actions with a live timer.",
        e.timers as u64,
    );
}

fn store(out: &mut Out, s: WriterStats) {
    let rows: [(&str, Kind, &str, u64); 6] = [
        (
            "lothub_store_events_total",
            Kind::Counter,
            "Events accepted by the storage writer.",
            s.events,
        ),
        (
            "lothub_store_events_durable_total",
            Kind::Counter,
            "Events the storage writer made durable.",
            s.durable,
        ),
        (
            "lothub_store_events_waiting",
            Kind::Gauge,
            "Events queued for the storage writer.",
            s.waiting,
        ),
        (
            "lothub_store_events_dropped_total",
            Kind::Counter,
            "Events dropped because the storage queue was full.",
            s.dropped,
        ),
        (
            "lothub_store_commits_total",
            Kind::Counter,
            "Write transactions committed by the storage writer.",
            s.commits,
        ),
        (
            "lothub_store_commits_failed_total",
            Kind::Counter,
            "Write transactions that failed (their events are lost).",
            s.failed_commits,
        ),
    ];
    for (name, kind, help, value) in rows {
        out.one(name, kind, help, value);
    }
}

fn routes(out: &mut Out, routes: &[RouteCounters]) {
    if routes.is_empty() {
        return;
    }
    type Pick = fn(&RouteCounters) -> u64;
    let families: [(&str, Kind, &str, Pick); 4] = [
        (
            "lothub_route_forwarded_total",
            Kind::Counter,
            "Messages a route delivered.",
            |r| r.forwarded,
        ),
        (
            "lothub_route_buffered",
            Kind::Gauge,
            "Messages waiting in a route's store-and-forward buffer.",
            |r| r.buffered,
        ),
        (
            "lothub_route_dropped_total",
            Kind::Counter,
            "Messages a route threw away.",
            |r| r.dropped,
        ),
        (
            "lothub_route_failed_total",
            Kind::Counter,
            "Messages the remote of a route refused.",
            |r| r.failed,
        ),
    ];
    for (name, kind, help, pick) in families {
        let samples: Vec<(String, u64)> = routes
            .iter()
            .map(|r| (label("route", &r.name), pick(r)))
            .collect();
        out.family(name, kind, help, &samples);
    }
}

/// `{key="value"}` with the format's escapes (backslash, double quote, line feed).
fn label(key: &str, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    format!("{{{key}=\"{escaped}\"}}")
}

struct Out(String);

impl Out {
    fn one(&mut self, name: &str, kind: Kind, help: &str, value: u64) {
        self.family(name, kind, help, &[(String::new(), value)]);
    }

    /// Help texts are constants without backslash or line feed, so they need no escaping.
    fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[(String, u64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {}", kind.as_str());
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// Checks the exposition format line by line and returns sample -> value.
    fn parse(text: &str) -> HashMap<String, u64> {
        assert!(text.ends_with('\n'), "body ends with a line feed");
        let mut helped = HashSet::new();
        let mut typed = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(!help.is_empty(), "{line}");
                assert!(
                    helped.insert(name.to_string()),
                    "one HELP per family: {line}"
                );
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(kind == "counter" || kind == "gauge", "{line}");
                assert!(helped.contains(name), "HELP before TYPE: {line}");
                assert!(typed.insert(name.to_string(), kind).is_none(), "{line}");
            } else {
                let (series, value) = line.rsplit_once(' ').expect("sample is `name value`");
                let name = series.split('{').next().unwrap();
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                        && !name.starts_with(|c: char| c.is_ascii_digit()),
                    "metric name: {line}"
                );
                if series.contains('{') {
                    assert!(series.ends_with("\"}"), "labels: {line}");
                }
                assert!(typed.contains_key(name), "TYPE before sample: {line}");
                if typed[name] == "counter" {
                    assert!(
                        name.ends_with("_total"),
                        "counter names end in _total: {line}"
                    );
                }
                let value: u64 = value.parse().expect("integer value");
                assert!(
                    samples.insert(series.to_string(), value).is_none(),
                    "{line}"
                );
            }
        }
        samples
    }

    #[test]
    fn every_broker_topic_becomes_a_metric() {
        let topics: Vec<&str> = Stats::new().render().iter().map(|(t, _)| *t).collect();
        for (topic, name, _, _) in BROKER {
            assert!(
                topics.contains(&topic),
                "{topic} missing from Stats::render"
            );
            let samples = parse(&render(&Stats::new(), &Extra::default()));
            assert_eq!(samples.get(name), Some(&0), "{name}");
        }
    }

    #[test]
    fn counters_reflect_the_stats() {
        let stats = Stats::new();
        stats.client_connected();
        stats.client_connected();
        stats.client_disconnected(true);
        for _ in 0..5 {
            stats.publish_received();
        }
        stats.publish_sent(7);
        stats.publish_dropped(3);
        stats.packet_received(100);
        stats.packet_sent(40);
        stats.set_retained_count(11);
        stats.set_subscriptions_count(13);
        let m = parse(&render(&stats, &Extra::default()));
        assert_eq!(m["lothub_clients_connected"], stats.clients_connected());
        assert_eq!(m["lothub_clients_connected"], 1);
        assert_eq!(m["lothub_clients_disconnected"], 1);
        assert_eq!(m["lothub_clients_maximum"], 2);
        assert_eq!(m["lothub_clients_total"], 2);
        assert_eq!(m["lothub_publish_received_total"], 5);
        assert_eq!(m["lothub_publish_sent_total"], 7);
        assert_eq!(m["lothub_publish_dropped_total"], 3);
        assert_eq!(m["lothub_messages_received_total"], 1);
        assert_eq!(m["lothub_messages_sent_total"], 1);
        assert_eq!(m["lothub_bytes_received_total"], 100);
        assert_eq!(m["lothub_bytes_sent_total"], 40);
        assert_eq!(m["lothub_retained_messages"], 11);
        assert_eq!(m["lothub_subscriptions"], 13);
        assert!(m.contains_key("lothub_uptime_seconds"));
        let info = format!("lothub_build_info{{version=\"{}\"}}", version_string());
        assert_eq!(m.get(&info), Some(&1), "{m:?}");
        assert!(
            !m.contains_key("lothub_sessions"),
            "absent extras are left out"
        );
        assert!(!m.keys().any(|k| k.starts_with("lothub_store_")));
    }

    #[test]
    fn extras_engine_store_and_routes() {
        let extra = Extra {
            connections: Some(4),
            sessions: Some(6),
            engine: Some(EngineStats {
                dropped: 1,
                recorded_topics: 2,
                unrecorded_topics: 3,
                timers: 4,
            }),
            store: Some(WriterStats {
                events: 10,
                durable: 9,
                commits: 8,
                waiting: 1,
                dropped: 2,
                failed_commits: 0,
            }),
            routes: vec![
                RouteCounters {
                    name: "cloud".into(),
                    forwarded: 5,
                    buffered: 1,
                    dropped: 0,
                    failed: 2,
                },
                RouteCounters {
                    name: "a\"b\\c".into(),
                    forwarded: 9,
                    ..RouteCounters::default()
                },
            ],
        };
        let m = parse(&render(&Stats::new(), &extra));
        assert_eq!(m["lothub_connections_open"], 4);
        assert_eq!(m["lothub_sessions"], 6);
        assert_eq!(m["lothub_lot_jobs_dropped_total"], 1);
        assert_eq!(m["lothub_lot_recorded_topics"], 2);
        assert_eq!(m["lothub_lot_unrecorded_topics_total"], 3);
        assert_eq!(m["lothub_lot_timers"], 4);
        assert_eq!(m["lothub_store_events_total"], 10);
        assert_eq!(m["lothub_store_events_durable_total"], 9);
        assert_eq!(m["lothub_store_commits_total"], 8);
        assert_eq!(m["lothub_store_events_waiting"], 1);
        assert_eq!(m["lothub_store_events_dropped_total"], 2);
        assert_eq!(m["lothub_store_commits_failed_total"], 0);
        assert_eq!(m["lothub_route_forwarded_total{route=\"cloud\"}"], 5);
        assert_eq!(m["lothub_route_buffered{route=\"cloud\"}"], 1);
        assert_eq!(m["lothub_route_failed_total{route=\"cloud\"}"], 2);
        assert_eq!(m["lothub_route_forwarded_total{route=\"a\\\"b\\\\c\"}"], 9);
    }

    #[test]
    fn label_escapes() {
        assert_eq!(label("k", "a\nb\"c\\"), "{k=\"a\\nb\\\"c\\\\\"}");
    }
}
