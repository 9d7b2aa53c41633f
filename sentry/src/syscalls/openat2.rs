//! openat2(2): openat with a `struct open_how` and `RESOLVE_*` path-walk restrictions
//! (the walk itself is [`crate::vfs::Vfs::resolve_scoped`]).

use rvisor_syscalls::flags::limits::PAGE_SIZE;
use rvisor_syscalls::flags::open::*;
use rvisor_syscalls::flags::resolve::*;
use rvisor_syscalls::types::OpenHow;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::Lookup;

/// Every flag open(2) knows (Linux's VALID_OPEN_FLAGS).
const VALID_OPEN_FLAGS: u64 = (O_ACCMODE
    | O_CREAT
    | O_EXCL
    | O_NOCTTY
    | O_TRUNC
    | O_APPEND
    | O_NONBLOCK
    | O_DSYNC
    | O_ASYNC
    | O_DIRECT
    | O_LARGEFILE
    | O_DIRECTORY
    | O_NOFOLLOW
    | O_NOATIME
    | O_CLOEXEC
    | O_SYNC
    | O_PATH
    | O_TMPFILE) as u64;
const VALID_RESOLVE: u64 = RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_CACHED;

/// Reads `struct open_how` of `size` bytes: EINVAL below the first version's 24 bytes,
/// E2BIG for a larger struct whose extra bytes are not all zero (or beyond a page).
fn read_how(t: &Task, addr: u64, size: u64) -> Result<OpenHow, Errno> {
    let base = std::mem::size_of::<OpenHow>() as u64;
    if size < base {
        return Err(Errno::EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    let how: OpenHow = t.read_obj(addr)?;
    if size > base {
        let mut tail = vec![0u8; (size - base) as usize];
        t.mm.copy_in(addr + base, &mut tail)?;
        if tail.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    Ok(how)
}

/// openat2(2). With O_CREAT the restrictions are checked on the walk to the parent
/// directory, and RESOLVE_IN_ROOT's clamping of `..` is not applied to that walk.
pub fn openat2(t: &mut Task, a: &Args) -> SysResult {
    let dirfd = a[0] as i32;
    let how = read_how(t, a[2], a[3])?;
    if how.flags & !VALID_OPEN_FLAGS != 0 || how.resolve & !VALID_RESOLVE != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = how.flags as u32;
    let creates = flags & O_CREAT != 0 || flags & O_TMPFILE == O_TMPFILE;
    if how.mode & !0o7777 != 0 || (how.mode != 0 && !creates) {
        return Err(Errno::EINVAL);
    }
    if how.resolve & RESOLVE_BENEATH != 0 && how.resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_PATH != 0 && flags & !(O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if how.resolve & RESOLVE_CACHED != 0 {
        // Nothing is known to be cached: the caller retries without the flag.
        return Err(Errno::EAGAIN);
    }
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::EOPNOTSUPP);
    }
    let mut path = t.copy_in_path(a[1])?;
    let in_root = how.resolve & RESOLVE_IN_ROOT != 0;
    let task_root = t.fs().root.clone();
    let absolute = path.first() == Some(&b'/');
    let dir = if in_root || !absolute { Some(t.dir_of(dirfd)?) } else { None };
    let root = if in_root { dir.clone().unwrap_or_else(|| task_root.clone()) } else { task_root.clone() };
    let start = dir.unwrap_or_else(|| root.clone());
    if flags & O_CREAT != 0 {
        // Check the walk to the parent, then create as openat does.
        let trimmed_len = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        let cut = path[..trimmed_len].iter().rposition(|&b| b == b'/');
        if let Some(i) = cut {
            let dir_part = if i == 0 { &path[..1] } else { &path[..i] };
            t.kernel.vfs.resolve_scoped(&Lookup { root: &root, start: &start, follow_last: true, creds: Some(&t.creds) }, dir_part, how.resolve)?;
        } else if absolute && how.resolve & RESOLVE_BENEATH != 0 {
            return Err(Errno::EXDEV);
        }
        if in_root && absolute {
            // Relative to the directory that stands for the root.
            let rel: Vec<u8> = path.iter().copied().skip_while(|&b| b == b'/').collect();
            path = if rel.is_empty() { b".".to_vec() } else { rel };
        }
        return super::fs_mutate::open_create(t, dirfd, &path, flags, how.mode as u32);
    }
    let d = t.kernel.vfs.resolve_scoped(&Lookup { root: &root, start: &start, follow_last: flags & O_NOFOLLOW == 0, creds: Some(&t.creds) }, &path, how.resolve)?;
    let flags = if flags & O_PATH != 0 { flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } else { flags };
    super::fs::open_dentry(t, d, flags, false)
}
