//! The result of one run: printed as a readable block, optionally as one JSON line, and the
//! `compare` sub-command that turns two JSON-lines files into a Markdown table with ratios.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Label of the run (defaults to the scenario); compare matches runs by it.
    pub name: String,
    pub scenario: String,
    pub version: String,
    pub qos: u8,
    pub payload: usize,
    pub publishers: usize,
    pub subscribers: usize,
    /// Offered messages per second over all publishers; 0 = as fast as possible.
    pub offered_rate: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub sent_rate: f64,
    /// Deliveries expected: each message times the subscribers that should get it.
    pub expected: u64,
    pub delivered: u64,
    pub delivered_rate: f64,
    pub lost: u64,
    pub duplicates: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub broker_rss_kib: Option<u64>,
    pub broker_cpu_s: Option<f64>,
    pub bench_cpu_s: Option<f64>,
    pub idle_connections: Option<usize>,
    pub rss_per_connection_bytes: Option<u64>,
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or("n/a (no --pid)".to_string(), |v| format!("{v}{unit}"))
}

impl Report {
    /// The human-readable block.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let rate = if self.offered_rate > 0.0 {
            format!("{:.0} msgs/s offered", self.offered_rate)
        } else {
            "as fast as possible".to_string()
        };
        let _ = writeln!(s, "== {} ({}) ==", self.name, self.scenario);
        if let Some(n) = self.idle_connections {
            let _ = writeln!(s, "idle connections: {n} (MQTT {})", self.version);
            let _ = writeln!(s, "broker RSS:       {}", opt(self.broker_rss_kib, " KiB"));
            let _ = writeln!(
                s,
                "RSS per conn:     {}",
                opt(self.rss_per_connection_bytes, " bytes")
            );
        } else {
            let _ = writeln!(
                s,
                "setup:     MQTT {}, QoS {}, payload {} B, {} pub -> {} sub, {}, {:.1} s",
                self.version,
                self.qos,
                self.payload,
                self.publishers,
                self.subscribers,
                rate,
                self.duration_s
            );
            let _ = writeln!(
                s,
                "sent:      {} msgs ({:.0} msgs/s)",
                self.sent, self.sent_rate
            );
            let _ = writeln!(
                s,
                "delivered: {} of {} expected ({:.0} msgs/s)",
                self.delivered, self.expected, self.delivered_rate
            );
            let _ = writeln!(s, "lost: {}  duplicated: {}", self.lost, self.duplicates);
            let _ = writeln!(
                s,
                "latency:   p50 {} us  p99 {} us  max {} us",
                self.p50_us, self.p99_us, self.max_us
            );
            let _ = writeln!(s, "broker:    RSS {}", opt(self.broker_rss_kib, " KiB"));
        }
        let cpu = |c: Option<f64>| {
            c.map_or("n/a".to_string(), |c| {
                format!("{c:.2} s ({:.0}% of one core)", 100.0 * c / self.duration_s)
            })
        };
        let _ = writeln!(
            s,
            "CPU:       broker {}, bench {}",
            cpu(self.broker_cpu_s),
            cpu(self.bench_cpu_s)
        );
        s
    }
}

fn load(path: &str) -> Result<BTreeMap<String, Report>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let r: Report = serde_json::from_str(line).with_context(|| format!("parsing {path}"))?;
        out.insert(r.name.clone(), r);
    }
    Ok(out)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".to_string()
    }
}

fn cpu(c: Option<f64>) -> String {
    c.map_or("n/a".to_string(), |c| format!("{c:.2}"))
}

/// Broker CPU microseconds per delivered message: the figure least distorted by other load on
/// the machine, since it does not depend on how much CPU time the broker was given.
fn per_msg(r: &Report) -> String {
    match r.broker_cpu_s {
        Some(c) if r.delivered > 0 => format!("{:.2}", c * 1e6 / r.delivered as f64),
        _ => "n/a".to_string(),
    }
}

/// Markdown table of the runs in `a_path` against those in `b_path`, matched by name.
pub fn compare(a_label: &str, a_path: &str, b_label: &str, b_path: &str) -> Result<String> {
    let a = load(a_path)?;
    let b = load(b_path)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| run | {a_label} msgs/s | {b_label} msgs/s | ratio | {a_label} p50/p99 us | {b_label} p50/p99 us | lost {a_label}/{b_label} | broker CPU s {a_label}/{b_label} | broker CPU us/msg {a_label}/{b_label} | bench CPU s |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut idle = Vec::new();
    for (name, ra) in &a {
        let Some(rb) = b.get(name) else { continue };
        if ra.idle_connections.is_some() {
            idle.push((ra, rb));
            continue;
        }
        let _ = writeln!(
            s,
            "| {name} | {:.0} | {:.0} | {} | {}/{} | {}/{} | {}/{} | {}/{} | {}/{} | {}/{} |",
            ra.delivered_rate,
            rb.delivered_rate,
            ratio(ra.delivered_rate, rb.delivered_rate),
            ra.p50_us,
            ra.p99_us,
            rb.p50_us,
            rb.p99_us,
            ra.lost,
            rb.lost,
            cpu(ra.broker_cpu_s),
            cpu(rb.broker_cpu_s),
            per_msg(ra),
            per_msg(rb),
            cpu(ra.bench_cpu_s),
            cpu(rb.bench_cpu_s),
        );
    }
    for (ra, rb) in idle {
        let per = |r: &Report| {
            r.rss_per_connection_bytes
                .map_or("n/a".into(), |v| v.to_string())
        };
        let _ = writeln!(
            s,
            "\n| idle run | connections | {a_label} RSS bytes/conn | {b_label} RSS bytes/conn | {a_label} RSS KiB | {b_label} RSS KiB |\n|---|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |",
            ra.name,
            ra.idle_connections.unwrap_or(0),
            per(ra),
            per(rb),
            ra.broker_rss_kib.map_or("n/a".into(), |v| v.to_string()),
            rb.broker_rss_kib.map_or("n/a".into(), |v| v.to_string()),
        );
    }
    Ok(s)
}
