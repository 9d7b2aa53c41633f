//! The interface ioctls (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, ...) every socket answers,
//! from the sandbox's [`super::NetworkSpec`]. Requests that would change an interface or a
//! route are refused (EPERM): the pod owns its network.

use std::net::{IpAddr, Ipv4Addr};

use rvisor_syscalls::flags::net_if::*;
use rvisor_syscalls::flags::socket::AF_INET;
use rvisor_syscalls::netlink::{IfConf, IfReq};
use rvisor_syscalls::{Errno, Pod};

use super::netlink::route::{mask4, TXQLEN};
use super::{InterfaceSpec, LinkKind, NetworkSpec};
use crate::mm::MemoryManager;

/// Answers an interface ioctl on any socket; ENOTTY for other requests.
pub fn ioctl(mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
    if !is_ifreq(cmd) {
        return Err(Errno::ENOTTY);
    }
    let kernel = crate::kernel::task::current_kernel();
    let net = kernel.as_ref().and_then(|k| k.network());
    let empty = NetworkSpec::default();
    let spec = net.map_or(&empty, |n| n.spec());
    if cmd == SIOCGIFCONF {
        let mut conf: IfConf = mm.read_obj(arg)?;
        let (bytes, len) = ifconf(spec, conf.ifc_buf != 0, conf.ifc_len);
        if !bytes.is_empty() {
            mm.copy_out(conf.ifc_buf, &bytes)?;
        }
        conf.ifc_len = len;
        mm.write_obj(arg, &conf)?;
        return Ok(0);
    }
    let req: IfReq = mm.read_obj(arg)?;
    let out = ifreq(spec, cmd, req)?;
    mm.write_obj(arg, &out)?;
    Ok(0)
}

/// Whether `cmd` is one of the interface requests this module answers.
pub fn is_ifreq(cmd: u32) -> bool {
    matches!(
        cmd,
        SIOCGIFCONF
            | SIOCGIFNAME
            | SIOCGIFFLAGS
            | SIOCGIFADDR
            | SIOCGIFDSTADDR
            | SIOCGIFBRDADDR
            | SIOCGIFNETMASK
            | SIOCGIFMETRIC
            | SIOCGIFMTU
            | SIOCGIFHWADDR
            | SIOCGIFINDEX
            | SIOCGIFTXQLEN
            | SIOCGIFMAP
            | SIOCGIFPFLAGS
    ) || SIOCSETTERS.contains(&cmd)
}

/// A `struct sockaddr_in` for `a` in an ifreq's union.
fn sockaddr_in(a: Ipv4Addr) -> [u8; 24] {
    let mut d = [0u8; 24];
    d[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
    d[4..8].copy_from_slice(&a.octets());
    d
}

fn int_data(v: i32) -> [u8; 24] {
    let mut d = [0u8; 24];
    d[..4].copy_from_slice(&v.to_ne_bytes());
    d
}

fn name_of(req: &IfReq) -> &[u8] {
    // Linux terminates the name at IFNAMSIZ - 1 whatever the caller wrote.
    let n = &req.ifr_name[..IFNAMSIZ - 1];
    &n[..n.iter().position(|&b| b == 0).unwrap_or(n.len())]
}

fn first_v4(i: &InterfaceSpec) -> Option<(Ipv4Addr, u8)> {
    i.addrs.iter().find_map(|a| match a.addr {
        IpAddr::V4(v) => Some((v, a.prefix_len)),
        IpAddr::V6(_) => None,
    })
}

/// Answers one single-interface request.
pub fn ifreq(spec: &NetworkSpec, cmd: u32, mut req: IfReq) -> Result<IfReq, Errno> {
    if SIOCSETTERS.contains(&cmd) {
        return Err(Errno::EPERM);
    }
    if cmd == SIOCGIFNAME {
        let index = i32::from_bytes(&req.ifr_data).unwrap_or(0);
        let i = spec
            .interfaces
            .iter()
            .find(|i| i.index as i32 == index)
            .ok_or(Errno::ENODEV)?;
        req.ifr_name = [0; IFNAMSIZ];
        let n = i.name.len().min(IFNAMSIZ - 1);
        req.ifr_name[..n].copy_from_slice(&i.name.as_bytes()[..n]);
        return Ok(req);
    }
    let name = name_of(&req);
    let i = spec
        .interfaces
        .iter()
        .find(|i| i.name.as_bytes() == name)
        .ok_or(Errno::ENODEV)?;
    let v4 = first_v4(i);
    req.ifr_data = match cmd {
        SIOCGIFFLAGS => {
            let mut d = [0u8; 24];
            d[..2].copy_from_slice(&(i.flags as u16).to_ne_bytes());
            d
        }
        SIOCGIFPFLAGS | SIOCGIFMETRIC => int_data(0),
        SIOCGIFADDR | SIOCGIFDSTADDR => sockaddr_in(v4.ok_or(Errno::EADDRNOTAVAIL)?.0),
        SIOCGIFNETMASK => sockaddr_in(Ipv4Addr::from(mask4(v4.ok_or(Errno::EADDRNOTAVAIL)?.1))),
        // The spec's addresses carry no broadcast address (as `ip addr add A/N` without `brd`).
        SIOCGIFBRDADDR => {
            v4.ok_or(Errno::EADDRNOTAVAIL)?;
            sockaddr_in(Ipv4Addr::UNSPECIFIED)
        }
        SIOCGIFMTU => int_data(i32::try_from(i.mtu).unwrap_or(i32::MAX)),
        SIOCGIFINDEX => int_data(i.index as i32),
        SIOCGIFTXQLEN => int_data(TXQLEN as i32),
        SIOCGIFHWADDR => {
            let mut d = [0u8; 24];
            let ty = if i.kind == LinkKind::Loopback {
                ARPHRD_LOOPBACK
            } else {
                ARPHRD_ETHER
            };
            d[..2].copy_from_slice(&ty.to_ne_bytes());
            d[2..8].copy_from_slice(&i.mac);
            d
        }
        SIOCGIFMAP => [0u8; 24],
        _ => return Err(Errno::ENOTTY),
    };
    Ok(req)
}

/// SIOCGIFCONF: the ifreq records of the IPv4 addresses that fit in `len` bytes (all of
/// them counted, none written, without a buffer) and the length to report.
pub fn ifconf(spec: &NetworkSpec, has_buf: bool, len: i32) -> (Vec<u8>, i32) {
    let mut out = Vec::new();
    let mut total = 0usize;
    let room = usize::try_from(len).unwrap_or(0);
    for i in &spec.interfaces {
        for a in &i.addrs {
            let IpAddr::V4(v) = a.addr else { continue };
            if !has_buf {
                total += IFREQ_SIZE;
                continue;
            }
            if out.len() + IFREQ_SIZE > room {
                break;
            }
            let mut r = IfReq::zeroed();
            let n = i.name.len().min(IFNAMSIZ - 1);
            r.ifr_name[..n].copy_from_slice(&i.name.as_bytes()[..n]);
            r.ifr_data = sockaddr_in(v);
            out.extend_from_slice(r.as_bytes());
        }
    }
    let reported = if has_buf { out.len() } else { total };
    (out, i32::try_from(reported).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{AddrSpec, NetworkMode};

    fn spec() -> NetworkSpec {
        let mut s = NetworkSpec::loopback_only(NetworkMode::Sandbox);
        s.interfaces.push(InterfaceSpec {
            name: "eth0".into(),
            index: 5,
            kind: LinkKind::Ethernet,
            mac: [0x5a, 0, 0xcc, 0xd7, 0x3c, 0x86],
            mtu: 1500,
            flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
            addrs: vec![AddrSpec {
                addr: "169.254.77.2".parse().unwrap(),
                prefix_len: 30,
            }],
        });
        s
    }

    fn named(n: &str) -> IfReq {
        let mut r = IfReq::zeroed();
        r.ifr_name[..n.len()].copy_from_slice(n.as_bytes());
        r
    }

    #[test]
    fn address_netmask_and_flags_come_from_the_spec() {
        let s = spec();
        let r = ifreq(&s, SIOCGIFADDR, named("eth0")).unwrap();
        assert_eq!(&r.ifr_data[..8], &[2, 0, 0, 0, 169, 254, 77, 2]);
        let r = ifreq(&s, SIOCGIFNETMASK, named("eth0")).unwrap();
        assert_eq!(&r.ifr_data[4..8], &[255, 255, 255, 252]);
        let r = ifreq(&s, SIOCGIFFLAGS, named("lo")).unwrap();
        assert_eq!(
            u16::from_ne_bytes([r.ifr_data[0], r.ifr_data[1]]) as u32,
            (IFF_UP | IFF_LOOPBACK | IFF_RUNNING) & 0xffff
        );
        let r = ifreq(&s, SIOCGIFMTU, named("lo")).unwrap();
        assert_eq!(i32::from_bytes(&r.ifr_data), Some(65536));
        let r = ifreq(&s, SIOCGIFHWADDR, named("eth0")).unwrap();
        assert_eq!(&r.ifr_data[..8], &[1, 0, 0x5a, 0, 0xcc, 0xd7, 0x3c, 0x86]);
        let r = ifreq(&s, SIOCGIFINDEX, named("eth0")).unwrap();
        assert_eq!(i32::from_bytes(&r.ifr_data), Some(5));
    }

    #[test]
    fn names_and_indexes_resolve_both_ways_and_unknown_ones_are_enodev() {
        let s = spec();
        let mut r = IfReq::zeroed();
        r.ifr_data[..4].copy_from_slice(&5i32.to_ne_bytes());
        assert_eq!(&ifreq(&s, SIOCGIFNAME, r).unwrap().ifr_name[..5], b"eth0\0");
        r.ifr_data[..4].copy_from_slice(&9i32.to_ne_bytes());
        assert_eq!(ifreq(&s, SIOCGIFNAME, r), Err(Errno::ENODEV));
        assert_eq!(ifreq(&s, SIOCGIFFLAGS, named("nope")), Err(Errno::ENODEV));
        // A name filling all 16 bytes is cut at 15, as Linux does.
        let mut long = IfReq::zeroed();
        long.ifr_name = *b"eth0xxxxxxxxxxxx";
        assert_eq!(ifreq(&s, SIOCGIFFLAGS, long), Err(Errno::ENODEV));
    }

    #[test]
    fn setters_are_refused_and_other_requests_are_not_ours() {
        assert_eq!(ifreq(&spec(), 0x8916, named("lo")), Err(Errno::EPERM));
        assert!(!is_ifreq(0x5401));
    }

    #[test]
    fn ifconf_counts_without_a_buffer_and_fills_whole_records() {
        let s = spec();
        assert_eq!(ifconf(&s, false, 0), (Vec::new(), 80));
        let (b, n) = ifconf(&s, true, 60);
        assert_eq!((b.len(), n), (40, 40));
        assert_eq!(&b[..3], b"lo\0");
        let (b, n) = ifconf(&s, true, 1000);
        assert_eq!(n, 80);
        assert_eq!(&b[40..45], b"eth0\0");
        assert_eq!(&b[60..64], &[169, 254, 77, 2]);
        assert_eq!(ifconf(&s, true, -5).1, 0);
    }
}
