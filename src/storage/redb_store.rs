//! [`RedbStore`]: the broker's [`Store`] on redb, with group commit.
//!
//! The broker reports events inline on its async workers, so an event only goes into a bounded
//! in-memory queue; one dedicated writer thread takes everything that arrived within
//! [`RedbStoreOptions::window`] of the first waiting event and applies it, in order, in one redb
//! write transaction (one fsync). [`Store::flush`] wakes the writer and blocks until every event
//! reported before it is durable; [`RedbStore::wait_durable`] is the non-blocking form for
//! async code that wants to hold an acknowledgement until its message is on disk.
//!
//! When the queue is full (the disk has fallen behind by [`RedbStoreOptions::capacity`] events)
//! the reporting thread waits up to [`RedbStoreOptions::full_wait`]; if there is still no room
//! the event is dropped and counted ([`WriterStats::dropped`], an ERROR log), and until the
//! writer has drained the queue further events are dropped at once instead of waiting again, so
//! a dead disk stalls the broker for at most one `full_wait`, not per message.
//!
//! Sessions expire at load: a session whose expiry passed while the hub was down is removed with
//! its queue (see [`RedbStore::expire_sessions`]). The writer writes a heartbeat
//! (`meta.alive_unix`) with every commit and at least every [`RedbStoreOptions::heartbeat`], so
//! the time the hub stopped is known within that interval even after a kill -9.

use super::codec::{self, DecodeError};
use super::error::StorageError;
use super::tables::{META, QUEUE, RETAINED, SESSIONS};
use super::{Storage, Tx, unix_now};
use crate::broker::store::{
    LoadedSession, QueuedRecord, QueuedState, SessionRecord, Store, StoreError, StoredMessage,
};
use parking_lot::{Condvar, Mutex};
use redb::ReadableTable;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Tuning of the writer; `Default` is what the hub uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbStoreOptions {
    /// How long the writer keeps collecting after the first waiting event (group commit).
    pub window: Duration,
    /// Most events waiting for the writer.
    pub capacity: usize,
    /// Most payload bytes (approximately) waiting for the writer.
    pub capacity_bytes: usize,
    /// How long a reporting thread waits for room before dropping an event.
    pub full_wait: Duration,
    /// Longest interval between two heartbeat commits while the hub is idle.
    pub heartbeat: Duration,
}

impl Default for RedbStoreOptions {
    fn default() -> Self {
        RedbStoreOptions {
            window: Duration::from_millis(2),
            capacity: 100_000,
            capacity_bytes: 64 * 1024 * 1024,
            full_wait: Duration::from_millis(500),
            heartbeat: Duration::from_secs(30),
        }
    }
}

/// Counters of the writer thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Events accepted into the queue.
    pub events: u64,
    /// Events made durable.
    pub durable: u64,
    /// Write transactions committed (events and heartbeats).
    pub commits: u64,
    /// Events waiting in the queue for the writer to take them.
    pub waiting: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Commits that failed (their events are lost; the file keeps the previous state).
    pub failed_commits: u64,
}

enum Event {
    PutRetained(Box<StoredMessage>),
    RemoveRetained(String),
    PutSession(SessionRecord),
    RemoveSession(String),
    /// Boxed: a queued record is large and the queue moves events around.
    QueuePush(String, Box<QueuedRecord>),
    QueueUpdate(String, u64, QueuedState),
    QueueRemove(String, u64),
}

impl Event {
    /// Roughly what the event holds in memory, for the byte bound.
    fn size(&self) -> usize {
        64 + match self {
            Event::PutRetained(m) => m.topic.len() + m.payload.len(),
            Event::QueuePush(c, q) => c.len() + q.message.topic.len() + q.message.payload.len(),
            Event::RemoveRetained(s) | Event::RemoveSession(s) => s.len(),
            Event::PutSession(r) => r.subscriptions.iter().map(|s| s.filter.len() + 16).sum(),
            Event::QueueUpdate(c, ..) | Event::QueueRemove(c, _) => c.len(),
        }
    }
}

#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    bytes: usize,
    /// When the oldest waiting event arrived.
    first_at: Option<Instant>,
    /// Events accepted so far (the durability point of the next event is `accepted + 1`).
    accepted: u64,
    /// Events made durable (or lost to a failed commit) so far.
    done: u64,
    flush_wanted: bool,
    stopping: bool,
    /// Set by the first drop, cleared when the writer takes a batch.
    overflowing: bool,
    /// A commit failed since the last flush.
    failure: Option<String>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signals the writer: events arrived, flush wanted, or stopping.
    wake: Condvar,
    /// Signals reporters and flushers: room in the queue, or progress of `done`.
    progress: Condvar,
    durable_tx: watch::Sender<u64>,
    opts: RedbStoreOptions,
    dropped: AtomicU64,
    commits: AtomicU64,
    failed_commits: AtomicU64,
}

/// The broker's store on redb. Create it once per hub with [`RedbStore::new`]; dropping it
/// commits what is queued and stops the writer.
pub struct RedbStore {
    storage: Storage,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// `meta.alive_unix` as found at open: when the previous run was last known alive.
    previous_alive: Option<u64>,
}

impl RedbStore {
    /// Starts the writer thread on `storage` with default options.
    pub fn new(storage: Storage) -> Result<RedbStore, StorageError> {
        RedbStore::with_options(storage, RedbStoreOptions::default())
    }

    pub fn with_options(
        storage: Storage,
        opts: RedbStoreOptions,
    ) -> Result<RedbStore, StorageError> {
        // Read before the writer's first heartbeat overwrites it.
        let previous_alive = storage
            .get_meta("alive_unix")?
            .and_then(|v| v.parse::<u64>().ok());
        let (durable_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            progress: Condvar::new(),
            durable_tx,
            opts,
            dropped: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            failed_commits: AtomicU64::new(0),
        });
        let writer = {
            let path = storage.path().to_path_buf();
            let storage = storage.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("lothub-storage".into())
                .spawn(move || writer_loop(&storage, &shared))
                .map_err(|e| StorageError::io(path, e))?
        };
        Ok(RedbStore {
            storage,
            shared,
            writer: Mutex::new(Some(writer)),
            previous_alive,
        })
    }

    /// The configuration handle this store writes through.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        let p = self.shared.pending.lock();
        WriterStats {
            events: p.accepted,
            durable: p.done,
            waiting: p.events.len() as u64,
            commits: self.shared.commits.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed_commits: self.shared.failed_commits.load(Ordering::Relaxed),
        }
    }

    /// The durability point of every event reported so far: pass it to
    /// [`RedbStore::wait_durable`].
    pub fn durable_point(&self) -> u64 {
        self.shared.pending.lock().accepted
    }

    /// Waits (without blocking a thread) until every event up to `point` has been committed, or
    /// lost to a failed commit (see [`WriterStats::failed_commits`]).
    pub async fn wait_durable(&self, point: u64) {
        let mut rx = self.shared.durable_tx.subscribe();
        let _ = rx.wait_for(|done| *done >= point).await;
    }

    /// Removes every session whose expiry passed while the hub was down, with its queue; returns
    /// how many. A session's offline time is counted from the later of its last write and the
    /// previous run's last heartbeat, plus one heartbeat interval (the hub may have lived that
    /// long after its last heartbeat): a session is never removed early, and one that was
    /// connected when the hub died gets its full expiry from the moment the hub died.
    pub fn expire_sessions(&self, now_unix: u64) -> Result<usize, StorageError> {
        let grace = self.shared.opts.heartbeat.as_secs() + 1;
        let alive = self.previous_alive.unwrap_or(0);
        self.storage.write(|tx| {
            let mut expired = Vec::new();
            for row in tx.open_table(SESSIONS)?.iter()? {
                let (k, v) = row?;
                let (record, written) =
                    codec::decode_session(k.value(), v.value()).map_err(decode("sessions-1"))?;
                if record.expiry_secs == u32::MAX {
                    continue;
                }
                let offline_since = written.max(alive) + grace;
                if offline_since + u64::from(record.expiry_secs) <= now_unix {
                    expired.push(record.client_id);
                }
            }
            for client_id in &expired {
                remove_session_in(tx, client_id)?;
            }
            Ok(expired.len())
        })
    }

    fn push(&self, event: Event) {
        let shared = &*self.shared;
        let size = event.size();
        let mut p = shared.pending.lock();
        let full = |p: &Pending| {
            p.events.len() >= shared.opts.capacity
                || (p.bytes + size > shared.opts.capacity_bytes && !p.events.is_empty())
        };
        if full(&p) && !p.overflowing {
            let deadline = Instant::now() + shared.opts.full_wait;
            while full(&p) && !p.stopping {
                if shared.progress.wait_until(&mut p, deadline).timed_out() {
                    break;
                }
            }
        }
        if full(&p) {
            p.overflowing = true;
            drop(p);
            let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::error!(
                    dropped = n,
                    "storage queue full: the disk is not keeping up; persisted state is missing events"
                );
            }
            return;
        }
        if p.events.is_empty() {
            p.first_at = Some(Instant::now());
            shared.wake.notify_one();
        }
        p.events.push(event);
        p.bytes += size;
        p.accepted += 1;
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.shared.pending.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

fn decode(table: &'static str) -> impl Fn(DecodeError) -> StorageError {
    move |e| StorageError::Decode { table, detail: e.0 }
}

fn store_error(e: StorageError) -> StoreError {
    match e {
        StorageError::Decode { .. } | StorageError::Corrupt { .. } => {
            StoreError::Corrupt(e.to_string())
        }
        other => StoreError::Io(other.to_string()),
    }
}

fn remove_session_in(tx: &Tx, client_id: &str) -> Result<(), StorageError> {
    tx.open_table(SESSIONS)?.remove(client_id)?;
    tx.open_table(QUEUE)?
        .retain_in((client_id, 0)..=(client_id, u64::MAX), |_, _| false)?;
    Ok(())
}

/// The writer thread: wait for events, collect for the window, commit, report progress.
fn writer_loop(storage: &Storage, shared: &Shared) {
    let opts = shared.opts;
    let mut last_commit = Instant::now();
    loop {
        let (batch, upto, stopping) = {
            let mut p = shared.pending.lock();
            while p.events.is_empty() && !p.stopping && !p.flush_wanted {
                let next_heartbeat = last_commit + opts.heartbeat;
                if shared.wake.wait_until(&mut p, next_heartbeat).timed_out() {
                    break;
                }
            }
            if let Some(first) = p.first_at {
                let deadline = first + opts.window;
                while !p.flush_wanted && !p.stopping && p.events.len() < opts.capacity / 2 {
                    if shared.wake.wait_until(&mut p, deadline).timed_out() {
                        break;
                    }
                }
            }
            p.flush_wanted = false;
            p.first_at = None;
            p.bytes = 0;
            p.overflowing = false;
            let batch = std::mem::take(&mut p.events);
            shared.progress.notify_all();
            (batch, p.accepted, p.stopping)
        };
        // redb asserts on some damaged pages instead of returning an error: count that as a
        // failed commit rather than lose the writer thread (and with it every later event).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            storage.write(|tx| apply(tx, &batch))
        }))
        .unwrap_or_else(|_| {
            Err(StorageError::Database(
                "the database engine panicked".into(),
            ))
        });
        last_commit = Instant::now();
        let mut p = shared.pending.lock();
        match result {
            Ok(()) => {
                shared.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, events = batch.len(), "storage commit failed; these events are not persisted");
                p.failure = Some(e.to_string());
            }
        }
        p.done = upto;
        shared.durable_tx.send_replace(upto);
        shared.progress.notify_all();
        if stopping && p.events.is_empty() {
            return;
        }
    }
}

/// Applies `batch` in order inside one transaction, plus the heartbeat.
fn apply(tx: &Tx, batch: &[Event]) -> Result<(), StorageError> {
    let now = unix_now();
    let mut retained = tx.open_table(RETAINED)?;
    let mut sessions = tx.open_table(SESSIONS)?;
    let mut queue = tx.open_table(QUEUE)?;
    for event in batch {
        match event {
            Event::PutRetained(m) => {
                retained.insert(m.topic.as_str(), codec::encode_message(m).as_slice())?;
            }
            Event::RemoveRetained(topic) => {
                retained.remove(topic.as_str())?;
            }
            Event::PutSession(r) => {
                sessions.insert(
                    r.client_id.as_str(),
                    codec::encode_session(r, now).as_slice(),
                )?;
            }
            Event::RemoveSession(c) => {
                sessions.remove(c.as_str())?;
                queue.retain_in((c.as_str(), 0)..=(c.as_str(), u64::MAX), |_, _| false)?;
            }
            Event::QueuePush(c, q) => {
                queue.insert((c.as_str(), q.seq), codec::encode_queued(q).as_slice())?;
            }
            Event::QueueUpdate(c, seq, state) => {
                let current = queue.get((c.as_str(), *seq))?.map(|v| v.value().to_vec());
                if let Some(mut row) = current {
                    codec::set_queued_state(&mut row, *state).map_err(decode("session-queue-1"))?;
                    queue.insert((c.as_str(), *seq), row.as_slice())?;
                }
            }
            Event::QueueRemove(c, seq) => {
                queue.remove((c.as_str(), *seq))?;
            }
        }
    }
    tx.open_table(META)?
        .insert("alive_unix", now.to_string().as_str())?;
    Ok(())
}

impl Store for RedbStore {
    /// Every retained message; those whose Message Expiry passed while the hub was down are
    /// deleted instead of returned.
    fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError> {
        let now = unix_now();
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let txn = self
            .storage
            .db()
            .begin_read()
            .map_err(|e| store_error(e.into()))?;
        let table = txn
            .open_table(RETAINED)
            .map_err(|e| store_error(e.into()))?;
        for row in table.iter().map_err(|e| store_error(e.into()))? {
            let (k, v) = row.map_err(|e| store_error(e.into()))?;
            let m = codec::decode_message(v.value())
                .map_err(|e| store_error(decode("retained-1")(e)))?;
            if m.expires_at_unix.is_some_and(|at| at <= now) {
                expired.push(k.value().to_string());
            } else {
                out.push(m);
            }
        }
        drop(table);
        drop(txn);
        if !expired.is_empty() {
            self.storage
                .write(|tx| {
                    let mut t = tx.open_table(RETAINED)?;
                    for topic in &expired {
                        t.remove(topic.as_str())?;
                    }
                    Ok(())
                })
                .map_err(store_error)?;
        }
        Ok(out)
    }

    /// Every persistent session with its queue, after [`RedbStore::expire_sessions`].
    fn load_sessions(&self) -> Result<Vec<LoadedSession>, StoreError> {
        let expired = self.expire_sessions(unix_now()).map_err(store_error)?;
        if expired > 0 {
            tracing::info!(
                sessions = expired,
                "removed persistent sessions that expired while the hub was down"
            );
        }
        let load = || -> Result<Vec<LoadedSession>, StorageError> {
            let txn = self.storage.db().begin_read()?;
            let sessions = txn.open_table(SESSIONS)?;
            let queue = txn.open_table(QUEUE)?;
            let mut out = Vec::new();
            for row in sessions.iter()? {
                let (k, v) = row?;
                let client_id = k.value();
                let (record, _) =
                    codec::decode_session(client_id, v.value()).map_err(decode("sessions-1"))?;
                let mut queued = Vec::new();
                for row in queue.range((client_id, 0)..=(client_id, u64::MAX))? {
                    let (k, v) = row?;
                    let (_, seq) = k.value();
                    queued.push(
                        codec::decode_queued(seq, v.value()).map_err(decode("session-queue-1"))?,
                    );
                }
                out.push(LoadedSession { record, queued });
            }
            Ok(out)
        };
        load().map_err(store_error)
    }

    fn put_retained(&self, message: &StoredMessage) {
        self.push(Event::PutRetained(Box::new(message.clone())));
    }

    fn remove_retained(&self, topic: &str) {
        self.push(Event::RemoveRetained(topic.to_string()));
    }

    fn put_session(&self, record: &SessionRecord) {
        self.push(Event::PutSession(record.clone()));
    }

    fn remove_session(&self, client_id: &str) {
        self.push(Event::RemoveSession(client_id.to_string()));
    }

    fn queue_push(&self, client_id: &str, record: &QueuedRecord) {
        self.push(Event::QueuePush(
            client_id.to_string(),
            Box::new(record.clone()),
        ));
    }

    fn queue_update(&self, client_id: &str, seq: u64, state: QueuedState) {
        self.push(Event::QueueUpdate(client_id.to_string(), seq, state));
    }

    fn queue_remove(&self, client_id: &str, seq: u64) {
        self.push(Event::QueueRemove(client_id.to_string(), seq));
    }

    /// Wakes the writer and blocks until every event reported before this call is committed.
    /// Fails if a commit failed since the previous flush, or if the writer is gone.
    fn flush(&self) -> Result<(), StoreError> {
        let shared = &*self.shared;
        let mut p = shared.pending.lock();
        let target = p.accepted;
        // Events still waiting: cut the window short. None waiting but `done < target`: the
        // writer is committing them now, and an extra (empty) commit would only cost an fsync.
        if p.done < target && !p.events.is_empty() {
            p.flush_wanted = true;
            shared.wake.notify_one();
        }
        while p.done < target {
            let alive = self
                .writer
                .try_lock()
                .map(|w| w.as_ref().is_some_and(|h| !h.is_finished()))
                .unwrap_or(true);
            if !alive {
                return Err(store_error(StorageError::WriterGone));
            }
            shared.progress.wait_for(&mut p, Duration::from_millis(100));
        }
        match p.failure.take() {
            Some(e) => Err(StoreError::Io(e)),
            None => Ok(()),
        }
    }

    /// The broker holds PUBACK/PUBREC until this point is committed (group commit: every ack
    /// of a window shares one fsync).
    fn durable_point(&self) -> u64 {
        self.shared.pending.lock().accepted
    }

    /// Someone (an acknowledgement) is waiting: the writer commits what is queued without
    /// waiting out the window. Group commit still happens: events reported while a commit is
    /// in progress all go into the next one.
    fn wait_durable(
        &self,
        point: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        {
            let mut p = self.shared.pending.lock();
            if p.done < point && !p.events.is_empty() && !p.flush_wanted {
                p.flush_wanted = true;
                self.shared.wake.notify_one();
            }
        }
        Box::pin(RedbStore::wait_durable(self, point))
    }
}
