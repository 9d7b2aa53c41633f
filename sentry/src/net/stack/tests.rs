//! Two sockets over the in-sentry loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use rvisor_syscalls::flags::poll::{POLLIN, POLLOUT};
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::Errno;

use super::{bufs, iface, SandboxStack};
use crate::kernel::membudget::MemBudget;
use crate::net::{addr, NetSocket, NetworkMode, NetworkSpec, NetworkStack, Proto};
use crate::vfs::file::FileImpl;

fn stack() -> Arc<SandboxStack> {
    SandboxStack::new(NetworkSpec::loopback_only(NetworkMode::None), Vec::new()).unwrap()
}

fn sa(domain: i32, s: &str) -> Vec<u8> {
    addr::encode(domain, &s.parse::<SocketAddr>().unwrap())
}

fn ns(f: &Arc<dyn FileImpl>) -> &dyn NetSocket {
    f.as_net_socket().unwrap()
}

fn port_of(f: &Arc<dyn FileImpl>) -> u16 {
    let n = ns(f).local_name().unwrap();
    u16::from_be_bytes([n[2], n[3]])
}

fn listener(st: &SandboxStack, domain: i32, at: &str, backlog: i32) -> (Arc<dyn FileImpl>, u16) {
    let l = st.socket(domain, SOCK_STREAM, 0, false).unwrap();
    ns(&l).bind(&sa(domain, at)).unwrap();
    ns(&l).listen(backlog).unwrap();
    let p = port_of(&l);
    (l, p)
}

fn recv_all(f: &Arc<dyn FileImpl>, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let r = ns(f).recv(&mut buf, MSG_WAITALL, false).unwrap();
    buf.truncate(r.len);
    buf
}

#[test]
fn tcp_connect_accept_echo_and_close() {
    let st = stack();
    let (l, port) = listener(&st, AF_INET, "127.0.0.1:0", 8);
    assert_ne!(port, 0);
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    ns(&c)
        .connect(&sa(AF_INET, &format!("127.0.0.1:{port}")), false)
        .unwrap();
    let (a, peer) = ns(&l).accept(true).unwrap();
    assert_eq!(peer, ns(&c).local_name().unwrap());
    assert_eq!(
        ns(&c).peer_name().unwrap(),
        sa(AF_INET, &format!("127.0.0.1:{port}"))
    );
    assert_eq!(ns(&c).send(b"hello", None, &[], 0, false).unwrap(), 5);
    assert_eq!(recv_all(&a, 5), b"hello");
    // A bulk transfer larger than the buffers, from another thread.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    let (a2, big2) = (a.clone(), big.clone());
    let h = std::thread::spawn(move || ns(&a2).send(&big2, None, &[], 0, false).unwrap());
    assert_eq!(recv_all(&c, big.len()), big);
    assert_eq!(h.join().unwrap(), big.len());
    let mut b = [0u8; 4];
    assert_eq!(ns(&c).recv(&mut b, 0, true).unwrap_err(), Errno::EAGAIN);
    drop(a);
    assert_eq!(ns(&c).recv(&mut b, 0, false).unwrap().len, 0);
    assert_ne!(c.readiness() & POLLIN, 0);
}

#[test]
fn tcp_backlog_holds_32_pending_connections() {
    let st = stack();
    let (l, port) = listener(&st, AF_INET, "0.0.0.0:0", 64);
    let to = sa(AF_INET, &format!("127.0.0.1:{port}"));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
            assert_eq!(ns(&c).connect(&to, true), Err(Errno::EINPROGRESS));
            c
        })
        .collect();
    assert_ne!(l.readiness() & POLLIN, 0);
    let mut peers = Vec::new();
    let mut accepted = Vec::new();
    for _ in 0..32 {
        let (a, peer) = ns(&l).accept(false).unwrap();
        peers.push(peer);
        accepted.push(a);
    }
    assert_eq!(
        ns(&l).accept(true).err().map(|e| e.0),
        Some(Errno::EAGAIN.0)
    );
    for c in &clients {
        assert_ne!(c.readiness() & POLLOUT, 0);
        assert_eq!(
            ns(c).getsockopt(SOL_SOCKET, SO_ERROR, 4).unwrap(),
            0i32.to_ne_bytes()
        );
        assert!(peers.contains(&ns(c).local_name().unwrap()));
    }
    assert_eq!(
        st.sockets(Proto::Tcp, false)
            .iter()
            .filter(|e| e.state == 1)
            .count(),
        64
    );
}

#[test]
fn nonblocking_connect_to_a_closed_port_is_refused() {
    let st = stack();
    let (l, port) = listener(&st, AF_INET, "127.0.0.1:0", 1);
    drop(l);
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    let to = sa(AF_INET, &format!("127.0.0.1:{port}"));
    assert_eq!(ns(&c).connect(&to, true), Err(Errno::EINPROGRESS));
    assert_eq!(
        ns(&c).getsockopt(SOL_SOCKET, SO_ERROR, 4).unwrap(),
        Errno::ECONNREFUSED.0.to_ne_bytes()
    );
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    assert_eq!(ns(&c).connect(&to, false), Err(Errno::ECONNREFUSED));
}

#[test]
fn reuseaddr_lets_a_listener_take_a_port_in_time_wait() {
    let st = stack();
    let (l, port) = listener(&st, AF_INET, "127.0.0.1:0", 1);
    let at = format!("127.0.0.1:{port}");
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    ns(&c).connect(&sa(AF_INET, &at), false).unwrap();
    let (a, _) = ns(&l).accept(false).unwrap();
    drop(l);
    drop(a); // the server closes first: its side goes to TIME_WAIT
    let mut b = [0u8; 1];
    assert_eq!(ns(&c).recv(&mut b, 0, false).unwrap().len, 0);
    drop(c);
    let n = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    assert_eq!(ns(&n).bind(&sa(AF_INET, &at)), Err(Errno::EADDRINUSE));
    let n = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    ns(&n)
        .setsockopt(SOL_SOCKET, SO_REUSEADDR, &1i32.to_ne_bytes())
        .unwrap();
    ns(&n).bind(&sa(AF_INET, &at)).unwrap();
    ns(&n).listen(1).unwrap();
}

#[test]
fn v6_listener_accepts_v4_clients_as_mapped_addresses() {
    let st = stack();
    let (l, port) = listener(&st, AF_INET6, "[::]:0", 4);
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    ns(&c)
        .connect(&sa(AF_INET, &format!("127.0.0.1:{port}")), false)
        .unwrap();
    let (a, peer) = ns(&l).accept(false).unwrap();
    let cport = port_of(&c);
    assert_eq!(peer, sa(AF_INET6, &format!("[::ffff:127.0.0.1]:{cport}")));
    let c6 = st.socket(AF_INET6, SOCK_STREAM, 0, false).unwrap();
    ns(&c6)
        .connect(&sa(AF_INET6, &format!("[::1]:{port}")), false)
        .unwrap();
    let (a6, peer6) = ns(&l).accept(false).unwrap();
    assert_eq!(peer6, ns(&c6).local_name().unwrap());
    ns(&a6).send(b"x", None, &[], 0, false).unwrap();
    assert_eq!(recv_all(&c6, 1), b"x");
    drop(a);
}

#[test]
fn udp_echo_with_sender_address_peek_and_truncation() {
    let st = stack();
    let s = st.socket(AF_INET, SOCK_DGRAM, 0, false).unwrap();
    ns(&s).bind(&sa(AF_INET, "127.0.0.1:0")).unwrap();
    let sp = port_of(&s);
    let c = st.socket(AF_INET, SOCK_DGRAM, 0, false).unwrap();
    let to = sa(AF_INET, &format!("127.0.0.1:{sp}"));
    assert_eq!(ns(&c).send(b"ping!", Some(&to), &[], 0, false).unwrap(), 5);
    let mut buf = [0u8; 64];
    let r = ns(&s).recv(&mut buf, MSG_PEEK, false).unwrap();
    assert_eq!(r.len, 5);
    let r = ns(&s).recv(&mut buf[..2], 0, false).unwrap();
    assert_eq!((r.len, r.full), (2, 5));
    let from = r.from.unwrap();
    assert_eq!(
        &from[2..4],
        &ns(&c).local_name().unwrap()[2..4],
        "the sender's port"
    );
    ns(&s).send(b"pong", Some(&from), &[], 0, false).unwrap();
    let r = ns(&c).recv(&mut buf, 0, false).unwrap();
    assert_eq!(&buf[..r.len], b"pong");
    assert_eq!(r.from.unwrap(), to);
    assert_eq!(ns(&c).recv(&mut buf, 0, true).unwrap_err(), Errno::EAGAIN);
    assert_eq!(
        ns(&c).send(&vec![0u8; 65508], Some(&to), &[], 0, false),
        Err(Errno::EMSGSIZE)
    );
    assert_eq!(
        ns(&c).send(&vec![7u8; 65507], Some(&to), &[], 0, false),
        Ok(65507)
    );
    assert_eq!(
        ns(&s).recv(&mut vec![0u8; 70000], 0, false).unwrap().len,
        65507
    );
}

#[test]
fn ping_socket_gets_an_echo_reply_from_127_0_0_1() {
    let st = stack();
    let p = st.socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, false).unwrap();
    let mut req = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
    req.extend_from_slice(b"payload");
    ns(&p)
        .send(&req, Some(&sa(AF_INET, "127.0.0.1:0")), &[], 0, false)
        .unwrap();
    let mut buf = [0u8; 64];
    let r = ns(&p).recv(&mut buf, 0, false).unwrap();
    assert_eq!(r.len, req.len());
    assert_eq!(buf[0], 0, "an echo reply");
    assert_eq!(&buf[6..r.len], &req[6..]);
    assert_eq!(
        st.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, false).err(),
        Some(Errno::EPERM)
    );
    let raw = st.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, true).unwrap();
    ns(&raw)
        .send(&req, Some(&sa(AF_INET, "127.0.0.1:0")), &[], 0, false)
        .unwrap();
    let r = ns(&raw).recv(&mut buf, 0, false).unwrap();
    assert_eq!(r.len, 20 + req.len(), "raw receives carry the IP header");
    assert_eq!((buf[0], buf[9], buf[20]), (0x45, 1, 0));
}

#[test]
fn connected_udp_to_a_closed_port_gets_econnrefused_once() {
    let st = stack();
    let gone = st.socket(AF_INET, SOCK_DGRAM, 0, false).unwrap();
    ns(&gone).bind(&sa(AF_INET, "127.0.0.1:0")).unwrap();
    let port = port_of(&gone);
    drop(gone);
    let d = st.socket(AF_INET, SOCK_DGRAM, 0, false).unwrap();
    ns(&d)
        .connect(&sa(AF_INET, &format!("127.0.0.1:{port}")), false)
        .unwrap();
    assert_eq!(ns(&d).send(b"x", None, &[], 0, true), Ok(1));
    assert_ne!(d.readiness() & rvisor_syscalls::flags::poll::POLLERR, 0);
    let mut buf = [0u8; 4];
    assert_eq!(
        ns(&d).recv(&mut buf, 0, true).err(),
        Some(Errno::ECONNREFUSED)
    );
    assert_eq!(ns(&d).recv(&mut buf, 0, true).err(), Some(Errno::EAGAIN));
}

#[test]
fn tcp_send_unconnected_is_epipe_and_reconnect_after_nonblocking_connect_is_ok_once() {
    let st = stack();
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    assert_eq!(ns(&c).send(b"x", None, &[], 0, true), Err(Errno::EPIPE));
    let (_l, port) = listener(&st, AF_INET, "127.0.0.1:0", 8);
    let to = sa(AF_INET, &format!("127.0.0.1:{port}"));
    assert_eq!(ns(&c).connect(&to, true), Err(Errno::EINPROGRESS));
    assert_eq!(ns(&c).connect(&to, true), Ok(()));
    assert_eq!(ns(&c).connect(&to, true), Err(Errno::EISCONN));
    assert_eq!(
        ns(&c).getsockopt(12345, 1, 4),
        Err(Errno::EOPNOTSUPP),
        "IPv4 getsockopt of an unknown level"
    );
    assert_eq!(
        ns(&c).setsockopt(SOL_SOCKET, SO_REUSEADDR, &[1]),
        Err(Errno::EINVAL)
    );
}

/// A loopback-only stack charging `max` bytes of budget of its own.
fn stack_with_budget(max: usize) -> (Arc<SandboxStack>, &'static MemBudget) {
    let b: &'static MemBudget = Box::leak(Box::new(MemBudget::new(max)));
    let st =
        SandboxStack::with_budget(NetworkSpec::loopback_only(NetworkMode::None), Vec::new(), b)
            .unwrap();
    (st, b)
}

/// What a loopback TCP socket with the default buffers is charged, and one with the floor's.
fn tcp_full() -> usize {
    bufs::LO_TCP_RX + bufs::LO_TCP_TX + std::mem::size_of::<smoltcp::socket::tcp::Socket>()
}

fn tcp_floor() -> usize {
    2 * bufs::TCP_FLOOR + std::mem::size_of::<smoltcp::socket::tcp::Socket>()
}

/// Rows of /proc/net/tcp in state `state` (Linux's number).
fn tcp_in_state(st: &SandboxStack, state: u8) -> usize {
    st.sockets(Proto::Tcp, false)
        .iter()
        .filter(|e| e.state == state)
        .count()
}

/// A connected client and the server side accepted for it.
type Pair = (Arc<dyn FileImpl>, Arc<dyn FileImpl>);

fn connect_accept(st: &SandboxStack, l: &Arc<dyn FileImpl>, port: u16) -> Result<Pair, Errno> {
    let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    ns(&c).connect(&sa(AF_INET, &format!("127.0.0.1:{port}")), false)?;
    let (a, _) = ns(l).accept(true)?;
    Ok((c, a))
}

#[test]
fn tcp_buffers_are_charged_for_the_life_of_a_connection_time_wait_included() {
    let (st, b) = stack_with_budget(64 << 20);
    let (l, port) = listener(&st, AF_INET, "127.0.0.1:0", 8);
    // The listener's pool: four sockets in LISTEN, with their buffers.
    assert_eq!(b.used(), 4 * tcp_full());
    let (c, a) = connect_accept(&st, &l, port).unwrap();
    // The client, and the pool socket that took the connection is replaced.
    assert_eq!(b.used(), 6 * tcp_full());
    ns(&c).send(b"bytes", None, &[], 0, false).unwrap();
    assert_eq!(recv_all(&a, 5), b"bytes");
    drop(a); // the server closes first: its side lingers in TIME_WAIT, still charged
    let mut buf = [0u8; 1];
    assert_eq!(ns(&c).recv(&mut buf, 0, false).unwrap().len, 0);
    drop(c);
    assert_eq!(tcp_in_state(&st, 6), 1, "one connection in TIME_WAIT");
    assert_eq!(b.used(), 5 * tcp_full());
    // Under pressure the TIME_WAIT connection gives its buffers back at the next poll,
    // and the listener keeps one socket ready instead of four.
    b.set_max(6 * tcp_full());
    st.shared.lock().poll(iface::LO);
    assert_eq!(tcp_in_state(&st, 6), 0);
    assert_eq!(b.used(), tcp_full());
    drop(l);
    assert_eq!(b.used(), 0);
}

#[test]
fn a_spent_budget_shrinks_then_refuses_new_tcp_sockets_and_dropped_syns_are_retried() {
    let (st, b) = stack_with_budget(64 << 20);
    let (l, port) = listener(&st, AF_INET, "127.0.0.1:0", 16);
    let to = sa(AF_INET, &format!("127.0.0.1:{port}"));
    // Room for one more small socket at a time: each client takes it, so the listener
    // cannot replace the pool sockets that connections take, until it has none left and
    // drops the next SYN instead of refusing the connection.
    let mut held = Vec::new();
    let c = loop {
        assert!(held.len() < 8, "the listener never ran out");
        b.set_max(b.used() + tcp_floor());
        let c = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
        assert_eq!(ns(&c).connect(&to, true), Err(Errno::EINPROGRESS));
        match ns(&l).accept(true) {
            Ok((a, _)) => held.push((c, a)),
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                break c;
            }
        }
    };
    assert_eq!(
        ns(&c).getsockopt(SOL_SOCKET, SO_ERROR, 4).unwrap(),
        0i32.to_ne_bytes(),
        "not refused"
    );
    assert_eq!(tcp_in_state(&st, 2), 1, "the client still in SYN_SENT");
    {
        let g = st.shared.lock();
        let caps: Vec<usize> = g
            .links
            .links
            .iter()
            .flat_map(|lk| lk.watches.keys().map(move |h| (lk, *h)))
            .map(|(lk, h)| {
                lk.set
                    .get::<smoltcp::socket::tcp::Socket>(h)
                    .recv_capacity()
            })
            .collect();
        assert!(
            caps.iter().filter(|c| **c == bufs::TCP_FLOOR).count() > held.len(),
            "small sockets under pressure: {caps:?}"
        );
    }
    // Nothing left: a new connection is refused ENOBUFS.
    let c2 = st.socket(AF_INET, SOCK_STREAM, 0, false).unwrap();
    assert_eq!(ns(&c2).connect(&to, true), Err(Errno::ENOBUFS));
    assert!(b.used() <= b.max());
    // Room again: the client's retransmitted SYN gets through.
    b.set_max(64 << 20);
    let (a, _) = ns(&l).accept(false).unwrap();
    assert_eq!(ns(&c).connect(&to, false), Ok(()));
    ns(&a).send(b"late", None, &[], 0, false).unwrap();
    assert_eq!(recv_all(&c, 4), b"late");
    drop((a, c, c2, held, l));
    b.set_max(1);
    st.shared.lock().poll(iface::LO);
    assert_eq!(
        b.used(),
        0,
        "every charge returned once TIME_WAIT is cut short"
    );
}

#[test]
fn udp_and_ping_sockets_are_charged_per_link_and_refused_enobufs_when_nothing_fits() {
    let (st, b) = stack_with_budget(4 << 20);
    let mut held = Vec::new();
    let err = loop {
        let u = st.socket(AF_INET, SOCK_DGRAM, 0, false).unwrap();
        match ns(&u).bind(&sa(AF_INET, "127.0.0.1:0")) {
            Ok(()) => held.push(u),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Errno::ENOBUFS);
    assert!(
        held.len() >= 10 && b.used() <= b.max(),
        "{} sockets",
        held.len()
    );
    let p = st.socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, false).unwrap();
    let req = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
    assert_eq!(
        ns(&p).send(&req, Some(&sa(AF_INET, "127.0.0.1:0")), &[], 0, false),
        Err(Errno::ENOBUFS)
    );
    // A datagram as large as UDP allows still passes between the smallest sockets.
    let (rx, tx) = (held.pop().unwrap(), held.pop().unwrap());
    let to = ns(&rx).local_name().unwrap();
    let big = vec![9u8; 65507];
    assert_eq!(ns(&tx).send(&big, Some(&to), &[], 0, false), Ok(65507));
    assert_eq!(
        ns(&rx).recv(&mut vec![0u8; 70000], 0, false).unwrap().len,
        65507
    );
    drop(held);
    assert_eq!(
        ns(&p).send(&req, Some(&sa(AF_INET, "127.0.0.1:0")), &[], 0, false),
        Ok(8)
    );
    drop((p, rx, tx));
    assert_eq!(b.used(), 0);
}
