//! Durations as flow files write them: `120s`, `"5s"`, `1m`, `5m`, `1h`, `500ms`, `1h30m`.

use std::fmt;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not a duration; write e.g. `500ms`, `5s`, `1m`, `2h` or `1d`");
        if text.is_empty() {
            return Err(bad());
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" => Duration::from_millis(1),
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                "d" => Duration::from_secs(86_400),
                _ => return Err(bad()),
            };
            total = unit
                .checked_mul(u32::try_from(n).map_err(|_| bad())?)
                .and_then(|d| total.checked_add(d))
                .ok_or_else(bad)?;
            rest = &rest[unit_len..];
        }
        Ok(Self(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) { write!(f, "{}s", ms / 1000) } else { write!(f, "{ms}ms") }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_forms() {
        assert_eq!(HumanDuration::parse("120s").unwrap().0, Duration::from_secs(120));
        assert_eq!(HumanDuration::parse("1m").unwrap().0, Duration::from_secs(60));
        assert_eq!(HumanDuration::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(HumanDuration::parse("1h").unwrap().0, Duration::from_secs(3600));
        assert_eq!(HumanDuration::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(HumanDuration::parse("1h30m").unwrap().0, Duration::from_secs(5400));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "5", "s", "5x", "-5s", "1.5s", "5 s", "99999999999999s"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
    }
}
