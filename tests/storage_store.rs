//! RedbStore against the broker's reference MemoryStore: the same events, then flush and reopen
//! the file, must load exactly what MemoryStore holds (property test); group commit turns many
//! events into few transactions; sessions that expired while the hub was down are removed.

use bytes::Bytes;
use lothub::broker::store::{
    LoadedSession, MemoryStore, QueuedRecord, QueuedState, SessionRecord, Store, StoredMessage,
    StoredSubscription,
};
use lothub::protocol::packet::{Properties, QoS, SubscriptionOptions};
use lothub::storage::{RedbStore, RedbStoreOptions, Storage};
use proptest::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Ev {
    PutRetained(StoredMessage),
    RemoveRetained(String),
    PutSession(SessionRecord),
    RemoveSession(String),
    Push(String, QueuedRecord),
    Update(String, u64, QueuedState),
    Remove(String, u64),
}

fn apply(store: &dyn Store, ev: &Ev) {
    match ev {
        Ev::PutRetained(m) => store.put_retained(m),
        Ev::RemoveRetained(t) => store.remove_retained(t),
        Ev::PutSession(r) => store.put_session(r),
        Ev::RemoveSession(c) => store.remove_session(c),
        Ev::Push(c, q) => store.queue_push(c, q),
        Ev::Update(c, seq, s) => store.queue_update(c, *seq, *s),
        Ev::Remove(c, seq) => store.queue_remove(c, *seq),
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("a/b"), Just("plant/ü/1"), Just("x")].prop_map(String::from)
}

fn client() -> impl Strategy<Value = String> {
    prop_oneof![Just("c1"), Just("c2"), Just("dev/ä")].prop_map(String::from)
}

fn properties() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(0u8..2),
        proptest::option::of("[a-z/]{0,12}"),
        proptest::option::of("[a-z/]{1,12}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::collection::vec(("[a-z]{0,4}", "[ -~]{0,6}"), 0..3),
    )
        .prop_map(|(pfi, ct, rt, cd, up)| Properties {
            payload_format_indicator: pfi,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd.map(Bytes::from),
            user_properties: up,
            ..Properties::default()
        })
}

fn message() -> impl Strategy<Value = StoredMessage> {
    (
        topic(),
        proptest::collection::vec(any::<u8>(), 0..64),
        qos(),
        any::<bool>(),
        properties(),
        proptest::option::of(4_000_000_000u64..5_000_000_000),
    )
        .prop_map(
            |(topic, payload, qos, retain, properties, exp)| StoredMessage {
                topic,
                payload: Bytes::from(payload),
                qos,
                retain,
                properties,
                expires_at_unix: exp,
            },
        )
}

fn state() -> impl Strategy<Value = QueuedState> {
    prop_oneof![
        Just(QueuedState::Queued),
        any::<u16>().prop_map(|pkid| QueuedState::Sent { pkid }),
        any::<u16>().prop_map(|pkid| QueuedState::Released { pkid }),
    ]
}

fn session(client_id: String) -> impl Strategy<Value = SessionRecord> {
    let sub = (
        "[a-z+#/]{1,8}",
        qos(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        proptest::option::of(1u32..1000),
    )
        .prop_map(|(filter, qos, nl, rap, rh, id)| StoredSubscription {
            filter,
            options: SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: rh,
            },
            subscription_id: id,
        });
    (
        prop_oneof![Just(u32::MAX), 0u32..100_000],
        proptest::collection::vec(sub, 0..3),
    )
        .prop_map(move |(expiry_secs, subscriptions)| SessionRecord {
            client_id: client_id.clone(),
            expiry_secs,
            subscriptions,
        })
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        1 => message().prop_map(Ev::PutRetained),
        1 => topic().prop_map(Ev::RemoveRetained),
        1 => client().prop_flat_map(session).prop_map(Ev::PutSession),
        1 => client().prop_map(Ev::RemoveSession),
        3 => (client(), 0u64..8, message(), qos(), any::<bool>(),
              proptest::collection::vec(1u32..50, 0..3), state())
            .prop_map(|(c, seq, message, qos, retain, subscription_ids, state)| {
                Ev::Push(c, QueuedRecord { seq, message, qos, retain, subscription_ids, state })
            }),
        2 => (client(), 0u64..8, state()).prop_map(|(c, s, st)| Ev::Update(c, s, st)),
        2 => (client(), 0u64..8).prop_map(|(c, s)| Ev::Remove(c, s)),
    ]
}

fn sorted(mut retained: Vec<StoredMessage>, mut sessions: Vec<LoadedSession>) -> Loaded {
    retained.sort_by(|a, b| a.topic.cmp(&b.topic));
    sessions.sort_by(|a, b| a.record.client_id.cmp(&b.record.client_id));
    (retained, sessions)
}

type Loaded = (Vec<StoredMessage>, Vec<LoadedSession>);

fn load(store: &dyn Store) -> Loaded {
    sorted(
        store.load_retained().unwrap(),
        store.load_sessions().unwrap(),
    )
}

fn reopen(dir: &Path) -> RedbStore {
    RedbStore::new(Storage::open(dir).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn redb_store_loads_what_memory_store_holds(events in proptest::collection::vec(event(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let memory = MemoryStore::new();
        {
            let redb = reopen(dir.path());
            for (i, ev) in events.iter().enumerate() {
                apply(&memory, ev);
                apply(&redb, ev);
                // Flush at a few points too, so events span several transactions.
                if i % 17 == 16 {
                    redb.flush().unwrap();
                }
            }
            redb.flush().unwrap();
        }
        let redb = reopen(dir.path());
        prop_assert_eq!(load(&redb), load(&memory));
    }
}

fn queued(seq: u64, payload: &[u8]) -> QueuedRecord {
    QueuedRecord {
        seq,
        message: StoredMessage {
            topic: "line/1/counter".into(),
            payload: Bytes::copy_from_slice(payload),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
            expires_at_unix: None,
        },
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: Vec::new(),
        state: QueuedState::Queued,
    }
}

fn record(client_id: &str, expiry_secs: u32) -> SessionRecord {
    SessionRecord {
        client_id: client_id.into(),
        expiry_secs,
        subscriptions: vec![StoredSubscription {
            filter: "line/#".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
            subscription_id: None,
        }],
    }
}

#[test]
fn group_commit_turns_many_events_into_few_transactions() {
    // A 20 ms window (default 2 ms) keeps the bound below meaningful on a loaded machine, where
    // pushing the events may take far longer than a few windows.
    let opts = RedbStoreOptions {
        window: Duration::from_millis(20),
        ..RedbStoreOptions::default()
    };
    let store = RedbStore::with_options(Storage::in_memory().unwrap(), opts).unwrap();
    let before = store.stats().commits;
    store.put_session(&record("sub", u32::MAX));
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = &store;
            s.spawn(move || {
                for i in 0..2_500u64 {
                    store.queue_push("sub", &queued(t * 10_000 + i, b"payload"));
                }
            });
        }
    });
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(stats.events, 10_001);
    assert_eq!(stats.durable, 10_001);
    assert_eq!(stats.dropped, 0);
    let commits = stats.commits - before;
    assert!(
        commits * 50 <= stats.events,
        "{commits} transactions for {} events",
        stats.events
    );
    assert_eq!(store.load_sessions().unwrap()[0].queued.len(), 10_000);
}

#[test]
fn sessions_that_expired_while_the_hub_was_down_are_removed_with_their_queues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(dir.path());
        store.put_session(&record("short", 60));
        store.put_session(&record("forever", u32::MAX));
        for seq in 1..=3 {
            store.queue_push("short", &queued(seq, b"s"));
            store.queue_push("forever", &queued(seq, b"f"));
        }
        store.flush().unwrap();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = reopen(dir.path());
    // Not yet: the expiry counts from the hub's last heartbeat plus one heartbeat interval.
    assert_eq!(store.expire_sessions(now + 60).unwrap(), 0);
    assert_eq!(store.expire_sessions(now + 1_000).unwrap(), 1);
    let loaded = store.load_sessions().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].record.client_id, "forever");
    assert_eq!(loaded[0].queued.len(), 3);
    // The expired session's queue is gone too: a new session under that id starts empty.
    store.put_session(&record("short", 60));
    store.flush().unwrap();
    let short = store
        .load_sessions()
        .unwrap()
        .into_iter()
        .find(|s| s.record.client_id == "short")
        .unwrap();
    assert!(short.queued.is_empty());
}

#[test]
fn retained_messages_that_expired_while_down_are_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = queued(0, b"old").message;
    old.topic = "old".into();
    old.expires_at_unix = Some(1);
    let mut live = queued(0, b"live").message;
    live.topic = "live".into();
    {
        let store = reopen(dir.path());
        store.put_retained(&old);
        store.put_retained(&live);
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.load_retained().unwrap(), vec![live.clone()]);
    drop(store);
    // And it was deleted from the file, not only skipped.
    assert_eq!(reopen(dir.path()).load_retained().unwrap(), vec![live]);
}

#[tokio::test]
async fn wait_durable_resolves_once_the_events_are_committed() {
    let store = RedbStore::new(Storage::in_memory().unwrap()).unwrap();
    store.put_retained(&queued(0, b"x").message);
    let point = store.durable_point();
    assert_eq!(point, 1);
    tokio::time::timeout(Duration::from_secs(5), store.wait_durable(point))
        .await
        .expect("durable within the group-commit window");
    assert!(store.stats().durable >= point);
}

/// A timing run on a real file (reported, not asserted): QoS 1 queue pushes with 100-byte
/// payloads through group commit, then one flush.
#[test]
fn timing_queue_push_throughput_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    store.put_session(&record("sub", u32::MAX));
    let n = 20_000u64;
    let payload = [7u8; 100];
    let records: Vec<QueuedRecord> = (0..n).map(|seq| queued(seq, &payload)).collect();
    let start = Instant::now();
    for r in &records {
        store.queue_push("sub", r);
    }
    let pushed = start.elapsed();
    store.flush().unwrap();
    let total = start.elapsed();
    let stats = store.stats();
    eprintln!(
        "storage timing: {n} queue_push events: reporting {:.0} ns/event, durable after {:?} \
         ({:.0} events/s), {} commits",
        pushed.as_nanos() as f64 / n as f64,
        total,
        n as f64 / total.as_secs_f64(),
        stats.commits
    );
    assert_eq!(stats.durable, n + 1);

    // Latency of one event on an idle store: group-commit window plus one commit.
    let rounds = 20u32;
    let start = Instant::now();
    for seq in 0..u64::from(rounds) {
        store.queue_remove("sub", seq);
        store.flush().unwrap();
    }
    eprintln!(
        "storage timing: one event reported -> durable: {:?} on average",
        start.elapsed() / rounds
    );
}

/// A timing run (reported, not asserted): load 100,000 retained messages and 1,000 persistent
/// sessions with 10 queued messages each (a tenth of that in debug builds).
#[test]
fn timing_load_at_start() {
    let scale = if cfg!(debug_assertions) { 10 } else { 1 };
    let (retained, sessions) = (100_000 / scale, 1_000 / scale);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(dir.path());
        for i in 0..retained {
            let mut m = queued(0, b"{\"v\":1.5,\"unit\":\"C\"}").message;
            m.topic = format!("site/{}/sensor/{i}", i % 100);
            m.retain = true;
            store.put_retained(&m);
        }
        for s in 0..sessions {
            let id = format!("client-{s}");
            store.put_session(&record(&id, u32::MAX));
            for seq in 0..10 {
                store.queue_push(&id, &queued(seq, b"queued payload"));
            }
        }
        store.flush().unwrap();
    }
    let start = Instant::now();
    let store = reopen(dir.path());
    let r = store.load_retained().unwrap();
    let s = store.load_sessions().unwrap();
    let took = start.elapsed();
    eprintln!(
        "storage timing: open + load of {} retained and {} sessions ({} queued) in {took:?}",
        r.len(),
        s.len(),
        s.iter().map(|s| s.queued.len()).sum::<usize>()
    );
    assert_eq!((r.len(), s.len()), (retained, sessions));
}
