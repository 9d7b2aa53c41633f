//! x86_64 signal frames: building the `rt_sigframe` a guest handler runs on, and taking it
//! apart again in rt_sigreturn. Pure functions over registers, FP state and guest memory,
//! following Linux's `arch/x86/kernel/signal.c`, `signal_64.c` and `fpu/signal.c`.
//!
//! # Frame layout (stack grows down)
//! ```text
//!   interrupted rsp            (or the top of the alternate signal stack)
//!   128-byte red zone          (skipped; not on the alternate stack)
//!   [padding]
//!   FP area, 64-byte aligned   XSAVE image of `FpLayout::size` bytes + FP_XSTATE_MAGIC2,
//!                              or a 512-byte FXSAVE image on CPUs without XSAVE
//!   [padding]
//!   rt_sigframe                pretcode | ucontext | siginfo      <- rsp at handler entry,
//!                                                                    (rsp + 8) % 16 == 0
//! ```
//! The guest owns this memory and may rewrite all of it before rt_sigreturn: everything read
//! back is validated, and only register values a guest could load itself come out.
//!
//! # What the caller does around these functions
//! - Delivery: after [`setup_rt_frame`] succeeds, block `action.mask` (plus the signal
//!   unless SA_NODEFER), apply SA_RESETHAND, reset the alternate stack if it has
//!   SS_AUTODISARM (Linux's `signal_delivered`), and give the handler the initial FP state
//!   ([`FpLayout::initial_fp_state`], Linux's `fpu__clear_user_states`). On error, force
//!   SIGSEGV.
//! - rt_sigreturn: install the returned mask minus SIGKILL/SIGSTOP, apply the returned
//!   `uc_stack` like sigaltstack(2) ignoring errors, load the FP state, and return to the
//!   guest with `regs` as restored (the syscall's result is the restored rax; do not
//!   overwrite it). On error, force SIGSEGV (Linux has already installed the mask and, for a
//!   bad FP area, reset the FP state; `regs` may already hold the restored registers).

use std::sync::OnceLock;

use rvisor_platform::{FpState, Regs};
use rvisor_syscalls::flags::signal::{SA_ONSTACK, SA_RESTORER, SA_SIGINFO, SS_DISABLE, SS_ONSTACK};
use rvisor_syscalls::flags::signal::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
use rvisor_syscalls::signal::*;
use rvisor_syscalls::types::{SigAction, SigAltStack, SigSet};
use rvisor_syscalls::{Errno, Pod};

use crate::mm::MemoryManager;

/// `__USER_CS`: the 64-bit user code segment.
pub const USER_CS: u64 = 0x33;
/// `__USER_DS`: the user data/stack segment.
pub const USER_DS: u64 = 0x2b;

const EFLAGS_TF: u64 = 1 << 8;
const EFLAGS_DF: u64 = 1 << 10;
const EFLAGS_RF: u64 = 1 << 16;
/// The flags rt_sigreturn takes from the frame (Linux's `FIX_EFLAGS`: AC, RF, OF, DF, TF,
/// SF, ZF, AF, PF, CF); all others keep their current value.
pub const FIX_EFLAGS: u64 = 0x5_0dd5;
/// Cleared on handler entry: DF per the function-call ABI, RF and TF so that the handler
/// does not inherit a pending single step.
const HANDLER_CLEARS_EFLAGS: u64 = EFLAGS_DF | EFLAGS_RF | EFLAGS_TF;

/// The System V red zone below rsp that a signal frame must not overwrite.
const RED_ZONE: u64 = 128;
const FRAME_SIZE: u64 = core::mem::size_of::<RtSigframe>() as u64;
/// The bytes of the frame before `info`: pretcode and the ucontext.
const FRAME_HEAD_SIZE: usize = RT_SIGFRAME_INFO_OFFSET;
/// Linux's `min_xstate_size`: the legacy area plus the XSAVE header.
const MIN_XSTATE_SIZE: usize = FXSAVE_SIZE + XSAVE_HEADER_SIZE;
/// Offset of XSTATE_BV (the XSAVE header starts at 512).
const XSTATE_BV_OFFSET: usize = FXSAVE_SIZE;
/// XSAVE feature bit of the AMX tile data, which user space must request before use
/// (Linux leaves it out of signal frames of tasks that have not).
const XFEATURE_XTILE_DATA: u64 = 1 << 18;
/// The MXCSR bits a guest may set (reserved bits make FXRSTOR/XRSTOR fault).
const MXCSR_MASK: u32 = 0xffff;
/// The page-fault error code bits (`X86_PF_*`).
const PF_PROT: u64 = 1 << 0;
const PF_WRITE: u64 = 1 << 1;
const PF_USER: u64 = 1 << 2;
const PF_INSTR: u64 = 1 << 4;
const PF_PK: u64 = 1 << 5;

/// How the host CPU saves the FP/SIMD state, which fixes the FP area of a signal frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpLayout {
    /// XSAVE is available and enabled; otherwise frames carry a 512-byte FXSAVE image.
    pub xsave: bool,
    /// The state components a frame holds (Linux's `user_xfeatures`).
    pub features: u64,
    /// Size of the standard-format XSAVE image of those components (Linux's `user_size`).
    pub size: usize,
}

impl FpLayout {
    /// FXSAVE only (no XSAVE).
    pub const FXSAVE: FpLayout = FpLayout { xsave: false, features: XFEATURE_MASK_FPSSE, size: FXSAVE_SIZE };

    /// The layout of this machine, asked of the CPU once.
    pub fn host() -> FpLayout {
        static HOST: OnceLock<FpLayout> = OnceLock::new();
        *HOST.get_or_init(detect_host_layout)
    }

    /// Bytes of the FP area in a frame: the XSAVE image and FP_XSTATE_MAGIC2, or the
    /// FXSAVE image (Linux's `xstate_sigframe_size`).
    pub fn area_size(&self) -> usize {
        if self.xsave {
            self.image_size() + FP_XSTATE_MAGIC2_SIZE
        } else {
            FXSAVE_SIZE
        }
    }

    /// Bytes of the saved image (`xstate_size`).
    fn image_size(&self) -> usize {
        if self.xsave {
            self.size.max(MIN_XSTATE_SIZE)
        } else {
            FXSAVE_SIZE
        }
    }

    /// The most stack one 64-bit signal frame takes, alignment padding included (not the
    /// red zone). Linux's `AT_MINSIGSTKSZ` is the same bound computed for its largest frame
    /// type (the i386 one on kernels with IA32 emulation), so it is a few hundred bytes more.
    pub fn sigframe_size(&self) -> u64 {
        let max = FRAME_SIZE as usize + 15 + self.area_size() + 63;
        (max.div_ceil(16) * 16) as u64
    }

    /// The FP state a handler starts with and a fresh process has: x87 control word 0x37f,
    /// MXCSR 0x1f80, everything else in its initial state.
    pub fn initial_fp_state(&self) -> FpState {
        let mut b = vec![0u8; if self.xsave { MIN_XSTATE_SIZE } else { FXSAVE_SIZE }];
        b[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        b[FXSAVE_MXCSR_OFFSET..FXSAVE_MXCSR_OFFSET + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        if self.xsave {
            b[XSTATE_BV_OFFSET..XSTATE_BV_OFFSET + 8].copy_from_slice(&XFEATURE_MASK_FPSSE.to_le_bytes());
        }
        FpState { bytes: b }
    }
}

/// Reads XCR0 and the CPUID XSAVE leaf like Linux's `fpu__init_system_xstate`.
fn detect_host_layout() -> FpLayout {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID is available on every x86_64 CPU and has no side effects. (The intrinsic
    // is safe in newer Rust; `unsafe` keeps older compilers happy.)
    #[allow(unused_unsafe)]
    let leaf1 = unsafe { __cpuid(1) };
    let (xsave, osxsave) = (leaf1.ecx & (1 << 26) != 0, leaf1.ecx & (1 << 27) != 0);
    if !xsave || !osxsave {
        return FpLayout::FXSAVE;
    }
    // SAFETY: CPUID.1:ECX.OSXSAVE is set, so the OS enabled XSAVE and XGETBV(0) does not
    // fault; it only reads XCR0.
    let xcr0 = unsafe { core::arch::x86_64::_xgetbv(0) };
    let features = (xcr0 & !XFEATURE_XTILE_DATA) | XFEATURE_MASK_FPSSE;
    let mut size = MIN_XSTATE_SIZE;
    for i in 2..64u32 {
        if features & (1 << i) != 0 {
            // SAFETY: as above; leaf 0xD exists because XSAVE is supported.
            #[allow(unused_unsafe)]
            let l = unsafe { __cpuid_count(0xd, i) };
            size = size.max(l.ebx as usize + l.eax as usize);
        }
    }
    FpLayout { xsave: true, features, size }
}

/// What a handler's frame describes.
pub struct FrameSetup<'a> {
    pub sig: u32,
    pub info: &'a Siginfo,
    pub action: &'a SigAction,
    /// The mask to restore at sigreturn (the blocked set before delivery).
    pub old_mask: SigSet,
    /// The task's alternate signal stack as stored (Linux's `sas_ss_*`).
    pub altstack: &'a SigAltStack,
}

/// The trap that raised a signal, as `sigcontext` reports it (`trapno`, `err`, `cr2`).
/// Linux keeps the last trap's values; rvisor reports them for the fault that caused the
/// signal and zero otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    pub trapno: u64,
    pub err: u64,
    pub cr2: u64,
}

impl TrapInfo {
    /// A user-mode page fault (#PF, trap 14) at `addr`; `present` when the page was mapped
    /// but the access not permitted.
    pub fn page_fault(addr: u64, write: bool, exec: bool, present: bool) -> TrapInfo {
        let bit = |on: bool, b: u64| if on { b } else { 0 };
        let err = PF_USER | bit(present, PF_PROT) | bit(write, PF_WRITE) | bit(exec, PF_INSTR);
        TrapInfo { trapno: 14, err, cr2: addr }
    }

    /// A best guess from the siginfo of a kernel-generated fault signal (the access type
    /// of a page fault is not in a siginfo: use [`TrapInfo::page_fault`] when known).
    pub fn from_siginfo(sig: u32, info: &Siginfo) -> TrapInfo {
        let code = info.si_code;
        let kernel_code = code > SI_USER && code < SI_KERNEL;
        match sig {
            SIGSEGV if kernel_code => {
                let mut t = TrapInfo::page_fault(info.addr(), false, false, code != SEGV_MAPERR);
                if code == SEGV_PKUERR {
                    t.err |= PF_PK;
                }
                t
            }
            SIGSEGV if code == SI_KERNEL => TrapInfo { trapno: 13, ..TrapInfo::default() },
            SIGBUS if code == BUS_ADRERR => TrapInfo::page_fault(info.addr(), false, false, true),
            SIGBUS if code == BUS_ADRALN => TrapInfo { trapno: 17, ..TrapInfo::default() },
            SIGFPE if code == FPE_INTDIV || code == FPE_INTOVF => TrapInfo::default(),
            SIGFPE if kernel_code => TrapInfo { trapno: 19, ..TrapInfo::default() },
            SIGILL if kernel_code => TrapInfo { trapno: 6, ..TrapInfo::default() },
            SIGTRAP if code == SI_KERNEL => TrapInfo { trapno: 3, ..TrapInfo::default() },
            SIGTRAP if kernel_code => TrapInfo { trapno: 1, ..TrapInfo::default() },
            _ => TrapInfo::default(),
        }
    }
}

/// Whether `sp` is on the alternate stack (Linux's `on_sig_stack`): never with
/// SS_AUTODISARM, which drops the stack while a handler runs on it.
pub fn on_sig_stack(alt: &SigAltStack, sp: u64) -> bool {
    alt.ss_flags & SS_AUTODISARM == 0 && within_altstack(alt, sp)
}

/// Linux's `__on_sig_stack`: `sp` in `(ss_sp, ss_sp + ss_size]`.
fn within_altstack(alt: &SigAltStack, sp: u64) -> bool {
    sp > alt.ss_sp && sp - alt.ss_sp <= alt.ss_size
}

/// Linux's `sas_ss_flags`: SS_DISABLE when there is no alternate stack, SS_ONSTACK when
/// `sp` is on it, otherwise 0. sigaltstack(2) reports this (plus SS_AUTODISARM) as the old
/// `ss_flags`.
pub fn altstack_flags(alt: &SigAltStack, sp: u64) -> i32 {
    if alt.ss_size == 0 || alt.ss_flags & !SS_FLAG_BITS == SS_DISABLE {
        SS_DISABLE
    } else if on_sig_stack(alt, sp) {
        SS_ONSTACK
    } else {
        0
    }
}

/// Builds an `rt_sigframe` like Linux's `x64_setup_rt_frame` and points `regs` at the
/// handler, on the FP layout of this machine. EFAULT without SA_RESTORER (x86_64 needs
/// it), when the frame would overflow the alternate stack, or when writing it faults.
pub fn setup_rt_frame(mm: &MemoryManager, regs: &mut Regs, fp: &FpState, f: &FrameSetup) -> Result<(), Errno> {
    let trap = TrapInfo::from_siginfo(f.sig, f.info);
    setup_rt_frame_with(mm, regs, fp, f, &trap, &FpLayout::host())
}

/// [`setup_rt_frame`] with the trap details and FP layout given.
pub fn setup_rt_frame_with(
    mm: &MemoryManager,
    regs: &mut Regs,
    fp: &FpState,
    f: &FrameSetup,
    trap: &TrapInfo,
    layout: &FpLayout,
) -> Result<(), Errno> {
    let flags = f.action.flags;
    if flags & SA_RESTORER == 0 {
        return Err(Errno::EFAULT);
    }

    // get_sigframe: pick the stack, place the FP area, then the frame.
    let nested_altstack = on_sig_stack(f.altstack, regs.rsp);
    let mut entering_altstack = false;
    let mut sp = regs.rsp.wrapping_sub(RED_ZONE);
    if flags & SA_ONSTACK != 0 && altstack_flags(f.altstack, sp) == 0 {
        sp = f.altstack.ss_sp.wrapping_add(f.altstack.ss_size);
        entering_altstack = true;
    }
    let area = fp_area(fp, layout);
    let fp_addr = sp.wrapping_sub(area.len() as u64) & !63;
    let frame = (fp_addr.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);
    if (nested_altstack || entering_altstack) && !within_altstack(f.altstack, frame) {
        // Linux logs "overflowed sigaltstack" and lets the write to -1 fail.
        return Err(Errno::EFAULT);
    }
    mm.copy_out(fp_addr, &area).map_err(|_| Errno::EFAULT)?;

    let uc_flags = if layout.xsave { UC_FP_XSTATE } else { 0 } | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
    let sc = Sigcontext {
        r8: regs.r8,
        r9: regs.r9,
        r10: regs.r10,
        r11: regs.r11,
        r12: regs.r12,
        r13: regs.r13,
        r14: regs.r14,
        r15: regs.r15,
        rdi: regs.rdi,
        rsi: regs.rsi,
        rbp: regs.rbp,
        rbx: regs.rbx,
        rdx: regs.rdx,
        rax: regs.rax,
        rcx: regs.rcx,
        rsp: regs.rsp,
        rip: regs.rip,
        eflags: regs.eflags,
        cs: regs.cs as u16,
        gs: 0,
        fs: 0,
        ss: regs.ss as u16,
        err: trap.err,
        trapno: trap.trapno,
        oldmask: f.old_mask.0,
        cr2: trap.cr2,
        fpstate: fp_addr,
        reserved1: [0; 8],
    };
    let head = RtSigframe {
        pretcode: f.action.restorer,
        uc: Ucontext {
            uc_flags,
            uc_link: 0,
            // Linux saves the stored sas_ss_* values as they are (no SS_ONSTACK added).
            uc_stack: *f.altstack,
            uc_mcontext: sc,
            uc_sigmask: f.old_mask,
        },
        info: Siginfo::zeroed(),
    };
    mm.copy_out(frame, &head.as_bytes()[..FRAME_HEAD_SIZE]).map_err(|_| Errno::EFAULT)?;
    // The siginfo is written only for SA_SIGINFO handlers, as in Linux.
    if flags & SA_SIGINFO != 0 {
        mm.copy_out(frame + RT_SIGFRAME_INFO_OFFSET as u64, f.info.as_bytes()).map_err(|_| Errno::EFAULT)?;
    }

    regs.rdi = u64::from(f.sig);
    regs.rax = 0;
    regs.rsi = frame + RT_SIGFRAME_INFO_OFFSET as u64;
    regs.rdx = frame + RT_SIGFRAME_UC_OFFSET as u64;
    regs.rip = f.action.handler;
    regs.rsp = frame;
    regs.cs = USER_CS;
    regs.ss = USER_DS;
    regs.eflags &= !HANDLER_CLEARS_EFLAGS;
    Ok(())
}

/// The FP area of a frame: the XSAVE image of `layout.size` bytes with the software bytes
/// and FP_XSTATE_MAGIC2 (Linux's `copy_fpstate_to_sigframe` and `save_xstate_epilog`), or
/// the FXSAVE image.
fn fp_area(fp: &FpState, layout: &FpLayout) -> Vec<u8> {
    let image = layout.image_size();
    let mut area = vec![0u8; layout.area_size()];
    let n = fp.bytes.len().min(image);
    area[..n].copy_from_slice(&fp.bytes[..n]);
    // The software-reserved bytes are not part of the saved state.
    area[FPX_SW_BYTES_OFFSET..FXSAVE_SIZE].fill(0);
    if !layout.xsave {
        return area;
    }
    let bv = if fp.bytes.len() < MIN_XSTATE_SIZE { 0 } else { le_u64(&area, XSTATE_BV_OFFSET) };
    // Only components the frame describes; x87 and SSE always (their legacy-area contents
    // are valid), so that a legacy handler's edits to them are restored.
    put_u64(&mut area, XSTATE_BV_OFFSET, (bv & layout.features) | XFEATURE_MASK_FPSSE);
    // A standard-format image: no compaction, reserved header bytes zero.
    area[XSTATE_BV_OFFSET + 8..MIN_XSTATE_SIZE].fill(0);
    let sw = FpxSwBytes {
        magic1: FP_XSTATE_MAGIC1,
        extended_size: (image + FP_XSTATE_MAGIC2_SIZE) as u32,
        xfeatures: layout.features,
        xstate_size: image as u32,
        padding: [0; 7],
    };
    area[FPX_SW_BYTES_OFFSET..FXSAVE_SIZE].copy_from_slice(sw.as_bytes());
    area[image..image + FP_XSTATE_MAGIC2_SIZE].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    area
}

/// rt_sigreturn on the FP layout of this machine: reads the frame at `regs.rsp - 8` (the
/// handler's `ret` popped pretcode), restores the registers and returns the mask to
/// install, the FP state to load and the `uc_stack` to apply. EFAULT when the frame or
/// its FP area cannot be read or is not acceptable (the caller then forces SIGSEGV).
pub fn restore_rt_frame(mm: &MemoryManager, regs: &mut Regs) -> Result<(SigSet, FpState, SigAltStack), Errno> {
    restore_rt_frame_with(mm, regs, &FpLayout::host())
}

/// [`restore_rt_frame`] with the FP layout given.
pub fn restore_rt_frame_with(
    mm: &MemoryManager,
    regs: &mut Regs,
    layout: &FpLayout,
) -> Result<(SigSet, FpState, SigAltStack), Errno> {
    let frame = regs.rsp.checked_sub(8).ok_or(Errno::EFAULT)?;
    // access_ok(frame, sizeof(*frame)): the whole frame below the user limit.
    match frame.checked_add(FRAME_SIZE) {
        Some(end) if end <= mm.max_addr() => {}
        _ => return Err(Errno::EFAULT),
    }
    let uc: Ucontext = mm.read_obj(frame + RT_SIGFRAME_UC_OFFSET as u64).map_err(|_| Errno::EFAULT)?;
    let sc = &uc.uc_mcontext;

    // restore_sigcontext
    regs.rbx = sc.rbx;
    regs.rcx = sc.rcx;
    regs.rdx = sc.rdx;
    regs.rsi = sc.rsi;
    regs.rdi = sc.rdi;
    regs.rbp = sc.rbp;
    regs.rax = sc.rax;
    regs.rsp = sc.rsp;
    regs.rip = sc.rip;
    regs.r8 = sc.r8;
    regs.r9 = sc.r9;
    regs.r10 = sc.r10;
    regs.r11 = sc.r11;
    regs.r12 = sc.r12;
    regs.r13 = sc.r13;
    regs.r14 = sc.r14;
    regs.r15 = sc.r15;
    // Linux takes cs|3 and ss|3; the sentry runs guests in 64-bit mode only.
    regs.cs = USER_CS;
    regs.ss = USER_DS;
    regs.eflags = (regs.eflags & !FIX_EFLAGS) | (sc.eflags & FIX_EFLAGS);
    // No syscall restart applies to the interrupted context.
    regs.orig_rax = u64::MAX;

    let fp = restore_fp(mm, sc.fpstate, layout)?;
    Ok((uc.uc_sigmask, fp, uc.uc_stack))
}

/// Reads and validates the FP area at `buf` (Linux's `fpu__restore_sig`): the XSAVE image
/// when its software bytes and magic2 check out, else the legacy FXSAVE image; the initial
/// state for a null pointer. EFAULT where Linux's XRSTOR/FXRSTOR would fault (unreadable
/// or misaligned area, reserved MXCSR or header bits, components the CPU lacks).
fn restore_fp(mm: &MemoryManager, buf: u64, layout: &FpLayout) -> Result<FpState, Errno> {
    if buf == 0 {
        return Ok(layout.initial_fp_state());
    }
    match buf.checked_add(layout.area_size() as u64) {
        Some(end) if end <= mm.max_addr() => {}
        _ => return Err(Errno::EFAULT),
    }
    let sw = if layout.xsave { xstate_in_sigframe(mm, buf, layout)? } else { None };

    let Some(sw) = sw else {
        // fx_only: FXRSTOR of the legacy area; other components start from their init state.
        if buf & 15 != 0 {
            return Err(Errno::EFAULT);
        }
        let mut bytes = vec![0u8; FXSAVE_SIZE];
        mm.copy_in(buf, &mut bytes).map_err(|_| Errno::EFAULT)?;
        check_mxcsr(&bytes)?;
        bytes[FPX_SW_BYTES_OFFSET..].fill(0);
        return Ok(FpState { bytes });
    };

    if buf & 63 != 0 {
        return Err(Errno::EFAULT);
    }
    let mut bytes = vec![0u8; sw.xstate_size as usize];
    mm.copy_in(buf, &mut bytes).map_err(|_| Errno::EFAULT)?;
    check_mxcsr(&bytes)?;
    let bv = le_u64(&bytes, XSTATE_BV_OFFSET);
    // XRSTOR faults on components the CPU does not enable and on a non-zero XCOMP_BV or
    // first reserved header word; the rest of the header is ignored.
    if bv & !layout.features != 0 || bytes[XSTATE_BV_OFFSET + 8..XSTATE_BV_OFFSET + 24].iter().any(|&b| b != 0) {
        return Err(Errno::EFAULT);
    }
    bytes[XSTATE_BV_OFFSET + 24..MIN_XSTATE_SIZE].fill(0);
    // Components the frame does not claim are loaded in their initial state.
    put_u64(&mut bytes, XSTATE_BV_OFFSET, bv & sw.xfeatures);
    bytes[FPX_SW_BYTES_OFFSET..FXSAVE_SIZE].fill(0);
    Ok(FpState { bytes })
}

/// Linux's `check_xstate_in_sigframe`: the software bytes when magic1, the sizes and magic2
/// are consistent, None for a legacy (FXSAVE-only) area, EFAULT if they cannot be read.
fn xstate_in_sigframe(mm: &MemoryManager, buf: u64, layout: &FpLayout) -> Result<Option<FpxSwBytes>, Errno> {
    let sw: FpxSwBytes = mm.read_obj(buf + FPX_SW_BYTES_OFFSET as u64).map_err(|_| Errno::EFAULT)?;
    let size = sw.xstate_size as usize;
    let sizes_ok = (MIN_XSTATE_SIZE..=layout.image_size()).contains(&size) && sw.xstate_size <= sw.extended_size;
    if sw.magic1 != FP_XSTATE_MAGIC1 || !sizes_ok {
        return Ok(None);
    }
    let magic2: u32 = mm.read_obj(buf + size as u64).map_err(|_| Errno::EFAULT)?;
    Ok((magic2 == FP_XSTATE_MAGIC2).then_some(sw))
}

fn check_mxcsr(image: &[u8]) -> Result<(), Errno> {
    let mut b = [0u8; 4];
    b.copy_from_slice(&image[FXSAVE_MXCSR_OFFSET..FXSAVE_MXCSR_OFFSET + 4]);
    if u32::from_le_bytes(b) & !MXCSR_MASK != 0 {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = b.get(off..off + 8) {
        w.copy_from_slice(src);
    }
    u64::from_le_bytes(w)
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(dst) = b.get_mut(off..off + 8) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use rvisor_syscalls::flags::mman::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    use rvisor_syscalls::flags::signal::{SA_NODEFER, SIGUSR1};

    use super::*;
    use crate::mm::testutil::new_mm;

    /// An XSAVE machine with x87, SSE and AVX (the AVX component ends at 576 + 256).
    const LAYOUT: FpLayout = FpLayout { xsave: true, features: 0b111, size: 832 };
    const STACK_LEN: u64 = 64 * 4096;
    const HANDLER: u64 = 0x40_1234;
    const RESTORER: u64 = 0x40_5678;

    fn stack(mm: &MemoryManager) -> (u64, u64) {
        let base = mm.mmap(0, STACK_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, None).unwrap();
        (base, base + STACK_LEN)
    }

    /// Registers with a distinct value in every general register.
    fn sample_regs(rsp: u64) -> Regs {
        let mut r = rvisor_platform::ptrace::initial_regs(0x40_0abc, rsp);
        let vals = [
            &mut r.r15, &mut r.r14, &mut r.r13, &mut r.r12, &mut r.rbp, &mut r.rbx, &mut r.r11, &mut r.r10, &mut r.r9,
            &mut r.r8, &mut r.rax, &mut r.rcx, &mut r.rdx, &mut r.rsi, &mut r.rdi,
        ];
        for (i, v) in vals.into_iter().enumerate() {
            *v = 0x1111_0000_0000_0000 * (i as u64 + 1) + i as u64;
        }
        r.orig_rax = 39;
        r.eflags = 0x202 | EFLAGS_TF | EFLAGS_DF | EFLAGS_RF | 0x41; // + CF, ZF
        r.fs_base = 0x7f00_0000_1000;
        r
    }

    fn regs_array(r: &Regs) -> [u64; 27] {
        [
            r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi,
            r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds, r.es, r.fs, r.gs,
        ]
    }

    /// An XSAVE image of `LAYOUT.size` bytes with every byte patterned, a valid MXCSR and
    /// the AVX component in use.
    fn sample_fp() -> FpState {
        let mut b: Vec<u8> = (0..LAYOUT.size).map(|i| (i * 7 + 3) as u8).collect();
        b[FXSAVE_MXCSR_OFFSET..FXSAVE_MXCSR_OFFSET + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        b[FPX_SW_BYTES_OFFSET..FXSAVE_SIZE].fill(0);
        b[XSTATE_BV_OFFSET..MIN_XSTATE_SIZE].fill(0);
        put_u64(&mut b, XSTATE_BV_OFFSET, 0b111);
        FpState { bytes: b }
    }

    fn action(flags: u64) -> SigAction {
        SigAction { handler: HANDLER, flags: flags | SA_RESTORER, restorer: RESTORER, mask: SigSet(0) }
    }

    fn disabled() -> SigAltStack {
        SigAltStack { ss_sp: 0, ss_flags: SS_DISABLE, __pad: 0, ss_size: 0 }
    }

    /// The mask saved by the test deliveries.
    const OLD_MASK: SigSet = SigSet(0x5_0000_0001);

    fn setup<'a>(info: &'a Siginfo, action: &'a SigAction, altstack: &'a SigAltStack) -> FrameSetup<'a> {
        FrameSetup { sig: info.si_signo as u32, info, action, old_mask: OLD_MASK, altstack }
    }

    type Mm = MemoryManager;

    fn deliver(mm: &Mm, regs: &mut Regs, fp: &FpState, act: &SigAction, alt: &SigAltStack) -> Result<(), Errno> {
        let info = Siginfo::kill(SIGUSR1, SI_TKILL, 7, 1000);
        setup_rt_frame_with(mm, regs, fp, &setup(&info, act, alt), &TrapInfo::default(), &LAYOUT)
    }

    fn u64_at(mm: &MemoryManager, addr: u64) -> u64 {
        mm.read_obj(addr).unwrap()
    }

    /// The handler returns: `ret` pops pretcode.
    fn handler_returns(regs: &mut Regs) {
        assert_eq!(regs.rip, HANDLER);
        regs.rsp += 8;
    }

    #[test]
    fn frame_is_below_the_red_zone_and_aligned_for_handler_entry() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        for misalign in 0..16 {
            let rsp = top - 0x1000 - misalign;
            let mut regs = sample_regs(rsp);
            deliver(&mm, &mut regs, &sample_fp(), &action(SA_SIGINFO), &disabled()).unwrap();
            assert_eq!((regs.rsp + 8) % 16, 0, "rsp {:#x}", regs.rsp);
            let fp_addr = u64_at(&mm, regs.rsp + 8 + 40 + 184);
            assert_eq!(fp_addr % 64, 0);
            assert!(regs.rsp + FRAME_SIZE <= fp_addr);
            assert!(fp_addr + LAYOUT.area_size() as u64 <= rsp - RED_ZONE);
            // No more padding than alignment needs.
            assert!(rsp - RED_ZONE - fp_addr < LAYOUT.area_size() as u64 + 64);
            assert!(fp_addr - (regs.rsp + FRAME_SIZE) < 32);
        }
        // The red zone itself is left untouched.
        let rsp = top - 0x2000;
        mm.copy_out(rsp - RED_ZONE, &[0xa5; RED_ZONE as usize]).unwrap();
        let mut regs = sample_regs(rsp);
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_SIGINFO), &disabled()).unwrap();
        let mut red = [0u8; RED_ZONE as usize];
        mm.copy_in(rsp - RED_ZONE, &mut red).unwrap();
        assert!(red.iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn handler_starts_with_linux_entry_registers() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let before = sample_regs(top - 0x1000);
        let mut regs = before;
        regs.cs = 0;
        regs.ss = 0;
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_SIGINFO), &disabled()).unwrap();
        assert_eq!(regs.rdi, u64::from(SIGUSR1));
        assert_eq!(regs.rsi, regs.rsp + 312);
        assert_eq!(regs.rdx, regs.rsp + 8);
        assert_eq!(regs.rax, 0);
        assert_eq!(regs.rip, HANDLER);
        assert_eq!((regs.cs, regs.ss), (USER_CS, USER_DS));
        assert_eq!(regs.eflags, 0x202 | 0x41, "TF, DF and RF cleared, the rest kept");
        // Registers the ABI does not mention are left for the handler to ignore.
        assert_eq!((regs.rbx, regs.r15, regs.fs_base, regs.orig_rax), (before.rbx, before.r15, before.fs_base, 39));
        assert_eq!(u64_at(&mm, regs.rsp), RESTORER, "the handler returns into sa_restorer");
    }

    #[test]
    fn saved_context_sits_at_linux_offsets() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let before = sample_regs(top - 0x1000);
        let mut regs = before;
        let alt = SigAltStack { ss_sp: 0x1000_0000, ss_flags: SS_AUTODISARM, __pad: 0, ss_size: 0x4000 };
        let info = Siginfo::fault(SIGSEGV, SEGV_ACCERR, 0xdead_b000);
        let act = action(SA_SIGINFO);
        let f = FrameSetup { old_mask: SigSet(0x8000_0000_0000_0201), ..setup(&info, &act, &alt) };
        let trap = TrapInfo::from_siginfo(SIGSEGV, &info);
        setup_rt_frame_with(&mm, &mut regs, &sample_fp(), &f, &trap, &LAYOUT).unwrap();

        let mut raw = [0u8; 440];
        mm.copy_in(regs.rsp, &mut raw).unwrap();
        let q = |off: usize| u64::from_le_bytes(raw[off..off + 8].try_into().unwrap());
        let w = |off: usize| u16::from_le_bytes(raw[off..off + 2].try_into().unwrap());
        assert_eq!(q(0), RESTORER);
        assert_eq!(q(8), UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
        assert_eq!(q(16), 0, "uc_link");
        assert_eq!((q(24), q(32) as i32, q(40)), (0x1000_0000, SS_AUTODISARM, 0x4000), "uc_stack as stored");
        let sc = 8 + 40;
        // gregs: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags.
        assert_eq!((q(sc), q(sc + 56), q(sc + 64), q(sc + 88)), (before.r8, before.r15, before.rdi, before.rbx));
        assert_eq!((q(sc + 104), q(sc + 112), q(sc + 120)), (before.rax, before.rcx, before.rsp));
        assert_eq!((q(sc + 128), q(sc + 136)), (before.rip, before.eflags));
        assert_eq!((w(sc + 144), w(sc + 146), w(sc + 148), w(sc + 150)), (0x33, 0, 0, 0x2b), "cs gs fs ss");
        assert_eq!(q(sc + 152), PF_USER | PF_PROT, "err");
        assert_eq!(q(sc + 160), 14, "trapno");
        assert_eq!(q(sc + 168), 0x8000_0000_0000_0201, "oldmask");
        assert_eq!(q(sc + 176), 0xdead_b000, "cr2");
        assert_eq!(q(sc + 184) % 64, 0, "fpstate");
        assert!(raw[sc + 192..sc + 256].iter().all(|&b| b == 0), "reserved1");
        assert_eq!(q(8 + 296), 0x8000_0000_0000_0201, "uc_sigmask");
        assert_eq!(&raw[312..440], info.as_bytes());
        // The same through the ABI types.
        let frame: RtSigframe = mm.read_obj(regs.rsp).unwrap();
        assert_eq!(frame.uc.uc_mcontext.rip, before.rip);
        assert_eq!(frame.info.addr(), 0xdead_b000);
    }

    #[test]
    fn fp_area_carries_xsave_image_sw_bytes_and_magic2() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let mut regs = sample_regs(top - 0x1000);
        let fp = sample_fp();
        deliver(&mm, &mut regs, &fp, &action(SA_SIGINFO), &disabled()).unwrap();
        let fp_addr = u64_at(&mm, regs.rsp + 8 + 40 + 184);
        let mut area = vec![0u8; LAYOUT.area_size()];
        mm.copy_in(fp_addr, &mut area).unwrap();
        assert_eq!(&area[..FPX_SW_BYTES_OFFSET], &fp.bytes[..FPX_SW_BYTES_OFFSET]);
        assert_eq!(&area[MIN_XSTATE_SIZE..LAYOUT.size], &fp.bytes[MIN_XSTATE_SIZE..]);
        assert_eq!(le_u64(&area, XSTATE_BV_OFFSET), 0b111);
        let sw = FpxSwBytes::from_bytes(&area[FPX_SW_BYTES_OFFSET..]).unwrap();
        assert_eq!((sw.magic1, sw.extended_size, sw.xfeatures, sw.xstate_size), (FP_XSTATE_MAGIC1, 836, 0b111, 832));
        assert_eq!(sw.padding, [0; 7]);
        assert_eq!(u32::from_le_bytes(area[832..836].try_into().unwrap()), FP_XSTATE_MAGIC2);
    }

    #[test]
    fn short_fp_state_is_padded_to_the_layout_size() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let mut regs = sample_regs(top - 0x1000);
        // A bare FXSAVE image (e.g. from a platform without XSTATE transfer).
        let fp = FpState { bytes: sample_fp().bytes[..FXSAVE_SIZE].to_vec() };
        deliver(&mm, &mut regs, &fp, &action(0), &disabled()).unwrap();
        let fp_addr = u64_at(&mm, regs.rsp + 8 + 40 + 184);
        let mut area = vec![0u8; LAYOUT.area_size()];
        mm.copy_in(fp_addr, &mut area).unwrap();
        assert_eq!(&area[..FPX_SW_BYTES_OFFSET], &fp.bytes[..FPX_SW_BYTES_OFFSET]);
        assert_eq!(le_u64(&area, XSTATE_BV_OFFSET), XFEATURE_MASK_FPSSE);
        assert!(area[MIN_XSTATE_SIZE..LAYOUT.size].iter().all(|&b| b == 0));
        assert_eq!(u32::from_le_bytes(area[832..836].try_into().unwrap()), FP_XSTATE_MAGIC2);
    }

    #[test]
    fn fxsave_only_machine_gets_a_512_byte_area_without_magic() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let rsp = top - 0x1000;
        let before = sample_regs(rsp);
        let mut regs = before;
        let fp = FpState { bytes: sample_fp().bytes[..FXSAVE_SIZE].to_vec() };
        let (info, act, alt) = (Siginfo::kill(SIGUSR1, SI_USER, 1, 0), action(SA_SIGINFO), disabled());
        setup_rt_frame_with(&mm, &mut regs, &fp, &setup(&info, &act, &alt), &TrapInfo::default(), &FpLayout::FXSAVE)
            .unwrap();
        assert_eq!(u64_at(&mm, regs.rsp + 8), UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
        let fp_addr = u64_at(&mm, regs.rsp + 8 + 40 + 184);
        assert_eq!(fp_addr, (rsp - RED_ZONE - 512) & !63);
        let mut area = [0u8; FXSAVE_SIZE];
        mm.copy_in(fp_addr, &mut area).unwrap();
        assert_eq!(&area[..FPX_SW_BYTES_OFFSET], &fp.bytes[..FPX_SW_BYTES_OFFSET]);
        assert!(area[FPX_SW_BYTES_OFFSET..].iter().all(|&b| b == 0), "no magic1");

        handler_returns(&mut regs);
        let (mask, got, _) = restore_rt_frame_with(&mm, &mut regs, &FpLayout::FXSAVE).unwrap();
        assert_eq!(mask, OLD_MASK);
        assert_eq!(got.bytes, area.to_vec());
        assert_eq!(regs.rip, before.rip);
    }

    #[test]
    fn siginfo_is_written_only_for_sa_siginfo() {
        let (mm, _, _) = new_mm();
        let (base, top) = stack(&mm);
        mm.copy_out(base, &vec![0xcc; STACK_LEN as usize]).unwrap();
        let mut regs = sample_regs(top - 0x1000);
        deliver(&mm, &mut regs, &sample_fp(), &action(0), &disabled()).unwrap();
        let mut info = [0u8; 128];
        mm.copy_in(regs.rsi, &mut info).unwrap();
        assert!(info.iter().all(|&b| b == 0xcc));
        assert_eq!(regs.rsi, regs.rsp + 312, "rsi still points at the (unwritten) info");
    }

    #[test]
    fn sa_onstack_runs_the_handler_on_the_alternate_stack() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let (alt_base, alt_top) = stack(&mm);
        let alt = SigAltStack { ss_sp: alt_base, ss_flags: 0, __pad: 0, ss_size: STACK_LEN };
        let mut regs = sample_regs(top - 0x1000);
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_ONSTACK | SA_SIGINFO), &alt).unwrap();
        assert!(regs.rsp > alt_base && regs.rsp < alt_top);
        let fp_addr = u64_at(&mm, regs.rsp + 8 + 40 + 184);
        assert_eq!(fp_addr, (alt_top - LAYOUT.area_size() as u64) & !63, "no red zone on a fresh stack");
        let saved: SigAltStack = mm.read_obj(regs.rsp + 8 + 16).unwrap();
        assert_eq!(saved, alt);
        assert_eq!(altstack_flags(&alt, regs.rsp), SS_ONSTACK);

        // Without SA_ONSTACK, or with the stack disabled, the current stack is used.
        for (flags, a) in [(0, alt), (SA_ONSTACK, disabled())] {
            let mut regs = sample_regs(top - 0x1000);
            deliver(&mm, &mut regs, &sample_fp(), &action(flags), &a).unwrap();
            assert!(regs.rsp < top - 0x1000 && regs.rsp > top - 0x3000);
        }
    }

    #[test]
    fn nested_signal_on_the_alternate_stack_stays_below_the_current_frame() {
        let (mm, _, _) = new_mm();
        let (alt_base, alt_top) = stack(&mm);
        let alt = SigAltStack { ss_sp: alt_base, ss_flags: 0, __pad: 0, ss_size: STACK_LEN };
        let rsp = alt_top - 0x3000;
        let mut regs = sample_regs(rsp);
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_ONSTACK | SA_SIGINFO | SA_NODEFER), &alt).unwrap();
        assert!(regs.rsp < rsp - RED_ZONE - LAYOUT.area_size() as u64, "not restarted at the top");
        assert!(regs.rsp > alt_base);
        // With SS_AUTODISARM Linux does not treat rsp as on the stack and starts over at its top.
        let alt = SigAltStack { ss_flags: SS_AUTODISARM, ..alt };
        let mut regs = sample_regs(rsp);
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_ONSTACK), &alt).unwrap();
        let fp_addr = u64_at(&mm, regs.rsp + 8 + 40 + 184);
        assert_eq!(fp_addr, (alt_top - LAYOUT.area_size() as u64) & !63);
    }

    #[test]
    fn overflowing_the_alternate_stack_is_efault() {
        let (mm, _, _) = new_mm();
        let (alt_base, _) = stack(&mm);
        // Too small for a frame.
        let alt = SigAltStack { ss_sp: alt_base, ss_flags: 0, __pad: 0, ss_size: 1024 };
        let mut regs = sample_regs(alt_base - 0x10_0000);
        let before = regs_array(&regs);
        assert_eq!(deliver(&mm, &mut regs, &sample_fp(), &action(SA_ONSTACK), &alt), Err(Errno::EFAULT));
        assert_eq!(regs_array(&regs), before, "registers unchanged on failure");
        // Already on a big stack, but too close to its bottom.
        let alt = SigAltStack { ss_sp: alt_base, ss_flags: 0, __pad: 0, ss_size: STACK_LEN };
        let mut regs = sample_regs(alt_base + 0x400);
        assert_eq!(deliver(&mm, &mut regs, &sample_fp(), &action(0), &alt), Err(Errno::EFAULT));
    }

    #[test]
    fn frame_on_an_unmapped_or_read_only_stack_is_efault() {
        let (mm, _, _) = new_mm();
        let (base, top) = stack(&mm);
        for rsp in [0x1000_0000, 0, 8, u64::MAX, top + 0x10_0000] {
            let mut regs = sample_regs(rsp);
            assert_eq!(deliver(&mm, &mut regs, &sample_fp(), &action(0), &disabled()), Err(Errno::EFAULT), "{rsp:#x}");
        }
        mm.mprotect(base, STACK_LEN, PROT_READ).unwrap();
        let mut regs = sample_regs(top - 0x1000);
        assert_eq!(deliver(&mm, &mut regs, &sample_fp(), &action(0), &disabled()), Err(Errno::EFAULT));
        // The altstack pointer comes from the guest too.
        let alt = SigAltStack { ss_sp: u64::MAX - 100, ss_flags: 0, __pad: 0, ss_size: 1 << 20 };
        assert_eq!(deliver(&mm, &mut regs, &sample_fp(), &action(SA_ONSTACK), &alt), Err(Errno::EFAULT));
    }

    #[test]
    fn missing_sa_restorer_is_an_error() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let mut regs = sample_regs(top - 0x1000);
        let act = SigAction { handler: HANDLER, flags: SA_SIGINFO, restorer: RESTORER, mask: SigSet(0) };
        assert_eq!(deliver(&mm, &mut regs, &sample_fp(), &act, &disabled()), Err(Errno::EFAULT));
        assert_eq!(regs.rip, 0x40_0abc);
    }

    #[test]
    fn sigreturn_restores_registers_fp_state_and_mask() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let before = sample_regs(top - 0x1000 - 8);
        let mut regs = before;
        let fp = sample_fp();
        deliver(&mm, &mut regs, &fp, &action(SA_SIGINFO), &disabled()).unwrap();
        handler_returns(&mut regs);
        // The handler clobbers registers freely.
        regs.rbx = 1;
        regs.r12 = 2;
        regs.rax = 15; // rt_sigreturn's number
        let (mask, got, alt) = restore_rt_frame_with(&mm, &mut regs, &LAYOUT).unwrap();
        assert_eq!(mask, OLD_MASK);
        assert_eq!(alt, disabled());
        let mut want = before;
        want.orig_rax = u64::MAX;
        assert_eq!(regs_array(&regs), regs_array(&want));
        assert_eq!(got.bytes.len(), LAYOUT.size);
        assert_eq!(&got.bytes[..FPX_SW_BYTES_OFFSET], &fp.bytes[..FPX_SW_BYTES_OFFSET]);
        assert_eq!(&got.bytes[FXSAVE_SIZE..], &fp.bytes[FXSAVE_SIZE..]);
    }

    #[test]
    fn sigreturn_applies_the_handlers_edits() {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let mut regs = sample_regs(top - 0x1000);
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_SIGINFO), &disabled()).unwrap();
        let uc = regs.rdx;
        let mut ucv: Ucontext = mm.read_obj(uc).unwrap();
        ucv.uc_mcontext.rax = 0x1234;
        ucv.uc_mcontext.rip = 0x40_9999;
        ucv.uc_mcontext.rsp = 0x7000_0000;
        ucv.uc_sigmask = SigSet(0xff);
        ucv.uc_stack = SigAltStack { ss_sp: 0x5000_0000, ss_flags: 0, __pad: 0, ss_size: 0x8000 };
        mm.write_obj(uc, &ucv).unwrap();
        // Edit an XMM register in the saved image (xmm0 at 160).
        let fp_addr = ucv.uc_mcontext.fpstate;
        mm.copy_out(fp_addr + 160, &[0xee; 16]).unwrap();
        handler_returns(&mut regs);
        let (mask, fp, alt) = restore_rt_frame_with(&mm, &mut regs, &LAYOUT).unwrap();
        assert_eq!((regs.rax, regs.rip, regs.rsp), (0x1234, 0x40_9999, 0x7000_0000));
        assert_eq!(mask, SigSet(0xff));
        assert_eq!(alt.ss_sp, 0x5000_0000);
        assert_eq!(&fp.bytes[160..176], &[0xee; 16]);
    }

    /// Delivers, lets `edit` change the frame in guest memory, and runs sigreturn.
    type Restored = Result<(SigSet, FpState, SigAltStack), Errno>;
    /// Edits guest memory given the frame's FP area address.
    type FpEdit = Box<dyn Fn(&Mm, u64)>;
    /// Edits guest memory given the ucontext and FP area addresses.
    type FrameEdit = Box<dyn Fn(&Mm, u64, u64)>;

    fn with_edited_frame(edit: impl FnOnce(&Mm, u64, u64)) -> (Regs, Restored) {
        let (mm, _, _) = new_mm();
        let (_, top) = stack(&mm);
        let mut regs = sample_regs(top - 0x1000);
        deliver(&mm, &mut regs, &sample_fp(), &action(SA_SIGINFO), &disabled()).unwrap();
        let uc = regs.rdx;
        let fp_addr = u64_at(&mm, uc + 40 + 184);
        edit(&mm, uc, fp_addr);
        handler_returns(&mut regs);
        regs.eflags = 0x246;
        let r = restore_rt_frame_with(&mm, &mut regs, &LAYOUT);
        (regs, r)
    }

    #[test]
    fn sigreturn_takes_only_user_changeable_eflags_and_user_selectors() {
        let (regs, r) = with_edited_frame(|mm, uc, _| {
            mm.write_obj(uc + 40 + 136, &u64::MAX).unwrap(); // eflags: every bit
            mm.write_obj(uc + 40 + 144, &0x0010_0000_0000_0008u64).unwrap(); // cs 0x8, ss 0x10
        });
        r.unwrap();
        assert_eq!(regs.eflags, (0x246 & !FIX_EFLAGS) | FIX_EFLAGS);
        assert_eq!(regs.eflags & (3 << 12), 0, "IOPL not taken from the frame");
        assert_eq!(regs.eflags & (1 << 9), 1 << 9, "IF kept");
        assert_eq!((regs.cs, regs.ss, regs.orig_rax), (USER_CS, USER_DS, u64::MAX));

        let (regs, r) = with_edited_frame(|mm, uc, _| mm.write_obj(uc + 40 + 136, &0u64).unwrap());
        r.unwrap();
        assert_eq!(regs.eflags, 0x246 & !FIX_EFLAGS);
    }

    #[test]
    fn bad_xstate_magic_falls_back_to_the_fxsave_image() {
        let sw = (FPX_SW_BYTES_OFFSET) as u64;
        let edits: [(&str, FpEdit); 5] = [
            ("magic1", Box::new(move |mm, fp| mm.write_obj(fp + sw, &0u32).unwrap())),
            ("magic2", Box::new(|mm, fp| mm.write_obj(fp + 832, &0u32).unwrap())),
            ("xstate_size too big", Box::new(move |mm, fp| mm.write_obj(fp + sw + 16, &836u32).unwrap())),
            ("xstate_size too small", Box::new(move |mm, fp| mm.write_obj(fp + sw + 16, &512u32).unwrap())),
            ("extended_size", Box::new(move |mm, fp| mm.write_obj(fp + sw + 4, &100u32).unwrap())),
        ];
        for (what, edit) in edits {
            let (_, r) = with_edited_frame(|mm, _, fp| edit(mm, fp));
            let (_, fp, _) = r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_eq!(fp.bytes.len(), FXSAVE_SIZE, "{what}");
            assert_eq!(&fp.bytes[..FPX_SW_BYTES_OFFSET], &sample_fp().bytes[..FPX_SW_BYTES_OFFSET], "{what}");
        }
    }

    #[test]
    fn sigreturn_normalises_the_xsave_image() {
        // A smaller, consistent xstate_size is accepted.
        let (_, r) = with_edited_frame(|mm, _, fp| {
            mm.write_obj(fp + FPX_SW_BYTES_OFFSET as u64 + 16, &576u32).unwrap();
            mm.write_obj(fp + 576, &FP_XSTATE_MAGIC2).unwrap();
        });
        assert_eq!(r.unwrap().1.bytes.len(), 576);
        // Components missing from the sw xfeatures are reset; ignored header bytes cleared.
        let (_, r) = with_edited_frame(|mm, _, fp| {
            mm.write_obj(fp + FPX_SW_BYTES_OFFSET as u64 + 8, &0b011u64).unwrap();
            mm.write_obj(fp + 512 + 40, &u64::MAX).unwrap();
        });
        let fp = r.unwrap().1;
        assert_eq!(le_u64(&fp.bytes, XSTATE_BV_OFFSET), 0b011, "AVX back to its initial state");
        assert!(fp.bytes[512 + 8..576].iter().all(|&b| b == 0));
        assert!(fp.bytes[FPX_SW_BYTES_OFFSET..FXSAVE_SIZE].iter().all(|&b| b == 0), "sw bytes dropped");
    }

    #[test]
    fn xrstor_faults_become_efault() {
        let edits: [(&str, FrameEdit); 5] = [
            ("mxcsr reserved bits", Box::new(|mm, _, fp| mm.write_obj(fp + 24, &0x1_0000u32).unwrap())),
            ("xstate_bv beyond the cpu", Box::new(|mm, _, fp| mm.write_obj(fp + 512, &0b1111u64).unwrap())),
            ("xcomp_bv", Box::new(|mm, _, fp| mm.write_obj(fp + 520, &(1u64 << 63)).unwrap())),
            ("misaligned fpstate", Box::new(|mm, uc, fp| mm.write_obj(uc + 40 + 184, &(fp + 16)).unwrap())),
            ("unmapped fpstate", Box::new(|mm, uc, _| mm.write_obj(uc + 40 + 184, &0x1000_0000u64).unwrap())),
        ];
        for (what, edit) in edits {
            let (_, r) = with_edited_frame(|mm, uc, fp| edit(mm, uc, fp));
            assert_eq!(r.map(|_| ()), Err(Errno::EFAULT), "{what}");
        }
        // The legacy path has its own alignment (16) and MXCSR checks.
        let (_, r) = with_edited_frame(|mm, uc, fp| {
            mm.write_obj(fp + FPX_SW_BYTES_OFFSET as u64, &0u32).unwrap();
            mm.write_obj(uc + 40 + 184, &(fp + 8)).unwrap();
        });
        assert_eq!(r.map(|_| ()), Err(Errno::EFAULT));
        let (_, r) = with_edited_frame(|mm, _, fp| {
            mm.write_obj(fp + FPX_SW_BYTES_OFFSET as u64, &0u32).unwrap();
            mm.write_obj(fp + 24, &0xffff_ffffu32).unwrap();
        });
        assert_eq!(r.map(|_| ()), Err(Errno::EFAULT));
    }

    #[test]
    fn null_fpstate_gives_the_initial_fp_state() {
        let (_, r) = with_edited_frame(|mm, uc, _| mm.write_obj(uc + 40 + 184, &0u64).unwrap());
        let fp = r.unwrap().1;
        assert_eq!(fp, LAYOUT.initial_fp_state());
        assert_eq!(&fp.bytes[0..2], &0x37fu16.to_le_bytes());
        assert_eq!(&fp.bytes[24..28], &0x1f80u32.to_le_bytes());
    }

    #[test]
    fn sigreturn_with_an_unreadable_frame_is_efault() {
        let (mm, _, _) = new_mm();
        let (base, top) = stack(&mm);
        for rsp in [0, 7, 8, 0x1000_0000, base - 0x1000, top, u64::MAX, mm.max_addr() - 100] {
            let mut regs = sample_regs(rsp);
            assert_eq!(restore_rt_frame_with(&mm, &mut regs, &LAYOUT).map(|_| ()), Err(Errno::EFAULT), "{rsp:#x}");
        }
        // A frame whose fpstate points at a wrapping or out-of-range address.
        let (_, r) = with_edited_frame(|mm, uc, _| mm.write_obj(uc + 40 + 184, &(u64::MAX - 63)).unwrap());
        assert_eq!(r.map(|_| ()), Err(Errno::EFAULT));
    }

    #[test]
    fn fix_eflags_are_the_user_changeable_flags() {
        let bits = [18, 16, 11, 10, 8, 7, 6, 4, 2, 0]; // AC RF OF DF TF SF ZF AF PF CF
        assert_eq!(FIX_EFLAGS, bits.iter().fold(0, |a, b| a | 1u64 << b));
    }

    #[test]
    fn trap_info_describes_faults() {
        let segv = Siginfo::fault(SIGSEGV, SEGV_MAPERR, 0x10);
        assert_eq!(TrapInfo::from_siginfo(SIGSEGV, &segv), TrapInfo { trapno: 14, err: PF_USER, cr2: 0x10 });
        assert_eq!(TrapInfo::page_fault(0x20, true, false, true), TrapInfo { trapno: 14, err: 7, cr2: 0x20 });
        let gp = Siginfo::kill(SIGSEGV, SI_KERNEL, 0, 0);
        assert_eq!(TrapInfo::from_siginfo(SIGSEGV, &gp).trapno, 13);
        let user = Siginfo::kill(SIGSEGV, SI_USER, 5, 0);
        assert_eq!(TrapInfo::from_siginfo(SIGSEGV, &user), TrapInfo::default());
        let ill = Siginfo::fault(SIGILL, ILL_ILLOPN, 0x401000);
        assert_eq!(TrapInfo::from_siginfo(SIGILL, &ill), TrapInfo { trapno: 6, err: 0, cr2: 0 });
    }

    #[test]
    fn host_layout_is_plausible_and_used_by_default() {
        let l = FpLayout::host();
        if l.xsave {
            assert_eq!(l.features & XFEATURE_MASK_FPSSE, XFEATURE_MASK_FPSSE);
            assert!(l.size >= MIN_XSTATE_SIZE && l.size < 1 << 16);
            assert_eq!(l.features & XFEATURE_XTILE_DATA, 0);
        } else {
            assert_eq!(l, FpLayout::FXSAVE);
        }
        assert!(l.sigframe_size() >= FRAME_SIZE + l.area_size() as u64);
        assert_eq!(l.sigframe_size() % 16, 0);
        // A frame always fits in a stack of sigframe_size bytes.
        let (mm, _, _) = new_mm();
        let (base, top) = stack(&mm);
        for off in 0..16 {
            let alt = SigAltStack { ss_sp: base + 0x1000 + off, ss_flags: 0, __pad: 0, ss_size: l.sigframe_size() };
            let mut regs = sample_regs(base + 0x20_0000);
            let fp = l.initial_fp_state();
            let (info, act) = (Siginfo::kill(SIGUSR1, SI_USER, 1, 0), action(SA_ONSTACK));
            setup_rt_frame_with(&mm, &mut regs, &fp, &setup(&info, &act, &alt), &TrapInfo::default(), &l).unwrap();
        }
        // The public entry points use this layout.
        let before = sample_regs(top - 0x1000);
        let mut regs = before;
        let fp = l.initial_fp_state();
        let (info, act, alt) = (Siginfo::kill(SIGUSR1, SI_USER, 1, 0), action(SA_SIGINFO), disabled());
        setup_rt_frame(&mm, &mut regs, &fp, &setup(&info, &act, &alt)).unwrap();
        handler_returns(&mut regs);
        let (mask, got, _) = restore_rt_frame(&mm, &mut regs).unwrap();
        assert_eq!(mask, OLD_MASK);
        assert_eq!(regs.rip, before.rip);
        assert_eq!(&got.bytes[..FPX_SW_BYTES_OFFSET], &fp.bytes[..FPX_SW_BYTES_OFFSET]);
    }
}
