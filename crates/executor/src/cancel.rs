//! A cloneable cancellation flag that the binary's signal handling sets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Asks a run to stop. Clones share one flag.
///
/// [`CancelToken::cancel`] also wakes a waiting scheduler at once. From inside
/// a signal handler, where locks are not allowed, set the shared flag
/// returned by [`CancelToken::flag`] instead (e.g. register it with
/// `signal_hook::flag::register`); the scheduler checks it at least every
/// few milliseconds.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    flag: Arc<AtomicBool>,
    lock: Mutex<()>,
    wake: Condvar,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token over an existing flag (e.g. one a signal handler sets).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        CancelToken {
            inner: Arc::new(Inner {
                flag,
                lock: Mutex::new(()),
                wake: Condvar::new(),
            }),
        }
    }

    /// The shared flag; storing `true` cancels (async-signal-safe).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.inner.flag)
    }

    /// Cancel, and wake anyone waiting on this token.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        let _guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.wake.notify_all();
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Sleep up to `timeout`, returning early when cancelled; returns
    /// [`is_cancelled`](Self::is_cancelled).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_cancelled() {
            return true;
        }
        let _unused = self
            .inner
            .wake
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner());
        self.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn clones_share_the_flag() {
        let a = CancelToken::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        a.cancel();
        assert!(b.is_cancelled());
    }

    #[test]
    fn cancel_wakes_a_waiter() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let start = Instant::now();
        let h = std::thread::spawn(move || t2.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        t.cancel();
        assert!(h.join().unwrap());
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn flag_store_cancels() {
        let t = CancelToken::new();
        t.flag().store(true, Ordering::SeqCst);
        assert!(t.is_cancelled());
        assert!(t.wait_timeout(Duration::from_secs(30)));
        let shared = Arc::new(AtomicBool::new(false));
        let t = CancelToken::from_flag(Arc::clone(&shared));
        shared.store(true, Ordering::SeqCst);
        assert!(t.is_cancelled());
    }
}
