//! LOT compile errors: each test asserts the line, the column and the words of the message a
//! user sees (spec §7, §8).

use lothub::lot::{KnownNames, LotError, compile};

fn errors(text: &str) -> Vec<LotError> {
    match compile(text, Some("t.lot"), &KnownNames::default()) {
        Ok(defs) => panic!("expected an error, compiled {} definitions", defs.len()),
        Err(e) => e,
    }
}

fn first(text: &str) -> LotError {
    errors(text).remove(0)
}

#[track_caller]
fn assert_at(e: &LotError, line: u32, col: u32, words: &str) {
    assert!(
        e.message.contains(words),
        "message {:?} lacks {words:?}\n{e}",
        e.message
    );
    assert_eq!((e.line, e.col), (line, col), "wrong place:\n{e}");
}

#[test]
fn missing_then_in_a_multi_line_rule_is_reported_on_the_if_line() {
    let e = first(
        "DEFINE RULE R WITH PRIORITY 100 FOR Publish\n    IF USER IS \"bob\"\n        ALLOW\n",
    );
    assert_at(&e, 2, 21, "expected THEN after the IF condition");
    assert_eq!(e.source_line, "    IF USER IS \"bob\"");
    assert_eq!(e.definition.as_deref(), Some("RULE R"));
    assert!(
        e.to_string()
            .starts_with("t.lot:2:21: expected THEN after the IF condition\n")
    );
}

#[test]
fn missing_then_in_an_action_is_reported_at_the_end_of_the_if() {
    let e =
        first("DEFINE ACTION A ON TOPIC \"x\" DO\n    IF PAYLOAD > 5\n        SET \"a\" WITH 1\n");
    assert_at(&e, 2, 19, "expected THEN after the IF condition");
}

#[test]
fn bad_scope_names_the_expected_scopes() {
    let e = first("DEFINE RULE R WITH PRIORITY 100 FOR Publsh ALLOW");
    assert_at(&e, 1, 37, "expected a scope such as Publish or Subscribe");
    assert!(e.message.contains("Publsh"));
    let e = first("DEFINE RULE R WITH PRIORITY 100 FOR\n    ALLOW");
    assert_at(&e, 1, 36, "expected a scope such as Publish or Subscribe");
}

#[test]
fn reserved_priority() {
    let e = first("DEFINE RULE R WITH PRIORITY 5 FOR Publish ALLOW");
    assert_at(&e, 1, 29, "reserved for built-in rules");
}

#[test]
fn tab_and_space_mixing_in_one_block() {
    let e = first("DEFINE ACTION A ON START DO\n    SET \"a\" WITH 1\n\tSET \"b\" WITH 2\n");
    assert_at(&e, 3, 1, "tabs and spaces");
}

#[test]
fn bad_regex_in_rule_and_in_filter() {
    let e = first(
        "DEFINE RULE R WITH PRIORITY 100 FOR Connect IF CLIENTID MATCHES REGEX \"a(\" THEN ALLOW",
    );
    assert_at(&e, 1, 71, "invalid regular expression");
    let e = first(
        "DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"x\" WITH FILTER PAYLOAD USING REGEX \"[\"\n",
    );
    assert_at(&e, 2, 45, "invalid regular expression");
}

#[test]
fn unknown_model_at_the_publish_model_line() {
    let e = first(
        "DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"x\" WITH 1\n    PUBLISH MODEL Nope TO \"o\" WITH\n        a = 1\n",
    );
    assert_at(&e, 3, 19, "unknown model Nope");
}

#[test]
fn unknown_action_and_known_names() {
    let text = "DEFINE ACTION A ON START DO\n    CALL ACTION Deployed\n";
    let e = first(text);
    assert_at(&e, 2, 17, "unknown action Deployed");
    let mut known = KnownNames::default();
    known.actions.insert("Deployed".into());
    assert!(compile(text, None, &known).is_ok());
}

#[test]
fn mapping_wildcard_mismatch_at_its_destination_line() {
    let e = first(
        "DEFINE ROUTE B WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    \
         ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"cloud\"\n    ADD MAPPING m\n        \
         WITH SOURCE_TOPIC \"a/+/b/#\"\n        WITH DESTINATION_TOPIC \"x/#\"\n",
    );
    assert_at(&e, 8, 9, "DESTINATION_TOPIC");
    assert!(e.message.contains("do not match"));
}

#[test]
fn duplicate_name_at_the_second_define() {
    let e = first(
        "DEFINE ACTION A ON START DO\n    SET \"x\" WITH 1\n\n// again\nDEFINE ACTION A ON START DO\n    SET \"y\" WITH 2\n",
    );
    assert_at(&e, 5, 1, "ACTION A is defined twice (first at line 1)");
}

#[test]
fn unsupported_and_unknown_route_types() {
    let e =
        first("DEFINE ROUTE M WITH TYPE MODBUS_TCP\n    ADD MODBUS_CONFIG\n        WITH IP \"1\"");
    assert_at(
        &e,
        1,
        26,
        "route type MODBUS_TCP is not supported by lothub",
    );
    let e = first("DEFINE ROUTE M WITH TYPE TELEPATHY");
    assert_at(&e, 1, 26, "route type TELEPATHY is not supported by lothub");
}

#[test]
fn unknown_route_key_and_bad_value() {
    let base = "DEFINE ROUTE B WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"c\"\n";
    let e = first(&format!("{base}        WITH BROKER_PORTT 1883\n"));
    assert_at(&e, 6, 14, "unknown setting BROKER_PORTT");
    let e = first(&format!("{base}        WITH BROKER_PORT 'abc'\n"));
    assert_at(&e, 6, 26, "expected a whole number");
    let ok = format!("{base}        WITH BROKER_PORT '1883'\n");
    assert!(compile(&ok, None, &KnownNames::default()).is_ok());
}

#[test]
fn bad_cron_and_bad_times() {
    let e = first("DEFINE ACTION A ON CRON \"61 * * * *\" DO\n    SET \"a\" WITH 1");
    assert_at(&e, 1, 25, "invalid cron expression");
    let e = first("DEFINE ACTION A ON EVERY MONDAY AT \"25:00\" DO\n    SET \"a\" WITH 1");
    assert_at(&e, 1, 36, "invalid time \"25:00\"");
    let e = first("DEFINE ACTION A ON TIMESTAMP \"31-02-2025 10:00:00\" DO\n    SET \"a\" WITH 1");
    assert_at(&e, 1, 30, "invalid time");
    let e = first("DEFINE ACTION A ON START DO\n    SET \"a\" WITH TIMESTAMP \"banana\"");
    assert_at(&e, 2, 28, "unknown time format");
}

#[test]
fn invalid_topic_filters() {
    let e = first("DEFINE RULE R WITH PRIORITY 100 FOR Publish TO TOPIC \"a/#/b\" ALLOW");
    assert_at(&e, 1, 54, "invalid topic filter");
    let e = first("DEFINE ACTION A ON TOPIC \"a+\" DO\n    SET \"a\" WITH 1");
    assert_at(&e, 1, 26, "'+' must occupy a whole topic level");
}

#[test]
fn wildcard_inheritance_rules() {
    let ok = "DEFINE ACTION A ON TOPIC \"line/+/temp\" DO\n    PUBLISH TOPIC \"out/+/t\" WITH GET TOPIC \"line/+/hum\"\n";
    assert!(compile(ok, None, &KnownNames::default()).is_ok());
    let e = first(
        "DEFINE ACTION A ON TOPIC \"line/+/temp\" DO\n    PUBLISH TOPIC \"out/x/+\" WITH 1\n",
    );
    assert_at(&e, 2, 19, "a + at level 3");
    let e = first("DEFINE ACTION A ON TOPIC \"line/#\" DO\n    KEEP TOPIC \"out/#\" WITH 1\n");
    assert_at(&e, 2, 16, "# is not allowed");
}

#[test]
fn payload_outside_topic_actions() {
    let e = first("DEFINE ACTION A ON EVERY 5 SECONDS DO\n    PUBLISH TOPIC \"a\" WITH PAYLOAD\n");
    assert_at(&e, 2, 28, "PAYLOAD is only available");
}

#[test]
fn missing_do_and_empty_body() {
    let e = first("DEFINE ACTION A ON TOPIC \"x\"\n    SET \"a\" WITH 1\n");
    assert_at(&e, 1, 29, "expected DO");
    let e = first("DEFINE ACTION A ON TOPIC \"x\" DO\n");
    assert_at(&e, 1, 32, "expected the action's statements");
}

#[test]
fn unknown_statement_and_stray_else() {
    let e = first("DEFINE ACTION A ON START DO\n    PRINT \"x\"\n");
    assert_at(&e, 2, 5, "expected a statement");
    let e = first(
        "DEFINE ACTION A ON START DO\n    SET \"a\" WITH 1\n    ELSE\n        SET \"a\" WITH 2\n",
    );
    assert_at(&e, 3, 5, "ELSE without a matching IF");
}

#[test]
fn unterminated_string_and_text_before_define() {
    let e = first("DEFINE ACTION A ON START DO\n    SET \"a\" WITH \"oops\n");
    assert_at(&e, 2, 18, "unterminated string");
    let e = first("hello\nDEFINE ACTION A ON START DO\n    SET \"a\" WITH 1\n");
    assert_at(&e, 1, 1, "expected DEFINE");
}

#[test]
fn every_error_of_a_text_is_reported() {
    let errs = errors(
        "DEFINE RULE A WITH PRIORITY 5 FOR Publish ALLOW\nDEFINE RULE B WITH PRIORITY 100 FOR Nope ALLOW\nDEFINE RULE C WITH PRIORITY 100 FOR Publish ALLOW\n",
    );
    assert_eq!(errs.len(), 2);
    assert_eq!((errs[0].line, errs[1].line), (1, 2));
}

#[test]
fn unknown_model_field_and_call_input() {
    let e = first(
        "DEFINE MODEL T COLLAPSED\n    ADD DOUBLE \"temp\"\nDEFINE ACTION A ON START DO\n    PUBLISH MODEL T TO \"o\" WITH\n        tmp = 1\n",
    );
    assert_at(&e, 5, 9, "model T has no field \"tmp\"");
    let e = first(
        "DEFINE ACTION Add\nINPUT a AS INT\nDO\n    SET \"r\" WITH {a}\nRETURN\n    OUTPUT r\nDEFINE ACTION B ON START DO\n    CALL ACTION Add WITH b = 1\n",
    );
    assert_at(&e, 8, 26, "action Add has no INPUT b");
}

#[test]
fn text_after_a_complete_rule() {
    let e = first(
        "DEFINE RULE R WITH PRIORITY 100 FOR Publish\n    IF USER IS \"a\" THEN ALLOW\n    ELSE DENY\n    ALLOW\n",
    );
    assert_at(&e, 4, 5, "the end of the rule");
}

#[test]
fn every_bad_line_of_an_action_is_reported() {
    let errs = errors(
        "DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"a\" WITH\n    IF PAYLOAD > 1\n        SET \"b\" WITH 1\n    ELSE\n        SET \"c\" WITH 2\n    PRINT 1\n    SET \"ok\" WITH 1\n",
    );
    let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 7], "{errs:?}");
    assert!(
        errs.iter()
            .all(|e| e.definition.as_deref() == Some("ACTION A"))
    );
}

#[test]
fn unclosed_brackets_and_missing_operands_in_plain_words() {
    let e = first("DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"x\" WITH {\"a\": 1\n");
    assert_at(&e, 2, 25, "expected }");
    let e = first("DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"x\" WITH (1 + 2\n");
    assert_at(&e, 2, 24, "expected )");
    let e = first("DEFINE ACTION A ON TOPIC \"t\" DO\n    SET \"x\" WITH PAYLOAD +\n");
    assert_eq!(
        e.message,
        "expected a value (a string, number, {variable}, PAYLOAD, GET TOPIC ...)"
    );
    let e = first("DEFINE RULE R WITH PRIORITY 100 FOR Publish IF USER IS \"a\" AND THEN ALLOW");
    assert_at(&e, 1, 64, "expected a condition such as USER IS \"name\"");
}

#[test]
fn model_wildcards_must_be_fillable_from_the_trigger() {
    let e = first(
        "DEFINE MODEL M WITH TOPIC \"out/+/+\"\n    ADD DOUBLE \"t\" WITH TOPIC \"line/+/t\" AS TRIGGER\n",
    );
    assert_at(&e, 1, 27, "has more + than the trigger topic");
    let e =
        first("DEFINE MODEL M WITH TOPIC \"out/#\"\n    ADD \"t\" WITH TOPIC \"a\" AS TRIGGER\n");
    assert_at(&e, 1, 27, "not #");
    let e = first(
        "DEFINE MODEL M WITH TOPIC \"out/+\"\n    ADD \"t\" WITH TOPIC \"a/+\" AS TRIGGER\n    ADD \"h\" WITH TOPIC \"b/#\"\n",
    );
    assert_at(&e, 3, 24, "# is only allowed");
}

#[test]
fn an_indented_define_is_named_as_such() {
    let errs = errors(
        "DEFINE RULE A WITH PRIORITY 100 FOR Publish ALLOW\n  DEFINE RULE B WITH PRIORITY 100 FOR Publish ALLOW\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_at(&errs[0], 2, 3, "DEFINE must start at column 1");
}

#[test]
fn every_bad_field_of_a_model_is_reported() {
    let errs = errors(
        "DEFINE MODEL M WITH TOPIC \"o\"\n    ADD DOUBLE \"t\" WITH TOPIC \"a\" AS TRIGGER\n    ADD FLOAT \"x\"\n    ADD \"t\" WITH 1\n    ADD \"ok\" WITH 2\n",
    );
    let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4], "{errs:?}");
    assert!(errs[1].message.contains("defined twice"));
}

#[test]
fn query_placeholders_and_self_to_self_bridges() {
    let base = "DEFINE ROUTE Db WITH TYPE POSTGRESQL\n    ADD SQL_CONFIG\n        WITH SERVER \"db\"\n        WITH DATABASE \"plant\"\n    ADD EVENT e\n        WITH SOURCE_TOPIC \"a/+\"\n";
    let e = first(&format!(
        "{base}        WITH QUERY \"INSERT INTO t VALUES ({{paylod}})\"\n"
    ));
    assert_at(&e, 7, 9, "unknown placeholder {paylod}");
    let e = first(&format!(
        "{base}        WITH QUERY \"SELECT {{topic.0}}\"\n"
    ));
    assert!(e.message.contains("{topic.0}"));
    let ok = format!(
        "{base}        WITH QUERY \"INSERT INTO t VALUES ({{topic.2}}, {{payload.json.a.b}}, {{timestamp.unix}}, '{{\\\"k\\\": 1}}')\"\n"
    );
    assert!(compile(&ok, None, &KnownNames::default()).is_ok());
    let e = first(
        "DEFINE ROUTE B WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    ADD DESTINATION_CONFIG\n        WITH BROKER SELF\n",
    );
    assert_at(&e, 4, 9, "both sides are BROKER SELF");
}

#[test]
fn topics_on_scopes_without_topics() {
    let e = first("DEFINE RULE R WITH PRIORITY 100 FOR Connect TO TOPIC \"a\" ALLOW");
    assert_at(&e, 1, 54, "a Connect rule has no topic");
    let e = first(
        "DEFINE RULE R WITH PRIORITY 100 FOR RuleManagementCreation IF USER IS \"a\" OR CLIENTID IS TOPIC POSITION 1 THEN ALLOW",
    );
    assert_at(&e, 1, 78, "CLIENTID IS TOPIC POSITION");
}

#[test]
fn unknown_field_type_is_named() {
    let e = first("DEFINE MODEL M COLLAPSED\n    ADD FLOAT \"x\"\n");
    assert_at(&e, 2, 9, "unknown field type FLOAT");
}
