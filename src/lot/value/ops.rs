//! # lot::value::ops: operators, JSON paths and transforms on [`Value`] (spec §5)
//!
//! Every function here is pure and total over values: a failure is a [`ValueError`], never a
//! panic. The evaluator calls [`binary`] with the AST's [`BinOp`].
//!
//! Decisions:
//! - Equality (`== = EQUALS`, and `!=`): EMPTY equals only EMPTY, "" and empty bytes; booleans
//!   compare with booleans and with `true`/`false`/1/0; two values that read as numbers compare
//!   numerically (`"7" == 7.0`); two JSON values structurally; anything else by rendered text.
//! - Ordering (`< <= > >=`): numerically when both sides read as numbers (EMPTY counts as 0 when
//!   the other side is a number), otherwise by rendered text (byte order). NaN makes it false.
//! - `+` concatenates when either side is text that does not read as a number, JSON or bytes;
//!   otherwise it adds (EMPTY is 0). `- * / %` need numbers: a boolean, JSON or non-numeric text
//!   is an error. `/` of two integers gives an integer when exact, a float otherwise (`7 / 2`
//!   is 3.5). Division or remainder by zero (integer or float) is an error.
//! - `CONTAINS` looks for an element in a JSON array, a key in a JSON object, and a substring
//!   otherwise.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use super::{Num, Value, ValueError};
use crate::lot::ast::BinOp;

/// Applies a binary operator.
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, ValueError> {
    Ok(match op {
        // The evaluator short-circuits AND / OR; here both sides are already known.
        BinOp::And => Value::Bool(a.truthy() && b.truthy()),
        BinOp::Or => Value::Bool(a.truthy() || b.truthy()),
        BinOp::Add => return add(a, b),
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => return arith(op, a, b),
        BinOp::Eq => Value::Bool(loose_eq(a, b)),
        BinOp::Ne => Value::Bool(!loose_eq(a, b)),
        BinOp::Lt => Value::Bool(compare(a, b) == Some(Ordering::Less)),
        BinOp::Le => Value::Bool(matches!(
            compare(a, b),
            Some(Ordering::Less | Ordering::Equal)
        )),
        BinOp::Gt => Value::Bool(compare(a, b) == Some(Ordering::Greater)),
        BinOp::Ge => Value::Bool(matches!(
            compare(a, b),
            Some(Ordering::Greater | Ordering::Equal)
        )),
        BinOp::Contains => Value::Bool(contains(a, b)),
        BinOp::StartsWith => Value::Bool(a.to_text().starts_with(&*b.to_text())),
        BinOp::EndsWith => Value::Bool(a.to_text().ends_with(&*b.to_text())),
    })
}

/// Unary minus.
pub fn negate(v: &Value) -> Result<Value, ValueError> {
    Ok(match arith_num(v)? {
        Num::Int(i) => i
            .checked_neg()
            .map_or(Value::Float(-(i as f64)), Value::Int),
        Num::Float(f) => Value::Float(-f),
    })
}

/// `==`: see the module header.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Empty, other) | (other, Value::Empty) => other.is_empty_like(),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Bool(x), other) | (other, Value::Bool(x)) => other.as_bool() == Some(*x),
        (Value::Json(x), Value::Json(y)) => x == y,
        (Value::Text(x), Value::Text(y)) if x == y => true,
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => num_cmp(x, y) == Some(Ordering::Equal),
            _ => a.to_text() == b.to_text(),
        },
    }
}

/// Ordering for `< <= > >=`: see the module header. `None` when unordered (NaN).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    let num = |v: &Value, other: &Value| match v {
        Value::Empty if other.number().is_some() => Some(Num::Int(0)),
        Value::Bool(x) if matches!(other, Value::Bool(_)) => Some(Num::Int(i64::from(*x))),
        v => v.number(),
    };
    match (num(a, b), num(b, a)) {
        (Some(x), Some(y)) => num_cmp(x, y),
        _ => Some(a.to_text().cmp(&b.to_text())),
    }
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    }
}

fn contains(a: &Value, b: &Value) -> bool {
    match a {
        Value::Json(j) => match &**j {
            serde_json::Value::Array(items) => items
                .iter()
                .any(|item| loose_eq(&Value::from_json_ref(item), b)),
            serde_json::Value::Object(map) => map.contains_key(&*b.to_text()),
            _ => false,
        },
        _ => a.to_text().contains(&*b.to_text()),
    }
}

/// True when `+` must concatenate because of this operand.
fn is_textual(v: &Value) -> bool {
    match v {
        Value::Text(_) | Value::Bytes(_) => v.number().is_none(),
        Value::Json(_) => true,
        _ => false,
    }
}

fn add(a: &Value, b: &Value) -> Result<Value, ValueError> {
    if is_textual(a) || is_textual(b) {
        let (x, y) = (a.to_text(), b.to_text());
        let mut s = String::with_capacity(x.len() + y.len());
        s.push_str(&x);
        s.push_str(&y);
        return Ok(Value::Text(Arc::from(s)));
    }
    arith(BinOp::Add, a, b)
}

/// A number for arithmetic: EMPTY is 0, booleans and non-numeric values are errors.
fn arith_num(v: &Value) -> Result<Num, ValueError> {
    match v {
        Value::Empty => Ok(Num::Int(0)),
        other => other
            .number()
            .ok_or_else(|| ValueError::NotANumber(other.describe())),
    }
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, ValueError> {
    let (x, y) = (arith_num(a)?, arith_num(b)?);
    if matches!(op, BinOp::Div | BinOp::Rem) && y.as_f64() == 0.0 {
        return Err(ValueError::DivisionByZero);
    }
    if let (Num::Int(x), Num::Int(y)) = (x, y) {
        let exact = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div => x
                .checked_rem(y)
                .filter(|r| *r == 0)
                .and_then(|_| x.checked_div(y)),
            // i64::MIN % -1 overflows in the CPU but is mathematically 0.
            _ => Some(x.checked_rem(y).unwrap_or(0)),
        };
        if let Some(r) = exact {
            return Ok(Value::Int(r));
        }
    }
    let (x, y) = (x.as_f64(), y.as_f64());
    Ok(Value::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        _ => x % y,
    }))
}

/// `GET JSON "<path>" IN <value>`: walks `a.b.c`, `a.0.b` and `a[0].b`. A number segment indexes
/// an array (and is a key of an object). Anything missing, or a value that is not JSON, is EMPTY.
/// Text is parsed as JSON first; pass an already parsed document with [`json_path_in`] to avoid
/// parsing one payload repeatedly.
pub fn json_path(value: &Value, path: &str) -> Value {
    match value {
        Value::Json(j) => json_path_in(j, path),
        Value::Text(_) | Value::Bytes(_) => {
            let text = value.to_text();
            match serde_json::from_str::<serde_json::Value>(text.trim()) {
                Ok(doc) => json_path_in(&doc, path),
                Err(_) => Value::Empty,
            }
        }
        other if path.is_empty() => other.clone(),
        _ => Value::Empty,
    }
}

/// [`json_path`] on a parsed document. Allocation-free walk; only the result is cloned.
pub fn json_path_in(doc: &serde_json::Value, path: &str) -> Value {
    let mut cur = doc;
    for seg in path_segments(path) {
        let next = match cur {
            serde_json::Value::Object(map) => map.get(seg),
            serde_json::Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Value::Empty,
        }
    }
    Value::from_json_ref(cur)
}

/// Splits `a.b[0][1].c` into `a`, `b`, `0`, `1`, `c`.
fn path_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split(['.', '[', ']']).filter(|s| !s.is_empty())
}

/// `REPLACE "<find>" WITH <with> IN <input>`: every occurrence, as text. An empty `find` leaves
/// the input unchanged.
pub fn replace(find: &Value, with: &Value, input: &Value) -> Value {
    let find = find.to_text();
    let find = &*find;
    let text = input.to_text();
    if find.is_empty() || !text.contains(find) {
        return match input {
            Value::Text(_) => input.clone(),
            _ => Value::Text(Arc::from(text)),
        };
    }
    Value::Text(Arc::from(text.replace(find, &with.to_text())))
}

/// `FILTER <input> USING REGEX "<re>"`: the first match's first capture group if the regex has
/// one, the whole first match otherwise; EMPTY when nothing matches. A regex that fails at run
/// time (fancy-regex's backtrack limit) is an error.
pub fn filter(input: &Value, re: &fancy_regex::Regex) -> Result<Value, ValueError> {
    let text = input.to_text();
    let caps = re
        .captures(&text)
        .map_err(|e| ValueError::Regex(e.to_string()))?;
    Ok(match caps {
        Some(c) => match c.get(1).or_else(|| c.get(0)) {
            Some(m) => Value::Text(Arc::from(m.as_str())),
            None => Value::Empty,
        },
        None => Value::Empty,
    })
}

/// `TRIM <input>`: leading and trailing whitespace removed. EMPTY stays EMPTY.
pub fn trim(input: &Value) -> Value {
    match input {
        Value::Empty => Value::Empty,
        Value::Text(s) if s.trim().len() == s.len() => input.clone(),
        other => Value::Text(Arc::from(other.to_text().trim())),
    }
}

/// `SPLIT <input> USING "<sep>"`: a JSON array of the text pieces. An empty separator splits into
/// characters; EMPTY gives an empty array.
pub fn split(input: &Value, sep: &str) -> Value {
    let text: Cow<'_, str> = input.to_text();
    let items: Vec<serde_json::Value> = if text.is_empty() {
        Vec::new()
    } else if sep.is_empty() {
        text.chars()
            .map(|c| serde_json::Value::String(c.to_string()))
            .collect()
    } else {
        text.split(sep)
            .map(|p| serde_json::Value::String(p.to_string()))
            .collect()
    };
    Value::Json(Arc::new(serde_json::Value::Array(items)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Value {
        Value::text(s)
    }

    fn b(op: BinOp, x: Value, y: Value) -> Value {
        binary(op, &x, &y).expect("operator failed")
    }

    fn is_true(op: BinOp, x: Value, y: Value) -> bool {
        matches!(b(op, x, y), Value::Bool(true))
    }

    fn show(v: Value) -> String {
        format!("{}:{}", kind(&v), v.to_text())
    }

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Empty => "empty",
            Value::Text(_) => "text",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Json(_) => "json",
            Value::Bytes(_) => "bytes",
        }
    }

    #[test]
    fn addition_adds_numbers_and_numeric_text_and_concatenates_text() {
        assert_eq!(show(b(BinOp::Add, Value::Int(2), Value::Int(3))), "int:5");
        assert_eq!(show(b(BinOp::Add, t("2"), Value::Int(3))), "int:5");
        assert_eq!(show(b(BinOp::Add, t("2.5"), t("1"))), "float:3.5");
        assert_eq!(
            show(b(BinOp::Add, t("temp="), Value::Int(3))),
            "text:temp=3"
        );
        assert_eq!(
            show(b(BinOp::Add, Value::Float(21.5), t(" C"))),
            "text:21.5 C"
        );
        assert_eq!(show(b(BinOp::Add, t("line/"), t("7"))), "text:line/7");
        assert_eq!(show(b(BinOp::Add, t(""), Value::Int(5))), "text:5");
        assert_eq!(show(b(BinOp::Add, Value::Empty, Value::Int(5))), "int:5");
        assert_eq!(show(b(BinOp::Add, Value::Empty, t("x"))), "text:x");
        assert_eq!(show(b(BinOp::Add, Value::Empty, Value::Empty)), "int:0");
        assert_eq!(
            show(b(BinOp::Add, t("on="), Value::Bool(true))),
            "text:on=true"
        );
        let j = Value::from_json(json!({"a": 1}));
        assert_eq!(show(b(BinOp::Add, t("j="), j)), r#"text:j={"a":1}"#);
    }

    #[test]
    fn arithmetic_operators() {
        assert_eq!(show(b(BinOp::Sub, Value::Int(2), Value::Int(5))), "int:-3");
        assert_eq!(show(b(BinOp::Sub, t("10"), Value::Empty)), "int:10");
        assert_eq!(show(b(BinOp::Mul, t("2.5"), Value::Int(4))), "float:10");
        assert_eq!(show(b(BinOp::Div, Value::Int(8), Value::Int(2))), "int:4");
        assert_eq!(
            show(b(BinOp::Div, Value::Int(7), Value::Int(2))),
            "float:3.5"
        );
        assert_eq!(
            show(b(BinOp::Div, Value::Float(1.0), Value::Int(4))),
            "float:0.25"
        );
        assert_eq!(show(b(BinOp::Rem, Value::Int(7), Value::Int(3))), "int:1");
        assert_eq!(show(b(BinOp::Rem, Value::Int(-7), Value::Int(3))), "int:-1");
        assert_eq!(
            show(b(BinOp::Rem, Value::Float(7.5), Value::Int(2))),
            "float:1.5"
        );
        assert_eq!(
            show(b(BinOp::Rem, Value::Int(i64::MIN), Value::Int(-1))),
            "int:0"
        );
        assert_eq!(show(negate(&t("4")).unwrap()), "int:-4");
        assert_eq!(show(negate(&Value::Float(0.5)).unwrap()), "float:-0.5");
        assert!(matches!(negate(&t("x")), Err(ValueError::NotANumber(_))));
    }

    #[test]
    fn integer_overflow_promotes_to_float() {
        let v = b(BinOp::Add, Value::Int(i64::MAX), Value::Int(1));
        assert!(matches!(v, Value::Float(f) if f == i64::MAX as f64 + 1.0));
        let v = b(BinOp::Mul, Value::Int(i64::MAX), Value::Int(2));
        assert!(matches!(v, Value::Float(_)));
        let v = b(BinOp::Div, Value::Int(i64::MIN), Value::Int(-1));
        assert!(matches!(v, Value::Float(f) if f == -(i64::MIN as f64)));
        assert!(matches!(
            negate(&Value::Int(i64::MIN)).unwrap(),
            Value::Float(_)
        ));
    }

    #[test]
    fn division_and_remainder_by_zero_fail() {
        for op in [BinOp::Div, BinOp::Rem] {
            for zero in [Value::Int(0), Value::Float(0.0), t("0"), Value::Empty] {
                assert!(matches!(
                    binary(op, &Value::Int(1), &zero),
                    Err(ValueError::DivisionByZero)
                ));
            }
        }
    }

    #[test]
    fn arithmetic_on_non_numbers_fails_with_the_value() {
        let err = binary(BinOp::Mul, &t("warm"), &Value::Int(2)).unwrap_err();
        assert_eq!(err.to_string(), "expected a number, got text \"warm\"");
        assert!(binary(BinOp::Sub, &Value::Bool(true), &Value::Int(1)).is_err());
        assert!(binary(BinOp::Add, &Value::Bool(true), &Value::Int(1)).is_err());
        assert!(binary(BinOp::Div, &Value::from_json(json!([1])), &Value::Int(1)).is_err());
    }

    #[test]
    fn equality_rules() {
        assert!(is_true(BinOp::Eq, t("7"), Value::Int(7)));
        assert!(is_true(BinOp::Eq, t("7.0"), Value::Int(7)));
        assert!(is_true(BinOp::Eq, Value::Float(0.5), t(" .5")));
        assert!(is_true(BinOp::Eq, t("abc"), t("abc")));
        assert!(!is_true(BinOp::Eq, t("abc"), t("ABC")));
        assert!(is_true(BinOp::Eq, Value::Empty, Value::Empty));
        assert!(is_true(BinOp::Eq, Value::Empty, t("")));
        assert!(!is_true(BinOp::Eq, Value::Empty, Value::Int(0)));
        assert!(!is_true(BinOp::Eq, Value::Empty, t("0")));
        assert!(!is_true(BinOp::Eq, Value::Empty, Value::Bool(false)));
        assert!(is_true(BinOp::Eq, Value::Bool(true), t("TRUE")));
        assert!(is_true(BinOp::Eq, Value::Bool(false), Value::Int(0)));
        assert!(!is_true(BinOp::Eq, Value::Bool(true), t("yes")));
        assert!(is_true(
            BinOp::Eq,
            Value::from_json(json!({"a": [1]})),
            t(r#"{"a":[1]}"#)
        ));
        assert!(is_true(
            BinOp::Eq,
            Value::from_json(json!({"a": 1, "b": 2})),
            Value::from_json(json!({"b": 2, "a": 1}))
        ));
        assert!(is_true(BinOp::Ne, t("a"), t("b")));
        assert!(!is_true(BinOp::Ne, t("3"), Value::Float(3.0)));
        assert!(is_true(BinOp::Ne, Value::Empty, Value::Int(0)));
    }

    #[test]
    fn ordering_rules() {
        assert!(
            is_true(BinOp::Lt, t("9"), t("10")),
            "numeric text compares as numbers"
        );
        assert!(is_true(BinOp::Lt, t("abc"), t("abd")));
        assert!(
            is_true(BinOp::Lt, t("B"), t("a")),
            "text compares by byte order"
        );
        assert!(is_true(BinOp::Le, Value::Int(3), Value::Float(3.0)));
        assert!(is_true(BinOp::Gt, Value::Float(21.5), t("21")));
        assert!(is_true(BinOp::Ge, Value::Int(5), Value::Int(5)));
        assert!(!is_true(BinOp::Gt, Value::Int(4), Value::Int(5)));
        assert!(
            is_true(BinOp::Lt, Value::Empty, Value::Int(5)),
            "EMPTY is 0 against numbers"
        );
        assert!(is_true(BinOp::Gt, Value::Empty, Value::Int(-1)));
        assert!(
            is_true(BinOp::Lt, Value::Empty, t("a")),
            "EMPTY is \"\" against text"
        );
        assert!(is_true(BinOp::Lt, Value::Bool(false), Value::Bool(true)));
        let nan = Value::Float(f64::NAN);
        for op in [BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge] {
            assert!(!is_true(op, nan.clone(), Value::Int(1)));
        }
    }

    #[test]
    fn contains_starts_with_ends_with() {
        assert!(is_true(BinOp::Contains, t("temperature"), t("rat")));
        assert!(!is_true(BinOp::Contains, t("temperature"), t("xyz")));
        assert!(is_true(BinOp::Contains, Value::Int(12345), Value::Int(234)));
        assert!(is_true(
            BinOp::Contains,
            Value::from_json(json!([1, "a"])),
            t("1")
        ));
        assert!(!is_true(
            BinOp::Contains,
            Value::from_json(json!([1, "a"])),
            t("b")
        ));
        assert!(is_true(
            BinOp::Contains,
            Value::from_json(json!({"k": 0})),
            t("k")
        ));
        assert!(is_true(BinOp::StartsWith, t("sensor/1"), t("sensor")));
        assert!(!is_true(BinOp::StartsWith, t("sensor/1"), t("1")));
        assert!(is_true(BinOp::EndsWith, t("sensor/1"), Value::Int(1)));
        assert!(is_true(BinOp::StartsWith, t("x"), Value::Empty));
    }

    #[test]
    fn json_paths() {
        let doc = t(r#"{"a":{"b":{"c":21.5}},"list":[{"id":"x"},{"id":"y"}],"0":"zero","n":null}"#);
        assert_eq!(show(json_path(&doc, "a.b.c")), "float:21.5");
        assert_eq!(show(json_path(&doc, "list.1.id")), "text:y");
        assert_eq!(show(json_path(&doc, "list[0].id")), "text:x");
        assert_eq!(show(json_path(&doc, "0")), "text:zero");
        assert_eq!(show(json_path(&doc, "a.b")), r#"json:{"c":21.5}"#);
        assert_eq!(show(json_path(&doc, "a.x.c")), "empty:");
        assert_eq!(show(json_path(&doc, "list.5")), "empty:");
        assert_eq!(show(json_path(&doc, "list.id")), "empty:");
        assert_eq!(show(json_path(&doc, "n")), "empty:");
        assert_eq!(show(json_path(&t("not json"), "a")), "empty:");
        assert_eq!(show(json_path(&Value::Int(3), "a")), "empty:");
        let parsed = Value::from_json(json!({"a": [10, 20]}));
        assert_eq!(show(json_path(&parsed, "a[1]")), "int:20");
    }

    #[test]
    fn transforms() {
        assert_eq!(
            show(replace(&t("C"), &t("F"), &t("21C/22C"))),
            "text:21F/22F"
        );
        assert_eq!(
            show(replace(&t("."), &Value::Empty, &Value::Float(2.5))),
            "text:25"
        );
        assert_eq!(show(replace(&Value::Empty, &t("x"), &t("ab"))), "text:ab");
        assert_eq!(show(trim(&t("  hi \n"))), "text:hi");
        assert_eq!(show(trim(&Value::Empty)), "empty:");
        assert_eq!(show(split(&t("a,b,,c"), ",")), r#"json:["a","b","","c"]"#);
        assert_eq!(show(split(&t("ab"), "")), r#"json:["a","b"]"#);
        assert_eq!(show(split(&Value::Empty, ",")), "json:[]");
        let group = fancy_regex::Regex::new(r"temp=(\d+)").unwrap();
        assert_eq!(
            show(filter(&t("id=3 temp=41 ok"), &group).unwrap()),
            "text:41"
        );
        let whole = fancy_regex::Regex::new(r"\d+(?=C)").unwrap();
        assert_eq!(show(filter(&t("at 21C"), &whole).unwrap()), "text:21");
        assert_eq!(show(filter(&t("none"), &whole).unwrap()), "empty:");
    }

    #[test]
    fn a_regex_that_fails_at_run_time_is_an_error() {
        let re = fancy_regex::RegexBuilder::new(r"(a+)+\1b")
            .backtrack_limit(100)
            .build()
            .unwrap();
        let err = filter(&t(&"a".repeat(40)), &re).unwrap_err();
        assert!(matches!(err, ValueError::Regex(_)), "{err:?}");
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Empty),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            "[a-z0-9 .eE+-]{0,6}".prop_map(Value::text),
            proptest::collection::vec(any::<i32>(), 0..3)
                .prop_map(|v| Value::from_json(serde_json::json!(v))),
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(|b| Value::Bytes(b.into())),
        ]
    }

    proptest::proptest! {
        #[test]
        fn operators_never_panic_and_comparisons_are_consistent(a in any_value(), b in any_value()) {
            for op in [
                BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Rem, BinOp::Eq, BinOp::Ne,
                BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge, BinOp::Contains, BinOp::StartsWith,
                BinOp::EndsWith, BinOp::And, BinOp::Or,
            ] {
                let _ = binary(op, &a, &b);
            }
            let _ = negate(&a);
            proptest::prop_assert_eq!(loose_eq(&a, &b), loose_eq(&b, &a));
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).map(Ordering::reverse));
            if loose_eq(&a, &b) && a.number().is_some() && b.number().is_some() {
                proptest::prop_assert_eq!(compare(&a, &b), Some(Ordering::Equal));
            }
        }
    }
}
