//! Demand paging: realising pages on first touch, guest page faults, stack growth.

use rvisor_platform::AccessType;

use super::cow::{break_cow, map_run};
use super::pma::{Lookup, Pma, PmaSet};
use super::vma::{permits, Backing, Vma};
use super::{
    page_down, page_up, FaultError, MemoryFile, MemoryManager, MmState, FAULT_AROUND_PAGES,
    MMAP_MIN_ADDR, PAGE_SIZE, STACK_GUARD_GAP,
};

/// Largest bounce buffer used to copy file contents into new pages.
const FILL_CHUNK: usize = 64 << 10;

/// Realises the unrealised page range `[start, end)` of `vma` in one memory-file
/// allocation (or, for a shared-memory object, with the object's pages) and records it in
/// `pmas`; returns the realised run that holds `need`. File-backed ranges stop at the last
/// page that holds file data, object-backed ones at the end of the object; `need` (an
/// address in the range) must be realised or the call fails with `BeyondEof`.
pub(super) fn realise(
    mf: &MemoryFile,
    pmas: &mut PmaSet,
    vma: &Vma,
    start: u64,
    mut end: u64,
    need: u64,
) -> Result<Pma, FaultError> {
    debug_assert!(start % PAGE_SIZE == 0 && end % PAGE_SIZE == 0 && start < end);
    debug_assert!(vma.start <= start && end <= vma.end);
    match &vma.backing {
        Backing::Anonymous => {
            let off = mf.allocate(end - start)?;
            pmas.insert(start, end, off);
            Ok(Pma { start, end, offset: off })
        }
        Backing::File { source, offset } => {
            let io = |errno| FaultError::Io { addr: need, errno };
            let size = source.size().map_err(io)?;
            // File offset of `start`; VMA creation checked that the VMA's range of file
            // offsets does not overflow.
            let file_start = offset.checked_add(start - vma.start).ok_or(FaultError::BeyondEof { addr: need })?;
            // Pages at or after this file offset hold no file data: SIGBUS, as in Linux.
            let eof_page = page_up(size).unwrap_or(u64::MAX - PAGE_SIZE + 1);
            let data_pages = eof_page.saturating_sub(file_start);
            end = end.min(start.saturating_add(data_pages));
            if page_down(need) >= end {
                return Err(FaultError::BeyondEof { addr: need });
            }
            let len = end - start;
            let off = mf.allocate(len)?;
            if let Err(e) = fill_from_file(mf, off, len, source.as_ref(), file_start) {
                mf.release(off, len);
                return Err(io(e));
            }
            pmas.insert(start, end, off);
            Ok(Pma { start, end, offset: off })
        }
        Backing::Shared { obj, offset } => {
            // Object offsets of `start` and of `need`'s page; VMA creation keeps the VMA's
            // range of object offsets from overflowing.
            let os = offset.checked_add(start - vma.start).ok_or(FaultError::BeyondEof { addr: need })?;
            let need_off = os.checked_add(page_down(need) - start).ok_or(FaultError::BeyondEof { addr: need })?;
            if need_off >= obj.len() {
                return Err(FaultError::BeyondEof { addr: need });
            }
            let runs = obj.get_runs(os, os.saturating_add(end - start))?;
            let mut found = None;
            for r in runs {
                let p = Pma { start: start + (r.start - os), end: start + (r.end - os), offset: r.offset };
                pmas.insert(p.start, p.end, p.offset);
                if p.start <= need && need < p.end {
                    found = Some(p);
                }
            }
            found.ok_or(FaultError::BeyondEof { addr: need })
        }
    }
}

/// Copies file bytes `[file_off, file_off+len)` into fresh (zero) memory-file pages at
/// `mf_off`; whatever lies beyond end-of-file stays zero.
fn fill_from_file(
    mf: &MemoryFile,
    mf_off: u64,
    len: u64,
    src: &dyn super::FileSource,
    file_off: u64,
) -> Result<(), rvisor_syscalls::Errno> {
    let mut buf = vec![0u8; (len as usize).min(FILL_CHUNK)];
    let mut pos = 0u64;
    while pos < len {
        let want = ((len - pos) as usize).min(buf.len());
        let mut got = 0;
        while got < want {
            let n = src.read_at(file_off + pos + got as u64, &mut buf[got..want])?;
            if n == 0 {
                break;
            }
            got += n.min(want - got);
        }
        mf.write(mf_off + pos, &buf[..got]).map_err(|e| e.errno())?;
        if got < want {
            break; // end of file: the rest of the fresh pages is already zero
        }
        pos += want as u64;
    }
    Ok(())
}

impl MemoryManager {
    /// Resolves a guest page fault at `addr`: realises the page (and up to
    /// [`FAULT_AROUND_PAGES`] - 1 unrealised neighbours in the same VMA, in one allocation)
    /// and maps the run into the address space with the VMA's permissions. A fault on a
    /// page that is already realised (e.g. by a syscall copy, or after mprotect) maps its
    /// whole realised run (within the VMA) again. A fault just below a growsdown VMA grows it.
    ///
    /// In a private VMA, pages shared with other address spaces (after fork) are mapped
    /// read-only; a write fault on one copies it into a fresh page first, or takes it over
    /// when no one else references it any more. The ptrace platform reports a first write
    /// to an unmapped page as a read, so such a write takes two faults: the read maps the
    /// shared page read-only, the write copies it.
    pub fn handle_fault(&self, addr: u64, access: AccessType) -> Result<(), FaultError> {
        if addr >= self.max_addr {
            return Err(FaultError::NoMapping { addr });
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.vmas.find(addr).is_none() && !grow_stack(st, addr) {
            return Err(FaultError::NoMapping { addr });
        }
        let vma = st.vmas.find(addr).ok_or(FaultError::NoMapping { addr })?;
        if !permits(vma.perms, access) {
            return Err(FaultError::AccessDenied { addr, access });
        }
        let page = page_down(addr);
        let window = FAULT_AROUND_PAGES * PAGE_SIZE;
        let win_start = (page & !(window - 1)).max(vma.start);
        let win_end = (page & !(window - 1)).saturating_add(window).min(vma.end);
        let run = match st.pmas.lookup(page) {
            Lookup::Realised(p) => p,
            Lookup::Hole { prev_end, next_start } => {
                let s = win_start.max(prev_end);
                let e = win_end.min(next_start);
                realise(&self.mf, &mut st.pmas, vma, s, e, addr)?
            }
        };
        if access == AccessType::Write && !vma.shared && self.mf.ref_count(run.offset_of(page)) > 1 {
            break_cow(&self.mf, &mut st.pmas, &*self.as_, vma, page, page + PAGE_SIZE)?;
            return Ok(());
        }
        // Map the whole realised run within the VMA: runs realised by syscall copies can be
        // large, and one platform call for all of it saves faults on the neighbours.
        let (s, e) = (run.start.max(vma.start), run.end.min(vma.end));
        let run = Pma { start: s, end: e, offset: run.offset_of(s) };
        map_run(&self.mf, &*self.as_, vma, run, (win_start, win_end))?;
        Ok(())
    }

    /// Realises and maps every page of `[start, end)` that lies in an accessible VMA
    /// (MAP_POPULATE). Stops quietly at holes, end-of-file or allocation failure, as Linux
    /// ignores populate errors.
    pub(super) fn populate_locked(&self, st: &mut MmState, start: u64, end: u64) {
        let mut cur = start;
        while cur < end {
            let Some(vma) = st.vmas.find(cur) else { return };
            let vend = vma.end.min(end);
            if vma.perms == rvisor_platform::Perms::NONE {
                cur = vend;
                continue;
            }
            let run = match st.pmas.lookup(cur) {
                Lookup::Realised(p) => p,
                Lookup::Hole { next_start, .. } => {
                    match realise(&self.mf, &mut st.pmas, vma, cur, vend.min(next_start), cur) {
                        Ok(p) => p,
                        Err(_) => return,
                    }
                }
            };
            let e = run.end.min(vend);
            let piece = Pma { start: cur, end: e, offset: run.offset_of(cur) };
            if let Err(err) = map_run(&self.mf, &*self.as_, vma, piece, (cur, e)) {
                tracing::warn!(error = %err, "MAP_POPULATE: mapping pages failed");
                return;
            }
            cur = e;
        }
    }
}

/// If `addr` lies just below a growsdown VMA, grows that VMA down to `addr`'s page, like
/// Linux's `expand_stack`: within RLIMIT_STACK, above MMAP_MIN_ADDR, and not into (or
/// within the guard gap of) the VMA below. Returns whether `addr` is now mapped.
pub(super) fn grow_stack(st: &mut MmState, addr: u64) -> bool {
    if addr < MMAP_MIN_ADDR {
        return false;
    }
    let Some(v) = st.vmas.next_above(addr) else { return false };
    if !v.growsdown {
        return false;
    }
    let new_start = page_down(addr);
    if v.end - new_start > st.stack_limit {
        return false;
    }
    if let Some(prev) = st.vmas.prev_below(v.start) {
        if prev.end > new_start {
            return false;
        }
        let accessible = prev.perms != rvisor_platform::Perms::NONE;
        if !prev.growsdown && accessible && new_start - prev.end < STACK_GUARD_GAP {
            return false;
        }
    }
    let old_start = v.start;
    let Some(grown) = v.with_start(new_start) else { return false };
    st.vmas.replace(old_start, grown);
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rvisor_platform::Perms;
    use rvisor_syscalls::flags::mman::*;
    use rvisor_syscalls::flags::signal::{SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGSEGV};

    use super::*;
    use crate::mm::testutil::{new_mm, AsCall, MemFile};
    use crate::mm::FileSource;

    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

    #[test]
    fn fault_on_anonymous_page_maps_one_contiguous_run_with_vma_perms() {
        let (mm, as_, _) = new_mm();
        let len = 64 * PAGE_SIZE;
        let a = mm.mmap(0, len, PROT_READ | PROT_WRITE, ANON, None).unwrap();
        let window = FAULT_AROUND_PAGES * PAGE_SIZE;
        // A fault in the middle of an aligned window realises and maps that whole window.
        let target = ((a + 20 * PAGE_SIZE) & !(window - 1)) + window + 5 * PAGE_SIZE + 123;
        mm.handle_fault(target, AccessType::Write).unwrap();
        let calls = as_.take();
        let [AsCall::Map { addr, len: l, perms, .. }] = calls.as_slice() else { panic!("{calls:?}") };
        assert_eq!((*addr, *l, *perms), (page_down(target) - 5 * PAGE_SIZE, window, Perms::RW));
        assert_eq!(mm.realised_bytes(), window);
        // The page just above the window starts a new run.
        mm.handle_fault(addr + window, AccessType::Read).unwrap();
        let calls = as_.take();
        let [AsCall::Map { addr: a2, len: l2, .. }] = calls.as_slice() else { panic!("{calls:?}") };
        assert_eq!((*a2, *l2), (addr + window, (a + len - (addr + window)).min(window)));
    }

    #[test]
    fn fault_around_stays_inside_the_vma_and_stops_at_realised_pages() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0x4000_3000, 3 * PAGE_SIZE, PROT_READ, ANON | MAP_FIXED, None).unwrap();
        mm.handle_fault(a + PAGE_SIZE, AccessType::Read).unwrap();
        assert_eq!(as_.take().len(), 1);
        assert_eq!(mm.realised_bytes(), 3 * PAGE_SIZE);

        let b = mm.mmap(0x5000_0000, 16 * PAGE_SIZE, PROT_READ | PROT_WRITE, ANON | MAP_FIXED, None).unwrap();
        mm.copy_out(b + 8 * PAGE_SIZE, b"x").unwrap(); // realises page 8 only
        as_.take();
        mm.handle_fault(b + 3 * PAGE_SIZE, AccessType::Write).unwrap();
        let calls = as_.take();
        let [AsCall::Map { addr, len, .. }] = calls.as_slice() else { panic!("{calls:?}") };
        assert_eq!((*addr, *len), (b, 8 * PAGE_SIZE));
    }

    #[test]
    fn spurious_fault_on_a_realised_page_maps_the_same_memory_again() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, ANON, None).unwrap();
        mm.handle_fault(a, AccessType::Write).unwrap();
        mm.handle_fault(a + 8, AccessType::Write).unwrap();
        let calls = as_.take();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], calls[1]);
        assert_eq!(mm.realised_bytes(), PAGE_SIZE);
    }

    #[test]
    fn fault_on_pages_realised_by_a_syscall_maps_their_whole_run_within_the_vma() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, 100 * PAGE_SIZE, PROT_READ | PROT_WRITE, ANON, None).unwrap();
        mm.copy_out(a, &vec![1u8; 100 * PAGE_SIZE as usize]).unwrap();
        mm.mprotect(a + 60 * PAGE_SIZE, 40 * PAGE_SIZE, PROT_READ).unwrap();
        as_.take();
        mm.handle_fault(a + 50 * PAGE_SIZE, AccessType::Write).unwrap();
        let calls = as_.take();
        let [AsCall::Map { addr, len, perms, .. }] = calls.as_slice() else { panic!("{calls:?}") };
        assert_eq!((*addr, *len, *perms), (a, 60 * PAGE_SIZE, Perms::RW));
        assert_eq!(mm.realised_bytes(), 100 * PAGE_SIZE);
    }

    #[test]
    fn faults_outside_vmas_or_against_permissions_are_segv() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, 2 * PAGE_SIZE, PROT_READ, ANON, None).unwrap();
        let n = mm.mmap(0, PAGE_SIZE, PROT_NONE, ANON, None).unwrap();
        let e = mm.handle_fault(a + 2 * PAGE_SIZE, AccessType::Read).unwrap_err();
        assert_eq!((e.signo(), e.si_code()), (SIGSEGV, SEGV_MAPERR));
        let e = mm.handle_fault(0, AccessType::Read).unwrap_err();
        assert_eq!(e.si_code(), SEGV_MAPERR);
        let e = mm.handle_fault(u64::MAX, AccessType::Read).unwrap_err();
        assert_eq!(e.si_code(), SEGV_MAPERR);
        let e = mm.handle_fault(a, AccessType::Write).unwrap_err();
        assert_eq!((e.signo(), e.si_code()), (SIGSEGV, SEGV_ACCERR));
        let e = mm.handle_fault(a, AccessType::Exec).unwrap_err();
        assert_eq!(e.si_code(), SEGV_ACCERR);
        let e = mm.handle_fault(n, AccessType::Read).unwrap_err();
        assert_eq!(e.si_code(), SEGV_ACCERR);
        assert!(as_.take().is_empty());
        assert_eq!(mm.realised_bytes(), 0);
    }

    #[test]
    fn private_file_pages_hold_file_data_then_zeros_and_sigbus_past_eof() {
        let (mm, as_, _) = new_mm();
        let data: Vec<u8> = (0..2 * PAGE_SIZE as usize + 100).map(|i| (i % 251) as u8).collect();
        let f: Arc<dyn FileSource> = Arc::new(MemFile(data.clone()));
        // At the start of a fault-around window, so the window covers the whole file.
        let at = 0x1000_0000;
        let a = mm.mmap(at, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, Some((f.clone(), PAGE_SIZE))).unwrap();
        mm.handle_fault(a, AccessType::Read).unwrap();
        let calls = as_.take();
        let [AsCall::Map { addr, len, .. }] = calls.as_slice() else { panic!("{calls:?}") };
        assert_eq!((*addr, *len), (a, 2 * PAGE_SIZE), "realised up to the page holding EOF");
        let mut buf = vec![0u8; 2 * PAGE_SIZE as usize];
        mm.copy_in(a, &mut buf).unwrap();
        assert_eq!(&buf[..PAGE_SIZE as usize + 100], &data[PAGE_SIZE as usize..]);
        assert!(buf[PAGE_SIZE as usize + 100..].iter().all(|&b| b == 0));
        let e = mm.handle_fault(a + 2 * PAGE_SIZE, AccessType::Read).unwrap_err();
        assert_eq!(e.signo(), SIGBUS);
        assert_eq!(mm.copy_in(a + 2 * PAGE_SIZE, &mut buf[..1]), Err(rvisor_syscalls::Errno::EFAULT));
        // Writes stay private to the mapping.
        mm.copy_out(a, b"changed").unwrap();
        let mut b = [0u8; 7];
        mm.copy_in(a, &mut b).unwrap();
        assert_eq!(&b, b"changed");
        let mut orig = [0u8; 7];
        f.read_at(PAGE_SIZE, &mut orig).unwrap();
        assert_eq!(orig, data[PAGE_SIZE as usize..PAGE_SIZE as usize + 7], "the file is unchanged");
    }

    #[test]
    fn a_fault_just_below_the_stack_grows_it_within_the_limit() {
        let (mm, as_, _) = new_mm();
        let top = 0x7000_0000_0000;
        let s = mm
            .mmap(top - 4 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, ANON | MAP_FIXED | MAP_GROWSDOWN, None)
            .unwrap();
        mm.handle_fault(s - 100, AccessType::Write).unwrap();
        let v = mm.vmas_snapshot();
        assert_eq!((v[0].start, v[0].end), (s - PAGE_SIZE, top));
        assert!(matches!(as_.take().as_slice(), [AsCall::Map { .. }]));
        mm.handle_fault(top - (3 << 20), AccessType::Read).unwrap();
        assert_eq!(mm.vmas_snapshot()[0].start, top - (3 << 20));
        let e = mm.handle_fault(top - (8 << 20) - 1, AccessType::Read).unwrap_err();
        assert_eq!(e.si_code(), SEGV_MAPERR, "beyond RLIMIT_STACK");
        mm.set_stack_limit(64 << 20);
        // Another mapping below (with the guard gap) stops growth.
        mm.mmap(top - (10 << 20), PAGE_SIZE, PROT_READ, ANON | MAP_FIXED, None).unwrap();
        let e = mm.handle_fault(top - (9 << 20) - 1, AccessType::Read).unwrap_err();
        assert_eq!(e.si_code(), SEGV_MAPERR);
        mm.handle_fault(top - (9 << 20) + PAGE_SIZE, AccessType::Read).unwrap();
    }
}
