//! Byte sizes as people write them in config files and flags: `4GiB`, `64 KiB`, `1048576`.

use std::fmt;

use serde::de::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanBytes(pub u64);

impl HumanBytes {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        text.parse::<bytesize::ByteSize>()
            .map(|b| Self(b.as_u64()))
            .map_err(|_| format!("`{text}` is not a size; write e.g. `64KiB`, `16MiB`, `4GiB` or a number of bytes"))
    }
}

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::salesforce::settings::bytes(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_with_and_without_a_space() {
        assert_eq!(HumanBytes::parse("4GiB"), Ok(HumanBytes(4 << 30)));
        assert_eq!(HumanBytes::parse("64 KiB"), Ok(HumanBytes(64 << 10)));
        assert_eq!(HumanBytes::parse("1048576"), Ok(HumanBytes(1 << 20)));
        assert!(HumanBytes::parse("lots").unwrap_err().contains("`lots` is not a size"));
    }
}
