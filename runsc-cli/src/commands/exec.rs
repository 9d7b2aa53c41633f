//! `rvisor exec`: runs a new process in a running container; `rvisor exec-wait`
//! (internal) is the host process that stands for a detached one.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{bail, Context};
use rvisor_sentry::control::protocol::{Capabilities, ProcessSpec, Request, Response};

use crate::container::control::Conn;
use crate::container::state::{self, Status};
use crate::container::{console_socket, lifecycle, util};
use crate::oci::config::{self, Process};
use crate::spawn::{detach_with_fds, global_args, self_command};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// A JSON file with the process (config.json's `process` object).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return at once; a host process standing for it goes in --pid-file.
    #[arg(long, short = 'd')]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// Environment variables (KEY=VALUE), repeatable.
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(long = "additional-gids", short = 'g')]
    additional_gids: Vec<u32>,
    /// Capabilities to add, repeatable.
    #[arg(long)]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long = "apparmor")]
    apparmor: Option<String>,
    /// The container id.
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn to_spec(p: &Process) -> anyhow::Result<ProcessSpec> {
    let mut rlimits = Vec::new();
    for r in &p.rlimits {
        let res = config::rlimit_resource(&r.kind).with_context(|| format!("unknown rlimit {:?}", r.kind))?;
        rlimits.push((res, r.soft, r.hard));
    }
    Ok(ProcessSpec {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: if p.cwd.is_empty() { "/".into() } else { p.cwd.clone() },
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        umask: p.user.umask,
        terminal: p.terminal,
        rlimits,
        no_new_privs: p.no_new_privileges,
        capabilities: Some(p.capabilities.clone().map(|c| Capabilities {
            bounding: c.bounding,
            effective: c.effective,
            inheritable: c.inheritable,
            permitted: c.permitted,
            ambient: c.ambient,
        }).unwrap_or_default()),
        oom_score_adj: p.oom_score_adj,
    })
}

/// The process to run: --process, or the container's own process with the flags applied.
fn process(args: &ExecArgs, base: &Process) -> anyhow::Result<Process> {
    let mut p = if let Some(path) = &args.process {
        let text = std::fs::read_to_string(path).with_context(|| format!("--process {}", path.display()))?;
        serde_json::from_str::<Process>(&text).with_context(|| format!("--process {}", path.display()))?
    } else {
        if args.command.is_empty() {
            bail!("exec: no command given (usage: rvisor exec [FLAGS] ID CMD [ARGS...])");
        }
        let mut p = base.clone();
        p.args = args.command.clone();
        p.terminal = args.tty;
        p
    };
    if p.args.is_empty() {
        bail!("exec: process.args must not be empty");
    }
    if let Some(c) = &args.cwd {
        p.cwd = c.clone();
    }
    p.env.extend(args.env.iter().cloned());
    if let Some(u) = &args.user {
        let (uid, gid) = u.split_once(':').map(|(a, b)| (a, Some(b))).unwrap_or((u.as_str(), None));
        p.user.uid = uid.parse().with_context(|| format!("--user {u}: expected UID[:GID]"))?;
        if let Some(g) = gid {
            p.user.gid = g.parse().with_context(|| format!("--user {u}: expected UID[:GID]"))?;
        }
    }
    p.user.additional_gids.extend(args.additional_gids.iter().copied());
    if args.tty {
        p.terminal = true;
    }
    if args.no_new_privs {
        p.no_new_privileges = true;
    }
    if !args.cap.is_empty() {
        let c = p.capabilities.get_or_insert_with(Default::default);
        for cap in &args.cap {
            for set in [&mut c.bounding, &mut c.effective, &mut c.permitted] {
                if !set.contains(cap) {
                    set.push(cap.clone());
                }
            }
        }
    }
    Ok(p)
}

pub fn run(g: &crate::GlobalFlags, args: ExecArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "exec");
    let st = {
        let (_locked, st) = state::lock(&g.root, &args.id)?;
        st
    };
    match st.status() {
        Status::Running => {}
        Status::Paused => bail!("cannot exec in a paused container"),
        Status::Created => bail!("cannot exec in a container that has not started"),
        Status::Stopped => bail!("cannot exec in a stopped container"),
    }
    let p = process(&args, &st.process)?;
    let spec = to_spec(&p)?;
    let mut conn = Conn::connect(&state::control_socket(&g.root, &args.id))?;
    let replica;
    let fds: Vec<BorrowedFd<'_>> = if p.terminal {
        replica = match &args.console_socket {
            Some(sock) => Some(console_socket::pty_for(sock)?),
            None if args.detach => bail!("cannot allocate tty if rvisor will detach without setting console socket"),
            None => None,
        };
        match &replica {
            Some(r) => vec![r.as_fd()],
            // SAFETY: fd 0 stays open for the life of this process.
            None => vec![unsafe { BorrowedFd::borrow_raw(0) }],
        }
    } else {
        // SAFETY: fds 0, 1 and 2 stay open for the life of this process.
        (0..3).map(|fd| unsafe { BorrowedFd::borrow_raw(fd) }).collect()
    };
    let pid = match conn.call(&Request::Exec { process: spec }, &fds).context("exec")? {
        Response::Pid(pid) => pid,
        other => bail!("exec: unexpected answer from the sandbox: {other:?}"),
    };
    if !args.detach {
        let code = wait_status(&mut conn, pid)?;
        if let Some(pf) = &args.pid_file {
            let _ = pf;
        }
        return Ok(code);
    }
    // A host process must stand for the new one: containerd's shim reaps the pid it finds
    // in --pid-file and takes its exit status as the process's.
    let mut helper = self_command()?;
    helper.args(global_args(g)).arg("exec-wait");
    helper.arg(format!("--conn-fd={}", conn.sock.as_raw_fd()));
    helper.arg(format!("--pid={pid}"));
    helper.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    detach_with_fds(&mut helper, &[conn.sock.as_fd()], Vec::new());
    let child = helper.spawn().context("exec: starting the waiting process")?;
    if let Some(pf) = &args.pid_file {
        lifecycle::write_pid_file(pf, child.id() as i32)?;
    }
    Ok(0)
}

fn wait_status(conn: &mut Conn, pid: i32) -> anyhow::Result<i32> {
    match conn.call(&Request::Wait { pid }, &[]).context("exec: waiting for the process")? {
        Response::Exited { status } => Ok(util::status_code(status)),
        other => bail!("exec: unexpected answer from the sandbox: {other:?}"),
    }
}

#[derive(Debug, clap::Args)]
pub struct ExecWaitArgs {
    /// The control connection the process was started on.
    #[arg(long = "conn-fd")]
    conn_fd: i32,
    /// The sandbox pid to wait for.
    #[arg(long)]
    pid: i32,
}

/// `rvisor exec-wait` (internal): waits for an exec'd process and exits with its status.
pub fn wait_run(g: &crate::GlobalFlags, args: ExecWaitArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "exec-wait");
    if args.conn_fd < 3 {
        bail!("exec-wait: invalid fd");
    }
    // SAFETY: the parent passed this fd to us for our exclusive use.
    let sock = UnixStream::from(unsafe { OwnedFd::from_raw_fd(args.conn_fd) });
    let mut conn = Conn { sock };
    match wait_status(&mut conn, args.pid) {
        Ok(code) => Ok(code),
        Err(e) => {
            tracing::warn!("exec-wait: {e:#}");
            Ok(255)
        }
    }
}
