//! Salesforce-shaped record ids and secrets.
//!
//! Ids carry the real 3-character case-safety suffix so that a client which checks or converts
//! 15/18-character ids sees exactly what it would see from a real org.

use rand::Rng;
use rand::distributions::Alphanumeric;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// An 18-character id with the given 3-character key prefix (`750` job, `00D` org, `005` user).
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    // A pod-like infix of zeros, as in real ids (`7505g00000AbCdE`), then random characters.
    let mut id = String::with_capacity(18);
    id.push_str(prefix);
    id.push_str("Sm");
    while id.len() < 10 {
        id.push('0');
    }
    while id.len() < 15 {
        id.push(BASE62[rng.gen_range(0..BASE62.len())] as char);
    }
    let suffix = case_suffix(&id);
    id.push_str(&suffix);
    id
}

/// The suffix that makes a 15-character id unique case-insensitively: per 5-character chunk, a
/// bitmap of which characters are upper-case letters, encoded in `A-Z0-5`.
fn case_suffix(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            SUFFIX[bits] as char
        })
        .collect()
}

/// A random secret of `len` alphanumeric characters.
pub fn secret(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A random version-4 UUID, as event uuids and rpc ids are.
pub fn new_uuid() -> String {
    let b: [u8; 16] = rand::thread_rng().r#gen();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-4{}-a{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matches_a_real_id() {
        // A documented real pair: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
        assert_eq!(case_suffix("001A0000006Vm9r"), "IAC");
    }

    #[test]
    fn ids_are_18_characters_with_the_prefix() {
        let id = new_id("750");
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("750"));
        assert_eq!(case_suffix(&id[..15]), id[15..]);
    }
}
