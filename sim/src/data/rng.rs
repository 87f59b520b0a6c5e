//! Stateless hashing in place of a stateful PRNG: every field value is a pure function of
//! (seed, object, record index, field tag, version), so a record can be rendered on demand, in any
//! order, without storing it, and the same seed always yields the same bytes.

/// The splitmix64 finaliser: a cheap bijective mixer with good avalanche.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes a sequence of words; each step adds the golden-ratio increment so that zero words still
/// move the state and `[a, b]` differs from `[b, a]`.
pub(crate) fn hash(words: &[u64]) -> u64 {
    let mut state = 0x243f_6a88_85a3_08d3_u64;
    for &word in words {
        state = mix(state.wrapping_add(0x9e37_79b9_7f4a_7c15) ^ word);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_order_sensitive_and_spreads() {
        assert_ne!(hash(&[1, 2]), hash(&[2, 1]));
        assert_ne!(hash(&[0]), hash(&[0, 0]));
        let buckets = (0..10_000_u64).fold([0_u32; 10], |mut acc, i| {
            acc[(hash(&[7, i]) % 10) as usize] += 1;
            acc
        });
        assert!(buckets.iter().all(|&b| (900..1100).contains(&b)), "{buckets:?}");
    }
}
