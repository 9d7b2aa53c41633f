//! The host mappings the platform made in a stub, used to classify faults (ptrace does not
//! give us the kernel's page-fault error code).

use std::collections::BTreeMap;

use crate::Perms;

/// Non-overlapping page ranges `[start, end)` with their permissions.
#[derive(Debug, Default)]
pub struct MappingSet {
    /// start -> (end, perms)
    ranges: BTreeMap<u64, (u64, Perms)>,
}

impl MappingSet {
    /// Records a mapping of `[start, end)`, replacing whatever overlapped it.
    pub fn insert(&mut self, start: u64, end: u64, perms: Perms) {
        self.remove(start, end);
        self.ranges.insert(start, (end, perms));
    }

    /// Forgets `[start, end)`, splitting ranges that straddle its edges.
    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // A range starting before `start` may reach into it.
        if let Some((&s, &(e, p))) = self.ranges.range(..start).next_back() {
            if e > start {
                self.ranges.insert(s, (start, p));
                if e > end {
                    self.ranges.insert(end, (e, p));
                }
            }
        }
        let inside: Vec<u64> = self.ranges.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            if let Some((e, p)) = self.ranges.remove(&s) {
                if e > end {
                    self.ranges.insert(end, (e, p));
                }
            }
        }
    }

    /// The permissions of the mapping containing `addr`, if any.
    pub fn perms_at(&self, addr: u64) -> Option<Perms> {
        let (_, &(end, perms)) = self.ranges.range(..=addr).next_back()?;
        (addr < end).then_some(perms)
    }

    #[cfg(test)]
    fn ranges(&self) -> Vec<(u64, u64, Perms)> {
        self.ranges.iter().map(|(&s, &(e, p))| (s, e, p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_overlaps_and_splits_edges() {
        let mut m = MappingSet::default();
        m.insert(0x1000, 0x5000, Perms::RW);
        m.insert(0x2000, 0x3000, Perms::R);
        assert_eq!(
            m.ranges(),
            vec![
                (0x1000, 0x2000, Perms::RW),
                (0x2000, 0x3000, Perms::R),
                (0x3000, 0x5000, Perms::RW)
            ]
        );
        m.insert(0x0, 0x1800, Perms::RX);
        assert_eq!(m.ranges()[0], (0x0, 0x1800, Perms::RX));
        assert_eq!(m.ranges()[1], (0x1800, 0x2000, Perms::RW));
        assert_eq!(m.perms_at(0x2fff), Some(Perms::R));
        assert_eq!(m.perms_at(0x5000), None);
    }

    #[test]
    fn remove_punches_holes() {
        let mut m = MappingSet::default();
        m.insert(0x1000, 0x9000, Perms::RW);
        m.remove(0x3000, 0x4000);
        assert_eq!(
            m.ranges(),
            vec![(0x1000, 0x3000, Perms::RW), (0x4000, 0x9000, Perms::RW)]
        );
        m.remove(0x0, 0x2000);
        m.remove(0x8000, 0x10000);
        assert_eq!(
            m.ranges(),
            vec![(0x2000, 0x3000, Perms::RW), (0x4000, 0x8000, Perms::RW)]
        );
        assert_eq!(m.perms_at(0x3500), None);
        m.remove(0x0, u64::MAX);
        assert!(m.ranges().is_empty());
    }
}
