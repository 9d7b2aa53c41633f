//! Syscalls that change the filesystem: creating, linking, removing and renaming names;
//! file sizes; modes, owners and timestamps.
//!
//! The handlers split a path into its parent directory and last component as Linux does
//! (`.`, `..`, `/` and trailing slashes each get the errno Linux gives for that call),
//! check the caller's permissions with its filesystem credentials (write and search on the
//! directory, the sticky bit, ownership), then call the filesystem ([`crate::vfs::Inode`]) and keep the
//! dentry cache in step. Errors come in Linux's order: EEXIST before EROFS for calls that
//! create a name, EROFS before the lookup for calls that remove one.

use std::sync::Arc;

use rvisor_syscalls::flags::at::*;
use rvisor_syscalls::flags::capability::{CAP_CHOWN, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_MKNOD};
use rvisor_syscalls::flags::limits::{NAME_MAX, SYMLOOP_MAX};
use rvisor_syscalls::flags::mode::{S_IFMT, S_IFREG, S_ISGID, S_ISUID, S_ISVTX};
use rvisor_syscalls::flags::open::{O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH};
use rvisor_syscalls::types::{Stat, Timespec, Timeval};
use rvisor_syscalls::Errno;

use super::fs::{may_access, open_dentry};
use rvisor_syscalls::fdkinds::inotify::{IN_ATTRIB, IN_CREATE, IN_MODIFY};
use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::inode::rename_flags::{RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT};
use crate::vfs::{Dentry, Lookup, SetAttr, TimeSet};

/// utimensat(2) `tv_nsec` values.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;
/// Group execute, which makes S_ISGID mean "set-group-ID" rather than mandatory locking.
const S_IXGRP: u32 = 0o010;

fn fd_arg(v: u64) -> i32 {
    v as i32
}

// ---------------------------------------------------------------------------------------
// paths: parent directory and last component

/// The last component of a path, classified as Linux does.
#[derive(Debug, PartialEq, Eq)]
enum Last {
    Name(Vec<u8>),
    Dot,
    DotDot,
    /// The path is `/` (or only slashes).
    Root,
}

/// Where a name is to be created, removed or renamed.
struct Parent {
    dir: Arc<Dentry>,
    last: Last,
    /// The path ended with `/`.
    trailing_slash: bool,
}

impl Parent {
    /// The name, or `err` when the last component is `.`, `..` or `/`.
    fn name(&self, err: Errno) -> Result<&[u8], Errno> {
        match &self.last {
            Last::Name(n) => Ok(n),
            _ => Err(err),
        }
    }
}

/// Splits `path` into the part naming the parent directory (ending with `/`, or empty for
/// "relative to the start") and the last component, and says whether slashes trailed.
fn split_last(path: &[u8]) -> (&[u8], &[u8], bool) {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &path[..end];
    let trailing = end < path.len();
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..], trailing),
        None if trimmed.is_empty() => (&path[..path.len().min(1)], b"", trailing),
        None => (b"", trimmed, trailing),
    }
}

/// Resolves the parent directory of `path` (relative paths start at `start`).
fn parent_in(t: &Task, start: &Arc<Dentry>, path: &[u8]) -> Result<Parent, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let (dir_part, last, trailing_slash) = split_last(path);
    let root = t.fs().root.clone();
    let dir = if dir_part.is_empty() {
        start.clone()
    } else {
        t.kernel.vfs.resolve(&Lookup { root: &root, start, follow_last: true, creds: Some(&t.creds) }, dir_part)?
    };
    if !dir.inode().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !last.is_empty() {
        // Looking the last component up searches its directory too.
        crate::vfs::permission::may_search(&t.creds, &dir)?;
    }
    let last = match last {
        b"" => Last::Root,
        b"." => Last::Dot,
        b".." => Last::DotDot,
        n if n.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG),
        n => Last::Name(n.to_vec()),
    };
    Ok(Parent { dir, last, trailing_slash })
}

/// [`parent_in`] for a `*at()` call's `dirfd`.
fn parent_of(t: &Task, dirfd: i32, path: &[u8]) -> Result<Parent, Errno> {
    let start = if path.first() == Some(&b'/') { t.fs().root.clone() } else { t.dir_of(dirfd)? };
    parent_in(t, &start, path)
}

/// The child `name` of `dir` if it exists (`None` for ENOENT).
fn existing(dir: &Arc<Dentry>, name: &[u8]) -> Result<Option<Arc<Dentry>>, Errno> {
    match dir.child(name) {
        Ok(d) => Ok(Some(d)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks that `name` can be created in `p.dir` (Linux's `filename_create`): EEXIST if
/// the last component is `.`/`..`/`/` or exists, ENOENT for a missing name with a trailing
/// slash (except for mkdir), then EROFS, then write and search permission on the directory.
fn check_create<'a>(t: &Task, p: &'a Parent, want_dir: bool) -> Result<&'a [u8], Errno> {
    let name = p.name(Errno::EEXIST)?;
    if existing(&p.dir, name)?.is_some() {
        return Err(Errno::EEXIST);
    }
    if p.trailing_slash && !want_dir {
        return Err(Errno::ENOENT);
    }
    if p.dir.read_only() {
        return Err(Errno::EROFS);
    }
    may_create(t, &p.dir)?;
    Ok(name)
}

// ---------------------------------------------------------------------------------------
// permissions

fn stat_of(d: &Dentry) -> Result<Stat, Errno> {
    d.inode().stat()
}

/// Write and search permission on a directory, to add or remove a name in it.
fn may_create(t: &Task, dir: &Dentry) -> Result<(), Errno> {
    may_access(t, &stat_of(dir)?, false, true, true, false)
}

/// Whether the task owns the file or may act as its owner (CAP_FOWNER).
fn owner_or_root(t: &Task, st: &Stat) -> bool {
    t.creds.fsuid == st.st_uid || t.creds.capable(CAP_FOWNER)
}

fn in_group(t: &Task, gid: u32) -> bool {
    t.creds.fsgid == gid || t.creds.groups.contains(&gid)
}

/// Linux's `may_delete`: `victim` can be removed from (or replaced in) `dir` when the task
/// may write the directory, the sticky bit does not protect the victim, and the victim has
/// the expected type (ENOTDIR/EISDIR) and is not a mount point (EBUSY).
fn may_delete(t: &Task, dir: &Dentry, victim: &Dentry, want_dir: bool) -> Result<(), Errno> {
    let dst = stat_of(dir)?;
    may_access(t, &dst, false, true, true, false)?;
    if !t.creds.capable(CAP_FOWNER) && sticky_protects(t.creds.fsuid, &dst, &stat_of(victim)?) {
        return Err(Errno::EPERM);
    }
    let is_dir = victim.inode().is_dir();
    if want_dir && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    if !want_dir && is_dir {
        return Err(Errno::EISDIR);
    }
    if victim.is_mount_root() {
        return Err(Errno::EBUSY);
    }
    Ok(())
}

/// Whether the sticky bit of a directory (attributes `dir`) keeps the user `fsuid` from
/// removing or renaming an entry (attributes `victim`): only the entry's owner, the
/// directory's owner and (checked by the caller) a task with CAP_FOWNER may.
fn sticky_protects(fsuid: u32, dir: &Stat, victim: &Stat) -> bool {
    dir.st_mode & S_ISVTX != 0 && fsuid != victim.st_uid && fsuid != dir.st_uid
}

/// Owner of a new file in `dir`: the task's fsuid, and the directory's group if it is
/// set-group-ID (else the task's fsgid).
fn new_owner(t: &Task, dir_st: &Stat) -> (u32, u32) {
    let gid = if dir_st.st_mode & S_ISGID != 0 { dir_st.st_gid } else { t.creds.fsgid };
    (t.creds.fsuid, gid)
}

fn same_file(a: &Dentry, b: &Dentry) -> Result<bool, Errno> {
    let (sa, sb) = (a.inode().cached_stat()?, b.inode().cached_stat()?);
    Ok(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
}

/// Whether `a` and `b` are on the same mount (links and renames across mounts, even two
/// mounts of one filesystem, are EXDEV).
fn same_mount(a: &Dentry, b: &Dentry) -> Result<bool, Errno> {
    Ok(a.same_mount_as(b) && a.inode().cached_stat()?.st_dev == b.inode().cached_stat()?.st_dev)
}

// ---------------------------------------------------------------------------------------
// open(O_CREAT), mkdir, symlink, link

/// open(2) with O_CREAT: opens the file, creating it (permission bits `mode` less the
/// umask) if it does not exist. A symlink as the last component is followed, and a
/// dangling one creates its target, unless O_EXCL or O_NOFOLLOW.
pub(super) fn open_create(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> SysResult {
    if flags & O_DIRECTORY != 0 {
        return Err(Errno::EINVAL);
    }
    let mut start = if path.first() == Some(&b'/') { t.fs().root.clone() } else { t.dir_of(dirfd)? };
    let mut path = path.to_vec();
    for _ in 0..=SYMLOOP_MAX {
        let p = parent_in(t, &start, &path)?;
        let name = p.name(Errno::EISDIR)?;
        if p.trailing_slash {
            return Err(Errno::EISDIR);
        }
        if let Some(d) = existing(&p.dir, name)? {
            if flags & O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            if d.inode().is_symlink() && flags & O_NOFOLLOW == 0 {
                path = d.inode().readlink()?;
                start = if path.first() == Some(&b'/') { t.fs().root.clone() } else { p.dir.clone() };
                continue;
            }
            return open_dentry(t, d, flags, false);
        }
        if p.dir.read_only() {
            return Err(Errno::EROFS);
        }
        may_create(t, &p.dir)?;
        let (uid, gid) = new_owner(t, &stat_of(&p.dir)?);
        let umask = t.fs().umask;
        match p.dir.inode().create(name, mode & 0o7777 & !umask, uid, gid) {
            Ok(inode) => {
                let d = p.dir.instantiate(name, inode);
                crate::vfs::inotify::dir_event(&p.dir, name, IN_CREATE, 0, false);
                return open_dentry(t, d, flags, true);
            }
            // Created by someone else meanwhile: open theirs.
            Err(Errno::EEXIST) if flags & O_EXCL == 0 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ELOOP)
}

/// open(2) with O_TMPFILE: an unnamed regular file in the directory `path` names, open for
/// writing; linkat may give it a name later unless O_EXCL.
pub(super) fn open_tmpfile(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> SysResult {
    use rvisor_syscalls::flags::open::{O_ACCMODE, O_CREAT, O_RDWR, O_TMPFILE, O_WRONLY};
    if flags & (O_TMPFILE | O_CREAT | O_PATH) != O_TMPFILE || !matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR) {
        return Err(Errno::EINVAL);
    }
    let dir = t.lookup_at(dirfd, path, flags & O_NOFOLLOW == 0)?;
    if !dir.inode().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if dir.read_only() {
        return Err(Errno::EROFS);
    }
    may_create(t, &dir)?;
    let (uid, gid) = new_owner(t, &stat_of(&dir)?);
    let perm = mode & 0o7777 & !t.fs().umask;
    let inode = dir.inode().create_unnamed(perm, uid, gid, flags & O_EXCL == 0)?;
    let ino = inode.stat()?.st_ino;
    let d = dir.unnamed(format!("#{ino}").as_bytes(), inode);
    open_dentry(t, d, flags & !(O_TMPFILE | O_EXCL), true)
}

pub fn creat(t: &mut Task, a: &Args) -> SysResult {
    use rvisor_syscalls::flags::open::{O_CREAT, O_TRUNC, O_WRONLY};
    let path = t.copy_in_path(a[0])?;
    open_create(t, AT_FDCWD, &path, O_CREAT | O_WRONLY | O_TRUNC, a[1] as u32)
}

fn do_mkdirat(t: &mut Task, dirfd: i32, path_addr: u64, mode: u32) -> SysResult {
    let path = t.copy_in_path(path_addr)?;
    let p = parent_of(t, dirfd, &path)?;
    let name = check_create(t, &p, true)?;
    let dst = stat_of(&p.dir)?;
    let (uid, gid) = new_owner(t, &dst);
    let mut mode = mode & 0o1777 & !t.fs().umask;
    if dst.st_mode & S_ISGID != 0 {
        mode |= S_ISGID;
    }
    p.dir.inode().mkdir(name, mode, uid, gid)?;
    crate::vfs::inotify::dir_event(&p.dir, name, IN_CREATE, 0, true);
    Ok(0)
}

pub fn mkdir(t: &mut Task, a: &Args) -> SysResult {
    do_mkdirat(t, AT_FDCWD, a[0], a[1] as u32)
}

pub fn mkdirat(t: &mut Task, a: &Args) -> SysResult {
    do_mkdirat(t, fd_arg(a[0]), a[1], a[2] as u32)
}

fn do_symlinkat(t: &mut Task, target_addr: u64, dirfd: i32, path_addr: u64) -> SysResult {
    let target = t.copy_in_path(target_addr)?;
    let path = t.copy_in_path(path_addr)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let p = parent_of(t, dirfd, &path)?;
    let name = check_create(t, &p, false)?;
    let (uid, gid) = new_owner(t, &stat_of(&p.dir)?);
    p.dir.inode().symlink(name, &target, uid, gid)?;
    crate::vfs::inotify::dir_event(&p.dir, name, IN_CREATE, 0, false);
    Ok(0)
}

pub fn symlink(t: &mut Task, a: &Args) -> SysResult {
    do_symlinkat(t, a[0], AT_FDCWD, a[1])
}

pub fn symlinkat(t: &mut Task, a: &Args) -> SysResult {
    do_symlinkat(t, a[0], fd_arg(a[1]), a[2])
}

/// mknod(2)/mknodat(2): a regular file, fifo, socket or (for root) device node.
fn do_mknodat(t: &mut Task, dirfd: i32, path_addr: u64, mode: u32, dev: u64) -> SysResult {
    use rvisor_syscalls::flags::mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFSOCK};
    let path = t.copy_in_path(path_addr)?;
    let ftype = match mode & S_IFMT {
        0 => S_IFREG,
        f @ (S_IFREG | S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK) => f,
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let p = parent_of(t, dirfd, &path)?;
    let name = check_create(t, &p, false)?;
    if (ftype == S_IFCHR || ftype == S_IFBLK) && !t.creds.capable(CAP_MKNOD) {
        return Err(Errno::EPERM);
    }
    let (uid, gid) = new_owner(t, &stat_of(&p.dir)?);
    let perm = mode & 0o7777 & !t.fs().umask;
    p.dir.inode().mknod(name, ftype | perm, dev, uid, gid)?;
    crate::vfs::inotify::dir_event(&p.dir, name, IN_CREATE, 0, false);
    Ok(0)
}

pub fn mknod(t: &mut Task, a: &Args) -> SysResult {
    do_mknodat(t, AT_FDCWD, a[0], a[1] as u32, a[2] as u32 as u64)
}

pub fn mknodat(t: &mut Task, a: &Args) -> SysResult {
    do_mknodat(t, fd_arg(a[0]), a[1], a[2] as u32, a[3] as u32 as u64)
}

/// The file an fd names (AT_EMPTY_PATH with an empty path): the dirfd's own dentry.
fn fd_dentry(t: &Task, dirfd: i32) -> Result<Arc<Dentry>, Errno> {
    if dirfd == AT_FDCWD {
        return Ok(t.fs().cwd.clone());
    }
    t.file(dirfd)?.dentry().cloned().ok_or(Errno::ENOENT)
}

fn do_linkat(t: &mut Task, olddirfd: i32, old_addr: u64, newdirfd: i32, new_addr: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = t.copy_in_path(old_addr)?;
    let src = if old.is_empty() && flags & AT_EMPTY_PATH != 0 {
        // Linking an fd's file needs CAP_DAC_READ_SEARCH.
        if !t.creds.capable(CAP_DAC_READ_SEARCH) {
            return Err(Errno::ENOENT);
        }
        fd_dentry(t, olddirfd)?
    } else {
        t.lookup_at(olddirfd, &old, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    let new = t.copy_in_path(new_addr)?;
    let p = parent_of(t, newdirfd, &new)?;
    let name = p.name(Errno::EEXIST)?;
    if existing(&p.dir, name)?.is_some() {
        return Err(Errno::EEXIST);
    }
    if p.trailing_slash {
        return Err(Errno::ENOENT);
    }
    if p.dir.read_only() {
        return Err(Errno::EROFS);
    }
    if !same_mount(&src, &p.dir)? {
        return Err(Errno::EXDEV);
    }
    // protected_hardlinks: only the owner may link a file it could not read and write,
    // or a set-ID or special file.
    let st = stat_of(&src)?;
    if !owner_or_root(t, &st) {
        let setid = st.st_mode & S_ISUID != 0 || st.st_mode & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP);
        if st.st_mode & S_IFMT != S_IFREG || setid || may_access(t, &st, true, true, false, false).is_err() {
            return Err(Errno::EPERM);
        }
    }
    may_create(t, &p.dir)?;
    if src.inode().is_dir() {
        return Err(Errno::EPERM);
    }
    p.dir.inode().link(name, src.inode())?;
    crate::vfs::inotify::linked(&p.dir, name, &src);
    Ok(0)
}

pub fn link(t: &mut Task, a: &Args) -> SysResult {
    do_linkat(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

pub fn linkat(t: &mut Task, a: &Args) -> SysResult {
    do_linkat(t, fd_arg(a[0]), a[1], fd_arg(a[2]), a[3], a[4] as u32)
}

// ---------------------------------------------------------------------------------------
// unlink, rmdir, rename

fn do_unlink(t: &mut Task, dirfd: i32, path_addr: u64) -> SysResult {
    let path = t.copy_in_path(path_addr)?;
    let p = parent_of(t, dirfd, &path)?;
    let name = p.name(Errno::EISDIR)?;
    if p.dir.read_only() {
        return Err(Errno::EROFS);
    }
    let victim = p.dir.child(name)?;
    if p.trailing_slash {
        return Err(if victim.inode().is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    may_delete(t, &p.dir, &victim, false)?;
    p.dir.inode().unlink(name)?;
    p.dir.forget(name);
    crate::vfs::inotify::removed(&p.dir, name, &victim);
    Ok(0)
}

fn do_rmdir(t: &mut Task, dirfd: i32, path_addr: u64) -> SysResult {
    let path = t.copy_in_path(path_addr)?;
    let p = parent_of(t, dirfd, &path)?;
    let name = match &p.last {
        Last::Name(n) => n.as_slice(),
        Last::Dot => return Err(Errno::EINVAL),
        Last::DotDot => return Err(Errno::ENOTEMPTY),
        Last::Root => return Err(Errno::EBUSY),
    };
    if p.dir.read_only() {
        return Err(Errno::EROFS);
    }
    let victim = p.dir.child(name)?;
    may_delete(t, &p.dir, &victim, true)?;
    p.dir.inode().rmdir(name)?;
    p.dir.forget(name);
    crate::vfs::inotify::removed(&p.dir, name, &victim);
    Ok(0)
}

pub fn unlink(t: &mut Task, a: &Args) -> SysResult {
    do_unlink(t, AT_FDCWD, a[0])
}

pub fn rmdir(t: &mut Task, a: &Args) -> SysResult {
    do_rmdir(t, AT_FDCWD, a[0])
}

pub fn unlinkat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[2] as u32;
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & AT_REMOVEDIR != 0 {
        do_rmdir(t, fd_arg(a[0]), a[1])
    } else {
        do_unlink(t, fd_arg(a[0]), a[1])
    }
}

fn do_renameat2(t: &mut Task, olddirfd: i32, old_addr: u64, newdirfd: i32, new_addr: u64, flags: u32) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    let exchange = flags & RENAME_EXCHANGE != 0;
    let old = t.copy_in_path(old_addr)?;
    let new = t.copy_in_path(new_addr)?;
    let op = parent_of(t, olddirfd, &old)?;
    let np = parent_of(t, newdirfd, &new)?;
    if !same_mount(&op.dir, &np.dir)? {
        return Err(Errno::EXDEV);
    }
    let old_name = op.name(Errno::EBUSY)?;
    let new_name = np.name(if flags & RENAME_NOREPLACE != 0 { Errno::EEXIST } else { Errno::EBUSY })?;
    if op.dir.read_only() {
        return Err(Errno::EROFS);
    }
    if flags & RENAME_WHITEOUT != 0 {
        // Whiteouts are for overlay filesystems, which rvisor does not have yet.
        return Err(Errno::EOPNOTSUPP);
    }
    let src = op.dir.child(old_name)?;
    let src_dir = src.inode().is_dir();
    if !src_dir && (op.trailing_slash || (!exchange && np.trailing_slash)) {
        return Err(Errno::ENOTDIR);
    }
    if src.is_ancestor_of(&np.dir) {
        return Err(Errno::EINVAL);
    }
    let dst = existing(&np.dir, new_name)?;
    match &dst {
        None if exchange => return Err(Errno::ENOENT),
        None => {}
        Some(dst) => {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if exchange && !dst.inode().is_dir() && np.trailing_slash {
                return Err(Errno::ENOTDIR);
            }
            if dst.is_ancestor_of(&op.dir) {
                return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY });
            }
            if same_file(&src, dst)? {
                return Ok(0);
            }
        }
    }
    may_delete(t, &op.dir, &src, src_dir)?;
    let dst_dir = dst.as_ref().is_some_and(|d| d.inode().is_dir());
    match &dst {
        None => may_create(t, &np.dir)?,
        Some(d) => may_delete(t, &np.dir, d, if exchange { dst_dir } else { src_dir })?,
    }
    if !Arc::ptr_eq(&op.dir, &np.dir) {
        // A directory changing parents has its `..` rewritten: it must be writable.
        if src_dir {
            may_access(t, &stat_of(&src)?, false, true, false, false)?;
        }
        if let (true, true, Some(d)) = (exchange, dst_dir, &dst) {
            may_access(t, &stat_of(d)?, false, true, false, false)?;
        }
    }
    op.dir.inode().rename(old_name, np.dir.inode(), new_name, flags)?;
    Dentry::move_child(&op.dir, old_name, &np.dir, new_name, exchange);
    crate::vfs::inotify::renamed(&op.dir, old_name, &np.dir, new_name, &src, dst.as_ref());
    Ok(0)
}

pub fn rename(t: &mut Task, a: &Args) -> SysResult {
    do_renameat2(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

pub fn renameat(t: &mut Task, a: &Args) -> SysResult {
    do_renameat2(t, fd_arg(a[0]), a[1], fd_arg(a[2]), a[3], 0)
}

pub fn renameat2(t: &mut Task, a: &Args) -> SysResult {
    do_renameat2(t, fd_arg(a[0]), a[1], fd_arg(a[2]), a[3], a[4] as u32)
}

// ---------------------------------------------------------------------------------------
// sizes

pub fn truncate(t: &mut Task, a: &Args) -> SysResult {
    let path = t.copy_in_path(a[0])?;
    let len = a[1] as i64;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let d = t.lookup_at(AT_FDCWD, &path, true)?;
    let inode = d.inode();
    if inode.is_dir() {
        return Err(Errno::EISDIR);
    }
    if inode.file_type() != S_IFREG {
        return Err(Errno::EINVAL);
    }
    if d.read_only() {
        return Err(Errno::EROFS);
    }
    may_access(t, &stat_of(&d)?, false, true, false, false)?;
    crate::vfs::permission::remove_privs(&t.creds, &d)?;
    inode.truncate(len as u64)?;
    crate::vfs::inotify::file_event(&d, IN_MODIFY);
    Ok(0)
}

pub fn ftruncate(t: &mut Task, a: &Args) -> SysResult {
    let len = a[1] as i64;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.file(fd_arg(a[0]))?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let d = f.dentry().ok_or(Errno::EINVAL)?;
    if d.inode().file_type() != S_IFREG || !f.writable() {
        return Err(Errno::EINVAL);
    }
    crate::vfs::permission::remove_privs(&t.creds, d)?;
    d.inode().truncate(len as u64)?;
    crate::vfs::inotify::file_event(d, IN_MODIFY);
    Ok(0)
}

pub fn fallocate(t: &mut Task, a: &Args) -> SysResult {
    use crate::vfs::inode::falloc_flags::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
    /// Every mode bit Linux knows (KEEP_SIZE, PUNCH_HOLE, COLLAPSE, ZERO, INSERT, UNSHARE).
    const KNOWN: u32 = 0x7f;
    let f = t.file(fd_arg(a[0]))?;
    let (mode, off, len) = (a[1] as u32, a[2] as i64, a[3] as i64);
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !KNOWN != 0 || (mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0) {
        return Err(Errno::EOPNOTSUPP);
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let Some(d) = f.dentry() else { return Err(Errno::ESPIPE) };
    if d.inode().is_dir() {
        return Err(Errno::EISDIR);
    }
    if d.inode().file_type() != S_IFREG {
        return Err(Errno::ENODEV);
    }
    if off.checked_add(len).is_none() {
        return Err(Errno::EFBIG);
    }
    crate::vfs::permission::remove_privs(&t.creds, d)?;
    d.inode().fallocate(mode, off as u64, len as u64)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// mode, owner, times

/// The file a `(dirfd, path, flags)` triple names for the *at() attribute calls.
fn target_at(t: &Task, dirfd: i32, path_addr: u64, flags: u32) -> Result<Arc<Dentry>, Errno> {
    let path = t.copy_in_path(path_addr)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return fd_dentry(t, dirfd);
    }
    t.lookup_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)
}

/// The file an fd names for fchmod/fchown/futimens (EBADF for O_PATH fds); `None` for
/// files outside the dentry tree (pipes, sockets, host stdio), whose attributes are not
/// kept.
fn fd_target(t: &Task, fd: i32) -> Result<Option<Arc<Dentry>>, Errno> {
    let f = t.file(fd)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(f.dentry().cloned())
}

fn chmod_dentry(t: &Task, d: &Dentry, mode: u32) -> SysResult {
    if d.read_only() {
        return Err(Errno::EROFS);
    }
    let st = stat_of(d)?;
    if !owner_or_root(t, &st) {
        return Err(Errno::EPERM);
    }
    let mut mode = mode & 0o7777;
    if !t.creds.capable(CAP_FSETID) && !in_group(t, st.st_gid) {
        mode &= !S_ISGID;
    }
    d.inode().setattr(&SetAttr { mode: Some(mode), ..Default::default() })?;
    crate::vfs::inotify::file_event(d, IN_ATTRIB);
    Ok(0)
}

pub fn chmod(t: &mut Task, a: &Args) -> SysResult {
    let d = target_at(t, AT_FDCWD, a[0], 0)?;
    chmod_dentry(t, &d, a[1] as u32)
}

pub fn fchmod(t: &mut Task, a: &Args) -> SysResult {
    match fd_target(t, fd_arg(a[0]))? {
        Some(d) => chmod_dentry(t, &d, a[1] as u32),
        None => Ok(0),
    }
}

pub fn fchmodat(t: &mut Task, a: &Args) -> SysResult {
    let d = target_at(t, fd_arg(a[0]), a[1], 0)?;
    chmod_dentry(t, &d, a[2] as u32)
}

pub fn fchmodat2(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[3] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let d = target_at(t, fd_arg(a[0]), a[1], flags)?;
    if d.inode().is_symlink() {
        // Symlinks have no mode of their own on Linux.
        return Err(Errno::EOPNOTSUPP);
    }
    chmod_dentry(t, &d, a[2] as u32)
}

fn chown_dentry(t: &Task, d: &Dentry, uid: u32, gid: u32) -> SysResult {
    if d.read_only() {
        return Err(Errno::EROFS);
    }
    let st = stat_of(d)?;
    // Root (CAP_CHOWN) may give files away; an owner may only "change" the owner to
    // itself and the group to one of its own groups.
    let chown_cap = t.creds.capable(CAP_CHOWN);
    let owner = t.creds.fsuid == st.st_uid;
    let uid = (uid != u32::MAX).then_some(uid);
    let gid = (gid != u32::MAX).then_some(gid);
    let uid_ok = uid.is_none_or(|u| chown_cap || (owner && u == st.st_uid));
    let gid_ok = gid.is_none_or(|g| chown_cap || (owner && (g == st.st_gid || in_group(t, g))));
    if !uid_ok || !gid_ok {
        return Err(Errno::EPERM);
    }
    // A change of owner drops set-user-ID, and set-group-ID where it means that.
    let mut mode = None;
    if !d.inode().is_dir() {
        let mut m = st.st_mode & 0o7777;
        m &= !S_ISUID;
        if m & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP) {
            m &= !S_ISGID;
        }
        if m != st.st_mode & 0o7777 {
            mode = Some(m);
        }
    }
    d.inode().setattr(&SetAttr { mode, uid, gid, ..Default::default() })?;
    crate::vfs::inotify::file_event(d, IN_ATTRIB);
    Ok(0)
}

pub fn chown(t: &mut Task, a: &Args) -> SysResult {
    let d = target_at(t, AT_FDCWD, a[0], 0)?;
    chown_dentry(t, &d, a[1] as u32, a[2] as u32)
}

pub fn lchown(t: &mut Task, a: &Args) -> SysResult {
    let d = target_at(t, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)?;
    chown_dentry(t, &d, a[1] as u32, a[2] as u32)
}

pub fn fchown(t: &mut Task, a: &Args) -> SysResult {
    match fd_target(t, fd_arg(a[0]))? {
        Some(d) => chown_dentry(t, &d, a[1] as u32, a[2] as u32),
        None => Ok(0),
    }
}

pub fn fchownat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[4] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let d = target_at(t, fd_arg(a[0]), a[1], flags)?;
    chown_dentry(t, &d, a[2] as u32, a[3] as u32)
}

/// New access and modification times: `None` keeps one. `explicit` (times were given,
/// not "now" for both) needs ownership; setting both to now needs only write access.
struct Times {
    atime: Option<TimeSet>,
    mtime: Option<TimeSet>,
    explicit: bool,
}

impl Times {
    const NOW: Times = Times { atime: Some(TimeSet::Now), mtime: Some(TimeSet::Now), explicit: false };

    /// From utimensat's pair (UTIME_NOW, UTIME_OMIT or a time; EINVAL for a bad tv_nsec).
    fn from_timespecs(ts: [Timespec; 2]) -> Result<Times, Errno> {
        let one = |t: Timespec| match t.tv_nsec {
            UTIME_OMIT => Ok(None),
            UTIME_NOW => Ok(Some(TimeSet::Now)),
            0..=999_999_999 => Ok(Some(TimeSet::At(t))),
            _ => Err(Errno::EINVAL),
        };
        let (atime, mtime) = (one(ts[0])?, one(ts[1])?);
        if atime == Some(TimeSet::Now) && mtime == Some(TimeSet::Now) {
            return Ok(Times::NOW);
        }
        Ok(Times { atime, mtime, explicit: true })
    }

    /// From utimes' pair of timevals (EINVAL for a bad tv_usec).
    fn from_timevals(tv: [Timeval; 2]) -> Result<Times, Errno> {
        let one = |v: Timeval| {
            if !(0..1_000_000).contains(&v.tv_usec) {
                return Err(Errno::EINVAL);
            }
            Ok(Some(TimeSet::At(Timespec { tv_sec: v.tv_sec, tv_nsec: v.tv_usec * 1000 })))
        };
        Ok(Times { atime: one(tv[0])?, mtime: one(tv[1])?, explicit: true })
    }
}

fn set_times(t: &Task, d: &Dentry, times: &Times) -> SysResult {
    if d.read_only() {
        return Err(Errno::EROFS);
    }
    let st = stat_of(d)?;
    if !owner_or_root(t, &st) {
        if times.explicit {
            return Err(Errno::EPERM);
        }
        may_access(t, &st, false, true, false, false)?;
    }
    d.inode().setattr(&SetAttr { atime: times.atime, mtime: times.mtime, ..Default::default() })?;
    crate::vfs::inotify::file_event(d, IN_ATTRIB);
    Ok(0)
}

pub fn utimensat(t: &mut Task, a: &Args) -> SysResult {
    let (dirfd, path_addr, times_addr, flags) = (fd_arg(a[0]), a[1], a[2], a[3] as u32);
    let raw = if times_addr == 0 {
        None
    } else {
        let ts: [Timespec; 2] = [t.read_obj(times_addr)?, t.read_obj(times_addr + 16)?];
        if ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT {
            // Nothing to do: Linux does not even look at the path.
            return Ok(0);
        }
        Some(ts)
    };
    let d = if path_addr == 0 && dirfd != AT_FDCWD {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        match fd_target(t, dirfd)? {
            Some(d) => d,
            None => return Ok(0),
        }
    } else {
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
            return Err(Errno::EINVAL);
        }
        target_at(t, dirfd, path_addr, flags)?
    };
    let times = match raw {
        Some(ts) => Times::from_timespecs(ts)?,
        None => Times::NOW,
    };
    set_times(t, &d, &times)
}

fn do_utimes(t: &mut Task, dirfd: i32, path_addr: u64, times_addr: u64) -> SysResult {
    let times = if times_addr == 0 {
        None
    } else {
        Some([t.read_obj::<Timeval>(times_addr)?, t.read_obj::<Timeval>(times_addr + 16)?])
    };
    let d = if path_addr == 0 && dirfd != AT_FDCWD {
        match fd_target(t, dirfd)? {
            Some(d) => d,
            None => return Ok(0),
        }
    } else {
        target_at(t, dirfd, path_addr, 0)?
    };
    let times = match times {
        Some(tv) => Times::from_timevals(tv)?,
        None => Times::NOW,
    };
    set_times(t, &d, &times)
}

pub fn utimes(t: &mut Task, a: &Args) -> SysResult {
    do_utimes(t, AT_FDCWD, a[0], a[1])
}

pub fn futimesat(t: &mut Task, a: &Args) -> SysResult {
    do_utimes(t, fd_arg(a[0]), a[1], a[2])
}

/// utime(2): `struct utimbuf { time_t actime, modtime; }` or NULL for now.
pub fn utime(t: &mut Task, a: &Args) -> SysResult {
    let d = target_at(t, AT_FDCWD, a[0], 0)?;
    let times = if a[1] == 0 {
        Times::NOW
    } else {
        let (at, mt): (i64, i64) = (t.read_obj(a[1])?, t.read_obj(a[1] + 8)?);
        let ts = |s| Some(TimeSet::At(Timespec { tv_sec: s, tv_nsec: 0 }));
        Times { atime: ts(at), mtime: ts(mt), explicit: true }
    };
    set_times(t, &d, &times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_classifies_the_last_component_like_linux() {
        assert_eq!(split_last(b"a"), (&b""[..], &b"a"[..], false));
        assert_eq!(split_last(b"/a/b"), (&b"/a/"[..], &b"b"[..], false));
        assert_eq!(split_last(b"a/b//"), (&b"a/"[..], &b"b"[..], true));
        assert_eq!(split_last(b"/a"), (&b"/"[..], &b"a"[..], false));
        assert_eq!(split_last(b"//"), (&b"/"[..], &b""[..], true));
        assert_eq!(split_last(b"x/.."), (&b"x/"[..], &b".."[..], false));
    }

    #[test]
    fn sticky_directories_protect_other_users_entries() {
        let st = |mode, uid| Stat { st_mode: mode, st_uid: uid, ..Default::default() };
        let tmp = st(0o41777, 0);
        assert!(sticky_protects(1000, &tmp, &st(0o100644, 0)), "root's file");
        assert!(sticky_protects(1000, &tmp, &st(0o100644, 1001)), "another user's file");
        assert!(!sticky_protects(1000, &tmp, &st(0o100644, 1000)), "one's own file");
        assert!(!sticky_protects(1000, &st(0o41777, 1000), &st(0o100644, 0)), "the directory's owner");
        assert!(!sticky_protects(1000, &st(0o40777, 0), &st(0o100644, 0)), "no sticky bit");
    }

    #[test]
    fn utimensat_times_need_valid_nanoseconds_and_both_now_is_a_touch() {
        let ts = |s, n| Timespec { tv_sec: s, tv_nsec: n };
        let t = Times::from_timespecs([ts(5, UTIME_NOW), ts(0, UTIME_NOW)]).unwrap();
        assert!(!t.explicit);
        let t = Times::from_timespecs([ts(5, 7), ts(0, UTIME_OMIT)]).unwrap();
        assert!(t.explicit && t.mtime.is_none());
        assert_eq!(t.atime, Some(TimeSet::At(ts(5, 7))));
        assert!(Times::from_timespecs([ts(0, 1_000_000_000), ts(0, 0)]).is_err());
        assert!(Times::from_timevals([Timeval { tv_sec: 1, tv_usec: -1 }, Timeval::default()]).is_err());
    }
}
