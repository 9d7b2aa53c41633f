//! The ptrace platform: guest code runs in stub processes traced by the sentry.
//!
//! - **One stub process per address space** ([`PtraceAddressSpace`]). It is forked by the
//!   host thread that will trace it and reduced to a single page of code at [`STUB_ADDR`]
//!   (see `stub.rs`); guest memory is the sentry's memory file, mapped into the stub by
//!   injecting `mmap(.., MAP_SHARED | MAP_FIXED, STUB_MEMFD, offset)` calls.
//! - **`PTRACE_SYSEMU`** resumes guest code: every guest `syscall` instruction stops in the
//!   tracer *instead of* running on the host, and is reported as [`Event::Syscall`](crate::Event::Syscall).
//! - Faults and other synchronous signals stop the stub as signal-delivery-stops; they are
//!   reported as events and never delivered to the stub (the sentry delivers guest signals
//!   itself).
//! - A guest call into the legacy vsyscall page (0xffffffffff600000 + 0/0x400/0x800) is
//!   reported as `Event::Signal { signo: SIGSYS, code: 1 (SYS_SECCOMP), addr: the entry }`
//!   with `rip`/`rsp` already past the emulated `ret` and `rax` = the syscall number; the
//!   sentry emulates the call by storing the result in `rax` (or delivers SIGSEGV as a
//!   `vsyscall=none` kernel would). Nothing was executed on the host.
//! - A guest `int 0x80` stops like a `syscall` (`Event::Syscall`; the numbers are then
//!   i386 numbers): the sentry tells them apart by the bytes `cd 80` before `rip`.
//! - [`Interrupter::interrupt`](crate::Interrupter::interrupt) sends [`INTERRUPT_SIGNAL`] to
//!   the running stub thread, which stops it.
//! - The stub runs under its own seccomp filter (`seccomp.rs`), and dies with the sentry
//!   (`PR_SET_PDEATHSIG` and `PTRACE_O_EXITKILL`).
//!
//! ptrace relationships belong to host *threads*: only the thread that forked a stub may
//! control it, so a context must run on the thread that created the address space it
//! switches into, and that thread should stay alive as long as the address space.
//! The sentry must not `waitpid(-1, ..)` for arbitrary children: it would steal stub stops.

mod context;
mod cpu;
mod fp;
mod mappings;
mod seccomp;
mod stub;
mod sys;

use std::any::Any;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

pub use context::PtraceContext;
pub use cpu::pin_current_thread;
pub use stub::{STUB_ADDR, STUB_MEMFD, STUB_SIZE};

use crate::{AddressSpace, Context, FpState, Perms, Platform, PlatformError, Regs};
use mappings::MappingSet;
use stub::StubThread;

/// The signal [`crate::Interrupter`] sends to a running stub thread.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

const PAGE_SIZE: u64 = 0x1000;

/// The ptrace platform. Holds a duplicate of the sentry's memory file, which every stub
/// receives as [`STUB_MEMFD`].
#[derive(Debug)]
pub struct PtracePlatform {
    memfd: OwnedFd,
}

impl PtracePlatform {
    /// A platform mapping guest memory from `memfd` (the sentry's memory file, a memfd
    /// opened read-write). Reserves the stub page in the sentry (see [`STUB_ADDR`]).
    pub fn new(memfd: BorrowedFd<'_>) -> Result<Self, PlatformError> {
        stub::reserve_stub_page()?;
        cpu::note_allowed_cpus();
        let memfd = memfd
            .try_clone_to_owned()
            .map_err(|source| PlatformError::Host {
                call: "dup (memory file)",
                source,
            })?;
        Ok(PtracePlatform { memfd })
    }
}

impl Platform for PtracePlatform {
    /// Forks a stub process traced by the calling thread. Also pins the calling thread to
    /// the CPU it runs on (unless it already is pinned to one CPU) so that the tracer and the
    /// stub, which inherits the mask, share a CPU.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        if let Err(e) = cpu::pin_to_current_cpu_if_unpinned() {
            tracing::warn!(error = %e, "cannot pin the tracer thread to a CPU; guest syscalls will be slow");
        }
        let main = Arc::new(stub::spawn(self.memfd.as_fd())?);
        Ok(Arc::new(PtraceAddressSpace {
            threads: Mutex::new(vec![main.clone()]),
            main,
            mappings: Mutex::new(MappingSet::default()),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(PtraceContext::new()))
    }

    /// [`STUB_ADDR`]: guest mappings end below the stub page.
    fn max_user_address(&self) -> u64 {
        STUB_ADDR
    }

    fn name(&self) -> &'static str {
        "ptrace"
    }
}

/// One guest address space: a stub process.
///
/// Each host thread that runs guest code in the address space traces its own stub thread of
/// the stub process, and `map`/`unmap`/`switch` act through the stub thread traced by the
/// *calling* host thread. Today the stub has one thread, traced by the thread that called
/// `new_address_space`; calls from any other host thread fail with
/// [`PlatformError::WrongAddressSpace`].
///
/// Planned for multi-threaded guests (not implemented yet): a host thread H that has no stub
/// thread here gets one through the tracer T of an existing stub thread (only T may inject
/// into it, so T does this on request between two switches). T sets
/// `PTRACE_O_TRACECLONE` and injects `clone(CLONE_VM | CLONE_FS | CLONE_FILES |
/// CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, stack = 0)` at the injection site; the new
/// thread starts traced by T and stopped. T detaches it leaving it stopped
/// (`PTRACE_DETACH` with `SIGSTOP`), H `PTRACE_SEIZE`s it with `PTRACE_O_EXITKILL |
/// PTRACE_O_TRACESYSGOOD` and waits for its stop, and the new stub thread joins `threads`
/// keyed by H. The threads share one mm, so a mapping is injected once, by whichever
/// thread calls `map`. `clone` then joins the stub's seccomp allow list.
#[derive(Debug)]
pub struct PtraceAddressSpace {
    /// The stub's threads, each with its tracer.
    threads: Mutex<Vec<Arc<StubThread>>>,
    /// The first thread; its tid is the stub's pid.
    main: Arc<StubThread>,
    /// The mappings made in the stub, for fault classification.
    mappings: Mutex<MappingSet>,
}

impl PtraceAddressSpace {
    /// Host pid of the stub process.
    pub fn stub_pid(&self) -> i32 {
        self.main.tgid
    }

    /// The stub thread traced by the calling host thread.
    fn thread_for_current(&self) -> Option<Arc<StubThread>> {
        let me = sys::current_tid();
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.iter().find(|t| t.tracer == me).cloned()
    }

    fn mappings(&self) -> MutexGuard<'_, MappingSet> {
        self.mappings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Permissions of the host mapping containing `addr`.
    fn perms_at(&self, addr: u64) -> Option<Perms> {
        self.mappings().perms_at(addr)
    }

    fn check_range(addr: u64, len: u64) -> Result<u64, PlatformError> {
        let aligned = (addr | len) & (PAGE_SIZE - 1) == 0 && len > 0;
        match addr.checked_add(len) {
            Some(end) if aligned && end <= STUB_ADDR => Ok(end),
            _ => Err(PlatformError::BadRange { addr, len }),
        }
    }

    /// Injects syscall `nr` into the calling thread's stub thread; returns the result.
    fn inject(&self, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        let thread = self
            .thread_for_current()
            .ok_or(PlatformError::WrongAddressSpace)?;
        let mut st = thread.lock();
        stub::inject(thread.tid, &mut st, nr, args)
    }
}

fn injected_errno(call: &'static str, r: i64) -> PlatformError {
    PlatformError::Host {
        call,
        source: std::io::Error::from_raw_os_error(-r as i32),
    }
}

impl AddressSpace for PtraceAddressSpace {
    /// `offset` must be page-aligned too (else [`PlatformError::BadRange`]).
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError> {
        let end = Self::check_range(addr, len)?;
        if offset & (PAGE_SIZE - 1) != 0 {
            return Err(PlatformError::BadRange { addr, len });
        }
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let args = [
            addr,
            len,
            perms.to_prot() as u64,
            flags,
            STUB_MEMFD as u64,
            offset,
        ];
        let r = self.inject(libc::SYS_mmap, args);
        let mut mappings = self.mappings();
        match r {
            Ok(r) if r as u64 == addr => {
                mappings.insert(addr, end, perms);
                Ok(())
            }
            Ok(r) => {
                // A failed MAP_FIXED may already have removed the old mapping.
                mappings.remove(addr, end);
                if (-4095..0).contains(&r) {
                    Err(injected_errno("mmap (in the stub)", r))
                } else {
                    Err(PlatformError::UnexpectedStop {
                        tid: self.main.tid,
                        what: format!("injected mmap at {addr:#x} returned {r:#x}"),
                    })
                }
            }
            Err(e) => {
                mappings.remove(addr, end);
                Err(e)
            }
        }
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        let end = Self::check_range(addr, len)?;
        let r = self.inject(libc::SYS_munmap, [addr, len, 0, 0, 0, 0])?;
        if r != 0 {
            return Err(injected_errno("munmap (in the stub)", r));
        }
        self.mappings().remove(addr, end);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PtraceAddressSpace {
    /// Kills and reaps the stub process (from any thread of the sentry). Never panics.
    fn drop(&mut self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let st = self.main.lock();
            if st.exited.is_none() {
                stub::kill_and_reap(self.main.tgid);
                tracing::debug!(pid = self.main.tgid, "ptrace stub killed");
            }
        }
        for t in threads.iter() {
            let mut st = t.lock();
            st.exited
                .get_or_insert_with(|| "address space dropped".to_string());
            st.regs = None;
        }
    }
}

/// Registers for entering guest code at `rip` with stack pointer `rsp`: user code and stack
/// segments, interrupts enabled, everything else zero. (A register set with `cs == 0` and
/// `ss == 0` is given these segments by `switch` too.)
pub fn initial_regs(rip: u64, rsp: u64) -> Regs {
    let mut r = sys::zeroed_regs();
    r.rip = rip;
    r.rsp = rsp;
    r.cs = context::USER_CS;
    r.ss = context::USER_DS;
    r.eflags = 0x202;
    r.orig_rax = u64::MAX;
    r
}

/// The FPU state of a freshly exec'd Linux process (see `Context::fp_state`).
pub fn initial_fp_state() -> FpState {
    fp::default_state()
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    use super::*;

    fn platform() -> (OwnedFd, PtracePlatform) {
        // SAFETY: memfd_create reads a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"rvisor-unit-mem".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a fresh descriptor we own.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let p = PtracePlatform::new(memfd.as_fd()).expect("platform");
        (memfd, p)
    }

    fn space_of(space: &Arc<dyn AddressSpace>) -> &PtraceAddressSpace {
        space
            .as_any()
            .downcast_ref::<PtraceAddressSpace>()
            .expect("ptrace address space")
    }

    #[test]
    fn stub_has_no_rseq_area_registered() {
        let (_memfd, p) = platform();
        let space = p.new_address_space().expect("address space");
        let conf = sys::get_rseq_configuration(space_of(&space).stub_pid());
        // Kernels before 5.13 cannot tell (EIO); otherwise nothing may be registered.
        if let Ok(conf) = conf {
            assert_eq!(conf.rseq_abi_pointer, 0);
        }
    }

    #[test]
    fn injecting_a_syscall_outside_the_allow_list_kills_the_stub_with_sigsys() {
        let (_memfd, p) = platform();
        let space = p.new_address_space().expect("address space");
        let r = space_of(&space).inject(libc::SYS_getpid, [0; 6]);
        match r {
            Err(PlatformError::StubDied { reason, .. }) => {
                assert!(
                    reason.contains(&format!("signal {}", libc::SIGSYS)),
                    "{reason}"
                )
            }
            r => panic!("expected StubDied, got {r:?}"),
        }
    }
}
