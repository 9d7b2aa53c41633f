//! signalfd(2) and signalfd4(2). The file is `vfs::signalfd`.

use std::sync::Arc;

use rvisor_syscalls::fdkinds::sfd::{SFD_CLOEXEC, SFD_NONBLOCK};
use rvisor_syscalls::flags::open::O_RDWR;
use rvisor_syscalls::types::SigSet;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::signalfd::{SignalFd, SignalFile};
use crate::vfs::FileDescription;

const SIGSET_SIZE: u64 = 8;

fn do_signalfd(t: &mut Task, fd: i32, mask_addr: u64, size: u64, flags: u32) -> SysResult {
    if flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 || size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: SigSet = t.read_obj(mask_addr)?;
    if fd != -1 {
        let file = t.file(fd)?;
        let any = file.imp().clone().into_any().ok_or(Errno::EINVAL)?;
        let sfd = any.downcast::<SignalFd>().map_err(|_| Errno::EINVAL)?;
        sfd.set_mask(mask);
        return Ok(fd as u64);
    }
    let sfd = SignalFd::new(mask, &t.handle, t.creds.fsuid, t.creds.fsgid);
    let file = FileDescription::new(
        Arc::new(SignalFile(sfd)),
        None,
        O_RDWR | (flags & SFD_NONBLOCK),
    );
    Ok(t.install_fd(file, flags & SFD_CLOEXEC != 0)? as u64)
}

/// signalfd(2): no flags.
pub fn signalfd(t: &mut Task, a: &Args) -> SysResult {
    do_signalfd(t, a[0] as i32, a[1], a[2], 0)
}

/// signalfd4(2): SFD_NONBLOCK, SFD_CLOEXEC.
pub fn signalfd4(t: &mut Task, a: &Args) -> SysResult {
    do_signalfd(t, a[0] as i32, a[1], a[2], a[3] as u32)
}
