//! The HTTP API on the real router: every endpoint, bad input, caching,
//! concurrency and reload under load.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use pointillist::server::{AppState, ServerConfig, router};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

struct Srv {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    root: std::path::PathBuf,
}

fn server_with(f: impl FnOnce(&mut ServerConfig)) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    common::packed_towers(&root, "towers", 20_000, 1);
    let mut config = ServerConfig {
        datasets: vec![root.clone()],
        admin_token: Some("s3cret".into()),
        ..ServerConfig::default()
    };
    f(&mut config);
    Srv {
        _dir: dir,
        state: AppState::new(config),
        root,
    }
}

fn server() -> Srv {
    server_with(|_| {})
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn error_or_body(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("error field")
            .to_string()
    }
}

async fn send(s: &Srv, req: Request<Body>) -> Resp {
    let r = router(s.state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(s: &Srv, uri: &str) -> Resp {
    send(s, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn decode_png(b: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut d = png::Decoder::new(std::io::Cursor::new(b));
    d.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut r = d.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn opaque_pixels(rgba: &[u8]) -> usize {
    rgba.chunks(4).filter(|p| p[3] > 0).count()
}

// New York at z8 is tile 75/96.
const NY_TILE: &str = "/tiles/towers/8/75/96.png";

/// The tile holding New York (where the fixture's rows are) at zoom `z` ≤ 8.
fn ny_tile(z: u32) -> String {
    format!("/tiles/towers/{z}/{}/{}.png", 75 >> (8 - z), 96 >> (8 - z))
}

#[tokio::test]
async fn health_datasets_and_openapi() {
    let s = server();
    let r = get(&s, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    let r = get(&s, "/datasets").await;
    let d = &r.json()["datasets"][0];
    assert_eq!(d["name"], "towers");
    assert_eq!(d["rows"], 20_000);
    let cols = d["columns"].as_array().unwrap();
    let radio = cols.iter().find(|c| c["name"] == "radio").unwrap();
    assert_eq!(radio["kind"], "categorical");
    assert_eq!(
        radio["categories"],
        serde_json::json!(["GSM", "LTE", "NR", "UMTS"])
    );
    let created = cols.iter().find(|c| c["name"] == "created").unwrap();
    assert_eq!(created["kind"], "temporal");
    assert!(
        created["min"].as_f64().unwrap() > 1.2e12,
        "temporal stats are epoch ms"
    );
    assert_eq!(
        d["default_histograms"],
        serde_json::json!(["radio", "range", "created"])
    );
    let r = get(&s, "/datasets/towers").await;
    assert_eq!(r.json()["rows"], 20_000);
    let r = get(&s, "/datasets/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("towers"), "lists valid datasets");
    let r = get(&s, "/openapi.json").await;
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/tiles/{name}/{z}/{x}/{file}",
        "/datasets/{name}/histogram/{column}",
        "/datasets/{name}/points",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
    // The contract is built from what is served (scripts/schemathesis.sh
    // checks the server against it).
    let tile = &doc["paths"]["/tiles/{name}/{z}/{x}/{file}"]["get"];
    let param = |op: &Value, n: &str| {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("{n} documented"))["schema"]
            .clone()
    };
    assert_eq!(param(tile, "name")["enum"], serde_json::json!(["towers"]));
    assert_eq!(
        param(tile, "tile_size")["enum"],
        serde_json::json!([256, 512])
    );
    let aggs = param(tile, "agg")["enum"].clone();
    assert!(aggs.as_array().unwrap().contains(&"count_cat:radio".into()));
    assert!(aggs.as_array().unwrap().contains(&"mean:range".into()));
    let filter = param(tile, "filter")["items"]["pattern"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        filter.contains("radio") && filter.contains("created"),
        "{filter}"
    );
    let points = &doc["paths"]["/datasets/{name}/points"]["get"];
    assert!(points["responses"].get("404").is_some());
    assert_eq!(
        param(points, "tile_size")["enum"],
        serde_json::json!([256, 512])
    );
    let r = get(&s, "/no/such/thing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json().get("error").is_some());
}

/// Each endpoint takes exactly the query parameters its OpenAPI entry
/// lists (both come from one declaration per parameter), with the
/// documented defaults and bounds.
#[tokio::test]
async fn the_openapi_document_lists_exactly_what_each_endpoint_takes() {
    let s = server();
    let doc = get(&s, "/openapi.json").await.json();
    // What a request must carry besides the probe.
    let required = |path: &str| match path {
        "/datasets/{name}/aggregate" => "&bbox=-75,40,-73,41.5",
        "/datasets/{name}/points" => "&lon=-74&lat=40.7",
        _ => "",
    };
    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let Some(params) = op["parameters"].as_array() else {
            continue;
        };
        let documented: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        if documented.is_empty() {
            continue;
        }
        let uri = path
            .replace("{name}", "towers")
            .replace("{column}", "radio")
            .replace("{z}/{x}/{file}", "8/75/96.png");
        // An unknown parameter is refused, naming exactly the documented ones.
        let r = get(&s, &format!("{uri}?zz_unknown=1{}", required(path))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        let listed: BTreeSet<String> = r
            .error()
            .split("valid parameters: ")
            .nth(1)
            .unwrap_or_else(|| panic!("{uri}: {}", r.error()))
            .split(", ")
            .map(str::to_string)
            .collect();
        assert_eq!(listed, documented, "{uri}");
        // Each documented default is accepted, each integer bound is
        // enforced one past it.
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            let schema = &p["schema"];
            if let Some(d) = schema.get("default") {
                let v = d.as_str().map_or_else(|| d.to_string(), str::to_string);
                let r = get(&s, &format!("{uri}?{name}={v}{}", required(path))).await;
                assert_eq!(
                    r.status,
                    StatusCode::OK,
                    "{uri} {name}={v}: {}",
                    r.error_or_body()
                );
            }
            if schema["type"] == "integer" {
                if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
                    let r = get(&s, &format!("{uri}?{name}={}{}", max + 1, required(path))).await;
                    assert_eq!(
                        r.status,
                        StatusCode::BAD_REQUEST,
                        "{uri} {name}={}",
                        max + 1
                    );
                    assert!(r.error().contains(name), "{}", r.error());
                }
            }
            probed += 1;
        }
    }
    assert!(probed > 30, "probed {probed} parameters");
    // A required parameter left out is named.
    let r = get(&s, "/datasets/towers/points?lat=40.7").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("lon"), "{}", r.error());
}

#[tokio::test]
async fn tiles_render_cache_and_etag() {
    let s = server();
    let r = get(&s, NY_TILE).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(r.headers["x-cache"], "miss");
    let (w, h, px) = decode_png(&r.body);
    assert_eq!((w, h), (256, 256));
    assert!(opaque_pixels(&px) > 100, "tile has coloured pixels");
    assert!(
        opaque_pixels(&px) < 256 * 256,
        "tile has transparent pixels"
    );
    let etag = r.headers[header::ETAG].to_str().unwrap().to_string();
    assert!(
        r.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    // Second request: a cache hit with the same bytes.
    let r2 = get(&s, NY_TILE).await;
    assert_eq!(r2.headers["x-cache"], "hit");
    assert_eq!(r2.body, r.body);
    // If-None-Match → 304.
    let r3 = send(
        &s,
        Request::get(NY_TILE)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r3.status, StatusCode::NOT_MODIFIED);
    assert!(r3.body.is_empty());
    // Different parameters → different ETag.
    let r4 = get(&s, &format!("{NY_TILE}?how=log&cmap=viridis")).await;
    assert_eq!(r4.status, StatusCode::OK);
    assert_ne!(r4.headers[header::ETAG].to_str().unwrap(), etag);
    // @2x is 512 px; categorical tiles, filters and per-tile scale work.
    let r = get(&s, "/tiles/towers/8/75/96@2x.png").await;
    assert_eq!(decode_png(&r.body).0, 512);
    let r = get(&s, "/tiles/towers/8/75/96.png?agg=count_cat:radio&filter=range:0..2500&filter=radio:in:LTE,NR&scale=tile&spread=1").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(opaque_pixels(&decode_png(&r.body).2) > 50);
    // A tile with no row of the dataset in it is 204 No Content, cacheable,
    // with no body, unless a background colour makes it an image.
    let r = get(&s, "/tiles/towers/8/0/0.png").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert!(r.headers.contains_key(header::ETAG));
    assert!(r.headers.contains_key(header::CACHE_CONTROL));
    assert!(!r.headers.contains_key(header::CONTENT_TYPE));
    let r = get(&s, "/tiles/towers/8/0/0.png?background=%23112233").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        decode_png(&r.body)
            .2
            .chunks(4)
            .all(|p| p == [0x11, 0x22, 0x33, 255])
    );
}

fn decode_webp(b: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut d = image_webp::WebPDecoder::new(std::io::Cursor::new(b)).unwrap();
    assert!(d.has_alpha(), "a tile keeps its alpha");
    let (w, h) = d.dimensions();
    let mut buf = vec![0; d.output_buffer_size().unwrap()];
    d.read_image(&mut buf).unwrap();
    (w, h, buf)
}

/// `.webp` is the same tile in lossless WebP: the same pixels to the byte,
/// its own ETag and cache entry, and TileJSON's `format=webp` names it.
#[tokio::test]
async fn webp_tiles_hold_the_png_pixels() {
    let s = server();
    for q in [
        "",
        "?agg=count_cat:radio&filter=range:0..2500",
        "?how=log&cmap=viridis&spread=1",
    ] {
        let png = get(&s, &format!("{NY_TILE}{q}")).await;
        let webp_url = format!("{}{q}", NY_TILE.replace(".png", ".webp"));
        let webp = get(&s, &webp_url).await;
        assert_eq!(webp.status, StatusCode::OK, "{}", webp.error_or_body());
        assert_eq!(webp.headers[header::CONTENT_TYPE], "image/webp");
        assert_eq!(&webp.body[..4], b"RIFF");
        assert_eq!(&webp.body[8..16], b"WEBPVP8L", "lossless");
        assert_eq!(decode_webp(&webp.body), decode_png(&png.body), "{q}");
        assert_ne!(webp.headers[header::ETAG], png.headers[header::ETAG]);
        assert!(
            webp.headers["server-timing"]
                .to_str()
                .unwrap()
                .contains("webp;dur="),
        );
        // Its own cache entry: a hit returns the WebP, not the PNG.
        let again = get(&s, &webp_url).await;
        assert_eq!(again.headers["x-cache"], "hit");
        assert_eq!(again.body, webp.body);
    }
    let r = get(&s, "/tiles/towers/8/75/96@2x.webp").await;
    assert_eq!(decode_webp(&r.body).0, 512);
    for bad in ["96.WEBP", "96.webp.png.gif", "96.jpg", "96webp"] {
        let r = get(&s, &format!("/tiles/towers/8/75/{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.error().contains(".png or .webp"), "{}", r.error());
    }
    assert_eq!(
        get(&s, "/tiles/towers/8/75/.webp").await.status,
        StatusCode::BAD_REQUEST
    );
    // TileJSON: `format` picks the URLs' extension and is not passed on.
    let version = get(&s, "/datasets/towers").await.json()["version"]
        .as_str()
        .unwrap()
        .to_string();
    let j = get(
        &s,
        "/datasets/towers/tilejson?format=webp&agg=count_cat:radio",
    )
    .await
    .json();
    assert_eq!(j["format"], "webp");
    assert_eq!(
        j["tiles"][0],
        format!("/tiles/towers/{{z}}/{{x}}/{{y}}.webp?agg=count_cat:radio&v={version}")
    );
    let j = get(&s, "/datasets/towers/tilejson?form%61t=webp")
        .await
        .json();
    assert_eq!(
        j["tiles"][0],
        format!("/tiles/towers/{{z}}/{{x}}/{{y}}.webp?v={version}")
    );
    assert_eq!(
        get(&s, "/datasets/towers/tilejson").await.json()["format"],
        "png"
    );
    let r = get(&s, "/datasets/towers/tilejson?format=gif").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// A zoom scale's normalization is cached per way of shading: tiles of one
/// zoom in several styles, asked in turn of one server, have the pixels a
/// server that caches no zoom scale gives each.
#[tokio::test]
async fn normalizations_are_cached_per_way_of_shading() {
    let warm = server();
    let cold = server_with(|c| {
        c.zoom_mb = 0;
        c.cache_mb = 0;
    });
    let styles = [
        "",
        "how=log",
        "how=linear&span=0,50",
        "how=linear&span=0,60",
        "how=linear",
        "rescale_discrete_levels=true",
        "agg=count_cat:radio",
        "agg=count_cat:radio&how=log",
        "agg=count_cat:radio&rescale_discrete_levels=true",
        "filter=range:0..2500",
        "filter=range:0..2500&how=cbrt",
    ];
    for round in 0..2 {
        for q in styles {
            let uri = format!("{NY_TILE}?{q}");
            let a = get(&warm, &uri).await;
            let b = get(&cold, &uri).await;
            assert_eq!(a.status, StatusCode::OK, "{q}: {}", a.error_or_body());
            assert!(
                a.body == b.body,
                "round {round}, {q}: a cached normalization differs"
            );
        }
    }
    let distinct: std::collections::HashSet<Vec<u8>> = {
        let mut v = std::collections::HashSet::new();
        for q in styles {
            v.insert(get(&cold, &format!("{NY_TILE}?{q}")).await.body);
        }
        v
    };
    assert_eq!(
        distinct.len(),
        styles.len(),
        "every style draws its own pixels"
    );
}

/// The first tile of a new query reads its own rows unless it holds a
/// quarter of the dataset: a brush's new filter on every move does not pay
/// a pass over every row per tile. A large tile builds the query's cells,
/// and from then on every low-zoom tile of that query reads them.
#[tokio::test]
async fn small_tiles_of_a_new_query_read_their_rows_and_large_ones_build_cells() {
    // The fixture's rows sit in four cities, a quarter each; 4/7/5 holds
    // the western part of London only, 4/8/5 Paris and the rest of London.
    let s = server_with(|c| c.scale_sample_rows = 1000);
    let ds = pointillist::store::Dataset::open(s.root.join("towers")).unwrap();
    let share = |z, x, y| {
        let v =
            pointillist::query::View::tile(pointillist::geo::TileId::new(z, x, y).unwrap(), 256)
                .unwrap();
        pointillist::query::rows_in(&ds, &v.key_ranges()) as f64 / ds.rows() as f64
    };
    assert!(
        share(4, 7, 5) < 0.25 && share(4, 8, 5) >= 0.25,
        "{} {}",
        share(4, 7, 5),
        share(4, 8, 5)
    );
    let timing = |r: &Resp| r.headers["server-timing"].to_str().unwrap().to_string();
    let q = "filter=range:0..2000";
    let small = get(&s, &format!("/tiles/towers/4/7/5.png?{q}")).await;
    // Its colour scale is sampled, or, where a sample would not be cheaper
    // (pixels too large for its budget), comes from the query's cells: a
    // pass either way, which the cells keep. Never the exact pass over the
    // rows while cells can answer.
    let t = timing(&small);
    assert!(
        t.starts_with("plan;desc=\"rows\", scale;desc=\"sample\"")
            || t.starts_with("plan;desc=\"rows\", scale;desc=\"cells\""),
        "{t}"
    );
    let built = u64::from(t.contains("scale;desc=\"cells\""));
    assert_eq!(s.state.query_cells_cached().await, built);
    let large = get(&s, &format!("/tiles/towers/4/8/5.png?{q}")).await;
    assert!(
        timing(&large).starts_with("plan;desc=\"cells\""),
        "{}",
        timing(&large)
    );
    assert_eq!(s.state.query_cells_cached().await, 1);
    // Now cached, the cells answer the small tile too, with its pixels.
    let again = get(&s, &format!("/tiles/towers/4/7/5.png?{q}&alpha=254")).await;
    assert!(
        timing(&again).starts_with("plan;desc=\"cells\""),
        "{}",
        timing(&again)
    );
    let rows = server_with(|c| {
        c.scale_sample_rows = 1000;
        c.cells_mb = 0;
    });
    for (r, uri) in [
        (&small, format!("/tiles/towers/4/7/5.png?{q}")),
        (&large, format!("/tiles/towers/4/8/5.png?{q}")),
        (&again, format!("/tiles/towers/4/7/5.png?{q}&alpha=254")),
    ] {
        let b = get(&rows, &uri).await;
        assert!(decode_png(&r.body).2 == decode_png(&b.body).2, "{uri}");
    }
}

/// A tile is empty only when no row is in it or within its spread margin:
/// the tile next to the data's edge is drawn once a spread reaches into it,
/// and `empty_tiles = "png"` answers a transparent PNG instead.
#[tokio::test]
async fn empty_tiles_are_204_unless_configured_or_spread_reaches_them() {
    let s = server();
    let ds = pointillist::store::Dataset::open(s.root.join("towers")).unwrap();
    // The easternmost (or westernmost) point, and a zoom at which it lies
    // within 16 pixels of its tile's outer edge: the next tile out is then
    // empty, but a spread of that many pixels reaches into it.
    let points: Vec<(u32, u32)> = ds
        .partitions
        .iter()
        .flat_map(|p| p.qx().iter().copied().zip(p.qy().iter().copied()))
        .collect();
    let east = *points.iter().max().unwrap();
    let west = *points.iter().min().unwrap();
    let (z, x, y, gap) = (4u32..=24)
        .flat_map(|z| {
            let px = |q: u32| (q >> (24 - z)) as u64;
            let e = (px(east.0) % 256 >= 240 && px(east.0) / 256 + 1 < 1 << z).then(|| {
                let x = px(east.0) / 256 + 1;
                (z, x, px(east.1) / 256, (x * 256 - px(east.0)) as u32)
            });
            let w = (px(west.0) % 256 < 16 && px(west.0) >= 256).then(|| {
                (
                    z,
                    px(west.0) / 256 - 1,
                    px(west.1) / 256,
                    (px(west.0) % 256 + 1) as u32,
                )
            });
            e.into_iter().chain(w)
        })
        .next()
        .expect("a zoom puts an outermost point near a tile edge");
    let uri = format!("/tiles/towers/{z}/{x}/{y}.png");
    assert_eq!(get(&s, &uri).await.status, StatusCode::NO_CONTENT);
    let spread = format!("{uri}?spread={gap}&shape=square");
    let r = get(&s, &spread).await;
    assert_eq!(r.status, StatusCode::OK, "{spread}");
    assert!(opaque_pixels(&decode_png(&r.body).2) > 0, "{spread}");
    let short = format!("{uri}?spread={}&shape=square", gap - 1);
    // Whether the key ranges' cover (an upper bound) lets it draw or not,
    // one pixel less reaches nothing.
    let r = get(&s, &short).await;
    assert!(
        r.status == StatusCode::NO_CONTENT || opaque_pixels(&decode_png(&r.body).2) == 0,
        "{short}"
    );
    let png = server_with(|c| c.empty_tiles = pointillist::server::EmptyTiles::Png);
    let r = get(&png, &uri).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(opaque_pixels(&decode_png(&r.body).2), 0);
}

#[tokio::test]
async fn seamless_tiles_share_one_scale() {
    // Under scale=zoom, the same count gets the same colour in every tile.
    let s = server();
    let mut colour_of_count: std::collections::HashMap<u32, [u8; 4]> = Default::default();
    let tile_of = |lon: f64, lat: f64| {
        let (mx, my) = pointillist::geo::lnglat_to_meters(lon, lat);
        let (qx, qy) = pointillist::geo::quantize(mx, my);
        ((qx >> 27) as u64, (qy >> 27) as u64)
    };
    for (x, y) in [
        tile_of(-74.0, 40.7),
        tile_of(2.35, 48.85),
        tile_of(139.7, 35.7),
        tile_of(-0.12, 51.5),
    ] {
        let uri = format!("/tiles/towers/5/{x}/{y}.png?how=linear");
        let (_, _, px) = decode_png(&get(&s, &uri).await.body);
        // Counts per pixel from the tile's own aggregate.
        let ds = pointillist::store::Dataset::open(s.root.join("towers")).unwrap();
        let view =
            pointillist::query::View::tile(pointillist::geo::TileId::new(5, x, y).unwrap(), 256)
                .unwrap();
        let a =
            pointillist::raster::aggregate(&ds, &view, &pointillist::query::Agg::Count, &[], None)
                .unwrap();
        let pointillist::raster::GridValues::Count(counts) = a.grid.values else {
            panic!()
        };
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let p: [u8; 4] = px[i * 4..i * 4 + 4].try_into().unwrap();
            let prev = colour_of_count.entry(c).or_insert(p);
            assert_eq!(*prev, p, "count {c} coloured differently across tiles");
        }
    }
    assert!(colour_of_count.len() > 3);
}

#[tokio::test]
async fn low_zoom_queries_answered_from_query_cells() {
    // Filtered and value queries at z <= 4 come from one pass of query
    // cells; they must draw what aggregating the rows draws.
    let cells = server();
    let rows = server_with(|c| c.cells_mb = 0);
    let queries = [
        "agg=count&how=eq_hist&filter=range:0..2000",
        "agg=count_cat:radio&filter=range:500..",
        "agg=count&how=log&filter=radio:in:LTE,NR&filter=range:100..",
        "agg=max:range&how=linear&cmap=bgy",
        "agg=mean:range&how=linear&cmap=bgy&filter=radio:in:GSM",
    ];
    for q in queries {
        for (z, x, file) in [
            (0, 0, "0.png"),
            (1, 1, "0@2x.png"),
            (2, 2, "1.png"),
            (3, 4, "2@2x.png"),
            (4, 8, "5.png"),
        ] {
            let uri = format!("/tiles/towers/{z}/{x}/{file}?{q}");
            let a = get(&cells, &uri).await;
            let b = get(&rows, &uri).await;
            assert_eq!(a.status, StatusCode::OK, "{uri}");
            assert_eq!(b.status, StatusCode::OK, "{uri}");
            let (pa, pb) = (decode_png(&a.body).2, decode_png(&b.body).2);
            assert_eq!(pa.len(), pb.len());
            if q.contains("mean") {
                // Float sums added in another order may round a colour
                // index differently at a boundary; nothing more.
                let differ = pa
                    .chunks(4)
                    .zip(pb.chunks(4))
                    .filter(|(p, r)| p != r)
                    .count();
                assert!(
                    differ * 1000 <= pa.len() / 4,
                    "{uri}: {differ} pixels differ"
                );
                assert_eq!(opaque_pixels(&pa), opaque_pixels(&pb), "{uri}");
            } else {
                assert!(pa == pb, "{uri}: the cells draw another image");
            }
        }
    }
    assert_eq!(cells.state.query_cells_cached().await, queries.len() as u64);
    assert_eq!(rows.state.query_cells_cached().await, 0);
    // Finer zooms and what the overview answers need no cells.
    let fresh = server();
    for uri in [
        "/tiles/towers/5/9/12.png?agg=count&filter=range:0..2000",
        "/tiles/towers/2/1/1.png?agg=count",
        "/tiles/towers/2/1/1.png?agg=count_cat:radio&filter=radio:in:LTE",
    ] {
        assert_eq!(get(&fresh, uri).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(fresh.state.query_cells_cached().await, 0);
    // Cells that could take more than half the cell cache are not computed.
    let small = server_with(|c| c.cells_mb = 1);
    let ds = pointillist::store::Dataset::open(small.root.join("towers")).unwrap();
    let mut expect = 0;
    for (q, agg) in [
        ("agg=count&filter=range:0..2000", "count"),
        ("agg=mean:range", "mean:range"),
        (
            "agg=count_cat:radio&filter=range:0..2000",
            "count_cat:radio",
        ),
    ] {
        let agg = pointillist::query::Agg::parse(agg).unwrap();
        let fits = pointillist::raster::cells::QueryCells::estimate_bytes(&ds, &agg) <= 1 << 19;
        assert_eq!(small.state.config.planner().cells_fit(&ds, &agg), fits);
        expect += fits as u64;
        let r = get(&small, &format!("/tiles/towers/1/0/0.png?{q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
    }
    assert_eq!(small.state.query_cells_cached().await, expect);
}

#[tokio::test]
async fn histograms_and_counts_from_filter_bitsets() {
    // With the bitset cache on, each filter is evaluated once and reused;
    // the answers are those of testing the rows.
    let bits = server();
    let rows = server_with(|c| c.filter_bits_mb = 0);
    let f1 = "filter=radio:in:LTE,NR&filter=range:100..3000";
    let f2 = "filter=radio:in:LTE,NR&filter=range:100..3000&filter=created:2015-01-01..";
    let bbox = "bbox=-20,30,40,60";
    for uri in [
        format!("/datasets/towers/histogram/range?bins=30&{f1}"),
        format!("/datasets/towers/histogram/radio?{f1}"),
        format!("/datasets/towers/histogram/created?bins=12&{f2}&{bbox}"),
        format!("/datasets/towers/histogram/range?bins=30&{f2}"),
        format!("/datasets/towers/count?{f2}"),
        format!("/datasets/towers/count?{f1}&{bbox}"),
    ] {
        let (a, b) = (get(&bits, &uri).await, get(&rows, &uri).await);
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.json(), b.json(), "{uri}");
    }
    // radio, range and created: one bitset each, however often used.
    assert_eq!(bits.state.filter_bits_cached().await, 3);
    assert_eq!(rows.state.filter_bits_cached().await, 0);
    let n = get(&bits, &format!("/datasets/towers/count?{f2}"))
        .await
        .json()["count"]
        .as_u64()
        .unwrap();
    assert!(n > 0);
}

#[tokio::test]
async fn tile_bad_input() {
    let s = server();
    for (uri, status, needle) in [
        ("/tiles/towers/31/0/0.png", 400, "zoom"),
        ("/tiles/towers/2/4/0.png", 400, "outside"),
        ("/tiles/towers/2/0/4.png", 400, "outside"),
        ("/tiles/towers/-1/0/0.png", 400, "non-negative"),
        ("/tiles/towers/a/0/0.png", 400, "non-negative"),
        ("/tiles/towers/2/0/x.png", 400, "non-negative"),
        ("/tiles/towers/2/0/0.jpg", 400, ".png"),
        ("/tiles/nope/0/0/0.png", 404, "towers"),
        ("/tiles/towers/0/0/0.png?agg=median", 400, "count_cat"),
        ("/tiles/towers/0/0/0.png?agg=mean:nope", 400, "radio"),
        ("/tiles/towers/0/0/0.png?agg=mean:radio", 400, "categorical"),
        ("/tiles/towers/0/0/0.png?cmap=rainbowz", 400, "viridis"),
        ("/tiles/towers/0/0/0.png?how=sqrt", 400, "eq_hist"),
        ("/tiles/towers/0/0/0.png?filter=range", 400, "malformed"),
        (
            "/tiles/towers/0/0/0.png?filter=range:a..b",
            400,
            "malformed",
        ),
        (
            "/tiles/towers/0/0/0.png?filter=radio:1..2",
            400,
            "categorical",
        ),
        ("/tiles/towers/0/0/0.png?filter=nope:in:A", 400, "radio"),
        ("/tiles/towers/0/0/0.png?span=0,10", 400, "eq_hist"),
        ("/tiles/towers/0/0/0.png?spread=99", 400, "spread"),
        ("/tiles/towers/0/0/0.png?tile_size=300", 400, "tile_size"),
        (
            "/tiles/towers/0/0/0.png?colour=red",
            400,
            "unknown parameter",
        ),
    ] {
        let r = get(&s, uri).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{uri}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let e = r.error();
        assert!(
            e.contains(needle),
            "{uri}: error {e:?} should mention {needle:?}"
        );
    }
    let long = format!("/tiles/towers/0/0/0.png?filter={}", "x".repeat(9000));
    assert_eq!(get(&s, &long).await.status, StatusCode::URI_TOO_LONG);
    let big = send(
        &s,
        Request::get("/health")
            .header("x-junk", "y".repeat(20_000))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(big.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn tilejson_carries_parameters() {
    let s = server();
    let r = send(
        &s,
        Request::get("/datasets/towers/tilejson?agg=count_cat:radio&how=log")
            .header(header::HOST, "maps.example:8080")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["tilejson"], "3.0.0");
    // No public_url and no trust_proxy: the client's Host header does not
    // choose the host of the URL (a shared cache would serve it to all).
    let version = get(&s, "/datasets/towers").await.json()["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        j["tiles"][0],
        format!("/tiles/towers/{{z}}/{{x}}/{{y}}.png?agg=count_cat:radio&how=log&v={version}")
    );
    assert_eq!(j["bounds"].as_array().unwrap().len(), 4);
    // A URL of the version served is immutable; another version's (an old
    // TileJSON's, across a swap) gets today's pixels, cached for a while.
    let cache = |r: &Resp| {
        r.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .to_string()
    };
    let tile = "/tiles/towers/2/2/1.png?agg=count_cat:radio&how=log";
    let current = get(&s, &format!("{tile}&v={version}")).await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(cache(&current), "public, max-age=31536000, immutable");
    let old = get(&s, &format!("{tile}&v=0123abcd")).await;
    assert_eq!(old.status, StatusCode::OK);
    assert!(!cache(&old).contains("immutable"), "{}", cache(&old));
    assert_eq!(old.body, current.body);
    assert!(!cache(&get(&s, tile).await).contains("immutable"));
    assert_eq!(
        get(&s, &format!("{tile}&v=XYZ")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&s, "/datasets/towers/tilejson?agg=nope").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&s, "/datasets/towers/tilejson?tile_size=300")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn tilejson_urls_come_from_trusted_sources_only() {
    // The URL before its `?v=VERSION`.
    let tiles = |r: Resp| {
        let url = r.json()["tiles"][0].as_str().unwrap().to_string();
        url.split_once("?v=")
            .expect("a versioned URL")
            .0
            .to_string()
    };
    let hostile = |uri: &str| {
        Request::get(uri)
            .header(header::HOST, "attacker.example:8443")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap()
    };
    let s = server_with(|c| c.public_url = Some("https://tiles.example.com/maps/".into()));
    assert_eq!(
        tiles(send(&s, hostile("/datasets/towers/tilejson")).await),
        "https://tiles.example.com/maps/tiles/towers/{z}/{x}/{y}.png"
    );
    let s = server_with(|c| c.trust_proxy = true);
    assert_eq!(
        tiles(send(&s, hostile("/datasets/towers/tilejson")).await),
        "https://evil.example/tiles/towers/{z}/{x}/{y}.png",
        "trust_proxy: the operator's proxy sets these headers"
    );
    let r = send(
        &s,
        Request::get("/datasets/towers/tilejson")
            .header(header::HOST, "maps.example:8080")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        tiles(r),
        "http://maps.example:8080/tiles/towers/{z}/{x}/{y}.png"
    );
    let bad = ServerConfig {
        public_url: Some("javascript:alert(1)".into()),
        ..ServerConfig::default()
    };
    assert!(bad.validate().is_err());
}

#[tokio::test]
async fn a_copied_dataset_is_served_under_its_directory_name() {
    let s = server();
    // Copy the packed directory: its manifest still says "towers".
    let copy = s.root.join("towers-copy");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(s.root.join("towers")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let r = send(
        &s,
        Request::post("/admin/reload")
            .header(header::AUTHORIZATION, "bearer s3cret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "lowercase scheme (RFC 7235)");
    let names: Vec<String> = get(&s, "/datasets").await.json()["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["towers", "towers-copy"]);
    assert_eq!(
        get(&s, "/datasets/towers-copy").await.json()["name"],
        "towers-copy"
    );
    let tj = get(&s, "/datasets/towers-copy/tilejson").await.json();
    let url = tj["tiles"][0].as_str().unwrap();
    assert_eq!(tj["name"], "towers-copy");
    let version = get(&s, "/datasets/towers-copy").await.json()["version"].clone();
    assert_eq!(
        url,
        format!(
            "/tiles/towers-copy/{{z}}/{{x}}/{{y}}.png?v={}",
            version.as_str().unwrap()
        )
    );
    let tile = url.replace("{z}/{x}/{y}", "8/75/96");
    let (a, b) = (get(&s, &tile).await, get(&s, NY_TILE).await);
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, b.body, "same data, same pixels");
}

#[tokio::test]
async fn every_request_has_a_budget() {
    let s = server_with(|c| c.max_grid_mb = 1);
    // The explorer's own world view: once 2^64 cover cells and an abort.
    let world = "bbox=-180,-85.051129,180,85.051129";
    let world_max = "bbox=-180,-90,180,90";
    for uri in [
        format!("/datasets/towers/count?{world}"),
        format!("/datasets/towers/count?{world_max}"),
        format!("/datasets/towers/histogram/range?{world}"),
        format!("/datasets/towers/histogram/radio?{world_max}&filter=range:100..2000"),
        format!("/datasets/towers/aggregate?{world}&width=64&height=64"),
    ] {
        let r = get(&s, &uri).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let count = get(&s, &format!("/datasets/towers/count?{world}"))
        .await
        .json();
    assert_eq!(count["count"], 20_000, "the whole world holds every point");
    // Grid × categories over budget (1 MiB here): 413 naming the limit,
    // before anything is allocated.
    for uri in [
        "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=1024&height=1024",
        "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=512&height=512&agg=count_cat:radio",
        "/tiles/towers/8/75/96.png?agg=count_cat:radio&tile_size=512",
        "/tiles/towers/8/75/96@2x.png?agg=std:range",
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert!(r.error().contains("max_grid_mb"), "{uri}: {}", r.error());
    }
    // Within budget: a 256-pixel count_cat tile is exactly 1 MiB.
    let r = get(&s, "/tiles/towers/8/75/96.png?agg=count_cat:radio").await;
    assert_eq!(r.status, StatusCode::OK);
    // NaN passes no range check.
    for uri in [
        "/datasets/towers/points?lon=-74&lat=40.7&z=8&radius_px=NaN",
        "/datasets/towers/points?lon=-74&lat=40.7&z=8&radius_px=inf",
        "/datasets/towers/points?lon=NaN&lat=40.7&z=8",
        "/datasets/towers/points?lon=-74&lat=40.7&z=8&tile_size=300",
        "/datasets/towers/legend?tile_size=300",
        "/datasets/towers/legend?agg=count_cat:radio&tile_size=300",
    ] {
        assert_eq!(get(&s, uri).await.status, StatusCode::BAD_REQUEST, "{uri}");
    }
    // The points under a wide cursor at z0 (most of the rows): bounded by
    // `limit`, nearest first.
    let r = get(
        &s,
        "/datasets/towers/points?lon=-74&lat=40.7&z=0&radius_px=64&limit=3",
    )
    .await;
    nearest_first(&r, 3);
}

/// The points of a `/points` answer, checked to be `n`, nearest first.
fn nearest_first(r: &Resp, n: usize) -> Vec<Value> {
    let pts = r.json()["points"].as_array().unwrap().clone();
    assert_eq!(pts.len(), n);
    let d: Vec<f64> = pts
        .iter()
        .map(|p| p["distance_px"].as_f64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "nearest first: {d:?}");
    pts
}

#[tokio::test]
async fn time_filters_may_hold_colons() {
    let s = server();
    // Split at the last colon, this was column "created:2012-01-01..2017-12-31T23"
    // and malformed.
    let r = get(
        &s,
        "/datasets/towers/count?filter=created:2012-01-01..2017-12-31T23:59:59Z",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error_or_body());
    let n = r.json()["count"].as_u64().unwrap();
    let wide = get(&s, "/datasets/towers/count?filter=created:2012-01-01..").await;
    assert!(n > 0 && n <= wide.json()["count"].as_u64().unwrap());
    // A colour key is ignored by non-categorical aggregations (as in
    // Datashader), but must still parse.
    assert_eq!(
        get(&s, "/tiles/towers/8/75/96.png?color_key=%23f00")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, "/tiles/towers/8/75/96.png?color_key=nope")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // The histogram's column is a path segment: an unknown one is 404.
    assert_eq!(
        get(&s, "/datasets/towers/histogram/nope").await.status,
        StatusCode::NOT_FOUND
    );
    // No credentials at all is 401, even with reload disabled.
    let s = server_with(|c| c.admin_token = None);
    let r = send(
        &s,
        Request::post("/admin/reload").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn etags_name_the_data_not_the_process() {
    let s = server();
    let a = get(&s, NY_TILE).await;
    // A restarted server (a new load generation) or a replica on the same
    // files gives the same ETag, so caches in front stay valid.
    let again = AppState::new(ServerConfig {
        datasets: vec![s.root.clone()],
        ..ServerConfig::default()
    });
    let r = router(again)
        .oneshot(Request::get(NY_TILE).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.headers()[header::ETAG], a.headers[header::ETAG]);
    // Anything that changes the pixels changes it.
    for q in [
        "?how=log",
        "?cmap=viridis",
        "?spread=1",
        "?filter=radio:in:LTE",
        "?tile_size=512",
    ] {
        let b = get(&s, &format!("{NY_TILE}{q}")).await;
        assert_ne!(b.headers[header::ETAG], a.headers[header::ETAG], "{q}");
    }
}

#[tokio::test]
async fn whole_column_passes_run_in_the_heavy_lane() {
    let s = server();
    // A new filter's bitset is a pass over its column: heavy. A tile of a
    // few thousand rows: light.
    assert_eq!(
        get(&s, "/datasets/towers/histogram/radio?filter=range:10..4321")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, "/tiles/towers/9/150/192.png?agg=std:range")
            .await
            .status,
        StatusCode::OK
    );
    let m = String::from_utf8(get(&s, "/metrics").await.body).unwrap();
    let lane = |l: &str| {
        m.lines()
            .find(|x| {
                x.starts_with("pointillist_computations_total")
                    && x.contains(&format!("lane=\"{l}\""))
            })
            .and_then(|x| x.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(lane("heavy") >= 1.0 && lane("light") >= 1.0, "{m}");
}

#[tokio::test]
async fn server_timing_names_the_source_of_each_tile() {
    let s = server();
    let timing = |r: &Resp| {
        r.headers
            .get("server-timing")
            .expect("Server-Timing")
            .to_str()
            .unwrap()
            .to_string()
    };
    for (uri, source) in [
        ("/tiles/towers/0/0/0.png", "overview"),
        ("/tiles/towers/2/1/1.png?filter=range:100..2000", "cells"),
        ("/tiles/towers/8/75/96.png?filter=range:100..2000", "rows"),
    ] {
        let t = timing(&get(&s, uri).await);
        assert!(
            t.starts_with(&format!("plan;desc=\"{source}\", scale;desc=\"{source}\""))
                && t.contains("cache;desc=\"miss\""),
            "{uri}: {t}"
        );
        assert!(t.contains("total;dur="), "{t}");
        // A miss says how long its render and its PNG took; a hit did neither.
        assert!(t.contains("render;dur=") && t.contains("png;dur="), "{t}");
        let again = timing(&get(&s, uri).await);
        assert!(
            again.starts_with(&format!("plan;desc=\"{source}\""))
                && again.contains("cache;desc=\"hit\"")
                && !again.contains("render;dur="),
            "{uri}: {again}"
        );
    }
    // Viewports line up with no cells: the planner sends them to the rows.
    for format in ["npy", "json"] {
        let r = get(
            &s,
            &format!(
                "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=20&height=10&format={format}"
            ),
        )
        .await;
        assert!(
            timing(&r).starts_with("plan;desc=\"rows\""),
            "{}",
            timing(&r)
        );
    }
}

#[test]
fn config_keys_say_what_they_size() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.toml");
    std::fs::write(&f, "filter_bits_mb = 7\n").unwrap();
    assert_eq!(ServerConfig::from_file(&f).unwrap().filter_bits_mb, 7);
    // The old name still works.
    std::fs::write(&f, "masks_mb = 9\n").unwrap();
    assert_eq!(ServerConfig::from_file(&f).unwrap().filter_bits_mb, 9);
    std::fs::write(&f, "no_such_key = 1\n").unwrap();
    assert!(ServerConfig::from_file(&f).is_err());
    std::fs::write(&f, "empty_tiles = \"png\"\n").unwrap();
    assert_eq!(
        ServerConfig::from_file(&f).unwrap().empty_tiles,
        pointillist::server::EmptyTiles::Png
    );
    std::fs::write(&f, "empty_tiles = \"404\"\n").unwrap();
    assert!(ServerConfig::from_file(&f).is_err());
}

#[test]
fn style_keys_are_stable_text() {
    use pointillist::render::Style;
    let a = Style::default();
    let mut b = Style::default();
    assert_eq!(a.canonical(), b.canonical());
    assert!(
        a.canonical().starts_with("how=eq_hist;cmap="),
        "{}",
        a.canonical()
    );
    b.spread = 2;
    assert_ne!(a.canonical(), b.canonical());
    b = Style::default();
    b.background = Some([0, 0, 0]);
    assert!(b.canonical().contains("bg=000000"));
}

#[tokio::test]
async fn requests_framed_two_ways_are_refused() {
    let s = server();
    let r = send(
        &s,
        Request::get("/health")
            .header(header::CONTENT_LENGTH, "0")
            .header(header::TRANSFER_ENCODING, "chunked")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("Transfer-Encoding"));
}

#[tokio::test]
async fn histograms_counts_crossfilter() {
    let s = server();
    let r = get(&s, "/datasets/towers/histogram/radio").await;
    let j = r.json();
    assert_eq!(j["kind"], "categorical");
    assert_eq!(j["total"], 20_000);
    // A radio filter does not change the radio histogram, but filters the others.
    let r = get(&s, "/datasets/towers/histogram/radio?filter=radio:in:LTE").await;
    assert_eq!(r.json()["total"], 20_000);
    let all = get(&s, "/datasets/towers/histogram/range?bins=10")
        .await
        .json();
    let lte = get(
        &s,
        "/datasets/towers/histogram/range?bins=10&filter=radio:in:LTE",
    )
    .await
    .json();
    assert_eq!(all["kind"], "numeric");
    assert_eq!(all["bins"].as_array().unwrap().len(), 10);
    let lte_total = lte["total"].as_u64().unwrap();
    assert!(lte_total > 3000 && lte_total < 7000, "{lte_total}");
    let sum: u64 = lte["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, lte_total);
    let c = get(&s, "/datasets/towers/count?filter=radio:in:LTE")
        .await
        .json();
    assert_eq!(c["count"].as_u64().unwrap(), lte_total);
    assert_eq!(c["total"], 20_000);
    // bbox limits to New York (a quarter of the points).
    let c = get(&s, "/datasets/towers/count?bbox=-75,40,-73,41.5")
        .await
        .json();
    assert_eq!(c["count"], 5_000);
    let t = get(
        &s,
        "/datasets/towers/histogram/created?bins=12&filter=created:2012-01-01..",
    )
    .await
    .json();
    assert_eq!(t["kind"], "temporal");
    assert!(t["min"].as_f64().unwrap() > 1.2e12);
    for (uri, needle) in [
        ("/datasets/towers/histogram/range?bins=0", "bins"),
        ("/datasets/towers/histogram/range?bins=5000", "bins"),
        ("/datasets/towers/histogram/range?bbox=1,2,3", "bbox"),
        ("/datasets/towers/histogram/range?bbox=10,0,5,1", "bbox"),
        ("/datasets/towers/count?filter=range:5..1", "malformed"),
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.error().contains(needle), "{uri}: {}", r.error());
    }
    let r = get(&s, "/datasets/towers/histogram/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.error().contains("radio"),
        "lists the columns: {}",
        r.error()
    );
}

/// `brush=COL:STEP` answers linked histograms and counts from an index,
/// and every answer is the one a scan gives without the hint.
#[tokio::test]
async fn brushed_histograms_and_counts_equal_scans() {
    let s = server();
    let day = 86_400_000u64;
    let d0 = 1_300_000_000_000 / day;
    let cases: Vec<(String, &str)> = vec![
        ("range:1200..3400".into(), "range:1e1"),
        // No filter on the brushed column yet: a brush about to start.
        ("radio:in:GSM".into(), "range:1e1"),
        ("range:..990".into(), "range:1e1"),
        ("range:2500..".into(), "range:5e2"),
        // Off the grid: scanned as without the hint.
        ("range:1205..3400".into(), "range:1e1"),
        (
            format!("created:{}..{}", (d0 + 100) * day, (d0 + 2000) * day),
            "created:86400000",
        ),
        (format!("created:{}..", (d0 + 9) * day), "created:86400000"),
    ];
    for (brushed, brush) in &cases {
        for other in ["", "&filter=radio:in:LTE,NR", "&bbox=-75,40,-73,41.5"] {
            let q = format!("filter={brushed}{other}");
            for path in [
                "/datasets/towers/histogram/radio?",
                "/datasets/towers/histogram/created?bins=30&",
                "/datasets/towers/histogram/range?bins=40&",
                "/datasets/towers/count?",
            ] {
                let plain = get(&s, &format!("{path}{q}")).await;
                let hinted = get(&s, &format!("{path}{q}&brush={brush}")).await;
                assert_eq!(plain.status, StatusCode::OK, "{path}{q}");
                assert_eq!(hinted.status, StatusCode::OK, "{path}{q}&brush={brush}");
                assert_eq!(hinted.json(), plain.json(), "{path}{q}&brush={brush}");
                // Server-Timing names what answered: the index for on-grid
                // bounds on another column than the histogram's own.
                let col = brush.split(':').next().unwrap();
                let indexed = !brushed.contains("1205") && !path.contains(&format!("/{col}?"));
                let timing = hinted.headers["server-timing"].to_str().unwrap();
                let want = if indexed {
                    "desc=\"brush\""
                } else {
                    "desc=\"rows\""
                };
                assert!(timing.contains(want), "{path}{q}&brush={brush}: {timing}");
            }
        }
    }
    assert!(
        s.state.brush_indexes_cached().await > 0,
        "the hint built indexes"
    );
    // A step too fine to index is a hint ignored; a malformed one is an error.
    let fine = get(
        &s,
        "/datasets/towers/count?filter=range:1..2&brush=range:1e-9",
    )
    .await;
    assert_eq!(fine.status, StatusCode::OK);
    for bad in [
        "range", "range:0", "range:-1", "radio:1", "nope:1", "range:1e",
    ] {
        let r = get(
            &s,
            &format!("/datasets/towers/count?filter=range:1..2&brush={bad}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            r.error().contains("brush") || r.error().contains("column"),
            "{bad}: {}",
            r.error()
        );
    }
}

#[tokio::test]
async fn aggregate_points_legend() {
    let s = server();
    let r = get(
        &s,
        "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=20&height=10&format=json",
    )
    .await;
    let j = r.json();
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(20), Some(10))
    );
    let total: u64 = j["values"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 5_000);
    let r = get(
        &s,
        "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=20&height=10&agg=count_cat:radio",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with(b"\x93NUMPY"));
    let header = String::from_utf8_lossy(&r.body[10..80]).to_string();
    assert!(header.contains("(10, 20, 4)"), "{header}");
    assert_eq!(
        get(
            &s,
            "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=99999"
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&s, "/datasets/towers/aggregate?width=10").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(
            &s,
            "/datasets/towers/aggregate?bbox=-75,40,-73,41.5&width=4000&height=4000&format=json"
        )
        .await
        .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let r = get(
        &s,
        "/datasets/towers/points?lon=-74&lat=40.7&z=6&radius_px=10&limit=3",
    )
    .await;
    let pts = nearest_first(&r, 3);
    let a = &pts[0]["attributes"];
    assert!(["GSM", "LTE", "NR", "UMTS"].contains(&a["radio"].as_str().unwrap()));
    let created = a["created"].as_str().expect("RFC 3339 time");
    let t = chrono::DateTime::parse_from_rfc3339(created).expect(created);
    assert!(
        t.timestamp() > 1_200_000_000 && created.ends_with('Z'),
        "{created}"
    );
    let r = get(
        &s,
        "/datasets/towers/points?lon=-74&lat=40.7&z=6&filter=radio:in:NR",
    )
    .await;
    assert!(
        r.json()["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["attributes"]["radio"] == "NR")
    );
    assert_eq!(
        get(&s, "/datasets/towers/points?lon=-74").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&s, "/datasets/towers/points?lon=500&lat=0")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let l = get(&s, "/datasets/towers/legend?agg=count&cmap=viridis&z=8")
        .await
        .json();
    assert_eq!(l["kind"], "continuous");
    assert!(l["colors"].as_array().unwrap().len() >= 2);
    assert!(l["max"].as_f64().unwrap() >= l["min"].as_f64().unwrap());
    assert!(l["min"].as_f64().unwrap() >= 1.0);
    let l = get(
        &s,
        "/datasets/towers/legend?agg=count_cat:radio&color_key=LTE:%23ff0000",
    )
    .await
    .json();
    assert_eq!(l["kind"], "categorical");
    let lte = l["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"] == "LTE")
        .unwrap()
        .clone();
    assert_eq!(lte["color"], "#ff0000");
}

#[tokio::test]
async fn static_explorer_and_metrics() {
    let s = server();
    let r = get(&s, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("/static/app.js"));
    let r = get(&s, "/static/app.js").await;
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        get(&s, "/static/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
    get(&s, NY_TILE).await;
    get(&s, NY_TILE).await;
    let r = get(&s, "/tiles/towers/1/0/0.png?agg=count&filter=range:0..2000").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(&s, "/datasets/towers/histogram/radio?filter=range:0..2000").await;
    assert_eq!(r.status, StatusCode::OK);
    let m = String::from_utf8(get(&s, "/metrics").await.body).unwrap();
    for needle in [
        "pointillist_requests_total",
        "pointillist_request_seconds",
        "pointillist_tile_cache_total",
        "pointillist_rows_scanned_total",
        "pointillist_render_seconds",
        "pointillist_query_cells_seconds",
        "pointillist_filter_mask_seconds",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}");
    }
    for gauge in [
        "pointillist_tile_cache_bytes",
        "pointillist_query_cells_bytes",
        "pointillist_filter_mask_cache_bytes",
    ] {
        let v: f64 = m
            .lines()
            .find_map(|l| l.strip_prefix(gauge)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {gauge} in metrics"));
        assert!(v > 0.0, "{gauge} = {v}");
    }
}

#[tokio::test]
async fn overload_sheds_with_503() {
    let s = server_with(|c| c.queue = 0);
    let r = get(&s, "/datasets/towers/count").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.error().contains("overloaded"));
    assert!(r.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests() {
    let s = Arc::new(server());
    let mut tasks = Vec::new();
    for i in 0..48u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let uri = match i % 4 {
                0 => format!(
                    "/tiles/towers/8/75/96.png?how={}",
                    ["log", "cbrt", "linear", "eq_hist"][(i / 4 % 4) as usize]
                ),
                1 => "/datasets/towers/histogram/range?bins=20".to_string(),
                2 => ny_tile(i % 3),
                _ => "/datasets/towers/count?filter=radio:in:GSM".to_string(),
            };
            let r = get(&s, &uri).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_swaps_datasets_under_load() {
    let s = Arc::new(server());
    // Requests keep flowing while a dataset is replaced and another added.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 5 {
                let r = get(
                    &s,
                    &format!("{}?scale=tile&how=log&spread={t}", ny_tile(n % 4)),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK);
                let c = get(&s, "/datasets/towers/count").await.json()["count"]
                    .as_u64()
                    .unwrap();
                assert!(
                    c == 20_000 || c == 8_000,
                    "count {c} is from one dataset or the other"
                );
                n += 1;
            }
            n
        }));
    }
    let root = s.root.clone();
    tokio::task::spawn_blocking(move || {
        common::packed_towers(&root, "towers", 8_000, 2);
        common::packed_towers(&root, "more", 1_000, 3);
    })
    .await
    .unwrap();
    let unauth = send(
        &s,
        Request::post("/admin/reload").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &s,
        Request::post("/admin/reload")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["datasets"], serde_json::json!(["more", "towers"]));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        assert!(l.await.unwrap() >= 5);
    }
    assert_eq!(get(&s, "/datasets/towers").await.json()["rows"], 8_000);
    assert_eq!(get(&s, "/datasets/more").await.json()["rows"], 1_000);
}

#[tokio::test]
async fn reload_without_token_is_forbidden_and_corrupt_datasets_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    common::packed_towers(&root, "good", 2_000, 1);
    let bad = common::packed_towers(&root, "bad", 2_000, 2);
    std::fs::write(bad.join("data.arrow"), b"truncated").unwrap();
    let state = AppState::new(ServerConfig {
        datasets: vec![root],
        ..ServerConfig::default()
    });
    {
        let cat = state.catalog.load();
        assert_eq!(cat.datasets.keys().collect::<Vec<_>>(), vec!["good"]);
        assert_eq!(cat.errors.len(), 1);
    }
    let s = Srv {
        _dir: dir,
        state,
        root: Default::default(),
    };
    let r = send(
        &s,
        Request::post("/admin/reload")
            .header(header::AUTHORIZATION, "Bearer x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[test]
fn dataset_names_cannot_escape() {
    use pointillist::server::valid_name;
    for bad in ["..", "../x", "a/b", ".hidden", "", "a b", "x%2F.."] {
        assert!(!valid_name(bad), "{bad}");
    }
    assert!(valid_name("towers-2024_v1.0"));
}

/// A new query's zoom scale over a dataset of many sample budgets comes
/// from a sample (`Server-Timing: scale;desc="sample"`); `scale=exact`
/// makes the exact pass, and the two are cached apart.
#[tokio::test]
async fn zoom_scales_are_sampled_unless_exact_is_asked() {
    let s = server_with(|c| c.scale_sample_rows = 512);
    let timing = |r: &Resp| {
        r.headers
            .get("server-timing")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let tile = "/tiles/towers/10/301/385.png?filter=range:1000..3000";
    let r = get(&s, tile).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error_or_body());
    assert!(
        timing(&r).contains("scale;desc=\"sample\""),
        "{}",
        timing(&r)
    );
    let r = get(&s, &format!("{tile}&scale=exact")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(timing(&r).contains("scale;desc=\"rows\""), "{}", timing(&r));
    let r = get(&s, &format!("{tile}&scale=tile")).await;
    assert!(!timing(&r).contains("scale;"), "{}", timing(&r));
    // The legend describes the same scale as the tiles.
    let r = get(
        &s,
        "/datasets/towers/legend?z=10&filter=range:1000..3000&scale=exact",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error_or_body());
}

/// `memory_budget_mb` sizes the caches left at their defaults and refuses
/// settings that could exceed it, naming each part.
#[test]
fn a_memory_budget_sizes_the_caches_and_bounds_them() {
    let mut c = ServerConfig {
        memory_budget_mb: 512,
        max_renders: 2,
        ..ServerConfig::default()
    };
    c.fit_to_budget().unwrap();
    assert_eq!(
        (c.cache_mb, c.cells_mb, c.filter_bits_mb, c.zoom_mb),
        (64, 64, 64, 32)
    );
    let total: u64 = c.memory_parts().iter().map(|p| p.1).sum();
    assert!(total <= 512, "{:?}", c.memory_parts());
    assert!(c.max_grid_mb >= 1 && c.max_grid_mb * 2 * 4 <= 512 / 4);
    // An explicit cache larger than the budget allows is refused.
    let mut c = ServerConfig {
        memory_budget_mb: 512,
        cache_mb: 1024,
        ..ServerConfig::default()
    };
    let e = c.fit_to_budget().unwrap_err();
    assert!(e.contains("cache_mb 1024") && e.contains("512"), "{e}");
    // No budget: nothing changes.
    let mut c = ServerConfig::default();
    c.fit_to_budget().unwrap();
    assert_eq!(c.cache_mb, ServerConfig::default().cache_mb);
}

#[tokio::test]
async fn a_filter_on_an_unknown_category_is_refused_with_the_categories() {
    let s = server();
    for uri in [
        "/datasets/towers/count?filter=radio:in:XX",
        "/tiles/towers/8/75/96.png?filter=radio:in:LTE,XX",
        "/datasets/towers/histogram/range?filter=radio:in:lte",
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        let e = r.error();
        assert!(
            e.contains("no category") && e.contains("GSM") && e.contains("LTE"),
            "{uri}: {e}"
        );
    }
    assert_eq!(
        get(&s, "/datasets/towers/count?filter=radio:in:LTE")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_preflights_and_cache_headers_answer_as_clients_expect() {
    let s = server();
    let pre = send(
        &s,
        Request::builder()
            .method("OPTIONS")
            .uri(NY_TILE)
            .header(header::ORIGIN, "https://maps.example.com")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(pre.status.is_success(), "{}", pre.status);
    let allowed = pre.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(
        allowed.to_ascii_lowercase().contains("authorization"),
        "{allowed}"
    );
    let tile = send(
        &s,
        Request::get(NY_TILE)
            .header(header::ORIGIN, "https://maps.example.com")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(tile.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let vary: Vec<_> = tile
        .headers
        .get_all(header::VARY)
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(!vary.iter().any(|v| v.contains("origin")), "{vary:?}");
    for uri in [
        "/datasets",
        "/datasets/towers",
        "/datasets/towers/tilejson",
        "/openapi.json",
        "/datasets/towers/histogram/radio?filter=range:0..2000",
        "/datasets/towers/count",
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(
            r.headers[header::CACHE_CONTROL],
            "public, max-age=60",
            "{uri}"
        );
    }
    for uri in ["/health", "/metrics", "/datasets/nope", "/no/such/endpoint"] {
        let r = get(&s, uri).await;
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store", "{uri}");
    }
}

#[tokio::test]
async fn points_keep_every_value_exact() {
    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{
        ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, StructArray,
        TimestampMicrosecondArray, UInt64Array,
    };
    use arrow_schema::{DataType, Field};
    let dir = tempfile::tempdir().unwrap();
    let n = 4;
    let lon: ArrayRef = Arc::new(Float64Array::from(vec![-74.0; n]));
    let lat: ArrayRef = Arc::new(Float64Array::from(vec![40.7; n]));
    let big: ArrayRef = Arc::new(Int64Array::from(vec![2495, -9_007_199_254_740_993, 0, 7]));
    let ubig: ArrayRef = Arc::new(UInt64Array::from(vec![
        7_425_725_167_743_237_483u64,
        1,
        2,
        3,
    ]));
    let when: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from(vec![1_700_000_000_123_456i64; n]).with_timezone("UTC"),
    );
    let inner: ArrayRef = Arc::new(StructArray::from(vec![
        (
            Arc::new(Field::new("a", DataType::Int32, false)),
            Arc::new(Int32Array::from(vec![1, 2, 3, 4])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("b", DataType::Utf8, false)),
            Arc::new(StringArray::from(vec!["x", "y", "z", "w"])) as ArrayRef,
        ),
    ]));
    let mut lb = ListBuilder::new(Int32Builder::new());
    for i in 0..n as i32 {
        lb.values().append_value(i);
        lb.values().append_value(i * 10);
        lb.append(true);
    }
    let list: ArrayRef = Arc::new(lb.finish());
    let batch = RecordBatch::try_from_iter(vec![
        ("lon", lon),
        ("lat", lat),
        ("big", big),
        ("ubig", ubig),
        ("when", when),
        ("inner", inner),
        ("list", list),
    ])
    .unwrap();
    let input = dir.path().join("types.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&input).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = dir.path().join("types");
    let mut o = pointillist::pack::PackOptions::new(vec![input.display().to_string()], &out);
    o.force = true;
    pointillist::pack::pack(&o).unwrap();
    let s = Srv {
        state: AppState::new(ServerConfig {
            datasets: vec![out],
            ..ServerConfig::default()
        }),
        root: dir.path().to_path_buf(),
        _dir: dir,
    };
    let r = get(&s, "/datasets/types/points?lon=-74&lat=40.7&z=12&limit=10").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error_or_body());
    let pts = r.json()["points"].as_array().unwrap().clone();
    assert_eq!(pts.len(), n);
    let mut seen = BTreeSet::new();
    for p in &pts {
        let a = &p["attributes"];
        assert_eq!(a["when"], "2023-11-14T22:13:20.123456Z", "{a}");
        let i = a["inner"]["a"].as_i64().expect("struct as JSON") as usize - 1;
        assert_eq!(a["inner"]["b"], ["x", "y", "z", "w"][i]);
        assert_eq!(a["list"], serde_json::json!([i, i * 10]));
        let big = [
            serde_json::json!(2495),
            serde_json::json!("-9007199254740993"),
            serde_json::json!(0),
            serde_json::json!(7),
        ];
        assert_eq!(a["big"], big[i], "{a}");
        let ubig = [
            serde_json::json!("7425725167743237483"),
            serde_json::json!(1),
            serde_json::json!(2),
            serde_json::json!(3),
        ];
        assert_eq!(a["ubig"], ubig[i], "{a}");
        seen.insert(i);
    }
    assert_eq!(seen.len(), n);
}

/// `dynspread` picks one radius per zoom from an anchor tile: the server
/// renders that anchor once per zoom and query, not once per tile, and its
/// tiles are the library's `render_tile` pixel for pixel.
#[tokio::test]
async fn dynspread_radius_is_computed_once_per_zoom() {
    let s = server_with(|c| c.cache_mb = 0);
    let radius_passes = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("pointillist_dynspread_radius_seconds_count"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let metrics = || async { String::from_utf8(get(&s, "/metrics").await.body).unwrap() };
    let before = radius_passes(&metrics().await);
    let uri = "/tiles/towers/8/75/96.png?dynspread=0.5,3&scale=tile";
    let first = get(&s, uri).await;
    assert_eq!(first.status, StatusCode::OK);
    // No tile cache: the tile renders again, but its radius is cached.
    let again = get(&s, uri).await;
    assert_eq!(again.body, first.body);
    assert_eq!(radius_passes(&metrics().await) - before, 1);

    let ds = pointillist::store::Dataset::open(s.root.join("towers")).unwrap();
    let style = pointillist::render::Style {
        dynspread: Some((0.5, 3)),
        scale: pointillist::render::Scale::Tile,
        ..Default::default()
    };
    let tile = pointillist::geo::TileId::new(8, 75, 96).unwrap();
    let lib = pointillist::render::render_tile(
        &ds,
        tile,
        256,
        &pointillist::query::Agg::Count,
        &[],
        &style,
        None,
        Default::default(),
    )
    .unwrap();
    assert_eq!(decode_png(&first.body).2, lib.image.data);
}

/// A zoom scale the sample gives up on (pixels too large for its budget:
/// here a budget of 64 rows against city pixels of hundreds) comes from the
/// query's cells, one pass that the cells then keep for every tile and
/// scale of the query, rather than from an exact pass over the rows that
/// keeps nothing; the pixels are those of the exact pass.
#[tokio::test]
async fn a_scale_the_sample_gives_up_on_comes_from_the_query_cells() {
    let s = server_with(|c| c.scale_sample_rows = 64);
    let timing = |r: &Resp| r.headers["server-timing"].to_str().unwrap().to_string();
    let uri = "/tiles/towers/4/7/5.png?filter=range:0..2000";
    let r = get(&s, uri).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error_or_body());
    let t = timing(&r);
    assert!(
        t.starts_with("plan;desc=\"rows\", scale;desc=\"cells\""),
        "{t}"
    );
    assert_eq!(s.state.query_cells_cached().await, 1);
    let rows = server_with(|c| {
        c.scale_sample_rows = 64;
        c.cells_mb = 0;
    });
    let b = get(&rows, uri).await;
    assert!(timing(&b).contains("scale;desc=\"rows\""), "{}", timing(&b));
    assert!(decode_png(&r.body).2 == decode_png(&b.body).2);
}
