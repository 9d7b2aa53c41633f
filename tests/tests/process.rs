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

/// The guest dies of `signal`: natively the process is signalled; rvisor exits with 128+N.
fn dies_of(how: &str, signal: i32) {
    let cmd = Cmd::new(progs::SIGNALS).arg(how);
    let native = run_native(&cmd);
    assert_eq!(
        native.signal(),
        Some(signal),
        "native {how}\n{}",
        native.dump()
    );
    let sandboxed = run_rvisor(&[], &cmd);
    assert_eq!(
        sandboxed.code(),
        Some(128 + signal),
        "{}: rvisor should exit with 128+{signal} when its guest dies of signal {signal}\n{}",
        sandboxed.what,
        sandboxed.dump()
    );
    assert_eq!(
        sandboxed.stdout_str(),
        native.stdout_str(),
        "{}",
        sandboxed.dump()
    );
    assert!(!looks_like_panic(&sandboxed.stderr), "{}", sandboxed.dump());
}

#[test]
fn guest_killed_by_sigkill_gives_exit_status_137() {
    dies_of("kill", libc::SIGKILL);
}

#[test]
fn guest_abort_gives_exit_status_134() {
    dies_of("abort", libc::SIGABRT);
}

#[test]
fn guest_raising_sigterm_gives_exit_status_143() {
    dies_of("term", libc::SIGTERM);
}

#[test]
fn write_to_page_made_read_only_by_mprotect_kills_with_sigsegv() {
    dies_of("segv-after-mprotect", libc::SIGSEGV);
}

#[test]
fn first_guest_process_has_pid_1() {
    let o = run_rvisor(&[], &Cmd::new(progs::GETPID));
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "getpid=1\nSYS_getpid=1\n", "{}", o.dump());
}
