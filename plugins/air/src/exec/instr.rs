//! Leaf instructions: call, canon, ap, fail, match.

use std::rc::Rc;

use serde_json::{Value as JValue, json};

use super::env::{CanonValue, Item, StreamValue};
use super::errors::{CatchableError, ErrorObjectError, ExecError, UncatchableError};
use super::resolve::{Resolved, kv};
use super::{Engine, ErrorSlot};
use crate::data::{self, CallState, CanonElement, CanonResult, CanonState, OutputKind, ServiceResult, State};
use crate::interpreter::CallRequest;
use crate::parser::{Ap, ApDest, ApMap, Call, CallOutput, Canon, CanonDest, Fail, NodeId, Value};
use crate::trace::{CallMerge, Source};
use crate::value::Tetraplet;

impl Engine<'_> {
    fn head(&self, node: NodeId) -> String {
        self.ast.node(node).instr.head()
    }

    /// Resolves a peer/service/function part to a string; `Ok(None)` is a join.
    fn triplet_part(&self, v: &Value) -> Result<Option<String>, CatchableError> {
        let Some(r) = self.resolve(v)? else { return Ok(None) };
        match &*r.value {
            JValue::String(s) => Ok(Some(s.clone())),
            other => Err(CatchableError::NonStringValueInTripletResolution {
                variable_name: v.to_string(),
                actual_value: other.clone(),
            }),
        }
    }

    fn check_output_name(&self, name: &str) -> Result<(), ExecError> {
        if self.env.iterators.get(name).is_some_and(|c| !c.is_empty()) {
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
        name: &str,
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

    pub(crate) fn exec_call(&mut self, node: NodeId, c: &Call) -> Result<(), ExecError> {
        let current = self.ctx.current_peer_id.to_string();
        // 1. triplet
        let mut parts = Vec::with_capacity(3);
        for v in [&c.peer, &c.service, &c.function] {
            match self.triplet_part(v) {
                Ok(Some(s)) => parts.push(s),
                Ok(None) => {
                    self.complete = false;
                    return Ok(());
                }
                Err(e) => return Err(self.raise(node, e, Some(&current), None)),
            }
        }
        let function = parts.pop().expect("three parts");
        let service = parts.pop().expect("three parts");
        let peer = parts.pop().expect("three parts");
        let call_tetraplet = Tetraplet::new(&peer, &service, &function);
        // 2. output name
        if let CallOutput::Scalar(name) = &c.output {
            self.check_output_name(name)?;
        }
        // 3. arguments
        let mut joinable = false;
        let mut args: Vec<Resolved> = Vec::with_capacity(c.args.len());
        for a in &c.args {
            match self.resolve(a) {
                Ok(Some(r)) => args.push(r),
                Ok(None) => joinable = true,
                Err(e) => return Err(self.raise(node, e, Some(&peer), Some(call_tetraplet))),
            }
        }
        let arg_values: Vec<JValue> = args.iter().map(|r| (*r.value).clone()).collect();
        let argument_hash = *blake3::hash(serde_json::to_string(&arg_values).unwrap_or_default().as_bytes()).as_bytes();
        // 4. trace
        let merged = self.trace.meet_call().map_err(|e| self.trace_err(node, e))?;
        let state = match merged {
            CallMerge::NotMet => None,
            CallMerge::Met(state, source) => Some((state, source)),
        };
        match state {
            None => {
                if peer != current {
                    self.send_to(&peer);
                    self.trace.push(State::Call(CallState::SentBy { peer: current, call_id: None }));
                    self.complete = false;
                    return Ok(());
                }
                if joinable {
                    self.complete = false;
                    return Ok(());
                }
                self.request(&service, &function, args, arg_values);
                Ok(())
            }
            Some((CallState::SentBy { peer: sender, call_id: Some(id) }, _)) if sender == current => {
                match self.call_results.get(&id) {
                    Some(result) => {
                        self.consumed.insert(id);
                        let (rc, text) = (result.ret_code, result.result.clone());
                        self.consume(node, c, &call_tetraplet, argument_hash, rc, &text)
                    }
                    None => {
                        self.trace.push(State::Call(CallState::SentBy { peer: sender, call_id: Some(id) }));
                        self.complete = false;
                        Ok(())
                    }
                }
            }
            Some((sent @ CallState::SentBy { .. }, _)) => {
                if peer == current && !joinable {
                    self.request(&service, &function, args, arg_values);
                } else {
                    self.trace.push(State::Call(sent));
                    self.complete = false;
                }
                Ok(())
            }
            Some((CallState::Executed { result, output }, source)) => {
                if result.tetraplet != call_tetraplet {
                    return Err(UncatchableError::InstructionParametersMismatch {
                        instruction: self.head(node),
                        what: "tetraplet",
                    }
                    .into());
                }
                if !joinable && result.argument_hash != argument_hash {
                    return Err(UncatchableError::InstructionParametersMismatch {
                        instruction: self.head(node),
                        what: "argument hash",
                    }
                    .into());
                }
                let value = Self::parse_stored(&result.value)?;
                let item =
                    Item { value: Rc::new(value), tetraplet: Rc::new(result.tetraplet.clone()), trace_pos: None };
                let pos = self.trace.result.len();
                match (&c.output, output) {
                    (CallOutput::Scalar(name), OutputKind::Scalar) => {
                        self.env.set_scalar(name, item);
                    }
                    (CallOutput::Stream(name), OutputKind::Stream { generation }) => {
                        let item = Item { trace_pos: Some(pos), ..item };
                        self.push_stream(name, item, source, Some(generation))?;
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
            Some((CallState::Failed(result), _)) => {
                let value = Self::parse_stored(&result.value)?;
                let rc = value.get("ret_code").and_then(|v| v.as_i64()).unwrap_or(0) as i32;
                let message = value.get("message").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                let tetraplet = result.tetraplet.clone();
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

    fn request(&mut self, service: &str, function: &str, args: Vec<Resolved>, arguments: Vec<JValue>) {
        self.lcid += 1;
        let id = self.lcid;
        let tetraplets = args.iter().map(|r| r.tetraplets.iter().map(|t| (**t).clone()).collect()).collect();
        self.call_requests.insert(
            id,
            CallRequest {
                id,
                service_id: service.to_string(),
                function_name: function.to_string(),
                arguments,
                tetraplets,
            },
        );
        self.trace
            .push(State::Call(CallState::SentBy { peer: self.ctx.current_peer_id.to_string(), call_id: Some(id) }));
        self.complete = false;
    }

    fn consume(
        &mut self,
        node: NodeId,
        c: &Call,
        call_tetraplet: &Tetraplet,
        argument_hash: [u8; 32],
        ret_code: i32,
        text: &str,
    ) -> Result<(), ExecError> {
        let current = self.ctx.current_peer_id.to_string();
        let tetraplet = Tetraplet::new(&current, &call_tetraplet.service_id, &call_tetraplet.function_name);
        let parsed = if ret_code != 0 {
            Err((ret_code, text.to_string()))
        } else {
            serde_json::from_str::<JValue>(text).map_err(|e| {
                (
                    i32::MAX,
                    format!(
                        "call_service result 'ret_code: 0, result: '{text}'' can't be serialized or deserialized with an error: {e}"
                    ),
                )
            })
        };
        match parsed {
            Err((rc, message)) => {
                let mut result = ServiceResult {
                    value: json!({"ret_code": rc, "message": message}).to_string(),
                    tetraplet: tetraplet.clone(),
                    argument_hash,
                    signature: Vec::new(),
                };
                result.signature = data::sign(&self.ctx.key, &result.signed_digest(self.ctx.particle_id, true));
                self.trace.push(State::Call(CallState::Failed(Box::new(result))));
                self.complete = false;
                Err(self.raise(node, CatchableError::LocalServiceError(rc, message), Some(&current), Some(tetraplet)))
            }
            Ok(value) => {
                let mut result = ServiceResult {
                    value: value.to_string(),
                    tetraplet: tetraplet.clone(),
                    argument_hash,
                    signature: Vec::new(),
                };
                result.signature = data::sign(&self.ctx.key, &result.signed_digest(self.ctx.particle_id, false));
                let pos = self.trace.result.len();
                let item = Item { value: Rc::new(value), tetraplet: Rc::new(tetraplet), trace_pos: None };
                let output = match &c.output {
                    CallOutput::Scalar(name) => {
                        self.env.set_scalar(name, item);
                        OutputKind::Scalar
                    }
                    CallOutput::Stream(name) => {
                        let item = Item { trace_pos: Some(pos), ..item };
                        let generation = self.push_stream(name, item, Source::New, None)?;
                        OutputKind::Stream { generation }
                    }
                    CallOutput::None => OutputKind::Unused,
                };
                self.trace.push(State::Call(CallState::Executed { result: Box::new(result), output }));
                Ok(())
            }
        }
    }

    pub(crate) fn exec_canon(&mut self, node: NodeId, c: &Canon) -> Result<(), ExecError> {
        let current = self.ctx.current_peer_id.to_string();
        let peer = match self.triplet_part(&c.peer) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, Some(&current), None)),
        };
        if let CanonDest::Scalar(name) = &c.dest {
            self.check_output_name(name)?;
        }
        let merged = self.trace.meet_canon().map_err(|e| self.trace_err(node, e))?;
        let result = match merged {
            Some((CanonState::Executed(result), _)) => {
                if result.tetraplet.peer_pk != peer {
                    return Err(UncatchableError::InstructionParametersMismatch {
                        instruction: self.head(node),
                        what: "canon tetraplet",
                    }
                    .into());
                }
                result
            }
            Some((CanonState::SentBy(sender), _)) if peer != current => {
                self.trace.push(State::Canon(CanonState::SentBy(sender)));
                self.complete = false;
                return Ok(());
            }
            None if peer != current => {
                self.send_to(&peer);
                self.trace.push(State::Canon(CanonState::SentBy(current)));
                self.complete = false;
                return Ok(());
            }
            _ => {
                let values = match self.env.stream(&c.source) {
                    Some(stream) => stream
                        .ordered()
                        .into_iter()
                        .map(|i| {
                            let item = &stream.values[i].item;
                            CanonElement { value: item.value.to_string(), tetraplet: (*item.tetraplet).clone() }
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let mut result = CanonResult { tetraplet: Tetraplet::literal(&peer), values, signature: Vec::new() };
                result.signature = data::sign(&self.ctx.key, &result.signed_digest(self.ctx.particle_id));
                Box::new(result)
            }
        };
        let mut elements = Vec::with_capacity(result.values.len());
        for el in &result.values {
            elements.push(Item {
                value: Rc::new(Self::parse_stored(&el.value)?),
                tetraplet: Rc::new(el.tetraplet.clone()),
                trace_pos: None,
            });
        }
        let canon_tetraplet = Rc::new(result.tetraplet.clone());
        self.trace.push(State::Canon(CanonState::Executed(result)));
        match &c.dest {
            CanonDest::Stream(name) | CanonDest::Map(name) => {
                self.env.set_canon(name, Rc::new(CanonValue { elements, tetraplet: canon_tetraplet }));
            }
            CanonDest::Scalar(name) => {
                let mut map = serde_json::Map::new();
                for e in &elements {
                    let (k, v) = kv(&e.value);
                    map.entry(k).or_insert(v);
                }
                let item = Item { value: Rc::new(JValue::Object(map)), tetraplet: canon_tetraplet, trace_pos: None };
                self.env.set_scalar(name, item);
            }
        }
        Ok(())
    }

    pub(crate) fn exec_ap(&mut self, node: NodeId, a: &Ap) -> Result<(), ExecError> {
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
            (Value::Canon { name, .. }, _) => match self.env.canon(name) {
                Some(c) => c.tetraplet.clone(),
                None => Rc::new(Tetraplet::literal(self.ctx.init_peer_id)),
            },
            _ => r.tetraplet_or(&Tetraplet::literal(self.ctx.init_peer_id)),
        };
        match &a.dest {
            ApDest::Scalar(name) => {
                self.check_output_name(name)?;
                self.env.set_scalar(name, Item { value: r.value, tetraplet, trace_pos: None });
                Ok(())
            }
            ApDest::Stream(name) => self.ap_to_stream(node, name, Item { value: r.value, tetraplet, trace_pos: None }),
        }
    }

    fn ap_to_stream(&mut self, node: NodeId, name: &str, item: Item) -> Result<(), ExecError> {
        let merged = self.trace.meet_ap().map_err(|e| self.trace_err(node, e))?;
        let pos = self.trace.result.len();
        let item = Item { trace_pos: Some(pos), ..item };
        let generation = match merged {
            Some((g, source)) => self.push_stream(name, item, source, Some(g))?,
            None => self.push_stream(name, item, Source::New, None)?,
        };
        self.trace.push(State::Ap { generation });
        Ok(())
    }

    pub(crate) fn exec_ap_map(&mut self, node: NodeId, a: &ApMap) -> Result<(), ExecError> {
        let key = match self.resolve(&a.key) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, None, None)),
        };
        let key_ok = match &*key.value {
            JValue::String(_) => true,
            JValue::Number(n) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        if !key_ok {
            return Err(self.raise(node, CatchableError::StreamMapKey(a.map.clone()), None, None));
        }
        let value = match self.resolve(&a.value) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.complete = false;
                return Ok(());
            }
            Err(e) => return Err(self.raise(node, e, None, None)),
        };
        let tetraplet = value.tetraplet_or(&Tetraplet::literal(self.ctx.init_peer_id));
        let kv = json!({"key": (*key.value).clone(), "value": (*value.value).clone()});
        self.ap_to_stream(node, &a.map, Item { value: Rc::new(kv), tetraplet, trace_pos: None })
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
        let equal = values[0] == values[1];
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
                if let Err(e) = check_error_object(&r.value) {
                    return Err(self.raise(node, e.into(), None, None));
                }
                // `(fail :error:)` re-raises the original error; anything else is a user error
                let rethrow = matches!(v, Value::Error(None));
                let tetraplet = r.tetraplets.first().cloned();
                self.fail_with_object(node, (*r.value).clone(), tetraplet, rethrow)
            }
        }
    }

    fn fail_with_object(
        &mut self,
        node: NodeId,
        object: JValue,
        tetraplet: Option<Rc<Tetraplet>>,
        rethrow: bool,
    ) -> Result<(), ExecError> {
        let object = Rc::new(object);
        self.last_error = ErrorSlot { object: object.clone(), tetraplet: tetraplet.clone(), armed: false };
        if rethrow {
            let code = object.get("error_code").and_then(|c| c.as_i64()).unwrap_or(0);
            let message = object.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
            if self.error.armed {
                self.error = ErrorSlot { object, tetraplet, armed: false };
            }
            return Err(ExecError::Catchable(CatchableError::Rethrown { code, message }));
        }
        let error = CatchableError::UserError((*object).clone());
        if self.error.armed {
            let generic = json!({
                "error_code": error.code(),
                "message": error.to_string(),
                "instruction": self.head(node),
            });
            self.error = ErrorSlot { object: Rc::new(generic), tetraplet: None, armed: false };
        }
        Err(ExecError::Catchable(error))
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
