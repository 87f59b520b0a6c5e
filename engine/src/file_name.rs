//! Deterministic file names. A batch's file is named after its event id (stable across
//! redeliveries), so writing the same batch again overwrites its own file instead of adding a
//! second one, and two different batches never share a name.

/// The longest stem we write; object stores and file systems cap names near 255 bytes.
const MAX_STEM: usize = 160;

/// `id` made safe as a single path segment: characters other than ASCII letters, digits, `.`, `_`
/// and `-` become `_`. When that (or truncation) changed anything, a hash of the original id is
/// appended, so `a/b` and `a_b` still get different names.
pub fn file_stem(id: &str) -> String {
    let mut stem: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    // A leading dot would hide the file from many readers (and `.`/`..` are not names at all).
    if stem.starts_with('.') {
        stem.replace_range(0..1, "_");
    }
    let changed = stem != id || stem.len() > MAX_STEM;
    if changed {
        stem.truncate(MAX_STEM);
        stem.push_str(&format!("-{:016x}", fnv1a(id.as_bytes())));
    }
    stem
}

/// FNV-1a, 64 bit: tiny, and unlike `DefaultHasher` its output is fixed forever, which names that
/// must match across versions and machines need.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_batch_ids_are_kept_as_they_are() {
        assert_eq!(file_stem("750xx000000001-p0-b3"), "750xx000000001-p0-b3");
    }

    #[test]
    fn unsafe_ids_are_replaced_and_stay_distinct() {
        let a = file_stem("a/b");
        let b = file_stem("a_b");
        let c = file_stem("a:b");
        assert!(a.starts_with("a_b-"), "{a}");
        assert_eq!(b, "a_b");
        assert_ne!(a, c);
        assert_eq!(a, file_stem("a/b"), "the same id always gives the same name");
        assert!(file_stem("..").starts_with("_.-"), "never `..`");
        assert!(!file_stem("../../etc/passwd").contains('/'));
    }

    #[test]
    fn long_ids_are_cut_but_stay_unique() {
        let long_a = "x".repeat(400) + "a";
        let long_b = "x".repeat(400) + "b";
        assert!(file_stem(&long_a).len() <= MAX_STEM + 17);
        assert_ne!(file_stem(&long_a), file_stem(&long_b));
    }
}
