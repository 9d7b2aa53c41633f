//! From what a namespace's netlink dump reported to the [`NetworkSpec`] the sentry gets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvisor_sentry::net::{AddrSpec, InterfaceSpec, LinkKind, NetworkMode, NetworkSpec, RouteSpec};

use super::netlink::{Addr, Link, Route, ARPHRD_ETHER, ARPHRD_LOOPBACK, RTN_UNICAST, RT_TABLE_MAIN};

/// An ethernet link the spec includes (sandbox mode: the one a packet socket is bound to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub index: u32,
    pub name: String,
}

/// The spec and the ethernet links in it, in [`NetworkSpec::ethernet`] order.
#[derive(Debug)]
pub struct Built {
    pub spec: NetworkSpec,
    pub ethernet: Vec<Taken>,
}

/// Builds the spec of a namespace. Loopback is always the sandbox's own `lo` (up, with
/// 127.0.0.1/8 and ::1, as runsc gives it) at the namespace's index; ARPHRD_ETHER links
/// become ethernet interfaces with their addresses (links that are down only when
/// `include_down`: in sandbox mode a down link is not taken over, as runsc skips it);
/// other link kinds are skipped with a warning. Routes are those of the main table that
/// go out of an included interface.
pub fn build(mode: NetworkMode, mut links: Vec<Link>, addrs: &[Addr], routes: &[Route], include_down: bool) -> Built {
    links.sort_by_key(|l| l.index);
    let mut interfaces = Vec::new();
    let mut ethernet = Vec::new();
    let mut have_lo = false;
    for l in &links {
        match l.arphrd {
            ARPHRD_LOOPBACK if !have_lo => {
                have_lo = true;
                interfaces.push(InterfaceSpec { index: l.index, name: l.name.clone(), ..InterfaceSpec::loopback() });
            }
            ARPHRD_ETHER => {
                if l.flags & libc::IFF_UP as u32 == 0 && !include_down {
                    tracing::info!(link = %l.name, "skipping an interface that is down");
                    continue;
                }
                let mut mac = [0u8; 6];
                if l.mac.len() == 6 {
                    mac.copy_from_slice(&l.mac);
                }
                let addrs = addrs.iter().filter(|a| a.index == l.index).filter_map(|a| Some(AddrSpec { addr: a.own()?, prefix_len: a.prefix_len })).collect();
                interfaces.push(InterfaceSpec { name: l.name.clone(), index: l.index, kind: LinkKind::Ethernet, mac, mtu: l.mtu, flags: l.flags, addrs });
                ethernet.push(Taken { index: l.index, name: l.name.clone() });
            }
            other => tracing::warn!(link = %l.name, arphrd = other, "skipping an interface that is neither loopback nor ethernet"),
        }
    }
    if !have_lo {
        interfaces.insert(0, InterfaceSpec::loopback());
    }
    let included = |i: u32| interfaces.iter().any(|x| x.index == i);
    let mut out_routes = Vec::new();
    for r in routes {
        if r.table != RT_TABLE_MAIN || r.kind != RTN_UNICAST {
            continue;
        }
        let Some(oif) = r.oif.filter(|&i| included(i)) else {
            if r.multipath {
                tracing::warn!(?r, "skipping a multipath route");
            }
            continue;
        };
        let dst = match (r.dst, r.family as i32) {
            (Some(d), _) => d,
            (None, libc::AF_INET) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (None, libc::AF_INET6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => continue,
        };
        out_routes.push(RouteSpec { dst, prefix_len: r.dst_len, gateway: r.gateway, ifindex: oif, metric: r.priority.unwrap_or(0), src: r.prefsrc });
    }
    Built { spec: NetworkSpec { mode, interfaces, routes: out_routes }, ethernet }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: u32 = libc::IFF_UP as u32 | libc::IFF_RUNNING as u32;

    fn link(index: u32, name: &str, arphrd: u16, flags: u32) -> Link {
        Link { index, name: name.into(), arphrd, flags, mtu: 1500, mac: vec![2, 0, 0, 0, 0, index as u8] }
    }

    fn addr(index: u32, a: &str, prefix_len: u8) -> Addr {
        let a: IpAddr = a.parse().unwrap();
        let family = if a.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 } as u8;
        Addr { index, family, prefix_len, scope: 0, local: a.is_ipv4().then_some(a), address: Some(a) }
    }

    fn route(dst: Option<&str>, dst_len: u8, gw: Option<&str>, oif: u32, table: u32) -> Route {
        Route {
            family: libc::AF_INET as u8,
            dst_len,
            table,
            kind: RTN_UNICAST,
            dst: dst.map(|d| d.parse().unwrap()),
            gateway: gw.map(|g| g.parse().unwrap()),
            oif: Some(oif),
            priority: None,
            prefsrc: None,
            multipath: false,
        }
    }

    #[test]
    fn a_pod_namespace_gives_lo_and_its_ethernet_links_in_index_order() {
        let links = vec![link(9, "eth1", ARPHRD_ETHER, UP), link(1, "lo", ARPHRD_LOOPBACK, 0), link(3, "eth0", ARPHRD_ETHER, UP), link(4, "tun0", 65534, UP)];
        let addrs = vec![addr(3, "169.254.77.2", 30), addr(3, "fe80::1", 64), addr(9, "169.254.78.2", 24), addr(1, "127.0.0.1", 8)];
        let routes = vec![
            route(Some("169.254.77.0"), 30, None, 3, RT_TABLE_MAIN),
            route(None, 0, Some("169.254.77.1"), 3, RT_TABLE_MAIN),
            route(Some("169.254.77.2"), 32, None, 3, 255),
            route(Some("10.0.0.0"), 8, None, 4, RT_TABLE_MAIN),
        ];
        let b = build(NetworkMode::Sandbox, links, &addrs, &routes, false);
        let names: Vec<_> = b.spec.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "eth0", "eth1"]);
        assert_eq!(b.ethernet, vec![Taken { index: 3, name: "eth0".into() }, Taken { index: 9, name: "eth1".into() }]);
        // The donation order is the spec's ethernet order.
        let eth: Vec<u32> = b.spec.ethernet().map(|i| i.index).collect();
        assert_eq!(eth, [3, 9]);
        // The sandbox's lo is up with its addresses, whatever the namespace's was.
        assert_eq!(b.spec.interfaces[0], InterfaceSpec::loopback());
        let eth0 = &b.spec.interfaces[1];
        assert_eq!(eth0.mac, [2, 0, 0, 0, 0, 3]);
        assert_eq!(eth0.addrs.len(), 2);
        assert_eq!(eth0.addrs[0], AddrSpec { addr: "169.254.77.2".parse().unwrap(), prefix_len: 30 });
        assert_eq!(b.spec.routes.len(), 2, "{:?}", b.spec.routes);
        assert_eq!(b.spec.routes[1].dst, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(b.spec.routes[1].gateway, Some("169.254.77.1".parse().unwrap()));
    }

    #[test]
    fn down_links_are_skipped_in_sandbox_mode_and_kept_in_host_mode() {
        let links = vec![link(1, "lo", ARPHRD_LOOPBACK, UP), link(2, "eth0", ARPHRD_ETHER, 0)];
        let routes = vec![route(Some("169.254.1.0"), 24, None, 2, RT_TABLE_MAIN)];
        let s = build(NetworkMode::Sandbox, links.clone(), &[], &routes, false);
        assert!(s.ethernet.is_empty());
        assert_eq!(s.spec.interfaces.len(), 1);
        assert!(s.spec.routes.is_empty());
        let h = build(NetworkMode::Host, links, &[], &routes, true);
        assert_eq!(h.spec.interfaces.len(), 2);
        assert_eq!(h.spec.routes.len(), 1);
    }

    #[test]
    fn a_namespace_without_lo_still_gets_one() {
        let b = build(NetworkMode::Sandbox, vec![link(2, "eth0", ARPHRD_ETHER, UP)], &[], &[], false);
        assert_eq!(b.spec.interfaces[0].kind, LinkKind::Loopback);
        assert_eq!(b.spec.interfaces[1].name, "eth0");
    }
}
