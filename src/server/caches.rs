//! The server's computed-once caches: zoom-wide colour scales and query
//! cells, and the helper that runs a computation once per key.

use super::{ApiError, AppState, Entry, Lane};
use crate::query::{Agg, Filter};
use crate::raster::cells::QueryCells;
use crate::raster::plan::Source;
use crate::raster::zoom::ZoomStats;
use crate::store::Manifest;
use std::sync::Arc;
use std::time::Instant;

pub(super) fn zoom_key(
    entry: &Entry,
    z: u8,
    size: u32,
    agg: &Agg,
    filters: &[Filter],
    m: &Manifest,
) -> String {
    // Per-pixel totals of count_cat are plain counts: share their statistics.
    let agg = match agg {
        Agg::CountCat(_) => "count".to_string(),
        other => other.to_text(),
    };
    format!(
        "{}|{}|{z}|{size}|{agg}|{}",
        entry.generation,
        entry.name,
        filters_text(filters, m)
    )
}

/// Filters as they appear in cache keys.
pub(super) fn filters_text(filters: &[Filter], m: &Manifest) -> String {
    let f: Vec<String> = filters.iter().map(|f| f.to_text(m)).collect();
    f.join("&")
}

/// Run `init` once per key, keeping its result in `cache`: requests for a
/// key whose `init` is running wait for it. `metric` records how long it took.
pub(super) async fn cached<V: Send + Sync + 'static>(
    cache: &moka::future::Cache<String, Arc<V>>,
    key: String,
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

pub(super) async fn zoom_stats(
    state: &Arc<AppState>,
    entry: &Arc<Entry>,
    z: u8,
    size: u32,
    agg: &Agg,
    filters: &[Filter],
    deadline: Instant,
) -> Result<Arc<ZoomStats>, ApiError> {
    let key = zoom_key(entry, z, size, agg, filters, &entry.dataset.manifest);
    let (e, a, f) = (entry.clone(), agg.clone(), filters.to_vec());
    let st = state.clone();
    let level = z as u32 + size.trailing_zeros();
    cached(
        &state.zoom,
        key,
        "pointillist_zoom_stats_seconds",
        async move {
            // Planned only on a cache miss.
            let source = st.config.planner().scale(&e.dataset, z, size, &a, &f);
            // The overview answers a scale without reading rows.
            let lane = if source == Source::Overview {
                Lane::Light
            } else {
                Lane::Heavy
            };
            let stats = if source == Source::Cells {
                let cells = query_cells(&st, &e, &a, &f, deadline).await?;
                st.compute_on(e.clone(), Lane::Light, deadline, move |_| {
                    cells
                        .zoom_stats(&e.dataset, level)
                        .ok_or_else(|| ApiError::internal("zoom level finer than the cells"))
                })
                .await??
            } else {
                st.compute_on(e.clone(), lane, deadline, move |cancel| {
                    crate::raster::zoom::zoom_stats(&e.dataset, z, size, &a, &f, Some(cancel))
                })
                .await??
            };
            Ok(stats)
        },
    )
    .await
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
    let m = &entry.dataset.manifest;
    let key = format!(
        "{}|{}|{}|{}",
        entry.generation,
        entry.name,
        agg.to_text(),
        filters_text(filters, m)
    );
    let (e, a, f) = (entry.clone(), agg.clone(), filters.to_vec());
    let st = state.clone();
    cached(
        &state.cells,
        key,
        "pointillist_query_cells_seconds",
        async move {
            Ok(st
                .compute_on(e.clone(), Lane::Heavy, deadline, move |cancel| {
                    QueryCells::compute(&e.dataset, &a, &f, Some(cancel))
                })
                .await??)
        },
    )
    .await
}
