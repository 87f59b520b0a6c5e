//! Turns a cron expression as users write it into one the `cron` crate reads.
//!
//! The seed writes classic 5-field cron (`*/5 * * * *`); the `cron` crate wants a seconds field
//! first, and numbers weekdays 1-7 from Sunday where classic cron numbers them 0-7 (0 and 7 both
//! Sunday). Passing `1-5` through unchanged would silently run Sunday to Thursday, so in the
//! 5-field form the weekday field is rewritten to an explicit list of days.

/// The classic weekday names, indexed by their classic number.
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Normalizes `expr`; 6- and 7-field expressions (and `@daily`-style macros) pass through in the
/// `cron` crate's own dialect.
pub(crate) fn normalize(expr: &str) -> Result<String, String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return Ok(expr.to_owned());
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match fields.as_slice() {
        [minute, hour, day, month, weekday] => {
            Ok(format!("0 {minute} {hour} {day} {month} {}", classic_weekdays(weekday)?))
        }
        [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => Ok(fields.join(" ")),
        _ => Err(format!(
            "expected 5 fields (minute hour day month weekday), or 6-7 with seconds and year; \
             found {}",
            fields.len()
        )),
    }
}

/// Rewrites a classic weekday field as a list of the `cron` crate's ordinals (Sunday = 1).
fn classic_weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, parse_step(step)?),
            None => (item, 1),
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            Some((a, b)) => (weekday(a)?, weekday(b)?),
            // `a/step` means from `a` to the end of the week.
            None if step > 1 => (weekday(range)? % 7, 6),
            None => (weekday(range)?, weekday(range)?),
        };
        if first > last {
            return Err(format!("weekday range {range:?} runs backwards"));
        }
        for day in (first..=last).step_by(step) {
            days[day % 7] = true;
        }
    }
    Ok((0..7).filter(|&d| days[d]).map(|d| (d + 1).to_string()).collect::<Vec<_>>().join(","))
}

fn parse_step(step: &str) -> Result<usize, String> {
    match step.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid step {step:?} in the weekday field")),
    }
}

/// A classic weekday number, 0-7, where 0 and 7 are both Sunday (callers reduce modulo 7; 7
/// stays 7 here so that a range like `5-7` ends on Sunday instead of running backwards).
fn weekday(text: &str) -> Result<usize, String> {
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 { Ok(n) } else { Err(format!("weekday {n} is out of range 0-7")) };
    }
    let lower = text.to_ascii_lowercase();
    WEEKDAYS.iter().position(|name| *name == lower).ok_or_else(|| format!("{text:?} is not a weekday"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_gain_a_seconds_field() {
        assert_eq!(normalize("*/5 * * * *").unwrap(), "0 */5 * * * *");
        assert_eq!(normalize("  0 9 1 * ?  ").unwrap(), "0 0 9 1 * ?");
    }

    #[test]
    fn six_and_seven_fields_and_macros_pass_through() {
        assert_eq!(normalize("30 */5 * * * *").unwrap(), "30 */5 * * * *");
        assert_eq!(normalize("0 0 9 * * Mon 2027").unwrap(), "0 0 9 * * Mon 2027");
        assert_eq!(normalize("@hourly").unwrap(), "@hourly");
    }

    #[test]
    fn wrong_field_counts_are_refused() {
        for expr in ["", "* * * *", "* * * * * * * *"] {
            assert!(normalize(expr).is_err(), "{expr:?}");
        }
    }

    #[test]
    fn classic_weekdays_become_cron_crate_ordinals() {
        let cases = [
            ("1-5", "2,3,4,5,6"),
            ("0", "1"),
            ("7", "1"),
            ("0,6", "1,7"),
            ("5-7", "1,6,7"),
            ("mon-fri", "2,3,4,5,6"),
            ("SUN,Sat", "1,7"),
            ("*/2", "1,3,5,7"),
            ("1/3", "2,5"),
            ("1-5/2", "2,4,6"),
            ("7-7", "1"),
        ];
        for (classic, crate_form) in cases {
            assert_eq!(classic_weekdays(classic).unwrap(), crate_form, "{classic}");
        }
    }

    #[test]
    fn bad_weekdays_are_refused() {
        for field in ["8", "5-1", "funday", "mo", "é", "1/0", "1-", ""] {
            assert!(classic_weekdays(field).is_err(), "{field:?}");
        }
    }
}
