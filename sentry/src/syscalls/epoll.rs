//! epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2), epoll_pwait(2),
//! epoll_pwait2(2), eventfd(2) and eventfd2(2).
//!
//! The interest and ready lists are `vfs::epoll`, the counter `vfs::eventfd`. A blocked
//! epoll_wait registers on the wait queue of every watched file and on the instance's own
//! queue (notified by epoll_ctl, so an fd added by another thread is seen at once), and
//! re-collects on every wake-up. Files without a queue (host stdio, nested epoll files) are
//! re-checked every [`UNQUEUED_RECHECK`]. While it sleeps the wait holds references to the
//! watched files; so that a file closed by another thread during the wait still goes away
//! (and, e.g., its pipe peer sees POLLHUP), the wait lets go of them every
//! [`CLOSE_RECHECK`].
//!
//! Linux details kept: epoll_wait is never restarted (a signal gives EINTR, and with
//! epoll_pwait's mask the old mask comes back only after the handler ran); maxevents must
//! be in `1..=INT_MAX/12`; EPOLLERR and EPOLLHUP are always reported; regular files and
//! directories cannot be watched (EPERM); an epoll cannot watch itself (EINVAL) nor an
//! epoll that watches it (ELOOP); EPOLLWAKEUP is dropped (no CAP_BLOCK_SUSPEND);
//! EPOLLEXCLUSIVE is accepted on ADD (every waiter is woken: only an optimisation on Linux).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFMT, S_IFREG};
use rvisor_syscalls::flags::open::{O_CLOEXEC, O_NONBLOCK, O_RDWR};
use rvisor_syscalls::types::{SigSet, Timespec};
use rvisor_syscalls::Errno;

use super::poll::{Timeout, UNQUEUED_RECHECK};
use super::{Args, SysResult};
use crate::kernel::wait::{block_on, WaitQueue};
use crate::kernel::Task;
use crate::vfs::epoll::{as_epoll, Epoll, EPOLL_CTL_DEL};
use crate::vfs::eventfd::EventFd;
use crate::vfs::FileDescription;

/// How often a blocked epoll_wait drops its references to the watched files.
pub const CLOSE_RECHECK: Duration = Duration::from_millis(50);
/// `sizeof(struct epoll_event)` on x86_64 (packed: u32 events, u64 data).
const EPOLL_EVENT_SIZE: usize = 12;
/// Linux's EP_MAX_EVENTS.
const EP_MAX_EVENTS: i32 = i32::MAX / EPOLL_EVENT_SIZE as i32;
const EFD_SEMAPHORE: u32 = 1;
const SIGSET_SIZE: u64 = 8;
const NSEC_PER_SEC: i64 = 1_000_000_000;

// ---------------------------------------------------------------------------------------
// epoll_create / epoll_ctl

fn create(t: &mut Task, flags: u32) -> SysResult {
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let ep = Epoll::new(t.creds.fsuid, t.creds.fsgid);
    let fd = t.install_fd(FileDescription::new(ep, None, O_RDWR), flags & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

/// epoll_create(2): `size` is only checked to be positive.
pub fn epoll_create(t: &mut Task, a: &Args) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    create(t, 0)
}

/// epoll_create1(2): EPOLL_CLOEXEC only.
pub fn epoll_create1(t: &mut Task, a: &Args) -> SysResult {
    create(t, a[0] as u32)
}

/// Whether Linux's `file_can_poll` would hold: our regular files and directories have no
/// poll method there.
fn can_poll(file: &FileDescription) -> Result<bool, Errno> {
    let mode = file.imp().stat()?.st_mode & S_IFMT;
    Ok(mode != S_IFREG && mode != S_IFDIR)
}

/// epoll_ctl(2)
pub fn epoll_ctl(t: &mut Task, a: &Args) -> SysResult {
    let (epfd, op, fd, addr) = (a[0] as i32, a[1] as u32, a[2] as i32, a[3]);
    let event = if op != EPOLL_CTL_DEL {
        let mut raw = [0u8; EPOLL_EVENT_SIZE];
        t.mm.copy_in(addr, &mut raw).map_err(|_| Errno::EFAULT)?;
        let mut data = [0u8; 8];
        data.copy_from_slice(&raw[4..]);
        Some((u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]), u64::from_le_bytes(data)))
    } else {
        None
    };
    let epfile = t.file(epfd)?;
    let target = t.file(fd)?;
    if !can_poll(&target)? {
        return Err(Errno::EPERM);
    }
    let ep = as_epoll(&epfile).ok_or(Errno::EINVAL)?;
    ep.ctl(op, fd, &target, event)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// epoll_wait / epoll_pwait / epoll_pwait2

/// Collects up to `max` events, sleeping until one is ready, the timeout passes (empty)
/// or a signal arrives (EINTR).
pub fn wait_events(ep: &Epoll, max: usize, timeout: Timeout) -> Result<Vec<(u32, u64)>, Errno> {
    let deadline = match timeout {
        Timeout::Now => return Ok(ep.collect(max)),
        Timeout::Never => None,
        Timeout::At(d) => Some(d),
    };
    loop {
        let (files, generation) = ep.watched();
        let mut queues: Vec<&WaitQueue> = files.iter().filter_map(|f| f.imp().wait_queue()).collect();
        queues.push(ep.ctl_queue());
        queues.sort_by_key(|q| *q as *const WaitQueue as usize);
        queues.dedup_by(|a, b| std::ptr::eq(*a, *b));
        let tick = if files.iter().any(|f| f.imp().wait_queue().is_none()) { UNQUEUED_RECHECK } else { CLOSE_RECHECK };
        let tick = Instant::now() + tick;
        let until = Some(deadline.map_or(tick, |d| d.min(tick)));
        let r = block_on(&queues, until, || {
            let evs = ep.collect(max);
            if !evs.is_empty() {
                return Some(Ok(Some(evs)));
            }
            // The interest list changed: collect the queues again.
            (ep.generation() != generation).then_some(Ok(None))
        });
        drop(queues);
        drop(files);
        match r {
            Ok(Some(evs)) => return Ok(evs),
            Ok(None) => {}
            Err(Errno::ETIMEDOUT) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Vec::new());
                }
            }
            Err(Errno::ERESTARTSYS) => return Err(Errno::EINTR),
            Err(e) => return Err(e),
        }
    }
}

/// The common part of the epoll_wait family: checks, waits, copies the events out.
fn do_wait(t: &Task, epfd: i32, addr: u64, maxevents: i32, timeout: Timeout) -> SysResult {
    if maxevents <= 0 || maxevents > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let file = t.file(epfd)?;
    let ep = as_epoll(&file).ok_or(Errno::EINVAL)?;
    drop(file);
    let evs = wait_events(&ep, maxevents as usize, timeout)?;
    if evs.is_empty() {
        return Ok(0);
    }
    let mut raw = Vec::with_capacity(evs.len() * EPOLL_EVENT_SIZE);
    for (events, data) in &evs {
        raw.extend_from_slice(&events.to_le_bytes());
        raw.extend_from_slice(&data.to_le_bytes());
    }
    t.mm.copy_out(addr, &raw).map_err(|_| Errno::EFAULT)?;
    Ok(evs.len() as u64)
}

/// A millisecond timeout (epoll_wait, epoll_pwait): negative waits forever.
fn ms_timeout(ms: i32) -> Timeout {
    if ms < 0 {
        Timeout::Never
    } else {
        Timeout::after(Duration::from_millis(ms as u64))
    }
}

/// Runs `wait` with the optional signal mask at `addr` (`size` bytes) installed; as
/// Linux's `restore_saved_sigmask_unless(ret == -EINTR)`, an interrupted wait keeps the
/// temporary mask until the handler's frame is set up.
fn with_sigmask(t: &mut Task, addr: u64, size: u64, wait: impl FnOnce(&Task) -> SysResult) -> SysResult {
    if addr == 0 {
        return wait(t);
    }
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: SigSet = t.read_obj(addr)?;
    let old = t.sigmask();
    crate::kernel::signal::set_mask(t, mask);
    let r = wait(t);
    if r == Err(Errno::EINTR) {
        t.saved_mask = Some(old);
    } else {
        crate::kernel::signal::set_mask(t, old);
    }
    r
}

/// epoll_wait(2)
pub fn epoll_wait(t: &mut Task, a: &Args) -> SysResult {
    do_wait(t, a[0] as i32, a[1], a[2] as i32, ms_timeout(a[3] as i32))
}

/// epoll_pwait(2): epoll_wait with a signal mask for the duration of the wait.
pub fn epoll_pwait(t: &mut Task, a: &Args) -> SysResult {
    let timeout = ms_timeout(a[3] as i32);
    with_sigmask(t, a[4], a[5], |t| do_wait(t, a[0] as i32, a[1], a[2] as i32, timeout))
}

/// epoll_pwait2(2): a timespec timeout (NULL: forever), not written back.
pub fn epoll_pwait2(t: &mut Task, a: &Args) -> SysResult {
    let timeout = if a[3] != 0 {
        let ts: Timespec = t.read_obj(a[3])?;
        if ts.tv_sec < 0 || !(0..NSEC_PER_SEC).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Timeout::after(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        Timeout::Never
    };
    with_sigmask(t, a[4], a[5], |t| do_wait(t, a[0] as i32, a[1], a[2] as i32, timeout))
}

// ---------------------------------------------------------------------------------------
// eventfd

fn do_eventfd(t: &mut Task, initval: u32, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let imp = Arc::new(EventFd::new(initval as u64, flags & EFD_SEMAPHORE != 0, t.creds.fsuid, t.creds.fsgid));
    let fd = t.install_fd(FileDescription::new(imp, None, O_RDWR | (flags & O_NONBLOCK)), flags & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

/// eventfd(2)
pub fn eventfd(t: &mut Task, a: &Args) -> SysResult {
    do_eventfd(t, a[0] as u32, 0)
}

/// eventfd2(2): EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE.
pub fn eventfd2(t: &mut Task, a: &Args) -> SysResult {
    do_eventfd(t, a[0] as u32, a[1] as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::epoll::{EPOLLIN, EPOLL_CTL_ADD};
    use crate::vfs::pipe::new_pipe;

    #[test]
    fn epoll_wait_times_out_and_is_woken_by_a_write_on_another_thread() {
        let ep = Epoll::new(0, 0);
        let (r, w) = new_pipe(O_NONBLOCK);
        ep.ctl(EPOLL_CTL_ADD, 3, &r, Some((EPOLLIN, 3))).unwrap();
        let start = Instant::now();
        assert_eq!(wait_events(&ep, 4, Timeout::after(Duration::from_millis(20))), Ok(vec![]));
        assert!(start.elapsed() >= Duration::from_millis(20));
        let ep2 = ep.clone();
        let h = std::thread::spawn(move || wait_events(&ep2, 4, Timeout::Never));
        std::thread::sleep(Duration::from_millis(10));
        w.write(b"x").unwrap();
        assert_eq!(h.join().unwrap(), Ok(vec![(EPOLLIN, 3)]));
    }

    #[test]
    fn epoll_wait_sees_an_fd_added_while_it_sleeps() {
        let ep = Epoll::new(0, 0);
        let ep2 = ep.clone();
        let h = std::thread::spawn(move || wait_events(&ep2, 4, Timeout::after(Duration::from_secs(10))));
        std::thread::sleep(Duration::from_millis(10));
        let (r, w) = new_pipe(O_NONBLOCK);
        w.write(b"x").unwrap();
        ep.ctl(EPOLL_CTL_ADD, 7, &r, Some((EPOLLIN, 7))).unwrap();
        assert_eq!(h.join().unwrap(), Ok(vec![(EPOLLIN, 7)]));
    }
}
