//! # lot::value: the dynamic values LOT expressions compute with (spec §5)
//!
//! Owns [`Value`] and every rule about how values convert: reading text as a number, rendering a
//! value as payload text, casts (`AS INT` ...), JSON in and out, and the typed conversion of MODEL
//! fields. Operators, JSON paths and transforms live in [`ops`]. Pure: no context; from the AST it takes only the type names
//! ([`ValueType`] for casts, [`FieldType`] for model fields).
//!
//! Start reading at [`Value`], then [`Value::number`] (the coercion every operator uses).
//!
//! Decisions (spec §5 leaves them open; these are final here):
//! - Text reads as a number when, after trimming whitespace, it is a decimal literal
//!   (`42`, `-3`, `0.5`, `1e3`, `+7`); `inf`/`NaN` spellings are text, not numbers.
//! - Integer arithmetic that overflows `i64` is promoted to `f64` rather than failing.
//! - Rendering: integers as digits, floats in the shortest form that reads back the same with no
//!   trailing `.0` (`21.5` -> "21.5", `7.0` -> "7"), booleans as `true`/`false`, EMPTY as "",
//!   JSON compact, non-finite floats as `NaN`/`Infinity`/`-Infinity`.
//! - `AS INT` of a fractional number truncates toward zero (`21.7` -> 21).
//! - JSON scalars taken out of a document become native values (a JSON string is text, `null` is
//!   EMPTY), so `Value::Json` holds objects and arrays.

pub mod ops;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

pub use super::ast::{FieldType, ValueType};

/// A LOT run-time value. Cheap to clone: text and JSON are shared.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// The "no value" literal: 0 in arithmetic, "" in text, equal only to EMPTY or "".
    #[default]
    Empty,
    Text(Arc<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A JSON object or array (scalars are normalised to the other variants, see [`Value::from_json`]).
    Json(Arc<serde_json::Value>),
    /// Raw bytes: a payload that is not UTF-8, or `AS BYTES`.
    Bytes(Bytes),
}

/// A number read from a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
        }
    }
}

/// Why an operation on values failed. The evaluator adds the definition name and line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("cannot convert {value} to {target}")]
    BadCast { value: String, target: &'static str },
    #[error("expected a number, got {0}")]
    NotANumber(String),
    #[error("regex failed: {0}")]
    Regex(String),
}

impl Value {
    /// Text value from anything string-like.
    pub fn text(s: impl Into<Arc<str>>) -> Value {
        Value::Text(s.into())
    }

    /// A payload as a value: UTF-8 payloads are text, anything else stays bytes.
    pub fn from_payload(payload: &Bytes) -> Value {
        match std::str::from_utf8(payload) {
            Ok(s) => Value::Text(Arc::from(s)),
            Err(_) => Value::Bytes(payload.clone()),
        }
    }

    /// A JSON value as a LOT value: `null` is EMPTY, strings are text, numbers are Int when they
    /// fit `i64`, objects and arrays stay JSON.
    pub fn from_json(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Empty,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => json_number(&n),
            serde_json::Value::String(s) => Value::Text(Arc::from(s)),
            other => Value::Json(Arc::new(other)),
        }
    }

    /// As [`Value::from_json`], from a borrowed JSON value (clones only what it keeps).
    pub fn from_json_ref(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Empty,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => json_number(n),
            serde_json::Value::String(s) => Value::Text(Arc::from(s.as_str())),
            other => Value::Json(Arc::new(other.clone())),
        }
    }

    /// The JSON form of the value, with no type inference (text stays a JSON string).
    /// Non-finite floats become `null` because JSON cannot hold them.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Empty => serde_json::Value::Null,
            Value::Text(s) => serde_json::Value::String(s.to_string()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => float_json(*f),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Json(j) => (**j).clone(),
            Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// True for EMPTY, empty text and empty bytes: the values EMPTY is equal to.
    pub fn is_empty_like(&self) -> bool {
        match self {
            Value::Empty => true,
            Value::Text(s) => s.is_empty(),
            Value::Bytes(b) => b.is_empty(),
            _ => false,
        }
    }

    /// The value as a number, when it is one or is text that reads as one. EMPTY is not a
    /// number here (callers doing arithmetic treat it as 0 themselves), nor is a boolean.
    pub fn number(&self) -> Option<Num> {
        match self {
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Float(f) => Some(Num::Float(*f)),
            Value::Text(s) => parse_number(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(parse_number),
            _ => None,
        }
    }

    /// The value rendered as text: what `PUBLISH` sends and what `+` concatenates.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Value::Empty => Cow::Borrowed(""),
            Value::Text(s) => Cow::Borrowed(s),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Float(f) => Cow::Owned(format_float(*f)),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Json(j) => Cow::Owned(j.to_string()),
            Value::Bytes(b) => String::from_utf8_lossy(b),
        }
    }

    /// The payload bytes `PUBLISH` / `KEEP TOPIC` send for this value.
    pub fn to_payload(&self) -> Bytes {
        match self {
            Value::Bytes(b) => b.clone(),
            Value::Text(s) => Bytes::copy_from_slice(s.as_bytes()),
            other => Bytes::from(other.to_text().into_owned()),
        }
    }

    /// The value as a boolean where that is meaningful: booleans, `"true"`/`"false"` (any
    /// case), and 1/0 (as numbers or text). EMPTY is false.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Empty => Some(false),
            Value::Text(s) => text_bool(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(text_bool),
            Value::Int(1) => Some(true),
            Value::Int(0) => Some(false),
            Value::Float(f) if *f == 1.0 => Some(true),
            Value::Float(f) if *f == 0.0 => Some(false),
            _ => None,
        }
    }

    /// Truthiness for IF conditions: booleans as themselves, EMPTY false, numbers non-zero,
    /// text true unless it is empty, "false" or reads as 0.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Empty => false,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0 && !f.is_nan(),
            Value::Text(_) | Value::Bytes(_) => self.as_bool().unwrap_or(!self.is_empty_like()),
            Value::Json(_) => true,
        }
    }

    /// A short description for error messages: the kind and (truncated) text.
    pub fn describe(&self) -> String {
        let kind = match self {
            Value::Empty => return "EMPTY".to_string(),
            Value::Text(_) => "text",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Json(_) => "JSON",
            Value::Bytes(_) => "bytes",
        };
        let text = self.to_text();
        let mut shown: String = text.chars().take(40).collect();
        if shown.len() < text.len() {
            shown.push_str("...");
        }
        format!("{kind} \"{shown}\"")
    }

    /// `AS <type>` (spec §5).
    pub fn cast(&self, to: ValueType) -> Result<Value, ValueError> {
        let bad = |target| ValueError::BadCast {
            value: self.describe(),
            target,
        };
        match to {
            ValueType::String => Ok(match self {
                Value::Text(_) => self.clone(),
                other => Value::Text(Arc::from(other.to_text())),
            }),
            ValueType::Int => match self {
                Value::Empty => Ok(Value::Int(0)),
                Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
                other => match other.number() {
                    Some(Num::Int(i)) => Ok(Value::Int(i)),
                    Some(Num::Float(f)) => {
                        float_to_i64(f).map(Value::Int).ok_or_else(|| bad("INT"))
                    }
                    None => Err(bad("INT")),
                },
            },
            ValueType::Double => match self {
                Value::Empty => Ok(Value::Float(0.0)),
                Value::Bool(b) => Ok(Value::Float(if *b { 1.0 } else { 0.0 })),
                other => other
                    .number()
                    .map(|n| Value::Float(n.as_f64()))
                    .ok_or_else(|| bad("DOUBLE")),
            },
            ValueType::Bool => self.as_bool().map(Value::Bool).ok_or_else(|| bad("BOOL")),
            ValueType::Json => match self {
                Value::Json(_)
                | Value::Empty
                | Value::Int(_)
                | Value::Float(_)
                | Value::Bool(_) => Ok(self.clone()),
                Value::Text(s) => parse_json_text(s).ok_or_else(|| bad("JSON")),
                Value::Bytes(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(parse_json_text)
                    .ok_or_else(|| bad("JSON")),
            },
            ValueType::Bytes => Ok(Value::Bytes(self.to_payload())),
        }
    }

    /// The value converted to a MODEL field's type (spec §3), as JSON. `None` is an untyped field:
    /// numeric text becomes a number, `true`/`false` a boolean, anything else keeps its form.
    /// EMPTY (a topic never seen) is `null` for every type and is not an error.
    pub fn to_field(&self, ty: Option<FieldType>) -> Result<serde_json::Value, ValueError> {
        use serde_json::Value as J;
        if matches!(self, Value::Empty) {
            return Ok(J::Null);
        }
        let bad = |target| ValueError::BadCast {
            value: self.describe(),
            target,
        };
        let Some(ty) = ty else {
            return Ok(match self {
                Value::Text(s) => match parse_number(s) {
                    Some(n) => num_json(n),
                    None => match s.trim() {
                        "true" => J::Bool(true),
                        "false" => J::Bool(false),
                        _ => J::String(s.to_string()),
                    },
                },
                other => other.to_json(),
            });
        };
        match ty {
            FieldType::String => Ok(J::String(self.to_text().into_owned())),
            FieldType::Int => match self.cast(ValueType::Int)? {
                Value::Int(i) => Ok(J::from(i)),
                _ => Err(bad("INT")),
            },
            FieldType::Double => match self.cast(ValueType::Double)? {
                Value::Float(f) if f.is_finite() => Ok(float_json(f)),
                _ => Err(bad("DOUBLE")),
            },
            FieldType::Bool => self.as_bool().map(J::Bool).ok_or_else(|| bad("BOOL")),
            FieldType::Timestamp => match self {
                Value::Int(i) => Ok(J::from(*i)),
                Value::Float(f) if f.is_finite() => Ok(float_json(*f)),
                Value::Text(s) if !s.trim().is_empty() => Ok(J::String(s.to_string())),
                _ => Err(bad("TIMESTAMP")),
            },
            FieldType::Object | FieldType::Array => {
                let want_object = ty == FieldType::Object;
                let target = if want_object { "OBJECT" } else { "ARRAY" };
                let json = match self.cast(ValueType::Json) {
                    Ok(Value::Json(j)) => j,
                    _ => return Err(bad(target)),
                };
                if json.is_object() == want_object {
                    Ok((*json).clone())
                } else {
                    Err(bad(target))
                }
            }
        }
    }
}

/// Reads `s` (trimmed) as a decimal number: `[+-]digits[.digits][e[+-]digits]`, or with the
/// integer part omitted (`.5`). Integers that overflow `i64` read as `f64`.
pub fn parse_number(s: &str) -> Option<Num> {
    let t = s.trim();
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut is_float = false;
    if i < b.len() && b[i] == b'.' {
        is_float = true;
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return None;
        }
    } else if int_digits == 0 {
        return None;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        is_float = true;
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    if !is_float && let Ok(n) = t.parse::<i64>() {
        return Some(Num::Int(n));
    }
    t.parse::<f64>().ok().map(Num::Float)
}

/// Renders a float the way users expect on a payload: shortest round-trip form, no trailing `.0`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        // Rust's Display for f64 is already the shortest round-trip form and omits `.0`.
        f.to_string()
    }
}

fn text_bool(s: &str) -> Option<bool> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") || t == "1" {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(false)
    } else {
        None
    }
}

fn parse_json_text(s: &str) -> Option<Value> {
    serde_json::from_str::<serde_json::Value>(s.trim())
        .ok()
        .map(Value::from_json)
}

fn json_number(n: &serde_json::Number) -> Value {
    match n.as_i64() {
        Some(i) => Value::Int(i),
        None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn float_json(f: f64) -> serde_json::Value {
    serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn num_json(n: Num) -> serde_json::Value {
    match n {
        Num::Int(i) => serde_json::Value::from(i),
        Num::Float(f) => float_json(f),
    }
}

fn float_to_i64(f: f64) -> Option<i64> {
    let t = f.trunc();
    // i64::MAX as f64 rounds up to 2^63, which is out of range: hence the strict `<`.
    (t.is_finite() && t >= i64::MIN as f64 && t < i64::MAX as f64).then_some(t as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_read_from_text_only_when_decimal_literals() {
        assert_eq!(parse_number("42"), Some(Num::Int(42)));
        assert_eq!(parse_number(" -3\n"), Some(Num::Int(-3)));
        assert_eq!(parse_number("+7"), Some(Num::Int(7)));
        assert_eq!(parse_number("0.5"), Some(Num::Float(0.5)));
        assert_eq!(parse_number(".5"), Some(Num::Float(0.5)));
        assert_eq!(parse_number("1e3"), Some(Num::Float(1000.0)));
        assert_eq!(parse_number("2.5E-1"), Some(Num::Float(0.25)));
        assert_eq!(parse_number("99999999999999999999"), Some(Num::Float(1e20)));
        for s in [
            "", " ", "abc", "1a", "inf", "NaN", "infinity", "1e", ".", "-", "1.2.3", "0x10",
        ] {
            assert_eq!(parse_number(s), None, "{s:?}");
        }
    }

    #[test]
    fn rendering_matches_what_users_expect_on_a_payload() {
        assert_eq!(Value::Float(21.5).to_text(), "21.5");
        assert_eq!(Value::Float(7.0).to_text(), "7");
        assert_eq!(Value::Float(-0.25).to_text(), "-0.25");
        assert_eq!(Value::Float(f64::INFINITY).to_text(), "Infinity");
        assert_eq!(Value::Float(f64::NAN).to_text(), "NaN");
        assert_eq!(Value::Int(-12).to_text(), "-12");
        assert_eq!(Value::Bool(true).to_text(), "true");
        assert_eq!(Value::Empty.to_text(), "");
        let j = Value::from_json(json!({"a": [1, 2], "b": "x"}));
        assert_eq!(j.to_text(), r#"{"a":[1,2],"b":"x"}"#);
        assert_eq!(
            Value::Bytes(Bytes::from_static(b"hi")).to_payload(),
            Bytes::from_static(b"hi")
        );
        assert_eq!(
            Value::Float(0.1 + 0.2).to_payload(),
            Bytes::from("0.30000000000000004")
        );
    }

    #[test]
    fn payloads_are_text_when_utf8_and_bytes_otherwise() {
        assert!(
            matches!(Value::from_payload(&Bytes::from("héllo")), Value::Text(s) if &*s == "héllo")
        );
        assert!(matches!(
            Value::from_payload(&Bytes::from_static(&[0xff, 0x00])),
            Value::Bytes(_)
        ));
    }

    #[test]
    fn json_scalars_normalise_to_native_values() {
        assert!(matches!(Value::from_json(json!(null)), Value::Empty));
        assert!(matches!(Value::from_json(json!(3)), Value::Int(3)));
        assert!(matches!(Value::from_json(json!(3.5)), Value::Float(f) if f == 3.5));
        assert!(matches!(Value::from_json(json!("s")), Value::Text(s) if &*s == "s"));
        assert!(matches!(Value::from_json(json!(true)), Value::Bool(true)));
        assert!(matches!(Value::from_json(json!([1])), Value::Json(_)));
        assert_eq!(Value::Float(f64::NAN).to_json(), json!(null));
        assert_eq!(Value::text("7").to_json(), json!("7"));
    }

    fn cast(v: Value, c: ValueType) -> Result<String, ValueError> {
        v.cast(c).map(|v| format!("{v:?}"))
    }

    #[test]
    fn casts_follow_the_spec() {
        assert!(matches!(
            Value::text(" 42 ").cast(ValueType::Int),
            Ok(Value::Int(42))
        ));
        assert!(matches!(
            Value::text("21.7").cast(ValueType::Int),
            Ok(Value::Int(21))
        ));
        assert!(matches!(
            Value::Float(-2.9).cast(ValueType::Int),
            Ok(Value::Int(-2))
        ));
        assert!(matches!(
            Value::Bool(true).cast(ValueType::Int),
            Ok(Value::Int(1))
        ));
        assert!(matches!(
            Value::Empty.cast(ValueType::Int),
            Ok(Value::Int(0))
        ));
        assert!(
            matches!(Value::text("7").cast(ValueType::Double), Ok(Value::Float(f)) if f == 7.0)
        );
        assert!(matches!(
            Value::Float(1e300).cast(ValueType::Int),
            Err(ValueError::BadCast { .. })
        ));
        assert!(matches!(
            Value::text("abc").cast(ValueType::Double),
            Err(ValueError::BadCast { .. })
        ));
        for (s, b) in [("true", true), ("FALSE", false), ("1", true), ("0", false)] {
            assert!(
                matches!(Value::text(s).cast(ValueType::Bool), Ok(Value::Bool(x)) if x == b),
                "{s}"
            );
        }
        assert!(matches!(
            Value::Int(1).cast(ValueType::Bool),
            Ok(Value::Bool(true))
        ));
        assert!(matches!(
            Value::Int(2).cast(ValueType::Bool),
            Err(ValueError::BadCast { .. })
        ));
        assert!(matches!(
            Value::text("yes").cast(ValueType::Bool),
            Err(ValueError::BadCast { .. })
        ));
        assert!(matches!(Value::Int(5).cast(ValueType::String), Ok(Value::Text(s)) if &*s == "5"));
        assert!(
            matches!(Value::text(r#"{"a":1}"#).cast(ValueType::Json), Ok(Value::Json(j)) if j["a"] == 1)
        );
        assert!(matches!(
            Value::text("12").cast(ValueType::Json),
            Ok(Value::Int(12))
        ));
        assert!(matches!(
            Value::text("{oops").cast(ValueType::Json),
            Err(ValueError::BadCast { .. })
        ));
        assert!(
            matches!(Value::Int(5).cast(ValueType::Bytes), Ok(Value::Bytes(b)) if &b[..] == b"5")
        );
        let err = cast(Value::text("abc"), ValueType::Int).unwrap_err();
        assert_eq!(err.to_string(), "cannot convert text \"abc\" to INT");
    }

    #[test]
    fn truthiness_of_conditions() {
        assert!(Value::Bool(true).truthy());
        assert!(!Value::Empty.truthy());
        assert!(!Value::Int(0).truthy());
        assert!(Value::Float(0.5).truthy());
        assert!(!Value::text("false").truthy());
        assert!(!Value::text("0").truthy());
        assert!(!Value::text("").truthy());
        assert!(Value::text("on").truthy());
    }

    #[test]
    fn model_fields_convert_or_fail() {
        use FieldType as F;
        assert_eq!(Value::text("7").to_field(Some(F::Int)), Ok(json!(7)));
        assert_eq!(
            Value::text("21.5").to_field(Some(F::Double)),
            Ok(json!(21.5))
        );
        assert_eq!(Value::Int(3).to_field(Some(F::Double)), Ok(json!(3.0)));
        assert_eq!(Value::text("true").to_field(Some(F::Bool)), Ok(json!(true)));
        assert_eq!(Value::Int(0).to_field(Some(F::Bool)), Ok(json!(false)));
        assert_eq!(Value::Int(12).to_field(Some(F::String)), Ok(json!("12")));
        assert_eq!(
            Value::text("2025-03-17").to_field(Some(F::Timestamp)),
            Ok(json!("2025-03-17"))
        );
        assert_eq!(
            Value::Int(1742221530).to_field(Some(F::Timestamp)),
            Ok(json!(1742221530))
        );
        assert_eq!(
            Value::text(r#"{"a":1}"#).to_field(Some(F::Object)),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            Value::text("[1,2]").to_field(Some(F::Array)),
            Ok(json!([1, 2]))
        );
        assert_eq!(Value::Empty.to_field(Some(F::Int)), Ok(json!(null)));
        for (v, t) in [
            (Value::text("warm"), F::Int),
            (Value::text("warm"), F::Double),
            (Value::text("maybe"), F::Bool),
            (Value::text("[1]"), F::Object),
            (Value::text(r#"{"a":1}"#), F::Array),
            (Value::Bool(true), F::Timestamp),
        ] {
            assert!(v.to_field(Some(t)).is_err(), "{v:?} as {t:?}");
        }
        // Untyped fields infer numbers and booleans from text.
        assert_eq!(Value::text("21.5").to_field(None), Ok(json!(21.5)));
        assert_eq!(Value::text("true").to_field(None), Ok(json!(true)));
        assert_eq!(Value::text("on").to_field(None), Ok(json!("on")));
    }

    #[test]
    fn empty_like_values() {
        assert!(Value::Empty.is_empty_like());
        assert!(Value::text("").is_empty_like());
        assert!(!Value::Int(0).is_empty_like());
        assert!(!Value::text(" ").is_empty_like());
    }
}
