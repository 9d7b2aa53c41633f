//! The memory file: one memfd that holds every page of guest memory.
//!
//! The sentry maps a large window of the memfd into itself once, so copying to and from
//! guest memory is a plain memory copy. Platforms map ranges of the same memfd into the
//! guest address spaces (`AddressSpace::map` takes memory-file offsets).
//!
//! Allocation hands out page-aligned, zero-filled ranges: the file grows (sparsely) with
//! `ftruncate`, and released ranges get their pages punched out (so the memory goes back to
//! the host and reads as zero when the range is handed out again) before they join a free
//! list.
//!
//! Pages are reference counted ([`super::refs`]): `allocate` hands out ranges with one
//! reference, `inc_ref` adds one per page and `release` drops one; a page goes back to the
//! free list when its last reference goes.
//!
//! Guest memory is shared with code the sentry does not control: guest threads of any
//! address space that maps a range may write it at any time. This module therefore never
//! creates a Rust reference (`&[u8]`/`&mut [u8]`) to the window; all accesses are raw
//! pointer copies, and every one is bounds-checked against the current file size.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::refs::RefCounts;
use super::{page_up, MmError, PAGE_SIZE};

/// Size of the window of the memory file mapped into the sentry: the most guest memory all
/// sandboxes of this sentry can have realised at once.
pub const DEFAULT_WINDOW: u64 = 64 << 30;

/// The file grows in steps of this size (it is sparse, so growing costs nothing).
const GROW_CHUNK: u64 = 64 << 20;

/// All guest memory of one sentry.
pub struct MemoryFile {
    fd: OwnedFd,
    /// Start of the sentry's mapping of the file (`window` bytes).
    base: *mut u8,
    window: u64,
    /// Current file size; only grows. Accesses below it never hit SIGBUS.
    size: AtomicU64,
    /// Reference counts of pages with more than one owner. Lock order: `refs`, then `alloc`.
    refs: RwLock<RefCounts>,
    alloc: Mutex<Allocator>,
}

// SAFETY: `base` points to a shared mapping that lives as long as `self` and is only
// accessed through bounds-checked raw copies that tolerate concurrent writers; the mutable
// allocator state is behind a Mutex.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; no method hands out references into the window.
unsafe impl Sync for MemoryFile {}

impl std::fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFile")
            .field("fd", &self.fd.as_raw_fd())
            .field("size", &self.size.load(Ordering::Relaxed))
            .field("allocated", &self.allocated())
            .finish()
    }
}

/// Free-list allocator of memory-file offsets.
#[derive(Default)]
struct Allocator {
    /// Free ranges by offset → length (coalesced).
    free_by_off: BTreeMap<u64, u64>,
    /// The same ranges by (length, offset), for best-fit.
    free_by_len: BTreeSet<(u64, u64)>,
    /// Everything at or above this offset has never been handed out.
    bump: u64,
    /// Total bytes in `free_by_off`.
    free_total: u64,
}

impl Allocator {
    fn insert_free(&mut self, off: u64, len: u64) {
        self.free_by_off.insert(off, len);
        self.free_by_len.insert((len, off));
        self.free_total += len;
    }

    fn remove_free(&mut self, off: u64) -> Option<u64> {
        let len = self.free_by_off.remove(&off)?;
        self.free_by_len.remove(&(len, off));
        self.free_total -= len;
        Some(len)
    }

    /// Best fit from the free list.
    fn take_free(&mut self, len: u64) -> Option<u64> {
        let &(flen, off) = self.free_by_len.range((len, 0)..).next()?;
        self.remove_free(off);
        if flen > len {
            self.insert_free(off + len, flen - len);
        }
        Some(off)
    }

    /// Returns `[off, off+len)` to the free list, coalescing with neighbours. Refuses
    /// (returns false) a range that overlaps free space or was never allocated: handing
    /// out the same page twice would leak memory between guests.
    fn give_back(&mut self, mut off: u64, mut len: u64) -> bool {
        let Some(end) = off.checked_add(len) else { return false };
        if end > self.bump {
            return false;
        }
        if let Some((&poff, &plen)) = self.free_by_off.range(..end).next_back() {
            if poff + plen > off {
                return false; // overlaps a free range
            }
        }
        // Coalesce with the previous and next free ranges.
        if let Some((&poff, &plen)) = self.free_by_off.range(..off).next_back() {
            if poff + plen == off {
                self.remove_free(poff);
                off = poff;
                len += plen;
            }
        }
        if let Some(nlen) = self.free_by_off.get(&(off + len)).copied() {
            self.remove_free(off + len);
            len += nlen;
        }
        self.insert_free(off, len);
        true
    }
}

impl MemoryFile {
    /// Creates the memfd and maps a [`DEFAULT_WINDOW`]-byte window of it.
    pub fn new() -> Result<Arc<MemoryFile>, MmError> {
        Self::with_window(DEFAULT_WINDOW)
    }

    /// Like [`MemoryFile::new`] with a window of `window` bytes (rounded up to pages).
    pub fn with_window(window: u64) -> Result<Arc<MemoryFile>, MmError> {
        let window = page_up(window).filter(|&w| w > 0 && w <= isize::MAX as u64).ok_or(
            MmError::OutOfBounds { offset: 0, len: window },
        )?;
        const NAME: &CStr = c"rvisor-memory";
        // SAFETY: NAME is a valid NUL-terminated string; the call only creates a new fd.
        let raw = unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(MmError::last_os("memfd_create"));
        }
        // SAFETY: `raw` is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a new shared mapping chosen by the kernel (no address hint), so it cannot
        // alias any Rust object; MAP_NORESERVE because the file is sparse.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                window as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(MmError::last_os("mmap(memory file)"));
        }
        Ok(Arc::new(MemoryFile {
            fd,
            base: base.cast(),
            window,
            size: AtomicU64::new(0),
            refs: RwLock::new(RefCounts::default()),
            alloc: Mutex::new(Allocator::default()),
        }))
    }

    /// The memfd, for platforms to map into guest address spaces.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Current size of the file.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Bytes currently handed out (allocated and not released).
    pub fn allocated(&self) -> u64 {
        let a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        a.bump - a.free_total
    }

    /// Allocates `len` bytes (rounded up to pages) of zero-filled memory and returns the
    /// offset in the file.
    pub fn allocate(&self, len: u64) -> Result<u64, MmError> {
        let len = page_up(len).filter(|&l| l > 0).ok_or(MmError::OutOfMemory { requested: len })?;
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(off) = a.take_free(len) {
            return Ok(off);
        }
        let off = a.bump;
        let end = off.checked_add(len).filter(|&e| e <= self.window);
        let Some(end) = end else { return Err(MmError::OutOfMemory { requested: len }) };
        let size = self.size.load(Ordering::Acquire);
        if end > size {
            let new_size = end.div_ceil(GROW_CHUNK).saturating_mul(GROW_CHUNK).min(self.window);
            // SAFETY: ftruncate on our own fd; growing never invalidates existing pages.
            if unsafe { libc::ftruncate(self.fd.as_raw_fd(), new_size as libc::off_t) } != 0 {
                return Err(MmError::last_os("ftruncate(memory file)"));
            }
            self.size.store(new_size, Ordering::Release);
        }
        a.bump = end;
        Ok(off)
    }

    /// Drops one reference to every page of `[offset, offset+len)` (page-aligned,
    /// allocated); pages whose last reference goes are returned to the file: freed on the
    /// host, and zero when allocated again.
    ///
    /// The caller must have removed every guest mapping of the range it owned first.
    pub fn release(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let Some(end) = self.checked_pages(offset, len, "release") else { return };
        let mut refs = self.refs.write().unwrap_or_else(|e| e.into_inner());
        let mut freed = Vec::new();
        refs.dec(offset, end, |s, e| freed.push((s, e)));
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        for (s, e) in freed {
            // Punch first, under the lock, so nobody can be handed the range before it is
            // zero.
            if let Err(err) = self.punch_hole(s, e - s) {
                // The range would not read as zero if reused: leak it instead.
                tracing::error!(
                    offset = s,
                    len = e - s,
                    error = %err,
                    "memory file: punching a hole failed; leaking range"
                );
                continue;
            }
            if !a.give_back(s, e - s) {
                tracing::error!(
                    offset = s,
                    len = e - s,
                    "memory file: release of a range that is not allocated ignored"
                );
            }
        }
    }

    /// Adds one reference to every page of `[offset, offset+len)` (page-aligned, allocated),
    /// for a new owner (a forked address space, a shared-memory object's user).
    pub fn inc_ref(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let Some(end) = self.checked_pages(offset, len, "inc_ref") else { return };
        self.refs.write().unwrap_or_else(|e| e.into_inner()).inc(offset, end);
    }

    /// Number of references to the page at `offset` (allocated; 1 if it has one owner).
    pub fn ref_count(&self, offset: u64) -> u64 {
        self.refs.read().unwrap_or_else(|e| e.into_inner()).count(page_down_off(offset))
    }

    /// Whether some page of `[offset, offset+len)` has more than one owner.
    pub fn any_shared(&self, offset: u64, len: u64) -> bool {
        let end = offset.saturating_add(len);
        self.refs.read().unwrap_or_else(|e| e.into_inner()).any_shared(page_down_off(offset), end)
    }

    /// Sub-ranges of `[offset, offset+len)` whose pages have more than one owner.
    pub fn shared_ranges(&self, offset: u64, len: u64) -> Vec<(u64, u64)> {
        let end = offset.saturating_add(len);
        self.refs.read().unwrap_or_else(|e| e.into_inner()).shared_in(page_down_off(offset), end)
    }

    /// `offset + len` for a page-aligned range, or None (logged) for a bad one.
    fn checked_pages(&self, offset: u64, len: u64, what: &'static str) -> Option<u64> {
        match offset.checked_add(len) {
            Some(end) if offset % PAGE_SIZE == 0 && len % PAGE_SIZE == 0 && end <= self.window => Some(end),
            _ => {
                tracing::error!(offset, len, what, "memory file: bad range ignored");
                None
            }
        }
    }

    fn punch_hole(&self, offset: u64, len: u64) -> Result<(), MmError> {
        // SAFETY: fallocate on our own fd with a range inside the file; it changes file
        // contents only, never our address space layout.
        let r = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        if r != 0 {
            return Err(MmError::last_os("fallocate(PUNCH_HOLE)"));
        }
        Ok(())
    }

    /// Checks that `[offset, offset+len)` is inside the file and returns a pointer to it.
    fn range_ptr(&self, offset: u64, len: usize) -> Result<*mut u8, MmError> {
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= self.size() => {
                // SAFETY: offset < size <= window, so the result stays inside the mapping.
                Ok(unsafe { self.base.add(offset as usize) })
            }
            _ => Err(MmError::OutOfBounds { offset, len: len as u64 }),
        }
    }

    /// Copies memory-file bytes at `offset` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MmError> {
        let src = self.range_ptr(offset, buf.len())?;
        // SAFETY: `src..src+len` is inside the mapped window and below the file size (so no
        // SIGBUS); `buf` is a distinct, exclusively borrowed sentry buffer, so the ranges do
        // not overlap. The source is a shared file mapping that guest processes may write
        // concurrently, i.e. memory outside the Rust abstract machine (as in rust-vmm's
        // vm-memory): we only copy bytes through raw pointers and never form a reference to
        // it, so a racing write can at worst make us copy a mix of old and new bytes, which
        // any value of `u8` tolerates.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into the memory file at `offset`.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), MmError> {
        let dst = self.range_ptr(offset, buf.len())?;
        // SAFETY: as in `read`, with the roles swapped: the destination is inside the window
        // and the file, no reference to it exists, and concurrent guest accesses only see
        // a mix of bytes.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to zero.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), MmError> {
        let n = usize::try_from(len).map_err(|_| MmError::OutOfBounds { offset, len })?;
        let dst = self.range_ptr(offset, n)?;
        // SAFETY: the range is inside the window and the file; see `write`.
        unsafe { std::ptr::write_bytes(dst, 0, n) };
        Ok(())
    }
    /// Copies `len` bytes from offset `src` to offset `dst` (non-overlapping ranges).
    pub fn copy(&self, src: u64, dst: u64, len: u64) -> Result<(), MmError> {
        let n = usize::try_from(len).map_err(|_| MmError::OutOfBounds { offset: src, len })?;
        if src < dst.saturating_add(len) && dst < src.saturating_add(len) {
            return Err(MmError::OutOfBounds { offset: dst, len });
        }
        let s = self.range_ptr(src, n)?;
        let d = self.range_ptr(dst, n)?;
        // SAFETY: both ranges are inside the window and the file (checked above) and do not
        // overlap; as in `read`, no reference to either exists and racing guest writes to
        // the source only make us copy a mix of old and new bytes.
        unsafe { std::ptr::copy_nonoverlapping(s, d, n) };
        Ok(())
    }

    /// Runs `f` on the 4-byte word at `offset` as an atomic: the compare-and-exchange and
    /// read-modify-write operations it does are atomic with respect to guest threads using
    /// the same memory through their own mappings.
    pub fn atomic_u32<R>(&self, offset: u64, f: impl FnOnce(&AtomicU32) -> R) -> Result<R, MmError> {
        if offset % 4 != 0 {
            return Err(MmError::OutOfBounds { offset, len: 4 });
        }
        let p = self.range_ptr(offset, 4)?;
        // SAFETY: `p` is inside the window and below the file size (checked by
        // `range_ptr`), so it stays dereferenceable for as long as `self` lives (the window
        // is unmapped only in Drop and the file never shrinks); it is 4-aligned because the
        // window starts on a page boundary and `offset` is a multiple of 4. `AtomicU32` has
        // the size and alignment of `u32` and is made for memory that is mutated through
        // shared references (it wraps an `UnsafeCell`), so other accesses are allowed while
        // the reference lives. Those other accesses are guest loads and stores through the
        // platform's mappings of the same file and the sentry's raw-pointer copies: memory
        // shared with other processes, treated as outside the Rust abstract machine as in
        // rust-vmm's vm-memory (which offers the same atomic access to guest memory). On
        // x86_64 an aligned 4-byte `lock`-prefixed operation is atomic with respect to all
        // of them. The reference cannot escape: `f` gets it for the duration of the call
        // only (`R` cannot borrow from it).
        let a = unsafe { AtomicU32::from_ptr(p.cast::<u32>()) };
        Ok(f(a))
    }
}

/// `off` rounded down to a page.
fn page_down_off(off: u64) -> u64 {
    off & !(PAGE_SIZE - 1)
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: `base`/`window` describe the mapping created in `with_window`; no
        // references into it exist (none are ever handed out) and `self` is going away.
        unsafe { libc::munmap(self.base.cast(), self.window as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_returns_zeroed_page_aligned_ranges() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let a = mf.allocate(1).unwrap();
        let b = mf.allocate(3 * PAGE_SIZE).unwrap();
        assert_eq!(a % PAGE_SIZE, 0);
        assert_eq!(b, a + PAGE_SIZE);
        let mut buf = [1u8; 16];
        mf.read(b + 2 * PAGE_SIZE, &mut buf).unwrap();
        assert_eq!(buf, [0; 16]);
        assert_eq!(mf.allocated(), 4 * PAGE_SIZE);
    }

    #[test]
    fn released_ranges_are_reused_and_read_as_zero() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let a = mf.allocate(2 * PAGE_SIZE).unwrap();
        let _b = mf.allocate(PAGE_SIZE).unwrap();
        mf.write(a + 100, b"hello").unwrap();
        mf.release(a, 2 * PAGE_SIZE);
        assert_eq!(mf.allocated(), PAGE_SIZE);
        let c = mf.allocate(PAGE_SIZE).unwrap();
        assert!(c == a || c == a + PAGE_SIZE);
        let mut buf = [1u8; 5];
        mf.read(a + 100, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
    }

    #[test]
    fn adjacent_releases_coalesce() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let a = mf.allocate(4 * PAGE_SIZE).unwrap();
        let _guard = mf.allocate(PAGE_SIZE).unwrap();
        mf.release(a + PAGE_SIZE, PAGE_SIZE);
        mf.release(a, PAGE_SIZE);
        mf.release(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE);
        assert_eq!(mf.allocate(4 * PAGE_SIZE).unwrap(), a);
    }

    #[test]
    fn double_release_is_refused() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let a = mf.allocate(2 * PAGE_SIZE).unwrap();
        mf.release(a, PAGE_SIZE);
        mf.release(a, PAGE_SIZE);
        assert_eq!(mf.allocated(), PAGE_SIZE);
        let x = mf.allocate(PAGE_SIZE).unwrap();
        let y = mf.allocate(PAGE_SIZE).unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn out_of_bounds_access_is_an_error() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let mut buf = [0u8; 8];
        assert!(mf.read(0, &mut buf).is_err());
        mf.allocate(PAGE_SIZE).unwrap();
        assert!(mf.read(u64::MAX - 2, &mut buf).is_err());
        assert!(mf.read(mf.size() - 4, &mut buf).is_err());
        assert!(mf.write(mf.size() - 8, &buf).is_ok());
    }

    #[test]
    fn shared_pages_are_freed_with_their_last_reference() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let a = mf.allocate(4 * PAGE_SIZE).unwrap();
        mf.inc_ref(a + PAGE_SIZE, 2 * PAGE_SIZE);
        assert_eq!((mf.ref_count(a), mf.ref_count(a + PAGE_SIZE + 5)), (1, 2));
        assert_eq!(mf.shared_ranges(a, 4 * PAGE_SIZE), [(a + PAGE_SIZE, a + 3 * PAGE_SIZE)]);
        assert!(mf.any_shared(a + 2 * PAGE_SIZE, 1) && !mf.any_shared(a + 3 * PAGE_SIZE, PAGE_SIZE));
        mf.release(a, 4 * PAGE_SIZE);
        assert_eq!(mf.allocated(), 2 * PAGE_SIZE, "pages with another reference stay");
        assert_eq!(mf.ref_count(a + PAGE_SIZE), 1);
        mf.release(a + PAGE_SIZE, 2 * PAGE_SIZE);
        assert_eq!(mf.allocated(), 0);
    }

    #[test]
    fn copy_and_atomic_access() {
        let mf = MemoryFile::with_window(1 << 30).unwrap();
        let a = mf.allocate(2 * PAGE_SIZE).unwrap();
        mf.write(a + 8, &7u32.to_ne_bytes()).unwrap();
        mf.copy(a, a + PAGE_SIZE, PAGE_SIZE).unwrap();
        assert!(mf.copy(a, a + 8, 16).is_err(), "overlapping");
        let old = mf.atomic_u32(a + PAGE_SIZE + 8, |w| w.swap(9, Ordering::SeqCst)).unwrap();
        assert_eq!(old, 7);
        let mut b = [0u8; 4];
        mf.read(a + PAGE_SIZE + 8, &mut b).unwrap();
        assert_eq!(u32::from_ne_bytes(b), 9);
        assert!(mf.atomic_u32(a + 2, |_| ()).is_err(), "unaligned");
        assert!(mf.atomic_u32(mf.size(), |_| ()).is_err(), "out of bounds");
    }

    #[test]
    fn window_exhaustion_is_out_of_memory() {
        let mf = MemoryFile::with_window(4 * PAGE_SIZE).unwrap();
        mf.allocate(3 * PAGE_SIZE).unwrap();
        assert!(matches!(mf.allocate(2 * PAGE_SIZE), Err(MmError::OutOfMemory { .. })));
        mf.allocate(PAGE_SIZE).unwrap();
    }
}
