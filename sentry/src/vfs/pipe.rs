//! Pipes: pipe(2)/pipe2(2) and, later, FIFOs.
//!
//! A [`Pipe`] is a ring of up to `slots` buffers of one page each, as in Linux: a write of
//! at most `PIPE_BUF` bytes either joins the last buffer (when it fits in that page) or
//! takes one free buffer, so it is never split or interleaved; larger writes fill page
//! after page and may interleave with other writers. Capacity is counted in buffers
//! (default 16, i.e. 64 KiB), which makes `F_SETPIPE_SZ`, `POLLOUT` (a free buffer) and
//! packet mode (`O_DIRECT`: every write of up to a page is its own buffer, and a read
//! returns at most one packet, dropping what does not fit) behave like Linux.
//!
//! The two ends are [`PipeEnd`] file implementations. Each counts as one reader and/or
//! writer for as long as it lives; an end is owned by exactly one open file description
//! (`Arc`-shared by dup and fork), so the count of open descriptions is the count of ends.
//!
//! Pipe buffers live in the sentry's heap, outside the guest's memory file, so all the
//! sandbox's pipes share one budget of pages, as Linux's `pipe-user-pages-soft`/`-hard`
//! bound what one user's pipes may hold (here the whole sandbox is the user, and no
//! capability lifts it): past the soft cap a new pipe gets 2 buffers instead of 16 and
//! F_SETPIPE_SZ may not grow a pipe (EPERM); past the hard cap a new pipe gets a single
//! buffer. Both scale with the sandbox's memory limit ([`set_memory_limit`]); the number of
//! pipes is bounded by the sandbox-wide fd cap (`kernel::fdtable`).
//!
//! Writing with no reader fails with `EPIPE`; raising `SIGPIPE` is the syscall layer's job.
//! Every change (data in or out, an end closed, a resize) notifies the pipe's wait queue,
//! which blocked readers, writers and poll/select all wait on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::ioctl::FIONREAD;
use rvisor_syscalls::flags::mode::S_IFIFO;
use rvisor_syscalls::flags::open::{O_ACCMODE, O_DIRECT, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY};
use rvisor_syscalls::flags::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::file::{FileDescription, FileImpl};
use crate::kernel::wait::{block_on, WaitQueue};
use crate::mm::MemoryManager;

/// Bytes in one pipe buffer (a page).
const PAGE: usize = 4096;
/// Buffers of a new pipe (64 KiB).
pub const DEFAULT_PIPE_SLOTS: usize = 16;
/// The largest size F_SETPIPE_SZ accepts (Linux's default `/proc/sys/fs/pipe-max-size`).
/// Linux lets CAP_SYS_RESOURCE go beyond it; the sandbox does not, so guest memory held in
/// pipes stays bounded.
pub const MAX_PIPE_SIZE: usize = 1 << 20;
/// Buffers of a new pipe once the sandbox's pipes hold more than the soft cap (Linux's
/// PIPE_MIN_DEF_BUFFERS).
const MIN_DEF_SLOTS: usize = 2;
/// Linux's default `pipe-user-pages-soft` (64 MiB), the soft cap without a memory limit.
pub const DEFAULT_PIPE_PAGES_SOFT: usize = 16384;

/// Pages of pipe buffers held by the sandbox's pipes, with a soft and a hard cap
/// (0: none).
struct PipeBudget {
    pages: AtomicUsize,
    soft: AtomicUsize,
    hard: AtomicUsize,
}

impl PipeBudget {
    const fn new(soft: usize, hard: usize) -> PipeBudget {
        PipeBudget { pages: AtomicUsize::new(0), soft: AtomicUsize::new(soft), hard: AtomicUsize::new(hard) }
    }

    fn over(cap: &AtomicUsize, pages: usize) -> bool {
        let cap = cap.load(Ordering::Relaxed);
        cap != 0 && pages > cap
    }

    /// Charges a new pipe and returns its buffers.
    fn charge_new(&self) -> usize {
        let held = self.pages.load(Ordering::Relaxed);
        let slots = if Self::over(&self.hard, held) {
            1
        } else if Self::over(&self.soft, held) {
            MIN_DEF_SLOTS
        } else {
            DEFAULT_PIPE_SLOTS
        };
        self.pages.fetch_add(slots, Ordering::Relaxed);
        slots
    }

    /// Charges a resize from `old` to `new` buffers: EPERM when it grows the pipe and the
    /// sandbox's pipes would then hold more than a cap.
    fn charge_resize(&self, old: usize, new: usize) -> Result<(), Errno> {
        if new <= old {
            self.pages.fetch_sub(old - new, Ordering::Relaxed);
            return Ok(());
        }
        let grow = new - old;
        let after = self.pages.fetch_add(grow, Ordering::Relaxed) + grow;
        if Self::over(&self.soft, after) || Self::over(&self.hard, after) {
            self.pages.fetch_sub(grow, Ordering::Relaxed);
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    fn uncharge(&self, slots: usize) {
        self.pages.fetch_sub(slots, Ordering::Relaxed);
    }
}

static BUDGET: PipeBudget = PipeBudget::new(DEFAULT_PIPE_PAGES_SOFT, 0);

/// The (soft, hard) caps in pages for a memory limit in bytes (0: none, Linux's defaults).
pub fn caps_for(memory_limit: u64) -> (usize, usize) {
    if memory_limit == 0 {
        return (DEFAULT_PIPE_PAGES_SOFT, 0);
    }
    let pages = usize::try_from(memory_limit / PAGE as u64).unwrap_or(usize::MAX);
    // A sixteenth of the limit before pipes shrink, an eighth before they are minimal;
    // never less than one full-size pipe.
    let soft = (pages / 16).clamp(DEFAULT_PIPE_SLOTS, DEFAULT_PIPE_PAGES_SOFT);
    (soft, (pages / 8).max(soft))
}

/// Scales the sandbox's pipe caps to its memory limit (0: none).
pub fn set_memory_limit(memory_limit: u64) {
    let (soft, hard) = caps_for(memory_limit);
    BUDGET.soft.store(soft, Ordering::Relaxed);
    BUDGET.hard.store(hard, Ordering::Relaxed);
}

/// Pipe buffer pages the sandbox's pipes hold.
pub fn pages_held() -> usize {
    BUDGET.pages.load(Ordering::Relaxed)
}

/// The device number pipefs reports (an anonymous block device, like Linux's pipefs).
pub const PIPEFS_DEV: u64 = 0x0c;

/// Inode numbers of pipes. One sentry process serves one sandbox, so this is per sandbox.
static NEXT_PIPE_INO: AtomicU64 = AtomicU64::new(4026531840);

fn now() -> (i64, i64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

/// One pipe buffer: `data[start..]` is unread.
struct Segment {
    data: Vec<u8>,
    start: usize,
    /// Written in packet mode: read as one unit, never merged into.
    packet: bool,
}

impl Segment {
    fn len(&self) -> usize {
        self.data.len() - self.start
    }
}

struct PipeState {
    segs: VecDeque<Segment>,
    /// Capacity in buffers (F_GETPIPE_SZ is this times a page).
    slots: usize,
    readers: usize,
    writers: usize,
    /// Read and write ends ever opened: a FIFO open waiting for its partner waits for
    /// the other count to change (an end opened and closed again meanwhile still counts).
    read_opens: u64,
    write_opens: u64,
    /// Unread bytes (FIONREAD).
    bytes: usize,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl PipeState {
    /// Moves up to `dst.len()` bytes out; a packet ends the read.
    fn take(&mut self, dst: &mut [u8]) -> usize {
        let mut n = 0;
        while n < dst.len() {
            let Some(seg) = self.segs.front_mut() else { break };
            let k = seg.len().min(dst.len() - n);
            dst[n..n + k].copy_from_slice(&seg.data[seg.start..seg.start + k]);
            seg.start += k;
            n += k;
            let packet = seg.packet;
            if seg.len() == 0 || packet {
                let rest = seg.len();
                self.bytes -= rest;
                self.segs.pop_front();
            }
            if packet {
                break;
            }
        }
        self.bytes -= n;
        n
    }

    /// Appends as much of `src` as fits now. `may_merge`: this is the first piece of the
    /// write, whose sub-page head may join the last buffer (Linux merges only then).
    fn put(&mut self, src: &[u8], packet: bool, may_merge: bool) -> usize {
        let mut n = 0;
        if may_merge && !packet {
            let head = src.len() % PAGE;
            if let Some(last) = self.segs.back_mut() {
                if head != 0 && !last.packet && last.data.len() + head <= PAGE {
                    last.data.extend_from_slice(&src[..head]);
                    n = head;
                }
            }
        }
        while n < src.len() && self.segs.len() < self.slots {
            let k = (src.len() - n).min(PAGE);
            let mut data = Vec::with_capacity(if packet { k } else { PAGE });
            data.extend_from_slice(&src[n..n + k]);
            self.segs.push_back(Segment { data, start: 0, packet });
            n += k;
        }
        self.bytes += n;
        n
    }
}

/// The shared buffer of a pipe.
pub struct Pipe {
    state: Mutex<PipeState>,
    queue: WaitQueue,
    ino: u64,
    uid: u32,
    gid: u32,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        BUDGET.uncharge(st.slots);
    }
}

impl Pipe {
    /// An empty pipe with no ends yet, owned by `uid`/`gid` (the creator's fsuid/fsgid).
    pub fn new(uid: u32, gid: u32) -> Arc<Pipe> {
        let t = now();
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                segs: VecDeque::new(),
                slots: BUDGET.charge_new(),
                readers: 0,
                writers: 0,
                read_opens: 0,
                write_opens: 0,
                bytes: 0,
                atime: t,
                mtime: t,
                ctime: t,
            }),
            queue: WaitQueue::new(),
            ino: NEXT_PIPE_INO.fetch_add(1, Ordering::Relaxed),
            uid,
            gid,
        })
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        // The state is a plain buffer; a panic elsewhere cannot leave it unsound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The inode number (for fstat and `/proc/pid/fd` links: `pipe:[ino]`).
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Opens an end: a reader, a writer, or both (a FIFO opened O_RDWR).
    pub fn open_end(self: &Arc<Pipe>, read: bool, write: bool) -> Arc<PipeEnd> {
        {
            let mut st = self.lock();
            st.readers += read as usize;
            st.writers += write as usize;
            st.read_opens += read as u64;
            st.write_opens += write as u64;
        }
        self.queue.notify_all();
        Arc::new(PipeEnd { pipe: self.clone(), read, write })
    }

    /// Opens an end of a named pipe as open(2) does with `flags`: O_RDWR opens both ends at
    /// once; a blocking O_RDONLY (O_WRONLY) open waits until a writer (reader) has opened
    /// the FIFO; O_WRONLY|O_NONBLOCK without a reader is ENXIO. A signal interrupts the
    /// wait with ERESTARTSYS (the end opened so far is closed again).
    pub fn open_fifo(self: &Arc<Pipe>, flags: u32) -> Result<Arc<PipeEnd>, Errno> {
        let nonblock = flags & O_NONBLOCK != 0;
        let (read, write) = match flags & O_ACCMODE {
            O_RDONLY => (true, false),
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        if write && !read && nonblock && !self.has_readers() {
            return Err(Errno::ENXIO);
        }
        let partner_opens = |st: &PipeState| if read { st.write_opens } else { st.read_opens };
        let seen = partner_opens(&self.lock());
        let end = self.open_end(read, write);
        if read == write || (read && nonblock) {
            return Ok(end);
        }
        block_on(&[&self.queue], None, || {
            let st = self.lock();
            let partner_open = if read { st.writers > 0 } else { st.readers > 0 };
            (partner_open || partner_opens(&st) != seen).then_some(Ok(()))
        })?;
        Ok(end)
    }

    /// Whether any read end is open (a FIFO's O_WRONLY|O_NONBLOCK open needs one).
    pub fn has_readers(&self) -> bool {
        self.lock().readers > 0
    }

    /// Unread bytes.
    pub fn readable_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Capacity in bytes (F_GETPIPE_SZ).
    pub fn size(&self) -> usize {
        self.lock().slots * PAGE
    }

    /// F_SETPIPE_SZ: rounds `arg` up to a power-of-two number of pages (at least one);
    /// EINVAL above 2 GiB, EPERM above [`MAX_PIPE_SIZE`], EBUSY if the buffers in use do
    /// not fit. Returns the new size.
    pub fn set_size(&self, arg: u32) -> Result<usize, Errno> {
        if arg > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let size = (arg as usize).max(PAGE).next_power_of_two();
        let slots = size / PAGE;
        let resized = {
            let mut st = self.lock();
            if slots > st.slots && size > MAX_PIPE_SIZE {
                return Err(Errno::EPERM);
            }
            if slots < st.segs.len() {
                return Err(Errno::EBUSY);
            }
            BUDGET.charge_resize(st.slots, slots)?;
            let grew = slots > st.slots;
            st.slots = slots;
            grew
        };
        if resized {
            self.queue.notify_all();
        }
        Ok(size)
    }

    /// One read attempt: `None` when the caller should block.
    fn try_read(&self, buf: &mut [u8], nonblock: bool) -> Option<Result<usize, Errno>> {
        let mut st = self.lock();
        if st.segs.is_empty() {
            return match () {
                _ if st.writers == 0 => Some(Ok(0)),
                _ if nonblock => Some(Err(Errno::EAGAIN)),
                _ => None,
            };
        }
        let n = st.take(buf);
        st.atime = now();
        drop(st);
        self.queue.notify_all();
        Some(Ok(n))
    }

    /// Reads what is available (at most one packet); blocks while the pipe is empty and a
    /// writer exists; 0 at end of file; EAGAIN if empty and `nonblock`.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(r) = self.try_read(buf, nonblock) {
            return r;
        }
        block_on(&[&self.queue], None, || self.try_read(buf, nonblock))
    }

    /// Copies out up to `buf.len()` unread bytes without consuming them (tee, splice):
    /// blocks like [`Self::read`] while the pipe is empty and a writer exists.
    pub fn peek(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut attempt = || {
            let st = self.lock();
            if st.segs.is_empty() {
                return match () {
                    _ if st.writers == 0 => Some(Ok(0)),
                    _ if nonblock => Some(Err(Errno::EAGAIN)),
                    _ => None,
                };
            }
            let mut n = 0;
            for seg in &st.segs {
                let k = seg.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&seg.data[seg.start..seg.start + k]);
                n += k;
                if n == buf.len() || seg.packet {
                    break;
                }
            }
            Some(Ok(n))
        };
        if let Some(r) = attempt() {
            return r;
        }
        block_on(&[&self.queue], None, attempt)
    }

    /// Consumes up to `n` unread bytes (after a [`Self::peek`]); returns how many went.
    pub fn discard(&self, n: usize) -> usize {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut left = n;
        while left > 0 {
            let Some(seg) = st.segs.front_mut() else { break };
            let k = seg.len().min(left);
            seg.start += k;
            left -= k;
            if seg.len() == 0 || seg.packet {
                let rest = seg.len();
                st.segs.pop_front();
                st.bytes -= rest;
            }
            st.bytes -= k;
        }
        if left < n {
            st.atime = now();
        }
        drop(guard);
        self.queue.notify_all();
        n - left
    }

    /// Writes all of `buf`, blocking for room unless `nonblock`. Writes of at most
    /// `PIPE_BUF` bytes are atomic. Returns the bytes written: fewer than asked only if
    /// `nonblock`, or if a signal (or the last reader closing) interrupts after progress.
    /// EPIPE with no reader (the caller raises SIGPIPE), EAGAIN if nothing fits and
    /// `nonblock`, ERESTARTSYS if interrupted before writing anything.
    pub fn write(&self, buf: &[u8], nonblock: bool, packet: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut done = 0usize;
        let attempt = |done: &mut usize| -> Option<Result<usize, Errno>> {
            let mut st = self.lock();
            if st.readers == 0 {
                return Some(if *done == 0 { Err(Errno::EPIPE) } else { Ok(*done) });
            }
            let n = st.put(&buf[*done..], packet, *done == 0);
            if n > 0 {
                let t = now();
                st.mtime = t;
                st.ctime = t;
                drop(st);
                self.queue.notify_all();
            } else {
                drop(st);
            }
            *done += n;
            match () {
                _ if *done == buf.len() => Some(Ok(*done)),
                _ if nonblock => Some(if *done == 0 { Err(Errno::EAGAIN) } else { Ok(*done) }),
                _ => None,
            }
        };
        if let Some(r) = attempt(&mut done) {
            return r;
        }
        let r = block_on(&[&self.queue], None, || attempt(&mut done));
        match r {
            Err(Errno::ERESTARTSYS) if done > 0 => Ok(done),
            r => r,
        }
    }

    /// Events for an end that reads and/or writes.
    fn readiness(&self, read: bool, write: bool) -> u32 {
        let st = self.lock();
        let mut ev = 0;
        if read {
            if !st.segs.is_empty() {
                ev |= POLLIN | POLLRDNORM;
            }
            if st.writers == 0 {
                ev |= POLLHUP;
            }
        }
        if write {
            if st.segs.len() < st.slots {
                ev |= POLLOUT | POLLWRNORM;
            }
            if st.readers == 0 {
                ev |= POLLERR;
            }
        }
        ev
    }

    fn stat(&self) -> Stat {
        let st = self.lock();
        Stat {
            st_dev: PIPEFS_DEV,
            st_ino: self.ino,
            st_nlink: 1,
            st_mode: S_IFIFO | 0o600,
            st_uid: self.uid,
            st_gid: self.gid,
            st_blksize: PAGE as i64,
            st_atime: st.atime.0,
            st_atime_nsec: st.atime.1,
            st_mtime: st.mtime.0,
            st_mtime_nsec: st.mtime.1,
            st_ctime: st.ctime.0,
            st_ctime_nsec: st.ctime.1,
            ..Default::default()
        }
    }
}

/// An open end of a pipe; counts as one reader and/or writer until dropped.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
}

impl PipeEnd {
    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.lock();
            st.readers -= self.read as usize;
            st.writers -= self.write as usize;
        }
        self.pipe.queue.notify_all();
    }
}

impl FileImpl for PipeEnd {
    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        if !self.read {
            return Err(Errno::EBADF);
        }
        self.pipe.read(buf, flags & O_NONBLOCK != 0)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        self.pipe.write(buf, flags & O_NONBLOCK != 0, flags & O_DIRECT != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.pipe.stat())
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn ioctl(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        match cmd {
            FIONREAD => {
                let n = i32::try_from(self.pipe.readable_bytes()).unwrap_or(i32::MAX);
                mm.write_obj(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn readiness(&self) -> u32 {
        self.pipe.readiness(self.read, self.write)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn pipe_size(&self) -> Option<usize> {
        Some(self.pipe.size())
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }

    fn set_pipe_size(&self, size: u32) -> Result<usize, Errno> {
        self.pipe.set_size(size)
    }
}

/// A new pipe as two open files, (read end, write end), owned by `uid`/`gid`. `flags`:
/// O_NONBLOCK (both ends) and O_DIRECT (packet mode: the write end's status flag, as in
/// Linux); anything else is ignored here — pipe2 checks its flags.
pub fn new_pipe_owned(flags: u32, uid: u32, gid: u32) -> (Arc<FileDescription>, Arc<FileDescription>) {
    let pipe = Pipe::new(uid, gid);
    let r = FileDescription::new(pipe.open_end(true, false), None, O_RDONLY | (flags & O_NONBLOCK));
    let w = FileDescription::new(pipe.open_end(false, true), None, O_WRONLY | (flags & (O_NONBLOCK | O_DIRECT)));
    (r, w)
}

/// A new pipe owned by root: (read end, write end). See [`new_pipe_owned`].
pub fn new_pipe(flags: u32) -> (Arc<FileDescription>, Arc<FileDescription>) {
    new_pipe_owned(flags, 0, 0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rvisor_syscalls::flags::limits::PIPE_BUF;
    use rvisor_syscalls::flags::mman::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

    use super::*;

    const NB: u32 = O_NONBLOCK;

    /// Waits for `cond` (polling the pipe's state; no blind sleeps).
    fn until(mut cond: impl FnMut() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < give_up, "condition never held");
            std::thread::yield_now();
        }
    }

    use crate::kernel::wait::test_support::spawn_with_waker as spawn;

    #[test]
    fn a_blocked_reader_is_woken_by_a_writer_on_another_thread() {
        let (r, w) = new_pipe(0);
        let r2 = r.clone();
        let (_, h) = spawn(move || {
            let mut buf = [0u8; 64];
            let n = r2.read(&mut buf)?;
            Ok::<_, Errno>(buf[..n].to_vec())
        });
        w.write(b"hello").unwrap();
        assert_eq!(h.join().unwrap(), Ok(b"hello".to_vec()));
    }

    #[test]
    fn read_is_eof_once_the_last_writer_is_gone() {
        let (r, w) = new_pipe(0);
        let dup = w.clone(); // dup(2) shares the description: still one writer
        w.write(b"ab").unwrap();
        drop(w);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf), Ok(2));
        let r2 = r.clone();
        let (_, h) = spawn(move || r2.read(&mut [0u8; 8]));
        drop(dup);
        assert_eq!(h.join().unwrap(), Ok(0), "a blocked reader sees EOF when the writer closes");
        assert_eq!(r.read(&mut buf), Ok(0));
    }

    #[test]
    fn writing_without_a_reader_is_epipe() {
        let (r, w) = new_pipe(0);
        drop(r);
        assert_eq!(w.write(b"x"), Err(Errno::EPIPE));
        assert_eq!(w.write(b""), Ok(0), "a null write succeeds even so");
        // A writer blocked on a full pipe gets EPIPE when the reader goes away.
        let (r, w) = new_pipe(0);
        w.write(&vec![0u8; 65536]).unwrap();
        let w2 = w.clone();
        let (_, h) = spawn(move || w2.write(b"more"));
        let rp = r.clone();
        until(|| rp.imp().readiness() & POLLIN != 0);
        drop(r);
        drop(rp);
        assert_eq!(h.join().unwrap(), Err(Errno::EPIPE));
    }

    #[test]
    fn nonblocking_ends_return_eagain_instead_of_blocking() {
        let (r, w) = new_pipe(NB);
        assert_eq!(r.flags() & O_NONBLOCK, O_NONBLOCK);
        assert_eq!(r.read(&mut [0u8; 4]), Err(Errno::EAGAIN));
        // One byte at a time the default pipe holds exactly 64 KiB.
        let mut total = 0;
        while w.write(b"z").is_ok() {
            total += 1;
        }
        assert_eq!(total, 65536);
        assert_eq!(w.write(b"z"), Err(Errno::EAGAIN));
        // Room for one page: a large write is partial, an atomic one waits for its page.
        let mut page = vec![0u8; PIPE_BUF];
        assert_eq!(r.read(&mut page), Ok(PIPE_BUF));
        assert_eq!(w.write(&[1u8; 3 * PIPE_BUF]), Ok(PIPE_BUF));
        assert_eq!(w.write(b"z"), Err(Errno::EAGAIN));
    }

    #[test]
    fn capacity_is_counted_in_pages_like_linux() {
        let (_r, w) = new_pipe(NB);
        // 100-byte writes merge into a page while they fit: 40 per page.
        let mut total = 0;
        while let Ok(n) = w.write(&[7u8; 100]) {
            total += n;
        }
        assert_eq!(total, 16 * 40 * 100);
        let (_r, w) = new_pipe(NB);
        let mut writes = 0;
        while w.write(&[7u8; PIPE_BUF]).is_ok() {
            writes += 1;
        }
        assert_eq!(writes, DEFAULT_PIPE_SLOTS);
    }

    #[test]
    fn f_setpipe_sz_rounds_limits_and_refuses_to_drop_data() {
        let (r, w) = new_pipe(NB);
        let imp = w.imp();
        assert_eq!(imp.pipe_size(), Some(65536));
        assert_eq!(imp.set_pipe_size(0), Ok(4096));
        assert_eq!(r.imp().pipe_size(), Some(4096), "both ends see one pipe");
        assert_eq!(imp.set_pipe_size(5000), Ok(8192));
        assert_eq!(imp.set_pipe_size(1 << 20), Ok(1 << 20));
        assert_eq!(imp.set_pipe_size((1 << 20) + 1), Err(Errno::EPERM));
        assert_eq!(imp.set_pipe_size((1 << 31) + 1), Err(Errno::EINVAL));
        imp.set_pipe_size(8192).unwrap();
        assert_eq!(w.write(&[1u8; 8192]), Ok(8192));
        assert_eq!(w.write(b"x"), Err(Errno::EAGAIN), "full at the new size");
        assert_eq!(imp.set_pipe_size(4096), Err(Errno::EBUSY));
        assert_eq!(imp.set_pipe_size(16384), Ok(16384));
        assert_eq!(w.write(b"x"), Ok(1));
        let file = crate::vfs::host::HostRegularFile::new(std::fs::File::open("/dev/null").unwrap().into());
        assert_eq!(file.pipe_size(), None, "not a pipe");
        assert_eq!(file.set_pipe_size(4096), Err(Errno::EBADF));
    }

    #[test]
    fn small_writes_from_concurrent_writers_never_interleave() {
        // Records of up to PIPE_BUF bytes, each filled with one byte identifying its
        // writer; sizes chosen so that records straddle page boundaries if split.
        for size in [3000usize, PIPE_BUF] {
            let (r, w) = new_pipe(0);
            let per_writer = 200;
            let hs: Vec<_> = (1..=2u8)
                .map(|id| {
                    let w = w.clone();
                    std::thread::spawn(move || {
                        for _ in 0..per_writer {
                            assert_eq!(w.write(&vec![id; size]), Ok(size));
                        }
                    })
                })
                .collect();
            drop(w);
            let mut all = Vec::new();
            let mut buf = vec![0u8; 10_000];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(all.len(), 2 * per_writer * size);
            for rec in all.chunks(size) {
                assert!(rec.iter().all(|&b| b == rec[0]), "a record of {size} bytes was interleaved");
            }
        }
    }

    #[test]
    fn a_large_blocking_write_completes_as_the_reader_drains() {
        let (r, w) = new_pipe(0);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let (_, h) = spawn(move || w.write(&data));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 7000];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(h.join().unwrap(), Ok(300_000));
        assert!(got == expect);
    }

    #[test]
    fn signals_interrupt_blocked_reads_and_writes() {
        let (r, w) = new_pipe(0);
        let r2 = r.clone();
        let (waker, h) = spawn(move || r2.read(&mut [0u8; 4]));
        waker.interrupt();
        assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
        // A large write interrupted after progress returns the bytes written.
        let w2 = w.clone();
        let (waker, h) = spawn(move || w2.write(&vec![3u8; 100_000]));
        let rp = r.clone();
        until(|| rp.imp().readiness() & POLLIN != 0 && w.imp().readiness() & POLLOUT == 0);
        waker.interrupt();
        assert_eq!(h.join().unwrap(), Ok(65536));
    }

    #[test]
    fn packet_mode_keeps_write_boundaries() {
        let (r, w) = new_pipe(O_DIRECT);
        assert_eq!(w.flags() & O_DIRECT, O_DIRECT);
        assert_eq!(r.flags() & O_DIRECT, 0, "as in Linux only the write end has O_DIRECT");
        w.write(b"0123456789").unwrap();
        w.write(b"abcdefghijklmnopqrst").unwrap();
        w.write(&[9u8; 5000]).unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(r.read(&mut buf), Ok(10));
        assert_eq!(r.read(&mut buf[..5]), Ok(5), "a short read consumes the whole packet");
        assert_eq!(&buf[..5], b"abcde");
        let mut big = vec![0u8; 10_000];
        assert_eq!(r.read(&mut big), Ok(PIPE_BUF), "large writes are split into page packets");
        assert_eq!(r.read(&mut big), Ok(5000 - PIPE_BUF));
        // Each packet takes a buffer: 16 one-byte packets fill the pipe.
        let (_r, w) = new_pipe(O_DIRECT | NB);
        for _ in 0..DEFAULT_PIPE_SLOTS {
            w.write(b"p").unwrap();
        }
        assert_eq!(w.write(b"p"), Err(Errno::EAGAIN));
    }

    #[test]
    fn readiness_follows_contents_and_ends() {
        let (r, w) = new_pipe(NB);
        assert_eq!(r.imp().readiness(), 0);
        assert_eq!(w.imp().readiness(), POLLOUT | POLLWRNORM);
        w.write(b"x").unwrap();
        assert_eq!(r.imp().readiness(), POLLIN | POLLRDNORM);
        while w.write(&[0u8; PIPE_BUF]).is_ok() {}
        assert_eq!(w.imp().readiness(), 0, "full: no POLLOUT");
        let dup = w.clone();
        drop(w);
        assert_eq!(r.imp().readiness(), POLLIN | POLLRDNORM, "a dup still writes");
        drop(dup);
        assert_eq!(r.imp().readiness(), POLLIN | POLLRDNORM | POLLHUP);
        let (r, w) = new_pipe(NB);
        drop(r);
        assert_eq!(w.imp().readiness(), POLLOUT | POLLWRNORM | POLLERR);
    }

    #[test]
    fn fstat_shows_a_fifo_with_a_stable_inode_and_fionread_counts_bytes() {
        let (r, w) = new_pipe(0);
        let (r2, _w2) = new_pipe(0);
        let st = r.imp().stat().unwrap();
        assert_eq!(st.st_mode, S_IFIFO | 0o600);
        assert_eq!(st.st_blksize, 4096);
        assert_eq!(st.st_dev, PIPEFS_DEV);
        assert_eq!(w.imp().stat().unwrap().st_ino, st.st_ino, "both ends are one inode");
        assert_ne!(r2.imp().stat().unwrap().st_ino, st.st_ino);
        assert!(r.imp().is_stream());
        assert_eq!(r.seek(0, 0), Err(Errno::ESPIPE));
        assert_eq!(r.pread(&mut [0u8; 1], 0), Err(Errno::ESPIPE));
        assert_eq!(w.write(b"abc"), Ok(3));
        let (mm, _, _) = crate::mm::testutil::new_mm();
        let a = mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, None).unwrap();
        assert_eq!(r.imp().ioctl(&mm, FIONREAD, a), Ok(0));
        assert_eq!(mm.read_obj::<i32>(a), Ok(3));
        assert_eq!(w.imp().ioctl(&mm, FIONREAD, a + 4), Ok(0));
        assert_eq!(mm.read_obj::<i32>(a + 4), Ok(3));
        assert_eq!(r.imp().ioctl(&mm, 0x5401, a), Err(Errno::ENOTTY));
    }

    #[test]
    fn pipe_budget_shrinks_new_pipes_past_the_soft_and_hard_caps() {
        let b = PipeBudget::new(32, 52);
        assert_eq!(b.charge_new(), DEFAULT_PIPE_SLOTS);
        assert_eq!(b.charge_new(), DEFAULT_PIPE_SLOTS);
        assert_eq!(b.charge_new(), DEFAULT_PIPE_SLOTS, "at the soft cap, not over it");
        assert_eq!(b.charge_new(), MIN_DEF_SLOTS);
        for _ in 0..2 {
            assert_eq!(b.charge_new(), MIN_DEF_SLOTS);
        }
        assert_eq!(b.charge_new(), 1, "over the hard cap");
        assert_eq!(b.pages.load(Ordering::Relaxed), 16 * 3 + 2 * 3 + 1);
        // Growing is refused over a cap, shrinking always works and gives pages back.
        assert_eq!(b.charge_resize(1, 256), Err(Errno::EPERM));
        b.charge_resize(16, 1).unwrap();
        b.uncharge(16 + 16 + 2 * 3 + 1 + 1);
        assert_eq!(b.pages.load(Ordering::Relaxed), 0);
        b.charge_resize(16, 32).unwrap();
        assert_eq!(b.charge_resize(16, 64), Err(Errno::EPERM), "past the soft cap");
    }

    #[test]
    fn pipe_caps_scale_with_the_memory_limit() {
        assert_eq!(caps_for(0), (DEFAULT_PIPE_PAGES_SOFT, 0));
        // 256 MiB: 16 MiB before pipes shrink, 32 MiB before they are minimal.
        assert_eq!(caps_for(256 << 20), (4096, 8192));
        assert_eq!(caps_for(1 << 40), (DEFAULT_PIPE_PAGES_SOFT, (1 << 40) / 4096 / 8));
        assert_eq!(caps_for(4096), (DEFAULT_PIPE_SLOTS, DEFAULT_PIPE_SLOTS));
    }
}
