//! Real, dynamically linked programs (bash, coreutils, find, tar, python3, perl) in rvisor:
//! the same stdout and exit status as natively. Both runs get the same plain PATH
//! ([`SYSTEM_PATH`]) so that they find the same programs by name.

use rvisor_tests::*;

fn bash(script: &str) -> Cmd {
    Cmd::new("/bin/bash")
        .args(["-c", script])
        .env("PATH", SYSTEM_PATH)
}

fn sh(script: &str) -> Cmd {
    Cmd::new("/bin/sh")
        .args(["-c", script])
        .env("PATH", SYSTEM_PATH)
}

#[test]
fn bash_loop_of_pipes_subshell_status_and_a_child_killed_by_sigterm_match_native() {
    // In rvisor bash is pid 1; the `sh -c kill` is its child, so 143 either way.
    let (native, _) = assert_same(&bash(
        r#"for i in 1 2 3; do echo $i | /usr/bin/cat; done; (exit 7); echo $?; sh -c "kill -TERM \$\$"; echo $?"#,
    ));
    assert_eq!(
        native.stdout_str(),
        "1\n2\n3\n7\n143\n",
        "{}",
        native.dump()
    );
}

#[test]
fn ls_sort_head_find_sha256sum_and_tar_pipeline_matches_native() {
    let (native, _) = assert_same(&sh(
        r#"ls -l /usr/bin | sort | head -5; find /usr/lib/python3 -name "*.py" | wc -l; sha256sum /bin/bash; tar cf - /usr/share/doc/bash | wc -c"#,
    ));
    native.assert_code(0);
    assert_eq!(native.stdout_str().lines().count(), 8, "{}", native.dump());
}

#[test]
fn python_threads_subprocess_pool_signals_alarm_and_fork_match_native() {
    require_program("/usr/bin/python3", "python3");
    let cmd = Cmd::new("python3")
        .arg(files::PY_ACCEPTANCE)
        .env("PATH", SYSTEM_PATH)
        // No .pyc writes next to the script, and the same output natively and in the sandbox.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (native, _) = assert_same(&cmd);
    native.assert_code(0);
    assert!(native.stdout_str().ends_with("done\n"), "{}", native.dump());
}

#[test]
fn python_prints_its_version() {
    require_program("/usr/bin/python3", "python3");
    let (native, _) = assert_same(
        &Cmd::new("python3")
            .args(["-c", "import sys; print(sys.version)"])
            .env("PATH", SYSTEM_PATH),
    );
    native.assert_code(0);
}

#[test]
fn perl_prints_ok() {
    require_program("/usr/bin/perl", "perl");
    let (native, _) = assert_same(
        &Cmd::new("perl")
            .args(["-e", r#"print "ok\n""#])
            .env("PATH", SYSTEM_PATH),
    );
    assert_eq!(native.stdout_str(), "ok\n");
}

#[test]
fn bash_trap_handles_a_signal_bash_sends_itself() {
    // bash is pid 1 in rvisor: a signal with a handler (trap) is delivered to init too.
    let (native, _) = assert_same(&bash(
        r#"trap 'echo caught USR1' USR1; kill -USR1 $$; trap 'echo caught TERM' TERM; kill -TERM $$; echo after"#,
    ));
    assert_eq!(
        native.stdout_str(),
        "caught USR1\ncaught TERM\nafter\n",
        "{}",
        native.dump()
    );
}

#[test]
fn bash_background_jobs_report_their_exit_statuses_to_wait() {
    let (native, _) = assert_same(&bash(
        r#"(exit 3) & a=$!; (exit 4) & b=$!; sh -c 'kill -KILL $$' & c=$!; wait $a; echo $?; wait $b; echo $?; wait $c; echo $?; wait; echo all done"#,
    ));
    assert_eq!(
        native.stdout_str(),
        "3\n4\n137\nall done\n",
        "{}",
        native.dump()
    );
}

#[test]
fn bash_command_substitution_here_documents_and_long_pipelines_match_native() {
    let (native, _) = assert_same(&bash(
        r#"x=$(echo sub | tr a-z A-Z); echo "$x"; cat <<EOF | wc -l
one
two
three
EOF
seq 1 20000 | sort -rn | head -3 | awk '{ s += $1 } END { print s }'; echo "${PIPESTATUS[@]}"; yes | head -c 100000 | md5sum"#,
    ));
    native.assert_code(0);
}

#[test]
fn shell_reports_127_for_a_missing_program_and_126_for_a_non_executable_file() {
    let (native, _) = assert_same(&sh(
        "no-such-program-rvisor 2>/dev/null; echo $?; /etc/passwd 2>/dev/null; echo $?; exec /bin/true",
    ));
    assert_eq!(native.stdout_str(), "127\n126\n", "{}", native.dump());
}
