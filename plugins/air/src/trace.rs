//! Replaying and merging traces.
//!
//! Each run executes the script from the root and builds a new *result trace*. Every instruction
//! that writes a state first asks for "the next state" of the previous trace (this peer's own
//! `prev_data`) and of the current trace (the data that arrived), each read through a window
//! `[pos, end)`. `par` narrows the windows to each branch's sub-trace; a stream `fold` moves them
//! to the sub-traces recorded for the iterated value (found through the positions its producing
//! state had in each input trace). The merge of two states follows SPEC §2.3.

use std::collections::HashMap;

use crate::data::{CallState, CanonState, FoldLore, FoldState, OutputKind, State};

/// "No position" in [`TraceHandler`]'s position map.
const NONE: u32 = u32::MAX;

/// Errors of the trace handler (uncatchable, code 20000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The states at this point are not what the instruction expects, or contradict each other.
    #[error("{instruction} met incompatible states: previous {prev}, current {current}")]
    Incompatible {
        /// The kind of state expected.
        instruction: &'static str,
        /// Previous state (debug text).
        prev: String,
        /// Current state (debug text).
        current: String,
    },
    /// Sub-trace sizes point outside the trace.
    #[error("{what} sub-trace [{pos}, +{len}) is outside a trace of {trace_len} states")]
    OutOfBounds {
        /// par or fold.
        what: &'static str,
        /// Start.
        pos: usize,
        /// Length.
        len: usize,
        /// Trace length.
        trace_len: usize,
    },
}

/// Which input a merged state came from (the generation of a stream value is read from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// This peer's previous data.
    Prev,
    /// The data that arrived.
    Current,
    /// Produced by this run.
    New,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    pos: usize,
    end: usize,
}

/// The merged trace handler of one run.
#[derive(Debug)]
pub struct TraceHandler<'a> {
    prev: Vec<State<'a>>,
    cur: Vec<State<'a>>,
    pw: Window,
    cw: Window,
    /// The result trace after its first [`TraceHandler::shared`] states.
    result: Vec<State<'a>>,
    /// The result trace starts with this many states of the previous trace, as they are there
    /// (replayed one by one at the same positions, nothing else in between): they are not
    /// copied into `result` (see [`TraceHandler::take_prev_verbatim`]).
    shared: usize,
    /// Indexed by result position: (previous position, current position) of merged call/ap
    /// states ([`NONE`] when absent or not recorded).
    pos_map: Vec<(u32, u32)>,
}

/// A finished [`TraceHandler`]: the result trace, and the buffers of the inputs and the
/// position map (kept for the next run, see `scratch`).
pub struct Parts<'a> {
    /// The result trace after its first `shared` states, which are the first `shared` states
    /// of the previous trace (`inputs[0]`).
    pub result: Vec<State<'a>>,
    /// See above.
    pub shared: usize,
    /// The previous and the current trace.
    pub inputs: [Vec<State<'a>>; 2],
    /// The position map.
    pub pos_map: Vec<(u32, u32)>,
}

/// What the trace says about a call.
#[derive(Debug)]
pub enum CallMerge<'a> {
    /// No state: execute for the first time.
    NotMet,
    /// A state and the input it came from.
    Met(CallState<'a>, Source),
}

/// Context of an open `par`.
#[derive(Debug)]
pub struct ParCtx {
    result_pos: usize,
    prev: Option<(usize, usize, usize)>,
    cur: Option<(usize, usize, usize)>,
    prev_end: usize,
    cur_end: usize,
    left_len: usize,
}

#[derive(Debug)]
struct FoldSide {
    region_start: usize,
    region_end: usize,
    by_value: HashMap<u32, FoldLore>,
}

#[derive(Debug)]
struct IterRec {
    value_pos: usize,
    prev: Option<FoldLore>,
    cur: Option<FoldLore>,
    before_start: usize,
    before_len: Option<usize>,
    after_start: Option<usize>,
}

/// Context of an open stream fold.
#[derive(Debug)]
pub struct FoldCtx {
    result_pos: usize,
    prev: FoldSide,
    cur: FoldSide,
    prev_end: usize,
    cur_end: usize,
    lore: Vec<FoldLore>,
    stack: Vec<IterRec>,
}

fn describe(s: Option<&State<'_>>) -> String {
    match s {
        None => "none".into(),
        Some(State::Par { left, right }) => format!("par [{left}, {right}]"),
        Some(State::Call(CallState::Executed { .. })) => "call executed".into(),
        Some(State::Call(CallState::Failed(_))) => "call failed".into(),
        Some(State::Call(CallState::SentBy { peer, call_id })) => format!("call sent by {peer} ({call_id:?})"),
        Some(State::Fold(_)) => "fold".into(),
        Some(State::Ap { generation }) => format!("ap (generation {generation})"),
        Some(State::Canon(CanonState::Executed(_))) => "canon executed".into(),
        Some(State::Canon(CanonState::SentBy(p))) => format!("canon sent by {p}"),
    }
}

impl<'a> TraceHandler<'a> {
    /// A handler over the two input traces.
    #[cfg(test)]
    pub fn new(prev: Vec<State<'a>>, cur: Vec<State<'a>>) -> Self {
        Self::with_buffers(prev, cur, Vec::new(), Vec::new())
    }

    /// A handler over the two input traces, writing the result trace and the position map into
    /// the storage of `result` and `pos_map` (emptied first).
    pub fn with_buffers(
        prev: Vec<State<'a>>,
        cur: Vec<State<'a>>,
        mut result: Vec<State<'a>>,
        mut pos_map: Vec<(u32, u32)>,
    ) -> Self {
        let pw = Window { pos: 0, end: prev.len() };
        let cw = Window { pos: 0, end: cur.len() };
        let capacity = prev.len().max(cur.len());
        result.clear();
        result.reserve(capacity);
        pos_map.clear();
        // a replay records a position for most states: no resize per state
        pos_map.resize(capacity, (NONE, NONE));
        TraceHandler { prev, cur, pw, cw, result, shared: 0, pos_map }
    }

    /// States in the longer input trace.
    pub fn input_len(&self) -> usize {
        self.prev.len().max(self.cur.len())
    }

    fn take(states: &[State<'_>], w: &mut Window) -> Option<usize> {
        if w.pos < w.end && w.pos < states.len() {
            w.pos += 1;
            Some(w.pos - 1)
        } else {
            None
        }
    }

    fn next_pair(&mut self) -> (Option<usize>, Option<usize>) {
        (Self::take(&self.prev, &mut self.pw), Self::take(&self.cur, &mut self.cw))
    }

    fn incompatible(&self, instruction: &'static str, p: Option<usize>, c: Option<usize>) -> TraceError {
        TraceError::Incompatible {
            instruction,
            prev: describe(p.map(|i| &self.prev[i])),
            current: describe(c.map(|i| &self.cur[i])),
        }
    }

    /// The next state of the previous trace where the current trace has none (a replay of this
    /// peer's own data, nothing to merge), without taking it.
    #[inline]
    pub fn peek_prev_only(&self) -> Option<&State<'a>> {
        let (pw, cw) = (self.pw, self.cw);
        if cw.pos < cw.end && cw.pos < self.cur.len() {
            return None;
        }
        (pw.pos < pw.end).then(|| self.prev.get(pw.pos)).flatten()
    }

    /// Appends a state to the result trace, returning its position.
    #[inline]
    pub fn push(&mut self, state: State<'a>) -> usize {
        self.result.push(state);
        self.len() - 1
    }

    /// Length of the result trace.
    #[inline]
    pub fn len(&self) -> usize {
        self.shared + self.result.len()
    }

    /// Takes the state [`TraceHandler::peek_prev_only`] showed into the result trace as it is.
    /// While the result trace is exactly the start of the previous one, it is not copied.
    #[inline]
    pub fn take_prev_verbatim(&mut self) {
        let Some(p) = Self::take(&self.prev, &mut self.pw) else { return };
        let pos = self.len();
        self.record(pos, Some(p), None);
        if self.result.is_empty() && p == self.shared {
            self.shared += 1;
        } else {
            self.result.push(self.prev[p].clone());
        }
    }

    /// The result state at `pos`, to change (the shared start is copied first if `pos` is in
    /// it: no caller changes a replayed call result, so that does not happen in practice).
    fn result_mut(&mut self, pos: usize) -> Option<&mut State<'a>> {
        if pos < self.shared {
            let mut all = Vec::with_capacity(self.len());
            all.extend(self.prev[..self.shared].iter().cloned());
            all.append(&mut self.result);
            self.result = all;
            self.shared = 0;
        }
        self.result.get_mut(pos - self.shared)
    }

    #[inline]
    fn record(&mut self, result_pos: usize, p: Option<usize>, c: Option<usize>) {
        if p.is_none() && c.is_none() {
            return;
        }
        if self.pos_map.len() <= result_pos {
            self.pos_map.resize(result_pos + 1, (NONE, NONE));
        }
        let pos = |i: Option<usize>| i.map_or(NONE, |i| i as u32);
        self.pos_map[result_pos] = (pos(p), pos(c));
    }

    /// The input positions recorded for the state at `result_pos`.
    fn recorded(&self, result_pos: usize) -> (Option<usize>, Option<usize>) {
        let (p, c) = self.pos_map.get(result_pos).copied().unwrap_or((NONE, NONE));
        let pos = |i: u32| (i != NONE).then_some(i as usize);
        (pos(p), pos(c))
    }

    /// Next call state; records the input positions for the state about to be pushed.
    ///
    /// # Errors
    /// A non-call state, or contradicting call states.
    pub fn meet_call(&mut self) -> Result<CallMerge<'a>, TraceError> {
        let (p, c) = self.next_pair();
        let ps = p.map(|i| &self.prev[i]);
        let cs = c.map(|i| &self.cur[i]);
        let merged = match (ps, cs) {
            (None, None) => return Ok(CallMerge::NotMet),
            (Some(State::Call(a)), None) => (a.clone(), Source::Prev),
            (None, Some(State::Call(b))) => (b.clone(), Source::Current),
            (Some(State::Call(a)), Some(State::Call(b))) => match (a, b) {
                (CallState::Executed { result: ra, output: oa }, CallState::Executed { result: rb, output: ob }) => {
                    let same_kind = matches!(
                        (oa, ob),
                        (OutputKind::Scalar, OutputKind::Scalar)
                            | (OutputKind::Unused, OutputKind::Unused)
                            | (OutputKind::Stream { .. }, OutputKind::Stream { .. })
                    );
                    if !same_kind
                        || ra.value != rb.value
                        || ra.tetraplet != rb.tetraplet
                        || ra.argument_hash != rb.argument_hash
                    {
                        return Err(self.incompatible("call", p, c));
                    }
                    (a.clone(), Source::Prev)
                }
                (CallState::Failed(ra), CallState::Failed(rb)) => {
                    if ra.value != rb.value || ra.tetraplet != rb.tetraplet {
                        return Err(self.incompatible("call", p, c));
                    }
                    (a.clone(), Source::Prev)
                }
                (CallState::SentBy { .. }, CallState::SentBy { .. }) => (a.clone(), Source::Prev),
                (CallState::SentBy { .. }, _) => (b.clone(), Source::Current),
                (_, CallState::SentBy { .. }) => (a.clone(), Source::Prev),
                _ => return Err(self.incompatible("call", p, c)),
            },
            _ => return Err(self.incompatible("call", p, c)),
        };
        let pos = self.len();
        self.record(pos, p, c);
        Ok(CallMerge::Met(merged.0, merged.1))
    }

    /// Next ap state: `Some((generation, source))` when one exists.
    ///
    /// # Errors
    /// A non-ap state.
    pub fn meet_ap(&mut self) -> Result<Option<(u32, Source)>, TraceError> {
        let (p, c) = self.next_pair();
        let merged = match (p.map(|i| &self.prev[i]), c.map(|i| &self.cur[i])) {
            (None, None) => None,
            (Some(State::Ap { generation }), None | Some(State::Ap { .. })) => Some((*generation, Source::Prev)),
            (None, Some(State::Ap { generation })) => Some((*generation, Source::Current)),
            _ => return Err(self.incompatible("ap", p, c)),
        };
        let pos = self.len();
        self.record(pos, p, c);
        Ok(merged)
    }

    /// Next canon state.
    ///
    /// # Errors
    /// A non-canon state or two different snapshots.
    pub fn meet_canon(&mut self) -> Result<Option<(CanonState<'a>, Source)>, TraceError> {
        let (p, c) = self.next_pair();
        Ok(match (p.map(|i| &self.prev[i]), c.map(|i| &self.cur[i])) {
            (None, None) => None,
            (Some(State::Canon(a)), None) => Some((a.clone(), Source::Prev)),
            (None, Some(State::Canon(b))) => Some((b.clone(), Source::Current)),
            (Some(State::Canon(a)), Some(State::Canon(b))) => match (a, b) {
                (CanonState::Executed(x), CanonState::Executed(y)) => {
                    if x.tetraplet != y.tetraplet || x.values != y.values {
                        return Err(self.incompatible("canon", p, c));
                    }
                    Some((a.clone(), Source::Prev))
                }
                (CanonState::SentBy(_), CanonState::Executed(_)) => Some((b.clone(), Source::Current)),
                _ => Some((a.clone(), Source::Prev)),
            },
            _ => return Err(self.incompatible("canon", p, c)),
        })
    }

    fn check_bounds(what: &'static str, pos: usize, len: usize, trace_len: usize) -> Result<(), TraceError> {
        if pos.checked_add(len).is_none_or(|e| e > trace_len) {
            return Err(TraceError::OutOfBounds { what, pos, len, trace_len });
        }
        Ok(())
    }

    /// Opens a `par`: writes its placeholder and narrows the windows to the left branches.
    ///
    /// # Errors
    /// A non-par state or sizes outside the trace.
    pub fn par_start(&mut self) -> Result<ParCtx, TraceError> {
        let (prev_end, cur_end) = (self.pw.end, self.cw.end);
        let (p, c) = self.next_pair();
        let side = |states: &[State<'_>], i: Option<usize>| -> Result<Option<(usize, usize, usize)>, ()> {
            match i.map(|i| (i, &states[i])) {
                None => Ok(None),
                Some((i, State::Par { left, right })) => Ok(Some((i + 1, *left as usize, *right as usize))),
                Some(_) => Err(()),
            }
        };
        let (Ok(ps), Ok(cs)) = (side(&self.prev, p), side(&self.cur, c)) else {
            return Err(self.incompatible("par", p, c));
        };
        for (s, len) in [(ps, self.prev.len()), (cs, self.cur.len())] {
            if let Some((start, l, r)) = s {
                Self::check_bounds("par", start, l.saturating_add(r), len)?;
            }
        }
        if let Some((start, l, _)) = ps {
            self.pw = Window { pos: start, end: start + l };
        }
        if let Some((start, l, _)) = cs {
            self.cw = Window { pos: start, end: start + l };
        }
        let result_pos = self.push(State::Par { left: 0, right: 0 });
        Ok(ParCtx { result_pos, prev: ps, cur: cs, prev_end, cur_end, left_len: 0 })
    }

    /// The left branch is done: windows move to the right branches.
    pub fn par_left_done(&mut self, ctx: &mut ParCtx) {
        ctx.left_len = self.len() - ctx.result_pos - 1;
        if let Some((start, l, r)) = ctx.prev {
            self.pw = Window { pos: start + l, end: start + l + r };
        }
        if let Some((start, l, r)) = ctx.cur {
            self.cw = Window { pos: start + l, end: start + l + r };
        }
    }

    /// The right branch is done: the par state gets its sizes, windows move past the par.
    pub fn par_right_done(&mut self, ctx: &ParCtx) {
        let right = self.len() - ctx.result_pos - 1 - ctx.left_len;
        if let Some(s) = self.result_mut(ctx.result_pos) {
            *s = State::Par { left: ctx.left_len as u32, right: right as u32 };
        }
        match ctx.prev {
            Some((start, l, r)) => self.pw = Window { pos: start + l + r, end: ctx.prev_end },
            None => self.pw.end = ctx.prev_end,
        }
        match ctx.cur {
            Some((start, l, r)) => self.cw = Window { pos: start + l + r, end: ctx.cur_end },
            None => self.cw.end = ctx.cur_end,
        }
    }

    /// Opens a stream fold.
    ///
    /// # Errors
    /// A non-fold state, or lore outside the trace.
    pub fn fold_start(&mut self) -> Result<FoldCtx, TraceError> {
        let (prev_end, cur_end) = (self.pw.end, self.cw.end);
        let (p, c) = self.next_pair();
        let side = |states: &[State<'_>], i: Option<usize>, w: Window| -> Result<FoldSide, TraceError> {
            let Some(i) = i else {
                return Ok(FoldSide { region_start: w.pos, region_end: w.pos, by_value: HashMap::new() });
            };
            let State::Fold(FoldState { len, lore }) = &states[i] else {
                return Err(TraceError::Incompatible {
                    instruction: "fold",
                    prev: describe(Some(&states[i])),
                    current: String::new(),
                });
            };
            let region_start = i + 1;
            Self::check_bounds("fold", region_start, *len as usize, states.len())?;
            let mut by_value = HashMap::new();
            for l in lore {
                for (off, n) in [l.before, l.after] {
                    Self::check_bounds("fold iteration", off as usize, n as usize, *len as usize)?;
                }
                by_value.entry(l.value_pos).or_insert(*l);
            }
            Ok(FoldSide { region_start, region_end: region_start + *len as usize, by_value })
        };
        let ps = side(&self.prev, p, self.pw).map_err(|_| self.incompatible("fold", p, c))?;
        let cs = side(&self.cur, c, self.cw).map_err(|_| self.incompatible("fold", p, c))?;
        self.pw = Window { pos: ps.region_end, end: ps.region_end };
        self.cw = Window { pos: cs.region_end, end: cs.region_end };
        let result_pos = self.push(State::Fold(FoldState::default()));
        Ok(FoldCtx { result_pos, prev: ps, cur: cs, prev_end, cur_end, lore: Vec::new(), stack: Vec::new() })
    }

    fn window_of(s: &FoldSide, lore: Option<FoldLore>, after: bool) -> Window {
        match lore {
            Some(l) => {
                let (off, len) = if after { l.after } else { l.before };
                let pos = s.region_start + off as usize;
                Window { pos, end: pos + len as usize }
            }
            None => Window { pos: s.region_end, end: s.region_end },
        }
    }

    /// An iteration starts for the value produced by the state at `value_pos` (result trace).
    pub fn iteration_start(&mut self, ctx: &mut FoldCtx, value_pos: Option<usize>) {
        let (pp, cp) = value_pos.map_or((None, None), |v| self.recorded(v));
        let prev = pp.and_then(|p| ctx.prev.by_value.get(&(p as u32)).copied());
        let cur = cp.and_then(|c| ctx.cur.by_value.get(&(c as u32)).copied());
        self.pw = Self::window_of(&ctx.prev, prev, false);
        self.cw = Self::window_of(&ctx.cur, cur, false);
        ctx.stack.push(IterRec {
            value_pos: value_pos.unwrap_or(usize::MAX),
            prev,
            cur,
            before_start: self.len(),
            before_len: None,
            after_start: None,
        });
    }

    /// `next` is called in the current iteration: its "before next" part ends.
    pub fn iteration_next(&mut self, ctx: &mut FoldCtx) {
        if let Some(top) = ctx.stack.last_mut() {
            top.before_len.get_or_insert(self.len() - top.before_start);
        }
    }

    /// `next` returned into the current iteration (after a nested iteration or the end).
    pub fn iteration_after(&mut self, ctx: &mut FoldCtx) {
        let Some(top) = ctx.stack.last_mut() else { return };
        top.before_len.get_or_insert(self.len() - top.before_start);
        top.after_start = Some(self.len());
        let (prev, cur) = (top.prev, top.cur);
        self.pw = Self::window_of(&ctx.prev, prev, true);
        self.cw = Self::window_of(&ctx.cur, cur, true);
    }

    /// The innermost iteration's body returned: its lore is recorded.
    pub fn iteration_end(&mut self, ctx: &mut FoldCtx) {
        let Some(rec) = ctx.stack.pop() else { return };
        let base = ctx.result_pos + 1;
        let now = self.len();
        let before_len = rec.before_len.unwrap_or(now - rec.before_start);
        let after_start = rec.after_start.unwrap_or(now);
        if rec.value_pos == usize::MAX {
            return;
        }
        ctx.lore.push(FoldLore {
            value_pos: rec.value_pos as u32,
            before: ((rec.before_start - base) as u32, before_len as u32),
            after: ((after_start - base) as u32, (now - after_start) as u32),
        });
    }

    /// Closes a stream fold: writes its state and moves the windows past its region.
    pub fn fold_end(&mut self, mut ctx: FoldCtx) {
        while !ctx.stack.is_empty() {
            self.iteration_end(&mut ctx);
        }
        let len = self.len() - ctx.result_pos - 1;
        if let Some(s) = self.result_mut(ctx.result_pos) {
            *s = State::Fold(FoldState { len: len as u32, lore: ctx.lore });
        }
        self.pw = Window { pos: ctx.prev.region_end, end: ctx.prev_end };
        self.cw = Window { pos: ctx.cur.region_end, end: ctx.cur_end };
    }

    /// Rewrites the generation of the stream state at `pos` (compaction).
    pub fn set_generation(&mut self, pos: usize, generation: u32) {
        match self.result_mut(pos) {
            Some(State::Ap { generation: g }) => *g = generation,
            Some(State::Call(CallState::Executed { output: OutputKind::Stream { generation: g }, .. })) => {
                *g = generation
            }
            _ => {}
        }
    }

    /// The result trace, and the input traces and position map (for their storage).
    pub fn into_parts(self) -> Parts<'a> {
        Parts { result: self.result, shared: self.shared, inputs: [self.prev, self.cur], pos_map: self.pos_map }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ServiceResult;
    use crate::value::Tetraplet;

    fn executed(v: &str) -> State<'static> {
        State::Call(CallState::Executed {
            result: ServiceResult {
                value: v.to_string().into(),
                tetraplet: std::sync::Arc::new(Tetraplet::new("p", "s", "f")),
                argument_hash: crate::data::ArgumentHash::of(b"[]"),
            },
            output: OutputKind::Scalar,
        })
    }

    fn sent() -> State<'static> {
        State::Call(CallState::SentBy { peer: "p".into(), call_id: None })
    }

    fn value_of(m: CallMerge<'_>) -> Option<(String, Source)> {
        match m {
            CallMerge::Met(CallState::Executed { result, .. }, src) => Some((result.value.into_owned(), src)),
            _ => None,
        }
    }

    #[test]
    fn verbatim_states_are_shared_until_the_trace_differs() {
        let prev = vec![executed("1"), executed("2"), executed("3"), executed("4")];
        let mut t = TraceHandler::new(prev.clone(), vec![]);
        t.take_prev_verbatim();
        t.take_prev_verbatim();
        assert_eq!((t.shared, t.result.len(), t.len()), (2, 0, 2));
        t.push(sent());
        // after a state of its own, replayed states are copied
        t.take_prev_verbatim();
        assert_eq!((t.shared, t.result.len(), t.len()), (2, 2, 4));
        assert_eq!(t.recorded(3), (Some(2), None));
        let parts = t.into_parts();
        assert_eq!(parts.shared, 2);
        assert_eq!(parts.result, vec![sent(), executed("3")]);
        // changing a shared state copies the shared start first
        let mut t = TraceHandler::new(prev.clone(), vec![]);
        t.take_prev_verbatim();
        t.take_prev_verbatim();
        *t.result_mut(1).unwrap() = sent();
        let parts = t.into_parts();
        assert_eq!((parts.shared, parts.result), (0, vec![executed("1"), sent()]));
    }

    #[test]
    fn call_merge_rules() {
        let mut t = TraceHandler::new(vec![sent(), executed("1")], vec![executed("2"), executed("1")]);
        assert_eq!(value_of(t.meet_call().unwrap()), Some(("2".into(), Source::Current)));
        assert_eq!(value_of(t.meet_call().unwrap()), Some(("1".into(), Source::Prev)));
        assert!(matches!(t.meet_call().unwrap(), CallMerge::NotMet));
        let mut t = TraceHandler::new(vec![executed("1")], vec![executed("2")]);
        assert!(t.meet_call().is_err());
        let mut t = TraceHandler::new(vec![State::Ap { generation: 0 }], vec![]);
        assert!(t.meet_call().is_err());
    }

    #[test]
    fn par_windows() {
        let prev = vec![State::Par { left: 1, right: 1 }, executed("l"), executed("r"), executed("after")];
        let cur = vec![State::Par { left: 0, right: 1 }, executed("r"), executed("after")];
        let mut t = TraceHandler::new(prev, cur);
        let mut ctx = t.par_start().unwrap();
        assert_eq!(value_of(t.meet_call().unwrap()), Some(("l".into(), Source::Prev)));
        assert!(matches!(t.meet_call().unwrap(), CallMerge::NotMet)); // left windows exhausted
        t.par_left_done(&mut ctx);
        assert_eq!(value_of(t.meet_call().unwrap()), Some(("r".into(), Source::Prev)));
        t.push(executed("r"));
        t.par_right_done(&ctx);
        assert_eq!(value_of(t.meet_call().unwrap()), Some(("after".into(), Source::Prev)));
        // the result par has the sizes of what this run wrote: left 0 (the calls above were
        // read, not pushed, except "r")
        assert_eq!(t.result[0], State::Par { left: 0, right: 1 });
    }

    #[test]
    fn par_sizes_outside_the_trace_are_refused() {
        let mut t = TraceHandler::new(vec![State::Par { left: 5, right: u32::MAX }], vec![]);
        assert!(matches!(t.par_start(), Err(TraceError::OutOfBounds { .. })));
    }
}
