//! The gofer's own seccomp allow-list: exactly the host syscalls the server loop makes once
//! it is confined, each with the reason it is needed (see `docs/seccomp-gofer.md`).
//!
//! The filter is installed by `rvisor gofer` after confinement (namespaces, chroot,
//! capabilities, no_new_privs) and before the first request is read. Any other syscall
//! kills the whole gofer process (`SECCOMP_RET_KILL_PROCESS`); the sandbox then sees EIO
//! from every file of that mount. A read-only gofer gets a smaller list: none of the calls
//! that change the tree, and `openat` only without write access, creation or truncation.
//!
//! Arguments are checked where the allowed values are few and fixed: messages only on the
//! gofer's own socket, no executable mappings, `fcntl` only to read and set status flags.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as CmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// Errors from building or installing the gofer's filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("building the gofer's seccomp filter: {0}")]
    Build(String),
    #[error("installing the gofer's seccomp filter: {0}")]
    Install(String),
}

/// What happens to a syscall that is not on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Kill the gofer (the default).
    Kill,
    /// Allow it but have the kernel log it (`SECCOMP_RET_LOG`, audit type 1326): for finding
    /// a missing syscall, never for production.
    Log,
}

/// How a syscall's arguments are restricted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Args {
    /// Any arguments.
    Any,
    /// The first argument is the gofer's socket.
    OnSocket,
    /// The protection argument (third) has no `PROT_EXEC`.
    NoExec,
    /// `fcntl(fd, F_GETFL)` or `fcntl(fd, F_SETFL, ...)` only.
    StatusFlags,
    /// `openat` whose flags (third argument) ask for no write access, creation, truncation
    /// or appending when the gofer is read-only; any flags otherwise.
    Open,
}

/// One allowed syscall.
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    /// The syscall's name.
    pub name: &'static str,
    nr: libc::c_long,
    /// Whether only a writable gofer needs it.
    pub writes: bool,
    args: Args,
    /// Why the gofer makes it.
    pub why: &'static str,
}

const fn allow(name: &'static str, nr: libc::c_long, args: Args, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        writes: false,
        args,
        why,
    }
}

const fn allow_rw(name: &'static str, nr: libc::c_long, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        writes: true,
        args: Args::Any,
        why,
    }
}

/// The allow-list, read-only calls first.
pub const ALLOWED: &[Allowed] = &[
    // The connection.
    allow("recvmsg", libc::SYS_recvmsg, Args::OnSocket, "receives each request (only on the gofer's socket)"),
    allow("sendmsg", libc::SYS_sendmsg, Args::OnSocket, "sends each answer and donates opened fds as SCM_RIGHTS (only on the gofer's socket)"),
    // Reading the tree.
    allow("openat", libc::SYS_openat, Args::Open, "walk (O_PATH|O_NOFOLLOW of one name), open, directory streams, reopening a file root through /proc/self/fd; read-only: no write access, O_CREAT, O_TRUNC or O_APPEND"),
    allow("fstat", libc::SYS_fstat, Args::Any, "attributes of walked nodes and identity checks of reopened files"),
    allow("newfstatat", libc::SYS_newfstatat, Args::Any, "fstat(3) of the C library is fstatat(fd, \"\", AT_EMPTY_PATH)"),
    allow("fstatfs", libc::SYS_fstatfs, Args::Any, "statfs requests"),
    allow("readlinkat", libc::SYS_readlinkat, Args::Any, "readlink requests (readlinkat(fd, \"\") of an O_PATH symlink)"),
    allow("getdents64", libc::SYS_getdents64, Args::Any, "getdents requests"),
    allow("lseek", libc::SYS_lseek, Args::Any, "positions a directory stream at the client's cookie"),
    allow("fcntl", libc::SYS_fcntl, Args::StatusFlags, "clears O_NONBLOCK on an opened file (F_GETFL/F_SETFL only)"),
    allow("fgetxattr", libc::SYS_fgetxattr, Args::Any, "getxattr requests (user. namespace)"),
    allow("flistxattr", libc::SYS_flistxattr, Args::Any, "listxattr requests"),
    allow("geteuid", libc::SYS_geteuid, Args::Any, "whether a failed chown or fd-link may fall back (non-root gofer)"),
    allow("close", libc::SYS_close, Args::Any, "clunked fids, donated fds after sending, directory streams"),
    // Memory and threads of the runtime.
    allow("mmap", libc::SYS_mmap, Args::NoExec, "the allocator (never PROT_EXEC)"),
    allow("mprotect", libc::SYS_mprotect, Args::NoExec, "the allocator's guard pages (never PROT_EXEC)"),
    allow("munmap", libc::SYS_munmap, Args::Any, "the allocator"),
    allow("mremap", libc::SYS_mremap, Args::Any, "the allocator growing large buffers"),
    allow("brk", libc::SYS_brk, Args::Any, "the allocator"),
    allow("madvise", libc::SYS_madvise, Args::Any, "the allocator returning freed memory"),
    allow("futex", libc::SYS_futex, Args::Any, "locks of the runtime and the log writer"),
    allow("getrandom", libc::SYS_getrandom, Args::Any, "hash-map seeds of the runtime"),
    allow("clock_gettime", libc::SYS_clock_gettime, Args::Any, "log timestamps and the receive poll deadline (when the vDSO is not used)"),
    allow("write", libc::SYS_write, Args::Any, "log lines to stderr or the --debug-log file"),
    allow("sigaltstack", libc::SYS_sigaltstack, Args::Any, "the runtime's stack-overflow handler at exit"),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask, Args::Any, "the C library around exit"),
    allow("rt_sigreturn", libc::SYS_rt_sigreturn, Args::Any, "returning from a signal handler"),
    allow("exit", libc::SYS_exit, Args::Any, "thread exit"),
    allow("exit_group", libc::SYS_exit_group, Args::Any, "process exit when the sandbox closes the connection"),
    // Changing the tree (a writable gofer only).
    allow_rw("mkdirat", libc::SYS_mkdirat, "mkdir requests"),
    allow_rw("mknodat", libc::SYS_mknodat, "mknod requests (fifos, sockets, empty files; never devices)"),
    allow_rw("symlinkat", libc::SYS_symlinkat, "symlink requests"),
    allow_rw("linkat", libc::SYS_linkat, "link requests"),
    allow_rw("unlinkat", libc::SYS_unlinkat, "unlink and rmdir requests, undoing a half-made node"),
    allow_rw("renameat2", libc::SYS_renameat2, "rename requests (with RENAME_NOREPLACE/EXCHANGE)"),
    allow_rw("fchownat", libc::SYS_fchownat, "owner of new nodes and setattr (AT_EMPTY_PATH on an O_PATH fd)"),
    allow_rw("fchmodat2", libc::SYS_fchmodat2, "mode of new nodes and setattr (AT_EMPTY_PATH on an O_PATH fd)"),
    allow_rw("fchmod", libc::SYS_fchmod, "the same on a directory before Linux 6.6"),
    allow_rw("utimensat", libc::SYS_utimensat, "setattr of timestamps"),
    allow_rw("ftruncate", libc::SYS_ftruncate, "setattr of the size"),
    allow_rw("fsetxattr", libc::SYS_fsetxattr, "setxattr requests"),
    allow_rw("fremovexattr", libc::SYS_fremovexattr, "removexattr requests"),
];

/// The syscalls a gofer serving read-only (`read_only`) or writable trees may make.
pub fn allowed(read_only: bool) -> impl Iterator<Item = &'static Allowed> {
    ALLOWED.iter().filter(move |a| !(read_only && a.writes))
}

/// `openat` flags a read-only gofer never passes.
const WRITE_OPEN_FLAGS: u64 = (libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_TRUNC
    | libc::O_APPEND
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;

fn cond(arg: u8, op: CmpOp, value: u64) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg, Len::Qword, op, value)
        .map_err(|e| SeccompError::Build(e.to_string()))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(conds).map_err(|e| SeccompError::Build(e.to_string()))
}

/// The rules (any of which allows the call) for `args`; empty means unconditionally.
fn rules(args: Args, read_only: bool, sock: i32) -> Result<Vec<SeccompRule>, SeccompError> {
    Ok(match args {
        Args::Any => Vec::new(),
        Args::OnSocket => {
            let fd = u64::try_from(sock)
                .map_err(|_| SeccompError::Build("negative socket fd".into()))?;
            vec![rule(vec![SeccompCondition::new(
                0,
                Len::Dword,
                CmpOp::Eq,
                fd,
            )
            .map_err(|e| SeccompError::Build(e.to_string()))?])?]
        }
        Args::NoExec => vec![rule(vec![cond(
            2,
            CmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )?])?],
        Args::StatusFlags => vec![
            rule(vec![cond(1, CmpOp::Eq, libc::F_GETFL as u64)?])?,
            rule(vec![cond(1, CmpOp::Eq, libc::F_SETFL as u64)?])?,
        ],
        Args::Open if read_only => {
            vec![rule(vec![cond(2, CmpOp::MaskedEq(WRITE_OPEN_FLAGS), 0)?])?]
        }
        Args::Open => Vec::new(),
    })
}

/// The compiled filter of a gofer serving on socket `sock`.
pub fn filter(read_only: bool, sock: i32, mismatch: Mismatch) -> Result<BpfProgram, SeccompError> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for a in allowed(read_only) {
        map.insert(a.nr, rules(a.args, read_only, sock)?);
    }
    let on_mismatch = match mismatch {
        Mismatch::Kill => SeccompAction::KillProcess,
        Mismatch::Log => SeccompAction::Log,
    };
    let f = SeccompFilter::new(map, on_mismatch, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
    BpfProgram::try_from(f).map_err(|e| SeccompError::Build(e.to_string()))
}

/// Installs the filter on the calling thread (which must be the gofer's only thread, with
/// no_new_privs set or CAP_SYS_ADMIN held). From here on, any syscall not allowed kills the
/// process.
pub fn install(read_only: bool, sock: i32, mismatch: Mismatch) -> Result<(), SeccompError> {
    let prog = filter(read_only, sock, mismatch)?;
    seccompiler::apply_filter(&prog).map_err(|e| SeccompError::Install(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_list_is_a_strict_subset_without_mutating_calls() {
        let rw: Vec<_> = allowed(false).map(|a| a.name).collect();
        let ro: Vec<_> = allowed(true).map(|a| a.name).collect();
        assert!(ro.len() < rw.len());
        assert!(ro.iter().all(|n| rw.contains(n)));
        for n in [
            "mkdirat",
            "unlinkat",
            "renameat2",
            "fchownat",
            "ftruncate",
            "fsetxattr",
        ] {
            assert!(!ro.contains(&n), "{n}");
            assert!(rw.contains(&n), "{n}");
        }
    }

    #[test]
    fn dangerous_calls_are_never_allowed() {
        let never = [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_open,
            libc::SYS_chroot,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_clone,
            libc::SYS_fork,
            libc::SYS_kill,
            libc::SYS_bpf,
            libc::SYS_process_vm_writev,
            libc::SYS_ioctl,
        ];
        for nr in never {
            assert!(
                ALLOWED.iter().all(|a| a.nr != nr),
                "syscall {nr} is allowed"
            );
        }
    }

    #[test]
    fn names_are_unique_and_every_entry_has_a_reason() {
        let mut names: Vec<_> = ALLOWED.iter().map(|a| a.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(ALLOWED.iter().all(|a| !a.why.is_empty()));
    }

    #[test]
    fn both_filters_compile() {
        for ro in [false, true] {
            for m in [Mismatch::Kill, Mismatch::Log] {
                assert!(!filter(ro, 5, m).unwrap().is_empty());
            }
        }
        assert!(filter(false, -1, Mismatch::Kill).is_err());
    }

    /// Forks a child that installs the kill filter (socket fd 1000), makes syscall `nr` with
    /// `args` and exits 0; returns its wait status.
    fn in_filtered_child(read_only: bool, nr: libc::c_long, args: [u64; 6]) -> libc::c_int {
        let prog = filter(read_only, 1000, Mismatch::Kill).unwrap();
        // SAFETY: the child only calls prctl, seccomp (through apply_filter, which does not
        // allocate), the syscall under test and exit_group, all async-signal-safe.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: the syscalls under test take integers or pointers to static
            // NUL-terminated strings (or null); the child exits without unwinding.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if seccompiler::apply_filter(&prog).is_err() {
                    libc::_exit(99);
                }
                let [a, b, c, d, e, f] = args;
                libc::syscall(nr, a, b, c, d, e, f);
                libc::syscall(libc::SYS_exit_group, 0);
            }
            unreachable!();
        }
        let mut status = 0;
        // SAFETY: `status` is a live c_int for waitpid to fill.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    fn killed(status: libc::c_int) -> bool {
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS
    }

    fn exited(status: libc::c_int) -> bool {
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }

    const NAME: &std::ffi::CStr = c"rvisor-seccomp-test-x";

    #[test]
    fn an_allowed_call_runs_and_a_forbidden_one_kills_the_process() {
        let minus1 = u64::MAX;
        assert!(exited(in_filtered_child(
            true,
            libc::SYS_close,
            [minus1, 0, 0, 0, 0, 0]
        )));
        assert!(killed(in_filtered_child(true, libc::SYS_getpid, [0; 6])));
        assert!(killed(in_filtered_child(
            false,
            libc::SYS_socket,
            [1, 1, 0, 0, 0, 0]
        )));
        assert!(killed(in_filtered_child(false, libc::SYS_execve, [0; 6])));
    }

    #[test]
    fn argument_filters_hold() {
        // Messages on another fd than the socket (1000) kill; on the socket they run.
        assert!(killed(in_filtered_child(
            false,
            libc::SYS_sendmsg,
            [3, 0, 0, 0, 0, 0]
        )));
        assert!(exited(in_filtered_child(
            false,
            libc::SYS_sendmsg,
            [1000, 0, 0, 0, 0, 0]
        )));
        // An executable mapping kills, a plain one does not.
        let (rx, rw) = (
            (libc::PROT_READ | libc::PROT_EXEC) as u64,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
        );
        let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        assert!(killed(in_filtered_child(
            false,
            libc::SYS_mmap,
            [0, 4096, rx, anon, u64::MAX, 0]
        )));
        assert!(exited(in_filtered_child(
            false,
            libc::SYS_mmap,
            [0, 4096, rw, anon, u64::MAX, 0]
        )));
        assert!(killed(in_filtered_child(
            false,
            libc::SYS_mprotect,
            [0, 4096, rx, 0, 0, 0]
        )));
        // fcntl other than F_GETFL/F_SETFL.
        assert!(killed(in_filtered_child(
            false,
            libc::SYS_fcntl,
            [0, libc::F_DUPFD as u64, 0, 0, 0, 0]
        )));
        assert!(exited(in_filtered_child(
            false,
            libc::SYS_fcntl,
            [0, libc::F_GETFL as u64, 0, 0, 0, 0]
        )));
        // A read-only gofer opening for writing or creating dies; a writable one may. (The
        // directory fd is -1 and the name relative, so nothing is created.)
        let name = NAME.as_ptr() as u64;
        let open = |flags: i32| [u64::MAX, name, flags as u64, 0o600, 0, 0];
        for flags in [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_RDONLY | libc::O_CREAT,
            libc::O_RDONLY | libc::O_TRUNC,
            libc::O_TMPFILE | libc::O_RDWR,
        ] {
            assert!(
                killed(in_filtered_child(true, libc::SYS_openat, open(flags))),
                "{flags:#o}"
            );
            assert!(
                exited(in_filtered_child(false, libc::SYS_openat, open(flags))),
                "{flags:#o}"
            );
        }
        let path = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as i32;
        assert!(exited(in_filtered_child(
            true,
            libc::SYS_openat,
            open(path)
        )));
        // A read-only gofer changing the tree dies.
        assert!(killed(in_filtered_child(
            true,
            libc::SYS_unlinkat,
            [u64::MAX, name, 0, 0, 0, 0]
        )));
        assert!(exited(in_filtered_child(
            false,
            libc::SYS_unlinkat,
            [u64::MAX, name, 0, 0, 0, 0]
        )));
    }

    #[test]
    fn the_document_lists_every_allowed_syscall() {
        let doc = include_str!("../../docs/seccomp-gofer.md");
        for a in ALLOWED {
            assert!(
                doc.contains(&format!("`{}`", a.name)),
                "docs/seccomp-gofer.md misses {}",
                a.name
            );
        }
    }
}
