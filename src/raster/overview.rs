//! Answering tiles and zoom-wide colour scales from a dataset's overview
//! (read by `store::overview`), when its cells hold exactly what the query
//! asks: `count`, `any` and `count_cat`, unfiltered or filtered by category
//! sets on one kept column. The result is identical to aggregating the rows.

use crate::geo::{QBITS, TileId};
use crate::query::{Agg, Filter};
use crate::raster::zoom::ZoomStats;
use crate::raster::{Grid, GridValues};
use crate::store::Manifest;
use crate::store::overview::{Level, MIN_LEVEL, Overview};
use crate::tally::Tally;

impl Overview {
    /// Which cells of a level a request reads, and what value each gives.
    fn plan(&self, m: &Manifest, level: u32, agg: &Agg, filters: &[Filter]) -> Option<Plan<'_>> {
        if !(MIN_LEVEL..=self.max_level()).contains(&level) {
            return None;
        }
        let cat_index = |name: &str| self.info.categorical.iter().position(|c| c.name == name);
        // Only filters on one kept categorical column are answered here; a
        // set is the per-category mask (several sets on one column: AND).
        let mut selection: Option<(usize, Vec<bool>)> = None;
        for f in filters {
            let Filter::In { column, values } = f else {
                return None;
            };
            let ci = cat_index(column)?;
            let labels = &m.column(column)?.categories;
            let set: Vec<bool> = labels.iter().map(|l| values.contains(l)).collect();
            selection = match selection {
                None => Some((ci, set)),
                Some((c, prev)) if c == ci => {
                    Some((c, prev.iter().zip(&set).map(|(a, b)| *a && *b).collect()))
                }
                Some(_) => return None,
            };
        }
        let output = match agg {
            Agg::Count => Output::Count,
            Agg::Any => Output::Any,
            Agg::CountCat(c) => {
                let ci = cat_index(c)?;
                if selection.as_ref().is_some_and(|(s, _)| *s != ci) {
                    return None;
                }
                Output::Cat(ci)
            }
            _ => return None,
        };
        Some(Plan {
            level: &self.levels[(level - MIN_LEVEL) as usize],
            ncats: self.info.categorical.iter().map(|c| c.categories).collect(),
            selection,
            output,
        })
    }

    /// Whether [`Overview::tile`] answers tiles of pixel `level` for this query.
    pub fn answers_tiles(&self, m: &Manifest, level: u32, agg: &Agg, filters: &[Filter]) -> bool {
        self.plan(m, level, agg, filters).is_some()
    }

    /// Whether [`Overview::zoom_stats`] answers pixel `level` for this query.
    pub fn answers_zoom_stats(
        &self,
        m: &Manifest,
        level: u32,
        agg: &Agg,
        filters: &[Filter],
    ) -> bool {
        self.zoom_source(m, level, agg, filters).is_some()
    }

    /// What [`Overview::zoom_stats`] reads for this query, if it can answer
    /// it: the one decision that both it and
    /// [`Overview::answers_zoom_stats`] follow.
    fn zoom_source(
        &self,
        m: &Manifest,
        level: u32,
        agg: &Agg,
        filters: &[Filter],
    ) -> Option<ZoomSource<'_>> {
        match agg {
            Agg::Count | Agg::Any => {}
            // The column must exist and be categorical, as the scan requires.
            Agg::CountCat(c) => {
                m.column(c)?;
            }
            _ => return None,
        }
        if filters.is_empty() {
            let (v, k) = self.counts.get(level.checked_sub(MIN_LEVEL)? as usize)?;
            Some(ZoomSource::Counts(v, k))
        } else {
            // Per-category totals do not depend on which column `count_cat`
            // splits by, so a count plan over the filter's column serves all.
            self.plan(m, level, &Agg::Count, filters)
                .map(ZoomSource::Cells)
        }
    }

    /// The grid of a tile, when the overview can answer it: a pixel level
    /// within the kept levels, `count`, `any` or `count_cat` of a kept
    /// column, and no filters other than category sets on one kept column
    /// (the `count_cat` column itself, for `count_cat`).
    pub fn tile(
        &self,
        m: &Manifest,
        tile: TileId,
        size: u32,
        agg: &Agg,
        filters: &[Filter],
    ) -> Option<(Grid, u64)> {
        if !size.is_power_of_two() {
            return None;
        }
        let level = tile.z as u32 + size.trailing_zeros();
        let plan = self.plan(m, level, agg, filters)?;
        let (lo, hi) = tile.key_range();
        let s = 2 * (QBITS - level);
        let (klo, khi) = ((lo >> s) as u32, (hi >> s) as u32);
        let keys = &plan.level.key[..];
        let start = keys.partition_point(|&k| k < klo);
        let end = keys.partition_point(|&k| k <= khi).max(start);
        let size = size as usize;
        let mask = size - 1;
        let (x0, y0) = (
            (tile.x as usize) << (level - tile.z as u32),
            (tile.y as usize) << (level - tile.z as u32),
        );
        // Masking keeps a damaged file's stray cell inside the grid.
        let pixel = |i: usize| {
            let px = (plan.level.x[i] as usize).wrapping_sub(x0) & mask;
            let py = (plan.level.y[i] as usize).wrapping_sub(y0) & mask;
            py * size + px
        };
        let categories = match plan.output {
            Output::Cat(ci) => m
                .column(&self.info.categorical[ci].name)
                .map(|c| c.categories.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let values = match plan.output {
            Output::Count | Output::Any => {
                let mut g = vec![0u32; size * size];
                for i in start..end {
                    g[pixel(i)] = plan.value(i);
                }
                if matches!(plan.output, Output::Any) {
                    GridValues::Any(g.into_iter().map(|c| c > 0).collect())
                } else {
                    GridValues::Count(g)
                }
            }
            Output::Cat(ci) => {
                let k = plan.ncats[ci];
                let cats = &plan.level.cats[ci];
                let mut g = vec![0u32; size * size * k];
                for i in start..end {
                    let p = pixel(i) * k;
                    let src = &cats[i * k..(i + 1) * k];
                    match &plan.selection {
                        Some((_, set)) => {
                            for (j, (&c, &on)) in src.iter().zip(set).enumerate() {
                                g[p + j] = if on { c } else { 0 };
                            }
                        }
                        None => g[p..p + k].copy_from_slice(src),
                    }
                }
                GridValues::CatCount(g)
            }
        };
        let grid = Grid {
            width: size,
            height: size,
            categories,
            values,
        };
        Some((grid, (end - start) as u64))
    }

    /// The distribution of pixel values over a whole zoom level, when the
    /// overview can answer it (see [`Overview::tile`]; without filters any
    /// level 8..=32 is answered).
    pub fn zoom_stats(
        &self,
        m: &Manifest,
        level: u32,
        agg: &Agg,
        filters: &[Filter],
    ) -> Option<ZoomStats> {
        let mut histogram: Vec<(f64, u64)> = match self.zoom_source(m, level, agg, filters)? {
            ZoomSource::Counts(v, k) => v
                .iter()
                .zip(k.iter())
                .map(|(&v, &k)| (v as f64, k))
                .collect(),
            ZoomSource::Cells(plan) => {
                let mut tally = Tally::default();
                for i in 0..plan.level.key.len() {
                    let v = plan.value(i);
                    if v > 0 {
                        tally.add(u64::from(v));
                    }
                }
                tally
                    .sorted()
                    .into_iter()
                    .map(|(v, k)| (v as f64, k))
                    .collect()
            }
        };
        let pixels = histogram.iter().map(|h| h.1).sum();
        if matches!(agg, Agg::Any) {
            histogram = if pixels > 0 {
                vec![(1.0, pixels)]
            } else {
                Vec::new()
            };
        }
        Some(ZoomStats {
            histogram,
            integer: true,
            pixels,
        })
    }
}

/// Where a zoom-wide distribution comes from.
enum ZoomSource<'a> {
    /// The pack-time count distribution of an unfiltered level: `(values,
    /// cells)`.
    Counts(
        &'a arrow_buffer::ScalarBuffer<u64>,
        &'a arrow_buffer::ScalarBuffer<u64>,
    ),
    /// A level's cells under a category selection.
    Cells(Plan<'a>),
}

#[derive(Clone, Copy)]
enum Output {
    Count,
    Any,
    Cat(usize),
}

struct Plan<'a> {
    level: &'a Level,
    ncats: Vec<usize>,
    selection: Option<(usize, Vec<bool>)>,
    output: Output,
}

impl Plan<'_> {
    /// Points of cell `i` that pass the selection.
    #[inline]
    fn value(&self, i: usize) -> u32 {
        match &self.selection {
            None => self.level.count[i],
            Some((ci, set)) => {
                let k = self.ncats[*ci];
                self.level.cats[*ci][i * k..(i + 1) * k]
                    .iter()
                    .zip(set)
                    .filter(|(_, on)| **on)
                    .map(|(c, _)| *c)
                    .sum()
            }
        }
    }
}
