//! A hub started in-process with the LOT runtime as its hooks (rules, users, `$SYS/Coreflux`),
//! on 127.0.0.1:0, and helpers for the outcomes a runtime test checks: CONNACK codes of refused
//! connections, PUBACK and SUBACK reasons, login options.
//!
//! Usage: `mod common; use common::runtime::*;` (the rest of `common` as usual).

use super::*;
use lothub::runtime::{Runtime, RuntimeSettings};
use lothub::storage::{RedbStore, Storage};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PubAckReason, SubscribeReasonCode};

/// Root's password in runtime test hubs.
pub const ROOT_PW: &str = "root-test-pw";

/// A hub whose hooks are a [`Runtime`].
pub struct RuntimeHub {
    pub hub: TestHub,
    pub runtime: Runtime,
}

/// Starts a hub on `storage` with `settings`: the runtime is built (seeding on first start) on
/// the blocking pool, the storage also backs the broker's store (retained messages).
pub async fn start_runtime_hub(storage: Storage, settings: RuntimeSettings) -> RuntimeHub {
    let store_storage = storage.clone();
    let runtime = tokio::task::spawn_blocking(move || Runtime::new(storage, settings))
        .await
        .unwrap()
        .expect("runtime starts");
    let store = RedbStore::new(store_storage).expect("store starts");
    let hub = start_hub_with(HubOptions {
        hooks: runtime.hooks(),
        store: Arc::new(store),
        sys_interval: None,
        ..HubOptions::default()
    })
    .await;
    runtime.attach(hub.broker());
    runtime.start();
    RuntimeHub { hub, runtime }
}

/// A fresh in-memory hub: anonymous clients allowed, root's password [`ROOT_PW`].
pub async fn start_default_runtime_hub() -> RuntimeHub {
    start_runtime_hub(Storage::in_memory().unwrap(), settings(true)).await
}

/// Runtime settings with root's password [`ROOT_PW`].
pub fn settings(allow_anonymous: bool) -> RuntimeSettings {
    RuntimeSettings {
        allow_anonymous,
        root_password: Some(ROOT_PW.to_string()),
    }
}

impl RuntimeHub {
    /// Runs `f` with the runtime on the blocking pool (runtime changes write to storage).
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Runtime) -> T + Send + 'static,
    ) -> T {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || f(&runtime))
            .await
            .unwrap()
    }

    /// Deploys `text`, panicking on errors.
    pub async fn deploy(&self, text: &str) {
        let text = text.to_string();
        self.with(move |r| r.deploy(&text).expect("LOT deploys"))
            .await;
    }

    pub fn v4_login(&self, id: &str, user: &str, password: &str) -> rumqttc::MqttOptions {
        let mut o = v4_options(&self.hub, id);
        o.set_credentials(user, password);
        o
    }

    pub fn v5_login(&self, id: &str, user: &str, password: &str) -> rumqttc::v5::MqttOptions {
        let mut o = v5_options(&self.hub, id);
        o.set_credentials(user, password);
        o
    }

    pub async fn shutdown(self) {
        self.runtime.shutdown().await;
        self.hub.shutdown().await;
    }
}

/// The outcome of an MQTT 3.1.1 CONNECT: `Ok(())` on success, else rumqttc's refusal text
/// (`... BadUserNamePassword` for return code 4, `... NotAuthorized` for 5).
pub async fn v4_connect_result(opts: rumqttc::MqttOptions) -> Result<(), String> {
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
    within("CONNACK (3.1.1)", async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
}

/// The CONNACK reason of an MQTT 5 CONNECT (rumqttc reports refusals as errors).
pub async fn v5_connect_code(opts: rumqttc::v5::MqttOptions) -> ConnectReturnCode {
    let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(opts, 10);
    within("CONNACK (5)", async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(Packet5::ConnAck(a))) => return a.code,
                Ok(_) => {}
                Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("MQTT 5 connect failed without CONNACK: {e:?}"),
            }
        }
    })
    .await
}

impl V5 {
    /// Publishes at QoS 1 and returns the PUBACK reason.
    pub async fn puback(&mut self, topic: &str, payload: &str) -> PubAckReason {
        self.client
            .publish(
                topic,
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                false,
                payload.to_string(),
            )
            .await
            .unwrap();
        self.next_matching("PUBACK", |p| match p {
            Packet5::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await
    }

    /// Subscribes at QoS 0 and returns the SUBACK reason of the one filter.
    pub async fn suback_code(&mut self, filter: &str) -> SubscribeReasonCode {
        let ack = self
            .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtMostOnce)
            .await;
        ack.return_codes[0]
    }
}

impl V4 {
    /// Subscribes at QoS 0 and returns whether the SUBACK granted it (0x80 = refused).
    pub async fn granted(&mut self, filter: &str) -> bool {
        let ack = self.subscribe(filter, rumqttc::QoS::AtMostOnce).await;
        !matches!(ack.return_codes[0], rumqttc::SubscribeReasonCode::Failure)
    }

    /// Publishes at QoS 1 (3.1.1 acknowledges even a refused message, so this only waits for
    /// the PUBACK).
    pub async fn publish_acked(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_string())
            .await
            .unwrap();
        self.next_matching("PUBACK", |p| match p {
            rumqttc::Packet::PubAck(_) => Some(()),
            _ => None,
        })
        .await;
    }
}
