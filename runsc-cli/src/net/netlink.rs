//! A small NETLINK_ROUTE client: dumps the links, addresses and routes of the network
//! namespace the calling thread is in, deletes addresses and brings links up.
//!
//! A netlink socket belongs to the namespace of the thread that created it, so a
//! [`Netlink`] opened on a thread that `setns`-ed into a pod's namespace talks about that
//! namespace for as long as it lives. Message parsing is kept apart from the socket
//! ([`parse_link`], [`parse_addr`], [`parse_route`], [`messages`]) so it can be tested on
//! plain bytes.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// Host netlink ABI (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
const NETLINK_ROUTE: i32 = 0;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_DUMP_INTR: u16 = 0x10;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
/// Receive buffer: the kernel fills at most 32 KiB per dump message batch.
const RECV_BUF: usize = 64 * 1024;
/// A dump interrupted by a concurrent change is retried this many times.
const DUMP_TRIES: usize = 4;

/// Errors of the netlink client.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("netlink {what}: {source}")]
    Io { what: &'static str, source: io::Error },
    #[error("netlink {what}: the kernel answered {source}")]
    Kernel { what: &'static str, source: io::Error },
    #[error("netlink {0}: malformed answer")]
    Malformed(&'static str),
    #[error("netlink {0}: the dump kept changing")]
    Interrupted(&'static str),
}

/// One link (RTM_NEWLINK of a dump).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// ARPHRD_* type.
    pub arphrd: u16,
    /// IFF_* flags.
    pub flags: u32,
    pub mtu: u32,
    /// Hardware address (empty when the link has none).
    pub mac: Vec<u8>,
}

/// One address (RTM_NEWADDR of a dump); the raw attributes are kept so the address can be
/// deleted exactly as the kernel reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    pub local: Option<IpAddr>,
    pub address: Option<IpAddr>,
}

impl Addr {
    /// The interface's own address: IFA_LOCAL when present (IPv4, point-to-point peers
    /// are in IFA_ADDRESS), else IFA_ADDRESS.
    pub fn own(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }
}

/// One route (RTM_NEWROUTE of a dump).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub family: u8,
    pub dst_len: u8,
    /// RT_TABLE_*, from RTA_TABLE when present.
    pub table: u32,
    /// RTN_* type.
    pub kind: u8,
    pub dst: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub priority: Option<u32>,
    pub prefsrc: Option<IpAddr>,
    /// The route has several next hops (RTA_MULTIPATH).
    pub multipath: bool,
}

/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;
/// A gateway or direct route.
pub const RTN_UNICAST: u8 = 1;
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_LOOPBACK: u16 = 772;

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink, NetlinkError> {
        // SAFETY: socket takes integers and returns a new descriptor or -1.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_ROUTE) };
        if fd < 0 {
            return Err(NetlinkError::Socket(io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(Netlink { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 0 })
    }

    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        self.dump("link dump", RTM_GETLINK, IFINFOMSG_LEN, RTM_NEWLINK, parse_link)
    }

    pub fn addrs(&mut self) -> Result<Vec<Addr>, NetlinkError> {
        self.dump("address dump", RTM_GETADDR, IFADDRMSG_LEN, RTM_NEWADDR, parse_addr)
    }

    pub fn routes(&mut self) -> Result<Vec<Route>, NetlinkError> {
        self.dump("route dump", RTM_GETROUTE, RTMSG_LEN, RTM_NEWROUTE, parse_route)
    }

    /// Deletes an address as a dump reported it.
    pub fn del_addr(&mut self, a: &Addr) -> Result<(), NetlinkError> {
        let mut body = vec![a.family, a.prefix_len, 0, a.scope];
        body.extend_from_slice(&a.index.to_ne_bytes());
        if let Some(l) = a.local {
            push_attr(&mut body, IFA_LOCAL, &ip_bytes(l));
        }
        if let Some(ad) = a.address {
            push_attr(&mut body, IFA_ADDRESS, &ip_bytes(ad));
        }
        self.request("address delete", RTM_DELADDR, &body)
    }

    /// Sets IFF_UP on link `index`.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let up = libc::IFF_UP as u32;
        let mut body = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        body.extend_from_slice(&up.to_ne_bytes()); // ifi_flags
        body.extend_from_slice(&up.to_ne_bytes()); // ifi_change
        self.request("link up", RTM_NEWLINK, &body)
    }

    fn send(&mut self, what: &'static str, ty: u16, flags: u16, body: &[u8]) -> Result<u32, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let msg = message(ty, flags, self.seq, body);
        // SAFETY: `msg` is a live buffer of `msg.len()` bytes the kernel only reads.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(NetlinkError::Io { what, source: io::Error::last_os_error() });
        }
        Ok(self.seq)
    }

    fn recv(&self, what: &'static str, buf: &mut [u8]) -> Result<usize, NetlinkError> {
        loop {
            // SAFETY: `buf` is a live, exclusively borrowed buffer of `buf.len()` bytes; the
            // kernel writes at most that many.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(NetlinkError::Io { what, source: e });
            }
        }
    }

    /// A request with an acknowledgement.
    fn request(&mut self, what: &'static str, ty: u16, body: &[u8]) -> Result<(), NetlinkError> {
        let seq = self.send(what, ty, NLM_F_REQUEST | NLM_F_ACK, body)?;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = self.recv(what, &mut buf)?;
            for m in messages(&buf[..n]) {
                let m = m.ok_or(NetlinkError::Malformed(what))?;
                if m.seq != seq {
                    continue;
                }
                if m.ty == NLMSG_ERROR {
                    return check_error(what, m.payload);
                }
            }
        }
    }

    fn dump<T>(&mut self, what: &'static str, ty: u16, hdr_len: usize, answer: u16, parse: fn(&[u8]) -> Option<T>) -> Result<Vec<T>, NetlinkError> {
        let mut buf = vec![0u8; RECV_BUF];
        'again: for _ in 0..DUMP_TRIES {
            let seq = self.send(what, ty, NLM_F_REQUEST | NLM_F_DUMP, &vec![0u8; hdr_len])?;
            let mut out = Vec::new();
            let mut intr = false;
            loop {
                let n = self.recv(what, &mut buf)?;
                if n == 0 {
                    return Err(NetlinkError::Malformed(what));
                }
                for m in messages(&buf[..n]) {
                    let m = m.ok_or(NetlinkError::Malformed(what))?;
                    if m.seq != seq {
                        continue;
                    }
                    intr |= m.flags & NLM_F_DUMP_INTR != 0;
                    match m.ty {
                        NLMSG_DONE if intr => continue 'again,
                        NLMSG_DONE => return Ok(out),
                        NLMSG_ERROR => {
                            check_error(what, m.payload)?;
                            return Ok(out);
                        }
                        t if t == answer => out.push(parse(m.payload).ok_or(NetlinkError::Malformed(what))?),
                        _ => {}
                    }
                }
            }
        }
        Err(NetlinkError::Interrupted(what))
    }
}

/// An NLMSG_ERROR payload: 0 is an acknowledgement, else a negative errno.
fn check_error(what: &'static str, payload: &[u8]) -> Result<(), NetlinkError> {
    let code = i32::from_ne_bytes(payload.get(..4).ok_or(NetlinkError::Malformed(what))?.try_into().unwrap_or([0; 4]));
    if code == 0 {
        Ok(())
    } else {
        Err(NetlinkError::Kernel { what, source: io::Error::from_raw_os_error(code.saturating_neg()) })
    }
}

/// One netlink message of a receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages of a buffer; `None` for a malformed header (and nothing after it).
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = Option<Message<'_>>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = u32_at(buf, 0)? as usize;
            if len < NLMSG_HDRLEN || len > buf.len() {
                return None;
            }
            Some((len, Message { ty: u16_at(buf, 4)?, flags: u16_at(buf, 6)?, seq: u32_at(buf, 8)?, payload: &buf[NLMSG_HDRLEN..len] }))
        })();
        match parsed {
            Some((len, m)) => {
                buf = buf.get(align4(len)..).unwrap_or(&[]);
                Some(Some(m))
            }
            None => {
                buf = &[];
                Some(None)
            }
        }
    })
}

/// The (type, value) attributes after a fixed header; stops at a malformed one.
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if len < 4 || len > b.len() {
            return None;
        }
        let value = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, value))
    })
}

fn push_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align4(out.len()), 0);
}

/// A whole netlink message: header and body.
pub fn message(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

fn ip(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family as i32 {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        libc::AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        _ => None,
    }
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// An RTM_NEWLINK payload (ifinfomsg + attributes).
pub fn parse_link(p: &[u8]) -> Option<Link> {
    let mut l = Link { index: u32_at(p, 4)?, name: String::new(), arphrd: u16_at(p, 2)?, flags: u32_at(p, 8)?, mtu: 0, mac: Vec::new() };
    for (ty, v) in attrs(p.get(IFINFOMSG_LEN..)?) {
        match ty {
            IFLA_IFNAME => l.name = String::from_utf8_lossy(v.split(|&c| c == 0).next().unwrap_or(&[])).into_owned(),
            IFLA_MTU => l.mtu = u32_at(v, 0)?,
            IFLA_ADDRESS => l.mac = v.to_vec(),
            _ => {}
        }
    }
    Some(l)
}

/// An RTM_NEWADDR payload (ifaddrmsg + attributes).
pub fn parse_addr(p: &[u8]) -> Option<Addr> {
    let family = *p.first()?;
    let mut a = Addr { index: u32_at(p, 4)?, family, prefix_len: *p.get(1)?, scope: *p.get(3)?, local: None, address: None };
    for (ty, v) in attrs(p.get(IFADDRMSG_LEN..)?) {
        match ty {
            IFA_ADDRESS => a.address = ip(family, v),
            IFA_LOCAL => a.local = ip(family, v),
            _ => {}
        }
    }
    Some(a)
}

/// An RTM_NEWROUTE payload (rtmsg + attributes).
pub fn parse_route(p: &[u8]) -> Option<Route> {
    let family = *p.first()?;
    let mut r = Route {
        family,
        dst_len: *p.get(1)?,
        table: u32::from(*p.get(4)?),
        kind: *p.get(7)?,
        dst: None,
        gateway: None,
        oif: None,
        priority: None,
        prefsrc: None,
        multipath: false,
    };
    for (ty, v) in attrs(p.get(RTMSG_LEN..)?) {
        match ty {
            RTA_DST => r.dst = ip(family, v),
            RTA_GATEWAY => r.gateway = ip(family, v),
            RTA_OIF => r.oif = u32_at(v, 0),
            RTA_PRIORITY => r.priority = u32_at(v, 0),
            RTA_PREFSRC => r.prefsrc = ip(family, v),
            RTA_TABLE => r.table = u32_at(v, 0).unwrap_or(r.table),
            RTA_MULTIPATH => r.multipath = true,
            _ => {}
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_payload(index: u32, arphrd: u16, flags: u32, name: &str, mtu: u32, mac: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8, 0];
        p.extend_from_slice(&arphrd.to_ne_bytes());
        p.extend_from_slice(&index.to_ne_bytes());
        p.extend_from_slice(&flags.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        push_attr(&mut p, IFLA_IFNAME, &n);
        push_attr(&mut p, IFLA_MTU, &mtu.to_ne_bytes());
        push_attr(&mut p, IFLA_ADDRESS, mac);
        p
    }

    #[test]
    fn a_link_message_parses_name_mtu_mac_and_flags() {
        let mac = [2, 0, 0, 0, 0, 9];
        let p = link_payload(7, ARPHRD_ETHER, 0x1043, "eth0", 1400, &mac);
        let buf = message(RTM_NEWLINK, 2, 5, &p);
        let ms: Vec<_> = messages(&buf).collect();
        assert_eq!(ms.len(), 1);
        let m = ms[0].as_ref().unwrap();
        assert_eq!((m.ty, m.seq), (RTM_NEWLINK, 5));
        let l = parse_link(m.payload).unwrap();
        assert_eq!(l, Link { index: 7, name: "eth0".into(), arphrd: ARPHRD_ETHER, flags: 0x1043, mtu: 1400, mac: mac.to_vec() });
    }

    #[test]
    fn several_messages_in_one_buffer_and_a_truncated_tail() {
        let mut buf = message(RTM_NEWLINK, 2, 1, &link_payload(1, ARPHRD_LOOPBACK, 9, "lo", 65536, &[0; 6]));
        buf.extend(message(NLMSG_DONE, 2, 1, &[0; 4]));
        let ms: Vec<_> = messages(&buf).collect();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].as_ref().unwrap().ty, NLMSG_DONE);
        // A header claiming more than the buffer holds is malformed, not a panic.
        let mut bad = buf.clone();
        bad.extend_from_slice(&[200, 0, 0, 0, 1, 0]);
        assert_eq!(messages(&bad).last().unwrap(), None);
        let mut huge = message(RTM_NEWLINK, 0, 1, &[]);
        huge[0] = 0xff;
        assert_eq!(messages(&huge).next().unwrap(), None);
    }

    #[test]
    fn address_messages_keep_local_and_address() {
        let mut p = vec![libc::AF_INET as u8, 30, 0, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        push_attr(&mut p, IFA_ADDRESS, &[169, 254, 77, 2]);
        push_attr(&mut p, IFA_LOCAL, &[169, 254, 77, 2]);
        let a = parse_addr(&p).unwrap();
        assert_eq!(a.index, 3);
        assert_eq!(a.prefix_len, 30);
        assert_eq!(a.own(), Some("169.254.77.2".parse().unwrap()));
        let mut p6 = vec![libc::AF_INET6 as u8, 64, 0, 253];
        p6.extend_from_slice(&3u32.to_ne_bytes());
        push_attr(&mut p6, IFA_ADDRESS, &"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        let a6 = parse_addr(&p6).unwrap();
        assert_eq!((a6.own(), a6.scope, a6.local), (Some("fe80::1".parse().unwrap()), 253, None));
        // An address attribute of the wrong size is ignored.
        let mut odd = vec![libc::AF_INET as u8, 8, 0, 0, 1, 0, 0, 0];
        push_attr(&mut odd, IFA_ADDRESS, &[1, 2, 3]);
        assert_eq!(parse_addr(&odd).unwrap().own(), None);
    }

    #[test]
    fn route_messages_parse_table_gateway_and_oif() {
        let mut p = vec![libc::AF_INET as u8, 0, 0, 0, RT_TABLE_MAIN as u8, 3, 0, RTN_UNICAST, 0, 0, 0, 0];
        push_attr(&mut p, RTA_TABLE, &RT_TABLE_MAIN.to_ne_bytes());
        push_attr(&mut p, RTA_GATEWAY, &[169, 254, 77, 1]);
        push_attr(&mut p, RTA_OIF, &2u32.to_ne_bytes());
        push_attr(&mut p, RTA_PRIORITY, &100u32.to_ne_bytes());
        let r = parse_route(&p).unwrap();
        assert_eq!(r.table, RT_TABLE_MAIN);
        assert_eq!(r.dst, None);
        assert_eq!(r.gateway, Some("169.254.77.1".parse().unwrap()));
        assert_eq!((r.oif, r.priority, r.multipath), (Some(2), Some(100), false));
        assert!(parse_route(&p[..5]).is_none());
    }

    #[test]
    fn kernel_errors_become_io_errors() {
        assert!(check_error("x", &0i32.to_ne_bytes()).is_ok());
        match check_error("x", &(-libc::EADDRNOTAVAIL).to_ne_bytes()) {
            Err(NetlinkError::Kernel { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::EADDRNOTAVAIL)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(check_error("x", &[1]), Err(NetlinkError::Malformed(_))));
    }
}
