//! The seccomp filters of the zygote and the stub processes.
//!
//! The zygote (see `stub.rs`) is forked from the sentry before the sentry's own filter is
//! installed and runs under [`zygote_filter`]; every stub is forked from it, inherits that
//! filter, and stacks [`stub_filter`] on top before it runs guest code (the kernel runs
//! both and takes the strictest answer). The two differ only in what the zygote needs and a
//! stub must never do: fork, and install a filter.
//!
//! Guest code never reaches this filter: every guest `syscall` instruction is stopped by
//! `PTRACE_SYSEMU`, and the kernel runs the ptrace syscall-entry work *before* seccomp and
//! then skips the syscall entirely when SYSEMU is set (`syscall_trace_enter` returns early),
//! so the filter is never consulted for it. The only syscalls that really execute in a stub
//! are the ones the stub blob makes while setting up and the ones the tracer injects (with
//! `PTRACE_CONT`) at the blob's injection site. The filter is defence in depth: should the
//! stub ever run a syscall the tracer did not intend — from anywhere but the stub page, or
//! one the stub never needs — the whole stub process is killed.
//!
//! One guest action does reach it: a call into the legacy vsyscall page, which the kernel
//! emulates as a syscall after consulting seccomp (but not `PTRACE_SYSEMU`). Those calls are
//! trapped (`SECCOMP_RET_TRAP`: nothing runs, the stub gets a SIGSYS the tracer reports).
//!
//! The filter is hand-written classic BPF: seccompiler's rule language can match the
//! syscall number and arguments but not `seccomp_data.instruction_pointer`, and the
//! instruction-pointer check is the point of this filter.

use super::stub::{STUB_ADDR, STUB_FPROG_ADDR, STUB_SIZE};

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// The legacy vsyscall page (entries at +0, +0x400, +0x800).
const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
/// `args[0]`; argument `i`'s low half is at `OFF_ARGS + 8 * i`, its high half 4 bytes on.
const OFF_ARGS: u32 = 16;

/// Syscalls the stub page may make with any arguments:
/// - `munmap`: the zygote's start-up (dropping the copy of the sentry), and injected unmaps;
/// - `mmap`, `mprotect`: injected mappings of the memory file;
/// - `rseq`: the injected unregistration of the restartable-sequences area the zygote
///   inherited from the sentry's thread (that area disappears with the rest of the sentry's
///   memory);
/// - `pause`: where a freshly cloned stub thread or forked stub waits for its tracer;
/// - `exit`: retiring one stub thread (injected by its tracer);
/// - `exit_group`: the blob's failure path.
///
/// `clone` is allowed too, but only as [`STUB_CLONE_FLAGS`] with a stack of 0 (see
/// [`stub_filter`]); the zygote may also fork and install the stub filter
/// ([`zygote_filter`]).
pub const STUB_SYSCALLS: &[i64] = &[
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_rseq,
    libc::SYS_pause,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// The only `clone` the stub may make: a new thread of the stub process (see `master.rs`).
pub const STUB_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

/// The `clone` the zygote makes for a new stub process: a plain fork whose exit the zygote
/// never waits for (it has `SA_NOCLDWAIT`; the new stub's tracer collects its exit).
pub const ZYGOTE_FORK_FLAGS: u64 = libc::SIGCHLD as u64;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// One syscall allowed only with exact 64-bit argument values: `(argument index, value)`.
struct ArgRule {
    nr: i64,
    args: &'static [(u32, u64)],
}

impl ArgRule {
    /// Instructions: load and compare the number, then load and compare each argument's
    /// two halves.
    fn len(&self) -> usize {
        2 + 4 * self.args.len()
    }
}

/// The stub thread clone.
const CLONE_RULE: ArgRule = ArgRule {
    nr: libc::SYS_clone,
    args: &[(0, STUB_CLONE_FLAGS), (1, 0)],
};
/// The zygote's fork of a new stub.
const FORK_RULE: ArgRule = ArgRule {
    nr: libc::SYS_clone,
    args: &[(0, ZYGOTE_FORK_FLAGS), (1, 0)],
};
/// A new stub installing [`stub_filter`] from its copy of the stub page.
const SECCOMP_RULE: ArgRule = ArgRule {
    nr: libc::SYS_seccomp,
    args: &[
        (0, libc::SECCOMP_SET_MODE_FILTER as u64),
        (1, 0),
        (2, STUB_FPROG_ADDR),
    ],
};

/// The filter of every stub process (stacked on the zygote's, which it inherits).
/// Allocates: call it before `fork`.
pub fn stub_filter() -> Vec<libc::sock_filter> {
    build(&[&CLONE_RULE])
}

/// The zygote's filter: the stub's, plus the fork that makes a new stub and the `seccomp`
/// call with which that stub installs [`stub_filter`] on top (from the program the stub page
/// holds at [`STUB_FPROG_ADDR`]). A stub can never fork again: the stacked stub filter kills
/// it. Allocates: call it before `fork`.
pub fn zygote_filter() -> Vec<libc::sock_filter> {
    build(&[&CLONE_RULE, &FORK_RULE, &SECCOMP_RULE])
}

fn build(rules: &[&ArgRule]) -> Vec<libc::sock_filter> {
    const _: () = assert!(STUB_SIZE == 0x1000 && STUB_ADDR & 0xfff == 0);
    // Layout: 13 header instructions, one JEQ per allowed syscall, the argument rules, then
    // KILL, TRAP, ALLOW.
    const HEADER: usize = 13;
    let rules_at = HEADER + STUB_SYSCALLS.len();
    let kill = rules_at + rules.iter().map(|r| r.len()).sum::<usize>();
    let trap = kill + 1;
    let allow = kill + 2;
    // A conditional jump at index `from` to index `target` encodes `target - (from + 1)`.
    // The filters are short enough for every jump to fit (checked by a unit test).
    let to = |from: usize, target: usize| -> u8 { (target - from - 1) as u8 };

    let mut f = Vec::with_capacity(allow + 1);
    // 0: kill if the syscall does not use the x86_64 ABI (i386 `int 0x80`; x32 numbers have
    // bit 30 set and match none of the numbers below).
    f.push(stmt(BPF_LD_W_ABS, OFF_ARCH));
    f.push(jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 0, to(1, kill)));
    // 2: a guest call into the legacy vsyscall page makes the kernel emulate the syscall,
    // and that emulation consults seccomp but not PTRACE_SYSEMU. Trap it (SIGSYS, nothing
    // executed) so that the tracer reports it to the sentry instead of the stub dying.
    f.push(stmt(BPF_LD_W_ABS, OFF_IP_HI));
    f.push(jump(BPF_JEQ_K, (VSYSCALL_ADDR >> 32) as u32, 0, to(3, 8)));
    f.push(stmt(BPF_LD_W_ABS, OFF_IP_LO));
    f.push(jump(BPF_JEQ_K, VSYSCALL_ADDR as u32, to(5, trap), 0));
    f.push(jump(
        BPF_JEQ_K,
        VSYSCALL_ADDR as u32 + 0x400,
        to(6, trap),
        0,
    ));
    f.push(jump(
        BPF_JEQ_K,
        VSYSCALL_ADDR as u32 + 0x800,
        to(7, trap),
        to(7, kill),
    ));
    // 8: kill unless instruction_pointer (the address after the `syscall` instruction) lies
    // in the stub page. The accumulator still holds its upper half.
    f.push(jump(BPF_JEQ_K, (STUB_ADDR >> 32) as u32, 0, to(8, kill)));
    f.push(stmt(BPF_LD_W_ABS, OFF_IP_LO));
    f.push(stmt(BPF_AND_K, !(STUB_SIZE as u32 - 1)));
    f.push(jump(BPF_JEQ_K, STUB_ADDR as u32, 0, to(11, kill)));
    // 12: only the syscalls the stub needs.
    f.push(stmt(BPF_LD_W_ABS, OFF_NR));
    debug_assert_eq!(f.len(), HEADER);
    for (i, nr) in STUB_SYSCALLS.iter().enumerate() {
        let at = HEADER + i;
        f.push(jump(BPF_JEQ_K, *nr as u32, to(at, allow), 0));
    }
    // Each argument rule: the number, then every argument's low and high half; a mismatch
    // goes on to the next rule (the last one's to KILL), a full match allows.
    debug_assert_eq!(f.len(), rules_at);
    for rule in rules {
        let next = f.len() + rule.len();
        f.push(stmt(BPF_LD_W_ABS, OFF_NR));
        let at = f.len();
        f.push(jump(BPF_JEQ_K, rule.nr as u32, 0, to(at, next)));
        let halves: Vec<(u32, u32)> = rule
            .args
            .iter()
            .flat_map(|&(arg, value)| {
                let lo = OFF_ARGS + 8 * arg;
                [(lo, value as u32), (lo + 4, (value >> 32) as u32)]
            })
            .collect();
        for (j, (offset, value)) in halves.iter().enumerate() {
            f.push(stmt(BPF_LD_W_ABS, *offset));
            let at = f.len();
            let pass = if j + 1 == halves.len() {
                to(at, allow)
            } else {
                0
            };
            f.push(jump(BPF_JEQ_K, *value, pass, to(at, next)));
        }
        debug_assert_eq!(f.len(), next);
    }
    debug_assert_eq!(f.len(), kill);
    f.push(stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS));
    f.push(stmt(BPF_RET_K, libc::SECCOMP_RET_TRAP));
    f.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
    f
}

/// Installs `filter` on the calling thread. Async-signal-safe (no allocation): used in the
/// freshly forked zygote. Returns the raw syscall result (0 on success, -1 with errno set).
///
/// # Safety
/// Only sound to call in a process that may be confined for good (the zygote child).
pub unsafe fn install(filter: &[libc::sock_filter]) -> libc::c_long {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return -1;
    }
    // SAFETY: `prog` points to `filter`, which outlives the call; the kernel copies it.
    unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptrace::stub::reserve_stub_page;

    /// Forks a child that installs the filter and runs `body`; returns its wait status.
    fn run_confined(body: fn() -> !) -> i32 {
        let filter = stub_filter();
        // SAFETY: the child only makes raw, async-signal-safe calls (prctl, seccomp, the
        // body's raw syscalls, _exit) and never returns into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: we are the forked child, which may be confined.
            if unsafe { install(&filter) } != 0 {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(100) };
            }
            body();
        }
        let mut status = 0;
        // SAFETY: waitpid writes one int to a live local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    #[test]
    fn filter_kills_syscall_made_outside_the_stub_page() {
        fn body() -> ! {
            // SAFETY: raw syscalls without memory arguments.
            unsafe {
                libc::syscall(libc::SYS_getpid);
                libc::syscall(libc::SYS_exit_group, 0);
            }
            unreachable!()
        }
        let status = run_confined(body);
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }

    #[test]
    fn filter_kills_allowed_syscall_made_outside_the_stub_page() {
        fn body() -> ! {
            // SAFETY: exit_group takes an integer.
            unsafe { libc::syscall(libc::SYS_exit_group, 7) };
            unreachable!()
        }
        let status = run_confined(body);
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }

    /// Code placed in the stub page: `mov eax, NR; mov edi, 42; syscall; ud2`.
    fn stub_page_code(nr: u32) -> Vec<u8> {
        let mut c = vec![0xb8];
        c.extend_from_slice(&nr.to_le_bytes());
        c.extend_from_slice(&[0xbf, 42, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b]);
        c
    }

    fn run_in_stub_page(code: Vec<u8>) -> i32 {
        run_in_stub_page_with(stub_filter(), code)
    }

    fn run_in_stub_page_with(filter: Vec<libc::sock_filter>, code: Vec<u8>) -> i32 {
        reserve_stub_page().expect("reserve stub page");
        // SAFETY: the child only makes raw, async-signal-safe calls and jumps to code it
        // wrote into its own copy of the stub page; it never returns into the harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: the stub page is reserved (mapped PROT_NONE) in this process and
            // unused by anything else; we make it writable, copy, make it executable.
            unsafe {
                let page = STUB_ADDR as *mut libc::c_void;
                if libc::mprotect(page, STUB_SIZE as usize, libc::PROT_READ | libc::PROT_WRITE) != 0
                {
                    libc::_exit(101);
                }
                std::ptr::copy_nonoverlapping(code.as_ptr(), page as *mut u8, code.len());
                if libc::mprotect(page, STUB_SIZE as usize, libc::PROT_READ | libc::PROT_EXEC) != 0
                {
                    libc::_exit(102);
                }
                if install(&filter) != 0 {
                    libc::_exit(100);
                }
                std::arch::asm!("jmp {0}", in(reg) STUB_ADDR, options(noreturn));
            }
        }
        let mut status = 0;
        // SAFETY: waitpid writes one int to a live local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    #[test]
    fn filter_allows_stub_syscalls_from_the_stub_page() {
        let status = run_in_stub_page(stub_page_code(libc::SYS_exit_group as u32));
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 42);
    }

    #[test]
    fn filter_kills_other_syscalls_from_the_stub_page() {
        // getpid(2) is not in the list.
        let status = run_in_stub_page(stub_page_code(libc::SYS_getpid as u32));
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }

    /// Code placed in the stub page: `mov edi, FLAGS; mov esi, STACK; mov eax, SYS_clone;
    /// syscall; ud2` (a successful clone leaves two threads that both hit `ud2`).
    fn clone_code(flags: u32, stack: u32) -> Vec<u8> {
        let mut c = vec![0xbf];
        c.extend_from_slice(&flags.to_le_bytes());
        c.push(0xbe);
        c.extend_from_slice(&stack.to_le_bytes());
        c.push(0xb8);
        c.extend_from_slice(&(libc::SYS_clone as u32).to_le_bytes());
        c.extend_from_slice(&[0x0f, 0x05, 0x0f, 0x0b]);
        c
    }

    #[test]
    fn filter_allows_the_stub_thread_clone_from_the_stub_page() {
        let status = run_in_stub_page(clone_code(STUB_CLONE_FLAGS as u32, 0));
        // The clone ran: its threads died on `ud2`, not on the filter.
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGILL);
    }

    #[test]
    fn filter_kills_clone_with_other_flags_or_a_stack() {
        let other_flags = [
            STUB_CLONE_FLAGS as u32 | libc::CLONE_PTRACE as u32,
            STUB_CLONE_FLAGS as u32 & !(libc::CLONE_THREAD as u32),
            libc::SIGCHLD as u32,
            libc::CLONE_VM as u32 | libc::CLONE_VFORK as u32,
        ];
        for flags in other_flags {
            let status = run_in_stub_page(clone_code(flags, 0));
            assert!(
                libc::WIFSIGNALED(status),
                "flags {flags:#x}: status {status:#x}"
            );
            assert_eq!(libc::WTERMSIG(status), libc::SIGSYS, "flags {flags:#x}");
        }
        let status = run_in_stub_page(clone_code(STUB_CLONE_FLAGS as u32, 0x1000));
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }

    #[test]
    fn filter_kills_the_stub_thread_clone_outside_the_stub_page() {
        fn body() -> ! {
            // SAFETY: the filter kills the process before the clone happens; were it to
            // happen, both threads would only call exit_group.
            unsafe {
                libc::syscall(libc::SYS_clone, STUB_CLONE_FLAGS, 0usize);
                libc::syscall(libc::SYS_exit_group, 0);
            }
            unreachable!()
        }
        let status = run_confined(body);
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }

    #[test]
    fn filter_jumps_stay_in_bounds() {
        for f in [stub_filter(), zygote_filter()] {
            // Every jump offset fits the 8 bits of `jt`/`jf` (`build` casts them).
            assert!(f.len() < 256);
            for (i, ins) in f.iter().enumerate() {
                if ins.code == BPF_JEQ_K {
                    assert!(i + 1 + (ins.jt as usize) < f.len());
                    assert!(i + 1 + (ins.jf as usize) < f.len());
                }
            }
            assert_eq!(f[f.len() - 3].k, libc::SECCOMP_RET_KILL_PROCESS);
            assert_eq!(f[f.len() - 2].k, libc::SECCOMP_RET_TRAP);
            assert_eq!(f[f.len() - 1].k, libc::SECCOMP_RET_ALLOW);
        }
    }

    /// Code placed in the stub page: fork (`clone(SIGCHLD, 0)`), then `exit_group(42)` in
    /// both processes.
    fn fork_code() -> Vec<u8> {
        let mut c = clone_code(ZYGOTE_FORK_FLAGS as u32, 0);
        c.truncate(c.len() - 2); // drop the ud2
        c.extend_from_slice(&stub_page_code(libc::SYS_exit_group as u32));
        c
    }

    #[test]
    fn zygote_filter_allows_its_fork_from_the_stub_page_but_the_stub_filter_does_not() {
        let status = run_in_stub_page_with(zygote_filter(), fork_code());
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 42);
        let status = run_in_stub_page_with(stub_filter(), fork_code());
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }

    #[test]
    fn zygote_filter_kills_other_clones_and_seccomp_arguments() {
        for flags in [
            libc::SIGCHLD as u32 | libc::CLONE_VM as u32,
            libc::SIGCHLD as u32 | libc::CLONE_PTRACE as u32,
            0,
        ] {
            let status = run_in_stub_page_with(zygote_filter(), clone_code(flags, 0));
            assert!(libc::WIFSIGNALED(status), "flags {flags:#x}: status {status:#x}");
            assert_eq!(libc::WTERMSIG(status), libc::SIGSYS, "flags {flags:#x}");
        }
        // seccomp(SECCOMP_SET_MODE_FILTER, 0, <not the stub page's program>).
        let mut c = vec![0xbf, 1, 0, 0, 0]; // mov edi, 1
        c.extend_from_slice(&[0x31, 0xf6]); // xor esi, esi
        c.extend_from_slice(&[0xba, 0, 0x10, 0, 0]); // mov edx, 0x1000
        c.push(0xb8);
        c.extend_from_slice(&(libc::SYS_seccomp as u32).to_le_bytes());
        c.extend_from_slice(&[0x0f, 0x05, 0x0f, 0x0b]);
        let status = run_in_stub_page_with(zygote_filter(), c);
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
    }
}
