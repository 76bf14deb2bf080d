//! CSV input with type inference, OpenCelliD awareness and per-row error
//! handling: a row that does not parse is skipped and counted, or fails the
//! pack with `--strict`.

use super::{IngestError, IngestOptions, Plan};
use crate::time::parse_iso_us;
use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::path::Path;
use std::sync::Arc;

/// The header of OpenCelliD's published `cell_towers.csv`; its per-country
/// extracts ship the same columns without a header line.
pub const OPENCELLID_HEADER: [&str; 14] = [
    "radio",
    "mcc",
    "net",
    "area",
    "cell",
    "unit",
    "lon",
    "lat",
    "range",
    "samples",
    "changeable",
    "created",
    "updated",
    "averageSignal",
];
const OPENCELLID_RADIOS: [&str; 5] = ["GSM", "UMTS", "LTE", "NR", "CDMA"];
const INFER_ROWS: usize = 1000;
/// Bytes of rows read to infer types, at most.
const INFER_BYTES: usize = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Int,
    Float,
    Time,
    /// Unix seconds stored as integers (OpenCelliD's created/updated).
    EpochSeconds,
    Text,
}

struct Layout {
    has_header: bool,
    names: Vec<String>,
    kinds: Vec<Kind>,
    delimiter: u8,
    decimal_comma: bool,
}

/// Skipped rows shown per file (the rest are counted).
const MAX_EXAMPLES: u64 = 3;

/// A float in a text field, with a decimal comma when asked for.
fn parse_float(s: &str, decimal_comma: bool) -> Option<f64> {
    if decimal_comma && s.contains(',') {
        s.replacen(',', ".", 1).parse().ok()
    } else {
        s.parse().ok()
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

use super::stream::Pass;

type Text = Box<dyn std::io::Read + Send>;

/// A CSV reader over `path`, opened for `pass`.
fn reader(
    path: &Path,
    has_header: bool,
    delimiter: u8,
    pass: Pass,
) -> Result<csv::Reader<Text>, IngestError> {
    let f = super::compress::open_text(path, pass).map_err(|source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(has_header)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(f))
}

/// The field delimiter: `--delimiter`, or the one the header line uses.
fn delimiter_of(path: &Path, o: &IngestOptions) -> Result<u8, IngestError> {
    match o.delimiter {
        Some(d) => Ok(d),
        None => super::compress::open_text(path, Pass::Plan)
            .map(sniff_delimiter)
            .map_err(|source| IngestError::Io {
                path: path.to_path_buf(),
                source,
            }),
    }
}

/// The delimiter of a text table: whichever of comma, tab, semicolon and
/// pipe occurs most often outside quotes in its first line (comma on a
/// tie or none).
fn sniff_delimiter(mut text: Text) -> u8 {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 << 10);
    let _ = text.by_ref().take(64 << 10).read_to_end(&mut head);
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b',' => counts[0] += 1,
            b'\t' => counts[1] += 1,
            b';' => counts[2] += 1,
            b'|' => counts[3] += 1,
            _ => {}
        }
    }
    let best = (0..4)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        [b',', b'\t', b';', b'|'][best]
    }
}

fn layout(path: &Path, o: &IngestOptions) -> Result<Layout, IngestError> {
    let delimiter = delimiter_of(path, o)?;
    let mut r = reader(path, false, delimiter, Pass::Plan)?;
    let mut rows: Vec<csv::StringRecord> = Vec::new();
    let mut header_seen = false;
    let mut bytes = 0usize;
    for rec in r.records() {
        match rec {
            Ok(rec) => {
                if !header_seen {
                    // Before reading more rows of a hostile header's width.
                    super::check_column_count(path, rec.len())?;
                }
                header_seen = true;
                bytes += rec.as_slice().len() + 8 * rec.len();
                rows.push(rec);
                // Types are inferred from the first rows, or the first
                // 16 MiB of them for wide files.
                if rows.len() > INFER_ROWS || bytes > INFER_BYTES {
                    break;
                }
            }
            // A row that is not UTF-8 is skipped here and counted when read;
            // a broken header, or a failing read, ends the pack.
            Err(e) if header_seen && matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {}
            Err(e) => return Err(io_err(path, e)),
        }
    }
    let Some(first) = rows.first() else {
        return Err(io_err(path, "empty CSV file (no header)"));
    };
    // A headerless OpenCelliD extract starts with a radio type and has its 14 columns.
    let headerless_ocid = first.len() == OPENCELLID_HEADER.len()
        && OPENCELLID_RADIOS.contains(&first.get(0).unwrap_or(""));
    let (has_header, names): (bool, Vec<String>) = if headerless_ocid {
        (
            false,
            OPENCELLID_HEADER.iter().map(|s| s.to_string()).collect(),
        )
    } else {
        let names = first
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Spreadsheet exports start with a byte-order mark.
                let s = if i == 0 {
                    s.trim_start_matches('\u{feff}')
                } else {
                    s
                };
                s.trim().to_string()
            })
            .collect();
        (true, names)
    };
    let is_ocid = names
        .iter()
        .map(String::as_str)
        .eq(OPENCELLID_HEADER.iter().copied());
    let data = if has_header { &rows[1..] } else { &rows[..] };
    let kinds = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if is_ocid && (name == "created" || name == "updated") {
                return Kind::EpochSeconds;
            }
            // Rows with the wrong number of fields will be skipped: they do
            // not vote on the types.
            let vals: Vec<&str> = data
                .iter()
                .filter(|r| r.len() == names.len())
                .filter_map(|r| r.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            if vals.is_empty() {
                Kind::Text
            } else if vals.iter().all(|v| v.parse::<i64>().is_ok()) {
                Kind::Int
            } else if vals
                .iter()
                .all(|v| parse_float(v, o.decimal_comma).is_some())
            {
                Kind::Float
            } else if vals.iter().all(|v| parse_iso_us(v).is_some()) {
                Kind::Time
            } else {
                Kind::Text
            }
        })
        .collect();
    Ok(Layout {
        has_header,
        names,
        kinds,
        delimiter,
        decimal_comma: o.decimal_comma,
    })
}

fn schema_of(l: &Layout) -> SchemaRef {
    let fields: Vec<Field> = l
        .names
        .iter()
        .zip(&l.kinds)
        .map(|(n, k)| {
            let t = match k {
                Kind::Int => DataType::Int64,
                Kind::Float => DataType::Float64,
                Kind::Time | Kind::EpochSeconds => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
                Kind::Text => DataType::Utf8,
            };
            Field::new(n, t, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Infer the schema of a CSV file from its header and first rows.
pub fn infer_schema(path: &Path, o: &IngestOptions) -> Result<SchemaRef, IngestError> {
    Ok(schema_of(&layout(path, o)?))
}

enum Col {
    Int(Int64Builder),
    Float(Float64Builder),
    Time(TimestampMicrosecondBuilder),
    Text(StringBuilder),
}

enum Val<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
}

/// Stream a CSV file as batches of the plan's columns; `sink` also gets the
/// number of rows skipped in that batch.
pub fn read(
    plan: &Plan,
    path: &Path,
    sink: &mut dyn FnMut(RecordBatch, u64) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let mut l = layout(path, &plan.options)?;
    // Coordinates are numbers whatever the first rows looked like: a value
    // that is not a number makes its row unparseable rather than turning the
    // column into text. A geometry column is text (WKT or hex WKB).
    let geometry = matches!(plan.coords, super::CoordSource::Geometry { .. });
    for (name, kind) in l.names.iter().zip(l.kinds.iter_mut()) {
        if plan.coords.columns().contains(&name.as_str()) {
            *kind = if geometry { Kind::Text } else { Kind::Float };
        }
    }
    let schema = schema_of(&l);
    // Only the columns the plan keeps (attributes + coordinates) are parsed.
    let attrs = super::name_index(&plan.attrs);
    let wanted: Vec<usize> = (0..l.names.len())
        .filter(|&i| {
            let n = l.names[i].as_str();
            attrs.contains_key(n) || plan.coords.columns().contains(&n)
        })
        .collect();
    let batch_rows = super::batch_rows_for(wanted.len());
    let out_schema = Arc::new(Schema::new(
        wanted
            .iter()
            .map(|&i| schema.field(i).clone())
            .collect::<Vec<_>>(),
    ));
    let mut cols = Columns::new(&wanted, &l.kinds, batch_rows);
    let mut r = reader(path, l.has_header, l.delimiter, Pass::Rows)?;
    let mut bad = 0u64;
    // The first few skipped rows of a file are shown, so that a user can
    // see why rows were dropped; the rest are only counted.
    let example = |n: u64, line: u64, why: &str| {
        if n <= MAX_EXAMPLES {
            tracing::warn!(file = %path.display(), line, reason = why, "skipping a row that does not parse");
        } else if n == MAX_EXAMPLES + 1 {
            tracing::warn!(file = %path.display(), "more rows do not parse; they are skipped and counted");
        }
    };
    let mut rec = csv::StringRecord::new();
    loop {
        let line = r.position().line();
        match r.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            // A row that is not UTF-8 cannot be read; anything else (an I/O
            // error) ends the pack.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                if plan.options.strict {
                    return Err(IngestError::BadRow {
                        path: path.to_path_buf(),
                        line: e.position().map_or(line, |p| p.line()),
                        message: "not valid UTF-8".into(),
                    });
                }
                bad += 1;
                example(
                    bad,
                    e.position().map_or(line, |p| p.line()),
                    "not valid UTF-8",
                );
                continue;
            }
            Err(e) => return Err(io_err(path, e)),
        }
        match parse_row(&rec, &l, &wanted) {
            Ok(vals) => cols.append(vals),
            Err(message) if plan.options.strict => {
                return Err(IngestError::BadRow {
                    path: path.to_path_buf(),
                    line: rec.position().map_or(line, |p| p.line()),
                    message,
                });
            }
            Err(message) => {
                bad += 1;
                example(bad, rec.position().map_or(line, |p| p.line()), &message);
            }
        }
        if cols.rows == batch_rows {
            sink(cols.finish(&out_schema, path)?, bad)?;
            bad = 0;
        }
    }
    if cols.rows > 0 || bad > 0 {
        sink(cols.finish(&out_schema, path)?, bad)?;
    }
    Ok(())
}

/// The wanted fields of one record as values, or what is wrong with it.
fn parse_row<'a>(
    rec: &'a csv::StringRecord,
    l: &Layout,
    wanted: &[usize],
) -> Result<Vec<Val<'a>>, String> {
    if rec.len() != l.names.len() {
        return Err(format!("{} fields, expected {}", rec.len(), l.names.len()));
    }
    let mut vals: Vec<Val> = Vec::with_capacity(wanted.len());
    for &i in wanted {
        let s = rec.get(i).unwrap_or("").trim();
        if s.is_empty() {
            vals.push(Val::Null);
            continue;
        }
        let v = match l.kinds[i] {
            Kind::Int => s.parse().map(Val::Int).ok(),
            Kind::Float => parse_float(s, l.decimal_comma).map(Val::Float),
            Kind::EpochSeconds => s
                .parse::<i64>()
                .ok()
                .and_then(|v| v.checked_mul(1_000_000))
                .map(Val::Int),
            Kind::Time => parse_iso_us(s).map(Val::Int),
            Kind::Text => Some(Val::Text(s)),
        }
        .ok_or_else(|| format!("column {:?}: cannot parse {s:?}", l.names[i]))?;
        vals.push(v);
    }
    Ok(vals)
}

/// The builders of one batch.
struct Columns {
    cols: Vec<Col>,
    kinds: Vec<Kind>,
    capacity: usize,
    rows: usize,
}

impl Columns {
    fn new(wanted: &[usize], kinds: &[Kind], capacity: usize) -> Columns {
        let mut c = Columns {
            cols: Vec::new(),
            kinds: wanted.iter().map(|&i| kinds[i]).collect(),
            capacity,
            rows: 0,
        };
        c.cols = c.fresh();
        c
    }

    fn fresh(&self) -> Vec<Col> {
        let n = self.capacity;
        self.kinds
            .iter()
            .map(|k| match k {
                Kind::Int => Col::Int(Int64Builder::with_capacity(n)),
                Kind::Float => Col::Float(Float64Builder::with_capacity(n)),
                Kind::Time | Kind::EpochSeconds => {
                    Col::Time(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"))
                }
                Kind::Text => Col::Text(StringBuilder::with_capacity(n, n * 8)),
            })
            .collect()
    }

    fn append(&mut self, vals: Vec<Val>) {
        for (c, v) in self.cols.iter_mut().zip(vals) {
            match (c, v) {
                (Col::Int(b), Val::Int(x)) => b.append_value(x),
                (Col::Float(b), Val::Float(x)) => b.append_value(x),
                (Col::Time(b), Val::Int(x)) => b.append_value(x),
                (Col::Text(b), Val::Text(x)) => b.append_value(x),
                (Col::Int(b), _) => b.append_null(),
                (Col::Float(b), _) => b.append_null(),
                (Col::Time(b), _) => b.append_null(),
                (Col::Text(b), _) => b.append_null(),
            }
        }
        self.rows += 1;
    }

    /// The rows so far as a batch; the builders start over.
    fn finish(&mut self, schema: &SchemaRef, path: &Path) -> Result<RecordBatch, IngestError> {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::Int(b) => Arc::new(b.finish()),
                    Col::Float(b) => Arc::new(b.finish()),
                    Col::Time(b) => Arc::new(b.finish()),
                    Col::Text(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(schema.clone(), arrays).map_err(|e| io_err(path, e))
    }
}
