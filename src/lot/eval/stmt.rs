//! # lot::eval::stmt: action bodies (spec §4)
//!
//! [`run_action`] binds the INPUTs, runs the statements in order and collects the OUTPUTs. The
//! first failing statement stops the action with a [`RuntimeError`] naming the action and line.
//!
//! Decisions: an input the caller does not give is EMPTY, one the action does not declare is
//! ignored; an input is converted to its declared type (a failed conversion is an error at the
//! INPUT line). `PUBLISH MODEL` fills each model field from its `field = expr` line, else from the
//! field's own source in the model, else `null`; a value that does not convert to its field's type
//! stops the action (unlike a MODEL publishing on its own, which writes `null` and goes on); an
//! error in a field's own model source is reported on the PUBLISH MODEL line as `Model.field`.

use super::expr::{Fill, Frame};
use super::model::{field_json, ordered_object, resolve_fields};
use super::{EvalError, Located, Outputs, RuntimeError, at};
use crate::lot::ast::{
    Action, Expr, FieldAssign, FieldSource, InputType, ModelField, Stmt, StmtKind, ValueType,
};
use crate::lot::context::Context;
use crate::lot::value::Value;

/// Runs `action` with `inputs` (name, value) and returns its OUTPUT variables in RETURN order.
/// The trigger (topic, payload) is read from `ctx`.
pub fn run_action<C: Context + ?Sized>(
    action: &Action,
    ctx: &mut C,
    inputs: &[(String, Value)],
) -> Result<Outputs, RuntimeError> {
    let name = action.name.value.as_str();
    let located = |(line, error): Located| RuntimeError {
        definition: name.to_string(),
        line,
        error,
    };
    let mut frame = Frame::new(ctx, Fill::Positional);
    for input in &action.inputs {
        let given = inputs
            .iter()
            .find(|(n, _)| *n == input.name.value)
            .map(|(_, v)| v);
        let value = match given {
            None => Value::Empty,
            Some(v) => v.cast(input_cast(input.ty)).map_err(|e| {
                located((
                    input.span.line,
                    EvalError::Input {
                        input: input.name.value.clone(),
                        error: Box::new(e.into()),
                    },
                ))
            })?,
        };
        frame.set(&input.name.value, value);
    }
    block(&mut frame, &action.body).map_err(located)?;
    Ok(action
        .outputs
        .iter()
        .map(|o| (o.value.clone(), frame.get(&o.value)))
        .collect())
}

fn input_cast(ty: InputType) -> ValueType {
    match ty {
        InputType::String => ValueType::String,
        InputType::Int => ValueType::Int,
        InputType::Double => ValueType::Double,
        InputType::Bool => ValueType::Bool,
        InputType::Json => ValueType::Json,
    }
}

fn block<'ast, C: Context + ?Sized>(
    frame: &mut Frame<'ast, '_, C>,
    body: &'ast [Stmt],
) -> Result<(), Located> {
    for s in body {
        stmt(frame, s)?;
    }
    Ok(())
}

fn stmt<'ast, C: Context + ?Sized>(
    frame: &mut Frame<'ast, '_, C>,
    s: &'ast Stmt,
) -> Result<(), Located> {
    let line = s.span.line;
    match &s.kind {
        StmtKind::Set { name, value } => {
            let v = frame.eval(value)?;
            frame.set(&name.value, v);
        }
        StmtKind::PublishTopic { topic, value } => {
            let t = frame.topic(topic)?;
            let payload = frame.eval(value)?.to_payload();
            frame.ctx.publish(&t, payload, false, 0);
        }
        StmtKind::KeepTopic { topic, value } => {
            let t = frame.topic(topic)?;
            let payload = frame.eval(value)?.to_payload();
            frame.ctx.keep_topic(&t, payload);
        }
        StmtKind::PublishModel {
            model,
            topic,
            fields,
        } => publish_model(frame, line, &model.value, topic, fields)?,
        StmtKind::If {
            branches,
            otherwise,
        } => {
            for (cond, body) in branches {
                if frame.eval(cond)?.truthy() {
                    return block(frame, body);
                }
            }
            if let Some(body) = otherwise {
                block(frame, body)?;
            }
        }
        StmtKind::CallAction {
            name,
            args,
            returns,
        } => {
            let mut inputs = Vec::with_capacity(args.len());
            for a in args {
                inputs.push((a.name.value.clone(), frame.eval(&a.value)?));
            }
            let outputs = at(line, frame.ctx.call_action(&name.value, inputs))?;
            for r in returns {
                let v = outputs
                    .iter()
                    .find(|(n, _)| *n == r.value)
                    .map(|(_, v)| v.clone());
                frame.set(&r.value, v.unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn publish_model<'ast, C: Context + ?Sized>(
    frame: &mut Frame<'ast, '_, C>,
    line: u32,
    name: &str,
    topic: &'ast Expr,
    assigns: &'ast [FieldAssign],
) -> Result<(), Located> {
    let model = frame
        .ctx
        .model(name)
        .ok_or_else(|| (line, EvalError::UnknownModel(name.to_string())))?;
    let chain = at(line, resolve_fields(&model, &*frame.ctx))?;
    let fields: Vec<_> = chain.fields();
    if let Some(a) = assigns
        .iter()
        .find(|a| !fields.iter().any(|f| f.name.value == a.name.value))
    {
        let unknown = EvalError::UnknownField {
            model: name.to_string(),
            field: a.name.value.clone(),
        };
        return Err((a.span.line, unknown));
    }
    let t = frame.topic(topic)?;
    let mut out = Vec::with_capacity(fields.len());
    for f in &fields {
        let field_error = |l, error, qualified: bool| {
            let field = if qualified {
                format!("{name}.{}", f.name.value)
            } else {
                f.name.value.clone()
            };
            (
                l,
                EvalError::Field {
                    field,
                    error: Box::new(error),
                },
            )
        };
        let json = match assigns.iter().find(|a| a.name.value == f.name.value) {
            Some(a) => {
                let v = frame.eval(&a.value)?;
                field_json(f, &v).map_err(|e| field_error(a.span.line, e, false))?
            }
            // The model's own source: its errors are reported on this PUBLISH MODEL line, with
            // the field named `Model.field` so the user knows where to look.
            None => model_source(frame, f)
                .and_then(|v| field_json(f, &v))
                .map_err(|e| field_error(line, e, true))?,
        };
        out.push((f.name.value.as_str(), json));
    }
    let payload = ordered_object(&out);
    frame
        .ctx
        .publish(&t, payload.into(), model.retain, model.qos);
    Ok(())
}

/// The value of a model field from its own source in the model (EMPTY when it has none).
fn model_source<C: Context + ?Sized>(
    frame: &mut Frame<'_, '_, C>,
    f: &ModelField,
) -> Result<Value, EvalError> {
    match &f.source {
        None => Ok(Value::Empty),
        Some(FieldSource::Expr(e)) => frame.eval(e).map_err(|(_, e)| e),
        Some(FieldSource::Topic(src)) => {
            let name = frame.fill_topic(src.value.as_str().into())?;
            Ok(frame
                .ctx
                .get_topic(&name)
                .map(|p| Value::from_payload(&p))
                .unwrap_or_default())
        }
    }
}
