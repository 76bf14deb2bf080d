//! Metadata: health, the dataset list and schemas, TileJSON and legends.

use super::caches::zoom_stats;
use super::params::RenderQuery;
use super::{ApiError, AppStateRef, Catalog, spec};
use crate::geo;
use crate::store::{ColumnKind, Manifest};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use serde_json::{Value, json};
use std::sync::Arc;

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
        "version": m.version(),
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
    let (_, p) = RenderQuery::parse(q.as_deref(), m, &spec::TILEJSON)?;
    let ext = p.word(&spec::IMAGE_FORMAT)?;
    // The format is the URLs' extension, not a tile parameter; the rest
    // goes to every tile as it was written.
    let rest: Vec<&str> = q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|kv| {
            let key = kv.split('=').next().unwrap_or("").replace('+', " ");
            !kv.is_empty()
                && percent_encoding::percent_decode_str(&key).decode_utf8_lossy()
                    != spec::IMAGE_FORMAT.name
        })
        .collect();
    // The URLs name the dataset's version, so a cache in front (nginx, a
    // CDN, the browser) may keep their tiles for good: a repacked dataset
    // gets new URLs from its new TileJSON.
    let suffix = match rest.is_empty() {
        false => format!("?{}&v={}", rest.join("&"), m.version()),
        true => format!("?v={}", m.version()),
    };
    let b = m.bounds.lnglat;
    Ok(Json(json!({
        "tilejson": "3.0.0",
        "name": entry.name,
        "description": format!("{} points rendered by Pointillist", m.rows),
        "scheme": "xyz",
        "tiles": [format!("{}/tiles/{}/{{z}}/{{x}}/{{y}}.{ext}{suffix}", base_url(&state.config, &headers), entry.name)],
        "format": ext,
        "minzoom": 0,
        "maxzoom": geo::MAX_ZOOM,
        "bounds": b,
        "center": [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, 2],
        "attribution": "Rendered with Pointillist",
    })))
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// `GET /datasets/{name}/legend`: the colour bar or category key.
pub async fn legend(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let entry = state.dataset(&name)?;
    let m = &entry.dataset.manifest;
    let (r, p) = RenderQuery::parse(q.as_deref(), m, &spec::LEGEND)?;
    let RenderQuery {
        agg,
        filters,
        style,
        tile_size: size,
    } = r;
    let z = p.int(&spec::ZOOM)? as u8;
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
    let exact = style.scale == crate::render::Scale::Exact;
    let scale = zoom_stats(
        &state,
        &entry,
        z,
        size,
        &agg,
        &filters,
        exact,
        state.deadline(),
    )
    .await?;
    let stats = &scale.stats;
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
