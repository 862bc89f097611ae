//! A small Kademlia between the dhts of one process.
//!
//! - **Keys** are sha256 of a peer id's multihash bytes (libp2p's `KBucketKey`); distance is XOR.
//! - **Routing table**: 256 k-buckets (k = [`K`]) by the distance's highest bit, least recently
//!   seen first. A new peer for a full bucket replaces its oldest entry only when that one no
//!   longer answers. It is filled from `add_address`, from the peers a node asks and that ask it,
//!   and from answers.
//! - **Requests** are `FIND_NODE(key)` calls from one dht object to another, made on the caller's
//!   thread. A node reaches a peer only through an address it knows for it: the registry tells
//!   which transport listens there and whether it is that peer, as a network would. Nothing
//!   answers a lookup from the registry itself.
//! - **Lookups** are iterative with [`ALPHA`] requests per round, until the k closest peers seen
//!   have all answered (or, for `find_peer`, the peer turns up). `bootstrap` looks up the node's
//!   own key, then refreshes each bucket farther than its closest neighbour with a random key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use weft_abi::{Error, ErrorCode, Result};

use crate::addr;
use crate::config::Config;
use crate::registry;

/// Peers per bucket, and how many closest peers a lookup settles on.
pub const K: usize = 20;
/// Requests per round of a lookup.
pub const ALPHA: usize = 3;
/// Addresses kept per peer.
const ADDRS_PER_PEER: usize = 4;

/// A Kademlia key: sha256 of the key bytes.
type Key = [u8; 32];

fn key_of(bytes: &[u8]) -> Key {
    Sha256::digest(bytes).into()
}

fn distance(a: &Key, b: &Key) -> Key {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The bucket of a distance: the index of its highest set bit (255 for the farthest half);
/// `None` for distance zero.
fn bucket_of(d: &Key) -> Option<usize> {
    let zeros = d.iter().position(|b| *b != 0).map(|i| i * 8 + d[i].leading_zeros() as usize)?;
    Some(255 - zeros)
}

/// A peer and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contact {
    id: String,
    key: Key,
    addrs: Vec<String>,
}

impl Contact {
    fn new(id: &str, addrs: Vec<String>) -> Option<Self> {
        let key = key_of(&addr::peer_bytes(id)?);
        Some(Self { id: id.to_owned(), key, addrs })
    }
}

struct Table {
    local: Key,
    buckets: Vec<Vec<Contact>>,
}

/// What [`Table::insert`] did.
enum Inserted {
    Done,
    /// The bucket is full: replace `oldest` if it no longer answers.
    Full {
        oldest: Contact,
    },
}

impl Table {
    fn new(local: Key) -> Self {
        Self { local, buckets: vec![Vec::new(); 256] }
    }

    fn bucket(&mut self, key: &Key) -> Option<&mut Vec<Contact>> {
        let i = bucket_of(&distance(&self.local, key))?;
        Some(&mut self.buckets[i])
    }

    /// Adds or refreshes a peer. `seen`: it just answered or asked (it moves to the bucket's
    /// end, and may displace a dead entry); otherwise it was only heard of.
    fn insert(&mut self, c: Contact, seen: bool) -> Inserted {
        if c.addrs.is_empty() {
            return Inserted::Done;
        }
        let Some(bucket) = self.bucket(&c.key) else { return Inserted::Done };
        if let Some(i) = bucket.iter().position(|e| e.id == c.id) {
            let mut entry = if seen { bucket.remove(i) } else { bucket[i].clone() };
            let mut addrs = c.addrs;
            addrs.extend(entry.addrs);
            let mut unique = Vec::new();
            for a in addrs {
                if !unique.contains(&a) && unique.len() < ADDRS_PER_PEER {
                    unique.push(a);
                }
            }
            entry.addrs = unique;
            if seen {
                bucket.push(entry)
            } else {
                bucket[i] = entry
            }
            return Inserted::Done;
        }
        if bucket.len() < K {
            let mut c = c;
            c.addrs.truncate(ADDRS_PER_PEER);
            bucket.push(c);
            Inserted::Done
        } else if seen {
            Inserted::Full { oldest: bucket[0].clone() }
        } else {
            Inserted::Done
        }
    }

    /// Replaces `oldest` by `new` (both in one bucket), if `oldest` is still there.
    fn replace(&mut self, oldest: &str, new: Contact) {
        let Some(bucket) = self.bucket(&new.key) else { return };
        if let Some(i) = bucket.iter().position(|e| e.id == oldest) {
            bucket.remove(i);
            let mut new = new;
            new.addrs.truncate(ADDRS_PER_PEER);
            bucket.push(new);
        }
    }

    /// Moves a peer that just proved alive to its bucket's end.
    fn touch(&mut self, c: &Contact) {
        let Some(bucket) = self.bucket(&c.key) else { return };
        if let Some(i) = bucket.iter().position(|e| e.id == c.id) {
            let entry = bucket.remove(i);
            bucket.push(entry);
        }
    }

    fn remove(&mut self, c: &Contact) {
        if let Some(bucket) = self.bucket(&c.key) {
            bucket.retain(|e| e.id != c.id);
        }
    }

    fn get(&self, id: &str) -> Option<&Contact> {
        self.buckets.iter().flatten().find(|c| c.id == id)
    }

    fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    /// The `n` known peers closest to `target`, closest first, without `exclude`.
    fn closest(&self, target: &Key, n: usize, exclude: Option<&str>) -> Vec<Contact> {
        let mut all: Vec<&Contact> = self.buckets.iter().flatten().filter(|c| Some(c.id.as_str()) != exclude).collect();
        all.sort_by_key(|c| distance(&c.key, target));
        all.into_iter().take(n).cloned().collect()
    }

    /// The lowest non-empty bucket (the closest neighbour's).
    fn closest_bucket(&self) -> Option<usize> {
        self.buckets.iter().position(|b| !b.is_empty())
    }
}

/// The shared part of a dht: what other dhts send requests to.
pub(crate) struct Core {
    id: String,
    key: Key,
    config: Config,
    table: Mutex<Table>,
    nonce: AtomicU64,
}

enum Lookup {
    /// `find_peer`'s peer turned up, with these addresses.
    Found(Vec<String>),
    /// The closest peers that answered, closest first.
    Closest(Vec<String>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    Not,
    Answered,
    Failed,
}

impl Core {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node as others should record it: its transport's listen addresses.
    fn contact(&self) -> Option<Contact> {
        let addrs = registry::lock().listen_addrs(&self.id);
        (!addrs.is_empty()).then(|| Contact { id: self.id.clone(), key: self.key, addrs })
    }

    /// Records a peer; a full bucket keeps its oldest entry unless that one is unreachable.
    fn learn(&self, c: Contact, seen: bool) {
        if c.id == self.id {
            return;
        }
        let inserted = self.table().insert(c.clone(), seen);
        if let Inserted::Full { oldest } = inserted {
            if reach(&oldest).is_some() {
                self.table().touch(&oldest);
            } else {
                self.table().replace(&oldest.id, c);
            }
        }
    }

    /// Answers a `FIND_NODE` from `from` (who, when it listens somewhere, is recorded).
    fn find_node(&self, from: Option<&Contact>, target: &Key) -> Vec<Contact> {
        if let Some(from) = from {
            self.learn(from.clone(), true);
        }
        self.table().closest(target, K, from.map(|c| c.id.as_str()))
    }

    /// An iterative lookup of `target`, settling on the `width` closest peers.
    fn lookup(&self, target: &Key, width: usize, want: Option<&str>, deadline: Instant) -> Result<Lookup> {
        let me = self.contact();
        let mut seen: BTreeMap<Key, (Contact, Asked)> = BTreeMap::new();
        for c in self.table().closest(target, width, None) {
            seen.insert(distance(&c.key, target), (c, Asked::Not));
        }
        let mut asked = 0usize;
        loop {
            let round: Vec<Contact> = seen
                .values()
                .filter(|(_, a)| *a != Asked::Failed)
                .take(width)
                .filter(|(_, a)| *a == Asked::Not)
                .take(ALPHA)
                .map(|(c, _)| c.clone())
                .collect();
            if round.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorCode::TIMEOUT,
                    format!("memory dht: the lookup timed out after asking {asked} peers; try a longer timeout"),
                ));
            }
            for c in round {
                asked += 1;
                let d = distance(&c.key, target);
                let Some(remote) = reach(&c) else {
                    seen.insert(d, (c.clone(), Asked::Failed));
                    self.table().remove(&c);
                    continue;
                };
                let answer = remote.find_node(me.as_ref(), target);
                seen.insert(d, (c.clone(), Asked::Answered));
                self.learn(c, true);
                for r in answer {
                    if r.id == self.id {
                        continue;
                    }
                    if want == Some(r.id.as_str()) {
                        return Ok(Lookup::Found(r.addrs));
                    }
                    seen.entry(distance(&r.key, target)).or_insert_with(|| (r.clone(), Asked::Not));
                    self.learn(r, false);
                }
            }
        }
        let closest = seen.into_values().filter(|(_, a)| *a == Asked::Answered).take(width).map(|(c, _)| c.id);
        Ok(Lookup::Closest(closest.collect()))
    }

    /// A random key in bucket `i` of this node.
    fn random_key_in_bucket(&self, i: usize) -> Key {
        let n = self.nonce.fetch_add(1, Ordering::Relaxed);
        let mut seed = self.key.to_vec();
        seed.extend_from_slice(&n.to_le_bytes());
        seed.extend_from_slice(&std::process::id().to_le_bytes());
        let mut d = key_of(&seed);
        let zeros = 255 - i;
        for (byte, b) in d.iter_mut().enumerate() {
            let first_bit = byte * 8;
            if first_bit + 8 <= zeros {
                *b = 0;
            } else if first_bit <= zeros {
                let bit = zeros - first_bit; // 0 = the byte's highest bit
                let keep = 0xffu8 >> bit;
                *b = (*b & keep >> 1) | (0x80 >> bit);
            }
        }
        distance(&self.key, &d)
    }
}

/// The dht behind `c`, if a request to one of `c`'s addresses would reach it.
fn reach(c: &Contact) -> Option<Arc<Core>> {
    registry::lock().reach(&c.id, &c.addrs)
}

fn not_known(what: &str) -> Error {
    Error::new(
        ErrorCode::NOT_FOUND,
        format!("memory dht: {what}: this node knows no peer; add one with add_address and bootstrap"),
    )
}

/// The `memory` plugin's dht. Dropping it takes it out of the network.
pub struct Dht {
    core: Arc<Core>,
}

impl std::fmt::Debug for Dht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("memory::Dht").field("peer_id", &self.core.id).finish_non_exhaustive()
    }
}

impl Dht {
    /// The dht of the node whose 32-byte ed25519 seed is `identity`. It is reachable at the
    /// addresses the transport of the same identity listens on.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`: the identity is not 32 bytes, or a live dht of this process already
    /// has it.
    pub fn new(config: Config, identity: &[u8]) -> Result<Self> {
        let seed = crate::transport::identity_seed("dht", identity)?;
        let id = weft_abi::peer_id::peer_id_from_secret(&seed);
        let key = key_of(&addr::peer_bytes(&id).expect("a peer id made from a key"));
        let core = Arc::new(Core {
            id: id.clone(),
            key,
            config,
            table: Mutex::new(Table::new(key)),
            nonce: AtomicU64::new(0),
        });
        let mut reg = registry::lock();
        if reg.dhts.get(&id).and_then(std::sync::Weak::upgrade).is_some() {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("memory dht: peer {id} already has a live dht in this process; drop that one first"),
            ));
        }
        reg.dhts.insert(id, Arc::downgrade(&core));
        Ok(Self { core })
    }

    /// How many peers its routing table holds.
    pub fn known_peers(&self) -> usize {
        self.core.table().len()
    }
}

impl Drop for Dht {
    fn drop(&mut self) {
        let mut reg = registry::lock();
        let mine = reg.dhts.get(&self.core.id).is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.core)));
        if mine {
            reg.dhts.remove(&self.core.id);
        }
    }
}

impl weft_abi::dht::Dht for Dht {
    fn add_address(&self, peer: &str, address: &str) -> Result<()> {
        addr::check_peer_id("dht", peer)?;
        let a = addr::parse("dht", address)?;
        if let Some(named) = a.peer.as_deref().filter(|p| *p != peer) {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("memory dht: address {address} is peer {named}'s, not {peer}'s"),
            ));
        }
        if a.slot == 0 {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("memory dht: {address} is no peer's address (slot 0 only asks listen for a free one)"),
            ));
        }
        let c = Contact::new(peer, vec![addr::format(a.slot)]).expect("checked peer id");
        self.core.learn(c, true);
        Ok(())
    }

    fn bootstrap(&self) -> Result<()> {
        let core = &self.core;
        let known = core.table().len();
        if known == 0 {
            return Err(not_known("bootstrap failed"));
        }
        let deadline = Instant::now() + Duration::from_millis(core.config.bootstrap_timeout_ms);
        let Lookup::Closest(answered) = core.lookup(&core.key, K, None, deadline)? else {
            unreachable!("a lookup without a wanted peer never finds one")
        };
        if answered.is_empty() {
            return Err(Error::new(
                ErrorCode::CLOSED,
                format!(
                    "memory dht: bootstrap failed: none of the {known} known peers answered; check their addresses"
                ),
            ));
        }
        // Refresh the buckets farther than the closest neighbour's, so that the far ones fill too.
        let closest = core.table().closest_bucket().unwrap_or(255);
        for i in closest + 1..256 {
            let key = core.random_key_in_bucket(i);
            core.lookup(&key, K, None, deadline)?;
        }
        Ok(())
    }

    fn find_peer(&self, peer: &str, timeout: Duration) -> Result<Vec<String>> {
        addr::check_peer_id("dht", peer)?;
        let core = &self.core;
        let deadline = Instant::now() + timeout;
        if peer == core.id {
            return core.contact().map(|c| c.addrs).ok_or_else(|| {
                Error::new(ErrorCode::NOT_FOUND, "memory dht: this node listens nowhere; call the transport's listen")
            });
        }
        if let Some(c) = core.table().get(peer) {
            return Ok(c.addrs.clone());
        }
        if core.table().len() == 0 {
            return Err(not_known(&format!("peer {peer} not found")));
        }
        let target = key_of(&addr::peer_bytes(peer).expect("checked"));
        match core.lookup(&target, K, Some(peer), deadline)? {
            Lookup::Found(addrs) => Ok(addrs),
            Lookup::Closest(answered) => Err(Error::new(
                ErrorCode::NOT_FOUND,
                format!(
                    "memory dht: peer {peer} not found: none of the {} closest peers that answered knows it",
                    answered.len()
                ),
            )),
        }
    }

    fn neighborhood(&self, key: &[u8], count: usize, timeout: Duration) -> Result<Vec<String>> {
        let core = &self.core;
        if count == 0 {
            return Ok(Vec::new());
        }
        if core.table().len() == 0 {
            return Err(not_known("neighborhood"));
        }
        let deadline = Instant::now() + timeout;
        match core.lookup(&key_of(key), count.max(K), None, deadline)? {
            Lookup::Closest(mut ids) | Lookup::Found(mut ids) => {
                ids.truncate(count);
                Ok(ids)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_timeout_is_a_limit() {
        use weft_abi::dht::Dht as _;
        let config = Config { bootstrap_timeout_ms: 0, ..Config::default() };
        let d = Dht::new(config, b"memory dht: bootstrap_timeout_ms").unwrap();
        let other = weft_abi::peer_id::peer_id_from_secret(b"memory dht: someone, not there..");
        d.add_address(&other, "/memory/77").unwrap();
        let e = d.bootstrap().unwrap_err();
        assert_eq!(e.code(), ErrorCode::TIMEOUT, "{e}");
        let e = d.find_peer(&weft_abi::peer_id::peer_id_from_secret(&[9; 32]), Duration::ZERO).unwrap_err();
        assert_eq!(e.code(), ErrorCode::TIMEOUT, "{e}");
        let e = Dht::new(Config::default(), b"memory dht: bootstrap_timeout_ms").unwrap_err();
        assert!(e.message().contains("already has a live dht"), "{e}");
    }

    #[test]
    fn buckets_by_highest_bit() {
        let mut d = [0u8; 32];
        assert_eq!(bucket_of(&d), None);
        d[31] = 1;
        assert_eq!(bucket_of(&d), Some(0));
        d[0] = 0x80;
        assert_eq!(bucket_of(&d), Some(255));
        d[0] = 0x01;
        assert_eq!(bucket_of(&d), Some(248));
    }

    #[test]
    fn random_keys_land_in_their_bucket() {
        let core = Core {
            id: String::new(),
            key: key_of(b"node"),
            config: Config::default(),
            table: Mutex::new(Table::new(key_of(b"node"))),
            nonce: AtomicU64::new(0),
        };
        for i in [0, 1, 7, 8, 9, 100, 247, 248, 254, 255] {
            for _ in 0..20 {
                let k = core.random_key_in_bucket(i);
                assert_eq!(bucket_of(&distance(&k, &core.key)), Some(i), "bucket {i}");
            }
        }
    }

    #[test]
    fn a_full_bucket_keeps_its_oldest_and_drops_hearsay() {
        let local = [0u8; 32];
        let mut t = Table::new(local);
        let contact = |n: u8| {
            let mut key = [0u8; 32];
            key[0] = 0x80;
            key[31] = n;
            Contact { id: format!("p{n}"), key, addrs: vec![format!("/memory/{n}")] }
        };
        for n in 0..K as u8 {
            assert!(matches!(t.insert(contact(n), true), Inserted::Done));
        }
        assert!(matches!(t.insert(contact(100), false), Inserted::Done), "hearsay is dropped");
        assert!(t.get("p100").is_none());
        match t.insert(contact(101), true) {
            Inserted::Full { oldest } => assert_eq!(oldest.id, "p0"),
            Inserted::Done => panic!("a full bucket"),
        }
        t.replace("p0", contact(101));
        assert!(t.get("p0").is_none() && t.get("p101").is_some());
        assert_eq!(t.len(), K);
        let closest = t.closest(&contact(3).key, 2, None);
        assert_eq!(closest[0].id, "p3");
    }
}
