//! The host side of `rvisor do --tty`: the CLI owns the host terminal. It puts its stdin
//! in raw mode (restored when the command ends, even if the sandbox dies, since the CLI
//! outlives it), copies keystrokes to the sandbox's console and the console's output to
//! stdout, and forwards the window size at start and on every SIGWINCH. The wire format is
//! [`rvisor_sentry::vfs::devpts::console`]'s.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use rvisor_sentry::vfs::devpts::console::{winsize_packet, MAX_PACKET, PKT_DATA};

/// The write end of the SIGWINCH self-pipe (-1: none).
static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigwinch(_: libc::c_int) {
    let fd = WINCH_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte is a static value. A full pipe
        // only drops a wake-up that is already pending.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
}

/// Restores the host terminal's attributes when dropped.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Puts `fd` in raw mode if it is a terminal.
    fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid out-pointer.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: `raw` is a valid termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios for this terminal.
        if unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &raw) } != 0 {
            return None;
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: `saved` is the terminal's own earlier state.
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved) };
    }
}

/// The window size of terminal `fd`, if it is one.
fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}

fn send(fd: RawFd, data: &[u8]) -> bool {
    loop {
        // SAFETY: `data` is a live slice; MSG_NOSIGNAL turns a closed peer into EPIPE.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `data` is a live slice of the length passed.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

/// A running console: the CLI's end of the socket and the threads copying through it.
pub struct HostConsole {
    sock: OwnedFd,
    raw: Option<RawMode>,
    stop_w: OwnedFd,
    output: Option<JoinHandle<()>>,
}

/// The socket pair: the CLI's end and the sandbox's (its stdin/stdout).
pub fn socketpair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair returns.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("do: console socket");
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error()).context("do: pipe");
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl HostConsole {
    /// Starts the console over the CLI's end `sock`: raw mode (when stdin is a terminal),
    /// the initial window size, and the copying threads.
    pub fn start(sock: OwnedFd) -> anyhow::Result<HostConsole> {
        let stdin = libc::STDIN_FILENO;
        let size_fd = [stdin, libc::STDOUT_FILENO].into_iter().find(|&fd| window_size(fd).is_some());
        if let Some((rows, cols)) = size_fd.and_then(window_size) {
            send(sock.as_raw_fd(), &winsize_packet(rows, cols));
        }
        let raw = RawMode::enter(stdin);
        let (winch_r, winch_w) = pipe()?;
        if let Some(fd) = size_fd {
            WINCH_PIPE.store(winch_w.as_raw_fd(), Ordering::Relaxed);
            std::mem::forget(winch_w);
            // SAFETY: the handler only calls write(2) on a pipe kept open for the life of
            // the process.
            unsafe { libc::signal(libc::SIGWINCH, on_sigwinch as extern "C" fn(libc::c_int) as libc::sighandler_t) };
            let s = sock.as_raw_fd();
            std::thread::spawn(move || {
                let mut pfd = libc::pollfd {
                    fd: winch_r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                loop {
                    // SAFETY: one valid pollfd.
                    if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
                        continue;
                    }
                    let mut b = [0u8; 64];
                    // SAFETY: `b` is a live buffer; the pipe is non-blocking.
                    while unsafe { libc::read(winch_r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) } > 0 {}
                    if let Some((rows, cols)) = window_size(fd) {
                        if !send(s, &winsize_packet(rows, cols)) {
                            return;
                        }
                    }
                }
            });
        }
        // Keystrokes: stdin → socket. When a terminal stdin hangs up (EOF or EIO: its
        // master side closed), the sandbox's terminal hangs up too (SIGHUP to its session),
        // as a hangup does natively; another stdin just ending leaves the sandbox running.
        let s = sock.as_raw_fd();
        // SAFETY: isatty only inspects the descriptor.
        let stdin_is_tty = unsafe { libc::isatty(stdin) } == 1;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_PACKET];
            loop {
                // SAFETY: `buf[1..]` is a live buffer of the length passed.
                let n = unsafe { libc::read(stdin, buf[1..].as_mut_ptr().cast(), MAX_PACKET - 1) };
                if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                if n <= 0 {
                    if stdin_is_tty {
                        // SAFETY: shutdown(2) on the live socket; the sandbox reads EOF.
                        unsafe { libc::shutdown(s, libc::SHUT_WR) };
                    }
                    return;
                }
                buf[0] = PKT_DATA;
                if !send(s, &buf[..1 + n as usize]) {
                    return;
                }
            }
        });
        // Output: socket → stdout, until the sandbox is gone and its output drained.
        let (stop_r, stop_w) = pipe()?;
        let output = std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_PACKET];
            let mut fds = [
                libc::pollfd {
                    fd: s,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop_r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let mut stopping = false;
            loop {
                if !stopping {
                    // SAFETY: two valid pollfds.
                    if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
                        continue;
                    }
                    stopping = fds[1].revents != 0;
                }
                let flags = if stopping { libc::MSG_DONTWAIT } else { 0 };
                // SAFETY: `buf` is a live buffer of the length passed.
                let n = unsafe { libc::recv(s, buf.as_mut_ptr().cast(), buf.len(), flags) };
                if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                if n <= 0 {
                    if n < 0 && !stopping && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
                        continue;
                    }
                    return;
                }
                write_all(libc::STDOUT_FILENO, &buf[..n as usize]);
            }
        });
        Ok(HostConsole {
            sock,
            raw,
            stop_w,
            output: Some(output),
        })
    }

    /// After the sandbox exited: writes out the rest of its output and restores the host
    /// terminal.
    pub fn finish(mut self) {
        write_all(self.stop_w.as_raw_fd(), b"x");
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
        drop(self.raw.take());
        let _ = &self.sock;
    }
}
