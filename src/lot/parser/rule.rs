//! # lot::parser::rule: `DEFINE RULE` (spec §2)
//!
//! A rule is parsed as one slice (`rule_def`): one-line and multi-line forms are the same token
//! sequence. Checks here: reserved priority 0-99, known scope, valid `TO TOPIC` filter.

use super::expr::parse_cond;
use super::{Cx, Pair, Rule, parse_slice};
use crate::lot::ast::{
    Condition, ConditionKind, Decision, Rule as RuleDef, RuleBody, Scope, Spanned,
};
use crate::lot::error::LotError;
use crate::lot::source::{DefLines, Source};
use crate::lot::topic;

type R<T> = Result<T, LotError>;

pub(crate) fn parse(src: &Source<'_>, def: &DefLines) -> R<RuleDef> {
    src.check_indentation(def)?;
    let first = def.lines[0];
    let last = def.lines[def.lines.len() - 1];
    let (pair, cx) = parse_slice(src, Rule::rule_def, first.start, last.end)?;
    parse_rule_def(&cx, pair)
}

fn parse_rule_def(cx: &Cx<'_>, pair: Pair<'_>) -> R<RuleDef> {
    let span = cx.span(&pair);
    let mut name = None;
    let mut priority = None;
    let mut scope = None;
    let mut topic = None;
    let mut body = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::def_name => name = Some(cx.name(p)),
            Rule::priority => priority = Some(parse_priority(cx, p)?),
            Rule::scope => scope = Some(parse_scope(cx, p)?),
            Rule::rule_topic => topic = Some(parse_rule_topic(cx, p)?),
            Rule::rule_body => body = Some(parse_rule_body(cx, p)?),
            _ => {}
        }
    }
    let (Some(name), Some(priority), Some(scope), Some(body)) = (name, priority, scope, body)
    else {
        return Err(cx.src.error_span(span, "incomplete rule"));
    };
    check_topic_use(cx, &scope, topic.as_ref(), &body)?;
    Ok(RuleDef {
        name,
        priority,
        scope,
        topic,
        body,
        span,
    })
}

/// Only the publish and subscribe scopes (and CommandCall, a publish) concern a topic; on the
/// others TO TOPIC and CLIENTID IS TOPIC POSITION could never match, which is surely a mistake.
fn check_topic_use(
    cx: &Cx<'_>,
    scope: &Spanned<Scope>,
    topic: Option<&Spanned<String>>,
    body: &RuleBody,
) -> R<()> {
    if matches!(
        scope.value,
        Scope::Publish
            | Scope::Subscribe
            | Scope::PublishSys
            | Scope::SubscribeSys
            | Scope::CommandCall
    ) {
        return Ok(());
    }
    let why = format!(
        "a {} rule has no topic: topics apply to Publish, Subscribe, PublishSys, SubscribeSys and \
         CommandCall rules",
        scope.value
    );
    if let Some(t) = topic {
        return Err(cx.src.error_span(t.span, format!("TO TOPIC: {why}")));
    }
    if let RuleBody::If { branches, .. } = body {
        let mut stack: Vec<&Condition> = branches.iter().map(|(c, _)| c).collect();
        while let Some(c) = stack.pop() {
            match &c.kind {
                ConditionKind::ClientIdIsTopicPosition(_) => {
                    return Err(cx
                        .src
                        .error_span(c.span, format!("CLIENTID IS TOPIC POSITION: {why}")));
                }
                ConditionKind::And(a, b) | ConditionKind::Or(a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                ConditionKind::Not(a) => stack.push(a),
                _ => {}
            }
        }
    }
    Ok(())
}

fn parse_priority(cx: &Cx<'_>, pair: Pair<'_>) -> R<Spanned<i64>> {
    let span = cx.span(&pair);
    let value: i64 = pair
        .as_str()
        .parse()
        .map_err(|_| cx.error(&pair, "priority is out of range"))?;
    if value < 100 {
        return Err(cx.error(
            &pair,
            format!("priority {value} is reserved for built-in rules: use 100 or more"),
        ));
    }
    Ok(Spanned { value, span })
}

fn parse_scope(cx: &Cx<'_>, pair: Pair<'_>) -> R<Spanned<Scope>> {
    let span = cx.span(&pair);
    match Scope::from_name(pair.as_str()) {
        Some(value) => Ok(Spanned { value, span }),
        None => Err(cx.error(
            &pair,
            format!(
                "unknown scope \"{}\": expected a scope such as Publish or Subscribe",
                pair.as_str()
            ),
        )),
    }
}

fn parse_rule_topic(cx: &Cx<'_>, pair: Pair<'_>) -> R<Spanned<String>> {
    let Some(s) = pair.into_inner().find(|p| p.as_rule() == Rule::string) else {
        return Err(cx.src.error_at(cx.base, "expected a topic"));
    };
    let topic = cx.string(s.clone());
    topic::check_filter(&topic.value).map_err(|m| cx.error(&s, m))?;
    Ok(topic)
}

fn parse_decision(cx: &Cx<'_>, pair: Pair<'_>) -> Spanned<Decision> {
    let span = cx.span(&pair);
    let allow = pair
        .into_inner()
        .next()
        .is_some_and(|k| k.as_rule() == Rule::k_allow);
    Spanned {
        value: if allow {
            Decision::Allow
        } else {
            Decision::Deny
        },
        span,
    }
}

fn parse_rule_body(cx: &Cx<'_>, pair: Pair<'_>) -> R<RuleBody> {
    let span = cx.span(&pair);
    let Some(inner) = pair.into_inner().next() else {
        return Err(cx.src.error_span(span, "expected ALLOW, DENY or IF"));
    };
    if inner.as_rule() == Rule::decision {
        return Ok(RuleBody::Always(parse_decision(cx, inner)));
    }
    parse_rule_if(cx, inner)
}

fn parse_rule_if(cx: &Cx<'_>, pair: Pair<'_>) -> R<RuleBody> {
    let mut branches = Vec::new();
    let mut otherwise = None;
    let mut cond = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::cond => cond = Some(parse_cond(cx, p)?),
            Rule::decision => {
                if let Some(c) = cond.take() {
                    branches.push((c, parse_decision(cx, p)));
                }
            }
            Rule::rule_else_if => {
                let mut c = None;
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::cond => c = Some(parse_cond(cx, q)?),
                        Rule::decision => {
                            if let Some(c) = c.take() {
                                branches.push((c, parse_decision(cx, q)));
                            }
                        }
                        _ => {}
                    }
                }
            }
            Rule::rule_else => {
                if let Some(d) = p.into_inner().find(|q| q.as_rule() == Rule::decision) {
                    otherwise = Some(parse_decision(cx, d));
                }
            }
            _ => {}
        }
    }
    Ok(RuleBody::If {
        branches,
        otherwise,
    })
}
