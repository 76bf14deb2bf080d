//! A tally of small non-negative integers: how many pixels hold each count.
//! Zoom statistics, the overview's count distributions and categorical
//! shading all need one.

use std::collections::HashMap;

/// How many times each non-negative integer was seen. Values below
/// [`DENSE_COUNTS`] are tallied in a vector (most pixels hold few points, and
/// a hash insert per pixel dominated deep zooms); larger ones in a map.
#[derive(Default, Clone)]
pub(crate) struct Tally {
    dense: Vec<u64>,
    sparse: HashMap<u64, u64>,
}

const DENSE_COUNTS: usize = 1 << 16;

impl Tally {
    /// Count one more `k`.
    #[inline]
    pub(crate) fn add(&mut self, k: u64) {
        match self.dense.get_mut(k as usize) {
            Some(n) => *n += 1,
            None => self.add_n(k, 1),
        }
    }

    /// Count `n` more `k`.
    #[inline(never)]
    pub(crate) fn add_n(&mut self, k: u64, n: u64) {
        if n == 0 {
            return;
        }
        if (k as usize) < DENSE_COUNTS {
            if self.dense.len() <= k as usize {
                self.dense.resize(k as usize + 1, 0);
            }
            self.dense[k as usize] += n;
        } else {
            *self.sparse.entry(k).or_default() += n;
        }
    }

    /// Add another tally's counts.
    pub(crate) fn extend(&mut self, o: &Tally) {
        if self.dense.len() < o.dense.len() {
            self.dense.resize(o.dense.len(), 0);
        }
        for (a, b) in self.dense.iter_mut().zip(&o.dense) {
            *a += b;
        }
        for (&k, &n) in &o.sparse {
            *self.sparse.entry(k).or_default() += n;
        }
    }

    /// `(value, times)` for every value seen, ascending.
    pub(crate) fn sorted(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, &n)| (k as u64, n))
            .chain(self.sparse.iter().map(|(&k, &n)| (k, n)))
            .collect();
        v.sort_unstable();
        v
    }
}
