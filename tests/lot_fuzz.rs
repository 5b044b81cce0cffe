//! Random and truncated LOT texts never panic the compiler, and every error they give points at
//! a real line and column and speaks plain words (no grammar rule names).

use lothub::lot::{KnownNames, compile};
use proptest::prelude::*;

const SAMPLE: &str = r#"// sample with every kind
DEFINE RULE R WITH PRIORITY 100 FOR Publish TO TOPIC "line/+/#"
    IF USER IS "bob" AND NOT CLIENTID MATCHES REGEX "^x" THEN
        ALLOW
    ELSE IF IP IN "10.0.0.0/8" THEN
        DENY
    ELSE
        ALLOW
DEFINE MODEL M WITH TOPIC "m/+/o" WITH RETAIN AND QOS1
    ADD DOUBLE "t" WITH TOPIC "m/+/t" AS TRIGGER
    ADD ARRAY "a"
        ADD STRING "c"
DEFINE ACTION A ON TOPIC "m/+/t" DO
    SET "x" WITH GET JSON "a.b" IN PAYLOAD AS DOUBLE
    IF {x} > 1 * 2 THEN
        PUBLISH TOPIC "o/+" WITH {"v": {x}, "ts": TIMESTAMP "ISO"}
    ELSE
        PUBLISH MODEL M TO "o/+/m" WITH
            t = RANDOM DOUBLE BETWEEN 0 AND 1
    CALL ACTION B WITH n = 1 RETURN r
/* block
   comment */
DEFINE ACTION B
INPUT n AS INT
DO
    SET "r" WITH IF {n} > 0 THEN FILTER "a1" USING REGEX "\d" ELSE SPLIT "a,b" USING ","
RETURN
    OUTPUT r
DESCRIPTION "callable"
DEFINE ROUTE C WITH TYPE MQTT_BRIDGE
    ADD SOURCE_CONFIG
        WITH BROKER SELF
    ADD DESTINATION_CONFIG
        WITH BROKER_ADDRESS "c" -- dashed
        WITH BROKER_PORT '1883'
    ADD MAPPING m
        WITH SOURCE_TOPIC "a/#"
        WITH DESTINATION_TOPIC "b/#"
"#;

const RULE_NAME_MARKS: [&str; 8] = ["k_", "_stmt", "_def", "_line", "op_", "c_user", "t_", "EOI"];

fn check(text: &str) {
    if let Err(errors) = compile(text, Some("f.lot"), &KnownNames::default()) {
        assert!(!errors.is_empty());
        let lines = text.split('\n').count() as u32;
        for e in errors {
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} of {lines}: {e}",
                e.line
            );
            assert!(e.col >= 1, "{e}");
            // Messages quote the user's own words; a mark that the input itself holds proves
            // nothing, so only marks absent from the input are looked for.
            for mark in RULE_NAME_MARKS.iter().filter(|m| !text.contains(**m)) {
                assert!(!e.message.contains(mark), "rule name in {:?}", e.message);
            }
            let _ = e.to_string();
        }
    }
}

#[test]
fn the_sample_compiles() {
    let defs = compile(SAMPLE, None, &KnownNames::default()).unwrap();
    assert_eq!(defs.len(), 5);
}

#[test]
fn every_truncation_of_the_sample_is_handled() {
    for (i, _) in SAMPLE.char_indices() {
        check(&SAMPLE[..i]);
    }
}

#[test]
fn every_single_line_removed_is_handled() {
    let lines: Vec<&str> = SAMPLE.lines().collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        check(&text.join("\n"));
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!(
        "DEFINE ACTION A ON START DO\n    SET \"x\" WITH {}1{}\n",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let errs = compile(&deep, None, &KnownNames::default()).unwrap_err();
    assert!(errs[0].message.contains("nested too deeply"));
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("DEFINE ".to_owned()),
        Just("RULE ".to_owned()),
        Just("ACTION ".to_owned()),
        Just("MODEL ".to_owned()),
        Just("ROUTE ".to_owned()),
        Just("IF ".to_owned()),
        Just("THEN".to_owned()),
        Just("ELSE ".to_owned()),
        Just("ON TOPIC ".to_owned()),
        Just("DO".to_owned()),
        Just("\n".to_owned()),
        Just("\n    ".to_owned()),
        Just("\t".to_owned()),
        Just("\"a/+\" ".to_owned()),
        Just("{x}".to_owned()),
        Just("{".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("PAYLOAD ".to_owned()),
        Just("SET ".to_owned()),
        Just("WITH ".to_owned()),
        Just("PUBLISH ".to_owned()),
        Just("ADD ".to_owned()),
        Just("// c".to_owned()),
        Just("/*".to_owned()),
        Just("--".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("+ ".to_owned()),
        Just("1 ".to_owned()),
        Just("é".to_owned()),
        Just("€".to_owned()),
        Just("€DO\n".to_owned()),
        "[ -~]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_token_soup_never_panics(tokens in proptest::collection::vec(token(), 0..40)) {
        check(&tokens.concat());
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn sample_with_a_random_edit_never_panics(at in 0usize..2000, insert in "[ -~\\n\\t]{0,5}") {
        let at = SAMPLE.char_indices().map(|(i, _)| i).nth(at % SAMPLE.chars().count()).unwrap_or(0);
        let text = format!("{}{}{}", &SAMPLE[..at], insert, &SAMPLE[at..]);
        check(&text);
    }
}

#[test]
fn multi_byte_text_next_to_keywords_is_handled() {
    for text in [
        "DEFINE ACTION A\nON START €DO\n    SET \"x\" WITH 1\n",
        "DEFINE ACTION A ON START DO\n    SET \"€\" WITH \"日本\" + 1 // ü\n",
        "DEFINE ACTION Ü ON START DO\n    SET \"x\" WITH 1\n",
    ] {
        check(text);
    }
    let ok = compile(
        "DEFINE ACTION A ON START DO\n    SET \"größe\" WITH \"日本\" // ü\n    SET \"b\" WITH {größe}\n",
        None,
        &KnownNames::default(),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn absurdly_long_expressions_are_refused_not_overflowed() {
    for piece in [" + 1", " * 2", " AND TRUE"] {
        let text = format!(
            "DEFINE ACTION A ON START DO\n    SET \"x\" WITH 1{}\n",
            piece.repeat(20_000)
        );
        let errs = compile(&text, None, &KnownNames::default()).unwrap_err();
        assert!(errs[0].message.contains("too complex"), "{errs:?}");
    }
    for prefix in ["NOT ", "TRIM ", "- ", "GET TOPIC ("] {
        let text = format!(
            "DEFINE ACTION A ON START DO\n    SET \"x\" WITH {}1\n",
            prefix.repeat(20_000)
        );
        assert!(compile(&text, None, &KnownNames::default()).is_err());
    }
    // Right at the limit still compiles and does not overflow a 2 MB test thread.
    let text = format!(
        "DEFINE ACTION A ON START DO\n    SET \"x\" WITH {}1\n",
        "TRIM ".repeat(250)
    );
    assert!(compile(&text, None, &KnownNames::default()).is_ok());
    let text = format!(
        "DEFINE ACTION A ON START DO\n    SET \"x\" WITH 1{}\n",
        " + 1".repeat(250)
    );
    assert!(compile(&text, None, &KnownNames::default()).is_ok());
}
