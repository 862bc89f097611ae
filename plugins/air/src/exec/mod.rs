//! The sans-IO execution engine.
//!
//! The script is executed from the root on every run, with an explicit stack of [`Frame`]s
//! instead of Rust recursion, so neither deep scripts nor long `next` chains can overflow the
//! stack. Completeness follows the reference's global flag (SPEC §1.6): instructions that wait
//! clear it, `par` starts each branch with it set and ORs the branches, `xor` resets it before
//! each branch.

mod env;
mod errors;
mod instr;
mod resolve;
mod val;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Value as JValue, json};

pub use errors::{CatchableError, ErrorObjectError, ExecError, UncatchableError};

use crate::interpreter::{CallRequest, CallResult, Limits};
use crate::parser::{Ast, Fold, Instr, Iterable, Name, NodeId};
use crate::trace::{FoldCtx, ParCtx, TraceError, TraceHandler};
use crate::value::Tetraplet;
pub(crate) use env::EnvBuffers;
use env::{Cursor, Elements, Env, Item};
pub(crate) use instr::constant_argument_hashes;
pub(crate) use val::TextBuffer;
use val::Texts;

/// Run parameters the engine needs.
pub(crate) struct Ctx<'a> {
    pub init_peer_id: &'a str,
    pub current_peer_id: &'a str,
    pub timestamp: u64,
    pub ttl: u32,
    pub limits: &'a Limits,
    /// The argument forms of the calls with constant arguments, by call index (empty when the
    /// script is not from the cache: computed as the calls run).
    pub constant_args: &'a [Option<crate::data::ArgumentHash>],
}

/// `%last_error%` or `:error:` with its arming flag.
#[derive(Debug, Clone)]
struct ErrorSlot {
    object: Arc<JValue>,
    tetraplet: Option<Arc<Tetraplet>>,
    armed: bool,
}

impl ErrorSlot {
    fn none() -> Self {
        // one shared object: every run starts with two of these
        static NONE: std::sync::OnceLock<Arc<JValue>> = std::sync::OnceLock::new();
        let object = NONE.get_or_init(|| Arc::new(json!({"error_code": 0, "message": ""}))).clone();
        ErrorSlot { object, tetraplet: None, armed: true }
    }
}

struct StreamFold<'a> {
    ctx: FoldCtx,
    stream: Name<'a>,
    slot: usize,
    visited: HashSet<usize>,
    pending: VecDeque<Vec<usize>>,
    observed: bool,
    iterator: Name<'a>,
    body: NodeId,
    last: Option<NodeId>,
    base_scope: usize,
}

enum NewKind<'a> {
    Scalar(Name<'a>, u32),
    Stream(Name<'a>),
    Canon(Name<'a>),
}

enum Frame<'a> {
    Seq {
        right: NodeId,
    },
    /// A par's trace context is the top of [`Engine::pars`] (frames stay small).
    ParLeft {
        right: NodeId,
    },
    ParRight {
        left: Result<(), ExecError>,
        left_complete: bool,
    },
    XorLeft {
        right: NodeId,
    },
    XorRight,
    New(NewKind<'a>),
    FoldScalar {
        iterator: Name<'a>,
        prev_scope: usize,
    },
    Next {
        iterator: Name<'a>,
        prev_scope: usize,
    },
    Last {
        iterator: Name<'a>,
    },
    StreamGen {
        fold: usize,
        prev_scope: usize,
    },
}

/// What the loop does next. Small enough to travel in a register: the error of a `Return` that
/// failed waits in [`Engine::error_out`] (a 16-byte result written and read back through the
/// stack on every instruction stalled the loop).
#[derive(Clone, Copy)]
enum Step {
    Exec(NodeId),
    ReturnOk,
    ReturnErr,
}

/// `Step` for an instruction that returns `result` (an error is parked in the engine).
macro_rules! ret {
    ($engine:expr, $result:expr) => {{
        let result: Result<(), ExecError> = $result;
        match result {
            Ok(()) => Step::ReturnOk,
            Err(e) => {
                $engine.error_out = Some(e);
                Step::ReturnErr
            }
        }
    }};
}

/// What a run produced.
pub(crate) struct RunResult<'a> {
    pub result: Result<(), ExecError>,
    /// The result trace after its first `shared` states, which are those of the previous trace
    /// (`spare.inputs[0]`).
    pub trace: Vec<crate::data::State<'a>>,
    pub shared: usize,
    /// Whether this run produced a result of its own (a service result or a canon snapshot).
    pub produced: bool,
    pub next_peers: Vec<String>,
    pub call_requests: Vec<CallRequest>,
    pub lcid: u32,
    pub unconsumed: Vec<u32>,
    /// The storage of the run's large buffers, emptied or not, for the next run (see `scratch`).
    pub spare: Spare<'a>,
}

/// The storage of a run's buffers other than the result trace.
pub(crate) struct Spare<'a> {
    pub inputs: [Vec<crate::data::State<'a>>; 2],
    pub pos_map: Vec<(u32, u32)>,
    pub texts: TextBuffer<'a>,
    pub env: EnvBuffers,
}

/// One run of the interpreter over a parsed script.
pub(crate) struct Engine<'a> {
    ast: &'a Ast<'a>,
    ctx: Ctx<'a>,
    trace: TraceHandler<'a>,
    env: Env,
    complete: bool,
    last_error: ErrorSlot,
    error: ErrorSlot,
    next_peers: Vec<String>,
    /// In id order (ids only grow).
    call_requests: Vec<CallRequest>,
    lcid: u32,
    call_results: &'a BTreeMap<u32, CallResult>,
    consumed: BTreeSet<u32>,
    stream_folds: Vec<StreamFold<'a>>,
    steps: u64,
    produced: bool,
    /// `{init peer, "", "", ""}`, the tetraplet of literals.
    literal: Arc<Tetraplet>,
    /// The tetraplet of the last result this peer produced (results of one service share it).
    own_tetraplet: Option<Arc<Tetraplet>>,
    /// Scratch buffer for the JSON text of call arguments.
    scratch: Vec<u8>,
    /// Scratch list of a call's arguments.
    arg_scratch: Vec<instr::Arg<'a>>,
    /// This peer's id, shared by the `SentBy` states this run writes.
    me: Option<Arc<str>>,
    /// The JSON texts of values parsed on first use.
    texts: Texts<'a>,
    /// The trace contexts of the open pars (innermost last).
    pars: Vec<ParCtx>,
    /// The error of the last [`Step::ReturnErr`].
    error_out: Option<ExecError>,
}

impl<'a> Engine<'a> {
    pub fn new(
        ast: &'a Ast<'a>,
        ctx: Ctx<'a>,
        trace: TraceHandler<'a>,
        lcid: u32,
        call_results: &'a BTreeMap<u32, CallResult>,
        texts: TextBuffer<'a>,
        env: EnvBuffers,
    ) -> Self {
        let literal = Arc::new(Tetraplet::literal(ctx.init_peer_id));
        Engine {
            produced: false,
            literal,
            own_tetraplet: None,
            scratch: Vec::new(),
            arg_scratch: Vec::new(),
            me: None,
            texts: Texts::with_buffer(texts, trace.input_len()),
            pars: Vec::new(),
            error_out: None,
            ast,
            ctx,
            trace,
            env: Env::with_buffers(ast.names, env),
            complete: true,
            last_error: ErrorSlot::none(),
            error: ErrorSlot::none(),
            next_peers: Vec::new(),
            call_requests: Vec::new(),
            lcid,
            call_results,
            consumed: BTreeSet::new(),
            stream_folds: Vec::new(),
            steps: 0,
        }
    }

    /// Executes the whole script.
    pub fn run(mut self) -> RunResult<'a> {
        let result = self.execute();
        // compact the generations of the streams still in scope
        let slots: Vec<(usize, u32)> = self.env.all_streams().flat_map(|s| s.compacted()).collect();
        for (pos, g) in slots {
            self.trace.set_generation(pos, g);
        }
        let unconsumed = self.call_results.keys().filter(|id| !self.consumed.contains(id)).copied().collect();
        let crate::trace::Parts { result: trace, shared, inputs, pos_map } = self.trace.into_parts();
        RunResult {
            result,
            trace,
            shared,
            spare: Spare { inputs, pos_map, texts: self.texts.into_buffer(), env: self.env.into_buffers() },
            produced: self.produced,
            next_peers: self.next_peers,
            call_requests: self.call_requests,
            lcid: self.lcid,
            unconsumed,
        }
    }

    fn execute(&mut self) -> Result<(), ExecError> {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        let mut step = Step::Exec(self.ast.root);
        loop {
            step = match step {
                Step::Exec(node) => {
                    self.steps += 1;
                    if self.steps > self.ctx.limits.max_steps {
                        let msg = format!("more than {} instructions executed", self.ctx.limits.max_steps);
                        return Err(UncatchableError::LimitExceeded(msg).into());
                    }
                    if stack.len() > self.ctx.limits.max_stack {
                        let msg = format!("more than {} nested instructions", self.ctx.limits.max_stack);
                        return Err(UncatchableError::LimitExceeded(msg).into());
                    }
                    if self.trace.len() > self.ctx.limits.max_trace_len {
                        let msg = format!("trace longer than {} states", self.ctx.limits.max_trace_len);
                        return Err(UncatchableError::LimitExceeded(msg).into());
                    }
                    let step = self.start(node, &mut stack);
                    if self.texts.failed() {
                        let msg = "a value that was checked as JSON does not parse".to_string();
                        return Err(UncatchableError::MalformedStoredValue(msg).into());
                    }
                    step
                }
                Step::ReturnOk | Step::ReturnErr => {
                    let result = match step {
                        Step::ReturnErr => self.error_out.take().map_or(Ok(()), Err),
                        _ => Ok(()),
                    };
                    match stack.pop() {
                        None => return result,
                        Some(frame) => self.resume(frame, result, &mut stack),
                    }
                }
            };
        }
    }

    fn trace_err(&self, node: NodeId, error: TraceError) -> ExecError {
        UncatchableError::Trace { instruction: self.ast.head(node), error }.into()
    }

    fn is_next(&self, node: NodeId) -> bool {
        matches!(self.ast.node(node).instr, Instr::Next(_))
    }

    fn start(&mut self, node: NodeId, stack: &mut Vec<Frame<'a>>) -> Step {
        let ast = self.ast;
        match &ast.node(node).instr {
            Instr::Seq(l, r) => {
                stack.push(Frame::Seq { right: *r });
                Step::Exec(*l)
            }
            Instr::Par(l, r) => match self.trace.par_start() {
                Ok(ctx) => {
                    self.complete = !self.is_next(*l);
                    self.pars.push(ctx);
                    stack.push(Frame::ParLeft { right: *r });
                    Step::Exec(*l)
                }
                Err(e) => ret!(self, Err(self.trace_err(node, e))),
            },
            Instr::Xor(l, r) => {
                self.complete = true;
                stack.push(Frame::XorLeft { right: *r });
                Step::Exec(*l)
            }
            Instr::Null => ret!(self, Ok(())),
            Instr::Never => {
                self.complete = false;
                ret!(self, Ok(()))
            }
            Instr::Match(m) => match self.exec_match(node, &m.left, &m.right, m.negate) {
                Ok(true) => Step::Exec(m.body),
                Ok(false) => ret!(self, Ok(())),
                Err(e) => ret!(self, Err(e)),
            },
            Instr::New(new) => {
                let (name, body) = (&new.name, &new.body);
                let kind = if name.starts_with('$') || name.starts_with('%') {
                    self.env.stream_slots(*name).push(None);
                    NewKind::Stream(*name)
                } else if name.starts_with('#') {
                    self.env.canon_slots(*name).push(None);
                    NewKind::Canon(*name)
                } else {
                    NewKind::Scalar(*name, self.env.new_scalar(*name))
                };
                stack.push(Frame::New(kind));
                Step::Exec(*body)
            }
            Instr::Call(c) => ret!(self, self.exec_call(node, *c)),
            Instr::Canon(c) => ret!(self, self.exec_canon(node, c)),
            Instr::Ap(a) => ret!(self, self.exec_ap(node, ast.ap(*a))),
            Instr::ApMap(a) => ret!(self, self.exec_ap_map(node, a)),
            Instr::Fail(f) => ret!(self, self.exec_fail(node, f)),
            Instr::Fold(f) => self.start_fold(node, f, stack),
            Instr::Next(it) => self.start_next(**it, stack),
        }
    }

    fn resume(&mut self, frame: Frame<'a>, result: Result<(), ExecError>, stack: &mut Vec<Frame<'a>>) -> Step {
        match frame {
            Frame::Seq { right } => match result {
                Ok(()) if self.complete => Step::Exec(right),
                other => ret!(self, other),
            },
            Frame::ParLeft { right } => {
                if let Err(ExecError::Uncatchable(_)) = result {
                    return ret!(self, result);
                }
                let left_complete = self.complete;
                if let Some(ctx) = self.pars.last_mut() {
                    self.trace.par_left_done(ctx);
                }
                self.complete = !self.is_next(right);
                stack.push(Frame::ParRight { left: result, left_complete });
                Step::Exec(right)
            }
            Frame::ParRight { left, left_complete } => {
                if let Err(ExecError::Uncatchable(_)) = result {
                    return ret!(self, result);
                }
                if let Some(ctx) = self.pars.pop() {
                    self.trace.par_right_done(&ctx);
                }
                self.complete = left_complete || self.complete;
                match (left, result) {
                    (Err(_), Err(e)) => ret!(self, Err(e)),
                    _ => {
                        self.last_error.armed = true;
                        ret!(self, Ok(()))
                    }
                }
            }
            Frame::XorLeft { right } => match result {
                Err(ExecError::Catchable(_)) => {
                    self.complete = true;
                    self.last_error.armed = true;
                    self.error.armed = true;
                    stack.push(Frame::XorRight);
                    Step::Exec(right)
                }
                other => ret!(self, other),
            },
            Frame::XorRight => {
                if result.is_ok() {
                    self.error = ErrorSlot::none();
                }
                ret!(self, result)
            }
            Frame::New(kind) => {
                match kind {
                    NewKind::Scalar(name, mark) => self.env.end_new_scalar(name, mark),
                    NewKind::Stream(name) => {
                        let slot = self.env.stream_slots(name).pop().flatten();
                        if let Some(stream) = slot {
                            for (pos, g) in stream.compacted() {
                                self.trace.set_generation(pos, g);
                            }
                        }
                    }
                    NewKind::Canon(name) => {
                        self.env.canon_slots(name).pop();
                    }
                }
                ret!(self, result)
            }
            Frame::FoldScalar { iterator, prev_scope } => {
                self.env.exit_iteration(prev_scope);
                self.env.cursors_mut(iterator).pop();
                ret!(self, result)
            }
            Frame::Next { iterator, prev_scope } => {
                self.env.exit_iteration(prev_scope);
                let mut fold = None;
                if let Some(c) = self.env.cursors_mut(iterator).last_mut() {
                    c.idx = c.idx.saturating_sub(1);
                    fold = c.stream_fold;
                }
                if let Some(fi) = fold {
                    let sf = &mut self.stream_folds[fi];
                    self.trace.iteration_end(&mut sf.ctx);
                    self.trace.iteration_after(&mut sf.ctx);
                }
                ret!(self, result)
            }
            Frame::Last { iterator } => {
                let fold = self.env.cursors(iterator).last().and_then(|c| c.stream_fold);
                if let Some(fi) = fold {
                    let sf = &mut self.stream_folds[fi];
                    self.trace.iteration_after(&mut sf.ctx);
                }
                ret!(self, result)
            }
            Frame::StreamGen { fold, prev_scope } => {
                self.env.exit_iteration(prev_scope);
                let iterator = self.stream_folds[fold].iterator;
                self.env.cursors_mut(iterator).pop();
                let complete = self.complete;
                let sf = &mut self.stream_folds[fold];
                self.trace.iteration_end(&mut sf.ctx);
                sf.observed |= complete;
                match result {
                    Err(ExecError::Uncatchable(_)) => ret!(self, result),
                    // catchable errors end this generation only
                    _ => self.next_generation(fold, stack),
                }
            }
        }
    }

    fn start_fold(&mut self, node: NodeId, f: &'a Fold<'a>, stack: &mut Vec<Frame<'a>>) -> Step {
        if !self.env.cursors(f.iterator).is_empty() {
            return ret!(self, Err(UncatchableError::IterableShadowing(f.iterator.to_string()).into()));
        }
        let stream = match &f.iterable {
            Iterable::Value(v) => {
                let items = match self.fold_items(node, v) {
                    Ok(Some(items)) => items,
                    Ok(None) => {
                        self.complete = false;
                        return ret!(self, Ok(()));
                    }
                    Err(e) => return ret!(self, Err(e)),
                };
                let (items, array) = items;
                if items.is_empty() {
                    return ret!(self, Ok(()));
                }
                let base_scope = self.env.scope;
                let elements = array.map(|a| Elements::new(a, items.len()));
                self.env.cursors_mut(f.iterator).push(Cursor {
                    items: Rc::new(items),
                    idx: 0,
                    body: f.body,
                    last: f.last,
                    base_scope,
                    stream_fold: None,
                    elements,
                });
                let prev_scope = self.env.enter_iteration(base_scope);
                stack.push(Frame::FoldScalar { iterator: f.iterator, prev_scope });
                return Step::Exec(f.body);
            }
            Iterable::Stream(n) | Iterable::StreamMap(n) => n,
        };
        let stream = *stream;
        if self.env.stream(stream).is_none() {
            self.complete = false;
            return ret!(self, Ok(()));
        }
        let ctx = match self.trace.fold_start() {
            Ok(ctx) => ctx,
            Err(e) => return ret!(self, Err(self.trace_err(node, e))),
        };
        let slot = self.env.stream_slots(stream).len() - 1;
        self.stream_folds.push(StreamFold {
            ctx,
            stream,
            slot,
            visited: HashSet::new(),
            pending: VecDeque::new(),
            observed: false,
            iterator: f.iterator,
            body: f.body,
            last: f.last,
            base_scope: self.env.scope,
        });
        self.next_generation(self.stream_folds.len() - 1, stack)
    }

    /// Starts the next generation of a stream fold, or a new pass over values appended since,
    /// or ends the fold.
    fn next_generation(&mut self, fi: usize, stack: &mut Vec<Frame<'a>>) -> Step {
        loop {
            let sf = &mut self.stream_folds[fi];
            let stream = self.env.stream_slots(sf.stream).get_mut(sf.slot).and_then(|s| s.as_mut());
            let Some(stream) = stream else {
                let sf = self.stream_folds.pop().expect("open stream fold");
                self.trace.fold_end(sf.ctx);
                return ret!(self, Ok(()));
            };
            if let Some(group) = sf.pending.pop_front() {
                let items: Vec<Item> = group.iter().map(|i| stream.values[*i].item.clone()).collect();
                sf.visited.extend(group.iter().copied());
                let first_pos = items[0].trace_pos().map(|p| p as usize);
                self.trace.iteration_start(&mut sf.ctx, first_pos);
                let (iterator, body, last, base_scope) = (sf.iterator, sf.body, sf.last, sf.base_scope);
                self.env.cursors_mut(iterator).push(Cursor {
                    items: Rc::new(items),
                    idx: 0,
                    body,
                    last,
                    base_scope,
                    stream_fold: Some(fi),
                    elements: None,
                });
                self.complete = true;
                let prev_scope = self.env.enter_iteration(base_scope);
                stack.push(Frame::StreamGen { fold: fi, prev_scope });
                return Step::Exec(body);
            }
            // a pass is over: iterate what was appended meanwhile, generation by generation
            stream.open_new_generation();
            let mut groups: Vec<Vec<usize>> = Vec::new();
            let mut last_key = None;
            for i in stream.ordered() {
                if sf.visited.contains(&i) {
                    continue;
                }
                let key = (stream.values[i].source, stream.values[i].generation);
                if last_key != Some(key) {
                    groups.push(Vec::new());
                    last_key = Some(key);
                }
                groups.last_mut().expect("pushed").push(i);
            }
            if groups.is_empty() {
                let sf = self.stream_folds.pop().expect("open stream fold");
                self.complete = sf.observed;
                self.trace.fold_end(sf.ctx);
                return ret!(self, Ok(()));
            }
            sf.pending.extend(groups);
        }
    }

    fn start_next(&mut self, iterator: Name<'a>, stack: &mut Vec<Frame<'a>>) -> Step {
        let Some(cursor) = self.env.cursors_mut(iterator).last_mut() else {
            return ret!(self, Err(UncatchableError::FoldStateNotFound(iterator.to_string()).into()));
        };
        let fold = cursor.stream_fold;
        if cursor.idx + 1 < cursor.items.len() {
            cursor.idx += 1;
            let (pos, body, base) =
                (cursor.items[cursor.idx].trace_pos().map(|p| p as usize), cursor.body, cursor.base_scope);
            if let Some(fi) = fold {
                let sf = &mut self.stream_folds[fi];
                self.trace.iteration_next(&mut sf.ctx);
                self.trace.iteration_start(&mut sf.ctx, pos);
            }
            let prev_scope = self.env.enter_iteration(base);
            stack.push(Frame::Next { iterator, prev_scope });
            return Step::Exec(body);
        }
        if let Some(last) = cursor.last {
            self.complete = true;
            stack.push(Frame::Last { iterator });
            return Step::Exec(last);
        }
        if let Some(fi) = fold {
            self.complete = false;
            let sf = &mut self.stream_folds[fi];
            self.trace.iteration_after(&mut sf.ctx);
        }
        ret!(self, Ok(()))
    }

    /// Records a catchable error raised by an instruction in `%last_error%` and `:error:`.
    fn raise(
        &mut self,
        node: NodeId,
        error: CatchableError,
        peer_id: Option<&str>,
        tetraplet: Option<Tetraplet>,
    ) -> ExecError {
        let object = json!({
            "error_code": error.code(),
            "message": error.to_string(),
            "instruction": self.ast.head(node),
        });
        let tetraplet = tetraplet.map(Arc::new);
        if error.affects_last_error() && self.last_error.armed {
            // %last_error% always names a peer: the call's peer, or this one
            let mut last = object.clone();
            last["peer_id"] = JValue::String(peer_id.unwrap_or(self.ctx.current_peer_id).to_string());
            self.last_error = ErrorSlot { object: Arc::new(last), tetraplet: tetraplet.clone(), armed: false };
        }
        if self.error.armed {
            // :error: names a peer only for call and canon errors
            let mut object = object;
            if let Some(p) = peer_id {
                object["peer_id"] = JValue::String(p.to_string());
            }
            self.error = ErrorSlot { object: Arc::new(object), tetraplet, armed: false };
        }
        ExecError::from(error)
    }
}
