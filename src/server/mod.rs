//! `pointillist serve`: tiles, histograms, aggregates and points over HTTP.
//!
//! Handlers only parse requests into the engine's types and turn results
//! into responses. CPU work runs on the rayon pool behind a bounded admission
//! queue; a request past its deadline is cancelled (the kernels poll a flag)
//! and answered 503.

mod admin;
mod assets;
mod caches;
mod catalog;
mod crossfilter;
mod data;
mod error;
mod listen;
mod metadata;
mod openapi;
pub mod params;
pub mod spec;
mod tiles;

pub use catalog::{Catalog, Entry, valid_name};
pub use error::ApiError;

use crate::query::bitsets::FilterBits;
use crate::query::brush::BrushIndex;
use crate::raster::cells::QueryCells;
use crate::raster::plan::Planner;
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Longest accepted query string (bytes) before answering 414.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Largest accepted total header size (bytes) before answering 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How tiles that hold no rows of their dataset are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum EmptyTiles {
    /// `204 No Content` with no body: cheap, and what tile clients read as
    /// "nothing here".
    #[default]
    #[serde(rename = "204")]
    NoContent,
    /// A transparent PNG like any other tile's.
    #[serde(rename = "png")]
    Png,
}

impl std::str::FromStr for EmptyTiles {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "204" => Ok(EmptyTiles::NoContent),
            "png" => Ok(EmptyTiles::Png),
            _ => Err(format!(
                "empty tiles are answered with 204 or png, not {s:?}"
            )),
        }
    }
}

/// Server settings, from `pointillist.toml` and the command line.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Dataset directories or catalog directories.
    pub datasets: Vec<PathBuf>,
    /// Tile cache size in MiB (0 disables the cache).
    pub cache_mb: u64,
    /// Query-cell cache size in MiB: each filtered or value query's cells
    /// answer its tiles and colour scales up to pixel level 12 (0 disables
    /// them; those tiles are then aggregated from the rows).
    pub cells_mb: u64,
    /// Rows an estimated (`scale=zoom`) colour scale reads: a new query's
    /// first tile then costs this many rows, not a pass over the dataset
    /// (0: every scale exact).
    pub scale_sample_rows: u64,
    /// Advise the kernel to read ahead the column bytes a tile or a sampled
    /// scale is about to scan (`MADV_WILLNEED`); off, every page is faulted
    /// in when first touched. See [`crate::store::set_read_ahead`].
    pub read_ahead: bool,
    /// Passes over the rows that take at least this long are logged
    /// (dataset, lane, milliseconds).
    pub long_pass_ms: u64,
    /// Filter bitset cache size in MiB: histograms and counts AND the
    /// cached rows of each filter instead of re-reading its column (0
    /// disables it).
    #[serde(alias = "masks_mb")]
    pub filter_bits_mb: u64,
    /// Renders running at once (default: rayon threads).
    pub max_renders: usize,
    /// Requests allowed to wait for a render slot before shedding load.
    pub queue: usize,
    /// Deadline of one request, in milliseconds.
    pub timeout_ms: u64,
    /// Allowed CORS origins (`*` for any).
    pub cors_origins: Vec<String>,
    /// Bearer token for `POST /admin/reload` (also `POINTILLIST_ADMIN_TOKEN`);
    /// reload is disabled without one.
    pub admin_token: Option<String>,
    /// `Cache-Control: max-age` of tiles, in seconds.
    pub tile_max_age: u64,
    /// What a tile with no rows of the dataset in it (or in its spread
    /// margin) is answered with: `204 No Content`, as OGC API Tiles,
    /// GDAL, QGIS, Leaflet, OpenLayers and MapLibre ≥ 4 expect, or a
    /// transparent PNG for older clients (ArcGIS Online, MapLibre < 4).
    pub empty_tiles: EmptyTiles,
    /// Optional online basemap style URL for the explorer.
    pub basemap: Option<String>,
    /// The server's public base URL (`https://tiles.example.com/maps`), used
    /// for absolute URLs such as TileJSON's `tiles`. Without it those URLs
    /// are relative, unless `trust_proxy` is set.
    pub public_url: Option<String>,
    /// Build absolute URLs from the request's `X-Forwarded-Proto`,
    /// `X-Forwarded-Host` and `Host` headers. Only behind a proxy that sets
    /// them: otherwise any client chooses the host written into responses
    /// that a shared cache may hand to everyone.
    pub trust_proxy: bool,
    /// Memory one request's aggregation grids may take, in MiB (pixels ×
    /// categories × 4–20 bytes); larger requests get 413.
    pub max_grid_mb: u64,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time with no byte moving on a connection before it is closed, in
    /// milliseconds (must exceed `timeout_ms`).
    pub idle_timeout_ms: u64,
    /// Zoom colour-scale cache size in MiB.
    pub zoom_mb: u64,
    /// Heap the server may hold, in MiB (0: no budget). Caches left at
    /// their defaults are sized from it, and the server refuses to start
    /// when the caches and the grids of every computation that may run at
    /// once could exceed it ([`ServerConfig::memory_parts`]). The mapped
    /// data is page cache, not heap: the kernel evicts it under pressure.
    pub memory_budget_mb: u64,
    /// Directory of the disk cache for datasets on object storage
    /// (default: `pointillist-object-cache` in the system's temporary
    /// directory).
    pub object_cache: Option<PathBuf>,
    /// Bytes of fetched data the object cache may hold, in MiB (least
    /// recently used chunks are dropped beyond it).
    pub object_cache_mb: u64,
    /// Deadline of one request to object storage, in milliseconds.
    pub object_timeout_ms: u64,
    /// Seconds between retries of `s3://` datasets that failed to open or
    /// whose object changed (0: only on `POST /admin/reload`).
    pub object_retry_s: u64,
    /// S3 settings over those of the `AWS_*` environment variables, keyed
    /// as `object_store` names them (`endpoint`, `region`, `allow_http`, ...).
    /// Credentials belong in the environment, not in this file.
    pub s3: std::collections::BTreeMap<String, String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".parse().expect("valid address"),
            datasets: Vec::new(),
            cache_mb: 256,
            cells_mb: 256,
            scale_sample_rows: crate::raster::sample::DEFAULT_SAMPLE_ROWS,
            read_ahead: true,
            long_pass_ms: 100,
            filter_bits_mb: 128,
            max_renders: rayon::current_num_threads().max(1),
            queue: 256,
            timeout_ms: 10_000,
            cors_origins: vec!["*".into()],
            admin_token: None,
            tile_max_age: 3600,
            empty_tiles: EmptyTiles::NoContent,
            basemap: None,
            public_url: None,
            trust_proxy: false,
            max_grid_mb: crate::query::DEFAULT_MAX_GRID_BYTES >> 20,
            max_connections: 1024,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            zoom_mb: 64,
            memory_budget_mb: 0,
            object_cache: None,
            object_cache_mb: 10_240,
            object_timeout_ms: 5_000,
            object_retry_s: 30,
            s3: std::collections::BTreeMap::new(),
        }
    }
}

impl ServerConfig {
    /// Read a TOML config file.
    pub fn from_file(path: &std::path::Path) -> Result<ServerConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// What may hold heap memory, in MiB: each cache's limit, and the
    /// aggregation grids of every computation that may run at once (two
    /// lanes of `max_renders`, each computation up to twice `max_grid_mb`).
    pub fn memory_parts(&self) -> Vec<(&'static str, u64)> {
        let slots = 2 * self.max_renders.max(1) as u64;
        vec![
            ("cache_mb", self.cache_mb),
            ("cells_mb", self.cells_mb),
            ("filter_bits_mb", self.filter_bits_mb),
            ("zoom_mb", self.zoom_mb),
            (
                "grids in flight (2 × max_grid_mb × 2 lanes × max_renders)",
                self.max_grid_mb.saturating_mul(2 * slots),
            ),
        ]
    }

    /// Apply `memory_budget_mb`: caches left at their defaults take their
    /// share of it (tiles 1/8, cells 1/8, filter bitsets 1/8, zoom scales
    /// 1/16, grids in flight 1/4), then everything must fit.
    pub fn fit_to_budget(&mut self) -> Result<(), String> {
        let b = self.memory_budget_mb;
        if b == 0 {
            return Ok(());
        }
        let d = ServerConfig::default();
        let slots = 2 * self.max_renders.max(1) as u64;
        if self.cache_mb == d.cache_mb {
            self.cache_mb = b / 8;
        }
        if self.cells_mb == d.cells_mb {
            self.cells_mb = b / 8;
        }
        if self.filter_bits_mb == d.filter_bits_mb {
            self.filter_bits_mb = b / 8;
        }
        if self.zoom_mb == d.zoom_mb {
            self.zoom_mb = (b / 16).max(1);
        }
        if self.max_grid_mb == d.max_grid_mb {
            self.max_grid_mb = (b / (8 * slots)).max(1);
        }
        let parts = self.memory_parts();
        let total: u64 = parts.iter().map(|p| p.1).sum();
        if total > b {
            let list: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            return Err(format!(
                "memory_budget_mb = {b} is less than the settings may use: {} = {total} MiB",
                list.join(" + ")
            ));
        }
        Ok(())
    }

    /// Check settings that only make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout_ms <= self.timeout_ms {
            return Err(format!(
                "idle_timeout_ms ({}) must exceed timeout_ms ({}), or slow renders would be cut",
                self.idle_timeout_ms, self.timeout_ms
            ));
        }
        if self.header_timeout_ms == 0 || self.max_connections == 0 || self.max_grid_mb == 0 {
            return Err(
                "header_timeout_ms, max_connections and max_grid_mb must be positive".into(),
            );
        }
        if let Some(u) = &self.public_url {
            let ok = (u.starts_with("http://") || u.starts_with("https://"))
                && u.chars().all(|c| c.is_ascii_graphic());
            if !ok {
                return Err(format!(
                    "public_url must be an http:// or https:// URL, got {u:?}"
                ));
            }
        }
        Ok(())
    }

    /// Which source answers each tile and colour scale (cells only while
    /// a query's cells could take at most half the cell cache).
    pub fn planner(&self) -> Planner {
        Planner::new(self.cells_mb << 20, self.scale_sample_rows)
    }

    /// The per-request budget of the engine.
    pub fn limits(&self) -> crate::query::Limits {
        crate::query::Limits {
            max_grid_bytes: self.max_grid_mb.saturating_mul(1 << 20),
        }
    }
}

/// Which pool a computation runs on. Whole-map scans (a world-view count,
/// a colour scale's pass over every row, a new filter's bitset) would
/// otherwise take every rayon thread and every render slot, and tiles that
/// need a few thousand rows would queue behind their parallel chunks: heavy
/// work runs on its own thread pool with its own `max_renders` slots, so
/// the operating system shares the cores between the two lanes and light
/// requests keep moving while heavy ones run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Reads few rows, or answers from the overview, cells or caches.
    Light,
    /// Reads more than [`HEAVY_ROWS`] rows, or passes over a whole column.
    Heavy,
}

/// Rows above which a request runs in the heavy lane.
pub const HEAVY_ROWS: u64 = 8_000_000;

impl Lane {
    /// `light` or `heavy`, as metrics and logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Light => "light",
            Lane::Heavy => "heavy",
        }
    }

    /// The lane of a request that reads `rows` rows.
    pub fn for_rows(rows: u64) -> Lane {
        if rows > HEAVY_ROWS {
            Lane::Heavy
        } else {
            Lane::Light
        }
    }
}

/// The state every handler extracts.
pub(crate) type AppStateRef = State<Arc<AppState>>;

/// A rendered, cached tile.
#[derive(Debug)]
pub struct CachedTile {
    /// The encoded image.
    pub body: Bytes,
    /// Its format.
    pub format: crate::shade::ImageFormat,
    /// What answered it: `overview`, `cells` or `rows`.
    pub source: &'static str,
    /// What its zoom's colour scale came from (`overview`, `cells`,
    /// `sample` or `rows`); `None` for `scale=tile`.
    pub scale: Option<&'static str>,
    /// Milliseconds of the render job itself (aggregate and shade), and of
    /// its encoding: what `Server-Timing` reports beside the total, so
    /// the rest is the server's own path (queueing, caches, hand-offs).
    pub render_ms: f64,
    /// See `render_ms`.
    pub encode_ms: f64,
}

/// Shared server state.
pub struct AppState {
    /// Settings.
    pub config: ServerConfig,
    /// Served datasets.
    pub catalog: ArcSwap<Catalog>,
    tiles: moka::future::Cache<caches::Key, Arc<CachedTile>>,
    zoom: moka::future::Cache<caches::Key, Arc<caches::ZoomScale>>,
    /// `dynspread` radii per zoom, query and style (a key and a few bytes
    /// each), in a sixteenth of `zoom_mb`.
    radii: moka::future::Cache<caches::Key, Arc<u32>>,
    /// Normalizations built from the zoom scales, per way of shading, in
    /// an eighth of `zoom_mb`.
    norms: moka::future::Cache<caches::Key, Arc<Option<crate::shade::Normalization>>>,
    cells: moka::future::Cache<caches::Key, Arc<QueryCells>>,
    filter_bits: moka::future::Cache<caches::Key, Arc<FilterBits>>,
    /// Brush indexes (a quarter of `filter_bits_mb`); `None` marks a brush
    /// too fine to index.
    brushes: moka::future::Cache<caches::Key, Arc<Option<BrushIndex>>>,
    limiter: Arc<Semaphore>,
    heavy_limiter: Arc<Semaphore>,
    heavy_pool: rayon::ThreadPool,
    waiting: AtomicUsize,
    metrics: PrometheusHandle,
    reload: tokio::sync::Mutex<()>,
    /// The disk cache of datasets on object storage.
    pub objects: Arc<crate::store::remote::ObjectCache>,
}

fn metrics_handle() -> PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("non-empty buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. several servers in
        // one test process); the handle then still renders our own registry.
        let _ = metrics::set_global_recorder(recorder);
        describe_metrics();
        handle
    })
    .clone()
}

/// HELP text and units of every metric (`promtool check metrics` wants
/// them; scripts/check_metrics.sh runs it against a live server).
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "pointillist_requests_total",
        "HTTP requests answered, by route and status."
    );
    describe_histogram!(
        "pointillist_request_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route."
    );
    describe_counter!(
        "pointillist_computations_total",
        "Jobs run on the compute pools, by lane (light: tiles; heavy: whole-map passes)."
    );
    describe_counter!(
        "pointillist_shed_total",
        "Requests refused with 503 because the render queue was full."
    );
    describe_gauge!(
        "pointillist_connections_open",
        "Client connections open now."
    );
    describe_gauge!("pointillist_datasets", "Datasets served.");
    describe_counter!(
        "pointillist_rows_scanned_total",
        "Rows read by aggregations."
    );
    describe_histogram!(
        "pointillist_render_seconds",
        Unit::Seconds,
        "Time to aggregate, shade and encode a tile."
    );
    describe_histogram!(
        "pointillist_crossfilter_seconds",
        Unit::Seconds,
        "Time to compute a histogram."
    );
    describe_histogram!(
        "pointillist_query_cells_seconds",
        Unit::Seconds,
        "Time to build the level-12 cells of a filtered or value query."
    );
    describe_histogram!(
        "pointillist_filter_mask_seconds",
        Unit::Seconds,
        "Time to compute a filter's row bitsets."
    );
    describe_histogram!(
        "pointillist_zoom_stats_seconds",
        Unit::Seconds,
        "Time to compute a zoom-wide colour scale."
    );
    describe_histogram!(
        "pointillist_normalization_seconds",
        Unit::Seconds,
        "Time to build a zoom colour scale's normalization for one way of shading."
    );
    describe_counter!(
        "pointillist_tile_cache_total",
        "Tile cache lookups, by result (hit, miss)."
    );
    describe_gauge!(
        "pointillist_tile_cache_bytes",
        Unit::Bytes,
        "Bytes held by the tile cache."
    );
    describe_gauge!(
        "pointillist_query_cells_bytes",
        Unit::Bytes,
        "Bytes held by the query-cell cache."
    );
    describe_gauge!(
        "pointillist_filter_mask_cache_bytes",
        Unit::Bytes,
        "Bytes held by the filter bitset cache."
    );
    describe_gauge!(
        "pointillist_storage_read_bytes",
        Unit::Bytes,
        "Bytes this process has made the kernel read from storage (mapped data faulted in)."
    );
    describe_counter!(
        "pointillist_object_bytes_fetched_total",
        Unit::Bytes,
        "Bytes fetched from object storage."
    );
    describe_counter!(
        "pointillist_object_ranges_fetched_total",
        "Range requests answered by object storage."
    );
    describe_counter!(
        "pointillist_object_errors_total",
        "Scans failed because object storage did (answered 503)."
    );
    describe_counter!(
        "pointillist_object_chunks_total",
        "Reads of column chunks of s3:// datasets, by result (hit: cached, miss: fetched)."
    );
    describe_gauge!(
        "pointillist_object_cache_bytes",
        Unit::Bytes,
        "Bytes of fetched data the object cache holds."
    );
    describe_counter!(
        "pointillist_object_cache_evicted_bytes_total",
        Unit::Bytes,
        "Bytes dropped from the object cache to stay under its bound."
    );
}

/// A cache of shared values bounded by bytes (key plus `bytes(value)`),
/// optionally expiring entries unused for `idle`.
fn bounded_cache<V: Send + Sync + 'static>(
    bytes: u64,
    idle: Option<Duration>,
    size: fn(&V) -> usize,
) -> moka::future::Cache<caches::Key, Arc<V>> {
    let b = moka::future::Cache::builder().max_capacity(bytes).weigher(
        move |k: &caches::Key, v: &Arc<V>| (k.weight() + size(v)).min(u32::MAX as usize) as u32,
    );
    match idle {
        Some(d) => b.time_to_idle(d).build(),
        None => b.build(),
    }
}

impl AppState {
    /// Build the state and load the datasets (failures are reported and skipped).
    pub fn new(mut config: ServerConfig) -> Arc<AppState> {
        if config.admin_token.is_none() {
            config.admin_token = std::env::var("POINTILLIST_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
        }
        let objects = Arc::new(crate::store::remote::ObjectCache::new(
            config
                .object_cache
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("pointillist-object-cache")),
            config.object_cache_mb,
            config.s3.clone(),
            Duration::from_millis(config.object_timeout_ms.max(1)),
        ));
        let catalog = Catalog::load(&config.datasets, None, &objects);
        let idle = Some(Duration::from_secs(600));
        let tiles = bounded_cache(config.cache_mb << 20, None, |t: &CachedTile| {
            t.body.len() + 64
        });
        // zoom_mb holds the zoom scales, in a sixteenth of it the dynspread
        // radii, and in an eighth the normalizations built from the scales.
        let zoom_bytes = config.zoom_mb << 20;
        let zoom = bounded_cache(
            zoom_bytes - zoom_bytes / 16 - zoom_bytes / 8,
            idle,
            |z: &caches::ZoomScale| z.stats.histogram.len() * 16 + 64 + z.ask.weight(),
        );
        let radii = bounded_cache(zoom_bytes / 16, idle, |_: &u32| 8);
        let norms = bounded_cache(
            zoom_bytes / 8,
            idle,
            |n: &Option<crate::shade::Normalization>| {
                n.as_ref().map_or(64, crate::shade::Normalization::bytes)
            },
        );
        let cells = bounded_cache(config.cells_mb << 20, idle, QueryCells::bytes);
        // filter_bits_mb holds the filters' bitsets and, in a quarter of
        // it, the brush indexes built from them.
        let bits_bytes = config.filter_bits_mb << 20;
        let filter_bits = bounded_cache(bits_bytes - bits_bytes / 4, idle, FilterBits::bytes);
        let brushes = bounded_cache(bits_bytes / 4, idle, |b: &Option<BrushIndex>| {
            b.as_ref().map_or(64, BrushIndex::bytes)
        });
        let max_renders = config.max_renders.max(1);
        Arc::new(AppState {
            config,
            catalog: ArcSwap::from_pointee(catalog),
            tiles,
            zoom,
            radii,
            norms,
            cells,
            filter_bits,
            brushes,
            limiter: Arc::new(Semaphore::new(max_renders)),
            heavy_limiter: Arc::new(Semaphore::new(max_renders)),
            heavy_pool: rayon::ThreadPoolBuilder::new()
                .num_threads(rayon::current_num_threads())
                .thread_name(|i| format!("heavy-{i}"))
                .build()
                .expect("a thread pool"),
            waiting: AtomicUsize::new(0),
            metrics: metrics_handle(),
            reload: tokio::sync::Mutex::new(()),
            objects,
        })
    }

    /// The deadline of a request starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.config.timeout_ms)
    }

    /// The opening every dataset endpoint shares: the dataset by name, and
    /// the query string parsed and held to the endpoint's parameters.
    pub(crate) fn request(
        &self,
        name: &str,
        raw: Option<&str>,
        endpoint: &spec::Endpoint,
    ) -> Result<(Arc<Entry>, params::Params), ApiError> {
        let entry = self.dataset(name)?;
        let p = params::Params::parse(raw)?;
        p.only(endpoint)?;
        Ok((entry, p))
    }

    /// Queries whose cells are cached (after the cache's pending upkeep).
    pub async fn query_cells_cached(&self) -> u64 {
        self.cells.run_pending_tasks().await;
        self.cells.entry_count()
    }

    /// Brush indexes cached (after the cache's pending upkeep).
    pub async fn brush_indexes_cached(&self) -> u64 {
        self.brushes.run_pending_tasks().await;
        self.brushes.entry_count()
    }

    /// Filters whose bitsets are cached (after the cache's pending upkeep).
    pub async fn filter_bits_cached(&self) -> u64 {
        self.filter_bits.run_pending_tasks().await;
        self.filter_bits.entry_count()
    }

    /// Look up a dataset by name (404 listing the served ones; 503 for one
    /// retired because a file of it changed in place).
    pub fn dataset(&self, name: &str) -> Result<Arc<Entry>, ApiError> {
        let cat = self.catalog.load();
        let entry = cat.datasets.get(name).cloned().ok_or_else(|| {
            ApiError::not_found(format!(
                "unknown dataset {name:?}; datasets: {}",
                cat.datasets.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if let Some(r) = entry.dataset.files.retired() {
            return Err(ApiError::unavailable(format!("{name}: {r}")));
        }
        Ok(entry)
    }

    /// [`AppState::compute`] on a dataset: the job runs only while the
    /// dataset's files are intact (see [`crate::store::files`]), and holds
    /// them so until it ends.
    pub async fn compute_on<T, F>(
        &self,
        entry: Arc<Entry>,
        lane: Lane,
        deadline: Instant,
        f: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        let long_pass_ms = self.config.long_pass_ms as f64;
        self.compute(lane, deadline, move |cancel| {
            let _inside = entry.reading()?;
            let t = Instant::now();
            let out = f(cancel);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            // A slow pass is what a user waits for: say so, with its lane
            // (heavy: a whole-map scan), so slow datasets show in the logs.
            if ms >= long_pass_ms {
                tracing::info!(dataset = %entry.name, lane = lane.name(), ms = format!("{ms:.0}"), "long pass over the rows");
            }
            Ok(out)
        })
        .await?
    }

    /// Run CPU work on the rayon pool: admission (bounded queue), a render
    /// slot, then the job, all within `deadline`. The job gets a cancel flag
    /// that is set when the deadline passes or the request is dropped.
    /// Jobs that read a dataset's rows go through [`AppState::compute_on`].
    async fn compute<T, F>(&self, lane: Lane, deadline: Instant, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.config.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("pointillist_shed_total").increment(1);
            return Err(ApiError::unavailable(
                "server overloaded: render queue is full, retry later",
            ));
        }
        let limiter = match lane {
            Lane::Light => &self.limiter,
            Lane::Heavy => &self.heavy_limiter,
        };
        let permit =
            tokio::time::timeout_at(deadline.into(), limiter.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = match permit {
            Ok(Ok(p)) => p,
            _ => {
                return Err(ApiError::unavailable(
                    "deadline passed while queued for a render slot",
                ));
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(cancel.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flag = cancel.clone();
        let job = move || {
            // The slot is held until the job really ends, cancelled or not.
            let _permit = permit;
            if flag.load(Ordering::Relaxed) {
                return;
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&flag)));
            let _ = tx.send(r);
        };
        // A job's parallel iterators run on the pool it was spawned on.
        match lane {
            Lane::Light => rayon::spawn(job),
            Lane::Heavy => self.heavy_pool.spawn(job),
        }
        metrics::counter!("pointillist_computations_total", "lane" => lane.name()).increment(1);
        let out = match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            // Object storage failed under a scan (see `store::remote`).
            Ok(Ok(Err(p))) => match p.downcast::<crate::store::remote::Unavailable>() {
                Ok(u) => Err(ApiError::unavailable(u.0)),
                Err(_) => Err(ApiError::internal("render failed unexpectedly")),
            },
            Ok(Err(_)) => Err(ApiError::unavailable("render was cancelled")),
            Err(_) => Err(ApiError::unavailable("deadline passed: render cancelled")),
        };
        drop(guard);
        out
    }
}

/// Sets the cancel flag when the request future ends for any reason
/// (finished, deadline, client gone); a finished job ignores it.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Reject oversized query strings (414) and header sections (431), and
/// requests framed two ways (400), before routing.
async fn limits(req: Request, next: Next) -> Response {
    // RFC 9112 §6.3: a message with both is a request-smuggling attempt, or
    // at best ambiguous to a proxy in front; refuse it.
    if req
        .headers()
        .contains_key(axum::http::header::CONTENT_LENGTH)
        && req
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING)
    {
        return ApiError::bad_request(
            "a request may not carry both Content-Length and Transfer-Encoding",
        )
        .into_response();
    }
    if req.uri().query().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return ApiError {
            status: StatusCode::URI_TOO_LONG,
            message: format!("query string longer than {MAX_QUERY_BYTES} bytes"),
        }
        .into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!("request headers larger than {MAX_HEADER_BYTES} bytes"),
        }
        .into_response();
    }
    next.run(req).await
}

/// Count requests and latency by route and status.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let t = Instant::now();
    let mut resp = next.run(req).await;
    default_cache_control(&route, &mut resp);
    let status = resp.status().as_u16().to_string();
    metrics::counter!("pointillist_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("pointillist_request_seconds", "route" => route)
        .record(t.elapsed().as_secs_f64());
    resp
}

/// `Cache-Control` for responses whose handler set none: the JSON of a
/// dataset (TileJSON, histograms, counts, the catalog, the OpenAPI
/// document) may be kept a minute by browsers and proxies, as it changes
/// only on a reload; health, metrics, admin and errors never.
fn default_cache_control(route: &str, resp: &mut Response) {
    use axum::http::header::CACHE_CONTROL;
    if resp.headers().contains_key(CACHE_CONTROL) {
        return;
    }
    let live = matches!(route, "/health" | "/metrics" | "unmatched") || route.starts_with("/admin");
    let value = if live || !resp.status().is_success() {
        "no-store"
    } else {
        "public, max-age=60"
    };
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(value));
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

/// The application router.
pub fn router(state: Arc<AppState>) -> Router {
    // Preflights are answered with the headers they ask for (a client
    // sending `Authorization` included: a `*` would not cover it). With any
    // origin allowed the answer does not depend on the request's Origin, so
    // responses carry no `Vary: origin`, which would split shared caches.
    let cors = if state.config.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::new()
            .allow_origin(AllowOrigin::any())
            .vary([axum::http::header::ACCESS_CONTROL_REQUEST_HEADERS])
    } else {
        let origins: Vec<HeaderValue> = state
            .config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new().allow_origin(origins)
    }
    .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
    .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
    .expose_headers([
        axum::http::header::ETAG,
        axum::http::HeaderName::from_static("server-timing"),
    ]);
    let timeout = Duration::from_millis(state.config.timeout_ms.saturating_add(5_000));
    Router::new()
        .route("/", get(assets::index))
        .route("/static/{*path}", get(assets::file))
        .route("/health", get(metadata::health))
        .route("/metrics", get(metrics_endpoint))
        .route("/openapi.json", get(openapi::openapi))
        .route("/datasets", get(metadata::datasets))
        .route("/datasets/{name}", get(metadata::dataset))
        .route("/datasets/{name}/tilejson", get(metadata::tilejson))
        .route(
            "/datasets/{name}/histogram/{column}",
            get(crossfilter::histogram),
        )
        .route("/datasets/{name}/count", get(crossfilter::count))
        .route("/datasets/{name}/aggregate", get(data::aggregate))
        .route("/datasets/{name}/points", get(data::points))
        .route("/datasets/{name}/legend", get(metadata::legend))
        .route("/tiles/{name}/{z}/{x}/{file}", get(tiles::tile))
        .route("/admin/reload", post(admin::reload))
        .fallback(not_found)
        .layer(middleware::from_fn(track))
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("internal error").into_response()
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(middleware::from_fn(limits))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn metrics_endpoint(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let cat = state.catalog.load();
    metrics::gauge!("pointillist_datasets").set(cat.datasets.len() as f64);
    // Cache sizes settle after the caches' pending upkeep.
    state.tiles.run_pending_tasks().await;
    state.cells.run_pending_tasks().await;
    state.filter_bits.run_pending_tasks().await;
    metrics::gauge!("pointillist_tile_cache_bytes").set(state.tiles.weighted_size() as f64);
    metrics::gauge!("pointillist_query_cells_bytes").set(state.cells.weighted_size() as f64);
    metrics::gauge!("pointillist_filter_mask_cache_bytes")
        .set(state.filter_bits.weighted_size() as f64);
    let o = &state.objects;
    metrics::gauge!("pointillist_object_cache_bytes").set(o.used_bytes() as f64);
    metrics::counter!("pointillist_object_chunks_total", "result" => "hit")
        .absolute(o.chunk_hits());
    metrics::counter!("pointillist_object_chunks_total", "result" => "miss")
        .absolute(o.chunk_misses());
    if let Some(bytes) = storage_read_bytes() {
        // What the process made the kernel fetch from storage: page faults
        // on the mapped data files (and readahead) once the data is larger
        // than the page cache holds.
        metrics::gauge!("pointillist_storage_read_bytes").set(bytes as f64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// Bytes this process caused to be read from storage (`read_bytes` of
/// `/proc/self/io`; `None` where the kernel does not say).
fn storage_read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Serve until SIGINT/SIGTERM, then finish requests in flight.
/// Reload the catalog every `object_retry_s` while a dataset on object
/// storage failed to open or was retired because its object changed: the
/// other datasets serve meanwhile, and a storage outage or a new upload
/// heals without an operator.
async fn retry_object_storage(state: Arc<AppState>) {
    let every = Duration::from_secs(state.config.object_retry_s);
    loop {
        tokio::time::sleep(every).await;
        if !state.catalog.load().remote_needs_retry() {
            continue;
        }
        let _one_at_a_time = state.reload.lock().await;
        let roots = state.config.datasets.clone();
        let previous = state.catalog.load_full();
        let objects = state.objects.clone();
        if let Ok(cat) =
            tokio::task::spawn_blocking(move || Catalog::load(&roots, Some(&previous), &objects))
                .await
        {
            let errors = cat.errors.len();
            state.catalog.store(Arc::new(cat));
            tracing::info!(errors, "catalog reloaded to retry object storage");
        }
    }
}

/// Run the server until interrupted.
pub async fn serve(mut config: ServerConfig) -> Result<(), std::io::Error> {
    crate::store::set_read_ahead(config.read_ahead);
    let invalid = |e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    config.fit_to_budget().map_err(invalid)?;
    config.validate().map_err(invalid)?;
    if config.memory_budget_mb > 0 {
        tracing::info!(parts = ?config.memory_parts(), "memory budget {} MiB", config.memory_budget_mb);
    }
    let bind = config.bind;
    // The lease-break handler must be in place before any lease is taken:
    // SIGIO's default action ends the process.
    #[cfg(unix)]
    let lease_breaks = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::io());
    #[cfg(unix)]
    if lease_breaks.is_ok() {
        crate::store::files::enable_leases();
    }
    let state = AppState::new(config);
    #[cfg(unix)]
    match lease_breaks {
        Ok(signals) => {
            tokio::spawn(watch_lease_breaks(state.clone(), signals));
        }
        Err(e) => tracing::warn!(error = %e, "no SIGIO handler: datasets are not leased"),
    }
    if state.config.object_retry_s > 0
        && state
            .config
            .datasets
            .iter()
            .any(|r| crate::store::remote::is_remote(r))
    {
        tokio::spawn(retry_object_storage(state.clone()));
    }
    {
        let cat = state.catalog.load();
        for (path, err) in &cat.errors {
            tracing::warn!(path = %path.display(), error = %err, "dataset skipped");
        }
        if cat.datasets.is_empty() {
            if state.config.admin_token.is_some() {
                tracing::warn!("no datasets loaded; add some and POST /admin/reload");
            } else {
                tracing::warn!(
                    "no datasets loaded; add some and restart, or set POINTILLIST_ADMIN_TOKEN (admin_token) to enable POST /admin/reload"
                );
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let c = &state.config;
    let limits = listen::ConnLimits {
        max_connections: c.max_connections,
        header_timeout: Duration::from_millis(c.header_timeout_ms),
        idle_timeout: Duration::from_millis(c.idle_timeout_ms),
    };
    let drain = Duration::from_millis(c.timeout_ms.saturating_add(5_000));
    listen::run(listener, router(state), limits, shutdown_signal(), drain).await;
    Ok(())
}

/// On SIGIO (a writer waiting on a dataset's lease), retire every dataset
/// whose lease is being broken: off the runtime, since retiring waits for
/// the requests reading it.
#[cfg(unix)]
async fn watch_lease_breaks(state: Arc<AppState>, mut signals: tokio::signal::unix::Signal) {
    while signals.recv().await.is_some() {
        let cat = state.catalog.load_full();
        for entry in cat.datasets.values() {
            if entry.dataset.files.lease_breaking() {
                let e = entry.clone();
                tokio::task::spawn_blocking(move || {
                    e.dataset.files.retire(format!(
                        "a file of dataset {:?} is being changed in place",
                        e.name
                    ))
                });
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
