//! The sentry's side of the gofer protocol: synchronous requests over one socket.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

pub use crate::error::GoferError;
use crate::framing::{self, Received};
use crate::protocol::{
    parse_frame, Op, Request, Response, AT_REMOVEDIR, MAX_MESSAGE, MAX_NAME, MAX_SYMLINK,
    MAX_XATTR_NAME, MAX_XATTR_VALUE,
};
pub use crate::protocol::{
    setattr_valid, SetAttrMsg, RENAME_EXCHANGE, RENAME_NOREPLACE, XATTR_CREATE, XATTR_REPLACE,
};
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

    /// Creates the regular file `name` in directory `dir` (exclusively: EEXIST if the name
    /// exists) with permission bits `mode` and owner `uid:gid`, opened with open(2)
    /// access mode and status `flags`. Returns the new fid, its attributes and the opened
    /// host descriptor (close-on-exec).
    pub fn create(
        &self,
        dir: Fid,
        name: &[u8],
        flags: u32,
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> Result<(Fid, Stat, OwnedFd), GoferError> {
        check_name(name)?;
        let req = Request::Create {
            dir,
            name: name.to_vec(),
            flags,
            mode,
            uid,
            gid,
        };
        match self.call(&req)? {
            (Response::New { fid, attr, .. }, Some(fd)) => Ok((fid, attr, fd)),
            other => Err(unexpected(Op::Create, other)),
        }
    }

    /// Creates the directory `name` in `dir`.
    pub fn mkdir(
        &self,
        dir: Fid,
        name: &[u8],
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> Result<(Fid, Stat), GoferError> {
        check_name(name)?;
        let req = Request::Mkdir {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        };
        self.new_node(&req)
    }

    /// Creates the fifo, socket or empty regular file `name` in `dir` (`mode` includes
    /// the type).
    pub fn mknod(
        &self,
        dir: Fid,
        name: &[u8],
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> Result<(Fid, Stat), GoferError> {
        check_name(name)?;
        let req = Request::Mknod {
            dir,
            name: name.to_vec(),
            mode,
            rdev: 0,
            uid,
            gid,
        };
        self.new_node(&req)
    }

    /// Creates the symlink `name` in `dir` pointing to `target`.
    pub fn symlink(
        &self,
        dir: Fid,
        name: &[u8],
        target: &[u8],
        (uid, gid): (u32, u32),
    ) -> Result<(Fid, Stat), GoferError> {
        check_name(name)?;
        if target.len() >= MAX_SYMLINK {
            return Err(GoferError::Errno(Errno::ENAMETOOLONG));
        }
        let req = Request::Symlink {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
            uid,
            gid,
        };
        self.new_node(&req)
    }

    /// Adds the name `name` in `dir` for the node `target`.
    pub fn link(&self, target: Fid, dir: Fid, name: &[u8]) -> Result<(), GoferError> {
        check_name(name)?;
        self.done(&Request::Link {
            target,
            dir,
            name: name.to_vec(),
        })
    }

    /// Removes `name` from `dir`: a directory if `remove_dir`, else anything else.
    pub fn unlink(&self, dir: Fid, name: &[u8], remove_dir: bool) -> Result<(), GoferError> {
        check_name(name)?;
        let flags = if remove_dir { AT_REMOVEDIR } else { 0 };
        self.done(&Request::Unlink {
            dir,
            name: name.to_vec(),
            flags,
        })
    }

    /// renameat2(2) of `old_name` in `old_dir` to `new_name` in `new_dir`.
    pub fn rename(
        &self,
        old_dir: Fid,
        old_name: &[u8],
        new_dir: Fid,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), GoferError> {
        check_name(old_name)?;
        check_name(new_name)?;
        self.done(&Request::Rename {
            old_dir,
            old_name: old_name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        })
    }

    /// Changes the mode, owner, size or timestamps of `fid`.
    pub fn setattr(&self, fid: Fid, attr: SetAttrMsg) -> Result<(), GoferError> {
        self.done(&Request::Setattr { fid, attr })
    }

    /// The value of the extended attribute `name` of `fid`.
    pub fn getxattr(&self, fid: Fid, name: &[u8]) -> Result<Vec<u8>, GoferError> {
        check_xattr_name(name)?;
        let req = Request::Getxattr {
            fid,
            name: name.to_vec(),
        };
        match self.call(&req)? {
            (Response::Getxattr { value }, None) => Ok(value),
            other => Err(unexpected(Op::Getxattr, other)),
        }
    }

    /// Sets the extended attribute `name` of `fid` (`flags`: 0, XATTR_CREATE, XATTR_REPLACE).
    pub fn setxattr(
        &self,
        fid: Fid,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), GoferError> {
        check_xattr_name(name)?;
        if value.len() > MAX_XATTR_VALUE {
            return Err(GoferError::Errno(Errno::E2BIG));
        }
        self.done(&Request::Setxattr {
            fid,
            name: name.to_vec(),
            value: value.to_vec(),
            flags,
        })
    }

    /// The names of the extended attributes of `fid`, each NUL-terminated.
    pub fn listxattr(&self, fid: Fid) -> Result<Vec<u8>, GoferError> {
        match self.call(&Request::Listxattr { fid })? {
            (Response::Listxattr { names }, None) => Ok(names),
            other => Err(unexpected(Op::Listxattr, other)),
        }
    }

    /// Removes the extended attribute `name` of `fid`.
    pub fn removexattr(&self, fid: Fid, name: &[u8]) -> Result<(), GoferError> {
        check_xattr_name(name)?;
        self.done(&Request::Removexattr {
            fid,
            name: name.to_vec(),
        })
    }

    /// Sends a request answered by [`Response::New`] without a descriptor.
    fn new_node(&self, req: &Request) -> Result<(Fid, Stat), GoferError> {
        match self.call(req)? {
            (Response::New { fid, attr, .. }, None) => Ok((fid, attr)),
            other => Err(unexpected(req.op(), other)),
        }
    }

    /// Sends a request answered by [`Response::Done`].
    fn done(&self, req: &Request) -> Result<(), GoferError> {
        match self.call(req)? {
            (Response::Done(_), None) => Ok(()),
            other => Err(unexpected(req.op(), other)),
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

/// A name the protocol cannot carry fails here, with the errno the server would give.
fn check_name(name: &[u8]) -> Result<(), GoferError> {
    if name.len() > MAX_NAME {
        return Err(GoferError::Errno(Errno::ENAMETOOLONG));
    }
    Ok(())
}

fn check_xattr_name(name: &[u8]) -> Result<(), GoferError> {
    if name.is_empty() || name.len() > MAX_XATTR_NAME {
        return Err(GoferError::Errno(Errno::ERANGE));
    }
    Ok(())
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
