//! `rvisor gofer` (internal): serves one directory tree to a sandbox over a socket.

use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct GoferArgs {
    /// Fd of the directory to serve.
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
    rvisor_gofer::serve(sock, root, rvisor_gofer::ServerOptions { read_only: args.read_only }).context("gofer")?;
    Ok(0)
}
