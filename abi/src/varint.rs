//! Unsigned LEB128 varints, the length and number encoding of the ABI's byte formats (the
//! `weft-interface` section, effector payloads) and of the libp2p plugin's frames.

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

#[cfg(test)]
mod tests {
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
