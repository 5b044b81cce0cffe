//! ACTIONs in the live hub (spec §4), from real MQTT clients: ON TOPIC, ON CHANGE, ON EVERY,
//! ON CRON, ON START, ON CONNECT / DISCONNECT, CALL ACTION with RETURN and `run_action`, loop
//! protection, the depth cap, run-time errors on `$SYS/Coreflux/Actions/<Name>/Error`.

mod common;
mod engine_common;

use std::time::Duration;

use common::*;
use engine_common::*;
use lothub::storage::Storage;

const ERRORS: &str = "$SYS/Coreflux/Actions/+/Error";

#[tokio::test]
async fn on_topic_publishes_its_result_with_wildcards() {
    let lot = start_lot(
        "DEFINE ACTION Echo\nON TOPIC \"in/+\" DO\n    PUBLISH TOPIC \"out/+\" WITH PAYLOAD + \" seen at \" + TOPIC POSITION 2\n",
    )
    .await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["out/#"]).await;
    send(&c, "in/kitchen", "hello").await;
    assert_eq!(
        next(&mut c).await,
        ("out/kitchen".into(), "hello seen at kitchen".into())
    );
    lot.shutdown().await;
}

#[tokio::test]
async fn on_change_fires_only_when_the_payload_changes() {
    let lot = start_lot(
        "DEFINE ACTION Changed\nON CHANGE \"level/+\" DO\n    PUBLISH TOPIC \"changed/+\" WITH PAYLOAD\n",
    )
    .await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["changed/#"]).await;
    for v in ["1", "1", "2", "2", "2", "3"] {
        send(&c, "level/a", v).await;
    }
    // Per topic: level/b's first value is a change of level/b, whatever level/a holds.
    send(&c, "level/b", "3").await;
    let got = collect_for(&mut c, Duration::from_millis(700)).await;
    let want: Vec<(String, String)> = [("a", "1"), ("a", "2"), ("a", "3"), ("b", "3")]
        .iter()
        .map(|(l, v)| (format!("changed/{l}"), v.to_string()))
        .collect();
    assert_eq!(got, want);
    lot.shutdown().await;
}

#[tokio::test]
async fn on_every_ticks_and_removal_cancels_the_timer() {
    let lot = start_lot("DEFINE ACTION Tick\nON EVERY 1 SECOND DO\n    PUBLISH TOPIC \"tick\" WITH TIMESTAMP \"UNIX-MS\"\n").await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["tick"]).await;
    let a: i64 = next(&mut c).await.1.parse().unwrap();
    let b: i64 = next(&mut c).await.1.parse().unwrap();
    assert!(
        (700..=1500).contains(&(b - a)),
        "ticks {a} and {b} are about 1 s apart"
    );
    assert_eq!(lot.engine.stats().timers, 1);
    lot.deploy("");
    assert_eq!(lot.engine.stats().timers, 0);
    // A tick already queued may still land right after the removal; none after that.
    let _ = collect_for(&mut c, Duration::from_millis(100)).await;
    c.expect_no_publish(Duration::from_millis(1500)).await;
    lot.shutdown().await;
}

#[tokio::test]
async fn on_cron_fires() {
    let lot = start_lot("DEFINE ACTION Cron\nON CRON \"* * * * * *\" DO\n    PUBLISH TOPIC \"cron\" WITH \"tick\"\n").await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["cron"]).await;
    assert_eq!(next(&mut c).await.1, "tick");
    assert_eq!(next(&mut c).await.1, "tick");
    lot.shutdown().await;
}

#[tokio::test]
async fn on_start_runs_at_start_and_on_new_deployment_only() {
    const V1: &str = "DEFINE ACTION Boot\nON START DO\n    PUBLISH TOPIC \"boot\" WITH \"v1\"\n";
    let lot = start_lot_unstarted(Storage::in_memory().unwrap(), V1).await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["boot"]).await;
    c.expect_no_publish(Duration::from_millis(200)).await;
    lot.engine.start();
    assert_eq!(next(&mut c).await.1, "v1");
    // The same definition again: not a new deployment of Boot.
    lot.deploy(V1);
    c.expect_no_publish(Duration::from_millis(300)).await;
    lot.deploy(&V1.replace("v1", "v2"));
    assert_eq!(next(&mut c).await.1, "v2");
    lot.shutdown().await;
}

#[tokio::test]
async fn on_connect_and_disconnect_see_clientid_and_user() {
    let lot = start_lot(
        "DEFINE ACTION Hello\nON CONNECT DO\n    PUBLISH TOPIC \"presence/in\" WITH CLIENTID + \"/\" + USER\n\
         DEFINE ACTION Bye\nON DISCONNECT DO\n    PUBLISH TOPIC \"presence/out\" WITH CLIENTID\n",
    )
    .await;
    let mut watch = lot.client("watch").await;
    subscribe_all(&mut watch, &["presence/#"]).await;
    let mut opts = v4_options(&lot.hub, "dev-7");
    opts.set_credentials("alice", "pw");
    let (dev, _) = v4_connect(opts).await;
    // The watcher's own ON CONNECT run may land after its SUBSCRIBE: skip it.
    let mut hello = next_on(&mut watch, "presence/in").await;
    if hello == "watch/" {
        hello = next_on(&mut watch, "presence/in").await;
    }
    assert_eq!(hello, "dev-7/alice");
    dev.disconnect().await;
    assert_eq!(next_on(&mut watch, "presence/out").await, "dev-7");
    lot.shutdown().await;
}

const CALC: &str = "\
DEFINE ACTION Double
INPUT x AS INT
DO
    SET \"y\" WITH {x} * 2
    PUBLISH TOPIC \"calc/log\" WITH {y}
RETURN
    OUTPUT y
DEFINE ACTION Caller
ON TOPIC \"calc/in\" DO
    CALL ACTION Double WITH x = PAYLOAD RETURN y
    PUBLISH TOPIC \"calc/out\" WITH {y} + 1
";

#[tokio::test]
async fn call_action_returns_and_run_action_reports_outputs() {
    let lot = start_lot(CALC).await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["calc/out", "calc/log"]).await;
    send(&c, "calc/in", "20").await;
    assert_eq!(next_on(&mut c, "calc/out").await, "41");
    let run = lot
        .engine
        .run_action("Double", serde_json::json!({"x": 21}))
        .await
        .unwrap();
    assert_eq!(run.outputs, vec![("y".to_string(), serde_json::json!(42))]);
    assert_eq!(
        run.published,
        vec![("calc/log".to_string(), "42".to_string())]
    );
    assert_eq!(run.to_json()["outputs"]["y"], 42);
    // What run_action published went through the broker.
    assert_eq!(next_on(&mut c, "calc/log").await, "42");
    let unknown = lot.engine.run_action("Nope", serde_json::Value::Null).await;
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown action Nope")
    );
    let bad = lot
        .engine
        .run_action("Double", serde_json::json!([1]))
        .await;
    assert!(bad.is_err());
    lot.shutdown().await;
}

#[tokio::test]
async fn an_action_does_not_retrigger_itself() {
    let lot = start_lot(
        "DEFINE ACTION Loop\nON TOPIC \"loop/+\" DO\n    PUBLISH TOPIC \"loop/echo\" WITH PAYLOAD + \"!\"\n",
    )
    .await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["loop/#"]).await;
    send(&c, "loop/a", "m").await;
    send(&c, "loop/b", "n").await;
    let got = collect_for(&mut c, Duration::from_millis(700)).await;
    let echoes: Vec<&str> = got
        .iter()
        .filter(|(t, _)| t == "loop/echo")
        .map(|(_, p)| p.as_str())
        .collect();
    // Exactly one run per external message: loop/echo itself matches loop/+ but is the
    // action's own output.
    assert_eq!(echoes, vec!["m!", "n!"], "{got:?}");
    lot.shutdown().await;
}

/// A0 on d/0 publishes d/1, A1 on d/1 publishes d/2, ... A16 on d/16: the 17th run is cut.
fn chain_text(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "DEFINE ACTION A{i}\nON TOPIC \"d/{i}\" DO\n    PUBLISH TOPIC \"d/{}\" WITH \"x\"\n",
                i + 1
            )
        })
        .collect()
}

#[tokio::test]
async fn chains_are_cut_at_depth_16_with_an_error_line() {
    let lot = start_lot(&format!(
        "{}DEFINE ACTION Rec\nON TOPIC \"rec\" DO\n    CALL ACTION Again\nDEFINE ACTION Again\nDO\n    CALL ACTION Again\n",
        chain_text(17)
    ))
    .await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["d/#", ERRORS]).await;
    send(&c, "d/0", "go").await;
    let got = collect_for(&mut c, Duration::from_millis(1000)).await;
    // The engine sees a PUBLISH before the broker routes it, so an action's output may reach
    // subscribers before its trigger does: compare as sets.
    let mut reached: Vec<&str> = got
        .iter()
        .filter(|(t, _)| t.starts_with("d/"))
        .map(|(t, _)| t.as_str())
        .collect();
    reached.sort_by_key(|t| t[2..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..=16).map(|i| format!("d/{i}")).collect();
    assert_eq!(reached, want, "A0..A15 run, A16 is cut");
    let errors: Vec<&(String, String)> =
        got.iter().filter(|(t, _)| t.ends_with("/Error")).collect();
    assert_eq!(errors.len(), 1, "{got:?}");
    assert_eq!(errors[0].0, "$SYS/Coreflux/Actions/A16/Error");
    assert!(errors[0].1.contains("depth 16"), "{}", errors[0].1);

    // Recursion through CALL ACTION hits the same cap and fails the action.
    send(&c, "rec", "").await;
    let line = next_on(&mut c, "$SYS/Coreflux/Actions/Rec/Error").await;
    assert!(line.contains("depth 16"), "{line}");
    lot.shutdown().await;
}

#[tokio::test]
async fn a_failing_action_reports_and_the_next_message_runs() {
    let lot = start_lot("DEFINE ACTION Div\nON TOPIC \"div/in\" DO\n    SET \"r\" WITH 100 / PAYLOAD\n    PUBLISH TOPIC \"div/out\" WITH {r}\n").await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["div/out", ERRORS]).await;
    send(&c, "div/in", "0").await;
    let line = next_on(&mut c, "$SYS/Coreflux/Actions/Div/Error").await;
    assert_eq!(line, "Div:3: division by zero");
    send(&c, "div/in", "4").await;
    assert_eq!(next(&mut c).await, ("div/out".into(), "25".into()));
    lot.shutdown().await;
}

/// L0 calls L1 twice, L1 calls L2 twice, ... : 2^15 action runs per trigger.
fn fan_text(levels: usize) -> String {
    let mut text = String::from(
        "DEFINE ACTION Slow\nON TOPIC \"slow/go\" DO\n    CALL ACTION L0\n    PUBLISH TOPIC \"slow/done\" WITH PAYLOAD\n",
    );
    for i in 0..levels {
        if i + 1 < levels {
            text += &format!(
                "DEFINE ACTION L{i}\nDO\n    CALL ACTION L{n}\n    CALL ACTION L{n}\n",
                n = i + 1
            );
        } else {
            text += &format!("DEFINE ACTION L{i}\nDO\n    SET \"x\" WITH \"a\" + \"b\"\n");
        }
    }
    text
}

#[tokio::test]
async fn a_busy_action_never_delays_a_plain_publish() {
    let lot = start_lot(&fan_text(15)).await;
    let mut watch = lot.client("watch").await;
    subscribe_all(&mut watch, &["slow/done", "plain"]).await;
    let dev = lot.client("dev").await;
    for i in 0..4 {
        send(&dev, "slow/go", &i.to_string()).await;
    }
    let sent = tokio::time::Instant::now();
    send(&dev, "plain", "fast").await;
    let mut done_before_plain = 0;
    loop {
        let (topic, _) = next(&mut watch).await;
        if topic == "plain" {
            break;
        }
        done_before_plain += 1;
    }
    let latency = sent.elapsed();
    assert!(
        latency < Duration::from_millis(500),
        "plain took {latency:?}"
    );
    assert!(
        done_before_plain < 4,
        "the slow runs were still going when plain arrived"
    );
    // And the slow runs all finish.
    let mut done = done_before_plain;
    while done < 4 {
        within("the slow runs", async {
            next_on(&mut watch, "slow/done").await
        })
        .await;
        done += 1;
    }
    lot.shutdown().await;
}

#[tokio::test]
async fn wall_clock_triggers_fire_at_their_local_time() {
    // Three seconds from now, local time (the spec's ON EVERY ... AT and ON TIMESTAMP are local).
    let at = chrono::Local::now() + chrono::Duration::seconds(3);
    let text = format!(
        "DEFINE ACTION Daily\nON EVERY DAY AT \"{}\" DO\n    PUBLISH TOPIC \"wall/daily\" WITH \"d\"\n\
         DEFINE ACTION Once\nON TIMESTAMP \"{}\" DO\n    PUBLISH TOPIC \"wall/once\" WITH \"o\"\n",
        at.format("%H:%M:%S"),
        at.format("%d-%m-%Y %H:%M:%S"),
    );
    let lot = start_lot(&text).await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["wall/#"]).await;
    let mut got = collect_for(&mut c, Duration::from_millis(4500)).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            ("wall/daily".to_string(), "d".to_string()),
            ("wall/once".to_string(), "o".to_string())
        ]
    );
    lot.shutdown().await;
}

#[tokio::test]
async fn get_topic_sees_a_value_retained_before_deployment() {
    let lot = start_lot("").await;
    let mut c = lot.client("c").await;
    subscribe_all(&mut c, &["cfg/setpoint", "out"]).await;
    c.client
        .publish(
            "cfg/setpoint",
            rumqttc::QoS::AtLeastOnce,
            true,
            b"42".to_vec(),
        )
        .await
        .unwrap();
    // Routed (and so retained) before anything that reads it is deployed.
    assert_eq!(next(&mut c).await, ("cfg/setpoint".into(), "42".into()));
    lot.deploy(
        "DEFINE ACTION Read\nON TOPIC \"go\" DO\n    PUBLISH TOPIC \"out\" WITH GET TOPIC \"cfg/setpoint\"\n",
    );
    send(&c, "go", "now").await;
    assert_eq!(next(&mut c).await, ("out".into(), "42".into()));
    lot.shutdown().await;
}
