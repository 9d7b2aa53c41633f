//! Thread groups (processes): membership, the process tree, process groups and sessions,
//! group-wide signal state, and exit status.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rvisor_syscalls::types::SigAction;

use super::signal::SignalInfo;
use super::task::{ExitStatus, TaskHandle};
use super::wait::WaitQueue;

/// Signal dispositions, shared by the thread groups' tasks (and by CLONE_SIGHAND processes).
pub type SigHandlers = Arc<Mutex<[SigAction; 64]>>;

/// Where a thread group is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TgState {
    Running,
    /// exit_group or a fatal signal is tearing the group down; threads are leaving.
    Exiting(ExitStatus),
    /// Every thread has exited; waiting to be reaped by the parent.
    Zombie(ExitStatus),
    /// Reaped: gone from the process tree.
    Dead,
}

/// Job-control state changes a parent may collect with WUNTRACED/WCONTINUED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopEvent {
    Stopped(u32),
    Continued,
}

/// Mutable state of a thread group.
pub struct TgInner {
    pub state: TgState,
    pub parent: Weak<ThreadGroup>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub threads: Vec<Arc<TaskHandle>>,
    pub pgid: i32,
    pub sid: i32,
    /// Signal sent to the parent when the group exits (usually SIGCHLD; 0 for none).
    pub exit_signal: u32,
    /// Process-directed pending signals.
    pub shared_pending: VecDeque<SignalInfo>,
    /// A stop or continue not yet reported to the parent's wait.
    pub stop_event: Option<StopEvent>,
    /// Group stop in effect (SIGSTOP and friends).
    pub stopped: bool,
    pub child_subreaper: bool,
    /// Set when the group's leader has exec'd a new image (vfork parents wait for it).
    pub vfork_done: bool,
}

/// A process.
pub struct ThreadGroup {
    pub tgid: i32,
    inner: Mutex<TgInner>,
    pub handlers: Mutex<SigHandlers>,
    /// Notified when a child changes state (exit, stop, continue) — wait4's queue — and when
    /// a vfork child releases its parent.
    pub child_events: WaitQueue,
    /// Notified when the group's own state changes (its threads wait on it while stopped).
    pub state_events: WaitQueue,
}

impl ThreadGroup {
    pub fn new(tgid: i32, parent: Weak<ThreadGroup>, pgid: i32, sid: i32, exit_signal: u32, handlers: SigHandlers) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            tgid,
            inner: Mutex::new(TgInner {
                state: TgState::Running,
                parent,
                children: Vec::new(),
                threads: Vec::new(),
                pgid,
                sid,
                exit_signal,
                shared_pending: VecDeque::new(),
                stop_event: None,
                stopped: false,
                child_subreaper: false,
                vfork_done: false,
            }),
            handlers: Mutex::new(handlers),
            child_events: WaitQueue::new(),
            state_events: WaitQueue::new(),
        })
    }

    /// The group's state. Lock order: a parent's lock before a child's, the kernel's
    /// process table before any group.
    pub fn lock(&self) -> MutexGuard<'_, TgInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn handlers(&self) -> SigHandlers {
        self.handlers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn parent(&self) -> Option<Arc<ThreadGroup>> {
        self.lock().parent.upgrade()
    }

    pub fn pgid(&self) -> i32 {
        self.lock().pgid
    }

    pub fn sid(&self) -> i32 {
        self.lock().sid
    }

    /// The exit status if the group is exiting or has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match self.lock().state {
            TgState::Exiting(s) | TgState::Zombie(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the group can still receive signals and run.
    pub fn is_alive(&self) -> bool {
        matches!(self.lock().state, TgState::Running)
    }
}
