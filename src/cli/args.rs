//! The command line, as clap derive structs. The shape is part of lothub's contract with
//! operators' scripts (issue #2, "Command line and config"): change it only on purpose.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// lothub: a programmable IoT hub (MQTT 3.1/3.1.1/5.0 broker with a LOT runtime).
///
/// Without a sub-command, starts the hub. With no options at all it uses the embedded default
/// configuration (`lothub config print`): TCP on 0.0.0.0:1883, data in ./data.
#[derive(Debug, Parser)]
#[command(name = "lothub", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Config file (TOML). Default: the embedded configuration.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Listen for plain MQTT over TCP on ADDR:PORT; repeatable. Replaces every listener of the
    /// config file.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub listen: Vec<SocketAddr>,

    /// Data directory; overrides `data_dir` of the config.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Password of the `root` user created on first start; overrides the LOTHUB_ROOT_PASSWORD
    /// environment variable and `auth.root_password` (prefer the variable: command lines are
    /// visible to other local users).
    #[arg(long, value_name = "PW")]
    pub root_password: Option<String>,

    /// If the data file is corrupt or unreadable, move it aside (lothub.redb.corrupt-<time>)
    /// and start with an empty one. A readable data file is left alone.
    #[arg(long)]
    pub recover: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Offline sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// LOT (Language of Things) helpers.
    Lot {
        #[command(subcommand)]
        action: LotCommand,
    },
    /// Users of a stopped hub's data directory (a running hub: use -addUser over MQTT).
    User {
        #[command(subcommand)]
        action: super::user::UserCommand,
    },
    /// Write the configuration of a stopped hub (users, LOT definitions, env, sealed secrets)
    /// to FILE as one JSON document.
    Backup {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Data directory of the stopped hub. Default: `data_dir` of the embedded config.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Replace the configuration of a stopped hub with a backup FILE, in one transaction.
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Data directory to restore into (new or empty unless --force).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Restore into a directory that already holds data (its configuration is replaced;
        /// retained messages and sessions stay).
        #[arg(long)]
        force: bool,
    },
}

/// `lothub config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration, which documents every key.
    Print,
}

/// `lothub lot ...`
#[derive(Debug, Subcommand)]
pub enum LotCommand {
    /// Check LOT files offline, with the same errors as the hub.
    Check {
        /// LOT files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("expected IP:PORT such as 0.0.0.0:1883 or [::]:1883, got \"{text}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lothub").chain(args.iter().copied()))
    }

    #[test]
    fn no_arguments_starts_the_hub_with_defaults() {
        let cli = parse(&[]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.config.is_none() && cli.data_dir.is_none() && cli.root_password.is_none());
        assert!(cli.listen.is_empty());
    }

    #[test]
    fn every_start_option() {
        let cli = parse(&[
            "--config",
            "x.toml",
            "--listen",
            "127.0.0.1:1883",
            "--listen",
            "[::1]:1884",
            "--data-dir",
            "/tmp/d",
            "--root-password",
            "pw",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        assert_eq!(
            cli.listen,
            vec![
                "127.0.0.1:1883".parse::<SocketAddr>().unwrap(),
                "[::1]:1884".parse().unwrap()
            ]
        );
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(cli.root_password.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_listen_address_is_a_usage_error() {
        let e = parse(&["--listen", "localhost"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("expected IP:PORT"), "{e}");
    }

    #[test]
    fn sub_commands() {
        let cli = parse(&["config", "print"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Config {
                action: ConfigCommand::Print
            })
        ));
        let cli = parse(&["lot", "check", "a.lot", "b.lot"]).unwrap();
        match cli.command {
            Some(Command::Lot {
                action: LotCommand::Check { files },
            }) => assert_eq!(files, vec![PathBuf::from("a.lot"), PathBuf::from("b.lot")]),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["lot", "check"]).is_err(), "at least one file");
        assert!(parse(&["config", "nope"]).is_err());
    }
}
