//! Links (one smoltcp interface + device + socket set each) built from the
//! [`NetworkSpec`], and the routing decision: which link a destination is reached by.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use smoltcp::iface::{Config, Interface, Route, SocketHandle, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use super::device::{LoopDevice, PacketDevice, SynDrop};
use crate::net::{IfStats, LinkKind, NetError, NetworkSpec};

/// The loopback link's index in [`Links::links`].
pub(crate) const LO: usize = 0;

pub(crate) enum Dev {
    Loop(LoopDevice),
    Packet(PacketDevice),
}

/// What kind of smoltcp socket a watched handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Udp,
    Icmp,
}

/// A smoltcp socket some guest socket waits on: its owner and the readiness snapshot seen
/// at the last poll (a change notifies the owner).
pub(crate) struct Watch {
    pub owner: std::sync::Weak<super::Core>,
    pub kind: Kind,
    pub last: (u8, usize, usize),
}

pub(crate) struct Link {
    pub iface: Interface,
    pub dev: Dev,
    pub set: SocketSet<'static>,
    /// The guest-visible interface index.
    pub ifindex: u32,
    pub watches: HashMap<SocketHandle, Watch>,
}

impl Link {
    /// The largest IP packet the link carries.
    pub fn ip_mtu(&self) -> usize {
        match &self.dev {
            Dev::Loop(d) => d.mtu,
            Dev::Packet(d) => d.mtu,
        }
    }

    /// The listen endpoints whose SYNs the link's device drops.
    pub fn syn_drop(&mut self) -> &mut SynDrop {
        match &mut self.dev {
            Dev::Loop(d) => &mut d.syn_drop,
            Dev::Packet(d) => &mut d.syn_drop,
        }
    }

    pub fn stats(&self) -> IfStats {
        match &self.dev {
            Dev::Loop(d) => d.stats.clone(),
            Dev::Packet(d) => d.stats.clone(),
        }
    }
}

pub(crate) struct Links {
    pub links: Vec<Link>,
    /// Every address of the sandbox (any interface): traffic to them stays on loopback.
    pub own: Vec<IpAddr>,
    /// (prefix, length, link) of the spec's routes and connected subnets, longest first.
    routes: Vec<(IpAddr, u8, usize)>,
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: `b` is a live 8-byte buffer getrandom(2) fills at most 8 bytes of.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64 ^ std::process::id() as u64;
    }
    u64::from_ne_bytes(b)
}

fn cidr(a: IpAddr, len: u8) -> IpCidr {
    IpCidr::new(IpAddress::from(a), len)
}

/// Whether `a` lies in `prefix/len`.
pub(crate) fn in_prefix(a: IpAddr, prefix: IpAddr, len: u8) -> bool {
    match (a, prefix) {
        (IpAddr::V4(a), IpAddr::V4(p)) => {
            let len = len.min(32) as u32;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(p) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(p)) => {
            let len = len.min(128) as u32;
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(p) & mask
        }
        _ => false,
    }
}

/// The address in its plain form: an IPv4-mapped IPv6 address becomes IPv4.
pub(crate) fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => a,
        },
        a => a,
    }
}

pub(crate) fn to_std(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(v4) => IpAddr::V4(v4),
        IpAddress::Ipv6(v6) => IpAddr::V6(v6),
    }
}

impl Links {
    pub fn build(spec: &NetworkSpec, fds: Vec<OwnedFd>) -> Result<Links, NetError> {
        let now = Instant::from_millis(0);
        let lo_spec = spec
            .interfaces
            .iter()
            .find(|i| i.kind == LinkKind::Loopback);
        let lo_mtu = lo_spec
            .map(|i| i.mtu as usize)
            .unwrap_or(65536)
            .clamp(1280, 65536);
        let lo_index = lo_spec.map(|i| i.index).unwrap_or(1);
        let mut own: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let mut routes = Vec::new();

        let mut lo_dev = LoopDevice::new(lo_mtu, lo_index);
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed();
        let mut lo = Interface::new(cfg, &mut lo_dev, now);
        let mut lo_addrs = vec![
            IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8),
            IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128),
        ];
        // Any 127.x address is ours (any_ip with a route through one of our addresses).
        lo.set_any_ip(true);
        let _ = lo.routes_mut().add_default_ipv4_route(Ipv4Addr::LOCALHOST);
        routes.push((IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8, LO));

        let mut links = Vec::new();
        let mut fds = fds.into_iter();
        let sandbox = spec.mode == crate::net::NetworkMode::Sandbox;
        for (n, ifs) in spec.ethernet().enumerate().filter(|_| sandbox) {
            let fd = fds
                .next()
                .ok_or(NetError::FdCount(n, spec.ethernet().count()))?;
            let mtu = (ifs.mtu as usize).clamp(576, 65521);
            let mut dev = PacketDevice::new(fd, mtu, ifs.index)?;
            let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(ifs.mac)));
            cfg.random_seed = seed();
            let mut iface = Interface::new(cfg, &mut dev, now);
            let idx = links.len() + 1;
            iface.update_ip_addrs(|a| {
                for s in &ifs.addrs {
                    if a.push(cidr(s.addr, s.prefix_len)).is_err() {
                        tracing::warn!(iface = %ifs.name, addr = %s.addr, "network: too many addresses, ignored");
                    }
                }
            });
            for s in &ifs.addrs {
                own.push(s.addr);
                routes.push((s.addr, s.prefix_len, idx));
                let full = if s.addr.is_ipv4() { 32 } else { 128 };
                if lo_addrs.len() < 8 {
                    lo_addrs.push(cidr(s.addr, full));
                }
            }
            for r in spec.routes.iter().filter(|r| r.ifindex == ifs.index) {
                routes.push((r.dst, r.prefix_len, idx));
                if let Some(gw) = r.gateway {
                    let mut added = false;
                    iface.routes_mut().update(|t| {
                        added = t
                            .push(Route {
                                cidr: cidr(r.dst, r.prefix_len),
                                via_router: IpAddress::from(gw),
                                preferred_until: None,
                                expires_at: None,
                            })
                            .is_ok();
                    });
                    if !added {
                        tracing::warn!(dst = %r.dst, "network: route table full, route ignored");
                    }
                }
            }
            links.push(Link {
                iface,
                dev: super::iface::Dev::Packet(dev),
                set: SocketSet::new(Vec::new()),
                ifindex: ifs.index,
                watches: HashMap::new(),
            });
        }
        lo.update_ip_addrs(|a| {
            for c in lo_addrs {
                let _ = a.push(c);
            }
        });
        links.insert(
            LO,
            Link {
                iface: lo,
                dev: Dev::Loop(lo_dev),
                set: SocketSet::new(Vec::new()),
                ifindex: lo_index,
                watches: HashMap::new(),
            },
        );
        routes.sort_by(|a, b| b.1.cmp(&a.1));
        Ok(Links { links, own, routes })
    }

    /// Whether `a` is one of the sandbox's addresses (127/8 included).
    pub fn is_own(&self, a: IpAddr) -> bool {
        let a = unmap(a);
        a.is_loopback() || self.own.contains(&a)
    }

    /// The link that reaches `dst` (ENETUNREACH without a route).
    pub fn route(&self, dst: IpAddr) -> Result<usize, rvisor_syscalls::Errno> {
        let dst = unmap(dst);
        if dst.is_unspecified() || self.is_own(dst) {
            return Ok(LO);
        }
        self.routes
            .iter()
            .find(|(p, len, _)| in_prefix(dst, *p, *len))
            .map(|r| r.2)
            .ok_or(rvisor_syscalls::Errno::ENETUNREACH)
    }

    /// The links a socket bound to `addr` listens on: all for a wildcard, loopback for a
    /// loopback address, loopback and its own link for an ethernet address.
    pub fn links_for_bind(&self, addr: IpAddr) -> Vec<usize> {
        let addr = unmap(addr);
        if addr.is_unspecified() {
            return (0..self.links.len()).collect();
        }
        let mut v = vec![LO];
        for (i, l) in self.links.iter().enumerate().skip(1) {
            if l.iface.has_ip_addr(IpAddress::from(addr)) {
                v.push(i);
            }
        }
        v
    }

    /// Whether a socket may bind `addr` (EADDRNOTAVAIL for a foreign address).
    pub fn may_bind(&self, addr: IpAddr) -> bool {
        let addr = unmap(addr);
        addr.is_unspecified()
            || self.is_own(addr)
            || addr.is_multicast()
            || addr == IpAddr::V4(Ipv4Addr::BROADCAST)
    }

    pub fn stats(&self) -> Vec<IfStats> {
        self.links.iter().map(Link::stats).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_by_length() {
        let a: IpAddr = "169.254.3.4".parse().unwrap();
        assert!(in_prefix(a, "169.254.0.0".parse().unwrap(), 16));
        assert!(!in_prefix(a, "169.253.0.0".parse().unwrap(), 16));
        assert!(in_prefix(a, "0.0.0.0".parse().unwrap(), 0));
        assert!(!in_prefix(a, "::".parse().unwrap(), 0));
        assert_eq!(
            unmap("::ffff:1.2.3.4".parse().unwrap()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }
}
