//! Threads and futexes: pthread mutexes, condition variables and barriers under 8 threads,
//! and futex(2) called directly (timeouts, EAGAIN, wake counts, keys shared between
//! processes). Compared with the native run as a pid-namespace init, as everywhere the
//! sandbox's first process is concerned.

use rvisor_tests::*;

#[test]
fn threads_share_the_pid_and_have_their_own_tids_and_tls() {
    assert_section_same_as_init(progs::THREADS_SYNC, "ids");
}

#[test]
fn eight_threads_incrementing_under_a_mutex_lose_no_update() {
    assert_section_same_as_init(progs::THREADS_SYNC, "mutex");
}

#[test]
fn condition_variable_bounded_buffer_delivers_every_item_once() {
    assert_section_same_as_init(progs::THREADS_SYNC, "condvar");
}

#[test]
fn condition_variable_broadcast_wakes_all_eight_threads_every_round() {
    assert_section_same_as_init(progs::THREADS_SYNC, "broadcast");
}

#[test]
fn pthread_cond_timedwait_times_out_after_its_deadline() {
    assert_section_same_as_init(progs::THREADS_SYNC, "timedwait");
}

#[test]
fn pthread_barrier_holds_every_thread_until_all_arrive() {
    assert_section_same_as_init(progs::THREADS_SYNC, "barrier");
}

#[test]
fn futex_wait_times_out_with_etimedout_and_fails_with_eagain_on_value_mismatch() {
    assert_section_same_as_init(progs::FUTEX, "wait");
}

#[test]
fn futex_rejects_bad_timeouts_addresses_bitsets_and_ops() {
    assert_section_same_as_init(progs::FUTEX, "errors");
}

#[test]
fn futex_wake_wakes_at_most_the_requested_number_of_waiters_on_that_word() {
    assert_section_same_as_init(progs::FUTEX, "wake");
}

#[test]
fn futex_wake_bitset_wakes_only_waiters_with_overlapping_bits() {
    assert_section_same_as_init(progs::FUTEX, "bitset");
}

#[test]
fn shared_futex_on_map_shared_memory_works_between_parent_and_child() {
    assert_section_same_as_init(progs::FUTEX, "shared");
}

#[test]
fn private_futex_wake_does_not_reach_another_process_on_shared_memory() {
    assert_section_same_as_init(progs::FUTEX, "private");
}

#[test]
fn shared_futex_on_a_file_mapping_is_keyed_by_file_page_not_address() {
    assert_section_same_as_init(progs::FUTEX, "file");
}
