//! mmap, munmap, mprotect and brk with Linux semantics.

use std::sync::Arc;

use rvisor_platform::Perms;
use rvisor_syscalls::flags::mman::*;
use rvisor_syscalls::Errno;

use super::vma::{Backing, Vma};
use super::{
    page_up, FileSource, MemoryManager, MmState, SharedMemory, MMAP_MIN_ADDR, PAGE_SIZE, STACK_GUARD_GAP,
};

/// How [`MapRequest::addr`] is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A hint: used if the range is free, otherwise mmap picks an address.
    Hint,
    /// MAP_FIXED: exactly there, replacing whatever is mapped.
    Fixed,
    /// MAP_FIXED_NOREPLACE: exactly there, EEXIST if anything is mapped.
    FixedNoReplace,
}

/// A mapping to create, already decoded from mmap's arguments (also used directly by the
/// loader).
#[derive(Clone, Debug)]
pub struct MapRequest {
    pub addr: u64,
    /// Length in bytes; rounded up to pages.
    pub len: u64,
    pub placement: Placement,
    pub perms: Perms,
    pub max_perms: Perms,
    pub shared: bool,
    pub growsdown: bool,
    pub backing: Backing,
    /// MAP_POPULATE: realise and map every page now.
    pub populate: bool,
    /// MAP_32BIT: place in [1 GiB, 2 GiB) when not fixed.
    pub below_2g: bool,
    pub name: Option<Arc<str>>,
    /// MAP_LOCKED: lock (and populate) the mapping.
    pub locked: bool,
}

impl MapRequest {
    /// A private anonymous mapping request with `perms`, placed by `placement`.
    pub fn anonymous(addr: u64, len: u64, perms: Perms, placement: Placement) -> MapRequest {
        MapRequest {
            addr,
            len,
            placement,
            perms,
            max_perms: Perms::RWX,
            shared: false,
            growsdown: false,
            backing: Backing::Anonymous,
            populate: false,
            below_2g: false,
            name: None,
            locked: false,
        }
    }
}

/// What a file mmap maps: a file read into private pages, or the shared-memory object
/// that holds a tmpfs file's pages (with the file offset of the mapping's start).
enum FileMapping {
    Source(Arc<dyn FileSource>, u64),
    Object(Arc<SharedMemory>, u64),
}

/// MAP_* flags Linux accepts with MAP_SHARED_VALIDATE (LEGACY_MAP_MASK + NOREPLACE).
const VALIDATED_FLAGS: u32 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_32BIT
    | MAP_FIXED_NOREPLACE;

impl MemoryManager {
    /// mmap(2). `file` is the open file and offset for a file mapping (ignored with
    /// MAP_ANONYMOUS). Returns the mapping's address.
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(Arc<dyn FileSource>, u64)>,
    ) -> Result<u64, Errno> {
        self.mmap_limited(addr, len, prot, flags, file, Perms::RWX)
    }

    /// mmap(2) with the permissions the mapping may ever have (`max_perms`: a file opened
    /// read-only can never be mapped shared and writable, not even by a later mprotect).
    /// A shared mapping of a file that can never be written is served like a private one:
    /// its pages are the file's contents, read on first touch. (It does not see later
    /// writes to the file by others; that needs a page cache.)
    pub fn mmap_limited(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(Arc<dyn FileSource>, u64)>,
        max_perms: Perms,
    ) -> Result<u64, Errno> {
        self.mmap_file(addr, len, prot, flags, file.map(|(s, o)| FileMapping::Source(s, o)), max_perms)
    }

    /// mmap(2) of a file whose pages live in the shared-memory object `obj` (a tmpfs
    /// file; `offset` is the file offset). MAP_SHARED maps the object's own pages, so writes
    /// through the mapping are the file's contents and every process mapping it sees them;
    /// MAP_PRIVATE maps them copy-on-write. Pages at or beyond the object's size (the file
    /// size rounded up) raise SIGBUS. Flags and errors as [`Self::mmap_limited`]; EINVAL
    /// if `obj` lives in another memory file than this address space's.
    #[allow(clippy::too_many_arguments)]
    pub fn mmap_object(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        obj: Arc<SharedMemory>,
        offset: u64,
        max_perms: Perms,
    ) -> Result<u64, Errno> {
        if !Arc::ptr_eq(obj.memory_file(), &self.mf) {
            // Its pages would be offsets into another file.
            tracing::error!("mmap of a shared-memory object of another memory file refused");
            return Err(Errno::EINVAL);
        }
        self.mmap_file(addr, len, prot, flags, Some(FileMapping::Object(obj, offset)), max_perms)
    }

    fn mmap_file(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<FileMapping>,
        max_perms: Perms,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        let anonymous = flags & MAP_ANONYMOUS != 0;
        let shared = match flags & MAP_TYPE {
            MAP_PRIVATE => false,
            MAP_SHARED => true,
            MAP_SHARED_VALIDATE if !anonymous => {
                if flags & !VALIDATED_FLAGS != 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
                true
            }
            _ => return Err(Errno::EINVAL),
        };
        let growsdown = flags & MAP_GROWSDOWN != 0;
        let (backing, shared_vma) = if anonymous {
            if shared && growsdown {
                return Err(Errno::EINVAL);
            }
            (Backing::Anonymous, shared)
        } else {
            let Some(file) = file else { return Err(Errno::EBADF) };
            let offset = match &file {
                FileMapping::Source(_, o) | FileMapping::Object(_, o) => *o,
            };
            if offset % PAGE_SIZE != 0 {
                return Err(Errno::EINVAL);
            }
            if offset.checked_add(len).is_none() {
                return Err(Errno::EOVERFLOW);
            }
            match file {
                FileMapping::Source(source, offset) => {
                    if shared && max_perms.write {
                        tracing::warn!("writable file-backed MAP_SHARED mappings are not supported yet (needs a page cache)");
                        return Err(Errno::ENODEV);
                    }
                    (Backing::File { source, offset }, false)
                }
                FileMapping::Object(obj, offset) => (Backing::Shared { obj, offset }, shared),
            }
        };
        if flags & MAP_HUGETLB != 0 {
            // As on a host without reserved huge pages.
            return Err(Errno::ENOMEM);
        }
        let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
            Placement::FixedNoReplace
        } else if flags & MAP_FIXED != 0 {
            Placement::Fixed
        } else {
            Placement::Hint
        };
        self.map(MapRequest {
            addr,
            len,
            placement,
            perms: Perms::from_prot(prot),
            max_perms,
            shared: shared_vma,
            growsdown,
            backing,
            populate: flags & MAP_POPULATE != 0 && flags & MAP_NONBLOCK == 0,
            below_2g: flags & MAP_32BIT != 0,
            name: None,
            locked: flags & MAP_LOCKED != 0,
        })
    }

    /// Creates the mapping `req` describes and returns its address. A shared anonymous
    /// request gets a new [`SharedMemory`] object as its backing. A locked mapping (or any
    /// mapping after mlockall(MCL_FUTURE)) is populated, EAGAIN beyond RLIMIT_MEMLOCK.
    pub fn map(&self, req: MapRequest) -> Result<u64, Errno> {
        let len = page_up(req.len).filter(|&l| l > 0).ok_or(Errno::ENOMEM)?;
        let mut st = self.lock();
        let st = &mut *st;
        let start = match req.placement {
            Placement::Fixed | Placement::FixedNoReplace => {
                if req.addr % PAGE_SIZE != 0 {
                    return Err(Errno::EINVAL);
                }
                let end = req.addr.checked_add(len).ok_or(Errno::ENOMEM)?;
                if end > self.max_addr {
                    return Err(Errno::ENOMEM);
                }
                if req.addr < MMAP_MIN_ADDR {
                    return Err(Errno::EPERM);
                }
                if req.placement == Placement::FixedNoReplace && !st.vmas.is_free(req.addr, end) {
                    return Err(Errno::EEXIST);
                }
                req.addr
            }
            Placement::Hint => self.find_free(st, req.addr, len, req.below_2g)?,
        };
        let end = start + len;
        if let Some(offset) = req.backing.offset() {
            offset.checked_add(len).ok_or(Errno::EOVERFLOW)?;
        }
        if req.locked && st.memlock_limit == Some(0) {
            return Err(Errno::EPERM);
        }
        let locked = req.locked || st.lock_future;
        let populate = req.populate || req.locked || (st.lock_future && !st.lock_future_onfault);
        if locked {
            let replaced = super::residency::locked_in(st, start, end);
            if !self.memlock_allows(st, len, replaced) {
                return Err(Errno::EAGAIN);
            }
        }
        let backing = match req.backing {
            Backing::Anonymous if req.shared => {
                Backing::Shared { obj: SharedMemory::new(self.mf.clone(), len), offset: 0 }
            }
            b => b,
        };
        self.unmap_locked(st, start, end);
        st.vmas.insert(Vma {
            max_perms: req.max_perms,
            growsdown: req.growsdown,
            name: req.name,
            locked,
            ..Vma::new(start, end, req.perms, req.shared, backing)
        });
        if populate {
            self.populate_locked(st, start, end);
        }
        Ok(start)
    }

    /// Picks an address for a non-fixed mapping: the hint if that range is free, else the
    /// highest free range below the mmap base, else anywhere.
    pub(super) fn find_free(&self, st: &MmState, hint: u64, len: u64, below_2g: bool) -> Result<u64, Errno> {
        let hint = page_up(hint).unwrap_or(0);
        if hint >= MMAP_MIN_ADDR {
            if let Some(end) = hint.checked_add(len) {
                if end <= self.max_addr && st.vmas.is_free(hint, end) {
                    return Ok(hint);
                }
            }
        }
        let guard = STACK_GUARD_GAP;
        let found = if below_2g {
            st.vmas.find_gap_topdown(len, 0x4000_0000, 0x8000_0000, PAGE_SIZE, guard)
        } else {
            st.vmas
                .find_gap_topdown(len, MMAP_MIN_ADDR, st.mmap_base, PAGE_SIZE, guard)
                .or_else(|| st.vmas.find_gap_topdown(len, MMAP_MIN_ADDR, self.max_addr, PAGE_SIZE, guard))
        };
        found.ok_or(Errno::ENOMEM)
    }

    /// Removes every VMA part in `[start, end)` and releases its pages.
    pub(super) fn unmap_locked(&self, st: &mut MmState, start: u64, end: u64) {
        for v in st.vmas.remove_range(start, end) {
            self.release_pages(st, v.start, v.end);
        }
    }

    /// munmap(2).
    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if addr % PAGE_SIZE != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).filter(|&e| e <= self.max_addr).ok_or(Errno::EINVAL)?;
        let mut st = self.lock();
        self.unmap_locked(&mut st, addr, end);
        Ok(())
    }

    /// mprotect(2).
    pub fn mprotect(&self, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let known = PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP;
        if prot & !known != 0 || prot & PROT_GROWSUP != 0 {
            // x86 has no growsup VMAs, so PROT_GROWSUP never applies.
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        let perms = Perms::from_prot(prot);
        let mut st = self.lock();
        let st = &mut *st;
        let mut start = addr;
        if prot & PROT_GROWSDOWN != 0 {
            // Extends the change down to the start of the growsdown VMA.
            match st.vmas.find(addr) {
                Some(v) if v.growsdown => start = v.start,
                _ => return Err(Errno::EINVAL),
            }
        }
        if !st.vmas.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        let mut reduces = false;
        for v in st.vmas.overlapping(start, end) {
            if !v.max_perms.contains(perms) {
                return Err(Errno::EACCES);
            }
            reduces |= !perms.contains(v.perms);
        }
        st.vmas.update_range(start, end, |v| v.perms = perms);
        // Pages mapped with more permissions than they now have must be unmapped; they
        // refault with the new ones. Added permissions show up on the next (spurious) fault.
        if reduces && st.pmas.any_in(start, end) {
            if let Err(e) = self.as_.unmap(start, end - start) {
                tracing::error!(start, end, error = %e, "mprotect: unmapping from the address space failed");
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }

    /// madvise(MADV_DONTNEED/MADV_FREE/MADV_REMOVE): throws away this address space's
    /// pages of `[addr, addr+len)`. Private pages are released (copy-on-write pages shared
    /// with another address space only lose this one's reference), so anonymous memory
    /// reads back as zeros and private file mappings as the file's contents; shared pages
    /// keep their contents in their shared-memory object (Linux's DONTNEED on shmem).
    /// EINVAL for an unaligned `addr`, ENOMEM if part of the range is unmapped (the mapped
    /// parts are still discarded, as in Linux).
    pub fn discard(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).filter(|&e| e <= self.max_addr).ok_or(Errno::ENOMEM)?;
        let mut st = self.lock();
        let st = &mut *st;
        let pieces: Vec<(u64, u64)> =
            st.vmas.overlapping(addr, end).map(|v| (v.start.max(addr), v.end.min(end))).collect();
        for (s, e) in pieces {
            self.release_pages(st, s, e);
        }
        if !st.vmas.covers(addr, end) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// brk(2): moves the program break to `addr` if possible and returns the break.
    pub fn brk(&self, addr: u64) -> u64 {
        let mut st = self.lock();
        let st = &mut *st;
        let old = st.brk;
        if addr < st.brk_start || addr > self.max_addr {
            return old;
        }
        let (Some(new_end), Some(old_end)) = (page_up(addr), page_up(old)) else { return old };
        if new_end == old_end {
            st.brk = addr;
            return addr;
        }
        if new_end < old_end {
            self.unmap_locked(st, new_end, old_end);
            st.brk = addr;
            return addr;
        }
        // Growing: the new range plus a guard page above it must be free.
        let guard_end = new_end.saturating_add(PAGE_SIZE).min(self.max_addr);
        if new_end > self.max_addr || !st.vmas.is_free(old_end, guard_end) {
            return old;
        }
        let locked = st.lock_future;
        if locked && !self.memlock_allows(st, new_end - old_end, 0) {
            return old;
        }
        st.vmas.insert(Vma {
            name: Some(Arc::from("[heap]")),
            locked,
            ..Vma::new(old_end, new_end, Perms::RW, false, Backing::Anonymous)
        });
        if locked && !st.lock_future_onfault {
            self.populate_locked(st, old_end, new_end);
        }
        st.brk = addr;
        addr
    }

    /// Sets the start of the heap (and the break) to `addr` rounded up to a page; called
    /// by the loader.
    pub fn set_brk_base(&self, addr: u64) {
        let mut st = self.lock();
        let base = page_up(addr).unwrap_or(addr);
        st.brk_start = base;
        st.brk = base;
    }

    /// The start of the heap.
    pub fn brk_base(&self) -> u64 {
        self.lock().brk_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::testutil::{new_mm, AsCall, MemFile, MAX_ADDR};
    use crate::mm::VmaInfo;
    use rvisor_platform::AccessType;

    const RW: u32 = PROT_READ | PROT_WRITE;
    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

    fn layout(v: &[VmaInfo]) -> Vec<(u64, u64, Perms)> {
        v.iter().map(|v| (v.start, v.end, v.perms)).collect()
    }

    #[test]
    fn mmap_places_top_down_below_the_mmap_base() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, 10, RW, ANON, None).unwrap();
        let b = mm.mmap(0, 3 * PAGE_SIZE, RW, ANON, None).unwrap();
        assert_eq!(a % PAGE_SIZE, 0);
        assert!(a + PAGE_SIZE <= mm.mmap_base());
        assert_eq!(b + 3 * PAGE_SIZE, a, "second mapping goes right below the first");
        assert!(as_.take().is_empty(), "nothing is mapped before it is touched");
        assert_eq!(mm.realised_bytes(), 0);
    }

    #[test]
    fn mmap_rejects_bad_arguments_like_linux() {
        let (mm, _, _) = new_mm();
        assert_eq!(mm.mmap(0, 0, RW, ANON, None), Err(Errno::EINVAL));
        assert_eq!(mm.mmap(0, 4096, RW, MAP_ANONYMOUS, None), Err(Errno::EINVAL));
        assert_eq!(mm.mmap(0, 4096, RW, MAP_ANONYMOUS | 0x0f, None), Err(Errno::EINVAL));
        assert_eq!(mm.mmap(0, u64::MAX - 10, RW, ANON, None), Err(Errno::ENOMEM));
        assert_eq!(mm.mmap(0x10001, 4096, RW, ANON | MAP_FIXED, None), Err(Errno::EINVAL));
        assert_eq!(mm.mmap(0x1000, 4096, RW, ANON | MAP_FIXED, None), Err(Errno::EPERM));
        assert_eq!(mm.mmap(MAX_ADDR - 4096, 8192, RW, ANON | MAP_FIXED, None), Err(Errno::ENOMEM));
        assert_eq!(mm.mmap(0, 4096, RW, MAP_PRIVATE, None), Err(Errno::EBADF));
        let f: Arc<dyn FileSource> = Arc::new(MemFile(vec![1; 100]));
        assert_eq!(mm.mmap(0, 4096, PROT_READ, MAP_PRIVATE, Some((f.clone(), 100))), Err(Errno::EINVAL));
        assert_eq!(mm.mmap(0, 4096, PROT_READ, MAP_SHARED, Some((f.clone(), 0))), Err(Errno::ENODEV));
        assert_eq!(
            mm.mmap(0, 8192, PROT_READ, MAP_PRIVATE, Some((f.clone(), !4095u64))),
            Err(Errno::EOVERFLOW)
        );
        assert_eq!(mm.mmap(0, 4096, RW, MAP_SHARED_VALIDATE | 0x0800_0000, Some((f, 0))), Err(Errno::EOPNOTSUPP));
        assert_eq!(mm.mmap(0, 4096, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, None), Err(Errno::EINVAL));
        assert!(mm.vmas_snapshot().is_empty());
    }

    #[test]
    fn mmap_uses_a_free_hint_and_honours_fixed_noreplace() {
        let (mm, _, _) = new_mm();
        let hint = 0x2000_0000;
        assert_eq!(mm.mmap(hint + 1, 4096, RW, ANON, None), Ok(hint + PAGE_SIZE));
        assert_eq!(mm.mmap(hint, 4096, RW, ANON | MAP_FIXED_NOREPLACE, None), Ok(hint));
        assert_eq!(mm.mmap(hint, 8192, RW, ANON | MAP_FIXED_NOREPLACE, None), Err(Errno::EEXIST));
        let other = mm.mmap(hint, 4096, RW, ANON, None).unwrap();
        assert_ne!(other, hint, "an occupied hint is not used");
        assert_eq!(mm.mmap(0x7000_0000, 4096, RW, ANON | MAP_32BIT, None), Ok(0x7000_0000));
        let low = mm.mmap(0, 4096, RW, ANON | MAP_32BIT, None).unwrap();
        assert!((0x4000_0000..0x8000_0000).contains(&low));
        let sh = mm.mmap(0, 4096, RW, MAP_SHARED | MAP_ANONYMOUS, None).unwrap();
        assert!(mm.vmas_snapshot().iter().any(|v| v.start == sh && v.shared));
    }

    #[test]
    fn mmap_fails_with_enomem_when_nothing_fits() {
        let mf = crate::mm::MemoryFile::with_window(1 << 20).unwrap();
        let as_ = Arc::new(crate::mm::testutil::MockAddressSpace::default());
        let mm = MemoryManager::new(mf, as_, 0x100_0000); // 16 MiB address space
        assert_eq!(mm.mmap(0, 0x200_0000, RW, ANON, None), Err(Errno::ENOMEM));
        let a = mm.mmap(0, 0x80_0000, RW, ANON, None).unwrap();
        assert!(a >= MMAP_MIN_ADDR && a + 0x80_0000 <= 0x100_0000);
    }

    #[test]
    fn munmap_splits_a_vma_and_unmaps_only_realised_pages() {
        let (mm, as_, mf) = new_mm();
        let a = mm.mmap(0, 4 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.copy_out(a + PAGE_SIZE, b"x").unwrap();
        let used = mf.allocated();
        mm.munmap(a + PAGE_SIZE, 2 * PAGE_SIZE).unwrap();
        assert_eq!(
            layout(&mm.vmas_snapshot()),
            [(a, a + PAGE_SIZE, Perms::RW), (a + 3 * PAGE_SIZE, a + 4 * PAGE_SIZE, Perms::RW)]
        );
        assert_eq!(as_.take(), [AsCall::Unmap { addr: a + PAGE_SIZE, len: 2 * PAGE_SIZE }]);
        assert!(mf.allocated() < used);
        // Unmapping a hole is fine; bad arguments are EINVAL.
        mm.munmap(a + PAGE_SIZE, PAGE_SIZE).unwrap();
        assert!(as_.take().is_empty());
        assert_eq!(mm.munmap(a + 1, PAGE_SIZE), Err(Errno::EINVAL));
        assert_eq!(mm.munmap(a, 0), Err(Errno::EINVAL));
        assert_eq!(mm.munmap(MAX_ADDR - PAGE_SIZE, 2 * PAGE_SIZE), Err(Errno::EINVAL));
        assert_eq!(mm.munmap(a, u64::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn mprotect_splits_and_merges_vmas() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 4 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.mprotect(a + PAGE_SIZE, PAGE_SIZE + 1, PROT_READ).unwrap();
        assert_eq!(
            layout(&mm.vmas_snapshot()),
            [
                (a, a + PAGE_SIZE, Perms::RW),
                (a + PAGE_SIZE, a + 3 * PAGE_SIZE, Perms::R),
                (a + 3 * PAGE_SIZE, a + 4 * PAGE_SIZE, Perms::RW)
            ]
        );
        mm.mprotect(a + PAGE_SIZE, 2 * PAGE_SIZE, RW).unwrap();
        assert_eq!(layout(&mm.vmas_snapshot()), [(a, a + 4 * PAGE_SIZE, Perms::RW)]);
        assert_eq!(mm.mprotect(a + 1, PAGE_SIZE, PROT_READ), Err(Errno::EINVAL));
        assert_eq!(mm.mprotect(a, PAGE_SIZE, 0x80), Err(Errno::EINVAL));
        assert_eq!(mm.mprotect(a, 5 * PAGE_SIZE, PROT_READ), Err(Errno::ENOMEM));
        assert_eq!(mm.mprotect(a, 0, PROT_READ), Ok(()));
        assert_eq!(mm.mprotect(a, PAGE_SIZE, PROT_READ | PROT_GROWSDOWN), Err(Errno::EINVAL));
        assert_eq!(layout(&mm.vmas_snapshot()), [(a, a + 4 * PAGE_SIZE, Perms::RW)], "failed calls change nothing");
    }

    #[test]
    fn mprotect_growsdown_extends_to_the_vma_start() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 4 * PAGE_SIZE, RW, ANON | MAP_GROWSDOWN, None).unwrap();
        mm.mprotect(a + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN).unwrap();
        assert_eq!(
            layout(&mm.vmas_snapshot()),
            [(a, a + 3 * PAGE_SIZE, Perms::RWX), (a + 3 * PAGE_SIZE, a + 4 * PAGE_SIZE, Perms::RW)]
        );
    }

    #[test]
    fn mprotect_reducing_permissions_unmaps_mapped_pages_so_they_refault() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, 2 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.handle_fault(a, AccessType::Write).unwrap();
        as_.take();
        mm.mprotect(a, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC).unwrap();
        assert!(as_.take().is_empty(), "adding permissions needs no unmap");
        mm.mprotect(a, PAGE_SIZE, PROT_READ).unwrap();
        assert_eq!(as_.take(), [AsCall::Unmap { addr: a, len: PAGE_SIZE }]);
        let e = mm.handle_fault(a, AccessType::Write).unwrap_err();
        assert_eq!(e.si_code(), rvisor_syscalls::flags::signal::SEGV_ACCERR);
        mm.handle_fault(a, AccessType::Read).unwrap();
        match as_.take().as_slice() {
            [AsCall::Map { addr, len, perms, .. }] => assert_eq!((*addr, *len, *perms), (a, PAGE_SIZE, Perms::R)),
            other => panic!("unexpected calls {other:?}"),
        }
        let mut b = [1u8; 4];
        mm.copy_in(a, &mut b).unwrap();
        assert_eq!(mm.copy_out(a, &b), Err(Errno::EFAULT));
    }

    #[test]
    fn map_fixed_over_realised_pages_releases_them() {
        let (mm, as_, mf) = new_mm();
        let a = mm.mmap(0, 8 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.copy_out(a, &[7u8; 8 * 4096]).unwrap();
        let before = mf.allocated();
        assert_eq!(mm.realised_bytes(), 8 * PAGE_SIZE);
        as_.take();
        let b = mm.mmap(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ, ANON | MAP_FIXED, None).unwrap();
        assert_eq!(b, a + 2 * PAGE_SIZE);
        assert_eq!(as_.take(), [AsCall::Unmap { addr: b, len: 2 * PAGE_SIZE }]);
        assert_eq!(mf.allocated(), before - 2 * PAGE_SIZE);
        assert_eq!(mm.realised_bytes(), 6 * PAGE_SIZE);
        let mut buf = [9u8; 8];
        mm.copy_in(b, &mut buf).unwrap();
        assert_eq!(buf, [0; 8], "the new mapping is fresh zero memory");
        mm.copy_in(a + PAGE_SIZE, &mut buf).unwrap();
        assert_eq!(buf, [7; 8], "pages outside the replaced range are kept");
        assert_eq!(mm.vmas_snapshot().len(), 3);
    }

    #[test]
    fn brk_grows_shrinks_and_ignores_invalid_requests() {
        let (mm, _, mf) = new_mm();
        let base = 0x60_0000;
        mm.set_brk_base(base - 100);
        assert_eq!(mm.brk(0), base);
        assert_eq!(mm.brk(base - 1), base, "below the base is invalid");
        assert_eq!(mm.brk(base + 10), base + 10);
        let v = mm.vmas_snapshot();
        assert_eq!(layout(&v), [(base, base + PAGE_SIZE, Perms::RW)]);
        assert_eq!(v[0].name.as_deref(), Some("[heap]"));
        assert_eq!(mm.brk(base + 5 * PAGE_SIZE), base + 5 * PAGE_SIZE);
        assert_eq!(layout(&mm.vmas_snapshot()), [(base, base + 5 * PAGE_SIZE, Perms::RW)]);
        mm.copy_out(base + 4 * PAGE_SIZE, b"heap").unwrap();
        let used = mf.allocated();
        assert_eq!(mm.brk(base + PAGE_SIZE + 1), base + PAGE_SIZE + 1);
        assert_eq!(layout(&mm.vmas_snapshot()), [(base, base + 2 * PAGE_SIZE, Perms::RW)]);
        assert!(mf.allocated() < used, "shrinking releases pages");
        assert_eq!(mm.brk(0), base + PAGE_SIZE + 1);
        assert_eq!(mm.brk(u64::MAX), base + PAGE_SIZE + 1);
        // Growing into another mapping (or its guard page) fails and keeps the break.
        mm.mmap(base + 8 * PAGE_SIZE, PAGE_SIZE, RW, ANON | MAP_FIXED, None).unwrap();
        assert_eq!(mm.brk(base + 7 * PAGE_SIZE + 1), base + PAGE_SIZE + 1);
        assert_eq!(mm.brk(base + 7 * PAGE_SIZE), base + 7 * PAGE_SIZE);
        assert_eq!(mm.brk(base), base);
        assert_eq!(layout(&mm.vmas_snapshot()), [(base + 8 * PAGE_SIZE, base + 9 * PAGE_SIZE, Perms::RW)]);
    }

    #[test]
    fn discard_drops_private_pages_and_keeps_shared_ones() {
        let (mm, as_, mf) = new_mm();
        let p = mm.mmap(0, 4 * PAGE_SIZE, RW, ANON, None).unwrap();
        let s = mm.mmap(0, PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS, None).unwrap();
        let f: Arc<dyn FileSource> = Arc::new(MemFile(vec![3u8; 4096]));
        let fm = mm.mmap(0, PAGE_SIZE, RW, MAP_PRIVATE, Some((f, 0))).unwrap();
        for a in [p + PAGE_SIZE, s, fm] {
            mm.copy_out(a, b"data").unwrap();
        }
        let used = mf.allocated();
        as_.take();
        mm.discard(p, 4 * PAGE_SIZE).unwrap();
        mm.discard(s, PAGE_SIZE).unwrap();
        mm.discard(fm, 1).unwrap();
        assert_eq!(mf.allocated(), used - 2 * PAGE_SIZE);
        assert_eq!(as_.take().len(), 3, "every discarded range is unmapped from the address space");
        let mut b = [0u8; 4];
        mm.copy_in(p + PAGE_SIZE, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
        mm.copy_in(s, &mut b).unwrap();
        assert_eq!(&b, b"data");
        mm.copy_in(fm, &mut b).unwrap();
        assert_eq!(b, [3; 4], "private file pages revert to the file");
        assert_eq!(mm.discard(p + 1, 1), Err(Errno::EINVAL));
        assert_eq!(mm.discard(p, 64 * PAGE_SIZE), Err(Errno::ENOMEM));
        assert_eq!(mm.discard(p, 0), Ok(()));
    }

    #[test]
    fn dropping_the_memory_manager_unmaps_and_releases_its_pages() {
        let (mm, as_, mf) = new_mm();
        let a = mm.mmap(0, 8 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.copy_out(a, &[1u8; 3 * 4096]).unwrap();
        assert_eq!(mf.allocated(), 3 * PAGE_SIZE);
        as_.take();
        drop(mm);
        assert_eq!(as_.take(), [AsCall::Unmap { addr: a, len: 8 * PAGE_SIZE }], "the address space is still shared");
        assert_eq!(mf.allocated(), 0);

        let mf2 = crate::mm::MemoryFile::with_window(1 << 30).unwrap();
        let mm = MemoryManager::new(mf2.clone(), Arc::new(crate::mm::testutil::MockAddressSpace::default()), MAX_ADDR);
        let a = mm.mmap(0, PAGE_SIZE, RW, ANON, None).unwrap();
        mm.copy_out(a, b"x").unwrap();
        drop(mm);
        assert_eq!(mf2.allocated(), 0, "sole owner: the address space goes away, then the pages");
    }

    #[test]
    fn map_populate_realises_and_maps_everything() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, 40 * PAGE_SIZE, RW, ANON | MAP_POPULATE, None).unwrap();
        assert_eq!(mm.realised_bytes(), 40 * PAGE_SIZE);
        let mapped: u64 = as_
            .take()
            .iter()
            .map(|c| match c {
                AsCall::Map { addr, len, .. } => {
                    assert!(*addr >= a && addr + len <= a + 40 * PAGE_SIZE);
                    *len
                }
                AsCall::Unmap { .. } => panic!("unexpected unmap"),
            })
            .sum();
        assert_eq!(mapped, 40 * PAGE_SIZE);
    }
}
