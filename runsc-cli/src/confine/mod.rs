//! The sandbox process (`rvisor boot`) confines itself before it serves untrusted input.
//! The CLI starts it as pid 1 of a new PID namespace (`spawn::spawn_sandbox`); it then
//! makes new mount, IPC and UTS namespaces and an empty read-only root ([`fs`]), enters a
//! user namespace where it is host nobody ([`userns`], where available), drops every
//! capability it does not need ([`caps`]), sets no_new_privs, and installs a seccomp
//! allow-list ([`seccomp`]) on every thread right before init is created, so before the
//! first guest instruction runs.

pub mod caps;
pub mod fs;
pub mod seccomp;
pub mod userns;

/// Failures of confining the sandbox process.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no directory to mount the sandbox's root on (tried /tmp, /run, /mnt, /dev)")]
    NoMountPoint,
    #[error(
        "the sandbox process already runs {0} threads; it must confine itself while it has one"
    )]
    Threads(usize),
    #[error("the host's /proc is not usable to map the user namespace's ids")]
    NoProc,
    #[error("mapping the user namespace's ids: {0}")]
    IdMap(&'static str),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
}

/// What the confinement depends on.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `--network=host`: guest sockets are host sockets (socket calls and CAP_NET_RAW,
    /// CAP_NET_BIND_SERVICE stay).
    pub host_network: bool,
    /// `RVISOR_SECCOMP_AUDIT=1`: the filter logs what it would kill (see `dmesg`).
    pub audit: bool,
}

impl Options {
    pub fn from_env(host_network: bool) -> Options {
        Options {
            host_network,
            audit: std::env::var("RVISOR_SECCOMP_AUDIT").is_ok_and(|v| v == "1"),
        }
    }

    /// Whether the sandbox process gets its own user namespace (when it runs as root): not
    /// with the host's network (see [`userns`]).
    pub fn user_namespace(&self) -> bool {
        !self.host_network
    }
}

fn threads() -> usize {
    // The process still sees the host's /proc here.
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// Namespaces, the empty root, capabilities and no_new_privs. Call while the process has
/// a single thread, after everything that needs a host path (the control socket) is open.
/// A sandbox started by an unprivileged user cannot make namespaces or mounts and has no
/// capabilities to drop: it only gets no_new_privs (and later the seccomp filter).
pub fn confine_process(opts: Options) -> Result<(), ConfineError> {
    pid1_signals()?;
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } == 0 {
        let n = threads();
        if n > 1 {
            return Err(ConfineError::Threads(n));
        }
        // The helper that maps the user namespace's ids is forked while the process still
        // is host root and sees the host's /proc.
        let mapper = if opts.user_namespace() {
            Some(userns::prepare()?)
        } else {
            None
        };
        if let Err(e) = fs::enter_empty_root() {
            if let Some(m) = mapper {
                m.cancel();
            }
            return Err(e);
        }
        if let Some(m) = mapper {
            m.enter()?;
        }
        caps::drop_all_but(&caps::kept(opts.host_network))?;
    } else {
        tracing::warn!(
            "boot: not root; the sandbox process keeps the caller's namespaces and root"
        );
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(ConfineError::Sys {
            what: "no_new_privs",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The signals whose default action ends a process and that someone on the host may send
/// the sandbox process (a terminal's SIGINT/SIGHUP/SIGQUIT to `rvisor do`'s process group,
/// `kill PID`). As pid 1 of its PID namespace, the kernel discards those it has no
/// handler for (only SIGKILL and SIGSTOP reach it from the parent namespace).
const PID1_FATAL_SIGNALS: [i32; 13] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; it ends every thread, and with pid 1 gone the
    // kernel kills every stub of the namespace.
    unsafe { libc::_exit(128 + sig) }
}

/// Keeps the sandbox process killable as it was before it became pid 1 of its own PID
/// namespace: each signal of [`PID1_FATAL_SIGNALS`] gets a handler that ends the process
/// with status 128 + the signal (what a shell reports for a death by that signal; the
/// CLI's exit status stays the same). Nothing changes for a process that is not pid 1.
/// Signals the kernel forces (a fault, SIGSYS from the seccomp filter) kill pid 1 anyway.
/// The stubs inherit the handlers but never run them: a host signal stopping a traced stub
/// is dropped by the platform.
pub fn pid1_signals() -> Result<(), ConfineError> {
    // SAFETY: getpid has no arguments.
    if unsafe { libc::getpid() } != 1 {
        return Ok(());
    }
    for sig in PID1_FATAL_SIGNALS {
        // SAFETY: an all-zero sigaction is a valid value to fill in.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = exit_on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `sa.sa_mask` is a live sigset_t; sigemptyset only writes it.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is a valid sigaction whose handler only calls _exit.
        if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
            return Err(ConfineError::Sys {
                what: "installing the pid-1 signal handlers",
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// The hook `run_sandbox` calls right before it creates init: installs the seccomp filter
/// on every thread of the sandbox process.
pub fn seccomp_hook(opts: Options) -> Box<dyn FnOnce() -> Result<(), String> + Send> {
    Box::new(move || {
        seccomp::install(opts.host_network, opts.audit).map_err(|e| e.to_string())?;
        tracing::info!(
            audit = opts.audit,
            host_network = opts.host_network,
            "boot: seccomp filter installed"
        );
        Ok(())
    })
}

/// Waits for the sandbox process `pid` (a child of the calling CLI) and, if a signal
/// killed it, says which; SIGSYS is named as the seccomp filter's doing. `None` when it
/// is not our child or exited normally.
pub fn sandbox_death(pid: i32) -> Option<String> {
    let mut status = 0;
    // Its control connection just broke; give it a moment to become a zombie, but never
    // block on a sandbox that still runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        // SAFETY: waitpid writes one int to a live local; it fails with ECHILD for a
        // process that is not our child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 || std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if !libc::WIFSIGNALED(status) {
        return None;
    }
    Some(describe_signal(libc::WTERMSIG(status)))
}

/// How a signal that killed the sandbox process is reported.
pub fn describe_signal(sig: i32) -> String {
    if sig == libc::SIGSYS {
        "the sandbox process was killed by SIGSYS: it made a host syscall its seccomp filter forbids (see `rvisor help seccomp`)".into()
    } else {
        format!("the sandbox process died of signal {sig}")
    }
}
