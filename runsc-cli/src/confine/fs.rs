//! The sandbox process's namespaces and its empty root.
//!
//! It gets new mount, IPC and UTS namespaces (the network namespace is the one the CLI put
//! it in: the pod's, or the host's with `--network=host`; the PID namespace is the one the
//! CLI started it in, where it is pid 1, see `spawn::spawn_sandbox`). They are made while
//! the process is host root, so they belong to the host's user namespace; the process
//! enters its own user namespace only afterwards (see [`super::userns`]).
//!
//! Its root becomes a small read-only tmpfs holding only an empty `/proc` mount point with
//! a procfs on it (the platform reads `/proc/PID/stat` of its stubs); the host's root is
//! unmounted from its mount namespace.

use std::ffi::CStr;

use super::ConfineError;

fn check(r: libc::c_int, what: &'static str) -> Result<(), ConfineError> {
    if r < 0 {
        return Err(ConfineError::Sys {
            what,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn mount(
    src: &CStr,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
    what: &'static str,
) -> Result<(), ConfineError> {
    // SAFETY: every pointer is a NUL-terminated string that outlives the call, or null
    // where mount(2) accepts it (fstype and data of a remount or propagation change).
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    check(r, what)
}

/// Directories where the new root's tmpfs may be mounted (in the new mount namespace
/// only; the host sees nothing): the first that exists is used.
const MOUNT_POINTS: [&CStr; 4] = [c"/tmp", c"/run", c"/mnt", c"/dev"];

/// Unshares the namespaces and pivots into the empty root. Must run while the process has
/// one thread (a new mount namespace applies to the calling thread only).
pub fn enter_empty_root() -> Result<(), ConfineError> {
    // SAFETY: unshare takes flags only.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) },
        "unshare(mount, ipc, uts)",
    )?;
    // Nothing done below propagates back to the host's mounts.
    mount(
        c"none",
        c"/",
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
        "making / private",
    )?;
    let dir = MOUNT_POINTS
        .into_iter()
        // SAFETY: `p` is a NUL-terminated path; access only checks it.
        .find(|p| unsafe { libc::access(p.as_ptr(), libc::F_OK) } == 0)
        .ok_or(ConfineError::NoMountPoint)?;
    let nodev = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        c"rvisor-root",
        dir,
        Some(c"tmpfs"),
        nodev,
        Some(c"size=16k,nr_inodes=8,mode=0555"),
        "mounting the new root",
    )?;
    // SAFETY: `dir` is a NUL-terminated path.
    check(
        unsafe { libc::chdir(dir.as_ptr()) },
        "chdir to the new root",
    )?;
    // SAFETY: a relative NUL-terminated path; the process still has CAP_DAC_OVERRIDE.
    check(
        unsafe { libc::mkdir(c"proc".as_ptr(), 0o555) },
        "mkdir /proc in the new root",
    )?;
    // Only the per-process directories where the kernel supports it (Linux 5.8+).
    let proc_flags = nodev | libc::MS_RDONLY;
    if mount(
        c"proc",
        c"proc",
        Some(c"proc"),
        proc_flags,
        Some(c"subset=pid"),
        "mounting /proc",
    )
    .is_err()
    {
        mount(
            c"proc",
            c"proc",
            Some(c"proc"),
            proc_flags,
            None,
            "mounting /proc",
        )?;
    }
    // pivot_root(".", "."): the old root ends up stacked on the new one, and is detached.
    // SAFETY: two NUL-terminated paths.
    check(
        unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } as libc::c_int,
        "pivot_root",
    )?;
    // SAFETY: a NUL-terminated path and flags.
    check(
        unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) },
        "unmounting the host's root",
    )?;
    // SAFETY: a NUL-terminated path.
    check(unsafe { libc::chdir(c"/".as_ptr()) }, "chdir /")?;
    mount(
        c"none",
        c"/",
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | nodev,
        None,
        "making the new root read-only",
    )?;
    Ok(())
}
