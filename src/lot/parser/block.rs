//! # lot::parser::block: indentation blocks
//!
//! Turns a run of logical lines into a tree: the lines at the block's own indentation are its
//! items; the deeper lines right after an item are that item's children (its own block). Any
//! consistent width works; tabs and spaces must not be mixed (levels are compared by prefix, see
//! [`crate::lot::source::compare_indent`]).

use std::cmp::Ordering;

use crate::lot::error::LotError;
use crate::lot::source::{Line, Source, compare_indent};

/// One line with the deeper lines that belong to it.
pub(crate) struct Node {
    pub line: Line,
    pub children: Vec<Node>,
}

/// Builds the block tree of `lines`. The first line sets the block's indentation.
pub(crate) fn build(src: &Source<'_>, lines: &[Line]) -> Result<Vec<Node>, LotError> {
    let Some(first) = lines.first() else {
        return Ok(Vec::new());
    };
    let base = src.indent(first);
    let mut nodes = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        let line = lines[k];
        match compare_indent(base, src.indent(&line)) {
            Some(Ordering::Equal) => {}
            Some(Ordering::Less) => {
                return Err(src.error_at(
                    line.start,
                    "this line is indented less than the other lines of its block",
                ));
            }
            // Deeper lines are always taken as children below, so this is a line deeper than
            // the first line of a block that had no parent item: treat as inconsistent.
            Some(Ordering::Greater) => {
                return Err(src.error_at(line.start, "unexpected indentation"));
            }
            None => return Err(src.mixed_indent(&line)),
        }
        let mut m = k + 1;
        while m < lines.len() {
            match compare_indent(base, src.indent(&lines[m])) {
                Some(Ordering::Greater) => m += 1,
                None => return Err(src.mixed_indent(&lines[m])),
                _ => break,
            }
        }
        let children = build(src, &lines[k + 1..m])?;
        nodes.push(Node { line, children });
        k = m;
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Result<Vec<Node>, LotError> {
        let (src, _) = Source::new(text, None);
        let lines = src.logical_lines().unwrap();
        // Leak is fine in a test: the tree borrows nothing from src.
        build(&src, &lines)
    }

    #[test]
    fn nests_by_indentation_and_skips_blank_lines() {
        let t = tree("  a\n    b\n\n    // c\n    d\n  e").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].children.len(), 2);
        assert!(t[1].children.is_empty());
    }

    #[test]
    fn mixing_tabs_and_spaces_is_an_error_with_its_line() {
        let e = tree("  a\n    b\n  \tc").err().unwrap();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("tabs and spaces"));
    }

    #[test]
    fn dedent_to_an_unknown_level_is_an_error() {
        let e = tree("    a\n        b\n      c").err().unwrap();
        assert_eq!(e.line, 3);
    }
}
