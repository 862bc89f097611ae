//! `types`: one echo function per interface type, a record that holds them all, the call
//! parameters a call receives, and a function that fails. The host's tests use it to check the
//! ABI end to end.

use weft_sdk::{export, record};

/// Returns its argument.
#[export]
pub fn echo_bool(v: bool) -> bool {
    v
}
/// Returns its argument.
#[export]
pub fn echo_s8(v: i8) -> i8 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_s16(v: i16) -> i16 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_s32(v: i32) -> i32 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_s64(v: i64) -> i64 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_u8(v: u8) -> u8 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_u16(v: u16) -> u16 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_u32(v: u32) -> u32 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_u64(v: u64) -> u64 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_f32(v: f32) -> f32 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_f64(v: f64) -> f64 {
    v
}
/// Returns its argument.
#[export]
pub fn echo_string(v: String) -> String {
    v
}
/// Returns its argument.
#[export]
pub fn echo_bytes(v: Vec<u8>) -> Vec<u8> {
    v
}
/// Returns its argument.
#[export]
pub fn echo_optional(v: Option<String>) -> Option<String> {
    v
}
/// Returns its argument.
#[export]
pub fn echo_array(v: Vec<i32>) -> Vec<i32> {
    v
}
/// Returns its argument.
#[export]
pub fn echo_record(v: Everything) -> Everything {
    v
}

/// A small record, nested in [`Everything`].
#[record]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// One field of every interface type.
#[record]
pub struct Everything {
    pub b: bool,
    pub s8: i8,
    pub s16: i16,
    pub s32: i32,
    pub s64: i64,
    pub u8: u8,
    pub u16: u16,
    pub u32: u32,
    pub u64: u64,
    pub f32: f32,
    pub f64: f64,
    pub string: String,
    pub bytes: Vec<u8>,
    pub optional: Option<String>,
    pub array: Vec<i32>,
    pub point: Point,
    pub points: Vec<Point>,
    pub maybe_point: Option<Point>,
    pub nested: Vec<Option<Vec<u8>>>,
}

/// Where an argument came from (as `weft_sdk::Tetraplet`).
#[record]
pub struct Tetraplet {
    pub peer_pk: String,
    pub service_id: String,
    pub function_name: String,
    pub lens: String,
}

/// The parameters of a call (as `weft_sdk::CallParameters`).
#[record]
pub struct CallParams {
    pub particle_id: String,
    pub init_peer_id: String,
    pub timestamp: u64,
    pub ttl: u32,
    pub service_id: String,
    pub function_name: String,
    pub host_peer_id: String,
    pub service_owner: String,
    pub tetraplets: Vec<Vec<Tetraplet>>,
}

/// The call parameters this call received.
#[export]
pub fn whoami() -> CallParams {
    let p = weft_sdk::call_parameters();
    CallParams {
        particle_id: p.particle_id,
        init_peer_id: p.init_peer_id,
        timestamp: p.timestamp,
        ttl: p.ttl,
        service_id: p.service_id,
        function_name: p.function_name,
        host_peer_id: p.host_peer_id,
        service_owner: p.service_owner,
        tetraplets: p
            .tetraplets
            .into_iter()
            .map(|arg| {
                arg.into_iter()
                    .map(|t| Tetraplet {
                        peer_pk: t.peer_pk,
                        service_id: t.service_id,
                        function_name: t.function_name,
                        lens: t.lens,
                    })
                    .collect()
            })
            .collect(),
    }
}

/// Fails with `msg` (an `Err` fails the call with its text; the interface says `-> u32`).
#[export]
pub fn fail(msg: String) -> Result<u32, String> {
    Err(msg)
}
