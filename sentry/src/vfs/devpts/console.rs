//! The console of `rvisor do --tty`: a pseudo-terminal whose replica is the first
//! process's stdio and controlling terminal, and whose master is bridged to the CLI over a
//! unix SOCK_SEQPACKET socket. The CLI owns the host terminal (raw mode, SIGWINCH).
//!
//! Protocol: CLI → sandbox packets start with a type byte: [`PKT_DATA`] then keystrokes,
//! or [`PKT_WINSIZE`] then rows and columns (two little-endian u16). Sandbox → CLI
//! packets are terminal output bytes, untyped.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use rvisor_syscalls::types::Winsize;
use rvisor_syscalls::Errno;

use super::terminal::{PtyMaster, PtyReplica, Terminal};
use crate::kernel::Kernel;
use crate::vfs::FileDescription;

/// Creates the console for a sandbox whose first process is not started yet (it will be
/// pid 1, leader of session 1): the pair, unlocked, with session 1 in the foreground, and
/// the bridge to the CLI's socket `sock`. Returns the bridge and the replica's open file
/// for fds 0, 1 and 2.
pub fn attach(kernel: &Arc<Kernel>, sock: OwnedFd) -> std::io::Result<(ConsoleBridge, Arc<FileDescription>)> {
    let uid_gid = super::replica_owner();
    let master = kernel
        .devpts
        .new_pair(Arc::downgrade(kernel), uid_gid.0, uid_gid.1)
        .map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    let tty = master.tty.clone();
    tty.set_locked(false);
    tty.make_controlling(1, 1);
    kernel.devpts.set_console(tty.clone());
    // Window sizes the CLI sent before the sandbox started apply before init runs.
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        // SAFETY: `buf` is a live exclusive slice of the length passed; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_PEEK,
            )
        };
        if n < 5 || buf[0] != PKT_WINSIZE {
            break;
        }
        let _ = recv(&sock, &mut buf);
        tty.set_winsize(Winsize {
            ws_row: u16::from_le_bytes([buf[1], buf[2]]),
            ws_col: u16::from_le_bytes([buf[3], buf[4]]),
            ..Default::default()
        });
    }
    let replica = PtyReplica::open(&tty);
    let file = FileDescription::new(replica, None, rvisor_syscalls::flags::open::O_RDWR);
    let output = sock.try_clone()?;
    let bridge = ConsoleBridge::start(master, sock, output)?;
    Ok((bridge, file))
}

/// Creates a terminal for a process that will lead session `sid` and bridges its master to
/// `host`, a host terminal (the replica of a pty the CLI made, whose master went to the
/// console socket). The host side is put in raw mode: the sandbox's own line discipline
/// does the editing. The window size follows the host terminal's (read at start and
/// checked whenever the input side is idle). `console`: this is the sandbox's console
/// (init's terminal). Returns the bridge and the replica's open file for fds 0, 1 and 2.
pub fn attach_host_tty(kernel: &Arc<Kernel>, host: OwnedFd, sid: i32, console: bool) -> std::io::Result<(ConsoleBridge, Arc<FileDescription>)> {
    let uid_gid = super::replica_owner();
    let master = kernel
        .devpts
        .new_pair(Arc::downgrade(kernel), uid_gid.0, uid_gid.1)
        .map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    let tty = master.tty.clone();
    tty.set_locked(false);
    tty.make_controlling(sid, sid);
    if console {
        kernel.devpts.set_console(tty.clone());
    }
    make_raw(&host);
    if let Some(ws) = host_winsize(&host) {
        tty.set_winsize(ws);
    }
    let replica = PtyReplica::open(&tty);
    let file = FileDescription::new(replica, None, rvisor_syscalls::flags::open::O_RDWR);
    let output = host.try_clone()?;
    let m = master.clone();
    std::thread::Builder::new().name("console-in".into()).spawn(move || host_input(m, host))?;
    let out_thread = std::thread::Builder::new().name("console-out".into()).spawn(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match master.tty.master_read(&mut buf, false) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if write_all(&output, &buf[..n]).is_err() {
                break;
            }
        }
    })?;
    Ok((ConsoleBridge { tty, output: Some(out_thread) }, file))
}

/// Copies keystrokes from the host terminal into `m`, and its window size when it changes.
fn host_input(m: Arc<PtyMaster>, host: OwnedFd) {
    let mut buf = vec![0u8; 4096];
    let mut last = host_winsize(&host);
    loop {
        let mut pfd = libc::pollfd { fd: host.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `pfd` is one live pollfd, as the count says.
        let r = unsafe { libc::poll(&mut pfd, 1, 250) };
        let ws = host_winsize(&host);
        if ws.is_some() && ws != last {
            if let Some(w) = ws {
                m.tty.set_winsize(w);
            }
            last = ws;
        }
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if r == 0 || pfd.revents == 0 {
            continue;
        }
        // SAFETY: `buf` is a live exclusive slice of the length passed.
        let n = unsafe { libc::read(host.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        let mut data = &buf[..n as usize];
        while !data.is_empty() {
            match m.tty.master_write(data, false) {
                Ok(k) => data = &data[k..],
                Err(Errno::EAGAIN) => continue,
                Err(_) => break,
            }
        }
    }
    tracing::debug!("host terminal closed: hanging up the sandbox's");
    m.tty.hang_up();
}

/// The window size of host terminal `fd`.
fn host_winsize(fd: &OwnedFd) -> Option<Winsize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the live local passed.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(Winsize { ws_row: ws.ws_row, ws_col: ws.ws_col, ws_xpixel: ws.ws_xpixel, ws_ypixel: ws.ws_ypixel })
}

/// Puts host terminal `fd` in raw mode (no echo, no line editing, no signals).
fn make_raw(fd: &OwnedFd) {
    // SAFETY: an all-zero termios is a valid value for tcgetattr to overwrite.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one termios into the live local; cfmakeraw edits it in
    // place; tcsetattr only reads it.
    unsafe {
        if libc::tcgetattr(fd.as_raw_fd(), &mut t) == 0 {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is a live slice of the length passed.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Whether host fd `fd` is a terminal.
pub fn is_host_tty(fd: &OwnedFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Keystrokes for the terminal.
pub const PKT_DATA: u8 = 0;
/// A new window size.
pub const PKT_WINSIZE: u8 = 1;
/// The largest packet either side sends.
pub const MAX_PACKET: usize = 4096 + 1;

/// Encodes a window-size packet.
pub fn winsize_packet(rows: u16, cols: u16) -> [u8; 5] {
    let r = rows.to_le_bytes();
    let c = cols.to_le_bytes();
    [PKT_WINSIZE, r[0], r[1], c[0], c[1]]
}

/// Copies between the console's master and the CLI's socket on two sentry threads.
pub struct ConsoleBridge {
    tty: Arc<Terminal>,
    output: Option<JoinHandle<()>>,
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: `buf` is a live exclusive slice of the length passed.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn send_all(fd: &OwnedFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is a live slice of the length passed; MSG_NOSIGNAL avoids SIGPIPE.
        let n = unsafe { libc::send(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

impl ConsoleBridge {
    /// Starts copying: CLI packets into `master` (keystrokes, window sizes), terminal
    /// output from `master` to the CLI.
    pub fn start(master: Arc<PtyMaster>, input: OwnedFd, output: OwnedFd) -> std::io::Result<ConsoleBridge> {
        let tty = master.tty.clone();
        let m = master.clone();
        std::thread::Builder::new().name("console-in".into()).spawn(move || {
            let mut buf = vec![0u8; MAX_PACKET];
            loop {
                let n = match recv(&input, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                match buf[0] {
                    PKT_DATA => {
                        let mut data = &buf[1..n];
                        while !data.is_empty() {
                            match m.tty.master_write(data, false) {
                                Ok(k) => data = &data[k..],
                                Err(Errno::EAGAIN) => continue,
                                Err(_) => break,
                            }
                        }
                    }
                    PKT_WINSIZE if n >= 5 => {
                        let rows = u16::from_le_bytes([buf[1], buf[2]]);
                        let cols = u16::from_le_bytes([buf[3], buf[4]]);
                        m.tty.set_winsize(Winsize {
                            ws_row: rows,
                            ws_col: cols,
                            ..Default::default()
                        });
                    }
                    _ => tracing::debug!(kind = buf[0], "unknown console packet"),
                }
            }
            // The CLI's terminal hung up (or the CLI is gone): so does the sandbox's.
            tracing::debug!("console input closed: hanging up the terminal");
            m.tty.hang_up();
        })?;
        let out_thread = std::thread::Builder::new().name("console-out".into()).spawn(move || {
            let mut buf = vec![0u8; MAX_PACKET - 1];
            loop {
                let n = match master.tty.master_read(&mut buf, false) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if send_all(&output, &buf[..n]).is_err() {
                    break;
                }
            }
            // Dropping `master` here hangs the terminal up.
        })?;
        Ok(ConsoleBridge {
            tty,
            output: Some(out_thread),
        })
    }

    /// After the first process exited: forwards the output still queued, then stops.
    pub fn finish(mut self) {
        self.tty.shut_down();
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}
