//! Resolving values (SPEC §1.2): JSON value plus tetraplets, or a join when a variable is not
//! known yet.

use std::sync::Arc;

use serde_json::Value as JValue;

use super::Engine;
use super::env::{Item, ItemRef, Lookup};
use super::errors::{CatchableError, ExecError};
use super::val::Val;
use crate::parser::{Accessor, Lambda, Name, NodeId, Value};
use crate::value::{LambdaError, Step, Tetraplet, Tetraplets, apply_steps, step_from_value};

/// A resolved value.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub value: Val,
    /// One per value, or one per element for canon streams and maps.
    pub tetraplets: Tetraplets,
}

impl Resolved {
    /// A scalar's or iterator's item, as resolving its name gives it.
    pub fn of(item: ItemRef<'_>) -> Self {
        Resolved { value: item.value().clone(), tetraplets: Tetraplets::One(item.tetraplet().clone()) }
    }

    fn one(value: JValue, tetraplet: Tetraplet) -> Self {
        Resolved { value: Val::from(value), tetraplets: Tetraplets::One(Arc::new(tetraplet)) }
    }

    fn shared(value: JValue, tetraplet: &Arc<Tetraplet>) -> Self {
        Resolved { value: Val::from(value), tetraplets: Tetraplets::One(tetraplet.clone()) }
    }

    /// The single tetraplet (the first one, or the given fallback).
    pub fn tetraplet_or(&self, fallback: &Arc<Tetraplet>) -> Arc<Tetraplet> {
        self.tetraplets.first().cloned().unwrap_or_else(|| fallback.clone())
    }
}

/// `Ok(None)` is a join: a variable is not known yet.
pub(crate) type Resolution<T> = Result<Option<T>, CatchableError>;

/// The items of a fold and, for a fold over an array, the array's tetraplet (see
/// [`Engine::fold_items`]).
pub(crate) type FoldItems = (Vec<Item>, Option<Arc<Tetraplet>>);

impl Engine<'_> {
    /// A scalar or iterator item, borrowed.
    #[inline]
    pub(crate) fn scalar_ref(&self, name: Name<'_>) -> Resolution<ItemRef<'_>> {
        if let Some(item) = self.env.iterator(name) {
            return Ok(Some(item));
        }
        match self.env.scalar(name) {
            Lookup::Found(item) => Ok(Some(ItemRef::plain(item))),
            Lookup::Cleared => Err(CatchableError::VariableWasNotInitializedAfterNew(name.to_string())),
            Lookup::NotFound => Ok(None),
        }
    }

    fn steps(&self, lambda: &Lambda) -> Resolution<Vec<Step>> {
        let mut steps = Vec::with_capacity(lambda.accessors.len());
        for a in &lambda.accessors {
            steps.push(match a {
                Accessor::Field(f) => Step::Field(f.to_string()),
                Accessor::Index(i) => Step::Index(*i),
                Accessor::Scalar(name) => {
                    let Some(item) = self.scalar_ref(*name)? else { return Ok(None) };
                    step_from_value(self.texts.json_ref(item.value()))?
                }
            });
        }
        Ok(Some(steps))
    }

    /// Resolves a value.
    pub(crate) fn resolve(&self, value: &Value) -> Resolution<Resolved> {
        Ok(Some(match value {
            Value::Literal(s) => Resolved::shared(JValue::String(s.to_string()), &self.literal),
            Value::Number(crate::parser::Number::Int(i)) => Resolved::shared(JValue::from(*i), &self.literal),
            Value::Number(crate::parser::Number::Float(f)) => Resolved::shared(
                serde_json::Number::from_f64(*f).map(JValue::Number).unwrap_or(JValue::Null),
                &self.literal,
            ),
            Value::Bool(b) => Resolved::shared(JValue::Bool(*b), &self.literal),
            Value::EmptyArray => Resolved::shared(JValue::Array(Vec::new()), &self.literal),
            Value::InitPeerId => Resolved::shared(JValue::String(self.ctx.init_peer_id.to_string()), &self.literal),
            Value::Timestamp => Resolved::shared(JValue::from(self.ctx.timestamp), &self.literal),
            Value::Ttl => Resolved::shared(JValue::from(self.ctx.ttl), &self.literal),
            Value::LastError(lambda) | Value::Error(lambda) => {
                let slot = if matches!(value, Value::LastError(_)) { &self.last_error } else { &self.error };
                let tetraplet = slot.tetraplet.clone().unwrap_or_else(|| self.literal.clone());
                match lambda {
                    None => Resolved { value: Val::Json(slot.object.clone()), tetraplets: Tetraplets::One(tetraplet) },
                    Some(l) => {
                        let Some(steps) = self.steps(l)? else { return Ok(None) };
                        let v = apply_steps(&slot.object, &steps)?.clone();
                        Resolved::shared(v, &tetraplet)
                    }
                }
            }
            Value::Scalar { name, lambda } => {
                let Some(item) = self.scalar_ref(*name)? else { return Ok(None) };
                match lambda {
                    None => Resolved::of(item),
                    Some(l) => {
                        let Some(steps) = self.steps(l)? else { return Ok(None) };
                        let v = apply_steps(self.texts.json_ref(item.value()), &steps)?.clone();
                        Resolved::one(v, item.tetraplet().with_lens(&l.to_string()))
                    }
                }
            }
            Value::ScalarLength(name) => {
                let Some(item) = self.scalar_ref(*name)? else { return Ok(None) };
                match self.texts.json_ref(item.value()) {
                    JValue::Array(a) => {
                        Resolved::one(JValue::from(a.len()), Tetraplet { lens: ".length".into(), ..Default::default() })
                    }
                    other => return Err(CatchableError::LengthFunctorAppliedToNotArray(other.clone())),
                }
            }
            Value::Canon { name, lambda } => {
                let Some(canon) = self.env.canon(*name) else { return Ok(None) };
                match lambda {
                    None => Resolved {
                        value: Val::from(JValue::Array(
                            canon.elements.iter().map(|e| self.texts.json_ref(&e.value).clone()).collect(),
                        )),
                        tetraplets: Tetraplets::Many(canon.elements.iter().map(|e| e.tetraplet().clone()).collect()),
                    },
                    Some(l) => {
                        let Some(steps) = self.steps(l)? else { return Ok(None) };
                        let (first, rest) = steps.split_first().expect("a lambda has accessors");
                        let idx = match first {
                            Step::Index(i) => *i as usize,
                            Step::Field(f) => {
                                return Err(LambdaError::FieldAccessorAppliedToStream { field_name: f.clone() }.into());
                            }
                        };
                        let Some(el) = canon.elements.get(idx) else {
                            return Err(LambdaError::CanonStreamNotHaveEnoughValues {
                                stream_size: canon.elements.len(),
                                idx,
                            }
                            .into());
                        };
                        let v = apply_steps(self.texts.json_ref(&el.value), rest)?.clone();
                        Resolved::shared(v, el.tetraplet())
                    }
                }
            }
            Value::CanonLength(name) => {
                let Some(canon) = self.env.canon(*name) else { return Ok(None) };
                Resolved::one(
                    JValue::from(canon.elements.len()),
                    Tetraplet {
                        peer_pk: self.ctx.current_peer_id.into(),
                        service_id: ".length".into(),
                        ..Default::default()
                    },
                )
            }
            Value::CanonMap { name, lambda } => {
                let Some(canon) = self.env.canon(*name) else { return Ok(None) };
                match lambda {
                    None => {
                        let mut map = serde_json::Map::new();
                        for e in &canon.elements {
                            let (k, v) = kv(self.texts.json_ref(&e.value));
                            match map.entry(k).or_insert_with(|| JValue::Array(Vec::new())) {
                                JValue::Array(a) => a.push(v),
                                _ => unreachable!("only arrays are inserted"),
                            }
                        }
                        Resolved {
                            value: Val::from(JValue::Object(map)),
                            tetraplets: Tetraplets::Many(
                                canon.elements.iter().map(|e| e.tetraplet().clone()).collect(),
                            ),
                        }
                    }
                    Some(l) => {
                        let Some(steps) = self.steps(l)? else { return Ok(None) };
                        let (first, rest) = steps.split_first().expect("a lambda has accessors");
                        let key = match first {
                            Step::Field(f) => f.clone(),
                            Step::Index(i) => i.to_string(),
                        };
                        let kv = |e: &Item| kv(self.texts.json_ref(&e.value));
                        let matching: Vec<&Item> = canon.elements.iter().filter(|e| kv(e).0 == key).collect();
                        match rest.split_first() {
                            None => Resolved::one(
                                JValue::Array(matching.iter().map(|e| kv(e).1).collect()),
                                canon.tetraplet.with_lens(&l.to_string()),
                            ),
                            Some((Step::Index(i), rest)) => {
                                let values: JValue = JValue::Array(matching.iter().map(|e| kv(e).1).collect());
                                let Some(el) = matching.get(*i as usize) else {
                                    return Err(
                                        LambdaError::ValueNotContainSuchArrayIdx { value: values, idx: *i }.into()
                                    );
                                };
                                let v = apply_steps(&kv(el).1, rest)?.clone();
                                Resolved::shared(v, el.tetraplet())
                            }
                            Some((Step::Field(f), _)) => {
                                let values: JValue = JValue::Array(matching.iter().map(|e| kv(e).1).collect());
                                return Err(LambdaError::FieldAccessorNotMatchValue {
                                    value: values,
                                    field_name: f.clone(),
                                }
                                .into());
                            }
                        }
                    }
                }
            }
            Value::CanonMapLength(name) => {
                let Some(canon) = self.env.canon(*name) else { return Ok(None) };
                Resolved::one(JValue::from(canon.elements.len()), canon.tetraplet.with_lens("length"))
            }
            Value::Stream(name) | Value::StreamMap(name) => {
                return Err(CatchableError::VariableNotFound(name.to_string()));
            }
        }))
    }

    /// Items of a fold over a value; `Ok(None)` is a join. For a fold over an array, the array's
    /// tetraplet comes with them: the items hold it as a placeholder and the fold's cursor makes
    /// their own ([`Elements`]).
    pub(crate) fn fold_items(&mut self, node: NodeId, iterable: &Value) -> Result<Option<FoldItems>, ExecError> {
        let items = (|| -> Resolution<FoldItems> {
            match iterable {
                Value::Canon { name, lambda: None } | Value::CanonMap { name, lambda: None } => {
                    let Some(canon) = self.env.canon(*name) else { return Ok(None) };
                    Ok(Some((canon.elements.clone(), None)))
                }
                _ => {
                    let Some(r) = self.resolve(iterable)? else { return Ok(None) };
                    let base = r.tetraplet_or(&self.literal);
                    // an array still in its (compact) text: its elements stay text too
                    if let Some(values) = self.texts.lazy_elements(&r.value) {
                        let items =
                            values.into_iter().enumerate().map(|(i, value)| Item::element(value, &base, i)).collect();
                        return Ok(Some((items, Some(base))));
                    }
                    let JValue::Array(values) = self.texts.json_ref(&r.value) else {
                        let value = self.texts.json_ref(&r.value).clone();
                        return Err(CatchableError::FoldIteratesOverNonArray(value, iterable.to_string()));
                    };
                    let items =
                        values.iter().enumerate().map(|(i, v)| Item::element(Val::from(v.clone()), &base, i)).collect();
                    Ok(Some((items, Some(base))))
                }
            }
        })();
        items.map_err(|e| self.raise(node, e, None, None))
    }
}

/// Splits a stream map element `{"key":…,"value":…}` into (key as string, value).
pub(crate) fn kv(element: &JValue) -> (String, JValue) {
    let key = match element.get("key") {
        Some(JValue::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    (key, element.get("value").cloned().unwrap_or(JValue::Null))
}
