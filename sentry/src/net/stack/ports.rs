//! Port reservations per protocol: bind(2) conflicts (EADDRINUSE), SO_REUSEADDR and
//! SO_REUSEPORT, and ephemeral ports (32768..=60999, Linux's ip_local_port_range).

use std::collections::HashMap;
use std::net::IpAddr;

use rvisor_syscalls::Errno;

use super::iface::unmap;

pub(crate) const EPHEMERAL_LO: u16 = 32768;
pub(crate) const EPHEMERAL_HI: u16 = 60999;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PortProto {
    Tcp,
    Udp,
    Icmp,
}

/// What a reservation is used for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    Bound,
    Listening,
    /// A connection (an accepted one shares its listener's port).
    Connected,
    /// A closed connection finishing (TIME_WAIT and such).
    Orphan,
}

#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub proto: PortProto,
    pub port: u16,
    pub addr: IpAddr,
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub v6only: bool,
    pub used: Use,
}

#[derive(Default)]
pub(crate) struct Ports {
    by_id: HashMap<u64, Binding>,
    by_port: HashMap<(PortProto, u16), Vec<u64>>,
    next_id: u64,
    cursor: u16,
}

/// Whether two bound addresses can receive the same packet.
fn overlap(a: IpAddr, a_v6only: bool, b: IpAddr, b_v6only: bool) -> bool {
    let (a, b) = (unmap(a), unmap(b));
    let covers = |w: IpAddr, w_v6only: bool, o: IpAddr| match w {
        IpAddr::V4(_) => o.is_ipv4(),
        IpAddr::V6(_) => !w_v6only || o.is_ipv6(),
    };
    if a.is_unspecified() && covers(a, a_v6only, b) {
        return true;
    }
    if b.is_unspecified() && covers(b, b_v6only, a) {
        return true;
    }
    a == b
}

impl Ports {
    fn conflicts(&self, n: &Binding) -> bool {
        let Some(ids) = self.by_port.get(&(n.proto, n.port)) else {
            return false;
        };
        ids.iter().filter_map(|id| self.by_id.get(id)).any(|e| {
            if !overlap(n.addr, n.v6only, e.addr, e.v6only) {
                return false;
            }
            if n.reuse_port && e.reuse_port {
                return false;
            }
            let ok = match n.proto {
                PortProto::Tcp => {
                    n.reuse_addr
                        && (matches!(e.used, Use::Orphan | Use::Connected)
                            || (e.reuse_addr && e.used == Use::Bound))
                }
                PortProto::Udp => n.reuse_addr && e.reuse_addr,
                PortProto::Icmp => false,
            };
            !ok
        })
    }

    fn insert(&mut self, b: Binding) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.by_port.entry((b.proto, b.port)).or_default().push(id);
        self.by_id.insert(id, b);
        id
    }

    /// Reserves `port` (0: an ephemeral one) on `addr`; the reservation and the port.
    pub fn bind(
        &mut self,
        proto: PortProto,
        addr: IpAddr,
        port: u16,
        reuse_addr: bool,
        reuse_port: bool,
        v6only: bool,
    ) -> Result<(u64, u16), Errno> {
        let mut b = Binding {
            proto,
            port,
            addr,
            reuse_addr,
            reuse_port,
            v6only,
            used: Use::Bound,
        };
        if port != 0 {
            if self.conflicts(&b) {
                return Err(Errno::EADDRINUSE);
            }
            return Ok((self.insert(b), port));
        }
        let span = (EPHEMERAL_HI - EPHEMERAL_LO) as u32 + 1;
        for i in 0..span {
            let p = EPHEMERAL_LO + ((self.cursor as u32 + i) % span) as u16;
            if self.by_port.get(&(proto, p)).is_some_and(|v| !v.is_empty()) {
                continue;
            }
            b.port = p;
            self.cursor = ((self.cursor as u32 + i + 1) % span) as u16;
            return Ok((self.insert(b), p));
        }
        Err(Errno::EADDRNOTAVAIL)
    }

    /// A connection accepted on a listener's port (no conflict check).
    pub fn add_connected(&mut self, proto: PortProto, addr: IpAddr, port: u16) -> u64 {
        self.insert(Binding {
            proto,
            port,
            addr,
            reuse_addr: true,
            reuse_port: false,
            v6only: false,
            used: Use::Connected,
        })
    }

    pub fn release(&mut self, id: u64) {
        if let Some(b) = self.by_id.remove(&id) {
            if let Some(v) = self.by_port.get_mut(&(b.proto, b.port)) {
                v.retain(|x| *x != id);
                if v.is_empty() {
                    self.by_port.remove(&(b.proto, b.port));
                }
            }
        }
    }

    pub fn set_use(&mut self, id: u64, used: Use) {
        if let Some(b) = self.by_id.get_mut(&id) {
            b.used = used;
        }
    }

    pub fn set_orphan(&mut self, id: u64) {
        self.set_use(id, Use::Orphan);
    }

    /// Whether another listener already listens on the binding's port and address (a
    /// listen(2) after two SO_REUSEADDR binds).
    pub fn listen_conflict(&self, id: u64) -> bool {
        let Some(n) = self.by_id.get(&id) else {
            return false;
        };
        let Some(ids) = self.by_port.get(&(n.proto, n.port)) else {
            return false;
        };
        ids.iter()
            .filter(|x| **x != id)
            .filter_map(|x| self.by_id.get(x))
            .any(|e| {
                e.used == Use::Listening
                    && overlap(n.addr, n.v6only, e.addr, e.v6only)
                    && !(n.reuse_port && e.reuse_port)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bind_conflicts_follow_reuse_rules() {
        let mut p = Ports::default();
        let (a, _) = p
            .bind(PortProto::Tcp, ip("0.0.0.0"), 80, false, false, false)
            .unwrap();
        assert_eq!(
            p.bind(PortProto::Tcp, ip("127.0.0.1"), 80, false, false, false),
            Err(Errno::EADDRINUSE)
        );
        assert!(p
            .bind(PortProto::Udp, ip("0.0.0.0"), 80, false, false, false)
            .is_ok());
        p.set_orphan(a);
        assert_eq!(
            p.bind(PortProto::Tcp, ip("0.0.0.0"), 80, false, false, false),
            Err(Errno::EADDRINUSE)
        );
        assert!(p
            .bind(PortProto::Tcp, ip("0.0.0.0"), 80, true, false, false)
            .is_ok());
        // v6only [::] and 0.0.0.0 do not overlap; plain [::] does.
        assert!(p
            .bind(PortProto::Tcp, ip("0.0.0.0"), 81, false, false, false)
            .is_ok());
        assert!(p
            .bind(PortProto::Tcp, ip("::"), 81, false, false, true)
            .is_ok());
        assert_eq!(
            p.bind(PortProto::Tcp, ip("::"), 81, false, false, false),
            Err(Errno::EADDRINUSE)
        );
        let (_, e) = p
            .bind(PortProto::Tcp, ip("0.0.0.0"), 0, false, false, false)
            .unwrap();
        assert!((EPHEMERAL_LO..=EPHEMERAL_HI).contains(&e));
        let (_, f) = p
            .bind(PortProto::Tcp, ip("0.0.0.0"), 0, false, false, false)
            .unwrap();
        assert_ne!(e, f);
    }
}
