//! # lot::error: the one error type of LOT compilation
//!
//! Owns [`LotError`] and its rendering: `file:line:col: message`, then the source line and a
//! caret under the column, then the definition it belongs to. Must not touch parsing itself.

use std::fmt;

/// A syntax or semantic error in LOT text, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LotError {
    /// The file name as given (None for text that came from elsewhere, e.g. a command).
    pub file: Option<String>,
    /// The definition the error is in, as `KIND Name` (e.g. `ACTION Tick`), when known.
    pub definition: Option<String>,
    /// 1-based line in the whole text.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
    /// What is wrong, in plain words.
    pub message: String,
    /// The text of the line the error is on (without its line break).
    pub source_line: String,
}

impl LotError {
    /// The first line of the rendering: `file:line:col: message` (`line:col: message` without a
    /// file name).
    pub fn headline(&self) -> String {
        match &self.file {
            Some(file) => format!("{file}:{}:{}: {}", self.line, self.col, self.message),
            None => format!("{}:{}: {}", self.line, self.col, self.message),
        }
    }
}

impl fmt::Display for LotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        writeln!(f, "    {}", self.source_line)?;
        // Keep tabs as tabs so the caret lines up under the same column in a terminal.
        let pad: String = self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "    {pad}^")?;
        if let Some(def) = &self.definition {
            write!(f, "\n    (in {def})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_col_then_caret() {
        let e = LotError {
            file: Some("a.lot".into()),
            definition: Some("RULE X".into()),
            line: 3,
            col: 5,
            message: "expected THEN after the IF condition".into(),
            source_line: "\tIF x".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.lot:3:5: expected THEN after the IF condition\n    \tIF x\n    \t   ^\n    (in RULE X)"
        );
    }
}
