//! Zoom-level statistics for seamless colour scaling.
//!
//! Rows are sorted along the Hilbert curve, so the rows of any quadtree cell —
//! and so of any pixel of any zoom level — are one contiguous run. One pass
//! over the (filtered) rows, closing a run whenever the pixel changes, gives
//! the value of every non-empty pixel of the whole map at that zoom without
//! building the map. Their distribution drives `span` and `eq_hist` for every
//! tile of the zoom, so adjacent tiles share one colour scale.

use crate::geo::QBITS;
use crate::query::{Agg, Filter, QueryError};
use crate::store::Dataset;
use crate::store::column::AsF64;
use crate::tally::Tally;
use std::sync::atomic::AtomicBool;

/// Float pixel values kept before subsampling (by a fixed stride, so
/// deterministic); sampled scales keep as many.
pub(crate) const MAX_FLOAT_VALUES: usize = 1 << 18;

/// Distribution of non-empty pixel values over a whole zoom level.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoomStats {
    /// `(value, pixels)` sorted by value.
    pub histogram: Vec<(f64, u64)>,
    /// Whether values are integer counts (exact eq_hist applies).
    pub integer: bool,
    /// Non-empty pixels.
    pub pixels: u64,
}

impl ZoomStats {
    /// Smallest and largest pixel value.
    pub fn range(&self) -> Option<(f64, f64)> {
        Some((self.histogram.first()?.0, self.histogram.last()?.0))
    }
}

/// Which of an [`Acc`]'s moments a pass keeps, beyond the count and the
/// sum: only what the reduction reads, as each costs a chain of work per
/// row. The pack's statistics keep them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moments {
    /// Count and sum (sum, mean).
    Sum,
    /// And the sum of squares (std, var).
    Squares,
    /// And the smallest and largest value (min, max).
    Extremes,
    /// Every moment.
    All,
}

impl Moments {
    /// The moments `agg` reads.
    pub(crate) fn of(agg: &Agg) -> Moments {
        match agg {
            Agg::Std(_) | Agg::Var(_) => Moments::Squares,
            Agg::Min(_) | Agg::Max(_) => Moments::Extremes,
            _ => Moments::Sum,
        }
    }
}

/// A run's values as sums shifted by its first value: adding a row is a
/// few adds (no division), and the variance stays exact for large values
/// close together.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acc {
    pub(crate) n: u64,
    shift: f64,
    sum: f64,
    sq: f64,
    min: f64,
    max: f64,
}

/// An [`Acc`] that kept only its count and sum ([`Moments::Sum`]): what
/// sum and mean read, in half the bytes, so a mean's cells take half the
/// memory and fresh pages. Converting to an `Acc` and back is exact.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sums {
    n: u64,
    shift: f64,
    sum: f64,
}

impl From<Sums> for Acc {
    fn from(s: Sums) -> Acc {
        Acc {
            n: s.n,
            shift: s.shift,
            sum: s.sum,
            sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Acc {
    /// The count and sum alone.
    pub(crate) fn sums(&self) -> Sums {
        Sums {
            n: self.n,
            shift: self.shift,
            sum: self.sum,
        }
    }
}

impl Default for Acc {
    fn default() -> Acc {
        Acc::starting_at(0.0)
    }
}

impl Acc {
    pub(crate) fn starting_at(v: f64) -> Acc {
        Acc {
            n: 0,
            shift: if v.is_finite() { v } else { 0.0 },
            sum: 0.0,
            sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// `[shift, sum, sq, min, max]`, as [`crate::store::stats`] stores them.
    pub(crate) fn moments(&self) -> [f64; 5] {
        [self.shift, self.sum, self.sq, self.min, self.max]
    }

    /// The accumulator [`Acc::moments`] and `n` describe.
    pub(crate) fn from_moments(n: u64, m: [f64; 5]) -> Acc {
        let [shift, sum, sq, min, max] = m;
        Acc {
            n,
            shift,
            sum,
            sq,
            min,
            max,
        }
    }

    /// Add `v` when `ok`, branch-free.
    #[inline(always)]
    pub(crate) fn add_if(&mut self, v: f64, ok: bool) {
        let d = if ok { v - self.shift } else { 0.0 };
        self.n += ok as u64;
        self.sum += d;
        self.sq += d * d;
        self.min = if ok { self.min.min(v) } else { self.min };
        self.max = if ok { self.max.max(v) } else { self.max };
    }

    /// The accumulator of the rows of `s` that pass (`mask`; all when
    /// `None`) and hold a number, shifted by the first value, with the
    /// `moments` asked for (the others stay at their identities). Rows go
    /// to four lanes in turn, each its own chain of adds (one chain waits
    /// on every add's latency), and the lanes are summed at the end: they
    /// share the shift, so that merge is plain adds. `s` must not be empty.
    #[inline(always)]
    pub(crate) fn of_rows<T: crate::store::column::AsF64>(
        s: &[T],
        mask: Option<&[bool]>,
        moments: Moments,
    ) -> Acc {
        let shift = Acc::starting_at(s[0].as_f64()).shift;
        // Integers of up to 32 bits sum exactly in i64: an integer sum
        // reassociates, so its loop vectorizes (a float sum cannot), with
        // no NaN to test. A cell's run lies in one scan span (at most 2^18
        // rows of |v - shift| < 2^33), so the sum stays below 2^51: no
        // overflow, and exact as f64, where float adds would round it once
        // past 2^53. Every moment set takes it, so cells and the pack's
        // statistics agree to the bit.
        let int_sum = (T::INTEGER && std::mem::size_of::<T>() <= 4).then(|| {
            debug_assert!(s.len() <= 1 << 20);
            let base = shift as i64;
            match mask {
                None => (
                    s.len() as u64,
                    s.iter().map(|v| v.as_i64() - base).sum::<i64>() as f64,
                ),
                Some(m) => {
                    let (mut n, mut sum) = (0u64, 0i64);
                    // Masks by arithmetic, not branches: the loop vectorizes.
                    for (v, &k) in s.iter().zip(&m[..s.len()]) {
                        let k = i64::from(k);
                        sum += (v.as_i64() - base) & k.wrapping_neg();
                        n += k as u64;
                    }
                    (n, sum as f64)
                }
            }
        });
        // One loop per case, so that each keeps its accumulators in
        // registers and tests no option per row.
        macro_rules! lanes {
            ($sq:literal, $ext:literal) => {
                match mask {
                    Some(m) => {
                        let m = &m[..s.len()];
                        Acc::lanes::<T, $sq, $ext>(s, shift, int_sum, |i| m[i])
                    }
                    None => Acc::lanes::<T, $sq, $ext>(s, shift, int_sum, |_| true),
                }
            };
        }
        match moments {
            Moments::Sum => lanes!(false, false),
            Moments::Squares => lanes!(true, false),
            Moments::Extremes => lanes!(false, true),
            Moments::All => lanes!(true, true),
        }
    }

    #[inline(always)]
    fn lanes<T: crate::store::column::AsF64, const SQ: bool, const EXT: bool>(
        s: &[T],
        shift: f64,
        int_sum: Option<(u64, f64)>,
        pass: impl Fn(usize) -> bool,
    ) -> Acc {
        if let (Some((n, sum)), false, false) = (int_sum, SQ, EXT) {
            return Acc::from(Sums { n, shift, sum });
        }
        let mut n = [0u64; 4];
        let (mut sum, mut sq) = ([0.0f64; 4], [0.0f64; 4]);
        let (mut min, mut max) = ([f64::INFINITY; 4], [f64::NEG_INFINITY; 4]);
        // Branch-free: a filter passes rows at random, and a branch per row
        // would mispredict a fair share of them. A failing row adds +0.0
        // and offers the extremes their identities, by bit masks (a
        // multiply by 0 would turn an infinite value into NaN).
        let mut add = |l: usize, i: usize| {
            let v = s[i].as_f64();
            let ok = pass(i) & !v.is_nan();
            let m = 0u64.wrapping_sub(ok as u64);
            let pick = |a: f64, b: f64| f64::from_bits((a.to_bits() & m) | (b.to_bits() & !m));
            let d = f64::from_bits((v - shift).to_bits() & m);
            n[l] += ok as u64;
            sum[l] += d;
            if SQ {
                sq[l] += d * d;
            }
            if EXT {
                min[l] = min[l].min(pick(v, f64::INFINITY));
                max[l] = max[l].max(pick(v, f64::NEG_INFINITY));
            }
        };
        let quads = s.len() / 4 * 4;
        for i in (0..quads).step_by(4) {
            for l in 0..4 {
                add(l, i + l);
            }
        }
        for i in quads..s.len() {
            add(0, i);
        }
        Acc {
            n: n.iter().sum(),
            shift,
            sum: int_sum.map_or_else(|| (sum[0] + sum[1]) + (sum[2] + sum[3]), |(_, sum)| sum),
            sq: (sq[0] + sq[1]) + (sq[2] + sq[3]),
            min: min[0].min(min[1]).min(min[2].min(min[3])),
            max: max[0].max(max[1]).max(max[2].max(max[3])),
        }
    }

    pub(crate) fn merge(&mut self, o: &Acc) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        // Re-shift the other run's sums to this run's shift.
        let (k, on) = (o.shift - self.shift, o.n as f64);
        self.sq += o.sq + 2.0 * k * o.sum + on * k * k;
        self.sum += o.sum + on * k;
        self.n += o.n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    fn total(&self) -> f64 {
        self.shift * self.n as f64 + self.sum
    }

    fn mean(&self) -> f64 {
        self.shift + self.sum / self.n as f64
    }

    fn var(&self) -> f64 {
        let n = self.n as f64;
        ((self.sq - self.sum * self.sum / n) / n).max(0.0)
    }
}

/// The pixel value a run closes with; `None` when the pixel stays empty.
pub(crate) fn value(agg: &Agg, a: &Acc, rows: u64) -> Option<f64> {
    match agg {
        Agg::Count | Agg::CountCat(_) => (rows > 0).then_some(rows as f64),
        Agg::Any => (rows > 0).then_some(1.0),
        _ if a.n == 0 => None,
        Agg::Sum(_) | Agg::CatSum(..) => Some(a.total()),
        Agg::Mean(_) | Agg::CatMean(..) => Some(a.mean()),
        Agg::Min(_) => Some(a.min),
        Agg::Max(_) => Some(a.max),
        Agg::Std(_) => Some(a.var().sqrt()),
        Agg::Var(_) => Some(a.var()),
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Run {
    /// Pixel column in the high half, row in the low half.
    pub(crate) pixel: u64,
    pub(crate) rows: u64,
    pub(crate) acc: Acc,
}

impl Run {
    fn merge(&mut self, o: &Run) {
        self.rows += o.rows;
        self.acc.merge(&o.acc);
    }
}

/// Runs of rows per pixel, for count, any and count_cat, tallied straight
/// into the piece. Masked-out rows add nothing (a run of only those leaves
/// its pixel empty), so the only data-dependent branch is the pixel change.
fn scan_counts(
    len: usize,
    pixel: impl Fn(usize) -> u64,
    mask: Option<&[bool]>,
    any: bool,
    piece: &mut Piece,
) {
    if len == 0 {
        return;
    }
    let keep = |i: usize| mask.is_none_or(|m| m[i]) as u64;
    let run = |pixel: u64, rows: u64| Run {
        pixel,
        rows,
        acc: Acc::default(),
    };
    // The first run may continue in the span before: it is stitched later.
    let mut cur = pixel(0);
    let mut rows = 0u64;
    let mut i = 0;
    while i < len && pixel(i) == cur {
        rows += keep(i);
        i += 1;
    }
    piece.first = Some(run(cur, rows));
    if i == len {
        return;
    }
    let tally = &mut piece.inner.counts;
    // Deep zooms are mostly pixels of one point: counting those in a
    // register spares a chain of increments on one memory slot.
    let mut ones = 0u64;
    cur = pixel(i);
    rows = 0;
    for i in i..len {
        let p = pixel(i);
        if p != cur {
            if rows == 1 || (any && rows > 1) {
                ones += 1;
            } else if rows > 1 {
                tally.add(rows);
            }
            cur = p;
            rows = 0;
        }
        rows += keep(i);
    }
    tally.add_n(1, ones);
    // So may the last, in the span after.
    piece.last = Some(run(cur, rows));
}

/// Runs of rows per pixel with a value column, pushed straight into the
/// piece (its first and last runs kept for stitching, as in [`scan_counts`]).
fn scan_values<T: AsF64>(
    values: &[T],
    pixel: impl Fn(usize) -> u64,
    mask: Option<&[bool]>,
    agg: &Agg,
    piece: &mut Piece,
) {
    let Some(first) = values.first() else {
        return;
    };
    let mut cur = Run {
        pixel: pixel(0),
        rows: 0,
        acc: Acc::starting_at(first.as_f64()),
    };
    let mut started = false;
    for (i, v) in values.iter().enumerate() {
        let v = v.as_f64();
        let p = pixel(i);
        if p != cur.pixel {
            if started {
                piece.inner.push(agg, &cur, false);
            } else {
                piece.first = Some(cur);
                started = true;
            }
            cur = Run {
                pixel: p,
                rows: 0,
                acc: Acc::starting_at(v),
            };
        }
        let keep = mask.is_none_or(|m| m[i]);
        cur.rows += keep as u64;
        cur.acc.add_if(v, keep & !v.is_nan());
    }
    if started {
        piece.last = Some(cur);
    } else {
        piece.first = Some(cur);
    }
}

/// Pixel values seen: integer values tallied, float values kept — all of
/// them, or at deep zooms those of a deterministic sample of pixels.
#[derive(Default)]
pub(crate) struct Values {
    counts: Tally,
    floats: Vec<f64>,
    /// Non-empty pixels with a float value, sampled or not (an infinite
    /// value, kept out of the sample, still counts as a pixel).
    float_pixels: u64,
    /// Keep the values of pixels whose 32-bit hash lies below this: one in
    /// `stride` (by pixel, so the sample does not depend on how rows split).
    threshold: u64,
}

impl Values {
    pub(crate) fn new(stride: u64) -> Values {
        Values {
            threshold: if stride <= 1 {
                u64::MAX
            } else {
                (1u64 << 32) / stride
            },
            ..Values::default()
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, agg: &Agg, run: &Run, integer: bool) {
        if integer {
            // Counts stay integers: no round trip through f64 per pixel.
            if run.rows > 0 {
                let any = matches!(agg, Agg::Any);
                self.counts.add(if any { 1 } else { run.rows });
            }
        } else if run.acc.n > 0 {
            // Every value aggregation has a value once a row counted.
            self.float_pixels += 1;
            let h = run.pixel.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            if h < self.threshold {
                if let Some(v) = value(agg, &run.acc, run.rows).filter(|v| v.is_finite()) {
                    self.floats.push(v);
                }
            }
        }
    }

    fn extend(&mut self, o: Values) {
        self.counts.extend(&o.counts);
        self.floats.extend(o.floats);
        self.float_pixels += o.float_pixels;
    }
}

/// Per-span result: the first and last runs may continue in the neighbours.
struct Piece {
    first: Option<Run>,
    last: Option<Run>,
    inner: Values,
}

/// Pixel values of the whole map at `zoom` for tiles of `tile_size` pixels.
pub fn zoom_stats(
    ds: &Dataset,
    zoom: u8,
    tile_size: u32,
    agg: &Agg,
    filters: &[Filter],
    cancel: Option<&AtomicBool>,
) -> Result<ZoomStats, QueryError> {
    agg.validate(&ds.manifest)?;
    let level = (zoom as u32 + tile_size.trailing_zeros()).min(QBITS);
    if let Some(stats) = ds
        .overview
        .as_ref()
        .and_then(|ov| ov.zoom_stats(&ds.manifest, level, agg, filters))
    {
        return Ok(stats);
    }
    let shift = QBITS - level;
    debug_assert!(shift < 32);
    let integer = matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_));
    let stride = float_stride(ds, level, integer);
    let pieces = super::scan_spans(
        ds,
        agg,
        filters,
        cancel,
        || Piece {
            first: None,
            last: None,
            inner: Values::new(stride),
        },
        |piece, span| {
            let r = span.rows.clone();
            let (qx, qy) = (&span.part.qx()[r.clone()], &span.part.qy()[r.clone()]);
            let pixel = |i: usize| ((qx[i] >> shift) as u64) << 32 | (qy[i] >> shift) as u64;
            match &span.num {
                None => {
                    let any = matches!(agg, Agg::Any);
                    scan_counts(qx.len(), pixel, span.mask, any, piece)
                }
                Some(c) => crate::with_num_slice!(c.values, |s| {
                    scan_values(&s[r.clone()], pixel, span.mask, agg, piece)
                }),
            }
        },
    )?;
    // Stitch runs that cross span boundaries, in row order.
    let mut values = Values::new(stride);
    let mut carry: Option<Run> = None;
    for p in pieces {
        let Some(first) = p.first else { continue };
        carry = match carry {
            Some(mut c) if c.pixel == first.pixel => {
                c.merge(&first);
                Some(c)
            }
            Some(c) => {
                values.push(agg, &c, integer);
                Some(first)
            }
            None => Some(first),
        };
        if let Some(last) = p.last {
            if let Some(c) = carry.take() {
                values.push(agg, &c, integer);
            }
            values.extend(p.inner);
            carry = Some(last);
        }
    }
    if let Some(c) = carry {
        values.push(agg, &c, integer);
    }
    Ok(values.finish(integer))
}

impl Values {
    /// The distribution of the pixel values pushed.
    pub(crate) fn finish(self, integer: bool) -> ZoomStats {
        let (histogram, pixels) = if integer {
            let h: Vec<(f64, u64)> = self
                .counts
                .sorted()
                .into_iter()
                .map(|(k, n)| (k as f64, n))
                .collect();
            let pixels = h.iter().map(|x| x.1).sum();
            (h, pixels)
        } else {
            let pixels = self.float_pixels;
            let mut v = self.floats;
            // Subsample (by a fixed stride, so deterministically) before sorting:
            // deep zooms have tens of millions of pixels, and eq_hist uses 65,536
            // bins anyway.
            if v.len() > MAX_FLOAT_VALUES {
                let stride = v.len().div_ceil(MAX_FLOAT_VALUES);
                v = v.into_iter().step_by(stride).collect();
            }
            v.sort_by(f64::total_cmp);
            let mut h: Vec<(f64, u64)> = Vec::new();
            for x in v {
                match h.last_mut() {
                    Some(last) if last.0 == x => last.1 += 1,
                    _ => h.push((x, 1)),
                }
            }
            (h, pixels)
        };
        ZoomStats {
            histogram,
            integer,
            pixels,
        }
    }
}

/// One in how many pixels' float values a zoom stats pass keeps: values are
/// sampled once a zoom could hold more than `MAX_FLOAT_VALUES` pixels
/// (bounded by the unfiltered pixel count the overview knows, else by the
/// rows), rather than collected and thinned.
pub(crate) fn float_stride(ds: &Dataset, level: u32, integer: bool) -> u64 {
    if integer {
        return 1;
    }
    let bound = ds
        .overview
        .as_ref()
        .and_then(|ov| ov.pixels(level))
        .unwrap_or(ds.manifest.rows);
    bound.div_ceil(MAX_FLOAT_VALUES as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The four-lane pass equals adding row by row: the same count and
        /// extremes, sums equal up to the order of the adds (exact for
        /// integers), whatever rows fail or hold no number.
        #[test]
        fn lanes_match_adding_row_by_row(
            rows in proptest::collection::vec((-1000i32..1000, any::<bool>(), 0u8..20), 1..200),
        ) {
            // A value per row: mostly integers, some halves, a NaN or an
            // infinity now and then.
            let values: Vec<f64> = rows
                .iter()
                .map(|&(v, _, k)| match k {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    3..=6 => f64::from(v) + 0.5,
                    _ => f64::from(v),
                })
                .collect();
            let mask: Vec<bool> = rows.iter().map(|&(_, m, _)| m).collect();
            // An integer column takes the exact integer sum: equal to the
            // row-by-row f64 adds, which are exact at these magnitudes.
            let ints: Vec<i32> = rows.iter().map(|&(v, _, k)| v.wrapping_mul(1 + i32::from(k) * 100_000)).collect();
            for m in [Some(&mask[..]), None] {
                let mut want = Acc::starting_at(f64::from(ints[0]));
                for (i, &v) in ints.iter().enumerate() {
                    want.add_if(f64::from(v), m.is_none_or(|m| m[i]));
                }
                for moments in [Moments::Sum, Moments::Squares, Moments::Extremes, Moments::All] {
                    let got = Acc::of_rows(&ints, m, moments);
                    prop_assert_eq!(got.n, want.n);
                    prop_assert_eq!(got.sum, want.sum);
                    if moments == Moments::All {
                        prop_assert_eq!(got.min, want.min);
                        prop_assert_eq!(got.max, want.max);
                        prop_assert!((got.sq - want.sq).abs() <= 1e-9 * want.sq.abs().max(1.0));
                    }
                }
            }
            for m in [Some(&mask[..]), None] {
                let mut want = Acc::starting_at(values[0]);
                for (i, &v) in values.iter().enumerate() {
                    want.add_if(v, m.is_none_or(|m| m[i]) & !v.is_nan());
                }
                let got = Acc::of_rows(&values, m, Moments::All);
                prop_assert_eq!(got.n, want.n);
                prop_assert_eq!(got.shift.to_bits(), want.shift.to_bits());
                prop_assert_eq!(got.min, want.min);
                prop_assert_eq!(got.max, want.max);
                let close = |a: f64, b: f64| {
                    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * b.abs().max(1.0)
                };
                prop_assert!(close(got.sum, want.sum), "{} {}", got.sum, want.sum);
                prop_assert!(close(got.sq, want.sq), "{} {}", got.sq, want.sq);
                // A pass that keeps fewer moments has the same count and sum.
                for moments in [Moments::Sum, Moments::Squares, Moments::Extremes] {
                    let part = Acc::of_rows(&values, m, moments);
                    prop_assert_eq!(part.n, got.n);
                    prop_assert_eq!(part.sum.to_bits(), got.sum.to_bits());
                }
            }
        }
    }

    #[test]
    fn shifted_sums_merge_like_one_run() {
        let values: Vec<f64> = (0..200)
            .map(|i| 1e9 + (i * 37 % 101) as f64 * 0.25)
            .collect();
        let whole = {
            let mut a = Acc::starting_at(values[0]);
            values.iter().for_each(|&v| a.add_if(v, true));
            a
        };
        for cut in [1, 50, 199] {
            let mut a = Acc::starting_at(values[0]);
            let mut b = Acc::starting_at(values[cut] - 7.0);
            values[..cut].iter().for_each(|&v| a.add_if(v, true));
            values[cut..].iter().for_each(|&v| b.add_if(v, v > 0.0));
            b.add_if(f64::NAN, false);
            a.merge(&b);
            assert_eq!(a.n, whole.n);
            assert!((a.total() - whole.total()).abs() < 1e-3);
            assert!((a.mean() - whole.mean()).abs() < 1e-9);
            assert!(
                (a.var() - whole.var()).abs() < 1e-6 * whole.var(),
                "{} {}",
                a.var(),
                whole.var()
            );
            assert_eq!((a.min, a.max), (whole.min, whole.max));
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        assert!((whole.var() - var).abs() < 1e-6 * var);
    }
}
