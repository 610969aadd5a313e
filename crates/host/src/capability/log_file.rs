//! The one capability a sink gets: append to, and read, its own log file.
//!
//! The file is opened once, through cap-std, for read + append + create. The
//! descriptor carries `O_APPEND`, so every write lands at the end whatever
//! offset is asked for: a sink, buggy or hostile, can add bytes but never
//! change or remove history. The sink never sees the path.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::bindings::{v0_1, v0_2};
use crate::runtime::limits::{LimitExceeded, MAX_APPEND_BYTES, SinkLimits};
use crate::sink::guard::AppendGuard;

/// Why a log file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// The path names a directory.
    #[error(
        "audit log {path} is a directory; point AUDIT_LOG_PATH (or --log) at a file inside it, such as {path}/audit.jsonl"
    )]
    IsDirectory {
        /// The log path.
        path: PathBuf,
    },
    /// The path has no file name (`/`, `..`).
    #[error("audit log path {path:?} names no file; give a file path such as ./audit.jsonl")]
    NoFileName {
        /// The log path.
        path: PathBuf,
    },
    /// The parent directory could not be created or opened.
    #[error(
        "cannot create or open the audit log's directory {dir}: {error}; create it, fix its permissions, or choose another AUDIT_LOG_PATH"
    )]
    Directory {
        /// The parent directory.
        dir: PathBuf,
        /// The OS error (shown in the message, so not a `source`).
        error: io::Error,
    },
    /// The path is not a regular file (a FIFO, a device, a socket).
    #[error(
        "audit log {path} is {kind}, not a regular file; a log must be a regular file that keeps its history: point AUDIT_LOG_PATH (or --log) at a file"
    )]
    NotRegular {
        /// The log path.
        path: PathBuf,
        /// What it is instead: "a FIFO", "a character device"...
        kind: &'static str,
    },
    /// Another writer holds the log's lock.
    #[error(
        "audit log {path} is in use by another writer{}; a log has one writer at a time: wait for it to finish, pass --wait-lock to wait, or use another log",
        match pid { Some(p) => format!(" (pid {p})"), None => String::new() }
    )]
    Locked {
        /// The log path.
        path: PathBuf,
        /// The holder's pid, when the system says (Linux: `/proc/locks`).
        pid: Option<u32>,
    },
    /// The lock could not be taken.
    #[error("cannot lock audit log {path}: {error}")]
    Lock {
        /// The log path.
        path: PathBuf,
        /// The OS error (shown in the message, so not a `source`).
        error: io::Error,
    },
    /// The file could not be opened for appending.
    #[error(
        "cannot open audit log {path} for appending: {error}; check its permissions or choose another AUDIT_LOG_PATH"
    )]
    Open {
        /// The log path.
        path: PathBuf,
        /// The OS error (shown in the message, so not a `source`).
        error: io::Error,
    },
}

/// An open log file: append-only writes, positioned reads.
///
/// This is the whole of what a sink instance can touch. It also holds the
/// log's single-writer lock until it is dropped: an exclusive `flock` on the
/// log's own descriptor, so the lock belongs to the file (its inode), not to
/// a name: every path that reaches the file (a symlink, a hard link, `..`)
/// meets the same lock, and no `.lock` file is left beside the log.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    /// Opened for reading only ([`LogFile::open_read_only`]): every append
    /// and sync is refused before it reaches the OS (which would refuse it
    /// too: the descriptor cannot write).
    read_only: bool,
    /// Where this handle's appends end and how far a sync has covered, so
    /// that a sync with nothing new to cover (`close` after a record that
    /// `always` already synced) skips its `fdatasync`.
    sync_state: Mutex<SyncState>,
    /// `fdatasync` calls made through [`LogFile::sync`].
    syncs: AtomicU64,
}

/// What [`LogFile::sync`] needs to know to skip a sync that covers nothing.
#[derive(Debug, Default)]
struct SyncState {
    /// The end of this handle's last append; `None` before the first one
    /// and after a failed one.
    appended_end: Option<u64>,
    /// The `appended_end` the last successful sync covered; `None` until a
    /// sync succeeds (so the first sync of a handle always reaches the disk,
    /// covering whatever an earlier process left unsynced).
    synced_end: Option<u64>,
}

/// What to do when another writer holds the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockWait {
    /// Fail at once, naming the holder.
    #[default]
    No,
    /// Block until the holder lets go.
    Yes,
}

impl LogFile {
    /// Opens (creating if needed) the log at `path`, creating its parent
    /// directory first, and takes its single-writer lock (failing at once if
    /// another writer holds it).
    pub fn open(path: &Path) -> Result<LogFile, CapabilityError> {
        LogFile::open_with(path, LockWait::No)
    }

    /// Like [`open`](LogFile::open), choosing whether to wait for the lock.
    ///
    /// Only a regular file (or a path to create one) is accepted: a FIFO
    /// would hang, a device keeps no history.
    pub fn open_with(path: &Path, wait: LockWait) -> Result<LogFile, CapabilityError> {
        // An existing log is opened where its links lead (a symlink may
        // point anywhere; the lock is on the file, whatever its name).
        let target = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(CapabilityError::IsDirectory { path: path.into() });
            }
            Ok(meta) if !meta.is_file() => {
                return Err(CapabilityError::NotRegular {
                    path: path.into(),
                    kind: file_kind(&meta),
                });
            }
            Ok(_) => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            Err(_) => path.to_path_buf(),
        };
        let name = target
            .file_name()
            .ok_or_else(|| CapabilityError::NoFileName { path: path.into() })?;
        let dir_path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let directory_error = |error| CapabilityError::Directory {
            dir: dir_path.clone(),
            error,
        };
        std::fs::create_dir_all(&dir_path).map_err(directory_error)?;
        let dir = Dir::open_ambient_dir(&dir_path, ambient_authority()).map_err(directory_error)?;
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        // Never block in open(2) (a FIFO swapped in after the check above).
        cap_std::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        let file = dir
            .open_with(name, &options)
            .map_err(|error| CapabilityError::Open {
                path: path.into(),
                error,
            })?
            .into_std();
        let meta = file.metadata().map_err(|error| CapabilityError::Open {
            path: path.into(),
            error,
        })?;
        if meta.is_dir() {
            return Err(CapabilityError::IsDirectory { path: path.into() });
        }
        if !meta.is_file() {
            return Err(CapabilityError::NotRegular {
                path: path.into(),
                kind: file_kind(&meta),
            });
        }
        lock(&file, path, wait)?;
        Ok(LogFile {
            file,
            path: path.into(),
            read_only: false,
            sync_state: Mutex::default(),
            syncs: AtomicU64::new(0),
        })
    }

    /// Opens an existing log for reading only, without the writer's lock
    /// (a writer may go on appending): for `chainsink verify --sink`, which
    /// runs a sink's verifier over the log. [`append`](LogFile::append) and
    /// [`sync`](LogFile::sync) fail; the descriptor cannot write either.
    pub fn open_read_only(path: &Path) -> Result<LogFile, CapabilityError> {
        let open_error = |error| CapabilityError::Open {
            path: path.into(),
            error,
        };
        let file = File::open(path).map_err(open_error)?;
        let meta = file.metadata().map_err(open_error)?;
        if meta.is_dir() {
            return Err(CapabilityError::IsDirectory { path: path.into() });
        }
        if !meta.is_file() {
            return Err(CapabilityError::NotRegular {
                path: path.into(),
                kind: file_kind(&meta),
            });
        }
        Ok(LogFile {
            file,
            path: path.into(),
            read_only: true,
            sync_state: Mutex::default(),
            syncs: AtomicU64::new(0),
        })
    }

    /// An empty, unnamed, read-only log in memory (`memfd`), for calls that
    /// must not touch any log, such as `describe` when inspecting a sink.
    pub fn empty() -> io::Result<LogFile> {
        use std::os::fd::FromRawFd;
        // SAFETY: a valid NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(c"chainsink-empty-log".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        Ok(LogFile {
            file,
            path: PathBuf::from("(no log)"),
            read_only: true,
            sync_state: Mutex::default(),
            syncs: AtomicU64::new(0),
        })
    }

    /// Whether the log was opened for reading only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The path the log was opened at (for messages; never given to a sink).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `data` in one write; returns the offset where it starts.
    ///
    /// With `O_APPEND` the kernel moves the position to the end and writes
    /// in one step, so the position after the write, less its length, is
    /// where these bytes landed, whoever else appends.
    pub fn append(&self, data: &[u8]) -> io::Result<u64> {
        if self.read_only {
            return Err(read_only_error());
        }
        let mut file = &self.file;
        let end = file.write_all(data).and_then(|()| file.stream_position());
        self.state().appended_end = end.as_ref().ok().copied();
        Ok(end? - data.len() as u64)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SyncState> {
        // The state is two numbers, consistent after any panic.
        self.sync_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads up to `len` bytes at `offset`; fewer at the end of the file.
    pub fn read(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        // Never allocate more than exists: `len` is the caller's wish.
        let available = self.size()?.saturating_sub(offset);
        let len = usize::try_from(available.min(u64::from(len))).unwrap_or(usize::MAX);
        let mut buf = vec![0; len];
        let mut filled = 0;
        while filled < buf.len() {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Reads the last `len` bytes; returns their offset and the bytes.
    pub fn read_tail(&self, len: u32) -> io::Result<(u64, Vec<u8>)> {
        let size = self.size()?;
        let start = size.saturating_sub(u64::from(len));
        let bytes = self.read(start, (size - start) as u32)?;
        Ok((start, bytes))
    }

    /// Current size in bytes.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// A second handle on the same file, for syncing it outside the sink
    /// (group commit). It is never handed to a sink.
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Makes appended bytes durable.
    ///
    /// A sync that would cover nothing new is skipped: when this handle's
    /// last append ended where the last successful sync already covered.
    /// The first sync of a handle always reaches the disk, as does every
    /// sync after a failed append.
    pub fn sync(&self) -> io::Result<()> {
        if self.read_only {
            return Err(read_only_error());
        }
        let end = {
            let state = self.state();
            if state.synced_end.is_some() && state.synced_end == state.appended_end {
                return Ok(());
            }
            state.appended_end
        };
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync_data()?;
        // Whatever was appended by the time `end` was read is durable now.
        if end.is_some() {
            self.state().synced_end = end;
        }
        Ok(())
    }

    /// How many `fdatasync` calls [`sync`](LogFile::sync) made (skipped
    /// syncs not counted): for tests and benchmarks.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// The error of a write to a read-only log.
fn read_only_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the log is granted read-only here (chainsink verify --sink): nothing was written",
    )
}

/// What a non-regular file is, for messages.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Takes the exclusive single-writer lock on the log's own descriptor.
fn lock(file: &File, path: &Path, wait: LockWait) -> Result<(), CapabilityError> {
    let lock_error = |error| CapabilityError::Lock {
        path: path.into(),
        error,
    };
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = lock_holder(file);
            if wait == LockWait::No {
                return Err(CapabilityError::Locked {
                    path: path.into(),
                    pid,
                });
            }
            tracing::warn!(
                "audit log {} is in use by another writer{}; waiting for it to finish (--wait-lock)",
                path.display(),
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            );
            file.lock().map_err(lock_error)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(lock_error(e)),
    }
}

/// The pid holding a `flock` on `file`'s inode, from `/proc/locks` (Linux);
/// `None` where the system does not say.
fn lock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let (dev, ino) = (meta.dev(), meta.ino());
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flock = fields.get(1) == Some(&"FLOCK");
        let id = fields.get(5)?;
        let mut parts = id.split(':');
        let maj = u32::from_str_radix(parts.next()?, 16).ok()?;
        let min = u32::from_str_radix(parts.next()?, 16).ok()?;
        let i: u64 = parts.next()?.parse().ok()?;
        (flock && maj == major && min == minor && i == ino)
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    })
}

/// The `log-file` capability of one sink instance: its log, and the host's
/// check of what it appends.
pub(crate) struct LogFileCtx {
    /// The log: shared only with the replacement store a discarded instance
    /// leaves behind (see [`crate::store::discarded_store`]).
    pub(crate) log: Arc<LogFile>,
    /// What this instance appended, checked against its receipts.
    pub(crate) guard: AppendGuard,
    /// Most bytes one `read` may return: the sink's memory limit (the bytes
    /// could not fit in the sink anyway, and the host must not allocate
    /// gigabytes on a sink's say-so).
    max_read: usize,
    /// Host time spent on the sink's behalf since the epoch deadline last
    /// looked, credited back to the call's deadline (host I/O is not the
    /// sink's time).
    pub(crate) host_time: Duration,
    /// The current call: when it started, and what it may still do.
    call: CallBudget,
}

/// What one call may do through the capability: each append checks it.
struct CallBudget {
    /// When the call started.
    started: Instant,
    /// Its time limit ([`SinkLimits::call_timeout`]).
    timeout: Duration,
    /// Host time spent for it in all (credited up to `timeout`).
    host_time: Duration,
    /// Bytes appended so far.
    appended: u64,
    /// Most bytes it may append ([`SinkLimits::append_bytes`]).
    limit: u64,
}

impl LogFileCtx {
    /// The capability over `log` within `limits`, checking appends when
    /// `check_appends`.
    pub(crate) fn new(log: Arc<LogFile>, limits: &SinkLimits, check_appends: bool) -> LogFileCtx {
        LogFileCtx {
            log,
            guard: AppendGuard::new(check_appends),
            max_read: limits.memory_bytes,
            host_time: Duration::ZERO,
            call: CallBudget {
                started: Instant::now(),
                timeout: limits.call_timeout,
                host_time: Duration::ZERO,
                appended: 0,
                limit: limits.append_bytes.min(MAX_APPEND_BYTES),
            },
        }
    }

    /// Starts a call into the sink: a fresh budget.
    pub(crate) fn start_call(&mut self) {
        self.host_time = Duration::ZERO;
        self.call.started = Instant::now();
        self.call.host_time = Duration::ZERO;
        self.call.appended = 0;
    }

    /// Runs one log operation, noting its time as host time.
    fn timed<R>(&mut self, op: impl FnOnce(&LogFile) -> R) -> R {
        let start = Instant::now();
        let result = op(&self.log);
        let spent = start.elapsed();
        self.host_time += spent;
        self.call.host_time += spent;
        result
    }

    /// Whether an append of `len` bytes fits the call: its byte budget, and
    /// its deadline (with the host time credited, as the epoch deadline
    /// does).
    fn admit(&mut self, len: usize) -> Result<(), LimitExceeded> {
        let tried = self.call.appended.saturating_add(len as u64);
        if tried > self.call.limit {
            return Err(LimitExceeded::AppendBytes {
                tried,
                limit: self.call.limit,
            });
        }
        let allowed = self.call.timeout + self.call.host_time.min(self.call.timeout);
        if self.call.started.elapsed() > allowed {
            return Err(LimitExceeded::Deadline {
                limit: self.call.timeout,
            });
        }
        self.call.appended = tried;
        Ok(())
    }

    /// `len` clamped to what one read may return (see [`LogFileCtx::max_read`]).
    fn clamp(&self, len: u32) -> u32 {
        len.min(u32::try_from(self.max_read).unwrap_or(u32::MAX))
    }
}

impl LogFileCtx {
    /// `log-file.append`, for every WIT version.
    fn do_append(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<u64, String>> {
        if self.log.is_read_only() {
            return Ok(Err(format!(
                "append to {}: {}",
                self.log.path().display(),
                read_only_error()
            )));
        }
        self.admit(data.len())?;
        let offset = match self.timed(|log| log.append(&data)) {
            Ok(offset) => offset,
            Err(e) => return Ok(Err(format!("append to {}: {e}", self.log.path().display()))),
        };
        self.guard.appended(offset, &data);
        Ok(Ok(offset))
    }

    /// `log-file.read`.
    fn do_read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        let len = self.clamp(len);
        self.timed(|log| log.read(offset, len))
            .map_err(|e| format!("read {}: {e}", self.log.path().display()))
    }

    /// `log-file.read-tail`.
    fn do_read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        let len = self.clamp(len);
        self.timed(|log| log.read_tail(len))
            .map_err(|e| format!("read {}: {e}", self.log.path().display()))
    }

    /// `log-file.size`.
    fn do_size(&mut self) -> Result<u64, String> {
        self.timed(|log| log.size())
            .map_err(|e| format!("stat {}: {e}", self.log.path().display()))
    }

    /// `log-file.sync`.
    fn do_sync(&mut self) -> Result<(), String> {
        self.timed(|log| log.sync())
            .map_err(|e| format!("sync {}: {e}", self.log.path().display()))
    }
}

/// The same capability under each WIT version's name.
macro_rules! log_file_host {
    ($($version:ident),*) => {$(
        impl $version::chainsink::audit::log_file::Host for LogFileCtx {
            fn append(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<u64, String>> {
                self.do_append(data)
            }
            fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
                self.do_read(offset, len)
            }
            fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
                self.do_read_tail(len)
            }
            fn size(&mut self) -> Result<u64, String> {
                self.do_size()
            }
            fn sync(&mut self) -> Result<(), String> {
                self.do_sync()
            }
        }
    )*};
}

log_file_host!(v0_1, v0_2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_land_at_the_end_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(&dir.path().join("a/b/audit.jsonl")).unwrap();
        assert_eq!(log.append(b"one\n").unwrap(), 0);
        assert_eq!(log.append(b"two\n").unwrap(), 4);
        assert_eq!(log.read(0, 100).unwrap(), b"one\ntwo\n");
        assert_eq!(log.read(4, 2).unwrap(), b"tw");
        assert_eq!(log.read_tail(3).unwrap(), (5, b"wo\n".to_vec()));
        assert_eq!(log.read_tail(100).unwrap(), (0, b"one\ntwo\n".to_vec()));
        assert!(log.read(100, 10).unwrap().is_empty());
    }

    #[test]
    fn a_sync_with_nothing_new_to_cover_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, b"left unsynced by an earlier process\n").unwrap();
        let log = LogFile::open(&path).unwrap();
        // The first sync of a handle always reaches the disk.
        log.sync().unwrap();
        assert_eq!(log.syncs(), 1);
        log.append(b"one\n").unwrap();
        log.sync().unwrap();
        assert_eq!(log.syncs(), 2);
        // `close` after `always` synced the record: nothing new.
        log.sync().unwrap();
        log.sync().unwrap();
        assert_eq!(log.syncs(), 2);
        log.append(b"two\n").unwrap();
        log.sync().unwrap();
        assert_eq!(log.syncs(), 3);
        // A fresh handle on the same file syncs again.
        drop(log);
        let again = LogFile::open(&path).unwrap();
        again.sync().unwrap();
        assert_eq!(again.syncs(), 1);
    }

    #[test]
    fn existing_bytes_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, b"history\n").unwrap();
        let log = LogFile::open(&path).unwrap();
        // Even a positioned write goes to the end on an O_APPEND descriptor.
        log.file.write_at(b"XX", 0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"history\nXX");
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let first = LogFile::open(&path).unwrap();
        let err = LogFile::open(&path).unwrap_err();
        assert!(
            matches!(err, CapabilityError::Locked { pid: Some(p), .. } if p == std::process::id()),
            "{err}"
        );
        assert!(err.to_string().contains("--wait-lock"), "{err}");
        drop(first);
        LogFile::open(&path).expect("the lock goes with the first writer");
    }

    #[test]
    fn a_waiting_writer_gets_the_log_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let first = LogFile::open(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let log = LogFile::open_with(&path, LockWait::Yes).unwrap();
                tx.send(()).unwrap();
                log
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "must wait"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("got the lock");
        waiter.join().unwrap();
    }

    #[test]
    fn a_read_returns_up_to_len_bytes_clamped_to_what_exists() {
        use crate::bindings::v0_2::chainsink::audit::log_file::Host;
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(&dir.path().join("audit.jsonl")).unwrap();
        log.append(b"0123456789\n").unwrap();
        let mut ctx = LogFileCtx::new(Arc::new(log), &SinkLimits::default(), false);
        assert_eq!(ctx.read(0, u32::MAX).unwrap(), b"0123456789\n");
        assert_eq!(ctx.read(4, u32::MAX).unwrap(), b"456789\n");
        assert!(ctx.read(100, u32::MAX).unwrap().is_empty());
        assert_eq!(
            ctx.read_tail(u32::MAX).unwrap(),
            (0, b"0123456789\n".to_vec())
        );
    }

    #[test]
    fn every_path_to_the_same_file_meets_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let _first = LogFile::open(&path).unwrap();
        let symlink = dir.path().join("alias.jsonl");
        std::os::unix::fs::symlink(&path, &symlink).unwrap();
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&path, &hard).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let dotdot = dir.path().join("sub/../audit.jsonl");
        for other in [&symlink, &hard, &dotdot] {
            let err = LogFile::open(other).unwrap_err();
            assert!(
                matches!(err, CapabilityError::Locked { pid: Some(p), .. } if p == std::process::id()),
                "{}: {err}",
                other.display()
            );
        }
        // No lock file is left beside the log.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["alias.jsonl", "audit.jsonl", "hard.jsonl", "sub"]);
    }

    #[test]
    fn only_a_regular_file_can_be_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = LogFile::open(&fifo).unwrap_err();
        assert!(
            matches!(err, CapabilityError::NotRegular { kind: "a FIFO", .. }),
            "{err}"
        );
        let err = LogFile::open(Path::new("/dev/null")).unwrap_err();
        assert!(
            matches!(
                err,
                CapabilityError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("regular file"), "{err}");
    }

    #[test]
    fn a_directory_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let err = LogFile::open(dir.path()).unwrap_err();
        assert!(matches!(err, CapabilityError::IsDirectory { .. }));
        assert!(err.to_string().contains("audit.jsonl"), "{err}");
    }

    #[test]
    fn a_parent_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let err = LogFile::open(&file.join("audit.jsonl")).unwrap_err();
        assert!(matches!(err, CapabilityError::Directory { .. }), "{err}");
        assert!(err.to_string().contains("plain"), "{err}");
    }
}
