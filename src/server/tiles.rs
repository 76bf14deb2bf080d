//! Tiles: `GET /tiles/{name}/{z}/{x}/{y}.png` (or `.webp`), cached, with
//! ETags.

use super::caches::{
    Ask, Key, TilePixels, cells_cached, dynspread_radius, filter_texts, query_cells,
    zoom_normalization, zoom_stats,
};
use super::params::RenderQuery;
use super::{ApiError, AppState, AppStateRef, CachedTile, EmptyTiles, Entry, Lane, spec};
use crate::geo::TileId;
use crate::query::View;
use crate::raster::plan::Source;
use crate::render::{self, Scale};
use crate::shade::ImageFormat;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// Parse `{y}.png` / `{y}@2x.png` (or `.webp`).
fn parse_tile_file(file: &str) -> Result<(u64, bool, ImageFormat), ApiError> {
    let bad = || ApiError::bad_request(format!("tile must end in .png or .webp, got {file:?}"));
    let (stem, ext) = file.rsplit_once('.').ok_or_else(bad)?;
    let format = ImageFormat::from_extension(ext).ok_or_else(bad)?;
    let (y, retina) = match stem.strip_suffix("@2x") {
        Some(y) => (y, true),
        None => (stem, false),
    };
    Ok((parse_coord("y", y)?, retina, format))
}

fn parse_coord(what: &str, s: &str) -> Result<u64, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 10 {
        return Err(ApiError::bad_request(format!(
            "{what} must be a non-negative integer, got {s:?}"
        )));
    }
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} is out of range: {s:?}")))
}

/// `GET /tiles/{name}/{z}/{x}/{y}.png` (or `.webp`).
pub async fn tile(
    State(state): AppStateRef,
    Path((name, z, x, file)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let dl = state.deadline();
    let (tile, retina, format) = parse_tile_path(&z, &x, &file)?;
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let (mut r, params) = RenderQuery::parse(q.as_deref(), m, &spec::TILE)?;
    let asked = params.version()?;
    if retina {
        r.tile_size = 512;
    }
    let view = View::tile(tile, r.tile_size)?;
    state.config.limits().check_grid(&view, &r.agg, m)?;
    let pixels = TilePixels {
        tile: (tile.z, tile.x, tile.y),
        size: r.tile_size,
        agg: r.agg.to_text(),
        filters: filter_texts(&r.filters, m),
        style: r.style.canonical(),
        format,
    };
    let version = m.version();
    let etag = pixels.etag(&version);
    // A URL for the version being served names these pixels for good; any
    // other (an old TileJSON's, during a swap) gets the current pixels for
    // the usual time only.
    let cache_control = if asked == Some(version.as_str()) {
        "public, max-age=31536000, immutable".to_string()
    } else {
        format!("public, max-age={}", state.config.tile_max_age)
    };
    let headers_out = |r: &mut Response| {
        let h = r.headers_mut();
        h.insert(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("hex etag"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&cache_control).expect("ascii"),
        );
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        headers_out(&mut r);
        return Ok(r);
    }
    // No row of the dataset in the tile (or the margin a spread reads):
    // nothing to draw, so say so without rendering. A background colour
    // makes even such a tile an image.
    if state.config.empty_tiles == EmptyTiles::NoContent
        && r.style.background.is_none()
        && is_empty_tile(&entry, tile, r.tile_size, r.style.margin()).await?
    {
        metrics::counter!("pointillist_tile_cache_total", "result" => "empty").increment(1);
        let mut resp = StatusCode::NO_CONTENT.into_response();
        headers_out(&mut resp);
        resp.headers_mut().insert(
            "server-timing",
            HeaderValue::from_str(&format!(
                "plan;desc=\"empty\", total;dur={:.2}",
                started.elapsed().as_secs_f64() * 1e3
            ))
            .expect("ascii"),
        );
        return Ok(resp);
    }
    let miss = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let render = {
        let (state, entry, miss) = (state.clone(), entry.clone(), miss.clone());
        async move {
            miss.store(true, std::sync::atomic::Ordering::Relaxed);
            render_tile(state, entry, tile, view, r, format, dl).await
        }
    };
    let tile_data = if state.config.cache_mb == 0 {
        render.await?
    } else {
        state
            .tiles
            .try_get_with(Key::new(&entry, Ask::Tile(pixels)), render)
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())?
    };
    let hit = !miss.load(std::sync::atomic::Ordering::Relaxed);
    metrics::counter!("pointillist_tile_cache_total", "result" => if hit { "hit" } else { "miss" })
        .increment(1);
    if !hit {
        metrics::histogram!("pointillist_render_seconds").record(started.elapsed().as_secs_f64());
    }
    let mut r = (
        [(header::CONTENT_TYPE, tile_data.format.mime())],
        tile_data.body.clone(),
    )
        .into_response();
    headers_out(&mut r);
    // Which source answered (overview, cells or rows), whether from the tile
    // cache, and how long it took: visible in a browser's network panel.
    let scale = tile_data
        .scale
        .map(|s| format!(", scale;desc=\"{s}\""))
        .unwrap_or_default();
    // A miss also says how long its render and encoding (`png` or `webp`)
    // took; a hit did neither.
    let work = if hit {
        String::new()
    } else {
        format!(
            ", render;dur={:.2}, {};dur={:.2}",
            tile_data.render_ms,
            tile_data.format.extension(),
            tile_data.encode_ms
        )
    };
    let timing = format!(
        "plan;desc=\"{}\"{scale}, cache;desc=\"{}\"{work}, total;dur={:.2}",
        tile_data.source,
        if hit { "hit" } else { "miss" },
        started.elapsed().as_secs_f64() * 1e3
    );
    r.headers_mut().insert(
        "server-timing",
        HeaderValue::from_str(&timing).expect("ascii"),
    );
    r.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    Ok(r)
}

/// `{z}`, `{x}` and `{y}.png` / `{y}@2x.png` as a tile, whether it is the
/// 512-pixel (retina) form, and its image format.
fn parse_tile_path(z: &str, x: &str, file: &str) -> Result<(TileId, bool, ImageFormat), ApiError> {
    let z = parse_coord("z", z)?;
    let x = parse_coord("x", x)?;
    let (y, retina, format) = parse_tile_file(file)?;
    let tile = TileId::new(z.min(u32::MAX as u64) as u32, x, y)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((tile, retina, format))
}

/// Whether no row of the dataset lies in the tile or within `margin` of its
/// pixels: the zone maps and binary searches over the sorted coordinates
/// tell, without a scan.
async fn is_empty_tile(
    entry: &Arc<Entry>,
    tile: TileId,
    size: u32,
    margin: u32,
) -> Result<bool, ApiError> {
    match View::tile_with_margin(tile, size, margin) {
        Ok(v) => Ok(entry.rows_in(v.key_ranges()).await? == 0),
        Err(_) => Ok(false),
    }
}

/// A tile cache miss: plan the source, fetch what it needs (query cells,
/// the zoom's colour scale) from their caches, then aggregate and shade on
/// the lane the plan implies.
async fn render_tile(
    state: Arc<AppState>,
    entry: Arc<Entry>,
    tile: TileId,
    view: View,
    r: RenderQuery,
    format: ImageFormat,
    dl: Instant,
) -> Result<Arc<CachedTile>, ApiError> {
    let RenderQuery {
        agg,
        filters,
        style,
        tile_size: size,
    } = r;
    let limits = state.config.limits();
    // A spreading style reads rows from the neighbours (a margin no
    // per-tile cell grid or overview tile has), so it always reads rows.
    let margin = style.margin();
    let cached = cells_cached(&state, &entry, &agg, &filters);
    // The planner counts the tile's rows (binary searches over the
    // coordinates). Cells and the overview answer without reading rows;
    // otherwise the rows the tile may read (its margin included) choose its
    // lane, counted in the same call (one trip to the blocking pool for a
    // remote dataset).
    let planner = state.config.planner();
    let (a, f) = (agg.clone(), filters.clone());
    let (planned, rows) = entry
        .planning(move |ds| {
            let planned = match planner.tile(ds, tile, size, &a, &f, cached) {
                Source::Cells | Source::Overview if margin > 0 => Source::Rows,
                p => p,
            };
            let rows = matches!(planned, Source::Rows | Source::Sample).then(|| {
                let read = View::tile_with_margin(tile, size, margin).unwrap_or(view);
                crate::query::rows_in(ds, &read.key_ranges())
            });
            (planned, rows)
        })
        .await?;
    let cells = if planned == Source::Cells {
        Some(query_cells(&state, &entry, &agg, &filters, dl).await?)
    } else {
        None
    };
    let (norm, scale_source) = if style.scale.seamless() {
        let exact = style.scale == Scale::Exact;
        let scale = zoom_stats(&state, &entry, tile.z, size, &agg, &filters, exact, dl).await?;
        let norm = zoom_normalization(&state, &entry, &scale, &agg, &style).await?;
        (norm, Some(scale.source.name()))
    } else {
        (Arc::new(None), None)
    };
    // dynspread's radius is one per zoom: from the cache, else from one
    // anchor tile, then the tile is spread by that fixed radius.
    let style = if style.dynspread.is_some() {
        let radius = dynspread_radius(
            &state,
            &entry,
            tile,
            size,
            &agg,
            &filters,
            &style,
            Option::as_ref(&norm),
            dl,
        )
        .await?;
        let mut fixed = style;
        fixed.dynspread = None;
        fixed.spread = radius;
        fixed
    } else {
        style
    };
    let lane = rows.map_or(Lane::Light, Lane::for_rows);
    let (tile_data, rows) = state
        .compute_on(
            entry.clone(),
            lane,
            dl,
            move |cancel| -> Result<(CachedTile, u64), ApiError> {
                let t0 = Instant::now();
                let from_cells = cells.as_ref().and_then(|c| c.tile(tile, size));
                let source = match (&from_cells, planned) {
                    (Some(_), _) => Source::Cells,
                    (None, Source::Overview) => Source::Overview,
                    (None, _) => Source::Rows,
                }
                .name();
                let r = match from_cells {
                    Some((grid, read)) => render::shade_aggregate(
                        crate::raster::Aggregate {
                            grid,
                            rows_scanned: read,
                            partitions_skipped: 0,
                        },
                        &agg,
                        &style,
                        Option::as_ref(&norm),
                    )?,
                    None => render::render_tile(
                        &entry.dataset,
                        tile,
                        size,
                        &agg,
                        &filters,
                        &style,
                        Option::as_ref(&norm),
                        crate::query::Budget {
                            cancel: Some(cancel),
                            limits,
                        },
                    )?,
                };
                let t1 = Instant::now();
                let body = format.encode(&r.image)?;
                let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
                let tile = CachedTile {
                    body: Bytes::from(body),
                    format,
                    source,
                    scale: scale_source,
                    render_ms: ms(t0, t1),
                    encode_ms: ms(t1, Instant::now()),
                };
                Ok((tile, r.aggregate.rows_scanned))
            },
        )
        .await??;
    metrics::counter!("pointillist_rows_scanned_total").increment(rows);
    Ok(Arc::new(tile_data))
}
