//! Extended attributes: getxattr, setxattr, listxattr, removexattr and their `l` (no
//! final symlink followed) and `f` (an open file) forms.
//!
//! The handlers check the name, sizes and permissions as Linux's `fs/xattr.c` does, then
//! ask the filesystem ([`crate::vfs::Inode::getxattr`] ...), which keeps the attributes
//! (tmpfs in memory, the gofer filesystem on the host; both only the `user.` namespace).

use std::sync::Arc;

use rvisor_syscalls::flags::at::AT_FDCWD;
use rvisor_syscalls::flags::mode::{S_IFDIR, S_IFMT, S_IFREG, S_ISVTX};
use rvisor_syscalls::flags::open::O_PATH;
use rvisor_syscalls::flags::xattr::{
    XATTR_CREATE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, XATTR_USER_PREFIX,
};
use rvisor_syscalls::Errno;

use super::fs::may_access;
use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::Inode;

/// How an xattr call names its file.
#[derive(Clone, Copy)]
enum Target {
    /// A path, following a final symlink or not.
    Path { follow: bool },
    /// An open file descriptor.
    Fd,
}

/// The inode the call's first argument names.
fn target_inode(t: &Task, target: Target, arg: u64) -> Result<Arc<dyn Inode>, Errno> {
    Ok(target_dentry(t, target, arg)?.inode().clone())
}

/// The file the call's first argument names.
fn target_dentry(t: &Task, target: Target, arg: u64) -> Result<Arc<crate::vfs::Dentry>, Errno> {
    Ok(match target {
        Target::Path { follow } => {
            let path = t.copy_in_path(arg)?;
            t.lookup_at(AT_FDCWD, &path, follow)?
        }
        Target::Fd => {
            let f = t.file(arg as i32)?;
            if f.flags() & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            f.dentry().cloned().ok_or(Errno::EOPNOTSUPP)?
        }
    })
}

/// Copies in an attribute name: 1..=255 bytes (ERANGE otherwise) in a namespace Linux
/// knows (EOPNOTSUPP otherwise).
fn copy_in_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    let name = t.mm.copy_in_cstring(addr, XATTR_NAME_MAX + 1).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    check_name(&name)?;
    Ok(name)
}

fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    let known = [XATTR_USER_PREFIX, b"trusted.", b"security.", b"system."];
    if !known.iter().any(|p| name.starts_with(p)) {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// Linux's `xattr_permission`: `user.` attributes live only on regular files and
/// directories (ENODATA to read, EPERM to write elsewhere) and need read or write
/// permission on the file; on a sticky directory only its owner may write them.
fn may_use(t: &Task, inode: &Arc<dyn Inode>, name: &[u8], write: bool) -> Result<(), Errno> {
    let st = inode.stat()?;
    if name.starts_with(XATTR_USER_PREFIX) {
        let ft = st.st_mode & S_IFMT;
        if ft != S_IFREG && ft != S_IFDIR {
            return Err(if write { Errno::EPERM } else { Errno::ENODATA });
        }
        if write && ft == S_IFDIR && st.st_mode & S_ISVTX != 0 && t.creds.fsuid != 0 && t.creds.fsuid != st.st_uid {
            return Err(Errno::EPERM);
        }
    } else if name.starts_with(b"trusted.") && t.creds.euid != 0 {
        // Invisible and untouchable without CAP_SYS_ADMIN.
        return Err(if write { Errno::EPERM } else { Errno::ENODATA });
    }
    may_access(t, &st, !write, write, false, false)
}

/// Copies `data` out to a guest buffer of `size` bytes: with size 0 only the length is
/// returned; ERANGE if it does not fit.
fn copy_out_sized(t: &Task, addr: u64, size: u64, data: &[u8]) -> SysResult {
    if size == 0 {
        return Ok(data.len() as u64);
    }
    if (data.len() as u64) > size {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(addr, data)?;
    Ok(data.len() as u64)
}

fn do_getxattr(t: &mut Task, target: Target, a: &Args) -> SysResult {
    let inode = target_inode(t, target, a[0])?;
    let name = copy_in_name(t, a[1])?;
    may_use(t, &inode, &name, false)?;
    let value = inode.getxattr(&name)?;
    if value.len() > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    copy_out_sized(t, a[2], a[3], &value)
}

fn do_setxattr(t: &mut Task, target: Target, a: &Args) -> SysResult {
    let (size, flags) = (a[3], a[4] as u32);
    if a[4] > u64::from(u32::MAX) || flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = copy_in_name(t, a[1])?;
    if size > XATTR_SIZE_MAX as u64 {
        return Err(Errno::E2BIG);
    }
    let mut value = vec![0u8; size as usize];
    t.mm.copy_in(a[2], &mut value)?;
    let dentry = target_dentry(t, target, a[0])?;
    if dentry.read_only() {
        return Err(Errno::EROFS);
    }
    let inode = dentry.inode();
    may_use(t, &inode, &name, true)?;
    inode.setxattr(&name, &value, flags)?;
    Ok(0)
}

fn do_listxattr(t: &mut Task, target: Target, a: &Args) -> SysResult {
    let inode = target_inode(t, target, a[0])?;
    let trusted_visible = t.creds.euid == 0;
    let mut list = Vec::new();
    for name in inode.listxattr()? {
        if name.starts_with(b"trusted.") && !trusted_visible {
            continue;
        }
        list.extend_from_slice(&name);
        list.push(0);
        if list.len() > XATTR_LIST_MAX {
            return Err(Errno::E2BIG);
        }
    }
    copy_out_sized(t, a[1], a[2], &list)
}

fn do_removexattr(t: &mut Task, target: Target, a: &Args) -> SysResult {
    let name = copy_in_name(t, a[1])?;
    let dentry = target_dentry(t, target, a[0])?;
    if dentry.read_only() {
        return Err(Errno::EROFS);
    }
    let inode = dentry.inode();
    may_use(t, &inode, &name, true)?;
    inode.removexattr(&name)?;
    Ok(0)
}

/// getxattr(2)
pub fn getxattr(t: &mut Task, a: &Args) -> SysResult {
    do_getxattr(t, Target::Path { follow: true }, a)
}

/// lgetxattr(2)
pub fn lgetxattr(t: &mut Task, a: &Args) -> SysResult {
    do_getxattr(t, Target::Path { follow: false }, a)
}

/// fgetxattr(2)
pub fn fgetxattr(t: &mut Task, a: &Args) -> SysResult {
    do_getxattr(t, Target::Fd, a)
}

/// setxattr(2)
pub fn setxattr(t: &mut Task, a: &Args) -> SysResult {
    do_setxattr(t, Target::Path { follow: true }, a)
}

/// lsetxattr(2)
pub fn lsetxattr(t: &mut Task, a: &Args) -> SysResult {
    do_setxattr(t, Target::Path { follow: false }, a)
}

/// fsetxattr(2)
pub fn fsetxattr(t: &mut Task, a: &Args) -> SysResult {
    do_setxattr(t, Target::Fd, a)
}

/// listxattr(2)
pub fn listxattr(t: &mut Task, a: &Args) -> SysResult {
    do_listxattr(t, Target::Path { follow: true }, a)
}

/// llistxattr(2)
pub fn llistxattr(t: &mut Task, a: &Args) -> SysResult {
    do_listxattr(t, Target::Path { follow: false }, a)
}

/// flistxattr(2)
pub fn flistxattr(t: &mut Task, a: &Args) -> SysResult {
    do_listxattr(t, Target::Fd, a)
}

/// removexattr(2)
pub fn removexattr(t: &mut Task, a: &Args) -> SysResult {
    do_removexattr(t, Target::Path { follow: true }, a)
}

/// lremovexattr(2)
pub fn lremovexattr(t: &mut Task, a: &Args) -> SysResult {
    do_removexattr(t, Target::Path { follow: false }, a)
}

/// fremovexattr(2)
pub fn fremovexattr(t: &mut Task, a: &Args) -> SysResult {
    do_removexattr(t, Target::Fd, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_a_known_namespace_and_a_bounded_length() {
        assert_eq!(check_name(b"user.a"), Ok(()));
        assert_eq!(check_name(b"trusted.overlay.opaque"), Ok(()));
        assert_eq!(check_name(b""), Err(Errno::ERANGE));
        assert_eq!(check_name(b"foo.bar"), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_name(b"user"), Err(Errno::EOPNOTSUPP));
        let mut long = b"user.".to_vec();
        long.resize(256, b'a');
        assert_eq!(check_name(&long), Err(Errno::ERANGE));
        long.truncate(255);
        assert_eq!(check_name(&long), Ok(()));
    }
}
