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

/// The payload text of the value (see [`Value::to_text`]).
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
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
mod tests;
