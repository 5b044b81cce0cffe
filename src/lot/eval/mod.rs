//! # lot::eval: running compiled LOT definitions against a [`Context`]
//!
//! Owns the meaning of expressions, action statements, model fields and rule conditions. Reads
//! the AST ([`super::ast`]) and computes with [`super::value`]; everything it needs from the hub
//! goes through [`Context`], so it runs without a broker. Must not touch: parsing, I/O, the broker.
//!
//! Entry points:
//! - [`run_action`]: an ACTION's body (ON TOPIC, schedule, called), returning its OUTPUTs;
//! - [`eval_model`]: a MODEL's JSON object for one trigger message ([`ModelOutput`]);
//! - [`decide`] / [`condition_holds`]: a RULE's ALLOW / DENY / nothing for a [`RuleSubject`].
//!
//! Start reading at [`expr`] (the `Frame` every evaluation runs in), then [`stmt`].
//!
//! Errors: a statement that fails stops the action; the [`RuntimeError`] carries the definition's
//! name and the source line (`Alarm:12: division by zero`), ready for
//! `$SYS/Coreflux/Actions/<Name>/Error`.

mod expr;
mod model;
mod rule;
mod stmt;
pub mod topic;

use std::fmt;

pub use model::{ModelOutput, eval_model, trigger_field, trigger_filters};
pub use rule::{RuleSubject, condition_holds, decide};
pub use stmt::run_action;

#[cfg(doc)]
use super::context::Context;
use super::value::ValueError;

/// The OUTPUT values of an action, in RETURN order.
pub type Outputs = Vec<(String, super::value::Value)>;

/// Why an evaluation failed (without position; see [`RuntimeError`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("cannot fill '+' in topic \"{0}\" from the triggering topic")]
    UnfilledWildcard(String),
    #[error("\"{0}\" is not a valid topic name")]
    InvalidTopic(String),
    #[error("unknown model {0}")]
    UnknownModel(String),
    #[error("model {model} has no field \"{field}\"")]
    UnknownField { model: String, field: String },
    #[error("unknown action {0}")]
    UnknownAction(String),
    #[error("action chain cut at depth {0}")]
    DepthExceeded(u32),
    #[error("RANDOM needs a finite range, got {0} and {1}")]
    BadRange(String, String),
    #[error("field \"{field}\": {error}")]
    Field {
        field: String,
        error: Box<EvalError>,
    },
    #[error("input \"{input}\": {error}")]
    Input {
        input: String,
        error: Box<EvalError>,
    },
    /// The error of an action called with CALL ACTION, with its own name and line.
    #[error("{0}")]
    Called(Box<RuntimeError>),
}

/// An evaluation error with the definition and line it happened at.
#[derive(Debug, Clone, thiserror::Error)]
pub struct RuntimeError {
    pub definition: String,
    /// 1-based line in the text the definition was compiled from.
    pub line: u32,
    pub error: EvalError,
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.definition, self.line, self.error)
    }
}

/// An error with the line it happened at, before the definition name is attached.
pub(crate) type Located = (u32, EvalError);

pub(crate) fn at<T>(line: u32, r: Result<T, impl Into<EvalError>>) -> Result<T, Located> {
    r.map_err(|e| (line, e.into()))
}

#[cfg(test)]
mod call_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;
