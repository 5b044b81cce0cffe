//! Evaluator tests on hand-built ASTs (the parser-level tests from LOT source text live in
//! `tests/lot_eval.rs`). These pin the evaluator's own behaviour: errors with name and line,
//! wildcard inheritance, rule decisions, model typing.

use std::sync::Arc;

use super::*;
use crate::lot::ast::*;
use crate::lot::context::{Context, TestContext};
use crate::lot::value::Value;

fn sp(line: u32) -> Span {
    Span {
        line,
        col: 1,
        offset: 0,
        len: 0,
    }
}

fn named<T>(value: T) -> Spanned<T> {
    Spanned { value, span: sp(1) }
}

fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: sp(1) }
}

/// `x` placed on `line` (errors carry the line of the expression that failed).
fn on(line: u32, mut x: Expr) -> Expr {
    x.span = sp(line);
    x
}

fn text(s: &str) -> Expr {
    e(ExprKind::Text(s.to_string()))
}

fn bin(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    e(ExprKind::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    })
}

fn st(line: u32, kind: StmtKind) -> Stmt {
    Stmt {
        kind,
        span: sp(line),
    }
}

fn action(name: &str, body: Vec<Stmt>) -> Action {
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

fn publish(line: u32, topic: Expr, value: Expr) -> Stmt {
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

fn cond(kind: ConditionKind) -> Condition {
    Condition { kind, span: sp(1) }
}

fn rule(branches: Vec<(Condition, Decision)>, otherwise: Option<Decision>) -> Rule {
    Rule {
        name: named("R".to_string()),
        priority: named(1000),
        scope: named(Scope::Publish),
        topic: None,
        body: RuleBody::If {
            branches: branches.into_iter().map(|(c, d)| (c, named(d))).collect(),
            otherwise: otherwise.map(named),
        },
        span: sp(1),
    }
}

#[test]
fn rule_decisions_follow_if_else_if_else() {
    let flags = vec!["allowedsystemconfiguration".to_string()];
    let admin = RuleSubject {
        user: Some("ann"),
        flags: &flags,
        client_id: "c1",
        ..Default::default()
    };
    let anon = RuleSubject {
        client_id: "c1",
        topic: Some("dev/c1/x"),
        ..Default::default()
    };
    let has = || {
        cond(ConditionKind::UserHas(
            "AllowedSystemConfiguration".to_string(),
        ))
    };
    let by_topic = || cond(ConditionKind::ClientIdIsTopicPosition(2));

    let with_else = rule(vec![(has(), Decision::Allow)], Some(Decision::Deny));
    assert_eq!(decide(&with_else, &admin), Some(Decision::Allow));
    assert_eq!(decide(&with_else, &anon), Some(Decision::Deny));

    let no_else = rule(vec![(has(), Decision::Allow)], None);
    assert_eq!(
        decide(&no_else, &anon),
        None,
        "falls through to the next rule"
    );

    let chain = rule(
        vec![(has(), Decision::Deny), (by_topic(), Decision::Allow)],
        None,
    );
    assert_eq!(decide(&chain, &admin), Some(Decision::Deny));
    assert_eq!(decide(&chain, &anon), Some(Decision::Allow));
    let stranger = RuleSubject {
        client_id: "c2",
        topic: Some("dev/c1/x"),
        ..Default::default()
    };
    assert_eq!(decide(&chain, &stranger), None);
}

#[test]
fn called_actions_return_outputs_and_errors_nest() {
    let mut callee = action(
        "Double",
        vec![st(
            3,
            StmtKind::Set {
                name: named("r".to_string()),
                value: on(
                    3,
                    bin(
                        BinOp::Div,
                        e(ExprKind::Var("x".to_string())),
                        e(ExprKind::Var("d".to_string())),
                    ),
                ),
            },
        )],
    );
    callee.inputs = vec![
        Input {
            name: named("x".to_string()),
            ty: InputType::Int,
            span: sp(1),
        },
        Input {
            name: named("d".to_string()),
            ty: InputType::Int,
            span: sp(2),
        },
    ];
    callee.outputs = vec![named("r".to_string())];
    let mut ctx = TestContext::new();
    ctx.actions.insert("Double".to_string(), Arc::new(callee));
    let out = ctx
        .call_action(
            "Double",
            vec![
                ("x".to_string(), Value::text("10")),
                ("d".to_string(), Value::Int(4)),
            ],
        )
        .unwrap();
    assert!(matches!(out[0].1, Value::Float(f) if f == 2.5));
    let err = ctx
        .call_action("Double", vec![("x".to_string(), Value::Int(1))])
        .unwrap_err();
    assert_eq!(err.to_string(), "Double:3: division by zero");
    let err = ctx
        .call_action("Double", vec![("x".to_string(), Value::text("ten"))])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Double:1: input \"x\": cannot convert text \"ten\" to INT"
    );
}
