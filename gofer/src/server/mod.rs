//! The gofer server: answers one client's requests about one directory tree.
//!
//! The server keeps a table of fids, each an `O_PATH|O_NOFOLLOW` descriptor opened relative
//! to its parent's descriptor. No operation resolves a path from `/` or follows a symlink:
//! a walk opens one name in one directory, and an open reopens a node either through its own
//! descriptor (directories, `"."`) or as one name in its parent directory, checking that the
//! inode opened is the one walked to. A symlink swapped into the tree under the server
//! therefore cannot lead it outside the served tree. Changes (create, mkdir, unlink,
//! rename, setattr, xattrs, ...) follow the same rule: see [`mutate`].
//!
//! The root may also be a regular file (a single-file bind mount such as `/etc/hosts`). It
//! has no parent to reopen it in, so it is reopened through its own descriptor's entry in
//! `/proc/self/fd` (a descriptor of that directory is taken before the gofer confines
//! itself): the kernel's magic link leads to the very inode held, not to a path. Walks
//! from it fail with ENOTDIR.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rvisor_syscalls::flags::dirent::DT_UNKNOWN;
use rvisor_syscalls::flags::mode::{
    S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use rvisor_syscalls::flags::open::*;
use rvisor_syscalls::types::{Stat, DIRENT64_NAME_OFFSET};
use rvisor_syscalls::Errno;

use crate::error::GoferError;
use crate::framing::{self, Received};
use crate::host;
mod mutate;

use crate::protocol::{
    parse_frame, validate_name, DirEntry, Fid, Op, Request, Response, MAX_GETDENTS_BYTES,
    MAX_MESSAGE, MAX_SYMLINK,
};

/// How the tree is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// Refuse every operation that could change the tree (opens for writing, truncating or
    /// appending answer EROFS).
    pub read_only: bool,
}

/// Most fids one client may hold at once.
const MAX_FIDS: usize = 1 << 20;

/// Open flags passed from a request to the host; everything else is dropped (O_ASYNC, whose
/// signals would go to the gofer, O_EXCL, unknown bits).
const PASSED_OPEN_FLAGS: u32 = O_ACCMODE
    | O_TRUNC
    | O_APPEND
    | O_NONBLOCK
    | O_DSYNC
    | O_SYNC
    | O_DIRECT
    | O_LARGEFILE
    | O_DIRECTORY
    | O_NOFOLLOW
    | O_NOATIME
    | O_NOCTTY;

/// The bit of O_TMPFILE that is not O_DIRECTORY.
const O_TMPFILE_ONLY: u32 = O_TMPFILE & !O_DIRECTORY;

/// Serves the tree at `root` (an `O_PATH` or `O_DIRECTORY` descriptor of a directory, or an
/// `O_PATH` descriptor of a regular file) to the client at the other end of `sock` until the
/// client closes it, which returns `Ok`. Requests are answered one at a time; a malformed
/// request gets an error answer. A file root is reopened through `/proc/self/fd`, opened
/// here: a caller that confines itself first uses [`serve_root`].
pub fn serve(sock: OwnedFd, root: OwnedFd, opts: ServerOptions) -> Result<(), GoferError> {
    let proc_fds = if host::fstat(root.as_fd())?.st_mode & S_IFMT == S_IFREG {
        Some(open_proc_self_fd()?)
    } else {
        None
    };
    serve_root(sock, root, proc_fds, opts)
}

/// Opens `/proc/self/fd` (as `O_PATH|O_DIRECTORY`), through which [`serve_root`] reopens a
/// regular-file root. Call it before leaving the host's mount namespace or root.
pub fn open_proc_self_fd() -> Result<OwnedFd, GoferError> {
    use std::os::unix::fs::OpenOptionsExt;
    // "self" is resolved now, once: the descriptor names this process's fd directory.
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((O_PATH | O_DIRECTORY | O_CLOEXEC) as i32)
        .open("/proc/self/fd")?;
    Ok(OwnedFd::from(dir))
}

/// Like [`serve`], with `proc_fds` a descriptor of this process's `/proc/self/fd` (from
/// [`open_proc_self_fd`]), needed when `root` is a regular file (EINVAL without it).
/// Roots of other types (symlinks, devices, fifos, sockets) are refused with ENOTDIR.
pub fn serve_root(
    sock: OwnedFd,
    root: OwnedFd,
    proc_fds: Option<OwnedFd>,
    opts: ServerOptions,
) -> Result<(), GoferError> {
    let root_stat = host::fstat(root.as_fd())?;
    match root_stat.st_mode & S_IFMT {
        S_IFDIR => {}
        S_IFREG if proc_fds.is_some() => {}
        S_IFREG => return Err(GoferError::Errno(Errno::EINVAL)),
        _ => return Err(GoferError::Errno(Errno::ENOTDIR)),
    }
    let mut server = Server {
        root: Rc::new(root),
        proc_fds,
        opts,
        fids: HashMap::new(),
        next_fid: 1,
    };
    tracing::debug!(?opts, "gofer serving");
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let (len, truncated, fds) = match framing::recv(sock.as_fd(), &mut buf) {
            Ok(Received::Eof) => break,
            Ok(Received::Message {
                len,
                truncated,
                fds,
            }) => (len, truncated, fds),
            Err(e) if is_disconnect(&e) => break,
            Err(e) => return Err(GoferError::Io(e)),
        };
        let (reply, fd) = server.answer(&buf[..len], truncated, fds);
        let msg = match reply.encode() {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(error = %e, "gofer: cannot encode a response");
                encode_error(Errno::EIO)
            }
        };
        match framing::send(sock.as_fd(), &msg, fd.as_ref().map(|f| f.as_fd())) {
            Ok(()) => {}
            Err(e) if is_disconnect(&e) => break,
            Err(e) => return Err(GoferError::Io(e)),
        }
    }
    tracing::debug!("gofer client closed the connection");
    Ok(())
}

fn is_disconnect(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET))
}

fn encode_error(errno: Errno) -> Vec<u8> {
    let mut msg = Vec::with_capacity(12);
    msg.extend_from_slice(&crate::protocol::R_ERROR.to_le_bytes());
    msg.extend_from_slice(&4u32.to_le_bytes());
    msg.extend_from_slice(&errno.0.to_le_bytes());
    msg
}

/// One node of the served tree, as a client holds it.
struct Node {
    /// `O_PATH|O_NOFOLLOW` descriptor of the node (for the root: the descriptor given to
    /// [`serve`]).
    fd: Rc<OwnedFd>,
    /// The parent directory and this node's name in it; `None` for the root.
    /// Non-directories are opened as this name in this directory.
    parent: Option<Parent>,
    /// Identity when walked to: an open must reach the same inode.
    dev: u64,
    ino: u64,
    /// `S_IFMT` bits of the mode.
    kind: u32,
    /// An open directory stream for getdents, made on first use.
    dir_stream: Option<OwnedFd>,
}

/// Where a node was walked to (kept in step by renames made through the server).
struct Parent {
    /// The directory's descriptor.
    fd: Rc<OwnedFd>,
    /// The directory's identity.
    dev: u64,
    ino: u64,
    /// The node's name in it.
    name: CString,
}

struct Server {
    root: Rc<OwnedFd>,
    /// `/proc/self/fd`, through which a regular-file root is reopened.
    proc_fds: Option<OwnedFd>,
    opts: ServerOptions,
    fids: HashMap<Fid, Node>,
    next_fid: Fid,
}

impl Server {
    /// The answer to one received datagram, and the fd that goes with it.
    fn answer(
        &mut self,
        msg: &[u8],
        truncated: bool,
        fds: Vec<OwnedFd>,
    ) -> (Response, Option<OwnedFd>) {
        if truncated {
            tracing::debug!("gofer: oversized message");
            return (Response::Error(Errno::EINVAL), None);
        }
        if !fds.is_empty() {
            // Requests never carry descriptors; dropping them closes them.
            tracing::debug!(count = fds.len(), "gofer: request carried descriptors");
            return (Response::Error(Errno::EINVAL), None);
        }
        let req = match parse_frame(msg).and_then(|(code, body)| Request::decode(code, body)) {
            Ok(req) => req,
            Err(e) => {
                tracing::debug!(error = %e, "gofer: malformed request");
                return (Response::Error(e.errno()), None);
            }
        };
        tracing::debug!(?req, "gofer request");
        match self.handle(req) {
            Ok(answer) => answer,
            Err(errno) => {
                tracing::debug!(%errno, "gofer request failed");
                (Response::Error(errno), None)
            }
        }
    }

    fn handle(&mut self, req: Request) -> Result<(Response, Option<OwnedFd>), Errno> {
        Ok(match req {
            Request::Attach => {
                let (fid, attr) = self.attach()?;
                (Response::Attach { fid, attr }, None)
            }
            Request::Walk { dir, name } => {
                let (fid, attr) = self.walk(dir, name)?;
                (Response::Walk { fid, attr }, None)
            }
            Request::Stat { fid } => (
                Response::Stat {
                    attr: host::fstat(self.node(fid)?.fd.as_fd())?,
                },
                None,
            ),
            Request::Open { fid, flags } => (Response::Open, Some(self.open(fid, flags)?)),
            Request::Readlink { fid } => (
                Response::Readlink {
                    target: self.readlink(fid)?,
                },
                None,
            ),
            Request::Getdents {
                dir,
                offset,
                max_bytes,
            } => (
                Response::Getdents {
                    entries: self.getdents(dir, offset, max_bytes)?,
                },
                None,
            ),
            Request::Clunk { fid } => {
                self.fids.remove(&fid).ok_or(Errno::EBADF)?;
                (Response::Clunk, None)
            }
            Request::Statfs { fid } => (
                Response::Statfs {
                    statfs: host::fstatfs(self.node(fid)?.fd.as_fd())?,
                },
                None,
            ),
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                let (fid, attr, fd) = self.create(dir, name, flags, mode, (uid, gid))?;
                let op = Op::Create;
                (Response::New { op, fid, attr }, Some(fd))
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                let (fid, attr) = self.mkdir(dir, name, mode, (uid, gid))?;
                (
                    Response::New {
                        op: Op::Mkdir,
                        fid,
                        attr,
                    },
                    None,
                )
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev: _,
                uid,
                gid,
            } => {
                let (fid, attr) = self.mknod(dir, name, mode, (uid, gid))?;
                (
                    Response::New {
                        op: Op::Mknod,
                        fid,
                        attr,
                    },
                    None,
                )
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                let (fid, attr) = self.symlink(dir, name, target, (uid, gid))?;
                (
                    Response::New {
                        op: Op::Symlink,
                        fid,
                        attr,
                    },
                    None,
                )
            }
            Request::Link { target, dir, name } => {
                self.link(target, dir, name)?;
                (Response::Done(Op::Link), None)
            }
            Request::Unlink { dir, name, flags } => {
                self.unlink(dir, name, flags)?;
                (Response::Done(Op::Unlink), None)
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                self.rename(old_dir, old_name, new_dir, new_name, flags)?;
                (Response::Done(Op::Rename), None)
            }
            Request::Setattr { fid, attr } => {
                self.setattr(fid, attr)?;
                (Response::Done(Op::Setattr), None)
            }
            Request::Getxattr { fid, name } => (
                Response::Getxattr {
                    value: self.getxattr(fid, name)?,
                },
                None,
            ),
            Request::Setxattr {
                fid,
                name,
                value,
                flags,
            } => {
                self.setxattr(fid, name, value, flags)?;
                (Response::Done(Op::Setxattr), None)
            }
            Request::Listxattr { fid } => (
                Response::Listxattr {
                    names: self.listxattr(fid)?,
                },
                None,
            ),
            Request::Removexattr { fid, name } => {
                self.removexattr(fid, name)?;
                (Response::Done(Op::Removexattr), None)
            }
        })
    }

    fn node(&self, fid: Fid) -> Result<&Node, Errno> {
        self.fids.get(&fid).ok_or(Errno::EBADF)
    }

    fn insert(&mut self, node: Node) -> Result<Fid, Errno> {
        if self.fids.len() >= MAX_FIDS {
            return Err(Errno::ENFILE);
        }
        let fid = self.next_fid;
        self.next_fid = self.next_fid.checked_add(1).ok_or(Errno::ENFILE)?;
        self.fids.insert(fid, node);
        Ok(fid)
    }

    fn attach(&mut self) -> Result<(Fid, Stat), Errno> {
        let attr = host::fstat(self.root.as_fd())?;
        let node = Node {
            fd: Rc::clone(&self.root),
            parent: None,
            dev: attr.st_dev,
            ino: attr.st_ino,
            kind: attr.st_mode & S_IFMT,
            dir_stream: None,
        };
        Ok((self.insert(node)?, attr))
    }

    fn walk(&mut self, dir: Fid, name: Vec<u8>) -> Result<(Fid, Stat), Errno> {
        validate_name(&name)?;
        let dir_node = self.node(dir)?;
        if dir_node.kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let parent_fd = Rc::clone(&dir_node.fd);
        let (dev, ino) = (dir_node.dev, dir_node.ino);
        let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
        let flags = (O_PATH | O_NOFOLLOW | O_CLOEXEC) as i32;
        let fd = host::openat(parent_fd.as_fd(), &name, flags)?;
        let attr = host::fstat(fd.as_fd())?;
        let node = Node {
            fd: Rc::new(fd),
            parent: Some(Parent {
                fd: parent_fd,
                dev,
                ino,
                name,
            }),
            dev: attr.st_dev,
            ino: attr.st_ino,
            kind: attr.st_mode & S_IFMT,
            dir_stream: None,
        };
        Ok((self.insert(node)?, attr))
    }

    fn open(&mut self, fid: Fid, flags: u32) -> Result<OwnedFd, Errno> {
        let flags = check_open_flags(flags, self.opts.read_only)?;
        let node = self.node(fid)?;
        if node.kind == S_IFDIR {
            // "." of the node's own descriptor is the node: no name is looked up again, so
            // nothing can have been swapped in.
            let flags = flags | O_DIRECTORY | O_NOCTTY | O_CLOEXEC;
            return host::openat(node.fd.as_fd(), c".", flags as i32);
        }
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        if node.kind != S_IFREG {
            return Err(refusal(node.kind));
        }
        // O_NONBLOCK so that, if a fifo was swapped in, opening it cannot block the gofer.
        let host_flags = flags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
        let fd = match node.parent.as_ref() {
            Some(parent) => host::openat(
                parent.fd.as_fd(),
                &parent.name,
                (host_flags | O_NOFOLLOW) as i32,
            )?,
            None => self.reopen_root_file(&node.fd, host_flags)?,
        };
        let st = host::fstat(fd.as_fd())?;
        if st.st_dev != node.dev || st.st_ino != node.ino {
            tracing::debug!(fid, "gofer: node replaced since walk");
            return Err(Errno::ESTALE);
        }
        if st.st_mode & S_IFMT != S_IFREG {
            return Err(refusal(st.st_mode & S_IFMT));
        }
        if flags & O_NONBLOCK == 0 {
            let fl = host::get_fl(fd.as_fd())?;
            host::set_fl(fd.as_fd(), fl & !libc::O_NONBLOCK)?;
        }
        Ok(fd)
    }

    /// Opens the regular-file root `fd` (O_PATH) anew with `flags`, through its entry in
    /// `/proc/self/fd`: that magic link leads to the inode `fd` holds, whatever its path
    /// now names (O_NOFOLLOW would open the link itself, so it is not passed).
    fn reopen_root_file(&self, fd: &OwnedFd, flags: u32) -> Result<OwnedFd, Errno> {
        let proc_fds = self.proc_fds.as_ref().ok_or(Errno::EINVAL)?;
        let name = CString::new(fd.as_raw_fd().to_string()).map_err(|_| Errno::EINVAL)?;
        host::openat(proc_fds.as_fd(), &name, (flags & !O_NOFOLLOW) as i32)
    }

    fn readlink(&self, fid: Fid) -> Result<Vec<u8>, Errno> {
        let node = self.node(fid)?;
        if node.kind != S_IFLNK {
            return Err(Errno::EINVAL);
        }
        host::readlink_fd(node.fd.as_fd(), MAX_SYMLINK)
    }

    fn getdents(&mut self, dir: Fid, offset: u64, max_bytes: u32) -> Result<Vec<DirEntry>, Errno> {
        let node = self.fids.get_mut(&dir).ok_or(Errno::EBADF)?;
        if node.kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let max = max_bytes.min(MAX_GETDENTS_BYTES) as usize;
        if max < crate::protocol::dirent64_reclen(1) {
            return Err(Errno::EINVAL);
        }
        let stream = match node.dir_stream.take() {
            Some(fd) => fd,
            None => host::openat(
                node.fd.as_fd(),
                c".",
                (O_RDONLY | O_DIRECTORY | O_CLOEXEC) as i32,
            )?,
        };
        let result = read_dir_page(stream.as_fd(), offset, max);
        node.dir_stream = Some(stream);
        result
    }
}

/// Reads the entries of the directory stream `fd` from cookie `offset` that fit in `max`
/// bytes of `linux_dirent64` records (the host's getdents64 fills exactly that).
fn read_dir_page(fd: BorrowedFd<'_>, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
    host::seek_set(fd, offset)?;
    let mut buf = vec![0u8; max];
    let n = host::getdents64(fd, &mut buf)?;
    Ok(parse_dirents(&buf[..n]))
}

/// Parses `linux_dirent64` records, stopping at the first record that is not well formed.
fn parse_dirents(mut buf: &[u8]) -> Vec<DirEntry> {
    let mut entries = Vec::new();
    while let Some(hdr) = buf.get(..DIRENT64_NAME_OFFSET) {
        let ino = u64::from_le_bytes(hdr[0..8].try_into().unwrap_or_default());
        let next_offset = u64::from_le_bytes(hdr[8..16].try_into().unwrap_or_default());
        let reclen = usize::from(u16::from_le_bytes(
            hdr[16..18].try_into().unwrap_or_default(),
        ));
        let d_type = hdr[18];
        let Some(record) = buf.get(..reclen).filter(|_| reclen > DIRENT64_NAME_OFFSET) else {
            break;
        };
        let name_field = &record[DIRENT64_NAME_OFFSET..];
        let name_len = name_field
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_field.len());
        let name = &name_field[..name_len];
        if !name.is_empty() && name.len() <= crate::protocol::MAX_NAME && !name.contains(&b'/') {
            entries.push(DirEntry {
                ino,
                next_offset,
                d_type: if d_type > 14 { DT_UNKNOWN } else { d_type },
                name: name.to_vec(),
            });
        }
        buf = &buf[reclen..];
    }
    entries
}

/// Checks a client's open flags and returns those passed to the host.
fn check_open_flags(flags: u32, read_only: bool) -> Result<u32, Errno> {
    if flags & (O_PATH | O_CREAT | O_TMPFILE_ONLY) != 0 {
        return Err(Errno::EINVAL);
    }
    let access = flags & O_ACCMODE;
    if access == O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    if read_only && (access != O_RDONLY || flags & (O_TRUNC | O_APPEND) != 0) {
        return Err(Errno::EROFS);
    }
    Ok(flags & PASSED_OPEN_FLAGS)
}

/// The errno for opening a node of a type the gofer never opens: the guest must not make
/// the gofer block on a host fifo or touch a host device.
fn refusal(kind: u32) -> Errno {
    match kind {
        S_IFIFO | S_IFSOCK => Errno::ENXIO,
        S_IFCHR | S_IFBLK => Errno::EACCES,
        S_IFLNK => Errno::ELOOP,
        S_IFDIR => Errno::EISDIR,
        _ => Errno::EACCES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_reject_path_creat_and_tmpfile() {
        for bad in [
            O_PATH,
            O_CREAT,
            O_TMPFILE,
            O_RDONLY | O_PATH | O_DIRECTORY,
            O_ACCMODE,
        ] {
            assert_eq!(check_open_flags(bad, false), Err(Errno::EINVAL), "{bad:#o}");
        }
    }

    #[test]
    fn read_only_refuses_any_write_access() {
        for bad in [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_RDONLY | O_APPEND] {
            assert_eq!(check_open_flags(bad, true), Err(Errno::EROFS), "{bad:#o}");
            assert!(check_open_flags(bad, false).is_ok());
        }
        assert_eq!(
            check_open_flags(O_RDONLY | O_NONBLOCK, true),
            Ok(O_RDONLY | O_NONBLOCK)
        );
    }

    #[test]
    fn open_flags_drop_async_excl_and_unknown_bits() {
        let flags = O_RDWR | O_ASYNC | O_EXCL | O_CLOEXEC | 0x8000_0000;
        assert_eq!(check_open_flags(flags, false), Ok(O_RDWR));
    }

    #[test]
    fn refusals_never_open_fifos_sockets_or_devices() {
        assert_eq!(refusal(S_IFIFO), Errno::ENXIO);
        assert_eq!(refusal(S_IFSOCK), Errno::ENXIO);
        assert_eq!(refusal(S_IFCHR), Errno::EACCES);
        assert_eq!(refusal(S_IFBLK), Errno::EACCES);
    }

    fn record(ino: u64, off: u64, ty: u8, name: &[u8]) -> Vec<u8> {
        let reclen = crate::protocol::dirent64_reclen(name.len());
        let mut r = vec![0u8; reclen];
        r[0..8].copy_from_slice(&ino.to_le_bytes());
        r[8..16].copy_from_slice(&off.to_le_bytes());
        r[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        r[18] = ty;
        r[19..19 + name.len()].copy_from_slice(name);
        r
    }

    #[test]
    fn parse_dirents_reads_whole_records_and_stops_at_garbage() {
        let mut buf = record(1, 10, 4, b".");
        buf.extend(record(2, 20, 8, b"hello.txt"));
        let entries = parse_dirents(&buf);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1],
            DirEntry {
                ino: 2,
                next_offset: 20,
                d_type: 8,
                name: b"hello.txt".to_vec()
            }
        );
        // A record whose length runs past the buffer, or is too small, ends the parse.
        let mut bad = buf.clone();
        bad.extend(&record(3, 30, 8, b"x")[..10]);
        assert_eq!(parse_dirents(&bad).len(), 2);
        let mut zero = record(3, 30, 8, b"x");
        zero[16..18].copy_from_slice(&0u16.to_le_bytes());
        assert!(parse_dirents(&zero).is_empty());
    }
}
