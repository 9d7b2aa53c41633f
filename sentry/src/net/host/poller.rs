//! One thread per [`super::HostNetwork`] that waits on a host epoll instance holding every
//! host socket (edge-triggered, EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI) and wakes the
//! socket's [`WaitQueue`] whenever the host reports an event. Blocked guest calls re-try
//! their host call on each wake-up; poll/epoll in the guest re-read readiness.
//!
//! Sockets are known to the thread by a token (never reused) in a table of weak queue
//! references; a closing socket removes its token, and closing its host fd removes it
//! from the epoll set.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rvisor_syscalls::Errno;

use super::sys;
use crate::kernel::wait::WaitQueue;

/// The token of the poller's own wake-up eventfd.
const STOP_TOKEN: u64 = 0;

type Table = Mutex<HashMap<u64, Weak<WaitQueue>>>;

/// The epoll instance, its table and the thread serving them.
pub struct Poller {
    epoll: Arc<OwnedFd>,
    table: Arc<Table>,
    next: AtomicU64,
    stop: Arc<AtomicBool>,
    wake: Arc<OwnedFd>,
}

/// A socket's place in the poller; dropping it forgets the socket.
pub struct Registration {
    token: u64,
    table: Arc<Table>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.token);
    }
}

impl Poller {
    /// Creates the epoll instance and starts the thread.
    pub fn start() -> Result<Arc<Poller>, Errno> {
        let epoll = Arc::new(sys::epoll_create()?);
        let wake = Arc::new(sys::eventfd()?);
        sys::epoll_add(&epoll, wake.as_raw_fd(), libc::EPOLLIN as u32, STOP_TOKEN)?;
        let table: Arc<Table> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (ep, tb, st, wk) = (epoll.clone(), table.clone(), stop.clone(), wake.clone());
        std::thread::Builder::new()
            .name("host-net-poll".into())
            .spawn(move || run(ep, tb, st, wk))
            .map_err(|_| Errno::EAGAIN)?;
        Ok(Arc::new(Poller {
            epoll,
            table,
            next: AtomicU64::new(STOP_TOKEN + 1),
            stop,
            wake,
        }))
    }

    /// Adds a host socket whose events wake `queue`.
    pub fn register(&self, fd: &OwnedFd, queue: &Arc<WaitQueue>) -> Result<Registration, Errno> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, Arc::downgrade(queue));
        let reg = Registration {
            token,
            table: self.table.clone(),
        };
        let events =
            libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET;
        sys::epoll_add(&self.epoll, fd.as_raw_fd(), events as u32, token)?;
        Ok(reg)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        sys::eventfd_signal(&self.wake);
    }
}

fn run(epoll: Arc<OwnedFd>, table: Arc<Table>, stop: Arc<AtomicBool>, _wake: Arc<OwnedFd>) {
    sys::block_all_signals();
    let mut tokens = Vec::new();
    let mut queues = Vec::new();
    loop {
        if let Err(e) = sys::epoll_wait(&epoll, &mut tokens) {
            tracing::error!("host network: epoll_wait failed: {e}; socket wake-ups stop");
            return;
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        {
            let t = table.lock().unwrap_or_else(|p| p.into_inner());
            queues.extend(
                tokens
                    .iter()
                    .filter(|&&k| k != STOP_TOKEN)
                    .filter_map(|k| t.get(k))
                    .filter_map(Weak::upgrade),
            );
        }
        for q in queues.drain(..) {
            q.notify_all();
        }
    }
}
