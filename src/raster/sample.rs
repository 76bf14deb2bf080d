//! Zoom-wide colour scales at a cost that does not grow with the dataset.
//!
//! An exact zoom scale needs the value of every non-empty pixel of the
//! zoom: one pass over every row that passes the filters. Here the pixel
//! values come from a stratified sample instead. The rows are in Hilbert
//! order, so [`BLOCKS`] windows of rows spread evenly along the curve are
//! [`BLOCKS`] compact patches spread over the data. Each window is widened
//! to whole pixels of the zoom, so every pixel it touches is read in full
//! and its value is exact. A pixel of `n` rows meets a window of `B` rows
//! placed at random with probability `π = BLOCKS·(n + B − 1)/N`, so each
//! sampled pixel stands for `1/π` pixels (Horvitz–Thompson weights): the
//! weighted values estimate the distribution of all pixel values without
//! favouring dense pixels, which windows meet more often.
//!
//! The cost is the rows of the windows (the sample budget) plus the rows of
//! the pixels cut by their edges; it does not depend on the dataset's size.

use super::zoom::{Acc, MAX_FLOAT_VALUES, ZoomStats, value};
use crate::geo::QBITS;
use crate::query::{Agg, Filter, QueryError};
use crate::store::Dataset;
use crate::store::overview::MIN_LEVEL;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows a sampled scale reads by default (plus the pixels cut by the
/// windows' edges).
pub const DEFAULT_SAMPLE_ROWS: u64 = 1 << 18;

/// Windows along the curve.
const BLOCKS: u64 = 256;

/// The distribution of the zoom's pixel values estimated from about
/// `sample_rows` rows. `None` when a sample would not be cheaper than the
/// exact pass (a dataset under twice the budget, or pixels so large that
/// widening the windows to whole pixels reads more than four budgets).
pub fn zoom_stats(
    ds: &Dataset,
    zoom: u8,
    tile_size: u32,
    agg: &Agg,
    filters: &[Filter],
    sample_rows: u64,
    cancel: Option<&AtomicBool>,
) -> Result<Option<ZoomStats>, QueryError> {
    agg.validate(&ds.manifest)?;
    let n = ds.manifest.rows;
    if sample_rows == 0 || n <= 2 * sample_rows {
        return Ok(None);
    }
    let level = (zoom as u32 + tile_size.trailing_zeros()).min(QBITS);
    let rows = Rows::of(ds, level);
    let block = (sample_rows / BLOCKS).max(1);
    let windows = rows.windows(block);
    let read: u64 = windows.iter().map(|w| w.end - w.start).sum();
    if read > 4 * sample_rows {
        return Ok(None);
    }

    let integer = matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_));
    // The windows are scattered over the file: on data larger than memory,
    // one batch of read-ahead for all of them beats a fault at a time.
    super::prefetch(
        ds,
        windows.iter().flat_map(|w| rows.segments(w.clone())),
        agg,
        filters,
    );
    let mut used = vec![false; ds.partitions.len()];
    for (p, _) in windows.iter().flat_map(|w| rows.segments(w.clone())) {
        used[p] = true;
    }
    let bound = crate::query::bind_used(ds, filters, &used);
    let weight = |raw: u64| -> f64 {
        let pi = (BLOCKS * (raw + block - 1)) as f64 / n as f64;
        1.0 / pi.min(1.0)
    };
    let pieces: Vec<(Weighted, u64)> = windows
        .par_iter()
        .map(|w| {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(QueryError::Cancelled);
            }
            let mut out = Weighted::new(integer);
            let mut kept = 0u64;
            let mut run: Option<PixelRun> = None;
            for (p, local) in rows.segments(w.clone()) {
                let part = &ds.partitions[p];
                let num = super::value_column(part, agg);
                let mut mask = Vec::new();
                let passes: Option<&[bool]> = match &bound[p] {
                    // The zone maps rule the partition out: no row passes.
                    None => {
                        mask = vec![false; local.len()];
                        Some(&mask)
                    }
                    Some(f) => f
                        .mask_valid(local.clone(), num.as_ref().and_then(|c| c.nulls), &mut mask)
                        .then_some(&mask[..]),
                };
                let (qx, qy) = (&part.qx()[local.clone()], &part.qy()[local.clone()]);
                let shift = rows.shift;
                for i in 0..qx.len() {
                    let pixel = ((qx[i] >> shift) as u64) << 32 | (qy[i] >> shift) as u64;
                    let v = num.as_ref().map_or(0.0, |c| c.get(local.start + i));
                    let keep = passes.is_none_or(|m| m[i]);
                    let r = match &mut run {
                        Some(r) if r.pixel == pixel => r,
                        slot => {
                            if let Some(done) = slot.take() {
                                done.close(agg, &weight, &mut out);
                            }
                            slot.insert(PixelRun::new(pixel, v))
                        }
                    };
                    r.raw += 1;
                    r.kept += keep as u64;
                    kept += keep as u64;
                    r.acc.add_if(v, keep & !v.is_nan());
                }
            }
            if let Some(done) = run {
                done.close(agg, &weight, &mut out);
            }
            Ok((out, kept))
        })
        .collect::<Result<_, _>>()?;
    let mut all = Weighted::new(integer);
    let mut kept = 0u64;
    for (p, k) in pieces {
        all.merge(p);
        kept += k;
    }
    let histogram = all.into_histogram();
    let mut histogram: Vec<(f64, u64)> = histogram
        .into_iter()
        .map(|(v, w)| (v, (w.round() as u64).max(1)))
        .collect();
    if let ([(v, _)], Agg::Count | Agg::CountCat(_)) = (&histogram[..], agg) {
        let v = *v as u64;
        // The windows are disjoint: `read` is every row they hold.
        let pass = if read == 0 {
            0.0
        } else {
            kept as f64 / read as f64
        };
        let unfiltered = ds.overview.as_ref().and_then(|ov| {
            let (values, cells) = ov.counts.get(level.checked_sub(MIN_LEVEL)? as usize)?;
            Some(values.iter().copied().zip(cells.iter().copied()))
        });
        // Some denser pixel is then more likely than none (a Poisson count
        // is 0 with probability e^-expected).
        if unfiltered.is_some_and(|u| expected_denser(u, v, pass) > std::f64::consts::LN_2) {
            histogram.push(((v + 1) as f64, 1));
        }
    }
    let pixels = histogram.iter().map(|h| h.1).sum();
    Ok(Some(ZoomStats {
        histogram,
        integer,
        pixels,
    }))
}

/// How many pixels are expected to hold more than `v` passing rows, from
/// the unfiltered distribution of the level (`(rows, pixels)` pairs) and
/// the share of rows that pass, taking rows to pass independently
/// (binomially) of where they lie.
///
/// This decides a sample that saw a single count `v`. Counts are
/// discrete, and Datashader's eq_hist (and every span) puts a zoom's only
/// value at the top of the colormap but its lowest value at the bottom as
/// soon as one denser pixel exists. At deep zooms nearly every pixel holds
/// one row and the few that hold two are what a sample misses: taken as
/// single-valued, every pixel of the estimate is 255 levels from the exact
/// colour. When at least one such pixel is more likely than none, the
/// estimate keeps `v` at the bottom by adding one pixel of `v + 1`.
pub(crate) fn expected_denser(
    unfiltered: impl Iterator<Item = (u64, u64)>,
    v: u64,
    pass: f64,
) -> f64 {
    // A count past this is never a deep zoom's only value, and the tail sum
    // below stays short.
    const MAX_V: u64 = 64;
    if v > MAX_V || !(0.0..=1.0).contains(&pass) {
        return 0.0;
    }
    let mut expected = 0.0;
    for (rows, pixels) in unfiltered.filter(|&(rows, _)| rows > v) {
        // P(Binomial(rows, pass) > v) = 1 - P(at most v), the terms built
        // one from the last.
        let tail = if pass >= 1.0 {
            1.0
        } else {
            let (n, q) = (rows as f64, 1.0 - pass);
            let mut term = q.powf(n);
            let mut at_most = term;
            for j in 0..v {
                term *= (n - j as f64) / (j + 1) as f64 * pass / q;
                at_most += term;
            }
            (1.0 - at_most).max(0.0)
        };
        expected += pixels as f64 * tail;
    }
    expected
}

/// One pixel's rows within a window.
struct PixelRun {
    pixel: u64,
    /// Rows of the pixel (passing or not): what its inclusion probability
    /// depends on.
    raw: u64,
    /// Rows that pass the filters.
    kept: u64,
    acc: Acc,
}

impl PixelRun {
    fn new(pixel: u64, first: f64) -> PixelRun {
        PixelRun {
            pixel,
            raw: 0,
            kept: 0,
            acc: Acc::starting_at(first),
        }
    }

    fn close(self, agg: &Agg, weight: &impl Fn(u64) -> f64, out: &mut Weighted) {
        if let Some(v) = value(agg, &self.acc, self.kept).filter(|v| v.is_finite()) {
            out.add(v, weight(self.raw));
        }
    }
}

/// Sampled pixel values with their weights.
enum Weighted {
    /// Counts: weights summed per count (deep zooms sample a million
    /// pixels of a handful of distinct counts; sorting them would cost
    /// more than reading the rows).
    Counts {
        small: Vec<f64>,
        large: std::collections::BTreeMap<u64, f64>,
    },
    /// Float values, kept to be sorted.
    Floats(Vec<(f64, f64)>),
}

/// Counts below this are summed in a vector.
const SMALL_COUNTS: usize = 1 << 12;

impl Weighted {
    fn new(integer: bool) -> Weighted {
        if integer {
            Weighted::Counts {
                small: Vec::new(),
                large: Default::default(),
            }
        } else {
            Weighted::Floats(Vec::new())
        }
    }

    #[inline]
    fn add(&mut self, v: f64, w: f64) {
        match self {
            Weighted::Counts { small, large } => {
                let k = v as u64;
                if (k as usize) < SMALL_COUNTS {
                    if small.len() <= k as usize {
                        small.resize(k as usize + 1, 0.0);
                    }
                    small[k as usize] += w;
                } else {
                    *large.entry(k).or_default() += w;
                }
            }
            Weighted::Floats(f) => f.push((v, w)),
        }
    }

    fn merge(&mut self, o: Weighted) {
        match (self, o) {
            (Weighted::Counts { small, large }, Weighted::Counts { small: s, large: l }) => {
                if small.len() < s.len() {
                    small.resize(s.len(), 0.0);
                }
                for (a, b) in small.iter_mut().zip(s) {
                    *a += b;
                }
                for (k, w) in l {
                    *large.entry(k).or_default() += w;
                }
            }
            (Weighted::Floats(a), Weighted::Floats(b)) => a.extend(b),
            _ => unreachable!("one kind per scale"),
        }
    }

    /// `(value, weight)` sorted by value, repeated values merged.
    fn into_histogram(self) -> Vec<(f64, f64)> {
        match self {
            Weighted::Counts { small, large } => small
                .into_iter()
                .enumerate()
                .filter(|&(_, w)| w > 0.0)
                .map(|(k, w)| (k as f64, w))
                .chain(large.into_iter().map(|(k, w)| (k as f64, w)))
                .collect(),
            Weighted::Floats(mut values) => {
                if values.len() > MAX_FLOAT_VALUES {
                    let stride = values.len().div_ceil(MAX_FLOAT_VALUES);
                    values = values.into_iter().step_by(stride).collect();
                }
                values.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut h: Vec<(f64, f64)> = Vec::new();
                for (v, w) in values {
                    match h.last_mut() {
                        Some(last) if last.0 == v => last.1 += w,
                        _ => h.push((v, w)),
                    }
                }
                h
            }
        }
    }
}

/// The dataset's rows as one sequence in curve order.
struct Rows<'a> {
    ds: &'a Dataset,
    /// Global index of each partition's first row, and the total last.
    starts: Vec<u64>,
    /// Bits a quantized coordinate drops to become a pixel coordinate.
    shift: u32,
}

impl<'a> Rows<'a> {
    fn of(ds: &'a Dataset, level: u32) -> Rows<'a> {
        let mut starts = Vec::with_capacity(ds.partitions.len() + 1);
        let mut at = 0u64;
        for p in &ds.partitions {
            starts.push(at);
            at += p.info.rows;
        }
        starts.push(at);
        Rows {
            ds,
            starts,
            shift: QBITS - level,
        }
    }

    fn total(&self) -> u64 {
        *self.starts.last().expect("at least the total")
    }

    /// Partition and row within it of global row `g`.
    fn locate(&self, g: u64) -> (usize, usize) {
        let p = self.starts.partition_point(|&s| s <= g) - 1;
        (p, (g - self.starts[p]) as usize)
    }

    /// The pixel of global row `g`, as its Hilbert key prefix: pixels of a
    /// level are contiguous key ranges, so this never decreases with `g`.
    fn pixel_key(&self, g: u64) -> u64 {
        let (p, i) = self.locate(g);
        let part = &self.ds.partitions[p];
        let key = crate::geo::hilbert(part.qx()[i], part.qy()[i]);
        key.checked_shr(2 * self.shift).unwrap_or(0)
    }

    /// The first global row at or after `lo` whose pixel key is at least `key`.
    fn first_at_least(&self, mut lo: u64, mut hi: u64, key: u64) -> u64 {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.pixel_key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The first row of the pixel holding row `g`. The search gallops out
    /// from `g` before it bisects, so it only touches rows near the window:
    /// a bisection over the whole dataset would fault in pages (and their
    /// read-around) all over a file that may not be in memory.
    fn pixel_start(&self, g: u64) -> u64 {
        let key = self.pixel_key(g);
        let (mut inside, mut step) = (g, 1u64);
        while inside > 0 {
            let probe = inside.saturating_sub(step);
            if self.pixel_key(probe) < key {
                return self.first_at_least(probe + 1, inside, key);
            }
            inside = probe;
            step *= 2;
        }
        0
    }

    /// One past the last row of the pixel holding row `g` (galloping, as
    /// [`Rows::pixel_start`]).
    fn pixel_end(&self, g: u64) -> u64 {
        let (key, n) = (self.pixel_key(g), self.total());
        let (mut from, mut step) = (g + 1, 1u64);
        while from < n {
            let probe = (from + step - 1).min(n - 1);
            if self.pixel_key(probe) > key {
                return self.first_at_least(from, probe, key + 1);
            }
            from = probe + 1;
            step *= 2;
        }
        n
    }

    /// [`BLOCKS`] windows of `block` rows centred at evenly spaced points
    /// of the curve, widened to whole pixels and merged where they meet.
    fn windows(&self, block: u64) -> Vec<std::ops::Range<u64>> {
        let n = self.total();
        let mut out: Vec<std::ops::Range<u64>> = Vec::new();
        for k in 0..BLOCKS {
            let centre = ((2 * k + 1) * n) / (2 * BLOCKS);
            let lo = centre.saturating_sub(block / 2);
            let hi = (lo + block).min(n);
            if lo >= hi {
                continue;
            }
            let (start, end) = (self.pixel_start(lo), self.pixel_end(hi - 1));
            match out.last_mut() {
                Some(prev) if prev.end >= start => prev.end = prev.end.max(end),
                _ => out.push(start..end),
            }
        }
        out
    }

    /// A global row range as (partition, local rows) pieces.
    fn segments(
        &self,
        r: std::ops::Range<u64>,
    ) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> + Clone + '_ {
        let (first, _) = self.locate(r.start);
        (first..self.ds.partitions.len())
            .take_while(move |&p| self.starts[p] < r.end)
            .map(move |p| {
                let s = r.start.max(self.starts[p]) - self.starts[p];
                let e = r.end.min(self.starts[p + 1]) - self.starts[p];
                (p, s as usize..e as usize)
            })
    }
}

#[cfg(test)]
mod denser_tests {
    use super::expected_denser;

    #[test]
    fn expected_denser_pixels_follow_the_binomial_tail() {
        // 100 pixels of two rows: with every row passing, all 100 are
        // denser than 1; with half passing, each keeps both with 1/4.
        let pairs = || [(1u64, 1000u64), (2, 100)].into_iter();
        assert_eq!(expected_denser(pairs(), 1, 1.0), 100.0);
        assert!((expected_denser(pairs(), 1, 0.5) - 25.0).abs() < 1e-9);
        // Nothing passes, or nothing is denser than the value seen.
        assert_eq!(expected_denser(pairs(), 1, 0.0), 0.0);
        assert_eq!(expected_denser(pairs(), 2, 1.0), 0.0);
        // Three rows, a third passing: P(more than 1) = 1 - (2/3)^3 - 3 (1/3) (2/3)^2 = 7/27.
        let triples = [(3u64, 27u64)].into_iter();
        assert!((expected_denser(triples, 1, 1.0 / 3.0) - 7.0).abs() < 1e-9);
    }
}
