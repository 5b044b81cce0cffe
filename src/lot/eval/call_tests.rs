//! CALL ACTION on hand-built ASTs: inputs, outputs, nested errors, the depth cap.

use std::sync::Arc;

use super::tests::{action, bin, e, named, on, publish, run_vars, set, sp, st, text, var};
use super::*;
use crate::lot::ast::*;
use crate::lot::context::{Context, TestContext};
use crate::lot::value::Value;

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

#[test]
fn call_chains_are_cut_at_depth_16() {
    let call = st(
        2,
        StmtKind::CallAction {
            name: named("Loop".to_string()),
            args: Vec::new(),
            returns: Vec::new(),
        },
    );
    let looping = action(
        "Loop",
        vec![publish(1, text("tick"), e(ExprKind::Int(1))), call],
    );
    let mut ctx = TestContext::new();
    ctx.actions
        .insert("Loop".to_string(), Arc::new(looping.clone()));
    let err = run_action(&looping, &mut ctx, &[]).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("Loop:2: action chain cut at depth 16"),
        "{err}"
    );
    assert_eq!(ctx.published.len(), 16, "depths 0 to 15 ran");
    assert_eq!(ctx.depth, 0, "depth is restored after the chain");
    let unknown = st(
        3,
        StmtKind::CallAction {
            name: named("Nope".to_string()),
            args: Vec::new(),
            returns: Vec::new(),
        },
    );
    let err = run_action(&action("A", vec![unknown]), &mut ctx, &[]).unwrap_err();
    assert_eq!(err.to_string(), "A:3: unknown action Nope");
}

#[test]
fn call_action_binds_returns() {
    let mut callee = action(
        "Add",
        vec![set(2, "sum", bin(BinOp::Add, var("a"), var("b")))],
    );
    callee.inputs = vec![
        Input {
            name: named("a".to_string()),
            ty: InputType::Double,
            span: sp(1),
        },
        Input {
            name: named("b".to_string()),
            ty: InputType::Double,
            span: sp(1),
        },
    ];
    callee.outputs = vec![named("sum".to_string())];
    let mut ctx = TestContext::new().with_trigger("t", "2");
    ctx.actions.insert("Add".to_string(), Arc::new(callee));
    let arg = |n: &str, v: Expr| FieldAssign {
        name: named(n.to_string()),
        value: v,
        span: sp(1),
    };
    let call = st(
        1,
        StmtKind::CallAction {
            name: named("Add".to_string()),
            args: vec![
                arg("a", e(ExprKind::Payload(None))),
                arg("b", e(ExprKind::Float(0.5))),
            ],
            returns: vec![named("sum".to_string()), named("other".to_string())],
        },
    );
    let got = run_vars(
        &mut ctx,
        vec![call, set(2, "after", e(ExprKind::Payload(None)))],
        &["sum", "other", "after"],
    );
    assert_eq!(
        got,
        ["2.5", "", "2"],
        "the caller keeps its trigger after the call"
    );
}
