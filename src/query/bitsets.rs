//! Filter bitsets: the rows that pass one filter, one bit a row.
//!
//! Linked histograms re-apply the same filters on every request: brushing
//! `range` changes one filter, while the histograms of the other columns
//! still apply the unchanged `radio` and `created` filters, and each would
//! read those columns again (8 bytes a row for a timestamp). Like
//! crossfilter.js, the server keeps each filter's result as a bitset (40M
//! rows: 5 MB) and a histogram or count ANDs the bitsets of its filters
//! instead of reading their columns, so a request reads only the column it
//! counts.

use super::{Filter, QueryError};
use crate::store::Dataset;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// One partition's rows that pass a filter.
#[derive(Clone, Debug, PartialEq)]
pub enum PartBits {
    /// No row passes (zone maps or the rows say so): the partition is skipped.
    None,
    /// Every row passes: nothing to test.
    All,
    /// Bit `i % 64` of word `i / 64` is set when row `i` passes.
    Some(Vec<u64>),
}

/// The rows of a dataset that pass one filter.
#[derive(Clone, Debug)]
pub struct FilterBits {
    filter: Filter,
    parts: Vec<PartBits>,
}

impl FilterBits {
    /// Evaluate `filter` over every row (one parallel pass over its column;
    /// partitions its zone maps exclude are not read). `cancel` is polled
    /// per partition.
    pub fn compute(
        ds: &Dataset,
        filter: &Filter,
        cancel: Option<&AtomicBool>,
    ) -> Result<FilterBits, QueryError> {
        let parts = ds
            .partitions
            .par_iter()
            .map(|part| {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return Err(QueryError::Cancelled);
                }
                let Some(bound) =
                    super::bind_filters(&ds.manifest, part, std::slice::from_ref(filter))
                else {
                    return Ok(PartBits::None);
                };
                let n = part.len();
                let mut words = vec![0u64; n.div_ceil(64)];
                let mut mask = Vec::new();
                // Chunks of whole words keep the byte mask small.
                for (w, chunk) in words.chunks_mut(super::CHUNK / 64).enumerate() {
                    let start = w * super::CHUNK;
                    let end = (start + chunk.len() * 64).min(n);
                    bound.mask(start..end, &mut mask);
                    for (word, bits) in chunk.iter_mut().zip(mask.chunks(64)) {
                        *word = pack(bits);
                    }
                }
                let passing: u64 = words.iter().map(|w| w.count_ones() as u64).sum();
                Ok(if passing == 0 {
                    PartBits::None
                } else if passing == n as u64 {
                    PartBits::All
                } else {
                    PartBits::Some(words)
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(FilterBits {
            filter: filter.clone(),
            parts,
        })
    }

    /// The filter these bits hold.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Partition `p`'s bits.
    pub fn part(&self, p: usize) -> &PartBits {
        &self.parts[p]
    }

    /// Heap bytes, for cache accounting.
    pub fn bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                PartBits::Some(w) => w.len() * 8,
                _ => 0,
            })
            .sum::<usize>()
            + self.parts.len() * std::mem::size_of::<PartBits>()
            + 64
    }
}

/// AND `bools` (one per row) into `words` (one bit per row, from bit 0).
pub(crate) fn and_bools(bools: &[bool], words: &mut [u64]) {
    for (w, chunk) in words.iter_mut().zip(bools.chunks(64)) {
        *w &= pack(chunk);
    }
}

/// Up to 64 bools as the low bits of a word.
#[inline]
fn pack(bools: &[bool]) -> u64 {
    let mut word = 0u64;
    let mut eights = bools.chunks_exact(8);
    for (c, b) in (&mut eights).enumerate() {
        // Eight 0/1 bytes; the multiply moves byte i's bit to bit 56 + i
        // without carries (each partial product lands on its own bit).
        let x = u64::from_le_bytes(std::array::from_fn(|i| b[i] as u8));
        word |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * c);
    }
    let done = bools.len() - eights.remainder().len();
    for (i, &b) in eights.remainder().iter().enumerate() {
        word |= (b as u64) << (done + i);
    }
    word
}

/// AND bits `offset..` of `src` into `dst` (bit `j` of `dst` takes bit
/// `offset + j` of `src`; bits past the end of `src` count as clear).
pub(crate) fn and_shifted(src: &[u64], offset: usize, dst: &mut [u64]) {
    let (first, sh) = (offset >> 6, (offset & 63) as u32);
    for (k, d) in dst.iter_mut().enumerate() {
        let lo = src.get(first + k).copied().unwrap_or(0);
        let w = if sh == 0 {
            lo
        } else {
            let hi = src.get(first + k + 1).copied().unwrap_or(0);
            lo >> sh | hi << (64 - sh)
        };
        *d &= w;
    }
}

/// Words with the low `n` bits set: every row of an `n`-row span selected.
pub(crate) fn all_set(n: usize, words: &mut Vec<u64>) {
    words.clear();
    words.resize(n.div_ceil(64), u64::MAX);
    if n % 64 != 0 {
        if let Some(last) = words.last_mut() {
            *last = (1u64 << (n % 64)) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn shifted_and_packed_bits_match_rows(
            rows in proptest::collection::vec(any::<bool>(), 0..400),
            sel in proptest::collection::vec(any::<bool>(), 0..400),
            offset in 0usize..200,
        ) {
            let n = sel.len();
            let mut src = vec![0u64; rows.len().div_ceil(64)];
            and_bools_into(&rows, &mut src);
            let mut words = Vec::new();
            all_set(n, &mut words);
            and_bools(&sel, &mut words);
            and_shifted(&src, offset, &mut words);
            for j in 0..words.len() * 64 {
                let got = (words[j / 64] >> (j % 64)) & 1 == 1;
                let expect = j < n && sel[j] && rows.get(offset + j).copied().unwrap_or(false);
                prop_assert_eq!(got, expect, "bit {}", j);
            }
        }
    }

    fn and_bools_into(bools: &[bool], words: &mut [u64]) {
        words.fill(u64::MAX);
        and_bools(bools, words);
    }
}
