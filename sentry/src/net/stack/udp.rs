//! UDP sockets (SOCK_DGRAM) of the sandbox stack: one smoltcp socket per link the bound
//! address is reachable on; a send goes out of the link that routes the destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_syscalls::flags::ioctl::FIONREAD;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::*;
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::common::{sock_stat, wait, Core, Shared, State};
use super::iface::{to_std, unmap, Kind};
use super::opts::{deadline, int, SockOpts};
use super::ports::PortProto;
use crate::kernel::wait::WaitQueue;
use crate::mm::MemoryManager;
use crate::net::addr;
use crate::net::{Cmsg, NetSocket, Received};
use crate::vfs::file::FileImpl;

const SIOCOUTQ: u32 = 0x5411;

#[derive(Default)]
struct Udp {
    binding: Option<u64>,
    bound: Option<SocketAddr>,
    handles: Vec<(usize, SocketHandle)>,
    peer: Option<SocketAddr>,
    opts: SockOpts,
    shut_rd: bool,
    shut_wr: bool,
}

pub(crate) struct UdpSocket {
    sh: Arc<Shared>,
    core: Arc<Core>,
    domain: i32,
    ino: u64,
    st: Mutex<Udp>,
}

impl UdpSocket {
    pub fn new(sh: &Arc<Shared>, domain: i32) -> Arc<UdpSocket> {
        Arc::new(UdpSocket {
            sh: sh.clone(),
            core: Arc::new(Core::default()),
            domain,
            ino: super::next_ino(),
            st: Mutex::new(Udp::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Udp> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn any_addr(&self) -> IpAddr {
        if self.domain == AF_INET {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }
    }

    fn parse(&self, raw: &[u8]) -> Result<SocketAddr, Errno> {
        let a = addr::parse(self.domain, raw)?;
        Ok(SocketAddr::new(unmap(a.ip()), a.port()))
    }

    /// Reserves the port and opens the smoltcp sockets for `a` (port 0: ephemeral).
    fn do_bind(&self, u: &mut Udp, g: &mut State, a: SocketAddr) -> Result<(), Errno> {
        let (b, port) = g.ports.bind(
            PortProto::Udp,
            a.ip(),
            a.port(),
            u.opts.reuse_addr,
            u.opts.reuse_port,
            u.opts.v6only,
        )?;
        let ip = unmap(a.ip());
        let endpoint = IpListenEndpoint {
            addr: (!ip.is_unspecified() && !ip.is_multicast()).then(|| ip.into()),
            port,
        };
        let mut handles = Vec::new();
        for link in g.links.links_for_bind(ip) {
            let r = g.new_udp().and_then(|(mut s, charge)| {
                s.set_hop_limit(u.opts.ttl);
                s.bind(endpoint).map_err(|_| Errno::EINVAL)?;
                g.add_charged(link, s, Kind::Udp, &self.core, charge)
            });
            match r {
                Ok(h) => handles.push((link, h)),
                Err(e) => {
                    for (l, h) in handles {
                        g.remove_socket(l, h);
                    }
                    g.ports.release(b);
                    return Err(e);
                }
            }
        }
        u.binding = Some(b);
        u.bound = Some(SocketAddr::new(a.ip(), port));
        u.handles = handles;
        Ok(())
    }

    fn ensure_bound(&self, u: &mut Udp, g: &mut State) -> Result<(), Errno> {
        if u.binding.is_none() {
            self.do_bind(u, g, SocketAddr::new(self.any_addr(), 0))?;
        }
        Ok(())
    }

    fn try_send(&self, data: &[u8], dst: SocketAddr) -> Result<usize, Errno> {
        let mut u = self.lock();
        let mut g = self.sh.lock();
        if let Some(e) = self.core.take_error() {
            return Err(e);
        }
        if u.shut_wr {
            return Err(Errno::EPIPE);
        }
        self.ensure_bound(&mut u, &mut g)?;
        let link = g.links.route(dst.ip())?;
        let Some(&(_, h)) = u.handles.iter().find(|(l, _)| *l == link) else {
            return Err(Errno::EINVAL);
        };
        let ip = if dst.ip().is_unspecified() {
            if dst.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
        } else {
            dst.ip()
        };
        if ip == IpAddr::V4(Ipv4Addr::BROADCAST) && !u.opts.broadcast {
            return Err(Errno::EACCES);
        }
        let s = g.udp(link, h);
        match s.send_slice(data, IpEndpoint::new(ip.into(), dst.port())) {
            Ok(()) => {}
            Err(udp::SendError::BufferFull) => return Err(Errno::EAGAIN),
            Err(udp::SendError::Unaddressable) => return Err(Errno::EINVAL),
        }
        g.poll(link);
        Ok(data.len())
    }

    fn try_recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno> {
        let mut u = self.lock();
        let mut g = self.sh.lock();
        if u.shut_rd {
            return Ok(Received::default());
        }
        if let Some(e) = self.core.take_error() {
            return Err(e);
        }
        let peek = flags & MSG_PEEK != 0;
        let handles = u.handles.clone();
        for (link, h) in handles {
            let ifindex = g.links.links[link].ifindex;
            let s = g.udp(link, h);
            loop {
                let Ok((data, meta)) = s.peek() else { break };
                let from = SocketAddr::new(to_std(meta.endpoint.addr), meta.endpoint.port);
                if u.peer.is_some_and(|p| p != from) {
                    let _ = s.recv();
                    continue;
                }
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                let full = data.len();
                let local = meta.local_address.map(to_std);
                if !peek {
                    let _ = s.recv();
                }
                let mut control = Vec::new();
                if u.opts.pktinfo {
                    control.push(pktinfo(self.domain, ifindex, local));
                }
                return Ok(Received {
                    len: n,
                    full,
                    from: Some(addr::encode(self.domain, &from)),
                    control,
                });
            }
        }
        let _ = &mut u;
        Err(Errno::EAGAIN)
    }
}

/// An IP_PKTINFO (or IPV6_PKTINFO) control message.
fn pktinfo(domain: i32, ifindex: u32, local: Option<IpAddr>) -> Cmsg {
    match (domain, local.map(unmap)) {
        (AF_INET6, l) => {
            let ip = match l {
                Some(IpAddr::V6(a)) => a,
                Some(IpAddr::V4(a)) => a.to_ipv6_mapped(),
                None => Ipv6Addr::UNSPECIFIED,
            };
            let mut d = ip.octets().to_vec();
            d.extend_from_slice(&ifindex.to_ne_bytes());
            Cmsg {
                level: SOL_IPV6,
                ty: IPV6_PKTINFO,
                data: d,
            }
        }
        (_, l) => {
            let ip = match l {
                Some(IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            let mut d = (ifindex as i32).to_ne_bytes().to_vec();
            d.extend_from_slice(&ip.octets());
            d.extend_from_slice(&ip.octets());
            Cmsg {
                level: SOL_IP,
                ty: IP_PKTINFO,
                data: d,
            }
        }
    }
}

impl NetSocket for UdpSocket {
    fn domain(&self) -> i32 {
        self.domain
    }

    fn sock_type(&self) -> i32 {
        SOCK_DGRAM
    }

    fn protocol(&self) -> i32 {
        IPPROTO_UDP
    }

    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        let a = if self.domain == AF_INET
            && addr::is_unspec(raw)
            && raw.len() >= 8
            && raw[4..8] == [0; 4]
        {
            SocketAddr::new(self.any_addr(), u16::from_be_bytes([raw[2], raw[3]]))
        } else {
            self.parse(raw)?
        };
        let mut u = self.lock();
        if u.binding.is_some() {
            return Err(Errno::EINVAL);
        }
        let mut g = self.sh.lock();
        if !g.links.may_bind(a.ip()) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        self.do_bind(&mut u, &mut g, a)
    }

    fn connect(&self, raw: &[u8], _nonblock: bool) -> Result<(), Errno> {
        let mut u = self.lock();
        if addr::is_unspec(raw) {
            u.peer = None;
            *self.core.udp_peer.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(());
        }
        let dst = self.parse(raw)?;
        if self.domain == AF_INET6 && u.opts.v6only && dst.is_ipv4() {
            return Err(Errno::ENETUNREACH);
        }
        let mut g = self.sh.lock();
        g.links.route(dst.ip())?;
        self.ensure_bound(&mut u, &mut g)?;
        u.peer = Some(dst);
        *self.core.udp_peer.lock().unwrap_or_else(|p| p.into_inner()) = Some(dst);
        Ok(())
    }

    fn listen(&self, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn accept(&self, _nonblock: bool) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn local_name(&self) -> Result<Vec<u8>, Errno> {
        let u = self.lock();
        Ok(addr::encode(
            self.domain,
            &u.bound.unwrap_or(SocketAddr::new(self.any_addr(), 0)),
        ))
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let u = self.lock();
        u.peer
            .map(|p| addr::encode(self.domain, &p))
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
        let limit = if self.domain == AF_INET { 65507 } else { 65527 };
        if data.len() > limit {
            return Err(Errno::EMSGSIZE);
        }
        let dst = match to {
            Some(raw) if !raw.is_empty() => self.parse(raw)?,
            _ => self.lock().peer.ok_or(Errno::EDESTADDRREQ)?,
        };
        if dst.port() == 0 {
            return Err(Errno::EINVAL);
        }
        if self.domain == AF_INET6 && self.lock().opts.v6only && dst.is_ipv4() {
            return Err(Errno::ENETUNREACH);
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

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mut u = self.lock();
        if u.peer.is_none() {
            return Err(Errno::ENOTCONN);
        }
        if how != 1 {
            u.shut_rd = true;
        }
        if how != 0 {
            u.shut_wr = true;
        }
        self.core.wq.notify_all();
        Ok(())
    }

    fn getsockopt(&self, level: i32, name: i32, _len: usize) -> Result<Vec<u8>, Errno> {
        let u = self.lock();
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => Ok(int(SOCK_DGRAM)),
            (SOL_SOCKET, SO_DOMAIN) => Ok(int(self.domain)),
            (SOL_SOCKET, SO_PROTOCOL) => Ok(int(IPPROTO_UDP)),
            (SOL_SOCKET, SO_ACCEPTCONN) => Ok(int(0)),
            (SOL_SOCKET, SO_ERROR) => Ok(int(self.core.take_error().map_or(0, |e| e.0))),
            (SOL_IPV6, _) if self.domain != AF_INET6 => Err(Errno::EOPNOTSUPP),
            _ => u
                .opts
                .get(level, name)
                .ok_or_else(|| super::unknown_get_errno(self.domain, SOL_UDP, level)),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut u = self.lock();
        if level == SOL_IPV6 && self.domain != AF_INET6 {
            return Err(Errno::ENOPROTOOPT);
        }
        if level == SOL_UDP {
            return Ok(());
        }
        if u.opts.set(level, name, val)? {
            Ok(())
        } else {
            Err(Errno::ENOPROTOOPT)
        }
    }
}

impl FileImpl for UdpSocket {
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
        let n = match cmd {
            FIONREAD | SIOCOUTQ => {
                let u = self.lock();
                let mut g = self.sh.lock();
                let mut n = 0;
                for &(link, h) in &u.handles {
                    let s = g.udp(link, h);
                    if cmd == FIONREAD {
                        // The size of the next datagram, as Linux.
                        if let Ok((d, _)) = s.peek() {
                            n = d.len();
                            break;
                        }
                    } else {
                        n += s.send_queue();
                    }
                }
                n
            }
            _ => return crate::net::ifreq::ioctl(mm, cmd, arg),
        };
        mm.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        let u = self.lock();
        let mut g = self.sh.lock();
        let mut m = 0;
        if u.shut_rd {
            m |= POLLIN | POLLRDNORM | POLLRDHUP;
        }
        if u.shut_rd && u.shut_wr {
            m |= POLLHUP;
        }
        let mut can_send = u.handles.is_empty();
        for &(link, h) in &u.handles {
            let s = g.udp(link, h);
            if s.can_recv() {
                m |= POLLIN | POLLRDNORM;
            }
            can_send |= s.can_send();
        }
        if can_send {
            m |= POLLOUT | POLLWRNORM;
        }
        if self.core.error.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            m |= POLLERR;
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

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let u = self.st.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut g = self.sh.lock();
        for (link, h) in u.handles.drain(..) {
            g.remove_socket(link, h);
        }
        if let Some(b) = u.binding.take() {
            g.ports.release(b);
        }
    }
}
