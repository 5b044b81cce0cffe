//! RULE conditions and decisions on hand-built ASTs.

use std::sync::Arc;

use super::*;
use crate::lot::ast::*;

fn sp(line: u32) -> Span {
    Span {
        line,
        col: 1,
        offset: 0,
        len: 0,
    }
}

fn named<T>(value: T) -> Spanned<T> {
    Spanned { value, span: sp(1) }
}

fn cond(kind: ConditionKind) -> Condition {
    Condition { kind, span: sp(1) }
}

fn rule(branches: Vec<(Condition, Decision)>, otherwise: Option<Decision>) -> Rule {
    Rule {
        name: named("R".to_string()),
        priority: named(1000),
        scope: named(Scope::Publish),
        topic: None,
        body: RuleBody::If {
            branches: branches.into_iter().map(|(c, d)| (c, named(d))).collect(),
            otherwise: otherwise.map(named),
        },
        span: sp(1),
    }
}

#[test]
fn rule_decisions_follow_if_else_if_else() {
    let flags = vec!["allowedsystemconfiguration".to_string()];
    let admin = RuleSubject {
        user: Some("ann"),
        flags: &flags,
        client_id: "c1",
        ..Default::default()
    };
    let anon = RuleSubject {
        client_id: "c1",
        topic: Some("dev/c1/x"),
        ..Default::default()
    };
    let has = || {
        cond(ConditionKind::UserHas(
            "AllowedSystemConfiguration".to_string(),
        ))
    };
    let by_topic = || cond(ConditionKind::ClientIdIsTopicPosition(2));

    let with_else = rule(vec![(has(), Decision::Allow)], Some(Decision::Deny));
    assert_eq!(decide(&with_else, &admin), Some(Decision::Allow));
    assert_eq!(decide(&with_else, &anon), Some(Decision::Deny));

    let no_else = rule(vec![(has(), Decision::Allow)], None);
    assert_eq!(
        decide(&no_else, &anon),
        None,
        "falls through to the next rule"
    );

    let chain = rule(
        vec![(has(), Decision::Deny), (by_topic(), Decision::Allow)],
        None,
    );
    assert_eq!(decide(&chain, &admin), Some(Decision::Deny));
    assert_eq!(decide(&chain, &anon), Some(Decision::Allow));
    let stranger = RuleSubject {
        client_id: "c2",
        topic: Some("dev/c1/x"),
        ..Default::default()
    };
    assert_eq!(decide(&chain, &stranger), None);
}

#[test]
fn every_rule_condition() {
    let flags = vec!["AllowedUserManagement".to_string()];
    let groups = vec!["operators".to_string()];
    let ann = RuleSubject {
        user: Some("ann"),
        flags: &flags,
        groups: &groups,
        client_id: "press-07",
        ip: Some("10.1.2.3".parse().unwrap()),
        topic: Some("devices/press-07/state"),
    };
    let anon = RuleSubject {
        client_id: "press-07",
        ip: Some("::ffff:10.1.2.3".parse().unwrap()),
        ..ann
    };
    let anon = RuleSubject { user: None, ..anon };
    let re = |s: &str| CompiledRegex {
        source: s.to_string(),
        regex: Arc::new(fancy_regex::Regex::new(s).unwrap()),
    };
    let c = cond;
    let cases: Vec<(Condition, bool, bool)> = vec![
        (c(ConditionKind::UserIs("ann".to_string())), true, false),
        (c(ConditionKind::UserIs("Ann".to_string())), false, false),
        (
            c(ConditionKind::UserHas("allowedusermanagement".to_string())),
            true,
            false,
        ),
        (
            c(ConditionKind::UserHas(
                "AllowedSystemConfiguration".to_string(),
            )),
            false,
            false,
        ),
        (
            c(ConditionKind::UserInGroup("operators".to_string())),
            true,
            false,
        ),
        (
            c(ConditionKind::UserInGroup("admins".to_string())),
            false,
            false,
        ),
        (
            c(ConditionKind::ClientIdIs("press-07".to_string())),
            true,
            true,
        ),
        (
            c(ConditionKind::ClientIdMatches(re(r"^press-\d+$"))),
            true,
            true,
        ),
        (
            c(ConditionKind::ClientIdMatches(re(r"^robot"))),
            false,
            false,
        ),
        (c(ConditionKind::ClientIdIsTopicPosition(2)), true, false),
        (c(ConditionKind::ClientIdIsTopicPosition(1)), false, false),
        (
            c(ConditionKind::IpIs("10.1.2.3".parse().unwrap())),
            true,
            true,
        ),
        (
            c(ConditionKind::IpIn(Cidr {
                network: "10.0.0.0".parse().unwrap(),
                prefix: 8,
            })),
            true,
            true,
        ),
        (
            c(ConditionKind::IpIn(Cidr {
                network: "192.168.0.0".parse().unwrap(),
                prefix: 16,
            })),
            false,
            false,
        ),
    ];
    let anon = RuleSubject {
        topic: None,
        ..anon
    };
    for (i, (cnd, for_ann, for_anon)) in cases.iter().enumerate() {
        assert_eq!(condition_holds(cnd, &ann), *for_ann, "case {i} for ann");
        assert_eq!(
            condition_holds(cnd, &anon),
            *for_anon,
            "case {i} for anonymous"
        );
    }
    let user_is = || Box::new(c(ConditionKind::UserIs("ann".to_string())));
    let in_net = || {
        Box::new(c(ConditionKind::IpIn(Cidr {
            network: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        })))
    };
    assert!(condition_holds(
        &c(ConditionKind::And(user_is(), in_net())),
        &ann
    ));
    assert!(!condition_holds(
        &c(ConditionKind::And(user_is(), in_net())),
        &anon
    ));
    assert!(condition_holds(
        &c(ConditionKind::Or(user_is(), in_net())),
        &anon
    ));
    assert!(condition_holds(&c(ConditionKind::Not(user_is())), &anon));
    let always = Rule {
        body: RuleBody::Always(named(Decision::Deny)),
        ..rule(Vec::new(), None)
    };
    assert_eq!(decide(&always, &ann), Some(Decision::Deny));
}
