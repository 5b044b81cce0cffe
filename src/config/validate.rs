//! Value checks that serde's types cannot express: ranges, keys that only make sense for some
//! listener kinds, cross-key rules. Each check names its key in the error.

use super::{Config, ConfigError, ListenerConfig};

/// Requires `value >= min`, naming `key` otherwise.
fn at_least<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    min: T,
    unit: &str,
) -> Result<(), ConfigError> {
    if value < min {
        // "at least 1 second", "at least 1024 bytes"
        let min_text = min.to_string();
        let unit = match unit.strip_suffix('s') {
            Some(singular) if min_text == "1" => singular,
            _ => unit,
        };
        return Err(ConfigError::invalid(
            key,
            format!("must be at least {min_text}{unit}, got {value}"),
        ));
    }
    Ok(())
}

/// Requires `value` to lie in `min..=max`, naming `key` otherwise.
fn between<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), ConfigError> {
    at_least(key, value, min, unit)?;
    if value > max {
        return Err(ConfigError::invalid(
            key,
            format!("must be at most {max}{unit}, got {value}"),
        ));
    }
    Ok(())
}

pub(super) fn validate(c: &Config) -> Result<(), ConfigError> {
    if c.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid("data_dir", "must not be empty"));
    }
    if c.log_level.trim().is_empty() {
        return Err(ConfigError::invalid(
            "log_level",
            "must not be empty; use a level such as \"info\"",
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log_level) {
        return Err(ConfigError::invalid(
            "log_level",
            format!("invalid log filter \"{}\": {e}", c.log_level),
        ));
    }
    validate_listeners(&c.listeners)?;
    validate_limits(c)?;
    if let Some(pw) = &c.auth.root_password
        && pw.is_empty()
    {
        return Err(ConfigError::invalid(
            "auth.root_password",
            "must not be empty; leave the key out to use the default",
        ));
    }
    at_least("sys.interval_secs", c.sys.interval_secs, 1, " seconds")?;
    for (i, file) in c.lot.files.iter().enumerate() {
        if file.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                format!("lot.files[{i}]"),
                "must not be empty",
            ));
        }
    }
    if let Some(bind) = c.metrics.bind
        && let Some(i) = c.listeners.iter().position(|l| l.bind == bind)
    {
        return Err(ConfigError::invalid(
            "metrics.bind",
            format!("{bind} is already used by listeners[{i}]"),
        ));
    }
    Ok(())
}

fn validate_listeners(listeners: &[ListenerConfig]) -> Result<(), ConfigError> {
    if listeners.is_empty() {
        return Err(ConfigError::invalid(
            "listeners",
            "at least one listener is required",
        ));
    }
    for (i, l) in listeners.iter().enumerate() {
        let key = |name: &str| format!("listeners[{i}].{name}");
        // Port 0 (pick any free port) may repeat; a fixed address may not.
        if l.bind.port() != 0
            && let Some(j) = listeners[..i].iter().position(|o| o.bind == l.bind)
        {
            return Err(ConfigError::invalid(
                key("bind"),
                format!("{} is already used by listeners[{j}]", l.bind),
            ));
        }
        if l.kind.is_tls() {
            for (name, value) in [("cert", &l.cert), ("key", &l.key)] {
                match value {
                    None => {
                        return Err(ConfigError::invalid(
                            key(name),
                            format!("required for a {} listener", l.kind),
                        ));
                    }
                    Some(p) if p.as_os_str().is_empty() => {
                        return Err(ConfigError::invalid(key(name), "must not be empty"));
                    }
                    Some(_) => {}
                }
            }
            if l.client_ca.is_none() {
                for (name, on) in [
                    ("require_client_cert", l.require_client_cert),
                    ("use_identity_as_username", l.use_identity_as_username),
                ] {
                    if on {
                        return Err(ConfigError::invalid(
                            key(name),
                            "needs client_ca (the CA that client certificates are checked against)",
                        ));
                    }
                }
            }
        } else {
            let tls_only = [
                ("cert", l.cert.is_some()),
                ("key", l.key.is_some()),
                ("client_ca", l.client_ca.is_some()),
                ("require_client_cert", l.require_client_cert),
                ("use_identity_as_username", l.use_identity_as_username),
            ];
            if let Some((name, _)) = tls_only.iter().find(|(_, set)| *set) {
                return Err(ConfigError::invalid(
                    key(name),
                    format!(
                        "only allowed on tls and wss listeners, this one is {}",
                        l.kind
                    ),
                ));
            }
        }
        match (&l.path, l.kind.is_websocket()) {
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    key("path"),
                    format!(
                        "only allowed on ws and wss listeners, this one is {}",
                        l.kind
                    ),
                ));
            }
            (Some(p), true) if !p.starts_with('/') => {
                return Err(ConfigError::invalid(
                    key("path"),
                    format!("must start with \"/\", got \"{p}\""),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_limits(c: &Config) -> Result<(), ConfigError> {
    let l = &c.limits;
    at_least("limits.max_connections", l.max_connections, 1, "")?;
    // MQTT 5 section 2.2.3: the largest packet the Remaining Length can describe is 268,435,455
    // bytes; below 1 KiB a CONNECT with a will or user properties no longer fits.
    between(
        "limits.max_packet_size",
        l.max_packet_size,
        1024,
        268_435_455,
        " bytes",
    )?;
    // MQTT 5 section 3.2.2.3.3: Receive Maximum 0 is a protocol error.
    at_least("limits.receive_maximum", l.receive_maximum, 1, "")?;
    at_least("limits.max_inflight", l.max_inflight, 1, "")?;
    at_least("limits.max_queued_messages", l.max_queued_messages, 1, "")?;
    at_least("limits.max_queued_bytes", l.max_queued_bytes, 1, " bytes")?;
    at_least("limits.max_retained", l.max_retained, 1, "")?;
    at_least(
        "limits.connect_timeout_secs",
        l.connect_timeout_secs,
        1,
        " seconds",
    )?;
    // MQTT 5 section 3.2.2.3.14: Server Keep Alive 0 would switch keep-alive off for everyone.
    at_least(
        "limits.max_keepalive_secs",
        l.max_keepalive_secs,
        1,
        " seconds",
    )?;
    at_least("limits.max_topic_length", l.max_topic_length, 1, " bytes")?;
    at_least("limits.max_topic_levels", l.max_topic_levels, 1, "")?;
    at_least("limits.max_user_properties", l.max_user_properties, 1, "")?;
    at_least(
        "limits.max_session_expiry_secs",
        l.max_session_expiry_secs,
        1,
        " seconds",
    )?;
    between(
        "limits.default_session_expiry_secs",
        l.default_session_expiry_secs,
        1,
        l.max_session_expiry_secs,
        " seconds (limits.max_session_expiry_secs)",
    )?;
    Ok(())
}

pub(super) fn check_files(c: &Config) -> Result<(), ConfigError> {
    let check = |key: String, path: &std::path::Path| -> Result<(), ConfigError> {
        std::fs::File::open(path).map(|_| ()).map_err(|e| {
            ConfigError::invalid(key, format!("cannot read \"{}\": {e}", path.display()))
        })
    };
    for (i, l) in c.listeners.iter().enumerate() {
        for (name, path) in [
            ("cert", &l.cert),
            ("key", &l.key),
            ("client_ca", &l.client_ca),
        ] {
            if let Some(p) = path {
                check(format!("listeners[{i}].{name}"), p)?;
            }
        }
    }
    for (i, f) in c.lot.files.iter().enumerate() {
        check(format!("lot.files[{i}]"), f)?;
    }
    Ok(())
}
