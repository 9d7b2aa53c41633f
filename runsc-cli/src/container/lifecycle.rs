//! The container lifecycle behind the commands: create (gofers + detached sandbox, state,
//! hooks), start, and destroy.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rvisor_sentry::control::protocol::{Request, Response};

use super::cgroup::Cgroup;
use super::state::{self, Locked, State, Status};
use super::util::{alive, proc_start};
use super::{console_socket, control, hooks};
use crate::sandbox::{open_bind_source, open_tree, spawn_gofer, Lifetime};
use crate::spawn::{detach_with_fds, global_args, self_command};

/// How the init process's stdio is set up.
pub enum InitStdio<'a> {
    /// The CLI's own fds 0, 1, 2 (FIFOs from containerd, or the user's terminal).
    Inherit,
    /// A new pty whose master goes to this console socket.
    ConsoleSocket(&'a Path),
}

/// What a half-made container has, torn down on error.
struct Partial {
    dir: PathBuf,
    cgroup: Option<Cgroup>,
    children: Vec<Child>,
    armed: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(cg) = &self.cgroup {
            cg.remove();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for the sandbox's readiness byte (or error line) on `ready`.
fn wait_ready(ready: OwnedFd, boot: &mut Child) -> anyhow::Result<()> {
    let mut pfd = libc::pollfd { fd: ready.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_millis() as i32;
        if left == 0 {
            bail!("the sandbox did not become ready in 120 s");
        }
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, left) };
        if r > 0 {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(std::io::Error::last_os_error()).context("waiting for the sandbox");
        }
    }
    let mut f = std::fs::File::from(ready);
    let mut buf = [0u8; 4096];
    let n = f.read(&mut buf).context("reading the sandbox's readiness")?;
    if n == 1 {
        return Ok(());
    }
    if n == 0 {
        let status = boot.wait().ok();
        bail!("the sandbox exited before it was ready{}", status.map(|s| format!(" ({s})")).unwrap_or_default());
    }
    let mut msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    let mut rest = Vec::new();
    let _ = f.take(64 * 1024).read_to_end(&mut rest);
    msg.push_str(&String::from_utf8_lossy(&rest));
    let _ = boot.wait();
    bail!("{}", msg.trim().trim_start_matches("rvisor: "))
}

/// `create`: everything up to a sandbox that waits for `start`. Returns the state.
pub fn create(g: &crate::GlobalFlags, id: &str, bundle: &Path, pid_file: Option<&Path>, stdio: InitStdio<'_>) -> anyhow::Result<State> {
    super::util::check_id(id)?;
    if state::dir(&g.root, id).join("state.json").exists() {
        bail!("container with id exists: {id}");
    }
    let mut plan = crate::oci::plan(g, bundle, id)?;
    if plan.terminal && matches!(stdio, InitStdio::Inherit) && !isatty(0) {
        bail!("cannot allocate tty if rvisor will detach without setting console socket");
    }
    if g.platform != "ptrace" {
        bail!("platform {:?} is not available; use --platform=ptrace", g.platform);
    }
    let locked = state::create_locked(&g.root, id)?;
    let mut partial = Partial { dir: locked.path.clone(), cgroup: None, children: Vec::new(), armed: true };

    // Reads the namespace and opens the packet sockets; nothing is changed in it yet.
    let net = crate::net::prepare(g.network, &plan.netns_request)?;
    plan.spec["network"] = serde_json::to_value(&net.spec)?;

    let cgroup = Cgroup::create(plan.cgroups_path.as_deref(), id, plan.resources.as_ref())?;
    let procs = cgroup.procs_files();
    partial.cgroup = Some(cgroup.clone());
    let life = Lifetime::Detached { cgroup_procs: &procs };

    let overlay = plan.spec["overlay"].as_bool().unwrap_or(false);
    let root = open_tree(&plan.rootfs).with_context(|| format!("rootfs {}", plan.rootfs.display()))?;
    let (gofer, root_conn) = spawn_gofer(g, root, overlay || plan.root_read_only, &life)?;
    partial.children.push(gofer);
    let mut mount_conns = Vec::new();
    for b in &plan.binds {
        let tree = open_bind_source(&b.source).with_context(|| format!("bind mount source {}", b.source.display()))?;
        let (gofer, conn) = spawn_gofer(g, tree, b.read_only, &life)?;
        partial.children.push(gofer);
        mount_conns.push(conn);
    }

    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let sock = state::control_socket(&g.root, id);
    let mut boot = self_command()?;
    boot.args(global_args(g)).arg("boot");
    boot.arg(format!("--gofer-fd={}", root_conn.as_raw_fd()));
    for c in &mount_conns {
        boot.arg(format!("--mount-gofer-fd={}", c.as_raw_fd()));
    }
    boot.arg(format!("--control-socket={}", sock.display()));
    boot.arg(format!("--ready-fd={}", ready_w.as_raw_fd()));
    boot.arg(format!("--spec={}", serde_json::to_string(&plan.spec)?));
    for fd in &net.packet_fds {
        boot.arg(format!("--net-fd={}", fd.as_raw_fd()));
    }
    let mut replica = None;
    if let InitStdio::ConsoleSocket(path) = stdio {
        if plan.terminal {
            replica = Some(console_socket::pty_for(path)?);
        }
    }
    if let Some(r) = &replica {
        boot.stdin(Stdio::from(r.try_clone()?)).stdout(Stdio::from(r.try_clone()?)).stderr(Stdio::from(r.try_clone()?));
    }
    let mut pass: Vec<BorrowedFd<'_>> = vec![root_conn.as_fd(), ready_w.as_fd()];
    pass.extend(mount_conns.iter().map(|c| c.as_fd()));
    pass.extend(net.packet_fds.iter().map(|f| f.as_fd()));
    detach_with_fds(&mut boot, &pass, procs.clone());
    net.join_before_exec(&mut boot);
    // The last step before the sandbox starts: from here on its stack owns the addresses.
    net.take_over()?;
    let boot_child = crate::spawn::spawn_sandbox(boot).context("starting the sandbox");
    drop(ready_w);
    drop(root_conn);
    drop(mount_conns);
    drop(replica);
    drop(net);
    let mut boot_child = boot_child?;
    let boot_pid = boot_child.id() as i32;
    if let Err(e) = wait_ready(ready_r, &mut boot_child) {
        partial.children.push(boot_child);
        return Err(e);
    }
    let gofers = partial.children.iter().map(|c| (c.id() as i32, proc_start(c.id() as i32).map(|s| s.0).unwrap_or(0))).collect();
    partial.children.push(boot_child);

    let st = State {
        id: id.to_string(),
        pid: boot_pid,
        pid_start: proc_start(boot_pid).map(|s| s.0).unwrap_or(0),
        bundle: plan.bundle.to_string_lossy().into_owned(),
        rootfs: plan.rootfs.to_string_lossy().into_owned(),
        created: state::now(),
        annotations: plan.config.annotations.clone(),
        started: false,
        paused: false,
        gofers,
        cgroup: Some(cgroup),
        hooks: plan.hooks.clone(),
        process: plan.process.clone(),
        netns: plan.netns.clone(),
        network: crate::net::mode_name(g.network).to_string(),
        oom_killed: false,
    };
    locked.save(&st)?;
    let json = state_json(g, &st);
    hooks::run("prestart", &st.hooks.prestart, &json)?;
    hooks::run("createRuntime", &st.hooks.create_runtime, &json)?;
    hooks::run("createContainer", &st.hooks.create_container, &json)?;
    if let Some(p) = pid_file {
        write_pid_file(p, boot_pid)?;
    }
    partial.armed = false;
    Ok(st)
}

fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Writes a pid file the way runc does (atomically, no newline).
pub fn write_pid_file(path: &Path, pid: i32) -> anyhow::Result<()> {
    let path = std::path::absolute(path)?;
    state::write_atomic(&path, pid.to_string().as_bytes()).context("pid file")
}

/// The state JSON hooks get on stdin.
pub fn state_json(g: &crate::GlobalFlags, st: &State) -> String {
    st.to_oci_json(&state::owner(&g.root, &st.id)).to_string()
}

/// `start`: runs the waiting init, then the startContainer and poststart hooks.
pub fn start(g: &crate::GlobalFlags, id: &str) -> anyhow::Result<()> {
    let (locked, mut st) = state::lock(&g.root, id)?;
    match st.status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
    }
    let json = state_json(g, &st);
    hooks::run("startContainer", &st.hooks.start_container, &json)?;
    control::call(&g.root, id, &Request::Start).context("start")?;
    st.started = true;
    locked.save(&st)?;
    drop(locked);
    hooks::run_warn("poststart", &st.hooks.poststart, &state_json(g, &st));
    Ok(())
}

/// Asks a live sandbox whether its OOM killer acted (false when it does not answer).
pub fn sandbox_oom_killed(conn: &mut control::Conn) -> bool {
    matches!(conn.call(&Request::Stats, &[]), Ok(Response::Stats(s)) if s.oom_killed)
}

/// Records in `st` (and on disk) that the sandbox's OOM killer acted, if a live sandbox
/// says so and it is not known yet. Returns whether the OOM killer acted.
pub fn refresh_oom(g: &crate::GlobalFlags, locked: &Locked, st: &mut State) -> bool {
    if !st.oom_killed && st.status() != Status::Stopped {
        let asked = control::Conn::connect(&state::control_socket(&g.root, &st.id)).map(|mut c| sandbox_oom_killed(&mut c));
        if asked.unwrap_or(false) {
            st.oom_killed = true;
            if let Err(e) = locked.save(st) {
                tracing::warn!("recording the OOM kill: {e:#}");
            }
        }
    }
    st.oom_killed()
}

/// Waits until host process `pid` is gone (it need not be our child): a pidfd becomes
/// readable when the process exits; without pidfds, polled.
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    // SAFETY: `raw` is a descriptor pidfd_open just created for us alone.
    let pidfd = (raw >= 0).then(|| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
    // The pid is checked after the pidfd exists, so the pidfd names the process checked.
    while alive(pid, start) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match &pidfd {
            Some(fd) => {
                let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut pfd, 1, left.as_millis().clamp(1, i32::MAX as u128) as i32) };
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    true
}

/// `delete`: kills what is left, removes the cgroup and the state, runs poststop hooks.
pub fn destroy(g: &crate::GlobalFlags, locked: Locked, st: &State) -> anyhow::Result<()> {
    let json = state_json(g, st);
    let kill = |pid: i32, start: u64| {
        if alive(pid, start) {
            // SAFETY: kill takes integers; the pid is checked to still be ours by its
            // start time just above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    };
    kill(st.pid, st.pid_start);
    wait_gone(st.pid, st.pid_start, Duration::from_secs(10));
    for &(pid, start) in &st.gofers {
        // The gofers end when the sandbox's connections close; make sure.
        if !wait_gone(pid, start, Duration::from_millis(500)) {
            kill(pid, start);
        }
    }
    if let Some(cg) = &st.cgroup {
        cg.remove();
    }
    std::fs::remove_dir_all(&locked.path).with_context(|| format!("removing {}", locked.path.display()))?;
    drop(locked);
    hooks::run_warn("poststop", &st.hooks.poststop, &json);
    Ok(())
}
