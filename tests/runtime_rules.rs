//! Rules as the hub's authorization (lot-language.md §2), from real MQTT 3.1.1 and 5 clients
//! against a hub whose hooks are the LOT runtime: seed rules, publish and subscribe refusals
//! with their reason codes, delivery checks on wildcard subscriptions (and rule changes applied
//! to live subscriptions), priorities, `CLIENTID IS TOPIC POSITION` (and CVE-2017-7650), root's
//! bypass, and a failed replacement keeping the old rule in force.

mod common;

use common::runtime::*;
use common::*;
use lothub::lot::Kind;
use lothub::runtime::DeployError;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, SubscribeReasonCode};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn seed_rules_are_deployed_on_first_start_and_restorable() {
    let h = start_default_runtime_hub().await;
    let rules: Vec<String> = h
        .runtime
        .list(Kind::Rule)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for name in [
        "AllowConnect",
        "AllowPublishTopic",
        "AllowSubscribeTopic",
        "AllowSubscribeSysBroker",
        "AllowSubscribeSys",
        "AllowCommandOutput",
        "AllowCommandCall",
        "AllowUserManagementCreation",
        "AllowSystemConfiguration",
    ] {
        assert!(
            rules.iter().any(|r| r == name),
            "seed rule {name} missing: {rules:?}"
        );
    }
    // Removing the publish seed rule leaves no rule deciding: publishing is denied.
    assert!(
        h.with(|r| r.remove(Kind::Rule, "AllowPublishTopic").unwrap())
            .await
    );
    let (mut anon, _) = v5_connect(v5_options(&h.hub, "anon")).await;
    assert_eq!(anon.puback("a/b", "x").await, PubAckReason::NotAuthorized);
    h.with(|r| r.restore_rules().unwrap()).await;
    assert_ne!(anon.puback("a/b", "x").await, PubAckReason::NotAuthorized);
    h.shutdown().await;
}

#[tokio::test]
async fn publish_rule_denies_exactly_its_topics_v5_and_v311() {
    let h = start_default_runtime_hub().await;
    h.deploy("DEFINE RULE DenyRaw WITH PRIORITY 500 FOR Publish TO TOPIC \"raw/#\" DENY")
        .await;
    let (mut p5, _) = v5_connect(v5_options(&h.hub, "p5")).await;
    assert_eq!(p5.puback("raw/1", "x").await, PubAckReason::NotAuthorized);
    assert_eq!(p5.puback("raw", "x").await, PubAckReason::NotAuthorized);
    assert_ne!(
        p5.puback("cooked/1", "x").await,
        PubAckReason::NotAuthorized
    );
    assert_ne!(
        p5.puback("rawish/1", "x").await,
        PubAckReason::NotAuthorized
    );

    // 3.1.1 has no negative PUBACK: the message is acknowledged and dropped.
    let (mut sub, _) = v4_connect(v4_options(&h.hub, "watcher")).await;
    assert!(sub.granted("#").await);
    let (mut p4, _) = v4_connect(v4_options(&h.hub, "p4")).await;
    p4.publish_acked("raw/2", "dropped").await;
    p4.publish_acked("cooked/2", "kept").await;
    let got = sub.next_publish().await;
    assert_eq!(
        &got.topic, "cooked/2",
        "the denied publish must not reach anyone"
    );

    // Root is never restricted by rules.
    let (mut root, _) = v5_connect(h.v5_login("root-client", "root", ROOT_PW)).await;
    assert_ne!(root.puback("raw/3", "x").await, PubAckReason::NotAuthorized);
    h.shutdown().await;
}

#[tokio::test]
async fn subscribe_rule_refuses_with_0x80_and_0x87_and_covers_whole_filters() {
    let h = start_default_runtime_hub().await;
    h.deploy("DEFINE RULE NoSecrets WITH PRIORITY 500 FOR Subscribe TO TOPIC \"secret/#\" DENY")
        .await;
    let (mut c4, _) = v4_connect(v4_options(&h.hub, "s4")).await;
    assert!(!c4.granted("secret/a").await, "3.1.1 SUBACK 0x80");
    assert!(!c4.granted("secret/#").await);
    assert!(c4.granted("public/a").await);
    let (mut c5, _) = v5_connect(v5_options(&h.hub, "s5")).await;
    assert_eq!(
        c5.suback_code("secret/+/x").await,
        SubscribeReasonCode::NotAuthorized
    );
    // `#` is not covered by `secret/#`, so the seed rule allows it; delivery checks do the rest.
    assert!(matches!(
        c5.suback_code("#").await,
        SubscribeReasonCode::Success(_)
    ));
    h.shutdown().await;
}

#[tokio::test]
async fn wildcard_subscriber_gets_no_denied_topic_and_rule_changes_apply_live() {
    let h = start_default_runtime_hub().await;
    h.deploy("DEFINE RULE NoRaw WITH PRIORITY 500 FOR Subscribe TO TOPIC \"raw/#\" DENY")
        .await;
    let (mut sub, _) = v4_connect(v4_options(&h.hub, "all")).await;
    assert!(sub.granted("#").await);
    let (mut publisher, _) = v5_connect(v5_options(&h.hub, "pub")).await;
    publisher.puback("raw/1", "hidden").await;
    publisher.puback("ok/1", "seen").await;
    let got = sub.next_publish().await;
    assert_eq!(&got.topic, "ok/1");
    sub.expect_no_publish(QUIET).await;

    // The decision cache must not outlive the rule.
    assert!(h.with(|r| r.remove(Kind::Rule, "NoRaw").unwrap()).await);
    publisher.puback("raw/1", "now visible").await;
    let got = sub.next_publish().await;
    assert_eq!(
        (&*got.topic, &got.payload[..]),
        ("raw/1", &b"now visible"[..])
    );

    // And a new rule applies to the same live subscription.
    h.deploy("DEFINE RULE NoOk WITH PRIORITY 500 FOR Subscribe TO TOPIC \"ok/#\" DENY")
        .await;
    publisher.puback("ok/1", "hidden again").await;
    publisher.puback("raw/1", "marker").await;
    let got = sub.next_publish().await;
    assert_eq!(&got.topic, "raw/1");
    sub.expect_no_publish(QUIET).await;
    h.shutdown().await;
}

#[tokio::test]
async fn priority_order_and_fall_through() {
    let h = start_default_runtime_hub().await;
    // Priority 200 decides before 300; a rule whose IF is false and has no ELSE decides nothing.
    h.deploy(
        "DEFINE RULE AllowSensorA WITH PRIORITY 200 FOR Publish TO TOPIC \"plant/#\" IF CLIENTID IS \"a\" THEN ALLOW\n\
         DEFINE RULE DenyPlant WITH PRIORITY 300 FOR Publish TO TOPIC \"plant/#\" DENY\n",
    )
    .await;
    let (mut a, _) = v5_connect(v5_options(&h.hub, "a")).await;
    let (mut b, _) = v5_connect(v5_options(&h.hub, "b")).await;
    assert_ne!(a.puback("plant/1", "x").await, PubAckReason::NotAuthorized);
    assert_eq!(b.puback("plant/1", "x").await, PubAckReason::NotAuthorized);
    // Equal priorities: the earlier deployment wins.
    h.deploy(
        "DEFINE RULE First WITH PRIORITY 150 FOR Publish TO TOPIC \"line/#\" DENY\n\
         DEFINE RULE Second WITH PRIORITY 150 FOR Publish TO TOPIC \"line/#\" ALLOW\n",
    )
    .await;
    assert_eq!(a.puback("line/1", "x").await, PubAckReason::NotAuthorized);
    h.shutdown().await;
}

#[tokio::test]
async fn devices_publish_only_under_their_own_id_and_wildcard_ids_cannot_widen() {
    let h = start_default_runtime_hub().await;
    h.deploy(
        "DEFINE RULE OwnTopic WITH PRIORITY 200 FOR Publish TO TOPIC \"devices/#\" IF CLIENTID IS TOPIC POSITION 2 THEN ALLOW ELSE DENY\n\
         DEFINE RULE OwnCommands WITH PRIORITY 200 FOR Subscribe TO TOPIC \"devices/#\" IF CLIENTID IS TOPIC POSITION 2 THEN ALLOW ELSE DENY\n",
    )
    .await;
    let (mut dev1, _) = v5_connect(v5_options(&h.hub, "dev1")).await;
    assert_ne!(
        dev1.puback("devices/dev1/t", "1").await,
        PubAckReason::NotAuthorized
    );
    assert_eq!(
        dev1.puback("devices/dev2/t", "1").await,
        PubAckReason::NotAuthorized
    );
    assert!(matches!(
        dev1.suback_code("devices/dev1/cmd").await,
        SubscribeReasonCode::Success(_)
    ));
    assert_eq!(
        dev1.suback_code("devices/+/cmd").await,
        SubscribeReasonCode::NotAuthorized
    );
    // CVE-2017-7650: the client id "+" must not match the `+` level of the filter.
    let (mut plus, _) = v5_connect(v5_options(&h.hub, "+")).await;
    assert_eq!(
        plus.suback_code("devices/+/cmd").await,
        SubscribeReasonCode::NotAuthorized
    );
    let (mut hash, _) = v5_connect(v5_options(&h.hub, "#")).await;
    assert_eq!(
        hash.suback_code("devices/#").await,
        SubscribeReasonCode::NotAuthorized
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_bad_replacement_reports_line_and_column_and_keeps_the_old_rule() {
    let h = start_default_runtime_hub().await;
    h.deploy("DEFINE RULE DenyRaw WITH PRIORITY 500 FOR Publish TO TOPIC \"raw/#\" DENY")
        .await;
    let err = h
        .with(|r| {
            r.deploy("DEFINE RULE DenyRaw WITH PRIORITY 500 FOR Publish TO TOPIC \"raw/#\"\n    IF USER IS \"x\" ALLOW")
                .unwrap_err()
        })
        .await;
    let DeployError::Compile(errors) = err else {
        panic!("expected compile errors, got {err:?}");
    };
    assert_eq!(errors[0].line, 2, "{errors:?}");
    assert!(errors[0].col > 1, "{errors:?}");
    // Priority 0-99 is reserved.
    let err = h
        .with(|r| {
            r.deploy("DEFINE RULE Low WITH PRIORITY 5 FOR Publish ALLOW")
                .unwrap_err()
        })
        .await;
    assert!(matches!(err, DeployError::Compile(_)), "{err:?}");
    // The old rule is still in force, and still the stored one.
    let (mut c, _) = v5_connect(v5_options(&h.hub, "c")).await;
    assert_eq!(c.puback("raw/1", "x").await, PubAckReason::NotAuthorized);
    let source = h
        .runtime
        .list(Kind::Rule)
        .into_iter()
        .find(|(n, _)| n == "DenyRaw")
        .unwrap()
        .1;
    assert!(source.ends_with("DENY"), "{source}");
    h.shutdown().await;
}

#[tokio::test]
async fn sys_coreflux_is_readable_only_with_permission() {
    let h = start_default_runtime_hub().await;
    h.deploy("DEFINE RULE R1 WITH PRIORITY 500 FOR Publish TO TOPIC \"x/#\" DENY")
        .await;
    let (mut anon, _) = v4_connect(v4_options(&h.hub, "anon")).await;
    assert!(!anon.granted("$SYS/Coreflux/Rules").await);
    assert!(!anon.granted("$SYS/#").await);
    assert!(!anon.granted("$SYS/Coreflux/Command/Output").await);
    assert!(
        anon.granted("$SYS/broker/uptime").await,
        "the Mosquitto counters are public"
    );
    // `#` never matches `$SYS/...` (MQTT §4.7.2): nothing leaks through it either.
    assert!(anon.granted("#").await);
    anon.expect_no_publish(QUIET).await;

    h.with(|r| {
        r.add_user("ops", "ops-pw").unwrap();
        r.set_flag("ops", "AllowedSystemConfiguration", true)
            .unwrap();
    })
    .await;
    let (mut ops, _) = v4_connect(h.v4_login("ops", "ops", "ops-pw")).await;
    assert!(ops.granted("$SYS/Coreflux/Rules").await);
    let list = ops.next_publish().await;
    let names: Vec<String> = serde_json::from_slice(&list.payload).unwrap();
    assert!(names.contains(&"R1".to_string()), "{names:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn flag_changes_apply_to_cached_delivery_decisions() {
    let h = start_default_runtime_hub().await;
    h.deploy(
        "DEFINE RULE Vip WITH PRIORITY 500 FOR Subscribe TO TOPIC \"vip/#\" IF USER HAS Vip THEN ALLOW ELSE DENY",
    )
    .await;
    h.with(|r| r.add_user("eve", "pw").unwrap()).await;
    let (mut eve, _) = v4_connect(h.v4_login("eve", "eve", "pw")).await;
    assert!(eve.granted("#").await);
    let (mut publisher, _) = v5_connect(v5_options(&h.hub, "pub")).await;
    publisher.puback("vip/1", "no").await;
    eve.expect_no_publish(QUIET).await;
    h.with(|r| r.set_flag("eve", "Vip", true).unwrap()).await;
    publisher.puback("vip/1", "yes").await;
    let got = eve.next_publish().await;
    assert_eq!(&got.payload[..], b"yes");
    h.shutdown().await;
}

#[tokio::test]
async fn cached_publish_decisions_under_many_rules_follow_rule_changes() {
    let h = start_default_runtime_hub().await;
    // Twenty wildcard-first rules make the Publish scope costly: its decisions are cached.
    let many: String = (0..20)
        .map(|i| {
            format!(
                "DEFINE RULE Wild{i} WITH PRIORITY {} FOR Publish TO TOPIC \"+/nomatch{i}/#\" DENY\n",
                1000 + i
            )
        })
        .collect();
    h.deploy(&many).await;
    let (mut c, _) = v5_connect(v5_options(&h.hub, "c")).await;
    assert_ne!(c.puback("line/1", "x").await, PubAckReason::NotAuthorized);
    assert_ne!(c.puback("line/1", "x").await, PubAckReason::NotAuthorized);
    assert_eq!(
        c.puback("a/nomatch3/z", "x").await,
        PubAckReason::NotAuthorized
    );
    h.deploy("DEFINE RULE NoLine WITH PRIORITY 500 FOR Publish TO TOPIC \"line/#\" DENY")
        .await;
    assert_eq!(c.puback("line/1", "x").await, PubAckReason::NotAuthorized);
    h.shutdown().await;
}
