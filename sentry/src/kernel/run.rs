//! The task run loop: run guest code until it traps, act on why it stopped, and deliver
//! signals before going back.

use std::sync::atomic::Ordering;

use rvisor_platform::{AccessType, Event, FaultCode};

use super::signal::{force_signal, handle_signals, SignalInfo};
use super::task::{ExitStatus, Task};
use crate::syscalls;

/// Whether the task must leave its run loop: its own exit, its group's exit, or an exit
/// request from an execve in another thread.
fn must_exit(t: &Task) -> bool {
    t.exit.is_some() || t.handle.exit_requested.load(Ordering::SeqCst) || t.tg().exiting.load(Ordering::SeqCst)
}

/// Runs `t` until it exits.
pub fn run(t: &mut Task) {
    loop {
        if t.handle.waker.is_interrupted() || t.restart.is_some() {
            handle_signals(t);
        }
        if must_exit(t) {
            return;
        }
        if t.kernel.control.is_paused() {
            t.kernel.control.hold_if_paused(|| must_exit(t));
            continue;
        }
        let as_ = t.mm.address_space().clone();
        let event = t.context.switch(&as_, &mut t.regs);
        if let Some(pid) = t.context.host_process() {
            t.handle.tg.note_host_process(pid);
        }
        match event {
            Ok(Event::Syscall) => syscalls::dispatch(t),
            Ok(Event::Fault { addr, access, code }) => {
                if let Err(e) = t.mm.handle_fault(addr, access) {
                    tracing::debug!(addr = format_args!("{addr:#x}"), ?access, rip = format_args!("{:#x}", t.regs.rip), "unhandled guest fault");
                    let mut info = SignalInfo::fault(e.signo(), e.si_code(), addr);
                    info.page_fault = Some((access == AccessType::Write, access == AccessType::Exec, code == FaultCode::Protection));
                    force_signal(t, info);
                }
            }
            Ok(Event::Signal { signo, code, addr })
                if signo as u32 == rvisor_syscalls::flags::signal::SIGSYS
                    && code == 1
                    && addr & !0xfff == syscalls::VSYSCALL_PAGE
                    && syscalls::vsyscall(t, addr) => {}
            Ok(Event::Signal { signo, code, addr }) => force_signal(t, SignalInfo::fault(signo as u32, code, addr)),
            Ok(Event::Interrupted) => {}
            Err(e) => {
                tracing::error!(error = %e, tid = t.tid(), "platform failure; killing the process");
                eprintln!("rvisor: sandbox task {} failed: {e}", t.tid());
                let (k, tg) = (t.kernel.clone(), t.tg().clone());
                super::signal::group_exit(&k, &tg, ExitStatus::signaled(rvisor_syscalls::flags::signal::SIGKILL));
            }
        }
    }
}
