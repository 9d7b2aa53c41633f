//! inotify_init(2), inotify_init1(2), inotify_add_watch(2), inotify_rm_watch(2). The
//! instance and the event hooks are `vfs::inotify`.

use std::sync::Arc;

use rvisor_syscalls::fdkinds::inotify::*;
use rvisor_syscalls::flags::open::O_RDONLY;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::inotify::{Inotify, InotifyFile};
use crate::vfs::FileDescription;

fn init(t: &mut Task, flags: u32) -> SysResult {
    if flags & !(IN_CLOEXEC | IN_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let i = Inotify::new(t.creds.fsuid, t.creds.fsgid);
    let file = FileDescription::new(
        Arc::new(InotifyFile(i)),
        None,
        O_RDONLY | (flags & IN_NONBLOCK),
    );
    Ok(t.install_fd(file, flags & IN_CLOEXEC != 0)? as u64)
}

/// inotify_init(2)
pub fn inotify_init(t: &mut Task, _a: &Args) -> SysResult {
    init(t, 0)
}

/// inotify_init1(2): IN_NONBLOCK, IN_CLOEXEC.
pub fn inotify_init1(t: &mut Task, a: &Args) -> SysResult {
    init(t, a[0] as u32)
}

fn instance(t: &Task, fd: i32) -> Result<Arc<Inotify>, Errno> {
    let file = t.file(fd)?;
    let any = file.imp().clone().into_any().ok_or(Errno::EINVAL)?;
    any.downcast::<Inotify>().map_err(|_| Errno::EINVAL)
}

/// inotify_add_watch(2): the path needs read permission, as in Linux.
pub fn inotify_add_watch(t: &mut Task, a: &Args) -> SysResult {
    let (fd, path_addr, mask) = (a[0] as i32, a[1], a[2] as u32);
    let i = instance(t, fd)?;
    if mask & IN_ALL_EVENTS == 0 {
        return Err(Errno::EINVAL);
    }
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.copy_in_path(path_addr)?;
    let d = t.lookup_at(
        rvisor_syscalls::flags::at::AT_FDCWD,
        &path,
        mask & IN_DONT_FOLLOW == 0,
    )?;
    if mask & IN_ONLYDIR != 0 && !d.inode().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let st = d.inode().cached_stat()?;
    super::fs::may_access(t, &st, true, false, false, false)?;
    Ok(i.add_watch(d, mask)? as u64)
}

/// inotify_rm_watch(2)
pub fn inotify_rm_watch(t: &mut Task, a: &Args) -> SysResult {
    let i = instance(t, a[0] as i32)?;
    i.rm_watch(a[1] as i32)?;
    Ok(0)
}
