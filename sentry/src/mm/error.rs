//! Errors of the memory manager, each mapped to what the guest sees in one place.

use rvisor_platform::{AccessType, PlatformError};
use rvisor_syscalls::flags::signal::{BUS_ADRERR, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGSEGV};
use rvisor_syscalls::Errno;

/// Host-side failures of the memory file or the platform.
#[derive(Debug, thiserror::Error)]
pub enum MmError {
    #[error("host call {call} failed: {source}")]
    Host { call: &'static str, source: std::io::Error },
    #[error("memory file is full ({requested:#x} more bytes requested)")]
    OutOfMemory { requested: u64 },
    #[error("memory-file range {offset:#x}+{len:#x} is out of bounds")]
    OutOfBounds { offset: u64, len: u64 },
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

impl MmError {
    /// Wraps the current `errno` of a failed host call.
    pub fn last_os(call: &'static str) -> MmError {
        MmError::Host { call, source: std::io::Error::last_os_error() }
    }

    /// The errno the guest sees when a syscall hits this error.
    pub fn errno(&self) -> Errno {
        match self {
            MmError::OutOfMemory { .. } | MmError::Host { .. } => Errno::ENOMEM,
            MmError::OutOfBounds { .. } => Errno::EFAULT,
            MmError::Platform(_) => Errno::EFAULT,
        }
    }
}

/// Why a guest page fault could not be resolved. The sentry turns it into a signal
/// ([`FaultError::signo`], [`FaultError::si_code`]) for a fault in guest code, or into an
/// errno ([`FaultError::errno`]) when a syscall touched the memory.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("no mapping at {addr:#x}")]
    NoMapping { addr: u64 },
    #[error("{access:?} access to {addr:#x} is not permitted by the mapping")]
    AccessDenied { addr: u64, access: AccessType },
    #[error("page at {addr:#x} is beyond the end of the mapped file")]
    BeyondEof { addr: u64 },
    #[error("reading the mapped file for {addr:#x} failed: {errno}")]
    Io { addr: u64, errno: Errno },
    #[error(transparent)]
    Memory(#[from] MmError),
}

impl FaultError {
    /// The signal a faulting guest thread receives.
    pub fn signo(&self) -> u32 {
        match self {
            FaultError::NoMapping { .. } | FaultError::AccessDenied { .. } => SIGSEGV,
            // Linux sends SIGBUS for file pages beyond EOF and unreadable file pages; an
            // out-of-memory fault would invoke the OOM killer, which SIGBUS approximates.
            FaultError::BeyondEof { .. } | FaultError::Io { .. } | FaultError::Memory(_) => SIGBUS,
        }
    }

    /// `si_code` of that signal.
    pub fn si_code(&self) -> i32 {
        match self {
            FaultError::NoMapping { .. } => SEGV_MAPERR,
            FaultError::AccessDenied { .. } => SEGV_ACCERR,
            FaultError::BeyondEof { .. } | FaultError::Io { .. } | FaultError::Memory(_) => BUS_ADRERR,
        }
    }

    /// The errno a syscall returns when it touches memory that faults like this.
    pub fn errno(&self) -> Errno {
        match self {
            FaultError::Memory(MmError::OutOfMemory { .. }) => Errno::ENOMEM,
            _ => Errno::EFAULT,
        }
    }
}
