//! `rvisor run`: create + start; without `--detach` it waits for the init and exits with its
//! status, then deletes the container.

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
