//! `rvisor kill`: sends a signal to the container's init (or every process with --all).

use anyhow::bail;
use rvisor_sentry::control::protocol::Request;

use crate::container::{control, state, util};

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    all: bool,
    /// The container id.
    id: String,
    /// Signal name or number (default SIGTERM).
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

pub fn run(g: &crate::GlobalFlags, args: KillArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "kill");
    let sig = util::parse_signal(&args.signal)?;
    let (_locked, st) = state::lock(&g.root, &args.id)?;
    if st.status() == state::Status::Stopped {
        bail!("container not running");
    }
    match control::call(&g.root, &args.id, &Request::Signal { pid: 0, signal: sig, all: args.all }) {
        Ok(_) => Ok(0),
        Err(e) if sig == libc::SIGKILL => {
            // The sandbox does not answer; SIGKILL still ends it from the host.
            tracing::warn!("kill: {e:#}; killing the sandbox process");
            if util::alive(st.pid, st.pid_start) {
                // SAFETY: kill takes integers; the pid's start time was just checked.
                unsafe { libc::kill(st.pid, libc::SIGKILL) };
            }
            Ok(0)
        }
        Err(e) => Err(e),
    }
}
