//! `rvisor gofer` (internal): serves one directory tree (or one regular file, for a
//! single-file bind mount) to a sandbox over a socket.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct GoferArgs {
    /// Fd (O_PATH) of the directory, or regular file, to serve.
    #[arg(long = "root-fd")]
    root_fd: i32,
    /// Fd of the gofer end of the sandbox connection.
    #[arg(long = "sock-fd")]
    sock_fd: i32,
    /// Refuse every write.
    #[arg(long = "read-only")]
    read_only: bool,
}

pub fn run(g: &crate::GlobalFlags, args: GoferArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "gofer");
    if args.root_fd < 3 || args.sock_fd < 3 || args.root_fd == args.sock_fd {
        anyhow::bail!("gofer: invalid fds");
    }
    // SAFETY: the parent passed these fds to us for our exclusive use; they are not used
    // anywhere else in this process.
    let (root, sock) = unsafe { (OwnedFd::from_raw_fd(args.root_fd), OwnedFd::from_raw_fd(args.sock_fd)) };
    let opts = rvisor_gofer::ServerOptions { read_only: args.read_only };
    let is_file = rvisor_gofer::host_fstat(root.as_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    if is_file {
        // A single-file bind mount: the file is reopened through /proc/self/fd, taken
        // before confinement; that directory (links to the gofer's own descriptors only)
        // is also the gofer's root, a regular file cannot be one.
        let proc_fds = rvisor_gofer::open_proc_self_fd().context("gofer: /proc/self/fd")?;
        confine(proc_fds.as_fd());
        rvisor_gofer::serve_root(sock, root, Some(proc_fds), opts).context("gofer")?;
    } else {
        confine(root.as_fd());
        rvisor_gofer::serve(sock, root, opts).context("gofer")?;
    }
    Ok(0)
}

/// Confines the gofer to the served tree before it reads any request: a mount namespace
/// of its own whose mounts do not propagate, the served tree as its root directory, and
/// no_new_privs. The server resolves nothing from `/` anyway (every operation is relative
/// to a descriptor of the tree); this is defence in depth against a bug there. A step
/// the host does not allow (no privilege) is logged and skipped.
fn confine(root: BorrowedFd<'_>) {
    let step = |what: &str, r: libc::c_int| {
        if r != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, "rvisor: gofer confinement: {what} failed; serving without it");
            false
        } else {
            true
        }
    };
    // SAFETY: unshare takes only flags; the gofer is single-threaded here.
    let ns = step("unshare(CLONE_NEWNS)", unsafe { libc::unshare(libc::CLONE_NEWNS) });
    if ns {
        // SAFETY: null source, type and data are allowed for a propagation change; the
        // target is a NUL-terminated string.
        let r = unsafe {
            libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null())
        };
        step("making mounts private", r);
    }
    // SAFETY: fchdir takes a descriptor (O_PATH directories are accepted) and chroot a
    // NUL-terminated string; neither touches memory of ours otherwise.
    let chrooted = step("fchdir to the served tree", unsafe { libc::fchdir(root.as_raw_fd()) })
        && step("chroot into the served tree", unsafe { libc::chroot(c".".as_ptr()) });
    if chrooted {
        tracing::debug!("gofer: chrooted into the served tree");
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    step("no_new_privs", unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) });
}
