//! timerfd_create(2), timerfd_settime(2) and timerfd_gettime(2). The timer is `vfs::timerfd`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rvisor_syscalls::fdkinds::tfd::*;
use rvisor_syscalls::fdkinds::Itimerspec;
use rvisor_syscalls::flags::clock::*;
use rvisor_syscalls::flags::open::O_RDWR;
use rvisor_syscalls::types::Timespec;
use rvisor_syscalls::Errno;

use super::time::host_clock;
use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::timerfd::{TimerFd, TimerFile};
use crate::vfs::FileDescription;

const NSEC_PER_SEC: i64 = 1_000_000_000;

/// timerfd_create(2): the realtime, monotonic and boot-time clocks; the `_ALARM` ones need
/// CAP_WAKE_ALARM (the sandbox's root has it).
pub fn timerfd_create(t: &mut Task, a: &Args) -> SysResult {
    let (clock, flags) = (a[0] as i32, a[1] as u32);
    if flags & !(TFD_CLOEXEC | TFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    match clock {
        CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME => {}
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM if t.creds.euid == 0 => {}
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    let timer = TimerFd::new(clock, t.creds.fsuid, t.creds.fsgid);
    let file = FileDescription::new(
        Arc::new(TimerFile(timer)),
        None,
        O_RDWR | (flags & TFD_NONBLOCK),
    );
    Ok(t.install_fd(file, flags & TFD_CLOEXEC != 0)? as u64)
}

/// The timer behind `fd`: EBADF for a bad fd, EINVAL for another kind of file.
fn timer_of(t: &Task, fd: i32) -> Result<Arc<TimerFd>, Errno> {
    let file = t.file(fd)?;
    let any = file.imp().clone().into_any().ok_or(Errno::EINVAL)?;
    any.downcast::<TimerFd>().map_err(|_| Errno::EINVAL)
}

fn duration_of(ts: &Timespec) -> Result<Duration, Errno> {
    if ts.tv_sec < 0 || !(0..NSEC_PER_SEC).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn timespec_of(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as i64,
    }
}

fn itimerspec_of((value, interval): (Duration, Duration)) -> Itimerspec {
    Itimerspec {
        it_interval: timespec_of(interval),
        it_value: timespec_of(value),
    }
}

/// The monotonic instant at which `clock` reads `target` (now, if that time has passed).
fn instant_of_clock_time(clock: i32, target: Duration) -> Result<Instant, Errno> {
    let now_ts = host_clock(clock)?;
    let now = duration_of(&now_ts).unwrap_or_default();
    let base = Instant::now();
    Ok(base
        .checked_add(target.saturating_sub(now))
        .unwrap_or(base + Duration::from_secs(1 << 40)))
}

/// timerfd_settime(2): TFD_TIMER_ABSTIME, and TFD_TIMER_CANCEL_ON_SET (accepted; the
/// sandbox's clock is never set, so it never cancels).
pub fn timerfd_settime(t: &mut Task, a: &Args) -> SysResult {
    let (fd, flags, new_addr, old_addr) = (a[0] as i32, a[1] as u32, a[2], a[3]);
    let new: Itimerspec = t.read_obj(new_addr)?;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let value = duration_of(&new.it_value)?;
    let interval = duration_of(&new.it_interval)?;
    let timer = timer_of(t, fd)?;
    let first = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        Some(instant_of_clock_time(timer.clock(), value)?)
    } else {
        Instant::now()
            .checked_add(value)
            .or(Some(Instant::now() + Duration::from_secs(1 << 40)))
    };
    let old = timer.set(first, interval);
    if old_addr != 0 {
        t.write_obj(old_addr, &itimerspec_of(old))?;
    }
    Ok(0)
}

/// timerfd_gettime(2)
pub fn timerfd_gettime(t: &mut Task, a: &Args) -> SysResult {
    let timer = timer_of(t, a[0] as i32)?;
    t.write_obj(a[1], &itimerspec_of(timer.get()))?;
    Ok(0)
}
