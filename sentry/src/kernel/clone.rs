//! Creating tasks: clone(2) and friends, and the host thread every task runs on.

use std::sync::{Arc, Mutex};

use rvisor_platform::{FpState, Regs};
use rvisor_syscalls::flags::clone::*;
use rvisor_syscalls::flags::signal::SS_DISABLE;
use rvisor_syscalls::types::{Rlimit, SigAltStack};
use rvisor_syscalls::Errno;

use super::fdtable::FdTable;
use super::run;
use super::task::{Creds, FsContext, Task, TaskHandle};
use super::thread_group::{TgState, ThreadGroup};
use super::Kernel;
use crate::mm::MemoryManager;

/// Arguments of clone/clone3, normalised.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    /// The new stack pointer (0: the parent's).
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
    pub exit_signal: u32,
}

/// Everything a new task starts with; moved to its host thread, which adds the platform
/// context (a context belongs to the thread that uses it).
pub struct TaskSeed {
    pub kernel: Arc<Kernel>,
    pub handle: Arc<TaskHandle>,
    pub regs: Regs,
    pub fp: Option<FpState>,
    /// The address space; `None` until a `prepare` step loads a program.
    pub mm: Option<Arc<MemoryManager>>,
    pub fds: Arc<Mutex<FdTable>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub creds: Creds,
    pub rlimits: Arc<Mutex<[Rlimit; rvisor_syscalls::flags::rlimit::RLIM_NLIMITS]>>,
    pub comm: Vec<u8>,
    pub clear_child_tid: u64,
    pub altstack: SigAltStack,
    pub no_new_privs: bool,
}

/// A step run on a new task's host thread before it has a context (init loads its program
/// there, so the address space is created by the thread that will use it).
pub type Prepare = Box<dyn FnOnce(&mut TaskSeed) -> Result<(), Errno> + Send>;

/// Starts the host thread of a new task and runs it until it exits.
pub fn spawn(mut seed: TaskSeed, prepare: Option<Prepare>) -> Result<(), Errno> {
    let name = format!("task-{}", seed.handle.tid());
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            super::wait::set_current_waker(seed.handle.waker.clone());
            super::task::set_current_kernel(seed.kernel.clone());
            super::task::set_current_task(seed.handle.clone());
            if let Some(p) = prepare {
                if let Err(e) = p(&mut seed) {
                    tracing::debug!(?e, "task setup failed");
                    return;
                }
            }
            let Some(mm) = seed.mm.take() else {
                tracing::error!("a task started without an address space");
                return;
            };
            let context = match seed.kernel.platform.new_context() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot create a platform context");
                    return;
                }
            };
            seed.handle.set_interrupter(context.interrupter());
            let mut t = Task {
                kernel: seed.kernel,
                handle: seed.handle,
                regs: seed.regs,
                context,
                mm,
                fds: seed.fds,
                fs: seed.fs,
                creds: seed.creds,
                rlimits: seed.rlimits,
                comm: seed.comm,
                clear_child_tid: seed.clear_child_tid,
                robust_list: (0, 0),
                no_new_privs: seed.no_new_privs,
                altstack: seed.altstack,
                saved_mask: None,
                restart: None,
                restart_block: None,
                exit: None,
            };
            t.publish_proc_info();
            if let Some(fp) = &seed.fp {
                if let Err(e) = t.context.set_fp_state(fp) {
                    tracing::warn!(error = %e, "cannot set the FPU state of a new task");
                }
            }
            run::run(&mut t);
            super::exit::exit_task(&mut t);
        })
        .map(|_| ())
        .map_err(|_| Errno::EAGAIN)
}

/// clone(2): a new thread (CLONE_THREAD) or process. Returns the child's tid.
pub fn do_clone(t: &mut Task, a: CloneArgs) -> Result<i32, Errno> {
    let f = a.flags;
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 || f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if f & (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP) != 0 {
        tracing::warn!(flags = format_args!("{f:#x}"), "clone with new namespaces is not supported yet");
        return Err(Errno::EINVAL);
    }
    if f & CLONE_PIDFD != 0 {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel.clone();
    let parent_tg = t.tg().clone();
    if !parent_tg.is_alive() {
        return Err(Errno::EAGAIN);
    }
    let fp = t.context.fp_state().ok();

    let mm = if f & CLONE_VM != 0 {
        t.mm.clone()
    } else {
        let as_ = k.platform.new_address_space().map_err(|e| {
            tracing::error!(error = %e, "cannot create an address space for fork");
            // The host's pids limit for the sandbox: fork's EAGAIN, as at the guest's own.
            match e {
                rvisor_platform::PlatformError::Host { ref source, .. }
                    if source.raw_os_error() == Some(libc::EAGAIN) => Errno::EAGAIN,
                _ => Errno::ENOMEM,
            }
        })?;
        let child = t.mm.fork(as_)?;
        // The parent's thread may have set up mappings in the child's address space; it
        // never runs there, so give its stub thread back.
        child.address_space().release_current_thread();
        Arc::new(child)
    };
    let fds = if f & CLONE_FILES != 0 { t.fds.clone() } else { Arc::new(Mutex::new(t.fds().clone())) };
    let fs = if f & CLONE_FS != 0 { t.fs.clone() } else { Arc::new(Mutex::new(t.fs().clone())) };
    let tid = k.alloc_tid();

    let tg = if f & CLONE_THREAD != 0 {
        parent_tg.clone()
    } else {
        let handlers = if f & CLONE_SIGHAND != 0 {
            parent_tg.handlers()
        } else {
            let copy = *parent_tg.handlers().lock().unwrap_or_else(|p| p.into_inner());
            Arc::new(Mutex::new(copy))
        };
        let parent = if f & CLONE_PARENT != 0 { parent_tg.parent() } else { Some(parent_tg.clone()) };
        let (pgid, sid) = {
            let g = parent_tg.lock();
            (g.pgid, g.sid)
        };
        let weak = parent.as_ref().map(Arc::downgrade).unwrap_or_default();
        let tg = ThreadGroup::new(tid, weak, pgid, sid, a.exit_signal, handlers);
        // The exec generation of the parent the new group reports to (with CLONE_PARENT,
        // the creator's own parent: the creator's record of it).
        tg.lock().parent_exec_id = if f & CLONE_PARENT != 0 {
            parent_tg.lock().parent_exec_id
        } else {
            parent_tg.self_exec_id.load(std::sync::atomic::Ordering::Relaxed)
        };
        for (mine, theirs) in [(&tg.oom_score_adj, &parent_tg.oom_score_adj), (&tg.oom_score_adj_min, &parent_tg.oom_score_adj_min)] {
            mine.store(theirs.load(std::sync::atomic::Ordering::Relaxed), std::sync::atomic::Ordering::Relaxed);
        }
        tg
    };
    if f & CLONE_VM != 0 && f & CLONE_THREAD == 0 {
        tg.cpu_untracked.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let handle = TaskHandle::new(tid, tg.clone(), t.sigmask());
    let parent_info = t.handle.proc_info();
    handle.update_proc_info(|p| {
        p.exe = parent_info.exe;
        p.args = parent_info.args;
    });

    let mut regs = t.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    if f & CLONE_SETTLS != 0 {
        if a.tls >= 0x0000_7fff_ffff_f000 {
            return Err(Errno::EPERM);
        }
        regs.fs_base = a.tls;
    }
    if f & CLONE_PARENT_SETTID != 0 {
        t.mm.write_obj(a.parent_tid, &tid)?;
    }
    if f & CLONE_CHILD_SETTID != 0 {
        mm.write_obj(a.child_tid, &tid)?;
    }
    // A new thread sharing the address space starts without the parent's alternate stack
    // (it would share it); vfork and fork keep it.
    let altstack = if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
        SigAltStack { ss_sp: 0, ss_flags: SS_DISABLE, __pad: 0, ss_size: 0 }
    } else {
        t.altstack
    };
    let rlimits = if f & CLONE_THREAD != 0 { t.rlimits.clone() } else { Arc::new(Mutex::new(*t.rlimits.lock().unwrap_or_else(|p| p.into_inner()))) };

    // Publish the task before it can run, so signals and waits can find it.
    {
        let mut tables = k.tables();
        // The container's pids limit counts tasks, like the pids cgroup.
        if k.control.pids_exceeded(tables.tasks.len()) {
            return Err(Errno::EAGAIN);
        }
        let mut g = tg.lock();
        if !matches!(g.state, TgState::Running) {
            return Err(Errno::EAGAIN);
        }
        g.threads.push(handle.clone());
        drop(g);
        tables.tasks.insert(tid, handle.clone());
        if f & CLONE_THREAD == 0 {
            tables.groups.insert(tid, tg.clone());
            if let Some(p) = tg.parent() {
                p.lock().children.push(tg.clone());
            }
        }
    }
    let seed = TaskSeed {
        kernel: k.clone(),
        handle: handle.clone(),
        regs,
        fp,
        mm: Some(mm),
        fds,
        fs,
        creds: t.creds.clone(),
        rlimits,
        comm: t.comm.clone(),
        clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 { a.child_tid } else { 0 },
        altstack,
        no_new_privs: t.no_new_privs,
    };
    if let Err(e) = spawn(seed, None) {
        unpublish(&k, &tg, &handle, f & CLONE_THREAD == 0);
        return Err(e);
    }
    if f & CLONE_VFORK != 0 {
        wait_vfork(&tg, &parent_tg);
    }
    Ok(tid)
}

fn unpublish(k: &Kernel, tg: &Arc<ThreadGroup>, handle: &Arc<TaskHandle>, new_group: bool) {
    let mut tables = k.tables();
    tables.tasks.remove(&handle.tid());
    tg.lock().threads.retain(|h| !Arc::ptr_eq(h, handle));
    if new_group {
        tables.groups.remove(&tg.tgid);
        if let Some(p) = tg.parent() {
            p.lock().children.retain(|c| !Arc::ptr_eq(c, tg));
        }
    }
}

/// The vfork parent sleeps until the child execs or exits; only the parent's own death
/// ends the wait early. Signals that arrive meanwhile are handled afterwards.
fn wait_vfork(child: &Arc<ThreadGroup>, parent: &Arc<ThreadGroup>) {
    let me = super::wait::current_waker();
    let mut interrupted = false;
    loop {
        let r = super::wait::block_on(&[&child.state_events, &parent.state_events], None, || {
            let g = child.lock();
            (g.vfork_done || !matches!(g.state, TgState::Running) || parent.exit_status().is_some()).then_some(Ok(()))
        });
        if r.is_ok() {
            break;
        }
        interrupted = true;
        me.clear_interrupt();
    }
    if interrupted {
        me.interrupt();
    }
}
