//! The sentry's TCP/IP stack (smoltcp) for `--network=sandbox` and `--network=none`.
//!
//! # Links
//! One smoltcp [`Interface`](smoltcp::iface::Interface) per link, each with its own
//! `SocketSet` ([`iface::Link`]): link 0 is loopback (a queue in memory, `Medium::Ip`),
//! then one ethernet link per donated AF_PACKET fd (raw frames through read(2)/write(2)
//! only). smoltcp routes inside one interface only, and with a default route it would send
//! 127.x or the sandbox's own addresses to the gateway, so the choice of interface is made
//! here ([`iface::Links::route`]): loopback addresses *and the sandbox's own ethernet
//! addresses* go to the loopback link (which also carries the ethernet addresses, as /32
//! and /128), everything else to the ethernet link of the longest matching route. A socket
//! bound to a wildcard address therefore has one smoltcp socket per link (a UDP socket)
//! or one listener pool per link (a TCP listener); a connected TCP socket lives on the
//! one link that reaches its peer. The trade-off against one interface with a
//! "hairpin" device: more smoltcp sockets for wildcard listeners, in exchange for loopback
//! traffic that never touches a device or ARP and a routing decision that is ours.
//!
//! # Listen backlog
//! A smoltcp TCP socket accepts one connection. A listener ([`listen::Listener`]) keeps a
//! small pool of smoltcp sockets in LISTEN on each of its links; after every processed
//! packet the pools are refilled and established sockets move to the accept queue. The
//! accept queue plus half-open sockets are bounded by the backlog (max 4096).
//!
//! # Memory
//! smoltcp allocates a socket's buffers whole, so each is charged to the sandbox's socket
//! buffer budget for the socket's whole life in the stack ([`bufs`]): sizes shrink under
//! pressure, TIME_WAIT ends early, and when not even the smallest buffers fit a new socket
//! fails with ENOBUFS, or a listener drops SYNs until room frees ([`device::SynDrop`]).
//!
//! # Threads and locking
//! All smoltcp state is one [`State`] under a mutex ([`Shared`]). A stack thread
//! ([`poll`]) blocks in poll(2) on the packet fds, an eventfd (kick) and the next smoltcp
//! timer, and processes ingress. Guest send/recv/close run egress inline on the calling
//! task's thread; loopback traffic is processed inline until quiescent. After each poll
//! the sockets whose readiness snapshot changed are notified (their wait queues), after
//! the lock is released. Lock order: a socket's own mutex, then the stack's.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rvisor_syscalls::flags::socket::{
    AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP,
    SOCK_DGRAM, SOCK_RAW, SOCK_STREAM,
};
use rvisor_syscalls::Errno;

use super::{IfStats, NetError, NetworkSpec, NetworkStack, Proto, SocketEntry};
use crate::vfs::file::FileImpl;

mod bufs;
mod common;
mod device;
mod icmp;
mod iface;
mod listen;
mod opts;
mod poll;
mod ports;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub(crate) use common::{Core, Shared};
pub(crate) use opts::unknown_get_errno;

/// Most smoltcp sockets one sandbox may hold (ENOBUFS beyond).
pub(crate) const MAX_SOCKETS: usize = 65536;

/// A new socket inode number (one counter for every socket kind).
pub(crate) fn next_ino() -> u64 {
    crate::vfs::unix::next_socket_ino()
}

pub struct SandboxStack {
    spec: NetworkSpec,
    shared: Arc<Shared>,
}

impl SandboxStack {
    pub fn new(spec: NetworkSpec, fds: Vec<OwnedFd>) -> Result<Arc<SandboxStack>, NetError> {
        Self::with_budget(spec, fds, &crate::kernel::membudget::SOCKET_BUFFERS)
    }

    /// A stack whose sockets' buffers are charged to `budget` (tests give their own).
    pub(crate) fn with_budget(
        spec: NetworkSpec,
        fds: Vec<OwnedFd>,
        budget: &'static crate::kernel::membudget::MemBudget,
    ) -> Result<Arc<SandboxStack>, NetError> {
        let links = iface::Links::build(&spec, fds)?;
        let shared = Shared::new(links, budget)?;
        poll::spawn(&shared)?;
        Ok(Arc::new(SandboxStack { spec, shared }))
    }
}

impl Drop for SandboxStack {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl NetworkStack for SandboxStack {
    fn socket(
        &self,
        domain: i32,
        ty: i32,
        protocol: i32,
        may_raw: bool,
    ) -> Result<Arc<dyn FileImpl>, Errno> {
        if domain != AF_INET && domain != AF_INET6 {
            return Err(Errno::EAFNOSUPPORT);
        }
        let icmp_proto = if domain == AF_INET {
            IPPROTO_ICMP
        } else {
            IPPROTO_ICMPV6
        };
        match ty {
            SOCK_STREAM => match protocol {
                IPPROTO_IP | IPPROTO_TCP => Ok(tcp::TcpSocket::new(&self.shared, domain)),
                _ => Err(Errno::EPROTONOSUPPORT),
            },
            SOCK_DGRAM => match protocol {
                IPPROTO_IP | IPPROTO_UDP => Ok(udp::UdpSocket::new(&self.shared, domain)),
                p if p == icmp_proto => Ok(icmp::IcmpSocket::new(&self.shared, domain, false)),
                _ => Err(Errno::EPROTONOSUPPORT),
            },
            SOCK_RAW => {
                if !may_raw {
                    return Err(Errno::EPERM);
                }
                if protocol == icmp_proto {
                    Ok(icmp::IcmpSocket::new(&self.shared, domain, true))
                } else {
                    Err(Errno::EPROTONOSUPPORT)
                }
            }
            _ => Err(Errno::ESOCKTNOSUPPORT),
        }
    }

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    fn stats(&self) -> Vec<IfStats> {
        self.shared.lock().links.stats()
    }

    fn sockets(&self, proto: Proto, v6: bool) -> Vec<SocketEntry> {
        self.shared.lock().socket_table(proto, v6)
    }
}
