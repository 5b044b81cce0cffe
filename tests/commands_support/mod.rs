//! Shared helpers for the `tests/commands*.rs` files: a hub with the LOT runtime and the command
//! service started in-process on 127.0.0.1:0, and an MQTT 5 "operator" client that sends a
//! command and returns the JSON reply from `$SYS/Coreflux/Command/Output`.
//!
//! Usage: `mod common; mod commands_support; use commands_support::*;`.
#![allow(dead_code)]

use crate::common::*;
use bytes::Bytes;
use lothub::app::HubOptions;
use lothub::broker::BrokerSettings;
use lothub::command::{CLIENT_SYS_TOPICS, Commands, OUTPUT_TOPIC};
use lothub::protocol::packet::{Packet, ProtocolVersion};
use lothub::runtime::{Runtime, RuntimeSettings};
use lothub::storage::Storage;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PublishProperties};
use serde_json::Value;

/// Root's password in every command test hub.
pub const ROOT_PW: &str = "root-pw";

/// A hub with the runtime (root password [`ROOT_PW`]) and the command service.
pub struct CmdHub {
    pub hub: TestHub,
    pub runtime: Runtime,
}

/// Starts a hub on `storage` (in memory when `None`).
pub async fn start_cmd_hub_on(storage: Option<Storage>) -> CmdHub {
    let storage = storage.unwrap_or_else(|| Storage::in_memory().unwrap());
    let runtime = tokio::task::spawn_blocking(move || {
        Runtime::new(
            storage,
            RuntimeSettings {
                allow_anonymous: true,
                root_password: Some(ROOT_PW.to_string()),
            },
        )
        .unwrap()
    })
    .await
    .unwrap();
    let settings = BrokerSettings {
        client_sys_publish_topics: CLIENT_SYS_TOPICS.iter().map(|t| t.to_string()).collect(),
        ..BrokerSettings::default()
    };
    let hub = start_hub_with(HubOptions {
        settings,
        hooks: runtime.hooks(),
        sys_interval: None,
        ..HubOptions::default()
    })
    .await;
    runtime.attach(hub.broker());
    runtime.start();
    Commands::start(&runtime);
    CmdHub { hub, runtime }
}

pub async fn start_cmd_hub() -> CmdHub {
    start_cmd_hub_on(None).await
}

impl CmdHub {
    pub async fn shutdown(self) {
        self.hub.shutdown().await;
    }

    /// An MQTT 5 client logged in as `user` / `password`; panics unless CONNACK is success.
    pub async fn v5_as(&self, id: &str, user: &str, password: &str) -> V5 {
        let mut o = v5_options(&self.hub, id);
        o.set_credentials(user, password);
        let (c, ack) = v5_connect(o).await;
        assert_eq!(ack.code, ConnectReturnCode::Success, "{user} connects");
        c
    }

    /// The CONNACK reason code for `user` / `password` over MQTT 5 (0 success, 0x86 bad
    /// user name or password).
    pub async fn connack_v5(&self, id: &str, user: &str, password: &str) -> u8 {
        let mut c = connect_opts(id, ProtocolVersion::V5, true);
        c.username = Some(user.to_string());
        c.password = Some(Bytes::copy_from_slice(password.as_bytes()));
        let (_raw, ack) = Raw::connect_with(&self.hub, Packet::Connect(Box::new(c))).await;
        match ack {
            Packet::ConnAck(a) => a.reason,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Root, subscribed to the command output.
    pub async fn operator(&self) -> Operator {
        let mut c = self.v5_as("operator", "root", ROOT_PW).await;
        c.subscribe(OUTPUT_TOPIC, Q5::AtLeastOnce).await;
        Operator { c }
    }
}

/// An MQTT 5 client subscribed to `$SYS/Coreflux/Command/Output`.
pub struct Operator {
    pub c: V5,
}

impl Operator {
    /// Sends `command` and returns the next reply on the output topic, parsed.
    pub async fn cmd(&mut self, command: &str) -> Value {
        send_command(&self.c, command, None).await;
        self.reply().await
    }

    /// The next message on the output topic, parsed.
    pub async fn reply(&mut self) -> Value {
        let p = self
            .c
            .next_matching("a command reply", |p| match p {
                Packet5::Publish(p) if p.topic == OUTPUT_TOPIC.as_bytes() => Some(p.clone()),
                _ => None,
            })
            .await;
        serde_json::from_slice(&p.payload).expect("the reply is JSON")
    }
}

/// Publishes `command` to `$SYS/Coreflux/Command` (QoS 1), with MQTT 5 properties if given.
pub async fn send_command(c: &V5, command: &str, props: Option<PublishProperties>) {
    let payload = Bytes::copy_from_slice(command.as_bytes());
    match props {
        Some(p) => c
            .client
            .publish_with_properties("$SYS/Coreflux/Command", Q5::AtLeastOnce, false, payload, p)
            .await
            .unwrap(),
        None => c
            .client
            .publish("$SYS/Coreflux/Command", Q5::AtLeastOnce, false, payload)
            .await
            .unwrap(),
    }
}

/// Asserts a successful reply of `command` and returns it.
pub fn ok(reply: Value, command: &str) -> Value {
    assert_eq!(reply["success"], true, "{reply:#}");
    assert_eq!(reply["command"], command, "{reply:#}");
    reply
}

/// Asserts a failed reply of `command` and returns it.
pub fn failed(reply: Value, command: &str) -> Value {
    assert_eq!(reply["success"], false, "{reply:#}");
    assert_eq!(reply["command"], command, "{reply:#}");
    reply
}
