use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u8,
    nick: Option<String>,
    scores: Vec<i32>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect::<Vec<_>>().join(" ")
}

fn enc<T: ?Sized + Serialize>(value: &T) -> String {
    hex(&to_vec(value).unwrap())
}

fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

fn dec<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    from_bytes(bytes)
}

#[test]
fn worked_example_of_module_abi() {
    let user = User { name: "Ann".into(), age: 30, nick: None, scores: vec![1, -2, 300] };
    let args = (user.clone(), true);
    assert_eq!(enc(&args), "03 41 6e 6e 1e 00 03 02 03 d8 04 01");
    let bytes = unhex("03 41 6e 6e 1e 00 03 02 03 d8 04 01");
    assert_eq!(dec::<(User, bool)>(&bytes).unwrap(), args);
    assert_eq!(enc("hi Ann"), "06 68 69 20 41 6e 6e");
    assert_eq!(dec::<String>(&unhex("06 68 69 20 41 6e 6e")).unwrap(), "hi Ann");
}

#[test]
fn every_type_encodes_as_specified() {
    assert_eq!(enc(&false), "00");
    assert_eq!(enc(&true), "01");
    assert_eq!(enc(&-1i8), "ff");
    assert_eq!(enc(&i8::MIN), "80");
    assert_eq!(enc(&255u8), "ff");
    assert_eq!(enc(&0u16), "00");
    assert_eq!(enc(&127u16), "7f");
    assert_eq!(enc(&128u16), "80 01");
    assert_eq!(enc(&300u16), "ac 02");
    assert_eq!(enc(&u16::MAX), "ff ff 03");
    assert_eq!(enc(&u32::MAX), "ff ff ff ff 0f");
    assert_eq!(enc(&u64::MAX), "ff ff ff ff ff ff ff ff ff 01");
    assert_eq!(enc(&0i16), "00");
    assert_eq!(enc(&-1i16), "01");
    assert_eq!(enc(&1i16), "02");
    assert_eq!(enc(&-2i32), "03");
    assert_eq!(enc(&i16::MIN), "ff ff 03");
    assert_eq!(enc(&i32::MAX), "fe ff ff ff 0f");
    assert_eq!(enc(&i32::MIN), "ff ff ff ff 0f");
    assert_eq!(enc(&i64::MAX), "fe ff ff ff ff ff ff ff ff 01");
    assert_eq!(enc(&i64::MIN), "ff ff ff ff ff ff ff ff ff 01");
    assert_eq!(enc(&1.5f32), "00 00 c0 3f");
    assert_eq!(enc(&-2.0f64), "00 00 00 00 00 00 00 c0");
    assert_eq!(enc(""), "00");
    assert_eq!(enc("é"), "02 c3 a9");
    assert_eq!(enc(&vec![1u8, 2]), "02 01 02"); // bytes
    assert_eq!(enc(&None::<u8>), "00");
    assert_eq!(enc(&Some(5u8)), "01 05");
    assert_eq!(enc(&Some(None::<u8>)), "01 00");
    assert_eq!(enc(&Vec::<String>::new()), "00");
    assert_eq!(enc(&vec!["a", "bc"]), "02 01 61 02 62 63");
    assert_eq!(enc(&vec![vec![1u16], vec![]]), "02 01 01 00");

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Empty {}
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Nested {
        a: Empty,
        b: Empty,
    }
    assert_eq!(enc(&Empty {}), "");
    assert_eq!(enc(&Nested { a: Empty {}, b: Empty {} }), "");
    assert_eq!(dec::<Nested>(&[]).unwrap(), Nested { a: Empty {}, b: Empty {} });
    assert_eq!(dec::<Vec<Empty>>(&[3]).unwrap().len(), 3);
}

#[test]
fn the_rest_of_serde_matches_postcard() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum E {
        A,
        B(u8),
        C(u8, u8),
        D { x: bool },
    }
    for (value, bytes) in [(E::A, "00"), (E::B(7), "01 07"), (E::C(1, 2), "02 01 02"), (E::D { x: true }, "03 01")] {
        assert_eq!(enc(&value), bytes);
        assert_eq!(dec::<E>(&unhex(bytes)).unwrap(), value);
    }
    assert!(dec::<E>(&[4]).is_err());
    assert_eq!(enc(&'é'), "02 c3 a9");
    assert_eq!(dec::<char>(&unhex("02 c3 a9")).unwrap(), 'é');
    assert!(dec::<char>(&unhex("02 61 62")).is_err());
    assert_eq!(enc(&(1u8, 2u16)), "01 02");
    let map: std::collections::BTreeMap<String, u8> = [("a".to_string(), 1)].into_iter().collect();
    assert_eq!(enc(&map), "01 01 61 01");
    assert_eq!(dec::<std::collections::BTreeMap<String, u8>>(&unhex("01 01 61 01")).unwrap(), map);
    assert_eq!(enc(&u128::MAX), "ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 03");
    assert_eq!(dec::<u128>(&to_vec(&u128::MAX).unwrap()).unwrap(), u128::MAX);
    assert_eq!(dec::<i128>(&to_vec(&i128::MIN).unwrap()).unwrap(), i128::MIN);
    assert!(dec::<u128>(&unhex("ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff 04")).is_err());
    let bytes = unhex("02 68 69");
    let borrowed: &str = dec(&bytes).unwrap();
    assert_eq!(borrowed, "hi");
    assert_eq!(dec::<()>(&[]).unwrap(), ());
}

#[test]
fn round_trips() {
    let user =
        User { name: "Zoë".into(), age: 255, nick: Some("z".into()), scores: vec![i32::MIN, -1, 0, 1, i32::MAX] };
    assert_eq!(dec::<User>(&to_vec(&user).unwrap()).unwrap(), user);
    for n in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
        assert_eq!(dec::<u64>(&to_vec(&n).unwrap()).unwrap(), n);
    }
    for n in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX, i64::MIN + 1] {
        assert_eq!(dec::<i64>(&to_vec(&n).unwrap()).unwrap(), n);
    }
    for n in [i16::MIN, -1, 0, i16::MAX] {
        assert_eq!(dec::<i16>(&to_vec(&n).unwrap()).unwrap(), n);
    }
    for x in [0.0f64, -0.0, 1e300, f64::INFINITY, f64::MIN_POSITIVE] {
        assert_eq!(dec::<f64>(&to_vec(&x).unwrap()).unwrap().to_bits(), x.to_bits());
    }
    assert!(dec::<f32>(&to_vec(&f32::NAN).unwrap()).unwrap().is_nan());
    let nested: Vec<Option<Vec<u8>>> = vec![None, Some(vec![]), Some(vec![0, 255])];
    assert_eq!(dec::<Vec<Option<Vec<u8>>>>(&to_vec(&nested).unwrap()).unwrap(), nested);
}

#[test]
fn varints_are_bounded_by_their_type() {
    // non-minimal but within bounds: accepted, as postcard does
    assert_eq!(dec::<u32>(&unhex("80 00")).unwrap(), 0);
    assert_eq!(dec::<u16>(&unhex("80 80 00")).unwrap(), 0);
    assert_eq!(dec::<u64>(&unhex("80 80 80 80 80 80 80 80 80 00")).unwrap(), 0);
    // the last byte carries only the bits that remain
    assert_eq!(dec::<u16>(&unhex("ff ff 03")).unwrap(), u16::MAX);
    assert_eq!(dec::<u16>(&unhex("ff ff 04")), Err(Error::InvalidVarint { offset: 0, ty: "u16" }));
    assert_eq!(dec::<u32>(&unhex("ff ff ff ff 0f")).unwrap(), u32::MAX);
    assert_eq!(dec::<u32>(&unhex("ff ff ff ff 10")), Err(Error::InvalidVarint { offset: 0, ty: "u32" }));
    assert_eq!(dec::<u64>(&unhex("ff ff ff ff ff ff ff ff ff 01")).unwrap(), u64::MAX);
    assert_eq!(dec::<u64>(&unhex("ff ff ff ff ff ff ff ff ff 02")), Err(Error::InvalidVarint { offset: 0, ty: "u64" }));
    assert_eq!(dec::<i64>(&unhex("ff ff ff ff ff ff ff ff ff 01")).unwrap(), i64::MIN);
    assert_eq!(dec::<i16>(&unhex("ff ff 03")).unwrap(), i16::MIN);
    assert_eq!(dec::<i16>(&unhex("fe ff 03")).unwrap(), i16::MAX);
    // too long: a continuation bit on the last allowed byte
    assert!(matches!(dec::<u16>(&unhex("80 80 80 00")), Err(Error::InvalidVarint { .. })));
    assert!(matches!(dec::<u32>(&unhex("80 80 80 80 80 00")), Err(Error::InvalidVarint { .. })));
    assert!(matches!(dec::<u64>(&unhex("80 80 80 80 80 80 80 80 80 80 00")), Err(Error::InvalidVarint { .. })));
    assert!(matches!(dec::<i32>(&unhex("ff ff ff ff 1f")), Err(Error::InvalidVarint { .. })));
    // lengths are 64-bit
    assert!(matches!(dec::<String>(&unhex("80 80 80 80 80 80 80 80 80 02")), Err(Error::InvalidVarint { .. })));
    // truncated in the middle
    assert_eq!(dec::<u32>(&unhex("80")), Err(Error::Truncated { offset: 0, what: "a u32" }));
    assert_eq!(dec::<u32>(&[]), Err(Error::Truncated { offset: 0, what: "a u32" }));
}

#[test]
fn malformed_input_is_an_error() {
    assert_eq!(dec::<bool>(&[2]), Err(Error::InvalidBool { offset: 0, byte: 2 }));
    assert_eq!(dec::<Option<u8>>(&[2, 0]), Err(Error::InvalidOptionTag { offset: 0, byte: 2 }));
    assert_eq!(dec::<String>(&[2, 0xc3, 0x28]), Err(Error::InvalidUtf8 { offset: 1 }));
    assert_eq!(dec::<String>(&[5, b'a']), Err(Error::LengthTooLarge { offset: 0, len: 5, remaining: 1 }));
    assert_eq!(
        dec::<Vec<u8>>(&unhex("ff ff ff ff ff ff ff ff 7f")).unwrap_err().to_string(),
        "length 9223372036854775807 at byte 0 needs more than the 0 bytes that remain"
    );
    assert!(matches!(dec::<Vec<String>>(&unhex("ff ff 7f")), Err(Error::LengthTooLarge { .. })));
    assert!(matches!(dec::<Vec<()>>(&unhex("ff ff 7f")), Err(Error::LengthTooLarge { .. })));
    assert_eq!(dec::<Vec<()>>(&unhex("e8 07")).unwrap().len(), 1000);
    assert_eq!(dec::<u8>(&[1, 2, 3]), Err(Error::TrailingBytes { offset: 1, count: 2 }));
    assert_eq!(Error::TrailingBytes { offset: 1, count: 2 }.to_string(), "2 trailing bytes at byte 1");
    assert_eq!(dec::<f64>(&[0; 7]), Err(Error::Truncated { offset: 0, what: "an f64" }));
    assert_eq!(dec::<String>(&[]).unwrap_err().to_string(), "truncated at byte 0 while reading a string length");
    assert_eq!(
        dec::<(u8, Option<u8>)>(&[0, 2]).unwrap_err().to_string(),
        "invalid optional tag 0x02 at byte 1; the tag is 0 (null) or 1 (a value follows)"
    );
    // take_from_bytes leaves the rest
    let (value, rest) = take_from_bytes::<u8>(&[1, 2, 3]).unwrap();
    assert_eq!((value, rest), (1, &[2u8, 3][..]));
    // every strict prefix of a value is truncated (or has a length beyond its end)
    let bytes = unhex("03 41 6e 6e 1e 00 03 02 03 d8 04 01");
    for end in 0..bytes.len() {
        match dec::<(User, bool)>(&bytes[..end]) {
            Err(Error::Truncated { .. }) | Err(Error::LengthTooLarge { .. }) => {}
            other => panic!("prefix of {} bytes: {:?}", end, other),
        }
    }
    // formats that need self-description are refused, not guessed
    assert!(matches!(dec::<IgnoreMe>(&[0]), Err(Error::Unsupported(_))));
    let unknown_len = Unsized;
    assert!(matches!(to_vec(&unknown_len), Err(Error::Unsupported(_))));
}

#[derive(Debug)]
struct IgnoreMe;
impl<'de> Deserialize<'de> for IgnoreMe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| IgnoreMe)
    }
}

struct Unsized;
impl Serialize for Unsized {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        s.serialize_seq(None)?.end()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Tree {
    label: Option<Box<Tree>>,
    children: Vec<Tree>,
}

#[test]
fn nesting_is_capped_instead_of_overflowing_the_stack() {
    // each level is "01" (a present optional) and the innermost is "00 00"
    let mut bytes = vec![1u8; 10_000];
    bytes.extend_from_slice(&[0, 0]);
    match dec::<Tree>(&bytes) {
        Err(Error::TooDeep { offset }) => assert!(offset < 200, "{}", offset),
        other => panic!("{:?}", other),
    }
    // within the cap it decodes
    let mut bytes = vec![1u8; 40];
    bytes.extend(std::iter::repeat(0).take(2 + 40)); // the innermost tree, then 40 empty child lists
    assert!(dec::<Tree>(&bytes).is_ok());
}

#[test]
fn random_input_never_panics() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Everything {
        a: bool,
        b: i8,
        c: i16,
        d: i32,
        e: i64,
        f: u8,
        g: u16,
        h: u32,
        i: u64,
        j: f32,
        k: f64,
        l: String,
        m: Vec<u8>,
        n: Option<Vec<String>>,
        o: Vec<User>,
        p: Option<Box<Everything>>,
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                // favour small values so that lengths and tags are often valid
                if r % 3 == 0 {
                    (r >> 8) as u8
                } else {
                    ((r >> 8) % 4) as u8
                }
            })
            .collect();
        let _ = dec::<Everything>(&bytes);
        let _ = take_from_bytes::<(String, Vec<Option<u64>>)>(&bytes);
    }
}
