//! Signals: handlers on an alternate stack, faults repaired by their handler, SIGCHLD and
//! waitid, SA_RESTART vs EINTR, sigsuspend and rt_sigtimedwait. The programs run natively
//! as a pid-namespace init, since in rvisor they are the sandbox's pid 1.

use rvisor_tests::*;

#[test]
fn sa_onstack_handler_runs_on_the_alternate_stack() {
    assert_section_same_as_init(progs::SIGFRAME, "altstack");
}

#[test]
fn stack_overflow_is_caught_by_a_sigsegv_handler_on_the_alternate_stack() {
    assert_section_same_as_init(progs::SIGFRAME, "overflow");
}

#[test]
fn sigsegv_handler_that_mprotects_the_page_lets_the_write_succeed() {
    assert_section_same_as_init(progs::SIGFRAME, "segv-fix");
}

#[test]
fn sigbus_past_the_end_of_a_mapped_file_is_repaired_by_its_handler() {
    assert_section_same_as_init(progs::SIGFRAME, "bus-fix");
}

#[test]
fn sigchld_and_waitid_report_cld_exited_with_the_exit_status() {
    assert_section_same_as_init(progs::SIGCHLD, "exited");
}

#[test]
fn sigchld_and_waitid_report_cld_killed_with_the_signal() {
    assert_section_same_as_init(progs::SIGCHLD, "killed");
}

#[test]
fn waitid_reports_stopped_and_continued_children() {
    assert_section_same_as_init(progs::SIGCHLD, "stopped");
}

#[test]
fn waitid_wnohang_on_a_running_child_returns_no_child() {
    assert_section_same_as_init(progs::SIGCHLD, "nohang");
}

#[test]
fn sa_nocldstop_suppresses_sigchld_for_stops_only() {
    assert_section_same_as_init(progs::SIGCHLD, "nocldstop");
}

#[test]
fn ignored_sigchld_reaps_children_and_wait_fails_with_echild() {
    assert_section_same_as_init(progs::SIGCHLD, "ignored");
}

#[test]
fn sa_restart_restarts_a_pipe_read_interrupted_by_alarm() {
    assert_section_same_as_init(progs::SIGWAIT, "restart");
}

#[test]
fn pipe_read_interrupted_by_alarm_without_sa_restart_fails_with_eintr() {
    assert_section_same_as_init(progs::SIGWAIT, "eintr");
}

#[test]
fn nanosleep_and_poll_return_eintr_even_with_sa_restart() {
    assert_section_same_as_init(progs::SIGWAIT, "norestart");
}

#[test]
fn sigsuspend_waits_with_a_temporary_mask_and_restores_it() {
    assert_section_same_as_init(progs::SIGWAIT, "sigsuspend");
}

#[test]
fn rt_sigtimedwait_times_out_queues_realtime_signals_and_reports_siginfo() {
    assert_section_same_as_init(progs::SIGWAIT, "timedwait");
}

/// `c/sighandler.c` (signal frames: SA_SIGINFO, altstack, SA_NODEFER, SA_RESETHAND), run
/// without arguments.
#[test]
fn signal_frames_siginfo_altstack_nodefer_resethand_match_native() {
    let prog = progs::SIGHANDLER.unwrap_or_else(|| {
        panic!("tests/c/sighandler.c is missing: this test runs that program (signal frames)")
    });
    let (native, _) = assert_same_as_init(&Cmd::new(prog));
    native.assert_code(0);
}

#[test]
fn cpu_time_interval_timers_fire_while_the_process_spins() {
    assert_same(&Cmd::new(progs::ITIMER_CPU));
}
