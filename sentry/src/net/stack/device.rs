//! The devices under the smoltcp interfaces: loopback (a packet queue in memory) and a
//! donated AF_PACKET socket (one raw ethernet frame per read(2)/write(2); no other socket
//! call ever touches it).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use crate::net::IfStats;

/// Packets that may wait on the loopback queue; more are dropped (as a full backlog).
const LOOP_QUEUE: usize = 4096;
/// The largest frame read from a packet socket: GSO frames from a veth reach 64 KiB.
pub(crate) const RX_FRAME: usize = 65536 + 64;

/// The listen endpoints (by listener id) of a link whose listener has no socket left to
/// take a connection because the socket buffer budget is spent. A SYN to one is dropped
/// before smoltcp sees it, as Linux drops a SYN it has no room for, so that the peer
/// retries later; smoltcp would answer it with a reset (connection refused).
#[derive(Default)]
pub(crate) struct SynDrop(Vec<(u64, IpListenEndpoint)>);

impl SynDrop {
    /// Drops (`on`) or stops dropping SYNs to listener `id`'s endpoint.
    pub fn set(&mut self, id: u64, ep: IpListenEndpoint, on: bool) {
        self.0.retain(|(i, _)| *i != id);
        if on {
            self.0.push((id, ep));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether IP packet `p` is a SYN (without ACK) to one of the endpoints.
    fn drops(&self, p: &[u8]) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let Some((addr, port)) = syn_dst(p) else {
            return false;
        };
        self.0
            .iter()
            .any(|(_, ep)| ep.port == port && !matches!(ep.addr, Some(a) if a != addr))
    }

    /// [`drops`](Self::drops) for an ethernet frame.
    fn drops_frame(&self, f: &[u8]) -> bool {
        !self.0.is_empty()
            && matches!(f.get(12..14), Some([0x08, 0x00] | [0x86, 0xdd]))
            && self.drops(&f[14..])
    }
}

/// If `p` (an IP packet) is a TCP SYN without ACK: its destination address and port.
pub(crate) fn syn_dst(p: &[u8]) -> Option<(IpAddress, u16)> {
    let (addr, tcp) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            // TCP, and the first fragment (the only one with the header).
            let frag_off = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x1fff;
            if ihl < 20 || *p.get(9)? != 6 || frag_off != 0 {
                return None;
            }
            let b: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            (IpAddress::Ipv4(Ipv4Addr::from(b)), p.get(ihl..)?)
        }
        6 => {
            // Next header TCP (a SYN carries no extension headers in practice).
            if *p.get(6)? != 6 {
                return None;
            }
            let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            (IpAddress::Ipv6(Ipv6Addr::from(b)), p.get(40..)?)
        }
        _ => return None,
    };
    let port = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    // SYN set, ACK clear.
    (*tcp.get(13)? & 0x12 == 0x02).then_some((addr, port))
}

/// Loopback: what is transmitted is received next.
pub(crate) struct LoopDevice {
    pub queue: VecDeque<Vec<u8>>,
    pub syn_drop: SynDrop,
    /// (source, destination) of UDP datagrams an ICMP "port unreachable" sent on this
    /// link answered (bounded; drained after every poll).
    pub unreachable: Vec<(SocketAddr, SocketAddr)>,
    pub mtu: usize,
    pub stats: IfStats,
}

impl LoopDevice {
    pub fn new(mtu: usize, index: u32) -> LoopDevice {
        LoopDevice {
            queue: VecDeque::new(),
            syn_drop: SynDrop::default(),
            unreachable: Vec::new(),
            // An IPv4 packet's total length is 16 bits: Linux's lo MTU of 65536 cannot be
            // filled (its TCP MSS there is below 65495), and a 65536-byte packet would wrap
            // to length 0 and be dropped. The guest still sees the spec's MTU.
            mtu: mtu.min(65535),
            stats: IfStats {
                index,
                ..Default::default()
            },
        }
    }
}

/// If `p` (an IP packet) is an ICMP or ICMPv6 "port unreachable" about a UDP datagram:
/// that datagram's (source, destination).
pub(crate) fn port_unreachable(p: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let be16 = |b: &[u8], i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
    };
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            // ICMP, type 3 (destination unreachable), code 3 (port unreachable).
            if ihl < 20 || *p.get(9)? != 1 || *p.get(ihl)? != 3 || *p.get(ihl + 1)? != 3 {
                return None;
            }
            let inner = p.get(ihl + 8..)?;
            let ihl2 = usize::from(*inner.first()? & 0x0f) * 4;
            if inner[0] >> 4 != 4 || ihl2 < 20 || *inner.get(9)? != 17 {
                return None;
            }
            let ip = |i: usize| -> Option<IpAddr> {
                let b: [u8; 4] = inner.get(i..i + 4)?.try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(b)))
            };
            let src = SocketAddr::new(ip(12)?, be16(inner, ihl2)?);
            let dst = SocketAddr::new(ip(16)?, be16(inner, ihl2 + 2)?);
            Some((src, dst))
        }
        6 => {
            // Next header ICMPv6 (no extension headers), type 1, code 4 (port unreachable).
            if *p.get(6)? != 58 || *p.get(40)? != 1 || *p.get(41)? != 4 {
                return None;
            }
            let inner = p.get(48..)?;
            if *inner.first()? >> 4 != 6 || *inner.get(6)? != 17 {
                return None;
            }
            let ip = |i: usize| -> Option<IpAddr> {
                let b: [u8; 16] = inner.get(i..i + 16)?.try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            };
            let src = SocketAddr::new(ip(8)?, be16(inner, 40)?);
            let dst = SocketAddr::new(ip(24)?, be16(inner, 42)?);
            Some((src, dst))
        }
        _ => None,
    }
}

pub(crate) struct LoopRx(Vec<u8>);
pub(crate) struct LoopTx<'a>(&'a mut LoopDevice);

impl phy::RxToken for LoopRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        let st = &mut self.0.stats;
        if self.0.queue.len() < LOOP_QUEUE {
            st.tx_packets += 1;
            st.tx_bytes += len as u64;
            st.rx_packets += 1;
            st.rx_bytes += len as u64;
            if let Some(u) = port_unreachable(&buf) {
                if self.0.unreachable.len() < LOOP_QUEUE {
                    self.0.unreachable.push(u);
                }
            }
            self.0.queue.push_back(buf);
        } else {
            st.tx_dropped += 1;
        }
        r
    }
}

impl phy::Device for LoopDevice {
    type RxToken<'a> = LoopRx;
    type TxToken<'a> = LoopTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(LoopRx, LoopTx<'_>)> {
        loop {
            let p = self.queue.pop_front()?;
            if self.syn_drop.drops(&p) {
                self.stats.rx_dropped += 1;
                continue;
            }
            return Some((LoopRx(p), LoopTx(self)));
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<LoopTx<'_>> {
        Some(LoopTx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        // Packets never leave memory: no checksums either way.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}

/// A donated AF_PACKET socket bound to one interface of the pod's namespace.
pub(crate) struct PacketDevice {
    fd: OwnedFd,
    pub mtu: usize,
    rx: Vec<u8>,
    pub stats: IfStats,
    pub syn_drop: SynDrop,
}

impl PacketDevice {
    pub fn new(fd: OwnedFd, mtu: usize, index: u32) -> std::io::Result<PacketDevice> {
        // SAFETY: F_GETFL/F_SETFL on an fd we own; no memory is passed.
        let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if fl < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(PacketDevice {
            fd,
            mtu,
            rx: vec![0u8; RX_FRAME],
            stats: IfStats {
                index,
                ..Default::default()
            },
            syn_drop: SynDrop::default(),
        })
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Reads one frame into the receive buffer; its length, or None (EAGAIN, error).
    fn read_frame(&mut self) -> Option<usize> {
        loop {
            // SAFETY: `self.rx` is an exclusively borrowed buffer of `len` bytes; read(2)
            // writes at most that many and returns the count.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.rx.as_mut_ptr().cast(),
                    self.rx.len(),
                )
            };
            if n >= 0 {
                let n = n as usize;
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += n as u64;
                return Some(n);
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return None,
                _ => {
                    self.stats.rx_errors += 1;
                    return None;
                }
            }
        }
    }
}

pub(crate) struct PacketRx<'a>(&'a [u8]);
pub(crate) struct PacketTx<'a> {
    fd: i32,
    stats: &'a mut IfStats,
}

impl phy::RxToken for PacketRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for PacketTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        // SAFETY: `buf` is a live buffer of `len` bytes that write(2) only reads.
        let n = unsafe { libc::write(self.fd, buf.as_ptr().cast(), len) };
        if n == len as isize {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += len as u64;
        } else {
            // A full socket buffer drops the frame, as a full NIC queue would; TCP resends.
            self.stats.tx_dropped += 1;
        }
        r
    }
}

impl phy::Device for PacketDevice {
    type RxToken<'a> = PacketRx<'a>;
    type TxToken<'a> = PacketTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(PacketRx<'_>, PacketTx<'_>)> {
        let mut n = self.read_frame()?;
        while self.syn_drop.drops_frame(&self.rx[..n]) {
            self.stats.rx_dropped += 1;
            n = self.read_frame()?;
        }
        let fd = self.fd.as_raw_fd();
        Some((
            PacketRx(&self.rx[..n]),
            PacketTx {
                fd,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<PacketTx<'_>> {
        Some(PacketTx {
            fd: self.fd.as_raw_fd(),
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        // Frames from the host side of a veth carry CHECKSUM_PARTIAL (not filled in):
        // compute checksums on transmit, never verify on receive.
        let mut ck = ChecksumCapabilities::default();
        ck.ipv4 = Checksum::Tx;
        ck.udp = Checksum::Tx;
        ck.tcp = Checksum::Tx;
        ck.icmpv4 = Checksum::Tx;
        ck.icmpv6 = Checksum::Tx;
        caps.checksum = ck;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IP packet carrying a TCP header to `dst`:`port` with `flags`.
    fn tcp_packet(dst: IpAddr, port: u16, flags: u8) -> Vec<u8> {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&port.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        let mut p = match dst {
            IpAddr::V4(a) => {
                let mut h = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1];
                h.extend_from_slice(&a.octets());
                h
            }
            IpAddr::V6(a) => {
                let mut h = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
                h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
                h.extend_from_slice(&a.octets());
                h
            }
        };
        p.extend_from_slice(&tcp);
        p
    }

    #[test]
    fn only_syns_to_a_starved_endpoint_are_dropped_in_packets_and_frames() {
        let lo4: IpAddr = Ipv4Addr::LOCALHOST.into();
        let lo6: IpAddr = Ipv6Addr::LOCALHOST.into();
        let mut d = SynDrop::default();
        assert!(!d.drops(&tcp_packet(lo4, 80, 0x02)));
        // A wildcard listener on port 80 and one on [::1]:443.
        d.set(
            1,
            IpListenEndpoint {
                addr: None,
                port: 80,
            },
            true,
        );
        d.set(
            2,
            IpListenEndpoint {
                addr: Some(lo6.into()),
                port: 443,
            },
            true,
        );
        assert!(d.drops(&tcp_packet(lo4, 80, 0x02)));
        assert!(d.drops(&tcp_packet(lo6, 80, 0x02)));
        assert!(d.drops(&tcp_packet(lo6, 443, 0x02)));
        assert!(!d.drops(&tcp_packet(lo4, 443, 0x02)), "another address");
        assert!(!d.drops(&tcp_packet(lo4, 81, 0x02)), "another port");
        assert!(!d.drops(&tcp_packet(lo4, 80, 0x12)), "a SYN-ACK");
        assert!(!d.drops(&tcp_packet(lo4, 80, 0x10)), "an ACK");
        assert!(!d.drops(&tcp_packet(lo4, 80, 0x02)[..30]), "truncated");
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x86, 0xdd]);
        frame.extend_from_slice(&tcp_packet(lo6, 443, 0x02));
        assert!(d.drops_frame(&frame));
        frame[12] = 0x81; // a VLAN tag or anything else: not parsed, not dropped
        assert!(!d.drops_frame(&frame));
        d.set(
            1,
            IpListenEndpoint {
                addr: None,
                port: 80,
            },
            false,
        );
        assert!(!d.drops(&tcp_packet(lo4, 80, 0x02)));
        d.set(
            2,
            IpListenEndpoint {
                addr: None,
                port: 443,
            },
            false,
        );
        assert!(d.is_empty());
    }
}
