//! The OpenAPI 3.1 description of the HTTP API, served at `/openapi.json`.
//!
//! The document is the contract that `scripts/schemathesis.sh` checks the
//! server against, so it is built from the served catalog: dataset names,
//! histogram columns, aggregations and filters are enumerated or given as
//! patterns of exactly what this server accepts. What a schema cannot say
//! (a bbox's west below its east, a range's min below its max) is in each
//! parameter's description, and the test's hooks keep generated requests
//! to it.

use super::spec::{self, Endpoint, Grammar, Kind, Param};
use super::{AppState, Catalog};
use crate::geo::MAX_ZOOM;
use crate::query::MAX_FILTERS;
use crate::shade::Colormap;
use crate::store::ColumnKind;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

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
    brush_columns: BTreeSet<String>,
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
        v.brush_columns = ranges.union(&times).cloned().collect();
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

    /// The schema of a text grammar, from what the catalog accepts.
    fn grammar(&self, g: Grammar) -> Value {
        let pattern = |p: String| json!({"type": "string", "pattern": p});
        match g {
            Grammar::Agg => json!({"type": "string", "enum": self.aggs}),
            Grammar::Filter => pattern(if self.filters.is_empty() {
                "^$(?!x)x".to_string()
            } else {
                format!("^({})$", self.filters.join("|"))
            }),
            Grammar::Cmap => {
                let names: BTreeSet<String> =
                    Colormap::names().iter().map(|s| s.to_string()).collect();
                pattern(format!("^({}(_r)?|{HEX}(,{HEX})*)$", one_of(&names)))
            }
            Grammar::ColorKey => pattern(format!("^{HEX}(,{HEX})*$")),
            Grammar::Span => pattern(format!("^{NUM},{NUM}$")),
            Grammar::Dynspread => pattern(r"^(0(\.[0-9]{1,3})?|1)(,([0-9]|1[0-6]))?$".into()),
            Grammar::Colour => pattern(format!("^{HEX}$")),
            Grammar::Bbox => pattern(format!("^{LON},{LAT},{LON},{LAT}$")),
            Grammar::Brush => pattern(if self.brush_columns.is_empty() {
                "^$(?!x)x".to_string()
            } else {
                format!(
                    "^{}:[1-9][0-9]{{0,8}}(e-?[0-9]{{1,2}})?$",
                    one_of(&self.brush_columns)
                )
            }),
            Grammar::Version => pattern(format!("^[0-9a-f]{{1,{}}}$", spec::MAX_VERSION_LEN)),
        }
    }

    /// One query parameter, from its declaration.
    fn param(&self, p: &Param) -> Value {
        let schema = match p.kind {
            Kind::Int { min, max, default } => {
                json!({"type": "integer", "minimum": min, "maximum": max, "default": default})
            }
            Kind::IntOf { values, default } => {
                json!({"type": "integer", "enum": values, "default": default})
            }
            Kind::Number { min, max, default } => {
                let mut s = json!({"type": "number", "minimum": min, "maximum": max});
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
            Kind::Word { values, default } => {
                json!({"type": "string", "enum": values, "default": default})
            }
            Kind::Bool { default } => json!({"type": "boolean", "default": default}),
            Kind::Text {
                grammar, default, ..
            } => {
                let mut s = self.grammar(grammar);
                if let Some(d) = default {
                    s["default"] = json!(d);
                }
                s
            }
        };
        let mut out = json!({"name": p.name, "in": "query", "required": p.required(),
            "description": p.desc, "schema": schema});
        if p.repeated() {
            out["schema"] =
                json!({"type": "array", "maxItems": MAX_FILTERS, "items": out["schema"].take()});
            out["explode"] = json!(true);
            out["style"] = json!("form");
        }
        out
    }

    /// `name` and then the endpoint's query parameters.
    fn params(&self, path_params: &[Value], e: &Endpoint) -> Vec<Value> {
        let mut out = vec![self.name()];
        out.extend(path_params.iter().cloned());
        out.extend(e.params().map(|p| self.param(p)));
        out
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
            "204" => {
                json!({"description": "No row of the dataset in this tile: nothing to draw (`empty_tiles = \"png\"` answers a transparent PNG instead)"})
            }
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
    let max_coord = (1u64 << MAX_ZOOM) - 1;
    let tile_params = v.params(
        &[
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
                "{y}.png or {y}@2x.png (512 pixels), y below 2^z; .webp for lossless WebP",
                json!({"type": "string", "pattern": r"^(0|[1-9][0-9]{0,9})(@2x)?\.(png|webp)$"}),
            ),
        ],
        &spec::TILE,
    );
    let column = path(
        "column",
        "A numeric, temporal or categorical column",
        json!({"type": "string", "enum": v.histogram_columns}),
    );
    let png = json!({"description": "PNG, or lossless WebP for .webp", "content": {
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/webp": {"schema": {"type": "string", "format": "binary"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Pointillist", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Datashader-style rendering of large point datasets into XYZ tiles, with histograms, raw aggregates and point lookup. Every error is JSON {\"error\": message}."},
        "paths": {
            "/tiles/{name}/{z}/{x}/{file}": {"get": {"summary": "A PNG or WebP tile", "parameters": tile_params,
                "responses": responses(png, &["204", "304", "413"])}},
            "/datasets": {"get": {"summary": "Served datasets", "responses": {"200": ok_json("{datasets: [...]}")}}},
            "/datasets/{name}": {"get": {"summary": "Schema, rows, bounds, categories, statistics", "parameters": v.params(&[], &spec::NONE), "responses": responses(ok_json("Dataset"), &[])}},
            "/datasets/{name}/tilejson": {"get": {"summary": "TileJSON 3.0 carrying the rendering parameters", "parameters": v.params(&[], &spec::TILEJSON), "responses": responses(ok_json("TileJSON"), &[])}},
            "/datasets/{name}/histogram/{column}": {"get": {"summary": "Crossfilter histogram: all filters but the column's own", "parameters": v.params(&[column], &spec::HISTOGRAM), "responses": responses(ok_json("Histogram"), &[])}},
            "/datasets/{name}/count": {"get": {"summary": "Rows in the bbox passing all filters", "parameters": v.params(&[], &spec::COUNT), "responses": responses(ok_json("{count, total}"), &[])}},
            "/datasets/{name}/aggregate": {"get": {"summary": "The raw aggregate grid (row 0 = north)", "parameters": v.params(&[], &spec::AGGREGATE),
                "responses": responses(json!({"description": "NumPy .npy or JSON", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "application/json": {"schema": {"type": "object"}}}}), &["413"])}},
            "/datasets/{name}/points": {"get": {"summary": "Points under the cursor, nearest first", "parameters": v.params(&[], &spec::POINTS), "responses": responses(ok_json("{points: [...]}"), &[])}},
            "/datasets/{name}/legend": {"get": {"summary": "Colour bar or category key", "parameters": v.params(&[], &spec::LEGEND), "responses": responses(ok_json("Legend"), &[])}},
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
