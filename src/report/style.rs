//! The styles of the text report's status words, applied as the text is written: only
//! the words the report writes itself are styled, never the agent's output, a command
//! line or a path that happens to contain the same word.

use anstyle::{AnsiColor, Color, Style};

/// What failed: bold red.
const BAD: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)));
/// Clean: bold green.
const GOOD: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Green)));

/// Whether the status words get colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Palette {
    /// No escape codes at all: the text as `Display` writes it.
    Plain,
    /// ANSI colour on the status words.
    Colour,
}

impl Palette {
    /// `word` styled for its meaning, then padded with spaces to `width` characters
    /// (the padding is never styled, so the columns line up either way).
    pub(super) fn word(self, word: &str, width: usize) -> String {
        let style = match (self, word) {
            (Palette::Plain, _) => Style::new(),
            (_, "CLEAN") => GOOD,
            (_, "LEAK" | "DID NOT FINISH" | "LOST TRACK" | "SURVIVED" | "ZOMBIE" | "PORT HELD") => {
                BAD
            }
            _ => Style::new(),
        };
        let pad = width.saturating_sub(word.chars().count());
        format!("{style}{word}{style:#}{:pad$}", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_colour_adds_escape_codes_and_padding_stays_outside_them() {
        assert_eq!(Palette::Plain.word("SURVIVED", 10), "SURVIVED  ");
        let red = Palette::Colour.word("SURVIVED", 10);
        assert!(red.starts_with('\u{1b}'), "{red:?}");
        assert!(red.ends_with("\u{1b}[0m  "), "{red:?}");
        assert_ne!(
            Palette::Colour.word("CLEAN", 0),
            Palette::Colour.word("LEAK", 0)
        );
        assert_eq!(Palette::Colour.word("EXITED", 8), "EXITED  ");
    }
}
