//! # lot::timefmt: rendering `TIMESTAMP "<fmt>"` (spec §5)
//!
//! Pure functions of the clock's instant: the evaluator passes `Context::now()`, tests pass a fixed
//! instant. Owns the format names (`ISO`, `UTC`, `UNIX`, `UNIX-MS`) and the pattern language
//! (`yyyy MM dd HH mm ss fff`). Must not read the clock itself.
//!
//! Decisions: every format renders in UTC (a hub's payloads must not change meaning with the
//! server's time zone); `UNIX` and `UNIX-MS` are integers, the others text. In a pattern, the
//! tokens `yyyy yy MM dd HH mm ss fff` are replaced and every other character is copied; the only
//! letters allowed outside tokens are `T` and `Z` (as in `yyyy-MM-ddTHH:mm:ssZ`), so a typo such
//! as `YYYY` is caught by [`parse_format`] at compile time instead of being copied into payloads.

use std::fmt::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::ast::TimeFormat;
use super::value::Value;

/// Why a format text is not a valid TIMESTAMP format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeFormatError {
    #[error(
        "time format \"{0}\" has no date or time field; use ISO, UTC, UNIX, UNIX-MS or a pattern with yyyy MM dd HH mm ss fff"
    )]
    NoField(String),
    #[error(
        "time format \"{format}\": unknown field \"{field}\"; fields are yyyy yy MM dd HH mm ss fff"
    )]
    UnknownField { format: String, field: String },
}

/// Pattern tokens, longest first so `yyyy` wins over `yy`.
const TOKENS: [&str; 8] = ["yyyy", "fff", "yy", "MM", "dd", "HH", "mm", "ss"];

/// Reads a format text: the names (any case) or a validated pattern.
pub fn parse_format(text: &str) -> Result<TimeFormat, TimeFormatError> {
    let name = text.trim();
    for (n, f) in [
        ("ISO", TimeFormat::Iso),
        ("UTC", TimeFormat::Utc),
        ("UNIX", TimeFormat::Unix),
        ("UNIX-MS", TimeFormat::UnixMs),
    ] {
        if name.eq_ignore_ascii_case(n) {
            return Ok(f);
        }
    }
    validate_pattern(text)?;
    Ok(TimeFormat::Pattern(text.to_string()))
}

/// Checks a pattern: at least one token, and no letters outside tokens other than `T` and `Z`.
pub fn validate_pattern(pattern: &str) -> Result<(), TimeFormatError> {
    let mut rest = pattern;
    let mut fields = 0;
    while let Some(c) = rest.chars().next() {
        if let Some(tok) = TOKENS.iter().find(|t| rest.starts_with(**t)) {
            fields += 1;
            rest = &rest[tok.len()..];
            continue;
        }
        if c.is_ascii_alphabetic() && c != 'T' && c != 'Z' {
            let field: String = rest.chars().take_while(|x| *x == c).collect();
            return Err(TimeFormatError::UnknownField {
                format: pattern.to_string(),
                field,
            });
        }
        rest = &rest[c.len_utf8()..];
    }
    if fields == 0 {
        return Err(TimeFormatError::NoField(pattern.to_string()));
    }
    Ok(())
}

/// The value of `TIMESTAMP <fmt>` at instant `now`.
pub fn render(format: &TimeFormat, now: DateTime<Utc>) -> Value {
    match format {
        TimeFormat::Iso => Value::text(now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        TimeFormat::Utc => Value::text(now.format("%Y-%m-%d %H:%M:%S").to_string()),
        TimeFormat::Unix => Value::Int(now.timestamp()),
        TimeFormat::UnixMs => Value::Int(now.timestamp_millis()),
        TimeFormat::Pattern(p) => Value::text(render_pattern(p, now)),
    }
}

/// Replaces the tokens of `pattern` with the fields of `now`; other characters are copied.
pub fn render_pattern(pattern: &str, now: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let Some(tok) = TOKENS.iter().find(|t| rest.starts_with(**t)) else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        // Writing to a String cannot fail.
        let _ = match *tok {
            "yyyy" => write!(out, "{:04}", now.year()),
            "yy" => write!(out, "{:02}", now.year().rem_euclid(100)),
            "MM" => write!(out, "{:02}", now.month()),
            "dd" => write!(out, "{:02}", now.day()),
            "HH" => write!(out, "{:02}", now.hour()),
            "mm" => write!(out, "{:02}", now.minute()),
            "ss" => write!(out, "{:02}", now.second()),
            _ => write!(out, "{:03}", now.timestamp_subsec_millis().min(999)),
        };
        rest = &rest[tok.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn instant() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 17, 14, 25, 30).unwrap() + chrono::Duration::milliseconds(123)
    }

    fn text(v: Value) -> String {
        match v {
            Value::Text(s) => s.to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn named_formats() {
        assert_eq!(
            text(render(&TimeFormat::Iso, instant())),
            "2025-03-17T14:25:30.123Z"
        );
        assert_eq!(
            text(render(&TimeFormat::Utc, instant())),
            "2025-03-17 14:25:30"
        );
        assert!(matches!(
            render(&TimeFormat::Unix, instant()),
            Value::Int(1742221530)
        ));
        assert!(matches!(
            render(&TimeFormat::UnixMs, instant()),
            Value::Int(1742221530123)
        ));
    }

    #[test]
    fn patterns() {
        let p = |s: &str| text(render(&TimeFormat::Pattern(s.to_string()), instant()));
        assert_eq!(p("dd/MM/yyyy HH:mm:ss.fff"), "17/03/2025 14:25:30.123");
        assert_eq!(p("yyyyMMdd"), "20250317");
        assert_eq!(p("yy-MM-ddTHH:mmZ"), "25-03-17T14:25Z");
        assert_eq!(p("shift @ HH h"), "shift @ 14 h");
        let early = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            render_pattern("yyyy-MM-dd HH:mm:ss.fff", early),
            "2024-01-02 03:04:05.000"
        );
    }

    #[test]
    fn format_names_are_read_in_any_case_and_patterns_are_checked() {
        assert_eq!(parse_format("iso"), Ok(TimeFormat::Iso));
        assert_eq!(parse_format("Unix-Ms"), Ok(TimeFormat::UnixMs));
        assert_eq!(parse_format("UNIX"), Ok(TimeFormat::Unix));
        assert_eq!(parse_format("utc"), Ok(TimeFormat::Utc));
        assert_eq!(
            parse_format("yyyy-MM-dd"),
            Ok(TimeFormat::Pattern("yyyy-MM-dd".to_string()))
        );
        assert_eq!(
            parse_format("YYYY-MM-dd"),
            Err(TimeFormatError::UnknownField {
                format: "YYYY-MM-dd".to_string(),
                field: "YYYY".to_string()
            })
        );
        assert!(matches!(
            parse_format("--"),
            Err(TimeFormatError::NoField(_))
        ));
        assert!(matches!(
            parse_format("local"),
            Err(TimeFormatError::UnknownField { .. })
        ));
    }
}
