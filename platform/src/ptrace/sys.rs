//! Thin, safe wrappers over the host calls the ptrace platform makes as the tracer:
//! `ptrace(2)` requests, `waitpid(2)` with status decoding, and register-set transfer.
//!
//! `ptrace` is called through `syscall(SYS_ptrace, ..)` rather than the libc wrapper, whose
//! request type differs between glibc and musl; none of the requests used here is a PEEK,
//! the only kind the wrappers treat specially.

use nix::errno::Errno;

use crate::{PlatformError, Regs};

pub const PTRACE_TRACEME: libc::c_long = 0;
pub const PTRACE_CONT: libc::c_long = 7;
pub const PTRACE_GETREGS: libc::c_long = 12;
pub const PTRACE_SETREGS: libc::c_long = 13;
pub const PTRACE_GETFPREGS: libc::c_long = 14;
pub const PTRACE_SETFPREGS: libc::c_long = 15;
pub const PTRACE_SYSEMU: libc::c_long = 31;
pub const PTRACE_SETOPTIONS: libc::c_long = 0x4200;
pub const PTRACE_GETSIGINFO: libc::c_long = 0x4202;
pub const PTRACE_GETREGSET: libc::c_long = 0x4204;
pub const PTRACE_SETREGSET: libc::c_long = 0x4205;
pub const PTRACE_SEIZE: libc::c_long = 0x4206;
pub const PTRACE_INTERRUPT: libc::c_long = 0x4207;
pub const PTRACE_SETSIGMASK: libc::c_long = 0x420b;
pub const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_long = 0x420f;

pub const PTRACE_O_TRACESYSGOOD: libc::c_long = 1;
pub const PTRACE_O_EXITKILL: libc::c_long = 1 << 20;

/// `status >> 16` of a stop caused by `PTRACE_INTERRUPT` or a group-stop of a seized tracee.
pub const PTRACE_EVENT_STOP: i32 = 128;

/// `NT_X86_XSTATE`: the XSAVE-format FPU/SSE/AVX register set.
pub const NT_X86_XSTATE: libc::c_long = 0x202;

/// Size of the legacy FXSAVE area (`struct user_fpregs_struct`).
pub const FXSAVE_SIZE: usize = 512;

/// What `PTRACE_GET_RSEQ_CONFIGURATION` returns (`struct ptrace_rseq_configuration`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RseqConfiguration {
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub signature: u32,
    pub flags: u32,
    pub pad: u32,
}

/// Maps a failed tracer call to a platform error. `ESRCH` means the tracee is gone (or no
/// longer stopped for us, which for our stubs only happens when it was killed).
pub fn ptrace_error(call: &'static str, pid: i32, e: Errno) -> PlatformError {
    if e == Errno::ESRCH {
        PlatformError::StubDied {
            pid,
            reason: format!("{call}: no such process"),
        }
    } else {
        PlatformError::Host {
            call,
            source: std::io::Error::from_raw_os_error(e as i32),
        }
    }
}

/// Issues one ptrace request. The caller must pass `addr`/`data` that are valid for `req`
/// (in particular, pointers to buffers of the size the request writes).
///
/// # Safety
/// For requests that read or write tracer memory, `addr`/`data` must point to live buffers
/// of the size the kernel accesses for that request.
unsafe fn ptrace(
    req: libc::c_long,
    pid: i32,
    addr: usize,
    data: usize,
) -> Result<libc::c_long, Errno> {
    // SAFETY: forwarded to the caller: the buffers behind addr/data are valid for `req`.
    let r = unsafe { libc::syscall(libc::SYS_ptrace, req, pid as libc::c_long, addr, data) };
    Errno::result(r)
}

/// Resumes a stopped tracee with `req` (`PTRACE_CONT`, `PTRACE_SYSEMU`), suppressing any
/// pending signal-delivery-stop signal.
pub fn resume(req: libc::c_long, pid: i32) -> Result<(), Errno> {
    debug_assert!(req == PTRACE_CONT || req == PTRACE_SYSEMU);
    // SAFETY: resume requests read no tracer memory; data 0 means "deliver no signal".
    unsafe { ptrace(req, pid, 0, 0) }.map(drop)
}

/// `PTRACE_SEIZE`s `pid` with `options`: the caller becomes its tracer without stopping it.
pub fn seize(pid: i32, options: libc::c_long) -> Result<(), Errno> {
    // SAFETY: PTRACE_SEIZE takes the options by value in `data`; no memory is accessed.
    unsafe { ptrace(PTRACE_SEIZE, pid, 0, options as usize) }.map(drop)
}

/// `PTRACE_INTERRUPT`: makes a seized tracee stop (a `PTRACE_EVENT_STOP`) soon.
pub fn interrupt(pid: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_INTERRUPT reads no tracer memory.
    unsafe { ptrace(PTRACE_INTERRUPT, pid, 0, 0) }.map(drop)
}

/// `PTRACE_SETSIGMASK`: replaces the blocked-signal mask of the stopped tracee (bit
/// `sig - 1` for signal `sig`; SIGKILL and SIGSTOP cannot be blocked).
pub fn set_sigmask(pid: i32, mask: u64) -> Result<(), Errno> {
    // SAFETY: the kernel reads `addr` (= 8, the size of the kernel's sigset_t on x86_64)
    // bytes from `data`, which points to a live local of that size.
    unsafe {
        ptrace(
            PTRACE_SETSIGMASK,
            pid,
            std::mem::size_of::<u64>(),
            &mask as *const u64 as usize,
        )
    }
    .map(drop)
}

pub fn set_options(pid: i32, options: libc::c_long) -> Result<(), Errno> {
    // SAFETY: PTRACE_SETOPTIONS takes the options by value in `data`; no memory is accessed.
    unsafe { ptrace(PTRACE_SETOPTIONS, pid, 0, options as usize) }.map(drop)
}

pub fn get_regs(pid: i32) -> Result<Regs, Errno> {
    let mut regs = zeroed_regs();
    // SAFETY: PTRACE_GETREGS writes exactly one `struct user_regs_struct` (Regs has that
    // layout) to `data`, which points to our local.
    unsafe { ptrace(PTRACE_GETREGS, pid, 0, &mut regs as *mut Regs as usize) }?;
    Ok(regs)
}

pub fn set_regs(pid: i32, regs: &Regs) -> Result<(), Errno> {
    // SAFETY: PTRACE_SETREGS reads one `struct user_regs_struct` from `data`, a live borrow.
    unsafe { ptrace(PTRACE_SETREGS, pid, 0, regs as *const Regs as usize) }.map(drop)
}

pub fn get_siginfo(pid: i32) -> Result<libc::siginfo_t, Errno> {
    // SAFETY: siginfo_t is plain old data (integers and a union of them); all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t to `data`, which points to our local.
    unsafe {
        ptrace(
            PTRACE_GETSIGINFO,
            pid,
            0,
            &mut info as *mut libc::siginfo_t as usize,
        )
    }?;
    Ok(info)
}

/// `PTRACE_GET_RSEQ_CONFIGURATION` (Linux 5.13+).
pub fn get_rseq_configuration(pid: i32) -> Result<RseqConfiguration, Errno> {
    let mut conf = RseqConfiguration::default();
    let size = std::mem::size_of::<RseqConfiguration>();
    // SAFETY: the kernel writes at most `addr` (= size of our struct) bytes to `data`.
    unsafe {
        ptrace(
            PTRACE_GET_RSEQ_CONFIGURATION,
            pid,
            size,
            &mut conf as *mut _ as usize,
        )
    }?;
    Ok(conf)
}

/// `PTRACE_GETREGSET` of `note` into `buf`; returns the number of bytes the kernel wrote.
pub fn get_regset(pid: i32, note: libc::c_long, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most iov_len bytes to iov_base, a live exclusive borrow of
    // `buf`, and stores the written length back into our local `iov`.
    unsafe {
        ptrace(
            PTRACE_GETREGSET,
            pid,
            note as usize,
            &mut iov as *mut libc::iovec as usize,
        )
    }?;
    Ok(iov.iov_len)
}

/// `PTRACE_SETREGSET` of `note` from `buf` (which must be exactly the regset's size).
pub fn set_regset(pid: i32, note: libc::c_long, buf: &[u8]) -> Result<(), Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the kernel only reads iov_len bytes from iov_base, a live borrow of `buf`.
    unsafe {
        ptrace(
            PTRACE_SETREGSET,
            pid,
            note as usize,
            &mut iov as *mut libc::iovec as usize,
        )
    }
    .map(drop)
}

/// `PTRACE_GETFPREGS`: the 512-byte FXSAVE area (fallback when XSAVE is unavailable).
pub fn get_fpregs(pid: i32) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; FXSAVE_SIZE];
    // SAFETY: PTRACE_GETFPREGS writes one 512-byte `struct user_fpregs_struct` to `data`,
    // which points to a live buffer of exactly that size.
    unsafe { ptrace(PTRACE_GETFPREGS, pid, 0, buf.as_mut_ptr() as usize) }?;
    Ok(buf)
}

/// `PTRACE_SETFPREGS` from a 512-byte FXSAVE image.
pub fn set_fpregs(pid: i32, buf: &[u8; FXSAVE_SIZE]) -> Result<(), Errno> {
    // SAFETY: PTRACE_SETFPREGS reads 512 bytes from `data`, a live borrow of that size.
    unsafe { ptrace(PTRACE_SETFPREGS, pid, 0, buf.as_ptr() as usize) }.map(drop)
}

/// A decoded `waitpid` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
    /// A ptrace stop; `sig` is `WSTOPSIG` (with 0x80 for syscall stops under
    /// `PTRACE_O_TRACESYSGOOD`), `event` is `status >> 16`.
    Stopped {
        sig: i32,
        event: i32,
    },
}

impl WaitStatus {
    fn from_raw(status: i32) -> WaitStatus {
        if libc::WIFEXITED(status) {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            WaitStatus::Stopped {
                sig: libc::WSTOPSIG(status),
                event: (status >> 16) & 0xffff,
            }
        }
    }

    /// Describes an exit for [`PlatformError::StubDied`].
    pub fn describe(self) -> String {
        match self {
            WaitStatus::Exited(code) => format!("exited with status {code}"),
            WaitStatus::Signaled(sig) => format!("killed by signal {sig}"),
            WaitStatus::Stopped { sig, event } => format!("stopped by signal {sig} event {event}"),
        }
    }

    pub fn is_exit(self) -> bool {
        !matches!(self, WaitStatus::Stopped { .. })
    }
}

/// `waitpid(pid, __WALL | extra)`, retried on `EINTR`. `Ok(None)` only with `WNOHANG` and
/// nothing to report.
pub fn wait(pid: i32, extra: i32) -> Result<Option<WaitStatus>, Errno> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int to `status`, a live local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | extra) };
        match Errno::result(r) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(WaitStatus::from_raw(status))),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// An all-zero register set.
pub fn zeroed_regs() -> Regs {
    // SAFETY: user_regs_struct consists only of u64 fields; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Whether two register sets are bit-for-bit equal (libc only derives `PartialEq` with its
/// `extra_traits` feature).
pub fn regs_eq(a: &Regs, b: &Regs) -> bool {
    regs_words(a) == regs_words(b)
}

fn regs_words(r: &Regs) -> &[u64] {
    const N: usize = std::mem::size_of::<Regs>() / 8;
    const _: () = assert!(std::mem::size_of::<Regs>() == 27 * 8);
    // SAFETY: user_regs_struct is repr(C) and made of 27 u64 fields with no padding (checked
    // above), so it may be viewed as a [u64; 27] for the lifetime of the borrow.
    unsafe { std::slice::from_raw_parts(r as *const Regs as *const u64, N) }
}

/// The host thread id of the caller, cached per thread (gettid is a real syscall).
pub fn current_tid() -> i32 {
    thread_local! {
        static TID: i32 = {
            // SAFETY: gettid has no arguments and cannot fail.
            unsafe { libc::syscall(libc::SYS_gettid) as i32 }
        };
    }
    TID.with(|t| *t)
}
