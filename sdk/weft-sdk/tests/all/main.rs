//! The macros' expansions, exercised on the host: interface entries, export wrappers called as
//! weft calls them, failures and imports.

use weft_sdk::__private::host;
use weft_sdk::{export, import, record, wire};

#[export]
pub fn greet(name: String) -> String {
    format!("Hello, {}!", name)
}

#[record]
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub age: u8,
    pub nick: Option<String>,
    pub scores: Vec<i32>,
}

#[export]
pub fn welcome(user: User, loud: bool) -> String {
    let text = format!("hi {}", user.name);
    if loud {
        text.to_uppercase()
    } else {
        text
    }
}

#[export(name = "type")]
fn r#type(r#in: Vec<u8>) -> Option<Vec<Vec<u8>>> {
    Some(vec![r#in])
}

#[export]
fn nothing() {}

#[export]
pub fn halve(x: u32) -> Result<u32, String> {
    if x % 2 == 0 {
        Ok(x / 2)
    } else {
        Err(format!("{} is odd", x))
    }
}

#[export]
pub fn check(ok: bool) -> std::fmt::Result {
    if ok {
        Ok(())
    } else {
        Err(std::fmt::Error)
    }
}

#[export]
pub fn boom() -> u8 {
    panic!("kaboom {}", 42)
}

#[record]
#[derive(Debug)]
pub struct Stats {
    pub words: u32,
    pub longest: Option<String>,
    pub lengths: Vec<u8>,
}

#[import(module = "textstats")]
extern "C" {
    /// Word statistics.
    pub fn stats(words: Vec<String>) -> Stats;
    #[link_name = "reset-all"]
    fn reset();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect::<Vec<_>>().join(" ")
}

#[test]
fn greet_entry_is_the_example_of_interface_section() {
    assert_eq!(hex(&__weft_interface_function_greet), "01 00 05 67 72 65 65 74 01 04 6e 61 6d 65 01 0b 01 01 0b");
}

#[test]
fn entries_follow_the_types() {
    // record user { name: string, age: u8, nick: optional<string>, scores: array<s32> }
    assert_eq!(
        hex(&__weft_interface_record_User),
        "01 01 04 55 73 65 72 04 04 6e 61 6d 65 01 0b 03 61 67 65 01 05 04 6e 69 63 6b 02 0d 0b \
         06 73 63 6f 72 65 73 02 0e 03"
    );
    // welcome(user: User, loud: bool) -> string
    assert_eq!(
        hex(&__weft_interface_function_welcome),
        "01 00 07 77 65 6c 63 6f 6d 65 02 04 75 73 65 72 01 0f 04 55 73 65 72 04 6c 6f 75 64 01 00 01 01 0b"
    );
    // type(in: bytes) -> optional<array<bytes>>
    assert_eq!(hex(&__weft_interface_function_type), "01 00 04 74 79 70 65 01 02 69 6e 01 0c 01 03 0d 0e 0c");
    assert_eq!(hex(&__weft_interface_function_nothing), "01 00 07 6e 6f 74 68 69 6e 67 00 00");
    // halve(x: u32) -> u32: a Result declares its Ok type
    assert_eq!(hex(&__weft_interface_function_halve), "01 00 05 68 61 6c 76 65 01 01 78 01 07 01 01 07");
    assert_eq!(hex(&__weft_interface_function_check), "01 00 05 63 68 65 63 6b 01 02 6f 6b 01 00 00");
    // textstats.stats(words: array<string>) -> Stats
    assert_eq!(
        hex(&__weft_interface_import_stats),
        "01 02 09 74 65 78 74 73 74 61 74 73 05 73 74 61 74 73 01 05 77 6f 72 64 73 02 0e 0b 01 01 0f 05 53 74 61 74 73"
    );
    assert_eq!(
        hex(&__weft_interface_import_reset),
        "01 02 09 74 65 78 74 73 74 61 74 73 09 72 65 73 65 74 2d 61 6c 6c 00 00"
    );
}

#[test]
fn exports_decode_arguments_and_encode_results() {
    let result = host::call(__weft_export_greet, &wire::to_vec("Ann").unwrap());
    assert_eq!(wire::from_bytes::<String>(&result).unwrap(), "Hello, Ann!");

    // the worked example of module-abi.md
    let args = [0x03, 0x41, 0x6e, 0x6e, 0x1e, 0x00, 0x03, 0x02, 0x03, 0xd8, 0x04, 0x01];
    assert_eq!(host::call(__weft_export_welcome, &args), wire::to_vec("HI ANN").unwrap());

    assert_eq!(host::call(__weft_export_type, &[2, 7, 8]), [1, 1, 2, 7, 8]);
    assert_eq!(host::call(__weft_export_nothing, &[]), Vec::<u8>::new());
    assert_eq!(host::call(__weft_export_halve, &[10]), [5]);
    assert_eq!(host::call(__weft_export_check, &[1]), Vec::<u8>::new());
    // still ordinary Rust functions
    assert_eq!(halve(3), Err("3 is odd".to_string()));
    assert_eq!(r#type(vec![1]), Some(vec![vec![1]]));
}

fn failure(export: fn(i32, i32) -> i64, args: &[u8]) -> String {
    host::take_error();
    let panicked = std::panic::catch_unwind(|| host::call(export, args)).is_err();
    assert!(panicked, "the call did not fail");
    host::take_error().expect("set_error was called")
}

#[test]
fn bad_arguments_fail_the_call_with_the_parameter_named() {
    assert_eq!(
        failure(__weft_export_greet, &[]),
        "greet: parameter \"name\": truncated at byte 0 while reading a string length"
    );
    assert_eq!(failure(__weft_export_greet, &[1, b'a', 9]), "greet: 1 trailing byte at byte 2 after the arguments");
    assert_eq!(
        failure(__weft_export_welcome, &[0, 0, 2]),
        "welcome: parameter \"user\": invalid optional tag 0x02 at byte 2; the tag is 0 (null) or 1 (a value follows)"
    );
    assert_eq!(
        failure(__weft_export_welcome, &[0, 0, 0, 0, 7]),
        "welcome: parameter \"loud\": invalid bool 0x07 at byte 4; a bool is 0 or 1"
    );
    assert_eq!(failure(__weft_export_nothing, &[0]), "nothing: 1 trailing byte at byte 0 after the arguments");
}

#[test]
fn errors_and_panics_fail_the_call_with_their_message() {
    assert_eq!(failure(__weft_export_halve, &[3]), "3 is odd");
    assert_eq!(failure(__weft_export_check, &[0]), "an error occurred when formatting an argument");
    let message = failure(__weft_export_boom, &[]);
    assert!(message.starts_with("panicked at "), "{}", message);
    assert!(message.ends_with(": kaboom 42"), "{}", message);
}

#[test]
fn imports_are_typed_functions() {
    let _: fn(Vec<String>) -> Stats = stats;
    let panicked = std::panic::catch_unwind(|| stats(vec!["a".into()])).unwrap_err();
    let message = panicked.downcast_ref::<String>().unwrap();
    assert!(message.starts_with("textstats.stats: imports can only be called"), "{}", message);
    let panicked = std::panic::catch_unwind(reset).unwrap_err();
    assert!(panicked.downcast_ref::<String>().unwrap().starts_with("textstats.reset-all: "));
}

#[test]
fn call_parameters_on_the_host() {
    assert_eq!(weft_sdk::call_parameters(), weft_sdk::CallParameters::new());
    let mut p = weft_sdk::CallParameters::new();
    p.particle_id = "p1".into();
    p.timestamp = 1_700_000_000_000;
    let mut t = weft_sdk::Tetraplet::default();
    t.peer_pk = "peer".into();
    p.tetraplets = vec![vec![t], vec![]];
    weft_sdk::set_host_call_parameters(p.clone());
    assert_eq!(weft_sdk::call_parameters(), p);
}

#[test]
fn call_parameters_ignore_fields_a_later_weft_appends() {
    let mut bytes = wire::to_vec(&weft_sdk::CallParameters::new()).unwrap();
    assert_eq!(bytes.len(), 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1);
    bytes.extend_from_slice(&[5, 1, 2, 3]);
    let (p, rest) = wire::take_from_bytes::<weft_sdk::CallParameters>(&bytes).unwrap();
    assert_eq!((p, rest), (weft_sdk::CallParameters::new(), &[5u8, 1, 2, 3][..]));
}
