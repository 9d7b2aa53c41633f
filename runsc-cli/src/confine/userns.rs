//! The sandbox process's user namespace.
//!
//! Once everything that needs host root is done (the mount, IPC and UTS namespaces and the
//! empty root of [`super::fs`], the control socket, the cgroup placement by the CLI), the
//! sandbox process enters a new user namespace whose uid and gid 0 are the host's nobody
//! and nogroup (65534), and becomes that uid 0. From then on its host uid is 65534 and the
//! capabilities it keeps apply only to objects owned by its own user namespace: the mount,
//! PID, network, IPC and UTS namespaces it lives in were all made before, by host root, so
//! they belong to the host's initial user namespace, over which it holds nothing.
//!
//! Writing a mapping to another host uid needs CAP_SETUID/CAP_SETGID in the *parent*
//! namespace, which the process no longer has once it unshared; so a helper child is forked
//! first, while the process is still host root and still sees the host's /proc: it waits
//! on a pipe until the parent has unshared, writes `/proc/<parent's host pid>/{uid,gid}_map`,
//! and exits (the parent reaps it).
//!
//! Not done with `--network=host` (the process stays host root, with the capabilities of
//! [`super::caps`]): the sentry then needs CAP_NET_RAW and CAP_NET_BIND_SERVICE over the
//! host's network namespace, which belongs to the initial user namespace, where a
//! capability held in a child namespace does not count.
//!
//! Host files the sandbox writes itself, through descriptors the gofer donated (a writable
//! root without the overlay, a writable bind mount), need no exception. On such a write or
//! fallocate (truncations are the gofer's) the host kernel clears the set-user-ID and
//! set-group-ID bits unless the writer has CAP_FSETID in the *initial* user namespace
//! (`should_remove_suid` uses `capable()`), which no process in a child user namespace
//! has. The sentry applies the guest's rule itself (a guest caller without CAP_FSETID loses
//! the bits first) and then puts back, through the gofer (host root with CAP_FOWNER and
//! CAP_FSETID), bits the host cleared that the guest keeps
//! (`rvisor_sentry::vfs::host::SetIdKeeper`; tests/tests/perms.rs, sections setid and
//! bindsetid).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::ConfineError;

/// The host uid and gid the sandbox process runs as (nobody / nogroup).
pub const HOST_ID: u32 = 65534;

fn sys_err(what: &'static str) -> ConfineError {
    ConfineError::Sys {
        what,
        source: std::io::Error::last_os_error(),
    }
}

/// The helper child's exit codes.
const EXIT_OK: i32 = 0;
const EXIT_NOT_TOLD: i32 = 1;
const EXIT_UID_MAP: i32 = 2;
const EXIT_GID_MAP: i32 = 3;

/// The forked helper, waiting to write the maps.
pub struct Mapper {
    pid: libc::pid_t,
    go: OwnedFd,
}

/// Writes `line` to the file at `path` with one write (as the id map files require).
///
/// # Safety
/// Makes raw syscalls only; `path` and `line` must be valid for the call.
unsafe fn write_file(path: &CString, line: &[u8]) -> bool {
    // SAFETY: `path` is NUL-terminated; `line` is a live slice.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let n = libc::write(fd, line.as_ptr().cast(), line.len());
        libc::close(fd);
        n == line.len() as isize
    }
}

/// Forks the helper. Call while the process is single-threaded, host root, and still sees
/// the host's /proc (before [`super::fs::enter_empty_root`]).
pub fn prepare() -> Result<Mapper, ConfineError> {
    // The process's pid in the host's /proc, which the helper (staying in the host's mount
    // namespace) writes through; inside its own PID namespace the process is pid 1.
    let host_pid = crate::spawn::host_pid().map_err(|e| ConfineError::Sys {
        what: "reading /proc/self",
        source: e,
    })?;
    let path = |name: &str| {
        CString::new(format!("/proc/{host_pid}/{name}")).map_err(|_| ConfineError::NoProc)
    };
    let uid_map = path("uid_map")?;
    let gid_map = path("gid_map")?;
    let line = format!("0 {HOST_ID} 1\n").into_bytes();
    let mut p = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into a live array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(sys_err("pipe for the id-map helper"));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: the process is single-threaded (checked by the caller), so the child is a
    // full copy; it only makes raw syscalls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys_err("forking the id-map helper"));
    }
    if pid == 0 {
        // SAFETY (whole block): raw syscalls on descriptors and buffers prepared above.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            libc::close(w.as_raw_fd());
            let mut b = 0u8;
            if libc::read(r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(EXIT_NOT_TOLD);
            }
            if !write_file(&uid_map, &line) {
                libc::_exit(EXIT_UID_MAP);
            }
            if !write_file(&gid_map, &line) {
                libc::_exit(EXIT_GID_MAP);
            }
            libc::_exit(EXIT_OK);
        }
    }
    drop(r);
    Ok(Mapper { pid, go: w })
}

impl Mapper {
    /// Tells the helper to give up (no user namespace after all) and reaps it.
    pub fn cancel(self) {
        let pid = self.pid;
        drop(self.go);
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing one int into a live local.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }

    /// Unshares the user namespace, has the helper map uid/gid 0 to [`HOST_ID`], and makes
    /// the process that uid/gid 0 (host 65534) without supplementary groups. Call while
    /// the process is single-threaded, after the work that needs host root. The process
    /// then holds every capability, in its new namespace only: drop them afterwards (a
    /// new user namespace also resets the bounding set).
    pub fn enter(self) -> Result<(), ConfineError> {
        // SAFETY: setgroups with an empty list reads no memory.
        if unsafe { libc::setgroups(0, std::ptr::null()) } < 0 {
            let e = sys_err("dropping the supplementary groups");
            self.cancel();
            return Err(e);
        }
        // The uid change below resets the parent-death signal `rvisor do` asked for.
        let mut pdeath: libc::c_int = 0;
        // SAFETY: PR_GET_PDEATHSIG writes one int into a live local.
        unsafe {
            libc::prctl(
                libc::PR_GET_PDEATHSIG,
                &mut pdeath as *mut libc::c_int,
                0,
                0,
                0,
            )
        };
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } < 0 {
            let e = sys_err("unshare(user)");
            self.cancel();
            return Err(e);
        }
        // SAFETY: one byte from a live local into our pipe.
        let told = unsafe { libc::write(self.go.as_raw_fd(), [1u8].as_ptr().cast(), 1) } == 1;
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing one int into a live local.
        let reaped = unsafe { libc::waitpid(self.pid, &mut status, 0) } == self.pid;
        if !told || !reaped || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != EXIT_OK {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
            return Err(ConfineError::IdMap(match code {
                EXIT_UID_MAP => "writing uid_map",
                EXIT_GID_MAP => "writing gid_map",
                _ => "the helper failed",
            }));
        }
        // SAFETY: setresgid/setresuid take integers; uid/gid 0 are mapped now.
        if unsafe { libc::setresgid(0, 0, 0) } < 0 {
            return Err(sys_err("setresgid(0) in the user namespace"));
        }
        // SAFETY: as above.
        if unsafe { libc::setresuid(0, 0, 0) } < 0 {
            return Err(sys_err("setresuid(0) in the user namespace"));
        }
        // Armed again (a CLI that died in between these few instructions goes unnoticed:
        // as pid 1 of its namespace, the process cannot see its parent with getppid).
        // SAFETY: prctl with integer arguments.
        if pdeath != 0
            && unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, pdeath as libc::c_ulong, 0, 0, 0) } < 0
        {
            return Err(sys_err("PR_SET_PDEATHSIG"));
        }
        // The uid change made the process non-dumpable, and the zygote it forks (and so
        // every stub) inherits that. Their memory belongs to the host's user namespace (where the sandbox
        // process was exec'd), so attaching to a non-dumpable stub thread
        // (`PTRACE_SEIZE`, which the platform does for every new stub thread) would need
        // CAP_SYS_PTRACE there. Dumpable again, a process can still be ptraced, have its
        // memory or fds read through /proc, only by a caller that holds CAP_SYS_PTRACE in
        // this user namespace: its tasks (same credentials), or host root (the namespace's
        // owner) — not by another host process running as nobody, nor another sandbox.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } < 0 {
            return Err(sys_err("PR_SET_DUMPABLE"));
        }
        Ok(())
    }
}
