//! Thin safe wrappers over the host syscalls the server makes. Every call is relative to a
//! descriptor: nothing here takes an absolute path.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rvisor_syscalls::types::{Stat, Statfs};
use rvisor_syscalls::Errno;

// The host's structs and errno numbers are taken to be the guest's (x86_64) ones.
#[cfg(not(target_arch = "x86_64"))]
compile_error!("the gofer passes host x86_64 structs through unchanged");

/// The calling thread's errno as an [`Errno`] (host and guest numbering agree on x86_64).
fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// openat(2). The returned descriptor is owned by the caller.
pub(crate) fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> Result<OwnedFd, Errno> {
    loop {
        // SAFETY: `name` is a NUL-terminated string alive for the call; no mode is read since
        // callers never pass O_CREAT or O_TMPFILE.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// fstat(2), converted to the guest's `struct stat` (every field passed through). Also used
/// by the sentry for the host fds the gofer donated.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    // SAFETY: an all-zero `struct stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, exclusively borrowed `struct stat` the kernel fills.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last_errno());
    }
    Ok(Stat {
        st_dev: st.st_dev,
        st_ino: st.st_ino,
        st_nlink: st.st_nlink,
        st_mode: st.st_mode,
        st_uid: st.st_uid,
        st_gid: st.st_gid,
        __pad0: 0,
        st_rdev: st.st_rdev,
        st_size: st.st_size,
        st_blksize: st.st_blksize,
        st_blocks: st.st_blocks,
        st_atime: st.st_atime,
        st_atime_nsec: st.st_atime_nsec,
        st_mtime: st.st_mtime,
        st_mtime_nsec: st.st_mtime_nsec,
        st_ctime: st.st_ctime,
        st_ctime_nsec: st.st_ctime_nsec,
        __unused: [0; 3],
    })
}

/// fstatfs(2). The raw syscall fills the guest's `struct statfs` directly: the host is
/// x86_64 too, so the kernel's layout is the guest's (glibc's differs: it hides `f_flags`).
pub(crate) fn fstatfs(fd: BorrowedFd<'_>) -> Result<Statfs, Errno> {
    let mut st = Statfs::default();
    // SAFETY: `st` is a live, exclusively borrowed `#[repr(C)]` struct with the kernel's
    // x86_64 `struct statfs` layout (size asserted in rvisor-syscalls), which the kernel fills.
    let r = unsafe { libc::syscall(libc::SYS_fstatfs, fd.as_raw_fd(), &mut st as *mut Statfs) };
    if r != 0 {
        return Err(last_errno());
    }
    Ok(st)
}

/// readlinkat(fd, "", ...): the target of the symlink `fd` (an O_PATH descriptor) refers
/// to, without following it. Fails with ENAMETOOLONG if it does not fit in `max` bytes.
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>, max: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; max + 1];
    // SAFETY: the path is a NUL-terminated empty string; `buf` is a live, exclusively
    // borrowed buffer of `buf.len()` bytes, of which the kernel writes at most that many.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    let n = n as usize;
    if n > max {
        return Err(Errno::ENAMETOOLONG);
    }
    buf.truncate(n);
    Ok(buf)
}

/// lseek(fd, offset, SEEK_SET) with `offset` taken as the host's `off_t` bit pattern (a
/// directory cookie).
pub(crate) fn seek_set(fd: BorrowedFd<'_>, offset: u64) -> Result<(), Errno> {
    // SAFETY: lseek only reads its integer arguments.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), offset as libc::off_t, libc::SEEK_SET) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// getdents64(2) into `buf`; returns how many bytes of whole records were written.
pub(crate) fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: `buf` is a live, exclusively borrowed buffer of `buf.len()` bytes; the kernel
        // writes at most that many.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n >= 0 {
            return Ok((n as usize).min(buf.len()));
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// The file status flags (F_GETFL).
pub(crate) fn get_fl(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    // SAFETY: F_GETFL takes no pointer argument.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(r)
}

/// Sets the file status flags (F_SETFL).
pub(crate) fn set_fl(fd: BorrowedFd<'_>, flags: i32) -> Result<(), Errno> {
    // SAFETY: F_SETFL takes an integer argument.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// Turns a host return value into a result (`-1` → the errno).
fn check(r: libc::c_int) -> Result<(), Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// openat(2) with O_CREAT: creates `name` in `dir` with permission bits `mode` (the
/// process umask applies).
pub(crate) fn openat_create(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> Result<OwnedFd, Errno> {
    loop {
        // SAFETY: `name` is a NUL-terminated string alive for the call; `mode` is read as
        // the variadic mode argument O_CREAT needs.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
        if fd >= 0 {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// mkdirat(2).
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// mknodat(2) of a node that is not a device (rdev 0).
pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) })
}

/// symlinkat(2).
pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated and alive for the call.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// linkat(2) with AT_EMPTY_PATH: a new name `name` in `dir` for the file `fd` refers to.
pub(crate) fn link_fd(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated strings alive for the call.
    check(unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
}

/// linkat(2) of one name to another, not following a symlink.
pub(crate) fn linkat(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated strings alive for the call.
    check(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            0,
        )
    })
}

/// unlinkat(2).
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> Result<(), Errno> {
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// renameat2(2).
pub(crate) fn renameat2(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
    flags: u32,
) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated strings alive for the call; the other
    // arguments are integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW): changes the owner of
/// the file `fd` (an O_PATH descriptor) refers to, never following a symlink.
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: the path is a NUL-terminated empty string.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// fchmodat2(fd, "", mode, AT_EMPTY_PATH): changes the mode of the file `fd` (an O_PATH
/// descriptor) refers to. ENOSYS before Linux 6.6.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: the path is a NUL-terminated empty string; the rest are integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// fchmod(2) on an open (not O_PATH) descriptor.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: fchmod takes only integers.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
}

/// utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW).
pub(crate) fn utimens_fd(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> Result<(), Errno> {
    // SAFETY: the path is a NUL-terminated empty string and `times` two live timespecs
    // the kernel only reads.
    check(unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// ftruncate(2).
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, size: i64) -> Result<(), Errno> {
    loop {
        // SAFETY: ftruncate takes only integers.
        let r = unsafe { libc::ftruncate(fd.as_raw_fd(), size) };
        if r == 0 {
            return Ok(());
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// fgetxattr(2) into a buffer of `max` bytes.
pub(crate) fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, max: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; max];
    // SAFETY: `name` is NUL-terminated; `buf` is a live buffer of `buf.len()` bytes of which
    // the kernel writes at most that many.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// fsetxattr(2).
pub(crate) fn fsetxattr(
    fd: BorrowedFd<'_>,
    name: &CStr,
    value: &[u8],
    flags: i32,
) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated; `value` is a live slice the kernel only reads.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
}

/// flistxattr(2) into a buffer of `max` bytes.
pub(crate) fn flistxattr(fd: BorrowedFd<'_>, max: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; max];
    // SAFETY: `buf` is a live buffer of `buf.len()` bytes; the kernel writes at most that many.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(last_errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// fremovexattr(2).
pub(crate) fn fremovexattr(fd: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    check(unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) })
}

/// The effective user id of the gofer.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}
