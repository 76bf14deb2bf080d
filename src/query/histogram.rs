//! Linked (crossfilter) histograms and counts.
//!
//! The rows a request selects are one bit a row per chunk: row filters are
//! evaluated a column at a time (tight, monomorphized loops rather than an
//! enum per row), cached filter bitsets ([`super::bitsets`]) and the value
//! column's validity bitmap are ANDed a word at a time, and counting visits
//! only the selected rows of sparse words.

use super::bitsets::{FilterBits, PartBits, all_set, and_bools, and_shifted};
use super::{BoundFilters, CHUNK, Filter, QueryError, RowSpan, all_rows, plan_rows, require};
use crate::geo::MercatorBox;
use crate::store::column::{AsF64, CatColumn, NumColumn};
use crate::store::{ColumnKind, Dataset, Partition};
use crate::with_num_slice;
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most bins a numeric histogram may have.
pub const MAX_BINS: usize = 1000;
/// Copies of the bins a numeric histogram rotates over.
const LANES: usize = 8;

/// A histogram of one column.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Histogram {
    /// Counts per category.
    Categorical {
        /// Column.
        column: String,
        /// Rows counted.
        total: u64,
        /// `(label, rows)` in dictionary order.
        categories: Vec<(String, u64)>,
    },
    /// Equal-width bins over the column's full range, with numpy's edge rule
    /// (`edge[i] <= v < edge[i + 1]`; the maximum lies in the last bin).
    Numeric {
        /// Column.
        column: String,
        /// Whether values are timestamps (µs since the epoch).
        temporal: bool,
        /// Rows counted (non-null values).
        total: u64,
        /// Lower edge of the first bin.
        min: f64,
        /// Upper edge of the last bin.
        max: f64,
        /// Rows per bin.
        counts: Vec<u64>,
    },
}

/// Row selection shared by histograms and counts: a bbox plus filters.
pub(super) struct Selection<'a> {
    pub(super) spans: Vec<RowSpan>,
    qbox: Option<(u32, u32, u32, u32)>,
    /// Filters bound per partition; `None` where zone maps exclude it.
    bound: Vec<Option<BoundFilters<'a>>>,
    /// Filters already evaluated into bitsets.
    bits: Vec<&'a FilterBits>,
}

impl<'a> Selection<'a> {
    pub(super) fn new(
        ds: &'a Dataset,
        bbox: Option<&MercatorBox>,
        filters: &[Filter],
        bits: &'a [Arc<FilterBits>],
        skip_column: Option<&str>,
    ) -> Self {
        let bits = bits
            .iter()
            .map(|b| b.as_ref())
            .filter(|b| Some(b.filter().column()) != skip_column)
            .collect();
        let filters: Vec<Filter> = filters
            .iter()
            .filter(|f| Some(f.column()) != skip_column)
            .cloned()
            .collect();
        let (spans, qbox) = match bbox {
            Some(b) => match b.qbounds() {
                Some(q) => {
                    let ranges = crate::geo::cover_key_ranges(
                        q.0,
                        q.1,
                        q.2,
                        q.3,
                        super::VIEWPORT_COVER_CELLS,
                    );
                    (plan_rows(ds, &ranges, CHUNK), Some(q))
                }
                None => (Vec::new(), None),
            },
            None => (all_rows(ds, CHUNK), None),
        };
        let bound = super::bind_all(ds, &filters);
        Selection {
            spans,
            qbox,
            bound,
            bits,
        }
    }

    /// The selected rows of a span, one bit a row (bit `j` of word `k` is
    /// row `span.rows.start + 64k + j`), also dropping rows that are null in
    /// `nulls`; `false` if the partition is pruned. `scratch` holds
    /// per-row bools while row filters and the bbox are tested.
    pub(super) fn select(
        &self,
        part: &Partition,
        span: &RowSpan,
        nulls: Option<&arrow_buffer::NullBuffer>,
        words: &mut Vec<u64>,
        scratch: &mut Vec<bool>,
    ) -> bool {
        let Some(f) = &self.bound[span.partition] else {
            return false;
        };
        if self
            .bits
            .iter()
            .any(|b| *b.part(span.partition) == PartBits::None)
        {
            return false;
        }
        let r = span.rows.clone();
        all_set(r.len(), words);
        if !f.is_empty() {
            f.mask(r.clone(), scratch);
            and_bools(scratch, words);
        }
        for b in &self.bits {
            if let PartBits::Some(bits) = b.part(span.partition) {
                and_shifted(bits, r.start, words);
            }
        }
        if let Some(n) = nulls {
            // Arrow's validity bitmap is already one bit a row.
            let valid = n.inner().slice(r.start, r.len());
            for (w, v) in words.iter_mut().zip(valid.bit_chunks().iter_padded()) {
                *w &= v;
            }
        }
        if let Some((x0, x1, y0, y1)) = self.qbox {
            let b = &part.info.bounds.quantized;
            // Partitions wholly inside the box need no per-row test.
            if !(b[0] >= x0 && b[2] <= x1 && b[1] >= y0 && b[3] <= y1) {
                scratch.clear();
                scratch.extend(
                    part.qx()[r.clone()]
                        .iter()
                        .zip(&part.qy()[r])
                        .map(|(&x, &y)| x >= x0 && x <= x1 && y >= y0 && y <= y1),
                );
                and_bools(scratch, words);
            }
        }
        true
    }
}

/// Words with at most this many selected rows (of 64) are counted a
/// selected row at a time; fuller words go through all 64 rows without
/// branching on the selection.
const SPARSE_WORD: u32 = 40;

/// Count the selected rows of `s` (`words`: one bit a row) into `acc`, which
/// holds `LANES` copies of `lane` slots: a selected row adds one to slot
/// `slot(value)` (`spare` for values outside the bins), others to `spare`.
/// Rows rotate over the copies so consecutive rows in one slot do not wait
/// on each other's stores; whole words go 8 rows at a time, so each row's
/// copy is a constant, and words with few selected rows visit only those.
#[inline(always)]
fn tally<T: Copy>(
    s: &[T],
    words: &[u64],
    lane: usize,
    spare: usize,
    acc: &mut [u64],
    slot: impl Fn(T) -> usize,
) {
    const { assert!(LANES == 8) };
    let full = s.len() / 64;
    for (k, (&w, vals)) in words.iter().zip(s.chunks_exact(64)).enumerate() {
        debug_assert!(k < full);
        if w.count_ones() <= SPARSE_WORD {
            // Few rows selected: visit only those, lowest bit first.
            let mut w = w;
            while w != 0 {
                let j = w.trailing_zeros() as usize;
                w &= w - 1;
                acc[(j % LANES) * lane + slot(vals[j])] += 1;
            }
            continue;
        }
        for (c, rows) in vals.chunks_exact(8).enumerate() {
            let bits = (w >> (c * 8)) as u8;
            for (l, &v) in rows.iter().enumerate() {
                let b = slot(v);
                acc[l * lane + if (bits >> l) & 1 != 0 { b } else { spare }] += 1;
            }
        }
    }
    let w = words.get(full).copied().unwrap_or(0);
    for (j, &v) in s[full * 64..].iter().enumerate() {
        let b = slot(v);
        acc[(j % LANES) * lane + if (w >> j) & 1 != 0 { b } else { spare }] += 1;
    }
}

pub(super) fn check_cancel(cancel: Option<&AtomicBool>) -> Result<(), QueryError> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        Err(QueryError::Cancelled)
    } else {
        Ok(())
    }
}

/// Histogram of `column` over the rows in `bbox` that pass every filter
/// except those on `column` itself (crossfilter semantics). Filters come
/// as rows to test (`filters`) or already evaluated (`bits`); both apply.
pub fn histogram(
    ds: &Dataset,
    column: &str,
    bins: usize,
    bbox: Option<&MercatorBox>,
    filters: &[Filter],
    bits: &[Arc<FilterBits>],
    cancel: Option<&AtomicBool>,
) -> Result<Histogram, QueryError> {
    let info = histogram_column(&ds.manifest, column)?;
    let sel = Selection::new(ds, bbox, filters, bits, Some(column));
    if info.kind == ColumnKind::Categorical {
        let ncat = info.categories.len();
        let counts = sel
            .spans
            .par_iter()
            .try_fold(
                || (vec![0u64; (ncat + 1) * LANES], Vec::new(), Vec::new()),
                |(mut acc, mut words, mut scratch), span| {
                    check_cancel(cancel)?;
                    let part = &ds.partitions[span.partition];
                    if let Some(col) = part.column(column).and_then(CatColumn::new) {
                        if sel.select(part, span, col.nulls, &mut words, &mut scratch) {
                            // Rows that fail, and codes outside the dictionary
                            // (a damaged file), land in a spare last slot.
                            let lane = ncat + 1;
                            let codes = &col.codes[span.rows.clone()];
                            tally(codes, &words, lane, ncat, &mut acc, |k| {
                                let k = k as u16 as usize;
                                if k < ncat { k } else { ncat }
                            });
                        }
                    }
                    Ok((acc, words, scratch))
                },
            )
            .map(|r| r.map(|(a, ..)| fold_lanes(&a, ncat + 1)))
            .try_reduce(|| vec![0u64; ncat], |a, b| Ok(add(a, &b)))?;
        return Ok(Histogram::Categorical {
            column: column.to_string(),
            total: counts.iter().sum(),
            categories: info.categories.iter().cloned().zip(counts).collect(),
        });
    }
    if bins == 0 || bins > MAX_BINS {
        return Err(QueryError::BadView(format!(
            "bins must be 1..={MAX_BINS}, got {bins}"
        )));
    }
    let (min, max) = (info.stats.min.unwrap_or(0.0), info.stats.max.unwrap_or(0.0));
    let binner = Binner::new(min, max, bins, column_is_integer(ds, column));
    let counts = sel
        .spans
        .par_iter()
        .try_fold(
            || (vec![0u64; (bins + 1) * LANES], Vec::new(), Vec::new()),
            |(mut acc, mut words, mut scratch), span| {
                check_cancel(cancel)?;
                let part = &ds.partitions[span.partition];
                if let Some(col) = part.column(column).and_then(NumColumn::new) {
                    if sel.select(part, span, col.nulls, &mut words, &mut scratch) {
                        with_num_slice!(col.values, |s| {
                            binner.count(&s[span.rows.clone()], &words, &mut acc)
                        });
                    }
                }
                Ok((acc, words, scratch))
            },
        )
        .map(|r| r.map(|(a, ..)| fold_lanes(&a, bins + 1)))
        .try_reduce(|| vec![0u64; bins], |a, b| Ok(add(a, &b)))?;
    Ok(Histogram::Numeric {
        column: column.to_string(),
        temporal: info.kind == ColumnKind::Temporal,
        total: counts.iter().sum(),
        min,
        max: binner.edges[bins],
        counts,
    })
}

fn is_integer<T: AsF64>(_: &[T]) -> bool {
    T::INTEGER
}

/// Whether `column` holds integers (as its first partition stores it).
pub(super) fn column_is_integer(ds: &Dataset, column: &str) -> bool {
    ds.partitions
        .first()
        .and_then(|p| p.column(column))
        .and_then(NumColumn::new)
        .is_some_and(|c| with_num_slice!(c.values, |s| is_integer(s)))
}

/// Sum `LANES` copies of `width` slots, dropping each copy's spare last slot.
fn fold_lanes(acc: &[u64], width: usize) -> Vec<u64> {
    let mut out = vec![0u64; width - 1];
    for lane in acc.chunks_exact(width) {
        for (o, x) in out.iter_mut().zip(lane) {
            *o += x;
        }
    }
    out
}

fn add(mut a: Vec<u64>, b: &[u64]) -> Vec<u64> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

/// Largest integer span binned through a full lookup table (64K entries of
/// u16; skewed columns keep their hot entries in L1, and one load beats a
/// load and a compare).
const LUT_SPAN: i64 = 1 << 16;
/// Most entries of a wide integer column's block table (8 KB: stays in L1).
const BLOCKS: u64 = 1 << 12;

/// Equal-width bins over `min..=max` with numpy's edge rule: edge `i` is
/// `min + i * (max - min) / bins` (the last edge is `max` itself); a value
/// lies in bin `i` when `edge[i] <= v < edge[i + 1]`, and `max` in the last.
pub(super) struct Binner {
    min: f64,
    max: f64,
    bins: usize,
    /// `bins / (max - min)`: a first guess that the edges then correct.
    norm: f64,
    edges: Vec<f64>,
    /// For integer columns spanning fewer than [`LUT_SPAN`] values: the bin of
    /// `min + d` at `d`, built with [`Binner::bin`] so both paths agree.
    lut: Option<Vec<u16>>,
    /// For other integer columns: integer edges, so no row converts to f64.
    wide: Option<WideInts>,
}

/// Integer binning relative to `base` (the minimum): a fixed-point guess
/// `d · mul / 2⁶⁴`, then the integer edges `ceil(edge[i]) - base` decide —
/// for an integer `v`, `v >= edge` exactly when `v >= ceil(edge)`.
struct WideInts {
    base: i64,
    span: u64,
    mul: u64,
    /// First offset of each bin, then `span + 1`.
    edges: Vec<u64>,
    /// The bin of offset `t << shift`, for every block of `1 << shift`
    /// offsets, when no bin is narrower than a block (each block then holds
    /// at most one edge, so a row is this bin or the next); empty otherwise.
    /// At most [`BLOCKS`] entries, so it stays in L1.
    blocks: Vec<u16>,
    shift: u32,
}

impl Binner {
    pub(super) fn new(min: f64, max: f64, bins: usize, integer: bool) -> Binner {
        // A constant column gets unit-wide bins, as numpy does for min == max.
        let (min, max) = if max > min {
            (min, max)
        } else {
            (min, min + bins as f64)
        };
        let width = (max - min) / bins as f64;
        let mut edges: Vec<f64> = (0..=bins).map(|i| min + i as f64 * width).collect();
        edges[bins] = max;
        let mut b = Binner {
            min,
            max,
            bins,
            norm: bins as f64 / (max - min),
            edges,
            lut: None,
            wide: None,
        };
        // Integer stats beyond 2^53 are not exact in f64: those bin in f64.
        let exact =
            min.fract() == 0.0 && max.fract() == 0.0 && min.abs().max(max.abs()) < 2f64.powi(53);
        if integer && exact && max - min >= LUT_SPAN as f64 {
            let (base, span) = (min as i64, (max - min) as u64);
            let mut edges: Vec<u64> = b.edges[..bins]
                .iter()
                .map(|e| (e.ceil() as i64 - base).max(0) as u64)
                .collect();
            // Past the last bin: an offset beyond the span lands in the
            // spare slot by the same comparison that finds its bin.
            edges.push(span + 1);
            let shift = (span + 1)
                .div_ceil(BLOCKS)
                .next_power_of_two()
                .trailing_zeros();
            let narrowest = (0..bins)
                .map(|i| edges[i + 1].min(span + 1) - edges[i])
                .min()
                .unwrap_or(0);
            let blocks = if narrowest >= 1 << shift {
                (0..=span >> shift)
                    .map(|t| (edges[..bins].partition_point(|&e| e <= t << shift) - 1) as u16)
                    .collect()
            } else {
                Vec::new()
            };
            b.wide = Some(WideInts {
                base,
                span,
                mul: (((bins as u128) << 64) / (span as u128 + 1)) as u64,
                edges,
                blocks,
                shift,
            });
        } else if integer && exact {
            let base = min as i64;
            b.lut = Some(
                (0..=(max - min) as i64)
                    .map(|d| b.bin((base + d) as f64) as u16)
                    .collect(),
            );
        }
        b
    }

    /// Lower edge of the first bin.
    pub(super) fn min(&self) -> f64 {
        self.min
    }

    /// Upper edge of the last bin (the maximum, or `min + bins` for a
    /// constant column).
    pub(super) fn max(&self) -> f64 {
        self.edges[self.bins]
    }

    /// Bins.
    pub(super) fn bins(&self) -> usize {
        self.bins
    }

    /// Bin of `v`, or `bins` when it lies outside `min..=max` (or is NaN).
    #[inline(always)]
    pub(super) fn bin(&self, v: f64) -> usize {
        let last = self.bins - 1;
        let mut b = (((v - self.min) * self.norm) as usize).min(last);
        // The product may land one bin off near an edge: the edges decide.
        if v < self.edges[b] && b > 0 {
            b -= 1;
        } else if v >= self.edges[b + 1] && b < last {
            b += 1;
        }
        if (v >= self.min) & (v <= self.max) {
            b
        } else {
            self.bins
        }
    }

    /// Count the selected values of `s` (`words`: one bit a row) into `acc`: `LANES` copies of `bins + 1`
    /// slots, the last one for rows that do not count.
    fn count<T: AsF64>(&self, s: &[T], words: &[u64], acc: &mut [u64]) {
        let lane = self.bins + 1;
        if let (true, Some(lut)) = (T::INTEGER, &self.lut) {
            let base = self.min as i64;
            tally(s, words, lane, self.bins, acc, |v| {
                let d = v.as_i64().wrapping_sub(base) as u64 as usize;
                lut.get(d).copied().unwrap_or(self.bins as u16) as usize
            });
        } else if let (true, Some(w)) = (T::INTEGER, &self.wide) {
            if !w.blocks.is_empty() {
                tally(s, words, lane, self.bins, acc, |v| {
                    let d = v.as_i64().wrapping_sub(w.base) as u64;
                    // Offsets past the table (and below the minimum, which
                    // wrap) take the last bin, then the comparison with
                    // `span + 1` moves them to the spare slot.
                    let t = (d >> w.shift) as usize;
                    let b = w.blocks.get(t).map_or(self.bins - 1, |&b| b as usize);
                    if d >= w.edges[b + 1] { b + 1 } else { b }
                });
                return;
            }
            let last = self.bins - 1;
            tally(s, words, lane, self.bins, acc, |v| {
                let d = v.as_i64().wrapping_sub(w.base) as u64;
                // span ≥ LUT_SPAN > bins, so the guess is at most one bin low.
                let mut b = ((d as u128 * w.mul as u128) >> 64) as usize;
                b = b.min(last);
                if d >= w.edges[b + 1] {
                    b += 1;
                }
                if b > 0 && d < w.edges[b] {
                    b -= 1;
                }
                if d <= w.span { b } else { self.bins }
            });
        } else {
            tally(s, words, lane, self.bins, acc, |v| self.bin(v.as_f64()));
        }
    }
}

/// Rows in `bbox` passing every filter.
pub fn count(
    ds: &Dataset,
    bbox: Option<&MercatorBox>,
    filters: &[Filter],
    bits: &[Arc<FilterBits>],
    cancel: Option<&AtomicBool>,
) -> Result<u64, QueryError> {
    let sel = Selection::new(ds, bbox, filters, bits, None);
    sel.spans
        .par_iter()
        .try_fold(
            || (0u64, Vec::new(), Vec::new()),
            |(n, mut words, mut scratch), span| {
                check_cancel(cancel)?;
                let part = &ds.partitions[span.partition];
                let add = if sel.select(part, span, None, &mut words, &mut scratch) {
                    words.iter().map(|w| w.count_ones() as u64).sum()
                } else {
                    0
                };
                Ok((n + add, words, scratch))
            },
        )
        .map(|r| r.map(|(n, ..)| n))
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

/// The column a histogram counts: numeric, temporal or categorical.
pub(super) fn histogram_column<'m>(
    m: &'m crate::store::Manifest,
    column: &str,
) -> Result<&'m crate::store::ColumnInfo, QueryError> {
    require(
        m,
        column,
        &[
            ColumnKind::Numeric,
            ColumnKind::Temporal,
            ColumnKind::Categorical,
        ],
        "a histogram",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// numpy's rule, spelled out: the last bin whose lower edge `v` reaches.
    fn reference(b: &Binner, v: f64) -> Option<usize> {
        (v >= b.min && v <= b.max).then(|| b.edges[..b.bins].partition_point(|&e| e <= v) - 1)
    }

    fn counted<T: AsF64>(b: &Binner, values: &[T]) -> Vec<u64> {
        let mut acc = vec![0u64; (b.bins + 1) * LANES];
        let mut words = Vec::new();
        super::super::bitsets::all_set(values.len(), &mut words);
        b.count(values, &words, &mut acc);
        fold_lanes(&acc, b.bins + 1)
    }

    fn expected(b: &Binner, values: impl Iterator<Item = f64>) -> Vec<u64> {
        let mut out = vec![0u64; b.bins];
        for v in values {
            if let Some(i) = reference(b, v) {
                out[i] += 1;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn float_bins_follow_the_edges(min in -1e6f64..1e6, w in 1e-3f64..1e6, bins in 1usize..200, xs in prop::collection::vec(-0.2f64..1.2, 1..300)) {
            let b = Binner::new(min, min + w, bins, false);
            // Values exactly on edges as well as between them.
            let mut values: Vec<f64> = xs.iter().map(|x| min + x * w).collect();
            values.extend(b.edges.iter().copied());
            values.push(f64::NAN);
            prop_assert_eq!(counted(&b, &values), expected(&b, values.iter().copied()));
        }

        #[test]
        fn small_integer_spans_use_a_table(min in -70_000i64..70_000, span in 0i64..LUT_SPAN, bins in 1usize..200, xs in prop::collection::vec(-0.2f64..1.2, 1..300)) {
            let b = Binner::new(min as f64, (min + span) as f64, bins, true);
            prop_assert!(b.lut.is_some());
            let values: Vec<i32> = xs.iter().map(|x| (min as f64 + x * span as f64).round() as i32).collect();
            prop_assert_eq!(counted(&b, &values), expected(&b, values.iter().map(|&v| v as f64)));
        }

        #[test]
        fn wide_integer_spans_use_integer_edges(min in -(1i64 << 50)..(1i64 << 50), log_span in 16u32..51, frac in 0.0f64..1.0, bins in 1usize..1000, xs in prop::collection::vec(-0.2f64..1.2, 1..300)) {
            let span = (1i64 << log_span) + (frac * (1i64 << log_span) as f64) as i64;
            let mut b = Binner::new(min as f64, (min + span) as f64, bins, true);
            prop_assert!(b.wide.as_ref().is_some_and(|w| !w.blocks.is_empty()));
            let mut values: Vec<i64> = xs.iter().map(|x| (min as f64 + x * span as f64) as i64).collect();
            // Each edge's integer neighbours.
            for e in &b.edges {
                values.extend([e.floor() as i64, e.ceil() as i64, e.ceil() as i64 + 1]);
            }
            values.extend([i64::MIN, i64::MAX]);
            let expect = expected(&b, values.iter().map(|&v| v as f64));
            prop_assert_eq!(&counted(&b, &values), &expect);
            // Without blocks: the multiply-and-correct path.
            b.wide.as_mut().expect("wide").blocks.clear();
            prop_assert_eq!(&counted(&b, &values), &expect);
        }
    }

    proptest! {
        #[test]
        fn selected_rows_only_are_counted(span in 0i64..(1 << 40), bins in 1usize..100, density in 0u8..=10, sel in prop::collection::vec(0u8..10, 1..700), xs in prop::collection::vec(0.0f64..1.0, 700)) {
            // Sparse and full words (by density), and a partial last word.
            let b = Binner::new(0.0, span as f64, bins, true);
            let values: Vec<i64> = xs.iter().take(sel.len()).map(|x| (x * span as f64) as i64).collect();
            let chosen: Vec<bool> = sel.iter().map(|&k| k < density).collect();
            let mut words = vec![0u64; chosen.len().div_ceil(64)];
            for (i, &c) in chosen.iter().enumerate() {
                words[i / 64] |= (c as u64) << (i % 64);
            }
            let mut acc = vec![0u64; (b.bins + 1) * LANES];
            b.count(&values, &words, &mut acc);
            let picked = values.iter().zip(&chosen).filter(|(_, c)| **c).map(|(&v, _)| v as f64);
            prop_assert_eq!(fold_lanes(&acc, b.bins + 1), expected(&b, picked));
        }
    }

    #[test]
    fn constant_columns_get_unit_bins() {
        let b = Binner::new(5.0, 5.0, 4, true);
        assert_eq!(b.edges, vec![5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(counted(&b, &[5i32, 5, 6, 10]), vec![2, 1, 0, 0]);
    }
}
