//! Clocks and sleeping.

use std::time::{Duration, Instant};

use rvisor_syscalls::flags::clock::*;
use rvisor_syscalls::types::{Timespec, Timeval, Timezone};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::task::RestartBlock;
use crate::kernel::Task;

/// Reads a host clock. The guest's clocks are the host's: CLOCK_REALTIME is wall time and
/// the monotonic clocks only ever move forward.
pub(super) fn host_clock(clock: i32) -> Result<Timespec, Errno> {
    let host_id = match clock {
        CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID | CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME | CLOCK_TAI => clock,
        CLOCK_REALTIME_ALARM => CLOCK_REALTIME,
        CLOCK_BOOTTIME_ALARM => CLOCK_BOOTTIME,
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer and `host_id` a clock id validated above.
    if unsafe { libc::clock_gettime(host_id, &mut ts) } < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Timespec { tv_sec: ts.tv_sec, tv_nsec: ts.tv_nsec })
}

/// The guest's own CPU-time clocks (the host's would measure the sentry).
fn cpu_clock(t: &Task, clock: i32) -> Option<Timespec> {
    let ns = match clock {
        CLOCK_PROCESS_CPUTIME_ID => t.tg().cpu_time_ns(),
        // Threads share one host process: a thread's own share is not known yet.
        CLOCK_THREAD_CPUTIME_ID => t.tg().cpu_time_ns(),
        _ => return None,
    };
    Some(Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 })
}

pub fn clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let ts = match cpu_clock(t, a[0] as i32) {
        Some(ts) => ts,
        None => host_clock(a[0] as i32)?,
    };
    t.write_obj(a[1], &ts)?;
    Ok(0)
}

pub fn clock_getres(t: &mut Task, a: &Args) -> SysResult {
    let clock = a[0] as i32;
    host_clock(clock)?;
    let res = match clock {
        CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => Timespec { tv_sec: 0, tv_nsec: 4_000_000 },
        _ => Timespec { tv_sec: 0, tv_nsec: 1 },
    };
    if a[1] != 0 {
        t.write_obj(a[1], &res)?;
    }
    Ok(0)
}

pub fn gettimeofday(t: &mut Task, a: &Args) -> SysResult {
    if a[0] != 0 {
        let ts = host_clock(CLOCK_REALTIME)?;
        t.write_obj(a[0], &Timeval { tv_sec: ts.tv_sec, tv_usec: ts.tv_nsec / 1000 })?;
    }
    if a[1] != 0 {
        t.write_obj(a[1], &Timezone::default())?;
    }
    Ok(0)
}

pub fn time(t: &mut Task, a: &Args) -> SysResult {
    let now = host_clock(CLOCK_REALTIME)?.tv_sec;
    if a[0] != 0 {
        t.write_obj(a[0], &now)?;
    }
    Ok(now as u64)
}

fn read_timespec(t: &Task, addr: u64) -> Result<Timespec, Errno> {
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

fn duration(ts: Timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Sleeps until `deadline` (a CLOCK_MONOTONIC instant). Interrupted by a signal, it writes
/// the remaining time to `rem_addr` (if any) and asks for a restart through
/// restart_syscall(2), which resumes the same deadline if no handler runs.
fn sleep(t: &mut Task, deadline: Instant, rem_addr: u64) -> SysResult {
    match crate::kernel::wait::sleep_until(deadline) {
        Ok(()) => Ok(0),
        Err(Errno::ERESTARTSYS) => {
            if rem_addr != 0 {
                let rem = deadline.saturating_duration_since(Instant::now());
                t.write_obj(rem_addr, &Timespec { tv_sec: rem.as_secs() as i64, tv_nsec: rem.subsec_nanos() as i64 })?;
            }
            t.restart_block = Some(RestartBlock::Sleep { deadline, rem_addr });
            Err(Errno::ERESTART_RESTARTBLOCK)
        }
        Err(e) => Err(e),
    }
}

pub fn nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let req = read_timespec(t, a[0])?;
    sleep(t, Instant::now() + duration(req), a[1])
}

pub fn clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let (clock, flags) = (a[0] as i32, a[1] as u32);
    if matches!(clock, CLOCK_THREAD_CPUTIME_ID) {
        return Err(Errno::EINVAL);
    }
    if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_TAI | CLOCK_PROCESS_CPUTIME_ID | CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM) {
        return Err(if host_clock(clock).is_ok() { Errno::ENOTSUP } else { Errno::EINVAL });
    }
    let req = read_timespec(t, a[2])?;
    let absolute = flags & TIMER_ABSTIME != 0;
    let wait = if absolute { duration(req).saturating_sub(duration(host_clock(clock)?)) } else { duration(req) };
    // An absolute sleep has no remaining time to report.
    sleep(t, Instant::now() + wait, if absolute { 0 } else { a[3] })
}

/// restart_syscall(2): resumes a sleep interrupted by a signal that ran no handler.
pub fn restart_syscall(t: &mut Task, _a: &Args) -> SysResult {
    match t.restart_block.take() {
        Some(RestartBlock::Sleep { deadline, rem_addr }) => sleep(t, deadline, rem_addr),
        None => Err(Errno::EINTR),
    }
}
