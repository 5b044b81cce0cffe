//! The Prometheus endpoint against a hub started in-process: real MQTT traffic from rumqttc,
//! then `/metrics` read over a raw TCP socket.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::Duration;

use lothub::metrics::{MAX_REQUEST, MetricsServer, Sources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Starts the endpoint on 127.0.0.1:0 for `hub`; returns its address and the token stopping it.
async fn start_metrics(
    hub: &TestHub,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), Sources::new(hub.broker()))
        .await
        .expect("metrics bind");
    let addr = server.local_addr().unwrap();
    let token = CancellationToken::new();
    let task = tokio::spawn(server.serve(token.clone()));
    (addr, token, task)
}

/// Sends `request` and reads the whole response (the server closes after one).
async fn http(addr: SocketAddr, request: &[u8]) -> String {
    timeout(WAIT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect to metrics");
        s.write_all(request).await.expect("send request");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read response");
        String::from_utf8(out).expect("utf-8 response")
    })
    .await
    .expect("metrics response in time")
}

/// The value of the sample line `name value` in a 200 response body.
fn sample(response: &str, name: &str) -> u64 {
    let (_, body) = response.split_once("\r\n\r\n").expect("head and body");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
        .parse()
        .expect("integer sample")
}

#[tokio::test]
async fn scrape_reflects_mqtt_traffic() {
    let hub = start_hub().await;
    let (addr, token, task) = start_metrics(&hub).await;
    let (client, _) = v4_connect(v4_options(&hub, "metrics-pub")).await;
    const PUBLISHED: u64 = 5;
    for i in 0..PUBLISHED {
        client
            .client
            .publish(
                "metrics/t",
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await
            .unwrap();
    }
    // The counters are read at scrape time: poll until the hub has taken every PUBLISH.
    let response = within("publish counter reaches the published count", async {
        loop {
            let r = http(addr, b"GET /metrics HTTP/1.1\r\nHost: hub\r\n\r\n").await;
            if sample(&r, "lothub_publish_received_total") >= PUBLISHED {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    assert!(
        response.contains("\nlothub_clients_connected 1\n"),
        "{response}"
    );
    assert!(response.contains("# TYPE lothub_publish_received_total counter\n"));
    assert!(
        sample(&response, "lothub_messages_received_total") > PUBLISHED,
        "CONNECT and PUBLISHes"
    );
    assert!(sample(&response, "lothub_bytes_received_total") > 0);
    assert_eq!(sample(&response, "lothub_connections_open"), 1);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(length, body.len(), "Content-Length matches the body");

    drop(client);
    within("clients_connected back to 0", async {
        loop {
            let r = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
            if sample(&r, "lothub_clients_connected") == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    token.cancel();
    timeout(WAIT, task).await.expect("server stops").unwrap();
    assert!(
        timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .is_err(),
        "no longer listening after shutdown"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let hub = start_hub().await;
    let (addr, token, _task) = start_metrics(&hub).await;
    let r = http(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    assert!(!r.contains("lothub_"), "{r}");
    let r = http(addr, b"GET /metrics/x HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    let r = http(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    let r = http(addr, b"hello\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    token.cancel();
    hub.shutdown().await;
}

#[tokio::test]
async fn oversize_request_is_closed_without_metrics() {
    let hub = start_hub().await;
    let (addr, token, _task) = start_metrics(&hub).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A request line that never ends: the server must stop reading at MAX_REQUEST.
    let mut big = b"GET /metrics?".to_vec();
    big.resize(MAX_REQUEST * 4, b'a');
    // The server may close (and reset) before everything is written: a write error is fine.
    let _ = timeout(WAIT, s.write_all(&big))
        .await
        .expect("write bounded");
    let mut out = Vec::new();
    // Well before the read timeout: the close comes from the size cap, not from the clock.
    let read = timeout(lothub::metrics::READ_TIMEOUT / 2, s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection instead of waiting for more");
    let text = String::from_utf8_lossy(&out);
    match read {
        Ok(_) => assert!(
            out.is_empty() || text.starts_with("HTTP/1.1 431 "),
            "{text}"
        ),
        // Closing with unread bytes makes the kernel send RST, which may arrive first.
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(
        !text.contains("lothub_"),
        "no metrics for an oversize request"
    );
    token.cancel();
    hub.shutdown().await;
}

#[tokio::test]
async fn silent_client_is_dropped_after_the_read_timeout() {
    let hub = start_hub().await;
    let (addr, token, _task) = start_metrics(&hub).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metr").await.unwrap();
    let mut out = Vec::new();
    let n = timeout(
        lothub::metrics::READ_TIMEOUT + Duration::from_secs(3),
        s.read_to_end(&mut out),
    )
    .await
    .expect("closed after the read timeout")
    .unwrap_or(0);
    assert_eq!(n, 0, "no response to an unfinished request");
    token.cancel();
    hub.shutdown().await;
}
