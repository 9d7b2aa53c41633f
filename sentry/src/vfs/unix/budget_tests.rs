//! Unit tests of the sandbox-wide socket buffer budget on AF_UNIX sockets. Each test uses
//! its own budget, so they can run in parallel and check that it returns to zero.

use super::queue::Ancillary;
use super::*;
use crate::kernel::wait::test_support::spawn_with_waker as spawn;

fn cred() -> PeerCred {
    PeerCred {
        pid: 1,
        uid: 0,
        gid: 0,
    }
}

fn budget(max: usize) -> &'static MemBudget {
    Box::leak(Box::new(MemBudget::new(max)))
}

/// A connected pair whose queues charge `b`.
fn pair_in(ty: SockType, b: &'static MemBudget) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
    let conn = Arc::new(Connection {
        ty,
        state: Mutex::new(State {
            ends: [End::new(ty, true, true), End::new(ty, true, true)],
        }),
        queue: Arc::new(WaitQueue::new()),
        budget: b,
    });
    (
        UnixSocket::new_end(&conn, 0, cred(), 0, 0),
        UnixSocket::new_end(&conn, 1, cred(), 0, 0),
    )
}

fn snd(s: &UnixSocket, b: &[u8], nonblock: bool) -> Result<usize, Errno> {
    s.send(b, nonblock, Ancillary::default(), None)
}

/// Reads everything queued (non-blocking).
fn drain(s: &UnixSocket) -> usize {
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while let Ok(r) = s.recv(&mut buf, true, false, false) {
        if r.full == 0 {
            break;
        }
        n += r.full;
    }
    n
}

fn writable(s: &UnixSocket) -> bool {
    s.readiness() & POLLOUT != 0
}

#[test]
fn unix_streams_stop_at_the_sandbox_budget_and_reading_one_frees_room_for_another() {
    let b = budget(300_000);
    let pairs: Vec<_> = (0..4).map(|_| pair_in(SockType::Stream, b)).collect();
    let chunk = vec![1u8; 50_000];
    let mut sent = 0;
    for (w, _) in &pairs {
        loop {
            match snd(w, &chunk, true) {
                Ok(n) => sent += n,
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
    }
    // The first pair fills its SO_SNDBUF; the rest share what the budget has left.
    assert!(b.used() <= b.max());
    assert!(sent < 300_000 && sent > 300_000 - 4 * SEG_OVERHEAD - WRITABLE_MIN);
    assert!(
        !writable(&pairs[3].0),
        "no room in the budget: not writable"
    );
    assert_eq!(drain(&pairs[0].1), DEFAULT_BUF);
    assert!(
        writable(&pairs[3].0),
        "room freed elsewhere makes it writable"
    );
    assert_eq!(snd(&pairs[3].0, &chunk, true), Ok(chunk.len()));
    drop(pairs);
    assert_eq!(
        b.used(),
        0,
        "closing sockets with queued data returns their bytes"
    );
}

#[test]
fn unix_datagram_over_the_budget_gets_eagain_and_over_sndbuf_emsgsize() {
    let b = budget(10_100);
    let (a, c) = pair_in(SockType::Dgram, b);
    let big = vec![0u8; 9_000];
    assert_eq!(snd(&a, &big, true), Ok(9_000));
    assert_eq!(snd(&a, &big, true), Err(Errno::EAGAIN));
    assert_eq!(
        snd(&a, &[], true),
        Ok(0),
        "an empty datagram fits its overhead"
    );
    assert_eq!(
        snd(&a, &[], true),
        Err(Errno::EAGAIN),
        "empty datagrams count too"
    );
    let huge = vec![0u8; 2 * DEFAULT_BUF];
    assert_eq!(snd(&a, &huge, true), Err(Errno::EMSGSIZE));
    assert_eq!(drain(&c), 9_000);
    assert_eq!(b.used(), 0);
}

#[test]
fn unix_seqpacket_messages_count_against_the_budget_until_read() {
    let b = budget(4_000);
    let (a, c) = pair_in(SockType::SeqPacket, b);
    assert_eq!(snd(&a, &[5u8; 1000], true), Ok(1000));
    assert_eq!(b.used(), 1000 + MSG_OVERHEAD);
    assert_eq!(snd(&a, &[5u8; 3000], true), Err(Errno::EAGAIN));
    let mut buf = [0u8; 10];
    assert_eq!(
        c.recv(&mut buf, true, true, false).map(|r| r.full),
        Ok(1000),
        "peek"
    );
    assert_eq!(b.used(), 1000 + MSG_OVERHEAD);
    assert_eq!(
        c.recv(&mut buf, true, false, false).map(|r| r.full),
        Ok(1000)
    );
    assert_eq!(
        b.used(),
        0,
        "a truncated read drops the rest with its charge"
    );
}

#[test]
fn unix_blocked_writer_wakes_when_another_socket_frees_budget() {
    let b = budget(100_000);
    let (w1, r1) = pair_in(SockType::Stream, b);
    let (w2, r2) = pair_in(SockType::Stream, b);
    let filled = snd(&w1, &vec![0u8; 100_000], true).unwrap();
    assert_eq!(filled, 100_000 - SEG_OVERHEAD);
    let (_, h) = spawn(move || snd(&w2, &[9u8; 1000], false));
    // The writer blocks until the budget has room; draining the other pair frees it.
    while b.starved_len() == 0 {
        std::thread::yield_now();
    }
    assert_eq!(drain(&r1), filled);
    assert_eq!(h.join().unwrap(), Ok(1000));
    assert_eq!(drain(&r2), 1000);
    drop((w1, r1, r2));
    assert_eq!(b.used(), 0);
}

#[test]
fn unix_writer_blocked_on_the_budget_is_interrupted_by_a_signal() {
    let b = budget(10_000);
    let (w1, _r1) = pair_in(SockType::Stream, b);
    let (w2, _r2) = pair_in(SockType::Dgram, b);
    snd(&w1, &vec![0u8; 20_000], true).unwrap();
    let (w, h) = spawn(move || snd(&w2, &[1u8; 100], false));
    w.interrupt();
    assert_eq!(h.join().unwrap(), Err(Errno::ERESTARTSYS));
}

#[test]
fn unix_closing_a_socket_in_flight_returns_its_queued_bytes_too() {
    let b = budget(1 << 20);
    let (a, c) = pair_in(SockType::Stream, b);
    let (x, y) = pair_in(SockType::Dgram, b);
    snd(&x, &[3u8; 5000], true).unwrap();
    let fd = crate::vfs::FileDescription::new(y.clone(), None, 0);
    drop(y);
    a.send(
        b"f",
        true,
        Ancillary {
            files: vec![fd],
            cred: cred(),
        },
        None,
    )
    .unwrap();
    snd(&a, b"more", true).unwrap();
    assert_eq!(b.used(), 5000 + MSG_OVERHEAD + 5 + 2 * SEG_OVERHEAD);
    drop(x);
    drop(a);
    drop(c);
    assert_eq!(b.used(), 0);
}
