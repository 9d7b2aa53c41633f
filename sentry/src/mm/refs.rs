//! Reference counts of memory-file pages.
//!
//! A page of the memory file can back several owners at once: the address spaces that
//! share it after fork (copy-on-write or MAP_SHARED) and the shared-memory object that
//! holds MAP_SHARED anonymous memory. Every owner holds one reference per page. Almost all
//! pages have exactly one owner, so only ranges referenced more than once are recorded:
//! an allocated page that is absent from the map has one reference.

use std::collections::BTreeMap;

/// Pages referenced more than once, as runs of equal count.
#[derive(Debug, Default)]
pub(super) struct RefCounts {
    /// start → (end, count); count ≥ 2; runs do not overlap.
    map: BTreeMap<u64, (u64, u64)>,
}

impl RefCounts {
    /// Number of references to the page at `off` (1 when not recorded).
    pub(super) fn count(&self, off: u64) -> u64 {
        match self.map.range(..=off).next_back() {
            Some((_, &(e, c))) if off < e => c,
            _ => 1,
        }
    }

    /// Sub-ranges of `[start, end)` referenced more than once, in order.
    pub(super) fn shared_in(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let first = match self.map.range(..=start).next_back() {
            Some((&s, &(e, _))) if start < e => s,
            _ => start,
        };
        self.map
            .range(first..end)
            .map(|(&s, &(e, _))| (s.max(start), e.min(end)))
            .filter(|(s, e)| s < e)
            .collect()
    }

    /// Whether any page of `[start, end)` is referenced more than once.
    pub(super) fn any_shared(&self, start: u64, end: u64) -> bool {
        if let Some((_, &(e, _))) = self.map.range(..=start).next_back() {
            if start < e {
                return true;
            }
        }
        self.map.range(start..end).next().is_some()
    }

    /// Adds one reference to every page of `[start, end)`.
    pub(super) fn inc(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.split_at(start);
        self.split_at(end);
        let existing: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        let mut cur = start;
        for k in existing {
            if k > cur {
                self.map.insert(cur, (k, 2));
            }
            if let Some((e, c)) = self.map.get_mut(&k) {
                *c += 1;
                cur = *e;
            }
        }
        if cur < end {
            self.map.insert(cur, (end, 2));
        }
        self.merge_around(start, end);
    }

    /// Drops one reference from every page of `[start, end)` and calls `free` with each
    /// range whose last reference went.
    pub(super) fn dec(&mut self, start: u64, end: u64, mut free: impl FnMut(u64, u64)) {
        if start >= end {
            return;
        }
        self.split_at(start);
        self.split_at(end);
        let existing: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        let mut cur = start;
        for k in existing {
            if k > cur {
                free(cur, k);
            }
            let Some(&(e, c)) = self.map.get(&k) else { continue };
            if c <= 2 {
                self.map.remove(&k);
            } else {
                self.map.insert(k, (e, c - 1));
            }
            cur = e;
        }
        if cur < end {
            free(cur, end);
        }
        self.merge_around(start, end);
    }

    fn split_at(&mut self, at: u64) {
        let Some((&s, &(e, c))) = self.map.range(..at).next_back() else { return };
        if at < e {
            self.map.insert(s, (at, c));
            self.map.insert(at, (e, c));
        }
    }

    /// Merges contiguous runs of equal count among those touching `[start, end]`.
    fn merge_around(&mut self, start: u64, end: u64) {
        let from = self.map.range(..start).next_back().map_or(start, |(&s, _)| s);
        let keys: Vec<u64> = self.map.range(from..=end).map(|(&k, _)| k).collect();
        let mut cur: Option<u64> = None;
        for k in keys {
            if let Some(c) = cur {
                if let (Some(&(ce, cc)), Some(&(ke, kc))) = (self.map.get(&c), self.map.get(&k)) {
                    if ce == k && cc == kc {
                        self.map.remove(&k);
                        self.map.insert(c, (ke, cc));
                        continue;
                    }
                }
            }
            cur = Some(k);
        }
    }

    /// Number of recorded runs (tests).
    #[cfg(test)]
    pub(super) fn runs(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_up_and_down_by_range_and_free_at_zero() {
        let mut r = RefCounts::default();
        r.inc(0x1000, 0x5000);
        r.inc(0x3000, 0x7000);
        assert_eq!((r.count(0x0), r.count(0x1000), r.count(0x3000), r.count(0x6000)), (1, 2, 3, 2));
        assert_eq!(r.shared_in(0x2000, 0x8000), [(0x2000, 0x3000), (0x3000, 0x5000), (0x5000, 0x7000)]);
        assert!(r.any_shared(0x6000, 0x8000) && !r.any_shared(0x7000, 0x9000));
        let mut freed = vec![];
        r.dec(0x0, 0x8000, |s, e| freed.push((s, e)));
        assert_eq!(freed, [(0x0, 0x1000), (0x7000, 0x8000)]);
        assert_eq!((r.count(0x1000), r.count(0x3000), r.count(0x5000)), (1, 2, 1));
        assert_eq!(r.runs(), 1);
        r.dec(0x3000, 0x5000, |s, e| freed.push((s, e)));
        assert_eq!(r.runs(), 0);
        assert_eq!(freed.len(), 2);
    }

    #[test]
    fn equal_neighbours_merge() {
        let mut r = RefCounts::default();
        r.inc(0x1000, 0x2000);
        r.inc(0x2000, 0x3000);
        assert_eq!(r.runs(), 1);
        r.inc(0x1000, 0x2000);
        assert_eq!(r.runs(), 2);
        r.dec(0x1000, 0x2000, |_, _| panic!("still referenced"));
        assert_eq!(r.runs(), 1);
        assert_eq!(r.shared_in(0, 0x10000), [(0x1000, 0x3000)]);
    }
}
