//! Harness of rvisor's integration tests.
//!
//! A test describes a command once ([`Cmd`]) and runs it natively ([`run_native`]) and in a
//! sandbox (`rvisor [GLOBAL FLAGS] do CMD`, [`run_rvisor`]); [`assert_same`] compares stdout
//! and exit status and prints a readable diff when they differ. Every run has a timeout
//! (60 s, or `RVISOR_TEST_TIMEOUT` seconds): a run that does not finish is killed with its
//! whole process group and the test fails.
//!
//! Programs that are pid 1 in the sandbox are compared with a native run as the init of a
//! pid namespace ([`assert_same_as_init`]). [`Interactive`] drives a run step by step (wait
//! for output, write stdin) and [`process_tree`] / [`wait_all_gone`] look at the host's
//! processes, e.g. to check that a sandbox leaves none behind.
//!
//! The rvisor binary is `$RVISOR_BIN`, else `target/release/rvisor`, else `target/debug/rvisor`
//! of this workspace; build it first with `cargo build --release` (`./test.sh` does).
//! The C programs in `tests/c/` are built by `build.rs`; their paths are in [`progs`].

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

mod files_util;
mod host;
mod interactive;
/// OCI bundles with a busybox root, for the OCI CLI and containerd tests.
pub mod oci;
/// Network namespaces with veth pairs, bundles that name them, background servers.
pub mod net;

pub use host::{
    describe as describe_processes, host_processes, process_tree, processes_with_env,
    wait_all_gone, HostProcess,
};
pub use files_util::{contains_word, log_lines, TempDir};
pub use interactive::Interactive;

/// Paths of the static C test programs built from `tests/c/*.c` by `build.rs`.
pub mod progs {
    /// `c/syscalls.c`: file, directory, memory and time syscalls; `syscalls [io|fs|mm|time]`.
    pub const SYSCALLS: &str = env!("RVISOR_TEST_PROG_SYSCALLS");
    /// `c/args.c`: prints argv and some environment variables, exits with `argv[1]`.
    pub const ARGS: &str = env!("RVISOR_TEST_PROG_ARGS");
    /// `c/signals.c`: dies of a signal; `signals kill|abort|term|segv-after-mprotect`.
    pub const SIGNALS: &str = env!("RVISOR_TEST_PROG_SIGNALS");
    /// `c/getpid.c`: prints getpid().
    pub const GETPID: &str = env!("RVISOR_TEST_PROG_GETPID");
    /// `c/unimplemented.c`: calls syscall `argv[1]` twice and prints the errno names.
    pub const UNIMPLEMENTED: &str = env!("RVISOR_TEST_PROG_UNIMPLEMENTED");

    // The programs below print yes/no facts and exit with their number of failed checks;
    // `PROG SECTION` runs one section (see each file's header). In the sandbox they are its
    // first process, pid 1, so natively they run as the init of a pid namespace too
    // (`run_native_as_init`, `assert_section_same_as_init`).

    /// `c/cow_fork.c`: fork and private/shared memory (copy-on-write).
    pub const COW_FORK: &str = env!("RVISOR_TEST_PROG_COW_FORK");
    /// `c/exec_thread.c`: execve from a non-main thread of a multi-threaded process.
    pub const EXEC_THREAD: &str = env!("RVISOR_TEST_PROG_EXEC_THREAD");
    /// `c/vfork_exec.c`: vfork + exec/_exit, posix_spawn.
    pub const VFORK_EXEC: &str = env!("RVISOR_TEST_PROG_VFORK_EXEC");
    /// `c/exit_signal.c`: a custom exit signal becomes SIGCHLD once the parent exec'd.
    pub const EXIT_SIGNAL: &str = env!("RVISOR_TEST_PROG_EXIT_SIGNAL");
    /// `c/reparent.c`: zombies, orphans reparented to init (pid 1) and reaped by it.
    pub const REPARENT: &str = env!("RVISOR_TEST_PROG_REPARENT");
    /// `c/runaway.c`: a tree of processes that never end; prints "ready", waits for stdin.
    pub const RUNAWAY: &str = env!("RVISOR_TEST_PROG_RUNAWAY");
    /// `c/threads_sync.c`: 8 threads on pthread mutexes, condition variables, barriers.
    pub const THREADS_SYNC: &str = env!("RVISOR_TEST_PROG_THREADS_SYNC");
    /// `c/futex.c`: raw futex(2): timeouts, EAGAIN, wake counts, shared futexes.
    pub const FUTEX: &str = env!("RVISOR_TEST_PROG_FUTEX");
    /// `c/sigframe.c`: handlers on an alternate stack; SIGSEGV/SIGBUS handlers that repair.
    pub const SIGFRAME: &str = env!("RVISOR_TEST_PROG_SIGFRAME");
    /// `c/sigchld.c`: SIGCHLD and waitid (CLD_* codes, WNOWAIT, WNOHANG, SA_NOCLDSTOP).
    pub const SIGCHLD: &str = env!("RVISOR_TEST_PROG_SIGCHLD");
    /// `c/sigwait.c`: SA_RESTART vs EINTR, sigsuspend, rt_sigtimedwait.
    pub const SIGWAIT: &str = env!("RVISOR_TEST_PROG_SIGWAIT");
    /// `c/pipes.c`: pipe2 flags, PIPE_BUF atomicity, EPIPE/SIGPIPE, pipe size, poll/select.
    pub const PIPES: &str = env!("RVISOR_TEST_PROG_PIPES");
    /// `c/cputime.c`: getrusage/times/CPU-time clocks measure the guest's CPU time.
    pub const CPUTIME: &str = env!("RVISOR_TEST_PROG_CPUTIME");
    /// `c/itimer_cpu.c`: ITIMER_PROF and ITIMER_VIRTUAL fire while the process spins.
    pub const ITIMER_CPU: &str = env!("RVISOR_TEST_PROG_ITIMER_CPU");
    /// `c/epoll.c`: epoll (LT, ET, ONESHOT, nesting, pwait masks) and eventfd.
    pub const EPOLL: &str = env!("RVISOR_TEST_PROG_EPOLL");
    /// `c/socketpair.c`: AF_UNIX socketpair stream/dgram/seqpacket semantics.
    pub const SOCKETPAIR: &str = env!("RVISOR_TEST_PROG_SOCKETPAIR");
    /// `c/fuzz.c`: a seeded random syscall driver (run only in rvisor).
    pub const FUZZ: &str = env!("RVISOR_TEST_PROG_FUZZ");
    /// `c/mincore_huge.c`: mincore over a 64 GiB reserved mapping and across a hole.
    pub const MINCORE_HUGE: &str = env!("RVISOR_TEST_PROG_MINCORE_HUGE");
    /// `c/int80.c`: a 32-bit `int 0x80` syscall from a 64-bit program.
    pub const INT80: &str = env!("RVISOR_TEST_PROG_INT80");
    /// `c/vsyscall.c`: time() and gettimeofday() through the legacy vsyscall page.
    pub const VSYSCALL: &str = env!("RVISOR_TEST_PROG_VSYSCALL");
    /// `c/subreaper.c`: PR_SET_CHILD_SUBREAPER and PR_SET_PDEATHSIG.
    pub const SUBREAPER: &str = env!("RVISOR_TEST_PROG_SUBREAPER");
    /// `c/sighandler.c` (signal frames: SA_SIGINFO, altstack, SA_NODEFER, SA_RESETHAND), if
    /// that file is present: a test that needs it fails, saying so, when it is not.
    pub const SIGHANDLER: Option<&str> = option_env!("RVISOR_TEST_PROG_SIGHANDLER");
}

/// Files the tests read (scripts run by the guest), under `tests/`.
pub mod files {
    /// `py/acceptance.py`: threads, subprocess, multiprocessing, signals and fork in Python.
    pub const PY_ACCEPTANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/py/acceptance.py");
}

/// The busybox the tests run (Debian package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The kernel release rvisor reports by default (`rvisor::DEFAULT_KERNEL_RELEASE`).
pub const DEFAULT_KERNEL_RELEASE: &str = "6.6.0-rvisor";

/// How long one run may take before it is killed and the test fails.
pub fn timeout() -> Duration {
    static T: OnceLock<Duration> = OnceLock::new();
    *T.get_or_init(|| {
        let secs = std::env::var("RVISOR_TEST_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(60);
        Duration::from_secs(secs)
    })
}

/// A command to run natively and in the sandbox: program, arguments, extra environment,
/// standard input. Everything else (the rest of the environment, cwd `/`) is the same for both.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub env_remove: Vec<OsString>,
    pub stdin: Vec<u8>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: Vec::new(),
        }
    }

    /// `busybox APPLET ARGS...` with [`BUSYBOX`]; fails the test if busybox is not installed.
    pub fn busybox(applet_and_args: &[&str]) -> Self {
        require_busybox();
        Cmd::new(BUSYBOX).args(applet_and_args)
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(key.as_ref().to_owned());
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = data.into();
        self
    }

    /// The command as a shell would show it.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn apply_env(&self, c: &mut Command) {
        for k in &self.env_remove {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }
}

pub(crate) fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    /// How the run was started (for messages).
    pub what: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
    pub elapsed: Duration,
}

impl Outcome {
    /// The exit code, if the process exited (rather than died of a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal the process died of, if it did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// The status as a shell reports it in `$?`: the exit code, or 128+N for signal N.
    /// rvisor itself exits with this value for its guest.
    pub fn shell_status(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => unreachable!("a finished process either exited or was signalled"),
        }
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Fails the test unless the run exited with `code`, showing its output.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        if self.code() != Some(code) {
            panic!(
                "{} exited with {}, expected exit code {code}\n{}",
                self.what,
                describe_status(self),
                self.dump()
            );
        }
        self
    }

    /// stdout and stderr, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- stdout ({} bytes):\n{}\n--- stderr ({} bytes):\n{}\n---",
            self.stdout.len(),
            truncate(&self.stdout_str(), 8000),
            self.stderr.len(),
            truncate(&self.stderr_str(), 8000)
        )
    }
}

pub(crate) fn describe_status(o: &Outcome) -> String {
    match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s} (shell status {})", 128 + s),
        _ => format!("{:?}", o.status),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[... {} more bytes]", &s[..end], s.len() - end)
}

/// Runs `cmd` natively (cwd `/`). Fails the test if it cannot be started or times out.
#[track_caller]
pub fn run_native(cmd: &Cmd) -> Outcome {
    try_run_native(cmd).unwrap_or_else(|e| panic!("cannot run `{}` natively: {e}", cmd.display()))
}

/// Runs `cmd` natively; the error is the one from starting it (e.g. ENOEXEC from execve).
pub fn try_run_native(cmd: &Cmd) -> std::io::Result<Outcome> {
    let mut c = Command::new(&cmd.program);
    c.args(&cmd.args);
    cmd.apply_env(&mut c);
    run_command(
        c,
        &cmd.stdin,
        format!("native `{}`", cmd.display()),
        timeout(),
    )
}

/// Runs `rvisor GLOBAL_FLAGS... do CMD` (cwd `/`).
#[track_caller]
pub fn run_rvisor(global_flags: &[&str], cmd: &Cmd) -> Outcome {
    run_rvisor_do(global_flags, &[], cmd)
}

/// Runs `rvisor GLOBAL_FLAGS... do DO_FLAGS... CMD` (cwd `/`).
#[track_caller]
pub fn run_rvisor_do(global_flags: &[&str], do_flags: &[&str], cmd: &Cmd) -> Outcome {
    let mut c = Command::new(rvisor_bin());
    c.args(global_flags)
        .arg("do")
        .args(do_flags)
        .arg(&cmd.program)
        .args(&cmd.args);
    cmd.apply_env(&mut c);
    let what = format!(
        "`rvisor {}do {}{}`",
        global_flags
            .iter()
            .map(|f| format!("{} ", shell_quote(f.as_ref())))
            .collect::<String>(),
        do_flags
            .iter()
            .map(|f| format!("{} ", shell_quote(f.as_ref())))
            .collect::<String>(),
        cmd.display()
    );
    run_command(c, &cmd.stdin, what, timeout())
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", rvisor_bin().display()))
}

/// Runs `rvisor ARGS...` as given (for `--version`, `help`, bad command lines).
#[track_caller]
pub fn run_rvisor_cli<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    let mut c = Command::new(rvisor_bin());
    c.args(args);
    let what = format!(
        "`rvisor {}`",
        args.iter()
            .map(|a| shell_quote(a.as_ref()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    run_command(c, &[], what, timeout())
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", rvisor_bin().display()))
}

/// How stdout is compared by [`assert_same_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Byte for byte.
    Bytes,
    /// The same lines, in any order (e.g. `find`, whose order is the directory's).
    LinesAnyOrder,
}

/// Runs `cmd` natively and in `rvisor do` and fails the test, with a diff, unless stdout is
/// byte-identical and the exit status is the same. Returns both outcomes (native, rvisor).
#[track_caller]
pub fn assert_same(cmd: &Cmd) -> (Outcome, Outcome) {
    assert_same_with(cmd, Compare::Bytes)
}

/// Like [`assert_same`], comparing stdout as `how` says.
#[track_caller]
pub fn assert_same_with(cmd: &Cmd, how: Compare) -> (Outcome, Outcome) {
    let native = run_native(cmd);
    let sandboxed = run_rvisor(&[], cmd);
    if let Some(report) = compare(&native, &sandboxed, how) {
        panic!(
            "rvisor and native differ for `{}`:\n{report}",
            cmd.display()
        );
    }
    (native, sandboxed)
}

/// `cmd` as the init (pid 1) of a fresh pid namespace: `unshare --pid --fork CMD...`, with
/// the same environment and stdin. The sandbox's first process is such an init (pid 1,
/// orphans reparented to it, signals with the default action it sends itself discarded);
/// this is the native run to compare it with.
pub fn as_init(cmd: &Cmd) -> Cmd {
    let mut init = cmd.clone();
    init.program = "unshare".into();
    init.args = ["--pid", "--fork"].iter().map(OsString::from).collect();
    init.args.push(cmd.program.clone());
    init.args.extend(cmd.args.iter().cloned());
    init
}

/// Runs `cmd` natively as a pid-namespace init (see [`as_init`]).
#[track_caller]
pub fn run_native_as_init(cmd: &Cmd) -> Outcome {
    run_native(&as_init(cmd))
}

/// Like [`assert_same`], with the native run as a pid-namespace init ([`as_init`]): the
/// comparison for programs that are pid 1 in the sandbox.
#[track_caller]
pub fn assert_same_as_init(cmd: &Cmd) -> (Outcome, Outcome) {
    let native = run_native_as_init(cmd);
    let sandboxed = run_rvisor(&[], cmd);
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!(
            "rvisor and native (as pid 1 under `unshare --pid --fork`) differ for `{}`:\n{report}",
            cmd.display()
        );
    }
    (native, sandboxed)
}

/// Runs section `section` of the check program `prog` (one of the [`progs`] that print
/// "== SECTION" and yes/no facts, and exit with their number of failed checks): natively as
/// pid 1, where it must pass, then in rvisor, which must print and exit the same.
#[track_caller]
pub fn assert_section_same_as_init(prog: &str, section: &str) -> (Outcome, Outcome) {
    let cmd = Cmd::new(prog).arg(section);
    let native = run_native_as_init(&cmd);
    if native.code() != Some(0) || !native.stdout_str().starts_with(&format!("== {section}\n")) {
        panic!(
            "the test program itself fails natively (as pid 1): {} should print \"== {section}\" and exit 0; \
             got {}\n{}",
            native.what,
            describe_status(&native),
            native.dump()
        );
    }
    let sandboxed = run_rvisor(&[], &cmd);
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!(
            "rvisor and native (as pid 1 under `unshare --pid --fork`) differ for `{}`:\n{report}",
            cmd.display()
        );
    }
    (native, sandboxed)
}

/// The PATH the tests give programs that look up others by name (shells, python's
/// subprocess): the system's folders only, so that both runs find the same programs
/// whatever the caller's PATH holds (e.g. version-manager shims).
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Fails the test, saying how to fix it, unless `path` is an installed program
/// (`package` is the Debian package that provides it; ./test.sh installs it).
#[track_caller]
pub fn require_program(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: install the Debian package {package} (./test.sh does)"
    );
}

/// Describes how `sandboxed` differs from `native`, or `None` if they agree. rvisor reports
/// a guest killed by signal N as exit code 128+N, so statuses are compared as a shell sees them.
pub fn compare(native: &Outcome, sandboxed: &Outcome, how: Compare) -> Option<String> {
    let mut report = String::new();
    if sandboxed.status.signal().is_some() {
        report += &format!(
            "rvisor itself died of signal {} (it should exit with 128+N for its guest)\n",
            sandboxed.status.signal().unwrap()
        );
    } else if native.shell_status() != sandboxed.shell_status() {
        report += &format!(
            "exit status: native {} ({}), rvisor {}\n",
            native.shell_status(),
            describe_status(native),
            sandboxed.shell_status()
        );
    }
    let (a, b) = match how {
        Compare::Bytes => (native.stdout_str(), sandboxed.stdout_str()),
        Compare::LinesAnyOrder => (
            sorted_lines(&native.stdout),
            sorted_lines(&sandboxed.stdout),
        ),
    };
    let stdout_differs = match how {
        Compare::Bytes => native.stdout != sandboxed.stdout,
        Compare::LinesAnyOrder => a != b,
    };
    if stdout_differs {
        report += &format!(
            "stdout differs{} (- native, + rvisor):\n{}",
            if how == Compare::LinesAnyOrder {
                " as sorted lines"
            } else {
                ""
            },
            line_diff(&a, &b)
        );
    }
    if report.is_empty() {
        return None;
    }
    if looks_like_panic(&sandboxed.stderr) {
        report += "rvisor PANICKED\n";
    }
    report += &format!(
        "--- rvisor stderr:\n{}\n--- native stderr:\n{}\n---",
        truncate(&sandboxed.stderr_str(), 8000),
        truncate(&native.stderr_str(), 2000)
    );
    Some(report)
}

fn sorted_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A line diff of `a` (-) and `b` (+), unchanged lines prefixed with two spaces. Invisible
/// differences (a missing final newline, trailing spaces) are made visible.
pub fn line_diff(a: &str, b: &str) -> String {
    let la: Vec<&str> = a.split_inclusive('\n').collect();
    let lb: Vec<&str> = b.split_inclusive('\n').collect();
    const MAX: usize = 2000;
    if la.len() > MAX || lb.len() > MAX {
        let first = la
            .iter()
            .zip(&lb)
            .position(|(x, y)| x != y)
            .unwrap_or(la.len().min(lb.len()));
        return format!(
            "(long outputs: {} vs {} lines; first difference at line {})\n- {}\n+ {}\n",
            la.len(),
            lb.len(),
            first + 1,
            la.get(first).map_or("<end>".into(), |l| show_line(l)),
            lb.get(first).map_or("<end>".into(), |l| show_line(l)),
        );
    }
    // Longest common subsequence, then walk it.
    let (n, m) = (la.len(), lb.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if la[i] == lb[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && la[i] == lb[j] {
            out += &format!("  {}\n", show_line(la[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] > lcs[i + 1][j]) {
            out += &format!("+ {}\n", show_line(lb[j]));
            j += 1;
        } else {
            out += &format!("- {}\n", show_line(la[i]));
            i += 1;
        }
    }
    if n == 0 && m == 0 {
        out += "(both empty)\n";
    }
    out
}

fn show_line(l: &str) -> String {
    match l.strip_suffix('\n') {
        Some(body) if body.ends_with([' ', '\t', '\r']) => format!("{body:?}"),
        Some(body) => body.to_string(),
        None => format!("{l}⏎ (no newline at end)"),
    }
}

/// Whether stderr shows a Rust panic.
pub fn looks_like_panic(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("panicked at")
}

/// Fails the test unless `o` is a clean rvisor error: non-zero exit, exactly one stderr line,
/// starting with `rvisor: `, no panic.
#[track_caller]
pub fn assert_clean_error(o: &Outcome) {
    let stderr = o.stderr_str();
    let lines: Vec<&str> = stderr.lines().collect();
    let ok = o.code().is_some_and(|c| c != 0)
        && lines.len() == 1
        && lines[0].starts_with("rvisor: ")
        && !looks_like_panic(&o.stderr);
    if !ok {
        panic!(
            "{} should fail with one stderr line starting with \"rvisor: \" and a non-zero exit code; \
             got {}{}\n{}",
            o.what,
            describe_status(o),
            if looks_like_panic(&o.stderr) { " and a PANIC" } else { "" },
            o.dump()
        );
    }
}

fn run_command(
    mut c: Command,
    stdin: &[u8],
    what: String,
    limit: Duration,
) -> std::io::Result<Outcome> {
    c.current_dir("/")
        .stdin(if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills everything it started.
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls getrlimit and
    // setrlimit, which are async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        c.pre_exec(|| {
            // No core dumps from programs that die of SIGABRT/SIGSEGV on purpose.
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_CORE, &mut rl) == 0 {
                rl.rlim_cur = 0;
                libc::setrlimit(libc::RLIMIT_CORE, &rl);
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = c.spawn()?;
    let pid = child.id() as libc::pid_t;

    if let Some(mut input) = child.stdin.take() {
        let data = stdin.to_vec();
        thread::spawn(move || {
            // The guest may exit without reading everything: EPIPE is fine.
            let _ = input.write_all(&data);
        });
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let stdout = collect(child.stdout.take().unwrap(), done_tx.clone());
    let stderr = collect(child.stderr.take().unwrap(), done_tx);

    let (status_tx, status_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = status_tx.send(child.wait());
    });
    let status = match status_rx.recv_timeout(limit) {
        Ok(status) => status?,
        Err(_) => {
            kill_group(pid);
            let _ = status_rx.recv_timeout(Duration::from_secs(10));
            panic!(
                "{what} did not finish within {limit:?} (RVISOR_TEST_TIMEOUT); killed its process group\n\
                 --- stdout so far:\n{}\n--- stderr so far:\n{}\n---",
                truncate(&String::from_utf8_lossy(&stdout.lock().unwrap()), 8000),
                truncate(&String::from_utf8_lossy(&stderr.lock().unwrap()), 8000)
            );
        }
    };
    let elapsed = start.elapsed();
    // stdout and stderr close when the last process holding them exits. Something the
    // command started that outlives it (and keeps them open) is a bug: report it.
    for _ in 0..2 {
        if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            kill_group(pid);
            panic!(
                "{what} exited ({status:?}) but its stdout/stderr were still open 10 s later: \
                 a process it started outlived it (its process group was killed)"
            );
        }
    }
    let stdout = std::mem::take(&mut *stdout.lock().unwrap());
    let stderr = std::mem::take(&mut *stderr.lock().unwrap());
    Ok(Outcome {
        what,
        stdout,
        stderr,
        status,
        elapsed,
    })
}

fn collect(mut pipe: impl Read + Send + 'static, done: mpsc::Sender<()>) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        let _ = done.send(());
    });
    buf
}

pub(crate) fn kill_group(pid: libc::pid_t) {
    // SAFETY: plain kill(2) calls with a process group id and a pid we started and have not
    // yet reaped (the waiter thread still owns the Child), so the ids are not reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// The errno of a plain `execve(path, [path], [])` natively, or `None` if it succeeded (the
/// program then ran). Unlike `Command`, whose exec falls back to `/bin/sh` on ENOEXEC the way
/// `execvp` does, this shows what the kernel itself says about the file.
pub fn native_execve_errno(path: &Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let argv = [c_path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: after fork the child calls only execve and _exit (async-signal-safe) with
    // pointers prepared before the fork, which stay valid in the child's copy of memory.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: see above; `argv` and `envp` are NULL-terminated arrays of C strings.
        unsafe {
            libc::execve(c_path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(*libc::__errno_location());
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a live i32.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid failed");
    let errno = libc::WEXITSTATUS(status);
    (libc::WIFEXITED(status) && errno != 0).then_some(errno)
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        dirs.push(if d.is_absolute() {
            d
        } else {
            workspace_root().join(d)
        });
    }
    // A test binary is <target>/<profile>/deps/<name>-<hash>.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(target) = exe
            .parent()
            .filter(|d| d.ends_with("deps"))
            .and_then(Path::parent)
            .and_then(Path::parent)
        {
            dirs.push(target.to_path_buf());
        }
    }
    dirs.push(workspace_root().join("target"));
    dirs.dedup();
    dirs
}

/// The rvisor binary under test: `$RVISOR_BIN`, else the workspace's `target/release/rvisor`,
/// else `target/debug/rvisor`. Fails the test with what to do if there is none.
pub fn rvisor_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("RVISOR_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "RVISOR_BIN={} is not a file", p.display());
            return p;
        }
        let candidates: Vec<PathBuf> = ["release", "debug"]
            .iter()
            .flat_map(|profile| {
                target_dirs()
                    .into_iter()
                    .map(move |t| t.join(profile).join("rvisor"))
            })
            .collect();
        let found = candidates.iter().find(|c| c.is_file()).unwrap_or_else(|| {
            panic!(
                "the rvisor binary was not found (looked for {}).\n\
                 Build it first: `cargo build --release` in {} (./test.sh does), \
                 or set RVISOR_BIN=/path/to/rvisor.",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                workspace_root().display()
            )
        });
        warn_if_stale(found);
        found.clone()
    })
}

/// `cargo test` does not rebuild the rvisor binary; say so when sources are newer than it.
fn warn_if_stale(bin: &Path) {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return;
    };
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for krate in ["syscalls", "platform", "sentry", "gofer", "runsc-cli"] {
        newest_source(&workspace_root().join(krate), &mut newest);
    }
    if let Some((when, path)) = newest {
        if when > built {
            eprintln!(
                "warning: {} is older than {}; run `cargo build --release` to test the current code",
                bin.display(),
                path.display()
            );
        }
    }
}

fn newest_source(dir: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            newest_source(&path, newest);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
            if let Ok(t) = meta.modified() {
                if !matches!(newest, Some((n, _)) if *n >= t) {
                    *newest = Some((t, path));
                }
            }
        }
    }
}

/// Fails the test, saying how to fix it, if `/bin/busybox` is missing.
#[track_caller]
pub fn require_busybox() {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install the Debian package busybox-static (./test.sh does)"
    );
}

/// The host's kernel release (`uname -r`).
pub fn host_kernel_release() -> String {
    // SAFETY: utsname is plain old data for which all-zero bytes are valid; uname(2) fills it
    // with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a live, exclusively borrowed utsname.
    assert_eq!(unsafe { libc::uname(&mut u) }, 0, "uname failed");
    // SAFETY: the kernel NUL-terminates `release` within the array.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_marks_changed_lines_only() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "  a\n- b\n+ B\n  c\n");
    }

    #[test]
    fn line_diff_shows_a_missing_final_newline() {
        let d = line_diff("x\n", "x");
        assert!(d.contains("- x\n") && d.contains("no newline"), "{d}");
    }

    #[test]
    fn contains_word_ignores_longer_names() {
        assert!(contains_word(
            "unimplemented syscall io_setup (206)",
            "io_setup"
        ));
        assert!(contains_word("name=io_setup", "io_setup"));
        assert!(!contains_word(
            "unimplemented syscall io_setupx",
            "io_setup"
        ));
        assert!(!contains_word("sys_io_setup", "io_setup"));
    }

    #[test]
    fn shell_status_of_a_signalled_process_is_128_plus_n() {
        let o = Outcome {
            what: String::new(),
            stdout: vec![],
            stderr: vec![],
            status: ExitStatus::from_raw(libc::SIGKILL),
            elapsed: Duration::ZERO,
        };
        assert_eq!(o.signal(), Some(9));
        assert_eq!(o.shell_status(), 137);
    }

    #[test]
    fn compare_reports_status_and_output_differences() {
        let mk = |out: &str, raw: i32| Outcome {
            what: String::new(),
            stdout: out.as_bytes().to_vec(),
            stderr: vec![],
            status: ExitStatus::from_raw(raw),
            elapsed: Duration::ZERO,
        };
        assert!(compare(&mk("a\n", 0), &mk("a\n", 0), Compare::Bytes).is_none());
        // Exit code 3 is raw wait status 3 << 8.
        let r = compare(&mk("a\n", 3 << 8), &mk("b\n", 0), Compare::Bytes).unwrap();
        assert!(
            r.contains("exit status: native 3") && r.contains("- a") && r.contains("+ b"),
            "{r}"
        );
        // A guest killed by SIGKILL natively matches rvisor exiting with 137.
        assert!(compare(&mk("", libc::SIGKILL), &mk("", 137 << 8), Compare::Bytes).is_none());
        assert!(compare(&mk("x\ny\n", 0), &mk("y\nx\n", 0), Compare::LinesAnyOrder).is_none());
        assert!(compare(&mk("x\ny\n", 0), &mk("y\nx\n", 0), Compare::Bytes).is_some());
    }

    #[test]
    fn a_run_that_outlives_the_timeout_is_killed_and_fails() {
        // The harness's own timeout path, on a native command that never ends by itself.
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "exec sleep 1000"]);
        let start = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_command(c, &[], "sleep".into(), Duration::from_secs(1))
        }));
        assert!(
            r.is_err(),
            "a command running past the timeout must fail the test"
        );
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}
