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

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

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

// ---------------------------------------------------------------------------------------------
// Expressions (spec §5)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `EMPTY`.
    Empty,
    /// `{name}`.
    Var(String),
    /// JSON object literal `{"k": expr, ...}` (keys in written order).
    Object(Vec<(Spanned<String>, Expr)>),
    /// JSON array literal `[expr, ...]`.
    Array(Vec<Expr>),
    /// `PAYLOAD [AS type]`.
    Payload(Option<ValueType>),
    /// `TOPIC POSITION n` (1-based level of the triggering topic).
    TopicPosition(u32),
    /// `GET TOPIC operand [AS type]`; a `+` in the resulting topic takes the trigger's level.
    GetTopic {
        topic: Box<Expr>,
        cast: Option<ValueType>,
    },
    /// `GET JSON "a.b.c" IN expr [AS type]`.
    GetJson {
        path: String,
        input: Box<Expr>,
        cast: Option<ValueType>,
    },
    /// `GET ENV "NAME"`.
    GetEnv(String),
    /// `GET SECRET "NAME"`.
    GetSecret(String),
    /// `TIMESTAMP "fmt"` / `TIMESTAMP WITH "fmt"`.
    Timestamp(TimeFormat),
    RandomUuid,
    /// `RANDOM INT BETWEEN lo AND hi`.
    RandomInt {
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// `RANDOM DOUBLE BETWEEN lo AND hi`.
    RandomDouble {
        low: Box<Expr>,
        high: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    /// `REPLACE find WITH replacement IN input`.
    Replace {
        find: Box<Expr>,
        with: Box<Expr>,
        input: Box<Expr>,
    },
    /// `FILTER input USING REGEX "re"`: first match, or its first capture group.
    Filter {
        input: Box<Expr>,
        regex: CompiledRegex,
    },
    /// `TRIM input`.
    Trim(Box<Expr>),
    /// `SPLIT input USING "sep"`: an array.
    Split {
        input: Box<Expr>,
        separator: String,
    },
    /// Inline `IF c THEN e [ELSE IF c THEN e]* ELSE e`.
    If {
        branches: Vec<(Expr, Expr)>,
        otherwise: Box<Expr>,
    },
    /// `CLIENTID` (ON CONNECT / ON DISCONNECT actions).
    ClientId,
    /// `USER` (ON CONNECT / ON DISCONNECT actions; EMPTY for an anonymous client).
    User,
}

/// Binary operators, see [`BinOp::precedence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    /// `==`, `=`, `EQUALS`.
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    StartsWith,
    EndsWith,
    /// Adds numbers; concatenates when either side is text that is not a number.
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// Binding strength, higher binds tighter (spec §5: OR < AND < NOT < comparisons < + - < * / %).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq
            | BinOp::Ne
            | BinOp::Lt
            | BinOp::Le
            | BinOp::Gt
            | BinOp::Ge
            | BinOp::Contains
            | BinOp::StartsWith
            | BinOp::EndsWith => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "OR",
            BinOp::And => "AND",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Contains => "CONTAINS",
            BinOp::StartsWith => "STARTS_WITH",
            BinOp::EndsWith => "ENDS_WITH",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `NOT` (binds looser than comparisons: `NOT a == b` is `NOT (a == b)`).
    Not,
    /// Unary `-` (binds tightest).
    Neg,
}

/// The `AS type` of PAYLOAD, GET TOPIC and GET JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    String,
    Int,
    Double,
    Bool,
    Json,
    Bytes,
}

/// The format of a `TIMESTAMP` expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TimeFormat {
    /// `2025-03-17T14:25:30.123Z`.
    Iso,
    /// `2025-03-17 14:25:30`.
    Utc,
    /// Seconds since the epoch.
    Unix,
    /// Milliseconds since the epoch.
    UnixMs,
    /// A pattern with `yyyy MM dd HH mm ss fff`; other characters are copied.
    Pattern(String),
}

// ---------------------------------------------------------------------------------------------
// ROUTE (spec §6)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Route {
    pub name: Spanned<String>,
    pub route_type: Spanned<RouteType>,
    /// `ADD <BLOCK>_CONFIG` blocks in written order.
    pub configs: Vec<RouteConfig>,
    pub mappings: Vec<Mapping>,
    pub events: Vec<RouteEvent>,
    pub span: Span,
}

/// The route types lothub runs (others are refused at compile time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    MqttBridge,
    Postgresql,
}

impl RouteType {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::MqttBridge => "MQTT_BRIDGE",
            RouteType::Postgresql => "POSTGRESQL",
        }
    }
}

/// `ADD SOURCE_CONFIG` + `WITH KEY value` lines. `block` is upper-cased (`SOURCE_CONFIG`).
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub block: Spanned<String>,
    pub entries: Vec<RouteEntry>,
    pub span: Span,
}

impl RouteConfig {
    /// The entry for `key` (upper-case), if given.
    pub fn get(&self, key: &str) -> Option<&RouteEntry> {
        self.entries.iter().find(|e| e.key.value == key)
    }
}

/// `WITH KEY value`. `key` is upper-cased; the value is already converted to what the key needs
/// (`'1883'` becomes `Int(1883)` for `BROKER_PORT`).
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub key: Spanned<String>,
    pub value: RouteValue,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `GET ENV "N"`: read (and converted) when the route starts.
    Env(String),
    /// `GET SECRET "N"`.
    Secret(String),
    /// `WITH BROKER SELF`: this hub.
    SelfBroker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Out,
    In,
    Both,
}

/// `ADD MAPPING name` block.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: Spanned<String>,
    pub source_topic: Spanned<String>,
    pub destination_topic: Spanned<String>,
    /// Default `Out` when not given.
    pub direction: Direction,
    pub span: Span,
}

/// `ADD EVENT name` block.
#[derive(Debug, Clone)]
pub struct RouteEvent {
    pub name: Spanned<String>,
    pub source_topic: Spanned<String>,
    pub query: Spanned<String>,
    pub destination_topic: Option<Spanned<String>>,
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
