//! Reading overviews: the count grids for the low zooms and the per-zoom
//! distribution of points per pixel that `pack` computes once (see
//! `pack::overview` for how they are built and `raster::overview` for how
//! tiles and colour scales are answered from them).
//!
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

use super::{Manifest, Mapping, OVERVIEW_FILE, OverviewInfo, StoreError};
use crate::geo::QBITS;
use arrow_buffer::{Buffer, ScalarBuffer};
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
pub(crate) struct Level {
    pub(crate) key: ScalarBuffer<u32>,
    pub(crate) x: ScalarBuffer<u32>,
    pub(crate) y: ScalarBuffer<u32>,
    pub(crate) count: ScalarBuffer<u32>,
    /// Per categorical column, `cells × categories` counts.
    pub(crate) cats: Vec<ScalarBuffer<u32>>,
}

/// An opened overview.
#[derive(Debug, Clone)]
pub struct Overview {
    pub(crate) info: OverviewInfo,
    /// Levels by index `level - MIN_LEVEL`.
    pub(crate) levels: Vec<Level>,
    /// `(values, cells)` per level 8..=32.
    pub(crate) counts: Vec<(ScalarBuffer<u64>, ScalarBuffer<u64>)>,
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
        let buffer = map_sized(&path, info.bytes, watch)?;
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

    /// Non-empty pixels of `level` (8..=32) without filters.
    pub fn pixels(&self, level: u32) -> Option<u64> {
        let (_, k) = self.counts.get(level.checked_sub(MIN_LEVEL)? as usize)?;
        Some(k.iter().sum())
    }
}

/// Map a file of the dataset that must be exactly `bytes` long (as the
/// manifest recorded), and add it to `watch`.
pub(crate) fn map_sized(
    path: &Path,
    bytes: u64,
    watch: &mut crate::store::FileWatch,
) -> Result<Buffer, StoreError> {
    let (file, len) = crate::store::open_sized(path, bytes)?;
    let buffer = if len == 0 {
        Buffer::from_vec(Vec::<u64>::new())
    } else {
        // SAFETY: read-only mapping whose length was checked against the
        // manifest; packed files are written once and renamed into place,
        // never modified by Pointillist, and a change in place by anyone
        // else is fenced off by `watch` (see `store::files`).
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Buffer::from(bytes::Bytes::from_owner(Mapping(Arc::new(mmap))))
    };
    watch.add(path, file, len);
    Ok(buffer)
}

pub(crate) fn padded(bytes: usize) -> u64 {
    bytes.div_ceil(8) as u64 * 8
}

/// `len` values of `T` at byte `offset`, checked to lie inside the buffer.
pub(crate) fn slice<T: arrow_buffer::ArrowNativeType>(
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
