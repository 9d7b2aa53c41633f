//! Tasks: one guest thread each, running on its own host thread.
//!
//! A [`Task`] is owned by its host thread and holds what only that thread touches (registers,
//! platform context, the signal alternate stack). What other tasks need to reach — its id,
//! its waker, its signal mask and pending signals — lives in the shared [`TaskHandle`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_platform::{Context, Interrupter, Regs};
use rvisor_syscalls::flags::at::AT_FDCWD;
use rvisor_syscalls::flags::limits::PATH_MAX;
use rvisor_syscalls::flags::rlimit::*;
use rvisor_syscalls::types::{Rlimit, SigAltStack, SigSet};
use rvisor_syscalls::{Errno, Pod};

use super::fdtable::{FdTable, DEFAULT_NOFILE};
use super::signal::SignalInfo;
use super::thread_group::ThreadGroup;
use super::wait::Waker;
use super::Kernel;
use crate::mm::MemoryManager;
use crate::vfs::{Dentry, FileDescription, Lookup};

/// How a task or thread group ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit(2) with this status (0..=255).
    Exited(i32),
    /// Killed by this signal (`core`: the default action dumps core).
    Signaled { sig: u32, core: bool },
}

impl ExitStatus {
    /// The status a shell (and `rvisor do`) reports: the code, or 128+N for signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled { sig, .. } => 128 + sig as i32,
        }
    }

    /// The wait(2) status word.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Signaled { sig, core } => sig as i32 | if core { 0x80 } else { 0 },
        }
    }

    /// A death by `sig`.
    pub fn signaled(sig: u32) -> ExitStatus {
        use super::signal::{default_action, DefaultAction};
        ExitStatus::Signaled { sig, core: default_action(sig) == DefaultAction::CoreDump }
    }
}

/// User and group identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Capability sets (emulated; see kernel::caps).
    pub caps: super::caps::CapSets,
}

impl Creds {
    /// All ids set to `uid`/`gid`.
    pub fn new(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds { uid, euid: uid, suid: uid, fsuid: uid, gid, egid: gid, sgid: gid, fsgid: gid, groups, caps: super::caps::CapSets::for_uid(uid) }
    }
}

/// Root, working directory and umask.
#[derive(Clone)]
pub struct FsContext {
    pub root: Arc<Dentry>,
    pub cwd: Arc<Dentry>,
    pub umask: u32,
}

/// Linux's default resource limits for a new init process.
pub fn default_rlimits() -> [Rlimit; RLIM_NLIMITS] {
    let inf = Rlimit { rlim_cur: RLIM_INFINITY, rlim_max: RLIM_INFINITY };
    let mut r = [inf; RLIM_NLIMITS];
    r[RLIMIT_STACK as usize] = Rlimit { rlim_cur: 8 << 20, rlim_max: RLIM_INFINITY };
    r[RLIMIT_CORE as usize] = Rlimit { rlim_cur: 0, rlim_max: RLIM_INFINITY };
    r[RLIMIT_NOFILE as usize] = Rlimit { rlim_cur: DEFAULT_NOFILE, rlim_max: 1 << 20 };
    r[RLIMIT_MEMLOCK as usize] = Rlimit { rlim_cur: 8 << 20, rlim_max: 8 << 20 };
    r[RLIMIT_NPROC as usize] = Rlimit { rlim_cur: 127_000, rlim_max: 127_000 };
    r[RLIMIT_SIGPENDING as usize] = Rlimit { rlim_cur: 127_000, rlim_max: 127_000 };
    r[RLIMIT_MSGQUEUE as usize] = Rlimit { rlim_cur: 819_200, rlim_max: 819_200 };
    r[RLIMIT_NICE as usize] = Rlimit { rlim_cur: 0, rlim_max: 0 };
    r[RLIMIT_RTPRIO as usize] = Rlimit { rlim_cur: 0, rlim_max: 0 };
    r
}

/// Per-thread signal state other tasks touch.
#[derive(Debug, Default)]
pub struct TaskSignals {
    /// Blocked signals.
    pub mask: SigSet,
    /// Thread-directed pending signals, in arrival order.
    pub pending: VecDeque<SignalInfo>,
    /// The mask in force before rt_sigtimedwait unblocked the awaited signals: such a
    /// signal still counts as blocked when deciding whether to discard it.
    pub real_blocked: SigSet,
}

/// Where a process image keeps its argv and envp strings (for /proc/pid/cmdline and
/// environ), as the loader laid them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgRanges {
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// What /proc shows about a task that only the task's own thread changes. The task
/// publishes it at the rare points where it changes (start, execve, prctl(PR_SET_NAME),
/// set*id), so the syscall path takes no extra lock; readers clone it.
#[derive(Clone, Default)]
pub struct TaskProcInfo {
    pub mm: Option<Arc<MemoryManager>>,
    pub fds: Option<Arc<Mutex<FdTable>>>,
    pub fs: Option<Arc<Mutex<FsContext>>>,
    pub rlimits: Option<Arc<Mutex<[Rlimit; RLIM_NLIMITS]>>>,
    pub comm: Vec<u8>,
    pub creds: Creds,
    /// The executable of the current image (the interpreter of a `#!` script).
    pub exe: Option<Arc<Dentry>>,
    pub args: ArgRanges,
    /// PR_SET_NO_NEW_PRIVS (/proc/PID/status NoNewPrivs).
    pub no_new_privs: bool,
}

/// The part of a task other tasks can reach.
pub struct TaskHandle {
    tid: AtomicI32,
    pub tg: Arc<ThreadGroup>,
    pub waker: Arc<Waker>,
    interrupter: Mutex<Option<Interrupter>>,
    sig: Mutex<TaskSignals>,
    /// Asked to exit without ending its group (another thread's execve).
    pub exit_requested: AtomicBool,
    /// Exited (gone from its thread group).
    pub exited: AtomicBool,
    /// Signal sent to this thread when its parent process exits (PR_SET_PDEATHSIG).
    pub pdeath_signal: std::sync::atomic::AtomicU32,
    /// When the task was created (/proc/pid/stat starttime).
    pub start_time: std::time::Instant,
    proc_info: Mutex<TaskProcInfo>,
}

impl TaskHandle {
    pub fn new(tid: i32, tg: Arc<ThreadGroup>, mask: SigSet) -> Arc<TaskHandle> {
        Arc::new(TaskHandle {
            tid: AtomicI32::new(tid),
            tg,
            waker: Waker::new(),
            interrupter: Mutex::new(None),
            sig: Mutex::new(TaskSignals { mask, pending: VecDeque::new(), real_blocked: SigSet::default() }),
            exit_requested: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            pdeath_signal: std::sync::atomic::AtomicU32::new(0),
            start_time: std::time::Instant::now(),
            proc_info: Mutex::new(TaskProcInfo::default()),
        })
    }

    /// A snapshot of what /proc shows about the task.
    pub fn proc_info(&self) -> TaskProcInfo {
        self.proc_info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Updates the published /proc view.
    pub fn update_proc_info(&self, f: impl FnOnce(&mut TaskProcInfo)) {
        f(&mut self.proc_info.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    pub(super) fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Relaxed);
    }

    pub fn set_interrupter(&self, i: Interrupter) {
        *self.interrupter.lock().unwrap_or_else(|p| p.into_inner()) = Some(i);
    }

    /// The task's signal state. Lock order: thread group before task.
    pub fn signals(&self) -> MutexGuard<'_, TaskSignals> {
        self.sig.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the task's guest code (if it runs) without waking a blocking wait: it
    /// returns to the sentry, where the run loop looks at sandbox-wide state (pause).
    pub fn interrupt_guest(&self) {
        if let Some(i) = self.interrupter.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            i.interrupt();
        }
    }

    /// Makes the task look at its signals and exit requests soon: ends a blocking wait
    /// and stops guest code.
    pub fn kick(&self) {
        self.waker.interrupt();
        if let Some(i) = self.interrupter.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            i.interrupt();
        }
    }
}

thread_local! {
    static CURRENT_TASK: std::cell::RefCell<Option<Arc<TaskHandle>>> = const { std::cell::RefCell::new(None) };
}

/// Records the task this host thread runs (set once, when its thread starts).
///
/// The VFS calls filesystems without a caller argument; the few answers that depend on
/// who asks — procfs's `/proc/self` and `/proc/thread-self` — read it through
/// [`current_task`]. Every task runs on its own host thread, so a thread-local is exact
/// and keeps the inode API free of a context parameter only procfs would use.
pub fn set_current_task(h: Arc<TaskHandle>) {
    CURRENT_TASK.with(|c| *c.borrow_mut() = Some(h));
}

/// The task running on this host thread (`None` on sentry threads that run no task, and
/// while the thread's locals are being destroyed: dropping the last reference to a task's
/// state at thread exit may close files whose hooks ask).
pub fn current_task() -> Option<Arc<TaskHandle>> {
    CURRENT_TASK.try_with(|c| c.try_borrow().ok().and_then(|t| t.clone())).ok().flatten()
}

thread_local! {
    /// The kernel of the task running on this host thread, for code below the syscall
    /// layer that acts on other processes (terminal job control, /dev/tty, /dev/ptmx).
    static CURRENT_KERNEL: std::cell::RefCell<Option<Arc<Kernel>>> = const { std::cell::RefCell::new(None) };
}

/// Records the kernel of the task this host thread runs (with [`set_current_task`]).
pub fn set_current_kernel(kernel: Arc<Kernel>) {
    CURRENT_KERNEL.with(|c| *c.borrow_mut() = Some(kernel));
}

/// The kernel of the task running on this host thread (`None` as for [`current_task`]).
pub fn current_kernel() -> Option<Arc<Kernel>> {
    CURRENT_KERNEL.try_with(|c| c.try_borrow().ok().and_then(|k| k.clone())).ok().flatten()
}

/// How an interrupted syscall is resumed through restart_syscall(2).
pub enum RestartBlock {
    /// nanosleep/clock_nanosleep: sleep until this deadline, then write nothing.
    Sleep { deadline: std::time::Instant, rem_addr: u64 },
}

/// One guest thread, owned by its host thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub handle: Arc<TaskHandle>,
    /// The guest's registers while it is stopped in the sentry.
    pub regs: Regs,
    pub context: Box<dyn Context>,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<Mutex<FdTable>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub creds: Creds,
    pub rlimits: Arc<Mutex<[Rlimit; RLIM_NLIMITS]>>,
    /// The thread's name (comm), at most 15 bytes.
    pub comm: Vec<u8>,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub no_new_privs: bool,
    pub altstack: SigAltStack,
    /// The mask to restore after the handler run by rt_sigsuspend/ppoll/pselect.
    pub saved_mask: Option<SigSet>,
    /// An ERESTART* result of the last syscall, resolved at signal delivery.
    pub restart: Option<Errno>,
    pub restart_block: Option<RestartBlock>,
    /// This thread's own exit (exit(2)); the group's exit lives in the thread group.
    pub exit: Option<ExitStatus>,
}

impl Task {
    pub fn tid(&self) -> i32 {
        self.handle.tid()
    }

    pub fn tgid(&self) -> i32 {
        self.handle.tg.tgid
    }

    pub fn tg(&self) -> &Arc<ThreadGroup> {
        &self.handle.tg
    }

    pub fn fds(&self) -> MutexGuard<'_, FdTable> {
        // A poisoned lock means a sentry thread panicked while holding it; the table is
        // still structurally valid, so carry on rather than take the sandbox down.
        self.fds.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn fs(&self) -> MutexGuard<'_, FsContext> {
        self.fs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file behind guest fd `fd`.
    pub fn file(&self, fd: i32) -> Result<Arc<FileDescription>, Errno> {
        self.fds().get(fd)
    }

    /// The soft limit of `resource`.
    pub fn rlimit(&self, resource: u32) -> u64 {
        let r = self.rlimits.lock().unwrap_or_else(|p| p.into_inner());
        r.get(resource as usize).map(|l| l.rlim_cur).unwrap_or(RLIM_INFINITY)
    }

    /// Installs `file` at the lowest free fd.
    pub fn install_fd(&self, file: Arc<FileDescription>, cloexec: bool) -> Result<i32, Errno> {
        let limit = self.rlimit(RLIMIT_NOFILE);
        self.fds().install(file, cloexec, 0, limit)
    }

    /// Copies a NUL-terminated path from guest memory (EFAULT, ENAMETOOLONG).
    pub fn copy_in_path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        self.mm.copy_in_cstring(addr, PATH_MAX)
    }

    pub fn read_obj<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        self.mm.read_obj(addr)
    }

    pub fn write_obj<T: Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.mm.write_obj(addr, v)
    }

    /// The directory a `*at()` call with `dirfd` starts from.
    pub fn dir_of(&self, dirfd: i32) -> Result<Arc<Dentry>, Errno> {
        if dirfd == AT_FDCWD {
            return Ok(self.fs().cwd.clone());
        }
        let f = self.file(dirfd)?;
        let d = f.dentry().ok_or(Errno::ENOTDIR)?.clone();
        if !d.inode().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(d)
    }

    /// Resolves `path` relative to `dirfd` like the kernel's `*at()` calls.
    pub fn lookup_at(&self, dirfd: i32, path: &[u8], follow_last: bool) -> Result<Arc<Dentry>, Errno> {
        let root = self.fs().root.clone();
        let start = if path.first() == Some(&b'/') { root.clone() } else { self.dir_of(dirfd)? };
        self.kernel.vfs.resolve(&Lookup { root: &root, start: &start, follow_last, creds: Some(&self.creds) }, path)
    }

    /// Publishes the task's address space, tables, name and credentials for /proc (call
    /// after changing any of them; not on the hot path).
    pub fn publish_proc_info(&self) {
        self.handle.update_proc_info(|p| {
            p.mm = Some(self.mm.clone());
            p.fds = Some(self.fds.clone());
            p.fs = Some(self.fs.clone());
            p.rlimits = Some(self.rlimits.clone());
            p.comm = self.comm.clone();
            p.creds = self.creds.clone();
            p.no_new_privs = self.no_new_privs;
        });
    }

    /// The blocked-signal mask.
    pub fn sigmask(&self) -> SigSet {
        self.handle.signals().mask
    }
}
