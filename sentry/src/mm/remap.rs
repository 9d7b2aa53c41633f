//! mremap(2) with Linux semantics.
//!
//! Moving a mapping moves its realised pages (their `PmaSet` runs and the references they
//! hold) to the new address; nothing is copied. The old range is unmapped from the platform
//! address space first, and the new one faults the pages back in.

use rvisor_syscalls::flags::mman::{MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};
use rvisor_syscalls::Errno;

use super::vma::Vma;
use super::{page_up, MemoryManager, MmState, MMAP_MIN_ADDR, PAGE_SIZE};

impl MemoryManager {
    /// mremap(2): resizes and/or moves the mapping at `[addr, addr+old_len)`; returns its
    /// new address.
    ///
    /// Shrinking happens in place. Growing happens in place when the space after the VMA is
    /// free and the range ends at the VMA's end, otherwise by moving with MREMAP_MAYMOVE
    /// (ENOMEM without). MREMAP_FIXED moves to `new_addr`, replacing what is there;
    /// MREMAP_DONTUNMAP (same length) moves the pages and leaves the old VMA in place,
    /// empty. `old_len` 0 duplicates a shared mapping. EINVAL for bad flags, an unaligned
    /// or overlapping range, or a zero `new_len`; EFAULT if `addr` is not mapped or the
    /// range crosses the end of its VMA; EAGAIN beyond RLIMIT_MEMLOCK for locked memory.
    pub fn mremap(&self, addr: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64) -> Result<u64, Errno> {
        if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
            || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
            || (flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len))
            || addr % PAGE_SIZE != 0
        {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.vmas.find(addr).is_none() {
            return Err(Errno::EFAULT);
        }
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
            return self.mremap_to(st, addr, old_len, new_len, flags, new_addr);
        }
        if old_len >= new_len {
            // Shrinking always works: the tail is unmapped, whatever it holds.
            let tail = self.munmap_range(addr + new_len, old_len - new_len)?;
            if let Some((s, e)) = tail {
                self.unmap_locked(st, s, e);
            }
            return Ok(addr);
        }
        let vma = self.vma_to_resize(st, addr, old_len, new_len, flags)?;
        if addr + old_len == vma.end {
            let delta = new_len - old_len;
            if let Some(new_end) = vma.end.checked_add(delta).filter(|&e| e <= self.max_addr) {
                if st.vmas.is_free(vma.end, new_end) {
                    let old_end = vma.end;
                    let locked = vma.locked;
                    st.vmas.replace(vma.start, Vma { end: new_end, ..vma });
                    if locked {
                        self.populate_locked(st, old_end, new_end);
                    }
                    return Ok(addr);
                }
            }
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        let dest = self.find_free(st, 0, new_len, false)?;
        self.move_vma(st, addr, old_len, dest, new_len, false)
    }

    /// The MREMAP_FIXED / MREMAP_DONTUNMAP path (Linux's `mremap_to`).
    fn mremap_to(
        &self,
        st: &mut MmState,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        if new_addr % PAGE_SIZE != 0 || new_len > self.max_addr || new_addr > self.max_addr - new_len {
            return Err(Errno::EINVAL);
        }
        if addr.saturating_add(old_len) > new_addr && new_addr + new_len > addr {
            return Err(Errno::EINVAL);
        }
        let fixed = flags & MREMAP_FIXED != 0;
        if fixed && new_addr < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        // Shrinking first: only the first `new_len` bytes move.
        let tail = if old_len > new_len { self.munmap_range(addr + new_len, old_len - new_len)? } else { None };
        let moved_len = old_len.min(new_len);
        self.vma_to_resize(st, addr, moved_len, new_len, flags)?;
        if fixed {
            self.unmap_locked(st, new_addr, new_addr + new_len);
        }
        if let Some((s, e)) = tail {
            self.unmap_locked(st, s, e);
        }
        let dest = if fixed { new_addr } else { self.find_free(st, new_addr, new_len, false)? };
        self.move_vma(st, addr, moved_len, dest, new_len, flags & MREMAP_DONTUNMAP != 0)
    }

    /// Checks that `[addr, addr+old_len)` can become `new_len` bytes (Linux's
    /// `vma_to_resize`) and returns its VMA.
    fn vma_to_resize(&self, st: &MmState, addr: u64, old_len: u64, new_len: u64, _flags: u32) -> Result<Vma, Errno> {
        let v = st.vmas.find(addr).ok_or(Errno::EFAULT)?;
        if old_len == 0 && !v.shared {
            // Duplicating a private mapping would create an unrelated fresh one.
            tracing::warn!("mremap: attempt to duplicate a private mapping (old_len 0) refused");
            return Err(Errno::EINVAL);
        }
        if old_len > v.end - addr {
            return Err(Errno::EFAULT);
        }
        if new_len == old_len {
            return Ok(v.clone());
        }
        if let Some(off) = v.backing.offset() {
            off.checked_add(addr - v.start).and_then(|o| o.checked_add(new_len)).ok_or(Errno::EINVAL)?;
        }
        if v.locked && !self.memlock_allows(st, new_len - old_len, 0) {
            return Err(Errno::EAGAIN);
        }
        Ok(v.clone())
    }

    /// The range munmap would remove for `[addr, addr+len)`, or EINVAL beyond the address
    /// space; None when empty.
    fn munmap_range(&self, addr: u64, len: u64) -> Result<Option<(u64, u64)>, Errno> {
        if len == 0 {
            return Ok(None);
        }
        let end = addr.checked_add(len).filter(|&e| e <= self.max_addr).ok_or(Errno::EINVAL)?;
        Ok(Some((addr, end)))
    }

    /// Moves `[addr, addr+old_len)` (inside one VMA) to a new VMA `[dest, dest+new_len)`
    /// (free), with its realised pages; with `dontunmap` the old VMA stays, without pages.
    fn move_vma(
        &self,
        st: &mut MmState,
        addr: u64,
        old_len: u64,
        dest: u64,
        new_len: u64,
        dontunmap: bool,
    ) -> Result<u64, Errno> {
        let v = st.vmas.find(addr).ok_or(Errno::EFAULT)?;
        let mut nv = v.with_start(addr).ok_or(Errno::EINVAL)?;
        nv.start = dest;
        nv.end = dest + new_len;
        if nv.name.as_deref().is_some_and(|n| n.starts_with('[')) {
            // "[heap]" and "[stack]" name places, which the moved memory leaves.
            nv.name = None;
        }
        let old_end = addr + old_len;
        let moved: Vec<_> = st.pmas.runs_in(addr, old_end).collect();
        if !moved.is_empty() {
            if let Err(e) = self.as_.unmap(addr, old_len) {
                tracing::error!(addr, old_len, error = %e, "mremap: unmapping the old range failed");
                return Err(Errno::ENOMEM);
            }
        }
        // The runs' references move with them.
        st.pmas.remove_range(addr, old_end, |_, _| {});
        for r in moved {
            st.pmas.insert(dest + (r.start - addr), dest + (r.end - addr), r.offset);
        }
        if old_len > 0 {
            if dontunmap {
                st.vmas.update_range(addr, old_end, |v| v.locked = false);
            } else {
                st.vmas.remove_range(addr, old_end);
            }
        }
        let locked = nv.locked;
        st.vmas.insert(nv);
        if locked && new_len > old_len {
            self.populate_locked(st, dest + old_len, dest + new_len);
        }
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use rvisor_platform::Perms;
    use rvisor_syscalls::flags::mman::*;

    use super::*;
    use crate::mm::testutil::{new_mm, AsCall};

    const RW: u32 = PROT_READ | PROT_WRITE;
    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
    const P: u64 = PAGE_SIZE;

    fn read(mm: &MemoryManager, addr: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        mm.copy_in(addr, &mut b).unwrap();
        b
    }

    #[test]
    fn mremap_grows_in_place_when_the_space_after_is_free() {
        let (mm, _, mf) = new_mm();
        let a = mm.mmap(0x4000_0000, 2 * P, RW, ANON | MAP_FIXED, None).unwrap();
        mm.copy_out(a + P, b"keep").unwrap();
        assert_eq!(mm.mremap(a, 2 * P, 4 * P, 0, 0), Ok(a));
        let v = mm.vmas_snapshot();
        assert_eq!((v.len(), v[0].start, v[0].end), (1, a, a + 4 * P));
        assert_eq!(read(&mm, a + P, 4), b"keep");
        mm.copy_out(a + 3 * P, b"new").unwrap();
        assert_eq!(mf.allocated(), 2 * P);
    }

    #[test]
    fn mremap_moves_realised_pages_when_it_cannot_grow_in_place() {
        let (mm, as_, mf) = new_mm();
        let a = mm.mmap(0x4000_0000, 2 * P, RW, ANON | MAP_FIXED, None).unwrap();
        mm.mmap(a + 2 * P, P, PROT_READ, ANON | MAP_FIXED, None).unwrap();
        let data: Vec<u8> = (0..2 * P as usize).map(|i| i as u8).collect();
        mm.copy_out(a, &data).unwrap();
        let used = mf.allocated();
        as_.take();
        assert_eq!(mm.mremap(a, 2 * P, 3 * P, 0, 0), Err(Errno::ENOMEM), "blocked without MAYMOVE");
        let b = mm.mremap(a, 2 * P, 3 * P, MREMAP_MAYMOVE, 0).unwrap();
        assert_ne!(b, a);
        assert_eq!(as_.take(), [AsCall::Unmap { addr: a, len: 2 * P }]);
        assert_eq!(read(&mm, b, data.len()), data);
        assert_eq!(read(&mm, b + 2 * P, 4), [0; 4]);
        assert_eq!(mf.allocated(), used, "pages are moved, not copied");
        assert_eq!(mm.copy_in(a, &mut [0u8; 1]), Err(Errno::EFAULT), "the old range is gone");
        let v = mm.vmas_snapshot();
        assert!(v.iter().any(|v| (v.start, v.end, v.perms) == (b, b + 3 * P, Perms::RW)));
    }

    #[test]
    fn mremap_shrinks_in_place_and_releases_the_tail() {
        let (mm, _, mf) = new_mm();
        let a = mm.mmap(0, 4 * P, RW, ANON, None).unwrap();
        mm.copy_out(a, &[1u8; 4 * 4096]).unwrap();
        assert_eq!(mm.mremap(a, 4 * P, P + 1, 0, 0), Ok(a));
        assert_eq!(mf.allocated(), 2 * P);
        let v = mm.vmas_snapshot();
        assert_eq!((v[0].start, v[0].end), (a, a + 2 * P));
        assert_eq!(mm.mremap(a, 2 * P, 2 * P, 0, 0), Ok(a));
    }

    #[test]
    fn mremap_fixed_replaces_the_target_and_rejects_overlap() {
        let (mm, _, mf) = new_mm();
        let a = mm.mmap(0x4000_0000, 2 * P, RW, ANON | MAP_FIXED, None).unwrap();
        let t = mm.mmap(0x5000_0000, 4 * P, RW, ANON | MAP_FIXED, None).unwrap();
        mm.copy_out(a, b"moving").unwrap();
        mm.copy_out(t, &[9u8; 4 * 4096]).unwrap();
        assert_eq!(mm.mremap(a, 2 * P, 2 * P, MREMAP_FIXED, t), Err(Errno::EINVAL), "FIXED needs MAYMOVE");
        assert_eq!(mm.mremap(a, 2 * P, 2 * P, MREMAP_FIXED | MREMAP_MAYMOVE, a + P), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(a, 2 * P, 2 * P, MREMAP_FIXED | MREMAP_MAYMOVE, t + 1), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(a, 2 * P, P, MREMAP_FIXED | MREMAP_MAYMOVE, t + P), Ok(t + P));
        assert_eq!(read(&mm, t + P, 6), b"moving");
        assert_eq!(read(&mm, t, 1), [9], "the rest of the target stays");
        assert_eq!(read(&mm, t + 2 * P, 1), [9]);
        assert_eq!(mm.copy_in(a, &mut [0u8; 1]), Err(Errno::EFAULT));
        assert_eq!(mf.allocated(), 4 * P, "the replaced target page and the shrunk tail are released");
    }

    #[test]
    fn mremap_dontunmap_moves_pages_and_leaves_an_empty_vma() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 2 * P, RW, ANON, None).unwrap();
        mm.copy_out(a, b"data").unwrap();
        assert_eq!(mm.mremap(a, 2 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(a, 2 * P, 2 * P, MREMAP_DONTUNMAP, 0), Err(Errno::EINVAL));
        let b = mm.mremap(a, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0).unwrap();
        assert_ne!(a, b);
        assert_eq!(read(&mm, b, 4), b"data");
        assert_eq!(read(&mm, a, 4), [0; 4], "the old mapping stays, with fresh memory");
        assert!(!mm.is_realised(a));
    }

    #[test]
    fn mremap_old_len_zero_duplicates_shared_mappings_only() {
        let (mm, _, _) = new_mm();
        let s = mm.mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None).unwrap();
        mm.copy_out(s + P, b"one").unwrap();
        let d = mm.mremap(s, 0, 2 * P, MREMAP_MAYMOVE, 0).unwrap();
        assert_ne!(d, s);
        assert_eq!(read(&mm, d + P, 3), b"one");
        mm.copy_out(d, b"two").unwrap();
        assert_eq!(read(&mm, s, 3), b"two", "both mappings are the same memory");
        assert_eq!(mm.mremap(s, 0, P, 0, 0), Err(Errno::ENOMEM), "duplicating needs MAYMOVE");
        let p = mm.mmap(0, P, RW, ANON, None).unwrap();
        assert_eq!(mm.mremap(p, 0, P, MREMAP_MAYMOVE, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn mremap_rejects_bad_arguments_like_linux() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0x4000_0000, 2 * P, RW, ANON | MAP_FIXED, None).unwrap();
        mm.mmap(a + 2 * P, P, PROT_READ, ANON | MAP_FIXED, None).unwrap();
        assert_eq!(mm.mremap(a + 1, P, 2 * P, MREMAP_MAYMOVE, 0), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(a, P, 2 * P, 8, 0), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(a, P, 0, MREMAP_MAYMOVE, 0), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(0x3000_0000, P, 2 * P, MREMAP_MAYMOVE, 0), Err(Errno::EFAULT));
        assert_eq!(mm.mremap(a, 3 * P, 4 * P, MREMAP_MAYMOVE, 0), Err(Errno::EFAULT), "crosses the VMA end");
        assert_eq!(mm.mremap(a, P, u64::MAX, MREMAP_MAYMOVE, 0), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(a, P, 1 << 50, MREMAP_MAYMOVE, 0), Err(Errno::ENOMEM));
        assert_eq!(mm.vmas_snapshot().len(), 2, "failed calls change nothing");
    }
}
