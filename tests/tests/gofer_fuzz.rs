//! The real `rvisor gofer` (confined: namespaces, chroot, capabilities, seccomp) fed tens of
//! thousands of random and mutated messages over its socket: it must answer every one with
//! a well-formed reply, never die (a syscall off its seccomp list would kill it), keep
//! answering valid requests correctly, and never change anything outside the served tree.
//!
//! The messages are encoded here by hand from the wire format (code, length, body), so the
//! fuzzer does not share the gofer's own encoder. The run lasts about 20 s (split over a
//! writable and a read-only gofer); `RVISOR_FUZZ_SECS` sets another budget and
//! `RVISOR_FUZZ_SEED` another seed. A failure prints the seed and the last messages sent.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rvisor_tests::*;

const REPLY_BIT: u32 = 0x8000_0000;
const MAX_MESSAGE: usize = 72 * 1024;
/// A file only the checks use: no name the fuzzer makes can reach it.
const CANARY: &str = "canary-5d41402abc4b2a76.txt";
const CANARY_TEXT: &[u8] = b"the gofer still serves\n";
/// The fd numbers the gofer gets its tree and socket at.
const CHILD_ROOT_FD: RawFd = 100;
const CHILD_SOCK_FD: RawFd = 101;

/// xorshift64*: a small deterministic generator, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A message body under construction (little-endian, like the protocol).
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn s16(mut self, s: &[u8]) -> Self {
        self.0.extend_from_slice(&(s.len().min(0xffff) as u16).to_le_bytes());
        self.0.extend_from_slice(s);
        self
    }
    fn s32(mut self, s: &[u8]) -> Self {
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s);
        self
    }
    fn frame(self, code: u32) -> Vec<u8> {
        let mut m = code.to_le_bytes().to_vec();
        m.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
        m.extend(self.0);
        m
    }
}

/// One answer: its code, body and how many fds came with it.
struct Answer {
    code: u32,
    body: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Answer {
    /// The fid of an attach, walk or new-node answer.
    fn fid(&self) -> Option<u64> {
        let op = self.code & !REPLY_BIT;
        let gives_fid = self.code & REPLY_BIT != 0 && matches!(op, 1 | 2 | 9..=12);
        let first: [u8; 8] = self.body.get(..8)?.try_into().ok()?;
        gives_fid.then_some(u64::from_le_bytes(first))
    }
}

fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A close-on-exec copy of `fd` numbered 200 or more, clear of the child's fixed numbers.
fn high_dup(fd: RawFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer; the new descriptor is ours.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 200) };
    assert!(r >= 0, "dup: {}", std::io::Error::last_os_error());
    // SAFETY: `r` is a new descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(r) }
}

fn open_path(p: &Path) -> OwnedFd {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is NUL-terminated; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open {}: {}", p.display(), std::io::Error::last_os_error());
    // SAFETY: `fd` is new and ours.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A running `rvisor gofer` and our end of its socket.
struct Gofer {
    child: Child,
    /// Our end of the connection (`None` once closed).
    sock: Option<OwnedFd>,
    /// The last messages sent, for the failure report.
    recent: VecDeque<Vec<u8>>,
    seed: u64,
}

impl Gofer {
    fn start(served: &Path, read_only: bool, stderr: &Path, seed: u64) -> Gofer {
        let (ours, theirs) = socketpair();
        let root = high_dup(open_path(served).as_raw_fd());
        let theirs = high_dup(theirs.as_raw_fd());
        let (root_raw, sock_raw) = (root.as_raw_fd(), theirs.as_raw_fd());
        let mut cmd = Command::new(rvisor_bin());
        cmd.arg("gofer").arg(format!("--root-fd={CHILD_ROOT_FD}")).arg(format!("--sock-fd={CHILD_SOCK_FD}"));
        if read_only {
            cmd.arg("--read-only");
        }
        cmd.env_remove("RVISOR_GOFER_SECCOMP").stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(std::fs::File::create(stderr).unwrap());
        // SAFETY: the closure runs in the forked child before exec and only calls dup2 and
        // prctl, which are async-signal-safe; the source numbers are >= 200, so the first
        // dup2 cannot overwrite the second's source.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(root_raw, CHILD_ROOT_FD) < 0
                    || libc::dup2(sock_raw, CHILD_SOCK_FD) < 0
                    || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting rvisor gofer");
        Gofer { child, sock: Some(ours), recent: VecDeque::new(), seed }
    }

    fn sock_fd(&self) -> RawFd {
        self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    fn fail(&mut self, what: &str) -> ! {
        let status = self.child.try_wait().ok().flatten();
        let recent: Vec<String> = self.recent.iter().map(|m| hex(m)).collect();
        panic!(
            "{what} (seed {:#x}, gofer status {status:?}); last messages sent, oldest first:\n{}",
            self.seed,
            recent.join("\n")
        );
    }

    fn send(&mut self, msg: &[u8], fds: &[RawFd]) {
        self.recent.push_back(msg.to_vec());
        if self.recent.len() > 8 {
            self.recent.pop_front();
        }
        let mut iov = libc::iovec { iov_base: msg.as_ptr() as *mut libc::c_void, iov_len: msg.len() };
        let mut cmsg = [0u64; 16];
        // SAFETY: an all-zero msghdr is valid.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        if !fds.is_empty() {
            let n = fds.len().min(8);
            // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
            let (space, len) = unsafe { (libc::CMSG_SPACE((n * 4) as u32), libc::CMSG_LEN((n * 4) as u32)) };
            hdr.msg_control = cmsg.as_mut_ptr().cast();
            hdr.msg_controllen = space as usize;
            // SAFETY: the control buffer (128 bytes, 8-aligned) holds a header and 8 fds;
            // CMSG_FIRSTHDR points at its start.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&hdr);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = len as usize;
                std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), n);
            }
        }
        // SAFETY: `hdr` describes `msg` and `cmsg`, alive for the call.
        let r = unsafe { libc::sendmsg(self.sock_fd(), &hdr, libc::MSG_NOSIGNAL) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            self.fail(&format!("sending to the gofer failed: {e}"));
        }
    }

    /// The answer to the message just sent; fails if none comes within 10 s or it is not a
    /// well-formed reply.
    fn answer(&mut self) -> Answer {
        let mut pfd = libc::pollfd { fd: self.sock_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `pfd` is one live pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
        if n != 1 {
            self.fail("the gofer did not answer within 10 s");
        }
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        let mut cmsg = [0u64; 16];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: an all-zero msghdr is valid.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cmsg.as_mut_ptr().cast();
        hdr.msg_controllen = std::mem::size_of_val(&cmsg);
        // SAFETY: `hdr` describes `buf` and `cmsg`, exclusively borrowed and alive.
        let r = unsafe { libc::recvmsg(self.sock_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        let mut fds = Vec::new();
        // SAFETY: `hdr` was filled by recvmsg; the CMSG macros stay inside its control buffer.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                    for i in 0..count {
                        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                c = libc::CMSG_NXTHDR(&hdr, c);
            }
        }
        if r <= 0 {
            let e = std::io::Error::last_os_error();
            self.fail(&format!("the gofer closed the connection or failed ({r}: {e})"));
        }
        let n = r as usize;
        if n < 8 || n > MAX_MESSAGE || hdr.msg_flags & libc::MSG_TRUNC != 0 {
            self.fail(&format!("malformed answer of {n} bytes"));
        }
        let code = u32::from_le_bytes(buf[0..4].try_into().unwrap());
        let len = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
        if len != n - 8 || code & REPLY_BIT == 0 {
            self.fail(&format!("malformed answer header {}", hex(&buf[..n.min(16)])));
        }
        if code == REPLY_BIT {
            let errno = buf.get(8..12).map(|b| i32::from_le_bytes(b.try_into().unwrap()));
            if n != 12 || !errno.is_some_and(|e| (1..4096).contains(&e)) {
                self.fail(&format!("malformed error answer {}", hex(&buf[..n.min(16)])));
            }
        }
        Answer { code, body: buf[8..n].to_vec(), fds }
    }

    fn roundtrip(&mut self, msg: &[u8]) -> Answer {
        self.send(msg, &[]);
        self.answer()
    }

    /// Fails unless the gofer is alive and serves the canary file's contents.
    fn check_still_serving(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.fail(&format!("the gofer died: {status}"));
        }
        let attach = self.roundtrip(&Body::default().frame(1));
        let Some(root) = attach.fid() else { self.fail("attach failed") };
        let walk = self.roundtrip(&Body::default().u64(root).s16(CANARY.as_bytes()).frame(2));
        let Some(fid) = walk.fid() else { self.fail("walk to the canary failed") };
        let mut open = self.roundtrip(&Body::default().u64(fid).u32(libc::O_RDONLY as u32).frame(4));
        if open.code != REPLY_BIT | 4 || open.fds.len() != 1 {
            self.fail("open of the canary failed");
        }
        let file = std::fs::File::from(open.fds.remove(0));
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut text).unwrap();
        if text != CANARY_TEXT {
            self.fail(&format!("the canary reads {text:?}"));
        }
        for f in [fid, root] {
            if self.roundtrip(&Body::default().u64(f).frame(7)).code != REPLY_BIT | 7 {
                self.fail("clunk failed");
            }
        }
    }

    /// Closes the connection: the gofer must exit 0.
    fn finish(mut self) {
        drop(self.sock.take());
        let status = self.child.wait().unwrap();
        if !status.success() {
            self.fail(&format!("the gofer exited with {status} after the connection closed"));
        }
    }
}

impl Drop for Gofer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(b: &[u8]) -> String {
    let shown: String = b.iter().take(96).map(|x| format!("{x:02x}")).collect();
    if b.len() > 96 {
        format!("{shown}... ({} bytes)", b.len())
    } else {
        shown
    }
}

/// Names the fuzzer uses: ordinary ones, hostile ones, and none that reaches the canary.
const NAMES: &[&[u8]] = &[
    b"a", b"b", b"dir", b"file", b"sub", b"out", b"fifo", b"link", b"new", b".", b"..", b"", b"a/b", b"/etc",
    b"x\0y", b"../outside", b"..\0", b"\xff\xfe",
];
const TARGETS: &[&[u8]] = &[b"../outside/secret", b"/etc/passwd", b"/", b"..", b"a", b"", b"x\0y"];
const XATTRS: &[&[u8]] = &[b"user.a", b"user.fuzz", b"security.capability", b"trusted.x", b"user.", b"", b"user.\0x"];

/// A plausible request: a valid shape with fids from `fids` (or random) and names, flags and
/// modes from small dictionaries (or random).
fn request(rng: &mut Rng, fids: &[u64]) -> Vec<u8> {
    let fid = |rng: &mut Rng| if rng.chance(8) || fids.is_empty() { rng.next() % 64 } else { *rng.pick(fids) };
    let name = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(12) {
            0 => vec![b'n'; 200 + rng.below(120) as usize],
            1 => {
                let n = 1 + rng.below(12) as usize;
                rng.bytes(n)
            }
            _ => rng.pick(NAMES).to_vec(),
        }
    };
    let word = |rng: &mut Rng, common: &[u32]| if rng.chance(4) { rng.next() as u32 } else { *rng.pick(common) };
    let open_flags = [0, 1, 2, 0o100, 0o1000, 0o2000, 0o4000, 0o200000, 0o10000000, 0o20200000, 3];
    let modes = [0o644, 0o755, 0o7777, 0o10644, 0o20644, 0o60644, 0o140644, 0o100644, 0o170000, 0];
    let op = 1 + rng.below(20) as u32;
    let b = Body::default();
    let b = match op {
        1 => b,
        2 => b.u64(fid(rng)).s16(&name(rng)),
        3 | 5 | 7 | 8 | 19 => b.u64(fid(rng)),
        4 => b.u64(fid(rng)).u32(word(rng, &open_flags)),
        6 => b.u64(fid(rng)).u64(if rng.chance(2) { 0 } else { rng.next() }).u32(word(rng, &[0, 1, 24, 4096, 1 << 20])),
        9 => b.u64(fid(rng)).s16(&name(rng)).u32(word(rng, &open_flags)).u32(word(rng, &modes)).u32(0).u32(0),
        10 => b.u64(fid(rng)).s16(&name(rng)).u32(word(rng, &modes)).u32(word(rng, &[0, 1000])).u32(0),
        11 => b.u64(fid(rng)).s16(&name(rng)).u32(word(rng, &modes)).u64(rng.below(3) << 8).u32(0).u32(0),
        12 => b.u64(fid(rng)).s16(&name(rng)).s16(*rng.pick(TARGETS)).u32(0).u32(0),
        13 => b.u64(fid(rng)).u64(fid(rng)).s16(&name(rng)),
        14 => b.u64(fid(rng)).s16(&name(rng)).u32(word(rng, &[0, 0x200])),
        15 => b.u64(fid(rng)).s16(&name(rng)).u64(fid(rng)).s16(&name(rng)).u32(word(rng, &[0, 1, 2, 3, 4])),
        16 => {
            let valid = word(rng, &[1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0x50, 0xff]);
            let size = if rng.chance(3) { rng.next() } else { rng.below(1 << 16) };
            let nsec = if rng.chance(3) { rng.next() } else { rng.below(1_000_000_000) };
            b.u64(fid(rng)).u32(valid).u32(word(rng, &modes)).u32(word(rng, &[0, 1000, u32::MAX])).u32(0).u64(size).u64(rng.next()).u64(nsec).u64(rng.below(1 << 31)).u64(nsec)
        }
        17 | 20 => b.u64(fid(rng)).s16(*rng.pick(XATTRS)),
        18 => {
            let n = rng.below(64) as usize;
            let value = if rng.chance(6) { vec![0x5a; 70_000] } else { rng.bytes(n) };
            b.u64(fid(rng)).s16(*rng.pick(XATTRS)).s32(&value).u32(word(rng, &[0, 1, 2, 3]))
        }
        _ => unreachable!(),
    };
    b.frame(op)
}

/// `msg` changed in one of the ways a hostile peer might.
fn mutate(rng: &mut Rng, mut msg: Vec<u8>) -> Vec<u8> {
    match rng.below(9) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(msg.len() as u64) as usize;
                msg[i] ^= 1 << rng.below(8);
            }
        }
        1 => msg.truncate(1 + rng.below(msg.len() as u64) as usize),
        2 => {
            let n = 1 + rng.below(32) as usize;
            msg.extend(rng.bytes(n))
        }
        3 if msg.len() >= 8 => msg[0..4].copy_from_slice(&(rng.next() as u32).to_le_bytes()),
        4 if msg.len() >= 8 => {
            let any = rng.next() as u32;
            let len = *rng.pick(&[0, 1, u32::MAX, 0xffff, MAX_MESSAGE as u32, any]);
            msg[4..8].copy_from_slice(&len.to_le_bytes());
        }
        5 => {
            // A huge length prefix somewhere in the body (where a string length may be).
            if msg.len() > 10 {
                let i = 8 + rng.below((msg.len() - 9) as u64) as usize;
                let v = if rng.chance(2) { [0xff, 0xff] } else { [0x00, 0x80] };
                msg[i..i + 2].copy_from_slice(&v);
            }
        }
        6 => {
            // Oversized: past the protocol's limit.
            let extra = MAX_MESSAGE + 1 + rng.below(30_000) as usize;
            msg.extend(std::iter::repeat_n(0x41, extra));
            let len = (msg.len() - 8) as u32;
            if msg.len() >= 8 {
                msg[4..8].copy_from_slice(&len.to_le_bytes());
            }
        }
        7 => {
            let n = 1 + rng.below(64) as usize;
            msg = rng.bytes(n);
        }
        _ => {}
    }
    if msg.is_empty() {
        // An empty datagram reads as the peer closing: the protocol never sends one.
        msg.push(0);
    }
    msg
}

/// Names, types, sizes, modes and contents of everything under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
            use std::os::unix::fs::MetadataExt;
            let mut v = format!("mode={:o} uid={} size={} mtime={}", md.mode(), md.uid(), md.size(), md.mtime());
            if md.is_file() {
                v += &format!(" data={:?}", std::fs::read(&p).unwrap_or_default());
            } else if md.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p.display().to_string(), v);
        }
    }
    out
}

/// The sorted names in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn fuzz_budget() -> Duration {
    let secs = std::env::var("RVISOR_FUZZ_SECS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(20);
    Duration::from_secs(secs)
}

fn seed() -> u64 {
    std::env::var("RVISOR_FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
        | 1
}

/// Runs one gofer for `budget`, mutating valid requests; returns how many messages it got.
fn fuzz_one(read_only: bool, seed: u64, budget: Duration) -> usize {
    let base = TempDir::new(if read_only { "gofer-fuzz-ro" } else { "gofer-fuzz-rw" });
    let served = base.path().join("served");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(served.join("dir/sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host secret\n").unwrap();
    std::fs::write(served.join(CANARY), CANARY_TEXT).unwrap();
    std::fs::write(served.join("file"), b"some data\n").unwrap();
    std::fs::write(served.join("dir/a"), b"a\n").unwrap();
    std::os::unix::fs::symlink("../outside", served.join("out")).unwrap();
    std::os::unix::fs::symlink("/etc", served.join("link")).unwrap();
    let fifo = CString::new(served.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `fifo` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let outside_before = snapshot(&outside);
    let etc_before = snapshot(Path::new("/etc/ssl"));
    let mut g = Gofer::start(&served, read_only, &base.path().join("gofer.stderr"), seed);
    let names_before = names_in(base.path());
    let mut rng = Rng(seed);
    let mut fids: Vec<u64> = Vec::new();
    let mut scratch = socketpair();
    let deadline = Instant::now() + budget;
    let mut sent = 0;
    // Successful answers by op: the fuzzer must get past validation, not only bounce off it.
    let mut served_ok = [0usize; 32];
    while Instant::now() < deadline {
        g.check_still_serving();
        // Attach now and then, so the pool always holds a live directory fid.
        if let Some(root) = g.roundtrip(&Body::default().frame(1)).fid() {
            fids.push(root);
        }
        for _ in 0..250 {
            let valid = request(&mut rng, &fids);
            let msg = if rng.chance(3) { valid } else { mutate(&mut rng, valid) };
            // Now and then a request carrying descriptors (which the protocol forbids).
            let with_fds = rng.chance(40);
            if with_fds {
                let n = 1 + rng.below(9) as usize;
                let fds = vec![scratch.0.as_raw_fd(); n];
                g.send(&msg, &fds);
            } else {
                g.send(&msg, &[]);
            }
            let answer = g.answer();
            if with_fds && answer.code != REPLY_BIT {
                g.fail("a request carrying descriptors was served");
            }
            if read_only && answer.code & !REPLY_BIT >= 9 && answer.code & !REPLY_BIT != 17 && answer.code & !REPLY_BIT != 19 && answer.code != REPLY_BIT {
                g.fail(&format!("a read-only gofer made a change (answer {:#x})", answer.code));
            }
            if answer.code != REPLY_BIT {
                served_ok[(answer.code & 31) as usize] += 1;
            }
            if let Some(fid) = answer.fid() {
                fids.push(fid);
                if fids.len() > 48 {
                    fids.remove(rng.below(48) as usize);
                }
            }
            sent += 1;
        }
        if std::fs::read(outside.join("secret")).ok().as_deref() != Some(&b"host secret\n"[..]) || snapshot(&outside) != outside_before {
            g.fail("the directory next to the served tree changed");
        }
        let names_now = names_in(base.path());
        if names_now != names_before {
            g.fail(&format!("entries next to the served tree changed: {names_before:?} -> {names_now:?}"));
        }
        // The scratch pair must still be whole: the gofer closed the copies it was sent.
        scratch = if rng.chance(4) { socketpair() } else { scratch };
    }
    g.check_still_serving();
    assert_eq!(snapshot(Path::new("/etc/ssl")), etc_before, "/etc/ssl changed");
    // Walk, stat, open, getdents, statfs; and for a writable gofer create, mkdir, mknod,
    // symlink, unlink and setattr (each succeeds a few times in every thousand messages).
    let expected: &[usize] = if read_only { &[2, 3, 4, 6, 8] } else { &[2, 3, 4, 6, 8, 9, 10, 11, 12, 14, 16] };
    for &op in expected {
        assert!(served_ok[op] > 0, "no request of op {op} succeeded: {served_ok:?}");
    }
    g.finish();
    sent
}

#[test]
fn gofer_survives_random_and_mutated_messages_and_stays_in_its_tree() {
    let seed = seed();
    let budget = fuzz_budget();
    let rw = fuzz_one(false, seed, budget * 2 / 3);
    let ro = fuzz_one(true, seed.rotate_left(17) | 1, budget / 3);
    eprintln!("gofer fuzz (seed {seed:#x}): {rw} messages to a writable gofer, {ro} to a read-only one");
    assert!(rw > 1000 && ro > 500, "too few messages: {rw} + {ro}");
}

/// Inputs that once broke something, replayed on every run.
#[test]
fn gofer_regression_inputs_get_error_answers() {
    let base = TempDir::new("gofer-fuzz-regressions");
    let served = base.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join(CANARY), CANARY_TEXT).unwrap();
    let mut g = Gofer::start(&served, false, &base.path().join("gofer.stderr"), 0);
    let cases: Vec<Vec<u8>> = vec![
        // A one-byte datagram, a header alone with a length past the end.
        vec![0],
        Body::default().frame(2)[..8].iter().copied().chain([0xff]).collect(),
        // Walk with a name length far past the body.
        Body::default().u64(1).u32(0xffff).frame(2),
        // Setxattr with a u32 value length of 4 GiB.
        Body::default().u64(1).s16(b"user.a").u32(u32::MAX).frame(18),
        // Getdents with an absurd cookie and size.
        Body::default().u64(1).u64(u64::MAX).u32(u32::MAX).frame(6),
        // Mknod of a device, and with mode bits past the type.
        Body::default().u64(1).s16(b"dev").u32(0o20644).u64(0x0101).u32(0).u32(0).frame(11),
        Body::default().u64(1).s16(b"odd").u32(0o1_010_644).u64(0).u32(0).u32(0).frame(11),
    ];
    let attach = g.roundtrip(&Body::default().frame(1));
    assert_eq!(attach.fid(), Some(1));
    for case in &cases {
        let a = g.roundtrip(case);
        assert_eq!(a.code, REPLY_BIT, "{} was not refused", hex(case));
    }
    assert!(!served.join("dev").exists() && !served.join("odd").exists());
    g.check_still_serving();
    g.finish();
}

/// The `Name:\tvalue` line of /proc/PID/status.
fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("no {name} in {status}"));
    line[name.len() + 1..].trim().to_string()
}

#[test]
fn gofer_confines_itself_before_serving() {
    // SAFETY: geteuid takes no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    for (read_only, caps) in [(true, "0000000000000006"), (false, "000000000000001f")] {
        let base = TempDir::new("gofer-confined");
        let served = base.path().join("served");
        std::fs::create_dir_all(&served).unwrap();
        std::fs::write(served.join(CANARY), CANARY_TEXT).unwrap();
        let mut g = Gofer::start(&served, read_only, &base.path().join("gofer.stderr"), 0);
        // One answered request: confinement is complete before the first one is read.
        g.check_still_serving();
        let pid = g.child.id();
        assert_eq!(status_field(pid, "Seccomp"), "2", "seccomp filter mode");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1");
        if root {
            assert_eq!(status_field(pid, "CapEff"), caps, "read_only={read_only}");
            assert_eq!(status_field(pid, "CapPrm"), caps, "read_only={read_only}");
            assert_eq!(status_field(pid, "CapBnd"), caps, "read_only={read_only}");
            assert_eq!(status_field(pid, "CapAmb"), "0000000000000000");
            assert_eq!(std::fs::read_link(format!("/proc/{pid}/root")).unwrap(), served.canonicalize().unwrap());
            for ns in ["mnt", "net", "ipc", "uts"] {
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
                let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
                assert_ne!(theirs, ours, "the gofer shares the {ns} namespace");
            }
        }
        g.finish();
    }
}
