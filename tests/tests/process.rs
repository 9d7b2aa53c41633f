//! Arguments, environment, exit status, death by signal and pids of a guest process.

use rvisor_tests::*;

fn args_cmd(status: &str) -> Cmd {
    Cmd::new(progs::ARGS)
        .args([
            status,
            "plain",
            "with spaces",
            "",
            "quote'\"",
            "ünïcödé",
            "--flag=x",
        ])
        .env("RVISOR_T1", "hello with spaces")
        .env("RVISOR_T2", "")
        .env("RVISOR_T3", "a=b=c")
        .env_remove("RVISOR_UNSET")
}

#[test]
fn argv_and_environment_reach_the_guest_unchanged() {
    let (native, _) = assert_same(&args_cmd("0"));
    assert!(
        native
            .stdout_str()
            .contains("RVISOR_T1=[hello with spaces]\n"),
        "{}",
        native.dump()
    );
    assert!(
        native.stdout_str().contains("argv[4]=[]\n"),
        "{}",
        native.dump()
    );
}

#[test]
fn exit_status_3_is_rvisors_exit_status() {
    let (_, sandboxed) = assert_same(&args_cmd("3"));
    sandboxed.assert_code(3);
}

#[test]
fn exit_status_255_is_rvisors_exit_status() {
    let (_, sandboxed) = assert_same(&args_cmd("255"));
    sandboxed.assert_code(255);
}

/// The sandbox's first process is an init, as in a container: natively the same program
/// runs as the init of a fresh pid namespace (`unshare --pid --fork`), where signals it
/// sends itself with the default action are discarded and only faults kill it. rvisor must
/// print the same and exit with the shell status of that native run (128+N for signal N).
fn behaves_like_a_pid_namespace_init(how: &str, expected_status: i32) {
    let cmd = Cmd::new(progs::SIGNALS).arg(how);
    let native = run_native(&Cmd::new("unshare").args(["--pid", "--fork"]).arg(progs::SIGNALS).arg(how));
    assert_eq!(native.shell_status(), expected_status, "native init {how}\n{}", native.dump());
    let sandboxed = run_rvisor(&[], &cmd);
    assert_eq!(
        sandboxed.code(),
        Some(expected_status),
        "{}: rvisor should exit with {expected_status} like a pid-namespace init\n{}",
        sandboxed.what,
        sandboxed.dump()
    );
    assert_eq!(sandboxed.stdout_str(), native.stdout_str(), "{}", sandboxed.dump());
    assert!(!looks_like_panic(&sandboxed.stderr), "{}", sandboxed.dump());
}

#[test]
fn init_survives_sigkill_it_sends_itself() {
    behaves_like_a_pid_namespace_init("kill", 104);
}

#[test]
fn init_survives_sigterm_it_raises() {
    behaves_like_a_pid_namespace_init("term", 104);
}

#[test]
fn init_abort_ends_in_the_fallback_fault_status_139() {
    // glibc's abort() falls back to a faulting instruction when SIGABRT is discarded.
    behaves_like_a_pid_namespace_init("abort", 128 + libc::SIGSEGV);
}

#[test]
fn write_to_page_made_read_only_by_mprotect_kills_init_with_sigsegv() {
    behaves_like_a_pid_namespace_init("segv-after-mprotect", 128 + libc::SIGSEGV);
}

#[test]
fn first_guest_process_has_pid_1() {
    let o = run_rvisor(&[], &Cmd::new(progs::GETPID));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "getpid=1\nSYS_getpid=1\n", "{}", o.dump());
}

#[test]
fn getrusage_times_and_cpu_clocks_measure_the_guests_cpu_time() {
    assert_same(&Cmd::new(progs::CPUTIME));
}

/// A documented difference: natively `int 0x80` runs the i386 syscall; rvisor refuses it
/// with ENOSYS instead of misreading it as the x86_64 syscall with the same number.
#[test]
fn int_0x80_syscalls_get_enosys_not_the_x86_64_call_of_that_number() {
    let native = run_native(&Cmd::new(progs::INT80));
    assert_eq!(native.stdout_str(), "int 0x80 getpid: the pid\n", "{}", native.dump());
    let o = run_rvisor(&[], &Cmd::new(progs::INT80));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "int 0x80 getpid: ENOSYS\n", "{}", o.dump());
}

/// Old static binaries call time() and gettimeofday() through the legacy vsyscall page;
/// Linux emulates those calls and so does the sentry.
#[test]
fn vsyscall_page_calls_are_emulated_as_linux_does() {
    let (native, _) = assert_same(&Cmd::new(progs::VSYSCALL));
    assert_eq!(native.stdout_str(), "time ok 1 gtod 0 1\n", "{}", native.dump());
}
