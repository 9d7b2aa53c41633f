//! Terminal ioctls on pseudo-terminal ends. They need the calling task (its session and
//! process group), so the syscall layer routes them here before the file's own ioctl.

use std::sync::Arc;

use rvisor_syscalls::flags::ioctl as io;
use rvisor_syscalls::flags::open::{O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK};
use rvisor_syscalls::flags::termios::{TCIFLUSH, TCIOFLUSH, TCOFLUSH};
use rvisor_syscalls::types::{Termios, Winsize};
use rvisor_syscalls::Errno;

use super::jobctl;
use super::terminal::{makedev, PtyMaster, PtyReplica, Terminal, PTS_MAJOR};
use crate::kernel::Task;
use crate::vfs::FileDescription;

/// Handles `cmd` if `file` is a pseudo-terminal end; `None` for other files.
pub fn ioctl(t: &mut Task, file: &FileDescription, cmd: u32, arg: u64) -> Option<Result<u64, Errno>> {
    let any = file.imp().clone().into_any()?;
    let (tty, master) = match any.downcast::<PtyReplica>() {
        Ok(r) => (r.tty.clone(), false),
        Err(any) => match any.downcast::<PtyMaster>() {
            Ok(m) => (m.tty.clone(), true),
            Err(_) => return None,
        },
    };
    Some(tty_ioctl(t, &tty, master, cmd, arg))
}

/// Whether `tty` is the caller's controlling terminal.
fn is_ctty(t: &Task, tty: &Terminal) -> bool {
    let sid = t.tg().sid();
    let (tsid, _) = tty.session_and_pgrp();
    tsid != 0 && tsid == sid && jobctl::session_alive(&t.kernel, sid)
}

fn tty_ioctl(t: &mut Task, tty: &Arc<Terminal>, master: bool, cmd: u32, arg: u64) -> Result<u64, Errno> {
    match cmd {
        io::TCGETS => {
            t.write_obj(arg, &tty.termios())?;
            Ok(0)
        }
        io::TCSETS | io::TCSETSW | io::TCSETSF => {
            let new: Termios = t.read_obj(arg)?;
            jobctl::check_change(tty)?;
            tty.set_termios(new, cmd == io::TCSETSF);
            Ok(0)
        }
        io::TIOCGWINSZ => {
            t.write_obj(arg, &tty.winsize())?;
            Ok(0)
        }
        io::TIOCSWINSZ => {
            let ws: Winsize = t.read_obj(arg)?;
            tty.set_winsize(ws);
            Ok(0)
        }
        io::FIONREAD => {
            let n = if master { tty.output_bytes() } else { tty.readable_bytes() };
            t.write_obj(arg, &(i32::try_from(n).unwrap_or(i32::MAX)))?;
            Ok(0)
        }
        io::TIOCOUTQ => {
            let n = if master { 0 } else { tty.output_bytes() };
            t.write_obj(arg, &(i32::try_from(n).unwrap_or(i32::MAX)))?;
            Ok(0)
        }
        io::TCFLSH => {
            // The master's input is the replica's output and the other way round.
            let (input, output) = match arg {
                TCIFLUSH => (true, false),
                TCOFLUSH => (false, true),
                TCIOFLUSH => (true, true),
                _ => return Err(Errno::EINVAL),
            };
            if !master {
                jobctl::check_change(tty)?;
            }
            if master {
                tty.flush(output, input);
            } else {
                tty.flush(input, output);
            }
            Ok(0)
        }
        io::TCXONC | io::TCSBRK | io::TCSBRKP | io::TIOCEXCL | io::TIOCNXCL => Ok(0),
        io::TIOCGPGRP => {
            if !master && !is_ctty(t, tty) {
                return Err(Errno::ENOTTY);
            }
            let (_, fg) = tty.session_and_pgrp();
            t.write_obj(arg, &fg)?;
            Ok(0)
        }
        io::TIOCGSID => {
            if !master && !is_ctty(t, tty) {
                return Err(Errno::ENOTTY);
            }
            let (sid, _) = tty.session_and_pgrp();
            if sid == 0 {
                return Err(Errno::ENOTTY);
            }
            t.write_obj(arg, &sid)?;
            Ok(0)
        }
        io::TIOCSPGRP => {
            if !is_ctty(t, tty) {
                return Err(Errno::ENOTTY);
            }
            jobctl::check_change(tty)?;
            let pgrp: i32 = t.read_obj(arg)?;
            if pgrp < 0 {
                return Err(Errno::EINVAL);
            }
            jobctl::pgrp_in_session(&t.kernel, pgrp, t.tg().sid())?;
            tty.set_fg_pgrp(pgrp);
            Ok(0)
        }
        io::TIOCSCTTY => {
            if master {
                return Err(Errno::ENOTTY);
            }
            let (tgid, pgid, sid) = {
                let g = t.tg().lock();
                (t.tgid(), g.pgid, g.sid)
            };
            if is_ctty(t, tty) {
                return Ok(0);
            }
            if sid != tgid || t.kernel.devpts.controlling_terminal(&t.kernel, sid).is_some() {
                return Err(Errno::EPERM);
            }
            let (tsid, _) = tty.session_and_pgrp();
            // Stealing another live session's terminal needs CAP_SYS_ADMIN (arg 1), which
            // the sandbox's processes do not get here.
            if tsid != 0 && jobctl::session_alive(&t.kernel, tsid) {
                return Err(Errno::EPERM);
            }
            tty.make_controlling(sid, pgid);
            Ok(0)
        }
        io::TIOCNOTTY => {
            if master || !is_ctty(t, tty) {
                return Err(Errno::ENOTTY);
            }
            // A session leader gives the terminal up for the whole session; the foreground
            // group is hung up. (Another member's TIOCNOTTY is accepted without effect: the
            // controlling terminal is kept per session.)
            if t.tg().sid() == t.tgid() {
                let (_, fg) = tty.session_and_pgrp();
                tty.set_session(0, 0);
                if fg > 0 {
                    jobctl::signal_pgrp(&t.kernel, fg, rvisor_syscalls::flags::signal::SIGHUP);
                    jobctl::signal_pgrp(&t.kernel, fg, rvisor_syscalls::flags::signal::SIGCONT);
                }
            }
            Ok(0)
        }
        io::TIOCGPTN if master => {
            t.write_obj(arg, &tty.index)?;
            Ok(0)
        }
        io::TIOCSPTLCK if master => {
            let lock: i32 = t.read_obj(arg)?;
            tty.set_locked(lock != 0);
            Ok(0)
        }
        io::TIOCGPTLCK if master => {
            t.write_obj(arg, &(tty.locked() as i32))?;
            Ok(0)
        }
        io::TIOCGPTPEER if master => {
            let flags = arg as u32;
            if flags & !(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) != 0 {
                return Err(Errno::EINVAL);
            }
            let imp = super::open_replica(tty, flags)?;
            let file = FileDescription::new(imp, None, flags & !(O_NOCTTY | O_CLOEXEC));
            Ok(t.install_fd(file, flags & O_CLOEXEC != 0)? as u64)
        }
        io::TIOCGDEV => {
            let dev = if master {
                makedev(5, 2)
            } else {
                makedev(PTS_MAJOR, tty.index as u64)
            };
            t.write_obj(arg, &(dev as u32))?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}
