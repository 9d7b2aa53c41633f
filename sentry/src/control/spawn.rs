//! Starting a new process in the sandbox from outside: init at boot and `Exec` requests.
//! Like a process that enters a container from the host, it has no parent in the sandbox
//! (its ppid is 0) and leads a new session.

use std::sync::{Arc, Mutex, Weak};

use rvisor_syscalls::flags::rlimit::RLIM_NLIMITS;
use rvisor_syscalls::flags::signal::SS_DISABLE;
use rvisor_syscalls::types::{Rlimit, SigAction, SigAltStack, SigSet};
use rvisor_syscalls::Errno;

use super::state::Gate;
use crate::kernel::clone::{spawn, Prepare, TaskSeed};
use crate::kernel::exec::{find_executable_as, initial_regs, load_image};
use crate::kernel::fdtable::{FdTable, NR_OPEN};
use crate::kernel::task::{default_rlimits, Creds, FsContext};
use rvisor_syscalls::flags::oom::{OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN};
use crate::kernel::{Kernel, TaskHandle, ThreadGroup};
use crate::vfs::Lookup;

/// A process to start.
pub struct NewProcess {
    /// Its pid, from `Kernel::alloc_tid` (init's is 1).
    pub pid: i32,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub creds: Creds,
    pub umask: u32,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    pub no_new_privs: bool,
    /// /proc/PID/oom_score_adj (clamped to -1000..=1000).
    pub oom_score_adj: i32,
    pub fds: FdTable,
    /// Hold the loaded program until this gate opens (`Start` of a created container).
    pub hold: Option<Arc<Gate>>,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("no command given")]
    NoCommand,
    #[error("{path}: {errno}")]
    Exec { path: String, errno: Errno },
    #[error("working directory {path}: {errno}")]
    Cwd { path: String, errno: Errno },
    #[error("the sandbox cannot start a task thread")]
    Thread,
}

impl SpawnError {
    /// The errno to report to the CLI.
    pub fn errno(&self) -> Errno {
        match self {
            SpawnError::NoCommand => Errno::ENOENT,
            SpawnError::Exec { errno, .. } | SpawnError::Cwd { errno, .. } => *errno,
            SpawnError::Thread => Errno::EAGAIN,
        }
    }
}

/// Linux's defaults with `spec`'s limits applied (invalid entries are ignored, and no hard
/// limit of open files beyond the sandbox's fd-table ceiling).
pub fn rlimits_from(spec: &[(u32, u64, u64)]) -> [Rlimit; RLIM_NLIMITS] {
    use rvisor_syscalls::flags::rlimit::RLIMIT_NOFILE;
    let mut r = default_rlimits();
    for &(res, cur, max) in spec {
        let (cur, max) = if res == RLIMIT_NOFILE {
            (cur.min(NR_OPEN), max.min(NR_OPEN))
        } else {
            (cur, max)
        };
        if let Some(slot) = r.get_mut(res as usize) {
            if cur <= max {
                *slot = Rlimit {
                    rlim_cur: cur,
                    rlim_max: max,
                };
            }
        }
    }
    r
}

/// Creates the process on its own host thread and loads its program there; returns once
/// the program is loaded (or failed to load, then the process never existed for anyone).
pub fn spawn_process(kernel: &Arc<Kernel>, p: NewProcess) -> Result<i32, SpawnError> {
    if p.args.first().map_or(true, |a| a.is_empty()) {
        return Err(SpawnError::NoCommand);
    }
    let root = kernel.vfs.root().clone();
    let cwd_path = if p.cwd.is_empty() {
        "/".to_string()
    } else {
        p.cwd.clone()
    };
    let cwd = kernel
        .vfs
        .resolve(
            &Lookup {
                root: &root,
                start: &root,
                follow_last: true,
                creds: None,
            },
            cwd_path.as_bytes(),
        )
        .and_then(|d| {
            if d.inode().is_dir() {
                Ok(d)
            } else {
                Err(Errno::ENOTDIR)
            }
        })
        .map_err(|errno| SpawnError::Cwd {
            path: cwd_path.clone(),
            errno,
        })?;
    let fs = FsContext {
        root,
        cwd,
        umask: p.umask & 0o777,
    };
    let tid = p.pid;
    let handlers = Arc::new(Mutex::new([SigAction::default(); 64]));
    let tg = ThreadGroup::new(tid, Weak::new(), tid, tid, 0, handlers);
    // Set by the runtime (privileged), so it is also the floor the process may return to.
    let _ = tg.set_oom_score_adj(p.oom_score_adj.clamp(OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX), true);
    let handle = TaskHandle::new(tid, tg.clone(), SigSet::default());
    tg.lock().threads.push(handle.clone());
    kernel.control.watch(tid);
    {
        let mut tables = kernel.tables();
        tables.tasks.insert(tid, handle.clone());
        tables.groups.insert(tid, tg.clone());
    }
    let seed = TaskSeed {
        kernel: kernel.clone(),
        handle,
        regs: initial_regs(0, 0),
        fp: None,
        mm: None,
        fds: Arc::new(Mutex::new(p.fds)),
        fs: Arc::new(Mutex::new(fs)),
        creds: p.creds,
        rlimits: Arc::new(Mutex::new(p.rlimits)),
        comm: Vec::new(),
        clear_child_tid: 0,
        altstack: SigAltStack {
            ss_flags: SS_DISABLE,
            ..Default::default()
        },
        no_new_privs: p.no_new_privs,
    };
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), SpawnError>>();
    let k = kernel.clone();
    let (args, env, hold) = (p.args, p.env, p.hold);
    let tg2 = tg.clone();
    let prepare: Prepare = Box::new(move |seed: &mut TaskSeed| {
        let argv: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let envp: Vec<Vec<u8>> = env.iter().map(|e| e.as_bytes().to_vec()).collect();
        let path_env = envp
            .iter()
            .find_map(|e| e.strip_prefix(b"PATH="))
            .map(|p| p.to_vec());
        let fs = seed.fs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let loaded = find_executable_as(&k, &fs, Some(&seed.creds), &argv[0], path_env.as_deref())
            .and_then(|(dentry, execfn)| {
                load_image(&k, &fs, &seed.creds, dentry, execfn, argv, envp)
            });
        match loaded {
            Ok(image) => {
                seed.mm = Some(image.mm);
                seed.regs = image.regs;
                seed.comm = image.comm;
                seed.handle.update_proc_info(|p| {
                    p.exe = image.exe;
                    p.args = image.args;
                });
                let _ = tx.send(Ok(()));
                if let Some(gate) = hold {
                    // A kill before `Start` ends the wait; the run loop then exits at once.
                    gate.wait_open(|| tg2.exit_status().is_some());
                }
                Ok(())
            }
            Err(errno) => {
                let _ = tx.send(Err(SpawnError::Exec {
                    path: args[0].clone(),
                    errno,
                }));
                Err(errno)
            }
        }
    });
    let forget = |k: &Kernel| {
        let mut tables = k.tables();
        tables.tasks.remove(&tid);
        tables.groups.remove(&tid);
    };
    if spawn(seed, Some(prepare)).is_err() {
        forget(kernel);
        return Err(SpawnError::Thread);
    }
    match rx.recv() {
        Ok(Ok(())) => Ok(tid),
        Ok(Err(e)) => {
            forget(kernel);
            kernel.control.unwatch(tid);
            Err(e)
        }
        Err(_) => {
            forget(kernel);
            Err(SpawnError::Thread)
        }
    }
}
