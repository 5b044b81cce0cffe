//! The scenarios: who publishes where, who listens, and how one run is measured.
//!
//! A scenario is a [`Layout`]: publishers (id, topic) and subscribers (filter, the publishers
//! they should hear). [`run`] connects everyone, lets publishers send until the deadline, waits
//! for subscribers to drain, and folds their histograms and sequence trackers into a [`Report`].
//! The tasks themselves live in `tasks.rs`; [`run_idle`] measures memory per idle connection.

use crate::client::Conn;
use crate::report::Report;
use crate::stats::{Histogram, ProcReader, ProcSample};
use crate::stream::Dialer;
use crate::tasks::{Flow, PubTask, publisher, subscriber};
use anyhow::{Context, Result, bail};
use lothub::protocol::packet::{ProtocolVersion, QoS};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Everything a scenario needs from the command line.
#[derive(Debug, Clone)]
pub struct Params {
    /// Where and how to connect (TCP or TLS).
    pub dialer: Dialer,
    pub pid: Option<String>,
    pub duration: Duration,
    pub payload: usize,
    pub clients: usize,
    /// Offered load in messages per second over all publishers; 0 = as fast as possible.
    pub rate: f64,
    pub qos: QoS,
    pub window: usize,
    /// Messages per publisher at most; 0 = until the deadline.
    pub count: u64,
    pub version: ProtocolVersion,
    /// Deliveries each subscriber may be owed before publishers pause; 0 = no cap.
    pub backlog: u64,
}

/// Longest wait for subscribers to receive what was sent, after the publishers stop.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// The drain also ends when nothing arrived for this long.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

pub struct PubPlan {
    pub id: u32,
    pub topic: Arc<str>,
}

pub struct SubPlan {
    pub filter: String,
    pub publishers: Vec<u32>,
}

pub struct Layout {
    pub publishers: Vec<PubPlan>,
    pub subscribers: Vec<SubPlan>,
}

/// Topics unique to this run, so an earlier run's retained or queued messages cannot mix in.
fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("bench/{}-{nanos}", std::process::id())
}

/// The publisher/subscriber layout of each traffic scenario.
pub fn layout(scenario: &str, n: usize) -> Result<Layout> {
    let prefix = run_prefix();
    let one = |topic: String, subs: usize, pubs: usize| Layout {
        publishers: (0..pubs as u32)
            .map(|id| PubPlan {
                id,
                topic: Arc::from(topic.as_str()),
            })
            .collect(),
        subscribers: (0..subs)
            .map(|_| SubPlan {
                filter: topic.clone(),
                publishers: (0..pubs as u32).collect(),
            })
            .collect(),
    };
    Ok(match scenario {
        "qos0-1to1" => one(format!("{prefix}/one"), 1, 1),
        "qos1-nto1" => one(format!("{prefix}/many"), 1, n),
        "fanout" => one(format!("{prefix}/fan"), n, 1),
        "pairs" => Layout {
            publishers: (0..n as u32)
                .map(|id| PubPlan {
                    id,
                    topic: Arc::from(format!("{prefix}/pair/{id}")),
                })
                .collect(),
            subscribers: (0..n as u32)
                .map(|id| SubPlan {
                    filter: format!("{prefix}/pair/{id}"),
                    publishers: vec![id],
                })
                .collect(),
        },
        other => bail!("unknown scenario {other:?}"),
    })
}

/// Connects `n` clients named `{prefix}-{i}`, a few at a time.
pub async fn connect_many(p: &Params, prefix: &str, n: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(32) {
        let mut set = JoinSet::new();
        for i in chunk_start..(chunk_start + 32).min(n) {
            let (dialer, id, v) = (
                p.dialer.clone(),
                format!("{prefix}-{}-{i}", std::process::id()),
                p.version,
            );
            set.spawn(async move { (i, Conn::connect(&dialer, &id, v).await) });
        }
        let mut chunk: Vec<(usize, Conn)> = Vec::new();
        while let Some(res) = set.join_next().await {
            let (i, conn) = res?;
            chunk.push((i, conn.with_context(|| format!("{prefix} client {i}"))?));
        }
        chunk.sort_by_key(|(i, _)| *i);
        conns.extend(chunk.into_iter().map(|(_, c)| c));
    }
    Ok(conns)
}

fn sample(reader: &ProcReader, pid: &Option<String>) -> Option<ProcSample> {
    pid.as_deref().and_then(|pid| reader.sample(pid))
}

/// Runs one traffic scenario and reports what was measured.
pub async fn run(name: &str, scenario: &str, p: Params) -> Result<Report> {
    let p = Arc::new(p);
    let layout = layout(scenario, p.clients)?;
    let proc = ProcReader::new();
    let mut subs = connect_many(&p, "bench-sub", layout.subscribers.len()).await?;
    for (conn, plan) in subs.iter_mut().zip(&layout.subscribers) {
        conn.subscribe(&plan.filter, p.qos).await?;
    }
    let pubs = connect_many(&p, "bench-pub", layout.publishers.len()).await?;
    let expected_per_sub: Vec<Vec<u32>> = layout
        .subscribers
        .iter()
        .map(|s| s.publishers.clone())
        .collect();

    let broker0 = sample(&proc, &p.pid);
    let self0 = proc.sample("self");
    let epoch = Instant::now();
    let deadline = epoch + p.duration;
    let (stop_tx, stop_rx) = watch::channel(false);
    let flow = Arc::new(Flow::new(p.backlog * expected_per_sub.len() as u64));
    let mut sub_tasks = Vec::new();
    for conn in subs {
        let task = subscriber(conn, stop_rx.clone(), flow.clone(), epoch);
        sub_tasks.push(tokio::spawn(task));
    }
    let per_pub_rate = p.rate / layout.publishers.len() as f64;
    let mut pub_tasks = Vec::new();
    for (conn, plan) in pubs.into_iter().zip(layout.publishers) {
        let fan = expected_per_sub
            .iter()
            .filter(|s| s.contains(&plan.id))
            .count() as u64;
        let t = PubTask {
            id: plan.id,
            topic: plan.topic,
            fan,
            qos: p.qos,
            payload: p.payload,
            rate: per_pub_rate,
            window: p.window,
            limit: if p.count == 0 { u64::MAX } else { p.count },
        };
        let task = publisher(conn, t, flow.clone(), deadline, epoch);
        pub_tasks.push(tokio::spawn(task));
    }
    let mut sent_by = Vec::new();
    for t in pub_tasks {
        sent_by.push(t.await??);
    }
    let pub_elapsed = epoch.elapsed();
    let sent: u64 = sent_by.iter().sum();
    let expected: u64 = expected_per_sub
        .iter()
        .map(|pubs| pubs.iter().map(|&id| sent_by[id as usize]).sum::<u64>())
        .sum();

    // Drain: wait until everything expected arrived, or arrivals stop.
    let drain_start = Instant::now();
    let mut last_total = 0;
    let mut last_change = Instant::now();
    loop {
        let total = flow.delivered.load(Ordering::Relaxed);
        if total >= expected || drain_start.elapsed() > DRAIN_MAX {
            break;
        }
        if total != last_total {
            last_total = total;
            last_change = Instant::now();
        } else if last_change.elapsed() > DRAIN_IDLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let broker1 = sample(&proc, &p.pid);
    let self1 = proc.sample("self");
    let _ = stop_tx.send(true);

    let mut hist = Histogram::default();
    let (mut delivered, mut dup, mut lost, mut last_ns) = (0u64, 0u64, 0u64, 0u64);
    for (task, pubs) in sub_tasks.into_iter().zip(&expected_per_sub) {
        let r = task.await?;
        hist.merge(&r.hist);
        delivered += r.received;
        dup += r.seqs.duplicates;
        last_ns = last_ns.max(r.last_ns);
        for &id in pubs {
            lost += sent_by[id as usize].saturating_sub(r.seqs.unique_from(id));
        }
    }
    let deliver_secs = (last_ns as f64 / 1e9).max(pub_elapsed.as_secs_f64());
    Ok(Report {
        name: name.to_string(),
        scenario: scenario.to_string(),
        version: version_name(p.version).to_string(),
        qos: p.qos as u8,
        payload: p.payload,
        publishers: sent_by.len(),
        subscribers: expected_per_sub.len(),
        offered_rate: p.rate,
        duration_s: pub_elapsed.as_secs_f64(),
        sent,
        sent_rate: sent as f64 / pub_elapsed.as_secs_f64(),
        expected,
        delivered,
        delivered_rate: if delivered == 0 {
            0.0
        } else {
            delivered as f64 / deliver_secs
        },
        lost,
        duplicates: dup,
        p50_us: hist.quantile(0.50),
        p99_us: hist.quantile(0.99),
        max_us: hist.max(),
        broker_rss_kib: broker1.map(|s| s.rss_kib),
        broker_cpu_s: broker0.zip(broker1).map(|(a, b)| b.cpu_s - a.cpu_s),
        bench_cpu_s: self0.zip(self1).map(|(a, b)| b.cpu_s - a.cpu_s),
        idle_connections: None,
        rss_per_connection_bytes: None,
    })
}

pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5",
    }
}

/// Opens `p.clients` idle connections and reports the broker's resident memory per connection.
pub async fn run_idle(name: &str, p: Params) -> Result<Report> {
    let proc = ProcReader::new();
    let pid = p
        .pid
        .clone()
        .context("the idle scenario needs --pid to read the broker's memory")?;
    let before = proc
        .sample(&pid)
        .context("cannot read the broker's /proc entry")?;
    let self0 = proc.sample("self");
    let start = Instant::now();
    let conns = connect_many(&p, "bench-idle", p.clients).await?;
    // Let the broker settle (lazy buffers, allocator) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2).min(p.duration)).await;
    let after = proc.sample(&pid).context("broker gone")?;
    let remaining = p.duration.saturating_sub(start.elapsed());
    tokio::time::sleep(remaining).await;
    let elapsed = start.elapsed().as_secs_f64();
    let self1 = proc.sample("self");
    for c in conns {
        c.disconnect().await;
    }
    let per_conn = (after.rss_kib.saturating_sub(before.rss_kib) * 1024) / p.clients.max(1) as u64;
    Ok(Report {
        name: name.to_string(),
        scenario: "idle".to_string(),
        version: version_name(p.version).to_string(),
        qos: 0,
        payload: 0,
        publishers: 0,
        subscribers: 0,
        offered_rate: 0.0,
        duration_s: elapsed,
        sent: 0,
        sent_rate: 0.0,
        expected: 0,
        delivered: 0,
        delivered_rate: 0.0,
        lost: 0,
        duplicates: 0,
        p50_us: 0,
        p99_us: 0,
        max_us: 0,
        broker_rss_kib: Some(after.rss_kib),
        broker_cpu_s: Some(after.cpu_s - before.cpu_s),
        bench_cpu_s: self0.zip(self1).map(|(a, b)| b.cpu_s - a.cpu_s),
        idle_connections: Some(p.clients),
        rss_per_connection_bytes: Some(per_conn),
    })
}
