//! What a request asks for — a view, an aggregation and filters — parsed,
//! validated against a dataset, and planned into the row ranges to read.

pub mod bitsets;
pub mod brush;
pub mod histogram;
pub mod points;

use crate::geo::{MercatorBox, TileId};
use crate::store::column::{CatColumn, NumColumn};
use crate::store::{ColumnKind, Dataset, Manifest, Partition};
use std::ops::Range;

/// Rows per task of the column scans (histograms, filter bitsets): the
/// per-row scratch (one byte a row) stays in L1/L2.
pub(crate) const CHUNK: usize = 1 << 14;
/// Most quadtree cells covering a viewport or bbox: a few extra rows read
/// (and filtered out by the binner) against a short list of key ranges.
pub const VIEWPORT_COVER_CELLS: usize = 64;
/// Largest grid side accepted for viewports and tiles.
pub const MAX_GRID_SIDE: u32 = 8192;

/// Most filters one request may combine (each costs a pass or a bitset).
pub const MAX_FILTERS: usize = 16;

/// Why a query is invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    /// A column that the dataset lacks.
    #[error("unknown column {name:?}; columns: {valid}")]
    UnknownColumn {
        /// Requested.
        name: String,
        /// Valid choices.
        valid: String,
    },
    /// An `in:` filter naming a label the categorical column does not have
    /// (it would match nothing, silently).
    #[error("column {column:?} has no category {value:?}; categories: {valid}")]
    UnknownCategory {
        /// The column.
        column: String,
        /// The label asked for.
        value: String,
        /// The column's labels (the first 50).
        valid: String,
    },
    /// A column of the wrong kind for the operation.
    #[error("column {name:?} is {kind}, but {wanted} needs {expected}")]
    WrongKind {
        /// Column.
        name: String,
        /// Its kind.
        kind: String,
        /// What asked for it.
        wanted: String,
        /// Kinds that would do.
        expected: String,
    },
    /// An aggregation that does not parse.
    #[error(
        "unknown aggregation {0:?}; use count, any, sum:COL, mean:COL, min:COL, max:COL, std:COL, var:COL, count_cat:COL, by:CAT:sum:COL or by:CAT:mean:COL"
    )]
    BadAgg(String),
    /// A filter that does not parse.
    #[error("malformed filter {0:?}; use COL:MIN..MAX (either end may be empty) or COL:in:A,B")]
    BadFilter(String),
    /// A bad view (size, bbox).
    #[error("{0}")]
    BadView(String),
    /// The request was cancelled (deadline passed).
    #[error("cancelled")]
    Cancelled,
    /// The request would need more memory or work than its budget allows.
    #[error("{what} exceeds the limit of {limit}; {hint}")]
    TooLarge {
        /// What was too large, with its size.
        what: String,
        /// The limit, with its unit.
        limit: String,
        /// How to ask for less.
        hint: String,
    },
}

/// Default [`Limits::max_grid_bytes`]: 256 MiB.
pub const DEFAULT_MAX_GRID_BYTES: u64 = 256 << 20;

/// What one request may cost, checked before any allocation or loop whose
/// size follows from the request starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of aggregation grids one request may hold: pixels × categories ×
    /// the reduction's state per cell (4 bytes for counts, up to 20 for
    /// std/var). A request whose single grid would exceed it is refused;
    /// smaller grids are aggregated by as many parallel tasks as fit in
    /// twice this budget.
    pub max_grid_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_grid_bytes: DEFAULT_MAX_GRID_BYTES,
        }
    }
}

/// What bounds one computation: the flag that cancels it (set when its
/// deadline passes or its client leaves) and its [`Limits`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget<'a> {
    /// Polled between pieces of work; once set, the work stops with
    /// [`QueryError::Cancelled`].
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
    /// Memory and work limits.
    pub limits: Limits,
}

impl Budget<'_> {
    /// Whether the computation should stop.
    #[inline]
    pub fn cancelled(&self) -> bool {
        self.cancel
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Limits {
    /// Bytes of one aggregation grid of `view` for `agg` with `ncat`
    /// categories (1 for scalar reductions), including the finished values.
    pub fn grid_bytes(view: &View, agg: &Agg, ncat: usize) -> u64 {
        let (w, h) = view.size();
        let per_cell: u64 = match agg {
            Agg::Count | Agg::Any | Agg::CountCat(_) => 4,
            Agg::Sum(_) | Agg::Mean(_) | Agg::CatSum(..) | Agg::CatMean(..) => 12,
            Agg::Std(_) | Agg::Var(_) => 20,
            Agg::Min(_) | Agg::Max(_) => 8,
        };
        (w as u64)
            .saturating_mul(h as u64)
            .saturating_mul(ncat.max(1) as u64)
            .saturating_mul(per_cell)
    }

    /// Refuse a grid over [`Limits::max_grid_bytes`] (`m` gives the
    /// categories of a categorical aggregation).
    pub fn check_grid(&self, view: &View, agg: &Agg, m: &Manifest) -> Result<u64, QueryError> {
        let ncat = agg.grids_per_pixel(m);
        let bytes = Limits::grid_bytes(view, agg, ncat);
        if bytes > self.max_grid_bytes {
            let (w, h) = view.size();
            return Err(QueryError::TooLarge {
                what: format!(
                    "a {w}×{h} grid with {ncat} categor{} ({} MiB)",
                    if ncat == 1 { "y" } else { "ies" },
                    bytes.div_ceil(1 << 20)
                ),
                limit: format!("{} MiB (max_grid_mb)", self.max_grid_bytes >> 20),
                hint: "ask for fewer pixels, a smaller tile_size or an aggregation over fewer categories"
                    .into(),
            });
        }
        Ok(bytes)
    }
}

/// A reduction, as Datashader names them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Agg {
    /// Points per pixel.
    Count,
    /// Whether a pixel has any point.
    Any,
    /// Sum of a column (NaN where no value).
    Sum(String),
    /// Mean of a column.
    Mean(String),
    /// Minimum of a column.
    Min(String),
    /// Maximum of a column.
    Max(String),
    /// Population standard deviation of a column.
    Std(String),
    /// Population variance of a column.
    Var(String),
    /// Points per pixel and category (`count_cat`, `by(cat, count())`).
    CountCat(String),
    /// Sum of `col` per pixel and category (`by(cat, sum(col))`).
    CatSum(String, String),
    /// Mean of `col` per pixel and category (`by(cat, mean(col))`).
    CatMean(String, String),
}

impl Agg {
    /// Parse `count`, `sum:COL`, `count_cat:COL`, `by:CAT:sum:COL`, ….
    pub fn parse(s: &str) -> Result<Agg, QueryError> {
        let bad = || QueryError::BadAgg(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        let col = |i: usize| {
            parts
                .get(i)
                .filter(|c| !c.is_empty())
                .map(|c| c.to_string())
                .ok_or_else(bad)
        };
        Ok(match parts[0] {
            "count" if parts.len() == 1 => Agg::Count,
            "any" if parts.len() == 1 => Agg::Any,
            "sum" if parts.len() == 2 => Agg::Sum(col(1)?),
            "mean" if parts.len() == 2 => Agg::Mean(col(1)?),
            "min" if parts.len() == 2 => Agg::Min(col(1)?),
            "max" if parts.len() == 2 => Agg::Max(col(1)?),
            "std" if parts.len() == 2 => Agg::Std(col(1)?),
            "var" if parts.len() == 2 => Agg::Var(col(1)?),
            "count_cat" if parts.len() == 2 => Agg::CountCat(col(1)?),
            "by" if parts.len() == 3 && parts[2] == "count" => Agg::CountCat(col(1)?),
            "by" if parts.len() == 4 && parts[2] == "sum" => Agg::CatSum(col(1)?, col(3)?),
            "by" if parts.len() == 4 && parts[2] == "mean" => Agg::CatMean(col(1)?, col(3)?),
            _ => return Err(bad()),
        })
    }

    /// The canonical text form (inverse of [`Agg::parse`]).
    pub fn to_text(&self) -> String {
        match self {
            Agg::Count => "count".into(),
            Agg::Any => "any".into(),
            Agg::Sum(c) => format!("sum:{c}"),
            Agg::Mean(c) => format!("mean:{c}"),
            Agg::Min(c) => format!("min:{c}"),
            Agg::Max(c) => format!("max:{c}"),
            Agg::Std(c) => format!("std:{c}"),
            Agg::Var(c) => format!("var:{c}"),
            Agg::CountCat(c) => format!("count_cat:{c}"),
            Agg::CatSum(k, c) => format!("by:{k}:sum:{c}"),
            Agg::CatMean(k, c) => format!("by:{k}:mean:{c}"),
        }
    }

    /// Values per pixel: the categories of the category column (of
    /// `count_cat` and `by:`), else 1.
    pub fn grids_per_pixel(&self, m: &Manifest) -> usize {
        self.category_column()
            .and_then(|c| m.column(c))
            .map_or(1, |c| c.categories.len().max(1))
    }

    /// The value column, if any.
    pub fn value_column(&self) -> Option<&str> {
        match self {
            Agg::Sum(c) | Agg::Mean(c) | Agg::Min(c) | Agg::Max(c) | Agg::Std(c) | Agg::Var(c) => {
                Some(c)
            }
            Agg::CatSum(_, c) | Agg::CatMean(_, c) => Some(c),
            _ => None,
        }
    }

    /// The category column, if any.
    pub fn category_column(&self) -> Option<&str> {
        match self {
            Agg::CountCat(k) | Agg::CatSum(k, _) | Agg::CatMean(k, _) => Some(k),
            _ => None,
        }
    }

    /// Check the columns exist and have the right kinds.
    pub fn validate(&self, m: &Manifest) -> Result<(), QueryError> {
        if let Some(c) = self.value_column() {
            require(
                m,
                c,
                &[ColumnKind::Numeric, ColumnKind::Temporal],
                &self.to_text(),
            )?;
        }
        if let Some(k) = self.category_column() {
            require(m, k, &[ColumnKind::Categorical], &self.to_text())?;
        }
        Ok(())
    }
}

fn kind_name(k: ColumnKind) -> String {
    format!("{k:?}").to_lowercase()
}

/// Look up a column, requiring one of `kinds`.
pub fn require<'m>(
    m: &'m Manifest,
    name: &str,
    kinds: &[ColumnKind],
    wanted: &str,
) -> Result<&'m crate::store::ColumnInfo, QueryError> {
    let c = m.column(name).ok_or_else(|| QueryError::UnknownColumn {
        name: name.to_string(),
        valid: m
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    if !kinds.contains(&c.kind) {
        return Err(QueryError::WrongKind {
            name: name.to_string(),
            kind: kind_name(c.kind),
            wanted: wanted.to_string(),
            expected: kinds
                .iter()
                .map(|k| kind_name(*k))
                .collect::<Vec<_>>()
                .join(" or "),
        });
    }
    Ok(c)
}

/// One filter on a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `min <= value <= max` (numeric; temporal in µs since the epoch).
    Range {
        /// Column.
        column: String,
        /// Lower bound (inclusive), `-inf` when open.
        min: f64,
        /// Upper bound (inclusive), `+inf` when open.
        max: f64,
    },
    /// Value is one of the labels (categorical).
    In {
        /// Column.
        column: String,
        /// Labels.
        values: Vec<String>,
    },
}

impl Filter {
    /// The filtered column.
    pub fn column(&self) -> &str {
        match self {
            Filter::Range { column, .. } | Filter::In { column, .. } => column,
        }
    }

    /// Parse `COL:MIN..MAX` or `COL:in:A,B` against a dataset. Temporal bounds
    /// are epoch milliseconds or ISO 8601 dates; labels may be percent-encoded.
    pub fn parse(s: &str, m: &Manifest) -> Result<Filter, QueryError> {
        let bad = || QueryError::BadFilter(s.to_string());
        if let Some((column, rest)) = s.split_once(":in:") {
            require(m, column, &[ColumnKind::Categorical], "an in: filter")?;
            let values: Vec<String> = rest
                .split(',')
                .map(|v| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .to_string()
                })
                .collect();
            let labels = m.column(column).map(|c| &c.categories[..]).unwrap_or(&[]);
            if let Some(v) = values.iter().find(|v| !labels.contains(v)) {
                let mut valid = labels
                    .iter()
                    .take(50)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if labels.len() > 50 {
                    valid.push_str(&format!(", ... ({} in all)", labels.len()));
                }
                return Err(QueryError::UnknownCategory {
                    column: column.to_string(),
                    value: v.clone(),
                    valid,
                });
            }
            return Ok(Filter::In {
                column: column.to_string(),
                values,
            });
        }
        // The column is the first `NAME:` prefix the dataset knows: times
        // such as 2017-12-31T23:59:59Z hold colons of their own, so the
        // last colon is not the separator (column names may hold colons
        // too, hence no first-colon split either).
        let (column, range) = s
            .match_indices(':')
            .map(|(i, _)| (&s[..i], &s[i + 1..]))
            .find(|(c, _)| m.column(c).is_some())
            .or_else(|| s.split_once(':'))
            .ok_or_else(bad)?;
        let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
        let c = require(
            m,
            column,
            &[ColumnKind::Numeric, ColumnKind::Temporal],
            "a range filter",
        )?;
        let temporal = c.kind == ColumnKind::Temporal;
        let parse = |v: &str, open: f64| -> Result<f64, QueryError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(open);
            }
            if let Ok(x) = v.parse::<f64>() {
                if x.is_nan() {
                    return Err(bad());
                }
                // Temporal numbers are epoch milliseconds, as JavaScript's Date.
                return Ok(if temporal { x * 1000.0 } else { x });
            }
            if temporal {
                if let Some(us) = crate::time::parse_iso_us(v) {
                    return Ok(us as f64);
                }
            }
            Err(bad())
        };
        let (min, max) = (parse(lo, f64::NEG_INFINITY)?, parse(hi, f64::INFINITY)?);
        if min > max {
            return Err(bad());
        }
        Ok(Filter::Range {
            column: column.to_string(),
            min,
            max,
        })
    }

    /// The canonical text form (epoch ms for temporal bounds).
    pub fn to_text(&self, m: &Manifest) -> String {
        match self {
            Filter::In { column, values } => format!("{column}:in:{}", values.join(",")),
            Filter::Range { column, min, max } => {
                let scale = match m.column(column).map(|c| c.kind) {
                    Some(ColumnKind::Temporal) => 1e-3,
                    _ => 1.0,
                };
                let f = |v: f64| {
                    if v.is_finite() {
                        format!("{}", v * scale)
                    } else {
                        String::new()
                    }
                };
                format!("{column}:{}..{}", f(*min), f(*max))
            }
        }
    }
}

/// A filter bound to one partition's columns, evaluated per row.
pub enum RowPred<'a> {
    /// Range on a numeric/temporal column.
    Range(NumColumn<'a>, f64, f64),
    /// Category code set membership.
    In(CatColumn<'a>, CategorySet),
}

/// The category codes a filter keeps, with how its mask loop tests them
/// decided once, when the filter is bound, not per chunk of rows.
pub struct CategorySet {
    /// Whether code `k` is kept.
    members: Vec<bool>,
    /// The kept codes when there are one to four (a legend click,
    /// `radio:in:LTE,NR`; unused slots repeat the first): four equality
    /// compares a row, which vectorize, where a table lookup is one load a
    /// row.
    few: Option<[i16; 4]>,
    /// Whether no code is kept.
    empty: bool,
}

impl CategorySet {
    /// The set whose code `k` is kept when `members[k]`.
    pub fn new(members: Vec<bool>) -> CategorySet {
        let kept: Vec<i16> = (0..members.len().min(1 << 15))
            .filter(|&k| members[k])
            .map(|k| k as i16)
            .collect();
        let few = match kept.as_slice() {
            [first, ..] if kept.len() <= 4 => {
                Some(std::array::from_fn(|i| *kept.get(i).unwrap_or(first)))
            }
            _ => None,
        };
        CategorySet {
            empty: kept.is_empty(),
            members,
            few,
        }
    }

    /// Whether code `k` is kept.
    #[inline]
    pub fn contains(&self, k: usize) -> bool {
        self.members.get(k).copied().unwrap_or(false)
    }
}

impl RowPred<'_> {
    /// Whether row `i` passes.
    #[inline]
    pub fn test(&self, i: usize) -> bool {
        match self {
            RowPred::Range(c, lo, hi) => {
                let v = c.get(i);
                v >= *lo && v <= *hi
            }
            RowPred::In(c, set) => c.get(i).is_some_and(|k| set.contains(k)),
        }
    }
}

impl RowPred<'_> {
    /// Clear `mask[i]` for each row `rows.start + i` that fails. Loops are
    /// typed per column and branch-free, so they vectorize.
    pub fn apply(&self, rows: Range<usize>, mask: &mut [bool]) {
        let nulls = match self {
            RowPred::Range(c, lo, hi) => {
                let (lo, hi) = (*lo, *hi);
                crate::with_num_slice!(c.values, |s| {
                    crate::store::column::AsF64::and_in_range(&s[rows.clone()], lo, hi, mask)
                });
                c.nulls
            }
            RowPred::In(c, set) => {
                let codes = &c.codes[rows.clone()];
                let set_len = set.members.len();
                if let Some(m4) = set.few {
                    for (m, &k) in mask.iter_mut().zip(codes) {
                        *m &= (k == m4[0]) | (k == m4[1]) | (k == m4[2]) | (k == m4[3]);
                    }
                } else if set.empty {
                    mask.fill(false);
                } else if set_len <= 256 {
                    // A fixed table and a masked index: no bounds check per row.
                    let mut table = [false; 256];
                    table[..set_len].copy_from_slice(&set.members);
                    for (m, &k) in mask.iter_mut().zip(codes) {
                        // Negative codes wrap to huge values and fail the range test.
                        let k = k as u16 as usize;
                        *m &= (k < 256) & table[k & 255];
                    }
                } else {
                    for (m, &k) in mask.iter_mut().zip(codes) {
                        *m &= set.contains(k as u16 as usize);
                    }
                }
                c.nulls
            }
        };
        and_valid(nulls, rows.start, mask);
    }
}

/// Clear `mask[i]` where row `start + i` is null.
pub fn and_valid(nulls: Option<&arrow_buffer::NullBuffer>, start: usize, mask: &mut [bool]) {
    if let Some(n) = nulls {
        for (i, m) in mask.iter_mut().enumerate() {
            *m &= n.is_valid(start + i);
        }
    }
}

/// Filters bound to a partition. `None` from [`bind_filters`] means the zone
/// maps prove no row can pass: the partition is skipped unread.
pub struct BoundFilters<'a>(pub Vec<RowPred<'a>>);

impl BoundFilters<'_> {
    /// Whether row `i` passes every filter.
    #[inline]
    pub fn test(&self, i: usize) -> bool {
        self.0.iter().all(|p| p.test(i))
    }

    /// Whether there are no filters.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fill `mask` for `rows` with the rows that pass every filter and have
    /// a value (`nulls`: the value column's nulls). Returns false, leaving
    /// `mask` alone, when every row counts.
    pub fn mask_valid(
        &self,
        rows: Range<usize>,
        nulls: Option<&arrow_buffer::NullBuffer>,
        mask: &mut Vec<bool>,
    ) -> bool {
        if self.is_empty() && nulls.is_none() {
            return false;
        }
        let start = rows.start;
        self.mask(rows, mask);
        and_valid(nulls, start, mask);
        true
    }

    /// Fill `mask` with whether each row of `rows` passes every filter,
    /// evaluating one filter (one column) at a time.
    pub fn mask(&self, rows: Range<usize>, mask: &mut Vec<bool>) {
        mask.clear();
        mask.resize(rows.len(), true);
        for p in &self.0 {
            p.apply(rows.clone(), mask);
        }
    }
}

/// [`bind_filters`] for every partition of a dataset, in order.
pub fn bind_all<'a>(ds: &'a Dataset, filters: &[Filter]) -> Vec<Option<BoundFilters<'a>>> {
    ds.partitions
        .iter()
        .map(|p| bind_filters(&ds.manifest, p, filters))
        .collect()
}

/// [`bind_all`] for the partitions marked in `used` only; the others get
/// `None` and must not be read. Binding takes a partition's filter columns,
/// which for a dataset on object storage fetches them: a tile binds the
/// partitions it reads, not the whole dataset.
pub fn bind_used<'a>(
    ds: &'a Dataset,
    filters: &[Filter],
    used: &[bool],
) -> Vec<Option<BoundFilters<'a>>> {
    ds.partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            used.get(i)
                .copied()
                .unwrap_or(false)
                .then(|| bind_filters(&ds.manifest, p, filters))
                .flatten()
        })
        .collect()
}

/// Bind filters to a partition, or `None` when its zone maps exclude them.
pub fn bind_filters<'a>(
    m: &Manifest,
    part: &'a Partition,
    filters: &[Filter],
) -> Option<BoundFilters<'a>> {
    let mut preds = Vec::with_capacity(filters.len());
    for f in filters {
        let zone = part.info.columns.get(f.column());
        // The column is taken only once the zone maps let the partition
        // through: on object storage, taking it fetches it.
        let array = || part.column(f.column());
        match f {
            Filter::Range { min, max, .. } => {
                if let Some(z) = zone {
                    match (z.min, z.max) {
                        (Some(zmin), Some(zmax)) if zmax < *min || zmin > *max => return None,
                        (None, None) => return None,
                        _ => {}
                    }
                }
                preds.push(RowPred::Range(NumColumn::new(array()?)?, *min, *max));
            }
            Filter::In { column, values } => {
                let labels = &m.column(column)?.categories;
                let set: Vec<bool> = labels.iter().map(|l| values.contains(l)).collect();
                if let Some(present) = zone.and_then(|z| z.categories.as_ref()) {
                    if !present
                        .iter()
                        .any(|&c| set.get(c as usize).copied().unwrap_or(false))
                    {
                        return None;
                    }
                }
                preds.push(RowPred::In(
                    CatColumn::new(array()?)?,
                    CategorySet::new(set),
                ));
            }
        }
    }
    Some(BoundFilters(preds))
}

/// Most pixels a [`View::TileMargin`] adds on each side: spread's and
/// dynspread's largest radius.
pub const MAX_TILE_MARGIN: u32 = 16;

/// What area a request covers and at what resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum View {
    /// An XYZ tile of `size` × `size` pixels.
    Tile {
        /// Tile address.
        tile: TileId,
        /// Pixels per side (256 or 512).
        size: u32,
    },
    /// An XYZ tile with a margin of `margin` pixels on every side, taken
    /// from its neighbours at the tile's own pixel grid: what a spreading
    /// style needs so that dots near an edge are whole in both tiles.
    TileMargin {
        /// Tile address.
        tile: TileId,
        /// Pixels per side of the tile itself (256 or 512).
        size: u32,
        /// Extra pixels on each side (at most [`MAX_TILE_MARGIN`]).
        margin: u32,
    },
    /// A Web Mercator rectangle rendered at `width` × `height`.
    Viewport {
        /// Area.
        bbox: MercatorBox,
        /// Columns.
        width: u32,
        /// Rows.
        height: u32,
    },
}

impl View {
    /// A tile view, validating the size.
    pub fn tile(tile: TileId, size: u32) -> Result<View, QueryError> {
        if !matches!(size, 256 | 512) {
            return Err(QueryError::BadView(format!(
                "tile size {size} must be 256 or 512"
            )));
        }
        Ok(View::Tile { tile, size })
    }

    /// A tile with `margin` pixels from its neighbours on every side
    /// (none: a plain tile).
    pub fn tile_with_margin(tile: TileId, size: u32, margin: u32) -> Result<View, QueryError> {
        if margin > MAX_TILE_MARGIN {
            return Err(QueryError::BadView(format!(
                "tile margin {margin} is over {MAX_TILE_MARGIN} pixels"
            )));
        }
        let view = View::tile(tile, size)?;
        Ok(if margin == 0 {
            view
        } else {
            View::TileMargin { tile, size, margin }
        })
    }

    /// A viewport, validating size and box.
    pub fn viewport(bbox: MercatorBox, width: u32, height: u32) -> Result<View, QueryError> {
        if width == 0 || height == 0 || width > MAX_GRID_SIDE || height > MAX_GRID_SIDE {
            return Err(QueryError::BadView(format!(
                "width and height must be 1..={MAX_GRID_SIDE}, got {width}×{height}"
            )));
        }
        if !bbox.is_valid() {
            return Err(QueryError::BadView(
                "bbox must be finite with west < east and south < north".into(),
            ));
        }
        Ok(View::Viewport {
            bbox,
            width,
            height,
        })
    }

    /// Grid width and height.
    pub fn size(&self) -> (usize, usize) {
        match self {
            View::Tile { size, .. } => (*size as usize, *size as usize),
            View::TileMargin { size, margin, .. } => {
                let side = (*size + 2 * *margin) as usize;
                (side, side)
            }
            View::Viewport { width, height, .. } => (*width as usize, *height as usize),
        }
    }

    /// Hilbert key ranges holding every row the view can touch.
    pub fn key_ranges(&self) -> Vec<(u64, u64)> {
        match self {
            View::Tile { tile, .. } => vec![tile.key_range()],
            // The margin's rectangle (under a tile wider each side) touches
            // at most the tile and its eight neighbours at its zoom.
            View::TileMargin { tile, size, margin } => {
                let (x0, x1, y0, y1) = tile.qbounds();
                let m = ((*margin as u64) << tile.shift()).div_ceil(*size as u64);
                let last = u32::MAX as u64;
                crate::geo::cover_key_ranges(
                    x0.saturating_sub(m) as u32,
                    (x1 + m - 1).min(last) as u32,
                    y0.saturating_sub(m) as u32,
                    (y1 + m - 1).min(last) as u32,
                    9,
                )
            }
            View::Viewport { bbox, .. } => bbox.key_ranges(VIEWPORT_COVER_CELLS),
        }
    }
}

/// Rows of one partition to read.
#[derive(Clone, Debug, PartialEq)]
pub struct RowSpan {
    /// Partition index.
    pub partition: usize,
    /// Row range in the partition.
    pub rows: Range<usize>,
}

/// Plan the row spans a view needs (key-range search per partition), split
/// into pieces of at most `chunk` rows for parallel work.
pub fn plan_rows(ds: &Dataset, ranges: &[(u64, u64)], chunk: usize) -> Vec<RowSpan> {
    let mut spans = Vec::new();
    for (pi, p) in ds.partitions.iter().enumerate() {
        let mut last_end = 0usize;
        for &(lo, hi) in ranges {
            if hi < p.info.key_min || lo > p.info.key_max {
                continue;
            }
            let r = p.key_rows(lo, hi);
            let start = r.start.max(last_end);
            if start >= r.end {
                continue;
            }
            last_end = r.end;
            let mut s = start;
            while s < r.end {
                let e = s.saturating_add(chunk).min(r.end);
                spans.push(RowSpan {
                    partition: pi,
                    rows: s..e,
                });
                s = e;
            }
        }
    }
    spans
}

/// Rows the key ranges hold (an upper bound on what a view reads), from
/// binary searches only: what the server uses to tell a cheap request from
/// a whole-map scan before it runs.
pub fn rows_in(ds: &Dataset, ranges: &[(u64, u64)]) -> u64 {
    plan_rows(ds, ranges, usize::MAX)
        .iter()
        .map(|s| s.rows.len() as u64)
        .sum()
}

/// Rows inside a bbox (all rows without one), as [`rows_in`] counts them.
pub fn rows_in_bbox(ds: &Dataset, bbox: Option<&MercatorBox>) -> u64 {
    match bbox {
        None => ds.rows(),
        Some(b) => rows_in(ds, &b.key_ranges(VIEWPORT_COVER_CELLS)),
    }
}

/// All rows of the dataset, chunked.
pub fn all_rows(ds: &Dataset, chunk: usize) -> Vec<RowSpan> {
    plan_rows(ds, &[(0, u64::MAX)], chunk)
}

#[cfg(test)]
mod tests {
    use super::RowPred;
    use crate::store::column::CatColumn;
    use arrow_array::{ArrayRef, DictionaryArray, Int16Array, StringArray, types::Int16Type};
    use proptest::prelude::*;
    use std::sync::Arc;

    proptest! {
        /// A category set's vectorized mask (equality compares for a few
        /// members, a table otherwise) clears exactly the rows its per-row
        /// test fails: codes outside the dictionary (a damaged file) and
        /// nulls included.
        #[test]
        fn category_sets_mask_as_rows_test(
            codes in proptest::collection::vec((-3i16..12, any::<bool>()), 0..300),
            set in proptest::collection::vec(any::<bool>(), 1..10),
            start in 0usize..20,
        ) {
            let labels: Vec<String> = (0..set.len()).map(|k| format!("c{k}")).collect();
            let keys = Int16Array::from(
                codes.iter().map(|&(c, valid)| valid.then_some(c)).collect::<Vec<_>>(),
            );
            // Built unchecked: keys past the dictionary are what a damaged
            // file holds, and what the filter must reject.
            let values = Arc::new(StringArray::from(labels));
            // SAFETY: no code of this array is dereferenced into the
            // dictionary; the filter only compares codes.
            let dict = unsafe {
                DictionaryArray::<Int16Type>::new_unchecked(keys, values)
            };
            let array: ArrayRef = Arc::new(dict);
            let col = CatColumn::new(&array).expect("a dictionary");
            let pred = RowPred::In(col, super::CategorySet::new(set.clone()));
            let start = start.min(codes.len());
            let rows = start..codes.len();
            let mut mask = vec![true; rows.len()];
            pred.apply(rows.clone(), &mut mask);
            for (i, r) in rows.enumerate() {
                prop_assert_eq!(mask[i], pred.test(r), "row {} code {:?}", r, codes[r]);
            }
        }
    }
}
