//! How the page spells times, escapes and command lines.

use crate::diagnosis::Escape;
use crate::report::truncate;

/// `+12.5ms`, `+1.25s`: a moment since the start.
pub(super) fn at(ms: f64) -> String {
    format!("+{}", duration(ms))
}

/// `0.04ms`, `12.5ms`, `250ms`, `1.25s`, `2s`.
pub(super) fn duration(ms: f64) -> String {
    if ms >= 1000.0 {
        let s = format!("{:.2}", ms / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 1.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// A duration counted in whole milliseconds: `0` is "under 1ms".
pub(super) fn whole_ms(ms: u64) -> String {
    if ms == 0 {
        "under 1ms".into()
    } else {
        duration(ms as f64)
    }
}

/// The name of an escape, for a tag beside the row: its description up to the colon
/// (`shell=True`, `new session`), or when it has none and is long, its kind in words
/// (`parent survived`).
pub(super) fn escape_name(escape: &Escape) -> String {
    let description = escape.to_string();
    if let Some((name, _)) = description.split_once(": ") {
        return truncate(name, 32);
    }
    if description.chars().count() <= 28 {
        return description;
    }
    serde_json::to_value(escape)
        .ok()
        .and_then(|v| {
            v.get("kind")
                .and_then(|k| k.as_str())
                .map(|k| k.replace('_', " "))
        })
        .unwrap_or_else(|| truncate(&description, 28))
}

/// A command line for a row: paths cut to their file names.
pub(super) fn short_command(command: &str) -> String {
    command
        .split_whitespace()
        .map(|word| {
            let quote = word.starts_with('\'') || word.starts_with('"');
            let bare = word.trim_start_matches(['\'', '"']);
            let path_like = bare.contains('/')
                && !bare.ends_with('/')
                && !bare.starts_with('-')
                && bare
                    .chars()
                    .all(|c| c.is_alphanumeric() || "/._-+@~:'\"".contains(c));
            if path_like {
                let name = bare.rsplit('/').next().unwrap_or(bare);
                if quote {
                    format!("{}{name}", &word[..1])
                } else {
                    name.to_string()
                }
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_names_are_short() {
        assert_eq!(
            escape_name(&Escape::ShellTrue { shell_pid: 3 }),
            "shell=True"
        );
        assert_eq!(
            escape_name(&Escape::SignalIgnored {
                signal: crate::signal::Signal::Term
            }),
            "SIGTERM ignored (SigIgn)"
        );
        assert_eq!(
            escape_name(&Escape::ParentSurvived { parent: 12345 }),
            "parent survived"
        );
    }
}
