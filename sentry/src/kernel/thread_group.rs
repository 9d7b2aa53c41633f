//! Thread groups (processes): membership, the process tree, process groups and sessions,
//! group-wide signal state, and exit status.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
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
    /// The parent's `self_exec_id` when this group was made (Linux's `parent_exec_id`): a
    /// custom exit signal is sent only to a parent that has not exec'd since.
    pub parent_exec_id: u64,
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
    /// The host process running the group's guest code (a ptrace stub: its CPU clock is
    /// the group's CPU time), the CPU time of earlier ones (before an execve), and of the
    /// waited-for children, in ns. A vfork child shares its parent's host process and is
    /// not measured until it execs.
    host_process: AtomicI32,
    /// Set once the group starts exiting: the run loop checks it on every return from the
    /// guest without taking the group's lock.
    pub exiting: AtomicBool,
    pub cpu_untracked: AtomicBool,
    cpu_base_ns: AtomicU64,
    pub children_cpu_ns: AtomicU64,
    /// The name (comm) /proc shows once the group has no live thread (a zombie): the
    /// leader's when it exits, else the last thread's.
    pub exited_comm: Mutex<Vec<u8>>,
    /// How many execve calls the group has made (Linux's `self_exec_id`).
    pub self_exec_id: AtomicU64,
    /// /proc/PID/oom_score_adj (-1000..=1000): inherited at fork, kept across execve.
    pub oom_score_adj: AtomicI32,
    /// The lowest oom_score_adj the group may go back to without CAP_SYS_RESOURCE (the
    /// last value a privileged writer set; Linux's `oom_score_adj_min`).
    pub oom_score_adj_min: AtomicI32,
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
                parent_exec_id: 0,
            }),
            handlers: Mutex::new(handlers),
            child_events: WaitQueue::new(),
            state_events: WaitQueue::new(),
            host_process: AtomicI32::new(0),
            exiting: AtomicBool::new(false),
            cpu_untracked: AtomicBool::new(false),
            cpu_base_ns: AtomicU64::new(0),
            children_cpu_ns: AtomicU64::new(0),
            exited_comm: Mutex::new(Vec::new()),
            oom_score_adj: AtomicI32::new(0),
            oom_score_adj_min: AtomicI32::new(0),
            self_exec_id: AtomicU64::new(0),
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

    /// Records the host process that runs the group's guest code (after every switch;
    /// only a change costs anything).
    pub fn note_host_process(&self, pid: i32) {
        if self.host_process.load(Ordering::Relaxed) != pid && !self.cpu_untracked.load(Ordering::Relaxed) {
            self.fold_cpu_time();
            self.host_process.store(pid, Ordering::Relaxed);
        }
    }

    /// Adds the current host process's CPU time to the total and forgets it (before it goes
    /// away: execve, exit).
    pub fn fold_cpu_time(&self) {
        let old = self.host_process.swap(0, Ordering::Relaxed);
        if let Some(d) = rvisor_platform::host_process_cpu_time(old) {
            self.cpu_base_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// The host pid of the process running the group's guest code (0: none now).
    pub fn host_pid(&self) -> i32 {
        self.host_process.load(Ordering::Relaxed)
    }

    /// CPU time the group's guest code has used (ns).
    pub fn cpu_time_ns(&self) -> u64 {
        let cur = rvisor_platform::host_process_cpu_time(self.host_process.load(Ordering::Relaxed)).map_or(0, |d| d.as_nanos() as u64);
        self.cpu_base_ns.load(Ordering::Relaxed) + cur
    }

    /// Sets oom_score_adj to `adj` as a writer with (`privileged`) or without
    /// CAP_SYS_RESOURCE: EINVAL outside -1000..=1000, EACCES below the group's minimum
    /// without the capability; a privileged write also sets the minimum.
    pub fn set_oom_score_adj(&self, adj: i32, privileged: bool) -> Result<(), rvisor_syscalls::Errno> {
        use rvisor_syscalls::flags::oom::{OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN};
        if !(OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX).contains(&adj) {
            return Err(rvisor_syscalls::Errno::EINVAL);
        }
        // The group's lock orders concurrent writers.
        let _g = self.lock();
        if adj < self.oom_score_adj_min.load(Ordering::Relaxed) && !privileged {
            return Err(rvisor_syscalls::Errno::EACCES);
        }
        self.oom_score_adj.store(adj, Ordering::Relaxed);
        if privileged {
            self.oom_score_adj_min.store(adj, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the group can still receive signals and run.
    pub fn is_alive(&self) -> bool {
        matches!(self.lock().state, TgState::Running)
    }
}
