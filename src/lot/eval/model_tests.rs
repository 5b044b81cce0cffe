//! MODEL evaluation and PUBLISH MODEL on hand-built ASTs: typing, nulls, error lines, wildcard
//! instances, FROM, ARRAY elements.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::lot::ast::*;
use crate::lot::context::TestContext;

fn sp(line: u32) -> Span {
    Span {
        line,
        col: 1,
        offset: 0,
        len: 0,
    }
}

fn named(value: &str, line: u32) -> Spanned<String> {
    Spanned {
        value: value.to_string(),
        span: sp(line),
    }
}

fn field(line: u32, ty: Option<FieldType>, name: &str, source: Option<FieldSource>) -> ModelField {
    ModelField {
        ty,
        name: named(name, line),
        source,
        trigger: false,
        elements: Vec::new(),
        span: sp(line),
    }
}

fn topic_src(t: &str, line: u32) -> Option<FieldSource> {
    Some(FieldSource::Topic(named(t, line)))
}

fn expr_src(kind: ExprKind, line: u32) -> Option<FieldSource> {
    Some(FieldSource::Expr(Expr {
        kind,
        span: sp(line),
    }))
}

fn model(name: &str, topic: Option<&str>, fields: Vec<ModelField>) -> Model {
    Model {
        name: named(name, 1),
        collapsed: false,
        from: None,
        topic: topic.map(|t| named(t, 1)),
        retain: false,
        qos: 0,
        fields,
        span: sp(1),
    }
}

fn machine_model() -> Model {
    let mut temp = field(
        2,
        Some(FieldType::Double),
        "temp",
        topic_src("machines/+/temp", 2),
    );
    temp.trigger = true;
    model(
        "Machine",
        Some("plant/+/machine"),
        vec![
            temp,
            field(
                3,
                Some(FieldType::Int),
                "count",
                topic_src("machines/+/count", 3),
            ),
            field(
                4,
                Some(FieldType::Bool),
                "running",
                topic_src("machines/+/running", 4),
            ),
            field(
                5,
                None,
                "line",
                expr_src(ExprKind::Text("L1".to_string()), 5),
            ),
            field(
                6,
                Some(FieldType::Timestamp),
                "at",
                expr_src(ExprKind::Timestamp(TimeFormat::Utc), 6),
            ),
            field(7, Some(FieldType::String), "note", None),
        ],
    )
}

#[test]
fn a_model_builds_one_typed_object_per_trigger_instance() {
    let m = machine_model();
    let mut ctx = TestContext::new()
        .with_trigger("machines/m7/temp", "21.5")
        .with_topic("machines/m7/count", "12")
        .with_topic("machines/m7/running", "true")
        .with_topic("machines/m8/count", "99");
    assert!(trigger_field(&m, "machines/m7/temp").is_some());
    assert!(trigger_field(&m, "machines/m7/count").is_none());
    let out = eval_model(&m, &mut ctx);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.topic.as_deref(), Some("plant/m7/machine"));
    assert_eq!(
        out.payload(),
        r#"{"temp":21.5,"count":12,"running":true,"line":"L1","at":"2025-03-17 14:25:30","note":null}"#
    );
}

#[test]
fn an_unconvertible_field_is_null_with_an_error_line_and_the_model_goes_on() {
    let m = machine_model();
    let mut ctx = TestContext::new()
        .with_trigger("machines/m1/temp", "hot")
        .with_topic("machines/m1/count", "12.9")
        .with_topic("machines/m1/running", "maybe");
    let out = eval_model(&m, &mut ctx);
    let fields: serde_json::Value = serde_json::from_str(&out.payload()).unwrap();
    assert_eq!(fields["temp"], json!(null));
    assert_eq!(
        fields["count"],
        json!(12),
        "INT truncates a fractional number"
    );
    assert_eq!(fields["running"], json!(null));
    let errors: Vec<String> = out.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        [
            "Machine:2: field \"temp\": cannot convert text \"hot\" to DOUBLE",
            "Machine:4: field \"running\": cannot convert text \"maybe\" to BOOL",
        ]
    );
    assert_eq!(
        out.topic.as_deref(),
        Some("plant/m1/machine"),
        "still published"
    );
}

#[test]
fn wildcards_fill_in_order_and_collapsed_models_have_no_topic() {
    let mut t = field(2, None, "v", topic_src("site/+/+/raw", 2));
    t.trigger = true;
    let m = model(
        "Two",
        Some("out/+/x/+"),
        vec![t, field(3, None, "other", topic_src("cfg/+/+", 3))],
    );
    let mut ctx = TestContext::new()
        .with_trigger("site/a/b/raw", "1")
        .with_topic("cfg/a/b", "on");
    let out = eval_model(&m, &mut ctx);
    assert_eq!(out.topic.as_deref(), Some("out/a/x/b"));
    assert_eq!(out.payload(), r#"{"v":1,"other":"on"}"#);
    let mut schema = m.clone();
    schema.collapsed = true;
    assert_eq!(eval_model(&schema, &mut ctx).topic, None);
}

#[test]
fn from_copies_parent_fields_first_and_children_override() {
    let parent = model(
        "Base",
        None,
        vec![
            field(
                2,
                Some(FieldType::String),
                "site",
                expr_src(ExprKind::Text("north".to_string()), 2),
            ),
            field(3, Some(FieldType::Int), "v", expr_src(ExprKind::Int(1), 3)),
        ],
    );
    let mut child = model(
        "Child",
        Some("out"),
        vec![
            field(
                6,
                Some(FieldType::Double),
                "v",
                expr_src(ExprKind::Int(2), 6),
            ),
            field(7, None, "extra", expr_src(ExprKind::Bool(true), 7)),
        ],
    );
    child.from = Some(named("Base", 5));
    let mut ctx = TestContext::new();
    ctx.models.insert("Base".to_string(), Arc::new(parent));
    let out = eval_model(&child, &mut ctx);
    assert_eq!(out.payload(), r#"{"site":"north","v":2.0,"extra":true}"#);
    let filters = trigger_filters(&child, &|n| ctx.models.get(n).cloned());
    assert!(filters.is_empty());
    let out = eval_model(&child, &mut TestContext::new());
    assert_eq!(out.errors[0].to_string(), "Child:1: unknown model Base");
}

#[test]
fn array_fields_map_their_items_through_element_fields() {
    let mut arr = field(2, Some(FieldType::Array), "points", topic_src("in", 2));
    arr.trigger = true;
    arr.elements = vec![
        field(3, Some(FieldType::Int), "x", None),
        field(4, Some(FieldType::Bool), "ok", None),
    ];
    let m = model("Pts", Some("out"), vec![arr]);
    let mut ctx = TestContext::new().with_trigger("in", r#"[{"x":"3","ok":1,"junk":0},{"x":4.7}]"#);
    let out = eval_model(&m, &mut ctx);
    assert_eq!(
        out.payload(),
        r#"{"points":[{"ok":true,"x":3},{"ok":null,"x":4}]}"#
    );
    let mut single = field(2, Some(FieldType::Array), "vals", topic_src("in", 2));
    single.trigger = true;
    single.elements = vec![field(3, Some(FieldType::Double), "v", None)];
    let mut ctx = TestContext::new().with_trigger("in", "[1, \"2.5\"]");
    let out = eval_model(&model("V", Some("out"), vec![single.clone()]), &mut ctx);
    assert_eq!(out.payload(), r#"{"vals":[1.0,2.5]}"#);
    let mut ctx = TestContext::new().with_trigger("in", "[\"x\"]");
    let out = eval_model(&model("V", Some("out"), vec![single]), &mut ctx);
    assert_eq!(out.payload(), r#"{"vals":null}"#);
    assert_eq!(
        out.errors[0].to_string(),
        "V:2: field \"vals\": cannot convert text \"x\" to DOUBLE"
    );
}

fn publish_model(line: u32, assigns: Vec<(&str, ExprKind, u32)>) -> Action {
    let fields = assigns
        .into_iter()
        .map(|(n, kind, l)| FieldAssign {
            name: named(n, l),
            value: Expr { kind, span: sp(l) },
            span: sp(l),
        })
        .collect();
    Action {
        name: named("Report", 1),
        trigger: None,
        inputs: Vec::new(),
        body: vec![Stmt {
            kind: StmtKind::PublishModel {
                model: named("Machine", line),
                topic: Expr {
                    kind: ExprKind::Text("reports/+/m".to_string()),
                    span: sp(line),
                },
                fields,
            },
            span: sp(line),
        }],
        outputs: Vec::new(),
        description: None,
        span: sp(1),
    }
}

#[test]
fn publish_model_types_the_fields_and_fills_the_rest_from_the_model() {
    let mut m = machine_model();
    m.retain = true;
    m.qos = 1;
    let mut ctx = TestContext::new()
        .with_trigger("machines/m3/temp", "20")
        .with_topic("machines/m3/running", "0");
    ctx.models.insert("Machine".to_string(), Arc::new(m));
    let a = publish_model(
        2,
        vec![
            ("temp", ExprKind::Text("19.5".to_string()), 3),
            ("count", ExprKind::Int(4), 4),
        ],
    );
    run_action(&a, &mut ctx, &[]).unwrap();
    let p = &ctx.published[0];
    assert_eq!(
        (p.topic.as_str(), p.retain, p.qos),
        ("reports/m3/m", true, 1)
    );
    assert_eq!(
        p.text(),
        r#"{"temp":19.5,"count":4,"running":false,"line":"L1","at":"2025-03-17 14:25:30","note":null}"#
    );
}

#[test]
fn publish_model_errors_stop_the_action() {
    let mut ctx = TestContext::new().with_trigger("machines/m3/temp", "20");
    let a = publish_model(2, vec![("temp", ExprKind::Text("x".to_string()), 3)]);
    assert_eq!(
        run_action(&a, &mut ctx, &[]).unwrap_err().to_string(),
        "Report:2: unknown model Machine"
    );
    ctx.models
        .insert("Machine".to_string(), Arc::new(machine_model()));
    assert_eq!(
        run_action(&a, &mut ctx, &[]).unwrap_err().to_string(),
        "Report:3: field \"temp\": cannot convert text \"x\" to DOUBLE"
    );
    let a = publish_model(2, vec![("nope", ExprKind::Int(1), 5)]);
    assert_eq!(
        run_action(&a, &mut ctx, &[]).unwrap_err().to_string(),
        "Report:5: model Machine has no field \"nope\""
    );
    assert!(ctx.published.is_empty());
}

#[test]
fn publish_model_names_the_model_field_when_its_own_source_fails() {
    let div = ExprKind::Binary {
        op: BinOp::Div,
        lhs: Box::new(Expr {
            kind: ExprKind::Int(1),
            span: sp(9),
        }),
        rhs: Box::new(Expr {
            kind: ExprKind::Int(0),
            span: sp(9),
        }),
    };
    let mut m = model(
        "Machine",
        None,
        vec![field(9, Some(FieldType::Int), "ratio", expr_src(div, 9))],
    );
    m.collapsed = true;
    let mut ctx = TestContext::new().with_trigger("machines/m3/temp", "20");
    ctx.models.insert("Machine".to_string(), Arc::new(m));
    let err = run_action(&publish_model(2, Vec::new()), &mut ctx, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Report:2: field \"Machine.ratio\": division by zero"
    );
}
