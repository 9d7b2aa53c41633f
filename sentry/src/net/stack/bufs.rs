//! The buffers of the stack's smoltcp sockets: their sizes, and their charge to the
//! sandbox's socket buffer budget ([`SOCKET_BUFFERS`](crate::kernel::membudget::SOCKET_BUFFERS)).
//!
//! smoltcp allocates every ring buffer whole when a socket is made and keeps it until the
//! socket leaves its set (for TCP after TIME_WAIT), so the stack charges the whole of a
//! socket's buffers when it makes it, and the charge goes with the socket
//! ([`State::remove_socket`](super::common::State::remove_socket)). Linux instead sizes
//! buffers by what is queued and lowers them under memory pressure; the stack follows the
//! second part: while three quarters of the budget are free a socket gets the sizes it
//! asks for, then smaller ones as the budget fills, down to a floor that still works (a
//! TCP window of 16 KiB; the largest datagram for UDP and ICMP) for the last half. Only
//! when not even the floor fits does making the socket fail (ENOBUFS), so that a sandbox
//! near its budget keeps working with many small sockets rather than a few large ones.

use smoltcp::socket::{icmp, tcp, udp};

use super::iface::LO;
use crate::kernel::membudget::{Charge, MemBudget};

/// The ring sizes (receive, send) of a TCP socket that setsockopt did not enlarge, on an
/// ethernet link: the receive window and the data in flight, so that a transfer over a
/// real network is not throttled (256 KiB in 10 ms is 25 MiB/s).
pub(crate) const TCP_RX: usize = 256 << 10;
pub(crate) const TCP_TX: usize = 256 << 10;
/// The same on loopback, where segments are received and acknowledged as they are sent,
/// so the send ring only holds what one write(2) hands over: a smaller one is as fast
/// (the receive window is what sets the rate) and costs less of the budget. Linux's
/// tcp_wmem starts at 16 KiB.
pub(crate) const LO_TCP_RX: usize = 256 << 10;
pub(crate) const LO_TCP_TX: usize = 32 << 10;
/// The smallest TCP rings under memory pressure.
pub(crate) const TCP_FLOOR: usize = 16 << 10;

/// UDP payload rings (receive, send) and their packet counts.
const UDP_RX: usize = 256 << 10;
const UDP_TX: usize = 160 << 10;
const UDP_PACKETS: usize = 128;
/// ICMP payload rings (each way) and their packet counts.
const ICMP_BYTES: usize = 128 << 10;
const ICMP_PACKETS: usize = 64;
/// The smallest datagram rings: the largest datagram (65527 bytes of UDP payload over
/// IPv6, an ICMP message as large) always fits an empty one.
const DGRAM_FLOOR: usize = 64 << 10;

/// The ring sizes (receive, send) a TCP socket on `link` gets unless it asks for more.
pub(crate) fn tcp_default(link: usize) -> (usize, usize) {
    if link == LO {
        (LO_TCP_RX, LO_TCP_TX)
    } else {
        (TCP_RX, TCP_TX)
    }
}

/// The per-connection settings a new smoltcp TCP socket gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpParams {
    /// The ring sizes asked for (receive, send): SO_RCVBUF/SO_SNDBUF's values, raised to
    /// the link's defaults ([`tcp_default`]).
    pub rx: usize,
    pub tx: usize,
    pub nodelay: bool,
    pub keepalive: Option<smoltcp::time::Duration>,
    pub hop_limit: Option<u8>,
}

/// Whether `budget` is under pressure: less than three quarters of it free. New sockets
/// get smaller buffers then ([`grant`]), and TCP connections in TIME_WAIT give theirs
/// back at once.
pub(crate) fn under_pressure(budget: &MemBudget) -> bool {
    (budget.free() as u128) * 4 < (budget.max() as u128) * 3
}

/// Charges the buffers of a new socket: ring sizes `want`, each scaled down by the same
/// factor under pressure but never below its `floor`, plus `fixed` bytes (the socket
/// itself and its packet metadata) that do not scale. The sizes granted and their charge,
/// or None when not even the floors fit.
pub(crate) fn grant<const N: usize>(
    budget: &'static MemBudget,
    want: [usize; N],
    floor: [usize; N],
    fixed: usize,
) -> Option<([usize; N], Charge)> {
    let floor: [usize; N] = std::array::from_fn(|i| floor[i].min(want[i]));
    let want_total: usize = want.iter().sum::<usize>() + fixed;
    let floor_total: usize = floor.iter().sum::<usize>() + fixed;
    let (free, max) = (budget.free(), budget.max());
    // The full sizes while three quarters of the budget are free, the floors once half
    // is used, in proportion between: a budget that fills keeps room for many small
    // sockets after the first large ones (as Linux under tcp_mem pressure holds sockets
    // to tcp_rmem[0] and tcp_wmem[0]).
    let (hi, lo) = (max / 4 * 3, max / 2);
    let target = if free >= hi {
        want_total
    } else if free <= lo {
        floor_total
    } else {
        floor_total
            + ((want_total - floor_total) as u128 * (free - lo) as u128 / (hi - lo) as u128)
                as usize
    };
    let mut charge = budget.try_charge_between(floor_total, target)?;
    let extra = charge.bytes() - floor_total;
    let room = want_total - floor_total;
    let sizes: [usize; N] = std::array::from_fn(|i| {
        let more = if room == 0 {
            0
        } else {
            ((want[i] - floor[i]) as u128 * extra as u128 / room as u128) as usize
        };
        // Whole KiB: the rings need no finer grain.
        ((floor[i] + more) & !1023).max(floor[i])
    });
    let used = sizes.iter().sum::<usize>() + fixed;
    let over = charge.bytes().saturating_sub(used);
    charge.release(over);
    Some((sizes, charge))
}

/// A new smoltcp TCP socket for `link` with its buffers charged to `budget` (None: not
/// even the floor fits).
pub(crate) fn tcp_socket(
    p: &TcpParams,
    link: usize,
    budget: &'static MemBudget,
) -> Option<(tcp::Socket<'static>, Charge)> {
    let fixed = std::mem::size_of::<tcp::Socket>();
    let (drx, dtx) = tcp_default(link);
    let want = [p.rx.max(drx), p.tx.max(dtx)];
    let ([rx, tx], charge) = grant(budget, want, [TCP_FLOOR, TCP_FLOOR], fixed)?;
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; rx]),
        tcp::SocketBuffer::new(vec![0u8; tx]),
    );
    s.set_nagle_enabled(!p.nodelay);
    s.set_keep_alive(p.keepalive);
    s.set_hop_limit(p.hop_limit);
    if link == LO {
        // Acknowledging at once costs nothing in memory and frees the peer's buffer.
        s.set_ack_delay(None);
    }
    Some((s, charge))
}

/// A new smoltcp UDP socket with its buffers charged to `budget` (None: not even the
/// floor fits).
pub(crate) fn udp_socket(budget: &'static MemBudget) -> Option<(udp::Socket<'static>, Charge)> {
    let fixed = std::mem::size_of::<udp::Socket>()
        + 2 * UDP_PACKETS * std::mem::size_of::<udp::PacketMetadata>();
    let ([rx, tx], charge) = grant(budget, [UDP_RX, UDP_TX], [DGRAM_FLOOR, DGRAM_FLOOR], fixed)?;
    let s = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; rx]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; tx]),
    );
    Some((s, charge))
}

/// A new smoltcp ICMP socket with its buffers charged to `budget` (None: not even the
/// floor fits).
pub(crate) fn icmp_socket(budget: &'static MemBudget) -> Option<(icmp::Socket<'static>, Charge)> {
    let fixed = std::mem::size_of::<icmp::Socket>()
        + 2 * ICMP_PACKETS * std::mem::size_of::<icmp::PacketMetadata>();
    let ([rx, tx], charge) = grant(
        budget,
        [ICMP_BYTES, ICMP_BYTES],
        [DGRAM_FLOOR, DGRAM_FLOOR],
        fixed,
    )?;
    let s = icmp::Socket::new(
        icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS],
            vec![0u8; rx],
        ),
        icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS],
            vec![0u8; tx],
        ),
    );
    Some((s, charge))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max: usize) -> &'static MemBudget {
        Box::leak(Box::new(MemBudget::new(max)))
    }

    fn params(rx: usize, tx: usize) -> TcpParams {
        TcpParams {
            rx,
            tx,
            nodelay: false,
            keepalive: None,
            hop_limit: None,
        }
    }

    #[test]
    fn a_socket_gets_what_it_asks_while_half_the_budget_is_free_and_its_charge_covers_it() {
        let b = budget(64 << 20);
        // SO_RCVBUF/SO_SNDBUF's defaults (131072 and 16384) are below the link's sizes.
        let (s, c) = tcp_socket(&params(131072, 16384), LO, b).unwrap();
        assert_eq!(
            (s.recv_capacity(), s.send_capacity()),
            (LO_TCP_RX, LO_TCP_TX)
        );
        assert_eq!(
            c.bytes(),
            LO_TCP_RX + LO_TCP_TX + std::mem::size_of::<tcp::Socket>()
        );
        let (e, c1) = tcp_socket(&params(131072, 16384), 1, b).unwrap();
        assert_eq!((e.recv_capacity(), e.send_capacity()), (TCP_RX, TCP_TX));
        assert_eq!(b.used(), c.bytes() + c1.bytes());
        drop((e, c1));
        assert_eq!(b.used(), c.bytes());
        // Enlarged by SO_RCVBUF/SO_SNDBUF: all of it charged.
        let (big, c2) = tcp_socket(&params(4 << 20, 1 << 20), LO, b).unwrap();
        assert_eq!(
            (big.recv_capacity(), big.send_capacity()),
            (4 << 20, 1 << 20)
        );
        assert!(c2.bytes() > 5 << 20);
        drop((s, c, big, c2));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn under_pressure_sockets_shrink_toward_the_floor_then_fail() {
        let b = budget(4 << 20);
        let mut held = Vec::new();
        let mut last = usize::MAX;
        while let Some((s, c)) = tcp_socket(&params(TCP_RX, TCP_TX), 1, b) {
            let (rx, tx) = (s.recv_capacity(), s.send_capacity());
            assert!(rx >= TCP_FLOOR && tx >= TCP_FLOOR && rx <= TCP_RX && tx <= TCP_TX);
            assert!(rx <= last, "sizes only go down as the budget fills");
            last = rx;
            held.push((s, c));
            assert!(b.used() <= b.max());
        }
        assert_eq!(last, TCP_FLOOR, "the last sockets got the floor");
        // Far more sockets than at full size (4 MiB / 512 KiB = 8).
        assert!(held.len() > 48, "{} sockets", held.len());
        assert!(b.free() < 2 * TCP_FLOOR + std::mem::size_of::<tcp::Socket>());
        assert!(udp_socket(b).is_none());
        held.truncate(1);
        assert!(udp_socket(b).is_some());
        drop(held);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn datagram_sockets_never_shrink_below_the_largest_datagram() {
        let b = budget(1 << 20);
        let (u, c) = udp_socket(b).unwrap();
        assert_eq!(
            (u.payload_recv_capacity(), u.payload_send_capacity()),
            (UDP_RX, UDP_TX)
        );
        let (u2, c2) = udp_socket(b).unwrap();
        assert!(u2.payload_recv_capacity() < UDP_RX, "under pressure");
        let (i, c3) = icmp_socket(b).unwrap();
        for cap in [
            u2.payload_recv_capacity(),
            u2.payload_send_capacity(),
            i.payload_recv_capacity(),
            i.payload_send_capacity(),
        ] {
            assert!(cap >= 65527, "{cap}");
        }
        assert_eq!(b.used(), c.bytes() + c2.bytes() + c3.bytes());
        drop((u, c, u2, c2, i, c3));
        assert_eq!(b.used(), 0);
    }
}
