//! System verbs from real MQTT clients: env, secrets (values never listed), `-backup` (only to
//! an MQTT 5 Response Topic), `-restore`, `-status`, `-runAction`.

mod commands_support;
mod common;

use commands_support::*;
use common::*;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use serde_json::{Value, json};

#[tokio::test]
async fn env_verbs() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let r = ok(op.cmd("-setEnv PLANT=Lisbon").await, "SetEnv");
    assert_eq!(r["message"], "Env 'PLANT' set");
    assert_eq!(r["entityType"], "Env");
    ok(op.cmd(r#"-setEnv GREETING="hello world""#).await, "SetEnv");
    let r = ok(op.cmd("-listEnv").await, "ListEnv");
    assert_eq!(
        r["data"],
        json!({"GREETING": "hello world", "PLANT": "Lisbon"})
    );
    assert_eq!(h.runtime.env("PLANT").unwrap().as_deref(), Some("Lisbon"));
    let r = ok(op.cmd("-removeEnv PLANT").await, "RemoveEnv");
    assert_eq!(r["message"], "Env 'PLANT' removed");
    let r = failed(op.cmd("-removeEnv PLANT").await, "RemoveEnv");
    assert_eq!(r["message"], "Env 'PLANT' is not set");
    let r = failed(op.cmd("-setEnv novalue").await, "SetEnv");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("expected NAME=value"),
        "{r}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn secret_values_are_never_listed_or_echoed() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let r = ok(op.cmd("-setSecret API_TOKEN=t0ps3cr3t").await, "SetSecret");
    assert_eq!(r["message"], "Secret 'API_TOKEN' set");
    assert!(!r.to_string().contains("t0ps3cr3t"));
    ok(op.cmd("-setSecret OTHER=zzz").await, "SetSecret");
    let r = ok(op.cmd("-listSecrets").await, "ListSecrets");
    assert_eq!(r["data"], json!(["API_TOKEN", "OTHER"]));
    assert!(!r.to_string().contains("t0ps3cr3t"));
    assert_eq!(
        h.runtime.secret("API_TOKEN").unwrap().as_deref(),
        Some("t0ps3cr3t")
    );
    ok(op.cmd("-removeSecret OTHER").await, "RemoveSecret");
    let r = ok(op.cmd("-listSecrets").await, "ListSecrets");
    assert_eq!(r["data"], json!(["API_TOKEN"]));
    h.shutdown().await;
}

/// Sends `command` from `c` with a Response Topic and returns the reply published there.
async fn request(c: &mut V5, command: &str, topic: &str) -> Value {
    let props = PublishProperties {
        response_topic: Some(topic.into()),
        correlation_data: Some(bytes::Bytes::from_static(b"b-1")),
        ..Default::default()
    };
    send_command(c, command, Some(props)).await;
    let p = c
        .next_matching("the response", |p| match p {
            Packet5::Publish(p) if p.topic == topic.as_bytes() => Some(p.clone()),
            _ => None,
        })
        .await;
    serde_json::from_slice(&p.payload).unwrap()
}

#[tokio::test]
async fn backup_goes_only_to_the_response_topic() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    ok(op.cmd("-addUser gina pw").await, "AddUser");
    ok(op.cmd("-setEnv SITE=north").await, "SetEnv");
    ok(op.cmd("-setSecret KEY=very-secret").await, "SetSecret");

    let r = failed(op.cmd("-backup").await, "Backup");
    assert!(
        r["message"].as_str().unwrap().contains("Response Topic"),
        "{r}"
    );
    assert!(r.get("data").is_none());

    let mut req = h.v5_as("backup", "root", ROOT_PW).await;
    req.subscribe("backups/me", Q5::AtLeastOnce).await;
    let full = ok(request(&mut req, "-backup", "backups/me").await, "Backup");
    let data = &full["data"];
    assert_eq!(data["format"], 1);
    let users = data["users"].as_array().unwrap();
    let gina = users.iter().find(|u| u["name"] == "gina").unwrap();
    assert!(
        gina["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$")
    );
    assert_eq!(data["env"], json!({"SITE": "north"}));
    assert_eq!(data["secrets"][0]["name"], "KEY");
    assert!(
        !full.to_string().contains("very-secret"),
        "secrets stay sealed"
    );
    assert!(
        data["definitions"].as_array().unwrap().len() >= 20,
        "seed rules"
    );

    // The output topic only gets the summary.
    let summary = ok(op.reply().await, "Backup");
    assert_eq!(summary["message"], full["message"]);
    assert_eq!(summary["data"]["users"], users.len());
    assert_eq!(summary["data"]["secrets"], 1);
    assert!(!summary.to_string().contains("argon2"), "{summary}");
    h.shutdown().await;
}

#[tokio::test]
async fn status_reports_the_broker() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let r = ok(op.cmd("-status").await, "Status");
    let d = &r["data"];
    assert_eq!(d["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(d["clients"]["connected"], 1);
    assert_eq!(d["subscriptions"], 1, "the operator's output subscription");
    assert!(d["messages"]["received"].as_u64().unwrap() >= 1);
    assert!(d["uptimeSeconds"].is_u64());
    assert!(d["messages"]["receivedPerSecond"].is_number());
    h.shutdown().await;
}

#[tokio::test]
async fn run_action_returns_outputs_and_publishes() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    // A separate watcher: the operator's own reader skips everything but replies.
    let mut watcher = h.v5_as("watcher", "root", ROOT_PW).await;
    watcher.subscribe("sums/#", Q5::AtLeastOnce).await;
    let action = "-addAction DEFINE ACTION Add\nINPUT a AS INT\nINPUT b AS INT\nDO\n    SET \"total\" WITH {a} + {b}\n    PUBLISH TOPIC \"sums/last\" WITH {total}\nRETURN\n    OUTPUT total";
    let r = ok(op.cmd(action).await, "AddAction");
    assert_eq!(r["message"], "Action 'Add' added");
    let r = ok(
        op.cmd(r#"-runAction Add {"a": 2, "b": 40}"#).await,
        "RunAction",
    );
    assert_eq!(r["entityName"], "Add");
    assert_eq!(r["data"]["outputs"], json!({"total": 42}));
    assert_eq!(
        r["data"]["published"],
        json!([{"topic": "sums/last", "payload": "42"}])
    );
    let p = watcher
        .next_matching("sums/last", |p| match p {
            Packet5::Publish(p) if p.topic == "sums/last".as_bytes() => Some(p.clone()),
            _ => None,
        })
        .await;
    assert_eq!(&p.payload[..], b"42");
    let r = failed(op.cmd("-runAction Nope").await, "RunAction");
    assert_eq!(r["message"], "Action 'Nope' does not exist");
    let r = failed(op.cmd("-runAction Add [1, 2]").await, "RunAction");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("inputs must be a JSON object"),
        "{r}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn restore_round_trip() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    ok(op.cmd("-addUser hank pw-h").await, "AddUser");
    ok(op.cmd("-setEnv SITE=north").await, "SetEnv");
    ok(op.cmd("-setSecret KEY=k-1").await, "SetSecret");
    ok(
        op.cmd(
            "-addRule DEFINE RULE DenyRaw WITH PRIORITY 100 FOR Publish TO TOPIC \"raw/#\" DENY",
        )
        .await,
        "AddRule",
    );
    let mut req = h.v5_as("backup", "root", ROOT_PW).await;
    req.subscribe("backups/me", Q5::AtLeastOnce).await;
    let backup = ok(request(&mut req, "-backup", "backups/me").await, "Backup");
    let _ = op.reply().await;
    let document = backup["data"].to_string();

    // Change everything, then restore.
    ok(op.cmd("-removeUser hank").await, "RemoveUser");
    ok(op.cmd("-addUser ivy pw-i").await, "AddUser");
    ok(op.cmd("-removeEnv SITE").await, "RemoveEnv");
    ok(op.cmd("-removeRule DenyRaw").await, "RemoveRule");
    let r = ok(op.cmd(&format!("-restore {document}")).await, "Restore");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("Configuration restored: "),
        "{r}"
    );
    assert_eq!(
        r["data"]["users"],
        backup["data"]["users"].as_array().unwrap().len()
    );

    assert_eq!(h.connack_v5("h1", "hank", "pw-h").await, 0x00);
    assert_eq!(h.connack_v5("i1", "ivy", "pw-i").await, 0x86);
    assert_eq!(
        ok(op.cmd("-listEnv").await, "ListEnv")["data"],
        json!({"SITE": "north"})
    );
    assert_eq!(h.runtime.secret("KEY").unwrap().as_deref(), Some("k-1"));
    let rules = ok(op.cmd("-list Rules").await, "List");
    assert!(
        rules["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "DenyRaw")
    );

    // Not a backup: refused, nothing changed.
    let r = failed(op.cmd("-restore {\"format\": 1}").await, "Restore");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("not a lothub backup"),
        "{r}"
    );
    assert_eq!(h.connack_v5("h2", "hank", "pw-h").await, 0x00);
    h.shutdown().await;
}

#[tokio::test]
async fn a_retained_command_runs_but_is_never_kept() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    // Sent with RETAIN: it still runs (and answers) ...
    op.c.client
        .publish(
            "$SYS/Coreflux/Command",
            Q5::AtLeastOnce,
            true,
            bytes::Bytes::from_static(b"-addUser alice s3cret-pw"),
        )
        .await
        .unwrap();
    ok(op.reply().await, "AddUser");
    // ... but a later subscriber of the command topic (root may read all of $SYS) gets no
    // retained copy of it, so the password it carried is not kept in the clear.
    let mut late = h.v5_as("late", "root", ROOT_PW).await;
    late.subscribe("$SYS/Coreflux/Command", Q5::AtLeastOnce)
        .await;
    late.expect_no_publish(std::time::Duration::from_millis(700))
        .await;
    h.shutdown().await;
}
