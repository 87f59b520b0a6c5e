//! Results locators: base64 of the row offset, like the real `MTAwMDA` (= `10000`). Clients must
//! treat them as opaque; being a pure function of the offset is what makes them stable, so a page
//! can be fetched again by its locator for as long as the job exists.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

pub fn encode(offset: usize) -> String {
    STANDARD_NO_PAD.encode(offset.to_string())
}

/// The offset a locator stands for, if it is one of ours.
pub fn decode(locator: &str) -> Option<usize> {
    let bytes = STANDARD_NO_PAD.decode(locator).or_else(|_| STANDARD.decode(locator)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_documented_example_and_round_trips() {
        assert_eq!(super::encode(10000), "MTAwMDA");
        assert_eq!(super::decode("MTAwMDA"), Some(10000));
        assert_eq!(super::decode("bm90IGEgbnVtYmVy"), None);
        assert_eq!(super::decode("!!"), None);
    }
}
