//! fork: copying an address space with copy-on-write, what is not copied
//! (MADV_DONTFORK, MADV_WIPEONFORK), and tearing an address space down.

use std::sync::Arc;

use rvisor_platform::AddressSpace;
use rvisor_syscalls::Errno;

use super::pma::PmaSet;
use super::vma::{Backing, VmaSet};
use super::{page_up, MemoryManager, MmState, PAGE_SIZE};

impl MemoryManager {
    /// fork(2): a new memory manager for `child_as` with this one's layout, heap, mmap base,
    /// stack limit and randomisation setting, and copies of its VMAs except MADV_DONTFORK
    /// ones (memory locks are not inherited, as in Linux).
    ///
    /// Realised pages are shared with the child rather than copied: MAP_SHARED memory stays
    /// shared for good, private pages become copy-on-write in both address spaces. Before
    /// returning, this address space loses its writable mappings of private pages (they are
    /// unmapped and refault read-only), so the next write on either side faults and copies.
    /// MADV_WIPEONFORK VMAs reach the child without pages (fresh zero memory).
    ///
    /// ENOMEM if the platform cannot unmap the parent's pages (then nothing is shared).
    pub fn fork(&self, child_as: Arc<dyn AddressSpace>) -> Result<MemoryManager, Errno> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut child = MmState {
            vmas: VmaSet::default(),
            pmas: PmaSet::default(),
            brk_start: st.brk_start,
            brk: st.brk,
            mmap_base: st.mmap_base,
            stack_limit: st.stack_limit,
            aslr: st.aslr,
            lock_future: false,
            lock_future_onfault: false,
            memlock_limit: st.memlock_limit,
        };
        // Ranges of the parent to write-protect, coalesced.
        let mut protect: Vec<(u64, u64)> = Vec::new();
        for v in st.vmas.iter() {
            if v.dontfork {
                continue;
            }
            let mut cv = v.clone();
            cv.locked = false;
            child.vmas.insert(cv);
            if v.wipeonfork {
                continue;
            }
            for r in st.pmas.runs_in(v.start, v.end) {
                self.mf.inc_ref(r.offset, r.end - r.start);
                child.pmas.insert(r.start, r.end, r.offset);
            }
            if !v.shared && v.perms.write && st.pmas.any_in(v.start, v.end) {
                match protect.last_mut() {
                    Some(last) if last.1 == v.start => last.1 = v.end,
                    _ => protect.push((v.start, v.end)),
                }
            }
        }
        let child = MemoryManager::with_state(self.mf.clone(), child_as, self.max_addr, child);
        for (s, e) in protect {
            if let Err(err) = self.as_.unmap(s, e - s) {
                // Dropping the child gives its references back; the parent keeps writing
                // pages that are then its own again.
                tracing::error!(start = s, end = e, error = %err, "fork: write-protecting the parent failed");
                return Err(Errno::ENOMEM);
            }
        }
        drop(guard);
        Ok(child)
    }

    /// madvise(MADV_DONTFORK) (`dontfork`) and MADV_DOFORK. EINVAL for an unaligned
    /// `addr`, ENOMEM if part of the range is not mapped (the mapped parts still change,
    /// as in Linux).
    pub fn set_dontfork(&self, addr: u64, len: u64, dontfork: bool) -> Result<(), Errno> {
        let Some((start, end)) = self.advice_range(addr, len)? else { return Ok(()) };
        let mut st = self.lock();
        st.vmas.update_range(start, end, |v| v.dontfork = dontfork);
        if st.vmas.covers(start, end) {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// madvise(MADV_WIPEONFORK) (`wipe`) and MADV_KEEPONFORK: whether a forked child gets
    /// fresh zero pages instead of this memory. WIPEONFORK is EINVAL on shared or
    /// file-backed mappings; otherwise errors as [`MemoryManager::set_dontfork`].
    pub fn set_wipeonfork(&self, addr: u64, len: u64, wipe: bool) -> Result<(), Errno> {
        let Some((start, end)) = self.advice_range(addr, len)? else { return Ok(()) };
        let mut st = self.lock();
        if wipe && st.vmas.overlapping(start, end).any(|v| v.shared || !matches!(v.backing, Backing::Anonymous)) {
            return Err(Errno::EINVAL);
        }
        st.vmas.update_range(start, end, |v| v.wipeonfork = wipe);
        if st.vmas.covers(start, end) {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// The page range of a madvise call, or None for an empty one. EINVAL for an
    /// unaligned start or a wrapping range, ENOMEM beyond the address space.
    fn advice_range(&self, addr: u64, len: u64) -> Result<Option<(u64, u64)>, Errno> {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Ok(None);
        }
        if end > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        Ok(Some((addr, end)))
    }

    /// Unmaps everything and drops this address space's references to its pages (exit, or
    /// exec while others still hold the old memory manager). The memory manager is left
    /// empty (its heap settings are kept). Dropping the last reference to a memory manager
    /// does the same, more cheaply when it also holds the last reference to its platform
    /// address space.
    pub fn release_all(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let vmas = std::mem::take(&mut st.vmas);
        for v in vmas.iter() {
            self.release_pages(st, v.start, v.end);
        }
        let leftover: Vec<(u64, u64)> = st.pmas.runs_in(0, u64::MAX).map(|r| (r.start, r.end)).collect();
        for (s, e) in leftover {
            self.release_pages(st, s, e);
        }
        st.lock_future = false;
        st.lock_future_onfault = false;
        drop(guard);
        // Shared-memory objects of the old VMAs go (and release their pages) here, after
        // the lock, if nothing else maps them.
        drop(vmas);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use rvisor_platform::{AccessType, Perms};
    use rvisor_syscalls::flags::mman::*;

    use super::*;
    use crate::mm::testutil::{new_mm, AsCall, MemFile, MockAddressSpace};
    use crate::mm::{FileSource, FutexKey};

    const RW: u32 = PROT_READ | PROT_WRITE;
    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
    const P: u64 = PAGE_SIZE;

    fn fork(mm: &MemoryManager) -> (MemoryManager, Arc<MockAddressSpace>) {
        let as_ = Arc::new(MockAddressSpace::default());
        (mm.fork(as_.clone()).unwrap(), as_)
    }

    fn read(mm: &MemoryManager, addr: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        mm.copy_in(addr, &mut b).unwrap();
        b
    }

    fn maps(calls: &[AsCall]) -> Vec<(u64, u64, Perms)> {
        calls
            .iter()
            .filter_map(|c| match *c {
                AsCall::Map { addr, len, perms, .. } => Some((addr, len, perms)),
                AsCall::Unmap { .. } => None,
            })
            .collect()
    }

    fn offset_of(calls: &[AsCall], at: u64) -> u64 {
        calls
            .iter()
            .rev()
            .find_map(|c| match *c {
                AsCall::Map { addr, len, offset, .. } if addr <= at && at < addr + len => Some(offset + (at - addr)),
                _ => None,
            })
            .expect("no mapping")
    }

    #[test]
    fn fork_child_sees_copy_on_write_private_memory() {
        let (parent, _, mf) = new_mm();
        let a = parent.mmap(0, 4 * P, RW, ANON, None).unwrap();
        parent.copy_out(a, b"parent").unwrap();
        parent.copy_out(a + 2 * P, b"second").unwrap();
        let (child, _) = fork(&parent);
        assert_eq!(read(&child, a, 6), b"parent");
        assert_eq!(mf.allocated(), 2 * P, "nothing is copied at fork");
        child.copy_out(a, b"child!").unwrap();
        assert_eq!(mf.allocated(), 3 * P, "the child's write copied one page");
        assert_eq!(read(&parent, a, 6), b"parent");
        assert_eq!(read(&child, a, 6), b"child!");
        parent.copy_out(a + 2 * P, b"PARENT").unwrap();
        assert_eq!(read(&child, a + 2 * P, 6), b"second");
        assert_eq!(read(&parent, a + 2 * P, 6), b"PARENT");
        assert_eq!(mf.allocated(), 4 * P);
        // The parent's first page is its own again: written in place.
        parent.copy_out(a + 100, b"x").unwrap();
        assert_eq!(mf.allocated(), 4 * P);
        assert_eq!(read(&child, a + 100, 1), [0]);
    }

    #[test]
    fn fork_write_protects_the_parent_and_a_write_fault_copies() {
        let (parent, pas, mf) = new_mm();
        let a = parent.mmap(0x4000_0000, 4 * P, RW, ANON | MAP_FIXED, None).unwrap();
        let ro = parent.mmap(0x4100_0000, P, PROT_READ, ANON | MAP_FIXED, None).unwrap();
        parent.handle_fault(a, AccessType::Write).unwrap();
        parent.handle_fault(ro, AccessType::Read).unwrap();
        parent.copy_out(a + P, b"shared").unwrap();
        let old = offset_of(&pas.take(), a);
        let (child, cas) = fork(&parent);
        assert_eq!(pas.take(), [AsCall::Unmap { addr: a, len: 4 * P }], "only writable private pages are unmapped");
        assert!(cas.take().is_empty());

        // The ptrace platform reports the first write to the unmapped page as a read: it is
        // mapped read-only; the write then faults again and copies.
        parent.handle_fault(a + P, AccessType::Read).unwrap();
        assert_eq!(maps(&pas.take()), [(a, 4 * P, Perms::R)]);
        parent.handle_fault(a + P, AccessType::Write).unwrap();
        let calls = pas.take();
        assert_eq!(maps(&calls), [(a + P, P, Perms::RW)]);
        assert_ne!(offset_of(&calls, a + P), old + P, "the write got a fresh page");
        assert_eq!(mf.allocated(), 6 * P);
        assert_eq!(read(&parent, a + P, 6), b"shared");
        assert_eq!(read(&child, a + P, 6), b"shared");

        // In the child, the page the parent copied away is exclusive now and mapped writable,
        // its neighbours read-only.
        child.handle_fault(a + P, AccessType::Read).unwrap();
        assert_eq!(maps(&cas.take()), [(a, P, Perms::R), (a + P, P, Perms::RW), (a + 2 * P, 2 * P, Perms::R)]);
        child.handle_fault(a + P, AccessType::Write).unwrap();
        assert_eq!(offset_of(&cas.take(), a + P), old + P, "taken over without copying");
        assert_eq!(mf.allocated(), 6 * P);
        // Read-only mappings are shared and never copied; writes to them still fail.
        child.handle_fault(ro, AccessType::Read).unwrap();
        assert_eq!(maps(&cas.take()), [(ro, P, Perms::R)]);
        assert!(child.handle_fault(ro, AccessType::Write).is_err());
    }

    #[test]
    fn a_cow_page_whose_other_owner_is_gone_is_taken_over() {
        let (parent, pas, mf) = new_mm();
        let a = parent.mmap(0, P, RW, ANON, None).unwrap();
        parent.copy_out(a, b"mine").unwrap();
        let (child, _) = fork(&parent);
        parent.handle_fault(a, AccessType::Read).unwrap();
        let calls = pas.take();
        assert_eq!(maps(&calls), [(a, P, Perms::R)]);
        let off = offset_of(&calls, a);
        assert_eq!(mf.ref_count(off), 2);
        drop(child);
        assert_eq!(mf.ref_count(off), 1);
        parent.handle_fault(a, AccessType::Write).unwrap();
        let calls = pas.take();
        assert_eq!(maps(&calls), [(a, P, Perms::RW)]);
        assert_eq!(offset_of(&calls, a), off);
        assert_eq!(mf.allocated(), P);
    }

    #[test]
    fn shared_anonymous_memory_stays_shared_across_fork() {
        let (parent, pas, mf) = new_mm();
        let s = parent.mmap(0, 4 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None).unwrap();
        parent.handle_fault(s, AccessType::Write).unwrap();
        parent.copy_out(s, b"before").unwrap();
        pas.take();
        let (child, cas) = fork(&parent);
        assert!(pas.take().is_empty(), "shared pages need no write protection");
        child.copy_out(s, b"child").unwrap();
        assert_eq!(read(&parent, s, 6), b"childe");
        // Pages nobody touched before fork are shared too.
        parent.copy_out(s + 3 * P, b"late").unwrap();
        assert_eq!(read(&child, s + 3 * P, 4), b"late");
        child.handle_fault(s + 3 * P, AccessType::Write).unwrap();
        let calls = cas.take();
        assert!(maps(&calls).iter().all(|m| m.2 == Perms::RW));
        assert_eq!(mf.allocated(), 4 * P, "never copied");
        let pk = parent.futex_key(s + 3 * P + 8, false).unwrap();
        assert_eq!(child.futex_key(s + 3 * P + 8, false).unwrap(), pk);
        assert!(matches!(pk, FutexKey::Shared { .. }));
        // The memory outlives either side.
        drop(parent);
        assert_eq!(read(&child, s, 5), b"child");
        assert_eq!(mf.allocated(), 4 * P);
        drop(child);
        assert_eq!(mf.allocated(), 0);
    }

    #[test]
    fn pages_return_to_the_memory_file_with_their_last_reference() {
        let (parent, _, mf) = new_mm();
        let a = parent.mmap(0, 2 * P, RW, ANON, None).unwrap();
        parent.copy_out(a, &[1u8; 2 * 4096]).unwrap();
        let (child, _) = fork(&parent);
        let (grandchild, _) = fork(&child);
        child.copy_out(a, b"c").unwrap();
        assert_eq!(mf.allocated(), 3 * P);
        parent.munmap(a, P).unwrap();
        assert_eq!(mf.allocated(), 3 * P, "the grandchild still has the page");
        drop(grandchild);
        assert_eq!(mf.allocated(), 2 * P);
        child.release_all();
        assert!(child.vmas_snapshot().is_empty());
        assert_eq!(mf.allocated(), P);
        assert_eq!(read(&parent, a + P, 1), [1]);
        drop(parent);
        assert_eq!(mf.allocated(), 0);
    }

    #[test]
    fn discarding_a_cow_page_drops_only_this_reference() {
        let (parent, _, mf) = new_mm();
        let a = parent.mmap(0, P, RW, ANON, None).unwrap();
        parent.copy_out(a, b"data").unwrap();
        let (child, _) = fork(&parent);
        child.discard(a, P).unwrap();
        assert_eq!(mf.allocated(), P);
        assert_eq!(read(&child, a, 4), [0; 4]);
        assert_eq!(read(&parent, a, 4), b"data");
        parent.copy_out(a, b"DATA").unwrap();
        assert_eq!(mf.allocated(), P, "the parent took its page over");
    }

    #[test]
    fn dontfork_and_wipeonfork_vmas() {
        let (parent, _, mf) = new_mm();
        let a = parent.mmap(0x4000_0000, 3 * P, RW, ANON | MAP_FIXED, None).unwrap();
        parent.copy_out(a, &[7u8; 3 * 4096]).unwrap();
        parent.set_dontfork(a + P, P, true).unwrap();
        let (child, _) = fork(&parent);
        assert_eq!(child.copy_in(a + P, &mut [0u8; 1]), Err(Errno::EFAULT));
        assert_eq!(read(&child, a + 2 * P, 1), [7]);
        assert_eq!(child.vmas_snapshot().len(), 2);
        drop(child);
        assert_eq!(mf.allocated(), 3 * P);
        parent.set_dontfork(a, 3 * P, false).unwrap();
        assert_eq!(parent.vmas_snapshot().len(), 1, "MADV_DOFORK merges the VMAs back");
        parent.set_wipeonfork(a, P, true).unwrap();
        let (child, _) = fork(&parent);
        assert_eq!(read(&child, a + 1, 1), [0], "wiped");
        assert_eq!(read(&child, a + P, 1), [7]);
        assert_eq!(parent.set_dontfork(a + 1, P, true), Err(Errno::EINVAL));
        assert_eq!(parent.set_dontfork(a, 4 * P, true), Err(Errno::ENOMEM));
        assert_eq!(parent.set_dontfork(a, 0, true), Ok(()));
        let s = parent.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, None).unwrap();
        assert_eq!(parent.set_wipeonfork(s, P, true), Err(Errno::EINVAL));
    }

    #[test]
    fn fork_copies_settings_and_private_file_mappings() {
        let (parent, _, _) = new_mm();
        parent.set_brk_base(0x60_0000);
        parent.brk(0x60_0000 + 3 * P);
        parent.set_stack_limit(16 << 20);
        let f: Arc<dyn FileSource> = Arc::new(MemFile(vec![5u8; 4096]));
        let m = parent.mmap(0, P, RW, MAP_PRIVATE, Some((f, 0))).unwrap();
        parent.mlock(m, P, 0).unwrap();
        let (child, _) = fork(&parent);
        assert_ne!(child.id(), parent.id());
        assert_eq!(child.brk(0), 0x60_0000 + 3 * P);
        assert_eq!(child.brk_base(), 0x60_0000);
        assert_eq!(
            (child.mmap_base(), child.stack_limit(), child.aslr()),
            (parent.mmap_base(), parent.stack_limit(), parent.aslr())
        );
        assert_eq!(child.vmas_snapshot(), parent.vmas_snapshot());
        assert_eq!((parent.locked_bytes(), child.locked_bytes()), (P, 0), "locks are not inherited");
        child.copy_out(m, b"c").unwrap();
        assert_eq!(read(&child, m, 2), [b'c', 5]);
        assert_eq!(read(&parent, m, 2), [5, 5]);
    }

    #[test]
    fn futex_keys_after_fork() {
        let (parent, _, _) = new_mm();
        let a = parent.mmap(0, P, RW, ANON, None).unwrap();
        parent.copy_out(a, &[0u8; 8]).unwrap();
        let (child, _) = fork(&parent);
        assert_ne!(parent.futex_key(a, true).unwrap(), child.futex_key(a, true).unwrap());
        let shared_before = parent.futex_key(a, false).unwrap();
        assert_eq!(child.futex_key(a, false).unwrap(), shared_before, "still one page");
        child.copy_out(a, b"w").unwrap();
        assert_ne!(child.futex_key(a, false).unwrap(), shared_before, "copied on write");
    }

    #[test]
    fn atomic_writes_break_copy_on_write() {
        let (parent, _, _) = new_mm();
        let a = parent.mmap(0, P, RW, ANON, None).unwrap();
        parent.write_obj(a + 4, &5u32).unwrap();
        let (child, _) = fork(&parent);
        assert_eq!(child.atomic_u32(a + 4, false, |w| w.load(Ordering::SeqCst)), Ok(5));
        child.atomic_u32(a + 4, true, |w| w.store(6, Ordering::SeqCst)).unwrap();
        assert_eq!(child.read_obj::<u32>(a + 4), Ok(6));
        assert_eq!(parent.read_obj::<u32>(a + 4), Ok(5));
    }

    #[test]
    fn concurrent_writers_after_fork_stay_isolated_and_free_everything() {
        let (parent, _, mf) = new_mm();
        let len = 64 * P;
        let a = parent.mmap(0, len, RW, ANON, None).unwrap();
        parent.copy_out(a, &vec![0xaau8; len as usize]).unwrap();
        let parent = Arc::new(parent);
        let children: Vec<_> = (0..3).map(|_| Arc::new(fork(&parent).0)).collect();
        let all: Vec<Arc<MemoryManager>> = std::iter::once(parent).chain(children).collect();
        std::thread::scope(|s| {
            for (i, mm) in all.iter().enumerate() {
                s.spawn(move || {
                    for round in 0..4u64 {
                        for page in (0..64).rev() {
                            let at = a + page * P + round * 8;
                            if page % 2 == 0 {
                                mm.copy_out(at, &[i as u8; 8]).unwrap();
                            } else {
                                mm.handle_fault(at, AccessType::Read).unwrap();
                                mm.handle_fault(at, AccessType::Write).unwrap();
                                mm.atomic_u32(at, true, |w| w.store(u32::from_ne_bytes([i as u8; 4]), Ordering::SeqCst))
                                    .unwrap();
                            }
                        }
                    }
                });
            }
        });
        for (i, mm) in all.iter().enumerate() {
            assert_eq!(read(mm, a + 5 * P, 4), [i as u8; 4]);
            assert_eq!(read(mm, a + 5 * P + 32, 1), [0xaa]);
        }
        drop(all);
        assert_eq!(mf.allocated(), 0);
    }

    #[test]
    fn mprotect_to_writable_after_fork_still_copies() {
        let (parent, _, mf) = new_mm();
        let a = parent.mmap(0, P, PROT_READ, ANON, None).unwrap();
        parent.handle_fault(a, AccessType::Read).unwrap();
        let (child, cas) = fork(&parent);
        child.mprotect(a, P, RW).unwrap();
        child.handle_fault(a, AccessType::Read).unwrap();
        assert_eq!(maps(&cas.take()), [(a, P, Perms::R)]);
        child.handle_fault(a, AccessType::Write).unwrap();
        assert_eq!(maps(&cas.take()), [(a, P, Perms::RW)]);
        assert_eq!(mf.allocated(), 2 * P);
    }
}
