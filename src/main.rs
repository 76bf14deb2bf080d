//! The `pointillist` command line.

use anyhow::{Context, Result};

// Tiles allocate and free grids of 0.25–1.3 MB per request. glibc returns
// blocks that large to the kernel on free, so every request paid for fresh
// zeroed pages (page faults were a fifth of a categorical tile's time);
// mimalloc keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use pointillist::datagen::{DemoKind, GenOptions};
use pointillist::geo::{MercatorBox, TileId};
use pointillist::ingest::{Crs, Format, IngestOptions};
use pointillist::pack::{self, PackOptions};
use pointillist::query::View;
use pointillist::raster::Aggregate;
use pointillist::raster::cells::QueryCells;
use pointillist::raster::plan::Source;
use pointillist::render::{self, Scale, Style};
use pointillist::server::ServerConfig;
use pointillist::server::params::{Params, RenderQuery};
use pointillist::server::spec;
use pointillist::shade;
use pointillist::store::{ColumnKind, Dataset};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "pointillist",
    version,
    about = "Turn millions of map points into coloured raster tiles, fast.",
    after_help = "Environment:\n  RUST_LOG                 log filter (default info; e.g. debug, pointillist=trace)\n  POINTILLIST_ADMIN_TOKEN  bearer token that enables POST /admin/reload (serve)\n  AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\n                           object storage for s3:// datasets (serve)\nLogs are coloured only on a terminal."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a realistic demo dataset as Parquet (towers: OpenCelliD-like; ais: vessel positions).
    Gen {
        /// towers or ais.
        kind: String,
        /// Rows to generate.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Random seed (same seed, same file).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output Parquet file.
        #[arg(long, short)]
        out: PathBuf,
        /// Attribute columns to keep besides lon/lat, comma-separated
        /// (default: all), e.g. `--columns mmsi,vessel_type,sog,timestamp`.
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
    },
    /// Pack point files (Parquet, GeoParquet, Arrow IPC, CSV) into a dataset.
    Pack(PackArgs),
    /// Describe a packed dataset.
    Info {
        /// Dataset directory.
        dir: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render a tile or a viewport to PNG, or its raw aggregate to .npy / .json.
    Render(RenderArgs),
    /// Serve packed datasets over HTTP: tiles, histograms, the explorer.
    Serve(ServeArgs),
    /// Generate and pack the demo towers dataset if missing, then serve it.
    Demo {
        /// Where the demo data lives.
        #[arg(long, default_value = "demo-data")]
        dir: PathBuf,
        /// Rows of demo towers to generate.
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
    },
}

#[derive(Args)]
struct RenderArgs {
    /// Dataset directory.
    dir: PathBuf,
    /// An XYZ tile: z/x/y.
    #[arg(long, conflicts_with = "bbox")]
    tile: Option<String>,
    /// A viewport: minlon,minlat,maxlon,maxlat (degrees).
    #[arg(long, requires_all = ["width", "height"], allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Viewport width in pixels.
    #[arg(long)]
    width: Option<u32>,
    /// Viewport height in pixels.
    #[arg(long)]
    height: Option<u32>,
    /// Tile size (256 or 512).
    #[arg(long, default_value_t = 256)]
    tile_size: u32,
    /// count, any, sum:COL, mean:COL, min:COL, max:COL, std:COL, var:COL, count_cat:COL, by:CAT:sum:COL, by:CAT:mean:COL.
    #[arg(long, default_value = "count")]
    agg: String,
    /// linear, log, cbrt or eq_hist.
    #[arg(long)]
    how: Option<String>,
    /// Colormap name, a colour, or comma-separated hex colours.
    #[arg(long)]
    cmap: Option<String>,
    /// Category colours (hex list or LABEL:COLOUR pairs).
    #[arg(long)]
    color_key: Option<String>,
    /// Colour scale min,max (not with eq_hist).
    #[arg(long)]
    span: Option<String>,
    /// Spread points by N pixels.
    #[arg(long)]
    spread: Option<u32>,
    /// Background colour.
    #[arg(long)]
    background: Option<String>,
    /// Colour scale of a tile: zoom (seamless; estimated from a bounded sample over large datasets, the default), exact (seamless, always exact) or tile.
    #[arg(long)]
    scale: Option<String>,
    /// Spread shape: circle or square.
    #[arg(long)]
    shape: Option<String>,
    /// Datashader's dynspread: threshold[,max_px].
    #[arg(long)]
    dynspread: Option<String>,
    /// Alpha of coloured pixels (0..=255).
    #[arg(long)]
    alpha: Option<u8>,
    /// Lowest alpha (0..=255, at most --alpha).
    #[arg(long)]
    min_alpha: Option<u8>,
    /// Datashader's rescale_discrete_levels for eq_hist.
    #[arg(long)]
    rescale_discrete_levels: bool,
    /// COL:MIN..MAX or COL:in:A,B (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    filter: Vec<String>,
    /// Output: .png, .webp (lossless), .npy or .json.
    #[arg(long, short)]
    out: PathBuf,
    /// Render N times and print median timings (aggregate, shade, PNG and
    /// WebP encoding, with both sizes) as JSON.
    #[arg(long, default_value_t = 0)]
    timings: usize,
}

#[derive(Args)]
struct ServeArgs {
    /// Dataset directories, or catalog directories holding datasets; or
    /// s3://BUCKET/PREFIX for datasets on S3-compatible object storage
    /// (configured by the AWS_* environment variables: AWS_ENDPOINT_URL,
    /// AWS_ALLOW_HTTP, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    dirs: Vec<PathBuf>,
    /// TOML config file (see README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<std::net::SocketAddr>,
    /// Tile cache size in MiB (0 disables it).
    #[arg(long)]
    cache_mb: Option<u64>,
    /// Query-cell cache size in MiB (0: low-zoom tiles of filtered or value
    /// queries read the rows).
    #[arg(long)]
    cells_mb: Option<u64>,
    /// Filter bitset cache size in MiB (0: histograms re-read filtered columns).
    #[arg(long, alias = "masks-mb")]
    filter_bits_mb: Option<u64>,
    /// Request deadline in milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Public base URL for absolute URLs in responses (TileJSON).
    #[arg(long)]
    public_url: Option<String>,
    /// Build absolute URLs from X-Forwarded-*/Host (behind a trusted proxy only).
    #[arg(long)]
    trust_proxy: bool,
    /// Tiles with no rows of their dataset: 204 (No Content, the default)
    /// or png (a transparent image, for ArcGIS Online and MapLibre < 4).
    #[arg(long, value_name = "204|png")]
    empty_tiles: Option<pointillist::server::EmptyTiles>,
    /// Memory one request's aggregation grids may take, in MiB (larger: 413).
    #[arg(long)]
    max_grid_mb: Option<u64>,
    /// Most client connections open at once.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Heap the server may hold, in MiB: caches left at their defaults are
    /// sized from it, and it refuses to start if the settings could exceed it.
    #[arg(long)]
    memory_budget: Option<u64>,
    /// Rows an estimated zoom colour scale reads (0: every scale exact).
    #[arg(long)]
    scale_sample_rows: Option<u64>,
    /// Do not advise the kernel to read ahead what a tile is about to scan
    /// (pages are then faulted in one at a time).
    #[arg(long)]
    no_read_ahead: bool,
    /// Directory of the disk cache for s3:// datasets (default: in the
    /// system's temporary directory).
    #[arg(long)]
    object_cache: Option<PathBuf>,
    /// Bytes of fetched s3:// data the disk cache may hold, in MiB.
    #[arg(long)]
    object_cache_mb: Option<u64>,
}

#[derive(Args)]
struct PackArgs {
    /// Input files, directories or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output dataset directory.
    #[arg(long, short)]
    out: PathBuf,
    /// Longitude column (default: detected).
    #[arg(long)]
    lon: Option<String>,
    /// Latitude column (default: detected).
    #[arg(long)]
    lat: Option<String>,
    /// X column (use with --y; degrees unless --crs 3857).
    #[arg(long)]
    x: Option<String>,
    /// Y column.
    #[arg(long)]
    y: Option<String>,
    /// Geometry column (default: detected): WKB, GeoArrow points, or text
    /// as WKT (`POINT (x y)`, EWKT) or hex WKB.
    #[arg(long)]
    geometry: Option<String>,
    /// GeoPackage layer to read, when the file has several point layers.
    #[arg(long)]
    layer: Option<String>,
    /// Input format when the name does not tell it (standard input `-`, a
    /// pipe): csv, tsv, arrows, geojsonl, ... (default: from the first bytes).
    #[arg(long)]
    format: Option<String>,
    /// CRS of --x/--y or of a geometry column, as EPSG:NNNN (or NNNN): 4326
    /// (degrees, the default), 3857 (Web Mercator metres), or any other EPSG
    /// code (UTM zones, national grids), reprojected. Overrides a file's own.
    #[arg(long)]
    crs: Option<String>,
    /// Attribute columns to keep, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Rows per partition.
    #[arg(long, default_value_t = pack::DEFAULT_PARTITION_ROWS)]
    partition_rows: usize,
    /// Memory for buffered rows before sorted runs spill to disk, e.g. 1536M
    /// or 4G [default: 2304M, or half the cgroup's memory limit or the RAM
    /// where that is smaller].
    #[arg(long, value_parser = parse_bytes)]
    memory_limit: Option<u64>,
    /// Replace an existing output directory.
    #[arg(long)]
    force: bool,
    /// Fail on the first CSV row that does not parse (default: skip and count).
    #[arg(long)]
    strict: bool,
    /// Field delimiter of text inputs: one character, or `tab` (default:
    /// detected from the header line among `,` tab `;` `|`).
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Numbers in text inputs use a decimal comma (`2,5`).
    #[arg(long)]
    decimal_comma: bool,
    /// Finest precomputed overview level (zoom + log2 tile size, 8..=16;
    /// 0 for none): count / count_cat tiles up to it are served from the
    /// overview instead of the rows.
    #[arg(long, default_value_t = pointillist::store::overview::DEFAULT_LEVEL,
          value_parser = parse_overview_level)]
    overview_level: u32,
    /// Per-cell statistics of numeric columns (unfiltered sum/mean/min/max/
    /// std/var tiles to z4 without a pass over the rows) may take up to this
    /// share of the data; 0 for none.
    #[arg(long, default_value_t = pack::DEFAULT_STATS_SHARE, value_parser = parse_share)]
    stats_share: f64,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a share from 0 to 1, e.g. 0.25".into()),
    }
}

fn parse_overview_level(s: &str) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if v == 0
        || (pointillist::store::overview::MIN_LEVEL..=pointillist::store::overview::MAX_LEVEL)
            .contains(&v)
    {
        Ok(v)
    } else {
        Err("expected 0 (no overview) or a level from 8 to 16".into())
    }
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "a delimiter is one ASCII character or `tab`, got {s:?}"
        )),
    }
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown unit in {s:?} (use K, M, G)")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a size: {s:?}"))?;
    if v.is_nan() || v <= 0.0 {
        return Err(format!("size must be positive: {s:?}"));
    }
    Ok((v * mult as f64) as u64)
}

fn main() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {}", report(&e));
        std::process::exit(1);
    }
}

/// An error and its causes on one line, each cause once: library errors
/// often name their cause in their own message as well as chaining it.
fn report(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.to_lowercase().contains(&c.to_lowercase()) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// The memory limit of a pack the user did not size: the machine's and the
/// cgroup's memory decide it (`pack::memory`), and the log says when they
/// cut it below the fixed default.
fn memory_limit() -> u64 {
    let d = pack::memory::default_memory_limit();
    if let Some((what, bound)) = d.bound {
        tracing::info!(
            "memory limit {} MiB: {:.0}% of the {} MiB {what} limit (--memory-limit sets it)",
            d.bytes >> 20,
            pack::memory::SHARE * 100.0,
            bound >> 20
        );
    }
    d.bytes
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Gen {
            kind,
            rows,
            seed,
            out,
            columns,
        } => {
            let kind: DemoKind = kind.parse()?;
            let mut o = GenOptions::new(kind, rows, out);
            o.seed = seed;
            o.columns = columns;
            let r = pointillist::datagen::generate(&o).context("gen failed")?;
            println!(
                "generated {} {kind} rows in {:.2}s ({:.0} rows/s) → {}",
                r.rows,
                r.seconds,
                r.rows as f64 / r.seconds.max(1e-9),
                o.out.display()
            );
        }
        Command::Render(a) => render_cmd(a)?,
        Command::Serve(a) => {
            let mut config = match &a.config {
                Some(p) => ServerConfig::from_file(p).map_err(anyhow::Error::msg)?,
                None => ServerConfig::default(),
            };
            config.datasets.extend(a.dirs);
            if let Some(b) = a.bind {
                config.bind = b;
            }
            if let Some(c) = a.cache_mb {
                config.cache_mb = c;
            }
            if let Some(c) = a.cells_mb {
                config.cells_mb = c;
            }
            if let Some(b) = a.memory_budget {
                config.memory_budget_mb = b;
            }
            if let Some(r) = a.scale_sample_rows {
                config.scale_sample_rows = r;
            }
            config.read_ahead &= !a.no_read_ahead;
            if a.object_cache.is_some() {
                config.object_cache = a.object_cache;
            }
            if let Some(m) = a.object_cache_mb {
                config.object_cache_mb = m;
            }
            if let Some(m) = a.filter_bits_mb {
                config.filter_bits_mb = m;
            }
            if let Some(t) = a.timeout_ms {
                config.timeout_ms = t;
            }
            if a.public_url.is_some() {
                config.public_url = a.public_url;
            }
            config.trust_proxy |= a.trust_proxy;
            if let Some(e) = a.empty_tiles {
                config.empty_tiles = e;
            }
            if let Some(m) = a.max_grid_mb {
                config.max_grid_mb = m;
            }
            if let Some(m) = a.max_connections {
                config.max_connections = m;
            }
            if config.datasets.is_empty() {
                anyhow::bail!(
                    "no datasets: pass dataset directories or set `datasets` in the config"
                );
            }
            serve(config)?;
        }
        Command::Demo { dir, rows, bind } => {
            let ds = dir.join("towers");
            if !ds.join(pointillist::store::MANIFEST_FILE).is_file() {
                std::fs::create_dir_all(&dir)?;
                let parquet = dir.join("towers.parquet");
                if !parquet.is_file() {
                    let mut o = GenOptions::new(DemoKind::Towers, rows, &parquet);
                    o.seed = 42;
                    let r = pointillist::datagen::generate(&o).context("generating demo towers")?;
                    println!("generated {} demo towers in {:.1}s", r.rows, r.seconds);
                }
                let mut o = PackOptions::new(vec![parquet.display().to_string()], &ds);
                o.memory_limit = memory_limit();
                o.progress = std::io::stderr().is_terminal();
                o.force = true;
                let r = pack::pack(&o).context("packing demo towers")?;
                println!("packed {} rows in {:.1}s", r.rows, r.seconds);
            }
            let config = ServerConfig {
                bind,
                datasets: vec![ds],
                ..ServerConfig::default()
            };
            println!("explorer: http://{bind}/");
            serve(config)?;
        }
        Command::Pack(a) => {
            let crs = a.crs.as_deref().map(Crs::parse).transpose()?;
            let mut o = PackOptions::new(a.inputs, a.out);
            o.ingest = IngestOptions {
                lon: a.lon,
                lat: a.lat,
                x: a.x,
                y: a.y,
                geometry: a.geometry,
                layer: a.layer,
                format: a.format.as_deref().map(Format::parse).transpose()?,
                crs,
                columns: a.columns,
                strict: a.strict,
                delimiter: a.delimiter,
                decimal_comma: a.decimal_comma,
            };
            o.partition_rows = a.partition_rows;
            o.memory_limit = a.memory_limit.unwrap_or_else(memory_limit);
            o.force = a.force;
            o.overview_level = a.overview_level;
            o.stats_share = a.stats_share;
            o.progress = std::io::stderr().is_terminal();
            let r = pack::pack(&o).context("pack failed")?;
            println!(
                "packed {} rows into {} partitions in {:.2}s ({:.0} rows/s); dropped {} rows with NaN/out-of-range coordinates, skipped {} unparseable rows",
                r.rows,
                r.partitions,
                r.seconds,
                r.rows as f64 / r.seconds.max(1e-9),
                r.dropped,
                r.bad_rows
            );
        }
        Command::Info { dir, json } => {
            let t = std::time::Instant::now();
            let ds =
                Dataset::open(&dir).with_context(|| format!("cannot open {}", dir.display()))?;
            let open_ms = t.elapsed().as_secs_f64() * 1e3;
            if json {
                emit(&(serde_json::to_string_pretty(&ds.manifest)? + "\n"))?;
            } else {
                emit(&format_info(&ds, open_ms))?;
            }
        }
    }
    Ok(())
}

fn format_info(ds: &Dataset, open_ms: f64) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let m = &ds.manifest;
    let b = m.bounds.lnglat;
    let _ = writeln!(o, "dataset     {}", m.name);
    let _ = writeln!(
        o,
        "rows        {} ({} dropped at pack time)",
        m.rows, m.dropped_rows
    );
    let _ = writeln!(
        o,
        "bounds      west {:.5} south {:.5} east {:.5} north {:.5}",
        b[0], b[1], b[2], b[3]
    );
    let _ = writeln!(
        o,
        "partitions  {} (opened in {open_ms:.2} ms)",
        m.partitions.len()
    );
    let _ = writeln!(
        o,
        "data        {} bytes, format v{}, packed {}",
        m.data_bytes, m.version, m.created
    );
    match &m.overview {
        Some(ov) => {
            let cats: Vec<&str> = ov.categorical.iter().map(|c| c.name.as_str()).collect();
            let _ = writeln!(
                o,
                "overview    pixel levels {}..={} ({} cells at the finest), by category: {}; {} bytes",
                ov.levels.first().map_or(0, |l| l.level),
                ov.levels.last().map_or(0, |l| l.level),
                ov.levels.last().map_or(0, |l| l.cells),
                if cats.is_empty() {
                    "-".to_string()
                } else {
                    cats.join(", ")
                },
                ov.bytes
            );
        }
        None => {
            let _ = writeln!(o, "overview    none");
        }
    }
    let _ = writeln!(o, "columns:");
    for c in &m.columns {
        let s = &c.stats;
        let range = match c.kind {
            ColumnKind::Numeric => format!(
                "min {} max {} mean {:.4} std {:.4}",
                s.min.unwrap_or(f64::NAN),
                s.max.unwrap_or(f64::NAN),
                s.mean.unwrap_or(f64::NAN),
                s.std.unwrap_or(f64::NAN)
            ),
            ColumnKind::Temporal => {
                let t = |v: Option<f64>| {
                    v.and_then(|v| chrono::DateTime::from_timestamp_micros(v as i64))
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default()
                };
                format!("from {} to {}", t(s.min), t(s.max))
            }
            ColumnKind::Categorical => c
                .categories
                .iter()
                .zip(&s.category_counts)
                .map(|(l, n)| format!("{l}={n}"))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "  {:<16} {:<12} {:<28} nulls {:<8} {}",
            c.name,
            format!("{:?}", c.kind).to_lowercase(),
            c.arrow_type,
            s.nulls,
            range
        );
    }
    o
}

fn serve(config: ServerConfig) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(pointillist::server::serve(config))?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// The render flags as the server's query parameters, so one parser
/// (and one declaration of each, `server::spec`) serves both.
fn render_params(a: &RenderArgs) -> Params {
    let mut pairs: Vec<(String, String)> = vec![(spec::AGG.name.into(), a.agg.clone())];
    let mut put = |p: &spec::Param, v: Option<String>| {
        if let Some(v) = v {
            pairs.push((p.name.to_string(), v));
        }
    };
    put(&spec::HOW, a.how.clone());
    put(&spec::CMAP, a.cmap.clone());
    put(&spec::COLOR_KEY, a.color_key.clone());
    put(&spec::SPAN, a.span.clone());
    put(&spec::SPREAD, a.spread.map(|v| v.to_string()));
    put(&spec::SHAPE, a.shape.clone());
    put(&spec::DYNSPREAD, a.dynspread.clone());
    put(&spec::SCALE, a.scale.clone());
    put(&spec::BACKGROUND, a.background.clone());
    put(&spec::ALPHA, a.alpha.map(|v| v.to_string()));
    put(&spec::MIN_ALPHA, a.min_alpha.map(|v| v.to_string()));
    put(
        &spec::RESCALE_DISCRETE_LEVELS,
        a.rescale_discrete_levels.then(|| "true".to_string()),
    );
    put(&spec::TILE_SIZE, Some(a.tile_size.to_string()));
    put(&spec::BBOX, a.bbox.clone());
    for f in &a.filter {
        put(&spec::FILTER, Some(f.clone()));
    }
    Params(pairs)
}

/// `--tile z/x/y`, or `--bbox` with `--width` and `--height`.
fn render_view(a: &RenderArgs, bbox: Option<MercatorBox>, tile_size: u32) -> Result<View> {
    Ok(match (&a.tile, bbox) {
        (Some(t), None) => {
            let p: Vec<&str> = t.split('/').collect();
            let parse = |s: &str| {
                s.parse::<u64>()
                    .map_err(|_| anyhow::anyhow!("--tile must be z/x/y, got {t:?}"))
            };
            anyhow::ensure!(p.len() == 3, "--tile must be z/x/y, got {t:?}");
            let tile = TileId::new(parse(p[0])? as u32, parse(p[1])?, parse(p[2])?)?;
            View::tile(tile, tile_size)?
        }
        (None, Some(bbox)) => {
            View::viewport(bbox, a.width.unwrap_or(256), a.height.unwrap_or(256))?
        }
        _ => anyhow::bail!("give either --tile z/x/y or --bbox with --width and --height"),
    })
}

/// One `--timings` run: rows scanned, the stage times and the two sizes.
struct TimedRun {
    rows: u64,
    /// Zoom statistics, aggregation, shading, PNG and WebP encoding, in ms.
    ms: [f64; 5],
    /// PNG and WebP bytes.
    bytes: [usize; 2],
}

/// `--timings N`: run the stages `N` times and print their medians as JSON.
/// `total_ms` counts the encoding of the `--out` format.
fn print_timings(
    runs: usize,
    tile_plan: Source,
    scale_plan: Source,
    format: shade::ImageFormat,
    mut once: impl FnMut() -> Result<TimedRun>,
) -> Result<()> {
    let mut stages: [Vec<f64>; 5] = Default::default();
    let (mut rows, mut bytes) = (0, [0; 2]);
    for _ in 0..runs {
        let r = once()?;
        (rows, bytes) = (r.rows, r.bytes);
        for (s, t) in stages.iter_mut().zip(r.ms) {
            s.push(t);
        }
    }
    let [z, ag, sh, pn, wp] = stages.map(median);
    let encode = if format == shade::ImageFormat::Webp {
        wp
    } else {
        pn
    };
    println!(
        "{}",
        serde_json::json!({"runs": runs, "plan": tile_plan.name(), "scale_plan": scale_plan.name(), "rows_scanned": rows, "zoom_stats_ms": z, "aggregate_ms": ag, "shade_ms": sh, "png_ms": pn, "webp_ms": wp, "png_bytes": bytes[0], "webp_bytes": bytes[1], "format": format.extension(), "total_ms": z + ag + sh + encode})
    );
    Ok(())
}

fn render_cmd(a: RenderArgs) -> Result<()> {
    let ds = Dataset::open(&a.dir).with_context(|| format!("cannot open {}", a.dir.display()))?;
    let m = &ds.manifest;
    let params = render_params(&a);
    let RenderQuery {
        agg,
        filters,
        style,
        tile_size,
    } = RenderQuery::from_params(&params, m)?;
    let view = render_view(&a, params.bbox()?, tile_size)?;
    let ext = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    anyhow::ensure!(
        matches!(ext.as_str(), "png" | "webp" | "npy" | "json"),
        "--out must end in .png, .webp, .npy or .json"
    );
    // The image format of `.png`/`.webp`, and what `--timings` totals.
    let format = shade::ImageFormat::from_extension(&ext).unwrap_or_default();
    // The server's planner picks the source: the overview, the query's
    // cells (one pass, then every tile and colour scale of levels <= 12 from
    // it) or the rows, with the server's default cell budget.
    let planner = ServerConfig::default().planner();
    let (tile_plan, scale_plan) = match view {
        View::Tile { tile, size } => {
            // No cells are cached here: the plan of a cold server.
            let tile_plan = planner.tile(&ds, tile, size, &agg, &filters, false);
            // A tile that builds its query's cells has them for its colour
            // scale too, as the server's tile does (it asks for the scale
            // once the cells are cached).
            let built = tile_plan == Source::Cells;
            let scale_plan = planner.scale(
                &ds,
                tile.z,
                size,
                &agg,
                &filters,
                style.scale == Scale::Exact,
                built,
            );
            (tile_plan, scale_plan)
        }
        View::TileMargin { .. } | View::Viewport { .. } => (planner.viewport(), planner.viewport()),
    };
    let cells =
        if tile_plan == Source::Cells || (scale_plan == Source::Cells && style.scale.seamless()) {
            Some(QueryCells::get(&ds, &agg, &filters, None)?)
        } else {
            None
        };
    let aggregate_view = || -> Result<Aggregate> {
        if let (View::Tile { tile, size }, Some(c), Source::Cells) = (view, &cells, tile_plan) {
            if let Some((grid, read)) = c.tile(tile, size) {
                return Ok(Aggregate {
                    grid,
                    rows_scanned: read,
                    partitions_skipped: 0,
                });
            }
        }
        Ok(pointillist::raster::aggregate(
            &ds, &view, &agg, &filters, None,
        )?)
    };
    let norm_for = |style: &Style| -> Result<Option<shade::Normalization>> {
        match view {
            View::Tile { tile, size } if style.scale.seamless() => {
                let level = tile.z as u32 + size.trailing_zeros();
                let exact = || {
                    pointillist::raster::zoom::zoom_stats(&ds, tile.z, size, &agg, &filters, None)
                };
                let stats = match (&cells, scale_plan) {
                    (Some(c), Source::Cells) => c
                        .zoom_stats(&ds, level)
                        .context("zoom level finer than the cells")?,
                    (_, Source::Sample) => match pointillist::raster::sample::zoom_stats(
                        &ds,
                        tile.z,
                        size,
                        &agg,
                        &filters,
                        planner.sample_rows,
                        None,
                    )? {
                        Some(s) => s,
                        // As the server: the query's cells where they can
                        // answer, else the exact pass.
                        None => match planner.unsampled_scale(&ds, tile.z, size, &agg) {
                            Source::Cells => QueryCells::get(&ds, &agg, &filters, None)?
                                .zoom_stats(&ds, level)
                                .context("zoom level finer than the cells")?,
                            _ => exact()?,
                        },
                    },
                    _ => exact()?,
                };
                Ok(render::zoom_normalization(&stats, &agg, style)?)
            }
            _ => Ok(None),
        }
    };
    let bytes = match ext.as_str() {
        "png" | "webp" => {
            let norm = norm_for(&style)?;
            let r = match view {
                // Spreading tiles read a margin from their neighbours, as
                // the server's do.
                View::Tile { tile, size } if style.margin() > 0 => render::render_tile(
                    &ds,
                    tile,
                    size,
                    &agg,
                    &filters,
                    &style,
                    norm.as_ref(),
                    Default::default(),
                )?,
                _ => render::shade_aggregate(aggregate_view()?, &agg, &style, norm.as_ref())?,
            };
            format.encode(&r.image)?
        }
        "npy" => pointillist::raster::export::to_npy(&aggregate_view()?.grid),
        _ => serde_json::to_vec(&pointillist::raster::export::to_json(
            &aggregate_view()?.grid,
        ))?,
    };
    let tmp = a
        .out
        .with_extension(format!("{ext}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    if a.timings > 0 {
        let once = || -> Result<TimedRun> {
            let t0 = std::time::Instant::now();
            let norm = norm_for(&style)?;
            let t1 = std::time::Instant::now();
            let agg_r = aggregate_view()?;
            let t2 = std::time::Instant::now();
            let img = render::shade_grid(&agg_r.grid, &agg, &style, norm.as_ref())?;
            let t3 = std::time::Instant::now();
            let png = shade::encode_png(&img)?;
            let t4 = std::time::Instant::now();
            let webp = shade::encode_webp(&img)?;
            let t5 = std::time::Instant::now();
            let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
            Ok(TimedRun {
                rows: agg_r.rows_scanned,
                ms: [ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4), ms(t4, t5)],
                bytes: [png.len(), webp.len()],
            })
        };
        print_timings(a.timings, tile_plan, scale_plan, format, once)?;
    }
    Ok(())
}

/// Write to stdout; a closed pipe (`pointillist info --json | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
