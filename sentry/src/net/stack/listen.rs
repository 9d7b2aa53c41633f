//! TCP listeners: a pool of smoltcp sockets in LISTEN per link (a smoltcp socket takes
//! one connection), refilled after every packet that changed a socket; established
//! connections move to the accept queue. Pending (SYN_RECV) plus queued connections are
//! bounded by the backlog; beyond it the pool is not refilled. A pool socket's buffers are
//! charged as any socket's; when the budget cannot take a new one and a link's pool has
//! no socket left in LISTEN, that link's device drops SYNs to the listener (the peer
//! retries) until a refill succeeds.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use rvisor_syscalls::flags::socket::AF_INET;
use rvisor_syscalls::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use super::bufs;
pub(crate) use super::bufs::TcpParams;
use super::common::{Core, State};
use super::iface::Kind;

/// Sockets in LISTEN kept ready per link. Under budget pressure a pool keeps one only
/// (each holds the buffers of the connection it will take); pools refill after every
/// packet, so one still takes a burst of SYNs.
const POOL_LISTEN: usize = 4;
/// The largest backlog (Linux's net.core.somaxconn).
pub(crate) const SOMAXCONN: usize = 4096;

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
    /// Starts a listener; its id. A listener the budget has no room for yet starts with
    /// SYNs dropped rather than failing (Linux's listen allocates no buffers).
    pub fn add_listener(&mut self, l: Listener) -> Result<u64, Errno> {
        let id = self.new_id();
        let links = l.links.clone();
        self.listeners.insert(id, l);
        self.fill(id);
        let starved = links.iter().any(|&k| {
            self.links
                .links
                .get_mut(k)
                .is_some_and(|lk| !lk.syn_drop().is_empty())
        });
        if !starved && self.listeners.get(&id).is_some_and(|l| l.pool.is_empty()) {
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
        let pool_size = if bufs::under_pressure(self.budget) {
            1
        } else {
            POOL_LISTEN
        };
        let mut pending = 0;
        let mut grew = false;
        let mut i = 0;
        while i < l.pool.len() {
            let (link, h) = l.pool[i];
            let s = self.tcp(link, h);
            match s.state() {
                tcp::State::Listen if listening[link] >= pool_size => {
                    l.pool.swap_remove(i);
                    self.remove_socket(link, h);
                }
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
        let mut starved = vec![false; self.links.links.len()];
        if l.queue.len() + pending < l.backlog {
            for &link in &l.links {
                while listening.get(link).is_some_and(|n| *n < pool_size) {
                    let Ok((mut s, charge)) = self.new_tcp(&l.params, link) else {
                        starved[link] = true;
                        break;
                    };
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
        for &link in &l.links {
            if let Some(lk) = self.links.links.get_mut(link) {
                let on = starved[link] && listening[link] == 0;
                lk.syn_drop().set(id, l.endpoint, on);
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
        for &link in &l.links {
            if let Some(lk) = self.links.links.get_mut(link) {
                lk.syn_drop().set(id, l.endpoint, false);
            }
        }
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
