//! Starting the hub from a resolved [`Config`]: tracing, data directory, tokio runtime, then the
//! app. The one place where config values become the app's options.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

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

async fn serve(config: Config) -> anyhow::Result<()> {
    let listeners: Vec<String> = config
        .listeners
        .iter()
        .map(|l| format!("{}:{}", l.kind, l.bind))
        .collect();
    tracing::info!(
        listeners = %listeners.join(", "),
        data_dir = %config.data_dir.display(),
        "lothub {} starting",
        env!("CARGO_PKG_VERSION")
    );
    anyhow::bail!("the broker core is not wired into the command line yet (app::Hub is missing)")
}
