//! A set of page ranges: what a replay knows it created in an address space.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent `[start, end)` ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end.
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `[start, end)` (coalescing with touching ranges).
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        // A range that starts at or before `end` and ends at or after `start` touches.
        let touching: Vec<(u64, u64)> = self
            .map
            .range(..=end)
            .rev()
            .take_while(|&(_, &re)| re >= start)
            .map(|(&rs, &re)| (rs, re))
            .collect();
        for (rs, re) in touching {
            self.map.remove(&rs);
            s = s.min(rs);
            e = e.max(re);
        }
        self.map.insert(s, e);
    }

    /// Whether any part of `[start, end)` is in the set.
    pub fn intersects(&self, start: u64, end: u64) -> bool {
        start < end
            && self
                .map
                .range(..end)
                .next_back()
                .is_some_and(|(_, &e)| e > start)
    }

    /// The parts of `[start, end)` in the set, in order.
    pub fn clip(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        let first = self
            .map
            .range(..=start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        for (&s, &e) in self.map.range(first..end) {
            let (a, b) = (s.max(start), e.min(end));
            if a < b {
                out.push((a, b));
            }
        }
        out
    }

    /// The ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.map.iter().map(|(&s, &e)| (s, e))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_coalesces_and_clip_cuts() {
        let mut r = RangeSet::new();
        r.insert(0x3000, 0x5000);
        r.insert(0x1000, 0x2000);
        r.insert(0x2000, 0x3000);
        r.insert(0x8000, 0x9000);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            [(0x1000, 0x5000), (0x8000, 0x9000)]
        );
        assert!(r.intersects(0x4fff, 0x6000));
        assert!(!r.intersects(0x5000, 0x8000));
        assert!(!r.intersects(0x9000, 0x9000));
        assert_eq!(r.clip(0x4000, 0x8800), [(0x4000, 0x5000), (0x8000, 0x8800)]);
        r.insert(0x0, 0x10000);
        assert_eq!(r.iter().collect::<Vec<_>>(), [(0, 0x10000)]);
    }
}
