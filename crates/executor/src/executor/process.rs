//! The local runtime: one `sh -c <program>` per task, in its own process
//! group so that the whole group can be signalled. stdin is an unlinked
//! scratch file (a program that ignores its input never blocks on it);
//! stdout and stderr are pipes, each drained by a reader thread that counts
//! and hashes every byte, keeps a tail, copies the bytes to the task's
//! output file (with `output_dir`) and hands whole, prefixed lines to the
//! live output (see `crate::output`).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::output::{LiveOutput, OutputDigest, OutputStream, escape_for_terminal, hex};
use crate::workflow::{Agent, Runtime};

/// The error a docker-runtime task fails with.
pub(crate) const DOCKER_UNAVAILABLE: &str = "docker runtime not available here; use runtime: local";

/// How long, after a program exits, its output may still arrive (from a
/// process it left behind holding the pipe) before the output is closed.
const DRAIN: Duration = Duration::from_millis(500);

/// A line longer than this goes to the live output in pieces of this size
/// (each a line of its own), so a reader never holds more.
pub(crate) const LIVE_LINE_MAX: usize = 16 * 1024;

/// Bytes a reader thread reads at once.
const CHUNK: usize = 64 * 1024;

/// What to run for one task.
pub(crate) struct Launch<'a> {
    pub agent: &'a Agent,
    pub stdin: &'a str,
    pub env: Vec<(&'static str, String)>,
    /// Unique tag for scratch file names.
    pub tag: String,
    /// Put before each live line: `<team>/<task subject> | `.
    pub prefix: String,
    /// Where lines go as the program writes them.
    pub live: Option<Arc<dyn LiveOutput>>,
    /// Files to keep stdout and stderr in, in full (created, never overwritten).
    pub files: Option<[PathBuf; 2]>,
    /// How many bytes of each stream to keep as its tail.
    pub tail_bytes: usize,
}

/// A started task program.
pub(crate) struct Spawned {
    child: Child,
    pgid: i32,
    /// stdout, stderr.
    readers: [Reader; 2],
    /// Set once the program has exited (its output may still be draining).
    exit: Option<(Exit, Instant)>,
    killed: bool,
    pub started: Instant,
}

/// How a task program ended.
#[derive(Clone, Copy)]
pub(crate) struct Exit {
    pub status: ExitStatus,
    pub duration: Duration,
}

/// One stream's reader thread and what it has gathered.
struct Reader {
    capture: Arc<Mutex<Capture>>,
    thread: JoinHandle<()>,
}

/// Everything about one stream but the bytes themselves (beyond its tail).
struct Capture {
    bytes: u64,
    hasher: Sha256,
    tail: VecDeque<u8>,
    tail_max: usize,
    file: Option<File>,
    path: Option<PathBuf>,
    file_error: Option<String>,
    /// The task has been settled: nothing more is taken.
    closed: bool,
}

impl Capture {
    fn take(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.hasher.update(chunk);
        if chunk.len() >= self.tail_max {
            self.tail.clear();
            self.tail.extend(&chunk[chunk.len() - self.tail_max..]);
        } else {
            self.tail.extend(chunk);
            let over = self.tail.len().saturating_sub(self.tail_max);
            self.tail.drain(..over);
        }
        if let Some(f) = &mut self.file
            && let Err(e) = f.write_all(chunk)
        {
            self.file_error = Some(format!(
                "writing {} failed, the file is incomplete: {e}",
                self.path.as_deref().unwrap_or(Path::new("?")).display()
            ));
            self.file = None;
        }
    }

    /// Close: no more bytes; the digest of what came.
    fn close(&mut self) -> OutputDigest {
        self.closed = true;
        self.file = None;
        OutputDigest {
            bytes: self.bytes,
            sha256: hex(&self.hasher.clone().finalize()),
            path: self.path.clone(),
            file_error: self.file_error.clone(),
        }
    }
}

fn lock(c: &Mutex<Capture>) -> MutexGuard<'_, Capture> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// Split `chunk` into lines after what is `pending` from earlier chunks,
/// appending each whole line to `out` as `prefix line \n`, the line's
/// control characters escaped ([`escape_for_terminal`]); a partial line
/// stays pending (cut at [`LIVE_LINE_MAX`]).
pub(crate) fn feed_lines(pending: &mut Vec<u8>, chunk: &[u8], prefix: &[u8], out: &mut Vec<u8>) {
    let mut rest = chunk;
    while let Some(i) = rest.iter().position(|b| *b == b'\n') {
        pending.extend_from_slice(&rest[..i]);
        live_line(prefix, pending, out);
        pending.clear();
        rest = &rest[i + 1..];
    }
    pending.extend_from_slice(rest);
    while pending.len() >= LIVE_LINE_MAX {
        live_line(prefix, &pending[..LIVE_LINE_MAX], out);
        pending.drain(..LIVE_LINE_MAX);
    }
}

/// `prefix`, then `line` escaped for the terminal, then `\n`, onto `out`.
pub(crate) fn live_line(prefix: &[u8], line: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    escape_for_terminal(line, out);
    out.push(b'\n');
}

/// The reader thread of one stream.
fn drain(
    mut pipe: impl Read,
    capture: &Mutex<Capture>,
    stream: OutputStream,
    prefix: &[u8],
    live: Option<&dyn LiveOutput>,
) {
    let mut buf = vec![0; CHUNK];
    let mut pending = Vec::new();
    let mut out = Vec::new();
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        {
            let mut c = lock(capture);
            if c.closed {
                return;
            }
            c.take(&buf[..n]);
        }
        if let Some(live) = live {
            out.clear();
            feed_lines(&mut pending, &buf[..n], prefix, &mut out);
            if !out.is_empty() {
                live.write_lines(stream, &out);
            }
        }
    }
    if let Some(live) = live
        && !pending.is_empty()
    {
        out.clear();
        live_line(prefix, &pending, &mut out);
        live.write_lines(stream, &out);
    }
}

/// Start the program, or say clearly why it cannot start.
pub(crate) fn spawn(l: &Launch) -> Result<Spawned, String> {
    if l.agent.runtime == Runtime::Docker {
        return Err(DOCKER_UNAVAILABLE.to_string());
    }
    let dir = Path::new(&l.agent.working_dir);
    if !dir.is_dir() {
        return Err(format!(
            "working_dir \"{}\" of agent `{}` does not exist or is not a directory; create it or \
             change the agent's working_dir",
            l.agent.working_dir, l.agent.name
        ));
    }
    let mut stdin = scratch_file(&format!("{}-in", l.tag))
        .map_err(|e| format!("cannot create a scratch file in the temp directory: {e}"))?;
    stdin
        .write_all(l.stdin.as_bytes())
        .and_then(|()| stdin.seek(SeekFrom::Start(0)).map(drop))
        .map_err(|e| format!("cannot write the task description to a scratch file: {e}"))?;
    let mut files = [None, None];
    if let Some(paths) = &l.files {
        for (slot, path) in files.iter_mut().zip(paths) {
            *slot = Some(output_file(path)?);
        }
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&l.agent.program)
        .current_dir(dir)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in &l.env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {}`: {e}", l.agent.program))?;
    let started = Instant::now();
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout is piped")),
        Box::new(child.stderr.take().expect("stderr is piped")),
    ];
    let streams = [OutputStream::Stdout, OutputStream::Stderr];
    let mut readers = Vec::with_capacity(2);
    for ((pipe, stream), file) in pipes.into_iter().zip(streams).zip(files) {
        let capture = Arc::new(Mutex::new(Capture {
            bytes: 0,
            hasher: Sha256::new(),
            tail: VecDeque::new(),
            tail_max: l.tail_bytes,
            file,
            path: l.files.as_ref().map(|p| p[readers.len()].clone()),
            file_error: None,
            closed: false,
        }));
        let shared = Arc::clone(&capture);
        let prefix = l.prefix.clone().into_bytes();
        let live = l.live.clone();
        let thread = std::thread::Builder::new()
            .name(format!("chainsink-{}-{}", l.tag, stream.as_str()))
            .spawn(move || drain(pipe, &shared, stream, &prefix, live.as_deref()));
        match thread {
            Ok(thread) => readers.push(Reader { capture, thread }),
            Err(e) => {
                signal(pgid, libc::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "cannot start a thread to read the program's output: {e}"
                ));
            }
        }
    }
    let readers: [Reader; 2] = match readers.try_into() {
        Ok(r) => r,
        Err(_) => unreachable!("two streams, two readers"),
    };
    Ok(Spawned {
        child,
        pgid,
        readers,
        exit: None,
        killed: false,
        started,
    })
}

/// Create a task's output file (its directory too); never overwrite one.
fn output_file(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the output directory {}: {e}", dir.display()))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create the output file {}: {e}", path.display()))
}

fn signal(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // it has no memory-safety preconditions.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

impl Spawned {
    /// The exit, once the program has ended and its output has been read
    /// to the end (or [`DRAIN`] has passed since it ended). Never blocks.
    /// `stopping`: the run is stopping, so what the program left running in
    /// its group is killed rather than waited for.
    pub(crate) fn try_wait(&mut self, stopping: bool) -> io::Result<Option<Exit>> {
        if self.exit.is_none() {
            match self.child.try_wait()? {
                Some(status) => {
                    let exit = Exit {
                        status,
                        duration: self.started.elapsed(),
                    };
                    self.exit = Some((exit, Instant::now()));
                }
                None => return Ok(None),
            }
        }
        let Some((exit, at)) = self.exit else {
            return Ok(None);
        };
        if stopping && !self.killed {
            self.killed = true;
            self.signal_group(libc::SIGKILL);
        }
        let drained = self.readers.iter().all(|r| r.thread.is_finished());
        Ok((drained || at.elapsed() >= DRAIN).then_some(exit))
    }

    /// Send `sig` to the program's whole process group.
    pub(crate) fn signal_group(&self, sig: i32) {
        signal(self.pgid, sig);
    }

    /// Stop taking output; the digests of stdout and stderr.
    pub(crate) fn close_output(&mut self) -> [OutputDigest; 2] {
        let [o, e] = &self.readers;
        [lock(&o.capture).close(), lock(&e.capture).close()]
    }

    /// The last `tail_bytes` bytes of stdout and stderr, as text.
    pub(crate) fn tails(&self) -> (String, String) {
        let [o, e] = &self.readers;
        let text = |c: &Mutex<Capture>| {
            let c = lock(c);
            let (a, b) = c.tail.as_slices();
            tail_text(&[a, b].concat(), c.bytes > c.tail.len() as u64)
        };
        (text(&o.capture), text(&e.capture))
    }
}

/// A human description of a non-zero exit.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(127), _) => {
            "exited with code 127: command not found; check the agent's program".to_string()
        }
        (Some(126), _) => {
            "exited with code 126: command not executable; check the agent's program".to_string()
        }
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "ended abnormally".to_string(),
    }
}

/// A tail as text: invalid UTF-8 replaced, and, when `cut` (bytes before
/// it were dropped), the UTF-8 continuation bytes the cut left dropped.
fn tail_text(buf: &[u8], cut: bool) -> String {
    let skip = if cut {
        buf.iter().take_while(|b| (**b & 0xC0) == 0x80).count()
    } else {
        0
    };
    String::from_utf8_lossy(&buf[skip..]).into_owned()
}

/// A new, already-unlinked read/write file in the temp directory.
fn scratch_file(tag: &str) -> io::Result<File> {
    let dir = std::env::temp_dir();
    let mut last = None;
    for attempt in 0..16 {
        let path = dir.join(format!(".chainsink-{}-{tag}-{attempt}", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free scratch file name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(tail_max: usize) -> Capture {
        Capture {
            bytes: 0,
            hasher: Sha256::new(),
            tail: VecDeque::new(),
            tail_max,
            file: None,
            path: None,
            file_error: None,
            closed: false,
        }
    }

    #[test]
    fn tail_keeps_the_end_and_a_char_boundary() {
        let text = |c: &Capture| {
            let (a, b) = c.tail.as_slices();
            tail_text(&[a, b].concat(), c.bytes > c.tail.len() as u64)
        };
        let mut small = capture(4);
        let mut big = capture(1000);
        for _ in 0..10 {
            small.take("aé".as_bytes());
            big.take("aé".as_bytes());
        }
        // "é" is 2 bytes: the last 4 bytes are [é-cont, a, é0, é1] -> "aé".
        assert_eq!(text(&small), "aé");
        assert_eq!(text(&big), "aé".repeat(10));
        assert_eq!(small.bytes, 30);
        let mut one = capture(4);
        one.take(&[b'x'; 9]);
        assert_eq!(text(&one), "xxxx");
    }

    #[test]
    fn lines_are_whole_and_prefixed() {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        feed_lines(&mut pending, b"hel", b"p | ", &mut out);
        assert!(out.is_empty());
        feed_lines(&mut pending, b"lo\nwor", b"p | ", &mut out);
        assert_eq!(out, b"p | hello\n");
        out.clear();
        feed_lines(&mut pending, b"ld\n\nx", b"p | ", &mut out);
        assert_eq!(out, b"p | world\np | \n");
        assert_eq!(pending, b"x");
        out.clear();
        feed_lines(&mut pending, &vec![b'y'; LIVE_LINE_MAX], b"p | ", &mut out);
        assert_eq!(out.len(), 4 + LIVE_LINE_MAX + 1);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn live_lines_have_their_control_characters_escaped() {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        feed_lines(&mut pending, b"\x1b[2J\rfake\x07\t", b"p | ", &mut out);
        feed_lines(&mut pending, b"ok\r\n\x1b]0;t", b"p | ", &mut out);
        assert_eq!(out, b"p | \\u{1b}[2J\\rfake\\u{7}\tok\\r\n");
        assert_eq!(pending, b"\x1b]0;t");
    }

    #[test]
    fn exit_descriptions() {
        assert!(describe_exit(ExitStatus::from_raw(127 << 8)).contains("command not found"));
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with code 3"
        );
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
