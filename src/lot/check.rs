//! # lot::check: semantic checks that need more than one line (spec §7, §8)
//!
//! Owns: duplicate definition names, name resolution (PUBLISH MODEL, FROM, CALL ACTION) against
//! every definition being compiled plus the already-deployed [`KnownNames`], PUBLISH MODEL field
//! names, CALL ACTION argument names, model inheritance cycles, and the action context rules
//! (PAYLOAD and TOPIC POSITION only in ON TOPIC / ON CHANGE actions, CLIENTID and USER only in
//! ON CONNECT / ON DISCONNECT actions, wildcard inheritance in action topics).
//! Must not touch: parsing. Start reading at [`check_all`].

use std::collections::{HashMap, HashSet};

use super::KnownNames;
use super::ast::{
    Action, Definition, DefinitionAst, Expr, ExprKind, FieldSource, Kind, Model, Span, Stmt,
    StmtKind, TriggerKind,
};
use super::error::LotError;
use super::source::Source;

/// One parsed definition with the source it came from.
pub(crate) struct Parsed {
    pub src: usize,
    pub def: Definition,
    /// Byte offset of its DEFINE line.
    pub define_at: usize,
}

struct Checker<'a> {
    sources: &'a [Source<'a>],
    errors: Vec<LotError>,
}

impl Checker<'_> {
    fn err(&mut self, p: &Parsed, span: Span, message: String) {
        let mut e = self.sources[p.src].error_span(span, message);
        e.definition = Some(format!("{} {}", p.def.kind, p.def.name));
        self.errors.push(e);
    }
}

pub(crate) fn check_all(
    sources: &[Source<'_>],
    parsed: &[Parsed],
    known: &KnownNames,
) -> Vec<LotError> {
    let mut ck = Checker {
        sources,
        errors: Vec::new(),
    };
    check_duplicates(&mut ck, parsed);
    let models: HashMap<&str, &Model> = parsed
        .iter()
        .filter_map(|p| match &p.def.ast {
            DefinitionAst::Model(m) => Some((m.name.value.as_str(), m)),
            _ => None,
        })
        .collect();
    let actions: HashMap<&str, &Action> = parsed
        .iter()
        .filter_map(|p| match &p.def.ast {
            DefinitionAst::Action(a) => Some((a.name.value.as_str(), a)),
            _ => None,
        })
        .collect();
    let model_known = |n: &str| models.contains_key(n) || known.models.contains(n);
    let action_known = |n: &str| actions.contains_key(n) || known.actions.contains(n);
    for p in parsed {
        match &p.def.ast {
            DefinitionAst::Model(m) => {
                if let Some(from) = &m.from {
                    if !model_known(&from.value) {
                        ck.err(
                            p,
                            from.span,
                            format!("unknown model {} in FROM", from.value),
                        );
                    } else if inherits_from_itself(&models, m) {
                        ck.err(
                            p,
                            from.span,
                            format!("model {} inherits from itself", m.name.value),
                        );
                    }
                }
                for f in &m.fields {
                    if let Some(FieldSource::Expr(e)) = &f.source {
                        context_checks(&mut ck, p, None, e);
                    }
                }
            }
            DefinitionAst::Action(a) => {
                check_action(
                    &mut ck,
                    p,
                    a,
                    &models,
                    &actions,
                    &model_known,
                    &action_known,
                );
            }
            _ => {}
        }
    }
    ck.errors
}

fn check_duplicates(ck: &mut Checker<'_>, parsed: &[Parsed]) {
    let mut seen: HashMap<(Kind, &str), &Parsed> = HashMap::new();
    for p in parsed {
        if let Some(first) = seen.get(&(p.def.kind, p.def.name.as_str())) {
            let src = &ck.sources[p.src];
            let (line, _) = ck.sources[first.src].line_col(first.define_at);
            let where_ = match ck.sources[first.src].file {
                Some(f) if first.src != p.src => format!("{f}:{line}"),
                _ => format!("line {line}"),
            };
            let mut e = src.error_at(
                p.define_at,
                format!(
                    "{} {} is defined twice (first at {where_})",
                    p.def.kind, p.def.name
                ),
            );
            e.definition = Some(format!("{} {}", p.def.kind, p.def.name));
            ck.errors.push(e);
        } else {
            seen.insert((p.def.kind, p.def.name.as_str()), p);
        }
    }
}

fn inherits_from_itself(models: &HashMap<&str, &Model>, m: &Model) -> bool {
    let mut seen = HashSet::new();
    let mut cur = m;
    while let Some(from) = &cur.from {
        if !seen.insert(cur.name.value.as_str()) {
            return true;
        }
        match models.get(from.value.as_str()) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    false
}

/// Every field name a model has, its parents' first. None when a parent is not in this text
/// (deployed elsewhere: its fields are unknown here).
fn model_fields<'m>(models: &HashMap<&str, &'m Model>, m: &'m Model) -> Option<HashSet<&'m str>> {
    let mut out = HashSet::new();
    let mut cur = m;
    for _ in 0..64 {
        out.extend(cur.fields.iter().map(|f| f.name.value.as_str()));
        match &cur.from {
            None => return Some(out),
            Some(from) => cur = models.get(from.value.as_str())?,
        }
    }
    None
}

fn check_action(
    ck: &mut Checker<'_>,
    p: &Parsed,
    a: &Action,
    models: &HashMap<&str, &Model>,
    actions: &HashMap<&str, &Action>,
    model_known: &dyn Fn(&str) -> bool,
    action_known: &dyn Fn(&str) -> bool,
) {
    let trigger = a.trigger.as_ref().map(|t| &t.kind);
    let mut stmts: Vec<&Stmt> = a.body.iter().collect();
    while let Some(s) = stmts.pop() {
        match &s.kind {
            StmtKind::Set { value, .. } => context_checks(ck, p, trigger, value),
            StmtKind::PublishTopic { topic, value } | StmtKind::KeepTopic { topic, value } => {
                topic_checks(ck, p, trigger, topic);
                context_checks(ck, p, trigger, value);
            }
            StmtKind::PublishModel {
                model,
                topic,
                fields,
            } => {
                topic_checks(ck, p, trigger, topic);
                if !model_known(&model.value) {
                    ck.err(p, model.span, format!("unknown model {}", model.value));
                } else if let Some(names) = models
                    .get(model.value.as_str())
                    .and_then(|m| model_fields(models, m))
                {
                    for f in fields {
                        if !names.contains(f.name.value.as_str()) {
                            ck.err(
                                p,
                                f.name.span,
                                format!("model {} has no field \"{}\"", model.value, f.name.value),
                            );
                        }
                    }
                }
                for f in fields {
                    context_checks(ck, p, trigger, &f.value);
                }
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (c, body) in branches {
                    context_checks(ck, p, trigger, c);
                    stmts.extend(body.iter());
                }
                if let Some(body) = otherwise {
                    stmts.extend(body.iter());
                }
            }
            StmtKind::CallAction { name, args, .. } => {
                if !action_known(&name.value) {
                    ck.err(p, name.span, format!("unknown action {}", name.value));
                } else if let Some(target) = actions.get(name.value.as_str())
                    && !target.inputs.is_empty()
                {
                    for arg in args {
                        if !target.inputs.iter().any(|i| i.name.value == arg.name.value) {
                            ck.err(
                                p,
                                arg.name.span,
                                format!("action {} has no INPUT {}", name.value, arg.name.value),
                            );
                        }
                    }
                }
                for arg in args {
                    context_checks(ck, p, trigger, &arg.value);
                }
            }
        }
    }
}

fn walk<'e>(e: &'e Expr, f: &mut dyn FnMut(&'e Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Object(kv) => kv.iter().for_each(|(_, v)| walk(v, f)),
        ExprKind::Array(items) => items.iter().for_each(|v| walk(v, f)),
        ExprKind::GetTopic { topic, .. } => walk(topic, f),
        ExprKind::GetJson { input, .. } => walk(input, f),
        ExprKind::RandomInt { low, high } | ExprKind::RandomDouble { low, high } => {
            walk(low, f);
            walk(high, f);
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            walk(lhs, f);
            walk(rhs, f);
        }
        ExprKind::Unary { operand, .. } => walk(operand, f),
        ExprKind::Replace { find, with, input } => {
            walk(find, f);
            walk(with, f);
            walk(input, f);
        }
        ExprKind::Filter { input, .. } | ExprKind::Trim(input) | ExprKind::Split { input, .. } => {
            walk(input, f)
        }
        ExprKind::If {
            branches,
            otherwise,
        } => {
            for (c, v) in branches {
                walk(c, f);
                walk(v, f);
            }
            walk(otherwise, f);
        }
        _ => {}
    }
}

/// PAYLOAD / TOPIC POSITION / CLIENTID / USER / GET TOPIC in the right kind of action.
/// `trigger` is None for a model field or a callable action.
fn context_checks(ck: &mut Checker<'_>, p: &Parsed, trigger: Option<&TriggerKind>, e: &Expr) {
    let is_action = p.def.kind == Kind::Action;
    let filter = trigger.and_then(TriggerKind::filter);
    let on_connect = matches!(
        trigger,
        Some(TriggerKind::Connect | TriggerKind::Disconnect)
    );
    let mut found: Vec<(Span, String)> = Vec::new();
    let mut topics: Vec<&Expr> = Vec::new();
    walk(e, &mut |x| match &x.kind {
        ExprKind::Payload(_) if is_action && filter.is_none() => found.push((
            x.span,
            "PAYLOAD is only available in ON TOPIC and ON CHANGE actions".into(),
        )),
        ExprKind::TopicPosition(n) if is_action => match filter {
            None => found.push((
                x.span,
                "TOPIC POSITION is only available in ON TOPIC and ON CHANGE actions".into(),
            )),
            Some(f) => {
                let levels = f.split('/').count() as u32;
                if !f.ends_with('#') && *n > levels {
                    found.push((
                        x.span,
                        format!("TOPIC POSITION {n}: the trigger filter \"{f}\" has only {levels} levels"),
                    ));
                }
            }
        },
        ExprKind::ClientId | ExprKind::User if !on_connect => found.push((
            x.span,
            "CLIENTID and USER are only available in ON CONNECT and ON DISCONNECT actions".into(),
        )),
        ExprKind::GetTopic { topic, .. } if is_action => topics.push(topic),
        _ => {}
    });
    for (span, m) in found {
        ck.err(p, span, m);
    }
    for t in topics {
        topic_checks(ck, p, trigger, t);
    }
}

/// Wildcard inheritance (spec §8): a `+` at level k of an action's topic only where the ON TOPIC
/// / ON CHANGE filter has a `+` at level k; `#` never. Checked on the literal text of the topic
/// expression, as far as it is known before the first non-literal part.
fn topic_checks(ck: &mut Checker<'_>, p: &Parsed, trigger: Option<&TriggerKind>, topic: &Expr) {
    context_checks(ck, p, trigger, topic);
    let mut parts = Vec::new();
    flatten_concat(topic, &mut parts);
    let mut prefix = String::new();
    let mut frozen = false;
    for part in &parts {
        match &part.kind {
            ExprKind::Text(s) => {
                if s.contains('#') {
                    ck.err(
                        p,
                        part.span,
                        "# is not allowed in a topic an action names".into(),
                    );
                    return;
                }
                if !frozen {
                    prefix.push_str(s);
                }
            }
            _ => frozen = true,
        }
    }
    if !frozen && prefix.is_empty() && !parts.is_empty() {
        ck.err(p, topic.span, "a topic cannot be empty".into());
        return;
    }
    let mut levels: Vec<&str> = prefix.split('/').collect();
    if frozen {
        levels.pop();
    }
    let filter: Vec<&str> = trigger
        .and_then(TriggerKind::filter)
        .map(|f| f.split('/').collect())
        .unwrap_or_default();
    for (k, level) in levels.iter().enumerate() {
        if !level.contains('+') {
            continue;
        }
        let msg = if *level != "+" {
            format!("+ must be a whole level of the topic (level {})", k + 1)
        } else if filter.get(k) != Some(&"+") {
            format!(
                "a + at level {} of this topic needs a + at level {} of the action's ON TOPIC \
                 filter (it takes the value the trigger matched there)",
                k + 1,
                k + 1
            )
        } else {
            continue;
        };
        ck.err(p, topic.span, msg);
        return;
    }
}

fn flatten_concat<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary {
            op: super::ast::BinOp::Add,
            lhs,
            rhs,
        } => {
            flatten_concat(lhs, out);
            flatten_concat(rhs, out);
        }
        _ => out.push(e),
    }
}
