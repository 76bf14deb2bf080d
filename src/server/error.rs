//! API errors: a status code and a JSON body `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message (lists valid options where there are some).
    pub message: String,
}

impl ApiError {
    /// A 400 Bad Request.
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: m.into(),
        }
    }

    /// A 404 Not Found.
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: m.into(),
        }
    }

    /// A 503 Service Unavailable (overload, deadline).
    pub fn unavailable(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: m.into(),
        }
    }

    /// A 500 Internal Server Error.
    pub fn internal(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: m.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({"error": self.message})),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        r
    }
}

impl From<crate::query::QueryError> for ApiError {
    fn from(e: crate::query::QueryError) -> Self {
        use crate::query::QueryError as Q;
        match e {
            Q::Cancelled => ApiError::unavailable("request cancelled: deadline passed"),
            Q::UnknownColumn { .. } => ApiError::bad_request(e.to_string()),
            Q::TooLarge { .. } => ApiError {
                status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                message: e.to_string(),
            },
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<crate::shade::ShadeError> for ApiError {
    fn from(e: crate::shade::ShadeError) -> Self {
        use crate::shade::ShadeError as S;
        match e {
            S::Png(_) | S::Webp(_) => ApiError::internal(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<crate::render::RenderError> for ApiError {
    fn from(e: crate::render::RenderError) -> Self {
        match e {
            crate::render::RenderError::Query(q) => q.into(),
            crate::render::RenderError::Shade(s) => s.into(),
        }
    }
}
