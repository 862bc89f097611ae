//! Parsed scripts, kept between runs.
//!
//! A particle's script does not change on its way: a peer runs the same text on every arrival and
//! every batch of call results, and the particles of one application carry the same script. Parsing
//! and validating is most of a run's cost for large scripts (about 70% of the 10,000-`ap` bench),
//! so [`run`](crate::run) keeps the syntax trees of recently run scripts in a process-wide
//! [`ScriptCache`] and reuses them when the same text comes again.
//!
//! A hit is decided by comparing the whole text byte by byte (and the parse limits), never by a
//! hash alone: a hostile script cannot collide with a cached one. Only scripts that parsed and
//! validated are kept; the cache is bounded by the total script bytes it holds (a syntax tree is a
//! few times its text) and by its number of entries, least recently used out first.

use std::sync::{Arc, Mutex};

use crate::data::ArgumentHash;
use crate::exec::constant_argument_hashes;
use crate::parser::{Ast, ParseBuffers, ParseError, ParseLimits, parse_into, parse_with_limits};

/// A script's text and its syntax tree, which borrows the text.
pub(crate) struct Parsed {
    /// Declared first: dropped before the text it points into.
    ast: Ast<'static>,
    /// The argument forms of the calls with constant arguments (see
    /// [`constant_argument_hashes`]).
    constant_args: Vec<Option<ArgumentHash>>,
    max_depth: usize,
    text: Arc<str>,
}

impl Parsed {
    fn new(text: &str, limits: ParseLimits) -> Result<Self, ParseError> {
        let text: Arc<str> = Arc::from(text);
        let ast = parse_with_limits(&text, limits)?.into_execution_order();
        // SAFETY: `ast` borrows the bytes of `text`, a heap allocation owned by this struct
        // (through the Arc, whose contents never move) that is never replaced and outlives `ast`
        // (fields drop in declaration order). The `'static` never leaves this module: `ast()`
        // hands the tree out for as long as `self` is borrowed, no longer.
        let ast = unsafe { std::mem::transmute::<Ast<'_>, Ast<'static>>(ast) };
        let constant_args = constant_argument_hashes(&ast);
        Ok(Parsed { ast, constant_args, max_depth: limits.max_depth, text })
    }

    fn ast(&self) -> &Ast<'_> {
        &self.ast
    }

    fn matches(&self, text: &str, limits: ParseLimits) -> bool {
        self.max_depth == limits.max_depth && *self.text == *text
    }
}

/// A parsed script, from the cache or parsed for this run only.
pub(crate) enum Script<'s> {
    Own(Ast<'s>),
    Shared(Arc<Parsed>),
}

impl<'s> Script<'s> {
    pub(crate) fn ast(&self) -> &Ast<'_> {
        match self {
            Script::Own(ast) => ast,
            Script::Shared(p) => p.ast(),
        }
    }

    /// The storage of a tree parsed for one run, with the name table's from `table`, for the
    /// next parse (nothing for a shared tree).
    pub(crate) fn into_buffers(self, table: ParseBuffers<'s>) -> ParseBuffers<'s> {
        match self {
            Script::Own(ast) => ParseBuffers::from_ast(ast, table),
            Script::Shared(_) => table,
        }
    }

    /// The argument forms of the calls with constant arguments, by call index (empty for a
    /// script parsed for one run only: a run computes them as its calls need them).
    pub(crate) fn constant_args(&self) -> &[Option<ArgumentHash>] {
        match self {
            Script::Own(_) => &[],
            Script::Shared(p) => &p.constant_args,
        }
    }
}

/// A bounded, least-recently-used cache of parsed scripts (see the module docs). Shared by
/// threads; a lookup holds its lock for one byte comparison per entry of the same length.
pub struct ScriptCache {
    max_bytes: usize,
    max_entries: usize,
    /// Most recently used first.
    entries: Mutex<Vec<Arc<Parsed>>>,
}

impl std::fmt::Debug for ScriptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.lock();
        f.debug_struct("ScriptCache")
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("entries", &entries.len())
            .field("bytes", &entries.iter().map(|p| p.text.len()).sum::<usize>())
            .finish()
    }
}

impl ScriptCache {
    /// A cache of at most `max_entries` scripts of at most `max_bytes` of text in all; a script
    /// longer than `max_bytes` is never kept. `ScriptCache::new(0, 0)` keeps nothing: every run
    /// parses (the benches' "cold" case).
    pub const fn new(max_bytes: usize, max_entries: usize) -> Self {
        ScriptCache { max_bytes, max_entries, entries: Mutex::new(Vec::new()) }
    }

    /// The process-wide cache [`run`](crate::run) uses: 64 scripts, 4 MiB of text in all (one
    /// script of the default `max_air_size`; the trees take a few times that).
    pub fn global() -> &'static ScriptCache {
        static GLOBAL: ScriptCache = ScriptCache::new(4 * 1024 * 1024, 64);
        &GLOBAL
    }

    /// Number of scripts held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no script is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every script.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Parsed>>> {
        // a panic while holding the lock cannot leave the vector inconsistent (every change is
        // one Vec operation): a poisoned lock is still usable
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cacheable(&self, script: &str) -> bool {
        self.max_entries > 0 && script.len() <= self.max_bytes
    }

    /// The parsed `script`: the cached tree when the same text was parsed with the same limits,
    /// else a fresh parse (kept if it succeeded and fits).
    ///
    /// A tree parsed for this call only is built in the storage of `buffers` (see
    /// [`Script::into_buffers`]).
    pub(crate) fn parse<'s>(
        &self,
        script: &'s str,
        limits: ParseLimits,
        buffers: &mut ParseBuffers<'s>,
    ) -> Result<Script<'s>, ParseError> {
        if !self.cacheable(script) {
            return parse_into(script, limits, buffers).map(Script::Own);
        }
        {
            let mut entries = self.lock();
            if let Some(i) = entries.iter().position(|p| p.matches(script, limits)) {
                let hit = entries.remove(i);
                entries.insert(0, hit.clone());
                return Ok(Script::Shared(hit));
            }
        }
        let parsed = Arc::new(Parsed::new(script, limits)?);
        let mut entries = self.lock();
        // another thread may have parsed the same text meanwhile: keep one copy
        entries.retain(|p| !p.matches(script, limits));
        entries.insert(0, parsed.clone());
        let mut bytes = 0;
        let keep = entries
            .iter()
            .take_while(|p| {
                bytes += p.text.len();
                bytes <= self.max_bytes
            })
            .count()
            .min(self.max_entries);
        entries.truncate(keep);
        Ok(Script::Shared(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits { max_depth: 1000, max_size: 1 << 20 };

    fn shared(s: &Script<'_>) -> Option<*const Parsed> {
        match s {
            Script::Shared(p) => Some(Arc::as_ptr(p)),
            Script::Own(_) => None,
        }
    }

    #[test]
    fn same_text_reuses_the_tree_other_text_does_not() {
        let cache = ScriptCache::new(1 << 20, 4);
        let a = cache.parse("(seq (null) (null))", LIMITS, &mut ParseBuffers::default()).unwrap();
        let copy = String::from("(seq (null) (null))");
        let again = cache.parse(&copy, LIMITS, &mut ParseBuffers::default()).unwrap();
        assert_eq!(shared(&a), shared(&again));
        let b = cache.parse("(seq (null) (never))", LIMITS, &mut ParseBuffers::default()).unwrap();
        assert_ne!(shared(&a), shared(&b));
        assert_eq!(cache.len(), 2);
        // other limits: parsed again (a depth limit can refuse what another accepts)
        let nested = "(seq (seq (null) (null)) (null))";
        cache.parse(nested, LIMITS, &mut ParseBuffers::default()).unwrap();
        assert_eq!(cache.len(), 3);
        assert!(cache.parse(nested, ParseLimits { max_depth: 1, ..LIMITS }, &mut ParseBuffers::default()).is_err());
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn errors_are_not_kept_and_bounds_hold() {
        let cache = ScriptCache::new(64, 2);
        assert!(cache.parse("(nul)", LIMITS, &mut ParseBuffers::default()).is_err());
        assert!(cache.is_empty());
        for s in ["(null)", "(never)", "(seq (null) (null))"] {
            cache.parse(s, LIMITS, &mut ParseBuffers::default()).unwrap();
        }
        assert_eq!(cache.len(), 2, "at most 2 entries");
        let too_long = "(null)".to_string() + &" ".repeat(100);
        assert!(
            matches!(cache.parse(&too_long, LIMITS, &mut ParseBuffers::default()).unwrap(), Script::Own(_)),
            "longer than the byte budget"
        );
        let none = ScriptCache::new(0, 0);
        assert!(matches!(none.parse("(null)", LIMITS, &mut ParseBuffers::default()).unwrap(), Script::Own(_)));
        assert!(none.is_empty());
    }

    #[test]
    fn a_cached_tree_outlives_the_callers_text() {
        let cache = ScriptCache::new(1 << 20, 4);
        let text = String::from(r#"(call "peer" ("svc" "fn") ["arg"] out)"#);
        drop(cache.parse(&text, LIMITS, &mut ParseBuffers::default()).unwrap());
        drop(text);
        let again =
            cache.parse(r#"(call "peer" ("svc" "fn") ["arg"] out)"#, LIMITS, &mut ParseBuffers::default()).unwrap();
        let crate::parser::Instr::Call(c) = &again.ast().node(again.ast().root).instr else { panic!("a call") };
        assert!(format!("{:?}", again.ast().call(*c)).contains("svc"));
    }
}
