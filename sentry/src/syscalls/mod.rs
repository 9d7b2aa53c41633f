//! The syscall table: number → handler, and the support level `rvisor help syscalls` shows.
//!
//! Handlers are grouped by area. Each takes the task and the six raw argument registers,
//! checks and converts its arguments, and calls into the subsystem that owns the semantics.

mod caps;
mod creds;
mod epoll;
mod fs;
mod fs_mutate;
mod futex;
mod info;
mod inotify;
mod lock;
mod memfd;
mod openat2;
mod splice;
mod mm;
mod mount;
mod pipe;
mod poll;
mod process;
mod signal;
mod signalfd;
mod socket;
mod time;
mod timerfd;
mod xattr;

use rvisor_syscalls::nr::{self, MAX_NR};
use rvisor_syscalls::Errno;

use crate::kernel::Task;

pub use process::online_cpus;

/// The six argument registers (rdi, rsi, rdx, r10, r8, r9).
pub type Args = [u64; 6];
/// A syscall's result: the value for rax, or an errno.
pub type SysResult = Result<u64, Errno>;
type Handler = fn(&mut Task, &Args) -> SysResult;

/// How completely rvisor implements a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Linux semantics for every documented argument.
    Full,
    /// Common uses work; some flags or cases return an error (documented in the handler).
    Partial,
    /// Returns ENOSYS.
    None,
}

impl Support {
    pub fn as_str(self) -> &'static str {
        match self {
            Support::Full => "full",
            Support::Partial => "partial",
            Support::None => "none",
        }
    }
}

/// The handler and support level of syscall `n`.
fn lookup(n: usize) -> Option<(Handler, Support)> {
    use Support::{Full as F, Partial as P};
    Some(match n {
        nr::READ => (fs::read, F),
        nr::WRITE => (fs::write, F),
        nr::OPEN => (fs::open, P),
        nr::CLOSE => (fs::close, F),
        nr::STAT => (fs::stat, F),
        nr::FSTAT => (fs::fstat, F),
        nr::LSTAT => (fs::lstat, F),
        nr::LSEEK => (fs::lseek, F),
        nr::MMAP => (mm::mmap, P),
        nr::MPROTECT => (mm::mprotect, F),
        nr::MUNMAP => (mm::munmap, F),
        nr::BRK => (mm::brk, F),
        nr::RT_SIGACTION => (signal::rt_sigaction, F),
        nr::RT_SIGPROCMASK => (signal::rt_sigprocmask, F),
        nr::RT_SIGRETURN => (signal::rt_sigreturn, F),
        nr::IOCTL => (fs::ioctl, P),
        nr::PREAD64 => (fs::pread64, F),
        nr::PWRITE64 => (fs::pwrite64, F),
        nr::READV => (fs::readv, F),
        nr::WRITEV => (fs::writev, F),
        nr::ACCESS => (fs::access, P),
        nr::PIPE => (pipe::pipe, F),
        nr::PIPE2 => (pipe::pipe2, F),
        nr::POLL => (poll::poll, F),
        nr::PPOLL => (poll::ppoll, F),
        nr::SELECT => (poll::select, F),
        nr::PSELECT6 => (poll::pselect6, F),
        nr::FUTEX => (futex::futex, P),
        nr::SOCKET => (socket::socket, P),
        nr::CONNECT => (socket::connect, P),
        nr::ACCEPT => (socket::accept, P),
        nr::SENDTO => (socket::sendto, P),
        nr::RECVFROM => (socket::recvfrom, P),
        nr::SENDMSG => (socket::sendmsg, P),
        nr::RECVMSG => (socket::recvmsg, P),
        nr::SHUTDOWN => (socket::shutdown, F),
        nr::BIND => (socket::bind, P),
        nr::LISTEN => (socket::listen, P),
        nr::GETSOCKNAME => (socket::getsockname, P),
        nr::GETPEERNAME => (socket::getpeername, P),
        nr::SOCKETPAIR => (socket::socketpair, P),
        nr::SETSOCKOPT => (socket::setsockopt, P),
        nr::GETSOCKOPT => (socket::getsockopt, P),
        nr::ACCEPT4 => (socket::accept4, P),
        nr::SENDMMSG => (socket::sendmmsg, P),
        nr::RECVMMSG => (socket::recvmmsg, P),
        nr::EPOLL_CREATE => (epoll::epoll_create, F),
        nr::EPOLL_CREATE1 => (epoll::epoll_create1, F),
        nr::EPOLL_CTL => (epoll::epoll_ctl, P),
        nr::EPOLL_WAIT => (epoll::epoll_wait, F),
        nr::EPOLL_PWAIT => (epoll::epoll_pwait, F),
        nr::EPOLL_PWAIT2 => (epoll::epoll_pwait2, F),
        nr::EVENTFD => (epoll::eventfd, F),
        nr::EVENTFD2 => (epoll::eventfd2, F),
        nr::SCHED_YIELD => (process::sched_yield, F),
        nr::MADVISE => (mm::madvise, P),
        nr::MREMAP => (mm::mremap, F),
        nr::MSYNC => (mm::msync, P),
        nr::MINCORE => (mm::mincore, F),
        nr::MLOCK => (mm::mlock, P),
        nr::MUNLOCK => (mm::munlock, P),
        nr::MLOCKALL => (mm::mlockall, P),
        nr::MUNLOCKALL => (mm::munlockall, P),
        nr::MLOCK2 => (mm::mlock2, P),
        nr::DUP => (fs::dup, F),
        nr::DUP2 => (fs::dup2, F),
        nr::PAUSE => (signal::pause, F),
        nr::NANOSLEEP => (time::nanosleep, F),
        nr::ALARM => (signal::alarm, F),
        nr::SETITIMER => (signal::setitimer, F),
        nr::GETITIMER => (signal::getitimer, F),
        nr::RESTART_SYSCALL => (time::restart_syscall, F),
        nr::GETPID => (process::getpid, F),
        nr::EXIT => (process::exit, F),
        nr::EXECVE => (process::execve, P),
        nr::CLONE => (process::clone, P),
        nr::FORK => (process::fork, F),
        nr::VFORK => (process::vfork, F),
        nr::WAIT4 => (process::wait4, F),
        nr::WAITID => (process::waitid, P),
        nr::KILL => (signal::kill, F),
        nr::UNAME => (info::uname, F),
        nr::FCNTL => (fs::fcntl, P),
        nr::FLOCK => (lock::flock, F),
        nr::MEMFD_CREATE => (memfd::memfd_create, P),
        nr::SENDFILE => (splice::sendfile, F),
        nr::SPLICE => (splice::splice, P),
        nr::TEE => (splice::tee, F),
        nr::COPY_FILE_RANGE => (splice::copy_file_range, F),
        nr::OPENAT2 => (openat2::openat2, P),
        nr::FSYNC => (fs::fsync, F),
        nr::FDATASYNC => (fs::fsync, F),
        nr::GETDENTS64 => (fs::getdents64, F),
        nr::GETCWD => (fs::getcwd, F),
        nr::CHDIR => (fs::chdir, F),
        nr::FCHDIR => (fs::fchdir, F),
        nr::READLINK => (fs::readlink, F),
        nr::UMASK => (fs::umask, F),
        nr::MOUNT => (mount::mount, P),
        nr::UMOUNT2 => (mount::umount2, P),
        nr::GETTIMEOFDAY => (time::gettimeofday, F),
        nr::GETRLIMIT => (process::getrlimit, F),
        nr::GETRUSAGE => (process::getrusage, P),
        nr::SYSINFO => (info::sysinfo, P),
        nr::TIMES => (process::times, P),
        nr::GETUID => (process::getuid, F),
        nr::GETGID => (process::getgid, F),
        nr::SETUID => (process::setuid, P),
        nr::SETGID => (process::setgid, P),
        nr::GETEUID => (process::geteuid, F),
        nr::GETEGID => (process::getegid, F),
        nr::SETPGID => (process::setpgid, P),
        nr::GETPPID => (process::getppid, F),
        nr::GETPGRP => (process::getpgrp, F),
        nr::SETSID => (process::setsid, P),
        nr::GETGROUPS => (process::getgroups, F),
        nr::SETGROUPS => (process::setgroups, P),
        nr::GETRESUID => (process::getresuid, F),
        nr::GETRESGID => (process::getresgid, F),
        nr::SETREUID => (creds::setreuid, F),
        nr::SETREGID => (creds::setregid, F),
        nr::SETRESUID => (creds::setresuid, F),
        nr::SETRESGID => (creds::setresgid, F),
        nr::SETFSUID => (creds::setfsuid, F),
        nr::CAPGET => (caps::capget, F),
        nr::CAPSET => (caps::capset, F),
        nr::SETFSGID => (creds::setfsgid, F),
        nr::GETPGID => (process::getpgid, F),
        nr::GETSID => (process::getsid, F),
        nr::RT_SIGPENDING => (signal::rt_sigpending, F),
        nr::RT_SIGTIMEDWAIT => (signal::rt_sigtimedwait, F),
        nr::RT_SIGQUEUEINFO => (signal::rt_sigqueueinfo, F),
        nr::RT_SIGSUSPEND => (signal::rt_sigsuspend, F),
        nr::RT_TGSIGQUEUEINFO => (signal::rt_tgsigqueueinfo, F),
        nr::SIGALTSTACK => (signal::sigaltstack, F),
        nr::GETXATTR => (xattr::getxattr, P),
        nr::LGETXATTR => (xattr::lgetxattr, P),
        nr::FGETXATTR => (xattr::fgetxattr, P),
        nr::LISTXATTR => (xattr::listxattr, P),
        nr::LLISTXATTR => (xattr::llistxattr, P),
        nr::FLISTXATTR => (xattr::flistxattr, P),
        nr::SETXATTR => (xattr::setxattr, P),
        nr::LSETXATTR => (xattr::lsetxattr, P),
        nr::FSETXATTR => (xattr::fsetxattr, P),
        nr::REMOVEXATTR => (xattr::removexattr, P),
        nr::LREMOVEXATTR => (xattr::lremovexattr, P),
        nr::FREMOVEXATTR => (xattr::fremovexattr, P),
        nr::STATFS => (fs::statfs, F),
        nr::FSTATFS => (fs::fstatfs, F),
        nr::PRCTL => (process::prctl, P),
        nr::ARCH_PRCTL => (process::arch_prctl, P),
        nr::SETRLIMIT => (process::setrlimit, F),
        nr::GETTID => (process::gettid, F),
        nr::TIME => (time::time, F),
        nr::SCHED_GETAFFINITY => (process::sched_getaffinity, F),
        nr::SET_TID_ADDRESS => (process::set_tid_address, F),
        nr::CLOCK_GETTIME => (time::clock_gettime, F),
        nr::CLOCK_GETRES => (time::clock_getres, F),
        nr::CLOCK_NANOSLEEP => (time::clock_nanosleep, P),
        nr::EXIT_GROUP => (process::exit_group, F),
        nr::TGKILL => (signal::tgkill, F),
        nr::TKILL => (signal::tkill, F),
        nr::OPENAT => (fs::openat, P),
        nr::NEWFSTATAT => (fs::newfstatat, F),
        nr::READLINKAT => (fs::readlinkat, F),
        nr::FACCESSAT => (fs::faccessat, P),
        nr::FACCESSAT2 => (fs::faccessat2, P),
        nr::SET_ROBUST_LIST => (process::set_robust_list, F),
        nr::GET_ROBUST_LIST => (process::get_robust_list, P),
        nr::DUP3 => (fs::dup3, F),
        nr::PRLIMIT64 => (process::prlimit64, P),
        nr::EXECVEAT => (process::execveat, P),
        nr::CLONE3 => (process::clone3, P),
        nr::GETCPU => (process::getcpu, F),
        nr::GETRANDOM => (info::getrandom, F),
        nr::STATX => (fs::statx, P),
        nr::CLOSE_RANGE => (fs::close_range, F),
        nr::CREAT => (fs_mutate::creat, F),
        nr::MKDIR => (fs_mutate::mkdir, F),
        nr::MKDIRAT => (fs_mutate::mkdirat, F),
        nr::UNLINK => (fs_mutate::unlink, F),
        nr::UNLINKAT => (fs_mutate::unlinkat, F),
        nr::RMDIR => (fs_mutate::rmdir, F),
        nr::RENAME => (fs_mutate::rename, F),
        nr::RENAMEAT => (fs_mutate::renameat, F),
        nr::RENAMEAT2 => (fs_mutate::renameat2, P),
        nr::LINK => (fs_mutate::link, F),
        nr::LINKAT => (fs_mutate::linkat, F),
        nr::SYMLINK => (fs_mutate::symlink, F),
        nr::SYMLINKAT => (fs_mutate::symlinkat, F),
        nr::MKNOD => (fs_mutate::mknod, P),
        nr::MKNODAT => (fs_mutate::mknodat, P),
        nr::TRUNCATE => (fs_mutate::truncate, F),
        nr::FTRUNCATE => (fs_mutate::ftruncate, F),
        nr::FALLOCATE => (fs_mutate::fallocate, P),
        nr::CHMOD => (fs_mutate::chmod, F),
        nr::FCHMOD => (fs_mutate::fchmod, F),
        nr::FCHMODAT => (fs_mutate::fchmodat, F),
        nr::FCHMODAT2 => (fs_mutate::fchmodat2, F),
        nr::CHOWN => (fs_mutate::chown, F),
        nr::FCHOWN => (fs_mutate::fchown, F),
        nr::LCHOWN => (fs_mutate::lchown, F),
        nr::FCHOWNAT => (fs_mutate::fchownat, F),
        nr::UTIMENSAT => (fs_mutate::utimensat, F),
        nr::UTIMES => (fs_mutate::utimes, F),
        nr::FUTIMESAT => (fs_mutate::futimesat, F),
        nr::UTIME => (fs_mutate::utime, F),
        nr::TIMERFD_CREATE => (timerfd::timerfd_create, F),
        nr::TIMERFD_SETTIME => (timerfd::timerfd_settime, P),
        nr::TIMERFD_GETTIME => (timerfd::timerfd_gettime, F),
        nr::SIGNALFD => (signalfd::signalfd, F),
        nr::SIGNALFD4 => (signalfd::signalfd4, F),
        nr::INOTIFY_INIT => (inotify::inotify_init, F),
        nr::INOTIFY_INIT1 => (inotify::inotify_init1, F),
        nr::INOTIFY_ADD_WATCH => (inotify::inotify_add_watch, P),
        nr::INOTIFY_RM_WATCH => (inotify::inotify_rm_watch, F),
        _ => return None,
    })
}

/// Support level of syscall `n` (for `rvisor help syscalls`).
pub fn support(n: usize) -> Support {
    lookup(n).map(|(_, s)| s).unwrap_or(Support::None)
}

/// Every named x86_64 syscall with its support level.
pub fn support_table() -> Vec<(usize, &'static str, Support)> {
    (0..=MAX_NR).filter_map(|n| nr::name(n as u64).map(|name| (n, name, support(n)))).collect()
}

/// Runs the syscall the task trapped on and stores the result in rax.
pub fn dispatch(t: &mut Task) {
    // The `syscall` instruction leaves the return address in rcx; a legacy 32-bit entry
    // (`int 0x80`, `sysenter`) does not. Those use the i386 table and argument registers,
    // which rvisor does not emulate: they fail with ENOSYS instead of being misread as
    // x86_64 calls.
    if t.regs.rcx != t.regs.rip && is_legacy_entry(t) {
        t.kernel.report_legacy_syscall(t.regs.orig_rax, &t.comm);
        t.regs.rax = Errno::ENOSYS.as_return();
        return;
    }
    let n = t.regs.orig_rax;
    let args: Args = [t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9];
    let result = match usize::try_from(n).ok().and_then(lookup) {
        Some((handler, _)) => handler(t, &args),
        None => {
            t.kernel.report_unimplemented(n, &t.comm);
            Err(Errno::ENOSYS)
        }
    };
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(tid = t.tid(), name = nr::name(n).unwrap_or("?"), ?args, ?result, "syscall");
    }
    t.regs.rax = match result {
        Ok(v) => v,
        // Kernel-internal restart codes never reach the guest: signal delivery decides
        // between EINTR and re-running the call.
        Err(e) if (Errno::ERESTARTSYS.0..=Errno::ERESTART_RESTARTBLOCK.0).contains(&e.0) => {
            t.restart = Some(e);
            Errno::EINTR.as_return()
        }
        Err(e) => e.as_return(),
    };
}

/// The legacy vsyscall page, as x86_64 Linux maps it.
pub const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// A guest call into the vsyscall page (the platform trapped it, with rip and rsp past
/// the emulated `ret` and the syscall number in rax): Linux's `vsyscall=xonly` emulation
/// of gettimeofday, time and getcpu. A bad pointer gets SIGSEGV, as Linux's emulation.
/// Returns false for anything else (the caller delivers the signal).
pub fn vsyscall(t: &mut Task, addr: u64) -> bool {
    let handler: fn(&mut Task, &Args) -> SysResult = match (addr - VSYSCALL_PAGE, t.regs.rax as usize) {
        (0x000, nr::GETTIMEOFDAY) => time::gettimeofday,
        (0x400, nr::TIME) => time::time,
        (0x800, nr::GETCPU) => process::getcpu,
        _ => return false,
    };
    let args: Args = [t.regs.rdi, t.regs.rsi, t.regs.rdx, 0, 0, 0];
    match handler(t, &args) {
        Ok(v) => {
            t.regs.rax = v;
            true
        }
        Err(Errno::EFAULT) => false,
        Err(e) => {
            t.regs.rax = e.as_return();
            true
        }
    }
}

/// Whether the trapping instruction (just before rip) is `int 0x80` or `sysenter`.
fn is_legacy_entry(t: &Task) -> bool {
    let mut insn = [0u8; 2];
    match t.regs.rip.checked_sub(2) {
        Some(at) if t.mm.copy_in(at, &mut insn).is_ok() => insn == [0xcd, 0x80] || insn == [0x0f, 0x34],
        _ => false,
    }
}
