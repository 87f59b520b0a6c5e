//! Salesforce record ids: a 3-character key prefix, a 2-character pod, a reserved `0`, a 9-digit
//! base-62 record number, and, in the 18-character form, a 3-character suffix that encodes which
//! of the first 15 characters are upper case, so ids survive case-insensitive systems.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// The pod part; any two alphanumerics do, these look like a real instance's.
const POD: &str = "Hn";
/// 62^9: the record number must fit the 9 base-62 digits.
pub const MAX_RECORD_NUMBER: u64 = 13_537_086_546_263_552;

/// The 18-character id for `key_prefix` and `number`.
///
/// The digits are base 62 in ASCII order, so the ids of one prefix sort like their numbers.
///
/// # Panics
/// If `key_prefix` is not 3 ASCII alphanumerics or `number >= MAX_RECORD_NUMBER`: both are
/// programming errors, never data.
pub fn record_id(key_prefix: &str, number: u64) -> String {
    assert!(
        key_prefix.len() == 3 && key_prefix.bytes().all(|b| b.is_ascii_alphanumeric()),
        "key prefix {key_prefix:?} is not 3 alphanumerics"
    );
    assert!(number < MAX_RECORD_NUMBER, "record number {number} does not fit 9 base-62 digits");
    let mut id = String::with_capacity(18);
    id.push_str(key_prefix);
    id.push_str(POD);
    id.push('0');
    let mut digits = [b'0'; 9];
    let mut rest = number;
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    id.extend(digits.iter().map(|&b| char::from(b)));
    let suffix = checksum_suffix(id.as_bytes());
    id.extend(suffix.iter().map(|&b| char::from(b)));
    id
}

/// The 3-character case-safe suffix of a 15-character id: for each 5-character chunk, a 5-bit
/// mask of its upper-case letters (bit i for the i-th character), mapped onto `A-Z0-5`.
fn checksum_suffix(id15: &[u8]) -> [u8; 3] {
    let mut suffix = [0_u8; 3];
    for (chunk, out) in id15.chunks(5).take(3).zip(suffix.iter_mut()) {
        let mask = chunk
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_uppercase())
            .fold(0_usize, |acc, (i, _)| acc | (1 << i));
        *out = SUFFIX[mask];
    }
    suffix
}

/// The canonical 18-character form of a 15- or 18-character id, or `None` when `text` is not an
/// id (wrong length, a non-alphanumeric, or an 18-character id whose suffix does not match).
///
/// The suffix of an 18-character id is compared case-insensitively, as Salesforce does.
pub fn to_18(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if !(bytes.len() == 15 || bytes.len() == 18) || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let suffix = checksum_suffix(&bytes[..15]);
    if bytes.len() == 18 && !bytes[15..].eq_ignore_ascii_case(&suffix) {
        return None;
    }
    let mut id = String::with_capacity(18);
    id.push_str(&text[..15]);
    id.extend(suffix.iter().map(|&b| char::from(b)));
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matches_a_documented_id() {
        // The Bulk API docs' example user id.
        assert_eq!(to_18("005R0000000UyrW").as_deref(), Some("005R0000000UyrWIAS"));
        assert_eq!(to_18("005R0000000UyrWIAS").as_deref(), Some("005R0000000UyrWIAS"));
        assert_eq!(to_18("005R0000000UyrWias").as_deref(), Some("005R0000000UyrWIAS"));
    }

    #[test]
    fn all_lower_and_all_upper_chunks() {
        assert_eq!(to_18("001000000000000").as_deref(), Some("001000000000000AAA"));
        assert_eq!(to_18("ABCDEABCDEABCDE").as_deref(), Some("ABCDEABCDEABCDE555"));
    }

    #[test]
    fn rejects_non_ids() {
        assert_eq!(to_18("001"), None);
        assert_eq!(to_18("001Hn0000000001-"), None);
        assert_eq!(to_18("005R0000000UyrWAAA"), None);
    }

    #[test]
    fn record_ids_have_prefix_length_suffix_and_sort_by_number() {
        let a = record_id("001", 61);
        let b = record_id("001", 62);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("001Hn0"));
        assert_eq!(to_18(&a[..15]).as_deref(), Some(a.as_str()));
        assert_eq!(&a[6..15], "00000000z");
        assert_eq!(&b[6..15], "000000010");
        assert!(a < b);
        let big = record_id("006", MAX_RECORD_NUMBER - 1);
        assert_eq!(&big[6..15], "zzzzzzzzz");
    }
}
