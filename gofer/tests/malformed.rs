//! Hostile bytes written straight to the server's socket: every one gets an error answer and
//! the server keeps serving.

mod common;

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use common::TempTree;
use nix::sys::socket::{recv, send, sendmsg, ControlMessage, MsgFlags};
use rvisor_gofer::protocol::{
    parse_frame, Encoder, Op, Request, Response, MAX_MESSAGE, REPLY_BIT, R_ERROR,
};
use rvisor_gofer::{serve, socketpair, GoferError, ServerOptions};
use rvisor_syscalls::Errno;

struct Raw {
    sock: OwnedFd,
    server: Option<JoinHandle<Result<(), GoferError>>>,
    _tree: TempTree,
}

impl Raw {
    fn new() -> Raw {
        let tree = TempTree::standard();
        let (server_sock, sock) = socketpair().unwrap();
        let root = tree.root_fd();
        let server =
            std::thread::spawn(move || serve(server_sock, root, ServerOptions { read_only: true }));
        Raw {
            sock,
            server: Some(server),
            _tree: tree,
        }
    }

    fn send(&self, msg: &[u8]) {
        let n = send(self.sock.as_raw_fd(), msg, MsgFlags::empty()).unwrap();
        assert_eq!(n, msg.len());
    }

    /// The next answer's code and decoded response.
    fn answer(&self) -> (u32, Response) {
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        let n = recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
        assert!(n > 0, "server closed the connection");
        let (code, body) = parse_frame(&buf[..n]).expect("server sent a malformed frame");
        (
            code,
            Response::decode(code, body).expect("server sent a malformed answer"),
        )
    }

    fn roundtrip(&self, msg: &[u8]) -> Response {
        self.send(msg);
        self.answer().1
    }

    /// Checks that well-formed requests are still served.
    fn assert_still_serving(&self) {
        match self.roundtrip(&Request::Attach.encode().unwrap()) {
            Response::Attach { fid, attr } => {
                assert!(attr.st_ino != 0);
                let walk = Request::Walk {
                    dir: fid,
                    name: b"hello.txt".to_vec(),
                }
                .encode()
                .unwrap();
                assert!(matches!(self.roundtrip(&walk), Response::Walk { .. }));
            }
            other => panic!("attach answered {other:?}"),
        }
    }

    /// Closes the connection and checks that the server ended cleanly, without panicking.
    fn finish(mut self) {
        let server = self.server.take().unwrap();
        drop(self);
        let result = server.join().expect("server panicked");
        assert!(result.is_ok(), "{result:?}");
    }
}

fn frame(code: u32, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(8 + body.len());
    msg.extend_from_slice(&code.to_le_bytes());
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(body);
    msg
}

#[test]
fn short_and_mismatched_headers_get_einval() {
    let raw = Raw::new();
    for msg in [&[1u8][..], &[1, 0, 0], &[1, 0, 0, 0, 0, 0, 0]] {
        assert_eq!(
            raw.roundtrip(msg),
            Response::Error(Errno::EINVAL),
            "{msg:?}"
        );
    }
    // Header says more (or less) body than arrived.
    let mut msg = frame(Op::Stat.code(), &1u64.to_le_bytes());
    msg[4..8].copy_from_slice(&100u32.to_le_bytes());
    assert_eq!(raw.roundtrip(&msg), Response::Error(Errno::EINVAL));
    msg[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(raw.roundtrip(&msg), Response::Error(Errno::EINVAL));
    msg[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(raw.roundtrip(&msg), Response::Error(Errno::EINVAL));
    raw.assert_still_serving();
    raw.finish();
}

#[test]
fn unknown_ops_get_enosys() {
    let raw = Raw::new();
    for code in [
        0,
        22,
        21,
        0xffff,
        u32::MAX,
        REPLY_BIT | Op::Attach.code(),
        R_ERROR,
    ] {
        let (resp_code, resp) = {
            raw.send(&frame(code, &[0; 12]));
            raw.answer()
        };
        assert_eq!(resp_code, R_ERROR);
        assert_eq!(resp, Response::Error(Errno::ENOSYS), "code {code:#x}");
    }
    raw.assert_still_serving();
    raw.finish();
}

#[test]
fn truncated_and_padded_bodies_get_einval() {
    let raw = Raw::new();
    let requests = [
        Request::Walk {
            dir: 1,
            name: b"hello.txt".to_vec(),
        },
        Request::Stat { fid: 1 },
        Request::Open { fid: 1, flags: 0 },
        Request::Getdents {
            dir: 1,
            offset: 0,
            max_bytes: 4096,
        },
        Request::Clunk { fid: 1 },
        Request::Statfs { fid: 1 },
        Request::Readlink { fid: 1 },
    ];
    for req in &requests {
        let msg = req.encode().unwrap();
        let body = &msg[8..];
        for cut in 0..body.len() {
            let r = raw.roundtrip(&frame(req.op().code(), &body[..cut]));
            assert_eq!(r, Response::Error(Errno::EINVAL), "{req:?} cut at {cut}");
        }
        let mut padded = body.to_vec();
        padded.push(0xaa);
        assert_eq!(
            raw.roundtrip(&frame(req.op().code(), &padded)),
            Response::Error(Errno::EINVAL),
            "{req:?} padded"
        );
    }
    // Attach takes no body at all.
    assert_eq!(
        raw.roundtrip(&frame(Op::Attach.code(), &[0])),
        Response::Error(Errno::EINVAL)
    );
    raw.assert_still_serving();
    raw.finish();
}

#[test]
fn bad_names_get_errors() {
    let raw = Raw::new();
    let Response::Attach { fid: root, .. } = raw.roundtrip(&Request::Attach.encode().unwrap())
    else {
        panic!()
    };
    // Name length past the body.
    let mut e = Encoder::new(Op::Walk.code());
    e.u64(root).u16(200).u8(b'a');
    assert_eq!(
        raw.roundtrip(&e.finish().unwrap()),
        Response::Error(Errno::EINVAL)
    );
    // Name longer than NAME_MAX.
    let mut body = root.to_le_bytes().to_vec();
    body.extend_from_slice(&300u16.to_le_bytes());
    body.extend(vec![b'a'; 300]);
    assert_eq!(
        raw.roundtrip(&frame(Op::Walk.code(), &body)),
        Response::Error(Errno::EINVAL)
    );
    // Names that would leave the directory.
    for name in [&b".."[..], b"../..", b"/etc/passwd", b"", b"a\0b"] {
        let msg = Request::Walk {
            dir: root,
            name: name.to_vec(),
        }
        .encode()
        .unwrap();
        assert_eq!(
            raw.roundtrip(&msg),
            Response::Error(Errno::EINVAL),
            "{name:?}"
        );
    }
    raw.assert_still_serving();
    raw.finish();
}

#[test]
fn oversized_messages_get_einval() {
    let raw = Raw::new();
    let big = vec![0x41u8; MAX_MESSAGE + 4096];
    assert_eq!(raw.roundtrip(&big), Response::Error(Errno::EINVAL));
    let mut framed = frame(Op::Walk.code(), &vec![0x41u8; MAX_MESSAGE]);
    framed.truncate(MAX_MESSAGE + 1);
    assert_eq!(raw.roundtrip(&framed), Response::Error(Errno::EINVAL));
    raw.assert_still_serving();
    raw.finish();
}

#[test]
fn requests_carrying_descriptors_are_refused_and_the_descriptors_closed() {
    let raw = Raw::new();
    let (a, b) = socketpair().unwrap();
    let msg = Request::Attach.encode().unwrap();
    let fds = [a.as_raw_fd(), b.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        raw.sock.as_raw_fd(),
        &[IoSlice::new(&msg)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    assert_eq!(raw.answer().1, Response::Error(Errno::EINVAL));
    // The server closed its copies: once we close ours, the pair's peer sees EOF.
    drop(a);
    let mut buf = [0u8; 4];
    assert_eq!(recv(b.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(), 0);
    raw.assert_still_serving();
    raw.finish();
}

#[test]
fn random_garbage_never_stops_the_server() {
    let raw = Raw::new();
    // xorshift64*: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in 0..3000 {
        let len = 1 + (next() % 96) as usize;
        let mut msg: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Give most packets a plausible header so the body decoders are exercised.
        if i % 4 != 0 && msg.len() >= 8 {
            let code = (next() % 22) as u32;
            msg[0..4].copy_from_slice(&code.to_le_bytes());
            let body = (msg.len() - 8) as u32;
            msg[4..8].copy_from_slice(&body.to_le_bytes());
            if i % 3 == 0 && msg.len() >= 16 {
                // A small fid, so some requests name a live one.
                msg[8..16].copy_from_slice(&(next() % 4).to_le_bytes());
            }
        }
        raw.send(&msg);
        let (code, _) = raw.answer();
        assert!(code & REPLY_BIT != 0, "answer {code:#x} to {msg:?}");
    }
    raw.assert_still_serving();
    raw.finish();
}
