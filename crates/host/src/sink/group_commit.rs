//! Group commit for `--durability batch`.
//!
//! Emitters append under the sink's lock, then wait here, outside it, until
//! their record is durable. The first waiter becomes the leader and runs one
//! `fdatasync`, which covers every record appended before it started; the
//! others wait for it, and whoever is still not covered leads the next one.
//! So a record is acknowledged only once durable, and the wait is bounded by
//! about three syncs.
//!
//! # Gathering the cohort
//!
//! N synchronous emitters (each waits for its record before it writes the
//! next) come back together after each sync: the sync wakes them, they each
//! append one record, one after another under the sink's lock, and wait
//! again. A leader that synced at once would cover only the first of them
//! (and the next sync the rest): about N/2 records per sync. So a leader
//! first waits until as many waiters are registered as the last sync
//! released (its *cohort*), for at most as long as the last sync took: it
//! waits only for emitters it has reason to expect, and never longer than
//! the sync it saves them. A lone emitter (cohort 1) never waits; when the
//! emitters thin out, one wait runs to its bound and the cohort shrinks to
//! who came. With N emitters this gives about N records per sync
//! (`cargo bench -p chainsink-host --bench durability` reports records per
//! fsync for 8 and 64).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Shared syncs for one log.
#[derive(Debug)]
pub struct GroupCommit {
    file: File,
    state: Mutex<State>,
    changed: Condvar,
    /// Least a leader may gather its cohort for, however fast the last
    /// sync was (zero but in tests).
    min_gather: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// Highest seq appended (as far as waiters have told us).
    written: u64,
    /// Highest seq known durable.
    synced: u64,
    /// A leader is gathering or syncing now.
    syncing: bool,
    /// The seqs waiters in `wait_durable` wait for, with how many wait for
    /// each: those above `synced` are the waiters not covered yet.
    waiting: BTreeMap<u64, u64>,
    /// Waiters the last sync covered: how many the next leader expects.
    cohort: u64,
    /// How long the last sync took: the most the next leader gathers.
    last_sync: Duration,
    /// Syncs run (for tests and benchmarks).
    syncs: u64,
    /// Waits that returned after a sync covered their record.
    covered: u64,
}

/// The most a leader gathers, however slow the last sync was.
const MAX_GATHER: Duration = Duration::from_millis(20);

impl State {
    /// Waiters whose record no sync has covered yet.
    fn uncovered(&self) -> u64 {
        self.waiting.range(self.synced + 1..).map(|(_, n)| n).sum()
    }
}

impl GroupCommit {
    /// Group commit over `file` (a handle to the log; syncing it syncs the log).
    pub fn new(file: File, synced: u64) -> GroupCommit {
        GroupCommit::with_min_gather(file, synced, Duration::ZERO)
    }

    /// Like [`new`](Self::new), but a leader may gather its cohort for at
    /// least `min_gather` (or as long as the last sync took, if longer; at
    /// most 20 ms or `min_gather`). For tests, where syncs take
    /// microseconds and threads are scheduled late.
    pub fn with_min_gather(file: File, synced: u64, min_gather: Duration) -> GroupCommit {
        GroupCommit {
            file,
            state: Mutex::new(State {
                written: synced,
                synced,
                ..State::default()
            }),
            changed: Condvar::new(),
            min_gather,
        }
    }

    /// Returns once every record up to `seq` is durable.
    pub fn wait_durable(&self, seq: u64) -> io::Result<()> {
        let mut st = self.lock();
        st.written = st.written.max(seq);
        *st.waiting.entry(seq).or_insert(0) += 1;
        // A leader gathering its cohort counts arrivals.
        self.changed.notify_all();
        let result = self.wait_locked(st, seq);
        let mut st = self.lock();
        if let Some(n) = st.waiting.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                st.waiting.remove(&seq);
            }
        }
        if result.is_ok() {
            st.covered += 1;
        }
        result
    }

    fn wait_locked<'a>(
        &'a self,
        mut st: std::sync::MutexGuard<'a, State>,
        seq: u64,
    ) -> io::Result<()> {
        loop {
            if st.synced >= seq {
                return Ok(());
            }
            if st.syncing {
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.syncing = true;
            // Gather: wait for the cohort the last sync released to be back.
            let bound = st.last_sync.min(MAX_GATHER).max(self.min_gather);
            let start = Instant::now();
            while st.uncovered() < st.cohort {
                let left = bound.saturating_sub(start.elapsed());
                if left.is_zero() {
                    break;
                }
                st = self
                    .changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let target = st.written;
            drop(st);
            let began = Instant::now();
            let result = self.file.sync_data();
            let took = began.elapsed();
            st = self.lock();
            st.syncing = false;
            st.syncs += 1;
            st.last_sync = took;
            if result.is_ok() && target > st.synced {
                st.cohort = st
                    .waiting
                    .range(st.synced + 1..=target)
                    .map(|(_, n)| n)
                    .sum();
                st.synced = target;
            }
            self.changed.notify_all();
            result?;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Syncs run so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Waits that returned durable so far: with [`syncs`](Self::syncs),
    /// records (or batches) per sync.
    pub fn covered(&self) -> u64 {
        self.lock().covered
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
        let deadline = Instant::now() + Duration::from_secs(30);
        while commit.state.lock().unwrap().written < 8 {
            assert!(Instant::now() < deadline, "the waiters never arrived");
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

    /// `n` synchronous emitters, `rounds` records each: each takes the
    /// next seq (as appending under the sink's lock does) and waits for it.
    fn synchronous_emitters(commit: &Arc<GroupCommit>, n: u64, rounds: u64) {
        let next = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (commit, next) = (commit.clone(), next.clone());
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        let seq = {
                            let mut next = next.lock().unwrap();
                            *next += 1;
                            *next
                        };
                        commit.wait_durable(seq).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn synchronous_emitters_share_syncs_as_a_cohort() {
        // A generous gather bound, so the count does not depend on how fast
        // this disk syncs (the real bound is the last sync's time). A leader
        // waits that long only for an expected emitter that never comes
        // (one that already wrote its last record).
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("log")).unwrap();
        let commit = Arc::new(GroupCommit::with_min_gather(
            file,
            0,
            Duration::from_secs(1),
        ));
        let (n, rounds) = (8, 40);
        synchronous_emitters(&commit, n, rounds);
        assert_eq!(commit.covered(), n * rounds);
        // The goal: at least 0.7 × N records per sync. Without gathering,
        // the first emitter back after a sync leads the next one alone.
        let syncs = commit.syncs();
        assert!(
            syncs * 7 <= rounds * 10,
            "{syncs} syncs for {} records of {n} emitters",
            n * rounds
        );
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
