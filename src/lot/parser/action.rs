//! # lot::parser::action: `DEFINE ACTION` (spec §4)
//!
//! Three pieces: the header (the DEFINE line plus following ON / INPUT / DESCRIPTION / DO lines,
//! up to the line ending in DO: `action_head`), the body (the following lines, one `stmt_line`
//! each, blocks by indentation), and the tail (from a RETURN or DESCRIPTION line not indented
//! deeper than the body: `action_tail`). Checks here: trigger filters, intervals, times of day,
//! cron schedules, at most one trigger. Context checks (PAYLOAD, wildcards) live in `check`.

use std::str::FromStr;
use std::sync::Arc;

use super::block::{self, Node};
use super::expr::parse_any;
use super::{Cx, Pair, Rule, parse_slice};
use crate::lot::ast::{
    Action, CronSchedule, Days, FieldAssign, Input, InputType, Spanned, Stmt, StmtKind, TimeOfDay,
    TimeUnit, Trigger, TriggerKind,
};
use crate::lot::error::LotError;
use crate::lot::source::{DefLines, Line, Source, compare_indent};
use crate::lot::topic;

type R<T> = Result<T, LotError>;

fn ends_with_do(src: &Source<'_>, line: &Line) -> bool {
    let c = src.content(line).as_bytes();
    let n = c.len();
    n >= 2 && c[n - 2..].eq_ignore_ascii_case(b"do") && (n == 2 || c[n - 3].is_ascii_whitespace())
}

/// Every error of the action's body is reported, not only the first.
pub(crate) fn parse(src: &Source<'_>, def: &DefLines) -> Result<Action, Vec<LotError>> {
    src.check_indentation(def).map_err(|e| vec![e])?;
    let lines = &def.lines;
    let mut h = 1;
    if !ends_with_do(src, &lines[0]) {
        while h < lines.len() {
            let word = src.first_word(&lines[h]);
            if !matches!(word.as_str(), "ON" | "INPUT" | "DO" | "DESCRIPTION") {
                break;
            }
            h += 1;
            if ends_with_do(src, &lines[h - 1]) {
                break;
            }
        }
    }
    let (pair, cx) = parse_slice(src, Rule::action_head, lines[0].start, lines[h - 1].end)
        .map_err(|e| vec![e])?;
    let mut action = parse_action_head(&cx, pair).map_err(|e| vec![e])?;

    let mut b = h;
    if let Some(first) = lines.get(h) {
        let base = src.indent(first);
        while b < lines.len() {
            let word = src.first_word(&lines[b]);
            let deeper =
                compare_indent(base, src.indent(&lines[b])) == Some(std::cmp::Ordering::Greater);
            if matches!(word.as_str(), "RETURN" | "DESCRIPTION") && !deeper {
                break;
            }
            b += 1;
        }
    }
    if b == h {
        return Err(vec![src.error_at(
            lines[h - 1].end,
            "expected the action's statements on the lines below DO",
        )]);
    }
    let tree = block::build(src, &lines[h..b]).map_err(|e| vec![e])?;
    let mut errs = Vec::new();
    action.body = parse_block(src, &tree, &mut errs);
    if b < lines.len() {
        let tail = parse_slice(
            src,
            Rule::action_tail,
            lines[b].start,
            lines[lines.len() - 1].end,
        );
        match tail {
            Ok((pair, cx)) => parse_action_tail(&cx, pair, &mut action),
            Err(e) => errs.push(e),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    action.span = src.span(lines[0].start, lines[lines.len() - 1].end);
    Ok(action)
}

fn parse_action_head(cx: &Cx<'_>, pair: Pair<'_>) -> R<Action> {
    let span = cx.span(&pair);
    let mut action = Action {
        name: Spanned {
            value: String::new(),
            span,
        },
        trigger: None,
        inputs: Vec::new(),
        body: Vec::new(),
        outputs: Vec::new(),
        description: None,
        span,
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::def_name => action.name = cx.name(p),
            Rule::trigger => {
                if action.trigger.is_some() {
                    return Err(cx.error(&p, "an action has at most one trigger"));
                }
                action.trigger = Some(parse_trigger(cx, p)?);
            }
            Rule::input_decl => action.inputs.push(parse_input(cx, p)?),
            Rule::description => action.description = parse_description(cx, p),
            _ => {}
        }
    }
    Ok(action)
}

fn parse_description(cx: &Cx<'_>, pair: Pair<'_>) -> Option<Spanned<String>> {
    pair.into_inner().nth(1).map(|s| cx.string(s))
}

fn parse_input(cx: &Cx<'_>, pair: Pair<'_>) -> R<Input> {
    let span = cx.span(&pair);
    let mut inner = pair.into_inner().skip(1);
    let name = inner.next().map(|p| cx.name(p));
    let ty = inner.find(|p| p.as_rule() == Rule::input_type);
    let (Some(name), Some(ty)) = (name, ty) else {
        return Err(cx.src.error_span(span, "expected INPUT name AS type"));
    };
    let ty = match ty.as_str().to_ascii_uppercase().as_str() {
        "STRING" => InputType::String,
        "INT" => InputType::Int,
        "DOUBLE" => InputType::Double,
        "BOOL" => InputType::Bool,
        _ => InputType::Json,
    };
    Ok(Input { name, ty, span })
}

fn parse_trigger(cx: &Cx<'_>, pair: Pair<'_>) -> R<Trigger> {
    let span = cx.span(&pair);
    let Some(t) = pair.into_inner().nth(1) else {
        return Err(cx
            .src
            .error_span(span, "expected a trigger such as ON TOPIC"));
    };
    let kind = match t.as_rule() {
        Rule::t_topic | Rule::t_change => {
            let topic_rule = t.as_rule() == Rule::t_topic;
            let Some(s) = t.into_inner().nth(1) else {
                return Err(cx.src.error_span(span, "expected a topic filter"));
            };
            let f = cx.string(s.clone());
            topic::check_filter(&f.value).map_err(|m| cx.error(&s, m))?;
            if topic_rule {
                TriggerKind::Topic(f)
            } else {
                TriggerKind::Change(f)
            }
        }
        Rule::t_every => parse_every(cx, t)?,
        Rule::t_every_at => parse_every_at(cx, t)?,
        Rule::t_timestamp => parse_on_timestamp(cx, t)?,
        Rule::t_cron => {
            let Some(s) = t.into_inner().nth(1) else {
                return Err(cx.src.error_span(span, "expected a cron expression"));
            };
            let source = cx.string(s.clone()).value;
            match cron::Schedule::from_str(&source) {
                Ok(schedule) => TriggerKind::Cron(CronSchedule {
                    source,
                    schedule: Arc::new(schedule),
                }),
                Err(e) => {
                    // The cron crate's message repeats the expression with a caret on extra
                    // lines; keep only its last line, the reason.
                    let e = e.to_string();
                    let e = e
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .trim();
                    return Err(cx.error(
                        &s,
                        format!(
                            "invalid cron expression \"{source}\" (sec min hour day-of-month \
                             month day-of-week [year]): {e}"
                        ),
                    ));
                }
            }
        }
        Rule::k_start => TriggerKind::Start,
        Rule::k_connect => TriggerKind::Connect,
        _ => TriggerKind::Disconnect,
    };
    Ok(Trigger { kind, span })
}

fn parse_every(cx: &Cx<'_>, pair: Pair<'_>) -> R<TriggerKind> {
    let mut inner = pair.into_inner().skip(1);
    let (Some(n), Some(unit)) = (inner.next(), inner.next()) else {
        return Err(cx
            .src
            .error_at(cx.base, "expected a number and a time unit"));
    };
    let count: u64 = match n.as_str().parse() {
        Ok(c) if c >= 1 => c,
        _ => return Err(cx.error(&n, "the interval must be a whole number of at least 1")),
    };
    let u = unit.as_str().to_ascii_uppercase();
    let unit = match u.trim_end_matches('S') {
        "SECOND" => TimeUnit::Second,
        "MINUTE" => TimeUnit::Minute,
        "HOUR" => TimeUnit::Hour,
        "DAY" => TimeUnit::Day,
        _ => TimeUnit::Week,
    };
    Ok(TriggerKind::Every { count, unit })
}

fn parse_every_at(cx: &Cx<'_>, pair: Pair<'_>) -> R<TriggerKind> {
    let mut days = Days::Day;
    let mut at = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::day_spec => {
                days = match p.as_str().to_ascii_uppercase().as_str() {
                    "MONDAY" => Days::Monday,
                    "TUESDAY" => Days::Tuesday,
                    "WEDNESDAY" => Days::Wednesday,
                    "THURSDAY" => Days::Thursday,
                    "FRIDAY" => Days::Friday,
                    "SATURDAY" => Days::Saturday,
                    "SUNDAY" => Days::Sunday,
                    "WEEKDAY" => Days::Weekday,
                    "WEEKEND" => Days::Weekend,
                    _ => Days::Day,
                }
            }
            Rule::string => {
                let text = cx.string(p.clone()).value;
                at = Some(time_of_day(&text).ok_or_else(|| {
                    cx.error(
                        &p,
                        format!(
                            "invalid time \"{text}\": expected HH:mm or HH:mm:ss, e.g. \"07:30\""
                        ),
                    )
                })?);
            }
            _ => {}
        }
    }
    match at {
        Some(at) => Ok(TriggerKind::EveryAt { days, at }),
        None => Err(cx.src.error_at(cx.base, "expected AT \"HH:mm\"")),
    }
}

/// `HH:mm` or `HH:mm:ss`, 24-hour clock.
pub(crate) fn time_of_day(s: &str) -> Option<TimeOfDay> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let num = |p: &str| p.parse::<u8>().ok();
    let hour = num(parts[0]).filter(|h| *h < 24)?;
    let minute = num(parts[1]).filter(|m| *m < 60)?;
    let second = match parts.get(2) {
        Some(p) => num(p).filter(|s| *s < 60)?,
        None => 0,
    };
    Some(TimeOfDay {
        hour,
        minute,
        second,
    })
}

fn parse_on_timestamp(cx: &Cx<'_>, pair: Pair<'_>) -> R<TriggerKind> {
    let Some(s) = pair.into_inner().nth(1) else {
        return Err(cx.src.error_at(cx.base, "expected a time"));
    };
    let text = cx.string(s.clone()).value;
    if let Some(t) = time_of_day(&text) {
        return Ok(TriggerKind::Daily(t));
    }
    match chrono::NaiveDateTime::parse_from_str(&text, "%d-%m-%Y %H:%M:%S") {
        Ok(dt) => Ok(TriggerKind::Once(dt)),
        Err(_) => Err(cx.error(
            &s,
            format!(
                "invalid time \"{text}\": expected \"HH:mm:ss\" (daily) or \
                 \"dd-MM-yyyy HH:mm:ss\" (once)"
            ),
        )),
    }
}

fn parse_action_tail(cx: &Cx<'_>, pair: Pair<'_>, action: &mut Action) {
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::output_decl => {
                for n in p.into_inner().skip(1) {
                    action.outputs.push(cx.name(n));
                }
            }
            Rule::description => action.description = parse_description(cx, p),
            _ => {}
        }
    }
}

/// The statements of one block (action body or the inside of IF / ELSE). A line with an error
/// is recorded in `errs` and skipped, so one check reports every bad line of an action; the
/// ELSE lines of a broken IF are skipped with it (they would only repeat the error).
fn parse_block(src: &Source<'_>, nodes: &[Node], errs: &mut Vec<LotError>) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::new();
    // Whether the previous statement of this block is an IF chain that can still take ELSE.
    let mut open_if = false;
    let mut broken_if = false;
    for node in nodes {
        let word = src.first_word(&node.line);
        if broken_if && word == "ELSE" {
            continue;
        }
        broken_if = false;
        if let Err(e) = parse_node(src, node, &mut out, &mut open_if, errs) {
            errs.push(e);
            open_if = false;
            broken_if = matches!(word.as_str(), "IF" | "ELSE");
        }
    }
    out
}

/// One statement line (and its block) appended to `out`.
fn parse_node(
    src: &Source<'_>,
    node: &Node,
    out: &mut Vec<Stmt>,
    open_if: &mut bool,
    errs: &mut Vec<LotError>,
) -> R<()> {
    let (pair, cx) = parse_slice(src, Rule::stmt_line, node.line.start, node.line.end)?;
    let span = src.span(node.line.start, node.line.end);
    let Some(stmt) = pair.into_inner().next() else {
        return Err(src.error_at(node.line.start, "expected a statement"));
    };
    let rule = stmt.as_rule();
    let needs_block = matches!(
        rule,
        Rule::if_open | Rule::else_if_open | Rule::else_open | Rule::publish_model
    );
    if needs_block && node.children.is_empty() {
        let what = if rule == Rule::publish_model {
            "expected the model's fields (name = value) on indented lines below PUBLISH MODEL"
        } else {
            "expected statements on indented lines below this line"
        };
        return Err(src.error_at(node.line.end, what));
    }
    if !needs_block && let Some(child) = node.children.first() {
        return Err(src.error_at(child.line.start, "unexpected indentation"));
    }
    match rule {
        Rule::if_open => {
            let cond = cond_of(&cx, stmt)?;
            let body = parse_block(src, &node.children, errs);
            out.push(Stmt {
                kind: StmtKind::If {
                    branches: vec![(cond, body)],
                    otherwise: None,
                },
                span,
            });
            *open_if = true;
        }
        Rule::else_if_open | Rule::else_open => {
            let Some(Stmt {
                kind:
                    StmtKind::If {
                        branches,
                        otherwise,
                    },
                ..
            }) = out.last_mut().filter(|_| *open_if)
            else {
                return Err(src.error_at(node.line.start, "ELSE without a matching IF above it"));
            };
            let cond = match rule {
                Rule::else_if_open => Some(cond_of(&cx, stmt)?),
                _ => None,
            };
            let body = parse_block(src, &node.children, errs);
            match cond {
                Some(cond) => branches.push((cond, body)),
                None => {
                    *otherwise = Some(body);
                    *open_if = false;
                }
            }
        }
        _ => {
            out.push(Stmt {
                kind: parse_simple(src, &cx, stmt, node)?,
                span,
            });
            *open_if = false;
        }
    }
    Ok(())
}

fn cond_of(cx: &Cx<'_>, stmt: Pair<'_>) -> R<crate::lot::ast::Expr> {
    let span = cx.span(&stmt);
    match stmt.into_inner().find(|p| p.as_rule() == Rule::expr) {
        Some(e) => parse_any(cx, e),
        None => Err(cx.src.error_span(span, "expected a condition")),
    }
}

fn parse_simple(src: &Source<'_>, cx: &Cx<'_>, stmt: Pair<'_>, node: &Node) -> R<StmtKind> {
    let span = cx.span(&stmt);
    let rule = stmt.as_rule();
    let mut inner = stmt.into_inner();
    let missing = || cx.src.error_span(span, "incomplete statement");
    Ok(match rule {
        Rule::set_stmt => {
            let name = cx.name(inner.nth(1).ok_or_else(missing)?);
            let value = parse_any(
                cx,
                inner
                    .find(|p| p.as_rule() == Rule::expr)
                    .ok_or_else(missing)?,
            )?;
            StmtKind::Set { name, value }
        }
        Rule::publish_topic | Rule::keep_topic => {
            let mut exprs = inner.filter(|p| p.as_rule() == Rule::expr);
            let topic = parse_any(cx, exprs.next().ok_or_else(missing)?)?;
            let value = parse_any(cx, exprs.next().ok_or_else(missing)?)?;
            if rule == Rule::publish_topic {
                StmtKind::PublishTopic { topic, value }
            } else {
                StmtKind::KeepTopic { topic, value }
            }
        }
        Rule::publish_model => {
            let model = cx.name(
                inner
                    .find(|p| p.as_rule() == Rule::def_name)
                    .ok_or_else(missing)?,
            );
            let topic = parse_any(
                cx,
                inner
                    .find(|p| p.as_rule() == Rule::expr)
                    .ok_or_else(missing)?,
            )?;
            let mut fields: Vec<FieldAssign> = Vec::new();
            for child in &node.children {
                if let Some(grand) = child.children.first() {
                    return Err(src.error_at(grand.line.start, "unexpected indentation"));
                }
                let (pair, acx) =
                    parse_slice(src, Rule::assign_line, child.line.start, child.line.end)?;
                let f = parse_assign(&acx, pair)?;
                if fields.iter().any(|g| g.name.value == f.name.value) {
                    return Err(src.error_span(
                        f.name.span,
                        format!("field \"{}\" is set twice", f.name.value),
                    ));
                }
                fields.push(f);
            }
            StmtKind::PublishModel {
                model,
                topic,
                fields,
            }
        }
        _ => {
            let mut name = None;
            let mut args = Vec::new();
            let mut returns = Vec::new();
            let mut after_return = false;
            for p in inner {
                match p.as_rule() {
                    Rule::def_name => name = Some(cx.name(p)),
                    Rule::call_arg => args.push(parse_assign(cx, p)?),
                    Rule::k_return => after_return = true,
                    Rule::string | Rule::var | Rule::ident if after_return => {
                        returns.push(cx.name(p))
                    }
                    _ => {}
                }
            }
            StmtKind::CallAction {
                name: name.ok_or_else(missing)?,
                args,
                returns,
            }
        }
    })
}

/// `name = expr` (`assign_line` or `call_arg`).
fn parse_assign(cx: &Cx<'_>, pair: Pair<'_>) -> R<FieldAssign> {
    let span = cx.span(&pair);
    let mut name = None;
    let mut value = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::field_name => name = Some(cx.name(p)),
            Rule::expr => value = Some(parse_any(cx, p)?),
            _ => {}
        }
    }
    match (name, value) {
        (Some(name), Some(value)) => Ok(FieldAssign { name, value, span }),
        _ => Err(cx.src.error_span(span, "expected name = value")),
    }
}
