//! MQTT over WebSocket (ws) and over secure WebSocket (wss) end to end: a hub in-process on
//! 127.0.0.1, a tokio-tungstenite client, MQTT spoken with lothub's own codec through
//! `lothub::transport::ws::WsByteStream` (which works for the client side of a WebSocket too).

mod tls_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use lothub::app::{Hub, HubOptions};
use lothub::broker::{ClientInfo, Hooks};
use lothub::protocol::encode;
use lothub::protocol::packet::{Connect, Packet, Properties, ProtocolVersion};
use lothub::transport::accept::{self, HandshakeLimits, WsHandshake, WssHandshake};
use lothub::transport::reload::ReloadableTls;
use lothub::transport::tls::TlsSettings;
use lothub::transport::ws::{WsByteStream, WsSettings};
use tls_support::{Mqtt, Pki, ServerFiles, WAIT, client_config, tls_connect};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::{self, Message};

const LIMITS: HandshakeLimits = HandshakeLimits {
    timeout: Duration::from_secs(5),
    max_concurrent: 16,
};

/// A hub with one plain TCP listener (to check cross-transport delivery) and no `$SYS` noise.
async fn hub() -> Hub {
    let options = HubOptions {
        tcp_listeners: vec!["127.0.0.1:0".parse().unwrap()],
        sys_interval: None,
        ..HubOptions::default()
    };
    Hub::start(options).await.expect("hub starts")
}

async fn add_ws(hub: &mut Hub) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshake = WsHandshake {
        ws: Arc::new(WsSettings::default()),
    };
    hub.spawn(accept::serve(
        listener,
        handshake,
        LIMITS,
        hub.broker(),
        hub.admission(),
    ));
    addr
}

async fn add_wss(hub: &mut Hub, files: &ServerFiles) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ReloadableTls::load(TlsSettings {
        cert: files.cert.clone(),
        key: files.key.clone(),
        client_ca: None,
        require_client_cert: false,
        use_identity_as_username: false,
    })
    .unwrap();
    let handshake = WssHandshake {
        tls,
        ws: Arc::new(WsSettings::default()),
    };
    hub.spawn(accept::serve(
        listener,
        handshake,
        LIMITS,
        hub.broker(),
        hub.admission(),
    ));
    addr
}

/// The WebSocket upgrade from the client side, offering `protocols`.
async fn upgrade<S>(
    stream: S,
    url: &str,
    protocols: &str,
) -> Result<(WebSocketStream<S>, tungstenite::handshake::client::Response), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(protocols).unwrap(),
    );
    timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("upgrade hung")
}

async fn ws_client(addr: SocketAddr, path: &str) -> Mqtt<WsByteStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, response) = upgrade(tcp, &format!("ws://{addr}{path}"), "mqtt")
        .await
        .unwrap();
    assert_eq!(response.headers()[header::SEC_WEBSOCKET_PROTOCOL], "mqtt");
    Mqtt::new(WsByteStream::new(ws))
}

#[tokio::test]
async fn ws_publish_subscribe_round_trip_and_to_tcp() {
    let mut hub = hub().await;
    let addr = add_ws(&mut hub).await;
    let mut subscriber = ws_client(addr, "/mqtt").await;
    assert_eq!(subscriber.connect("ws-sub", None).await.unwrap().reason, 0);
    subscriber.subscribe("dash/#").await;
    let mut tcp_subscriber = Mqtt::new(TcpStream::connect(hub.local_addrs()[0]).await.unwrap());
    assert_eq!(
        tcp_subscriber
            .connect("tcp-sub", None)
            .await
            .unwrap()
            .reason,
        0
    );
    tcp_subscriber.subscribe("dash/#").await;

    let mut publisher = ws_client(addr, "/mqtt").await;
    assert_eq!(publisher.connect("ws-pub", None).await.unwrap().reason, 0);
    publisher.publish("dash/line-1/rate", b"42").await;
    for client_topic_payload in [
        subscriber.next_publish().await,
        tcp_subscriber.next_publish().await,
    ] {
        assert_eq!(
            client_topic_payload,
            ("dash/line-1/rate".to_string(), Bytes::from_static(b"42"))
        );
    }
    assert!(publisher.ping().await);
    hub.shutdown().await;
}

#[tokio::test]
async fn connect_split_over_many_frames_and_packets_sharing_a_frame() {
    let mut hub = hub().await;
    let addr = add_ws(&mut hub).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = upgrade(tcp, &format!("ws://{addr}/mqtt"), "mqttv3.1, mqtt")
        .await
        .unwrap();
    let mut bytes = BytesMut::new();
    let connect = Connect {
        protocol: ProtocolVersion::V3_1_1,
        clean_start: true,
        keep_alive: 30,
        client_id: "framed".to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    encode(
        &Packet::Connect(Box::new(connect)),
        ProtocolVersion::V3_1_1,
        &mut bytes,
    )
    .unwrap();
    // CONNECT one byte per frame...
    for byte in bytes.iter() {
        ws.send(Message::Binary(Bytes::copy_from_slice(&[*byte])))
            .await
            .unwrap();
    }
    // ...then two PINGREQs in a single frame.
    let mut pings = BytesMut::new();
    pings.put_slice(&[0xC0, 0x00, 0xC0, 0x00]);
    ws.send(Message::Binary(pings.freeze())).await.unwrap();
    let mut client = Mqtt::new(WsByteStream::new(ws));
    assert!(matches!(client.recv().await, Ok(Packet::ConnAck(ack)) if ack.reason == 0));
    assert!(matches!(client.recv().await, Ok(Packet::PingResp)));
    assert!(matches!(client.recv().await, Ok(Packet::PingResp)));
    hub.shutdown().await;
}

#[tokio::test]
async fn wrong_path_is_refused_with_404() {
    let mut hub = hub().await;
    let addr = add_ws(&mut hub).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    match upgrade(tcp, &format!("ws://{addr}/not-mqtt"), "mqtt").await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::NOT_FOUND)
        }
        other => panic!("expected 404, got {:?}", other.map(|(_, r)| r.status())),
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn wss_publish_subscribe_round_trip() {
    let ca = Pki::new("Hub CA");
    let files = ServerFiles::new(&ca.leaf("hub"));
    let mut hub = hub().await;
    let addr = add_wss(&mut hub, &files).await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let tls = tls_connect(addr, client_config(&ca.cert_pem, None))
            .await
            .unwrap();
        let (ws, response) = upgrade(
            tls,
            &format!("wss://localhost:{}/mqtt", addr.port()),
            "mqtt",
        )
        .await
        .unwrap();
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_PROTOCOL], "mqtt");
        clients.push(Mqtt::new(WsByteStream::new(ws)));
    }
    let (subscriber, publisher) = clients.split_at_mut(1);
    let (subscriber, publisher) = (&mut subscriber[0], &mut publisher[0]);
    assert_eq!(subscriber.connect("wss-sub", None).await.unwrap().reason, 0);
    subscriber.subscribe("secure/+").await;
    assert_eq!(publisher.connect("wss-pub", None).await.unwrap().reason, 0);
    publisher.publish("secure/door", b"open").await;
    assert_eq!(
        subscriber.next_publish().await,
        ("secure/door".to_string(), Bytes::from_static(b"open"))
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_stalled_upgrade_is_closed_at_the_handshake_deadline() {
    let mut hub = hub().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = HandshakeLimits {
        timeout: Duration::from_millis(300),
        max_concurrent: 4,
    };
    let handshake = WsHandshake {
        ws: Arc::new(WsSettings::default()),
    };
    hub.spawn(accept::serve(
        listener,
        handshake,
        limits,
        hub.broker(),
        hub.admission(),
    ));
    let started = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = timeout(WAIT, tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
        .await
        .expect("never closed");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "server must close the stalled socket"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    hub.shutdown().await;
}

/// Records the user name of every client that got through CONNECT.
#[derive(Default)]
struct Recorder(parking_lot::Mutex<Vec<Option<String>>>);

impl Hooks for Recorder {
    fn on_connect(&self, client: &ClientInfo) {
        self.0
            .lock()
            .push(client.username.as_deref().map(str::to_string));
    }
}

#[tokio::test]
async fn wss_with_client_certificates_uses_the_cn_as_user_name() {
    let (hub_ca, device_ca) = (Pki::new("Hub CA"), Pki::new("Device CA"));
    let files = ServerFiles::new(&hub_ca.leaf("hub"));
    files.write_client_ca(&device_ca.cert_pem);
    let recorder = Arc::new(Recorder::default());
    let options = HubOptions {
        sys_interval: None,
        hooks: recorder.clone(),
        ..HubOptions::default()
    };
    let mut hub = Hub::start(options).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ReloadableTls::load(TlsSettings {
        cert: files.cert.clone(),
        key: files.key.clone(),
        client_ca: Some(files.client_ca.clone()),
        require_client_cert: true,
        use_identity_as_username: true,
    })
    .unwrap();
    let handshake = WssHandshake {
        tls,
        ws: Arc::new(WsSettings::default()),
    };
    hub.spawn(accept::serve(
        listener,
        handshake,
        LIMITS,
        hub.broker(),
        hub.admission(),
    ));

    let device = device_ca.leaf("dashboard-3");
    let tls = tls_connect(addr, client_config(&hub_ca.cert_pem, Some(&device)))
        .await
        .unwrap();
    let url = format!("wss://localhost:{}/mqtt", addr.port());
    let (ws, _) = upgrade(tls, &url, "mqtt").await.unwrap();
    let mut client = Mqtt::new(WsByteStream::new(ws));
    assert_eq!(
        client
            .connect("dash", Some("claimed-name"))
            .await
            .unwrap()
            .reason,
        0
    );
    assert_eq!(*recorder.0.lock(), vec![Some("dashboard-3".to_string())]);

    // Without a certificate the TLS layer refuses before any WebSocket upgrade.
    let anonymous = tls_connect(addr, client_config(&hub_ca.cert_pem, None)).await;
    let upgraded = match anonymous {
        Ok(tls) => upgrade(tls, &url, "mqtt").await.is_ok(),
        Err(_) => false,
    };
    assert!(!upgraded, "a client without a certificate got a WebSocket");
    hub.shutdown().await;
}

#[tokio::test]
async fn the_connect_deadline_counts_from_accept_not_from_the_end_of_the_upgrade() {
    // CONNECT deadline 1 s; the client spends 700 ms before its WebSocket upgrade, then sends
    // nothing. The hub must close it about 1 s after accept (the handshake spends from the same
    // budget), not 1.7 s (a fresh deadline after the upgrade).
    let options = HubOptions {
        tcp_listeners: vec!["127.0.0.1:0".parse().unwrap()],
        sys_interval: None,
        settings: lothub::broker::BrokerSettings {
            connect_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..HubOptions::default()
    };
    let mut hub = Hub::start(options).await.expect("hub starts");
    let addr = add_ws(&mut hub).await;
    let started = tokio::time::Instant::now();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (mut ws, _) = upgrade(tcp, &format!("ws://{addr}/mqtt"), "mqtt")
        .await
        .unwrap();
    let end = timeout(WAIT, futures_util::StreamExt::next(&mut ws))
        .await
        .expect("never closed");
    assert!(
        !matches!(end, Some(Ok(Message::Binary(_)))),
        "no MQTT was sent, so nothing but a close is expected: {end:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1450),
        "closed {elapsed:?} after connect: the deadline restarted after the upgrade"
    );
    assert!(
        elapsed >= Duration::from_millis(950),
        "closed too early: {elapsed:?}"
    );
    hub.shutdown().await;
}
