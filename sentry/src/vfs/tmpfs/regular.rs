//! tmpfs regular files: contents in a shared-memory object of the memory file.

use std::sync::Arc;

use rvisor_syscalls::flags::fcntl::{F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE};
use rvisor_syscalls::flags::open::{O_APPEND, O_NOATIME};
use rvisor_syscalls::types::Stat;
use rvisor_syscalls::Errno;

use super::limits::Accounting;
use super::{TmpfsInode, MAX_FILE_SIZE};
use crate::mm::{page_down, page_up, MmError, SharedMemory, PAGE_SIZE};
use crate::vfs::file::FileImpl;
use crate::vfs::inode::falloc_flags::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use crate::vfs::inode::Inode;

/// What a failure of the memory file means to a tmpfs user.
fn errno(e: MmError) -> Errno {
    match e {
        MmError::OutOfMemory { .. } => Errno::ENOSPC,
        _ => Errno::EIO,
    }
}

/// A regular file's size and pages. The object is always exactly `page_up(size)` long, so
/// mappings get SIGBUS past the last page of the file, as in Linux.
pub(super) struct RegularData {
    pub(super) size: u64,
    pub(super) obj: Arc<SharedMemory>,
    /// memfd seals (`F_SEAL_*`): a file not made by memfd_create(MFD_ALLOW_SEALING) is
    /// born with F_SEAL_SEAL, so none can be added.
    seals: u32,
    /// The filesystem's space accounting, and the pages this file has been charged for.
    acct: Arc<Accounting>,
    charged: u64,
}

impl Drop for RegularData {
    fn drop(&mut self) {
        self.acct.uncharge(self.charged);
    }
}

/// Pages of `[start, end)` reserved before an operation that may realise them, settled
/// afterwards with [`RegularData::settle`].
struct Reservation {
    start: u64,
    end: u64,
    /// Pages already realised in the range before the operation.
    had: u64,
    /// Pages charged to the filesystem for it.
    charged: u64,
}

impl RegularData {
    pub(super) fn new(obj: Arc<SharedMemory>, acct: Arc<Accounting>) -> RegularData {
        RegularData { size: 0, obj, seals: F_SEAL_SEAL, acct, charged: 0 }
    }

    /// Reserves the pages that writing `[off, off + len)` may realise. With `partial`,
    /// a range that does not fit is cut at the first page that does not (ENOSPC if none
    /// does); returns the reservation and how many bytes of the range it covers.
    fn reserve(&self, off: u64, len: u64, partial: bool) -> Result<(Reservation, u64), Errno> {
        let start = page_down(off);
        let end = page_up(off.saturating_add(len)).unwrap_or(u64::MAX & !(PAGE_SIZE - 1));
        let had = self.obj.realised_in(start, end) / PAGE_SIZE;
        let need = ((end - start) / PAGE_SIZE).saturating_sub(had);
        if self.acct.charge(need).is_ok() {
            return Ok((Reservation { start, end, had, charged: need }, len));
        }
        if !partial {
            return Err(Errno::ENOSPC);
        }
        // Cut the range at the first new page past what is left.
        let avail = self.acct.available();
        let (mut cur, mut new) = (start, 0u64);
        while cur < end {
            if self.obj.realised_in(cur, cur + PAGE_SIZE) == 0 {
                if new == avail {
                    break;
                }
                new += 1;
            }
            cur += PAGE_SIZE;
        }
        if cur <= off {
            return Err(Errno::ENOSPC);
        }
        self.acct.charge(new)?;
        let had = self.obj.realised_in(start, cur) / PAGE_SIZE;
        Ok((Reservation { start, end: cur, had, charged: new }, (cur - off).min(len)))
    }

    /// Keeps the charge for the pages the operation realised and gives back the rest.
    fn settle(&mut self, r: Reservation) {
        let now = self.obj.realised_in(r.start, r.end) / PAGE_SIZE;
        let used = now.saturating_sub(r.had).min(r.charged);
        self.acct.uncharge(r.charged - used);
        self.charged += used;
    }

    /// Gives back the charge for pages freed at or beyond `from` by `op`.
    fn release_beyond(&mut self, from: u64, op: impl FnOnce(&mut Self) -> Result<(), Errno>) -> Result<(), Errno> {
        let from = page_up(from).unwrap_or(u64::MAX & !(PAGE_SIZE - 1));
        let before = self.obj.realised_in(from, u64::MAX) / PAGE_SIZE;
        let r = op(self);
        let after = self.obj.realised_in(from, u64::MAX) / PAGE_SIZE;
        let freed = before.saturating_sub(after).min(self.charged);
        self.acct.uncharge(freed);
        self.charged -= freed;
        r
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if off >= self.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - off) as usize;
        self.obj.read(off, &mut buf[..n]).map_err(errno)?;
        Ok(n)
    }

    /// Changes the size to `new`. Bytes between the old and the new end read as zero:
    /// the tail of the old last page (which a shared mapping may have written beyond the
    /// end) is cleared when the file grows, and when it shrinks so is the tail of its
    /// new last page.
    fn resize(&mut self, new: u64) -> Result<(), Errno> {
        if new > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let old = self.size;
        if new > old {
            self.obj.zero(old, new.min(page_up(old).unwrap_or(u64::MAX))).map_err(errno)?;
            self.obj.set_len(new).map_err(errno)?;
        } else if new < old {
            self.obj.set_len(new).map_err(errno)?;
            self.obj.zero(new, page_up(new).unwrap_or(u64::MAX)).map_err(errno)?;
        }
        self.size = new;
        Ok(())
    }

    /// Writes `buf` at `off` (at the end with `append`); returns how much was written.
    fn write(&mut self, off: u64, buf: &[u8], append: bool) -> Result<usize, Errno> {
        let off = if append { self.size } else { off };
        if self.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.seals & F_SEAL_GROW != 0 && off.saturating_add(buf.len() as u64) > self.size {
            return Err(Errno::EPERM);
        }
        if off >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let n = (buf.len() as u64).min(MAX_FILE_SIZE - off);
        let (res, n) = self.reserve(off, n, true)?;
        let n = n as usize;
        let end = off + n as u64;
        let old = self.size;
        if end > old {
            if let Err(e) = self.resize(end) {
                self.settle(res);
                return Err(e);
            }
        }
        if let Err(e) = self.obj.write(off, &buf[..n]) {
            // Out of memory: the file keeps its old size.
            let _ = self.resize(old);
            self.settle(res);
            return Err(errno(e));
        }
        self.settle(res);
        Ok(n)
    }

    /// truncate(2) to `size`.
    pub(super) fn truncate(&mut self, size: u64) -> Result<(), Errno> {
        if (size < self.size && self.seals & F_SEAL_SHRINK != 0) || (size > self.size && self.seals & F_SEAL_GROW != 0) {
            return Err(Errno::EPERM);
        }
        if size < self.size {
            return self.release_beyond(size, |d| d.resize(size));
        }
        self.resize(size)
    }

    /// fallocate(2); returns whether the contents or size changed (for the timestamps).
    pub(super) fn fallocate(&mut self, mode: u32, off: u64, len: u64) -> Result<bool, Errno> {
        let end = off.checked_add(len).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Errno::EFBIG)?;
        let sealed = match mode {
            0 => self.seals & F_SEAL_GROW != 0 && end > self.size,
            FALLOC_FL_KEEP_SIZE => false,
            _ => self.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0,
        };
        if sealed {
            return Err(Errno::EPERM);
        }
        match mode {
            0 | FALLOC_FL_KEEP_SIZE => {
                let grows = mode == 0 && end > self.size;
                let old = self.size;
                let alloc_end = if grows { end } else { end.min(self.size) };
                let (res, _) = self.reserve(off, alloc_end.saturating_sub(off), false)?;
                if grows {
                    if let Err(e) = self.resize(end) {
                        self.settle(res);
                        return Err(e);
                    }
                }
                if let Err(e) = self.obj.allocate(off, end.min(self.size)) {
                    if grows {
                        let _ = self.resize(old);
                    }
                    self.settle(res);
                    return Err(errno(e));
                }
                self.settle(res);
                Ok(grows)
            }
            m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
                self.obj.zero(off, end.min(self.size)).map_err(errno)?;
                Ok(true)
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }
}

/// An open tmpfs regular file.
pub(super) struct TmpfsFile {
    node: Arc<TmpfsInode>,
}

impl TmpfsFile {
    pub(super) fn new(node: Arc<TmpfsInode>) -> TmpfsFile {
        TmpfsFile { node }
    }
}

impl FileImpl for TmpfsFile {
    fn read(&self, buf: &mut [u8], offset: u64, flags: u32) -> Result<usize, Errno> {
        let n = {
            let r = self.node.regular()?;
            let data = r.read().unwrap_or_else(|p| p.into_inner());
            data.read(offset, buf)?
        };
        if flags & O_NOATIME == 0 {
            self.node.meta().accessed();
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8], offset: u64, flags: u32) -> Result<usize, Errno> {
        let r = self.node.regular()?;
        let mut data = r.write().unwrap_or_else(|p| p.into_inner());
        let n = data.write(offset, buf, flags & O_APPEND != 0)?;
        if n > 0 {
            self.node.meta().modified();
        }
        Ok(n)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }

    fn shared_memory(&self) -> Option<Arc<SharedMemory>> {
        let r = self.node.regular().ok()?;
        let data = r.read().unwrap_or_else(|p| p.into_inner());
        Some(data.obj.clone())
    }
}

/// memfd seals, kept with the data they guard (see [`crate::vfs::memfd`]).
impl TmpfsInode {
    /// F_GET_SEALS. EINVAL for a file that is not regular.
    pub fn seals(&self) -> Result<u32, Errno> {
        let r = self.regular().map_err(|_| Errno::EINVAL)?;
        let seals = r.read().unwrap_or_else(|p| p.into_inner()).seals;
        Ok(seals)
    }

    /// Replaces the seals wholesale (memfd_create's initial seals).
    pub fn set_initial_seals(&self, seals: u32) -> Result<(), Errno> {
        let r = self.regular().map_err(|_| Errno::EINVAL)?;
        r.write().unwrap_or_else(|p| p.into_inner()).seals = seals;
        Ok(())
    }

    /// F_ADD_SEALS: EPERM once F_SEAL_SEAL is set. F_SEAL_WRITE is refused with EBUSY
    /// while the pages are mapped anywhere: the object has no count of writable shared
    /// mappings, so any live mapping (even read-only or private) counts.
    pub fn add_seals(&self, seals: u32) -> Result<(), Errno> {
        let r = self.regular().map_err(|_| Errno::EINVAL)?;
        let mut data = r.write().unwrap_or_else(|p| p.into_inner());
        if data.seals & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_WRITE != 0 && data.seals & F_SEAL_WRITE == 0 && Arc::strong_count(&data.obj) > 1 {
            return Err(Errno::EBUSY);
        }
        data.seals |= seals;
        Ok(())
    }
}
