//! The error type of the gofer client and server.

use rvisor_syscalls::Errno;

use crate::protocol::ProtocolError;

/// Errors from talking to (or serving) the gofer.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    /// The server answered the request with this errno.
    #[error("gofer: {0}")]
    Errno(Errno),
    /// A message was malformed or did not have the expected shape.
    #[error("gofer protocol error: {0}")]
    Protocol(String),
    /// The socket failed.
    #[error("gofer socket: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("gofer connection closed")]
    Closed,
}

impl GoferError {
    /// The errno the guest sees: the server's answer, EIO for anything else.
    pub fn errno(&self) -> Errno {
        match self {
            GoferError::Errno(e) => *e,
            _ => Errno::EIO,
        }
    }
}

impl From<ProtocolError> for GoferError {
    fn from(e: ProtocolError) -> Self {
        GoferError::Protocol(e.to_string())
    }
}

impl From<Errno> for GoferError {
    fn from(e: Errno) -> Self {
        GoferError::Errno(e)
    }
}
