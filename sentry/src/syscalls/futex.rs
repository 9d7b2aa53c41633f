//! futex(2). The semantics live in `kernel::futex`; this file decodes the arguments.
//!
//! Supported: FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP,
//! FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET, with FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
//! The priority-inheritance operations (FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_UNLOCK_PI,
//! FUTEX_TRYLOCK_PI, FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI) and the long-removed
//! FUTEX_FD return ENOSYS; futex_waitv(2) is not implemented (ENOSYS).
//!
//! An interrupted wait returns ERESTARTSYS (restarted if the handler has SA_RESTART, else
//! EINTR). Linux restarts a FUTEX_WAIT with a timeout through restart_syscall, keeping the
//! original deadline and returning EINTR to a handler even with SA_RESTART; here such a
//! restart begins the relative timeout again.
//!
//! Absolute FUTEX_WAIT_BITSET deadlines are converted to a sentry-monotonic instant when
//! the call starts, so a CLOCK_REALTIME deadline does not follow clock changes made while
//! the task sleeps.

use std::time::{Duration, Instant};

use rvisor_syscalls::flags::futex::*;
use rvisor_syscalls::types::Timespec;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::futex::{guest_wake_count, table_of};
use crate::kernel::Task;

/// Now on a host clock (the guest's clocks are the host's).
fn clock_now(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer and `clock` one of the constant clock ids below.
    if unsafe { libc::clock_gettime(clock, &mut ts) } < 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// The deadline of a wait: relative for FUTEX_WAIT, absolute on CLOCK_MONOTONIC (or
/// CLOCK_REALTIME with the flag) for FUTEX_WAIT_BITSET. `None`: too far to represent.
fn deadline(cmd: u32, realtime: bool, ts: Timespec) -> Option<Instant> {
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    if cmd == FUTEX_WAIT {
        return Instant::now().checked_add(d);
    }
    let now = clock_now(if realtime { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC });
    Instant::now().checked_add(d.saturating_sub(now))
}

/// futex(2)
pub fn futex(t: &mut Task, a: &Args) -> SysResult {
    let (uaddr, op, val, utime, uaddr2, val3) = (a[0], a[1] as u32, a[2] as u32, a[3], a[4], a[5] as u32);
    let cmd = op & FUTEX_CMD_MASK;
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    // As in Linux, the timeout is read and checked before anything else.
    let mut until = None;
    if utime != 0 && matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET) {
        let ts: Timespec = t.read_obj(utime)?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        until = deadline(cmd, realtime, ts);
    }
    if realtime && !matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2) {
        return Err(Errno::ENOSYS);
    }
    let table = table_of(&t.kernel);
    let mm = &*t.mm;
    // The count arguments passed in the timeout register (val2).
    let val2 = utime as u32;
    match cmd {
        FUTEX_WAIT => table.wait(mm, uaddr, private, val, FUTEX_BITSET_MATCH_ANY, until).map(|()| 0),
        FUTEX_WAIT_BITSET => table.wait(mm, uaddr, private, val, val3, until).map(|()| 0),
        FUTEX_WAKE => Ok(table.wake(mm, uaddr, private, guest_wake_count(val), FUTEX_BITSET_MATCH_ANY)? as u64),
        FUTEX_WAKE_BITSET => Ok(table.wake(mm, uaddr, private, guest_wake_count(val), val3)? as u64),
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (nr_wake, nr_requeue) = (val as i32, val2 as i32);
            if nr_wake < 0 || nr_requeue < 0 {
                return Err(Errno::EINVAL);
            }
            let cmp = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            Ok(table.requeue(mm, uaddr, uaddr2, private, nr_wake as usize, nr_requeue as usize, cmp)? as u64)
        }
        FUTEX_WAKE_OP => Ok(table.wake_op(mm, uaddr, uaddr2, private, guest_wake_count(val), guest_wake_count(val2), val3)? as u64),
        _ => Err(Errno::ENOSYS),
    }
}
