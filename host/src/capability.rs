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
        "cannot create or open the audit log's directory {dir}: {source}; create it, fix its permissions, or choose another AUDIT_LOG_PATH"
    )]
    Directory {
        /// The parent directory.
        dir: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file could not be opened for appending.
    #[error(
        "cannot open audit log {path} for appending: {source}; check its permissions or choose another AUDIT_LOG_PATH"
    )]
    Open {
        /// The log path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// An open log file: append-only writes, positioned reads.
///
/// This is the whole of what a sink instance can touch.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
}

impl LogFile {
    /// Opens (creating if needed) the log at `path`, creating its parent
    /// directory first.
    pub fn open(path: &Path) -> Result<LogFile, CapabilityError> {
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
        let directory_error = |source| CapabilityError::Directory {
            dir: dir_path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir_path).map_err(directory_error)?;
        let dir = Dir::open_ambient_dir(&dir_path, ambient_authority()).map_err(directory_error)?;
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        let file = dir
            .open_with(name, &options)
            .map_err(|source| CapabilityError::Open {
                path: path.into(),
                source,
            })?
            .into_std();
        let log = LogFile {
            file,
            path: path.into(),
        };
        if log.file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(CapabilityError::IsDirectory { path: path.into() });
        }
        Ok(log)
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

    /// Makes appended bytes durable.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
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
