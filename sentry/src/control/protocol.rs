//! The control protocol between the OCI CLI and a running sandbox (`rvisor boot`).
//!
//! Transport: a unix SOCK_STREAM connection; each message is a u32 little-endian length
//! followed by that many bytes of JSON (serde's externally tagged enums). One request, one
//! response; a client may send several requests in turn on one connection. File
//! descriptors ride with a request as SCM_RIGHTS on its first byte. A message is at most
//! [`MAX_MESSAGE`] bytes.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// The largest message either side sends or accepts.
pub const MAX_MESSAGE: usize = 1 << 20;
/// The most file descriptors one request may carry.
pub const MAX_FDS: usize = 8;

/// Capability names (like "CAP_CHOWN") per set, as in config.json's `process.capabilities`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

/// A request from the CLI to the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Run the waiting init → `Ok`.
    Start,
    /// A new process in the sandbox; fds: `[stdin, stdout, stderr]`, or `[console replica]`
    /// when `process.terminal` → `Pid(pid)`.
    Exec { process: ProcessSpec },
    /// Blocks until the sandbox pid exits → `Exited { status }` (a waitpid status).
    Wait { pid: i32 },
    /// kill(2) from outside; pid 0 = init; `all` = every process of the sandbox → `Ok`.
    Signal { pid: i32, signal: i32, all: bool },
    /// → `Processes`.
    Ps,
    /// → `Stats`.
    Stats,
    /// Stop every task (not visible to the guest as SIGSTOP) → `Ok`.
    Pause,
    /// → `Ok`.
    Resume,
    /// Debug only (a sandbox booted with `--debug-control`, else refused with EPERM): the
    /// sandbox process itself makes host syscall `nr` with `args` (at most 6, the rest 0),
    /// to check its seccomp filter → `Value(result)`, or the sandbox dies of SIGSYS.
    DebugHostSyscall {
        nr: i64,
        #[serde(default)]
        args: Vec<u64>,
    },
}

/// A process to start with `Request::Exec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
    #[serde(default)]
    pub no_new_privs: bool,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// config.json's `process.oomScoreAdj`; `None` keeps 0.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

/// One sandbox process, for `ps`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub cmd: String,
    pub host_pid: Option<i32>,
    pub state: String,
    pub start_time_ticks: u64,
}

/// Resource usage of the sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub pids: u64,
    pub memory_bytes: u64,
    pub cpu_ns: u64,
    /// Whether the sandbox's OOM killer has killed a process (the memory limit was hit).
    #[serde(default)]
    pub oom_killed: bool,
}

/// The sandbox's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Pid(i32),
    Exited { status: i32 },
    Processes(Vec<ProcessInfo>),
    Stats(Stats),
    Error { errno: i32, message: String },
    /// A raw result (`DebugHostSyscall`).
    Value(i64),
}

impl Response {
    /// An error response with a message for a person.
    pub fn error(errno: i32, message: impl Into<String>) -> Self {
        Response::Error {
            errno,
            message: message.into(),
        }
    }
}

/// Longest path a `sockaddr_un` holds (108 bytes with the terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// Calls `f` with a path to the socket `path` that fits in a `sockaddr_un`: `path` itself
/// when it is short enough, else `/proc/self/fd/N/NAME` through a descriptor of its
/// directory (state directories under a long `--root` exceed the limit).
pub fn with_socket_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path has no file name"));
    };
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let short = Path::new(&format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir))).join(name);
    if short.as_os_str().len() > SUN_PATH_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket file name too long"));
    }
    f(&short)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Encodes one message: the length prefix and the JSON body.
pub fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(value).map_err(|e| invalid(&e.to_string()))?;
    if body.len() > MAX_MESSAGE {
        return Err(invalid("control message too large"));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Sends one framed message, with `fds` attached to its first byte.
pub fn send_message(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many file descriptors",
        ));
    }
    let mut sent = 0;
    if !fds.is_empty() && !bytes.is_empty() {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let iov = [IoSlice::new(bytes)];
        sent = loop {
            match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
    }
    (&*sock).write_all(&bytes[sent..])
}

/// Receives one framed message and the fds that came with it. `Ok(None)` at a clean end of
/// the stream (before any byte of a message).
pub fn recv_message(sock: &UnixStream) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut len = [0u8; 4];
    let mut fds = Vec::new();
    let got = loop {
        let mut cmsg_buf = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut len)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: the kernel just installed this descriptor in our
                                // table for this message; nothing else owns it.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                }
                break msg.bytes;
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if got == 0 {
        return Ok(None);
    }
    if fds.len() > MAX_FDS {
        return Err(invalid("too many file descriptors"));
    }
    (&*sock).read_exact(&mut len[got..])?;
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return Err(invalid("control message too large"));
    }
    let mut body = vec![0u8; n];
    (&*sock).read_exact(&mut body)?;
    Ok(Some((body, fds)))
}

/// Decodes a request body; malformed JSON is an error, never a panic.
pub fn decode_request(body: &[u8]) -> Result<Request, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Decodes a response body.
pub fn decode_response(body: &[u8]) -> Result<Response, serde_json::Error> {
    serde_json::from_slice(body)
}

/// A blocking client of a sandbox's control socket.
pub struct ControlClient {
    sock: UnixStream,
}

impl ControlClient {
    /// Connects to the control socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(ControlClient {
            sock: with_socket_path(path.as_ref(), |p| UnixStream::connect(p))?,
        })
    }

    /// Sends `req` (with `fds`) and waits for the response.
    pub fn call(&mut self, req: &Request, fds: &[BorrowedFd]) -> io::Result<Response> {
        let bytes = encode(req)?;
        send_message(&self.sock, &bytes, fds)?;
        match recv_message(&self.sock)? {
            Some((body, _)) => decode_response(&body).map_err(|e| invalid(&e.to_string())),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the sandbox closed the control connection",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_through_frame() {
        let (a, b) = UnixStream::pair().unwrap();
        let req = Request::Signal {
            pid: 3,
            signal: 15,
            all: false,
        };
        send_message(&a, &encode(&req).unwrap(), &[]).unwrap();
        let (body, fds) = recv_message(&b).unwrap().unwrap();
        assert!(fds.is_empty());
        assert_eq!(decode_request(&body).unwrap(), req);
    }

    #[test]
    fn json_is_externally_tagged() {
        assert_eq!(serde_json::to_string(&Request::Start).unwrap(), "\"Start\"");
        assert_eq!(
            serde_json::to_string(&Request::Wait { pid: 1 }).unwrap(),
            "{\"Wait\":{\"pid\":1}}"
        );
        assert_eq!(
            serde_json::to_string(&Response::Pid(7)).unwrap(),
            "{\"Pid\":7}"
        );
    }

    #[test]
    fn fds_ride_with_the_first_byte() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _w) = UnixStream::pair().unwrap();
        let req = Request::Exec {
            process: ProcessSpec {
                args: vec!["sh".into()],
                ..Default::default()
            },
        };
        send_message(&a, &encode(&req).unwrap(), &[r.as_fd_borrowed()]).unwrap();
        let (body, fds) = recv_message(&b).unwrap().unwrap();
        assert_eq!(fds.len(), 1);
        assert_eq!(decode_request(&body).unwrap(), req);
    }

    trait AsFdBorrowed {
        fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
    }
    impl AsFdBorrowed for UnixStream {
        fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
            std::os::fd::AsFd::as_fd(self)
        }
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(decode_request(b"{\"Wait\":{\"pid\":\"x\"}}").is_err());
        assert!(decode_request(b"not json").is_err());
        assert!(decode_request(b"\"Reboot\"").is_err());
        assert!(decode_request(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn oversized_length_is_refused_without_allocating() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&u32::MAX.to_le_bytes()).unwrap();
        assert!(recv_message(&b).is_err());
    }

    #[test]
    fn clean_close_is_none() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert!(recv_message(&b).unwrap().is_none());
    }
}
