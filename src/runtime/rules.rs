//! Rules as the hub's authorization (lot-language.md §2): which rules are candidates for an
//! operation, in which order, and what happens when none decides.
//!
//! - Candidates: same scope, and a `TO TOPIC` pattern that matches (publish, delivery: the pattern
//!   is a filter matched against the topic name) or covers (subscribe: every topic the requested
//!   filter can match, the pattern matches too) — [`covers`]. A rule with a pattern never applies
//!   to an operation without a topic (Connect, the management scopes).
//! - Order: ascending priority, ties in deployment order; the first rule that decides wins; no
//!   decision is DENY. Root is never asked about (the runtime checks that before coming here).
//! - Cost: [`RuleIndex`] is built once per snapshot: per scope, the rules sorted, plus the
//!   positions of the rules whose pattern starts with a literal level, keyed by that level. A
//!   check walks only the rules for the topic's first level merged with the rules whose pattern
//!   starts with a wildcard (or has none), without allocating.
//! - CVE-2017-7650: a client id holding `+` or `#` could equal a wildcard level of a requested
//!   filter and make `CLIENTID IS TOPIC POSITION n` widen a pattern; for such client ids the
//!   topic is hidden from the condition, so that condition is false.
//!
//! Must not touch: who the user is (the runtime passes a [`RuleSubject`]), the broker.

use std::collections::HashMap;
use std::sync::Arc;

use crate::lot::Definition;
use crate::lot::ast::{Decision, DefinitionAst, Rule, Scope};
use crate::lot::eval::{RuleSubject, decide, topic::matches};

use super::deployed::Defs;

/// The seed rules created on first start and put back by `-restoreRules` (spec §2.6), in
/// definition order (order matters for ties: AllowCommandOutput before AllowSubscribeSys).
pub const SEED_RULES: &str = r##"DEFINE RULE AllowConnect WITH PRIORITY 1000000 FOR Connect ALLOW
DEFINE RULE AllowPublishTopic WITH PRIORITY 1000000 FOR Publish TO TOPIC "#" ALLOW
DEFINE RULE AllowSubscribeTopic WITH PRIORITY 1000000 FOR Subscribe TO TOPIC "#" ALLOW
DEFINE RULE AllowSubscribeSysBroker WITH PRIORITY 1000000 FOR SubscribeSys TO TOPIC "$SYS/broker/#" ALLOW
DEFINE RULE AllowCommandOutput WITH PRIORITY 1000000 FOR SubscribeSys TO TOPIC "$SYS/Coreflux/Command/Output" IF USER HAS AllowedSystemConfiguration OR USER HAS AllowedUserManagement THEN ALLOW ELSE DENY
DEFINE RULE AllowSubscribeSys WITH PRIORITY 1000000 FOR SubscribeSys TO TOPIC "$SYS/#" IF USER HAS AllowedSystemConfiguration THEN ALLOW ELSE DENY
DEFINE RULE AllowCommandCall WITH PRIORITY 1000000 FOR CommandCall IF USER HAS AllowedSystemConfiguration OR USER HAS AllowedUserManagement THEN ALLOW ELSE DENY
DEFINE RULE AllowUserManagementCreation WITH PRIORITY 1000000 FOR UserManagementCreation IF USER HAS AllowedUserManagement THEN ALLOW ELSE DENY
DEFINE RULE AllowUserManagementRemove WITH PRIORITY 1000000 FOR UserManagementRemove IF USER HAS AllowedUserManagement THEN ALLOW ELSE DENY
DEFINE RULE AllowUserManagementPasswordChange WITH PRIORITY 1000000 FOR UserManagementPasswordChange IF USER HAS AllowedUserManagement THEN ALLOW ELSE DENY
DEFINE RULE AllowUserManagementUpdate WITH PRIORITY 1000000 FOR UserManagementUpdate IF USER HAS AllowedUserManagement THEN ALLOW ELSE DENY
DEFINE RULE AllowRuleManagementCreation WITH PRIORITY 1000000 FOR RuleManagementCreation IF USER HAS AllowedSystemConfiguration THEN ALLOW ELSE DENY
DEFINE RULE AllowRuleManagementRemove WITH PRIORITY 1000000 FOR RuleManagementRemove IF USER HAS AllowedSystemConfiguration THEN ALLOW ELSE DENY
DEFINE RULE AllowModelManagementCreation WITH PRIORITY 1000000 FOR ModelManagementCreation IF USER HAS AllowedAssetManipulation THEN ALLOW ELSE DENY
DEFINE RULE AllowModelManagementRemove WITH PRIORITY 1000000 FOR ModelManagementRemove IF USER HAS AllowedAssetManipulation THEN ALLOW ELSE DENY
DEFINE RULE AllowActionManagementCreation WITH PRIORITY 1000000 FOR ActionManagementCreation IF USER HAS AllowedAssetManipulation THEN ALLOW ELSE DENY
DEFINE RULE AllowActionManagementRemove WITH PRIORITY 1000000 FOR ActionManagementRemove IF USER HAS AllowedAssetManipulation THEN ALLOW ELSE DENY
DEFINE RULE AllowActionManagementRun WITH PRIORITY 1000000 FOR ActionManagementRun IF USER HAS AllowedAssetManipulation THEN ALLOW ELSE DENY
DEFINE RULE AllowRouteManagementCreation WITH PRIORITY 1000000 FOR RouteManagementCreation IF USER HAS AllowedSystemConfiguration THEN ALLOW ELSE DENY
DEFINE RULE AllowRouteManagementRemove WITH PRIORITY 1000000 FOR RouteManagementRemove IF USER HAS AllowedSystemConfiguration THEN ALLOW ELSE DENY
DEFINE RULE AllowSystemConfiguration WITH PRIORITY 1000000 FOR SystemConfiguration IF USER HAS AllowedSystemConfiguration THEN ALLOW ELSE DENY
"##;

/// How a rule's `TO TOPIC` pattern is compared with the operation's topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicMode {
    /// The operation's topic is a topic name (PUBLISH, delivery): the pattern must match it.
    Name,
    /// The operation's topic is a filter (SUBSCRIBE): the pattern must cover it.
    Filter,
}

/// One scope's rules, sorted; see the module header.
#[derive(Debug, Default)]
struct ScopeRules {
    sorted: Vec<Arc<Definition>>,
    /// First literal level of the pattern -> positions in `sorted`, ascending.
    by_first: HashMap<Box<str>, Vec<u32>, ahash::RandomState>,
    /// Positions of the rules with no pattern or a pattern starting with `+` / `#`, ascending.
    general: Vec<u32>,
    /// Whether a check may walk more than [`CHEAP_CANDIDATES`] rules (then decisions are worth
    /// caching per client and topic).
    costly: bool,
}

/// Up to this many candidate rules per check, evaluating is about as cheap as a cache lookup.
const CHEAP_CANDIDATES: usize = 8;

/// Every deployed rule, indexed by scope (built once per snapshot).
#[derive(Debug, Default)]
pub struct RuleIndex {
    scopes: Vec<ScopeRules>,
}

/// The rule AST of a rule definition (the index only ever holds rules).
fn rule_of(def: &Definition) -> Option<&Rule> {
    match &def.ast {
        DefinitionAst::Rule(r) => Some(r),
        _ => None,
    }
}

impl RuleIndex {
    /// Indexes `rules` (in deployment order, which breaks priority ties).
    pub fn build(rules: &Defs) -> RuleIndex {
        let mut scopes: Vec<ScopeRules> =
            Scope::ALL.iter().map(|_| ScopeRules::default()).collect();
        for def in rules.iter() {
            if let Some(rule) = rule_of(def) {
                scopes[rule.scope.value as usize].sorted.push(def.clone());
            }
        }
        for s in &mut scopes {
            // Stable sort: equal priorities keep deployment order.
            s.sorted
                .sort_by_key(|d| rule_of(d).map_or(i64::MAX, |r| r.priority.value));
            for (i, def) in s.sorted.iter().enumerate() {
                let pos = i as u32;
                let first = rule_of(def)
                    .and_then(|r| r.topic.as_ref())
                    .map(|t| t.value.split('/').next().unwrap_or(""));
                match first {
                    Some(level) if level != "+" && level != "#" => {
                        s.by_first.entry(level.into()).or_default().push(pos);
                    }
                    _ => s.general.push(pos),
                }
            }
            let widest = s.by_first.values().map(Vec::len).max().unwrap_or(0);
            s.costly = s.general.len() + widest > CHEAP_CANDIDATES;
        }
        RuleIndex { scopes }
    }

    /// Whether checks of `scope` may walk many rules (see [`CHEAP_CANDIDATES`]).
    pub fn is_costly(&self, scope: Scope) -> bool {
        self.scopes.get(scope as usize).is_some_and(|s| s.costly)
    }

    /// How many rules the scope holds.
    pub fn count(&self, scope: Scope) -> usize {
        self.scopes
            .get(scope as usize)
            .map_or(0, |s| s.sorted.len())
    }

    /// The decision of the rules of `scope` for `subject` (whose `topic` is the operation's
    /// topic or filter, `mode` says which): the first candidate that decides, else DENY.
    pub fn decide(&self, scope: Scope, mode: TopicMode, subject: &RuleSubject<'_>) -> bool {
        let Some(s) = self.scopes.get(scope as usize) else {
            return false;
        };
        let topic = subject.topic;
        let specific: &[u32] = match topic {
            Some(t) => {
                let first = t.split('/').next().unwrap_or("");
                s.by_first.get(first).map_or(&[], Vec::as_slice)
            }
            None => &[],
        };
        // CVE-2017-7650: a wildcard inside the client id must never equal a wildcard level.
        let hide_topic = subject.client_id.contains(['+', '#']);
        let masked;
        let subject = if hide_topic {
            masked = RuleSubject {
                topic: None,
                ..*subject
            };
            &masked
        } else {
            subject
        };
        let (mut a, mut b) = (specific.iter().peekable(), s.general.iter().peekable());
        loop {
            // Merge two ascending position lists: ascending priority, ties in deployment order.
            let pos = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => return false,
            };
            let Some(rule) = pos
                .and_then(|&p| s.sorted.get(p as usize))
                .and_then(|d| rule_of(d))
            else {
                continue;
            };
            if let Some(pattern) = &rule.topic {
                let applies = match (topic, mode) {
                    (None, _) => false,
                    (Some(t), TopicMode::Name) => matches(&pattern.value, t),
                    (Some(t), TopicMode::Filter) => covers(&pattern.value, t),
                };
                if !applies {
                    continue;
                }
            }
            match decide(rule, subject) {
                Some(Decision::Allow) => return true,
                Some(Decision::Deny) => return false,
                None => {}
            }
        }
    }
}

/// Whether every topic that `filter` matches is matched by `pattern` (both valid MQTT filters).
/// MQTT §4.7.2: a pattern starting with a wildcard matches no `$` topic, so it covers no filter
/// whose first level starts with `$`.
pub fn covers(pattern: &str, filter: &str) -> bool {
    if pattern.starts_with(['+', '#']) && filter.starts_with('$') {
        return false;
    }
    let mut f = filter.split('/');
    let mut p = pattern.split('/');
    loop {
        match (p.next(), f.next()) {
            (Some("#"), _) => return true,
            // `+` covers exactly one level: a literal or another `+`, never `#`.
            (Some("+"), Some(fl)) => {
                if fl == "#" {
                    return false;
                }
            }
            (Some(pl), Some(fl)) => {
                if pl != fl {
                    return false;
                }
            }
            // The filter ended: it matches only topics of exactly its length, which the
            // pattern matches only if it ends here too, or goes on with a final `#`
            // (`a/#` matches `a`).
            (Some(pl), None) => return pl == "#" && p.next().is_none(),
            (None, Some(_)) => return false,
            (None, None) => return true,
        }
    }
}

/// The operation a PUBLISH is, from its topic (spec §2, commands-and-sys.md §4): `None` when no
/// client may publish there at all (the hub's own `$SYS/` topics).
pub fn publish_scope(topic: &str) -> Option<Scope> {
    if !topic.starts_with("$SYS/") {
        return Some(Scope::Publish);
    }
    match topic {
        crate::runtime::COMMAND_TOPIC => Some(Scope::CommandCall),
        crate::runtime::CONFIG_NEW_TOPIC => Some(Scope::SystemConfiguration),
        _ => None,
    }
}

/// `Subscribe` or `SubscribeSys` for a filter or topic.
pub fn subscribe_scope(topic: &str) -> Scope {
    if topic.starts_with("$SYS/") || topic == "$SYS" {
        Scope::SubscribeSys
    } else {
        Scope::Subscribe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_table() {
        let yes = [
            ("#", "a/b"),
            ("#", "#"),
            ("#", "+/x"),
            ("a/#", "a"),
            ("a/#", "a/#"),
            ("a/#", "a/+/c"),
            ("a/+", "a/b"),
            ("a/+", "a/+"),
            ("+/+", "a/+"),
            ("$SYS/#", "$SYS/broker/#"),
            ("a/b", "a/b"),
        ];
        let no = [
            ("a/+", "a/#"),
            ("a/+", "a"),
            ("a/b", "a/+"),
            ("a/b", "a/#"),
            ("a/+/#", "a/#"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("#", "$SYS/#"),
            ("+/broker", "$SYS/broker"),
            ("b/#", "a/#"),
        ];
        for (p, f) in yes {
            assert!(covers(p, f), "{p} should cover {f}");
        }
        for (p, f) in no {
            assert!(!covers(p, f), "{p} should not cover {f}");
        }
    }

    #[test]
    fn seed_rules_compile_with_one_rule_per_scope_and_sys_order() {
        let defs = crate::lot::compile(SEED_RULES, None, &Default::default()).unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("AllowCommandOutput") < pos("AllowSubscribeSys"));
        // PublishSys has no seed rule: no client publishes into `$SYS/` (see publish_scope).
        for scope in Scope::ALL.into_iter().filter(|s| *s != Scope::PublishSys) {
            assert!(
                defs.iter()
                    .any(|d| matches!(&d.ast, DefinitionAst::Rule(r) if r.scope.value == scope)),
                "no seed rule for {scope}"
            );
        }
    }

    #[test]
    fn scopes_from_topics() {
        assert_eq!(publish_scope("a/b"), Some(Scope::Publish));
        assert_eq!(
            publish_scope("$SYS/Coreflux/Command"),
            Some(Scope::CommandCall)
        );
        assert_eq!(
            publish_scope("$SYS/Coreflux/Config/New"),
            Some(Scope::SystemConfiguration)
        );
        assert_eq!(publish_scope("$SYS/Coreflux/Rules"), None);
        assert_eq!(subscribe_scope("$SYS/#"), Scope::SubscribeSys);
        assert_eq!(subscribe_scope("#"), Scope::Subscribe);
    }
}
