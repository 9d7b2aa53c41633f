//! Unit tests of AF_UNIX sockets.

use super::names::Registration;
use super::queue::Ancillary;
use super::*;

trait Snd {
    fn snd(&self, b: &[u8], nonblock: bool) -> Result<usize, Errno>;
}

impl Snd for UnixSocket {
    fn snd(&self, b: &[u8], nonblock: bool) -> Result<usize, Errno> {
        self.send(b, nonblock, Ancillary::default(), None)
    }
}

fn pair(ty: SockType) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
    UnixSocket::pair(
        ty,
        PeerCred {
            pid: 1,
            uid: 0,
            gid: 0,
        },
        0,
        0,
    )
}

fn recv(s: &UnixSocket, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let r = s.recv(&mut buf, true, false, false)?;
    buf.truncate(r.copied);
    Ok(buf)
}

use crate::kernel::wait::test_support::spawn_with_waker as spawn;

#[test]
fn unix_stream_pair_is_bidirectional_and_merges_writes() {
    let (a, b) = pair(SockType::Stream);
    assert_eq!(a.snd(b"he", true), Ok(2));
    assert_eq!(a.snd(b"llo", true), Ok(3));
    assert_eq!(b.snd(b"back", true), Ok(4));
    assert_eq!(recv(&b, 100).unwrap(), b"hello");
    assert_eq!(recv(&a, 2).unwrap(), b"ba");
    assert_eq!(recv(&a, 2).unwrap(), b"ck");
    assert_eq!(recv(&a, 2), Err(Errno::EAGAIN));
}

#[test]
fn unix_stream_eof_epipe_and_econnreset_after_close() {
    let (a, b) = pair(SockType::Stream);
    a.snd(b"x", true).unwrap();
    drop(a);
    assert_eq!(
        recv(&b, 8).unwrap(),
        b"x",
        "queued data survives the peer's close"
    );
    assert_eq!(recv(&b, 8).unwrap(), b"", "then end of file");
    assert_eq!(b.snd(b"y", true), Err(Errno::EPIPE));
    assert_ne!(b.readiness() & POLLHUP, 0);
    // Closing with unread data resets the peer once.
    let (a, b) = pair(SockType::Stream);
    b.snd(b"unread", true).unwrap();
    drop(a);
    assert_eq!(recv(&b, 8), Err(Errno::ECONNRESET));
    assert_eq!(recv(&b, 8).unwrap(), b"");
}

#[test]
fn unix_stream_shutdown_wr_gives_peer_eof_and_self_epipe() {
    let (a, b) = pair(SockType::Stream);
    a.shutdown(1).unwrap();
    assert_eq!(a.snd(b"z", true), Err(Errno::EPIPE));
    assert_eq!(recv(&b, 4).unwrap(), b"");
    assert_eq!(b.readiness() & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    assert_eq!(
        b.snd(b"still", true),
        Ok(5),
        "the other direction stays open"
    );
    assert_eq!(recv(&a, 10).unwrap(), b"still");
    assert_eq!(a.shutdown(3), Err(Errno::EINVAL));
}

#[test]
fn unix_stream_send_buffer_fills_then_eagain_and_pollout_follows() {
    let (a, b) = pair(SockType::Stream);
    let mut total = 0;
    loop {
        match a.snd(&[1u8; 10000], true) {
            Ok(n) => total += n,
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                break;
            }
        }
    }
    assert_eq!(total, DEFAULT_BUF);
    assert_eq!(a.readiness() & POLLOUT, 0);
    let mut buf = vec![0u8; DEFAULT_BUF];
    assert_eq!(
        b.recv(&mut buf, true, false, false).unwrap().copied,
        DEFAULT_BUF
    );
    assert_ne!(a.readiness() & POLLOUT, 0);
}

#[test]
fn unix_dgram_and_seqpacket_keep_boundaries_and_truncate() {
    for ty in [SockType::Dgram, SockType::SeqPacket] {
        let (a, b) = pair(ty);
        a.snd(b"first", true).unwrap();
        a.snd(b"", true).unwrap();
        a.snd(b"second!", true).unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(
            b.recv(&mut buf, true, true, false)
                .map(|r| (r.copied, r.full)),
            Ok((3, 5)),
            "peek"
        );
        assert_eq!(
            b.recv(&mut buf, true, false, false)
                .map(|r| (r.copied, r.full)),
            Ok((3, 5))
        );
        assert_eq!(&buf, b"fir");
        assert_eq!(recv(&b, 100).unwrap(), b"", "an empty datagram");
        assert_eq!(recv(&b, 100).unwrap(), b"second!");
        assert_eq!(recv(&b, 100), Err(Errno::EAGAIN));
        assert_eq!(a.snd(&vec![0u8; DEFAULT_BUF], true), Err(Errno::EMSGSIZE));
    }
}

#[test]
fn unix_dgram_peer_close_is_econnrefused_then_enotconn() {
    let (a, b) = pair(SockType::Dgram);
    drop(b);
    assert_eq!(a.snd(b"x", true), Err(Errno::ECONNREFUSED));
    assert_eq!(a.snd(b"x", true), Err(Errno::ENOTCONN));
    assert_eq!(
        recv(&a, 4),
        Err(Errno::EAGAIN),
        "no end of file for datagrams"
    );
    let (a, b) = pair(SockType::SeqPacket);
    drop(b);
    assert_eq!(a.snd(b"x", true), Err(Errno::EPIPE));
    assert_eq!(recv(&a, 4).unwrap(), b"");
}

#[test]
fn unix_blocked_reader_wakes_on_data_and_on_signal() {
    let (a, b) = pair(SockType::Stream);
    let (_, h) = spawn(move || {
        let mut buf = [0u8; 4];
        let r = b.recv(&mut buf, false, false, true)?;
        Ok::<_, Errno>(buf[..r.copied].to_vec())
    });
    a.snd(b"ab", false).unwrap();
    a.snd(b"cd", false).unwrap();
    assert_eq!(
        h.join().unwrap(),
        Ok(b"abcd".to_vec()),
        "MSG_WAITALL waits for all"
    );
    let (_a, b) = pair(SockType::Dgram);
    let (w, h) = spawn(move || b.recv(&mut [0u8; 4], false, false, false).map(|r| r.copied));
    w.interrupt();
    assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
}

#[test]
fn unix_blocked_writer_wakes_when_reader_drains() {
    let (a, b) = pair(SockType::Stream);
    let data = vec![7u8; 3 * DEFAULT_BUF];
    let (_, h) = spawn(move || a.snd(&data, false));
    let mut got = 0;
    let mut buf = vec![0u8; 50_000];
    while got < 3 * DEFAULT_BUF {
        got += b.recv(&mut buf, false, false, false).unwrap().copied;
    }
    assert_eq!(h.join().unwrap(), Ok(3 * DEFAULT_BUF));
}

#[test]
fn unix_registry_finds_sockets_only() {
    let (a, _b) = pair(SockType::Stream);
    let imp: Arc<dyn FileImpl> = a.clone();
    assert!(as_unix(&imp).is_some_and(|s| Arc::ptr_eq(&s, &a)));
    let (r, _w) = crate::vfs::pipe::new_pipe(0);
    assert!(as_unix(r.imp()).is_none());
    assert_eq!(imp.stat().unwrap().st_mode, S_IFSOCK | 0o777);
    let lone = UnixSocket::unconnected(SockType::Stream, PeerCred::default(), 0, 0);
    assert_eq!(lone.snd(b"x", true), Err(Errno::ENOTCONN));
    assert_eq!(recv(&lone, 1), Err(Errno::EINVAL));
    assert_ne!(lone.readiness() & POLLHUP, 0);
}

fn cred(pid: i32) -> PeerCred {
    PeerCred {
        pid,
        uid: 0,
        gid: 0,
    }
}

fn bound_listener(ty: SockType, backlog: i32) -> Arc<UnixSocket> {
    let l = UnixSocket::unconnected(ty, cred(1), 0, 0);
    l.set_addr(
        Addr::Abstract(b"unit".to_vec()),
        Registration::Abstract(Vec::new()),
    )
    .unwrap();
    l.listen(backlog, cred(1)).unwrap();
    l
}

#[test]
fn unix_listener_queues_connections_until_accept_and_polls_readable() {
    let l = bound_listener(SockType::Stream, 1);
    assert_eq!(l.readiness(), 0, "nothing pending");
    let c = UnixSocket::unconnected(SockType::Stream, cred(2), 0, 0);
    c.connect_to(&l, true, cred(2)).unwrap();
    assert_ne!(l.readiness() & POLLIN, 0);
    assert_eq!(
        c.peer_cred(),
        cred(1),
        "the client sees the listener's credentials"
    );
    assert_eq!(c.peer_addr(), Ok(Some(Addr::Abstract(b"unit".to_vec()))));
    c.snd(b"early", true).unwrap();
    // Backlog 1 admits two connections (Linux's `>` test), then EAGAIN.
    let c2 = UnixSocket::unconnected(SockType::Stream, cred(3), 0, 0);
    c2.connect_to(&l, true, cred(3)).unwrap();
    let c3 = UnixSocket::unconnected(SockType::Stream, cred(4), 0, 0);
    assert_eq!(c3.connect_to(&l, true, cred(4)), Err(Errno::EAGAIN));
    let s = l.accept(true).unwrap();
    assert_eq!(s.peer_cred(), cred(2));
    assert_eq!(recv(&s, 10).unwrap(), b"early");
    assert_eq!(c.connect_to(&l, true, cred(2)), Err(Errno::EISCONN));
    let _s2 = l.accept(true).unwrap();
    assert!(l.accept(true).is_err_and(|e| e == Errno::EAGAIN));
    drop(l);
    assert_eq!(
        c3.connect_to(&c, true, cred(4)),
        Err(Errno::ECONNREFUSED),
        "not a listener"
    );
}

#[test]
fn unix_closing_a_listener_resets_pending_clients() {
    let l = bound_listener(SockType::SeqPacket, 4);
    let c = UnixSocket::unconnected(SockType::SeqPacket, cred(2), 0, 0);
    c.connect_to(&l, true, cred(2)).unwrap();
    drop(l);
    assert_eq!(c.snd(b"x", true), Err(Errno::EPIPE));
    assert_eq!(recv(&c, 4).unwrap(), b"");
}

#[test]
fn unix_stream_read_ends_after_data_carrying_files() {
    let (a, b) = pair(SockType::Stream);
    let (r, _w) = crate::vfs::pipe::new_pipe(0);
    a.snd(b"aa", true).unwrap();
    a.send(
        b"bb",
        true,
        Ancillary {
            files: vec![r],
            cred: cred(1),
        },
        None,
    )
    .unwrap();
    a.snd(b"cc", true).unwrap();
    let mut buf = [0u8; 16];
    let got = b.recv(&mut buf, true, false, false).unwrap();
    assert_eq!((got.copied, got.files.len()), (4, 1));
    let got = b.recv(&mut buf, true, false, false).unwrap();
    assert_eq!((got.copied, got.files.len()), (2, 0));
}

#[test]
fn unix_stream_with_passcred_does_not_merge_senders() {
    let (a, b) = pair(SockType::Stream);
    b.set_passcred(true);
    a.send(
        b"one",
        true,
        Ancillary {
            files: Vec::new(),
            cred: cred(10),
        },
        None,
    )
    .unwrap();
    a.send(
        b"two",
        true,
        Ancillary {
            files: Vec::new(),
            cred: cred(11),
        },
        None,
    )
    .unwrap();
    let mut buf = [0u8; 16];
    let got = b.recv(&mut buf, true, false, false).unwrap();
    assert_eq!((got.copied, got.cred), (3, Some(cred(10))));
    let got = b.recv(&mut buf, true, false, false).unwrap();
    assert_eq!((got.copied, got.cred), (3, Some(cred(11))));
}

#[test]
fn unix_dgram_to_a_named_socket_is_bounded_by_its_queue_length() {
    let srv = UnixSocket::unconnected(SockType::Dgram, cred(1), 0, 0);
    let cli = UnixSocket::unconnected(SockType::Dgram, cred(2), 0, 0);
    let mut sent = 0;
    while cli
        .send(b"m", true, Ancillary::default(), Some(&srv))
        .is_ok()
    {
        sent += 1;
        assert!(sent <= DGRAM_QLEN + 1, "unbounded");
    }
    assert_eq!(
        cli.send(b"m", true, Ancillary::default(), Some(&srv)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(recv(&srv, 4).unwrap(), b"m");
    assert!(cli
        .send(b"m", true, Ancillary::default(), Some(&srv))
        .is_ok());
    drop(srv);
    assert_eq!(cli.snd(b"m", true), Err(Errno::ENOTCONN));
}

#[test]
fn unix_socket_sent_over_itself_does_not_panic() {
    let (a, b) = pair(SockType::Stream);
    let fd = crate::vfs::FileDescription::new(b.clone(), None, 0);
    a.send(
        b"c",
        true,
        Ancillary {
            files: vec![fd],
            cred: cred(1),
        },
        None,
    )
    .unwrap();
    drop(a);
    drop(b);
}

#[test]
fn unix_blocking_connect_waits_for_room_in_the_backlog() {
    let l = bound_listener(SockType::Stream, 0);
    let c1 = UnixSocket::unconnected(SockType::Stream, cred(2), 0, 0);
    c1.connect_to(&l, true, cred(2)).unwrap();
    let l2 = l.clone();
    let (_, h) = spawn(move || {
        let c2 = UnixSocket::unconnected(SockType::Stream, cred(3), 0, 0);
        c2.connect_to(&l2, false, cred(3)).map(|()| c2)
    });
    let first = l.accept(false).unwrap();
    assert_eq!(first.peer_cred(), cred(2));
    let c2 = h.join().unwrap().unwrap();
    let second = l.accept(false).unwrap();
    assert_eq!(second.peer_cred(), cred(3));
    c2.snd(b"hi", true).unwrap();
    assert_eq!(recv(&second, 8).unwrap(), b"hi");
}
