//! Users and authentication through the LOT runtime, from real MQTT 3.1.1 and 5 clients: root's
//! bootstrap password, CONNACK 0x86 / 4 for bad credentials and 0x87 / 5 for refusals, users
//! added and removed through the runtime API, the anonymous switch, Connect rules, what
//! `$SYS/Coreflux/Config/Users` shows, and state surviving a restart on the same data directory.

mod common;

use common::runtime::*;
use common::*;
use lothub::lot::Kind;
use lothub::runtime::{RuntimeError, RuntimeSettings};
use lothub::storage::Storage;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PubAckReason};

#[tokio::test]
async fn root_connects_with_the_bootstrap_password_and_wrong_ones_get_0x86_or_4() {
    let h = start_default_runtime_hub().await;
    assert_eq!(
        v5_connect_code(h.v5_login("r5", "root", ROOT_PW)).await,
        ConnectReturnCode::Success
    );
    assert_eq!(
        v4_connect_result(h.v4_login("r4", "root", ROOT_PW)).await,
        Ok(())
    );
    assert_eq!(
        v5_connect_code(h.v5_login("w5", "root", "wrong")).await,
        ConnectReturnCode::BadUserNamePassword
    );
    let refused = v4_connect_result(h.v4_login("w4", "root", "wrong"))
        .await
        .unwrap_err();
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    // An unknown user is refused the same way.
    assert_eq!(
        v5_connect_code(h.v5_login("u5", "nobody", "x")).await,
        ConnectReturnCode::BadUserNamePassword
    );
    h.shutdown().await;
}

#[tokio::test]
async fn default_root_password_when_none_is_given() {
    let h = start_runtime_hub(
        Storage::in_memory().unwrap(),
        RuntimeSettings {
            allow_anonymous: true,
            root_password: None,
        },
    )
    .await;
    assert_eq!(
        v5_connect_code(h.v5_login("r", "root", "coreflux")).await,
        ConnectReturnCode::Success
    );
    h.shutdown().await;
}

#[tokio::test]
async fn added_user_connects_removed_user_cannot_and_passwords_change() {
    let h = start_default_runtime_hub().await;
    h.with(|r| r.add_user("alice", "pw-1").unwrap()).await;
    assert_eq!(
        v5_connect_code(h.v5_login("a1", "alice", "pw-1")).await,
        ConnectReturnCode::Success
    );
    let dup = h.with(|r| r.add_user("alice", "x").unwrap_err()).await;
    assert!(matches!(dup, RuntimeError::UserExists(_)), "{dup}");

    h.with(|r| r.change_password("alice", "pw-2").unwrap())
        .await;
    // The first password was verified (and cached) before: the change must still refuse it.
    assert_eq!(
        v5_connect_code(h.v5_login("a2", "alice", "pw-1")).await,
        ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(
        v4_connect_result(h.v4_login("a3", "alice", "pw-2")).await,
        Ok(())
    );

    assert!(h.with(|r| r.remove_user("alice").unwrap()).await);
    assert_eq!(
        v5_connect_code(h.v5_login("a4", "alice", "pw-2")).await,
        ConnectReturnCode::BadUserNamePassword
    );
    assert!(!h.with(|r| r.remove_user("alice").unwrap()).await);
    let root = h.with(|r| r.remove_user("root").unwrap_err()).await;
    assert!(matches!(root, RuntimeError::RootProtected));
    h.shutdown().await;
}

#[tokio::test]
async fn anonymous_switch_and_connect_rules_refuse_with_0x87_or_5() {
    let h = start_runtime_hub(Storage::in_memory().unwrap(), settings(false)).await;
    assert_eq!(
        v5_connect_code(v5_options(&h.hub, "anon5")).await,
        ConnectReturnCode::NotAuthorized
    );
    let refused = v4_connect_result(v4_options(&h.hub, "anon4"))
        .await
        .unwrap_err();
    assert!(refused.contains("NotAuthorized"), "{refused}");

    h.with(|r| r.add_user("line1", "pw").unwrap()).await;
    h.deploy(
        "DEFINE RULE OnlyPlcs WITH PRIORITY 500 FOR Connect IF CLIENTID MATCHES REGEX \"^plc-\" THEN ALLOW ELSE DENY",
    )
    .await;
    assert_eq!(
        v5_connect_code(h.v5_login("laptop", "line1", "pw")).await,
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        v5_connect_code(h.v5_login("plc-7", "line1", "pw")).await,
        ConnectReturnCode::Success
    );
    // Root is not subject to Connect rules.
    assert_eq!(
        v5_connect_code(h.v5_login("laptop", "root", ROOT_PW)).await,
        ConnectReturnCode::Success
    );
    h.shutdown().await;
}

#[tokio::test]
async fn groups_and_flags_drive_rules_and_users_topic_has_no_hashes() {
    let h = start_default_runtime_hub().await;
    h.with(|r| {
        r.add_user("op", "pw").unwrap();
        r.add_to_group("op", "line-a").unwrap();
        r.set_flag("op", "AllowedSystemConfiguration", true)
            .unwrap();
    })
    .await;
    h.deploy(
        "DEFINE RULE LineA WITH PRIORITY 500 FOR Publish TO TOPIC \"line-a/#\" IF USER IN GROUP \"line-a\" THEN ALLOW ELSE DENY",
    )
    .await;
    let (mut op, _) = v5_connect(h.v5_login("op", "op", "pw")).await;
    assert_ne!(
        op.puback("line-a/x", "1").await,
        PubAckReason::NotAuthorized
    );
    let (mut anon, _) = v5_connect(v5_options(&h.hub, "anon")).await;
    assert_eq!(
        anon.puback("line-a/x", "1").await,
        PubAckReason::NotAuthorized
    );

    h.with(|r| assert!(r.remove_from_group("op", "line-a").unwrap()))
        .await;
    assert_eq!(
        op.puback("line-a/x", "1").await,
        PubAckReason::NotAuthorized
    );

    let (mut reader, _) = v4_connect(h.v4_login("reader", "op", "pw")).await;
    assert!(reader.granted("$SYS/Coreflux/Config/Users").await);
    let users = reader.next_publish().await;
    let text = String::from_utf8(users.payload.to_vec()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let op_entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "op")
        .unwrap();
    assert_eq!(op_entry["flags"]["AllowedSystemConfiguration"], true);
    assert!(!text.contains("argon2"), "no password hash in {text}");
    let listed = h.with(|r| r.list_users().unwrap()).await;
    assert!(listed.iter().any(|u| u.name == "root"));
    h.shutdown().await;
}

#[tokio::test]
async fn users_rules_and_removed_seeds_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = start_runtime_hub(Storage::open(dir.path()).unwrap(), settings(true)).await;
        h.with(|r| {
            r.add_user("kept", "pw").unwrap();
            r.remove(Kind::Rule, "AllowSubscribeTopic").unwrap();
        })
        .await;
        h.deploy("DEFINE RULE DenyRaw WITH PRIORITY 500 FOR Publish TO TOPIC \"raw/#\" DENY")
            .await;
        h.shutdown().await;
    }
    // A second start with another bootstrap password: root keeps the first one.
    let h = start_runtime_hub(
        Storage::open(dir.path()).unwrap(),
        RuntimeSettings {
            allow_anonymous: true,
            root_password: Some("other".into()),
        },
    )
    .await;
    assert_eq!(
        v5_connect_code(h.v5_login("k", "kept", "pw")).await,
        ConnectReturnCode::Success
    );
    assert_eq!(
        v5_connect_code(h.v5_login("r", "root", ROOT_PW)).await,
        ConnectReturnCode::Success
    );
    let rules: Vec<String> = h
        .runtime
        .list(Kind::Rule)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(rules.contains(&"DenyRaw".to_string()));
    assert!(
        !rules.contains(&"AllowSubscribeTopic".to_string()),
        "seeding runs only on the first start: {rules:?}"
    );
    let (mut c, _) = v5_connect(v5_options(&h.hub, "c")).await;
    assert_eq!(c.puback("raw/1", "x").await, PubAckReason::NotAuthorized);
    h.shutdown().await;
}

#[tokio::test]
async fn restore_replaces_users_and_definitions_live_or_changes_nothing() {
    let h = start_default_runtime_hub().await;
    h.with(|r| r.add_user("old", "pw").unwrap()).await;
    h.deploy("DEFINE RULE DenyRaw WITH PRIORITY 500 FOR Publish TO TOPIC \"raw/#\" DENY")
        .await;
    let backup = h
        .with(|r| r.storage().export_configuration().unwrap())
        .await;
    h.with(|r| {
        r.remove_user("old").unwrap();
        r.add_user("new", "pw").unwrap();
        r.remove(Kind::Rule, "DenyRaw").unwrap();
    })
    .await;
    h.deploy("DEFINE RULE DenyCooked WITH PRIORITY 500 FOR Publish TO TOPIC \"cooked/#\" DENY")
        .await;

    let mut rootless = backup.clone();
    rootless.users.retain(|u| u.name != "root");
    let err = h
        .with(move |r| r.restore_configuration(&rootless).unwrap_err())
        .await;
    assert!(matches!(err, RuntimeError::InvalidBackup(_)), "{err}");
    let (mut c, _) = v5_connect(v5_options(&h.hub, "c")).await;
    assert_eq!(
        c.puback("cooked/1", "x").await,
        PubAckReason::NotAuthorized,
        "unchanged"
    );

    h.with(move |r| r.restore_configuration(&backup).unwrap())
        .await;
    assert_eq!(
        v5_connect_code(h.v5_login("o", "old", "pw")).await,
        ConnectReturnCode::Success
    );
    assert_eq!(
        v5_connect_code(h.v5_login("n", "new", "pw")).await,
        ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(c.puback("raw/1", "x").await, PubAckReason::NotAuthorized);
    assert_ne!(c.puback("cooked/1", "x").await, PubAckReason::NotAuthorized);
    h.shutdown().await;
}

/// The broker's view of a client for calling the hooks directly.
fn client_on(listener: &str, user: Option<&str>) -> lothub::broker::ClientInfo {
    lothub::broker::ClientInfo {
        client_id: "dev".into(),
        username: user.map(Into::into),
        peer: "127.0.0.1:40000".parse().unwrap(),
        listener: listener.into(),
        protocol: lothub::protocol::packet::ProtocolVersion::V5,
    }
}

#[tokio::test]
async fn certificate_users_need_no_password_only_on_identity_listeners() {
    use lothub::broker::{AuthDecision, AuthRequest};
    let h = start_default_runtime_hub().await;
    h.runtime.trust_tls_identity("tls:127.0.0.1:8883".into());
    let hooks = h.runtime.hooks();
    let request = |listener: &str| AuthRequest {
        client: client_on(listener, Some("device-17")),
        username: Some("device-17".into()),
        password: None,
    };
    let on_identity = request("tls:127.0.0.1:8883");
    let on_plain = request("tcp:127.0.0.1:1883");
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            hooks.authenticate(&on_identity),
            hooks.authenticate(&on_plain),
        )
    })
    .await
    .unwrap();
    assert_eq!(a, AuthDecision::Allow, "CN from a verified certificate");
    assert_eq!(
        b,
        AuthDecision::BadCredentials,
        "the same name over plain TCP"
    );
    h.shutdown().await;
}
