//! Which socket options and control messages a guest may hand to a host socket.
//!
//! An option reaches the host only if it is on the allow-list below, and then only as
//! sentry-owned bytes, at most the option's largest value (the host validates values the
//! way it always does). Options that would let the guest reach beyond its own socket
//! (SO_BINDTODEVICE, SO_MARK, SO_*BUFFORCE, IP_TRANSPARENT, filters, ULPs, ...) are refused
//! or unknown. Timeouts are kept by the sentry (the host fd never blocks).

use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::Errno;

/// How an option is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    /// Passed to the host with at most `max` bytes; `set` false: read-only (ENOPROTOOPT
    /// on set, as Linux).
    Host {
        max: usize,
        set: bool,
    },
    /// SO_RCVTIMEO / SO_SNDTIMEO, kept by the sentry.
    RecvTimeout,
    SendTimeout,
    /// SO_TYPE, SO_DOMAIN, SO_PROTOCOL: answered by the sentry (read-only).
    Type,
    Domain,
    Protocol,
    /// SO_BINDTODEVICE: reads as unbound; setting it is EPERM (a guest must not pick host
    /// interfaces).
    BindToDevice,
    /// SO_PRIORITY: 0..=6 as for an unprivileged Linux caller; higher is EPERM.
    Priority,
    /// TCP_CONGESTION: only algorithms every kernel has built in (no module loading).
    Congestion,
    /// Needs privileges over the host (CAP_NET_ADMIN): EPERM.
    Denied,
}

const INT: usize = 4;

/// The handling of (level, name); ENOPROTOOPT for options the host mode does not offer.
pub fn classify(level: i32, name: i32) -> Result<Opt, Errno> {
    let rw = |max| Ok(Opt::Host { max, set: true });
    let ro = |max| Ok(Opt::Host { max, set: false });
    match level {
        SOL_SOCKET => match name {
            SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE | SO_RCVBUF | SO_SNDBUF | SO_BROADCAST
            | SO_RCVLOWAT | SO_SNDLOWAT | SO_OOBINLINE | SO_DONTROUTE | SO_TIMESTAMP
            | SO_TIMESTAMPNS | SO_RXQ_OVFL => rw(INT),
            SO_LINGER => rw(LINGER_SIZE),
            SO_ERROR | SO_ACCEPTCONN | SO_INCOMING_CPU => ro(INT),
            SO_COOKIE => ro(8),
            SO_RCVTIMEO => Ok(Opt::RecvTimeout),
            SO_SNDTIMEO => Ok(Opt::SendTimeout),
            SO_TYPE => Ok(Opt::Type),
            SO_DOMAIN => Ok(Opt::Domain),
            SO_PROTOCOL => Ok(Opt::Protocol),
            SO_BINDTODEVICE => Ok(Opt::BindToDevice),
            SO_PRIORITY => Ok(Opt::Priority),
            SO_MARK | SO_RCVBUFFORCE | SO_SNDBUFFORCE | SO_DEBUG => Ok(Opt::Denied),
            _ => Err(Errno::ENOPROTOOPT),
        },
        SOL_TCP => match name {
            TCP_NODELAY | TCP_CORK | TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT | TCP_MAXSEG
            | TCP_QUICKACK | TCP_DEFER_ACCEPT | TCP_USER_TIMEOUT | TCP_NOTSENT_LOWAT
            | TCP_FASTOPEN | TCP_FASTOPEN_CONNECT | TCP_SYNCNT | TCP_LINGER2 | TCP_WINDOW_CLAMP => {
                rw(INT)
            }
            TCP_INFO => ro(512),
            TCP_CONGESTION => Ok(Opt::Congestion),
            _ => Err(Errno::ENOPROTOOPT),
        },
        SOL_IP => match name {
            IP_TOS
            | IP_TTL
            | IP_PKTINFO
            | IP_RECVERR
            | IP_MTU_DISCOVER
            | IP_RECVTTL
            | IP_RECVTOS
            | IP_MULTICAST_TTL
            | IP_MULTICAST_LOOP
            | IP_MULTICAST_ALL
            | IP_BIND_ADDRESS_NO_PORT
            | IP_FREEBIND
            | IP_HDRINCL
            | IP_RECVORIGDSTADDR => rw(INT),
            IP_MTU => ro(INT),
            // struct in_addr or struct ip_mreqn; struct ip_mreq or ip_mreqn.
            IP_MULTICAST_IF | IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP => rw(12),
            _ => Err(Errno::ENOPROTOOPT),
        },
        SOL_IPV6 => match name {
            IPV6_V6ONLY | IPV6_UNICAST_HOPS | IPV6_MULTICAST_IF | IPV6_MULTICAST_HOPS
            | IPV6_MULTICAST_LOOP | IPV6_RECVPKTINFO | IPV6_TCLASS | IPV6_RECVTCLASS
            | IPV6_RECVHOPLIMIT | IPV6_MTU_DISCOVER | IPV6_RECVERR => rw(INT),
            IPV6_MTU => ro(INT),
            IPV6_PKTINFO | IPV6_ADD_MEMBERSHIP | IPV6_DROP_MEMBERSHIP => rw(IN6_PKTINFO_SIZE),
            _ => Err(Errno::ENOPROTOOPT),
        },
        SOL_UDP => match name {
            UDP_CORK | UDP_SEGMENT | UDP_GRO => rw(INT),
            _ => Err(Errno::ENOPROTOOPT),
        },
        SOL_RAW if name == ICMP_FILTER => rw(INT),
        // ICMP6_FILTER: struct icmp6_filter, eight 32-bit words.
        SOL_ICMPV6 if name == 1 => rw(32),
        _ => Err(Errno::ENOPROTOOPT),
    }
}

/// Congestion-control algorithms every Linux kernel has built in: naming another could
/// make the host load a module.
pub const CONGESTION_ALLOWED: [&str; 2] = ["reno", "cubic"];

/// The name in a TCP_CONGESTION value (up to its first NUL, at most TCP_CA_NAME_MAX bytes):
/// ENOENT unless it is allowed.
pub fn congestion_name(val: &[u8]) -> Result<&'static str, Errno> {
    let v = &val[..val.len().min(TCP_CA_NAME_MAX)];
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    let name = &v[..end];
    CONGESTION_ALLOWED
        .iter()
        .find(|a| a.as_bytes() == name)
        .copied()
        .ok_or(Errno::ENOENT)
}

/// Whether an outgoing control message may reach the host: `Ok(true)` pass it,
/// `Ok(false)` drop it silently (SCM_RIGHTS/SCM_CREDENTIALS, which Linux ignores on IP
/// sockets), EINVAL for anything else (as Linux for unknown control messages).
pub fn control_out(level: i32, ty: i32, len: usize) -> Result<bool, Errno> {
    let ok = match level {
        SOL_SOCKET if ty == SCM_RIGHTS || ty == SCM_CREDENTIALS => return Ok(false),
        SOL_IP => matches!(ty, IP_PKTINFO | IP_TOS | IP_TTL),
        SOL_IPV6 => matches!(ty, IPV6_PKTINFO | IPV6_HOPLIMIT | IPV6_TCLASS),
        SOL_UDP => ty == UDP_SEGMENT,
        _ => false,
    };
    if !ok || len > 64 {
        return Err(Errno::EINVAL);
    }
    Ok(true)
}

/// Whether a control message the host produced goes back to the guest (never anything
/// that carries descriptors or credentials; IP sockets produce none).
pub fn control_in(level: i32, ty: i32) -> bool {
    !(level == SOL_SOCKET && (ty == SCM_RIGHTS || ty == SCM_CREDENTIALS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_refuses_host_reaching_options_and_unknown_ones() {
        assert_eq!(classify(SOL_SOCKET, SO_BINDTODEVICE), Ok(Opt::BindToDevice));
        assert_eq!(classify(SOL_SOCKET, SO_MARK), Ok(Opt::Denied));
        assert_eq!(
            classify(SOL_SOCKET, 26 /* SO_ATTACH_FILTER */),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(classify(SOL_TCP, 31 /* TCP_ULP */), Err(Errno::ENOPROTOOPT));
        assert_eq!(
            classify(SOL_IP, 19 /* IP_TRANSPARENT */),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            classify(SOL_TCP, TCP_NODELAY),
            Ok(Opt::Host { max: 4, set: true })
        );
        assert_eq!(
            classify(SOL_SOCKET, SO_ERROR),
            Ok(Opt::Host { max: 4, set: false })
        );
    }

    #[test]
    fn congestion_names_are_limited_to_built_in_algorithms() {
        assert_eq!(congestion_name(b"cubic\0\0\0"), Ok("cubic"));
        assert_eq!(congestion_name(b"reno"), Ok("reno"));
        assert_eq!(congestion_name(b"../../x"), Err(Errno::ENOENT));
        assert_eq!(congestion_name(b""), Err(Errno::ENOENT));
    }

    #[test]
    fn control_messages_pass_only_from_the_allow_list() {
        assert_eq!(control_out(SOL_IP, IP_PKTINFO, IN_PKTINFO_SIZE), Ok(true));
        assert_eq!(control_out(SOL_SOCKET, SCM_RIGHTS, 4), Ok(false));
        assert_eq!(control_out(SOL_SOCKET, SO_MARK, 4), Err(Errno::EINVAL));
        assert_eq!(control_out(SOL_IP, IP_TTL, 4096), Err(Errno::EINVAL));
        assert!(!control_in(SOL_SOCKET, SCM_RIGHTS));
        assert!(control_in(SOL_IP, IP_PKTINFO));
    }
}
