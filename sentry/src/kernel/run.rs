//! The task run loop: run guest code until it traps, then act on why it stopped.

use rvisor_platform::Event;

use super::signal::{default_action, DefaultAction};
use super::task::{ExitStatus, Task};
use crate::syscalls;

/// Runs `t` until its thread group exits, and returns how it ended.
pub fn run(t: &mut Task) -> ExitStatus {
    loop {
        if let Some(status) = t.exit {
            return status;
        }
        let as_ = t.mm.address_space().clone();
        match t.context.switch(&as_, &mut t.regs) {
            Ok(Event::Syscall) => syscalls::dispatch(t),
            Ok(Event::Fault { addr, access, .. }) => {
                if let Err(e) = t.mm.handle_fault(addr, access) {
                    tracing::debug!(addr = format_args!("{addr:#x}"), ?access, rip = format_args!("{:#x}", t.regs.rip), "unhandled guest fault");
                    force_signal(t, e.signo(), e.si_code(), addr);
                }
            }
            Ok(Event::Signal { signo, code, addr }) => force_signal(t, signo as u32, code, addr),
            Ok(Event::Interrupted) => {}
            Err(e) => {
                tracing::error!(error = %e, tid = t.tid, "platform failure; killing the task");
                eprintln!("rvisor: sandbox task {} failed: {e}", t.tid);
                t.exit_group(ExitStatus::Signaled(rvisor_syscalls::flags::signal::SIGKILL));
            }
        }
    }
}

/// A synchronous signal caused by the guest's own instruction (fault, trap).
///
/// Guest handlers are not run yet (signal frames come with the signals issue): a caught or
/// blocked synchronous signal cannot be delivered, so, as Linux does for a blocked or
/// ignored synchronous fault, the default action applies.
pub fn force_signal(t: &mut Task, sig: u32, code: i32, addr: u64) {
    tracing::debug!(sig, code, addr = format_args!("{addr:#x}"), rip = format_args!("{:#x}", t.regs.rip), "synchronous signal");
    match default_action(sig) {
        DefaultAction::Ignore | DefaultAction::Continue => {}
        _ => t.exit_group(ExitStatus::Signaled(sig)),
    }
}
