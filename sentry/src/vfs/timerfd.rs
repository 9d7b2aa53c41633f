//! timerfd(2): a timer whose expirations are read as a 64-bit count.
//!
//! The expiration count is computed from the clock when it is looked at (read, poll,
//! gettime), so an armed timer costs nothing while nobody looks. Only the moment the count
//! goes from zero to non-zero must wake someone (a blocked read, poll, epoll): for that
//! one sentry thread ([`wake_at`]) keeps a heap of deadlines and notifies the timer's wait
//! queue when one passes. A timer asks for a wake-up when armed and after each read that
//! leaves it armed, so a periodic timer nobody reads costs one wake-up in all.
//!
//! Deadlines are host `Instant`s (CLOCK_MONOTONIC); the guest's clocks are the host's, so a
//! CLOCK_REALTIME absolute time is turned into a monotonic deadline when the timer is set
//! (the sandbox cannot set the clock, so TFD_TIMER_CANCEL_ON_SET never cancels).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLIN, POLLRDNORM};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::eventfd::anon_inode_stat;
use super::file::FileImpl;
use crate::kernel::wait::{block_on, WaitQueue};

#[derive(Default)]
struct State {
    /// The next expiration; `None` when disarmed.
    next: Option<Instant>,
    /// Zero for a one-shot timer.
    interval: Duration,
    /// Expirations not yet read.
    ticks: u64,
}

impl State {
    /// Counts the expirations up to `now`.
    fn update(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        if self.interval.is_zero() {
            self.ticks = self.ticks.saturating_add(1);
            self.next = None;
            return;
        }
        let step = self.interval.as_nanos();
        let n = (now - next).as_nanos() / step + 1;
        self.ticks = self
            .ticks
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        let advance = n.saturating_mul(step);
        self.next = u64::try_from(advance)
            .ok()
            .and_then(|ns| next.checked_add(Duration::from_nanos(ns)));
    }
}

/// A timerfd.
pub struct TimerFd {
    clock: i32,
    state: Mutex<State>,
    queue: WaitQueue,
    uid: u32,
    gid: u32,
}

impl TimerFd {
    pub fn new(clock: i32, uid: u32, gid: u32) -> Arc<TimerFd> {
        Arc::new(TimerFd {
            clock,
            state: Mutex::new(State::default()),
            queue: WaitQueue::new(),
            uid,
            gid,
        })
    }

    /// The clock the timer was created on.
    pub fn clock(&self) -> i32 {
        self.clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms the timer to first expire at `first` (`None`: disarm) and then every
    /// `interval`; unread expirations are dropped. Returns the old setting as
    /// [`Self::get`] does.
    pub fn set(
        self: &Arc<Self>,
        first: Option<Instant>,
        interval: Duration,
    ) -> (Duration, Duration) {
        let old = self.get();
        {
            let mut st = self.lock();
            st.ticks = 0;
            st.next = first;
            st.interval = interval;
        }
        self.queue.notify_all();
        if let Some(at) = first {
            wake_at(at, Arc::downgrade(self));
        }
        old
    }

    /// The time until the next expiration (zero when disarmed) and the interval.
    pub fn get(&self) -> (Duration, Duration) {
        let now = Instant::now();
        let mut st = self.lock();
        st.update(now);
        let remaining = st.next.map(|n| {
            n.saturating_duration_since(now)
                .max(Duration::from_nanos(1))
        });
        (remaining.unwrap_or_default(), st.interval)
    }

    /// Takes the expiration count; `None` while it is zero.
    fn take(self: &Arc<Self>) -> Option<u64> {
        let mut st = self.lock();
        st.update(Instant::now());
        if st.ticks == 0 {
            return None;
        }
        let n = std::mem::take(&mut st.ticks);
        let next = st.next;
        drop(st);
        if let Some(at) = next {
            wake_at(at, Arc::downgrade(self));
        }
        Some(n)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock().next
    }

    fn read_count(self: &Arc<Self>, nonblock: bool) -> Result<u64, Errno> {
        if let Some(n) = self.take() {
            return Ok(n);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        loop {
            // The deadline is a safety net: the wake-up thread notifies the queue too.
            match block_on(&[&self.queue], self.next_deadline(), || self.take().map(Ok)) {
                Err(Errno::ETIMEDOUT) => continue,
                r => return r,
            }
        }
    }
}

/// The file side of a timerfd (the `Arc` is needed to schedule wake-ups from `read`).
pub struct TimerFile(pub Arc<TimerFd>);

impl FileImpl for TimerFile {
    fn anon_name(&self) -> Option<&'static str> {
        Some("[timerfd]")
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let n = self.0.read_count(flags & O_NONBLOCK != 0)?;
        buf[..8].copy_from_slice(&n.to_ne_bytes());
        Ok(8)
    }

    fn write(&self, _buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon_inode_stat(self.0.uid, self.0.gid))
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn seek(&self, _offset: i64, _whence: u32) -> Result<u64, Errno> {
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        let mut st = self.0.lock();
        st.update(Instant::now());
        if st.ticks > 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.queue)
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self.0.clone())
    }
}

// ---------------------------------------------------------------------------------------
// The wake-up thread

struct Entry {
    at: Instant,
    seq: u64,
    timer: Weak<TimerFd>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Wakeups {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    started: bool,
}

type Shared = (Mutex<Wakeups>, Condvar);

fn shared() -> &'static Arc<Shared> {
    static S: OnceLock<Arc<Shared>> = OnceLock::new();
    S.get_or_init(|| Arc::new((Mutex::new(Wakeups::default()), Condvar::new())))
}

/// Notifies `timer`'s queue at `at`. Stale requests (the timer was re-armed or closed) only
/// cause a spurious wake-up; each timer has at most a few outstanding, since it asks again
/// only after a read or a set.
fn wake_at(at: Instant, timer: Weak<TimerFd>) {
    let s = shared();
    let mut w = s.0.lock().unwrap_or_else(|p| p.into_inner());
    w.seq += 1;
    let seq = w.seq;
    w.heap.push(Reverse(Entry { at, seq, timer }));
    if !w.started {
        let s2 = s.clone();
        if std::thread::Builder::new()
            .name("timerfd".into())
            .spawn(move || wake_thread(s2))
            .is_ok()
        {
            w.started = true;
        }
    }
    s.1.notify_all();
}

fn wake_thread(s: Arc<Shared>) {
    let (lock, cv) = &*s;
    let mut w = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while w.heap.peek().is_some_and(|e| e.0.at <= now) {
            if let Some(Reverse(e)) = w.heap.pop() {
                due.push(e.timer);
            }
        }
        if !due.is_empty() {
            drop(w);
            for t in due.iter().filter_map(Weak::upgrade) {
                t.queue.notify_all();
            }
            w = lock.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        w = match w.heap.peek().map(|e| e.0.at) {
            None => cv.wait(w).unwrap_or_else(|p| p.into_inner()),
            Some(at) => {
                cv.wait_timeout(w, at.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> (Arc<TimerFd>, TimerFile) {
        let t = TimerFd::new(1, 0, 0);
        (t.clone(), TimerFile(t))
    }

    #[test]
    fn a_disarmed_timer_never_expires_and_short_reads_are_einval() {
        let (_, f) = file();
        assert_eq!(f.read(&mut [0u8; 8], 0, O_NONBLOCK), Err(Errno::EAGAIN));
        assert_eq!(f.read(&mut [0u8; 4], 0, O_NONBLOCK), Err(Errno::EINVAL));
        assert_eq!(f.readiness(), 0);
    }

    #[test]
    fn a_periodic_timer_counts_every_interval_that_passed() {
        let mut st = State {
            next: Some(Instant::now()),
            interval: Duration::from_millis(10),
            ticks: 0,
        };
        let start = st.next.unwrap();
        st.update(start + Duration::from_millis(35));
        assert_eq!(st.ticks, 4);
        assert_eq!(st.next, Some(start + Duration::from_millis(40)));
    }

    #[test]
    fn a_blocked_read_is_woken_at_the_deadline_and_gettime_reports_the_interval() {
        let (t, f) = file();
        t.set(
            Some(Instant::now() + Duration::from_millis(20)),
            Duration::from_secs(5),
        );
        let (rem, int) = t.get();
        assert!(rem > Duration::ZERO && rem <= Duration::from_millis(20));
        assert_eq!(int, Duration::from_secs(5));
        let mut b = [0u8; 8];
        assert_eq!(f.read(&mut b, 0, 0), Ok(8));
        assert_eq!(u64::from_ne_bytes(b), 1);
        assert_eq!(f.readiness(), 0);
    }

    #[test]
    fn the_wake_thread_notifies_the_queue_for_pollers() {
        let (t, f) = file();
        t.set(
            Some(Instant::now() + Duration::from_millis(10)),
            Duration::ZERO,
        );
        let r = block_on(&[f.wait_queue().unwrap()], None, || {
            (f.readiness() != 0).then_some(Ok(()))
        });
        assert_eq!(r, Ok(()));
        assert_eq!(t.get(), (Duration::ZERO, Duration::ZERO));
    }
}
