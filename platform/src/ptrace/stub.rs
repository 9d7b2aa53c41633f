//! Stub processes: the zygote (forked from the sentry, reduced to a hand-assembled
//! machine-code blob), stubs forked from it, the per-thread tracer state, and syscall
//! injection.
//!
//! **The zygote** is a forked copy of the sentry that throws the copy away: the child maps
//! the stub blob at [`STUB_ADDR`], confines itself with the zygote seccomp filter and jumps
//! to the blob, which unmaps every other page of the address space (the sentry's memory,
//! the vDSO, the vvar page) and stops with `int3`. From then on the process contains only
//! the one stub page plus whatever the tracer maps into it by injecting `mmap` calls at the
//! blob's injection site (`syscall; int3`). It is made once per platform, before the sentry
//! installs its own seccomp filter, so that the sentry never needs to fork, make a page
//! executable, or map anything executable itself ([`spawn_zygote`]).
//!
//! **A stub** (one per address space) is forked from the zygote by a `clone` injected at the
//! blob's clone site ([`fork_stub`]): an exact copy, holding the memory file as its
//! descriptor [`STUB_MEMFD`]. It waits untraced in the blob's `pause` loop with every signal
//! blocked until its address space's master thread seizes it and makes it stack the stub
//! filter, which forbids forking and further filters ([`attach_new_process`]).
//!
//! A stub's first thread is traced by its address space's master thread (`master.rs`) and
//! never runs guest code: it only makes new stub threads, by `clone` injected at the clone
//! site, for host threads that want to run in the address space (see
//! [`attach_new_thread`]). Each such stub thread is traced by its host thread and retired by
//! it with an injected `exit` ([`retire`]).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::errno::Errno;

use super::fp::{self, FpKind};
use super::seccomp;
use super::sys::{self, WaitStatus};
use super::threads;
use super::INTERRUPT_SIGNAL;
use crate::{FpState, PlatformError, Regs};

pub use super::blob::{
    CLONE_ADDR, CLONE_TRAP_RIP, INJECT_ADDR, STUB_ADDR, STUB_FPROG_ADDR, STUB_MEMFD, STUB_SIZE,
};
use super::blob::{stub_blob, EXIT_BLOB, INJECT_TRAP_RIP, READY_TRAP_RIP, START_TRAP_RIP};

/// Exit statuses of the zygote child when a set-up step fails (reported in `StubDied`).
const EXIT_PDEATHSIG: i32 = 10;
const EXIT_PARENT_GONE: i32 = 11;
const EXIT_TRACEME: i32 = 12;
const EXIT_MPROTECT: i32 = 13;
const EXIT_DUP2: i32 = 14;
const EXIT_SECCOMP: i32 = 15;
const EXIT_SIGACTION: i32 = 16;

fn describe_exit(status: WaitStatus) -> String {
    let step = match status {
        WaitStatus::Exited(EXIT_PDEATHSIG) => " (stub set-up: PR_SET_PDEATHSIG failed)",
        WaitStatus::Exited(EXIT_PARENT_GONE) => " (stub set-up: the sentry went away)",
        WaitStatus::Exited(EXIT_TRACEME) => " (stub set-up: PTRACE_TRACEME failed)",
        WaitStatus::Exited(EXIT_MPROTECT) => " (stub set-up: mprotect of the stub page failed)",
        WaitStatus::Exited(EXIT_DUP2) => " (stub set-up: dup2 of the memory file failed)",
        WaitStatus::Exited(EXIT_SECCOMP) => " (stub set-up: installing the seccomp filter failed)",
        WaitStatus::Exited(EXIT_SIGACTION) => " (stub set-up: SA_NOCLDWAIT for SIGCHLD failed)",
        WaitStatus::Exited(EXIT_BLOB) => " (stub set-up: unmapping the sentry's memory failed)",
        WaitStatus::Signaled(libc::SIGSYS) => " (stub seccomp filter)",
        _ => "",
    };
    format!("{}{}", status.describe(), step)
}

// ---------------------------------------------------------------------------------------
// The reserved stub page in the sentry.

/// Reserves [`STUB_ADDR`] in the sentry as an inaccessible page, once per process, so that
/// nothing of the sentry (a thread stack, a library, a heap arena) can ever live there: the
/// zygote then turns its copy of this page into the stub page without clobbering
/// anything it still runs on. The sentry's copy stays `PROT_NONE`, so the sentry itself has
/// no executable `syscall` gadget at a fixed address.
pub fn reserve_stub_page() -> Result<(), PlatformError> {
    static RESERVED: OnceLock<Result<(), i32>> = OnceLock::new();
    let r = RESERVED.get_or_init(|| {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; we map a fresh,
        // inaccessible anonymous page that nothing in the process references.
        let p = unsafe {
            libc::mmap(
                STUB_ADDR as *mut libc::c_void,
                STUB_SIZE as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_NORESERVE
                    | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Errno::last() as i32);
        }
        if p as u64 != STUB_ADDR {
            // A kernel older than 4.17 treats MAP_FIXED_NOREPLACE as a hint.
            // SAFETY: `p` is the page we just mapped and nobody else knows about.
            unsafe { libc::munmap(p, STUB_SIZE as usize) };
            return Err(libc::EEXIST);
        }
        Ok(())
    });
    r.map_err(|errno| PlatformError::Host {
        call: "mmap (reserve the stub page)",
        source: std::io::Error::from_raw_os_error(errno),
    })
}

// ---------------------------------------------------------------------------------------
// Creating a stub.

/// Everything the forked child needs, prepared (and allocated) before `fork`.
struct ChildArgs<'a> {
    parent: libc::pid_t,
    memfd: i32,
    filter: &'a [libc::sock_filter],
    blob: &'a [u8],
    max_fd: u32,
}

/// The forked child. Runs in a copy of a multi-threaded process, so it makes only raw,
/// async-signal-safe libc calls: no allocation, no locks, no panics.
///
/// # Safety
/// Must only be called in the child right after `fork`.
unsafe fn child_main(a: &ChildArgs<'_>) -> ! {
    // SAFETY (whole function): every call below is a thin libc syscall wrapper given
    // integer arguments or pointers to live locals/`a`'s borrowed data, which the fork
    // copied into this process; the stub page was reserved before fork, so changing its
    // protection and writing the blob into it clobbers nothing this code still uses.
    unsafe {
        // Let the tracer see every signal (the sentry thread may block some).
        let empty: u64 = 0;
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            0usize,
            8usize,
        );
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            libc::_exit(EXIT_PDEATHSIG);
        }
        if libc::getppid() != a.parent {
            libc::_exit(EXIT_PARENT_GONE);
        }
        // The zygote and the stubs forked from it show as stubs in ps (not by the name
        // of the sentry thread that forked the zygote). Best effort.
        libc::prctl(libc::PR_SET_NAME, c"rvisor-stub".as_ptr(), 0, 0, 0);
        // The stubs forked from the zygote are reaped by the kernel when their tracer has
        // collected their exit (SIGCHLD stays at its default action, "ignore"; the stubs
        // inherit this and have no children).
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        sa.sa_flags = libc::SA_NOCLDWAIT;
        if libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()) != 0 {
            libc::_exit(EXIT_SIGACTION);
        }
        if libc::syscall(libc::SYS_ptrace, sys::PTRACE_TRACEME, 0, 0, 0) != 0 {
            libc::_exit(EXIT_TRACEME);
        }
        let page = STUB_ADDR as *mut libc::c_void;
        if libc::mprotect(page, STUB_SIZE as usize, libc::PROT_READ | libc::PROT_WRITE) != 0 {
            libc::_exit(EXIT_MPROTECT);
        }
        std::ptr::copy_nonoverlapping(a.blob.as_ptr(), page as *mut u8, a.blob.len());
        if libc::mprotect(page, STUB_SIZE as usize, libc::PROT_READ | libc::PROT_EXEC) != 0 {
            libc::_exit(EXIT_MPROTECT);
        }
        if a.memfd != STUB_MEMFD && libc::dup2(a.memfd, STUB_MEMFD) != STUB_MEMFD {
            libc::_exit(EXIT_DUP2);
        }
        let lo = libc::syscall(libc::SYS_close_range, 0u32, (STUB_MEMFD - 1) as u32, 0u32);
        let hi = libc::syscall(
            libc::SYS_close_range,
            (STUB_MEMFD + 1) as u32,
            u32::MAX,
            0u32,
        );
        if lo != 0 || hi != 0 {
            // close_range is Linux 5.9+; close one by one below the fd limit.
            for fd in 0..a.max_fd as i32 {
                if fd != STUB_MEMFD {
                    libc::close(fd);
                }
            }
        }
        // The last syscall made from Rust code: from here on only the stub page may make
        // syscalls.
        if seccomp::install(a.filter) != 0 {
            libc::_exit(EXIT_SECCOMP);
        }
        std::arch::asm!("jmp {0}", in(reg) STUB_ADDR, options(noreturn));
    }
}

/// Kills and reaps a freshly forked child if set-up fails before it is handed over.
struct ChildGuard(Option<i32>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            kill_and_reap(pid);
        }
    }
}

/// SIGKILLs the stub process `pid` (the zygote, our child, or a stub we trace) and reaps it.
/// Never panics.
pub fn kill_and_reap(pid: i32) {
    // SAFETY: kill takes integers; `pid` is our unreaped child or tracee, so it cannot be
    // recycled.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    loop {
        match sys::wait(pid, 0) {
            Ok(Some(s)) if s.is_exit() => break,
            Ok(_) => continue,
            Err(_) => break,
        }
    }
}

/// Forks the zygote, traced by the calling thread (the platform's zygote master thread),
/// and waits until it is ready. Must run before the sentry's own seccomp filter is in place
/// (the zygote's set-up makes a page executable).
pub fn spawn_zygote(memfd: BorrowedFd<'_>) -> Result<StubThread, PlatformError> {
    reserve_stub_page()?;
    let filter = seccomp::zygote_filter();
    let blob = stub_blob();
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct rlimit to a live local.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim) };
    let args = ChildArgs {
        // SAFETY: getpid has no arguments.
        parent: unsafe { libc::getpid() },
        memfd: memfd.as_raw_fd(),
        filter: &filter,
        blob: &blob,
        max_fd: rlim.rlim_cur.min(1 << 16) as u32,
    };
    // SAFETY: the child runs only `child_main`, which is async-signal-safe and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(PlatformError::last_os("fork (stub)"));
    }
    if pid == 0 {
        // SAFETY: we are the child right after fork.
        unsafe { child_main(&args) }
    }
    let mut guard = ChildGuard(Some(pid));
    let tracer = sys::current_tid();
    let mut st = StubState::new(pid, FpKind::Fxsave);
    let ready = (|| {
        // The child stops at the blob's first int3, before it unmaps anything.
        wait_trap(pid, &mut st, START_TRAP_RIP)?;
        sys::set_options(pid, sys::PTRACE_O_EXITKILL | sys::PTRACE_O_TRACESYSGOOD)
            .map_err(|e| st.ptrace_failed("ptrace(PTRACE_SETOPTIONS)", pid, e))?;
        unregister_rseq(pid, &mut st)?;
        sys::resume(sys::PTRACE_CONT, pid)
            .map_err(|e| st.ptrace_failed("ptrace(PTRACE_CONT)", pid, e))?;
        let regs = wait_trap(pid, &mut st, READY_TRAP_RIP)?;
        st.regs = Some(regs);
        // Replace the FPU state inherited from the sentry thread by the initial state.
        st.fp_kind =
            fp::probe(pid).map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETREGSET)", pid, e))?;
        fp::write(pid, st.fp_kind, &fp::default_state().bytes)
            .map_err(|e| st.ptrace_failed("ptrace(PTRACE_SETREGSET)", pid, e))?;
        Ok::<(), PlatformError>(())
    })();
    if let Err(e) = ready {
        if st.exited.is_some() {
            // Already reaped: the pid may be reused, never signal it again.
            guard.0 = None;
        }
        return Err(e);
    }
    guard.0 = None;
    tracing::debug!(pid, tracer, "ptrace zygote ready");
    Ok(StubThread::new(pid, pid, st))
}

/// Unregisters the restartable-sequences area glibc registered for the sentry thread the
/// stub was forked from. That area is unmapped with the rest of the sentry's memory; left
/// registered, the kernel would raise SIGSEGV when it fails to update it after a
/// preemption.
fn unregister_rseq(pid: i32, st: &mut StubState) -> Result<(), PlatformError> {
    let conf = match sys::get_rseq_configuration(pid) {
        Ok(c) => c,
        // Before Linux 5.13 there is no way to ask; glibc registers rseq only on 5.x+
        // kernels that have it, so this is best effort on those old kernels.
        Err(Errno::EIO | Errno::EINVAL) => return Ok(()),
        Err(e) => {
            return Err(sys::ptrace_error(
                "ptrace(PTRACE_GET_RSEQ_CONFIGURATION)",
                pid,
                e,
            ))
        }
    };
    if conf.rseq_abi_pointer == 0 {
        return Ok(());
    }
    const RSEQ_FLAG_UNREGISTER: u64 = 1;
    let args = [
        conf.rseq_abi_pointer,
        conf.rseq_abi_size as u64,
        RSEQ_FLAG_UNREGISTER,
        conf.signature as u64,
        0,
        0,
    ];
    let r = inject(pid, st, libc::SYS_rseq, args)?;
    if r != 0 {
        return Err(PlatformError::Host {
            call: "rseq(RSEQ_FLAG_UNREGISTER) in the stub",
            source: std::io::Error::from_raw_os_error(-r as i32),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A traced stub thread.

/// One stub thread and the host thread tracing it.
#[derive(Debug)]
pub struct StubThread {
    pub tid: i32,
    pub tgid: i32,
    /// [`threads::current_token`] of the tracer; only that host thread may use the stub
    /// thread.
    pub tracer: u64,
    /// Host tid of the tracer (for logs).
    pub tracer_tid: i32,
    /// How many contexts have this as their current stub thread (`PtraceContext::last`).
    pub users: AtomicUsize,
    /// Set once the thread was retired on purpose ([`retire`]); a context that finds its
    /// stub thread retired moves on to a new one instead of failing.
    retired: AtomicBool,
    state: Mutex<StubState>,
}

/// Tracer-side knowledge about a stub thread. Only the tracer thread (and the address
/// space's drop, which has the address space to itself) lock it, so it is uncontended.
#[derive(Debug)]
pub struct StubState {
    /// The stub process, for errors.
    pub tgid: i32,
    /// The stub thread's registers as last read or written, `None` while unknown.
    pub regs: Option<Regs>,
    /// Set once the thread is dead and reaped (or must not be touched again).
    pub exited: Option<String>,
    /// Id of the context whose FPU state is loaded in the stub thread (0: the initial state).
    pub fp_owner: u64,
    /// How the FPU state is transferred.
    pub fp_kind: FpKind,
    /// The FPU states of contexts that had to make room for another one on this thread (or
    /// whose thread was retired under them), by context id.
    pub evicted_fp: Vec<(u64, FpState)>,
}

impl StubThread {
    fn new(tid: i32, tgid: i32, state: StubState) -> StubThread {
        StubThread {
            tid,
            tgid,
            tracer: threads::current_token(),
            tracer_tid: sys::current_tid(),
            users: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            state: Mutex::new(state),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, StubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }
}

impl StubState {
    pub fn new(tgid: i32, fp_kind: FpKind) -> StubState {
        StubState {
            tgid,
            regs: None,
            exited: None,
            fp_owner: 0, /* pristine */
            fp_kind,
            evicted_fp: Vec::new(),
        }
    }

    /// Fails with `StubDied` once the thread is gone.
    pub fn check_alive(&self) -> Result<(), PlatformError> {
        match &self.exited {
            Some(reason) => Err(PlatformError::StubDied {
                pid: self.tgid,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a failed tracer call: if the thread is gone (`ESRCH`), reaps it if it can.
    pub fn ptrace_failed(&mut self, call: &'static str, tid: i32, e: Errno) -> PlatformError {
        self.regs = None;
        if e == Errno::ESRCH {
            if let Ok(Some(s)) = sys::wait(tid, libc::WNOHANG) {
                if s.is_exit() {
                    return self.died(tid, s);
                }
            }
        }
        if e == Errno::ECHILD {
            // Not (or no longer) ours to wait for: reaped already.
            return self.died_unseen(tid, format!("{call}: no such child"));
        }
        sys::ptrace_error(call, self.tgid, e)
    }

    /// Records the exit `status` of thread `tid` reaped by a `waitpid`.
    pub fn died(&mut self, tid: i32, status: WaitStatus) -> PlatformError {
        self.died_unseen(tid, describe_exit(status))
    }

    fn died_unseen(&mut self, tid: i32, reason: String) -> PlatformError {
        tracing::debug!(tid, pid = self.tgid, %reason, "ptrace stub thread died");
        self.exited = Some(reason.clone());
        self.regs = None;
        PlatformError::StubDied {
            pid: self.tgid,
            reason,
        }
    }

    /// Takes the FPU state kept for context `id`, if any.
    pub fn take_evicted(&mut self, id: u64) -> Option<FpState> {
        let at = self.evicted_fp.iter().position(|(owner, _)| *owner == id)?;
        Some(self.evicted_fp.swap_remove(at).1)
    }

    /// Keeps `fp` for context `id` (replacing an older copy).
    pub fn keep_evicted(&mut self, id: u64, fp: FpState) {
        self.evicted_fp.retain(|(owner, _)| *owner != id);
        self.evicted_fp.push((id, fp));
    }
}

/// Waits for the `int3` stop whose `rip` is `expect_rip`, suppressing signals that are not
/// faults. Returns the registers at that stop.
///
/// An [`INTERRUPT_SIGNAL`] stop is suppressed: `Interrupter::interrupt` sets the context's
/// `pending` flag before sending the signal, so the interrupt is remembered there and the
/// next switch returns `Interrupted`.
fn wait_trap(tid: i32, st: &mut StubState, expect_rip: u64) -> Result<Regs, PlatformError> {
    loop {
        let status = match sys::wait(tid, 0) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => return Err(st.ptrace_failed("waitpid (stub)", tid, e)),
        };
        let sig = match status {
            WaitStatus::Stopped { sig, event: 0 } => sig,
            WaitStatus::Stopped { .. } => 0,
            _ => return Err(st.died(tid, status)),
        };
        if sig == libc::SIGTRAP {
            let regs = sys::get_regs(tid)
                .map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETREGS)", tid, e))?;
            if regs.rip == expect_rip {
                return Ok(regs);
            }
            st.regs = Some(regs);
            return Err(PlatformError::UnexpectedStop {
                tid,
                what: format!("SIGTRAP at {:#x}, expected {expect_rip:#x}", regs.rip),
            });
        }
        if matches!(
            sig,
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGSYS
        ) {
            st.regs = None;
            return Err(PlatformError::UnexpectedStop {
                tid,
                what: format!("signal {sig} in stub code"),
            });
        }
        if sig == INTERRUPT_SIGNAL {
            tracing::trace!(
                tid,
                "interrupt signal while the stub runs its own code; deferred"
            );
        }
        sys::resume(sys::PTRACE_CONT, tid)
            .map_err(|e| st.ptrace_failed("ptrace(PTRACE_CONT)", tid, e))?;
    }
}

/// Makes the stopped stub thread `tid` execute syscall `nr` with `args` at the injection
/// site and returns the raw result (`-errno` on failure). The thread's registers are saved
/// and restored, so guest state is unaffected. Must be called on the tracer thread.
pub fn inject(tid: i32, st: &mut StubState, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
    inject_at(tid, st, INJECT_ADDR, INJECT_TRAP_RIP, nr, args)
}

/// [`inject`] at `site`, a `syscall` instruction followed by code that stops with an `int3`
/// whose trap `rip` is `trap_rip`.
pub fn inject_at(
    tid: i32,
    st: &mut StubState,
    site: u64,
    trap_rip: u64,
    nr: i64,
    args: [u64; 6],
) -> Result<i64, PlatformError> {
    st.check_alive()?;
    let saved = match st.regs {
        Some(r) => r,
        None => {
            sys::get_regs(tid).map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETREGS)", tid, e))?
        }
    };
    let r = syscall_regs(&saved, site, nr, args);
    sys::set_regs(tid, &r).map_err(|e| st.ptrace_failed("ptrace(PTRACE_SETREGS)", tid, e))?;
    st.regs = None;
    sys::resume(sys::PTRACE_CONT, tid)
        .map_err(|e| st.ptrace_failed("ptrace(PTRACE_CONT)", tid, e))?;
    let after = wait_trap(tid, st, trap_rip);
    // Restore the guest's registers whatever happened, so a failed call leaves the stub
    // consistent if it is still alive.
    let restored = sys::set_regs(tid, &saved);
    let after = after?;
    restored.map_err(|e| st.ptrace_failed("ptrace(PTRACE_SETREGS)", tid, e))?;
    st.regs = Some(saved);
    Ok(after.rax as i64)
}

/// `base` changed to make syscall `nr(args)` at `site`.
fn syscall_regs(base: &Regs, site: u64, nr: i64, args: [u64; 6]) -> Regs {
    let mut r = *base;
    r.rip = site;
    r.rax = nr as u64;
    r.rdi = args[0];
    r.rsi = args[1];
    r.rdx = args[2];
    r.r10 = args[3];
    r.r8 = args[4];
    r.r9 = args[5];
    // No syscall restart on this stop, and no single-stepping (TF) through the stub.
    r.orig_rax = u64::MAX;
    r.eflags = 0x202;
    r
}

// ---------------------------------------------------------------------------------------
// New stub processes and stub threads.

/// Injects `clone(flags, stack 0)` at the clone site of `leader` (traced by the calling
/// thread) and returns the new thread's or process's id.
fn clone_at_site(leader: &StubThread, flags: u64, what: &'static str) -> Result<i32, PlatformError> {
    let mut st = leader.lock();
    let r = inject_at(
        leader.tid,
        &mut st,
        CLONE_ADDR,
        CLONE_TRAP_RIP,
        libc::SYS_clone,
        [flags, 0, 0, 0, 0, 0],
    )?;
    if r <= 0 {
        return Err(PlatformError::Host {
            call: what,
            source: std::io::Error::from_raw_os_error(if r < 0 { -r as i32 } else { libc::EIO }),
        });
    }
    Ok(r as i32)
}

/// Makes a new stub thread in the stub process whose first thread `leader` is traced by the
/// calling thread (the master): injects `clone(STUB_CLONE_FLAGS, stack 0)` at the clone
/// site. The new thread is not traced by anybody: it waits in the blob's `pause` loop, with
/// every signal blocked (inherited from the first thread), until a host thread attaches to
/// it with [`attach_new_thread`]. Returns its tid.
pub fn clone_thread(leader: &StubThread) -> Result<i32, PlatformError> {
    clone_at_site(leader, seccomp::STUB_CLONE_FLAGS, "clone (in the stub)")
}

/// Forks a new stub process from the zygote, whose first thread `zygote` is traced by the
/// calling thread (the zygote's master): injects `clone(SIGCHLD, stack 0)` at the clone
/// site. Like a new stub thread, the child waits untraced in the `pause` loop with every
/// signal blocked until its own master attaches with [`attach_new_process`]. Returns its
/// pid. The zygote never waits for it (`SA_NOCLDWAIT`).
pub fn fork_stub(zygote: &StubThread) -> Result<i32, PlatformError> {
    clone_at_site(zygote, seccomp::ZYGOTE_FORK_FLAGS, "fork (in the zygote)")
}

/// `PTRACE_SEIZE`s the fresh thread `tid` of process `tgid`, waiting in the blob's `pause`
/// loop, and stops it with `PTRACE_INTERRUPT`. `PTRACE_O_EXITKILL`: a stub thread must die
/// with its tracer rather than be detached and run guest code untraced (observed under fork
/// and memory bombs before it was set: guest code ran on until its next syscall hit the
/// stub filter; meanwhile it could have jumped to the stub page's `syscall` and mapped any
/// part of the memory file). The thread is returned even when the stop fails, for the
/// caller to clean up after its own fashion.
fn seize_waiting(
    tid: i32,
    tgid: i32,
    fp_kind: FpKind,
) -> Result<(StubThread, Result<(), PlatformError>), PlatformError> {
    let mut st = StubState::new(tgid, fp_kind);
    sys::seize(tid, sys::PTRACE_O_TRACESYSGOOD | sys::PTRACE_O_EXITKILL)
        .map_err(|e| st.ptrace_failed("ptrace(PTRACE_SEIZE)", tid, e))?;
    let thread = StubThread::new(tid, tgid, st);
    let stopped = (|| {
        let mut st = thread.lock();
        sys::interrupt(tid).map_err(|e| st.ptrace_failed("ptrace(PTRACE_INTERRUPT)", tid, e))?;
        loop {
            let status = match sys::wait(tid, 0) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => return Err(st.ptrace_failed("waitpid (new stub thread)", tid, e)),
            };
            match status {
                WaitStatus::Stopped {
                    event: sys::PTRACE_EVENT_STOP,
                    ..
                } => return Ok(()),
                // Nothing else is expected (every signal is blocked); pass over it.
                WaitStatus::Stopped { sig, event } => {
                    tracing::debug!(tid, sig, event, "unexpected stop of a new stub thread");
                    sys::resume(sys::PTRACE_CONT, tid)
                        .map_err(|e| st.ptrace_failed("ptrace(PTRACE_CONT)", tid, e))?;
                }
                _ => return Err(st.died(tid, status)),
            }
        }
    })();
    Ok((thread, stopped))
}

/// Makes the calling thread the tracer of the fresh stub thread `tid` of process `tgid`
/// (see [`clone_thread`]): seize and stop it, then unblock every signal, so that faults,
/// interrupts and stray signals stop it as usual. On failure after the seize the thread is
/// retired again (best effort).
pub fn attach_new_thread(
    tid: i32,
    tgid: i32,
    fp_kind: FpKind,
) -> Result<StubThread, PlatformError> {
    let (thread, stopped) = seize_waiting(tid, tgid, fp_kind)?;
    let ready = stopped.and_then(|()| {
        let mut st = thread.lock();
        sys::set_sigmask(tid, 0).map_err(|e| st.ptrace_failed("ptrace(PTRACE_SETSIGMASK)", tid, e))
    });
    if let Err(e) = ready {
        retire(&thread);
        return Err(e);
    }
    Ok(thread)
}

/// Makes the calling thread (a new address space's master) the tracer of the stub process
/// `pid` just forked from the zygote ([`fork_stub`]), and makes the stub stack the stub
/// filter on the zygote's (an injected `seccomp` reading the program from its own page): from
/// then on it can neither fork nor change its filters. Its signals stay blocked. On failure
/// the stub is killed.
pub fn attach_new_process(pid: i32, fp_kind: FpKind) -> Result<StubThread, PlatformError> {
    let (thread, stopped) = match seize_waiting(pid, pid, fp_kind) {
        Ok(r) => r,
        Err(e) => {
            // Not ours to reap: the zygote's SA_NOCLDWAIT does. Its pid cannot have been
            // reused meanwhile, since it waits (untraced, every signal blocked) until killed.
            // SAFETY: kill takes integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Err(e);
        }
    };
    let ready = stopped.and_then(|()| {
        let mut st = thread.lock();
        let r = inject(
            pid,
            &mut st,
            libc::SYS_seccomp,
            [libc::SECCOMP_SET_MODE_FILTER as u64, 0, STUB_FPROG_ADDR, 0, 0, 0],
        )?;
        if r != 0 {
            return Err(PlatformError::Host {
                call: "seccomp (the stub filter, in a new stub)",
                source: std::io::Error::from_raw_os_error(-r as i32),
            });
        }
        Ok(())
    });
    if let Err(e) = ready {
        let mut st = thread.lock();
        if st.exited.is_none() {
            kill_and_reap(pid);
            st.exited = Some("set-up failed".into());
        }
        return Err(e);
    }
    tracing::debug!(pid, tracer = thread.tracer_tid, "ptrace stub ready");
    Ok(thread)
}

/// Retires the stub thread `t`: stashes the FPU state of the context loaded in it (which
/// finds it there when it comes back), makes it call `exit(0)` and reaps it. Never fails:
/// a thread that is gone already is fine. Must be called on its tracer thread.
pub fn retire(t: &StubThread) {
    t.retired.store(true, Ordering::SeqCst);
    let mut st = t.lock();
    if st.exited.is_some() {
        return;
    }
    let tid = t.tid;
    let owner = st.fp_owner;
    if owner != 0 && owner != u64::MAX {
        match fp::read(tid, st.fp_kind) {
            Ok(f) => {
                st.keep_evicted(owner, f);
                st.fp_owner = u64::MAX;
            }
            Err(e) => {
                tracing::debug!(tid, error = %e, "cannot save the FPU state of a retired stub thread")
            }
        }
    }
    let base = match st.regs {
        Some(r) => Ok(r),
        None => sys::get_regs(tid),
    };
    let exited = base
        .and_then(|base| {
            sys::set_regs(
                tid,
                &syscall_regs(&base, INJECT_ADDR, libc::SYS_exit, [0; 6]),
            )
        })
        .and_then(|()| sys::resume(sys::PTRACE_CONT, tid));
    st.regs = None;
    if let Err(e) = exited {
        // Gone already, or (not expected) not stopped for us: reap if there is anything.
        let _ = st.ptrace_failed("ptrace (retire)", tid, e);
        if st.exited.is_none() {
            tracing::warn!(tid, pid = t.tgid, error = %e, "cannot retire a stub thread");
            st.exited = Some(format!("retired (exit injection failed: {e})"));
        }
        return;
    }
    loop {
        match sys::wait(tid, 0) {
            Ok(Some(s)) if s.is_exit() => {
                tracing::trace!(tid, pid = t.tgid, status = %s.describe(), "stub thread retired");
                break;
            }
            // A signal that arrived before the exit (an interrupt): suppress it.
            Ok(_) => {
                if sys::resume(sys::PTRACE_CONT, tid).is_err() {
                    if let Ok(Some(s)) = sys::wait(tid, libc::WNOHANG) {
                        if !s.is_exit() {
                            tracing::warn!(tid, "retired stub thread stuck in a stop");
                        }
                    }
                    break;
                }
            }
            Err(_) => break,
        }
    }
    st.exited = Some("stub thread retired".to_string());
}

/// Reaps stub thread `t` of a process that was just killed, from any thread of the sentry
/// (`waitpid` serves tracees of sibling threads too). Skips threads known to be gone.
///
/// Polls instead of blocking in `waitpid`: the calling thread is usually not the thread's
/// tracer, and when that tracer exits meanwhile the kernel releases the dead tracee without
/// waking other waiters, so a blocking wait for it would sleep until some unrelated child
/// event (seen as task threads lingering after a fuzz run). A SIGKILLed thread dies within
/// microseconds, so the first polls almost always find it; the lock is not held between
/// polls, so a tracer that wants to retire the thread is never held up.
pub fn reap_killed(t: &StubThread) {
    const GIVE_UP: std::time::Duration = std::time::Duration::from_secs(10);
    let start = std::time::Instant::now();
    let mut polls: u32 = 0;
    loop {
        {
            let mut st = t.lock();
            if st.exited.is_some() {
                return;
            }
            let gone = match sys::wait(t.tid, libc::WNOHANG) {
                Ok(Some(s)) => s.is_exit(),
                // Still dying (or a stop reported before the kill took effect): poll again.
                Ok(None) => false,
                // ECHILD: not traced by us any more (its tracer exited and the kernel
                // released it) or reaped by its tracer.
                Err(_) => true,
            };
            if gone || start.elapsed() > GIVE_UP {
                if !gone {
                    tracing::warn!(tid = t.tid, pid = t.tgid, "a killed stub thread did not die");
                }
                st.exited = Some("address space dropped".to_string());
                st.regs = None;
                return;
            }
        }
        polls += 1;
        if polls < 64 {
            std::thread::yield_now();
        } else {
            // 50 us doubling up to 5 ms.
            let us = 50u64 << (polls - 64).min(7);
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
    }
}
