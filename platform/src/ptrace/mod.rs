//! The ptrace platform: guest code runs in stub processes traced by the sentry.
//!
//! - **One stub process per address space** ([`PtraceAddressSpace`]), reduced to a single
//!   page of code at [`STUB_ADDR`] (see `stub.rs`); guest memory is the sentry's memory file,
//!   mapped into the stub by injecting `mmap(.., MAP_SHARED | MAP_FIXED, STUB_MEMFD, offset)`
//!   calls. Stubs are forked from a **zygote**, a stub process the platform forks from the
//!   sentry when it is made, before the sentry confines itself: the sentry itself never
//!   forks, makes a page executable or maps anything executable.
//! - **One stub thread per host thread using the address space.** ptrace relationships
//!   belong to host *threads*, so a host thread can only run guest code (or inject a
//!   mapping) in a stub thread it traces. Each address space has a **master thread**
//!   (`master.rs`) that forks the stub process and traces its first thread, which never runs
//!   guest code; on the first `switch`/`map`/`unmap` of a host thread in the address space,
//!   the master injects a `clone` into that first thread and the host thread attaches to the
//!   new stub thread (`PTRACE_SEIZE` with `PTRACE_O_EXITKILL`: a stub thread never
//!   outlives its tracer) and pins it to its own CPU.
//!   Stub threads share the stub's memory, so a mapping made through one is seen by all.
//! - **Lifetimes.** The stub process lives as long as the [`PtraceAddressSpace`] (its drop,
//!   on any thread, kills and reaps the stub and stops the master), and dies with the
//!   sentry (`PR_SET_PDEATHSIG` and `PTRACE_O_EXITKILL` tie it to the master thread). A stub
//!   thread is retired (`exit` injected, reaped) when its host thread exits (`threads.rs`),
//!   when the last context using it is dropped on that host thread, or on
//!   [`AddressSpace::release_current_thread`]; a context whose stub thread was retired gets
//!   a new one at its next switch, with its FPU state.
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
//! - The stub runs under its own seccomp filter (`seccomp.rs`).
//!
//! The sentry must not `waitpid(-1, ..)` for arbitrary children: it would steal stub stops
//! (any thread of a process may wait for the tracees of its other threads).

mod blob;
mod context;
mod cpu;
mod fp;
mod mappings;
mod master;
mod seccomp;
mod stub;
mod sys;
mod threads;

use std::any::Any;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};

pub use context::PtraceContext;
pub use cpu::pin_current_thread;
pub use stub::{STUB_ADDR, STUB_MEMFD, STUB_SIZE};
pub use seccomp::STUB_CLONE_FLAGS;

use crate::{AddressSpace, Context, FpState, Perms, Platform, PlatformError, Regs};
use mappings::MappingSet;
use master::{Master, Origin};
use stub::StubThread;
use threads::SpaceThreads;

/// The signal [`crate::Interrupter`] sends to a running stub thread.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

const PAGE_SIZE: u64 = 0x1000;

/// The ptrace platform. Holds the zygote every stub process is forked from (see
/// `stub.rs`), which holds the sentry's memory file as [`STUB_MEMFD`].
#[derive(Debug)]
pub struct PtracePlatform {
    zygote: Arc<Master>,
}

impl PtracePlatform {
    /// A platform mapping guest memory from `memfd` (the sentry's memory file, a memfd
    /// opened read-write). Reserves the stub page in the sentry (see [`STUB_ADDR`]) and
    /// forks the zygote, so it must be made before the sentry installs its seccomp filter
    /// (which forbids forks and executable mappings).
    pub fn new(memfd: BorrowedFd<'_>) -> Result<Self, PlatformError> {
        stub::reserve_stub_page()?;
        cpu::note_allowed_cpus();
        let memfd = memfd
            .try_clone_to_owned()
            .map_err(|source| PlatformError::Host {
                call: "dup (memory file)",
                source,
            })?;
        let zygote = Arc::new(Master::start(Origin::Sentry(memfd))?);
        Ok(PtracePlatform { zygote })
    }

    /// Host pid of the zygote.
    pub fn zygote_pid(&self) -> i32 {
        self.zygote.tgid
    }
}

impl Platform for PtracePlatform {
    /// Starts the address space's master thread, which has the zygote fork the stub process.
    /// May be called from any thread; that thread need not outlive the address space, nor
    /// ever use it.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let master = Master::start(Origin::Zygote(self.zygote.clone()))?;
        Ok(Arc::new(PtraceAddressSpace {
            master,
            threads: Arc::new(SpaceThreads::new()),
            map_lock: Mutex::new(()),
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

/// One guest address space: a stub process, its master thread, and one stub thread per host
/// thread that used it (see the module docs).
///
/// `map`/`unmap`/`switch` act through the stub thread traced by the *calling* host thread,
/// made on its first call (which also pins the calling thread to its current CPU unless it
/// is pinned already, and pins the stub thread to the same CPU).
#[derive(Debug)]
pub struct PtraceAddressSpace {
    master: Master,
    /// The stub threads by tracer. Host threads and contexts refer to it weakly (never to
    /// the address space itself, whose `Arc` counts stay the sentry's own).
    threads: Arc<SpaceThreads>,
    /// Serialises `map`/`unmap` so that `mappings` follows the order in which they happened
    /// in the stub.
    map_lock: Mutex<()>,
    /// The mappings made in the stub, for fault classification.
    mappings: Mutex<MappingSet>,
}

impl PtraceAddressSpace {
    /// Host pid of the stub process.
    pub fn stub_pid(&self) -> i32 {
        self.master.tgid
    }

    /// Host tid of the stub thread traced by the calling thread, if it has one.
    pub fn current_stub_tid(&self) -> Option<i32> {
        self.threads.current().map(|t| t.tid)
    }

    /// The stub thread traced by the calling host thread; made on first use.
    fn current_thread(&self) -> Result<Arc<StubThread>, PlatformError> {
        if let Some(t) = self.threads.current() {
            return Ok(t);
        }
        let thread = Arc::new(self.new_thread()?);
        self.threads.insert(thread.clone());
        Ok(thread)
    }

    /// Makes a stub thread traced by the calling thread, both pinned to one CPU.
    fn new_thread(&self) -> Result<StubThread, PlatformError> {
        let cpu = match cpu::pin_to_current_cpu_if_unpinned() {
            Ok(cpu) => Some(cpu),
            Err(e) => {
                tracing::warn!(error = %e, "cannot pin the tracer thread to a CPU; guest syscalls will be slow");
                None
            }
        };
        let tid = self.master.new_thread(cpu)?;
        let thread = stub::attach_new_thread(tid, self.master.tgid, self.master.fp_kind)?;
        if let Some(cpu) = cpu {
            if let Err(e) = cpu::set_thread_affinity(tid, cpu) {
                tracing::warn!(tid, cpu, error = %e, "cannot pin a stub thread to its tracer's CPU");
            }
        }
        tracing::debug!(
            pid = self.master.tgid,
            tid,
            tracer = thread.tracer_tid,
            ?cpu,
            "stub thread attached"
        );
        Ok(thread)
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

    /// Injects syscall `nr` into `thread` (the calling thread's); returns the result.
    fn inject(thread: &StubThread, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
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
        let thread = self.current_thread()?;
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let args = [
            addr,
            len,
            perms.to_prot() as u64,
            flags,
            STUB_MEMFD as u64,
            offset,
        ];
        let _serial = self.map_lock.lock().unwrap_or_else(|e| e.into_inner());
        let r = Self::inject(&thread, libc::SYS_mmap, args);
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
                        tid: thread.tid,
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
        let thread = self.current_thread()?;
        let _serial = self.map_lock.lock().unwrap_or_else(|e| e.into_inner());
        let r = Self::inject(&thread, libc::SYS_munmap, [addr, len, 0, 0, 0, 0])?;
        if r != 0 {
            return Err(injected_errno("munmap (in the stub)", r));
        }
        self.mappings().remove(addr, end);
        Ok(())
    }

    /// Retires the calling thread's stub thread, if it has one. A context that used it
    /// gets a new one (with its FPU state) at its next switch.
    fn release_current_thread(&self) {
        if let Some(t) = self.threads.current() {
            self.threads.retire(&t);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PtraceAddressSpace {
    /// Kills and reaps the stub process and stops the master thread (from any thread of the
    /// sentry). Never panics.
    ///
    /// Nothing else uses the address space meanwhile (every use holds an `Arc`), so every
    /// stub thread not known to be gone is stopped for its tracer, or detached and running
    /// if its tracer exited without retiring it.
    fn drop(&mut self) {
        let threads = self.threads.close();
        // Kill through the stub threads known to be unreaped (so their tids cannot have been
        // recycled); SIGKILL to one thread kills the whole stub process. With none, the
        // master kills through the first thread.
        for t in threads.iter().filter(|t| t.lock().exited.is_none()) {
            // SAFETY: tgkill takes integers; the thread is unreaped and must belong to the
            // stub's thread group for the signal to be sent at all.
            unsafe { libc::syscall(libc::SYS_tgkill, t.tgid, t.tid, libc::SIGKILL) };
        }
        // The first thread cannot be reaped before the others.
        for t in &threads {
            stub::reap_killed(t);
        }
        self.master.shutdown();
        tracing::debug!(
            pid = self.master.tgid,
            threads = threads.len(),
            "ptrace address space dropped"
        );
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
    fn stub_threads_have_no_rseq_area_registered() {
        let (_memfd, p) = platform();
        let space = p.new_address_space().expect("address space");
        let thread = space_of(&space).current_thread().expect("stub thread");
        // Only the tracer may ask; kernels before 5.13 cannot tell (EIO). The first thread
        // had its area unregistered at start-up; a thread cloned from it has none.
        match sys::get_rseq_configuration(thread.tid) {
            Ok(conf) => assert_eq!(conf.rseq_abi_pointer, 0),
            Err(e) => assert_eq!(e, nix::errno::Errno::EIO),
        }
    }

    #[test]
    fn injecting_a_syscall_outside_the_allow_list_kills_the_stub_with_sigsys() {
        let (_memfd, p) = platform();
        let space = p.new_address_space().expect("address space");
        let thread = space_of(&space).current_thread().expect("stub thread");
        let r = PtraceAddressSpace::inject(&thread, libc::SYS_getpid, [0; 6]);
        match r {
            Err(PlatformError::StubDied { reason, pid }) => {
                assert_eq!(pid, space_of(&space).stub_pid());
                assert!(
                    reason.contains(&format!("signal {}", libc::SIGSYS)),
                    "{reason}"
                )
            }
            r => panic!("expected StubDied, got {r:?}"),
        }
    }

    #[test]
    fn injecting_a_clone_with_other_flags_kills_the_stub_with_sigsys() {
        let (_memfd, p) = platform();
        let space = p.new_address_space().expect("address space");
        let thread = space_of(&space).current_thread().expect("stub thread");
        let flags = seccomp::STUB_CLONE_FLAGS | libc::CLONE_PTRACE as u64;
        assert_clone_kills_with_sigsys(&thread, flags);
    }

    /// Injects `clone(flags, 0)` at the clone site of `thread`, which the stub filter must
    /// answer by killing the stub with SIGSYS.
    fn assert_clone_kills_with_sigsys(thread: &StubThread, flags: u64) {
        let r = {
            let mut st = thread.lock();
            stub::inject_at(
                thread.tid,
                &mut st,
                stub::CLONE_ADDR,
                stub::CLONE_TRAP_RIP,
                libc::SYS_clone,
                [flags, 0, 0, 0, 0, 0],
            )
        };
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

    #[test]
    fn stub_threads_are_tracked_per_host_thread_and_forgotten_when_retired() {
        let (_memfd, p) = platform();
        let space = p.new_address_space().expect("address space");
        let before = threads::traced_count();
        space.map(0x400000, 0x1000, 0, Perms::R).expect("map");
        assert_eq!(threads::traced_count(), before + 1);
        let tid = space_of(&space).current_stub_tid().expect("stub thread");
        assert_ne!(tid, space_of(&space).stub_pid());
        space.release_current_thread();
        assert_eq!(threads::traced_count(), before);
        assert_eq!(space_of(&space).current_stub_tid(), None);
    }

    /// A `/proc/PID/status` field of host process `pid`.
    fn status_field(pid: i32, field: &str) -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    #[test]
    fn stubs_are_forked_from_the_zygote_and_stack_the_stub_filter() {
        let (_memfd, p) = platform();
        let zygote = p.zygote_pid();
        let space = p.new_address_space().expect("address space");
        let stub = space_of(&space).stub_pid();
        assert_eq!(status_field(stub, "PPid"), Some(zygote.to_string()));
        // SAFETY: getpid has no arguments.
        let me = unsafe { libc::getpid() };
        assert_eq!(status_field(zygote, "PPid"), Some(me.to_string()));
        // Seccomp_filters is Linux 5.9+; mode 2 is "filter" everywhere.
        assert_eq!(status_field(stub, "Seccomp"), Some("2".into()));
        if let Some(n) = status_field(zygote, "Seccomp_filters") {
            assert_eq!(n, "1");
            assert_eq!(status_field(stub, "Seccomp_filters"), Some("2".into()));
        }
        // The fork is the zygote's only one; a stub that tries it dies of the stub filter.
        let thread = space_of(&space).current_thread().expect("stub thread");
        assert_clone_kills_with_sigsys(&thread, seccomp::ZYGOTE_FORK_FLAGS);
    }

    #[test]
    fn dropped_stubs_leave_no_zombie_behind() {
        let (_memfd, p) = platform();
        let mut pids = Vec::new();
        for _ in 0..8 {
            let space = p.new_address_space().expect("address space");
            space.map(0x400000, 0x1000, 0, Perms::R).expect("map");
            pids.push(space_of(&space).stub_pid());
        }
        // Every stub was reaped (by its tracer, then released by the zygote's SA_NOCLDWAIT).
        for pid in pids {
            let state = status_field(pid, "State");
            assert!(state.is_none(), "stub {pid} still there: {state:?}");
        }
    }
}
