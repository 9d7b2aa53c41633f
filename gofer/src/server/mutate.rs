//! The operations that change the served tree: create, mkdir, mknod, symlink, link, unlink,
//! rename, setattr, and extended attributes.
//!
//! Every namespace change is one host call relative to a directory fid's descriptor with
//! one validated name (no `/`, not `.` or `..`), made with the flags that keep the host from
//! following a symlink at that name (O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat, mknodat,
//! symlinkat, unlinkat, renameat2 and linkat never follow the last component). Attribute
//! changes go through the node's own O_PATH descriptor (AT_EMPTY_PATH), so a name swapped
//! since the walk changes nothing.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use rvisor_syscalls::flags::open::*;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::{check_open_flags, Node, Parent, Server};
use crate::host;
use crate::protocol::{
    setattr_valid as sv, validate_name, Fid, SetAttrMsg, AT_REMOVEDIR, MAX_SYMLINK, MAX_XATTR_LIST,
    MAX_XATTR_NAME, MAX_XATTR_VALUE, RENAME_EXCHANGE,
};

/// The only extended attribute namespace served.
const USER_PREFIX: &[u8] = b"user.";

/// The kernel's UTIME_NOW.
const UTIME_NOW: i64 = (1 << 30) - 1;
/// The kernel's UTIME_OMIT.
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn cname(name: Vec<u8>) -> Result<CString, Errno> {
    validate_name(&name)?;
    CString::new(name).map_err(|_| Errno::EINVAL)
}

impl Server {
    /// EROFS when the tree is served read-only.
    fn writable(&self) -> Result<(), Errno> {
        if self.opts.read_only {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// The directory node `dir` (ENOTDIR for another kind).
    fn dir_node(&self, dir: Fid) -> Result<&Node, Errno> {
        let node = self.node(dir)?;
        if node.kind != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(node)
    }

    /// Makes a fid for the node just made as `name` in `dir`, checking it is of type `kind`
    /// (and, when `expect` is given, that inode).
    fn adopt(
        &mut self,
        dir: Fid,
        name: CString,
        kind: u32,
        expect: Option<&Stat>,
    ) -> Result<(Fid, Stat), Errno> {
        let d = self.dir_node(dir)?;
        let (parent_fd, dev, ino) = (Rc::clone(&d.fd), d.dev, d.ino);
        let flags = (O_PATH | O_NOFOLLOW | O_CLOEXEC) as i32;
        let fd = host::openat(parent_fd.as_fd(), &name, flags)?;
        let attr = host::fstat(fd.as_fd())?;
        let same = expect.is_none_or(|e| e.st_dev == attr.st_dev && e.st_ino == attr.st_ino);
        if attr.st_mode & S_IFMT != kind || !same {
            tracing::debug!("gofer: new node replaced before it was adopted");
            return Err(Errno::ESTALE);
        }
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
            kind,
            dir_stream: None,
        };
        Ok((self.insert(node)?, attr))
    }

    /// Gives the node `fd` (O_PATH) the owner `uid:gid` and permission bits `mode` if it
    /// has not got them. A gofer that is not root cannot give files away: it leaves them
    /// its own.
    fn settle_new(
        &self,
        fd: &OwnedFd,
        kind: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Stat, Errno> {
        let st = host::fstat(fd.as_fd())?;
        if (st.st_uid, st.st_gid) != (uid, gid) {
            match host::chown_fd(fd.as_fd(), uid, gid) {
                Ok(()) => {}
                Err(Errno::EPERM) if host::euid() != 0 => {}
                Err(e) => return Err(e),
            }
        }
        // chown clears set-ID bits, and the gofer's umask applied at creation: set the
        // requested bits last.
        if kind != S_IFLNK && host::fstat(fd.as_fd())?.st_mode & 0o7777 != mode {
            set_mode(fd, kind, mode)?;
        }
        host::fstat(fd.as_fd())
    }

    /// Runs `make` (which creates `name` in `dir`), then gives the new node its owner and
    /// mode and a fid; the node is removed again if that fails.
    fn make_node(
        &mut self,
        dir: Fid,
        name: Vec<u8>,
        kind: u32,
        perm: u32,
        (uid, gid): (u32, u32),
        make: impl FnOnce(&OwnedFd, &CString) -> Result<(), Errno>,
    ) -> Result<(Fid, Stat), Errno> {
        self.writable()?;
        let name = cname(name)?;
        let dir_fd = Rc::clone(&self.dir_node(dir)?.fd);
        make(&dir_fd, &name)?;
        let result = self
            .adopt(dir, name.clone(), kind, None)
            .and_then(|(fid, _)| {
                let node = self.node(fid)?;
                match self.settle_new(&node.fd, kind, perm, uid, gid) {
                    Ok(attr) => Ok((fid, attr)),
                    Err(e) => {
                        self.fids.remove(&fid);
                        Err(e)
                    }
                }
            });
        if let Err(e) = result {
            let flags = if kind == S_IFDIR {
                libc::AT_REMOVEDIR
            } else {
                0
            };
            let _ = host::unlinkat(dir_fd.as_fd(), &name, flags);
            return Err(e);
        }
        result
    }

    /// Creates and opens the regular file `name` in `dir`.
    pub(super) fn create(
        &mut self,
        dir: Fid,
        name: Vec<u8>,
        flags: u32,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(Fid, Stat, OwnedFd), Errno> {
        self.writable()?;
        if mode & !0o7777 != 0 {
            return Err(Errno::EINVAL);
        }
        let flags = check_open_flags(flags & !(O_CREAT | O_EXCL), false)?;
        let name = cname(name)?;
        let dir_fd = Rc::clone(&self.dir_node(dir)?.fd);
        // O_CREAT|O_EXCL fails on any existing name, a symlink included, and never follows.
        let host_flags = flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
        let file = host::openat_create(dir_fd.as_fd(), &name, host_flags as i32, mode)?;
        let opened = host::fstat(file.as_fd())?;
        let result = self
            .adopt(dir, name.clone(), S_IFREG, Some(&opened))
            .and_then(|(fid, _)| {
                let node = self.node(fid)?;
                match self.settle_new(&node.fd, S_IFREG, mode, owner.0, owner.1) {
                    Ok(attr) => Ok((fid, attr)),
                    Err(e) => {
                        self.fids.remove(&fid);
                        Err(e)
                    }
                }
            });
        match result {
            Ok((fid, attr)) => Ok((fid, attr, file)),
            Err(e) => {
                let _ = host::unlinkat(dir_fd.as_fd(), &name, 0);
                Err(e)
            }
        }
    }

    pub(super) fn mkdir(
        &mut self,
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(Fid, Stat), Errno> {
        if mode & !0o7777 != 0 {
            return Err(Errno::EINVAL);
        }
        self.make_node(dir, name, S_IFDIR, mode, owner, |d, n| {
            host::mkdirat(d.as_fd(), n, mode)
        })
    }

    pub(super) fn mknod(
        &mut self,
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(Fid, Stat), Errno> {
        if mode & !(S_IFMT | 0o7777) != 0 {
            return Err(Errno::EINVAL);
        }
        let kind = match mode & S_IFMT {
            0 => S_IFREG,
            k @ (S_IFREG | S_IFIFO | S_IFSOCK) => k,
            k if k == rvisor_syscalls::flags::mode::S_IFCHR
                || k == rvisor_syscalls::flags::mode::S_IFBLK =>
            {
                return Err(Errno::EPERM)
            }
            _ => return Err(Errno::EINVAL),
        };
        let perm = mode & 0o7777;
        self.make_node(dir, name, kind, perm, owner, |d, n| {
            host::mknodat(d.as_fd(), n, kind | perm)
        })
    }

    pub(super) fn symlink(
        &mut self,
        dir: Fid,
        name: Vec<u8>,
        target: Vec<u8>,
        owner: (u32, u32),
    ) -> Result<(Fid, Stat), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= MAX_SYMLINK {
            return Err(Errno::ENAMETOOLONG);
        }
        let target = CString::new(target).map_err(|_| Errno::EINVAL)?;
        self.make_node(dir, name, S_IFLNK, 0o777, owner, |d, n| {
            host::symlinkat(&target, d.as_fd(), n)
        })
    }

    pub(super) fn link(&mut self, target: Fid, dir: Fid, name: Vec<u8>) -> Result<(), Errno> {
        self.writable()?;
        let name = cname(name)?;
        let dir_fd = Rc::clone(&self.dir_node(dir)?.fd);
        let node = self.node(target)?;
        if node.kind == S_IFDIR {
            return Err(Errno::EPERM);
        }
        match host::link_fd(node.fd.as_fd(), dir_fd.as_fd(), &name) {
            // Linking by descriptor needs CAP_DAC_READ_SEARCH: without it, link the node's
            // name and check the result is the node.
            Err(Errno::ENOENT) if host::euid() != 0 => {}
            other => return other,
        }
        let parent = node.parent.as_ref().ok_or(Errno::EPERM)?;
        host::linkat(parent.fd.as_fd(), &parent.name, dir_fd.as_fd(), &name)?;
        let (dev, ino) = (node.dev, node.ino);
        let flags = (O_PATH | O_NOFOLLOW | O_CLOEXEC) as i32;
        let made =
            host::openat(dir_fd.as_fd(), &name, flags).and_then(|fd| host::fstat(fd.as_fd()));
        if !made.is_ok_and(|st| st.st_dev == dev && st.st_ino == ino) {
            let _ = host::unlinkat(dir_fd.as_fd(), &name, 0);
            return Err(Errno::ESTALE);
        }
        Ok(())
    }

    pub(super) fn unlink(&mut self, dir: Fid, name: Vec<u8>, flags: u32) -> Result<(), Errno> {
        self.writable()?;
        let name = cname(name)?;
        let dir_fd = Rc::clone(&self.dir_node(dir)?.fd);
        let flags = if flags & AT_REMOVEDIR != 0 {
            libc::AT_REMOVEDIR
        } else {
            0
        };
        host::unlinkat(dir_fd.as_fd(), &name, flags)
    }

    pub(super) fn rename(
        &mut self,
        old_dir: Fid,
        old_name: Vec<u8>,
        new_dir: Fid,
        new_name: Vec<u8>,
        flags: u32,
    ) -> Result<(), Errno> {
        self.writable()?;
        let old_name = cname(old_name)?;
        let new_name = cname(new_name)?;
        let od = self.dir_node(old_dir)?;
        let (od_fd, od_id) = (Rc::clone(&od.fd), (od.dev, od.ino));
        let nd = self.dir_node(new_dir)?;
        let (nd_fd, nd_id) = (Rc::clone(&nd.fd), (nd.dev, nd.ino));
        host::renameat2(od_fd.as_fd(), &old_name, nd_fd.as_fd(), &new_name, flags)?;
        // Fids walked to the old name (and, for an exchange, the new one) follow it, so
        // their opens find the file under its new name.
        let exchange = flags & RENAME_EXCHANGE != 0;
        for node in self.fids.values_mut() {
            let Some(p) = node.parent.as_mut() else {
                continue;
            };
            let at = ((p.dev, p.ino), p.name.as_bytes());
            if at == (od_id, old_name.as_bytes()) {
                *p = Parent {
                    fd: Rc::clone(&nd_fd),
                    dev: nd_id.0,
                    ino: nd_id.1,
                    name: new_name.clone(),
                };
            } else if exchange && at == (nd_id, new_name.as_bytes()) {
                *p = Parent {
                    fd: Rc::clone(&od_fd),
                    dev: od_id.0,
                    ino: od_id.1,
                    name: old_name.clone(),
                };
            }
        }
        Ok(())
    }

    pub(super) fn setattr(&mut self, fid: Fid, a: SetAttrMsg) -> Result<(), Errno> {
        self.writable()?;
        let node = self.node(fid)?;
        let (fd, kind) = (Rc::clone(&node.fd), node.kind);
        if a.valid & (sv::UID | sv::GID) != 0 {
            let uid = if a.valid & sv::UID != 0 {
                a.uid
            } else {
                u32::MAX
            };
            let gid = if a.valid & sv::GID != 0 {
                a.gid
            } else {
                u32::MAX
            };
            host::chown_fd(fd.as_fd(), uid, gid)?;
        }
        if a.valid & sv::MODE != 0 {
            if kind == S_IFLNK {
                return Err(Errno::EOPNOTSUPP);
            }
            set_mode(&fd, kind, a.mode)?;
        }
        if a.valid & sv::SIZE != 0 {
            match kind {
                S_IFREG => {}
                S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            let size = i64::try_from(a.size).map_err(|_| Errno::EINVAL)?;
            let file = self.open(fid, O_WRONLY)?;
            host::ftruncate(file.as_fd(), size)?;
        }
        let time = |set: u32, now: u32, sec: i64, nsec: i64| {
            if a.valid & now != 0 {
                libc::timespec {
                    tv_sec: 0,
                    tv_nsec: UTIME_NOW,
                }
            } else if a.valid & set != 0 {
                libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                }
            } else {
                libc::timespec {
                    tv_sec: 0,
                    tv_nsec: UTIME_OMIT,
                }
            }
        };
        let times = [
            time(sv::ATIME, sv::ATIME_NOW, a.atime_sec, a.atime_nsec),
            time(sv::MTIME, sv::MTIME_NOW, a.mtime_sec, a.mtime_nsec),
        ];
        if a.valid & (sv::ATIME | sv::ATIME_NOW | sv::MTIME | sv::MTIME_NOW) != 0 {
            host::utimens_fd(fd.as_fd(), &times)?;
        }
        Ok(())
    }

    /// A descriptor on which the node's extended attributes can be read and written: the
    /// directory itself or the regular file reopened (checked to be the node). `None` for
    /// other kinds, which carry no `user.` attributes.
    fn xattr_fd(&mut self, fid: Fid) -> Result<Option<OwnedFd>, Errno> {
        let node = self.node(fid)?;
        match node.kind {
            S_IFDIR => {
                let flags = (O_RDONLY | O_DIRECTORY | O_CLOEXEC) as i32;
                host::openat(node.fd.as_fd(), c".", flags).map(Some)
            }
            S_IFREG => self.open(fid, O_RDONLY).map(Some),
            _ => Ok(None),
        }
    }

    pub(super) fn getxattr(&mut self, fid: Fid, name: Vec<u8>) -> Result<Vec<u8>, Errno> {
        let name = xattr_name(name)?;
        match self.xattr_fd(fid)? {
            Some(fd) => host::fgetxattr(fd.as_fd(), &name, MAX_XATTR_VALUE),
            None => Err(Errno::ENODATA),
        }
    }

    pub(super) fn setxattr(
        &mut self,
        fid: Fid,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    ) -> Result<(), Errno> {
        self.writable()?;
        let name = xattr_name(name)?;
        match self.xattr_fd(fid)? {
            Some(fd) => host::fsetxattr(fd.as_fd(), &name, &value, flags as i32),
            None => Err(Errno::EPERM),
        }
    }

    pub(super) fn listxattr(&mut self, fid: Fid) -> Result<Vec<u8>, Errno> {
        let Some(fd) = self.xattr_fd(fid)? else {
            return Ok(Vec::new());
        };
        let all = host::flistxattr(fd.as_fd(), MAX_XATTR_LIST)?;
        let mut names = Vec::new();
        for n in all
            .split(|&b| b == 0)
            .filter(|n| n.starts_with(USER_PREFIX))
        {
            names.extend_from_slice(n);
            names.push(0);
        }
        Ok(names)
    }

    pub(super) fn removexattr(&mut self, fid: Fid, name: Vec<u8>) -> Result<(), Errno> {
        self.writable()?;
        let name = xattr_name(name)?;
        match self.xattr_fd(fid)? {
            Some(fd) => host::fremovexattr(fd.as_fd(), &name),
            None => Err(Errno::EPERM),
        }
    }
}

/// Changes the permission bits of the node `fd` (O_PATH) of type `kind`.
fn set_mode(fd: &OwnedFd, kind: u32, mode: u32) -> Result<(), Errno> {
    match host::chmod_fd(fd.as_fd(), mode) {
        // Before fchmodat2 (Linux 6.6): a directory can be reopened through its own
        // descriptor; other kinds cannot be reached without a name.
        Err(Errno::ENOSYS) if kind == S_IFDIR => {
            let dir = host::openat(
                fd.as_fd(),
                c".",
                (O_RDONLY | O_DIRECTORY | O_CLOEXEC) as i32,
            )?;
            host::fchmod(dir.as_fd(), mode)
        }
        other => other,
    }
}

/// Checks an extended attribute name: 1..=255 bytes, no NUL, in the `user.` namespace
/// (EOPNOTSUPP for the others, which a guest may not reach on the host).
fn xattr_name(name: Vec<u8>) -> Result<CString, Errno> {
    if name.is_empty() || name.len() > MAX_XATTR_NAME {
        return Err(Errno::ERANGE);
    }
    if !name.starts_with(USER_PREFIX) {
        return Err(Errno::EOPNOTSUPP);
    }
    if name.len() == USER_PREFIX.len() {
        return Err(Errno::EINVAL);
    }
    CString::new(name).map_err(|_| Errno::EINVAL)
}
