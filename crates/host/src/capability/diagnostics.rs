//! The `diagnostics` capability: a sink's own log lines, for the operator.
//!
//! A diagnostic is data from an untrusted sink, never terminal output: every
//! line is escaped (control characters and newlines shown as `\n`, `\u{1b}`,
//! so it can never start a line of its own or drive the terminal), cut to
//! [`MAX_DIAGNOSTIC`] bytes, tagged with the sink's name, and rate-limited to
//! [`DIAGNOSTICS_PER_SECOND`] lines a second. Lines over the limit are
//! counted, and the count is reported in a closing line
//! ("N diagnostic line(s) from SINK dropped"), so none vanishes silently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::{v0_1, v0_2};

/// How important a line is (the same four levels in every WIT version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Diagnostic lines one instance may write per second; more are counted and
/// dropped (a sink must not be able to flood the host's stderr).
pub const DIAGNOSTICS_PER_SECOND: u32 = 100;

/// Longest diagnostic line kept, in bytes; longer ones are cut.
pub const MAX_DIAGNOSTIC: usize = 4096;

/// The `diagnostics` capability of one sink instance.
pub(crate) struct DiagnosticsCtx {
    /// The sink's name, on every line.
    name: Arc<str>,
    /// The last error-level diagnostic of the current call (a panic
    /// message, usually), kept even when rate-limited: it explains a trap.
    /// It is held back, not printed: a trap report carries it, so printing
    /// it too would say the error twice. [`DiagnosticsCtx::release`] prints
    /// it when the call ends without a trap (and on drop), so it is never
    /// lost.
    pub(crate) last_error: Option<String>,
    /// Whether the held error was within the rate limit.
    held_shown: bool,
    /// Start of the current one-second window.
    window: Instant,
    /// Lines written in the current window.
    used: u32,
    /// Lines dropped and not yet reported.
    dropped: u64,
}

impl DiagnosticsCtx {
    /// The capability for the sink called `name`.
    pub(crate) fn new(name: Arc<str>) -> DiagnosticsCtx {
        DiagnosticsCtx {
            name,
            last_error: None,
            held_shown: false,
            window: Instant::now(),
            used: 0,
            dropped: 0,
        }
    }

    /// Whether another line may be written now; reports the lines dropped in
    /// the window that just ended.
    fn allowed(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.report_dropped();
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used < DIAGNOSTICS_PER_SECOND {
            self.used += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Writes the closing "N lines dropped" line, if any were.
    fn report_dropped(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                "{} diagnostic line(s) from sink {} dropped: more than {DIAGNOSTICS_PER_SECOND} a second",
                self.dropped,
                self.name
            );
            self.dropped = 0;
        }
    }
}

impl DiagnosticsCtx {
    /// The instance is done: prints a held error (never lost) and says how
    /// many lines the rate limit dropped. At `close`, so nothing waits for
    /// the instance to be dropped (a one-shot process may exit without).
    pub(crate) fn finish(&mut self) {
        self.release();
        self.report_dropped();
    }
}

impl Drop for DiagnosticsCtx {
    /// As [`DiagnosticsCtx::finish`], for an instance dropped without it.
    fn drop(&mut self) {
        self.finish();
    }
}

/// `message` as one safe line: control characters escaped, cut to
/// [`MAX_DIAGNOSTIC`] bytes.
pub fn escape(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_DIAGNOSTIC) + 8);
    for c in message.chars() {
        if out.len() >= MAX_DIAGNOSTIC {
            out.push_str("...");
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The same capability under each WIT version's name.
macro_rules! diagnostics_host {
    ($($version:ident),*) => {$(
        impl $version::chainsink::audit::diagnostics::Host for DiagnosticsCtx {
            fn log(&mut self, level: $version::chainsink::audit::diagnostics::Level, message: String) {
                use $version::chainsink::audit::diagnostics::Level as L;
                let level = match level {
                    L::Debug => Level::Debug,
                    L::Info => Level::Info,
                    L::Warn => Level::Warn,
                    L::Error => Level::Error,
                };
                self.write(level, message)
            }
        }
    )*};
}

diagnostics_host!(v0_1, v0_2);

impl DiagnosticsCtx {
    /// One line from the sink: escaped, counted, tagged with its name.
    fn write(&mut self, level: Level, message: String) {
        let message = escape(&message);
        let shown = self.allowed();
        if matches!(level, Level::Error) {
            // Hold it: the call may trap, and the trap report carries it.
            self.release();
            self.last_error = Some(message);
            self.held_shown = shown;
            return;
        }
        if shown {
            self.print(level, &message);
        }
    }

    /// Prints the held error-level diagnostic, if any: the call it came from
    /// ended without a trap report to carry it.
    pub(crate) fn release(&mut self) {
        if let Some(message) = self.last_error.take()
            && std::mem::take(&mut self.held_shown)
        {
            self.print(Level::Error, &message);
        }
    }

    /// One escaped line through tracing, tagged with the sink's name.
    fn print(&self, level: Level, message: &str) {
        let sink = &*self.name;
        match level {
            Level::Debug => tracing::debug!("sink {sink}: {message}"),
            Level::Info => tracing::info!("sink {sink}: {message}"),
            Level::Warn => tracing::warn!("sink {sink}: {message}"),
            Level::Error => tracing::error!("sink {sink}: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_cannot_start_a_line_or_drive_the_terminal() {
        let forged = "ok\nchainsink: dry run of \"forged\" COMPLETED\r\x1b[2K";
        let line = escape(forged);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\x1b'));
        assert_eq!(
            line,
            "ok\\nchainsink: dry run of \"forged\" COMPLETED\\r\\u{1b}[2K"
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let line = escape(&"é".repeat(MAX_DIAGNOSTIC));
        assert!(line.len() <= MAX_DIAGNOSTIC + 4, "{}", line.len());
        assert!(line.ends_with("..."));
    }

    #[test]
    fn an_error_is_held_for_the_trap_report_and_released_otherwise() {
        let mut ctx = DiagnosticsCtx::new("s".into());
        ctx.write(Level::Error, "first".into());
        assert_eq!(ctx.last_error.as_deref(), Some("first"));
        // A second error releases the first (printed) and is held itself.
        ctx.write(Level::Error, "second\n".into());
        assert_eq!(ctx.last_error.as_deref(), Some("second\\n"));
        // A trap report takes it: nothing is left to print.
        assert_eq!(ctx.last_error.take().as_deref(), Some("second\\n"));
        ctx.write(Level::Error, "third".into());
        ctx.release();
        assert_eq!(ctx.last_error, None, "released when no trap carried it");
    }

    #[test]
    fn lines_over_the_rate_are_counted() {
        let mut ctx = DiagnosticsCtx::new("s".into());
        for _ in 0..DIAGNOSTICS_PER_SECOND {
            assert!(ctx.allowed());
        }
        assert!(!ctx.allowed());
        assert!(!ctx.allowed());
        assert_eq!(ctx.dropped, 2);
        ctx.report_dropped();
        assert_eq!(ctx.dropped, 0);
    }
}
