//! Reading a kill plan back from its name: the inverse of [`KillPlan::name`], shared by
//! the command line, the tests and anyone who keeps plans in a config file.

use std::str::FromStr;
use std::time::Duration;

use super::KillPlan;
use crate::signal::{Signal, Target};
use crate::time::parse_duration;

/// Why a plan name was refused; `Display` is a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParsePlanError(String);

/// The grace a bare `term-then-kill` or `close-stdin-then-kill` means.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// The grace a bare `docker-stop` means, as docker's own default.
const DOCKER_GRACE: Duration = Duration::from_secs(10);

/// Every signal a plan name can carry.
const SIGNALS: [Signal; 7] = [
    Signal::Hup,
    Signal::Int,
    Signal::Quit,
    Signal::Kill,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Term,
];

/// Reads what [`KillPlan::name`] writes: `sigkill`, `sigterm`, `term-then-kill=5s` (bare
/// `term-then-kill` means 5 s), `int-group`, `kill-group`, `hup-group`, `parent-death`,
/// `docker-stop=10s` (bare `docker-stop` means 10 s, as docker's default), the endings
/// `own-exit` (alias `none`), `close-stdin`, `close-stdin-then-kill=5s`, and any other
/// single signal as `sigquit` (to the agent) or `quit-group` (to its group).
///
/// ```
/// use std::time::Duration;
/// use orphan_check::KillPlan;
///
/// let plan: KillPlan = "term-then-kill=1.5s".parse().unwrap();
/// assert_eq!(plan, KillPlan::sigterm_then_sigkill(Duration::from_millis(1500)));
/// assert_eq!(plan.name().parse::<KillPlan>(), Ok(plan));
/// ```
impl FromStr for KillPlan {
    type Err = ParsePlanError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let plan = match text {
            "term-then-kill" => KillPlan::sigterm_then_sigkill(DEFAULT_GRACE),
            "parent-death" => KillPlan::parent_death(),
            "docker-stop" => KillPlan::container_stop(DOCKER_GRACE),
            "own-exit" | "none" => KillPlan::own_exit(),
            "close-stdin" => KillPlan::close_stdin(),
            "close-stdin-then-kill" => KillPlan::close_stdin_then_sigkill(DEFAULT_GRACE),
            _ => {
                if let Some(g) = text.strip_prefix("term-then-kill=") {
                    KillPlan::sigterm_then_sigkill(grace(g)?)
                } else if let Some(g) = text.strip_prefix("docker-stop=") {
                    KillPlan::container_stop(grace(g)?)
                } else if let Some(g) = text.strip_prefix("close-stdin-then-kill=") {
                    KillPlan::close_stdin_then_sigkill(grace(g)?)
                } else if let Some(plan) = single_signal(text) {
                    plan
                } else {
                    return Err(ParsePlanError(format!(
                        "unknown kill plan {text:?} (expected sigkill, sigterm, term-then-kill=5s, \
                         int-group, kill-group, hup-group, parent-death, docker-stop=10s, \
                         own-exit (or none), close-stdin or close-stdin-then-kill=5s)"
                    )));
                }
            }
        };
        Ok(plan)
    }
}

/// A grace period: a duration greater than zero.
fn grace(text: &str) -> Result<Duration, ParsePlanError> {
    let d = parse_duration(text).map_err(|e| ParsePlanError(format!("the grace {e}")))?;
    if d.is_zero() {
        return Err(ParsePlanError(format!(
            "the grace {text:?}: must be greater than zero"
        )));
    }
    Ok(d)
}

/// `sigquit` (one signal to the agent) or `quit-group` (to its process group).
fn single_signal(text: &str) -> Option<KillPlan> {
    SIGNALS.into_iter().find_map(|s| {
        let short = s.name().trim_start_matches("SIG").to_ascii_lowercase();
        if text == s.name().to_ascii_lowercase() {
            Some(KillPlan::signal(s, Target::Agent))
        } else if text.strip_suffix("-group") == Some(short.as_str()) {
            Some(KillPlan::signal(s, Target::Group))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_reads_back_from_its_name() {
        let grace = Duration::from_millis(1500);
        let mut plans: Vec<KillPlan> = KillPlan::all(grace).into();
        plans.extend([
            KillPlan::parent_death(),
            KillPlan::container_stop(Duration::from_secs(10)),
            KillPlan::container_stop(Duration::from_millis(2500)),
            KillPlan::own_exit(),
            KillPlan::close_stdin(),
            KillPlan::close_stdin_then_sigkill(Duration::from_secs(5)),
            KillPlan::close_stdin_then_sigkill(grace),
            KillPlan::sigterm_then_sigkill(Duration::from_millis(250)),
        ]);
        for s in SIGNALS {
            plans.push(KillPlan::signal(s, Target::Agent));
            plans.push(KillPlan::signal(s, Target::Group));
        }
        for plan in plans {
            assert_eq!(plan.name().parse::<KillPlan>(), Ok(plan), "{}", plan.name());
        }
    }

    #[test]
    fn bare_names_take_the_default_grace_and_bad_names_are_refused() {
        let parse = |t: &str| t.parse::<KillPlan>();
        assert_eq!(
            parse("docker-stop"),
            Ok(KillPlan::container_stop(DOCKER_GRACE))
        );
        assert_eq!(
            parse("term-then-kill"),
            Ok(KillPlan::sigterm_then_sigkill(DEFAULT_GRACE))
        );
        assert_eq!(parse("none"), Ok(KillPlan::own_exit()));
        for bad in [
            "docker-stop=0s",
            "close-stdin-then-kill=0s",
            "term-then-kill=0s",
            "term-then-kill=2h",
            "sigstop",
            "group",
            "-group",
            "SIGKILL",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
