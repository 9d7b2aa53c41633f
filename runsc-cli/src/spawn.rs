//! Starting rvisor's own helper processes with specific fds passed down.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A command that re-executes this binary.
pub fn self_command() -> std::io::Result<Command> {
    Ok(Command::new(std::env::current_exe()?))
}

/// Makes `fds` survive the exec of `cmd` (at their current numbers, which the caller passes
/// on the command line), and makes the child die with the calling thread (PDEATHSIG).
pub fn inherit_fds(cmd: &mut Command, fds: &[BorrowedFd<'_>]) {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure runs in the forked child before exec and only calls prctl and
    // fcntl, which are async-signal-safe; it allocates nothing (the Vec was built before fork).
    unsafe {
        cmd.pre_exec(move || {
            // The sandbox and gofer never outlive the command that started them.
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Global flags a child process must see too.
pub fn global_args(g: &crate::GlobalFlags) -> Vec<String> {
    let mut v = vec![
        format!("--platform={}", g.platform),
        format!("--log-format={}", g.log_format),
    ];
    if g.debug {
        v.push("--debug".into());
    }
    if let Some(d) = &g.debug_log {
        v.push(format!("--debug-log={d}"));
    }
    if g.debug_control {
        v.push("--debug-control".into());
    }
    v
}

/// Makes `fds` survive the exec of `cmd` like [`inherit_fds`], but for a process that
/// outlives the CLI (an OCI container's sandbox and gofers): it starts its own session and
/// first joins the cgroups whose `cgroup.procs` files are given (so every task it starts
/// is accounted there from the beginning).
pub fn detach_with_fds(
    cmd: &mut Command,
    fds: &[BorrowedFd<'_>],
    cgroup_procs: Vec<std::ffi::CString>,
) {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure runs in the forked child before exec and only calls setsid,
    // open, write, close and fcntl, which are async-signal-safe; it allocates nothing (the
    // Vecs and CStrings were built before fork).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for path in &cgroup_procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if !ok {
                    return Err(err);
                }
            }
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Starts the sandbox process (`rvisor boot`) as pid 1 of a new PID namespace, as runsc
/// does: it sees only itself and the stubs it forks, and when it dies the kernel kills
/// every process left in that namespace. The caller still gets its host pid.
///
/// `unshare(CLONE_NEWPID)` changes only the namespace the calling *thread*'s future
/// children are created in, so the fork happens on a helper thread. That thread also
/// stays until the child has exited (without reaping it: the returned `Child` does),
/// because `PR_SET_PDEATHSIG` ([`inherit_fds`]) fires when the thread that forked the
/// child ends, not the process. `cmd` is dropped right after the fork, so descriptors it
/// holds (the child's stdio) close as soon as they would with `Command::spawn`.
///
/// Without root the CLI cannot make namespaces: the sandbox starts in the caller's one
/// (the sandbox process then only confines itself with no_new_privs and seccomp).
pub fn spawn_sandbox(mut cmd: Command) -> std::io::Result<std::process::Child> {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return cmd.spawn();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sandbox-spawn".into())
        .spawn(move || {
            // SAFETY: unshare takes flags only; CLONE_NEWPID affects this thread's later
            // children alone (allowed in a multi-threaded process).
            if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
                let e = std::io::Error::last_os_error();
                let _ = tx.send(Err(std::io::Error::new(
                    e.kind(),
                    format!("unshare(CLONE_NEWPID): {e}"),
                )));
                return;
            }
            let child = cmd.spawn();
            drop(cmd);
            let pid = child.as_ref().map(|c| c.id() as libc::id_t).ok();
            if tx.send(child).is_err() {
                return;
            }
            let Some(pid) = pid else { return };
            loop {
                // SAFETY: an all-zero siginfo_t is a valid buffer for waitid to fill.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: waitid writes one siginfo_t into a live local. WNOWAIT leaves the
                // child a zombie for the owner of the `Child` to reap; once that happened
                // (or never could) waitid fails with ECHILD.
                let r = unsafe {
                    libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return;
                }
            }
        })?;
    rx.recv().unwrap_or_else(|_| {
        Err(std::io::Error::other(
            "the sandbox spawn thread ended without an answer",
        ))
    })
}

/// The calling process's pid as the host sees it, read from the host's /proc: the sandbox
/// process is pid 1 of its own PID namespace, so `getpid` would say 1. Only meaningful
/// while the process still sees the host's /proc (before it pivots into its empty root).
pub fn host_pid() -> std::io::Result<u32> {
    let link = std::fs::read_link("/proc/self")?;
    link.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("/proc/self points to {}", link.display())))
}
