//! The process-wide registry: which transport listens on which slot, who is connected to whom,
//! and where each node's dht is.
//!
//! It is a static of the library, so every node of a process shares it (the host loads a plugin's
//! `.so` once; tests that link the crate get one registry of their own, apart from the `.so`'s).
//! It only says where things are: sinks are never called while it is locked, only inboxes (leaf
//! locks) are pushed to.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use crate::dht::Core;
use crate::transport::Node;

/// A live transport.
pub(crate) struct Entry {
    pub(crate) node: Arc<Node>,
    /// The slots it listens on, in the order it asked for them.
    pub(crate) listen: Vec<u64>,
    /// The peers it has a connection with.
    pub(crate) conns: BTreeSet<String>,
}

/// Everything the nodes of a process share.
#[derive(Default)]
pub(crate) struct Registry {
    next_slot: u64,
    /// Listening slot → the peer id of the transport listening there.
    pub(crate) slots: HashMap<u64, String>,
    /// Live transports by peer id.
    pub(crate) nodes: HashMap<String, Entry>,
    /// Live dhts by peer id.
    pub(crate) dhts: HashMap<String, Weak<Core>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// Locks the registry. A panic while it was held leaves it consistent (every change is made in
/// one step), so poisoning is ignored.
pub(crate) fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// A slot nobody listens on.
    pub(crate) fn fresh_slot(&mut self) -> u64 {
        loop {
            self.next_slot = self.next_slot.wrapping_add(1).max(1);
            if !self.slots.contains_key(&self.next_slot) {
                return self.next_slot;
            }
        }
    }

    /// The entry of this very transport (not of a later one with the same identity).
    pub(crate) fn entry_of(&self, node: &Arc<Node>) -> Option<&Entry> {
        self.nodes.get(&node.peer_id).filter(|e| Arc::ptr_eq(&e.node, node))
    }

    /// See [`entry_of`](Self::entry_of).
    pub(crate) fn entry_of_mut(&mut self, node: &Arc<Node>) -> Option<&mut Entry> {
        self.nodes.get_mut(&node.peer_id).filter(|e| Arc::ptr_eq(&e.node, node))
    }

    /// The listen addresses of the transport of `peer`.
    pub(crate) fn listen_addrs(&self, peer: &str) -> Vec<String> {
        self.nodes.get(peer).map(|e| e.listen.iter().map(|s| crate::addr::format(*s)).collect()).unwrap_or_default()
    }

    /// The dht of the peer that listens at one of `addrs`, if that peer is `peer`: what a
    /// request sent to those addresses would reach.
    pub(crate) fn reach(&self, peer: &str, addrs: &[String]) -> Option<Arc<Core>> {
        let listening = addrs.iter().any(|a| {
            crate::addr::parse("dht", a).ok().and_then(|a| self.slots.get(&a.slot)).is_some_and(|p| p == peer)
        });
        if listening { self.dhts.get(peer).and_then(Weak::upgrade) } else { None }
    }
}
