//! `rvisor do`: run a command in a fresh sandbox over the host's root (behind an in-memory
//! overlay by default, so the host tree is never changed) or a
//! given root directory, without an OCI bundle.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;

use anyhow::{bail, Context};
use rvisor_sentry::boot::BootSpec;

use crate::spawn::{global_args, inherit_fds, self_command};

#[derive(Debug, clap::Args)]
pub struct DoArgs {
    /// Root directory of the sandbox (default: the host's /).
    #[arg(long)]
    rootfs: Option<String>,
    /// Working directory inside the sandbox (default: the current directory when the root
    /// is the host's, else /).
    #[arg(long)]
    cwd: Option<String>,
    /// Let the sandbox write to its root directory: the same as the global
    /// `--overlay=none`.
    #[arg(long, conflicts_with = "read_only")]
    writable: bool,
    /// Mount the root read-only, without an overlay: every write to it fails with EROFS
    /// (what an OCI bundle with `root.readonly: true` gets).
    #[arg(long)]
    read_only: bool,
    /// Give the command a pseudo-terminal as its stdio and controlling terminal (the
    /// host terminal, if stdin is one, is put in raw mode while it runs).
    #[arg(long, short = 't')]
    tty: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn open_dir(path: &str) -> anyhow::Result<OwnedFd> {
    let dir = std::fs::File::open(path).with_context(|| format!("do: rootfs {path}"))?;
    if !dir.metadata().with_context(|| format!("do: rootfs {path}"))?.is_dir() {
        bail!("do: rootfs {path}: not a directory");
    }
    Ok(dir.into())
}

/// The caller's resource limits, as (resource, soft, hard).
fn caller_rlimits() -> Vec<(u32, u64, u64)> {
    (0..rvisor_syscalls::flags::rlimit::RLIM_NLIMITS as u32)
        .filter_map(|res| {
            let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: `r` is a valid out-pointer; an unknown resource only fails the call.
            (unsafe { libc::getrlimit(res as _, &mut r) } == 0).then_some((res, r.rlim_cur, r.rlim_max))
        })
        .collect()
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

pub fn run(g: &crate::GlobalFlags, args: DoArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "do");
    if args.command.is_empty() {
        eprintln!("rvisor: do: no command given (usage: rvisor do [FLAGS] CMD [ARGS...])");
        return Ok(2);
    }
    if g.platform != "ptrace" {
        bail!("do: platform {:?} is not available; use --platform=ptrace", g.platform);
    }
    let overlay = g.root_overlay()? && !args.writable && !args.read_only;
    let rootfs = args.rootfs.clone().unwrap_or_else(|| "/".into());
    let root = open_dir(&rootfs)?;
    let cwd = match (&args.cwd, &args.rootfs) {
        (Some(c), _) => c.clone(),
        (None, None) => std::env::current_dir().ok().and_then(|p| p.to_str().map(String::from)).unwrap_or_else(|| "/".into()),
        (None, Some(_)) => "/".into(),
    };
    let spec = BootSpec {
        args: args.command.clone(),
        env: std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect(),
        cwd,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        additional_gids: Vec::new(),
        hostname: hostname(),
        kernel_release: g.kernel_release.clone(),
        // Unless read-only, the sandbox's writes land in the overlay's memory or go through.
        root_read_only: args.read_only,
        overlay,
        tty: args.tty,
        // Like a program started from this shell, the command keeps the caller's limits.
        rlimits: caller_rlimits(),
        network: crate::net::for_do(g.network).context("do")?,
        ..BootSpec::default()
    };

    let (mut gofer_child, sentry_end) =
        crate::sandbox::spawn_gofer(g, root, overlay || args.read_only, &crate::sandbox::Lifetime::Attached).context("do")?;

    let mut boot = self_command()?;
    boot.args(global_args(g)).arg("boot");
    boot.arg(format!("--gofer-fd={}", std::os::fd::AsRawFd::as_raw_fd(&sentry_end)));
    boot.arg(format!("--spec={}", serde_json::to_string(&spec)?));
    inherit_fds(&mut boot, &[sentry_end.as_fd()]);
    let mut console = None;
    if args.tty {
        // The sandbox's stdin and stdout are its end of the console socket.
        let (cli_end, sandbox_end) = super::console::socketpair()?;
        boot.stdin(std::process::Stdio::from(sandbox_end.try_clone().context("do: console socket")?));
        boot.stdout(std::process::Stdio::from(sandbox_end));
        console = Some(cli_end);
    }
    let console = console.map(super::console::HostConsole::start).transpose()?;
    let boot_child = crate::spawn::spawn_sandbox(boot);
    drop(sentry_end);
    let mut boot_child = match boot_child {
        Ok(c) => c,
        Err(e) => {
            let _ = gofer_child.kill();
            let _ = gofer_child.wait();
            return Err(e).context("do: starting the sandbox");
        }
    };
    let status = boot_child.wait().context("do: waiting for the sandbox");
    if let Some(c) = console {
        c.finish();
    }
    let status = status?;
    // The gofer ends when the sandbox's end of the connection closes.
    let _ = gofer_child.wait();
    if let Some(code) = status.code() {
        return Ok(code);
    }
    let sig = status.signal().unwrap_or(0);
    eprintln!("rvisor: {}", crate::confine::describe_signal(sig));
    Ok(128 + sig)
}
