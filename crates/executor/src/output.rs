//! What tasks print: streamed live, line by line, each line prefixed with
//! the task's name; kept in full under `--output-dir`; summarised (byte
//! count and SHA-256) in the task's audit event.
//!
//! Each task's stdout and stderr are pipes drained by one reader thread
//! each, so a task that writes a lot never blocks on a full pipe (only on
//! a live destination slower than it, as with `docker compose`). A reader
//! hands the live destination whole lines only, so lines of different tasks
//! never interleave mid-line.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Which of a task's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// The task's stdout.
    Stdout,
    /// The task's stderr.
    Stderr,
}

impl OutputStream {
    /// `stdout` or `stderr` (also the output files' extension).
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// Where task output goes while tasks run.
pub trait LiveOutput: Send + Sync + fmt::Debug {
    /// Write `lines`: one or more complete lines, each already prefixed
    /// with `<team>/<task subject> | ` and ending in `\n`. Must write them
    /// in one piece with respect to other calls (lines must not interleave).
    /// Errors are the implementation's to swallow.
    fn write_lines(&self, stream: OutputStream, lines: &[u8]);
}

/// The process's own stdout and stderr (task stdout to stdout, task stderr
/// to stderr), one lock for both so that lines never interleave mid-line
/// even when both are the same terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalOutput;

/// Serialises every [`TerminalOutput`] write in the process.
static TERMINAL: Mutex<()> = Mutex::new(());

impl LiveOutput for TerminalOutput {
    fn write_lines(&self, stream: OutputStream, lines: &[u8]) {
        let _guard = TERMINAL.lock().unwrap_or_else(|e| e.into_inner());
        // A closed terminal (EPIPE) must not stop the run: errors are dropped.
        let _ = match stream {
            OutputStream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(lines).and_then(|()| out.flush())
            }
            OutputStream::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(lines).and_then(|()| err.flush())
            }
        };
    }
}

/// Appends `bytes` (what a task printed, one line without its `\n`) to
/// `out` made safe for a terminal: control characters (C0 but `\t`, DEL,
/// C1), line and paragraph separators and the bidirectional controls are
/// written as Rust escapes (`\u{1b}`, `\r`), bytes that are not UTF-8 as
/// `\xNN`. So a task cannot move the cursor, retitle the window, ring the
/// bell, recolour the screen or overwrite a line's `<team>/<task> | `
/// prefix to forge a line of chainsink's own. The output files and the
/// hashes keep the raw bytes.
pub fn escape_for_terminal(bytes: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\t' || !needs_escape(c) {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            } else {
                let _ = write!(out, "{}", c.escape_default());
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// [`escape_for_terminal`] of a string (names from a workflow file, an
/// error message, a stderr line), as a string.
pub fn escaped(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    escape_for_terminal(text.as_bytes(), &mut out);
    String::from_utf8(out).expect("escapes are ASCII and the rest was UTF-8")
}

/// Whether a terminal could act on `c` rather than show it.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// How much one of a task's streams held: what its audit event records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDigest {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of those bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// The file that holds them in full (with `output_dir`).
    pub path: Option<PathBuf>,
    /// Why the file is incomplete, if it is (the count and hash still cover
    /// every byte the task wrote).
    pub file_error: Option<String>,
}

/// A file-name-safe form of `name`: ASCII letters, digits, `.`, `_` and
/// `-` kept, anything else `_`, never starting with a dot.
pub(crate) fn file_safe(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("audit-team"), "audit-team");
        assert_eq!(file_safe("a/b c"), "a_b_c");
        assert_eq!(file_safe(".."), "_..");
        assert_eq!(file_safe(""), "_");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        let mut out = Vec::new();
        escape_for_terminal(
            b"\x1b[2J\x1b]0;owned\x07\rchainsink: error\x08\tok \xe2\x80\xae \xc2\x9b \xff \xc3\xa9\x7f",
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\rchainsink: error\\u{8}\tok \\u{202e} \\u{9b} \\xff \u{e9}\\u{7f}"
        );
        assert_eq!(escaped("team/\u{1b}[31mred"), "team/\\u{1b}[31mred");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
    }
}
