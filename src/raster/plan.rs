//! The one place that decides which source answers a tile or a zoom-wide
//! colour scale: the pack-time overview, the query's cells, or the rows.
//!
//! The server, the CLI `render` and `/aggregate` all ask the [`Planner`],
//! so they answer the same query from the same source at the same speed,
//! and the choice shows in the server's `Server-Timing` header.

use super::cells::QueryCells;
use crate::geo::TileId;
use crate::query::{Agg, Filter, View};
use crate::store::Dataset;

/// What answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The pack-time overview's cells (no row is read).
    Overview,
    /// The query's cells: one pass over the rows, shared by every tile and
    /// colour scale of pixel levels up to 12.
    Cells,
    /// The rows the view covers.
    Rows,
    /// A bounded sample of the rows (estimated zoom scales; see
    /// [`super::sample`]).
    Sample,
}

impl Source {
    /// The name used in `Server-Timing` and timings output.
    pub fn name(self) -> &'static str {
        match self {
            Source::Overview => "overview",
            Source::Cells => "cells",
            Source::Rows => "rows",
            Source::Sample => "sample",
        }
    }
}

/// A tile holding at least 1 / `CELLS_SHARE` of the rows builds its
/// query's cells when they are not cached yet: reading its rows would cost
/// most of the pass the cells take, and the cells then answer every other
/// tile and colour scale of levels up to 12. A smaller tile reads its own
/// rows, so the first tile of a new query costs what the tile holds, not
/// what the dataset holds (a brush asks a new query on every move).
pub const CELLS_SHARE: u64 = 4;

/// Tiles of pixel level up to this (256-px tiles z0–z2, 512-px z0–z1) build
/// the cells whatever they hold: a view at those zooms shows most of the
/// world, so its tiles together read about every row anyway, and one pass
/// then serves them all and their colour scale.
pub const CELLS_WORLD_LEVEL: u32 = 10;

/// Decides the [`Source`] of each answer.
#[derive(Clone, Copy, Debug)]
pub struct Planner {
    /// Bytes the query-cell cache holds (0: cells are never used). A
    /// query whose cells could take more than half of it reads rows.
    pub cells_bytes: u64,
    /// Rows an estimated zoom scale reads (0: scales are always exact).
    pub sample_rows: u64,
}

impl Planner {
    /// A planner whose cells may take up to `cells_bytes` (0 for none).
    pub fn new(cells_bytes: u64, sample_rows: u64) -> Planner {
        Planner {
            cells_bytes,
            sample_rows,
        }
    }

    /// Whether the query's cells are small enough to compute and keep.
    pub fn cells_fit(&self, ds: &Dataset, agg: &Agg) -> bool {
        self.cells_bytes > 0 && QueryCells::estimate_bytes(ds, agg) <= self.cells_bytes / 2
    }

    /// The source of a `size`-pixel tile; `cells_ready`: the query's cells
    /// are computed already (the server's cache holds them).
    pub fn tile(
        &self,
        ds: &Dataset,
        tile: TileId,
        size: u32,
        agg: &Agg,
        filters: &[Filter],
        cells_ready: bool,
    ) -> Source {
        let level = tile.z as u32 + size.trailing_zeros();
        let overview = ds
            .overview
            .as_ref()
            .is_some_and(|ov| ov.answers_tiles(&ds.manifest, level, agg, filters));
        if overview {
            Source::Overview
        } else if self.cells_usable(ds, level, agg)
            && (cells_ready || level <= CELLS_WORLD_LEVEL || holds_a_share(ds, tile, size))
        {
            Source::Cells
        } else {
            Source::Rows
        }
    }

    /// The source of an arbitrary viewport (`/aggregate`, `render --bbox`):
    /// always the rows, since neither the overview's cells nor a query's
    /// cells line up with a viewport's pixels.
    pub fn viewport(&self) -> Source {
        Source::Rows
    }

    /// The source of the colour scale shared by every `size`-pixel tile of
    /// zoom `z`: the overview when it answers; the query's cells when they
    /// are computed already (`cells_ready`), or when the scale must be exact
    /// or cannot be sampled (one pass either way, and the cells are kept);
    /// else a bounded sample once the dataset is over twice its size; else
    /// the rows.
    #[allow(clippy::too_many_arguments)]
    pub fn scale(
        &self,
        ds: &Dataset,
        z: u8,
        size: u32,
        agg: &Agg,
        filters: &[Filter],
        exact: bool,
        cells_ready: bool,
    ) -> Source {
        let level = z as u32 + size.trailing_zeros();
        let overview = ds
            .overview
            .as_ref()
            .is_some_and(|ov| ov.answers_zoom_stats(&ds.manifest, level, agg, filters));
        let sample = !exact && self.sample_rows > 0 && ds.manifest.rows > 2 * self.sample_rows;
        if overview {
            Source::Overview
        } else if self.cells_usable(ds, level, agg) && (cells_ready || !sample) {
            Source::Cells
        } else if sample {
            Source::Sample
        } else {
            Source::Rows
        }
    }

    /// The source of a zoom's colour scale when its sample gave up (pixels
    /// too large to sample within its budget): the query's cells when they
    /// hold the level and fit (one pass, then kept for every tile and scale
    /// of levels up to 12), else the exact pass over the rows.
    pub fn unsampled_scale(&self, ds: &Dataset, z: u8, size: u32, agg: &Agg) -> Source {
        let level = z as u32 + size.trailing_zeros();
        if self.cells_usable(ds, level, agg) {
            Source::Cells
        } else {
            Source::Rows
        }
    }

    /// Whether the query's cells hold the level and fit the cache.
    fn cells_usable(&self, ds: &Dataset, level: u32, agg: &Agg) -> bool {
        QueryCells::holds(ds, level, agg) && self.cells_fit(ds, agg)
    }
}

/// Whether the tile's key range holds at least 1 / [`CELLS_SHARE`] of the
/// rows (binary searches over the sorted coordinates; no scan).
fn holds_a_share(ds: &Dataset, tile: TileId, size: u32) -> bool {
    View::tile(tile, size)
        .is_ok_and(|v| crate::query::rows_in(ds, &v.key_ranges()) * CELLS_SHARE >= ds.manifest.rows)
}
