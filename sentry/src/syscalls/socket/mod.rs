//! Socket syscalls. Only AF_UNIX exists (see `vfs::unix`): socketpair(2), socket(2),
//! bind(2) to paths (a socket node in the VFS) and abstract names (autobind for an empty
//! name), listen/accept, connect, datagrams to names, and ancillary data: SCM_RIGHTS
//! (files installed at recvmsg; MSG_CMSG_CLOEXEC; MSG_CTRUNC when the buffer is short, the
//! files that do not fit are closed) and SCM_CREDENTIALS (every message records its
//! sender's pid/uid/gid; a receiver with SO_PASSCRED gets them; explicit credentials must
//! be the sender's own unless it holds CAP_SYS_ADMIN/CAP_SETUID/CAP_SETGID). Other families
//! fail with EAFNOSUPPORT (no network).
//!
//! Not supported: MSG_OOB (EOPNOTSUPP, as Linux before 5.15). SIGPIPE: send/sendto/sendmsg
//! raise it on EPIPE for SOCK_STREAM unless MSG_NOSIGNAL, like Linux; write(2) raises it
//! on any EPIPE (also for SOCK_SEQPACKET and SOCK_DGRAM, where Linux does not).

use std::sync::Arc;
use std::time::Duration;

use rvisor_syscalls::flags::at::AT_FDCWD;
use rvisor_syscalls::flags::limits::{IOV_MAX, MAX_RW_COUNT};
use rvisor_syscalls::flags::mode::{S_IFMT, S_IFSOCK};
use rvisor_syscalls::flags::open::{O_CLOEXEC, O_NONBLOCK, O_RDWR};
use rvisor_syscalls::flags::signal::SIGPIPE;
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::types::Timeval;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::signal::{send_to_thread, SignalInfo};
use crate::kernel::Task;
use crate::vfs::permission::{self, Ids};
use crate::vfs::unix::names::{self, Addr, Registration, Requested};
use crate::vfs::unix::queue::Ancillary;
use crate::vfs::unix::{as_unix, PeerCred, Received, SockType, UnixSocket};
use crate::vfs::FileDescription;

mod msg;
mod net;
pub use self::msg::{recvmsg, sendmsg};
pub use self::net::{recvmmsg, sendmmsg};

const SOCK_NONBLOCK: i32 = O_NONBLOCK as i32;
const SOCK_CLOEXEC: i32 = O_CLOEXEC as i32;
/// Options stored and reported but without effect on AF_UNIX.
const BOOL_OPTS: [i32; 6] = [
    SO_REUSEADDR,
    SO_DONTROUTE,
    SO_BROADCAST,
    SO_KEEPALIVE,
    SO_OOBINLINE,
    SO_PASSSEC,
];
/// Largest control buffer sendmsg accepts (Linux's `optmem_max` is of this order).
const MAX_CONTROL: u64 = 64 * 1024;
/// Largest bounce buffer for one step of a send or receive.
const IO_CHUNK: usize = 1 << 20;

fn fd_arg(v: u64) -> i32 {
    v as i32
}

/// The AF_UNIX socket behind `fd` (EBADF, ENOTSOCK).
fn socket_of(t: &Task, fd: i32) -> Result<(Arc<FileDescription>, Arc<UnixSocket>), Errno> {
    let f = t.file(fd)?;
    let s = as_unix(f.imp()).ok_or(Errno::ENOTSOCK)?;
    Ok((f, s))
}

/// Checks socket(2)/socketpair(2) arguments: (type, SOCK_* flags) of an AF_UNIX socket.
fn check_create(domain: i32, ty: i32, protocol: i32, pair: bool) -> Result<(SockType, i32), Errno> {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = ty & SOCK_TYPE_MASK;
    if !(0..SOCK_MAX).contains(&ty) {
        return Err(Errno::EINVAL);
    }
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    if domain != AF_UNIX {
        // Linux has socketpair only for AF_UNIX (and a few others): the IP families answer
        // EOPNOTSUPP. The sandbox has no network, so socket(AF_INET) is EAFNOSUPPORT.
        return Err(if pair && (domain == AF_INET || domain == AF_INET6) {
            Errno::EOPNOTSUPP
        } else {
            Errno::EAFNOSUPPORT
        });
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let st = match ty {
        SOCK_STREAM => SockType::Stream,
        SOCK_DGRAM | SOCK_RAW => SockType::Dgram,
        SOCK_SEQPACKET => SockType::SeqPacket,
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    Ok((st, flags))
}

fn creator(t: &Task) -> PeerCred {
    PeerCred {
        pid: t.tgid(),
        uid: t.creds.euid,
        gid: t.creds.egid,
    }
}

/// The credentials a message records (SCM_CREDENTIALS: the real ids, as Linux).
fn sender(t: &Task) -> PeerCred {
    PeerCred {
        pid: t.tgid(),
        uid: t.creds.uid,
        gid: t.creds.gid,
    }
}

fn description(s: Arc<UnixSocket>, flags: i32) -> Arc<FileDescription> {
    FileDescription::new(s, None, O_RDWR | (flags as u32 & O_NONBLOCK))
}

/// socket(2): AF_UNIX only (unconnected; see the module notes).
pub fn socket(t: &mut Task, a: &Args) -> SysResult {
    let domain = a[0] as i32;
    if matches!(domain, AF_INET | AF_INET6 | AF_NETLINK) {
        return net::socket(t, domain, a[1] as i32, a[2] as i32);
    }
    let (ty, flags) = check_create(a[0] as i32, a[1] as i32, a[2] as i32, false)?;
    let s = UnixSocket::unconnected(ty, creator(t), t.creds.fsuid, t.creds.fsgid);
    Ok(t.install_fd(description(s, flags), flags & SOCK_CLOEXEC != 0)? as u64)
}

/// socketpair(2): AF_UNIX stream, datagram and seqpacket pairs.
pub fn socketpair(t: &mut Task, a: &Args) -> SysResult {
    let (ty, flags) = check_create(a[0] as i32, a[1] as i32, a[2] as i32, true)?;
    let (x, y) = UnixSocket::pair(ty, creator(t), t.creds.fsuid, t.creds.fsgid);
    let cloexec = flags & SOCK_CLOEXEC != 0;
    let fd0 = t.install_fd(description(x, flags), cloexec)?;
    let fd1 = match t.install_fd(description(y, flags), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds().remove(fd0);
            return Err(e);
        }
    };
    if let Err(e) = t.write_obj(a[3], &[fd0, fd1]) {
        let mut fds = t.fds();
        let _ = fds.remove(fd0);
        let _ = fds.remove(fd1);
        return Err(e);
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// Guest buffers

/// A guest buffer as a list of (address, length) pieces (one for send/recv, the iovecs for
/// sendmsg/recvmsg).
struct GuestBuf(Vec<(u64, usize)>);

impl GuestBuf {
    fn single(addr: u64, len: u64) -> GuestBuf {
        GuestBuf(vec![(addr, (len as usize).min(MAX_RW_COUNT))])
    }

    /// Reads and checks an iovec array (EMSGSIZE for too many, EINVAL for an overflowing
    /// total), capping the total at MAX_RW_COUNT as Linux does.
    fn iovecs(t: &Task, addr: u64, cnt: u64) -> Result<GuestBuf, Errno> {
        if cnt > IOV_MAX as u64 {
            return Err(Errno::EMSGSIZE);
        }
        let mut raw = vec![0u8; cnt as usize * 16];
        t.mm.copy_in(addr, &mut raw)?;
        let mut pieces = Vec::with_capacity(cnt as usize);
        let mut total: usize = 0;
        for c in raw.chunks_exact(16) {
            let base = u64::from_le_bytes(c[..8].try_into().map_err(|_| Errno::EFAULT)?);
            let len = u64::from_le_bytes(c[8..].try_into().map_err(|_| Errno::EFAULT)?);
            if len > isize::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            let len = (len as usize).min(MAX_RW_COUNT - total);
            total += len;
            pieces.push((base, len));
        }
        Ok(GuestBuf(pieces))
    }

    fn len(&self) -> usize {
        self.0.iter().map(|p| p.1).sum()
    }

    /// Copies in `len` bytes starting `skip` bytes into the buffer.
    fn gather(&self, t: &Task, mut skip: usize, mut len: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::with_capacity(len);
        for &(base, plen) in &self.0 {
            if len == 0 {
                break;
            }
            if skip >= plen {
                skip -= plen;
                continue;
            }
            let k = (plen - skip).min(len);
            let start = out.len();
            out.resize(start + k, 0);
            t.mm.copy_in(base + skip as u64, &mut out[start..])?;
            skip = 0;
            len -= k;
        }
        Ok(out)
    }

    /// Copies `data` out starting `skip` bytes into the buffer.
    fn scatter(&self, t: &Task, mut skip: usize, mut data: &[u8]) -> Result<(), Errno> {
        for &(base, plen) in &self.0 {
            if data.is_empty() {
                break;
            }
            if skip >= plen {
                skip -= plen;
                continue;
            }
            let k = (plen - skip).min(data.len());
            t.mm.copy_out(base + skip as u64, &data[..k])?;
            data = &data[k..];
            skip = 0;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Addresses

/// Reads a guest `sockaddr_un` (EINVAL for a bad length or family, EFAULT).
fn read_addr(t: &Task, addr: u64, len: u32) -> Result<Requested, Errno> {
    if !(2..=SOCKADDR_UN).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm.copy_in(addr, &mut raw)?;
    names::parse(&raw)
}

/// Writes `addr` (unnamed: just the family) to a guest `sockaddr` of `*lenp` bytes,
/// truncated to it, and stores the full length in `*lenp`.
fn put_addr(t: &Task, addr: u64, lenp: u64, name: Option<&Addr>) -> Result<(), Errno> {
    let len: i32 = t.read_obj(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = name.map_or_else(|| (AF_UNIX as u16).to_le_bytes().to_vec(), Addr::sockaddr);
    let n = (len as usize).min(bytes.len());
    t.mm.copy_out(addr, &bytes[..n])?;
    t.write_obj(lenp, &(bytes.len() as i32))
}

/// The sender's name for recvfrom/recvmsg: an unnamed sender gives length 0.
fn put_from(t: &Task, addr: u64, lenp: u64, from: Option<&Addr>) -> Result<(), Errno> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    match from {
        Some(a) => put_addr(t, addr, lenp, Some(a)),
        None => {
            let len: i32 = t.read_obj(lenp)?;
            if len < 0 {
                return Err(Errno::EINVAL);
            }
            t.write_obj(lenp, &0i32)
        }
    }
}

/// The socket bound to `addr`, resolving a path with the caller's credentials: ENOENT
/// for a missing path, EACCES without write permission on the socket node, ECONNREFUSED
/// when nothing is bound there.
fn lookup_bound(t: &Task, addr: &Addr) -> Result<Arc<UnixSocket>, Errno> {
    match addr {
        Addr::Abstract(n) => names::find_abstract(n).ok_or(Errno::ECONNREFUSED),
        Addr::Path(p) => {
            let d = t.lookup_at(AT_FDCWD, p, true)?;
            let st = d.inode().stat()?;
            permission::check(&t.creds, Ids::Fs, &st, permission::MAY_WRITE)?;
            if st.st_mode & S_IFMT != S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            names::find_node(st.st_dev, st.st_ino).ok_or(Errno::ECONNREFUSED)
        }
    }
}

/// Gives an unbound socket an autobind name (SO_PASSCRED senders, bind with no name).
fn autobind(s: &Arc<UnixSocket>) -> Result<(), Errno> {
    if s.local_addr().is_some() {
        return Ok(());
    }
    let a = names::autobind(s)?;
    let reg = match &a {
        Addr::Abstract(n) => Registration::Abstract(n.clone()),
        Addr::Path(_) => return Err(Errno::EINVAL),
    };
    if let Err(e) = s.set_addr(a, reg.clone()) {
        names::unregister(&reg, Arc::as_ptr(s));
        return Err(e);
    }
    Ok(())
}

/// Creates the socket node for bind(2) to a path: EADDRINUSE if the name exists.
fn make_node(t: &Task, path: &[u8]) -> Result<(u64, u64), Errno> {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    if end == 0 {
        return Err(Errno::EADDRINUSE);
    }
    let trimmed = &path[..end];
    let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    if end < path.len() {
        // A trailing slash: an existing name is in use, a new one cannot be a socket.
        return Err(if t.lookup_at(AT_FDCWD, path, false).is_ok() {
            Errno::EADDRINUSE
        } else {
            Errno::ENOENT
        });
    }
    let dir = if dir_part.is_empty() {
        t.dir_of(AT_FDCWD)?
    } else {
        t.lookup_at(AT_FDCWD, dir_part, true)?
    };
    if !dir.inode().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    permission::may_search(&t.creds, &dir)?;
    if name == b"." || name == b".." {
        return Err(Errno::EADDRINUSE);
    }
    match dir.child(name) {
        Ok(_) => return Err(Errno::EADDRINUSE),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if dir.read_only() {
        return Err(Errno::EROFS);
    }
    permission::check(
        &t.creds,
        Ids::Fs,
        &dir.inode().stat()?,
        permission::MAY_WRITE | permission::MAY_EXEC,
    )?;
    let mode = S_IFSOCK | (0o777 & !t.fs().umask);
    let inode = dir
        .inode()
        .mknod(name, mode, 0, t.creds.fsuid, t.creds.fsgid)?;
    let st = inode.stat()?;
    Ok((st.st_dev, st.st_ino))
}

/// bind(2): a path (a new socket node), an abstract name, or (family only) autobind.
pub fn bind(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::bind(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    let req = read_addr(t, a[1], a[2] as u32)?;
    if s.local_addr().is_some() {
        return Err(Errno::EINVAL);
    }
    let (addr, reg) = match req {
        Requested::Unnamed => {
            autobind(&s)?;
            return Ok(0);
        }
        Requested::Named(Addr::Abstract(n)) => {
            names::bind_abstract(&n, &s)?;
            (Addr::Abstract(n.clone()), Registration::Abstract(n))
        }
        Requested::Named(Addr::Path(p)) => {
            let (dev, ino) = make_node(t, &p)?;
            let reg = Registration::Node(dev, ino);
            names::bind_node(dev, ino, &s);
            (Addr::Path(p), reg)
        }
    };
    if let Err(e) = s.set_addr(addr, reg.clone()) {
        names::unregister(&reg, Arc::as_ptr(&s));
        return Err(e);
    }
    Ok(0)
}

/// connect(2): a stream or seqpacket socket connects to a listener (blocking while its
/// backlog is full unless non-blocking); a datagram socket sets its default destination
/// (AF_UNSPEC dissolves it).
pub fn connect(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::connect(t, &f, a);
    }
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let len = a[2] as u32;
    if s.sock_type() == SockType::Dgram && len >= 2 && t.read_obj::<u16>(a[1])? == AF_UNSPEC as u16
    {
        s.disconnect_dgram();
        return Ok(0);
    }
    let addr = match read_addr(t, a[1], len)? {
        Requested::Unnamed => return Err(Errno::EINVAL),
        Requested::Named(addr) => addr,
    };
    if s.sock_type() != SockType::Dgram && s.is_connected() {
        return Err(Errno::EISCONN);
    }
    let target = lookup_bound(t, &addr)?;
    if target.sock_type() != s.sock_type() {
        return Err(Errno::EPROTOTYPE);
    }
    if s.passcred() {
        autobind(&s)?;
    }
    if s.sock_type() == SockType::Dgram {
        s.connect_dgram(&target);
        return Ok(0);
    }
    s.connect_to(&target, f.flags() & O_NONBLOCK != 0, creator(t))?;
    Ok(0)
}

/// listen(2): a bound stream or seqpacket socket (EINVAL unbound, EOPNOTSUPP datagram).
pub fn listen(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::listen(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    s.listen(a[1] as i32, creator(t))?;
    Ok(0)
}

/// accept4(2): SOCK_NONBLOCK and SOCK_CLOEXEC apply to the new socket.
pub fn accept4(t: &mut Task, a: &Args) -> SysResult {
    let flags = a[3] as i32;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(f) = net::net_file(t, a[0])? {
        return net::accept4(t, &f, a);
    }
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    if s.sock_type() == SockType::Dgram {
        return Err(Errno::EOPNOTSUPP);
    }
    let conn = s.accept(f.flags() & O_NONBLOCK != 0)?;
    let peer = conn.peer_addr().ok().flatten();
    let fd = t.install_fd(description(conn, flags), flags & SOCK_CLOEXEC != 0)?;
    if a[1] != 0 {
        if let Err(e) = put_addr(t, a[1], a[2], peer.as_ref()) {
            let _ = t.fds().remove(fd);
            return Err(e);
        }
    }
    Ok(fd as u64)
}

/// accept(2).
pub fn accept(t: &mut Task, a: &Args) -> SysResult {
    let a4 = [a[0], a[1], a[2], 0, 0, 0];
    accept4(t, &a4)
}

/// getsockname(2): the bound name (just the family when unbound).
pub fn getsockname(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::getsockname(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    put_addr(t, a[1], a[2], s.local_addr().as_ref())?;
    Ok(0)
}

/// getpeername(2): the peer's name (ENOTCONN without a peer).
pub fn getpeername(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::getpeername(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    let peer = s.peer_addr()?;
    put_addr(t, a[1], a[2], peer.as_ref())?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// Sending and receiving

/// Sends `buf` on `s` (to `to` for an unconnected datagram socket): streams in chunks (a
/// short step ends the send; the first chunk carries the files), messages whole. Raises
/// SIGPIPE on EPIPE for streams unless MSG_NOSIGNAL.
fn do_send(
    t: &Task,
    f: &FileDescription,
    s: &UnixSocket,
    buf: &GuestBuf,
    flags: u32,
    anc: Ancillary,
    to: Option<&Arc<UnixSocket>>,
) -> SysResult {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.flags() & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let total = buf.len();
    let r = if s.sock_type() == SockType::Stream {
        let mut done = 0usize;
        let mut anc = Some(anc);
        loop {
            let want = (total - done).min(IO_CHUNK);
            let data = match buf.gather(t, done, want) {
                Ok(d) => d,
                Err(e) if done == 0 => break Err(e),
                Err(_) => break Ok(done as u64),
            };
            let a = anc.take().unwrap_or_else(|| Ancillary {
                files: Vec::new(),
                cred: sender(t),
            });
            let cred = a.cred;
            match s.send(&data, nonblock, a, None) {
                Ok(n) => {
                    done += n;
                    if n < want || done == total {
                        break Ok(done as u64);
                    }
                }
                Err(e) if done == 0 => break Err(e),
                Err(_) => break Ok(done as u64),
            }
            anc = Some(Ancillary {
                files: Vec::new(),
                cred,
            });
        }
    } else {
        if total > s.max_message() {
            return Err(Errno::EMSGSIZE);
        }
        let data = buf.gather(t, 0, total)?;
        s.send(&data, nonblock, anc, to).map(|n| n as u64)
    };
    if r == Err(Errno::EPIPE) && flags & MSG_NOSIGNAL == 0 && s.sock_type() == SockType::Stream {
        send_to_thread(
            &t.kernel,
            &t.handle,
            SignalInfo::user(SIGPIPE, 0, t.tgid(), t.creds.uid),
            false,
        );
    }
    r
}

/// Receives into `buf`: (what arrived, the value the syscall returns).
fn do_recv(
    t: &Task,
    f: &FileDescription,
    s: &UnixSocket,
    buf: &GuestBuf,
    flags: u32,
) -> Result<(Received, u64), Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.flags() & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let peek = flags & MSG_PEEK != 0;
    let total = buf.len();
    if s.sock_type() == SockType::Stream {
        let waitall = flags & MSG_WAITALL != 0;
        let mut out = Received::default();
        loop {
            let done = out.copied;
            let want = (total - done).min(IO_CHUNK);
            let mut data = vec![0u8; want];
            // Later chunks of MSG_WAITALL continue after data already returned.
            let r = match s.recv(&mut data, nonblock || done > 0 && !waitall, peek, waitall) {
                Ok(r) => r,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            if let Err(e) = buf.scatter(t, done, &data[..r.copied]) {
                if done == 0 {
                    return Err(e);
                }
                break;
            }
            out.copied += r.copied;
            out.cred = out.cred.or(r.cred);
            let got_files = !r.files.is_empty();
            out.files.extend(r.files);
            if !waitall || peek || got_files || r.copied < want || out.copied == total {
                break;
            }
        }
        out.full = out.copied;
        let ret = out.copied as u64;
        Ok((out, ret))
    } else {
        // A message never exceeds SO_SNDBUF, far below the bounce buffer's size.
        let mut data = vec![0u8; total.min(IO_CHUNK)];
        let r = s.recv(&mut data, nonblock, peek, false)?;
        buf.scatter(t, 0, &data[..r.copied])?;
        let ret = if flags & MSG_TRUNC != 0 {
            r.full
        } else {
            r.copied
        };
        Ok((r, ret as u64))
    }
}

/// The destination of a send with an address: `None` uses the connection. Stream
/// sockets refuse an address (EISCONN connected, EOPNOTSUPP otherwise); seqpacket
/// sockets ignore it.
fn send_target(
    t: &Task,
    s: &Arc<UnixSocket>,
    addr: u64,
    len: u32,
) -> Result<Option<Arc<UnixSocket>>, Errno> {
    if addr == 0 || len == 0 {
        return Ok(None);
    }
    if len > SOCKADDR_STORAGE {
        return Err(Errno::EINVAL);
    }
    match s.sock_type() {
        SockType::Stream => Err(if s.is_connected() {
            Errno::EISCONN
        } else {
            Errno::EOPNOTSUPP
        }),
        SockType::SeqPacket => Ok(None),
        SockType::Dgram => {
            let addr = match read_addr(t, addr, len)? {
                Requested::Unnamed => return Err(Errno::EINVAL),
                Requested::Named(a) => a,
            };
            let target = lookup_bound(t, &addr)?;
            if target.sock_type() != SockType::Dgram {
                return Err(Errno::EPROTOTYPE);
            }
            Ok(Some(target))
        }
    }
}

/// sendto(2).
pub fn sendto(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::sendto(t, &f, a);
    }
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let to = send_target(t, &s, a[4], a[5] as u32)?;
    if s.passcred() && s.sock_type() == SockType::Dgram {
        autobind(&s)?;
    }
    let anc = Ancillary {
        files: Vec::new(),
        cred: sender(t),
    };
    do_send(
        t,
        &f,
        &s,
        &GuestBuf::single(a[1], a[2]),
        a[3] as u32,
        anc,
        to.as_ref(),
    )
}

/// recvfrom(2): MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC. Files passed along are
/// closed.
pub fn recvfrom(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::recvfrom(t, &f, a);
    }
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let (r, ret) = do_recv(t, &f, &s, &GuestBuf::single(a[1], a[2]), a[3] as u32)?;
    let from = sender_name(&s, &r);
    put_from(t, a[4], a[5], from.as_ref())?;
    Ok(ret)
}

/// The name a receive reports: the datagram's sender, or a stream's peer.
fn sender_name(s: &UnixSocket, r: &Received) -> Option<Addr> {
    match s.sock_type() {
        SockType::Dgram => r.from.clone(),
        _ => s.peer_addr().ok().flatten(),
    }
}

/// shutdown(2).
pub fn shutdown(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::shutdown(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    s.shutdown(a[1] as i32)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// Options

/// Writes an option value truncated to the caller's length, then the length.
fn put_opt(t: &Task, optval: u64, optlen: u64, len: i32, bytes: &[u8]) -> SysResult {
    let n = (len as usize).min(bytes.len());
    t.mm.copy_out(optval, &bytes[..n])?;
    t.write_obj(optlen, &(n as i32))?;
    Ok(0)
}

fn timeval_of(d: Option<Duration>) -> [u8; 16] {
    let (sec, usec) = d.map_or((0i64, 0i64), |d| {
        (d.as_secs() as i64, d.subsec_micros() as i64)
    });
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&sec.to_le_bytes());
    out[8..].copy_from_slice(&usec.to_le_bytes());
    out
}

/// getsockopt(2): SOL_SOCKET options.
pub fn getsockopt(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::getsockopt(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    let (level, opt, optval, optlen) = (a[1] as i32, a[2] as i32, a[3], a[4]);
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let len: i32 = t.read_obj(optlen)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let int = |v: i32| v.to_le_bytes();
    let (sndbuf, rcvbuf) = s.buffers();
    let bytes: Vec<u8> = match opt {
        SO_TYPE => int(s.sock_type().number()).to_vec(),
        SO_ERROR => int(s.take_error().map_or(0, |e| e.0)).to_vec(),
        SO_DOMAIN => int(AF_UNIX).to_vec(),
        SO_ACCEPTCONN => int(s.is_listening() as i32).to_vec(),
        SO_PROTOCOL | SO_DEBUG => int(0).to_vec(),
        SO_SNDBUF => int(sndbuf as i32).to_vec(),
        SO_RCVBUF => int(rcvbuf as i32).to_vec(),
        SO_PASSCRED => int(s.passcred() as i32).to_vec(),
        SO_PEERCRED => {
            let c = s.peer_cred();
            let mut v = Vec::with_capacity(UCRED_SIZE);
            v.extend_from_slice(&c.pid.to_le_bytes());
            v.extend_from_slice(&c.uid.to_le_bytes());
            v.extend_from_slice(&c.gid.to_le_bytes());
            v
        }
        SO_RCVTIMEO => timeval_of(s.timeout(true)).to_vec(),
        SO_SNDTIMEO => timeval_of(s.timeout(false)).to_vec(),
        o if BOOL_OPTS.contains(&o) => int(s.bool_opt(o) as i32).to_vec(),
        _ => return Err(Errno::ENOPROTOOPT),
    };
    put_opt(t, optval, optlen, len, &bytes)
}

/// setsockopt(2): SO_SNDBUF, SO_RCVBUF, SO_RCVTIMEO, SO_SNDTIMEO, SO_PASSCRED and a few
/// flags that change nothing for AF_UNIX.
pub fn setsockopt(t: &mut Task, a: &Args) -> SysResult {
    if let Some(f) = net::net_file(t, a[0])? {
        return net::setsockopt(t, &f, a);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    let (level, opt, optval, optlen) = (a[1] as i32, a[2] as i32, a[3], a[4] as i32);
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    if optlen < 0 {
        return Err(Errno::EINVAL);
    }
    if opt == SO_RCVTIMEO || opt == SO_SNDTIMEO {
        if optlen < 16 {
            return Err(Errno::EINVAL);
        }
        let tv: Timeval = t.read_obj(optval)?;
        if !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EDOM);
        }
        let d = match (tv.tv_sec, tv.tv_usec) {
            (0, 0) => None,
            (s, _) if s < 0 => Some(Duration::ZERO),
            (s, u) => Some(Duration::from_secs(s as u64) + Duration::from_micros(u as u64)),
        };
        s.set_timeout(opt == SO_RCVTIMEO, d);
        return Ok(0);
    }
    if optlen < 4 {
        return Err(Errno::EINVAL);
    }
    let v: i32 = t.read_obj(optval)?;
    match opt {
        SO_SNDBUF => s.set_sndbuf(v),
        SO_RCVBUF => s.set_rcvbuf(v),
        SO_PASSCRED => s.set_passcred(v != 0),
        SO_DEBUG if v != 0 => return Err(Errno::EACCES),
        SO_DEBUG => {}
        o if BOOL_OPTS.contains(&o) => s.set_bool_opt(o, v != 0),
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}
