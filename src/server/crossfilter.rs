//! Crossfilter: linked histograms and counts under the brushes' filters.

use super::caches::{Ask, Key, cached};
use super::{ApiError, AppState, AppStateRef, Lane, spec};
use crate::geo::MercatorBox;
use crate::query::Filter;
use crate::query::bitsets::FilterBits;
use crate::query::brush::{BrushGrid, BrushIndex, BrushTarget, brushed_bounds};
use crate::query::histogram::Histogram;
use crate::store::ColumnKind;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

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

/// A crossfilter answer with its `Server-Timing` (`source`: `brush` when a
/// brush index answered, `rows` when the rows were scanned) and the
/// `pointillist_crossfilter_seconds` metric, by source.
fn timed(body: Value, source: &'static str, started: Instant) -> Response {
    let secs = started.elapsed().as_secs_f64();
    metrics::histogram!("pointillist_crossfilter_seconds", "source" => source).record(secs);
    let timing = format!("source;desc=\"{source}\", total;dur={:.2}", secs * 1e3);
    let mut r = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&timing) {
        r.headers_mut().insert("server-timing", v);
    }
    r
}

/// `GET /datasets/{name}/histogram/{column}` with crossfilter semantics.
pub async fn histogram(
    State(state): AppStateRef,
    Path((name, column)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (entry, p) = state.request(&name, q.as_deref(), &spec::HISTOGRAM)?;
    let m = &entry.dataset.manifest;
    let bins = p.int(&spec::BINS)? as usize;
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
    let brush = brush_grid(&p, m)?;
    let t = Instant::now();
    let dl = state.deadline();
    if let Some(grid) = brush.filter(|g| g.column() != column)
        && let Some((lo, hi)) = brushed_bounds(&grid, &filters)
    {
        let target = BrushTarget::Histogram {
            column: &column,
            bins,
        };
        let key = format!("{column}:{bins}");
        let idx = brush_index(&state, &entry, grid, key, target, bbox, &filters, dl).await?;
        if let Some(h) = idx
            .as_deref()
            .and_then(Option::as_ref)
            .and_then(|i| i.histogram(lo, hi))
        {
            return Ok(timed(histogram_json(h), "brush", t));
        }
    }
    let (filters, bits) = filter_bits(&state, &entry, filters, Some(&column), dl).await?;
    let lane = Lane::for_rows(entry.rows_in_bbox(bbox).await?);
    let h = state
        .compute_on(entry.clone(), lane, dl, move |cancel| {
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
    Ok(timed(histogram_json(h), "rows", t))
}

/// Filters as cached bitsets (computed once per filter, a pass over its
/// column; requests for one filter while it runs wait for that pass), except
/// those on `skip` (a histogram's own column, which it ignores). With the
/// bitset cache off, the filters are returned to be tested row by row.
pub(super) async fn filter_bits(
    state: &Arc<AppState>,
    entry: &Arc<super::Entry>,
    filters: Vec<Filter>,
    skip: Option<&str>,
    deadline: Instant,
) -> Result<(Vec<Filter>, Vec<Arc<FilterBits>>), ApiError> {
    if state.config.filter_bits_mb == 0 {
        return Ok((filters, Vec::new()));
    }
    let m = &entry.dataset.manifest;
    let mut bits = Vec::with_capacity(filters.len());
    for f in filters.into_iter().filter(|f| Some(f.column()) != skip) {
        let key = Key::new(entry, Ask::FilterBits(f.to_text(m)));
        let (e, st) = (entry.clone(), state.clone());
        let b = cached(
            &state.filter_bits,
            key,
            "pointillist_filter_mask_seconds",
            async move {
                Ok(st
                    .compute_on(e.clone(), Lane::Heavy, deadline, move |cancel| {
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
) -> Result<Response, ApiError> {
    let (entry, p) = state.request(&name, q.as_deref(), &spec::COUNT)?;
    let m = &entry.dataset.manifest;
    let bbox = p.bbox()?;
    let filters = p.filters(m)?;
    let total = m.rows;
    let brush = brush_grid(&p, m)?;
    let t = Instant::now();
    let dl = state.deadline();
    if let Some(grid) = brush
        && let Some((lo, hi)) = brushed_bounds(&grid, &filters)
    {
        let target = BrushTarget::Count;
        let idx = brush_index(
            &state,
            &entry,
            grid,
            "count".into(),
            target,
            bbox,
            &filters,
            dl,
        )
        .await?;
        if let Some(n) = idx
            .as_deref()
            .and_then(Option::as_ref)
            .and_then(|i| i.count(lo, hi))
        {
            return Ok(timed(json!({"count": n, "total": total}), "brush", t));
        }
    }
    let (filters, bits) = filter_bits(&state, &entry, filters, None, dl).await?;
    let lane = Lane::for_rows(entry.rows_in_bbox(bbox).await?);
    let n = state
        .compute_on(entry.clone(), lane, dl, move |cancel| {
            crate::query::histogram::count(
                &entry.dataset,
                bbox.as_ref(),
                &filters,
                &bits,
                Some(cancel),
            )
        })
        .await??;
    Ok(timed(json!({"count": n, "total": total}), "rows", t))
}

/// The `brush` parameter's grid, if given and fine enough to index.
fn brush_grid(
    p: &super::params::Params,
    m: &crate::store::Manifest,
) -> Result<Option<BrushGrid>, ApiError> {
    let Some(text) = p.get(spec::BRUSH.name) else {
        return Ok(None);
    };
    let (column, step) = text.split_once(':').ok_or_else(|| {
        ApiError::bad_request(format!(
            "brush must be COL:STEP (a numeric or temporal column and a positive decimal step), got {text:?}"
        ))
    })?;
    Ok(BrushGrid::new(m, column, step)?)
}

/// The brush index of `target` over `grid` (built once per brushed column
/// and step, target, bbox and other filters; cached in a quarter of
/// `filter_bits_mb`), or `None` when the grid is too fine to index or the
/// cache is off (an index that is not kept costs more than one scan).
#[allow(clippy::too_many_arguments)]
async fn brush_index(
    state: &Arc<AppState>,
    entry: &Arc<super::Entry>,
    grid: BrushGrid,
    target_text: String,
    target: BrushTarget<'_>,
    bbox: Option<MercatorBox>,
    filters: &[Filter],
    deadline: Instant,
) -> Result<Option<Arc<Option<BrushIndex>>>, ApiError> {
    if state.config.filter_bits_mb == 0 {
        return Ok(None);
    }
    let m = &entry.dataset.manifest;
    let own = match target {
        BrushTarget::Histogram { column, .. } => Some(column.to_string()),
        BrushTarget::Count => None,
    };
    let others: Vec<Filter> = filters
        .iter()
        .filter(|f| f.column() != grid.column() && Some(f.column()) != own.as_deref())
        .cloned()
        .collect();
    let key = Key::new(
        entry,
        Ask::Brush {
            target: target_text,
            bbox: bbox.map(|b| format!("{},{},{},{}", b.xmin, b.ymin, b.xmax, b.ymax)),
            brush: format!("{}:{}", grid.column(), grid.step_text()),
            filters: super::caches::filter_texts(&others, m),
        },
    );
    let (st, e) = (state.clone(), entry.clone());
    let bins = match target {
        BrushTarget::Histogram { bins, .. } => bins,
        BrushTarget::Count => 0,
    };
    let idx = cached(
        &state.brushes,
        key,
        "pointillist_brush_index_seconds",
        async move {
            let (filters, bits) = filter_bits(&st, &e, others, own.as_deref(), deadline).await?;
            let lane = Lane::for_rows(e.rows_in_bbox(bbox).await?);
            Ok(st
                .compute_on(e.clone(), lane, deadline, move |cancel| {
                    let target = match &own {
                        Some(column) => BrushTarget::Histogram { column, bins },
                        None => BrushTarget::Count,
                    };
                    BrushIndex::build(
                        &e.dataset,
                        grid,
                        target,
                        bbox.as_ref(),
                        &filters,
                        &bits,
                        Some(cancel),
                    )
                })
                .await??)
        },
    )
    .await?;
    Ok(Some(idx))
}
