//! inotify(7): watches on files and directories, and the events the sentry's own file
//! operations generate.
//!
//! A watch is keyed by the identity of the watched inode (the address of its `Arc`); the
//! watch keeps the dentry, and so the inode, alive, so the key cannot be reused while the
//! watch exists. The syscall layer reports each operation once through [`file_event`],
//! [`dir_event`] or [`self_event`]; while no watch exists anywhere those return after one
//! atomic load.
//!
//! As in Linux: an event on a file is reported to watches on the file (no name) and on its
//! parent directory (with the file's name, padded with NULs to a multiple of 16 bytes);
//! an event identical to the last queued one is coalesced; past [`MAX_QUEUED_EVENTS`] one
//! IN_Q_OVERFLOW (wd -1) ends the queue; IN_ONESHOT watches and watches whose inode was
//! deleted are removed with IN_IGNORED.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use rvisor_syscalls::fdkinds::inotify::*;
use rvisor_syscalls::fdkinds::InotifyEvent;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLIN, POLLRDNORM};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::{Errno, Pod};

use super::dentry::Dentry;
use super::eventfd::anon_inode_stat;
use super::file::FileImpl;
use crate::kernel::wait::{block_on, WaitQueue};

/// Watches in the whole sandbox: the fast-path check.
static WATCHES: AtomicUsize = AtomicUsize::new(0);
static COOKIE: AtomicU32 = AtomicU32::new(0);

/// Inode key → instances watching it.
fn registry() -> MutexGuard<'static, HashMap<usize, Vec<Weak<Inotify>>>> {
    static R: OnceLock<Mutex<HashMap<usize, Vec<Weak<Inotify>>>>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn key_of(d: &Dentry) -> usize {
    Arc::as_ptr(d.inode()) as *const () as usize
}

/// A fresh cookie tying an IN_MOVED_FROM to its IN_MOVED_TO.
pub fn new_cookie() -> u32 {
    COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

/// Whether any watch exists (callers may skip work to build an event otherwise).
pub fn active() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

struct Watch {
    /// Keeps the watched inode (and so its key) alive while the watch exists. The inode,
    /// not the dentry: whether a removed file's dentry is still held (open) decides when
    /// IN_DELETE_SELF comes, and a watch must not count.
    _inode: Arc<dyn super::Inode>,
    key: usize,
    mask: u32,
}

#[derive(Clone, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name's length as reported: padded to 16 bytes with at least one NUL.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(16) * 16
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of::<InotifyEvent>() + self.name_len()
    }
}

#[derive(Default)]
struct State {
    watches: HashMap<i32, Watch>,
    by_key: HashMap<usize, i32>,
    next_wd: i32,
    events: VecDeque<Event>,
}

/// An inotify instance.
pub struct Inotify {
    state: Mutex<State>,
    queue: WaitQueue,
    uid: u32,
    gid: u32,
}

impl Inotify {
    pub fn new(uid: u32, gid: u32) -> Arc<Inotify> {
        Arc::new(Inotify {
            state: Mutex::new(State {
                next_wd: 1,
                ..Default::default()
            }),
            queue: WaitQueue::new(),
            uid,
            gid,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// inotify_add_watch(2) on the resolved `dentry`; `mask` includes the IN_MASK_ADD,
    /// IN_MASK_CREATE, IN_ONESHOT and IN_EXCL_UNLINK flags.
    pub fn add_watch(self: &Arc<Self>, dentry: Arc<Dentry>, mask: u32) -> Result<i32, Errno> {
        let key = key_of(&dentry);
        let keep = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK | IN_ONLYDIR | IN_DONT_FOLLOW;
        let mut st = self.lock();
        if let Some(&wd) = st.by_key.get(&key) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            if let Some(w) = st.watches.get_mut(&wd) {
                w.mask = if mask & IN_MASK_ADD != 0 {
                    w.mask | (mask & keep)
                } else {
                    mask & keep
                };
            }
            return Ok(wd);
        }
        if st.watches.len() >= MAX_WATCHES {
            return Err(Errno::ENOSPC);
        }
        let wd = st.next_wd;
        st.next_wd = st.next_wd.checked_add(1).ok_or(Errno::ENOSPC)?;
        st.watches.insert(
            wd,
            Watch {
                _inode: dentry.inode().clone(),
                key,
                mask: mask & keep,
            },
        );
        st.by_key.insert(key, wd);
        drop(st);
        registry()
            .entry(key)
            .or_default()
            .push(Arc::downgrade(self));
        WATCHES.fetch_add(1, Ordering::Relaxed);
        Ok(wd)
    }

    /// inotify_rm_watch(2): EINVAL for an unknown wd; queues IN_IGNORED.
    pub fn rm_watch(self: &Arc<Self>, wd: i32) -> Result<(), Errno> {
        if !self.remove(wd) {
            return Err(Errno::EINVAL);
        }
        self.push(Event {
            wd,
            mask: IN_IGNORED,
            cookie: 0,
            name: Vec::new(),
        });
        Ok(())
    }

    /// Drops watch `wd`; false if it did not exist.
    fn remove(self: &Arc<Self>, wd: i32) -> bool {
        let Some(w) = self.lock().watches.remove(&wd) else {
            return false;
        };
        self.lock().by_key.remove(&w.key);
        let mut r = registry();
        if let Some(v) = r.get_mut(&w.key) {
            v.retain(|i| i.upgrade().is_some_and(|i| !Arc::ptr_eq(&i, self)));
            if v.is_empty() {
                r.remove(&w.key);
            }
        }
        WATCHES.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Queues `ev`, coalescing it with an identical last event, and wakes readers.
    fn push(&self, ev: Event) {
        let mut st = self.lock();
        if st.events.back() == Some(&ev) {
            return;
        }
        if st.events.back().is_some_and(|e| e.mask == IN_Q_OVERFLOW) {
            return;
        }
        if st.events.len() >= MAX_QUEUED_EVENTS {
            st.events.push_back(Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: Vec::new(),
            });
        } else {
            st.events.push_back(ev);
        }
        drop(st);
        self.queue.notify_all();
    }

    /// Reports `mask` to this instance's watch on `key`, if it wants it. Returns whether a
    /// one-shot watch fired (and must go).
    fn deliver(self: &Arc<Self>, key: usize, mask: u32, cookie: u32, name: &[u8]) {
        self.deliver_unless_unlinked(key, mask, cookie, name, None)
    }

    /// [`Self::deliver`] of an event on an open file: an IN_EXCL_UNLINK watch skips it
    /// when `unlinked` says the file has no name left.
    fn deliver_unless_unlinked(
        self: &Arc<Self>,
        key: usize,
        mask: u32,
        cookie: u32,
        name: &[u8],
        unlinked: Option<&dyn Fn() -> bool>,
    ) {
        let (wd, oneshot) = {
            let st = self.lock();
            let Some(&wd) = st.by_key.get(&key) else {
                return;
            };
            let Some(w) = st.watches.get(&wd) else { return };
            let wanted = mask & IN_ALL_EVENTS & w.mask;
            if wanted == 0 && mask & (IN_IGNORED | IN_Q_OVERFLOW) == 0 {
                return;
            }
            let excl = w.mask & IN_EXCL_UNLINK != 0;
            drop(st);
            if excl && unlinked.is_some_and(|f| f()) {
                return;
            }
            (
                wd,
                self.lock()
                    .watches
                    .get(&wd)
                    .is_some_and(|w| w.mask & IN_ONESHOT != 0),
            )
        };
        self.push(Event {
            wd,
            mask,
            cookie,
            name: name.to_vec(),
        });
        if oneshot && self.remove(wd) {
            self.push(Event {
                wd,
                mask: IN_IGNORED,
                cookie: 0,
                name: Vec::new(),
            });
        }
    }

    /// Drops the watch on `key` with IN_IGNORED (its inode is gone).
    fn ignore(self: &Arc<Self>, key: usize) {
        let wd = self.lock().by_key.get(&key).copied();
        if let Some(wd) = wd {
            if self.remove(wd) {
                self.push(Event {
                    wd,
                    mask: IN_IGNORED,
                    cookie: 0,
                    name: Vec::new(),
                });
            }
        }
    }

    /// Moves whole events into `buf`; EINVAL if the first does not fit.
    fn take_events(&self, buf: &mut [u8]) -> Option<Result<usize, Errno>> {
        let mut st = self.lock();
        let first = st.events.front()?;
        if first.size() > buf.len() {
            return Some(Err(Errno::EINVAL));
        }
        let mut n = 0;
        while let Some(ev) = st.events.front() {
            let size = ev.size();
            if n + size > buf.len() {
                break;
            }
            let head = InotifyEvent {
                wd: ev.wd,
                mask: ev.mask,
                cookie: ev.cookie,
                len: ev.name_len() as u32,
            };
            buf[n..n + 16].copy_from_slice(head.as_bytes());
            let name = &mut buf[n + 16..n + size];
            name.fill(0);
            name[..ev.name.len()].copy_from_slice(&ev.name);
            n += size;
            st.events.pop_front();
        }
        Some(Ok(n))
    }

    fn queued_bytes(&self) -> usize {
        self.lock().events.iter().map(Event::size).sum()
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let n = st.watches.len();
        let mut r = registry();
        for w in st.watches.values() {
            if let Some(v) = r.get_mut(&w.key) {
                v.retain(|i| i.strong_count() > 0);
                if v.is_empty() {
                    r.remove(&w.key);
                }
            }
        }
        WATCHES.fetch_sub(n, Ordering::Relaxed);
    }
}

fn watchers(key: usize) -> Vec<Arc<Inotify>> {
    registry()
        .get(&key)
        .map(|v| v.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default()
}

fn isdir(d: &Dentry) -> u32 {
    if d.inode().is_dir() {
        IN_ISDIR
    } else {
        0
    }
}

/// An event on the file `d` itself (IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_OPEN, IN_CLOSE_*):
/// reported to watches on `d` and, with `d`'s name, on its parent.
pub fn file_event(d: &Dentry, mask: u32) {
    if !active() {
        return;
    }
    let mask = mask | isdir(d);
    // Whether the file has no name left (asked only by IN_EXCL_UNLINK watches, once).
    let gone = std::cell::OnceCell::new();
    let unlinked = || {
        *gone.get_or_init(|| {
            !d.inode().is_dir() && d.inode().stat().map_or(true, |s| s.st_nlink == 0)
        })
    };
    // The parent's watches first, as Linux reports an event to a group's parent mark
    // before its mark on the file.
    if let Some(p) = d.parent().filter(|p| !std::ptr::eq(Arc::as_ptr(p), d)) {
        let name = d.name();
        for i in watchers(key_of(&p)) {
            i.deliver_unless_unlinked(key_of(&p), mask, 0, &name, Some(&unlinked));
        }
    }
    for i in watchers(key_of(d)) {
        i.deliver_unless_unlinked(key_of(d), mask, 0, b"", Some(&unlinked));
    }
}

/// An event on the entry `name` of directory `dir` (IN_CREATE, IN_DELETE, IN_MOVED_*).
pub fn dir_event(dir: &Arc<Dentry>, name: &[u8], mask: u32, cookie: u32, is_dir: bool) {
    if !active() {
        return;
    }
    let mask = mask | if is_dir { IN_ISDIR } else { 0 };
    for i in watchers(key_of(dir)) {
        i.deliver(key_of(dir), mask, cookie, name);
    }
}

/// An event on the watched object itself (IN_MOVE_SELF, IN_DELETE_SELF). IN_DELETE_SELF
/// also ends the watches on it with IN_IGNORED.
pub fn self_event(d: &Dentry, mask: u32) {
    if !active() {
        return;
    }
    let key = key_of(d);
    for i in watchers(key) {
        i.deliver(key, mask, 0, b"");
        if mask & IN_DELETE_SELF != 0 {
            i.ignore(key);
        }
    }
}

/// After `victim`, the entry `name` of `dir`, was unlinked or removed: the victim's link
/// count changed (IN_ATTRIB) or it is gone (IN_DELETE_SELF), and the directory lost an
/// entry (IN_DELETE).
///
/// As in Linux, IN_DELETE_SELF waits while the victim is still open (or otherwise in use):
/// it comes when its last open file is closed ([`closed`]).
pub fn removed(dir: &Arc<Dentry>, name: &[u8], victim: &Arc<Dentry>) {
    if !active() {
        return;
    }
    let is_dir = victim.inode().is_dir();
    if !is_dir {
        file_event_self_only(victim, IN_ATTRIB);
    }
    delete_self_when_unused(victim);
    dir_event(dir, name, IN_DELETE, 0, is_dir);
}

/// Dentries whose inode lost its last link while open: IN_DELETE_SELF is due at their
/// last close. Keyed by the dentry's address; the weak reference tells a dead entry.
fn pending_deletes() -> MutexGuard<'static, HashMap<usize, Weak<Dentry>>> {
    static P: OnceLock<Mutex<HashMap<usize, Weak<Dentry>>>> = OnceLock::new();
    P.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// After `victim` (held by the caller, one reference) lost a link: IN_DELETE_SELF now if
/// it has no link left and nothing else holds it, else at its last close.
fn delete_self_when_unused(victim: &Arc<Dentry>) {
    if !is_gone(victim) {
        return;
    }
    if Arc::strong_count(victim) <= 1 {
        self_event(victim, IN_DELETE_SELF);
        return;
    }
    let mut p = pending_deletes();
    if p.len() >= 64 {
        p.retain(|_, w| w.strong_count() > 0);
    }
    p.insert(Arc::as_ptr(victim) as usize, Arc::downgrade(victim));
}

/// An open file of `d` is being closed (its description holds `d` until this returns):
/// the IN_DELETE_SELF of a removed file comes when the last one goes.
pub fn closed(d: &Arc<Dentry>) {
    if !active() || Arc::strong_count(d) > 1 {
        return;
    }
    let due = pending_deletes()
        .remove(&(Arc::as_ptr(d) as usize))
        .is_some();
    if due && is_gone(d) {
        self_event(d, IN_DELETE_SELF);
    }
}

/// After `src` got the new name `name` in `dir` (link, linkat): its link count changed
/// (IN_ATTRIB, to watches on the file only, as Linux's `fsnotify_link_count`) and the
/// directory has a new entry (IN_CREATE).
pub fn linked(dir: &Arc<Dentry>, name: &[u8], src: &Dentry) {
    if !active() {
        return;
    }
    file_event_self_only(src, IN_ATTRIB);
    dir_event(dir, name, IN_CREATE, 0, false);
}

/// After a rename of `src` from `old_name` of `old_dir` to `new_name` of `new_dir`,
/// replacing `replaced` if any.
pub fn renamed(
    old_dir: &Arc<Dentry>,
    old_name: &[u8],
    new_dir: &Arc<Dentry>,
    new_name: &[u8],
    src: &Dentry,
    replaced: Option<&Arc<Dentry>>,
) {
    if !active() {
        return;
    }
    let is_dir = src.inode().is_dir();
    let cookie = new_cookie();
    dir_event(old_dir, old_name, IN_MOVED_FROM, cookie, is_dir);
    dir_event(new_dir, new_name, IN_MOVED_TO, cookie, is_dir);
    if let Some(r) = replaced.filter(|r| !r.inode().is_dir()) {
        // Its link count changed (Linux's fsnotify_move).
        file_event_self_only(r, IN_ATTRIB);
    }
    self_event(src, IN_MOVE_SELF);
    if let Some(r) = replaced {
        delete_self_when_unused(r);
    }
}

fn file_event_self_only(d: &Dentry, mask: u32) {
    for i in watchers(key_of(d)) {
        i.deliver(key_of(d), mask, 0, b"");
    }
}

/// Whether `d`'s inode has no links left (after an unlink or rmdir).
pub fn is_gone(d: &Dentry) -> bool {
    d.inode()
        .stat()
        .map(|s| s.st_nlink == 0 || (d.inode().is_dir() && s.st_nlink <= 1))
        .unwrap_or(true)
}

/// The file side of an inotify instance.
pub struct InotifyFile(pub Arc<Inotify>);

/// FIONREAD.
const FIONREAD: u32 = 0x541b;

impl FileImpl for InotifyFile {
    fn anon_name(&self) -> Option<&'static str> {
        Some("inotify")
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        match self.0.take_events(buf) {
            Some(r) => r,
            None if flags & O_NONBLOCK != 0 => Err(Errno::EAGAIN),
            None => block_on(&[&self.0.queue], None, || self.0.take_events(buf)),
        }
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
        Err(Errno::ESPIPE)
    }

    fn ioctl(&self, mm: &crate::mm::MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        if cmd != FIONREAD {
            return Err(Errno::EINVAL);
        }
        let n = self.0.queued_bytes().min(i32::MAX as usize) as i32;
        mm.write_obj(arg, &n)?;
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        if self.0.lock().events.is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.queue)
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_padded_to_sixteen_bytes_with_a_nul() {
        let ev = |n: &[u8]| Event {
            wd: 1,
            mask: 0,
            cookie: 0,
            name: n.to_vec(),
        };
        assert_eq!(ev(b"").name_len(), 0);
        assert_eq!(ev(b"a").name_len(), 16);
        assert_eq!(ev(&[b'x'; 15]).name_len(), 16);
        assert_eq!(ev(&[b'x'; 16]).name_len(), 32);
    }

    #[test]
    fn identical_events_coalesce_and_a_full_queue_overflows_once() {
        let i = Inotify::new(0, 0);
        let e = Event {
            wd: 1,
            mask: IN_MODIFY,
            cookie: 0,
            name: b"f".to_vec(),
        };
        i.push(e.clone());
        i.push(e.clone());
        assert_eq!(i.lock().events.len(), 1);
        for n in 0..MAX_QUEUED_EVENTS + 5 {
            i.push(Event {
                wd: n as i32,
                mask: IN_OPEN,
                cookie: 0,
                name: Vec::new(),
            });
        }
        let st = i.lock();
        assert_eq!(st.events.len(), MAX_QUEUED_EVENTS + 1);
        assert_eq!(st.events.back().map(|e| e.mask), Some(IN_Q_OVERFLOW));
    }

    #[test]
    fn a_read_takes_whole_events_and_a_too_small_buffer_is_einval() {
        let i = Inotify::new(0, 0);
        i.push(Event {
            wd: 3,
            mask: IN_CREATE,
            cookie: 0,
            name: b"name".to_vec(),
        });
        let f = InotifyFile(i);
        assert_eq!(f.read(&mut [0u8; 20], 0, O_NONBLOCK), Err(Errno::EINVAL));
        let mut b = [0xffu8; 64];
        assert_eq!(f.read(&mut b, 0, O_NONBLOCK), Ok(32));
        assert_eq!(&b[16..21], b"name\0");
        assert_eq!(f.read(&mut b, 0, O_NONBLOCK), Err(Errno::EAGAIN));
    }
}
