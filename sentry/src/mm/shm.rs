//! Shared memory objects: the backing of MAP_SHARED anonymous mappings and the page store
//! of tmpfs regular files (and, later, of System V shared memory and memfd files).
//!
//! An object owns its pages (one memory-file reference each). Every address space that
//! maps the object and touches a page records the same memory-file page in its own
//! [`PmaSet`](super::pma::PmaSet) and holds a reference of its own, so the page lives as
//! long as the object or any address space still has it, and all of them see each other's
//! writes. Fork copies the VMAs, which share the object.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::pma::{Lookup, Pma, PmaSet};
use super::{page_down, page_up, MemoryFile, MmError, PAGE_SIZE};

/// An object of shared, zero-initialised memory. Its size is fixed for anonymous shared
/// mappings; a tmpfs file resizes its object with [`SharedMemory::set_len`].
pub struct SharedMemory {
    mf: Arc<MemoryFile>,
    /// Size in bytes, a multiple of the page size.
    len: AtomicU64,
    /// Realised pages, keyed by object offset.
    pages: Mutex<PmaSet>,
    /// Where new pages get their contents (a file's page cache); zero-filled without.
    source: Option<Arc<dyn super::FileSource>>,
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory").field("len", &self.len()).field("realised", &self.realised_bytes()).finish()
    }
}

impl SharedMemory {
    /// A new object of `len` bytes (rounded up to pages). Nothing is allocated until a page
    /// is first touched.
    pub fn new(mf: Arc<MemoryFile>, len: u64) -> Arc<SharedMemory> {
        let len = page_up(len).unwrap_or(!(PAGE_SIZE - 1));
        Arc::new(SharedMemory { mf, len: AtomicU64::new(len), pages: Mutex::new(PmaSet::default()), source: None })
    }

    /// A page cache for a file of `len` bytes: pages are read from `source` when first
    /// touched (the tail of the last page beyond the end of the file reads as zeros), and
    /// every process mapping the object shares them.
    pub fn new_file_backed(mf: Arc<MemoryFile>, len: u64, source: Arc<dyn super::FileSource>) -> Arc<SharedMemory> {
        let len = page_up(len).unwrap_or(!(PAGE_SIZE - 1));
        Arc::new(SharedMemory { mf, len: AtomicU64::new(len), pages: Mutex::new(PmaSet::default()), source: Some(source) })
    }

    /// Size in bytes; pages at or beyond it cannot be realised (SIGBUS, as for shmem).
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the object has no pages at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the object realised so far (below its size).
    pub fn realised_bytes(&self) -> u64 {
        let len = self.len();
        self.lock().runs_in(0, len).map(|r| r.end - r.start).sum()
    }

    /// Bytes of `[start, end)` realised so far.
    pub fn realised_in(&self, start: u64, end: u64) -> u64 {
        self.lock().runs_in(start, end).map(|r| r.end - r.start).sum()
    }

    /// The memory file the object's pages live in.
    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// Resizes the object to `len` bytes (rounded up to pages). Growing only moves the
    /// limit. Shrinking frees the pages beyond the new size that no address space maps;
    /// pages still mapped somewhere are zeroed and kept, so every mapping keeps seeing the
    /// same (now zero) memory, and they are the object's again if it grows back. (Linux
    /// would also unmap them, making later accesses SIGBUS: there is no reverse map to find
    /// the address spaces.)
    pub fn set_len(&self, len: u64) -> Result<(), MmError> {
        let len = page_up(len).ok_or(MmError::OutOfBounds { offset: len, len: 0 })?;
        let mut pages = self.lock();
        let old = self.len.swap(len, Ordering::AcqRel);
        if len >= old {
            return Ok(());
        }
        let beyond: Vec<Pma> = pages.runs_in(len, u64::MAX).collect();
        let release = |off: u64, n: u64| self.mf.release(off, n);
        for r in beyond {
            // Pages some address space still maps (more than the object's reference) are
            // zeroed and kept; the others go.
            let mut cur = r.start;
            for (fs, fe) in self.mf.shared_ranges(r.offset, r.end - r.start) {
                let (gs, ge) = (r.start + (fs - r.offset), r.start + (fe - r.offset));
                if cur < gs {
                    pages.remove_range(cur, gs, release);
                }
                self.mf.zero(fs, fe - fs)?;
                cur = ge;
            }
            if cur < r.end {
                pages.remove_range(cur, r.end, release);
            }
        }
        Ok(())
    }

    /// Copies object bytes at `off` into `buf`; pages never written read as zeros. The
    /// range must lie below the object's size.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), MmError> {
        let end = self.check(off, buf.len())?;
        let pages = self.lock();
        let mut cur = off;
        while cur < end {
            let at = (cur - off) as usize;
            match pages.lookup(cur) {
                Lookup::Realised(p) => {
                    let n = (p.end.min(end) - cur) as usize;
                    self.mf.read(p.offset_of(cur), &mut buf[at..at + n])?;
                    cur += n as u64;
                }
                Lookup::Hole { next_start, .. } => {
                    let n = (next_start.min(end) - cur) as usize;
                    buf[at..at + n].fill(0);
                    cur += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Copies `buf` into the object at `off`, realising the pages it covers. The range must
    /// lie below the object's size.
    pub fn write(&self, off: u64, buf: &[u8]) -> Result<(), MmError> {
        let end = self.check(off, buf.len())?;
        let mut pages = self.lock();
        let runs = self.realise_locked(&mut pages, page_down(off), page_up(end).unwrap_or(end))?;
        for r in runs {
            let (s, e) = (r.start.max(off), r.end.min(end));
            if s < e {
                let at = (s - off) as usize;
                self.mf.write(r.offset_of(s), &buf[at..at + (e - s) as usize])?;
            }
        }
        Ok(())
    }

    /// Sets `[start, end)` (clipped to the object) to zero; pages not realised already
    /// read as zero and stay unrealised.
    pub fn zero(&self, start: u64, end: u64) -> Result<(), MmError> {
        let end = end.min(self.len());
        if start >= end {
            return Ok(());
        }
        let pages = self.lock();
        for r in pages.runs_in(start, end) {
            self.mf.zero(r.offset, r.end - r.start)?;
        }
        Ok(())
    }

    /// Realises every page of `[start, end)` (clipped to the object), as fallocate(2) does.
    pub fn allocate(&self, start: u64, end: u64) -> Result<(), MmError> {
        let mut pages = self.lock();
        let end = page_up(end).unwrap_or(u64::MAX).min(self.len());
        if page_down(start) < end {
            self.realise_locked(&mut pages, page_down(start), end)?;
        }
        Ok(())
    }

    /// `off + n`, if that range lies inside the object.
    fn check(&self, off: u64, n: usize) -> Result<u64, MmError> {
        off.checked_add(n as u64).filter(|&e| e <= self.len()).ok_or(MmError::OutOfBounds { offset: off, len: n as u64 })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PmaSet> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the page at object offset `off` is realised.
    pub(super) fn is_realised(&self, off: u64) -> bool {
        matches!(self.lock().lookup(off), Lookup::Realised(_))
    }

    /// The memory-file runs behind object range `[start, end)` (page-aligned, clipped to
    /// the object's size), realising missing pages. Each returned run carries one new
    /// reference, which the caller owns (and drops with [`MemoryFile::release`]). The runs'
    /// `start`/`end` are object offsets.
    pub(super) fn get_runs(&self, start: u64, end: u64) -> Result<Vec<Pma>, MmError> {
        let mut pages = self.lock();
        let runs = self.realise_locked(&mut pages, start, end)?;
        for r in &runs {
            self.mf.inc_ref(r.offset, r.end - r.start);
        }
        Ok(runs)
    }

    /// The memory-file runs behind object range `[start, end)` (page-aligned, clipped to the
    /// object's size), realising missing pages; no reference is taken for the caller.
    fn realise_locked(&self, pages: &mut PmaSet, start: u64, end: u64) -> Result<Vec<Pma>, MmError> {
        let end = end.min(self.len());
        let mut runs = Vec::new();
        let mut cur = start;
        while cur < end {
            let run = match pages.lookup(cur) {
                Lookup::Realised(p) => Pma { start: cur, end: p.end.min(end), offset: p.offset_of(cur) },
                Lookup::Hole { next_start, .. } => {
                    let e = end.min(next_start);
                    let off = self.mf.allocate(e - cur)?;
                    if let Some(src) = &self.source {
                        if let Err(err) = fill_from(&self.mf, src.as_ref(), cur, off, e - cur) {
                            self.mf.release(off, e - cur);
                            return Err(err);
                        }
                    }
                    pages.insert(cur, e, off);
                    Pma { start: cur, end: e, offset: off }
                }
            };
            runs.push(run);
            cur = run.end;
        }
        Ok(runs)
    }
}

/// Copies `len` bytes of `src` from file offset `at` into fresh memory-file pages at `off`
/// (already zero, so bytes past the end of the file stay zero).
fn fill_from(mf: &MemoryFile, src: &dyn super::FileSource, at: u64, off: u64, len: u64) -> Result<(), MmError> {
    const CHUNK: usize = 64 << 10;
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = src.read_at(at + done, &mut buf[..want]).map_err(|_| MmError::OutOfBounds { offset: at + done, len: want as u64 })?;
        if n == 0 {
            break;
        }
        mf.write(off + done, &buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        let pages = std::mem::take(self.pages.get_mut().unwrap_or_else(|e| e.into_inner()));
        for r in pages.runs_in(0, u64::MAX) {
            self.mf.release(r.offset, r.end - r.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_realised_once_and_referenced_per_user() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let obj = SharedMemory::new(mf.clone(), 3 * PAGE_SIZE + 1);
        assert_eq!(obj.len(), 4 * PAGE_SIZE);
        let a = obj.get_runs(PAGE_SIZE, 2 * PAGE_SIZE).unwrap();
        let b = obj.get_runs(0, 8 * PAGE_SIZE).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 3, "hole, the run realised before, hole");
        assert_eq!(b[1].offset, a[0].offset);
        assert_eq!(mf.ref_count(a[0].offset), 3);
        assert_eq!(mf.allocated(), 4 * PAGE_SIZE);
        for r in a.iter().chain(&b) {
            mf.release(r.offset, r.end - r.start);
        }
        assert_eq!(mf.allocated(), 4 * PAGE_SIZE, "the object still holds its pages");
        assert!(obj.is_realised(3 * PAGE_SIZE));
        drop(obj);
        assert_eq!(mf.allocated(), 0);
    }

    #[test]
    fn read_write_and_resize_keep_file_contents() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let obj = SharedMemory::new(mf.clone(), 0);
        assert!(obj.write(0, b"x").is_err(), "writes beyond the size are refused");
        obj.set_len(3 * PAGE_SIZE).unwrap();
        obj.write(PAGE_SIZE - 2, b"abcd").unwrap();
        assert_eq!(obj.realised_bytes(), 2 * PAGE_SIZE);
        let mut buf = [1u8; 6];
        obj.read(PAGE_SIZE - 3, &mut buf).unwrap();
        assert_eq!(&buf, b"\0abcd\0");
        let mut hole = [1u8; 8];
        obj.read(2 * PAGE_SIZE + 8, &mut hole).unwrap();
        assert_eq!(hole, [0; 8], "never written pages read as zeros");
        obj.zero(PAGE_SIZE, PAGE_SIZE + 1).unwrap();
        obj.read(PAGE_SIZE - 2, &mut buf[..4]).unwrap();
        assert_eq!(&buf[..4], b"ab\0d");
        // Shrinking frees pages nobody maps; growing back shows zeros.
        obj.set_len(1).unwrap();
        assert_eq!(obj.len(), PAGE_SIZE);
        assert_eq!(mf.allocated(), PAGE_SIZE);
        obj.set_len(2 * PAGE_SIZE).unwrap();
        obj.read(PAGE_SIZE, &mut buf[..2]).unwrap();
        assert_eq!(&buf[..2], b"\0\0");
        obj.allocate(0, 2 * PAGE_SIZE).unwrap();
        assert_eq!(mf.allocated(), 2 * PAGE_SIZE);
        drop(obj);
        assert_eq!(mf.allocated(), 0);
    }

    mod mapped {
        use std::sync::Arc;

        use rvisor_platform::{AccessType, Perms};
        use rvisor_syscalls::flags::mman::*;
        use rvisor_syscalls::Errno;

        use crate::mm::testutil::new_mm;
        use crate::mm::{FaultError, MemoryManager, SharedMemory, PAGE_SIZE as P};

        const RW: u32 = PROT_READ | PROT_WRITE;

        fn read(mm: &MemoryManager, addr: u64, n: usize) -> Vec<u8> {
            let mut b = vec![0u8; n];
            mm.copy_in(addr, &mut b).unwrap();
            b
        }

        #[test]
        fn shared_mappings_of_an_object_see_each_other_and_read_write() {
            let (a, _, mf) = new_mm();
            let b = MemoryManager::new(mf.clone(), Arc::new(crate::mm::testutil::MockAddressSpace::default()), crate::mm::testutil::MAX_ADDR);
            let obj = SharedMemory::new(mf.clone(), 2 * P);
            obj.write(P + 4, b"file").unwrap();
            let ma = a.mmap_object(0, 2 * P, RW, MAP_SHARED, obj.clone(), 0, Perms::RWX).unwrap();
            let mb = b.mmap_object(0, P, RW, MAP_SHARED, obj.clone(), P, Perms::RWX).unwrap();
            assert_eq!(read(&a, ma + P + 4, 4), b"file");
            a.copy_out(ma + P + 4, b"FILE").unwrap();
            assert_eq!(read(&b, mb + 4, 4), b"FILE", "another address space sees the write");
            let mut buf = [0u8; 4];
            obj.read(P + 4, &mut buf).unwrap();
            assert_eq!(&buf, b"FILE", "and so does read(2)");
            obj.write(P + 4, b"back").unwrap();
            assert_eq!(read(&a, ma + P + 4, 4), b"back");
            assert_eq!(a.futex_key(ma + P, false).unwrap(), b.futex_key(mb, false).unwrap());
            assert_eq!(mf.allocated(), P, "one page, never copied");
            // Beyond the object's end: SIGBUS for a fault, EFAULT for a syscall copy.
            let far = a.mmap_object(0, 4 * P, RW, MAP_SHARED, obj.clone(), 0, Perms::RWX).unwrap();
            assert!(matches!(a.handle_fault(far + 2 * P, AccessType::Read), Err(FaultError::BeyondEof { .. })));
            assert_eq!(a.copy_out(far + 3 * P, b"x"), Err(Errno::EFAULT));
            obj.set_len(4 * P).unwrap();
            a.copy_out(far + 3 * P, b"grown").unwrap();
            obj.read(3 * P, &mut buf).unwrap();
            assert_eq!(&buf, b"grow", "the mapping follows the object's growth");
        }

        #[test]
        fn private_mappings_of_an_object_copy_on_write() {
            let (a, _, mf) = new_mm();
            let obj = SharedMemory::new(mf.clone(), P);
            obj.write(0, b"orig").unwrap();
            let m = a.mmap_object(0, P, RW, MAP_PRIVATE, obj.clone(), 0, Perms::RWX).unwrap();
            assert_eq!(read(&a, m, 4), b"orig");
            a.copy_out(m, b"mine").unwrap();
            let mut buf = [0u8; 4];
            obj.read(0, &mut buf).unwrap();
            assert_eq!(&buf, b"orig", "a private write stays private");
            assert_eq!(read(&a, m, 4), b"mine");
            assert_eq!(mf.allocated(), 2 * P);
        }

        #[test]
        fn shrinking_zeroes_mapped_pages_and_frees_the_rest() {
            let (a, _, mf) = new_mm();
            let obj = SharedMemory::new(mf.clone(), 3 * P);
            obj.write(0, &vec![7u8; 3 * P as usize]).unwrap();
            let m = a.mmap_object(0, 3 * P, RW, MAP_SHARED, obj.clone(), 0, Perms::RWX).unwrap();
            assert_eq!(read(&a, m + P, 1), [7]);
            assert_eq!(mf.allocated(), 3 * P);
            a.munmap(m + 2 * P, P).unwrap();
            obj.set_len(P).unwrap();
            assert_eq!(mf.allocated(), 2 * P, "the unmapped page goes, the mapped one stays");
            assert_eq!(read(&a, m + P, 1), [0], "and reads as zero");
            assert_eq!(read(&a, m, 1), [7]);
            drop(a);
            drop(obj);
            assert_eq!(mf.allocated(), 0);
        }
    }
}
