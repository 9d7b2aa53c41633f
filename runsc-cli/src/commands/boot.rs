//! `rvisor boot` (internal): the sandbox process, running the sentry.

use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::Context;
use rvisor_sentry::boot::{run_sandbox, BootSpec};

#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// Fd of the sandbox end of the gofer connection.
    #[arg(long = "gofer-fd")]
    gofer_fd: i32,
    /// The sandbox spec, as JSON.
    #[arg(long)]
    spec: String,
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

pub fn run(g: &crate::GlobalFlags, args: BootArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "boot");
    let spec: BootSpec = serde_json::from_str(&args.spec).context("boot: invalid spec")?;
    if args.gofer_fd < 3 {
        anyhow::bail!("boot: invalid gofer fd");
    }
    // SAFETY: the CLI passed this fd to us for our exclusive use.
    let gofer = unsafe { OwnedFd::from_raw_fd(args.gofer_fd) };
    let stdio = [dup_stdio(0)?, dup_stdio(1)?, dup_stdio(2)?];
    match run_sandbox(spec, gofer, stdio) {
        Ok(status) => {
            tracing::info!(?status, "sandbox exited");
            Ok(status.shell_code())
        }
        Err(e) => {
            tracing::error!(error = %e, "sandbox failed to start");
            eprintln!("rvisor: {e}");
            Ok(e.exit_code())
        }
    }
}
