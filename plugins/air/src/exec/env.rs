//! Variables during one run: scalars with fold scoping and `new`, fold iterators, streams and
//! stream maps (with generations), canon streams and canon maps.

use std::sync::Arc;

use serde_json::Value as JValue;

use crate::parser::{Name, NodeId};
use crate::trace::Source;
use crate::value::Tetraplet;

/// A value with its provenance.
#[derive(Debug, Clone)]
pub struct Item {
    /// The JSON value.
    pub value: Arc<JValue>,
    /// Where it came from.
    pub tetraplet: Arc<Tetraplet>,
    /// Result-trace position of the state that produced it (stream values).
    pub trace_pos: Option<usize>,
}

/// What a scalar lookup found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A value.
    Found(&'a Item),
    /// Cleared by `new` and not set since.
    Cleared,
    /// Not defined (a join).
    NotFound,
}

#[derive(Debug)]
struct Binding {
    scope: usize,
    value: Option<Item>,
}

/// The bindings of one scalar name, oldest first; the first is stored inline (most names are
/// bound once), so binding a name allocates nothing.
#[derive(Debug, Default)]
struct Bindings {
    first: Option<Binding>,
    rest: Vec<Binding>,
}

impl Bindings {
    fn len(&self) -> usize {
        self.first.is_some() as usize + self.rest.len()
    }

    fn get(&self, i: usize) -> Option<&Binding> {
        if i == 0 { self.first.as_ref() } else { self.rest.get(i - 1) }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Binding> {
        if i == 0 { self.first.as_mut() } else { self.rest.get_mut(i - 1) }
    }

    fn push(&mut self, b: Binding) {
        match self.first {
            None => self.first = Some(b),
            Some(_) => self.rest.push(b),
        }
    }

    fn truncate(&mut self, n: usize) {
        if n == 0 {
            self.first = None;
            self.rest.clear();
        } else {
            self.rest.truncate(n - 1);
        }
    }

    /// Index of the newest binding that satisfies `f`.
    fn rposition(&self, f: impl Fn(&Binding) -> bool) -> Option<usize> {
        (0..self.len()).rev().find(|i| self.get(*i).is_some_and(&f))
    }

    /// Drops the bindings of `scope` (the newest ones: scopes end in reverse order).
    fn drop_scope(&mut self, scope: usize) {
        while self.len() > 0 && self.get(self.len() - 1).is_some_and(|b| b.scope == scope) {
            self.truncate(self.len() - 1);
        }
        if (0..self.len()).any(|i| self.get(i).is_some_and(|b| b.scope == scope)) {
            let kept: Vec<Binding> =
                self.first.take().into_iter().chain(self.rest.drain(..)).filter(|b| b.scope != scope).collect();
            for b in kept {
                self.push(b);
            }
        }
    }
}

/// A fold's position over its items.
#[derive(Debug)]
pub struct Cursor {
    /// The items of this iterable (one generation for stream folds).
    pub items: Arc<Vec<Item>>,
    /// Current index.
    pub idx: usize,
    /// Fold body.
    pub body: NodeId,
    /// Fold's last instruction.
    pub last: Option<NodeId>,
    /// Scope at fold start; each iteration's scope is a child of it.
    pub base_scope: usize,
    /// Index into the engine's open stream folds, for stream folds.
    pub stream_fold: Option<usize>,
}

/// One value of a stream.
#[derive(Debug, Clone)]
pub struct StreamValue {
    /// The value.
    pub item: Item,
    /// Which input its state came from.
    pub source: Source,
    /// Its generation within that input (or the new generation of this run).
    pub generation: u32,
}

/// A stream or stream map.
#[derive(Debug, Default)]
pub struct Stream {
    /// Values in insertion order.
    pub values: Vec<StreamValue>,
    /// Generation that values produced by this run go to.
    pub new_generation: u32,
}

impl Stream {
    /// Indices of values in iteration order: previous gens, current gens, new gens; insertion order inside.
    pub fn ordered(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.values.len()).collect();
        idx.sort_by_key(|i| (self.values[*i].source, self.values[*i].generation, *i));
        idx
    }

    /// Starts a fresh new generation if the current one has values.
    pub fn open_new_generation(&mut self) {
        if self.values.iter().any(|v| v.source == Source::New && v.generation == self.new_generation) {
            self.new_generation += 1;
        }
    }

    /// (trace position, compacted generation) of every value with a state.
    pub fn compacted(&self) -> Vec<(usize, u32)> {
        let mut keys: Vec<(Source, u32)> = self.values.iter().map(|v| (v.source, v.generation)).collect();
        keys.sort();
        keys.dedup();
        self.values
            .iter()
            .filter_map(|v| {
                let g = keys.binary_search(&(v.source, v.generation)).unwrap_or(0) as u32;
                v.item.trace_pos.map(|p| (p, g))
            })
            .collect()
    }
}

/// A canon stream or canon map snapshot.
#[derive(Debug)]
pub struct CanonValue {
    /// Elements (for maps: `{"key":…,"value":…}` objects).
    pub elements: Vec<Item>,
    /// `{canon peer, "", "", ""}`.
    pub tetraplet: Arc<Tetraplet>,
}

/// The slot of `id` in a table indexed by name id, created on first use.
fn slot<T: Default>(table: &mut Vec<T>, id: u32) -> &mut T {
    let i = id as usize;
    if table.len() <= i {
        table.resize_with(i + 1, T::default);
    }
    &mut table[i]
}

/// All variables of a run, in tables indexed by [`Name::id`] (names are numbered by the parser).
#[derive(Debug, Default)]
pub struct Env {
    scalars: Vec<Bindings>,
    /// Ancestor chain of each scope (itself first); scope 0 is global.
    scope_chains: Vec<Vec<usize>>,
    /// Names set in each scope, to drop them when the scope ends.
    scope_names: Vec<Vec<u32>>,
    /// Current scope.
    pub scope: usize,
    /// Active fold iterators.
    iterators: Vec<Vec<Cursor>>,
    /// Streams and stream maps; `None` = declared by `new` but not written yet.
    streams: Vec<Vec<Option<Stream>>>,
    /// Canon streams and canon maps; `None` = cleared by `new`.
    canons: Vec<Vec<Option<Arc<CanonValue>>>>,
}

impl Env {
    /// An empty environment with the global scope, for a script with `names` names.
    pub fn new(names: u32) -> Self {
        let mut scalars = Vec::new();
        scalars.resize_with(names as usize, Bindings::default);
        Env { scalars, scope_chains: vec![vec![0]], scope_names: vec![Vec::new()], ..Default::default() }
    }

    /// Whether the current scope is global (outside any fold).
    pub fn is_global(&self) -> bool {
        self.scope == 0
    }

    /// Opens a fold iteration scope as a child of `base`; returns the previous scope.
    pub fn enter_iteration(&mut self, base: usize) -> usize {
        let mut chain = Vec::with_capacity(self.scope_chains[base].len() + 1);
        chain.push(self.scope_chains.len());
        chain.extend(self.scope_chains[base].iter().copied());
        self.scope_chains.push(chain);
        self.scope_names.push(Vec::new());
        std::mem::replace(&mut self.scope, self.scope_chains.len() - 1)
    }

    /// Closes the current iteration scope (its scalars are dropped) and returns to `previous`.
    pub fn exit_iteration(&mut self, previous: usize) {
        let scope = self.scope;
        for id in std::mem::take(&mut self.scope_names[scope]) {
            if let Some(list) = self.scalars.get_mut(id as usize) {
                list.drop_scope(scope);
            }
        }
        self.scope = previous;
    }

    fn visible(&self, binding_scope: usize) -> bool {
        self.scope_chains[self.scope].contains(&binding_scope)
    }

    /// Looks a scalar up.
    pub fn scalar(&self, name: Name<'_>) -> Lookup<'_> {
        let Some(list) = self.scalars.get(name.id as usize) else { return Lookup::NotFound };
        match list.rposition(|b| self.visible(b.scope)).and_then(|i| list.get(i)) {
            Some(Binding { value: Some(item), .. }) => Lookup::Found(item),
            Some(Binding { value: None, .. }) => Lookup::Cleared,
            None => Lookup::NotFound,
        }
    }

    /// Whether setting `name` now would re-set a global scalar (ShadowingIsNotAllowed).
    pub fn would_shadow(&self, name: Name<'_>) -> bool {
        self.is_global() && matches!(self.scalar(name), Lookup::Found(_))
    }

    /// Sets a scalar (callers check [`Env::would_shadow`] first).
    pub fn set_scalar(&mut self, name: Name<'_>, item: Item) {
        let scope = self.scope;
        let chain = &self.scope_chains[scope];
        let list = slot(&mut self.scalars, name.id);
        let visible_idx = list.rposition(|b| chain.contains(&b.scope));
        if let Some(b) = visible_idx.and_then(|i| list.get_mut(i))
            && b.scope == scope
            && (scope != 0 || b.value.is_none())
        {
            b.value = Some(item);
            return;
        }
        list.push(Binding { scope, value: Some(item) });
        self.scope_names[scope].push(name.id);
    }

    /// `new name` for a scalar: returns the mark to restore at scope exit.
    pub fn new_scalar(&mut self, name: Name<'_>) -> usize {
        let scope = self.scope;
        let list = slot(&mut self.scalars, name.id);
        list.push(Binding { scope, value: None });
        self.scope_names[scope].push(name.id);
        list.len() - 1
    }

    /// End of `new name` for a scalar.
    pub fn end_new_scalar(&mut self, name: Name<'_>, mark: usize) {
        if let Some(list) = self.scalars.get_mut(name.id as usize) {
            list.truncate(mark);
        }
    }

    /// The slots of a stream (one per open `new`; the last is current).
    pub fn stream_slots(&mut self, name: Name<'_>) -> &mut Vec<Option<Stream>> {
        slot(&mut self.streams, name.id)
    }

    /// The current slot of a stream (creating the global one if needed).
    pub fn stream_mut(&mut self, name: Name<'_>) -> &mut Stream {
        let slots = self.stream_slots(name);
        if slots.is_empty() {
            slots.push(None);
        }
        slots.last_mut().expect("non-empty").get_or_insert_with(Stream::default)
    }

    /// The current slot of a stream if it was written.
    pub fn stream(&self, name: Name<'_>) -> Option<&Stream> {
        self.streams.get(name.id as usize)?.last()?.as_ref()
    }

    /// Every stream slot that was written.
    pub fn all_streams(&self) -> impl Iterator<Item = &Stream> {
        self.streams.iter().flatten().flatten()
    }

    /// The slots of a canon (one per open `new`; the last is current).
    pub fn canon_slots(&mut self, name: Name<'_>) -> &mut Vec<Option<Arc<CanonValue>>> {
        slot(&mut self.canons, name.id)
    }

    /// The current canon value.
    pub fn canon(&self, name: Name<'_>) -> Option<Arc<CanonValue>> {
        self.canons.get(name.id as usize)?.last()?.clone()
    }

    /// Binds a canon value (replacing the current slot).
    pub fn set_canon(&mut self, name: Name<'_>, value: Arc<CanonValue>) {
        let slots = self.canon_slots(name);
        match slots.last_mut() {
            Some(slot) => *slot = Some(value),
            None => slots.push(Some(value)),
        }
    }

    /// The cursors of a fold iterator (one per open fold over it; the last is current).
    pub fn cursors(&self, name: Name<'_>) -> &[Cursor] {
        self.iterators.get(name.id as usize).map_or(&[], |c| c.as_slice())
    }

    /// The cursors of a fold iterator, to change.
    pub fn cursors_mut(&mut self, name: Name<'_>) -> &mut Vec<Cursor> {
        slot(&mut self.iterators, name.id)
    }

    /// The current item of an active iterator.
    pub fn iterator(&self, name: Name<'_>) -> Option<&Item> {
        let c = self.iterators.get(name.id as usize)?.last()?;
        c.items.get(c.idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: i64) -> Item {
        Item { value: Arc::new(JValue::from(v)), tetraplet: Arc::new(Tetraplet::default()), trace_pos: None }
    }

    fn n(id: u32) -> Name<'static> {
        Name { text: "v", id }
    }

    fn get(env: &Env, name: Name<'_>) -> Option<i64> {
        match env.scalar(name) {
            Lookup::Found(i) => i.value.as_i64(),
            _ => None,
        }
    }

    #[test]
    fn fold_scopes() {
        let mut env = Env::new(3);
        env.set_scalar(n(0), item(0));
        assert!(env.would_shadow(n(0)));
        let prev = env.enter_iteration(0);
        env.set_scalar(n(1), item(1));
        assert!(!env.would_shadow(n(0)));
        // the nested iteration (next) does not see v of the outer iteration, but sees g
        let prev2 = env.enter_iteration(0);
        assert_eq!(get(&env, n(1)), None);
        assert_eq!(get(&env, n(0)), Some(0));
        env.set_scalar(n(1), item(2));
        assert_eq!(get(&env, n(1)), Some(2));
        env.exit_iteration(prev2);
        assert_eq!(get(&env, n(1)), Some(1));
        env.exit_iteration(prev);
        assert_eq!(get(&env, n(1)), None);
    }

    #[test]
    fn new_scope() {
        let mut env = Env::new(3);
        env.set_scalar(n(2), item(1));
        let mark = env.new_scalar(n(2));
        assert!(matches!(env.scalar(n(2)), Lookup::Cleared));
        assert!(!env.would_shadow(n(2)));
        env.set_scalar(n(2), item(2));
        assert!(env.would_shadow(n(2)));
        env.end_new_scalar(n(2), mark);
        assert_eq!(get(&env, n(2)), Some(1));
    }
}
