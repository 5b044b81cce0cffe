//! Unit tests: the embedded default, every validation rule, and key-naming errors.

use super::*;

fn err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected an error for:\n{text}\ngot {c:?}"),
        Err(e) => e,
    }
}

/// Asserts that `text` is refused with an error about `key` whose message contains `needle`.
fn refused(text: &str, key: &str, needle: &str) {
    let e = err(text);
    assert_eq!(e.key(), Some(key), "wrong key in: {e}");
    let msg = e.to_string();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
    assert!(
        msg.starts_with(key) || msg.contains(&format!("\"{key}\"")),
        "{msg}"
    );
}

fn limits(line: &str) -> String {
    format!("[limits]\n{line}\n")
}

#[test]
fn embedded_default_parses_to_the_documented_defaults() {
    let c = Config::from_toml_str(Config::default_text()).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.log_level, "info");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].kind, ListenerKind::Tcp);
    assert_eq!(c.listeners[0].bind, "0.0.0.0:1883".parse().unwrap());
    assert_eq!(c.limits.max_packet_size, 1_048_576);
    assert_eq!(c.limits.max_queued_messages, 10_000);
    assert_eq!(c.limits.connect_timeout(), Duration::from_secs(10));
    assert_eq!(c.limits.max_topic_levels, 200);
    assert_eq!(c.limits.publish_rate, 0);
    assert_eq!(c.limits.default_session_expiry_secs, 604_800);
    assert!(c.auth.allow_anonymous);
    assert_eq!(c.auth.root_password, None);
    assert_eq!(c.sys.interval(), Duration::from_secs(10));
    assert!(c.lot.files.is_empty());
    assert!(c.network.allow.is_empty() && c.network.deny.is_empty());
    assert_eq!(c.metrics.bind, None);
}

#[test]
fn empty_file_means_all_defaults() {
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
}

#[test]
fn default_text_shows_every_default_value() {
    // Each `key = value` line of the embedded file must state the value the code defaults to:
    // drop that one line and the parsed config must not change.
    let text = Config::default_text();
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let is_assignment = !line.starts_with('#') && !line.starts_with('[') && line.contains('=');
        let in_listener =
            lines[..i].iter().rev().find(|l| l.starts_with('[')) == Some(&"[[listeners]]");
        if !is_assignment || in_listener {
            continue;
        }
        let mut rest = lines.clone();
        rest.remove(i);
        let parsed = Config::from_toml_str(&rest.join("\n")).unwrap();
        assert_eq!(
            parsed,
            Config::default(),
            "line {:?} differs from the default",
            line
        );
        checked += 1;
    }
    assert!(checked >= 24, "only {checked} keys checked");
}

#[test]
fn commented_optional_keys_are_valid_when_uncommented() {
    let text = Config::default_text()
        .replace(
            "# root_password = \"change-me\"",
            "root_password = \"change-me\"",
        )
        .replace("# bind = \"127.0.0.1:9090\"", "bind = \"127.0.0.1:9090\"");
    let c = Config::from_toml_str(&text).unwrap();
    assert_eq!(c.auth.root_password.as_deref(), Some("change-me"));
    assert_eq!(c.metrics.bind, Some("127.0.0.1:9090".parse().unwrap()));
}

#[test]
fn commented_listener_examples_are_valid() {
    // The "Examples (not active)" block, uncommented, must parse as written.
    let text = Config::default_text();
    let start = text.find("# Examples (not active):").unwrap();
    let block: String = text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("#   ") || *l == "#")
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim()))
        .collect();
    let c = Config::from_toml_str(&block).unwrap();
    assert_eq!(c.listeners.len(), 2);
    let tls = &c.listeners[0];
    assert_eq!(tls.kind, ListenerKind::Tls);
    assert!(tls.require_client_cert && tls.use_identity_as_username);
    assert_eq!(tls.client_ca, Some(PathBuf::from("certs/ca.pem")));
    assert_eq!(c.listeners[1].kind, ListenerKind::Ws);
    assert_eq!(c.listeners[1].ws_path(), "/mqtt");
}

#[test]
fn unknown_keys_are_named_with_their_place() {
    let e = err("limts = 3\n");
    assert_eq!(e.key(), Some("limts"));
    let msg = e.to_string();
    assert!(
        msg.starts_with("unknown key \"limts\" (at top level)"),
        "{msg}"
    );
    assert!(msg.contains("limits"), "suggests the known keys: {msg}");

    let msg = err("[limits]\nmax_packet_sise = 2048\n").to_string();
    assert!(
        msg.starts_with("unknown key \"max_packet_sise\" (in [limits])"),
        "{msg}"
    );

    let text = "[[listeners]]\nkind = \"tcp\"\nbind = \"0.0.0.0:1\"\n\
                [[listeners]]\nkind = \"tcp\"\nbind = \"0.0.0.0:2\"\nport = 3\n";
    let msg = err(text).to_string();
    assert!(
        msg.starts_with("unknown key \"port\" (in listeners[1])"),
        "{msg}"
    );

    let msg = err("[nonsense]\n").to_string();
    assert!(
        msg.starts_with("unknown key \"nonsense\" (at top level)"),
        "{msg}"
    );
}

#[test]
fn wrong_types_name_the_key() {
    refused(
        &limits("max_packet_size = \"big\""),
        "limits.max_packet_size",
        "whole number",
    );
    refused(
        &limits("receive_maximum = 70000"),
        "limits.receive_maximum",
        "0 to 65535",
    );
    refused(
        &limits("max_connections = -1"),
        "limits.max_connections",
        "-1",
    );
    refused(
        "[auth]\nallow_anonymous = \"yes\"\n",
        "auth.allow_anonymous",
        "true or false",
    );
    refused("limits = 5\n", "limits", "invalid type");
    refused("[lot]\nfiles = \"a.lot\"\n", "lot.files", "invalid type");
    // Dotted keys and inline tables are located by the same spans.
    refused(
        "limits.max_topic_levels = \"x\"\n",
        "limits.max_topic_levels",
        "whole number",
    );
    refused(
        "sys = { interval_secs = true }\n",
        "sys.interval_secs",
        "invalid type",
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = err("data_dir = \"./data\"\nlog_level = \n");
    let ConfigError::Syntax { line, .. } = e else {
        panic!("expected a syntax error, got {e:?}");
    };
    assert_eq!(line, 2);
    assert!(
        e.to_string().starts_with("TOML syntax error at line 2"),
        "{e}"
    );
}

fn listener(body: &str) -> String {
    format!("[[listeners]]\n{body}\n")
}

#[test]
fn listener_kind_must_be_known() {
    let text = format!(
        "{}{}",
        listener("kind = \"tcp\"\nbind = \"0.0.0.0:1883\""),
        listener("kind = \"foo\"\nbind = \"0.0.0.0:1884\"")
    );
    let e = err(&text);
    assert_eq!(
        e.to_string(),
        "listeners[1].kind: unknown listener kind \"foo\", expected tcp, tls, ws or wss"
    );
}

#[test]
fn listener_required_keys() {
    refused(
        &listener("kind = \"tcp\""),
        "listeners[0].bind",
        "required key is missing",
    );
    refused(
        &listener("bind = \"0.0.0.0:1\""),
        "listeners[0].kind",
        "required key is missing",
    );
    refused("listeners = []\n", "listeners", "at least one listener");
}

#[test]
fn listener_bind_must_be_ip_and_port() {
    for bad in ["localhost:1883", "0.0.0.0", "1883", "0.0.0.0:99999", ""] {
        let text = listener(&format!("kind = \"tcp\"\nbind = \"{bad}\""));
        refused(&text, "listeners[0].bind", "expected IP:PORT");
    }
    let c = Config::from_toml_str(&listener("kind = \"tcp\"\nbind = \"[::1]:1883\"")).unwrap();
    assert_eq!(c.listeners[0].bind, "[::1]:1883".parse().unwrap());
}

#[test]
fn duplicate_bind_is_refused_except_port_zero() {
    let twice = |addr: &str| {
        format!(
            "{}{}",
            listener(&format!("kind = \"tcp\"\nbind = \"{addr}\"")),
            listener(&format!("kind = \"ws\"\nbind = \"{addr}\""))
        )
    };
    refused(
        &twice("0.0.0.0:1883"),
        "listeners[1].bind",
        "already used by listeners[0]",
    );
    assert_eq!(
        Config::from_toml_str(&twice("127.0.0.1:0"))
            .unwrap()
            .listeners
            .len(),
        2
    );
}

#[test]
fn tls_listener_needs_cert_and_key() {
    refused(
        &listener("kind = \"tls\"\nbind = \"0.0.0.0:8883\"\nkey = \"k.pem\""),
        "listeners[0].cert",
        "required for a tls listener",
    );
    refused(
        &listener("kind = \"wss\"\nbind = \"0.0.0.0:8883\"\ncert = \"c.pem\""),
        "listeners[0].key",
        "required for a wss listener",
    );
    refused(
        &listener("kind = \"tls\"\nbind = \"0.0.0.0:8883\"\ncert = \"\"\nkey = \"k\""),
        "listeners[0].cert",
        "must not be empty",
    );
}

#[test]
fn client_cert_options_need_client_ca() {
    let base = "kind = \"tls\"\nbind = \"0.0.0.0:8883\"\ncert = \"c\"\nkey = \"k\"";
    for opt in ["require_client_cert", "use_identity_as_username"] {
        let text = listener(&format!("{base}\n{opt} = true"));
        refused(&text, &format!("listeners[0].{opt}"), "needs client_ca");
        let ok = listener(&format!("{base}\n{opt} = true\nclient_ca = \"ca\""));
        assert!(Config::from_toml_str(&ok).is_ok());
    }
}

#[test]
fn tls_keys_are_refused_on_plain_listeners() {
    for (kind, opt) in [
        ("tcp", "cert = \"c\""),
        ("ws", "key = \"k\""),
        ("tcp", "client_ca = \"ca\""),
        ("ws", "require_client_cert = true"),
        ("tcp", "use_identity_as_username = true"),
    ] {
        let name = opt.split(' ').next().unwrap();
        let text = listener(&format!("kind = \"{kind}\"\nbind = \"0.0.0.0:1\"\n{opt}"));
        refused(
            &text,
            &format!("listeners[0].{name}"),
            "only allowed on tls and wss",
        );
    }
}

#[test]
fn websocket_path_rules() {
    refused(
        &listener("kind = \"tcp\"\nbind = \"0.0.0.0:1\"\npath = \"/mqtt\""),
        "listeners[0].path",
        "only allowed on ws and wss",
    );
    refused(
        &listener("kind = \"ws\"\nbind = \"0.0.0.0:1\"\npath = \"mqtt\""),
        "listeners[0].path",
        "must start with \"/\"",
    );
    let c = Config::from_toml_str(&listener(
        "kind = \"ws\"\nbind = \"0.0.0.0:1\"\npath = \"/x\"",
    ))
    .unwrap();
    assert_eq!(c.listeners[0].ws_path(), "/x");
}

#[test]
fn limits_that_must_be_positive() {
    for key in [
        "max_connections",
        "receive_maximum",
        "max_inflight",
        "max_queued_messages",
        "max_queued_bytes",
        "max_retained",
        "connect_timeout_secs",
        "max_keepalive_secs",
        "max_topic_length",
        "max_topic_levels",
        "max_user_properties",
        "max_session_expiry_secs",
        "default_session_expiry_secs",
    ] {
        refused(
            &limits(&format!("{key} = 0")),
            &format!("limits.{key}"),
            "must be at least 1",
        );
    }
}

#[test]
fn rates_may_be_zero_meaning_off() {
    let c = Config::from_toml_str(&limits("publish_rate = 0\nconnection_rate = 0")).unwrap();
    assert_eq!((c.limits.publish_rate, c.limits.connection_rate), (0, 0));
    let c = Config::from_toml_str(&limits("publish_rate = 50\nconnection_rate = 5")).unwrap();
    assert_eq!((c.limits.publish_rate, c.limits.connection_rate), (50, 5));
}

#[test]
fn max_packet_size_bounds() {
    let e = err(&limits("max_packet_size = 100"));
    assert_eq!(
        e.to_string(),
        "limits.max_packet_size: must be at least 1024 bytes, got 100"
    );
    refused(
        &limits("max_packet_size = 268435456"),
        "limits.max_packet_size",
        "at most 268435455",
    );
    assert!(Config::from_toml_str(&limits("max_packet_size = 268435455")).is_ok());
}

#[test]
fn default_session_expiry_is_capped_by_max() {
    refused(
        &limits("max_session_expiry_secs = 60\ndefault_session_expiry_secs = 120"),
        "limits.default_session_expiry_secs",
        "at most 60 seconds",
    );
}

#[test]
fn other_sections_validation() {
    refused("data_dir = \"\"\n", "data_dir", "must not be empty");
    refused("log_level = \"\"\n", "log_level", "must not be empty");
    refused(
        "log_level = \"info,=[\"\n",
        "log_level",
        "invalid log filter",
    );
    assert!(Config::from_toml_str("log_level = \"warn,lothub::broker=debug\"\n").is_ok());
    refused(
        "[auth]\nroot_password = \"\"\n",
        "auth.root_password",
        "must not be empty",
    );
    refused(
        "[sys]\ninterval_secs = 0\n",
        "sys.interval_secs",
        "at least 1",
    );
    refused(
        "[lot]\nfiles = [\"a.lot\", \"\"]\n",
        "lot.files[1]",
        "must not be empty",
    );
    refused(
        "[network]\nallow = [\"10.0.0.0/8\", \"nope\"]\n",
        "network.allow[1]",
        "\"nope\"",
    );
    refused(
        "[network]\ndeny = [\"10.0.0.0/40\"]\n",
        "network.deny[0]",
        "longer than 32 bits",
    );
    refused(
        "[metrics]\nbind = \"x\"\n",
        "metrics.bind",
        "expected IP:PORT",
    );
    refused(
        "[metrics]\nbind = \"0.0.0.0:1883\"\n",
        "metrics.bind",
        "already used by listeners[0]",
    );
}

#[test]
fn network_allow_and_deny() {
    let c = Config::from_toml_str("[network]\nallow = [\"10.0.0.0/8\"]\ndeny = [\"10.0.0.66\"]\n")
        .unwrap();
    assert!(c.network.permits("10.1.1.1".parse().unwrap()));
    assert!(
        !c.network.permits("10.0.0.66".parse().unwrap()),
        "deny wins"
    );
    assert!(
        !c.network.permits("192.168.0.1".parse().unwrap()),
        "not in allow list"
    );
    assert!(
        Config::default()
            .network
            .permits("192.168.0.1".parse().unwrap())
    );
}

#[test]
fn check_files_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, "x").unwrap();
    let text = listener(&format!(
        "kind = \"tls\"\nbind = \"0.0.0.0:8883\"\ncert = \"{}\"\nkey = \"{}\"",
        cert.display(),
        dir.path().join("missing.key").display()
    ));
    let c = Config::from_toml_str(&text).unwrap();
    let e = c.check_files().unwrap_err();
    assert_eq!(e.key(), Some("listeners[0].key"));
    assert!(e.to_string().contains("missing.key"), "{e}");
    assert!(Config::default().check_files().is_ok());
}

#[test]
fn load_reports_unreadable_file() {
    let e = Config::load(Path::new("/nonexistent/lothub.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/lothub.toml"), "{e}");
}
