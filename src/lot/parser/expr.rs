//! # lot::parser::expr: expressions and rule conditions
//!
//! Owns operator precedence (spec §5), in two pest `PrattParser`s: one for action/model
//! expressions, lowest to highest `OR`, `AND`, `NOT`, comparisons, `+ -`, `* / %`, unary `-`;
//! one for rule conditions (`OR`, `AND`, `NOT`). Also compiles regexes (`FILTER`,
//! `CLIENTID MATCHES REGEX`) and reads time formats, so the AST holds only checked values.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::{Cx, Pair, Rule};
use crate::lot::ast::{
    BinOp, Cidr, CompiledRegex, Condition, ConditionKind, Expr, ExprKind, TimeFormat, UnOp,
    ValueType,
};
use crate::lot::error::LotError;

type R<T> = Result<T, LotError>;

static EXPR_PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_contains, Assoc::Left)
            | Op::infix(Rule::op_starts, Assoc::Left)
            | Op::infix(Rule::op_ends, Assoc::Left))
        .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
        .op(Op::infix(Rule::op_mul, Assoc::Left)
            | Op::infix(Rule::op_div, Assoc::Left)
            | Op::infix(Rule::op_rem, Assoc::Left))
        .op(Op::prefix(Rule::op_neg))
});

static COND_PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
});

fn join(a: crate::lot::ast::Span, b: crate::lot::ast::Span) -> crate::lot::ast::Span {
    let start = a.offset.min(b.offset);
    let end = (a.offset + a.len).max(b.offset + b.len);
    crate::lot::ast::Span {
        line: if a.offset <= b.offset { a.line } else { b.line },
        col: if a.offset <= b.offset { a.col } else { b.col },
        offset: start,
        len: end - start,
    }
}

/// `expr`, `operand` and `bound`: a flat sequence of prefix operators, primaries and infix
/// operators, folded by the Pratt parser.
pub(crate) fn parse_expr(cx: &Cx<'_>, pair: Pair<'_>) -> R<Expr> {
    EXPR_PRATT
        .map_primary(|p| parse_primary(cx, p))
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            let op_span = cx.span(&op);
            let span = join(op_span, rhs.span);
            let un = if op.as_rule() == Rule::op_neg {
                // Fold `-3` into a literal so constants stay constants.
                match rhs.kind {
                    ExprKind::Int(i) => {
                        return Ok(Expr {
                            kind: ExprKind::Int(-i),
                            span,
                        });
                    }
                    ExprKind::Float(f) => {
                        return Ok(Expr {
                            kind: ExprKind::Float(-f),
                            span,
                        });
                    }
                    _ => UnOp::Neg,
                }
            } else {
                UnOp::Not
            };
            Ok(Expr {
                kind: ExprKind::Unary {
                    op: un,
                    operand: Box::new(rhs),
                },
                span,
            })
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let op = match op.as_rule() {
                Rule::op_or => BinOp::Or,
                Rule::op_and => BinOp::And,
                Rule::op_eq => BinOp::Eq,
                Rule::op_ne => BinOp::Ne,
                Rule::op_lt => BinOp::Lt,
                Rule::op_le => BinOp::Le,
                Rule::op_gt => BinOp::Gt,
                Rule::op_ge => BinOp::Ge,
                Rule::op_contains => BinOp::Contains,
                Rule::op_starts => BinOp::StartsWith,
                Rule::op_ends => BinOp::EndsWith,
                Rule::op_add => BinOp::Add,
                Rule::op_sub => BinOp::Sub,
                Rule::op_mul => BinOp::Mul,
                Rule::op_div => BinOp::Div,
                _ => BinOp::Rem,
            };
            let span = join(lhs.span, rhs.span);
            Ok(Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            })
        })
        .parse(pair.into_inner())
}

fn boxed(cx: &Cx<'_>, pair: Option<Pair<'_>>) -> R<Box<Expr>> {
    match pair {
        Some(p) => Ok(Box::new(parse_any(cx, p)?)),
        None => Err(cx.src.error_at(cx.base, "missing value")),
    }
}

/// An expression-like pair: `expr`/`operand`/`bound` go through the Pratt parser, anything else
/// is a primary.
pub(crate) fn parse_any(cx: &Cx<'_>, pair: Pair<'_>) -> R<Expr> {
    match pair.as_rule() {
        Rule::expr | Rule::operand | Rule::bound => parse_expr(cx, pair),
        _ => parse_primary(cx, pair),
    }
}

fn parse_cast(pair: Option<Pair<'_>>) -> Option<ValueType> {
    let ty = pair?.into_inner().nth(1)?;
    Some(match ty.as_str().to_ascii_uppercase().as_str() {
        "STRING" => ValueType::String,
        "INT" => ValueType::Int,
        "DOUBLE" => ValueType::Double,
        "BOOL" => ValueType::Bool,
        "JSON" => ValueType::Json,
        _ => ValueType::Bytes,
    })
}

/// Compiles a regex once, at deploy time (fancy-regex syntax).
pub(crate) fn compile_regex(cx: &Cx<'_>, pair: &Pair<'_>, source: String) -> R<CompiledRegex> {
    match fancy_regex::Regex::new(&source) {
        Ok(re) => Ok(CompiledRegex {
            source,
            regex: Arc::new(re),
        }),
        Err(e) => Err(cx.error(
            pair,
            format!("invalid regular expression \"{source}\": {e}"),
        )),
    }
}

/// `TIMESTAMP "fmt"`: ISO, UTC, UNIX, UNIX-MS, or a pattern using yyyy MM dd HH mm ss fff.
pub(crate) fn parse_time_format(cx: &Cx<'_>, pair: &Pair<'_>, fmt: &str) -> R<TimeFormat> {
    Ok(match fmt.to_ascii_uppercase().as_str() {
        "ISO" => TimeFormat::Iso,
        "UTC" => TimeFormat::Utc,
        "UNIX" => TimeFormat::Unix,
        "UNIX-MS" | "UNIX_MS" => TimeFormat::UnixMs,
        _ => {
            const TOKENS: [&str; 7] = ["yyyy", "MM", "dd", "HH", "mm", "ss", "fff"];
            if !TOKENS.iter().any(|t| fmt.contains(t)) {
                return Err(cx.error(
                    pair,
                    format!(
                        "unknown time format \"{fmt}\": use ISO, UTC, UNIX, UNIX-MS or a pattern \
                         with yyyy MM dd HH mm ss fff"
                    ),
                ));
            }
            TimeFormat::Pattern(fmt.to_owned())
        }
    })
}

fn parse_primary(cx: &Cx<'_>, pair: Pair<'_>) -> R<Expr> {
    let span = cx.span(&pair);
    let rule = pair.as_rule();
    let kind = match rule {
        Rule::paren => return parse_any(cx, first(cx, pair)?),
        Rule::expr | Rule::operand | Rule::bound => return parse_expr(cx, pair),
        Rule::string => ExprKind::Text(cx.string(pair).value),
        Rule::number => parse_number(cx, &pair)?,
        Rule::int_lit => parse_number(cx, &pair)?,
        Rule::boolean => ExprKind::Bool(pair.as_str().eq_ignore_ascii_case("true")),
        Rule::k_empty => ExprKind::Empty,
        Rule::k_clientid => ExprKind::ClientId,
        Rule::k_user => ExprKind::User,
        Rule::k_payload => ExprKind::Payload(None),
        Rule::var => ExprKind::Var(
            pair.into_inner()
                .next()
                .map_or(String::new(), |n| n.as_str().to_owned()),
        ),
        Rule::object => {
            let mut fields = Vec::new();
            for p in pair.into_inner() {
                let mut kv = p.into_inner();
                let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                    continue;
                };
                let key = cx.string(k);
                if fields
                    .iter()
                    .any(|(f, _): &(crate::lot::ast::Spanned<String>, Expr)| f.value == key.value)
                {
                    return Err(cx.src.error_span(
                        key.span,
                        format!("duplicate key \"{}\" in JSON object", key.value),
                    ));
                }
                fields.push((key, parse_any(cx, v)?));
            }
            ExprKind::Object(fields)
        }
        Rule::array => ExprKind::Array(
            pair.into_inner()
                .filter(|p| p.as_rule() == Rule::expr)
                .map(|p| parse_any(cx, p))
                .collect::<R<Vec<_>>>()?,
        ),
        Rule::payload => {
            let mut inner = pair.into_inner();
            inner.next();
            ExprKind::Payload(parse_cast(inner.next()))
        }
        Rule::topic_position => {
            let n = pair.into_inner().nth(2);
            ExprKind::TopicPosition(position(cx, n)?)
        }
        Rule::get_topic | Rule::get_topic_bare => {
            let mut inner = pair.into_inner().skip(2);
            let topic = boxed(cx, inner.next())?;
            ExprKind::GetTopic {
                topic,
                cast: parse_cast(inner.next()),
            }
        }
        Rule::get_json => {
            let mut inner = pair.into_inner().skip(2);
            let path = inner.next().map(|p| cx.string(p).value).unwrap_or_default();
            inner.next();
            let input = boxed(cx, inner.next())?;
            ExprKind::GetJson {
                path,
                input,
                cast: parse_cast(inner.next()),
            }
        }
        Rule::get_env | Rule::get_secret => {
            let name = pair.into_inner().nth(2).map(|p| cx.string(p).value);
            let name = name.unwrap_or_default();
            if rule == Rule::get_env {
                ExprKind::GetEnv(name)
            } else {
                ExprKind::GetSecret(name)
            }
        }
        Rule::timestamp => {
            let s = pair.into_inner().find(|p| p.as_rule() == Rule::string);
            let Some(s) = s else {
                return Err(cx.src.error_span(span, "expected a time format"));
            };
            let fmt = cx.string(s.clone()).value;
            ExprKind::Timestamp(parse_time_format(cx, &s, &fmt)?)
        }
        Rule::random => {
            let Some(choice) = pair.into_inner().nth(1) else {
                return Err(cx
                    .src
                    .error_span(span, "expected UUID, INT or DOUBLE after RANDOM"));
            };
            match choice.as_rule() {
                Rule::k_uuid => ExprKind::RandomUuid,
                r => {
                    let mut bounds = choice.into_inner().filter(|p| p.as_rule() == Rule::bound);
                    let low = boxed(cx, bounds.next())?;
                    let high = boxed(cx, bounds.next())?;
                    if r == Rule::random_double {
                        ExprKind::RandomDouble { low, high }
                    } else {
                        ExprKind::RandomInt { low, high }
                    }
                }
            }
        }
        Rule::replace => {
            let mut ops = pair.into_inner().filter(|p| p.as_rule() == Rule::operand);
            ExprKind::Replace {
                find: boxed(cx, ops.next())?,
                with: boxed(cx, ops.next())?,
                input: boxed(cx, ops.next())?,
            }
        }
        Rule::filter => {
            let mut inner = pair.into_inner();
            let input = boxed(cx, inner.find(|p| p.as_rule() == Rule::operand))?;
            let Some(re) = inner.find(|p| p.as_rule() == Rule::string) else {
                return Err(cx.src.error_span(span, "expected a regular expression"));
            };
            let source = cx.string(re.clone()).value;
            ExprKind::Filter {
                input,
                regex: compile_regex(cx, &re, source)?,
            }
        }
        Rule::trim => ExprKind::Trim(boxed(
            cx,
            pair.into_inner().find(|p| p.as_rule() == Rule::operand),
        )?),
        Rule::split => {
            let mut inner = pair.into_inner();
            let input = boxed(cx, inner.find(|p| p.as_rule() == Rule::operand))?;
            let separator = inner
                .find(|p| p.as_rule() == Rule::string)
                .map(|p| cx.string(p).value)
                .unwrap_or_default();
            ExprKind::Split { input, separator }
        }
        Rule::inline_if => {
            let mut exprs = Vec::new();
            for p in pair.into_inner() {
                match p.as_rule() {
                    Rule::expr => exprs.push(parse_expr(cx, p)?),
                    Rule::inline_elif => {
                        for q in p.into_inner().filter(|q| q.as_rule() == Rule::expr) {
                            exprs.push(parse_expr(cx, q)?);
                        }
                    }
                    _ => {}
                }
            }
            let otherwise = Box::new(
                exprs
                    .pop()
                    .ok_or_else(|| cx.src.error_span(span, "expected ELSE"))?,
            );
            let mut branches = Vec::new();
            let mut it = exprs.into_iter();
            while let (Some(c), Some(v)) = (it.next(), it.next()) {
                branches.push((c, v));
            }
            ExprKind::If {
                branches,
                otherwise,
            }
        }
        _ => return Err(cx.error(&pair, "expected a value")),
    };
    Ok(Expr { kind, span })
}

fn first<'i>(cx: &Cx<'_>, pair: Pair<'i>) -> R<Pair<'i>> {
    let span = cx.span(&pair);
    pair.into_inner()
        .next()
        .ok_or_else(|| cx.src.error_span(span, "expected a value"))
}

fn parse_number(cx: &Cx<'_>, pair: &Pair<'_>) -> R<ExprKind> {
    let s = pair.as_str();
    if !s.contains(['.', 'e', 'E'])
        && let Ok(i) = s.parse::<i64>()
    {
        return Ok(ExprKind::Int(i));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(ExprKind::Float(f)),
        _ => Err(cx.error(pair, format!("number {s} is out of range"))),
    }
}

/// A 1-based topic level number.
pub(crate) fn position(cx: &Cx<'_>, pair: Option<Pair<'_>>) -> R<u32> {
    let Some(pair) = pair else {
        return Err(cx.src.error_at(cx.base, "expected a position number"));
    };
    match pair.as_str().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(cx.error(&pair, "TOPIC POSITION counts from 1")),
    }
}

/// A rule condition (`cond`).
pub(crate) fn parse_cond(cx: &Cx<'_>, pair: Pair<'_>) -> R<Condition> {
    COND_PRATT
        .map_primary(|p| parse_cond_primary(cx, p))
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            Ok(Condition {
                span: join(cx.span(&op), rhs.span),
                kind: ConditionKind::Not(Box::new(rhs)),
            })
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let span = join(lhs.span, rhs.span);
            let kind = if op.as_rule() == Rule::op_and {
                ConditionKind::And(Box::new(lhs), Box::new(rhs))
            } else {
                ConditionKind::Or(Box::new(lhs), Box::new(rhs))
            };
            Ok(Condition { kind, span })
        })
        .parse(pair.into_inner())
}

fn parse_cond_primary(cx: &Cx<'_>, pair: Pair<'_>) -> R<Condition> {
    let span = cx.span(&pair);
    let rule = pair.as_rule();
    if rule == Rule::cond_paren {
        return parse_cond(cx, first(cx, pair)?);
    }
    // The operand is always the last child (a string, a flag or a number).
    let Some(last) = pair.into_inner().last() else {
        return Err(cx.src.error_span(span, "expected a condition"));
    };
    let text = || cx.name(last.clone()).value;
    let kind = match rule {
        Rule::c_user_is => ConditionKind::UserIs(text()),
        Rule::c_user_has => ConditionKind::UserHas(text()),
        Rule::c_user_in_group => ConditionKind::UserInGroup(text()),
        Rule::c_clientid_is => ConditionKind::ClientIdIs(text()),
        Rule::c_clientid_matches => {
            ConditionKind::ClientIdMatches(compile_regex(cx, &last, text())?)
        }
        Rule::c_clientid_topic => {
            ConditionKind::ClientIdIsTopicPosition(position(cx, Some(last.clone()))?)
        }
        Rule::c_ip_is => match text().parse::<IpAddr>() {
            Ok(ip) => ConditionKind::IpIs(ip),
            Err(_) => {
                return Err(cx.error(&last, format!("\"{}\" is not an IP address", text())));
            }
        },
        Rule::c_ip_in => ConditionKind::IpIn(parse_cidr(&text()).ok_or_else(|| {
            cx.error(
                &last,
                format!("\"{}\" is not a network such as \"10.0.0.0/8\"", text()),
            )
        })?),
        _ => return Err(cx.src.error_span(span, "expected a condition")),
    };
    Ok(Condition { kind, span })
}

/// `a.b.c.d/n`, `x::/n`, or a plain address (a single host).
pub(crate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let network: IpAddr = addr.trim().parse().ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Cidr { network, prefix })
}
