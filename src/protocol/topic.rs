//! Topic names, topic filters and the MQTT matching rule (MQTT 5 §4.7, 3.1.1 §4.7).
//!
//! Pure functions only: the broker's subscription trie and its ACL checks build on these, the
//! codec uses [`validate_topic_name`]-style checks on PUBLISH. Nothing here allocates or recurses:
//! matching walks both strings level by level, so a 200-level topic costs 200 steps, no stack.
//!
//! Start reading at [`matches`].

use thiserror::Error;

/// Bounds on a topic name or filter. The spec bound is 65,535 bytes (a UTF-8 string length is a
/// u16, §1.5.4); the level bound is ours, against pathological filters (see broker.md Pitfalls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// Maximum length in bytes.
    pub max_len: usize,
    /// Maximum number of levels (`a/b/c` has 3).
    pub max_levels: usize,
}

impl Default for TopicLimits {
    fn default() -> Self {
        TopicLimits {
            max_len: 65_535,
            max_levels: 200,
        }
    }
}

/// Why a topic name or filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    #[error("topic is empty (MQTT §4.7.3: at least one character)")]
    Empty,
    #[error("topic is {len} bytes long, the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("topic has {levels} levels, the limit is {max}")]
    TooManyLevels { levels: usize, max: usize },
    #[error("topic contains the null character U+0000 (MQTT §1.5.4)")]
    NullChar,
    #[error("wildcards '+' and '#' are not allowed in a topic name (MQTT §4.7.1)")]
    WildcardInName,
    #[error("'+' must occupy a whole topic level (MQTT §4.7.1.3)")]
    BadSingleLevelWildcard,
    #[error("'#' must be the whole last topic level (MQTT §4.7.1.2)")]
    BadMultiLevelWildcard,
    #[error(
        "shared subscription must be $share/<group>/<filter> with a non-empty group without '+', '#' or '/' (MQTT 5 §4.8.2)"
    )]
    BadSharedSubscription,
}

/// The prefix of a shared subscription filter (MQTT 5 §4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Checks the length, level and NUL rules common to names and filters.
fn check_common(topic: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > limits.max_len {
        return Err(TopicError::TooLong {
            len: topic.len(),
            max: limits.max_len,
        });
    }
    if topic.as_bytes().contains(&0) {
        return Err(TopicError::NullChar);
    }
    // Counting separators is enough: a topic with n slashes has n + 1 levels.
    let levels = topic.bytes().filter(|&b| b == b'/').count() + 1;
    if levels > limits.max_levels {
        return Err(TopicError::TooManyLevels {
            levels,
            max: limits.max_levels,
        });
    }
    Ok(())
}

/// Validates a topic name as carried by PUBLISH or a will: non-empty, no wildcard, no NUL, bounded.
pub fn validate_topic_name(topic: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    check_common(topic, limits)?;
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Validates a topic filter as carried by SUBSCRIBE/UNSUBSCRIBE, including `$share/<group>/<f>`.
pub fn validate_topic_filter(filter: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if filter.starts_with(SHARE_PREFIX) {
        let (_, inner) = parse_shared(filter).ok_or(TopicError::BadSharedSubscription)?;
        check_common(filter, limits)?;
        return validate_plain_filter(inner, limits);
    }
    validate_plain_filter(filter, limits)
}

fn validate_plain_filter(filter: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    check_common(filter, limits)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('+') && level != "+" {
            return Err(TopicError::BadSingleLevelWildcard);
        }
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::BadMultiLevelWildcard);
        }
    }
    Ok(())
}

/// Splits `$share/<group>/<filter>` into `(group, filter)`. Returns `None` when `filter` is not a
/// shared subscription or its group is empty or holds `+`, `#` (the `/` ends the group), or when
/// nothing follows the group.
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return None;
    }
    Some((group, inner))
}

/// True when topic name `topic` matches topic filter `filter` (MQTT §4.7).
///
/// `#` matches any number of levels including zero, so `sport/#` matches `sport`. A filter whose
/// first level is a wildcard never matches a topic starting with `$` (§4.7.2). Assumes both
/// arguments are valid; an invalid filter simply matches what its literal reading would match.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f_levels = filter.split('/');
    let mut t_levels = topic.split('/');
    loop {
        match (f_levels.next(), t_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            // `sport/#` against `sport`: the filter has exactly one level left and it is `#`.
            (Some(_), Some(_)) | (None, Some(_)) => return false,
            (Some(f), None) => return f == "#" && f_levels.next().is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_table() {
        let l = TopicLimits::default();
        let cases: &[(&str, Result<(), TopicError>)] = &[
            ("a", Ok(())),
            ("a/b/c", Ok(())),
            ("/", Ok(())),
            ("/a/", Ok(())),
            ("$SYS/broker", Ok(())),
            ("sport/tennis player1", Ok(())),
            ("", Err(TopicError::Empty)),
            ("a/+", Err(TopicError::WildcardInName)),
            ("a/#", Err(TopicError::WildcardInName)),
            ("a+b", Err(TopicError::WildcardInName)),
            ("a\0b", Err(TopicError::NullChar)),
        ];
        for (topic, want) in cases {
            assert_eq!(&validate_topic_name(topic, &l), want, "topic {topic:?}");
        }
    }

    #[test]
    fn topic_filter_table() {
        let l = TopicLimits::default();
        let cases: &[(&str, Result<(), TopicError>)] = &[
            ("#", Ok(())),
            ("+", Ok(())),
            ("a/+/c", Ok(())),
            ("a/#", Ok(())),
            ("+/+", Ok(())),
            ("/+", Ok(())),
            ("+/tennis/#", Ok(())),
            ("$share/g/a/+", Ok(())),
            ("$share/g/#", Ok(())),
            ("", Err(TopicError::Empty)),
            ("a/#/c", Err(TopicError::BadMultiLevelWildcard)),
            ("a#", Err(TopicError::BadMultiLevelWildcard)),
            ("a/b#", Err(TopicError::BadMultiLevelWildcard)),
            ("a+", Err(TopicError::BadSingleLevelWildcard)),
            ("a/+b/c", Err(TopicError::BadSingleLevelWildcard)),
            ("a\0", Err(TopicError::NullChar)),
            ("$share//a", Err(TopicError::BadSharedSubscription)),
            ("$share/g+/a", Err(TopicError::BadSharedSubscription)),
            ("$share/g#/a", Err(TopicError::BadSharedSubscription)),
            ("$share/g", Err(TopicError::BadSharedSubscription)),
            ("$share/g/", Err(TopicError::BadSharedSubscription)),
            ("$share/g/a#", Err(TopicError::BadMultiLevelWildcard)),
        ];
        for (filter, want) in cases {
            assert_eq!(
                &validate_topic_filter(filter, &l),
                want,
                "filter {filter:?}"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let l = TopicLimits {
            max_len: 5,
            max_levels: 3,
        };
        assert_eq!(validate_topic_name("abcde", &l), Ok(()));
        assert_eq!(
            validate_topic_name("abcdef", &l),
            Err(TopicError::TooLong { len: 6, max: 5 })
        );
        assert_eq!(validate_topic_filter("a/b/c", &l), Ok(()));
        assert_eq!(
            validate_topic_filter("a/b/c/", &l),
            Err(TopicError::TooLong { len: 6, max: 5 })
        );
        assert_eq!(
            validate_topic_name(
                "a/b/c/",
                &TopicLimits {
                    max_len: 100,
                    max_levels: 3
                }
            ),
            Err(TopicError::TooManyLevels { levels: 4, max: 3 })
        );
        let deep = "a/".repeat(200) + "a";
        assert_eq!(
            validate_topic_name(&deep, &TopicLimits::default()),
            Err(TopicError::TooManyLevels {
                levels: 201,
                max: 200
            })
        );
        let big = "a".repeat(65_536);
        assert!(matches!(
            validate_topic_name(&big, &TopicLimits::default()),
            Err(TopicError::TooLong { .. })
        ));
    }

    #[test]
    fn parse_shared_table() {
        assert_eq!(parse_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(parse_shared("$share/group1/#"), Some(("group1", "#")));
        assert_eq!(parse_shared("a/b"), None);
        assert_eq!(parse_shared("$share/"), None);
        assert_eq!(parse_shared("$share//a"), None);
        assert_eq!(parse_shared("$share/g"), None);
        assert_eq!(parse_shared("$share/g/"), None);
        assert_eq!(parse_shared("$share/+/a"), None);
        assert_eq!(parse_shared("$sharex/g/a"), None);
    }

    #[test]
    fn matching_table() {
        // (filter, topic, expected): examples from MQTT 5 §4.7.1 and §4.7.2.
        let cases: &[(&str, &str, bool)] = &[
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/#", "sport", true),
            ("sport/#", "sports", false),
            ("#", "sport/tennis", true),
            ("#", "/", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("+", "a", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("a//b", "a//b", true),
            ("a/+/b", "a//b", true),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("#", "$SYS/broker", false),
            ("$SYS/#", "$SYS/broker", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("a/#", "a/b/c/d", true),
            ("a/+/#", "a", false),
            ("a/+/#", "a/b", true),
        ];
        for (filter, topic, want) in cases {
            assert_eq!(matches(filter, topic), *want, "{filter:?} vs {topic:?}");
        }
    }

    #[test]
    fn matching_deep_topics_does_not_recurse() {
        let topic = "a/".repeat(100_000) + "a";
        let filter = "+/".repeat(100_000) + "#";
        assert!(matches(&filter, &topic));
        assert!(matches("#", &topic));
        assert!(!matches("b/#", &topic));
    }
}
