//! epoll: an interest list of (fd, open file description) entries and their ready list.
//!
//! An entry holds a `Weak` reference to its file description, so, as in Linux, it vanishes
//! when the description's last reference goes (closing one of several dups does not remove
//! it). Readiness comes from [`FileImpl::readiness`]; nothing calls back into epoll when a
//! file changes, so the ready list is computed on demand by [`Epoll::collect`]:
//!
//! - level-triggered entries are reported whenever `readiness & events` is non-zero;
//! - edge-triggered entries are reported when they are ready *and* their file's wait queue
//!   was notified since the last report (or since ADD/MOD). Each entry keeps a private
//!   [`Waker`] registered on the file's queue as its "notified" flag, which
//!   [`take_notification`] reads and clears. This matches Linux, where the queue callback
//!   puts the entry on the ready list, up to spurious reports (a notification that did not
//!   change readiness is reported again), which edge-triggered users tolerate anyway.
//!   Files without a wait queue (host stdio) fall back to "readiness gained a bit since the
//!   last report" — an approximation that can miss a drain-and-refill between two waits.
//! - EPOLLONESHOT disables an entry after one report until EPOLL_CTL_MOD re-arms it.
//!
//! Ready entries are reported in the order they were first seen ready, and a reported
//! level-triggered entry moves to the back, as on Linux's ready list, so a small
//! `maxevents` rotates through the ready files.
//!
//! Nesting: an epoll file is pollable (POLLIN while an entry is ready) but has no wait
//! queue of its own, so waits on it re-check periodically. Adding an epoll file that
//! (transitively) watches this one is ELOOP, which also keeps the lock order acyclic.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rvisor_syscalls::flags::poll::{POLLIN, POLLRDNORM};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::eventfd::anon_inode_stat;
use super::file::{FileDescription, FileImpl};
use crate::kernel::wait::{WaitQueue, Waker};

// Guest ABI (<sys/epoll.h>); candidates for `rvisor_syscalls::flags::epoll`.
pub const EPOLL_CTL_ADD: u32 = 1;
pub const EPOLL_CTL_DEL: u32 = 2;
pub const EPOLL_CTL_MOD: u32 = 3;
pub const EPOLLIN: u32 = 0x001;
pub const EPOLLPRI: u32 = 0x002;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLRDNORM: u32 = 0x040;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// Flags that are not events (Linux's EP_PRIVATE_BITS).
pub const EP_PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// What EPOLLEXCLUSIVE may be combined with.
const EPOLLEXCLUSIVE_OK_BITS: u32 = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// Linux's EP_MAX_NESTS.
const MAX_NESTS: usize = 4;

/// Reads and clears an entry's notification flag (a waker no task sleeps on).
fn take_notification(w: &Arc<Waker>) -> bool {
    w.take_woken()
}

/// One watched (fd, file description) pair.
struct Entry {
    fd: i32,
    file: Weak<FileDescription>,
    /// Requested events plus EPOLLERR|EPOLLHUP and the EP_PRIVATE_BITS flags; only the
    /// flags after a EPOLLONESHOT report.
    events: u32,
    data: u64,
    /// Registered on the file's wait queue: woken when its readiness may have changed.
    notifier: Option<Arc<Waker>>,
    /// Edge-triggered: notified (or added/modified) since the last report.
    pending: bool,
    /// Edge-triggered without a wait queue: the events reported last.
    last: u32,
    /// Position on the ready list (`None`: not on it).
    ready_seq: Option<u64>,
}

impl Entry {
    fn key(&self) -> (i32, usize) {
        (self.fd, self.file.as_ptr() as usize)
    }

    /// The events this entry would report now. Absorbs queue notifications into `pending`.
    fn candidate(&mut self, file: &FileDescription) -> (u32, u32) {
        if self.events & !EP_PRIVATE_BITS == 0 {
            return (0, 0);
        }
        if let Some(n) = &self.notifier {
            if take_notification(n) {
                self.pending = true;
            }
        }
        let ready = file.imp().readiness() & self.events & !EP_PRIVATE_BITS;
        let report = match (self.events & EPOLLET != 0, self.notifier.is_some()) {
            (false, _) => ready,
            (true, true) if self.pending => ready,
            (true, true) => 0,
            (true, false) => {
                if ready & !self.last != 0 {
                    ready
                } else {
                    0
                }
            }
        };
        (report, ready)
    }

    fn unregister(&self) {
        if let (Some(n), Some(f)) = (&self.notifier, self.file.upgrade()) {
            if let Some(q) = f.imp().wait_queue() {
                q.remove(n);
            }
        }
    }
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    next_seq: u64,
    /// Bumped by every change of the interest list (blocked waits re-collect their queues).
    generation: u64,
}

/// An epoll instance (the [`FileImpl`] behind an epoll fd).
pub struct Epoll {
    state: Mutex<State>,
    /// Notified on every change of the interest list.
    ctl_queue: WaitQueue,
    uid: u32,
    gid: u32,
}

/// Serialises adding epoll files to epoll files, so the loop check cannot race (Linux's
/// epnested_mutex).
static NESTING: Mutex<()> = Mutex::new(());

/// The epoll instance behind `file`, if it is an epoll file.
pub fn as_epoll(file: &FileDescription) -> Option<Arc<Epoll>> {
    file.imp().clone().into_any()?.downcast::<Epoll>().ok()
}

impl Epoll {
    /// A new, empty epoll instance.
    pub fn new(uid: u32, gid: u32) -> Arc<Epoll> {
        Arc::new(Epoll { state: Mutex::new(State::default()), ctl_queue: WaitQueue::new(), uid, gid })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The queue notified whenever the interest list changes.
    pub fn ctl_queue(&self) -> &WaitQueue {
        &self.ctl_queue
    }

    /// The interest list's generation (changes with every ADD/MOD/DEL).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The live watched files and the generation they belong to.
    pub fn watched(&self) -> (Vec<Arc<FileDescription>>, u64) {
        let st = self.lock();
        (st.entries.iter().filter_map(|e| e.file.upgrade()).collect(), st.generation)
    }

    /// Whether `other` is this instance or is watched by it, directly or through nested
    /// epolls (`depth` levels deep at most).
    fn reaches(&self, other: &Epoll, depth: usize) -> Result<bool, Errno> {
        if std::ptr::eq(self, other) {
            return Ok(true);
        }
        if depth > MAX_NESTS {
            return Err(Errno::EINVAL);
        }
        let files: Vec<_> = self.lock().entries.iter().filter_map(|e| e.file.upgrade()).collect();
        for f in files {
            if let Some(inner) = as_epoll(&f) {
                if inner.reaches(other, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// epoll_ctl(2) on this instance for `fd` referring to `file`; `event` is the
    /// (events, data) pair of ADD and MOD. `file` must be pollable (the caller checks).
    pub fn ctl(&self, op: u32, fd: i32, file: &Arc<FileDescription>, event: Option<(u32, u64)>) -> Result<(), Errno> {
        // EPOLLWAKEUP needs CAP_BLOCK_SUSPEND; without it Linux silently drops the flag.
        let events = event.map(|(e, _)| e & !EPOLLWAKEUP);
        let target_epoll = as_epoll(file);
        if let Some(inner) = &target_epoll {
            if std::ptr::eq(Arc::as_ptr(inner), self) {
                return Err(Errno::EINVAL);
            }
        }
        if let Some(ev) = events.filter(|ev| ev & EPOLLEXCLUSIVE != 0) {
            if op == EPOLL_CTL_MOD || (op == EPOLL_CTL_ADD && (target_epoll.is_some() || ev & !EPOLLEXCLUSIVE_OK_BITS != 0)) {
                return Err(Errno::EINVAL);
            }
        }
        let _nesting = match (&target_epoll, op) {
            (Some(inner), EPOLL_CTL_ADD) => {
                let guard = NESTING.lock().unwrap_or_else(|p| p.into_inner());
                if inner.reaches(self, 1)? {
                    return Err(Errno::ELOOP);
                }
                Some(guard)
            }
            _ => None,
        };
        let key = (fd, Arc::as_ptr(file) as usize);
        let mut st = self.lock();
        st.entries.retain(|e| {
            let live = e.file.strong_count() > 0;
            if !live {
                e.unregister();
            }
            live
        });
        let pos = st.entries.iter().position(|e| e.key() == key);
        match (op, pos, event) {
            (EPOLL_CTL_ADD, Some(_), _) => return Err(Errno::EEXIST),
            (EPOLL_CTL_ADD, None, Some((_, data))) => {
                let notifier = file.imp().wait_queue().map(|q| {
                    let n = Waker::new();
                    q.add(&n);
                    n
                });
                let events = events.unwrap_or(0) | EPOLLERR | EPOLLHUP;
                st.entries.push(Entry { fd, file: Arc::downgrade(file), events, data, notifier, pending: true, last: 0, ready_seq: None });
            }
            (EPOLL_CTL_DEL, Some(i), _) => {
                let e = st.entries.remove(i);
                e.unregister();
            }
            (EPOLL_CTL_MOD, Some(i), Some((_, data))) => {
                let e = &mut st.entries[i];
                if e.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                e.events = events.unwrap_or(0) | EPOLLERR | EPOLLHUP;
                e.data = data;
                e.pending = true;
                e.last = 0;
            }
            (EPOLL_CTL_DEL | EPOLL_CTL_MOD, None, _) => return Err(Errno::ENOENT),
            _ => return Err(Errno::EINVAL),
        }
        st.generation = st.generation.wrapping_add(1);
        drop(st);
        self.ctl_queue.notify_all();
        Ok(())
    }

    /// Takes up to `max` ready events (events, data), applying edge-triggered and
    /// one-shot bookkeeping for those reported.
    pub fn collect(&self, max: usize) -> Vec<(u32, u64)> {
        let mut guard = self.lock();
        let State { entries, next_seq, .. } = &mut *guard;
        let mut ready: Vec<(u64, usize, u32, u32)> = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let e = &mut entries[i];
            let Some(file) = e.file.upgrade() else {
                entries.remove(i).unregister();
                continue;
            };
            let (report, now) = e.candidate(&file);
            if report == 0 {
                e.ready_seq = None;
                e.pending = false;
                e.last &= now;
            } else {
                let seq = *e.ready_seq.get_or_insert_with(|| {
                    *next_seq += 1;
                    *next_seq
                });
                ready.push((seq, i, report, now));
            }
            i += 1;
        }
        ready.sort_unstable();
        ready.truncate(max);
        let mut out = Vec::with_capacity(ready.len());
        for (_, i, report, now) in ready {
            let e = &mut entries[i];
            out.push((report, e.data));
            if e.events & EPOLLONESHOT != 0 {
                e.events &= EP_PRIVATE_BITS;
                e.ready_seq = None;
            } else if e.events & EPOLLET != 0 {
                e.ready_seq = None;
                e.pending = false;
                e.last = now;
            } else {
                *next_seq += 1;
                e.ready_seq = Some(*next_seq);
            }
        }
        out
    }

    /// Whether any entry would be reported now (no bookkeeping beyond absorbing queue
    /// notifications).
    fn any_ready(&self) -> bool {
        let mut st = self.lock();
        st.entries.iter_mut().any(|e| e.file.upgrade().is_some_and(|f| e.candidate(&f).0 != 0))
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for e in &st.entries {
            e.unregister();
        }
    }
}

impl FileImpl for Epoll {
    fn anon_name(&self) -> Option<&'static str> {
        Some("[eventpoll]")
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }

    fn read(&self, _buf: &mut [u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _buf: &[u8], _offset: u64, _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon_inode_stat(self.uid, self.gid))
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn seek(&self, _offset: i64, _whence: u32) -> Result<u64, Errno> {
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        if self.any_ready() {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::eventfd::EventFd;
    use crate::vfs::pipe::new_pipe;
    use rvisor_syscalls::flags::open::{O_NONBLOCK, O_RDWR};

    fn efd() -> Arc<FileDescription> {
        FileDescription::new(Arc::new(EventFd::new(0, false, 0, 0)), None, O_RDWR | O_NONBLOCK)
    }

    fn add(ep: &Epoll, fd: i32, f: &Arc<FileDescription>, ev: u32) {
        ep.ctl(EPOLL_CTL_ADD, fd, f, Some((ev, fd as u64))).unwrap();
    }

    #[test]
    fn take_notification_sees_each_queue_notification_once() {
        let q = WaitQueue::new();
        let n = Waker::new();
        q.add(&n);
        assert!(!take_notification(&n));
        q.notify_all();
        assert!(take_notification(&n));
        assert!(!take_notification(&n));
    }

    #[test]
    fn epoll_level_triggered_reports_every_wait_until_drained() {
        let ep = Epoll::new(0, 0);
        let (r, w) = new_pipe(O_NONBLOCK);
        add(&ep, 3, &r, EPOLLIN);
        assert!(ep.collect(8).is_empty());
        w.write(b"x").unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 3)]);
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 3)]);
        r.read(&mut [0u8; 4]).unwrap();
        assert!(ep.collect(8).is_empty());
    }

    #[test]
    fn epoll_edge_triggered_reports_once_per_change() {
        let ep = Epoll::new(0, 0);
        let e = efd();
        add(&ep, 5, &e, EPOLLIN | EPOLLET);
        assert!(ep.collect(8).is_empty());
        e.write(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 5)]);
        assert!(ep.collect(8).is_empty(), "no new edge");
        e.write(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 5)], "a write while still readable is an edge");
        // Drained and refilled between two waits: still an edge.
        e.read(&mut [0u8; 8]).unwrap();
        e.write(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 5)]);
    }

    #[test]
    fn epoll_oneshot_disables_until_mod_and_ctl_errors_match_linux() {
        let ep = Epoll::new(0, 0);
        let e = efd();
        e.write(&1u64.to_ne_bytes()).unwrap();
        add(&ep, 5, &e, EPOLLIN | EPOLLONESHOT);
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 5, &e, Some((EPOLLIN, 0))), Err(Errno::EEXIST));
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 5)]);
        assert!(ep.collect(8).is_empty());
        ep.ctl(EPOLL_CTL_MOD, 5, &e, Some((EPOLLIN | EPOLLOUT, 9))).unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN | EPOLLOUT, 9)]);
        ep.ctl(EPOLL_CTL_DEL, 5, &e, None).unwrap();
        assert_eq!(ep.ctl(EPOLL_CTL_DEL, 5, &e, None), Err(Errno::ENOENT));
        assert_eq!(ep.ctl(EPOLL_CTL_MOD, 5, &e, Some((EPOLLIN, 0))), Err(Errno::ENOENT));
        assert_eq!(ep.ctl(EPOLL_CTL_MOD, 5, &e, Some((EPOLLIN | EPOLLEXCLUSIVE, 0))), Err(Errno::EINVAL));
    }

    #[test]
    fn epoll_ready_list_rotates_and_respects_maxevents() {
        let ep = Epoll::new(0, 0);
        let (a, b) = (efd(), efd());
        add(&ep, 3, &a, EPOLLOUT);
        add(&ep, 4, &b, EPOLLOUT);
        assert_eq!(ep.collect(1), vec![(EPOLLOUT, 3)]);
        assert_eq!(ep.collect(1), vec![(EPOLLOUT, 4)]);
        assert_eq!(ep.collect(1), vec![(EPOLLOUT, 3)]);
    }

    #[test]
    fn epoll_entries_vanish_with_their_file_and_nesting_is_checked() {
        let ep = Epoll::new(0, 0);
        let e = efd();
        add(&ep, 3, &e, EPOLLOUT);
        drop(e);
        assert!(ep.collect(8).is_empty());
        assert_eq!(ep.watched().0.len(), 0);
        let inner = Epoll::new(0, 0);
        let inner_file = FileDescription::new(inner.clone(), None, O_RDWR);
        let outer_file = FileDescription::new(ep.clone(), None, O_RDWR);
        assert!(as_epoll(&inner_file).is_some());
        assert_eq!(ep.ctl(EPOLL_CTL_ADD, 4, &outer_file, Some((EPOLLIN, 0))), Err(Errno::EINVAL), "itself");
        add(&ep, 4, &inner_file, EPOLLIN);
        assert_eq!(inner.ctl(EPOLL_CTL_ADD, 5, &outer_file, Some((EPOLLIN, 0))), Err(Errno::ELOOP));
        let x = efd();
        x.write(&1u64.to_ne_bytes()).unwrap();
        add(&inner, 6, &x, EPOLLIN);
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 4)], "the nested epoll is readable");
    }
}
