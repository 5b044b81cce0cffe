//! TLS and mutual TLS end to end: a hub in-process on 127.0.0.1, certificates made in the test
//! with rcgen, MQTT spoken over a tokio-rustls client stream with lothub's own codec
//! (`tls_support::Mqtt`). Also checks that the example configs in `config/examples/` load.

mod tls_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lothub::app::{Hub, HubOptions};
use lothub::broker::ratelimit::IpFilter;
use lothub::broker::{AuthDecision, AuthRequest, ClientInfo, Hooks};
use lothub::config::{Config, ListenerKind};
use lothub::protocol::packet::reason;
use lothub::transport::accept::{self, HandshakeLimits, TlsHandshake};
use lothub::transport::identity::common_name;
use lothub::transport::reload::ReloadableTls;
use lothub::transport::tls::TlsSettings;
use parking_lot::Mutex;
use tls_support::{
    Ended, Mqtt, Pki, ServerFiles, WAIT, client_config, client_config_for, server_leaf, tls_connect,
};

/// Records who connected and admits only `only_user` when set: a stand-in for the auth rules.
#[derive(Default)]
struct Recorder {
    only_user: Option<&'static str>,
    connected: Mutex<Vec<Option<String>>>,
}

impl Hooks for Recorder {
    fn authenticate(&self, request: &AuthRequest) -> AuthDecision {
        match self.only_user {
            Some(user) if request.username.as_deref() != Some(user) => AuthDecision::NotAuthorized,
            _ => AuthDecision::Allow,
        }
    }

    fn on_connect(&self, client: &ClientInfo) {
        self.connected
            .lock()
            .push(client.username.as_deref().map(str::to_string));
    }
}

async fn hub_with(hooks: Arc<Recorder>) -> Hub {
    let options = HubOptions {
        sys_interval: None,
        hooks,
        ..HubOptions::default()
    };
    Hub::start(options).await.expect("hub starts")
}

/// Binds a TLS listener on 127.0.0.1:0 for `hub`, with its certificate watcher polling every
/// 50 ms, and returns its address.
async fn add_tls_listener(hub: &mut Hub, settings: TlsSettings) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ReloadableTls::load(settings).expect("certificates load");
    let watcher = tls.spawn_watcher(Duration::from_millis(50), hub.broker().shutdown_token());
    hub.spawn(async move {
        let _ = watcher.await;
    });
    let limits = HandshakeLimits {
        timeout: Duration::from_secs(5),
        max_concurrent: 16,
    };
    hub.spawn(accept::serve(
        listener,
        TlsHandshake { tls },
        limits,
        hub.broker(),
        hub.admission(),
    ));
    addr
}

fn server_only(files: &ServerFiles) -> TlsSettings {
    TlsSettings {
        cert: files.cert.clone(),
        key: files.key.clone(),
        client_ca: None,
        require_client_cert: false,
        use_identity_as_username: false,
    }
}

fn mutual(files: &ServerFiles, require: bool) -> TlsSettings {
    TlsSettings {
        client_ca: Some(files.client_ca.clone()),
        require_client_cert: require,
        use_identity_as_username: true,
        ..server_only(files)
    }
}

#[tokio::test]
async fn publish_subscribe_round_trip_over_tls_1_2_and_1_3() {
    let ca = Pki::new("Hub CA");
    let server = ca.leaf("hub");
    let files = ServerFiles::new(&server);
    let mut hub = hub_with(Arc::default()).await;
    let addr = add_tls_listener(&mut hub, server_only(&files)).await;

    let mut subscriber = Mqtt::new(
        tls_connect(addr, client_config(&ca.cert_pem, None))
            .await
            .unwrap(),
    );
    assert_eq!(
        server_leaf(&subscriber.io),
        server.der,
        "the configured certificate is served"
    );
    assert_eq!(subscriber.connect("sub", None).await.unwrap().reason, 0);
    subscriber.subscribe("plant/+/temp").await;

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = client_config_for(&ca.cert_pem, None, &[version]);
        let stream = tls_connect(addr, config).await.unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(version.version));
        let mut publisher = Mqtt::new(stream);
        assert_eq!(publisher.connect("pub", None).await.unwrap().reason, 0);
        publisher.publish("plant/4/temp", b"21.5").await;
        let (topic, payload) = subscriber.next_publish().await;
        assert_eq!(
            (topic.as_str(), &payload[..]),
            ("plant/4/temp", &b"21.5"[..])
        );
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_hub_ca_fails_the_handshake() {
    let files = ServerFiles::new(&Pki::new("Hub CA").leaf("hub"));
    let mut hub = hub_with(Arc::default()).await;
    let addr = add_tls_listener(&mut hub, server_only(&files)).await;
    let stranger = client_config(&Pki::new("Unrelated CA").cert_pem, None);
    assert!(tls_connect(addr, stranger).await.is_err());
    hub.shutdown().await;
}

/// Connects with `config` and tries an MQTT CONNECT: `Ok(reason)` if a CONNACK came back.
async fn try_mqtt(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    username: Option<&str>,
) -> Result<u8, Ended> {
    // With TLS 1.3 the client's handshake finishes before the server has judged the client
    // certificate, so a refusal can show up at connect or at the first read: both count.
    let Ok(stream) = tls_connect(addr, config).await else {
        return Err(Ended::Closed);
    };
    Mqtt::new(stream)
        .connect("device", username)
        .await
        .map(|ack| ack.reason)
}

#[tokio::test]
async fn mutual_tls_refuses_missing_foreign_and_expired_client_certificates() {
    let (hub_ca, device_ca, other_ca) = (
        Pki::new("Hub CA"),
        Pki::new("Device CA"),
        Pki::new("Other CA"),
    );
    let files = ServerFiles::new(&hub_ca.leaf("hub"));
    files.write_client_ca(&device_ca.cert_pem);
    let recorder = Arc::new(Recorder::default());
    let mut hub = hub_with(recorder.clone()).await;
    let addr = add_tls_listener(&mut hub, mutual(&files, true)).await;
    let trust = &hub_ca.cert_pem;

    let good = device_ca.leaf("device-17");
    assert_eq!(
        try_mqtt(addr, client_config(trust, Some(&good)), None).await,
        Ok(0)
    );
    assert_eq!(
        try_mqtt(addr, client_config(trust, None), None).await,
        Err(Ended::Closed)
    );
    let foreign = other_ca.leaf("device-17");
    assert_eq!(
        try_mqtt(addr, client_config(trust, Some(&foreign)), None).await,
        Err(Ended::Closed)
    );
    let expired = device_ca.expired_leaf("device-17");
    assert_eq!(
        try_mqtt(addr, client_config(trust, Some(&expired)), None).await,
        Err(Ended::Closed)
    );
    assert_eq!(
        recorder.connected.lock().len(),
        1,
        "only the good certificate reached MQTT"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn certificate_cn_is_the_user_name_and_rules_see_it() {
    let (hub_ca, device_ca) = (Pki::new("Hub CA"), Pki::new("Device CA"));
    let files = ServerFiles::new(&hub_ca.leaf("hub"));
    files.write_client_ca(&device_ca.cert_pem);
    let recorder = Arc::new(Recorder {
        only_user: Some("device-17"),
        ..Recorder::default()
    });
    let mut hub = hub_with(recorder.clone()).await;
    // Client certificates optional: the identity rule must still fail closed without one.
    let addr = add_tls_listener(&mut hub, mutual(&files, false)).await;
    let trust = &hub_ca.cert_pem;

    // The CONNECT user name is ignored in favour of the certificate's CN...
    let device = device_ca.leaf("device-17");
    assert_eq!(
        try_mqtt(
            addr,
            client_config(trust, Some(&device)),
            Some("someone-else")
        )
        .await,
        Ok(0)
    );
    // ...so claiming the allowed name in CONNECT does not help another certificate (3.1.1
    // return code 5, which the codec reports as the MQTT 5 reason 0x87 Not authorized).
    let intruder = device_ca.leaf("intruder");
    assert_eq!(
        try_mqtt(
            addr,
            client_config(trust, Some(&intruder)),
            Some("device-17")
        )
        .await,
        Ok(reason::NOT_AUTHORIZED)
    );
    // No certificate, no identity: refused rather than falling back to the CONNECT user name.
    assert_eq!(
        try_mqtt(addr, client_config(trust, None), Some("device-17")).await,
        Err(Ended::Closed)
    );
    assert_eq!(
        *recorder.connected.lock(),
        vec![Some("device-17".to_string())]
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn certificate_rotation_reaches_new_connections_and_spares_live_ones() {
    let ca = Pki::new("Hub CA");
    let (first, second) = (ca.leaf("hub-2025"), ca.leaf("hub-2026"));
    let files = ServerFiles::new(&first);
    let mut hub = hub_with(Arc::default()).await;
    let addr = add_tls_listener(&mut hub, server_only(&files)).await;
    let trust = client_config(&ca.cert_pem, None);

    let mut live = Mqtt::new(tls_connect(addr, trust.clone()).await.unwrap());
    assert_eq!(common_name(&server_leaf(&live.io)).unwrap(), "hub-2025");
    assert_eq!(live.connect("live", None).await.unwrap().reason, 0);

    files.install(&second);
    let started = tokio::time::Instant::now();
    loop {
        let fresh = tls_connect(addr, trust.clone()).await.unwrap();
        if server_leaf(&fresh) == second.der {
            assert_eq!(common_name(&server_leaf(&fresh)).unwrap(), "hub-2026");
            break;
        }
        assert_eq!(
            server_leaf(&fresh),
            first.der,
            "only the old or the new certificate"
        );
        assert!(started.elapsed() < WAIT, "new certificate never served");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        live.ping().await,
        "a connection from before the rotation still works"
    );

    // A garbage certificate is refused: after several watcher polls the rotated one still serves.
    std::fs::write(
        &files.cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = tls_connect(addr, trust.clone())
        .await
        .expect("listener still serves");
    assert_eq!(server_leaf(&fresh), second.der);
    let mut fresh = Mqtt::new(fresh);
    assert_eq!(
        fresh.connect("after-garbage", None).await.unwrap().reason,
        0
    );
    assert!(live.ping().await);
    hub.shutdown().await;
}

#[tokio::test]
async fn denied_addresses_get_no_tls_handshake_at_all() {
    let ca = Pki::new("Hub CA");
    let files = ServerFiles::new(&ca.leaf("hub"));
    let options = HubOptions {
        sys_interval: None,
        ip_filter: Some(IpFilter::new(Vec::<&str>::new(), ["127.0.0.0/8"]).unwrap()),
        ..HubOptions::default()
    };
    let mut hub = Hub::start(options).await.unwrap();
    let addr = add_tls_listener(&mut hub, server_only(&files)).await;
    // Admission runs before the handshake, so the client never even gets a ServerHello (were it
    // checked afterwards, the TLS connect would succeed and only MQTT would fail).
    let refused = tls_connect(addr, client_config(&ca.cert_pem, None)).await;
    assert!(
        refused.is_err(),
        "a denied address completed a TLS handshake"
    );
    hub.shutdown().await;
}

#[test]
fn example_configs_parse_and_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let kinds = |name: &str| -> Vec<ListenerKind> {
        let config = Config::load(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        config.listeners.iter().map(|l| l.kind).collect()
    };
    assert_eq!(kinds("tls.toml"), [ListenerKind::Tcp, ListenerKind::Tls]);
    assert_eq!(kinds("mtls.toml"), [ListenerKind::Tls]);
    assert_eq!(
        kinds("websocket.toml"),
        [ListenerKind::Tcp, ListenerKind::Ws, ListenerKind::Wss]
    );
    let mtls = Config::load(&dir.join("mtls.toml")).unwrap();
    let listener = &mtls.listeners[0];
    assert!(
        listener.client_ca.is_some()
            && listener.require_client_cert
            && listener.use_identity_as_username
    );
}
