//! Variables during one run: scalars with fold scoping and `new`, fold iterators, streams and
//! stream maps (with generations), canon streams and canon maps.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;

use super::val::Val;
use crate::parser::{Name, NodeId};
use crate::trace::Source;
use crate::value::Tetraplet;

/// A value with its provenance.
#[derive(Debug, Clone)]
pub struct Item {
    /// The JSON value.
    pub value: Val,
    /// Where it came from (for an item of a [`Cursor`] over an array: a placeholder, see
    /// [`Elements`]; such items are read through [`ItemRef`] only).
    tetraplet: Arc<Tetraplet>,
    /// Result-trace position of the state that produced it (stream values), or [`NONE`].
    trace_pos: u32,
    /// For an item of a fold over an array: its index there ([`NONE`] otherwise).
    element: u32,
}

impl Item {
    /// A value from `tetraplet`.
    pub fn new(value: Val, tetraplet: Arc<Tetraplet>) -> Self {
        Item { value, tetraplet, trace_pos: NONE, element: NONE }
    }

    /// Element `index` of an array whose tetraplet is `array`, for a fold over it (the fold's
    /// [`Elements`] make its tetraplet).
    pub fn element(value: Val, array: &Arc<Tetraplet>, index: usize) -> Self {
        match u32::try_from(index) {
            Ok(element) if element != NONE => Item { value, tetraplet: array.clone(), trace_pos: NONE, element },
            _ => Item::new(value, Arc::new(array.with_element_lens(index))),
        }
    }

    /// This item, produced by the state at `pos` of the result trace (below `u32::MAX`).
    pub fn at(mut self, pos: u32) -> Self {
        debug_assert!(pos != NONE);
        self.trace_pos = pos;
        self
    }

    /// Result-trace position of the state that produced it (stream values).
    #[inline]
    pub fn trace_pos(&self) -> Option<u32> {
        (self.trace_pos != NONE).then_some(self.trace_pos)
    }

    /// Where the value came from (not for an item of a fold over an array, whose tetraplet
    /// [`ItemRef::tetraplet`] makes).
    #[inline]
    pub fn tetraplet(&self) -> &Arc<Tetraplet> {
        debug_assert!(self.element == NONE, "an array element's tetraplet is read through ItemRef");
        &self.tetraplet
    }
}

/// The tetraplets of the items of a fold over an array: the array's with `.$.[i]` appended,
/// made when item `i`'s tetraplet is first read (a fold over a long array whose items are never
/// given to a service never builds them; the 24 uses of an item in one call request share
/// one). Kept by the fold's [`Cursor`], not by the items, so that an [`Item`] (every binding and
/// stream value) stays small.
#[derive(Debug)]
pub struct Elements {
    array: Arc<Tetraplet>,
    made: Box<[OnceCell<Arc<Tetraplet>>]>,
}

impl Elements {
    /// The tetraplets of `len` elements of an array whose tetraplet is `array`.
    pub fn new(array: Arc<Tetraplet>, len: usize) -> Self {
        Elements { array, made: std::iter::repeat_with(OnceCell::new).take(len).collect() }
    }
}

/// A scalar's or fold iterator's item as a lookup finds it.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef<'a> {
    item: &'a Item,
    /// For an item of a fold over an array: the fold's element tetraplets.
    elements: Option<&'a Elements>,
}

impl<'a> ItemRef<'a> {
    /// An item with its own tetraplet.
    pub fn plain(item: &'a Item) -> Self {
        ItemRef { item, elements: None }
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> &'a Val {
        &self.item.value
    }

    /// Where the value came from.
    #[inline]
    pub fn tetraplet(&self) -> &'a Arc<Tetraplet> {
        let i = self.item.element as usize;
        match self.elements.and_then(|e| Some((e, e.made.get(i)?))) {
            Some((e, made)) => made.get_or_init(|| Arc::new(e.array.with_element_lens(i))),
            // an item with its own tetraplet (the cells of a cursor are one per item)
            None => &self.item.tetraplet,
        }
    }
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

/// "No binding" / "no scope" in the index lists below.
const NONE: u32 = u32::MAX;

/// One binding of a scalar name, in [`Env::bindings`]: the bindings of a name are a list from
/// its newest one (`prev` links to the older one).
#[derive(Debug)]
struct Binding {
    value: Option<Item>,
    scope: u32,
    prev: u32,
}

/// A binding to overwrite, or a new one ([`Env::scalar_target`]).
#[derive(Debug, Clone, Copy)]
pub struct ScalarTarget(u32);

/// A fold's position over its items.
#[derive(Debug)]
pub struct Cursor {
    /// The items of this iterable (one generation for stream folds).
    pub items: Rc<Vec<Item>>,
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
    /// For a fold over an array: the items' tetraplets (the items hold placeholders).
    pub elements: Option<Elements>,
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
                v.item.trace_pos().map(|p| (p as usize, g))
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
///
/// Scalars: each name has the index of its newest binding (4 bytes a name, so a script of
/// thousands of names costs little before it runs); the bindings are in one arena, freed slots
/// are reused. Scopes: the global scope 0 and one per fold iteration, each knowing its parent;
/// a binding is visible from its scope and the scopes below it. Iteration scopes close in
/// reverse order of opening, so the names to drop at a scope's end are the tail of one log.
#[derive(Debug, Default)]
pub struct Env {
    scalars: Vec<u32>,
    bindings: Vec<Binding>,
    free: Vec<u32>,
    /// Parent of each scope ([`NONE`] for the global one).
    parents: Vec<u32>,
    /// Names bound in the open iteration scopes, and where each scope's part starts.
    log: Vec<u32>,
    log_starts: Vec<u32>,
    /// Current scope.
    pub scope: usize,
    /// Active fold iterators.
    iterators: Vec<Vec<Cursor>>,
    /// Streams and stream maps; `None` = declared by `new` but not written yet.
    streams: Vec<Vec<Option<Stream>>>,
    /// Canon streams and canon maps; `None` = cleared by `new`.
    canons: Vec<Vec<Option<Rc<CanonValue>>>>,
}

/// The scalar tables of an [`Env`], kept from run to run (see `scratch`).
#[derive(Debug, Default)]
pub struct EnvBuffers {
    scalars: Vec<u32>,
    bindings: Vec<Binding>,
}

impl EnvBuffers {
    /// Emptied, or dropped when a table's capacity is above `max_bytes`.
    pub fn kept(self, max_bytes: usize) -> Self {
        use crate::scratch::keep;
        EnvBuffers { scalars: keep(self.scalars, max_bytes), bindings: keep(self.bindings, max_bytes) }
    }
}

impl Env {
    /// An empty environment with the global scope, for a script with `names` names.
    #[cfg(test)]
    pub fn new(names: u32) -> Self {
        Self::with_buffers(names, EnvBuffers::default())
    }

    /// An empty environment with the global scope, for a script with `names` names, in the
    /// storage of `buffers`.
    pub fn with_buffers(names: u32, buffers: EnvBuffers) -> Self {
        let names = names as usize;
        let EnvBuffers { mut scalars, mut bindings } = buffers;
        scalars.clear();
        scalars.resize(names, NONE);
        bindings.clear();
        // most names of a script are bound once
        bindings.reserve(names);
        Env { scalars, bindings, parents: vec![NONE], ..Default::default() }
    }

    /// The scalar tables, for the next run.
    pub fn into_buffers(self) -> EnvBuffers {
        EnvBuffers { scalars: self.scalars, bindings: self.bindings }
    }

    /// Whether the current scope is global (outside any fold).
    pub fn is_global(&self) -> bool {
        self.scope == 0
    }

    /// Opens a fold iteration scope as a child of `base`; returns the previous scope.
    pub fn enter_iteration(&mut self, base: usize) -> usize {
        self.parents.push(base as u32);
        self.log_starts.push(self.log.len() as u32);
        std::mem::replace(&mut self.scope, self.parents.len() - 1)
    }

    /// Closes the current iteration scope (its scalars are dropped) and returns to `previous`.
    pub fn exit_iteration(&mut self, previous: usize) {
        let scope = self.scope as u32;
        let start = self.log_starts.pop().unwrap_or(0) as usize;
        let mut log = std::mem::take(&mut self.log);
        for id in log.drain(start.min(log.len())..) {
            self.drop_scope(id, scope);
        }
        self.log = log;
        self.scope = previous;
    }

    /// Unlinks the bindings of `scope` from the list of name `id`.
    fn drop_scope(&mut self, id: u32, scope: u32) {
        let Some(&head) = self.scalars.get(id as usize) else { return };
        // `link`: the binding whose `prev` points at `i` (NONE: the list head)
        let (mut link, mut i) = (NONE, head);
        while i != NONE {
            let b = &self.bindings[i as usize];
            let prev = b.prev;
            if b.scope == scope {
                match link {
                    NONE => self.scalars[id as usize] = prev,
                    l => self.bindings[l as usize].prev = prev,
                }
                self.release(i);
            } else {
                link = i;
            }
            i = prev;
        }
    }

    fn release(&mut self, i: u32) {
        self.bindings[i as usize].value = None;
        self.free.push(i);
    }

    /// Adds a binding at the head of name `id`'s list.
    #[inline(always)]
    fn bind(&mut self, id: u32, value: Option<Item>) {
        self.bind_with(id, || value);
    }

    /// [`Env::bind`] of the value `make` returns, made where the binding goes.
    #[inline(always)]
    fn bind_with(&mut self, id: u32, make: impl FnOnce() -> Option<Item>) {
        let i = id as usize;
        if self.scalars.len() <= i {
            self.scalars.resize(i + 1, NONE);
        }
        let (scope, prev) = (self.scope as u32, self.scalars[i]);
        // the binding is built where it goes (built first and moved, it went through the stack)
        let at = match self.free.pop() {
            Some(at) => {
                self.bindings[at as usize] = Binding { value: make(), scope, prev };
                at
            }
            None => {
                crate::scratch::push_with(&mut self.bindings, || Binding { value: make(), scope, prev });
                (self.bindings.len() - 1) as u32
            }
        };
        self.scalars[i] = at;
        if self.scope != 0 {
            self.log.push(id);
        }
    }

    #[inline]
    fn visible(&self, binding_scope: u32) -> bool {
        let mut s = self.scope as u32;
        loop {
            if s == binding_scope {
                return true;
            }
            if s == 0 || s == NONE {
                return false;
            }
            s = self.parents[s as usize];
        }
    }

    /// The newest binding of `name` visible from the current scope.
    #[inline]
    fn visible_binding(&self, name: Name<'_>) -> Option<u32> {
        let mut i = *self.scalars.get(name.id as usize)?;
        while i != NONE {
            let b = &self.bindings[i as usize];
            if b.scope == 0 || self.visible(b.scope) {
                return Some(i);
            }
            i = b.prev;
        }
        None
    }

    /// Looks a scalar up.
    #[inline]
    pub fn scalar(&self, name: Name<'_>) -> Lookup<'_> {
        match self.visible_binding(name).map(|i| &self.bindings[i as usize].value) {
            Some(Some(item)) => Lookup::Found(item),
            Some(None) => Lookup::Cleared,
            None => Lookup::NotFound,
        }
    }

    /// Whether setting `name` now would re-set a global scalar (ShadowingIsNotAllowed).
    #[inline]
    pub fn would_shadow(&self, name: Name<'_>) -> bool {
        self.is_global() && matches!(self.scalar(name), Lookup::Found(_))
    }

    /// Sets a scalar (callers check [`Env::would_shadow`] first).
    #[inline(always)]
    pub fn set_scalar(&mut self, name: Name<'_>, item: Item) {
        let target = self.scalar_target(name);
        self.store_scalar_with(target, name, || item);
    }

    /// Where [`Env::set_scalar`] puts a value of `name`. Found before the value is made, the
    /// value is stored right after it is built (kept across the lookup, it went through the stack
    /// and was read back with wider loads than it was written with: a store-forwarding stall).
    #[inline(always)]
    pub fn scalar_target(&self, name: Name<'_>) -> ScalarTarget {
        let scope = self.scope as u32;
        if let Some(i) = self.visible_binding(name) {
            let b = &self.bindings[i as usize];
            if b.scope == scope && (scope != 0 || b.value.is_none()) {
                return ScalarTarget(i);
            }
        }
        ScalarTarget(NONE)
    }

    /// Stores the item `make` returns where [`Env::scalar_target`] found for `name` (with no
    /// change to the environment in between), made where it is stored: a whole `Item` handed in
    /// went through the stack.
    #[inline(always)]
    pub fn store_scalar_with(&mut self, target: ScalarTarget, name: Name<'_>, make: impl FnOnce() -> Item) {
        match target.0 {
            NONE => self.bind_with(name.id, || Some(make())),
            i => self.bindings[i as usize].value = Some(make()),
        }
    }

    /// `new name` for a scalar: returns the mark to restore at scope exit.
    pub fn new_scalar(&mut self, name: Name<'_>) -> u32 {
        let mark = self.scalars.get(name.id as usize).copied().unwrap_or(NONE);
        self.bind(name.id, None);
        mark
    }

    /// End of `new name` for a scalar: the bindings made since (the `new` one included) go.
    pub fn end_new_scalar(&mut self, name: Name<'_>, mark: u32) {
        let Some(&head) = self.scalars.get(name.id as usize) else { return };
        let mut i = head;
        while i != NONE && i != mark {
            let prev = self.bindings[i as usize].prev;
            self.release(i);
            i = prev;
        }
        self.scalars[name.id as usize] = i;
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
    pub fn canon_slots(&mut self, name: Name<'_>) -> &mut Vec<Option<Rc<CanonValue>>> {
        slot(&mut self.canons, name.id)
    }

    /// The current canon value.
    pub fn canon(&self, name: Name<'_>) -> Option<Rc<CanonValue>> {
        self.canons.get(name.id as usize)?.last()?.clone()
    }

    /// Binds a canon value (replacing the current slot).
    pub fn set_canon(&mut self, name: Name<'_>, value: Rc<CanonValue>) {
        let slots = self.canon_slots(name);
        match slots.last_mut() {
            Some(slot) => *slot = Some(value),
            None => slots.push(Some(value)),
        }
    }

    /// The cursors of a fold iterator (one per open fold over it; the last is current).
    #[inline]
    pub fn cursors(&self, name: Name<'_>) -> &[Cursor] {
        self.iterators.get(name.id as usize).map_or(&[], |c| c.as_slice())
    }

    /// The cursors of a fold iterator, to change.
    pub fn cursors_mut(&mut self, name: Name<'_>) -> &mut Vec<Cursor> {
        slot(&mut self.iterators, name.id)
    }

    /// The current item of an active iterator.
    #[inline]
    pub fn iterator(&self, name: Name<'_>) -> Option<ItemRef<'_>> {
        let c = self.iterators.get(name.id as usize)?.last()?;
        let item = c.items.get(c.idx)?;
        Some(ItemRef { item, elements: c.elements.as_ref() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: i64) -> Item {
        Item::new(Val::from(serde_json::Value::from(v)), Arc::new(Tetraplet::default()))
    }

    fn n(id: u32) -> Name<'static> {
        Name { text: "v", id }
    }

    fn get(env: &Env, name: Name<'_>) -> Option<i64> {
        match env.scalar(name) {
            Lookup::Found(Item { value: Val::Json(v), .. }) => v.as_i64(),
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
