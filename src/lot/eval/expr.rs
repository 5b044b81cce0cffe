//! # lot::eval::expr: the evaluation frame and expressions (spec §5)
//!
//! A [`Frame`] is one execution: the context, the variables (`SET`, inputs, call returns), how a
//! `+` in a named topic is filled, and the trigger payload parsed as JSON at most once (so
//! several `GET JSON ... IN PAYLOAD` parse the payload once).
//!
//! Decisions: reading a variable never set gives EMPTY (a variable may be set in only one IF
//! branch); `PAYLOAD` outside a message-triggered execution is EMPTY; `TOPIC POSITION n` past the
//! last level is EMPTY; `RANDOM INT BETWEEN a AND b` includes both ends, `RANDOM DOUBLE` is in
//! `[a, b)`, and reversed bounds are swapped.

use std::borrow::Cow;
use std::sync::Arc;

use rand::Rng;

use super::{EvalError, Located, at, topic};
use crate::lot::ast::{BinOp, Expr, ExprKind, UnOp, ValueType};
use crate::lot::context::Context;
use crate::lot::timefmt;
use crate::lot::value::{Value, ValueType as Cast, ops};

/// How a `+` in a topic named by the definition is filled from the triggering topic.
pub(crate) enum Fill {
    /// Actions (spec §8): level k from level k.
    Positional,
    /// Models (spec §3): the i-th `+` from the trigger topic level at `levels[i]`.
    InOrder(Vec<usize>),
}

/// One execution of an action body or of a model's fields.
pub(crate) struct Frame<'ast, 'c, C: Context + ?Sized> {
    pub ctx: &'c mut C,
    vars: Vec<(&'ast str, Value)>,
    fill: Fill,
    /// The trigger payload parsed as JSON: None = not tried yet, Some(None) = not JSON.
    payload_json: Option<Option<Arc<serde_json::Value>>>,
}

impl<'ast, 'c, C: Context + ?Sized> Frame<'ast, 'c, C> {
    pub fn new(ctx: &'c mut C, fill: Fill) -> Self {
        Frame {
            ctx,
            vars: Vec::new(),
            fill,
            payload_json: None,
        }
    }

    pub fn set(&mut self, name: &'ast str, value: Value) {
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Value {
        self.vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// An expression as text, borrowing string literals instead of copying them.
    pub fn text<'e>(&mut self, e: &'e Expr) -> Result<Cow<'e, str>, Located> {
        match &e.kind {
            ExprKind::Text(s) => Ok(Cow::Borrowed(s)),
            _ => Ok(Cow::Owned(self.eval(e)?.to_text().into_owned())),
        }
    }

    /// A topic named by the definition: evaluated, its `+` filled, checked to be a topic name.
    pub fn topic<'e>(&mut self, e: &'e Expr) -> Result<Cow<'e, str>, Located> {
        let raw = self.text(e)?;
        let line = e.span.line;
        let filled = at(line, self.fill_topic(raw))?;
        at(line, topic::check_name(&filled))?;
        Ok(filled)
    }

    /// Fills the `+` levels of `raw` from the triggering topic (see [`Fill`]).
    pub fn fill_topic<'t>(&self, raw: Cow<'t, str>) -> Result<Cow<'t, str>, EvalError> {
        let trigger = self.ctx.trigger_topic();
        match &self.fill {
            Fill::Positional => topic::fill_positional(raw, trigger),
            Fill::InOrder(levels) => match raw {
                Cow::Borrowed(s) => topic::fill_in_order(s, trigger, levels),
                Cow::Owned(s) => Ok(Cow::Owned(
                    topic::fill_in_order(&s, trigger, levels)?.into_owned(),
                )),
            },
        }
    }

    fn payload(&self) -> Value {
        self.ctx
            .trigger_payload()
            .map(Value::from_payload)
            .unwrap_or_default()
    }

    fn payload_json(&mut self) -> Option<Arc<serde_json::Value>> {
        if self.payload_json.is_none() {
            let parsed = self
                .ctx
                .trigger_payload()
                .and_then(|p| serde_json::from_slice(p).ok())
                .map(Arc::new);
            self.payload_json = Some(parsed);
        }
        self.payload_json.clone().flatten()
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Value, Located> {
        let line = e.span.line;
        Ok(match &e.kind {
            ExprKind::Text(s) => Value::text(s.as_str()),
            ExprKind::Int(i) => Value::Int(*i),
            ExprKind::Float(f) => Value::Float(*f),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Empty => Value::Empty,
            ExprKind::Var(name) => self.get(name),
            ExprKind::Object(entries) => {
                let mut map = serde_json::Map::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.value.clone(), self.eval(v)?.to_json());
                }
                Value::Json(Arc::new(serde_json::Value::Object(map)))
            }
            ExprKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?.to_json());
                }
                Value::Json(Arc::new(serde_json::Value::Array(out)))
            }
            ExprKind::Payload(c) => cast(line, self.payload(), *c)?,
            ExprKind::TopicPosition(n) => {
                let trigger = self.ctx.trigger_topic();
                trigger
                    .and_then(|t| topic::level(t, *n))
                    .map(Value::text)
                    .unwrap_or_default()
            }
            ExprKind::GetTopic { topic: t, cast: c } => {
                let name = self.topic(t)?;
                let v = self
                    .ctx
                    .get_topic(&name)
                    .map(|p| Value::from_payload(&p))
                    .unwrap_or_default();
                cast(line, v, *c)?
            }
            ExprKind::GetJson {
                path,
                input,
                cast: c,
            } => {
                let v = if matches!(input.kind, ExprKind::Payload(None)) {
                    match self.payload_json() {
                        Some(doc) => ops::json_path_in(&doc, path),
                        None => Value::Empty,
                    }
                } else {
                    ops::json_path(&self.eval(input)?, path)
                };
                cast(line, v, *c)?
            }
            ExprKind::GetEnv(name) => self.ctx.env(name).map(Value::text).unwrap_or_default(),
            ExprKind::GetSecret(name) => self.ctx.secret(name).map(Value::text).unwrap_or_default(),
            ExprKind::Timestamp(fmt) => timefmt::render(fmt, self.ctx.now()),
            ExprKind::RandomUuid => {
                let mut bytes = [0u8; 16];
                self.ctx.rng().fill_bytes(&mut bytes);
                Value::text(
                    uuid::Builder::from_random_bytes(bytes)
                        .into_uuid()
                        .to_string(),
                )
            }
            ExprKind::RandomInt { low, high } => {
                let (lo, hi) = (self.eval(low)?, self.eval(high)?);
                let (lo, hi) = match (lo.cast(Cast::Int), hi.cast(Cast::Int)) {
                    (Ok(Value::Int(a)), Ok(Value::Int(b))) => (a.min(b), a.max(b)),
                    _ => return Err((line, EvalError::BadRange(lo.describe(), hi.describe()))),
                };
                Value::Int(self.ctx.rng().gen_range(lo..=hi))
            }
            ExprKind::RandomDouble { low, high } => {
                let (lo, hi) = (self.eval(low)?, self.eval(high)?);
                let (a, b) = match (lo.cast(Cast::Double), hi.cast(Cast::Double)) {
                    // The width must be finite too: rand refuses (panics on) an infinite range.
                    (Ok(Value::Float(a)), Ok(Value::Float(b))) if (a - b).is_finite() => {
                        (a.min(b), a.max(b))
                    }
                    _ => return Err((line, EvalError::BadRange(lo.describe(), hi.describe()))),
                };
                Value::Float(if a == b {
                    a
                } else {
                    self.ctx.rng().gen_range(a..b)
                })
            }
            ExprKind::Binary {
                op: BinOp::And,
                lhs,
                rhs,
            } => Value::Bool(self.eval(lhs)?.truthy() && self.eval(rhs)?.truthy()),
            ExprKind::Binary {
                op: BinOp::Or,
                lhs,
                rhs,
            } => Value::Bool(self.eval(lhs)?.truthy() || self.eval(rhs)?.truthy()),
            ExprKind::Binary { op, lhs, rhs } => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                at(line, ops::binary(*op, &a, &b))?
            }
            ExprKind::Unary {
                op: UnOp::Not,
                operand,
            } => Value::Bool(!self.eval(operand)?.truthy()),
            ExprKind::Unary {
                op: UnOp::Neg,
                operand,
            } => at(line, ops::negate(&self.eval(operand)?))?,
            ExprKind::Replace { find, with, input } => {
                let (f, w, i) = (self.eval(find)?, self.eval(with)?, self.eval(input)?);
                ops::replace(&f, &w, &i)
            }
            ExprKind::Filter { input, regex } => {
                at(line, ops::filter(&self.eval(input)?, &regex.regex))?
            }
            ExprKind::Trim(input) => ops::trim(&self.eval(input)?),
            ExprKind::Split { input, separator } => ops::split(&self.eval(input)?, separator),
            ExprKind::If {
                branches,
                otherwise,
            } => {
                for (cond, value) in branches {
                    if self.eval(cond)?.truthy() {
                        return self.eval(value);
                    }
                }
                self.eval(otherwise)?
            }
            ExprKind::ClientId => self.ctx.client_id().map(Value::text).unwrap_or_default(),
            ExprKind::User => self.ctx.user().map(Value::text).unwrap_or_default(),
        })
    }
}

fn cast(line: u32, v: Value, to: Option<ValueType>) -> Result<Value, Located> {
    match to {
        None => Ok(v),
        Some(t) => at(line, v.cast(t)),
    }
}
