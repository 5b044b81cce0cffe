//! Unit tests on redb's in-memory backend: every table's round trip, the binary layouts, the
//! sealing of secrets, the migration step, snapshot export and atomic replace.

use super::codec;
use super::tables::{self, META, SECRETS};
use super::*;
use crate::broker::store::{
    QueuedRecord, QueuedState, SessionRecord, StoredMessage, StoredSubscription,
};
use crate::protocol::packet::{Properties, QoS, SubscriptionOptions};
use bytes::Bytes;
use redb::ReadableTable;
use std::collections::{BTreeMap, BTreeSet};

fn mem() -> Storage {
    Storage::in_memory().expect("in-memory storage")
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        flags: BTreeMap::from([
            ("AllowedUserManagement".to_string(), true),
            ("Custom".to_string(), false),
        ]),
        groups: BTreeSet::from(["ops".to_string()]),
    }
}

fn message() -> StoredMessage {
    StoredMessage {
        topic: "plant/line1/temp".into(),
        payload: Bytes::from_static(b"{\"t\":21.5}"),
        qos: QoS::ExactlyOnce,
        retain: true,
        properties: Properties {
            payload_format_indicator: Some(1),
            content_type: Some("application/json".into()),
            response_topic: Some("reply/here".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..Properties::default()
        },
        expires_at_unix: Some(4_000_000_000),
    }
}

#[test]
fn users_round_trip_and_remove() {
    let s = mem();
    s.put_user(&user("bob")).unwrap();
    s.put_user(&user("alice")).unwrap();
    assert_eq!(s.get_user("bob").unwrap(), Some(user("bob")));
    let names: Vec<_> = s
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let mut changed = user("bob");
    changed.groups.insert("admins".into());
    s.put_user(&changed).unwrap();
    assert_eq!(s.get_user("bob").unwrap(), Some(changed));
    assert!(s.remove_user("bob").unwrap());
    assert!(!s.remove_user("bob").unwrap());
    assert_eq!(s.get_user("bob").unwrap(), None);
}

#[test]
fn definitions_keep_deployment_order_and_replace_by_name() {
    let s = mem();
    let a = s
        .put_definition(DefinitionKind::Rule, "b", "DEFINE RULE b")
        .unwrap();
    let b = s
        .put_definition(DefinitionKind::Rule, "a", "DEFINE RULE a")
        .unwrap();
    s.put_definition(DefinitionKind::Model, "m", "DEFINE MODEL m")
        .unwrap();
    assert!(b > a);
    let rules = s.list_definitions(DefinitionKind::Rule).unwrap();
    assert_eq!(
        rules.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    // Replacing "b" moves it after "a": it was deployed last.
    s.put_definition(DefinitionKind::Rule, "b", "DEFINE RULE b2")
        .unwrap();
    let rules = s.list_definitions(DefinitionKind::Rule).unwrap();
    assert_eq!(
        rules
            .iter()
            .map(|d| (d.name.as_str(), d.source.as_str()))
            .collect::<Vec<_>>(),
        [("a", "DEFINE RULE a"), ("b", "DEFINE RULE b2")]
    );
    assert!(s.remove_definition(DefinitionKind::Rule, "a").unwrap());
    assert!(!s.remove_definition(DefinitionKind::Rule, "a").unwrap());
    assert_eq!(s.remove_all_definitions(DefinitionKind::Rule).unwrap(), 1);
    let left = s.list_all_definitions().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, DefinitionKind::Model);
}

#[test]
fn apply_definitions_applies_a_batch_in_order() {
    let s = mem();
    s.put_definition(DefinitionKind::Action, "old", "x")
        .unwrap();
    s.apply_definitions(&[
        DefinitionChange::Put {
            kind: DefinitionKind::Model,
            name: "m1".into(),
            source: "DEFINE MODEL m1".into(),
        },
        DefinitionChange::Remove {
            kind: DefinitionKind::Action,
            name: "old".into(),
        },
        DefinitionChange::Put {
            kind: DefinitionKind::Action,
            name: "a1".into(),
            source: "DEFINE ACTION a1".into(),
        },
    ])
    .unwrap();
    let all = s.list_all_definitions().unwrap();
    assert_eq!(
        all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["m1", "a1"]
    );
    assert!(all[0].seq < all[1].seq);
}

#[test]
fn env_kept_and_meta_round_trip() {
    let s = mem();
    s.set_env("PLANT", "Porto").unwrap();
    s.set_env("LINE", "1").unwrap();
    assert_eq!(s.get_env("PLANT").unwrap().as_deref(), Some("Porto"));
    assert_eq!(
        s.list_env().unwrap(),
        BTreeMap::from([
            ("LINE".into(), "1".into()),
            ("PLANT".into(), "Porto".into())
        ])
    );
    assert!(s.remove_env("LINE").unwrap());
    assert!(!s.remove_env("LINE").unwrap());

    s.keep_topic("k/1", b"\x00\xffbinary").unwrap();
    s.keep_topic("k/0", b"").unwrap();
    assert_eq!(
        s.kept_topics().unwrap(),
        vec![
            ("k/0".to_string(), Vec::new()),
            ("k/1".to_string(), b"\x00\xffbinary".to_vec())
        ]
    );
    assert!(s.remove_kept("k/0").unwrap());
    assert_eq!(s.kept_topics().unwrap().len(), 1);

    assert_eq!(s.get_meta("seeded").unwrap(), None);
    s.set_meta("seeded", "true").unwrap();
    assert_eq!(s.get_meta("seeded").unwrap().as_deref(), Some("true"));
    assert_eq!(
        s.get_meta("schema_version").unwrap().as_deref(),
        Some(tables::SCHEMA_VERSION.to_string().as_str())
    );
}

#[test]
fn secrets_round_trip_sealed_with_fresh_nonces() {
    let s = mem();
    s.set_secret("db", "hunter2").unwrap();
    s.set_secret("api", "k3y").unwrap();
    assert_eq!(s.get_secret("db").unwrap().as_deref(), Some("hunter2"));
    assert_eq!(s.get_secret("none").unwrap(), None);
    assert_eq!(s.list_secret_names().unwrap(), ["api", "db"]);
    let raw = |s: &Storage| {
        let txn = s.db().begin_read().unwrap();
        let t = txn.open_table(SECRETS).unwrap();
        t.get("db").unwrap().unwrap().value().to_vec()
    };
    let first = raw(&s);
    assert!(!first.windows(7).any(|w| w == b"hunter2"));
    s.set_secret("db", "hunter2").unwrap();
    assert_ne!(first, raw(&s), "each sealing uses a new nonce");
    assert!(s.remove_secret("db").unwrap());
    assert_eq!(s.list_secret_names().unwrap(), ["api"]);
}

#[test]
fn a_sealed_value_moved_to_another_name_does_not_open() {
    let s = mem();
    s.set_secret("a", "alpha").unwrap();
    let sealed = {
        let txn = s.db().begin_read().unwrap();
        let t = txn.open_table(SECRETS).unwrap();
        t.get("a").unwrap().unwrap().value().to_vec()
    };
    s.write(|tx| {
        tx.open_table(SECRETS)?.insert("b", sealed.as_slice())?;
        Ok(())
    })
    .unwrap();
    assert!(matches!(
        s.get_secret("b"),
        Err(StorageError::Secret { name, .. }) if name == "b"
    ));
    // The same value under another hub's key does not open either.
    let other = mem();
    other
        .write(|tx| {
            tx.open_table(SECRETS)?.insert("a", sealed.as_slice())?;
            Ok(())
        })
        .unwrap();
    assert!(other.get_secret("a").is_err());
}

#[test]
fn snapshot_export_and_atomic_replace() {
    let s = mem();
    s.put_user(&user("root")).unwrap();
    s.put_definition(DefinitionKind::Rule, "r", "DEFINE RULE r")
        .unwrap();
    s.put_definition(DefinitionKind::Model, "m", "DEFINE MODEL m")
        .unwrap();
    s.set_env("E", "1").unwrap();
    s.set_secret("pw", "secret-value").unwrap();
    let snap = s.export_configuration().unwrap();
    let json = serde_json::to_string(&snap).unwrap();
    assert!(
        !json.contains("secret-value"),
        "secrets stay sealed in a backup"
    );
    let back: ConfigSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);

    // Change everything, then restore: the old configuration is back exactly.
    s.put_user(&user("mallory")).unwrap();
    s.remove_user("root").unwrap();
    s.put_definition(DefinitionKind::Action, "x", "DEFINE ACTION x")
        .unwrap();
    s.set_env("F", "2").unwrap();
    s.remove_secret("pw").unwrap();
    s.replace_configuration(&back).unwrap();
    assert_eq!(s.export_configuration().unwrap(), snap);
    assert_eq!(s.get_secret("pw").unwrap().as_deref(), Some("secret-value"));
    // A deployment after the restore sorts after every restored definition.
    let seq = s
        .put_definition(DefinitionKind::Rule, "n", "DEFINE RULE n")
        .unwrap();
    assert!(snap.definitions.iter().all(|d| d.seq < seq));
}

#[test]
fn replace_with_a_bad_snapshot_changes_nothing() {
    let s = mem();
    s.put_user(&user("root")).unwrap();
    let mut snap = s.export_configuration().unwrap();
    snap.users.clear();
    snap.secrets.push(SealedSecret {
        name: "x".into(),
        sealed_hex: "not hex".into(),
    });
    assert!(s.replace_configuration(&snap).is_err());
    assert_eq!(s.list_users().unwrap(), vec![user("root")]);
}

#[test]
fn migrate_creates_all_tables_and_refuses_a_newer_schema() {
    let s = mem();
    let txn = s.db().begin_read().unwrap();
    // Every table exists right after open, so readers never meet a missing one.
    assert!(txn.open_table(tables::QUEUE).is_ok());
    assert!(txn.open_table(tables::KEPT).is_ok());
    drop(txn);
    s.set_meta("schema_version", "99").unwrap();
    let txn = s.db().begin_write().unwrap();
    let err = tables::migrate(&txn, std::path::Path::new("x.redb")).unwrap_err();
    assert!(
        matches!(err, StorageError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    drop(txn);
    // A current file migrates as a no-op.
    s.set_meta("schema_version", "1").unwrap();
    let txn = s.db().begin_write().unwrap();
    assert_eq!(tables::migrate(&txn, std::path::Path::new("x")).unwrap(), 1);
    assert_eq!(
        txn.open_table(META)
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap()
            .value(),
        "1"
    );
}

#[test]
fn message_layout_round_trips() {
    let m = message();
    assert_eq!(
        codec::decode_message(&codec::encode_message(&m)).unwrap(),
        m
    );
    let plain = StoredMessage {
        topic: "a".into(),
        payload: Bytes::new(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
        expires_at_unix: None,
    };
    assert_eq!(
        codec::decode_message(&codec::encode_message(&plain)).unwrap(),
        plain
    );
    let bytes = codec::encode_message(&m);
    for cut in 0..bytes.len() {
        assert!(
            codec::decode_message(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn session_and_queue_layouts_round_trip() {
    let record = SessionRecord {
        client_id: "dev-1".into(),
        expiry_secs: 3600,
        subscriptions: vec![
            StoredSubscription {
                filter: "$share/g/a/+".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: false,
                    retain_as_published: true,
                    retain_handling: 2,
                },
                subscription_id: Some(7),
            },
            StoredSubscription {
                filter: "b/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: false,
                    retain_handling: 1,
                },
                subscription_id: None,
            },
        ],
    };
    let (back, written) =
        codec::decode_session("dev-1", &codec::encode_session(&record, 1234)).unwrap();
    assert_eq!((back, written), (record, 1234));

    let mut q = QueuedRecord {
        seq: 42,
        message: message(),
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: vec![1, 9],
        state: QueuedState::Queued,
    };
    let mut row = codec::encode_queued(&q);
    assert_eq!(codec::decode_queued(42, &row).unwrap(), q);
    for state in [
        QueuedState::Sent { pkid: 65535 },
        QueuedState::Released { pkid: 3 },
        QueuedState::Queued,
    ] {
        codec::set_queued_state(&mut row, state).unwrap();
        q.state = state;
        assert_eq!(codec::decode_queued(42, &row).unwrap(), q);
    }
}

#[test]
fn a_full_queue_blocks_briefly_then_drops_and_counts() {
    use crate::broker::store::Store;
    use std::time::{Duration, Instant};
    let s = mem();
    let opts = RedbStoreOptions {
        window: Duration::from_millis(1),
        capacity: 4,
        capacity_bytes: 1 << 20,
        full_wait: Duration::from_millis(200),
        heartbeat: Duration::from_secs(30),
    };
    let store = RedbStore::with_options(s.clone(), opts).unwrap();
    // Hold redb's single write transaction: the writer stalls like on a dead disk.
    let blocker = s.db().begin_write().unwrap();
    store.remove_retained("first");
    // Let the writer take "first" and block in begin_write.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.stats().waiting > 0 {
        assert!(Instant::now() < deadline, "the writer never took the batch");
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..4 {
        store.remove_retained(&format!("fill{i}"));
    }
    let started = Instant::now();
    store.remove_retained("dropped-after-waiting");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200), "waited {waited:?}");
    let started = Instant::now();
    store.remove_retained("dropped-at-once");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "a second overflow must not wait again"
    );
    assert_eq!(store.stats().dropped, 2);
    drop(blocker);
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!((stats.events, stats.durable, stats.dropped), (5, 5, 2));
    // Once drained, events are accepted again.
    store.remove_retained("after");
    store.flush().unwrap();
    assert_eq!(store.stats().durable, 6);
}

#[test]
fn a_file_without_schema_version_is_migrated_and_keeps_its_rows() {
    // A version-0 file: a table written before `meta` existed.
    let db = redb::Builder::new()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(tables::ENV)
        .unwrap()
        .insert("KEPT", "yes")
        .unwrap();
    txn.commit().unwrap();
    let s = Storage::init(db, super::secrets::ephemeral_key(), "old.redb".into()).unwrap();
    assert_eq!(s.get_meta("schema_version").unwrap().as_deref(), Some("1"));
    assert_eq!(s.get_env("KEPT").unwrap().as_deref(), Some("yes"));
    // Every table of version 1 exists after the upgrade.
    assert!(s.list_users().unwrap().is_empty());
    assert!(s.kept_topics().unwrap().is_empty());
}
