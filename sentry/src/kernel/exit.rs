//! Leaving: thread exit, the end of a thread group (zombie, reparenting, SIGCHLD), and
//! waiting for children (wait4, waitid).

use std::sync::Arc;

use rvisor_syscalls::flags::signal::{SA_NOCLDWAIT, SIGCHLD, SIG_IGN};
use rvisor_syscalls::flags::wait::*;
use rvisor_syscalls::Errno;

use crate::mm::MemoryManager;

use super::signal::{action_of, code, send_to_group, SignalInfo};
use super::task::{ExitStatus, Task};
use super::thread_group::{StopEvent, TgState, ThreadGroup};
use super::Kernel;

/// Called on the task's own host thread after its run loop ended.
pub fn exit_task(t: &mut Task) {
    let k = t.kernel.clone();
    let tg = t.tg().clone();
    release_user_memory_hooks(t);
    let tid = t.tid();
    // Leave the pid table before the thread list: an execve in another thread waits for
    // the list to empty and then takes this thread's id if it was the leader.
    {
        let mut tables = k.tables();
        if tables.tasks.get(&tid).is_some_and(|h| Arc::ptr_eq(h, &t.handle)) {
            tables.tasks.remove(&tid);
        }
    }
    let last = {
        let mut g = tg.lock();
        g.threads.retain(|h| !Arc::ptr_eq(h, &t.handle));
        g.threads.is_empty()
    };
    t.handle.exited.store(true, std::sync::atomic::Ordering::SeqCst);
    // Linux closes a task's files before the task can be reaped: a parent that waited for
    // it finds its pipe ends closed and its listening sockets gone. The table goes with its
    // last user (threads sharing it keep it open); /proc's copy of it goes now too.
    t.handle.update_proc_info(|p| p.fds = None);
    drop(std::mem::replace(&mut t.fds, Arc::new(std::sync::Mutex::new(crate::kernel::fdtable::FdTable::new()))));
    {
        let mut comm = tg.exited_comm.lock().unwrap_or_else(|p| p.into_inner());
        if tid == tg.tgid || (last && comm.is_empty()) {
            *comm = t.comm.clone();
        }
    }
    if last {
        // The group's host process goes away with its address space.
        tg.fold_cpu_time();
    }
    // Linux's exit_mm, before the parent can learn of the exit: the last user of the
    // address space unmaps it here, so a parent that waited for its child finds the
    // child's shared mappings gone (F_ADD_SEALS(F_SEAL_WRITE) on a memfd it had mapped
    // writable no longer fails with EBUSY, a MAP_SHARED file is no longer held).
    t.handle.update_proc_info(|p| p.mm = None);
    let mf = t.mm.memory_file().clone();
    drop(std::mem::replace(&mut t.mm, Arc::new(MemoryManager::exited(mf))));
    if last {
        let status = tg.exit_status().or(t.exit).unwrap_or(ExitStatus::Exited(0));
        finish_group(&k, &tg, status);
    }
    // An execve in another thread waits for this one to be gone.
    tg.state_events.notify_all();
}

/// clear_child_tid and the robust futex list, in the memory the thread leaves behind.
fn release_user_memory_hooks(t: &mut Task) {
    if t.robust_list.0 != 0 {
        crate::kernel::futex_hooks::handle_robust_list(t, t.robust_list.0);
    }
    if t.clear_child_tid != 0 {
        let addr = t.clear_child_tid;
        if t.mm.write_obj(addr, &0u32).is_ok() {
            crate::kernel::futex_hooks::wake(t, addr, 1);
        }
    }
}

/// The last thread of `tg` is gone: it becomes a zombie, its children go to the reaper,
/// and its parent hears about it.
fn finish_group(k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, status: ExitStatus) {
    k.timers.remove(tg.tgid);
    crate::vfs::lock::process_exited(tg.tgid);
    // Children go to their new reaper before the group is seen as a zombie (Linux's
    // forget_original_parent comes before exit_notify): a parent that reaps this group and
    // then waits for the orphans it inherited must find them. A dying child may still hand
    // its own children to this group (a subreaper) meanwhile, so repeat until none is left
    // and become a zombie under the same lock.
    loop {
        let children = {
            let mut g = tg.lock();
            g.shared_pending.clear();
            if g.children.is_empty() {
                g.state = TgState::Zombie(status);
                break;
            }
            std::mem::take(&mut g.children)
        };
        reparent(k, tg, children);
    }
    tg.state_events.notify_all();
    k.control.group_exited(tg.tgid, status);
    if tg.tgid == 1 {
        k.init_exited(status);
    }
    notify_parent(k, tg, status);
}

/// Hands `children` of a dying group to the nearest child subreaper or init.
fn reparent(k: &Arc<Kernel>, dying: &Arc<ThreadGroup>, children: Vec<Arc<ThreadGroup>>) {
    if children.is_empty() {
        return;
    }
    let mut reaper = dying.parent();
    while let Some(r) = reaper.clone() {
        let g = r.lock();
        if g.child_subreaper && matches!(g.state, TgState::Running) {
            break;
        }
        drop(g);
        reaper = r.parent();
    }
    let reaper = reaper.or_else(|| k.init_group()).filter(|r| !Arc::ptr_eq(r, dying) && r.is_alive());
    for c in children {
        let (zombie, threads) = {
            let mut g = c.lock();
            g.parent = reaper.as_ref().map(Arc::downgrade).unwrap_or_default();
            // Linux's reparent_leader ("we don't want people slaying init"): an orphan's
            // custom exit signal (clone's CSIGNAL, e.g. SIGKILL) becomes SIGCHLD.
            g.exit_signal = SIGCHLD;
            (matches!(g.state, TgState::Zombie(_)), g.threads.clone())
        };
        // PR_SET_PDEATHSIG: the child's threads asked for a signal when their parent died.
        for h in threads {
            let sig = h.pdeath_signal.load(std::sync::atomic::Ordering::Relaxed);
            if sig != 0 {
                super::signal::send_to_thread(k, &h, SignalInfo::kernel(sig), false);
            }
        }
        match &reaper {
            Some(r) => {
                r.lock().children.push(c.clone());
                if let (true, Some(s)) = (zombie, c.exit_status()) {
                    notify_parent(k, &c, s);
                }
            }
            // Nobody is left to wait: the sandbox is ending.
            None => reap(k, &c),
        }
    }
}

/// SIGCHLD (or the group's exit signal) to the parent, and its waiters woken. A parent that
/// ignores SIGCHLD or set SA_NOCLDWAIT never sees zombies: the child is reaped at once.
fn notify_parent(k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, status: ExitStatus) {
    let Some(parent) = tg.parent() else {
        reap(k, tg);
        return;
    };
    let exit_signal = {
        let g = tg.lock();
        // A parent that exec'd since this child was made gets SIGCHLD, never the custom
        // signal its earlier image asked for (Linux's do_notify_parent).
        if g.exit_signal != SIGCHLD && g.parent_exec_id != parent.self_exec_id.load(std::sync::atomic::Ordering::Relaxed) {
            SIGCHLD
        } else {
            g.exit_signal
        }
    };
    let act = action_of(&parent, SIGCHLD);
    let auto_reap = exit_signal == SIGCHLD && (act.handler == SIG_IGN || act.flags & SA_NOCLDWAIT != 0);
    if exit_signal != 0 && act.handler != SIG_IGN {
        let (why, st) = match status {
            ExitStatus::Exited(c) => (code::CLD_EXITED, c),
            ExitStatus::Signaled { sig, core } => (if core { code::CLD_DUMPED } else { code::CLD_KILLED }, sig as i32),
        };
        let info = SignalInfo { signo: exit_signal, code: why, pid: tg.tgid, status: st, ..Default::default() };
        send_to_group(k, &parent, info, false);
    }
    if auto_reap {
        reap(k, tg);
    }
    parent.child_events.notify_all();
}

/// Removes a zombie from the process tree for good.
pub fn reap(k: &Kernel, tg: &Arc<ThreadGroup>) {
    let parent = {
        let mut g = tg.lock();
        g.state = TgState::Dead;
        g.parent.upgrade()
    };
    if let Some(p) = parent {
        p.lock().children.retain(|c| !Arc::ptr_eq(c, tg));
        use std::sync::atomic::Ordering::Relaxed;
        let cpu = tg.cpu_time_ns() + tg.children_cpu_ns.load(Relaxed);
        p.children_cpu_ns.fetch_add(cpu, Relaxed);
    }
    k.tables().groups.remove(&tg.tgid);
}

/// Which children a wait call selects.
#[derive(Clone, Copy, Debug)]
pub enum WaitTarget {
    Pid(i32),
    Pgid(i32),
    Any,
}

/// What a wait found.
#[derive(Clone, Copy, Debug)]
pub struct WaitResult {
    pub pid: i32,
    pub uid: u32,
    /// wait(2) status word.
    pub status: i32,
    /// waitid's si_code (CLD_*) and si_status.
    pub code: i32,
    pub si_status: i32,
}

/// The shared core of wait4 and waitid. `Ok(None)` with WNOHANG when nothing is ready.
pub fn do_wait(t: &Task, target: WaitTarget, options: u32) -> Result<Option<WaitResult>, Errno> {
    let tg = t.tg().clone();
    let k = t.kernel.clone();
    let check = || -> Option<Result<Option<WaitResult>, Errno>> {
        let children = tg.lock().children.clone();
        let mut any = false;
        for c in &children {
            let (pgid, exit_signal) = {
                let g = c.lock();
                (g.pgid, g.exit_signal)
            };
            let selected = match target {
                WaitTarget::Pid(p) => c.tgid == p,
                WaitTarget::Pgid(g) => pgid == g,
                WaitTarget::Any => true,
            };
            // A "clone" child reports to its parent with a signal other than SIGCHLD.
            let clone_child = exit_signal != SIGCHLD;
            let kind_ok = options & WALL != 0 || (clone_child == (options & WCLONE != 0));
            if !selected || !kind_ok {
                continue;
            }
            any = true;
            if let Some(r) = collect(&k, c, options) {
                return Some(Ok(Some(r)));
            }
        }
        if !any {
            return Some(Err(Errno::ECHILD));
        }
        if options & WNOHANG != 0 {
            return Some(Ok(None));
        }
        None
    };
    super::wait::block_on(&[&tg.child_events], None, check)
}

/// The reportable state of child `c`, consuming it unless WNOWAIT.
fn collect(k: &Kernel, c: &Arc<ThreadGroup>, options: u32) -> Option<WaitResult> {
    let consume = options & WNOWAIT == 0;
    let mut g = c.lock();
    if let TgState::Zombie(status) = g.state {
        if options & WEXITED == 0 {
            return None;
        }
        let (code, si_status) = match status {
            ExitStatus::Exited(v) => (code::CLD_EXITED, v & 0xff),
            ExitStatus::Signaled { sig, core } => (if core { code::CLD_DUMPED } else { code::CLD_KILLED }, sig as i32),
        };
        drop(g);
        if consume {
            reap(k, c);
        }
        return Some(WaitResult { pid: c.tgid, uid: 0, status: status.wait_status(), code, si_status });
    }
    match g.stop_event {
        Some(StopEvent::Stopped(sig)) if options & WSTOPPED != 0 => {
            if consume {
                g.stop_event = None;
            }
            Some(WaitResult { pid: c.tgid, uid: 0, status: ((sig as i32) << 8) | 0x7f, code: code::CLD_STOPPED, si_status: sig as i32 })
        }
        Some(StopEvent::Continued) if options & WCONTINUED != 0 => {
            if consume {
                g.stop_event = None;
            }
            Some(WaitResult { pid: c.tgid, uid: 0, status: 0xffff, code: code::CLD_CONTINUED, si_status: rvisor_syscalls::flags::signal::SIGCONT as i32 })
        }
        _ => None,
    }
}
