//! Topic remapping of a route MAPPING (spec §6): the parts a topic matched with `+` and `#` in
//! the from-filter replace the `+` and `#` of the to-pattern, in order. `factory/#` to
//! `sites/a/factory/#` maps `factory/l1/t` to `sites/a/factory/l1/t`. Pure; no I/O.

/// One direction of one mapping: topics matching `from` are published on `to` (filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMap {
    from: String,
    to: String,
}

impl TopicMap {
    /// `from` is a valid topic filter and `to` has as many `+`/`#` as `from` (the LOT checker
    /// guarantees both).
    pub fn new(from: &str, to: &str) -> TopicMap {
        TopicMap {
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// The filter topics are matched against (what a route subscribes to on that side).
    pub fn filter(&self) -> &str {
        &self.from
    }

    /// The destination topic for `topic`, or `None` when `topic` does not match the filter.
    pub fn map(&self, topic: &str) -> Option<String> {
        let captures = capture(&self.from, topic)?;
        let mut captures = captures.into_iter();
        let mut out: Vec<&str> = Vec::new();
        let mut owned = String::new();
        for level in self.to.split('/') {
            match level {
                "+" => out.push(captures.next()?),
                "#" => {
                    let rest = captures.next()?;
                    if rest.is_empty() {
                        // `a/#` matched `a` itself (§4.7.1.2): the destination ends at its parent.
                        owned = out.join("/");
                        return Some(owned);
                    }
                    out.push(rest);
                }
                other => out.push(other),
            }
        }
        owned.push_str(&out.join("/"));
        Some(owned)
    }
}

/// What `+` and `#` of `filter` matched in `topic`, in order (`#` takes the rest, possibly
/// empty). `None` when the topic does not match; `$` topics never match a leading wildcard.
fn capture<'t>(filter: &str, topic: &'t str) -> Option<Vec<&'t str>> {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return None;
    }
    let mut caps = Vec::new();
    let mut rest = Some(topic);
    for f in filter.split('/') {
        if f == "#" {
            caps.push(rest.unwrap_or(""));
            return Some(caps);
        }
        let r = rest?;
        let (level, tail) = match r.split_once('/') {
            Some((l, t)) => (l, Some(t)),
            None => (r, None),
        };
        if f == "+" {
            caps.push(level);
        } else if f != level {
            return None;
        }
        rest = tail;
    }
    rest.is_none().then_some(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_carries_the_rest() {
        let m = TopicMap::new("factory/#", "sites/a/factory/#");
        assert_eq!(
            m.map("factory/l1/t").as_deref(),
            Some("sites/a/factory/l1/t")
        );
        assert_eq!(m.map("factory").as_deref(), Some("sites/a/factory"));
        assert_eq!(m.map("other/l1"), None);
    }

    #[test]
    fn plus_and_hash_fill_in_order() {
        let m = TopicMap::new("commands/+/#", "sites/p/commands/+/#");
        assert_eq!(
            m.map("commands/m7/stop/now").as_deref(),
            Some("sites/p/commands/m7/stop/now")
        );
        let swap = TopicMap::new("a/+/b/+", "x/+/y/+");
        assert_eq!(swap.map("a/1/b/2").as_deref(), Some("x/1/y/2"));
        assert_eq!(swap.map("a/1/b"), None);
        assert_eq!(swap.map("a/1/b/2/3"), None);
    }

    #[test]
    fn exact_topics_and_sys() {
        let m = TopicMap::new("line/1/temp", "plant/line1/temp");
        assert_eq!(m.map("line/1/temp").as_deref(), Some("plant/line1/temp"));
        assert_eq!(m.map("line/1/temp/x"), None);
        let all = TopicMap::new("#", "edge/#");
        assert_eq!(all.map("$SYS/x"), None);
        assert_eq!(all.map("a/b").as_deref(), Some("edge/a/b"));
    }
}
