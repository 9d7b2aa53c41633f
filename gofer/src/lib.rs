//! The gofer: a separate process that serves one directory tree (the container root) to the
//! sentry, and the client the sentry uses to talk to it.
//!
//! The sentry opens no host path itself. It asks the gofer for metadata and for host file
//! descriptors (donated with `SCM_RIGHTS`), then reads and writes the files directly. See
//! [`protocol`] for the wire format, [`server::serve`] for the gofer side and
//! [`client::GoferClient`] for the sentry side.

pub mod client;
pub mod error;
mod framing;
mod host;
pub mod protocol;
pub mod seccomp;
pub mod server;

pub use client::GoferClient;
pub use error::GoferError;
pub use host::fstat as host_fstat;
pub use protocol::{DirEntry, Fid};
pub use server::{open_proc_self_fd, serve, serve_root, ServerOptions};

use std::os::fd::OwnedFd;

/// Makes, before the gofer confines itself, the one-time host queries the server would
/// otherwise make on its first request (the number of CPUs, read from `/proc` and cgroup
/// files), which the chroot and the seccomp filter no longer allow.
pub fn warm_up() {
    framing::warm_up();
}

/// A connected pair of close-on-exec `SOCK_SEQPACKET` unix sockets: one end for
/// [`serve`], the other for [`GoferClient::new`].
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), GoferError> {
    Ok(framing::socketpair()?)
}
