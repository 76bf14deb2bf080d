//! Overviews: count grids for the low zooms and the per-zoom distribution of
//! points per pixel, computed once at pack time.
//!
//! A z0 tile must otherwise read every row of the dataset, and a seamless
//! colour scale must otherwise visit every row once per zoom. Both depend on
//! nothing but where the points are (and, for counts by category, their
//! category), so `pack` computes them in one pass and stores them next to the
//! data:
//!
//! - **Cell grids** for pixel levels 8..=`max_level` (a pixel level is the
//!   zoom plus log2 of the tile size: a 256-pixel z4 tile has level-12
//!   pixels). Each level lists its non-empty cells in Hilbert order with
//!   their point count and, per small categorical column, their count per
//!   category. A tile at such a level covers one contiguous run of cells, and
//!   each cell is exactly one of its pixels, so `count`, `any` and
//!   `count_cat` (optionally with category filters) are copied from the cells
//!   instead of aggregated from the rows. The result is identical to
//!   aggregating the rows.
//! - **Count distributions** for every pixel level 8..=32: how many non-empty
//!   pixels hold each count. This is exactly what seamless (`scale=zoom`)
//!   normalization of `count` / `count_cat` needs, for any zoom.
//!
//! Both are memory-mapped like the data, and read only when used.

use crate::geo::{QBITS, TileId};
use crate::query::{Agg, Filter};
use crate::raster::pyramid::ZoomStats;
use crate::raster::{Grid, GridValues};
use crate::store::column::CatColumn;
use crate::store::{
    Dataset, Manifest, Mapping, OVERVIEW_FILE, OverviewColumn, OverviewCounts, OverviewInfo,
    OverviewLevel, StoreError,
};
use crate::tally::Tally;
use arrow_buffer::{Buffer, ScalarBuffer};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The finest pixel level an overview may keep (cell coordinates and keys
/// must fit in u32).
pub const MAX_LEVEL: u32 = 16;
/// The coarsest pixel level: a 256-pixel z0 tile.
pub const MIN_LEVEL: u32 = 8;
/// Categorical columns with more categories than this are not kept.
pub const MAX_CATEGORIES: usize = 64;
/// Default finest level: 256-pixel tiles up to z4, 512-pixel tiles up to z3.
pub const DEFAULT_LEVEL: u32 = 12;

/// One level's cells, mapped.
#[derive(Debug, Clone)]
struct Level {
    key: ScalarBuffer<u32>,
    x: ScalarBuffer<u32>,
    y: ScalarBuffer<u32>,
    count: ScalarBuffer<u32>,
    /// Per categorical column, `cells × categories` counts.
    cats: Vec<ScalarBuffer<u32>>,
}

/// An opened overview.
#[derive(Debug, Clone)]
pub struct Overview {
    info: OverviewInfo,
    /// Levels by index `level - MIN_LEVEL`.
    levels: Vec<Level>,
    /// `(values, cells)` per level 8..=32.
    counts: Vec<(ScalarBuffer<u64>, ScalarBuffer<u64>)>,
}

impl Overview {
    /// Map the overview file of the dataset in `dir`, checking every array
    /// against the manifest's layout before use.
    /// The open file joins `watch`, which guards the mapping against the
    /// file being changed in place.
    pub fn open(
        dir: &Path,
        m: &Manifest,
        watch: &mut crate::store::FileWatch,
    ) -> Result<Option<Overview>, StoreError> {
        let Some(info) = &m.overview else {
            return Ok(None);
        };
        let path = dir.join(OVERVIEW_FILE);
        let corrupt = |message: String| StoreError::Corrupt {
            path: path.clone(),
            message,
        };
        let (file, len) = crate::store::open_sized(&path, info.bytes)?;
        let buffer = if len == 0 {
            Buffer::from_vec(Vec::<u64>::new())
        } else {
            // SAFETY: read-only mapping whose length was checked against the
            // manifest; packed files are written once and renamed into place,
            // never modified by Pointillist, and a change in place by anyone
            // else is fenced off by `watch` (see `store::files`).
            let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            Buffer::from(bytes::Bytes::from_owner(Mapping(Arc::new(mmap))))
        };
        watch.add(&path, file, len);
        for c in &info.categorical {
            let ok = m
                .column(&c.name)
                .is_some_and(|col| col.categories.len() == c.categories);
            if !ok || c.categories > MAX_CATEGORIES {
                return Err(corrupt(format!(
                    "categorical column {:?} does not match the schema",
                    c.name
                )));
            }
        }
        let mut levels = Vec::with_capacity(info.levels.len());
        for (i, l) in info.levels.iter().enumerate() {
            if l.level != MIN_LEVEL + i as u32 || l.level > MAX_LEVEL {
                return Err(corrupt(format!("unexpected level {}", l.level)));
            }
            let n = usize::try_from(l.cells).map_err(|_| corrupt("too many cells".into()))?;
            let mut at = l.offset;
            let mut next = |len: usize| -> Result<ScalarBuffer<u32>, StoreError> {
                let b = slice::<u32>(&buffer, at, len).map_err(&corrupt)?;
                at += padded(len * 4);
                Ok(b)
            };
            let key = next(n)?;
            let x = next(n)?;
            let y = next(n)?;
            let count = next(n)?;
            let cats = info
                .categorical
                .iter()
                .map(|c| next(n * c.categories))
                .collect::<Result<_, _>>()?;
            levels.push(Level {
                key,
                x,
                y,
                count,
                cats,
            });
        }
        let mut counts = Vec::with_capacity(info.counts.len());
        for (i, c) in info.counts.iter().enumerate() {
            if c.level != MIN_LEVEL + i as u32 || c.level > QBITS {
                return Err(corrupt(format!("unexpected count level {}", c.level)));
            }
            let n = usize::try_from(c.values).map_err(|_| corrupt("too many values".into()))?;
            let v = slice::<u64>(&buffer, c.offset, n).map_err(&corrupt)?;
            let k = slice::<u64>(&buffer, c.offset + padded(n * 8), n).map_err(&corrupt)?;
            counts.push((v, k));
        }
        Ok(Some(Overview {
            info: info.clone(),
            levels,
            counts,
        }))
    }

    /// The finest level with cell grids (0 when there are none).
    pub fn max_level(&self) -> u32 {
        self.info.levels.last().map_or(0, |l| l.level)
    }

    /// What the overview holds.
    pub fn info(&self) -> &OverviewInfo {
        &self.info
    }

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
        let column_ok = match agg {
            Agg::Count | Agg::Any => true,
            Agg::CountCat(c) => m.column(c).is_some(),
            _ => false,
        };
        column_ok
            && if filters.is_empty() {
                level
                    .checked_sub(MIN_LEVEL)
                    .is_some_and(|i| (i as usize) < self.counts.len())
            } else {
                self.plan(m, level, &Agg::Count, filters).is_some()
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

    /// Non-empty pixels of `level` (8..=32) without filters.
    pub fn pixels(&self, level: u32) -> Option<u64> {
        let (_, k) = self.counts.get(level.checked_sub(MIN_LEVEL)? as usize)?;
        Some(k.iter().sum())
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
        if !matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_)) {
            return None;
        }
        if let Agg::CountCat(c) = agg {
            // The column must exist and be categorical, as the scan requires.
            m.column(c)?;
        }
        let mut histogram: Vec<(f64, u64)> = if filters.is_empty() {
            let (v, k) = self.counts.get(level.checked_sub(MIN_LEVEL)? as usize)?;
            v.iter()
                .zip(k.iter())
                .map(|(&v, &k)| (v as f64, k))
                .collect()
        } else {
            // Per-category totals do not depend on which column `count_cat`
            // splits by, so a count plan over the filter's column serves all.
            let plan = self.plan(m, level, &Agg::Count, filters)?;
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

fn padded(bytes: usize) -> u64 {
    bytes.div_ceil(8) as u64 * 8
}

/// `len` values of `T` at byte `offset`, checked to lie inside the buffer.
fn slice<T: arrow_buffer::ArrowNativeType>(
    buffer: &Buffer,
    offset: u64,
    len: usize,
) -> Result<ScalarBuffer<T>, String> {
    let size = std::mem::size_of::<T>();
    let start = usize::try_from(offset).map_err(|_| "offset overflows".to_string())?;
    let end = len
        .checked_mul(size)
        .and_then(|b| b.checked_add(start))
        .filter(|&e| e <= buffer.len())
        .ok_or_else(|| format!("array at {offset} ({len} values) lies outside the file"))?;
    if start % 8 != 0 {
        return Err(format!("array at {offset} is not 8-byte aligned"));
    }
    let b = buffer.slice_with_length(start, end - start);
    if b.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
        return Err("unaligned mapping".into());
    }
    Ok(ScalarBuffer::new(b, 0, len))
}

/// One level's cells while building.
#[derive(Default)]
struct Cells {
    x: Vec<u32>,
    y: Vec<u32>,
    count: Vec<u32>,
    /// Per kept column: cells × categories.
    cats: Vec<Vec<u32>>,
}

impl Cells {
    fn new(ncol: usize) -> Cells {
        Cells {
            cats: vec![Vec::new(); ncol],
            ..Cells::default()
        }
    }

    fn len(&self) -> usize {
        self.x.len()
    }

    /// Append `o`, merging its first cell into our last when they are one.
    fn append(&mut self, o: Cells, ncats: &[usize]) {
        let mut skip = 0;
        if let (Some(&lx), Some(&ly), Some(&fx), Some(&fy)) =
            (self.x.last(), self.y.last(), o.x.first(), o.y.first())
        {
            if (lx, ly) == (fx, fy) {
                *self.count.last_mut().expect("non-empty") += o.count[0];
                for (ci, &k) in ncats.iter().enumerate() {
                    let n = self.cats[ci].len();
                    for j in 0..k {
                        self.cats[ci][n - k + j] += o.cats[ci][j];
                    }
                }
                skip = 1;
            }
        }
        self.x.extend_from_slice(&o.x[skip..]);
        self.y.extend_from_slice(&o.y[skip..]);
        self.count.extend_from_slice(&o.count[skip..]);
        for (ci, &k) in ncats.iter().enumerate() {
            self.cats[ci].extend_from_slice(&o.cats[ci][skip * k..]);
        }
    }

    /// The next coarser level: consecutive cells with the same parent merge
    /// (a quadtree cell is one contiguous run of the Hilbert curve).
    fn coarser(&self, ncats: &[usize]) -> Cells {
        let mut out = Cells::new(ncats.len());
        for i in 0..self.len() {
            let (x, y) = (self.x[i] >> 1, self.y[i] >> 1);
            let same = out.x.last() == Some(&x) && out.y.last() == Some(&y);
            if same {
                *out.count.last_mut().expect("non-empty") += self.count[i];
            } else {
                out.x.push(x);
                out.y.push(y);
                out.count.push(self.count[i]);
            }
            for (ci, &k) in ncats.iter().enumerate() {
                let src = &self.cats[ci][i * k..(i + 1) * k];
                if same {
                    let n = out.cats[ci].len();
                    for (d, s) in out.cats[ci][n - k..].iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    out.cats[ci].extend_from_slice(src);
                }
            }
        }
        out
    }
}

const NLEVELS: usize = (QBITS - MIN_LEVEL + 1) as usize;

/// Per-partition run lengths at every level 8..=32. The first and last run
/// of each level may continue in the neighbouring partitions.
struct Runs {
    /// Cell of the partition's first and last row at each level.
    first_cell: [(u32, u32); NLEVELS],
    last_cell: [(u32, u32); NLEVELS],
    first: [u64; NLEVELS],
    /// Length of the last run, when it differs from the first.
    last: [Option<u64>; NLEVELS],
    inner: Vec<Tally>,
}

fn cell_at(qx: u32, qy: u32, level: u32) -> (u32, u32) {
    let s = QBITS - level;
    if s >= 32 { (0, 0) } else { (qx >> s, qy >> s) }
}

fn partition_runs(qx: &[u32], qy: &[u32]) -> Option<Runs> {
    let n = qx.len();
    if n == 0 {
        return None;
    }
    let mut start = [0usize; NLEVELS];
    let mut first: [Option<u64>; NLEVELS] = [None; NLEVELS];
    let mut inner = vec![Tally::default(); NLEVELS];
    for i in 1..n {
        // Levels up to `common` keep both rows in one cell.
        let common = (qx[i] ^ qx[i - 1])
            .leading_zeros()
            .min((qy[i] ^ qy[i - 1]).leading_zeros());
        let lo = (common + 1).max(MIN_LEVEL);
        for level in lo..=QBITS {
            let l = (level - MIN_LEVEL) as usize;
            let len = (i - start[l]) as u64;
            match first[l] {
                None => first[l] = Some(len),
                Some(_) => inner[l].add(len),
            }
            start[l] = i;
        }
    }
    let mut runs = Runs {
        first_cell: [(0, 0); NLEVELS],
        last_cell: [(0, 0); NLEVELS],
        first: [0; NLEVELS],
        last: [None; NLEVELS],
        inner,
    };
    for l in 0..NLEVELS {
        let level = MIN_LEVEL + l as u32;
        runs.first_cell[l] = cell_at(qx[0], qy[0], level);
        runs.last_cell[l] = cell_at(qx[n - 1], qy[n - 1], level);
        let tail = (n - start[l]) as u64;
        match first[l] {
            None => runs.first[l] = tail,
            Some(f) => {
                runs.first[l] = f;
                runs.last[l] = Some(tail);
            }
        }
    }
    Some(runs)
}

/// Points per non-empty cell at every level 8..=32, from partitions in
/// Hilbert order.
fn count_distributions(ds: &Dataset) -> Vec<Vec<(u64, u64)>> {
    let pieces: Vec<Runs> = ds
        .partitions
        .par_iter()
        .filter_map(|p| partition_runs(p.qx(), p.qy()))
        .collect();
    (0..NLEVELS)
        .into_par_iter()
        .map(|l| {
            let mut tally = Tally::default();
            let mut carry: Option<((u32, u32), u64)> = None;
            for p in &pieces {
                let cell = p.first_cell[l];
                carry = match carry {
                    Some((c, n)) if c == cell => Some((c, n + p.first[l])),
                    Some((_, n)) => {
                        tally.add(n);
                        Some((cell, p.first[l]))
                    }
                    None => Some((cell, p.first[l])),
                };
                if let Some(last) = p.last[l] {
                    if let Some((_, n)) = carry.take() {
                        tally.add(n);
                    }
                    carry = Some((p.last_cell[l], last));
                }
            }
            if let Some((_, n)) = carry {
                tally.add(n);
            }
            for p in &pieces {
                tally.extend(&p.inner[l]);
            }
            tally.sorted()
        })
        .collect()
}

/// Cells of the finest level, from partitions in Hilbert order.
fn finest_cells(ds: &Dataset, level: u32, cols: &[(String, usize)]) -> Cells {
    let ncats: Vec<usize> = cols.iter().map(|c| c.1).collect();
    let pieces: Vec<Cells> = ds
        .partitions
        .par_iter()
        .map(|p| {
            let mut cells = Cells::new(cols.len());
            let codes: Vec<Option<CatColumn>> = cols
                .iter()
                .map(|(name, _)| p.column(name).and_then(CatColumn::new))
                .collect();
            let (qx, qy) = (p.qx(), p.qy());
            for i in 0..qx.len() {
                let (x, y) = cell_at(qx[i], qy[i], level);
                if cells.x.last() != Some(&x) || cells.y.last() != Some(&y) {
                    cells.x.push(x);
                    cells.y.push(y);
                    cells.count.push(0);
                    for (v, &k) in cells.cats.iter_mut().zip(&ncats) {
                        v.resize(v.len() + k, 0);
                    }
                }
                *cells.count.last_mut().expect("pushed") += 1;
                for (ci, &k) in ncats.iter().enumerate() {
                    if let Some(c) = codes[ci].as_ref().and_then(|c| c.get(i)) {
                        if c < k {
                            let at = cells.cats[ci].len() - k + c;
                            cells.cats[ci][at] += 1;
                        }
                    }
                }
            }
            cells
        })
        .collect();
    let mut all = Cells::new(cols.len());
    for p in pieces {
        all.append(p, &ncats);
    }
    all
}

/// Compute the overview of a packed dataset and write it to `dir`
/// ([`OVERVIEW_FILE`]), returning its layout for the manifest. `max_level`
/// is clamped to 8..=16.
pub fn build(ds: &Dataset, dir: &Path, max_level: u32) -> Result<OverviewInfo, std::io::Error> {
    let max_level = max_level.clamp(MIN_LEVEL, MAX_LEVEL);
    let cols: Vec<(String, usize)> = ds
        .manifest
        .columns
        .iter()
        .filter(|c| {
            c.kind == crate::store::ColumnKind::Categorical
                && !c.categories.is_empty()
                && c.categories.len() <= MAX_CATEGORIES
        })
        .map(|c| (c.name.clone(), c.categories.len()))
        .collect();
    let ncats: Vec<usize> = cols.iter().map(|c| c.1).collect();
    let (cells, counts) = rayon::join(
        || finest_cells(ds, max_level, &cols),
        || count_distributions(ds),
    );
    // Levels from the finest up, then stored coarsest first.
    let mut levels = vec![cells];
    for _ in MIN_LEVEL..max_level {
        let next = levels.last().expect("one level").coarser(&ncats);
        levels.push(next);
    }
    levels.reverse();

    let path = dir.join(OVERVIEW_FILE);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut at = 0u64;
    let mut put = |out: &mut std::io::BufWriter<std::fs::File>, bytes: &[u8]| {
        out.write_all(bytes)?;
        let pad = padded(bytes.len()) as usize - bytes.len();
        out.write_all(&[0u8; 8][..pad])?;
        at += (bytes.len() + pad) as u64;
        Ok::<u64, std::io::Error>(at)
    };
    let mut info = OverviewInfo {
        bytes: 0,
        categorical: cols
            .iter()
            .map(|(name, k)| OverviewColumn {
                name: name.clone(),
                categories: *k,
            })
            .collect(),
        levels: Vec::new(),
        counts: Vec::new(),
    };
    let mut offset = 0u64;
    for (i, cells) in levels.iter().enumerate() {
        let level = MIN_LEVEL + i as u32;
        let s = QBITS - level;
        let keys: Vec<u32> = cells
            .x
            .iter()
            .zip(&cells.y)
            .map(|(&x, &y)| (crate::geo::hilbert(x << s, y << s) >> (2 * s)) as u32)
            .collect();
        info.levels.push(OverviewLevel {
            level,
            cells: cells.len() as u64,
            offset,
        });
        for a in [&keys, &cells.x, &cells.y, &cells.count]
            .into_iter()
            .chain(&cells.cats)
        {
            offset = put(&mut out, &le_u32(a))?;
        }
    }
    for (i, dist) in counts.iter().enumerate() {
        info.counts.push(OverviewCounts {
            level: MIN_LEVEL + i as u32,
            values: dist.len() as u64,
            offset,
        });
        let v: Vec<u8> = dist.iter().flat_map(|d| d.0.to_le_bytes()).collect();
        put(&mut out, &v)?;
        let k: Vec<u8> = dist.iter().flat_map(|d| d.1.to_le_bytes()).collect();
        offset = put(&mut out, &k)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    info.bytes = offset;
    Ok(info)
}

fn le_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
