//! # lot::eval::rule: RULE conditions and decisions (spec §2)
//!
//! Runs on every CONNECT, PUBLISH and SUBSCRIBE, so nothing here allocates: the subject borrows
//! the caller's data and conditions compare in place. Choosing the candidate rules (scope, TO TOPIC,
//! priority order, root bypass, caching) is the runtime's job; this file decides one rule.
//!
//! Decisions: `USER HAS` compares flag names ignoring ASCII case (flags are identifiers users
//! type in several spellings); `USER IS`, `USER IN GROUP` and `CLIENTID IS` are exact. An
//! anonymous client has no user, flags or groups, so those conditions are false for it. A
//! `MATCHES REGEX` that fails at run time (fancy-regex's backtrack limit) counts as not matching.

use std::net::IpAddr;

use super::topic;
use crate::lot::ast::{Condition, ConditionKind, Decision, Rule, RuleBody};

/// Who is asking, for what: what a rule condition can look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleSubject<'a> {
    /// None for an anonymous client.
    pub user: Option<&'a str>,
    /// The user's permission flags (`AllowedSystemConfiguration`, ...).
    pub flags: &'a [String],
    /// The user's groups.
    pub groups: &'a [String],
    pub client_id: &'a str,
    pub ip: Option<IpAddr>,
    /// The topic being checked (a topic name for PUBLISH, the filter for SUBSCRIBE), if any.
    pub topic: Option<&'a str>,
}

impl RuleSubject<'_> {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.user.is_some() && self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.user.is_some() && self.groups.iter().any(|g| g == group)
    }
}

/// Whether `cond` holds for `subject`.
pub fn condition_holds(cond: &Condition, s: &RuleSubject<'_>) -> bool {
    match &cond.kind {
        ConditionKind::UserIs(name) => s.user == Some(name.as_str()),
        ConditionKind::UserHas(flag) => s.has_flag(flag),
        ConditionKind::UserInGroup(group) => s.in_group(group),
        ConditionKind::ClientIdIs(id) => s.client_id == id,
        ConditionKind::ClientIdMatches(re) => re.regex.is_match(s.client_id).unwrap_or(false),
        ConditionKind::ClientIdIsTopicPosition(n) => {
            s.topic.and_then(|t| topic::level(t, *n)) == Some(s.client_id)
        }
        ConditionKind::IpIs(ip) => s.ip.is_some_and(|a| same_ip(a, *ip)),
        ConditionKind::IpIn(cidr) => s.ip.is_some_and(|a| cidr.contains(a)),
        ConditionKind::And(a, b) => condition_holds(a, s) && condition_holds(b, s),
        ConditionKind::Or(a, b) => condition_holds(a, s) || condition_holds(b, s),
        ConditionKind::Not(a) => !condition_holds(a, s),
    }
}

/// An IPv4 client reaching a dual-stack listener shows up as `::ffff:a.b.c.d`; it is the same
/// client as `a.b.c.d`.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// The rule's decision for `subject`: the first IF / ELSE IF branch whose condition holds, else
/// the ELSE, else nothing (None: the runtime goes on with the next candidate rule).
pub fn decide(rule: &Rule, subject: &RuleSubject<'_>) -> Option<Decision> {
    match &rule.body {
        RuleBody::Always(d) => Some(d.value),
        RuleBody::If {
            branches,
            otherwise,
        } => branches
            .iter()
            .find(|(cond, _)| condition_holds(cond, subject))
            .map(|(_, d)| d.value)
            .or(otherwise.as_ref().map(|d| d.value)),
    }
}
