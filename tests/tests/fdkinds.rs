//! timerfd, signalfd and inotify: the same programs natively and in rvisor print the same
//! facts (expiration counts, siginfo records, event sequences, errnos, readiness).

use rvisor_tests::*;

const TIMERFD: &str = env!("RVISOR_TEST_PROG_TIMERFD");
const SIGNALFD: &str = env!("RVISOR_TEST_PROG_SIGNALFD");

#[test]
fn timerfd_one_shot_expires_once_and_nonblocking_reads_give_eagain() {
    assert_section_same_as_init(TIMERFD, "oneshot");
}

#[test]
fn timerfd_periodic_counts_overruns_and_absolute_times_work() {
    assert_section_same_as_init(TIMERFD, "periodic");
}

#[test]
fn timerfd_argument_errors_match_native() {
    assert_section_same_as_init(TIMERFD, "errors");
}

#[test]
fn timerfd_wakes_epoll_at_each_period() {
    assert_section_same_as_init(TIMERFD, "epoll");
}

#[test]
fn signalfd_reads_blocked_pending_signals_with_their_siginfo() {
    assert_section_same_as_init(SIGNALFD, "basic");
}

#[test]
fn signalfd_argument_errors_match_native() {
    assert_section_same_as_init(SIGNALFD, "errors");
}

#[test]
fn signalfd_wakes_epoll_when_a_watched_signal_arrives() {
    assert_section_same_as_init(SIGNALFD, "epoll");
}

#[test]
fn signalfd_blocking_read_is_woken_and_a_child_reads_its_own_signals() {
    assert_section_same_as_init(SIGNALFD, "blocking");
}

const INOTIFY: &str = env!("RVISOR_TEST_PROG_INOTIFY");

#[test]
fn inotify_reports_file_operations_renames_with_cookies_deletes_and_ignored_watches() {
    let dir = TempDir::new("inotify");
    let native = run_native(&Cmd::new(INOTIFY).arg(dir.path()));
    native.assert_code(0);
    let sandboxed = run_rvisor(&[], &Cmd::new(INOTIFY).arg("/dev/shm"));
    if let Some(report) = compare(&native, &sandboxed, Compare::Bytes) {
        panic!("rvisor (in /dev/shm) and native (in a fresh folder) differ for inotify:\n{report}");
    }
}

const PROCNAMES: &str = env!("RVISOR_TEST_PROG_PROCNAMES");

#[test]
fn proc_fd_links_name_anonymous_files_memfds_and_unlinked_files_like_native() {
    assert_section_same_as_init(PROCNAMES, "fds");
}

#[test]
fn a_zombie_keeps_its_name_in_proc_stat_status_and_comm() {
    // Not as a pid-namespace init natively: that init would read the host's /proc, where
    // the child's pid names another process.
    let (native, _) = assert_same(&Cmd::new(PROCNAMES).arg("zombie"));
    native.assert_code(0);
}
