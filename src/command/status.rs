//! `-status`: version, uptime, clients, subscriptions, retained count and message rates, read
//! from the broker's [`crate::broker::sys::Stats`]. Needs nothing beyond CommandCall.

use serde_json::json;

use super::{Call, Reply};

pub(super) fn apply(call: &Call<'_>) -> Reply {
    let cmd = call.command.as_str();
    if let Err(e) = call.request.args().finish("-status") {
        return Reply::fail(cmd, e.0);
    }
    let Some(broker) = call.runtime.broker() else {
        return Reply::fail(cmd, "the broker is not running");
    };
    broker.refresh_stats();
    let stats = broker.stats();
    let uptime = stats.uptime_secs();
    let received = stats.publish_received_count();
    let sent = stats.publish_sent_count();
    // Averages since start: a rate over a window would need a sampler of its own; the `$SYS`
    // counters give the instantaneous picture to whoever polls them.
    let per_sec = |n: u64| {
        if uptime == 0 {
            n as f64
        } else {
            (n as f64 / uptime as f64 * 100.0).round() / 100.0
        }
    };
    let rendered: std::collections::HashMap<&str, String> = stats.render().into_iter().collect();
    let gauge = |key: &str| {
        rendered
            .get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let data = json!({
        "name": "lothub",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": uptime,
        "clients": {
            "connected": stats.clients_connected(),
            "disconnected": stats.clients_disconnected(),
            "maximum": stats.clients_maximum(),
        },
        "subscriptions": gauge("$SYS/broker/subscriptions/count"),
        "retained": gauge("$SYS/broker/messages/retained/count"),
        "messages": {
            "received": received,
            "sent": sent,
            "dropped": stats.publish_dropped_count(),
            "receivedPerSecond": per_sec(received),
            "sentPerSecond": per_sec(sent),
        },
    });
    Reply::ok(
        cmd,
        format!(
            "lothub {} up {uptime} s, {} client(s) connected",
            env!("CARGO_PKG_VERSION"),
            stats.clients_connected()
        ),
    )
    .with_data(data)
}
