use serde::Deserialize;

use crate::flow::duration::HumanDuration;
use crate::flow::located::Located;

/// Fires the flow on a schedule. Each tick opens a run and carries `system_info.last_run_time`.
///
/// ```yaml
/// - generate:
///     name: trigger
///     cron: "*/5 * * * *"     # or: interval: 10m
///     timezone: Europe/Paris  # optional; UTC by default
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    pub cron: Option<Located<CronExpr>>,
    pub interval: Option<HumanDuration>,
    pub timezone: Option<String>,
}

/// A cron expression as the seed writes it (5 fields, minute first). The `cron` crate counts seconds
/// too, so a 5-field expression gets a seconds field of 0; 6 and 7 fields pass through.
#[derive(Debug, Clone)]
pub struct CronExpr {
    pub source: String,
    pub schedule: cron::Schedule,
}

impl CronExpr {
    pub fn parse(source: &str) -> Result<Self, String> {
        let fields = source.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {source}"),
            6 | 7 => source.to_string(),
            n => {
                return Err(format!(
                    "`{source}` has {n} fields; a cron expression has 5 (minute hour day month weekday)"
                ));
            }
        };
        // The crate's message repeats the expression with a caret; its last line says what is wrong.
        let schedule = full.parse::<cron::Schedule>().map_err(|e| {
            let e = e.to_string();
            let reason = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim().to_string();
            format!("`{source}` is not a valid cron expression: {reason}")
        })?;
        Ok(Self { source: source.to_string(), schedule })
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_get_a_zero_seconds_field() {
        let c = CronExpr::parse("*/5 * * * *").unwrap();
        let next: Vec<_> = c
            .schedule
            .after(&"2026-11-25T09:01:30Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap())
            .take(2)
            .collect();
        assert_eq!(next[0].to_rfc3339(), "2026-11-25T09:05:00+00:00");
        assert_eq!(next[1].to_rfc3339(), "2026-11-25T09:10:00+00:00");
    }

    #[test]
    fn bad_expressions_are_rejected() {
        assert!(CronExpr::parse("*/5 * * *").unwrap_err().contains("4 fields"));
        assert!(CronExpr::parse("61 * * * *").is_err());
        assert!(CronExpr::parse("* * * * * * * *").is_err());
    }
}
