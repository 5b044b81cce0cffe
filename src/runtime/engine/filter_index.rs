//! [`FilterIndex`]: MQTT topic filters -> values, matched against a topic name in one walk.
//!
//! The engine's publish-path question is "which deployed triggers (or readable topics) does this
//! topic hit?". Testing every filter costs O(filters) per PUBLISH; this tree costs one hash lookup
//! per topic level on the branches that can match (the exact level, `+`, `#`), so a topic whose
//! first level no deployed filter names is dismissed with a single lookup, however many
//! definitions are deployed. Built once per deployment, read-only afterwards.
//!
//! Matching follows MQTT 3.1.1 §4.7 / MQTT 5 §4.7: `+` is one level, `#` the rest including the
//! parent level (`a/#` matches `a`), and a filter starting with a wildcard never matches a topic
//! starting with `$` (§4.7.2). Must not touch: anything but strings.

use ahash::AHashMap;

/// Topic filters, each with the values stored under it.
#[derive(Debug)]
pub(crate) struct FilterIndex<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug)]
struct Node<T> {
    children: AHashMap<Box<str>, Node<T>>,
    plus: Option<Box<Node<T>>>,
    /// Values of filters ending in `#` at this node.
    hash: Vec<T>,
    /// Values of filters ending exactly at this node.
    here: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: AHashMap::new(),
            plus: None,
            hash: Vec::new(),
            here: Vec::new(),
        }
    }
}

impl<T> Default for FilterIndex<T> {
    fn default() -> Self {
        FilterIndex {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T> FilterIndex<T> {
    /// Stores `value` under `filter` (a filter already validated by the LOT compiler).
    pub fn insert(&mut self, filter: &str, value: T) {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            match level {
                "#" => {
                    node.hash.push(value);
                    self.len += 1;
                    return;
                }
                "+" => node = node.plus.get_or_insert_with(Box::default),
                l => node = node.children.entry(l.into()).or_default(),
            }
        }
        node.here.push(value);
        self.len += 1;
    }

    /// How many (filter, value) pairs are stored.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` with every value whose filter matches `topic`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&T)) {
        if self.len == 0 {
            return;
        }
        walk(&self.root, topic.split('/'), topic.starts_with('$'), &mut f);
    }

    /// Whether any filter matches `topic`.
    #[cfg(test)]
    pub fn any_match(&self, topic: &str) -> bool {
        let mut hit = false;
        self.for_each_match(topic, |_| hit = true);
        hit
    }
}

/// `node` stands for the levels consumed so far; `dollar_root` is true only at the root of a
/// `$...` topic, where wildcards must not match (§4.7.2).
fn walk<'t, T>(
    node: &Node<T>,
    mut levels: std::str::Split<'t, char>,
    dollar_root: bool,
    f: &mut impl FnMut(&T),
) {
    if !dollar_root {
        node.hash.iter().for_each(&mut *f);
    }
    match levels.next() {
        None => node.here.iter().for_each(f),
        Some(level) => {
            if let Some(child) = node.children.get(level) {
                walk(child, levels.clone(), false, f);
            }
            if let (false, Some(plus)) = (dollar_root, &node.plus) {
                walk(plus, levels, false, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(filters: &[&str], topic: &str) -> Vec<usize> {
        let mut idx = FilterIndex::default();
        for (i, f) in filters.iter().enumerate() {
            idx.insert(f, i);
        }
        let mut out = Vec::new();
        idx.for_each_match(topic, |i| out.push(*i));
        out.sort_unstable();
        out
    }

    #[test]
    fn agrees_with_the_reference_matcher() {
        let filters = [
            "a/b", "a/+", "a/#", "#", "+/+", "+", "$SYS/#", "a/b/c", "+/b/+", "a//c", "a/+/#",
        ];
        let topics = [
            "a", "a/b", "a/b/c", "a/c", "$SYS", "$SYS/x", "x", "x/b/y", "a//c", "/", "",
        ];
        for t in topics {
            let expected: Vec<usize> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| crate::lot::eval::topic::matches(f, t))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(matches(&filters, t), expected, "topic {t:?}");
        }
    }

    #[test]
    fn empty_and_non_matching() {
        let idx: FilterIndex<u8> = FilterIndex::default();
        assert!(!idx.any_match("a/b"));
        let mut idx = FilterIndex::default();
        idx.insert("sensors/+/temp", 1u8);
        assert_eq!(idx.len(), 1);
        assert!(idx.any_match("sensors/k/temp"));
        assert!(!idx.any_match("bench/0/1"));
        assert!(!idx.any_match("sensors/k/temp/x"));
    }
}
