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
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
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
    let mut v = vec![format!("--platform={}", g.platform), format!("--log-format={}", g.log_format)];
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
pub fn detach_with_fds(cmd: &mut Command, fds: &[BorrowedFd<'_>], cgroup_procs: Vec<std::ffi::CString>) {
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
