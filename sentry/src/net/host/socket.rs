//! A guest socket backed by a host socket: the file the guest holds, and its socket
//! operations. The host fd is non-blocking; a blocking guest call tries the host call and
//! on EAGAIN waits on the socket's wait queue (woken by the poller) until the call
//! succeeds, a signal arrives (ERESTARTSYS) or SO_RCVTIMEO/SO_SNDTIMEO expires (EAGAIN).

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::capability::CAP_NET_BIND_SERVICE;
use rvisor_syscalls::flags::ioctl::{FIONREAD, TIOCOUTQ};
use rvisor_syscalls::flags::mode::S_IFSOCK;
use rvisor_syscalls::flags::net_if::{SIOCGSTAMP, SIOCOUTQNSD};
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::types::{Stat, Timeval};
use rvisor_syscalls::Errno;

use super::opts::{self, Opt};
use super::poller::{Poller, Registration};
use super::sys::{self, HostAddr};
use crate::kernel::wait::{block_on, WaitQueue};
use crate::mm::MemoryManager;
use crate::net::{addr, Cmsg, NetSocket, Received};
use crate::vfs::file::FileImpl;

/// The device number sockfs reports (as for AF_UNIX sockets).
const SOCKFS_DEV: u64 = 0x08;
/// Inode numbers of host-backed sockets (a range of their own, apart from AF_UNIX's).

/// MSG_* flags a send passes to the host (blocking and signals are the sentry's).
const SEND_FLAGS: u32 = MSG_OOB | MSG_DONTROUTE | MSG_EOR | MSG_MORE | MSG_CONFIRM | MSG_FASTOPEN;
/// MSG_* flags a receive passes to the host.
const RECV_FLAGS: u32 = MSG_OOB | MSG_PEEK | MSG_TRUNC | MSG_ERRQUEUE;

#[derive(Clone, Copy, Default)]
struct Timeouts {
    recv: Option<Duration>,
    send: Option<Duration>,
}

/// One guest socket of the IP families backed by a host socket.
pub struct HostSocket {
    fd: OwnedFd,
    _reg: Registration,
    queue: Arc<WaitQueue>,
    poller: Arc<Poller>,
    domain: i32,
    ty: i32,
    protocol: i32,
    ino: u64,
    uid: u32,
    gid: u32,
    ctime: (i64, i64),
    timeouts: Mutex<Timeouts>,
}

impl HostSocket {
    /// Wraps a new host socket and registers it with the poller.
    pub fn new(
        fd: OwnedFd,
        poller: Arc<Poller>,
        domain: i32,
        ty: i32,
        protocol: i32,
    ) -> Result<Arc<HostSocket>, Errno> {
        let queue = Arc::new(WaitQueue::new());
        let reg = poller.register(&fd, &queue)?;
        let (uid, gid) = match crate::kernel::task::current_task() {
            Some(h) => {
                let c = h.proc_info().creds;
                (c.fsuid, c.fsgid)
            }
            None => (0, 0),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Arc::new(HostSocket {
            fd,
            _reg: reg,
            queue,
            poller,
            domain,
            ty,
            protocol,
            ino: crate::vfs::unix::next_socket_ino(),
            uid,
            gid,
            ctime: (now.as_secs() as i64, now.subsec_nanos() as i64),
            timeouts: Mutex::new(Timeouts::default()),
        }))
    }

    fn timeouts(&self) -> Timeouts {
        *self.timeouts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_stream(&self) -> bool {
        self.ty == SOCK_STREAM
    }

    /// Runs `op` until it does not answer EAGAIN: at once if `nonblock`, else waiting on
    /// the queue until `timeout` (EAGAIN on expiry; a signal gives ERESTARTSYS, or EINTR
    /// when a timeout is set, as Linux).
    fn io<T>(
        &self,
        nonblock: bool,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match op() {
            Err(Errno::EAGAIN) if !nonblock => {}
            r => return r,
        }
        let deadline = timeout.map(|d| Instant::now() + d);
        let r = block_on(&[&self.queue], deadline, || match op() {
            Err(Errno::EAGAIN) => None,
            r => Some(Ok(r)),
        });
        match r {
            Ok(inner) => inner,
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            Err(Errno::ERESTARTSYS) if timeout.is_some() => Err(Errno::EINTR),
            Err(e) => Err(e),
        }
    }

    /// The host form of a guest address for this socket.
    fn host_addr(&self, raw: &[u8]) -> Result<HostAddr, Errno> {
        Ok(HostAddr::new(&addr::parse(self.domain, raw)?))
    }

    /// The poll(2) bits that hold on the host socket now.
    fn poll_bits(&self) -> u32 {
        let want = libc::POLLIN
            | libc::POLLOUT
            | libc::POLLPRI
            | libc::POLLRDHUP
            | libc::POLLRDNORM
            | libc::POLLWRNORM;
        sys::poll_now(&self.fd, want) as u16 as u32
    }

    /// Waits for a connection in progress to finish; its outcome (SO_ERROR).
    fn finish_connect(&self) -> Result<(), Errno> {
        let timeout = self.timeouts().send;
        let done = self.io(false, timeout, || {
            let ready = self.poll_bits() & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) as u32;
            if ready == 0 {
                return Err(Errno::EAGAIN);
            }
            Ok(())
        });
        match done {
            Ok(()) => {}
            // Linux: a connect whose wait times out still answers EINPROGRESS.
            Err(Errno::EAGAIN) => return Err(Errno::EINPROGRESS),
            Err(e) => return Err(e),
        }
        match sys::getsockopt_int(&self.fd, SOL_SOCKET, SO_ERROR)? {
            0 => Ok(()),
            e => Err(Errno(e)),
        }
    }

    fn recv_once(&self, buf: &mut [u8], hflags: i32) -> Result<Received, Errno> {
        let r = sys::recvmsg(&self.fd, buf, hflags)?;
        let control = sys::parse_control(&r.control)
            .into_iter()
            .filter(|(l, t, _)| opts::control_in(*l, *t))
            .map(|(level, ty, data)| Cmsg { level, ty, data })
            .collect();
        let stream = self.is_stream();
        Ok(Received {
            len: r.ret.min(buf.len()),
            full: if stream { r.ret.min(buf.len()) } else { r.ret },
            from: if stream || r.name.is_empty() {
                None
            } else {
                Some(r.name)
            },
            control,
        })
    }
}

impl NetSocket for HostSocket {
    fn domain(&self) -> i32 {
        self.domain
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        // Linux takes AF_UNSPEC with INADDR_ANY on an AF_INET socket, for old programs.
        let a = if self.domain == AF_INET
            && addr::is_unspec(raw)
            && raw.len() >= SOCKADDR_IN as usize
            && raw[4..8] == [0; 4]
        {
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            std::net::SocketAddr::from(([0, 0, 0, 0], port))
        } else {
            addr::parse(self.domain, raw)?
        };
        // The sentry may bind any port; the guest needs CAP_NET_BIND_SERVICE below 1024
        // (Linux's default net.ipv4.ip_unprivileged_port_start).
        if (1..UNPRIVILEGED_PORT_START).contains(&a.port()) && !guest_capable(CAP_NET_BIND_SERVICE)
        {
            return Err(Errno::EACCES);
        }
        sys::bind(&self.fd, &HostAddr::new(&a))
    }

    fn connect(&self, raw: &[u8], nonblock: bool) -> Result<(), Errno> {
        let a = if addr::is_unspec(raw) {
            HostAddr::unspec()
        } else {
            self.host_addr(raw)?
        };
        let r = sys::connect(&self.fd, &a);
        // Readiness changed for poll/epoll waiters (e.g. a datagram association).
        self.queue.notify_all();
        match r {
            Err(e @ (Errno::EINPROGRESS | Errno::EALREADY)) if self.is_stream() => {
                if nonblock {
                    Err(e)
                } else {
                    self.finish_connect()
                }
            }
            // A connect that EINTR cut short goes on in the background.
            Err(Errno::EINTR) if self.is_stream() && !nonblock => self.finish_connect(),
            r => r,
        }
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        sys::listen(&self.fd, backlog)
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno> {
        let timeout = self.timeouts().recv;
        let (fd, peer) = self.io(nonblock, timeout, || sys::accept(&self.fd))?;
        let s = HostSocket::new(fd, self.poller.clone(), self.domain, self.ty, self.protocol)?;
        // The new socket starts with the listener's options, timeouts included (Linux
        // clones the listening socket).
        *s.timeouts.lock().unwrap_or_else(|p| p.into_inner()) = self.timeouts();
        Ok((s, peer))
    }

    fn local_name(&self) -> Result<Vec<u8>, Errno> {
        sys::name(&self.fd, false)
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        sys::name(&self.fd, true)
    }

    fn send(
        &self,
        data: &[u8],
        to: Option<&[u8]>,
        control: &[Cmsg],
        flags: u32,
        nonblock: bool,
    ) -> Result<usize, Errno> {
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let to = match to {
            // A stream ignores the address except for a TCP Fast Open connect.
            Some(_) if self.is_stream() && flags & MSG_FASTOPEN == 0 => None,
            Some(raw) => Some(self.host_addr(raw)?),
            None => None,
        };
        let mut pass = Vec::new();
        for m in control {
            if opts::control_out(m.level, m.ty, m.data.len())? {
                pass.push((m.level, m.ty, m.data.as_slice()));
            }
        }
        let (ctl, ctl_len) = sys::encode_control(&pass);
        let hflags = ((flags & SEND_FLAGS) | MSG_NOSIGNAL | MSG_DONTWAIT) as i32;
        let timeout = self.timeouts().send;
        if !self.is_stream() {
            return self.io(nonblock, timeout, || {
                sys::sendmsg(&self.fd, data, to.as_ref(), &ctl, ctl_len, hflags)
            });
        }
        // A stream: everything, unless non-blocking, or an error or signal after progress.
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut done = 0usize;
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let (c, cl) = if done == 0 {
                (&ctl[..], ctl_len)
            } else {
                (&[][..], 0)
            };
            match self.io(nonblock, left, || {
                sys::sendmsg(&self.fd, &data[done..], to.as_ref(), c, cl, hflags)
            }) {
                Ok(n) => {
                    done += n;
                    if done >= data.len() || nonblock {
                        return Ok(done);
                    }
                }
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&self, buf: &mut [u8], flags: u32, nonblock: bool) -> Result<Received, Errno> {
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let stream = self.is_stream();
        let mut hflags = (flags & RECV_FLAGS) | MSG_DONTWAIT;
        if !stream {
            // Always learn the datagram's full length (the caller reports it for MSG_TRUNC).
            hflags |= MSG_TRUNC;
        }
        let hflags = hflags as i32;
        let timeout = self.timeouts().recv;
        // An error queue read never blocks.
        let nonblock = nonblock || flags & MSG_ERRQUEUE != 0;
        let waitall = stream && flags & MSG_WAITALL != 0 && flags & (MSG_PEEK | MSG_TRUNC) == 0;
        if !waitall || buf.is_empty() {
            return self.io(nonblock, timeout, || self.recv_once(buf, hflags));
        }
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut out = Received::default();
        while out.len < buf.len() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let r = match self.io(nonblock, left, || {
                self.recv_once(&mut buf[out.len..], hflags)
            }) {
                Ok(r) => r,
                Err(_) if out.len > 0 => break,
                Err(e) => return Err(e),
            };
            if out.control.is_empty() {
                out.control = r.control;
            }
            out.len += r.len;
            if r.len == 0 || nonblock {
                break;
            }
        }
        out.full = out.len;
        Ok(out)
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let r = sys::shutdown(&self.fd, how);
        self.queue.notify_all();
        r
    }

    fn getsockopt(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let int = |v: i32| Ok(v.to_ne_bytes().to_vec());
        let class = opts::classify(level, name).map_err(|e| match e {
            Errno::ENOPROTOOPT => {
                // The protocol's own level: SOL_TCP/SOL_UDP are the protocol numbers.
                let proto_level = if self.ty == SOCK_RAW {
                    SOL_RAW
                } else {
                    self.protocol
                };
                crate::net::stack::unknown_get_errno(self.domain, proto_level, level)
            }
            e => e,
        })?;
        match class {
            Opt::Host { max, .. } => sys::getsockopt(&self.fd, level, name, len.min(max)),
            Opt::RecvTimeout => Ok(timeval_bytes(self.timeouts().recv)),
            Opt::SendTimeout => Ok(timeval_bytes(self.timeouts().send)),
            Opt::Type => int(self.ty),
            Opt::Domain => int(self.domain),
            Opt::Protocol => int(self.protocol),
            Opt::BindToDevice => Ok(Vec::new()),
            Opt::Priority => sys::getsockopt(&self.fd, level, name, len.min(4)),
            Opt::Congestion => sys::getsockopt(&self.fd, level, name, len.min(TCP_CA_NAME_MAX)),
            Opt::Denied => sys::getsockopt(&self.fd, level, name, len.min(4)),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        match opts::classify(level, name)? {
            Opt::Host { max, set: true } => {
                sys::setsockopt(&self.fd, level, name, &val[..val.len().min(max)])
            }
            Opt::Host { set: false, .. } | Opt::Type | Opt::Domain | Opt::Protocol => {
                Err(Errno::ENOPROTOOPT)
            }
            Opt::RecvTimeout => {
                let d = parse_timeval(val)?;
                self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).recv = d;
                Ok(())
            }
            Opt::SendTimeout => {
                let d = parse_timeval(val)?;
                self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).send = d;
                Ok(())
            }
            Opt::BindToDevice | Opt::Denied => Err(Errno::EPERM),
            Opt::Priority => {
                let v = int_value(val)?;
                if !(0..=6).contains(&v) {
                    return Err(Errno::EPERM);
                }
                sys::setsockopt(&self.fd, level, name, &v.to_ne_bytes())
            }
            Opt::Congestion => {
                let alg = opts::congestion_name(val)?;
                sys::setsockopt(&self.fd, level, name, alg.as_bytes())
            }
        }
    }
}

/// The first port an unprivileged guest may bind.
const UNPRIVILEGED_PORT_START: u16 = 1024;

/// Whether the calling task holds `cap` (true on threads without a task: sentry-internal
/// callers and unit tests).
fn guest_capable(cap: u32) -> bool {
    crate::kernel::task::current_task().is_none_or(|h| h.proc_info().creds.capable(cap))
}

/// The int at the start of an option value (EINVAL if shorter).
fn int_value(val: &[u8]) -> Result<i32, Errno> {
    match val {
        [a, b, c, d, ..] => Ok(i32::from_ne_bytes([*a, *b, *c, *d])),
        _ => Err(Errno::EINVAL),
    }
}

/// A SO_RCVTIMEO/SO_SNDTIMEO value as Linux reads it: zero is "never", a negative time
/// "at once", tv_usec out of range EDOM.
fn parse_timeval(val: &[u8]) -> Result<Option<Duration>, Errno> {
    if val.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let mut s = [0u8; 8];
    let mut u = [0u8; 8];
    s.copy_from_slice(&val[..8]);
    u.copy_from_slice(&val[8..16]);
    let (sec, usec) = (i64::from_ne_bytes(s), i64::from_ne_bytes(u));
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if sec == 0 && usec == 0 {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64),
    ))
}

fn timeval_bytes(d: Option<Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    let mut v = (d.as_secs() as i64).to_ne_bytes().to_vec();
    v.extend_from_slice(&(d.subsec_micros() as i64).to_ne_bytes());
    v
}

impl FileImpl for HostSocket {
    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.recv(buf, 0, flags & O_NONBLOCK != 0).map(|r| r.len)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.send(buf, None, &[], 0, flags & O_NONBLOCK != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            st_dev: SOCKFS_DEV,
            st_ino: self.ino,
            st_nlink: 1,
            st_mode: S_IFSOCK | 0o777,
            st_uid: self.uid,
            st_gid: self.gid,
            st_blksize: 4096,
            st_atime: self.ctime.0,
            st_atime_nsec: self.ctime.1,
            st_mtime: self.ctime.0,
            st_mtime_nsec: self.ctime.1,
            st_ctime: self.ctime.0,
            st_ctime_nsec: self.ctime.1,
            ..Default::default()
        })
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn ioctl(&self, mm: &MemoryManager, cmd: u32, arg: u64) -> Result<u64, Errno> {
        match cmd {
            FIONREAD | TIOCOUTQ | SIOCOUTQNSD | SIOCATMARK => {
                let v = sys::ioctl_int(&self.fd, cmd)?;
                mm.write_obj(arg, &v)?;
                Ok(0)
            }
            SIOCGSTAMP => {
                let (tv_sec, tv_usec) = sys::ioctl_stamp(&self.fd)?;
                mm.write_obj(arg, &Timeval { tv_sec, tv_usec })?;
                Ok(0)
            }
            _ => crate::net::ifreq::ioctl(mm, cmd, arg),
        }
    }

    fn readiness(&self) -> u32 {
        self.poll_bits()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn as_net_socket(&self) -> Option<&dyn NetSocket> {
        Some(self)
    }
}
