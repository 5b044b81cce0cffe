//! # lot::eval::model: a MODEL's JSON object for one trigger message (spec §3)
//!
//! [`eval_model`] evaluates every field (parents' first, `FROM`), converts each to its type, and
//! returns the object in definition order with the filled model topic. A field that fails gives
//! `null` and an error line; the model keeps running.
//!
//! Decisions: a field with no source, or whose topic was never seen, is `null` without an error;
//! a `+` in field and model topics is filled in order from the levels the trigger filter's `+`
//! matched; a child field with the name of a parent field replaces it in the parent's position;
//! an `ADD ARRAY` with element fields maps each item of its JSON array value: object items keep
//! the element fields (typed, missing ones `null`), scalar items are converted to the type of a
//! single element field.

use std::sync::Arc;

use super::expr::{Fill, Frame};
use super::{EvalError, RuntimeError, topic};
use crate::lot::ast::{FieldSource, FieldType, Model, ModelField};
use crate::lot::context::Context;
use crate::lot::value::{Value, ValueError};

/// How many `FROM` levels are followed (a cycle is refused by the checker; this bounds it anyway).
const MAX_PARENTS: usize = 16;

/// The result of [`eval_model`].
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Where to publish: the model topic with its `+` filled; None for a schema-only model
    /// (COLLAPSED or no WITH TOPIC) or when the topic could not be filled (see `errors`).
    pub topic: Option<String>,
    /// The fields in definition order.
    pub fields: Vec<(String, serde_json::Value)>,
    /// One per field that failed, for `$SYS/Coreflux/Models/<Name>/Error`.
    pub errors: Vec<RuntimeError>,
    pub retain: bool,
    pub qos: u8,
}

impl ModelOutput {
    /// The JSON object text to publish, fields in definition order.
    pub fn payload(&self) -> String {
        let fields: Vec<(&str, serde_json::Value)> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        ordered_object(&fields)
    }
}

/// The model's own field (not a parent's) whose `TOPIC` source is an `AS TRIGGER` filter matching
/// `topic`: the runtime evaluates the model when this is Some. See [`trigger_filters`] for FROM.
pub fn trigger_field<'m>(model: &'m Model, topic: &str) -> Option<&'m ModelField> {
    model.fields.iter().find(|f| match (&f.source, f.trigger) {
        (Some(FieldSource::Topic(filter)), true) => topic::matches(&filter.value, topic),
        _ => false,
    })
}

/// Every `AS TRIGGER` topic filter of the model, parents included (for the runtime's index of
/// which topics start which models). `lookup` finds deployed models by name.
pub fn trigger_filters(model: &Model, lookup: &dyn Fn(&str) -> Option<Arc<Model>>) -> Vec<String> {
    let parents = parents(model, lookup).unwrap_or_default();
    let chain = FieldChain {
        own: model,
        parents,
    };
    chain
        .fields()
        .into_iter()
        .filter_map(|f| match (&f.source, f.trigger) {
            (Some(FieldSource::Topic(t)), true) => Some(t.value.clone()),
            _ => None,
        })
        .collect()
}

/// Evaluates `model` for the trigger message in `ctx` (`trigger_topic` / `trigger_payload`).
pub fn eval_model<C: Context + ?Sized>(model: &Model, ctx: &mut C) -> ModelOutput {
    let name = &model.name.value;
    let error = |line, error| RuntimeError {
        definition: name.clone(),
        line,
        error,
    };
    let mut out = ModelOutput {
        topic: None,
        fields: Vec::new(),
        errors: Vec::new(),
        retain: model.retain,
        qos: model.qos,
    };
    let chain = match parents(model, &|n| ctx.model(n)) {
        Ok(parents) => FieldChain {
            own: model,
            parents,
        },
        Err(e) => {
            out.errors.push(error(model.span.line, e));
            return out;
        }
    };
    let fields = chain.fields();
    // The trigger field and which levels of the trigger topic its `+` matched.
    let mut levels = Vec::new();
    let trigger = ctx.trigger_topic().and_then(|t| {
        fields
            .iter()
            .copied()
            .find(|f| match (&f.source, f.trigger) {
                (Some(FieldSource::Topic(filter)), true) => {
                    levels.clear();
                    topic::captures(&filter.value, t, |i| levels.push(i))
                }
                _ => false,
            })
    });
    let mut frame = Frame::new(ctx, Fill::InOrder(levels));
    for f in &fields {
        let value = match &f.source {
            None => Ok(Value::Empty),
            Some(FieldSource::Topic(_)) if trigger.is_some_and(|t| std::ptr::eq(t, *f)) => {
                Ok(frame
                    .ctx
                    .trigger_payload()
                    .map(Value::from_payload)
                    .unwrap_or_default())
            }
            Some(FieldSource::Topic(src)) => frame
                .fill_topic(src.value.as_str().into())
                .map(|t| {
                    frame
                        .ctx
                        .get_topic(&t)
                        .map(|p| Value::from_payload(&p))
                        .unwrap_or_default()
                })
                .map_err(|e| (src.span.line, e)),
            Some(FieldSource::Expr(e)) => frame.eval(e),
        };
        let json = value.and_then(|v| field_json(f, &v).map_err(|e| (f.span.line, e)));
        let json = json.unwrap_or_else(|(line, e)| {
            out.errors.push(error(
                line,
                EvalError::Field {
                    field: f.name.value.clone(),
                    error: Box::new(e),
                },
            ));
            serde_json::Value::Null
        });
        out.fields.push((f.name.value.clone(), json));
    }
    if let (false, Some(t)) = (model.collapsed, &model.topic) {
        match frame.fill_topic(t.value.as_str().into()) {
            Ok(filled) => out.topic = Some(filled.into_owned()),
            Err(e) => out.errors.push(error(t.span.line, e)),
        }
    }
    out
}

/// A model with its `FROM` parents resolved (kept alive here so fields can be borrowed).
pub(crate) struct FieldChain<'m> {
    own: &'m Model,
    /// Root ancestor first.
    parents: Vec<Arc<Model>>,
}

impl FieldChain<'_> {
    /// The fields in output order: ancestors' first; a redefined name keeps its first position.
    pub fn fields(&self) -> Vec<&ModelField> {
        let mut out: Vec<&ModelField> = Vec::new();
        let all = self
            .parents
            .iter()
            .map(|p| &**p)
            .chain(std::iter::once(self.own));
        for f in all.flat_map(|m| m.fields.iter()) {
            match out.iter_mut().find(|o| o.name.value == f.name.value) {
                Some(slot) => *slot = f,
                None => out.push(f),
            }
        }
        out
    }
}

/// Resolves the `FROM` chain of `model` through the context.
pub(crate) fn resolve_fields<'m, C: Context + ?Sized>(
    model: &'m Model,
    ctx: &C,
) -> Result<FieldChain<'m>, EvalError> {
    Ok(FieldChain {
        own: model,
        parents: parents(model, &|n| ctx.model(n))?,
    })
}

fn parents(
    model: &Model,
    lookup: &dyn Fn(&str) -> Option<Arc<Model>>,
) -> Result<Vec<Arc<Model>>, EvalError> {
    let mut out: Vec<Arc<Model>> = Vec::new();
    let mut next = model.from.as_ref().map(|f| f.value.clone());
    while let Some(name) = next {
        if out.len() == MAX_PARENTS {
            break;
        }
        let parent = lookup(&name).ok_or(EvalError::UnknownModel(name))?;
        next = parent.from.as_ref().map(|f| f.value.clone());
        out.push(parent);
    }
    out.reverse();
    Ok(out)
}

/// A value converted to field `f`'s type (and element fields, for an ARRAY).
pub(crate) fn field_json(f: &ModelField, v: &Value) -> Result<serde_json::Value, EvalError> {
    if f.elements.is_empty() || f.ty != Some(FieldType::Array) {
        return Ok(v.to_field(f.ty)?);
    }
    let items = match v.to_field(Some(FieldType::Array))? {
        serde_json::Value::Array(items) => items,
        other => return Ok(other),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        out.push(match (item, f.elements.as_slice()) {
            (serde_json::Value::Object(obj), elements) => {
                let mut map = serde_json::Map::new();
                for e in elements {
                    let ev = obj
                        .get(&e.name.value)
                        .map(Value::from_json_ref)
                        .unwrap_or_default();
                    map.insert(e.name.value.clone(), field_json(e, &ev)?);
                }
                serde_json::Value::Object(map)
            }
            (scalar, [single]) => field_json(single, &Value::from_json_ref(scalar))?,
            (scalar, _) => {
                let value = Value::from_json_ref(scalar).describe();
                return Err(ValueError::BadCast {
                    value,
                    target: "an element object",
                }
                .into());
            }
        });
    }
    Ok(serde_json::Value::Array(out))
}

/// `{"k":v,...}` with the keys in the given order (serde_json's map would sort them).
pub(crate) fn ordered_object(fields: &[(&str, serde_json::Value)]) -> String {
    let mut s = String::with_capacity(16 * fields.len() + 2);
    s.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::Value::String((*k).to_string()).to_string());
        s.push(':');
        s.push_str(&v.to_string());
    }
    s.push('}');
    s
}
