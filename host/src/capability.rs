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

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

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
    /// Another writer holds the log's lock.
    #[error(
        "audit log {path} is in use by another writer{}; a log has one writer at a time: wait for it to finish, pass --wait-lock to wait, or use another log",
        match pid { Some(p) => format!(" (pid {p})"), None => String::new() }
    )]
    Locked {
        /// The log path.
        path: PathBuf,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The lock file could not be used.
    #[error("cannot lock audit log {path} (through {path}.lock): {error}")]
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
/// log's single-writer lock (an exclusive `flock` on `<log>.lock`, which
/// names the holder's pid) until it is dropped.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    _lock: Option<File>,
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
    pub fn open_with(path: &Path, wait: LockWait) -> Result<LogFile, CapabilityError> {
        if path.is_dir() {
            return Err(CapabilityError::IsDirectory { path: path.into() });
        }
        let name = path
            .file_name()
            .ok_or_else(|| CapabilityError::NoFileName { path: path.into() })?;
        let dir_path = match path.parent() {
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
        // Devices (/dev/null, /dev/full) have no history to protect.
        let lock = if meta.is_file() {
            Some(lock(&dir, name, path, wait)?)
        } else {
            None
        };
        Ok(LogFile {
            file,
            path: path.into(),
            _lock: lock,
        })
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
        let mut file = &self.file;
        file.write_all(data)?;
        Ok(file.stream_position()? - data.len() as u64)
    }

    /// Reads up to `len` bytes at `offset`; fewer at the end of the file.
    pub fn read(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len as usize];
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
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Takes the exclusive lock on `<name>.lock` in `dir` and writes our pid in it.
fn lock(
    dir: &Dir,
    name: &std::ffi::OsStr,
    path: &Path,
    wait: LockWait,
) -> Result<File, CapabilityError> {
    let lock_error = |error| CapabilityError::Lock {
        path: path.into(),
        error,
    };
    let mut lock_name = name.to_os_string();
    lock_name.push(".lock");
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    let mut file = dir
        .open_with(&lock_name, &options)
        .map_err(lock_error)?
        .into_std();
    match wait {
        LockWait::Yes => file.lock().map_err(lock_error)?,
        LockWait::No => match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = io::Read::read_to_string(&mut file, &mut text);
                return Err(CapabilityError::Locked {
                    path: path.into(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        },
    }
    file.set_len(0).map_err(lock_error)?;
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        .map_err(lock_error)?;
    Ok(file)
}

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
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "must wait"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("got the lock");
        waiter.join().unwrap();
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
