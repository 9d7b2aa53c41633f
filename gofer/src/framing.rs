//! Sending and receiving whole datagrams on the SEQPACKET socket, with file descriptors as
//! `SCM_RIGHTS`. The only unsafe code of the transport lives here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::protocol::MAX_MESSAGE;

/// Most descriptors one received message may carry before the kernel truncates the control
/// data (the protocol allows one; a few more are accepted only so they can be closed).
const MAX_RECV_FDS: usize = 8;

/// One received datagram.
#[derive(Debug)]
pub(crate) enum Received {
    /// The peer closed the connection (or sent an empty datagram, which the protocol never
    /// does).
    Eof,
    /// A message of `len` bytes is in the caller's buffer. `truncated` says it was larger
    /// than the buffer; `fds` are the descriptors that came with it, already owned (and so
    /// closed when dropped).
    Message {
        len: usize,
        truncated: bool,
        fds: Vec<OwnedFd>,
    },
}

/// Control-message buffer, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

const _: () = {
    // SAFETY: CMSG_SPACE only computes a size.
    let space =
        unsafe { libc::CMSG_SPACE((MAX_RECV_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    assert!(space <= 128);
};

/// Sends `msg` as one datagram, with `fd` as `SCM_RIGHTS` if given. Retries on EINTR.
pub(crate) fn send(sock: BorrowedFd<'_>, msg: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut cmsg = CmsgBuf([0; 128]);
    let mut iov = libc::iovec {
        iov_base: msg.as_ptr() as *mut libc::c_void,
        iov_len: msg.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        hdr.msg_control = cmsg.0.as_mut_ptr().cast();
        hdr.msg_controllen = space;
        // SAFETY: `hdr.msg_control` points at `cmsg`, aligned for cmsghdr and at least
        // `space` bytes long, so CMSG_FIRSTHDR returns a pointer to its start, and the header
        // and one fd of data written through it stay inside the buffer.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: `hdr` points at `iov` (describing `msg`, which the kernel only reads) and
        // at `cmsg`, all alive for the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &hdr, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return if n as usize == msg.len() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short datagram send",
                ))
            };
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// How long a receiver polls for a message before it blocks.
const SPIN: std::time::Duration = std::time::Duration::from_micros(60);

/// Polling only helps when the peer can run at the same time, on another CPU: with one
/// CPU it would take the peer's time.
fn spinning_pays() -> bool {
    static MULTI_CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MULTI_CPU.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() > 1)
            .unwrap_or(false)
    })
}

/// Makes the one-time host queries of this module now (the CPU count, which reads
/// `/proc` and cgroup files): a confined gofer can no longer make them.
pub(crate) fn warm_up() {
    spinning_pays();
}

/// Receives one datagram into `buf` (whose length should be `MAX_MESSAGE + 1` or more so an
/// oversized message shows as truncated). Received fds are close-on-exec. Retries on EINTR.
///
/// The receiver polls for up to [`SPIN`] before it sleeps: the sentry and the gofer run on
/// different CPUs, and waking a sleeping thread on another CPU costs ~100 µs on the machines
/// rvisor targets, twenty times a whole request. Requests come in bursts (a path walk, an
/// open), so a short poll catches the next message while the peer is still busy with it.
pub(crate) fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = CmsgBuf([0; 128]);
    let spin_until = std::time::Instant::now() + SPIN;
    let mut flags = libc::MSG_CMSG_CLOEXEC
        | if spinning_pays() {
            libc::MSG_DONTWAIT
        } else {
            0
        };
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cmsg.0.as_mut_ptr().cast();
        hdr.msg_controllen = cmsg.0.len();
        // SAFETY: `hdr` describes `buf` and `cmsg`, both exclusively borrowed and alive for
        // the call; the kernel writes at most their lengths.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut hdr, flags) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if err.kind() == io::ErrorKind::WouldBlock && flags & libc::MSG_DONTWAIT != 0 {
                if std::time::Instant::now() >= spin_until {
                    flags &= !libc::MSG_DONTWAIT;
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            return Err(err);
        }
        // Take ownership of the descriptors first, so that they are closed whatever happens
        // to the message.
        let fds = collect_fds(&hdr);
        let n = n as usize;
        if n == 0 && fds.is_empty() {
            return Ok(Received::Eof);
        }
        let truncated = hdr.msg_flags & libc::MSG_TRUNC != 0 || n > MAX_MESSAGE;
        return Ok(Received::Message {
            len: n.min(buf.len()),
            truncated,
            fds,
        });
    }
}

/// The descriptors in the `SCM_RIGHTS` control messages of a received `hdr`. Works also when
/// the control data was truncated (MSG_CTRUNC): the kernel then installs only the fds whose
/// slots fit, and the cmsg lengths say how many.
fn collect_fds(hdr: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `hdr` was filled by a successful recvmsg; its control pointer and length
    // describe our buffer, and CMSG_FIRSTHDR/CMSG_NXTHDR stay within that length (returning
    // null at its end).
    let mut c = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !c.is_null() {
        // SAFETY: `c` is non-null and points at a complete cmsghdr inside the buffer (the
        // CMSG_* macros only return headers that fit).
        let (level, ty, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            // SAFETY: computing the data pointer and header length of a valid cmsghdr.
            let (data, hlen) = unsafe { (libc::CMSG_DATA(c), libc::CMSG_LEN(0) as usize) };
            let data_end = (hdr.msg_control as usize).saturating_add(hdr.msg_controllen);
            let avail = data_end.saturating_sub(data as usize);
            let count = len.saturating_sub(hlen).min(avail) / std::mem::size_of::<RawFd>();
            for i in 0..count {
                // SAFETY: slot `i` lies within this cmsg's data, which lies within the buffer
                // (bounded by `avail` above).
                let raw = unsafe { std::ptr::read_unaligned(data.cast::<RawFd>().add(i)) };
                if raw >= 0 {
                    // SAFETY: the kernel just installed `raw` in our table for this message;
                    // nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        // SAFETY: `c` is a valid header of `hdr`'s control buffer.
        c = unsafe { libc::CMSG_NXTHDR(hdr, c) };
    }
    fds
}

/// A connected pair of `SOCK_SEQPACKET` unix sockets, close-on-exec: one end for the gofer
/// server, one for the sentry's client.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both are new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_datagram_and_its_fd_arrive_together() {
        let (a, b) = socketpair().unwrap();
        let (x, _y) = socketpair().unwrap();
        send(a.as_fd(), b"hello", Some(x.as_fd())).unwrap();
        let mut buf = vec![0; MAX_MESSAGE + 1];
        match recv(b.as_fd(), &mut buf).unwrap() {
            Received::Message {
                len,
                truncated,
                fds,
            } => {
                assert_eq!(&buf[..len], b"hello");
                assert!(!truncated);
                assert_eq!(fds.len(), 1);
                // SAFETY: F_GETFD on a descriptor we own.
                let flags = unsafe { libc::fcntl(fds[0].as_raw_fd(), libc::F_GETFD) };
                assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_oversized_datagram_shows_as_truncated() {
        let (a, b) = socketpair().unwrap();
        send(a.as_fd(), &vec![7; MAX_MESSAGE + 100], None).unwrap();
        let mut buf = vec![0; MAX_MESSAGE + 1];
        match recv(b.as_fd(), &mut buf).unwrap() {
            Received::Message { truncated, .. } => assert!(truncated),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_closed_peer_reads_as_eof() {
        let (a, b) = socketpair().unwrap();
        drop(a);
        let mut buf = vec![0; 16];
        assert!(matches!(recv(b.as_fd(), &mut buf).unwrap(), Received::Eof));
    }
}
