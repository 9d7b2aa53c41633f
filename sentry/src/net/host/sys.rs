//! Thin safe wrappers over the host socket, epoll and eventfd calls `--network=host` makes.
//! Every buffer handed to the host is a sentry-owned slice of known length; guest memory
//! never reaches the host kernel. The host's errno is the guest's (same architecture).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use rvisor_syscalls::flags::socket::{AF_INET, AF_INET6, AF_UNSPEC, CMSGHDR_SIZE};
use rvisor_syscalls::Errno;

/// The errno of the host call that just failed.
fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// Runs a host call returning a count or -1, retrying on EINTR.
fn retry(mut f: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = last_errno();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// A socket address in the host's layout, built by the sentry from a parsed address.
pub struct HostAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl HostAddr {
    pub fn new(a: &SocketAddr) -> HostAddr {
        // SAFETY: sockaddr_storage is plain old data; all zeros is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match a {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo().to_be(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        HostAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    /// An AF_UNSPEC address (connect's "dissolve the association").
    pub fn unspec() -> HostAddr {
        // SAFETY: as in `new`.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        storage.ss_family = AF_UNSPEC as libc::sa_family_t;
        HostAddr {
            storage,
            len: std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        }
    }

    fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

/// The bytes of an address the host wrote (at most a sockaddr_storage).
fn addr_bytes(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Vec<u8> {
    let n = (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` is a live sockaddr_storage; `n` does not exceed its size.
    let bytes = unsafe {
        std::slice::from_raw_parts((storage as *const libc::sockaddr_storage).cast::<u8>(), n)
    };
    bytes.to_vec()
}

/// socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: no pointers; the result is checked.
    let fd = unsafe {
        libc::socket(
            domain,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn bind(fd: &OwnedFd, a: &HostAddr) -> Result<(), Errno> {
    // SAFETY: `a` points to `a.len` initialised bytes of a sockaddr the host only reads.
    retry(|| unsafe { libc::bind(fd.as_raw_fd(), a.ptr(), a.len) } as isize).map(|_| ())
}

/// connect(2); EINTR is not retried (a second connect would answer EALREADY).
pub fn connect(fd: &OwnedFd, a: &HostAddr) -> Result<(), Errno> {
    // SAFETY: as in `bind`.
    let r = unsafe { libc::connect(fd.as_raw_fd(), a.ptr(), a.len) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

pub fn listen(fd: &OwnedFd, backlog: i32) -> Result<(), Errno> {
    // SAFETY: no pointers.
    retry(|| unsafe { libc::listen(fd.as_raw_fd(), backlog) } as isize).map(|_| ())
}

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: the connection and the peer's address.
pub fn accept(fd: &OwnedFd) -> Result<(OwnedFd, Vec<u8>), Errno> {
    // SAFETY: plain old data.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let n = retry(|| {
        // SAFETY: `storage` and `len` are live locals; the host writes at most `len` bytes.
        (unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        }) as isize
    })?;
    // SAFETY: accept4 returned a new descriptor that nobody else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(n as RawFd) };
    Ok((conn, addr_bytes(&storage, len)))
}

/// getsockname(2) (`peer` false) or getpeername(2).
pub fn name(fd: &OwnedFd, peer: bool) -> Result<Vec<u8>, Errno> {
    // SAFETY: plain old data.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut storage as *mut libc::sockaddr_storage).cast();
    // SAFETY: `p` and `len` describe a live local the host writes at most `len` bytes to.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), p, &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), p, &mut len)
        }
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(addr_bytes(&storage, len))
}

pub fn shutdown(fd: &OwnedFd, how: i32) -> Result<(), Errno> {
    // SAFETY: no pointers.
    retry(|| unsafe { libc::shutdown(fd.as_raw_fd(), how) } as isize).map(|_| ())
}

/// sendmsg(2) of one buffer with an optional address and an encoded control buffer.
pub fn sendmsg(
    fd: &OwnedFd,
    data: &[u8],
    to: Option<&HostAddr>,
    control: &[u64],
    control_len: usize,
    flags: i32,
) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: plain old data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(a) = to {
        msg.msg_name = a.ptr() as *mut libc::c_void;
        msg.msg_namelen = a.len;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if control_len > 0 {
        msg.msg_control = control.as_ptr() as *mut libc::c_void;
        msg.msg_controllen = control_len.min(std::mem::size_of_val(control));
    }
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length that the
    // host only reads (`data`, the address, the control words).
    retry(|| unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) })
}

/// What one host recvmsg produced.
pub struct HostRecv {
    /// The host's return value (the full datagram length with MSG_TRUNC).
    pub ret: usize,
    pub name: Vec<u8>,
    /// The raw control buffer the host filled.
    pub control: Vec<u8>,
}

/// Size of the control buffer for one receive (room for every allow-listed message).
const CONTROL_ROOM: usize = 1024;

/// recvmsg(2) into `buf`.
pub fn recvmsg(fd: &OwnedFd, buf: &mut [u8], flags: i32) -> Result<HostRecv, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: plain old data.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut control = [0u64; CONTROL_ROOM / 8];
    // SAFETY: plain old data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_ROOM;
    // SAFETY: every pointer in `msg` refers to a live, exclusively borrowed buffer of the
    // stated length; the host writes at most that much into each.
    let ret = retry(|| unsafe {
        libc::recvmsg(fd.as_raw_fd(), &mut msg, flags | libc::MSG_CMSG_CLOEXEC)
    })?;
    let clen = msg.msg_controllen.min(CONTROL_ROOM);
    // SAFETY: `control` is a live array of CONTROL_ROOM bytes; `clen` is within it.
    let cbytes = unsafe { std::slice::from_raw_parts(control.as_ptr().cast::<u8>(), clen) };
    let name = if msg.msg_namelen > 0 {
        addr_bytes(&storage, msg.msg_namelen)
    } else {
        Vec::new()
    };
    Ok(HostRecv {
        ret,
        name,
        control: cbytes.to_vec(),
    })
}

/// getsockopt(2) with a buffer of `len` bytes: the bytes the host reported.
pub fn getsockopt(fd: &OwnedFd, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let mut l = len as libc::socklen_t;
    // SAFETY: `buf` holds `l` writable bytes; the host writes at most `l` and updates it.
    let r =
        unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, buf.as_mut_ptr().cast(), &mut l) };
    if r < 0 {
        return Err(last_errno());
    }
    buf.truncate((l as usize).min(len));
    Ok(buf)
}

/// setsockopt(2) with the value's bytes.
pub fn setsockopt(fd: &OwnedFd, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
    // SAFETY: `val` is a live slice the host only reads, `val.len()` bytes of it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val.as_ptr().cast(),
            val.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// An int-valued socket option.
pub fn getsockopt_int(fd: &OwnedFd, level: i32, name: i32) -> Result<i32, Errno> {
    let b = getsockopt(fd, level, name, 4)?;
    let mut v = [0u8; 4];
    v[..b.len().min(4)].copy_from_slice(&b[..b.len().min(4)]);
    Ok(i32::from_ne_bytes(v))
}

/// The poll(2) events of `fd` that hold now (a zero-timeout poll).
pub fn poll_now(fd: &OwnedFd, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r <= 0 {
        return 0;
    }
    p.revents
}

/// An ioctl whose result is an int the host writes.
pub fn ioctl_int(fd: &OwnedFd, req: u32) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    // SAFETY: the requests callers pass (FIONREAD, SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK) write
    // one int through the pointer, which refers to a live local.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            req as libc::Ioctl,
            &mut v as *mut libc::c_int,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(v)
}

/// SIOCGSTAMP: the time the last packet arrived (seconds, microseconds).
pub fn ioctl_stamp(fd: &OwnedFd) -> Result<(i64, i64), Errno> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: SIOCGSTAMP writes one struct timeval through the pointer (a live local).
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            rvisor_syscalls::flags::net_if::SIOCGSTAMP as libc::Ioctl,
            &mut tv as *mut libc::timeval,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok((tv.tv_sec, tv.tv_usec))
}

/// The control messages in a buffer the host filled: (level, type, data).
pub fn parse_control(raw: &[u8]) -> Vec<(i32, i32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while raw.len().saturating_sub(off) >= CMSGHDR_SIZE {
        let h = &raw[off..off + CMSGHDR_SIZE];
        let clen = u64::from_ne_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) as usize;
        let level = i32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        let ty = i32::from_ne_bytes([h[12], h[13], h[14], h[15]]);
        if clen < CMSGHDR_SIZE || clen > raw.len() - off {
            break;
        }
        out.push((level, ty, raw[off + CMSGHDR_SIZE..off + clen].to_vec()));
        off += rvisor_syscalls::flags::socket::cmsg_align(clen);
    }
    out
}

/// Encodes control messages for sendmsg: the words and the byte length.
pub fn encode_control(msgs: &[(i32, i32, &[u8])]) -> (Vec<u64>, usize) {
    use rvisor_syscalls::flags::socket::cmsg_align;
    let total: usize = msgs
        .iter()
        .map(|m| cmsg_align(CMSGHDR_SIZE + m.2.len()))
        .sum();
    let mut bytes = vec![0u8; total];
    let mut off = 0;
    for (level, ty, data) in msgs {
        let clen = CMSGHDR_SIZE + data.len();
        bytes[off..off + 8].copy_from_slice(&(clen as u64).to_ne_bytes());
        bytes[off + 8..off + 12].copy_from_slice(&level.to_ne_bytes());
        bytes[off + 12..off + 16].copy_from_slice(&ty.to_ne_bytes());
        bytes[off + CMSGHDR_SIZE..off + clen].copy_from_slice(data);
        off += cmsg_align(clen);
    }
    let words = bytes.chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_ne_bytes(w)
    });
    (words.collect(), total)
}

/// An epoll instance (close-on-exec).
pub fn epoll_create() -> Result<OwnedFd, Errno> {
    // SAFETY: no pointers.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `fd` to `ep` with `events`, tagged with `token`.
pub fn epoll_add(ep: &OwnedFd, fd: RawFd, events: u32, token: u64) -> Result<(), Errno> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a live local the host only reads.
    let r = unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// Waits for events on `ep` (no timeout): the tokens that fired.
pub fn epoll_wait(ep: &OwnedFd, out: &mut Vec<u64>) -> Result<(), Errno> {
    const N: usize = 64;
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; N];
    // SAFETY: `evs` is a live array of N events the host fills.
    let n = retry(
        || unsafe { libc::epoll_wait(ep.as_raw_fd(), evs.as_mut_ptr(), N as i32, -1) } as isize,
    )?;
    out.clear();
    out.extend(evs[..n.min(N)].iter().map(|e| e.u64));
    Ok(())
}

/// An eventfd (non-blocking, close-on-exec).
pub fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter.
pub fn eventfd_signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Blocks every signal on the calling thread (helper threads never take guest signals).
pub fn block_all_signals() {
    // SAFETY: `set` is a live local initialised by sigfillset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
