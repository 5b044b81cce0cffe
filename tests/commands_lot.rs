//! The LOT verbs from real MQTT clients: `-addRule` takes effect at once, a bad text answers
//! with line and column and changes nothing, `-lot` is all or nothing, replace-by-name,
//! removal, `-restoreRules`, `-list`.

mod commands_support;
mod common;

use commands_support::*;
use common::*;
use lothub::lot::{KnownNames, compile};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::PubAckReason;
use serde_json::{Value, json};

/// Publishes on `topic` at QoS 1 as `c` and returns the PUBACK reason.
async fn puback(c: &mut V5, topic: &str) -> PubAckReason {
    c.client
        .publish(topic, Q5::AtLeastOnce, false, "x")
        .await
        .unwrap();
    c.next_matching("PUBACK", |p| match p {
        Packet5::PubAck(a) => Some(a.reason),
        _ => None,
    })
    .await
}

/// An anonymous MQTT 5 client (rules apply to it; root would bypass them).
async fn anonymous(h: &CmdHub, id: &str) -> V5 {
    let (c, _) = v5_connect(v5_options(&h.hub, id)).await;
    c
}

fn names(reply: &Value) -> Vec<String> {
    reply["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

const DENY_RAW: &str =
    "-addRule DEFINE RULE DenyRaw WITH PRIORITY 100 FOR Publish TO TOPIC \"raw/#\" DENY";

#[tokio::test]
async fn add_rule_denies_at_once_and_a_bad_rule_keeps_the_old_one() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let mut anon = anonymous(&h, "anon").await;
    assert_ne!(
        puback(&mut anon, "raw/1").await,
        PubAckReason::NotAuthorized
    );

    let r = ok(op.cmd(DENY_RAW).await, "AddRule");
    assert_eq!(r["message"], "Rule 'DenyRaw' added");
    assert_eq!(r["entityType"], "Rule");
    assert_eq!(r["entityName"], "DenyRaw");
    assert_eq!(
        r["data"],
        json!([{"kind": "Rule", "name": "DenyRaw", "replaced": false}])
    );
    assert_eq!(
        puback(&mut anon, "raw/1").await,
        PubAckReason::NotAuthorized
    );
    assert_ne!(
        puback(&mut anon, "cooked/1").await,
        PubAckReason::NotAuthorized
    );

    // A broken replacement: the verb stands on line 1, the error is on line 3.
    let text = "\nDEFINE RULE DenyRaw WITH PRIORITY 100 FOR Publish TO TOPIC \"raw/#\"\n    IF USER IS THEN ALLOW";
    let expected = compile(text, None, &KnownNames::default()).unwrap_err();
    let r = failed(op.cmd(&format!("-addRule{text}")).await, "AddRule");
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), expected.len());
    assert_eq!(errors[0]["line"], 3, "{r:#}");
    assert_eq!(errors[0]["line"], expected[0].line);
    assert_eq!(errors[0]["column"], expected[0].col);
    assert_eq!(errors[0]["message"], expected[0].message.as_str());
    assert_eq!(errors[0]["source"], "    IF USER IS THEN ALLOW");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.starts_with("Rule not deployed, 1 error(s): 3:"),
        "{message}"
    );
    // The old rule is still in force.
    assert_eq!(
        puback(&mut anon, "raw/2").await,
        PubAckReason::NotAuthorized
    );
    h.shutdown().await;
}

#[tokio::test]
async fn replace_by_name_and_remove() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let mut anon = anonymous(&h, "anon").await;
    ok(op.cmd(DENY_RAW).await, "AddRule");
    let r = ok(
        op.cmd(
            "-addRule DEFINE RULE DenyRaw WITH PRIORITY 100 FOR Publish TO TOPIC \"other/#\" DENY",
        )
        .await,
        "AddRule",
    );
    assert_eq!(r["message"], "Rule 'DenyRaw' replaced");
    assert_eq!(r["data"][0]["replaced"], true);
    assert_ne!(
        puback(&mut anon, "raw/1").await,
        PubAckReason::NotAuthorized
    );
    assert_eq!(
        puback(&mut anon, "other/1").await,
        PubAckReason::NotAuthorized
    );

    let r = ok(op.cmd("-removeRule DenyRaw").await, "RemoveRule");
    assert_eq!(r["message"], "Rule 'DenyRaw' removed");
    assert_ne!(
        puback(&mut anon, "other/1").await,
        PubAckReason::NotAuthorized
    );
    let r = failed(op.cmd("-removeRule DenyRaw").await, "RemoveRule");
    assert_eq!(r["message"], "Rule 'DenyRaw' does not exist");

    // -addRule takes rules only.
    let r = failed(
        op.cmd("-addRule DEFINE MODEL M WITH TOPIC \"m/out\"\n    ADD \"x\" WITH TOPIC \"m/in\" AS TRIGGER")
            .await,
        "AddRule",
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("expected a RULE definition, found MODEL M"),
        "{r}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn lot_deploys_all_or_nothing() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let good_rule = "DEFINE RULE LotRule WITH PRIORITY 100 FOR Publish TO TOPIC \"lot/#\" DENY";
    let model = "DEFINE MODEL LotModel WITH TOPIC \"lot/out\"\n    ADD \"x\" WITH TOPIC \"lot/in\" AS TRIGGER";
    let bad_action = "DEFINE ACTION Broken\nON TOPIC \"a/b\" DO\n    PUBLISH TOPIC";
    let r = failed(
        op.cmd(&format!("-lot {good_rule}\n{model}\n{bad_action}"))
            .await,
        "Lot",
    );
    let first = &r["errors"][0];
    assert!(first["line"].as_u64().unwrap() >= 4, "{r:#}");
    assert!(!names(&ok(op.cmd("-list Rules").await, "List")).contains(&"LotRule".to_string()));
    assert!(names(&ok(op.cmd("-list Models").await, "List")).is_empty());

    let r = ok(op.cmd(&format!("-lot {good_rule}\n{model}")).await, "Lot");
    assert_eq!(
        r["message"],
        "2 definitions deployed: Rule 'LotRule', Model 'LotModel'"
    );
    assert_eq!(
        r["data"],
        json!([{"kind": "Rule", "name": "LotRule", "replaced": false},
               {"kind": "Model", "name": "LotModel", "replaced": false}])
    );
    let r = ok(op.cmd("-list Models").await, "List");
    assert_eq!(r["data"][0]["name"], "LotModel");
    assert!(
        r["data"][0]["source"]
            .as_str()
            .unwrap()
            .starts_with("DEFINE MODEL LotModel")
    );
    assert!(names(&ok(op.cmd("-list rules").await, "List")).contains(&"LotRule".to_string()));

    let r = ok(op.cmd("-removeAllModels").await, "RemoveAllModels");
    assert_eq!(r["data"]["removed"], 1);
    assert!(names(&ok(op.cmd("-list Models").await, "List")).is_empty());
    let r = failed(op.cmd("-list Users").await, "List");
    assert!(
        r["message"].as_str().unwrap().starts_with("cannot list"),
        "{r}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn restore_rules_brings_the_seed_rules_back() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let mut anon = anonymous(&h, "anon").await;
    ok(op.cmd("-removeRule AllowPublishTopic").await, "RemoveRule");
    assert_eq!(
        puback(&mut anon, "any/1").await,
        PubAckReason::NotAuthorized
    );
    let r = ok(op.cmd("-restoreRules").await, "RestoreRules");
    let restored = r["data"].as_array().unwrap();
    assert!(restored.iter().any(|d| d["name"] == "AllowPublishTopic"));
    assert_ne!(
        puback(&mut anon, "any/1").await,
        PubAckReason::NotAuthorized
    );
    let rules = names(&ok(op.cmd("-list Rules").await, "List"));
    assert!(rules.contains(&"AllowCommandCall".to_string()), "{rules:?}");
    // Routes: none deployed; listing works.
    let r = ok(op.cmd("-listRoutes").await, "ListRoutes");
    assert_eq!(r["data"], json!([]));
    h.shutdown().await;
}

#[tokio::test]
async fn lot_checks_the_creation_scope_of_every_kind() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    // An asset manipulator may deploy models and actions, not rules; AllowedUserManagement
    // gives it CommandCall and the output topic.
    ok(op.cmd("-addUser asset pw").await, "AddUser");
    for flag in ["AllowedAssetManipulation", "AllowedUserManagement"] {
        ok(
            op.cmd(&format!("-changeUserSettings asset {flag} true"))
                .await,
            "ChangeUserSettings",
        );
    }
    let mut am = Operator {
        c: h.v5_as("asset", "asset", "pw").await,
    };
    am.c.subscribe("$SYS/Coreflux/Command/Output", Q5::AtLeastOnce)
        .await;
    let model =
        "DEFINE MODEL M1 WITH TOPIC \"m1/out\"\n    ADD \"x\" WITH TOPIC \"m1/in\" AS TRIGGER";
    let rule = "DEFINE RULE R1 WITH PRIORITY 100 FOR Publish TO TOPIC \"r1/#\" DENY";
    let r = failed(am.cmd(&format!("-lot {model}\n{rule}")).await, "Lot");
    assert_eq!(r["message"], "Permission denied: -lot");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("RuleManagementCreation"),
        "{r}"
    );
    let _ = op.reply().await;
    assert!(names(&ok(op.cmd("-list Models").await, "List")).is_empty());
    let _ = am.reply().await;
    let r = ok(am.cmd(&format!("-lot {model}")).await, "Lot");
    assert_eq!(r["message"], "Model 'M1' added");
    h.shutdown().await;
}

#[tokio::test]
async fn commands_run_in_arrival_order() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    // Password hashing takes tens of milliseconds: later, cheaper commands must still wait.
    for i in 0..10 {
        let cmd = if i % 2 == 0 {
            format!("-addUser u{i} pw -requestId {i}")
        } else {
            format!("-setEnv V{i}=x -requestId {i}")
        };
        send_command(&op.c, &cmd, None).await;
    }
    for i in 0..10 {
        let r = ok(
            op.reply().await,
            if i % 2 == 0 { "AddUser" } else { "SetEnv" },
        );
        assert_eq!(r["requestId"], i.to_string());
    }
    h.shutdown().await;
}
