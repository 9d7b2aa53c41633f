//! A pseudo-terminal pair: the shared [`Terminal`] (line discipline, window size, session
//! and foreground process group, as Linux keeps them on the tty) and its two ends, the
//! master ([`PtyMaster`], from /dev/ptmx) and the replica ([`PtyReplica`], /dev/pts/N).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rvisor_syscalls::flags::open::O_NONBLOCK;
use rvisor_syscalls::flags::poll::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use rvisor_syscalls::flags::signal::{SIGCONT, SIGHUP, SIGWINCH};
use rvisor_syscalls::flags::termios::{TOSTOP, VMIN, VTIME};
use rvisor_syscalls::types::{Stat, Termios, Winsize};
use rvisor_syscalls::Errno;

use super::jobctl;
use crate::kernel::wait::{block_on, WaitQueue};
use crate::kernel::Kernel;
use crate::mm::MemoryManager;
use crate::vfs::file::FileImpl;

use super::ldisc::{default_termios, InputEffects, Ldisc};

/// The device number devpts reports for itself.
pub const DEVPTS_DEV: u64 = 0x16;
/// Major device number of replicas (Linux's UNIX98_PTY_SLAVE_MAJOR).
pub const PTS_MAJOR: u64 = 136;

pub(super) fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff)
}

pub(super) fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

pub(super) struct TtyState {
    pub ld: Ldisc,
    pub winsize: Winsize,
    /// The session this is the controlling terminal of (0: none).
    pub session: i32,
    /// The foreground process group (0: none).
    pub fg_pgrp: i32,
    /// Replica opens are refused while locked (until unlockpt).
    pub locked: bool,
    pub master_open: bool,
    pub replicas: usize,
    pub replica_ever_opened: bool,
    /// The sandbox is shutting down: master reads end at an empty queue.
    pub closing: bool,
}

/// The state both ends share.
pub struct Terminal {
    pub index: u32,
    kernel: Weak<Kernel>,
    state: Mutex<TtyState>,
    pub(super) queue: WaitQueue,
    uid: u32,
    gid: u32,
    created: (i64, i64),
}

impl Terminal {
    pub(super) fn new(index: u32, kernel: Weak<Kernel>, uid: u32, gid: u32) -> Arc<Terminal> {
        Arc::new(Terminal {
            index,
            kernel,
            state: Mutex::new(TtyState {
                ld: Ldisc::new(default_termios()),
                winsize: Winsize::default(),
                session: 0,
                fg_pgrp: 0,
                locked: true,
                master_open: true,
                replicas: 0,
                replica_ever_opened: false,
                closing: false,
            }),
            queue: WaitQueue::new(),
            uid,
            gid,
            created: now(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, TtyState> {
        // Plain queues and ids: a panic elsewhere cannot leave them unsound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn kernel(&self) -> Option<Arc<Kernel>> {
        self.kernel.upgrade()
    }

    /// The session this terminal controls (0: none) and its foreground process group.
    pub fn session_and_pgrp(&self) -> (i32, i32) {
        let st = self.lock();
        (st.session, st.fg_pgrp)
    }

    pub(super) fn set_session(&self, sid: i32, pgrp: i32) {
        let mut st = self.lock();
        st.session = sid;
        st.fg_pgrp = pgrp;
    }

    pub(super) fn set_fg_pgrp(&self, pgrp: i32) {
        self.lock().fg_pgrp = pgrp;
    }

    /// Makes the terminal the controlling terminal of `sid` with `pgrp` in the foreground
    /// (the console of `rvisor do --tty`, before its first process runs).
    pub fn make_controlling(&self, sid: i32, pgrp: i32) {
        self.set_session(sid, pgrp);
    }

    pub fn master_open(&self) -> bool {
        self.lock().master_open
    }

    pub fn locked(&self) -> bool {
        self.lock().locked
    }

    pub(super) fn set_locked(&self, locked: bool) {
        self.lock().locked = locked;
    }

    pub fn termios(&self) -> Termios {
        self.lock().ld.termios
    }

    pub(super) fn set_termios(&self, t: Termios, flush: bool) {
        {
            let mut st = self.lock();
            if flush {
                st.ld.flush_input();
            }
            st.ld.set_termios(t);
        }
        self.queue.notify_all();
    }

    pub fn winsize(&self) -> Winsize {
        self.lock().winsize
    }

    /// TIOCSWINSZ: a change sends SIGWINCH to the foreground process group.
    pub fn set_winsize(&self, ws: Winsize) {
        let fg = {
            let mut st = self.lock();
            if st.winsize == ws {
                return;
            }
            st.winsize = ws;
            st.fg_pgrp
        };
        self.signal_pgrp(fg, SIGWINCH);
    }

    pub(super) fn flush(&self, input: bool, output: bool) {
        {
            let mut st = self.lock();
            if input {
                st.ld.flush_input();
            }
            if output {
                st.ld.out.clear();
            }
        }
        self.queue.notify_all();
    }

    pub(super) fn readable_bytes(&self) -> usize {
        self.lock().ld.readable_bytes()
    }

    pub(super) fn output_bytes(&self) -> usize {
        self.lock().ld.out.len()
    }

    /// Sends `sig` to every live process of group `pgrp` (nothing for 0).
    pub(super) fn signal_pgrp(&self, pgrp: i32, sig: u32) {
        if pgrp <= 0 {
            return;
        }
        if let Some(k) = self.kernel() {
            jobctl::signal_pgrp(&k, pgrp, sig);
        }
    }

    /// Ends the sandbox's use of the terminal: master reads return 0 once the output is
    /// drained, so a bridge copying it can finish.
    pub fn shut_down(&self) {
        self.lock().closing = true;
        self.queue.notify_all();
    }

    // --- the master side -------------------------------------------------------------

    /// Output for the master: blocks while there is none (unless `nonblock`); EIO once
    /// every replica has closed.
    pub fn master_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let attempt = || -> Option<Result<usize, Errno>> {
            let mut st = self.lock();
            if !st.ld.out.is_empty() {
                let n = st.ld.out.len().min(buf.len());
                let mut i = 0;
                for b in st.ld.out.drain(..n) {
                    buf[i] = b;
                    i += 1;
                }
                return Some(Ok(n));
            }
            if st.closing {
                return Some(Ok(0));
            }
            if st.replica_ever_opened && st.replicas == 0 {
                return Some(Err(Errno::EIO));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        };
        // `attempt` borrows `buf`; run it through block_on in one place.
        let mut attempt = attempt;
        let r = match attempt() {
            Some(r) => r,
            None => block_on(&[&self.queue], None, &mut attempt),
        };
        if matches!(r, Ok(n) if n > 0) {
            self.queue.notify_all();
        }
        r
    }

    /// Input typed at the master: processed by the line discipline (echo, editing,
    /// signals). Blocks while the input queue is full unless `nonblock`.
    pub fn master_write(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let mut done = 0usize;
        let mut signals = Vec::new();
        let mut fg = 0;
        let attempt = |done: &mut usize, signals: &mut Vec<u32>, fg: &mut i32| -> Option<Result<usize, Errno>> {
            let mut st = self.lock();
            let mut fx = InputEffects::default();
            let n = st.ld.receive(&buf[*done..], &mut fx);
            *fg = st.fg_pgrp;
            drop(st);
            *done += n;
            if n > 0 {
                self.queue.notify_all();
            }
            signals.extend(fx.signals);
            if *done == buf.len() {
                Some(Ok(*done))
            } else if nonblock || !signals.is_empty() {
                Some(if *done == 0 { Err(Errno::EAGAIN) } else { Ok(*done) })
            } else {
                None
            }
        };
        let r = match attempt(&mut done, &mut signals, &mut fg) {
            Some(r) => r,
            None => {
                let r = block_on(&[&self.queue], None, || attempt(&mut done, &mut signals, &mut fg));
                match r {
                    Err(Errno::ERESTARTSYS) if done > 0 => Ok(done),
                    r => r,
                }
            }
        };
        for sig in signals {
            self.signal_pgrp(fg, sig);
        }
        r
    }

    pub(super) fn master_readiness(&self) -> u32 {
        let st = self.lock();
        let mut ev = 0;
        if !st.ld.out.is_empty() {
            ev |= POLLIN | POLLRDNORM;
        }
        if st.ld.input_room() {
            ev |= POLLOUT | POLLWRNORM;
        }
        if st.replica_ever_opened && st.replicas == 0 {
            ev |= POLLHUP;
        }
        ev
    }

    /// The master's last file closed: the replica is hung up and the session's leader
    /// and foreground group get SIGHUP (and SIGCONT), as on Linux.
    /// A hangup of the terminal's far side (the host terminal of `do --tty` went away):
    /// what closing the master does.
    pub fn hang_up(&self) {
        self.master_closed();
    }

    fn master_closed(&self) {
        let (sid, fg) = {
            let mut st = self.lock();
            st.master_open = false;
            let r = (st.session, st.fg_pgrp);
            st.session = 0;
            st.fg_pgrp = 0;
            r
        };
        self.queue.notify_all();
        if let Some(k) = self.kernel() {
            // A session whose leader exited no longer has this controlling terminal (Linux
            // clears it then): its id may belong to an unrelated process by now.
            if sid > 0 && !jobctl::session_alive(&k, sid) {
                return;
            }
            if sid > 0 {
                if let Some(leader) = k.group(sid) {
                    jobctl::signal_group(&k, &leader, SIGHUP);
                    jobctl::signal_group(&k, &leader, SIGCONT);
                }
            }
            if fg > 0 && fg != sid {
                jobctl::signal_pgrp(&k, fg, SIGHUP);
                jobctl::signal_pgrp(&k, fg, SIGCONT);
            }
        }
    }

    // --- the replica side ------------------------------------------------------------

    /// A read by a program: one line in canonical mode, VMIN/VTIME rules otherwise; 0
    /// after a hangup. Background process groups get SIGTTIN first.
    pub fn replica_read(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        jobctl::check_read(self)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let (canon, vmin, vtime) = {
            let st = self.lock();
            let t = &st.ld.termios;
            (st.ld.canonical(), t.c_cc[VMIN] as usize, t.c_cc[VTIME] as u64)
        };
        let timer = Duration::from_millis(vtime * 100);
        let r = if canon || vtime == 0 {
            // A line, or VMIN bytes (VMIN = 0: whatever is there, without waiting).
            let min = if canon { 1 } else { vmin.min(buf.len()) };
            if min == 0 {
                self.wait_input(nonblock, None, |_| true)?;
            } else {
                self.wait_input(nonblock, None, |st| st.ld.read_ready(min))?;
            }
            self.take(buf)
        } else if vmin == 0 {
            // VTIME alone: the first byte or the timer.
            self.wait_input(nonblock, Some(Instant::now() + timer), |st| st.ld.read_ready(1))?;
            self.take(buf)
        } else {
            // VMIN and VTIME: the first byte without a timer, then VTIME between bytes.
            let min = vmin.min(buf.len());
            self.wait_input(nonblock, None, |st| st.ld.read_ready(1))?;
            loop {
                let seen = self.lock().ld.raw_len();
                if seen >= min {
                    break;
                }
                if !self.wait_input(nonblock, Some(Instant::now() + timer), |st| st.ld.raw_len() != seen)? {
                    break;
                }
            }
            self.take(buf)
        };
        if r > 0 {
            self.queue.notify_all();
        }
        Ok(r)
    }

    /// Takes queued input for a read (0 after a hangup or when nothing is there).
    fn take(&self, buf: &mut [u8]) -> usize {
        let mut st = self.lock();
        if !st.master_open {
            return 0;
        }
        st.ld.take_input(buf).unwrap_or(0)
    }

    /// Waits until `ready` holds (true), the master hangs up (true) or `deadline` passes
    /// (false). EAGAIN instead of waiting if `nonblock`; ERESTARTSYS on a signal.
    fn wait_input(&self, nonblock: bool, deadline: Option<Instant>, ready: impl Fn(&TtyState) -> bool) -> Result<bool, Errno> {
        let check = || -> Option<Result<bool, Errno>> {
            let st = self.lock();
            if !st.master_open || ready(&st) {
                return Some(Ok(true));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        };
        if let Some(r) = check() {
            return r;
        }
        match block_on(&[&self.queue], deadline, check) {
            Err(Errno::ETIMEDOUT) => Ok(false),
            r => r,
        }
    }

    /// A write by a program: output processing into the master's queue. EIO after a
    /// hangup; background process groups get SIGTTOU first when TOSTOP is set.
    pub fn replica_write(self: &Arc<Self>, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if self.lock().ld.termios.c_lflag & TOSTOP != 0 {
            jobctl::check_change(self)?;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut done = 0usize;
        let attempt = |done: &mut usize| -> Option<Result<usize, Errno>> {
            let mut st = self.lock();
            if !st.master_open {
                return Some(if *done == 0 { Err(Errno::EIO) } else { Ok(*done) });
            }
            let n = st.ld.write_output(&buf[*done..]);
            drop(st);
            *done += n;
            if n > 0 {
                self.queue.notify_all();
            }
            match () {
                _ if *done == buf.len() => Some(Ok(*done)),
                _ if nonblock => Some(if *done == 0 { Err(Errno::EAGAIN) } else { Ok(*done) }),
                _ => None,
            }
        };
        if let Some(r) = attempt(&mut done) {
            return r;
        }
        match block_on(&[&self.queue], None, || attempt(&mut done)) {
            Err(Errno::ERESTARTSYS) if done > 0 => Ok(done),
            r => r,
        }
    }

    pub(super) fn replica_readiness(&self) -> u32 {
        let st = self.lock();
        if !st.master_open {
            return POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLHUP;
        }
        let mut ev = 0;
        let min = if st.ld.canonical() {
            1
        } else {
            (st.ld.termios.c_cc[VMIN] as usize).max(1)
        };
        if st.ld.read_ready(min) {
            ev |= POLLIN | POLLRDNORM;
        }
        if st.ld.output_room() {
            ev |= POLLOUT | POLLWRNORM;
        }
        ev
    }

    pub(super) fn replica_stat(&self) -> Stat {
        let t = self.created;
        Stat {
            st_dev: DEVPTS_DEV,
            st_ino: self.index as u64 + 3,
            st_nlink: 1,
            st_mode: rvisor_syscalls::flags::mode::S_IFCHR | 0o620,
            st_uid: self.uid,
            st_gid: self.gid,
            st_rdev: makedev(PTS_MAJOR, self.index as u64),
            st_blksize: 1024,
            st_atime: t.0,
            st_atime_nsec: t.1,
            st_mtime: t.0,
            st_mtime_nsec: t.1,
            st_ctime: t.0,
            st_ctime_nsec: t.1,
            ..Default::default()
        }
    }
}

/// The master end (one per open of /dev/ptmx).
pub struct PtyMaster {
    pub tty: Arc<Terminal>,
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        self.tty.master_closed();
    }
}

impl FileImpl for PtyMaster {
    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.tty.master_read(buf, flags & O_NONBLOCK != 0)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.tty.master_write(buf, flags & O_NONBLOCK != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let t = self.tty.created;
        Ok(Stat {
            st_dev: 0x06,
            st_ino: 2,
            st_nlink: 1,
            st_mode: rvisor_syscalls::flags::mode::S_IFCHR | 0o666,
            st_rdev: makedev(5, 2),
            st_blksize: 1024,
            st_atime: t.0,
            st_mtime: t.0,
            st_ctime: t.0,
            ..Default::default()
        })
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn ioctl(&self, _mm: &MemoryManager, _cmd: u32, _arg: u64) -> Result<u64, Errno> {
        // Terminal requests need the calling task and go through devpts::ioctl.
        Err(Errno::ENOTTY)
    }

    fn readiness(&self) -> u32 {
        self.tty.master_readiness()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tty.queue)
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }
}

/// The replica end (an open of /dev/pts/N, /dev/tty or /dev/console).
pub struct PtyReplica {
    pub tty: Arc<Terminal>,
}

impl PtyReplica {
    /// Counts a new open of the replica.
    pub(super) fn open(tty: &Arc<Terminal>) -> Arc<PtyReplica> {
        {
            let mut st = tty.lock();
            st.replicas += 1;
            st.replica_ever_opened = true;
        }
        tty.queue.notify_all();
        Arc::new(PtyReplica { tty: tty.clone() })
    }
}

impl Drop for PtyReplica {
    fn drop(&mut self) {
        self.tty.lock().replicas -= 1;
        self.tty.queue.notify_all();
    }
}

impl FileImpl for PtyReplica {
    fn read(&self, buf: &mut [u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.tty.replica_read(buf, flags & O_NONBLOCK != 0)
    }

    fn write(&self, buf: &[u8], _offset: u64, flags: u32) -> Result<usize, Errno> {
        self.tty.replica_write(buf, flags & O_NONBLOCK != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.tty.replica_stat())
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn ioctl(&self, _mm: &MemoryManager, _cmd: u32, _arg: u64) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }

    fn readiness(&self) -> u32 {
        self.tty.replica_readiness()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tty.queue)
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }
}
