//! LOT evaluation speed (issue #3 speed bar): a typical rule condition under 1 µs, a
//! ten-statement action under 20 µs. Rules run on every publish, so these are hot paths.
//!
//! The definitions are compiled from LOT text when the parser is present (what users write);
//! run with `cargo bench --bench lot_eval -- --warm-up-time 1 --measurement-time 3`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lothub::lot::ast::*;
use lothub::lot::context::Context;
use lothub::lot::eval::{self, EvalError, Outputs, RuleSubject};
use lothub::lot::value::Value;
use rand::{RngCore, SeedableRng, rngs::StdRng};

/// A context whose sinks do not grow: publishes are counted, kept values overwrite in place.
struct BenchContext {
    trigger_topic: String,
    trigger_payload: Bytes,
    store: HashMap<String, Bytes>,
    published: u64,
    rng: StdRng,
    now: DateTime<Utc>,
}

impl Context for BenchContext {
    fn trigger_topic(&self) -> Option<&str> {
        Some(&self.trigger_topic)
    }
    fn trigger_payload(&self) -> Option<&Bytes> {
        Some(&self.trigger_payload)
    }
    fn get_topic(&self, topic: &str) -> Option<Bytes> {
        self.store.get(topic).cloned()
    }
    fn keep_topic(&mut self, topic: &str, payload: Bytes) {
        match self.store.get_mut(topic) {
            Some(slot) => *slot = payload,
            None => {
                self.store.insert(topic.to_string(), payload);
            }
        }
    }
    fn publish(&mut self, topic: &str, payload: Bytes, _retain: bool, _qos: u8) {
        black_box((topic, payload));
        self.published += 1;
    }
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
    fn secret(&self, _name: &str) -> Option<String> {
        None
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    fn rng(&mut self) -> &mut dyn RngCore {
        &mut self.rng
    }
    fn client_id(&self) -> Option<&str> {
        None
    }
    fn user(&self) -> Option<&str> {
        None
    }
    fn depth(&self) -> u32 {
        0
    }
    fn model(&self, _name: &str) -> Option<Arc<Model>> {
        None
    }
    fn call_action(
        &mut self,
        name: &str,
        _inputs: Vec<(String, Value)>,
    ) -> Result<Outputs, EvalError> {
        Err(EvalError::UnknownAction(name.to_string()))
    }
}

const RULE: &str = r#"DEFINE RULE SysConfig WITH PRIORITY 500 FOR Publish TO TOPIC "devices/#"
    IF USER HAS AllowedSystemConfiguration OR CLIENTID IS TOPIC POSITION 2 THEN
        ALLOW
    ELSE
        DENY
"#;

const ACTION: &str = r#"DEFINE ACTION TempWatch
ON TOPIC "sensors/+/temp" DO
    SET "t" WITH PAYLOAD AS DOUBLE
    SET "limit" WITH GET TOPIC "config/+/limit"
    SET "f" WITH {t} * 1.8 + 32
    SET "state" WITH IF {t} > {limit} THEN "hot" ELSE "ok"
    SET "count" WITH GET TOPIC "stats/+/count" + 1
    KEEP TOPIC "stats/+/count" WITH {count}
    IF {t} > {limit} THEN
        PUBLISH TOPIC "alarms/+/temp" WITH "high: " + {t}
    PUBLISH TOPIC "sensors/+/fahrenheit" WITH {f}
    PUBLISH TOPIC "sensors/+/state" WITH {state}
    PUBLISH TOPIC "sensors/+/summary" WITH {"t": {t}, "f": {f}, "at": TIMESTAMP "UNIX-MS"}
"#;

const MODEL: &str = r#"DEFINE MODEL Machine WITH TOPIC "plant/+/machine"
    ADD DOUBLE "temp" WITH TOPIC "machines/+/temp" AS TRIGGER
    ADD INT "count" WITH TOPIC "machines/+/count"
    ADD BOOL "running" WITH TOPIC "machines/+/running"
    ADD STRING "site" WITH "north"
    ADD TIMESTAMP "at" WITH TIMESTAMP "ISO"
"#;

fn compile_one(text: &str) -> DefinitionAst {
    let defs = lothub::lot::compile(text, None, &lothub::lot::KnownNames::default())
        .expect("benchmark LOT text compiles");
    defs.into_iter().next().expect("one definition").ast
}

fn bench_rule(c: &mut Criterion) {
    let DefinitionAst::Rule(rule) = compile_one(RULE) else {
        panic!("not a rule")
    };
    let flags = vec!["AllowedUserManagement".to_string()];
    let subject = RuleSubject {
        user: Some("operator"),
        flags: &flags,
        groups: &[],
        client_id: "press-07",
        ip: Some("10.1.2.3".parse().unwrap()),
        topic: Some("devices/press-07/state"),
    };
    assert_eq!(eval::decide(&rule, &subject), Some(Decision::Allow));
    c.bench_function("rule: USER HAS x OR CLIENTID IS TOPIC POSITION 2", |b| {
        b.iter(|| eval::decide(black_box(&rule), black_box(&subject)))
    });
    let denied = RuleSubject {
        client_id: "robot-1",
        ..subject
    };
    assert_eq!(eval::decide(&rule, &denied), Some(Decision::Deny));
    c.bench_function("rule: same, both sides false (ELSE)", |b| {
        b.iter(|| eval::decide(black_box(&rule), black_box(&denied)))
    });
}

fn bench_action(c: &mut Criterion) {
    let DefinitionAst::Action(action) = compile_one(ACTION) else {
        panic!("not an action")
    };
    let mut store = HashMap::new();
    store.insert("config/m7/limit".to_string(), Bytes::from_static(b"20"));
    store.insert("stats/m7/count".to_string(), Bytes::from_static(b"0"));
    let mut ctx = BenchContext {
        trigger_topic: "sensors/m7/temp".to_string(),
        trigger_payload: Bytes::from_static(b"21.5"),
        store,
        published: 0,
        rng: StdRng::seed_from_u64(1),
        now: DateTime::from_timestamp_millis(1_742_221_530_123).unwrap_or_default(),
    };
    eval::run_action(&action, &mut ctx, &[]).expect("action runs");
    assert_eq!(ctx.published, 4, "alarm, fahrenheit, state, summary");
    c.bench_function("action: ten statements (TempWatch)", |b| {
        b.iter(|| eval::run_action(black_box(&action), &mut ctx, &[]))
    });
}

fn bench_model(c: &mut Criterion) {
    let DefinitionAst::Model(model) = compile_one(MODEL) else {
        panic!("not a model")
    };
    let mut store = HashMap::new();
    store.insert("machines/m7/count".to_string(), Bytes::from_static(b"12"));
    store.insert(
        "machines/m7/running".to_string(),
        Bytes::from_static(b"true"),
    );
    let mut ctx = BenchContext {
        trigger_topic: "machines/m7/temp".to_string(),
        trigger_payload: Bytes::from_static(b"21.5"),
        store,
        published: 0,
        rng: StdRng::seed_from_u64(1),
        now: DateTime::from_timestamp_millis(1_742_221_530_123).unwrap_or_default(),
    };
    let out = eval::eval_model(&model, &mut ctx);
    assert!(out.errors.is_empty());
    assert_eq!(out.topic.as_deref(), Some("plant/m7/machine"));
    c.bench_function(
        "model: five fields, evaluated and rendered (Machine)",
        |b| b.iter(|| eval::eval_model(black_box(&model), &mut ctx).payload()),
    );
}

criterion_group!(benches, bench_rule, bench_action, bench_model);
criterion_main!(benches);
