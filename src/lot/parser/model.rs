//! # lot::parser::model: `DEFINE MODEL` (spec §3)
//!
//! The header is the DEFINE line plus any following lines that do not start with ADD
//! (`model_head`); each `ADD` line is a `field_line`, and lines indented below an `ADD ARRAY` are
//! the element's fields. Checks here: field topics are valid filters, the model topic is a valid
//! topic or filter, QoS is 0-2, field names are unique, only ARRAY fields have nested fields.

use super::block::{self, Node};
use super::expr::parse_any;
use super::{Cx, Pair, Rule, parse_slice};
use crate::lot::ast::{FieldSource, FieldType, Model, ModelField, Spanned};
use crate::lot::error::LotError;
use crate::lot::source::{DefLines, Source};
use crate::lot::topic;

type R<T> = Result<T, LotError>;

/// Every bad `ADD` line is reported, not only the first.
pub(crate) fn parse(src: &Source<'_>, def: &DefLines) -> Result<Model, Vec<LotError>> {
    let one = |e: LotError| vec![e];
    src.check_indentation(def).map_err(one)?;
    let lines = &def.lines;
    let mut h = 1;
    while h < lines.len() && src.first_word(&lines[h]) != "ADD" {
        h += 1;
    }
    let (pair, cx) =
        parse_slice(src, Rule::model_head, lines[0].start, lines[h - 1].end).map_err(one)?;
    let mut model = parse_model_head(&cx, pair).map_err(one)?;
    let tree = block::build(src, &lines[h..]).map_err(one)?;
    let mut errs = Vec::new();
    model.fields = parse_fields(src, &tree, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    check_wildcards(src, &model).map_err(one)?;
    if let Some(last) = lines.last() {
        model.span = src.span(lines[0].start, last.end);
    }
    Ok(model)
}

/// The model's `+` are filled in order from the levels the trigger's `+` matched, so every
/// trigger must have at least as many `+` as the model topic and each other field topic; `#`
/// only makes sense in a trigger filter (the model topic is where it publishes, the other field
/// topics are single topics whose last value is read).
fn check_wildcards(src: &Source<'_>, model: &Model) -> R<()> {
    let plus = |t: &str| t.split('/').filter(|l| *l == "+").count();
    let topic_of = |f: &ModelField| match &f.source {
        Some(FieldSource::Topic(t)) => Some(t.clone()),
        _ => None,
    };
    if let Some(t) = &model.topic
        && t.value.contains('#')
    {
        return Err(src.error_span(
            t.span,
            "a model topic may hold + (one model per match) but not #",
        ));
    }
    let triggers: Vec<Spanned<String>> = model
        .fields
        .iter()
        .filter(|f| f.trigger)
        .filter_map(topic_of)
        .collect();
    let mut others: Vec<Spanned<String>> = model
        .fields
        .iter()
        .filter(|f| !f.trigger)
        .filter_map(topic_of)
        .collect();
    for t in &others {
        if t.value.contains('#') {
            return Err(src.error_span(
                t.span,
                "# is only allowed in an AS TRIGGER field's topic (this field reads one topic)",
            ));
        }
    }
    others.extend(model.topic.clone());
    for trig in &triggers {
        for other in &others {
            if plus(&other.value) > plus(&trig.value) {
                return Err(src.error_span(
                    other.span,
                    format!(
                        "\"{}\" has more + than the trigger topic \"{}\": each + is filled, in \
                         order, from a + the trigger matched",
                        other.value, trig.value
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn parse_model_head(cx: &Cx<'_>, pair: Pair<'_>) -> R<Model> {
    let span = cx.span(&pair);
    let mut model = Model {
        name: Spanned {
            value: String::new(),
            span,
        },
        collapsed: false,
        from: None,
        topic: None,
        retain: false,
        qos: 0,
        fields: Vec::new(),
        span,
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::def_name => model.name = cx.name(p),
            Rule::k_collapsed => model.collapsed = true,
            Rule::k_retain => model.retain = true,
            Rule::model_from => {
                if let Some(n) = p.into_inner().nth(1) {
                    model.from = Some(cx.name(n));
                }
            }
            Rule::model_topic => {
                if let Some(s) = p.into_inner().nth(1) {
                    let t = cx.string(s.clone());
                    topic::check_filter(&t.value).map_err(|m| cx.error(&s, m))?;
                    model.topic = Some(t);
                }
            }
            Rule::model_qos => model.qos = parse_qos(cx, p)?,
            _ => {}
        }
    }
    Ok(model)
}

fn parse_qos(cx: &Cx<'_>, pair: Pair<'_>) -> R<u8> {
    let text = pair.as_str();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    match digits.parse::<u8>() {
        Ok(q) if q <= 2 => Ok(q),
        _ => Err(cx.error(&pair, "QoS must be 0, 1 or 2")),
    }
}

/// The fields of one level; a bad line is recorded in `errs` and skipped.
fn parse_fields(src: &Source<'_>, nodes: &[Node], errs: &mut Vec<LotError>) -> Vec<ModelField> {
    let mut fields: Vec<ModelField> = Vec::new();
    for node in nodes {
        match parse_field_node(src, node, &fields, errs) {
            Ok(field) => fields.push(field),
            Err(e) => errs.push(e),
        }
    }
    fields
}

fn parse_field_node(
    src: &Source<'_>,
    node: &Node,
    before: &[ModelField],
    errs: &mut Vec<LotError>,
) -> R<ModelField> {
    let (pair, cx) = parse_slice(src, Rule::field_line, node.line.start, node.line.end)?;
    let mut field = parse_field_line(&cx, pair)?;
    if before.iter().any(|f| f.name.value == field.name.value) {
        return Err(src.error_span(
            field.name.span,
            format!(
                "field \"{}\" is defined twice in this model",
                field.name.value
            ),
        ));
    }
    if !node.children.is_empty() {
        if field.ty != Some(FieldType::Array) {
            return Err(src.error_at(
                node.children[0].line.start,
                "only an ADD ARRAY field can have fields indented below it",
            ));
        }
        field.elements = parse_fields(src, &node.children, errs);
    }
    Ok(field)
}

fn parse_field_line(cx: &Cx<'_>, pair: Pair<'_>) -> R<ModelField> {
    let span = cx.span(&pair);
    let mut field = ModelField {
        ty: None,
        name: Spanned {
            value: String::new(),
            span,
        },
        source: None,
        trigger: false,
        elements: Vec::new(),
        span,
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::field_type => field.ty = Some(parse_field_type(p.as_str())),
            Rule::bad_type => {
                return Err(cx.error(
                    &p,
                    format!(
                        "unknown field type {}: use STRING, INT, DOUBLE, BOOL, TIMESTAMP, OBJECT \
                         or ARRAY",
                        p.as_str()
                    ),
                ));
            }
            Rule::field_name => field.name = cx.name(p),
            Rule::field_source => field.source = Some(parse_field_source(cx, p)?),
            Rule::as_trigger => field.trigger = true,
            _ => {}
        }
    }
    if field.trigger && !matches!(field.source, Some(FieldSource::Topic(_))) {
        return Err(cx.src.error_span(
            field.name.span,
            "AS TRIGGER needs a TOPIC source: ADD \"x\" WITH TOPIC \"a/b\" AS TRIGGER",
        ));
    }
    Ok(field)
}

fn parse_field_type(s: &str) -> FieldType {
    match s.to_ascii_uppercase().as_str() {
        "STRING" => FieldType::String,
        "INT" => FieldType::Int,
        // NUMBER is accepted as Coreflux's templates write it; it is a DOUBLE.
        "DOUBLE" | "NUMBER" => FieldType::Double,
        "BOOL" => FieldType::Bool,
        "TIMESTAMP" => FieldType::Timestamp,
        "OBJECT" => FieldType::Object,
        _ => FieldType::Array,
    }
}

fn parse_field_source(cx: &Cx<'_>, pair: Pair<'_>) -> R<FieldSource> {
    let span = cx.span(&pair);
    let Some(inner) = pair.into_inner().next() else {
        return Err(cx.src.error_span(span, "expected a value"));
    };
    if inner.as_rule() == Rule::topic_source {
        let Some(s) = inner.into_inner().nth(1) else {
            return Err(cx.src.error_span(span, "expected a topic"));
        };
        let t = cx.string(s.clone());
        topic::check_filter(&t.value).map_err(|m| cx.error(&s, m))?;
        return Ok(FieldSource::Topic(t));
    }
    Ok(FieldSource::Expr(parse_any(cx, inner)?))
}
