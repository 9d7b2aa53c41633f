//! File and directory syscalls.

use std::sync::Arc;

use rvisor_syscalls::flags::at::*;
use rvisor_syscalls::flags::fcntl::*;
use rvisor_syscalls::flags::ioctl as io;
use rvisor_syscalls::flags::limits::{IOV_MAX, MAX_RW_COUNT};
use rvisor_syscalls::flags::mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFREG};
use rvisor_syscalls::flags::open::*;
use rvisor_syscalls::flags::rlimit::RLIMIT_NOFILE;
use rvisor_syscalls::types::{Iovec, LinuxDirent64Header, Stat, Statx, StatxTimestamp, DIRENT64_NAME_OFFSET};
use rvisor_syscalls::{Errno, Pod};

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::{Dentry, FileDescription, FileImpl, Lookup};

/// Largest bounce buffer used for one read/write step.
const IO_CHUNK: usize = 1 << 20;

fn fd_arg(v: u64) -> i32 {
    v as i32
}

// ---------------------------------------------------------------------------------------
// read / write

/// Reads from `file` into guest memory at `addr`, up to `count` bytes, with `op` doing
/// one read into a bounce buffer. Seekable files are read until `count` or end of file.
fn read_to_guest(t: &Task, file: &FileDescription, addr: u64, count: u64, mut op: impl FnMut(&mut [u8], u64) -> Result<usize, Errno>) -> SysResult {
    let count = (count as usize).min(MAX_RW_COUNT);
    if count == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; count.min(IO_CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = match op(&mut buf[..want], done as u64) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        t.mm.copy_out(addr + done as u64, &buf[..n])?;
        done += n;
        if n < want || file.imp().is_stream() {
            break;
        }
    }
    Ok(done as u64)
}

/// Writes `count` bytes of guest memory at `addr` through `op`.
fn write_from_guest(t: &Task, addr: u64, count: u64, mut op: impl FnMut(&[u8], u64) -> Result<usize, Errno>) -> SysResult {
    let count = (count as usize).min(MAX_RW_COUNT);
    if count == 0 {
        return op(&[], 0).map(|n| n as u64);
    }
    let mut buf = vec![0u8; count.min(IO_CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        t.mm.copy_in(addr + done as u64, &mut buf[..want])?;
        let n = match op(&buf[..want], done as u64) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done as u64)
}

pub fn read(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    if f.dentry().is_some_and(|d| d.inode().is_dir()) {
        return Err(Errno::EISDIR);
    }
    read_to_guest(t, &f, a[1], a[2], |buf, _| f.read(buf))
}

/// A write that failed with EPIPE also raises SIGPIPE in the writing thread.
fn sigpipe_on_epipe(t: &Task, r: SysResult) -> SysResult {
    if r == Err(Errno::EPIPE) {
        let info = crate::kernel::signal::SignalInfo::user(rvisor_syscalls::flags::signal::SIGPIPE, 0, t.tgid(), t.creds.uid);
        crate::kernel::signal::send_to_thread(&t.kernel, &t.handle, info, false);
    }
    r
}

/// Before a write of `count` bytes through `f`: a caller without CAP_FSETID clears the
/// file's set-ID bits (a cheap check of the caller's capability and the cached mode
/// otherwise). Bits a caller with CAP_FSETID keeps but the host kernel clears on the
/// sentry's own write of a host file are put back by the file (`vfs::host::SetIdKeeper`).
pub(super) fn remove_privs_before_write(t: &Task, f: &FileDescription, count: u64) -> Result<(), Errno> {
    if t.creds.capable(rvisor_syscalls::flags::capability::CAP_FSETID) || count == 0 || !f.writable() {
        return Ok(());
    }
    match f.dentry() {
        Some(d) => crate::vfs::permission::remove_privs(&t.creds, d),
        None => Ok(()),
    }
}

pub fn write(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    remove_privs_before_write(t, &f, a[2])?;
    let r = write_from_guest(t, a[1], a[2], |buf, _| f.write(buf));
    sigpipe_on_epipe(t, r)
}

pub fn pread64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let off = a[3] as i64;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    if f.dentry().is_some_and(|d| d.inode().is_dir()) {
        return Err(Errno::EISDIR);
    }
    read_to_guest(t, &f, a[1], a[2], |buf, done| f.pread(buf, off as u64 + done))
}

pub fn pwrite64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let off = a[3] as i64;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    remove_privs_before_write(t, &f, a[2])?;
    write_from_guest(t, a[1], a[2], |buf, done| f.pwrite(buf, off as u64 + done))
}

/// Reads and checks an iovec array (EINVAL for too many or an overflowing total).
fn read_iovecs(t: &Task, addr: u64, cnt: u64) -> Result<Vec<Iovec>, Errno> {
    if cnt as usize > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; cnt as usize * std::mem::size_of::<Iovec>()];
    t.mm.copy_in(addr, &mut raw)?;
    let iovs: Vec<Iovec> = raw.chunks_exact(std::mem::size_of::<Iovec>()).filter_map(Iovec::from_bytes).collect();
    let mut total: u64 = 0;
    for v in &iovs {
        if v.iov_len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        total = total.checked_add(v.iov_len).filter(|&s| s <= isize::MAX as u64).ok_or(Errno::EINVAL)?;
    }
    Ok(iovs)
}

pub fn readv(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let iovs = read_iovecs(t, a[1], a[2])?;
    let total: usize = iovs.iter().map(|v| v.iov_len as usize).sum::<usize>().min(MAX_RW_COUNT);
    let mut buf = vec![0u8; total.min(IO_CHUNK)];
    let n = f.read(&mut buf)?;
    scatter(t, &iovs, &buf[..n])?;
    Ok(n as u64)
}

/// Copies `data` out across the iovecs in order.
fn scatter(t: &Task, iovs: &[Iovec], mut data: &[u8]) -> Result<(), Errno> {
    for v in iovs {
        if data.is_empty() {
            break;
        }
        let k = (v.iov_len as usize).min(data.len());
        t.mm.copy_out(v.iov_base, &data[..k])?;
        data = &data[k..];
    }
    Ok(())
}

pub fn writev(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let iovs = read_iovecs(t, a[1], a[2])?;
    // Gather into one buffer so the write is one operation (atomic for pipes and terminals).
    // At most WRITEV_MAX bytes per call: a larger writev returns a short count (allowed for
    // every file kind, atomicity only matters up to PIPE_BUF), so a guest cannot make the
    // sentry allocate gigabytes for one call.
    const WRITEV_MAX: usize = 16 << 20;
    let mut buf = Vec::new();
    for v in &iovs {
        let room = WRITEV_MAX - buf.len();
        let k = (v.iov_len as usize).min(room);
        let start = buf.len();
        buf.resize(start + k, 0);
        t.mm.copy_in(v.iov_base, &mut buf[start..])?;
        if k < v.iov_len as usize {
            break;
        }
    }
    remove_privs_before_write(t, &f, buf.len() as u64)?;
    let r = f.write(&buf).map(|n| n as u64);
    sigpipe_on_epipe(t, r)
}

pub fn lseek(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    f.seek(a[1] as i64, a[2] as u32)
}

// ---------------------------------------------------------------------------------------
// open / close / dup

/// A file opened with O_PATH: it names a location but allows no I/O.
struct PathFile(Arc<Dentry>);

impl FileImpl for PathFile {
    fn read(&self, _: &mut [u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: &[u8], _: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        self.0.inode().stat()
    }
}

fn do_openat(t: &mut Task, dirfd: i32, path_addr: u64, flags: u32, mode: u32) -> SysResult {
    let path = t.copy_in_path(path_addr)?;
    if flags & O_TMPFILE_BIT != 0 {
        return super::fs_mutate::open_tmpfile(t, dirfd, &path, flags, mode);
    }
    // O_PATH ignores every flag but these (O_CREAT included).
    let flags = if flags & O_PATH != 0 { flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } else { flags };
    if flags & O_CREAT != 0 {
        return super::fs_mutate::open_create(t, dirfd, &path, flags, mode);
    }
    let dentry = t.lookup_at(dirfd, &path, flags & O_NOFOLLOW == 0)?;
    open_dentry(t, dentry, flags, false)
}

/// Opens the file `dentry` names with open(2) `flags` and installs it. `created`: the file
/// was just created by this open, which may then write it whatever its mode (no permission
/// check, as in Linux) and needs no truncation.
pub(super) fn open_dentry(t: &mut Task, dentry: Arc<Dentry>, flags: u32, created: bool) -> SysResult {
    let inode = dentry.inode().clone();
    let cloexec = flags & O_CLOEXEC != 0;
    if flags & O_PATH != 0 {
        let keep = O_PATH | (flags & (O_DIRECTORY | O_NOFOLLOW));
        let file = FileDescription::new(Arc::new(PathFile(dentry.clone())), Some(dentry), keep);
        return Ok(t.install_fd(file, cloexec)? as u64);
    }
    if inode.is_symlink() {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && !inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if inode.is_dir() && (flags & O_ACCMODE != O_RDONLY || flags & O_CREAT != 0) {
        return Err(Errno::EISDIR);
    }
    if flags & O_ACCMODE == O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    if !created {
        check_open_permission(t, &dentry, flags)?;
        // A truncating open clears set-ID bits as truncate(2) does.
        if flags & O_TRUNC != 0 && inode.file_type() == S_IFREG {
            crate::vfs::permission::remove_privs(&t.creds, &dentry)?;
        }
    }
    // O_TRUNC is the filesystem's to apply, as it opens the file.
    let imp = inode.open(if created { flags & !O_TRUNC } else { flags })?;
    let kept = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    let file = FileDescription::new(imp, Some(dentry), kept);
    if let Some(d) = file.dentry() {
        use rvisor_syscalls::fdkinds::inotify::{IN_MODIFY, IN_OPEN};
        crate::vfs::inotify::file_event(d, IN_OPEN);
        // O_TRUNC of an existing file changed its size (Linux reports it after the open).
        if flags & O_TRUNC != 0 && !created && inode.file_type() == S_IFREG {
            crate::vfs::inotify::file_event(d, IN_MODIFY);
        }
    }
    Ok(t.install_fd(file, cloexec)? as u64)
}

/// Permission to open with `flags` under the task's filesystem credentials.
fn check_open_permission(t: &Task, d: &Dentry, flags: u32) -> Result<(), Errno> {
    let want_write = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
    let want_read = flags & O_ACCMODE != O_WRONLY;
    let ftype = d.inode().file_type();
    if matches!(ftype, S_IFCHR | S_IFBLK) && d.mount_flags() & rvisor_syscalls::flags::mount::MS_NODEV != 0 {
        return Err(Errno::EACCES);
    }
    if want_write && d.read_only() && matches!(ftype, S_IFREG | S_IFDIR) {
        return Err(Errno::EROFS);
    }
    let st = d.inode().cached_stat()?;
    may_access(t, &st, want_read, want_write, false, false)
}

/// Unix permission check of `st` for the task (`real`: use the real ids, as access(2) does).
pub(super) fn may_access(t: &Task, st: &Stat, r: bool, w: bool, x: bool, real: bool) -> Result<(), Errno> {
    use crate::vfs::permission::{check, Ids, MAY_EXEC, MAY_READ, MAY_WRITE};
    let mask = if r { MAY_READ } else { 0 } | if w { MAY_WRITE } else { 0 } | if x { MAY_EXEC } else { 0 };
    check(&t.creds, if real { Ids::Real } else { Ids::Fs }, st, mask)
}

pub fn open(t: &mut Task, a: &Args) -> SysResult {
    do_openat(t, AT_FDCWD, a[0], a[1] as u32, a[2] as u32)
}

pub fn openat(t: &mut Task, a: &Args) -> SysResult {
    do_openat(t, fd_arg(a[0]), a[1], a[2] as u32, a[3] as u32)
}

pub fn close(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds().remove(fd_arg(a[0]))?;
    super::lock::fd_closed(t, &f);
    Ok(0)
}

pub fn close_range(t: &mut Task, a: &Args) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    // The files closed here release their POSIX locks, like close(2).
    let closing: Vec<Arc<FileDescription>> = {
        let mut fds = t.fds();
        let closing = if flags & CLOSE_RANGE_CLOEXEC == 0 {
            fds.fds().filter(|&fd| (first..=last).contains(&(fd as u32))).filter_map(|fd| fds.get(fd).ok()).collect()
        } else {
            Vec::new()
        };
        fds.close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
        closing
    };
    for f in &closing {
        super::lock::fd_closed(t, f);
    }
    Ok(0)
}

pub fn dup(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    Ok(t.install_fd(f, false)? as u64)
}

fn do_dup3(t: &mut Task, old: i32, new: i32, cloexec: bool) -> SysResult {
    let f = t.file(old)?;
    let limit = t.rlimit(RLIMIT_NOFILE);
    if let Some(old) = t.fds().install_at(new, f, cloexec, limit)? {
        super::lock::fd_closed(t, &old);
    }
    Ok(new as u64)
}

pub fn dup2(t: &mut Task, a: &Args) -> SysResult {
    let (old, new) = (fd_arg(a[0]), fd_arg(a[1]));
    if old == new {
        t.file(old)?;
        return Ok(new as u64);
    }
    do_dup3(t, old, new, false)
}

pub fn dup3(t: &mut Task, a: &Args) -> SysResult {
    let (old, new, flags) = (fd_arg(a[0]), fd_arg(a[1]), a[2] as u32);
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    do_dup3(t, old, new, flags & O_CLOEXEC != 0)
}

pub fn fcntl(t: &mut Task, a: &Args) -> SysResult {
    let fd = fd_arg(a[0]);
    let f = t.file(fd)?;
    match a[1] as u32 {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(a[2]).map_err(|_| Errno::EINVAL)?;
            let limit = t.rlimit(RLIMIT_NOFILE);
            Ok(t.fds().install(f, a[1] as u32 == F_DUPFD_CLOEXEC, min, limit)? as u64)
        }
        F_GETFD => Ok(t.fds().cloexec(fd)? as u64),
        F_SETFD => {
            t.fds().set_cloexec(fd, a[2] as u32 & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(f.flags() as u64),
        F_SETFL => {
            f.set_status_flags(a[2] as u32);
            Ok(0)
        }
        F_GETOWN | F_SETOWN => Ok(0),
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => super::lock::fcntl_lock(t, &f, a[1] as u32, a[2]),
        F_ADD_SEALS => super::memfd::add_seals(&f, a[2]),
        F_GET_SEALS => super::memfd::get_seals(&f),
        F_GETPIPE_SZ => f.imp().pipe_size().map(|s| s as u64).ok_or(Errno::EBADF),
        F_SETPIPE_SZ => Ok(f.imp().set_pipe_size(a[2] as u32)? as u64),
        _ => Err(Errno::EINVAL),
    }
}

pub fn ioctl(t: &mut Task, a: &Args) -> SysResult {
    let fd = fd_arg(a[0]);
    let f = t.file(fd)?;
    let (cmd, arg) = (a[1] as u32, a[2]);
    if !matches!(cmd, io::FIOCLEX | io::FIONCLEX | io::FIONBIO | io::FIOASYNC) {
        if let Some(r) = crate::vfs::devpts::ioctl(t, &f, cmd, arg) {
            return r;
        }
    }
    match cmd {
        io::FIOCLEX | io::FIONCLEX => {
            t.fds().set_cloexec(fd, cmd == io::FIOCLEX)?;
            Ok(0)
        }
        io::FIONBIO => {
            let on: i32 = t.read_obj(arg)?;
            let fl = f.flags();
            f.set_status_flags(if on != 0 { fl | O_NONBLOCK } else { fl & !O_NONBLOCK });
            Ok(0)
        }
        // Linux's generic FIOASYNC sets O_ASYNC on any file (as F_SETFL does). SIGIO is
        // not delivered; programs such as nginx only need the call to succeed.
        io::FIOASYNC => {
            let on: i32 = t.read_obj(arg)?;
            let fl = f.flags();
            let async_ = rvisor_syscalls::flags::open::O_ASYNC;
            f.set_status_flags(if on != 0 { fl | async_ } else { fl & !async_ });
            Ok(0)
        }
        // The sandbox's processes live in their own pid namespace: answer job-control
        // queries with sandbox ids, never the host's.
        io::TIOCGPGRP if f.imp().is_tty() => {
            t.write_obj(arg, &t.tg().pgid())?;
            Ok(0)
        }
        io::TIOCGSID if f.imp().is_tty() => {
            t.write_obj(arg, &t.tg().sid())?;
            Ok(0)
        }
        io::TIOCSPGRP if f.imp().is_tty() => {
            let pgid: i32 = t.read_obj(arg)?;
            if pgid < 0 {
                return Err(Errno::EINVAL);
            }
            if pgid != t.tg().pgid() {
                return Err(Errno::EPERM);
            }
            Ok(0)
        }
        _ => f.imp().ioctl(&t.mm, cmd, arg),
    }
}

pub fn fsync(t: &mut Task, a: &Args) -> SysResult {
    t.file(fd_arg(a[0]))?.imp().sync()?;
    Ok(0)
}

pub fn umask(t: &mut Task, a: &Args) -> SysResult {
    let mut fs = t.fs();
    let old = fs.umask;
    fs.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}

// ---------------------------------------------------------------------------------------
// stat

/// The attributes named by `(dirfd, path, flags)` for the stat family.
fn stat_at(t: &Task, dirfd: i32, path_addr: u64, flags: u32) -> Result<Stat, Errno> {
    let path = t.copy_in_path(path_addr)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return t.fs().cwd.inode().stat();
        }
        return t.file(dirfd)?.imp().stat();
    }
    t.lookup_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?.inode().stat()
}

pub fn stat(t: &mut Task, a: &Args) -> SysResult {
    let st = stat_at(t, AT_FDCWD, a[0], 0)?;
    t.write_obj(a[1], &st)?;
    Ok(0)
}

pub fn lstat(t: &mut Task, a: &Args) -> SysResult {
    let st = stat_at(t, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)?;
    t.write_obj(a[1], &st)?;
    Ok(0)
}

pub fn fstat(t: &mut Task, a: &Args) -> SysResult {
    let st = t.file(fd_arg(a[0]))?.imp().stat()?;
    t.write_obj(a[1], &st)?;
    Ok(0)
}

pub fn newfstatat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[3] as u32;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(t, fd_arg(a[0]), a[1], flags)?;
    t.write_obj(a[2], &st)?;
    Ok(0)
}

fn dev_major(dev: u64) -> u32 {
    (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32
}

fn dev_minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32
}

/// `struct statx` with the basic fields of `st`.
pub fn statx_from_stat(st: &Stat) -> Statx {
    use rvisor_syscalls::flags::statx::STATX_BASIC_STATS;
    let ts = |sec: i64, nsec: i64| StatxTimestamp { tv_sec: sec, tv_nsec: nsec as u32, __reserved: 0 };
    Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: st.st_blksize as u32,
        stx_nlink: st.st_nlink as u32,
        stx_uid: st.st_uid,
        stx_gid: st.st_gid,
        stx_mode: st.st_mode as u16,
        stx_ino: st.st_ino,
        stx_size: st.st_size as u64,
        stx_blocks: st.st_blocks as u64,
        stx_atime: ts(st.st_atime, st.st_atime_nsec),
        stx_ctime: ts(st.st_ctime, st.st_ctime_nsec),
        stx_mtime: ts(st.st_mtime, st.st_mtime_nsec),
        stx_rdev_major: dev_major(st.st_rdev),
        stx_rdev_minor: dev_minor(st.st_rdev),
        stx_dev_major: dev_major(st.st_dev),
        stx_dev_minor: dev_minor(st.st_dev),
        ..Default::default()
    }
}

pub fn statx(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[2] as u32;
    let mask = a[3] as u32;
    const STATX_RESERVED: u32 = 0x8000_0000;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(t, fd_arg(a[0]), a[1], flags)?;
    t.write_obj(a[4], &statx_from_stat(&st))?;
    Ok(0)
}

pub fn statfs(t: &mut Task, a: &Args) -> SysResult {
    let path = t.copy_in_path(a[0])?;
    let d = t.lookup_at(AT_FDCWD, &path, true)?;
    let sfs = statfs_of(&d)?;
    t.write_obj(a[1], &sfs)?;
    Ok(0)
}

pub fn fstatfs(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let sfs = statfs_of(f.dentry().ok_or(Errno::EINVAL)?)?;
    t.write_obj(a[1], &sfs)?;
    Ok(0)
}

/// The filesystem's statfs with the per-mount flags of `d`'s mount added to `f_flags`
/// (ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_NOATIME, ST_NODIRATIME, ST_RELATIME).
fn statfs_of(d: &Dentry) -> Result<rvisor_syscalls::types::Statfs, Errno> {
    use rvisor_syscalls::flags::mount::*;
    let mut sfs = d.inode().statfs()?;
    let m = d.mount_flags();
    let mut st = 0;
    for (ms, st_bit) in [
        (MS_RDONLY, ST_RDONLY),
        (MS_NOSUID, ST_NOSUID),
        (MS_NODEV, ST_NODEV),
        (MS_NOEXEC, ST_NOEXEC),
        (MS_NOATIME, ST_NOATIME),
        (MS_NODIRATIME, ST_NODIRATIME),
        (MS_RELATIME, ST_RELATIME),
    ] {
        if m & ms != 0 {
            st |= st_bit;
        }
    }
    sfs.f_flags |= st;
    Ok(sfs)
}

fn do_access(t: &mut Task, dirfd: i32, path_addr: u64, mode: u32, flags: u32) -> SysResult {
    const R_OK: u32 = 4;
    const W_OK: u32 = 2;
    const X_OK: u32 = 1;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.copy_in_path(path_addr)?;
    // Without AT_EACCESS the whole call, path walk included, runs with the real ids as
    // the filesystem ids (Linux's access_override_creds).
    let real = flags & AT_EACCESS == 0;
    let d = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        t.dir_of(dirfd)?
    } else if real && t.creds.access_differs() {
        let creds = t.creds.for_access();
        let root = t.fs().root.clone();
        let start = if path.first() == Some(&b'/') { root.clone() } else { t.dir_of(dirfd)? };
        let follow_last = flags & AT_SYMLINK_NOFOLLOW == 0;
        t.kernel.vfs.resolve(&Lookup { root: &root, start: &start, follow_last, creds: Some(&creds) }, &path)?
    } else {
        t.lookup_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    if mode & W_OK != 0 && d.read_only() && !d.inode().is_symlink() {
        return Err(Errno::EROFS);
    }
    if mode & X_OK != 0 && d.inode().file_type() == S_IFREG && crate::vfs::permission::on_noexec_mount(&t.kernel.vfs, &d) {
        return Err(Errno::EACCES);
    }
    let st = d.inode().stat()?;
    may_access(t, &st, mode & R_OK != 0, mode & W_OK != 0, mode & X_OK != 0, real)?;
    Ok(0)
}

pub fn access(t: &mut Task, a: &Args) -> SysResult {
    do_access(t, AT_FDCWD, a[0], a[1] as u32, 0)
}

pub fn faccessat(t: &mut Task, a: &Args) -> SysResult {
    do_access(t, fd_arg(a[0]), a[1], a[2] as u32, 0)
}

pub fn faccessat2(t: &mut Task, a: &Args) -> SysResult {
    do_access(t, fd_arg(a[0]), a[1], a[2] as u32, a[3] as u32)
}

// ---------------------------------------------------------------------------------------
// directories and links

pub fn getdents64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let count = (a[2] as usize).min(MAX_RW_COUNT);
    if !f.dentry().is_some_and(|d| d.inode().is_dir()) {
        return Err(Errno::ENOTDIR);
    }
    let (_, entries) = f.dir_entries(count)?;
    let mut out: Vec<u8> = Vec::with_capacity(count.min(64 << 10));
    let mut last_off = None;
    for e in &entries {
        let reclen = (DIRENT64_NAME_OFFSET + e.name.len() + 1 + 7) & !7;
        if out.len() + reclen > count {
            break;
        }
        let hdr = LinuxDirent64Header {
            d_ino: e.ino,
            d_off: e.next_offset as i64,
            d_reclen: reclen as u16,
            d_type: e.d_type,
            __pad: [0; 5],
        };
        let start = out.len();
        out.extend_from_slice(&hdr.as_bytes()[..DIRENT64_NAME_OFFSET]);
        out.extend_from_slice(&e.name);
        out.resize(start + reclen, 0);
        last_off = Some(e.next_offset);
    }
    if out.is_empty() && !entries.is_empty() {
        return Err(Errno::EINVAL);
    }
    t.mm.copy_out(a[1], &out)?;
    if let Some(off) = last_off {
        f.set_dir_offset(off)?;
    }
    Ok(out.len() as u64)
}

pub fn getcwd(t: &mut Task, a: &Args) -> SysResult {
    let (root, cwd) = {
        let fs = t.fs();
        (fs.root.clone(), fs.cwd.clone())
    };
    let mut path = cwd.path_from(&root).unwrap_or_else(|| b"(unreachable)/".to_vec());
    path.push(0);
    if (a[1] as usize) < path.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[0], &path)?;
    Ok(path.len() as u64)
}

fn set_cwd(t: &mut Task, d: Arc<Dentry>) -> SysResult {
    if !d.inode().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let st = d.inode().cached_stat()?;
    may_access(t, &st, false, false, true, false)?;
    t.fs().cwd = d;
    Ok(0)
}

pub fn chdir(t: &mut Task, a: &Args) -> SysResult {
    let path = t.copy_in_path(a[0])?;
    let d = t.lookup_at(AT_FDCWD, &path, true)?;
    set_cwd(t, d)
}

pub fn fchdir(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(fd_arg(a[0]))?;
    let d = f.dentry().ok_or(Errno::ENOTDIR)?.clone();
    set_cwd(t, d)
}

fn do_readlinkat(t: &mut Task, dirfd: i32, path_addr: u64, buf: u64, size: u64) -> SysResult {
    let size = i32::try_from(size).ok().filter(|&s| s > 0).ok_or(Errno::EINVAL)? as usize;
    let path = t.copy_in_path(path_addr)?;
    let d = if path.is_empty() {
        t.file(dirfd)?.dentry().ok_or(Errno::ENOENT)?.clone()
    } else {
        t.lookup_at(dirfd, &path, false)?
    };
    if !d.inode().is_symlink() {
        return Err(Errno::EINVAL);
    }
    let target = d.inode().readlink()?;
    let n = target.len().min(size);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(t: &mut Task, a: &Args) -> SysResult {
    do_readlinkat(t, AT_FDCWD, a[0], a[1], a[2])
}

pub fn readlinkat(t: &mut Task, a: &Args) -> SysResult {
    do_readlinkat(t, fd_arg(a[0]), a[1], a[2], a[3])
}
