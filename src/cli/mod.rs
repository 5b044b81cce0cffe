//! # cli: command-line parsing and the offline sub-commands
//!
//! Owns the `lothub` command line ([`args`]), the merge of config file and command-line
//! overrides ([`resolve_config`]), the exit codes, the start-up of the hub ([`run`]: storage,
//! LOT runtime, `app::Hub`, extra listeners, signals), `lothub user` ([`user`]) and
//! `lothub backup|restore` and `--recover` ([`backup`]). Must not reach
//! into broker internals: it only uses the public APIs of `app`, `runtime`, `storage`, `command`
//! and `transport`. Start reading at [`main`], then `run.rs`.
//!
//! Exit codes: 0 success; 1 the hub failed while running (e.g. a port already in use); 2 a usage
//! error or a configuration refused (message on stderr naming the key and the reason).

mod args;
pub mod backup;
mod run;
pub mod user;

use std::io::Write;

use clap::Parser;

use crate::config::{Config, ConfigError, ListenerConfig};

pub use args::{Cli, Command, ConfigCommand, LotCommand};
pub use run::{broker_settings, check_tls, hub_options, run_hub};

/// Environment variable holding the root password for the first start.
pub const ROOT_PASSWORD_ENV: &str = "LOTHUB_ROOT_PASSWORD";

/// Exit status for a refused configuration or command line.
pub const EXIT_CONFIG: i32 = 2;

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = e.print();
            return e.exit_code();
        }
    };
    match &cli.command {
        Some(Command::Config {
            action: ConfigCommand::Print,
        }) => print_default_config(),
        Some(Command::Lot {
            action: LotCommand::Check { files },
        }) => crate::lot::cli_check(files),
        Some(Command::User { action }) => user::run(action),
        Some(Command::Backup { file, data_dir }) => {
            backup::run_backup(file, &data_dir_or_default(data_dir))
        }
        Some(Command::Restore {
            file,
            data_dir,
            force,
        }) => backup::run_restore(file, &data_dir_or_default(data_dir), *force),
        None => start(&cli),
    }
}

fn print_default_config() -> i32 {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(Config::default_text().as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => 0,
        // `lothub config print | head` closes the pipe early: not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("lothub: cannot write the config: {e}");
            1
        }
    }
}

fn start(cli: &Cli) -> i32 {
    let env_password = std::env::var(ROOT_PASSWORD_ENV).ok();
    let config = match resolve_config(cli, env_password) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("lothub: {message}");
            return EXIT_CONFIG;
        }
    };
    if let Err(message) = check_tls(&config) {
        eprintln!("lothub: invalid configuration: {message}");
        return EXIT_CONFIG;
    }
    if cli.recover {
        match backup::recover(&config.data_dir) {
            Ok(Some(aside)) => eprintln!(
                "lothub: --recover: moved the unreadable data file aside to {}; starting with an empty one",
                aside.display()
            ),
            Ok(None) => {
                eprintln!("lothub: --recover: the data file is readable; nothing to recover")
            }
            Err(message) => {
                eprintln!("lothub: --recover: {message}");
                return 1;
            }
        }
    }
    match run_hub(config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lothub: {e:#}");
            1
        }
    }
}

/// `--data-dir` of an offline sub-command, else `data_dir` of the embedded configuration.
fn data_dir_or_default(dir: &Option<std::path::PathBuf>) -> std::path::PathBuf {
    dir.clone().unwrap_or_else(|| Config::default().data_dir)
}

/// The configuration the hub runs with: the config file (or the embedded default) with the
/// command-line overrides applied, validated, and its files checked. The error is the whole
/// message for the operator.
///
/// Root password precedence: `--root-password`, then `env_password` (the
/// `LOTHUB_ROOT_PASSWORD` variable; empty counts as unset), then `auth.root_password`.
pub fn resolve_config(cli: &Cli, env_password: Option<String>) -> Result<Config, String> {
    let source = match &cli.config {
        Some(path) => format!("config file {}", path.display()),
        None => "embedded default config".to_string(),
    };
    let with_source = |e: ConfigError| match e {
        // The read error already names the file.
        ConfigError::Read { .. } => format!("invalid configuration: {e}"),
        _ => format!("invalid configuration ({source}): {e}"),
    };
    let mut config = match &cli.config {
        Some(path) => Config::load(path),
        None => Config::from_toml_str(Config::default_text()),
    }
    .map_err(with_source)?;

    if !cli.listen.is_empty() {
        config.listeners = cli
            .listen
            .iter()
            .copied()
            .map(ListenerConfig::tcp)
            .collect();
    }
    if let Some(dir) = &cli.data_dir {
        if dir.as_os_str().is_empty() {
            return Err("--data-dir: must not be empty".to_string());
        }
        config.data_dir = dir.clone();
    }
    match (&cli.root_password, env_password.filter(|p| !p.is_empty())) {
        (Some(pw), _) if pw.is_empty() => {
            return Err("--root-password: must not be empty".to_string());
        }
        (Some(pw), _) => config.auth.root_password = Some(pw.clone()),
        (None, Some(pw)) => config.auth.root_password = Some(pw),
        (None, None) => {}
    }
    // Overrides can break rules the file alone kept (e.g. --listen repeating an address).
    config.validate().map_err(with_source)?;
    config.check_files().map_err(with_source)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("lothub").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_without_arguments() {
        let c = resolve_config(&cli(&[]), None).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn listen_replaces_listeners_with_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[[listeners]]\nkind = \"ws\"\nbind = \"0.0.0.0:8080\"\n\
             [[listeners]]\nkind = \"tcp\"\nbind = \"0.0.0.0:1884\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let c = resolve_config(&cli(&["--config", path]), None).unwrap();
        assert_eq!(c.listeners.len(), 2);
        let c = resolve_config(
            &cli(&[
                "--config",
                path,
                "--listen",
                "127.0.0.1:1",
                "--listen",
                "127.0.0.1:2",
            ]),
            None,
        )
        .unwrap();
        let binds: Vec<String> = c.listeners.iter().map(|l| l.bind.to_string()).collect();
        assert_eq!(binds, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert!(
            c.listeners
                .iter()
                .all(|l| l.kind == crate::config::ListenerKind::Tcp)
        );
    }

    #[test]
    fn repeated_listen_address_is_refused() {
        let e = resolve_config(
            &cli(&["--listen", "127.0.0.1:5", "--listen", "127.0.0.1:5"]),
            None,
        )
        .unwrap_err();
        assert!(e.contains("listeners[1].bind"), "{e}");
    }

    #[test]
    fn data_dir_override() {
        let c = resolve_config(&cli(&["--data-dir", "/srv/hub"]), None).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/hub"));
    }

    #[test]
    fn root_password_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[auth]\nroot_password = \"from-file\"\n").unwrap();
        let path = file.to_str().unwrap();
        let pw = |args: &[&str], env: Option<&str>| {
            resolve_config(&cli(args), env.map(str::to_string))
                .unwrap()
                .auth
                .root_password
        };
        assert_eq!(pw(&["--config", path], None).as_deref(), Some("from-file"));
        assert_eq!(
            pw(&["--config", path], Some("from-env")).as_deref(),
            Some("from-env")
        );
        assert_eq!(
            pw(&["--config", path], Some("")).as_deref(),
            Some("from-file")
        );
        assert_eq!(
            pw(
                &["--config", path, "--root-password", "from-cli"],
                Some("from-env")
            )
            .as_deref(),
            Some("from-cli")
        );
        assert_eq!(pw(&[], None), None);
        assert!(resolve_config(&cli(&["--root-password", ""]), None).is_err());
    }

    #[test]
    fn bad_file_message_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[limits]\nmax_packet_size = 10\n").unwrap();
        let e = resolve_config(&cli(&["--config", file.to_str().unwrap()]), None).unwrap_err();
        assert!(e.contains("bad.toml"), "{e}");
        assert!(
            e.contains("limits.max_packet_size: must be at least 1024 bytes"),
            "{e}"
        );
        let e = resolve_config(&cli(&["--config", "/nonexistent.toml"]), None).unwrap_err();
        assert!(
            e.contains("cannot read config file /nonexistent.toml"),
            "{e}"
        );
    }
}
