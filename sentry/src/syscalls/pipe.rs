//! pipe(2) and pipe2(2).
//!
//! The pipe itself is `vfs::pipe`. A write to a pipe with no reader fails with EPIPE; the
//! SIGPIPE Linux sends along with it is the write path's job (it sees the EPIPE).

use rvisor_syscalls::flags::open::{O_CLOEXEC, O_DIRECT, O_NONBLOCK};
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::pipe::new_pipe_owned;

/// Creates a pipe and stores its (read, write) fds at `addr`.
fn do_pipe2(t: &mut Task, addr: u64, flags: u32) -> SysResult {
    // O_NOTIFICATION_PIPE (watch queues) is not supported: EINVAL as without
    // CONFIG_WATCH_QUEUE.
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = new_pipe_owned(flags, t.creds.fsuid, t.creds.fsgid);
    let cloexec = flags & O_CLOEXEC != 0;
    let rfd = t.install_fd(r, cloexec)?;
    let wfd = match t.install_fd(w, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds().remove(rfd);
            return Err(e);
        }
    };
    if let Err(e) = t.write_obj(addr, &[rfd, wfd]) {
        // Linux installs the fds only after the copy-out succeeded; undo ours.
        let mut fds = t.fds();
        let _ = fds.remove(rfd);
        let _ = fds.remove(wfd);
        return Err(e);
    }
    Ok(0)
}

/// pipe(2)
pub fn pipe(t: &mut Task, a: &Args) -> SysResult {
    do_pipe2(t, a[0], 0)
}

/// pipe2(2): O_CLOEXEC, O_NONBLOCK and O_DIRECT (packet mode).
pub fn pipe2(t: &mut Task, a: &Args) -> SysResult {
    do_pipe2(t, a[0], a[1] as u32)
}
