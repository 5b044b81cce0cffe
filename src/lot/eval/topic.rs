//! # lot::eval::topic: topic levels, filter matching and wildcard inheritance
//!
//! Two ways a `+` in a topic an action or model names is filled from the triggering topic:
//! - actions (spec §8): positionally, a `+` at level k takes level k of the triggering topic;
//! - models (spec §3): in order, the i-th `+` takes the level the trigger filter's i-th `+`
//!   matched (so `sensors/+/temp` can feed a model published on `plant/+/summary`).
//!
//! Allocation-free unless a `+` actually has to be filled.

use std::borrow::Cow;

use super::EvalError;

/// Level `n` (1-based) of `topic`.
pub fn level(topic: &str, n: u32) -> Option<&str> {
    let n = usize::try_from(n).ok()?.checked_sub(1)?;
    topic.split('/').nth(n)
}

/// MQTT topic-filter matching (MQTT 3.1.1 §4.7, MQTT 5 §4.7): `+` one level, `#` the rest
/// (including the parent level itself), and a filter starting with a wildcard does not match a
/// topic starting with `$` (§4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    crate::protocol::topic::matches(filter, topic)
}

/// As [`matches`], calling `capture` with the index (0-based) of each topic level matched by a `+`.
pub fn captures(filter: &str, topic: &str, mut capture: impl FnMut(usize)) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut t = topic.split('/');
    for (i, f) in filter.split('/').enumerate() {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => capture(i),
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// Spec §8: each `+` level of `topic` takes the same level of `trigger`.
pub fn fill_positional<'t>(
    topic: Cow<'t, str>,
    trigger: Option<&str>,
) -> Result<Cow<'t, str>, EvalError> {
    if !topic.split('/').any(|l| l == "+") {
        return Ok(topic);
    }
    let missing = || EvalError::UnfilledWildcard(topic.to_string());
    let trigger = trigger.ok_or_else(missing)?;
    let mut trig = trigger.split('/');
    let mut out = String::with_capacity(topic.len() + trigger.len());
    for (i, l) in topic.split('/').enumerate() {
        let t = trig.next();
        if i > 0 {
            out.push('/');
        }
        if l == "+" {
            out.push_str(t.ok_or_else(missing)?);
        } else {
            out.push_str(l);
        }
    }
    Ok(Cow::Owned(out))
}

/// Spec §3: the i-th `+` of `topic` takes level `captured[i]` of `trigger`.
pub fn fill_in_order<'t>(
    topic: &'t str,
    trigger: Option<&str>,
    captured: &[usize],
) -> Result<Cow<'t, str>, EvalError> {
    if !topic.split('/').any(|l| l == "+") {
        return Ok(Cow::Borrowed(topic));
    }
    let missing = || EvalError::UnfilledWildcard(topic.to_string());
    let trigger = trigger.ok_or_else(missing)?;
    let mut next = captured.iter();
    let mut out = String::with_capacity(topic.len() + trigger.len());
    for (i, l) in topic.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if l == "+" {
            let k = *next.next().ok_or_else(missing)?;
            out.push_str(trigger.split('/').nth(k).ok_or_else(missing)?);
        } else {
            out.push_str(l);
        }
    }
    Ok(Cow::Owned(out))
}

/// A topic an action publishes to, keeps or reads must be a topic name: not empty, no wildcard
/// characters (MQTT 3.1.1 §4.7.3 / MQTT 5 §4.7.3), no NUL.
pub fn check_name(topic: &str) -> Result<(), EvalError> {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(EvalError::InvalidTopic(topic.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_one_based() {
        assert_eq!(level("a/b/c", 1), Some("a"));
        assert_eq!(level("a/b/c", 3), Some("c"));
        assert_eq!(level("a/b/c", 4), None);
        assert_eq!(level("a/b/c", 0), None);
        assert_eq!(level("a//c", 2), Some(""));
    }

    #[test]
    fn filter_matching() {
        for (f, t, m) in [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/+", "a/b", true),
            ("+", "$SYS", false),
            ("#", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/b", "a/c", false),
            ("a/b/c", "a/b", false),
        ] {
            assert_eq!(matches(f, t), m, "{f} vs {t}");
        }
        let mut got = Vec::new();
        assert!(captures("s/+/x/+", "s/dev1/x/t", |i| got.push(i)));
        assert_eq!(got, vec![1, 3]);
    }

    #[test]
    fn positional_inheritance() {
        let t = |topic: &str, trig: Option<&str>| {
            fill_positional(Cow::Borrowed(topic), trig).map(|c| c.into_owned())
        };
        assert_eq!(
            t("sensors/+/limit", Some("sensors/m7/temp")).unwrap(),
            "sensors/m7/limit"
        );
        assert_eq!(t("a/+/+", Some("x/y/z")).unwrap(), "a/y/z");
        assert_eq!(t("plain/topic", None).unwrap(), "plain/topic");
        assert!(matches!(
            t("a/+", None),
            Err(EvalError::UnfilledWildcard(_))
        ));
        assert!(matches!(
            t("a/b/+", Some("x/y")),
            Err(EvalError::UnfilledWildcard(_))
        ));
    }

    #[test]
    fn in_order_inheritance() {
        assert_eq!(
            fill_in_order("plant/+/summary", Some("sensors/m7/temp"), &[1]).unwrap(),
            "plant/m7/summary"
        );
        assert_eq!(
            fill_in_order("x/+/+", Some("a/b/c/d"), &[1, 3]).unwrap(),
            "x/b/d"
        );
        assert!(fill_in_order("x/+/+", Some("a/b"), &[1]).is_err());
    }

    #[test]
    fn topic_names() {
        assert!(check_name("a/b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/+").is_err());
        assert!(check_name("a/#").is_err());
    }
}
