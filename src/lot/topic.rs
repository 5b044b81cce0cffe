//! # lot::topic: MQTT topic name and filter validation for LOT's compile-time checks
//!
//! Thin wrappers over `protocol::topic` (pure, like this module) that phrase its errors for LOT
//! users. Rules from MQTT 3.1.1 §4.7 / MQTT 5 §4.7: topics are at least one character, at most
//! 65,535 bytes, contain no NUL; in a filter `#` is alone in the last level and `+` is alone in
//! its level; a topic name holds no wildcard.

use crate::protocol::topic::{TopicLimits, validate_topic_filter, validate_topic_name};

/// Checks an MQTT topic filter (`a/+/c`, `a/#`) with the broker's own validator, so LOT accepts
/// exactly the filters the hub accepts.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    validate_topic_filter(filter, &TopicLimits::default())
        .map_err(|e| format!("invalid topic filter \"{filter}\": {e}"))
}

/// Checks an MQTT topic name (no wildcards) with the broker's own validator.
pub(crate) fn check_name(topic: &str) -> Result<(), String> {
    validate_topic_name(topic, &TopicLimits::default())
        .map_err(|e| format!("invalid topic \"{topic}\": {e}"))
}

/// The wildcard levels of a filter, in order (`'+'` or `'#'`).
pub(crate) fn wildcards(filter: &str) -> Vec<char> {
    filter
        .split('/')
        .filter_map(|l| match l {
            "+" => Some('+'),
            "#" => Some('#'),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in ["#", "a/#", "+", "a/+/c", "/", "a//b", "$SYS/#"] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "#/a", "a\0b"] {
            assert!(check_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("a/b").is_ok());
        assert!(check_name("a/+").is_err());
        assert!(check_name("a/#").is_err());
    }

    #[test]
    fn wildcard_order() {
        assert_eq!(wildcards("a/+/b/#"), vec!['+', '#']);
        assert!(wildcards("a/b").is_empty());
    }
}
