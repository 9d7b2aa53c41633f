//! Networking beyond AF_UNIX (which lives in `vfs::unix`): sockets of the IP families and
//! AF_NETLINK, as files the socket syscalls drive through [`NetSocket`].
//!
//! - [`stack`]: the sentry's own TCP/IP stack (smoltcp), for `--network=sandbox` (packets
//!   from donated AF_PACKET sockets) and `--network=none` (loopback only);
//! - [`host`]: `--network=host`, guest sockets backed by host sockets;
//! - [`netlink`]: NETLINK_ROUTE answers (links, addresses, routes) from [`NetworkSpec`];
//! - [`ifreq`]: the SIOCGIF* interface ioctls, from the same spec.
//!
//! The socket syscalls (`syscalls::socket`) parse guest memory (iovecs, msghdr, control
//! buffers, option buffers) and hand a socket plain byte slices; the socket owns the
//! protocol semantics: addresses, blocking, options.

use std::sync::Arc;

use rvisor_syscalls::Errno;

use crate::vfs::file::FileImpl;

pub mod addr;
pub mod config;

pub use config::{AddrSpec, InterfaceSpec, LinkKind, NetworkMode, NetworkSpec, RouteSpec};

/// One control message, in or out (`cmsg_level`, `cmsg_type`, the data after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmsg {
    pub level: i32,
    pub ty: i32,
    pub data: Vec<u8>,
}

/// What one receive produced.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes copied into the caller's buffer.
    pub len: usize,
    /// The datagram's full length (what MSG_TRUNC returns); `len` for streams.
    pub full: usize,
    /// The sender's address as a guest `sockaddr` (datagram sockets; `None` for streams,
    /// whose recvfrom reports nothing).
    pub from: Option<Vec<u8>>,
    /// Control messages to deliver (IP_PKTINFO, IP_TTL, ...).
    pub control: Vec<Cmsg>,
}

/// The socket operations of a non-unix socket. Addresses are guest `struct sockaddr`
/// bytes in both directions (the caller copies them and truncates to the guest's length);
/// each family parses and checks its own. Blocking calls block the current task with
/// `kernel::wait::block_on` (so signals interrupt them with ERESTARTSYS) unless
/// `nonblock`; they honour SO_RCVTIMEO/SO_SNDTIMEO (EAGAIN on expiry, as Linux).
pub trait NetSocket: Send + Sync {
    /// AF_INET, AF_INET6, AF_NETLINK.
    fn domain(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_RAW (no flags).
    fn sock_type(&self) -> i32;
    /// The protocol number (SO_PROTOCOL).
    fn protocol(&self) -> i32;
    fn bind(&self, addr: &[u8]) -> Result<(), Errno>;
    /// connect(2); `addr` of family AF_UNSPEC dissolves a datagram association.
    fn connect(&self, addr: &[u8], nonblock: bool) -> Result<(), Errno>;
    fn listen(&self, backlog: i32) -> Result<(), Errno>;
    /// accept(2): the new connection (its own file) and the peer's address.
    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileImpl>, Vec<u8>), Errno>;
    /// getsockname(2).
    fn local_name(&self) -> Result<Vec<u8>, Errno>;
    /// getpeername(2) (ENOTCONN without a peer).
    fn peer_name(&self) -> Result<Vec<u8>, Errno>;
    /// Sends `data` (to `to` for an unconnected datagram socket). `flags` are the MSG_*
    /// flags. A blocking stream send queues everything before it returns, unless a signal
    /// or timeout ends it after some progress (then the count so far). The caller raises
    /// SIGPIPE on EPIPE.
    fn send(&self, data: &[u8], to: Option<&[u8]>, control: &[Cmsg], flags: u32, nonblock: bool) -> Result<usize, Errno>;
    /// Receives into `buf` (MSG_PEEK, MSG_WAITALL, MSG_TRUNC, MSG_DONTWAIT are in `flags`).
    fn recv(&self, buf: &mut [u8], flags: u32, nonblock: bool) -> Result<Received, Errno>;
    fn shutdown(&self, how: i32) -> Result<(), Errno>;
    /// getsockopt(2): the value's bytes (the caller truncates to the guest's `optlen`,
    /// which is `len`); ENOPROTOOPT for unknown options.
    fn getsockopt(&self, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno>;
    /// setsockopt(2) with the guest's value bytes.
    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno>;
}

/// A socket-table row for /proc/net/{tcp,tcp6,udp,udp6,raw,raw6}.
#[derive(Clone, Debug)]
pub struct SocketEntry {
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    /// The TCP state number Linux prints (1 ESTABLISHED .. 10 LISTEN, 11 CLOSING); 7
    /// (CLOSE) for unconnected UDP.
    pub state: u8,
    pub tx_queue: u32,
    pub rx_queue: u32,
}

/// Per-interface counters for /proc/net/dev and netlink IFLA_STATS.
#[derive(Clone, Debug, Default)]
pub struct IfStats {
    pub index: u32,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Which socket table [`NetworkStack::sockets`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Raw,
}

/// A network the sandbox's IP sockets live in (one per sandbox, on the kernel).
pub trait NetworkStack: Send + Sync {
    /// socket(2) for AF_INET/AF_INET6: `ty` without SOCK_NONBLOCK/SOCK_CLOEXEC. The file
    /// implements [`FileImpl::as_net_socket`]. EPROTONOSUPPORT/ESOCKTNOSUPPORT for
    /// combinations it lacks, EPERM for raw sockets without CAP_NET_RAW (the caller checks
    /// the capability and passes `may_raw`).
    fn socket(&self, domain: i32, ty: i32, protocol: i32, may_raw: bool) -> Result<Arc<dyn FileImpl>, Errno>;
    /// The interfaces, addresses and routes the guest sees.
    fn spec(&self) -> &NetworkSpec;
    /// Interface counters (empty where unknown).
    fn stats(&self) -> Vec<IfStats> {
        Vec::new()
    }
    /// Open sockets of one protocol (empty where unknown).
    fn sockets(&self, _proto: Proto, _v6: bool) -> Vec<SocketEntry> {
        Vec::new()
    }
}

pub mod host;
pub mod ifreq;
pub mod netlink;
pub mod stack;

/// Why the sandbox's network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network: {0} packet sockets given for {1} ethernet interfaces")]
    FdCount(usize, usize),
    #[error("network: {0}")]
    Setup(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the network a sandbox's spec asks for: the sentry's stack (sandbox: fed from
/// `fds`, one donated packet socket per ethernet interface; none: loopback only) or host
/// sockets.
pub fn create(spec: NetworkSpec, fds: Vec<std::os::fd::OwnedFd>) -> Result<Arc<dyn NetworkStack>, NetError> {
    let want = match spec.mode {
        NetworkMode::Sandbox => spec.ethernet().count(),
        NetworkMode::Host | NetworkMode::None => 0,
    };
    if fds.len() != want {
        return Err(NetError::FdCount(fds.len(), want));
    }
    Ok(match spec.mode {
        NetworkMode::Host => host::HostNetwork::new(spec)?,
        NetworkMode::Sandbox | NetworkMode::None => stack::SandboxStack::new(spec, fds)?,
    })
}
