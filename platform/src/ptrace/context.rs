//! [`PtraceContext`]: running guest code in a stub thread until the next event.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Weak};

use super::fp;
use super::stub::{StubState, StubThread};
use super::sys::{self, WaitStatus};
use super::threads::{self, SpaceThreads};
use super::{PtraceAddressSpace, INTERRUPT_SIGNAL};
use crate::{
    AccessType, AddressSpace, Context, Event, FaultCode, FpState, InterruptState, Interrupter,
    PlatformError, Regs,
};

/// x86_64 user code and data/stack segment selectors (`__USER_CS`, `__USER_DS`).
pub const USER_CS: u64 = 0x33;
pub const USER_DS: u64 = 0x2b;

/// `StubState::fp_owner` for a stub thread still holding its initial FPU state.
const FP_PRISTINE: u64 = 0;
/// `StubState::fp_owner` once the owner carried its state away (the contents are stale).
const FP_NOBODY: u64 = u64::MAX;

/// SIGSEGV si_codes (not exported by the libc crate).
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A guest register set on the ptrace platform. The general registers live with the caller
/// (`switch` takes them each time); the FPU state stays in the stub thread and is only read
/// or written when asked for, or when the context moves to another stub thread.
///
/// Dropped on the host thread that ran it, a context retires that thread's stub threads in
/// the address spaces it ran in, unless another context still uses them.
#[derive(Debug)]
pub struct PtraceContext {
    id: u64,
    interrupt: Arc<InterruptState>,
    /// The address space the context last ran in (its stub threads, for identity) and its
    /// stub thread there.
    last: Option<(Weak<SpaceThreads>, Arc<StubThread>)>,
    /// Every address space the context ran in, with the stub thread it used there.
    ran_in: Vec<(Weak<SpaceThreads>, Weak<StubThread>)>,
    /// FPU state to load at the next switch (from `set_fp_state`, or carried over from the
    /// previous stub thread).
    pending_fp: Option<FpState>,
}

impl Default for PtraceContext {
    fn default() -> Self {
        Self::new()
    }
}

impl PtraceContext {
    pub fn new() -> PtraceContext {
        PtraceContext {
            id: NEXT_ID.fetch_add(1, SeqCst),
            interrupt: Arc::new(InterruptState::default()),
            last: None,
            ran_in: Vec::new(),
            pending_fp: None,
        }
    }

    /// The stub thread of `space` traced by the calling thread (made on first use).
    /// Carries this context's FPU state along when it differs from the one used last time.
    fn stub_for(&mut self, space: &PtraceAddressSpace) -> Result<Arc<StubThread>, PlatformError> {
        let me = threads::current_token();
        if let Some((w, t)) = &self.last {
            if w.as_ptr() == Arc::as_ptr(&space.threads) && t.tracer == me && !t.is_retired() {
                return Ok(t.clone());
            }
        }
        let thread = space.current_thread()?;
        if let Some((_, old)) = self.last.take() {
            old.users.fetch_sub(1, SeqCst);
            if !Arc::ptr_eq(&old, &thread) && self.pending_fp.is_none() {
                self.carry_fp_from(&old, me);
            }
        }
        thread.users.fetch_add(1, SeqCst);
        let threads = Arc::downgrade(&space.threads);
        self.ran_in
            .retain(|(w, t)| w.strong_count() > 0 && t.strong_count() > 0);
        if !self
            .ran_in
            .iter()
            .any(|(_, t)| t.as_ptr() == Arc::as_ptr(&thread))
        {
            self.ran_in.push((threads.clone(), Arc::downgrade(&thread)));
        }
        self.last = Some((threads, thread.clone()));
        Ok(thread)
    }

    /// Takes this context's FPU state out of `old`, the stub thread it leaves, into
    /// `pending_fp`: kept there when the thread was retired or the state evicted, else read
    /// from the thread (only its tracer `me` can).
    fn carry_fp_from(&mut self, old: &StubThread, me: u64) {
        if old.tracer != me && !old.is_retired() {
            // Its tracer may be running guest code in it right now (holding its state):
            // the context moved to another host thread, which it should not.
            tracing::debug!(
                tid = old.tid,
                "context moved host threads; its FPU state is not carried over"
            );
            return;
        }
        let mut st = old.lock();
        if let Some(f) = st.take_evicted(self.id) {
            self.pending_fp = Some(f);
            return;
        }
        if st.fp_owner == self.id && st.exited.is_none() && old.tracer == me {
            match fp::read(old.tid, st.fp_kind) {
                Ok(f) => {
                    self.pending_fp = Some(f);
                    st.fp_owner = FP_NOBODY;
                }
                Err(e) => {
                    tracing::debug!(tid = old.tid, error = %e, "cannot carry the FPU state over")
                }
            }
        }
    }

    /// Makes the stub thread hold this context's FPU state.
    fn load_fp(&mut self, tid: i32, st: &mut StubState) -> Result<(), PlatformError> {
        if st.fp_owner == self.id && self.pending_fp.is_none() {
            return Ok(());
        }
        let fp = match self.pending_fp.take() {
            Some(f) => f,
            None => match st.take_evicted(self.id) {
                Some(f) => f,
                None => {
                    if st.fp_owner == FP_PRISTINE {
                        st.fp_owner = self.id;
                        return Ok(());
                    }
                    fp::default_state()
                }
            },
        };
        if st.fp_owner != self.id && st.fp_owner != FP_PRISTINE && st.fp_owner != FP_NOBODY {
            // Another context's state is loaded (two contexts sharing one stub thread):
            // keep it for when that context comes back.
            match fp::read(tid, st.fp_kind) {
                Ok(theirs) => {
                    let owner = st.fp_owner;
                    st.keep_evicted(owner, theirs);
                }
                Err(e) => {
                    self.pending_fp = Some(fp);
                    return Err(st.ptrace_failed("ptrace(PTRACE_GETREGSET)", tid, e));
                }
            }
        }
        if let Err(e) = fp::write(tid, st.fp_kind, &fp.bytes) {
            self.pending_fp = Some(fp);
            return Err(st.ptrace_failed("ptrace(PTRACE_SETREGSET)", tid, e));
        }
        st.fp_owner = self.id;
        Ok(())
    }
}

impl Drop for PtraceContext {
    /// Forgets this context in its stub thread and, on the host thread that traces them,
    /// retires the stub threads it ran in that no other context uses.
    fn drop(&mut self) {
        let me = threads::current_token();
        if let Some((_, t)) = self.last.take() {
            t.users.fetch_sub(1, SeqCst);
            if t.tracer == me {
                let mut st = t.lock();
                let _ = st.take_evicted(self.id);
                if st.fp_owner == self.id {
                    st.fp_owner = FP_NOBODY;
                }
            }
        }
        for (w, t) in std::mem::take(&mut self.ran_in) {
            let (Some(space), Some(t)) = (w.upgrade(), t.upgrade()) else {
                continue;
            };
            if t.tracer == me {
                space.retire_if_unused(&t);
            }
        }
    }
}

/// The registers to give the stub for `regs`.
fn stub_regs(regs: &Regs) -> Regs {
    let mut r = *regs;
    // Never let the kernel's syscall-restart logic (which keys on orig_rax >= 0 and an
    // -ERESTART* value in rax) rewind rip on the way back to guest code: restarting is the
    // sentry's business. (Rewriting only rax with PTRACE_POKEUSER after a syscall instead of
    // the whole set measured no faster: the two context switches dominate.)
    r.orig_rax = u64::MAX;
    if r.cs == 0 && r.ss == 0 {
        r.cs = USER_CS;
        r.ss = USER_DS;
    }
    r
}

/// Whether a fault at `addr` with the instruction pointer at `rip` was an instruction fetch:
/// at `rip` itself, or at the start of the next page for an instruction straddling pages.
fn is_fetch(addr: u64, rip: u64) -> bool {
    addr == rip || (addr & 0xfff == 0 && addr > rip && addr - rip < 16)
}

/// Classifies a SIGSEGV stop. The page-fault error code is not available through ptrace, so
/// the access type is inferred (see [`is_fetch`] and the mapping's permissions).
fn classify_segv(space: &PtraceAddressSpace, info: &libc::siginfo_t, regs: &Regs) -> Event {
    // SAFETY: for SIGSEGV the kernel fills the `_sigfault` member of the union, whose first
    // field is si_addr; reading it only reinterprets initialized integer bytes.
    let addr = unsafe { info.si_addr() } as u64;
    let code = match info.si_code {
        SEGV_MAPERR => FaultCode::NotMapped,
        SEGV_ACCERR => FaultCode::Protection,
        // SI_KERNEL (a general-protection fault, e.g. a non-canonical address), SEGV_PKUERR..
        other => {
            return Event::Signal {
                signo: libc::SIGSEGV,
                code: other,
                addr,
            }
        }
    };
    let access = if is_fetch(addr, regs.rip) {
        AccessType::Exec
    } else if code == FaultCode::Protection
        && space.perms_at(addr).is_some_and(|p| p.read && !p.write)
    {
        AccessType::Write
    } else {
        // Not mapped: the sentry maps the page with the VMA's full permissions, so a write
        // reported as a read simply retries and succeeds.
        AccessType::Read
    };
    Event::Fault { addr, access, code }
}

/// Resumes the stub thread with `PTRACE_SYSEMU` until something the sentry must see.
fn run(
    tid: i32,
    st: &mut StubState,
    space: &PtraceAddressSpace,
    interrupt: &InterruptState,
) -> Result<(Event, Regs), PlatformError> {
    loop {
        sys::resume(sys::PTRACE_SYSEMU, tid)
            .map_err(|e| st.ptrace_failed("ptrace(PTRACE_SYSEMU)", tid, e))?;
        st.regs = None;
        let status = match sys::wait(tid, 0) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(PlatformError::UnexpectedStop {
                    tid,
                    what: "waitpid returned 0".into(),
                })
            }
            Err(e) => return Err(st.ptrace_failed("waitpid (stub)", tid, e)),
        };
        let sig = match status {
            WaitStatus::Stopped { sig, event: 0 } => sig,
            // No PTRACE_EVENT_* is enabled; ignore whatever this was.
            WaitStatus::Stopped { .. } => continue,
            _ => return Err(st.died(tid, status)),
        };
        let event = match sig {
            s if s == libc::SIGTRAP | 0x80 => Event::Syscall,
            s if s == INTERRUPT_SIGNAL => {
                if !interrupt.pending.swap(false, SeqCst) {
                    // A late signal of an interrupt that was already reported.
                    continue;
                }
                Event::Interrupted
            }
            libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGILL
            | libc::SIGFPE
            | libc::SIGTRAP
            | libc::SIGSYS => {
                let info = sys::get_siginfo(tid)
                    .map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETSIGINFO)", tid, e))?;
                let regs = sys::get_regs(tid)
                    .map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETREGS)", tid, e))?;
                st.regs = Some(regs);
                let event = if sig == libc::SIGSEGV {
                    classify_segv(space, &info, &regs)
                } else {
                    // SAFETY: for these signals the kernel fills `_sigfault` (or `_sigsys`,
                    // whose first field sits at the same offset); the bytes are initialized.
                    let addr = unsafe { info.si_addr() } as u64;
                    Event::Signal {
                        signo: sig,
                        code: info.si_code,
                        addr,
                    }
                };
                // The signal is suppressed: the next resume passes no signal.
                return Ok((event, regs));
            }
            // Anything else (SIGSTOP, SIGWINCH from a terminal, ...) is not the guest's: drop.
            _ => continue,
        };
        let regs =
            sys::get_regs(tid).map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETREGS)", tid, e))?;
        st.regs = Some(regs);
        return Ok((event, regs));
    }
}

impl Context for PtraceContext {
    /// Runs guest code with `regs` in the stub thread of `as_` traced by the calling thread
    /// (made on the first switch or map of this thread in `as_`). At [`Event::Syscall`], `regs.orig_rax`
    /// holds the syscall number and `regs.rax` is `-ENOSYS`; the sentry stores the result in
    /// `rax` and the next switch resumes at `regs.rip` (after the `syscall` instruction).
    fn switch(
        &mut self,
        as_: &Arc<dyn AddressSpace>,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        let space = as_
            .as_any()
            .downcast_ref::<PtraceAddressSpace>()
            .ok_or(PlatformError::WrongAddressSpace)?;
        let thread = self.stub_for(space)?;
        let tid = thread.tid;
        let mut st = thread.lock();
        st.check_alive()?;
        self.load_fp(tid, &mut st)?;
        let want = stub_regs(regs);
        if !st.regs.is_some_and(|have| sys::regs_eq(&have, &want)) {
            sys::set_regs(tid, &want)
                .map_err(|e| st.ptrace_failed("ptrace(PTRACE_SETREGS)", tid, e))?;
            st.regs = Some(want);
        }

        // Publish the running thread before looking at `pending`: an interrupt raised after
        // the check then finds the tid and signals the stub, one raised before is seen here.
        let interrupt = &*self.interrupt;
        interrupt.running_tgid.store(thread.tgid, SeqCst);
        interrupt.running_tid.store(tid, SeqCst);
        if interrupt.pending.swap(false, SeqCst) {
            interrupt.running_tid.store(0, SeqCst);
            return Ok(Event::Interrupted);
        }
        let result = run(tid, &mut st, space, interrupt);
        interrupt.running_tid.store(0, SeqCst);
        let (event, new_regs) = result?;
        *regs = new_regs;
        Ok(event)
    }

    /// Read from the stub thread when asked (never on the switch path). A context that has
    /// not run yet has the initial state of a new process. Like `switch`, must be called on
    /// the thread that traces the context's stub thread.
    fn fp_state(&mut self) -> Result<FpState, PlatformError> {
        if let Some(fp) = &self.pending_fp {
            return Ok(fp.clone());
        }
        if let Some((_, t)) = &self.last {
            if t.tracer != threads::current_token() {
                return Err(PlatformError::WrongAddressSpace);
            }
            let mut st = t.lock();
            if st.fp_owner == self.id {
                st.check_alive()?;
                return fp::read(t.tid, st.fp_kind)
                    .map_err(|e| st.ptrace_failed("ptrace(PTRACE_GETREGSET)", t.tid, e));
            }
            if let Some((_, f)) = st.evicted_fp.iter().find(|(owner, _)| *owner == self.id) {
                return Ok(f.clone());
            }
        }
        Ok(fp::default_state())
    }

    /// Loaded into the stub thread at the next switch.
    fn set_fp_state(&mut self, fp: &FpState) -> Result<(), PlatformError> {
        self.pending_fp = Some(fp.clone());
        Ok(())
    }

    fn interrupter(&self) -> Interrupter {
        Interrupter::new(self.interrupt.clone())
    }

    fn host_process(&self) -> Option<i32> {
        self.last.as_ref().map(|(_, t)| t.tgid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_faults_are_at_rip_or_the_next_page() {
        assert!(is_fetch(0x400000, 0x400000));
        assert!(is_fetch(0x401000, 0x400ffe));
        assert!(!is_fetch(0x401008, 0x400ffe));
        assert!(!is_fetch(0x400010, 0x400000));
        assert!(!is_fetch(0x3ff000, 0x400000));
    }
}
