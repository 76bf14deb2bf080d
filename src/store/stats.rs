//! Per-cell statistics of numeric columns, computed once by `pack`.
//!
//! A value aggregation (`sum`, `mean`, `min`, `max`, `std`, `var` of a
//! column) over a low-zoom tile would otherwise read every row of the tile,
//! and its first tile pays a pass over the whole dataset for the query's
//! cells (see `raster::cells`); on a billion rows that pass is a full read
//! of the column from disk. Without filters those cells depend only on the
//! data, so `pack` computes them for each numeric column and stores them
//! next to the data: for every non-empty cell of pixel level [`STATS_LEVEL`]
//! (in Hilbert order) its key, position, number of values and the moments
//! of its values (shifted sums, as `raster::zoom` accumulates them), and
//! its minimum and maximum. Cells of one column merge exactly like rows do,
//! so tiles and colour scales of every coarser level come from them.
//!
//! The file is memory-mapped like the data and read only when used.

use super::overview::{map_sized, padded, slice};
use super::{Manifest, StoreError};
use arrow_buffer::ScalarBuffer;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// File name of the statistics, in the dataset directory.
pub const STATS_FILE: &str = "stats.bin";

/// The pixel level statistics are kept at (the query cells' level).
pub const STATS_LEVEL: u32 = 12;

/// Where the statistics are in [`STATS_FILE`]: per column, arrays of
/// `cells` values at `offset`, each 8-byte aligned: `key`, `x`, `y` (u32),
/// `n` (u64), then `shift`, `sum`, `sq`, `min`, `max` (f64).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsInfo {
    /// Size of the file in bytes, checked before mapping it.
    pub bytes: u64,
    /// Pixel level of the cells.
    pub level: u32,
    /// The columns kept, in schema order.
    pub columns: Vec<StatsColumn>,
}

/// One column's place in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsColumn {
    /// Column name.
    pub name: String,
    /// Cells with at least one value.
    pub cells: u64,
    /// Byte offset of its first array.
    pub offset: u64,
}

/// One column's cells: struct of arrays, one entry a cell.
#[derive(Clone, Debug, Default)]
pub struct CellStats {
    /// Hilbert key of the cell at the stats level.
    pub key: Vec<u32>,
    /// Cell column and row at the stats level.
    pub x: Vec<u32>,
    /// Cell row (from the north).
    pub y: Vec<u32>,
    /// Values in the cell.
    pub n: Vec<u64>,
    /// `[shift, sum, sq, min, max]` per cell: the sums are of `v - shift`.
    pub moments: [Vec<f64>; 5],
}

impl CellStats {
    /// Cells.
    pub fn len(&self) -> usize {
        self.key.len()
    }

    /// Whether no cell holds a value.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// Bytes the cells take in the file.
    pub fn file_bytes(&self) -> u64 {
        3 * padded(self.len() * 4) + 6 * padded(self.len() * 8)
    }
}

/// One column's cells, mapped.
#[derive(Clone, Debug)]
pub struct MappedStats {
    /// See [`CellStats`].
    pub key: ScalarBuffer<u32>,
    /// See [`CellStats`].
    pub x: ScalarBuffer<u32>,
    /// See [`CellStats`].
    pub y: ScalarBuffer<u32>,
    /// See [`CellStats`].
    pub n: ScalarBuffer<u64>,
    /// See [`CellStats`].
    pub moments: [ScalarBuffer<f64>; 5],
}

/// The opened statistics of a dataset.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Pixel level of the cells.
    pub level: u32,
    columns: Vec<(String, MappedStats)>,
}

impl Stats {
    /// Map the statistics of the dataset in `dir`, checking every array
    /// against the manifest before use; the file joins `watch`.
    pub fn open(
        dir: &Path,
        m: &Manifest,
        watch: &mut crate::store::FileWatch,
    ) -> Result<Option<Stats>, StoreError> {
        let Some(info) = &m.stats else {
            return Ok(None);
        };
        let path = dir.join(STATS_FILE);
        let corrupt = |message: String| StoreError::Corrupt {
            path: path.clone(),
            message,
        };
        if info.level != STATS_LEVEL {
            return Err(corrupt(format!("unexpected level {}", info.level)));
        }
        let buffer = map_sized(&path, info.bytes, watch)?;
        let mut columns = Vec::with_capacity(info.columns.len());
        for c in &info.columns {
            if m.column(&c.name).is_none() {
                return Err(corrupt(format!("no column {:?} in the schema", c.name)));
            }
            let n = usize::try_from(c.cells)
                .ok()
                .filter(|&n| n <= 1 << (2 * STATS_LEVEL))
                .ok_or_else(|| corrupt("too many cells".into()))?;
            let mut at = c.offset;
            let (key, x, y) = (
                take::<u32>(&buffer, &mut at, n).map_err(&corrupt)?,
                take::<u32>(&buffer, &mut at, n).map_err(&corrupt)?,
                take::<u32>(&buffer, &mut at, n).map_err(&corrupt)?,
            );
            let count = take::<u64>(&buffer, &mut at, n).map_err(&corrupt)?;
            let mut moments = Vec::with_capacity(5);
            for _ in 0..5 {
                moments.push(take::<f64>(&buffer, &mut at, n).map_err(&corrupt)?);
            }
            let moments: [ScalarBuffer<f64>; 5] = moments.try_into().expect("five arrays");
            if !key.is_sorted_by(|a, b| a < b) {
                return Err(corrupt(format!("cells of {:?} out of order", c.name)));
            }
            columns.push((
                c.name.clone(),
                MappedStats {
                    key,
                    x,
                    y,
                    n: count,
                    moments,
                },
            ));
        }
        Ok(Some(Stats {
            level: info.level,
            columns,
        }))
    }

    /// The cells of `column`, when they were kept.
    pub fn column(&self, column: &str) -> Option<&MappedStats> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, s)| s)
    }
}

/// `n` values of `T` at `*at`, which moves past them (and their padding).
fn take<T: arrow_buffer::ArrowNativeType>(
    buffer: &arrow_buffer::Buffer,
    at: &mut u64,
    n: usize,
) -> Result<ScalarBuffer<T>, String> {
    let b = slice::<T>(buffer, *at, n)?;
    *at += padded(n * std::mem::size_of::<T>());
    Ok(b)
}

/// Writes [`STATS_FILE`] a column at a time, so `pack` never holds more
/// than one column's cells.
pub struct StatsWriter {
    out: std::io::BufWriter<std::fs::File>,
    info: StatsInfo,
}

impl StatsWriter {
    /// Create [`STATS_FILE`] in `dir`.
    pub fn create(dir: &Path) -> std::io::Result<StatsWriter> {
        Ok(StatsWriter {
            out: std::io::BufWriter::new(std::fs::File::create(dir.join(STATS_FILE))?),
            info: StatsInfo {
                bytes: 0,
                level: STATS_LEVEL,
                columns: Vec::new(),
            },
        })
    }

    fn put(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        self.out.write_all(&bytes)?;
        let pad = padded(bytes.len()) as usize - bytes.len();
        self.out.write_all(&[0u8; 8][..pad])?;
        self.info.bytes += (bytes.len() + pad) as u64;
        Ok(())
    }

    /// Append one column's cells.
    pub fn add(&mut self, name: &str, c: &CellStats) -> std::io::Result<()> {
        self.info.columns.push(StatsColumn {
            name: name.to_string(),
            cells: c.len() as u64,
            offset: self.info.bytes,
        });
        for a in [&c.key, &c.x, &c.y] {
            self.put(a.iter().flat_map(|v| v.to_le_bytes()).collect())?;
        }
        self.put(c.n.iter().flat_map(|v| v.to_le_bytes()).collect())?;
        for a in &c.moments {
            self.put(a.iter().flat_map(|v| v.to_le_bytes()).collect())?;
        }
        Ok(())
    }

    /// Sync the file and return its layout for the manifest.
    pub fn finish(self) -> std::io::Result<StatsInfo> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(self.info)
    }
}
