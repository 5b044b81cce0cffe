//! Value conversions: numbers from text, rendering, casts, JSON, model field types.

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
    assert_eq!(format!("{}/{}", Value::Int(3), Value::Float(2.5)), "3/2.5");
}

#[test]
fn payloads_are_text_when_utf8_and_bytes_otherwise() {
    assert!(matches!(Value::from_payload(&Bytes::from("héllo")), Value::Text(s) if &*s == "héllo"));
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
    assert!(matches!(Value::text("7").cast(ValueType::Double), Ok(Value::Float(f)) if f == 7.0));
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
    assert!(matches!(Value::Int(5).cast(ValueType::Bytes), Ok(Value::Bytes(b)) if &b[..] == b"5"));
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
