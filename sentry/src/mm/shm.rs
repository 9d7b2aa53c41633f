//! Shared memory objects: the backing of MAP_SHARED anonymous mappings (and, later, of
//! System V shared memory and memfd files).
//!
//! An object owns its pages (one memory-file reference each). Every address space that
//! maps the object and touches a page records the same memory-file page in its own
//! [`PmaSet`](super::pma::PmaSet) and holds a reference of its own, so the page lives as
//! long as the object or any address space still has it, and all of them see each other's
//! writes. Fork copies the VMAs, which share the object.

use std::sync::{Arc, Mutex};

use super::pma::{Lookup, Pma, PmaSet};
use super::{page_up, MemoryFile, MmError, PAGE_SIZE};

/// A fixed-size object of shared, zero-initialised memory.
pub struct SharedMemory {
    mf: Arc<MemoryFile>,
    len: u64,
    /// Realised pages, keyed by object offset.
    pages: Mutex<PmaSet>,
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory").field("len", &self.len).field("realised", &self.realised_bytes()).finish()
    }
}

impl SharedMemory {
    /// A new object of `len` bytes (rounded up to pages). Nothing is allocated until a page
    /// is first touched.
    pub fn new(mf: Arc<MemoryFile>, len: u64) -> Arc<SharedMemory> {
        let len = page_up(len).unwrap_or(!(PAGE_SIZE - 1));
        Arc::new(SharedMemory { mf, len, pages: Mutex::new(PmaSet::default()) })
    }

    /// Size in bytes; pages at or beyond it cannot be realised (SIGBUS, as for shmem).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the object has no pages at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the object realised so far.
    pub fn realised_bytes(&self) -> u64 {
        self.lock().realised_bytes()
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
        let end = end.min(self.len);
        let mut pages = self.lock();
        let mut runs = Vec::new();
        let mut cur = start;
        while cur < end {
            let run = match pages.lookup(cur) {
                Lookup::Realised(p) => Pma { start: cur, end: p.end.min(end), offset: p.offset_of(cur) },
                Lookup::Hole { next_start, .. } => {
                    let e = end.min(next_start);
                    let off = self.mf.allocate(e - cur)?;
                    pages.insert(cur, e, off);
                    Pma { start: cur, end: e, offset: off }
                }
            };
            runs.push(run);
            cur = run.end;
        }
        for r in &runs {
            self.mf.inc_ref(r.offset, r.end - r.start);
        }
        Ok(runs)
    }
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
}
