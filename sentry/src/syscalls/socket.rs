//! Socket syscalls. Only AF_UNIX exists: socketpair(2) gives connected pairs (see
//! `vfs::unix`); socket(2) gives unconnected AF_UNIX sockets, which cannot be bound or
//! connected yet (bind: EOPNOTSUPP; connect: ECONNREFUSED, as if nothing listened);
//! other families fail with EAFNOSUPPORT (no network).
//!
//! Not supported yet: ancillary data (SCM_RIGHTS, SCM_CREDENTIALS): sendmsg with a control
//! message fails with EOPNOTSUPP, recvmsg always reports `msg_controllen = 0`; MSG_OOB
//! (EOPNOTSUPP, as Linux before 5.15); sending to an address on a datagram socket
//! (ECONNREFUSED). SIGPIPE: send/sendto/sendmsg raise it on EPIPE for SOCK_STREAM unless
//! MSG_NOSIGNAL, like Linux; write(2) raises it on any EPIPE (also for SOCK_SEQPACKET and
//! SOCK_DGRAM, where Linux does not).

use std::sync::Arc;
use std::time::Duration;

use rvisor_syscalls::flags::limits::{IOV_MAX, MAX_RW_COUNT};
use rvisor_syscalls::flags::open::{O_CLOEXEC, O_NONBLOCK, O_RDWR};
use rvisor_syscalls::flags::signal::SIGPIPE;
use rvisor_syscalls::types::Timeval;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::signal::{send_to_thread, SignalInfo};
use crate::kernel::Task;
use crate::vfs::unix::{as_unix, PeerCred, SockType, UnixSocket};
use crate::vfs::FileDescription;

// Guest ABI constants (to move into `rvisor_syscalls::flags` with the socket types).
const AF_UNIX: i32 = 1;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const AF_MAX: i32 = 46;
const SOCK_STREAM: i32 = 1;
const SOCK_DGRAM: i32 = 2;
const SOCK_RAW: i32 = 3;
const SOCK_SEQPACKET: i32 = 5;
const SOCK_MAX: i32 = 11;
const SOCK_TYPE_MASK: i32 = 0xf;
const SOCK_NONBLOCK: i32 = O_NONBLOCK as i32;
const SOCK_CLOEXEC: i32 = O_CLOEXEC as i32;

const MSG_OOB: u32 = 0x1;
const MSG_PEEK: u32 = 0x2;
const MSG_TRUNC: u32 = 0x20;
const MSG_DONTWAIT: u32 = 0x40;
const MSG_WAITALL: u32 = 0x100;
const MSG_NOSIGNAL: u32 = 0x4000;

const SOL_SOCKET: i32 = 1;
const SO_DEBUG: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_DONTROUTE: i32 = 5;
const SO_BROADCAST: i32 = 6;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_OOBINLINE: i32 = 10;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
const SO_RCVTIMEO: i32 = 20;
const SO_SNDTIMEO: i32 = 21;
const SO_ACCEPTCONN: i32 = 30;
const SO_PASSSEC: i32 = 34;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;
/// Options stored and reported but without effect on AF_UNIX.
const BOOL_OPTS: [i32; 7] = [SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE, SO_PASSCRED, SO_PASSSEC];

/// `sizeof(struct sockaddr_storage)`.
const SOCKADDR_STORAGE: u32 = 128;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN: u32 = 110;
/// `sizeof(struct msghdr)` on x86_64.
const MSGHDR_SIZE: usize = 56;
/// `sizeof(struct cmsghdr)`: a control buffer at least this long holds a message.
const CMSGHDR_SIZE: u64 = 16;
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
        return Err(if pair && (domain == AF_INET || domain == AF_INET6) { Errno::EOPNOTSUPP } else { Errno::EAFNOSUPPORT });
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
    PeerCred { pid: t.tgid(), uid: t.creds.euid, gid: t.creds.egid }
}

fn description(s: Arc<UnixSocket>, flags: i32) -> Arc<FileDescription> {
    FileDescription::new(s, None, O_RDWR | (flags as u32 & O_NONBLOCK))
}

/// socket(2): AF_UNIX only (unconnected; see the module notes).
pub fn socket(t: &mut Task, a: &Args) -> SysResult {
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
// Sending and receiving

/// Sends `buf` on `s`: streams in chunks (a short step ends the send), messages whole.
/// Raises SIGPIPE on EPIPE for streams unless MSG_NOSIGNAL.
fn do_send(t: &Task, f: &FileDescription, s: &UnixSocket, buf: &GuestBuf, flags: u32) -> SysResult {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.flags() & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let total = buf.len();
    let r = if s.sock_type() == SockType::Stream {
        let mut done = 0usize;
        loop {
            let want = (total - done).min(IO_CHUNK);
            let data = match buf.gather(t, done, want) {
                Ok(d) => d,
                Err(e) if done == 0 => break Err(e),
                Err(_) => break Ok(done as u64),
            };
            match s.send(&data, nonblock) {
                Ok(n) => {
                    done += n;
                    if n < want || done == total {
                        break Ok(done as u64);
                    }
                }
                Err(e) if done == 0 => break Err(e),
                Err(_) => break Ok(done as u64),
            }
        }
    } else {
        if total > s.max_message() {
            return Err(Errno::EMSGSIZE);
        }
        let data = buf.gather(t, 0, total)?;
        s.send(&data, nonblock).map(|n| n as u64)
    };
    if r == Err(Errno::EPIPE) && flags & MSG_NOSIGNAL == 0 && s.sock_type() == SockType::Stream {
        send_to_thread(&t.kernel, &t.handle, SignalInfo::user(SIGPIPE, 0, t.tgid(), t.creds.uid), false);
    }
    r
}

/// Receives into `buf`: (bytes copied, whether a message was truncated, the value the
/// syscall returns).
fn do_recv(t: &Task, f: &FileDescription, s: &UnixSocket, buf: &GuestBuf, flags: u32) -> Result<(usize, bool, u64), Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.flags() & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0;
    let peek = flags & MSG_PEEK != 0;
    let total = buf.len();
    if s.sock_type() == SockType::Stream {
        let waitall = flags & MSG_WAITALL != 0;
        let mut done = 0usize;
        loop {
            let want = (total - done).min(IO_CHUNK);
            let mut data = vec![0u8; want];
            // Later chunks of MSG_WAITALL continue after data already returned.
            let r = match s.recv(&mut data, nonblock, peek, waitall) {
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
            done += r.copied;
            if !waitall || peek || r.copied < want || done == total {
                break;
            }
        }
        Ok((done, false, done as u64))
    } else {
        // A message never exceeds SO_SNDBUF, far below the bounce buffer's size.
        let mut data = vec![0u8; total.min(IO_CHUNK)];
        let r = s.recv(&mut data, nonblock, peek, false)?;
        buf.scatter(t, 0, &data[..r.copied])?;
        let ret = if flags & MSG_TRUNC != 0 { r.full } else { r.copied };
        Ok((r.copied, r.truncated(), ret as u64))
    }
}

/// Checks a destination address given to a send on a connected socket.
fn check_dest(t: &Task, s: &UnixSocket, addr: u64, len: u32) -> Result<(), Errno> {
    if addr == 0 || len == 0 {
        return Ok(());
    }
    if len > SOCKADDR_STORAGE {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm.copy_in(addr, &mut raw)?;
    match s.sock_type() {
        SockType::Stream => Err(if s.is_connected() { Errno::EISCONN } else { Errno::EOPNOTSUPP }),
        SockType::SeqPacket => Ok(()),
        // Nothing can be bound in the sandbox yet, so no address has a listener.
        SockType::Dgram => Err(if raw.len() < 2 || u16::from_le_bytes([raw[0], raw[1]]) != AF_UNIX as u16 { Errno::EINVAL } else { Errno::ECONNREFUSED }),
    }
}

/// Stores an unnamed peer address (a pair's sockets are unbound): the length becomes 0.
fn put_no_addr(t: &Task, addr: u64, lenp: u64) -> Result<(), Errno> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let len: i32 = t.read_obj(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    t.write_obj(lenp, &0i32)
}

/// sendto(2): the address must be absent for stream sockets (EISCONN).
pub fn sendto(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    check_dest(t, &s, a[4], a[5] as u32)?;
    do_send(t, &f, &s, &GuestBuf::single(a[1], a[2]), a[3] as u32)
}

/// recvfrom(2): MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC.
pub fn recvfrom(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let (_, _, ret) = do_recv(t, &f, &s, &GuestBuf::single(a[1], a[2]), a[3] as u32)?;
    put_no_addr(t, a[4], a[5])?;
    Ok(ret)
}

/// The fields of a guest `struct msghdr`.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &Task, addr: u64) -> Result<MsgHdr, Errno> {
    let mut raw = [0u8; MSGHDR_SIZE];
    t.mm.copy_in(addr, &mut raw)?;
    let u64_at = |o: usize| raw.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0);
    let name = u64_at(0);
    let namelen = u64_at(8) as u32;
    if (namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(MsgHdr {
        name,
        namelen: if name == 0 { 0 } else { namelen.min(SOCKADDR_STORAGE) },
        iov: u64_at(16),
        iovlen: u64_at(24),
        control: u64_at(32),
        controllen: u64_at(40),
    })
}

/// sendmsg(2) without ancillary data (a control message is EOPNOTSUPP).
pub fn sendmsg(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let m = read_msghdr(t, a[1])?;
    if m.controllen > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let buf = GuestBuf::iovecs(t, m.iov, m.iovlen)?;
    if m.control != 0 && m.controllen >= CMSGHDR_SIZE {
        return Err(Errno::EOPNOTSUPP);
    }
    check_dest(t, &s, m.name, m.namelen)?;
    do_send(t, &f, &s, &buf, a[2] as u32)
}

/// recvmsg(2): no ancillary data; MSG_TRUNC in msg_flags for a truncated message.
pub fn recvmsg(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, fd_arg(a[0]))?;
    let m = read_msghdr(t, a[1])?;
    let buf = GuestBuf::iovecs(t, m.iov, m.iovlen)?;
    let (_, truncated, ret) = do_recv(t, &f, &s, &buf, a[2] as u32)?;
    let _ = m.control;
    if m.name != 0 {
        t.write_obj(a[1] + 8, &0u32)?;
    }
    t.write_obj(a[1] + 40, &0u64)?;
    t.write_obj(a[1] + 48, &(if truncated { MSG_TRUNC as i32 } else { 0 }))?;
    Ok(ret)
}

/// shutdown(2).
pub fn shutdown(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    s.shutdown(a[1] as i32)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// Options and names

/// Writes an option value truncated to the caller's length, then the length.
fn put_opt(t: &Task, optval: u64, optlen: u64, len: i32, bytes: &[u8]) -> SysResult {
    let n = (len as usize).min(bytes.len());
    t.mm.copy_out(optval, &bytes[..n])?;
    t.write_obj(optlen, &(n as i32))?;
    Ok(0)
}

fn timeval_of(d: Option<Duration>) -> [u8; 16] {
    let (sec, usec) = d.map_or((0i64, 0i64), |d| (d.as_secs() as i64, d.subsec_micros() as i64));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&sec.to_le_bytes());
    out[8..].copy_from_slice(&usec.to_le_bytes());
    out
}

/// getsockopt(2): SOL_SOCKET options.
pub fn getsockopt(t: &mut Task, a: &Args) -> SysResult {
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
        SO_PROTOCOL | SO_ACCEPTCONN | SO_DEBUG => int(0).to_vec(),
        SO_SNDBUF => int(sndbuf as i32).to_vec(),
        SO_RCVBUF => int(rcvbuf as i32).to_vec(),
        SO_PEERCRED => {
            let c = s.peer_cred()?;
            let mut v = Vec::with_capacity(12);
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

/// setsockopt(2): SO_SNDBUF, SO_RCVBUF, SO_RCVTIMEO, SO_SNDTIMEO and a few flags that
/// change nothing for AF_UNIX (SO_PASSCRED is stored; credentials are not sent yet).
pub fn setsockopt(t: &mut Task, a: &Args) -> SysResult {
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
        SO_DEBUG if v != 0 => return Err(Errno::EACCES),
        SO_DEBUG => {}
        o if BOOL_OPTS.contains(&o) => s.set_bool_opt(o, v != 0),
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}

/// Writes an unnamed AF_UNIX address (just the family; length 2).
fn put_unnamed(t: &Task, addr: u64, lenp: u64) -> SysResult {
    let len: i32 = t.read_obj(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let fam = (AF_UNIX as u16).to_le_bytes();
    let n = (len as usize).min(2);
    t.mm.copy_out(addr, &fam[..n])?;
    t.write_obj(lenp, &2i32)?;
    Ok(0)
}

/// getsockname(2): sockets are never bound, so the address is unnamed.
pub fn getsockname(t: &mut Task, a: &Args) -> SysResult {
    let _ = socket_of(t, fd_arg(a[0]))?;
    put_unnamed(t, a[1], a[2])
}

/// getpeername(2): the peer of a pair is unnamed.
pub fn getpeername(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    if !s.is_connected() {
        return Err(Errno::ENOTCONN);
    }
    put_unnamed(t, a[1], a[2])
}

/// Checks a `struct sockaddr_un` argument (EINVAL, EFAULT).
fn check_unix_addr(t: &Task, addr: u64, len: u32) -> Result<(), Errno> {
    if !(2..=SOCKADDR_UN).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let fam: u16 = t.read_obj(addr)?;
    if fam != AF_UNIX as u16 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// bind(2): not supported yet (EOPNOTSUPP).
pub fn bind(t: &mut Task, a: &Args) -> SysResult {
    let _ = socket_of(t, fd_arg(a[0]))?;
    check_unix_addr(t, a[1], a[2] as u32)?;
    Err(Errno::EOPNOTSUPP)
}

/// connect(2): EISCONN on a connected stream; otherwise nothing listens (ECONNREFUSED).
pub fn connect(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    check_unix_addr(t, a[1], a[2] as u32)?;
    if s.sock_type() != SockType::Dgram && s.is_connected() {
        return Err(Errno::EISCONN);
    }
    Err(Errno::ECONNREFUSED)
}

/// listen(2): sockets cannot be bound, so EINVAL (EOPNOTSUPP for datagrams), as Linux.
pub fn listen(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    Err(if s.sock_type() == SockType::Dgram { Errno::EOPNOTSUPP } else { Errno::EINVAL })
}

/// accept(2)/accept4(2): no socket listens (EINVAL; EOPNOTSUPP for datagrams).
pub fn accept4(t: &mut Task, a: &Args) -> SysResult {
    if (a[3] as i32) & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (_, s) = socket_of(t, fd_arg(a[0]))?;
    Err(if s.sock_type() == SockType::Dgram { Errno::EOPNOTSUPP } else { Errno::EINVAL })
}

/// accept(2).
pub fn accept(t: &mut Task, a: &Args) -> SysResult {
    let a4 = [a[0], a[1], a[2], 0, 0, 0];
    accept4(t, &a4)
}
