//! Starting a sandbox: the memory file, the platform, the root filesystem from the gofer,
//! and the first process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use rvisor_gofer::GoferClient;
use rvisor_platform::ptrace::PtracePlatform;
use rvisor_platform::Platform;
use rvisor_syscalls::flags::open::O_ACCMODE;
use rvisor_syscalls::Errno;
use serde::{Deserialize, Serialize};

use rvisor_syscalls::flags::signal::SS_DISABLE;
use rvisor_syscalls::types::{Rlimit, SigAction, SigAltStack, SigSet};

use crate::kernel::clone::{spawn, Prepare, TaskSeed};
use crate::kernel::exec::{find_executable, initial_regs, load_image};
use crate::kernel::fdtable::{FdTable, NR_OPEN};
use crate::kernel::task::{default_rlimits, Creds, ExitStatus, FsContext};
use crate::kernel::{Kernel, TaskHandle, ThreadGroup, UtsInfo};
use crate::mm::MemoryFile;
use crate::vfs::devfs::DevDir;
use crate::vfs::mount::MountSpec;
use crate::vfs::proc::{ProcFs, PROC_DEV};
use crate::vfs::synthetic;
use rvisor_syscalls::flags::mount::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_RELATIME};
use crate::vfs::gofer::GoferInode;
use crate::vfs::overlay::Overlay;
use crate::vfs::host::HostStream;
use crate::vfs::tmpfs::Tmpfs;
use crate::vfs::{Dentry, FileDescription, Inode, Lookup, Vfs};

/// What the sandbox runs and how it presents itself. Passed from the CLI to `rvisor boot`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BootSpec {
    /// argv of the first process; argv[0] is looked up in PATH when it has no `/`.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    pub kernel_release: String,
    /// Whether the root filesystem is mounted read-only.
    pub root_read_only: bool,
    /// Give the first process a pseudo-terminal (`rvisor do --tty`): stdin is then the
    /// CLI's console socket, not a stream to import.
    #[serde(default)]
    pub tty: bool,
    /// Whether the root is an overlay: writes land in an in-memory upper layer and the
    /// gofer's tree (served read-only) is never changed. Ignored with `root_read_only`.
    #[serde(default)]
    pub overlay: bool,
    /// Resource limits of the first process, as (resource, soft, hard); the others keep
    /// Linux's defaults for a new init.
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
}

/// Failures of starting the sandbox, each a clear message for a person.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("no command given")]
    NoCommand,
    #[error("{path}: {errno}")]
    Exec { path: String, errno: Errno },
    #[error("cannot create the memory file: {0}")]
    Memory(#[from] crate::mm::MmError),
    #[error("platform: {0}")]
    Platform(#[from] rvisor_platform::PlatformError),
    #[error("root filesystem: {0}")]
    Root(Errno),
    #[error("working directory {path}: {errno}")]
    Cwd { path: String, errno: Errno },
    #[error("importing stdio: {0}")]
    Stdio(std::io::Error),
    #[error("the sandbox's first task thread failed")]
    TaskThread,
}

impl BootError {
    /// The exit status a shell would give for this failure (127 not found, 126 not executable).
    pub fn exit_code(&self) -> i32 {
        match self {
            BootError::Exec { errno, .. } if *errno == Errno::ENOENT || *errno == Errno::ENOTDIR => 127,
            BootError::Exec { .. } => 126,
            _ => 125,
        }
    }
}

/// Runs a sandbox until its first process exits and returns how it ended.
/// `gofer` is the connection to the gofer serving the root; `stdio` become fds 0, 1, 2.
pub fn run_sandbox(spec: BootSpec, gofer: OwnedFd, stdio: [OwnedFd; 3]) -> Result<ExitStatus, BootError> {
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(BootError::NoCommand);
    }
    let memory = MemoryFile::new()?;
    let platform: Arc<dyn Platform> = Arc::new(PtracePlatform::new(memory.fd())?);
    let client = Arc::new(GoferClient::new(gofer));
    let overlay = spec.overlay && !spec.root_read_only;
    let gofer_root = GoferInode::attach(client, memory.clone(), spec.root_read_only || overlay).map_err(BootError::Root)?;
    let root_inode: Arc<dyn Inode> = if overlay {
        Overlay::new_root(gofer_root, memory.clone()).map_err(BootError::Root)?
    } else {
        gofer_root
    };
    let root = Dentry::new_root(root_inode);
    let vfs = Vfs::new(root.clone());
    let mounts = vfs.mounts();
    mounts.set_root_spec(if overlay {
        MountSpec::new("overlay", "overlay", 0)
    } else {
        MountSpec::new("9p", "rvisor", if spec.root_read_only { MS_RDONLY } else { 0 })
    });
    let dev = mounts.mount(&root, b"dev", DevDir::new(), MountSpec::new("tmpfs", "none", MS_NOSUID).options("mode=755"));
    // Private in-memory filesystems: POSIX shared memory (shm_open, sem_open) in /dev/shm,
    // and a writable /tmp — like gVisor, only where the root's /tmp is empty or missing, so
    // files the root has there are never hidden.
    mounts.mount(&dev, b"shm", Tmpfs::new_root(memory.clone(), 0o1777, 0, 0), MountSpec::new("tmpfs", "shm", MS_NOSUID | MS_NODEV).options("mode=1777"));
    if dir_is_empty_or_missing(&root, b"tmp") {
        mounts.mount(&root, b"tmp", Tmpfs::new_root(memory.clone(), 0o1777, 0, 0), MountSpec::new("tmpfs", "tmpfs", 0).options("mode=1777"));
    }
    // The host's /proc and /sys must never be reachable through the gofer: the sandbox's
    // own procfs and sysfs are mounted there.
    let procfs = ProcFs::new(PROC_DEV);
    mounts.mount(&root, b"proc", procfs.root(), MountSpec::new("proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME));
    let sysfs = synthetic::sysfs(crate::syscalls::online_cpus());
    mounts.mount(&root, b"sys", sysfs, MountSpec::new("sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME));
    let uts = UtsInfo { nodename: spec.hostname.clone(), release: spec.kernel_release.clone(), ..UtsInfo::default() };
    let kernel = Kernel::new(platform, memory, vfs, uts);
    procfs.set_kernel(&kernel);

    kernel.vfs.mounts().mount(&dev, b"pts", kernel.devpts.root(), MountSpec::new("devpts", "devpts", MS_NOSUID | MS_NOEXEC).options("gid=5,mode=620,ptmxmode=666"));

    let mut fds = FdTable::new();
    let mut console = None;
    if spec.tty {
        // stdio[0] is the CLI's console socket (see vfs::devpts::console).
        let [sock, _, _] = stdio;
        let (bridge, file) = crate::vfs::devpts::console::attach(&kernel, sock).map_err(BootError::Stdio)?;
        for i in 0..3 {
            fds.install_at(i, file.clone(), false, 3).map_err(|e| BootError::Stdio(std::io::Error::from_raw_os_error(e.0)))?;
        }
        console = Some(bridge);
    } else {
        for (i, fd) in stdio.into_iter().enumerate() {
            let flags = host_access_mode(&fd).map_err(BootError::Stdio)?;
            let file = FileDescription::new(Arc::new(HostStream::new(fd)), None, flags);
            fds.install_at(i as i32, file, false, 3).map_err(|e| BootError::Stdio(std::io::Error::from_raw_os_error(e.0)))?;
        }
    }
    start_init(&kernel, spec, fds)?;
    let status = kernel.wait_for_init();
    if let Some(c) = console {
        c.finish();
    }
    Ok(status)
}
/// Linux's defaults with the spec's limits applied (invalid entries are ignored, and no
/// hard limit of open files beyond the sandbox's fd-table ceiling).
fn initial_rlimits(spec: &[(u32, u64, u64)]) -> [Rlimit; rvisor_syscalls::flags::rlimit::RLIM_NLIMITS] {
    use rvisor_syscalls::flags::rlimit::RLIMIT_NOFILE;
    let mut r = default_rlimits();
    for &(res, cur, max) in spec {
        let (cur, max) = if res == RLIMIT_NOFILE { (cur.min(NR_OPEN), max.min(NR_OPEN)) } else { (cur, max) };
        if let Some(slot) = r.get_mut(res as usize) {
            if cur <= max {
                *slot = Rlimit { rlim_cur: cur, rlim_max: max };
            }
        }
    }
    r
}

/// Whether `parent/name` does not exist or is an empty directory.
fn dir_is_empty_or_missing(parent: &Arc<Dentry>, name: &[u8]) -> bool {
    let Ok(d) = parent.child(name) else { return true };
    if !d.inode().is_dir() {
        return false;
    }
    let Ok(dir) = d.inode().open(rvisor_syscalls::flags::open::O_RDONLY) else { return false };
    match dir.getdents(0, 4096) {
        Ok(entries) => entries.iter().all(|e| e.name == b"." || e.name == b".."),
        Err(_) => false,
    }
}

/// The access mode of a host fd, as open flags.
fn host_access_mode(fd: &OwnedFd) -> std::io::Result<u32> {
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fl as u32 & O_ACCMODE)
}

/// Creates the sandbox's first process (pid 1) on its own host thread and loads its
/// program there; returns once the program is loaded (or failed to load).
fn start_init(kernel: &Arc<Kernel>, spec: BootSpec, fds: FdTable) -> Result<(), BootError> {
    let root = kernel.vfs.root().clone();
    let cwd = kernel
        .vfs
        .resolve(&Lookup { root: &root, start: &root, follow_last: true, creds: None }, spec.cwd.as_bytes())
        .and_then(|d| if d.inode().is_dir() { Ok(d) } else { Err(Errno::ENOTDIR) })
        .map_err(|errno| BootError::Cwd { path: spec.cwd.clone(), errno })?;
    let fs = FsContext { root, cwd, umask: 0o022 };
    let creds = Creds::new(spec.uid, spec.gid, spec.additional_gids.clone());
    let tid = kernel.alloc_tid();
    let handlers = Arc::new(Mutex::new([SigAction::default(); 64]));
    let tg = ThreadGroup::new(tid, Weak::new(), tid, tid, 0, handlers);
    let handle = TaskHandle::new(tid, tg.clone(), SigSet::default());
    tg.lock().threads.push(handle.clone());
    {
        let mut tables = kernel.tables();
        tables.tasks.insert(tid, handle.clone());
        tables.groups.insert(tid, tg);
    }
    let seed = TaskSeed {
        kernel: kernel.clone(),
        handle,
        regs: initial_regs(0, 0),
        fp: None,
        mm: None,
        fds: Arc::new(Mutex::new(fds)),
        fs: Arc::new(Mutex::new(fs)),
        creds,
        rlimits: Arc::new(Mutex::new(initial_rlimits(&spec.rlimits))),
        comm: Vec::new(),
        clear_child_tid: 0,
        altstack: SigAltStack { ss_flags: SS_DISABLE, ..Default::default() },
        no_new_privs: false,
    };
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), BootError>>();
    let k = kernel.clone();
    let prepare: Prepare = Box::new(move |seed: &mut TaskSeed| {
        let argv: Vec<Vec<u8>> = spec.args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let envp: Vec<Vec<u8>> = spec.env.iter().map(|e| e.as_bytes().to_vec()).collect();
        let path_env = envp.iter().find_map(|e| e.strip_prefix(b"PATH=")).map(|p| p.to_vec());
        let fs = seed.fs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let loaded = find_executable(&k, &fs, &argv[0], path_env.as_deref())
            .and_then(|(dentry, execfn)| load_image(&k, &fs, &seed.creds, dentry, execfn, argv, envp));
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
                Ok(())
            }
            Err(errno) => {
                let _ = tx.send(Err(BootError::Exec { path: spec.args[0].clone(), errno }));
                Err(errno)
            }
        }
    });
    spawn(seed, Some(prepare)).map_err(|_| BootError::TaskThread)?;
    rx.recv().map_err(|_| BootError::TaskThread)?
}
