//! Column statistics: per-partition zone maps and whole-dataset summaries.

use crate::store::column::{AsF64, CatColumn, NumColumn};
use crate::store::{ColumnKind, ColumnSummary, ColumnZone};
use crate::with_num_slice;
use arrow_array::ArrayRef;
use arrow_buffer::NullBuffer;

/// Running summary of one column (Welford's algorithm, mergeable).
#[derive(Clone, Debug, Default)]
pub struct Accumulator {
    count: u64,
    nulls: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
    cats: Vec<u64>,
}

impl Accumulator {
    /// A fresh accumulator; `ncat` category slots for categorical columns.
    pub fn new(ncat: usize) -> Self {
        Accumulator {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            cats: vec![0; ncat],
            ..Default::default()
        }
    }

    /// Fold one partition's column into the summary and return its zone map.
    pub fn add(&mut self, kind: ColumnKind, array: &ArrayRef) -> ColumnZone {
        let mut zone = ColumnZone::default();
        match kind {
            ColumnKind::Numeric | ColumnKind::Temporal => {
                let Some(col) = NumColumn::new(array) else {
                    return zone;
                };
                let part = with_num_slice!(col.values, |s| moments(s, col.nulls));
                zone.nulls = part.nulls;
                if part.count > 0 {
                    zone.min = Some(part.min);
                    zone.max = Some(part.max);
                }
                self.merge(&part);
            }
            ColumnKind::Categorical => {
                let Some(col) = CatColumn::new(array) else {
                    return zone;
                };
                let mut counts = vec![0u64; self.cats.len()];
                for i in 0..array.len() {
                    match col.get(i) {
                        Some(c) if c < counts.len() => counts[c] += 1,
                        _ => zone.nulls += 1,
                    }
                }
                let present: Vec<u32> = (0..counts.len() as u32)
                    .filter(|&c| counts[c as usize] > 0)
                    .collect();
                for (a, b) in self.cats.iter_mut().zip(&counts) {
                    *a += b;
                }
                self.count += counts.iter().sum::<u64>();
                self.nulls += zone.nulls;
                zone.categories = Some(present);
            }
            ColumnKind::String | ColumnKind::Other => {
                zone.nulls = arrow_array::Array::null_count(array.as_ref()) as u64;
                self.nulls += zone.nulls;
                self.count += array.len() as u64 - zone.nulls;
            }
        }
        zone
    }

    fn merge(&mut self, o: &Accumulator) {
        self.nulls += o.nulls;
        if o.count == 0 {
            return;
        }
        let n = self.count + o.count;
        let d = o.mean - self.mean;
        self.mean += d * o.count as f64 / n as f64;
        self.m2 += o.m2 + d * d * self.count as f64 * o.count as f64 / n as f64;
        self.count = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The final summary.
    pub fn finish(&self, kind: ColumnKind) -> ColumnSummary {
        let numeric = matches!(kind, ColumnKind::Numeric | ColumnKind::Temporal) && self.count > 0;
        ColumnSummary {
            count: self.count,
            nulls: self.nulls,
            min: numeric.then_some(self.min),
            max: numeric.then_some(self.max),
            mean: numeric.then_some(self.mean),
            std: numeric.then(|| (self.m2 / self.count as f64).sqrt()),
            category_counts: self.cats.clone(),
        }
    }
}

/// Count, nulls (and NaN), min, max, mean and squared deviations of one
/// partition's values, typed so the loops carry no per-value dispatch. Two
/// passes (sum, then deviations from the mean) instead of Welford's update:
/// no division a value, and at least as accurate; partitions then merge by
/// Chan's formula.
fn moments<T: AsF64>(values: &[T], nulls: Option<&NullBuffer>) -> Accumulator {
    let valid = |i: usize, v: f64| !v.is_nan() && nulls.is_none_or(|n| n.is_valid(i));
    let mut part = Accumulator::new(0);
    let mut sum = 0.0;
    for (i, &x) in values.iter().enumerate() {
        let v = x.as_f64();
        if valid(i, v) {
            part.count += 1;
            part.min = part.min.min(v);
            part.max = part.max.max(v);
            sum += v;
        }
    }
    part.nulls = values.len() as u64 - part.count;
    if part.count > 0 {
        let mean = sum / part.count as f64;
        part.mean = mean;
        part.m2 = values
            .iter()
            .enumerate()
            .map(|(i, &x)| (i, x.as_f64()))
            .filter(|&(i, v)| valid(i, v))
            .map(|(_, v)| (v - mean) * (v - mean))
            .sum();
    }
    part
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Float64Array;
    use std::sync::Arc;

    #[test]
    fn merged_partitions_match_one_pass() {
        let a: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
        let b: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(5.0),
            Some(f64::NAN),
            Some(7.0),
        ]));
        let mut acc = Accumulator::new(0);
        let za = acc.add(ColumnKind::Numeric, &a);
        acc.add(ColumnKind::Numeric, &b);
        assert_eq!((za.min, za.max, za.nulls), (Some(1.0), Some(3.0), 1));
        let s = acc.finish(ColumnKind::Numeric);
        assert_eq!(
            (s.count, s.nulls, s.min, s.max),
            (4, 2, Some(1.0), Some(7.0))
        );
        assert!((s.mean.unwrap() - 4.0).abs() < 1e-12);
        assert!((s.std.unwrap() - 5.0f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn integer_partitions_with_nulls_fold_like_floats() {
        let ints: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![
            Some(-4),
            None,
            Some(10),
            Some(6),
        ]));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(-4.0),
            None,
            Some(10.0),
            Some(6.0),
        ]));
        let (mut a, mut b) = (Accumulator::new(0), Accumulator::new(0));
        let za = a.add(ColumnKind::Numeric, &ints);
        let zb = b.add(ColumnKind::Numeric, &floats);
        assert_eq!((za.min, za.max, za.nulls), (Some(-4.0), Some(10.0), 1));
        assert_eq!((za.min, za.max, za.nulls), (zb.min, zb.max, zb.nulls));
        let (sa, sb) = (a.finish(ColumnKind::Numeric), b.finish(ColumnKind::Numeric));
        assert_eq!(
            (sa.count, sa.nulls, sa.mean, sa.std),
            (3, 1, sb.mean, sb.std)
        );
        assert!((sa.mean.unwrap() - 4.0).abs() < 1e-12);
        // Deviations 8, 6, 2: variance 104 / 3.
        assert!((sa.std.unwrap() - (104.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
