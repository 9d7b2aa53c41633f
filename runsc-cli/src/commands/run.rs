//! `rvisor run`: create + start; without `--detach` it waits for the init and exits with its
//! status, then deletes the container. In the foreground it forwards the signals it gets
//! (SIGTERM, SIGINT, SIGHUP, ...) to the container's init, as runc does.

use std::path::PathBuf;

use rvisor_sentry::control::protocol::{Request, Response};

use crate::container::lifecycle::{self, InitStdio};
use crate::container::{control, state, util};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// File to write the container's pid into.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Return once the container runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Keep the container's state after it exits (foreground only).
    #[arg(long = "keep")]
    keep: bool,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
}

pub fn run(g: &crate::GlobalFlags, args: RunArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "run");
    let stdio = match &args.console_socket {
        Some(p) => InitStdio::ConsoleSocket(p),
        None => InitStdio::Inherit,
    };
    // Signals that come while the container is being made wait in the pipe and are
    // forwarded once it runs.
    let forward = if args.detach { None } else { Some(signals::catch()?) };
    lifecycle::create(g, &args.id, &args.bundle, args.pid_file.as_deref(), stdio)?;
    if args.detach {
        lifecycle::start(g, &args.id)?;
        return Ok(0);
    }
    // The wait goes out before the start: a command that exits at once must not end the
    // sandbox before anyone asked for its status.
    let waiter = control::Conn::connect(&state::control_socket(&g.root, &args.id)).and_then(|mut c| {
        c.send(&Request::Wait { pid: 1 }, &[])?;
        Ok(c)
    });
    let started = waiter.and_then(|w| lifecycle::start(g, &args.id).map(|()| w));
    if let (Ok(_), Some(pipe)) = (&started, forward) {
        signals::forward(pipe, state::control_socket(&g.root, &args.id));
    }
    let mut oom = false;
    let code = match started.and_then(|mut w| w.receive().map(|r| (r, w))) {
        Ok((Response::Exited { status }, mut w)) => {
            // The sandbox lingers while this connection is open: ask whether its OOM
            // killer acted.
            oom = lifecycle::sandbox_oom_killed(&mut w);
            util::status_code(status)
        }
        Ok((other, _)) => {
            eprintln!("rvisor: run: unexpected answer {other:?}");
            1
        }
        Err(e) => {
            eprintln!("rvisor: run: {e:#}");
            // The sandbox is our child (create spawned it): say how it died.
            if let Some(why) = state::lock(&g.root, &args.id).ok().and_then(|(_, st)| crate::confine::sandbox_death(st.pid)) {
                eprintln!("rvisor: run {}: {why}", args.id);
            }
            1
        }
    };
    if oom {
        eprintln!("rvisor: run {}: the container went over its memory limit; the OOM killer ended a process", args.id);
    }
    if args.keep && oom {
        if let Ok((locked, mut st)) = state::lock(&g.root, &args.id) {
            st.oom_killed = true;
            locked.save(&st)?;
        }
    }
    if !args.keep {
        if let Ok((locked, st)) = state::lock(&g.root, &args.id) {
            lifecycle::destroy(g, locked, &st)?;
        }
    }
    Ok(code)
}

/// Forwarding the signals `rvisor run` gets to the container's init: a handler writes the
/// signal number into a pipe (the only thing it may safely do), and a thread reads the pipe
/// and sends each signal over the control socket.
mod signals {
    use std::io::Read;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicI32, Ordering};

    use anyhow::Context;
    use rvisor_sentry::control::protocol::Request;

    use crate::container::control;

    /// The signals forwarded: all a user or supervisor sends to stop, reload or notify a
    /// process, and job control (SIGCHLD, SIGPIPE and the synchronous ones are the CLI's own).
    const FORWARDED: &[i32] = &[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGWINCH,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGIO,
        libc::SIGPWR,
    ];

    /// The write end of the pipe, for the handler.
    static PIPE_W: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(sig: libc::c_int) {
        let fd = PIPE_W.load(Ordering::Relaxed);
        if fd >= 0 {
            // Every forwarded signal number fits in a byte.
            let b = sig as u8;
            // SAFETY: __errno_location returns this thread's errno slot, always valid;
            // the interrupted code must not see the handler's errno, so it is restored.
            // write is async-signal-safe and `b` a live byte; a full pipe (the write end is
            // non-blocking) drops the signal rather than block the handler.
            unsafe {
                let errno = libc::__errno_location();
                let saved = *errno;
                libc::write(fd, (&b as *const u8).cast(), 1);
                *errno = saved;
            }
        }
    }

    /// Installs the handlers; returns the pipe's read end, which holds the signals caught.
    /// Handlers (unlike a blocked mask) are reset by exec, so the sandbox and gofers the
    /// CLI starts afterwards do not inherit them.
    pub fn catch() -> anyhow::Result<OwnedFd> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("signal pipe")?;
        nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).context("signal pipe")?;
        // The write end lives as long as the process: the handler may run at any time.
        PIPE_W.store(w.as_raw_fd(), Ordering::Relaxed);
        std::mem::forget(w);
        for &sig in FORWARDED {
            // SAFETY: an all-zero sigaction is a valid value to fill in.
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            // SAFETY: `sa.sa_mask` is a live sigset_t; sigemptyset only writes it.
            unsafe { libc::sigemptyset(&mut sa.sa_mask) };
            // SAFETY: `sa` is a valid sigaction whose handler only calls async-signal-safe
            // functions; the old action is not wanted.
            if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
                return Err(std::io::Error::last_os_error()).context("installing the signal handlers");
            }
        }
        Ok(r)
    }

    /// Starts the thread that sends each caught signal to the container's init through the
    /// control socket at `socket`, until the process ends.
    pub fn forward(pipe: OwnedFd, socket: PathBuf) {
        let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
            let mut pipe = std::fs::File::from(pipe);
            let mut conn = None;
            let mut buf = [0u8; 64];
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "run: signal pipe");
                        return;
                    }
                };
                for &sig in &buf[..n] {
                    let signal = i32::from(sig);
                    if conn.is_none() {
                        conn = control::Conn::connect(&socket).ok();
                    }
                    let req = Request::Signal { pid: 0, signal, all: false };
                    match conn.as_mut().map(|c| c.call(&req, &[])) {
                        Some(Ok(_)) => tracing::debug!(signal, "run: signal forwarded"),
                        Some(Err(e)) => {
                            // The container has exited, or is going; the next signal tries
                            // a new connection.
                            tracing::debug!(signal, error = %format!("{e:#}"), "run: signal not forwarded");
                            conn = None;
                        }
                        None => tracing::debug!(signal, "run: the sandbox does not answer; signal not forwarded"),
                    }
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("rvisor: run: cannot forward signals to the container: {e}");
        }
    }
}
