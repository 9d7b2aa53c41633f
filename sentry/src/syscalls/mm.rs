//! Memory syscalls: thin argument checks over [`crate::mm::MemoryManager`].

use rvisor_syscalls::flags::mman::*;
use rvisor_platform::Perms;
use rvisor_syscalls::Errno;

use super::{Args, SysResult};
use crate::kernel::Task;
use crate::vfs::file::file_source;

pub fn mmap(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2] as u32, a[3] as u32, a[4] as i32, a[5]);
    let mut max = Perms::RWX;
    let file = if flags & MAP_ANONYMOUS != 0 {
        None
    } else {
        if off & 0xfff != 0 {
            return Err(Errno::EINVAL);
        }
        let f = t.file(fd)?;
        let shared = flags & MAP_TYPE != MAP_PRIVATE;
        if !f.readable() || (shared && prot & PROT_WRITE != 0 && !f.writable()) {
            return Err(Errno::EACCES);
        }
        if shared && !f.writable() {
            max.write = false;
        }
        if shared && prot & PROT_WRITE != 0 {
            crate::vfs::memfd::check_shared_writable_map(&f)?;
        }
        if let Some(obj) = f.imp().shared_memory() {
            // A tmpfs file: map its pages themselves, shared or copy-on-write.
            return t.mm.mmap_object(addr, len, prot, flags, obj, off, max);
        }
        if shared {
            if let Some(obj) = f.imp().shared_page_cache() {
                // A file of the read-only root: every process shares its page cache.
                return t.mm.mmap_object(addr, len, prot, flags, obj, off, max);
            }
        }
        Some((file_source(&f)?, off))
    };
    t.mm.mmap_limited(addr, len, prot, flags, file, max)
}

pub fn munmap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.munmap(a[0], a[1])?;
    Ok(0)
}

pub fn mprotect(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mprotect(a[0], a[1], a[2] as u32)?;
    Ok(0)
}

pub fn brk(t: &mut Task, a: &Args) -> SysResult {
    Ok(t.mm.brk(a[0]))
}

/// madvise(2). Advice is a hint except the destructive kinds, which discard the pages'
/// contents (anonymous memory then reads back as zeros).
pub fn madvise(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, advice) = (a[0], a[1], a[2] as u32);
    if addr & 0xfff != 0 || addr.checked_add(len).is_none() {
        return Err(Errno::EINVAL);
    }
    match advice {
        MADV_DONTNEED | MADV_FREE | MADV_REMOVE => {
            t.mm.discard(addr, len)?;
            Ok(0)
        }
        MADV_DONTFORK | MADV_DOFORK => {
            t.mm.set_dontfork(addr, len, advice == MADV_DONTFORK)?;
            Ok(0)
        }
        MADV_WIPEONFORK | MADV_KEEPONFORK => {
            t.mm.set_wipeonfork(addr, len, advice == MADV_WIPEONFORK)?;
            Ok(0)
        }
        MADV_NORMAL | MADV_RANDOM | MADV_SEQUENTIAL | MADV_WILLNEED | MADV_HUGEPAGE | MADV_NOHUGEPAGE => Ok(0),
        12..=13 | 16..=17 | 20..=25 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn mremap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mremap(a[0], a[1], a[2], a[3] as u32, a[4])
}

/// mincore(2). The range may be huge (a reserved NORESERVE mapping), so it is answered in
/// pieces, as Linux does: the sentry never holds more than one piece's vector, and a hole
/// found after the first piece fails with ENOMEM after the earlier pieces were written.
pub fn mincore(t: &mut Task, a: &Args) -> SysResult {
    const PIECE: u64 = (1 << 16) * 4096;
    let (addr, len, out) = (a[0], a[1], a[2]);
    if addr & 0xfff != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.checked_add(0xfff).ok_or(Errno::ENOMEM)? & !0xfff;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PIECE);
        let v = t.mm.mincore(addr + done, n)?;
        t.mm.copy_out(out + done / 4096, &v)?;
        done += n;
    }
    Ok(0)
}

pub fn msync(t: &mut Task, a: &Args) -> SysResult {
    t.mm.msync(a[0], a[1], a[2] as u32)?;
    Ok(0)
}

pub fn mlock(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mlock(a[0], a[1], 0)?;
    Ok(0)
}

pub fn mlock2(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mlock(a[0], a[1], a[2] as u32)?;
    Ok(0)
}

pub fn munlock(t: &mut Task, a: &Args) -> SysResult {
    t.mm.munlock(a[0], a[1])?;
    Ok(0)
}

pub fn mlockall(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mlockall(a[0] as u32)?;
    Ok(0)
}

pub fn munlockall(t: &mut Task, _a: &Args) -> SysResult {
    t.mm.munlockall();
    Ok(0)
}
