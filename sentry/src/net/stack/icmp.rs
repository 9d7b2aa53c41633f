//! ICMP echo sockets: "ping sockets" (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6: the stack owns the
//! echo identifier) and raw ICMP sockets (SOCK_RAW: the guest picks the identifier; IPv4
//! receives carry an IP header, as Linux). The stack itself answers echo requests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_syscalls::flags::ioctl::FIONREAD;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::*;
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::icmp;

use super::common::{sock_stat, wait, Core, Shared, State};
use super::iface::{to_std, unmap, Kind, LO};
use super::opts::{deadline, int, SockOpts};
use super::ports::PortProto;
use crate::kernel::wait::WaitQueue;
use crate::mm::MemoryManager;
use crate::net::addr;
use crate::net::{Cmsg, NetSocket, Received};
use crate::vfs::file::FileImpl;

#[derive(Default)]
struct Icmp {
    ident: Option<u16>,
    binding: Option<u64>,
    bound: Option<IpAddr>,
    handles: Vec<(usize, SocketHandle)>,
    peer: Option<IpAddr>,
    opts: SockOpts,
}

pub(crate) struct IcmpSocket {
    sh: Arc<Shared>,
    core: Arc<Core>,
    domain: i32,
    raw: bool,
    ino: u64,
    st: Mutex<Icmp>,
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl IcmpSocket {
    pub fn new(sh: &Arc<Shared>, domain: i32, raw: bool) -> Arc<IcmpSocket> {
        Arc::new(IcmpSocket {
            sh: sh.clone(),
            core: Arc::new(Core::default()),
            domain,
            raw,
            ino: super::next_ino(),
            st: Mutex::new(Icmp::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Icmp> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn proto(&self) -> i32 {
        if self.domain == AF_INET {
            IPPROTO_ICMP
        } else {
            IPPROTO_ICMPV6
        }
    }

    fn echo_types(&self) -> (u8, u8) {
        if self.domain == AF_INET {
            (8, 0)
        } else {
            (128, 129)
        }
    }

    /// (Re)binds the smoltcp sockets of every link to echo identifier `ident`.
    fn bind_ident(&self, c: &mut Icmp, g: &mut State, ident: u16) -> Result<(), Errno> {
        if c.ident == Some(ident) && !c.handles.is_empty() {
            return Ok(());
        }
        for (l, h) in c.handles.drain(..) {
            g.remove_socket(l, h);
        }
        for link in 0..g.links.links.len() {
            let (mut s, charge) = g.new_icmp()?;
            s.set_hop_limit(c.opts.ttl);
            s.bind(icmp::Endpoint::Ident(ident))
                .map_err(|_| Errno::EINVAL)?;
            let h = g.add_charged(link, s, Kind::Icmp, &self.core, charge)?;
            c.handles.push((link, h));
        }
        c.ident = Some(ident);
        Ok(())
    }

    fn ensure_ident(&self, c: &mut Icmp, g: &mut State) -> Result<u16, Errno> {
        if let Some(i) = c.ident {
            return Ok(i);
        }
        let any = if self.domain == AF_INET {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let (b, id) = g.ports.bind(
            PortProto::Icmp,
            c.bound.unwrap_or(any),
            0,
            false,
            false,
            false,
        )?;
        c.binding = Some(b);
        self.bind_ident(c, g, id)?;
        Ok(id)
    }

    fn try_send(&self, data: &[u8], dst: IpAddr) -> Result<usize, Errno> {
        let mut c = self.lock();
        let mut g = self.sh.lock();
        let mut pkt = data.to_vec();
        if self.raw && self.domain == AF_INET && c.opts.hdrincl {
            let ihl = (pkt.first().copied().unwrap_or(0) & 0xf) as usize * 4;
            if ihl < 20 || pkt.len() < ihl + 8 {
                return Err(Errno::EINVAL);
            }
            pkt.drain(..ihl);
        }
        if pkt.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let (req, _) = self.echo_types();
        if self.raw {
            if pkt[0] != req {
                // Only echo requests are carried; others are accepted and dropped.
                return Ok(data.len());
            }
            let ident = u16::from_be_bytes([pkt[4], pkt[5]]);
            self.bind_ident(&mut c, &mut g, ident)?;
        } else {
            if pkt[0] != req || pkt[1] != 0 {
                return Err(Errno::EINVAL);
            }
            let ident = self.ensure_ident(&mut c, &mut g)?;
            pkt[4..6].copy_from_slice(&ident.to_be_bytes());
        }
        pkt[2] = 0;
        pkt[3] = 0;
        if self.domain == AF_INET {
            let ck = checksum(&pkt);
            pkt[2..4].copy_from_slice(&ck.to_be_bytes());
        }
        let dst = if dst.is_unspecified() {
            if self.domain == AF_INET {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
        } else {
            dst
        };
        let link = g.links.route(dst)?;
        let Some(&(_, h)) = c.handles.iter().find(|(l, _)| *l == link) else {
            return Err(Errno::ENETUNREACH);
        };
        match g.icmp(link, h).send_slice(&pkt, dst.into()) {
            Ok(()) => {}
            Err(icmp::SendError::BufferFull) => return Err(Errno::EAGAIN),
            Err(icmp::SendError::Unaddressable) => return Err(Errno::EINVAL),
        }
        g.poll(link);
        Ok(data.len())
    }

    fn try_recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno> {
        let c = self.lock();
        let mut g = self.sh.lock();
        let (_, reply) = self.echo_types();
        for &(link, h) in &c.handles {
            let local = g.links.links[link].iface.ipv4_addr();
            let s = g.icmp(link, h);
            while let Ok((data, from)) = s.recv() {
                if data.first() != Some(&reply) {
                    continue;
                }
                let from = to_std(from);
                if c.peer.is_some_and(|p| p != from) {
                    continue;
                }
                let mut out = Vec::with_capacity(data.len() + 20);
                if self.raw && self.domain == AF_INET {
                    let src = match from {
                        IpAddr::V4(a) => a,
                        _ => Ipv4Addr::UNSPECIFIED,
                    };
                    let dst = if link == LO {
                        src
                    } else {
                        local.unwrap_or(Ipv4Addr::UNSPECIFIED)
                    };
                    let total = (20 + data.len()).min(65535) as u16;
                    let mut hdr = [0u8; 20];
                    hdr[0] = 0x45;
                    hdr[2..4].copy_from_slice(&total.to_be_bytes());
                    hdr[6] = 0x40;
                    hdr[8] = 64;
                    hdr[9] = 1;
                    hdr[12..16].copy_from_slice(&src.octets());
                    hdr[16..20].copy_from_slice(&dst.octets());
                    let ck = checksum(&hdr);
                    hdr[10..12].copy_from_slice(&ck.to_be_bytes());
                    out.extend_from_slice(&hdr);
                }
                out.extend_from_slice(data);
                let n = out.len().min(buf.len());
                buf[..n].copy_from_slice(&out[..n]);
                let _ = flags;
                return Ok(Received {
                    len: n,
                    full: out.len(),
                    from: Some(addr::encode(self.domain, &SocketAddr::new(from, 0))),
                    control: Vec::new(),
                });
            }
        }
        Err(Errno::EAGAIN)
    }
}

impl NetSocket for IcmpSocket {
    fn domain(&self) -> i32 {
        self.domain
    }

    fn sock_type(&self) -> i32 {
        if self.raw {
            SOCK_RAW
        } else {
            SOCK_DGRAM
        }
    }

    fn protocol(&self) -> i32 {
        self.proto()
    }

    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        let a = addr::parse(self.domain, raw)?;
        let ip = unmap(a.ip());
        let mut c = self.lock();
        let mut g = self.sh.lock();
        if !g.links.may_bind(ip) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        if c.binding.is_some() || (self.raw && c.bound.is_some()) {
            return Err(Errno::EINVAL);
        }
        c.bound = Some(ip);
        if !self.raw {
            let (b, id) = g
                .ports
                .bind(PortProto::Icmp, ip, a.port(), false, false, false)?;
            c.binding = Some(b);
            self.bind_ident(&mut c, &mut g, id)?;
        }
        Ok(())
    }

    fn connect(&self, raw: &[u8], _nonblock: bool) -> Result<(), Errno> {
        let mut c = self.lock();
        if addr::is_unspec(raw) {
            c.peer = None;
            return Ok(());
        }
        let a = addr::parse(self.domain, raw)?;
        c.peer = Some(unmap(a.ip()));
        Ok(())
    }

    fn listen(&self, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn accept(&self, _nonblock: bool) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn local_name(&self) -> Result<Vec<u8>, Errno> {
        let c = self.lock();
        let any = if self.domain == AF_INET {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let port = if self.raw { 0 } else { c.ident.unwrap_or(0) };
        Ok(addr::encode(
            self.domain,
            &SocketAddr::new(c.bound.unwrap_or(any), port),
        ))
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let c = self.lock();
        c.peer
            .map(|p| addr::encode(self.domain, &SocketAddr::new(p, 0)))
            .ok_or(Errno::ENOTCONN)
    }

    fn send(
        &self,
        data: &[u8],
        to: Option<&[u8]>,
        _control: &[Cmsg],
        flags: u32,
        nonblock: bool,
    ) -> Result<usize, Errno> {
        let dst = match to {
            Some(raw) if !raw.is_empty() => unmap(addr::parse(self.domain, raw)?.ip()),
            _ => self.lock().peer.ok_or(Errno::EDESTADDRREQ)?,
        };
        if data.len() > 65507 {
            return Err(Errno::EMSGSIZE);
        }
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let dl = deadline(self.lock().opts.sndtimeo);
        wait(&self.core, nonblock, dl, || self.try_send(data, dst))
    }

    fn recv(&self, buf: &mut [u8], flags: u32, nonblock: bool) -> Result<Received, Errno> {
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let dl = deadline(self.lock().opts.rcvtimeo);
        wait(&self.core, nonblock, dl, || self.try_recv(buf, flags))
    }

    fn shutdown(&self, _how: i32) -> Result<(), Errno> {
        Err(Errno::ENOTCONN)
    }

    fn getsockopt(&self, level: i32, name: i32, _len: usize) -> Result<Vec<u8>, Errno> {
        let c = self.lock();
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => Ok(int(self.sock_type())),
            (SOL_SOCKET, SO_DOMAIN) => Ok(int(self.domain)),
            (SOL_SOCKET, SO_PROTOCOL) => Ok(int(self.proto())),
            (SOL_SOCKET, SO_ACCEPTCONN) | (SOL_SOCKET, SO_ERROR) => Ok(int(0)),
            _ => c.opts.get(level, name).ok_or_else(|| {
                let proto_level = if self.raw { SOL_RAW } else { -1 };
                super::unknown_get_errno(self.domain, proto_level, level)
            }),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut c = self.lock();
        // ICMP_FILTER (SOL_RAW) and ICMPV6_FILTER: accepted; only echo replies arrive anyway.
        if level == SOL_RAW || level == SOL_ICMPV6 {
            return Ok(());
        }
        if c.opts.set(level, name, val)? {
            Ok(())
        } else {
            Err(Errno::ENOPROTOOPT)
        }
    }
}

impl FileImpl for IcmpSocket {
    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        Ok(self.recv(buf, 0, flags & O_NONBLOCK != 0)?.len)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.send(buf, None, &[], 0, flags & O_NONBLOCK != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(sock_stat(self.ino))
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn ioctl(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        if cmd == FIONREAD {
            let c = self.lock();
            let mut g = self.sh.lock();
            let n: usize = c
                .handles
                .iter()
                .map(|&(l, h)| g.icmp(l, h).recv_queue())
                .sum();
            mm.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
            return Ok(0);
        }
        crate::net::ifreq::ioctl(mm, cmd, arg)
    }

    fn readiness(&self) -> u32 {
        let c = self.lock();
        let mut g = self.sh.lock();
        let mut m = POLLOUT | POLLWRNORM;
        for &(link, h) in &c.handles {
            if g.icmp(link, h).can_recv() {
                m |= POLLIN | POLLRDNORM;
            }
        }
        m
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.core.wq)
    }

    fn as_net_socket(&self) -> Option<&dyn NetSocket> {
        Some(self)
    }
}

impl Drop for IcmpSocket {
    fn drop(&mut self) {
        let c = self.st.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut g = self.sh.lock();
        for (link, h) in c.handles.drain(..) {
            g.remove_socket(link, h);
        }
        if let Some(b) = c.binding.take() {
            g.ports.release(b);
        }
    }
}
