//! Processes: fork and copy-on-write memory, execve from a thread, vfork, zombies and
//! reparenting to the sandbox's init, and the end of the sandbox when its first process
//! exits. The C programs run natively as the init of a pid namespace (`unshare --pid
//! --fork`), since in rvisor they are the sandbox's first process, pid 1.

use std::time::{Duration, Instant};

use rvisor_tests::*;

#[test]
fn fork_child_sees_copy_on_write_private_memory() {
    assert_section_same_as_init(progs::COW_FORK, "private");
}

#[test]
fn fork_keeps_map_shared_anonymous_memory_shared_both_ways() {
    assert_section_same_as_init(progs::COW_FORK, "shared");
}

#[test]
fn fork_copies_private_file_mappings_on_write_without_touching_the_file() {
    assert_section_same_as_init(progs::COW_FORK, "file");
}

#[test]
fn grandchild_sees_childs_writes_and_nothing_leaks_upwards() {
    assert_section_same_as_init(progs::COW_FORK, "nested");
}

#[test]
fn fork_inherits_read_only_protection_and_child_mprotect_stays_private() {
    assert_section_same_as_init(progs::COW_FORK, "protect");
}

#[test]
fn madvise_dontneed_in_child_zeroes_only_the_childs_pages() {
    assert_section_same_as_init(progs::COW_FORK, "madvise");
}

#[test]
fn thirty_two_sequential_children_each_see_the_parents_memory() {
    assert_section_same_as_init(progs::COW_FORK, "many");
}

#[test]
fn execve_from_a_non_main_thread_keeps_the_pid_and_ends_the_other_threads() {
    let (native, _) = assert_same_as_init(&Cmd::new(progs::EXEC_THREAD));
    native.assert_code(0);
    assert!(
        native
            .stdout_str()
            .contains("pid unchanged by execve from a thread: yes\n")
            && native.stdout_str().contains("exited with 42"),
        "{}",
        native.dump()
    );
}

#[test]
fn execve_from_a_thread_of_the_sandbox_init_keeps_pid_1() {
    // The program itself is the init: no fork; the new image exits 42 if its checks pass.
    let (native, _) = assert_same_as_init(&Cmd::new(progs::EXEC_THREAD).arg("direct"));
    native.assert_code(42);
}

#[test]
fn vfork_shares_memory_until_exec_and_posix_spawn_reports_exec_errors() {
    let (native, _) = assert_same_as_init(&Cmd::new(progs::VFORK_EXEC));
    native.assert_code(0);
    assert!(
        native
            .stdout_str()
            .contains("50 vfork+exec children with the right status: 50\n"),
        "{}",
        native.dump()
    );
}

#[test]
fn orphans_are_reparented_to_init_and_zombies_stay_until_reaped() {
    let (native, _) = assert_same_as_init(&Cmd::new(progs::REPARENT));
    native.assert_code(0);
    assert!(
        native
            .stdout_str()
            .contains("grandchild's getppid() is 1 after its parent exited: yes\n"),
        "{}",
        native.dump()
    );
}

/// What a run of `c/runaway.c` left: its output, how long it took to end after its first
/// process was told to exit, the host processes it had while running, and those of them
/// (or carrying its marker) still alive afterwards.
struct Teardown {
    outcome: Outcome,
    exit_after: Duration,
    while_running: Vec<HostProcess>,
    left_over: Vec<HostProcess>,
}

/// Runs `c/runaway.c` through `start` with a unique marker in its environment, waits until
/// its process tree is complete ("ready"), records the host processes under the started
/// one, lets the first process exit and records what is left 2 s after the run ended.
fn run_runaway(start: impl FnOnce(&Cmd) -> Interactive) -> Teardown {
    const MARKER: &str = "RVISOR_TEST_RUNAWAY_MARKER";
    let value = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let cmd = Cmd::new(progs::RUNAWAY).env(MARKER, &value);
    let mut run = start(&cmd);
    run.wait_for_stdout("ready\n", Duration::from_secs(60));
    let while_running = process_tree(run.pid());

    let told = Instant::now();
    run.write_stdin(b"go\n");
    let outcome = run.wait(Duration::from_secs(30));
    let exit_after = told.elapsed();

    // Processes of the run may take a moment to be torn down after it returned (a stub dies
    // of its parent's death signal): wait for that, at most 2 s.
    let mut left_over = wait_all_gone(&while_running, Duration::from_secs(2));
    for p in processes_with_env(MARKER, &value) {
        if !left_over.iter().any(|l| l.pid == p.pid) {
            left_over.push(p);
        }
    }
    // Leave nothing running whatever the verdict.
    for p in &left_over {
        p.kill();
    }
    Teardown {
        outcome,
        exit_after,
        while_running,
        left_over,
    }
}

#[test]
fn sandbox_ends_promptly_when_its_first_process_exits_leaving_no_host_processes() {
    // Natively, as the init of a pid namespace: the kernel kills the namespace's other
    // processes when its init exits. This also checks the check itself.
    let native = run_runaway(|cmd| Interactive::native(&as_init(cmd)));
    native.outcome.assert_code(0);
    assert_eq!(
        native.outcome.stdout_str(),
        "ready\ninit exits (stdin gave a line)\n",
        "{}",
        native.outcome.dump()
    );
    assert!(
        native.while_running.len() >= 6,
        "natively the tree should hold unshare, the program and its 4 children; it held:\n{}",
        describe_processes(&native.while_running)
    );
    assert!(
        native.exit_after < Duration::from_secs(5),
        "natively the run took {:?} to end after its init exited",
        native.exit_after
    );
    assert!(
        native.left_over.is_empty(),
        "natively, processes outlived the pid namespace's init:\n{}",
        describe_processes(&native.left_over)
    );

    let sandboxed = run_runaway(|cmd| Interactive::rvisor(&[], cmd));
    if let Some(report) = compare(&native.outcome, &sandboxed.outcome, Compare::Bytes) {
        panic!(
            "rvisor and native differ for {}:\n{report}",
            sandboxed.outcome.what
        );
    }
    assert!(
        sandboxed.exit_after < Duration::from_secs(5),
        "rvisor do took {:?} to return after the sandbox's first process exited (a spinning \
         child, a child ignoring SIGTERM, an orphan and a zombie were left in the sandbox)",
        sandboxed.exit_after
    );
    assert!(
        sandboxed.while_running.len() >= 2,
        "rvisor do should have started host processes (sandbox, gofer, stubs); saw:\n{}",
        describe_processes(&sandboxed.while_running)
    );
    assert!(
        sandboxed.left_over.is_empty(),
        "host processes of the sandbox outlived `rvisor do` (they were killed now):\n{}\n\
         processes of the run while the guest was running:\n{}",
        describe_processes(&sandboxed.left_over),
        describe_processes(&sandboxed.while_running)
    );
}

#[test]
fn orphan_gets_its_pdeath_signal_and_goes_to_the_child_subreaper() {
    assert_same_as_init(&Cmd::new(progs::SUBREAPER));
}

#[test]
fn a_custom_exit_signal_becomes_sigchld_once_the_parent_has_execed() {
    let (native, _) = assert_same(&Cmd::new(progs::EXIT_SIGNAL));
    native.assert_code(0);
    assert!(
        native.stdout_str().contains("after the parent exec'd: reaped yes, status 5, SIGUSR1 pending no, SIGCHLD pending yes"),
        "{}",
        native.dump()
    );
}
