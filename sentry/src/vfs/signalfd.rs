//! signalfd(2): pending signals read as `struct signalfd_siginfo` records.
//!
//! As in Linux, a signalfd has no signals of its own: a read takes pending signals in its
//! mask from the *reading* task (its own queue first, then its process's; lowest number
//! first), and poll reports POLLIN while the polling task has one pending. The task
//! running on the current host thread is `kernel::task::current_task`; on a thread without
//! a task (unit tests) the creator stands in.
//!
//! A blocked reader or poller waits on one sandbox-wide queue that signal generation
//! notifies ([`signal_queued`]), and only while at least one signalfd exists, so sending a
//! signal costs one atomic load otherwise.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use rvisor_syscalls::fdkinds::SignalfdSiginfo;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLIN, POLLRDNORM};
use rvisor_syscalls::flags::signal::{SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
use rvisor_syscalls::types::{SigSet, Stat};
use rvisor_syscalls::{Errno, Pod};

use super::eventfd::anon_inode_stat;
use super::file::FileImpl;
use crate::kernel::signal::{code, SignalInfo, UNBLOCKABLE};
use crate::kernel::task::{current_task, TaskHandle};
use crate::kernel::wait::{block_on, WaitQueue};

/// `sizeof(struct signalfd_siginfo)`.
pub const SIGINFO_SIZE: usize = 128;

static LIVE: AtomicUsize = AtomicUsize::new(0);

fn queue() -> &'static WaitQueue {
    static Q: OnceLock<WaitQueue> = OnceLock::new();
    Q.get_or_init(WaitQueue::new)
}

/// Called after a signal became pending: wakes signalfd readers and pollers, if any exist.
pub fn signal_queued() {
    if LIVE.load(Ordering::Relaxed) != 0 {
        queue().notify_all();
    }
}

/// A signalfd.
pub struct SignalFd {
    mask: AtomicU64,
    creator: Weak<TaskHandle>,
    uid: u32,
    gid: u32,
}

impl SignalFd {
    pub fn new(mask: SigSet, creator: &Arc<TaskHandle>, uid: u32, gid: u32) -> Arc<SignalFd> {
        LIVE.fetch_add(1, Ordering::Relaxed);
        let s = SignalFd {
            mask: AtomicU64::new(0),
            creator: Arc::downgrade(creator),
            uid,
            gid,
        };
        s.set_mask(mask);
        Arc::new(s)
    }

    /// Replaces the mask (SIGKILL and SIGSTOP are silently dropped).
    pub fn set_mask(&self, mask: SigSet) {
        self.mask.store(mask.0 & !UNBLOCKABLE.0, Ordering::Relaxed);
        queue().notify_all();
    }

    pub fn mask(&self) -> SigSet {
        SigSet(self.mask.load(Ordering::Relaxed))
    }

    fn task(&self) -> Option<Arc<TaskHandle>> {
        current_task().or_else(|| self.creator.upgrade())
    }

    /// Takes the lowest pending signal of `h` in the mask: the thread's queue first, then
    /// the process's.
    fn take(&self, h: &TaskHandle) -> Option<SignalInfo> {
        let set = self.mask();
        let mut g = h.tg.lock();
        let mut s = h.signals();
        let pick = |q: &std::collections::VecDeque<SignalInfo>| {
            q.iter()
                .enumerate()
                .filter(|(_, i)| set.contains(i.signo))
                .min_by_key(|(n, i)| (i.signo, *n))
                .map(|(n, _)| n)
        };
        if let Some(n) = pick(&s.pending) {
            return s.pending.remove(n);
        }
        let n = pick(&g.shared_pending)?;
        g.shared_pending.remove(n)
    }

    fn has_pending(&self, h: &TaskHandle) -> bool {
        let set = self.mask();
        let g = h.tg.lock();
        let s = h.signals();
        s.pending
            .iter()
            .chain(g.shared_pending.iter())
            .any(|i| set.contains(i.signo))
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The record a read returns for `info`, laid out by the siginfo's union member as Linux's
/// `signalfd_copyinfo` does.
pub fn record_of(info: &SignalInfo) -> SignalfdSiginfo {
    let raw = info.to_bytes();
    let i32_at = |o: usize| i32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
    let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap_or([0; 8]));
    let mut r = SignalfdSiginfo {
        ssi_signo: info.signo,
        ssi_errno: i32_at(4),
        ssi_code: i32_at(8),
        ..Default::default()
    };
    let fault = matches!(info.signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP);
    match r.ssi_code {
        code::SI_TIMER => {
            r.ssi_tid = i32_at(16) as u32;
            r.ssi_overrun = i32_at(20) as u32;
            r.ssi_int = i32_at(24);
            r.ssi_ptr = u64_at(24);
        }
        c if c < 0 => {
            r.ssi_pid = i32_at(16) as u32;
            r.ssi_uid = i32_at(20) as u32;
            r.ssi_int = i32_at(24);
            r.ssi_ptr = u64_at(24);
        }
        c if c > 0 && c != code::SI_KERNEL && fault => r.ssi_addr = u64_at(16),
        c if c > 0 && c != code::SI_KERNEL && info.signo == SIGCHLD => {
            r.ssi_pid = i32_at(16) as u32;
            r.ssi_uid = i32_at(20) as u32;
            r.ssi_status = i32_at(24);
        }
        _ => {
            r.ssi_pid = i32_at(16) as u32;
            r.ssi_uid = i32_at(20) as u32;
        }
    }
    r
}

/// The file side of a signalfd.
pub struct SignalFile(pub Arc<SignalFd>);

impl FileImpl for SignalFile {
    fn anon_name(&self) -> Option<&'static str> {
        Some("[signalfd]")
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        let max = buf.len() / SIGINFO_SIZE;
        if max == 0 {
            return Err(Errno::EINVAL);
        }
        let h = self.0.task().ok_or(Errno::EAGAIN)?;
        let mut n = 0;
        while n < max {
            let info = match self.0.take(&h) {
                Some(i) => i,
                None if n > 0 || flags & O_NONBLOCK != 0 => break,
                None => block_on(&[queue()], None, || self.0.take(&h).map(Ok))?,
            };
            let rec = record_of(&info);
            buf[n * SIGINFO_SIZE..(n + 1) * SIGINFO_SIZE].copy_from_slice(rec.as_bytes());
            n += 1;
        }
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n * SIGINFO_SIZE)
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
        match self.0.task() {
            Some(h) if self.0.has_pending(&h) => POLLIN | POLLRDNORM,
            _ => 0,
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(queue())
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvisor_syscalls::flags::signal::{SIGKILL, SIGUSR1, SIGUSR2};

    #[test]
    fn a_kill_record_carries_pid_and_uid_and_a_queued_one_its_value() {
        let r = record_of(&SignalInfo::user(SIGUSR1, code::SI_USER, 42, 1000));
        assert_eq!(
            (r.ssi_signo, r.ssi_code, r.ssi_pid, r.ssi_uid, r.ssi_int),
            (SIGUSR1, 0, 42, 1000, 0)
        );
        let mut q = SignalInfo::user(SIGUSR2, code::SI_QUEUE, 7, 0);
        q.value = 0x1234;
        let r = record_of(&q);
        assert_eq!((r.ssi_pid, r.ssi_int, r.ssi_ptr), (7, 0x1234, 0x1234));
        let f = record_of(&SignalInfo::fault(SIGSEGV, 1, 0xdead000));
        assert_eq!((f.ssi_addr, f.ssi_pid), (0xdead000, 0));
    }

    #[test]
    fn sigkill_and_sigstop_are_dropped_from_the_mask() {
        let mut m = SigSet::of(SIGUSR1);
        m.0 |= SigSet::of(SIGKILL).0;
        assert_eq!(SigSet(m.0 & !UNBLOCKABLE.0), SigSet::of(SIGUSR1));
    }
}
