//! Brush indexes: linked histograms and counts at interactive rates while
//! one range filter is being dragged.
//!
//! During a brush only one filter changes: its bounds, on every pointer
//! move. The other histograms and the count keep their bbox, their bins and
//! every other filter. As in Mosaic's pre-aggregated indexes and Falcon,
//! one pass over the rows counts each histogram's bins per *slot* of the
//! brushed column — a fine grid of the values the brush can snap to — and
//! keeps running sums over the slots. Each later bound is then the
//! difference of two rows of sums: a few hundred additions, whatever the
//! dataset's size.
//!
//! The answers are exact. A grid edge is a decimal multiple of the step
//! (the double a client gets by rounding to that step and printing it), and
//! slots hold the values equal to an edge apart from those strictly between
//! two edges, so `lo <= v <= hi` is a whole run of slots whenever `lo` and
//! `hi` are edges (or open). Bounds off the grid are not answered here: the
//! caller scans the rows as it would without an index.

use super::bitsets::FilterBits;
use super::histogram::{
    Binner, Histogram, Selection, check_cancel, column_is_integer, histogram_column,
};
use super::{Filter, QueryError, require};
use crate::geo::MercatorBox;
use crate::store::column::{AsF64, CatColumn, NumColumn};
use crate::store::{ColumnKind, Dataset, Manifest};
use crate::with_num_slice;
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Most grid edges a brush may snap to over its column's range.
pub const MAX_BRUSH_STEPS: usize = 10_000;
/// Most slot × bin cells in one index (8 bytes each): larger requests are
/// answered by scanning rows instead.
pub const MAX_BRUSH_CELLS: usize = 1 << 20;

/// The values a brush on one column snaps to: every multiple of a decimal
/// step across the column's range, as the doubles a filter bound holds.
#[derive(Debug, Clone)]
pub struct BrushGrid {
    column: String,
    /// The step as `MANTISSAeEXP`, for cache keys.
    step: String,
    /// Strictly increasing, in the column's stored units (µs for temporal).
    edges: Vec<f64>,
    /// `(edges.len() - 1) / (last - first)`: a first guess of an edge's index.
    norm: f64,
}

/// What an index counts.
#[derive(Debug, Clone, Copy)]
pub enum BrushTarget<'a> {
    /// The rows passing every filter (`/count`).
    Count,
    /// A crossfilter histogram of a column (its own filters are ignored).
    Histogram {
        /// The histogram's column.
        column: &'a str,
        /// Bins for a numeric or temporal column.
        bins: usize,
    },
}

/// Most bytes of accumulators one index build holds at once (per-thread
/// tables; at least one table, itself at most 8 × [`MAX_BRUSH_CELLS`]).
pub const MAX_BRUSH_SCRATCH: usize = 32 << 20;

/// A decimal step `m × 10^e`, exactly as written.
fn parse_step(s: &str) -> Option<(u64, i32, f64)> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() || digits.len() > 15 || exp.abs() > 300 {
        return None;
    }
    let mut m: u64 = digits.parse().ok()?;
    let mut e = exp - frac.len() as i32;
    // One text per step (`10` and `1e1` alike), for cache keys.
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    let step: f64 = format!("{m}e{e}").parse().ok()?;
    (step.is_finite() && step > 0.0).then_some((m, e, step))
}

impl BrushGrid {
    /// The grid of `column` at `step` (display units: epoch milliseconds for
    /// temporal columns, as filter bounds are written). `Ok(None)` when the
    /// column's range holds more than [`MAX_BRUSH_STEPS`] steps, or the
    /// steps are finer than its doubles: the brush is a hint, and such a
    /// request is answered by scanning rows.
    pub fn new(m: &Manifest, column: &str, step: &str) -> Result<Option<BrushGrid>, QueryError> {
        let info = require(
            m,
            column,
            &[ColumnKind::Numeric, ColumnKind::Temporal],
            "a brush",
        )?;
        let (mant, exp, step_f) = parse_step(step).ok_or_else(|| {
            QueryError::BadView(format!(
                "brush {column}:{step}: the step must be a positive decimal number"
            ))
        })?;
        // Filter bounds of temporal columns are milliseconds, stored as µs.
        let temporal = info.kind == ColumnKind::Temporal;
        let (to_display, to_stored) = if temporal { (1e-3, 1000.0) } else { (1.0, 1.0) };
        let lo = info.stats.min.unwrap_or(0.0) * to_display;
        let hi = info.stats.max.unwrap_or(0.0) * to_display;
        let steps = (hi - lo) / step_f;
        if steps.is_nan() || steps > MAX_BRUSH_STEPS as f64 {
            return Ok(None);
        }
        // One edge of margin each side: stats and decimal rounding may
        // disagree in the last bit.
        let (k0, k1) = ((lo / step_f).floor() - 1.0, (hi / step_f).ceil() + 1.0);
        if !(k0.abs() < 1e15 && k1.abs() < 1e15) {
            return Ok(None);
        }
        let (k0, k1) = (k0 as i128, k1 as i128);
        let edges: Vec<f64> = (k0..=k1)
            .map(|k| {
                let d: f64 = format!("{}e{exp}", k * mant as i128)
                    .parse()
                    .unwrap_or(f64::NAN);
                d * to_stored
            })
            .collect();
        if !edges.windows(2).all(|w| w[0] < w[1]) || !edges.iter().all(|e| e.is_finite()) {
            return Ok(None);
        }
        let n = edges.len();
        Ok(Some(BrushGrid {
            column: column.to_string(),
            step: format!("{mant}e{exp}"),
            norm: (n - 1) as f64 / (edges[n - 1] - edges[0]),
            edges,
        }))
    }

    /// The brushed column.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The step in its canonical text (`25e-2` for `0.25`).
    pub fn step_text(&self) -> &str {
        &self.step
    }

    /// Slots: below the first edge, then for each edge the values equal to
    /// it and those up to the next, then above the last.
    fn slots(&self) -> usize {
        2 * self.edges.len() + 1
    }

    /// The slot of `v`; `u32::MAX` for NaN. Branch-light: this runs once
    /// per row of an index's pass.
    #[inline]
    fn slot(&self, v: f64) -> u32 {
        let e = &self.edges;
        let last = e.len() - 1;
        // The product lands at most one edge off (edges are decimal
        // roundings of an even grid): the edges decide. NaN and values
        // below the grid cast to 0.
        let mut i = (((v - e[0]) * self.norm) as usize).min(last);
        i -= usize::from(i > 0 && e[i] > v);
        i += usize::from(i < last && e[i + 1] <= v);
        let inside = 2 * i as u32 + 1 + u32::from(e[i] != v);
        if v < e[0] {
            0
        } else if v > e[last] {
            2 * e.len() as u32
        } else if v.is_nan() {
            u32::MAX
        } else {
            inside
        }
    }

    /// The index of the edge equal to `x`, if any.
    fn edge(&self, x: f64) -> Option<usize> {
        let e = &self.edges;
        let guess = ((x - e[0]) * self.norm).round();
        if !(guess >= -1.0 && guess <= e.len() as f64) {
            return None;
        }
        let g = guess as i64;
        (g - 1..=g + 1)
            .filter(|&i| i >= 0 && (i as usize) < e.len())
            .map(|i| i as usize)
            .find(|&i| e[i] == x)
    }
}

/// Per-slot counts of a histogram's bins (or of the count), as running sums.
#[derive(Debug)]
pub struct BrushIndex {
    grid: BrushGrid,
    /// The histogram with its counts zeroed (`None` for a count).
    template: Option<Histogram>,
    /// Bins per slot.
    width: usize,
    /// `(slots + 1) × width` running sums: row `s` holds slots `0..s`.
    sums: Vec<u64>,
}

impl BrushIndex {
    /// Count `target` per slot of `grid` over the rows in `bbox` passing
    /// every filter except those on the brushed column (and, for a
    /// histogram, on its own column). `None` when the index would exceed
    /// [`MAX_BRUSH_CELLS`].
    pub fn build(
        ds: &Dataset,
        grid: BrushGrid,
        target: BrushTarget<'_>,
        bbox: Option<&MercatorBox>,
        filters: &[Filter],
        bits: &[Arc<FilterBits>],
        cancel: Option<&AtomicBool>,
    ) -> Result<Option<BrushIndex>, QueryError> {
        let brushed = grid.column.as_str();
        let filters: Vec<Filter> = filters
            .iter()
            .filter(|f| f.column() != brushed)
            .cloned()
            .collect();
        let bits: Vec<Arc<FilterBits>> = bits
            .iter()
            .filter(|b| b.filter().column() != brushed)
            .cloned()
            .collect();
        let m = &ds.manifest;
        // What a row counts as: a bin of the target column, or one cell.
        enum Bin {
            Count,
            Cat(String, usize),
            Num(String, Binner),
        }
        let (bin, template, skip) = match target {
            BrushTarget::Count => (Bin::Count, None, None),
            BrushTarget::Histogram { column, bins } => {
                let info = histogram_column(m, column)?;
                if info.kind == ColumnKind::Categorical {
                    let n = info.categories.len();
                    let t = Histogram::Categorical {
                        column: column.to_string(),
                        total: 0,
                        categories: info.categories.iter().map(|c| (c.clone(), 0)).collect(),
                    };
                    (Bin::Cat(column.to_string(), n), Some(t), Some(column))
                } else {
                    if bins == 0 || bins > super::histogram::MAX_BINS {
                        return Err(QueryError::BadView(format!(
                            "bins must be 1..={}, got {bins}",
                            super::histogram::MAX_BINS
                        )));
                    }
                    let (min, max) = (info.stats.min.unwrap_or(0.0), info.stats.max.unwrap_or(0.0));
                    let b = Binner::new(min, max, bins, column_is_integer(ds, column));
                    let t = Histogram::Numeric {
                        column: column.to_string(),
                        temporal: info.kind == ColumnKind::Temporal,
                        total: 0,
                        min: b.min(),
                        max: b.max(),
                        counts: vec![0; bins],
                    };
                    (Bin::Num(column.to_string(), b), Some(t), Some(column))
                }
            }
        };
        let width = match &bin {
            Bin::Count => 1,
            Bin::Cat(_, n) => *n,
            Bin::Num(_, b) => b.bins(),
        }
        .max(1);
        let slots = grid.slots();
        if slots.saturating_mul(width) > MAX_BRUSH_CELLS {
            return Ok(None);
        }
        let sel = Selection::new(ds, bbox, &filters, &bits, skip);
        let lut = SlotLut::new(ds, &grid);
        // A few accumulators (not one per rayon split): each is a whole
        // slots × width table, so together they stay within
        // MAX_BRUSH_SCRATCH whatever the core count.
        let table = (slots * width + 1) * 8;
        let groups = (rayon::current_num_threads() * 2)
            .min(MAX_BRUSH_SCRATCH / table)
            .max(1);
        let per = sel.spans.len().div_ceil(groups).max(1);
        let counts = sel
            .spans
            .par_chunks(per)
            .map(|spans| {
                let mut acc = vec![0u64; slots * width + 1];
                let (mut words, mut scratch, mut slot_of) = (Vec::new(), Vec::new(), Vec::new());
                for span in spans {
                    check_cancel(cancel)?;
                    let part = &ds.partitions[span.partition];
                    let Some(a) = part.column(brushed).and_then(NumColumn::new) else {
                        continue;
                    };
                    let rows = span.rows.clone();
                    let tcol = match &bin {
                        Bin::Count => None,
                        Bin::Cat(c, _) | Bin::Num(c, _) => match part.column(c) {
                            Some(col) => Some(col),
                            None => continue,
                        },
                    };
                    let tnulls = match (&bin, tcol) {
                        (Bin::Cat(..), Some(col)) => CatColumn::new(col).and_then(|c| c.nulls),
                        (Bin::Num(..), Some(col)) => NumColumn::new(col).and_then(|c| c.nulls),
                        _ => None,
                    };
                    if !sel.select(part, span, tnulls, &mut words, &mut scratch) {
                        continue;
                    }
                    if let Some(n) = a.nulls {
                        let valid = n.inner().slice(rows.start, rows.len());
                        for (w, v) in words.iter_mut().zip(valid.bit_chunks().iter_padded()) {
                            *w &= v;
                        }
                    }
                    slot_of.clear();
                    with_num_slice!(a.values, |s| lut.slots(
                        &grid,
                        &s[rows.clone()],
                        &mut slot_of
                    ));
                    let acc = &mut acc[..];
                    match (&bin, tcol) {
                        (Bin::Count, _) => tally_slots(&words, &slot_of, width, acc, |_| 0),
                        (Bin::Cat(_, n), Some(col)) => {
                            if let Some(c) = CatColumn::new(col) {
                                let codes = &c.codes[rows.clone()];
                                tally_slots(&words, &slot_of, width, acc, |r| {
                                    let k = codes[r] as u16 as usize;
                                    if k < *n { k } else { usize::MAX }
                                });
                            }
                        }
                        (Bin::Num(_, b), Some(col)) => {
                            if let Some(c) = NumColumn::new(col) {
                                with_num_slice!(c.values, |s| {
                                    let s = &s[rows.clone()];
                                    tally_slots(&words, &slot_of, width, acc, |r| {
                                        b.bin(s[r].as_f64())
                                    });
                                });
                            }
                        }
                        _ => {}
                    }
                }
                Ok(acc)
            })
            .try_reduce(
                || vec![0u64; slots * width + 1],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        *x += y;
                    }
                    Ok(a)
                },
            )?;
        let mut sums = vec![0u64; (slots + 1) * width];
        for s in 0..slots {
            for b in 0..width {
                sums[(s + 1) * width + b] = sums[s * width + b] + counts[s * width + b];
            }
        }
        Ok(Some(BrushIndex {
            grid,
            template,
            width,
            sums,
        }))
    }

    /// The brushed column.
    pub fn column(&self) -> &str {
        &self.grid.column
    }

    /// Heap bytes, for cache accounting.
    pub fn bytes(&self) -> usize {
        self.sums.len() * 8 + self.grid.edges.len() * 8 + 256
    }

    /// Whether slot `s` counts no row.
    fn empty(&self, s: usize) -> bool {
        let w = self.width;
        self.sums[s * w..(s + 1) * w] == self.sums[(s + 1) * w..(s + 2) * w]
    }

    /// The slots `lo <= v <= hi` covers (inclusive; `first > end` when it
    /// covers none), if that is a whole run of slots. A bound beyond the
    /// grid is exact when the slot it cuts into is empty.
    fn span(&self, lo: f64, hi: f64) -> Option<(usize, usize)> {
        let g = &self.grid;
        let last = g.slots() - 1;
        let (below, above) = (g.edges[0], g.edges[g.edges.len() - 1]);
        let first = if lo == f64::NEG_INFINITY {
            0
        } else if let Some(i) = g.edge(lo) {
            2 * i + 1
        } else if lo < below && self.empty(0) {
            0
        } else if lo > above && self.empty(last) {
            last + 1
        } else {
            return None;
        };
        let end = if hi == f64::INFINITY {
            last
        } else if let Some(j) = g.edge(hi) {
            2 * j + 1
        } else if hi > above && self.empty(last) {
            last
        } else if hi < below && self.empty(0) {
            return Some((1, 0));
        } else {
            return None;
        };
        Some((first, end))
    }

    /// Per-bin counts for `lo <= v <= hi`, if the bounds lie on the grid.
    fn counts(&self, lo: f64, hi: f64) -> Option<Vec<u64>> {
        let (a, b) = self.span(lo, hi)?;
        let w = self.width;
        if a > b {
            return Some(vec![0; w]);
        }
        Some(
            (0..w)
                .map(|i| self.sums[(b + 1) * w + i] - self.sums[a * w + i])
                .collect(),
        )
    }

    /// The histogram under the brush `lo..=hi` (stored units), if those
    /// bounds lie on the grid and this index holds a histogram.
    pub fn histogram(&self, lo: f64, hi: f64) -> Option<Histogram> {
        let counts = self.counts(lo, hi)?;
        let mut h = self.template.clone()?;
        match &mut h {
            Histogram::Categorical {
                total, categories, ..
            } => {
                for ((_, c), n) in categories.iter_mut().zip(&counts) {
                    *c = *n;
                }
                *total = counts.iter().sum();
            }
            Histogram::Numeric {
                total, counts: c, ..
            } => {
                *total = counts.iter().sum();
                *c = counts;
            }
        }
        Some(h)
    }

    /// The count under the brush `lo..=hi`, if those bounds lie on the grid
    /// and this index holds a count.
    pub fn count(&self, lo: f64, hi: f64) -> Option<u64> {
        if self.template.is_some() {
            return None;
        }
        self.counts(lo, hi).map(|c| c[0])
    }
}

/// Slots of an integer column's values by table, when its range is small:
/// one load a row instead of a search among the edges.
struct SlotLut {
    base: i64,
    slots: Vec<u32>,
}

impl SlotLut {
    /// Most entries (4 bytes each) a table may hold.
    const MAX: i64 = 1 << 20;

    fn new(ds: &Dataset, grid: &BrushGrid) -> SlotLut {
        let none = SlotLut {
            base: 0,
            slots: Vec::new(),
        };
        let Some(info) = ds.manifest.column(&grid.column) else {
            return none;
        };
        let (Some(min), Some(max)) = (info.stats.min, info.stats.max) else {
            return none;
        };
        let small = min.is_finite() && max.is_finite() && max - min < Self::MAX as f64;
        if !(small && column_is_integer(ds, &grid.column)) {
            return none;
        }
        let base = min.floor() as i64;
        let n = (max.ceil() as i64 - base + 1).clamp(0, Self::MAX);
        SlotLut {
            base,
            slots: (0..n).map(|d| grid.slot((base + d) as f64)).collect(),
        }
    }

    /// The slot of each of `values`, into `out` (cleared first).
    #[inline]
    fn slots<T: AsF64>(&self, grid: &BrushGrid, values: &[T], out: &mut Vec<u32>) {
        out.clear();
        if T::INTEGER && !self.slots.is_empty() {
            let (base, lut) = (self.base, &self.slots[..]);
            out.extend(values.iter().map(|v| {
                let d = v.as_i64().wrapping_sub(base) as u64;
                match lut.get(d as usize) {
                    Some(&s) => s,
                    // Outside the column's statistics (they are the
                    // bounds of every value, so this is not expected).
                    None => grid.slot(v.as_f64()),
                }
            }));
        } else {
            out.extend(values.iter().map(|v| grid.slot(v.as_f64())));
        }
    }
}

/// Count each selected row (`words`: one bit a row) into its slot's row of
/// `acc` at the bin `bin` gives it; rows that do not count (unselected, a
/// NaN slot, a bin `>= width`) go to `acc`'s last, spare cell. (A
/// branch-free pass over every row of dense words measured no faster.)
#[inline]
fn tally_slots(
    words: &[u64],
    slot_of: &[u32],
    width: usize,
    acc: &mut [u64],
    bin: impl Fn(usize) -> usize,
) {
    let spare = acc.len() - 1;
    let cell = |r: usize, selected: bool| {
        let (s, b) = (slot_of[r], bin(r));
        if selected && s != u32::MAX && b < width {
            s as usize * width + b
        } else {
            spare
        }
    };
    for (k, &w) in words.iter().enumerate() {
        let base = k * 64;
        let mut w = w;
        while w != 0 {
            let r = base + w.trailing_zeros() as usize;
            w &= w - 1;
            acc[cell(r, true)] += 1;
        }
    }
}

/// The brushed filter's bounds in `filters`: the one range filter on the
/// grid's column, or the whole line when there is none yet (a brush about
/// to start: the index is built before the first move, as Falcon builds
/// the hovered view's); `None` if more than one filter is on it.
pub fn brushed_bounds(grid: &BrushGrid, filters: &[Filter]) -> Option<(f64, f64)> {
    let mut on = filters.iter().filter(|f| f.column() == grid.column);
    match (on.next(), on.next()) {
        (Some(Filter::Range { min, max, .. }), None) => Some((*min, *max)),
        (None, _) => Some((f64::NEG_INFINITY, f64::INFINITY)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_as_written() {
        assert_eq!(parse_step("1e-3").map(|s| (s.0, s.1)), Some((1, -3)));
        assert_eq!(parse_step("0.25").map(|s| (s.0, s.1)), Some((25, -2)));
        assert_eq!(parse_step("86400000").map(|s| (s.0, s.1)), Some((864, 5)));
        assert_eq!(
            parse_step("10").map(|s| (s.0, s.1)),
            parse_step("1e1").map(|s| (s.0, s.1))
        );
        for bad in [
            "", ".", "0", "-1", "1e", "abc", "1e400", "1.2.3", "inf", "NaN",
        ] {
            assert!(parse_step(bad).is_none(), "{bad}");
        }
    }
}
