//! HTML escaping: every text that comes from the run goes through [`esc`].

/// Escapes text for HTML content and attribute values. Control characters (an agent's
/// colour codes, a NUL) become their visible pictures (`␛`), which HTML can carry.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            '\u{7f}' => out.push('\u{2421}'),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("\u{1b}[31mred\u{0}\u{7f}"), "␛[31mred␀␡");
        assert_eq!(esc("tab\tand\nnewline"), "tab\tand\nnewline");
        assert_eq!(esc("plain ünïcode …"), "plain ünïcode …");
    }
}
