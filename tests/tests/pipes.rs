//! Pipes: pipe2 flags, EOF, atomic PIPE_BUF writes from two processes, EPIPE and SIGPIPE,
//! pipe capacity (F_GETPIPE_SZ/F_SETPIPE_SZ), and poll/select readiness and timeouts.

use rvisor_tests::*;

#[test]
fn pipe2_honours_cloexec_nonblock_and_direct_packet_mode() {
    assert_section_same_as_init(progs::PIPES, "flags");
}

#[test]
fn reader_sees_eof_only_when_the_last_write_end_closes() {
    assert_section_same_as_init(progs::PIPES, "eof");
}

#[test]
fn pipe_buf_sized_writes_from_two_processes_never_interleave() {
    assert_section_same_as_init(progs::PIPES, "atomic");
}

#[test]
fn write_without_readers_raises_sigpipe_or_fails_with_epipe() {
    assert_section_same_as_init(progs::PIPES, "epipe");
}

#[test]
fn f_setpipe_sz_rounds_up_and_sets_the_capacity() {
    assert_section_same_as_init(progs::PIPES, "size");
}

#[test]
fn poll_on_pipes_reports_in_out_hup_err_and_honours_timeouts() {
    assert_section_same_as_init(progs::PIPES, "poll");
}

#[test]
fn select_and_pselect_on_pipes_report_readiness_and_timeouts() {
    assert_section_same_as_init(progs::PIPES, "select");
}
