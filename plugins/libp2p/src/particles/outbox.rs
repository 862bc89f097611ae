//! The messages waiting for each peer, shared by `send` (any thread) and the connection handler
//! that writes them (the node's runtime).
//!
//! One connection of a peer, the *owner*, writes its queue; the behaviour hands ownership to
//! another connection of the peer when the owner's closes. `send` pushes to an owned queue without
//! touching the swarm: it takes this peer's lock only, and wakes the owner's handler itself.

use std::collections::{HashMap, VecDeque};
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
    /// The queue holds `queue_len` messages already, or the message would take it past
    /// `queue_bytes` (an empty queue takes any message): how many it holds, and their bytes.
    Full { messages: usize, bytes: usize },
    /// No connection owns the queue (the message comes back): take the slow path through the swarm.
    NoOwner(Vec<u8>),
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

/// One peer's queue.
#[derive(Debug, Default)]
pub struct Outbox {
    inner: Mutex<Inner>,
}

impl Outbox {
    /// Queues `message` if a connection owns the queue (or `owned_or_not`) and there is room.
    ///
    /// # Errors
    /// [`Refused::Full`] at `limits.0` messages, or when the message would take a queue that is
    /// not empty past `limits.1` bytes; [`Refused::NoOwner`] when no connection owns the queue and
    /// `owned_or_not` is false.
    pub fn push(&self, message: Vec<u8>, limits: (usize, usize), owned_or_not: bool) -> Result<(), Refused> {
        let (queue_len, queue_bytes) = limits;
        let waker = {
            let mut inner = lock(&self.inner);
            if inner.owner.is_none() && !owned_or_not {
                return Err(Refused::NoOwner(message));
            }
            let (messages, bytes) = (inner.queue.len(), inner.bytes);
            if messages >= queue_len || messages > 0 && bytes.saturating_add(message.len()) > queue_bytes {
                return Err(Refused::Full { messages, bytes });
            }
            inner.bytes += message.len();
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
        let mut n = 0;
        while let Some(message) = inner.pop() {
            n += 1;
            if !take(message) {
                break;
            }
        }
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
        if inner.owner == Some(me) {
            inner.pop();
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
        inner.bytes = 0;
    }

    /// Whether a redial may be made for the waiting messages (then it counts as made): once per
    /// message written.
    pub fn may_redial(&self) -> bool {
        let mut inner = lock(&self.inner);
        !std::mem::replace(&mut inner.redialled, true)
    }
}

/// Every peer's outbox. An entry lives while the peer has a connection or messages waiting.
#[derive(Debug, Default)]
pub struct Outboxes {
    map: Mutex<HashMap<PeerId, Arc<Outbox>>>,
}

impl Outboxes {
    /// `peer`'s outbox, if it has one.
    pub fn get(&self, peer: &PeerId) -> Option<Arc<Outbox>> {
        lock(&self.map).get(peer).cloned()
    }

    /// `peer`'s outbox, made empty and unowned if it had none.
    pub fn get_or_create(&self, peer: PeerId) -> Arc<Outbox> {
        Arc::clone(lock(&self.map).entry(peer).or_default())
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
        let limits = (3, 100);
        // an empty queue takes any message; beyond that, bytes count
        outbox.push(vec![0; 150], limits, false).expect("an empty queue takes any message");
        assert!(matches!(outbox.push(vec![0; 1], limits, false), Err(Refused::Full { messages: 1, bytes: 150 })));
        let mut cx = waker_cx();
        assert_eq!(outbox.take(me, &mut cx, |_| true), 1);
        outbox.push(vec![0; 60], limits, false).unwrap();
        outbox.push(vec![0; 40], limits, false).unwrap();
        assert!(matches!(outbox.push(vec![0; 1], limits, false), Err(Refused::Full { messages: 2, bytes: 100 })));
        // taking one frees its bytes
        assert_eq!(outbox.take(me, &mut cx, |_| false), 1);
        outbox.push(vec![0; 50], limits, false).unwrap();
        // dropping one frees its bytes too, and messages count on their own
        outbox.drop_first(me);
        outbox.push(vec![0; 1], limits, false).unwrap();
        outbox.push(vec![0; 1], limits, false).unwrap();
        assert!(matches!(outbox.push(vec![0; 1], limits, false), Err(Refused::Full { messages: 3, bytes: 52 })));
        assert_eq!(outbox.len(), 3);
        outbox.clear();
        outbox.push(vec![0; 100], limits, false).unwrap();
        assert_eq!(outbox.take(me, &mut cx, |_| true), 1);
        assert_eq!(lock(&outbox.inner).bytes, 0);
    }
}
