//! Values, tetraplets and lambdas.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as JValue;

/// Provenance of a value given to a service: the peer, service and function that produced it,
/// and the lambda applied to it (`lens`). The parts are shared strings: the tetraplets of the
/// elements of an iterated value differ only in their lens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Tetraplet {
    /// Peer that produced the value.
    pub peer_pk: Arc<str>,
    /// Service that produced it.
    pub service_id: Arc<str>,
    /// Function that produced it.
    pub function_name: Arc<str>,
    /// Lambda applied to it, e.g. `.$.a.[0]`.
    pub lens: Arc<str>,
}

impl Tetraplet {
    /// The tetraplet of literals: `{peer, "", "", ""}`.
    pub fn literal(peer: &str) -> Self {
        Tetraplet { peer_pk: peer.into(), ..Default::default() }
    }

    /// `{peer, service, function, ""}`.
    pub fn new(peer: &str, service: &str, function: &str) -> Self {
        Tetraplet { peer_pk: peer.into(), service_id: service.into(), function_name: function.into(), lens: "".into() }
    }

    /// The tetraplet of element `i` of the value: `.$.[i]` appended to the lens (what a fold
    /// over an array gives an item; made only when the item's tetraplet is read).
    pub(crate) fn with_element_lens(&self, i: usize) -> Self {
        let mut lens = Vec::with_capacity(self.lens.len() + 25);
        lens.extend_from_slice(self.lens.as_bytes());
        lens.extend_from_slice(b".$.[");
        crate::json::write_int(&mut lens, i as i64);
        lens.push(b']');
        // (a lens, then ASCII)
        let lens = String::from_utf8(lens).unwrap_or_default();
        Tetraplet {
            peer_pk: self.peer_pk.clone(),
            service_id: self.service_id.clone(),
            function_name: self.function_name.clone(),
            lens: lens.into(),
        }
    }

    /// This tetraplet with `lens` appended.
    pub fn with_lens(&self, lens: &str) -> Self {
        let lens = match self.lens.is_empty() {
            true => Arc::from(lens),
            false => Arc::from(format!("{}{lens}", self.lens)),
        };
        Tetraplet {
            peer_pk: self.peer_pk.clone(),
            service_id: self.service_id.clone(),
            function_name: self.function_name.clone(),
            lens,
        }
    }
}

/// The tetraplets of one value: one, or one per element for canon streams and maps (what a call
/// request gives per argument). Derefs to a slice; serializes as a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tetraplets {
    /// The tetraplet of a value.
    One(Arc<Tetraplet>),
    /// One per element.
    Many(Vec<Arc<Tetraplet>>),
}

impl std::ops::Deref for Tetraplets {
    type Target = [Arc<Tetraplet>];

    fn deref(&self) -> &[Arc<Tetraplet>] {
        match self {
            Tetraplets::One(t) => std::slice::from_ref(t),
            Tetraplets::Many(v) => v,
        }
    }
}

impl Serialize for Tetraplets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tetraplets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut list = Vec::<Arc<Tetraplet>>::deserialize(d)?;
        Ok(match list.len() {
            1 => Tetraplets::One(list.pop().expect("one element")),
            _ => Tetraplets::Many(list),
        })
    }
}

/// A lambda accessor with its variable already resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Object field.
    Field(String),
    /// Array index.
    Index(u32),
}

/// Errors of applying a lambda (all are code 10007).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaError {
    /// Index past the end of a canon stream.
    #[error("lambda is applied to a stream that have only '{stream_size}' elements, but '{idx}' requested")]
    CanonStreamNotHaveEnoughValues {
        /// Elements.
        stream_size: usize,
        /// Requested index.
        idx: usize,
    },
    /// `.field` on a canon stream.
    #[error("field accessor (with field name = '{field_name}') can't be applied to a stream")]
    FieldAccessorAppliedToStream {
        /// Field.
        field_name: String,
    },
    /// `.[i]` on a non-array.
    #[error("value '{value}' is not an array-type to match array accessor with idx = '{idx}'")]
    ArrayAccessorNotMatchValue {
        /// The value.
        value: JValue,
        /// Index.
        idx: u32,
    },
    /// Index past the end.
    #[error("value '{value}' does not contain element for idx = '{idx}'")]
    ValueNotContainSuchArrayIdx {
        /// The value.
        value: JValue,
        /// Index.
        idx: u32,
    },
    /// Missing field.
    #[error("value '{value}' does not contain element with field name = '{field_name}'")]
    ValueNotContainSuchField {
        /// The value.
        value: JValue,
        /// Field.
        field_name: String,
    },
    /// `.field` on a non-object.
    #[error("value '{value}' is not an map-type to match field accessor with field_name = '{field_name}'")]
    FieldAccessorNotMatchValue {
        /// The value.
        value: JValue,
        /// Field.
        field_name: String,
    },
    /// `.[var]` where var is a number that is not a u32.
    #[error("index accessor `{accessor} can't be converted to u32`")]
    IndexAccessNotU32 {
        /// The number.
        accessor: serde_json::Number,
    },
    /// `.[var]` where var is neither a string nor a number.
    #[error("scalar accessor `{scalar_accessor}` should has number or string type")]
    ScalarAccessorHasInvalidType {
        /// The value.
        scalar_accessor: JValue,
    },
    /// `#%m.$.[var]` where var is neither string nor number.
    #[error("canon stream map accessor `{map_accessor}` should be either string or number")]
    CanonStreamMapAccessorHasInvalidType {
        /// The value.
        map_accessor: JValue,
    },
}

/// Turns the value of a `.[var]` accessor into a step.
///
/// # Errors
/// Not a string or a u32 number.
pub fn step_from_value(v: &JValue) -> Result<Step, LambdaError> {
    match v {
        JValue::String(s) => Ok(Step::Field(s.clone())),
        JValue::Number(n) => match n.as_u64().and_then(|u| u32::try_from(u).ok()) {
            Some(i) => Ok(Step::Index(i)),
            None => Err(LambdaError::IndexAccessNotU32 { accessor: n.clone() }),
        },
        other => Err(LambdaError::ScalarAccessorHasInvalidType { scalar_accessor: other.clone() }),
    }
}

/// Applies steps to a JSON value.
///
/// # Errors
/// A missing field or index, or a step that does not fit the value's type.
pub fn apply_steps<'v>(mut value: &'v JValue, steps: &[Step]) -> Result<&'v JValue, LambdaError> {
    for step in steps {
        value = match step {
            Step::Field(name) => match value {
                JValue::Object(map) => map.get(name).ok_or_else(|| LambdaError::ValueNotContainSuchField {
                    value: value.clone(),
                    field_name: name.clone(),
                })?,
                _ => {
                    return Err(LambdaError::FieldAccessorNotMatchValue {
                        value: value.clone(),
                        field_name: name.clone(),
                    });
                }
            },
            Step::Index(idx) => match value {
                JValue::Array(items) => items
                    .get(*idx as usize)
                    .ok_or_else(|| LambdaError::ValueNotContainSuchArrayIdx { value: value.clone(), idx: *idx })?,
                _ => return Err(LambdaError::ArrayAccessorNotMatchValue { value: value.clone(), idx: *idx }),
            },
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_and_messages() {
        let v = json!({"a": [1, {"b": 2}]});
        let s = [Step::Field("a".into()), Step::Index(1), Step::Field("b".into())];
        assert_eq!(apply_steps(&v, &s).unwrap(), &json!(2));
        let e = apply_steps(&json!({"a":1}), &[Step::Field("missing".into())]).unwrap_err();
        assert_eq!(e.to_string(), "value '{\"a\":1}' does not contain element with field name = 'missing'");
        assert!(matches!(step_from_value(&json!(-1)), Err(LambdaError::IndexAccessNotU32 { .. })));
    }

    #[test]
    fn element_lens_appends_the_index() {
        let plain = Tetraplet::new("p", "s", "f");
        let deep = plain.with_lens(".$.a");
        for (i, text) in [(0, "0"), (9, "9"), (10, "10"), (12_345, "12345"), (u32::MAX as usize, "4294967295")] {
            assert_eq!(*plain.with_element_lens(i).lens, format!(".$.[{text}]"));
            assert_eq!(*deep.with_element_lens(i).lens, format!(".$.a.$.[{text}]"));
            assert_eq!(deep.with_element_lens(i).peer_pk, deep.peer_pk);
        }
    }
}
