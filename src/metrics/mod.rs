//! The optional Prometheus endpoint (`[metrics] bind`): a deliberately tiny HTTP/1.1 server that
//! answers `GET /metrics` with the text exposition format (version 0.0.4) and nothing else.
//!
//! Owns: the socket of the endpoint and the gathering of counters at scrape time ([`Sources`]).
//! Must not touch: broker state beyond its public read-only handles (no locks held across I/O,
//! no counters of its own). Start reading at [`MetricsServer::serve`]; the format itself is
//! the pure [`render`] in `render.rs`.
//!
//! Why no HTTP crate: the endpoint reads one request line and writes one response per connection
//! (`Connection: close`). Requests are capped at [`MAX_REQUEST`] bytes and [`READ_TIMEOUT`], and at
//! most [`MAX_CONNECTIONS`] are served at once, so a scraper-shaped attacker cannot hold memory.

mod render;

pub use render::{BROKER, Extra, Kind, RouteCounters, render};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::runtime::Runtime;
use crate::storage::RedbStore;

/// Longest request head (request line plus headers) read; a longer one is refused with 431.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole exchange, including writing the response to a slow reader.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections served at once; others are closed on accept.
pub const MAX_CONNECTIONS: usize = 32;
/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Errors of the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen on {addr} for metrics")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where the numbers come from at each scrape. Only the broker is required.
#[derive(Clone)]
pub struct Sources {
    broker: Broker,
    runtime: Option<Runtime>,
    store: Option<Arc<RedbStore>>,
}

impl Sources {
    pub fn new(broker: Broker) -> Sources {
        Sources {
            broker,
            runtime: None,
            store: None,
        }
    }

    /// Adds the LOT engine and route counters.
    pub fn with_runtime(mut self, runtime: Runtime) -> Sources {
        self.runtime = Some(runtime);
        self
    }

    /// Adds the storage writer's counters.
    pub fn with_store(mut self, store: Arc<RedbStore>) -> Sources {
        self.store = Some(store);
        self
    }

    /// The current `/metrics` body. Refreshes the broker's gauges first, as the `$SYS` task does.
    pub fn collect(&self) -> String {
        self.broker.refresh_stats();
        let extra = Extra {
            connections: Some(self.broker.connection_count() as u64),
            sessions: Some(self.broker.session_count() as u64),
            engine: self.runtime.as_ref().map(|r| r.engine().stats()),
            store: self.store.as_ref().map(|s| s.stats()),
            routes: self
                .runtime
                .as_ref()
                .map(route_counters)
                .unwrap_or_default(),
        };
        render(&self.broker.stats(), &extra)
    }
}

/// Route counters read from the routes' status JSON (the one public view of them).
fn route_counters(runtime: &Runtime) -> Vec<RouteCounters> {
    let n = |v: &serde_json::Value, key: &str| v["messages"][key].as_u64().unwrap_or(0);
    runtime
        .routes()
        .statuses()
        .iter()
        .filter_map(|v| {
            Some(RouteCounters {
                name: v["name"].as_str()?.to_string(),
                forwarded: n(v, "forwarded"),
                buffered: n(v, "buffered"),
                dropped: n(v, "dropped"),
                failed: n(v, "failed"),
            })
        })
        .collect()
}

/// A bound endpoint, not yet serving.
pub struct MetricsServer {
    listener: TcpListener,
    sources: Sources,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr, sources: Sources) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer { listener, sources })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `shutdown` is cancelled; each connection runs in its own task, which also
    /// ends at shutdown; returns once they have all ended.
    pub async fn serve(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        // Connection tasks hold the sources (runtime, store): shutdown waits for them so that
        // nothing keeps the data file open once this returns.
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => {
                    tasks.close();
                    tasks.wait().await;
                    return;
                }
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "metrics: too many connections, closing");
                continue;
            };
            let (sources, shutdown) = (self.sources.clone(), shutdown.clone());
            tasks.spawn(async move {
                let _slot = slot;
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    r = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(stream, &sources)) => {
                        if let Ok(Err(e)) = r {
                            tracing::debug!(%peer, error = %e, "metrics connection ended");
                        }
                    }
                }
            });
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    MethodNotAllowed,
    BadRequest,
    TooLarge,
}

/// Reads one request head, writes one response, closes.
async fn exchange(mut stream: TcpStream, sources: &Sources) -> std::io::Result<()> {
    let route = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => route(&head),
        Ok(Ok(None)) => Route::TooLarge,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let (status, content_type, body) = match route {
        Route::Metrics => ("200 OK", CONTENT_TYPE, sources.collect()),
        Route::NotFound => ("404 Not Found", "text/plain", "not found\n".into()),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".into(),
        ),
        Route::BadRequest => ("400 Bad Request", "text/plain", "bad request\n".into()),
        Route::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n".into(),
        ),
    };
    let allow = if route == Route::MethodNotAllowed {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The request head (up to the blank line), `None` when it exceeds [`MAX_REQUEST`]. A client
/// that closes early yields what it sent, which then fails to parse as a request.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Some(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

/// Only the request line matters (RFC 9112 §3): `METHOD SP TARGET SP HTTP/1.x`.
fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics,
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\n\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe /metrics HTTP/1.1\r\n"), Route::BadRequest);
    }
}
