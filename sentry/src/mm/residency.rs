//! Page residency: mincore, msync and the mlock family.
//!
//! Guest memory lives in the sentry's memory file, never in swap, so locking has nothing
//! to pin: it marks VMAs locked (for VmLck and RLIMIT_MEMLOCK accounting) and populates
//! them like Linux. msync has nothing to write back for anonymous and private memory.

use rvisor_syscalls::flags::mman::{MS_ASYNC, MS_INVALIDATE, MS_SYNC};
pub use rvisor_syscalls::flags::mman::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT};
use rvisor_syscalls::Errno;

use super::pma::Lookup;
use super::vma::Backing;
use super::{page_down, page_up, MemoryManager, MmState, PAGE_SIZE};

// mlockall(2)/mlock2(2) flags. TODO(syscalls): move to `rvisor_syscalls::flags::mman`,
// where the guest ABI lives; re-exported from `mm` until then.

impl MemoryManager {
    /// mincore(2): one byte per page of `[addr, addr+len)`, 1 where the page is resident
    /// (realised in this address space, or in the shared-memory object behind it).
    /// EINVAL for an unaligned `addr`, ENOMEM if part of the range is not mapped.
    pub fn mincore(&self, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).filter(|&e| e <= self.max_addr).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let st = self.lock();
        if !st.vmas.covers(addr, end) {
            return Err(Errno::ENOMEM);
        }
        let pages = usize::try_from(len / PAGE_SIZE).map_err(|_| Errno::ENOMEM)?;
        let mut out = vec![0u8; pages];
        let index = |a: u64| ((a - addr) / PAGE_SIZE) as usize;
        for r in st.pmas.runs_in(addr, end) {
            out[index(r.start)..index(page_up(r.end).unwrap_or(end).min(end))].fill(1);
        }
        for v in st.vmas.overlapping(addr, end) {
            let Backing::Shared { obj, offset } = &v.backing else { continue };
            let (s, e) = (v.start.max(addr), v.end.min(end));
            for page in (s..e).step_by(PAGE_SIZE as usize) {
                let off = offset.saturating_add(page - v.start);
                if out[index(page)] == 0 && obj.is_realised(off) {
                    out[index(page)] = 1;
                }
            }
        }
        Ok(out)
    }

    /// msync(2): checks the arguments and the mapping like Linux; there is nothing to
    /// write back (no file-backed shared mappings yet). EINVAL for bad flags or an
    /// unaligned `addr`, ENOMEM for unmapped parts (at once with MS_SYNC), EBUSY for
    /// MS_INVALIDATE on locked memory.
    pub fn msync(&self, addr: u64, len: u64, flags: u32) -> Result<(), Errno> {
        if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
            || addr % PAGE_SIZE != 0
            || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
        {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        let st = self.lock();
        let mut cur = addr;
        let mut unmapped = false;
        loop {
            let Some(v) = st.vmas.find(cur).or_else(|| st.vmas.next_above(cur)) else { return Err(Errno::ENOMEM) };
            if cur < v.start {
                if flags == MS_SYNC || v.start >= end {
                    return Err(Errno::ENOMEM);
                }
                unmapped = true;
            }
            if flags & MS_INVALIDATE != 0 && v.locked {
                return Err(Errno::EBUSY);
            }
            cur = v.end;
            if cur >= end {
                return if unmapped { Err(Errno::ENOMEM) } else { Ok(()) };
            }
        }
    }

    /// mlock(2) (`flags` 0) and mlock2(2): locks the pages of `[addr, addr+len)` (`addr`
    /// rounded down to a page) and populates them unless MLOCK_ONFAULT. EINVAL for unknown
    /// flags, EPERM when RLIMIT_MEMLOCK is 0, ENOMEM beyond it or if part of the range is
    /// not mapped (then nothing changes).
    pub fn mlock(&self, addr: u64, len: u64, flags: u32) -> Result<(), Errno> {
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let (start, end) = lock_range(addr, len)?;
        let mut st = self.lock();
        let st = &mut *st;
        if st.memlock_limit == Some(0) {
            return Err(Errno::EPERM);
        }
        if start == end {
            return Ok(());
        }
        if !st.vmas.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        let already = locked_in(st, start, end);
        if !self.memlock_allows(st, end - start, already) {
            return Err(Errno::ENOMEM);
        }
        st.vmas.update_range(start, end, |v| v.locked = true);
        if flags & MLOCK_ONFAULT == 0 {
            self.populate_locked(st, start, end);
        }
        Ok(())
    }

    /// munlock(2). ENOMEM if part of the range is not mapped (then nothing changes).
    pub fn munlock(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let (start, end) = lock_range(addr, len)?;
        let mut st = self.lock();
        if start == end {
            return Ok(());
        }
        if !st.vmas.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        st.vmas.update_range(start, end, |v| v.locked = false);
        Ok(())
    }

    /// mlockall(2): MCL_CURRENT locks (and, without MCL_ONFAULT, populates) every
    /// mapping; MCL_FUTURE locks mappings created later. EINVAL for bad flags, EPERM when
    /// RLIMIT_MEMLOCK is 0, ENOMEM when MCL_CURRENT would exceed it.
    pub fn mlockall(&self, flags: u32) -> Result<(), Errno> {
        if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        let st = &mut *st;
        if st.memlock_limit == Some(0) {
            return Err(Errno::EPERM);
        }
        if flags & MCL_CURRENT != 0 {
            let total: u64 = st.vmas.iter().map(|v| v.len()).sum();
            if st.memlock_limit.is_some_and(|l| total > l) {
                return Err(Errno::ENOMEM);
            }
        }
        st.lock_future = flags & MCL_FUTURE != 0;
        st.lock_future_onfault = st.lock_future && flags & MCL_ONFAULT != 0;
        if flags & MCL_CURRENT != 0 {
            st.vmas.update_range(0, self.max_addr, |v| v.locked = true);
            if flags & MCL_ONFAULT == 0 {
                let ranges: Vec<(u64, u64)> = st.vmas.iter().map(|v| (v.start, v.end)).collect();
                for (s, e) in ranges {
                    self.populate_locked(st, s, e);
                }
            }
        }
        Ok(())
    }

    /// munlockall(2).
    pub fn munlockall(&self) {
        let mut st = self.lock();
        st.lock_future = false;
        st.lock_future_onfault = false;
        st.vmas.update_range(0, self.max_addr, |v| v.locked = false);
    }

    /// Bytes of locked mappings (VmLck).
    pub fn locked_bytes(&self) -> u64 {
        locked_in(&self.lock(), 0, u64::MAX)
    }

    /// Sets RLIMIT_MEMLOCK; None for no limit (a caller with CAP_IPC_LOCK).
    pub fn set_memlock_limit(&self, limit: Option<u64>) {
        self.lock().memlock_limit = limit;
    }

    /// Whether locking `add` more bytes, of which `already` are locked now, stays within
    /// RLIMIT_MEMLOCK.
    pub(super) fn memlock_allows(&self, st: &MmState, add: u64, already: u64) -> bool {
        match st.memlock_limit {
            None => true,
            Some(limit) => (locked_in(st, 0, u64::MAX) - already).saturating_add(add) <= limit,
        }
    }

    /// Whether the page at `addr` is realised in this address space (tests, /proc).
    pub fn is_realised(&self, addr: u64) -> bool {
        matches!(self.lock().pmas.lookup(addr), Lookup::Realised(_))
    }
}

/// Bytes of locked VMAs inside `[start, end)`.
pub(super) fn locked_in(st: &MmState, start: u64, end: u64) -> u64 {
    st.vmas.overlapping(start, end).filter(|v| v.locked).map(|v| v.end.min(end) - v.start.max(start)).sum()
}

/// The page range mlock/munlock act on: `addr` rounded down, the length rounded up to
/// cover it. EINVAL on overflow; ENOMEM is reported later for unmapped parts.
fn lock_range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    let start = page_down(addr);
    let len = len.checked_add(addr - start).and_then(page_up).ok_or(Errno::EINVAL)?;
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use rvisor_syscalls::flags::mman::*;

    use super::*;
    use crate::mm::testutil::new_mm;

    const RW: u32 = PROT_READ | PROT_WRITE;
    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

    #[test]
    fn mincore_reports_realised_pages_and_enomem_for_holes() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 4 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.copy_out(a + PAGE_SIZE, b"x").unwrap();
        mm.copy_out(a + 3 * PAGE_SIZE + 10, b"y").unwrap();
        assert_eq!(mm.mincore(a, 4 * PAGE_SIZE).unwrap(), [0, 1, 0, 1]);
        assert_eq!(mm.mincore(a + PAGE_SIZE, 1).unwrap(), [1]);
        assert_eq!(mm.mincore(a, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(mm.mincore(a + 1, 1), Err(Errno::EINVAL));
        assert_eq!(mm.mincore(a, 5 * PAGE_SIZE), Err(Errno::ENOMEM));
        assert_eq!(mm.mincore(a, u64::MAX), Err(Errno::ENOMEM));
        let s = mm.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS, None).unwrap();
        mm.copy_out(s, b"z").unwrap();
        mm.discard(s, 2 * PAGE_SIZE).unwrap();
        assert_eq!(mm.mincore(s, 2 * PAGE_SIZE).unwrap(), [1, 0], "the shared object keeps the page");
    }

    #[test]
    fn msync_validates_like_linux() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0x4000_0000, 2 * PAGE_SIZE, RW, ANON | MAP_FIXED, None).unwrap();
        mm.mmap(a + 3 * PAGE_SIZE, PAGE_SIZE, RW, ANON | MAP_FIXED, None).unwrap();
        assert_eq!(mm.msync(a, 2 * PAGE_SIZE, MS_SYNC), Ok(()));
        assert_eq!(mm.msync(a, 1, MS_ASYNC | MS_INVALIDATE), Ok(()));
        assert_eq!(mm.msync(a, 0, MS_SYNC), Ok(()));
        assert_eq!(mm.msync(a + 1, PAGE_SIZE, MS_SYNC), Err(Errno::EINVAL));
        assert_eq!(mm.msync(a, PAGE_SIZE, MS_SYNC | MS_ASYNC), Err(Errno::EINVAL));
        assert_eq!(mm.msync(a, PAGE_SIZE, 8), Err(Errno::EINVAL));
        assert_eq!(mm.msync(a, 4 * PAGE_SIZE, MS_SYNC), Err(Errno::ENOMEM));
        assert_eq!(mm.msync(a, 4 * PAGE_SIZE, MS_ASYNC), Err(Errno::ENOMEM));
        assert_eq!(mm.msync(a + 2 * PAGE_SIZE, PAGE_SIZE, MS_ASYNC), Err(Errno::ENOMEM));
        mm.mlock(a, PAGE_SIZE, 0).unwrap();
        assert_eq!(mm.msync(a, PAGE_SIZE, MS_INVALIDATE), Err(Errno::EBUSY));
    }

    #[test]
    fn mlock_marks_and_populates_and_honours_the_limit() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 8 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.mlock(a + 10, PAGE_SIZE, 0).unwrap();
        assert_eq!(mm.locked_bytes(), 2 * PAGE_SIZE, "the range is widened to whole pages");
        assert_eq!(mm.realised_bytes(), 2 * PAGE_SIZE, "mlock populates");
        mm.mlock(a + 4 * PAGE_SIZE, PAGE_SIZE, MLOCK_ONFAULT).unwrap();
        assert_eq!((mm.locked_bytes(), mm.realised_bytes()), (3 * PAGE_SIZE, 2 * PAGE_SIZE));
        assert_eq!(mm.mlock(a, PAGE_SIZE, 2), Err(Errno::EINVAL));
        assert_eq!(mm.mlock(a, 9 * PAGE_SIZE, 0), Err(Errno::ENOMEM));
        assert_eq!(mm.locked_bytes(), 3 * PAGE_SIZE, "a failed call changes nothing");
        mm.munlock(a, PAGE_SIZE).unwrap();
        assert_eq!(mm.locked_bytes(), 2 * PAGE_SIZE);
        assert_eq!(mm.munlock(a, 9 * PAGE_SIZE), Err(Errno::ENOMEM));
        mm.set_memlock_limit(Some(4 * PAGE_SIZE));
        mm.mlock(a, 3 * PAGE_SIZE, MLOCK_ONFAULT).unwrap();
        assert_eq!(mm.locked_bytes(), 4 * PAGE_SIZE, "pages locked already count once");
        assert_eq!(mm.mlock(a, 4 * PAGE_SIZE, MLOCK_ONFAULT), Err(Errno::ENOMEM));
        assert_eq!(mm.mmap(0, PAGE_SIZE, RW, ANON | MAP_LOCKED, None), Err(Errno::EAGAIN));
        mm.set_memlock_limit(Some(0));
        assert_eq!(mm.mlock(a, PAGE_SIZE, 0), Err(Errno::EPERM));
        assert_eq!(mm.mmap(0, PAGE_SIZE, RW, ANON | MAP_LOCKED, None), Err(Errno::EPERM));
    }

    #[test]
    fn mlockall_locks_current_and_future_mappings() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 2 * PAGE_SIZE, RW, ANON, None).unwrap();
        assert_eq!(mm.mlockall(0), Err(Errno::EINVAL));
        assert_eq!(mm.mlockall(MCL_ONFAULT), Err(Errno::EINVAL));
        assert_eq!(mm.mlockall(8), Err(Errno::EINVAL));
        mm.mlockall(MCL_CURRENT | MCL_FUTURE).unwrap();
        assert_eq!(mm.locked_bytes(), 2 * PAGE_SIZE);
        assert!(mm.is_realised(a + PAGE_SIZE));
        let b = mm.mmap(0, PAGE_SIZE, RW, ANON, None).unwrap();
        assert_eq!(mm.locked_bytes(), 3 * PAGE_SIZE);
        assert!(mm.is_realised(b), "future mappings are populated");
        mm.munlockall();
        assert_eq!(mm.locked_bytes(), 0);
        mm.mmap(0, PAGE_SIZE, RW, ANON, None).unwrap();
        assert_eq!(mm.locked_bytes(), 0);
        let c = mm.mmap(0, PAGE_SIZE, RW, ANON | MAP_LOCKED, None).unwrap();
        assert_eq!(mm.locked_bytes(), PAGE_SIZE);
        assert!(mm.is_realised(c));
    }
}
