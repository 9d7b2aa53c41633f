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
