//! Linked (crossfilter) histograms and counts.
//!
//! Filters are evaluated a column at a time into a row mask over each chunk —
//! tight, monomorphized loops the compiler vectorizes — rather than row by row
//! through an enum per filter.

use super::{
    BoundFilters, Filter, QueryError, RowSpan, all_rows, bind_filters, plan_rows, require,
};
use crate::geo::MercatorBox;
use crate::store::column::{AsF64, CatColumn, NumColumn};
use crate::store::{ColumnKind, Dataset, Partition};
use crate::with_num_slice;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most bins a numeric histogram may have.
pub const MAX_BINS: usize = 1000;
const CHUNK: usize = 1 << 16;
/// Copies of the bins a numeric histogram rotates over.
const LANES: usize = 4;

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
    /// Equal-width bins over the column's full range.
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
struct Selection<'a> {
    spans: Vec<RowSpan>,
    qbox: Option<(u32, u32, u32, u32)>,
    /// Filters bound per partition; `None` where zone maps exclude it.
    bound: Vec<Option<BoundFilters<'a>>>,
}

impl<'a> Selection<'a> {
    fn new(
        ds: &'a Dataset,
        bbox: Option<&MercatorBox>,
        filters: &[Filter],
        skip_column: Option<&str>,
    ) -> Self {
        let filters: Vec<Filter> = filters
            .iter()
            .filter(|f| Some(f.column()) != skip_column)
            .cloned()
            .collect();
        let (spans, qbox) = match bbox {
            Some(b) => match b.qbounds() {
                Some(q) => {
                    let ranges = crate::geo::cover_key_ranges(q.0, q.1, q.2, q.3, 64);
                    (plan_rows(ds, &ranges, CHUNK), Some(q))
                }
                None => (Vec::new(), None),
            },
            None => (all_rows(ds, CHUNK), None),
        };
        let bound = ds
            .partitions
            .iter()
            .map(|p| bind_filters(&ds.manifest, p, &filters))
            .collect();
        Selection { spans, qbox, bound }
    }

    /// Mask of selected rows of a span, or `false` if the partition is pruned.
    fn mask(&self, part: &Partition, span: &RowSpan, mask: &mut Vec<bool>) -> bool {
        let Some(f) = &self.bound[span.partition] else {
            return false;
        };
        let r = span.rows.clone();
        f.mask(r.clone(), mask);
        if let Some((x0, x1, y0, y1)) = self.qbox {
            let b = &part.info.bounds.quantized;
            // Partitions wholly inside the box need no per-row test.
            if !(b[0] >= x0 && b[2] <= x1 && b[1] >= y0 && b[3] <= y1) {
                for ((m, &x), &y) in mask
                    .iter_mut()
                    .zip(&part.qx()[r.clone()])
                    .zip(&part.qy()[r])
                {
                    *m &= x >= x0 && x <= x1 && y >= y0 && y <= y1;
                }
            }
        }
        true
    }
}

fn check_cancel(cancel: Option<&AtomicBool>) -> Result<(), QueryError> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        Err(QueryError::Cancelled)
    } else {
        Ok(())
    }
}

/// Histogram of `column` over the rows in `bbox` that pass every filter
/// except those on `column` itself (crossfilter semantics).
pub fn histogram(
    ds: &Dataset,
    column: &str,
    bins: usize,
    bbox: Option<&MercatorBox>,
    filters: &[Filter],
    cancel: Option<&AtomicBool>,
) -> Result<Histogram, QueryError> {
    let info = require(
        &ds.manifest,
        column,
        &[
            ColumnKind::Numeric,
            ColumnKind::Temporal,
            ColumnKind::Categorical,
        ],
        "a histogram",
    )?;
    let sel = Selection::new(ds, bbox, filters, Some(column));
    if info.kind == ColumnKind::Categorical {
        let ncat = info.categories.len();
        let counts = sel
            .spans
            .par_iter()
            .try_fold(
                || (vec![0u64; ncat], Vec::new()),
                |(mut acc, mut mask), span| {
                    check_cancel(cancel)?;
                    let part = &ds.partitions[span.partition];
                    if sel.mask(part, span, &mut mask) {
                        if let Some(col) = part.column(column).and_then(CatColumn::new) {
                            for (i, &m) in mask.iter().enumerate() {
                                if let (true, Some(k)) = (m, col.get(span.rows.start + i)) {
                                    if k < ncat {
                                        acc[k] += 1;
                                    }
                                }
                            }
                        }
                    }
                    Ok((acc, mask))
                },
            )
            .map(|r| r.map(|(a, _)| a))
            .try_reduce(
                || vec![0u64; ncat],
                |a, b| Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect()),
            )?;
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
    let width = if max > min {
        (max - min) / bins as f64
    } else {
        1.0
    };
    let counts = sel
        .spans
        .par_iter()
        .try_fold(
            || (vec![0u64; bins * LANES], Vec::new()),
            |(mut acc, mut mask), span| {
                check_cancel(cancel)?;
                let part = &ds.partitions[span.partition];
                if sel.mask(part, span, &mut mask) {
                    if let Some(col) = part.column(column).and_then(NumColumn::new) {
                        let r = span.rows.clone();
                        let last = (bins - 1) as f64;
                        if let Some(n) = col.nulls {
                            for (i, m) in mask.iter_mut().enumerate() {
                                *m &= n.is_valid(r.start + i);
                            }
                        }
                        // Branch-free: every row adds 0 or 1, rotating over
                        // LANES copies of the bins so consecutive rows in one
                        // bin do not wait on each other's stores.
                        with_num_slice!(col.values, |s| {
                            for (i, (&m, v)) in mask.iter().zip(&s[r.clone()]).enumerate() {
                                let v = v.as_f64();
                                let keep = m & (v >= min) & (v <= max);
                                let b = ((v - min) / width).clamp(0.0, last) as usize;
                                acc[(i % LANES) * bins + b] += keep as u64;
                            }
                        });
                    }
                }
                Ok((acc, mask))
            },
        )
        .map(|r| {
            r.map(|(a, _)| {
                let mut out = vec![0u64; bins];
                for lane in a.chunks_exact(bins) {
                    for (o, x) in out.iter_mut().zip(lane) {
                        *o += x;
                    }
                }
                out
            })
        })
        .try_reduce(
            || vec![0u64; bins],
            |a, b| Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect()),
        )?;
    Ok(Histogram::Numeric {
        column: column.to_string(),
        temporal: info.kind == ColumnKind::Temporal,
        total: counts.iter().sum(),
        min,
        max: if max > min {
            max
        } else {
            min + width * bins as f64
        },
        counts,
    })
}

/// Rows in `bbox` passing every filter.
pub fn count(
    ds: &Dataset,
    bbox: Option<&MercatorBox>,
    filters: &[Filter],
    cancel: Option<&AtomicBool>,
) -> Result<u64, QueryError> {
    let sel = Selection::new(ds, bbox, filters, None);
    sel.spans
        .par_iter()
        .try_fold(
            || (0u64, Vec::new()),
            |(n, mut mask), span| {
                check_cancel(cancel)?;
                let part = &ds.partitions[span.partition];
                let add = if sel.mask(part, span, &mut mask) {
                    mask.iter().filter(|&&m| m).count() as u64
                } else {
                    0
                };
                Ok((n + add, mask))
            },
        )
        .map(|r| r.map(|(n, _)| n))
        .try_reduce(|| 0, |a, b| Ok(a + b))
}
