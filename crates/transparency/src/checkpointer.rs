//! The host's side: sign checkpoints of a log, and check a log against one.
//!
//! Every whole line of the log is a leaf (every record, `chain.recovered`
//! and `chain.rejected` records and a recovered torn line included); an
//! unterminated last line is not, until its newline is written.
//!
//! Beside a log `LOG` the [`Checkpointer`] keeps two files, each replaced
//! atomically (written to a temporary file in the same directory, synced,
//! then renamed over the old one):
//!
//! - `LOG.checkpoint`: the newest signed checkpoint (a C2SP signed note,
//!   with any witness cosignatures added later);
//! - `LOG.tree`: the tree state at that checkpoint: its size, the byte
//!   offset where its last leaf ends, and the frontier (one hash per
//!   perfect subtree).
//!
//! The tree state is not signed. It is trusted only when its frontier
//! reproduces the root of the signed checkpoint beside it; then the
//! checkpointer resumes from its offset and hashes only the lines written
//! since (O(records since the last checkpoint)). Otherwise it rebuilds the
//! state from the log, and refuses to sign when the log no longer holds what
//! the last checkpoint signed (a log must never sign two inconsistent
//! checkpoints).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::checkpoint::{self, Checkpoint, CheckpointError, SignedCheckpoint};
use crate::merkle::{self, CompactRange, Hash};
use crate::note::{Note, NoteError, SigningKey};

/// The first line of a tree-state file.
pub const TREE_HEADER: &str = "chainsink-tree/v1";

/// Why a checkpoint could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointerError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
    /// The checkpoint beside the log is not one this key signed.
    #[error(
        "{path}: {error}; it is not a checkpoint signed by this key: move it away to start a new series, or use the key that signed it"
    )]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        error: CheckpointError,
    },
    /// The log no longer holds what its last checkpoint signed: signing now
    /// would sign a history that contradicts it.
    #[error(
        "{log}: {mismatch}; refusing to sign a checkpoint that contradicts {checkpoint} (run chainsink verify {log} --checkpoint {checkpoint} --key KEY.vkey)"
    )]
    Diverged {
        /// The log.
        log: PathBuf,
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// How the log differs.
        mismatch: Mismatch,
    },
    /// The note could not be made (the key name is not a valid origin).
    #[error("signing: {0}")]
    Sign(#[from] NoteError),
}

/// How a log differs from a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// Fewer lines than the checkpoint's size.
    #[error("log has {have} records, checkpoint says {want}: the last {} records were cut", want - have)]
    Truncated {
        /// Whole lines in the log.
        have: u64,
        /// The checkpoint's size.
        want: u64,
    },
    /// The first `size` lines do not give the signed root.
    #[error("the first {size} records do not give the signed root: the log was rewritten{}", match first_differing {
        Some((a, b)) if b - a == 1 => format!(" at record {} (line {})", a + 1, a + 1),
        Some((a, b)) => format!(" within records {}..{} (lines {} to {}; the records before line {} are as signed)", a + 1, b, a + 1, b, a + 1),
        None => String::new(),
    })]
    Rewritten {
        /// The checkpoint's size.
        size: u64,
        /// The leaf range `[start, end)` (zero-based) holding the first
        /// difference, when a trusted tree state tells.
        first_differing: Option<(u64, u64)>,
    },
}

/// `LOG.checkpoint`.
pub fn checkpoint_path(log: &Path) -> PathBuf {
    suffixed(log, ".checkpoint")
}

/// `LOG.tree`.
pub fn tree_path(log: &Path) -> PathBuf {
    suffixed(log, ".tree")
}

fn suffixed(log: &Path, suffix: &str) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The tree over a log's first `size` lines: where they end, and the
/// frontier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeState {
    /// Byte offset just after the last leaf's newline.
    pub offset: u64,
    /// The frontier.
    pub range: CompactRange,
}

impl TreeState {
    /// Leaves.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// The tree-state file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{TREE_HEADER}\nsize {}\noffset {}\n",
            self.range.size(),
            self.offset
        );
        for h in self.range.hashes() {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out
    }

    /// Reads a tree-state file's text; `None` if it is not one.
    pub fn from_text(text: &str) -> Option<TreeState> {
        let mut lines = text.lines();
        (lines.next()? == TREE_HEADER).then_some(())?;
        let size: u64 = lines.next()?.strip_prefix("size ")?.parse().ok()?;
        let offset: u64 = lines.next()?.strip_prefix("offset ")?.parse().ok()?;
        let hashes: Vec<Hash> = lines
            .map(|l| B64.decode(l).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()?;
        Some(TreeState {
            offset,
            range: CompactRange::from_parts(size, hashes)?,
        })
    }

    /// Reads `LOG.tree`; `None` when missing or unreadable (it is a cache).
    pub fn load(log: &Path) -> Option<TreeState> {
        TreeState::from_text(&std::fs::read_to_string(tree_path(log)).ok()?)
    }
}

/// Calls `f` with each whole line of `log` from byte `start` (without its
/// newline), until `f` returns false or the whole lines end. Returns the
/// offset after the last line given to `f`.
pub fn for_each_line(log: &Path, start: u64, mut f: impl FnMut(&[u8]) -> bool) -> io::Result<u64> {
    let mut file = File::open(log)?;
    file.seek(SeekFrom::Start(start))?;
    let mut offset = start;
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(offset),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (go_on, len) = if pending.is_empty() {
                (f(&chunk[..nl]), nl)
            } else {
                pending.extend_from_slice(&chunk[..nl]);
                let r = (f(&pending), pending.len());
                pending.clear();
                r
            };
            offset += len as u64 + 1;
            chunk = &chunk[nl + 1..];
            if !go_on {
                return Ok(offset);
            }
        }
        pending.extend_from_slice(chunk);
    }
}

/// The leaf hashes of the first `limit` whole lines of `log` (all of them
/// when `None`).
pub fn leaf_hashes(log: &Path, limit: Option<u64>) -> io::Result<Vec<Hash>> {
    let mut leaves = Vec::new();
    if limit == Some(0) {
        return Ok(leaves);
    }
    for_each_line(log, 0, |line| {
        leaves.push(merkle::leaf_hash(line));
        limit.is_none_or(|l| (leaves.len() as u64) < l)
    })?;
    Ok(leaves)
}

/// Checks that `log` holds what `signed` commits to: at least its size in
/// whole lines, whose root is the signed root. `tree`, the state stored
/// beside the log, names where a rewrite starts when it is trusted (its
/// size is the checkpoint's and its frontier gives the signed root).
/// Returns the log's whole lines on success.
pub fn check_log(
    log: &Path,
    signed: &Checkpoint,
    tree: Option<&TreeState>,
) -> io::Result<Result<u64, Mismatch>> {
    let mut range = CompactRange::new();
    let mut lines = 0u64;
    for_each_line(log, 0, |line| {
        if lines < signed.size {
            range.push(merkle::leaf_hash(line));
        }
        lines += 1;
        true
    })?;
    if lines < signed.size {
        return Ok(Err(Mismatch::Truncated {
            have: lines,
            want: signed.size,
        }));
    }
    if range.root() == signed.root {
        return Ok(Ok(lines));
    }
    let trusted = tree.filter(|t| t.size() == signed.size && t.range.root() == signed.root);
    let first_differing = trusted.and_then(|t| {
        t.range
            .ranges()
            .into_iter()
            .zip(t.range.hashes().iter().zip(range.hashes()))
            .find(|(_, (stored, found))| stored != found)
            .map(|(r, _)| r)
    });
    Ok(Err(Mismatch::Rewritten {
        size: signed.size,
        first_differing,
    }))
}

/// Writes `data` to `path` atomically: a temporary file in the same
/// directory, synced, renamed over `path`, and the directory synced.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Signs checkpoints of one log with the host's key.
#[derive(Debug)]
pub struct Checkpointer {
    log: PathBuf,
    key: SigningKey,
    state: TreeState,
    /// The newest checkpoint on disk, if any.
    last: Option<SignedCheckpoint>,
}

impl Checkpointer {
    /// Opens the checkpoint series of `log`, signed with `key`: loads
    /// `LOG.checkpoint` and `LOG.tree` and checks them (see the module
    /// docs). Returns a notice when the tree state had to be rebuilt.
    pub fn open(
        log: &Path,
        key: SigningKey,
    ) -> Result<(Checkpointer, Option<String>), CheckpointerError> {
        let cp_path = checkpoint_path(log);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error| CheckpointerError::Io { path, error }
        };
        let last = match std::fs::read_to_string(&cp_path) {
            Ok(text) => Some(checkpoint::open(&text, &key.verifier()).map_err(|error| {
                CheckpointerError::Checkpoint {
                    path: cp_path.clone(),
                    error,
                }
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&cp_path)(e)),
        };
        let log_len = match std::fs::metadata(log) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(log)(e)),
        };
        let mut notice = None;
        let state = match &last {
            None => TreeState::default(),
            Some(signed) => {
                let cp = &signed.checkpoint;
                let stored = TreeState::load(log).filter(|t| {
                    t.size() == cp.size
                        && t.range.root() == cp.root
                        && t.offset <= log_len
                        && ends_line(log, t.offset)
                });
                match stored {
                    Some(t) => t,
                    None => {
                        notice = Some(format!(
                            "{} is missing or does not match {}: rebuilding the tree state from the log ({} records)",
                            tree_path(log).display(),
                            cp_path.display(),
                            cp.size
                        ));
                        rebuild(log, cp).map_err(io_err(log))?.map_err(|mismatch| {
                            CheckpointerError::Diverged {
                                log: log.into(),
                                checkpoint: cp_path.clone(),
                                mismatch,
                            }
                        })?
                    }
                }
            }
        };
        Ok((
            Checkpointer {
                log: log.into(),
                key,
                state,
                last,
            },
            notice,
        ))
    }

    /// Leaves hashed so far.
    pub fn size(&self) -> u64 {
        self.state.size()
    }

    /// The size of the newest signed checkpoint (0 when none).
    pub fn signed_size(&self) -> u64 {
        self.last.as_ref().map_or(0, |s| s.checkpoint.size)
    }

    /// The newest signed checkpoint, if any.
    pub fn last(&self) -> Option<&SignedCheckpoint> {
        self.last.as_ref()
    }

    /// Hashes the whole lines written since the last call; returns how many.
    pub fn advance(&mut self) -> Result<u64, CheckpointerError> {
        let before = self.state.size();
        let len = std::fs::metadata(&self.log)
            .map(|m| m.len())
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(0)
                } else {
                    Err(e)
                }
            })
            .map_err(|error| CheckpointerError::Io {
                path: self.log.clone(),
                error,
            })?;
        if len < self.state.offset {
            let mut have = 0;
            for_each_line(&self.log, 0, |_| {
                have += 1;
                true
            })
            .map_err(|error| CheckpointerError::Io {
                path: self.log.clone(),
                error,
            })?;
            return Err(CheckpointerError::Diverged {
                log: self.log.clone(),
                checkpoint: checkpoint_path(&self.log),
                mismatch: Mismatch::Truncated {
                    have: have.min(self.state.size()),
                    want: self.state.size(),
                },
            });
        }
        if len == self.state.offset {
            return Ok(0);
        }
        let range = &mut self.state.range;
        self.state.offset = for_each_line(&self.log, self.state.offset, |line| {
            range.push(merkle::leaf_hash(line));
            true
        })
        .map_err(|error| CheckpointerError::Io {
            path: self.log.clone(),
            error,
        })?;
        Ok(self.state.size() - before)
    }

    /// Hashes what is new and, when the tree grew since the last checkpoint
    /// (or there is none yet), signs a checkpoint and writes `LOG.checkpoint`
    /// and `LOG.tree`. `now` is the time in seconds (unused by note keys).
    /// Returns the new checkpoint, or `None` when nothing changed (the file,
    /// and any cosignatures on it, are left as they are).
    pub fn checkpoint(&mut self, now: u64) -> Result<Option<&SignedCheckpoint>, CheckpointerError> {
        self.advance()?;
        if self
            .last
            .as_ref()
            .is_some_and(|l| l.checkpoint.size == self.state.size())
        {
            return Ok(None);
        }
        let cp = Checkpoint {
            origin: self.key.name().into(),
            size: self.state.size(),
            root: self.state.range.root(),
            extensions: Vec::new(),
        };
        let note = Note::sign(&cp.to_text(), &self.key, now)?;
        let cp_path = checkpoint_path(&self.log);
        write_atomic(&cp_path, note.to_string().as_bytes()).map_err(|error| {
            CheckpointerError::Io {
                path: cp_path.clone(),
                error,
            }
        })?;
        let tree = tree_path(&self.log);
        write_atomic(&tree, self.state.to_text().as_bytes())
            .map_err(|error| CheckpointerError::Io { path: tree, error })?;
        self.last = Some(SignedCheckpoint {
            checkpoint: cp,
            note,
        });
        Ok(self.last.as_ref())
    }
}

/// Whether byte `offset` of `log` starts a line (0, or just after a newline).
fn ends_line(log: &Path, offset: u64) -> bool {
    if offset == 0 {
        return true;
    }
    let Ok(mut f) = File::open(log) else {
        return false;
    };
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset - 1)).is_ok() && f.read_exact(&mut b).is_ok() && b[0] == b'\n'
}

/// The tree state at `cp`'s size, from the log; a mismatch when the log no
/// longer gives the signed root.
fn rebuild(log: &Path, cp: &Checkpoint) -> io::Result<Result<TreeState, Mismatch>> {
    let mut range = CompactRange::new();
    let offset = if cp.size == 0 {
        0
    } else {
        for_each_line(log, 0, |line| {
            range.push(merkle::leaf_hash(line));
            range.size() < cp.size
        })?
    };
    if range.size() < cp.size {
        return Ok(Err(Mismatch::Truncated {
            have: range.size(),
            want: cp.size,
        }));
    }
    if range.root() != cp.root {
        return Ok(Err(Mismatch::Rewritten {
            size: cp.size,
            first_differing: None,
        }));
    }
    Ok(Ok(TreeState { offset, range }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::KeyType;

    fn key() -> SigningKey {
        SigningKey::generate("test.example/log", KeyType::Ed25519).unwrap()
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(from: usize, to: usize) -> String {
        (from..to)
            .map(|i| format!("{{\"seq\": {}}}\n", i + 1))
            .collect()
    }

    #[test]
    fn lines_are_read_across_buffers_and_a_torn_tail_is_not_a_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.jsonl");
        let long = "x".repeat((1 << 20) + 10);
        std::fs::write(&log, format!("one\n{long}\nthree\ntorn")).unwrap();
        let mut seen = Vec::new();
        let end = for_each_line(&log, 0, |l| {
            seen.push(l.len());
            true
        })
        .unwrap();
        assert_eq!(seen, [3, long.len(), 5]);
        assert_eq!(end, (4 + long.len() + 1 + 6) as u64);
        let again = for_each_line(&log, 4, |_| true).unwrap();
        assert_eq!(again, end);
    }

    #[test]
    fn resume_uses_the_stored_frontier_and_matches_a_full_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.jsonl");
        let k = key();
        let vkey = k.verifier();
        append(&log, &lines(0, 10));
        let (mut cp, notice) =
            Checkpointer::open(&log, SigningKey::from_text(&k.to_text()).unwrap()).unwrap();
        assert!(notice.is_none());
        let first = cp.checkpoint(0).unwrap().unwrap().checkpoint.clone();
        assert_eq!(first.size, 10);
        assert!(
            cp.checkpoint(0).unwrap().is_none(),
            "nothing new, nothing signed"
        );
        append(&log, &lines(10, 25));
        append(&log, "{\"torn");
        drop(cp);
        let (mut cp, notice) =
            Checkpointer::open(&log, SigningKey::from_text(&k.to_text()).unwrap()).unwrap();
        assert!(notice.is_none(), "{notice:?}");
        let second = cp.checkpoint(0).unwrap().unwrap().checkpoint.clone();
        assert_eq!(second.size, 25);
        let all = leaf_hashes(&log, None).unwrap();
        assert_eq!(second.root, merkle::root(&all));
        let text = std::fs::read_to_string(checkpoint_path(&log)).unwrap();
        assert_eq!(checkpoint::open(&text, &vkey).unwrap().checkpoint, second);
        // A tree state that does not match is rebuilt, and says so.
        std::fs::write(tree_path(&log), "garbage").unwrap();
        let (cp, notice) =
            Checkpointer::open(&log, SigningKey::from_text(&k.to_text()).unwrap()).unwrap();
        assert!(notice.unwrap().contains("rebuilding"));
        assert_eq!(cp.size(), 25);
        assert_eq!(TreeState::load(&log), None);
    }

    #[test]
    fn a_cut_or_rewritten_log_is_caught_and_never_signed_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.jsonl");
        let k = key();
        append(&log, &lines(0, 40));
        let (mut cp, _) =
            Checkpointer::open(&log, SigningKey::from_text(&k.to_text()).unwrap()).unwrap();
        let signed = cp.checkpoint(0).unwrap().unwrap().checkpoint.clone();
        drop(cp);
        let tree = TreeState::load(&log).unwrap();
        assert_eq!(check_log(&log, &signed, Some(&tree)).unwrap(), Ok(40));

        // Cut the last 3 lines.
        std::fs::write(&log, lines(0, 37)).unwrap();
        let m = check_log(&log, &signed, Some(&tree)).unwrap().unwrap_err();
        assert_eq!(m, Mismatch::Truncated { have: 37, want: 40 });
        assert!(m.to_string().contains("the last 3 records were cut"), "{m}");
        std::fs::remove_file(tree_path(&log)).unwrap();
        let err =
            Checkpointer::open(&log, SigningKey::from_text(&k.to_text()).unwrap()).unwrap_err();
        assert!(matches!(err, CheckpointerError::Diverged { .. }), "{err}");

        // Rewrite from line 10 on (the same number of lines).
        let mut text = lines(0, 9);
        text.push_str(
            &(9..40)
                .map(|i| format!("{{\"seq\": {}, \"x\": 1}}\n", i + 1))
                .collect::<String>(),
        );
        std::fs::write(&log, &text).unwrap();
        let m = check_log(&log, &signed, Some(&tree)).unwrap().unwrap_err();
        // 40 = 32 + 8: the first 32 leaves hold the change.
        assert_eq!(
            m,
            Mismatch::Rewritten {
                size: 40,
                first_differing: Some((0, 32))
            }
        );
        assert!(m.to_string().contains("within records 1..32"), "{m}");
        // A change after leaf 32 is placed more closely.
        let mut text = lines(0, 39);
        text.push_str("{\"seq\": 40, \"x\": 1}\n");
        std::fs::write(&log, &text).unwrap();
        let m = check_log(&log, &signed, Some(&tree)).unwrap().unwrap_err();
        assert!(m.to_string().contains("within records 33..40"), "{m}");
        let err =
            Checkpointer::open(&log, SigningKey::from_text(&k.to_text()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("rewritten"), "{err}");
    }

    #[test]
    fn a_log_cut_under_a_running_checkpointer_is_refused_with_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.jsonl");
        append(&log, &lines(0, 10));
        let (mut cp, _) = Checkpointer::open(&log, key()).unwrap();
        cp.checkpoint(0).unwrap();
        std::fs::write(&log, lines(0, 7)).unwrap();
        let err = cp.checkpoint(0).unwrap_err();
        assert!(
            err.to_string()
                .contains("log has 7 records, checkpoint says 10"),
            "{err}"
        );
    }

    #[test]
    fn a_checkpoint_by_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.jsonl");
        append(&log, &lines(0, 3));
        let (mut cp, _) = Checkpointer::open(&log, key()).unwrap();
        cp.checkpoint(0).unwrap();
        let err = Checkpointer::open(&log, key()).unwrap_err();
        assert!(matches!(err, CheckpointerError::Checkpoint { .. }), "{err}");
    }

    #[test]
    fn tree_state_text_round_trips() {
        let mut range = CompactRange::new();
        for i in 0..13u8 {
            range.push(merkle::leaf_hash(&[i]));
        }
        let t = TreeState { offset: 99, range };
        assert_eq!(TreeState::from_text(&t.to_text()), Some(t));
        assert_eq!(
            TreeState::from_text("chainsink-tree/v1\nsize 3\noffset 0\n"),
            None
        );
    }
}
