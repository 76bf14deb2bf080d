//! The OpenAPI 3.1 description of the HTTP API, served at `/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn req(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": true, "description": desc, "schema": schema})
}

fn path(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

fn filter() -> Value {
    json!({"name": "filter", "in": "query", "required": false, "explode": true,
        "description": "Repeatable. COL:MIN..MAX (numeric; temporal as epoch ms or ISO dates; either end may be empty) or COL:in:A,B (categorical).",
        "schema": {"type": "array", "items": {"type": "string"}}})
}

fn render_params() -> Vec<Value> {
    vec![
        q(
            "agg",
            "count, any, sum:COL, mean:COL, min:COL, max:COL, std:COL, var:COL, count_cat:COL, by:CAT:sum:COL, by:CAT:mean:COL",
            json!({"type": "string", "default": "count"}),
        ),
        q(
            "how",
            "linear, log, cbrt or eq_hist",
            json!({"type": "string", "default": "eq_hist"}),
        ),
        q(
            "cmap",
            "Colormap name (fire, bmy, bgy, kbc, kb, gray, dimgray, viridis, inferno, magma, plasma, cividis, …), a single colour, or a comma-separated list of hex colours",
            json!({"type": "string", "default": "fire"}),
        ),
        q(
            "color_key",
            "Category colours: hex list in category order, or LABEL:COLOUR pairs",
            json!({"type": "string"}),
        ),
        q(
            "span",
            "min,max of the colour scale (not with eq_hist)",
            json!({"type": "string"}),
        ),
        q(
            "spread",
            "Spread each point by N pixels",
            json!({"type": "integer", "minimum": 0, "maximum": 16, "default": 0}),
        ),
        q(
            "shape",
            "circle or square",
            json!({"type": "string", "default": "circle"}),
        ),
        q(
            "dynspread",
            "threshold[,max_px]: Datashader's dynspread",
            json!({"type": "string"}),
        ),
        q(
            "scale",
            "zoom: one colour scale per zoom level (seamless); tile: per tile (Datashader)",
            json!({"type": "string", "default": "zoom"}),
        ),
        q(
            "tile_size",
            "256 or 512",
            json!({"type": "integer", "default": 256}),
        ),
        q(
            "background",
            "Opaque background colour",
            json!({"type": "string"}),
        ),
        q(
            "alpha",
            "Alpha of coloured pixels",
            json!({"type": "integer", "default": 255}),
        ),
        q(
            "min_alpha",
            "Lowest alpha (single-colour and categorical)",
            json!({"type": "integer", "default": 40}),
        ),
        q(
            "rescale_discrete_levels",
            "Datashader's rescale_discrete_levels for eq_hist",
            json!({"type": "boolean", "default": false}),
        ),
        filter(),
    ]
}

fn err() -> Value {
    json!({"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok_json(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"type": "object"}}}})
}

/// The document.
pub fn document() -> Value {
    let name = path("name", "Dataset name");
    let mut tile_params = vec![
        name.clone(),
        path("z", "Zoom, 0..=30"),
        path("x", "Column, 0..2^z"),
        path("file", "{y}.png or {y}@2x.png"),
    ];
    tile_params.extend(render_params());
    let mut legend_params = vec![
        name.clone(),
        q(
            "z",
            "Zoom whose colour scale to describe",
            json!({"type": "integer", "default": 0}),
        ),
    ];
    legend_params.extend(render_params());
    let mut tilejson_params = vec![name.clone()];
    tilejson_params.extend(render_params());
    let bbox = q(
        "bbox",
        "west,south,east,north in degrees",
        json!({"type": "string"}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Pointillist", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Datashader-style rendering of large point datasets into XYZ tiles, with histograms, raw aggregates and point lookup."},
        "paths": {
            "/tiles/{name}/{z}/{x}/{file}": {"get": {"summary": "A PNG tile", "parameters": tile_params,
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, "304": {"description": "Not modified (ETag)"}, "400": err(), "404": err(), "503": err()}}},
            "/datasets": {"get": {"summary": "Served datasets", "responses": {"200": ok_json("{datasets: [...]}")}}},
            "/datasets/{name}": {"get": {"summary": "Schema, rows, bounds, categories, statistics", "parameters": [name.clone()], "responses": {"200": ok_json("Dataset"), "404": err()}}},
            "/datasets/{name}/tilejson": {"get": {"summary": "TileJSON 3.0 carrying the rendering parameters", "parameters": tilejson_params, "responses": {"200": ok_json("TileJSON"), "400": err(), "404": err()}}},
            "/datasets/{name}/histogram/{column}": {"get": {"summary": "Crossfilter histogram: all filters but the column's own", "parameters": [name.clone(), path("column", "Column"), q("bins", "Bins for numeric/temporal columns (1..=1000)", json!({"type": "integer", "default": 50})), bbox.clone(), filter()], "responses": {"200": ok_json("Histogram"), "400": err(), "404": err()}}},
            "/datasets/{name}/count": {"get": {"summary": "Rows in the bbox passing all filters", "parameters": [name.clone(), bbox.clone(), filter()], "responses": {"200": ok_json("{count, total}"), "400": err()}}},
            "/datasets/{name}/aggregate": {"get": {"summary": "The raw aggregate grid (row 0 = north)", "parameters": [name.clone(), req("bbox", "west,south,east,north in degrees", json!({"type": "string"})), q("width", "1..=4096", json!({"type": "integer", "default": 256})), q("height", "1..=4096", json!({"type": "integer", "default": 256})), q("agg", "Aggregation", json!({"type": "string"})), q("format", "npy or json", json!({"type": "string", "default": "npy"})), filter()],
                "responses": {"200": {"description": "NumPy .npy or JSON", "content": {"application/octet-stream": {}, "application/json": {}}}, "400": err()}}},
            "/datasets/{name}/points": {"get": {"summary": "Points under the cursor, nearest first", "parameters": [name.clone(), req("lon", "Longitude", json!({"type": "number"})), req("lat", "Latitude", json!({"type": "number"})), q("z", "Zoom (256-px tiles)", json!({"type": "integer"})), q("radius_px", "Search radius in pixels", json!({"type": "number", "default": 8})), q("limit", "1..=100", json!({"type": "integer", "default": 5})), filter()], "responses": {"200": ok_json("{points: [...]}"), "400": err()}}},
            "/datasets/{name}/legend": {"get": {"summary": "Colour bar or category key", "parameters": legend_params, "responses": {"200": ok_json("Legend"), "400": err()}}},
            "/health": {"get": {"summary": "Liveness", "responses": {"200": ok_json("{status: ok}")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain"}}}},
            "/admin/reload": {"post": {"summary": "Rescan dataset directories (Bearer token)", "security": [{"bearer": []}], "responses": {"200": ok_json("{datasets, errors}"), "401": err(), "403": err()}}},
        },
        "components": {
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

/// `GET /openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}
