//! TCP sockets (SOCK_STREAM) of the sandbox stack.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use rvisor_syscalls::flags::ioctl::FIONREAD;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::*;
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration as SDuration;
use smoltcp::wire::IpListenEndpoint;

use super::common::{sock_stat, tcp_state_num, wait, Core, Shared, State};
use super::iface::{to_std, unmap, Kind};
use super::listen::{Listener, TcpParams, SOMAXCONN};
use super::opts::{deadline, get_int, int, SockOpts};
use super::ports::{PortProto, Use};
use crate::kernel::wait::WaitQueue;
use crate::mm::MemoryManager;
use crate::net::addr;
use crate::net::{Cmsg, NetSocket, Received};
use crate::vfs::file::FileImpl;

const SIOCOUTQ: u32 = 0x5411;
const SIOCOUTQNSD: u32 = 0x894b;
/// `struct tcp_info` as Linux 6.x copies it.
const TCP_INFO_LEN: usize = 232;

enum Phase {
    Idle,
    Conn { link: usize, h: SocketHandle },
    Listen { id: u64 },
}

struct Tcp {
    phase: Phase,
    binding: Option<u64>,
    /// The bound address (bind(2), or chosen at connect/listen).
    bound: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    opts: SockOpts,
    nodelay: bool,
    cork: bool,
    maxseg: i32,
    keepidle: i32,
    keepintvl: i32,
    keepcnt: i32,
    defer_accept: i32,
    quickack: bool,
    user_timeout: i32,
    so_error: i32,
    connecting: bool,
    /// connect(2) returned before the handshake ended (EINPROGRESS, a signal): the next
    /// connect(2) after it ends reports the result once (Linux's SS_CONNECTING).
    connect_pending: bool,
    /// The smoltcp state at the last sync (a reset in CLOSE_WAIT is EPIPE, as Linux).
    last_state: tcp::State,
    shut_rd: bool,
    shut_wr: bool,
    /// Reset, refused or timed out: nothing more will come.
    dead: bool,
}

pub(crate) struct TcpSocket {
    sh: Arc<Shared>,
    core: Arc<Core>,
    domain: i32,
    ino: u64,
    st: Mutex<Tcp>,
}

fn errno_val(e: Errno) -> i32 {
    e.0
}

impl Tcp {
    fn new() -> Tcp {
        Tcp {
            phase: Phase::Idle,
            binding: None,
            bound: None,
            peer: None,
            local: None,
            opts: SockOpts::default(),
            nodelay: false,
            cork: false,
            maxseg: 536,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            defer_accept: 0,
            quickack: true,
            user_timeout: 0,
            so_error: 0,
            connecting: false,
            connect_pending: false,
            last_state: tcp::State::Closed,
            shut_rd: false,
            shut_wr: false,
            dead: false,
        }
    }

    fn params(&self) -> TcpParams {
        let (rx, tx) = self.opts.tcp_buffers();
        TcpParams {
            rx,
            tx,
            nodelay: self.nodelay,
            keepalive: self
                .opts
                .keepalive
                .then(|| SDuration::from_secs(self.keepidle.max(1) as u64)),
            hop_limit: self.opts.ttl,
        }
    }

    /// Folds the smoltcp socket's state into ours (connection results, resets).
    fn sync(&mut self, g: &mut State) {
        let Phase::Conn { link, h } = self.phase else {
            return;
        };
        let s = g.tcp(link, h);
        let state = s.state();
        if self.connecting {
            match state {
                tcp::State::SynSent | tcp::State::SynReceived => {}
                tcp::State::Closed => {
                    self.connecting = false;
                    self.dead = true;
                    self.so_error = errno_val(Errno::ECONNREFUSED);
                }
                _ => {
                    self.connecting = false;
                    s.set_timeout(if self.user_timeout > 0 {
                        Some(SDuration::from_millis(self.user_timeout as u64))
                    } else {
                        None
                    });
                    if let Some(e) = s.local_endpoint() {
                        self.local = Some(SocketAddr::new(to_std(e.addr), e.port));
                    }
                }
            }
        } else if state == tcp::State::Closed && !self.dead && !self.shut_wr {
            self.dead = true;
            self.so_error = errno_val(if self.last_state == tcp::State::CloseWait {
                Errno::EPIPE
            } else {
                Errno::ECONNRESET
            });
        }
        self.last_state = state;
    }

    fn take_error(&mut self) -> Option<Errno> {
        if self.so_error == 0 {
            return None;
        }
        let e = Errno(std::mem::take(&mut self.so_error));
        Some(e)
    }

    fn apply_opts(&self, s: &mut tcp::Socket<'static>) {
        let p = self.params();
        s.set_nagle_enabled(!p.nodelay || self.cork);
        s.set_keep_alive(p.keepalive);
        s.set_hop_limit(p.hop_limit);
    }
}

impl TcpSocket {
    pub fn new(sh: &Arc<Shared>, domain: i32) -> Arc<TcpSocket> {
        Arc::new(TcpSocket {
            sh: sh.clone(),
            core: Arc::new(Core::default()),
            domain,
            ino: super::next_ino(),
            st: Mutex::new(Tcp::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Tcp> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn any_addr(&self) -> IpAddr {
        if self.domain == AF_INET {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }
    }

    /// Parses a peer or local address; v4-mapped becomes IPv4 (EAFNOSUPPORT/EINVAL).
    fn parse(&self, raw: &[u8]) -> Result<SocketAddr, Errno> {
        let a = addr::parse(self.domain, raw)?;
        Ok(SocketAddr::new(unmap(a.ip()), a.port()))
    }

    fn try_send(&self, data: &[u8]) -> Result<usize, Errno> {
        let mut t = self.lock();
        let mut g = self.sh.lock();
        t.sync(&mut g);
        if let Some(e) = t.take_error() {
            return Err(e);
        }
        if t.shut_wr {
            return Err(Errno::EPIPE);
        }
        // Linux: a socket that is neither connected nor connecting answers EPIPE.
        let Phase::Conn { link, h } = t.phase else {
            return Err(Errno::EPIPE);
        };
        if t.dead {
            return Err(Errno::EPIPE);
        }
        let s = g.tcp(link, h);
        if matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived) {
            return Err(Errno::EAGAIN);
        }
        if !s.may_send() {
            return Err(Errno::EPIPE);
        }
        let n = s.send_slice(data).map_err(|_| Errno::EPIPE)?;
        if n == 0 && !data.is_empty() {
            return Err(Errno::EAGAIN);
        }
        g.poll(link);
        Ok(n)
    }

    fn try_recv(&self, buf: &mut [u8], peek: bool) -> Result<usize, Errno> {
        let mut t = self.lock();
        let mut g = self.sh.lock();
        t.sync(&mut g);
        let Phase::Conn { link, h } = t.phase else {
            return Err(Errno::ENOTCONN);
        };
        if t.shut_rd {
            return Ok(0);
        }
        let s = g.tcp(link, h);
        if s.recv_queue() > 0 && !buf.is_empty() {
            let n = if peek {
                s.peek_slice(buf).unwrap_or(0)
            } else {
                s.recv_slice(buf).unwrap_or(0)
            };
            if !peek {
                g.poll(link);
            }
            return Ok(n);
        }
        if let Some(e) = t.take_error() {
            return Err(e);
        }
        if t.dead {
            return Ok(0);
        }
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Err(Errno::EAGAIN),
            _ if !s.may_recv() => Ok(0),
            _ if buf.is_empty() => Ok(0),
            _ => Err(Errno::EAGAIN),
        }
    }

    fn try_accept(&self) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno> {
        let t = self.lock();
        let Phase::Listen { id } = t.phase else {
            return Err(Errno::EINVAL);
        };
        let mut g = self.sh.lock();
        let Some((link, h)) = g.accept_one(id) else {
            return Err(Errno::EAGAIN);
        };
        let s = g.tcp(link, h);
        let peer = s
            .remote_endpoint()
            .map(|e| SocketAddr::new(to_std(e.addr), e.port));
        let local = s
            .local_endpoint()
            .map(|e| SocketAddr::new(to_std(e.addr), e.port));
        let mut nt = Tcp::new();
        nt.opts = t.opts.clone();
        nt.nodelay = t.nodelay;
        nt.keepidle = t.keepidle;
        nt.keepintvl = t.keepintvl;
        nt.keepcnt = t.keepcnt;
        nt.phase = Phase::Conn { link, h };
        nt.peer = peer;
        nt.local = local;
        nt.bound = local;
        if let Some(l) = local {
            nt.binding = Some(g.ports.add_connected(PortProto::Tcp, l.ip(), l.port()));
        }
        let new = Arc::new(TcpSocket {
            sh: self.sh.clone(),
            core: Arc::new(Core::default()),
            domain: self.domain,
            ino: super::next_ino(),
            st: Mutex::new(nt),
        });
        g.set_owner(link, h, &new.core);
        let any = SocketAddr::new(self.any_addr(), 0);
        let name = addr::encode(self.domain, &peer.unwrap_or(any));
        Ok((new, name))
    }

    fn readiness_locked(&self, t: &mut Tcp, g: &mut State) -> u32 {
        t.sync(g);
        let mut m = 0;
        match t.phase {
            Phase::Idle => m |= POLLOUT | POLLWRNORM | POLLHUP,
            Phase::Listen { id } => {
                if g.queued(id) > 0 {
                    m |= POLLIN | POLLRDNORM;
                }
            }
            Phase::Conn { link, h } => {
                let s = g.tcp(link, h);
                if t.dead {
                    m |= POLLIN | POLLRDNORM | POLLRDHUP | POLLHUP | POLLOUT | POLLWRNORM;
                } else if !matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived) {
                    if s.recv_queue() > 0 {
                        m |= POLLIN | POLLRDNORM;
                    }
                    let peer_fin = !s.may_recv() && s.recv_queue() == 0;
                    if peer_fin || t.shut_rd {
                        m |= POLLIN | POLLRDNORM | POLLRDHUP;
                    }
                    if t.shut_wr || s.send_capacity() > s.send_queue() {
                        m |= POLLOUT | POLLWRNORM;
                    }
                    if (t.shut_wr && peer_fin) || (t.shut_rd && t.shut_wr) {
                        m |= POLLHUP;
                    }
                }
            }
        }
        if t.so_error != 0 {
            m |= POLLERR;
        }
        m
    }

    fn tcp_getopt(&self, t: &mut Tcp, g: &mut State, name: i32) -> Result<Vec<u8>, Errno> {
        Ok(match name {
            TCP_NODELAY => int(t.nodelay as i32),
            TCP_CORK => int(t.cork as i32),
            TCP_MAXSEG => {
                let mss = match t.phase {
                    Phase::Conn { link, .. } => {
                        let mtu = g.links.links[link].ip_mtu() as i32;
                        let hdr = if t.peer.is_some_and(|p| p.is_ipv6()) {
                            60
                        } else {
                            40
                        };
                        mtu - hdr
                    }
                    _ => t.maxseg,
                };
                int(mss)
            }
            TCP_KEEPIDLE => int(t.keepidle),
            TCP_KEEPINTVL => int(t.keepintvl),
            TCP_KEEPCNT => int(t.keepcnt),
            TCP_DEFER_ACCEPT => int(t.defer_accept),
            TCP_QUICKACK => int(t.quickack as i32),
            TCP_USER_TIMEOUT => int(t.user_timeout),
            TCP_SYNCNT => int(6),
            TCP_LINGER2 => int(60),
            TCP_WINDOW_CLAMP => int(0),
            TCP_NOTSENT_LOWAT => int(0),
            TCP_FASTOPEN => int(0),
            TCP_CONGESTION => {
                let mut v = b"reno".to_vec();
                v.resize(16, 0);
                v
            }
            TCP_INFO => {
                let mut v = vec![0u8; TCP_INFO_LEN];
                v[0] = match t.phase {
                    Phase::Idle => 7,
                    Phase::Listen { .. } => 10,
                    Phase::Conn { link, h } => tcp_state_num(g.tcp(link, h).state()),
                };
                v
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn tcp_setopt(&self, t: &mut Tcp, name: i32, val: &[u8]) -> Result<(), Errno> {
        if name == TCP_CONGESTION {
            return Ok(());
        }
        let v = get_int(val)?;
        match name {
            TCP_NODELAY => t.nodelay = v != 0,
            // While corked, partial segments wait (Nagle on whatever TCP_NODELAY says);
            // uncorking pushes them out at once (see `setsockopt`), as Linux does.
            TCP_CORK => t.cork = v != 0,
            TCP_MAXSEG => {
                if !(0..=65535).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                t.maxseg = if v == 0 { 536 } else { v };
            }
            TCP_KEEPIDLE | TCP_KEEPINTVL => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                if name == TCP_KEEPIDLE {
                    t.keepidle = v;
                } else {
                    t.keepintvl = v;
                }
            }
            TCP_KEEPCNT => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                t.keepcnt = v;
            }
            TCP_DEFER_ACCEPT => t.defer_accept = v.max(0),
            TCP_QUICKACK => t.quickack = v != 0,
            TCP_USER_TIMEOUT => {
                if v < 0 {
                    return Err(Errno::EINVAL);
                }
                t.user_timeout = v;
            }
            TCP_SYNCNT | TCP_LINGER2 | TCP_WINDOW_CLAMP | TCP_NOTSENT_LOWAT | TCP_FASTOPEN => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }
}

impl NetSocket for TcpSocket {
    fn domain(&self) -> i32 {
        self.domain
    }

    fn sock_type(&self) -> i32 {
        SOCK_STREAM
    }

    fn protocol(&self) -> i32 {
        IPPROTO_TCP
    }

    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        // Linux takes AF_UNSPEC with INADDR_ANY on an AF_INET socket.
        let a = if self.domain == AF_INET
            && addr::is_unspec(raw)
            && raw.len() >= 8
            && raw[4..8] == [0; 4]
        {
            SocketAddr::new(self.any_addr(), u16::from_be_bytes([raw[2], raw[3]]))
        } else {
            self.parse(raw)?
        };
        let mut t = self.lock();
        if t.binding.is_some() || !matches!(t.phase, Phase::Idle) {
            return Err(Errno::EINVAL);
        }
        let mut g = self.sh.lock();
        if !g.links.may_bind(a.ip()) || a.ip().is_multicast() {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let (b, port) = g.ports.bind(
            PortProto::Tcp,
            a.ip(),
            a.port(),
            t.opts.reuse_addr,
            t.opts.reuse_port,
            t.opts.v6only,
        )?;
        t.binding = Some(b);
        t.bound = Some(SocketAddr::new(a.ip(), port));
        Ok(())
    }

    fn connect(&self, raw: &[u8], nonblock: bool) -> Result<(), Errno> {
        if addr::is_unspec(raw) {
            // Linux disconnects; an unconnected socket just stays so.
            return match self.lock().phase {
                Phase::Idle => Ok(()),
                _ => Err(Errno::EINVAL),
            };
        }
        let dst = self.parse(raw)?;
        let dst = if dst.ip().is_unspecified() {
            SocketAddr::new(
                if dst.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                },
                dst.port(),
            )
        } else {
            dst
        };
        {
            let mut t = self.lock();
            if matches!(t.phase, Phase::Conn { .. }) && t.connect_pending {
                let mut g = self.sh.lock();
                t.sync(&mut g);
            }
            if matches!(t.phase, Phase::Conn { .. }) && !t.connecting && t.connect_pending {
                // The first connect(2) after a non-blocking one completed: its result.
                t.connect_pending = false;
                if !t.dead {
                    return Ok(());
                }
                return Err(t.take_error().unwrap_or(Errno::ECONNABORTED));
            }
            match t.phase {
                Phase::Conn { .. } if t.connecting => return Err(Errno::EALREADY),
                Phase::Conn { .. } => {
                    return Err(if t.dead {
                        Errno::ECONNABORTED
                    } else {
                        Errno::EISCONN
                    })
                }
                Phase::Listen { .. } => return Err(Errno::EISCONN),
                Phase::Idle => {}
            }
            if self.domain == AF_INET6 && t.opts.v6only && dst.is_ipv4() {
                return Err(Errno::ENETUNREACH);
            }
            if dst.port() == 0 {
                return Err(Errno::ECONNREFUSED);
            }
            let mut g = self.sh.lock();
            let link = g.links.route(dst.ip())?;
            let local_ip = t.bound.map(|b| unmap(b.ip()));
            if local_ip.is_some_and(|l| !l.is_unspecified() && l.is_ipv4() != dst.is_ipv4()) {
                return Err(Errno::EAFNOSUPPORT);
            }
            let (binding, port) = match (t.binding, t.bound) {
                (Some(b), Some(a)) => (b, a.port()),
                _ => {
                    let any = if dst.is_ipv4() {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    };
                    let (b, p) = g.ports.bind(
                        PortProto::Tcp,
                        any,
                        0,
                        t.opts.reuse_addr,
                        false,
                        t.opts.v6only,
                    )?;
                    t.bound = Some(SocketAddr::new(any, p));
                    (b, p)
                }
            };
            t.binding = Some(binding);
            let local = IpListenEndpoint {
                addr: local_ip.filter(|a| !a.is_unspecified()).map(Into::into),
                port,
            };
            let (mut s, charge) = g.new_tcp(&t.params(), link)?;
            s.set_timeout(Some(SDuration::from_secs(75)));
            let cx = g.links.links[link].iface.context();
            s.connect(cx, (dst.ip(), dst.port()), local)
                .map_err(|_| Errno::EADDRNOTAVAIL)?;
            let h = g.add_charged(link, s, Kind::Tcp, &self.core, charge)?;
            g.ports.set_use(binding, Use::Connected);
            t.phase = Phase::Conn { link, h };
            t.connecting = true;
            t.peer = Some(dst);
            g.poll(link);
            t.sync(&mut g);
        }
        if nonblock {
            self.lock().connect_pending = true;
            return Err(Errno::EINPROGRESS);
        }
        let dl = deadline(self.lock().opts.sndtimeo);
        let r = wait(&self.core, false, dl, || {
            let mut t = self.lock();
            let mut g = self.sh.lock();
            t.sync(&mut g);
            if t.connecting {
                return Err(Errno::EAGAIN);
            }
            match t.take_error() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        if matches!(r, Err(Errno::EAGAIN | Errno::ERESTARTSYS | Errno::EINTR)) {
            // Interrupted or timed out: still connecting, as Linux's SS_CONNECTING.
            self.lock().connect_pending = true;
        }
        match r {
            Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
            r => r,
        }
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        let backlog = if backlog < 0 {
            SOMAXCONN
        } else {
            (backlog as usize).clamp(1, SOMAXCONN)
        };
        let mut t = self.lock();
        let mut g = self.sh.lock();
        match t.phase {
            Phase::Listen { id } => {
                g.set_backlog(id, backlog);
                return Ok(());
            }
            Phase::Conn { .. } => return Err(Errno::EINVAL),
            Phase::Idle => {}
        }
        let (binding, bound) = match (t.binding, t.bound) {
            (Some(b), Some(a)) => (b, a),
            _ => {
                let any = self.any_addr();
                let (b, p) = g.ports.bind(
                    PortProto::Tcp,
                    any,
                    0,
                    t.opts.reuse_addr,
                    t.opts.reuse_port,
                    t.opts.v6only,
                )?;
                (b, SocketAddr::new(any, p))
            }
        };
        t.binding = Some(binding);
        t.bound = Some(bound);
        if g.ports.listen_conflict(binding) {
            return Err(Errno::EADDRINUSE);
        }
        let ip = unmap(bound.ip());
        let links = g.links.links_for_bind(ip);
        let endpoint = IpListenEndpoint {
            addr: (!ip.is_unspecified()).then(|| ip.into()),
            port: bound.port(),
        };
        let id = g.add_listener(Listener {
            core: Arc::downgrade(&self.core),
            domain: self.domain,
            v6only: self.domain == AF_INET6 && t.opts.v6only,
            backlog,
            links,
            endpoint,
            params: t.params(),
            pool: Vec::new(),
            queue: Default::default(),
        })?;
        g.ports.set_use(binding, Use::Listening);
        t.phase = Phase::Listen { id };
        Ok(())
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno> {
        let dl = deadline(self.lock().opts.rcvtimeo);
        wait(&self.core, nonblock, dl, || self.try_accept())
    }

    fn local_name(&self) -> Result<Vec<u8>, Errno> {
        let t = self.lock();
        let a = t
            .local
            .or(t.bound)
            .unwrap_or(SocketAddr::new(self.any_addr(), 0));
        Ok(addr::encode(self.domain, &a))
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let mut t = self.lock();
        let mut g = self.sh.lock();
        t.sync(&mut g);
        match (&t.phase, t.peer) {
            (Phase::Conn { .. }, Some(p)) if !t.connecting && !t.dead => {
                Ok(addr::encode(self.domain, &p))
            }
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn send(
        &self,
        data: &[u8],
        _to: Option<&[u8]>,
        _control: &[Cmsg],
        flags: u32,
        nonblock: bool,
    ) -> Result<usize, Errno> {
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let dl = deadline(self.lock().opts.sndtimeo);
        let mut sent = 0;
        loop {
            let r = wait(&self.core, nonblock, dl, || self.try_send(&data[sent..]));
            match r {
                Ok(n) => {
                    sent += n;
                    if sent >= data.len() {
                        return Ok(sent);
                    }
                }
                Err(e)
                    if sent > 0
                        && matches!(e, Errno::EAGAIN | Errno::ERESTARTSYS | Errno::EINTR) =>
                {
                    return Ok(sent)
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&self, buf: &mut [u8], flags: u32, nonblock: bool) -> Result<Received, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EINVAL);
        }
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let peek = flags & MSG_PEEK != 0;
        let dl = deadline(self.lock().opts.rcvtimeo);
        let mut got = 0;
        loop {
            let r = wait(&self.core, nonblock, dl, || {
                self.try_recv(&mut buf[got..], peek)
            });
            match r {
                Ok(n) => {
                    got += n;
                    if n == 0 || got >= buf.len() || flags & MSG_WAITALL == 0 || peek {
                        break;
                    }
                }
                Err(e)
                    if got > 0
                        && matches!(e, Errno::EAGAIN | Errno::ERESTARTSYS | Errno::EINTR) =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Received {
            len: got,
            full: got,
            from: None,
            control: Vec::new(),
        })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mut t = self.lock();
        let mut g = self.sh.lock();
        t.sync(&mut g);
        match t.phase {
            Phase::Idle => Err(Errno::ENOTCONN),
            Phase::Listen { id } => {
                g.close_listener(id);
                if let Some(b) = t.binding {
                    g.ports.set_use(b, Use::Bound);
                }
                t.phase = Phase::Idle;
                Ok(())
            }
            Phase::Conn { link, h } => {
                if t.connecting && how != 0 {
                    return Err(Errno::ENOTCONN);
                }
                if how == 0 || how == 2 {
                    t.shut_rd = true;
                }
                if (how == 1 || how == 2) && !t.shut_wr {
                    t.shut_wr = true;
                    g.tcp(link, h).close();
                    g.poll(link);
                }
                self.core.wq.notify_all();
                Ok(())
            }
        }
    }

    fn getsockopt(&self, level: i32, name: i32, _len: usize) -> Result<Vec<u8>, Errno> {
        let mut t = self.lock();
        let mut g = self.sh.lock();
        t.sync(&mut g);
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => Ok(int(SOCK_STREAM)),
            (SOL_SOCKET, SO_DOMAIN) => Ok(int(self.domain)),
            (SOL_SOCKET, SO_PROTOCOL) => Ok(int(IPPROTO_TCP)),
            (SOL_SOCKET, SO_ACCEPTCONN) => Ok(int(matches!(t.phase, Phase::Listen { .. }) as i32)),
            (SOL_SOCKET, SO_ERROR) => Ok(int(std::mem::take(&mut t.so_error))),
            (SOL_TCP, _) => self.tcp_getopt(&mut t, &mut g, name),
            (SOL_IPV6, _) if self.domain != AF_INET6 => Err(Errno::EOPNOTSUPP),
            _ => t
                .opts
                .get(level, name)
                .ok_or_else(|| super::unknown_get_errno(self.domain, SOL_TCP, level)),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut t = self.lock();
        if level == SOL_TCP {
            self.tcp_setopt(&mut t, name, val)?;
        } else {
            if level == SOL_IPV6 && self.domain != AF_INET6 {
                return Err(Errno::ENOPROTOOPT);
            }
            if level == SOL_IPV6 && name == IPV6_V6ONLY && t.binding.is_some() {
                return Err(Errno::EINVAL);
            }
            if !t.opts.set(level, name, val)? {
                return Err(Errno::ENOPROTOOPT);
            }
        }
        if let Phase::Conn { link, h } = t.phase {
            let mut g = self.sh.lock();
            // Clearing TCP_CORK or setting TCP_NODELAY pushes what waits (Linux's
            // tcp_push_pending_frames): one egress pass with Nagle off, so a response's
            // last partial segment never waits for the peer's (delayed) ACK.
            let push = level == SOL_TCP && (name == TCP_CORK || name == TCP_NODELAY) && !t.cork;
            if push && g.tcp(link, h).send_queue() > 0 {
                g.tcp(link, h).set_nagle_enabled(false);
                g.poll(link);
            }
            t.apply_opts(g.tcp(link, h));
        }
        Ok(())
    }
}

impl FileImpl for TcpSocket {
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
        let n = {
            let mut t = self.lock();
            let mut g = self.sh.lock();
            t.sync(&mut g);
            match (cmd, &t.phase) {
                (FIONREAD, Phase::Listen { .. })
                | (SIOCOUTQ | SIOCOUTQNSD, Phase::Listen { .. }) => return Err(Errno::EINVAL),
                (FIONREAD, Phase::Conn { link, h }) => g.tcp(*link, *h).recv_queue(),
                (SIOCOUTQ | SIOCOUTQNSD, Phase::Conn { link, h }) => g.tcp(*link, *h).send_queue(),
                (FIONREAD | SIOCOUTQ | SIOCOUTQNSD, Phase::Idle) => 0,
                _ => {
                    drop(g);
                    drop(t);
                    return crate::net::ifreq::ioctl(mm, cmd, arg);
                }
            }
        };
        mm.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        let mut t = self.lock();
        let mut g = self.sh.lock();
        self.readiness_locked(&mut t, &mut g)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.core.wq)
    }

    fn as_net_socket(&self) -> Option<&dyn NetSocket> {
        Some(self)
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        let t = self.st.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut g = self.sh.lock();
        match t.phase {
            Phase::Idle => {
                if let Some(b) = t.binding {
                    g.ports.release(b);
                }
            }
            Phase::Listen { id } => {
                g.close_listener(id);
                if let Some(b) = t.binding {
                    g.ports.release(b);
                }
            }
            Phase::Conn { link, h } => {
                let s = g.tcp(link, h);
                // Unread data or SO_LINGER 0 resets the connection, as Linux does.
                if s.recv_queue() > 0 || (t.opts.linger.0 && t.opts.linger.1 == 0) {
                    s.abort();
                } else {
                    s.close();
                }
                g.orphan(link, h, t.binding);
            }
        }
    }
}
