//! Broker statistics for the Mosquitto-style `$SYS/broker/...` topics (commands-and-sys.md §4).
//!
//! Owns the counters and their rendering as `(topic, payload)` pairs. Counters are plain atomics
//! with `Relaxed` ordering: each is an independent statistic, nobody synchronises on them, and
//! the hot path (one increment per packet) must not take a lock. It must not publish anything
//! itself: the broker's sys task calls [`Stats::render`] every `sys_interval` seconds and
//! publishes the pairs as retained messages.
//!
//! Start reading at [`Stats`].

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// The version string published on `$SYS/broker/version`.
pub fn version_string() -> String {
    format!("lothub {}", env!("CARGO_PKG_VERSION"))
}

/// Hub-wide counters. Share it as `Arc<Stats>`; every method takes `&self`.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    clients_connected: AtomicU64,
    clients_disconnected: AtomicU64,
    clients_maximum: AtomicU64,
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    publish_received: AtomicU64,
    publish_sent: AtomicU64,
    publish_dropped: AtomicU64,
    retained_count: AtomicU64,
    subscriptions_count: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Decrements without wrapping below zero (a stray extra decrement must not show 2^64 - 1).
fn sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    /// Fresh counters; uptime counts from now.
    pub fn new() -> Stats {
        Stats {
            started: Instant::now(),
            clients_connected: AtomicU64::new(0),
            clients_disconnected: AtomicU64::new(0),
            clients_maximum: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            publish_received: AtomicU64::new(0),
            publish_sent: AtomicU64::new(0),
            publish_dropped: AtomicU64::new(0),
            retained_count: AtomicU64::new(0),
            subscriptions_count: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        }
    }

    /// A client finished CONNECT successfully; also raises `clients/maximum` if needed.
    pub fn client_connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
    }

    /// A connected client went away. `session_kept` is true when its persistent session stays on
    /// the hub (it then counts in `clients/disconnected`, as in Mosquitto).
    pub fn client_disconnected(&self, session_kept: bool) {
        sub(&self.clients_connected, 1);
        if session_kept {
            add(&self.clients_disconnected, 1);
        }
    }

    /// A kept session was resumed by a reconnect, or expired and was removed.
    pub fn offline_session_gone(&self) {
        sub(&self.clients_disconnected, 1);
    }

    /// Sets the number of offline persistent sessions directly (e.g. after loading the store).
    pub fn set_offline_sessions(&self, n: u64) {
        self.clients_disconnected.store(n, Ordering::Relaxed);
    }

    /// One control packet of any type received, `bytes` long on the wire.
    pub fn packet_received(&self, bytes: u64) {
        add(&self.messages_received, 1);
        add(&self.bytes_received, bytes);
    }

    /// One control packet of any type sent, `bytes` long on the wire.
    pub fn packet_sent(&self, bytes: u64) {
        add(&self.messages_sent, 1);
        add(&self.bytes_sent, bytes);
    }

    /// Bytes read or written outside whole packets (e.g. counted per read batch).
    pub fn bytes_received(&self, bytes: u64) {
        add(&self.bytes_received, bytes);
    }

    pub fn bytes_sent(&self, bytes: u64) {
        add(&self.bytes_sent, bytes);
    }

    /// A PUBLISH received from a client (also count it with [`packet_received`](Self::packet_received)).
    pub fn publish_received(&self) {
        add(&self.publish_received, 1);
    }

    /// `n` PUBLISH packets sent to clients.
    pub fn publish_sent(&self, n: u64) {
        add(&self.publish_sent, n);
    }

    /// A PUBLISH dropped for a subscriber (queue full, expired, too large for the client).
    pub fn publish_dropped(&self, n: u64) {
        add(&self.publish_dropped, n);
    }

    /// Sets the retained-message gauge (the broker reads it from its retained store).
    pub fn set_retained_count(&self, n: u64) {
        self.retained_count.store(n, Ordering::Relaxed);
    }

    /// Sets the subscription gauge (the broker reads it from its subscription tree).
    pub fn set_subscriptions_count(&self, n: u64) {
        self.subscriptions_count.store(n, Ordering::Relaxed);
    }

    pub fn clients_connected(&self) -> u64 {
        get(&self.clients_connected)
    }

    pub fn clients_disconnected(&self) -> u64 {
        get(&self.clients_disconnected)
    }

    pub fn clients_maximum(&self) -> u64 {
        get(&self.clients_maximum)
    }

    pub fn publish_dropped_count(&self) -> u64 {
        get(&self.publish_dropped)
    }

    pub fn publish_received_count(&self) -> u64 {
        get(&self.publish_received)
    }

    pub fn publish_sent_count(&self) -> u64 {
        get(&self.publish_sent)
    }

    /// Whole seconds since the hub started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The `$SYS/broker/...` topics and their payloads, Mosquitto-style: counters as decimal
    /// text, `uptime` as "N seconds", `version` as "lothub <version>". `clients/total` is
    /// connected plus disconnected (Mosquitto's meaning: every client the hub knows about).
    /// Order is fixed: `version` first and `uptime` last, so a reader can tell where one
    /// update ends.
    pub fn render(&self) -> Vec<(&'static str, String)> {
        let connected = self.clients_connected();
        let disconnected = self.clients_disconnected();
        let counters: [(&'static str, u64); 14] = [
            ("$SYS/broker/clients/connected", connected),
            ("$SYS/broker/clients/disconnected", disconnected),
            ("$SYS/broker/clients/maximum", self.clients_maximum()),
            ("$SYS/broker/clients/total", connected + disconnected),
            (
                "$SYS/broker/messages/received",
                get(&self.messages_received),
            ),
            ("$SYS/broker/messages/sent", get(&self.messages_sent)),
            (
                "$SYS/broker/messages/publish/received",
                get(&self.publish_received),
            ),
            ("$SYS/broker/messages/publish/sent", get(&self.publish_sent)),
            (
                "$SYS/broker/messages/publish/dropped",
                get(&self.publish_dropped),
            ),
            (
                "$SYS/broker/messages/retained/count",
                get(&self.retained_count),
            ),
            (
                "$SYS/broker/subscriptions/count",
                get(&self.subscriptions_count),
            ),
            ("$SYS/broker/load/bytes/received", get(&self.bytes_received)),
            ("$SYS/broker/load/bytes/sent", get(&self.bytes_sent)),
            ("$SYS/broker/uptime", self.uptime_secs()),
        ];
        let mut out = Vec::with_capacity(counters.len() + 1);
        out.push(("$SYS/broker/version", version_string()));
        for (topic, value) in counters {
            let payload = if topic == "$SYS/broker/uptime" {
                format!("{value} seconds")
            } else {
                value.to_string()
            };
            out.push((topic, payload));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn rendered(stats: &Stats) -> HashMap<&'static str, String> {
        stats.render().into_iter().collect()
    }

    #[test]
    fn render_lists_every_spec_topic() {
        let stats = Stats::new();
        let map = rendered(&stats);
        for suffix in [
            "version",
            "uptime",
            "clients/connected",
            "clients/disconnected",
            "clients/maximum",
            "clients/total",
            "messages/received",
            "messages/sent",
            "messages/publish/received",
            "messages/publish/sent",
            "messages/publish/dropped",
            "messages/retained/count",
            "subscriptions/count",
            "load/bytes/received",
            "load/bytes/sent",
        ] {
            let topic = format!("$SYS/broker/{suffix}");
            assert!(map.contains_key(topic.as_str()), "missing {topic}");
        }
        assert_eq!(map.len(), 15);
        assert_eq!(map["$SYS/broker/version"], version_string());
        assert!(map["$SYS/broker/version"].starts_with("lothub "));
        assert_eq!(map["$SYS/broker/uptime"], "0 seconds");
    }

    #[test]
    fn counters_move_and_render_as_decimal() {
        let stats = Stats::new();
        stats.client_connected();
        stats.client_connected();
        stats.client_connected();
        stats.client_disconnected(true);
        stats.client_disconnected(false);
        stats.packet_received(10);
        stats.packet_received(5);
        stats.packet_sent(7);
        stats.publish_received();
        stats.publish_sent(3);
        stats.publish_dropped(2);
        stats.set_retained_count(4);
        stats.set_subscriptions_count(9);
        let map = rendered(&stats);
        let expect = [
            ("clients/connected", "1"),
            ("clients/disconnected", "1"),
            ("clients/maximum", "3"),
            ("clients/total", "2"),
            ("messages/received", "2"),
            ("messages/sent", "1"),
            ("messages/publish/received", "1"),
            ("messages/publish/sent", "3"),
            ("messages/publish/dropped", "2"),
            ("messages/retained/count", "4"),
            ("subscriptions/count", "9"),
            ("load/bytes/received", "15"),
            ("load/bytes/sent", "7"),
        ];
        for (suffix, value) in expect {
            assert_eq!(
                map[format!("$SYS/broker/{suffix}").as_str()],
                value,
                "{suffix}"
            );
        }
        stats.offline_session_gone();
        stats.offline_session_gone();
        assert_eq!(stats.clients_disconnected(), 0, "never wraps below zero");
    }

    #[test]
    fn uptime_counts_seconds() {
        // tokio's `test-util` (paused time) is not enabled in Cargo.toml: backdate the start.
        let mut stats = Stats::new();
        stats.started = Instant::now() - std::time::Duration::from_millis(42_500);
        assert_eq!(rendered(&stats)["$SYS/broker/uptime"], "42 seconds");
    }

    #[test]
    fn counters_are_shared_across_threads() {
        let stats = std::sync::Arc::new(Stats::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.publish_received();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(stats.publish_received_count(), 4000);
    }
}
