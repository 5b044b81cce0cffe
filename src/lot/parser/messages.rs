//! # lot::parser::messages: pest errors -> plain words
//!
//! Owns the mapping from grammar rules to what a plant engineer reads ("expected THEN after the
//! IF condition", "expected a scope such as Publish or Subscribe"). No pest rule name ever reaches
//! a user. Also moves an error that pest found at the start of the next line back to the end of
//! the line holding the incomplete construct (spec §8: a missing THEN is reported on the IF's
//! line).

use pest::error::{Error, ErrorVariant, InputLocation};

use super::Rule;
use crate::lot::error::LotError;
use crate::lot::source::Source;

/// `top` is the rule the slice was parsed with: it says what "the end" of the slice is.
pub(crate) fn syntax_error(src: &Source<'_>, base: usize, top: Rule, err: Error<Rule>) -> LotError {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let positives = match err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { message } => return src.error_at(base + pos, message),
    };
    let end = match top {
        Rule::rule_def => "the end of the rule",
        Rule::route_def => "the end of the route",
        Rule::model_head => "the end of the model header",
        Rule::action_head => "the end of the action header",
        Rule::action_tail => "the end of the action",
        _ => "the end of the line",
    };
    let message = expected_message(&positives).replace("the end of the line", end);
    let mut at = base + pos;
    if !positives.iter().any(|r| starts_a_line(*r)) {
        at = back_to_construct(src, base, at);
    }
    // An error at the very end of a line that has text after the construct: point at the text.
    src.error_at(at, message)
}

/// When `at` is the first non-blank byte of its line, the end of the previous non-blank text
/// (within the slice), else `at` unchanged.
fn back_to_construct(src: &Source<'_>, base: usize, at: usize) -> usize {
    let b = src.blanked.as_bytes();
    let mut i = at;
    while i > base && matches!(b[i - 1], b' ' | b'\t' | b'\r') {
        i -= 1;
    }
    if i > base && b[i - 1] == b'\n' {
        let mut j = i - 1;
        while j > base && b[j - 1].is_ascii_whitespace() {
            j -= 1;
        }
        if j > base {
            return j;
        }
    }
    at
}

/// Rules that legitimately begin a new line: an error expecting one of them stays where it is.
fn starts_a_line(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::EOI
            | Rule::k_add
            | Rule::route_block
            | Rule::route_entry
            | Rule::k_if
            | Rule::rule_if
            | Rule::rule_else_if
            | Rule::rule_else
            | Rule::k_else
            | Rule::decision
            | Rule::k_allow
            | Rule::k_deny
            | Rule::trigger
            | Rule::k_on
            | Rule::input_decl
            | Rule::k_input
            | Rule::k_do
            | Rule::description
            | Rule::k_description
            | Rule::k_return
            | Rule::output_decl
            | Rule::k_output
            | Rule::rule_topic
            | Rule::k_to
            | Rule::k_set
            | Rule::k_publish
            | Rule::k_keep
            | Rule::k_call
            | Rule::field_line
            | Rule::stmt_line
            | Rule::action_tail
    )
}

/// "expected ..." for a set of rules pest tried at the failing position.
pub(crate) fn expected_message(positives: &[Rule]) -> String {
    let has = |r: Rule| positives.contains(&r);
    if has(Rule::k_then) {
        return "expected THEN after the IF condition".into();
    }
    if has(Rule::scope) {
        return "expected a scope such as Publish or Subscribe".into();
    }
    if has(Rule::k_do) {
        return "expected DO before the action's statements (or a trigger such as ON TOPIC, \
                INPUT or DESCRIPTION)"
            .into();
    }
    if has(Rule::k_set) && has(Rule::k_call) {
        return "expected a statement (SET, PUBLISH TOPIC, PUBLISH MODEL, KEEP TOPIC, IF, ELSE \
                or CALL ACTION)"
            .into();
    }
    // Many ways to start a value or a condition: say so once instead of listing them all.
    let value_starts = positives.iter().filter(|r| starts_a_value(**r)).count();
    // USER and CLIENTID also start values; only IP or a whole condition means "condition here".
    let cond_ctx = has(Rule::k_ip) || has(Rule::cond) || has(Rule::cond_paren);
    let cond_starts = if cond_ctx {
        positives.iter().filter(|r| starts_a_condition(**r)).count()
    } else {
        0
    };
    let mut words: Vec<String> = Vec::new();
    if value_starts >= 4 {
        words.push(describe(Rule::expr).unwrap_or_default());
    }
    if cond_starts >= 2 {
        words.push(describe(Rule::cond).unwrap_or_default());
    }
    for rule in positives {
        if (value_starts >= 4 && starts_a_value(*rule))
            || (cond_starts >= 2 && starts_a_condition(*rule))
        {
            continue;
        }
        let Some(w) = describe(*rule) else { continue };
        // "ALLOW, DENY or IF" joins better with its neighbours as three words.
        let pieces: Vec<String> = if w.contains('(') || w.contains('{') {
            vec![w]
        } else {
            w.split(", ")
                .flat_map(|p| p.split(" or "))
                .map(str::to_owned)
                .collect()
        };
        for piece in pieces {
            if !words.contains(&piece) {
                words.push(piece);
            }
        }
    }
    if words.is_empty() {
        return if positives.iter().any(|r| is_operator(*r)) {
            "expected an operator".into()
        } else {
            "unexpected text".into()
        };
    }
    let list = match words.len() {
        1 => words[0].clone(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    };
    format!("expected {list}")
}

fn starts_a_value(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::k_topic
            | Rule::k_if
            | Rule::k_user
            | Rule::k_clientid
            | Rule::k_timestamp
            | Rule::k_empty
            | Rule::k_payload
            | Rule::k_get
            | Rule::k_random
            | Rule::k_replace
            | Rule::k_filter
            | Rule::k_trim
            | Rule::k_split
            | Rule::string
            | Rule::number
            | Rule::expr
            | Rule::operand
            | Rule::bound
            | Rule::paren
            | Rule::object
            | Rule::var
            | Rule::array
            | Rule::boolean
    )
}

fn starts_a_condition(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::k_user | Rule::k_clientid | Rule::k_ip | Rule::cond | Rule::cond_paren
    )
}

fn is_operator(rule: Rule) -> bool {
    format!("{rule:?}").starts_with("op_")
}

/// Plain words for a rule; None for operators (they are noise next to anything else).
pub(crate) fn describe(rule: Rule) -> Option<String> {
    let name = format!("{rule:?}");
    if let Some(kw) = name.strip_prefix("k_") {
        return Some(kw.to_ascii_uppercase());
    }
    if name.starts_with("op_") {
        return None;
    }
    let words = match rule {
        Rule::EOI => "the end of the line",
        Rule::def_name | Rule::ident | Rule::block_name => "a name",
        Rule::string | Rule::sq_string | Rule::str_inner | Rule::sq_inner => "a quoted string",
        Rule::number | Rule::signed_number => "a number",
        Rule::int_lit | Rule::signed_int => "a whole number",
        Rule::priority => "a priority number",
        Rule::var | Rule::var_name => "a {variable}",
        Rule::expr | Rule::operand | Rule::bound | Rule::paren | Rule::field_source => {
            "a value (a string, number, {variable}, PAYLOAD, GET TOPIC ...)"
        }
        Rule::object | Rule::obj_pair => "a JSON object such as {\"key\": value}",
        Rule::array => "a list such as [1, 2]",
        Rule::paren_end => ")",
        Rule::obj_end | Rule::var_end => "}",
        Rule::array_end => "]",
        Rule::boolean => "TRUE or FALSE",
        Rule::cond | Rule::cond_paren => "a condition such as USER IS \"name\"",
        Rule::c_user_is
        | Rule::c_user_has
        | Rule::c_user_in_group
        | Rule::c_clientid_topic
        | Rule::c_clientid_is
        | Rule::c_clientid_matches
        | Rule::c_ip_is
        | Rule::c_ip_in => "a condition such as USER IS \"name\"",
        Rule::flag => "a flag name",
        Rule::decision => "ALLOW or DENY",
        Rule::rule_topic => "TO TOPIC",
        Rule::stmt_line => {
            "a statement (SET, PUBLISH TOPIC, PUBLISH MODEL, KEEP TOPIC, IF, ELSE or CALL ACTION)"
        }
        Rule::action_tail => "RETURN, OUTPUT or DESCRIPTION",
        Rule::rule_def | Rule::model_head | Rule::action_head | Rule::route_def => "DEFINE",
        Rule::rule_if => "IF",
        Rule::rule_else_if | Rule::rule_else | Rule::inline_elif => "ELSE",
        Rule::rule_body => "ALLOW, DENY or IF",
        Rule::model_from => "FROM",
        Rule::model_topic => "TOPIC",
        Rule::model_qos | Rule::qos_word => "QOS0, QOS1 or QOS2",
        Rule::field_type => "a field type (STRING, INT, DOUBLE, BOOL, TIMESTAMP, OBJECT, ARRAY)",
        Rule::field_name => "a field name",
        Rule::bad_type => "a field type",
        Rule::topic_source => "TOPIC",
        Rule::as_trigger => "AS TRIGGER",
        Rule::field_line => "ADD",
        Rule::trigger => "a trigger such as ON TOPIC",
        Rule::t_topic => "TOPIC",
        Rule::t_change => "CHANGE",
        Rule::t_every | Rule::t_every_at => "EVERY",
        Rule::t_timestamp | Rule::timestamp => "TIMESTAMP",
        Rule::t_cron => "CRON",
        Rule::time_unit => "a time unit (SECONDS, MINUTES, HOURS, DAYS or WEEKS)",
        Rule::day_spec => "a day (MONDAY to SUNDAY, DAY, WEEKDAY or WEEKEND)",
        Rule::input_decl => "INPUT",
        Rule::input_type => "a type (STRING, INT, DOUBLE, BOOL or JSON)",
        Rule::value_type => "a type (STRING, INT, DOUBLE, BOOL, JSON or BYTES)",
        Rule::cast => "AS",
        Rule::description => "DESCRIPTION",
        Rule::output_decl => "OUTPUT",
        Rule::set_stmt => "SET",
        Rule::publish_topic | Rule::publish_model => "PUBLISH",
        Rule::keep_topic => "KEEP",
        Rule::if_open | Rule::else_if_open | Rule::else_open => "IF or ELSE",
        Rule::call_action => "CALL",
        Rule::call_arg | Rule::assign_line => "a field assignment such as name = value",
        Rule::route_type => "a route type such as MQTT_BRIDGE",
        Rule::route_block => "ADD",
        Rule::route_mapping => "MAPPING",
        Rule::route_event => "EVENT",
        Rule::route_config | Rule::config_name => "a block such as SOURCE_CONFIG",
        Rule::route_entry => "WITH",
        Rule::route_key => "a setting such as BROKER_ADDRESS",
        Rule::route_value | Rule::bare_word => {
            "a value (text, a number, TRUE/FALSE, GET ENV or GET SECRET)"
        }
        Rule::payload => "PAYLOAD",
        Rule::topic_position => "TOPIC POSITION",
        Rule::get_topic
        | Rule::get_topic_bare
        | Rule::get_json
        | Rule::get_env
        | Rule::get_secret => "GET",
        Rule::random | Rule::random_int | Rule::random_double | Rule::random_between => "RANDOM",
        Rule::replace => "REPLACE",
        Rule::filter => "FILTER",
        Rule::trim => "TRIM",
        Rule::split => "SPLIT",
        Rule::inline_if => "IF",
        Rule::scope => "a scope such as Publish or Subscribe",
        _ => "more text",
    };
    Some(words.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_name_leaks_into_words() {
        for rule in Rule::all_rules() {
            let name = format!("{rule:?}");
            if name.starts_with("k_") || !name.contains('_') {
                continue;
            }
            if let Some(w) = describe(*rule) {
                assert!(!w.contains(&name), "{name} leaks as {w}");
                let rule_like = w
                    .split_whitespace()
                    .any(|t| t.contains('_') && t.contains(char::is_lowercase));
                assert!(!rule_like, "{name} -> {w}");
            }
        }
    }

    #[test]
    fn then_and_scope_have_fixed_words() {
        assert_eq!(
            expected_message(&[Rule::op_and, Rule::k_then]),
            "expected THEN after the IF condition"
        );
        assert_eq!(
            expected_message(&[Rule::scope]),
            "expected a scope such as Publish or Subscribe"
        );
        assert_eq!(
            expected_message(&[Rule::k_allow, Rule::k_deny]),
            "expected ALLOW or DENY"
        );
    }
}
