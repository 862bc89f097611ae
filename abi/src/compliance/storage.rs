//! The storage compliance suite.
//!
//! ```ignore
//! weft_abi::compliance::storage::run(&|dir| MyPlugin::storage("", dir).unwrap());
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::storage::{Backend, Op};

/// Opens a backend over a directory (called again on the same directory to test reopening).
pub type Open<'a> = &'a dyn Fn(&Path) -> Box<dyn Backend>;

/// One named case of the suite.
type Case = (&'static str, fn(Open<'_>, &Path));

/// Runs every case, each in a fresh temporary directory. Panics on the first failure, naming it.
pub fn run(open: Open<'_>) {
    let cases: [Case; 12] = [
        ("get on an empty store", empty),
        ("put, get, overwrite", put_get_overwrite),
        ("delete", delete),
        ("batches apply as a whole", batch),
        ("scan order and prefix bounds", scan_bounds),
        ("scan paging", scan_paging),
        ("large values", large_values),
        ("empty key and empty value", empty_key_value),
        ("many keys", many_keys),
        ("data survives reopening after flush", reopen),
        ("concurrent use", concurrent),
        ("stats", stats),
    ];
    for (name, case) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(open, dir.path())));
        if let Err(payload) = result {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("storage compliance case {name:?} failed: {msg}");
        }
    }
}

fn put(b: &dyn Backend, k: &[u8], v: &[u8]) {
    b.apply(vec![Op::put(k.to_vec(), v.to_vec())]).expect("apply put");
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

fn empty(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    assert_eq!(b.get(b"nothing").unwrap(), None);
    assert!(b.scan(b"", None, 10).unwrap().is_empty());
    b.apply(vec![Op::delete(b"absent".to_vec())]).expect("deleting an absent key is not an error");
    b.flush().unwrap();
}

fn put_get_overwrite(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    put(b.as_ref(), b"k", b"one");
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"one"[..]));
    put(b.as_ref(), b"k", b"two");
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(b.get(b"k2").unwrap(), None);
}

fn delete(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    put(b.as_ref(), b"a", b"1");
    put(b.as_ref(), b"b", b"2");
    b.apply(vec![Op::delete(b"a".to_vec())]).unwrap();
    assert_eq!(b.get(b"a").unwrap(), None);
    assert_eq!(b.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(keys(&b.scan(b"", None, 10).unwrap()), vec![b"b".to_vec()]);
}

fn batch(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    put(b.as_ref(), b"old", b"x");
    b.apply(vec![
        Op::put(b"x/1".to_vec(), b"1".to_vec()),
        Op::put(b"x/2".to_vec(), b"2".to_vec()),
        Op::delete(b"old".to_vec()),
        Op::put(b"x/1".to_vec(), b"1b".to_vec()),
    ])
    .unwrap();
    assert_eq!(b.get(b"old").unwrap(), None);
    assert_eq!(b.get(b"x/1").unwrap().as_deref(), Some(&b"1b"[..]), "later ops in a batch win");
    assert_eq!(b.scan(b"x/", None, 10).unwrap().len(), 2);
}

fn scan_bounds(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    for k in [&b"a"[..], b"ab", b"ab\x00", b"ab\xff", b"ac", b"b", b"\xff\xff", b"\xff\xff\x00", b"\xff\xfe"] {
        put(b.as_ref(), k, k);
    }
    let got = b.scan(b"ab", None, 100).unwrap();
    assert_eq!(keys(&got), vec![b"ab".to_vec(), b"ab\x00".to_vec(), b"ab\xff".to_vec()], "prefix ab");
    assert!(got.iter().all(|(k, v)| k == v), "values belong to their keys");
    assert_eq!(keys(&b.scan(b"\xff\xff", None, 100).unwrap()), vec![b"\xff\xff".to_vec(), b"\xff\xff\x00".to_vec()]);
    let all = keys(&b.scan(b"", None, 100).unwrap());
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "scan is in byte order");
    assert_eq!(all.len(), 9);
    assert!(b.scan(b"zz", None, 100).unwrap().is_empty());
}

fn scan_paging(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    let ops = (0..25u8).map(|i| Op::put(vec![b'p', i], vec![i])).collect();
    b.apply(ops).unwrap();
    put(b.as_ref(), b"q", b"outside");
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = b.scan(b"p", after.as_deref(), 7).unwrap();
        assert!(page.len() <= 7, "limit respected");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
        seen.extend(keys(&page));
    }
    assert_eq!(seen, (0..25u8).map(|i| vec![b'p', i]).collect::<Vec<_>>());
    // start_after before the prefix starts at the prefix.
    assert_eq!(b.scan(b"p", Some(b"a"), 1).unwrap()[0].0, vec![b'p', 0]);
    assert!(b.scan(b"p", Some(b"p\x18"), 5).unwrap().is_empty());
}

fn large_values(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    let big: Vec<u8> = (0..(9usize << 20)).map(|i| (i * 31 % 251) as u8).collect();
    put(b.as_ref(), b"big", &big);
    b.flush().unwrap();
    assert!(b.get(b"big").unwrap().as_deref() == Some(&big[..]), "9 MiB value round-trips");
}

fn empty_key_value(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    put(b.as_ref(), b"", b"empty key");
    put(b.as_ref(), b"e", b"");
    assert_eq!(b.get(b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(b.get(b"e").unwrap().as_deref(), Some(&b""[..]), "an empty value is not a missing one");
}

fn many_keys(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    for chunk in (0..10_000u32).collect::<Vec<_>>().chunks(1000) {
        b.apply(chunk.iter().map(|i| Op::put(format!("k/{i:05}").into_bytes(), i.to_le_bytes().to_vec())).collect())
            .unwrap();
    }
    assert_eq!(b.get(b"k/04321").unwrap(), Some(4321u32.to_le_bytes().to_vec()));
    assert_eq!(b.scan(b"k/", None, 20_000).unwrap().len(), 10_000);
}

fn reopen(open: Open<'_>, dir: &Path) {
    {
        let b = open(dir);
        put(b.as_ref(), b"durable", b"yes");
        b.apply(vec![Op::put(b"gone".to_vec(), b"1".to_vec())]).unwrap();
        b.apply(vec![Op::delete(b"gone".to_vec())]).unwrap();
        b.flush().unwrap();
    }
    let b = open(dir);
    assert_eq!(b.get(b"durable").unwrap().as_deref(), Some(&b"yes"[..]));
    assert_eq!(b.get(b"gone").unwrap(), None);
}

fn concurrent(open: Open<'_>, dir: &Path) {
    let b: Arc<dyn Backend> = Arc::from(open(dir));
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let b = Arc::clone(&b);
            s.spawn(move || {
                for i in 0..250u32 {
                    let k = format!("t{t}/{i:04}").into_bytes();
                    b.apply(vec![Op::put(k.clone(), i.to_le_bytes().to_vec())]).unwrap();
                    assert_eq!(b.get(&k).unwrap(), Some(i.to_le_bytes().to_vec()));
                }
            });
        }
    });
    for t in 0..4 {
        assert_eq!(b.scan(format!("t{t}/").as_bytes(), None, 1000).unwrap().len(), 250);
    }
}

fn stats(open: Open<'_>, dir: &Path) {
    let b = open(dir);
    b.apply((0..100u32).map(|i| Op::put(i.to_be_bytes().to_vec(), vec![1; 100])).collect()).unwrap();
    b.flush().unwrap();
    let s = b.stats().unwrap();
    assert_eq!(s.keys, 100, "stats counts keys");
    assert!(s.disk_bytes > 0, "stats reports disk use after a flush");
}
