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
mod tests;
