//! Tests of signal frame layout, placement and round trips.
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

