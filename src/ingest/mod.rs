//! Input readers: Parquet (incl. GeoParquet), Arrow IPC / Feather and CSV
//! (incl. OpenCelliD) → batches of projected, quantized points plus their
//! normalized attribute columns.

pub mod compress;
pub mod crs;
mod csv;
mod geom;
mod hive;
pub mod stream;
pub mod vector;

use crate::geo;
use crate::geo::{QX, QY};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt16Array, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per batch read from inputs.
pub const BATCH_ROWS: usize = 65_536;
/// Most columns an input may have. Every per-column step of a pack is
/// linear in the number of columns, and per-column buffers shrink as
/// columns grow (see [`batch_rows_for`]); this bound keeps a hostile
/// header (a million columns) from costing minutes and gigabytes.
pub const MAX_COLUMNS: usize = 10_000;
/// Bytes of column buffers one reader batch may reserve.
const BATCH_BYTES: usize = 64 << 20;

/// Rows per reader batch for `columns` columns: [`BATCH_ROWS`], fewer for
/// wide inputs so that a batch's buffers stay near 64 MiB, and never
/// fewer than 1,024.
pub fn batch_rows_for(columns: usize) -> usize {
    (BATCH_BYTES / (8 * columns.max(1))).clamp(1024, BATCH_ROWS)
}

/// Each column name's index in `schema`: one O(columns) pass, so that
/// looking up every column is linear rather than quadratic.
pub(crate) fn name_index(schema: &Schema) -> HashMap<&str, usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().as_str(), i))
        .collect()
}
/// A string column with at most this many distinct values becomes categorical.
pub const CATEGORY_LIMIT: usize = 1024;

/// Why an input cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No input files matched.
    #[error(
        "no .parquet, .arrow/.feather/.arrows, .csv/.tsv (optionally compressed), .geojson, .shp, .fgb or .gpkg files found for {0:?}"
    )]
    NoInput(Vec<String>),
    /// I/O failure on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file's content cannot be read as its format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Coordinate columns are missing, ambiguous or unusable.
    #[error("{0}")]
    Coordinates(String),
    /// A bad option (glob pattern, `--columns`).
    #[error("{0}")]
    Options(String),
    /// A CSV row did not parse and `--strict` was given.
    #[error("{path}: line {line}: {message} (rerun without --strict to skip bad rows)")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The consumer stopped reading (another input failed first).
    #[error("reading stopped because the pack was aborted")]
    Aborted,
    /// Inputs disagree on their columns.
    #[error("{path}: {message}")]
    Schema {
        /// The file that differs.
        path: PathBuf,
        /// How.
        message: String,
    },
}

/// Coordinate reference of x/y columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Crs {
    /// Longitude/latitude in degrees (EPSG:4326).
    #[default]
    Wgs84,
    /// Web Mercator metres (EPSG:3857).
    WebMercator,
    /// Any other EPSG CRS, reprojected at ingest ([`crs::Reprojector`]).
    Epsg(u16),
}

impl Crs {
    /// The CRS of an EPSG code: 4326 and 3857 read directly, any other
    /// code the EPSG definitions know is reprojected; an unknown code is
    /// an error.
    pub fn from_code(code: u16) -> Result<Crs, IngestError> {
        Ok(match code {
            4326 => Crs::Wgs84,
            3857 | 3785 => Crs::WebMercator,
            _ => {
                crs::Reprojector::new(code).map_err(IngestError::Coordinates)?;
                Crs::Epsg(code)
            }
        })
    }

    /// The CRS named by `EPSG:NNNN` (or `NNNN`, an OGC URN, `OGC:CRS84`).
    pub fn parse(s: &str) -> Result<Crs, IngestError> {
        Crs::from_code(crs::parse_code(s).map_err(IngestError::Options)?)
    }
}

/// User choices for reading inputs.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Longitude column (overrides detection).
    pub lon: Option<String>,
    /// Latitude column (overrides detection).
    pub lat: Option<String>,
    /// X column (metres with `Crs::WebMercator`, degrees otherwise).
    pub x: Option<String>,
    /// Y column.
    pub y: Option<String>,
    /// Geometry column: WKB, GeoArrow points, or text (WKT / hex WKB)
    /// (overrides detection).
    pub geometry: Option<String>,
    /// The layer of a GeoPackage with several point layers.
    pub layer: Option<String>,
    /// The input format, when neither the name nor (for standard input
    /// and pipes) the first bytes tell it.
    pub format: Option<Format>,
    /// CRS of x/y or geometry columns, when given (`--crs`): it overrides
    /// a file's own (GeoParquet metadata); without either, degrees.
    pub crs: Option<Crs>,
    /// Attribute columns to keep (default: all).
    pub columns: Option<Vec<String>>,
    /// Fail on the first CSV row that does not parse instead of skipping it.
    pub strict: bool,
    /// Field delimiter of text inputs (default: detected from the header
    /// line among comma, tab, semicolon and pipe).
    pub delimiter: Option<u8>,
    /// Numbers in text inputs use a decimal comma (`2,5`), as CSV files
    /// written in much of Europe do (usually with `;` between fields).
    pub decimal_comma: bool,
}

/// Input file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet (GeoParquet included).
    Parquet,
    /// Arrow IPC, file (Feather v2) or stream format, told apart by content.
    Ipc,
    /// Delimited text (comma, tab, semicolon or pipe, detected), optionally
    /// gzip, zstd or bzip2 compressed ([`compress`]).
    Csv,
    /// A vector GIS file of point features ([`vector`]).
    Vector(vector::Kind),
}

impl Format {
    /// The format `--format` names: a file extension (`csv`, `tsv`,
    /// `parquet`, `arrow`, `arrows`, `geojson`, `geojsonl`, `gpkg`, …).
    pub fn parse(name: &str) -> Result<Format, IngestError> {
        Format::of(Path::new(&format!("input.{}", name.to_ascii_lowercase()))).ok_or_else(|| {
            IngestError::Options(format!(
                "unknown --format {name:?} (expected csv, tsv, parquet, arrow, arrows, geojson, geojsonl, gpkg, fgb or shp)"
            ))
        })
    }

    /// A stream's format from its first bytes, when its name says none:
    /// Arrow IPC and Parquet by their magic, GeoJSON text sequences by
    /// their first character, anything else (compressed or not) as CSV.
    fn sniff(head: &[u8]) -> Format {
        match head {
            [b'A', b'R', b'R', b'O', b'W', b'1', ..] | [0xff, 0xff, 0xff, 0xff, ..] => Format::Ipc,
            [b'P', b'A', b'R', b'1', ..] => Format::Parquet,
            [0x1e, ..] | [b'{', ..] => Format::Vector(vector::Kind::GeoJsonSeq),
            _ => Format::Csv,
        }
    }

    /// The format of an input: `--format`, else its name, else (for a
    /// stream) its first bytes.
    fn of_input(path: &Path, o: &IngestOptions) -> Result<Format, IngestError> {
        if let Some(f) = o.format {
            return Ok(f);
        }
        if let Some(f) = Format::of(path) {
            return Ok(f);
        }
        if stream::is_stream(path) {
            let head = stream::head(path, 8).map_err(|e| fmt_err(path, e))?;
            return Ok(Format::sniff(&head));
        }
        Err(IngestError::Format {
            path: path.to_path_buf(),
            message: "unknown file type".into(),
        })
    }

    fn of(path: &Path) -> Option<Format> {
        let ext = compress::inner_extension(path)?;
        match ext.as_str() {
            "parquet" | "pq" | "geoparquet" => Some(Format::Parquet),
            "arrow" | "feather" | "ipc" | "arrows" => Some(Format::Ipc),
            "csv" | "txt" | "tsv" | "tab" => Some(Format::Csv),
            other => vector::Kind::of_extension(other).map(Format::Vector),
        }
    }
}

/// Batches of an Arrow IPC input, in the file format (with a footer) or
/// the stream format (`.arrows`, or a stream named `.arrow`): the file
/// format starts with the magic bytes `ARROW1`.
type IpcBatches = Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>>;

fn ipc_reader(path: &Path, pass: stream::Pass) -> Result<(SchemaRef, IpcBatches), IngestError> {
    use std::io::BufRead;
    if stream::is_stream(path) {
        // Only the stream format can be read without seeking.
        let raw = stream::open(path, pass).map_err(|e| fmt_err(path, e))?;
        let mut buffered = std::io::BufReader::with_capacity(1 << 20, raw);
        if buffered
            .fill_buf()
            .map_err(|e| fmt_err(path, e))?
            .starts_with(b"ARROW1")
        {
            return Err(fmt_err(
                path,
                "an Arrow IPC file (Feather) needs a file it can seek in, not a stream; \
                 write the IPC stream format, or save it to a file first",
            ));
        }
        let r = arrow_ipc::reader::StreamReader::try_new(buffered, None)
            .map_err(|e| fmt_err(path, format!("not a readable Arrow IPC stream: {e}")))?;
        return Ok((r.schema(), Box::new(r)));
    }
    let mut buffered = std::io::BufReader::with_capacity(1 << 20, open(path)?);
    let is_file = buffered
        .fill_buf()
        .map_err(|e| fmt_err(path, e))?
        .starts_with(b"ARROW1");
    if is_file {
        let r = arrow_ipc::reader::FileReader::try_new(buffered, None)
            .map_err(|e| fmt_err(path, format!("not a readable Arrow IPC file: {e}")))?;
        Ok((r.schema(), Box::new(r)))
    } else {
        let r = arrow_ipc::reader::StreamReader::try_new(buffered, None).map_err(|e| {
            fmt_err(
                path,
                format!("not a readable Arrow IPC file or stream: {e}"),
            )
        })?;
        Ok((r.schema(), Box::new(r)))
    }
}

/// Where a row's position comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum CoordSource {
    /// Two numeric columns.
    Columns {
        /// X / longitude column.
        x: String,
        /// Y / latitude column.
        y: String,
        /// Their CRS.
        crs: Crs,
    },
    /// A point geometry column (WKB or GeoArrow point).
    Geometry {
        /// The column.
        column: String,
        /// Its CRS.
        crs: Crs,
    },
}

impl CoordSource {
    fn columns(&self) -> Vec<&str> {
        match self {
            CoordSource::Columns { x, y, .. } => vec![x, y],
            CoordSource::Geometry { column, .. } => vec![column],
        }
    }
}

/// Expand file, directory and glob arguments into the list of input files.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>, IngestError> {
    let mut files = Vec::new();
    for input in inputs {
        let p = PathBuf::from(input);
        let mut found: Vec<PathBuf> = if input == stream::STDIN || stream::is_stream(&p) {
            // Standard input or a pipe: its format is told when planning.
            vec![p]
        } else if p.is_dir() {
            // Searched recursively, as DuckDB, Spark and Overture lay out
            // partitioned datasets; hidden and `_`-prefixed entries
            // (`_SUCCESS`, `_delta_log`, `.crc`) are a writer's bookkeeping.
            let mut files = Vec::new();
            let walk = walkdir::WalkDir::new(&p)
                .follow_links(true)
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with(['.', '_'])
                });
            for e in walk {
                let e = e.map_err(|e| IngestError::Io {
                    path: e.path().map_or_else(|| p.clone(), Path::to_path_buf),
                    source: e.into(),
                })?;
                if e.file_type().is_file() && Format::of(e.path()).is_some() {
                    files.push(e.into_path());
                }
            }
            files
        } else if p.exists() {
            if Format::of(&p).is_none() {
                return Err(IngestError::Format {
                    path: p,
                    message: "unknown file type (expected .parquet, .arrow/.feather/.arrows, .csv/.tsv (optionally .gz/.zst/.bz2), .geojson/.geojsonl, .shp/.zip, .fgb or .gpkg)"
                        .into(),
                });
            }
            vec![p]
        } else if input.contains(['*', '?', '[']) {
            glob::glob(input)
                .map_err(|e| IngestError::Options(format!("bad glob pattern {input:?}: {e}")))?
                .filter_map(Result::ok)
                .filter(|f| f.is_file() && Format::of(f).is_some())
                .collect()
        } else {
            return Err(IngestError::Io {
                path: p,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        };
        // A directory or pattern that matches nothing is more likely a
        // mistake than a wish to pack the other inputs only.
        if found.is_empty() {
            return Err(IngestError::NoInput(vec![input.clone()]));
        }
        found.sort();
        files.extend(found);
    }
    // The same file named twice (a file and a pattern matching it) is read once.
    let mut seen = HashSet::new();
    files.retain(|f| {
        f.as_os_str() == stream::STDIN
            || seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
    });
    if files.is_empty() {
        return Err(IngestError::NoInput(inputs.to_vec()));
    }
    Ok(files)
}

/// One independently readable piece of input: a Parquet row group or a whole
/// IPC/CSV file.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Position of the unit in input order (files in the order given, row
    /// groups in file order); rows with equal Hilbert keys keep this order.
    pub index: usize,
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Parquet row group, if any.
    pub row_group: Option<usize>,
    /// Rows, when known up front.
    pub rows: Option<u64>,
    /// Parquet footer, decoded once when planning.
    parquet: Option<ArrowReaderMetadata>,
    /// A vector file's own schema, learnt when planning.
    vector: Option<SchemaRef>,
}

/// Everything needed to read the inputs in parallel.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Work units.
    pub units: Vec<Unit>,
    /// How positions are read.
    pub coords: CoordSource,
    /// Normalized attribute schema (without coordinates), as written.
    pub attrs: SchemaRef,
    /// Columns from Hive `key=value` folders, with their types.
    pub hive: Vec<Field>,
    /// Options given.
    pub options: IngestOptions,
    /// Rows in all inputs, when the formats tell (Parquet, IPC).
    pub rows_hint: Option<u64>,
}

/// Bits of a row's input ordinal given to its position inside its batch
/// (batches hold at most [`BATCH_ROWS`] rows).
pub const ORD_ROW_BITS: u32 = 16;
/// Bits of a row's input ordinal given to the batch's position in its unit.
pub const ORD_SEQ_BITS: u32 = 24;
/// Most units a pack can read (the rest of the ordinal's 64 bits).
pub const MAX_UNITS: usize = 1 << (64 - ORD_ROW_BITS - ORD_SEQ_BITS);
const _: () = assert!(BATCH_ROWS <= 1 << ORD_ROW_BITS);

/// A batch of projected rows: their Hilbert keys and their attributes.
///
/// A string attribute with at most [`CATEGORY_LIMIT`] distinct values in
/// the batch arrives dictionary-coded: a `UInt16` column of codes into the
/// batch's own labels (listed in [`PointBatch::labels`]), so the rows a pack
/// buffers take two bytes for it and no string is hashed again; one with more
/// stays `Utf8`.
#[derive(Debug)]
pub struct PointBatch {
    /// The attributes of the valid rows. Their quantized coordinates are not
    /// a column: [`crate::geo::hilbert_point`] recovers them from the key.
    pub batch: RecordBatch,
    /// Hilbert key per row.
    pub keys: Vec<u64>,
    /// Input ordinal of the batch's first row: `unit`, batch sequence in the
    /// unit and row packed so that ordinals follow input order. Row `r` of
    /// the batch has ordinal `ordinal + r`; sorting by (key, ordinal) gives
    /// the same order however the units were scheduled.
    pub ordinal: u64,
    /// Rows dropped for NaN / out-of-range coordinates.
    pub dropped: u64,
    /// CSV rows skipped because they did not parse.
    pub bad_rows: u64,
    /// Per coded string attribute (its index among the attributes): the
    /// labels its codes stand for, each once, in code order.
    pub labels: Vec<(usize, Vec<String>)>,
}

/// Read every input's schema, detect coordinates, check the inputs agree on
/// their columns and list the units.
pub fn plan(files: &[PathBuf], options: &IngestOptions) -> Result<Plan, IngestError> {
    let mut units = Vec::new();
    let mut rows_hint = Some(0u64);
    let mut schemas: Vec<(PathBuf, SchemaRef)> = Vec::with_capacity(files.len());
    let mut first_geo: Option<Option<String>> = None;
    let hive = hive::fields(files)?;
    for path in files {
        let (schema, geo_meta, rows) = survey(path, options, &mut units)?;
        let schema = hive::with_fields(path, &schema, &hive)?;
        rows_hint = rows_hint.zip(rows).map(|(a, b)| a + b);
        check_unique_names(path, &schema)?;
        first_geo.get_or_insert(geo_meta);
        schemas.push((path.clone(), schema));
    }
    if units.len() > MAX_UNITS {
        return Err(IngestError::Options(format!(
            "{} input units (files and Parquet row groups); at most {MAX_UNITS} can be packed at once",
            units.len()
        )));
    }
    let (first_path, schema) = schemas.first().cloned().ok_or_else(|| {
        IngestError::NoInput(files.iter().map(|f| f.display().to_string()).collect())
    })?;
    let geo = first_geo.flatten();
    let coords = detect_coords(&schema, geo.as_deref(), options)?;
    if let Some(cols) = &options.columns {
        for c in cols {
            if schema.field_with_name(c).is_err() {
                return Err(IngestError::Options(format!(
                    "--columns names {c:?}, which is not in the input (columns: {})",
                    names_of(&schema)
                )));
            }
        }
    }
    let covering = covering_columns(geo.as_deref());
    let fields = attribute_fields(
        &first_path,
        &schema,
        &schemas[1..],
        &coords,
        &covering,
        options,
    )?;
    Ok(Plan {
        units,
        coords,
        hive,
        attrs: Arc::new(Schema::new(fields)),
        options: options.clone(),
        rows_hint,
    })
}

/// One input's schema, GeoParquet metadata and row count (when its
/// footer says), its units appended to `units`.
fn survey(
    path: &Path,
    options: &IngestOptions,
    units: &mut Vec<Unit>,
) -> Result<(SchemaRef, Option<String>, Option<u64>), IngestError> {
    let format = Format::of_input(path, options)?;
    // Text and the IPC stream format read front to back; the rest seek
    // (Parquet's footer is at the end, SQLite pages, index offsets). An
    // IPC *file* on a stream is told apart by content in `ipc_reader`.
    let streamable = matches!(
        format,
        Format::Csv
            | Format::Ipc
            | Format::Vector(vector::Kind::GeoJson | vector::Kind::GeoJsonSeq)
    );
    if !streamable && stream::is_stream(path) {
        let name = match format {
            Format::Vector(kind) => format!("{kind:?}"),
            _ => "Parquet".to_string(),
        };
        return Err(fmt_err(
            path,
            format!("{name} needs a file it can seek in, not a stream; save it to a file first"),
        ));
    }
    let whole_file = |units: &mut Vec<Unit>| {
        units.push(Unit {
            index: units.len(),
            path: path.to_path_buf(),
            format,
            row_group: None,
            rows: None,
            parquet: None,
            vector: None,
        })
    };
    Ok(match format {
        Format::Parquet => {
            let file = open(path)?;
            let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                .map_err(|e| fmt_err(path, format!("not a readable Parquet file: {e}")))?;
            let pq = meta.metadata().clone();
            let geo_meta = pq.file_metadata().key_value_metadata().and_then(|kv| {
                kv.iter()
                    .find(|k| k.key == "geo")
                    .and_then(|k| k.value.clone())
            });
            for (i, rg) in pq.row_groups().iter().enumerate() {
                units.push(Unit {
                    index: units.len(),
                    path: path.to_path_buf(),
                    format,
                    row_group: Some(i),
                    rows: Some(rg.num_rows() as u64),
                    parquet: Some(meta.clone()),
                    vector: None,
                });
            }
            let rows = pq.file_metadata().num_rows() as u64;
            (meta.schema().clone(), geo_meta, Some(rows))
        }
        Format::Ipc => {
            let (schema, _) = ipc_reader(path, stream::Pass::Plan)?;
            whole_file(units);
            (schema, None, None)
        }
        Format::Csv => {
            let schema = csv::infer_schema(path, options)?;
            whole_file(units);
            (schema, None, None)
        }
        Format::Vector(kind) => {
            let s = vector::survey(path, kind, options)?;
            whole_file(units);
            units.last_mut().expect("just pushed").vector = Some(s.schema.clone());
            (s.schema, Some(s.geo), None)
        }
    })
}

/// The columns a GeoParquet 1.1 `covering` names (the `bbox` struct of
/// `xmin`/`ymin`/`xmax`/`ymax` beside the geometry), from the `geo`
/// metadata of any geometry column.
fn covering_columns(geo: Option<&str>) -> Vec<String> {
    let Some(v) = geo.and_then(|g| serde_json::from_str::<serde_json::Value>(g).ok()) else {
        return Vec::new();
    };
    let mut out: Vec<String> = v["columns"]
        .as_object()
        .into_iter()
        .flat_map(|cols| cols.values())
        .filter_map(|c| c["covering"]["bbox"].as_object())
        .flat_map(|b| b.values())
        .filter_map(|path| path.get(0).and_then(|p| p.as_str()).map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The attribute columns to pack: the first input's columns less the
/// coordinates (and those `--columns` leaves out). Every input must have
/// the same columns (in any order); their types are widened to one type
/// per column (integers + floats → Float64, anything + text → text).
fn attribute_fields(
    first_path: &Path,
    schema: &SchemaRef,
    rest: &[(PathBuf, SchemaRef)],
    coords: &CoordSource,
    covering: &[String],
    options: &IngestOptions,
) -> Result<Vec<Field>, IngestError> {
    let coord_cols = coords.columns();
    let first_names = name_index(schema);
    let others: Vec<_> = rest.iter().map(|(p, s)| (p, s, name_index(s))).collect();
    // The columns of `a` that `b` lacks.
    let lacking = |a: &'_ Schema, b: &HashMap<&str, usize>| -> Vec<String> {
        a.fields()
            .iter()
            .filter(|f| !b.contains_key(f.name().as_str()))
            .map(|f| f.name().clone())
            .collect()
    };
    for (path, s, names) in &others {
        let missing = lacking(schema, names);
        let extra = lacking(s, &first_names);
        if !missing.is_empty() || !extra.is_empty() {
            return Err(IngestError::Schema {
                path: path.to_path_buf(),
                message: format!(
                    "columns differ from {}'s: missing {missing:?}, extra {extra:?}",
                    first_path.display()
                ),
            });
        }
    }
    let chosen: Option<HashSet<&str>> = options
        .columns
        .as_ref()
        .map(|cols| cols.iter().map(String::as_str).collect());
    let mut fields = Vec::new();
    for f in schema.fields() {
        if coord_cols.contains(&f.name().as_str()) || f.name() == QX || f.name() == QY {
            continue;
        }
        if chosen
            .as_ref()
            .is_some_and(|c| !c.contains(f.name().as_str()))
        {
            continue;
        }
        // A GeoParquet 1.1 bbox covering column restates the geometry; it
        // is kept only when --columns names it.
        if chosen.is_none() && covering.contains(f.name()) {
            continue;
        }
        let mut t = normalized_type(f.data_type());
        for (path, s, names) in &others {
            let other = normalized_type(s.field(names[f.name().as_str()]).data_type());
            t = widen(&t, &other).ok_or_else(|| IngestError::Schema {
                path: path.to_path_buf(),
                message: format!(
                    "column {:?} is {other} here but {t} in {}",
                    f.name(),
                    first_path.display()
                ),
            })?;
        }
        fields.push(Field::new(f.name(), t, true));
    }
    Ok(fields)
}

fn names_of(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_unique_names(path: &Path, schema: &Schema) -> Result<(), IngestError> {
    check_column_count(path, schema.fields().len())?;
    let mut seen = HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(IngestError::Schema {
                path: path.to_path_buf(),
                message: format!("column name {:?} appears more than once", f.name()),
            });
        }
    }
    Ok(())
}

/// Refuse inputs wider than [`MAX_COLUMNS`].
pub(crate) fn check_column_count(path: &Path, n: usize) -> Result<(), IngestError> {
    if n > MAX_COLUMNS {
        return Err(IngestError::Schema {
            path: path.to_path_buf(),
            message: format!(
                "{n} columns; at most {MAX_COLUMNS} can be packed (cut the file to the columns you need)"
            ),
        });
    }
    Ok(())
}

/// The type an attribute column is stored as.
fn normalized_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Dictionary(_, v) if v.is_string() => DataType::Utf8,
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Boolean => DataType::UInt8,
        DataType::Float16 | DataType::Decimal32(..) | DataType::Decimal64(..) => DataType::Float64,
        DataType::Decimal128(..) | DataType::Decimal256(..) => DataType::Float64,
        other => other.clone(),
    }
}

/// One type both normalized types convert to without losing values, if any.
fn widen(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    Some(match (a, b) {
        _ if a == b => a.clone(),
        (Null, t) | (t, Null) => t.clone(),
        (x, y) if x.is_integer() && y.is_integer() => Int64,
        (x, y) if x.is_numeric() && y.is_numeric() => Float64,
        (Timestamp(_, tz), Timestamp(..)) => Timestamp(TimeUnit::Microsecond, tz.clone()),
        (Utf8, t) | (t, Utf8) if t.is_primitive() => Utf8,
        _ => return None,
    })
}

const LON_NAMES: &[&str] = &["lon", "lng", "long", "longitude"];
const LAT_NAMES: &[&str] = &["lat", "latitude"];
/// Geometry column names: GeoParquet's and GeoPandas' `geometry`, PostGIS'
/// `geom`/`the_geom`, GDAL's `wkb_geometry` and QGIS' and GDAL's CSV `WKT`.
const GEOMETRY_NAMES: &[&str] = &["geometry", "geom", "the_geom", "wkb_geometry", "wkt"];

fn find_one(schema: &Schema, names: &[&str], what: &str) -> Result<Option<String>, IngestError> {
    let found: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| names.iter().any(|n| f.name().eq_ignore_ascii_case(n)))
        .map(|f| f.name().clone())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(IngestError::Coordinates(format!(
            "ambiguous {what} column: {found:?} all match; choose one with --lon/--lat or --x/--y"
        ))),
    }
}

fn detect_coords(
    schema: &Schema,
    geo_meta: Option<&str>,
    o: &IngestOptions,
) -> Result<CoordSource, IngestError> {
    let has = |c: &str| schema.field_with_name(c).is_ok();
    let check = |c: &String| -> Result<(), IngestError> {
        if has(c) {
            Ok(())
        } else {
            Err(IngestError::Coordinates(format!(
                "coordinate column {c:?} is not in the input (columns: {})",
                names_of(schema)
            )))
        }
    };
    if let Some(g) = &o.geometry {
        if o.lon.is_some() || o.lat.is_some() || o.x.is_some() || o.y.is_some() {
            return Err(IngestError::Coordinates(
                "give --geometry, or --lon/--lat, or --x/--y, not several".into(),
            ));
        }
        check(g)?;
        return Ok(CoordSource::Geometry {
            column: g.clone(),
            crs: o.crs.unwrap_or_default(),
        });
    }
    match (&o.lon, &o.lat, &o.x, &o.y) {
        (Some(lon), Some(lat), None, None) => {
            check(lon)?;
            check(lat)?;
            return Ok(CoordSource::Columns {
                x: lon.clone(),
                y: lat.clone(),
                crs: Crs::Wgs84,
            });
        }
        (None, None, Some(x), Some(y)) => {
            check(x)?;
            check(y)?;
            return Ok(CoordSource::Columns {
                x: x.clone(),
                y: y.clone(),
                crs: o.crs.unwrap_or_default(),
            });
        }
        (None, None, None, None) => {}
        _ => {
            return Err(IngestError::Coordinates(
                "give both --lon and --lat, or both --x and --y".into(),
            ));
        }
    }
    // GeoParquet names its geometry column and CRS (which --crs overrides).
    if let Some(meta) = geo_meta {
        if let Some(source) = geoparquet_source(schema, meta, o.crs)? {
            return Ok(source);
        }
    }
    let lon = find_one(schema, LON_NAMES, "longitude")?;
    let lat = find_one(schema, LAT_NAMES, "latitude")?;
    if let (Some(x), Some(y)) = (lon.clone(), lat.clone()) {
        return Ok(CoordSource::Columns {
            x,
            y,
            crs: Crs::Wgs84,
        });
    }
    let x = find_one(schema, &["x"], "x")?;
    let y = find_one(schema, &["y"], "y")?;
    if let (Some(x), Some(y)) = (x, y) {
        return Ok(CoordSource::Columns {
            x,
            y,
            crs: o.crs.unwrap_or_default(),
        });
    }
    if let Some(g) = find_one(schema, GEOMETRY_NAMES, "geometry")? {
        return Ok(CoordSource::Geometry {
            column: g,
            crs: o.crs.unwrap_or_default(),
        });
    }
    Err(IngestError::Coordinates(format!(
        "no coordinate columns found (looked for lon/lat/longitude/latitude, x/y or a geometry/geom/wkt column; \
         columns: {}); name them with --lon/--lat or --x/--y",
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The coordinate source a GeoParquet `geo` metadata entry describes;
/// a `given` CRS (`--crs`) replaces the metadata's.
fn geoparquet_source(
    schema: &Schema,
    meta: &str,
    given: Option<Crs>,
) -> Result<Option<CoordSource>, IngestError> {
    let v: serde_json::Value = match serde_json::from_str(meta) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("ignoring invalid GeoParquet metadata: {e}");
            return Ok(None);
        }
    };
    let Some(col) = v.get("primary_column").and_then(|c| c.as_str()) else {
        return Ok(None);
    };
    if schema.field_with_name(col).is_err() {
        return Ok(None);
    }
    let spec = v.get("columns").and_then(|c| c.get(col));
    let encoding = spec
        .and_then(|c| c.get("encoding"))
        .and_then(|e| e.as_str())
        .unwrap_or("WKB");
    if !matches!(encoding.to_ascii_lowercase().as_str(), "wkb" | "point") {
        return Err(IngestError::Coordinates(format!(
            "GeoParquet column {col:?} is encoded as {encoding:?}; only points (WKB or GeoArrow \"point\") can be packed"
        )));
    }
    let types: Vec<&str> = spec
        .and_then(|c| c.get("geometry_types"))
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    if !types.is_empty() && !types.iter().any(|t| t.starts_with("Point")) {
        return Err(IngestError::Coordinates(format!(
            "GeoParquet column {col:?} holds {types:?}; only Point geometries can be packed"
        )));
    }
    // A missing `crs` means OGC:CRS84 (longitude/latitude); `null` means unknown.
    let crs = match (given, spec.and_then(|c| c.get("crs"))) {
        (Some(crs), _) => crs,
        (None, None) => Crs::Wgs84,
        (None, Some(serde_json::Value::Null)) => {
            tracing::warn!(
                "GeoParquet column {col:?} has an unknown CRS; reading it as longitude/latitude"
            );
            Crs::Wgs84
        }
        (None, Some(c)) => match crs_of_projjson(c) {
            Some(code) => Crs::from_code(code)?,
            None => {
                return Err(IngestError::Coordinates(format!(
                    "GeoParquet column {col:?} uses CRS {}, which has no EPSG code; \
                     name its EPSG code with --crs EPSG:NNNN",
                    c.get("name")
                        .and_then(|n| n.as_str())
                        .map_or_else(|| c.to_string(), str::to_string)
                )));
            }
        },
    };
    Ok(Some(CoordSource::Geometry {
        column: col.to_string(),
        crs,
    }))
}

/// The EPSG code of a PROJJSON object (its `id`; OGC:CRS84 is 4326), or
/// of an "AUTHORITY:CODE" string, which some writers use.
fn crs_of_projjson(c: &serde_json::Value) -> Option<u16> {
    let (authority, code) = match c {
        serde_json::Value::String(s) => {
            let (a, c) = s.split_once(':')?;
            (a.to_string(), c.to_string())
        }
        serde_json::Value::Object(_) => {
            let id = c.get("id")?;
            let authority = id.get("authority")?.as_str()?.to_string();
            let code = match id.get("code")? {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            (authority, code)
        }
        _ => return None,
    };
    match authority.to_ascii_uppercase().as_str() {
        "OGC" if code == "CRS84" => Some(4326),
        // Google's old unofficial code for Web Mercator.
        "EPSG" if code == "900913" => Some(3857),
        "EPSG" => code.parse().ok(),
        _ => None,
    }
}

fn open(path: &Path) -> Result<File, IngestError> {
    File::open(path).map_err(|source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn fmt_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Read one unit, calling `sink` with each projected batch.
pub fn read_unit(
    plan: &Plan,
    unit: &Unit,
    sink: &mut dyn FnMut(PointBatch) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let path = &unit.path;
    let mut seq = 0u64;
    let hive_values = hive::values(path);
    // Batches are cut to at most BATCH_ROWS rows so each row's ordinal fits.
    let mut emit = |batch: &RecordBatch, bad: u64| -> Result<(), IngestError> {
        let with_hive;
        let batch = if plan.hive.is_empty() {
            batch
        } else {
            with_hive = hive::append(path, batch, &plan.hive, &hive_values)?;
            &with_hive
        };
        let mut offset = 0;
        let mut bad = bad;
        loop {
            let len = (batch.num_rows() - offset).min(BATCH_ROWS);
            if seq >= 1 << ORD_SEQ_BITS {
                return Err(fmt_err(path, "too many batches in one input unit"));
            }
            let ordinal =
                ((unit.index as u64) << (ORD_SEQ_BITS + ORD_ROW_BITS)) | (seq << ORD_ROW_BITS);
            seq += 1;
            sink(project(
                plan,
                path,
                &batch.slice(offset, len),
                bad,
                ordinal,
            )?)?;
            bad = 0;
            offset += len;
            if offset >= batch.num_rows() {
                return Ok(());
            }
        }
    };
    match unit.format {
        Format::Parquet => {
            let file = open(path)?;
            let builder = match &unit.parquet {
                Some(meta) => {
                    ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
                }
                None => {
                    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| fmt_err(path, e))?
                }
            };
            let attrs = name_index(&plan.attrs);
            let keep: Vec<usize> = builder
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    attrs.contains_key(f.name().as_str())
                        || plan.coords.columns().contains(&f.name().as_str())
                })
                .map(|(i, _)| i)
                .collect();
            let batch_rows = batch_rows_for(keep.len());
            let mask = ProjectionMask::roots(builder.parquet_schema(), keep);
            let reader = builder
                .with_row_groups(vec![unit.row_group.unwrap_or(0)])
                .with_projection(mask)
                .with_batch_size(batch_rows)
                .build()
                .map_err(|e| fmt_err(path, e))?;
            for batch in reader {
                emit(&batch.map_err(|e| fmt_err(path, e))?, 0)?;
            }
        }
        Format::Ipc => {
            let (_, reader) = ipc_reader(path, stream::Pass::Rows)?;
            for batch in reader {
                emit(&batch.map_err(|e| fmt_err(path, e))?, 0)?;
            }
        }
        Format::Csv => {
            csv::read(plan, path, &mut |batch, bad| emit(&batch, bad))?;
        }
        Format::Vector(kind) => {
            // Vector units are made only by `survey`, which sets their schema.
            let schema = unit
                .vector
                .as_ref()
                .expect("a vector unit's planned schema");
            vector::read(path, kind, &plan.options, schema, &mut |batch| {
                emit(&batch, 0)
            })?;
        }
    }
    Ok(())
}

/// Project a raw input batch: positions → quantized Web Mercator + Hilbert
/// keys, invalid rows dropped, attributes normalized.
pub fn project(
    plan: &Plan,
    path: &Path,
    batch: &RecordBatch,
    bad_rows: u64,
    ordinal: u64,
) -> Result<PointBatch, IngestError> {
    let n = batch.num_rows();
    let schema = batch.schema();
    let index = name_index(&schema);
    let col = |name: &str| {
        index
            .get(name)
            .map(|&i| batch.column(i).clone())
            .ok_or_else(|| IngestError::Schema {
                path: path.to_path_buf(),
                message: format!("column {name:?} is missing"),
            })
    };
    let (xs, ys, crs) = match &plan.coords {
        CoordSource::Columns { x, y, crs } => {
            (to_f64(path, &col(x)?)?, to_f64(path, &col(y)?)?, *crs)
        }
        CoordSource::Geometry { column, crs } => {
            let (xs, ys) = geom::points(&col(column)?)
                .map_err(|m| fmt_err(path, format!("column {column:?}: {m}")))?;
            (xs, ys, *crs)
        }
    };
    let reproject = match crs {
        Crs::Epsg(code) => Some(crs::Reprojector::new(code).map_err(IngestError::Coordinates)?),
        _ => None,
    };
    let mut keep = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = (xs[i], ys[i]);
        let m = match crs {
            Crs::Wgs84 if geo::lnglat_in_range(x, y) => Some(geo::lnglat_to_meters(x, y)),
            Crs::WebMercator if geo::meters_in_range(x, y) => Some((x, y)),
            Crs::Epsg(_) => reproject
                .as_ref()
                .and_then(|r| r.to_lnglat(x, y))
                .filter(|&(lon, lat)| geo::lnglat_in_range(lon, lat))
                .map(|(lon, lat)| geo::lnglat_to_meters(lon, lat)),
            _ => None,
        };
        if let Some((mx, my)) = m {
            let (qx, qy) = geo::quantize(mx, my);
            keep.push(i as u32);
            keys.push(geo::hilbert(qx, qy));
        }
    }
    let dropped = (n - keep.len()) as u64;
    let take_idx = UInt32Array::from(keep);
    let all_kept = take_idx.len() == n;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(plan.attrs.fields().len());
    let mut labels = Vec::new();
    let mut fields = Vec::with_capacity(plan.attrs.fields().len());
    for (ai, f) in plan.attrs.fields().iter().enumerate() {
        let a = col(f.name())?;
        let a = if a.data_type() == f.data_type() {
            a
        } else {
            // Types only widen (see `widen`), so a value that does not
            // convert is an error rather than a silent null.
            let strict = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow_cast::cast_with_options(&a, f.data_type(), &strict).map_err(|e| {
                IngestError::Schema {
                    path: path.to_path_buf(),
                    message: format!(
                        "column {:?}: cannot convert {} to {}: {e}",
                        f.name(),
                        a.data_type(),
                        f.data_type()
                    ),
                }
            })?
        };
        let a = if all_kept {
            a
        } else {
            arrow_select::take::take(&a, &take_idx, None).map_err(|e| fmt_err(path, e))?
        };
        let coded = (f.data_type() == &DataType::Utf8)
            .then(|| dictionary_code(a.as_string::<i32>()))
            .flatten();
        match coded {
            Some((codes, names)) => {
                labels.push((ai, names));
                fields.push(Arc::new(Field::new(f.name(), DataType::UInt16, true)));
                columns.push(Arc::new(codes));
            }
            None => {
                fields.push(f.clone());
                columns.push(a);
            }
        }
    }
    // With no attributes the batch has no column: its row count says how
    // many rows it holds.
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(keys.len()));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .map_err(|e| fmt_err(path, e))?;
    Ok(PointBatch {
        batch,
        keys,
        ordinal,
        dropped,
        bad_rows,
        labels,
    })
}

/// Codes of `strings` into their distinct values in order of first
/// appearance (nulls stay null), or None past [`CATEGORY_LIMIT`] values.
fn dictionary_code(strings: &StringArray) -> Option<(UInt16Array, Vec<String>)> {
    const _: () = assert!(CATEGORY_LIMIT < u16::MAX as usize);
    let mut index: HashMap<&str, u16, foldhash::fast::FixedState> = HashMap::default();
    let mut names = Vec::new();
    let mut codes = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        if strings.is_null(i) {
            // Hidden by the validity below; 0 may name no label at all.
            codes.push(0);
            continue;
        }
        let s = strings.value(i);
        let next = index.len() as u16;
        let code = *index.entry(s).or_insert(next);
        if code == next {
            if names.len() == CATEGORY_LIMIT {
                return None;
            }
            names.push(s.to_string());
        }
        codes.push(code);
    }
    let codes = UInt16Array::new(codes.into(), strings.nulls().cloned());
    Some((codes, names))
}

fn to_f64(path: &Path, a: &ArrayRef) -> Result<Vec<f64>, IngestError> {
    let f = arrow_cast::cast(a, &DataType::Float64)
        .map_err(|e| fmt_err(path, format!("coordinates: {e}")))?;
    let f = f.as_primitive::<arrow_array::types::Float64Type>();
    Ok((0..f.len())
        .map(|i| if f.is_null(i) { f64::NAN } else { f.value(i) })
        .collect())
}
