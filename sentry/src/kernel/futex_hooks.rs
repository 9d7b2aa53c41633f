//! The futex operations thread exit needs (clear_child_tid wake, robust lists).

use super::futex;
use super::task::Task;

/// Wakes up to `n` waiters on the futex word at `addr` of the task's memory. Linux wakes
/// CLEARTID as a shared futex, and glibc's pthread_join waits that way.
pub fn wake(t: &Task, addr: u64, n: usize) {
    futex::wake_address(futex::table_of(&t.kernel), &*t.mm, addr, false, n);
}

/// Walks the robust futex list at `head` (owner died handling).
pub fn handle_robust_list(t: &Task, head: u64) {
    futex::handle_robust_list(futex::table_of(&t.kernel), &*t.mm, head, t.tid() as u32);
}
