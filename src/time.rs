//! Durations as people write them, and the one cap on how long anything may wait.
//!
//! The library and the command line share this module so that `500ms`, `2s` and `1.5s`
//! read the same way in every option and every report. `humantime` does not accept a
//! decimal (`1.5s`), which the command line has always accepted, so the parser is this
//! small one.

use std::fmt;
use std::time::Duration;

/// The longest delay or deadline the harness accepts: beyond this it is a mistake.
pub const MAX_DEADLINE: Duration = Duration::from_secs(3600);

/// Why a duration was refused; `Display` is a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseDurationError(String);

/// A duration as people write it: `500ms`, `2s`, `1.5s`, `2m`, `1h`; zero allowed, at
/// most [`MAX_DEADLINE`]. Rounded to the microsecond, so `1.1s` is exactly 1100 ms.
///
/// ```
/// use std::time::Duration;
/// use orphan_check::time::parse_duration;
///
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("2 days").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    let bad = |why: String| Err(ParseDurationError(why));
    let t = text.trim();
    let Some(split) = t.find(|c: char| !(c.is_ascii_digit() || c == '.')) else {
        return bad(format!(
            "{text:?} has no unit (write 500ms, 2s, 1.5s or 1m)"
        ));
    };
    let (number, unit) = t.split_at(split);
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return bad(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    let not_a_duration = || format!("{text:?} is not a duration (write 500ms, 2s, 1.5s)");
    if number.is_empty() || number.starts_with('.') || number.matches('.').count() > 1 {
        return bad(not_a_duration());
    }
    let Ok(value) = number.parse::<f64>() else {
        return bad(not_a_duration());
    };
    let seconds = value * scale;
    if seconds > MAX_DEADLINE.as_secs_f64() {
        return bad(format!(
            "{text:?} is longer than {}",
            format_duration(MAX_DEADLINE)
        ));
    }
    Ok(Duration::from_micros((seconds * 1e6).round() as u64))
}

/// A duration the way [`parse_duration`] reads it back: `250ms`, `2s`, `1.5s`, `1234ms`
/// (whole milliseconds; tenths of a second only when exact).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 || ms % 100 != 0 {
        format!("{ms}ms")
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// A duration for `Display` impls and messages: [`format_duration`] without the
/// allocation at the call site.
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Why `value` is not a valid wait, if it is not: zero (unless `zero_ok`) or longer than
/// [`MAX_DEADLINE`]. The one deadline check every option and verdict uses.
pub(crate) fn deadline_problem(value: Duration, zero_ok: bool) -> Option<&'static str> {
    if value.is_zero() && !zero_ok {
        Some("must be greater than zero")
    } else if value > MAX_DEADLINE {
        Some("must be at most one hour")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.1s"), Ok(Duration::from_millis(1100)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(MAX_DEADLINE));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "5", "ms", ".5s", "1.2.3s", "2 days", "5x", "61m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formatted_durations_read_back_the_same() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(2000)), "2s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(1234)), "1234ms");
        for ms in [0, 1, 250, 999, 1000, 1234, 1500, 60_000, 3_600_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms} ms");
        }
    }

    #[test]
    fn the_deadline_check_refuses_zero_and_more_than_the_cap() {
        assert!(deadline_problem(Duration::ZERO, false).is_some());
        assert!(deadline_problem(Duration::ZERO, true).is_none());
        assert!(deadline_problem(MAX_DEADLINE, false).is_none());
        assert!(deadline_problem(MAX_DEADLINE + Duration::from_millis(1), true).is_some());
    }
}
