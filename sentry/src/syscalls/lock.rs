//! File lock syscalls: fcntl record locks (F_GETLK, F_SETLK, F_SETLKW and the F_OFD_*
//! variants) and flock(2). The semantics live in [`crate::vfs::lock`].

use std::sync::Arc;

use rvisor_syscalls::flags::fcntl::*;
use rvisor_syscalls::flags::flock::{LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN};
use rvisor_syscalls::flags::open::O_PATH;
use rvisor_syscalls::flags::seek::{SEEK_CUR, SEEK_END, SEEK_SET};
use rvisor_syscalls::types::Flock;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::lock::{self, FileKey, LockKind, Owner, RecordRequest, OFFSET_MAX};
use crate::vfs::FileDescription;

/// The key locks on `f`'s file are filed under.
pub(super) fn file_key(f: &FileDescription) -> Result<FileKey, Errno> {
    let st = f.imp().stat()?;
    Ok((st.st_dev, st.st_ino))
}

/// The owner id of an open file description (OFD and flock locks).
fn description_id(f: &Arc<FileDescription>) -> usize {
    Arc::as_ptr(f) as usize
}

/// The process closed an fd of `f`: its POSIX locks on the file go.
pub(super) fn fd_closed(t: &Task, f: &FileDescription) {
    lock::posix_fd_closed(t.tgid(), f);
}

fn kind_of(l_type: i16) -> Result<Option<LockKind>, Errno> {
    match l_type {
        F_RDLCK => Ok(Some(LockKind::Read)),
        F_WRLCK => Ok(Some(LockKind::Write)),
        F_UNLCK => Ok(None),
        _ => Err(Errno::EINVAL),
    }
}

/// fcntl(2) F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW.
pub(super) fn fcntl_lock(t: &mut Task, f: &Arc<FileDescription>, cmd: u32, arg: u64) -> SysResult {
    let mut fl: Flock = t.read_obj(arg)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let kind = kind_of(fl.l_type)?;
    let base = match fl.l_whence as u32 {
        SEEK_SET => 0,
        SEEK_CUR => f.seek(0, SEEK_CUR)? as i64,
        SEEK_END => f.imp().stat()?.st_size,
        _ => return Err(Errno::EINVAL),
    };
    let (start, end) = lock::range_of(base, fl.l_start, fl.l_len)?;
    let key = file_key(f)?;
    let (owner, pid) = if ofd { (Owner::Description(description_id(f)), -1) } else { (Owner::Process(t.tgid()), t.tgid()) };
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        let kind = kind.ok_or(Errno::EINVAL)?;
        match lock::test_lock(key, owner, kind, start, end) {
            Some(r) => {
                fl.l_type = if r.kind == LockKind::Write { F_WRLCK } else { F_RDLCK };
                fl.l_whence = SEEK_SET as i16;
                fl.l_start = r.start;
                fl.l_len = if r.end == OFFSET_MAX { 0 } else { r.end - r.start + 1 };
                fl.l_pid = r.pid;
            }
            None => fl.l_type = F_UNLCK,
        }
        t.write_obj(arg, &fl)?;
        return Ok(0);
    }
    match kind {
        Some(LockKind::Read) if !f.readable() => return Err(Errno::EBADF),
        Some(LockKind::Write) if !f.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
    lock::set_record(RecordRequest { key, owner, pid, kind, start, end }, wait, t.tid())?;
    Ok(0)
}

/// flock(2)
pub fn flock(t: &mut Task, a: &Args) -> SysResult {
    let f = t.file(a[0] as i32)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let op = a[1] as u32;
    let kind = match op & !LOCK_NB {
        LOCK_SH => Some(LockKind::Read),
        LOCK_EX => Some(LockKind::Write),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let key = file_key(&f)?;
    lock::flock(key, description_id(&f), kind, op & LOCK_NB == 0)?;
    Ok(0)
}
