//! The config files shipped in the repository, and the config documentation, against the parser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lothub::config::{Config, ConfigError, ListenerKind};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn embedded_default_is_config_lothub_toml() {
    let on_disk = std::fs::read_to_string(repo("config/lothub.toml")).unwrap();
    assert_eq!(Config::default_text(), on_disk);
    assert_eq!(
        Config::load(&repo("config/lothub.toml")).unwrap(),
        Config::default()
    );
}

#[test]
fn every_example_config_is_valid() {
    let dir = repo("config/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!config.listeners.is_empty());
            seen += 1;
        }
    }
    assert!(seen >= 1, "no example configs in {}", dir.display());
}

#[test]
fn a_full_config_file_loads_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(
        &path,
        r#"
data_dir = "/var/lib/lothub"
log_level = "debug"

[[listeners]]
kind = "tcp"
bind = "127.0.0.1:1883"

[[listeners]]
kind = "wss"
bind = "[::]:8443"
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
require_client_cert = true
path = "/ws"

[limits]
max_connections = 50
max_packet_size = 65536
receive_maximum = 10
max_inflight = 20
max_queued_messages = 30
max_queued_bytes = 40000
max_retained = 60
connect_timeout_secs = 3
max_keepalive_secs = 120
max_topic_length = 256
max_topic_levels = 8
publish_rate = 100
connection_rate = 5
max_user_properties = 4
default_session_expiry_secs = 3600
max_session_expiry_secs = 86400
topic_alias_maximum = 0

[auth]
allow_anonymous = false
root_password = "s3cret"

[sys]
interval_secs = 30

[lot]
files = ["rules/a.lot", "rules/b.lot"]

[network]
allow = ["10.0.0.0/8"]
deny = ["10.9.9.9"]

[metrics]
bind = "127.0.0.1:9100"
"#,
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/lothub"));
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.listeners.len(), 2);
    let wss = &c.listeners[1];
    assert_eq!(wss.kind, ListenerKind::Wss);
    assert_eq!(wss.bind, "[::]:8443".parse().unwrap());
    assert_eq!(wss.ws_path(), "/ws");
    assert!(wss.require_client_cert && !wss.use_identity_as_username);
    let l = &c.limits;
    assert_eq!(
        (
            l.max_connections,
            l.max_packet_size,
            l.receive_maximum,
            l.max_inflight
        ),
        (50, 65536, 10, 20)
    );
    assert_eq!(
        (l.max_queued_messages, l.max_queued_bytes, l.max_retained),
        (30, 40000, 60)
    );
    assert_eq!(l.connect_timeout().as_secs(), 3);
    assert_eq!(
        (l.max_keepalive_secs, l.max_topic_length, l.max_topic_levels),
        (120, 256, 8)
    );
    assert_eq!(
        (l.publish_rate, l.connection_rate, l.max_user_properties),
        (100, 5, 4)
    );
    assert_eq!(
        (l.default_session_expiry_secs, l.max_session_expiry_secs),
        (3600, 86400)
    );
    assert_eq!(l.topic_alias_maximum, 0);
    assert!(!c.auth.allow_anonymous);
    assert_eq!(c.auth.root_password.as_deref(), Some("s3cret"));
    assert_eq!(c.sys.interval().as_secs(), 30);
    assert_eq!(c.lot.files.len(), 2);
    assert!(c.network.permits("10.1.2.3".parse().unwrap()));
    assert!(!c.network.permits("10.9.9.9".parse().unwrap()));
    assert!(!c.network.permits("8.8.8.8".parse().unwrap()));
    assert_eq!(c.metrics.bind, Some("127.0.0.1:9100".parse().unwrap()));
}

#[test]
fn load_error_from_a_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[sys]\ninterval_secs = 0\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { .. }));
    assert_eq!(
        e.to_string(),
        "sys.interval_secs: must be at least 1 second, got 0"
    );
}

/// Every key of the default config, including the optional ones shown commented out, e.g.
/// `# root_password = ...`; listener keys are listed in a comment table and checked too.
fn documented_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for line in Config::default_text().lines() {
        let body = line.trim_start_matches('#').trim();
        if let Some((key, _)) = body.split_once(" = ")
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            keys.insert(key.to_string());
        }
    }
    for key in [
        "kind",
        "bind",
        "cert",
        "key",
        "client_ca",
        "require_client_cert",
        "use_identity_as_username",
        "path",
    ] {
        keys.insert(key.to_string());
    }
    keys
}

#[test]
fn docs_configuration_md_explains_every_key() {
    let doc = std::fs::read_to_string(repo("docs/configuration.md")).unwrap();
    let keys = documented_keys();
    assert!(keys.len() >= 30, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks {missing:?}"
    );
}
