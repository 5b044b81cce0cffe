//! # runtime: LOT plugged into the running hub
//!
//! Owns the deployed LOT state ([`Deployed`], an immutable snapshot swapped whole on change), the
//! users as the hub sees them, rules as the hub's authorization (through the broker's [`Hooks`]),
//! the deployment and user APIs the `$SYS/Coreflux/Command` verbs call, and the retained
//! `$SYS/Coreflux/...` topics that show that state. Models, actions, schedules and the topic
//! store live in `engine/` (another owner); this module hands it every hook call and every new
//! snapshot. Must not touch: command parsing (`command`), redb (`storage`), packets.
//!
//! # Layout
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Runtime`], its settings and errors, the [`Hooks`] implementation |
//! | `deployed.rs` | [`Deployed`] and [`Defs`]: the snapshot and how a change builds the next one |
//! | `deploy.rs` | `deploy` / `remove` / `remove_all` / `restore_rules` / `list`: durable, then live |
//! | `users.rs` | users (`add_user`, flags, groups...), env and secrets, `authenticate` |
//! | `rules.rs` | the rule index, `TO TOPIC` matching and covering, seed rules |
//! | `cache.rs` | the per (client, topic) decision cache (deliveries; publishes under many rules) |
//! | `sys.rs` | the retained `$SYS/Coreflux/...` topics |
//!
//! Start reading at [`Runtime::new`] (seeding and loading happen there, before any listener
//! accepts a client), then [`Runtime::deploy`], then the `Hooks` impl at the end of this file.
//!
//! # Threading
//! Every method that changes state writes to storage first (an fsync): call them from the
//! blocking pool (`spawn_blocking`), never on an async worker. Changes are serialized by one
//! mutex; readers (every CONNECT, PUBLISH, SUBSCRIBE and delivery) take a read lock only long
//! enough to clone an `Arc`.

mod cache;
mod deploy;
mod deployed;
pub mod engine;
pub mod routes;
pub mod rules;
mod sys;
mod users;

pub use deploy::{DeployError, DeployedItem};
pub use deployed::{Defs, Deployed, kind_title};
pub use users::UserInfo;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, RwLock};
use thiserror::Error;

use crate::auth::{AuthError, ROOT_USER, VerifyCache};
use crate::broker::hooks::PublishObservation;
use crate::broker::{AuthDecision, AuthRequest, Broker, ClientInfo, DisconnectReason, Hooks};
use crate::lot::ast::Scope;
use crate::lot::eval::RuleSubject;
use crate::storage::{Storage, StorageError};
use cache::DecisionCache;
use engine::Engine;
use routes::Routes;
use rules::TopicMode;
use users::UserView;

/// Where operators publish commands (commands-and-sys.md §1).
pub const COMMAND_TOPIC: &str = "$SYS/Coreflux/Command";
/// Where SystemConfiguration holders may publish a new configuration.
pub const CONFIG_NEW_TOPIC: &str = "$SYS/Coreflux/Config/New";

/// How the runtime starts.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Whether clients without a user name may connect (then rules govern them like anyone).
    pub allow_anonymous: bool,
    /// Root's password when the store has no root yet, already chosen from `--root-password`,
    /// `LOTHUB_ROOT_PASSWORD` and the config (see [`crate::auth::bootstrap_root_password`]);
    /// `None`: the default `coreflux`, with a WARN at every start while root keeps it.
    pub root_password: Option<String>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            allow_anonymous: true,
            root_password: None,
        }
    }
}

/// Errors of the runtime's API (deployment errors are [`DeployError`]).
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("user '{0}' does not exist")]
    NoSuchUser(String),
    #[error("user '{0}' already exists")]
    UserExists(String),
    #[error("the root user cannot be removed")]
    RootProtected,
    #[error("invalid user name '{0}': it must not be empty or hold spaces, '+' or '#'")]
    InvalidUserName(String),
    #[error("invalid {what} name '{name}'")]
    InvalidName { what: &'static str, name: String },
    #[error("the backup cannot be restored: {0}")]
    InvalidBackup(String),
    #[error("the built-in seed rules do not compile: {0}")]
    Seed(String),
}

/// Receives the PUBLISHes to [`COMMAND_TOPIC`] that authorization let through (the commands
/// module implements it; installed once with [`Runtime::set_command_sink`]).
pub trait CommandSink: Send + Sync + 'static {
    fn on_command(&self, client: &ClientInfo, publish: &PublishObservation<'_>);
}

/// The runtime: a cheap-clone handle (one `Arc`).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    settings: RuntimeSettings,
    /// The live snapshot; writers build a new one and swap it in.
    deployed: RwLock<Arc<Deployed>>,
    /// Users by name (flags and groups for rules, hashes for CONNECT); swapped like `deployed`.
    users: RwLock<Arc<HashMap<String, Arc<UserView>>>>,
    /// Listeners (by name, e.g. `tls:0.0.0.0:8883`) whose user name is the verified client
    /// certificate's CN (`use_identity_as_username`, which fails closed: no CN, no connection).
    identity_listeners: RwLock<Vec<Arc<str>>>,
    /// Bumped after every change of rules or users: cached decisions of older epochs are stale.
    epoch: AtomicU64,
    /// Serializes changes (storage write + snapshot swap + `$SYS` publish in one order).
    write: Mutex<()>,
    broker: OnceLock<Broker>,
    commands: OnceLock<Arc<dyn CommandSink>>,
    /// Models, actions, schedules: told of every snapshot and every accepted PUBLISH.
    engine: Engine,
    /// ROUTEs (bridges): told of every snapshot and every accepted PUBLISH.
    routes: Routes,
    verify: VerifyCache,
    delivery: DecisionCache,
    /// Publish decisions, used only for scopes with many candidate rules.
    publish_cache: DecisionCache,
}

/// Whether a check goes through a decision cache.
#[derive(Clone, Copy)]
enum Caching<'a> {
    Never,
    IfCostly(&'a DecisionCache),
    Always(&'a DecisionCache),
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("generation", &self.snapshot().generation)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens the runtime on `storage`: on first start creates root and the seed rules, then
    /// loads the users and redeploys every stored definition (models, actions, routes, rules).
    /// Everything is ready when this returns, so the hub may accept clients right after.
    /// Blocking (storage, one password hash on first start).
    pub fn new(storage: Storage, settings: RuntimeSettings) -> Result<Runtime, RuntimeError> {
        let runtime = Runtime {
            inner: Arc::new(Inner {
                engine: Engine::new(storage.clone()),
                routes: Routes::new(storage.clone()),
                storage,
                settings,
                deployed: RwLock::new(Arc::new(Deployed::default())),
                users: RwLock::new(Arc::new(HashMap::new())),
                identity_listeners: RwLock::new(Vec::new()),
                epoch: AtomicU64::new(0),
                write: Mutex::new(()),
                broker: OnceLock::new(),
                commands: OnceLock::new(),
                verify: VerifyCache::default(),
                delivery: DecisionCache::new(),
                publish_cache: DecisionCache::new(),
            }),
        };
        runtime.seed()?;
        runtime.reload_users()?;
        runtime.redeploy_stored()?;
        runtime.warn_default_root_password();
        Ok(runtime)
    }

    /// The hooks to hand to [`crate::app::HubOptions`]. They hold the runtime weakly: the
    /// runtime holds the broker (and the engine does), so a strong reference back would be a
    /// cycle that keeps the data file open after the hub stops. Once every [`Runtime`] handle
    /// is dropped, the hooks refuse everything.
    pub fn hooks(&self) -> Arc<dyn Hooks> {
        Arc::new(WeakHooks(Arc::downgrade(&self.inner)))
    }

    /// Gives the runtime the running broker to publish through. Call once, after the hub starts
    /// (later calls are ignored).
    pub fn attach(&self, broker: Broker) {
        self.inner.engine.attach(broker.clone());
        self.inner.routes.attach(broker.clone());
        let _ = self.inner.broker.set(broker);
    }

    /// Declares that on `listener` (its name as in `ClientInfo::listener`) the user name is the
    /// client certificate's CN, verified by TLS: such clients need no password, and need not
    /// exist as users (flags and groups apply when they do). Only for listeners with
    /// `use_identity_as_username`, whose transport refuses a client without a usable CN.
    pub fn trust_tls_identity(&self, listener: Arc<str>) {
        self.inner.identity_listeners.write().push(listener);
    }

    /// Installs the receiver of command PUBLISHes (once; later calls are ignored).
    pub fn set_command_sink(&self, sink: Arc<dyn CommandSink>) {
        let _ = self.inner.commands.set(sink);
    }

    /// After [`Runtime::attach`], inside the tokio runtime: publishes the retained
    /// `$SYS/Coreflux/...` topics (version, users, every deployed definition and the lists) and
    /// starts the engine (worker, timers, ON START actions).
    pub fn start(&self) {
        let _guard = self.inner.write.lock();
        self.publish_all_sys();
        self.inner.engine.start();
    }

    /// Stops the engine's timers and worker and the routes. Call before the hub shuts down.
    pub async fn shutdown(&self) {
        self.inner.engine.shutdown().await;
        self.inner.routes.shutdown().await;
    }

    /// The routes (status of each bridge).
    pub fn routes(&self) -> &Routes {
        &self.inner.routes
    }

    /// The engine (models, actions, `-runAction`).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The current snapshot (cheap: one `Arc` clone).
    pub fn snapshot(&self) -> Arc<Deployed> {
        self.inner.deployed.read().clone()
    }

    /// The storage this runtime writes to.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The broker, once attached.
    pub fn broker(&self) -> Option<&Broker> {
        self.inner.broker.get()
    }

    /// Whether `client` may perform `scope` (a management scope, `CommandCall`, `Connect`):
    /// root always, others by the rules of that scope without a topic.
    pub fn authorize_scope(&self, client: &ClientInfo, scope: Scope) -> bool {
        self.check(client, scope, TopicMode::Name, None)
    }

    /// Runs the rules of `scope` for `client` and `topic` (root is always allowed).
    fn check(
        &self,
        client: &ClientInfo,
        scope: Scope,
        mode: TopicMode,
        topic: Option<&str>,
    ) -> bool {
        self.check_cached(client, scope, mode, topic, Caching::Never)
    }

    /// [`Runtime::check`] through a decision cache: `Always` (deliveries, spec §2.5), or
    /// `IfCostly` (publishes: only when the scope's index says a check may walk many rules; a
    /// few rules are evaluated faster than a cache lookup).
    fn check_cached(
        &self,
        client: &ClientInfo,
        scope: Scope,
        mode: TopicMode,
        topic: Option<&str>,
        caching: Caching<'_>,
    ) -> bool {
        if is_root(client.username.as_deref()) {
            return true;
        }
        // Loaded before the snapshot is read: a change swaps first and bumps after, so a
        // decision is never stored under an epoch newer than the rules it was made with.
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        // Read guards, not `Arc` clones: evaluation is short and never blocks, and writers only
        // swap a pointer.
        let deployed = self.inner.deployed.read();
        let cache = match (caching, topic) {
            (Caching::Always(c), Some(t)) => Some((c, t)),
            (Caching::IfCostly(c), Some(t)) if deployed.index.is_costly(scope) => Some((c, t)),
            _ => None,
        };
        if let Some((c, t)) = cache
            && let Some(allow) = c.get(client, t, epoch)
        {
            return allow;
        }
        // An anonymous client needs no user lookup at all.
        let user = client.username.as_deref();
        let users = user.map(|_| self.inner.users.read());
        let view = user.zip(users.as_ref()).and_then(|(u, map)| map.get(u));
        let subject = RuleSubject {
            user,
            flags: view.map_or(&[], |v| v.flags.as_slice()),
            groups: view.map_or(&[], |v| v.groups.as_slice()),
            client_id: &client.client_id,
            ip: Some(client.peer.ip()),
            topic,
        };
        let allow = deployed.index.decide(scope, mode, &subject);
        if let Some((c, t)) = cache {
            c.put(client, t, epoch, allow);
        }
        allow
    }

    /// Swaps in `next` and tells everyone: cache epoch, engine, `$SYS` topics. Called with the
    /// write lock held.
    fn install(&self, next: Deployed) -> Arc<Deployed> {
        let next = Arc::new(next);
        *self.inner.deployed.write() = next.clone();
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.engine.on_deployed(&next);
        self.inner.routes.on_deployed(&next);
        next
    }
}

/// Whether `user` is the root user (never restricted by rules).
fn is_root(user: Option<&str>) -> bool {
    user == Some(ROOT_USER)
}

/// [`Runtime::hooks`]: the runtime's [`Hooks`] through a weak reference.
struct WeakHooks(Weak<Inner>);

impl WeakHooks {
    fn runtime(&self) -> Option<Runtime> {
        self.0.upgrade().map(|inner| Runtime { inner })
    }
}

impl Hooks for WeakHooks {
    fn authenticate(&self, request: &AuthRequest) -> AuthDecision {
        self.runtime()
            .map_or(AuthDecision::NotAuthorized, |r| r.authenticate(request))
    }

    fn authorize_publish(&self, client: &ClientInfo, topic: &str) -> bool {
        self.runtime()
            .is_some_and(|r| r.authorize_publish(client, topic))
    }

    fn authorize_subscribe(&self, client: &ClientInfo, filter: &str) -> bool {
        self.runtime()
            .is_some_and(|r| r.authorize_subscribe(client, filter))
    }

    fn checks_delivery(&self) -> bool {
        true
    }

    fn authorize_delivery(&self, client: &ClientInfo, topic: &str) -> bool {
        self.runtime()
            .is_some_and(|r| r.authorize_delivery(client, topic))
    }

    fn on_publish(&self, observation: &PublishObservation<'_>) {
        if let Some(r) = self.runtime() {
            r.on_publish(observation);
        }
    }

    fn on_connect(&self, client: &ClientInfo) {
        if let Some(r) = self.runtime() {
            r.on_connect(client);
        }
    }

    fn on_disconnect(&self, client: &ClientInfo, reason: DisconnectReason) {
        if let Some(r) = self.runtime() {
            r.on_disconnect(client, reason);
        }
    }
}

/// The hooks themselves (reachable through [`Runtime::hooks`]; a `Runtime` given to the broker
/// directly would form a reference cycle).
impl Hooks for Runtime {
    fn authenticate(&self, request: &AuthRequest) -> AuthDecision {
        self.authenticate_request(request)
    }

    fn authorize_publish(&self, client: &ClientInfo, topic: &str) -> bool {
        match rules::publish_scope(topic) {
            // The hub's own `$SYS/` topics: nobody publishes there, root included.
            None => false,
            Some(scope) => self.check_cached(
                client,
                scope,
                TopicMode::Name,
                Some(topic),
                Caching::IfCostly(&self.inner.publish_cache),
            ),
        }
    }

    fn authorize_subscribe(&self, client: &ClientInfo, filter: &str) -> bool {
        // A shared subscription is authorized on the filter it shares.
        let filter = match filter.strip_prefix("$share/") {
            Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
            None => filter,
        };
        self.check(
            client,
            rules::subscribe_scope(filter),
            TopicMode::Filter,
            Some(filter),
        )
    }

    fn checks_delivery(&self) -> bool {
        true
    }

    fn authorize_delivery(&self, client: &ClientInfo, topic: &str) -> bool {
        self.check_cached(
            client,
            rules::subscribe_scope(topic),
            TopicMode::Name,
            Some(topic),
            Caching::Always(&self.inner.delivery),
        )
    }

    fn on_publish(&self, observation: &PublishObservation<'_>) {
        self.inner.engine.on_publish(observation);
        self.inner.routes.on_publish(observation);
        if observation.topic == COMMAND_TOPIC
            && let (Some(client), Some(sink)) = (observation.client, self.inner.commands.get())
        {
            sink.on_command(client, observation);
        }
    }

    fn on_connect(&self, client: &ClientInfo) {
        self.inner.engine.on_connect(client);
    }

    fn on_disconnect(&self, client: &ClientInfo, _reason: DisconnectReason) {
        self.inner.engine.on_disconnect(client);
    }
}
