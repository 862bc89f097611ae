//! The messages waiting for each peer, shared by `send` (any thread) and the connection handler
//! that writes them (the node's runtime).
//!
//! One connection of a peer, the *owner*, writes its queue; the behaviour hands ownership to
//! another connection of the peer when the owner's closes. `send` pushes to an owned queue without
//! touching the swarm: it takes this peer's lock only, and wakes the owner's handler itself.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a message was not queued.
#[derive(Debug)]
pub enum Refused {
    /// A bound was reached (the caller's `LIMIT` error).
    Full(Full),
    /// No connection owns the queue (the message comes back): take the slow path through the swarm.
    NoOwner(Vec<u8>),
}

/// Which bound a refused message would have gone past.
#[derive(Debug)]
pub enum Full {
    /// The queue holds `queue_len` messages already, or the message would take it past
    /// `queue_bytes` (an empty queue takes any message): how many it holds, and their bytes.
    Peer { messages: usize, bytes: usize },
    /// The message would take the bytes waiting in all of the node's queues past
    /// `queue_bytes_total` (when nothing waits anywhere, any message is taken): how many bytes wait.
    Node { bytes: usize },
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Vec<u8>>,
    /// The bytes of the messages in `queue`.
    bytes: usize,
    owner: Option<ConnectionId>,
    /// The owner's handler, waiting for a message.
    waker: Option<Waker>,
    /// A dial was made for this queue after its last connection closed, and no message has been
    /// written since: the next close drops the queue instead of dialling again.
    redialled: bool,
}

impl Inner {
    fn pop(&mut self) -> Option<Vec<u8>> {
        let message = self.queue.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }
}

/// What the queues may hold: per peer (`queue_len` messages, `queue_bytes` bytes) and for the
/// whole node (`queue_bytes_total` bytes, over all of its peers' queues).
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Messages waiting for one peer.
    pub len: usize,
    /// Bytes waiting for one peer (an empty queue takes any message).
    pub bytes: usize,
    /// Bytes waiting in all of the node's queues (when none waits, any message is taken).
    pub total_bytes: usize,
}

/// One peer's queue. Its bytes also count in the node's total, which its `Outboxes` shares with
/// every queue (a queue made on its own has a total of its own).
#[derive(Debug, Default)]
pub struct Outbox {
    inner: Mutex<Inner>,
    total: Arc<AtomicUsize>,
}

impl Outbox {
    /// An empty queue whose bytes count in `total`.
    fn counted_in(total: Arc<AtomicUsize>) -> Self {
        Outbox { inner: Mutex::default(), total }
    }

    /// `n` bytes left the queue.
    fn release(&self, n: usize) {
        if n > 0 {
            self.total.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Queues `message` if a connection owns the queue (or `owned_or_not`) and there is room.
    ///
    /// # Errors
    /// [`Full::Peer`] at `limits.len` messages, or when the message would take a queue that is
    /// not empty past `limits.bytes`; [`Full::Node`] when it would take the node's queues,
    /// not all empty, past `limits.total_bytes`; [`Refused::NoOwner`] when no connection owns the
    /// queue and `owned_or_not` is false.
    pub fn push(&self, message: Vec<u8>, limits: QueueLimits, owned_or_not: bool) -> Result<(), Refused> {
        let waker = {
            let mut inner = lock(&self.inner);
            if inner.owner.is_none() && !owned_or_not {
                return Err(Refused::NoOwner(message));
            }
            let (messages, bytes) = (inner.queue.len(), inner.bytes);
            if messages >= limits.len || messages > 0 && bytes.saturating_add(message.len()) > limits.bytes {
                return Err(Refused::Full(Full::Peer { messages, bytes }));
            }
            // the node's total, reserved in one step: pushes to other peers' queues run at the
            // same time, each under its own queue's lock only
            let n = message.len();
            let reserved = self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |total| {
                (total == 0 || total.saturating_add(n) <= limits.total_bytes).then(|| total + n)
            });
            if let Err(total) = reserved {
                return Err(Refused::Full(Full::Node { bytes: total }));
            }
            inner.bytes += n;
            inner.queue.push_back(message);
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// For the handler of connection `me`: hands queued messages to `take` until it answers
    /// `false` or the queue is empty. Returns how many it took. When it finds the queue empty, or
    /// `me` is not the owner, nothing is taken; an empty queue of `me` keeps the waker of `cx` for
    /// the next `push`.
    pub fn take(&self, me: ConnectionId, cx: &mut Context<'_>, mut take: impl FnMut(Vec<u8>) -> bool) -> usize {
        let mut inner = lock(&self.inner);
        if inner.owner != Some(me) {
            return 0;
        }
        let (mut n, mut bytes) = (0, 0);
        while let Some(message) = inner.pop() {
            n += 1;
            bytes += message.len();
            if !take(message) {
                break;
            }
        }
        self.release(bytes);
        if n > 0 {
            inner.redialled = false;
        } else if !inner.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            inner.waker = Some(cx.waker().clone());
        }
        n
    }

    /// Whether messages wait for connection `me` (its owner): `cx`'s waker is kept otherwise.
    pub fn waiting_for(&self, me: ConnectionId, cx: &mut Context<'_>) -> bool {
        let mut inner = lock(&self.inner);
        if inner.owner != Some(me) {
            return false;
        }
        if inner.queue.is_empty() {
            if !inner.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                inner.waker = Some(cx.waker().clone());
            }
            return false;
        }
        true
    }

    /// Whether messages wait for connection `me` (no waker kept).
    pub fn has_messages_for(&self, me: ConnectionId) -> bool {
        let inner = lock(&self.inner);
        inner.owner == Some(me) && !inner.queue.is_empty()
    }

    /// Drops the oldest waiting message, if `me` owns the queue (an open that failed costs one).
    pub fn drop_first(&self, me: ConnectionId) {
        let mut inner = lock(&self.inner);
        if inner.owner == Some(me)
            && let Some(message) = inner.pop()
        {
            self.release(message.len());
        }
    }

    /// Makes `owner` the connection that writes this queue; `None`: no connection does.
    pub fn set_owner(&self, owner: Option<ConnectionId>) {
        let mut inner = lock(&self.inner);
        inner.owner = owner;
        // The old owner's waker must not be woken for the new one.
        inner.waker = None;
    }

    /// The connection writing this queue.
    pub fn owner(&self) -> Option<ConnectionId> {
        lock(&self.inner).owner
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        lock(&self.inner).queue.len()
    }

    /// Drops every waiting message.
    pub fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.queue.clear();
        self.release(std::mem::take(&mut inner.bytes));
    }

    /// Whether a redial may be made for the waiting messages (then it counts as made): once per
    /// message written.
    pub fn may_redial(&self) -> bool {
        let mut inner = lock(&self.inner);
        !std::mem::replace(&mut inner.redialled, true)
    }
}

impl Drop for Outbox {
    /// Messages still waiting leave the node's total with the queue (every way a queue goes away
    /// gives its bytes back, so the total cannot creep up and refuse everything).
    fn drop(&mut self) {
        let bytes = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner).bytes;
        self.release(bytes);
    }
}

/// Every peer's outbox. An entry lives while the peer has a connection or messages waiting.
#[derive(Debug, Default)]
pub struct Outboxes {
    map: Mutex<HashMap<PeerId, Arc<Outbox>>>,
    /// The bytes waiting in all of them.
    total: Arc<AtomicUsize>,
}

impl Outboxes {
    /// The bytes waiting in all queues.
    #[cfg(test)]
    pub fn total_bytes(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// `peer`'s outbox, if it has one.
    pub fn get(&self, peer: &PeerId) -> Option<Arc<Outbox>> {
        lock(&self.map).get(peer).cloned()
    }

    /// `peer`'s outbox, made empty and unowned if it had none.
    pub fn get_or_create(&self, peer: PeerId) -> Arc<Outbox> {
        let total = &self.total;
        Arc::clone(lock(&self.map).entry(peer).or_insert_with(|| Arc::new(Outbox::counted_in(Arc::clone(total)))))
    }

    /// Forgets `peer`'s outbox and the messages in it. Only for a peer without connections: their
    /// handlers hold the outbox.
    pub fn remove(&self, peer: &PeerId) {
        if let Some(outbox) = lock(&self.map).remove(peer) {
            outbox.clear();
        }
    }

    /// Drops every queue (shutdown).
    pub fn clear(&self) {
        for (_, outbox) in lock(&self.map).drain() {
            outbox.clear();
            outbox.set_owner(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waker_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn queue_len_and_queue_bytes_bound_a_queue() {
        let me = ConnectionId::new_unchecked(1);
        let outbox = Outbox::default();
        outbox.set_owner(Some(me));
        let limits = QueueLimits { len: 3, bytes: 100, total_bytes: usize::MAX };
        // an empty queue takes any message; beyond that, bytes count
        outbox.push(vec![0; 150], limits, false).expect("an empty queue takes any message");
        assert!(matches!(
            outbox.push(vec![0; 1], limits, false),
            Err(Refused::Full(Full::Peer { messages: 1, bytes: 150 }))
        ));
        let mut cx = waker_cx();
        assert_eq!(outbox.take(me, &mut cx, |_| true), 1);
        outbox.push(vec![0; 60], limits, false).unwrap();
        outbox.push(vec![0; 40], limits, false).unwrap();
        assert!(matches!(
            outbox.push(vec![0; 1], limits, false),
            Err(Refused::Full(Full::Peer { messages: 2, bytes: 100 }))
        ));
        // taking one frees its bytes
        assert_eq!(outbox.take(me, &mut cx, |_| false), 1);
        outbox.push(vec![0; 50], limits, false).unwrap();
        // dropping one frees its bytes too, and messages count on their own
        outbox.drop_first(me);
        outbox.push(vec![0; 1], limits, false).unwrap();
        outbox.push(vec![0; 1], limits, false).unwrap();
        assert!(matches!(
            outbox.push(vec![0; 1], limits, false),
            Err(Refused::Full(Full::Peer { messages: 3, bytes: 52 }))
        ));
        assert_eq!(outbox.len(), 3);
        outbox.clear();
        outbox.push(vec![0; 100], limits, false).unwrap();
        assert_eq!(outbox.take(me, &mut cx, |_| true), 1);
        assert_eq!(lock(&outbox.inner).bytes, 0);
        assert_eq!(outbox.total.load(Ordering::Acquire), 0);
    }

    #[test]
    fn queue_bytes_total_bounds_all_queues_together() {
        let (me, other) = (ConnectionId::new_unchecked(1), ConnectionId::new_unchecked(2));
        let outboxes = Outboxes::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let (qa, qb) = (outboxes.get_or_create(a), outboxes.get_or_create(b));
        qa.set_owner(Some(me));
        qb.set_owner(Some(other));
        let limits = QueueLimits { len: 10, bytes: 1_000, total_bytes: 100 };
        // when nothing waits anywhere, any message is taken (like an empty queue)
        qa.push(vec![0; 150], limits, false).expect("nothing waits: taken");
        assert!(matches!(qb.push(vec![0; 1], limits, false), Err(Refused::Full(Full::Node { bytes: 150 }))));
        let mut cx = waker_cx();
        assert_eq!(qa.take(me, &mut cx, |_| true), 1);
        assert_eq!(outboxes.total_bytes(), 0);
        // two peers' queues share the 100 bytes
        qa.push(vec![0; 60], limits, false).unwrap();
        qb.push(vec![0; 40], limits, false).unwrap();
        assert!(matches!(qb.push(vec![0; 1], limits, false), Err(Refused::Full(Full::Node { bytes: 100 }))));
        assert!(matches!(qa.push(vec![0; 1], limits, false), Err(Refused::Full(Full::Node { bytes: 100 }))));
        // a refused message takes nothing
        assert_eq!((qa.len(), qb.len(), outboxes.total_bytes()), (1, 1, 100));
        // whichever way bytes leave a queue, they leave the total
        qb.drop_first(other);
        assert_eq!(outboxes.total_bytes(), 60);
        qb.push(vec![0; 30], limits, false).unwrap();
        assert_eq!(qa.take(me, &mut cx, |_| false), 1);
        assert_eq!(outboxes.total_bytes(), 30);
        qa.push(vec![0; 20], limits, false).unwrap();
        outboxes.remove(&b);
        assert_eq!(outboxes.total_bytes(), 20);
        // a queue dropped with messages in it gives them back too
        drop(qb);
        qa.push(vec![0; 50], limits, false).unwrap();
        drop(qa);
        assert_eq!(outboxes.total_bytes(), 70, "still in the map");
        outboxes.clear();
        assert_eq!(outboxes.total_bytes(), 0);
        let qc = outboxes.get_or_create(PeerId::random());
        qc.push(vec![0; 10], limits, true).unwrap();
        drop(outboxes);
        drop(qc);
    }

    #[test]
    fn a_dropped_queue_gives_its_bytes_back() {
        let total = Arc::new(AtomicUsize::new(0));
        let limits = QueueLimits { len: 10, bytes: 1_000, total_bytes: 1_000 };
        let q = Outbox::counted_in(Arc::clone(&total));
        q.push(vec![0; 70], limits, true).unwrap();
        q.push(vec![0; 30], limits, true).unwrap();
        assert_eq!(total.load(Ordering::Acquire), 100);
        drop(q);
        assert_eq!(total.load(Ordering::Acquire), 0);
    }
}
