//! MODELs in the live hub (spec §3), from real MQTT clients: JSON per wildcard instance, FROM
//! inheritance, RETAIN, conversion errors to `$SYS/Coreflux/Models/<Name>/Error`, and the
//! last-value store (KEEP TOPIC / GET TOPIC, across a restart on the same storage).

mod common;
mod engine_common;

use std::time::Duration;

use common::*;
use engine_common::*;
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const ROOM: &str = "\
DEFINE MODEL Room WITH TOPIC \"rooms/+/state\"
    ADD DOUBLE \"temp\" WITH TOPIC \"sensors/+/temp\" AS TRIGGER
    ADD INT \"hum\" WITH TOPIC \"sensors/+/hum\"
    ADD STRING \"site\" WITH \"plant1\"
";

#[tokio::test]
async fn model_publishes_typed_json_per_wildcard_instance() {
    let lot = start_lot(ROOM).await;
    let mut sub = lot.client("sub").await;
    subscribe_all(&mut sub, &["rooms/#"]).await;
    let dev = lot.client("dev").await;
    send(&dev, "sensors/r1/hum", "40").await;
    send(&dev, "sensors/r2/hum", "55").await;
    // Not a trigger: no output.
    sub.expect_no_publish(Duration::from_millis(200)).await;
    send(&dev, "sensors/r1/temp", "21.5").await;
    send(&dev, "sensors/r2/temp", "19").await;
    let (t1, p1) = next(&mut sub).await;
    let (t2, p2) = next(&mut sub).await;
    assert_eq!(t1, "rooms/r1/state");
    let p1 = json(&p1);
    assert_eq!(p1["temp"].as_f64(), Some(21.5));
    assert_eq!(p1["hum"].as_i64(), Some(40));
    assert_eq!(p1["site"], "plant1");
    assert_eq!(t2, "rooms/r2/state");
    let p2 = json(&p2);
    assert_eq!(p2["temp"].as_f64(), Some(19.0));
    assert_eq!(p2["hum"].as_i64(), Some(55), "r2's own humidity, not r1's");
    // Field order is definition order.
    let keys: Vec<&String> = p2.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3);
    lot.shutdown().await;
}

#[tokio::test]
async fn inherited_trigger_and_retained_output() {
    let lot = start_lot(
        "DEFINE MODEL Base COLLAPSED\n    ADD INT \"v\" WITH TOPIC \"m/+/v\" AS TRIGGER\n\
         DEFINE MODEL Child FROM Base WITH TOPIC \"out/+/child\" WITH RETAIN AND QOS1\n    ADD STRING \"kind\" WITH \"child\"\n",
    )
    .await;
    let mut watch = lot.client("watch").await;
    subscribe_all(&mut watch, &["out/#"]).await;
    let dev = lot.client("dev").await;
    send(&dev, "m/a/v", "7").await;
    let (_, live) = next(&mut watch).await;
    // A later subscriber gets the output as a retained message.
    let mut late = lot.client("late").await;
    late.client
        .subscribe("out/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = late.next_publish().await;
    assert!(retained.retain, "delivered as retained");
    assert_eq!(retained.qos, rumqttc::QoS::AtLeastOnce);
    let (topic, payload) = (
        retained.topic.clone(),
        String::from_utf8_lossy(&retained.payload).into_owned(),
    );
    assert_eq!(payload, live);
    assert_eq!(topic, "out/a/child");
    let p = json(&payload);
    assert_eq!(p["v"].as_i64(), Some(7));
    assert_eq!(p["kind"], "child");
    lot.shutdown().await;
}

#[tokio::test]
async fn conversion_error_gives_null_and_an_error_line() {
    let lot = start_lot(
        "DEFINE MODEL Meter WITH TOPIC \"meters/+/json\"\n    ADD INT \"n\" WITH TOPIC \"meters/+/n\" AS TRIGGER\n    ADD STRING \"id\" WITH TOPIC POSITION 2\n",
    )
    .await;
    let mut sub = lot.client("sub").await;
    subscribe_all(&mut sub, &["meters/+/json", "$SYS/Coreflux/Models/+/Error"]).await;
    let dev = lot.client("dev").await;
    send(&dev, "meters/m1/n", "abc").await;
    let got = collect_for(&mut sub, Duration::from_millis(500)).await;
    let find = |topic: &str| {
        got.iter()
            .find(|(t, _)| t == topic)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("nothing on {topic}: {got:?}"))
    };
    let out = json(&find("meters/m1/json"));
    assert!(out["n"].is_null(), "{out}");
    assert_eq!(out["id"], "m1");
    let error = find("$SYS/Coreflux/Models/Meter/Error");
    assert!(error.starts_with("Meter:2:"), "{error}");
    assert!(error.contains("\"n\""), "{error}");
    // The model keeps running.
    send(&dev, "meters/m1/n", "12").await;
    let out = json(&next_on(&mut sub, "meters/m1/json").await);
    assert_eq!(out["n"].as_i64(), Some(12));
    lot.shutdown().await;
}

const STORE: &str = "\
DEFINE ACTION Keep
ON TOPIC \"cfg/set\" DO
    KEEP TOPIC \"cfg/limit\" WITH PAYLOAD
DEFINE ACTION Read
ON TOPIC \"cfg/get\" DO
    PUBLISH TOPIC \"cfg/value\" WITH GET TOPIC \"cfg/limit\"
";

#[tokio::test]
async fn keep_topic_then_get_topic_survives_a_restart() {
    let lot = start_lot(STORE).await;
    let mut sub = lot.client("sub").await;
    subscribe_all(&mut sub, &["cfg/#"]).await;
    send(&sub, "cfg/set", "42").await;
    assert_eq!(next_on(&mut sub, "cfg/set").await, "42");
    eventually("the kept value", || {
        lot.engine.last_value("cfg/limit").is_some()
    })
    .await;
    send(&sub, "cfg/get", "").await;
    let got = collect_for(&mut sub, Duration::from_millis(500)).await;
    // KEEP TOPIC stores without delivering: nothing arrived on cfg/limit.
    assert!(got.iter().all(|(t, _)| t != "cfg/limit"), "{got:?}");
    assert!(got.contains(&("cfg/value".into(), "42".into())), "{got:?}");
    let storage = lot.storage.clone();
    lot.shutdown().await;

    // A new hub and engine on the same storage read the kept value back.
    let again = start_lot_unstarted(storage, STORE).await;
    again.engine.start();
    let mut sub = again.client("sub2").await;
    subscribe_all(&mut sub, &["cfg/value"]).await;
    send(&sub, "cfg/get", "").await;
    assert_eq!(next_on(&mut sub, "cfg/value").await, "42");
    again.shutdown().await;
}

#[tokio::test]
async fn only_readable_topics_are_recorded() {
    let lot = start_lot(ROOM).await;
    let dev = lot.client("dev").await;
    send(&dev, "other/topic", "1").await;
    send(&dev, "sensors/x/hum", "1").await;
    eventually("the readable topic", || {
        lot.engine.last_value("sensors/x/hum").is_some()
    })
    .await;
    // Sent before the readable one, so it was seen already: never recorded.
    assert_eq!(lot.engine.last_value("other/topic"), None);
    assert_eq!(lot.engine.stats().recorded_topics, 1);
    lot.shutdown().await;
}
