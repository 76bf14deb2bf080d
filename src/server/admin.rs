//! Admin: `POST /admin/reload`.

use super::{ApiError, AppStateRef, Catalog};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use sha2::Digest;
use std::sync::Arc;

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
    let objects = state.objects.clone();
    let cat = tokio::task::spawn_blocking(move || Catalog::load(&roots, Some(&previous), &objects))
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
