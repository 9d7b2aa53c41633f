//! TCP listeners: a pool of smoltcp sockets in LISTEN per link (a smoltcp socket takes
//! one connection), refilled after every packet that changed a socket; established
//! connections move to the accept queue. Pending (SYN_RECV) plus queued connections are
//! bounded by the backlog; beyond it the pool is not refilled.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use rvisor_syscalls::flags::socket::AF_INET;
use rvisor_syscalls::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use super::common::{Core, State};
use super::iface::{Kind, LO};
use crate::kernel::membudget::{Charge, MemBudget, SOCKET_BUFFERS};

/// Sockets in LISTEN kept ready per link.
const POOL_LISTEN: usize = 4;
/// The largest backlog (Linux's net.core.somaxconn).
pub(crate) const SOMAXCONN: usize = 4096;

/// The per-connection settings a new smoltcp TCP socket gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpParams {
    pub rx: usize,
    pub tx: usize,
    pub nodelay: bool,
    pub keepalive: Option<Duration>,
    pub hop_limit: Option<u8>,
}

/// The size of each ring buffer of a TCP socket that setsockopt did not enlarge
/// (`SockOpts::tcp_buffers`' floor). Not charged: bounded by the socket count.
const BASE_BUFFER: usize = 256 << 10;

/// A new smoltcp TCP socket for `link`. Buffers that SO_RCVBUF/SO_SNDBUF made bigger than
/// [`BASE_BUFFER`] (up to 4 MiB each, allocated whole) are charged beyond it to the
/// sandbox's socket buffer budget; when it cannot take them the socket gets the base
/// size instead, as Linux sizes buffers down under memory pressure.
pub(crate) fn new_tcp(p: &TcpParams, link: usize) -> (tcp::Socket<'static>, Option<Charge>) {
    new_tcp_in(p, link, &SOCKET_BUFFERS)
}

/// [`new_tcp`] charging `budget`.
fn new_tcp_in(
    p: &TcpParams,
    link: usize,
    budget: &'static MemBudget,
) -> (tcp::Socket<'static>, Option<Charge>) {
    let extra = p.rx.saturating_sub(BASE_BUFFER) + p.tx.saturating_sub(BASE_BUFFER);
    let (rx, tx, charge) = match extra {
        0 => (p.rx, p.tx, None),
        _ => match budget.try_charge(extra) {
            Some(c) => (p.rx, p.tx, Some(c)),
            None => (p.rx.min(BASE_BUFFER), p.tx.min(BASE_BUFFER), None),
        },
    };
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; rx]),
        tcp::SocketBuffer::new(vec![0u8; tx]),
    );
    s.set_nagle_enabled(!p.nodelay);
    s.set_keep_alive(p.keepalive);
    s.set_hop_limit(p.hop_limit);
    if link == LO {
        // Acknowledging at once costs nothing in memory and frees the peer's buffer.
        s.set_ack_delay(None);
    }
    (s, charge)
}

pub(crate) struct Listener {
    pub core: Weak<Core>,
    pub domain: i32,
    pub v6only: bool,
    pub backlog: usize,
    pub links: Vec<usize>,
    pub endpoint: IpListenEndpoint,
    pub params: TcpParams,
    /// Sockets in LISTEN or SYN_RECEIVED.
    pub pool: Vec<(usize, SocketHandle)>,
    /// Established connections not yet accepted.
    pub queue: VecDeque<(usize, SocketHandle)>,
}

impl State {
    /// Starts a listener; its id.
    pub fn add_listener(&mut self, l: Listener) -> Result<u64, Errno> {
        let id = self.new_id();
        self.listeners.insert(id, l);
        self.fill(id);
        if self.listeners.get(&id).is_some_and(|l| l.pool.is_empty()) {
            self.close_listener(id);
            return Err(Errno::ENOBUFS);
        }
        Ok(id)
    }

    /// Moves established pool sockets to accept queues and tops the pools up.
    pub fn refill_listeners(&mut self) {
        if self.listeners.is_empty() {
            return;
        }
        let ids: Vec<u64> = self.listeners.keys().copied().collect();
        for id in ids {
            self.fill(id);
        }
    }

    fn fill(&mut self, id: u64) {
        let Some(mut l) = self.listeners.remove(&id) else {
            return;
        };
        let mut listening = vec![0usize; self.links.links.len()];
        let mut pending = 0;
        let mut grew = false;
        let mut i = 0;
        while i < l.pool.len() {
            let (link, h) = l.pool[i];
            let s = self.tcp(link, h);
            match s.state() {
                tcp::State::Listen => {
                    listening[link] += 1;
                    i += 1;
                }
                tcp::State::SynReceived => {
                    pending += 1;
                    i += 1;
                }
                tcp::State::Closed | tcp::State::TimeWait => {
                    l.pool.swap_remove(i);
                    self.remove_socket(link, h);
                }
                _ => {
                    l.pool.swap_remove(i);
                    let v6_peer = matches!(s.remote_endpoint(), Some(e) if matches!(e.addr, IpAddress::Ipv6(a) if a.to_ipv4_mapped().is_none()));
                    let v4_peer = matches!(s.remote_endpoint(), Some(e) if matches!(e.addr, IpAddress::Ipv4(_)));
                    if (l.domain == AF_INET && v6_peer) || (l.v6only && v4_peer) {
                        s.abort();
                        self.orphan_untracked(link, h);
                    } else {
                        s.set_timeout(None);
                        l.queue.push_back((link, h));
                        grew = true;
                    }
                }
            }
        }
        if l.queue.len() + pending < l.backlog {
            for &link in &l.links {
                while listening.get(link).is_some_and(|n| *n < POOL_LISTEN) {
                    let (mut s, charge) = new_tcp(&l.params, link);
                    if s.listen(l.endpoint).is_err() {
                        break;
                    }
                    // A half-open connection may not hold its slot forever.
                    s.set_timeout(Some(Duration::from_secs(60)));
                    let Some(owner) = l.core.upgrade() else { break };
                    match self.add_charged(link, s, Kind::Tcp, &owner, charge) {
                        Ok(h) => l.pool.push((link, h)),
                        Err(_) => break,
                    }
                    listening[link] += 1;
                }
            }
        }
        if grew {
            if let Some(o) = l.core.upgrade() {
                if !self.pending.iter().any(|p| Arc::ptr_eq(p, &o)) {
                    self.pending.push(o);
                }
            }
        }
        self.listeners.insert(id, l);
    }

    /// A socket the stack finishes on its own (an aborted connection), without a port.
    fn orphan_untracked(&mut self, link: usize, h: SocketHandle) {
        if let Some(w) = self
            .links
            .links
            .get_mut(link)
            .and_then(|l| l.watches.get_mut(&h))
        {
            w.owner = Weak::new();
        }
        self.orphans.push(super::common::Orphan {
            link,
            handle: h,
            binding: None,
        });
    }

    /// The next established connection of a listener.
    pub fn accept_one(&mut self, id: u64) -> Option<(usize, SocketHandle)> {
        let c = self.listeners.get_mut(&id)?.queue.pop_front()?;
        self.fill(id);
        Some(c)
    }

    pub fn queued(&self, id: u64) -> usize {
        self.listeners.get(&id).map_or(0, |l| l.queue.len())
    }

    pub fn set_backlog(&mut self, id: u64, backlog: usize) {
        if let Some(l) = self.listeners.get_mut(&id) {
            l.backlog = backlog;
        }
        self.fill(id);
    }

    /// Closes a listener: pending and unaccepted connections are reset.
    pub fn close_listener(&mut self, id: u64) {
        let Some(l) = self.listeners.remove(&id) else {
            return;
        };
        let mut links = Vec::new();
        for (link, h) in l.pool.into_iter().chain(l.queue) {
            let s = self.tcp(link, h);
            if s.state() == tcp::State::Listen {
                self.remove_socket(link, h);
            } else {
                s.abort();
                self.orphan_untracked(link, h);
                if !links.contains(&link) {
                    links.push(link);
                }
            }
        }
        for link in links {
            self.poll(link);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(rx: usize, tx: usize) -> TcpParams {
        TcpParams {
            rx,
            tx,
            nodelay: false,
            keepalive: None,
            hop_limit: None,
        }
    }

    #[test]
    fn enlarged_tcp_buffers_are_charged_beyond_the_base_or_fall_back_to_it() {
        let b: &'static MemBudget = Box::leak(Box::new(MemBudget::new(8 << 20)));
        let (s, c) = new_tcp_in(&params(BASE_BUFFER, BASE_BUFFER), LO, b);
        assert!(c.is_none());
        assert_eq!(
            (s.recv_capacity(), s.send_capacity()),
            (BASE_BUFFER, BASE_BUFFER)
        );
        let big = params(4 << 20, 1 << 20);
        let (s, c) = new_tcp_in(&big, LO, b);
        assert_eq!((s.recv_capacity(), s.send_capacity()), (4 << 20, 1 << 20));
        assert_eq!(b.used(), (4 << 20) + (1 << 20) - 2 * BASE_BUFFER);
        // The budget cannot take a second one: base-size buffers, nothing charged.
        let (s2, c2) = new_tcp_in(&big, LO, b);
        assert!(c2.is_none());
        assert_eq!(
            (s2.recv_capacity(), s2.send_capacity()),
            (BASE_BUFFER, BASE_BUFFER)
        );
        drop((s, c));
        assert_eq!(b.used(), 0);
    }
}
