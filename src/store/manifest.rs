//! The versioned JSON manifest of a packed dataset.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format version written by this build; readers reject other major versions.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the columnar data (Arrow IPC file, one record batch per partition).
pub const DATA_FILE: &str = "data.arrow";
pub use crate::geo::{QX, QY};

/// How a column can be used by queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Integers, floats and booleans: ranges, sum/mean/min/max/std.
    Numeric,
    /// Timestamps (stored as microseconds since the Unix epoch).
    Temporal,
    /// Dictionary-encoded strings: sets, count by category.
    Categorical,
    /// High-cardinality strings: kept, shown on hover, not aggregated.
    String,
    /// Anything else (lists, binary, …): kept, not queried.
    Other,
}

impl ColumnKind {
    /// The kind of a column stored with Arrow type `t`.
    pub fn of(t: &arrow_schema::DataType) -> ColumnKind {
        use arrow_schema::{DataType, TimeUnit};
        match t {
            DataType::Dictionary(k, v) if **k == DataType::Int16 && **v == DataType::Utf8 => {
                ColumnKind::Categorical
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => ColumnKind::Temporal,
            t if t.is_numeric() => ColumnKind::Numeric,
            DataType::Utf8 => ColumnKind::String,
            _ => ColumnKind::Other,
        }
    }
}

/// One attribute column of the dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name, as in the input.
    pub name: String,
    /// Query kind.
    pub kind: ColumnKind,
    /// Arrow data type, as Arrow's `Display` prints it.
    pub arrow_type: String,
    /// Category labels in dictionary-code order (categorical columns only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Whole-dataset summary statistics.
    pub stats: ColumnSummary,
}

/// Summary statistics of one column over the whole dataset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// Non-null values.
    pub count: u64,
    /// Null (or NaN) values.
    pub nulls: u64,
    /// Smallest value (numeric: the value; temporal: µs since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Mean of the values (numeric and temporal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Population standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Rows per category, in dictionary-code order (categorical only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category_counts: Vec<u64>,
}

/// Zone map of one column inside one partition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnZone {
    /// Smallest non-null value, if any (numeric/temporal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest non-null value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Null count.
    pub nulls: u64,
    /// Dictionary codes present (categorical only), sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<u32>>,
}

/// Bounds as `[west, south, east, north]` in degrees plus the quantized box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// `[west, south, east, north]` in degrees.
    pub lnglat: [f64; 4],
    /// `[qx_min, qy_min, qx_max, qy_max]` on the quantized grid (inclusive).
    pub quantized: [u32; 4],
}

impl Bounds {
    /// Bounds of a set of quantized points.
    pub fn from_quantized(qx0: u32, qy0: u32, qx1: u32, qy1: u32) -> Self {
        let (x0, y1) = crate::geo::dequantize(qx0, qy1);
        let (x1, y0) = crate::geo::dequantize(qx1, qy0);
        let (w, s) = crate::geo::meters_to_lnglat(x0, y1);
        let (e, n) = crate::geo::meters_to_lnglat(x1, y0);
        Bounds {
            lnglat: [w, s, e, n],
            quantized: [qx0, qy0, qx1, qy1],
        }
    }
}

/// One partition: a contiguous run of rows along the Hilbert curve, stored as
/// one record batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// First row (global index).
    pub row_start: u64,
    /// Rows in the partition.
    pub rows: u64,
    /// Smallest Hilbert key in the partition.
    pub key_min: u64,
    /// Largest Hilbert key in the partition.
    pub key_max: u64,
    /// Spatial bounds of its rows.
    pub bounds: Bounds,
    /// Zone maps, keyed by column name.
    pub columns: BTreeMap<String, ColumnZone>,
}

/// The manifest: everything a reader needs before touching the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"pointillist-packed"`.
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Dataset name (the directory name when packed).
    pub name: String,
    /// Total rows.
    pub rows: u64,
    /// Rows dropped at pack time for NaN / out-of-range coordinates.
    pub dropped_rows: u64,
    /// Bounds of all rows.
    pub bounds: Bounds,
    /// Attribute columns (the quantized `_qx`/`_qy` columns are implied).
    pub columns: Vec<ColumnInfo>,
    /// Partitions in Hilbert order.
    pub partitions: Vec<PartitionInfo>,
    /// Size of [`DATA_FILE`] in bytes, checked before mapping it.
    pub data_bytes: u64,
    /// Where the data came from.
    pub source: Vec<String>,
    /// When it was packed (RFC 3339).
    pub created: String,
    /// Precomputed overviews (low-zoom count grids and per-zoom count
    /// distributions); absent in datasets packed without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overview: Option<OverviewInfo>,
    /// Per-cell statistics of numeric columns ([`crate::store::stats`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::store::StatsInfo>,
}

/// Name of the overview file inside a packed dataset directory.
pub const OVERVIEW_FILE: &str = "overview.bin";

/// Layout of [`OVERVIEW_FILE`]: little-endian arrays at the given byte
/// offsets (each 8-byte aligned). See [`crate::store::overview`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewInfo {
    /// Size of the file in bytes, checked before mapping it.
    pub bytes: u64,
    /// Categorical columns whose per-category counts are kept, in order.
    pub categorical: Vec<OverviewColumn>,
    /// Cell grids, one per pixel level (zoom + log2 tile size), ascending.
    pub levels: Vec<OverviewLevel>,
    /// Distribution of points per non-empty cell, one per level 8..=32.
    pub counts: Vec<OverviewCounts>,
}

/// A categorical column kept in the overview.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewColumn {
    /// Column name.
    pub name: String,
    /// Its number of categories.
    pub categories: usize,
}

/// The non-empty cells of one level, in Hilbert order: arrays `key`, `x`,
/// `y`, `count` (u32 × cells), then per categorical column u32 × cells ×
/// categories (cell-major).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewLevel {
    /// Pixel level: cells are `2^-level` of the world wide.
    pub level: u32,
    /// Non-empty cells.
    pub cells: u64,
    /// Byte offset of the first array.
    pub offset: u64,
}

/// `(value, cells)` pairs of u64, ascending by value: how many non-empty
/// cells of `level` hold exactly `value` points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewCounts {
    /// Pixel level.
    pub level: u32,
    /// Distinct values.
    pub values: u64,
    /// Byte offset of the values array (the cell counts follow it).
    pub offset: u64,
}

impl Manifest {
    /// A short name of this version of the data (hex): what the data was
    /// packed from and when, so replicas serving the same files, and a
    /// restarted server, agree, and a repacked dataset gets a new one.
    pub fn version(&self) -> String {
        use sha2::Digest;
        let id = format!(
            "{}|{}|{}|{}",
            self.created, self.rows, self.data_bytes, self.name
        );
        hex::encode(&sha2::Sha256::digest(id.as_bytes())[..8])
    }

    /// Look up a column by name.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}
