//! The stack's shared state under one lock, the lock guard that notifies waiters and
//! re-arms the stack thread's timer once released, and the socket bookkeeping every
//! protocol uses (adding/removing smoltcp sockets, readiness snapshots, orphans).
//!
//! Every smoltcp socket holds a charge on the sandbox's socket buffer budget for the whole
//! of its buffers ([`bufs`](super::bufs), [`State::add_charged`]), returned when it leaves
//! its set ([`State::remove_socket`]: closed, finished orphan, listener pool, UDP/ICMP
//! rebind or close). Under budget pressure TCP connections the guest closed give theirs back
//! as soon as they reach TIME_WAIT, as Linux ends TIME_WAIT early when it has too many.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_syscalls::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, tcp, udp, AnySocket};
use smoltcp::time::Instant;

use super::bufs::{self, TcpParams};
use super::iface::{Dev, Kind, Links, Watch, LO};
use super::listen::Listener;
use super::ports::Ports;
use super::MAX_SOCKETS;
use crate::kernel::membudget::{Charge, MemBudget};
use crate::kernel::wait::WaitQueue;
use crate::net::NetError;

/// What a guest socket file shares with the stack: the queue its waiters sleep on.
#[derive(Default)]
pub(crate) struct Core {
    pub wq: WaitQueue,
    /// A connected UDP socket's peer (a leaf lock: taken under the stack's), so that an
    /// ICMP port unreachable about a datagram to it becomes `error`.
    pub udp_peer: Mutex<Option<std::net::SocketAddr>>,
    /// A pending asynchronous error (errno; 0: none), as Linux's sk_err.
    pub error: std::sync::atomic::AtomicI32,
}

impl Core {
    /// Takes the pending error, if any.
    pub fn take_error(&self) -> Option<Errno> {
        match self.error.swap(0, Ordering::SeqCst) {
            0 => None,
            e => Some(Errno(e)),
        }
    }
}

/// A TCP connection the guest closed, kept until smoltcp is done with it.
pub(crate) struct Orphan {
    pub link: usize,
    pub handle: SocketHandle,
    pub binding: Option<u64>,
}

pub(crate) struct State {
    pub links: Links,
    pub ports: Ports,
    pub listeners: HashMap<u64, Listener>,
    pub next_id: u64,
    pub orphans: Vec<Orphan>,
    pub nsockets: usize,
    /// The budget the sockets' buffers are charged to (the sandbox's socket buffers).
    pub budget: &'static MemBudget,
    /// The budget charges of sockets' buffers, returned by `remove_socket`.
    pub charges: HashMap<(usize, SocketHandle), Charge>,
    /// Owners whose readiness changed: notified once the lock is released.
    pub pending: Vec<Arc<Core>>,
    /// Links polled inline since the lock was taken (bit per link).
    pub touched: u64,
    /// When the stack thread will next wake on its own (None: not before a packet).
    pub armed: Option<Instant>,
    epoch: std::time::Instant,
}

/// Linux's number for a TCP state (/proc/net/tcp).
pub(crate) fn tcp_state_num(s: tcp::State) -> u8 {
    use tcp::State::*;
    match s {
        Established => 1,
        SynSent => 2,
        SynReceived => 3,
        FinWait1 => 4,
        FinWait2 => 5,
        TimeWait => 6,
        Closed => 7,
        CloseWait => 8,
        LastAck => 9,
        Listen => 10,
        Closing => 11,
    }
}

impl State {
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a smoltcp socket to `link`, watched for `owner` (ENOBUFS at the cap).
    pub fn add_socket<T: AnySocket<'static>>(
        &mut self,
        link: usize,
        s: T,
        kind: Kind,
        owner: &Arc<Core>,
    ) -> Result<SocketHandle, Errno> {
        if self.nsockets >= MAX_SOCKETS {
            return Err(Errno::ENOBUFS);
        }
        let l = self.links.links.get_mut(link).ok_or(Errno::EINVAL)?;
        let h = l.set.add(s);
        l.watches.insert(
            h,
            Watch {
                owner: Arc::downgrade(owner),
                kind,
                last: (0, 0, 0),
            },
        );
        self.nsockets += 1;
        Ok(h)
    }

    /// [`add_socket`](Self::add_socket) for a socket whose buffers hold `charge`, which
    /// is returned when the socket is removed.
    pub fn add_charged<T: AnySocket<'static>>(
        &mut self,
        link: usize,
        s: T,
        kind: Kind,
        owner: &Arc<Core>,
        charge: Charge,
    ) -> Result<SocketHandle, Errno> {
        let h = self.add_socket(link, s, kind, owner)?;
        self.charges.insert((link, h), charge);
        Ok(h)
    }

    /// A new smoltcp TCP socket for `link` and the charge of its buffers (ENOBUFS when the
    /// budget cannot take even the smallest, as Linux's connect when it cannot allocate).
    pub fn new_tcp(
        &mut self,
        p: &TcpParams,
        link: usize,
    ) -> Result<(tcp::Socket<'static>, Charge), Errno> {
        self.reap_orphans();
        bufs::tcp_socket(p, link, self.budget).ok_or_else(|| self.refused("TCP"))
    }

    /// A new smoltcp UDP socket and the charge of its buffers (ENOBUFS as `new_tcp`).
    pub fn new_udp(&mut self) -> Result<(udp::Socket<'static>, Charge), Errno> {
        self.reap_orphans();
        bufs::udp_socket(self.budget).ok_or_else(|| self.refused("UDP"))
    }

    /// A new smoltcp ICMP socket and the charge of its buffers (ENOBUFS as `new_tcp`).
    pub fn new_icmp(&mut self) -> Result<(icmp::Socket<'static>, Charge), Errno> {
        self.reap_orphans();
        bufs::icmp_socket(self.budget).ok_or_else(|| self.refused("ICMP"))
    }

    fn refused(&self, what: &str) -> Errno {
        tracing::debug!(
            used = self.budget.used(),
            max = self.budget.max(),
            sockets = self.nsockets,
            "network: socket buffer budget spent, no new {what} socket"
        );
        Errno::ENOBUFS
    }

    /// Refills the listeners that could not take new connections for lack of budget
    /// (before packets come in, so that a retried SYN finds room freed since).
    pub fn refill_starved(&mut self) {
        if self
            .links
            .links
            .iter_mut()
            .any(|l| !l.syn_drop().is_empty())
        {
            self.refill_listeners();
        }
    }

    pub fn remove_socket(&mut self, link: usize, h: SocketHandle) {
        if let Some(l) = self.links.links.get_mut(link) {
            if l.watches.remove(&h).is_some() {
                l.set.remove(h);
                self.nsockets -= 1;
                self.charges.remove(&(link, h));
            }
        }
    }

    pub fn set_owner(&mut self, link: usize, h: SocketHandle, owner: &Arc<Core>) {
        if let Some(w) = self
            .links
            .links
            .get_mut(link)
            .and_then(|l| l.watches.get_mut(&h))
        {
            w.owner = Arc::downgrade(owner);
        }
    }

    pub fn tcp(&mut self, link: usize, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.links.links[link].set.get_mut::<tcp::Socket>(h)
    }

    pub fn udp(&mut self, link: usize, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.links.links[link].set.get_mut::<udp::Socket>(h)
    }

    pub fn icmp(&mut self, link: usize, h: SocketHandle) -> &mut icmp::Socket<'static> {
        self.links.links[link].set.get_mut::<icmp::Socket>(h)
    }

    /// Runs the link inline on the caller's thread: loopback until no packet is left in
    /// flight, an ethernet link's egress (its ingress is the stack thread's).
    pub fn poll(&mut self, link: usize) {
        self.refill_starved();
        let now = self.now();
        self.touched |= 1 << link.min(63);
        if link == LO {
            for _ in 0..1024 {
                let l = &mut self.links.links[LO];
                let Dev::Loop(dev) = &mut l.dev else { break };
                let mut changed = false;
                loop {
                    match l.iface.poll_ingress_single(now, dev, &mut l.set) {
                        smoltcp::iface::PollIngressSingleResult::None => break,
                        smoltcp::iface::PollIngressSingleResult::PacketProcessed => {}
                        smoltcp::iface::PollIngressSingleResult::SocketStateChanged => {
                            changed = true;
                            break;
                        }
                    }
                }
                if changed {
                    self.refill_listeners();
                }
                self.reset_orphans_with_data(LO);
                let l = &mut self.links.links[LO];
                let Dev::Loop(dev) = &mut l.dev else { break };
                l.iface.poll_egress(now, dev, &mut l.set);
                let empty = dev.queue.is_empty();
                let unreachable = std::mem::take(&mut dev.unreachable);
                for (src, dst) in unreachable {
                    self.port_unreachable(src, dst);
                }
                if empty {
                    break;
                }
            }
        } else if link < self.links.links.len() {
            self.reset_orphans_with_data(link);
            let l = &mut self.links.links[link];
            if let Dev::Packet(dev) = &mut l.dev {
                l.iface.poll_egress(now, dev, &mut l.set);
            }
        }
        self.after_poll(link);
    }

    /// After a poll of `link`: listeners refilled, changed sockets queued for
    /// notification, finished orphans dropped.
    pub fn after_poll(&mut self, link: usize) {
        self.refill_listeners();
        let Some(l) = self.links.links.get_mut(link) else {
            return;
        };
        let set = &l.set;
        for (h, w) in l.watches.iter_mut() {
            let snap = match w.kind {
                Kind::Tcp => {
                    let s = set.get::<tcp::Socket>(*h);
                    (tcp_state_num(s.state()), s.recv_queue(), s.send_queue())
                }
                Kind::Udp => {
                    // An empty datagram adds no bytes: whether one waits counts too.
                    let s = set.get::<udp::Socket>(*h);
                    (1 + s.can_recv() as u8, s.recv_queue(), s.send_queue())
                }
                Kind::Icmp => {
                    let s = set.get::<icmp::Socket>(*h);
                    (1 + s.can_recv() as u8, s.recv_queue(), s.send_queue())
                }
            };
            if snap != w.last {
                w.last = snap;
                if let Some(o) = w.owner.upgrade() {
                    if !self.pending.iter().any(|p| Arc::ptr_eq(p, &o)) {
                        self.pending.push(o);
                    }
                }
            }
        }
        self.reap_orphans();
    }

    /// A connection the guest closed that receives data answers with a reset, as Linux
    /// (the data can never be read); dispatched by the egress that follows.
    fn reset_orphans_with_data(&mut self, link: usize) {
        for i in 0..self.orphans.len() {
            let (l, h) = (self.orphans[i].link, self.orphans[i].handle);
            if l != link || !self.links.links[l].watches.contains_key(&h) {
                continue;
            }
            let s = self.tcp(l, h);
            if s.recv_queue() > 0 && s.state() != tcp::State::Closed {
                s.abort();
            }
        }
    }

    /// An ICMP port unreachable about a UDP datagram `src` -> `dst`: the UDP sockets on
    /// `src`'s port connected to `dst` get ECONNREFUSED pending (Linux reports it only
    /// to connected sockets).
    fn port_unreachable(&mut self, src: std::net::SocketAddr, dst: std::net::SocketAddr) {
        let unmapped = |a: std::net::SocketAddr| {
            std::net::SocketAddr::new(super::iface::unmap(a.ip()), a.port())
        };
        let (src, dst) = (unmapped(src), unmapped(dst));
        let mut hit = Vec::new();
        for l in &self.links.links {
            for (h, w) in &l.watches {
                if w.kind != Kind::Udp {
                    continue;
                }
                let e = l.set.get::<udp::Socket>(*h).endpoint();
                if e.port != src.port()
                    || e.addr.is_some_and(|a| super::iface::to_std(a) != src.ip())
                {
                    continue;
                }
                let Some(o) = w.owner.upgrade() else { continue };
                let peer = *o.udp_peer.lock().unwrap_or_else(|p| p.into_inner());
                if peer == Some(dst) && !hit.iter().any(|c| Arc::ptr_eq(c, &o)) {
                    hit.push(o);
                }
            }
        }
        for o in hit {
            o.error.store(Errno::ECONNREFUSED.0, Ordering::SeqCst);
            if !self.pending.iter().any(|p| Arc::ptr_eq(p, &o)) {
                self.pending.push(o);
            }
        }
    }

    /// Drops the orphans smoltcp is done with, and under budget pressure those in
    /// TIME_WAIT (whose buffers smoltcp would keep for 10 s more).
    fn reap_orphans(&mut self) {
        let pressure = bufs::under_pressure(self.budget);
        let mut i = 0;
        while i < self.orphans.len() {
            let o = &self.orphans[i];
            let (link, h) = (o.link, o.handle);
            // Closed with its RST (if any) sent: smoltcp forgets the tuple then.
            let done = self.links.links[link].watches.contains_key(&h) && {
                let s = self.tcp(link, h);
                (s.state() == tcp::State::Closed && s.remote_endpoint().is_none())
                    || (pressure && s.state() == tcp::State::TimeWait)
            };
            if done || !self.links.links[link].watches.contains_key(&h) {
                let o = self.orphans.swap_remove(i);
                self.remove_socket(o.link, o.handle);
                if let Some(b) = o.binding {
                    self.ports.release(b);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Hands a closed connection to the stack: it finishes (FIN exchange, TIME_WAIT) or
    /// is reset, then goes with its port.
    pub fn orphan(&mut self, link: usize, h: SocketHandle, binding: Option<u64>) {
        if let Some(b) = binding {
            self.ports.set_orphan(b);
        }
        if let Some(w) = self
            .links
            .links
            .get_mut(link)
            .and_then(|l| l.watches.get_mut(&h))
        {
            w.owner = std::sync::Weak::new();
        }
        let s = self.tcp(link, h);
        // Without an answer the connection must not live forever.
        s.set_timeout(Some(smoltcp::time::Duration::from_secs(60)));
        s.set_keep_alive(Some(smoltcp::time::Duration::from_secs(20)));
        self.orphans.push(Orphan {
            link,
            handle: h,
            binding,
        });
        self.poll(link);
    }
}

/// Runs `f` once and, unless `nonblock`, again whenever the socket's queue is notified,
/// until it stops answering EAGAIN; a timeout (`deadline`) answers EAGAIN, a signal
/// ERESTARTSYS.
pub(crate) fn wait<T>(
    core: &Core,
    nonblock: bool,
    deadline: Option<std::time::Instant>,
    mut f: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    match f() {
        Err(Errno::EAGAIN) if !nonblock => {}
        r => return r,
    }
    match crate::kernel::wait::block_on(&[&core.wq], deadline, || match f() {
        Err(Errno::EAGAIN) => None,
        r => Some(r),
    }) {
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        r => r,
    }
}

/// The `stat` of a socket file.
pub(crate) fn sock_stat(ino: u64) -> rvisor_syscalls::types::Stat {
    rvisor_syscalls::types::Stat {
        st_dev: 0x08,
        st_ino: ino,
        st_nlink: 1,
        st_mode: rvisor_syscalls::flags::mode::S_IFSOCK | 0o777,
        st_blksize: 4096,
        ..Default::default()
    }
}

/// The stack as the sockets and the stack thread share it.
pub(crate) struct Shared {
    state: Mutex<State>,
    kick: OwnedFd,
    stopped: AtomicBool,
}

/// The locked state; dropping it releases the lock, then wakes the sockets whose
/// readiness changed and, if an inline poll set an earlier timer, the stack thread.
pub(crate) struct Locked<'a> {
    g: ManuallyDrop<MutexGuard<'a, State>>,
    sh: &'a Shared,
    in_thread: bool,
}

impl Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.g
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.g
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let mut kick = false;
        if !self.in_thread && self.g.touched != 0 {
            let now = self.g.now();
            let touched = std::mem::take(&mut self.g.touched);
            let mut next: Option<Instant> = None;
            for (i, l) in self.g.links.links.iter_mut().enumerate() {
                if touched & (1 << i.min(63)) != 0 {
                    if let Some(t) = l.iface.poll_at(now, &l.set) {
                        next = Some(next.map_or(t, |n: Instant| n.min(t)));
                    }
                }
            }
            if let Some(t) = next {
                if self.g.armed.map_or(true, |a| t < a) {
                    self.g.armed = Some(t);
                    kick = true;
                }
            }
        }
        let pending = std::mem::take(&mut self.g.pending);
        // SAFETY: the guard is dropped exactly once, here, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.g) };
        for c in pending {
            c.wq.notify_all();
        }
        if kick {
            self.sh.kick();
        }
    }
}

impl Shared {
    pub fn new(links: Links, budget: &'static MemBudget) -> Result<Arc<Shared>, NetError> {
        // SAFETY: eventfd(2) takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(NetError::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let kick = unsafe { OwnedFd::from_raw_fd(fd) };
        let state = State {
            links,
            ports: Ports::default(),
            listeners: HashMap::new(),
            next_id: 0,
            orphans: Vec::new(),
            nsockets: 0,
            budget,
            charges: HashMap::new(),
            pending: Vec::new(),
            touched: 0,
            armed: None,
            epoch: std::time::Instant::now(),
        };
        Ok(Arc::new(Shared {
            state: Mutex::new(state),
            kick,
            stopped: AtomicBool::new(false),
        }))
    }

    pub fn lock(&self) -> Locked<'_> {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Locked {
            g: ManuallyDrop::new(g),
            sh: self,
            in_thread: false,
        }
    }

    /// The lock as the stack thread takes it (it re-arms its own timer).
    pub fn lock_thread(&self) -> Locked<'_> {
        let mut l = self.lock();
        l.in_thread = true;
        l
    }

    pub fn kick_fd(&self) -> i32 {
        self.kick.as_raw_fd()
    }

    /// Wakes the stack thread.
    pub fn kick(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to our eventfd.
        let _ = unsafe { libc::write(self.kick.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// Drains the eventfd.
    pub fn unkick(&self) {
        let mut b = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local buffer.
        let _ = unsafe { libc::read(self.kick.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.kick();
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

impl State {
    /// Rows for /proc/net/{tcp,udp,raw}{,6}: one per guest socket (a wildcard socket
    /// listed once), listeners from their bound address.
    pub fn socket_table(
        &mut self,
        proto: crate::net::Proto,
        v6: bool,
    ) -> Vec<crate::net::SocketEntry> {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
        let any = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let fits = |a: &IpAddr| a.is_ipv6() == v6;
        let mut rows = Vec::new();
        let mut seen: Vec<*const Core> = Vec::new();
        let want = match proto {
            crate::net::Proto::Tcp => Kind::Tcp,
            crate::net::Proto::Udp => Kind::Udp,
            crate::net::Proto::Raw => Kind::Icmp,
        };
        if want == Kind::Tcp {
            for l in self.listeners.values() {
                let addr = l.endpoint.addr.map(super::iface::to_std).unwrap_or(any);
                if fits(&addr)
                    || (l.endpoint.addr.is_none()
                        && (l.domain == rvisor_syscalls::flags::socket::AF_INET6) == v6)
                {
                    rows.push(crate::net::SocketEntry {
                        local: SocketAddr::new(addr, l.endpoint.port),
                        remote: SocketAddr::new(any, 0),
                        state: 10,
                        tx_queue: 0,
                        rx_queue: l.queue.len() as u32,
                    });
                }
            }
        }
        for link in &self.links.links {
            for (h, w) in &link.watches {
                if w.kind != want {
                    continue;
                }
                let owner = w.owner.as_ptr();
                match w.kind {
                    Kind::Tcp => {
                        let s = link.set.get::<tcp::Socket>(*h);
                        let (Some(lo), Some(re)) = (s.local_endpoint(), s.remote_endpoint()) else {
                            continue;
                        };
                        let (lo, re) =
                            (super::iface::to_std(lo.addr), super::iface::to_std(re.addr));
                        if s.state() == tcp::State::Listen || !fits(&lo) {
                            continue;
                        }
                        rows.push(crate::net::SocketEntry {
                            local: SocketAddr::new(lo, s.local_endpoint().map_or(0, |e| e.port)),
                            remote: SocketAddr::new(re, s.remote_endpoint().map_or(0, |e| e.port)),
                            state: tcp_state_num(s.state()),
                            tx_queue: s.send_queue() as u32,
                            rx_queue: s.recv_queue() as u32,
                        });
                    }
                    Kind::Udp => {
                        if seen.contains(&owner) && !owner.is_null() {
                            continue;
                        }
                        seen.push(owner);
                        let s = link.set.get::<udp::Socket>(*h);
                        let e = s.endpoint();
                        let addr = e.addr.map(super::iface::to_std).unwrap_or(any);
                        if !fits(&addr) {
                            continue;
                        }
                        rows.push(crate::net::SocketEntry {
                            local: SocketAddr::new(addr, e.port),
                            remote: SocketAddr::new(any, 0),
                            state: 7,
                            tx_queue: s.send_queue() as u32,
                            rx_queue: s.recv_queue() as u32,
                        });
                    }
                    Kind::Icmp => {
                        if seen.contains(&owner) || v6 {
                            continue;
                        }
                        seen.push(owner);
                        let s = link.set.get::<icmp::Socket>(*h);
                        rows.push(crate::net::SocketEntry {
                            local: SocketAddr::new(any, 1),
                            remote: SocketAddr::new(any, 0),
                            state: 7,
                            tx_queue: s.send_queue() as u32,
                            rx_queue: s.recv_queue() as u32,
                        });
                    }
                }
            }
        }
        rows
    }
}
