//! eventfd(2): a 64-bit counter that read(2) takes and write(2) adds to.
//!
//! As in Linux: reads and writes move exactly 8 bytes (a shorter buffer is EINVAL); a read
//! blocks while the counter is zero and returns it (resetting it to zero), or returns 1 and
//! decrements it in semaphore mode; a write adds its value, EINVAL for `u64::MAX`, and
//! blocks while the sum would exceed `u64::MAX - 1`. `O_NONBLOCK` turns both waits into
//! EAGAIN. Readiness is `POLLIN` while the counter is non-zero, `POLLOUT` while a write of
//! 1 would not block, and `POLLERR` at `u64::MAX` (unreachable through write(2)). Every
//! change notifies the wait queue that blocked readers, writers, poll and epoll wait on.

use std::sync::{Mutex, MutexGuard};

use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLERR, POLLIN, POLLOUT};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use crate::kernel::wait::{block_on, WaitQueue};

/// The device number of anonymous-inode files (eventfd, epoll), standing in for Linux's
/// anon_inodefs.
pub const ANON_INODE_DEV: u64 = 0x0d;
/// The inode number every anonymous-inode file shares (Linux has one anon inode).
pub const ANON_INODE_INO: u64 = 1;

/// The stat of an anonymous-inode file: mode 0600 without a file type, as Linux shows.
pub fn anon_inode_stat(uid: u32, gid: u32) -> Stat {
    Stat { st_dev: ANON_INODE_DEV, st_ino: ANON_INODE_INO, st_nlink: 1, st_mode: 0o600, st_uid: uid, st_gid: gid, st_blksize: 4096, ..Default::default() }
}

/// An eventfd counter.
pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    queue: WaitQueue,
    uid: u32,
    gid: u32,
}

impl EventFd {
    /// A counter starting at `initval`; `semaphore`: EFD_SEMAPHORE.
    pub fn new(initval: u64, semaphore: bool, uid: u32, gid: u32) -> EventFd {
        EventFd { count: Mutex::new(initval), semaphore, queue: WaitQueue::new(), uid, gid }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the counter (or 1 in semaphore mode); `None` while it is zero.
    fn try_take(&self) -> Option<u64> {
        let mut c = self.lock();
        if *c == 0 {
            return None;
        }
        let v = if self.semaphore { 1 } else { *c };
        *c -= v;
        drop(c);
        self.queue.notify_all();
        Some(v)
    }

    /// Adds `v`; `false` if the sum would pass `u64::MAX - 1`.
    fn try_add(&self, v: u64) -> bool {
        let mut c = self.lock();
        if u64::MAX - *c <= v {
            return false;
        }
        *c += v;
        drop(c);
        if v != 0 {
            self.queue.notify_all();
        }
        true
    }

    /// The counter now (for tests and fdinfo).
    pub fn count(&self) -> u64 {
        *self.lock()
    }
}

impl FileImpl for EventFd {
    fn anon_name(&self) -> Option<&'static str> {
        Some("[eventfd]")
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = match self.try_take() {
            Some(v) => v,
            None if flags & O_NONBLOCK != 0 => return Err(Errno::EAGAIN),
            None => block_on(&[&self.queue], None, || self.try_take().map(Ok))?,
        };
        buf[..8].copy_from_slice(&v.to_ne_bytes());
        Ok(8)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        let Some(bytes) = buf.get(..8) else { return Err(Errno::EINVAL) };
        let mut raw = [0u8; 8];
        raw.copy_from_slice(bytes);
        let v = u64::from_ne_bytes(raw);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        if !self.try_add(v) {
            if flags & O_NONBLOCK != 0 {
                return Err(Errno::EAGAIN);
            }
            block_on(&[&self.queue], None, || self.try_add(v).then_some(Ok(())))?;
        }
        Ok(8)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon_inode_stat(self.uid, self.gid))
    }

    fn is_stream(&self) -> bool {
        true
    }

    /// Linux's `noop_llseek`: the position stays 0.
    fn seek(&self, _offset: i64, _whence: u32) -> Result<u64, Errno> {
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        let c = *self.lock();
        let mut ev = 0;
        if c > 0 {
            ev |= POLLIN;
        }
        if c == u64::MAX {
            ev |= POLLERR;
        }
        if u64::MAX - 1 > c {
            ev |= POLLOUT;
        }
        ev
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn val(v: u64) -> [u8; 8] {
        v.to_ne_bytes()
    }

    #[test]
    fn eventfd_read_takes_the_counter_and_semaphore_mode_takes_one() {
        let e = EventFd::new(3, false, 0, 0);
        let mut b = [0u8; 8];
        assert_eq!(e.read(&mut b, 0, O_NONBLOCK), Ok(8));
        assert_eq!(u64::from_ne_bytes(b), 3);
        assert_eq!(e.read(&mut b, 0, O_NONBLOCK), Err(Errno::EAGAIN));
        let s = EventFd::new(2, true, 0, 0);
        for _ in 0..2 {
            assert_eq!(s.read(&mut b, 0, O_NONBLOCK), Ok(8));
            assert_eq!(u64::from_ne_bytes(b), 1);
        }
        assert_eq!(s.read(&mut b, 0, O_NONBLOCK), Err(Errno::EAGAIN));
    }

    #[test]
    fn eventfd_rejects_short_buffers_and_the_max_value_and_refuses_overflow() {
        let e = EventFd::new(0, false, 0, 0);
        assert_eq!(e.read(&mut [0u8; 7], 0, O_NONBLOCK), Err(Errno::EINVAL));
        assert_eq!(e.write(&[0u8; 4], 0, O_NONBLOCK), Err(Errno::EINVAL));
        assert_eq!(e.write(&val(u64::MAX), 0, O_NONBLOCK), Err(Errno::EINVAL));
        assert_eq!(e.write(&val(u64::MAX - 1), 0, O_NONBLOCK), Ok(8));
        assert_eq!(e.readiness(), POLLIN);
        assert_eq!(e.write(&val(1), 0, O_NONBLOCK), Err(Errno::EAGAIN));
        assert_eq!(e.write(&val(0), 0, O_NONBLOCK), Ok(8), "adding 0 never blocks");
        assert_eq!(e.count(), u64::MAX - 1);
    }

    #[test]
    fn eventfd_readiness_follows_the_counter() {
        let e = EventFd::new(0, false, 0, 0);
        assert_eq!(e.readiness(), POLLOUT);
        e.write(&val(5), 0, 0).unwrap();
        assert_eq!(e.readiness(), POLLIN | POLLOUT);
        assert_eq!(e.stat().unwrap().st_mode, 0o600);
    }

    #[test]
    fn eventfd_blocked_read_is_woken_by_a_write() {
        let e = Arc::new(EventFd::new(0, false, 0, 0));
        let e2 = e.clone();
        let h = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            e2.read(&mut b, 0, 0).map(|_| u64::from_ne_bytes(b))
        });
        std::thread::sleep(Duration::from_millis(10));
        e.write(&val(7), 0, 0).unwrap();
        assert_eq!(h.join().unwrap(), Ok(7));
        assert_eq!(e.count(), 0);
    }
}
