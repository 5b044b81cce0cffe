//! Helpers for the engine's tests (`runtime_engine`, `runtime_models`, `runtime_actions`): a hub
//! on 127.0.0.1:0 whose hooks forward to a [`lothub::runtime::engine::Engine`], LOT deployment
//! from text, and subscriptions that collect what arrives.
//!
//! Usage: `mod common; mod engine_common; use engine_common::*;`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lothub::app::HubOptions;
use lothub::broker::hooks::PublishObservation;
use lothub::broker::{ClientInfo, DisconnectReason, Hooks};
use lothub::lot::{Definition, KnownNames, compile};
use lothub::runtime::engine::Engine;
use lothub::storage::Storage;

use crate::common::*;

/// Hooks that allow everything and hand every observation to the engine (what the runtime's
/// hooks do, without rules).
pub struct EngineHooks(pub Engine);

impl Hooks for EngineHooks {
    fn on_publish(&self, observation: &PublishObservation<'_>) {
        self.0.on_publish(observation);
    }
    fn on_connect(&self, client: &ClientInfo) {
        self.0.on_connect(client);
    }
    fn on_disconnect(&self, client: &ClientInfo, _reason: DisconnectReason) {
        self.0.on_disconnect(client);
    }
}

/// A hub with an engine.
pub struct LotHub {
    pub hub: TestHub,
    pub engine: Engine,
    pub storage: Storage,
}

impl LotHub {
    /// Compiles `text` and deploys it (replacing everything deployed before).
    pub fn deploy(&self, text: &str) {
        deploy(&self.engine, text);
    }

    /// A connected MQTT 3.1.1 client.
    pub async fn client(&self, id: &str) -> V4 {
        v4_connect(v4_options(&self.hub, id)).await.0
    }

    pub async fn shutdown(self) {
        self.engine.shutdown().await;
        self.hub.shutdown().await;
    }
}

/// Compiles `text` (panicking with the errors) and deploys it on `engine`.
pub fn deploy(engine: &Engine, text: &str) {
    let defs: Vec<Arc<Definition>> = compile(text, None, &KnownNames::default())
        .unwrap_or_else(|errors| {
            let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            panic!("LOT does not compile:\n{}", shown.join("\n"))
        })
        .into_iter()
        .map(Arc::new)
        .collect();
    engine.deploy(defs.iter());
}

/// A hub with `text` deployed and the engine started, on fresh in-memory storage.
pub async fn start_lot(text: &str) -> LotHub {
    let lot = start_lot_unstarted(Storage::in_memory().unwrap(), text).await;
    lot.engine.start();
    lot
}

/// A hub with `text` deployed, the engine not started yet (ON START has not run).
pub async fn start_lot_unstarted(storage: Storage, text: &str) -> LotHub {
    let engine = Engine::new(storage.clone());
    let hub = start_hub_with(HubOptions {
        hooks: Arc::new(EngineHooks(engine.clone())),
        sys_interval: None,
        ..HubOptions::default()
    })
    .await;
    engine.attach(hub.broker());
    deploy(&engine, text);
    LotHub {
        hub,
        engine,
        storage,
    }
}

/// Publishes at QoS 0 from `c`.
pub async fn send(c: &V4, topic: &str, payload: &str) {
    c.client
        .publish(
            topic,
            rumqttc::QoS::AtMostOnce,
            false,
            payload.as_bytes().to_vec(),
        )
        .await
        .unwrap();
}

/// Subscribes `c` to every filter (QoS 0), waiting for each SUBACK.
pub async fn subscribe_all(c: &mut V4, filters: &[&str]) {
    for f in filters {
        c.subscribe(f, rumqttc::QoS::AtMostOnce).await;
    }
}

/// The next PUBLISH as (topic, payload text).
pub async fn next(c: &mut V4) -> (String, String) {
    let p = c.next_publish().await;
    (p.topic, String::from_utf8_lossy(&p.payload).into_owned())
}

/// The next PUBLISH on `topic`, skipping others.
pub async fn next_on(c: &mut V4, topic: &str) -> String {
    c.next_matching(&format!("PUBLISH on {topic}"), |p| match p {
        rumqttc::Packet::Publish(p) if p.topic == topic => {
            Some(String::from_utf8_lossy(&p.payload).into_owned())
        }
        _ => None,
    })
    .await
}

/// Every PUBLISH that arrives within `d`, as (topic, payload text).
pub async fn collect_for(c: &mut V4, d: Duration) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + d;
    let mut out = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, c.events.recv()).await {
        if let Ev4::In(rumqttc::Packet::Publish(p)) = ev {
            out.push((p.topic, String::from_utf8_lossy(&p.payload).into_owned()));
        }
    }
    out
}
