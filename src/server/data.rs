//! Data: raw aggregate grids and the points under a cursor.

use super::{ApiError, AppStateRef, Lane, spec};
use crate::query::View;
use crate::query::points::{self, Attr, Cursor};
use crate::raster::export;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Most cells a JSON aggregate may hold.
pub const MAX_JSON_CELLS: usize = 1 << 18;

/// `GET /datasets/{name}/aggregate`: the raw grid as `.npy` or JSON.
pub async fn aggregate(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let (entry, p) = state.request(&name, q.as_deref(), &spec::AGGREGATE)?;
    let m = &entry.dataset.manifest;
    let bbox = p
        .bbox()?
        .ok_or_else(|| ApiError::bad_request("missing parameter bbox=west,south,east,north"))?;
    let width = p.int(&spec::WIDTH)? as u32;
    let height = p.int(&spec::HEIGHT)? as u32;
    let agg = p.agg(m)?;
    let filters = p.filters(m)?;
    let format = p.word(&spec::FORMAT)?;
    let view = View::viewport(bbox, width, height)?;
    let ncat = agg.grids_per_pixel(m);
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
    limits.check_grid(&view, &agg, m)?;
    let lane = Lane::for_rows(entry.rows_in(view.key_ranges()).await?);
    let a = state
        .compute_on(entry.clone(), lane, state.deadline(), move |cancel| {
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
    let timing = format!(
        "plan;desc=\"{}\", total;dur={:.2}",
        state.config.planner().viewport().name(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let timing = HeaderValue::from_str(&timing).expect("ascii");
    if format == "json" {
        let mut r = Json(export::to_json(&a.grid)).into_response();
        r.headers_mut().insert("server-timing", timing);
        return Ok(r);
    }
    Ok((
        [
            (header::HeaderName::from_static("server-timing"), timing),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"aggregate.npy\""),
            ),
        ],
        export::to_npy(&a.grid),
    )
        .into_response())
}

/// `GET /datasets/{name}/points`: the points near a cursor, nearest first.
pub async fn points(
    State(state): AppStateRef,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (entry, p) = state.request(&name, q.as_deref(), &spec::POINTS)?;
    let m = &entry.dataset.manifest;
    let lon = p.number(&spec::LON)?;
    let lat = p.number(&spec::LAT)?;
    let z = p.int(&spec::ZOOM)? as u32;
    let radius = p.number(&spec::RADIUS_PX)?;
    let limit = p.int(&spec::LIMIT)? as usize;
    let tile_size = p.int(&spec::TILE_SIZE)? as u32;
    let filters = p.filters(m)?;
    let cursor = Cursor {
        lon,
        lat,
        z,
        tile_size,
        radius_px: radius,
        limit,
    };
    let lane = Lane::for_rows(entry.planning(move |ds| cursor.rows_to_read(ds)).await?);
    let found = state
        .compute_on(entry.clone(), lane, state.deadline(), move |cancel| {
            points::nearest(
                &entry.dataset,
                &cursor,
                &filters,
                crate::query::Budget {
                    cancel: Some(cancel),
                    ..Default::default()
                },
            )
        })
        .await??;
    let found: Vec<Value> = found
        .into_iter()
        .map(|f| {
            let attributes: serde_json::Map<String, Value> = f
                .attributes
                .into_iter()
                .map(|(name, v)| {
                    // Integers stay exact: JSON numbers within ±2^53 (what
                    // a JavaScript client reads exactly), strings beyond.
                    const SAFE: u64 = 1 << 53;
                    let v = match v {
                        Attr::Null => Value::Null,
                        Attr::Number(x) => json!(x),
                        Attr::Int(i) if i.unsigned_abs() <= SAFE => json!(i),
                        Attr::Int(i) => json!(i.to_string()),
                        Attr::UInt(u) if u <= SAFE => json!(u),
                        Attr::UInt(u) => json!(u.to_string()),
                        Attr::Time(us) => chrono::DateTime::from_timestamp_micros(us)
                            .map_or(Value::Null, |t| {
                                json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                            }),
                        Attr::Text(t) => json!(t),
                        Attr::Json(j) => j,
                    };
                    (name, v)
                })
                .collect();
            json!({"lon": f.lon, "lat": f.lat, "distance_px": f.distance_px, "attributes": attributes})
        })
        .collect();
    Ok(Json(json!({"points": found})))
}
