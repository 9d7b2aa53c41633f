//! Signal-delivery ABI of x86_64 Linux: `siginfo_t`, the signal frame (`struct rt_sigframe`
//! with its `ucontext` and `sigcontext`), the software-reserved bytes of the XSAVE area, and
//! the `si_code` values. Laid out exactly as the kernel writes them to a handler's stack.

use crate::pod::{pod, Pod};
use crate::types::{SigAltStack, SigSet};

// ---------------------------------------------------------------------------------------
// si_code values
// ---------------------------------------------------------------------------------------

/// Sent by kill(2), raise(3), sigsend.
pub const SI_USER: i32 = 0;
/// Sent by the kernel itself.
pub const SI_KERNEL: i32 = 0x80;
/// Sent by sigqueue(3) / rt_sigqueueinfo(2).
pub const SI_QUEUE: i32 = -1;
/// A POSIX timer expired.
pub const SI_TIMER: i32 = -2;
/// A POSIX message queue changed state.
pub const SI_MESGQ: i32 = -3;
/// Asynchronous I/O completed.
pub const SI_ASYNCIO: i32 = -4;
/// Queued SIGIO.
pub const SI_SIGIO: i32 = -5;
/// Sent by tkill(2) / tgkill(2).
pub const SI_TKILL: i32 = -6;
/// Sent by execve killing the other threads.
pub const SI_DETHREAD: i32 = -7;
/// Asynchronous name lookup completed.
pub const SI_ASYNCNL: i32 = -60;

/// SIGILL codes.
pub const ILL_ILLOPC: i32 = 1;
pub const ILL_ILLOPN: i32 = 2;
pub const ILL_ILLADR: i32 = 3;
pub const ILL_ILLTRP: i32 = 4;
pub const ILL_PRVOPC: i32 = 5;
pub const ILL_PRVREG: i32 = 6;
pub const ILL_COPROC: i32 = 7;
pub const ILL_BADSTK: i32 = 8;
pub const ILL_BADIADDR: i32 = 9;

/// SIGFPE codes.
pub const FPE_INTDIV: i32 = 1;
pub const FPE_INTOVF: i32 = 2;
pub const FPE_FLTDIV: i32 = 3;
pub const FPE_FLTOVF: i32 = 4;
pub const FPE_FLTUND: i32 = 5;
pub const FPE_FLTRES: i32 = 6;
pub const FPE_FLTINV: i32 = 7;
pub const FPE_FLTSUB: i32 = 8;
pub const FPE_FLTUNK: i32 = 14;
pub const FPE_CONDTRAP: i32 = 15;

/// SIGSEGV codes.
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const SEGV_BNDERR: i32 = 3;
pub const SEGV_PKUERR: i32 = 4;
pub const SEGV_ACCADI: i32 = 5;
pub const SEGV_ADIDERR: i32 = 6;
pub const SEGV_ADIPERR: i32 = 7;
pub const SEGV_MTEAERR: i32 = 8;
pub const SEGV_MTESERR: i32 = 9;
pub const SEGV_CPERR: i32 = 10;

/// SIGBUS codes.
pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const BUS_OBJERR: i32 = 3;
pub const BUS_MCEERR_AR: i32 = 4;
pub const BUS_MCEERR_AO: i32 = 5;

/// SIGTRAP codes.
pub const TRAP_BRKPT: i32 = 1;
pub const TRAP_TRACE: i32 = 2;
pub const TRAP_BRANCH: i32 = 3;
pub const TRAP_HWBKPT: i32 = 4;
pub const TRAP_UNK: i32 = 5;
pub const TRAP_PERF: i32 = 6;

/// SIGCHLD codes.
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_TRAPPED: i32 = 4;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// SIGPOLL / SIGIO codes.
pub const POLL_IN: i32 = 1;
pub const POLL_OUT: i32 = 2;
pub const POLL_MSG: i32 = 3;
pub const POLL_ERR: i32 = 4;
pub const POLL_PRI: i32 = 5;
pub const POLL_HUP: i32 = 6;

/// SIGSYS codes.
pub const SYS_SECCOMP: i32 = 1;
pub const SYS_USER_DISPATCH: i32 = 2;

/// `AUDIT_ARCH_X86_64`, the `si_arch` of a SIGSYS from a seccomp filter.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// `stack_t.ss_flags`: the alternate stack is disabled automatically while a handler runs
/// on it (and re-armed by sigreturn restoring `uc_stack`).
pub const SS_AUTODISARM: i32 = i32::MIN; // 1 << 31
/// The mode bits of `ss_flags` that are flags rather than a mode.
pub const SS_FLAG_BITS: i32 = SS_AUTODISARM;

// ---------------------------------------------------------------------------------------
// ucontext / sigcontext / XSAVE software bytes
// ---------------------------------------------------------------------------------------

/// `uc_flags`: the fpstate is in the XSAVE format with [`FpxSwBytes`] (and may hold
/// extended state).
pub const UC_FP_XSTATE: u64 = 0x1;
/// `uc_flags`: `uc_mcontext.ss` holds the interrupted SS.
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
/// `uc_flags`: sigreturn restores SS exactly as saved.
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// `fpx_sw_bytes.magic1`: the XSAVE software bytes are valid.
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// Written right after the XSAVE area (at `fpstate + xstate_size`).
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Size of the trailing [`FP_XSTATE_MAGIC2`].
pub const FP_XSTATE_MAGIC2_SIZE: usize = 4;
/// Size of the legacy FXSAVE area.
pub const FXSAVE_SIZE: usize = 512;
/// Size of the XSAVE header that follows the legacy area.
pub const XSAVE_HEADER_SIZE: usize = 64;
/// Offset of the software-reserved bytes ([`FpxSwBytes`]) in the FXSAVE area.
pub const FPX_SW_BYTES_OFFSET: usize = 464;
/// Offset of MXCSR in the FXSAVE area.
pub const FXSAVE_MXCSR_OFFSET: usize = 24;

/// XSAVE feature bits of the x87 and SSE state (the legacy area).
pub const XFEATURE_MASK_FPSSE: u64 = 0b11;

/// `struct _fpx_sw_bytes`: the kernel's description of the XSAVE area of a signal frame,
/// stored in the software-reserved bytes 464..512 of the FXSAVE area.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpxSwBytes {
    /// [`FP_XSTATE_MAGIC1`] when the rest is valid.
    pub magic1: u32,
    /// `xstate_size` plus the trailing magic2.
    pub extended_size: u32,
    /// The state components the XSAVE area may hold.
    pub xfeatures: u64,
    /// Size of the XSAVE area (magic2 is at this offset).
    pub xstate_size: u32,
    pub padding: [u32; 7],
}

/// `struct sigcontext` (x86_64): the interrupted registers in a signal frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigcontext {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    /// The blocked mask before the handler (the whole 64-bit set on x86_64).
    pub oldmask: u64,
    pub cr2: u64,
    /// Guest address of the FP/XSAVE area, or 0 for none.
    pub fpstate: u64,
    pub reserved1: [u64; 8],
}

/// The kernel's `struct ucontext` (x86_64), as in a signal frame. glibc's `ucontext_t`
/// starts with the same fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucontext {
    pub uc_flags: u64,
    pub uc_link: u64,
    pub uc_stack: SigAltStack,
    pub uc_mcontext: Sigcontext,
    pub uc_sigmask: SigSet,
}

/// `struct rt_sigframe` (x86_64): what `rsp` points at when a handler starts. The FP/XSAVE
/// area lies above it, at `uc.uc_mcontext.fpstate`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtSigframe {
    /// The return address of the handler: `sa_restorer`, which calls rt_sigreturn.
    pub pretcode: u64,
    pub uc: Ucontext,
    pub info: Siginfo,
}

/// Offset of `uc` in [`RtSigframe`].
pub const RT_SIGFRAME_UC_OFFSET: usize = 8;
/// Offset of `info` in [`RtSigframe`].
pub const RT_SIGFRAME_INFO_OFFSET: usize = 8 + core::mem::size_of::<Ucontext>();

// ---------------------------------------------------------------------------------------
// siginfo_t
// ---------------------------------------------------------------------------------------

/// Size of `siginfo_t`.
pub const SI_MAX_SIZE: usize = 128;
/// Size of the union after the three leading ints (and their padding).
const SIFIELDS_SIZE: usize = SI_MAX_SIZE - 16;
/// Offset of the `_sifields` union in `siginfo_t` on x86_64.
pub const SIFIELDS_OFFSET: usize = 16;

/// `siginfo_t` (x86_64): 128 bytes, the `_sifields` union at offset 16. Construct with the
/// `Siginfo::*` constructors; read the union with the accessors, which interpret the bytes
/// as the union member named (the caller knows which applies, see [`Siginfo::layout`]).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Siginfo {
    pub si_signo: i32,
    pub si_errno: i32,
    pub si_code: i32,
    pub __pad: i32,
    /// The `_sifields` union, little-endian bytes.
    pub fields: [u8; SIFIELDS_SIZE],
}

impl Default for Siginfo {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl core::fmt::Debug for Siginfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Siginfo")
            .field("si_signo", &self.si_signo)
            .field("si_errno", &self.si_errno)
            .field("si_code", &self.si_code)
            .field("word0", &format_args!("{:#x}", self.u64_at(0)))
            .field("word1", &format_args!("{:#x}", self.u64_at(8)))
            .field("word2", &format_args!("{:#x}", self.u64_at(16)))
            .finish()
    }
}

/// Which member of the `_sifields` union a siginfo uses (Linux's `siginfo_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiginfoLayout {
    Kill,
    Timer,
    Poll,
    Fault,
    /// SIGBUS with BUS_MCEERR_AR/AO (`si_addr_lsb` is meaningful).
    FaultMceerr,
    /// SIGSEGV with SEGV_BNDERR (`_addr_bnd`).
    FaultBnd,
    /// SIGSEGV with SEGV_PKUERR (`_addr_pkey`).
    FaultPkey,
    /// SIGTRAP with TRAP_PERF (`_perf`).
    FaultPerf,
    Chld,
    Rt,
    Sys,
}

// Offsets inside `_sifields` (relative to `fields`).
const F_PID: usize = 0; // _kill/_rt/_sigchld si_pid; _timer si_tid
const F_UID: usize = 4; // _kill/_rt/_sigchld si_uid; _timer si_overrun
const F_SIGVAL: usize = 8; // _rt/_timer si_value
const F_STATUS: usize = 8; // _sigchld si_status
const F_UTIME: usize = 16; // _sigchld si_utime
const F_STIME: usize = 24; // _sigchld si_stime
const F_ADDR: usize = 0; // _sigfault si_addr; _sigsys si_call_addr
const F_ADDR_LSB: usize = 8; // _sigfault si_addr_lsb (short)
const F_LOWER: usize = 16; // _addr_bnd _lower
const F_UPPER: usize = 24; // _addr_bnd _upper
const F_PKEY: usize = 16; // _addr_pkey _pkey
const F_BAND: usize = 0; // _sigpoll si_band (long)
const F_FD: usize = 8; // _sigpoll si_fd
const F_SYSCALL: usize = 8; // _sigsys _syscall
const F_ARCH: usize = 12; // _sigsys _arch

impl Siginfo {
    fn header(signo: u32, code: i32) -> Siginfo {
        Siginfo { si_signo: signo as i32, si_code: code, ..Siginfo::zeroed() }
    }

    fn put(&mut self, off: usize, bytes: &[u8]) {
        if let Some(dst) = self.fields.get_mut(off..off + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(src) = self.fields.get(off..off + 4) {
            b.copy_from_slice(src);
        }
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        if let Some(src) = self.fields.get(off..off + 8) {
            b.copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    }

    /// A signal from kill(2) (`SI_USER`), tkill/tgkill (`SI_TKILL`) or the kernel with the
    /// sender's pid and uid (`_kill`).
    pub fn kill(signo: u32, code: i32, pid: i32, uid: u32) -> Siginfo {
        let mut s = Siginfo::header(signo, code);
        s.put(F_PID, &pid.to_le_bytes());
        s.put(F_UID, &uid.to_le_bytes());
        s
    }

    /// A signal with a value: sigqueue (`SI_QUEUE`), message queues (`_rt`).
    pub fn rt(signo: u32, code: i32, pid: i32, uid: u32, sigval: u64) -> Siginfo {
        let mut s = Siginfo::kill(signo, code, pid, uid);
        s.put(F_SIGVAL, &sigval.to_le_bytes());
        s
    }

    /// A POSIX timer expiry (`SI_TIMER`, `_timer`).
    pub fn timer(signo: u32, timer_id: i32, overrun: i32, sigval: u64) -> Siginfo {
        let mut s = Siginfo::header(signo, SI_TIMER);
        s.put(F_PID, &timer_id.to_le_bytes());
        s.put(F_UID, &overrun.to_le_bytes());
        s.put(F_SIGVAL, &sigval.to_le_bytes());
        s
    }

    /// A child changed state (`CLD_*`, `_sigchld`). `status` is the exit code or signal;
    /// the times are in clock ticks.
    pub fn child(signo: u32, code: i32, pid: i32, uid: u32, status: i32, utime: i64, stime: i64) -> Siginfo {
        let mut s = Siginfo::kill(signo, code, pid, uid);
        s.put(F_STATUS, &status.to_le_bytes());
        s.put(F_UTIME, &utime.to_le_bytes());
        s.put(F_STIME, &stime.to_le_bytes());
        s
    }

    /// A hardware fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) at `addr`; `addr_lsb`
    /// and the bound/pkey fields are zero.
    pub fn fault(signo: u32, code: i32, addr: u64) -> Siginfo {
        let mut s = Siginfo::header(signo, code);
        s.put(F_ADDR, &addr.to_le_bytes());
        s
    }

    /// I/O readiness (`POLL_*`, `_sigpoll`).
    pub fn poll(signo: u32, code: i32, band: i64, fd: i32) -> Siginfo {
        let mut s = Siginfo::header(signo, code);
        s.put(F_BAND, &band.to_le_bytes());
        s.put(F_FD, &fd.to_le_bytes());
        s
    }

    /// A SIGSYS from a seccomp filter or syscall user dispatch (`_sigsys`).
    pub fn sys(signo: u32, code: i32, call_addr: u64, syscall: i32, arch: u32) -> Siginfo {
        let mut s = Siginfo::header(signo, code);
        s.put(F_ADDR, &call_addr.to_le_bytes());
        s.put(F_SYSCALL, &syscall.to_le_bytes());
        s.put(F_ARCH, &arch.to_le_bytes());
        s
    }

    /// Which union member `si_code` selects for `si_signo`, like Linux's
    /// `siginfo_layout()`.
    pub fn layout(&self) -> SiginfoLayout {
        use SiginfoLayout::*;
        let (sig, code) = (self.si_signo, self.si_code);
        if code > SI_USER && code < SI_KERNEL {
            // The kernel's own, signal-specific codes, up to each signal's NSIG* limit;
            // any other small code is taken as a POLL_* code.
            let (limit, layout) = match sig {
                4 => (11, Fault),  // SIGILL, NSIGILL
                8 => (15, Fault),  // SIGFPE, NSIGFPE
                11 => (10, Fault), // SIGSEGV, NSIGSEGV
                7 => (5, Fault),   // SIGBUS, NSIGBUS
                5 => (6, Fault),   // SIGTRAP, NSIGTRAP
                17 => (6, Chld),   // SIGCHLD, NSIGCHLD
                31 => (2, Sys),    // SIGSYS, NSIGSYS
                _ => (0, Kill),
            };
            if code <= limit {
                return match (sig, code) {
                    (7, BUS_MCEERR_AR..=BUS_MCEERR_AO) => FaultMceerr,
                    (11, SEGV_BNDERR) => FaultBnd,
                    (11, SEGV_PKUERR) => FaultPkey,
                    (5, TRAP_PERF) => FaultPerf,
                    _ => layout,
                };
            }
            return if code <= POLL_HUP { Poll } else { Kill };
        }
        match code {
            SI_TIMER => Timer,
            SI_SIGIO => Poll,
            c if c < 0 => Rt,
            _ => Kill,
        }
    }

    // --- accessors (the caller picks the member that applies) ---

    /// `si_pid` (`_kill`, `_rt`, `_sigchld`).
    pub fn pid(&self) -> i32 {
        self.u32_at(F_PID) as i32
    }
    /// `si_uid` (`_kill`, `_rt`, `_sigchld`).
    pub fn uid(&self) -> u32 {
        self.u32_at(F_UID)
    }
    /// `si_value` (`_rt`, `_timer`).
    pub fn sigval(&self) -> u64 {
        self.u64_at(F_SIGVAL)
    }
    /// `si_timerid` (`_timer`).
    pub fn timer_id(&self) -> i32 {
        self.u32_at(F_PID) as i32
    }
    /// `si_overrun` (`_timer`).
    pub fn overrun(&self) -> i32 {
        self.u32_at(F_UID) as i32
    }
    /// Sets `si_overrun` (a timer signal's count is updated while it is queued).
    pub fn set_overrun(&mut self, overrun: i32) {
        self.put(F_UID, &overrun.to_le_bytes());
    }
    /// `si_status` (`_sigchld`).
    pub fn status(&self) -> i32 {
        self.u32_at(F_STATUS) as i32
    }
    /// `si_utime` (`_sigchld`).
    pub fn utime(&self) -> i64 {
        self.u64_at(F_UTIME) as i64
    }
    /// `si_stime` (`_sigchld`).
    pub fn stime(&self) -> i64 {
        self.u64_at(F_STIME) as i64
    }
    /// `si_addr` (`_sigfault`).
    pub fn addr(&self) -> u64 {
        self.u64_at(F_ADDR)
    }
    /// `si_addr_lsb` (`_sigfault`, BUS_MCEERR_*).
    pub fn addr_lsb(&self) -> i16 {
        self.u32_at(F_ADDR_LSB) as u16 as i16
    }
    /// `si_lower` (`_addr_bnd`).
    pub fn lower(&self) -> u64 {
        self.u64_at(F_LOWER)
    }
    /// `si_upper` (`_addr_bnd`).
    pub fn upper(&self) -> u64 {
        self.u64_at(F_UPPER)
    }
    /// `si_pkey` (`_addr_pkey`).
    pub fn pkey(&self) -> u32 {
        self.u32_at(F_PKEY)
    }
    /// `si_band` (`_sigpoll`).
    pub fn band(&self) -> i64 {
        self.u64_at(F_BAND) as i64
    }
    /// `si_fd` (`_sigpoll`).
    pub fn fd(&self) -> i32 {
        self.u32_at(F_FD) as i32
    }
    /// `si_call_addr` (`_sigsys`).
    pub fn call_addr(&self) -> u64 {
        self.u64_at(F_ADDR)
    }
    /// `si_syscall` (`_sigsys`).
    pub fn syscall(&self) -> i32 {
        self.u32_at(F_SYSCALL) as i32
    }
    /// `si_arch` (`_sigsys`).
    pub fn arch(&self) -> u32 {
        self.u32_at(F_ARCH)
    }
}

pod!(FpxSwBytes, Sigcontext, Ucontext, RtSigframe, Siginfo);

// The ABI sizes and offsets (checked against <signal.h> / <asm/sigcontext.h>); a mismatch
// here is a layout bug that would corrupt guest memory.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Siginfo>() == SI_MAX_SIZE);
    assert!(offset_of!(Siginfo, fields) == SIFIELDS_OFFSET);
    assert!(size_of::<FpxSwBytes>() == 48);
    assert!(FPX_SW_BYTES_OFFSET + size_of::<FpxSwBytes>() == FXSAVE_SIZE);
    assert!(size_of::<Sigcontext>() == 256);
    assert!(offset_of!(Sigcontext, rip) == 128);
    assert!(offset_of!(Sigcontext, eflags) == 136);
    assert!(offset_of!(Sigcontext, cs) == 144);
    assert!(offset_of!(Sigcontext, err) == 152);
    assert!(offset_of!(Sigcontext, oldmask) == 168);
    assert!(offset_of!(Sigcontext, cr2) == 176);
    assert!(offset_of!(Sigcontext, fpstate) == 184);
    assert!(size_of::<Ucontext>() == 304);
    assert!(offset_of!(Ucontext, uc_stack) == 16);
    assert!(offset_of!(Ucontext, uc_mcontext) == 40);
    assert!(offset_of!(Ucontext, uc_sigmask) == 296);
    assert!(size_of::<RtSigframe>() == 440);
    assert!(offset_of!(RtSigframe, uc) == RT_SIGFRAME_UC_OFFSET);
    assert!(offset_of!(RtSigframe, info) == RT_SIGFRAME_INFO_OFFSET);
    assert!(RT_SIGFRAME_INFO_OFFSET == 312);
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the little-endian i32 at byte `off` of the whole siginfo.
    fn i32_at(si: &Siginfo, off: usize) -> i32 {
        i32::from_le_bytes(si.as_bytes()[off..off + 4].try_into().unwrap())
    }

    fn u64_at(si: &Siginfo, off: usize) -> u64 {
        u64::from_le_bytes(si.as_bytes()[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn siginfo_header_is_signo_errno_code() {
        let si = Siginfo::kill(15, SI_USER, 42, 1000);
        assert_eq!(i32_at(&si, 0), 15);
        assert_eq!(i32_at(&si, 4), 0);
        assert_eq!(i32_at(&si, 8), SI_USER);
        assert_eq!(i32_at(&si, 12), 0);
    }

    #[test]
    fn kill_siginfo_has_pid_at_16_and_uid_at_20() {
        let si = Siginfo::kill(10, SI_TKILL, 42, 1000);
        assert_eq!(i32_at(&si, 16), 42);
        assert_eq!(i32_at(&si, 20), 1000);
        assert_eq!((si.pid(), si.uid()), (42, 1000));
        assert_eq!(si.layout(), SiginfoLayout::Rt); // negative codes use _rt in Linux
        assert_eq!(Siginfo::kill(10, SI_USER, 1, 0).layout(), SiginfoLayout::Kill);
    }

    #[test]
    fn rt_siginfo_has_sigval_at_24() {
        let si = Siginfo::rt(34, SI_QUEUE, 7, 0, 0xdead_beef_cafe);
        assert_eq!(u64_at(&si, 24), 0xdead_beef_cafe);
        assert_eq!(si.sigval(), 0xdead_beef_cafe);
        assert_eq!(si.layout(), SiginfoLayout::Rt);
    }

    #[test]
    fn timer_siginfo_has_tid_overrun_and_sigval() {
        let mut si = Siginfo::timer(14, 3, 2, 99);
        assert_eq!(si.si_code, SI_TIMER);
        assert_eq!((i32_at(&si, 16), i32_at(&si, 20), u64_at(&si, 24)), (3, 2, 99));
        si.set_overrun(5);
        assert_eq!((si.timer_id(), si.overrun(), si.sigval()), (3, 5, 99));
        assert_eq!(si.layout(), SiginfoLayout::Timer);
    }

    #[test]
    fn child_siginfo_has_status_at_24_and_times_at_32_and_40() {
        let si = Siginfo::child(17, CLD_EXITED, 5, 0, 3, 11, 12);
        assert_eq!((i32_at(&si, 16), i32_at(&si, 24)), (5, 3));
        assert_eq!((u64_at(&si, 32), u64_at(&si, 40)), (11, 12));
        assert_eq!((si.status(), si.utime(), si.stime()), (3, 11, 12));
        assert_eq!(si.layout(), SiginfoLayout::Chld);
    }

    #[test]
    fn fault_siginfo_has_addr_at_16_and_zero_lsb() {
        let si = Siginfo::fault(11, SEGV_ACCERR, 0x7fff_1234);
        assert_eq!(u64_at(&si, 16), 0x7fff_1234);
        assert_eq!((si.addr(), si.addr_lsb(), si.lower(), si.upper(), si.pkey()), (0x7fff_1234, 0, 0, 0, 0));
        assert_eq!(si.layout(), SiginfoLayout::Fault);
        assert_eq!(Siginfo::fault(11, SEGV_PKUERR, 0).layout(), SiginfoLayout::FaultPkey);
        assert_eq!(Siginfo::fault(11, SEGV_BNDERR, 0).layout(), SiginfoLayout::FaultBnd);
        assert_eq!(Siginfo::fault(5, TRAP_PERF, 0).layout(), SiginfoLayout::FaultPerf);
        assert_eq!(Siginfo::fault(7, BUS_MCEERR_AR, 0).layout(), SiginfoLayout::FaultMceerr);
        // Small codes of other signals are read as POLL_* codes, like Linux.
        assert_eq!(Siginfo::kill(10, 3, 0, 0).layout(), SiginfoLayout::Poll);
        assert_eq!(Siginfo::kill(10, 7, 0, 0).layout(), SiginfoLayout::Kill);
    }

    #[test]
    fn poll_siginfo_has_band_at_16_and_fd_at_24() {
        let si = Siginfo::poll(29, POLL_IN, 0x41, 7);
        assert_eq!((u64_at(&si, 16), i32_at(&si, 24)), (0x41, 7));
        assert_eq!((si.band(), si.fd()), (0x41, 7));
        assert_eq!(si.layout(), SiginfoLayout::Poll);
    }

    #[test]
    fn sys_siginfo_has_call_addr_syscall_and_arch() {
        let si = Siginfo::sys(31, SYS_SECCOMP, 0x401000, 39, AUDIT_ARCH_X86_64);
        assert_eq!((u64_at(&si, 16), i32_at(&si, 24), i32_at(&si, 28) as u32), (0x401000, 39, AUDIT_ARCH_X86_64));
        assert_eq!((si.call_addr(), si.syscall(), si.arch()), (0x401000, 39, AUDIT_ARCH_X86_64));
        assert_eq!(si.layout(), SiginfoLayout::Sys);
    }

    #[test]
    fn siginfo_round_trips_through_bytes() {
        let si = Siginfo::child(17, CLD_KILLED, 9, 1, 9, 0, 0);
        assert_eq!(Siginfo::from_bytes(si.as_bytes()), Some(si));
        assert_eq!(Siginfo::default(), Siginfo::zeroed());
    }

    #[test]
    fn rt_sigframe_fields_sit_at_linux_offsets() {
        let mut f = RtSigframe { pretcode: 1, ..Default::default() };
        f.uc.uc_flags = 2;
        f.uc.uc_mcontext.r8 = 3;
        f.uc.uc_mcontext.rip = 4;
        f.uc.uc_mcontext.ss = 0x2b;
        f.uc.uc_mcontext.fpstate = 5;
        f.uc.uc_sigmask = SigSet(6);
        f.info.si_signo = 7;
        let b = f.as_bytes();
        let at = |off: usize| u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
        assert_eq!(at(0), 1);
        assert_eq!(at(8), 2);
        assert_eq!(at(8 + 40), 3);
        assert_eq!(at(8 + 40 + 128), 4);
        assert_eq!(u16::from_le_bytes([b[8 + 40 + 150], b[8 + 40 + 151]]), 0x2b);
        assert_eq!(at(8 + 40 + 184), 5);
        assert_eq!(at(8 + 296), 6);
        assert_eq!(at(312) as u32, 7);
    }
}
