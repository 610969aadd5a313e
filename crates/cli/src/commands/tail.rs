//! `chainsink tail`: the last records of a log, and with `-f` each record as
//! it is appended, checked as it arrives.
//!
//! Following waits on inotify (the log itself, and its directory for a
//! replacement), so an append is read as soon as it is written; a look
//! every [`SAFETY_NET`] anyway covers filesystems whose changes inotify
//! does not see (network filesystems written from another host). Without
//! inotify (no instances left) it polls every [`POLL`].

use std::collections::VecDeque;
use std::io::{self, IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

use chainsink_host::trail::{Entry, Trail, Verdict};

use super::show::{FilterArgs, Output, Printer, is_broken_pipe, verdict};

/// Without inotify: how often a followed log's size is read. 25 ms keeps
/// the delay from an append to its line far under 100 ms (one poll at
/// most, plus reading) for about 1% of a core while idle.
const POLL: Duration = Duration::from_millis(25);

/// With inotify: the longest wait without looking at the file anyway.
const SAFETY_NET: Duration = Duration::from_millis(100);

/// How long lines that are not records wait for the record that excuses
/// them (a `chain.recovered` or `chain.rejected` record) before they are
/// reported as breaking the chain. They are announced at once; an excusing
/// record that comes later still excuses them (and says so).
const SETTLE: Duration = Duration::from_millis(250);

/// Arguments of `chainsink tail`.
#[derive(Args)]
pub(crate) struct TailArgs {
    /// The log to read.
    log: PathBuf,
    /// Keep reading: print each record as it is appended (Ctrl-C stops).
    #[arg(short, long)]
    follow: bool,
    /// How many of the last records to print first.
    #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
    lines: usize,
    #[command(flatten)]
    filter: FilterArgs,
    /// Output format (default: short on a terminal, jsonl otherwise).
    #[arg(short = 'o', long, value_name = "FORMAT")]
    output: Option<Output>,
}

/// Prints the last records (and follows): exit 1 when the log did not verify.
pub(crate) fn tail(args: &TailArgs) -> Result<ExitCode> {
    if args.follow && args.output == Some(Output::Json) {
        bail!("tail -f cannot print one JSON array; use -o jsonl");
    }
    let read = || format!("cannot read {}", args.log.display());
    let open = || -> Result<Trail<std::fs::File>> {
        let trail = Trail::open(&args.log, args.filter.filter()?).with_context(read)?;
        Ok(if args.follow {
            trail.follow(SETTLE)
        } else {
            trail
        })
    };
    let mut trail = open()?;
    let mut wakeup = args.follow.then(|| Wakeup::new(&args.log));
    let stdout = io::stdout();
    let mut printer = Printer::new(args.output, stdout.is_terminal());
    let mut out = stdout.lock();
    let result = (|| -> Result<()> {
        // The whole log is read and checked; the last records are kept.
        let mut last: VecDeque<Entry> = VecDeque::with_capacity(args.lines.min(4096));
        while let Some(entry) = trail.poll_entry().with_context(read)? {
            if let Verdict::Retracted { record_line } = entry.verdict {
                // Not printed yet, so not to be taken back: a record among the last ones
                // becomes what it is (bytes the host refused); an older one is gone already.
                if let Some(at) = last
                    .iter()
                    .position(|e| e.line == entry.line && e.verdict == Verdict::Ok)
                {
                    last.remove(at);
                    last.push_back(Entry {
                        verdict: Verdict::Rejected { record_line },
                        ..entry
                    });
                }
                continue;
            }
            if args.lines > 0 {
                if last.len() == args.lines {
                    last.pop_front();
                }
                last.push_back(entry);
            }
        }
        printer.start(&mut out)?;
        for entry in &last {
            printer.entry(&mut out, entry)?;
        }
        out.flush()?;
        if !args.follow {
            printer.end(&mut out)?;
            return Ok(());
        }
        let mut removed = false;
        loop {
            match trail.poll_entry().with_context(read)? {
                Some(entry) => {
                    printer.entry(&mut out, &entry)?;
                    out.flush()?;
                }
                None => {
                    let change = look(&trail, &args.log).with_context(read)?;
                    if change == Change::Removed && !removed {
                        eprintln!(
                            "chainsink: !! {} was removed; still following the file that was \
                             there (a writer holding it open can still append)",
                            args.log.display()
                        );
                    }
                    removed = change == Change::Removed;
                    if let Change::Truncated { from, to } = change {
                        eprintln!(
                            "chainsink: !! {} SHRANK from {from} to {to} bytes while followed: it \
                             was truncated, which an audit log never is; following it again from \
                             its first byte, checked as a new chain",
                            args.log.display()
                        );
                    }
                    if change == Change::Replaced {
                        let r = trail.report();
                        eprintln!(
                            "chainsink: !! {} was REPLACED by another file while followed (the \
                             one followed ended at {} records, head {}); following the new file \
                             from its first byte, checked as a new chain",
                            args.log.display(),
                            r.records,
                            r.head.as_deref().unwrap_or("none")
                        );
                    }
                    if matches!(change, Change::Truncated { .. } | Change::Replaced) {
                        trail = open()?;
                        wakeup = Some(Wakeup::new(&args.log));
                        continue;
                    }
                    let wait = trail
                        .settle_deadline()
                        .map_or(SAFETY_NET, |d| d.saturating_duration_since(Instant::now()));
                    if let Some(w) = &mut wakeup {
                        w.wait(wait.min(SAFETY_NET));
                    }
                }
            }
        }
    })();
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(verdict(&args.log, &trail.report())),
    }
}

/// What became of a followed log since the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing that stops following it (it may have grown).
    Same,
    /// It is shorter than what was read of it.
    Truncated { from: u64, to: u64 },
    /// The path names another file now.
    Replaced,
    /// Nothing is at the path.
    Removed,
}

/// Looks at the followed file and at its path.
fn look(trail: &Trail<std::fs::File>, path: &Path) -> io::Result<Change> {
    let (read_to, len) = trail.file_position()?;
    if len < read_to {
        return Ok(Change::Truncated {
            from: read_to,
            to: len,
        });
    }
    match std::fs::metadata(path) {
        Ok(m) if (m.dev(), m.ino()) != trail.file_id()? => Ok(Change::Replaced),
        Ok(_) => Ok(Change::Same),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Change::Removed),
        Err(e) => Err(e),
    }
}

/// Wakes a follower when the log may have changed: inotify on the log and
/// on its directory, or a plain sleep when inotify is not available.
struct Wakeup {
    inotify: Option<OwnedFd>,
}

impl Wakeup {
    fn new(log: &Path) -> Wakeup {
        let watch = || -> rustix::io::Result<OwnedFd> {
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            inotify::add_watch(
                &fd,
                log,
                WatchFlags::MODIFY
                    | WatchFlags::ATTRIB
                    | WatchFlags::CLOSE_WRITE
                    | WatchFlags::MOVE_SELF
                    | WatchFlags::DELETE_SELF,
            )?;
            let dir = match log.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            inotify::add_watch(
                &fd,
                dir,
                WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::DELETE,
            )?;
            Ok(fd)
        };
        match watch() {
            Ok(fd) => Wakeup { inotify: Some(fd) },
            Err(e) => {
                eprintln!(
                    "chainsink: cannot watch {} with inotify ({e}); polling it every {} ms \
                     instead (raise fs.inotify.max_user_instances to watch)",
                    log.display(),
                    POLL.as_millis()
                );
                Wakeup { inotify: None }
            }
        }
    }

    /// Returns when the log or its directory changes, or after `timeout`.
    fn wait(&mut self, timeout: Duration) {
        let Some(fd) = &self.inotify else {
            std::thread::sleep(timeout.min(POLL));
            return;
        };
        let ts = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        // An error (EINTR) only ends the wait early: the caller looks again.
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        // Drop the queued events: what changed is read from the file.
        let mut buf = [0u8; 4096];
        while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
    }
}
