//! The route buffers' writer thread: every route task hands its buffer changes here, and one
//! thread applies them to storage in grouped transactions, so that redb (and its fsync) never
//! runs on an async worker and a burst of messages costs one commit, not one per message.
//! Requests are answered in order: a `Load` sees every change sent before it.

use std::collections::HashSet;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::storage::{BufferOp, BufferedMessage, Storage};

/// Changes grouped into one transaction at most.
const MAX_GROUP: usize = 8192;

enum Request {
    Op(BufferOp),
    Load(String, oneshot::Sender<Vec<(u64, BufferedMessage)>>),
    /// Commit everything sent so far, then answer; `true` also ends the thread.
    Flush(oneshot::Sender<()>, bool),
}

/// A cheap-clone handle on the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the thread on `storage`.
    pub fn start(storage: Storage) -> Writer {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("route-buffer".into())
            .spawn(move || run(storage, rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the route buffer writer: buffers are not persisted");
        }
        Writer { tx }
    }

    /// Queues one change (never blocks).
    pub fn op(&self, op: BufferOp) {
        let _ = self.tx.send(Request::Op(op));
    }

    /// The stored messages of `route`, after every change sent before this call.
    pub async fn load(&self, route: &str) -> Vec<(u64, BufferedMessage)> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Load(route.to_string(), tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Waits until every change sent so far is committed; with `stop`, the thread then ends
    /// (and lets go of the storage).
    pub async fn flush(&self, stop: bool) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Flush(tx, stop)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn run(storage: Storage, rx: mpsc::Receiver<Request>) {
    let mut ops = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Op(op) => {
                    ops.push(op);
                    if ops.len() < MAX_GROUP {
                        next = rx.try_recv().ok();
                    }
                }
                Request::Load(route, reply) => {
                    commit(&storage, &mut ops);
                    let rows = storage.route_buffer_load(&route).unwrap_or_else(|e| {
                        tracing::error!(route, error = %e, "cannot read the route buffer");
                        Vec::new()
                    });
                    let _ = reply.send(rows);
                    next = rx.try_recv().ok();
                }
                Request::Flush(reply, stop) => {
                    commit(&storage, &mut ops);
                    let _ = reply.send(());
                    if stop {
                        return;
                    }
                    next = rx.try_recv().ok();
                }
            }
        }
        commit(&storage, &mut ops);
    }
}

fn commit(storage: &Storage, ops: &mut Vec<BufferOp>) {
    coalesce(ops);
    if let Err(e) = storage.route_buffer_apply(ops) {
        tracing::error!(error = %e, changes = ops.len(), "cannot write the route buffers");
    }
    ops.clear();
}

/// Drops the pairs "append message n" + "remove message n" of one group: a message the remote
/// acknowledged before its row was written needs no row. On a live link this is most of them,
/// so the buffer costs (nearly) nothing until the remote slows down or goes away.
fn coalesce(ops: &mut Vec<BufferOp>) {
    let appended: HashSet<(&str, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            BufferOp::Append { route, seq, .. } => Some((route.as_str(), *seq)),
            _ => None,
        })
        .collect();
    let both: HashSet<(String, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            BufferOp::Remove { route, seq } if appended.contains(&(route.as_str(), *seq)) => {
                Some((route.clone(), *seq))
            }
            _ => None,
        })
        .collect();
    if both.is_empty() {
        return;
    }
    ops.retain(|op| match op {
        BufferOp::Append { route, seq, .. } | BufferOp::Remove { route, seq } => {
            !both.contains(&(route.clone(), *seq))
        }
        BufferOp::Clear { .. } => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(seq: u64) -> BufferOp {
        BufferOp::Append {
            route: "r".into(),
            seq,
            msg: BufferedMessage {
                qos: 1,
                retain: false,
                topic: "t".into(),
                payload: vec![],
            },
        }
    }

    fn remove(seq: u64) -> BufferOp {
        BufferOp::Remove {
            route: "r".into(),
            seq,
        }
    }

    #[test]
    fn acknowledged_in_the_same_group_is_never_written() {
        let mut ops = vec![append(1), append(2), remove(1), remove(0)];
        coalesce(&mut ops);
        assert_eq!(ops, vec![append(2), remove(0)]);
    }
}
