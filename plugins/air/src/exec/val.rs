//! Values of a run: parsed JSON, or JSON text that is parsed on first use.
//!
//! Service results and stored results are JSON text. Most of them are only bound, pushed to a
//! stream, snapshotted by a canon or carried on; parsing each into a `serde_json::Value` tree
//! (an allocation per string, array and object) would be most of a run's work. So a text that
//! [`json::check`] finds valid stays text ([`Val::Lazy`], an index into [`Texts`]); the first use
//! that needs the tree (a lambda, a comparison, an argument of a call request, …) parses it once
//! and keeps the tree. A text the check is unsure about is parsed at once, as before.

use std::cell::{Cell, OnceCell};
use std::sync::Arc;

use serde_json::Value as JValue;

use crate::json::{self, Check};

/// A JSON value of a run (cheap to clone).
#[derive(Debug)]
pub(crate) enum Val {
    /// A parsed value.
    Json(Arc<JValue>),
    /// A JSON text of [`Texts`], parsed on first use.
    Lazy(u32),
}

impl Clone for Val {
    /// A copy of the value's 16 bytes (and one more count of a parsed value's `Arc`). The derived
    /// clone writes the tag and the payload separately into a temporary that is then read back
    /// whole: a store-forwarding stall on every scalar copy (a tenth of an `ap` chain's time).
    #[inline(always)]
    fn clone(&self) -> Self {
        // every variant is listed: one that owns something must give the copy its share here
        match self {
            Val::Json(v) => std::mem::forget(Arc::clone(v)),
            Val::Lazy(_) => {}
        }
        // SAFETY: the copy owns what it points to exactly as `self` does: a `Lazy` value owns
        // nothing, and for a `Json` value the count of its `Arc` was raised for the copy above.
        unsafe { std::ptr::read(self) }
    }
}

impl From<JValue> for Val {
    fn from(v: JValue) -> Self {
        Val::Json(Arc::new(v))
    }
}

#[derive(Debug)]
pub(crate) struct Text<'a> {
    text: &'a str,
    /// Whether serde_json would write the parsed value as exactly this text; `None` until asked
    /// (a text from this peer's previous data is not looked at unless it is used).
    canonical: Cell<Option<bool>>,
    parsed: OnceCell<Arc<JValue>>,
}

impl<'a> Text<'a> {
    fn new(text: &'a str, canonical: Option<bool>) -> Self {
        Text { text, canonical: Cell::new(canonical), parsed: OnceCell::new() }
    }

    fn canonical(&self) -> bool {
        if let Some(c) = self.canonical.get() {
            return c;
        }
        // a trusted text: the check it skipped (unsure counts as not canonical: it is parsed and
        // written by serde_json, and a text that does not parse fails the run then)
        let c = matches!(json::check(self.text), Check::Valid { canonical: true });
        self.canonical.set(Some(c));
        c
    }
}

/// The JSON texts of a run's lazy values (they borrow the run's inputs: data and call results).
#[derive(Debug, Default)]
pub(crate) struct Texts<'a> {
    texts: Vec<Text<'a>>,
    /// Set when a text the check called valid does not parse (it cannot happen; if it does, the
    /// run stops with "malformed stored value" rather than going on with a wrong value).
    failed: Cell<bool>,
}

/// The storage of a [`Texts`], kept from run to run (see `scratch`).
#[derive(Debug, Default)]
pub(crate) struct TextBuffer<'a>(Vec<Text<'a>>);

impl<'a> TextBuffer<'a> {
    /// Emptied, for texts of another lifetime; dropped when its capacity is above `max_bytes`.
    pub fn kept<'b>(self, max_bytes: usize) -> TextBuffer<'b> {
        TextBuffer(crate::scratch::keep(self.0, max_bytes))
    }
}

impl<'a> Texts<'a> {
    /// Room for `n` texts, in `buffer`'s storage.
    pub fn with_buffer(buffer: TextBuffer<'a>, n: usize) -> Self {
        let mut texts = buffer.0;
        texts.clear();
        texts.reserve(n);
        Texts { texts, failed: Cell::new(false) }
    }

    /// The storage, for the next run.
    pub fn into_buffer(self) -> TextBuffer<'a> {
        TextBuffer(self.texts)
    }

    /// The value of the JSON text `text`: kept as text when it is valid JSON, parsed now when the
    /// check is unsure.
    ///
    /// # Errors
    /// The text is not JSON.
    pub fn value(&mut self, text: &'a str) -> Result<Val, serde_json::Error> {
        match json::check(text) {
            Check::Valid { canonical } => {
                self.texts.push(Text::new(text, Some(canonical)));
                Ok(Val::Lazy((self.texts.len() - 1) as u32))
            }
            Check::Unsure => Ok(Val::from(serde_json::from_str::<JValue>(text)?)),
        }
    }

    /// The value of a JSON text from this peer's previous data, kept as text without checking
    /// it now: this peer wrote that data, from values checked when they arrived (as call results
    /// or in another peer's data, see `interpreter::verify_current`, which trusts the previous
    /// data's signatures for the same reason). A text that is not JSON after all (a corrupted
    /// store) fails the run where it is first used, with "malformed stored value".
    #[inline]
    pub fn trusted(&mut self, text: &'a str) -> Val {
        Val::Lazy(self.trusted_index(text))
    }

    /// [`Texts::trusted`], the `Val::Lazy` left to the caller (made where it is stored, it is not
    /// written in two parts and read back whole: a store-forwarding stall).
    #[inline(always)]
    pub fn trusted_index(&mut self, text: &'a str) -> u32 {
        crate::scratch::push(&mut self.texts, Text::new(text, None));
        (self.texts.len() - 1) as u32
    }

    /// The elements of a lazy value whose text is a compact JSON array, as lazy values of their
    /// own texts (the array is not parsed). `None` for any other value.
    pub fn lazy_elements(&mut self, v: &Val) -> Option<Vec<Val>> {
        let Val::Lazy(i) = v else { return None };
        let t = &self.texts[*i as usize];
        if !t.canonical() {
            return None;
        }
        let elements = json::canonical_elements(t.text)?;
        let first = self.texts.len();
        self.texts.extend(elements.into_iter().map(|text| Text::new(text, Some(true))));
        Some((first..self.texts.len()).map(|i| Val::Lazy(i as u32)).collect())
    }

    /// The parsed value.
    pub fn json(&self, v: &Val) -> Arc<JValue> {
        match v {
            Val::Json(j) => j.clone(),
            Val::Lazy(i) => self.parsed(*i).clone(),
        }
    }

    /// The parsed value, borrowed.
    pub fn json_ref<'s>(&'s self, v: &'s Val) -> &'s JValue {
        match v {
            Val::Json(j) => j,
            Val::Lazy(i) => self.parsed(*i),
        }
    }

    fn parsed(&self, i: u32) -> &Arc<JValue> {
        let t = &self.texts[i as usize];
        t.parsed.get_or_init(|| match serde_json::from_str::<JValue>(t.text) {
            Ok(v) => Arc::new(v),
            Err(_) => {
                self.failed.set(true);
                Arc::new(JValue::Null)
            }
        })
    }

    /// Whether a text failed to parse (see [`Texts::failed`]).
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    /// The JSON text of a lazy value (valid JSON, possibly not in serde_json's compact form).
    pub fn text(&self, v: &Val) -> Option<&'a str> {
        match v {
            Val::Lazy(i) => Some(self.texts[*i as usize].text),
            Val::Json(_) => None,
        }
    }

    /// Writes the compact JSON text of a value (as `serde_json::to_writer` writes the parsed
    /// value): a canonical text is copied, anything else is serialized.
    #[inline(always)]
    pub fn write(&self, v: &Val, out: &mut Vec<u8>) {
        match self.compact_text(v) {
            Some(text) => crate::scratch::put_bytes(out, text.as_bytes()),
            None => self.write_general(v, out),
        }
    }

    /// The text of a lazy value known to be compact (what [`Texts::write`] copies); `None` for
    /// any other value (writing it may parse it).
    #[inline(always)]
    pub fn compact_text(&self, v: &Val) -> Option<&'a str> {
        match v {
            Val::Lazy(i) => self.texts.get(*i as usize).filter(|t| t.canonical.get() == Some(true)).map(|t| t.text),
            Val::Json(_) => None,
        }
    }

    /// [`Texts::write`] of a parsed value or of a text not known to be canonical.
    #[inline(never)]
    fn write_general(&self, v: &Val, out: &mut Vec<u8>) {
        if let Val::Lazy(i) = v {
            let t = &self.texts[*i as usize];
            if t.canonical() {
                out.extend_from_slice(t.text.as_bytes());
                return;
            }
        }
        match self.json_ref(v) {
            JValue::String(s) => json::write_str(out, s),
            JValue::Number(n) if n.is_i64() => json::write_int(out, n.as_i64().unwrap_or_default()),
            // writing JSON into a Vec cannot fail
            other => {
                let _ = serde_json::to_writer(out, other);
            }
        }
    }

    /// The string a lazy value holds when its text is a compact JSON string (no escapes): the
    /// text between the quotes, without parsing.
    pub fn plain_str(&self, v: &Val) -> Option<&'a str> {
        let Val::Lazy(i) = v else { return None };
        let t = &self.texts[*i as usize];
        let b = t.text.as_bytes();
        (t.canonical() && b.len() >= 2 && b[0] == b'"').then(|| &t.text[1..t.text.len() - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloned_value_shares_its_json_and_releases_it() {
        let json = Arc::new(JValue::from("x"));
        let v = Val::Json(json.clone());
        let copy = v.clone();
        assert_eq!(Arc::strong_count(&json), 3);
        let (Val::Json(a), Val::Json(b)) = (&v, &copy) else { panic!("not json") };
        assert!(Arc::ptr_eq(a, b) && Arc::ptr_eq(a, &json));
        drop(v);
        assert_eq!(Arc::strong_count(&json), 2);
        drop(copy);
        assert_eq!(Arc::strong_count(&json), 1);
        assert!(matches!(Val::Lazy(7).clone(), Val::Lazy(7)));
    }

    #[test]
    fn lazy_texts_parse_once_and_write_back() {
        let mut texts = Texts::default();
        let a = texts.value(r#""peer-1""#).unwrap();
        let b = texts.value(r#"{ "b": 1, "a": [1, 2] }"#).unwrap();
        let c = texts.value("1e3").unwrap();
        assert!(matches!((&a, &b, &c), (Val::Lazy(_), Val::Lazy(_), Val::Json(_))));
        assert_eq!(texts.plain_str(&a), Some("peer-1"));
        assert_eq!(texts.plain_str(&b), None);
        let mut out = Vec::new();
        for v in [&a, &b, &c] {
            texts.write(v, &mut out);
            out.push(b' ');
        }
        assert_eq!(String::from_utf8(out).unwrap(), r#""peer-1" {"a":[1,2],"b":1} 1000.0 "#);
        assert!(Arc::ptr_eq(&texts.json(&b), &texts.json(&b)));
        assert!(texts.value("[1,").is_err());
        assert!(!texts.failed());
    }
}
