//! The local runtime: one `sh -c <program>` per task, in its own process
//! group so that the whole group can be signalled. stdin, stdout and stderr
//! are unlinked scratch files, so a program that ignores its input or writes
//! a lot never blocks on a pipe, and nothing is left behind on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::workflow::{Agent, Runtime};

/// The error a docker-runtime task fails with.
pub(crate) const DOCKER_UNAVAILABLE: &str = "docker runtime not available here; use runtime: local";

/// What to run for one task.
pub(crate) struct Launch<'a> {
    pub agent: &'a Agent,
    pub stdin: &'a str,
    pub env: Vec<(&'static str, String)>,
    /// Unique tag for scratch file names.
    pub tag: String,
}

/// A started task program.
pub(crate) struct Spawned {
    child: Child,
    pgid: i32,
    stdout: File,
    stderr: File,
    pub started: Instant,
}

/// How a task program ended.
pub(crate) struct Exit {
    pub status: ExitStatus,
    pub duration: Duration,
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
    let scratch = |kind: &str| {
        scratch_file(&format!("{}-{kind}", l.tag))
            .map_err(|e| format!("cannot create a scratch file in the temp directory: {e}"))
    };
    let mut stdin = scratch("in")?;
    stdin
        .write_all(l.stdin.as_bytes())
        .and_then(|()| stdin.seek(SeekFrom::Start(0)).map(drop))
        .map_err(|e| format!("cannot write the task description to a scratch file: {e}"))?;
    let stdout = scratch("out")?;
    let stderr = scratch("err")?;
    let dup = |f: &File| {
        f.try_clone()
            .map_err(|e| format!("cannot duplicate a scratch file handle: {e}"))
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&l.agent.program)
        .current_dir(dir)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(dup(&stdout)?))
        .stderr(Stdio::from(dup(&stderr)?))
        .process_group(0);
    for (k, v) in &l.env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {}`: {e}", l.agent.program))?;
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    Ok(Spawned {
        child,
        pgid,
        stdout,
        stderr,
        started: Instant::now(),
    })
}

impl Spawned {
    /// The exit, if the program has ended (never blocks).
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        Ok(self.child.try_wait()?.map(|status| Exit {
            status,
            duration: self.started.elapsed(),
        }))
    }

    /// Send `sig` to the program's whole process group.
    pub(crate) fn signal_group(&self, sig: i32) {
        if self.pgid > 0 {
            // SAFETY: kill(2) with a negative pid signals that process group;
            // it has no memory-safety preconditions.
            unsafe {
                libc::kill(-self.pgid, sig);
            }
        }
    }

    /// The last `max` bytes of stdout and stderr.
    pub(crate) fn tails(&mut self, max: usize) -> (String, String) {
        (tail(&mut self.stdout, max), tail(&mut self.stderr, max))
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

/// The last `max` bytes of a file as text (cut at a character boundary).
fn tail(f: &mut File, max: usize) -> String {
    let read = |f: &mut File| -> io::Result<Vec<u8>> {
        let len = f.metadata()?.len();
        let start = len.saturating_sub(max as u64);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(max as u64).read_to_end(&mut buf)?;
        // Drop UTF-8 continuation bytes left by the cut.
        let skip = if start > 0 {
            buf.iter().take_while(|b| (**b & 0xC0) == 0x80).count()
        } else {
            0
        };
        buf.drain(..skip.min(buf.len()));
        Ok(buf)
    };
    match read(f) {
        Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
        Err(e) => format!("(output unavailable: {e})"),
    }
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

    #[test]
    fn tail_keeps_the_end_and_a_char_boundary() {
        let mut f = scratch_file("unit-tail").unwrap();
        f.write_all("aé".repeat(10).as_bytes()).unwrap();
        let t = tail(&mut f, 4);
        // "é" is 2 bytes: the last 4 bytes are [é-cont, a, é0, é1] -> "aé".
        assert_eq!(t, "aé");
        assert_eq!(tail(&mut f, 1000), "aé".repeat(10));
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
