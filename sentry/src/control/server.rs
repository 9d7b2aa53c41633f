//! The control server: a sentry thread accepting connections on the control socket, each
//! connection served on its own thread, one request answered at a time.

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rvisor_syscalls::flags::open::O_ACCMODE;
use rvisor_syscalls::flags::signal::NSIG;
use rvisor_syscalls::Errno;

use super::protocol::{
    decode_request, encode, recv_message, send_message, ProcessInfo, ProcessSpec, Request,
    Response, Stats,
};
use super::spawn::{rlimits_from, spawn_process, NewProcess};
use super::state::Gate;
use crate::kernel::fdtable::FdTable;
use crate::kernel::signal::{code, send_to_group, SignalInfo};
use crate::kernel::thread_group::TgState;
use crate::kernel::{ExitStatus, Kernel, ThreadGroup};
use crate::vfs::host::HostStream;
use crate::vfs::FileDescription;

/// The most connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// What the server needs besides the kernel.
#[derive(Debug, Default)]
pub struct ServerState {
    /// Opened by `Start`: the waiting init runs.
    pub start_gate: Arc<Gate>,
    started: AtomicBool,
    connections: AtomicUsize,
    /// `Wait` requests for init not yet answered: the sandbox lingers until they are.
    init_waiters: AtomicUsize,
    /// Whether debug requests (`DebugHostSyscall`) are served.
    debug_control: AtomicBool,
}

impl ServerState {
    pub fn new() -> Arc<ServerState> {
        Arc::new(ServerState::default())
    }

    /// Marks init as started without a `Start` request (no `wait_for_start`).
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
        self.start_gate.set(true);
    }

    /// Serves the debug requests too (a sandbox booted with `--debug-control`).
    pub fn set_debug_control(&self, on: bool) {
        self.debug_control.store(on, Ordering::SeqCst);
    }

    /// After init exited: gives answers to pending `Wait`s for it, and requests on open
    /// connections not read yet (a `Wait` sent just before `Start`), a moment to go out.
    pub fn drain_init_waiters(&self) {
        for _ in 0..200 {
            if self.init_waiters.load(Ordering::SeqCst) == 0 && self.connections.load(Ordering::SeqCst) == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Binds the control socket at `path` (replacing a stale socket file).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(path)?
        }
        _ => {}
    }
    super::protocol::with_socket_path(path, |p| UnixListener::bind(p))
}

/// Serves `listener` on a new sentry thread for as long as the sandbox runs.
pub fn serve(
    kernel: Arc<Kernel>,
    state: Arc<ServerState>,
    listener: UnixListener,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                if state.connections.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    tracing::warn!("too many control connections; refusing one");
                    continue;
                }
                state.connections.fetch_add(1, Ordering::SeqCst);
                let (k, s) = (kernel.clone(), state.clone());
                let spawned = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || {
                        serve_connection(&k, &s, conn);
                        s.connections.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    state.connections.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })?;
    Ok(())
}

fn serve_connection(k: &Arc<Kernel>, s: &Arc<ServerState>, conn: UnixStream) {
    loop {
        let (body, fds) = match recv_message(&conn) {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "control connection: bad message");
                let _ = reply(
                    &conn,
                    &Response::error(Errno::EINVAL.0, format!("bad message: {e}")),
                );
                return;
            }
        };
        let resp = match decode_request(&body) {
            Ok(req) => {
                tracing::debug!(?req, "control request");
                handle(k, s, req, fds)
            }
            Err(e) => Response::error(Errno::EINVAL.0, format!("malformed request: {e}")),
        };
        if reply(&conn, &resp).is_err() {
            return;
        }
    }
}

fn reply(conn: &UnixStream, resp: &Response) -> std::io::Result<()> {
    send_message(conn, &encode(resp)?, &[])
}

fn err(e: Errno, msg: impl Into<String>) -> Response {
    Response::error(e.0, msg)
}

/// Answers one request.
pub fn handle(k: &Arc<Kernel>, s: &Arc<ServerState>, req: Request, fds: Vec<OwnedFd>) -> Response {
    match req {
        Request::Start => {
            if s.started.swap(true, Ordering::SeqCst) {
                return err(Errno::EBUSY, "the container was already started");
            }
            s.start_gate.set(true);
            Response::Ok
        }
        Request::Exec { process } => match exec(k, process, fds) {
            Ok(pid) => Response::Pid(pid),
            Err(r) => r,
        },
        Request::Wait { pid } => wait(k, s, if pid == 0 { 1 } else { pid }),
        Request::Signal { pid, signal, all } => signal_request(k, pid, signal, all),
        Request::Ps => Response::Processes(ps(k)),
        Request::Stats => Response::Stats(stats(k)),
        Request::Pause => {
            k.control.set_paused(true);
            for h in k.tables().tasks.values() {
                h.interrupt_guest();
            }
            Response::Ok
        }
        Request::Resume => {
            k.control.set_paused(false);
            Response::Ok
        }
        Request::DebugHostSyscall { nr, args } => debug_host_syscall(s, nr, &args),
    }
}

/// Makes host syscall `nr` from the sandbox process, if debug requests are enabled.
fn debug_host_syscall(s: &ServerState, nr: i64, args: &[u64]) -> Response {
    if !s.debug_control.load(Ordering::SeqCst) {
        return err(Errno::EPERM, "debug requests are disabled (the sandbox was not booted with --debug-control)");
    }
    if args.len() > 6 {
        return err(Errno::EINVAL, "a syscall takes at most 6 arguments");
    }
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    tracing::warn!(nr, ?a, "debug request: making a host syscall");
    // SAFETY: not sound in general: a debug-only request (refused above unless the sandbox
    // was booted with --debug-control, which only tests use) that exists to make the
    // sandbox attempt syscalls its seccomp filter forbids. Pointer arguments are the
    // requester's responsibility; the tests pass none.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Response::Value(-(e as i64));
    }
    Response::Value(r)
}

fn exec(k: &Arc<Kernel>, p: ProcessSpec, fds: Vec<OwnedFd>) -> Result<i32, Response> {
    if p.args.is_empty() {
        return Err(err(Errno::EINVAL, "exec: no command given"));
    }
    if let Some(&(res, cur, max)) = p
        .rlimits
        .iter()
        .find(|&&(res, cur, max)| res as usize >= rvisor_syscalls::flags::rlimit::RLIM_NLIMITS || cur > max)
    {
        return Err(err(Errno::EINVAL, format!("exec: bad rlimit {res} (soft {cur}, hard {max})")));
    }
    if k.init_group().is_none_or(|g| !g.is_alive()) {
        return Err(err(Errno::ESRCH, "the container is not running"));
    }
    if k.control.pids_exceeded(k.tables().tasks.len()) {
        return Err(err(
            Errno::EAGAIN,
            "exec: the container's pids limit is reached",
        ));
    }
    let pid = k.alloc_tid();
    let mut table = FdTable::new();
    let mut console = None;
    let mut fds = fds.into_iter();
    let install = |table: &mut FdTable, i: i32, file: Arc<FileDescription>| {
        table
            .install_at(i, file, false, 3)
            .map_err(|e| err(e, "exec: installing stdio"))
    };
    if p.terminal {
        let host = fds.next().ok_or_else(|| {
            err(
                Errno::EINVAL,
                "exec: a terminal process needs the console fd",
            )
        })?;
        let (bridge, file) = crate::vfs::devpts::console::attach_host_tty(k, host, pid, false)
            .map_err(|e| {
                err(
                    Errno(e.raw_os_error().unwrap_or(Errno::EIO.0)),
                    format!("exec: console: {e}"),
                )
            })?;
        for i in 0..3 {
            install(&mut table, i, file.clone())?;
        }
        console = Some(bridge);
    } else {
        for (i, fd) in fds.by_ref().take(3).enumerate() {
            let flags = host_access_mode(&fd)
                .map_err(|e| err(Errno::EBADF, format!("exec: stdio: {e}")))?;
            install(
                &mut table,
                i as i32,
                FileDescription::new(Arc::new(HostStream::new(fd)), None, flags),
            )?;
        }
    }
    let mut creds = crate::kernel::task::Creds::new(p.uid, p.gid, p.additional_gids.clone());
    super::caps::apply_spec(&mut creds, p.capabilities.as_ref());
    let np = NewProcess {
        pid,
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        creds,
        umask: p.umask.unwrap_or(0o022),
        rlimits: rlimits_from(&p.rlimits),
        no_new_privs: p.no_new_privs,
        oom_score_adj: p.oom_score_adj.unwrap_or(0),
        fds: table,
        hold: None,
    };
    match spawn_process(k, np) {
        Ok(pid) => {
            if let Some(bridge) = console {
                let k2 = k.clone();
                let _ = std::thread::Builder::new()
                    .name("exec-console".into())
                    .spawn(move || {
                        wait_gone(&k2, pid);
                        bridge.finish();
                    });
            }
            Ok(pid)
        }
        Err(e) => {
            if let Some(b) = console {
                b.finish();
            }
            Err(err(e.errno(), e.to_string()))
        }
    }
}

/// Polls until thread group `pid` has finished running.
fn wait_gone(k: &Kernel, pid: i32) -> Option<ExitStatus> {
    loop {
        let tg = k.group(pid)?;
        if let Some(done) = finished(&tg) {
            return done;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `tg` has finished running: `Some(Some(status))` once it exited and its last
/// thread is gone, `Some(None)` once it was reaped, `None` while it runs.
///
/// The group's lock is taken once and released on return. (A guard in an `if let`
/// scrutinee lives through the whole block: locking the group again inside it deadlocked
/// this thread while it held the lock, so the exiting process, `Wait` and `Ps` hung too.)
fn finished(tg: &ThreadGroup) -> Option<Option<ExitStatus>> {
    let g = tg.lock();
    match g.state {
        TgState::Zombie(st) | TgState::Exiting(st) if g.threads.is_empty() => Some(Some(st)),
        TgState::Dead => Some(None),
        _ => None,
    }
}

fn sandbox_alive(k: &Kernel) -> bool {
    k.init_group()
        .is_some_and(|g| g.exit_status().is_none() || !g.lock().threads.is_empty())
}

fn wait(k: &Arc<Kernel>, s: &ServerState, pid: i32) -> Response {
    if pid == 1 {
        s.init_waiters.fetch_add(1, Ordering::SeqCst);
        let st = k.wait_for_init();
        // Answered by the caller right after; the counter drops when it returns.
        let resp = Response::Exited {
            status: st.wait_status(),
        };
        s.init_waiters.fetch_sub(1, Ordering::SeqCst);
        return resp;
    }
    if k.control.is_watched(pid) {
        let k2 = k.clone();
        return match k
            .control
            .wait_exit(pid, move || sandbox_alive(&k2) || k2.group(pid).is_some())
        {
            Some(st) => Response::Exited {
                status: st.wait_status(),
            },
            None => err(
                Errno::ECHILD,
                format!("process {pid} was already waited for"),
            ),
        };
    }
    match k.group(pid) {
        None => err(Errno::ESRCH, format!("no such process: {pid}")),
        Some(_) => match wait_gone(k, pid) {
            Some(st) => Response::Exited {
                status: st.wait_status(),
            },
            None => err(
                Errno::ECHILD,
                format!("process {pid} was reaped inside the sandbox"),
            ),
        },
    }
}

fn signal_request(k: &Arc<Kernel>, pid: i32, signal: i32, all: bool) -> Response {
    if signal < 0 || signal as u32 > NSIG {
        return err(Errno::EINVAL, format!("invalid signal {signal}"));
    }
    let sig = signal as u32;
    let targets: Vec<Arc<ThreadGroup>> = if all {
        k.all_groups()
            .into_iter()
            .filter(|g| g.is_alive())
            .collect()
    } else {
        let pid = if pid == 0 { 1 } else { pid };
        match k.group(pid).filter(|g| g.is_alive()) {
            Some(g) => vec![g],
            None => return err(Errno::ESRCH, format!("no such process: {pid}")),
        }
    };
    if targets.is_empty() && !all {
        return err(Errno::ESRCH, "no process");
    }
    if sig != 0 {
        for tg in targets {
            // From outside the sandbox's pid namespace: init's protection only lets
            // SIGKILL and SIGSTOP through unless init handles the signal.
            send_to_group(k, &tg, SignalInfo::user(sig, code::SI_USER, 0, 0), false);
        }
    }
    Response::Ok
}

/// The command line of a process, NULs as spaces (its name in brackets when unreadable).
fn cmdline(tg: &ThreadGroup) -> (u32, String) {
    let leader = tg.lock().threads.first().cloned();
    let Some(h) = leader else {
        return (0, String::new());
    };
    let info = h.proc_info();
    let mut out = String::new();
    if let Some(mm) = &info.mm {
        let (start, end) = (info.args.arg_start, info.args.arg_end);
        if end > start {
            let mut buf = vec![0u8; (end - start).min(4096) as usize];
            if mm.copy_in(start, &mut buf).is_ok() {
                let parts: Vec<String> = buf
                    .split(|&b| b == 0)
                    .filter(|p| !p.is_empty())
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                out = parts.join(" ");
            }
        }
    }
    if out.is_empty() {
        out = format!("[{}]", String::from_utf8_lossy(&info.comm));
    }
    (info.creds.uid, out)
}

fn ps(k: &Arc<Kernel>) -> Vec<ProcessInfo> {
    let mut groups = k.all_groups();
    groups.sort_by_key(|g| g.tgid);
    groups
        .iter()
        .map(|tg| {
            let (uid, cmd) = cmdline(tg);
            let g = tg.lock();
            let state = match g.state {
                TgState::Zombie(_) | TgState::Dead => "Z",
                _ if g.stopped => "T",
                _ if k.control.is_paused() => "D",
                _ => "S",
            };
            let ppid = g.parent.upgrade().map_or(0, |p| p.tgid);
            let start = g
                .threads
                .first()
                .map(|h| h.start_time.saturating_duration_since(k.boot_time));
            drop(g);
            let host = tg.host_pid();
            ProcessInfo {
                pid: tg.tgid,
                ppid,
                uid,
                cmd,
                host_pid: (host > 0).then_some(host),
                state: state.to_string(),
                start_time_ticks: start.map_or(0, |d| (d.as_millis() / 10) as u64),
            }
        })
        .collect()
}

fn stats(k: &Arc<Kernel>) -> Stats {
    let groups = k.all_groups();
    let cpu_ns = groups
        .iter()
        .map(|g| g.cpu_time_ns() + g.children_cpu_ns.load(Ordering::Relaxed))
        .sum();
    Stats {
        pids: k.tables().tasks.len() as u64,
        memory_bytes: k.memory.allocated(),
        cpu_ns,
        oom_killed: k.control.oom_killed.load(Ordering::SeqCst),
    }
}

/// The access mode of a host fd, as open flags.
pub fn host_access_mode(fd: &OwnedFd) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fl as u32 & O_ACCMODE)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Mutex, Weak};

    use rvisor_syscalls::types::SigAction;

    use super::*;

    fn group(state: TgState) -> Arc<ThreadGroup> {
        let tg = ThreadGroup::new(7, Weak::new(), 7, 7, 0, Arc::new(Mutex::new([SigAction::default(); 64])));
        tg.lock().state = state;
        tg
    }

    /// `finished` on another thread; a deadlock inside it fails the test instead of hanging
    /// the run (the bound only catches a hang: a working call returns at once).
    fn finished_elsewhere(tg: &Arc<ThreadGroup>) -> Option<Option<ExitStatus>> {
        let (tx, rx) = mpsc::channel();
        let t = tg.clone();
        std::thread::spawn(move || {
            let _ = tx.send(finished(&t));
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("finished() deadlocked on the group's lock")
    }

    #[test]
    fn an_exited_group_is_seen_finished_and_its_lock_is_free_again() {
        // The state an exec'd process is in between exit_group and its reaping, which the
        // exec console's watcher and `Wait` of a process not started by the control server
        // poll for (a zombie nobody reaps stays in it).
        for state in [TgState::Exiting(ExitStatus::Exited(3)), TgState::Zombie(ExitStatus::Exited(3))] {
            let tg = group(state);
            assert_eq!(finished_elsewhere(&tg), Some(Some(ExitStatus::Exited(3))));
            assert!(tg.lock().threads.is_empty(), "the group's lock is free");
        }
        assert_eq!(finished_elsewhere(&group(TgState::Dead)), Some(None));
        assert_eq!(finished_elsewhere(&group(TgState::Running)), None);
    }
}
