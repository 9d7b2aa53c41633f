//! Socket options every IP socket of the stack shares (SOL_SOCKET, SOL_IP, SOL_IPV6), and
//! the codecs of option values (int, timeval, linger).

use std::time::{Duration, Instant};

use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::Errno;

/// The default and largest buffer sizes (Linux: SO_RCVBUF reads 131072 by default for
/// TCP; a set value is doubled on read).
pub(crate) const DEFAULT_RCVBUF: usize = 131_072;
pub(crate) const DEFAULT_SNDBUF: usize = 16_384;
pub(crate) const MAX_BUF: usize = 4 << 20;

#[derive(Clone, Debug)]
pub(crate) struct SockOpts {
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    /// What SO_RCVBUF/SO_SNDBUF read (already doubled, as Linux).
    pub rcvbuf: usize,
    pub sndbuf: usize,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    /// SO_LINGER: (on, seconds).
    pub linger: (bool, i32),
    pub ttl: Option<u8>,
    pub tos: i32,
    pub v6only: bool,
    pub pktinfo: bool,
    pub recvttl: bool,
    pub hdrincl: bool,
    pub priority: i32,
    pub mark: i32,
    pub oobinline: bool,
    pub timestamp: bool,
}

impl Default for SockOpts {
    fn default() -> SockOpts {
        SockOpts {
            reuse_addr: false,
            reuse_port: false,
            keepalive: false,
            broadcast: false,
            rcvbuf: DEFAULT_RCVBUF,
            sndbuf: DEFAULT_SNDBUF,
            rcvtimeo: None,
            sndtimeo: None,
            linger: (false, 0),
            ttl: None,
            tos: 0,
            v6only: false,
            pktinfo: false,
            recvttl: false,
            hdrincl: false,
            priority: 0,
            mark: 0,
            oobinline: false,
            timestamp: false,
        }
    }
}

/// An int option value: at least 4 bytes (EINVAL otherwise, as Linux).
pub(crate) fn get_int(val: &[u8]) -> Result<i32, Errno> {
    match val {
        [a, b, c, d, ..] => Ok(i32::from_ne_bytes([*a, *b, *c, *d])),
        _ => Err(Errno::EINVAL),
    }
}

/// An IPv4 (SOL_IP) int option value: Linux's IP layer also takes a single byte.
pub(crate) fn get_ip_int(val: &[u8]) -> Result<i32, Errno> {
    match val {
        [a] => Ok(*a as i32),
        _ => get_int(val),
    }
}

/// The errno Linux's getsockopt gives for an unknown option at `level` on an IP socket
/// of `domain` whose protocol level is `proto_level`: IPv4's IP layer answers a level
/// that is neither SOL_SOCKET, SOL_IP nor the protocol's with EOPNOTSUPP; everything
/// else (IPv6 sockets, unknown names at a known level) is ENOPROTOOPT. setsockopt always
/// answers ENOPROTOOPT.
pub(crate) fn unknown_get_errno(domain: i32, proto_level: i32, level: i32) -> Errno {
    if domain == AF_INET && level != SOL_SOCKET && level != SOL_IP && level != proto_level {
        Errno::EOPNOTSUPP
    } else {
        Errno::ENOPROTOOPT
    }
}

pub(crate) fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A `struct timeval` option value (None: no timeout).
pub(crate) fn get_timeval(val: &[u8]) -> Result<Option<Duration>, Errno> {
    if val.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_ne_bytes(val[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let usec = i64::from_ne_bytes(val[8..16].try_into().map_err(|_| Errno::EINVAL)?);
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 || (sec == 0 && usec == 0) {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64),
    ))
}

pub(crate) fn timeval(d: Option<Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    let mut v = (d.as_secs() as i64).to_ne_bytes().to_vec();
    v.extend_from_slice(&(d.subsec_micros() as i64).to_ne_bytes());
    v
}

/// The deadline a timeout option gives a blocking call starting now.
pub(crate) fn deadline(t: Option<Duration>) -> Option<Instant> {
    t.and_then(|d| Instant::now().checked_add(d))
}

impl SockOpts {
    /// getsockopt for the shared options; None for options the protocol answers.
    pub fn get(&self, level: i32, name: i32) -> Option<Vec<u8>> {
        Some(match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => int(self.reuse_addr as i32),
            (SOL_SOCKET, SO_REUSEPORT) => int(self.reuse_port as i32),
            (SOL_SOCKET, SO_KEEPALIVE) => int(self.keepalive as i32),
            (SOL_SOCKET, SO_BROADCAST) => int(self.broadcast as i32),
            (SOL_SOCKET, SO_RCVBUF) => int(self.rcvbuf as i32),
            (SOL_SOCKET, SO_SNDBUF) => int(self.sndbuf as i32),
            (SOL_SOCKET, SO_RCVTIMEO) => timeval(self.rcvtimeo),
            (SOL_SOCKET, SO_SNDTIMEO) => timeval(self.sndtimeo),
            (SOL_SOCKET, SO_LINGER) => {
                let mut v = int(self.linger.0 as i32);
                v.extend_from_slice(&self.linger.1.to_ne_bytes());
                v
            }
            (SOL_SOCKET, SO_PRIORITY) => int(self.priority),
            (SOL_SOCKET, SO_MARK) => int(self.mark),
            (SOL_SOCKET, SO_OOBINLINE) => int(self.oobinline as i32),
            (SOL_SOCKET, SO_TIMESTAMP) => int(self.timestamp as i32),
            (SOL_SOCKET, SO_DEBUG) | (SOL_SOCKET, SO_DONTROUTE) => int(0),
            (SOL_SOCKET, SO_RCVLOWAT) | (SOL_SOCKET, SO_SNDLOWAT) => int(1),
            (SOL_IP, IP_TTL) => int(self.ttl.map_or(64, i32::from)),
            (SOL_IP, IP_TOS) => int(self.tos),
            (SOL_IP, IP_PKTINFO) => int(self.pktinfo as i32),
            (SOL_IP, IP_RECVTTL) => int(self.recvttl as i32),
            (SOL_IP, IP_HDRINCL) => int(self.hdrincl as i32),
            (SOL_IP, IP_MTU_DISCOVER) => int(0),
            (SOL_IPV6, IPV6_V6ONLY) => int(self.v6only as i32),
            (SOL_IPV6, IPV6_UNICAST_HOPS) => int(self.ttl.map_or(64, i32::from)),
            (SOL_IPV6, IPV6_TCLASS) => int(self.tos),
            (SOL_IPV6, IPV6_RECVPKTINFO) => int(self.pktinfo as i32),
            _ => return None,
        })
    }

    /// setsockopt for the shared options; Ok(false) for options the protocol handles.
    pub fn set(&mut self, level: i32, name: i32, val: &[u8]) -> Result<bool, Errno> {
        let buf = |v: i32| (v.max(0) as usize).clamp(2048, MAX_BUF / 2) * 2;
        match (level, name) {
            (SOL_SOCKET, SO_RCVTIMEO) => self.rcvtimeo = get_timeval(val)?,
            (SOL_SOCKET, SO_SNDTIMEO) => self.sndtimeo = get_timeval(val)?,
            (SOL_SOCKET, SO_LINGER) => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                self.linger = (get_int(&val[..4])? != 0, get_int(&val[4..8])?.max(0));
            }
            _ => {
                let v = if level == SOL_IP {
                    get_ip_int(val)?
                } else {
                    get_int(val)?
                };
                match (level, name) {
                    (SOL_SOCKET, SO_REUSEADDR) => self.reuse_addr = v != 0,
                    (SOL_SOCKET, SO_REUSEPORT) => self.reuse_port = v != 0,
                    (SOL_SOCKET, SO_KEEPALIVE) => self.keepalive = v != 0,
                    (SOL_SOCKET, SO_BROADCAST) => self.broadcast = v != 0,
                    (SOL_SOCKET, SO_RCVBUF) | (SOL_SOCKET, SO_RCVBUFFORCE) => self.rcvbuf = buf(v),
                    (SOL_SOCKET, SO_SNDBUF) | (SOL_SOCKET, SO_SNDBUFFORCE) => self.sndbuf = buf(v),
                    (SOL_SOCKET, SO_PRIORITY) => self.priority = v,
                    (SOL_SOCKET, SO_MARK) => self.mark = v,
                    (SOL_SOCKET, SO_OOBINLINE) => self.oobinline = v != 0,
                    (SOL_SOCKET, SO_TIMESTAMP) | (SOL_SOCKET, SO_TIMESTAMPNS) => {
                        self.timestamp = v != 0
                    }
                    (SOL_SOCKET, SO_DEBUG)
                    | (SOL_SOCKET, SO_DONTROUTE)
                    | (SOL_SOCKET, SO_RCVLOWAT)
                    | (SOL_SOCKET, SO_SNDLOWAT)
                    | (SOL_SOCKET, SO_BUSY_POLL)
                    | (SOL_SOCKET, SO_ZEROCOPY)
                    | (SOL_SOCKET, SO_BINDTODEVICE) => {}
                    (SOL_IP, IP_TTL) | (SOL_IPV6, IPV6_UNICAST_HOPS) => {
                        self.ttl = match v {
                            -1 => None,
                            1..=255 => Some(v as u8),
                            _ => return Err(Errno::EINVAL),
                        }
                    }
                    (SOL_IP, IP_TOS) | (SOL_IPV6, IPV6_TCLASS) => self.tos = v & 0xff,
                    (SOL_IP, IP_PKTINFO) | (SOL_IPV6, IPV6_RECVPKTINFO) => self.pktinfo = v != 0,
                    (SOL_IP, IP_RECVTTL) => self.recvttl = v != 0,
                    (SOL_IP, IP_HDRINCL) => self.hdrincl = v != 0,
                    (SOL_IP, IP_MTU_DISCOVER)
                    | (SOL_IP, IP_RECVERR)
                    | (SOL_IP, IP_RECVTOS)
                    | (SOL_IP, IP_FREEBIND)
                    | (SOL_IP, IP_BIND_ADDRESS_NO_PORT)
                    | (SOL_IP, IP_MULTICAST_TTL)
                    | (SOL_IP, IP_MULTICAST_LOOP)
                    | (SOL_IPV6, IPV6_RECVHOPLIMIT)
                    | (SOL_IPV6, IPV6_MULTICAST_HOPS)
                    | (SOL_IPV6, IPV6_MULTICAST_LOOP) => {}
                    (SOL_IPV6, IPV6_V6ONLY) => self.v6only = v != 0,
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// The ring-buffer sizes a new smoltcp TCP socket asks for (bounded): the link's
    /// defaults raise them ([`tcp_default`](super::bufs::tcp_default)) so that the window
    /// scales, and the budget may grant less ([`grant`](super::bufs::grant)).
    pub fn tcp_buffers(&self) -> (usize, usize) {
        (self.rcvbuf.min(MAX_BUF), self.sndbuf.min(MAX_BUF))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_read_back_doubled_and_timeouts_round_trip() {
        let mut o = SockOpts::default();
        assert!(o.set(SOL_SOCKET, SO_RCVBUF, &int(100_000)).unwrap());
        assert_eq!(o.get(SOL_SOCKET, SO_RCVBUF), Some(int(200_000)));
        let tv = timeval(Some(Duration::from_millis(1500)));
        o.set(SOL_SOCKET, SO_RCVTIMEO, &tv).unwrap();
        assert_eq!(o.rcvtimeo, Some(Duration::from_millis(1500)));
        assert_eq!(o.set(SOL_SOCKET, SO_REUSEADDR, &[]), Err(Errno::EINVAL));
        assert!(!o.set(SOL_TCP, TCP_NODELAY, &int(1)).unwrap());
        assert_eq!(o.set(SOL_SOCKET, SO_REUSEADDR, &[1]), Err(Errno::EINVAL));
        assert!(o.set(SOL_IP, IP_TTL, &[9]).unwrap());
        assert_eq!(
            unknown_get_errno(AF_INET, SOL_TCP, 12345),
            Errno::EOPNOTSUPP
        );
        assert_eq!(
            unknown_get_errno(AF_INET6, SOL_TCP, 12345),
            Errno::ENOPROTOOPT
        );
    }
}
