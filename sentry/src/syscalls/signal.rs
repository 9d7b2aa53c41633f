//! Signal syscalls. Dispositions and masks follow Linux exactly; running guest handlers
//! needs signal frames, which come with the signals issue — until then a signal that would
//! run a handler stays pending.

use rvisor_syscalls::flags::signal::*;
use rvisor_syscalls::types::{SigAction, SigAltStack, SigSet};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::signal::{default_action, DefaultAction, UNBLOCKABLE};
use crate::kernel::task::ExitStatus;
use crate::kernel::Task;

const SIGSET_SIZE: u64 = 8;

fn valid_signal(sig: u64) -> Result<u32, Errno> {
    if (1..=NSIG as u64).contains(&sig) {
        Ok(sig as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

pub fn rt_sigaction(t: &mut Task, a: &Args) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let sig = valid_signal(a[0])?;
    let new = if a[1] != 0 { Some(t.read_obj::<SigAction>(a[1])?) } else { None };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = *t.signals.action(sig).ok_or(Errno::EINVAL)?;
    if a[2] != 0 {
        t.write_obj(a[2], &old)?;
    }
    if let Some(mut act) = new {
        act.mask.0 &= !UNBLOCKABLE.0;
        if let Some(slot) = t.signals.action_mut(sig) {
            *slot = act;
        }
        // Setting SIG_IGN (or a default-ignore SIG_DFL) discards a pending instance.
        if t.signals.is_ignored(sig) {
            t.signals.pending.0 &= !SigSet::of(sig).0;
        }
    }
    Ok(0)
}

pub fn rt_sigprocmask(t: &mut Task, a: &Args) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let old = t.signals.mask;
    if a[1] != 0 {
        let set: SigSet = t.read_obj(a[1])?;
        let new = match a[0] as u32 {
            SIG_BLOCK => old.0 | set.0,
            SIG_UNBLOCK => old.0 & !set.0,
            SIG_SETMASK => set.0,
            _ => return Err(Errno::EINVAL),
        };
        t.signals.mask = SigSet(new & !UNBLOCKABLE.0);
    }
    if a[2] != 0 {
        t.write_obj(a[2], &old)?;
    }
    Ok(0)
}

pub fn rt_sigpending(t: &mut Task, a: &Args) -> SysResult {
    if a[1] > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let p = SigSet(t.signals.pending.0 & t.signals.mask.0);
    t.write_obj(a[0], &p)?;
    Ok(0)
}

pub fn sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    let old = t.signals.altstack;
    if a[0] != 0 {
        let ss: SigAltStack = t.read_obj(a[0])?;
        if ss.ss_flags & !(SS_DISABLE | SS_ONSTACK | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        let new = if ss.ss_flags & SS_DISABLE != 0 {
            SigAltStack { ss_sp: 0, ss_flags: SS_DISABLE, __pad: 0, ss_size: 0 }
        } else {
            if ss.ss_size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            SigAltStack { ss_flags: 0, ..ss }
        };
        t.signals.altstack = new;
    }
    if a[1] != 0 {
        t.write_obj(a[1], &old)?;
    }
    Ok(0)
}

/// Sends `sig` to the task itself (the only task so far).
fn send_to_self(t: &mut Task, sig: u32) -> SysResult {
    if sig == 0 {
        return Ok(0);
    }
    let handler = t.signals.action(sig).map(|a| a.handler).unwrap_or(SIG_DFL);
    // The sandbox's init is protected like a container's: from inside its pid namespace,
    // a signal whose disposition is SIG_DFL is discarded (even SIGKILL).
    if t.tgid == 1 && handler == SIG_DFL {
        return Ok(0);
    }
    if t.signals.is_ignored(sig) {
        return Ok(0);
    }
    if handler == SIG_DFL && !t.signals.mask.contains(sig) || sig == SIGKILL {
        match default_action(sig) {
            DefaultAction::Terminate | DefaultAction::CoreDump => t.exit_group(ExitStatus::Signaled(sig)),
            DefaultAction::Stop | DefaultAction::Continue | DefaultAction::Ignore => {}
        }
        return Ok(0);
    }
    tracing::warn!(sig, "signal left pending: guest signal handlers are not run yet");
    t.signals.pending.0 |= SigSet::of(sig).0;
    Ok(0)
}

pub fn kill(t: &mut Task, a: &Args) -> SysResult {
    let pid = a[0] as i32;
    let sig = if a[1] == 0 { 0 } else { valid_signal(a[1])? };
    let targets_self = pid == t.tgid || pid == 0 || pid == -1 || pid == -t.pgid;
    if !targets_self {
        return Err(Errno::ESRCH);
    }
    send_to_self(t, sig)
}

pub fn tgkill(t: &mut Task, a: &Args) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = if a[2] == 0 { 0 } else { valid_signal(a[2])? };
    if tgid != t.tgid || tid != t.tid {
        return Err(Errno::ESRCH);
    }
    send_to_self(t, sig)
}

pub fn tkill(t: &mut Task, a: &Args) -> SysResult {
    let tid = a[0] as i32;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = if a[1] == 0 { 0 } else { valid_signal(a[1])? };
    if tid != t.tid {
        return Err(Errno::ESRCH);
    }
    send_to_self(t, sig)
}

/// pause(2): sleeps until a signal arrives. No other task can signal this one yet, so
/// it sleeps until the sandbox is killed from outside.
pub fn pause(_t: &mut Task, _a: &Args) -> SysResult {
    loop {
        std::thread::park();
    }
}
