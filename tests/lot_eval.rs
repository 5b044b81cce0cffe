//! Evaluator tests written as users write LOT: source text compiled with `lot::compile`, then run
//! against the in-memory `TestContext` (fixed clock 2025-03-17T14:25:30.123Z, seeded random).

use std::sync::Arc;

use lothub::lot::ast::{Decision, Definition, DefinitionAst};
use lothub::lot::context::TestContext;
use lothub::lot::eval::{self, RuleSubject};

#[path = "lot_eval/examples.rs"]
mod examples;

fn compile(text: &str) -> Vec<Definition> {
    match lothub::lot::compile(text, None, &lothub::lot::KnownNames::default()) {
        Ok(defs) => defs,
        Err(errors) => panic!("test LOT text does not compile:\n{errors:?}\n{text}"),
    }
}

fn action(text: &str) -> lothub::lot::ast::Action {
    match compile(text).into_iter().next().map(|d| d.ast) {
        Some(DefinitionAst::Action(a)) => a,
        other => panic!("not an action: {other:?}"),
    }
}

/// Evaluates `expr` as the value of a PUBLISH in an ON TOPIC "in/+/x" action triggered by
/// `payload` on `in/dev7/x`; returns the published text or the error (`E:3: ...`).
fn value_with(ctx: TestContext, expr: &str) -> String {
    let src =
        format!("DEFINE ACTION E\nON TOPIC \"in/+/x\" DO\n    PUBLISH TOPIC \"out\" WITH {expr}\n");
    let a = action(&src);
    let mut ctx = ctx;
    match eval::run_action(&a, &mut ctx, &[]) {
        Ok(_) => ctx.published.last().map(|p| p.text()).unwrap_or_default(),
        Err(e) => format!("error {e}"),
    }
}

fn value_of(payload: &str, expr: &str) -> String {
    value_with(
        TestContext::new().with_trigger("in/dev7/x", payload.to_string()),
        expr,
    )
}

fn check_table(payload: &str, cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (expr, want) in cases {
        let got = value_of(payload, expr);
        if got != *want {
            failures.push(format!("{expr}  =>  {got:?}, expected {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn arithmetic_and_precedence() {
    check_table(
        "21.5",
        &[
            ("2 + 3", "5"),
            ("2 + 3 * 4", "14"),
            ("(2 + 3) * 4", "20"),
            ("10 - 2 - 3", "5"),
            ("-3 + 1", "-2"),
            ("7 / 2", "3.5"),
            ("8 / 2", "4"),
            ("7 % 3", "1"),
            ("0.5 * 4", "2"),
            ("1e3 + 1", "1001"),
            ("PAYLOAD * 2", "43"),
            ("PAYLOAD + 1", "22.5"),
            ("\"2\" + 3", "5"),
            ("\"a\" + 1", "a1"),
            ("\"T=\" + PAYLOAD + \"C\"", "T=21.5C"),
            ("EMPTY + 5", "5"),
            ("EMPTY + \"x\"", "x"),
            ("1 / 0", "error E:3: division by zero"),
            ("5 % 0", "error E:3: division by zero"),
            (
                "\"warm\" * 2",
                "error E:3: expected a number, got text \"warm\"",
            ),
        ],
    );
}

#[test]
fn comparisons_and_logic() {
    check_table(
        "7",
        &[
            ("1 == 1.0", "true"),
            ("\"7\" = 7", "true"),
            ("PAYLOAD EQUALS 7", "true"),
            ("\"abc\" == \"ABC\"", "false"),
            ("1 != 2", "true"),
            ("\"9\" < \"10\"", "true"),
            ("\"b\" > \"a\"", "true"),
            ("3 <= 3", "true"),
            ("4 >= 5", "false"),
            ("\"temperature\" CONTAINS \"rat\"", "true"),
            ("\"sensor/1\" STARTS_WITH \"sensor\"", "true"),
            ("\"sensor/1\" ENDS_WITH \"2\"", "false"),
            ("EMPTY == \"\"", "true"),
            ("EMPTY == 0", "false"),
            ("NOT 1 == 2", "true"),
            ("TRUE AND FALSE OR TRUE", "true"),
            ("1 == 1 AND 2 == 3", "false"),
            ("NOT (TRUE OR FALSE)", "false"),
            ("PAYLOAD + 1 > 7", "true"),
        ],
    );
}

#[test]
fn casts_json_paths_and_transforms() {
    check_table(
        r#"{"a":{"b":"2.5"},"list":[10,20],"name":" press "}"#,
        &[
            ("GET JSON \"a.b\" IN PAYLOAD AS DOUBLE", "2.5"),
            ("GET JSON \"a.b\" IN PAYLOAD AS DOUBLE * 2", "5"),
            ("GET JSON \"list[1]\" IN PAYLOAD", "20"),
            ("GET JSON \"list.0\" IN PAYLOAD + 1", "11"),
            ("GET JSON \"a.missing\" IN PAYLOAD", ""),
            ("GET JSON \"a.missing\" IN PAYLOAD == EMPTY", "true"),
            ("TRIM GET JSON \"name\" IN PAYLOAD", "press"),
            ("GET JSON \"a\" IN PAYLOAD", r#"{"b":"2.5"}"#),
        ],
    );
    check_table(
        "id=3 temp=41C",
        &[
            ("FILTER PAYLOAD USING REGEX \"temp=(\\\\d+)\"", "41"),
            ("FILTER PAYLOAD USING REGEX \"\\\\d+(?=C)\"", "41"),
            ("FILTER PAYLOAD USING REGEX \"xyz\"", ""),
            ("REPLACE \"C\" WITH \" deg\" IN PAYLOAD", "id=3 temp=41 deg"),
            ("SPLIT PAYLOAD USING \" \"", r#"["id=3","temp=41C"]"#),
            (
                "PAYLOAD AS BOOL",
                "error E:3: cannot convert text \"id=3 temp=41C\" to BOOL",
            ),
        ],
    );
    check_table(
        "1",
        &[
            ("PAYLOAD AS BOOL", "true"),
            ("PAYLOAD AS DOUBLE", "1"),
            ("PAYLOAD AS STRING + 1", "2"),
            (
                "IF PAYLOAD > 2 THEN \"a\" ELSE IF PAYLOAD > 0 THEN \"b\" ELSE \"c\"",
                "b",
            ),
            ("{\"k\": PAYLOAD + 1, \"s\": \"x\"}", r#"{"k":2,"s":"x"}"#),
            ("TOPIC POSITION 2", "dev7"),
            ("TOPIC POSITION 2 + 1", "dev71"),
        ],
    );
}

#[test]
fn time_env_store_and_random() {
    let mut ctx = TestContext::new()
        .with_trigger("in/dev7/x", "1")
        .with_topic("count", "4");
    ctx.store.insert("line/4/count".to_string(), "9".into());
    ctx.store.insert("cfg/dev7/limit".to_string(), "30".into());
    ctx.env.insert("SITE".to_string(), "north".to_string());
    ctx.secrets.insert("TOKEN".to_string(), "t0k".to_string());
    let cases = [
        ("TIMESTAMP \"ISO\"", "2025-03-17T14:25:30.123Z"),
        ("TIMESTAMP \"UTC\"", "2025-03-17 14:25:30"),
        ("TIMESTAMP \"UNIX\"", "1742221530"),
        ("TIMESTAMP \"UNIX-MS\"", "1742221530123"),
        (
            "TIMESTAMP WITH \"dd/MM/yyyy HH:mm:ss.fff\"",
            "17/03/2025 14:25:30.123",
        ),
        ("GET TOPIC \"count\" + 1", "5"),
        ("GET TOPIC (\"line/\" + \"4\" + \"/count\")", "9"),
        ("GET TOPIC \"cfg/+/limit\" AS INT", "30"),
        ("GET TOPIC \"never\"", ""),
        ("GET ENV \"SITE\"", "north"),
        ("GET SECRET \"TOKEN\"", "t0k"),
        ("RANDOM INT BETWEEN 3 AND 3", "3"),
    ];
    for (expr, want) in cases {
        let ctx = TestContext {
            store: ctx.store.clone(),
            env: ctx.env.clone(),
            secrets: ctx.secrets.clone(),
            ..TestContext::new().with_trigger("in/dev7/x", "1")
        };
        assert_eq!(value_with(ctx, expr), want, "{expr}");
    }
    for _ in 0..50 {
        let v: f64 = value_of("1", "RANDOM DOUBLE BETWEEN 1 AND 2")
            .parse()
            .unwrap();
        assert!((1.0..2.0).contains(&v));
    }
    let id = value_of("1", "RANDOM UUID");
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
}

const ALARM: &str = r#"DEFINE ACTION TempAlarm
ON TOPIC "sensors/+/temp" DO
    SET "limit" WITH GET TOPIC "config/+/limit" AS DOUBLE
    IF PAYLOAD > {limit} THEN
        PUBLISH TOPIC "alarms/+/temp" WITH "high: " + PAYLOAD
        KEEP TOPIC "state/+" WITH "alarm"
    ELSE IF PAYLOAD > {limit} - 5 THEN
        PUBLISH TOPIC "alarms/+/temp" WITH "near: " + PAYLOAD
    ELSE
        KEEP TOPIC "state/+" WITH "ok"
    PUBLISH TOPIC "sensors/+/fahrenheit" WITH PAYLOAD * 1.8 + 32
"#;

#[test]
fn an_action_with_if_blocks_and_inherited_wildcards() {
    let a = action(ALARM);
    let run = |payload: &str| {
        let mut ctx = TestContext::new()
            .with_trigger("sensors/m7/temp", payload.to_string())
            .with_topic("config/m7/limit", "30");
        eval::run_action(&a, &mut ctx, &[]).unwrap();
        ctx
    };
    let hot = run("35");
    let topics: Vec<_> = hot
        .published
        .iter()
        .map(|p| (p.topic.as_str(), p.text()))
        .collect();
    assert_eq!(
        topics,
        [
            ("alarms/m7/temp", "high: 35".to_string()),
            ("sensors/m7/fahrenheit", "95".to_string())
        ]
    );
    assert_eq!(hot.stored("state/m7").as_deref(), Some("alarm"));
    let near = run("27.5");
    assert_eq!(near.published[0].text(), "near: 27.5");
    let ok = run("10");
    assert_eq!(ok.published.len(), 1);
    assert_eq!(ok.stored("state/m7").as_deref(), Some("ok"));
}

#[test]
fn errors_carry_the_action_name_and_the_line() {
    let a = action(
        "DEFINE ACTION Ratio\nON TOPIC \"r\" DO\n    SET \"a\" WITH PAYLOAD\n\n    // comment\n    SET \"b\" WITH 10 / {a}\n",
    );
    let mut ctx = TestContext::new().with_trigger("r", "0");
    let err = eval::run_action(&a, &mut ctx, &[]).unwrap_err();
    assert_eq!(err.to_string(), "Ratio:6: division by zero");
}

const CALLS: &str = r#"DEFINE ACTION Scale
INPUT value AS DOUBLE
INPUT factor AS DOUBLE
DO
    SET "scaled" WITH {value} * {factor}
RETURN
    OUTPUT scaled

DEFINE ACTION Caller
ON TOPIC "raw/+" DO
    CALL ACTION Scale WITH value = PAYLOAD, factor = 2 RETURN scaled
    PUBLISH TOPIC "scaled/+" WITH {scaled}
"#;

#[test]
fn call_action_passes_inputs_and_returns_outputs() {
    let defs = compile(CALLS);
    let mut ctx = TestContext::new().with_trigger("raw/p1", "1.25");
    let mut caller = None;
    for d in defs {
        if let DefinitionAst::Action(a) = d.ast {
            if a.trigger.is_none() {
                ctx.actions.insert(d.name.clone(), Arc::new(a));
            } else {
                caller = Some(a);
            }
        }
    }
    eval::run_action(&caller.unwrap(), &mut ctx, &[]).unwrap();
    assert_eq!(ctx.published[0].topic, "scaled/p1");
    assert_eq!(ctx.published[0].text(), "2.5");
}

const RULES: &str = r##"DEFINE RULE AllowSubscribeSys WITH PRIORITY 1000000 FOR SubscribeSys TO TOPIC "$SYS/#"
    IF USER HAS AllowedSystemConfiguration THEN
        ALLOW
    ELSE
        DENY

DEFINE RULE Devices WITH PRIORITY 500 FOR Publish TO TOPIC "devices/#"
    IF USER IS "root2" THEN
        DENY
    ELSE IF CLIENTID IS TOPIC POSITION 2 AND NOT IP IN "10.9.0.0/16" THEN
        ALLOW

DEFINE RULE AllowAll WITH PRIORITY 1000000 FOR Publish TO TOPIC "#" ALLOW
"##;

#[test]
fn rules_compiled_from_text_decide() {
    let rules: Vec<_> = compile(RULES)
        .into_iter()
        .map(|d| match d.ast {
            DefinitionAst::Rule(r) => r,
            _ => panic!("not a rule"),
        })
        .collect();
    let flags = vec!["AllowedSystemConfiguration".to_string()];
    let admin = RuleSubject {
        user: Some("ann"),
        flags: &flags,
        client_id: "x",
        ..Default::default()
    };
    let anon = RuleSubject {
        client_id: "press-7",
        topic: Some("devices/press-7/state"),
        ip: Some("10.1.0.1".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(eval::decide(&rules[0], &admin), Some(Decision::Allow));
    assert_eq!(eval::decide(&rules[0], &anon), Some(Decision::Deny));
    assert_eq!(eval::decide(&rules[1], &anon), Some(Decision::Allow));
    let inside = RuleSubject {
        ip: Some("10.9.3.3".parse().unwrap()),
        ..anon
    };
    assert_eq!(
        eval::decide(&rules[1], &inside),
        None,
        "no branch, no ELSE: falls through"
    );
    let root2 = RuleSubject {
        user: Some("root2"),
        ..anon
    };
    assert_eq!(eval::decide(&rules[1], &root2), Some(Decision::Deny));
    assert_eq!(eval::decide(&rules[2], &inside), Some(Decision::Allow));
}

const MODEL: &str = r#"DEFINE MODEL Machine WITH TOPIC "plant/+/machine" WITH RETAIN
    ADD DOUBLE "temp" WITH TOPIC "machines/+/temp" AS TRIGGER
    ADD INT "count" WITH TOPIC "machines/+/count"
    ADD BOOL "running" WITH TOPIC "machines/+/running"
    ADD STRING "site" WITH "north"
    ADD TIMESTAMP "at" WITH TIMESTAMP "ISO"
"#;

#[test]
fn a_model_compiled_from_text_publishes_typed_json_with_nulls_and_errors() {
    let DefinitionAst::Model(m) = compile(MODEL).remove(0).ast else {
        panic!("not a model")
    };
    let mut ctx = TestContext::new()
        .with_trigger("machines/m7/temp", "21.5")
        .with_topic("machines/m7/count", "12")
        .with_topic("machines/m7/running", "maybe");
    assert!(eval::trigger_field(&m, "machines/m7/temp").is_some());
    let out = eval::eval_model(&m, &mut ctx);
    assert_eq!(out.topic.as_deref(), Some("plant/m7/machine"));
    assert!(out.retain);
    assert_eq!(
        out.payload(),
        r#"{"temp":21.5,"count":12,"running":null,"site":"north","at":"2025-03-17T14:25:30.123Z"}"#
    );
    let errors: Vec<String> = out.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        ["Machine:4: field \"running\": cannot convert text \"maybe\" to BOOL"]
    );
}

const BAD_MODEL_FIELD: &str = r#"DEFINE MODEL Reading COLLAPSED
    ADD DOUBLE "kwh"
    ADD STRING "meter"

DEFINE ACTION Report ON TOPIC "meters/+/kwh" DO
    SET "x" TO PAYLOAD
    SET "y" AS {x} * 1
    PUBLISH MODEL Reading TO "readings/+" WITH
        meter = TOPIC POSITION 2
        kwh = {x}
"#;

#[test]
fn publish_model_from_text_types_fields_and_reports_the_field_line() {
    let mut ctx = TestContext::new();
    let mut report = None;
    for d in compile(BAD_MODEL_FIELD) {
        match d.ast {
            DefinitionAst::Model(m) => {
                ctx.models.insert(d.name, Arc::new(m));
            }
            DefinitionAst::Action(a) => report = Some(a),
            _ => {}
        }
    }
    let report = report.unwrap();
    ctx.trigger_topic = Some("meters/m2/kwh".to_string());
    ctx.trigger_payload = Some("7".into());
    eval::run_action(&report, &mut ctx, &[]).unwrap();
    assert_eq!(ctx.published[0].topic, "readings/m2");
    assert_eq!(ctx.published[0].text(), r#"{"kwh":7.0,"meter":"m2"}"#);
    ctx.trigger_payload = Some("seven".into());
    let err = eval::run_action(&report, &mut ctx, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Report:7: expected a number, got text \"seven\""
    );
    let fixed = BAD_MODEL_FIELD.replace("SET \"y\" AS {x} * 1", "SET \"y\" AS {x} + 1");
    let DefinitionAst::Action(report) = compile(&fixed).remove(1).ast else {
        panic!("not an action")
    };
    let err = eval::run_action(&report, &mut ctx, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Report:10: field \"kwh\": cannot convert text \"seven\" to DOUBLE"
    );
    assert_eq!(ctx.published.len(), 1);
}

const LOOP: &str = r#"DEFINE ACTION Again
DO
    PUBLISH TOPIC "tick" WITH 1
    CALL ACTION Again
"#;

#[test]
fn a_call_chain_from_text_is_cut_at_depth_16() {
    let DefinitionAst::Action(a) = compile(LOOP).remove(0).ast else {
        panic!("not an action")
    };
    let mut ctx = TestContext::new();
    ctx.actions.insert("Again".to_string(), Arc::new(a.clone()));
    let err = eval::run_action(&a, &mut ctx, &[]).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("Again:4: action chain cut at depth 16"),
        "{err}"
    );
    assert_eq!(ctx.published.len(), 16);
}

/// Random well-formed expressions: every operator, transform and source nested up to four
/// levels, over leaves that include odd operands (huge numbers, EMPTY, JSON, non-numbers).
fn any_expr() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = proptest::sample::select(vec![
        "PAYLOAD",
        "PAYLOAD AS INT",
        "PAYLOAD AS JSON",
        "PAYLOAD AS BOOL",
        "PAYLOAD AS BYTES",
        "1",
        "0",
        "-7",
        "2.5",
        "1e308",
        "\"a\"",
        "\"\"",
        "\"9\"",
        "EMPTY",
        "TRUE",
        "{x}",
        "{nope}",
        "TOPIC POSITION 2",
        "GET TOPIC \"in/+/x\"",
        "GET TOPIC \"in/+/x\" AS DOUBLE",
        "RANDOM UUID",
        "TIMESTAMP \"ISO\"",
        "TIMESTAMP \"UNIX\"",
        "GET JSON \"a.0\" IN PAYLOAD",
        "GET ENV \"E\"",
        "RANDOM INT BETWEEN 1 AND 3",
        "RANDOM DOUBLE BETWEEN -1e308 AND 1e308",
    ])
    .prop_map(str::to_string);
    let ops = proptest::sample::select(vec![
        "+",
        "-",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "CONTAINS",
        "STARTS_WITH",
        "ENDS_WITH",
        "AND",
        "OR",
        "=",
        "EQUALS",
    ]);
    leaf.prop_recursive(4, 24, 3, move |inner| {
        prop_oneof![
            (inner.clone(), ops.clone(), inner.clone())
                .prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            inner.clone().prop_map(|a| format!("NOT ({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("TRIM ({a})")),
            inner
                .clone()
                .prop_map(|a| format!("SPLIT ({a}) USING \",\"")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("REPLACE \"a\" WITH ({a}) IN ({b})")),
            inner
                .clone()
                .prop_map(|a| format!("FILTER ({a}) USING REGEX \"(a+)+$\"")),
            inner
                .clone()
                .prop_map(|a| format!("GET JSON \"a.0\" IN ({a}) AS DOUBLE")),
            inner
                .clone()
                .prop_map(|a| format!("GET TOPIC (\"in/\" + ({a}))")),
            inner.clone().prop_map(|a| format!("{{\"k\": {a}}}")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(a, b, c)| format!("(IF {a} THEN {b} ELSE {c})")),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn random_expressions_compile_and_never_panic_when_run(
        expr in any_expr(),
        payload in "[a0-9,.{}\\[\\]\": -]{0,12}",
    ) {
        let src = format!(
            "DEFINE ACTION F\nON TOPIC \"in/+/x\" DO\n    SET \"x\" WITH PAYLOAD\n    PUBLISH TOPIC \"out\" WITH {expr}\n"
        );
        let defs = lothub::lot::compile(&src, None, &lothub::lot::KnownNames::default());
        let defs = defs.map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e:?}")))?;
        let Some(DefinitionAst::Action(a)) = defs.into_iter().next().map(|d| d.ast) else {
            return Err(proptest::test_runner::TestCaseError::fail("not an action"));
        };
        let mut ctx = TestContext::new().with_trigger("in/dev/x", payload.clone());
        match eval::run_action(&a, &mut ctx, &[]) {
            Ok(_) => proptest::prop_assert_eq!(ctx.published.len(), 1),
            Err(e) => proptest::prop_assert_eq!(e.line, 4, "{}", e),
        }
    }
}
