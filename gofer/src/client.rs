//! The sentry's side of the gofer protocol: synchronous requests over one socket.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

pub use crate::error::GoferError;
use crate::framing::{self, Received};
use crate::protocol::{parse_frame, Op, Request, Response, MAX_MESSAGE, MAX_NAME};
pub use crate::protocol::{DirEntry, Fid};

/// A connection to a gofer server. Requests are serialised: each call sends one request and
/// waits for its answer. `Send + Sync`; concurrent callers take turns.
#[derive(Debug)]
pub struct GoferClient {
    conn: Mutex<Conn>,
}

#[derive(Debug)]
struct Conn {
    sock: OwnedFd,
    buf: Vec<u8>,
    /// Set once the connection can no longer be trusted to pair requests with answers
    /// (closed, or a receive failed after a send); every later call fails with `Closed`.
    broken: bool,
}

impl GoferClient {
    /// A client talking over `sock` (one end of [`crate::socketpair`]).
    pub fn new(sock: OwnedFd) -> GoferClient {
        GoferClient {
            conn: Mutex::new(Conn {
                sock,
                buf: vec![0; MAX_MESSAGE + 1],
                broken: false,
            }),
        }
    }

    /// A fid for the root of the served tree and its attributes.
    pub fn attach(&self) -> Result<(Fid, Stat), GoferError> {
        match self.call(&Request::Attach)? {
            (Response::Attach { fid, attr }, None) => Ok((fid, attr)),
            other => Err(unexpected(Op::Attach, other)),
        }
    }

    /// A fid for the child `name` of directory `dir` (one component: no `/`, not `.` or
    /// `..`) and its attributes. Symlinks are not followed.
    pub fn walk(&self, dir: Fid, name: &[u8]) -> Result<(Fid, Stat), GoferError> {
        if name.len() > MAX_NAME {
            return Err(GoferError::Errno(Errno::ENAMETOOLONG));
        }
        match self.call(&Request::Walk {
            dir,
            name: name.to_vec(),
        })? {
            (Response::Walk { fid, attr }, None) => Ok((fid, attr)),
            other => Err(unexpected(Op::Walk, other)),
        }
    }

    /// The current attributes of `fid`.
    pub fn stat(&self, fid: Fid) -> Result<Stat, GoferError> {
        match self.call(&Request::Stat { fid })? {
            (Response::Stat { attr }, None) => Ok(attr),
            other => Err(unexpected(Op::Stat, other)),
        }
    }

    /// A host descriptor for `fid` opened with open(2) `flags` (no O_CREAT, no O_PATH).
    /// The descriptor is close-on-exec.
    pub fn open(&self, fid: Fid, flags: u32) -> Result<OwnedFd, GoferError> {
        match self.call(&Request::Open { fid, flags })? {
            (Response::Open, Some(fd)) => Ok(fd),
            other => Err(unexpected(Op::Open, other)),
        }
    }

    /// The target of the symlink `fid`.
    pub fn readlink(&self, fid: Fid) -> Result<Vec<u8>, GoferError> {
        match self.call(&Request::Readlink { fid })? {
            (Response::Readlink { target }, None) => Ok(target),
            other => Err(unexpected(Op::Readlink, other)),
        }
    }

    /// Entries of directory `dir` from cookie `offset` (0 for the start; then an entry's
    /// `next_offset`), as many as fit in `max_bytes` of `linux_dirent64` records. An empty
    /// list is the end of the directory; EINVAL if even one entry does not fit.
    pub fn getdents(
        &self,
        dir: Fid,
        offset: u64,
        max_bytes: u32,
    ) -> Result<Vec<DirEntry>, GoferError> {
        match self.call(&Request::Getdents {
            dir,
            offset,
            max_bytes,
        })? {
            (Response::Getdents { entries }, None) => Ok(entries),
            other => Err(unexpected(Op::Getdents, other)),
        }
    }

    /// statfs(2) of the filesystem holding `fid`.
    pub fn statfs(&self, fid: Fid) -> Result<Statfs, GoferError> {
        match self.call(&Request::Statfs { fid })? {
            (Response::Statfs { statfs }, None) => Ok(statfs),
            other => Err(unexpected(Op::Statfs, other)),
        }
    }

    /// Releases `fid`. Fids walked from it stay valid.
    pub fn clunk(&self, fid: Fid) -> Result<(), GoferError> {
        match self.call(&Request::Clunk { fid })? {
            (Response::Clunk, None) => Ok(()),
            other => Err(unexpected(Op::Clunk, other)),
        }
    }

    /// Sends `req` and returns the server's successful answer (an error answer becomes
    /// `GoferError::Errno`).
    fn call(&self, req: &Request) -> Result<(Response, Option<OwnedFd>), GoferError> {
        let msg = req.encode()?;
        // A panic while holding the lock cannot leave `Conn` inconsistent (it only owns the
        // socket and a scratch buffer); a torn exchange marks it broken instead.
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let conn = &mut *guard;
        if conn.broken {
            return Err(GoferError::Closed);
        }
        if let Err(e) = framing::send(conn.sock.as_fd(), &msg, None) {
            if matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)) {
                conn.broken = true;
                return Err(GoferError::Closed);
            }
            return Err(GoferError::Io(e));
        }
        let (len, truncated, mut fds) = match framing::recv(conn.sock.as_fd(), &mut conn.buf) {
            Ok(Received::Message {
                len,
                truncated,
                fds,
            }) => (len, truncated, fds),
            Ok(Received::Eof) => {
                conn.broken = true;
                return Err(GoferError::Closed);
            }
            Err(e) => {
                conn.broken = true;
                return Err(if e.raw_os_error() == Some(libc::ECONNRESET) {
                    GoferError::Closed
                } else {
                    GoferError::Io(e)
                });
            }
        };
        if truncated {
            return Err(GoferError::Protocol("oversized response".into()));
        }
        if fds.len() > 1 {
            return Err(GoferError::Protocol(format!(
                "response carried {} descriptors",
                fds.len()
            )));
        }
        let (code, body) = parse_frame(&conn.buf[..len])?;
        let resp = Response::decode(code, body)?;
        match resp.op() {
            None => match resp {
                Response::Error(errno) => Err(GoferError::Errno(errno)),
                _ => Err(GoferError::Protocol(
                    "error response without an errno".into(),
                )),
            },
            Some(op) if op == req.op() => Ok((resp, fds.pop())),
            Some(op) => {
                // The answer is to some other request: the exchange is out of step.
                conn.broken = true;
                Err(GoferError::Protocol(format!(
                    "{op:?} answer to a {:?} request",
                    req.op()
                )))
            }
        }
    }
}

fn unexpected(op: Op, got: (Response, Option<OwnedFd>)) -> GoferError {
    let fd = if got.1.is_some() { "with" } else { "without" };
    GoferError::Protocol(format!("malformed {op:?} answer {fd} a descriptor"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encoder;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn client_is_send_and_sync() {
        assert_send_sync::<GoferClient>();
    }

    /// Runs `f` with a client whose server end answers every request with `reply`.
    fn with_fake_server(reply: Vec<u8>, fd: bool, f: impl FnOnce(&GoferClient)) {
        let (a, b) = crate::socketpair().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = vec![0; MAX_MESSAGE + 1];
            let (extra, _keep) = crate::socketpair().unwrap();
            while let Ok(Received::Message { .. }) = framing::recv(b.as_fd(), &mut buf) {
                let _ = framing::send(b.as_fd(), &reply, fd.then(|| extra.as_fd()));
            }
        });
        let client = GoferClient::new(a);
        f(&client);
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn an_answer_to_another_op_is_a_protocol_error() {
        let reply = Response::Clunk.encode().unwrap();
        with_fake_server(reply, false, |c| {
            assert!(matches!(c.stat(1), Err(GoferError::Protocol(_))));
            // The exchange is out of step from now on.
            assert!(matches!(c.clunk(1), Err(GoferError::Closed)));
        });
    }

    #[test]
    fn an_open_answer_without_a_descriptor_is_a_protocol_error() {
        with_fake_server(Response::Open.encode().unwrap(), false, |c| {
            assert!(matches!(c.open(1, 0), Err(GoferError::Protocol(_))));
        });
    }

    #[test]
    fn a_descriptor_on_a_stat_answer_is_a_protocol_error() {
        let reply = Response::Stat {
            attr: Stat::default(),
        }
        .encode()
        .unwrap();
        with_fake_server(reply, true, |c| {
            assert!(matches!(c.stat(1), Err(GoferError::Protocol(_))));
        });
    }

    #[test]
    fn garbage_answers_are_protocol_errors() {
        let mut e = Encoder::new(Op::Stat.reply_code());
        e.u64(1);
        with_fake_server(e.finish().unwrap(), false, |c| {
            assert!(matches!(c.stat(1), Err(GoferError::Protocol(_))));
        });
        with_fake_server(vec![1, 2, 3], false, |c| {
            assert!(matches!(c.stat(1), Err(GoferError::Protocol(_))));
        });
    }

    #[test]
    fn a_closed_server_is_closed() {
        let (a, b) = crate::socketpair().unwrap();
        drop(b);
        let c = GoferClient::new(a);
        assert!(matches!(c.attach(), Err(GoferError::Closed)));
        assert_eq!(c.attach().unwrap_err().errno(), Errno::EIO);
    }

    #[test]
    fn over_long_names_fail_locally() {
        let (a, _b) = crate::socketpair().unwrap();
        let c = GoferClient::new(a);
        assert_eq!(
            c.walk(1, &[b'a'; 256]).unwrap_err().errno(),
            Errno::ENAMETOOLONG
        );
    }
}
