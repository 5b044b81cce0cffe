//! The actions and models of `lot-examples/` run against a `TestContext`: each does what its
//! opening comment says it does on a real hub.

use std::sync::Arc;

use lothub::lot::ast::{Definition, DefinitionAst};
use lothub::lot::context::TestContext;
use lothub::lot::eval;

use super::compile;

/// The definitions of one example file of `lot-examples/`.
fn example(text: &str) -> Vec<Definition> {
    compile(text)
}

fn actions_of(defs: Vec<Definition>) -> Vec<lothub::lot::ast::Action> {
    defs.into_iter()
        .filter_map(|d| match d.ast {
            DefinitionAst::Action(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn json_of(p: &lothub::lot::context::Published) -> serde_json::Value {
    serde_json::from_slice(&p.payload).expect("payload is JSON")
}

#[test]
fn example_temperature_alarm_does_what_its_comment_says() {
    let a = actions_of(example(include_str!(
        "../../lot-examples/actions/temperature-alarm.lot"
    )))
    .remove(0);
    let run = |payload: &str| {
        let mut ctx = TestContext::new().with_trigger("line/3/temperature", payload.to_string());
        eval::run_action(&a, &mut ctx, &[]).unwrap();
        ctx
    };
    let alarm = run("85");
    assert_eq!(alarm.published[0].topic, "line/3/alarm");
    assert_eq!(
        json_of(&alarm.published[0]),
        serde_json::json!({"level": "ALARM", "temperature": 85.0, "line": "3"})
    );
    assert_eq!(alarm.stored("line/3/alarm/state").as_deref(), Some("ALARM"));
    let warn = run("65.5");
    assert_eq!(
        json_of(&warn.published[0]),
        serde_json::json!({"level": "WARNING", "temperature": 65.5})
    );
    let ok = run("20");
    assert!(ok.published.is_empty());
    assert_eq!(ok.stored("line/3/alarm/state").as_deref(), Some("OK"));
    let mut ctx = TestContext::new().with_trigger("line/3/temperature", "n/a");
    let err = eval::run_action(&a, &mut ctx, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "TemperatureAlarm:8: cannot convert text \"n/a\" to DOUBLE"
    );
}

#[test]
fn example_parse_scale_cleans_a_legacy_payload() {
    let a = actions_of(example(include_str!(
        "../../lot-examples/actions/parse-csv-sensor.lot"
    )))
    .remove(0);
    let mut ctx = TestContext::new().with_trigger("legacy/scale", "  W:12,5kg ;ID=SC-4 ");
    eval::run_action(&a, &mut ctx, &[]).unwrap();
    assert_eq!(ctx.published[0].topic, "scales/SC-4/weight");
    assert_eq!(ctx.published[0].text(), "12.5");
}

#[test]
fn example_shift_report_computes_from_kept_counters() {
    let a = actions_of(example(include_str!(
        "../../lot-examples/actions/shift-report.lot"
    )))
    .remove(0);
    let mut ctx = TestContext::new()
        .with_topic("line/1/counter/good", "90")
        .with_topic("line/1/counter/scrap", "10");
    eval::run_action(&a, &mut ctx, &[]).unwrap();
    assert_eq!(ctx.published[0].topic, "reports/shift/morning");
    assert_eq!(
        json_of(&ctx.published[0]),
        serde_json::json!({"day": "2025-03-17", "made": 90, "scrap": 10, "scrapPercent": 10})
    );
    let mut empty = TestContext::new();
    eval::run_action(&a, &mut empty, &[]).unwrap();
    assert_eq!(
        json_of(&empty.published[0])["scrapPercent"],
        serde_json::json!(0),
        "no counters yet: EMPTY is 0"
    );
}

#[test]
fn example_connect_audit_reads_clientid_and_user() {
    let mut actions = actions_of(example(include_str!(
        "../../lot-examples/actions/connect-audit.lot"
    )));
    let connect = actions.remove(0);
    let mut ctx = TestContext::new();
    ctx.client_id = Some("press-7".to_string());
    eval::run_action(&connect, &mut ctx, &[]).unwrap();
    assert_eq!(
        json_of(&ctx.published[0]),
        serde_json::json!({"event": "connect", "client": "press-7", "user": null, "at": "2025-03-17T14:25:30.123Z"})
    );
    assert_eq!(
        ctx.stored("audit/clients/press-7").as_deref(),
        Some("online")
    );
    ctx.user = Some("ann".to_string());
    eval::run_action(&connect, &mut ctx, &[]).unwrap();
    assert_eq!(json_of(&ctx.published[1])["user"], serde_json::json!("ann"));
}

#[test]
fn example_machine_status_model_with_parent_and_array() {
    let mut models = std::collections::HashMap::new();
    for d in example(include_str!("../../lot-examples/models/machine-status.lot")) {
        if let DefinitionAst::Model(m) = d.ast {
            models.insert(d.name, Arc::new(m));
        }
    }
    let status = models["MachineStatus"].clone();
    let mut ctx = TestContext::new()
        .with_trigger("machines/m1/state", "RUNNING")
        .with_topic("machines/m1/counter", "120")
        .with_topic("machines/m1/rpm", "1500.5")
        .with_topic(
            "machines/m1/alarms",
            r#"[{"code":"E12","severity":"2","extra":1}]"#,
        );
    ctx.models = models;
    let filters = eval::trigger_filters(&status, &|n| ctx.models.get(n).cloned());
    assert_eq!(filters, ["machines/+/state"]);
    let out = eval::eval_model(&status, &mut ctx);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        (out.topic.as_deref(), out.qos, out.retain),
        (Some("machines/m1/status"), 1, false)
    );
    let keys: Vec<&str> = out.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "site",
            "schema",
            "state",
            "partsMade",
            "spindleRpm",
            "alarms",
            "reportId"
        ]
    );
    let v: serde_json::Value = serde_json::from_str(&out.payload()).unwrap();
    assert_eq!(v["site"], "Porto-Plant-2");
    assert_eq!(v["partsMade"], 120);
    assert_eq!(v["spindleRpm"], 1500.5);
    assert_eq!(
        v["alarms"],
        serde_json::json!([{"code": "E12", "severity": 2}])
    );
    assert!(uuid::Uuid::parse_str(v["reportId"].as_str().unwrap()).is_ok());
}

#[test]
fn example_energy_report_calls_an_action_and_publishes_a_model() {
    let sources = [
        (
            include_str!("../../lot-examples/actions/energy-report.lot"),
            Some("energy-report.lot"),
        ),
        (
            include_str!("../../lot-examples/models/energy-reading.lot"),
            Some("energy-reading.lot"),
        ),
    ];
    let defs = lothub::lot::compile_sources(&sources, &lothub::lot::KnownNames::default()).unwrap();
    let mut ctx = TestContext::new().with_topic("meters/main/kwh", "100");
    let mut hourly = None;
    for d in defs {
        match d.ast {
            DefinitionAst::Model(m) => {
                ctx.models.insert(d.name, Arc::new(m));
            }
            DefinitionAst::Action(a) if d.name == "HourlyEnergy" => hourly = Some(a),
            DefinitionAst::Action(a) => {
                ctx.actions.insert(d.name, Arc::new(a));
            }
            _ => {}
        }
    }
    eval::run_action(&hourly.unwrap(), &mut ctx, &[]).unwrap();
    let p = &ctx.published[0];
    assert_eq!(p.topic, "energy/main/hourly");
    assert_eq!(
        p.text(),
        r#"{"meter":"main","kwh":100.0,"cost":21.0,"tariff":{"eurPerKwh":0.21,"name":"day"},"at":"2025-03-17 14:25:30"}"#
    );
}
