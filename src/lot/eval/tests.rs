//! Evaluator tests on hand-built ASTs (the parser-level tests from LOT source text live in
//! `tests/lot_eval.rs`). These pin the evaluator's own behaviour: errors with name and line,
//! wildcard inheritance, rule decisions, model typing.

use std::sync::Arc;

use super::*;
use crate::lot::ast::*;
use crate::lot::context::TestContext;

pub(super) fn sp(line: u32) -> Span {
    Span {
        line,
        col: 1,
        offset: 0,
        len: 0,
    }
}

pub(super) fn named<T>(value: T) -> Spanned<T> {
    Spanned { value, span: sp(1) }
}

pub(super) fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: sp(1) }
}

/// `x` placed on `line` (errors carry the line of the expression that failed).
pub(super) fn on(line: u32, mut x: Expr) -> Expr {
    x.span = sp(line);
    x
}

pub(super) fn text(s: &str) -> Expr {
    e(ExprKind::Text(s.to_string()))
}

pub(super) fn bin(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    e(ExprKind::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    })
}

pub(super) fn st(line: u32, kind: StmtKind) -> Stmt {
    Stmt {
        kind,
        span: sp(line),
    }
}

pub(super) fn action(name: &str, body: Vec<Stmt>) -> Action {
    Action {
        name: named(name.to_string()),
        trigger: None,
        inputs: Vec::new(),
        body,
        outputs: Vec::new(),
        description: None,
        span: sp(1),
    }
}

pub(super) fn publish(line: u32, topic: Expr, value: Expr) -> Stmt {
    st(line, StmtKind::PublishTopic { topic, value })
}

#[test]
fn a_failing_statement_stops_the_action_with_name_and_line() {
    let a = action(
        "Alarm",
        vec![
            publish(2, text("out/a"), e(ExprKind::Int(1))),
            publish(
                3,
                text("out/b"),
                on(3, bin(BinOp::Div, e(ExprKind::Int(1)), e(ExprKind::Int(0)))),
            ),
            publish(4, text("out/c"), e(ExprKind::Int(3))),
        ],
    );
    let mut ctx = TestContext::new();
    let err = run_action(&a, &mut ctx, &[]).unwrap_err();
    assert_eq!(err.to_string(), "Alarm:3: division by zero");
    assert_eq!(
        ctx.published.len(),
        1,
        "statements after the failure do not run"
    );
}

#[test]
fn publish_topics_inherit_wildcards_from_the_trigger_positionally() {
    let a = action(
        "Fwd",
        vec![
            publish(2, text("alarms/+/temp"), e(ExprKind::Payload(None))),
            st(
                3,
                StmtKind::KeepTopic {
                    topic: text("last/+/+"),
                    value: e(ExprKind::TopicPosition(3)),
                },
            ),
        ],
    );
    let mut ctx = TestContext::new().with_trigger("sensors/m7/temp", "21.5");
    run_action(&a, &mut ctx, &[]).unwrap();
    assert_eq!(ctx.published[0].topic, "alarms/m7/temp");
    assert_eq!(ctx.published[0].text(), "21.5");
    assert_eq!(ctx.stored("last/m7/temp").as_deref(), Some("temp"));
}

#[test]
fn a_wildcard_without_a_trigger_is_a_runtime_error() {
    let a = action(
        "NoTrig",
        vec![publish(5, on(5, text("a/+")), e(ExprKind::Int(1)))],
    );
    let err = run_action(&a, &mut TestContext::new(), &[]).unwrap_err();
    assert_eq!(err.line, 5);
    assert!(matches!(err.error, EvalError::UnfilledWildcard(_)), "{err}");
}

pub(super) fn set(line: u32, name: &str, value: Expr) -> Stmt {
    st(
        line,
        StmtKind::Set {
            name: named(name.to_string()),
            value,
        },
    )
}

pub(super) fn var(name: &str) -> Expr {
    e(ExprKind::Var(name.to_string()))
}

/// Runs `body` as an action with `ctx` and returns the variables named in `outs` as text.
pub(super) fn run_vars(ctx: &mut TestContext, body: Vec<Stmt>, outs: &[&str]) -> Vec<String> {
    let mut a = action("T", body);
    a.outputs = outs.iter().map(|o| named(o.to_string())).collect();
    let out = run_action(&a, ctx, &[]).expect("action failed");
    out.iter().map(|(_, v)| v.to_text().into_owned()).collect()
}

#[test]
fn payload_json_paths_and_casts() {
    let mut ctx = TestContext::new().with_trigger("m/1", r#"{"t":{"v":"21.5"},"list":[3,4]}"#);
    let json = |path: &str, cast| {
        e(ExprKind::GetJson {
            path: path.to_string(),
            input: Box::new(e(ExprKind::Payload(None))),
            cast,
        })
    };
    let got = run_vars(
        &mut ctx,
        vec![
            set(1, "a", json("t.v", Some(ValueType::Double))),
            set(
                2,
                "b",
                bin(BinOp::Add, json("list[1]", None), json("list.0", None)),
            ),
            set(3, "c", json("missing.x", None)),
            set(
                4,
                "d",
                bin(BinOp::Eq, json("missing", None), e(ExprKind::Empty)),
            ),
            set(5, "e", e(ExprKind::Payload(Some(ValueType::Json)))),
        ],
        &["a", "b", "c", "d", "e"],
    );
    assert_eq!(
        got,
        [
            "21.5",
            "7",
            "",
            "true",
            r#"{"list":[3,4],"t":{"v":"21.5"}}"#
        ]
    );
}

#[test]
fn get_topic_reads_the_store_with_inherited_wildcards() {
    let mut ctx = TestContext::new()
        .with_trigger("line/4/count", "1")
        .with_topic("line/4/total", "41")
        .with_topic("cfg/limit", "50");
    let get = |t: Expr| {
        e(ExprKind::GetTopic {
            topic: Box::new(t),
            cast: None,
        })
    };
    let got = run_vars(
        &mut ctx,
        vec![
            set(
                1,
                "total",
                bin(
                    BinOp::Add,
                    get(text("line/+/total")),
                    e(ExprKind::Payload(None)),
                ),
            ),
            set(
                2,
                "over",
                bin(BinOp::Gt, var("total"), get(text("cfg/limit"))),
            ),
            set(3, "none", get(text("never/set"))),
            set(
                4,
                "built",
                get(bin(BinOp::Add, text("cfg/"), text("limit"))),
            ),
            st(
                5,
                StmtKind::KeepTopic {
                    topic: text("line/+/total"),
                    value: var("total"),
                },
            ),
        ],
        &["total", "over", "none", "built"],
    );
    assert_eq!(got, ["42", "false", "", "50"]);
    assert_eq!(ctx.stored("line/4/total").as_deref(), Some("42"));
    assert!(ctx.published.is_empty(), "KEEP TOPIC does not deliver");
}

#[test]
fn env_secret_clientid_user_timestamp_and_topic_position() {
    let mut ctx = TestContext::new().with_trigger("a/b/c", "x");
    ctx.env.insert("SITE".to_string(), "plant-7".to_string());
    ctx.secrets.insert("KEY".to_string(), "s3cret".to_string());
    ctx.client_id = Some("dev-1".to_string());
    let got = run_vars(
        &mut ctx,
        vec![
            set(1, "env", e(ExprKind::GetEnv("SITE".to_string()))),
            set(2, "sec", e(ExprKind::GetSecret("KEY".to_string()))),
            set(3, "nope", e(ExprKind::GetEnv("NOPE".to_string()))),
            set(4, "cid", e(ExprKind::ClientId)),
            set(5, "user", e(ExprKind::User)),
            set(6, "ts", e(ExprKind::Timestamp(TimeFormat::Iso))),
            set(7, "ms", e(ExprKind::Timestamp(TimeFormat::UnixMs))),
            set(8, "p2", e(ExprKind::TopicPosition(2))),
            set(9, "p9", e(ExprKind::TopicPosition(9))),
        ],
        &["env", "sec", "nope", "cid", "user", "ts", "ms", "p2", "p9"],
    );
    assert_eq!(
        got,
        [
            "plant-7",
            "s3cret",
            "",
            "dev-1",
            "",
            "2025-03-17T14:25:30.123Z",
            "1742221530123",
            "b",
            ""
        ]
    );
}

#[test]
fn random_values_stay_in_range_and_follow_the_seed() {
    let int = |lo, hi| {
        e(ExprKind::RandomInt {
            low: Box::new(e(ExprKind::Int(lo))),
            high: Box::new(e(ExprKind::Int(hi))),
        })
    };
    let dbl = |lo, hi| {
        e(ExprKind::RandomDouble {
            low: Box::new(e(ExprKind::Float(lo))),
            high: Box::new(e(ExprKind::Float(hi))),
        })
    };
    let body = || {
        vec![
            set(1, "i", int(1, 6)),
            set(2, "r", int(10, 5)),
            set(3, "d", dbl(0.5, 0.75)),
            set(4, "same", int(3, 3)),
            set(5, "u", e(ExprKind::RandomUuid)),
        ]
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut ctx = TestContext::new();
    for _ in 0..300 {
        let got = run_vars(&mut ctx, body(), &["i", "r", "d", "same", "u"]);
        let i: i64 = got[0].parse().unwrap();
        let r: i64 = got[1].parse().unwrap();
        let d: f64 = got[2].parse().unwrap();
        assert!((1..=6).contains(&i) && (5..=10).contains(&r), "{got:?}");
        assert!((0.5..0.75).contains(&d), "{d}");
        assert_eq!(got[3], "3");
        assert_eq!(uuid::Uuid::parse_str(&got[4]).unwrap().get_version_num(), 4);
        seen.insert(i);
    }
    assert_eq!(seen.len(), 6, "both ends of RANDOM INT are reachable");
    let first = run_vars(&mut TestContext::new(), body(), &["i", "d", "u"]);
    let again = run_vars(&mut TestContext::new(), body(), &["i", "d", "u"]);
    assert_eq!(first, again, "the same seed gives the same values");
    let huge = e(ExprKind::RandomDouble {
        low: Box::new(e(ExprKind::Float(-1e308))),
        high: Box::new(e(ExprKind::Float(1e308))),
    });
    let err = run_action(&action("R", vec![set(8, "x", on(8, huge))]), &mut ctx, &[]).unwrap_err();
    assert!(matches!(err.error, EvalError::BadRange(..)), "{err}");
    let bad = e(ExprKind::RandomInt {
        low: Box::new(text("a")),
        high: Box::new(e(ExprKind::Int(1))),
    });
    let err = run_action(&action("R", vec![set(7, "x", on(7, bad))]), &mut ctx, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "R:7: RANDOM needs a finite range, got text \"a\" and number \"1\""
    );
}

#[test]
fn if_statements_inline_if_and_short_circuit_logic() {
    let mut ctx = TestContext::new().with_trigger("t", "30");
    let gt = |n| bin(BinOp::Gt, e(ExprKind::Payload(None)), e(ExprKind::Int(n)));
    let fail = || bin(BinOp::Div, e(ExprKind::Int(1)), e(ExprKind::Int(0)));
    let inline = e(ExprKind::If {
        branches: vec![(gt(50), text("hot")), (gt(20), text("warm"))],
        otherwise: Box::new(text("cold")),
    });
    let body = vec![
        set(1, "level", inline),
        st(
            2,
            StmtKind::If {
                branches: vec![
                    (gt(100), vec![set(3, "b", text("first"))]),
                    (gt(10), vec![set(4, "b", text("second"))]),
                ],
                otherwise: Some(vec![set(5, "b", text("else"))]),
            },
        ),
        st(
            6,
            StmtKind::If {
                branches: vec![(gt(100), vec![set(7, "c", text("x"))])],
                otherwise: None,
            },
        ),
        set(8, "or", bin(BinOp::Or, gt(1), fail())),
        set(9, "and", bin(BinOp::And, gt(100), fail())),
        set(
            10,
            "not",
            e(ExprKind::Unary {
                op: UnOp::Not,
                operand: Box::new(gt(100)),
            }),
        ),
        set(
            11,
            "neg",
            e(ExprKind::Unary {
                op: UnOp::Neg,
                operand: Box::new(e(ExprKind::Payload(None))),
            }),
        ),
    ];
    let got = run_vars(
        &mut ctx,
        body,
        &["level", "b", "c", "or", "and", "not", "neg"],
    );
    assert_eq!(got, ["warm", "second", "", "true", "false", "true", "-30"]);
}

#[test]
fn transforms_in_actions_and_a_regex_error_stops_the_action() {
    let mut ctx = TestContext::new().with_trigger("t", "  id=7;temp=21.5C  ");
    let re = |src: &str, limit| CompiledRegex {
        source: src.to_string(),
        regex: Arc::new(
            fancy_regex::RegexBuilder::new(src)
                .backtrack_limit(limit)
                .build()
                .unwrap(),
        ),
    };
    let payload = || Box::new(e(ExprKind::Payload(None)));
    let got = run_vars(
        &mut ctx,
        vec![
            set(1, "trim", e(ExprKind::Trim(payload()))),
            set(
                2,
                "temp",
                e(ExprKind::Filter {
                    input: payload(),
                    regex: re(r"temp=([\d.]+)", 1_000_000),
                }),
            ),
            set(
                3,
                "parts",
                e(ExprKind::Split {
                    input: Box::new(var("trim")),
                    separator: ";".to_string(),
                }),
            ),
            set(
                4,
                "rep",
                e(ExprKind::Replace {
                    find: Box::new(text("C")),
                    with: Box::new(text(" °C")),
                    input: Box::new(var("temp")),
                }),
            ),
            set(5, "sum", bin(BinOp::Add, var("temp"), e(ExprKind::Int(1)))),
        ],
        &["trim", "temp", "parts", "rep", "sum"],
    );
    assert_eq!(
        got,
        [
            "id=7;temp=21.5C",
            "21.5",
            r#"["id=7","temp=21.5C"]"#,
            "21.5",
            "22.5"
        ]
    );
    let mut ctx = TestContext::new().with_trigger("t", "a".repeat(30));
    let slow = e(ExprKind::Filter {
        input: payload(),
        regex: re(r"(a+)+\1b", 50),
    });
    let err = run_action(&action("Rx", vec![set(9, "x", on(9, slow))]), &mut ctx, &[]).unwrap_err();
    assert_eq!(err.line, 9);
    assert!(err.to_string().starts_with("Rx:9: regex failed"), "{err}");
}

#[test]
fn a_bad_cast_and_arithmetic_on_text_are_runtime_errors() {
    let mut ctx = TestContext::new().with_trigger("t", "warm");
    let a = action(
        "C",
        vec![set(
            4,
            "x",
            on(4, e(ExprKind::Payload(Some(ValueType::Int)))),
        )],
    );
    assert_eq!(
        run_action(&a, &mut ctx, &[]).unwrap_err().to_string(),
        "C:4: cannot convert text \"warm\" to INT"
    );
    let a = action(
        "C",
        vec![set(
            6,
            "x",
            on(
                6,
                bin(BinOp::Mul, e(ExprKind::Payload(None)), e(ExprKind::Int(2))),
            ),
        )],
    );
    assert_eq!(
        run_action(&a, &mut ctx, &[]).unwrap_err().to_string(),
        "C:6: expected a number, got text \"warm\""
    );
}

#[test]
fn json_literals_build_objects_and_arrays() {
    let mut ctx = TestContext::new().with_trigger("t", "21.5");
    let obj = e(ExprKind::Object(vec![
        (
            named("temp".to_string()),
            e(ExprKind::Payload(Some(ValueType::Double))),
        ),
        (named("unit".to_string()), text("C")),
        (
            named("tags".to_string()),
            e(ExprKind::Array(vec![
                e(ExprKind::Int(1)),
                e(ExprKind::Bool(true)),
            ])),
        ),
        (named("none".to_string()), e(ExprKind::Empty)),
    ]));
    let got = run_vars(&mut ctx, vec![publish(1, text("out"), obj)], &[]);
    assert!(got.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&ctx.published[0].payload).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"temp": 21.5, "unit": "C", "tags": [1, true], "none": null})
    );
}

#[test]
fn invalid_publish_topics_are_errors() {
    let mut ctx = TestContext::new();
    for (line, topic) in [
        (2, text("")),
        (3, text("a/#")),
        (4, bin(BinOp::Add, text("a/"), text("+x"))),
    ] {
        let a = action(
            "P",
            vec![publish(line, on(line, topic), e(ExprKind::Int(1)))],
        );
        let err = run_action(&a, &mut ctx, &[]).unwrap_err();
        assert_eq!(err.line, line);
        assert!(matches!(err.error, EvalError::InvalidTopic(_)), "{err}");
    }
    assert!(ctx.published.is_empty());
}
