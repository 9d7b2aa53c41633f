//! Starting the processes of a sandbox, shared by `rvisor do` and the OCI `create`: the
//! gofer serving a tree, and the root directory it serves.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Stdio};

use anyhow::Context;

use crate::spawn::{detach_with_fds, global_args, inherit_fds, self_command};

/// How a helper process relates to the CLI that starts it.
pub enum Lifetime<'a> {
    /// Dies with the CLI (`rvisor do`).
    Attached,
    /// Outlives it in its own session, in the given cgroups (an OCI container).
    Detached { cgroup_procs: &'a [CString] },
}

/// Opens a directory to serve: the path is resolved once (symlinks included) into an
/// O_PATH descriptor, which the gofer then uses for everything, so swapping a symlink
/// afterwards changes nothing.
pub fn open_tree(path: &Path) -> anyhow::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).context("path holds a NUL byte")?;
    // SAFETY: `c` is a NUL-terminated path; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("{}", path.display()));
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a bind mount's source to serve: a directory, or a regular file (single-file binds
/// such as /etc/hosts). Symlinks in the path, the last one included, are resolved once on
/// the host, as runc resolves a bind source; the O_PATH descriptor is used from then on.
pub fn open_bind_source(path: &Path) -> anyhow::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).context("path holds a NUL byte")?;
    // SAFETY: `c` is a NUL-terminated path; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("{}", path.display()));
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = rvisor_gofer::host_fstat(fd.as_fd()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR | libc::S_IFREG => Ok(fd),
        _ => anyhow::bail!("{}: only directories and regular files can be bind-mounted", path.display()),
    }
}

/// Starts a gofer serving `root`; returns it and the sandbox's end of its connection.
pub fn spawn_gofer(g: &crate::GlobalFlags, root: OwnedFd, read_only: bool, life: &Lifetime<'_>) -> anyhow::Result<(Child, OwnedFd)> {
    let (sentry_end, gofer_end) = rvisor_gofer::socketpair().context("gofer socket")?;
    let mut gofer = self_command()?;
    gofer.args(global_args(g)).arg("gofer");
    gofer.arg(format!("--root-fd={}", root.as_raw_fd()));
    gofer.arg(format!("--sock-fd={}", gofer_end.as_raw_fd()));
    if read_only {
        // The gofer refuses every change: the host tree stays as it is even if the
        // sentry misbehaves.
        gofer.arg("--read-only");
    }
    gofer.stdin(Stdio::null());
    match life {
        Lifetime::Attached => inherit_fds(&mut gofer, &[root.as_fd(), gofer_end.as_fd()]),
        Lifetime::Detached { cgroup_procs } => {
            gofer.stdout(Stdio::null()).stderr(Stdio::null());
            detach_with_fds(&mut gofer, &[root.as_fd(), gofer_end.as_fd()], cgroup_procs.to_vec())
        }
    }
    let child = gofer.spawn().context("starting the gofer")?;
    Ok((child, sentry_end))
}
