//! Copying between sentry buffers and guest memory, for syscalls.
//!
//! Every routine takes the address-space lock once, walks the VMAs and realised runs
//! covering the range and moves whole contiguous runs with one memory-file copy. Pages not
//! realised yet are realised on the way, like the kernel's fault-in, except that reading an
//! untouched anonymous page yields zeros without allocating (Linux maps its zero page).
//! Nothing needs mapping into the platform address space: the guest's own next touch
//! faults and maps the (already realised) page. Writes to copy-on-write pages copy them
//! first (and map the copies, replacing the address space's read-only mapping of the
//! shared page).

use std::ops::ControlFlow;

use rvisor_platform::AccessType;
use rvisor_syscalls::{Errno, Pod};

use super::cow::break_cow;
use super::fault::{grow_stack, realise};
use super::pma::Lookup;
use super::vma::{permits, Backing};
use super::{page_down, page_up, MemoryManager, MmState, PAGE_SIZE};

impl MemoryManager {
    /// Checks that `[addr, addr+len)` is a plausible user range: no wrap-around, nothing at
    /// or above `max_addr`.
    pub(super) fn check_range(&self, addr: u64, len: u64) -> Result<u64, Errno> {
        match addr.checked_add(len) {
            Some(end) if end <= self.max_addr => Ok(end),
            _ => Err(Errno::EFAULT),
        }
    }

    /// Walks `[addr, end)` for `access`. `f(offset, pos, n)` is called for each piece of
    /// `n` bytes at distance `pos` from `addr`, with the piece's memory-file offset, or
    /// `None` for an untouched anonymous range when `realise_anon` is false. `f` may stop
    /// the walk early. EFAULT if some page is outside every VMA (after stack growth), not
    /// accessible, or beyond the end of a mapped file.
    pub(super) fn walk<F>(&self, st: &mut MmState, addr: u64, end: u64, access: AccessType, realise_anon: bool, mut f: F) -> Result<(), Errno>
    where
        F: FnMut(Option<u64>, u64, u64) -> Result<ControlFlow<()>, Errno>,
    {
        let mut cur = addr;
        while cur < end {
            if st.vmas.find(cur).is_none() && !grow_stack(st, cur) {
                return Err(Errno::EFAULT);
            }
            let vma = st.vmas.find(cur).ok_or(Errno::EFAULT)?;
            if !permits(vma.perms, access) {
                return Err(Errno::EFAULT);
            }
            let seg_end = end.min(vma.end);
            while cur < seg_end {
                let (off, n) = match st.pmas.lookup(cur) {
                    Lookup::Realised(p) => {
                        let n = p.end.min(seg_end) - cur;
                        if access == AccessType::Write && !vma.shared {
                            // Runs end on page boundaries, so this stays inside `p`.
                            let s = page_down(cur);
                            let e = page_up(cur + n).ok_or(Errno::EFAULT)?;
                            if self.mf.any_shared(p.offset_of(s), e - s) {
                                break_cow(&self.mf, &mut st.pmas, &*self.as_, vma, s, e).map_err(|e| e.errno())?;
                                continue;
                            }
                        }
                        (Some(p.offset_of(cur)), n)
                    }
                    Lookup::Hole { next_start, .. } => {
                        let hole_end = seg_end.min(next_start);
                        if !realise_anon && matches!(vma.backing, Backing::Anonymous) {
                            (None, hole_end - cur)
                        } else {
                            // Both bounds are page-aligned or inside the hole's last page,
                            // which `page_up` keeps below the VMA end and the next run.
                            let s = page_down(cur);
                            let e = page_up(hole_end).ok_or(Errno::EFAULT)?;
                            realise(&self.mf, &mut st.pmas, vma, s, e, cur).map_err(|e| e.errno())?;
                            continue;
                        }
                    }
                };
                if f(off, cur - addr, n)?.is_break() {
                    return Ok(());
                }
                cur += n;
            }
        }
        Ok(())
    }

    /// Copies guest memory at `addr` into `buf`. EFAULT unless every byte lies in a VMA
    /// that permits reading.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = self.check_range(addr, buf.len() as u64)?;
        let mut st = self.lock();
        let mf = &self.mf;
        self.walk(&mut st, addr, end, AccessType::Read, false, |off, pos, n| {
            let dst = &mut buf[pos as usize..(pos + n) as usize];
            match off {
                Some(off) => mf.read(off, dst).map_err(|e| e.errno())?,
                None => dst.fill(0),
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Copies `buf` into guest memory at `addr`. EFAULT unless every byte lies in a VMA
    /// that permits writing; bytes before a faulting page are written, as in Linux.
    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = self.check_range(addr, buf.len() as u64)?;
        let mut st = self.lock();
        let mf = &self.mf;
        self.walk(&mut st, addr, end, AccessType::Write, true, |off, pos, n| {
            let src = &buf[pos as usize..(pos + n) as usize];
            if let Some(off) = off {
                mf.write(off, src).map_err(|e| e.errno())?;
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Sets `len` bytes of guest memory at `addr` to zero (needs write permission).
    /// Untouched anonymous pages already read as zero and stay unrealised.
    pub fn zero(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = self.check_range(addr, len)?;
        let mut st = self.lock();
        let mf = &self.mf;
        self.walk(&mut st, addr, end, AccessType::Write, false, |off, _pos, n| {
            if let Some(off) = off {
                mf.zero(off, n).map_err(|e| e.errno())?;
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Reads a `T` from guest memory.
    pub fn read_obj<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut v = T::zeroed();
        // SAFETY: `v` is a live, exclusively borrowed `T`; `Pod` guarantees that it has no
        // padding and that every bit pattern copy_in may write is a valid `T`.
        let bytes = unsafe { std::slice::from_raw_parts_mut((&mut v as *mut T).cast::<u8>(), std::mem::size_of::<T>()) };
        self.copy_in(addr, bytes)?;
        Ok(v)
    }

    /// Writes `v` to guest memory.
    pub fn write_obj<T: Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.copy_out(addr, v.as_bytes())
    }

    /// Reads a NUL-terminated string of at most `max_len` bytes including the NUL, and
    /// returns it without the NUL. ENAMETOOLONG if no NUL is within `max_len` bytes,
    /// EFAULT if memory before the NUL is not readable. Memory after the NUL is never
    /// required to be mapped.
    pub fn copy_in_cstring(&self, addr: u64, max_len: usize) -> Result<Vec<u8>, Errno> {
        if addr >= self.max_addr {
            return Err(Errno::EFAULT);
        }
        // Clip the walk at the end of the address space: a short string near the top is
        // fine; running into the end without a NUL is EFAULT.
        let end = addr.saturating_add(max_len as u64).min(self.max_addr);
        let mut out: Vec<u8> = Vec::new();
        let mut found = false;
        let mut st = self.lock();
        let mf = &self.mf;
        self.walk(&mut st, addr, end, AccessType::Read, false, |off, pos, n| {
            // Look at one page at a time so a short string costs one small copy.
            let mut done = 0;
            while done < n {
                let here = addr + pos + done;
                let chunk = (PAGE_SIZE - here % PAGE_SIZE).min(n - done);
                let old = out.len();
                out.resize(old + chunk as usize, 0);
                if let Some(off) = off {
                    mf.read(off + done, &mut out[old..]).map_err(|e| e.errno())?;
                }
                if let Some(i) = out[old..].iter().position(|&b| b == 0) {
                    out.truncate(old + i);
                    found = true;
                    return Ok(ControlFlow::Break(()));
                }
                done += chunk;
            }
            Ok(ControlFlow::Continue(()))
        })?;
        match () {
            _ if found => Ok(out),
            _ if out.len() >= max_len => Err(Errno::ENAMETOOLONG),
            _ => Err(Errno::EFAULT),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rvisor_syscalls::flags::mman::*;
    use rvisor_syscalls::types::Timespec;

    use super::*;
    use crate::mm::testutil::{new_mm, MemFile, MAX_ADDR};
    use crate::mm::FileSource;

    const RW: u32 = PROT_READ | PROT_WRITE;
    const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

    #[test]
    fn copy_out_then_copy_in_round_trips_across_pages_and_runs() {
        let (mm, as_, _) = new_mm();
        let a = mm.mmap(0, 64 * PAGE_SIZE, RW, ANON, None).unwrap();
        // Realise a page in the middle so the copy crosses realised and unrealised runs.
        mm.handle_fault(a + 20 * PAGE_SIZE, rvisor_platform::AccessType::Write).unwrap();
        as_.take();
        let data: Vec<u8> = (0..40 * PAGE_SIZE as usize + 77).map(|i| (i * 7 % 256) as u8).collect();
        let at = a + 3 * PAGE_SIZE - 33;
        mm.copy_out(at, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        mm.copy_in(at, &mut back).unwrap();
        assert_eq!(back, data);
        assert!(as_.take().is_empty(), "syscall copies do not map into the address space");
        let mut edge = [0xffu8; 64];
        mm.copy_in(at - 32, &mut edge).unwrap();
        assert_eq!(&edge[..32], &[0; 32]);
        assert_eq!(&edge[32..], &data[..32]);
    }

    #[test]
    fn reading_untouched_anonymous_memory_gives_zeros_without_allocating() {
        let (mm, _, mf) = new_mm();
        let a = mm.mmap(0, 16 * PAGE_SIZE, RW, ANON, None).unwrap();
        let mut buf = vec![0xaau8; 10 * PAGE_SIZE as usize];
        mm.copy_in(a + 5, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        mm.zero(a, 16 * PAGE_SIZE).unwrap();
        assert_eq!(mm.realised_bytes(), 0);
        assert_eq!(mf.allocated(), 0);
    }

    #[test]
    fn bad_guest_ranges_are_efault() {
        let (mm, _, _) = new_mm();
        let ro = mm.mmap(0, 2 * PAGE_SIZE, PROT_READ, ANON, None).unwrap();
        let none = mm.mmap(0, PAGE_SIZE, PROT_NONE, ANON, None).unwrap();
        let rw = mm.mmap(0, PAGE_SIZE, RW, ANON, None).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(mm.copy_in(0, &mut b), Err(Errno::EFAULT));
        assert_eq!(mm.copy_out(0, &b), Err(Errno::EFAULT));
        assert_eq!(mm.copy_in(u64::MAX - 4, &mut b), Err(Errno::EFAULT), "wrap-around");
        assert_eq!(mm.copy_in(MAX_ADDR - 8, &mut b), Err(Errno::EFAULT), "beyond max_addr");
        assert_eq!(mm.copy_in(0x5000_0000, &mut b), Err(Errno::EFAULT), "unmapped");
        assert_eq!(mm.copy_out(ro, &b), Err(Errno::EFAULT), "read-only");
        assert_eq!(mm.copy_in(none, &mut b), Err(Errno::EFAULT), "PROT_NONE");
        assert_eq!(mm.zero(ro, 1), Err(Errno::EFAULT));
        mm.copy_in(ro + PAGE_SIZE, &mut b).unwrap();
        // A copy running off the end of a mapping fails, having written what came before.
        mm.copy_out(rw + PAGE_SIZE - 8, &[5u8; 16]).unwrap_err();
        let mut last = [0u8; 8];
        mm.copy_in(rw + PAGE_SIZE - 8, &mut last).unwrap();
        assert_eq!(last, [5; 8]);
        // Empty copies never fault.
        mm.copy_in(0, &mut []).unwrap();
        mm.copy_out(u64::MAX, &[]).unwrap();
    }

    #[test]
    fn sixty_four_mib_written_by_copy_out_reads_back() {
        let (mm, _, _) = new_mm();
        let len = 64usize << 20;
        let a = mm.mmap(0, len as u64, RW, ANON, None).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect();
        mm.copy_out(a, &data).unwrap();
        let mut back = vec![0u8; len];
        mm.copy_in(a, &mut back).unwrap();
        assert!(back == data);
        assert_eq!(mm.realised_bytes(), len as u64);
    }

    #[test]
    fn cstrings_are_read_up_to_the_nul() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, 2 * PAGE_SIZE, RW, ANON, None).unwrap();
        mm.copy_out(a, b"/bin/sh\0rest").unwrap();
        assert_eq!(mm.copy_in_cstring(a, 4096).unwrap(), b"/bin/sh");
        assert_eq!(mm.copy_in_cstring(a, 8).unwrap(), b"/bin/sh");
        assert_eq!(mm.copy_in_cstring(a, 7), Err(Errno::ENAMETOOLONG));
        assert_eq!(mm.copy_in_cstring(a + 7, 10).unwrap(), b"");
        // A string ending right before unmapped memory is fine; one running into it is not.
        let end = a + 2 * PAGE_SIZE;
        mm.copy_out(end - 4, b"abc\0").unwrap();
        assert_eq!(mm.copy_in_cstring(end - 4, 4096).unwrap(), b"abc");
        mm.copy_out(end - 4, b"abcd").unwrap();
        assert_eq!(mm.copy_in_cstring(end - 4, 4096), Err(Errno::EFAULT));
        assert_eq!(mm.copy_in_cstring(end - 4, 4), Err(Errno::ENAMETOOLONG));
        // Across a page boundary.
        let s = vec![b'x'; 5000];
        mm.copy_out(a + 10, &s).unwrap();
        mm.copy_out(a + 5010, b"\0").unwrap();
        assert_eq!(mm.copy_in_cstring(a + 10, 8192).unwrap(), s);
        assert_eq!(mm.copy_in_cstring(0, 10), Err(Errno::EFAULT));
        assert_eq!(mm.copy_in_cstring(u64::MAX, 10), Err(Errno::EFAULT));
    }

    #[test]
    fn objects_round_trip() {
        let (mm, _, _) = new_mm();
        let a = mm.mmap(0, PAGE_SIZE, RW, ANON, None).unwrap();
        let ts = Timespec { tv_sec: 12, tv_nsec: 345 };
        mm.write_obj(a + PAGE_SIZE - 8, &7u64).unwrap();
        mm.write_obj(a + 3, &ts).unwrap();
        assert_eq!(mm.read_obj::<Timespec>(a + 3).unwrap(), ts);
        assert_eq!(mm.read_obj::<u64>(a + PAGE_SIZE - 8).unwrap(), 7);
        assert_eq!(mm.read_obj::<u64>(a + PAGE_SIZE - 4), Err(Errno::EFAULT));
    }

    #[test]
    fn zero_clears_file_backed_and_realised_memory() {
        let (mm, _, _) = new_mm();
        let f: Arc<dyn FileSource> = Arc::new(MemFile(vec![0x11; 3 * PAGE_SIZE as usize]));
        let a = mm.mmap(0, 3 * PAGE_SIZE, RW, MAP_PRIVATE, Some((f, 0))).unwrap();
        mm.zero(a + 100, 2 * PAGE_SIZE).unwrap();
        let mut buf = vec![0u8; 3 * PAGE_SIZE as usize];
        mm.copy_in(a, &mut buf).unwrap();
        assert!(buf[..100].iter().all(|&b| b == 0x11));
        assert!(buf[100..100 + 2 * PAGE_SIZE as usize].iter().all(|&b| b == 0));
        assert!(buf[100 + 2 * PAGE_SIZE as usize..].iter().all(|&b| b == 0x11));
    }

    #[test]
    fn copy_out_just_below_the_stack_grows_it() {
        let (mm, _, _) = new_mm();
        let top = 0x7000_0000_0000;
        mm.mmap(top - PAGE_SIZE, PAGE_SIZE, RW, ANON | MAP_FIXED | MAP_GROWSDOWN, None).unwrap();
        mm.copy_out(top - PAGE_SIZE - 16, &[1u8; 32]).unwrap();
        assert_eq!(mm.vmas_snapshot()[0].start, top - 2 * PAGE_SIZE);
    }
}
