//! Random values from the operating system's CSPRNG, for the identifiers
//! this server makes (event ids, request-id prefixes, generated keys, the
//! sandbox's credentials and Plivo-style UUIDs).

use rand::RngCore;
use rand::rngs::OsRng;

/// `bytes` random bytes as lowercase hex (twice as many characters).
pub fn hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    super::lower_hex(&buf)
}

/// A random version-4 UUID in the lowercase hyphenated form.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = super::lower_hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_two_characters_per_byte_and_uuids_are_version_4() {
        let h = hex(16);
        assert_eq!(h.len(), 32);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(h, hex(16));
        let u = uuid_v4();
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }
}
