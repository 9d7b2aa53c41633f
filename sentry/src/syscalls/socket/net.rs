//! The socket syscalls on IP and netlink sockets: guest memory (addresses, iovecs, control
//! buffers, option values) is copied here and handed to the socket's [`NetSocket`]
//! methods as byte slices. Also sendmmsg(2)/recvmmsg(2) for every kind of socket.

use std::sync::Arc;

use rvisor_syscalls::flags::capability::CAP_NET_RAW;
use rvisor_syscalls::flags::open::{O_NONBLOCK, O_RDWR};
use rvisor_syscalls::flags::signal::SIGPIPE;
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::Errno;

use super::msg::read_msghdr;
use super::{fd_arg, put_opt, GuestBuf, IO_CHUNK, MAX_CONTROL, SOCK_CLOEXEC, SOCK_NONBLOCK};
use crate::kernel::signal::{send_to_thread, SignalInfo};
use crate::kernel::Task;
use crate::net::{Cmsg, NetSocket};
use crate::syscalls::{Args, SysResult};
use crate::vfs::file::FileImpl;
use crate::vfs::FileDescription;

/// Largest option value setsockopt copies in (Linux bounds each option far below this).
const MAX_OPTLEN: usize = 64 * 1024;

/// The file behind `fd` if it is an IP or netlink socket (EBADF for a bad fd).
pub(super) fn net_file(t: &Task, fd: u64) -> Result<Option<Arc<FileDescription>>, Errno> {
    let f = t.file(fd_arg(fd))?;
    Ok(f.imp().as_net_socket().is_some().then_some(f))
}

fn sock(f: &FileDescription) -> Result<&dyn NetSocket, Errno> {
    f.imp().as_net_socket().ok_or(Errno::ENOTSOCK)
}

fn nonblocking(f: &FileDescription, flags: u32) -> bool {
    f.flags() & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0
}

/// socket(2) for AF_INET, AF_INET6 and AF_NETLINK; `ty` still carries the SOCK_* flags.
pub(super) fn socket(t: &mut Task, domain: i32, ty: i32, protocol: i32) -> SysResult {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let base = ty & SOCK_TYPE_MASK;
    let imp: Arc<dyn FileImpl> = match domain {
        AF_NETLINK => crate::net::netlink::socket(base, protocol)?,
        _ => {
            let net = t.kernel.network().ok_or(Errno::EAFNOSUPPORT)?.clone();
            net.socket(domain, base, protocol, t.creds.capable(CAP_NET_RAW))?
        }
    };
    let file = FileDescription::new(imp, None, O_RDWR | (flags as u32 & O_NONBLOCK));
    Ok(t.install_fd(file, flags & SOCK_CLOEXEC != 0)? as u64)
}

/// Copies a guest sockaddr of `len` bytes (EINVAL beyond sockaddr_storage or negative).
fn read_sockaddr(t: &Task, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = len as u32;
    if len > SOCKADDR_STORAGE || (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm.copy_in(addr, &mut raw)?;
    Ok(raw)
}

/// Writes an address to a guest `sockaddr` whose size is at `*lenp`, truncated to it, and
/// stores the full length (Linux's `move_addr_to_user`).
fn put_name(t: &Task, addr: u64, lenp: u64, name: &[u8]) -> Result<(), Errno> {
    let len: i32 = t.read_obj(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize).min(name.len());
    if n > 0 {
        t.mm.copy_out(addr, &name[..n])?;
    }
    t.write_obj(lenp, &(name.len() as i32))
}

pub(super) fn bind(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let raw = read_sockaddr(t, a[1], a[2])?;
    sock(f)?.bind(&raw)?;
    Ok(0)
}

pub(super) fn connect(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let raw = read_sockaddr(t, a[1], a[2])?;
    sock(f)?.connect(&raw, f.flags() & O_NONBLOCK != 0)?;
    Ok(0)
}

pub(super) fn listen(_t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    sock(f)?.listen(a[1] as i32)?;
    Ok(0)
}

pub(super) fn accept4(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let flags = a[3] as i32;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (imp, peer) = sock(f)?.accept(f.flags() & O_NONBLOCK != 0)?;
    let file = FileDescription::new(imp, None, O_RDWR | (flags as u32 & O_NONBLOCK));
    let fd = t.install_fd(file, flags & SOCK_CLOEXEC != 0)?;
    if a[1] != 0 {
        if let Err(e) = put_name(t, a[1], a[2], &peer) {
            let _ = t.fds().remove(fd);
            return Err(e);
        }
    }
    Ok(fd as u64)
}

pub(super) fn getsockname(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let name = sock(f)?.local_name()?;
    put_name(t, a[1], a[2], &name)?;
    Ok(0)
}

pub(super) fn getpeername(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let name = sock(f)?.peer_name()?;
    put_name(t, a[1], a[2], &name)?;
    Ok(0)
}

pub(super) fn shutdown(_t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let how = a[1] as i32;
    if !(0..=2).contains(&how) {
        return Err(Errno::EINVAL);
    }
    sock(f)?.shutdown(how)?;
    Ok(0)
}

/// Sends the bytes of `buf`: a stream in steps of at most IO_CHUNK (a short step ends the
/// send), a message whole. SIGPIPE on EPIPE for streams unless MSG_NOSIGNAL.
fn do_send(t: &Task, f: &FileDescription, buf: &GuestBuf, to: Option<&[u8]>, control: &[Cmsg], flags: u32) -> SysResult {
    let s = sock(f)?;
    let nonblock = nonblocking(f, flags);
    let total = buf.len();
    let r = if s.sock_type() == SOCK_STREAM {
        let mut done = 0usize;
        loop {
            let want = (total - done).min(IO_CHUNK);
            let data = match buf.gather(t, done, want) {
                Ok(d) => d,
                Err(e) if done == 0 => break Err(e),
                Err(_) => break Ok(done as u64),
            };
            let ctl = if done == 0 { control } else { &[] };
            match s.send(&data, to, ctl, flags, nonblock) {
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
        if total > IO_CHUNK {
            return Err(Errno::EMSGSIZE);
        }
        let data = buf.gather(t, 0, total)?;
        s.send(&data, to, control, flags, nonblock).map(|n| n as u64)
    };
    if r == Err(Errno::EPIPE) && flags & MSG_NOSIGNAL == 0 && s.sock_type() == SOCK_STREAM {
        send_to_thread(&t.kernel, &t.handle, SignalInfo::user(SIGPIPE, 0, t.tgid(), t.creds.uid), false);
    }
    r
}

/// Receives into `buf`: what arrived (its `len` is the total copied) and the value the
/// syscall returns (the full datagram length with MSG_TRUNC).
fn do_recv(t: &Task, f: &FileDescription, buf: &GuestBuf, flags: u32) -> Result<(crate::net::Received, u64), Errno> {
    let s = sock(f)?;
    let nonblock = nonblocking(f, flags);
    let total = buf.len();
    if s.sock_type() == SOCK_STREAM {
        let waitall = flags & MSG_WAITALL != 0 && flags & MSG_PEEK == 0;
        let mut out = crate::net::Received::default();
        loop {
            let done = out.len;
            let want = (total - done).min(IO_CHUNK);
            let mut data = vec![0u8; want];
            // Later steps must not block past data already received unless MSG_WAITALL.
            let r = match s.recv(&mut data, flags, nonblock || (done > 0 && !waitall)) {
                Ok(r) => r,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            if let Err(e) = buf.scatter(t, done, &data[..r.len.min(want)]) {
                if done == 0 {
                    return Err(e);
                }
                break;
            }
            out.len += r.len.min(want);
            if out.control.is_empty() {
                out.control = r.control;
            }
            if r.len == 0 || r.len < want && !waitall || out.len == total || flags & MSG_PEEK != 0 {
                break;
            }
        }
        out.full = out.len;
        let ret = out.len as u64;
        Ok((out, ret))
    } else {
        let mut data = vec![0u8; total.min(IO_CHUNK)];
        let r = s.recv(&mut data, flags, nonblock)?;
        let n = r.len.min(data.len());
        buf.scatter(t, 0, &data[..n])?;
        let ret = if flags & MSG_TRUNC != 0 { r.full } else { n };
        Ok((r, ret as u64))
    }
}

pub(super) fn sendto(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let to = if a[4] != 0 && a[5] != 0 { Some(read_sockaddr(t, a[4], a[5])?) } else { None };
    do_send(t, f, &GuestBuf::single(a[1], a[2]), to.as_deref(), &[], a[3] as u32)
}

pub(super) fn recvfrom(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let (r, ret) = do_recv(t, f, &GuestBuf::single(a[1], a[2]), a[3] as u32)?;
    if a[4] != 0 && a[5] != 0 {
        put_name(t, a[4], a[5], r.from.as_deref().unwrap_or(&[]))?;
    }
    Ok(ret)
}

/// Splits a guest control buffer into messages (EINVAL for a malformed header).
fn parse_control(t: &Task, control: u64, len: u64) -> Result<Vec<Cmsg>, Errno> {
    if control == 0 || (len as usize) < CMSGHDR_SIZE {
        return Ok(Vec::new());
    }
    if len > MAX_CONTROL {
        return Err(Errno::ENOBUFS);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm.copy_in(control, &mut raw)?;
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + CMSGHDR_SIZE <= raw.len() {
        let h = &raw[off..off + CMSGHDR_SIZE];
        let clen = u64::from_le_bytes(h[..8].try_into().map_err(|_| Errno::EINVAL)?) as usize;
        let level = i32::from_le_bytes(h[8..12].try_into().map_err(|_| Errno::EINVAL)?);
        let ty = i32::from_le_bytes(h[12..16].try_into().map_err(|_| Errno::EINVAL)?);
        if clen < CMSGHDR_SIZE || clen > raw.len() - off {
            return Err(Errno::EINVAL);
        }
        out.push(Cmsg { level, ty, data: raw[off + CMSGHDR_SIZE..off + clen].to_vec() });
        off += cmsg_align(clen).min(raw.len() - off);
    }
    Ok(out)
}

/// Writes control messages into a guest buffer of `cap` bytes; returns (bytes used,
/// whether some did not fit: MSG_CTRUNC).
fn put_control(t: &Task, addr: u64, cap: usize, msgs: &[Cmsg]) -> Result<(usize, bool), Errno> {
    let mut used = 0usize;
    let mut truncated = false;
    for m in msgs {
        let left = cap - used;
        if addr == 0 || left < CMSGHDR_SIZE {
            truncated = true;
            break;
        }
        let mut len = CMSGHDR_SIZE + m.data.len();
        if len > left {
            truncated = true;
            len = left;
        }
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(&(len as u64).to_le_bytes());
        v.extend_from_slice(&m.level.to_le_bytes());
        v.extend_from_slice(&m.ty.to_le_bytes());
        v.extend_from_slice(&m.data[..len - CMSGHDR_SIZE]);
        t.mm.copy_out(addr + used as u64, &v)?;
        used += cmsg_align(len).min(cap - used);
    }
    Ok((used, truncated))
}

/// sendmsg(2) on an IP or netlink socket, the msghdr at `hdr`.
pub(super) fn sendmsg_at(t: &Task, f: &FileDescription, hdr: u64, flags: u32) -> SysResult {
    let m = read_msghdr(t, hdr)?;
    if m.controllen > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let buf = GuestBuf::iovecs(t, m.iov, m.iovlen)?;
    let to = if m.name != 0 && m.namelen != 0 { Some(read_sockaddr(t, m.name, m.namelen as u64)?) } else { None };
    let control = parse_control(t, m.control, m.controllen)?;
    do_send(t, f, &buf, to.as_deref(), &control, flags)
}

/// recvmsg(2) on an IP or netlink socket, the msghdr at `hdr`.
pub(super) fn recvmsg_at(t: &Task, f: &FileDescription, hdr: u64, flags: u32) -> SysResult {
    let m = read_msghdr(t, hdr)?;
    let buf = GuestBuf::iovecs(t, m.iov, m.iovlen)?;
    let (r, ret) = do_recv(t, f, &buf, flags)?;
    let mut out_flags = if r.full > r.len { MSG_TRUNC } else { 0 };
    let (used, ctrunc) = put_control(t, m.control, (m.controllen as usize).min(i32::MAX as usize), &r.control)?;
    if ctrunc {
        out_flags |= MSG_CTRUNC;
    }
    if m.name != 0 {
        let name = r.from.as_deref().unwrap_or(&[]);
        let n = (m.namelen as usize).min(name.len());
        if n > 0 {
            t.mm.copy_out(m.name, &name[..n])?;
        }
        t.write_obj(hdr + 8, &(name.len() as u32))?;
    }
    t.write_obj(hdr + 40, &(used as u64))?;
    t.write_obj(hdr + 48, &(out_flags as i32))?;
    Ok(ret)
}

pub(super) fn getsockopt(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let len: i32 = t.read_obj(a[4])?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let v = sock(f)?.getsockopt(a[1] as i32, a[2] as i32, len as usize)?;
    put_opt(t, a[3], a[4], len, &v)
}

pub(super) fn setsockopt(t: &mut Task, f: &FileDescription, a: &Args) -> SysResult {
    let len = a[4] as i32;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let mut v = vec![0u8; (len as usize).min(MAX_OPTLEN)];
    if !v.is_empty() {
        t.mm.copy_in(a[3], &mut v)?;
    }
    sock(f)?.setsockopt(a[1] as i32, a[2] as i32, &v)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// sendmmsg / recvmmsg, for every kind of socket

/// Most messages one sendmmsg/recvmmsg handles (Linux's UIO_MAXIOV).
const MMSG_MAX: u64 = 1024;

/// sendmmsg(2): sends each message in turn, storing its length in `msg_len`; stops at the
/// first error (returned only if nothing was sent).
pub fn sendmmsg(t: &mut Task, a: &Args) -> SysResult {
    let (fd, vec, vlen, flags) = (a[0], a[1], a[2].min(MMSG_MAX), a[3] as u32);
    let mut sent = 0u64;
    while sent < vlen {
        let hdr = vec + sent * MMSGHDR_SIZE as u64;
        let r = match net_file(t, fd)? {
            Some(f) => sendmsg_at(t, &f, hdr, flags),
            None => super::sendmsg(t, &[fd, hdr, flags as u64, 0, 0, 0]),
        };
        match r {
            Ok(n) => {
                t.write_obj(hdr + MSGHDR_SIZE as u64, &(n as u32))?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// recvmmsg(2): MSG_WAITFORONE makes every receive after the first non-blocking; the
/// timeout is checked after each message (as Linux, it does not interrupt a blocked one).
pub fn recvmmsg(t: &mut Task, a: &Args) -> SysResult {
    let (fd, vec, vlen, flags, tsp) = (a[0], a[1], a[2].min(MMSG_MAX), a[3] as u32, a[4]);
    let deadline = if tsp != 0 {
        let ts: rvisor_syscalls::types::Timespec = t.read_obj(tsp)?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(std::time::Instant::now() + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    let mut got = 0u64;
    while got < vlen {
        let hdr = vec + got * MMSGHDR_SIZE as u64;
        let fl = if got > 0 && flags & MSG_WAITFORONE != 0 { flags | MSG_DONTWAIT } else { flags };
        let r = match net_file(t, fd)? {
            Some(f) => recvmsg_at(t, &f, hdr, fl & !MSG_WAITFORONE),
            None => super::recvmsg(t, &[fd, hdr, (fl & !MSG_WAITFORONE) as u64, 0, 0, 0]),
        };
        match r {
            Ok(n) => {
                t.write_obj(hdr + MSGHDR_SIZE as u64, &(n as u32))?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
    }
    Ok(got)
}
