//! # lot::ast::expr: expressions (spec §5)
//!
//! Owns [`Expr`] and the operator, cast and time-format types. Re-exported by `lot::ast`.

use super::{CompiledRegex, Span, Spanned};

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `EMPTY`.
    Empty,
    /// `{name}`.
    Var(String),
    /// JSON object literal `{"k": expr, ...}` (keys in written order).
    Object(Vec<(Spanned<String>, Expr)>),
    /// JSON array literal `[expr, ...]`.
    Array(Vec<Expr>),
    /// `PAYLOAD [AS type]`.
    Payload(Option<ValueType>),
    /// `TOPIC POSITION n` (1-based level of the triggering topic).
    TopicPosition(u32),
    /// `GET TOPIC operand [AS type]`; a `+` in the resulting topic takes the trigger's level.
    GetTopic {
        topic: Box<Expr>,
        cast: Option<ValueType>,
    },
    /// `GET JSON "a.b.c" IN expr [AS type]`.
    GetJson {
        path: String,
        input: Box<Expr>,
        cast: Option<ValueType>,
    },
    /// `GET ENV "NAME"`.
    GetEnv(String),
    /// `GET SECRET "NAME"`.
    GetSecret(String),
    /// `TIMESTAMP "fmt"` / `TIMESTAMP WITH "fmt"`.
    Timestamp(TimeFormat),
    RandomUuid,
    /// `RANDOM INT BETWEEN lo AND hi`.
    RandomInt {
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// `RANDOM DOUBLE BETWEEN lo AND hi`.
    RandomDouble {
        low: Box<Expr>,
        high: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    /// `REPLACE find WITH replacement IN input`.
    Replace {
        find: Box<Expr>,
        with: Box<Expr>,
        input: Box<Expr>,
    },
    /// `FILTER input USING REGEX "re"`: first match, or its first capture group.
    Filter {
        input: Box<Expr>,
        regex: CompiledRegex,
    },
    /// `TRIM input`.
    Trim(Box<Expr>),
    /// `SPLIT input USING "sep"`: an array.
    Split {
        input: Box<Expr>,
        separator: String,
    },
    /// Inline `IF c THEN e [ELSE IF c THEN e]* ELSE e`.
    If {
        branches: Vec<(Expr, Expr)>,
        otherwise: Box<Expr>,
    },
    /// `CLIENTID` (ON CONNECT / ON DISCONNECT actions).
    ClientId,
    /// `USER` (ON CONNECT / ON DISCONNECT actions; EMPTY for an anonymous client).
    User,
}

/// Binary operators, see [`BinOp::precedence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    /// `==`, `=`, `EQUALS`.
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    StartsWith,
    EndsWith,
    /// Adds numbers; concatenates when either side is text that is not a number.
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// Binding strength, higher binds tighter (spec §5: OR < AND < NOT < comparisons < + - < * / %).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq
            | BinOp::Ne
            | BinOp::Lt
            | BinOp::Le
            | BinOp::Gt
            | BinOp::Ge
            | BinOp::Contains
            | BinOp::StartsWith
            | BinOp::EndsWith => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "OR",
            BinOp::And => "AND",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Contains => "CONTAINS",
            BinOp::StartsWith => "STARTS_WITH",
            BinOp::EndsWith => "ENDS_WITH",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `NOT` (binds looser than comparisons: `NOT a == b` is `NOT (a == b)`).
    Not,
    /// Unary `-` (binds tightest).
    Neg,
}

/// The `AS type` of PAYLOAD, GET TOPIC and GET JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    String,
    Int,
    Double,
    Bool,
    Json,
    Bytes,
}

/// The format of a `TIMESTAMP` expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TimeFormat {
    /// `2025-03-17T14:25:30.123Z`.
    Iso,
    /// `2025-03-17 14:25:30`.
    Utc,
    /// Seconds since the epoch.
    Unix,
    /// Milliseconds since the epoch.
    UnixMs,
    /// A pattern with `yyyy MM dd HH mm ss fff`; other characters are copied.
    Pattern(String),
}
