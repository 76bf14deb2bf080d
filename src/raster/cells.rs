//! Query cells: one query (aggregation and filters) aggregated over the whole
//! map at one pixel level, from one pass over the rows.
//!
//! The pack-time overview answers low-zoom tiles and seamless colour scales
//! for plain counts. Any other query — a range filter, a mean — would read
//! every row of a low-zoom tile, and every row again for each zoom's colour
//! scale. Rows are sorted along the Hilbert curve, so one pass that closes a
//! cell whenever the row's level-[`CELL_LEVEL`] cell changes yields every
//! non-empty cell, in curve order. A pixel of any coarser level is one
//! contiguous run of those cells, so a tile or a zoom's pixel distribution
//! merges whole cells instead of rows: the same counts as aggregating the
//! rows, and the same float values up to the order their sums are added in.
//! The server computes them once per query and keeps them in a bounded cache.

use super::zoom::{Acc, Moments, Run, Sums, Values, float_stride, value};
use super::{Grid, GridValues};
use crate::geo::{QBITS, TileId};
use crate::query::{Agg, Filter, QueryError};
use crate::store::Dataset;
use std::sync::atomic::AtomicBool;

/// The pixel level cells are computed at: 256-pixel tiles up to z4 and
/// 512-pixel tiles up to z3 (the overview's default finest level).
pub const CELL_LEVEL: u32 = 12;
const _: () = assert!(CELL_LEVEL == crate::store::stats::STATS_LEVEL);

/// Categorical columns with more categories than this are aggregated from
/// the rows (a cell holds one count per category).
pub const MAX_CELL_CATEGORIES: usize = 64;

/// Per-cell values.
#[derive(Clone, Debug)]
enum CellValues {
    /// Rows per cell (count, any).
    Count(Vec<u32>),
    /// Rows per cell and category, cell-major.
    Cat(usize, Vec<u32>),
    /// Value sums, extremes and moments per cell.
    Acc(Vec<Acc>),
    /// Value counts and sums per cell (sum, mean): [`Moments::Sum`].
    Sums(Vec<Sums>),
}

impl CellValues {
    /// Values of the same shape, with room for `cells` cells.
    fn with_capacity(&self, cells: usize) -> CellValues {
        match self {
            CellValues::Count(_) => CellValues::Count(Vec::with_capacity(cells)),
            CellValues::Cat(k, _) => CellValues::Cat(*k, Vec::with_capacity(cells * k)),
            CellValues::Acc(_) => CellValues::Acc(Vec::with_capacity(cells)),
            CellValues::Sums(_) => CellValues::Sums(Vec::with_capacity(cells)),
        }
    }
}

/// Non-empty cells of one query at [`CELL_LEVEL`], in Hilbert order.
#[derive(Clone, Debug)]
pub struct QueryCells {
    agg: Agg,
    categories: Vec<String>,
    /// Hilbert key of each cell at the cell level.
    keys: Vec<u32>,
    x: Vec<u32>,
    y: Vec<u32>,
    values: CellValues,
    /// Rows that passed the filters.
    rows: u64,
    /// The moments value cells hold.
    moments: Moments,
}

/// Cells of one span of rows; the first and last may continue in the
/// neighbouring spans.
struct Piece {
    keys: Vec<u32>,
    x: Vec<u32>,
    y: Vec<u32>,
    values: CellValues,
    rows: u64,
}

impl Piece {
    /// Append `o`, merging its first cell into our last when they are one.
    fn append(&mut self, o: Piece) {
        self.rows += o.rows;
        let mut skip = 0;
        if let (Some(&lx), Some(&ly), Some(&fx), Some(&fy)) =
            (self.x.last(), self.y.last(), o.x.first(), o.y.first())
        {
            if (lx, ly) == (fx, fy) {
                skip = 1;
                match (&mut self.values, &o.values) {
                    (CellValues::Count(a), CellValues::Count(b)) => {
                        *a.last_mut().expect("a cell") += b[0]
                    }
                    (CellValues::Cat(k, a), CellValues::Cat(_, b)) => {
                        let n = a.len();
                        for (d, s) in a[n - *k..].iter_mut().zip(&b[..*k]) {
                            *d += s;
                        }
                    }
                    (CellValues::Acc(a), CellValues::Acc(b)) => {
                        a.last_mut().expect("a cell").merge(&b[0])
                    }
                    (CellValues::Sums(a), CellValues::Sums(b)) => {
                        let last = a.last_mut().expect("a cell");
                        let mut acc = Acc::from(*last);
                        acc.merge(&Acc::from(b[0]));
                        *last = acc.sums();
                    }
                    _ => unreachable!("pieces of one query have one shape"),
                }
            }
        }
        self.keys.extend_from_slice(&o.keys[skip..]);
        self.x.extend_from_slice(&o.x[skip..]);
        self.y.extend_from_slice(&o.y[skip..]);
        match (&mut self.values, o.values) {
            (CellValues::Count(a), CellValues::Count(b)) => a.extend_from_slice(&b[skip..]),
            (CellValues::Cat(k, a), CellValues::Cat(_, b)) => a.extend_from_slice(&b[skip * *k..]),
            (CellValues::Acc(a), CellValues::Acc(b)) => a.extend_from_slice(&b[skip..]),
            (CellValues::Sums(a), CellValues::Sums(b)) => a.extend_from_slice(&b[skip..]),
            _ => unreachable!("pieces of one query have one shape"),
        }
    }
}

/// Where the cells of [`CELL_LEVEL`] begin and end among the rows, from
/// the pack-time overview. The rows of a cell are consecutive, so a pass
/// over a filtered column takes cell boundaries from the overview's cell
/// counts instead of reading and comparing every row's coordinates: 8 of the
/// 12 to 16 bytes a row a filtered pass would otherwise read.
struct CellIndex<'a> {
    key: &'a [u32],
    x: &'a [u32],
    y: &'a [u32],
    count: &'a [u32],
    /// Per partition: its first cell, and how many of that cell's rows lie
    /// in earlier partitions.
    first: Vec<(usize, u32)>,
}

impl<'a> CellIndex<'a> {
    /// The index of `ds`, when its overview holds [`CELL_LEVEL`] and its
    /// cells account for every row of every partition (else `None`, and
    /// passes read the coordinates).
    fn of(ds: &'a Dataset) -> Option<CellIndex<'a>> {
        let ov = ds.overview.as_ref()?;
        let level = ov
            .levels
            .get(CELL_LEVEL.checked_sub(crate::store::overview::MIN_LEVEL)? as usize)?;
        let count: &[u32] = &level.count;
        let mut first = Vec::with_capacity(ds.partitions.len());
        let (mut c, mut used) = (0usize, 0u32);
        for p in &ds.partitions {
            first.push((c, used));
            let mut left = p.len() as u64;
            while left > 0 {
                let n = u64::from(count.get(c)?.checked_sub(used).filter(|&n| n > 0)?);
                if left < n {
                    used += left as u32;
                    left = 0;
                } else {
                    left -= n;
                    (c, used) = (c + 1, 0);
                }
            }
        }
        (c == count.len() && used == 0).then_some(CellIndex {
            key: &level.key,
            x: &level.x,
            y: &level.y,
            count,
            first,
        })
    }

    /// `f(cell, lo, hi)` for each cell among rows `rows` of partition
    /// `partition`, with `lo..hi` relative to `rows.start`. The cell comes
    /// with its key, as the overview stores it.
    #[inline(always)]
    fn runs(
        &self,
        partition: usize,
        rows: std::ops::Range<usize>,
        mut f: impl FnMut(Cell, usize, usize),
    ) {
        let (mut c, used) = self.first[partition];
        // The cell `c` covers partition rows `at..at + len`.
        let mut at = 0usize;
        let mut len = (self.count[c] - used) as usize;
        while at + len <= rows.start {
            at += len;
            c += 1;
            len = self.count[c] as usize;
        }
        while at < rows.end {
            let (lo, hi) = (at.max(rows.start), (at + len).min(rows.end));
            f(
                (self.x[c], self.y[c], self.key[c]),
                lo - rows.start,
                hi - rows.start,
            );
            at += len;
            c += 1;
            if at < rows.end {
                len = self.count[c] as usize;
            }
        }
    }
}

/// One accumulator of consecutive cells' accumulators, merged in order.
fn merge_all(mut cells: impl Iterator<Item = Acc>) -> Acc {
    let mut acc = cells.next().expect("a run holds a cell");
    for o in cells {
        acc.merge(&o);
    }
    acc
}

/// A cell of [`CELL_LEVEL`]: its x, y and Hilbert key at that level.
type Cell = (u32, u32, u32);

/// The key of cell `(x, y)` of [`CELL_LEVEL`].
fn cell_key(x: u32, y: u32) -> u32 {
    let shift = QBITS - CELL_LEVEL;
    (crate::geo::hilbert(x << shift, y << shift) >> (2 * shift)) as u32
}

/// `f(cell, lo, hi)` for each run of rows in one cell of [`CELL_LEVEL`],
/// found from the rows' coordinates.
#[inline(always)]
fn coordinate_runs(qx: &[u32], qy: &[u32], shift: u32, mut f: impl FnMut(Cell, usize, usize)) {
    let cell = |i: usize| (qx[i] >> shift, qy[i] >> shift);
    let with_key = |(x, y): (u32, u32)| (x, y, cell_key(x, y));
    let (mut start, mut at) = (0, cell(0));
    for i in 1..qx.len() {
        let here = cell(i);
        if here != at {
            f(with_key(at), start, i);
            (start, at) = (i, here);
        }
    }
    f(with_key(at), start, qx.len());
}

/// `f(cell, lo, hi)` for each run of one cell among a span's rows (`lo..hi`
/// relative to the span's first row): from the index when there is one,
/// else from the coordinates. Generic over `f`, so each kernel inlines into
/// the walk: a level-12 cell holds dozens of rows, and a call per cell
/// through a trait object cost more than its rows.
#[inline(always)]
fn for_cells(
    index: Option<&CellIndex>,
    span: &super::ScanSpan,
    shift: u32,
    f: impl FnMut(Cell, usize, usize),
) {
    let r = span.rows.clone();
    match index {
        Some(ix) => ix.runs(span.partition, r, f),
        None => coordinate_runs(&span.part.qx()[r.clone()], &span.part.qy()[r], shift, f),
    }
}

/// Per row of a span, the category slot its count goes to: its code, or `k`
/// for a row that fails the filters, is null or holds no known category
/// (it counts nowhere, as in the row kernel). One branch-free pass over
/// the codes, so counting a cell is one table increment per row.
fn category_slots(span: &super::ScanSpan, agg: &Agg, k: usize, slots: &mut Vec<u8>) {
    debug_assert!(k <= MAX_CELL_CATEGORIES);
    let none = k as u8;
    slots.clear();
    let Some(col) = super::category_column(span.part, agg) else {
        slots.resize(span.rows.len(), none);
        return;
    };
    let known = k.min(col.categories) as u16;
    // A negative code wraps to a large one and fails the same test.
    slots.extend(
        col.codes[span.rows.clone()]
            .iter()
            .map(|&c| if (c as u16) < known { c as u8 } else { none }),
    );
    if let Some(m) = span.mask {
        for (s, &keep) in slots.iter_mut().zip(m) {
            *s = if keep { *s } else { none };
        }
    }
    if let Some(nulls) = col.nulls {
        for (i, s) in slots.iter_mut().enumerate() {
            if nulls.is_null(span.rows.start + i) {
                *s = none;
            }
        }
    }
}

thread_local! {
    /// Each worker's slot buffer (a span's rows, a byte each), reused span
    /// after span and pass after pass: a fresh one per span was fresh
    /// pages for the kernel to fault in and zero every time.
    static SLOTS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Four counting tables, indexed by category slot, for one cell at a time.
/// Consecutive rows (often of one category) add to different tables: one
/// table would make each increment wait for the store before it.
struct CatCounts([[u32; 128]; 4]);

impl Default for CatCounts {
    fn default() -> Self {
        CatCounts([[0; 128]; 4])
    }
}

impl CatCounts {
    /// `take(counts)` with the counts of categories `0..k` among `slots`
    /// (slot `k` counts nowhere); the tables are then clear for the next
    /// cell.
    #[inline(always)]
    fn count(&mut self, slots: &[u8], k: usize, take: impl FnOnce(&[u32])) {
        const _: () = assert!(MAX_CELL_CATEGORIES < 128);
        let [t0, t1, t2, t3] = &mut self.0;
        let mut quads = slots.chunks_exact(4);
        for q in &mut quads {
            // Slots are at most MAX_CELL_CATEGORIES: the mask only spares
            // the bounds checks.
            t0[usize::from(q[0] & 127)] += 1;
            t1[usize::from(q[1] & 127)] += 1;
            t2[usize::from(q[2] & 127)] += 1;
            t3[usize::from(q[3] & 127)] += 1;
        }
        for &s in quads.remainder() {
            t0[usize::from(s & 127)] += 1;
        }
        for i in 0..=k {
            t0[i] += t1[i] + t2[i] + t3[i];
            (t1[i], t2[i], t3[i]) = (0, 0, 0);
        }
        take(&t0[..k]);
        t0[..=k].fill(0);
    }
}

impl QueryCells {
    /// Whether cells can hold `agg`: counts, `any`, `count_cat` of a column
    /// with at most [`MAX_CELL_CATEGORIES`] categories, and the single-value
    /// reductions (sum, mean, min, max, std, var). Per-category value
    /// reductions (`by:CAT:sum:COL`) are aggregated from the rows.
    pub fn supports(ds: &Dataset, agg: &Agg) -> bool {
        match agg {
            Agg::Count | Agg::Any => true,
            Agg::CountCat(c) => ds.manifest.column(c).is_some_and(|c| {
                !c.categories.is_empty() && c.categories.len() <= MAX_CELL_CATEGORIES
            }),
            Agg::Sum(_) | Agg::Mean(_) | Agg::Min(_) | Agg::Max(_) | Agg::Std(_) | Agg::Var(_) => {
                true
            }
            Agg::CatSum(..) | Agg::CatMean(..) => false,
        }
    }

    /// An upper bound on [`QueryCells::bytes`] for `agg`, before computing:
    /// the unfiltered non-empty cells the overview counted at the cell level
    /// (else the rows, at most every cell of the level) times a cell's size.
    /// The server skips cells that could not fit its cache.
    pub fn estimate_bytes(ds: &Dataset, agg: &Agg) -> u64 {
        let cells = ds
            .manifest
            .overview
            .as_ref()
            .and_then(|o| o.levels.iter().find(|l| l.level == CELL_LEVEL))
            .map_or(ds.manifest.rows.min(1 << (2 * CELL_LEVEL)), |l| l.cells);
        let per = match agg {
            Agg::Count | Agg::Any => 4,
            Agg::CountCat(c) => 4 * ds.manifest.column(c).map_or(1, |c| c.categories.len()),
            _ if Moments::of(agg) == Moments::Sum => std::mem::size_of::<Sums>(),
            _ => std::mem::size_of::<Acc>(),
        } as u64;
        cells * (12 + per) + 128
    }

    /// Whether cells should answer tiles of pixel `level` for this query:
    /// a level no finer than [`CELL_LEVEL`], an aggregation cells hold, and
    /// one the pack-time overview does not answer already.
    pub fn wanted_for_tile(ds: &Dataset, level: u32, agg: &Agg, filters: &[Filter]) -> bool {
        Self::wanted(ds, level, agg, |ov| {
            ov.answers_tiles(&ds.manifest, level, agg, filters)
        })
    }

    /// Whether cells should answer the colour scale of pixel `level` (as
    /// [`QueryCells::wanted_for_tile`], for [`crate::raster::zoom::zoom_stats`]).
    pub fn wanted_for_zoom(ds: &Dataset, level: u32, agg: &Agg, filters: &[Filter]) -> bool {
        Self::wanted(ds, level, agg, |ov| {
            ov.answers_zoom_stats(&ds.manifest, level, agg, filters)
        })
    }

    /// Whether cells can answer pixel `level` for `agg` at all: a level no
    /// finer than [`CELL_LEVEL`] and an aggregation cells hold.
    pub fn holds(ds: &Dataset, level: u32, agg: &Agg) -> bool {
        level <= CELL_LEVEL && Self::supports(ds, agg)
    }

    fn wanted(
        ds: &Dataset,
        level: u32,
        agg: &Agg,
        overview_answers: impl FnOnce(&crate::store::Overview) -> bool,
    ) -> bool {
        Self::holds(ds, level, agg) && !ds.overview.as_ref().is_some_and(overview_answers)
    }

    /// Aggregate every row that passes `filters` into cells (one parallel
    /// pass). `cancel` is polled between spans of rows. A value reduction
    /// keeps the moments it reads.
    pub fn compute(
        ds: &Dataset,
        agg: &Agg,
        filters: &[Filter],
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryCells, QueryError> {
        Self::compute_moments(ds, agg, filters, cancel, Moments::of(agg))
    }

    /// [`QueryCells::compute`], keeping `moments` of a value reduction
    /// (the pack's statistics keep them all, for every reduction).
    pub(crate) fn compute_moments(
        ds: &Dataset,
        agg: &Agg,
        filters: &[Filter],
        cancel: Option<&AtomicBool>,
        moments: Moments,
    ) -> Result<QueryCells, QueryError> {
        agg.validate(&ds.manifest)?;
        if !Self::supports(ds, agg) {
            return Err(QueryError::BadView(format!(
                "{} is aggregated from the rows, not from cells",
                agg.to_text()
            )));
        }
        let categories = super::categories_of(ds, agg);
        let ncat = categories.len();
        let shape = match agg {
            Agg::Count | Agg::Any => CellValues::Count(Vec::new()),
            Agg::CountCat(_) => CellValues::Cat(ncat, Vec::new()),
            _ if moments == Moments::Sum => CellValues::Sums(Vec::new()),
            _ => CellValues::Acc(Vec::new()),
        };
        let shift = QBITS - CELL_LEVEL;
        let empty = || Piece {
            keys: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            values: shape.with_capacity(0),
            rows: 0,
        };
        let index = CellIndex::of(ds);
        let pieces = super::scan_spans(ds, agg, filters, cancel, empty, |piece, span| {
            let r = span.rows.clone();
            if r.is_empty() {
                return;
            }
            let Piece {
                keys,
                x: xs,
                y: ys,
                values,
                rows,
            } = piece;
            // The cell's key comes with it: computing keys from positions
            // afterwards was half of a count's pass.
            let mut close = |at: Cell, n: u64| -> bool {
                if n > 0 {
                    keys.push(at.2);
                    xs.push(at.0);
                    ys.push(at.1);
                    *rows += n;
                }
                n > 0
            };
            match values {
                CellValues::Count(c) => for_cells(index.as_ref(), span, shift, |at, lo, hi| {
                    let n = match span.mask {
                        None => (hi - lo) as u32,
                        Some(m) => m[lo..hi].iter().map(|&b| u32::from(b)).sum(),
                    };
                    if close(at, u64::from(n)) {
                        c.push(n);
                    }
                }),
                CellValues::Cat(k, c) => {
                    let k = *k;
                    SLOTS.with_borrow_mut(|slots| {
                        category_slots(span, agg, k, slots);
                        let mut counts = CatCounts::default();
                        for_cells(index.as_ref(), span, shift, |at, lo, hi| {
                            counts.count(&slots[lo..hi], k, |cell| {
                                if close(at, cell.iter().map(|&n| u64::from(n)).sum()) {
                                    c.extend_from_slice(cell);
                                }
                            })
                        })
                    })
                }
                CellValues::Acc(_) | CellValues::Sums(_) => {
                    if let Some(col) = &span.num {
                        crate::with_num_slice!(col.values, |s| {
                            let s = &s[r.clone()];
                            for_cells(index.as_ref(), span, shift, |at, lo, hi| {
                                let acc = Acc::of_rows(
                                    &s[lo..hi],
                                    span.mask.map(|m| &m[lo..hi]),
                                    moments,
                                );
                                if close(at, acc.n) {
                                    match values {
                                        CellValues::Sums(a) => a.push(acc.sums()),
                                        CellValues::Acc(a) => a.push(acc),
                                        _ => unreachable!("a value reduction's cells"),
                                    }
                                }
                            })
                        })
                    }
                }
            }
        })?;
        // Sized once: growing by doubling copied and faulted in several
        // times the cells' bytes.
        let cells: usize = pieces.iter().map(|p| p.keys.len()).sum();
        let mut all = Piece {
            keys: Vec::with_capacity(cells),
            x: Vec::with_capacity(cells),
            y: Vec::with_capacity(cells),
            values: shape.with_capacity(cells),
            rows: 0,
        };
        for p in pieces {
            all.append(p);
        }
        Ok(QueryCells {
            agg: agg.clone(),
            categories,
            keys: all.keys,
            x: all.x,
            y: all.y,
            values: all.values,
            rows: all.rows,
            moments,
        })
    }

    /// The cells of `agg` and `filters`: from the pack-time statistics
    /// ([`crate::store::stats`]) for an unfiltered value reduction of a
    /// column that has them, else [`QueryCells::compute`]d.
    pub fn get(
        ds: &Dataset,
        agg: &Agg,
        filters: &[Filter],
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryCells, QueryError> {
        match Self::from_stats(ds, agg, filters) {
            Some(cells) => Ok(cells),
            None => Self::compute(ds, agg, filters, cancel),
        }
    }

    /// The cells of an unfiltered value reduction, from the pack-time
    /// statistics of its column: the same cells a pass computes, to the bit
    /// (the pack computed them with that pass).
    pub fn from_stats(ds: &Dataset, agg: &Agg, filters: &[Filter]) -> Option<QueryCells> {
        let column = match agg {
            Agg::Sum(c) | Agg::Mean(c) | Agg::Min(c) | Agg::Max(c) | Agg::Std(c) | Agg::Var(c) => c,
            _ => return None,
        };
        if !filters.is_empty() {
            return None;
        }
        let stats = ds.stats.as_ref().filter(|s| s.level == CELL_LEVEL)?;
        let c = stats.column(column)?;
        let acc = (0..c.n.len())
            .map(|i| Acc::from_moments(c.n[i], std::array::from_fn(|k| c.moments[k][i])));
        // Only what the reduction reads, as a pass would keep it.
        let moments = Moments::of(agg);
        let values = if moments == Moments::Sum {
            CellValues::Sums(acc.map(|a| a.sums()).collect())
        } else {
            CellValues::Acc(acc.collect())
        };
        Some(QueryCells {
            agg: agg.clone(),
            categories: super::categories_of(ds, agg),
            keys: c.key.to_vec(),
            x: c.x.to_vec(),
            y: c.y.to_vec(),
            rows: c.n.iter().sum(),
            values,
            moments: if moments == Moments::Sum {
                Moments::Sum
            } else {
                Moments::All
            },
        })
    }

    /// The cells as [`crate::store::stats`] stores them (value reductions
    /// that kept every moment only).
    pub fn to_stats(&self) -> Option<crate::store::stats::CellStats> {
        let CellValues::Acc(a) = &self.values else {
            return None;
        };
        if self.moments != Moments::All {
            return None;
        }
        let mut moments: [Vec<f64>; 5] = Default::default();
        for acc in a {
            for (m, v) in moments.iter_mut().zip(acc.moments()) {
                m.push(v);
            }
        }
        Some(crate::store::stats::CellStats {
            key: self.keys.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            n: a.iter().map(|acc| acc.n).collect(),
            moments,
        })
    }

    /// Non-empty cells.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no row passed the filters.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Rows that passed the filters (with a value, for value reductions).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Approximate heap bytes, for cache accounting.
    pub fn bytes(&self) -> usize {
        let per = match &self.values {
            CellValues::Count(_) => 4,
            CellValues::Cat(k, _) => 4 * k,
            CellValues::Acc(_) => std::mem::size_of::<Acc>(),
            CellValues::Sums(_) => std::mem::size_of::<Sums>(),
        };
        self.len() * (12 + per) + 128
    }

    /// Runs of cells with the same pixel at `level` (no finer than the cell
    /// level) among cells `range`: `f(pixel x, pixel y, first, end)`.
    fn runs(
        &self,
        level: u32,
        range: std::ops::Range<usize>,
        mut f: impl FnMut(u32, u32, usize, usize),
    ) {
        let d = CELL_LEVEL - level;
        let mut i = range.start;
        while i < range.end {
            let (px, py) = (self.x[i] >> d, self.y[i] >> d);
            let mut j = i + 1;
            while j < range.end && self.x[j] >> d == px && self.y[j] >> d == py {
                j += 1;
            }
            f(px, py, i, j);
            i = j;
        }
    }

    /// The merged values of cells `i..j`: rows and value accumulator.
    fn merged(&self, i: usize, j: usize) -> Run {
        let counted = |rows: u64| (rows, Acc::starting_at(0.0));
        let valued = |acc: Acc| (acc.n, acc);
        let (rows, acc) = match &self.values {
            CellValues::Count(c) => counted(c[i..j].iter().map(|&n| n as u64).sum()),
            CellValues::Cat(k, c) => counted(c[i * k..j * k].iter().map(|&n| n as u64).sum()),
            CellValues::Acc(a) => valued(merge_all(a[i..j].iter().copied())),
            CellValues::Sums(a) => valued(merge_all(a[i..j].iter().map(|&c| Acc::from(c)))),
        };
        Run {
            pixel: 0,
            rows,
            acc,
        }
    }

    /// The grid of a `size`-pixel tile, whose pixel level must be no finer
    /// than the cell level (`None` otherwise), and the cells it read.
    pub fn tile(&self, tile: TileId, size: u32) -> Option<(Grid, u64)> {
        if !size.is_power_of_two() {
            return None;
        }
        let level = tile.z as u32 + size.trailing_zeros();
        if level > CELL_LEVEL {
            return None;
        }
        let (lo, hi) = tile.key_range();
        let s = 2 * (QBITS - CELL_LEVEL);
        let (klo, khi) = ((lo >> s) as u32, (hi >> s) as u32);
        let start = self.keys.partition_point(|&k| k < klo);
        let end = self.keys.partition_point(|&k| k <= khi).max(start);
        let size = size as usize;
        let mask = size - 1;
        let sh = level - tile.z as u32;
        let (x0, y0) = ((tile.x as usize) << sh, (tile.y as usize) << sh);
        let pixel = |px: u32, py: u32| {
            ((py as usize).wrapping_sub(y0) & mask) * size + ((px as usize).wrapping_sub(x0) & mask)
        };
        let values = match &self.values {
            CellValues::Count(_) => {
                let mut g = vec![0u32; size * size];
                self.runs(level, start..end, |px, py, i, j| {
                    g[pixel(px, py)] = self.merged(i, j).rows as u32;
                });
                if matches!(self.agg, Agg::Any) {
                    GridValues::Any(g.into_iter().map(|c| c > 0).collect())
                } else {
                    GridValues::Count(g)
                }
            }
            CellValues::Cat(k, c) => {
                let k = *k;
                let mut g = vec![0u32; size * size * k];
                self.runs(level, start..end, |px, py, i, j| {
                    let p = pixel(px, py) * k;
                    for cell in i..j {
                        for (d, s) in g[p..p + k].iter_mut().zip(&c[cell * k..(cell + 1) * k]) {
                            *d += s;
                        }
                    }
                });
                GridValues::CatCount(g)
            }
            CellValues::Acc(_) | CellValues::Sums(_) => {
                let mut g = vec![f64::NAN; size * size];
                self.runs(level, start..end, |px, py, i, j| {
                    let run = self.merged(i, j);
                    if let Some(v) = value(&self.agg, &run.acc, run.rows) {
                        g[pixel(px, py)] = v;
                    }
                });
                GridValues::Float(g)
            }
        };
        let grid = Grid {
            width: size,
            height: size,
            categories: self.categories.clone(),
            values,
        };
        Some((grid, (end - start) as u64))
    }

    /// The distribution of pixel values over the whole map at pixel `level`
    /// (no finer than the cell level; `None` otherwise), as
    /// [`crate::raster::zoom::zoom_stats`] computes it from the rows.
    pub fn zoom_stats(&self, ds: &Dataset, level: u32) -> Option<super::zoom::ZoomStats> {
        if level > CELL_LEVEL {
            return None;
        }
        let integer = matches!(self.agg, Agg::Count | Agg::Any | Agg::CountCat(_));
        let mut values = Values::new(float_stride(ds, level, integer));
        self.runs(level, 0..self.len(), |px, py, i, j| {
            let mut run = self.merged(i, j);
            run.pixel = (px as u64) << 32 | py as u64;
            values.push(&self.agg, &run, integer);
        });
        Some(values.finish(integer))
    }
}

#[cfg(test)]
mod tests {
    use super::CellIndex;

    /// Cells 0..5 of 3, 1, 4, 2 and 5 rows over partitions of 4, 6 and 5
    /// rows: every sub-range of every partition yields exactly the cells of
    /// its rows, in order, as row-by-row expansion gives.
    #[test]
    fn cell_runs_cover_any_rows_of_any_partition() {
        let count = [3u32, 1, 4, 2, 5];
        let x: Vec<u32> = (10..15).collect();
        let y: Vec<u32> = (20..25).collect();
        let parts = [4usize, 6, 5];
        // The cell of every row, partition by partition.
        let cell_of: Vec<u32> = count
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n as usize))
            .collect();
        let mut first = Vec::new();
        let mut at = 0usize;
        for &len in &parts {
            let c = cell_of[at] as usize;
            let before: usize = count[..c].iter().map(|&n| n as usize).sum();
            first.push((c, (at - before) as u32));
            at += len;
        }
        let key: Vec<u32> = (30..35).collect();
        let ix = CellIndex {
            key: &key,
            x: &x,
            y: &y,
            count: &count,
            first,
        };
        let mut offset = 0;
        for (p, &len) in parts.iter().enumerate() {
            for lo in 0..len {
                for hi in lo + 1..=len {
                    let mut got = Vec::new();
                    ix.runs(p, lo..hi, |cell: super::Cell, a, b| {
                        got.extend(std::iter::repeat_n((cell.0, cell.1), b - a));
                        assert_eq!(cell.2 - 30, cell.0 - 10, "the cell's own key");
                    });
                    let want: Vec<(u32, u32)> = (lo..hi)
                        .map(|r| {
                            let c = cell_of[offset + r] as usize;
                            (x[c], y[c])
                        })
                        .collect();
                    assert_eq!(got, want, "partition {p}, rows {lo}..{hi}");
                }
            }
            offset += len;
        }
    }
}
