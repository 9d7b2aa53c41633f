//! Guest `sockaddr_in` / `sockaddr_in6` bytes to and from `std::net::SocketAddr`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use rvisor_syscalls::flags::socket::{AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR_IN, SOCKADDR_IN6};
use rvisor_syscalls::Errno;

/// The family field of a guest sockaddr (EINVAL if too short to hold one).
pub fn family(raw: &[u8]) -> Result<i32, Errno> {
    match raw {
        [a, b, ..] => Ok(u16::from_le_bytes([*a, *b]) as i32),
        _ => Err(Errno::EINVAL),
    }
}

/// Whether `raw` is an AF_UNSPEC address (connect's "dissolve the association").
pub fn is_unspec(raw: &[u8]) -> bool {
    family(raw).ok() == Some(AF_UNSPEC)
}

/// Parses a sockaddr for a socket of `domain`: EINVAL for a short length, EAFNOSUPPORT
/// for another family (an AF_INET6 socket takes only sockaddr_in6, as Linux).
pub fn parse(domain: i32, raw: &[u8]) -> Result<SocketAddr, Errno> {
    let fam = family(raw)?;
    match domain {
        AF_INET => {
            if raw.len() < SOCKADDR_IN as usize {
                return Err(Errno::EINVAL);
            }
            // Linux accepts AF_UNSPEC with INADDR_ANY in bind(2) for compatibility; the
            // callers that allow it check for it first.
            if fam != AF_INET {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        AF_INET6 => {
            if raw.len() < 24 {
                // SIN6_LEN_RFC2133: Linux accepts the old 24-byte form without scope id.
                return Err(Errno::EINVAL);
            }
            if fam != AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let flow = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&raw[8..24]);
            let scope = match raw.get(24..28) {
                Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                None => 0,
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope)))
        }
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// Encodes an address as the guest's sockaddr of `domain`: an IPv4 address on an
/// AF_INET6 socket becomes its v4-mapped form.
pub fn encode(domain: i32, a: &SocketAddr) -> Vec<u8> {
    match (domain, a) {
        (AF_INET, SocketAddr::V4(v4)) => encode_v4(v4),
        (AF_INET, SocketAddr::V6(v6)) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => encode_v4(&SocketAddrV4::new(ip, v6.port())),
            None => encode_v6(v6),
        },
        (_, SocketAddr::V4(v4)) => {
            encode_v6(&SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        (_, SocketAddr::V6(v6)) => encode_v6(v6),
    }
}

fn encode_v4(a: &SocketAddrV4) -> Vec<u8> {
    let mut out = vec![0u8; SOCKADDR_IN as usize];
    out[..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
    out[2..4].copy_from_slice(&a.port().to_be_bytes());
    out[4..8].copy_from_slice(&a.ip().octets());
    out
}

fn encode_v6(a: &SocketAddrV6) -> Vec<u8> {
    let mut out = vec![0u8; SOCKADDR_IN6 as usize];
    out[..2].copy_from_slice(&(AF_INET6 as u16).to_le_bytes());
    out[2..4].copy_from_slice(&a.port().to_be_bytes());
    out[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
    out[8..24].copy_from_slice(&a.ip().octets());
    out[24..28].copy_from_slice(&a.scope_id().to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v4: SocketAddr = "169.254.1.2:8080".parse().unwrap();
        assert_eq!(parse(AF_INET, &encode(AF_INET, &v4)).unwrap(), v4);
        let v6: SocketAddr = "[fe80::1]:53".parse().unwrap();
        assert_eq!(parse(AF_INET6, &encode(AF_INET6, &v6)).unwrap(), v6);
        let mapped = encode(AF_INET6, &v4);
        assert_eq!(mapped.len(), 28);
        assert_eq!(parse(AF_INET, &mapped), Err(Errno::EAFNOSUPPORT));
        assert_eq!(parse(AF_INET, &[2, 0, 0]), Err(Errno::EINVAL));
    }
}
