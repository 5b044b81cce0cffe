//! `-backup` and `-restore <json>`.
//!
//! `-backup` exports the whole configuration (users with their hashes, every LOT definition,
//! env, secrets still sealed with the hub's key) and sends it *only* to the request's MQTT 5
//! Response Topic: `$SYS/Coreflux/Command/Output` is readable by every administrator and gets a
//! summary (counts) instead. Without a Response Topic the command is refused.
//!
//! `-restore <json>` replaces the configuration with such a document, atomically, through the
//! runtime (which must also swap its live users and definitions).

use serde_json::{Value, json};

use super::{Call, Outcome, Reply, Verb};
use crate::storage::ConfigSnapshot;

pub(super) fn apply(verb: Verb, call: &Call<'_>) -> Outcome {
    match verb {
        Verb::Backup => backup(call),
        _ => restore(call).into(),
    }
}

fn summary(s: &ConfigSnapshot) -> Value {
    json!({
        "format": s.format,
        "users": s.users.len(),
        "definitions": s.definitions.len(),
        "env": s.env.len(),
        "secrets": s.secrets.len(),
    })
}

fn summary_text(s: &ConfigSnapshot) -> String {
    format!(
        "{} user(s), {} definition(s), {} env variable(s), {} secret(s)",
        s.users.len(),
        s.definitions.len(),
        s.env.len(),
        s.secrets.len()
    )
}

fn backup(call: &Call<'_>) -> Outcome {
    let cmd = call.command.as_str();
    if let Err(e) = call.request.args().finish("-backup") {
        return Reply::fail(cmd, e.0).into();
    }
    if !call.has_response_topic {
        return Reply::fail(
            cmd,
            "-backup needs an MQTT 5 request with a Response Topic: the backup holds password \
             hashes and is sent only there, never to $SYS/Coreflux/Command/Output",
        )
        .into();
    }
    match call.runtime.storage().export_configuration() {
        Ok(snapshot) => Outcome {
            reply: Reply::ok(
                cmd,
                format!(
                    "Backup sent to the response topic: {}",
                    summary_text(&snapshot)
                ),
            )
            .with_data(summary(&snapshot)),
            private_data: Some(serde_json::to_value(&snapshot).unwrap_or_default()),
        },
        Err(e) => Reply::fail(cmd, format!("backup failed: {e}")).into(),
    }
}

fn restore(call: &Call<'_>) -> Reply {
    let cmd = call.command.as_str();
    let text = call.request.args().rest();
    if text.trim().is_empty() {
        return Reply::fail(cmd, "missing the backup JSON; usage: -restore <json>");
    }
    let snapshot: ConfigSnapshot = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            return Reply::fail(
                cmd,
                format!(
                    "not a lothub backup: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    match call.runtime.restore_configuration(&snapshot) {
        Ok(()) => Reply::ok(
            cmd,
            format!("Configuration restored: {}", summary_text(&snapshot)),
        )
        .with_data(summary(&snapshot)),
        Err(e) => Reply::fail(
            cmd,
            format!("Configuration not restored (nothing changed): {e}"),
        ),
    }
}
