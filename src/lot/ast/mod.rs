//! # lot::ast: the typed, checked form of LOT definitions
//!
//! Owns the data types the parser builds and the evaluator walks: one [`Definition`] per `DEFINE`,
//! holding a [`DefinitionAst`] (RULE, MODEL, ACTION or ROUTE). Every node carries a [`Span`] so that
//! compile-time and run-time errors can point at the source line and column.
//!
//! What is already done when a value of these types exists (the parser and checker guarantee it):
//! regexes are compiled ([`CompiledRegex`]), cron expressions parsed ([`CronSchedule`]), times of
//! day and IP addresses parsed, route values converted to the type their key needs, names of
//! models and actions resolved, topics and filters validated.
//!
//! Must not touch: parsing, evaluation, I/O. This file only grows (additive changes): the
//! evaluator depends on it. Start reading at [`Definition`].
//!
//! Split in three files for size: this one (definitions, rules, models, actions), `expr.rs`
//! (expressions), `route.rs` (routes); everything is re-exported here, so `lot::ast::X` names
//! every type.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

mod expr;
mod route;

pub use expr::*;
pub use route::*;

/// Where a node sits in the source text. `line` and `col` are 1-based and count from the start of
/// the whole text given to the compiler (not the definition); `col` counts characters. `offset`
/// and `len` are in bytes into that same text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub line: u32,
    pub col: u32,
    pub offset: u32,
    pub len: u32,
}

/// A value with the place it came from (names, topics, quoted texts).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// The four kinds of definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Rule,
    Model,
    Action,
    Route,
}

impl Kind {
    /// The keyword as written after `DEFINE` (`RULE`, `MODEL`, `ACTION`, `ROUTE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rule => "RULE",
            Kind::Model => "MODEL",
            Kind::Action => "ACTION",
            Kind::Route => "ROUTE",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled definition: what `compile` returns, one per `DEFINE`.
#[derive(Debug, Clone)]
pub struct Definition {
    pub kind: Kind,
    pub name: String,
    /// The definition's own source text (from its `DEFINE` to the next one), as written; stored
    /// so the hub can persist and show it.
    pub source: String,
    pub ast: DefinitionAst,
}

#[derive(Debug, Clone)]
pub enum DefinitionAst {
    Rule(Rule),
    Model(Model),
    Action(Action),
    Route(Route),
}

// ---------------------------------------------------------------------------------------------
// RULE (spec §2)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: Spanned<String>,
    /// Never 0-99 (reserved for built-in rules; refused at compile time).
    pub priority: Spanned<i64>,
    pub scope: Spanned<Scope>,
    /// `TO TOPIC "<pattern>"`: a validated MQTT topic filter.
    pub topic: Option<Spanned<String>>,
    pub body: RuleBody,
    /// The whole definition.
    pub span: Span,
}

/// The decision part of a rule.
#[derive(Debug, Clone)]
pub enum RuleBody {
    /// `... ALLOW` / `... DENY` with no condition.
    Always(Spanned<Decision>),
    /// `IF c THEN d [ELSE IF c THEN d]* [ELSE d]`. With no `otherwise` and no branch true, the rule
    /// decides nothing.
    If {
        branches: Vec<(Condition, Spanned<Decision>)>,
        otherwise: Option<Spanned<Decision>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
}

/// The operation a rule applies to. Names are matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Connect,
    Publish,
    Subscribe,
    PublishSys,
    SubscribeSys,
    CommandCall,
    UserManagementCreation,
    UserManagementRemove,
    UserManagementPasswordChange,
    UserManagementUpdate,
    RuleManagementCreation,
    RuleManagementRemove,
    ModelManagementCreation,
    ModelManagementRemove,
    ActionManagementCreation,
    ActionManagementRemove,
    ActionManagementRun,
    RouteManagementCreation,
    RouteManagementRemove,
    SystemConfiguration,
}

impl Scope {
    pub const ALL: [Scope; 20] = [
        Scope::Connect,
        Scope::Publish,
        Scope::Subscribe,
        Scope::PublishSys,
        Scope::SubscribeSys,
        Scope::CommandCall,
        Scope::UserManagementCreation,
        Scope::UserManagementRemove,
        Scope::UserManagementPasswordChange,
        Scope::UserManagementUpdate,
        Scope::RuleManagementCreation,
        Scope::RuleManagementRemove,
        Scope::ModelManagementCreation,
        Scope::ModelManagementRemove,
        Scope::ActionManagementCreation,
        Scope::ActionManagementRemove,
        Scope::ActionManagementRun,
        Scope::RouteManagementCreation,
        Scope::RouteManagementRemove,
        Scope::SystemConfiguration,
    ];

    /// The canonical spelling (`Publish`, `SubscribeSys`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Connect => "Connect",
            Scope::Publish => "Publish",
            Scope::Subscribe => "Subscribe",
            Scope::PublishSys => "PublishSys",
            Scope::SubscribeSys => "SubscribeSys",
            Scope::CommandCall => "CommandCall",
            Scope::UserManagementCreation => "UserManagementCreation",
            Scope::UserManagementRemove => "UserManagementRemove",
            Scope::UserManagementPasswordChange => "UserManagementPasswordChange",
            Scope::UserManagementUpdate => "UserManagementUpdate",
            Scope::RuleManagementCreation => "RuleManagementCreation",
            Scope::RuleManagementRemove => "RuleManagementRemove",
            Scope::ModelManagementCreation => "ModelManagementCreation",
            Scope::ModelManagementRemove => "ModelManagementRemove",
            Scope::ActionManagementCreation => "ActionManagementCreation",
            Scope::ActionManagementRemove => "ActionManagementRemove",
            Scope::ActionManagementRun => "ActionManagementRun",
            Scope::RouteManagementCreation => "RouteManagementCreation",
            Scope::RouteManagementRemove => "RouteManagementRemove",
            Scope::SystemConfiguration => "SystemConfiguration",
        }
    }

    /// Case-insensitive lookup (`publish`, `Publish` and `PUBLISH` are the same scope).
    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule condition (spec §2).
#[derive(Debug, Clone)]
pub struct Condition {
    pub kind: ConditionKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ConditionKind {
    /// `USER IS "name"`: false for an anonymous client.
    UserIs(String),
    /// `USER HAS Flag` (bare or quoted flag name).
    UserHas(String),
    /// `USER IN GROUP "g"`.
    UserInGroup(String),
    /// `CLIENTID IS "x"`.
    ClientIdIs(String),
    /// `CLIENTID MATCHES REGEX "re"`.
    ClientIdMatches(CompiledRegex),
    /// `CLIENTID IS TOPIC POSITION n`: the client id equals level n (1-based) of the topic checked.
    ClientIdIsTopicPosition(u32),
    /// `IP IS "a.b.c.d"`.
    IpIs(IpAddr),
    /// `IP IN "cidr"`.
    IpIn(Cidr),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
}

/// An IP network such as `10.0.0.0/8` or `fd00::/8` (a plain address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies inside this network (an IPv4 address never lies in an IPv6 network and
    /// the reverse, except IPv4-mapped IPv6 addresses, which are compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MODEL (spec §3)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Model {
    pub name: Spanned<String>,
    pub collapsed: bool,
    /// `FROM Parent`: resolved to a known model; its fields come first.
    pub from: Option<Spanned<String>>,
    /// `WITH TOPIC "..."` (topic name or filter with `+`).
    pub topic: Option<Spanned<String>>,
    pub retain: bool,
    /// 0, 1 or 2 (default 0).
    pub qos: u8,
    pub fields: Vec<ModelField>,
    pub span: Span,
}

/// `ADD [TYPE] "name" [WITH source] [AS TRIGGER]`, with nested `ADD` lines for an ARRAY element.
#[derive(Debug, Clone)]
pub struct ModelField {
    pub ty: Option<FieldType>,
    pub name: Spanned<String>,
    pub source: Option<FieldSource>,
    pub trigger: bool,
    /// The element fields of `ADD ARRAY "x"` (empty when none are given).
    pub elements: Vec<ModelField>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Int,
    Double,
    Bool,
    Timestamp,
    Object,
    Array,
}

#[derive(Debug, Clone)]
pub enum FieldSource {
    /// `TOPIC "t"`: the last value seen on that topic (or, for a trigger field, the message).
    Topic(Spanned<String>),
    /// Any expression (literals, TIMESTAMP, RANDOM, JSON object literals...).
    Expr(Expr),
}

// ---------------------------------------------------------------------------------------------
// ACTION (spec §4)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Action {
    pub name: Spanned<String>,
    /// None: callable only (`CALL ACTION`, `-runAction`).
    pub trigger: Option<Trigger>,
    pub inputs: Vec<Input>,
    pub body: Vec<Stmt>,
    /// `RETURN` block: `OUTPUT <var>` lines.
    pub outputs: Vec<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub span: Span,
}

/// `INPUT name AS TYPE`.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: Spanned<String>,
    pub ty: InputType,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputType {
    String,
    Int,
    Double,
    Bool,
    Json,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TriggerKind {
    /// `ON TOPIC "filter"`.
    Topic(Spanned<String>),
    /// `ON CHANGE "filter"`.
    Change(Spanned<String>),
    /// `ON EVERY n UNIT`: at that interval from deployment (`count` >= 1).
    Every {
        count: u64,
        unit: TimeUnit,
    },
    /// `ON EVERY MONDAY|...|DAY|WEEKDAY|WEEKEND AT "HH:mm[:ss]"` (local time).
    EveryAt {
        days: Days,
        at: TimeOfDay,
    },
    /// `ON TIMESTAMP "HH:mm:ss"`: daily at that local time.
    Daily(TimeOfDay),
    /// `ON TIMESTAMP "dd-MM-yyyy HH:mm:ss"`: once, at that local date and time.
    Once(chrono::NaiveDateTime),
    /// `ON CRON "sec min hour dom month dow [year]"`.
    Cron(CronSchedule),
    Start,
    Connect,
    Disconnect,
}

impl TriggerKind {
    /// The topic filter of an ON TOPIC / ON CHANGE trigger.
    pub fn filter(&self) -> Option<&str> {
        match self {
            TriggerKind::Topic(f) | TriggerKind::Change(f) => Some(&f.value),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl TimeUnit {
    pub fn seconds(self) -> u64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Minute => 60,
            TimeUnit::Hour => 3600,
            TimeUnit::Day => 86_400,
            TimeUnit::Week => 604_800,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Days {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
    /// Every day.
    Day,
    /// Monday to Friday.
    Weekday,
    /// Saturday and Sunday.
    Weekend,
}

/// A validated local time of day (hour 0-23, minute 0-59, second 0-59).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// A parsed cron schedule, with its source text.
#[derive(Clone)]
pub struct CronSchedule {
    pub source: String,
    pub schedule: Arc<cron::Schedule>,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

/// A regex compiled once at deploy time (fancy-regex syntax: lookaround, backreferences).
#[derive(Clone)]
pub struct CompiledRegex {
    pub source: String,
    pub regex: Arc<fancy_regex::Regex>,
}

impl fmt::Debug for CompiledRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({:?})", self.source)
    }
}

/// An action statement.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StmtKind {
    /// `SET "v" WITH|TO|AS expr`.
    Set { name: Spanned<String>, value: Expr },
    /// `PUBLISH TOPIC topicExpr WITH expr` (not retained, QoS 0).
    PublishTopic { topic: Expr, value: Expr },
    /// `KEEP TOPIC topicExpr WITH expr`: store only, no delivery.
    KeepTopic { topic: Expr, value: Expr },
    /// `PUBLISH MODEL M TO topicExpr WITH` + indented `field = expr` lines.
    PublishModel {
        model: Spanned<String>,
        topic: Expr,
        fields: Vec<FieldAssign>,
    },
    /// `IF c THEN` block, `ELSE IF c THEN` blocks, optional `ELSE` block.
    If {
        branches: Vec<(Expr, Vec<Stmt>)>,
        otherwise: Option<Vec<Stmt>>,
    },
    /// `CALL ACTION Name [WITH a = expr, ...] [RETURN r1, r2]`.
    CallAction {
        name: Spanned<String>,
        args: Vec<FieldAssign>,
        returns: Vec<Spanned<String>>,
    },
}

/// `name = expr` (a PUBLISH MODEL field or a CALL ACTION argument).
#[derive(Debug, Clone)]
pub struct FieldAssign {
    pub name: Spanned<String>,
    pub value: Expr,
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_are_case_insensitive() {
        assert_eq!(Scope::from_name("publish"), Some(Scope::Publish));
        assert_eq!(Scope::from_name("SUBSCRIBESYS"), Some(Scope::SubscribeSys));
        assert_eq!(Scope::from_name("Publishing"), None);
    }

    #[test]
    fn cidr_contains() {
        let net = Cidr {
            network: "10.1.0.0".parse().unwrap(),
            prefix: 16,
        };
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all = Cidr {
            network: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(all.contains("192.168.1.1".parse().unwrap()));
    }
}
