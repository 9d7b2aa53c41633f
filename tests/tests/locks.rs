//! File locks, memfd, in-kernel copies and openat2 in rvisor: the C programs `c/locks.c`
//! and `c/splice.c`, and SQLite (which needs POSIX record locks, and in WAL mode a
//! MAP_SHARED mapping of its `-shm` file), run natively in a fresh host folder and in the
//! sandbox's /dev/shm (a tmpfs); outputs and exit statuses must match.

use rvisor_tests::*;

/// `c/locks.c`: `locks BASE [SECTION...]`.
const LOCKS_PROG: &str = env!("RVISOR_TEST_PROG_LOCKS");
/// `c/splice.c`: `splice BASE [SECTION...]`.
const SPLICE_PROG: &str = env!("RVISOR_TEST_PROG_SPLICE");
/// Two processes incrementing one SQLite row.
const SQLITE_COUNTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/py/sqlite_counter.py");

/// Runs `cmd_for(base)` natively in a fresh host folder and in rvisor with `/dev/shm`, and
/// fails unless stdout and exit status agree (and the native run succeeds).
#[track_caller]
fn same_in_tmp(what: &str, cmd_for: impl Fn(&str) -> Cmd) -> Outcome {
    let dir = TempDir::new(what);
    let native = run_native(&cmd_for(&dir.path().to_string_lossy()));
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &cmd_for("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (in /dev/shm) and native (in a fresh folder) differ for {what}:\n{report}");
    }
    native
}

fn section(prog: &str, name: &str) {
    let native = same_in_tmp(name, |base| Cmd::new(prog).args([base, name]));
    assert!(native.stdout_str().starts_with(&format!("== {name}\n")), "{}", native.dump());
}

#[test]
fn posix_record_locks_conflict_split_and_report_the_holder_like_native() {
    section(LOCKS_PROG, "posix");
}

#[test]
fn closing_any_fd_of_a_file_releases_the_process_posix_locks() {
    section(LOCKS_PROG, "close_release");
}

#[test]
fn f_setlkw_blocks_until_release_and_a_signal_interrupts_it_with_eintr() {
    section(LOCKS_PROG, "setlkw");
}

#[test]
fn two_processes_waiting_for_each_others_lock_get_edeadlk() {
    section(LOCKS_PROG, "deadlock");
}

#[test]
fn ofd_locks_belong_to_the_open_file_description() {
    section(LOCKS_PROG, "ofd");
}

#[test]
fn flock_conflicts_converts_and_wakes_waiters_like_native() {
    section(LOCKS_PROG, "flock");
}

#[test]
fn memfd_create_shares_pages_and_enforces_seals_like_native() {
    section(LOCKS_PROG, "memfd");
}

#[test]
fn sendfile_copies_from_offsets_and_positions_like_native() {
    section(SPLICE_PROG, "sendfile");
}

#[test]
fn splice_and_tee_move_and_copy_pipe_data_like_native() {
    section(SPLICE_PROG, "splice");
}

#[test]
fn copy_file_range_copies_between_files_like_native() {
    section(SPLICE_PROG, "copy_file_range");
}

#[test]
fn openat2_resolve_flags_and_o_path_match_native() {
    section(SPLICE_PROG, "openat2");
}

#[test]
fn sqlite_wal_mode_creates_inserts_and_sums() {
    require_program("/usr/bin/sqlite3", "sqlite3");
    let native = same_in_tmp("sqlite-wal", |base| {
        Cmd::new("/usr/bin/sqlite3")
            .args([&format!("{base}/d.db"), "pragma journal_mode=wal; create table t(x); insert into t values(1),(2); select sum(x) from t;"])
    });
    assert_eq!(native.stdout_str(), "wal\n3\n", "{}", native.dump());
}

#[test]
fn two_python_processes_updating_one_sqlite_file_count_to_400() {
    require_program("/usr/bin/python3", "python3");
    for mode in ["delete", "wal"] {
        let native = same_in_tmp(&format!("sqlite-counter-{mode}"), |base| Cmd::new("python3").args([SQLITE_COUNTER, base, mode]).env("PATH", SYSTEM_PATH));
        assert_eq!(native.stdout_str(), format!("{mode} 400 children ok\n"), "{}", native.dump());
    }
}
