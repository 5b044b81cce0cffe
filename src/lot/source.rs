//! # lot::source: the pre-pass that gives LOT text its line structure
//!
//! pest has no INDENT/DEDENT tokens, so before the grammar sees anything this pass:
//! 1. blanks comments (`// ...`, `-- ...`, `/* ... */`) to spaces, keeping every byte offset and
//!    line break, so positions in the blanked text are positions in the original;
//! 2. finds unterminated strings and block comments;
//! 3. cuts the text into logical lines (a physical line, joined with the following ones while a
//!    `(`, `[` or `{` is open), dropping blank and comment-only lines so they never open or close
//!    a block;
//! 4. groups lines into definitions (each starts with `DEFINE` at column 0);
//! 5. checks that the indentation of consecutive lines never mixes tabs and spaces.
//!
//! Indentation levels are compared by prefix: a line is deeper than another when its leading
//! whitespace extends the other's; when neither extends the other, tabs and spaces were mixed.
//! Must not touch: the grammar, the AST. Start reading at [`Source::new`].

use std::cmp::Ordering;

use super::ast::Span;
use super::error::LotError;

/// Deepest bracket nesting accepted; deeper input is refused before it can exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Most operators and nesting keywords accepted on one logical line. Parsing, checking and
/// evaluating an expression recurse once per operator or nested transform, so an absurd line
/// (thousands of `+ 1` or `TRIM TRIM ...`) is refused instead of overflowing a thread's stack.
const MAX_COMPLEXITY: usize = 256;

/// Words that nest an expression or add an operator.
const NESTING_WORDS: [&str; 14] = [
    "NOT",
    "AND",
    "OR",
    "TRIM",
    "REPLACE",
    "FILTER",
    "SPLIT",
    "GET",
    "IF",
    "RANDOM",
    "CONTAINS",
    "STARTS_WITH",
    "ENDS_WITH",
    "EQUALS",
];

/// One LOT text with its comment-free copy and line table.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub file: Option<&'a str>,
    /// `text` with comments replaced by spaces (same length, same line breaks).
    pub blanked: String,
    line_starts: Vec<usize>,
}

/// A logical line: `start..end` are the first and one past the last non-blank byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    /// Start of the (first) physical line.
    pub line_start: usize,
    pub start: usize,
    pub end: usize,
}

/// The lines of one definition (the first one starts with `DEFINE`).
pub(crate) struct DefLines {
    pub lines: Vec<Line>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, file: Option<&'a str>) -> (Source<'a>, Vec<LotError>) {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut src = Source {
            text,
            file,
            blanked: String::new(),
            line_starts,
        };
        let errors = src.blank_comments();
        (src, errors)
    }

    /// Line and column (1-based, column in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[idx];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (idx as u32 + 1, col as u32 + 1)
    }

    pub fn span(&self, start: usize, end: usize) -> Span {
        let (line, col) = self.line_col(start);
        Span {
            line,
            col,
            offset: start as u32,
            len: end.saturating_sub(start) as u32,
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: u32) -> &str {
        let idx = (line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(idx) else {
            return "";
        };
        let end = self
            .line_starts
            .get(idx + 1)
            .map_or(self.text.len(), |&e| e - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// An error at a byte offset.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> LotError {
        let (line, col) = self.line_col(offset);
        self.error_lc(line, col, message)
    }

    pub fn error_span(&self, span: Span, message: impl Into<String>) -> LotError {
        self.error_lc(span.line, span.col, message)
    }

    fn error_lc(&self, line: u32, col: u32, message: impl Into<String>) -> LotError {
        LotError {
            file: self.file.map(str::to_owned),
            definition: None,
            line,
            col,
            message: message.into(),
            source_line: self.line_text(line).to_owned(),
        }
    }

    /// The leading whitespace of a logical line's first physical line.
    pub fn indent(&self, line: &Line) -> &str {
        &self.blanked[line.line_start..line.start]
    }

    /// The logical line's content (comments blanked).
    pub fn content(&self, line: &Line) -> &str {
        &self.blanked[line.start..line.end]
    }

    /// First word of a logical line, upper-cased.
    pub fn first_word(&self, line: &Line) -> String {
        self.content(line)
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }

    /// Replaces comments by spaces; reports unterminated strings and block comments.
    fn blank_comments(&mut self) -> Vec<LotError> {
        #[derive(PartialEq)]
        enum St {
            Code,
            Str(usize),
            SqStr,
            Line,
            Block(usize),
        }
        let bytes = self.text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut errors = Vec::new();
        let mut st = St::Code;
        // A UTF-8 byte order mark is not text: it becomes blanks and the first line starts
        // after it (see `logical_lines`).
        let mut i = 0;
        if self.text.starts_with('\u{feff}') {
            out.extend_from_slice(b"   ");
            i = 3;
        }
        while i < bytes.len() {
            let b = bytes[i];
            let next = bytes.get(i + 1).copied();
            match st {
                St::Code => match (b, next) {
                    (b'/', Some(b'/')) | (b'-', Some(b'-')) => {
                        st = St::Line;
                        out.push(b' ');
                    }
                    (b'/', Some(b'*')) => {
                        st = St::Block(i);
                        out.extend_from_slice(b"  ");
                        i += 1;
                    }
                    (b'"', _) => {
                        st = St::Str(i);
                        out.push(b);
                    }
                    (b'\'', _) => {
                        st = St::SqStr;
                        out.push(b);
                    }
                    _ => out.push(b),
                },
                St::Str(open) => match b {
                    b'\\' if next.is_some_and(|n| n != b'\n') => {
                        out.push(b);
                        out.push(bytes[i + 1]);
                        i += 1;
                    }
                    b'"' => {
                        st = St::Code;
                        out.push(b);
                    }
                    b'\n' => {
                        errors.push(
                            self.error_at(open, "unterminated string: missing the closing \""),
                        );
                        st = St::Code;
                        out.push(b);
                    }
                    _ => out.push(b),
                },
                St::SqStr => {
                    if b == b'\'' || b == b'\n' {
                        st = St::Code;
                    }
                    out.push(b);
                }
                St::Line => {
                    if b == b'\n' {
                        st = St::Code;
                        out.push(b);
                    } else {
                        out.push(b' ');
                    }
                }
                St::Block(_) => {
                    if b == b'*' && next == Some(b'/') {
                        st = St::Code;
                        out.extend_from_slice(b"  ");
                        i += 1;
                    } else if b == b'\n' {
                        out.push(b);
                    } else {
                        out.push(b' ');
                    }
                }
            }
            i += 1;
        }
        match st {
            St::Str(open) => {
                errors.push(self.error_at(open, "unterminated string: missing the closing \""))
            }
            St::Block(open) => {
                errors.push(self.error_at(open, "unterminated comment: missing the closing */"))
            }
            _ => {}
        }
        // Only ASCII bytes were replaced, by ASCII spaces, so the result is still UTF-8: a
        // multi-byte character is either copied whole or blanked byte by byte inside a comment.
        self.blanked = String::from_utf8(out).unwrap_or_else(|e| {
            e.into_bytes()
                .iter()
                .map(|&b| if b.is_ascii() { b as char } else { ' ' })
                .collect()
        });
        errors
    }

    /// Logical lines of the whole text (blank and comment-only lines dropped).
    pub fn logical_lines(&self) -> Result<Vec<Line>, LotError> {
        let b = self.blanked.as_bytes();
        let mut lines = Vec::new();
        let mut pos = if self.text.starts_with('\u{feff}') {
            3
        } else {
            0
        };
        while pos < b.len() {
            let line_start = pos;
            let mut depth = 0usize;
            let mut in_str: Option<u8> = None;
            let mut i = pos;
            // Scan to the end of the physical line, continuing while a bracket is open.
            while i < b.len() {
                let c = b[i];
                match in_str {
                    Some(q) => {
                        if c == b'\\' && q == b'"' && i + 1 < b.len() && b[i + 1] != b'\n' {
                            i += 1;
                        } else if c == q || c == b'\n' {
                            in_str = None;
                        }
                    }
                    None => match c {
                        b'"' | b'\'' => in_str = Some(c),
                        b'(' | b'[' | b'{' => {
                            depth += 1;
                            if depth > MAX_DEPTH {
                                return Err(self.error_at(i, "brackets nested too deeply"));
                            }
                        }
                        b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                        b'\n' if depth == 0 => break,
                        _ => {}
                    },
                }
                i += 1;
            }
            let chunk = &self.blanked[line_start..i];
            let trimmed_start = chunk.len() - chunk.trim_start().len();
            let trimmed_end = chunk.trim_end().len();
            if trimmed_end > trimmed_start {
                let start = line_start + trimmed_start;
                if complexity(&self.blanked[start..line_start + trimmed_end]) > MAX_COMPLEXITY {
                    return Err(self.error_at(
                        start,
                        format!(
                            "this line is too complex (more than {MAX_COMPLEXITY} operators and \
                             nested expressions): split it into several SET lines"
                        ),
                    ));
                }
                lines.push(Line {
                    line_start,
                    start: line_start + trimmed_start,
                    end: line_start + trimmed_end,
                });
            }
            pos = i + 1;
        }
        Ok(lines)
    }

    /// Groups logical lines into definitions. Lines before the first `DEFINE` are an error.
    pub fn definitions(&self, lines: Vec<Line>) -> (Vec<DefLines>, Vec<LotError>) {
        let mut defs: Vec<DefLines> = Vec::new();
        let mut errors = Vec::new();
        let mut skipped = Vec::new();
        for line in lines {
            let at_col0 = line.start == line.line_start;
            let define = self.first_word(&line) == "DEFINE";
            if define && !at_col0 {
                // Most likely a definition indented by mistake: say so, rather than letting it
                // read as a confusing line of the definition above.
                errors.push(self.error_at(line.start, "DEFINE must start at column 1"));
                defs.push(DefLines { lines: vec![line] });
                skipped.push(defs.len() - 1);
            } else if define {
                defs.push(DefLines { lines: vec![line] });
            } else if let Some(def) = defs.last_mut() {
                def.lines.push(line);
            } else if errors.is_empty() {
                errors.push(self.error_at(
                    line.start,
                    "expected DEFINE at the start of a line (column 1)",
                ));
            }
        }
        for i in skipped.into_iter().rev() {
            defs.remove(i);
        }
        (defs, errors)
    }

    /// Checks that no two consecutive lines of a definition mix tabs and spaces.
    pub fn check_indentation(&self, def: &DefLines) -> Result<(), LotError> {
        for pair in def.lines.windows(2) {
            if compare_indent(self.indent(&pair[0]), self.indent(&pair[1])).is_none() {
                return Err(self.mixed_indent(&pair[1]));
            }
        }
        Ok(())
    }

    pub fn mixed_indent(&self, line: &Line) -> LotError {
        self.error_at(
            line.line_start,
            "inconsistent indentation: tabs and spaces are mixed in this block",
        )
    }
}

/// Operators and nesting keywords outside strings (see [`MAX_COMPLEXITY`]).
fn complexity(line: &str) -> usize {
    let mut count = 0;
    let mut word = String::new();
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for c in line.chars().chain(std::iter::once(' ')) {
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c.to_ascii_uppercase());
            continue;
        }
        if NESTING_WORDS.contains(&word.as_str()) {
            count += 1;
        }
        word.clear();
        match c {
            '"' | '\'' => in_str = Some(c),
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' => count += 1,
            _ => {}
        }
    }
    count
}

/// How indentation `b` relates to `a`: Greater when `b` is deeper, None when tabs and spaces
/// were mixed (neither is a prefix of the other).
pub(crate) fn compare_indent(a: &str, b: &str) -> Option<Ordering> {
    if a == b {
        Some(Ordering::Equal)
    } else if b.starts_with(a) {
        Some(Ordering::Greater)
    } else if a.starts_with(b) {
        Some(Ordering::Less)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_blanked_in_place() {
        let text = "SET \"a//b\" WITH 1 // c\n-- d\n/* e\n f */ X";
        let (src, errs) = Source::new(text, None);
        assert!(errs.is_empty());
        assert_eq!(src.blanked.len(), text.len());
        assert_eq!(src.blanked, "SET \"a//b\" WITH 1     \n    \n    \n      X");
    }

    #[test]
    fn logical_lines_join_open_brackets_and_skip_blank() {
        let text = "A {\n  \"k\": 1\n}\n\n  // only\nB";
        let (src, _) = Source::new(text, None);
        let lines = src.logical_lines().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(src.content(&lines[0]), "A {\n  \"k\": 1\n}");
        assert_eq!(src.content(&lines[1]), "B");
    }

    #[test]
    fn unterminated_string_is_reported_at_its_quote() {
        let (_, errs) = Source::new("X\nSET \"abc\nY", None);
        assert_eq!((errs[0].line, errs[0].col), (2, 5));
    }

    #[test]
    fn byte_order_mark_and_crlf_are_not_text() {
        let (src, _) = Source::new("\u{feff}DEFINE X\r\n    A\r\n", None);
        let lines = src.logical_lines().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].start, lines[0].line_start);
        assert_eq!(src.content(&lines[1]), "A");
        assert_eq!(src.indent(&lines[1]), "    ");
    }

    #[test]
    fn indentation_compare() {
        assert_eq!(compare_indent("  ", "    "), Some(Ordering::Greater));
        assert_eq!(compare_indent("\t", "    "), None);
        assert_eq!(compare_indent("\t\t", "\t"), Some(Ordering::Less));
    }
}
