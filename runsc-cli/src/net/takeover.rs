//! Work inside a network namespace: a helper thread that joins it (`setns` of a network
//! namespace changes only the calling thread), fresh namespaces, reading the links,
//! addresses and routes, the packet sockets donated to the sandbox, and the removal of
//! the addresses the sandbox takes over.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, Context};

use super::netlink::{Addr, Link, Netlink, Route};
use super::spec::Taken;

// Host AF_PACKET ABI (linux/if_packet.h).
const SOL_PACKET: i32 = 263;
const PACKET_IGNORE_OUTGOING: i32 = 23;

/// Runs `f` on a new thread that first joins network namespace `ns` (stays in the
/// caller's namespace when `None`). Sockets `f` creates belong to that namespace for
/// good, whichever thread uses them later.
pub fn in_netns<T: Send>(ns: Option<BorrowedFd<'_>>, f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(ns) = ns {
                // SAFETY: setns takes a descriptor the caller keeps open for the call and
                // a flag; it changes only this helper thread's namespace.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::EINVAL) {
                        return Err(anyhow!("not a network namespace"));
                    }
                    return Err(e).context("joining it");
                }
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("the network namespace helper thread panicked"))?
    })
}

/// Opens a network namespace path (e.g. /var/run/netns/NAME or /proc/PID/ns/net) and
/// checks that it is one.
pub fn open_netns(path: &str) -> anyhow::Result<OwnedFd> {
    let c = CString::new(path).context("the path holds a NUL byte")?;
    // SAFETY: `c` is a NUL-terminated path; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // setns checks the kind of namespace; a thread that joins and leaves proves it.
    in_netns(Some(std::os::fd::AsFd::as_fd(&fd)), || Ok(()))?;
    Ok(fd)
}

/// A new network namespace (only `lo`, down), with `lo` brought up when `lo_up`.
pub fn fresh_netns(lo_up: bool) -> anyhow::Result<OwnedFd> {
    std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<OwnedFd> {
            // SAFETY: unshare takes a flag; a new network namespace is per thread, so only
            // this helper thread moves into it.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error()).context("unshare(CLONE_NEWNET)");
            }
            let path = c"/proc/thread-self/ns/net";
            // SAFETY: a NUL-terminated literal path; open returns a new descriptor or -1.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error()).context("opening the new namespace");
            }
            // SAFETY: `fd` was just created and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if lo_up {
                let mut nl = Netlink::open()?;
                let lo = nl.links()?.into_iter().find(|l| l.arphrd == super::netlink::ARPHRD_LOOPBACK);
                if let Some(lo) = lo {
                    nl.set_up(lo.index).context("bringing lo up")?;
                }
            }
            Ok(fd)
        })
        .join()
        .map_err(|_| anyhow!("the network namespace helper thread panicked"))?
    })
    .context("a new network namespace")
}

/// Everything the calling thread's namespace has: links, addresses, routes.
pub fn read_current() -> anyhow::Result<(Vec<Link>, Vec<Addr>, Vec<Route>)> {
    let mut nl = Netlink::open()?;
    Ok((nl.links()?, nl.addrs()?, nl.routes()?))
}

/// A raw packet socket of every protocol, bound to link `index` of the calling thread's
/// namespace, non-blocking, not seeing the frames it sends itself.
pub fn packet_socket(index: u32, name: &str) -> anyhow::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, i32::from(proto)) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("packet socket for {name}"));
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all zeros is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = i32::try_from(index).context("interface index out of range")?;
    // SAFETY: `sll` is a live sockaddr_ll and the length passed is its size.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32) };
    if r != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("binding the packet socket to {name}"));
    }
    let one: i32 = 1;
    // SAFETY: the option value is a live i32 and the length passed is its size.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), SOL_PACKET, PACKET_IGNORE_OUTGOING, (&one as *const i32).cast(), 4) };
    if r != 0 {
        // Kernels before 4.20 lack it; the sandbox's stack then sees its own frames.
        tracing::debug!(link = name, error = %io::Error::last_os_error(), "PACKET_IGNORE_OUTGOING");
    }
    Ok(fd)
}

/// Removes the addresses of the `taken` links from the calling thread's namespace, so
/// its kernel no longer answers ARP, ICMP or TCP for them, and turns IPv6 off on those
/// links so the kernel does not add a link-local address again. The routes over them go
/// with the addresses. Nothing is restored later (as runsc).
pub fn remove_addresses(taken: &[Taken], addrs: &[Addr]) -> anyhow::Result<()> {
    let mut nl = Netlink::open()?;
    for a in addrs.iter().filter(|a| taken.iter().any(|t| t.index == a.index)) {
        match nl.del_addr(a) {
            Ok(()) => {}
            // Deleting a primary IPv4 address takes its secondaries with it.
            Err(super::netlink::NetlinkError::Kernel { source, .. }) if source.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e).with_context(|| format!("removing {:?} from link {}", a.own(), a.index)),
        }
    }
    for t in taken {
        disable_ipv6(&t.name)?;
    }
    Ok(())
}

/// `net.ipv6.conf.NAME.disable_ipv6 = 1` in the calling thread's namespace (/proc/sys/net
/// shows the namespace of the thread that looks). Nothing to do without IPv6.
fn disable_ipv6(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(anyhow!("unexpected interface name {name:?}"));
    }
    let path = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    match std::fs::write(&path, b"1") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| path),
    }
}
