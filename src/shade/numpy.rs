//! Re-implementations of the few NumPy routines whose exact floating-point
//! behaviour decides Datashader's output bytes.
//!
//! Datashader truncates interpolated floats to `u8`, so an off-by-one-ulp
//! difference at a knot can flip a colour channel or an alpha value. These
//! functions therefore follow NumPy's operation order rather than the
//! mathematically equivalent formula.

/// Where `x` falls in the sample points of `np.interp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pos {
    /// `x` is NaN and there are at least two sample points: NumPy returns NaN.
    Nan,
    /// `x < xp[0]`: the `left` fill value.
    Left,
    /// `x > xp[last]`: the `right` fill value.
    Right,
    /// Returns `fp[j]` exactly (at a knot, at the last point, or the
    /// single-point case, which NumPy also takes for NaN).
    At(usize),
    /// Strictly between `xp[j]` and `xp[j + 1]`.
    Between(usize),
}

/// Locates `x` the way `arr_interp` in NumPy's `compiled_base.c` does.
///
/// NumPy's `binary_search_with_guess` returns the last index `j` with
/// `xp[j] <= x` (also when `xp` has repeated values), which is what
/// `partition_point` gives for a non-decreasing `xp`.
pub(crate) fn locate(x: f64, xp: &[f64]) -> Pos {
    locate_with(x, xp, &Guide::default())
}

/// A bucket index over a sorted `xp` (NumPy's search has no such thing; the
/// answer is the same): `x`'s bucket on a uniform grid over
/// `[xp[0], xp[last]]` bounds where the last `j` with `xp[j] <= x` can be,
/// so an eq_hist table of 65,536 knots is searched over a few, not 16
/// levels of cache misses. `starts[b]` counts the knots of lower buckets.
///
/// Exact by construction: knots and `x` get their buckets from the same
/// monotone formula, so every knot of a lower bucket is `< x` and every
/// knot of a higher bucket is `> x`; only `x`'s own bucket is searched.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Guide {
    lo: f64,
    scale: f64,
    starts: Vec<u32>,
}

impl Guide {
    /// Fewer knots than this are searched directly.
    const MIN_KNOTS: usize = 64;

    /// The guide of a non-decreasing `xp` (empty for short or degenerate
    /// ones: `locate_with` then searches all of `xp`).
    pub(crate) fn new(xp: &[f64]) -> Guide {
        let n = xp.len();
        if n < Self::MIN_KNOTS || n > u32::MAX as usize {
            return Guide::default();
        }
        let (lo, hi) = (xp[0], xp[n - 1]);
        let scale = n as f64 / (hi - lo);
        if !(lo.is_finite() && hi.is_finite() && scale.is_finite() && scale > 0.0) {
            return Guide::default();
        }
        let mut g = Guide {
            lo,
            scale,
            starts: vec![0; n + 2],
        };
        for &v in xp {
            let b = g.bucket(v);
            g.starts[b + 1] += 1;
        }
        for b in 1..g.starts.len() {
            g.starts[b] += g.starts[b - 1];
        }
        g
    }

    /// Heap bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.starts.len() * 4
    }

    /// The bucket of `x >= lo`: monotone in `x`, at most `starts.len() - 2`.
    fn bucket(&self, x: f64) -> usize {
        // `as` saturates, and a value past `hi` (or rounded past it) joins
        // the last bucket.
        (((x - self.lo) * self.scale) as usize).min(self.starts.len() - 2)
    }

    /// `xp.partition_point(|&v| v <= x)` for `xp[0] <= x`.
    fn partition_point(&self, xp: &[f64], x: f64) -> usize {
        if self.starts.is_empty() {
            return xp.partition_point(|&v| v <= x);
        }
        let b = self.bucket(x);
        let (s, e) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        s + xp[s..e].partition_point(|&v| v <= x)
    }
}

/// [`locate`], searching through `guide` (built from this `xp`; an empty
/// guide searches all of it).
pub(crate) fn locate_with(x: f64, xp: &[f64], guide: &Guide) -> Pos {
    debug_assert!(!xp.is_empty());
    let n = xp.len();
    if n == 1 {
        // The single-point branch compares without a NaN check, so NaN lands
        // on `fp[0]`.
        return if x < xp[0] {
            Pos::Left
        } else if x > xp[0] {
            Pos::Right
        } else {
            Pos::At(0)
        };
    }
    if x.is_nan() {
        return Pos::Nan;
    }
    if x > xp[n - 1] {
        return Pos::Right;
    }
    if x < xp[0] {
        return Pos::Left;
    }
    let j = guide.partition_point(xp, x) - 1;
    if j == n - 1 || xp[j] == x {
        Pos::At(j)
    } else {
        Pos::Between(j)
    }
}

/// Evaluates `np.interp` at a located `x`.
#[inline]
pub(crate) fn eval(pos: Pos, x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    match pos {
        Pos::Nan => f64::NAN,
        Pos::Left => left,
        Pos::Right => right,
        Pos::At(j) => fp[j],
        Pos::Between(j) => {
            let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
            let r = slope * (x - xp[j]) + fp[j];
            if r.is_nan() {
                let r2 = slope * (x - xp[j + 1]) + fp[j + 1];
                if r2.is_nan() && fp[j] == fp[j + 1] {
                    fp[j]
                } else {
                    r2
                }
            } else {
                r
            }
        }
    }
}

/// `np.interp(x, xp, fp, left, right)` for a single `x`.
pub(crate) fn interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    eval(locate(x, xp), x, xp, fp, left, right)
}

/// `np.linspace(start, stop, num)` with `endpoint=True`, float64.
pub(crate) fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    let div = num - 1;
    let delta = stop - start;
    let mut y: Vec<f64> = (0..num).map(|i| i as f64).collect();
    if div > 0 {
        let step = delta / div as f64;
        if step == 0.0 {
            // NumPy's denormal-step branch (gh-5437) divides first.
            for v in &mut y {
                *v = *v / div as f64 * delta;
            }
        } else {
            for v in &mut y {
                *v *= step;
            }
        }
    } else {
        for v in &mut y {
            *v *= delta;
        }
    }
    for v in &mut y {
        *v += start;
    }
    if num > 1 {
        y[num - 1] = stop;
    }
    y
}

/// The equal-width bins of `np.histogram(a, bins=n)` for data spanning
/// `[min, max]`, with NumPy's bin-index rule.
pub(crate) struct UniformBins {
    first: f64,
    norm_denom: f64,
    nbins: usize,
    edges: Vec<f64>,
}

impl UniformBins {
    /// Bins for data whose minimum and maximum are `min` and `max` (both finite).
    pub(crate) fn new(min: f64, max: f64, nbins: usize) -> Self {
        let (first, last) = if min == max {
            (min - 0.5, max + 0.5)
        } else {
            (min, max)
        };
        UniformBins {
            first,
            norm_denom: last - first,
            nbins,
            edges: linspace(first, last, nbins + 1),
        }
    }

    /// Bin index of a value inside `[min, max]`.
    pub(crate) fn index(&self, v: f64) -> usize {
        let n = self.nbins;
        let f = (v - self.first) / self.norm_denom * n as f64;
        let mut i = f as usize;
        if i == n {
            i -= 1;
        }
        // NumPy corrects the ~1 ulp disagreement between the scaled index
        // and the stored edges.
        if v < self.edges[i] {
            i -= 1;
        }
        if v >= self.edges[i + 1] && i != n - 1 {
            i += 1;
        }
        i
    }

    /// Bin centres `(edges[:-1] + edges[1:]) / 2`.
    pub(crate) fn center(&self, i: usize) -> f64 {
        (self.edges[i] + self.edges[i + 1]) / 2.0
    }
}

/// NumPy's pairwise summation (`@TYPE@_pairwise_sum`), which `np.sum` uses
/// along a contiguous axis; it differs from a running sum from 8 terms on.
pub(crate) fn pairwise_sum<T>(a: &[T], zero: T) -> T
where
    T: Copy + std::ops::Add<Output = T>,
{
    let n = a.len();
    if n < 8 {
        let mut r = zero;
        for &x in a {
            r = r + x;
        }
        r
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let mut i = 8;
        while i < n - n % 8 {
            for k in 0..8 {
                r[k] = r[k] + a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res = res + a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2], zero) + pairwise_sum(&a[n2..], zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn guided_search_equals_numpys(
            mut xp in proptest::collection::vec(-1e3f64..1e3, 1..300),
            dup in 0usize..4,
            xs in proptest::collection::vec(-1.1e3f64..1.1e3, 1..50),
            seed in any::<u64>(),
        ) {
            xp.sort_by(f64::total_cmp);
            // Repeated knots, as empty integers leave in a CDF.
            for i in 0..dup.min(xp.len() - 1) {
                xp[i + 1] = xp[i];
            }
            let g = Guide::new(&xp);
            let knots = xp.iter().copied().cycle().skip(seed as usize % xp.len()).take(20);
            let bits = |x: f64| [x * (1.0 + f64::EPSILON), x * (1.0 - f64::EPSILON), x + f64::EPSILON];
            for x in xs.into_iter().chain(knots.clone()).chain(knots.flat_map(bits)) {
                prop_assert_eq!(locate_with(x, &xp, &g), locate(x, &xp), "x = {}", x);
            }
        }
    }

    #[test]
    fn guides_cover_long_tables_only() {
        let xp: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.37).collect();
        let g = Guide::new(&xp);
        assert_eq!(g.starts.len(), 1002);
        assert_eq!(*g.starts.last().unwrap(), 1000);
        assert!(Guide::new(&xp[..10]).starts.is_empty());
        assert!(Guide::new(&[1.0; 100]).starts.is_empty(), "zero width");
        for x in [0.0, 0.37, 100.0, 369.63, 0.185] {
            assert_eq!(locate_with(x, &xp, &g), locate(x, &xp));
        }
    }

    #[test]
    fn interp_matches_numpy_edge_rules() {
        let xp = [0.0, 1.0, 1.0, 2.0];
        let fp = [0.0, 10.0, 20.0, 30.0];
        // Repeated knot: NumPy picks the last index with xp[j] <= x.
        assert_eq!(interp(1.0, &xp, &fp, -1.0, -2.0), 20.0);
        assert_eq!(interp(0.5, &xp, &fp, -1.0, -2.0), 5.0);
        assert_eq!(interp(-0.1, &xp, &fp, -1.0, -2.0), -1.0);
        assert_eq!(interp(2.1, &xp, &fp, -1.0, -2.0), -2.0);
        assert_eq!(interp(2.0, &xp, &fp, -1.0, -2.0), 30.0);
        assert!(interp(f64::NAN, &xp, &fp, -1.0, -2.0).is_nan());
        // Single sample point: NaN falls through to fp[0].
        assert_eq!(interp(f64::NAN, &[3.0], &[7.0], 0.0, 255.0), 7.0);
        assert_eq!(interp(4.0, &[3.0], &[7.0], 0.0, 255.0), 255.0);
        // All-equal sample points (zero span): the last value wins.
        assert_eq!(
            interp(0.0, &[0.0; 6], &[1., 2., 3., 4., 5., 6.], 0.0, 0.0),
            6.0
        );
    }

    #[test]
    fn linspace_matches_numpy() {
        assert_eq!(linspace(0.0, 1.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(linspace(2.0, 2.0, 3), vec![2.0, 2.0, 2.0]);
        assert_eq!(linspace(2.0, 5.0, 1), vec![2.0]);
        // Reference values printed by NumPy 2.4 (`.tolist()`).
        assert_eq!(
            linspace(0.2, 1.0, 7),
            vec![
                0.2,
                0.33333333333333337,
                0.4666666666666667,
                0.6000000000000001,
                0.7333333333333334,
                0.8666666666666667,
                1.0
            ]
        );
        assert_eq!(
            linspace(0.0049, 1.0, 256)[1..4],
            [
                0.00880235294117647,
                0.012704705882352941,
                0.016607058823529412
            ]
        );
    }

    #[test]
    fn histogram_bins_match_numpy_rules() {
        let b = UniformBins::new(0.0, 10.0, 4);
        assert_eq!(b.index(0.0), 0);
        assert_eq!(b.index(2.5), 1);
        assert_eq!(b.index(10.0), 3);
        assert_eq!(b.center(0), 1.25);
        let one = UniformBins::new(3.0, 3.0, 4);
        assert_eq!(one.index(3.0), 2);
    }

    #[test]
    fn pairwise_sum_order() {
        let v: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(pairwise_sum(&v, 0.0), 190.0);
        assert_eq!(pairwise_sum(&[1.0f64, 2.0], 0.0), 3.0);
    }
}
