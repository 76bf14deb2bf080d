//! Zoom-level statistics for seamless colour scaling.
//!
//! Rows are sorted along the Hilbert curve, so the rows of any quadtree cell —
//! and so of any pixel of any zoom level — are one contiguous run. One pass
//! over the (filtered) rows, closing a run whenever the pixel changes, gives
//! the value of every non-empty pixel of the whole map at that zoom without
//! building the map. Their distribution drives `span` and `eq_hist` for every
//! tile of the zoom, so adjacent tiles share one colour scale.

use crate::geo::QBITS;
use crate::query::{Agg, Filter, QueryError, all_rows, bind_filters};
use crate::store::Dataset;
use crate::store::column::NumColumn;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Float pixel values kept before subsampling (by a fixed stride, so
/// deterministic).
const MAX_FLOAT_VALUES: usize = 1 << 18;

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

#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    n: u64,
    sum: f64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Acc {
    #[inline]
    fn add(&mut self, v: f64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.n += 1;
        self.sum += v;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }

    fn merge(&mut self, o: &Acc) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = (self.n + o.n) as f64;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n;
        self.n += o.n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// The pixel value a run closes with; `None` when the pixel stays empty.
fn value(agg: &Agg, a: &Acc, rows: u64) -> Option<f64> {
    match agg {
        Agg::Count | Agg::CountCat(_) => (rows > 0).then_some(rows as f64),
        Agg::Any => (rows > 0).then_some(1.0),
        _ if a.n == 0 => None,
        Agg::Sum(_) | Agg::CatSum(..) => Some(a.sum),
        Agg::Mean(_) | Agg::CatMean(..) => Some(a.mean),
        Agg::Min(_) => Some(a.min),
        Agg::Max(_) => Some(a.max),
        Agg::Std(_) => Some((a.m2 / a.n as f64).sqrt()),
        Agg::Var(_) => Some(a.m2 / a.n as f64),
    }
}

#[derive(Clone, Copy)]
struct Run {
    pixel: (u32, u32),
    rows: u64,
    acc: Acc,
}

impl Run {
    fn merge(&mut self, o: &Run) {
        self.rows += o.rows;
        self.acc.merge(&o.acc);
    }
}

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
        if (k as usize) < DENSE_COUNTS {
            if self.dense.len() <= k as usize {
                self.dense.resize(k as usize + 1, 0);
            }
            self.dense[k as usize] += 1;
        } else {
            *self.sparse.entry(k).or_default() += 1;
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

/// Pixel values seen: integer values tallied, float values kept.
#[derive(Default)]
struct Values {
    counts: Tally,
    floats: Vec<f64>,
}

impl Values {
    fn push(&mut self, agg: &Agg, run: &Run, integer: bool) {
        if let Some(v) = value(agg, &run.acc, run.rows) {
            if integer {
                self.counts.add(v as u64);
            } else if v.is_finite() {
                self.floats.push(v);
            }
        }
    }

    fn extend(&mut self, o: Values) {
        self.counts.extend(&o.counts);
        self.floats.extend(o.floats);
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
    let integer = matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_));
    let spans = all_rows(ds, super::CHUNK_ROWS * 4);
    let bound: Vec<_> = ds
        .partitions
        .iter()
        .map(|p| bind_filters(&ds.manifest, p, filters))
        .collect();
    let pieces: Vec<Piece> = spans
        .par_iter()
        .map(|span| {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(QueryError::Cancelled);
            }
            let mut piece = Piece {
                first: None,
                last: None,
                inner: Values::default(),
            };
            let Some(f) = bound[span.partition].as_ref() else {
                return Ok(piece);
            };
            let part = &ds.partitions[span.partition];
            let num = agg
                .value_column()
                .and_then(|c| part.column(c))
                .and_then(NumColumn::new);
            let (qx, qy) = (part.qx(), part.qy());
            let filtered = !f.is_empty();
            let mut mask = Vec::new();
            if filtered {
                f.mask(span.rows.clone(), &mut mask);
            }
            let mut cur = Run {
                pixel: (0, 0),
                rows: 0,
                acc: Acc::default(),
            };
            let mut have = false;
            let r = span.rows.clone();
            for (i, (&x, &y)) in qx[r.clone()].iter().zip(&qy[r.clone()]).enumerate() {
                let row = r.start + i;
                if filtered && !mask[i] {
                    continue;
                }
                let pixel = ((x as u64 >> shift) as u32, (y as u64 >> shift) as u32);
                if !have || pixel != cur.pixel {
                    if have {
                        if piece.first.is_none() {
                            piece.first = Some(cur);
                        } else {
                            piece.inner.push(agg, &cur, integer);
                        }
                    }
                    cur = Run {
                        pixel,
                        rows: 0,
                        acc: Acc::default(),
                    };
                    have = true;
                }
                cur.rows += 1;
                if let Some(c) = &num {
                    let v = c.get(row);
                    if !v.is_nan() {
                        cur.acc.add(v);
                    }
                }
            }
            let cur = have.then_some(cur);
            if piece.first.is_none() {
                piece.first = cur;
            } else {
                piece.last = cur;
            }
            Ok(piece)
        })
        .collect::<Result<_, _>>()?;
    // Stitch runs that cross span boundaries, in row order.
    let mut values = Values::default();
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
    let (histogram, pixels) = if integer {
        let h: Vec<(f64, u64)> = values
            .counts
            .sorted()
            .into_iter()
            .map(|(k, n)| (k as f64, n))
            .collect();
        let pixels = h.iter().map(|x| x.1).sum();
        (h, pixels)
    } else {
        let pixels = values.floats.len() as u64;
        let mut v = values.floats;
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
    Ok(ZoomStats {
        histogram,
        integer,
        pixels,
    })
}
