//! `$SYS/Coreflux/Command` from real MQTT clients: the user verbs, replies (shape, `-requestId`,
//! MQTT 5 Response Topic + Correlation Data), unknown verbs, and who may run commands at all.
//! LOT verbs are in `commands_lot.rs`, env/secrets/backup/status in `commands_system.rs`.

mod commands_support;
mod common;

use commands_support::*;
use common::*;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PublishProperties};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn add_user_connects_remove_user_cannot() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let r = op.cmd("-addUser alice pw-1").await;
    assert_eq!(
        r,
        json!({"success": true, "command": "AddUser", "message": "User 'alice' added",
               "entityType": "User", "entityName": "alice"})
    );
    assert_eq!(h.connack_v5("a1", "alice", "pw-1").await, 0x00);
    assert_eq!(h.connack_v5("a2", "alice", "wrong").await, 0x86);

    let r = failed(op.cmd("-addUser alice other").await, "AddUser");
    assert_eq!(r["message"], "User 'alice' already exists");

    let r = ok(op.cmd("-removeUser alice").await, "RemoveUser");
    assert_eq!(r["message"], "User 'alice' removed");
    assert_eq!(r["entityName"], "alice");
    assert_eq!(h.connack_v5("a3", "alice", "pw-1").await, 0x86);

    let r = failed(op.cmd("-removeUser alice").await, "RemoveUser");
    assert_eq!(r["message"], "User 'alice' does not exist");
    assert_eq!(r["errors"][0]["message"], "User 'alice' does not exist");
    let r = failed(op.cmd("-removeUser root").await, "RemoveUser");
    assert_eq!(r["message"], "The root user cannot be removed");
    h.shutdown().await;
}

#[tokio::test]
async fn password_flags_groups_and_list() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    ok(op.cmd("-addUser bob first").await, "AddUser");
    let r = ok(
        op.cmd("-changeUserPassword bob second").await,
        "ChangeUserPassword",
    );
    assert_eq!(r["message"], "Password of user 'bob' changed");
    assert_eq!(h.connack_v5("b1", "bob", "first").await, 0x86);
    assert_eq!(h.connack_v5("b2", "bob", "second").await, 0x00);

    let r = ok(
        op.cmd("-changeUserSettings bob AllowedSystemConfiguration true")
            .await,
        "ChangeUserSettings",
    );
    assert_eq!(
        r["message"],
        "User 'bob': AllowedSystemConfiguration set to true"
    );
    ok(
        op.cmd("-changeUserSettings bob Custom42 false").await,
        "ChangeUserSettings",
    );
    let r = failed(
        op.cmd("-changeUserSettings bob X maybe").await,
        "ChangeUserSettings",
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("expected true or false"),
        "{r}"
    );
    let r = ok(op.cmd("-addUserToGroup bob ops").await, "AddUserToGroup");
    assert_eq!(r["message"], "User 'bob' added to group 'ops'");
    ok(op.cmd("-addUserToGroup bob field").await, "AddUserToGroup");
    let r = ok(
        op.cmd("-removeUserFromGroup bob field").await,
        "RemoveUserFromGroup",
    );
    assert_eq!(r["message"], "User 'bob' removed from group 'field'");

    let r = ok(op.cmd("-listUsers").await, "ListUsers");
    let users = r["data"].as_array().unwrap();
    let bob = users
        .iter()
        .find(|u| u["name"] == "bob")
        .expect("bob listed");
    assert_eq!(
        bob,
        &json!({"name": "bob", "flags": {"AllowedSystemConfiguration": true, "Custom42": false},
                "groups": ["ops"]})
    );
    assert!(users.iter().any(|u| u["name"] == "root"));
    let text = r.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("second"),
        "{text}"
    );

    let r = failed(op.cmd("-addUser onlyname").await, "AddUser");
    assert_eq!(
        r["message"],
        "missing password; usage: -addUser <user> <password>"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn request_id_unknown_verbs_and_quotes() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let r = ok(op.cmd("-status -requestId req-7").await, "Status");
    assert_eq!(r["requestId"], "req-7");
    let r = failed(op.cmd("-frobnicate now -requestId 8").await, "Frobnicate");
    assert_eq!(r["message"], "Unknown command: -frobnicate");
    assert_eq!(r["requestId"], "8");
    let r = failed(op.cmd("status").await, "Unknown");
    assert!(
        r["message"].as_str().unwrap().contains("starts with '-'"),
        "{r}"
    );
    // Double quotes group words: a password with a space.
    ok(op.cmd(r#"-addUser carol "two words""#).await, "AddUser");
    assert_eq!(h.connack_v5("c1", "carol", "two words").await, 0x00);
    h.shutdown().await;
}

#[tokio::test]
async fn mqtt5_response_topic_gets_the_reply_with_correlation_data() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    let mut req = h.v5_as("requester", "root", ROOT_PW).await;
    req.subscribe("replies/requester", Q5::AtLeastOnce).await;
    let props = PublishProperties {
        response_topic: Some("replies/requester".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"corr-1")),
        ..Default::default()
    };
    send_command(&req, "-addUser dave pw -requestId r1", Some(props)).await;
    let p = req.next_publish().await;
    assert_eq!(&p.topic[..], b"replies/requester");
    let props = p.properties.expect("reply properties");
    assert_eq!(props.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    let direct: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    let r = ok(direct, "AddUser");
    assert_eq!(r["requestId"], "r1");
    // The output topic gets the same reply.
    assert_eq!(op.reply().await, r);
    h.shutdown().await;
}

#[tokio::test]
async fn without_command_call_no_reply_and_puback_0x87() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    ok(op.cmd("-addUser eve pw").await, "AddUser");
    let mut eve = h.v5_as("eve", "eve", "pw").await;
    send_command(&eve, "-addUser mallory pw", None).await;
    let ack = eve
        .next_matching("PUBACK", |p| match p {
            Packet5::PubAck(a) => Some(a.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    // Anonymous over 3.1.1: acknowledged and dropped (no negative ack in 3.1.1), no reply.
    let (anon, _) = v4_connect(v4_options(&h.hub, "anon")).await;
    anon.client
        .publish(
            "$SYS/Coreflux/Command",
            rumqttc::QoS::AtLeastOnce,
            false,
            "-addUser m2 pw",
        )
        .await
        .unwrap();
    op.c.expect_no_publish(Duration::from_millis(500)).await;
    assert_eq!(h.connack_v5("m1", "mallory", "pw").await, 0x86);
    assert_eq!(h.connack_v5("m2", "m2", "pw").await, 0x86);
    // Other $SYS topics stay closed to clients, root included.
    let ack = {
        op.c.client
            .publish("$SYS/Coreflux/Rules/X", Q5::AtLeastOnce, false, "x")
            .await
            .unwrap();
        op.c.next_matching("PUBACK", |p| match p {
            Packet5::PubAck(a) => Some(a.clone()),
            _ => None,
        })
        .await
    };
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    h.shutdown().await;
}

#[tokio::test]
async fn each_verb_checks_its_own_scope() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    ok(op.cmd("-addUser umgr pw").await, "AddUser");
    ok(
        op.cmd("-changeUserSettings umgr AllowedUserManagement true")
            .await,
        "ChangeUserSettings",
    );
    // A user manager may call commands and read the output, and manage users...
    let mut um = Operator {
        c: h.v5_as("umgr", "umgr", "pw").await,
    };
    um.c.subscribe("$SYS/Coreflux/Command/Output", Q5::AtLeastOnce)
        .await;
    let r = ok(um.cmd("-addUser frank pw").await, "AddUser");
    assert_eq!(r["message"], "User 'frank' added");
    let _ = op.reply().await;
    // ...but not configure the system or deploy rules.
    let r = failed(um.cmd("-listEnv").await, "ListEnv");
    assert_eq!(r["message"], "Permission denied: -listEnv");
    let _ = op.reply().await;
    let r = failed(
        um.cmd("-addRule DEFINE RULE Sneaky WITH PRIORITY 100 FOR Publish TO TOPIC \"#\" ALLOW")
            .await,
        "AddRule",
    );
    assert_eq!(r["message"], "Permission denied: -addRule");
    let _ = op.reply().await;
    let r = ok(op.cmd("-list Rules").await, "List");
    let names: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"Sneaky"), "{names:?}");
    // The user manager reads the output topic too: skip root's reply there.
    assert_eq!(um.reply().await["command"], "List");
    // -status needs nothing beyond CommandCall.
    ok(um.cmd("-status").await, "Status");
    h.shutdown().await;
}

#[tokio::test]
async fn mqtt311_commands_and_dollar_response_topics() {
    let h = start_cmd_hub().await;
    let mut op = h.operator().await;
    // mosquitto_pub's default protocol: a 3.1.1 client, reply on the output topic only.
    let mut o = v4_options(&h.hub, "v4root");
    o.set_credentials("root", ROOT_PW);
    let (v4, _) = v4_connect(o).await;
    v4.client
        .publish(
            "$SYS/Coreflux/Command",
            rumqttc::QoS::AtLeastOnce,
            false,
            "-setEnv FROM=v4 -requestId v4-1",
        )
        .await
        .unwrap();
    let r = ok(op.reply().await, "SetEnv");
    assert_eq!(r["requestId"], "v4-1");

    // A Response Topic inside $SYS is never answered (a reply must not impersonate the hub's
    // own topics); the output topic still gets the reply.
    let mut req = h.v5_as("dollar", "root", ROOT_PW).await;
    req.subscribe("$SYS/Coreflux/Fake", Q5::AtLeastOnce).await;
    let props = PublishProperties {
        response_topic: Some("$SYS/Coreflux/Fake".into()),
        ..Default::default()
    };
    send_command(&req, "-listEnv", Some(props)).await;
    let r = ok(op.reply().await, "ListEnv");
    assert_eq!(r["data"], json!({"FROM": "v4"}));
    req.expect_no_publish(Duration::from_millis(300)).await;
    h.shutdown().await;
}
