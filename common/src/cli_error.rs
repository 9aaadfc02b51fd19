//! Usage errors as one line: the command-line parser's message (and its
//! tip, if any) without the usage block, so scripts and people see exactly
//! what was wrong.

/// Condenses a rendered clap error to one line, e.g.
/// `unexpected argument '--bogus' found (tip: a similar argument exists: '--listen')`.
pub fn one_line(rendered: &str) -> String {
    let mut paragraphs = rendered
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty());
    let first = paragraphs.next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(&first).to_string();
    let tips: Vec<String> = paragraphs.filter(|p| p.starts_with("tip:")).collect();
    if tips.is_empty() {
        first
    } else {
        format!("{first} ({})", tips.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn keeps_message_and_tip_drops_usage() {
        let r = "error: unexpected argument '--lisen' found\n\n  tip: a similar argument exists: '--listen'\n\nUsage: stun-server --listen <ADDR:PORT>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(r),
            "unexpected argument '--lisen' found (tip: a similar argument exists: '--listen')"
        );
        let r = "error: the following required arguments were not provided:\n  <stun:HOST:PORT>\n\nUsage: ice-probe bench <stun:HOST:PORT>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(r),
            "the following required arguments were not provided: <stun:HOST:PORT>"
        );
    }
}
