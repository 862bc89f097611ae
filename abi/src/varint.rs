//! Unsigned LEB128 varints, the length and number encoding of the ABI's byte formats (the
//! `weft-interface` section, effector payloads, the compiler's call codec) and of the libp2p
//! plugin's frames. [`put`] writes them; [`get`] reads them as postcard does (the guest SDK, which
//! is built by another toolchain, and the libp2p plugin's incremental frame reader have readers
//! of their own with the same rules).

/// Appends `value` as an unsigned varint: 7 bits per byte, least significant first, the high
/// bit set on every byte but the last.
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Why [`get`] refused a varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The bytes end inside it.
    Truncated,
    /// It is longer than its integer allows, or its last byte carries bits that do not fit.
    Invalid,
}

/// Reads the unsigned varint of a `bits`-bit integer (1 to 64) at the start of `bytes`, as
/// postcard reads them: at most `ceil(bits / 7)` bytes, the last of which carries only the bits
/// that remain (non-minimal encodings within that length are accepted). Returns the value and
/// the number of bytes it took.
#[inline]
pub fn get(bytes: &[u8], bits: u32) -> Result<(u64, usize), Refused> {
    debug_assert!((1..=64).contains(&bits));
    let max_bytes = bits.div_ceil(7) as usize;
    // below 0x80: the last byte has no continuation bit either
    let last_max = (1u32 << (bits - 7 * (max_bytes as u32 - 1))) - 1;
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some(&b) = bytes.get(i) else { return Err(Refused::Truncated) };
        if i == max_bytes - 1 && u32::from(b) > last_max {
            return Err(Refused::Invalid);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    unreachable!("the last byte was checked against last_max < 0x80")
}

#[cfg(test)]
mod tests {
    use super::Refused::{Invalid, Truncated};
    use super::get;

    #[test]
    fn reads_what_put_writes_and_refuses_the_rest() {
        for bits in [1u32, 7, 8, 16, 32, 63, 64] {
            let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
            for v in [0, 1, 127, 128, 300, max / 3, max - 1, max] {
                let v = v.min(max);
                let mut out = Vec::new();
                super::put(&mut out, v);
                out.push(0xaa);
                assert_eq!(get(&out, bits), Ok((v, out.len() - 1)), "{v} in {bits} bits");
                assert_eq!(get(&out[..out.len() - 2], bits), Err(Truncated), "{v} cut");
            }
            if bits < 64 {
                let mut out = Vec::new();
                super::put(&mut out, max + 1);
                assert_eq!(get(&out, bits), Err(Invalid), "one past {bits} bits");
            }
        }
        // non-minimal but within the length: accepted
        assert_eq!(get(&[0x80, 0x80, 0x00], 16), Ok((0, 3)));
        assert_eq!(get(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 64), Ok((0, 10)));
        // a continuation bit on the last allowed byte, or bits that do not fit in it
        assert_eq!(get(&[0x80, 0x80, 0x80, 0x00], 16), Err(Invalid));
        assert_eq!(get(&[0xff, 0xff, 0x04], 16), Err(Invalid));
        assert_eq!(get(&[0xff; 10], 64), Err(Invalid));
        assert_eq!(get(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 64), Err(Invalid));
        assert_eq!(get(&[], 32), Err(Truncated));
        assert_eq!(get(&[0x80], 32), Err(Truncated));
    }

    #[test]
    fn known_encodings() {
        for (v, bytes) in [
            (0u64, &[0u8][..]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 1]),
            (300, &[0xac, 2]),
            (u32::MAX as u64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]),
        ] {
            let mut out = Vec::new();
            super::put(&mut out, v);
            assert_eq!(out, bytes, "{v}");
        }
    }
}
