//! The server's computed-once caches: zoom-wide colour scales and query
//! cells, and the helper that runs a computation once per key.

use super::{ApiError, AppState, Entry, Lane};
use crate::geo::TileId;
use crate::query::{Agg, Filter};
use crate::raster::cells::QueryCells;
use crate::raster::plan::Source;
use crate::raster::zoom::ZoomStats;
use crate::render::Style;
use crate::shade::{ImageFormat, Normalization};
use crate::store::Manifest;
use std::sync::Arc;
use std::time::Instant;

/// A cache key: one load of one dataset, and what was asked of it. Every
/// part is a typed value with a canonical text (aggregations, filters and
/// styles by their `to_text`/`canonical` forms, filters in canonical
/// order), so equivalent requests share an entry and no `Debug` output
/// leaks into a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The load generation (a reloaded dataset never hits an old entry).
    pub generation: u64,
    /// The dataset's one name.
    pub dataset: String,
    /// What was asked.
    pub ask: Ask,
}

/// What a cached value answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ask {
    /// A tile's pixels.
    Tile(TilePixels),
    /// A zoom-wide colour scale.
    ZoomScale {
        /// Zoom.
        z: u8,
        /// Tile side in pixels.
        size: u32,
        /// Aggregation (count_cat shares count's).
        agg: String,
        /// Filters.
        filters: Vec<String>,
        /// Exact, or estimated from a sample where that is cheaper.
        exact: bool,
    },
    /// The cells of a query.
    Cells {
        /// Aggregation.
        agg: String,
        /// Filters.
        filters: Vec<String>,
    },
    /// One filter's bitset.
    FilterBits(String),
    /// A brush index ([`crate::query::brush::BrushIndex`]).
    Brush {
        /// `count`, or the histogram's column and bins (`COL:BINS`).
        target: String,
        /// The bbox in Mercator metres, if any.
        bbox: Option<String>,
        /// The brushed column and step (`COL:STEP`).
        brush: String,
        /// The filters on other columns than the brushed one and the
        /// histogram's own.
        filters: Vec<String>,
    },
    /// The `dynspread` radius every tile of a zoom shares, for a query and
    /// style (`tile` holds the zoom only: `(z, 0, 0)`).
    DynspreadRadius(TilePixels),
    /// The normalization built from a zoom scale (an [`Ask::ZoomScale`])
    /// for one way of shading it.
    Normalization {
        /// The zoom scale's own ask.
        scale: Box<Ask>,
        /// Category totals (count_cat) or pixel values.
        categorical: bool,
        /// What of the style a normalization depends on: `how`, `span` and
        /// `rescale_discrete_levels`, as text.
        shade: String,
    },
}

/// Everything a tile's pixels depend on besides the data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TilePixels {
    /// z, x, y.
    pub tile: (u8, u32, u32),
    /// Side in pixels.
    pub size: u32,
    /// Aggregation.
    pub agg: String,
    /// Filters.
    pub filters: Vec<String>,
    /// [`crate::render::Style::canonical`].
    pub style: String,
    /// The image format the pixels are written in.
    pub format: ImageFormat,
}

impl TilePixels {
    /// The stable encoding that ETags hash: the same across processes,
    /// replicas and restarts.
    pub fn encode(&self) -> String {
        let (z, x, y) = self.tile;
        // PNG, the first format, adds nothing: its ETags stay what they were.
        let format = match self.format {
            ImageFormat::Png => "",
            ImageFormat::Webp => "|webp",
        };
        format!(
            "{z}/{x}/{y}|{}|{}|{}|{}{format}",
            self.size,
            self.agg,
            self.filters.join("&"),
            self.style
        )
    }

    /// The ETag of these pixels over the data of `version`
    /// ([`Manifest::version`]): the data is named by its manifest (not the
    /// process-local load generation), so replicas serving the same files,
    /// and a restarted server, agree.
    pub fn etag(&self, version: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{version}|{}", self.encode()).as_bytes());
        format!("\"{}\"", hex::encode(&digest[..16]))
    }
}

impl Key {
    /// `ask` of `entry`.
    pub fn new(entry: &Entry, ask: Ask) -> Key {
        Key {
            generation: entry.generation,
            dataset: entry.name.clone(),
            ask,
        }
    }

    /// Bytes the key holds, for cache weights.
    pub fn weight(&self) -> usize {
        self.dataset.len() + 64 + self.ask.weight()
    }
}

impl Ask {
    /// Bytes of the ask's texts, for cache weights.
    pub(super) fn weight(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
        match self {
            Ask::Tile(t) | Ask::DynspreadRadius(t) => {
                t.agg.len() + strings(&t.filters) + t.style.len()
            }
            Ask::ZoomScale { agg, filters, .. } | Ask::Cells { agg, filters } => {
                agg.len() + strings(filters)
            }
            Ask::FilterBits(f) => f.len(),
            Ask::Normalization { scale, shade, .. } => 64 + scale.weight() + shade.len(),
            Ask::Brush {
                target,
                bbox,
                brush,
                filters,
            } => {
                target.len() + bbox.as_ref().map_or(0, String::len) + brush.len() + strings(filters)
            }
        }
    }
}

/// Filters in their canonical texts.
pub(super) fn filter_texts(filters: &[Filter], m: &Manifest) -> Vec<String> {
    filters.iter().map(|f| f.to_text(m)).collect()
}

fn zoom_key(entry: &Entry, z: u8, size: u32, agg: &Agg, filters: &[Filter], exact: bool) -> Key {
    // Per-pixel totals of count_cat are plain counts: share their statistics.
    let agg = match agg {
        Agg::CountCat(_) => "count".to_string(),
        other => other.to_text(),
    };
    let filters = filter_texts(filters, &entry.dataset.manifest);
    Key::new(
        entry,
        Ask::ZoomScale {
            z,
            size,
            agg,
            filters,
            exact,
        },
    )
}

/// Run `init` once per key, keeping its result in `cache`: requests for a
/// key whose `init` is running wait for it. `metric` records how long it took.
pub(super) async fn cached<V: Send + Sync + 'static>(
    cache: &moka::future::Cache<Key, Arc<V>>,
    key: Key,
    metric: &'static str,
    init: impl std::future::Future<Output = Result<V, ApiError>>,
) -> Result<Arc<V>, ApiError> {
    cache
        .try_get_with(key, async move {
            let t = Instant::now();
            let v = init.await?;
            metrics::histogram!(metric).record(t.elapsed().as_secs_f64());
            Ok::<_, ApiError>(Arc::new(v))
        })
        .await
        .map_err(|e: Arc<ApiError>| (*e).clone())
}

/// A zoom's colour scale and what it came from.
#[derive(Debug)]
pub struct ZoomScale {
    /// The distribution of the zoom's pixel values.
    pub stats: ZoomStats,
    /// Overview, cells, sample or rows.
    pub source: Source,
    /// What it answers (its cache key's ask): the normalizations built
    /// from it are keyed by it.
    pub ask: Ask,
}

/// The colour scale of `size`-pixel tiles at zoom `z` (exact, or
/// estimated from a sample unless `exact`), cached per query.
#[allow(clippy::too_many_arguments)]
pub(super) async fn zoom_stats(
    state: &Arc<AppState>,
    entry: &Arc<Entry>,
    z: u8,
    size: u32,
    agg: &Agg,
    filters: &[Filter],
    exact: bool,
    deadline: Instant,
) -> Result<Arc<ZoomScale>, ApiError> {
    let key = zoom_key(entry, z, size, agg, filters, exact);
    let ask = key.ask.clone();
    let (e, a, f) = (entry.clone(), agg.clone(), filters.to_vec());
    let st = state.clone();
    let level = z as u32 + size.trailing_zeros();
    cached(
        &state.zoom,
        key,
        "pointillist_zoom_stats_seconds",
        async move {
            // Planned only on a cache miss.
            let planner = st.config.planner();
            let ready = cells_cached(&st, &e, &a, &f);
            let source = planner.scale(&e.dataset, z, size, &a, &f, exact, ready);
            let exact_pass = |e: Arc<Entry>, a: Agg, f: Vec<Filter>| {
                // The overview answers without reading rows; rows are a pass.
                let lane = if source == Source::Overview {
                    Lane::Light
                } else {
                    Lane::Heavy
                };
                st.compute_on(e.clone(), lane, deadline, move |cancel| {
                    crate::raster::zoom::zoom_stats(&e.dataset, z, size, &a, &f, Some(cancel))
                })
            };
            let from_cells = |e: Arc<Entry>, a: Agg, f: Vec<Filter>| {
                let st = st.clone();
                async move {
                    let cells = query_cells(&st, &e, &a, &f, deadline).await?;
                    st.compute_on(e.clone(), Lane::Light, deadline, move |_| {
                        cells
                            .zoom_stats(&e.dataset, level)
                            .ok_or_else(|| ApiError::internal("zoom level finer than the cells"))
                    })
                    .await?
                }
            };
            let (stats, source) = match source {
                Source::Cells => (from_cells(e, a, f).await?, source),
                Source::Sample => {
                    let (e2, a2, f2) = (e.clone(), a.clone(), f.clone());
                    let rows = planner.sample_rows;
                    let sampled = st
                        .compute_on(e.clone(), Lane::Light, deadline, move |cancel| {
                            crate::raster::sample::zoom_stats(
                                &e2.dataset,
                                z,
                                size,
                                &a2,
                                &f2,
                                rows,
                                Some(cancel),
                            )
                        })
                        .await??;
                    match sampled {
                        Some(stats) => (stats, Source::Sample),
                        // Pixels too large to sample cheaply: the query's
                        // cells where they can answer (a pass, then kept),
                        // else the exact pass over the rows.
                        None => match planner.unsampled_scale(&e.dataset, z, size, &a) {
                            Source::Cells => (from_cells(e, a, f).await?, Source::Cells),
                            _ => (exact_pass(e, a, f).await??, Source::Rows),
                        },
                    }
                }
                _ => (exact_pass(e, a, f).await??, source),
            };
            Ok(ZoomScale { stats, source, ask })
        },
    )
    .await
}

/// The normalization of `scale` (the zoom scale of `agg`'s query) for
/// `style`, built once per zoom scale and way of shading: a count_cat
/// zoom's eq_hist over its category totals costs 0.1–0.2 ms, a share of a
/// deep tile's whole budget.
pub(super) async fn zoom_normalization(
    state: &Arc<AppState>,
    entry: &Arc<Entry>,
    scale: &Arc<ZoomScale>,
    agg: &Agg,
    style: &Style,
) -> Result<Arc<Option<Normalization>>, ApiError> {
    let o = &style.shade;
    let span = o
        .span
        .map_or_else(|| "-".to_string(), |(lo, hi)| format!("{lo},{hi}"));
    let key = Key::new(
        entry,
        Ask::Normalization {
            scale: Box::new(scale.ask.clone()),
            categorical: agg.category_column().is_some(),
            shade: format!("{}|{span}|{}", o.how, o.rescale_discrete_levels),
        },
    );
    let (scale, agg, style) = (scale.clone(), agg.clone(), style.clone());
    cached(
        &state.norms,
        key,
        "pointillist_normalization_seconds",
        async move {
            Ok(crate::render::zoom_normalization(
                &scale.stats,
                &agg,
                &style,
            )?)
        },
    )
    .await
}

/// The radius `dynspread` gives every `size`-pixel tile of `tile`'s zoom
/// ([`crate::render::zoom_dynspread_radius`]: one anchor tile rendered),
/// cached per query and style so that each tile of the zoom does not render
/// the anchor again.
#[allow(clippy::too_many_arguments)]
pub(super) async fn dynspread_radius(
    state: &Arc<AppState>,
    entry: &Arc<Entry>,
    tile: TileId,
    size: u32,
    agg: &Agg,
    filters: &[Filter],
    style: &Style,
    norm: Option<&Normalization>,
    deadline: Instant,
) -> Result<u32, ApiError> {
    let Some((threshold, max_px)) = style.dynspread else {
        return Ok(style.spread);
    };
    let key = Key::new(
        entry,
        Ask::DynspreadRadius(TilePixels {
            tile: (tile.z, 0, 0),
            size,
            agg: agg.to_text(),
            filters: filter_texts(filters, &entry.dataset.manifest),
            style: style.canonical(),
            format: ImageFormat::Png,
        }),
    );
    let (e, a, f, st, nm) = (
        entry.clone(),
        agg.clone(),
        filters.to_vec(),
        style.clone(),
        norm.cloned(),
    );
    let limits = state.config.limits();
    let state2 = state.clone();
    let r = cached(
        &state.radii,
        key,
        "pointillist_dynspread_radius_seconds",
        async move {
            state2
                .compute_on(e.clone(), Lane::Light, deadline, move |cancel| {
                    crate::render::zoom_dynspread_radius(
                        &e.dataset,
                        tile,
                        size,
                        &a,
                        &f,
                        &st,
                        nm.as_ref(),
                        threshold,
                        max_px,
                        crate::query::Budget {
                            cancel: Some(cancel),
                            limits,
                        },
                    )
                })
                .await?
                .map_err(ApiError::from)
        },
    )
    .await?;
    Ok(*r)
}

fn cells_key(entry: &Entry, agg: &Agg, filters: &[Filter]) -> Key {
    Key::new(
        entry,
        Ask::Cells {
            agg: agg.to_text(),
            filters: filter_texts(filters, &entry.dataset.manifest),
        },
    )
}

/// Whether the cells of a query are cached (the planner reads cached cells
/// for any tile, and builds them for a large one only).
pub(super) fn cells_cached(state: &AppState, entry: &Entry, agg: &Agg, filters: &[Filter]) -> bool {
    state.cells.contains_key(&cells_key(entry, agg, filters))
}

/// The cells of a query, from the cache or one pass over the rows (requests
/// for the same query while it runs wait for that pass).
pub(super) async fn query_cells(
    state: &Arc<AppState>,
    entry: &Arc<Entry>,
    agg: &Agg,
    filters: &[Filter],
    deadline: Instant,
) -> Result<Arc<QueryCells>, ApiError> {
    let key = cells_key(entry, agg, filters);
    let (e, a, f) = (entry.clone(), agg.clone(), filters.to_vec());
    let st = state.clone();
    cached(
        &state.cells,
        key,
        "pointillist_query_cells_seconds",
        async move {
            Ok(st
                .compute_on(e.clone(), Lane::Heavy, deadline, move |cancel| {
                    QueryCells::get(&e.dataset, &a, &f, Some(cancel))
                })
                .await??)
        },
    )
    .await
}
