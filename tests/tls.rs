//! TLS and mutual TLS end to end: a hub in-process on 127.0.0.1, certificates made in the test
//! with rcgen, MQTT spoken over a tokio-rustls client stream with lothub's own codec.
//! Also checks that the example configs in `config/examples/` stay loadable.

mod tls_support;

use lothub::config::{Config, ListenerKind};

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
