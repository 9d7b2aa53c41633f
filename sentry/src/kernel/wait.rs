//! Blocking: wait queues, the per-task waker, and interruptible waits.
//!
//! Every task runs on its own host thread, so "the current task" is a thread-local: code at
//! any depth (a pipe read, a futex wait, poll) can block with [`block_on`] and be woken by an
//! event it registered for, by its deadline, or by a signal sent to the task.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rvisor_syscalls::Errno;

/// Wakes one blocked task. Wake-ups are never lost: a wake before the wait makes the wait
/// return at once.
#[derive(Debug, Default)]
pub struct Waker {
    woken: Mutex<bool>,
    cv: Condvar,
    /// Set by whoever wants the task to leave a blocking call (a signal, a kill).
    interrupted: AtomicBool,
}

impl Waker {
    pub fn new() -> Arc<Waker> {
        Arc::new(Waker::default())
    }

    /// Wakes the task if it is blocked (or makes its next wait return).
    pub fn wake(&self) {
        let mut w = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        *w = true;
        self.cv.notify_one();
    }

    /// Asks the task to leave any interruptible wait (a signal arrived).
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether an interrupt is pending; the signal code clears it once delivered.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Clears the interrupt flag (the task handled its signals).
    pub fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }

    /// Reads and clears the "woken" state without sleeping: whether a wake-up arrived since
    /// the last wait or take (used by wakers no task sleeps on, as change notifications).
    pub fn take_woken(&self) -> bool {
        std::mem::replace(&mut *self.woken.lock().unwrap_or_else(|p| p.into_inner()), false)
    }

    /// Sleeps until woken or `deadline`; returns false on timeout.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut w = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        while !*w {
            match deadline {
                None => w = self.cv.wait(w).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    w = self.cv.wait_timeout(w, d - now).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        }
        *w = false;
        true
    }
}

/// Tasks waiting for something to change (a pipe's contents, a child's state, ...).
#[derive(Debug, Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<Waker>>>,
}

impl WaitQueue {
    pub fn new() -> WaitQueue {
        WaitQueue::default()
    }

    /// Wakes every waiter; each re-checks its condition.
    pub fn notify_all(&self) {
        let waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for w in waiters.iter() {
            w.wake();
        }
    }

    pub fn add(&self, w: &Arc<Waker>) {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).push(w.clone());
    }

    pub fn remove(&self, w: &Arc<Waker>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = waiters.iter().position(|x| Arc::ptr_eq(x, w)) {
            waiters.swap_remove(i);
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Waker>>> = const { RefCell::new(None) };
}

/// Makes `w` the waker of the task running on this host thread.
pub fn set_current_waker(w: Arc<Waker>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(w));
}

/// The waker of the task on this host thread (a private one on threads without a task,
/// e.g. in unit tests).
pub fn current_waker() -> Arc<Waker> {
    // During thread teardown the local is gone: a private waker (nothing blocks then).
    CURRENT
        .try_with(|c| c.try_borrow_mut().ok().map(|mut w| w.get_or_insert_with(Waker::new).clone()))
        .ok()
        .flatten()
        .unwrap_or_else(Waker::new)
}

/// Blocks the current task until `check` returns `Some`, `deadline` passes (ETIMEDOUT), or
/// a signal interrupts it (ERESTARTSYS: the syscall layer turns it into EINTR or a restart).
/// `check` runs after registering on `queues`, so an event between the check and the sleep
/// is not lost.
pub fn block_on<T>(queues: &[&WaitQueue], deadline: Option<Instant>, mut check: impl FnMut() -> Option<Result<T, Errno>>) -> Result<T, Errno> {
    let w = current_waker();
    for q in queues {
        q.add(&w);
    }
    let result = loop {
        if let Some(r) = check() {
            break r;
        }
        if w.is_interrupted() {
            break Err(Errno::ERESTARTSYS);
        }
        if !w.wait(deadline) {
            break check().unwrap_or(Err(Errno::ETIMEDOUT));
        }
    };
    for q in queues {
        q.remove(&w);
    }
    result
}

/// Sleeps until `deadline` or a signal (ERESTARTSYS). Ok on timeout.
pub fn sleep_until(deadline: Instant) -> Result<(), Errno> {
    match block_on::<()>(&[], Some(deadline), || None) {
        Err(Errno::ETIMEDOUT) => Ok(()),
        other => other,
    }
}

/// Helpers for tests that block threads on wait queues.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::{mpsc, Arc};

    use super::{current_waker, Waker};

    /// Runs `f` on a new thread that first hands over its waker (so the test can interrupt it).
    pub(crate) fn spawn_with_waker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (Arc<Waker>, std::thread::JoinHandle<T>) {
        let (tx, rx) = mpsc::channel();
        let h = std::thread::spawn(move || {
            tx.send(current_waker()).unwrap();
            f()
        });
        (rx.recv().unwrap(), h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_notify_wakes_a_blocked_waiter_and_the_condition_is_rechecked() {
        let q = Arc::new(WaitQueue::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (q2, f2) = (q.clone(), flag.clone());
        let h = std::thread::spawn(move || block_on(&[&q2], None, || f2.load(Ordering::SeqCst).then_some(Ok(7))));
        std::thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::SeqCst);
        q.notify_all();
        assert_eq!(h.join().unwrap(), Ok(7));
    }

    #[test]
    fn deadline_gives_etimedout_and_interrupt_gives_erestartsys() {
        let r: Result<(), Errno> = block_on(&[], Some(Instant::now() + Duration::from_millis(5)), || None);
        assert_eq!(r, Err(Errno::ETIMEDOUT));
        current_waker().interrupt();
        let r: Result<(), Errno> = block_on(&[], None, || None);
        assert_eq!(r, Err(Errno::ERESTARTSYS));
        current_waker().clear_interrupt();
    }
}
