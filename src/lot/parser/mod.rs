//! # lot::parser: LOT text -> AST, one `parse_xxx(pair)` per grammar rule
//!
//! Owns the pest parser for `grammar/lot.pest` and the conversion of its pairs into
//! [`crate::lot::ast`] types, plus the translation of pest errors into plain words.
//!
//! Indentation: pest has no INDENT tokens. [`crate::lot::source`] first blanks comments and cuts
//! the text into definitions and logical lines. Then each kind is parsed by the piece:
//! - RULE and ROUTE: the whole definition is one slice (`rule_def`, `route_def`); their structure
//!   is linear, so line breaks are ordinary whitespace;
//! - MODEL: the header slice (`model_head`), then each `ADD` line (`field_line`); nested `ADD`
//!   lines under an `ADD ARRAY` are found by indentation ([`block`]);
//! - ACTION: the header up to `DO` (`action_head`), each body line (`stmt_line`), the blocks of
//!   IF / ELSE / PUBLISH MODEL by indentation, then the RETURN / DESCRIPTION tail (`action_tail`).
//!
//! Every slice is parsed from the comment-blanked text at its true offset, so spans are positions
//! in the original text. Must not touch: evaluation, name resolution across definitions
//! ([`crate::lot::check`] does that). Start reading at [`parse_definition`].

mod action;
mod block;
mod expr;
mod messages;
mod model;
mod route;
mod route_keys;
mod rule;

use pest::Parser;

use super::ast::{DefinitionAst, Kind, Span, Spanned};
use super::error::LotError;
use super::source::{DefLines, Source};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/lot.pest"]
pub(crate) struct LotParser;

pub(crate) type Pair<'i> = pest::iterators::Pair<'i, Rule>;

/// Parsing context: the source and the byte offset where the parsed slice starts.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'s> {
    pub src: &'s Source<'s>,
    pub base: usize,
}

impl<'s> Cx<'s> {
    pub fn span(&self, pair: &Pair<'_>) -> Span {
        let s = pair.as_span();
        self.src.span(self.base + s.start(), self.base + s.end())
    }

    pub fn error(&self, pair: &Pair<'_>, message: impl Into<String>) -> LotError {
        self.src
            .error_at(self.base + pair.as_span().start(), message)
    }

    /// A name, a quoted string or a `{var}` as plain text with its span.
    pub fn name(&self, pair: Pair<'_>) -> Spanned<String> {
        let span = self.span(&pair);
        let value = match pair.as_rule() {
            Rule::string | Rule::sq_string => unescape(inner_str(&pair)),
            Rule::var => pair
                .into_inner()
                .next()
                .map_or(String::new(), |n| n.as_str().to_owned()),
            Rule::field_name | Rule::block_name | Rule::flag => {
                let inner = pair.into_inner().next();
                return match inner {
                    Some(p) => Spanned {
                        value: self.name(p).value,
                        span,
                    },
                    None => Spanned {
                        value: String::new(),
                        span,
                    },
                };
            }
            _ => pair.as_str().to_owned(),
        };
        Spanned { value, span }
    }

    /// The text of a string literal pair, unescaped, with its span.
    pub fn string(&self, pair: Pair<'_>) -> Spanned<String> {
        self.name(pair)
    }
}

/// The raw text between the quotes of a `string` / `sq_string` pair.
fn inner_str<'i>(pair: &Pair<'i>) -> &'i str {
    let s = pair.as_str();
    &s[1..s.len() - 1]
}

/// Resolves `\"`, `\\`, `\n`, `\t`; any other backslash pair is kept as written, so regexes such
/// as `"\d+"` need no doubling.
pub(crate) fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses `blanked[start..end]` with `rule` (which must span SOI..EOI).
pub(crate) fn parse_slice<'s>(
    src: &'s Source<'s>,
    rule: Rule,
    start: usize,
    end: usize,
) -> Result<(Pair<'s>, Cx<'s>), LotError> {
    let text = &src.blanked[start..end];
    match LotParser::parse(rule, text) {
        Ok(mut pairs) => match pairs.next() {
            Some(pair) => Ok((pair, Cx { src, base: start })),
            None => Err(src.error_at(start, "nothing to parse")),
        },
        Err(e) => Err(messages::syntax_error(src, start, rule, e)),
    }
}

/// Parses one definition into its AST. `kind` was read from the DEFINE line by the caller.
/// Actions and models report every bad line; rules and routes stop at their first error.
pub(crate) fn parse_definition(
    src: &Source<'_>,
    def: &DefLines,
    kind: Kind,
) -> Result<DefinitionAst, Vec<LotError>> {
    let one = |e: LotError| vec![e];
    match kind {
        Kind::Rule => rule::parse(src, def).map(DefinitionAst::Rule).map_err(one),
        Kind::Model => model::parse(src, def).map(DefinitionAst::Model),
        Kind::Action => action::parse(src, def).map(DefinitionAst::Action),
        Kind::Route => route::parse(src, def)
            .map(DefinitionAst::Route)
            .map_err(one),
    }
}

/// Reads the kind word after DEFINE.
pub(crate) fn definition_kind(src: &Source<'_>, def: &DefLines) -> Result<Kind, LotError> {
    let first = def.lines[0];
    let content = src.content(&first);
    let mut words = content.split_whitespace();
    words.next();
    let word = words.next().unwrap_or("");
    let kind = match word.to_ascii_uppercase().as_str() {
        "RULE" => Kind::Rule,
        "MODEL" => Kind::Model,
        "ACTION" => Kind::Action,
        "ROUTE" => Kind::Route,
        _ => {
            let offset = if word.is_empty() {
                first.end
            } else {
                first.start + content.find(word).unwrap_or(0)
            };
            return Err(src.error_at(offset, "expected RULE, MODEL, ACTION or ROUTE after DEFINE"));
        }
    };
    Ok(kind)
}

/// The definition's name as written (third word of the DEFINE line), for error context.
pub(crate) fn definition_name(src: &Source<'_>, def: &DefLines) -> Option<String> {
    let content = src.content(&def.lines[0]);
    let name = content.split_whitespace().nth(2)?;
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .unwrap_or(name.len());
    (end > 0).then(|| name[..end].to_owned())
}

#[cfg(test)]
mod tests;
