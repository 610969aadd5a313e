//! What the CLI does when auditing fails, in one place: the audit policy
//! (fail-closed stops, fail-open goes on loudly degraded) and how an error
//! becomes the one line a user reads.

use std::fmt::Display;

use chainsink_executor::AuditPolicy;

/// What to do after the audit sink (or its runtime) failed to start.
pub(crate) enum OnFailure {
    /// Fail-closed: do not run; the line has been printed.
    Stop,
    /// Fail-open: run unaudited, with this reason on every event.
    Degrade(String),
}

/// Applies `policy` to a failure to start auditing `subject` (such as
/// `workflow "deploy"`), printing one line that says what happened and what
/// follows. The error's own text carries the advice that fits it.
pub(crate) fn start_failed(policy: AuditPolicy, subject: &str, error: &dyn Display) -> OnFailure {
    let error = one_line_text(&error.to_string());
    match policy {
        AuditPolicy::FailClosed => {
            eprintln!(
                "chainsink: error: {error}; {subject} was NOT started (--audit-policy fail-closed)"
            );
            OnFailure::Stop
        }
        AuditPolicy::FailOpen => {
            eprintln!(
                "chainsink: AUDITING DEGRADED: {error}; running {subject} anyway, NOT audited \
                 (--audit-policy fail-open)"
            );
            OnFailure::Degrade(error)
        }
    }
}

/// `e` and its causes as one line: each cause once (a cause whose text is
/// already in the line is not repeated), newlines folded.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    one_line_text(&line)
}

/// `text` with its line breaks folded: after a colon into a space, else
/// into `; `.
fn one_line_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(io)
            .context("cannot read sink component /x.wasm: No such file or directory");
        assert_eq!(
            one_line(&e),
            "cannot read sink component /x.wasm: No such file or directory"
        );
    }

    #[test]
    fn lines_are_folded() {
        let e = anyhow::anyhow!("sink x does not fit:\n  - a\n  - b");
        assert_eq!(one_line(&e), "sink x does not fit: - a; - b");
    }
}
