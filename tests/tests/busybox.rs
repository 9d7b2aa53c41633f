//! busybox (Debian's busybox-static) in rvisor: the same output and exit status as natively,
//! and rvisor's own kernel release in `uname`.

use rvisor_tests::*;

/// The fields of `uname -a`: "Linux <nodename> <release> <version...> <machine> GNU/Linux".
fn uname_release(outcome: &Outcome) -> String {
    let out = outcome.stdout_str();
    let line = out.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("Linux "),
        "{}: expected a line starting \"Linux \"\n{}",
        outcome.what,
        outcome.dump()
    );
    line.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn uname_reports_rvisor_kernel_release_not_the_hosts() {
    let o = run_rvisor(&[], &Cmd::busybox(&["uname", "-a"]));
    o.assert_code(0);
    assert_eq!(o.stdout_str().lines().count(), 1, "{}", o.dump());
    let release = uname_release(&o);
    assert_eq!(
        release,
        DEFAULT_KERNEL_RELEASE,
        "uname -a release field in rvisor\n{}",
        o.dump()
    );
    assert_ne!(
        release,
        host_kernel_release(),
        "rvisor must not show the host's kernel release"
    );
}

#[test]
fn uname_release_follows_the_kernel_release_flag() {
    let o = run_rvisor(
        &["--kernel-release", "9.9.9-test"],
        &Cmd::busybox(&["uname", "-a"]),
    );
    o.assert_code(0);
    assert_eq!(uname_release(&o), "9.9.9-test", "{}", o.dump());

    let o = run_rvisor(
        &["--kernel-release", "9.9.9-test"],
        &Cmd::busybox(&["uname", "-r"]),
    );
    o.assert_code(0);
    assert_eq!(o.stdout_str(), "9.9.9-test\n", "{}", o.dump());
}

#[test]
fn uname_machine_and_sysname_match_native() {
    // Only the release and version differ from the host (see README); these must not.
    assert_same(&Cmd::busybox(&["uname", "-s", "-m", "-o"]));
}

#[test]
fn ls_long_listing_matches_native() {
    assert_same(&Cmd::busybox(&[
        "ls",
        "-la",
        "/usr/share/doc/busybox-static",
    ]));
}

#[test]
fn cat_file_matches_native() {
    assert_same(&Cmd::busybox(&["cat", "/etc/os-release"]));
}

#[test]
fn wc_counts_bytes_of_a_large_file_like_native() {
    assert_same(&Cmd::busybox(&["wc", "-c", "/bin/busybox"]));
}

#[test]
fn sh_arithmetic_and_exit_status_match_native() {
    let (native, _) = assert_same(&Cmd::busybox(&["sh", "-c", "echo $((6*7)); exit 3"]));
    // Guard against a vacuous comparison: the native run must show what the test is about.
    assert_eq!(
        (native.stdout_str().as_str(), native.code()),
        ("42\n", Some(3))
    );
}

#[test]
fn sh_reads_a_script_from_stdin_like_native() {
    assert_same(&Cmd::busybox(&["sh", "-s"]).stdin("x=abc; echo ${#x} $x; exit 7\n"));
}

#[test]
fn find_lists_the_same_entries_as_native() {
    let (native, _) = assert_same_with(
        &Cmd::busybox(&["find", "/usr/share/doc", "-maxdepth", "1", "-name", "b*"]),
        Compare::LinesAnyOrder,
    );
    assert!(
        native
            .stdout_str()
            .contains("/usr/share/doc/busybox-static\n"),
        "{}",
        native.dump()
    );
}

#[test]
fn stat_size_and_type_match_native() {
    let (native, _) = assert_same(&Cmd::busybox(&["stat", "-c", "%s %F", "/bin/busybox"]));
    assert!(
        native.stdout_str().ends_with(" regular file\n"),
        "{}",
        native.dump()
    );
}

#[test]
fn missing_file_error_and_status_match_native() {
    let (native, _) = assert_same(&Cmd::busybox(&["cat", "/nonexistent/file"]));
    assert_eq!(native.code(), Some(1));
}
