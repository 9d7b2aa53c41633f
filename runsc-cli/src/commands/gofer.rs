//! `rvisor gofer` (internal): serves one directory tree (or one regular file, for a
//! single-file bind mount) to a sandbox over a socket.
//!
//! Before it reads the first request the gofer confines itself (see
//! `docs/seccomp-gofer.md`): new mount, IPC, UTS, network and PID namespaces, a chroot into
//! the served tree, only the capabilities its file operations need, no_new_privs, and a
//! seccomp allow-list of the syscalls the server loop makes (anything else kills it).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::Context;
use rvisor_gofer::seccomp::Mismatch;
use rvisor_syscalls::flags::capability::*;
use rvisor_syscalls::types::{CapUserData, CapUserHeader};

#[derive(Debug, clap::Args)]
pub struct GoferArgs {
    /// Fd (O_PATH) of the directory, or regular file, to serve.
    #[arg(long = "root-fd")]
    root_fd: i32,
    /// Fd of the gofer end of the sandbox connection.
    #[arg(long = "sock-fd")]
    sock_fd: i32,
    /// Refuse every write.
    #[arg(long = "read-only")]
    read_only: bool,
}

/// Environment variable that, set to `log`, makes the seccomp filter log syscalls off the
/// list (`SECCOMP_RET_LOG`) instead of killing the gofer: for finding a missing one.
const SECCOMP_MODE_ENV: &str = "RVISOR_GOFER_SECCOMP";

pub fn run(g: &crate::GlobalFlags, args: GoferArgs) -> anyhow::Result<i32> {
    crate::logging::init(g, "gofer");
    if args.root_fd < 3 || args.sock_fd < 3 || args.root_fd == args.sock_fd {
        anyhow::bail!("gofer: invalid fds");
    }
    // SAFETY: the parent passed these fds to us for our exclusive use; they are not used
    // anywhere else in this process.
    let (root, sock) = unsafe { (OwnedFd::from_raw_fd(args.root_fd), OwnedFd::from_raw_fd(args.sock_fd)) };
    let opts = rvisor_gofer::ServerOptions { read_only: args.read_only };
    let mismatch = match std::env::var(SECCOMP_MODE_ENV).as_deref() {
        Ok("log") => {
            tracing::warn!("rvisor: gofer seccomp filter in log mode ({SECCOMP_MODE_ENV}=log): not for production");
            Mismatch::Log
        }
        _ => Mismatch::Kill,
    };
    let is_file = rvisor_gofer::host_fstat(root.as_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    rvisor_gofer::warm_up();
    let served = if is_file {
        // A single-file bind mount: the file is reopened through /proc/self/fd, taken
        // before confinement; that directory (links to the gofer's own descriptors only)
        // is also the gofer's root, a regular file cannot be one.
        let proc_fds = rvisor_gofer::open_proc_self_fd().context("gofer: /proc/self/fd")?;
        confine(proc_fds.as_fd(), args.read_only)?;
        install_seccomp(args.read_only, sock.as_raw_fd(), mismatch)?;
        rvisor_gofer::serve_root(sock, root, Some(proc_fds), opts)
    } else {
        confine(root.as_fd(), args.read_only)?;
        install_seccomp(args.read_only, sock.as_raw_fd(), mismatch)?;
        rvisor_gofer::serve(sock, root, opts)
    };
    match served {
        Ok(()) => Ok(0),
        Err(e) => {
            // Reported here rather than by main, whose `--log` file the confined gofer can
            // no longer open.
            tracing::error!(error = %e, "gofer failed");
            eprintln!("rvisor: gofer: {e}");
            Ok(1)
        }
    }
}

fn install_seccomp(read_only: bool, sock: i32, mismatch: Mismatch) -> anyhow::Result<()> {
    rvisor_gofer::seccomp::install(read_only, sock, mismatch).context("gofer")?;
    tracing::debug!(read_only, ?mismatch, "gofer: seccomp filter installed");
    Ok(())
}

/// Confines the gofer to the served tree before it reads any request: mount, IPC, UTS,
/// network and PID namespaces of its own (mounts made private), the served tree as its root
/// directory, only the capabilities it needs, and no_new_privs. The server resolves nothing
/// from `/` anyway (every operation is relative to a descriptor of the tree); this is
/// defence in depth against a bug there. A step the host does not allow (no privilege) is
/// logged and skipped; only failing to set no_new_privs (needed for seccomp) is an error.
fn confine(root: BorrowedFd<'_>, read_only: bool) -> anyhow::Result<()> {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"rvisor-gofer".as_ptr(), 0, 0, 0) };
    // SAFETY: unshare takes only flags; the gofer is single-threaded here.
    let ns = step("unshare(CLONE_NEWNS)", unsafe { libc::unshare(libc::CLONE_NEWNS) });
    if ns {
        // SAFETY: null source, type and data are allowed for a propagation change; the
        // target is a NUL-terminated string.
        let r = unsafe {
            libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null())
        };
        step("making mounts private", r);
    }
    // The gofer needs no network, no System V IPC, no host name and never signals or forks
    // (a new PID namespace applies to children: there are none).
    for (what, flag) in [
        ("unshare(CLONE_NEWNET)", libc::CLONE_NEWNET),
        ("unshare(CLONE_NEWIPC)", libc::CLONE_NEWIPC),
        ("unshare(CLONE_NEWUTS)", libc::CLONE_NEWUTS),
        ("unshare(CLONE_NEWPID)", libc::CLONE_NEWPID),
    ] {
        // SAFETY: unshare takes only flags; the gofer is single-threaded here.
        step(what, unsafe { libc::unshare(flag) });
    }
    // SAFETY: fchdir takes a descriptor (O_PATH directories are accepted) and chroot a
    // NUL-terminated string; neither touches memory of ours otherwise.
    let chrooted = step("fchdir to the served tree", unsafe { libc::fchdir(root.as_raw_fd()) })
        && step("chroot into the served tree", unsafe { libc::chroot(c".".as_ptr()) });
    if chrooted {
        tracing::debug!("gofer: chrooted into the served tree");
    }
    drop_capabilities(kept_capabilities(read_only));
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("gofer: no_new_privs");
    }
    Ok(())
}

/// Logs a failed confinement step (`r != 0`); returns whether it succeeded.
fn step(what: &str, r: libc::c_int) -> bool {
    if r != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "rvisor: gofer confinement: {what} failed; serving without it");
        false
    } else {
        true
    }
}

/// The capabilities a gofer keeps once confined (a bit per capability number).
fn kept_capabilities(read_only: bool) -> u64 {
    // Serving files whatever their mode or owner, as the root that started the gofer could.
    let read = [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH];
    // Owners and modes of new nodes, setattr, timestamps and xattrs of files the gofer
    // does not own, set-group-ID bits a guest asks for. (No CAP_MKNOD: device nodes are
    // refused; fifos, sockets and regular files need no capability.)
    let write = [CAP_CHOWN, CAP_FOWNER, CAP_FSETID];
    let bits = |caps: &[u32]| caps.iter().fold(0u64, |acc, &c| acc | 1 << c);
    if read_only {
        bits(&read)
    } else {
        bits(&read) | bits(&write)
    }
}

/// Drops every capability not in `keep` from the bounding set, clears the ambient set, and
/// limits the permitted, effective and inheritable sets to `keep` (what of it is held).
fn drop_capabilities(keep: u64) {
    // Bounding set first: dropping needs CAP_SETPCAP, which capset then removes. The loop
    // stops at the first number the host does not know (EINVAL).
    let mut dropped_bounding = true;
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                // EPERM (no CAP_SETPCAP): no other drop can succeed either.
                dropped_bounding = false;
                tracing::warn!(error = %e, cap, "rvisor: gofer confinement: dropping bounding capabilities failed");
            }
            break;
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integer arguments only.
    step("clearing ambient capabilities", unsafe {
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0)
    });
    let mut hdr = CapUserHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: version-3 capget reads the header and writes two CapUserData slices into
    // `data`, both live and exclusively borrowed, with the kernel's layout.
    if !step("capget", unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } as libc::c_int) {
        return;
    }
    let permitted = u64::from(data[0].permitted) | u64::from(data[1].permitted) << 32;
    let new = keep & permitted;
    for (i, d) in data.iter_mut().enumerate() {
        let half = (new >> (32 * i)) as u32;
        *d = CapUserData { effective: half, permitted: half, inheritable: half };
    }
    // SAFETY: version-3 capset reads the header and the two CapUserData slices, both live.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } as libc::c_int;
    if step("capset", r) && dropped_bounding {
        tracing::debug!(caps = format!("{new:#x}"), "gofer: capabilities dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_gofer_keeps_only_dac_capabilities() {
        let ro = kept_capabilities(true);
        assert_eq!(ro, 1 << CAP_DAC_OVERRIDE | 1 << CAP_DAC_READ_SEARCH);
        let rw = kept_capabilities(false);
        assert_eq!(rw & ro, ro);
        for cap in [CAP_CHOWN, CAP_FOWNER, CAP_FSETID] {
            assert_ne!(rw & 1 << cap, 0);
            assert_eq!(ro & 1 << cap, 0);
        }
        for cap in [CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT, CAP_MKNOD, CAP_NET_ADMIN, CAP_KILL] {
            assert_eq!(rw & 1 << cap, 0, "{}", CAP_NAMES[cap as usize]);
        }
    }
}
