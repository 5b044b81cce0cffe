//! Unit tests of the subscription tree: matching tables, merging, shared groups, pruning.

use super::*;

fn opts(qos: u8) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::from_u8(qos).unwrap(),
        ..SubscriptionOptions::default()
    }
}

fn key(s: &str) -> ClientKey {
    Arc::from(s)
}

fn sub(tree: &mut SubscriptionTree, filter: &str, client: &str) {
    tree.subscribe(filter, key(client), opts(0), None).unwrap();
}

/// Sorted client ids receiving `topic`.
fn who(tree: &SubscriptionTree, topic: &str) -> Vec<String> {
    let mut out = Vec::new();
    tree.matches(topic, &mut out);
    let mut ids: Vec<String> = out.iter().map(|d| d.client.to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn matching_table() {
    // (filter, topic, expected match)
    let table = [
        ("a/b/c", "a/b/c", true),
        ("a/b/c", "a/b", false),
        ("a/b", "a/b/c", false),
        ("a/+/c", "a/x/c", true),
        ("a/+/c", "a/x/y/c", false),
        ("a/+", "a/", true),
        ("+", "a", true),
        ("+", "a/b", false),
        ("+/+", "/a", true),
        ("/+", "/a", true),
        ("#", "a/b/c", true),
        ("#", "/", true),
        ("a/#", "a", true),
        ("sport/#", "sport", true),
        ("sport/#", "sport/tennis/player1", true),
        ("sport/#", "sports", false),
        ("sport/+/#", "sport/x", true),
        ("sport/+/#", "sport", false),
        ("+/#", "a", true),
        ("A/b", "a/b", false),
        ("#", "$SYS/broker/uptime", false),
        ("+/broker/uptime", "$SYS/broker/uptime", false),
        ("+/#", "$SYS", false),
        ("$SYS/#", "$SYS/broker/uptime", true),
        ("$SYS/+/uptime", "$SYS/broker/uptime", true),
        ("$SYS/broker/uptime", "$SYS/broker/uptime", true),
        ("a/$x/#", "a/$x/y", true),
        ("+/$x", "a/$x", true),
    ];
    for (filter, topic, expected) in table {
        let mut tree = SubscriptionTree::new();
        sub(&mut tree, filter, "c");
        let got = !who(&tree, topic).is_empty();
        assert_eq!(got, expected, "filter {filter:?} topic {topic:?}");
        // The trie must agree with the reference matcher in protocol::topic.
        assert_eq!(
            got,
            crate::protocol::topic::matches(filter, topic),
            "{filter} {topic}"
        );
    }
}

#[test]
fn many_subscribers_only_matching_ones_returned() {
    let mut tree = SubscriptionTree::new();
    for i in 0..1000 {
        sub(&mut tree, &format!("dev/{i}/temp"), &format!("c{i}"));
    }
    sub(&mut tree, "dev/+/temp", "all");
    assert_eq!(tree.len(), 1001);
    assert_eq!(who(&tree, "dev/42/temp"), vec!["all", "c42"]);
    assert_eq!(who(&tree, "dev/42/hum"), Vec::<String>::new());
}

#[test]
fn resubscribe_replaces_and_reports_not_new() {
    let mut tree = SubscriptionTree::new();
    assert_eq!(tree.subscribe("a/b", key("c"), opts(0), None), Ok(true));
    assert_eq!(tree.subscribe("a/b", key("c"), opts(2), Some(9)), Ok(false));
    assert_eq!(tree.len(), 1);
    let mut out = Vec::new();
    tree.matches("a/b", &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].qos, QoS::ExactlyOnce);
    assert_eq!(out[0].subscription_ids.as_slice(), &[9]);
}

#[test]
fn overlapping_subscriptions_merge_into_one_delivery() {
    let mut tree = SubscriptionTree::new();
    let rap = SubscriptionOptions {
        retain_as_published: true,
        ..opts(0)
    };
    tree.subscribe("a/+", key("c"), rap, Some(1)).unwrap();
    tree.subscribe("a/#", key("c"), opts(2), Some(2)).unwrap();
    tree.subscribe("a/b", key("c"), opts(1), None).unwrap();
    tree.subscribe("a/b", key("d"), opts(1), Some(7)).unwrap();
    let mut out = Vec::new();
    tree.matches("a/b", &mut out);
    assert_eq!(out.len(), 2);
    let c = out.iter().find(|d| &*d.client == "c").unwrap();
    assert_eq!(c.qos, QoS::ExactlyOnce);
    assert!(c.retain_as_published);
    let mut ids = c.subscription_ids.as_slice().to_vec();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    let d = out.iter().find(|d| &*d.client == "d").unwrap();
    assert_eq!(d.subscription_ids.as_slice(), &[7]);
    assert!(!d.retain_as_published);
}

#[test]
fn no_local_is_per_subscription() {
    let mut tree = SubscriptionTree::new();
    let nl = SubscriptionOptions {
        no_local: true,
        ..opts(1)
    };
    tree.subscribe("t/#", key("me"), nl, Some(1)).unwrap();
    tree.subscribe("t/x", key("other"), nl, None).unwrap();
    let mut out = Vec::new();
    tree.matches_filtered("t/x", Some("me"), &|_| true, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].client, "other");
    // An overlapping subscription without no-local still delivers, with its id only.
    tree.subscribe("t/+", key("me"), opts(0), Some(2)).unwrap();
    out.clear();
    tree.matches_filtered("t/x", Some("me"), &|_| true, &mut out);
    let me = out.iter().find(|d| &*d.client == "me").unwrap();
    assert_eq!(me.subscription_ids.as_slice(), &[2]);
    assert_eq!(me.qos, QoS::AtMostOnce);
}

#[test]
fn shared_group_round_robin_and_normal_subscription() {
    let mut tree = SubscriptionTree::new();
    for c in ["a", "b", "c"] {
        sub(&mut tree, "$share/g/jobs/+", c);
    }
    sub(&mut tree, "$share/h/jobs/#", "z");
    sub(&mut tree, "jobs/1", "a");
    let mut counts = AHashMap::new();
    let mut out = Vec::new();
    for _ in 0..30 {
        out.clear();
        tree.matches("jobs/1", &mut out);
        // One normal copy for a, one from group g, one from group h.
        assert_eq!(out.len(), 3);
        assert_eq!(out.iter().filter(|d| !d.shared).count(), 1);
        for d in out.iter().filter(|d| d.shared && &*d.client != "z") {
            *counts.entry(d.client.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&n| n == 10), "{counts:?}");
}

#[test]
fn shared_group_prefers_available_members() {
    let mut tree = SubscriptionTree::new();
    for c in ["a", "b", "c"] {
        sub(&mut tree, "$share/g/t", c);
    }
    let mut out = Vec::new();
    for _ in 0..6 {
        tree.matches_filtered("t", None, &|c| c != "b", &mut out);
    }
    assert_eq!(out.len(), 6);
    assert!(out.iter().all(|d| &*d.client != "b"));
    // Nobody available: still delivered to someone (its session queues it).
    out.clear();
    tree.matches_filtered("t", None, &|_| false, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn unsubscribe_prunes_empty_nodes() {
    let mut tree = SubscriptionTree::new();
    sub(&mut tree, "a/b/c/d", "x");
    sub(&mut tree, "a/+/#", "y");
    sub(&mut tree, "$share/g/a/b", "x");
    assert_eq!(tree.len(), 3);
    assert!(!tree.unsubscribe("a/b/c/d", "y"));
    assert!(!tree.unsubscribe("a/b/c", "x"));
    assert!(tree.unsubscribe("a/b/c/d", "x"));
    assert!(tree.unsubscribe("a/+/#", "y"));
    assert!(!tree.unsubscribe("$share/other/a/b", "x"));
    assert!(tree.unsubscribe("$share/g/a/b", "x"));
    assert_eq!(tree.len(), 0);
    assert!(tree.root.is_empty(), "{:?}", tree.root);
    assert!(who(&tree, "a/b/c/d").is_empty());
}

#[test]
fn depth_bound_and_bad_shared_are_refused() {
    let mut tree = SubscriptionTree::new();
    let deep = vec!["x"; MAX_LEVELS + 1].join("/");
    assert_eq!(
        tree.subscribe(&deep, key("c"), opts(0), None),
        Err(TrieError::TooDeep)
    );
    let ok = vec!["x"; MAX_LEVELS].join("/");
    assert_eq!(tree.subscribe(&ok, key("c"), opts(0), None), Ok(true));
    assert_eq!(who(&tree, &ok), vec!["c"]);
    // A topic far deeper than the tree is simply not matched, without deep recursion.
    let very_deep = vec!["x"; 100_000].join("/");
    assert!(who(&tree, &very_deep).is_empty());
    assert_eq!(
        tree.subscribe("$share//t", key("c"), opts(0), None),
        Err(TrieError::BadShared)
    );
}

#[test]
fn out_vector_is_appended_not_cleared() {
    let mut tree = SubscriptionTree::new();
    sub(&mut tree, "t", "a");
    sub(&mut tree, "t", "b");
    let mut out = Vec::with_capacity(8);
    tree.matches("t", &mut out);
    tree.matches("t", &mut out);
    // The second call merges only its own range, so earlier entries stay intact.
    assert_eq!(out.len(), 4);
}
