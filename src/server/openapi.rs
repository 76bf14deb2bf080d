//! The OpenAPI 3.1 description of the HTTP API, served at `/openapi.json`.
//!
//! The document is the contract that `scripts/schemathesis.sh` checks the
//! server against, so it is built from the served catalog: dataset names,
//! histogram columns, aggregations and filters are enumerated or given as
//! patterns of exactly what this server accepts. What a schema cannot say
//! (a bbox's west below its east, a range's min below its max) is in each
//! parameter's description, and the test's hooks keep generated requests
//! to it.

use super::{AppState, Catalog};
use crate::geo::MAX_ZOOM;
use crate::query::histogram::MAX_BINS;
use crate::shade::Colormap;
use crate::store::ColumnKind;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn req(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": true, "description": desc, "schema": schema})
}

fn path(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": schema})
}

/// A regular expression matching `s` literally.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn one_of(items: &BTreeSet<String>) -> String {
    let v: Vec<String> = items.iter().map(|s| literal(s)).collect();
    format!("({})", v.join("|"))
}

const NUM: &str = r"-?[0-9]{1,4}(\.[0-9]{1,3})?";
const LON: &str = r"-?(1[0-7][0-9]|[0-9]{1,2})(\.[0-9]{1,3})?";
const LAT: &str = r"-?[0-8]?[0-9](\.[0-9]{1,3})?";
const HEX: &str = r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})";

/// What the served datasets make valid.
#[derive(Default)]
struct Vocabulary {
    names: BTreeSet<String>,
    histogram_columns: BTreeSet<String>,
    aggs: BTreeSet<String>,
    filters: Vec<String>,
}

impl Vocabulary {
    fn of(cat: &Catalog) -> Vocabulary {
        let mut v = Vocabulary::default();
        v.aggs.insert("count".into());
        v.aggs.insert("any".into());
        let (mut ranges, mut times, mut cats) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
        for (name, e) in &cat.datasets {
            v.names.insert(name.clone());
            let cols = &e.dataset.manifest.columns;
            let values: Vec<&str> = cols
                .iter()
                .filter(|c| matches!(c.kind, ColumnKind::Numeric | ColumnKind::Temporal))
                .map(|c| c.name.as_str())
                .collect();
            for c in cols {
                match c.kind {
                    ColumnKind::Numeric => {
                        ranges.insert(c.name.clone());
                    }
                    ColumnKind::Temporal => {
                        times.insert(c.name.clone());
                    }
                    ColumnKind::Categorical => {
                        let labels: BTreeSet<String> = c.categories.iter().cloned().collect();
                        if !labels.is_empty() {
                            cats.push((c.name.clone(), labels));
                        }
                        v.aggs.insert(format!("count_cat:{}", c.name));
                        for val in &values {
                            v.aggs.insert(format!("by:{}:sum:{val}", c.name));
                            v.aggs.insert(format!("by:{}:mean:{val}", c.name));
                        }
                    }
                    _ => continue,
                }
                v.histogram_columns.insert(c.name.clone());
            }
            for val in values {
                for op in ["sum", "mean", "min", "max", "std", "var"] {
                    v.aggs.insert(format!("{op}:{val}"));
                }
            }
        }
        let bound = format!("({NUM})?");
        if !ranges.is_empty() {
            v.filters
                .push(format!("{}:{bound}\\.\\.{bound}", one_of(&ranges)));
        }
        if !times.is_empty() {
            let date = r"(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)?";
            let t = format!("({date}|[0-9]{{1,13}})?");
            v.filters.push(format!("{}:{t}\\.\\.{t}", one_of(&times)));
        }
        for (c, labels) in cats {
            let l = one_of(&labels);
            v.filters.push(format!("{}:in:{l}(,{l})*", literal(&c)));
        }
        v
    }

    fn name(&self) -> Value {
        path(
            "name",
            "Dataset name (its directory's name)",
            json!({"type": "string", "enum": self.names}),
        )
    }

    fn filter(&self) -> Value {
        let pattern = if self.filters.is_empty() {
            "^$(?!x)x".to_string()
        } else {
            format!("^({})$", self.filters.join("|"))
        };
        json!({"name": "filter", "in": "query", "required": false, "explode": true, "style": "form",
            "description": "Repeatable; all must hold. COL:MIN..MAX on a numeric or temporal column (either end may be empty; MIN <= MAX; temporal bounds as epoch milliseconds or ISO 8601 dates and times), or COL:in:A,B on a categorical column.",
            "schema": {"type": "array", "maxItems": 8, "items": {"type": "string", "pattern": pattern}}})
    }

    fn agg(&self) -> Value {
        q(
            "agg",
            "Reduction: count, any, sum:COL, mean:COL, min:COL, max:COL, std:COL, var:COL, count_cat:CAT, by:CAT:sum:COL or by:CAT:mean:COL",
            json!({"type": "string", "enum": self.aggs, "default": "count"}),
        )
    }

    fn render_params(&self) -> Vec<Value> {
        let names: BTreeSet<String> = Colormap::names().iter().map(|s| s.to_string()).collect();
        let cmap = format!("^({}(_r)?|{HEX}(,{HEX})*)$", one_of(&names));
        vec![
            self.agg(),
            q(
                "how",
                "Normalization",
                json!({"type": "string", "enum": ["linear", "log", "cbrt", "eq_hist"], "default": "eq_hist"}),
            ),
            q(
                "cmap",
                "Colormap name (optionally reversed with _r), or a comma-separated list of hex colours",
                json!({"type": "string", "pattern": cmap, "default": "fire"}),
            ),
            q(
                "color_key",
                "Category colours with count_cat/by aggregations: hex colours in category order, or LABEL:COLOUR pairs",
                json!({"type": "string", "pattern": format!("^{HEX}(,{HEX})*$")}),
            ),
            q(
                "span",
                "min,max of the colour scale, min <= max (not with how=eq_hist, as in Datashader)",
                json!({"type": "string", "pattern": format!("^{NUM},{NUM}$")}),
            ),
            q(
                "spread",
                "Spread each point by N pixels",
                json!({"type": "integer", "minimum": 0, "maximum": 16, "default": 0}),
            ),
            q(
                "shape",
                "Spread shape",
                json!({"type": "string", "enum": ["circle", "square"], "default": "circle"}),
            ),
            q(
                "dynspread",
                "threshold[,max_px]: Datashader's dynspread (threshold 0..=1, max_px 0..=16)",
                json!({"type": "string", "pattern": r"^(0(\.[0-9]{1,3})?|1)(,([0-9]|1[0-6]))?$"}),
            ),
            q(
                "scale",
                "zoom: one colour scale per zoom level (seamless); tile: per tile (Datashader)",
                json!({"type": "string", "enum": ["zoom", "tile"], "default": "zoom"}),
            ),
            q(
                "tile_size",
                "Tile side in pixels",
                json!({"type": "integer", "enum": [256, 512], "default": 256}),
            ),
            q(
                "background",
                "Opaque background colour",
                json!({"type": "string", "pattern": format!("^{HEX}$")}),
            ),
            q(
                "alpha",
                "Alpha of coloured pixels",
                json!({"type": "integer", "minimum": 0, "maximum": 255, "default": 255}),
            ),
            q(
                "min_alpha",
                "Lowest alpha (single-colour and categorical), at most alpha",
                json!({"type": "integer", "minimum": 0, "maximum": 255, "default": 40}),
            ),
            q(
                "rescale_discrete_levels",
                "Datashader's rescale_discrete_levels for eq_hist",
                json!({"type": "boolean", "default": false}),
            ),
            self.filter(),
        ]
    }
}

fn bbox(required: bool) -> Value {
    let desc = "west,south,east,north in degrees, west < east, south < north; latitudes are clamped to ±85.0511° (the Web Mercator square)";
    let schema = json!({"type": "string", "pattern": format!("^{LON},{LAT},{LON},{LAT}$")});
    if required {
        req("bbox", desc, schema)
    } else {
        q("bbox", desc, schema)
    }
}

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok_json(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"type": "object"}}}})
}

/// Responses shared by every dataset endpoint, plus `extra`.
fn responses(ok: Value, extra: &[&str]) -> Value {
    let mut r = json!({
        "200": ok,
        "400": err("Invalid parameter (the message names it and the valid choices)"),
        "404": err("No such dataset, column or endpoint"),
        "414": err("Query string too long"),
        "431": err("Request headers too large"),
        "503": err("Overloaded, past the deadline, or the dataset's files changed in place"),
    });
    for code in extra {
        r[*code] = match *code {
            "304" => json!({"description": "Not modified (ETag)"}),
            "413" => err(
                "Over a request budget (grid × categories, JSON cells); the message names the limit",
            ),
            _ => err("Error"),
        };
    }
    r
}

/// The document for the served catalog.
pub fn document(cat: &Catalog) -> Value {
    let v = Vocabulary::of(cat);
    let name = v.name();
    let max_coord = (1u64 << MAX_ZOOM) - 1;
    let mut tile_params = vec![
        name.clone(),
        path(
            "z",
            "Zoom",
            json!({"type": "integer", "minimum": 0, "maximum": MAX_ZOOM}),
        ),
        path(
            "x",
            "Column, below 2^z",
            json!({"type": "integer", "minimum": 0, "maximum": max_coord}),
        ),
        path(
            "file",
            "{y}.png or {y}@2x.png (512 pixels), y below 2^z",
            json!({"type": "string", "pattern": r"^(0|[1-9][0-9]{0,9})(@2x)?\.png$"}),
        ),
    ];
    tile_params.extend(v.render_params());
    let mut legend_params = vec![
        name.clone(),
        q(
            "z",
            "Zoom whose colour scale to describe",
            json!({"type": "integer", "minimum": 0, "maximum": MAX_ZOOM, "default": 0}),
        ),
    ];
    legend_params.extend(v.render_params());
    let mut tilejson_params = vec![name.clone()];
    tilejson_params.extend(v.render_params());
    let side = |what: &str| {
        q(
            what,
            "Grid side in pixels",
            json!({"type": "integer", "minimum": 1, "maximum": super::data::MAX_AGGREGATE_SIDE, "default": 256}),
        )
    };
    let png = json!({"description": "PNG", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Pointillist", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Datashader-style rendering of large point datasets into XYZ tiles, with histograms, raw aggregates and point lookup. Every error is JSON {\"error\": message}."},
        "paths": {
            "/tiles/{name}/{z}/{x}/{file}": {"get": {"summary": "A PNG tile", "parameters": tile_params,
                "responses": responses(png, &["304", "413"])}},
            "/datasets": {"get": {"summary": "Served datasets", "responses": {"200": ok_json("{datasets: [...]}")}}},
            "/datasets/{name}": {"get": {"summary": "Schema, rows, bounds, categories, statistics", "parameters": [name.clone()], "responses": responses(ok_json("Dataset"), &[])}},
            "/datasets/{name}/tilejson": {"get": {"summary": "TileJSON 3.0 carrying the rendering parameters", "parameters": tilejson_params, "responses": responses(ok_json("TileJSON"), &[])}},
            "/datasets/{name}/histogram/{column}": {"get": {"summary": "Crossfilter histogram: all filters but the column's own", "parameters": [
                name.clone(),
                path("column", "A numeric, temporal or categorical column", json!({"type": "string", "enum": v.histogram_columns})),
                q("bins", "Bins for numeric and temporal columns", json!({"type": "integer", "minimum": 1, "maximum": MAX_BINS, "default": 50})),
                bbox(false), v.filter()], "responses": responses(ok_json("Histogram"), &[])}},
            "/datasets/{name}/count": {"get": {"summary": "Rows in the bbox passing all filters", "parameters": [name.clone(), bbox(false), v.filter()], "responses": responses(ok_json("{count, total}"), &[])}},
            "/datasets/{name}/aggregate": {"get": {"summary": "The raw aggregate grid (row 0 = north)", "parameters": [
                name.clone(), bbox(true), side("width"), side("height"), v.agg(),
                q("format", "npy, or json (at most 262,144 cells × categories)", json!({"type": "string", "enum": ["npy", "json"], "default": "npy"})),
                v.filter()],
                "responses": responses(json!({"description": "NumPy .npy or JSON", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "application/json": {"schema": {"type": "object"}}}}), &["413"])}},
            "/datasets/{name}/points": {"get": {"summary": "Points under the cursor, nearest first", "parameters": [
                name.clone(),
                req("lon", "Longitude", json!({"type": "number", "minimum": -180, "maximum": 180})),
                req("lat", "Latitude", json!({"type": "number", "minimum": -90, "maximum": 90})),
                q("z", "Zoom", json!({"type": "integer", "minimum": 0, "maximum": MAX_ZOOM, "default": 0})),
                q("radius_px", "Search radius in pixels", json!({"type": "number", "minimum": 0, "maximum": 64, "default": 8})),
                q("limit", "Most points returned", json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 5})),
                q("tile_size", "Tile side the zoom refers to", json!({"type": "integer", "enum": [256, 512], "default": 256})),
                v.filter()], "responses": responses(ok_json("{points: [...]}"), &[])}},
            "/datasets/{name}/legend": {"get": {"summary": "Colour bar or category key", "parameters": legend_params, "responses": responses(ok_json("Legend"), &[])}},
            "/health": {"get": {"summary": "Liveness", "responses": {"200": ok_json("{status: ok}")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok_json("OpenAPI 3.1")}}},
            "/admin/reload": {"post": {"summary": "Rescan dataset directories (Bearer token)", "security": [{"bearer": []}],
                "responses": {"200": ok_json("{datasets, errors}"), "401": err("Missing or wrong token"), "403": err("Reload disabled: no admin token configured")}}},
        },
        "components": {
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

/// `GET /openapi.json`.
pub async fn openapi(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(document(&state.catalog.load()))
}
