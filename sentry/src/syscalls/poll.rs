//! poll(2), ppoll(2), select(2), pselect6(2).
//!
//! Readiness is one mechanism for every file kind: [`FileImpl::readiness`] gives the events
//! that hold now and [`FileImpl::wait_queue`] the queue notified when they may change. A
//! wait registers the task's waker on the queues of every polled file, scans, and sleeps
//! with [`block_on`] until a notification, the deadline or a signal, then scans again.
//!
//! Linux details kept: negative fds are skipped (revents 0); a closed fd is POLLNVAL in
//! poll and EBADF in select; POLLERR and POLLHUP are reported whether asked for or not;
//! poll's nfds is limited by RLIMIT_NOFILE (EINVAL); select clamps nfds to (about) the size of
//! the fd table and copies back only the sets it was given; select, ppoll and pselect6 write
//! the remaining time back (ignoring a fault, which only turns a restart into EINTR); a
//! zero timeout scans once and never sleeps.
//!
//! A signal ends the wait with ERESTARTNOHAND: Linux restarts poll and select only when no
//! handler ran, and reports EINTR otherwise. For poll(2) Linux restarts with the *remaining*
//! time through restart_syscall; here a restarted poll(2) starts its full timeout again
//! (ppoll/select/pselect6 restart with the remaining time, which they wrote back).
//!
//! Known limitation: files without a wait queue whose readiness can change on their own —
//! today the host stdio streams, which ask the host with a zero-timeout poll(2) — are
//! re-checked every [`UNQUEUED_RECHECK`] while a wait includes them, so a wake-up from
//! them can lag by up to that interval.
//!
//! [`FileImpl::readiness`]: crate::vfs::FileImpl::readiness
//! [`FileImpl::wait_queue`]: crate::vfs::FileImpl::wait_queue

use std::sync::Arc;
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::poll::*;
use rvisor_syscalls::flags::rlimit::RLIMIT_NOFILE;
use rvisor_syscalls::types::{PollFd, SigSet, Timespec, Timeval};
use rvisor_syscalls::{Errno, Pod};

use super::{Args, SysResult};
use crate::kernel::wait::{block_on, current_waker, WaitQueue};
use crate::kernel::Task;
use crate::vfs::FileDescription;

/// How often files without a wait queue are re-checked while a wait includes them.
pub const UNQUEUED_RECHECK: Duration = Duration::from_millis(10);

/// The events that make select report an fd readable, writable, or exceptional.
const POLLIN_SET: u32 = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const POLLOUT_SET: u32 = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const POLLEX_SET: u32 = POLLPRI;

const SIGSET_SIZE: u64 = 8;
const NSEC_PER_SEC: i64 = 1_000_000_000;

/// When a wait for readiness gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Wait until something is ready or a signal arrives.
    Never,
    /// Scan once, never sleep (a zero timeout).
    Now,
    /// Wait until this instant.
    At(Instant),
}

impl Timeout {
    /// A timeout `d` from now (zero: [`Timeout::Now`]; too far to represent: never).
    pub fn after(d: Duration) -> Timeout {
        if d.is_zero() {
            return Timeout::Now;
        }
        Instant::now().checked_add(d).map_or(Timeout::Never, Timeout::At)
    }

    /// Time left, for the write-back of select/ppoll/pselect6 (`None`: no timeout, or zero,
    /// which Linux does not update).
    fn remaining(self) -> Option<Duration> {
        match self {
            Timeout::At(d) => Some(d.saturating_duration_since(Instant::now())),
            _ => None,
        }
    }
}

/// A timespec timeout (ppoll, pselect6): EINVAL unless normalised and non-negative.
fn timespec_timeout(ts: Timespec) -> Result<Timeout, Errno> {
    if ts.tv_sec < 0 || !(0..NSEC_PER_SEC).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Timeout::after(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)))
}

/// A timeval timeout (select): microseconds beyond a second carry over, as in Linux;
/// negative values are EINVAL.
fn timeval_timeout(tv: Timeval) -> Result<Timeout, Errno> {
    let sec = tv.tv_sec.checked_add(tv.tv_usec / 1_000_000).ok_or(Errno::EINVAL)?;
    let nsec = (tv.tv_usec % 1_000_000) * 1000;
    timespec_timeout(Timespec { tv_sec: sec, tv_nsec: nsec })
}

/// Sleeps until `scan` finds something ready (returns its count), the timeout passes
/// (Ok(0)) or a signal arrives (ERESTARTNOHAND). `scan` runs first, and again after every
/// wake-up; it must recompute readiness from the files.
pub fn wait_ready(files: &[&Arc<FileDescription>], timeout: Timeout, mut scan: impl FnMut() -> usize) -> Result<usize, Errno> {
    let deadline = match timeout {
        Timeout::Now => return Ok(scan()),
        Timeout::Never => None,
        Timeout::At(d) => Some(d),
    };
    let mut queues: Vec<&WaitQueue> = files.iter().filter_map(|f| f.imp().wait_queue()).collect();
    queues.sort_by_key(|q| *q as *const WaitQueue as usize);
    queues.dedup_by(|a, b| std::ptr::eq(*a, *b));
    let recheck = files.iter().any(|f| f.imp().wait_queue().is_none());
    loop {
        let until = match (recheck, deadline) {
            (false, d) => d,
            (true, d) => {
                let tick = Instant::now() + UNQUEUED_RECHECK;
                Some(d.map_or(tick, |d| d.min(tick)))
            }
        };
        match block_on(&queues, until, || {
            let n = scan();
            (n > 0).then_some(Ok(n))
        }) {
            Ok(n) => return Ok(n),
            // A re-check tick, or the real deadline.
            Err(Errno::ETIMEDOUT) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(0);
                }
            }
            Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
            Err(e) => return Err(e),
        }
    }
}

/// What one pollfd refers to.
pub enum PollTarget {
    /// A negative fd: skipped.
    Ignored,
    /// An fd that is not open: POLLNVAL.
    Closed,
    File(Arc<FileDescription>),
}

/// The core of poll/ppoll: fills each entry's `revents` and returns how many are non-zero.
pub fn poll_targets(targets: &[PollTarget], fds: &mut [PollFd], timeout: Timeout) -> Result<usize, Errno> {
    let files: Vec<&Arc<FileDescription>> = targets
        .iter()
        .filter_map(|t| match t {
            PollTarget::File(f) => Some(f),
            _ => None,
        })
        .collect();
    wait_ready(&files, timeout, || {
        let mut ready = 0;
        for (target, p) in targets.iter().zip(fds.iter_mut()) {
            let ev = match target {
                PollTarget::Ignored => 0,
                PollTarget::Closed => POLLNVAL,
                PollTarget::File(f) => f.imp().readiness() & (p.events as u16 as u32 | POLLERR | POLLHUP),
            };
            p.revents = ev as u16 as i16;
            ready += (ev != 0) as usize;
        }
        ready
    })
}

/// The three fd sets of select, as 64-bit words (`None`: the set was not passed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdSets {
    pub read: Option<Vec<u64>>,
    pub write: Option<Vec<u64>>,
    pub except: Option<Vec<u64>>,
}

fn has_bit(set: &Option<Vec<u64>>, fd: usize) -> bool {
    set.as_ref().and_then(|s| s.get(fd / 64)).is_some_and(|w| (w >> (fd % 64)) & 1 != 0)
}

fn set_bit(set: &mut [u64], fd: usize) {
    if let Some(w) = set.get_mut(fd / 64) {
        *w |= 1 << (fd % 64);
    }
}

/// The core of select/pselect6 over fds `0..n`: EBADF if a set names an fd `lookup` does
/// not know; otherwise replaces each passed set with its ready fds and returns the number
/// of bits set (an fd ready in two sets counts twice). The sets are left alone on error.
pub fn select_sets(n: usize, sets: &mut FdSets, lookup: impl Fn(i32) -> Option<Arc<FileDescription>>, timeout: Timeout) -> Result<usize, Errno> {
    struct Watch {
        fd: usize,
        file: Arc<FileDescription>,
        read: bool,
        write: bool,
        except: bool,
    }
    let mut watched = Vec::new();
    for fd in 0..n {
        let (read, write, except) = (has_bit(&sets.read, fd), has_bit(&sets.write, fd), has_bit(&sets.except, fd));
        if !(read || write || except) {
            continue;
        }
        let file = i32::try_from(fd).ok().and_then(&lookup).ok_or(Errno::EBADF)?;
        watched.push(Watch { fd, file, read, write, except });
    }
    let words = n.div_ceil(64);
    let mut res = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let files: Vec<&Arc<FileDescription>> = watched.iter().map(|w| &w.file).collect();
    let count = wait_ready(&files, timeout, || {
        res.iter_mut().for_each(|r| r.fill(0));
        let mut count = 0;
        for w in &watched {
            let ev = w.file.imp().readiness();
            for (i, (wanted, mask)) in [(w.read, POLLIN_SET), (w.write, POLLOUT_SET), (w.except, POLLEX_SET)].into_iter().enumerate() {
                if wanted && ev & mask != 0 {
                    set_bit(&mut res[i], w.fd);
                    count += 1;
                }
            }
        }
        count
    })?;
    let [r, w, e] = res;
    for (set, result) in [(&mut sets.read, r), (&mut sets.write, w), (&mut sets.except, e)] {
        if let Some(s) = set {
            *s = result;
        }
    }
    Ok(count)
}

// ---------------------------------------------------------------------------------------
// Signal mask for ppoll/pselect6.

/// Installs the caller's temporary signal mask; returns the mask to restore.
fn set_temporary_mask(t: &mut Task, mask: SigSet) -> SigSet {
    let old = t.sigmask();
    crate::kernel::signal::set_mask(t, mask);
    old
}

/// Puts the old mask back — after the signal's delivery if the wait was interrupted (the
/// handler runs with the temporary mask, and its frame records the old one), as Linux's
/// `restore_saved_sigmask_unless(ret == -ERESTARTNOHAND)`.
fn restore_mask(t: &mut Task, old: Option<SigSet>, r: &SysResult) {
    let Some(old) = old else { return };
    if *r == Err(Errno::ERESTARTNOHAND) {
        t.saved_mask = Some(old);
    } else {
        crate::kernel::signal::set_mask(t, old);
    }
}

/// Reads a sigset argument of `size` bytes (EINVAL unless the kernel's 8).
fn read_sigmask(t: &Task, addr: u64, size: u64) -> Result<Option<SigSet>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    Ok(Some(t.read_obj(addr)?))
}

/// Writes the remaining time back to `addr` (timeval or timespec). A fault is ignored,
/// but then an interrupted call cannot be restarted transparently: it becomes EINTR.
fn write_back_time(t: &Task, addr: u64, timeout: Timeout, timeval: bool, r: SysResult) -> SysResult {
    let Some(left) = timeout.remaining().filter(|_| addr != 0) else { return r };
    let (sec, nsec) = (left.as_secs() as i64, left.subsec_nanos() as i64);
    let written = if timeval {
        t.write_obj(addr, &Timeval { tv_sec: sec, tv_usec: nsec / 1000 })
    } else {
        t.write_obj(addr, &Timespec { tv_sec: sec, tv_nsec: nsec })
    };
    match (written, r) {
        (Err(_), Err(Errno::ERESTARTNOHAND)) => Err(Errno::EINTR),
        (_, r) => r,
    }
}

// ---------------------------------------------------------------------------------------
// poll / ppoll

/// Copies the pollfd array in, polls, and copies the results back.
fn do_poll(t: &Task, addr: u64, nfds: u64, timeout: Timeout) -> SysResult {
    let nfds = nfds as u32 as u64;
    if nfds > t.rlimit(RLIMIT_NOFILE) {
        return Err(Errno::EINVAL);
    }
    const SIZE: usize = std::mem::size_of::<PollFd>();
    let mut raw = vec![0u8; nfds as usize * SIZE];
    t.mm.copy_in(addr, &mut raw)?;
    let mut fds: Vec<PollFd> = raw.chunks_exact(SIZE).filter_map(PollFd::from_bytes).collect();
    let targets: Vec<PollTarget> = fds
        .iter()
        .map(|p| match p.fd {
            fd if fd < 0 => PollTarget::Ignored,
            fd => t.file(fd).map_or(PollTarget::Closed, PollTarget::File),
        })
        .collect();
    let r = poll_targets(&targets, &mut fds, timeout);
    drop(targets);
    // Linux copies revents back whatever the outcome; a fault there is EFAULT.
    raw.clear();
    fds.iter().for_each(|p| raw.extend_from_slice(p.as_bytes()));
    t.mm.copy_out(addr, &raw)?;
    r.map(|n| n as u64)
}

/// poll(2): a negative timeout waits forever.
pub fn poll(t: &mut Task, a: &Args) -> SysResult {
    let ms = a[2] as i32;
    let timeout = if ms < 0 { Timeout::Never } else { Timeout::after(Duration::from_millis(ms as u64)) };
    do_poll(t, a[0], a[1], timeout)
}

/// ppoll(2): timespec timeout (NULL: forever), written back; an optional signal mask for
/// the duration of the wait.
pub fn ppoll(t: &mut Task, a: &Args) -> SysResult {
    let timeout = if a[2] != 0 { timespec_timeout(t.read_obj(a[2])?)? } else { Timeout::Never };
    let mask = read_sigmask(t, a[3], a[4])?;
    let old = mask.map(|m| set_temporary_mask(t, m));
    let r = do_poll(t, a[0], a[1], timeout);
    restore_mask(t, old, &r);
    write_back_time(t, a[2], timeout, false, r)
}

// ---------------------------------------------------------------------------------------
// select / pselect6

/// What select clamps nfds to, standing in for Linux's `max_fds` (the allocated size of the
/// fd table, which depends on the process's history: a child of a shell that held fd 255
/// has at least 256). The soft RLIMIT_NOFILE, or more if higher fds are open, keeps bits
/// for closed fds below it an EBADF, as a real fd table of that size would.
fn select_fd_limit(t: &Task) -> usize {
    let highest = t.fds().fds().max().map_or(0, |fd| fd as usize + 1);
    let rlimit = usize::try_from(t.rlimit(RLIMIT_NOFILE)).unwrap_or(usize::MAX);
    highest.max(rlimit).max(64)
}

fn read_set(t: &Task, addr: u64, words: usize) -> Result<Option<Vec<u64>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let mut raw = vec![0u8; words * 8];
    t.mm.copy_in(addr, &mut raw)?;
    Ok(Some(raw.chunks_exact(8).filter_map(u64::from_bytes).collect()))
}

fn write_set(t: &Task, addr: u64, set: &Option<Vec<u64>>) -> Result<(), Errno> {
    match set {
        Some(s) if addr != 0 => t.mm.copy_out(addr, &s.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()),
        _ => Ok(()),
    }
}

/// Linux's core_sys_select: sets at `inp`, `outp`, `exp` for fds below `n`.
fn do_select(t: &Task, n: u64, inp: u64, outp: u64, exp: u64, timeout: Timeout) -> SysResult {
    let n = n as i32;
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (n as usize).min(select_fd_limit(t));
    let words = n.div_ceil(64);
    let mut sets = FdSets { read: read_set(t, inp, words)?, write: read_set(t, outp, words)?, except: read_set(t, exp, words)? };
    let count = select_sets(n, &mut sets, |fd| t.file(fd).ok(), timeout)?;
    // Unlike poll, select reports a signal that arrived by the end of a fruitless wait.
    if count == 0 && current_waker().is_interrupted() {
        return Err(Errno::ERESTARTNOHAND);
    }
    write_set(t, inp, &sets.read)?;
    write_set(t, outp, &sets.write)?;
    write_set(t, exp, &sets.except)?;
    Ok(count as u64)
}

/// select(2): timeval timeout (NULL: forever), updated with the time left.
pub fn select(t: &mut Task, a: &Args) -> SysResult {
    let timeout = if a[4] != 0 { timeval_timeout(t.read_obj(a[4])?)? } else { Timeout::Never };
    let r = do_select(t, a[0], a[1], a[2], a[3], timeout);
    write_back_time(t, a[4], timeout, true, r)
}

/// pselect6(2): timespec timeout, and a sixth argument pointing at `{ sigset ptr, size }`.
pub fn pselect6(t: &mut Task, a: &Args) -> SysResult {
    let timeout = if a[4] != 0 { timespec_timeout(t.read_obj(a[4])?)? } else { Timeout::Never };
    let mask = if a[5] != 0 {
        let pack: [u64; 2] = [t.read_obj(a[5])?, t.read_obj(a[5].wrapping_add(8))?];
        read_sigmask(t, pack[0], pack[1])?
    } else {
        None
    };
    let old = mask.map(|m| set_temporary_mask(t, m));
    let r = do_select(t, a[0], a[1], a[2], a[3], timeout);
    restore_mask(t, old, &r);
    write_back_time(t, a[4], timeout, false, r)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{FromRawFd, OwnedFd};

    use rvisor_syscalls::flags::open::O_NONBLOCK;

    use super::*;
    use crate::kernel::wait::current_waker;
    use crate::vfs::host::HostStream;
    use crate::vfs::pipe::new_pipe;

    fn pfd(fd: i32, events: u32) -> PollFd {
        PollFd { fd, events: events as i16, revents: 0 }
    }

    fn ms(n: u64) -> Timeout {
        Timeout::after(Duration::from_millis(n))
    }

    use crate::kernel::wait::test_support::spawn_with_waker as spawn;

    #[test]
    fn poll_reports_pipe_readiness_transitions() {
        let (r, w) = new_pipe(O_NONBLOCK);
        let targets = [PollTarget::File(r.clone()), PollTarget::File(w.clone())];
        let mut fds = [pfd(3, POLLIN), pfd(4, POLLOUT)];
        assert_eq!(poll_targets(&targets, &mut fds, Timeout::Now), Ok(1));
        assert_eq!((fds[0].revents, fds[1].revents), (0, POLLOUT as i16), "POLLWRNORM was not asked for");
        w.write(b"x").unwrap();
        assert_eq!(poll_targets(&targets, &mut fds, Timeout::Now), Ok(2));
        assert_eq!(fds[0].revents, POLLIN as i16);
        drop(targets);
        drop(w);
        let targets = [PollTarget::File(r.clone())];
        let mut fds = [pfd(3, 0)];
        assert_eq!(poll_targets(&targets, &mut fds, Timeout::Now), Ok(1));
        assert_eq!(fds[0].revents, POLLHUP as i16, "POLLHUP is reported unasked");
    }

    #[test]
    fn negative_fds_are_skipped_and_closed_fds_are_pollnval() {
        let targets = [PollTarget::Ignored, PollTarget::Closed];
        let mut fds = [pfd(-1, POLLIN), pfd(9, POLLIN)];
        assert_eq!(poll_targets(&targets, &mut fds, Timeout::Never), Ok(1), "POLLNVAL ends the wait");
        assert_eq!((fds[0].revents, fds[1].revents), (0, POLLNVAL as i16));
    }

    #[test]
    fn poll_times_out_with_zero_ready() {
        let (r, _w) = new_pipe(0);
        let targets = [PollTarget::File(r)];
        let mut fds = [pfd(3, POLLIN)];
        let start = Instant::now();
        assert_eq!(poll_targets(&targets, &mut fds, ms(30)), Ok(0));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(fds[0].revents, 0);
        // No fds at all: a plain sleep.
        assert_eq!(poll_targets(&[], &mut [], ms(5)), Ok(0));
    }

    #[test]
    fn a_write_on_another_thread_wakes_a_blocked_poll() {
        let (r, w) = new_pipe(0);
        let (_, h) = spawn(move || {
            let targets = [PollTarget::File(r)];
            let mut fds = [pfd(3, POLLIN)];
            let n = poll_targets(&targets, &mut fds, Timeout::Never);
            (n, fds[0].revents)
        });
        w.write(b"wake").unwrap();
        assert_eq!(h.join().unwrap(), (Ok(1), (POLLIN) as i16));
    }

    #[test]
    fn a_signal_ends_the_wait_with_erestartnohand_but_not_a_zero_timeout_scan() {
        let (r, _w) = new_pipe(0);
        let r2 = r.clone();
        let (waker, h) = spawn(move || {
            let targets = [PollTarget::File(r2)];
            poll_targets(&targets, &mut [pfd(3, POLLIN)], Timeout::Never)
        });
        waker.interrupt();
        assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTNOHAND));
        let (_, h) = spawn(move || {
            current_waker().interrupt();
            let targets = [PollTarget::File(r)];
            poll_targets(&targets, &mut [pfd(3, POLLIN)], Timeout::Now)
        });
        assert_eq!(h.join().unwrap(), Ok(0));
    }

    #[test]
    fn select_counts_bits_and_rewrites_only_the_sets_given() {
        let (r, w) = new_pipe(O_NONBLOCK);
        w.write(b"data").unwrap();
        let files = [(3, r.clone()), (4, w.clone())];
        let lookup = |fd: i32| files.iter().find(|(n, _)| *n == fd).map(|(_, f)| f.clone());
        // fd 3 readable; fd 4 writable; fd 3 asked for writing too (not writable: a read end).
        let mut sets = FdSets { read: Some(vec![1 << 3]), write: Some(vec![(1 << 3) | (1 << 4)]), except: None };
        assert_eq!(select_sets(5, &mut sets, lookup, Timeout::Now), Ok(2));
        assert_eq!(sets, FdSets { read: Some(vec![1 << 3]), write: Some(vec![1 << 4]), except: None });
        // A write end without a reader is both readable and writable to select (POLLERR).
        drop(files);
        drop(r);
        let files = [(4, w.clone())];
        let lookup = |fd: i32| files.iter().find(|(n, _)| *n == fd).map(|(_, f)| f.clone());
        let mut sets = FdSets { read: Some(vec![1 << 4]), write: Some(vec![1 << 4]), except: Some(vec![1 << 4]) };
        assert_eq!(select_sets(5, &mut sets, lookup, Timeout::Now), Ok(2));
        assert_eq!(sets.except, Some(vec![0]));
    }

    #[test]
    fn select_rejects_unknown_fds_and_times_out_with_empty_sets() {
        let (r, _w) = new_pipe(0);
        let lookup = |fd: i32| (fd == 3).then(|| r.clone());
        let mut sets = FdSets { read: Some(vec![(1 << 3) | (1 << 7)]), ..Default::default() };
        assert_eq!(select_sets(64, &mut sets, lookup, Timeout::Now), Err(Errno::EBADF));
        assert_eq!(sets.read, Some(vec![(1 << 3) | (1 << 7)]), "untouched on error");
        // Bits at or above nfds are not looked at.
        assert_eq!(select_sets(4, &mut sets, lookup, ms(20)), Ok(0));
        assert_eq!(sets.read, Some(vec![0]));
    }

    #[test]
    fn timeouts_are_validated_and_normalised_like_linux() {
        assert_eq!(timespec_timeout(Timespec { tv_sec: 0, tv_nsec: 0 }), Ok(Timeout::Now));
        assert_eq!(timespec_timeout(Timespec { tv_sec: -1, tv_nsec: 0 }), Err(Errno::EINVAL));
        assert_eq!(timespec_timeout(Timespec { tv_sec: 0, tv_nsec: NSEC_PER_SEC }), Err(Errno::EINVAL));
        assert_eq!(timeval_timeout(Timeval { tv_sec: 0, tv_usec: -1 }), Err(Errno::EINVAL));
        assert!(matches!(timeval_timeout(Timeval { tv_sec: 0, tv_usec: 2_500_000 }), Ok(Timeout::At(_))), "usec carry");
        assert_eq!(timespec_timeout(Timespec { tv_sec: i64::MAX, tv_nsec: 0 }), Ok(Timeout::Never));
        let left = ms(10_000).remaining().unwrap();
        assert!(left <= Duration::from_secs(10) && left > Duration::from_secs(9));
        assert_eq!(Timeout::Never.remaining(), None);
    }

    #[test]
    fn host_streams_without_a_wait_queue_are_rechecked_while_waiting() {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` is a valid out-array of two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just created and are owned by nothing else.
        let (hr, hw) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let host = FileDescription::new(Arc::new(HostStream::new(hr)), None, 0);
        assert_eq!(host.imp().readiness() & POLLIN, 0);
        let (_, h) = spawn(move || {
            let targets = [PollTarget::File(host)];
            let mut p = [pfd(0, POLLIN)];
            (poll_targets(&targets, &mut p, ms(10_000)), p[0].revents)
        });
        let mut writer = std::fs::File::from(hw);
        std::io::Write::write_all(&mut writer, b"x").unwrap();
        assert_eq!(h.join().unwrap(), (Ok(1), POLLIN as i16));
    }
}
