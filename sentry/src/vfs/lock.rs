//! Advisory file locks: POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK), open file
//! description ("OFD") record locks (F_OFD_*) and whole-file flock(2) locks.
//!
//! Locks belong to the file (keyed by device and inode number), so every process of the
//! sandbox that opens the same file sees the same locks. Record locks of both kinds share
//! one list per file and conflict with each other; flock locks are a separate list.
//!
//! - A POSIX lock is owned by a process (thread group): the process's own locks never
//!   conflict with each other, a new lock over an old one of the same process replaces it
//!   (splitting or merging ranges), and all of them go when the process closes *any* fd of
//!   the file or exits. fork does not inherit them; execve keeps them.
//! - An OFD lock and a flock lock are owned by an open file description: shared through
//!   dup and fork, released when the last fd of the description closes
//!   ([`description_closed`], called when a [`super::FileDescription`] is dropped).
//!
//! Blocked lockers wait on one queue, woken by every release; a POSIX waiter records which
//! process it waits for, so a wait that would close a cycle fails with EDEADLK.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rvisor_syscalls::Errno;

use crate::kernel::wait::{block_on, WaitQueue};

/// The file a lock is on: `(st_dev, st_ino)`.
pub type FileKey = (u64, u64);

/// The largest offset a record lock covers (Linux's OFFSET_MAX).
pub const OFFSET_MAX: i64 = i64::MAX;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A process (sandbox thread-group id): POSIX record locks.
    Process(i32),
    /// An open file description (its address while it lives): OFD record locks and flock.
    Description(usize),
}

/// Shared (read) or exclusive (write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Read,
    Write,
}

/// A record lock over the bytes `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub owner: Owner,
    /// The pid F_GETLK reports (the owning process for POSIX locks, -1 for OFD locks).
    pub pid: i32,
    pub kind: LockKind,
    pub start: i64,
    pub end: i64,
}

impl Record {
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start <= end && start <= self.end
    }

    fn conflicts(&self, owner: Owner, kind: LockKind, start: i64, end: i64) -> bool {
        self.owner != owner && self.overlaps(start, end) && (self.kind == LockKind::Write || kind == LockKind::Write)
    }
}

#[derive(Default)]
struct FileLocks {
    records: Vec<Record>,
    flocks: Vec<(usize, LockKind)>,
}

impl FileLocks {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.flocks.is_empty()
    }
}

/// A POSIX locker blocked on a lock of another process (for deadlock detection).
struct Waiter {
    tid: i32,
    waiter: i32,
    blocker: i32,
}

#[derive(Default)]
struct Table {
    files: HashMap<FileKey, FileLocks>,
    waiters: Vec<Waiter>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
/// Woken whenever a lock is released or shrunk.
static RELEASED: std::sync::LazyLock<WaitQueue> = std::sync::LazyLock::new(WaitQueue::new);
/// How many descriptions have ever held (and may still hold) OFD or flock locks: when
/// none, dropping a description need not take the table lock.
static DESC_LOCKERS: AtomicUsize = AtomicUsize::new(0);
/// Longest chain of waiters followed when looking for a deadlock (as Linux).
const MAX_DEADLOCK_STEPS: usize = 10;

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    let mut g: MutexGuard<'_, Option<Table>> = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Table::default))
}

impl Table {
    fn first_conflict(&self, key: FileKey, owner: Owner, kind: LockKind, start: i64, end: i64) -> Option<Record> {
        self.files.get(&key)?.records.iter().find(|r| r.conflicts(owner, kind, start, end)).copied()
    }

    /// Replaces `owner`'s locks over `start..=end` by `kind` (`None`: unlocks), merging
    /// with the owner's adjacent or overlapping locks of the same kind.
    fn apply(&mut self, key: FileKey, owner: Owner, pid: i32, kind: Option<LockKind>, start: i64, end: i64) {
        let fl = self.files.entry(key).or_default();
        let (mut mine, others): (Vec<Record>, Vec<Record>) = fl.records.drain(..).partition(|r| r.owner == owner);
        let mut kept = Vec::with_capacity(mine.len() + 2);
        for r in mine.drain(..) {
            if !r.overlaps(start, end) {
                kept.push(r);
                continue;
            }
            if r.start < start {
                kept.push(Record { end: start - 1, ..r });
            }
            if r.end > end {
                kept.push(Record { start: end + 1, ..r });
            }
        }
        if let Some(kind) = kind {
            kept.push(Record { owner, pid, kind, start, end });
        }
        kept.sort_by_key(|r| r.start);
        let mut merged: Vec<Record> = Vec::with_capacity(kept.len());
        for r in kept {
            match merged.last_mut() {
                Some(last) if last.kind == r.kind && last.end.checked_add(1).map_or(true, |e| e >= r.start) => {
                    last.end = last.end.max(r.end);
                }
                _ => merged.push(r),
            }
        }
        fl.records = others;
        fl.records.extend(merged);
        self.prune(key);
    }

    fn prune(&mut self, key: FileKey) {
        if self.files.get(&key).is_some_and(FileLocks::is_empty) {
            self.files.remove(&key);
        }
    }

    /// Whether making process `waiter` wait for process `blocker` closes a cycle.
    fn would_deadlock(&self, waiter: i32, blocker: i32) -> bool {
        let mut cur = blocker;
        for _ in 0..MAX_DEADLOCK_STEPS {
            if cur == waiter {
                return true;
            }
            match self.waiters.iter().find(|w| w.waiter == cur) {
                Some(w) => cur = w.blocker,
                None => return false,
            }
        }
        false
    }

    fn set_waiting(&mut self, tid: i32, waiter: i32, blocker: i32) {
        self.waiters.retain(|w| w.tid != tid);
        self.waiters.push(Waiter { tid, waiter, blocker });
    }

    fn clear_waiting(&mut self, tid: i32) {
        self.waiters.retain(|w| w.tid != tid);
    }
}

/// The first lock that conflicts with `kind` over `start..=end` for `owner` (F_GETLK).
pub fn test_lock(key: FileKey, owner: Owner, kind: LockKind, start: i64, end: i64) -> Option<Record> {
    with_table(|t| t.first_conflict(key, owner, kind, start, end))
}

/// A record lock request.
#[derive(Clone, Copy, Debug)]
pub struct RecordRequest {
    pub key: FileKey,
    pub owner: Owner,
    /// The pid F_GETLK shows to others.
    pub pid: i32,
    /// `None` unlocks.
    pub kind: Option<LockKind>,
    pub start: i64,
    pub end: i64,
}

/// Sets or clears a record lock. With `wait`, blocks (interruptibly: ERESTARTSYS) until
/// the range is free; `tid` identifies the waiting thread. EAGAIN without `wait` if another
/// owner's lock conflicts; EDEADLK if waiting would deadlock.
pub fn set_record(req: RecordRequest, wait: bool, tid: i32) -> Result<(), Errno> {
    let Some(kind) = req.kind else {
        with_table(|t| t.apply(req.key, req.owner, req.pid, None, req.start, req.end));
        RELEASED.notify_all();
        return Ok(());
    };
    if matches!(req.owner, Owner::Description(_)) {
        DESC_LOCKERS.fetch_add(1, Ordering::Relaxed);
    }
    let attempt = || {
        with_table(|t| match t.first_conflict(req.key, req.owner, kind, req.start, req.end) {
            None => {
                t.clear_waiting(tid);
                // Converting a write lock to a read lock lets readers in.
                t.apply(req.key, req.owner, req.pid, Some(kind), req.start, req.end);
                Ok(())
            }
            Some(c) => match (req.owner, c.owner) {
                (Owner::Process(me), Owner::Process(other)) if wait => {
                    if t.would_deadlock(me, other) {
                        t.clear_waiting(tid);
                        return Err(Errno::EDEADLK);
                    }
                    t.set_waiting(tid, me, other);
                    Err(Errno::EAGAIN)
                }
                _ => Err(Errno::EAGAIN),
            },
        })
    };
    let r = if wait {
        block_on(&[&RELEASED], None, || match attempt() {
            Err(Errno::EAGAIN) => None,
            r => Some(r),
        })
    } else {
        attempt()
    };
    if wait {
        with_table(|t| t.clear_waiting(tid));
    }
    if r.is_ok() {
        // A downgrade may unblock readers.
        RELEASED.notify_all();
    }
    r
}

/// flock(2): takes a shared or exclusive lock for description `desc` (`None`: unlocks).
/// A conversion drops the old lock first, so it is not atomic (as in Linux). Without
/// `wait`, EWOULDBLOCK if another description holds a conflicting lock.
pub fn flock(key: FileKey, desc: usize, kind: Option<LockKind>, wait: bool) -> Result<(), Errno> {
    let held = with_table(|t| {
        let fl = t.files.get_mut(&key)?;
        let i = fl.flocks.iter().position(|&(d, _)| d == desc)?;
        let old = fl.flocks[i].1;
        if Some(old) == kind {
            return Some(true);
        }
        fl.flocks.remove(i);
        t.prune(key);
        Some(false)
    });
    match held {
        Some(true) => return Ok(()),
        Some(false) => RELEASED.notify_all(),
        None => {}
    }
    let Some(kind) = kind else {
        return Ok(());
    };
    DESC_LOCKERS.fetch_add(1, Ordering::Relaxed);
    let attempt = || {
        with_table(|t| {
            let fl = t.files.entry(key).or_default();
            let busy = fl.flocks.iter().any(|&(d, k)| d != desc && (k == LockKind::Write || kind == LockKind::Write));
            if busy {
                t.prune(key);
                return Err(Errno::EWOULDBLOCK);
            }
            fl.flocks.push((desc, kind));
            Ok(())
        })
    };
    if !wait {
        return attempt();
    }
    block_on(&[&RELEASED], None, || match attempt() {
        Err(Errno::EWOULDBLOCK) => None,
        r => Some(r),
    })
}

/// Drops every POSIX lock of process `tgid` on `key` (it closed an fd of the file).
pub fn release_posix(key: FileKey, tgid: i32) {
    let changed = with_table(|t| {
        let Some(fl) = t.files.get_mut(&key) else {
            return false;
        };
        let before = fl.records.len();
        fl.records.retain(|r| r.owner != Owner::Process(tgid));
        let changed = fl.records.len() != before;
        t.prune(key);
        changed
    });
    if changed {
        RELEASED.notify_all();
    }
}

/// Process `tgid` closed an fd of `f`: its POSIX locks on the file go (close, dup2 over
/// an fd, close_range, close-on-exec).
pub fn posix_fd_closed(tgid: i32, f: &super::FileDescription) {
    if !holds_posix(tgid) {
        return;
    }
    if let Ok(st) = f.imp().stat() {
        release_posix((st.st_dev, st.st_ino), tgid);
    }
}

/// Whether process `tgid` holds any POSIX lock (a cheap test before finding a file's key).
pub fn holds_posix(tgid: i32) -> bool {
    with_table(|t| t.files.values().any(|fl| fl.records.iter().any(|r| r.owner == Owner::Process(tgid))))
}

/// Drops every POSIX lock of process `tgid` (it exited).
pub fn process_exited(tgid: i32) {
    let changed = with_table(|t| {
        let mut changed = false;
        t.files.retain(|_, fl| {
            let before = fl.records.len();
            fl.records.retain(|r| r.owner != Owner::Process(tgid));
            changed |= fl.records.len() != before;
            !fl.is_empty()
        });
        t.waiters.retain(|w| w.waiter != tgid);
        changed
    });
    if changed {
        RELEASED.notify_all();
    }
}

/// Drops the OFD and flock locks of description `desc` (its last reference went away).
pub fn description_closed(desc: usize) {
    if DESC_LOCKERS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let owner = Owner::Description(desc);
    let changed = with_table(|t| {
        let mut changed = false;
        t.files.retain(|_, fl| {
            let before = fl.records.len() + fl.flocks.len();
            fl.records.retain(|r| r.owner != owner);
            fl.flocks.retain(|&(d, _)| d != desc);
            changed |= fl.records.len() + fl.flocks.len() != before;
            !fl.is_empty()
        });
        changed
    });
    if changed {
        RELEASED.notify_all();
    }
}

/// The byte range `start..=end` a `struct flock` describes, given the base its `l_whence`
/// selects (0, the file position or the file size). EINVAL for a range before the start of
/// the file, EOVERFLOW past OFFSET_MAX.
pub fn range_of(base: i64, l_start: i64, l_len: i64) -> Result<(i64, i64), Errno> {
    let start = base.checked_add(l_start).ok_or(Errno::EOVERFLOW)?;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    match l_len {
        0 => Ok((start, OFFSET_MAX)),
        n if n > 0 => {
            if n - 1 > OFFSET_MAX - start {
                return Err(Errno::EOVERFLOW);
            }
            Ok((start, start + (n - 1)))
        }
        n => {
            let s = start.checked_add(n).filter(|&s| s >= 0).ok_or(Errno::EINVAL)?;
            Ok((s, start - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test uses its own file keys: the table is global.
    fn req(key: u64, owner: Owner, kind: Option<LockKind>, start: i64, end: i64) -> RecordRequest {
        RecordRequest { key: (0xdead, key), owner, pid: 7, kind, start, end }
    }

    fn records(key: u64) -> Vec<(Owner, LockKind, i64, i64)> {
        with_table(|t| t.files.get(&(0xdead, key)).map(|f| f.records.iter().map(|r| (r.owner, r.kind, r.start, r.end)).collect()).unwrap_or_default())
    }

    #[test]
    fn same_owner_ranges_split_and_merge() {
        let a = Owner::Process(100);
        set_record(req(1, a, Some(LockKind::Write), 0, 99), false, 1).unwrap();
        set_record(req(1, a, Some(LockKind::Read), 10, 19), false, 1).unwrap();
        assert_eq!(records(1), vec![(a, LockKind::Write, 0, 9), (a, LockKind::Read, 10, 19), (a, LockKind::Write, 20, 99)]);
        set_record(req(1, a, Some(LockKind::Write), 10, 19), false, 1).unwrap();
        assert_eq!(records(1), vec![(a, LockKind::Write, 0, 99)]);
        set_record(req(1, a, None, 0, OFFSET_MAX), false, 1).unwrap();
        assert!(records(1).is_empty());
    }

    #[test]
    fn readers_share_and_writers_conflict_across_owners() {
        let (a, b) = (Owner::Process(200), Owner::Description(0x1234));
        set_record(req(2, a, Some(LockKind::Read), 0, 9), false, 1).unwrap();
        set_record(req(2, b, Some(LockKind::Read), 5, 20), false, 2).unwrap();
        assert_eq!(set_record(req(2, b, Some(LockKind::Write), 0, 0), false, 2), Err(Errno::EAGAIN));
        assert_eq!(test_lock((0xdead, 2), b, LockKind::Write, 0, 3).map(|r| r.owner), Some(a));
        assert!(test_lock((0xdead, 2), b, LockKind::Write, 21, 30).is_none());
        description_closed(0x1234);
        release_posix((0xdead, 2), 200);
        assert!(records(2).is_empty());
    }

    #[test]
    fn a_wait_that_closes_a_cycle_is_edeadlk() {
        let (a, b) = (Owner::Process(300), Owner::Process(301));
        set_record(req(3, a, Some(LockKind::Write), 0, 0), false, 1).unwrap();
        set_record(req(3, b, Some(LockKind::Write), 1, 1), false, 2).unwrap();
        // b waits for a (recorded by hand, as a blocked F_SETLKW would).
        with_table(|t| t.set_waiting(2, 301, 300));
        assert_eq!(set_record(req(3, a, Some(LockKind::Write), 1, 1), true, 1), Err(Errno::EDEADLK));
        with_table(|t| t.clear_waiting(2));
        process_exited(300);
        process_exited(301);
        assert!(records(3).is_empty());
    }

    #[test]
    fn flock_conflicts_between_descriptions_and_converts() {
        let key = (0xdead, 4);
        flock(key, 1, Some(LockKind::Read), false).unwrap();
        flock(key, 2, Some(LockKind::Read), false).unwrap();
        assert_eq!(flock(key, 2, Some(LockKind::Write), false), Err(Errno::EWOULDBLOCK));
        description_closed(1);
        flock(key, 2, Some(LockKind::Write), false).unwrap();
        flock(key, 2, None, false).unwrap();
        assert!(with_table(|t| t.files.get(&key).is_none()));
    }

    #[test]
    fn ranges_follow_linux_rules() {
        assert_eq!(range_of(0, 10, 0), Ok((10, OFFSET_MAX)));
        assert_eq!(range_of(0, 10, 5), Ok((10, 14)));
        assert_eq!(range_of(0, 10, -5), Ok((5, 9)));
        assert_eq!(range_of(0, 3, -5), Err(Errno::EINVAL));
        assert_eq!(range_of(100, -200, 1), Err(Errno::EINVAL));
        assert_eq!(range_of(0, 1, i64::MAX), Ok((1, OFFSET_MAX)));
        assert_eq!(range_of(0, 2, i64::MAX), Err(Errno::EOVERFLOW));
    }
}
