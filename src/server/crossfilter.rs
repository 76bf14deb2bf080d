//! Crossfilter: linked histograms and counts under the brushes' filters.

use super::caches::{Ask, Key, cached};
use super::{ApiError, AppState, AppStateRef, Lane, spec};
use crate::query::Filter;
use crate::query::bitsets::FilterBits;
use crate::query::histogram::Histogram;
use crate::query::rows_in_bbox;
use crate::store::ColumnKind;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
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

/// `GET /datasets/{name}/histogram/{column}` with crossfilter semantics.
pub async fn histogram(
    State(state): AppStateRef,
    Path((name, column)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
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
    let t = Instant::now();
    let dl = state.deadline();
    let (filters, bits) = filter_bits(&state, &entry, filters, Some(&column), dl).await?;
    let lane = Lane::for_rows(rows_in_bbox(&entry.dataset, bbox.as_ref()));
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
    metrics::histogram!("pointillist_crossfilter_seconds").record(t.elapsed().as_secs_f64());
    Ok(Json(histogram_json(h)))
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
) -> Result<Json<Value>, ApiError> {
    let (entry, p) = state.request(&name, q.as_deref(), &spec::COUNT)?;
    let m = &entry.dataset.manifest;
    let bbox = p.bbox()?;
    let filters = p.filters(m)?;
    let total = m.rows;
    let dl = state.deadline();
    let (filters, bits) = filter_bits(&state, &entry, filters, None, dl).await?;
    let lane = Lane::for_rows(rows_in_bbox(&entry.dataset, bbox.as_ref()));
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
    Ok(Json(json!({"count": n, "total": total})))
}
