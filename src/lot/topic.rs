//! # lot::topic: MQTT topic name and filter validation for LOT's compile-time checks
//!
//! A small private validator (the protocol module's own lives elsewhere and must not be a
//! dependency of this pure module's checks). Rules from MQTT 3.1.1 §4.7 / MQTT 5 §4.7:
//! topics are at least one character, at most 65,535 bytes, contain no NUL; in a filter `#` is
//! alone in the last level and `+` is alone in its level; a topic name holds no wildcard.

const MAX_LEN: usize = 65_535;

fn common(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("a topic cannot be empty".into());
    }
    if topic.len() > MAX_LEN {
        return Err("a topic is limited to 65535 bytes".into());
    }
    if topic.contains('\0') {
        return Err("a topic cannot contain the NUL character".into());
    }
    Ok(())
}

/// Checks an MQTT topic filter (`a/+/c`, `a/#`).
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!(
                "invalid topic filter \"{filter}\": # must be a whole level and the last one"
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!(
                "invalid topic filter \"{filter}\": + must be a whole level"
            ));
        }
    }
    Ok(())
}

/// Checks an MQTT topic name (no wildcards).
pub(crate) fn check_name(topic: &str) -> Result<(), String> {
    common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(format!(
            "invalid topic \"{topic}\": wildcards (+ and #) are not allowed here"
        ));
    }
    Ok(())
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
