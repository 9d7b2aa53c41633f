//! Realised pages: which guest page ranges already have memory-file pages behind them.
//!
//! A run of guest pages realised together (fault-around, a syscall copy) is one entry
//! `[start, end) → [offset, offset + (end - start))` of the memory file, so the copy paths
//! move large contiguous chunks and the platform maps a run with one call.

use std::collections::BTreeMap;

/// One realised run of guest pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pma {
    pub start: u64,
    pub end: u64,
    /// Memory-file offset of `start`.
    pub offset: u64,
}

impl Pma {
    /// Memory-file offset of guest address `addr` (inside the run).
    pub fn offset_of(&self, addr: u64) -> u64 {
        self.offset + (addr - self.start)
    }
}

/// Result of looking up an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The address is realised by this run.
    Realised(Pma),
    /// Not realised; the realised run before it ends at `prev_end` (0 if none) and the next
    /// one starts at `next_start` (`u64::MAX` if none).
    Hole { prev_end: u64, next_start: u64 },
}

/// The realised pages of one address space.
#[derive(Clone, Debug, Default)]
pub struct PmaSet {
    /// start → (end, offset)
    map: BTreeMap<u64, (u64, u64)>,
}

impl PmaSet {
    pub fn lookup(&self, addr: u64) -> Lookup {
        let mut prev_end = 0;
        if let Some((&s, &(e, o))) = self.map.range(..=addr).next_back() {
            if addr < e {
                return Lookup::Realised(Pma { start: s, end: e, offset: o });
            }
            prev_end = e;
        }
        let next_start = self.map.range(addr..).next().map_or(u64::MAX, |(&s, _)| s);
        Lookup::Hole { prev_end, next_start }
    }

    /// Records that `[start, end)` (unrealised until now) is backed at `offset`.
    pub fn insert(&mut self, start: u64, end: u64, offset: u64) {
        debug_assert!(start < end);
        self.map.insert(start, (end, offset));
    }

    /// Removes `[start, end)`, splitting runs that straddle the bounds, and calls `release`
    /// with each memory-file range that no longer backs anything.
    pub fn remove_range(&mut self, start: u64, end: u64, mut release: impl FnMut(u64, u64)) {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            if let Some((e, o)) = self.map.remove(&k) {
                release(o, e - k);
            }
        }
    }

    /// Realised runs intersecting `[start, end)`, clipped to it.
    pub fn runs_in(&self, start: u64, end: u64) -> impl Iterator<Item = Pma> + '_ {
        let first = match self.lookup(start) {
            Lookup::Realised(p) => p.start,
            Lookup::Hole { .. } => start,
        };
        self.map.range(first..end).filter_map(move |(&s, &(e, o))| {
            let cs = s.max(start);
            let ce = e.min(end);
            (cs < ce).then(|| Pma { start: cs, end: ce, offset: o + (cs - s) })
        })
    }

    /// Whether any page of `[start, end)` is realised.
    pub fn any_in(&self, start: u64, end: u64) -> bool {
        self.runs_in(start, end).next().is_some()
    }

    /// Number of realised bytes.
    pub fn realised_bytes(&self) -> u64 {
        self.map.iter().map(|(&s, &(e, _))| e - s).sum()
    }

    fn split_at(&mut self, addr: u64) {
        if let Lookup::Realised(p) = self.lookup(addr) {
            if p.start < addr {
                self.map.insert(p.start, (addr, p.offset));
                self.map.insert(addr, (p.end, p.offset_of(addr)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_range_splits_runs_and_releases_the_middle() {
        let mut s = PmaSet::default();
        s.insert(0x1000, 0x5000, 0x10000);
        s.insert(0x8000, 0x9000, 0x20000);
        let mut released = vec![];
        s.remove_range(0x2000, 0x9000, |o, l| released.push((o, l)));
        assert_eq!(released, [(0x11000, 0x3000), (0x20000, 0x1000)]);
        assert_eq!(s.lookup(0x1800), Lookup::Realised(Pma { start: 0x1000, end: 0x2000, offset: 0x10000 }));
        assert_eq!(s.lookup(0x3000), Lookup::Hole { prev_end: 0x2000, next_start: u64::MAX });
        assert_eq!(s.realised_bytes(), 0x1000);
    }

    #[test]
    fn runs_in_clips_to_the_range() {
        let mut s = PmaSet::default();
        s.insert(0x1000, 0x5000, 0x10000);
        s.insert(0x6000, 0x7000, 0x0);
        let runs: Vec<_> = s.runs_in(0x3000, 0x6800).collect();
        assert_eq!(
            runs,
            [Pma { start: 0x3000, end: 0x5000, offset: 0x12000 }, Pma { start: 0x6000, end: 0x6800, offset: 0 }]
        );
        assert!(!s.any_in(0x5000, 0x6000));
    }
}
