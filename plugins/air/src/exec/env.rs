//! Variables during one run: scalars with fold scoping and `new`, fold iterators, streams and
//! stream maps (with generations), canon streams and canon maps.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value as JValue;

use crate::parser::NodeId;
use crate::trace::Source;
use crate::value::Tetraplet;

/// A value with its provenance.
#[derive(Debug, Clone)]
pub struct Item {
    /// The JSON value.
    pub value: Rc<JValue>,
    /// Where it came from.
    pub tetraplet: Rc<Tetraplet>,
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
    pub tetraplet: Rc<Tetraplet>,
}

/// All variables of a run.
#[derive(Debug, Default)]
pub struct Env {
    scalars: HashMap<String, Vec<Binding>>,
    /// Ancestor chain of each scope (itself first); scope 0 is global.
    scope_chains: Vec<Vec<usize>>,
    /// Names set in each scope, to drop them when the scope ends.
    scope_names: Vec<Vec<String>>,
    /// Current scope.
    pub scope: usize,
    /// Active fold iterators.
    pub iterators: HashMap<String, Vec<Cursor>>,
    /// Streams and stream maps; `None` = declared by `new` but not written yet.
    pub streams: HashMap<String, Vec<Option<Stream>>>,
    /// Canon streams and canon maps; `None` = cleared by `new`.
    pub canons: HashMap<String, Vec<Option<Rc<CanonValue>>>>,
}

impl Env {
    /// An empty environment with the global scope.
    pub fn new() -> Self {
        Env { scope_chains: vec![vec![0]], scope_names: vec![Vec::new()], ..Default::default() }
    }

    /// Whether the current scope is global (outside any fold).
    pub fn is_global(&self) -> bool {
        self.scope == 0
    }

    /// Opens a fold iteration scope as a child of `base`; returns the previous scope.
    pub fn enter_iteration(&mut self, base: usize) -> usize {
        let mut chain = vec![self.scope_chains.len()];
        chain.extend(self.scope_chains[base].iter().copied());
        self.scope_chains.push(chain);
        self.scope_names.push(Vec::new());
        std::mem::replace(&mut self.scope, self.scope_chains.len() - 1)
    }

    /// Closes the current iteration scope (its scalars are dropped) and returns to `previous`.
    pub fn exit_iteration(&mut self, previous: usize) {
        let scope = self.scope;
        for name in std::mem::take(&mut self.scope_names[scope]) {
            if let Some(list) = self.scalars.get_mut(&name) {
                list.retain(|b| b.scope != scope);
            }
        }
        self.scope = previous;
    }

    fn visible(&self, binding_scope: usize) -> bool {
        self.scope_chains[self.scope].contains(&binding_scope)
    }

    /// Looks a scalar up.
    pub fn scalar(&self, name: &str) -> Lookup<'_> {
        let Some(list) = self.scalars.get(name) else { return Lookup::NotFound };
        match list.iter().rev().find(|b| self.visible(b.scope)) {
            Some(Binding { value: Some(item), .. }) => Lookup::Found(item),
            Some(Binding { value: None, .. }) => Lookup::Cleared,
            None => Lookup::NotFound,
        }
    }

    /// Whether setting `name` now would re-set a global scalar (ShadowingIsNotAllowed).
    pub fn would_shadow(&self, name: &str) -> bool {
        self.is_global() && matches!(self.scalar(name), Lookup::Found(_))
    }

    /// Sets a scalar (callers check [`Env::would_shadow`] first).
    pub fn set_scalar(&mut self, name: &str, item: Item) {
        let scope = self.scope;
        let visible_idx = self
            .scalars
            .get(name)
            .and_then(|list| list.iter().rposition(|b| self.scope_chains[scope].contains(&b.scope)));
        let list = self.scalars.entry(name.to_string()).or_default();
        if let Some(i) = visible_idx
            && list[i].scope == scope
            && (scope != 0 || list[i].value.is_none())
        {
            list[i].value = Some(item);
            return;
        }
        list.push(Binding { scope, value: Some(item) });
        self.scope_names[scope].push(name.to_string());
    }

    /// `new name` for a scalar: returns the mark to restore at scope exit.
    pub fn new_scalar(&mut self, name: &str) -> usize {
        let scope = self.scope;
        let list = self.scalars.entry(name.to_string()).or_default();
        list.push(Binding { scope, value: None });
        self.scope_names[scope].push(name.to_string());
        list.len() - 1
    }

    /// End of `new name` for a scalar.
    pub fn end_new_scalar(&mut self, name: &str, mark: usize) {
        if let Some(list) = self.scalars.get_mut(name) {
            list.truncate(mark);
        }
    }

    /// The current slot of a stream (creating the global one if needed).
    pub fn stream_mut(&mut self, name: &str) -> &mut Stream {
        let slots = self.streams.entry(name.to_string()).or_default();
        if slots.is_empty() {
            slots.push(None);
        }
        slots.last_mut().expect("non-empty").get_or_insert_with(Stream::default)
    }

    /// The current slot of a stream if it was written.
    pub fn stream(&self, name: &str) -> Option<&Stream> {
        self.streams.get(name)?.last()?.as_ref()
    }

    /// The current canon value.
    pub fn canon(&self, name: &str) -> Option<Rc<CanonValue>> {
        self.canons.get(name)?.last()?.clone()
    }

    /// Binds a canon value (replacing the current slot).
    pub fn set_canon(&mut self, name: &str, value: Rc<CanonValue>) {
        let slots = self.canons.entry(name.to_string()).or_default();
        match slots.last_mut() {
            Some(slot) => *slot = Some(value),
            None => slots.push(Some(value)),
        }
    }

    /// The current item of an active iterator.
    pub fn iterator(&self, name: &str) -> Option<&Item> {
        let c = self.iterators.get(name)?.last()?;
        c.items.get(c.idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: i64) -> Item {
        Item { value: Rc::new(JValue::from(v)), tetraplet: Rc::new(Tetraplet::default()), trace_pos: None }
    }

    fn get(env: &Env, n: &str) -> Option<i64> {
        match env.scalar(n) {
            Lookup::Found(i) => i.value.as_i64(),
            _ => None,
        }
    }

    #[test]
    fn fold_scopes() {
        let mut env = Env::new();
        env.set_scalar("g", item(0));
        assert!(env.would_shadow("g"));
        let prev = env.enter_iteration(0);
        env.set_scalar("v", item(1));
        assert!(!env.would_shadow("g"));
        // the nested iteration (next) does not see v of the outer iteration, but sees g
        let prev2 = env.enter_iteration(0);
        assert_eq!(get(&env, "v"), None);
        assert_eq!(get(&env, "g"), Some(0));
        env.set_scalar("v", item(2));
        assert_eq!(get(&env, "v"), Some(2));
        env.exit_iteration(prev2);
        assert_eq!(get(&env, "v"), Some(1));
        env.exit_iteration(prev);
        assert_eq!(get(&env, "v"), None);
    }

    #[test]
    fn new_scope() {
        let mut env = Env::new();
        env.set_scalar("x", item(1));
        let mark = env.new_scalar("x");
        assert!(matches!(env.scalar("x"), Lookup::Cleared));
        assert!(!env.would_shadow("x"));
        env.set_scalar("x", item(2));
        assert!(env.would_shadow("x"));
        env.end_new_scalar("x", mark);
        assert_eq!(get(&env, "x"), Some(1));
    }
}
