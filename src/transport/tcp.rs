//! Plain TCP listeners: the accept loop that hands each socket to
//! [`Broker::serve_connection`](crate::broker::Broker::serve_connection).
//!
//! Owns only the socket-level admission (IP allow/deny lists, per-IP connection rate) and socket
//! options (`TCP_NODELAY`: MQTT packets are small and latency matters; the broker batches its
//! writes itself). The connection limit is enforced by the broker for every transport. Must not
//! touch MQTT. Start reading at [`serve_tcp`].

use crate::broker::ratelimit::{ConnectionRateLimiter, IpFilter};
use crate::broker::{Broker, ConnectionInfo};
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Who may open a connection: shared by every listener of the hub.
#[derive(Debug, Default)]
pub struct Admission {
    /// IP allow/deny lists; `None` admits everyone.
    pub filter: Option<IpFilter>,
    /// New connections per IP per window; `None` is unlimited.
    pub rate: Option<Mutex<ConnectionRateLimiter>>,
}

impl Admission {
    /// True when a socket from `ip` may proceed (and counts it against the rate).
    pub fn admits(&self, ip: IpAddr) -> bool {
        if let Some(filter) = &self.filter
            && !filter.allows(ip)
        {
            return false;
        }
        match &self.rate {
            Some(rate) => rate.lock().check(ip, tokio::time::Instant::now()),
            None => true,
        }
    }
}

/// Accepts connections on `listener` until the broker shuts down, one task per connection.
pub async fn serve_tcp(listener: TcpListener, broker: Broker, admission: Arc<Admission>) {
    let name: Arc<str> = match listener.local_addr() {
        Ok(addr) => Arc::from(format!("tcp:{addr}")),
        Err(_) => Arc::from("tcp"),
    };
    let shutdown = broker.shutdown_token();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !admission.admits(peer.ip()) {
            tracing::debug!(listener = %name, %peer, "connection refused by admission rules");
            continue;
        }
        let _ = socket.set_nodelay(true);
        let info = ConnectionInfo {
            peer,
            listener: name.clone(),
            tls_identity: None,
            accepted_at: tokio::time::Instant::now(),
        };
        broker.spawn_connection(socket, info);
    }
}
