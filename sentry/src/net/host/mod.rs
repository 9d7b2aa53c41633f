//! `--network=host`: guest sockets backed by host sockets the sentry creates (in the
//! network namespace the sentry runs in), for trusted, speed-sensitive workloads.
//!
//! The guest still never hands the host anything but bytes the sentry copied and checked:
//! addresses are parsed and rebuilt ([`sys::HostAddr`]), options and control messages
//! pass only from an allow-list ([`opts`]), and no guest pointer reaches a host call.
//! Host fds are non-blocking and close-on-exec; blocking is the sentry's
//! ([`socket::HostSocket`]), woken by one poller thread per network ([`poller`]).
//!
//! Domains: AF_INET and AF_INET6. Types: SOCK_STREAM (TCP), SOCK_DGRAM (UDP; ICMP "ping"
//! sockets) and SOCK_RAW; raw and ICMP sockets need `may_raw` (CAP_NET_RAW in the guest).
//!
//! Not offered: SO_BINDTODEVICE (EPERM), options needing CAP_NET_ADMIN on the host,
//! socket filters, TCP ULPs, congestion algorithms other than the built-in ones. Ports
//! below 1024 need CAP_NET_BIND_SERVICE in the guest (the sentry itself could bind them).

mod opts;
mod poller;
mod socket;
mod sys;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use rvisor_syscalls::flags::socket::{
    AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM,
    SOCK_RAW, SOCK_STREAM,
};
use rvisor_syscalls::Errno;

use super::{NetError, NetworkSpec, NetworkStack};
use crate::vfs::file::FileImpl;

pub use self::socket::HostSocket;

/// The host network: the spec the guest sees and the poller its sockets share.
pub struct HostNetwork {
    spec: NetworkSpec,
    poller: Arc<poller::Poller>,
}

impl HostNetwork {
    pub fn new(spec: NetworkSpec) -> Result<Arc<HostNetwork>, NetError> {
        let poller = poller::Poller::start()
            .map_err(|e| NetError::Setup(format!("host sockets: poller: {e}")))?;
        Ok(Arc::new(HostNetwork { spec, poller }))
    }
}

/// Checks socket(2) arguments: the protocol the socket will report (0 becomes the type's
/// default), or the errno Linux gives.
fn check(domain: i32, ty: i32, protocol: i32, may_raw: bool) -> Result<i32, Errno> {
    if domain != AF_INET && domain != AF_INET6 {
        return Err(Errno::EAFNOSUPPORT);
    }
    if !(0..256).contains(&protocol) {
        return Err(Errno::EINVAL);
    }
    let icmp = if domain == AF_INET {
        IPPROTO_ICMP
    } else {
        IPPROTO_ICMPV6
    };
    match ty {
        SOCK_STREAM => match protocol {
            0 | IPPROTO_TCP => Ok(IPPROTO_TCP),
            _ => Err(Errno::EPROTONOSUPPORT),
        },
        SOCK_DGRAM => match protocol {
            0 | IPPROTO_UDP => Ok(IPPROTO_UDP),
            p if p == icmp => {
                if may_raw {
                    Ok(p)
                } else {
                    Err(Errno::EPERM)
                }
            }
            _ => Err(Errno::EPROTONOSUPPORT),
        },
        SOCK_RAW => {
            if !may_raw {
                return Err(Errno::EPERM);
            }
            Ok(protocol)
        }
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

impl NetworkStack for HostNetwork {
    fn socket(
        &self,
        domain: i32,
        ty: i32,
        protocol: i32,
        may_raw: bool,
    ) -> Result<Arc<dyn FileImpl>, Errno> {
        let protocol = check(domain, ty, protocol, may_raw)?;
        let fd = sys::socket(domain, ty, protocol)?;
        let s = HostSocket::new(fd, self.poller.clone(), domain, ty, protocol)?;
        Ok(s)
    }

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }
}
