//! Group commit for `--durability batch`.
//!
//! Emitters append under the sink's lock, then wait here, outside it, until
//! their record is durable. The first waiter becomes the leader and runs one
//! `fdatasync`, which covers every record appended before it started; the
//! others wait for it, and whoever is still not covered leads the next one.
//! So a record is acknowledged only once durable, no artificial delay is
//! added, and the wait is bounded by about two syncs. Concurrent emitters
//! share syncs: N emitters need about one sync per N records.

use std::fs::File;
use std::io;
use std::sync::{Condvar, Mutex};

/// Shared syncs for one log.
#[derive(Debug)]
pub struct GroupCommit {
    file: File,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Highest seq appended (as far as waiters have told us).
    written: u64,
    /// Highest seq known durable.
    synced: u64,
    /// A leader is syncing now.
    syncing: bool,
    /// Syncs run (for tests and benchmarks).
    syncs: u64,
}

impl GroupCommit {
    /// Group commit over `file` (a handle to the log; syncing it syncs the log).
    pub fn new(file: File, synced: u64) -> GroupCommit {
        GroupCommit {
            file,
            state: Mutex::new(State {
                written: synced,
                synced,
                ..State::default()
            }),
            changed: Condvar::new(),
        }
    }

    /// Returns once every record up to `seq` is durable.
    pub fn wait_durable(&self, seq: u64) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.written = st.written.max(seq);
        loop {
            if st.synced >= seq {
                return Ok(());
            }
            if st.syncing {
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.syncing = true;
            let target = st.written;
            drop(st);
            let result = self.file.sync_data();
            st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.syncing = false;
            st.syncs += 1;
            if result.is_ok() {
                st.synced = st.synced.max(target);
            }
            self.changed.notify_all();
            result?;
        }
    }

    /// Syncs run so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).syncs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("log")).unwrap();
        let commit = Arc::new(GroupCommit::new(file, 0));
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (commit, next) = (commit.clone(), next.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let seq = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        commit.wait_durable(seq).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let syncs = commit.syncs();
        assert!((1..=400).contains(&syncs), "{syncs} syncs for 400 records");
        // Everything acknowledged is covered by the last sync.
        assert_eq!(commit.state.lock().unwrap().synced, 400);
    }

    #[test]
    fn a_covered_record_needs_no_sync() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("log")).unwrap();
        let commit = GroupCommit::new(file, 0);
        commit.wait_durable(3).unwrap();
        assert_eq!(commit.syncs(), 1);
        commit.wait_durable(2).unwrap();
        commit.wait_durable(3).unwrap();
        assert_eq!(commit.syncs(), 1);
    }
}
