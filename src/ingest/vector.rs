//! Vector GIS files of point features: GeoJSON and GeoJSONSeq, Shapefile
//! (`.shp` with its `.dbf` and `.prj`, or all of them in a `.zip`),
//! FlatGeobuf and GeoPackage. All readers are pure Rust (SQLite is
//! compiled in for GeoPackage), so the default build needs no GDAL.
//!
//! Each reader turns features into rows of `(x, y, properties)`; the
//! properties become columns through `arrow-json` (types inferred as for
//! JSON: integers, floats, booleans, text; nested values as JSON text),
//! and the position becomes a WKB point column described by a synthesized
//! GeoParquet `geo` entry, so coordinate detection and reprojection are
//! the same code as for GeoParquet.

use super::stream::Pass;
use super::{IngestError, IngestOptions, fmt_err};
use arrow_array::builder::BinaryBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// Features a stream's schema is inferred from.
const STREAM_SAMPLE: usize = 10_000;

/// Which vector format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// RFC 7946 GeoJSON (a FeatureCollection, read whole).
    GeoJson,
    /// GeoJSON text sequence / newline-delimited GeoJSON, streamed.
    GeoJsonSeq,
    /// ESRI Shapefile, or a `.zip` holding one.
    Shapefile,
    /// FlatGeobuf.
    FlatGeobuf,
    /// OGC GeoPackage (SQLite).
    GeoPackage,
}

impl Kind {
    /// The format of a file extension (lower case, compression removed).
    pub fn of_extension(ext: &str) -> Option<Kind> {
        Some(match ext {
            "geojson" | "json" => Kind::GeoJson,
            "geojsonl" | "geojsons" | "geojsonseq" | "ndgeojson" | "geojsonld" => Kind::GeoJsonSeq,
            "shp" | "zip" => Kind::Shapefile,
            "fgb" => Kind::FlatGeobuf,
            "gpkg" => Kind::GeoPackage,
            _ => return None,
        })
    }
}

/// One feature: its point (NaN for a null or empty geometry) and its
/// properties.
struct Feature {
    x: f64,
    y: f64,
    props: Map<String, Value>,
}

/// The name of the WKB column the position is carried in.
fn geometry_name(schema_props: &[String]) -> String {
    let mut name = "geometry".to_string();
    while schema_props.contains(&name) {
        name.insert(0, '_');
    }
    name
}

/// A file's schema (properties plus the WKB point column) and its
/// synthesized GeoParquet `geo` metadata (column name and CRS).
pub struct Surveyed {
    /// Property columns, then the geometry column.
    pub schema: SchemaRef,
    /// `{"primary_column": …, "columns": {…: {"encoding": "WKB", "crs": …}}}`.
    pub geo: String,
}

/// Read `path` once to learn its columns and CRS.
pub fn survey(path: &Path, kind: Kind, o: &IngestOptions) -> Result<Surveyed, IngestError> {
    let mut sample: Vec<Value> = Vec::new();
    // A stream is sampled (its head is kept in memory for the read that
    // follows); a file is read whole, so every property is seen.
    let stream = super::stream::is_stream(path);
    let crs = match for_each(path, kind, o, Pass::Plan, &mut |f| {
        sample.push(Value::Object(f.props));
        if stream && sample.len() >= STREAM_SAMPLE {
            return Err(IngestError::Aborted);
        }
        Ok(())
    }) {
        Err(IngestError::Aborted) if stream => None,
        r => r?,
    };
    let inferred = arrow_json::reader::infer_json_schema_from_iterator(sample.iter().map(Ok))
        .map_err(|e| fmt_err(path, format!("feature properties: {e}")))?;
    // A property that is null in every feature has no type: text.
    let mut fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Null => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
    let geom = geometry_name(&names);
    fields.push(Field::new(&geom, DataType::Binary, true));
    let crs_json = match crs {
        Some(code) => serde_json::json!({"id": {"authority": "EPSG", "code": code}}),
        None => Value::Null,
    };
    let mut col = serde_json::json!({"encoding": "WKB", "geometry_types": ["Point"]});
    // No CRS said: RFC 7946 GeoJSON is always WGS 84, and so is taken a
    // file that names none (as GDAL does); GeoParquet's missing `crs`.
    if !crs_json.is_null() {
        col["crs"] = crs_json;
    }
    let geo = serde_json::json!({"primary_column": geom, "columns": {geom.clone(): col}});
    Ok(Surveyed {
        schema: Arc::new(Schema::new(fields)),
        geo: geo.to_string(),
    })
}

/// Read `path`, calling `sink` with batches in `schema` (from [`survey`]).
pub fn read(
    path: &Path,
    kind: Kind,
    o: &IngestOptions,
    schema: &SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let props = Arc::new(Schema::new(
        schema.fields()[..schema.fields().len() - 1].to_vec(),
    ));
    let mut rows: Vec<Value> = Vec::with_capacity(super::BATCH_ROWS);
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(super::BATCH_ROWS);
    // One decoder for the whole file: each flush empties it.
    let mut decoder = arrow_json::ReaderBuilder::new(props.clone())
        .with_batch_size(super::BATCH_ROWS)
        .build_decoder()
        .map_err(|e| fmt_err(path, e))?;
    let mut flush = |rows: &mut Vec<Value>,
                     points: &mut Vec<(f64, f64)>|
     -> Result<(), IngestError> {
        if rows.is_empty() {
            return Ok(());
        }
        decoder.serialize(rows).map_err(|e| fmt_err(path, e))?;
        let attrs = match decoder.flush().map_err(|e| fmt_err(path, e))? {
            Some(b) => b,
            None => RecordBatch::new_empty(props.clone()),
        };
        let mut wkb = BinaryBuilder::with_capacity(points.len(), points.len() * 21);
        for &(x, y) in points.iter() {
            if x.is_nan() {
                wkb.append_null();
            } else {
                wkb.append_value(wkb_point(x, y));
            }
        }
        let geom: ArrayRef = Arc::new(wkb.finish());
        let mut columns = attrs.columns().to_vec();
        columns.push(geom);
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| fmt_err(path, e))?;
        rows.clear();
        points.clear();
        sink(batch)
    };
    for_each(path, kind, o, Pass::Rows, &mut |f| {
        rows.push(Value::Object(f.props));
        points.push((f.x, f.y));
        if rows.len() >= super::BATCH_ROWS {
            flush(&mut rows, &mut points)?;
        }
        Ok(())
    })?;
    flush(&mut rows, &mut points)
}

/// A little-endian 2D WKB point.
fn wkb_point(x: f64, y: f64) -> [u8; 21] {
    let mut v = [0u8; 21];
    v[0] = 1;
    v[1..5].copy_from_slice(&1u32.to_le_bytes());
    v[5..13].copy_from_slice(&x.to_le_bytes());
    v[13..21].copy_from_slice(&y.to_le_bytes());
    v
}

/// Calls `f` with every feature of the file; returns the file's EPSG
/// code, if it names one.
fn for_each(
    path: &Path,
    kind: Kind,
    o: &IngestOptions,
    pass: Pass,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<Option<u16>, IngestError> {
    let text = |path: &Path| super::compress::open_text(path, pass).map_err(|e| fmt_err(path, e));
    match kind {
        Kind::GeoJson => geojson(path, text(path)?, f),
        Kind::GeoJsonSeq => geojson_seq(path, text(path)?, f),
        Kind::Shapefile => shapefile(path, f),
        Kind::FlatGeobuf => flatgeobuf(path, f),
        Kind::GeoPackage => geopackage(path, o.layer.as_deref(), f),
    }
}

/// A property value as a column value: nested objects and arrays become
/// JSON text (a column has one type, and a nested one is not a map colour).
fn flat(v: Value) -> Value {
    match v {
        Value::Object(_) | Value::Array(_) => Value::String(v.to_string()),
        v => v,
    }
}

fn non_point(path: &Path, what: &str) -> IngestError {
    IngestError::Coordinates(format!(
        "{}: the layer holds {what} geometries; only points can be packed \
         (convert them to points first, e.g. centroids)",
        path.display()
    ))
}

/// A GeoJSON geometry object's point; `Ok(None)` for null/empty.
fn geojson_point(path: &Path, g: &Value) -> Result<Option<(f64, f64)>, IngestError> {
    if g.is_null() {
        return Ok(None);
    }
    let t = g["type"].as_str().unwrap_or("");
    let xy = |c: &Value| -> Option<(f64, f64)> { Some((c.get(0)?.as_f64()?, c.get(1)?.as_f64()?)) };
    match t {
        "Point" => Ok(xy(&g["coordinates"])),
        // A multipoint of one point is a point (GDAL writes them so).
        "MultiPoint" => match g["coordinates"].as_array().map(Vec::as_slice) {
            Some([]) => Ok(None),
            Some([one]) => Ok(xy(one)),
            _ => Err(non_point(path, "MultiPoint (of several points)")),
        },
        other => Err(non_point(path, other)),
    }
}

fn geojson_feature(
    path: &Path,
    v: Value,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let Value::Object(mut obj) = v else {
        return Err(fmt_err(path, "a GeoJSON feature must be an object"));
    };
    let (x, y) = geojson_point(path, obj.get("geometry").unwrap_or(&Value::Null))?
        .unwrap_or((f64::NAN, f64::NAN));
    let props = match obj.remove("properties") {
        Some(Value::Object(p)) => p.into_iter().map(|(k, v)| (k, flat(v))).collect(),
        _ => Map::new(),
    };
    f(Feature { x, y, props })
}

/// The legacy (2008) GeoJSON `crs` member: `{"type": "name", "properties":
/// {"name": "urn:ogc:def:crs:EPSG::NNNN"}}`.
fn geojson_crs(v: &Value) -> Result<Option<u16>, IngestError> {
    match v["crs"]["properties"]["name"].as_str() {
        Some(name) => super::crs::parse_code(name)
            .map(Some)
            .map_err(IngestError::Coordinates),
        None => Ok(None),
    }
}

fn geojson(
    path: &Path,
    text: Box<dyn Read + Send>,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<Option<u16>, IngestError> {
    let reader = std::io::BufReader::new(text);
    let mut doc: Value = serde_json::from_reader(reader)
        .map_err(|e| fmt_err(path, format!("not readable GeoJSON: {e}")))?;
    let crs = geojson_crs(&doc)?;
    match doc["type"].as_str() {
        Some("FeatureCollection") => {
            let Value::Array(features) = doc["features"].take() else {
                return Err(fmt_err(
                    path,
                    "a FeatureCollection without a features array",
                ));
            };
            for feat in features {
                geojson_feature(path, feat, f)?;
            }
        }
        Some("Feature") => geojson_feature(path, doc, f)?,
        _ => {
            return Err(fmt_err(
                path,
                "not GeoJSON: expected a FeatureCollection or a Feature",
            ));
        }
    }
    Ok(crs)
}

fn geojson_seq(
    path: &Path,
    text: Box<dyn Read + Send>,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<Option<u16>, IngestError> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(text);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| fmt_err(path, e))?;
        // RFC 8142 puts a record separator before each text.
        let text = line.trim_start_matches('\u{1e}').trim();
        if text.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(text)
            .map_err(|e| fmt_err(path, format!("line {}: not a GeoJSON feature: {e}", i + 1)))?;
        geojson_feature(path, v, f)?;
    }
    Ok(None)
}

/// The EPSG code of a `.prj` (WKT1, ESRI's or OGC's, or WKT2): its
/// outermost `AUTHORITY`/`ID`, else the ESRI names GDAL writes.
pub fn crs_of_wkt(wkt: &str) -> Option<u16> {
    let upper = wkt.to_ascii_uppercase();
    // The outermost object's authority is the last one in the text.
    for key in ["AUTHORITY[\"EPSG\",", "ID[\"EPSG\","] {
        if let Some(i) = upper.rfind(key) {
            let rest = &upper[i + key.len()..];
            let code: String = rest
                .trim_start_matches([' ', '"'])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            // Only when it closes the outermost object (not a datum's).
            let tail = rest.trim_start_matches(|c: char| c != ']');
            if tail.trim_end().trim_end_matches(']').is_empty() {
                if let Ok(c) = code.parse() {
                    return Some(c);
                }
            }
        }
    }
    let name = upper
        .split_once("[\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(n, _)| n.to_string())?;
    let utm = |prefix: &str, north: u16, south: u16| -> Option<u16> {
        let zone = name.strip_prefix(prefix)?;
        let (num, hemi) = zone.split_at(zone.len().checked_sub(1)?);
        let z: u16 = num.parse().ok()?;
        (1..=60).contains(&z).then_some(match hemi {
            "N" => north + z,
            "S" => south + z,
            _ => return None,
        })
    };
    utm("WGS_1984_UTM_ZONE_", 32600, 32700)
        .or_else(|| utm("NAD_1983_UTM_ZONE_", 26900, 0).filter(|c| *c > 26900))
        .or_else(|| utm("ETRS_1989_UTM_ZONE_", 25800, 0).filter(|c| *c > 25800))
        .or(match name.as_str() {
            "GCS_WGS_1984" | "WGS 84" => Some(4326),
            "WGS_1984_WEB_MERCATOR_AUXILIARY_SPHERE" | "WGS_84_PSEUDO_MERCATOR" => Some(3857),
            "GCS_ETRS_1989" => Some(4258),
            "GCS_NORTH_AMERICAN_1983" => Some(4269),
            "BRITISH_NATIONAL_GRID" => Some(27700),
            "RGF_1993_LAMBERT_93" => Some(2154),
            "ETRS_1989_LAEA" => Some(3035),
            "RD_NEW" => Some(28992),
            _ => None,
        })
}

fn shapefile(
    path: &Path,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<Option<u16>, IngestError> {
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let (shp, dbf, prj) = if is_zip {
        zipped_shapefile(path)?
    } else {
        let read = |ext: &str| std::fs::read(path.with_extension(ext));
        let shp = read("shp").map_err(|e| fmt_err(path, e))?;
        let dbf = read("dbf").map_err(|_| {
            fmt_err(
                path,
                "the Shapefile has no .dbf beside it (a Shapefile is .shp, .shx, .dbf and .prj together)",
            )
        })?;
        (shp, dbf, read("prj").ok())
    };
    let crs = match prj {
        Some(p) => {
            let wkt = String::from_utf8_lossy(&p);
            Some(crs_of_wkt(&wkt).ok_or_else(|| {
                IngestError::Coordinates(format!(
                    "{}: the .prj names a CRS without a known EPSG code; give it with --crs EPSG:NNNN",
                    path.display()
                ))
            })?)
        }
        None => {
            tracing::warn!(
                "{}: no .prj; reading coordinates as longitude/latitude",
                path.display()
            );
            None
        }
    };
    let shapes = shapefile::ShapeReader::new(std::io::Cursor::new(shp))
        .map_err(|e| fmt_err(path, format!("not a readable Shapefile: {e}")))?;
    let records = shapefile::dbase::Reader::new(std::io::Cursor::new(dbf))
        .map_err(|e| fmt_err(path, format!("its .dbf is not readable: {e}")))?;
    let mut reader = shapefile::Reader::new(shapes, records);
    for item in reader.iter_shapes_and_records() {
        let (shape, record) = item.map_err(|e| fmt_err(path, format!("damaged Shapefile: {e}")))?;
        use shapefile::Shape;
        let (x, y) = match shape {
            Shape::NullShape => (f64::NAN, f64::NAN),
            Shape::Point(p) => (p.x, p.y),
            Shape::PointM(p) => (p.x, p.y),
            Shape::PointZ(p) => (p.x, p.y),
            Shape::Multipoint(m) if m.points().len() == 1 => (m.points()[0].x, m.points()[0].y),
            other => return Err(non_point(path, &other.shapetype().to_string())),
        };
        let props = record
            .into_iter()
            .map(|(k, v)| (k, dbase_value(v)))
            .collect();
        f(Feature { x, y, props })?;
    }
    Ok(crs)
}

/// A Shapefile's `.shp`, `.dbf` and (if any) `.prj` bytes.
type ShapefileParts = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// The `.shp`, `.dbf` and `.prj` of the one Shapefile in a zip.
fn zipped_shapefile(path: &Path) -> Result<ShapefileParts, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| fmt_err(path, e))?;
    let mut z = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| fmt_err(path, format!("not a readable zip: {e}")))?;
    let names: Vec<String> = z.file_names().map(str::to_string).collect();
    let shps: Vec<&String> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".shp") && !n.starts_with("__MACOSX"))
        .collect();
    let shp_name = match shps.as_slice() {
        [one] => (*one).clone(),
        [] => return Err(fmt_err(path, "the zip holds no .shp")),
        many => {
            return Err(fmt_err(
                path,
                format!("the zip holds several Shapefiles ({many:?}); unzip the one to pack"),
            ));
        }
    };
    let stem = &shp_name[..shp_name.len() - 4];
    let mut take = |ext: &str| -> Result<Option<Vec<u8>>, IngestError> {
        let Some(name) = names.iter().find(|n| {
            n.len() == stem.len() + 4
                && n.starts_with(stem)
                && n[stem.len()..].eq_ignore_ascii_case(ext)
        }) else {
            return Ok(None);
        };
        let mut entry = z.by_name(name).map_err(|e| fmt_err(path, e))?;
        let mut buf = Vec::new();
        entry
            .read_to_end(&mut buf)
            .map_err(|e| fmt_err(path, format!("{name}: {e}")))?;
        Ok(Some(buf))
    };
    let shp = take(".shp")?.expect("listed above");
    let dbf = take(".dbf")?.ok_or_else(|| {
        fmt_err(
            path,
            format!("the zip has {shp_name} but no .dbf beside it"),
        )
    })?;
    let prj = take(".prj")?;
    Ok((shp, dbf, prj))
}

fn dbase_value(v: shapefile::dbase::FieldValue) -> Value {
    use shapefile::dbase::FieldValue as F;
    match v {
        F::Character(s) => s.map_or(Value::Null, Value::String),
        F::Numeric(n) => n.map_or(Value::Null, json_number),
        F::Logical(b) => b.map_or(Value::Null, Value::Bool),
        F::Date(d) => d.map_or(Value::Null, |d| {
            Value::String(format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        }),
        F::Float(n) => n.map_or(Value::Null, |n| json_number(n as f64)),
        F::Integer(i) => Value::from(i),
        F::Currency(c) | F::Double(c) => json_number(c),
        F::DateTime(t) => Value::String(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.date().year(),
            t.date().month(),
            t.date().day(),
            t.time().hours(),
            t.time().minutes(),
            t.time().seconds()
        )),
        F::Memo(s) => Value::String(s),
    }
}

/// A number, as an integer when it is one (dBase stores integers as
/// numeric text, which the reader hands over as f64).
fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn flatgeobuf(
    path: &Path,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<Option<u16>, IngestError> {
    use flatgeobuf::geozero::{ColumnValue, PropertyProcessor};
    use flatgeobuf::{FallibleStreamingIterator, FeatureProperties, FgbReader, GeometryType};
    let file = std::fs::File::open(path).map_err(|e| fmt_err(path, e))?;
    let reader = FgbReader::open(std::io::BufReader::new(file))
        .map_err(|e| fmt_err(path, format!("not a readable FlatGeobuf file: {e}")))?;
    let header = reader.header();
    let crs = header.crs().and_then(|c| {
        let org = c.org().unwrap_or("EPSG");
        (org.eq_ignore_ascii_case("EPSG") && c.code() > 0)
            .then(|| u16::try_from(c.code()).ok())
            .flatten()
    });
    let gt = header.geometry_type();
    if !matches!(
        gt,
        GeometryType::Point | GeometryType::MultiPoint | GeometryType::Unknown
    ) {
        return Err(non_point(path, &format!("{gt:?}")));
    }
    struct Props(Map<String, Value>);
    impl PropertyProcessor for Props {
        fn property(
            &mut self,
            _i: usize,
            name: &str,
            v: &ColumnValue,
        ) -> flatgeobuf::geozero::error::Result<bool> {
            let value = match v {
                ColumnValue::Byte(x) => Value::from(*x),
                ColumnValue::UByte(x) => Value::from(*x),
                ColumnValue::Bool(x) => Value::from(*x),
                ColumnValue::Short(x) => Value::from(*x),
                ColumnValue::UShort(x) => Value::from(*x),
                ColumnValue::Int(x) => Value::from(*x),
                ColumnValue::UInt(x) => Value::from(*x),
                ColumnValue::Long(x) => Value::from(*x),
                ColumnValue::ULong(x) => Value::from(*x),
                ColumnValue::Float(x) => json_number(*x as f64),
                ColumnValue::Double(x) => {
                    serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
                }
                ColumnValue::String(s) | ColumnValue::Json(s) | ColumnValue::DateTime(s) => {
                    Value::String(s.to_string())
                }
                ColumnValue::Binary(b) => Value::String(hex::encode(b)),
            };
            self.0.insert(name.to_string(), value);
            Ok(false)
        }
    }
    let mut features = reader
        .select_all_seq()
        .map_err(|e| fmt_err(path, format!("damaged FlatGeobuf: {e}")))?;
    while let Some(feat) = features
        .next()
        .map_err(|e| fmt_err(path, format!("damaged FlatGeobuf: {e}")))?
    {
        let (x, y) = match feat.geometry() {
            None => (f64::NAN, f64::NAN),
            Some(g) => {
                let t = if gt == GeometryType::Unknown {
                    g.type_()
                } else {
                    gt
                };
                let xy = g.xy();
                match (t, xy) {
                    (_, None) => (f64::NAN, f64::NAN),
                    (GeometryType::Point, Some(xy)) if xy.len() >= 2 => (xy.get(0), xy.get(1)),
                    (GeometryType::MultiPoint, Some(xy)) if xy.len() == 2 => (xy.get(0), xy.get(1)),
                    (GeometryType::Point | GeometryType::MultiPoint, Some(xy)) if xy.is_empty() => {
                        (f64::NAN, f64::NAN)
                    }
                    (t, _) => return Err(non_point(path, &format!("{t:?}"))),
                }
            }
        };
        let mut props = Props(Map::new());
        feat.process_properties(&mut props)
            .map_err(|e| fmt_err(path, format!("damaged FlatGeobuf properties: {e}")))?;
        f(Feature {
            x,
            y,
            props: props.0,
        })?;
    }
    Ok(crs)
}

/// The point of a GeoPackage geometry blob: the `GP` header (version,
/// flags, SRS id, optional envelope), then standard WKB.
fn gpkg_point(b: &[u8]) -> Option<Result<(f64, f64), String>> {
    if b.len() < 8 || &b[..2] != b"GP" {
        return Some(Err("not a GeoPackage geometry".into()));
    }
    let flags = b[3];
    if flags & 0b1_0000 != 0 {
        return None; // empty geometry
    }
    let envelope = match (flags >> 1) & 0b111 {
        0 => 0,
        1 => 32,
        2 | 3 => 48,
        4 => 64,
        _ => return Some(Err("bad GeoPackage envelope flag".into())),
    };
    let wkb = b.get(8 + envelope..)?;
    match super::geom::wkb_point(wkb) {
        Some(p) => Some(Ok(p)),
        None => Some(Err(format!(
            "a {} geometry",
            super::geom::wkb_type_name(wkb).unwrap_or("non-point")
        ))),
    }
}

fn geopackage(
    path: &Path,
    layer: Option<&str>,
    f: &mut dyn FnMut(Feature) -> Result<(), IngestError>,
) -> Result<Option<u16>, IngestError> {
    use rusqlite::types::ValueRef;
    let db = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fmt_err(path, format!("not a readable GeoPackage: {e}")))?;
    let sql_err = |e: rusqlite::Error| fmt_err(path, format!("not a readable GeoPackage: {e}"));
    // Feature layers with their geometry column, type and SRS.
    let mut layers: Vec<(String, String, String, i64)> = db
        .prepare(
            "SELECT c.table_name, g.column_name, g.geometry_type_name, g.srs_id \
             FROM gpkg_contents c JOIN gpkg_geometry_columns g ON g.table_name = c.table_name \
             WHERE c.data_type = 'features' ORDER BY c.table_name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(sql_err)?;
    let is_point = |t: &str| {
        matches!(
            t.to_ascii_uppercase().as_str(),
            "POINT" | "MULTIPOINT" | "GEOMETRY"
        )
    };
    let names: Vec<String> = layers
        .iter()
        .map(|l| format!("{} ({})", l.0, l.2))
        .collect();
    let chosen = match layer {
        Some(name) => layers.iter().position(|l| l.0 == name).ok_or_else(|| {
            IngestError::Options(format!(
                "{}: no layer {name:?} (layers: {})",
                path.display(),
                names.join(", ")
            ))
        })?,
        None => {
            let points: Vec<usize> = (0..layers.len())
                .filter(|&i| is_point(&layers[i].2))
                .collect();
            match points.as_slice() {
                [one] => *one,
                [] => {
                    return Err(IngestError::Coordinates(format!(
                        "{}: the GeoPackage has no point layer (layers: {})",
                        path.display(),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    )));
                }
                _ => {
                    return Err(IngestError::Options(format!(
                        "{}: the GeoPackage has several point layers ({}); choose one with --layer",
                        path.display(),
                        names.join(", ")
                    )));
                }
            }
        }
    };
    let (table, geom_col, gtype, srs_id) = layers.swap_remove(chosen);
    if !is_point(&gtype) {
        return Err(non_point(path, &gtype));
    }
    let crs: Option<(String, i64)> = db
        .query_row(
            "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?1",
            [srs_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let crs = match crs {
        Some((org, code)) if org.eq_ignore_ascii_case("EPSG") => u16::try_from(code).ok(),
        // GeoPackage's undefined geographic / Cartesian systems.
        Some((_, -1)) | Some((_, 0)) | None => None,
        Some((org, code)) => {
            return Err(IngestError::Coordinates(format!(
                "{}: layer {table:?} uses CRS {org}:{code}; give its EPSG code with --crs EPSG:NNNN",
                path.display()
            )));
        }
    };
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    // The primary key (fid) is GDAL's feature id, not an attribute.
    let pk: Option<String> = db
        .prepare(&format!("PRAGMA table_info({})", quote(&table)))
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_err)?
        .into_iter()
        .find(|(_, pk)| *pk == 1)
        .map(|(n, _)| n);
    let mut stmt = db
        .prepare(&format!("SELECT * FROM {}", quote(&table)))
        .map_err(sql_err)?;
    let cols: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let geom_i = cols.iter().position(|c| *c == geom_col);
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(r) = rows.next().map_err(sql_err)? {
        let mut props = Map::new();
        let (mut x, mut y) = (f64::NAN, f64::NAN);
        for (i, name) in cols.iter().enumerate() {
            let v = r.get_ref(i).map_err(sql_err)?;
            if Some(i) == geom_i {
                if let ValueRef::Blob(b) = v {
                    match gpkg_point(b) {
                        None => {}
                        Some(Ok(p)) => (x, y) = p,
                        Some(Err(what)) => return Err(non_point(path, &what)),
                    }
                }
                continue;
            }
            if pk.as_deref() == Some(name.as_str()) {
                continue;
            }
            let value = match v {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::from(i),
                ValueRef::Real(r) => {
                    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
                }
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::String(hex::encode(b)),
            };
            props.insert(name.clone(), value);
        }
        f(Feature { x, y, props })?;
    }
    Ok(crs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prj_files_name_their_epsg_code() {
        // GDAL's ESRI-style .prj files carry no authority: their names do.
        assert_eq!(
            crs_of_wkt(
                r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#
            ),
            Some(4326)
        );
        assert_eq!(
            crs_of_wkt(
                r#"PROJCS["WGS_1984_UTM_Zone_32N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]]],PROJECTION["Transverse_Mercator"]]"#
            ),
            Some(32632)
        );
        assert_eq!(
            crs_of_wkt(r#"PROJCS["NAD_1983_UTM_Zone_10N",GEOGCS["x"]]"#),
            Some(26910)
        );
        // OGC WKT with authorities: the outermost one, not the datum's.
        assert_eq!(
            crs_of_wkt(
                r#"PROJCS["OSGB 1936 / British National Grid",GEOGCS["OSGB 1936",DATUM["OSGB_1936",AUTHORITY["EPSG","6277"]],AUTHORITY["EPSG","4277"]],AUTHORITY["EPSG","27700"]]"#
            ),
            Some(27700)
        );
        assert_eq!(crs_of_wkt(r#"PROJCS["Local grid",GEOGCS["x"]]"#), None);
    }

    #[test]
    fn geopackage_blobs_hold_wkb_after_their_header() {
        let mut b = b"GP\0".to_vec();
        b.push(0b0000_0011); // little-endian, 32-byte envelope
        b.extend(4326i32.to_le_bytes());
        b.extend([0u8; 32]);
        b.extend_from_slice(&wkb_point(1.5, -2.0));
        assert_eq!(gpkg_point(&b), Some(Ok((1.5, -2.0))));
        let mut empty = b"GP\0".to_vec();
        empty.push(0b0001_0001);
        empty.extend(0i32.to_le_bytes());
        assert_eq!(gpkg_point(&empty), None);
        assert!(matches!(gpkg_point(b"XX\0\0\0\0\0\0"), Some(Err(_))));
    }
}
