//! [`Program`]: what the engine runs, built once per deployment from the deployed MODELs and
//! ACTIONs and never changed afterwards (a new deployment builds a new one).
//!
//! Holds the definitions by name (for CALL ACTION, PUBLISH MODEL and FROM), the trigger index
//! (which topics start which models and actions: models' `AS TRIGGER` fields including those
//! inherited with FROM, ON TOPIC and ON CHANGE filters) and the readable-topic index (which
//! topics some definition can read with `TOPIC` sources or `GET TOPIC`, so the last-value store
//! records only those). Must not touch: the broker, storage, timers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::lot::ast::{
    Action, DefinitionAst, Expr, ExprKind, FieldSource, Model, ModelField, Stmt, StmtKind,
    TriggerKind,
};
use crate::lot::{Definition, eval};

use super::filter_index::FilterIndex;

/// What a matching topic starts.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A model with a topic of its own (schema-only models never publish and are not indexed).
    Model(Arc<Model>),
    /// An ON TOPIC action.
    Topic(Arc<Action>),
    /// An ON CHANGE action.
    Change(Arc<Action>),
}

/// What a filter of [`Program::index`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// Some definition reads topics matching it: record their payloads.
    Read,
    /// It starts `targets[i]`.
    Target(u32),
}

/// One deployment's models and actions, indexed.
#[derive(Debug, Default)]
pub(crate) struct Program {
    pub models: HashMap<String, Arc<Model>>,
    pub actions: HashMap<String, Arc<Action>>,
    /// The source text of each action, to tell a replaced action from an unchanged one.
    pub action_sources: HashMap<String, Arc<str>>,
    pub targets: Vec<Target>,
    /// Topic filter -> what it starts (an index into `targets`) or that it is read (`TOPIC`
    /// sources, `GET TOPIC` literals). One index, so the publish path walks once.
    pub index: FilterIndex<Hit>,
    /// A deployed `GET TOPIC` reads a topic built at run time: every topic must be recorded.
    pub record_all: bool,
    pub on_connect: Vec<Arc<Action>>,
    pub on_disconnect: Vec<Arc<Action>>,
}

impl Program {
    /// Builds the program from deployed definitions (other kinds are ignored). Later definitions
    /// of the same name replace earlier ones.
    pub fn build<'a>(definitions: impl IntoIterator<Item = &'a Definition>) -> Program {
        let mut p = Program::default();
        let mut action_order = Vec::new();
        for def in definitions {
            match &def.ast {
                DefinitionAst::Model(m) => {
                    p.models.insert(def.name.clone(), Arc::new(m.clone()));
                }
                DefinitionAst::Action(a) => {
                    if p.actions
                        .insert(def.name.clone(), Arc::new(a.clone()))
                        .is_none()
                    {
                        action_order.push(def.name.clone());
                    }
                    p.action_sources
                        .insert(def.name.clone(), Arc::from(def.source.as_str()));
                }
                _ => {}
            }
        }
        let mut model_names: Vec<&String> = p.models.keys().collect();
        model_names.sort();
        let mut targets = Vec::new();
        let mut index = FilterIndex::default();
        for name in model_names {
            let model = &p.models[name];
            for f in model_fields(model, &p.models) {
                collect_field_reads(f, &mut index, &mut p.record_all);
            }
            if model.collapsed || model.topic.is_none() {
                continue;
            }
            let lookup = |n: &str| p.models.get(n).cloned();
            for filter in eval::trigger_filters(model, &lookup) {
                index.insert(&filter, Hit::Target(targets.len() as u32));
                targets.push(Target::Model(model.clone()));
            }
        }
        for name in &action_order {
            let action = &p.actions[name];
            for s in &action.body {
                stmt_reads(s, &mut index, &mut p.record_all);
            }
            let Some(trigger) = &action.trigger else {
                continue;
            };
            match &trigger.kind {
                TriggerKind::Topic(f) => {
                    index.insert(&f.value, Hit::Target(targets.len() as u32));
                    targets.push(Target::Topic(action.clone()));
                }
                TriggerKind::Change(f) => {
                    index.insert(&f.value, Hit::Target(targets.len() as u32));
                    targets.push(Target::Change(action.clone()));
                }
                TriggerKind::Connect => p.on_connect.push(action.clone()),
                TriggerKind::Disconnect => p.on_disconnect.push(action.clone()),
                _ => {}
            }
        }
        p.targets = targets;
        p.index = index;
        p
    }

    /// Whether a PUBLISH can matter to this program at all (a trigger, or a topic to record).
    pub fn watches_topics(&self) -> bool {
        !self.index.is_empty() || self.record_all
    }

    /// Actions in deployment order that have a time trigger or ON START.
    pub fn scheduled(&self) -> impl Iterator<Item = (&String, &Arc<Action>)> {
        self.actions.iter().filter(|(_, a)| {
            a.trigger.as_ref().is_some_and(|t| {
                !matches!(
                    t.kind,
                    TriggerKind::Topic(_)
                        | TriggerKind::Change(_)
                        | TriggerKind::Connect
                        | TriggerKind::Disconnect
                )
            })
        })
    }
}

/// A model's fields with FROM parents first (a cycle or a missing parent just stops the walk:
/// the compiler refuses both).
fn model_fields<'m>(
    model: &'m Model,
    models: &'m HashMap<String, Arc<Model>>,
) -> Vec<&'m ModelField> {
    let mut chain: Vec<&Model> = vec![model];
    let mut next = model.from.as_ref();
    while let Some(parent) = next.and_then(|n| models.get(&n.value)) {
        if chain.len() > 16 {
            break;
        }
        chain.push(parent);
        next = parent.from.as_ref();
    }
    chain.iter().flat_map(|m| m.fields.iter()).collect()
}

fn collect_field_reads(f: &ModelField, readable: &mut FilterIndex<Hit>, all: &mut bool) {
    match &f.source {
        Some(FieldSource::Topic(t)) => readable.insert(&t.value, Hit::Read),
        Some(FieldSource::Expr(e)) => expr_reads(e, readable, all),
        None => {}
    }
    for e in &f.elements {
        collect_field_reads(e, readable, all);
    }
}

fn stmt_reads(s: &Stmt, readable: &mut FilterIndex<Hit>, all: &mut bool) {
    let mut expr = |e: &Expr| expr_reads(e, readable, all);
    match &s.kind {
        StmtKind::Set { value, .. } => expr(value),
        StmtKind::PublishTopic { topic, value } | StmtKind::KeepTopic { topic, value } => {
            expr(topic);
            expr(value);
        }
        StmtKind::PublishModel { topic, fields, .. } => {
            expr(topic);
            fields.iter().for_each(|f| expr(&f.value));
        }
        StmtKind::CallAction { args, .. } => args.iter().for_each(|a| expr(&a.value)),
        StmtKind::If {
            branches,
            otherwise,
        } => {
            for (cond, body) in branches {
                expr_reads(cond, readable, all);
                body.iter().for_each(|s| stmt_reads(s, readable, all));
            }
            for s in otherwise.iter().flatten() {
                stmt_reads(s, readable, all);
            }
        }
    }
}

/// Finds every `GET TOPIC` in `e`: a literal topic is recorded as a filter (its `+` levels are
/// filled from the trigger at run time, so any value there may be read); any other operand is
/// only known at run time, so every topic must be recorded.
fn expr_reads(e: &Expr, readable: &mut FilterIndex<Hit>, all: &mut bool) {
    let mut go = |e: &Expr| expr_reads(e, readable, all);
    match &e.kind {
        ExprKind::GetTopic { topic, .. } => match &topic.kind {
            ExprKind::Text(t) => readable.insert(t, Hit::Read),
            _ => {
                *all = true;
                expr_reads(topic, readable, all);
            }
        },
        ExprKind::Object(items) => items.iter().for_each(|(_, v)| go(v)),
        ExprKind::Array(items) => items.iter().for_each(go),
        ExprKind::GetJson { input, .. } | ExprKind::Trim(input) => go(input),
        ExprKind::Split { input, .. } | ExprKind::Filter { input, .. } => go(input),
        ExprKind::RandomInt { low, high } | ExprKind::RandomDouble { low, high } => {
            go(low);
            go(high);
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            go(lhs);
            go(rhs);
        }
        ExprKind::Unary { operand, .. } => go(operand),
        ExprKind::Replace { find, with, input } => {
            go(find);
            go(with);
            go(input);
        }
        ExprKind::If {
            branches,
            otherwise,
        } => {
            for (c, v) in branches {
                expr_reads(c, readable, all);
                expr_reads(v, readable, all);
            }
            expr_reads(otherwise, readable, all);
        }
        ExprKind::Text(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Empty
        | ExprKind::Var(_)
        | ExprKind::Payload(_)
        | ExprKind::TopicPosition(_)
        | ExprKind::GetEnv(_)
        | ExprKind::GetSecret(_)
        | ExprKind::Timestamp(_)
        | ExprKind::RandomUuid
        | ExprKind::ClientId
        | ExprKind::User => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lot::{KnownNames, compile};

    fn program(text: &str) -> Program {
        let defs = compile(text, None, &KnownNames::default()).expect("compiles");
        Program::build(defs.iter())
    }

    fn reads(p: &Program, topic: &str) -> bool {
        let mut read = false;
        p.index.for_each_match(topic, |h| read |= *h == Hit::Read);
        read
    }

    #[test]
    fn indexes_triggers_and_reads() {
        let p = program(
            "DEFINE MODEL Base\n    ADD DOUBLE \"t\" WITH TOPIC \"s/+/temp\" AS TRIGGER\n\
             DEFINE MODEL Room FROM Base WITH TOPIC \"rooms/+/state\"\n    ADD \"h\" WITH TOPIC \"s/+/hum\"\n\
             DEFINE ACTION A\nON TOPIC \"in/+\" DO\n    PUBLISH TOPIC \"out\" WITH GET TOPIC \"cfg/+\"\n\
             DEFINE ACTION C\nON CHANGE \"ch/#\" DO\n    SET \"x\" WITH 1\n\
             DEFINE ACTION K\nON CONNECT DO\n    SET \"x\" WITH CLIENTID\n",
        );
        // Base is schema-only (no topic): only Room is indexed, through its inherited trigger.
        let hits = |topic: &str| {
            let mut v = Vec::new();
            p.index.for_each_match(topic, |h| {
                if let Hit::Target(i) = h {
                    v.push(*i)
                }
            });
            v.len()
        };
        assert_eq!(hits("s/k1/temp"), 1);
        assert!(matches!(p.targets[0], Target::Model(_)));
        assert_eq!(hits("in/x"), 1);
        assert_eq!(hits("ch/a/b"), 1);
        assert_eq!(hits("bench/1"), 0);
        assert!(reads(&p, "s/k1/hum"));
        assert!(reads(&p, "cfg/x"));
        assert!(!reads(&p, "bench/1"));
        assert!(!p.record_all);
        assert_eq!(p.on_connect.len(), 1);
        assert!(p.watches_topics());
    }

    #[test]
    fn dynamic_get_topic_records_everything() {
        let p = program(
            "DEFINE ACTION A\nON TOPIC \"in\" DO\n    SET \"t\" WITH \"x\"\n    PUBLISH TOPIC \"o\" WITH GET TOPIC {t}\n",
        );
        assert!(p.record_all);
        let empty = Program::build(std::iter::empty());
        assert!(!empty.watches_topics());
    }
}
