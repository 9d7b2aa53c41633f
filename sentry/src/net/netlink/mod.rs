//! AF_NETLINK sockets. NETLINK_ROUTE answers link, address, route, neighbour and rule
//! requests from the sandbox's network ([`route`]); NETLINK_KOBJECT_UEVENT sockets (udev
//! and friends) bind and poll but never receive anything, as gVisor's; other protocols
//! are EPROTONOSUPPORT.
//!
//! A socket is bound to a port id (`nl_pid`): explicitly, or on first use to the caller's
//! tgid, then to unique negative numbers if that is taken (Linux's autobind). Requests
//! are answered at once: each answer is queued as datagrams (a dump's messages share
//! datagrams of up to [`DUMP_DGRAM`] bytes) that recv(2) returns one at a time.
//! Queued answers are bounded by the socket's receive buffer and charged to the sandbox's
//! socket buffer budget; an answer that either cannot take is dropped and the socket
//! reports ENOBUFS, as a Linux netlink socket does after an overrun.

pub mod msg;
pub mod route;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::mode::S_IFSOCK;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::netlink::*;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::{Errno, Pod};

use super::{Cmsg, NetSocket, NetworkStack, Received};
use crate::kernel::membudget::{Charge, SOCKET_BUFFERS};
use crate::kernel::wait::{block_on, WaitQueue};
use crate::mm::MemoryManager;
use crate::vfs::file::FileImpl;

/// Most bytes of messages one dump datagram holds (Linux's dump skbs are about this big).
pub const DUMP_DGRAM: usize = 32 * 1024;
/// Linux's default socket buffer sizes (`net.core.{r,w}mem_default`).
const DEFAULT_BUF: usize = 212_992;
/// Largest buffer size an unprivileged setsockopt gets (`{r,w}mem_max`) before doubling.
const MAX_BUF: usize = 212_992;
const MIN_RCVBUF: usize = 2304;
const MIN_SNDBUF: usize = 4608;
/// The device number sockfs reports.
const SOCKFS_DEV: u64 = 0x08;
/// The highest multicast group a socket may join.
const MAX_GROUP: u32 = 64;
/// What a queued datagram costs the sandbox's socket buffer budget beyond its bytes.
const DGRAM_OVERHEAD: usize = 256;

/// Port ids in use, per protocol.
fn ports() -> MutexGuard<'static, HashMap<i32, BTreeSet<u32>>> {
    static PORTS: OnceLock<Mutex<HashMap<i32, BTreeSet<u32>>>> = OnceLock::new();
    PORTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// socket(AF_NETLINK, ty, protocol).
pub fn socket(ty: i32, protocol: i32) -> Result<Arc<dyn FileImpl>, Errno> {
    let net = crate::kernel::task::current_kernel().and_then(|k| k.network().cloned());
    Ok(NetlinkSocket::new(ty, protocol, net)?)
}

#[derive(Default)]
struct State {
    /// The bound port id (0: not yet bound).
    portid: u32,
    /// Joined multicast groups (bit n-1 for group n).
    groups: u64,
    dst_pid: u32,
    dst_group: u32,
    /// Datagrams waiting to be read.
    rx: VecDeque<Vec<u8>>,
    rx_bytes: usize,
    /// `rx`'s bytes and overheads, charged to the sandbox's budget.
    rx_charge: Option<Charge>,
    /// An error to report once (ENOBUFS after an overrun).
    error: Option<Errno>,
    rcvbuf: usize,
    sndbuf: usize,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// SOL_NETLINK flag options by number, and SO_PASSCRED/SO_TIMESTAMP/SO_REUSEADDR.
    flags: BTreeSet<(i32, i32)>,
}

/// An AF_NETLINK socket.
pub struct NetlinkSocket {
    ty: i32,
    protocol: i32,
    net: Option<Arc<dyn NetworkStack>>,
    ino: u64,
    ctime: (i64, i64),
    state: Mutex<State>,
    queue: WaitQueue,
}

impl NetlinkSocket {
    /// A socket answering from `net` (none: an empty network).
    pub fn new(
        ty: i32,
        protocol: i32,
        net: Option<Arc<dyn NetworkStack>>,
    ) -> Result<Arc<NetlinkSocket>, Errno> {
        if ty != SOCK_RAW && ty != SOCK_DGRAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if protocol != NETLINK_ROUTE && protocol != NETLINK_KOBJECT_UEVENT {
            return Err(Errno::EPROTONOSUPPORT);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Arc::new(NetlinkSocket {
            ty,
            protocol,
            net,
            ino: crate::vfs::unix::next_socket_ino(),
            ctime: (now.as_secs() as i64, i64::from(now.subsec_nanos())),
            state: Mutex::new(State {
                rcvbuf: DEFAULT_BUF,
                sndbuf: DEFAULT_BUF,
                ..Default::default()
            }),
            queue: WaitQueue::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds to `want` (0: autobind) unless bound already; the bound port id.
    fn bind_port(&self, st: &mut State, want: u32) -> Result<u32, Errno> {
        if st.portid != 0 {
            return if want == 0 || want == st.portid {
                Ok(st.portid)
            } else {
                Err(Errno::EINVAL)
            };
        }
        let mut ports = ports();
        let used = ports.entry(self.protocol).or_default();
        let id = if want != 0 {
            if used.contains(&want) {
                return Err(Errno::EADDRINUSE);
            }
            want
        } else {
            let tgid = crate::kernel::task::current_task().map_or(0, |t| t.tg.tgid);
            if tgid > 0 && !used.contains(&(tgid as u32)) {
                tgid as u32
            } else {
                // Linux's rover: -4096, -4097, ... (as unsigned port ids).
                let mut id = (-4096i32) as u32;
                while used.contains(&id) {
                    id = id.wrapping_sub(1);
                }
                id
            }
        };
        used.insert(id);
        st.portid = id;
        Ok(id)
    }

    fn parse_addr(addr: &[u8]) -> Result<SockaddrNl, Errno> {
        let a = SockaddrNl::from_bytes(addr).ok_or(Errno::EINVAL)?;
        if i32::from(a.nl_family) != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        Ok(a)
    }

    fn name(pid: u32, groups: u32) -> Vec<u8> {
        SockaddrNl {
            nl_family: AF_NETLINK as u16,
            nl_pad: 0,
            nl_pid: pid,
            nl_groups: groups,
        }
        .as_bytes()
        .to_vec()
    }

    /// Answers the requests in one datagram and queues the replies.
    fn process(&self, data: &[u8], portid: u32) {
        if self.protocol != NETLINK_ROUTE {
            return;
        }
        let (strict, cap_ack) = {
            let st = self.lock();
            (
                st.flags.contains(&(SOL_NETLINK, NETLINK_GET_STRICT_CHK)),
                st.flags.contains(&(SOL_NETLINK, NETLINK_CAP_ACK)),
            )
        };
        let empty = super::NetworkSpec::default();
        let stats = self.net.as_ref().map(|n| n.stats()).unwrap_or_default();
        let view = route::View {
            spec: self.net.as_ref().map_or(&empty, |n| n.spec()),
            stats: &stats,
        };
        let opts = route::Options { strict, cap_ack };
        for (h, payload) in msg::messages(data) {
            let answer = route::handle(&view, opts, &h, payload, portid);
            let ack = h.nlmsg_flags & NLM_F_ACK != 0
                && answer.len() == 1
                && answer[0].get(4..6) != Some(&NLMSG_ERROR.to_ne_bytes())
                && h.nlmsg_flags & NLM_F_DUMP == 0;
            let mut answer = answer;
            if ack {
                // A successful single get with NLM_F_ACK: the answer, then an ack.
                answer.push(msg::error(&h, payload, 0, portid, cap_ack));
            }
            self.enqueue(answer);
        }
    }

    /// Queues messages, packing multipart ones into datagrams of up to [`DUMP_DGRAM`].
    fn enqueue(&self, msgs: Vec<Vec<u8>>) {
        if msgs.is_empty() {
            return;
        }
        let mut st = self.lock();
        let mut dgrams: Vec<Vec<u8>> = Vec::new();
        for m in msgs {
            let multi = m
                .get(6..8)
                .is_some_and(|f| u16::from_ne_bytes([f[0], f[1]]) & NLM_F_MULTI != 0);
            match dgrams.last_mut() {
                Some(d) if multi && d.len() + m.len() <= DUMP_DGRAM => d.extend_from_slice(&m),
                _ => dgrams.push(m),
            }
        }
        // Bounded like a receive buffer (with room for one dump beyond it, as Linux lets a
        // dump run while the buffer has space): an overrun drops the answer.
        let size: usize = dgrams.iter().map(Vec::len).sum();
        let cost = size.saturating_add(dgrams.len().saturating_mul(DGRAM_OVERHEAD));
        if st.rx_bytes > 0 && st.rx_bytes + size > st.rcvbuf.max(DUMP_DGRAM) * 2 {
            st.error = Some(Errno::ENOBUFS);
        } else if let Some(c) = SOCKET_BUFFERS.try_charge(cost) {
            match &mut st.rx_charge {
                Some(held) => held.absorb(c),
                none => *none = Some(c),
            }
            st.rx_bytes += size;
            st.rx.extend(dgrams);
        } else {
            st.error = Some(Errno::ENOBUFS);
        }
        drop(st);
        self.queue.notify_all();
    }

    fn recv_inner(&self, buf: &mut [u8], flags: u32, nonblock: bool) -> Result<Received, Errno> {
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let timeout = self.lock().rcvtimeo;
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut take = || -> Option<Result<Received, Errno>> {
            let mut st = self.lock();
            if let Some(e) = st.error.take() {
                return Some(Err(e));
            }
            let d = st.rx.front()?;
            let n = d.len().min(buf.len());
            buf[..n].copy_from_slice(&d[..n]);
            let full = d.len();
            if flags & MSG_PEEK == 0 {
                st.rx.pop_front();
                st.rx_bytes -= full;
                if let Some(c) = &mut st.rx_charge {
                    c.release(full + DGRAM_OVERHEAD);
                }
            }
            let mut control = Vec::new();
            if st.flags.contains(&(SOL_NETLINK, NETLINK_PKTINFO)) {
                control.push(Cmsg {
                    level: SOL_NETLINK,
                    ty: NETLINK_PKTINFO,
                    data: 0u32.to_ne_bytes().to_vec(),
                });
            }
            Some(Ok(Received {
                len: n,
                full,
                from: Some(Self::name(0, 0)),
                control,
            }))
        };
        if nonblock {
            return take().unwrap_or(Err(Errno::EAGAIN));
        }
        match block_on(&[&self.queue], deadline, take) {
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            r => r,
        }
    }
}

impl Drop for NetlinkSocket {
    fn drop(&mut self) {
        let id = self.lock().portid;
        if id != 0 {
            if let Some(set) = ports().get_mut(&self.protocol) {
                set.remove(&id);
            }
        }
    }
}

fn int_of(val: &[u8]) -> Result<i32, Errno> {
    i32::from_bytes(val).ok_or(Errno::EINVAL)
}

fn timeval(d: Option<Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    let mut v = (d.as_secs() as i64).to_ne_bytes().to_vec();
    v.extend_from_slice(&i64::from(d.subsec_micros()).to_ne_bytes());
    v
}

fn parse_timeval(val: &[u8]) -> Result<Option<Duration>, Errno> {
    let s = i64::from_bytes(val).ok_or(Errno::EINVAL)?;
    let us = i64::from_bytes(val.get(8..).unwrap_or_default()).ok_or(Errno::EINVAL)?;
    if !(0..1_000_000).contains(&us) {
        return Err(Errno::EDOM);
    }
    if s < 0 || (s == 0 && us == 0) {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(s as u64) + Duration::from_micros(us as u64),
    ))
}

impl NetSocket for NetlinkSocket {
    fn domain(&self) -> i32 {
        AF_NETLINK
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        let a = Self::parse_addr(addr)?;
        let mut st = self.lock();
        self.bind_port(&mut st, a.nl_pid)?;
        st.groups = (st.groups & !0xffff_ffff) | u64::from(a.nl_groups);
        Ok(())
    }

    fn connect(&self, addr: &[u8], _nonblock: bool) -> Result<(), Errno> {
        if addr.len() >= 2 && i32::from(u16::from_ne_bytes([addr[0], addr[1]])) == AF_UNSPEC {
            let mut st = self.lock();
            st.dst_pid = 0;
            st.dst_group = 0;
            return Ok(());
        }
        let a = Self::parse_addr(addr)?;
        let mut st = self.lock();
        self.bind_port(&mut st, 0)?;
        st.dst_pid = a.nl_pid;
        st.dst_group = a.nl_groups;
        Ok(())
    }

    fn listen(&self, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn accept(&self, _nonblock: bool) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn local_name(&self) -> Result<Vec<u8>, Errno> {
        let st = self.lock();
        Ok(Self::name(st.portid, st.groups as u32))
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let st = self.lock();
        Ok(Self::name(st.dst_pid, st.dst_group))
    }

    fn send(
        &self,
        data: &[u8],
        to: Option<&[u8]>,
        _control: &[Cmsg],
        _flags: u32,
        _nonblock: bool,
    ) -> Result<usize, Errno> {
        let (dst, portid) = {
            let mut st = self.lock();
            let dst = match to {
                Some(a) if !a.is_empty() => Self::parse_addr(a)?.nl_pid,
                _ => st.dst_pid,
            };
            if data.len() + 32 > st.sndbuf {
                return Err(Errno::EMSGSIZE);
            }
            (dst, self.bind_port(&mut st, 0)?)
        };
        if dst != 0 {
            // Only the kernel answers here; there are no user-space netlink peers.
            return Err(Errno::ECONNREFUSED);
        }
        self.process(data, portid);
        Ok(data.len())
    }

    fn recv(&self, buf: &mut [u8], flags: u32, nonblock: bool) -> Result<Received, Errno> {
        self.recv_inner(buf, flags, nonblock)
    }

    fn shutdown(&self, _how: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn getsockopt(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let st = self.lock();
        let int =
            |v: usize| -> Vec<u8> { i32::try_from(v).unwrap_or(i32::MAX).to_ne_bytes().to_vec() };
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => Ok(int(self.ty as usize)),
            (SOL_SOCKET, SO_PROTOCOL) => Ok(int(self.protocol as usize)),
            (SOL_SOCKET, SO_DOMAIN) => Ok(int(AF_NETLINK as usize)),
            (SOL_SOCKET, SO_ERROR) => {
                drop(st);
                let e = self.lock().error.take().map_or(0, |e| e.0);
                Ok(e.to_ne_bytes().to_vec())
            }
            (SOL_SOCKET, SO_RCVBUF) => Ok(int(st.rcvbuf)),
            (SOL_SOCKET, SO_SNDBUF) => Ok(int(st.sndbuf)),
            (SOL_SOCKET, SO_ACCEPTCONN) => Ok(int(0)),
            (SOL_SOCKET, SO_RCVTIMEO) => Ok(timeval(st.rcvtimeo)),
            (SOL_SOCKET, SO_SNDTIMEO) => Ok(timeval(st.sndtimeo)),
            (
                SOL_SOCKET,
                SO_PASSCRED | SO_TIMESTAMP | SO_REUSEADDR | SO_KEEPALIVE | SO_BROADCAST,
            ) => Ok(int(usize::from(st.flags.contains(&(level, name))))),
            (SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS) => {
                let mut v = (st.groups as u32).to_ne_bytes().to_vec();
                v.extend_from_slice(&((st.groups >> 32) as u32).to_ne_bytes());
                Ok(v)
            }
            (
                SOL_NETLINK,
                NETLINK_PKTINFO
                | NETLINK_BROADCAST_ERROR
                | NETLINK_NO_ENOBUFS
                | NETLINK_LISTEN_ALL_NSID
                | NETLINK_CAP_ACK
                | NETLINK_EXT_ACK
                | NETLINK_GET_STRICT_CHK,
            ) => {
                if len < 4 {
                    return Err(Errno::EINVAL);
                }
                Ok(int(usize::from(st.flags.contains(&(level, name)))))
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        match (level, name) {
            (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => {
                let v = int_of(val)?.max(0) as usize;
                let v = if name == SO_RCVBUF {
                    v.min(MAX_BUF)
                } else {
                    v.min(i32::MAX as usize / 2)
                };
                st.rcvbuf = (v * 2).max(MIN_RCVBUF);
            }
            (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => {
                let v = int_of(val)?.max(0) as usize;
                let v = if name == SO_SNDBUF {
                    v.min(MAX_BUF)
                } else {
                    v.min(i32::MAX as usize / 2)
                };
                st.sndbuf = (v * 2).max(MIN_SNDBUF);
            }
            (SOL_SOCKET, SO_RCVTIMEO) => st.rcvtimeo = parse_timeval(val)?,
            (SOL_SOCKET, SO_SNDTIMEO) => st.sndtimeo = parse_timeval(val)?,
            (
                SOL_SOCKET,
                SO_PASSCRED | SO_TIMESTAMP | SO_REUSEADDR | SO_KEEPALIVE | SO_BROADCAST,
            ) => {
                if int_of(val)? != 0 {
                    st.flags.insert((level, name));
                } else {
                    st.flags.remove(&(level, name));
                }
            }
            // Socket filters (udev attaches one to uevent sockets): accepted; nothing is
            // ever multicast to filter.
            (SOL_SOCKET, 26 | 27 | 44) => {}
            (SOL_NETLINK, NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP) => {
                let g = int_of(val)? as u32;
                if g == 0 || g > MAX_GROUP {
                    return Err(Errno::EINVAL);
                }
                self.bind_port(&mut st, 0)?;
                let bit = 1u64 << (g - 1);
                if name == NETLINK_ADD_MEMBERSHIP {
                    st.groups |= bit;
                } else {
                    st.groups &= !bit;
                }
            }
            (
                SOL_NETLINK,
                NETLINK_PKTINFO
                | NETLINK_BROADCAST_ERROR
                | NETLINK_NO_ENOBUFS
                | NETLINK_LISTEN_ALL_NSID
                | NETLINK_CAP_ACK
                | NETLINK_EXT_ACK
                | NETLINK_GET_STRICT_CHK,
            ) => {
                if int_of(val)? != 0 {
                    st.flags.insert((level, name));
                } else {
                    st.flags.remove(&(level, name));
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }
}

impl FileImpl for NetlinkSocket {
    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.recv_inner(buf, 0, flags & O_NONBLOCK != 0)
            .map(|r| r.len)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.send(buf, None, &[], 0, flags & O_NONBLOCK != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let (s, ns) = self.ctime;
        Ok(Stat {
            st_dev: SOCKFS_DEV,
            st_ino: self.ino,
            st_nlink: 1,
            st_mode: S_IFSOCK | 0o777,
            st_blksize: 4096,
            st_atime: s,
            st_atime_nsec: ns,
            st_mtime: s,
            st_mtime_nsec: ns,
            st_ctime: s,
            st_ctime_nsec: ns,
            ..Default::default()
        })
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn ioctl(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        super::ifreq::ioctl(mm, cmd, arg)
    }

    fn readiness(&self) -> u32 {
        let st = self.lock();
        let mut ev = POLLOUT | POLLWRNORM;
        if !st.rx.is_empty() {
            ev |= POLLIN | POLLRDNORM;
        }
        if st.error.is_some() {
            ev |= POLLERR;
        }
        ev
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn as_net_socket(&self) -> Option<&dyn NetSocket> {
        Some(self)
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
