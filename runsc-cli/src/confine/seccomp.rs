//! The sandbox process's seccomp allow-list: one table that the filter is compiled from
//! (with `seccompiler`), that `rvisor help seccomp` prints and that docs/seccomp-sentry.md
//! is generated from (a unit test keeps the file in sync).
//!
//! The table lists only what the sentry itself needs. The ptrace stubs do not inherit this
//! filter: they are forked from the platform's zygote, which the sandbox forks (under its
//! own, stub-sized filter) before this filter is installed. So the sandbox process never
//! forks, and never maps or protects anything executable: `mmap` and `mprotect` with
//! PROT_EXEC are killed outright, as is any `clone` but glibc's thread creation. Guest
//! syscalls never reach the sandbox process at all (they stop its stubs under
//! `PTRACE_SYSEMU`).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// How one argument is compared.
#[derive(Clone, Copy, Debug)]
pub enum Cmp {
    /// The whole 64-bit argument equals the value.
    Eq,
    /// The bits of the mask equal the value's.
    MaskedEq(u64),
}

/// One condition: argument `arg` compared with a value.
pub type Cond = (u8, Cmp, u64);

/// When an entry is in the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only with `--network=host` (guest sockets are host sockets).
    HostNetwork,
}

/// One allowed host syscall.
#[derive(Debug)]
pub struct Allowed {
    pub name: &'static str,
    pub nr: i64,
    /// Why the sandbox needs it.
    pub why: &'static str,
    /// Alternatives (any one matching allows the call), each a list of conditions that
    /// must all hold. Empty: any arguments.
    pub rules: &'static [&'static [Cond]],
    /// The argument restriction in words (empty when there is none).
    pub restriction: &'static str,
    pub when: When,
}

const fn any(name: &'static str, nr: i64, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        why,
        rules: &[],
        restriction: "",
        when: When::Always,
    }
}

const fn only(
    name: &'static str,
    nr: i64,
    why: &'static str,
    rules: &'static [&'static [Cond]],
    restriction: &'static str,
) -> Allowed {
    Allowed {
        name,
        nr,
        why,
        rules,
        restriction,
        when: When::Always,
    }
}

const fn host(name: &'static str, nr: i64, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        why,
        rules: &[],
        restriction: "",
        when: When::HostNetwork,
    }
}

/// `arg == v`.
const fn eq(arg: u8, v: u64) -> Cond {
    (arg, Cmp::Eq, v)
}

const PROT_EXEC: u64 = libc::PROT_EXEC as u64;
const NO_EXEC: Cond = (2, Cmp::MaskedEq(PROT_EXEC), 0);

/// glibc's pthread_create (clone, since clone3 is answered ENOSYS).
const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

macro_rules! one_of {
    ($arg:expr; $($v:expr),+ $(,)?) => { &[$(&[eq($arg, $v as u64)]),+] };
}

/// The allow-list. Everything else kills the sandbox process (`SECCOMP_RET_KILL_PROCESS`),
/// except `clone3`, which fails with ENOSYS so that glibc falls back to `clone`, whose
/// flags can be checked.
pub static ALLOWED: &[Allowed] = &[
    // I/O on descriptors the sandbox was given or made: gofer connections, donated host
    // files, stdio, the memory file, pipes, eventfds, the control socket.
    any("read", libc::SYS_read, "reading donated host files, stdio, pipes and sockets"),
    any("write", libc::SYS_write, "writing donated host files, stdio, pipes and sockets; logs"),
    any("readv", libc::SYS_readv, "vectored reads of host files and sockets"),
    any("writev", libc::SYS_writev, "vectored writes of host files and sockets"),
    any("pread64", libc::SYS_pread64, "reads at an offset of donated host files"),
    any("pwrite64", libc::SYS_pwrite64, "writes at an offset of donated host files"),
    any("preadv", libc::SYS_preadv, "vectored reads at an offset of donated host files"),
    any("pwritev", libc::SYS_pwritev, "vectored writes at an offset of donated host files"),
    any("lseek", libc::SYS_lseek, "seeking host stdio and donated files"),
    any("close", libc::SYS_close, "closing descriptors"),
    any("dup", libc::SYS_dup, "duplicating descriptors"),
    any("dup3", libc::SYS_dup3, "duplicating descriptors"),
    any("fstat", libc::SYS_fstat, "stat of donated host files"),
    only("newfstatat", libc::SYS_newfstatat, "stat of donated host files (by descriptor)",
        &[&[(3, Cmp::MaskedEq(libc::AT_EMPTY_PATH as u64), libc::AT_EMPTY_PATH as u64)]], "AT_EMPTY_PATH only (no path lookup)"),
    only("statx", libc::SYS_statx, "stat of donated host files (by descriptor)",
        &[&[(2, Cmp::MaskedEq(libc::AT_EMPTY_PATH as u64), libc::AT_EMPTY_PATH as u64)]], "AT_EMPTY_PATH only (no path lookup)"),
    any("fstatfs", libc::SYS_fstatfs, "statfs of donated host files"),
    any("ftruncate", libc::SYS_ftruncate, "growing the memory file; truncating donated host files"),
    any("fallocate", libc::SYS_fallocate, "releasing memory-file pages (punch hole); guest fallocate on host files"),
    any("fsync", libc::SYS_fsync, "guest fsync on donated host files"),
    any("fdatasync", libc::SYS_fdatasync, "guest fdatasync on donated host files"),
    only("fcntl", libc::SYS_fcntl, "descriptor flags (non-blocking, close-on-exec), duplicates, pipe sizes",
        one_of!(1; libc::F_DUPFD, libc::F_GETFD, libc::F_SETFD, libc::F_GETFL, libc::F_SETFL, libc::F_DUPFD_CLOEXEC, libc::F_GETPIPE_SZ, libc::F_SETPIPE_SZ),
        "F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC, F_GETPIPE_SZ, F_SETPIPE_SZ"),
    only("ioctl", libc::SYS_ioctl, "the console bridge and host stdio (terminal modes, window size), bytes queued on host files and sockets",
        one_of!(1; libc::TCGETS, libc::TCSETS, libc::TCSETSW, libc::TCSETSF, libc::TCFLSH, libc::TIOCGWINSZ, libc::TIOCSWINSZ, libc::FIONREAD, libc::TIOCOUTQ, libc::FIONBIO, 0x8949 /* SIOCOUTQNSD */, 0x8905 /* SIOCATMARK */, 0x8906 /* SIOCGSTAMP */),
        "TCGETS, TCSETS, TCSETSW, TCSETSF, TCFLSH, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCOUTQ, FIONBIO, SIOCOUTQNSD, SIOCATMARK, SIOCGSTAMP"),
    // Memory.
    only("mmap", libc::SYS_mmap, "the sentry's heap and thread stacks, its view of the memory file",
        &[&[NO_EXEC]], "no PROT_EXEC"),
    only("mprotect", libc::SYS_mprotect, "guard pages of thread stacks",
        &[&[NO_EXEC]], "no PROT_EXEC"),
    any("munmap", libc::SYS_munmap, "freeing memory"),
    only("mremap", libc::SYS_mremap, "growing large heap allocations",
        &[&[(3, Cmp::MaskedEq(libc::MREMAP_FIXED as u64), 0)]], "no MREMAP_FIXED"),
    any("madvise", libc::SYS_madvise, "returning freed heap and memory-file pages"),
    any("brk", libc::SYS_brk, "the heap (glibc malloc)"),
    // Waiting and time.
    any("futex", libc::SYS_futex, "locks, condition variables, guest futex waits"),
    any("nanosleep", libc::SYS_nanosleep, "sleeps and back-off"),
    any("clock_nanosleep", libc::SYS_clock_nanosleep, "guest sleeps and timers"),
    any("sched_yield", libc::SYS_sched_yield, "spin-wait back-off"),
    any("clock_gettime", libc::SYS_clock_gettime, "time (when the vDSO cannot answer)"),
    any("clock_getres", libc::SYS_clock_getres, "guest clock_getres"),
    any("gettimeofday", libc::SYS_gettimeofday, "time (when the vDSO cannot answer)"),
    any("getcpu", libc::SYS_getcpu, "the current CPU (pinning a tracer and its stub thread to one CPU)"),
    any("poll", libc::SYS_poll, "readiness of host fds (stdio, the console, host sockets)"),
    any("ppoll", libc::SYS_ppoll, "readiness of host fds"),
    any("epoll_create1", libc::SYS_epoll_create1, "the host-socket and packet-socket pollers"),
    any("epoll_ctl", libc::SYS_epoll_ctl, "the host-socket and packet-socket pollers"),
    any("epoll_wait", libc::SYS_epoll_wait, "the host-socket and packet-socket pollers"),
    any("epoll_pwait", libc::SYS_epoll_pwait, "the host-socket and packet-socket pollers"),
    any("eventfd2", libc::SYS_eventfd2, "waking poller threads"),
    any("pipe2", libc::SYS_pipe2, "internal wake-up pipes"),
    // Sockets the sandbox was given: gofer and control connections, donated packet sockets.
    any("sendmsg", libc::SYS_sendmsg, "gofer requests (with descriptors), control answers, packets"),
    any("recvmsg", libc::SYS_recvmsg, "gofer answers (with donated descriptors), control requests, packets"),
    any("sendto", libc::SYS_sendto, "sockets: gofer, control, packet and host sockets"),
    any("recvfrom", libc::SYS_recvfrom, "sockets: gofer, control, packet and host sockets"),
    any("accept4", libc::SYS_accept4, "control connections (and guest accept on host sockets)"),
    any("shutdown", libc::SYS_shutdown, "closing connections"),
    any("getsockopt", libc::SYS_getsockopt, "socket errors and options"),
    any("getsockname", libc::SYS_getsockname, "socket addresses"),
    any("getpeername", libc::SYS_getpeername, "socket addresses"),
    // Threads, signals. (Stub processes and stub threads are made by injected calls in the
    // zygote and the stubs, under their own filters.)
    only("clone", libc::SYS_clone, "a host thread per guest task, stub master and poller threads",
        &[&[eq(0, THREAD_CLONE_FLAGS)]],
        "thread flags of glibc's pthread_create only (no fork)"),
    any("clone3", libc::SYS_clone3, "none: answered ENOSYS by a second filter, so glibc uses clone"),
    any("set_robust_list", libc::SYS_set_robust_list, "glibc thread start-up"),
    any("rseq", libc::SYS_rseq, "glibc thread start-up"),
    any("sigaltstack", libc::SYS_sigaltstack, "Rust's stack-overflow handler on every thread"),
    any("rt_sigprocmask", libc::SYS_rt_sigprocmask, "blocking signals on threads"),
    any("rt_sigaction", libc::SYS_rt_sigaction, "signal handlers (Rust runtime, platform interrupts)"),
    any("rt_sigreturn", libc::SYS_rt_sigreturn, "returning from a signal handler"),
    any("restart_syscall", libc::SYS_restart_syscall, "restarting an interrupted sleep"),
    any("tgkill", libc::SYS_tgkill, "interrupting a task's host thread or stub thread; killing stubs"),
    any("kill", libc::SYS_kill, "killing stub processes"),
    any("getpid", libc::SYS_getpid, "the sandbox's own pid"),
    any("gettid", libc::SYS_gettid, "the calling thread's id (ptrace bookkeeping)"),
    any("exit", libc::SYS_exit, "ending a thread"),
    any("exit_group", libc::SYS_exit_group, "ending the sandbox"),
    any("wait4", libc::SYS_wait4, "waiting for stub threads (ptrace stops, exits)"),
    any("waitid", libc::SYS_waitid, "waiting for stub threads"),
    only("ptrace", libc::SYS_ptrace, "running guest code in the stubs (the ptrace platform)",
        one_of!(0; 6 /* POKEUSER */, libc::PTRACE_CONT, libc::PTRACE_GETREGS, libc::PTRACE_SETREGS, libc::PTRACE_GETFPREGS, libc::PTRACE_SETFPREGS,
            libc::PTRACE_DETACH, 31 /* SYSEMU */, 0x4200 /* SETOPTIONS */, 0x4202 /* GETSIGINFO */, 0x4204 /* GETREGSET */, 0x4205 /* SETREGSET */,
            0x4206 /* SEIZE */, 0x4207 /* INTERRUPT */, 0x420b /* SETSIGMASK */, 0x420f /* GET_RSEQ_CONFIGURATION */),
        "POKEUSER, CONT, GETREGS, SETREGS, GETFPREGS, SETFPREGS, DETACH, SYSEMU, SETOPTIONS, GETSIGINFO, GETREGSET, SETREGSET, SEIZE, INTERRUPT, SETSIGMASK, GET_RSEQ_CONFIGURATION (no ATTACH, PEEK/POKE of memory)"),
    only("prctl", libc::SYS_prctl, "thread names",
        one_of!(0; libc::PR_SET_NAME, libc::PR_GET_NAME),
        "PR_SET_NAME, PR_GET_NAME"),
    any("sched_getaffinity", libc::SYS_sched_getaffinity, "the CPUs the sandbox may use"),
    any("sched_setaffinity", libc::SYS_sched_setaffinity, "keeping a stub thread on its tracer's CPU"),
    any("getrandom", libc::SYS_getrandom, "guest getrandom, AT_RANDOM, hash seeds"),
    any("sysinfo", libc::SYS_sysinfo, "memory totals for /proc/meminfo and the OOM monitor"),
    only("prlimit64", libc::SYS_prlimit64, "reading resource limits (glibc's pthread_getattr_np reads the stack limit)",
        &[&[eq(2, 0)]], "reading only (no new limit)"),
    any("getrlimit", libc::SYS_getrlimit, "reading resource limits"),
        any("getuid", libc::SYS_getuid, "the sandbox's own credentials"),
    any("geteuid", libc::SYS_geteuid, "the sandbox's own credentials"),
    any("getgid", libc::SYS_getgid, "the sandbox's own credentials"),
    any("getegid", libc::SYS_getegid, "the sandbox's own credentials"),
    // Stub liveness is read from /proc/PID/stat (the one host path the sandbox opens: its
    // private root holds only a /proc).
    only("openat", libc::SYS_openat, "reading /proc/PID/stat of a stub (its private root holds only /proc)",
        &[&[eq(2, (libc::O_RDONLY | libc::O_CLOEXEC) as u64)]], "O_RDONLY|O_CLOEXEC only"),
    // --network=host: guest IP sockets are host sockets.
    Allowed {
        name: "socket",
        nr: libc::SYS_socket,
        why: "guest IP sockets backed by host sockets",
        rules: &[&[eq(0, libc::AF_INET as u64)], &[eq(0, libc::AF_INET6 as u64)]],
        restriction: "AF_INET and AF_INET6 only",
        when: When::HostNetwork,
    },
    host("bind", libc::SYS_bind, "guest bind on a host socket"),
    host("listen", libc::SYS_listen, "guest listen on a host socket"),
    host("connect", libc::SYS_connect, "guest connect on a host socket"),
    host("setsockopt", libc::SYS_setsockopt, "guest socket options (allow-listed by the sentry)"),
    host("sendmmsg", libc::SYS_sendmmsg, "guest sendmmsg on a host socket"),
    host("recvmmsg", libc::SYS_recvmmsg, "guest recvmmsg on a host socket"),
];

/// Errors building or installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("building the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("installing the seccomp filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// The entries in force for a sandbox (host networking or not).
pub fn entries(host_network: bool) -> impl Iterator<Item = &'static Allowed> {
    ALLOWED
        .iter()
        .filter(move |a| a.when == When::Always || host_network)
}

fn condition(&(arg, cmp, value): &Cond) -> Result<SeccompCondition, seccompiler::BackendError> {
    let op = match cmp {
        Cmp::Eq => SeccompCmpOp::Eq,
        Cmp::MaskedEq(m) => SeccompCmpOp::MaskedEq(m),
    };
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
}

/// Compiles the allow-list; `audit` logs (SECCOMP_RET_LOG) instead of killing, for
/// finding missing entries (`RVISOR_SECCOMP_AUDIT=1`, then `dmesg`).
pub fn allow_list(host_network: bool, audit: bool) -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for a in entries(host_network) {
        let mut alts = Vec::new();
        for conds in a.rules {
            alts.push(SeccompRule::new(
                conds.iter().map(condition).collect::<Result<_, _>>()?,
            )?);
        }
        rules.entry(a.nr).or_default().extend(alts);
    }
    let mismatch = if audit {
        SeccompAction::Log
    } else {
        SeccompAction::KillProcess
    };
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)?;
    Ok(filter.try_into()?)
}

/// The second filter: `clone3` fails with ENOSYS (its flags live in memory, where seccomp
/// cannot look), so glibc falls back to `clone`.
pub fn clone3_enosys() -> Result<BpfProgram, SeccompError> {
    let mut rules = BTreeMap::new();
    rules.insert(libc::SYS_clone3, Vec::new());
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )?;
    Ok(filter.try_into()?)
}

/// Installs both filters on every thread of the process (sets no_new_privs too).
pub fn install(host_network: bool, audit: bool) -> Result<(), SeccompError> {
    let allow = allow_list(host_network, audit)?;
    let clone3 = clone3_enosys()?;
    // The clone3 filter first: once the allow-list is in place, seccomp(2) is not allowed.
    seccompiler::apply_filter_all_threads(&clone3)?;
    seccompiler::apply_filter_all_threads(&allow)?;
    Ok(())
}

/// The table as text for `rvisor help seccomp`.
pub fn render_text() -> String {
    let mut s = String::new();
    s.push_str("Host syscalls the sandbox process (rvisor boot) may make; any other kills it.\n\n");
    for a in ALLOWED {
        let host = if a.when == When::HostNetwork {
            " [--network=host only]"
        } else {
            ""
        };
        s.push_str(&format!("{:>3} {:<18} {}{}\n", a.nr, a.name, a.why, host));
        if !a.restriction.is_empty() {
            s.push_str(&format!("    {:<18} arguments: {}\n", "", a.restriction));
        }
    }
    s.push_str(&format!(
        "\n{} entries; clone3 fails with ENOSYS.\n",
        ALLOWED.len()
    ));
    s
}

/// The table as Markdown: docs/seccomp-sentry.md.
pub fn render_markdown() -> String {
    let mut s = String::new();
    s.push_str("# The sandbox process's seccomp allow-list\n\n");
    s.push_str("Generated from `runsc-cli/src/confine/seccomp.rs` (a unit test keeps this file in sync; \
regenerate with `rvisor help seccomp --markdown > docs/seccomp-sentry.md`). \
The filter is compiled with `seccompiler` and installed on every thread of `rvisor boot` \
before init is created; any syscall not listed kills the sandbox (`SECCOMP_RET_KILL_PROCESS`). \
`clone3` fails with ENOSYS (a second filter), so glibc falls back to `clone`, whose flags are checked. \
The stubs do not inherit this filter: they are forked from the platform's zygote, made (under its own filter) before this one is installed, so the sandbox process itself never forks or maps anything executable. \
`RVISOR_SECCOMP_AUDIT=1` in the environment of `rvisor` logs instead of killing (see `dmesg`).\n\n");
    s.push_str(&format!(
        "Capabilities the sandbox process keeps (all others are dropped from every set, the bounding set included): {} (in its own user namespace); with `--network=host`: {}.\n\n",
        super::caps::kept_list(false),
        super::caps::kept_list(true)
    ));
    s.push_str("| nr | syscall | why | arguments | when |\n|---|---|---|---|---|\n");
    for a in ALLOWED {
        let when = if a.when == When::HostNetwork {
            "`--network=host`"
        } else {
            "always"
        };
        let restr = if a.restriction.is_empty() {
            "any"
        } else {
            a.restriction
        };
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            a.nr,
            a.name,
            a.why,
            restr.replace('|', "\\|"),
            when
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_file_matches_the_table() {
        let doc = include_str!("../../../docs/seccomp-sentry.md");
        assert!(doc == render_markdown(), "docs/seccomp-sentry.md is stale: run `rvisor help seccomp --markdown > docs/seccomp-sentry.md`");
    }

    #[test]
    fn every_entry_is_listed_once_with_a_reason() {
        let mut seen = std::collections::HashSet::new();
        for a in ALLOWED {
            assert!(seen.insert(a.nr), "{} listed twice", a.name);
            assert!(!a.why.is_empty(), "{} has no reason", a.name);
            assert_eq!(
                a.rules.is_empty(),
                a.restriction.is_empty(),
                "{}: rules and their description disagree",
                a.name
            );
        }
    }

    #[test]
    fn both_filters_compile_in_every_mode() {
        for host in [false, true] {
            for audit in [false, true] {
                assert!(!allow_list(host, audit).expect("filter").is_empty());
            }
        }
        assert!(!clone3_enosys().expect("filter").is_empty());
    }

    /// Forks a child that installs the filter and runs `body`; returns its wait status.
    fn run_filtered(body: fn()) -> i32 {
        let prog = allow_list(false, false).expect("filter");
        let clone3 = clone3_enosys().expect("filter");
        // SAFETY: the child only installs the prebuilt filters (prctl, seccomp), runs
        // `body` (raw syscalls, no allocation) and exits with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let ok = seccompiler::apply_filter(&clone3).is_ok()
                && seccompiler::apply_filter(&prog).is_ok();
            if ok {
                body();
            }
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 99 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a live local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    fn map(prot: i32) {
        // SAFETY: a fresh anonymous private mapping, never used.
        unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
    }

    #[test]
    fn the_filter_allows_plain_mappings_and_kills_executable_ones_and_forbidden_calls() {
        let st = run_filtered(|| map(libc::PROT_READ | libc::PROT_WRITE));
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
            "status {st:#x}"
        );
        let st = run_filtered(|| map(libc::PROT_READ | libc::PROT_EXEC));
        assert!(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
            "status {st:#x}"
        );
        // SAFETY: kexec_load with null segments; the filter kills before the kernel looks.
        let st = run_filtered(|| unsafe {
            libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0);
        });
        assert!(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
            "status {st:#x}"
        );
        // Reading /proc (the platform's stub liveness check, as std::fs opens files) works;
        // opening for writing is killed.
        // SAFETY: opens and closes a descriptor of a NUL-terminated path.
        let st = run_filtered(|| unsafe {
            let fd = libc::open(
                c"/proc/self/stat".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            libc::close(fd);
            if fd < 0 {
                libc::_exit(5);
            }
        });
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
            "status {st:#x}"
        );
        // SAFETY: as above.
        let st = run_filtered(|| unsafe {
            libc::open(
                c"/proc/self/comm".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
        });
        assert!(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
            "status {st:#x}"
        );
        // SAFETY: clone3 with a null argument: the second filter answers ENOSYS first.
        let st = run_filtered(|| unsafe {
            if libc::syscall(libc::SYS_clone3, 0, 0) == -1
                && *libc::__errno_location() == libc::ENOSYS
            {
                libc::_exit(7);
            }
        });
        assert!(
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7,
            "status {st:#x}"
        );
    }

    /// The shapes the filter allowed while stubs were forked from the sandbox process (and
    /// inherited its filter): an attacker making arbitrary syscalls in the sentry could have
    /// used them to map code. Now every one kills.
    #[test]
    fn the_filter_kills_every_executable_mapping_and_every_fork() {
        fn exec_shared_fixed_fd3() {
            // SAFETY: killed before the kernel looks; were it allowed, the fixed address is
            // below mmap_min_addr and the call fails.
            unsafe {
                libc::mmap(
                    0x1000 as *mut libc::c_void,
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    3,
                    0,
                )
            };
        }
        fn mprotect_stub_page() {
            // SAFETY: killed before the kernel looks; were it allowed, the page is not
            // mapped in the test process (ENOMEM).
            unsafe {
                libc::mprotect(
                    rvisor_platform::ptrace::STUB_ADDR as *mut libc::c_void,
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                )
            };
        }
        fn fork_like_glibc() {
            let flags = libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD;
            // SAFETY: killed before the kernel looks; were it allowed, the child exits at
            // once.
            unsafe {
                if libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) == 0 {
                    libc::_exit(0);
                }
            }
        }
        fn plain_fork() {
            // SAFETY: as above.
            unsafe {
                if libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) == 0 {
                    libc::_exit(0);
                }
            }
        }
        for (what, body) in [
            ("mmap PROT_EXEC MAP_SHARED|MAP_FIXED fd 3", exec_shared_fixed_fd3 as fn()),
            ("mprotect of the stub page R|X", mprotect_stub_page),
            ("glibc fork", fork_like_glibc),
            ("plain fork", plain_fork),
        ] {
            let st = run_filtered(body);
            assert!(
                libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
                "{what}: status {st:#x}"
            );
        }
    }

    #[test]
    fn dangerous_calls_are_not_allowed() {
        for nr in [
            libc::SYS_execve,
            libc::SYS_mount,
            libc::SYS_kexec_load,
            libc::SYS_init_module,
            libc::SYS_bpf,
            libc::SYS_memfd_create,
            libc::SYS_process_vm_writev,
            libc::SYS_open,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_seccomp,
            libc::SYS_fork,
            libc::SYS_vfork,
        ] {
            assert!(
                entries(true).all(|a| a.nr != nr),
                "syscall {nr} must not be allowed"
            );
        }
    }
}
