//! A fast look at JSON text, so values can be kept as text and parsed only when they are used.
//!
//! Call results arrive as JSON text and stored results are JSON text; most of them are only
//! bound, pushed to a stream or carried to the next peer, never looked into. [`check`] tells in
//! one pass, without allocating, whether `serde_json` would parse a text (and whether it would
//! write the parsed value back byte for byte), so the interpreter can keep the text and parse it
//! on first use. It is deliberately incomplete: whatever it does not decide cheaply (exponents,
//! long numbers, `\u` escapes, deep nesting) and anything invalid is [`Check::Unsure`], and the
//! caller parses with `serde_json`, which then decides (and words the error). So a text it calls
//! valid always parses.
//!
//! Iterative (a fixed-size stack of open containers), like everything that reads untrusted
//! nesting.

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// `serde_json::from_str::<Value>` accepts the text. `canonical`: `serde_json::to_string` of
    /// the parsed value is the text itself.
    Valid {
        /// The text is the compact form serde_json writes.
        canonical: bool,
    },
    /// Not decided here: parse it with serde_json to know.
    Unsure,
}

/// Containers deeper than this are left to serde_json (its own limit is 128); the open
/// containers are the bits of a `u128`.
const MAX_DEPTH: usize = 100;
/// Objects nested deeper than this are not checked for key order (they count as not canonical).
const KEY_DEPTH: usize = 8;
/// Integers with more digits are left to serde_json (18 digits always fit in an i64).
const MAX_DIGITS: usize = 18;

/// Looks at `text` (see the module docs).
#[inline]
pub(crate) fn check(text: &str) -> Check {
    let b = text.as_bytes();
    // the most common results: a short string or a number
    let simple = match b.first() {
        Some(b'"') => {
            let mut canonical = true;
            string(b, 0, &mut canonical).filter(|end| *end == b.len()).map(|_| canonical)
        }
        Some(b'0'..=b'9') => {
            let mut canonical = true;
            number(b, 0, &mut canonical).filter(|end| *end == b.len()).map(|_| canonical)
        }
        _ => None,
    };
    match simple.or_else(|| scan(b)) {
        Some(canonical) => Check::Valid { canonical },
        None => Check::Unsure,
    }
}

/// `Some(canonical)` for a text serde_json accepts, `None` when unsure.
fn scan(b: &[u8]) -> Option<bool> {
    let mut canonical = true;
    // bit d: the container open at depth d is an object
    let mut objects = 0u128;
    // the previous key of each open object (canonical objects have strictly increasing keys)
    let mut last_key: [Option<&[u8]>; KEY_DEPTH] = [None; KEY_DEPTH];
    let mut depth = 0usize;
    // whether the innermost open container is an object (bit `depth - 1` of `objects`)
    let mut in_object = false;
    let mut i = skip_ws(b, 0, &mut canonical);
    'value: loop {
        // a value starts at `i`
        match *b.get(i)? {
            b'"' => i = string(b, i, &mut canonical)?,
            b'[' | b'{' => {
                if depth == MAX_DEPTH {
                    return None;
                }
                let object = b[i] == b'{';
                i = skip_ws(b, i + 1, &mut canonical);
                let close = if object { b'}' } else { b']' };
                if *b.get(i)? == close {
                    i += 1;
                } else {
                    objects = objects & !(1 << depth) | (object as u128) << depth;
                    depth += 1;
                    in_object = object;
                    if object {
                        i = object_key(b, i, depth, &mut last_key, &mut canonical, true)?;
                    }
                    continue 'value;
                }
            }
            b'-' | b'0'..=b'9' => i = number(b, i, &mut canonical)?,
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            _ => return None,
        }
        // after a value: close containers, or go on to the next element
        loop {
            i = skip_ws(b, i, &mut canonical);
            if depth == 0 {
                return (i == b.len()).then_some(canonical);
            }
            match (*b.get(i)?, in_object) {
                (b',', false) => {
                    i = skip_ws(b, i + 1, &mut canonical);
                    continue 'value;
                }
                (b',', true) => {
                    i = skip_ws(b, i + 1, &mut canonical);
                    i = object_key(b, i, depth, &mut last_key, &mut canonical, false)?;
                    continue 'value;
                }
                (b']', false) | (b'}', true) => {
                    i += 1;
                    depth -= 1;
                    in_object = depth > 0 && objects >> (depth - 1) & 1 == 1;
                }
                _ => return None,
            }
        }
    }
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize, canonical: &mut bool) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        *canonical = false;
        i += 1;
    }
    i
}

/// A key of the object open at `depth` (1-based), at `i`, its `:` and the whitespace after it.
/// serde_json writes object keys in byte order, once each: keys that are not strictly increasing
/// (or escaped, or deeper than [`KEY_DEPTH`]: not compared here) make the text not canonical.
#[inline(always)]
fn object_key<'t>(
    b: &'t [u8],
    i: usize,
    depth: usize,
    last_key: &mut [Option<&'t [u8]>; KEY_DEPTH],
    canonical: &mut bool,
    first: bool,
) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut plain = true;
    let end = string(b, i, &mut plain)?;
    let k = &b[i + 1..end - 1];
    match last_key.get_mut(depth - 1) {
        Some(last) => {
            if !plain || !first && last.is_some_and(|l| k <= l) {
                *canonical = false;
            }
            *last = Some(k);
        }
        None => *canonical = false,
    }
    let i = skip_ws(b, end, canonical);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(skip_ws(b, i + 1, canonical))
}

/// A string at `i` (which is `"`): the position after its closing quote.
#[inline(always)]
fn string(b: &[u8], i: usize, canonical: &mut bool) -> Option<usize> {
    let mut i = i + 1;
    loop {
        while b.get(i).is_some_and(|c| !SPECIAL[*c as usize]) {
            i += 1;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    // `\u` escapes (surrogate rules) are left to serde_json
                    _ => return None,
                }
                *canonical = false;
                i += 2;
            }
            // control characters must be escaped
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The element texts of `text`, a JSON array in the compact form serde_json writes (one
/// [`check`] called valid and canonical: no whitespace), without parsing it. `None` when `text`
/// is not such an array. Each element is itself valid, compact JSON.
pub(crate) fn canonical_elements(text: &str) -> Option<Vec<&str>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut start, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while *b.get(i)? != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => {
                out.push(inner.get(start..i)?);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (depth == 0).then_some(())?;
    out.push(inner.get(start..)?);
    Some(out)
}

/// Writes `s` as a JSON string, as serde_json writes it.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if !is_plain_str(s.as_bytes()) {
        // writing into a Vec cannot fail
        let _ = serde_json::to_writer(out, s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    crate::scratch::put_bytes(out, s.as_bytes());
    out.push(b'"');
}

/// Two ASCII digits of `0..100`, the first in the low byte.
static PAIRS: [u16; 100] = {
    let mut t = [0u16; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = (b'0' + (i / 10) as u8) as u16 | ((b'0' + (i % 10) as u8) as u16) << 8;
        i += 1;
    }
    t
};

/// Writes an integer, as serde_json writes it (two digits per division, from a table).
#[inline]
pub(crate) fn write_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut m = n.unsigned_abs();
    let mut pair = |i: &mut usize, two: u64| {
        *i -= 2;
        digits[*i..*i + 2].copy_from_slice(&PAIRS[two as usize].to_le_bytes());
    };
    while m >= 100 {
        pair(&mut i, m % 100);
        m /= 100;
    }
    if m >= 10 {
        pair(&mut i, m);
    } else {
        i -= 1;
        digits[i] = b'0' + m as u8;
    }
    if n < 0 {
        i -= 1;
        digits[i] = b'-';
    }
    crate::scratch::put_bytes(out, &digits[i..]);
}

/// The text [`write_int`] writes, as a little-endian number (built in a register, see
/// `data::InlineText`), and its length; `None` for more than 16 characters.
#[inline(always)]
pub(crate) fn int_word(v: i64) -> Option<(u128, usize)> {
    let mut m = v.unsigned_abs();
    let len = m.checked_ilog10().unwrap_or(0) as usize + 1 + (v < 0) as usize;
    if len > 16 {
        return None;
    }
    let mut word = if v < 0 { b'-' as u128 } else { 0 };
    let mut at = len;
    while m >= 100 {
        at -= 2;
        word |= (PAIRS[(m % 100) as usize] as u128) << (8 * at);
        m /= 100;
    }
    if m >= 10 {
        word |= (PAIRS[m as usize] as u128) << (8 * (at - 2));
    } else {
        word |= ((b'0' + m as u8) as u128) << (8 * (at - 1));
    }
    Some((word, len))
}

/// Whether the string of these bytes is written as `"…"` around them (no byte is escaped).
#[inline(always)]
pub(crate) fn is_plain_str(s: &[u8]) -> bool {
    !s.iter().any(|c| SPECIAL[*c as usize])
}

/// Bytes a string scan stops at: `"`, `\` and control characters.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A number at `i`: the position after it.
#[inline(always)]
fn number(b: &[u8], i: usize, canonical: &mut bool) -> Option<usize> {
    let mut i = i;
    let negative = b[i] == b'-';
    if negative {
        i += 1;
    }
    let digits = i;
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            while let Some(b'0'..=b'9') = b.get(i) {
                i += 1;
            }
        }
        _ => return None,
    }
    let int_digits = i - digits;
    if int_digits > MAX_DIGITS {
        return None;
    }
    match b.get(i) {
        Some(b'.') => {
            i += 1;
            let frac = i;
            while let Some(b'0'..=b'9') = b.get(i) {
                i += 1;
            }
            if i == frac || int_digits + (i - frac) > MAX_DIGITS {
                return None;
            }
            // serde_json writes floats its own way (`1.50` → `1.5`)
            *canonical = false;
        }
        // exponents may overflow f64: serde_json decides
        Some(b'e' | b'E') => return None,
        _ => {
            // `-0` parses as the float -0.0
            if negative && b[digits] == b'0' {
                *canonical = false;
            }
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        return None;
    }
    Some(i)
}

#[inline(always)]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_elements_split_compact_arrays() {
        let text = r#"["a,b",1,[2,[3]],{"k":"]"},"x[",null,-15,{"a":{"b":[]}}]"#;
        assert_eq!(check(text), Check::Valid { canonical: true });
        let elements = canonical_elements(text).unwrap();
        assert_eq!(
            elements,
            [r#""a,b""#, "1", "[2,[3]]", r#"{"k":"]"}"#, r#""x[""#, "null", "-15", r#"{"a":{"b":[]}}"#]
        );
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        for (e, v) in elements.iter().zip(parsed.as_array().unwrap()) {
            assert_eq!(&serde_json::from_str::<serde_json::Value>(e).unwrap(), v);
            assert_eq!(check(e), Check::Valid { canonical: true });
        }
        // escaped quotes do not end a string
        assert_eq!(canonical_elements(r#"["q\"x,",1]"#), Some(vec![r#""q\"x,""#, "1"]));
        assert_eq!(canonical_elements("[]"), Some(vec![]));
        for not_one in ["{}", "1", "\"[]\"", "[1", "[1]]", "[\"]"] {
            assert_eq!(canonical_elements(not_one), None, "{not_one}");
        }
    }
    use proptest::prelude::*;
    use serde_json::Value;

    /// The contract: valid means serde_json parses it; canonical means it writes it back as is.
    fn agrees(text: &str) {
        match check(text) {
            Check::Valid { canonical } => {
                let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
                if canonical {
                    assert_eq!(serde_json::to_string(&v).unwrap(), text);
                }
            }
            Check::Unsure => {}
        }
    }

    #[test]
    fn decides_the_common_forms() {
        for t in [
            "1",
            "0",
            "-12",
            "\"a\"",
            "\"\"",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            "[1,2,[3]]",
            r#"{"a":1,"b":[true]}"#,
            r#"["x","y"]"#,
            "\"é ü\"",
        ] {
            assert_eq!(check(t), Check::Valid { canonical: true }, "{t}");
            agrees(t);
        }
        for t in [" 1", "1.5", "-0", "[1, 2]", r#"{"b":1,"a":2}"#, r#"{"a":1,"a":2}"#, r#""a\nb""#, r#""a\/b""#, "{ }"]
        {
            assert_eq!(check(t), Check::Valid { canonical: false }, "{t}");
            agrees(t);
        }
        for t in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "-",
            "1e3",
            "1E-2",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "nul",
            "truee",
            "[1 2]",
            "\"\\u0041\"",
            "\"a\x01\"",
            "\"abc",
            "[",
            "]",
            "1 2",
            "123456789012345678901",
            "\"\\x\"",
            "{\"a\":1,}",
            "[]]",
        ] {
            assert_eq!(check(t), Check::Unsure, "{t:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(check(&deep), Check::Unsure);
        let ok = "[".repeat(50) + &"]".repeat(50);
        assert_eq!(check(&ok), Check::Valid { canonical: true });
    }

    #[test]
    fn writes_like_serde_json() {
        let mut ints = vec![0i64, 7, -7, 10, 99, 100, -100, 1234, -1000, i64::MAX, i64::MIN, i64::MIN + 1];
        // every length, at and around the powers of ten
        let mut p = 1i64;
        for _ in 0..19 {
            ints.extend([p - 1, p, p + 1, -p, 9 * p, -(9 * p) - 1]);
            p = p.saturating_mul(10);
        }
        for n in ints {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap(), "{n}");
        }
        for s in ["", "a", "peer 1", "é", "q\"uote", "back\\slash", "nl\n", "\u{1}"] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

        #[test]
        fn never_calls_invalid_text_valid(text in r#"[\[\]{}",:0-9.eE+\- tfrualsn\\/bu\x01é]{0,24}"#) {
            agrees(&text);
        }

        #[test]
        fn serialized_values_are_checked(v in json_value()) {
            let text = serde_json::to_string(&v).unwrap();
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            agrees(&text);
            agrees(&pretty);
            // without floats (written their own way) and long numbers, serde_json's output is
            // recognized as canonical
            if !text.contains(['.', 'e']) && !text.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() > 18) {
                prop_assert!(check(&text) == Check::Valid { canonical: true } || text.contains('\\'), "{}", text);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

        /// Near-JSON: serialized values with a few bytes inserted, deleted or replaced.
        #[test]
        fn never_calls_mutated_json_valid(
            v in json_value(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(&br#"{}[]",:0123456789.-+eE \n"tfnu/"#[..])), 1..4),
        ) {
            let mut text = serde_json::to_string(&v).unwrap().into_bytes();
            for (at, op, byte) in edits {
                let i = at.index(text.len() + 1);
                match op {
                    0 => text.insert(i, byte),
                    1 if i < text.len() => { text.remove(i); }
                    _ if i < text.len() => text[i] = byte,
                    _ => {}
                }
            }
            if let Ok(text) = String::from_utf8(text) {
                agrees(&text);
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\"\\\\/\n\u{e9}]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
