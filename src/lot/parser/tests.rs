//! Grammar tests: each construct's rule consumes its whole input (every top rule is anchored
//! SOI..EOI, and the test also checks the matched span is the whole text).

use pest::Parser;

use super::{LotParser, Rule};

fn consumes(rule: Rule, text: &str) {
    match LotParser::parse(rule, text) {
        Ok(mut pairs) => {
            let pair = pairs.next().expect("one pair");
            assert_eq!(
                pair.as_span().end(),
                text.len(),
                "{rule:?} did not consume {text:?}"
            );
        }
        Err(e) => panic!("{rule:?} failed on {text:?}:\n{e}"),
    }
}

fn rejects(rule: Rule, text: &str) {
    assert!(
        LotParser::parse(rule, text).is_err(),
        "{rule:?} accepted {text:?}"
    );
}

#[test]
fn rule_one_line_and_multi_line() {
    consumes(
        Rule::rule_def,
        "DEFINE RULE AllowAll WITH PRIORITY 1000000 FOR Publish TO TOPIC \"#\" ALLOW",
    );
    consumes(
        Rule::rule_def,
        "define rule R with priority 100 for subscribe to topic \"a/+\"\n    IF USER IS \"bob\" \
         THEN\n        ALLOW\n    ELSE IF USER HAS Admin THEN\n        ALLOW\n    ELSE\n        DENY",
    );
    consumes(
        Rule::rule_def,
        "DEFINE RULE R WITH PRIORITY 100 FOR Connect IF NOT (IP IN \"10.0.0.0/8\" OR IP IS \
         \"1.2.3.4\") AND CLIENTID MATCHES REGEX \"^dev-\" THEN DENY",
    );
}

#[test]
fn every_rule_condition() {
    for c in [
        "USER IS \"a\"",
        "USER HAS AllowedSystemConfiguration",
        "USER HAS \"Flag\"",
        "USER IN GROUP \"ops\"",
        "CLIENTID IS \"x\"",
        "CLIENTID MATCHES REGEX \"^a(?=b)\"",
        "CLIENTID IS TOPIC POSITION 2",
        "IP IS \"127.0.0.1\"",
        "IP IN \"10.0.0.0/8\"",
        "NOT USER IS \"a\" AND (USER IS \"b\" OR USER IS \"c\")",
    ] {
        consumes(
            Rule::rule_def,
            &format!("DEFINE RULE R WITH PRIORITY 100 FOR Publish IF {c} THEN ALLOW"),
        );
    }
}

#[test]
fn model_header_and_fields() {
    consumes(
        Rule::model_head,
        "DEFINE MODEL M COLLAPSED FROM Base WITH TOPIC \"m/+/x\" WITH RETAIN AND QOS1",
    );
    consumes(
        Rule::model_head,
        "DEFINE MODEL M\n    WITH TOPIC \"t\" AND QOS 2",
    );
    for f in [
        "ADD \"temperature\" WITH TOPIC \"machine/+/temp\" AS TRIGGER",
        "ADD DOUBLE \"t\" WITH TOPIC \"a\"",
        "ADD STRING \"site\" WITH \"Porto\"",
        "ADD TIMESTAMP \"ts\" WITH TIMESTAMP \"ISO\"",
        "ADD STRING \"id\" WITH RANDOM UUID",
        "ADD OBJECT \"o\" WITH {\"a\": 1, \"b\": [1, 2]}",
        "ADD ARRAY \"items\"",
        "ADD INT count WITH GET TOPIC \"c\" + 1",
        "ADD NUMBER \"temperature\"",
        "ADD string_field WITH 1",
    ] {
        consumes(Rule::field_line, f);
    }
}

#[test]
fn action_header_triggers() {
    for t in [
        "ON TOPIC \"a/+/b\"",
        "ON CHANGE \"a/#\"",
        "ON EVERY 5 SECONDS",
        "ON EVERY 1 MINUTE",
        "ON EVERY 2 HOURS",
        "ON EVERY 1 DAY",
        "ON EVERY 1 WEEK",
        "ON EVERY MONDAY AT \"07:30\"",
        "ON EVERY WEEKDAY AT \"06:00:00\"",
        "ON EVERY DAY AT \"22:00\"",
        "ON TIMESTAMP \"08:00:00\"",
        "ON CRON \"0 0 6 * * *\"",
        "ON START",
        "ON CONNECT",
        "ON DISCONNECT",
    ] {
        consumes(Rule::action_head, &format!("DEFINE ACTION A {t} DO"));
        consumes(Rule::action_head, &format!("DEFINE ACTION A\n{t}\nDO"));
    }
    consumes(
        Rule::action_head,
        "DEFINE ACTION Add\nINPUT a AS INT\nINPUT \"b\" AS DOUBLE\nDO",
    );
    rejects(Rule::action_head, "DEFINE ACTION A ON TOPIC \"x\"");
}

#[test]
fn statements() {
    for s in [
        "SET \"x\" WITH 1",
        "SET \"x\" TO {y} + 1",
        "SET x AS PAYLOAD AS DOUBLE",
        "PUBLISH TOPIC \"a/\" + {id} + \"/b\" WITH PAYLOAD",
        "KEEP TOPIC \"state\" WITH {\"on\": TRUE}",
        "PUBLISH MODEL Temp TO \"t/\" + TOPIC POSITION 2 WITH",
        "IF {x} > 5 AND NOT {y} == \"a\" THEN",
        "ELSE IF {x} CONTAINS \"b\" THEN",
        "ELSE",
        "CALL ACTION Add WITH a = 1, b = {x} RETURN sum",
        "CALL ACTION Tick",
    ] {
        consumes(Rule::stmt_line, s);
    }
    consumes(Rule::assign_line, "temperature = PAYLOAD AS DOUBLE");
    consumes(
        Rule::action_tail,
        "RETURN\n    OUTPUT sum\nDESCRIPTION \"adds\"",
    );
}

#[test]
fn every_expression_form() {
    for e in [
        "\"text\"",
        "42",
        "-3",
        "0.5",
        "1e3",
        "TRUE",
        "false",
        "EMPTY",
        "{var}",
        "{\"a\": 1, \"b\": {x}}",
        "[1, \"two\"]",
        "PAYLOAD",
        "PAYLOAD AS JSON",
        "TOPIC POSITION 3",
        "GET TOPIC \"a/b\"",
        "GET TOPIC ({p} + \"/count\") AS INT",
        "GET JSON \"a.b\" IN PAYLOAD AS DOUBLE",
        "GET ENV \"HOME\"",
        "GET SECRET \"DB\"",
        "TIMESTAMP \"UTC\"",
        "TIMESTAMP WITH \"yyyy-MM-dd\"",
        "RANDOM UUID",
        "RANDOM INT BETWEEN 1 AND 6",
        "RANDOM DOUBLE BETWEEN -1.5 AND {max} * 2",
        "REPLACE \",\" WITH \".\" IN PAYLOAD",
        "FILTER PAYLOAD USING REGEX \"(\\d+)\"",
        "TRIM PAYLOAD",
        "SPLIT PAYLOAD USING \",\"",
        "IF {a} > 1 THEN \"big\" ELSE IF {a} > 0 THEN \"small\" ELSE \"none\"",
        "CLIENTID",
        "USER",
        "1 + 2 * 3 % 4 - 5 / 6",
        "{a} == 1 OR {b} != 2 AND {c} < 3",
        "{a} <= 1 OR {a} >= 2 OR {a} = 3 OR {a} EQUALS 4 OR {a} <> 5",
        "{s} STARTS_WITH \"a\" AND {s} ENDS_WITH \"z\"",
        "NOT {flag}",
        "-{x}",
        "RANDOM BETWEEN 1 AND 6",
        "TRIM (PAYLOAD + \" \")",
        "GET JSON \"a\" IN (PAYLOAD AS JSON) AS INT",
        "{ \"a\": { \"b\": 1 } }",
    ] {
        consumes(Rule::assign_line, &format!("x = {e}"));
    }
}

#[test]
fn keywords_in_any_case_but_not_as_prefixes() {
    consumes(Rule::stmt_line, "publish topic \"a\" with payload");
    consumes(Rule::stmt_line, "Set \"a\" With Get Topic \"b\"");
    rejects(Rule::stmt_line, "SETX \"a\" WITH 1");
    rejects(Rule::assign_line, "x = PAYLOADS");
}

#[test]
fn route_blocks_and_values() {
    consumes(
        Rule::route_def,
        "DEFINE ROUTE Cloud WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    \
         ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"cloud\"\n        WITH BROKER_PORT \
         '8883'\n        WITH USE_TLS true\n        WITH PASSWORD GET SECRET \"P\"\n        WITH \
         KEEP_ALIVE 30\n    ADD MAPPING m\n        WITH SOURCE_TOPIC \"a/#\"\n        WITH \
         DESTINATION_TOPIC \"b/#\"\n        WITH DIRECTION \"out\"",
    );
    consumes(
        Rule::route_def,
        "DEFINE ROUTE Db WITH TYPE POSTGRESQL ADD SQL_CONFIG WITH SERVER GET ENV \"H\" ADD EVENT e \
         WITH SOURCE_TOPIC \"a\" WITH QUERY \"INSERT {payload}\"",
    );
}
