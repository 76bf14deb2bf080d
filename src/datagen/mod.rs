//! Synthetic demo datasets: `pointillist gen towers|ais`.
//!
//! Two generators produce realistic-looking point clouds for trying the tile
//! server without downloading anything:
//!
//! * [`DemoKind::Towers`]: cell towers shaped like the OpenCelliD export,
//!   clustered around the real GeoNames cities in `data/cities.csv`.
//! * [`DemoKind::Ais`]: vessel position reports along shipping lanes between
//!   real port cities, routed through a hand-made graph of sea waypoints.
//!
//! Output is a Parquet file written by [`generate`]. Rows are produced in
//! fixed-size chunks; chunk `i` is generated from a seed derived from
//! `(seed, i)` alone, so the file content depends only on the options, not
//! on the number of threads. Chunks are generated *and Parquet-encoded* in
//! parallel on the current rayon pool, a bounded window at a time, while a
//! dedicated thread appends the finished row groups to the file in order.

mod ais;
mod cities;
mod sea;
mod towers;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

pub use writer::{MAX_ROW_GROUP_ROWS, generate};

/// Rows per Parquet row group (and per generation chunk) unless overridden.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 20;

/// Which synthetic dataset to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoKind {
    /// OpenCelliD-like cell towers around real cities.
    Towers,
    /// AIS-like vessel positions along shipping lanes.
    Ais,
}

impl DemoKind {
    /// The name used on the command line (`towers` / `ais`).
    pub fn as_str(self) -> &'static str {
        match self {
            DemoKind::Towers => "towers",
            DemoKind::Ais => "ais",
        }
    }
}

impl fmt::Display for DemoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DemoKind {
    type Err = GenError;

    /// Parses `towers` or `ais` (case-insensitive, surrounding space ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "towers" => Ok(DemoKind::Towers),
            "ais" => Ok(DemoKind::Ais),
            _ => Err(GenError::UnknownKind(s.to_string())),
        }
    }
}

/// What to generate and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Dataset shape.
    pub kind: DemoKind,
    /// Total number of rows; 0 writes a valid file with the schema only.
    pub rows: u64,
    /// Same seed (with the same `rows` and `row_group_rows`) gives a
    /// byte-identical file; different seeds give different data.
    pub seed: u64,
    /// Output Parquet path. Written via a temporary file in the same
    /// directory and renamed into place on success.
    pub out: PathBuf,
    /// Rows per row group, which is also the unit of parallel work. Must be
    /// in `1..=`[`MAX_ROW_GROUP_ROWS`]; [`DEFAULT_ROW_GROUP_ROWS`] is a good
    /// choice.
    pub row_group_rows: usize,
    /// Attribute columns to keep besides `lon`/`lat` (all when `None`): a
    /// leaner file for scale tests, e.g. a billion AIS rows that must fit on
    /// one disk three times over (input, sorted runs, packed output).
    pub columns: Option<Vec<String>>,
}

impl GenOptions {
    /// Options with the default seed (0) and row-group size.
    pub fn new(kind: DemoKind, rows: u64, out: impl Into<PathBuf>) -> Self {
        Self {
            kind,
            rows,
            seed: 0,
            out: out.into(),
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            columns: None,
        }
    }
}

/// Summary of a finished [`generate`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct GenReport {
    /// Rows written.
    pub rows: u64,
    /// Wall-clock seconds for the whole run, including the final rename.
    pub seconds: f64,
    /// Number of row groups in the file.
    pub row_groups: usize,
    /// Size of the finished file in bytes.
    pub bytes: u64,
}

/// Errors from the generator. Bad options are reported, never panicked on.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Dataset name other than `towers` / `ais`.
    #[error("unknown demo dataset {0:?} (expected \"towers\" or \"ais\")")]
    UnknownKind(String),
    /// A `columns` entry the dataset does not have.
    #[error("{kind} has no column {name:?} (columns: {known})")]
    UnknownColumn {
        /// The dataset.
        kind: DemoKind,
        /// The column asked for.
        name: String,
        /// The columns it has.
        known: String,
    },
    /// Options that cannot be honoured (e.g. `row_group_rows == 0`).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The embedded city table failed to parse (a build problem).
    #[error("embedded city table: {0}")]
    CityTable(String),
    /// Creating, writing or renaming a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding or writing Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building an Arrow array or batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The background writer thread panicked.
    #[error("writer thread panicked")]
    WriterPanicked,
}

/// A dataset model: everything shared by all chunks (built once per run),
/// plus the per-chunk generator. `Sync` because chunks run on rayon.
pub(crate) trait ChunkSource: Sync {
    /// Arrow schema of every batch.
    fn schema(&self) -> SchemaRef;
    /// Low-cardinality columns worth Parquet dictionary encoding.
    fn dictionary_columns(&self) -> &'static [&'static str];
    /// Generates `rows` rows from `seed` (already mixed with the chunk
    /// index). Must be a pure function of its arguments.
    fn chunk(&self, seed: u64, rows: usize) -> Result<RecordBatch, GenError>;
}

/// A model with only some of its attribute columns: every chunk is the
/// inner model's chunk, projected, so the rows (and their coordinates) are
/// the same as the full dataset's.
pub(crate) struct Projected {
    inner: Box<dyn ChunkSource>,
    indices: Vec<usize>,
    schema: SchemaRef,
    dictionary: &'static [&'static str],
}

impl Projected {
    /// Keep `lon`, `lat` and `columns` of `inner`, in the inner order.
    pub(crate) fn new(
        kind: DemoKind,
        inner: Box<dyn ChunkSource>,
        columns: &[String],
    ) -> Result<Projected, GenError> {
        let full = inner.schema();
        let names: Vec<&str> = full.fields().iter().map(|f| f.name().as_str()).collect();
        if let Some(name) = columns.iter().find(|c| !names.contains(&c.as_str())) {
            return Err(GenError::UnknownColumn {
                kind,
                name: name.clone(),
                known: names.join(", "),
            });
        }
        let indices: Vec<usize> = (0..names.len())
            .filter(|&i| matches!(names[i], "lon" | "lat") || columns.iter().any(|c| c == names[i]))
            .collect();
        let schema = std::sync::Arc::new(full.project(&indices)?);
        Ok(Projected {
            dictionary: inner.dictionary_columns(),
            inner,
            indices,
            schema,
        })
    }
}

impl ChunkSource for Projected {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn dictionary_columns(&self) -> &'static [&'static str] {
        // Names the projection dropped match no field, so they are inert.
        self.dictionary
    }

    fn chunk(&self, seed: u64, rows: usize) -> Result<RecordBatch, GenError> {
        Ok(self.inner.chunk(seed, rows)?.project(&self.indices)?)
    }
}

/// SplitMix64 finaliser: a cheap, well-mixed bijection used to derive
/// independent seeds from `(seed, stream, index)`.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed for chunk `index` of a run with user seed `seed`. The `stream`
/// constant keeps e.g. the AIS vessel table independent of chunk 0.
#[inline]
pub(crate) fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    mix64(mix64(seed ^ stream.rotate_left(32)).wrapping_add(mix64(index)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), so timestamp constants need no runtime date library.
pub(crate) const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since the Unix epoch at midnight UTC of the given date.
pub(crate) const fn micros_at(y: i64, m: i64, d: i64) -> i64 {
    days_from_civil(y, m, d) * 86_400_000_000
}
