//! What the kernel's futex code needs from guest memory: keys that identify a futex word
//! across address spaces, and atomic access to the word.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rvisor_platform::AccessType;
use rvisor_syscalls::Errno;

use super::MemoryManager;

/// Identity of one [`MemoryManager`] (address space), unique for the life of the sentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MmId(u64);

impl MmId {
    pub(super) fn next() -> MmId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        MmId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Identifies a futex word: waiters and wakers with equal keys meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    /// A FUTEX_PRIVATE_FLAG futex: the address within one address space.
    Private { mm: MmId, addr: u64 },
    /// A process-shared futex: where the word is in the memory file, which is the same in
    /// every address space that maps the page (MAP_SHARED memory, and copy-on-write pages
    /// until one side copies them).
    Shared { offset: u64 },
}

impl MemoryManager {
    /// The key of the futex word at `addr`. EINVAL unless `addr` is 4-aligned; EFAULT if
    /// it is outside the address space, or (for a shared futex) not mapped readable. A
    /// shared key realises the page; a private page copied on write later gets a new key,
    /// as in Linux.
    pub fn futex_key(&self, addr: u64, private: bool) -> Result<FutexKey, Errno> {
        if addr % 4 != 0 {
            return Err(Errno::EINVAL);
        }
        let end = self.check_range(addr, 4)?;
        if private {
            return Ok(FutexKey::Private { mm: self.id, addr });
        }
        let mut st = self.lock();
        let mut offset = None;
        self.walk(&mut st, addr, end, AccessType::Read, true, |off, _, _| {
            offset = off;
            Ok(ControlFlow::Break(()))
        })?;
        offset.map(|offset| FutexKey::Shared { offset }).ok_or(Errno::EFAULT)
    }

    /// Runs `f` on the guest's 4-byte word at `addr` as an [`AtomicU32`], so the futex code
    /// can compare-and-exchange or read-modify-write it atomically with respect to guest
    /// threads running at the same time (FUTEX_WAKE_OP, robust lists, clear-child-tid).
    /// Realises the page; with `write`, needs PROT_WRITE and gives this address space its
    /// own copy of a copy-on-write page first. EINVAL unless `addr` is 4-aligned, EFAULT if
    /// the word is not mapped with the needed permission.
    ///
    /// `f` may change the word only when `write` is set (otherwise the page may still be
    /// shared copy-on-write with another address space). The address-space lock is held
    /// while `f` runs (so the page stays this address space's): `f` must be short and must
    /// not call back into this memory manager.
    pub fn atomic_u32<R>(&self, addr: u64, write: bool, f: impl FnOnce(&AtomicU32) -> R) -> Result<R, Errno> {
        if addr % 4 != 0 {
            return Err(Errno::EINVAL);
        }
        let end = self.check_range(addr, 4)?;
        let access = if write { AccessType::Write } else { AccessType::Read };
        let mut st = self.lock();
        let mut offset = None;
        self.walk(&mut st, addr, end, access, true, |off, _, _| {
            offset = off;
            Ok(ControlFlow::Break(()))
        })?;
        let offset = offset.ok_or(Errno::EFAULT)?;
        let r = self.mf.atomic_u32(offset, f).map_err(|e| e.errno())?;
        drop(st);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use rvisor_syscalls::flags::mman::*;

    use super::*;
    use crate::mm::testutil::{new_mm, MAX_ADDR};
    use crate::mm::PAGE_SIZE;

    const RW: u32 = PROT_READ | PROT_WRITE;
    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

    #[test]
    fn futex_keys_are_per_address_space_when_private_and_per_page_when_shared() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 2 * PAGE_SIZE, RW, ANON, None).unwrap();
        assert_eq!(mm.futex_key(a + 8, true), Ok(FutexKey::Private { mm: mm.id(), addr: a + 8 }));
        let k1 = mm.futex_key(a + 8, false).unwrap();
        let k2 = mm.futex_key(a + PAGE_SIZE + 8, false).unwrap();
        assert!(matches!(k1, FutexKey::Shared { .. }));
        assert_ne!(k1, k2);
        assert_eq!(mm.futex_key(a + 8, false), Ok(k1), "stable while the page stays");
        assert_eq!(mm.futex_key(a + 2, false), Err(Errno::EINVAL));
        assert_eq!(mm.futex_key(a + 2, true), Err(Errno::EINVAL));
        assert_eq!(mm.futex_key(a + 2 * PAGE_SIZE, false), Err(Errno::EFAULT));
        assert_eq!(mm.futex_key(MAX_ADDR, true), Err(Errno::EFAULT));
        let none = mm.mmap(0, PAGE_SIZE, PROT_NONE, ANON, None).unwrap();
        assert_eq!(mm.futex_key(none, false), Err(Errno::EFAULT));
        let (other, _, _) = new_mm();
        assert_ne!(other.id(), mm.id());
    }

    #[test]
    fn atomic_u32_sees_copied_data_and_its_writes_are_seen() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, PAGE_SIZE, RW, ANON, None).unwrap();
        mm.write_obj(a + 12, &41u32).unwrap();
        let old = mm.atomic_u32(a + 12, true, |w| w.fetch_add(1, Ordering::SeqCst)).unwrap();
        assert_eq!(old, 41);
        assert_eq!(mm.read_obj::<u32>(a + 12).unwrap(), 42);
        let swapped = mm.atomic_u32(a + 12, true, |w| w.compare_exchange(42, 7, Ordering::SeqCst, Ordering::SeqCst));
        assert_eq!(swapped, Ok(Ok(42)));
        assert_eq!(mm.read_obj::<u32>(a + 12).unwrap(), 7);
        assert_eq!(mm.atomic_u32(a + 16, false, |w| w.load(Ordering::SeqCst)), Ok(0), "untouched memory is zero");
        assert_eq!(mm.atomic_u32(a + 13, false, |_| ()), Err(Errno::EINVAL));
        assert_eq!(mm.atomic_u32(a + PAGE_SIZE, false, |_| ()), Err(Errno::EFAULT));
        let ro = mm.mmap(0, PAGE_SIZE, PROT_READ, ANON, None).unwrap();
        assert_eq!(mm.atomic_u32(ro, false, |w| w.load(Ordering::SeqCst)), Ok(0));
        assert_eq!(mm.atomic_u32(ro, true, |_| ()), Err(Errno::EFAULT));
    }
}
