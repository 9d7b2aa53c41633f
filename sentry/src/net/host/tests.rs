//! Host sockets over 127.0.0.1 in the test process, driven through NetSocket/FileImpl.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::mode::{S_IFMT, S_IFSOCK};
use rvisor_syscalls::flags::poll::{POLLIN, POLLOUT};
use rvisor_syscalls::flags::socket::*;
use rvisor_syscalls::Errno;

use super::HostNetwork;
use crate::kernel::wait::{block_on, test_support::spawn_with_waker};
use crate::net::{addr, Cmsg, NetworkMode, NetworkSpec, NetworkStack};
use crate::vfs::file::FileImpl;

/// A guard against a hang in a broken implementation (not a timing assertion).
const HANG: Duration = Duration::from_secs(20);

fn net() -> Arc<HostNetwork> {
    HostNetwork::new(NetworkSpec::loopback_only(NetworkMode::Host)).unwrap()
}

fn sock(n: &HostNetwork, domain: i32, ty: i32) -> Arc<dyn FileImpl> {
    n.socket(domain, ty, 0, false).unwrap()
}

fn v4(s: &str) -> Vec<u8> {
    addr::encode(AF_INET, &s.parse::<SocketAddr>().unwrap())
}

/// The address a socket is bound to.
fn name_of(f: &Arc<dyn FileImpl>) -> Vec<u8> {
    f.as_net_socket().unwrap().local_name().unwrap()
}

/// A TCP listener on 127.0.0.1 (an ephemeral port) and its address.
fn listener(n: &HostNetwork) -> (Arc<dyn FileImpl>, Vec<u8>) {
    let l = sock(n, AF_INET, SOCK_STREAM);
    let s = l.as_net_socket().unwrap();
    s.bind(&v4("127.0.0.1:0")).unwrap();
    s.listen(16).unwrap();
    let a = name_of(&l);
    (l, a)
}

/// Waits (through the socket's wait queue, woken by the poller) until `bits` are ready.
fn wait_ready(f: &Arc<dyn FileImpl>, bits: u32) -> u32 {
    let q = f.wait_queue().unwrap();
    block_on(&[q], Some(Instant::now() + HANG), || {
        let r = f.readiness();
        (r & bits != 0).then_some(Ok(r))
    })
    .unwrap()
}

#[test]
fn tcp_echo_over_loopback_with_blocking_calls() {
    let n = net();
    let (l, addr) = listener(&n);
    let server = std::thread::spawn(move || {
        let (c, peer) = l.as_net_socket().unwrap().accept(false).unwrap();
        assert_eq!(addr::family(&peer), Ok(AF_INET));
        let mut buf = [0u8; 64];
        let got = c.read(&mut buf, 0, 0).unwrap();
        assert_eq!(c.write(&buf[..got], 0, 0), Ok(got));
        // End of stream after the client shuts down its side.
        assert_eq!(c.read(&mut buf, 0, 0), Ok(0));
    });
    let c = sock(&n, AF_INET, SOCK_STREAM);
    let s = c.as_net_socket().unwrap();
    s.connect(&addr, false).unwrap();
    assert_eq!(s.peer_name().unwrap(), addr);
    assert_eq!(s.send(b"hello, host", None, &[], 0, false), Ok(11));
    let mut buf = [0u8; 11];
    assert_eq!(s.recv(&mut buf, MSG_WAITALL, false).map(|r| r.len), Ok(11));
    assert_eq!(&buf, b"hello, host");
    s.shutdown(SHUT_WR_TEST).unwrap();
    server.join().unwrap();
}

/// SHUT_WR.
const SHUT_WR_TEST: i32 = 1;

#[test]
fn udp_echo_reports_the_sender_and_full_length() {
    let n = net();
    let a = sock(&n, AF_INET, SOCK_DGRAM);
    let b = sock(&n, AF_INET, SOCK_DGRAM);
    let (sa, sb) = (a.as_net_socket().unwrap(), b.as_net_socket().unwrap());
    sa.bind(&v4("127.0.0.1:0")).unwrap();
    sb.bind(&v4("127.0.0.1:0")).unwrap();
    let (aa, ba) = (name_of(&a), name_of(&b));
    assert_eq!(sa.send(b"ping!", Some(&ba), &[], 0, false), Ok(5));
    let mut buf = [0u8; 16];
    let r = sb.recv(&mut buf, 0, false).unwrap();
    assert_eq!((r.len, r.full, &buf[..5]), (5, 5, &b"ping!"[..]));
    assert_eq!(r.from.as_deref(), Some(&aa[..]));
    sb.send(&buf[..5], r.from.as_deref(), &[], 0, false)
        .unwrap();
    // Peek, then a short buffer: the full length is reported.
    let mut small = [0u8; 2];
    let p = sa.recv(&mut small, MSG_PEEK, false).unwrap();
    assert_eq!((p.len, p.full), (2, 5));
    let r = sa.recv(&mut small, 0, false).unwrap();
    assert_eq!((r.len, r.full, &small), (2, 5, b"pi"));
    assert_eq!(sa.recv(&mut small, 0, true).err(), Some(Errno::EAGAIN));
}

#[test]
fn non_blocking_calls_answer_eagain_and_the_poller_reports_readiness() {
    let n = net();
    let (l, addr) = listener(&n);
    let ls = l.as_net_socket().unwrap();
    assert_eq!(ls.accept(true).err(), Some(Errno::EAGAIN));
    let c = sock(&n, AF_INET, SOCK_STREAM);
    let cs = c.as_net_socket().unwrap();
    // A non-blocking connect on loopback is in progress until the handshake is done.
    assert_eq!(cs.connect(&addr, true), Err(Errno::EINPROGRESS));
    assert_ne!(wait_ready(&c, POLLOUT) & POLLOUT, 0);
    assert_eq!(
        cs.getsockopt(SOL_SOCKET, SO_ERROR, 4),
        Ok(0i32.to_ne_bytes().to_vec())
    );
    wait_ready(&l, POLLIN);
    let (srv, _) = ls.accept(true).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        srv.read(&mut buf, 0, rvisor_syscalls::flags::open::O_NONBLOCK)
            .err(),
        Some(Errno::EAGAIN)
    );
    assert_eq!(srv.readiness() & POLLIN, 0);
    assert_eq!(cs.send(b"x", None, &[], 0, true), Ok(1));
    assert_ne!(wait_ready(&srv, POLLIN) & POLLIN, 0);
    assert_eq!(
        srv.as_net_socket()
            .unwrap()
            .recv(&mut buf, 0, true)
            .map(|r| r.len),
        Ok(1)
    );
}

#[test]
fn a_blocking_connect_to_a_closed_port_is_refused() {
    let n = net();
    // A port that was just free: bind, learn it, close.
    let tmp = sock(&n, AF_INET, SOCK_STREAM);
    tmp.as_net_socket()
        .unwrap()
        .bind(&v4("127.0.0.1:0"))
        .unwrap();
    let addr = name_of(&tmp);
    drop(tmp);
    let c = sock(&n, AF_INET, SOCK_STREAM);
    assert_eq!(
        c.as_net_socket().unwrap().connect(&addr, false),
        Err(Errno::ECONNREFUSED)
    );
}

#[test]
fn blocking_accept_and_recv_wake_on_host_events_and_signals_interrupt_them() {
    let n = net();
    let (l, addr) = listener(&n);
    let l2 = l.clone();
    let acceptor =
        std::thread::spawn(move || l2.as_net_socket().unwrap().accept(false).map(|(f, _)| f));
    let c = sock(&n, AF_INET, SOCK_STREAM);
    c.as_net_socket().unwrap().connect(&addr, false).unwrap();
    let srv = acceptor.join().unwrap().unwrap();
    let (waker, h) = spawn_with_waker(move || {
        let mut buf = [0u8; 4];
        srv.as_net_socket()
            .unwrap()
            .recv(&mut buf, 0, false)
            .map(|r| r.len)
    });
    waker.interrupt();
    assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
}

#[test]
fn options_round_trip_and_host_reaching_ones_are_refused() {
    let n = net();
    let t = sock(&n, AF_INET, SOCK_STREAM);
    let s = t.as_net_socket().unwrap();
    let one = 1i32.to_ne_bytes();
    for (level, name) in [
        (SOL_SOCKET, SO_REUSEADDR),
        (SOL_SOCKET, SO_KEEPALIVE),
        (SOL_TCP, TCP_NODELAY),
        (SOL_SOCKET, SO_REUSEPORT),
    ] {
        assert_eq!(
            s.getsockopt(level, name, 4),
            Ok(0i32.to_ne_bytes().to_vec())
        );
        s.setsockopt(level, name, &one).unwrap();
        assert_eq!(
            s.getsockopt(level, name, 4),
            Ok(one.to_vec()),
            "option {level}/{name}"
        );
    }
    s.setsockopt(SOL_TCP, TCP_KEEPIDLE, &77i32.to_ne_bytes())
        .unwrap();
    assert_eq!(
        s.getsockopt(SOL_TCP, TCP_KEEPIDLE, 4),
        Ok(77i32.to_ne_bytes().to_vec())
    );
    s.setsockopt(SOL_IP, IP_TTL, &9i32.to_ne_bytes()).unwrap();
    assert_eq!(
        s.getsockopt(SOL_IP, IP_TTL, 4),
        Ok(9i32.to_ne_bytes().to_vec())
    );
    let linger = [1i32.to_ne_bytes(), 5i32.to_ne_bytes()].concat();
    s.setsockopt(SOL_SOCKET, SO_LINGER, &linger).unwrap();
    assert_eq!(s.getsockopt(SOL_SOCKET, SO_LINGER, 8), Ok(linger));
    s.setsockopt(SOL_TCP, TCP_CONGESTION, b"reno\0").unwrap();
    assert_eq!(
        s.getsockopt(SOL_TCP, TCP_CONGESTION, 16)
            .map(|v| v.starts_with(b"reno")),
        Ok(true)
    );
    assert_eq!(
        s.setsockopt(SOL_TCP, TCP_CONGESTION, b"bogus"),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        s.getsockopt(SOL_SOCKET, SO_TYPE, 4),
        Ok(SOCK_STREAM.to_ne_bytes().to_vec())
    );
    assert_eq!(
        s.getsockopt(SOL_SOCKET, SO_PROTOCOL, 4),
        Ok(IPPROTO_TCP.to_ne_bytes().to_vec())
    );
    assert_eq!(
        s.getsockopt(SOL_SOCKET, SO_DOMAIN, 4),
        Ok(AF_INET.to_ne_bytes().to_vec())
    );
    assert_eq!(
        s.setsockopt(SOL_SOCKET, SO_TYPE, &one),
        Err(Errno::ENOPROTOOPT)
    );
    assert_eq!(
        s.setsockopt(SOL_SOCKET, SO_BINDTODEVICE, b"lo\0"),
        Err(Errno::EPERM)
    );
    assert_eq!(s.setsockopt(SOL_SOCKET, SO_MARK, &one), Err(Errno::EPERM));
    assert_eq!(
        s.setsockopt(SOL_SOCKET, SO_PRIORITY, &7i32.to_ne_bytes()),
        Err(Errno::EPERM)
    );
    assert_eq!(s.getsockopt(SOL_SOCKET, 26, 4), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        s.setsockopt(SOL_SOCKET, SO_REUSEADDR, &[1]),
        Err(Errno::EINVAL)
    );
    let v6 = sock(&n, AF_INET6, SOCK_STREAM);
    let s6 = v6.as_net_socket().unwrap();
    s6.setsockopt(SOL_IPV6, IPV6_V6ONLY, &one).unwrap();
    assert_eq!(s6.getsockopt(SOL_IPV6, IPV6_V6ONLY, 4), Ok(one.to_vec()));
}

#[test]
fn receive_timeout_is_kept_by_the_sentry_and_gives_eagain() {
    let n = net();
    let u = sock(&n, AF_INET, SOCK_DGRAM);
    let s = u.as_net_socket().unwrap();
    s.bind(&v4("127.0.0.1:0")).unwrap();
    let tv = [0i64.to_ne_bytes(), 20_000i64.to_ne_bytes()].concat();
    s.setsockopt(SOL_SOCKET, SO_RCVTIMEO, &tv).unwrap();
    assert_eq!(s.getsockopt(SOL_SOCKET, SO_RCVTIMEO, 16), Ok(tv));
    let bad = [0i64.to_ne_bytes(), 1_000_000i64.to_ne_bytes()].concat();
    assert_eq!(
        s.setsockopt(SOL_SOCKET, SO_RCVTIMEO, &bad),
        Err(Errno::EDOM)
    );
    let mut buf = [0u8; 4];
    assert_eq!(s.recv(&mut buf, 0, false).err(), Some(Errno::EAGAIN));
}

#[test]
fn control_messages_go_out_from_the_allow_list_and_come_back() {
    let n = net();
    let a = sock(&n, AF_INET, SOCK_DGRAM);
    let b = sock(&n, AF_INET, SOCK_DGRAM);
    let (sa, sb) = (a.as_net_socket().unwrap(), b.as_net_socket().unwrap());
    sb.bind(&v4("127.0.0.1:0")).unwrap();
    sb.setsockopt(SOL_IP, IP_PKTINFO, &1i32.to_ne_bytes())
        .unwrap();
    sb.setsockopt(SOL_IP, IP_RECVTTL, &1i32.to_ne_bytes())
        .unwrap();
    let to = name_of(&b);
    let ttl = Cmsg {
        level: SOL_IP,
        ty: IP_TTL,
        data: 33i32.to_ne_bytes().to_vec(),
    };
    let rights = Cmsg {
        level: SOL_SOCKET,
        ty: SCM_RIGHTS,
        data: 0i32.to_ne_bytes().to_vec(),
    };
    assert_eq!(sa.send(b"c", Some(&to), &[ttl, rights], 0, false), Ok(1));
    let bogus = Cmsg {
        level: SOL_SOCKET,
        ty: SO_MARK,
        data: vec![0; 4],
    };
    assert_eq!(
        sa.send(b"c", Some(&to), &[bogus], 0, false),
        Err(Errno::EINVAL)
    );
    let mut buf = [0u8; 4];
    let r = sb.recv(&mut buf, 0, false).unwrap();
    let pktinfo = r
        .control
        .iter()
        .find(|m| m.level == SOL_IP && m.ty == IP_PKTINFO)
        .expect("IP_PKTINFO");
    assert_eq!(pktinfo.data.len(), IN_PKTINFO_SIZE);
    assert_eq!(&pktinfo.data[8..12], &[127, 0, 0, 1], "ipi_addr");
    let got_ttl = r
        .control
        .iter()
        .find(|m| m.level == SOL_IP && m.ty == IP_TTL)
        .expect("IP_TTL");
    assert_eq!(got_ttl.data, 33i32.to_ne_bytes().to_vec());
}

#[test]
fn socket_arguments_are_checked_and_files_are_sockets_with_own_inodes() {
    let n = net();
    assert_eq!(
        n.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, false).err(),
        Some(Errno::EPERM)
    );
    assert_eq!(
        n.socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, false).err(),
        Some(Errno::EPERM)
    );
    assert_eq!(
        n.socket(AF_UNIX, SOCK_STREAM, 0, false).err(),
        Some(Errno::EAFNOSUPPORT)
    );
    assert_eq!(
        n.socket(AF_INET, SOCK_SEQPACKET, 0, false).err(),
        Some(Errno::ESOCKTNOSUPPORT)
    );
    assert_eq!(
        n.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP, false).err(),
        Some(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        n.socket(AF_INET, SOCK_STREAM, 256, false).err(),
        Some(Errno::EINVAL)
    );
    let a = sock(&n, AF_INET, SOCK_STREAM);
    let b = sock(&n, AF_INET6, SOCK_DGRAM);
    let (sa, sb) = (a.stat().unwrap(), b.stat().unwrap());
    assert_eq!(sa.st_mode & S_IFMT, S_IFSOCK);
    assert_ne!(sa.st_ino, sb.st_ino);
    assert_eq!(b.as_net_socket().unwrap().protocol(), IPPROTO_UDP);
    // An AF_INET6 socket takes only sockaddr_in6 (a shorter address is EINVAL first).
    assert_eq!(
        b.as_net_socket().unwrap().bind(&v4("127.0.0.1:0")),
        Err(Errno::EINVAL)
    );
    let mut wrong_family = v4("127.0.0.1:0");
    wrong_family.resize(SOCKADDR_IN6 as usize, 0);
    assert_eq!(
        b.as_net_socket().unwrap().bind(&wrong_family),
        Err(Errno::EAFNOSUPPORT)
    );
    assert_eq!(
        a.as_net_socket().unwrap().bind(&[2, 0, 0]),
        Err(Errno::EINVAL)
    );
}

#[test]
fn tcp_over_ipv6_loopback_and_peer_names() {
    let n = net();
    let l = sock(&n, AF_INET6, SOCK_STREAM);
    let ls = l.as_net_socket().unwrap();
    let any6 = addr::encode(AF_INET6, &"[::1]:0".parse::<SocketAddr>().unwrap());
    ls.bind(&any6).unwrap();
    ls.listen(4).unwrap();
    let addr = name_of(&l);
    assert_eq!(
        addr::parse(AF_INET6, &addr).map(|a| a.ip().is_loopback()),
        Ok(true)
    );
    let c = sock(&n, AF_INET6, SOCK_STREAM);
    c.as_net_socket().unwrap().connect(&addr, false).unwrap();
    let (srv, peer) = ls.accept(false).unwrap();
    assert_eq!(peer, name_of(&c));
    assert_eq!(c.write(b"six", 0, 0), Ok(3));
    let mut buf = [0u8; 3];
    assert_eq!(srv.read(&mut buf, 0, 0), Ok(3));
    assert_eq!(&buf, b"six");
}

#[test]
fn a_large_blocking_stream_send_completes_while_the_peer_drains() {
    let n = net();
    let (l, addr) = listener(&n);
    let c = sock(&n, AF_INET, SOCK_STREAM);
    c.as_net_socket().unwrap().connect(&addr, false).unwrap();
    let (srv, _) = l.as_net_socket().unwrap().accept(false).unwrap();
    const TOTAL: usize = 8 << 20;
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut got = 0usize;
        let mut sum = 0u64;
        loop {
            let k = srv.read(&mut buf, 0, 0).unwrap();
            if k == 0 {
                return (got, sum);
            }
            sum += buf[..k].iter().map(|&b| b as u64).sum::<u64>();
            got += k;
        }
    });
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let want_sum: u64 = data.iter().map(|&b| b as u64).sum();
    assert_eq!(
        c.as_net_socket().unwrap().send(&data, None, &[], 0, false),
        Ok(TOTAL)
    );
    c.as_net_socket().unwrap().shutdown(SHUT_WR_TEST).unwrap();
    assert_eq!(reader.join().unwrap(), (TOTAL, want_sum));
}

#[test]
fn a_send_timeout_returns_the_bytes_queued_then_eagain() {
    let n = net();
    let (l, addr) = listener(&n);
    let c = sock(&n, AF_INET, SOCK_STREAM);
    let cs = c.as_net_socket().unwrap();
    cs.setsockopt(SOL_SOCKET, SO_SNDBUF, &4096i32.to_ne_bytes())
        .unwrap();
    cs.connect(&addr, false).unwrap();
    // The peer never reads.
    let (_srv, _) = l.as_net_socket().unwrap().accept(false).unwrap();
    let tv = [0i64.to_ne_bytes(), 20_000i64.to_ne_bytes()].concat();
    cs.setsockopt(SOL_SOCKET, SO_SNDTIMEO, &tv).unwrap();
    let data = vec![7u8; 16 << 20];
    let sent = cs.send(&data, None, &[], 0, false).unwrap();
    assert!(sent > 0 && sent < data.len(), "a partial send: {sent}");
    // Once the buffers are full, nothing more goes before the timeout: EAGAIN. (The host
    // kernel may still move queued bytes to the peer's receive buffer, whose window
    // autotuning can open, so a few more partial sends may come first under load.)
    let mut partial = 0;
    loop {
        match cs.send(&data, None, &[], 0, false) {
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                break;
            }
            Ok(more) => {
                assert!(more > 0 && more < data.len(), "a partial send: {more}");
                partial += 1;
                assert!(partial < 64, "the peer never reads, yet sends keep going");
            }
        }
    }
}
