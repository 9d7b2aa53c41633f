//! Virtual memory areas: what the guest has mapped, independent of which pages exist.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rvisor_platform::{AccessType, Perms};

use super::shm::SharedMemory;
use super::FileSource;

/// What a VMA's pages are made from when first touched.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled memory.
    Anonymous,
    /// A private copy of a file's contents; `offset` is the file offset of the VMA's start.
    File { source: Arc<dyn FileSource>, offset: u64 },
    /// Pages of a shared-memory object (MAP_SHARED anonymous memory); `offset` is the
    /// object offset of the VMA's start.
    Shared { obj: Arc<SharedMemory>, offset: u64 },
}

impl Backing {
    /// The file or object offset of the VMA's start, for backings that have one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Backing::Anonymous => None,
            Backing::File { offset, .. } | Backing::Shared { offset, .. } => Some(*offset),
        }
    }

    fn offset_mut(&mut self) -> Option<&mut u64> {
        match self {
            Backing::Anonymous => None,
            Backing::File { offset, .. } | Backing::Shared { offset, .. } => Some(offset),
        }
    }
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Anonymous => f.write_str("Anonymous"),
            Backing::File { offset, .. } => write!(f, "File {{ offset: {offset:#x} }}"),
            Backing::Shared { obj, offset } => write!(f, "Shared {{ len: {:#x}, offset: {offset:#x} }}", obj.len()),
        }
    }
}

/// One virtual memory area `[start, end)`.
#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    /// The most `mprotect` may grant.
    pub max_perms: Perms,
    /// MAP_SHARED (pages are never copied on fork) rather than MAP_PRIVATE.
    pub shared: bool,
    /// MAP_GROWSDOWN: a fault just below the VMA extends it (the stack).
    pub growsdown: bool,
    pub backing: Backing,
    /// What /proc/pid/maps shows in the path column ("[heap]", "[stack]", a file path).
    pub name: Option<Arc<str>>,
    /// MADV_DONTFORK: not copied into a forked child.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: a forked child gets the VMA with fresh zero pages.
    pub wipeonfork: bool,
    /// mlock/MAP_LOCKED/mlockall: counted as locked memory (VmLck).
    pub locked: bool,
}

impl Vma {
    /// A VMA with no flags set beyond those given.
    pub fn new(start: u64, end: u64, perms: Perms, shared: bool, backing: Backing) -> Vma {
        Vma {
            start,
            end,
            perms,
            max_perms: Perms::RWX,
            shared,
            growsdown: false,
            backing,
            name: None,
            dontfork: false,
            wipeonfork: false,
            locked: false,
        }
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true for a VMA in a `VmaSet`.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `self` and the VMA that starts at `self.end` can become one VMA.
    fn mergeable_with(&self, next: &Vma) -> bool {
        if self.end != next.start
            || self.perms != next.perms
            || self.max_perms != next.max_perms
            || self.shared
            || next.shared
            || self.growsdown != next.growsdown
            || self.name != next.name
            || self.dontfork != next.dontfork
            || self.wipeonfork != next.wipeonfork
            || self.locked != next.locked
        {
            return false;
        }
        match (&self.backing, &next.backing) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (Backing::File { source: a, offset: ao }, Backing::File { source: b, offset: bo }) => {
                Arc::ptr_eq(a, b) && ao.checked_add(self.len()) == Some(*bo)
            }
            (Backing::Shared { obj: a, offset: ao }, Backing::Shared { obj: b, offset: bo }) => {
                Arc::ptr_eq(a, b) && ao.checked_add(self.len()) == Some(*bo)
            }
            _ => false,
        }
    }

    /// Moves the start of the VMA to `new_start` (inside or below it), keeping the file
    /// offset of every address the same. None if the file offset would underflow.
    pub(super) fn with_start(&self, new_start: u64) -> Option<Vma> {
        let mut v = self.clone();
        if let Some(offset) = v.backing.offset_mut() {
            *offset = if new_start >= self.start {
                offset.checked_add(new_start - self.start)?
            } else {
                offset.checked_sub(self.start - new_start)?
            };
        }
        v.start = new_start;
        Some(v)
    }
}

/// Whether a VMA with `perms` allows an access, as x86 page tables do: write implies
/// read, exec does not (the host may make exec-only pages unreadable with protection keys).
pub fn permits(perms: Perms, access: AccessType) -> bool {
    match access {
        AccessType::Read => perms.read || perms.write,
        AccessType::Write => perms.write,
        AccessType::Exec => perms.exec,
    }
}

/// The VMAs of an address space, ordered by start address, non-overlapping.
#[derive(Clone, Debug, Default)]
pub struct VmaSet {
    map: BTreeMap<u64, Vma>,
}

impl VmaSet {
    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        let (_, v) = self.map.range(..=addr).next_back()?;
        (addr < v.end).then_some(v)
    }

    /// The first VMA that starts above `addr`.
    pub fn next_above(&self, addr: u64) -> Option<&Vma> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.map.range((Excluded(addr), Unbounded)).next().map(|(_, v)| v)
    }

    /// The last VMA that starts below `addr`.
    pub fn prev_below(&self, addr: u64) -> Option<&Vma> {
        self.map.range(..addr).next_back().map(|(_, v)| v)
    }

    /// VMAs intersecting `[start, end)`, in order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = match self.find(start) {
            Some(v) => v.start,
            None => start,
        };
        self.map.range(first..end).map(|(_, v)| v).filter(move |v| v.end > start)
    }

    /// Whether nothing is mapped in `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_none()
    }

    /// Whether every address in `[start, end)` is inside some VMA.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut cur = start;
        for v in self.overlapping(start, end) {
            if v.start > cur {
                return false;
            }
            cur = v.end;
            if cur >= end {
                return true;
            }
        }
        cur >= end
    }

    /// Splits the VMA containing `addr` (if any, and not at its start) in two at `addr`.
    pub fn split_at(&mut self, addr: u64) {
        let Some(v) = self.find(addr) else { return };
        if v.start == addr {
            return;
        }
        let Some(upper) = v.with_start(addr) else { return };
        let lower_start = v.start;
        if let Some(lower) = self.map.get_mut(&lower_start) {
            lower.end = addr;
        }
        self.map.insert(addr, upper);
    }

    /// Removes and returns the parts of VMAs inside `[start, end)`.
    pub fn remove_range(&mut self, start: u64, end: u64) -> Vec<Vma> {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter().filter_map(|k| self.map.remove(&k)).collect()
    }

    /// Applies `f` to every VMA inside `[start, end)` after splitting at the bounds, then
    /// merges what became mergeable.
    pub fn update_range(&mut self, start: u64, end: u64, mut f: impl FnMut(&mut Vma)) {
        self.split_at(start);
        self.split_at(end);
        for (_, v) in self.map.range_mut(start..end) {
            f(v);
        }
        self.merge_around(start, end);
    }

    /// Inserts `vma`, which must not overlap any VMA, merging it with its neighbours.
    pub fn insert(&mut self, vma: Vma) {
        let (start, end) = (vma.start, vma.end);
        debug_assert!(self.is_free(start, end), "overlapping VMA insert");
        self.map.insert(start, vma);
        self.merge_around(start, end);
    }

    /// Replaces the VMA starting at `old_start` by `vma` (used to grow a VMA in place).
    pub fn replace(&mut self, old_start: u64, vma: Vma) {
        self.map.remove(&old_start);
        self.insert(vma);
    }

    /// Merges mergeable neighbours among the VMAs touching `[start, end]`.
    fn merge_around(&mut self, start: u64, end: u64) {
        let from = self.prev_below(start).map_or(start, |v| v.start);
        let keys: Vec<u64> = self.map.range(from..=end).map(|(&k, _)| k).collect();
        let mut cur: Option<u64> = None;
        for k in keys {
            if let Some(c) = cur {
                let merge = match (self.map.get(&c), self.map.get(&k)) {
                    (Some(a), Some(b)) => a.mergeable_with(b),
                    _ => false,
                };
                if merge {
                    if let Some(b) = self.map.remove(&k) {
                        if let Some(a) = self.map.get_mut(&c) {
                            a.end = b.end;
                        }
                    }
                    continue;
                }
            }
            cur = Some(k);
        }
    }

    /// The highest `len`-byte gap inside `[lo, hi)` whose start is a multiple of `align`
    /// (a power of two ≥ the page size), keeping `guard` bytes below growsdown VMAs.
    pub fn find_gap_topdown(&self, len: u64, lo: u64, hi: u64, align: u64, guard: u64) -> Option<u64> {
        let mut gap_end = hi;
        for (_, v) in self.map.range(..hi).rev() {
            if v.end < gap_end {
                let floor = v.end.max(lo);
                if let Some(c) = Self::fit(floor, gap_end, len, align) {
                    return Some(c);
                }
            }
            let below = if v.growsdown { v.start.saturating_sub(guard) } else { v.start };
            gap_end = gap_end.min(below);
            if gap_end <= lo {
                return None;
            }
        }
        Self::fit(lo, gap_end, len, align)
    }

    /// The highest aligned `len`-byte range in `[floor, ceil)`.
    fn fit(floor: u64, ceil: u64, len: u64, align: u64) -> Option<u64> {
        let c = ceil.checked_sub(len)? & !(align - 1);
        (c >= floor).then_some(c)
    }

    /// All VMAs in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.map.values()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64, perms: Perms) -> Vma {
        Vma::new(start, end, perms, false, Backing::Anonymous)
    }

    #[test]
    fn adjacent_equal_vmas_merge_and_splits_keep_the_rest() {
        let mut s = VmaSet::default();
        s.insert(anon(0x1000, 0x3000, Perms::RW));
        s.insert(anon(0x3000, 0x5000, Perms::RW));
        assert_eq!(s.len(), 1);
        s.update_range(0x2000, 0x3000, |v| v.perms = Perms::R);
        let r: Vec<_> = s.iter().map(|v| (v.start, v.end, v.perms)).collect();
        assert_eq!(r, [(0x1000, 0x2000, Perms::RW), (0x2000, 0x3000, Perms::R), (0x3000, 0x5000, Perms::RW)]);
        s.update_range(0x2000, 0x3000, |v| v.perms = Perms::RW);
        assert_eq!(s.len(), 1);
        let removed = s.remove_range(0x2000, 0x4000);
        assert_eq!(removed.len(), 1);
        assert!(s.covers(0x1000, 0x2000) && !s.covers(0x1000, 0x3000));
        assert!(s.is_free(0x2000, 0x4000));
    }

    #[test]
    fn topdown_gap_search_respects_bounds_alignment_and_guard() {
        let mut s = VmaSet::default();
        s.insert(anon(0x10000, 0x20000, Perms::RW));
        let mut stack = anon(0x40000, 0x50000, Perms::RW);
        stack.growsdown = true;
        s.insert(stack);
        assert_eq!(s.find_gap_topdown(0x1000, 0x1000, 0x60000, 0x1000, 0x8000), Some(0x5f000));
        assert_eq!(s.find_gap_topdown(0x1000, 0x1000, 0x50000, 0x1000, 0x8000), Some(0x37000));
        assert_eq!(s.find_gap_topdown(0x20000, 0x1000, 0x50000, 0x1000, 0x8000), None);
        assert_eq!(s.find_gap_topdown(0x20000, 0x1000, 0x50000, 0x1000, 0), Some(0x20000));
        assert_eq!(s.find_gap_topdown(0x8000, 0x1000, 0x50000, 0x10000, 0), Some(0x30000));
        assert_eq!(s.find_gap_topdown(0xf000, 0x1000, 0x10000, 0x1000, 0), Some(0x1000));
    }
}
