//! Route handlers.

use super::params::{Params, RenderQuery};
use super::{ApiError, AppState, CachedTile, Catalog};
use crate::geo::{self, TileId};
use crate::query::histogram::{Histogram, MAX_BINS};
use crate::query::masks::FilterBits;
use crate::query::{Agg, Filter, View, bind_filters, plan_rows};
use crate::raster::cells::QueryCells;
use crate::raster::npy;
use crate::raster::pyramid::ZoomStats;
use crate::render::{self, Scale};
use crate::store::column::{CatColumn, NumColumn};
use crate::store::{ColumnKind, Dataset, Manifest};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::Digest;
use std::sync::Arc;
use std::time::{Duration, Instant};

type AppStateRef = State<Arc<AppState>>;

/// Longest side of a raw aggregate grid.
pub const MAX_AGGREGATE_SIDE: u32 = 4096;
/// Most cells a JSON aggregate may hold.
pub const MAX_JSON_CELLS: usize = 1 << 18;

fn deadline(state: &AppState) -> Instant {
    Instant::now() + Duration::from_millis(state.config.timeout_ms)
}

/// `GET /health`.
pub async fn health(State(state): AppStateRef) -> Json<Value> {
    Json(json!({"status": "ok", "datasets": state.catalog.load().datasets.len()}))
}

fn ms(kind: ColumnKind, v: Option<f64>) -> Value {
    match v {
        Some(v) if v.is_finite() => {
            if kind == ColumnKind::Temporal {
                json!((v / 1000.0).round())
            } else {
                json!(v)
            }
        }
        _ => Value::Null,
    }
}

/// Columns an analyst sees first: categories, one measure, one time.
fn default_histograms(m: &Manifest) -> Vec<String> {
    let id_like = |n: &str| {
        let n = n.to_ascii_lowercase();
        [
            "id",
            "mcc",
            "mnc",
            "net",
            "area",
            "cell",
            "lac",
            "mmsi",
            "imo",
            "unit",
            "changeable",
        ]
        .contains(&n.as_str())
            || n.ends_with("_id")
    };
    let mut out: Vec<String> = m
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Categorical)
        .take(2)
        .map(|c| c.name.clone())
        .collect();
    out.extend(
        m.columns
            .iter()
            .filter(|c| {
                c.kind == ColumnKind::Numeric && !id_like(&c.name) && c.stats.min != c.stats.max
            })
            .take(1)
            .map(|c| c.name.clone()),
    );
    out.extend(
        m.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Temporal && c.stats.min != c.stats.max)
            .take(1)
            .map(|c| c.name.clone()),
    );
    out
}

fn dataset_json(entry: &super::Entry) -> Value {
    let m = &entry.dataset.manifest;
    let columns: Vec<Value> = m
        .columns
        .iter()
        .map(|c| {
            let mut o = json!({
                "name": c.name,
                "kind": format!("{:?}", c.kind).to_lowercase(),
                "type": c.arrow_type,
                "count": c.stats.count,
                "nulls": c.stats.nulls,
            });
            if matches!(c.kind, ColumnKind::Numeric | ColumnKind::Temporal) {
                o["min"] = ms(c.kind, c.stats.min);
                o["max"] = ms(c.kind, c.stats.max);
                o["mean"] = ms(c.kind, c.stats.mean);
                o["std"] = if c.kind == ColumnKind::Temporal {
                    c.stats
                        .std
                        .map(|s| json!(s / 1000.0))
                        .unwrap_or(Value::Null)
                } else {
                    c.stats.std.map(|s| json!(s)).unwrap_or(Value::Null)
                };
            }
            if c.kind == ColumnKind::Categorical {
                o["categories"] = json!(c.categories);
                o["category_counts"] = json!(c.stats.category_counts);
            }
            o
        })
        .collect();
    json!({
        "name": entry.name,
        "rows": m.rows,
        "dropped_rows": m.dropped_rows,
        "bounds": m.bounds.lnglat,
        "partitions": m.partitions.len(),
        "created": m.created,
        "columns": columns,
        "default_histograms": default_histograms(m),
    })
}

/// `GET /datasets`.
pub async fn datasets(State(state): AppStateRef) -> Json<Value> {
    let cat: Arc<Catalog> = state.catalog.load_full();
    let list: Vec<Value> = cat.datasets.values().map(|e| dataset_json(e)).collect();
    let mut out = json!({"datasets": list});
    if let Some(b) = &state.config.basemap {
        out["basemap"] = json!(b);
    }
    Json(out)
}

/// `GET /datasets/{name}`.
pub async fn dataset(
    State(state): AppStateRef,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    Ok(Json(dataset_json(&entry)))
}

/// The base of absolute URLs in responses: the configured `public_url`;
/// else, with `trust_proxy`, the forwarded or `Host` headers; else empty,
/// so that URLs stay relative to the server that answered (a client's
/// `Host` header must not choose the host written into a response that a
/// shared cache may hand to everyone).
fn base_url(config: &super::ServerConfig, headers: &HeaderMap) -> String {
    if let Some(u) = &config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    if !config.trust_proxy {
        return String::new();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split(',').next())
            .map(str::trim)
    };
    let valid_host = |h: &&str| {
        !h.is_empty()
            && h.len() <= 255
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    };
    let host = header("x-forwarded-host")
        .filter(valid_host)
        .or_else(|| header(header::HOST.as_str()).filter(valid_host));
    let Some(host) = host else {
        return String::new();
    };
    let proto = header("x-forwarded-proto")
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    let prefix = header("x-forwarded-prefix")
        .filter(|p| {
            p.starts_with('/')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c))
        })
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or("");
    format!("{proto}://{host}{prefix}")
}

/// `GET /datasets/{name}/tilejson`: TileJSON 3.0 whose tile URL carries the
/// same rendering parameters.
pub async fn tilejson(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    // Validate now, so a bad URL fails here and not in every tile.
    RenderQuery::parse(q.as_deref(), m, &[])?;
    let suffix = q
        .filter(|s| !s.is_empty())
        .map(|s| format!("?{s}"))
        .unwrap_or_default();
    let b = m.bounds.lnglat;
    Ok(Json(json!({
        "tilejson": "3.0.0",
        "name": entry.name,
        "description": format!("{} points rendered by Pointillist", m.rows),
        "scheme": "xyz",
        "tiles": [format!("{}/tiles/{}/{{z}}/{{x}}/{{y}}.png{suffix}", base_url(&state.config, &headers), entry.name)],
        "minzoom": 0,
        "maxzoom": geo::MAX_ZOOM,
        "bounds": b,
        "center": [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, 2],
        "attribution": "Rendered with Pointillist",
    })))
}

fn histogram_json(h: Histogram) -> Value {
    match h {
        Histogram::Categorical {
            column,
            total,
            categories,
        } => json!({
            "column": column,
            "kind": "categorical",
            "total": total,
            "categories": categories.into_iter().map(|(v, c)| json!({"value": v, "count": c})).collect::<Vec<_>>(),
        }),
        Histogram::Numeric {
            column,
            temporal,
            total,
            min,
            max,
            counts,
        } => {
            let scale = if temporal { 1e-3 } else { 1.0 };
            let n = counts.len();
            let width = (max - min) / n as f64;
            // The edges the counts used: the last one is max itself.
            let edge = |i: usize| if i == n { max } else { min + width * i as f64 };
            let bins: Vec<Value> = counts
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"lo": edge(i) * scale, "hi": edge(i + 1) * scale, "count": c}))
                .collect();
            json!({
                "column": column,
                "kind": if temporal { "temporal" } else { "numeric" },
                "total": total,
                "min": min * scale,
                "max": max * scale,
                "bins": bins,
            })
        }
    }
}

/// `GET /datasets/{name}/histogram/{column}` with crossfilter semantics.
pub async fn histogram(
    State(state): AppStateRef,
    Path((name, column)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let p = Params::parse(q.as_deref())?;
    p.only(&[&["bins", "bbox", "filter"]])?;
    let bins = p.num("bins", 50usize, 1, MAX_BINS)?;
    let bbox = p.bbox()?;
    let filters = p.filters(m)?;
    // The column is a path segment: one the dataset lacks is a missing
    // resource (404), one of the wrong kind a bad request (400).
    crate::query::require(
        m,
        &column,
        &[
            ColumnKind::Numeric,
            ColumnKind::Temporal,
            ColumnKind::Categorical,
        ],
        "a histogram",
    )
    .map_err(|e| match e {
        crate::query::QueryError::UnknownColumn { .. } => ApiError::not_found(e.to_string()),
        other => other.into(),
    })?;
    let t = Instant::now();
    let dl = deadline(&state);
    let (filters, bits) = filter_bits(&state, &entry, filters, Some(&column), dl).await?;
    let h = state
        .compute_on(entry.clone(), dl, move |cancel| {
            crate::query::histogram::histogram(
                &entry.dataset,
                &column,
                bins,
                bbox.as_ref(),
                &filters,
                &bits,
                Some(cancel),
            )
        })
        .await??;
    metrics::histogram!("pointillist_histogram_seconds").record(t.elapsed().as_secs_f64());
    Ok(Json(histogram_json(h)))
}

/// Filters as cached bitsets (computed once per filter, a pass over its
/// column; requests for one filter while it runs wait for that pass), except
/// those on `skip` (a histogram's own column, which it ignores). With the
/// bitset cache off, the filters are returned to be tested row by row.
async fn filter_bits(
    state: &Arc<AppState>,
    entry: &Arc<super::Entry>,
    filters: Vec<Filter>,
    skip: Option<&str>,
    deadline: Instant,
) -> Result<(Vec<Filter>, Vec<Arc<FilterBits>>), ApiError> {
    if state.config.masks_mb == 0 {
        return Ok((filters, Vec::new()));
    }
    let m = &entry.dataset.manifest;
    let mut bits = Vec::with_capacity(filters.len());
    for f in filters.into_iter().filter(|f| Some(f.column()) != skip) {
        let key = format!("{}|{}|{}", entry.generation, entry.name, f.to_text(m));
        let (e, st) = (entry.clone(), state.clone());
        let b = cached(
            &state.masks,
            key,
            "pointillist_filter_bits_seconds",
            async move {
                Ok(st
                    .compute_on(e.clone(), deadline, move |cancel| {
                        FilterBits::compute(&e.dataset, &f, Some(cancel))
                    })
                    .await??)
            },
        )
        .await?;
        bits.push(b);
    }
    Ok((Vec::new(), bits))
}

/// `GET /datasets/{name}/count`: rows in the bbox passing all filters.
pub async fn count(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let p = Params::parse(q.as_deref())?;
    p.only(&[&["bbox", "filter"]])?;
    let bbox = p.bbox()?;
    let filters = p.filters(m)?;
    let total = m.rows;
    let dl = deadline(&state);
    let (filters, bits) = filter_bits(&state, &entry, filters, None, dl).await?;
    let n = state
        .compute_on(entry.clone(), dl, move |cancel| {
            crate::query::histogram::count(
                &entry.dataset,
                bbox.as_ref(),
                &filters,
                &bits,
                Some(cancel),
            )
        })
        .await??;
    Ok(Json(json!({"count": n, "total": total})))
}

/// `GET /datasets/{name}/aggregate`: the raw grid as `.npy` or JSON.
pub async fn aggregate(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let p = Params::parse(q.as_deref())?;
    p.only(&[&["bbox", "width", "height", "agg", "filter", "format"]])?;
    let bbox = p
        .bbox()?
        .ok_or_else(|| ApiError::bad_request("missing parameter bbox=west,south,east,north"))?;
    let width = p.num("width", 256u32, 1, MAX_AGGREGATE_SIDE)?;
    let height = p.num("height", 256u32, 1, MAX_AGGREGATE_SIDE)?;
    let agg = p.agg(m)?;
    let filters = p.filters(m)?;
    let format = p.get("format").unwrap_or("npy").to_string();
    if format != "npy" && format != "json" {
        return Err(ApiError::bad_request(format!(
            "format must be npy or json, got {format:?}"
        )));
    }
    let view = View::viewport(bbox, width, height)?;
    let ncat = agg
        .category_column()
        .and_then(|c| m.column(c))
        .map_or(1, |c| c.categories.len().max(1));
    if format == "json" && (width as usize) * (height as usize) * ncat > MAX_JSON_CELLS {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "a JSON grid may hold at most {MAX_JSON_CELLS} cells; use format=npy or a smaller width/height"
            ),
        });
    }
    let limits = state.config.limits();
    // Refused before it waits for a render slot.
    limits.check_grid(&view, &agg, ncat)?;
    let a = state
        .compute_on(entry.clone(), deadline(&state), move |cancel| {
            crate::raster::aggregate_within(
                &entry.dataset,
                &view,
                &agg,
                &filters,
                crate::query::Budget {
                    cancel: Some(cancel),
                    limits,
                },
            )
        })
        .await??;
    metrics::counter!("pointillist_rows_scanned_total").increment(a.rows_scanned);
    if format == "json" {
        return Ok(Json(npy::to_json(&a.grid)).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"aggregate.npy\""),
            ),
        ],
        npy::to_npy(&a.grid),
    )
        .into_response())
}

fn attributes(ds: &Dataset, part: usize, row: usize) -> Value {
    let p = &ds.partitions[part];
    let mut o = serde_json::Map::new();
    for c in &ds.manifest.columns {
        let Some(array) = p.column(&c.name) else {
            continue;
        };
        let v = match c.kind {
            ColumnKind::Numeric => NumColumn::new(array)
                .map(|n| n.get(row))
                .filter(|v| !v.is_nan())
                .map(|v| json!(v)),
            ColumnKind::Temporal => NumColumn::new(array)
                .map(|n| n.get(row))
                .filter(|v| !v.is_nan())
                .map(|v| json!((v / 1000.0).round())),
            ColumnKind::Categorical => CatColumn::new(array)
                .and_then(|k| k.get(row))
                .and_then(|k| c.categories.get(k))
                .map(|l| json!(l)),
            ColumnKind::String => {
                use arrow_array::Array;
                use arrow_array::cast::AsArray;
                array
                    .as_string_opt::<i32>()
                    .filter(|s| s.is_valid(row))
                    .map(|s| json!(s.value(row)))
            }
            ColumnKind::Other => None,
        };
        o.insert(c.name.clone(), v.unwrap_or(Value::Null));
    }
    Value::Object(o)
}

/// `GET /datasets/{name}/points`: the points near a cursor, nearest first.
pub async fn points(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let p = Params::parse(q.as_deref())?;
    p.only(&[&[
        "lon",
        "lat",
        "z",
        "radius_px",
        "limit",
        "filter",
        "tile_size",
    ]])?;
    let lon = p.float("lon")?;
    let lat = p.float("lat")?;
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(ApiError::bad_request(
            "lon must be in -180..180 and lat in -90..90",
        ));
    }
    let z = p.num("z", 0u32, 0, geo::MAX_ZOOM as u32)?;
    let radius = p.num("radius_px", 8.0f64, 0.0, 64.0)?;
    let limit = p.num("limit", 5usize, 1, 100)?;
    let tile_size = p.tile_size()?;
    let filters = p.filters(m)?;
    let found = state
        .compute_on(entry.clone(), deadline(&state), move |cancel| {
            let ds = &entry.dataset;
            let (mx, my) = geo::lnglat_to_meters(lon, lat.clamp(-geo::MAX_LAT, geo::MAX_LAT));
            let (cx, cy) = geo::quantize(mx, my);
            // Quantized units per screen pixel at this zoom.
            let px = 2f64.powi(32 - z as i32) / tile_size as f64;
            let r = (radius * px).max(1.0);
            let lo = |c: u32| (c as f64 - r).max(0.0) as u32;
            let hi = |c: u32| (c as f64 + r).min(u32::MAX as f64) as u32;
            let ranges = geo::cover_key_ranges(lo(cx), hi(cx), lo(cy), hi(cy), 16);
            // The `limit` nearest so far, farthest on top: memory stays
            // bounded by `limit` however many rows lie in the disc.
            let mut hits: std::collections::BinaryHeap<Hit> =
                std::collections::BinaryHeap::with_capacity(limit + 1);
            for span in plan_rows(ds, &ranges, 1 << 16) {
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(ApiError::unavailable("request cancelled: deadline passed"));
                }
                let part = &ds.partitions[span.partition];
                let Some(f) = bind_filters(&ds.manifest, part, &filters) else { continue };
                for row in span.rows {
                    let dx = part.qx()[row] as f64 - cx as f64;
                    let dy = part.qy()[row] as f64 - cy as f64;
                    let d = (dx * dx + dy * dy).sqrt() / px;
                    if d <= radius && f.test(row) {
                        hits.push(Hit(d, span.partition, row));
                        if hits.len() > limit {
                            hits.pop();
                        }
                    }
                }
            }
            Ok(hits.into_sorted_vec().into_iter()
                .map(|Hit(d, part, row)| (d, part, row))
                .map(|(d, part, row)| {
                    let p = &ds.partitions[part];
                    let (x, y) = geo::dequantize(p.qx()[row], p.qy()[row]);
                    let (lon, lat) = geo::meters_to_lnglat(x, y);
                    json!({"lon": lon, "lat": lat, "distance_px": d, "attributes": attributes(ds, part, row)})
                })
                .collect::<Vec<_>>())
        })
        .await??;
    Ok(Json(json!({"points": found})))
}

/// A point near the cursor: distance in pixels, partition, row; ordered by
/// distance, then position, so results are deterministic.
#[derive(PartialEq)]
struct Hit(f64, usize, usize);

impl Eq for Hit {}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then(self.1.cmp(&other.1))
            .then(self.2.cmp(&other.2))
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn zoom_key(
    entry: &super::Entry,
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
        m.name,
        filters_text(filters, m)
    )
}

/// Filters as they appear in cache keys.
fn filters_text(filters: &[Filter], m: &Manifest) -> String {
    let f: Vec<String> = filters.iter().map(|f| f.to_text(m)).collect();
    f.join("&")
}

/// Run `init` once per key, keeping its result in `cache`: requests for a
/// key whose `init` is running wait for it. `metric` records how long it took.
async fn cached<V: Send + Sync + 'static>(
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

async fn zoom_stats(
    state: &Arc<AppState>,
    entry: &Arc<super::Entry>,
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
    let from_cells =
        state.cells_fit(&e.dataset, &a) && QueryCells::wanted_for_zoom(&e.dataset, level, &a, &f);
    cached(
        &state.zoom,
        key,
        "pointillist_zoom_stats_seconds",
        async move {
            let stats = if from_cells {
                let cells = query_cells(&st, &e, &a, &f, deadline).await?;
                st.compute_on(e.clone(), deadline, move |_| {
                    cells
                        .zoom_stats(&e.dataset, level)
                        .ok_or_else(|| ApiError::internal("zoom level finer than the cells"))
                })
                .await??
            } else {
                st.compute_on(e.clone(), deadline, move |cancel| {
                    crate::raster::pyramid::zoom_stats(&e.dataset, z, size, &a, &f, Some(cancel))
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
async fn query_cells(
    state: &Arc<AppState>,
    entry: &Arc<super::Entry>,
    agg: &Agg,
    filters: &[Filter],
    deadline: Instant,
) -> Result<Arc<QueryCells>, ApiError> {
    let m = &entry.dataset.manifest;
    let key = format!(
        "{}|{}|{}|{}",
        entry.generation,
        m.name,
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
                .compute_on(e.clone(), deadline, move |cancel| {
                    QueryCells::compute(&e.dataset, &a, &f, Some(cancel))
                })
                .await??)
        },
    )
    .await
}

/// `GET /datasets/{name}/legend`: the colour bar or category key.
pub async fn legend(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let (r, p) = RenderQuery::parse(q.as_deref(), m, &["z"])?;
    let RenderQuery {
        agg,
        filters,
        style,
        tile_size: size,
    } = r;
    let z = p.num("z", 0u32, 0, geo::MAX_ZOOM as u32)? as u8;
    if let Some(col) = agg.category_column().and_then(|c| m.column(c)) {
        let key = style
            .color_key
            .clone()
            .unwrap_or_else(|| crate::shade::default_color_key(col.categories.len()));
        let cats: Vec<Value> = col
            .categories
            .iter()
            .zip(key)
            .map(|(l, c)| json!({"value": l, "color": hex(c)}))
            .collect();
        return Ok(Json(
            json!({"kind": "categorical", "column": col.name, "agg": agg.to_text(), "categories": cats}),
        ));
    }
    let stats = zoom_stats(&state, &entry, z, size, &agg, &filters, deadline(&state)).await?;
    let colors: Vec<String> = style.shade.cmap.colors().iter().map(|&c| hex(c)).collect();
    let (min, max) = style.shade.span.or(stats.range()).unwrap_or((0.0, 0.0));
    Ok(Json(json!({
        "kind": "continuous",
        "agg": agg.to_text(),
        "how": style.shade.how.to_string(),
        "colors": colors,
        "min": min,
        "max": max,
        "zoom": z,
        "pixels": stats.pixels,
    })))
}

/// Parse `{y}.png` / `{y}@2x.png`.
fn parse_tile_file(file: &str) -> Result<(u64, bool), ApiError> {
    let stem = file
        .strip_suffix(".png")
        .ok_or_else(|| ApiError::bad_request(format!("tile must end in .png, got {file:?}")))?;
    let (y, retina) = match stem.strip_suffix("@2x") {
        Some(y) => (y, true),
        None => (stem, false),
    };
    Ok((parse_coord("y", y)?, retina))
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

/// `GET /tiles/{name}/{z}/{x}/{y}.png`.
pub async fn tile(
    State(state): AppStateRef,
    Path((name, z, x, file)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let dl = deadline(&state);
    let z = parse_coord("z", &z)?;
    let x = parse_coord("x", &x)?;
    let (y, retina) = parse_tile_file(&file)?;
    let tile = TileId::new(z.min(u32::MAX as u64) as u32, x, y)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let (r, _) = RenderQuery::parse(q.as_deref(), m, &[])?;
    let RenderQuery {
        agg,
        filters,
        style,
        tile_size: mut size,
    } = r;
    if retina {
        size = 512;
    }
    let view = View::tile(tile, size)?;
    let limits = state.config.limits();
    let ncat = agg
        .category_column()
        .and_then(|c| m.column(c))
        .map_or(1, |c| c.categories.len());
    limits.check_grid(&view, &agg, ncat)?;
    let key = format!(
        "{}|{}|{}/{}/{}|{size}|{}|{:?}|{:?}",
        entry.generation,
        m.name,
        tile.z,
        tile.x,
        tile.y,
        agg.to_text(),
        filters.iter().map(|f| f.to_text(m)).collect::<Vec<_>>(),
        style
    );
    let etag = format!(
        "\"{}\"",
        hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16])
    );
    let cache_control = format!("public, max-age={}", state.config.tile_max_age);
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
    let miss = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let render_tile = {
        let (state, entry, miss) = (state.clone(), entry.clone(), miss.clone());
        async move {
            miss.store(true, std::sync::atomic::Ordering::Relaxed);
            let level = tile.z as u32 + size.trailing_zeros();
            let cells = if state.cells_fit(&entry.dataset, &agg)
                && QueryCells::wanted_for_tile(&entry.dataset, level, &agg, &filters)
            {
                Some(query_cells(&state, &entry, &agg, &filters, dl).await?)
            } else {
                None
            };
            let norm = if style.scale == Scale::Zoom {
                let stats = zoom_stats(&state, &entry, tile.z, size, &agg, &filters, dl).await?;
                render::zoom_normalization(&stats, &agg, &style)?
            } else {
                None
            };
            let (png, rows) = state
                .compute_on(
                    entry.clone(),
                    dl,
                    move |cancel| -> Result<(Vec<u8>, u64), ApiError> {
                        let from_cells = cells.as_ref().and_then(|c| c.tile(tile, size));
                        let r = match from_cells {
                            Some((grid, read)) => render::shade_aggregate(
                                crate::raster::Aggregate {
                                    grid,
                                    rows_scanned: read,
                                    partitions_skipped: 0,
                                },
                                &agg,
                                &style,
                                norm.as_ref(),
                            )?,
                            None => render::render(
                                &entry.dataset,
                                &view,
                                &agg,
                                &filters,
                                &style,
                                norm.as_ref(),
                                crate::query::Budget {
                                    cancel: Some(cancel),
                                    limits,
                                },
                            )?,
                        };
                        let png = crate::shade::encode_png(&r.image)?;
                        Ok((png, r.aggregate.rows_scanned))
                    },
                )
                .await??;
            metrics::counter!("pointillist_rows_scanned_total").increment(rows);
            Ok::<_, ApiError>(Arc::new(CachedTile {
                png: Bytes::from(png),
            }))
        }
    };
    let tile_data = if state.config.cache_mb == 0 {
        render_tile.await?
    } else {
        state
            .tiles
            .try_get_with(key, render_tile)
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())?
    };
    let hit = !miss.load(std::sync::atomic::Ordering::Relaxed);
    metrics::counter!("pointillist_tile_cache_total", "result" => if hit { "hit" } else { "miss" })
        .increment(1);
    if !hit {
        metrics::histogram!("pointillist_render_seconds").record(started.elapsed().as_secs_f64());
    }
    let mut r = ([(header::CONTENT_TYPE, "image/png")], tile_data.png.clone()).into_response();
    headers_out(&mut r);
    r.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    Ok(r)
}

/// `POST /admin/reload`: rescan the dataset directories and swap the catalog.
pub async fn reload(
    State(state): AppStateRef,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let unauthorized = || ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: "missing or wrong bearer token".into(),
    };
    // No credentials at all is 401 (RFC 9110 §15.5.2), whether or not
    // reload is enabled; credentials for a disabled reload are 403.
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(unauthorized());
    }
    let Some(token) = state.config.admin_token.clone() else {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: "reload is disabled: set admin_token in the config or POINTILLIST_ADMIN_TOKEN"
                .into(),
        });
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The auth scheme is case-insensitive (RFC 7235 §2.1).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    // Constant-time comparison of digests: no timing oracle on the token.
    let ok = given.is_some_and(|g| {
        sha2::Sha256::digest(g.as_bytes()) == sha2::Sha256::digest(token.as_bytes())
    });
    if !ok {
        return Err(unauthorized());
    }
    let _one_at_a_time = state.reload.lock().await;
    let roots = state.config.datasets.clone();
    let previous = state.catalog.load_full();
    let cat = tokio::task::spawn_blocking(move || Catalog::load(&roots, Some(&previous)))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let names: Vec<String> = cat.datasets.keys().cloned().collect();
    let errors: Vec<Value> = cat
        .errors
        .iter()
        .map(|(p, e)| json!({"path": p.display().to_string(), "error": e}))
        .collect();
    state.catalog.store(Arc::new(cat));
    tracing::info!(datasets = ?names, "catalog reloaded");
    Ok(Json(json!({"datasets": names, "errors": errors})))
}
