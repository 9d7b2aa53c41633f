//! AF_UNIX sockets: pairs from socketpair(2), sockets bound to paths and abstract names,
//! listeners, connected streams and seqpacket connections, and datagram sockets that send
//! to any bound name.
//!
//! A [`Connection`] holds two ends' state under one lock and one wait queue: each end has
//! its receive queue ([`queue`]: byte segments for SOCK_STREAM, whole messages for
//! SOCK_DGRAM and SOCK_SEQPACKET, each with the sender's credentials and passed files),
//! shutdown bits, a pending error, options and the bytes it has queued at the peer. A
//! socket from socket(2) is end 0 of a connection whose end 1 is closed; connect(2) to a
//! listener opens end 1 as the server's socket and queues it on the listener until
//! accept(2) takes it. A sender's in-flight bytes at its peer are bounded by its own
//! `SO_SNDBUF`; datagrams to another socket's name are bounded by the receiver's queue
//! length (Linux's `max_dgram_qlen`, 10) instead.
//!
//! All queued data also counts against one sandbox-wide budget of socket buffer memory
//! ([`crate::kernel::membudget::SOCKET_BUFFERS`], scaled from the memory limit): each
//! segment or message its bytes plus a fixed overhead, returned when read or when the
//! queue holding it is dropped. A send that the budget cannot take behaves as with a full
//! SO_SNDBUF (EAGAIN, or a wait woken when any socket frees space; poll reports the socket
//! not writable meanwhile); only the per-socket limit gives EMSGSIZE.
//!
//! Closing an end of a stream or seqpacket connection shuts the peer down both ways; if the
//! closed end had unread data the peer also gets ECONNRESET once. A datagram peer sees no
//! end of file: its next send fails with ECONNREFUSED, later ones with ENOTCONN.
//!
//! Files in flight (SCM_RIGHTS) are bounded per receiving end ([`MAX_QUEUED_FILES`],
//! ETOOMANYREFS beyond). A socket sent over itself (or a cycle of sockets each queued in
//! another) keeps itself alive: unlike Linux there is no garbage collector, so such a
//! cycle stays in memory until the sandbox exits (bounded by the per-end limit).

#[cfg(test)]
mod budget_tests;
mod io;
pub mod names;
pub mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvisor_syscalls::flags::ioctl::{FIONREAD, TIOCOUTQ};
use rvisor_syscalls::flags::mode::S_IFSOCK;
use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{
    POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRBAND, POLLWRNORM,
};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use self::names::{Addr, Registration};
use self::queue::{Ancillary, Files, RxQueue};
use super::file::FileImpl;
use crate::kernel::membudget::{MemBudget, SOCKET_BUFFERS};
use crate::kernel::wait::{block_on, WaitQueue};
use crate::mm::MemoryManager;

/// Linux's default `SO_SNDBUF`/`SO_RCVBUF` (`net.core.wmem_default`), also the largest
/// value an unprivileged setsockopt may ask for (`wmem_max`/`rmem_max`) before doubling.
pub const DEFAULT_BUF: usize = 212_992;
/// The smallest SO_SNDBUF (Linux's SOCK_MIN_SNDBUF on x86_64).
const MIN_SNDBUF: usize = 4608;
/// The smallest SO_RCVBUF (SOCK_MIN_RCVBUF).
const MIN_RCVBUF: usize = 2304;
/// What each queued message costs its sender beyond its bytes.
const MSG_OVERHEAD: usize = 512;
/// What each stream segment (a write that could not join the previous one) costs the
/// sandbox's budget beyond its bytes.
const SEG_OVERHEAD: usize = 256;
/// Free budget below which poll reports a socket not writable.
const WRITABLE_MIN: usize = 4096;
/// The device number sockfs reports.
const SOCKFS_DEV: u64 = 0x08;
/// Datagrams another socket may queue at a receiver (Linux's `net.unix.max_dgram_qlen`).
const DGRAM_QLEN: usize = 10;
/// Files that may wait in one end's receive queue.
pub const MAX_QUEUED_FILES: usize = 4096;
/// Largest listen(2) backlog (Linux's `net.core.somaxconn`).
const SOMAXCONN: usize = 4096;

const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;

/// Inode numbers of every socket (sockfs): one counter, so /proc/PID/fd's `socket:[N]`
/// and /proc/net's inode columns never repeat across socket kinds.
static NEXT_SOCK_INO: AtomicU64 = AtomicU64::new(5_000_000);

/// A new socket inode number.
pub fn next_socket_ino() -> u64 {
    NEXT_SOCK_INO.fetch_add(1, Ordering::Relaxed)
}

fn now() -> (i64, i64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
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

/// Process credentials in sandbox ids: SO_PEERCRED and SCM_CREDENTIALS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// What a receive delivered.
#[derive(Default)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// The whole message's length (datagrams; equals `copied` for streams).
    pub full: usize,
    /// Files passed with the data.
    pub files: Files,
    /// The sender's credentials (of the first byte read).
    pub cred: Option<PeerCred>,
    /// The sender's name (datagrams).
    pub from: Option<Addr>,
}

impl Received {
    pub fn truncated(&self) -> bool {
        self.full > self.copied
    }
}

/// A listening socket's queue of connections not yet accepted.
struct Listener {
    backlog: usize,
    pending: VecDeque<Arc<UnixSocket>>,
    /// The listener's credentials at listen(2), which connecting clients see.
    cred: PeerCred,
}

struct End {
    rx: RxQueue,
    /// Charged to this end's SO_SNDBUF: what it has queued at the peer.
    in_flight: usize,
    shutdown: u8,
    err: Option<Errno>,
    open: bool,
    /// Has a peer in the same connection (a pair or a stream/seqpacket connection).
    connected: bool,
    /// A datagram socket's peer elsewhere (connect(2) to a name).
    dgram_peer: Option<(Weak<Connection>, usize)>,
    addr: Option<Addr>,
    reg: Option<Registration>,
    peer_cred: Option<PeerCred>,
    listener: Option<Listener>,
    sndbuf: usize,
    rcvbuf: usize,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    passcred: bool,
    /// Boolean options that are stored but change nothing (SO_REUSEADDR, ...).
    bool_opts: BTreeMap<i32, bool>,
}

impl End {
    fn new(ty: SockType, open: bool, connected: bool) -> End {
        End {
            rx: match ty {
                SockType::Stream => RxQueue::Stream(VecDeque::new()),
                _ => RxQueue::Msgs(VecDeque::new()),
            },
            in_flight: 0,
            shutdown: 0,
            err: None,
            open,
            connected,
            dgram_peer: None,
            addr: None,
            reg: None,
            peer_cred: None,
            listener: None,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            rcvtimeo: None,
            sndtimeo: None,
            passcred: false,
            bool_opts: BTreeMap::new(),
        }
    }
}

struct State {
    ends: [End; 2],
}

/// The shared state of a connection (or of a lone socket, whose other end is closed).
pub struct Connection {
    ty: SockType,
    state: Mutex<State>,
    /// Shared so that the buffer budget can notify it when space frees.
    queue: Arc<WaitQueue>,
    /// What queued data is charged to (the sandbox's; unit tests use their own).
    budget: &'static MemBudget,
}

impl Connection {
    fn new(ty: SockType, a: End, b: End) -> Arc<Connection> {
        Arc::new(Connection {
            ty,
            state: Mutex::new(State { ends: [a, b] }),
            queue: Arc::new(WaitQueue::new()),
            budget: &SOCKET_BUFFERS,
        })
    }

    /// Charges between `least` and `most` bytes, registering for a wake-up when the budget
    /// cannot take `least` (then checking once more, so a release in between is not missed).
    fn charge(&self, least: usize, most: usize) -> Option<crate::kernel::membudget::Charge> {
        if let Some(c) = self.budget.try_charge_between(least, most) {
            return Some(c);
        }
        self.budget.wait_for_space(&self.queue);
        self.budget.try_charge_between(least, most)
    }

    /// Whether the budget has room for a write now; if not, registers for a wake-up.
    fn budget_writable(&self) -> bool {
        if self.budget.free() >= WRITABLE_MIN {
            return true;
        }
        self.budget.wait_for_space(&self.queue);
        self.budget.free() >= WRITABLE_MIN
    }

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
    /// The creator's credentials.
    cred: PeerCred,
    ctime: (i64, i64),
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|d| Instant::now() + d)
}

/// Maps a blocking wait's end: a timeout is EAGAIN.
fn timed(r: Result<usize, Errno>) -> Result<usize, Errno> {
    match r {
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        r => r,
    }
}

impl UnixSocket {
    fn new_end(
        conn: &Arc<Connection>,
        side: usize,
        cred: PeerCred,
        uid: u32,
        gid: u32,
    ) -> Arc<UnixSocket> {
        Arc::new(UnixSocket {
            conn: conn.clone(),
            side,
            ino: next_socket_ino(),
            uid,
            gid,
            cred,
            ctime: now(),
        })
    }

    /// A connected pair (socketpair(2)), created by a task with credentials `cred`, owned
    /// by `uid`/`gid` (the creator's fsuid/fsgid).
    pub fn pair(
        ty: SockType,
        cred: PeerCred,
        uid: u32,
        gid: u32,
    ) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        let mut a = End::new(ty, true, true);
        let mut b = End::new(ty, true, true);
        a.peer_cred = Some(cred);
        b.peer_cred = Some(cred);
        let conn = Connection::new(ty, a, b);
        (
            Self::new_end(&conn, 0, cred, uid, gid),
            Self::new_end(&conn, 1, cred, uid, gid),
        )
    }

    /// An unconnected socket (socket(2)).
    pub fn unconnected(ty: SockType, cred: PeerCred, uid: u32, gid: u32) -> Arc<UnixSocket> {
        let conn = Connection::new(ty, End::new(ty, true, false), End::new(ty, false, false));
        Self::new_end(&conn, 0, cred, uid, gid)
    }

    pub fn sock_type(&self) -> SockType {
        self.conn.ty
    }

    fn with<R>(&self, f: impl FnOnce(&mut End) -> R) -> R {
        f(&mut self.conn.lock().ends[self.side])
    }

    /// Whether the socket has (or had, for streams) a peer: getpeername, connect.
    pub fn is_connected(&self) -> bool {
        self.with(|e| e.connected || e.dgram_peer.is_some())
    }

    pub fn is_listening(&self) -> bool {
        self.with(|e| e.listener.is_some())
    }

    /// SO_PEERCRED: the peer's credentials when it connected (or created the pair).
    pub fn peer_cred(&self) -> PeerCred {
        self.with(|e| e.peer_cred).unwrap_or(PeerCred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        })
    }

    /// The bound name (getsockname).
    pub fn local_addr(&self) -> Option<Addr> {
        self.with(|e| e.addr.clone())
    }

    /// The peer's name (getpeername): ENOTCONN without a peer.
    pub fn peer_addr(&self) -> Result<Option<Addr>, Errno> {
        let dgram_peer = {
            let st = self.conn.lock();
            let e = &st.ends[self.side];
            if e.connected {
                return Ok(st.ends[1 - self.side].addr.clone());
            }
            e.dgram_peer.clone()
        };
        let (w, side) = dgram_peer.ok_or(Errno::ENOTCONN)?;
        Ok(w.upgrade().and_then(|c| c.lock().ends[side].addr.clone()))
    }

    /// Records the bound name (EINVAL if already bound). The caller registered it.
    pub fn set_addr(&self, addr: Addr, reg: Registration) -> Result<(), Errno> {
        self.with(|e| {
            if e.addr.is_some() {
                return Err(Errno::EINVAL);
            }
            e.addr = Some(addr);
            e.reg = Some(reg);
            Ok(())
        })
    }

    pub fn passcred(&self) -> bool {
        self.with(|e| e.passcred)
    }

    pub fn set_passcred(&self, on: bool) {
        self.with(|e| e.passcred = on)
    }

    /// The largest message a datagram send accepts now (EMSGSIZE above).
    pub fn max_message(&self) -> usize {
        self.with(|e| e.sndbuf.saturating_sub(32))
    }

    // -----------------------------------------------------------------------------------
    // Listening and connecting

    /// listen(2): the socket must be a bound, unconnected stream or seqpacket socket.
    pub fn listen(&self, backlog: i32, cred: PeerCred) -> Result<(), Errno> {
        if !self.conn.ty.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = (backlog.max(0) as usize).min(SOMAXCONN);
        self.with(|e| {
            if e.connected || e.addr.is_none() {
                return Err(Errno::EINVAL);
            }
            match &mut e.listener {
                Some(l) => l.backlog = backlog,
                None => {
                    e.listener = Some(Listener {
                        backlog,
                        pending: VecDeque::new(),
                        cred,
                    })
                }
            }
            Ok(())
        })?;
        self.conn.queue.notify_all();
        Ok(())
    }

    /// Connects this (client) socket to `server`, a listener: the client's own connection
    /// gets its second end, which waits on the listener's queue for accept(2). Blocks
    /// while the backlog is full unless `nonblock` (EAGAIN).
    pub fn connect_to(
        self: &Arc<Self>,
        server: &Arc<UnixSocket>,
        nonblock: bool,
        cred: PeerCred,
    ) -> Result<(), Errno> {
        if server.conn.ty != self.conn.ty {
            return Err(Errno::EPROTOTYPE);
        }
        self.with(|e| match () {
            _ if e.connected => Err(Errno::EISCONN),
            _ if e.listener.is_some() => Err(Errno::EINVAL),
            _ => Ok(()),
        })?;
        let room = || -> Option<Result<(), Errno>> {
            let st = server.conn.lock();
            match &st.ends[server.side].listener {
                None => Some(Err(Errno::ECONNREFUSED)),
                Some(l) if l.pending.len() > l.backlog => {
                    if nonblock {
                        Some(Err(Errno::EAGAIN))
                    } else {
                        None
                    }
                }
                Some(_) => Some(Ok(())),
            }
        };
        let timeout = self.with(|e| e.sndtimeo);
        match room() {
            Some(r) => r?,
            None => block_on(&[&*server.conn.queue], deadline(timeout), room).map_err(|e| {
                if e == Errno::ETIMEDOUT {
                    Errno::EAGAIN
                } else {
                    e
                }
            })?,
        }
        let (listen_cred, listen_addr) = {
            let st = server.conn.lock();
            let e = &st.ends[server.side];
            (
                e.listener
                    .as_ref()
                    .map(|l| l.cred)
                    .ok_or(Errno::ECONNREFUSED)?,
                e.addr.clone(),
            )
        };
        {
            let mut st = self.conn.lock();
            if st.ends[self.side].connected {
                return Err(Errno::EISCONN);
            }
            let mut srv = End::new(self.conn.ty, true, true);
            srv.addr = listen_addr;
            srv.peer_cred = Some(cred);
            let me = &mut st.ends[self.side];
            me.connected = true;
            me.peer_cred = Some(listen_cred);
            srv.sndbuf = server.with(|e| e.sndbuf);
            st.ends[1 - self.side] = srv;
        }
        let accepted = Self::new_end(
            &self.conn,
            1 - self.side,
            server.cred,
            server.uid,
            server.gid,
        );
        let refused = {
            let mut st = server.conn.lock();
            match &mut st.ends[server.side].listener {
                Some(l) => {
                    l.pending.push_back(accepted);
                    None
                }
                None => Some(accepted),
            }
        };
        server.conn.queue.notify_all();
        if let Some(orphan) = refused {
            // The listener closed meanwhile: drop the server end (outside the listener's
            // lock) and leave the client unconnected, as before the call.
            drop(orphan);
            let mut st = self.conn.lock();
            let ty = self.conn.ty;
            let me = &mut st.ends[self.side];
            me.connected = false;
            me.shutdown = 0;
            me.err = None;
            me.peer_cred = None;
            st.ends[1 - self.side] = End::new(ty, false, false);
            return Err(Errno::ECONNREFUSED);
        }
        Ok(())
    }

    /// accept(2): the oldest pending connection; blocks unless `nonblock` (EAGAIN).
    pub fn accept(&self, nonblock: bool) -> Result<Arc<UnixSocket>, Errno> {
        let timeout = self.with(|e| e.rcvtimeo);
        let take = || -> Option<Result<Arc<UnixSocket>, Errno>> {
            let mut st = self.conn.lock();
            let l = match &mut st.ends[self.side].listener {
                None => return Some(Err(Errno::EINVAL)),
                Some(l) => l,
            };
            match l.pending.pop_front() {
                Some(s) => Some(Ok(s)),
                None if nonblock => Some(Err(Errno::EAGAIN)),
                None => None,
            }
        };
        let r = match take() {
            Some(r) => r,
            None => block_on(&[&*self.conn.queue], deadline(timeout), take).map_err(|e| {
                if e == Errno::ETIMEDOUT {
                    Errno::EAGAIN
                } else {
                    e
                }
            }),
        };
        if r.is_ok() {
            self.conn.queue.notify_all();
        }
        r
    }

    /// connect(2) on a datagram socket: sends without an address go to `peer`.
    pub fn connect_dgram(&self, peer: &Arc<UnixSocket>) {
        self.with(|e| e.dgram_peer = Some((Arc::downgrade(&peer.conn), peer.side)));
    }

    /// connect(2) with AF_UNSPEC on a datagram socket: forget the default destination.
    pub fn disconnect_dgram(&self) {
        self.with(|e| e.dgram_peer = None);
    }
}

impl UnixSocket {
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
        self.with(|e| e.err.take())
    }

    /// SO_SNDBUF / SO_RCVBUF as getsockopt reports them.
    pub fn buffers(&self) -> (usize, usize) {
        self.with(|e| (e.sndbuf, e.rcvbuf))
    }

    /// setsockopt SO_SNDBUF: Linux caps at wmem_max and doubles.
    pub fn set_sndbuf(&self, val: i32) {
        let v = (val as u32 as usize).min(DEFAULT_BUF);
        self.with(|e| e.sndbuf = (v * 2).max(MIN_SNDBUF));
        self.conn.queue.notify_all();
    }

    /// setsockopt SO_RCVBUF (no effect on AF_UNIX beyond what getsockopt reports).
    pub fn set_rcvbuf(&self, val: i32) {
        let v = (val as u32 as usize).min(DEFAULT_BUF);
        self.with(|e| e.rcvbuf = (v * 2).max(MIN_RCVBUF));
    }

    /// SO_RCVTIMEO / SO_SNDTIMEO: `None` waits forever, zero does not wait.
    pub fn set_timeout(&self, recv: bool, t: Option<Duration>) {
        self.with(|e| if recv { e.rcvtimeo = t } else { e.sndtimeo = t });
    }

    pub fn timeout(&self, recv: bool) -> Option<Duration> {
        self.with(|e| if recv { e.rcvtimeo } else { e.sndtimeo })
    }

    pub fn set_bool_opt(&self, opt: i32, on: bool) {
        self.with(|e| e.bool_opts.insert(opt, on));
    }

    pub fn bool_opt(&self, opt: i32) -> bool {
        self.with(|e| e.bool_opts.get(&opt).copied().unwrap_or(false))
    }

    fn poll_events(&self) -> u32 {
        let st = self.conn.lock();
        let e = &st.ends[self.side];
        if let Some(l) = &e.listener {
            return if l.pending.is_empty() {
                0
            } else {
                POLLIN | POLLRDNORM
            };
        }
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
        if !e.rx.is_empty() {
            ev |= POLLIN | POLLRDNORM;
        }
        if self.conn.ty.connection_oriented() && !e.connected {
            ev |= POLLHUP;
        }
        if e.in_flight * 4 <= e.sndbuf && self.conn.budget_writable() {
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
        let (old_rx, reg, listener);
        {
            let mut st = self.conn.lock();
            let (me, peer) = (self.side, 1 - self.side);
            let had_unread = !st.ends[me].rx.is_empty();
            st.ends[me].open = false;
            let empty = match self.conn.ty {
                SockType::Stream => RxQueue::Stream(VecDeque::new()),
                _ => RxQueue::Msgs(VecDeque::new()),
            };
            old_rx = std::mem::replace(&mut st.ends[me].rx, empty);
            reg = st.ends[me].reg.take();
            listener = st.ends[me].listener.take();
            st.ends[peer].in_flight = 0;
            if self.conn.ty.connection_oriented() && st.ends[me].connected && st.ends[peer].open {
                st.ends[peer].shutdown = SHUTDOWN_MASK;
                if had_unread {
                    st.ends[peer].err = Some(Errno::ECONNRESET);
                }
            }
        }
        if let Some(r) = &reg {
            names::unregister(r, self as *const UnixSocket);
        }
        // Queued files and pending connections are released without the lock held: they
        // may be sockets whose own drop takes their locks.
        drop(old_rx);
        drop(listener);
        self.conn.queue.notify_all();
    }
}

impl UnixSocket {
    /// The credentials write(2) records: the writing task's pid and real ids (the VFS
    /// passes no caller, so they come from the task running on this thread; the
    /// creator's as a fallback).
    fn writer_cred(&self) -> PeerCred {
        match crate::kernel::task::current_task() {
            Some(h) => {
                let info = h.proc_info();
                PeerCred {
                    pid: h.tg.tgid,
                    uid: info.creds.uid,
                    gid: info.creds.gid,
                }
            }
            None => self.cred,
        }
    }
}

impl FileImpl for UnixSocket {
    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }

    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        // Files passed along are dropped (closed) by a plain read, as in Linux.
        self.recv(buf, flags & O_NONBLOCK != 0, false, false)
            .map(|r| r.copied)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.send(
            buf,
            flags & O_NONBLOCK != 0,
            Ancillary {
                files: Vec::new(),
                cred: self.writer_cred(),
            },
            None,
        )
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
            FIONREAD => self.with(|e| e.rx.len_bytes()),
            TIOCOUTQ => self.with(|e| e.in_flight),
            _ => return crate::net::ifreq::ioctl(mm, cmd, arg),
        };
        mm.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
        Ok(0)
    }

    fn readiness(&self) -> u32 {
        self.poll_events()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&*self.conn.queue)
    }
}
