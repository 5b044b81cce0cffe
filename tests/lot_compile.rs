//! LOT compilation, construct by construct: the AST the evaluator receives has the shape and
//! the meaning of the spec (precedence, blocks, conversions, spans).

use lothub::lot::ast::*;
use lothub::lot::{KnownNames, compile, compile_sources};

fn one(text: &str) -> Definition {
    let mut defs = match compile(text, None, &KnownNames::default()) {
        Ok(d) => d,
        Err(errs) => panic!(
            "did not compile:\n{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert_eq!(defs.len(), 1);
    defs.remove(0)
}

fn action(text: &str) -> Action {
    match one(text).ast {
        DefinitionAst::Action(a) => a,
        other => panic!("not an action: {other:?}"),
    }
}

fn rule(text: &str) -> lothub::lot::ast::Rule {
    match one(text).ast {
        DefinitionAst::Rule(r) => r,
        other => panic!("not a rule: {other:?}"),
    }
}

/// The expression of `SET "x" WITH <e>` in an ON TOPIC action, printed in prefix form.
fn expr(e: &str) -> String {
    let a = action(&format!(
        "DEFINE ACTION A ON TOPIC \"t/+\" DO\n    SET \"x\" WITH {e}\n"
    ));
    match &a.body[0].kind {
        StmtKind::Set { value, .. } => show(value),
        other => panic!("{other:?}"),
    }
}

fn show(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.as_str(), show(lhs), show(rhs))
        }
        ExprKind::Unary { op, operand } => format!("({op:?} {})", show(operand)),
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Float(f) => format!("{f:?}"),
        ExprKind::Text(t) => format!("{t:?}"),
        ExprKind::Var(v) => format!("{{{v}}}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::GetTopic { topic, cast } => format!("(get {} {cast:?})", show(topic)),
        ExprKind::GetJson { path, input, cast } => {
            format!("(json {path} {} {cast:?})", show(input))
        }
        ExprKind::Payload(c) => format!("(payload {c:?})"),
        other => format!("{other:?}"),
    }
}

#[test]
fn operator_precedence_follows_the_spec() {
    assert_eq!(expr("1 + 2 * 3"), "(+ 1 (* 2 3))");
    assert_eq!(expr("(1 + 2) * 3"), "(* (+ 1 2) 3)");
    assert_eq!(expr("10 - 4 - 3"), "(- (- 10 4) 3)");
    assert_eq!(expr("{a} OR {b} AND {c}"), "(OR {a} (AND {b} {c}))");
    assert_eq!(expr("NOT {a} == 1"), "(Not (== {a} 1))");
    assert_eq!(expr("NOT {a} AND {b}"), "(AND (Not {a}) {b})");
    assert_eq!(expr("{a} + 1 > {b} * 2"), "(> (+ {a} 1) (* {b} 2))");
    assert_eq!(expr("-{a} * 2"), "(* (Neg {a}) 2)");
    assert_eq!(expr("-3"), "-3");
    assert_eq!(expr("{a} = 1"), "(== {a} 1)");
    assert_eq!(expr("{a} EQUALS 1"), "(== {a} 1)");
    assert_eq!(
        expr("{s} CONTAINS \"x\" OR {s} STARTS_WITH \"y\""),
        "(OR (CONTAINS {s} \"x\") (STARTS_WITH {s} \"y\"))"
    );
    assert_eq!(expr("7 % 4"), "(% 7 4)");
}

#[test]
fn get_topic_takes_one_operand_and_as_binds_to_the_nearest_get() {
    assert_eq!(
        expr("GET TOPIC \"count\" + 1"),
        "(+ (get \"count\" None) 1)"
    );
    assert_eq!(
        expr("GET TOPIC (\"line/\" + {id} + \"/count\") AS INT"),
        "(get (+ (+ \"line/\" {id}) \"/count\") Some(Int))"
    );
    assert_eq!(
        expr("GET JSON \"a.b\" IN PAYLOAD AS DOUBLE"),
        "(json a.b (payload None) Some(Double))"
    );
    assert_eq!(expr("PAYLOAD AS INT * 2"), "(* (payload Some(Int)) 2)");
}

#[test]
fn literals_and_transforms() {
    assert_eq!(expr("1e3"), "1000.0");
    assert_eq!(expr("\"a\\\"b\\n\""), "\"a\\\"b\\n\"");
    assert_eq!(expr("TRUE"), "true");
    let a = action(
        "DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"a\" WITH FILTER PAYLOAD USING REGEX \"(\\d+)\"\n    SET \"b\" WITH SPLIT PAYLOAD USING \",\"\n    SET \"c\" WITH REPLACE \",\" WITH \".\" IN TRIM PAYLOAD\n    SET \"d\" WITH TIMESTAMP \"UNIX-MS\"\n    SET \"e\" WITH RANDOM INT BETWEEN 1 AND 6\n    SET \"f\" WITH IF {x} > 1 THEN \"hi\" ELSE IF {x} > 0 THEN \"mid\" ELSE \"lo\"\n    SET \"g\" WITH {\"k\": [1, {x}], \"t\": TIMESTAMP \"ISO\"}\n",
    );
    let values: Vec<&ExprKind> = a
        .body
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Set { value, .. } => &value.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    match values[0] {
        ExprKind::Filter { regex, .. } => {
            assert_eq!(regex.source, "(\\d+)");
            assert!(regex.regex.is_match("ab12").unwrap());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(values[1], ExprKind::Split { separator, .. } if separator == ","));
    assert!(
        matches!(values[2], ExprKind::Replace { input, .. } if matches!(input.kind, ExprKind::Trim(_)))
    );
    assert!(matches!(values[3], ExprKind::Timestamp(TimeFormat::UnixMs)));
    assert!(matches!(values[4], ExprKind::RandomInt { .. }));
    assert!(matches!(values[5], ExprKind::If { branches, .. } if branches.len() == 2));
    match values[6] {
        ExprKind::Object(kv) => {
            assert_eq!(kv[0].0.value, "k");
            assert!(matches!(kv[0].1.kind, ExprKind::Array(ref v) if v.len() == 2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_line_rule_and_else_if_chain() {
    let r = rule("DEFINE RULE AllowAll WITH PRIORITY 1000000 FOR Publish TO TOPIC \"#\" ALLOW");
    assert_eq!(r.priority.value, 1_000_000);
    assert_eq!(r.scope.value, Scope::Publish);
    assert_eq!(r.topic.as_ref().map(|t| t.value.as_str()), Some("#"));
    assert!(matches!(
        r.body,
        RuleBody::Always(Spanned {
            value: Decision::Allow,
            ..
        })
    ));

    let r = rule(
        "DEFINE RULE R WITH PRIORITY 100 FOR subscribesys TO TOPIC \"$SYS/#\"\n    IF USER HAS AllowedSystemConfiguration THEN\n        ALLOW\n    ELSE IF USER IN GROUP \"ops\" OR IP IN \"10.0.0.0/8\" THEN\n        ALLOW\n    ELSE\n        DENY\n",
    );
    assert_eq!(r.scope.value, Scope::SubscribeSys);
    match &r.body {
        RuleBody::If {
            branches,
            otherwise,
        } => {
            assert_eq!(branches.len(), 2);
            assert!(
                matches!(branches[0].0.kind, ConditionKind::UserHas(ref f) if f == "AllowedSystemConfiguration")
            );
            match &branches[1].0.kind {
                ConditionKind::Or(a, b) => {
                    assert!(matches!(a.kind, ConditionKind::UserInGroup(ref g) if g == "ops"));
                    match b.kind {
                        ConditionKind::IpIn(c) => assert_eq!(c.prefix, 8),
                        ref other => panic!("{other:?}"),
                    }
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(otherwise.as_ref().map(|d| d.value), Some(Decision::Deny));
            assert_eq!(branches[1].1.span.line, 5);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rule_if_without_else_decides_nothing() {
    let r = rule(
        "DEFINE RULE R WITH PRIORITY 100 FOR Subscribe IF CLIENTID IS TOPIC POSITION 2 THEN ALLOW",
    );
    match r.body {
        RuleBody::If {
            branches,
            otherwise,
        } => {
            assert!(otherwise.is_none());
            assert!(matches!(
                branches[0].0.kind,
                ConditionKind::ClientIdIsTopicPosition(2)
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn action_blocks_nest_by_indentation_with_tabs_or_spaces() {
    for indent in ["    ", "\t", "  "] {
        let i = indent;
        let text = format!(
            "DEFINE ACTION A\nON TOPIC \"line/+/temp\"\nDO\n{i}IF PAYLOAD > 80 THEN\n{i}{i}PUBLISH TOPIC \"alarm/+\" WITH \"hot\"\n\n{i}{i}// a comment line between\n{i}{i}KEEP TOPIC \"state/+\" WITH PAYLOAD\n{i}ELSE IF PAYLOAD < 0 THEN\n{i}{i}SET \"x\" WITH 1\n{i}ELSE\n{i}{i}SET \"x\" WITH 2\n{i}SET \"done\" WITH TRUE\n"
        );
        let a = action(&text);
        assert_eq!(a.body.len(), 2, "indent {indent:?}");
        match &a.body[0].kind {
            StmtKind::If {
                branches,
                otherwise,
            } => {
                assert_eq!(branches.len(), 2);
                assert_eq!(branches[0].1.len(), 2);
                assert_eq!(otherwise.as_ref().map(Vec::len), Some(1));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.body[1].span.line, 13);
        assert!(
            matches!(a.trigger.as_ref().map(|t| &t.kind), Some(TriggerKind::Topic(f)) if f.value == "line/+/temp")
        );
    }
}

#[test]
fn trigger_on_the_define_line_and_do_on_the_next() {
    let a = action(
        "DEFINE ACTION Tick ON EVERY 5 SECONDS\nDO\n    PUBLISH TOPIC \"tick\" WITH TIMESTAMP \"UTC\"\n",
    );
    assert!(matches!(
        a.trigger.unwrap().kind,
        TriggerKind::Every {
            count: 5,
            unit: TimeUnit::Second
        }
    ));
    let a = action(
        "DEFINE ACTION Shift ON EVERY WEEKDAY AT \"06:00\" DO\n    PUBLISH TOPIC \"s\" WITH 1\n",
    );
    assert!(matches!(
        a.trigger.unwrap().kind,
        TriggerKind::EveryAt {
            days: Days::Weekday,
            at: TimeOfDay {
                hour: 6,
                minute: 0,
                second: 0
            }
        }
    ));
    let a =
        action("DEFINE ACTION C ON CRON \"0 */5 * * * *\" DO\n    PUBLISH TOPIC \"s\" WITH 1\n");
    match a.trigger.unwrap().kind {
        TriggerKind::Cron(c) => assert!(c.schedule.upcoming(chrono::Utc).next().is_some()),
        other => panic!("{other:?}"),
    }
    let a = action(
        "DEFINE ACTION O ON TIMESTAMP \"31-12-2030 23:59:00\" DO\n    PUBLISH TOPIC \"s\" WITH 1\n",
    );
    assert!(matches!(a.trigger.unwrap().kind, TriggerKind::Once(_)));
    let a = action(
        "DEFINE ACTION C ON CONNECT DO\n    PUBLISH TOPIC \"seen\" WITH CLIENTID + \" \" + USER\n",
    );
    assert!(matches!(a.trigger.unwrap().kind, TriggerKind::Connect));
}

#[test]
fn callable_action_with_inputs_return_and_description() {
    let a = action(
        "DEFINE ACTION Add\nINPUT a AS INT\nINPUT b AS DOUBLE\nDO\n    SET \"sum\" WITH {a} + {b}\nRETURN\n    OUTPUT sum\nDESCRIPTION \"Adds two numbers\"\n",
    );
    assert!(a.trigger.is_none());
    assert_eq!(a.inputs.len(), 2);
    assert_eq!(a.inputs[1].ty, InputType::Double);
    assert_eq!(a.outputs[0].value, "sum");
    assert_eq!(a.description.unwrap().value, "Adds two numbers");
}

#[test]
fn call_action_and_publish_model() {
    let defs = compile(
        "DEFINE ACTION Caller ON START DO\n    CALL ACTION Add WITH a = 1, b = 2 RETURN total\n    PUBLISH MODEL Reading TO \"out/r\" WITH\n        value = {total}\n        unit = \"C\"\n\nDEFINE ACTION Add\nINPUT a AS INT\nINPUT b AS INT\nDO\n    SET \"total\" WITH {a} + {b}\nRETURN\n    OUTPUT total\n\nDEFINE MODEL Reading COLLAPSED\n    ADD DOUBLE \"value\"\n    ADD STRING \"unit\"\n",
        None,
        &KnownNames::default(),
    )
    .unwrap();
    assert_eq!(defs.len(), 3);
    let DefinitionAst::Action(a) = &defs[0].ast else {
        panic!()
    };
    match &a.body[0].kind {
        StmtKind::CallAction {
            name,
            args,
            returns,
        } => {
            assert_eq!(name.value, "Add");
            assert_eq!(args.len(), 2);
            assert_eq!(returns[0].value, "total");
        }
        other => panic!("{other:?}"),
    }
    match &a.body[1].kind {
        StmtKind::PublishModel { model, fields, .. } => {
            assert_eq!(model.value, "Reading");
            assert_eq!(fields.len(), 2);
            assert_eq!(fields[1].span.line, 5);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn model_header_fields_and_nested_array() {
    let d = one(
        "DEFINE MODEL Machine WITH TOPIC \"machine/+/data\" WITH RETAIN AND QOS1\n    ADD DOUBLE \"temperature\" WITH TOPIC \"machine/+/temp\" AS TRIGGER\n    ADD STRING \"site\" WITH \"Porto\"\n    ADD TIMESTAMP \"ts\" WITH TIMESTAMP \"ISO\"\n    ADD ARRAY \"alarms\"\n        ADD STRING \"code\"\n        ADD INT \"level\"\n",
    );
    let DefinitionAst::Model(m) = d.ast else {
        panic!()
    };
    assert_eq!(m.topic.unwrap().value, "machine/+/data");
    assert!(m.retain);
    assert_eq!(m.qos, 1);
    assert_eq!(m.fields.len(), 4);
    assert!(m.fields[0].trigger);
    assert!(
        matches!(&m.fields[0].source, Some(FieldSource::Topic(t)) if t.value == "machine/+/temp")
    );
    assert_eq!(m.fields[3].ty, Some(FieldType::Array));
    assert_eq!(m.fields[3].elements.len(), 2);
    assert_eq!(m.fields[3].elements[1].span.line, 7);
}

#[test]
fn model_from_parent_declared_later() {
    let defs = compile(
        "DEFINE MODEL Child FROM Base\n    ADD INT \"extra\"\nDEFINE MODEL Base COLLAPSED\n    ADD STRING \"id\"\n",
        None,
        &KnownNames::default(),
    )
    .unwrap();
    let DefinitionAst::Model(m) = &defs[0].ast else {
        panic!()
    };
    assert_eq!(m.from.as_ref().unwrap().value, "Base");
}

#[test]
fn routes_convert_values_for_their_keys() {
    let d = one(
        "DEFINE ROUTE Cloud WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"broker.example.com\"\n        WITH BROKER_PORT '8883'\n        WITH USE_TLS \"true\"\n        WITH QOS 1\n        WITH USERNAME 1234\n        WITH PASSWORD GET SECRET \"CLOUD_PW\"\n    ADD MAPPING telemetry\n        WITH SOURCE_TOPIC \"factory/#\"\n        WITH DESTINATION_TOPIC \"sites/a/factory/#\"\n        WITH DIRECTION \"both\"\n",
    );
    let DefinitionAst::Route(r) = d.ast else {
        panic!()
    };
    assert_eq!(r.route_type.value, RouteType::MqttBridge);
    let src = &r.configs[0];
    assert_eq!(src.get("BROKER").unwrap().value, RouteValue::SelfBroker);
    let dst = &r.configs[1];
    assert_eq!(dst.get("BROKER_PORT").unwrap().value, RouteValue::Int(8883));
    assert_eq!(dst.get("USE_TLS").unwrap().value, RouteValue::Bool(true));
    assert_eq!(
        dst.get("USERNAME").unwrap().value,
        RouteValue::Text("1234".into())
    );
    assert_eq!(
        dst.get("PASSWORD").unwrap().value,
        RouteValue::Secret("CLOUD_PW".into())
    );
    assert_eq!(r.mappings[0].direction, Direction::Both);
    assert_eq!(r.mappings[0].destination_topic.span.line, 13);
}

#[test]
fn postgres_route_events() {
    let d = one(
        "DEFINE ROUTE Db WITH TYPE POSTGRESQL\n    ADD SQL_CONFIG\n        WITH SERVER \"db\"\n        WITH PORT 5432\n        WITH DATABASE \"plant\"\n        WITH USE_SSL FALSE\n    ADD EVENT store\n        WITH SOURCE_TOPIC \"line/+/temp\"\n        WITH QUERY \"INSERT INTO t VALUES ({topic.2}, {payload})\"\n",
    );
    let DefinitionAst::Route(r) = d.ast else {
        panic!()
    };
    assert_eq!(r.events[0].source_topic.value, "line/+/temp");
    assert!(r.events[0].destination_topic.is_none());
}

#[test]
fn comments_of_all_three_styles_and_keywords_in_any_case() {
    let a = action(
        "/* header\n   comment */\ndefine action a on topic \"t\" do // trailing\n    -- a dashed comment\n    set \"x\" with payload /* inline */ + 1\n",
    );
    assert_eq!(a.body.len(), 1);
    assert_eq!(a.body[0].span.line, 5);
}

#[test]
fn multi_line_json_object_is_one_statement() {
    let a = action(
        "DEFINE ACTION A ON TOPIC \"t\" DO\n    PUBLISH TOPIC \"o\" WITH {\n        \"v\": PAYLOAD,\n        \"at\": TIMESTAMP \"UTC\"\n    }\n    SET \"x\" WITH 1\n",
    );
    assert_eq!(a.body.len(), 2);
}

#[test]
fn spans_point_into_the_original_text() {
    let text = "// c\nDEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"x\" WITH  PAYLOAD\n";
    let d = one(text);
    let DefinitionAst::Action(a) = &d.ast else {
        panic!()
    };
    let StmtKind::Set { value, name } = &a.body[0].kind else {
        panic!()
    };
    assert_eq!((value.span.line, value.span.col), (3, 19));
    assert_eq!(
        &text[value.span.offset as usize..][..value.span.len as usize],
        "PAYLOAD"
    );
    assert_eq!((name.span.line, name.span.col), (3, 9));
    assert!(d.source.starts_with("DEFINE ACTION A"));
}

#[test]
fn names_resolve_across_files() {
    let ok = compile_sources(
        &[
            (
                "DEFINE ACTION A ON START DO\n    CALL ACTION B\n",
                Some("a.lot"),
            ),
            (
                "DEFINE ACTION B\nDO\n    PUBLISH TOPIC \"x\" WITH 1\n",
                Some("b.lot"),
            ),
        ],
        &KnownNames::default(),
    );
    assert_eq!(ok.unwrap().len(), 2);
    let dup = compile_sources(
        &[
            ("DEFINE ACTION B DO\n    SET \"x\" WITH 1\n", Some("a.lot")),
            ("DEFINE ACTION B DO\n    SET \"x\" WITH 1\n", Some("b.lot")),
        ],
        &KnownNames::default(),
    )
    .unwrap_err();
    assert_eq!(dup[0].file.as_deref(), Some("b.lot"));
    assert!(dup[0].message.contains("first at a.lot:1"));
}

#[test]
fn windows_line_endings_and_byte_order_mark() {
    let a = action(
        "\u{feff}DEFINE ACTION A ON TOPIC \"t\" DO\r\n    IF PAYLOAD > 1 THEN\r\n        SET \"x\" WITH 1\r\n    SET \"y\" WITH 2\r\n",
    );
    assert_eq!(a.body.len(), 2);
    assert_eq!(a.body[1].span.line, 4);
}

#[test]
fn deploy_time_resolution_against_deployed_definitions() {
    let deployed = compile(
        "DEFINE MODEL Reading COLLAPSED\n    ADD DOUBLE \"v\"\nDEFINE ACTION Notify\nDO\n    PUBLISH TOPIC \"n\" WITH 1\n",
        None,
        &KnownNames::default(),
    )
    .unwrap();
    let known = KnownNames::from_definitions(&deployed);
    let new = "DEFINE ACTION A ON START DO\n    CALL ACTION Notify\n    PUBLISH MODEL Reading TO \"o\" WITH\n        v = 1\n";
    assert!(compile(new, None, &known).is_ok());
    assert!(compile(new, None, &KnownNames::default()).is_err());
}
