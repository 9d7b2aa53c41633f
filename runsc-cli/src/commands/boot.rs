//! `rvisor boot` (internal): the sandbox process, running the sentry.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use anyhow::Context;
use rvisor_sentry::boot::{run_sandbox, BootIo, BootSpec};

#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// Fd of the sandbox end of the gofer connection.
    #[arg(long = "gofer-fd")]
    gofer_fd: i32,
    /// The sandbox spec, as JSON.
    #[arg(long)]
    spec: String,
    /// Listen for control requests (start, exec, wait, kill, ps, ...) on this unix socket.
    #[arg(long = "control-socket")]
    control_socket: Option<PathBuf>,
    /// Fd of the gofer connection of the i-th bind mount (repeatable, in order).
    #[arg(long = "mount-gofer-fd")]
    mount_gofer_fd: Vec<i32>,
    /// Fd that gets one byte once the sandbox is ready (or an error line if it fails).
    #[arg(long = "ready-fd")]
    ready_fd: Option<i32>,
    /// Fd of a donated packet socket, one per ethernet interface of the spec's network
    /// (repeatable, in order).
    #[arg(long = "net-fd")]
    net_fd: Vec<i32>,
}

/// Duplicates a standard fd so the sandbox owns its own copy.
fn dup_stdio(fd: i32) -> anyhow::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) creates a new descriptor that only this OwnedFd owns.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("stdio fd {fd}"));
    }
    // SAFETY: `n` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Takes ownership of an fd the CLI passed (EBADF-checked, made close-on-exec).
fn take_fd(fd: i32, what: &str) -> anyhow::Result<OwnedFd> {
    if fd < 3 {
        anyhow::bail!("boot: invalid {what} fd {fd}");
    }
    // SAFETY: F_SETFD only changes the descriptor's flags; it fails with EBADF if unused.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("boot: {what} fd {fd}"));
    }
    // SAFETY: the CLI passed this fd to us for our exclusive use.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn run(g: &crate::GlobalFlags, args: BootArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "boot");
    let mut io = BootIo {
        control_socket: args.control_socket.clone(),
        debug_control: g.debug_control,
        ..BootIo::default()
    };
    if let Some(fd) = args.ready_fd {
        io.ready = Some(take_fd(fd, "ready")?);
    }
    let result = (|| -> anyhow::Result<(BootSpec, OwnedFd, [OwnedFd; 3])> {
        let spec: BootSpec = serde_json::from_str(&args.spec).context("boot: invalid spec")?;
        let gofer = take_fd(args.gofer_fd, "gofer")?;
        for &fd in &args.mount_gofer_fd {
            io.mount_gofers.push(take_fd(fd, "mount gofer")?);
        }
        for &fd in &args.net_fd {
            io.net_fds.push(take_fd(fd, "packet socket")?);
        }
        let stdio = [dup_stdio(0)?, dup_stdio(1)?, dup_stdio(2)?];
        // Everything that needs a host path is opened; then the process gives up the
        // host's file system, its capabilities and (right before init) most syscalls.
        if let Some(path) = &args.control_socket {
            let l = rvisor_sentry::control::server::bind(path)
                .with_context(|| format!("control socket {}", path.display()))?;
            io.control_listener = Some(l);
        }
        let opts = crate::confine::Options::from_env(spec.network.mode == rvisor_sentry::net::NetworkMode::Host);
        crate::confine::confine_process(opts).context("confining the sandbox")?;
        io.confine = Some(crate::confine::seccomp_hook(opts));
        Ok((spec, gofer, stdio))
    })();
    let (spec, gofer, stdio) = match result {
        Ok(v) => v,
        Err(e) => {
            report_failure(&mut io, &format!("{e:#}"));
            return Err(e);
        }
    };
    match run_sandbox(spec, gofer, stdio, &mut io) {
        Ok(status) => {
            tracing::info!(?status, "sandbox exited");
            Ok(status.shell_code())
        }
        Err(e) => {
            tracing::error!(error = %e, "sandbox failed to start");
            report_failure(&mut io, &e.to_string());
            eprintln!("rvisor: {e}");
            Ok(e.exit_code())
        }
    }
}

/// Writes the error line to the ready fd, if the CLI waits on one.
fn report_failure(io: &mut BootIo, msg: &str) {
    if let Some(fd) = io.ready.take() {
        let mut f = std::fs::File::from(fd);
        let _ = writeln!(f, "{}", msg.replace('\n', " "));
    }
}
