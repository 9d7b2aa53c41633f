//! AF_UNIX sockets: connected pairs from socketpair(2), and unconnected sockets from
//! socket(2) (which cannot be bound or connected yet).
//!
//! A [`Connection`] holds both ends' state under one lock and one wait queue: each end has
//! its receive queue (a byte stream for SOCK_STREAM, whole messages for SOCK_DGRAM and
//! SOCK_SEQPACKET), its shutdown bits, a pending error and the bytes it has queued at the
//! peer. As in Linux, what a sender may have in flight is bounded by its own `SO_SNDBUF`
//! (messages also pay a fixed overhead, so empty datagrams cannot queue without bound), a
//! send blocks while that is used up, and `POLLOUT` holds while at most a quarter is used.
//!
//! Closing an end of a stream or seqpacket pair shuts the peer down both ways (it reads end
//! of file after the queued data, and writing fails with EPIPE); if the closed end had
//! unread data the peer also gets ECONNRESET once. A datagram peer sees no end of file:
//! its next send fails with ECONNREFUSED, later ones with ENOTCONN. Raising SIGPIPE is the
//! syscall layer's job (Linux raises it only for SOCK_STREAM).
//!
//! The syscall layer finds the socket behind a file with [`as_unix`], through
//! [`FileImpl::into_any`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::ioctl::{FIONREAD, TIOCOUTQ};
use rvisor_syscalls::flags::mode::S_IFSOCK;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRBAND, POLLWRNORM};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::file::FileImpl;
use crate::kernel::wait::{block_on, WaitQueue};
use crate::mm::MemoryManager;

/// Linux's default `SO_SNDBUF`/`SO_RCVBUF` (`net.core.wmem_default`), also the largest
/// value an unprivileged setsockopt may ask for (`wmem_max`/`rmem_max`) before doubling.
pub const DEFAULT_BUF: usize = 212_992;
/// The smallest SO_SNDBUF (Linux's SOCK_MIN_SNDBUF on x86_64).
const MIN_SNDBUF: usize = 4608;
/// The smallest SO_RCVBUF (SOCK_MIN_RCVBUF).
const MIN_RCVBUF: usize = 2304;
/// What each queued message costs its sender beyond its bytes (Linux charges an skb's
/// truesize; the exact figure differs, the bound matters).
const MSG_OVERHEAD: usize = 512;
/// The device number sockfs reports.
const SOCKFS_DEV: u64 = 0x08;

const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;

static NEXT_SOCK_INO: AtomicU64 = AtomicU64::new(5_000_000);

fn now() -> (i64, i64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

/// The socket behind an open file, if it is an AF_UNIX socket.
pub fn as_unix(imp: &Arc<dyn FileImpl>) -> Option<Arc<UnixSocket>> {
    imp.clone().into_any()?.downcast::<UnixSocket>().ok()
}

/// The socket types AF_UNIX supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    SeqPacket,
}

impl SockType {
    /// The SOCK_* number (SO_TYPE).
    pub fn number(self) -> i32 {
        match self {
            SockType::Stream => 1,
            SockType::Dgram => 2,
            SockType::SeqPacket => 5,
        }
    }

    fn connection_oriented(self) -> bool {
        self != SockType::Dgram
    }
}

/// The creator's credentials, reported by SO_PEERCRED.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// What a receive delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// The whole message's length (datagrams; equals `copied` for streams).
    pub full: usize,
}

impl Received {
    pub fn truncated(&self) -> bool {
        self.full > self.copied
    }
}

/// One end's receive queue.
enum RxQueue {
    Bytes(VecDeque<u8>),
    Msgs(VecDeque<Vec<u8>>),
}

struct End {
    rx: RxQueue,
    /// Charged to this end's SO_SNDBUF: what it has queued at the peer.
    in_flight: usize,
    shutdown: u8,
    err: Option<Errno>,
    open: bool,
    /// Has a peer (a pair, until a datagram send finds the peer gone).
    connected: bool,
    sndbuf: usize,
    rcvbuf: usize,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// Boolean options that are stored but change nothing (SO_PASSCRED, SO_REUSEADDR, ...).
    bool_opts: BTreeMap<i32, bool>,
}

impl End {
    fn new(ty: SockType, open: bool, connected: bool) -> End {
        End {
            rx: match ty {
                SockType::Stream => RxQueue::Bytes(VecDeque::new()),
                _ => RxQueue::Msgs(VecDeque::new()),
            },
            in_flight: 0,
            shutdown: 0,
            err: None,
            open,
            connected,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            rcvtimeo: None,
            sndtimeo: None,
            bool_opts: BTreeMap::new(),
        }
    }

    fn rx_empty(&self) -> bool {
        match &self.rx {
            RxQueue::Bytes(b) => b.is_empty(),
            RxQueue::Msgs(m) => m.is_empty(),
        }
    }

    /// FIONREAD: queued bytes (streams) or the next message's length.
    fn rx_len(&self) -> usize {
        match &self.rx {
            RxQueue::Bytes(b) => b.len(),
            RxQueue::Msgs(m) => m.front().map_or(0, |v| v.len()),
        }
    }
}

struct State {
    ends: [End; 2],
}

/// The shared state of a pair (or of a lone unconnected socket, whose other end never
/// opens).
pub struct Connection {
    ty: SockType,
    state: Mutex<State>,
    queue: WaitQueue,
}

impl Connection {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain buffers and counters: a panic elsewhere cannot leave them unsound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One AF_UNIX socket: an end of a [`Connection`].
pub struct UnixSocket {
    conn: Arc<Connection>,
    side: usize,
    ino: u64,
    uid: u32,
    gid: u32,
    cred: PeerCred,
    ctime: (i64, i64),
}

impl UnixSocket {
    fn register(sock: UnixSocket) -> Arc<UnixSocket> {
        Arc::new(sock)
    }

    fn new_end(conn: &Arc<Connection>, side: usize, cred: PeerCred, uid: u32, gid: u32) -> Arc<UnixSocket> {
        Self::register(UnixSocket {
            conn: conn.clone(),
            side,
            ino: NEXT_SOCK_INO.fetch_add(1, Ordering::Relaxed),
            uid,
            gid,
            cred,
            ctime: now(),
        })
    }

    /// A connected pair (socketpair(2)), created by a task with credentials `cred`, owned
    /// by `uid`/`gid` (the creator's fsuid/fsgid).
    pub fn pair(ty: SockType, cred: PeerCred, uid: u32, gid: u32) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        let conn = Arc::new(Connection {
            ty,
            state: Mutex::new(State { ends: [End::new(ty, true, true), End::new(ty, true, true)] }),
            queue: WaitQueue::new(),
        });
        (Self::new_end(&conn, 0, cred, uid, gid), Self::new_end(&conn, 1, cred, uid, gid))
    }

    /// An unconnected socket (socket(2)).
    pub fn unconnected(ty: SockType, cred: PeerCred, uid: u32, gid: u32) -> Arc<UnixSocket> {
        let conn = Arc::new(Connection {
            ty,
            state: Mutex::new(State { ends: [End::new(ty, true, false), End::new(ty, false, false)] }),
            queue: WaitQueue::new(),
        });
        Self::new_end(&conn, 0, cred, uid, gid)
    }

    pub fn sock_type(&self) -> SockType {
        self.conn.ty
    }

    /// Whether the socket has (or had, for streams) a peer: getpeername, connect.
    pub fn is_connected(&self) -> bool {
        self.conn.lock().ends[self.side].connected
    }

    /// SO_PEERCRED: the credentials of the task that created the pair.
    pub fn peer_cred(&self) -> Result<PeerCred, Errno> {
        if self.is_connected() {
            Ok(self.cred)
        } else {
            Ok(PeerCred { pid: 0, uid: u32::MAX, gid: u32::MAX })
        }
    }

    /// The largest message a datagram send accepts now (EMSGSIZE above).
    pub fn max_message(&self) -> usize {
        self.conn.lock().ends[self.side].sndbuf.saturating_sub(32)
    }

    fn deadline(timeout: Option<Duration>) -> Option<Instant> {
        timeout.map(|d| Instant::now() + d)
    }

    /// Sends `buf`. Streams take as much as fits, blocking for room unless `nonblock`;
    /// datagrams go whole or not at all. EPIPE when the connection cannot carry data any
    /// more (the caller raises SIGPIPE where Linux does), EAGAIN when nothing fits and
    /// `nonblock` (or the SO_SNDTIMEO passed), ERESTARTSYS if a signal came first.
    pub fn send(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        match self.conn.ty {
            SockType::Stream => self.send_stream(buf, nonblock),
            _ => self.send_msg(buf, nonblock),
        }
    }

    fn send_stream(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let (me, peer) = (self.side, 1 - self.side);
        let timeout;
        {
            let st = self.conn.lock();
            let e = &st.ends[me];
            if !e.connected {
                return Err(Errno::ENOTCONN);
            }
            if e.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            timeout = e.sndtimeo;
        }
        let mut done = 0usize;
        let nonblock = nonblock || timeout == Some(Duration::ZERO);
        let attempt = |done: &mut usize| -> Option<Result<usize, Errno>> {
            let mut st = self.conn.lock();
            let fail = |e: Errno, done: usize| Some(if done > 0 { Ok(done) } else { Err(e) });
            if let Some(e) = st.ends[me].err.take() {
                return fail(e, *done);
            }
            if st.ends[me].shutdown & SEND_SHUTDOWN != 0 || !st.ends[peer].open || st.ends[peer].shutdown & RCV_SHUTDOWN != 0 {
                return fail(Errno::EPIPE, *done);
            }
            let sndbuf = st.ends[me].sndbuf;
            let used = st.ends[me].in_flight;
            if used < sndbuf {
                let k = (sndbuf - used).min(buf.len() - *done);
                if let RxQueue::Bytes(q) = &mut st.ends[peer].rx {
                    q.extend(&buf[*done..*done + k]);
                }
                st.ends[me].in_flight += k;
                *done += k;
                drop(st);
                self.conn.queue.notify_all();
            } else {
                drop(st);
            }
            match () {
                _ if *done == buf.len() => Some(Ok(*done)),
                _ if nonblock => fail(Errno::EAGAIN, *done),
                _ => None,
            }
        };
        if let Some(r) = attempt(&mut done) {
            return r;
        }
        let r = block_on(&[&self.conn.queue], Self::deadline(timeout), || attempt(&mut done));
        match r {
            Err(Errno::ERESTARTSYS | Errno::ETIMEDOUT) if done > 0 => Ok(done),
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            r => r,
        }
    }

    fn send_msg(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let (me, peer) = (self.side, 1 - self.side);
        let ty = self.conn.ty;
        let timeout;
        {
            let st = self.conn.lock();
            let e = &st.ends[me];
            if !e.connected {
                return Err(Errno::ENOTCONN);
            }
            if buf.len() > e.sndbuf.saturating_sub(32) {
                return Err(Errno::EMSGSIZE);
            }
            timeout = e.sndtimeo;
        }
        let nonblock = nonblock || timeout == Some(Duration::ZERO);
        let attempt = || -> Option<Result<usize, Errno>> {
            let mut st = self.conn.lock();
            if let Some(e) = st.ends[me].err.take() {
                return Some(Err(e));
            }
            if st.ends[me].shutdown & SEND_SHUTDOWN != 0 {
                return Some(Err(Errno::EPIPE));
            }
            if !st.ends[me].connected {
                return Some(Err(Errno::ENOTCONN));
            }
            if st.ends[me].in_flight >= st.ends[me].sndbuf {
                return if nonblock { Some(Err(Errno::EAGAIN)) } else { None };
            }
            if !st.ends[peer].open {
                if ty == SockType::SeqPacket {
                    return Some(Err(Errno::EPIPE));
                }
                st.ends[me].connected = false;
                return Some(Err(Errno::ECONNREFUSED));
            }
            if st.ends[peer].shutdown & RCV_SHUTDOWN != 0 {
                return Some(Err(Errno::EPIPE));
            }
            if let RxQueue::Msgs(q) = &mut st.ends[peer].rx {
                q.push_back(buf.to_vec());
            }
            st.ends[me].in_flight += buf.len() + MSG_OVERHEAD;
            drop(st);
            self.conn.queue.notify_all();
            Some(Ok(buf.len()))
        };
        if let Some(r) = attempt() {
            return r;
        }
        match block_on(&[&self.conn.queue], Self::deadline(timeout), attempt) {
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            r => r,
        }
    }

    /// Receives into `buf`. Streams return what is queued (with `waitall`, wait until
    /// `buf` is full, end of file or a signal); datagram sockets return one message,
    /// truncated to `buf` (the rest is dropped unless `peek`). 0 at end of file; EAGAIN if
    /// nothing is queued and `nonblock`; ERESTARTSYS if a signal came before any data.
    pub fn recv(&self, buf: &mut [u8], nonblock: bool, peek: bool, waitall: bool) -> Result<Received, Errno> {
        let me = self.side;
        let ty = self.conn.ty;
        let timeout = {
            let st = self.conn.lock();
            let e = &st.ends[me];
            match ty {
                SockType::Stream if !e.connected => return Err(Errno::EINVAL),
                SockType::SeqPacket if !e.connected => return Err(Errno::ENOTCONN),
                _ => {}
            }
            e.rcvtimeo
        };
        if ty == SockType::Stream && buf.is_empty() {
            return Ok(Received { copied: 0, full: 0 });
        }
        let nonblock = nonblock || timeout == Some(Duration::ZERO);
        let waitall = waitall && ty == SockType::Stream;
        let mut done = 0usize;
        let mut attempt = |done: &mut usize| -> Option<Result<Received, Errno>> {
            let mut st = self.conn.lock();
            let (e, p) = two(&mut st.ends, me);
            let shut = e.shutdown & RCV_SHUTDOWN != 0;
            let whole = |n: usize| Received { copied: n, full: n };
            let mut consumed = false;
            let r = match &mut e.rx {
                RxQueue::Msgs(q) => {
                    // Datagram receives check the pending error before the queue.
                    if let Some(err) = e.err.take() {
                        Some(Err(err))
                    } else if let Some(msg) = q.front() {
                        let full = msg.len();
                        let k = full.min(buf.len());
                        buf[..k].copy_from_slice(&msg[..k]);
                        if !peek {
                            q.pop_front();
                            p.in_flight = p.in_flight.saturating_sub(full + MSG_OVERHEAD);
                            consumed = true;
                        }
                        Some(Ok(Received { copied: k, full }))
                    } else if shut {
                        Some(Ok(whole(0)))
                    } else if nonblock {
                        Some(Err(Errno::EAGAIN))
                    } else {
                        None
                    }
                }
                RxQueue::Bytes(q) => {
                    if peek && !q.is_empty() {
                        if waitall && q.len() < buf.len() && !shut && !nonblock {
                            None
                        } else {
                            let k = q.len().min(buf.len());
                            for (d, s) in buf[..k].iter_mut().zip(q.iter()) {
                                *d = *s;
                            }
                            Some(Ok(whole(k)))
                        }
                    } else {
                        if !q.is_empty() {
                            let k = q.len().min(buf.len() - *done);
                            for (d, s) in buf[*done..*done + k].iter_mut().zip(q.drain(..k)) {
                                *d = s;
                            }
                            *done += k;
                            p.in_flight = p.in_flight.saturating_sub(k);
                            consumed = true;
                        }
                        let n = *done;
                        if n > 0 && (!waitall || n == buf.len()) {
                            Some(Ok(whole(n)))
                        } else if let Some(err) = e.err.take() {
                            Some(if n > 0 { Ok(whole(n)) } else { Err(err) })
                        } else if shut {
                            Some(Ok(whole(n)))
                        } else if nonblock {
                            Some(if n > 0 { Ok(whole(n)) } else { Err(Errno::EAGAIN) })
                        } else {
                            None
                        }
                    }
                }
            };
            drop(st);
            if consumed {
                self.conn.queue.notify_all();
            }
            r
        };
        if let Some(r) = attempt(&mut done) {
            return r;
        }
        let r = block_on(&[&self.conn.queue], Self::deadline(timeout), || attempt(&mut done));
        match r {
            Err(Errno::ERESTARTSYS | Errno::ETIMEDOUT) if done > 0 => Ok(Received { copied: done, full: done }),
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            r => r,
        }
    }

    /// shutdown(2): `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2).
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mode = ((how + 1) & 3) as u8;
        {
            let mut st = self.conn.lock();
            let (me, peer) = (self.side, 1 - self.side);
            st.ends[me].shutdown |= mode;
            if self.conn.ty.connection_oriented() && st.ends[me].connected && st.ends[peer].open {
                let mut peer_mode = 0;
                if mode & RCV_SHUTDOWN != 0 {
                    peer_mode |= SEND_SHUTDOWN;
                }
                if mode & SEND_SHUTDOWN != 0 {
                    peer_mode |= RCV_SHUTDOWN;
                }
                st.ends[peer].shutdown |= peer_mode;
            }
        }
        self.conn.queue.notify_all();
        Ok(())
    }

    /// SO_ERROR: the pending error, cleared.
    pub fn take_error(&self) -> Option<Errno> {
        self.conn.lock().ends[self.side].err.take()
    }

    /// SO_SNDBUF / SO_RCVBUF as getsockopt reports them.
    pub fn buffers(&self) -> (usize, usize) {
        let st = self.conn.lock();
        (st.ends[self.side].sndbuf, st.ends[self.side].rcvbuf)
    }

    /// setsockopt SO_SNDBUF: Linux caps at wmem_max and doubles.
    pub fn set_sndbuf(&self, val: i32) {
        let v = (val as u32 as usize).min(DEFAULT_BUF);
        self.conn.lock().ends[self.side].sndbuf = (v * 2).max(MIN_SNDBUF);
        self.conn.queue.notify_all();
    }

    /// setsockopt SO_RCVBUF (no effect on AF_UNIX beyond what getsockopt reports).
    pub fn set_rcvbuf(&self, val: i32) {
        let v = (val as u32 as usize).min(DEFAULT_BUF);
        self.conn.lock().ends[self.side].rcvbuf = (v * 2).max(MIN_RCVBUF);
    }

    /// SO_RCVTIMEO / SO_SNDTIMEO: `None` waits forever, zero does not wait.
    pub fn set_timeout(&self, recv: bool, t: Option<Duration>) {
        let mut st = self.conn.lock();
        let e = &mut st.ends[self.side];
        if recv {
            e.rcvtimeo = t;
        } else {
            e.sndtimeo = t;
        }
    }

    pub fn timeout(&self, recv: bool) -> Option<Duration> {
        let st = self.conn.lock();
        let e = &st.ends[self.side];
        if recv {
            e.rcvtimeo
        } else {
            e.sndtimeo
        }
    }

    pub fn set_bool_opt(&self, opt: i32, on: bool) {
        self.conn.lock().ends[self.side].bool_opts.insert(opt, on);
    }

    pub fn bool_opt(&self, opt: i32) -> bool {
        self.conn.lock().ends[self.side].bool_opts.get(&opt).copied().unwrap_or(false)
    }

    fn poll_events(&self) -> u32 {
        let st = self.conn.lock();
        let e = &st.ends[self.side];
        let mut ev = 0;
        if e.err.is_some() {
            ev |= POLLERR;
        }
        if e.shutdown == SHUTDOWN_MASK {
            ev |= POLLHUP;
        }
        if e.shutdown & RCV_SHUTDOWN != 0 {
            ev |= POLLRDHUP | POLLIN | POLLRDNORM;
        }
        if !e.rx_empty() {
            ev |= POLLIN | POLLRDNORM;
        }
        if self.conn.ty.connection_oriented() && !e.connected {
            ev |= POLLHUP;
        }
        if e.in_flight * 4 <= e.sndbuf {
            ev |= POLLOUT | POLLWRNORM | POLLWRBAND;
        }
        ev
    }
}

/// (this end, the other end).
fn two(ends: &mut [End; 2], me: usize) -> (&mut End, &mut End) {
    let [a, b] = ends;
    if me == 0 {
        (a, b)
    } else {
        (b, a)
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        {
            let mut st = self.conn.lock();
            let (me, peer) = (self.side, 1 - self.side);
            let had_unread = !st.ends[me].rx_empty();
            st.ends[me].open = false;
            st.ends[me].rx = match self.conn.ty {
                SockType::Stream => RxQueue::Bytes(VecDeque::new()),
                _ => RxQueue::Msgs(VecDeque::new()),
            };
            st.ends[peer].in_flight = 0;
            if self.conn.ty.connection_oriented() && st.ends[me].connected && st.ends[peer].open {
                st.ends[peer].shutdown = SHUTDOWN_MASK;
                if had_unread {
                    st.ends[peer].err = Some(Errno::ECONNRESET);
                }
            }
        }
        self.conn.queue.notify_all();
    }
}

impl FileImpl for UnixSocket {
    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.recv(buf, flags & O_NONBLOCK != 0, false, false).map(|r| r.copied)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.send(buf, flags & O_NONBLOCK != 0)
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
        let n = match cmd {
            FIONREAD => self.conn.lock().ends[self.side].rx_len(),
            TIOCOUTQ => self.conn.lock().ends[self.side].in_flight,
            _ => return Err(Errno::ENOTTY),
        };
        mm.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        self.poll_events()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.conn.queue)
    }
}

#[cfg(test)]
mod tests {

    use super::*;


    fn pair(ty: SockType) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        UnixSocket::pair(ty, PeerCred { pid: 1, uid: 0, gid: 0 }, 0, 0)
    }

    fn recv(s: &UnixSocket, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; len];
        let r = s.recv(&mut buf, true, false, false)?;
        buf.truncate(r.copied);
        Ok(buf)
    }

    use crate::kernel::wait::test_support::spawn_with_waker as spawn;

    #[test]
    fn unix_stream_pair_is_bidirectional_and_merges_writes() {
        let (a, b) = pair(SockType::Stream);
        assert_eq!(a.send(b"he", true), Ok(2));
        assert_eq!(a.send(b"llo", true), Ok(3));
        assert_eq!(b.send(b"back", true), Ok(4));
        assert_eq!(recv(&b, 100).unwrap(), b"hello");
        assert_eq!(recv(&a, 2).unwrap(), b"ba");
        assert_eq!(recv(&a, 2).unwrap(), b"ck");
        assert_eq!(recv(&a, 2), Err(Errno::EAGAIN));
    }

    #[test]
    fn unix_stream_eof_epipe_and_econnreset_after_close() {
        let (a, b) = pair(SockType::Stream);
        a.send(b"x", true).unwrap();
        drop(a);
        assert_eq!(recv(&b, 8).unwrap(), b"x", "queued data survives the peer's close");
        assert_eq!(recv(&b, 8).unwrap(), b"", "then end of file");
        assert_eq!(b.send(b"y", true), Err(Errno::EPIPE));
        assert_ne!(b.readiness() & POLLHUP, 0);
        // Closing with unread data resets the peer once.
        let (a, b) = pair(SockType::Stream);
        b.send(b"unread", true).unwrap();
        drop(a);
        assert_eq!(recv(&b, 8), Err(Errno::ECONNRESET));
        assert_eq!(recv(&b, 8).unwrap(), b"");
    }

    #[test]
    fn unix_stream_shutdown_wr_gives_peer_eof_and_self_epipe() {
        let (a, b) = pair(SockType::Stream);
        a.shutdown(1).unwrap();
        assert_eq!(a.send(b"z", true), Err(Errno::EPIPE));
        assert_eq!(recv(&b, 4).unwrap(), b"");
        assert_eq!(b.readiness() & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
        assert_eq!(b.send(b"still", true), Ok(5), "the other direction stays open");
        assert_eq!(recv(&a, 10).unwrap(), b"still");
        assert_eq!(a.shutdown(3), Err(Errno::EINVAL));
    }

    #[test]
    fn unix_stream_send_buffer_fills_then_eagain_and_pollout_follows() {
        let (a, b) = pair(SockType::Stream);
        let mut total = 0;
        loop {
            match a.send(&[1u8; 10000], true) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        assert_eq!(total, DEFAULT_BUF);
        assert_eq!(a.readiness() & POLLOUT, 0);
        let mut buf = vec![0u8; DEFAULT_BUF];
        assert_eq!(b.recv(&mut buf, true, false, false).unwrap().copied, DEFAULT_BUF);
        assert_ne!(a.readiness() & POLLOUT, 0);
    }

    #[test]
    fn unix_dgram_and_seqpacket_keep_boundaries_and_truncate() {
        for ty in [SockType::Dgram, SockType::SeqPacket] {
            let (a, b) = pair(ty);
            a.send(b"first", true).unwrap();
            a.send(b"", true).unwrap();
            a.send(b"second!", true).unwrap();
            let mut buf = [0u8; 3];
            assert_eq!(b.recv(&mut buf, true, true, false), Ok(Received { copied: 3, full: 5 }), "peek");
            assert_eq!(b.recv(&mut buf, true, false, false), Ok(Received { copied: 3, full: 5 }));
            assert_eq!(&buf, b"fir");
            assert_eq!(recv(&b, 100).unwrap(), b"", "an empty datagram");
            assert_eq!(recv(&b, 100).unwrap(), b"second!");
            assert_eq!(recv(&b, 100), Err(Errno::EAGAIN));
            assert_eq!(a.send(&vec![0u8; DEFAULT_BUF], true), Err(Errno::EMSGSIZE));
        }
    }

    #[test]
    fn unix_dgram_peer_close_is_econnrefused_then_enotconn() {
        let (a, b) = pair(SockType::Dgram);
        drop(b);
        assert_eq!(a.send(b"x", true), Err(Errno::ECONNREFUSED));
        assert_eq!(a.send(b"x", true), Err(Errno::ENOTCONN));
        assert_eq!(recv(&a, 4), Err(Errno::EAGAIN), "no end of file for datagrams");
        let (a, b) = pair(SockType::SeqPacket);
        drop(b);
        assert_eq!(a.send(b"x", true), Err(Errno::EPIPE));
        assert_eq!(recv(&a, 4).unwrap(), b"");
    }

    #[test]
    fn unix_blocked_reader_wakes_on_data_and_on_signal() {
        let (a, b) = pair(SockType::Stream);
        let (_, h) = spawn(move || {
            let mut buf = [0u8; 4];
            let r = b.recv(&mut buf, false, false, true)?;
            Ok::<_, Errno>(buf[..r.copied].to_vec())
        });
        a.send(b"ab", false).unwrap();
        a.send(b"cd", false).unwrap();
        assert_eq!(h.join().unwrap(), Ok(b"abcd".to_vec()), "MSG_WAITALL waits for all");
        let (_a, b) = pair(SockType::Dgram);
        let (w, h) = spawn(move || b.recv(&mut [0u8; 4], false, false, false));
        w.interrupt();
        assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
    }

    #[test]
    fn unix_blocked_writer_wakes_when_reader_drains() {
        let (a, b) = pair(SockType::Stream);
        let data = vec![7u8; 3 * DEFAULT_BUF];
        let (_, h) = spawn(move || a.send(&data, false));
        let mut got = 0;
        let mut buf = vec![0u8; 50_000];
        while got < 3 * DEFAULT_BUF {
            got += b.recv(&mut buf, false, false, false).unwrap().copied;
        }
        assert_eq!(h.join().unwrap(), Ok(3 * DEFAULT_BUF));
    }

    #[test]
    fn unix_registry_finds_sockets_only() {
        let (a, _b) = pair(SockType::Stream);
        let imp: Arc<dyn FileImpl> = a.clone();
        assert!(as_unix(&imp).is_some_and(|s| Arc::ptr_eq(&s, &a)));
        let (r, _w) = crate::vfs::pipe::new_pipe(0);
        assert!(as_unix(r.imp()).is_none());
        assert_eq!(imp.stat().unwrap().st_mode, S_IFSOCK | 0o777);
        let lone = UnixSocket::unconnected(SockType::Stream, PeerCred::default(), 0, 0);
        assert_eq!(lone.send(b"x", true), Err(Errno::ENOTCONN));
        assert_eq!(recv(&lone, 1), Err(Errno::EINVAL));
        assert_ne!(lone.readiness() & POLLHUP, 0);
    }
}
