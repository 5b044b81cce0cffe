//! MQTT_BRIDGE routes between two lothub hubs on loopback (issue #6): an edge hub runs a route
//! compiled from LOT text toward a cloud hub. out / in / both, wildcard remapping, no loops,
//! the status JSON, and store-and-forward across a cloud outage and across an edge restart.

mod routes_support;

use lothub::protocol::packet::QoS;
use lothub::storage::Storage;
use routes_support::*;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_and_in_with_wildcard_remapping() {
    let (cloud_hub, cloud_tap) = cloud(0).await;
    let port = cloud_hub.local_addrs()[0].port();
    let text = bridge_text(
        "Plant",
        port,
        4,
        &[
            ("factory/#", "sites/a/factory/#", "out"),
            ("commands/+/#", "sites/a/commands/+/#", "in"),
        ],
    );
    let edge = Edge::start(Storage::in_memory().unwrap(), &text).await;
    edge.wait_connection("Plant", "Connected").await;

    let edge_broker = edge.broker();
    edge_broker
        .publish_simple("factory/l1/t", "21.5", QoS::AtLeastOnce, false)
        .unwrap();
    // Not covered by any out mapping: must stay on the edge.
    edge_broker
        .publish_simple("office/t", "x", QoS::AtLeastOnce, false)
        .unwrap();
    cloud_tap
        .wait_for("factory/l1/t remapped on the cloud", LONG, |s| {
            s.iter().any(|m| m.topic == "sites/a/factory/l1/t")
        })
        .await;
    assert_eq!(cloud_tap.payloads("sites/a/factory/l1/t"), vec!["21.5"]);

    // `in`: the cloud publishes under the destination pattern, the edge gets the source topic.
    let cloud_broker = cloud_hub.broker();
    // The route subscribes right after CONNACK; give the SUBSCRIBE a moment to land.
    let deadline = tokio::time::Instant::now() + LONG;
    while edge.tap.count("commands/m7/stop/now") == 0 {
        cloud_broker
            .publish_simple("sites/a/commands/m7/stop/now", "1", QoS::AtLeastOnce, false)
            .unwrap();
        assert!(
            tokio::time::Instant::now() < deadline,
            "in mapping never delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = edge.tap.seen.lock().clone();
    let arrived = seen
        .iter()
        .find(|s| s.topic == "commands/m7/stop/now")
        .unwrap();
    assert_eq!(arrived.payload, "1");
    assert_eq!(arrived.listener.as_deref(), Some("route:Plant"));
    assert_eq!(cloud_tap.count("sites/a/office/t"), 0);
    assert!(
        cloud_tap
            .seen
            .lock()
            .iter()
            .all(|s| !s.topic.contains("office"))
    );
    // An `in` message is not sent back out (no out mapping covers it, and it is route-origin).
    assert_eq!(cloud_tap.count("commands/m7/stop/now"), 0);

    // The retained status JSON on the edge.
    let status = edge.routes.status("Plant").unwrap().to_json();
    assert_eq!(status["name"], "Plant");
    assert_eq!(status["type"], "MQTT_BRIDGE");
    assert_eq!(status["connection"], "Connected");
    assert!(status["connectedSince"].is_string());
    assert!(status["messages"]["forwarded"].as_u64().unwrap() >= 2);
    assert!(
        edge.tap
            .seen
            .lock()
            .iter()
            .any(|s| s.topic == "$SYS/Coreflux/Routes/Plant/status"
                && s.payload.contains("\"Connected\""))
    );

    edge.stop().await;
    cloud_hub.shutdown().await;
}

async fn both_without_loops(version: u8) {
    let (cloud_hub, cloud_tap) = cloud(0).await;
    let port = cloud_hub.local_addrs()[0].port();
    let text = bridge_text("Shared", port, version, &[("shared/#", "shared/#", "both")]);
    let edge = Edge::start(Storage::in_memory().unwrap(), &text).await;
    edge.wait_connection("Shared", "Connected").await;
    // Wait until the route's subscription on the cloud works (a cloud message comes in).
    let cloud_broker = cloud_hub.broker();
    let deadline = tokio::time::Instant::now() + LONG;
    while edge.tap.count("shared/probe") == 0 {
        cloud_broker
            .publish_simple("shared/probe", "p", QoS::AtLeastOnce, false)
            .unwrap();
        assert!(
            tokio::time::Instant::now() < deadline,
            "both: in never worked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Edge -> cloud once; the cloud's copy must not come back to the edge.
    edge.broker()
        .publish_simple("shared/from-edge", "e1", QoS::AtLeastOnce, false)
        .unwrap();
    // Cloud -> edge once; the edge's copy must not go back to the cloud.
    cloud_broker
        .publish_simple("shared/from-cloud", "c1", QoS::AtLeastOnce, false)
        .unwrap();
    cloud_tap
        .wait_for("edge message on the cloud", LONG, |s| {
            s.iter().any(|m| m.topic == "shared/from-edge")
        })
        .await;
    edge.tap
        .wait_for("cloud message on the edge", LONG, |s| {
            s.iter().any(|m| m.topic == "shared/from-cloud")
        })
        .await;
    // Time for any loop to show itself.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cloud_tap.payloads("shared/from-edge"), vec!["e1"]);
    assert_eq!(edge.tap.payloads("shared/from-edge"), vec!["e1"]);
    assert_eq!(cloud_tap.payloads("shared/from-cloud"), vec!["c1"]);
    assert_eq!(edge.tap.payloads("shared/from-cloud"), vec!["c1"]);

    edge.stop().await;
    cloud_hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_never_loops_mqtt311() {
    both_without_loops(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_never_loops_mqtt5() {
    both_without_loops(5).await;
}

/// Publishes `n` QoS 1 messages `0..n` on the edge's `factory/line/seq`.
fn publish_numbered(edge: &Edge, n: usize) {
    let b = edge.broker();
    for i in 0..n {
        b.publish_simple("factory/line/seq", i.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
    }
}

async fn wait_buffered(edge: &Edge, name: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let st = edge.routes.status(name).unwrap().to_json();
        if st["messages"]["buffered"].as_u64() == Some(n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "buffer never reached {n}: {st}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_outage_loses_nothing() {
    let (cloud_hub, _) = cloud(0).await;
    let port = cloud_hub.local_addrs()[0].port();
    let text = bridge_text("Up", port, 4, &[("factory/#", "sites/a/factory/#", "out")]);
    let edge = Edge::start(Storage::in_memory().unwrap(), &text).await;
    edge.wait_connection("Up", "Connected").await;

    cloud_hub.shutdown().await;
    edge.wait_connection("Up", "Reconnecting").await;
    publish_numbered(&edge, 1000);
    wait_buffered(&edge, "Up", 1000).await;

    let (cloud_hub, cloud_tap) = cloud(port).await;
    cloud_tap
        .wait_for("1,000 messages after the outage", LONG, |s| {
            s.iter()
                .filter(|m| m.topic == "sites/a/factory/line/seq")
                .count()
                >= 1000
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cloud_tap.payloads("sites/a/factory/line/seq"),
        expected(1000)
    );
    wait_buffered(&edge, "Up", 0).await;
    let st = edge.routes.status("Up").unwrap().to_json();
    assert_eq!(st["messages"]["dropped"], 0);
    assert_eq!(st["connection"], "Connected");

    edge.stop().await;
    cloud_hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_restart_keeps_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    // A free port for a cloud that is not running yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = bridge_text(
        "Persist",
        port,
        5,
        &[("factory/#", "sites/b/factory/#", "out")],
    );

    let edge = Edge::start(Storage::open(dir.path()).unwrap(), &text).await;
    publish_numbered(&edge, 1000);
    wait_buffered(&edge, "Persist", 1000).await;
    edge.stop().await;

    // Everything from the first run is gone except the data directory.
    let edge = Edge::start(Storage::open(dir.path()).unwrap(), &text).await;
    wait_buffered(&edge, "Persist", 1000).await;
    let (cloud_hub, cloud_tap) = cloud(port).await;
    cloud_tap
        .wait_for("1,000 messages after the edge restart", LONG, |s| {
            s.iter()
                .filter(|m| m.topic == "sites/b/factory/line/seq")
                .count()
                >= 1000
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cloud_tap.payloads("sites/b/factory/line/seq"),
        expected(1000)
    );
    wait_buffered(&edge, "Persist", 0).await;
    edge.stop().await;
    cloud_hub.shutdown().await;

    // Acknowledged messages were deleted from the stored buffer too.
    let storage = Storage::open(dir.path()).unwrap();
    assert!(storage.route_buffer_load("Persist").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_and_removing_a_route() {
    let (cloud_hub, cloud_tap) = cloud(0).await;
    let port = cloud_hub.local_addrs()[0].port();
    let first = bridge_text("R", port, 4, &[("a/#", "first/#", "out")]);
    let edge = Edge::start(Storage::in_memory().unwrap(), &first).await;
    edge.wait_connection("R", "Connected").await;
    let second = bridge_text("R", port, 4, &[("a/#", "second/#", "out")]);
    edge.routes.deploy(&compile(&second));
    edge.wait_connection("R", "Connected").await;
    edge.broker()
        .publish_simple("a/x", "1", QoS::AtLeastOnce, false)
        .unwrap();
    cloud_tap
        .wait_for("the replaced route's mapping", LONG, |s| {
            s.iter().any(|m| m.topic == "second/x")
        })
        .await;
    assert_eq!(cloud_tap.count("first/x"), 0);

    edge.routes.deploy(&[]);
    assert!(edge.routes.status("R").is_none());
    edge.broker()
        .publish_simple("a/y", "2", QoS::AtLeastOnce, false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cloud_tap.count("second/y"), 0);
    edge.stop().await;
    cloud_hub.shutdown().await;
}

#[test]
fn postgresql_is_refused_with_a_clear_error() {
    let defs = compile(
        "DEFINE ROUTE History WITH TYPE POSTGRESQL\n    ADD SQL_CONFIG\n        WITH SERVER \"db\"\n        WITH DATABASE \"h\"\n    ADD EVENT e\n        WITH SOURCE_TOPIC \"a/#\"\n        WITH QUERY \"INSERT INTO t VALUES ({payload})\"\n",
    );
    let storage = Storage::in_memory().unwrap();
    let err = lothub::runtime::routes::check(&defs[0], &storage).unwrap_err();
    assert_eq!(
        err.to_string(),
        "route type POSTGRESQL is not supported by lothub yet"
    );
}
