//! The explorer's static files, embedded in the binary (no CDN, works offline).

use super::ApiError;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../../web/index.html");

/// Every file under `web/` but `index.html`, by path relative to `web/`.
pub const FILES: &[(&str, &[u8])] = &[
    ("api.js", include_bytes!("../../web/api.js")),
    ("app.js", include_bytes!("../../web/app.js")),
    ("basemap.js", include_bytes!("../../web/basemap.js")),
    ("format.js", include_bytes!("../../web/format.js")),
    ("histogram.js", include_bytes!("../../web/histogram.js")),
    ("screenshot.png", include_bytes!("../../web/screenshot.png")),
    ("state.js", include_bytes!("../../web/state.js")),
    ("style.css", include_bytes!("../../web/style.css")),
    (
        "vendor/LICENSES.md",
        include_bytes!("../../web/vendor/LICENSES.md"),
    ),
    (
        "vendor/countries-110m.json",
        include_bytes!("../../web/vendor/countries-110m.json"),
    ),
    (
        "vendor/licenses/maplibre-gl.LICENSE.txt",
        include_bytes!("../../web/vendor/licenses/maplibre-gl.LICENSE.txt"),
    ),
    (
        "vendor/licenses/topojson-client.LICENSE.txt",
        include_bytes!("../../web/vendor/licenses/topojson-client.LICENSE.txt"),
    ),
    (
        "vendor/licenses/world-atlas.LICENSE.txt",
        include_bytes!("../../web/vendor/licenses/world-atlas.LICENSE.txt"),
    ),
    (
        "vendor/maplibre-gl.css",
        include_bytes!("../../web/vendor/maplibre-gl.css"),
    ),
    (
        "vendor/maplibre-gl.js",
        include_bytes!("../../web/vendor/maplibre-gl.js"),
    ),
    (
        "vendor/topojson-client.min.js",
        include_bytes!("../../web/vendor/topojson-client.min.js"),
    ),
    (
        "vendor/update.sh",
        include_bytes!("../../web/vendor/update.sh"),
    ),
];

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "md" | "txt" | "sh" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /`: the explorer.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /static/{*path}`.
pub async fn file(Path(path): Path<String>) -> Result<Response, ApiError> {
    let (name, body) = FILES
        .iter()
        .find(|(n, _)| *n == path)
        .ok_or_else(|| ApiError::not_found(format!("no static file {path:?}")))?;
    let mut r = body.to_vec().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_web_file_is_embedded() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    if p.file_name().unwrap() != "node_modules" {
                        walk(&p, out);
                    }
                } else {
                    out.push(
                        p.strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/web"))
                            .unwrap()
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        let mut found = Vec::new();
        walk(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/web")),
            &mut found,
        );
        for f in found.iter().filter(|f| *f != "index.html") {
            assert!(
                super::FILES.iter().any(|(n, _)| n == f),
                "web/{f} is not embedded in src/server/assets.rs"
            );
        }
        assert_eq!(found.len() - 1, super::FILES.len());
    }
}
