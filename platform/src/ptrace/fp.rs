//! FPU/SSE/AVX state transfer with a stub thread: `PTRACE_GETREGSET`/`PTRACE_SETREGSET`
//! of `NT_X86_XSTATE` (the XSAVE layout), or `PTRACE_GETFPREGS`/`PTRACE_SETFPREGS` (the
//! 512-byte FXSAVE layout) on CPUs without XSAVE.

use nix::errno::Errno;

use super::sys::{self, FXSAVE_SIZE, NT_X86_XSTATE};
use crate::FpState;

/// Size of the legacy area plus the XSAVE header.
const XSAVE_HEADER_END: usize = FXSAVE_SIZE + 64;
/// XSTATE_BV bits of the x87 and SSE components.
const XFEATURE_FP_SSE: u64 = 0b11;

/// How a stub thread's FPU state is transferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpKind {
    /// `NT_X86_XSTATE` of this many bytes (the kernel insists on the exact size).
    Xstate(usize),
    /// Only the 512-byte FXSAVE area.
    Fxsave,
}

/// Finds out which transfer works for `pid` and the XSAVE size.
pub fn probe(pid: i32) -> Result<FpKind, Errno> {
    let mut buf = vec![0u8; 1 << 16];
    match sys::get_regset(pid, NT_X86_XSTATE, &mut buf) {
        Ok(n) if n >= XSAVE_HEADER_END => Ok(FpKind::Xstate(n)),
        Ok(_) | Err(Errno::ENODEV | Errno::EINVAL | Errno::EIO) => {
            sys::get_fpregs(pid)?;
            Ok(FpKind::Fxsave)
        }
        Err(e) => Err(e),
    }
}

/// Reads the FPU state of the stopped stub thread `pid`.
pub fn read(pid: i32, kind: FpKind) -> Result<FpState, Errno> {
    let bytes = match kind {
        FpKind::Xstate(size) => {
            let mut buf = vec![0u8; size];
            let n = sys::get_regset(pid, NT_X86_XSTATE, &mut buf)?;
            buf.truncate(n);
            buf
        }
        FpKind::Fxsave => sys::get_fpregs(pid)?,
    };
    Ok(FpState { bytes })
}

/// Writes `bytes` (an XSAVE or FXSAVE image) as the FPU state of the stopped stub thread.
/// The image is padded with zeros (components beyond it are in their initial state) or
/// truncated to the size the kernel expects; a bare FXSAVE image written through XSTATE
/// gets the x87 and SSE bits in its XSTATE_BV so that its contents are used.
pub fn write(pid: i32, kind: FpKind, bytes: &[u8]) -> Result<(), Errno> {
    match kind {
        FpKind::Xstate(size) => {
            let mut buf = bytes.to_vec();
            buf.resize(size, 0);
            if bytes.len() < XSAVE_HEADER_END {
                buf[FXSAVE_SIZE..XSAVE_HEADER_END].fill(0);
                buf[FXSAVE_SIZE..FXSAVE_SIZE + 8].copy_from_slice(&XFEATURE_FP_SSE.to_le_bytes());
            }
            sys::set_regset(pid, NT_X86_XSTATE, &buf)
        }
        FpKind::Fxsave => {
            let mut buf = [0u8; FXSAVE_SIZE];
            let n = bytes.len().min(FXSAVE_SIZE);
            buf[..n].copy_from_slice(&bytes[..n]);
            sys::set_fpregs(pid, &buf)
        }
    }
}

/// The FPU state of a fresh Linux process (after `execve`): x87 control word 0x37f, MXCSR
/// 0x1f80, all registers zero, every extended component in its initial state. It is the
/// legacy area plus the XSAVE header; [`write()`] pads it to the host's XSAVE size.
pub fn default_state() -> FpState {
    let mut b = vec![0u8; XSAVE_HEADER_END];
    b[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
    b[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
    b[FXSAVE_SIZE..FXSAVE_SIZE + 8].copy_from_slice(&XFEATURE_FP_SSE.to_le_bytes());
    FpState { bytes: b }
}
