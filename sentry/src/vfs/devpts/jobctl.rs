//! Job control on terminals: signalling process groups, background reads and writes
//! (SIGTTIN/SIGTTOU), and the session's controlling terminal.

use std::sync::Arc;

use rvisor_syscalls::flags::signal::{SIGTTIN, SIGTTOU, SIG_IGN};
use rvisor_syscalls::Errno;

use super::current;
use super::terminal::Terminal;
use crate::kernel::signal::{action_of, send_to_group, SignalInfo};
use crate::kernel::thread_group::TgState;
use crate::kernel::{Kernel, TaskHandle, ThreadGroup};

/// Sends `sig` from the kernel (SI_KERNEL, as a tty does) to one process.
pub fn signal_group(k: &Kernel, tg: &Arc<ThreadGroup>, sig: u32) {
    send_to_group(k, tg, SignalInfo::kernel(sig), false);
}

/// Sends `sig` to every live process of process group `pgrp`.
pub fn signal_pgrp(k: &Kernel, pgrp: i32, sig: u32) {
    for tg in k.all_groups() {
        let member = {
            let g = tg.lock();
            g.pgid == pgrp && matches!(g.state, TgState::Running)
        };
        if member {
            signal_group(k, &tg, sig);
        }
    }
}

/// Whether a live process group `pgrp` exists in session `sid`.
pub fn pgrp_in_session(k: &Kernel, pgrp: i32, sid: i32) -> Result<(), Errno> {
    let mut found = false;
    for tg in k.all_groups() {
        let g = tg.lock();
        if g.pgid == pgrp && !matches!(g.state, TgState::Dead | TgState::Zombie(_)) {
            if g.sid != sid {
                return Err(Errno::EPERM);
            }
            found = true;
        }
    }
    if found {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// Whether process group `pgrp` is orphaned: no member has a parent in another process
/// group of the same session (POSIX; such a group has nobody to resume it after a stop).
pub fn pgrp_orphaned(k: &Kernel, pgrp: i32) -> bool {
    for tg in k.all_groups() {
        let (pgid, sid, parent) = {
            let g = tg.lock();
            if !matches!(g.state, TgState::Running) {
                continue;
            }
            (g.pgid, g.sid, g.parent.upgrade())
        };
        if pgid != pgrp {
            continue;
        }
        // The sandbox's init has a parent outside (the runtime that started it, as a
        // container's init does), so its group is never orphaned.
        if tg.tgid == 1 {
            return false;
        }
        if let Some(p) = parent {
            let pg = p.lock();
            if pg.pgid != pgrp && pg.sid == sid && matches!(pg.state, TgState::Running) {
                return false;
            }
        }
    }
    true
}

/// Whether `sig` is ignored or blocked by the calling thread.
fn ignored_or_blocked(h: &TaskHandle, sig: u32) -> bool {
    h.signals().mask.contains(sig) || action_of(&h.tg, sig).handler == SIG_IGN
}

/// The caller's (pgid, sid), when `tty` is its controlling terminal and its process group
/// is not in the foreground: the case job control acts on.
fn background_caller(tty: &Terminal, h: &TaskHandle) -> Option<(i32, i32)> {
    let (pgid, sid) = {
        let g = h.tg.lock();
        (g.pgid, g.sid)
    };
    let (tsid, fg) = tty.session_and_pgrp();
    (tsid != 0 && tsid == sid && fg != 0 && fg != pgid).then_some((pgid, sid))
}

/// Before a read: a background process group reading its controlling terminal gets
/// SIGTTIN (and the read restarts once it is resumed); EIO if it ignores or blocks
/// SIGTTIN or is orphaned.
pub fn check_read(tty: &Arc<Terminal>) -> Result<(), Errno> {
    let Some((k, h)) = current() else { return Ok(()) };
    let Some((pgid, _)) = background_caller(tty, &h) else {
        return Ok(());
    };
    if ignored_or_blocked(&h, SIGTTIN) || pgrp_orphaned(&k, pgid) {
        return Err(Errno::EIO);
    }
    signal_pgrp(&k, pgid, SIGTTIN);
    Err(Errno::ERESTARTSYS)
}

/// Before a change of the terminal (a write with TOSTOP, tcsetattr, tcsetpgrp): a
/// background process group gets SIGTTOU, unless it ignores or blocks it (then the change
/// is allowed); EIO if orphaned.
pub fn check_change(tty: &Arc<Terminal>) -> Result<(), Errno> {
    let Some((k, h)) = current() else { return Ok(()) };
    let Some((pgid, _)) = background_caller(tty, &h) else {
        return Ok(());
    };
    if ignored_or_blocked(&h, SIGTTOU) {
        return Ok(());
    }
    if pgrp_orphaned(&k, pgid) {
        return Err(Errno::EIO);
    }
    signal_pgrp(&k, pgid, SIGTTOU);
    Err(Errno::ERESTARTSYS)
}

/// Whether the session leader `sid` is still alive (a session loses its controlling
/// terminal when its leader exits).
pub fn session_alive(k: &Kernel, sid: i32) -> bool {
    k.group(sid).is_some_and(|g| {
        let g = g.lock();
        g.sid == sid && matches!(g.state, TgState::Running)
    })
}

/// On a replica open without O_NOCTTY: a session leader without a controlling terminal
/// acquires this one if it is free.
pub fn maybe_acquire(k: &Kernel, h: &TaskHandle, tty: &Arc<Terminal>) {
    let (tgid, pgid, sid) = {
        let g = h.tg.lock();
        (h.tg.tgid, g.pgid, g.sid)
    };
    if sid != tgid || k.devpts.controlling_terminal(k, sid).is_some() {
        return;
    }
    let (tsid, _) = tty.session_and_pgrp();
    if tsid == 0 || !session_alive(k, tsid) {
        tty.make_controlling(sid, pgid);
    }
}
