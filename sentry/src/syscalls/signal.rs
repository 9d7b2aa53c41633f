//! Signal syscalls: dispositions, masks, sending, waiting for signals, sigreturn, and the
//! real-time interval timer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::signal::*;
use rvisor_syscalls::types::{SigAction, SigAltStack, SigSet, Timespec, Timeval};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::signal::{code, send_to_group, send_to_thread, set_mask, SignalInfo, UNBLOCKABLE};
use crate::kernel::thread_group::{TgState, ThreadGroup};
use crate::kernel::timer::CpuTimerKind;
use crate::kernel::wait::block_on;
use crate::kernel::Task;

const SIGSET_SIZE: u64 = 8;

fn valid_signal(sig: u64) -> Result<u32, Errno> {
    if (1..=NSIG as u64).contains(&sig) {
        Ok(sig as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

/// A signal number argument that may be 0 (existence check).
fn signal_or_zero(sig: u64) -> Result<u32, Errno> {
    if sig == 0 {
        Ok(0)
    } else {
        valid_signal(sig)
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
    let handlers = t.tg().handlers();
    let old = {
        let mut h = handlers.lock().unwrap_or_else(|p| p.into_inner());
        let slot = h.get_mut(sig as usize - 1).ok_or(Errno::EINVAL)?;
        let old = *slot;
        if let Some(mut act) = new {
            act.mask.0 &= !UNBLOCKABLE.0;
            *slot = act;
        }
        old
    };
    if a[2] != 0 {
        t.write_obj(a[2], &old)?;
    }
    // Setting SIG_IGN (or a default-ignore SIG_DFL) discards pending instances.
    if let Some(act) = new {
        let ignored = act.handler == SIG_IGN || (act.handler == SIG_DFL && matches!(sig, SIGCHLD | SIGURG | SIGWINCH));
        if ignored {
            let tg = t.tg().clone();
            let mut g = tg.lock();
            g.shared_pending.retain(|i| i.signo != sig);
            for h in &g.threads {
                h.signals().pending.retain(|i| i.signo != sig);
            }
            drop(g);
        }
    }
    Ok(0)
}

pub fn rt_sigprocmask(t: &mut Task, a: &Args) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let old = t.sigmask();
    if a[1] != 0 {
        let set: SigSet = t.read_obj(a[1])?;
        let new = match a[0] as u32 {
            SIG_BLOCK => old.0 | set.0,
            SIG_UNBLOCK => old.0 & !set.0,
            SIG_SETMASK => set.0,
            _ => return Err(Errno::EINVAL),
        };
        set_mask(t, SigSet(new));
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
    let mut set = 0u64;
    {
        let g = t.tg().lock();
        let s = t.handle.signals();
        for i in s.pending.iter().chain(g.shared_pending.iter()) {
            set |= SigSet::of(i.signo).0;
        }
        set &= s.mask.0;
    }
    let bytes = set.to_le_bytes();
    t.mm.copy_out(a[0], &bytes[..a[1] as usize])?;
    Ok(0)
}

pub fn sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    use crate::kernel::signal_frame::{altstack_flags, on_sig_stack};
    let mut old = t.altstack;
    old.ss_flags = altstack_flags(&t.altstack, t.regs.rsp) | (t.altstack.ss_flags & (1 << 31));
    if a[0] != 0 {
        let ss: SigAltStack = t.read_obj(a[0])?;
        const SS_AUTODISARM: i32 = 1 << 31;
        if ss.ss_flags & !(SS_DISABLE | SS_ONSTACK | SS_AUTODISARM) != 0 {
            return Err(Errno::EINVAL);
        }
        if on_sig_stack(&t.altstack, t.regs.rsp) {
            return Err(Errno::EPERM);
        }
        t.altstack = if ss.ss_flags & SS_DISABLE != 0 {
            SigAltStack { ss_sp: 0, ss_flags: SS_DISABLE, __pad: 0, ss_size: 0 }
        } else {
            if ss.ss_size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            SigAltStack { ss_flags: ss.ss_flags & SS_AUTODISARM, ..ss }
        };
    }
    if a[1] != 0 {
        t.write_obj(a[1], &old)?;
    }
    Ok(0)
}

/// Thread groups `pid` selects for kill(2): a process, a process group, or everyone.
fn kill_targets(t: &Task, pid: i32) -> Result<Vec<Arc<ThreadGroup>>, Errno> {
    let live = |g: &Arc<ThreadGroup>| !matches!(g.lock().state, TgState::Dead);
    let targets: Vec<Arc<ThreadGroup>> = match pid {
        p if p > 0 => t.kernel.group(p).filter(live).into_iter().collect(),
        0 | -1 | i32::MIN => {
            if pid == i32::MIN {
                return Err(Errno::ESRCH);
            }
            let pgid = t.tg().pgid();
            t.kernel
                .all_groups()
                .into_iter()
                .filter(|g| live(g) && if pid == 0 { g.pgid() == pgid } else { g.tgid != 1 && g.tgid != t.tgid() })
                .collect()
        }
        p => t.kernel.all_groups().into_iter().filter(|g| live(g) && g.pgid() == -p).collect(),
    };
    if targets.is_empty() && pid != -1 {
        return Err(Errno::ESRCH);
    }
    Ok(targets)
}

pub fn kill(t: &mut Task, a: &Args) -> SysResult {
    let pid = a[0] as i32;
    let sig = signal_or_zero(a[1])?;
    let targets = kill_targets(t, pid)?;
    if pid == -1 && targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        for tg in targets {
            send_to_group(&t.kernel, &tg, SignalInfo::user(sig, code::SI_USER, t.tgid(), t.creds.uid), true);
        }
    }
    Ok(0)
}

fn thread_signal(t: &mut Task, tgid: Option<i32>, tid: i32, sig: u32, info: SignalInfo) -> SysResult {
    let target = t.kernel.task(tid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != target.tg.tgid) {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        send_to_thread(&t.kernel, &target, info, true);
    }
    Ok(0)
}

pub fn tgkill(t: &mut Task, a: &Args) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = signal_or_zero(a[2])?;
    let info = SignalInfo::user(sig, code::SI_TKILL, t.tgid(), t.creds.uid);
    thread_signal(t, Some(tgid), tid, sig, info)
}

pub fn tkill(t: &mut Task, a: &Args) -> SysResult {
    let tid = a[0] as i32;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = signal_or_zero(a[1])?;
    let info = SignalInfo::user(sig, code::SI_TKILL, t.tgid(), t.creds.uid);
    thread_signal(t, None, tid, sig, info)
}

/// The siginfo a guest passes to rt_sigqueueinfo: it may not pretend to be the kernel.
fn queued_info(t: &Task, sig: u32, addr: u64, target_is_self: bool) -> Result<SignalInfo, Errno> {
    let mut raw = [0u8; 128];
    t.mm.copy_in(addr, &mut raw)?;
    let si_code = i32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
    if (si_code >= 0 || si_code == code::SI_TKILL) && !target_is_self {
        return Err(Errno::EPERM);
    }
    Ok(SignalInfo { signo: sig, code: si_code, raw: Some(Box::new(raw)), ..Default::default() })
}

pub fn rt_sigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let sig = signal_or_zero(a[1])?;
    let tg = t.kernel.group(a[0] as i32).filter(|g| !matches!(g.lock().state, TgState::Dead)).ok_or(Errno::ESRCH)?;
    let info = queued_info(t, sig, a[2], tg.tgid == t.tgid())?;
    if sig != 0 {
        send_to_group(&t.kernel, &tg, info, true);
    }
    Ok(0)
}

pub fn rt_tgsigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = signal_or_zero(a[2])?;
    let info = queued_info(t, sig, a[3], tgid == t.tgid())?;
    thread_signal(t, Some(tgid), tid, sig, info)
}

/// Blocks until a signal is delivered. Returns ERESTARTNOHAND: after a handler ran the call
/// fails with EINTR (never restarted, SA_RESTART or not); otherwise it is restarted.
fn wait_for_signal() -> SysResult {
    let _ = block_on::<u64>(&[], None, || None);
    Err(Errno::ERESTARTNOHAND)
}

pub fn pause(_t: &mut Task, _a: &Args) -> SysResult {
    wait_for_signal()
}

/// rt_sigsuspend(2): waits with a temporary mask; the old mask returns after the handler.
pub fn rt_sigsuspend(t: &mut Task, a: &Args) -> SysResult {
    if a[1] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: SigSet = t.read_obj(a[0])?;
    let old = t.sigmask();
    t.saved_mask = Some(old);
    set_mask(t, mask);
    match wait_for_signal() {
        Err(Errno::ERESTARTNOHAND) | Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        other => other,
    }
}

/// rt_sigtimedwait(2): takes a pending signal in `set` (blocked or not) or waits for one.
pub fn rt_sigtimedwait(t: &mut Task, a: &Args) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set: SigSet = t.read_obj(a[0])?;
    let set = SigSet(set.0 & !UNBLOCKABLE.0);
    let deadline = if a[2] != 0 {
        let ts: Timespec = t.read_obj(a[2])?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    // The thread's own queue first, then the process's; lowest signal number first.
    let take = |t: &Task| -> Option<SignalInfo> {
        let tg = t.tg().clone();
        let mut g = tg.lock();
        let mut s = t.handle.signals();
        let pick = |q: &std::collections::VecDeque<SignalInfo>| {
            q.iter().enumerate().filter(|(_, i)| set.contains(i.signo)).min_by_key(|(n, i)| (i.signo, *n)).map(|(n, _)| n)
        };
        if let Some(n) = pick(&s.pending) {
            return s.pending.remove(n);
        }
        let n = pick(&g.shared_pending)?;
        g.shared_pending.remove(n)
    };
    // While waiting, signals in `set` must wake the task even if blocked (they are taken
    // here, not delivered), as Linux does by unblocking them for the wait.
    let info = match take(t) {
        Some(i) => i,
        None => {
            let old = t.sigmask();
            {
                let mut s = t.handle.signals();
                s.real_blocked = old;
                s.mask = SigSet(old.0 & !set.0);
            }
            let r = block_on(&[], deadline, || take(t).map(Ok));
            {
                let mut s = t.handle.signals();
                s.mask = old;
                s.real_blocked = SigSet::default();
            }
            match r {
                Ok(i) => i,
                Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                Err(Errno::ERESTARTSYS) => {
                    // Woken by a signal: one in `set` may have arrived meanwhile.
                    match take(t) {
                        Some(i) => i,
                        None => return Err(Errno::EINTR),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    if a[1] != 0 {
        t.mm.copy_out(a[1], &info.to_bytes())?;
    }
    Ok(info.signo as u64)
}

/// rt_sigreturn(2): restores the context saved by the signal frame.
pub fn rt_sigreturn(t: &mut Task, _a: &Args) -> SysResult {
    match crate::kernel::deliver::sigreturn(t) {
        Ok(()) => Ok(t.regs.rax),
        Err(_) => {
            let info = SignalInfo::kernel(SIGSEGV);
            crate::kernel::signal::force_signal(t, info);
            Ok(t.regs.rax)
        }
    }
}

fn timeval_to_duration(tv: &Timeval) -> Result<Duration, Errno> {
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

fn duration_to_timeval(d: Duration) -> Timeval {
    Timeval { tv_sec: d.as_secs() as i64, tv_usec: d.subsec_micros() as i64 }
}

/// `struct itimerval`: interval, then value.
fn write_itimerval(t: &Task, addr: u64, value: Duration, interval: Duration) -> Result<(), Errno> {
    t.write_obj(addr, &duration_to_timeval(interval))?;
    t.write_obj(addr + 16, &duration_to_timeval(value))
}

const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

pub fn alarm(t: &mut Task, a: &Args) -> SysResult {
    let secs = a[0] as u32;
    let (k, tg) = (t.kernel.clone(), t.tg().clone());
    let (old, _) = k.timers.set_real(&k, &tg, Duration::from_secs(secs as u64), Duration::ZERO);
    // alarm(2) rounds the remaining time to the nearest second, and never returns 0 for a
    // pending alarm.
    let mut rem = old.as_secs() + u64::from(old.subsec_millis() >= 500);
    if rem == 0 && !old.is_zero() {
        rem = 1;
    }
    Ok(rem)
}

pub fn setitimer(t: &mut Task, a: &Args) -> SysResult {
    let (which, new_addr, old_addr) = (a[0], a[1], a[2]);
    let (interval, value) = if new_addr != 0 {
        let interval: Timeval = t.read_obj(new_addr)?;
        let value: Timeval = t.read_obj(new_addr + 16)?;
        (timeval_to_duration(&interval)?, timeval_to_duration(&value)?)
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    let old = match which {
        ITIMER_REAL => {
            let (k, tg) = (t.kernel.clone(), t.tg().clone());
            k.timers.set_real(&k, &tg, value, interval)
        }
        ITIMER_VIRTUAL | ITIMER_PROF => {
            let kind = if which == ITIMER_VIRTUAL { CpuTimerKind::Virtual } else { CpuTimerKind::Prof };
            let (k, tg) = (t.kernel.clone(), t.tg().clone());
            k.timers.set_cpu(&k, &tg, kind, value, interval)
        }
        _ => return Err(Errno::EINVAL),
    };
    if old_addr != 0 {
        write_itimerval(t, old_addr, old.0, old.1)?;
    }
    Ok(0)
}

pub fn getitimer(t: &mut Task, a: &Args) -> SysResult {
    let (value, interval) = match a[0] {
        ITIMER_REAL => t.kernel.timers.get_real(t.tgid()),
        ITIMER_VIRTUAL => t.kernel.timers.get_cpu(t.tg(), CpuTimerKind::Virtual),
        ITIMER_PROF => t.kernel.timers.get_cpu(t.tg(), CpuTimerKind::Prof),
        _ => return Err(Errno::EINVAL),
    };
    write_itimerval(t, a[1], value, interval)?;
    Ok(0)
}
