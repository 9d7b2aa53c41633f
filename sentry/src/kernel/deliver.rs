//! Signal frames on the task: building one for a handler and rt_sigreturn.

use rvisor_syscalls::signal::{Siginfo, SS_AUTODISARM};
use rvisor_syscalls::types::{SigAction, SigSet};
use rvisor_syscalls::{Errno, Pod};

use super::signal::{SignalInfo, UNBLOCKABLE};
use super::signal_frame::{restore_rt_frame, setup_rt_frame, setup_rt_frame_with, FpLayout, FrameSetup, TrapInfo};
use super::task::Task;

/// Builds the frame for `info` and points the registers at the handler; the handler starts
/// with a clean FPU state, as on Linux.
pub fn setup_frame(t: &mut Task, info: &SignalInfo, act: &SigAction, old_mask: SigSet) -> Result<(), Errno> {
    let si = Siginfo::from_bytes(&info.to_bytes()).ok_or(Errno::EFAULT)?;
    let fp = t.context.fp_state().map_err(|e| {
        tracing::error!(error = %e, "cannot read the FPU state for a signal frame");
        Errno::EFAULT
    })?;
    let altstack = t.altstack;
    let setup = FrameSetup { sig: info.signo, info: &si, action: act, old_mask, altstack: &altstack };
    let mm = t.mm.clone();
    match info.page_fault {
        Some((write, exec, present)) => {
            let trap = TrapInfo::page_fault(info.addr, write, exec, present);
            setup_rt_frame_with(&mm, &mut t.regs, &fp, &setup, &trap, &FpLayout::host())?
        }
        None => setup_rt_frame(&mm, &mut t.regs, &fp, &setup)?,
    }
    if let Err(e) = t.context.set_fp_state(&FpLayout::host().initial_fp_state()) {
        tracing::warn!(error = %e, "cannot reset the FPU state for a handler");
    }
    if t.altstack.ss_flags & SS_AUTODISARM != 0 {
        t.altstack = rvisor_syscalls::types::SigAltStack { ss_flags: rvisor_syscalls::flags::signal::SS_DISABLE, ..Default::default() };
    }
    Ok(())
}

/// rt_sigreturn: restores registers, FP state, mask and alternate stack from the frame.
pub fn sigreturn(t: &mut Task) -> Result<(), Errno> {
    let mm = t.mm.clone();
    let (mask, fp, stack) = restore_rt_frame(&mm, &mut t.regs)?;
    t.context.set_fp_state(&fp).map_err(|_| Errno::EFAULT)?;
    super::signal::set_mask(t, SigSet(mask.0 & !UNBLOCKABLE.0));
    // uc_stack is applied like sigaltstack(2), errors ignored.
    use rvisor_syscalls::flags::signal::{MINSIGSTKSZ, SS_DISABLE};
    if !super::signal_frame::on_sig_stack(&t.altstack, t.regs.rsp) {
        if stack.ss_flags & SS_DISABLE != 0 {
            t.altstack = rvisor_syscalls::types::SigAltStack { ss_flags: SS_DISABLE, ..Default::default() };
        } else if stack.ss_size >= MINSIGSTKSZ {
            t.altstack = rvisor_syscalls::types::SigAltStack { ss_flags: stack.ss_flags & SS_AUTODISARM, ..stack };
        }
    }
    Ok(())
}
