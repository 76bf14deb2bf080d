//! Value normalisation shared by every tile of a map ("seamless" shading).
//!
//! Datashader autoranges each image on its own: the offset, the eq_hist CDF
//! and the colour span all come from that image's pixels, so neighbouring
//! tiles rendered independently disagree at their seams. A [`Normalization`]
//! captures those per-image quantities once, from the pixel values of a
//! whole zoom level, and [`super::shade`] applies it to every tile. Built
//! from a single grid's own values it reproduces Datashader's per-image
//! result exactly.

use serde::{Deserialize, Serialize};

use super::numpy::{self, UniformBins};
use super::{CategoricalGrid, How, ScalarGrid, ShadeError, ShadeOptions};

/// Datashader's `eq_hist(nbins=256*256)`: also the range below which integer
/// data gets an exact per-value histogram.
const EQ_HIST_NBINS: usize = 256 * 256;

/// Everything needed to map a raw aggregate value to its position on the
/// colour (or, for categorical grids, alpha) scale consistently across tiles.
///
/// Holds the offset subtracted before `how`, the clipping applied before it,
/// the eq_hist CDF (exact per-integer table or 65536-bin histogram centres),
/// the transformed span after `rescale_discrete_levels`, and the number of
/// discrete levels eq_hist saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    how: How,
    offset: f64,
    clip: Clip,
    table: Option<CdfTable>,
    span: (f64, f64),
    discrete_levels: Option<usize>,
}

/// Datashader's `masked_clip_2d`: values below `lo` become `lo_set`, above
/// `hi` become `hi_set`. The `*_set` values differ from the bounds only for
/// integer arrays, where NumPy truncates the float bound on assignment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Clip {
    lo: f64,
    hi: f64,
    lo_set: f64,
    hi_set: f64,
}

/// `np.interp(data, xp, fp)` sample points of eq_hist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CdfTable {
    xp: Vec<f64>,
    fp: Vec<f64>,
    /// `xp == [0, 1, 2, ...]`: integral inputs can index `fp` directly.
    exact: bool,
    /// Where in `xp` to search (the float histogram has up to 65,536 knots).
    guide: numpy::Guide,
}

/// How Datashader treats the dtype of the array being normalised.
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// Integer dtype: eq_hist may use its exact per-value histogram.
    exact_eq_hist: bool,
    /// `np.array(span, dtype=data.dtype)[0]` truncates the offset.
    trunc_offset: bool,
    /// Clipping writes into an integer array, truncating the bound.
    trunc_clip: bool,
}

impl Rules {
    fn scalar(integer: bool) -> Rules {
        Rules {
            exact_eq_hist: integer,
            trunc_offset: integer,
            trunc_clip: integer,
        }
    }
}

impl Normalization {
    /// Builds the normalisation of a scalar grid's values, as Datashader's
    /// `shade` would for an image containing exactly these pixels.
    ///
    /// `values` are pixel values of the whole map at one zoom level; masked
    /// ones (NaN, and 0 when `integer`) are skipped. `integer` means a count
    /// grid (Datashader's unsigned aggregates): zero is empty and eq_hist
    /// uses its exact per-value histogram when the range is below 65536.
    /// Returns `None` when no value is unmasked.
    pub fn from_values(
        values: &[f64],
        integer: bool,
        opts: &ShadeOptions,
    ) -> Result<Option<Normalization>, ShadeError> {
        if integer && let Some(pairs) = distinct_counts(values) {
            // Count grids repeat a few values over their pixels: building
            // from the distinct values (each with its pixel count) gives the
            // same normalisation ([`Normalization::from_histogram`]) for a
            // transform per value instead of per pixel.
            return Normalization::from_histogram(&pairs, integer, opts);
        }
        let keep = move |v: f64| !(v.is_nan() || (integer && v == 0.0));
        build(
            || values.iter().copied().filter(|&v| keep(v)).map(|v| (v, 1)),
            Rules::scalar(integer),
            opts,
        )
    }

    /// Like [`Normalization::from_values`] for a value → pixel-count
    /// histogram, e.g. per-pixel counts tallied over every tile of a zoom
    /// level. Pairs may repeat a value; masked values and zero counts are
    /// skipped.
    pub fn from_histogram(
        pairs: &[(f64, u64)],
        integer: bool,
        opts: &ShadeOptions,
    ) -> Result<Option<Normalization>, ShadeError> {
        let keep = move |v: f64, c: u64| c > 0 && !(v.is_nan() || (integer && v == 0.0));
        build(
            || pairs.iter().copied().filter(|&(v, c)| keep(v, c)),
            Rules::scalar(integer),
            opts,
        )
    }

    /// The normalisation `shade(grid, opts, None)` uses internally.
    pub fn from_grid(
        grid: &ScalarGrid,
        opts: &ShadeOptions,
    ) -> Result<Option<Normalization>, ShadeError> {
        Normalization::from_values(grid.values, grid.integer, opts)
    }

    /// The alpha normalisation of categorical grids for a whole map, from a
    /// histogram of per-pixel totals (sum over categories) → pixel count.
    ///
    /// Zero totals of integer grids and NaN totals are empty and skipped,
    /// so a histogram of non-empty pixels is enough. Datashader's
    /// `_interpolate_alpha` masks zero totals only when an image has some,
    /// and then works on float totals, which moves eq_hist to its 65536-bin
    /// path; a map always has empty pixels, so this assumes they exist. Use
    /// [`Normalization::from_category_totals_with_empty`] to say otherwise.
    pub fn from_category_totals(
        pairs: &[(f64, u64)],
        integer: bool,
        opts: &ShadeOptions,
    ) -> Result<Option<Normalization>, ShadeError> {
        Normalization::from_category_totals_with_empty(pairs, integer, true, opts)
    }

    /// Like [`Normalization::from_category_totals`], stating whether the
    /// image (or map) has empty pixels; a zero total among `pairs` counts
    /// as one. With `integer` and no empty pixel, Datashader keeps integer
    /// totals: eq_hist may take its exact path and span clipping truncates.
    pub fn from_category_totals_with_empty(
        pairs: &[(f64, u64)],
        integer: bool,
        any_empty: bool,
        opts: &ShadeOptions,
    ) -> Result<Option<Normalization>, ShadeError> {
        let has_zero = integer && (any_empty || pairs.iter().any(|&(v, c)| c > 0 && v == 0.0));
        let rules = Rules {
            exact_eq_hist: integer && !has_zero,
            trunc_offset: integer,
            trunc_clip: integer && !has_zero,
        };
        build(
            || {
                pairs
                    .iter()
                    .copied()
                    .filter(move |&(v, c)| c > 0 && !v.is_nan() && !(integer && v == 0.0))
            },
            rules,
            opts,
        )
    }

    /// The alpha normalisation `shade_categorical(grid, .., None)` uses:
    /// Datashader's per-image rule, empty pixels taken from the grid.
    pub fn from_categorical_grid(
        grid: &CategoricalGrid,
        opts: &ShadeOptions,
    ) -> Result<Option<Normalization>, ShadeError> {
        grid.check()?;
        let totals = super::category_totals(grid);
        let pairs: Vec<(f64, u64)> = totals.into_iter().map(|t| (t, 1)).collect();
        Normalization::from_category_totals_with_empty(&pairs, grid.integer, false, opts)
    }

    /// The interpolation method this normalisation was built for.
    pub fn how(&self) -> How {
        self.how
    }

    /// The value subtracted before `how` (the data minimum, or `span.0`).
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// The span in transformed units that the colormap (or alpha ramp) is
    /// stretched over, after `rescale_discrete_levels`.
    pub fn span(&self) -> (f64, f64) {
        self.span
    }

    /// Distinct levels eq_hist found (unique values, or non-empty bins);
    /// `None` for other methods and for an explicit span.
    pub fn discrete_levels(&self) -> Option<usize> {
        self.discrete_levels
    }

    /// Maps an unmasked raw value into transformed units (clip, subtract
    /// the offset, apply `how`). Compare with [`Normalization::span`].
    pub fn transform(&self, v: f64) -> f64 {
        let c = &self.clip;
        let v = if v < c.lo {
            c.lo_set
        } else if v > c.hi {
            c.hi_set
        } else {
            v
        };
        let d = v - self.offset;
        match self.how {
            How::Linear => d,
            How::Log => d.ln_1p(),
            How::Cbrt => d.powf(1.0 / 3.0),
            How::EqHist => {
                let t = self
                    .table
                    .as_ref()
                    .expect("eq_hist normalisation always has a table");
                if t.exact && d >= 0.0 && d.fract() == 0.0 && (d as usize) < t.fp.len() {
                    // np.interp at a knot returns fp[j] exactly.
                    t.fp[d as usize]
                } else {
                    let last = t.fp[t.fp.len() - 1];
                    let pos = numpy::locate_with(d, &t.xp, &t.guide);
                    numpy::eval(pos, d, &t.xp, &t.fp, t.fp[0], last)
                }
            }
        }
    }

    /// Heap bytes, for cache accounting.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Normalization>()
            + self
                .table
                .as_ref()
                .map_or(0, |t| (t.xp.len() + t.fp.len()) * 8 + t.guide.bytes())
    }

    /// Where a raw value falls on the colour scale, in `[0, 1]` (for
    /// legends). A zero-width span maps everything to 1, the top colour,
    /// as `np.interp` does in Datashader.
    pub fn position(&self, v: f64) -> f64 {
        let t = self.transform(v);
        let (lo, hi) = self.span;
        if hi > lo {
            ((t - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// Datashader's `_interpolate_alpha` final step for categorical grids:
    /// `np.interp(t, span, [min_alpha, alpha], left=0, right=255)`.
    pub(crate) fn alpha_for(&self, t: f64, min_alpha: u8, alpha: u8) -> u8 {
        let xp = [self.span.0, self.span.1];
        let fp = [f64::from(min_alpha), f64::from(alpha)];
        nan_to_u8(numpy::interp(t, &xp, &fp, 0.0, 255.0))
    }
}

/// `np.nan_to_num(x).astype(np.uint8)` for values NumPy keeps in range.
pub(crate) fn nan_to_u8(x: f64) -> u8 {
    if x.is_nan() { 0 } else { x as u8 }
}

/// Datashader's `_rescale_discrete_levels`: a line through (2 levels, 1.5)
/// and (100 levels, 1.0) gives how far below the top to stretch the span.
fn rescale_discrete_levels(levels: usize, span: (f64, f64)) -> (f64, f64) {
    let m = -0.5 / 98.0;
    let c = 1.5 - 2.0 * m;
    let multiple = m * levels as f64 + c;
    if multiple > 1.0 {
        let lower = span.1 - multiple * (span.1 - span.0);
        (if lower > 0.0 { lower } else { 0.0 }, 1.0)
    } else {
        span
    }
}

/// Shared builder: `src` yields the unmasked `(value, weight)` pairs and can
/// be replayed, since the offset, the histogram and the span each need a pass.
fn build<F, I>(
    src: F,
    rules: Rules,
    opts: &ShadeOptions,
) -> Result<Option<Normalization>, ShadeError>
where
    F: Fn() -> I,
    I: Iterator<Item = (f64, u64)>,
{
    let mut vmin = f64::INFINITY;
    let mut vmax = f64::NEG_INFINITY;
    let mut any = false;
    let mut integral = true;
    for (v, _) in src() {
        if !v.is_finite() {
            return Err(ShadeError::NonFiniteValue(v));
        }
        any = true;
        vmin = vmin.min(v);
        vmax = vmax.max(v);
        integral &= v.fract() == 0.0;
    }
    if !any {
        return Ok(None);
    }
    let how = opts.how;

    if let Some((lo, hi)) = opts.span {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(ShadeError::InvalidSpan(lo, hi));
        }
        if how == How::EqHist {
            return Err(ShadeError::SpanWithEqHist);
        }
        let tr = |x: f64, yes: bool| if yes { x.trunc() } else { x };
        // Datashader transforms the span as `how([0, span[1] - span[0]])`
        // with the original float bounds, independently of the data.
        let top = hi - lo;
        let span = match how {
            How::Linear => (0.0, top),
            How::Log => (0.0f64.ln_1p(), top.ln_1p()),
            How::Cbrt => (0.0f64.powf(1.0 / 3.0), top.powf(1.0 / 3.0)),
            How::EqHist => unreachable!(),
        };
        return Ok(Some(Normalization {
            how,
            offset: tr(lo, rules.trunc_offset),
            clip: Clip {
                lo,
                hi,
                lo_set: tr(lo, rules.trunc_clip),
                hi_set: tr(hi, rules.trunc_clip),
            },
            table: None,
            span,
            discrete_levels: None,
        }));
    }

    let (table, discrete_levels) = if how == How::EqHist {
        let (t, levels) = eq_hist_table(&src, vmin, vmax, rules.exact_eq_hist && integral);
        (Some(t), Some(levels))
    } else {
        (None, None)
    };
    let mut norm = Normalization {
        how,
        offset: vmin,
        // The data range itself: a no-op for the values the normalisation
        // was built from, and it keeps other tiles' outliers on the scale.
        clip: Clip {
            lo: vmin,
            hi: vmax,
            lo_set: vmin,
            hi_set: vmax,
        },
        table,
        span: (0.0, 0.0),
        discrete_levels,
    };
    // Datashader takes nanmin/nanmax of the transformed pixels rather than
    // transforming the extremes; do the same so rounding cannot differ.
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (v, _) in src() {
        let t = norm.transform(v);
        lo = lo.min(t);
        hi = hi.max(t);
    }
    norm.span = (lo, hi);
    if opts.rescale_discrete_levels
        && let Some(levels) = discrete_levels
    {
        norm.span = rescale_discrete_levels(levels, norm.span);
    }
    Ok(Some(norm))
}

/// The non-zero values of an integer grid with how many pixels hold each,
/// when every one is a whole number in `1..2^53` (else `None`: negative,
/// fractional or non-finite values take the per-pixel path, which also
/// reports the non-finite ones).
fn distinct_counts(values: &[f64]) -> Option<Vec<(f64, u64)>> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let mut tally = crate::tally::Tally::default();
    for &v in values {
        if v.is_nan() || v == 0.0 {
            continue;
        }
        if !((1.0..EXACT).contains(&v) && v.fract() == 0.0) {
            return None;
        }
        tally.add(v as u64);
    }
    Some(
        tally
            .sorted()
            .into_iter()
            .map(|(v, n)| (v as f64, n))
            .collect(),
    )
}

/// Datashader's `eq_hist` CDF over `data - offset` (whose minimum is 0).
fn eq_hist_table<F, I>(src: &F, vmin: f64, vmax: f64, exact: bool) -> (CdfTable, usize)
where
    F: Fn() -> I,
    I: Iterator<Item = (f64, u64)>,
{
    let dmax = vmax - vmin;
    if exact && dmax < EQ_HIST_NBINS as f64 {
        // np.unique counts over arange(vmin, vmax + 1): empty integers keep
        // a zero bin, so the CDF is flat across gaps.
        let n = dmax as usize + 1;
        let mut hist = vec![0u64; n];
        for (v, c) in src() {
            hist[(v - vmin) as usize] += c;
        }
        let xp: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let levels = hist.iter().filter(|&&c| c > 0).count();
        return (cdf_table(xp, &hist, true), levels);
    }
    let bins = UniformBins::new(0.0, dmax, EQ_HIST_NBINS);
    let mut hist = vec![0u64; EQ_HIST_NBINS];
    for (v, c) in src() {
        hist[bins.index(v - vmin)] += c;
    }
    // Empty bins are dropped before interpolation.
    let kept: Vec<usize> = (0..EQ_HIST_NBINS).filter(|&i| hist[i] > 0).collect();
    let xp: Vec<f64> = kept.iter().map(|&i| bins.center(i)).collect();
    let counts: Vec<u64> = kept.iter().map(|&i| hist[i]).collect();
    (cdf_table(xp, &counts, false), kept.len())
}

/// `cdf = hist.cumsum(); cdf / float(cdf[-1])`.
fn cdf_table(xp: Vec<f64>, hist: &[u64], exact: bool) -> CdfTable {
    let mut acc = 0u64;
    let cum: Vec<u64> = hist
        .iter()
        .map(|&c| {
            acc += c;
            acc
        })
        .collect();
    let total = acc as f64;
    let fp = cum.iter().map(|&c| c as f64 / total).collect();
    let guide = numpy::Guide::new(&xp);
    CdfTable {
        xp,
        fp,
        exact,
        guide,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(how: How) -> ShadeOptions {
        ShadeOptions {
            how,
            ..ShadeOptions::default()
        }
    }

    #[test]
    fn rescale_matches_datashader_line() {
        // 2 levels: multiple 1.5 -> lower = 1 - 1.5 * (1 - 0.5) = 0.25
        assert_eq!(rescale_discrete_levels(2, (0.5, 1.0)), (0.25, 1.0));
        // 100 levels: multiple exactly 1 -> unchanged
        assert_eq!(rescale_discrete_levels(100, (0.1, 1.0)), (0.1, 1.0));
        // Clamped at zero.
        assert_eq!(rescale_discrete_levels(2, (0.1, 1.0)), (0.0, 1.0));
    }

    #[test]
    fn exact_eq_hist_table() {
        // Values 1, 1, 2, 5 -> d = 0, 0, 1, 4; counts over 0..=4 = 2,1,0,0,1;
        // cdf = 0.5, 0.75, 0.75, 0.75, 1.
        let n = Normalization::from_values(&[1.0, 1.0, 2.0, 5.0, 0.0], true, &opts(How::EqHist))
            .unwrap()
            .unwrap();
        assert_eq!(n.discrete_levels(), Some(3));
        assert_eq!(n.transform(1.0), 0.5);
        assert_eq!(n.transform(2.0), 0.75);
        assert_eq!(n.transform(5.0), 1.0);
        assert_eq!(n.span(), (0.5, 1.0));
        // Clamped into the data range.
        assert_eq!(n.transform(9.0), 1.0);
    }

    #[test]
    fn histogram_equals_values() {
        let vals = [3.0, 3.0, 7.5, 1.0e6, 2.0, 2.0, 2.0];
        let pairs = [(3.0, 2), (7.5, 1), (1.0e6, 1), (2.0, 3), (4.0, 0)];
        for how in [How::Linear, How::Log, How::Cbrt, How::EqHist] {
            for integer in [false, true] {
                let o = opts(how);
                let a = Normalization::from_values(&vals, integer, &o).unwrap();
                let b = Normalization::from_histogram(&pairs, integer, &o).unwrap();
                assert_eq!(a, b, "{how:?} integer={integer}");
            }
        }
    }

    #[test]
    fn integer_grids_from_distinct_values_equal_the_per_pixel_build() {
        // Small counts (the exact eq_hist path) and large ones (the binned
        // path, and the tally's sparse map), zeros masked.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for top in [3u64, 40, 5_000, 70_000, 10_000_000] {
            let values: Vec<f64> = (0..4096)
                .map(|_| if rnd(3) == 0 { 0.0 } else { rnd(top) as f64 })
                .collect();
            for how in [How::Linear, How::Log, How::Cbrt, How::EqHist] {
                let o = opts(how);
                let per_pixel = build(
                    || values.iter().copied().filter(|&v| v != 0.0).map(|v| (v, 1)),
                    Rules::scalar(true),
                    &o,
                )
                .unwrap();
                let fast = Normalization::from_values(&values, true, &o).unwrap();
                assert_eq!(fast, per_pixel, "top {top} {how:?}");
            }
        }
    }

    #[test]
    fn empty_and_errors() {
        let o = opts(How::Linear);
        assert_eq!(
            Normalization::from_values(&[0.0, 0.0], true, &o).unwrap(),
            None
        );
        assert_eq!(
            Normalization::from_values(&[f64::NAN], false, &o).unwrap(),
            None
        );
        assert!(matches!(
            Normalization::from_values(&[1.0, f64::INFINITY], false, &o),
            Err(ShadeError::NonFiniteValue(_))
        ));
        let mut e = opts(How::EqHist);
        e.span = Some((0.0, 10.0));
        assert!(matches!(
            Normalization::from_values(&[1.0], true, &e),
            Err(ShadeError::SpanWithEqHist)
        ));
    }
}
