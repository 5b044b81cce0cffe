//! `lothub-bench`: an MQTT load generator for comparing brokers on one machine.
//!
//! It speaks MQTT through `lothub::protocol`'s codec over raw tokio TCP streams, or TLS with
//! `--tls --cafile PATH` (no client library), pipelines and batches its writes, stamps every payload with a publisher id, a
//! sequence number and a send time, and reports throughput, latency percentiles, lost and
//! duplicated messages, and the CPU and memory of both the broker (`--pid`) and itself.
//!
//! Layout: `main.rs` (command line), `scenario.rs` (the tasks and scenarios), `client.rs` (the
//! minimal MQTT client), `stream.rs` (TCP or TLS), `stats.rs` (histogram, sequence tracking, /proc), `report.rs` (output
//! and the `compare` table). All traffic goes to `--host` only; every scenario ends by itself.

mod client;
mod report;
mod scenario;
mod stats;
mod stream;
mod tasks;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use lothub::protocol::packet::{ProtocolVersion, QoS};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "lothub-bench", about = "MQTT broker load generator", version)]
struct Cli {
    /// Broker host (all traffic goes there).
    #[arg(long, default_value = "127.0.0.1", global = true)]
    host: String,
    /// Broker port (TCP, or the TLS listener with --tls).
    #[arg(long, default_value_t = 1883, global = true)]
    port: u16,
    /// Connect over TLS (server name `localhost`, verified against --cafile).
    #[arg(long, global = true, requires = "cafile")]
    tls: bool,
    /// PEM file of the CA certificate(s) that signed the broker's TLS certificate.
    #[arg(long, global = true)]
    cafile: Option<std::path::PathBuf>,
    /// Broker process id, to report its RSS and CPU from /proc.
    #[arg(long, global = true)]
    pid: Option<u32>,
    /// Seconds the publishers send (the idle scenario holds its connections this long).
    #[arg(long, default_value_t = 5.0, global = true)]
    duration: f64,
    /// Payload size in bytes (at least 20: the bench header).
    #[arg(long, default_value_t = 32, global = true)]
    payload: usize,
    /// Client count: publishers (qos1-nto1), subscribers (fanout), pairs, or idle connections.
    #[arg(short = 'n', long, global = true)]
    clients: Option<usize>,
    /// Offered load in messages/s over all publishers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0, global = true)]
    rate: f64,
    /// QoS 0 or 1 (default: the scenario's own).
    #[arg(long, global = true)]
    qos: Option<u8>,
    /// QoS 1 messages in flight per publisher.
    #[arg(long, default_value_t = 64, global = true)]
    window: usize,
    /// Deliveries each subscriber may be owed before publishers pause (0 = no cap): measures
    /// the rate a broker sustains without an unbounded queue or hitting its queue limits.
    /// (Mosquitto 2.0 with default limits lost QoS 1 messages here with 500; with 100 it did not.)
    #[arg(long, default_value_t = 100, global = true)]
    backlog: u64,
    /// Messages per publisher at most (0 = until --duration ends).
    #[arg(long, default_value_t = 0, global = true)]
    count: u64,
    /// MQTT version: 3.1.1 or 5.
    #[arg(long, default_value = "3.1.1", global = true)]
    mqtt: String,
    /// Label for this run in the JSON output (defaults to the scenario name).
    #[arg(long, global = true)]
    name: Option<String>,
    /// Also print the result as one JSON line (prefixed by nothing, after the readable block).
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads of the bench's runtime: 1 leaves the other core to the broker.
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// 1 publisher -> 1 subscriber, QoS 0.
    #[command(name = "qos0-1to1")]
    Qos0OneToOne,
    /// N publishers (default 10) -> 1 subscriber, QoS 1.
    #[command(name = "qos1-nto1")]
    Qos1NToOne,
    /// 1 publisher -> N subscribers (default 50), QoS 0.
    Fanout,
    /// N publisher/subscriber pairs (default 50), each on its own topic, QoS 1.
    Pairs,
    /// N idle connections (default 1000): broker RSS per connection. Needs --pid.
    Idle,
    /// Markdown table comparing two files of --json lines, matched by run name.
    Compare {
        #[arg(long)]
        a_label: String,
        #[arg(long)]
        a: String,
        #[arg(long)]
        b_label: String,
        #[arg(long)]
        b: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (scenario, default_n, default_qos) = match &cli.command {
        Command::Compare {
            a_label,
            a,
            b_label,
            b,
        } => {
            print!("{}", report::compare(a_label, a, b_label, b)?);
            return Ok(());
        }
        Command::Qos0OneToOne => ("qos0-1to1", 1, 0),
        Command::Qos1NToOne => ("qos1-nto1", 10, 1),
        Command::Fanout => ("fanout", 50, 0),
        Command::Pairs => ("pairs", 50, 1),
        Command::Idle => ("idle", 1000, 0),
    };
    let qos = match cli.qos.unwrap_or(default_qos) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        q => bail!("--qos {q}: the bench drives QoS 0 and 1"),
    };
    let version = match cli.mqtt.as_str() {
        "3.1.1" | "4" => ProtocolVersion::V3_1_1,
        "5" | "5.0" => ProtocolVersion::V5,
        other => bail!("--mqtt {other}: use 3.1.1 or 5"),
    };
    if cli.payload < stats::HEADER_LEN {
        bail!("--payload must be at least {} bytes", stats::HEADER_LEN);
    }
    if !(cli.duration > 0.0 && cli.duration <= 3600.0) {
        bail!("--duration must be in (0, 3600] seconds");
    }
    let addr = format!("{}:{}", cli.host, cli.port);
    let dialer = match (&cli.cafile, cli.tls) {
        (Some(cafile), true) => stream::Dialer::tls(addr, cafile)?,
        (Some(_), false) => bail!("--cafile needs --tls"),
        (None, _) => stream::Dialer::tcp(addr),
    };
    let params = scenario::Params {
        dialer,
        pid: cli.pid.map(|p| p.to_string()),
        duration: Duration::from_secs_f64(cli.duration),
        payload: cli.payload,
        clients: cli.clients.unwrap_or(default_n).max(1),
        rate: cli.rate.max(0.0),
        qos,
        window: cli.window.clamp(1, 65_000),
        count: cli.count,
        version,
        backlog: cli.backlog,
    };
    let name = cli.name.clone().unwrap_or_else(|| scenario.to_string());
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()?
    };
    let report = runtime.block_on(async {
        if scenario == "idle" {
            scenario::run_idle(&name, params).await
        } else {
            scenario::run(&name, scenario, params).await
        }
    })?;
    print!("{}", report.render());
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
