//! How guest code is run and trapped.
//!
//! A [`Platform`] creates [`AddressSpace`]s (the host-side container of a guest's memory
//! mappings) and [`Context`]s (a register set that runs guest code in an address space until
//! the guest makes a syscall, faults, receives a synchronous signal, or is interrupted).
//! The platform decides nothing about Linux semantics: it reports why guest code stopped and
//! the sentry decides what that means.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

pub mod ptrace;

/// x86_64 general-purpose registers, including `fs_base`/`gs_base` (the layout of the
/// kernel's `struct user_regs_struct`).
pub type Regs = libc::user_regs_struct;

/// The FPU/SSE/AVX state of a context in the XSAVE format (the kernel's `NT_X86_XSTATE`
/// regset). The first 512 bytes are the legacy FXSAVE area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpState {
    pub bytes: Vec<u8>,
}

/// Access permissions of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Perms {
    pub const NONE: Perms = Perms { read: false, write: false, exec: false };
    pub const R: Perms = Perms { read: true, write: false, exec: false };
    pub const RW: Perms = Perms { read: true, write: true, exec: false };
    pub const RX: Perms = Perms { read: true, write: false, exec: true };
    pub const RWX: Perms = Perms { read: true, write: true, exec: true };

    /// From `PROT_*` bits.
    pub fn from_prot(prot: u32) -> Perms {
        Perms { read: prot & 1 != 0, write: prot & 2 != 0, exec: prot & 4 != 0 }
    }

    /// As `PROT_*` bits.
    pub fn to_prot(self) -> u32 {
        (self.read as u32) | (self.write as u32) << 1 | (self.exec as u32) << 2
    }

    /// Whether every permission of `other` is also in `self`.
    pub fn contains(self, other: Perms) -> bool {
        (self.read || !other.read) && (self.write || !other.write) && (self.exec || !other.exec)
    }
}

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessType {
    Read,
    Write,
    Exec,
}

/// Why a page fault was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultCode {
    /// Nothing is mapped at the address in the host address space.
    NotMapped,
    /// A mapping exists but does not permit the access.
    Protection,
}

/// Why [`Context::switch`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The guest executed a syscall instruction. `regs.orig_rax` holds the number,
    /// `rdi, rsi, rdx, r10, r8, r9` the arguments and `rip` points after the instruction.
    /// The sentry stores the result in `rax`.
    Syscall,
    /// A page fault at `addr`.
    Fault { addr: u64, access: AccessType, code: FaultCode },
    /// Another synchronous signal raised by the guest's own execution (SIGILL, SIGFPE,
    /// SIGTRAP, SIGBUS, a SIGSEGV that is not a page fault), with `si_code` and `si_addr`.
    Signal { signo: i32, code: i32, addr: u64 },
    /// [`Interrupter::interrupt`] was called; guest state is consistent and may be resumed.
    Interrupted,
}

/// Platform errors. All of them are host-side failures; none is caused by guest input
/// alone except [`PlatformError::StubDied`] (e.g. the guest broke the stub's seccomp filter).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("host call {call} failed: {source}")]
    Host { call: &'static str, source: std::io::Error },
    #[error("stub process {pid} died unexpectedly ({reason})")]
    StubDied { pid: i32, reason: String },
    #[error("address space belongs to another platform or host thread")]
    WrongAddressSpace,
    #[error("address range {addr:#x}+{len:#x} is outside the guest's address space")]
    BadRange { addr: u64, len: u64 },
    #[error("unexpected stop of stub thread {tid}: {what}")]
    UnexpectedStop { tid: i32, what: String },
}

impl PlatformError {
    /// Wraps the current `errno` of a failed host call.
    pub fn last_os(call: &'static str) -> PlatformError {
        PlatformError::Host { call, source: std::io::Error::last_os_error() }
    }
}

/// Creates address spaces and contexts.
pub trait Platform: Send + Sync {
    /// A new, empty address space.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;
    /// A new context. A context is used by one host thread at a time; on the ptrace
    /// platform it should stay on one host thread (its FPU state lives in that thread's stub
    /// thread) and be dropped there.
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;
    /// One past the highest guest address that may be mapped.
    fn max_user_address(&self) -> u64;
    /// A short name ("ptrace").
    fn name(&self) -> &'static str;
}

/// The host-side container of one guest address space.
pub trait AddressSpace: Send + Sync {
    /// Maps `len` bytes of the memory file starting at `offset` at guest address `addr`
    /// (both page-aligned), shared, replacing any mapping in that range.
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError>;
    /// Removes mappings in `[addr, addr+len)`.
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError>;
    /// Frees what the calling host thread holds in this address space (the ptrace platform:
    /// its stub thread), e.g. when its task moves to another address space. The thread may
    /// use the address space again later. Host threads may call `map`, `unmap` and
    /// `Context::switch` on any address space; what they hold is freed anyway when they
    /// exit, when their last context using it is dropped, or with the address space.
    fn release_current_thread(&self) {}
    /// For downcasting by the platform that created it.
    fn as_any(&self) -> &dyn Any;
}

/// One guest register set running in some address space.
pub trait Context: Send {
    /// Runs guest code in `as_` with `regs` until the next [`Event`]; `regs` is updated
    /// to the guest's state at that event.
    fn switch(&mut self, as_: &Arc<dyn AddressSpace>, regs: &mut Regs) -> Result<Event, PlatformError>;
    /// The guest's FPU state as of the last event.
    fn fp_state(&mut self) -> Result<FpState, PlatformError>;
    /// Replaces the guest's FPU state before the next switch.
    fn set_fp_state(&mut self, fp: &FpState) -> Result<(), PlatformError>;
    /// A handle other threads use to make `switch` return [`Event::Interrupted`].
    fn interrupter(&self) -> Interrupter;
    /// The host process whose threads ran the guest code at the last switch, if the
    /// platform runs guest code in host processes (ptrace stubs): its CPU clock measures
    /// the guest's CPU time.
    fn host_process(&self) -> Option<i32> {
        None
    }
}

/// CPU time consumed so far by all threads of host process `pid`, or `None` if it is gone.
/// (Linux lets any process read another process's CPU clock, but only its own threads'.)
pub fn host_process_cpu_time(pid: i32) -> Option<std::time::Duration> {
    if pid <= 0 {
        return None;
    }
    // The kernel's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED).
    let clock = ((!pid) << 3) | 2;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; an invalid clock only makes the call fail.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Makes a context's `switch` return [`Event::Interrupted`] soon, from any thread.
/// An interrupt raised while the context is not in `switch` is kept and makes the next
/// `switch` return at once.
#[derive(Clone, Debug)]
pub struct Interrupter {
    inner: Arc<InterruptState>,
}

/// Shared between a context and its interrupters.
#[derive(Debug, Default)]
pub struct InterruptState {
    /// An interrupt is pending.
    pub pending: AtomicBool,
    /// Host tid of the stub thread while guest code runs in it, else 0.
    pub running_tid: AtomicI32,
    /// Host tgid of that stub thread.
    pub running_tgid: AtomicI32,
}

impl Interrupter {
    pub fn new(inner: Arc<InterruptState>) -> Interrupter {
        Interrupter { inner }
    }

    /// Requests the interrupt. Safe to call from any thread and any number of times.
    pub fn interrupt(&self) {
        self.inner.pending.store(true, Ordering::SeqCst);
        let tid = self.inner.running_tid.load(Ordering::SeqCst);
        let tgid = self.inner.running_tgid.load(Ordering::SeqCst);
        if tid > 0 && tgid > 0 {
            // SAFETY: tgkill takes plain integers; a stale tid is harmless because the tgid
            // must match too, and the signal is one the stub is traced for.
            unsafe {
                libc::syscall(libc::SYS_tgkill, tgid, tid, ptrace::INTERRUPT_SIGNAL);
            }
        }
    }
}
