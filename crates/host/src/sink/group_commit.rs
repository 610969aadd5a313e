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
    fn waiters_that_arrive_during_a_sync_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("log")).unwrap();
        let commit = Arc::new(GroupCommit::new(file, 0));
        // A sync is under way (as if a leader were in fdatasync) while eight
        // emitters, records 1 to 8, come to wait.
        commit.state.lock().unwrap().syncing = true;
        let threads: Vec<_> = (1..=8)
            .map(|seq| {
                let commit = commit.clone();
                std::thread::spawn(move || commit.wait_durable(seq).unwrap())
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while commit.state.lock().unwrap().written < 8 {
            assert!(
                std::time::Instant::now() < deadline,
                "the waiters never arrived"
            );
            std::thread::yield_now();
        }
        // That sync ends without covering them: one new sync must cover all
        // eight, not one each.
        {
            let mut st = commit.state.lock().unwrap();
            st.syncing = false;
            commit.changed.notify_all();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(commit.syncs(), 1, "8 waiters must share one sync");
        assert_eq!(commit.state.lock().unwrap().synced, 8);
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
