//! Sandbox-wide budgets of sentry memory that the guest controls: bytes it queues in the
//! sentry's heap (socket buffers), outside the guest's memory file and its OOM killer.
//!
//! A [`MemBudget`] counts bytes against a cap. A queued buffer holds a [`Charge`], which
//! returns its bytes when released or dropped, so a buffer freed by any path (read, close
//! of a socket with queued data, files in flight dropped with their message) gives its
//! bytes back and the count cannot leak.
//!
//! A caller that finds the budget full behaves as with a full socket buffer: it fails with
//! EAGAIN or blocks. So that it learns when another buffer anywhere frees space, it
//! registers its wait queue ([`MemBudget::wait_for_space`]) before checking again; the next
//! release notifies every registered queue (blocked senders, poll, select and epoll all
//! wait on those queues) and forgets them. Registration and release order their atomics
//! so that either the release sees the registration or the re-check sees the freed bytes.
//!
//! Notifying a queue only wakes wakers (no file locks are taken), so a charge may be
//! released while its owner's lock is held.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::wait::WaitQueue;

/// Bytes counted against a cap, and the queues waiting for some of them to free.
#[derive(Debug)]
pub struct MemBudget {
    used: AtomicUsize,
    max: AtomicUsize,
    /// Set while `starved` may be non-empty.
    has_starved: AtomicBool,
    /// Queues to notify when bytes free, by address (no duplicates).
    starved: Mutex<BTreeMap<usize, Arc<WaitQueue>>>,
}

impl MemBudget {
    pub const fn new(max: usize) -> MemBudget {
        MemBudget {
            used: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            has_starved: AtomicBool::new(false),
            starved: Mutex::new(BTreeMap::new()),
        }
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the cap. Charges above a lowered cap stay until released; new ones wait.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
        self.wake_starved();
    }

    /// Bytes that may still be charged.
    pub fn free(&self) -> usize {
        self.max().saturating_sub(self.used())
    }

    /// Charges exactly `n` bytes, or nothing (None) when they do not fit.
    pub fn try_charge(&'static self, n: usize) -> Option<Charge> {
        self.try_charge_between(n, n)
    }

    /// Charges as many bytes as fit, up to `most`, but at least `least` (None when fewer
    /// than `least` fit). `least` is taken as at most `most`.
    pub fn try_charge_between(&'static self, least: usize, most: usize) -> Option<Charge> {
        let least = least.min(most);
        let max = self.max();
        let mut got = 0;
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let room = max.saturating_sub(used);
                if room < least {
                    return None;
                }
                got = room.min(most);
                Some(used + got)
            })
            .ok()?;
        Some(Charge {
            budget: self,
            bytes: got,
        })
    }

    /// Registers `q` to be notified at the next release. Call it before re-checking the
    /// budget, after a charge failed.
    pub fn wait_for_space(&self, q: &Arc<WaitQueue>) {
        let mut starved = self.starved.lock().unwrap_or_else(|p| p.into_inner());
        starved.insert(Arc::as_ptr(q) as usize, q.clone());
        self.has_starved.store(true, Ordering::SeqCst);
    }

    fn uncharge(&self, n: usize) {
        if n == 0 {
            return;
        }
        // Never below zero, whatever happens.
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(n))
            });
        self.wake_starved();
    }

    /// Notifies (and forgets) every queue waiting for space.
    fn wake_starved(&self) {
        if !self.has_starved.load(Ordering::SeqCst) {
            return;
        }
        let queues = {
            let mut starved = self.starved.lock().unwrap_or_else(|p| p.into_inner());
            self.has_starved.store(false, Ordering::SeqCst);
            std::mem::take(&mut *starved)
        };
        for q in queues.values() {
            q.notify_all();
        }
    }

    /// Queues registered and not yet notified (tests).
    #[cfg(test)]
    pub(crate) fn starved_len(&self) -> usize {
        self.starved.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Bytes charged to a budget; dropping it returns them.
#[derive(Debug)]
pub struct Charge {
    budget: &'static MemBudget,
    bytes: usize,
}

impl Charge {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns up to `n` of the bytes held.
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        self.budget.uncharge(n);
    }

    /// Takes over `other`'s bytes (same budget; from another budget they are kept apart
    /// by releasing `other` as usual).
    pub fn absorb(&mut self, mut other: Charge) {
        if std::ptr::eq(self.budget, other.budget) {
            self.bytes += std::mem::take(&mut other.bytes);
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.uncharge(self.bytes);
    }
}

/// Socket buffers of the whole sandbox: AF_UNIX queues, netlink answers, and the network
/// stack's sockets' buffers (which smoltcp allocates whole, charged while the socket lives).
pub static SOCKET_BUFFERS: MemBudget = MemBudget::new(DEFAULT_SOCKET_BUFFERS);

/// The socket buffer cap before the sandbox sets one, and the least it gets without a memory
/// limit: 256 MiB, enough for a thousand connections each holding a full default SO_SNDBUF
/// (or, in the network stack, some 2400 loopback connections at full size).
pub const DEFAULT_SOCKET_BUFFERS: usize = 256 << 20;
/// The smallest cap, whatever the memory limit: 4 MiB, about ten sockets with a full
/// buffer (the largest datagram, 2 x 212992 bytes, always fits an empty budget).
pub const MIN_SOCKET_BUFFERS: usize = 4 << 20;

/// The socket buffer cap for a memory limit in bytes (0: none): an eighth of it, as the
/// pipes' hard cap, so that both fit the quarter of the limit the host cgroup adds for the
/// sentry's heap (runsc-cli's `host_memory_limit`); at least [`MIN_SOCKET_BUFFERS`].
/// Without a limit, Linux's own default for all TCP buffers (`tcp_mem`'s maximum, 3/32 of
/// the memory), at least [`DEFAULT_SOCKET_BUFFERS`]: a sandbox without a limit holds as many
/// connections as the host would.
pub fn socket_buffers_for(memory_limit: u64) -> usize {
    if memory_limit == 0 {
        return host_memory()
            .map(|ram| usize::try_from(ram / 32 * 3).unwrap_or(usize::MAX))
            .unwrap_or(0)
            .max(DEFAULT_SOCKET_BUFFERS);
    }
    usize::try_from(memory_limit / 8)
        .unwrap_or(usize::MAX)
        .max(MIN_SOCKET_BUFFERS)
}

/// The host's total memory in bytes, if it can tell.
fn host_memory() -> Option<u64> {
    // SAFETY: an all-zero sysinfo is a valid value for the kernel to fill in.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo writes one struct sysinfo to a live local.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    (info.totalram as u64).checked_mul(u64::from(info.mem_unit.max(1)))
}

/// Scales the sandbox's socket buffer cap to its memory limit (0: none).
pub fn set_memory_limit(memory_limit: u64) {
    SOCKET_BUFFERS.set_max(socket_buffers_for(memory_limit));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::wait::block_on;
    use crate::kernel::wait::test_support::spawn_with_waker;

    fn leak(max: usize) -> &'static MemBudget {
        Box::leak(Box::new(MemBudget::new(max)))
    }

    #[test]
    fn charges_are_bounded_and_dropping_them_returns_every_byte() {
        let b = leak(100);
        let mut c = b.try_charge(60).unwrap();
        assert!(b.try_charge(41).is_none());
        let d = b.try_charge_between(1, 100).unwrap();
        assert_eq!((d.bytes(), b.used(), b.free()), (40, 100, 0));
        assert!(b.try_charge_between(1, 5).is_none());
        c.release(10);
        assert_eq!(b.used(), 90);
        c.release(1000);
        assert_eq!((c.bytes(), b.used()), (0, 40));
        let mut e = b.try_charge(20).unwrap();
        e.absorb(d);
        assert_eq!((e.bytes(), b.used()), (60, 60));
        drop(c);
        drop(e);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_lowered_cap_refuses_new_charges_until_old_ones_go() {
        let b = leak(100);
        let c = b.try_charge(80).unwrap();
        b.set_max(50);
        assert!(b.try_charge(1).is_none());
        drop(c);
        assert!(b.try_charge(50).is_some());
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_release_notifies_registered_queues_once_and_wakes_a_blocked_waiter() {
        let b = leak(10);
        let held = b.try_charge(10).unwrap();
        let q = Arc::new(WaitQueue::new());
        let q2 = q.clone();
        let (_w, h) = spawn_with_waker(move || {
            block_on(&[&q2], None, || match b.try_charge(4) {
                Some(c) => Some(Ok(c.bytes())),
                None => {
                    b.wait_for_space(&q2);
                    b.try_charge(4).map(|c| Ok(c.bytes()))
                }
            })
        });
        while b.starved_len() == 0 {
            std::thread::yield_now();
        }
        drop(held);
        assert_eq!(h.join().unwrap(), Ok(4));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn caps_scale_with_the_memory_limit_with_a_floor_and_a_default() {
        assert!(socket_buffers_for(0) >= DEFAULT_SOCKET_BUFFERS);
        assert_eq!(socket_buffers_for(16 << 20), MIN_SOCKET_BUFFERS);
        assert_eq!(socket_buffers_for(1 << 30), 128 << 20);
    }
}
