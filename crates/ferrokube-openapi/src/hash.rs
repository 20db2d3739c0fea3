//! A content hash for served documents (FNV-1a, 128 bits, upper-case hex):
//! stable across processes, so clients' `?hash=` caches stay valid over restarts.

/// Hashes `bytes` to 32 upper-case hex digits.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032X}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn differs_for_different_input_and_is_stable() {
        let a = super::content_hash(b"{\"a\":1}");
        assert_eq!(a, super::content_hash(b"{\"a\":1}"));
        assert_ne!(a, super::content_hash(b"{\"a\":2}"));
        assert_eq!(a.len(), 32);
    }
}
