//! Starting a sandbox: the memory file, the platform, the root filesystem from the gofer,
//! and the first process.

mod mounts;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use rvisor_gofer::GoferClient;
use rvisor_platform::ptrace::PtracePlatform;
use rvisor_platform::Platform;
use rvisor_syscalls::flags::open::O_ACCMODE;
use rvisor_syscalls::Errno;
use serde::{Deserialize, Serialize};

use crate::control::server::ServerState;
use crate::control::spawn::{rlimits_from, spawn_process, NewProcess, SpawnError};
use crate::control::state::Gate;
use crate::kernel::fdtable::FdTable;
use crate::kernel::task::{Creds, ExitStatus};
use crate::kernel::{Kernel, UtsInfo};
use crate::mm::MemoryFile;
use crate::vfs::devfs::DevDir;
use crate::vfs::mount::MountSpec as VfsMount;
use crate::vfs::proc::{ProcFs, PROC_DEV};
use rvisor_syscalls::flags::mount::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_RELATIME};
use crate::vfs::gofer::GoferInode;
use crate::vfs::overlay::Overlay;
use crate::vfs::host::HostStream;
use crate::vfs::tmpfs::Tmpfs;
use crate::vfs::{Dentry, FileDescription, Inode, Vfs};

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
    /// Load init but hold it until a control `Start` request.
    #[serde(default)]
    pub wait_for_start: bool,
    /// The file-mode creation mask of init.
    #[serde(default = "default_umask")]
    pub umask: u32,
    #[serde(default)]
    pub no_new_privs: bool,
    /// Capability sets of init; `None` = all capabilities for uid 0, none for others.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Mounts applied after the root, in config.json order.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Emulated sysctl values, shown under /proc/sys.
    #[serde(default)]
    pub sysctl: Vec<(String, String)>,
    /// Most tasks the sandbox may hold: fork/clone beyond it fail with EAGAIN.
    #[serde(default)]
    pub pids_limit: Option<u64>,
    /// Bytes of guest memory the sandbox may use before the OOM killer acts.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// Create a missing working directory (and its parents) in the root, as runc does for
    /// an OCI bundle's `process.cwd`; otherwise a missing one is an error.
    #[serde(default)]
    pub create_cwd: bool,
    /// The network: mode, interfaces, addresses and routes (default: the sentry's stack
    /// with loopback only).
    #[serde(default = "default_network")]
    pub network: crate::net::NetworkSpec,
}

fn default_network() -> crate::net::NetworkSpec {
    crate::net::NetworkSpec::loopback_only(crate::net::NetworkMode::Sandbox)
}

fn default_umask() -> u32 {
    0o022
}

impl Default for BootSpec {
    fn default() -> Self {
        BootSpec {
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            hostname: String::new(),
            kernel_release: crate::DEFAULT_KERNEL_RELEASE.into(),
            root_read_only: false,
            tty: false,
            overlay: false,
            rlimits: Vec::new(),
            wait_for_start: false,
            umask: default_umask(),
            no_new_privs: false,
            capabilities: None,
            mounts: Vec::new(),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            sysctl: Vec::new(),
            pids_limit: None,
            memory_limit: None,
            oom_score_adj: None,
            create_cwd: false,
            network: default_network(),
        }
    }
}

pub use crate::control::protocol::Capabilities;

/// One mount of config.json, applied inside the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub destination: String,
    pub kind: MountKind,
    /// config.json's option strings: "ro", "nosuid", "mode=755", "size=65536k", ...
    #[serde(default)]
    pub options: Vec<String>,
}

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    Tmpfs,
    Proc,
    Sysfs,
    Devpts,
    Mqueue,
    Cgroup,
    /// A bind mount served by the i-th extra gofer (`--mount-gofer-fd`).
    Bind { gofer: usize },
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
    #[error("control socket: {0}")]
    Control(String),
    #[error("{0}")]
    Mount(String),
    #[error("{0}")]
    Network(String),
    #[error("confining the sandbox: {0}")]
    Confine(String),
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

/// The host side of a sandbox besides the root's gofer and stdio: bind-mount gofers, the
/// control socket and the readiness pipe.
#[derive(Default)]
pub struct BootIo {
    /// Connections of the gofers serving `BootSpec.mounts` with `MountKind::Bind`, by index.
    pub mount_gofers: Vec<OwnedFd>,
    /// Where the control server listens.
    pub control_socket: Option<PathBuf>,
    /// Gets one byte once the control socket listens and init is loaded. Left in place
    /// when the boot fails, for the caller to write the error.
    pub ready: Option<OwnedFd>,
    /// Donated packet sockets, one per ethernet interface of `BootSpec.network`, in order.
    pub net_fds: Vec<OwnedFd>,
    /// An already bound control socket (bound before the sandbox gave up the host's file
    /// system); takes the place of binding `control_socket`.
    pub control_listener: Option<std::os::unix::net::UnixListener>,
    /// Called once the sandbox is set up, right before init is created: the sandbox
    /// process confines itself (its seccomp filter) before any guest code can run.
    pub confine: Option<Box<dyn FnOnce() -> Result<(), String> + Send>>,
    /// Serve the debug control requests (`Request::DebugHostSyscall`); tests only.
    pub debug_control: bool,
}

/// Runs a sandbox until its first process exits and returns how it ended.
/// `gofer` is the connection to the gofer serving the root; `stdio` become fds 0, 1, 2.
pub fn run_sandbox(spec: BootSpec, gofer: OwnedFd, stdio: [OwnedFd; 3], io: &mut BootIo) -> Result<ExitStatus, BootError> {
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(BootError::NoCommand);
    }
    let listener = match (io.control_listener.take(), &io.control_socket) {
        (Some(l), _) => Some(l),
        (None, Some(path)) => Some(crate::control::server::bind(path).map_err(|e| BootError::Control(format!("{}: {e}", path.display())))?),
        (None, None) => None,
    };
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
        VfsMount::new("overlay", "overlay", 0)
    } else {
        VfsMount::new("9p", "rvisor", if spec.root_read_only { MS_RDONLY } else { 0 })
    });
    let dev = mounts.mount(&root, b"dev", DevDir::new(), VfsMount::new("tmpfs", "none", MS_NOSUID).options("mode=755"));
    // Private in-memory filesystems: POSIX shared memory (shm_open, sem_open) in /dev/shm,
    // and a writable /tmp — like gVisor, only where the root's /tmp is empty or missing, so
    // files the root has there are never hidden.
    mounts.mount(&dev, b"shm", Tmpfs::new_root(memory.clone(), 0o1777, 0, 0), VfsMount::new("tmpfs", "shm", MS_NOSUID | MS_NODEV).options("mode=1777"));
    if dir_is_empty_or_missing(&root, b"tmp") {
        mounts.mount(&root, b"tmp", Tmpfs::new_root(memory.clone(), 0o1777, 0, 0), VfsMount::new("tmpfs", "tmpfs", 0).options("mode=1777"));
    }
    // The host's /proc and /sys must never be reachable through the gofer: the sandbox's
    // own procfs and sysfs are mounted there.
    let procfs = ProcFs::new(PROC_DEV);
    mounts.mount(&root, b"proc", procfs.root(), VfsMount::new("proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME));
    let sysfs = mounts::sysfs();
    mounts.mount(&root, b"sys", sysfs, VfsMount::new("sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME));
    let uts = UtsInfo { nodename: spec.hostname.clone(), release: spec.kernel_release.clone(), ..UtsInfo::default() };
    let kernel = Kernel::new(platform, memory, vfs, uts);
    crate::vfs::proc::system::apply_spec(&kernel, &spec.sysctl);
    let net = crate::net::create(spec.network.clone(), std::mem::take(&mut io.net_fds)).map_err(|e| BootError::Network(e.to_string()))?;
    kernel.set_network(net);
    procfs.set_kernel(&kernel);

    kernel.vfs.mounts().mount(&dev, b"pts", kernel.devpts.root(), VfsMount::new("devpts", "devpts", MS_NOSUID | MS_NOEXEC).options("gid=5,mode=620,ptmxmode=666"));
    {
        use std::sync::atomic::Ordering::Relaxed;
        kernel.control.pids_limit.store(spec.pids_limit.unwrap_or(0), Relaxed);
        kernel.control.memory_limit.store(spec.memory_limit.unwrap_or(0), Relaxed);
    }
    let mut gofers: Vec<Option<Arc<GoferClient>>> = std::mem::take(&mut io.mount_gofers).into_iter().map(|fd| Some(Arc::new(GoferClient::new(fd)))).collect();
    mounts::apply(&kernel, &spec.mounts, &mut gofers, (spec.memory_limit, spec.pids_limit)).map_err(|e| BootError::Mount(e.to_string()))?;
    mounts::mask(&kernel, &spec.masked_paths);
    mounts::make_read_only(&kernel, &spec.readonly_paths);

    // Init is pid 1: its id is taken before any other task exists.
    let init_pid = kernel.alloc_tid();
    let mut fds = FdTable::new();
    let mut console = None;
    if spec.tty {
        let [tty_fd, _, _] = stdio;
        // A host terminal (the OCI console's replica), or `rvisor do`'s console socket.
        let (bridge, file) = if crate::vfs::devpts::console::is_host_tty(&tty_fd) {
            crate::vfs::devpts::console::attach_host_tty(&kernel, tty_fd, init_pid, true)
        } else {
            crate::vfs::devpts::console::attach(&kernel, tty_fd)
        }
        .map_err(BootError::Stdio)?;
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
    let server = ServerState::new();
    if !spec.wait_for_start {
        server.mark_started();
    }
    if spec.create_cwd {
        mounts::make_dir(&kernel, &spec.cwd).map_err(|errno| BootError::Cwd { path: spec.cwd.clone(), errno })?;
    }
    server.set_debug_control(io.debug_control);
    if let Some(confine) = io.confine.take() {
        confine().map_err(BootError::Confine)?;
    }
    start_init(&kernel, &spec, init_pid, fds, spec.wait_for_start.then(|| server.start_gate.clone()))?;
    if let Some(l) = listener {
        crate::control::server::serve(kernel.clone(), server.clone(), l).map_err(|e| BootError::Control(e.to_string()))?;
    }
    if spec.memory_limit.is_some() {
        crate::control::oom::start_monitor(&kernel);
    } else {
        crate::kernel::membudget::set_memory_limit(0);
    }
    if let Some(fd) = io.ready.take() {
        let mut f = std::fs::File::from(fd);
        let _ = std::io::Write::write_all(&mut f, b"\0");
    }
    let status = kernel.wait_for_init();
    server.drain_init_waiters();
    if let Some(c) = console {
        c.finish();
    }
    Ok(status)
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
/// program there; returns once the program is loaded (or failed to load). With `hold`,
/// the program waits for that gate (a `Start` request) before it runs.
fn start_init(kernel: &Arc<Kernel>, spec: &BootSpec, pid: i32, fds: FdTable, hold: Option<Arc<Gate>>) -> Result<(), BootError> {
    let mut creds = Creds::new(spec.uid, spec.gid, spec.additional_gids.clone());
    crate::control::caps::apply_spec(&mut creds, spec.capabilities.as_ref());
    let p = NewProcess {
        pid,
        args: spec.args.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        creds,
        umask: spec.umask,
        rlimits: rlimits_from(&spec.rlimits),
        no_new_privs: spec.no_new_privs,
        oom_score_adj: spec.oom_score_adj.unwrap_or(0),
        fds,
        hold,
    };
    spawn_process(kernel, p).map(|_| ()).map_err(|e| match e {
        SpawnError::NoCommand => BootError::NoCommand,
        SpawnError::Exec { path, errno } => BootError::Exec { path, errno },
        SpawnError::Cwd { path, errno } => BootError::Cwd { path, errno },
        SpawnError::Thread => BootError::TaskThread,
    })
}
