//! Aggregation kernels: rows of a view → a grid of per-pixel reductions,
//! computed in parallel (rayon over row spans, one grid per task, merged).
//!
//! Binning rules:
//! - **Tiles** bin with integer shifts of the quantized coordinates: a tile
//!   is the half-open square `[x0, x1) × [y0, y1)` of the world grid, so each
//!   point belongs to exactly one tile and neighbouring tiles never count a
//!   point twice.
//! - **Viewports** follow Datashader's `Canvas.points` exactly: a point is kept
//!   when `xmin <= x <= xmax` and `ymin <= y <= ymax`, its column is
//!   `int(x·sx + tx)` with `sx = width / (xmax − xmin)`, `tx = −xmin·sx`, and
//!   a point exactly on the upper edge goes into the last column (row).
//!   Positions are the centres of their quantized cells, at most 4.7 mm from
//!   the input coordinates.
//!
//! Grids are stored top row first (north up), as images are.

pub mod cells;
pub mod export;
mod overview;
pub mod plan;
pub mod sample;
pub mod zoom;

use crate::geo::{HALF_WORLD, MercatorBox, Q_STEP, TileId};
use crate::query::{
    Agg, BoundFilters, Budget, Filter, Limits, QueryError, RowSpan, View, plan_rows,
};
use crate::store::column::{CatColumn, NumColumn};
use crate::store::{Dataset, Partition};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows per parallel work item.
pub const CHUNK_ROWS: usize = 1 << 16;

/// Maps a quantized position to a pixel index (`row * width + col`).
pub trait Binner: Sync {
    /// The pixel, or `None` when the point is outside the view.
    fn bin(&self, qx: u32, qy: u32) -> Option<usize>;

    /// For tiles whose pixels are whole cells of the quantized grid: the
    /// pure-shift form of [`Binner::bin`] for rows known to lie in the tile.
    fn shift_bin(&self) -> Option<ShiftBin> {
        None
    }
}

/// Pixel of a point inside a tile as shifts only:
/// `((qy − y0) >> s) << lg | (qx − x0) >> s`.
#[derive(Clone, Copy, Debug)]
pub struct ShiftBin {
    x0: u32,
    y0: u32,
    s: u32,
    lg: u32,
}

impl ShiftBin {
    #[inline(always)]
    fn index(&self, qx: u32, qy: u32) -> usize {
        ((((qy.wrapping_sub(self.y0)) >> self.s) << self.lg)
            | ((qx.wrapping_sub(self.x0)) >> self.s)) as usize
    }
}

/// Integer binning for an XYZ tile.
#[derive(Clone, Copy, Debug)]
pub struct TileBinner {
    x0: u64,
    y0: u64,
    span: u64,
    shift: u32,
    size: u64,
}

impl TileBinner {
    /// Binner for `tile` at `size` pixels per side.
    pub fn new(tile: TileId, size: u32) -> Self {
        let (x0, _, y0, _) = tile.qbounds();
        TileBinner {
            x0,
            y0,
            span: 1u64 << tile.shift(),
            shift: tile.shift(),
            size: size as u64,
        }
    }
}

impl Binner for TileBinner {
    #[inline(always)]
    fn bin(&self, qx: u32, qy: u32) -> Option<usize> {
        let dx = (qx as u64).wrapping_sub(self.x0);
        let dy = (qy as u64).wrapping_sub(self.y0);
        if dx >= self.span || dy >= self.span {
            return None;
        }
        let col = (dx * self.size) >> self.shift;
        let row = (dy * self.size) >> self.shift;
        Some((row * self.size + col) as usize)
    }

    fn shift_bin(&self) -> Option<ShiftBin> {
        let lg = self.size.trailing_zeros();
        (self.size.is_power_of_two() && self.shift >= lg).then_some(ShiftBin {
            x0: self.x0 as u32,
            y0: self.y0 as u32,
            s: self.shift - lg,
            lg,
        })
    }
}

/// Integer binning for an XYZ tile widened by a margin of whole pixels of
/// the tile's own grid: a row lands in the same pixel column as it does
/// in the tile it belongs to, offset by the tiles between.
#[derive(Clone, Copy, Debug)]
pub struct MarginTileBinner {
    x0: i64,
    y0: i64,
    shift: u32,
    size: i64,
    margin: i64,
    side: i64,
}

impl MarginTileBinner {
    /// Binner for `tile` at `size` pixels with `margin` pixels each side.
    pub fn new(tile: TileId, size: u32, margin: u32) -> Self {
        let (x0, _, y0, _) = tile.qbounds();
        MarginTileBinner {
            x0: x0 as i64,
            y0: y0 as i64,
            shift: tile.shift(),
            size: size as i64,
            margin: margin as i64,
            side: (size + 2 * margin) as i64,
        }
    }
}

impl Binner for MarginTileBinner {
    #[inline(always)]
    fn bin(&self, qx: u32, qy: u32) -> Option<usize> {
        // Signed offsets from the tile's corner; `>>` on i64 floors, so a
        // row left of the tile gets a negative column, as in its own tile.
        let col = ((qx as i64 - self.x0) * self.size) >> self.shift;
        let row = ((qy as i64 - self.y0) * self.size) >> self.shift;
        let (c, r) = (col + self.margin, row + self.margin);
        if c < 0 || r < 0 || c >= self.side || r >= self.side {
            return None;
        }
        Some((r * self.side + c) as usize)
    }
}

/// Datashader's float binning for an arbitrary Web Mercator viewport.
#[derive(Clone, Copy, Debug)]
pub struct ViewportBinner {
    b: MercatorBox,
    sx: f64,
    tx: f64,
    sy: f64,
    ty: f64,
    w: i64,
    h: i64,
}

impl ViewportBinner {
    /// Binner for `bbox` at `width` × `height`.
    pub fn new(b: MercatorBox, width: u32, height: u32) -> Self {
        let sx = width as f64 / (b.xmax - b.xmin);
        let sy = height as f64 / (b.ymax - b.ymin);
        ViewportBinner {
            b,
            sx,
            tx: -b.xmin * sx,
            sy,
            ty: -b.ymin * sy,
            w: width as i64,
            h: height as i64,
        }
    }
}

impl Binner for ViewportBinner {
    #[inline(always)]
    fn bin(&self, qx: u32, qy: u32) -> Option<usize> {
        let x = (qx as f64 + 0.5) * Q_STEP - HALF_WORLD;
        let y = HALF_WORLD - (qy as f64 + 0.5) * Q_STEP;
        let b = &self.b;
        if !(b.xmin <= x && x <= b.xmax && b.ymin <= y && y <= b.ymax) {
            return None;
        }
        let mut xx = (x * self.sx + self.tx) as i64;
        let mut yy = (y * self.sy + self.ty) as i64;
        if x == b.xmax {
            xx -= 1;
        }
        if y == b.ymax {
            yy -= 1;
        }
        let xx = xx.clamp(0, self.w - 1);
        let yy = yy.clamp(0, self.h - 1);
        // Datashader's row 0 is ymin; images (and our grids) start at the top.
        Some(((self.h - 1 - yy) * self.w + xx) as usize)
    }
}

/// Per-pixel values of an aggregation.
#[derive(Clone, Debug, PartialEq)]
pub enum GridValues {
    /// `count`: points per pixel.
    Count(Vec<u32>),
    /// `any`: whether a pixel has a point.
    Any(Vec<bool>),
    /// Float reductions; NaN where a pixel has no value.
    Float(Vec<f64>),
    /// `count_cat`: counts, pixel-major (`pixel * ncat + category`).
    CatCount(Vec<u32>),
    /// `by(cat, sum|mean)`: values, pixel-major; NaN where none.
    CatFloat(Vec<f64>),
}

/// An aggregate grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Columns.
    pub width: usize,
    /// Rows (row 0 is the top).
    pub height: usize,
    /// Category labels for categorical grids (empty otherwise).
    pub categories: Vec<String>,
    /// The values.
    pub values: GridValues,
}

impl Grid {
    /// Categories per pixel (1 for scalar grids).
    pub fn ncat(&self) -> usize {
        self.categories.len().max(1)
    }

    /// Scalar values as f64 (count as numbers, any as 0/1). Categorical grids
    /// give the per-pixel totals.
    pub fn scalar_f64(&self) -> Vec<f64> {
        match &self.values {
            GridValues::Count(v) => v.iter().map(|&c| c as f64).collect(),
            GridValues::Any(v) => v.iter().map(|&b| b as u8 as f64).collect(),
            GridValues::Float(v) => v.clone(),
            GridValues::CatCount(v) => v
                .chunks(self.ncat())
                .map(|c| c.iter().map(|&x| x as f64).sum())
                .collect(),
            GridValues::CatFloat(v) => v
                .chunks(self.ncat())
                .map(|c| {
                    let s: f64 = c.iter().filter(|x| !x.is_nan()).sum();
                    if c.iter().all(|x| x.is_nan()) {
                        f64::NAN
                    } else {
                        s
                    }
                })
                .collect(),
        }
    }
}

/// An aggregation result.
#[derive(Clone, Debug)]
pub struct Aggregate {
    /// The grid.
    pub grid: Grid,
    /// Rows read (after key-range and partition pruning, before row filters);
    /// for a tile answered from the overview, the overview cells read.
    pub rows_scanned: u64,
    /// Partitions skipped by zone maps.
    pub partitions_skipped: usize,
}

/// Per-task accumulator of one reduction.
#[derive(Clone)]
enum State {
    Count(Vec<u32>),
    /// Sum/mean: non-NaN values and their sum.
    Sum(Vec<u32>, Vec<f64>),
    /// Std/var: Welford's count, mean, M2.
    Moments(Vec<u32>, Vec<f64>, Vec<f64>),
    Min(Vec<f64>),
    Max(Vec<f64>),
}

impl State {
    fn merge(mut self, other: State) -> State {
        match (&mut self, other) {
            (State::Count(a), State::Count(b)) => a.iter_mut().zip(b).for_each(|(a, b)| *a += b),
            (State::Sum(n, s), State::Sum(n2, s2)) => {
                n.iter_mut().zip(n2).for_each(|(a, b)| *a += b);
                s.iter_mut().zip(s2).for_each(|(a, b)| *a += b);
            }
            (State::Moments(n, m, q), State::Moments(n2, m2, q2)) => {
                for i in 0..n.len() {
                    let (na, nb) = (n[i] as f64, n2[i] as f64);
                    if nb == 0.0 {
                        continue;
                    }
                    let tot = na + nb;
                    let d = m2[i] - m[i];
                    m[i] += d * nb / tot;
                    q[i] += q2[i] + d * d * na * nb / tot;
                    n[i] += n2[i];
                }
            }
            (State::Min(a), State::Min(b)) => a.iter_mut().zip(b).for_each(|(a, b)| {
                if b < *a || a.is_nan() {
                    *a = b
                }
            }),
            (State::Max(a), State::Max(b)) => a.iter_mut().zip(b).for_each(|(a, b)| {
                if b > *a || a.is_nan() {
                    *a = b
                }
            }),
            _ => unreachable!("states of one aggregation have one shape"),
        }
        self
    }
}

/// Which per-row update a kernel applies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Count,
    Sum,
    Moments,
    Min,
    Max,
}

/// Aggregate the rows of a view into a grid.
///
/// `cancel` is polled between row spans: once set, the work stops and
/// [`QueryError::Cancelled`] is returned.
pub fn aggregate(
    ds: &Dataset,
    view: &View,
    agg: &Agg,
    filters: &[Filter],
    cancel: Option<&AtomicBool>,
) -> Result<Aggregate, QueryError> {
    let budget = Budget {
        cancel,
        limits: Limits::default(),
    };
    aggregate_within(ds, view, agg, filters, budget)
}

/// [`aggregate`] within a request budget: a grid over
/// [`Limits::max_grid_bytes`] is refused with [`QueryError::TooLarge`]
/// before anything is allocated, and parallel tasks (each owning a grid)
/// are limited to what fits in twice the budget.
pub fn aggregate_within(
    ds: &Dataset,
    view: &View,
    agg: &Agg,
    filters: &[Filter],
    budget: Budget<'_>,
) -> Result<Aggregate, QueryError> {
    agg.validate(&ds.manifest)?;
    budget.limits.check_grid(view, agg, &ds.manifest)?;
    let cancel = budget.cancel;
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(QueryError::Cancelled);
    }
    if let (View::Tile { tile, size }, Some(ov)) = (view, &ds.overview) {
        if let Some((grid, cells)) = ov.tile(&ds.manifest, *tile, *size, agg, filters) {
            return Ok(Aggregate {
                grid,
                rows_scanned: cells,
                partitions_skipped: 0,
            });
        }
    }
    let spans = plan_rows(ds, &view.key_ranges(), CHUNK_ROWS);
    prefetch(
        ds,
        spans.iter().map(|s| (s.partition, s.rows.clone())),
        agg,
        filters,
    );
    match *view {
        View::Tile { tile, size } => run(
            ds,
            &spans,
            &TileBinner::new(tile, size),
            view,
            agg,
            filters,
            budget,
        ),
        View::TileMargin { tile, size, margin } => run(
            ds,
            &spans,
            &MarginTileBinner::new(tile, size, margin),
            view,
            agg,
            filters,
            budget,
        ),
        View::Viewport {
            bbox,
            width,
            height,
        } => run(
            ds,
            &spans,
            &ViewportBinner::new(bbox, width, height),
            view,
            agg,
            filters,
            budget,
        ),
    }
}

fn run<B: Binner>(
    ds: &Dataset,
    spans: &[RowSpan],
    binner: &B,
    view: &View,
    agg: &Agg,
    filters: &[Filter],
    budget: Budget<'_>,
) -> Result<Aggregate, QueryError> {
    let cancel = budget.cancel;
    let (w, h) = view.size();
    let npix = w * h;
    let categories = categories_of(ds, agg);
    let ncat = categories.len().max(1);
    let op = match agg {
        Agg::Count | Agg::Any | Agg::CountCat(_) => Op::Count,
        Agg::Sum(_) | Agg::Mean(_) | Agg::CatSum(..) | Agg::CatMean(..) => Op::Sum,
        Agg::Std(_) | Agg::Var(_) => Op::Moments,
        Agg::Min(_) => Op::Min,
        Agg::Max(_) => Op::Max,
    };
    let cells = npix * ncat;
    // Each parallel task owns a whole grid: as many tasks as fit in twice
    // the grid budget (the caller checked that one grid fits).
    let grid_bytes = Limits::grid_bytes(view, agg, ncat).max(1);
    let max_tasks = (budget.limits.max_grid_bytes.saturating_mul(2) / grid_bytes).max(1) as usize;
    let init = || match op {
        Op::Count => State::Count(vec![0; cells]),
        Op::Sum => State::Sum(vec![0; cells], vec![0.0; cells]),
        Op::Moments => State::Moments(vec![0; cells], vec![0.0; cells], vec![0.0; cells]),
        Op::Min | Op::Max => {
            if op == Op::Min {
                State::Min(vec![f64::NAN; cells])
            } else {
                State::Max(vec![f64::NAN; cells])
            }
        }
    };
    // Partitions excluded by zone maps are dropped before any row is read.
    let mut used = vec![false; ds.partitions.len()];
    for s in spans {
        used[s.partition] = true;
    }
    let bound = crate::query::bind_used(ds, filters, &used);
    let skipped = used
        .iter()
        .zip(&bound)
        .filter(|(u, b)| **u && b.is_none())
        .count();
    let spans: Vec<&RowSpan> = spans
        .iter()
        .filter(|s| bound[s.partition].is_some())
        .collect();
    let rows_scanned: u64 = spans.iter().map(|s| s.rows.len() as u64).sum();
    let threads = rayon::current_num_threads();
    // Few large tasks per thread: each task owns a whole grid, which it
    // must clear and later merge, so a task also reads at least about as
    // many rows as its grid has cells (a z8 count_cat tile of 250k rows
    // spent more time clearing and merging five grids than counting).
    let min_len = (spans.len() / (threads * 4))
        .max(cells.div_ceil(CHUNK_ROWS))
        .max(spans.len().div_ceil(max_tasks))
        .max(1);
    let state = spans
        .par_iter()
        .with_min_len(min_len)
        .try_fold(
            || (init(), Vec::new()),
            |(mut st, mut mask), span| {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return Err(QueryError::Cancelled);
                }
                let part = &ds.partitions[span.partition];
                let f = bound[span.partition].as_ref().expect("filtered above");
                let pts = Points {
                    part,
                    rows: span.rows.clone(),
                    binner,
                    filters: f,
                };
                kernel(&mut st, &pts, &mut mask, agg, ncat);
                Ok((st, mask))
            },
        )
        .map(|r| r.map(|(st, _)| st))
        // No identity grid: allocating and merging one costs more than a
        // small tile's whole aggregation.
        .try_reduce_with(|a, b| Ok(a.merge(b)))
        .transpose()?
        .unwrap_or_else(init);
    let values = finish(state, agg);
    Ok(Aggregate {
        grid: Grid {
            width: w,
            height: h,
            categories,
            values,
        },
        rows_scanned,
        partitions_skipped: skipped,
    })
}

/// The rows of one span to aggregate.
struct Points<'a, B> {
    part: &'a Partition,
    rows: std::ops::Range<usize>,
    binner: &'a B,
    filters: &'a BoundFilters<'a>,
}

impl<B: Binner> Points<'_, B> {
    /// Call `emit(pixel, row)` for every row inside the view that passes the
    /// filters. Filters are evaluated a column at a time into `mask` first.
    #[inline(always)]
    fn for_each(&self, mask: &mut Vec<bool>, mut emit: impl FnMut(usize, usize)) {
        let start = self.rows.start;
        let qx = &self.part.qx()[self.rows.clone()];
        let qy = &self.part.qy()[self.rows.clone()];
        if self.filters.is_empty() {
            for (i, (&x, &y)) in qx.iter().zip(qy).enumerate() {
                if let Some(px) = self.binner.bin(x, y) {
                    emit(px, start + i);
                }
            }
        } else {
            self.filters.mask(self.rows.clone(), mask);
            for (i, ((&x, &y), &m)) in qx.iter().zip(qy).zip(mask.iter()).enumerate() {
                if m {
                    if let Some(px) = self.binner.bin(x, y) {
                        emit(px, start + i);
                    }
                }
            }
        }
    }
}

/// The labels `agg` splits by (empty for scalar reductions).
pub(crate) fn categories_of(ds: &Dataset, agg: &Agg) -> Vec<String> {
    agg.category_column()
        .and_then(|c| ds.manifest.column(c))
        .map(|c| c.categories.clone())
        .unwrap_or_default()
}

/// One span of a whole-map scan, as [`scan_spans`] hands it over.
pub(crate) struct ScanSpan<'a> {
    /// The partition.
    pub part: &'a Partition,
    /// Its index in the dataset.
    pub partition: usize,
    /// Its rows.
    pub rows: std::ops::Range<usize>,
    /// The column the aggregation reduces.
    pub num: Option<NumColumn<'a>>,
    /// Rows that pass the filters and have a value; `None` when all do.
    pub mask: Option<&'a [bool]>,
}

/// Scan every row of the dataset in parallel spans, in row order: `scan`
/// fills the piece `empty()` gives each span (partitions the zone maps
/// exclude stay empty). `cancel` is polled between spans.
pub(crate) fn scan_spans<P: Send>(
    ds: &Dataset,
    agg: &Agg,
    filters: &[Filter],
    cancel: Option<&AtomicBool>,
    empty: impl Fn() -> P + Sync,
    scan: impl Fn(&mut P, &ScanSpan) + Sync,
) -> Result<Vec<P>, QueryError> {
    let spans = crate::query::all_rows(ds, CHUNK_ROWS * 4);
    let bound = crate::query::bind_all(ds, filters);
    let columns = scan_columns(agg, filters);
    spans
        .par_iter()
        // One mask buffer per worker, reused span after span: a fresh one
        // per span made the kernel zero new pages for every span's mask.
        .map_init(Vec::new, |mask, span| {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(QueryError::Cancelled);
            }
            let mut piece = empty();
            let Some(f) = bound[span.partition].as_ref() else {
                return Ok(piece);
            };
            let part = &ds.partitions[span.partition];
            let num = value_column(part, agg);
            // One mask for filters and the value column's nulls.
            let masked = f.mask_valid(span.rows.clone(), num.as_ref().and_then(|c| c.nulls), mask);
            let s = ScanSpan {
                part,
                partition: span.partition,
                rows: span.rows.clone(),
                num,
                mask: masked.then_some(&mask[..]),
            };
            scan(&mut piece, &s);
            ds.release(span.partition, span.rows.clone(), &columns);
            Ok(piece)
        })
        .collect()
}

/// The column `agg` reduces, as numbers.
/// Rows a scan asks the kernel to read ahead of it. A larger scan (a
/// whole-map pass) reads most of the file: read-ahead would only evict,
/// under memory pressure, what it is about to read.
const PREFETCH_MAX_ROWS: usize = 4 << 20;

/// Advise the kernel that the columns a query reads, over these rows, are
/// about to be read ([`Dataset::prefetch`]): on data larger than memory, a
/// tile's or a sample's scattered row ranges are then fetched by parallel
/// reads instead of one page fault at a time.
pub(crate) fn prefetch(
    ds: &Dataset,
    spans: impl Iterator<Item = (usize, std::ops::Range<usize>)> + Clone,
    agg: &Agg,
    filters: &[Filter],
) {
    let columns = scan_columns(agg, filters);
    if ds.is_remote() {
        // Every chunk the scan reads, in one batch of parallel requests.
        let spans: Vec<_> = spans.collect();
        ds.prefetch_spans(&spans, &columns);
        return;
    }
    let rows: usize = spans.clone().map(|(_, r)| r.len()).sum();
    if rows > PREFETCH_MAX_ROWS {
        return;
    }
    // Scans come in chunks of one row range: one advice per range, not per
    // chunk.
    let mut run: Option<(usize, std::ops::Range<usize>)> = None;
    for (p, r) in spans {
        match &mut run {
            Some((q, open)) if *q == p && open.end == r.start => open.end = r.end,
            _ => {
                if let Some((q, open)) = run.replace((p, r)) {
                    ds.prefetch(q, open, &columns);
                }
            }
        }
    }
    if let Some((q, open)) = run {
        ds.prefetch(q, open, &columns);
    }
}

/// The fixed-width columns a scan for `agg` and `filters` reads.
fn scan_columns<'a>(agg: &'a Agg, filters: &'a [Filter]) -> Vec<&'a str> {
    let mut columns: Vec<&str> = vec![crate::store::QX, crate::store::QY];
    columns.extend(agg.value_column());
    columns.extend(agg.category_column());
    columns.extend(filters.iter().map(|f| f.column()));
    // A filter on the reduced column names it twice.
    columns.sort_unstable();
    columns.dedup();
    columns
}

pub(crate) fn value_column<'a>(part: &'a Partition, agg: &Agg) -> Option<NumColumn<'a>> {
    agg.value_column()
        .and_then(|c| part.column(c))
        .and_then(NumColumn::new)
}

/// The column `agg` splits by, as category codes.
pub(crate) fn category_column<'a>(part: &'a Partition, agg: &Agg) -> Option<CatColumn<'a>> {
    agg.category_column()
        .and_then(|c| part.column(c))
        .and_then(CatColumn::new)
}

fn kernel<B: Binner>(
    st: &mut State,
    pts: &Points<B>,
    mask: &mut Vec<bool>,
    agg: &Agg,
    ncat: usize,
) {
    let (num, cat) = (value_column(pts.part, agg), category_column(pts.part, agg));
    // The cell of a row: its pixel, or pixel × category for categorical grids.
    let cell = |px: usize, row: usize| -> Option<usize> {
        match &cat {
            Some(c) => c.get(row).filter(|&k| k < ncat).map(|k| px * ncat + k),
            None => Some(px),
        }
    };
    match st {
        State::Count(g) => {
            if let Some(sb) = pts.binner.shift_bin() {
                // Rows of a tile's key range all lie inside the tile, so the
                // pixel is pure shifts; masking the index (the grid side is a
                // power of two) keeps it in bounds without a branch.
                count_shifted(g, pts, mask, sb, cat.as_ref(), ncat);
            } else if cat.is_none() {
                pts.for_each(mask, |px, _| g[px] += 1);
            } else {
                pts.for_each(mask, |px, row| {
                    if let Some(c) = cell(px, row) {
                        g[c] += 1;
                    }
                });
            }
        }
        State::Sum(n, s) => {
            let Some(col) = num else { return };
            pts.for_each(mask, |px, row| {
                let v = col.get(row);
                if let (false, Some(c)) = (v.is_nan(), cell(px, row)) {
                    n[c] += 1;
                    s[c] += v;
                }
            });
        }
        State::Moments(n, m, q) => {
            let Some(col) = num else { return };
            pts.for_each(mask, |px, row| {
                let v = col.get(row);
                if let (false, Some(c)) = (v.is_nan(), cell(px, row)) {
                    n[c] += 1;
                    let d = v - m[c];
                    m[c] += d / n[c] as f64;
                    q[c] += d * (v - m[c]);
                }
            });
        }
        State::Min(g) => {
            let Some(col) = num else { return };
            pts.for_each(mask, |px, row| {
                let v = col.get(row);
                if let (false, Some(c)) = (v.is_nan(), cell(px, row)) {
                    // NaN marks an empty cell: any value replaces it.
                    if g[c].is_nan() || v < g[c] {
                        g[c] = v;
                    }
                }
            });
        }
        State::Max(g) => {
            let Some(col) = num else { return };
            pts.for_each(mask, |px, row| {
                let v = col.get(row);
                if let (false, Some(c)) = (v.is_nan(), cell(px, row)) {
                    if g[c].is_nan() || v > g[c] {
                        g[c] = v;
                    }
                }
            });
        }
    }
}

/// The count / count-by-category kernel for tiles (see [`ShiftBin`]).
fn count_shifted<B: Binner>(
    g: &mut [u32],
    pts: &Points<B>,
    mask: &mut Vec<bool>,
    sb: ShiftBin,
    cat: Option<&CatColumn>,
    ncat: usize,
) {
    let r = pts.rows.clone();
    let qx = &pts.part.qx()[r.clone()];
    let qy = &pts.part.qy()[r.clone()];
    let filtered = !pts.filters.is_empty();
    if filtered {
        pts.filters.mask(r.clone(), mask);
    }
    let npix = 1usize << (2 * sb.lg);
    match cat {
        None => {
            let g = &mut g[..npix];
            let top = npix - 1;
            // Rows are Hilbert-sorted, so a pixel's points are consecutive:
            // counting runs in a register avoids a store-to-load dependency
            // through memory on every point.
            let (mut cur, mut n) = (0usize, 0u32);
            let mut add = |i: usize, k: u32| {
                if i != cur {
                    g[cur] += n;
                    cur = i;
                    n = 0;
                }
                n += k;
            };
            if filtered {
                for ((&x, &y), &m) in qx.iter().zip(qy).zip(mask.iter()) {
                    add(sb.index(x, y) & top, m as u32);
                }
            } else {
                for (&x, &y) in qx.iter().zip(qy) {
                    add(sb.index(x, y) & top, 1);
                }
            }
            g[cur] += n;
        }
        Some(c) => {
            let codes = &c.codes[r.clone()];
            for (i, ((&x, &y), &k)) in qx.iter().zip(qy).zip(codes).enumerate() {
                if filtered && !mask[i] {
                    continue;
                }
                let k = k as u16 as usize;
                if k < ncat && c.nulls.is_none_or(|n| n.is_valid(r.start + i)) {
                    g[(sb.index(x, y) & (npix - 1)) * ncat + k] += 1;
                }
            }
        }
    }
}

fn finish(st: State, agg: &Agg) -> GridValues {
    match (st, agg) {
        (State::Count(g), Agg::Any) => GridValues::Any(g.into_iter().map(|c| c > 0).collect()),
        (State::Count(g), Agg::CountCat(_)) => GridValues::CatCount(g),
        (State::Count(g), _) => GridValues::Count(g),
        (State::Sum(n, s), agg) => {
            let mean = matches!(agg, Agg::Mean(_) | Agg::CatMean(..));
            let v = n
                .into_iter()
                .zip(s)
                .map(|(n, s)| match n {
                    0 => f64::NAN,
                    n if mean => s / n as f64,
                    _ => s,
                })
                .collect();
            if agg.category_column().is_some() {
                GridValues::CatFloat(v)
            } else {
                GridValues::Float(v)
            }
        }
        (State::Moments(n, _, q), agg) => GridValues::Float(
            n.into_iter()
                .zip(q)
                .map(|(n, q)| {
                    if n == 0 {
                        f64::NAN
                    } else {
                        let var = q / n as f64;
                        if matches!(agg, Agg::Std(_)) {
                            var.sqrt()
                        } else {
                            var
                        }
                    }
                })
                .collect(),
        ),
        (State::Min(g), _) | (State::Max(g), _) => GridValues::Float(g),
    }
}
