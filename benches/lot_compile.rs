//! LOT compile speed (issue #3 speed bar): compiling 1,000 definitions must take under 1 s.
//!
//! The text is a realistic mix: 250 rules, 250 models, 250 actions and 250 routes, each a few
//! lines long, all in one text (so names resolve across definitions, as at deploy time).
//! Run with `cargo bench --bench lot_compile -- --warm-up-time 1 --measurement-time 5`.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lothub::lot::{KnownNames, compile};

fn thousand_definitions() -> String {
    let mut t = String::new();
    for i in 0..250 {
        let _ = write!(
            t,
            "DEFINE RULE R{i} WITH PRIORITY {p} FOR Publish TO TOPIC \"line/{i}/#\"\n    IF USER IS \"op{i}\" OR (USER HAS AllowedSystemConfiguration AND IP IN \"10.0.0.0/8\") THEN\n        ALLOW\n    ELSE IF CLIENTID MATCHES REGEX \"^dev-{i}-\\d+$\" THEN\n        ALLOW\n    ELSE\n        DENY\n\n",
            p = 100 + i
        );
        let _ = write!(
            t,
            "DEFINE MODEL M{i} WITH TOPIC \"m/{i}/+/out\" WITH RETAIN AND QOS1\n    ADD DOUBLE \"t\" WITH TOPIC \"m/{i}/+/t\" AS TRIGGER\n    ADD DOUBLE \"h\" WITH TOPIC \"m/{i}/+/h\"\n    ADD STRING \"site\" WITH \"plant\"\n    ADD TIMESTAMP \"at\" WITH TIMESTAMP \"ISO\"\n\n"
        );
        let _ = write!(
            t,
            "DEFINE ACTION A{i} ON TOPIC \"line/{i}/+/temp\" DO\n    SET \"t\" WITH PAYLOAD AS DOUBLE\n    SET \"limit\" WITH GET TOPIC \"config/{i}/limit\" AS DOUBLE\n    IF {{t}} > {{limit}} * 1.1 THEN\n        PUBLISH TOPIC \"line/{i}/+/alarm\" WITH {{\"t\": {{t}}, \"at\": TIMESTAMP \"UTC\"}}\n        KEEP TOPIC \"line/{i}/+/state\" WITH \"ALARM\"\n    ELSE\n        KEEP TOPIC \"line/{i}/+/state\" WITH \"OK\"\n    PUBLISH MODEL M{i} TO \"out/{i}\" WITH\n        t = {{t}}\n        h = RANDOM DOUBLE BETWEEN 0 AND 100\n\n"
        );
        let _ = write!(
            t,
            "DEFINE ROUTE B{i} WITH TYPE MQTT_BRIDGE\n    ADD SOURCE_CONFIG\n        WITH BROKER SELF\n    ADD DESTINATION_CONFIG\n        WITH BROKER_ADDRESS \"cloud{i}.example.com\"\n        WITH BROKER_PORT '8883'\n        WITH USE_TLS true\n    ADD MAPPING m\n        WITH SOURCE_TOPIC \"line/{i}/#\"\n        WITH DESTINATION_TOPIC \"sites/a/line/{i}/#\"\n\n"
        );
    }
    t
}

fn bench_compile(c: &mut Criterion) {
    let text = thousand_definitions();
    let known = KnownNames::default();
    let defs = compile(&text, None, &known).expect("the benchmark text compiles");
    assert_eq!(defs.len(), 1000);
    c.bench_function("compile 1000 definitions", |b| {
        b.iter(|| compile(black_box(&text), None, &known).map(|d| d.len()))
    });
}

criterion_group!(benches, bench_compile);
criterion_main!(benches);
