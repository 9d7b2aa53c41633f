//! runc's console socket protocol: the runtime makes a pseudo-terminal and sends its
//! master to the caller's unix socket (one message: the pty's name as payload, the master
//! as SCM_RIGHTS); the replica becomes the container process's stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::Context;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// A new host pseudo-terminal pair: (master, replica, replica's path).
pub fn open_pty() -> anyhow::Result<(OwnedFd, OwnedFd, String)> {
    let pty = nix::pty::openpty(None, None).context("openpty")?;
    let name = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/dev/pts/ptmx".into());
    for fd in [&pty.master, &pty.slave] {
        // SAFETY: F_SETFD on descriptors we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((pty.master, pty.slave, name))
}

/// Sends `master` to the console socket at `path`.
pub fn send_master(path: &Path, master: &OwnedFd, name: &str) -> anyhow::Result<()> {
    let sock = UnixStream::connect(path).with_context(|| format!("console socket {}", path.display()))?;
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .with_context(|| format!("console socket {}: sending the terminal", path.display()))?;
    Ok(())
}

/// A pty for a container process when a console socket is given: the master goes to the
/// socket, the replica is returned.
pub fn pty_for(console_socket: &Path) -> anyhow::Result<OwnedFd> {
    let (master, replica, name) = open_pty()?;
    send_master(console_socket, &master, &name)?;
    Ok(replica)
}
