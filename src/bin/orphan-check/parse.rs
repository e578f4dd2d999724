//! Value parsers for the options: durations, kill plans, readiness conditions, kill
//! windows. Each returns a message clap shows after `invalid value … for '--option'`.

use std::path::PathBuf;
use std::time::Duration;

use orphan_check::time::parse_duration;
use orphan_check::{KillPlan, Ready};

/// A duration as people write it: `500ms`, `2s`, `1.5s`, `2m`; zero allowed, at most an
/// hour ([`orphan_check::time::parse_duration`]).
pub fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// A duration that must be greater than zero (a deadline, a timeout, a grace period).
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = duration(text)?;
    if d.is_zero() {
        return Err(format!("{text:?}: must be greater than zero"));
    }
    Ok(d)
}

/// A kill plan by its CLI token, the inverse of `KillPlan::name()` (see
/// `KillPlan::from_str` for the names).
pub fn kill_plan(text: &str) -> Result<KillPlan, String> {
    text.parse()
        .map_err(|e: orphan_check::kill::ParsePlanError| e.to_string())
}

/// A readiness condition: `port:3000`, `line:TEXT`, `file:PATH`, `after:2s`.
pub fn ready(text: &str) -> Result<Ready, String> {
    let (kind, value) = text.split_once(':').ok_or_else(|| {
        format!("{text:?}: expected port:N, line:TEXT, file:PATH or after:DURATION")
    })?;
    match kind {
        "port" => value
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(Ready::port)
            .ok_or_else(|| format!("{value:?} is not a TCP port (1-65535)")),
        "line" if !value.is_empty() => Ok(Ready::stdout_line(value)),
        "line" => Err("line: needs the text a stdout line starts with".into()),
        "file" if !value.is_empty() => Ok(Ready::file(PathBuf::from(value))),
        "file" => Err("file: needs a path".into()),
        "after" => duration(value).map(Ready::after),
        _ => Err(format!(
            "unknown readiness {kind:?} (expected port:N, line:TEXT, file:PATH or after:DURATION)"
        )),
    }
}

/// The window `--kill-at random:A..B` draws kill moments from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillWindow {
    /// Earliest delay after readiness.
    pub from: Duration,
    /// Latest delay after readiness.
    pub to: Duration,
}

/// `random:A..B`, with `A <= B`.
pub fn kill_window(text: &str) -> Result<KillWindow, String> {
    let range = text
        .strip_prefix("random:")
        .ok_or_else(|| format!("{text:?}: expected random:A..B, e.g. random:0ms..2s"))?;
    let (a, b) = range
        .split_once("..")
        .ok_or_else(|| format!("{text:?}: expected random:A..B, e.g. random:0ms..2s"))?;
    let (from, to) = (duration(a)?, duration(b)?);
    if from > to {
        return Err(format!("{text:?}: the window ends before it starts"));
    }
    Ok(KillWindow { from, to })
}

/// A repetition count: 1 or more.
pub fn repeat(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?}: expected a count of 1 or more")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1.1s"), Ok(Duration::from_millis(1100)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "5", "s", "1.2.3s", ".5s", "5 parsecs", "-1s", "2h"] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(positive_duration("0ms").is_err());
    }

    #[test]
    fn plan_tokens_round_trip_through_the_library_names() {
        for plan in KillPlan::all(Duration::from_millis(1500)) {
            assert_eq!(kill_plan(&plan.name()).unwrap(), plan);
        }
        for plan in [
            KillPlan::parent_death(),
            KillPlan::container_stop(Duration::from_millis(2500)),
        ] {
            assert_eq!(kill_plan(&plan.name()).unwrap(), plan);
        }
        assert_eq!(
            kill_plan("docker-stop").unwrap(),
            KillPlan::container_stop(Duration::from_secs(10))
        );
        assert!(kill_plan("docker-stop=0s").is_err());
        for plan in [
            KillPlan::own_exit(),
            KillPlan::close_stdin(),
            KillPlan::close_stdin_then_sigkill(Duration::from_millis(1500)),
        ] {
            assert_eq!(kill_plan(&plan.name()).unwrap(), plan);
        }
        assert_eq!(kill_plan("none"), Ok(KillPlan::own_exit()));
        assert!(kill_plan("close-stdin-then-kill=0s").is_err());
        assert!(kill_plan("sigstop").is_err());
        assert!(kill_plan("term-then-kill=0s").is_err());
    }

    #[test]
    fn readiness_conditions() {
        assert_eq!(ready("port:3000"), Ok(Ready::port(3000)));
        assert_eq!(ready("line:ready"), Ok(Ready::stdout_line("ready")));
        assert_eq!(ready("line:a:b"), Ok(Ready::stdout_line("a:b")));
        assert_eq!(ready("file:/tmp/x"), Ok(Ready::file("/tmp/x")));
        assert_eq!(ready("after:2s"), Ok(Ready::after(Duration::from_secs(2))));
        for bad in ["port:0", "port:x", "line:", "ready", "socket:1"] {
            assert!(ready(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn kill_windows() {
        assert_eq!(
            kill_window("random:100ms..2s"),
            Ok(KillWindow {
                from: Duration::from_millis(100),
                to: Duration::from_secs(2)
            })
        );
        assert!(kill_window("random:2s..1s").is_err());
        assert!(kill_window("100ms..2s").is_err());
    }
}
