//! Leaf instructions: call, canon, ap, fail, match.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Value as JValue, json};

use super::env::{CanonValue, Item, StreamValue};
use super::errors::{CatchableError, ErrorObjectError, ExecError, UncatchableError};
use super::resolve::{Resolved, kv};
use super::val::Val;
use super::{Engine, ErrorSlot};
use crate::data::{
    ArgumentHash, CallState, CanonElement, CanonResult, CanonState, InlineText, OutputKind, ServiceResult, State,
    load_le,
};
use crate::interpreter::CallRequest;
use crate::parser::{Ap, ApDest, ApMap, Ast, Call, CallOutput, Canon, CanonDest, Fail, Name, NodeId, Value};
use crate::trace::{CallMerge, Source};
use crate::value::{Tetraplet, Tetraplets};

/// A call argument: a literal or a scalar known to be set (both resolved only when needed: a
/// replayed call only writes their JSON text), or a resolved value.
pub(crate) enum Arg<'v> {
    Literal(&'v Value<'v>),
    /// With the text of its value when that is a compact text of the run (see
    /// [`Texts::compact_text`]): the argument text is then a copy, without a lookup.
    Scalar(Name<'v>, Option<&'v str>),
    Resolved(Resolved),
}

/// `a == b`, without a call for the short strings of service and function names (most compare
/// in one or two 8-byte loads).
#[inline(always)]
fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or_default());
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // the last 8 bytes (overlapping the ones before when n is no multiple of 8)
    word(a, n - 8) == word(b, n - 8)
}

/// Values that resolve without the environment, never fail and never join.
fn is_literal(v: &Value<'_>) -> bool {
    matches!(
        v,
        Value::Literal(_)
            | Value::Number(_)
            | Value::Bool(_)
            | Value::EmptyArray
            | Value::InitPeerId
            | Value::Timestamp
            | Value::Ttl
    )
}

/// The JSON text of a constant argument as the run would write it (`None`: not a constant, or
/// one whose text the run computes, like a float).
fn constant_text(v: &Value<'_>, out: &mut Vec<u8>) -> Option<()> {
    match v {
        Value::Literal(s) => crate::json::write_str(out, s),
        Value::Number(crate::parser::Number::Int(n)) => crate::json::write_int(out, *n),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::EmptyArray => out.extend_from_slice(b"[]"),
        _ => return None,
    }
    Some(())
}

/// For each call of `ast` (by index), the [`ArgumentHash`] of its argument list when every
/// argument is a constant (`["a" 1 true []]`): the same in every run, so the script cache keeps
/// it with the tree and a replayed call compares the recorded form without writing the text.
pub(crate) fn constant_argument_hashes(ast: &Ast<'_>) -> Vec<Option<ArgumentHash>> {
    let mut buf = Vec::new();
    ast.calls.iter().map(|c| constant_argument_hash(ast, c, &mut buf)).collect()
}

/// The [`ArgumentHash`] of one call's argument list when every argument is a constant (see
/// [`constant_argument_hashes`]); `buf` is scratch space.
fn constant_argument_hash(ast: &Ast<'_>, c: &Call<'_>, buf: &mut Vec<u8>) -> Option<ArgumentHash> {
    let args = ast.call_args(c);
    inline_constant_form(args).or_else(|| written_constant_form(args, buf))
}

/// The argument form of a list of constants, its text written into `buf` and read from there
/// (`None`: an argument is no constant).
fn written_constant_form(args: &[Value<'_>], buf: &mut Vec<u8>) -> Option<ArgumentHash> {
    buf.clear();
    buf.push(b'[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        constant_text(a, buf)?;
    }
    buf.push(b']');
    Some(ArgumentHash::of(buf))
}

/// The inline argument form of a list of constants, its text built in registers
/// ([`InlineText`]) instead of written to memory and read back. `None` for what it does not
/// build: a non-constant, a text longer than the inline form, a string with escapes, an
/// integer of more than 16 characters ([`written_constant_form`] then decides).
#[inline]
fn inline_constant_form(args: &[Value<'_>]) -> Option<ArgumentHash> {
    let mut t = InlineText::default();
    t.push_byte(b'[');
    for (i, a) in args.iter().enumerate() {
        let sep = (i > 0) as usize;
        // each part leaves room for the closing `]`
        let room = (ArgumentHash::INLINE - 1 - t.len()).saturating_sub(sep);
        let (word, n): (u128, usize) = match a {
            Value::Literal(s) => {
                let s = s.as_bytes();
                if s.len() + 2 > room || !crate::json::is_plain_str(s) {
                    return None;
                }
                if sep == 1 {
                    t.push_byte(b',');
                }
                t.push_byte(b'"');
                t.push_bytes(s);
                t.push_byte(b'"');
                continue;
            }
            Value::Number(crate::parser::Number::Int(v)) => crate::json::int_word(*v)?,
            Value::Bool(true) => (u32::from_le_bytes(*b"true") as u128, 4),
            Value::Bool(false) => (load_le(b"false"), 5),
            Value::EmptyArray => (u16::from_le_bytes(*b"[]") as u128, 2),
            _ => return None,
        };
        if n > room {
            return None;
        }
        if sep == 1 {
            t.push_byte(b',');
        }
        t.push_word(word, n);
    }
    t.push_byte(b']');
    Some(ArgumentHash::of_inline(&t))
}

/// A resolved peer, service or function name.
enum Part<'v> {
    /// A string literal of the script.
    Literal(&'v str),
    /// A variable's string value.
    Value(Arc<JValue>),
}

impl Part<'_> {
    fn as_str(&self) -> &str {
        match self {
            Part::Literal(s) => s,
            Part::Value(v) => v.as_str().unwrap_or_default(),
        }
    }
}

impl<'a> Engine<'a> {
    fn head(&self, node: NodeId) -> String {
        self.ast.head(node)
    }

    /// Resolves a peer/service/function part to a string; `Ok(None)` is a join.
    fn triplet_part(&self, v: &'a Value<'a>) -> Result<Option<Part<'a>>, CatchableError> {
        let value = match v {
            Value::Literal(s) => return Ok(Some(Part::Literal(s))),
            // a scalar (the usual peer variable): no need to copy its tetraplet
            Value::Scalar { name, lambda: None } => {
                let Some(item) = self.scalar_ref(*name)? else { return Ok(None) };
                if let Some(s) = self.texts.plain_str(item.value()) {
                    return Ok(Some(Part::Literal(s)));
                }
                self.texts.json(item.value())
            }
            _ => {
                let Some(r) = self.resolve(v)? else { return Ok(None) };
                if let Some(s) = self.texts.plain_str(&r.value) {
                    return Ok(Some(Part::Literal(s)));
                }
                self.texts.json(&r.value)
            }
        };
        match &*value {
            JValue::String(_) => Ok(Some(Part::Value(value))),
            other => Err(CatchableError::NonStringValueInTripletResolution {
                variable_name: v.to_string(),
                actual_value: other.clone(),
            }),
        }
    }

    #[inline]
    fn check_output_name(&self, name: Name<'_>) -> Result<(), ExecError> {
        if !self.env.cursors(name).is_empty() {
            return Err(UncatchableError::IterableShadowing(name.to_string()).into());
        }
        if self.env.would_shadow(name) {
            return Err(UncatchableError::ShadowingIsNotAllowed(name.to_string()).into());
        }
        Ok(())
    }

    /// Appends a value to a stream; returns an error past the stream size limit.
    fn push_stream(
        &mut self,
        name: Name<'a>,
        item: Item,
        source: Source,
        generation: Option<u32>,
    ) -> Result<u32, ExecError> {
        let limit = self.ctx.limits.max_stream_len;
        let stream = self.env.stream_mut(name);
        if stream.values.len() >= limit {
            return Err(UncatchableError::StreamSizeLimitExceeded { name: name.to_string(), limit }.into());
        }
        let generation = generation.unwrap_or(stream.new_generation);
        stream.values.push(StreamValue { item, source, generation });
        Ok(generation)
    }

    fn parse_stored(text: &str) -> Result<JValue, ExecError> {
        serde_json::from_str(text).map_err(|e| UncatchableError::MalformedStoredValue(e.to_string()).into())
    }

    /// The value of a stored JSON text (kept as text when it is valid JSON, see [`Val`]). Takes
    /// the `Cow` itself: only a text borrowed from the run's inputs can be kept.
    /// A text from this peer's previous data (`source` [`Source::Prev`]) is trusted: checked
    /// only when used (see [`Texts::trusted`](super::val::Texts::trusted)).
    #[allow(clippy::ptr_arg)]
    fn stored_value(&mut self, text: &Cow<'a, str>, source: Source) -> Result<Val, ExecError> {
        let value = match text {
            Cow::Borrowed(t) if source == Source::Prev => Ok(self.texts.trusted(t)),
            Cow::Borrowed(t) => self.texts.value(t),
            Cow::Owned(t) => serde_json::from_str::<JValue>(t).map(Val::from),
        };
        value.map_err(|e| UncatchableError::MalformedStoredValue(e.to_string()).into())
    }

    /// Appends the compact JSON text of a literal argument (as `serde_json::to_string` writes
    /// it) to `buf`.
    #[inline]
    fn write_literal(&self, v: &Value<'_>, buf: &mut Vec<u8>) {
        match v {
            Value::Literal(s) => crate::json::write_str(buf, s),
            Value::InitPeerId => crate::json::write_str(buf, self.ctx.init_peer_id),
            Value::Number(crate::parser::Number::Int(n)) => crate::json::write_int(buf, *n),
            v => {
                if let Ok(Some(r)) = self.resolve(v) {
                    self.texts.write(&r.value, buf);
                }
            }
        }
    }

    /// The [`ArgumentHash`] of the JSON text of the arguments (`[a,b,…]`, as
    /// `serde_json::to_string` writes it).
    fn argument_hash(&mut self, args: &[Arg<'_>]) -> ArgumentHash {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.push(b'[');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            match a {
                Arg::Resolved(r) => self.texts.write(&r.value, &mut buf),
                Arg::Scalar(_, Some(text)) => crate::scratch::put_bytes(&mut buf, text.as_bytes()),
                Arg::Scalar(name, None) => {
                    if let Ok(Some(item)) = self.scalar_ref(*name) {
                        self.texts.write(item.value(), &mut buf);
                    }
                }
                Arg::Literal(v) => self.write_literal(v, &mut buf),
            }
        }
        buf.push(b']');
        let hash = ArgumentHash::of(&buf);
        self.scratch = buf;
        hash
    }

    fn call_tetraplet(peer: &str, service: &str, function: &str) -> Tetraplet {
        Tetraplet::new(peer, service, function)
    }

    pub(crate) fn exec_call(&mut self, node: NodeId, index: u32) -> Result<(), ExecError> {
        let c = self.ast.call(index);
        let written;
        // by reference: a 34-byte copy of the cached form stalled on its loads
        let constant = match self.ctx.constant_args.get(index as usize) {
            Some(cached) => cached.as_ref(),
            // a script parsed for this run only: the form is written here
            None => {
                let mut buf = std::mem::take(&mut self.scratch);
                written = constant_argument_hash(self.ast, c, &mut buf);
                self.scratch = buf;
                written.as_ref()
            }
        };
        // (tests compare the short paths with the general one)
        #[cfg(test)]
        let constant = constant.filter(|_| !tests::GENERAL_ONLY.get());
        if let Some(hash) = constant
            && self.replay(c, hash)
        {
            return Ok(());
        }
        // the argument list's buffer is reused from call to call
        let mut args = std::mem::take(&mut self.arg_scratch);
        let result = self.call_with(node, c, constant.copied(), &mut args);
        args.clear();
        self.arg_scratch = args;
        result
    }

    /// The replay of a call of the common shape from this peer's previous data: literal service
    /// and function, a literal, `%init_peer_id%` or plain scalar peer, constant arguments
    /// (`hash`), the result bound to a scalar or unused, and a result in the previous trace
    /// where the current one has no state. Does what [`Engine::call_with`] does in that case,
    /// without building the triplet, the argument list or a merged copy of the state; returns
    /// `false`, having changed nothing, when the call is not of that shape or anything does not
    /// match (then `call_with` runs it, raising the errors it raises).
    #[inline]
    fn replay(&mut self, c: &'a Call<'a>, hash: &ArgumentHash) -> bool {
        let (Value::Literal(service), Value::Literal(function)) = (&c.service, &c.function) else { return false };
        let name = match c.output {
            CallOutput::Scalar(name) => Some(name),
            CallOutput::None => None,
            CallOutput::Stream(_) => return false,
        };
        let Some(State::Call(CallState::Executed { result, output })) = self.trace.peek_prev_only() else {
            return false;
        };
        let (&Cow::Borrowed(text), true) =
            (&result.value, matches!((name, output), (Some(_), OutputKind::Scalar) | (None, OutputKind::Unused)))
        else {
            return false;
        };
        let t = &*result.tetraplet;
        if result.argument_hash != *hash
            || !same_str(&t.service_id, service)
            || !same_str(&t.function_name, function)
            || !t.lens.is_empty()
        {
            return false;
        }
        let peer_matches = match &c.peer {
            Value::Literal(p) => same_str(&t.peer_pk, p),
            Value::InitPeerId => same_str(&t.peer_pk, self.ctx.init_peer_id),
            Value::Scalar { name, lambda: None } => match self.scalar_ref(*name) {
                Ok(Some(item)) => match item.value() {
                    Val::Json(v) => v.as_str().is_some_and(|p| same_str(&t.peer_pk, p)),
                    lazy => self.texts.plain_str(lazy).is_some_and(|p| same_str(&t.peer_pk, p)),
                },
                _ => false,
            },
            _ => false,
        };
        if !peer_matches || name.is_some_and(|n| self.check_output_name(n).is_err()) {
            return false;
        }
        let tetraplet = name.map(|_| result.tetraplet.clone());
        // the state as it is in the previous trace
        self.trace.take_prev_verbatim();
        if let (Some(name), Some(tetraplet)) = (name, tetraplet) {
            // the item is made where it is stored (made first and handed to `set_scalar`, it was
            // kept on the stack across the binding lookup and read back with wider loads than it
            // was written with: a store-forwarding stall, 6% of a replay's time)
            let target = self.env.scalar_target(name);
            let value = self.texts.trusted_index(text);
            self.env.store_scalar_with(target, name, || Item::new(Val::Lazy(value), tetraplet));
        }
        true
    }

    /// `constant`: the argument form of a call whose arguments are all constants (see
    /// [`constant_argument_hashes`]); its argument list is then built only for a call request.
    fn call_with(
        &mut self,
        node: NodeId,
        c: &'a Call<'a>,
        constant: Option<ArgumentHash>,
        args: &mut Vec<Arg<'a>>,
    ) -> Result<(), ExecError> {
        let current = self.ctx.current_peer_id;
        // 1. triplet
        let mut parts: [Option<Part<'a>>; 3] = [None, None, None];
        for (slot, v) in parts.iter_mut().zip([&c.peer, &c.service, &c.function]) {
            match self.triplet_part(v) {
                Ok(Some(s)) => *slot = Some(s),
                Ok(None) => {
                    self.complete = false;
                    return Ok(());
                }
                Err(e) => return Err(self.raise(node, e, Some(current), None)),
            }
        }
        let [Some(peer), Some(service), Some(function)] = &parts else { unreachable!("three parts resolved") };
        let (peer, service, function) = (peer.as_str(), service.as_str(), function.as_str());
        // 2. output name
        if let CallOutput::Scalar(name) = &c.output {
            self.check_output_name(*name)?;
        }
        // 3. arguments
        let mut joinable = false;
        let call_args = self.ast.call_args(c);
        args.clear();
        for a in call_args.iter().filter(|_| constant.is_none()) {
            if is_literal(a) {
                args.push(Arg::Literal(a));
                continue;
            }
            if let Value::Scalar { name, lambda: None } = a
                && let Ok(Some(item)) = self.scalar_ref(*name)
            {
                args.push(Arg::Scalar(*name, self.texts.compact_text(item.value())));
                continue;
            }
            match self.resolve(a) {
                Ok(Some(r)) => args.push(Arg::Resolved(r)),
                Ok(None) => joinable = true,
                Err(e) => {
                    let t = Self::call_tetraplet(peer, service, function);
                    return Err(self.raise(node, e, Some(peer), Some(t)));
                }
            }
        }
        // 4. trace
        let merged = self.trace.meet_call().map_err(|e| self.trace_err(node, e))?;
        match merged {
            CallMerge::NotMet => {
                if peer != current {
                    self.send_to(peer);
                    self.trace.push(State::Call(CallState::SentBy { peer: Arc::from(current), call_id: None }));
                    self.complete = false;
                    return Ok(());
                }
                if joinable {
                    self.complete = false;
                    return Ok(());
                }
                if constant.is_some() {
                    args.extend(call_args.iter().map(Arg::Literal));
                }
                self.request(service, function, args);
                Ok(())
            }
            CallMerge::Met(CallState::SentBy { peer: sender, call_id: Some(id) }, _) if *sender == *current => {
                match self.call_results.get(&id) {
                    Some(result) => {
                        self.consumed.insert(id);
                        let argument_hash = constant.unwrap_or_else(|| self.argument_hash(args));
                        self.consume(node, c, service, function, argument_hash, result.ret_code, &result.result)
                    }
                    None => {
                        self.trace.push(State::Call(CallState::SentBy { peer: sender, call_id: Some(id) }));
                        self.complete = false;
                        Ok(())
                    }
                }
            }
            CallMerge::Met(sent @ CallState::SentBy { .. }, _) => {
                if peer == current && !joinable {
                    if constant.is_some() {
                        args.extend(call_args.iter().map(Arg::Literal));
                    }
                    self.request(service, function, args);
                } else {
                    self.trace.push(State::Call(sent));
                    self.complete = false;
                }
                Ok(())
            }
            CallMerge::Met(CallState::Executed { result, output }, source) => {
                let t = &result.tetraplet;
                if *t.peer_pk != *peer
                    || *t.service_id != *service
                    || *t.function_name != *function
                    || !t.lens.is_empty()
                {
                    return Err(UncatchableError::InstructionParametersMismatch {
                        instruction: self.head(node),
                        what: "tetraplet",
                    }
                    .into());
                }
                if !joinable && result.argument_hash != constant.unwrap_or_else(|| self.argument_hash(args)) {
                    return Err(UncatchableError::InstructionParametersMismatch {
                        instruction: self.head(node),
                        what: "argument hash",
                    }
                    .into());
                }
                let value = self.stored_value(&result.value, source)?;
                let item = Item::new(value, result.tetraplet.clone());
                let pos = self.trace.len();
                match (&c.output, output) {
                    (CallOutput::Scalar(name), OutputKind::Scalar) => {
                        self.env.set_scalar(*name, item);
                    }
                    (CallOutput::Stream(name), OutputKind::Stream { generation }) => {
                        let item = item.at(pos as u32);
                        self.push_stream(*name, item, source, Some(generation))?;
                    }
                    (CallOutput::None, OutputKind::Unused) => {}
                    (o, k) => {
                        return Err(UncatchableError::CallResultKindMismatch(format!(
                            "instruction output {o:?}, stored {k:?}"
                        ))
                        .into());
                    }
                }
                self.trace.push(State::Call(CallState::Executed { result, output }));
                Ok(())
            }
            CallMerge::Met(CallState::Failed(result), _) => {
                let value = Self::parse_stored(&result.value)?;
                let rc = value.get("ret_code").and_then(|v| v.as_i64()).unwrap_or(0) as i32;
                let message = value.get("message").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                let tetraplet = (*result.tetraplet).clone();
                self.trace.push(State::Call(CallState::Failed(result)));
                self.complete = false;
                Err(self.raise(
                    node,
                    CatchableError::LocalServiceError(rc, message),
                    Some(&tetraplet.peer_pk.clone()),
                    Some(tetraplet),
                ))
            }
        }
    }

    fn send_to(&mut self, peer: &str) {
        if !self.next_peers.iter().any(|p| p == peer) {
            self.next_peers.push(peer.to_string());
        }
    }

    fn request(&mut self, service: &str, function: &str, args: &mut Vec<Arg<'_>>) {
        let mut arguments = Vec::with_capacity(args.len());
        let mut tetraplets = Vec::with_capacity(args.len());
        for a in args.drain(..) {
            let r = match a {
                Arg::Resolved(r) => r,
                // the value and tetraplet taken from the item where they are stored (through a
                // `Resolved`, the tetraplets were written in parts and read back whole: a
                // store-forwarding stall on each of a request's arguments)
                Arg::Scalar(name, _) => match self.scalar_ref(name) {
                    Ok(Some(item)) => {
                        let (json, tetraplet) = (self.texts.json(item.value()), item.tetraplet().clone());
                        arguments.push(json);
                        crate::scratch::push_with(&mut tetraplets, || Tetraplets::One(tetraplet));
                        continue;
                    }
                    _ => continue,
                },
                // literals always resolve
                Arg::Literal(v) => match self.resolve(v) {
                    Ok(Some(r)) => r,
                    _ => continue,
                },
            };
            arguments.push(self.texts.json(&r.value));
            tetraplets.push(r.tetraplets);
        }
        self.lcid += 1;
        let id = self.lcid;
        // ids only grow: the requests stay in id order
        self.call_requests.push(CallRequest {
            id,
            service_id: service.to_string(),
            function_name: function.to_string(),
            arguments,
            tetraplets,
        });
        let me = self.me();
        self.trace.push(State::Call(CallState::SentBy { peer: me, call_id: Some(id) }));
        self.complete = false;
    }

    /// This peer's id as a shared string (SentBy states of one run share it).
    fn me(&mut self) -> Arc<str> {
        self.me.get_or_insert_with(|| Arc::from(self.ctx.current_peer_id)).clone()
    }

    /// `{this peer, service, function, ""}`, shared with the previous result of the same service.
    fn own_tetraplet(&mut self, service: &str, function: &str) -> Arc<Tetraplet> {
        if let Some(t) = &self.own_tetraplet
            && *t.service_id == *service
            && *t.function_name == *function
        {
            return t.clone();
        }
        let t = Arc::new(Tetraplet::new(self.ctx.current_peer_id, service, function));
        self.own_tetraplet = Some(t.clone());
        t
    }

    #[allow(clippy::too_many_arguments)]
    fn consume(
        &mut self,
        node: NodeId,
        c: &'a Call<'a>,
        service: &str,
        function: &str,
        argument_hash: ArgumentHash,
        ret_code: i32,
        text: &'a str,
    ) -> Result<(), ExecError> {
        let current = self.ctx.current_peer_id;
        let tetraplet = self.own_tetraplet(service, function);
        let parsed = if ret_code != 0 {
            Err((ret_code, text.to_string()))
        } else {
            self.texts.value(text).map_err(|e| {
                (
                    i32::MAX,
                    format!(
                        "call_service result 'ret_code: 0, result: '{text}'' can't be serialized or deserialized with an error: {e}"
                    ),
                )
            })
        };
        self.produced = true;
        match parsed {
            Err((rc, message)) => {
                let result = ServiceResult {
                    value: json!({"ret_code": rc, "message": message}).to_string().into(),
                    tetraplet: tetraplet.clone(),
                    argument_hash,
                };
                self.trace.push(State::Call(CallState::Failed(result)));
                self.complete = false;
                let t = (*tetraplet).clone();
                Err(self.raise(node, CatchableError::LocalServiceError(rc, message), Some(current), Some(t)))
            }
            Ok(value) => {
                // the text as the service gave it: it parses to `value` on every replay
                let result = ServiceResult { value: Cow::Borrowed(text), tetraplet: tetraplet.clone(), argument_hash };
                let pos = self.trace.len();
                let item = Item::new(value, tetraplet);
                let output = match &c.output {
                    CallOutput::Scalar(name) => {
                        self.env.set_scalar(*name, item);
                        OutputKind::Scalar
                    }
                    CallOutput::Stream(name) => {
                        let item = item.at(pos as u32);
                        let generation = self.push_stream(*name, item, Source::New, None)?;
                        OutputKind::Stream { generation }
                    }
                    CallOutput::None => OutputKind::Unused,
                };
                self.trace.push(State::Call(CallState::Executed { result, output }));
                Ok(())
            }
        }
    }

    pub(crate) fn exec_canon(&mut self, node: NodeId, c: &'a Canon<'a>) -> Result<(), ExecError> {
        let current = self.ctx.current_peer_id;
        let peer = match self.triplet_part(&c.peer) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, Some(current), None)),
        };
        let peer = peer.as_str();
        if let CanonDest::Scalar(name) = &c.dest {
            self.check_output_name(*name)?;
        }
        let merged = self.trace.meet_canon().map_err(|e| self.trace_err(node, e))?;
        let (result, elements) = match merged {
            Some((CanonState::Executed(result), source)) => {
                if *result.tetraplet.peer_pk != *peer {
                    return Err(UncatchableError::InstructionParametersMismatch {
                        instruction: self.head(node),
                        what: "canon tetraplet",
                    }
                    .into());
                }
                let mut elements = Vec::with_capacity(result.values.len());
                for el in &result.values {
                    let value = self.stored_value(&el.value, source)?;
                    elements.push(Item::new(value, el.tetraplet.clone()));
                }
                (result, elements)
            }
            Some((CanonState::SentBy(sender), _)) if peer != current => {
                self.trace.push(State::Canon(CanonState::SentBy(sender)));
                self.complete = false;
                return Ok(());
            }
            None if peer != current => {
                self.send_to(peer);
                let me = self.me();
                self.trace.push(State::Canon(CanonState::SentBy(me)));
                self.complete = false;
                return Ok(());
            }
            _ => {
                let elements: Vec<Item> = match self.env.stream(c.source) {
                    Some(stream) => stream
                        .ordered()
                        .into_iter()
                        .map(|i| {
                            let item = &stream.values[i].item;
                            Item::new(item.value.clone(), item.tetraplet().clone())
                        })
                        .collect(),
                    None => Vec::new(),
                };
                // a value kept as text is stored as that text (it parses to the same value)
                let values = elements
                    .iter()
                    .map(|e| {
                        let value = match self.texts.text(&e.value) {
                            Some(t) => Cow::Borrowed(t),
                            None => Cow::Owned(self.texts.json_ref(&e.value).to_string()),
                        };
                        CanonElement { value, tetraplet: e.tetraplet().clone() }
                    })
                    .collect();
                self.produced = true;
                (Box::new(CanonResult { tetraplet: Arc::new(Tetraplet::literal(peer)), values }), elements)
            }
        };
        let canon_tetraplet = result.tetraplet.clone();
        self.trace.push(State::Canon(CanonState::Executed(result)));
        match &c.dest {
            CanonDest::Stream(name) | CanonDest::Map(name) => {
                self.env.set_canon(*name, Rc::new(CanonValue { elements, tetraplet: canon_tetraplet }));
            }
            CanonDest::Scalar(name) => {
                let mut map = serde_json::Map::new();
                for e in &elements {
                    let (k, v) = kv(self.texts.json_ref(&e.value));
                    map.entry(k).or_insert(v);
                }
                let item = Item::new(Val::from(JValue::Object(map)), canon_tetraplet);
                self.env.set_scalar(*name, item);
            }
        }
        Ok(())
    }

    pub(crate) fn exec_ap(&mut self, node: NodeId, a: &'a Ap<'a>) -> Result<(), ExecError> {
        // a scalar copied to a scalar (the common `(ap x y)`): the item as it is
        if let (Value::Scalar { name, lambda: None }, ApDest::Scalar(dest)) = (&a.arg, &a.dest) {
            let source = match self.scalar_ref(*name) {
                Ok(Some(item)) => item,
                Ok(None) => {
                    self.complete = false;
                    return Ok(());
                }
                Err(e) => return Err(self.raise(node, e, None, None)),
            };
            self.check_output_name(*dest)?;
            // the copy is made right where it is stored (see `Env::scalar_target`)
            let target = self.env.scalar_target(*dest);
            let (value, tetraplet) = (source.value().clone(), source.tetraplet().clone());
            self.env.store_scalar_with(target, *dest, || Item::new(value, tetraplet));
            return Ok(());
        }
        let r = match self.resolve(&a.arg) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, None, None)),
        };
        let tetraplet = match (&a.arg, r.tetraplets.len()) {
            (_, 1) => r.tetraplets[0].clone(),
            (Value::Canon { name, .. }, _) => match self.env.canon(*name) {
                Some(c) => c.tetraplet.clone(),
                None => self.literal.clone(),
            },
            _ => r.tetraplet_or(&self.literal),
        };
        match &a.dest {
            ApDest::Scalar(name) => {
                self.check_output_name(*name)?;
                self.env.set_scalar(*name, Item::new(r.value, tetraplet));
                Ok(())
            }
            ApDest::Stream(name) => self.ap_to_stream(node, *name, Item::new(r.value, tetraplet)),
        }
    }

    fn ap_to_stream(&mut self, node: NodeId, name: Name<'a>, item: Item) -> Result<(), ExecError> {
        let merged = self.trace.meet_ap().map_err(|e| self.trace_err(node, e))?;
        let pos = self.trace.len();
        let item = item.at(pos as u32);
        let generation = match merged {
            Some((g, source)) => self.push_stream(name, item, source, Some(g))?,
            None => self.push_stream(name, item, Source::New, None)?,
        };
        self.trace.push(State::Ap { generation });
        Ok(())
    }

    pub(crate) fn exec_ap_map(&mut self, node: NodeId, a: &'a ApMap<'a>) -> Result<(), ExecError> {
        let key = match self.resolve(&a.key) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, None, None)),
        };
        let key_ok = match self.texts.json_ref(&key.value) {
            JValue::String(_) => true,
            JValue::Number(n) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        if !key_ok {
            return Err(self.raise(node, CatchableError::StreamMapKey(a.map.to_string()), None, None));
        }
        let value = match self.resolve(&a.value) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, None, None)),
        };
        let tetraplet = value.tetraplet_or(&self.literal);
        let kv =
            json!({"key": self.texts.json_ref(&key.value).clone(), "value": self.texts.json_ref(&value.value).clone()});
        self.ap_to_stream(node, a.map, Item::new(Val::from(kv), tetraplet))
    }

    pub(crate) fn exec_match(
        &mut self,
        node: NodeId,
        left: &Value,
        right: &Value,
        negate: bool,
    ) -> Result<bool, ExecError> {
        let mut values = Vec::with_capacity(2);
        for v in [left, right] {
            match self.resolve(v) {
                Ok(Some(r)) => values.push(r.value),
                Ok(None) => {
                    self.complete = false;
                    return Ok(false);
                }
                Err(e) => return Err(self.raise(node, e, None, None)),
            }
        }
        let equal = self.texts.json_ref(&values[0]) == self.texts.json_ref(&values[1]);
        if equal != negate {
            return Ok(true);
        }
        let e = if negate { CatchableError::MismatchValuesEqual } else { CatchableError::MatchValuesNotEqual };
        Err(self.raise(node, e, None, None))
    }

    pub(crate) fn exec_fail(&mut self, node: NodeId, f: &Fail) -> Result<(), ExecError> {
        self.complete = false;
        match f {
            Fail::Literal { code, message } => {
                let object = json!({
                    "error_code": code,
                    "message": message,
                    "instruction": self.head(node),
                    "peer_id": self.ctx.init_peer_id,
                });
                self.fail_with_object(node, object, None, false)
            }
            Fail::Value(v) => {
                let r = match self.resolve(v) {
                    Ok(Some(r)) => r,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(self.raise(node, e, None, None)),
                };
                let object = self.texts.json(&r.value);
                if let Err(e) = check_error_object(&object) {
                    return Err(self.raise(node, e.into(), None, None));
                }
                // `(fail :error:)` re-raises the original error; anything else is a user error
                let rethrow = matches!(v, Value::Error(None));
                let tetraplet = r.tetraplets.first().cloned();
                self.fail_with_object(node, (*object).clone(), tetraplet, rethrow)
            }
        }
    }

    fn fail_with_object(
        &mut self,
        node: NodeId,
        object: JValue,
        tetraplet: Option<Arc<Tetraplet>>,
        rethrow: bool,
    ) -> Result<(), ExecError> {
        let object = Arc::new(object);
        self.last_error = ErrorSlot { object: object.clone(), tetraplet: tetraplet.clone(), armed: false };
        if rethrow {
            let code = object.get("error_code").and_then(|c| c.as_i64()).unwrap_or(0);
            let message = object.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
            if self.error.armed {
                self.error = ErrorSlot { object, tetraplet, armed: false };
            }
            return Err(ExecError::from(CatchableError::Rethrown { code, message }));
        }
        let error = CatchableError::UserError((*object).clone());
        if self.error.armed {
            let generic = json!({
                "error_code": error.code(),
                "message": error.to_string(),
                "instruction": self.head(node),
            });
            self.error = ErrorSlot { object: Arc::new(generic), tetraplet: None, armed: false };
        }
        Err(ExecError::from(error))
    }
}

/// Checks that a value can be raised by `fail`.
fn check_error_object(v: &JValue) -> Result<(), ErrorObjectError> {
    let JValue::Object(map) = v else {
        return Err(ErrorObjectError::ScalarMustBeObject(v.clone()));
    };
    let code = map
        .get("error_code")
        .ok_or_else(|| ErrorObjectError::ScalarMustContainField { scalar: v.clone(), field_name: "error_code" })?;
    let message = map
        .get("message")
        .ok_or_else(|| ErrorObjectError::ScalarMustContainField { scalar: v.clone(), field_name: "message" })?;
    let Some(code) = code.as_i64() else {
        return Err(ErrorObjectError::ScalarFieldIsWrongType {
            scalar: v.clone(),
            field_name: "error_code",
            expected_type: "integer",
        });
    };
    if !message.is_string() {
        return Err(ErrorObjectError::ScalarFieldIsWrongType {
            scalar: v.clone(),
            field_name: "message",
            expected_type: "string",
        });
    }
    if code == 0 {
        return Err(ErrorObjectError::ErrorCodeMustBeNonZero);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use crate::data::{ArgumentHash, CallState, Data, OutputKind, State};
    use crate::{CallResult, CallResults, Limits, Outcome, RunParams, ScriptCache, Tetraplet, run_with_cache};

    thread_local! {
        /// Calls take the general path only: no constant argument forms, no short replay.
        pub(crate) static GENERAL_ONLY: Cell<bool> = const { Cell::new(false) };
    }

    /// `f` run once with the short paths and once with the general path only.
    fn both<T>(mut f: impl FnMut() -> T) -> (T, T) {
        let short = f();
        GENERAL_ONLY.set(true);
        let general = f();
        GENERAL_ONLY.set(false);
        (short, general)
    }

    fn params(id: &str, secret: &[u8; 32]) -> RunParams {
        RunParams {
            init_peer_id: id.into(),
            current_peer_id: id.into(),
            timestamp: 1_700_000_000_000,
            ttl: 120_000,
            particle_id: "test-particle".into(),
            secret_key: secret.to_vec(),
            limits: Limits::default(),
        }
    }

    #[test]
    fn inline_argument_forms_are_the_written_ones() {
        use super::{inline_constant_form, written_constant_form};
        use crate::parser::{Name, Number, Value};
        let strings: Vec<String> = ["", "a", "svc", "é€", "a\\b", "q\"", "tab\t", "\u{1}", "\u{7f}"]
            .iter()
            .map(|s| s.to_string())
            .chain((0..34).map(|n| "x".repeat(n)))
            .collect();
        let mut pool: Vec<Value<'_>> = strings.iter().map(|s| Value::Literal(s)).collect();
        let mut ints = vec![i64::MAX, i64::MIN, i64::MIN + 1];
        for k in 0..19 {
            let p = 10i64.pow(k);
            ints.extend([p - 1, p, p + 1, -p, -p + 1, -p - 1]);
        }
        pool.extend(ints.into_iter().map(|n| Value::Number(Number::Int(n))));
        pool.extend([Value::Bool(true), Value::Bool(false), Value::EmptyArray]);
        let not_constant = [
            Value::Number(Number::Float(1.5)),
            Value::InitPeerId,
            Value::Scalar { name: Name::new("x"), lambda: None },
        ];
        let mut buf = Vec::new();
        let mut inline = 0;
        let mut check = |args: &[Value<'_>]| {
            let written = written_constant_form(args, &mut buf);
            match inline_constant_form(args) {
                Some(h) => {
                    assert_eq!(Some(h), written, "{args:?}");
                    inline += 1;
                }
                // left to the written form: non-constants, and constants whose text is long or
                // has escapes or a long integer
                None if written.is_some() => {
                    let escapes =
                        args.iter().any(|a| matches!(a, Value::Literal(s) if !crate::json::is_plain_str(s.as_bytes())));
                    let long_int =
                        args.iter().any(|a| matches!(a, Value::Number(Number::Int(n)) if n.to_string().len() > 16));
                    assert!(buf.len() > ArgumentHash::INLINE || escapes || long_int, "{args:?}");
                }
                None => {}
            }
        };
        check(&[]);
        for a in &pool {
            check(std::slice::from_ref(a));
            for b in pool.iter().chain(&not_constant) {
                check(&[a.clone(), b.clone()]);
                check(&[b.clone(), a.clone()]);
                for c in [&pool[2], &pool[12], &pool[pool.len() - 1], &not_constant[1]] {
                    check(&[a.clone(), b.clone(), c.clone()]);
                }
            }
        }
        assert!(inline > 10_000, "{inline} inline forms");
    }

    #[test]
    fn every_scenario_is_the_same_with_the_general_path_only() {
        for (path, text) in crate::scenario_files() {
            let (short, general) = both(|| crate::simulate::simulate(&text).map_err(|e| e.to_string()));
            assert_eq!(short, general, "{}", path.display());
        }
    }

    #[test]
    fn replays_of_own_data_are_the_same_with_the_general_path_only() {
        // each call shape, replayed from untouched data and from data whose recorded result
        // of `f` does not fit the call: the short replay path and the general one agree
        let secret = [3u8; 32];
        let id = crate::peer_id::peer_id_from_secret(&secret);
        let id = id.as_str();
        let shapes = [
            format!(r#"(call "{id}" ("s" "f") [1] x)"#),
            r#"(call %init_peer_id% ("s" "f") ["a" 2] x)"#.to_string(),
            format!(r#"(seq (ap "{id}" p) (call p ("s" "f") [] x))"#),
            format!(r#"(seq (call "{id}" ("s" "peer") [] p) (call p ("s" "f") [] x))"#),
            format!(r#"(call "{id}" ("s" "f") [1])"#),
            format!(r#"(call "{id}" ("s" "f") [1] $st)"#),
            format!(r#"(par (call "{id}" ("s" "f") [1] x) (call "{id}" ("s" "f") [2] y))"#),
            format!(
                r#"(seq (call "{id}" ("s" "f") [true false [] "" -7] x) (call "{id}" ("s" "f") ["{long}"] y))"#,
                long = "z".repeat(40)
            ),
        ];
        let p = params(id, &secret);
        let answer = CallResult { ret_code: 0, result: format!("\"{id}\"") };
        let cache = ScriptCache::new(1 << 20, 16);
        for shape in shapes {
            // `g` takes `x` where there is one: its replay checks the value replayed for `x`
            let g_args = if shape.contains(" x)") { "[x]" } else { "[]" };
            let air = format!(r#"(seq {shape} (call "{id}" ("s" "g") {g_args}))"#);
            let run = |prev: &[u8], results: &CallResults| run_with_cache(&air, prev, &[], &p, results, &cache);
            let mut out: Outcome = run(&[], &CallResults::new());
            while !out.call_requests.is_empty() {
                let results = out.call_requests.iter().map(|r| (r.id, answer.clone())).collect();
                out = run(&out.data, &results);
            }
            assert_eq!(out.ret_code, 0, "{shape}: {}", out.error_message);
            let forged = |f: &dyn Fn(&mut State<'_>)| {
                let mut d = Data::decode(&out.data).unwrap();
                for s in &mut d.trace {
                    if let State::Call(CallState::Executed { result, .. }) = s
                        && &*result.tetraplet.function_name == "f"
                    {
                        f(s);
                    }
                }
                d.encode()
            };
            let with_result = |f: &dyn Fn(&mut crate::data::ServiceResult<'_>)| {
                forged(&|s| {
                    if let State::Call(CallState::Executed { result, .. }) = s {
                        f(result)
                    }
                })
            };
            let variants = [
                out.data.clone(),
                with_result(&|r| r.tetraplet = std::sync::Arc::new(Tetraplet::new(id, "s", "other"))),
                with_result(&|r| r.tetraplet = std::sync::Arc::new(Tetraplet::new("someone-else", "s", "f"))),
                with_result(&|r| {
                    r.tetraplet = std::sync::Arc::new(Tetraplet { lens: ".$.a".into(), ..Tetraplet::new(id, "s", "f") })
                }),
                with_result(&|r| r.argument_hash = ArgumentHash::of(b"[9]")),
                forged(&|s| {
                    if let State::Call(CallState::Executed { output, .. }) = s {
                        *output = match output {
                            OutputKind::Unused => OutputKind::Scalar,
                            _ => OutputKind::Unused,
                        };
                    }
                }),
                with_result(&|r| r.value = "not json".into()),
            ];
            for (i, prev) in variants.iter().enumerate() {
                let (short, general) = both(|| run(prev, &CallResults::new()));
                assert_eq!(short, general, "{shape}, variant {i}");
                if i == 0 {
                    assert_eq!((short.ret_code, &short.data), (0, &out.data), "{shape}: {}", short.error_message);
                } else if (1..=5).contains(&i) && !shape.contains("$st") {
                    assert_ne!(short.ret_code, 0, "{shape}, variant {i}");
                }
            }
        }
    }

    #[test]
    fn same_str_is_string_equality() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(super::same_str(&a, &a.clone()));
            assert!(!super::same_str(&a, &format!("{a}x")));
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'Z';
                assert!(!super::same_str(&a, std::str::from_utf8(&b).unwrap()), "{n} {at}");
            }
        }
    }
}
