//! Sandbox-wide state the control server shares with the kernel: exit statuses kept for
//! `Wait`, the pause gate of `Pause`/`Resume`, the start gate of a waiting init, and the
//! emulated resource limits (pids, memory).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::kernel::ExitStatus;

/// A flag with waiters: set once (or toggled), waited for by others.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn set(&self, open: bool) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = open;
        self.cv.notify_all();
    }

    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until the gate is open or `give_up()` says to stop (checked every 50 ms).
    pub fn wait_open(&self, give_up: impl Fn() -> bool) -> bool {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *g {
                return true;
            }
            if give_up() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Blocks while the gate is closed... inverted: while `*flag` is true.
    fn wait_while_set(&self, give_up: impl Fn() -> bool) {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while *g && !give_up() {
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Control state of one sandbox (a field of the kernel).
#[derive(Debug, Default)]
pub struct KernelControl {
    /// Exit statuses of processes the control server started (and init), kept until a
    /// `Wait` collects them; `None` while the process runs.
    exits: Mutex<HashMap<i32, Option<ExitStatus>>>,
    exits_cv: Condvar,
    /// Set while the sandbox is paused: tasks hold at their next return to the sentry.
    paused_flag: AtomicBool,
    paused: Gate,
    /// The most tasks the sandbox may hold (0: no limit).
    pub pids_limit: AtomicU64,
    /// The most bytes of memory-file pages the sandbox may use (0: no limit).
    pub memory_limit: AtomicU64,
    /// Set once the OOM killer acted.
    pub oom_killed: AtomicBool,
}

impl KernelControl {
    /// Starts keeping the exit status of `pid` for a later `Wait`.
    pub fn watch(&self, pid: i32) {
        self.exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pid)
            .or_insert(None);
    }

    /// Stops keeping `pid`'s status (it never ran).
    pub fn unwatch(&self, pid: i32) {
        self.exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
    }

    /// Whether `pid` is watched (started by the control server, not yet waited).
    pub fn is_watched(&self, pid: i32) -> bool {
        self.exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&pid)
    }

    /// Called by the kernel when a thread group has exited.
    pub fn group_exited(&self, pid: i32, status: ExitStatus) {
        let mut e = self.exits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = e.get_mut(&pid) {
            *slot = Some(status);
            self.exits_cv.notify_all();
        }
    }

    /// Blocks until watched `pid` has exited and forgets it; `None` if it is not watched.
    /// `alive` tells whether the sandbox still runs (a dead sandbox ends every wait).
    pub fn wait_exit(&self, pid: i32, alive: impl Fn() -> bool) -> Option<ExitStatus> {
        let mut e = self.exits.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match e.get(&pid) {
                None => return None,
                Some(Some(s)) => {
                    let s = *s;
                    if pid != 1 {
                        e.remove(&pid);
                    }
                    return Some(s);
                }
                Some(None) if !alive() => {
                    return Some(ExitStatus::signaled(
                        rvisor_syscalls::flags::signal::SIGKILL,
                    ))
                }
                Some(None) => {}
            }
            e = self
                .exits_cv
                .wait_timeout(e, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Pauses (true) or resumes (false) the sandbox's tasks.
    pub fn set_paused(&self, paused: bool) {
        self.paused_flag.store(paused, Ordering::SeqCst);
        self.paused.set(paused);
    }

    pub fn is_paused(&self) -> bool {
        self.paused_flag.load(Ordering::SeqCst)
    }

    /// Called by a task on its way back to guest code: holds it while the sandbox is
    /// paused (or until `give_up()`, e.g. it is being killed).
    pub fn hold_if_paused(&self, give_up: impl Fn() -> bool) {
        if self.paused_flag.load(Ordering::Relaxed) {
            self.paused.wait_while_set(give_up);
        }
    }

    /// Whether a new task would go beyond the pids limit, given the current count.
    pub fn pids_exceeded(&self, tasks: usize) -> bool {
        let lim = self.pids_limit.load(Ordering::Relaxed);
        lim != 0 && tasks as u64 >= lim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_kept_until_waited_once() {
        let c = KernelControl::default();
        c.watch(5);
        c.group_exited(5, ExitStatus::Exited(3));
        assert_eq!(c.wait_exit(5, || true), Some(ExitStatus::Exited(3)));
        assert_eq!(c.wait_exit(5, || true), None);
    }

    #[test]
    fn unwatched_exit_is_not_kept() {
        let c = KernelControl::default();
        c.group_exited(7, ExitStatus::Exited(0));
        assert!(!c.is_watched(7));
    }

    #[test]
    fn pids_limit_counts_tasks() {
        let c = KernelControl::default();
        assert!(!c.pids_exceeded(1000));
        c.pids_limit.store(3, Ordering::Relaxed);
        assert!(!c.pids_exceeded(2));
        assert!(c.pids_exceeded(3));
    }
}
