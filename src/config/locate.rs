//! Turning a `toml` deserialization error into a [`ConfigError`] that names the key.
//!
//! `toml` reports where an error is as a byte span of the source, not as a key path. We parse the
//! same text a second time into a [`Tree`] that keeps the span of every key and value, and look the
//! error's span up in it: the deepest value containing the span gives the dotted path
//! (`listeners[1].kind`), and a span that falls on a key marks that key as the culprit (unknown
//! keys). This works for `[section]` headers, `[[array]]` tables, dotted keys and inline tables
//! alike, since it only relies on the parser's spans.

use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ConfigError;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A key path such as `listeners[1].kind`.
#[derive(Debug, Clone, Default, PartialEq)]
struct KeyPath(Vec<Segment>);

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl KeyPath {
    fn child(&self, seg: Segment) -> KeyPath {
        let mut p = self.clone();
        p.0.push(seg);
        p
    }

    /// Where an unknown key sits, for the error message.
    fn location(&self) -> String {
        match self.0.as_slice() {
            [] => "at top level".to_string(),
            [Segment::Key(section)] => format!("in [{section}]"),
            _ => format!("in {self}"),
        }
    }
}

/// The shape of a TOML document with the span of every key and value where the parser knows it
/// (keys and tables created implicitly by dotted keys have none).
#[derive(Debug)]
enum Tree {
    Leaf,
    Table(Vec<(Node<String>, Node<Tree>)>),
    Array(Vec<Node<Tree>>),
}

/// A value with its byte span, when known.
#[derive(Debug)]
struct Node<T> {
    span: Option<Range<usize>>,
    value: T,
}

// `toml` hands out spans through `serde_spanned`'s protocol: asked for a struct with these names,
// its deserializer answers with a map of start, end and value. `toml::Spanned` itself fails when a
// span is missing (dotted keys), so we speak the protocol directly and accept both answers.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

impl<'de> Deserialize<'de> for Node<Tree> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Node<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

/// Reads the rest of a span map once its first key (`SPANNED_START`) has been seen.
fn finish_spanned<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    mut map: A,
) -> Result<Node<T>, A::Error> {
    let start: usize = map.next_value()?;
    let mut end = start;
    let mut value = None;
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            SPANNED_END => end = map.next_value()?,
            SPANNED_VALUE => value = Some(map.next_value::<T>()?),
            _ => return Err(serde::de::Error::custom("unexpected key in a span")),
        }
    }
    let value = value.ok_or_else(|| serde::de::Error::custom("span without a value"))?;
    Ok(Node {
        span: Some(start..end),
        value,
    })
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Node<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<String>, E> {
        Ok(Node {
            span: None,
            value: v.to_string(),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<String>, A::Error> {
        match map.next_key::<String>()?.as_deref() {
            Some(SPANNED_START) => finish_spanned(map),
            _ => Err(serde::de::Error::custom("expected a key")),
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<Tree>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node<Tree>, E> {
        Ok(unspanned(Tree::Leaf))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node<Tree>, E> {
        Ok(unspanned(Tree::Leaf))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node<Tree>, E> {
        Ok(unspanned(Tree::Leaf))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node<Tree>, E> {
        Ok(unspanned(Tree::Leaf))
    }
    fn visit_str<E>(self, _: &str) -> Result<Node<Tree>, E> {
        Ok(unspanned(Tree::Leaf))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node<Tree>, A::Error> {
        TreeVisitor.visit_seq(seq).map(unspanned)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<Tree>, A::Error> {
        // Either the span protocol's map, or (no span known) the table itself.
        let Some(first) = map.next_key::<Node<String>>()? else {
            return Ok(unspanned(Tree::Table(Vec::new())));
        };
        if first.span.is_none() && first.value == SPANNED_START {
            return finish_spanned(map);
        }
        let value = map.next_value::<Node<Tree>>()?;
        let mut entries = vec![(first, value)];
        read_entries(&mut map, &mut entries)?;
        Ok(unspanned(Tree::Table(entries)))
    }
}

fn unspanned(value: Tree) -> Node<Tree> {
    Node { span: None, value }
}

fn read_entries<'de, A: MapAccess<'de>>(
    map: &mut A,
    entries: &mut Vec<(Node<String>, Node<Tree>)>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<Node<String>>()? {
        let value = map.next_value::<Node<Tree>>()?;
        entries.push((key, value));
    }
    Ok(())
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
        Ok(Tree::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        read_entries(&mut map, &mut entries)?;
        Ok(Tree::Table(entries))
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// What the error span points at.
enum Hit {
    /// A key: its path (including the key) and its parent's path.
    Key { parent: KeyPath, key: String },
    /// A value at this path.
    Value(KeyPath),
}

/// Finds what the error `span` points at. `quoted` is the error message's first `"..."` part, used
/// to pick the array element the message is about (`toml` reports element errors on the array).
fn find(tree: &Tree, path: KeyPath, span: &Range<usize>, text: &str, quoted: Option<&str>) -> Hit {
    let within =
        |node_span: &Option<Range<usize>>| node_span.as_ref().is_some_and(|s| contains(s, span));
    match tree {
        Tree::Leaf => Hit::Value(path),
        Tree::Table(entries) => {
            for (key, _) in entries {
                if within(&key.span) {
                    return Hit::Key {
                        parent: path,
                        key: key.value.clone(),
                    };
                }
            }
            for (key, value) in entries {
                let child = path.child(Segment::Key(key.value.clone()));
                // A table made by dotted keys has no span of its own: look inside it anyway.
                if within(&value.span) || value.span.is_none() {
                    let hit = find(&value.value, child, span, text, quoted);
                    let found_inside = !matches!(&hit, Hit::Value(p) if p.0.len() == path.0.len() + 1)
                        || within(&value.span);
                    if found_inside {
                        return hit;
                    }
                }
            }
            Hit::Value(path)
        }
        Tree::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if within(&item.span) {
                    return find(
                        &item.value,
                        path.child(Segment::Index(i)),
                        span,
                        text,
                        quoted,
                    );
                }
            }
            let element = items.iter().position(|item| {
                let source = item.span.as_ref().and_then(|s| text.get(s.clone()));
                let unquoted = source.map(|s| s.trim_matches(|c| c == '"' || c == '\''));
                quoted.is_some() && unquoted == quoted
            });
            match element {
                Some(i) => Hit::Value(path.child(Segment::Index(i))),
                None => Hit::Value(path),
            }
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Checks that `text` is TOML at all; a syntax error names the line and column.
pub(super) fn check_syntax(text: &str) -> Result<(), ConfigError> {
    text.parse::<toml::Table>()
        .map(|_| ())
        .map_err(|e| syntax_error(text, &e))
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
    ConfigError::Syntax {
        line,
        column,
        message: e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Rewrites serde's type names into words an operator understands.
fn humanize(message: &str) -> String {
    let message = message
        .replace("expected u8", "expected a whole number from 0 to 255")
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected u64", "expected a whole number, 0 or more")
        .replace("expected usize", "expected a whole number, 0 or more")
        .replace("a boolean", "true or false");
    let mut message = message.replace('`', "");
    // "expected struct Limits" -> "expected a table"
    if let Some(at) = message.find("expected struct ") {
        message.replace_range(at.., "expected a table");
    }
    message
}

/// Maps an error from deserializing the (syntactically valid) `text` to a [`ConfigError`].
pub(super) fn map_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim();
    let (Ok(tree), Some(span)) = (toml::from_str::<Tree>(text), e.span()) else {
        return ConfigError::invalid("(config)", humanize(message));
    };
    // serde: "unknown field `limts`, expected one of `a`, `b`" (or "expected `a` or `b`").
    let unknown = message.strip_prefix("unknown field `").and_then(|rest| {
        let (key, rest) = rest.split_once('`')?;
        let expected = rest
            .strip_prefix(", expected ")
            .map(|e| e.trim_start_matches("one of ").replace('`', ""))
            .unwrap_or_default();
        Some((key.to_string(), expected))
    });
    let quoted = message.split('"').nth(1);
    match find(&tree, KeyPath::default(), &span, text, quoted) {
        Hit::Key { parent, key } => match unknown {
            Some((_, expected)) => ConfigError::UnknownKey {
                key,
                location: parent.location(),
                expected,
            },
            None => {
                let path = parent.child(Segment::Key(key));
                ConfigError::invalid(path.to_string(), humanize(message))
            }
        },
        Hit::Value(path) => {
            // A key without a span of its own (dotted keys): the error lands on its table.
            if let Some((key, expected)) = unknown {
                return ConfigError::UnknownKey {
                    key,
                    location: path.location(),
                    expected,
                };
            }
            // serde: "missing field `bind`", reported on the enclosing table.
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                let path = path.child(Segment::Key(field.to_string()));
                return ConfigError::invalid(path.to_string(), "required key is missing");
            }
            let key = if path.0.is_empty() {
                "(top level)".to_string()
            } else {
                path.to_string()
            };
            ConfigError::invalid(key, humanize(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a = 1\nbb = x", 0), (1, 1));
        assert_eq!(line_col("a = 1\nbb = x", 11), (2, 6));
    }

    #[test]
    fn path_display() {
        let p = KeyPath::default()
            .child(Segment::Key("listeners".into()))
            .child(Segment::Index(1))
            .child(Segment::Key("kind".into()));
        assert_eq!(p.to_string(), "listeners[1].kind");
        assert_eq!(p.location(), "in listeners[1].kind");
        assert_eq!(KeyPath::default().location(), "at top level");
        let section = KeyPath::default().child(Segment::Key("limits".into()));
        assert_eq!(section.location(), "in [limits]");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = check_syntax("a = 1\nb = = 2\n").unwrap_err();
        match err {
            ConfigError::Syntax { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column >= 4, "column {column}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn humanize_rewrites_type_names() {
        assert_eq!(
            humanize("invalid value: integer `70000`, expected u16"),
            "invalid value: integer 70000, expected a whole number from 0 to 65535"
        );
        assert_eq!(
            humanize("invalid type: integer `5`, expected struct Limits"),
            "invalid type: integer 5, expected a table"
        );
        assert_eq!(
            humanize("invalid type: string \"yes\", expected a boolean"),
            "invalid type: string \"yes\", expected true or false"
        );
    }
}
