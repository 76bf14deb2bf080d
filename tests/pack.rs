//! `pointillist pack` and the packed store, end to end.
//!
//! Every input format round-trips through `pack` and [`Dataset::open`] with
//! every row present exactly once (each row carries a unique id), attributes
//! intact, rows in Hilbert order, partition bounds, key ranges, zone maps and
//! manifest statistics right. Bad inputs fail with a clear message and write
//! nothing; damaged datasets are rejected without panicking.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, TimestampMicrosecondType};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, StructArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use pointillist::geo;
use pointillist::ingest::{self, Crs, IngestOptions};
use pointillist::pack::{self, PackError, PackOptions, PackReport};
use pointillist::store::column::NumColumn;
use pointillist::store::{ColumnKind, DATA_FILE, Dataset, MANIFEST_FILE, Manifest, QX, QY};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

// ---------------------------------------------------------------------------
// A sample table and its expected packed form
// ---------------------------------------------------------------------------

/// An attribute value as the packed dataset should hold it.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Null,
    Num(f64),
    Text(String),
    /// Microseconds since the epoch.
    Time(i64),
}

/// One input row: its quantized position (`None`: dropped for a bad
/// coordinate) and attribute values by column name.
type ExpectedRow = (Option<(u32, u32)>, BTreeMap<String, Val>);

/// What a pack of some input must produce.
struct Expect {
    /// Every input row, in input order.
    rows: Vec<ExpectedRow>,
    /// The unique id column.
    id: String,
    /// Kind of every attribute column.
    kinds: BTreeMap<String, ColumnKind>,
}

impl Expect {
    fn kept(&self) -> usize {
        self.rows.iter().filter(|r| r.0.is_some()).count()
    }

    fn dropped(&self) -> u64 {
        (self.rows.len() - self.kept()) as u64
    }

    /// Only the rows `keep` says yes to.
    fn filter(&self, keep: impl Fn(usize) -> bool) -> Expect {
        Expect {
            rows: (0..self.rows.len())
                .filter(|&i| keep(i))
                .map(|i| self.rows[i].clone())
                .collect(),
            id: self.id.clone(),
            kinds: self.kinds.clone(),
        }
    }
}

const RADIOS: [&str; 4] = ["GSM", "LTE", "NR", "UMTS"];
const CENTRES: [(f64, f64); 4] = [(13.4, 52.5), (-74.0, 40.7), (139.7, 35.7), (-46.6, -23.5)];

/// Rows of a synthetic point table with one column of each interesting kind.
#[derive(Clone)]
struct Table {
    id: Vec<i64>,
    lon: Vec<f64>,
    lat: Vec<f64>,
    value: Vec<Option<f64>>,
    count: Vec<i32>,
    radio: Vec<Option<&'static str>>,
    name: Vec<String>,
    /// Unix seconds.
    when: Vec<i64>,
    flag: Vec<bool>,
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Table {
    /// `n` rows: clusters around four cities, some rows sharing a position
    /// (in the same and in different row groups of 250), some with NaN or
    /// out-of-range coordinates, nulls in `value` and `radio`, a unique
    /// `name` per row (more than 1024 of them make it a string column).
    fn new(n: usize, seed: u64) -> Table {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut ids: Vec<i64> = (0..n as i64).map(|i| 100_000 + 7 * i).collect();
        for i in (1..n).rev() {
            let j = (rng.next() * (i + 1) as f64) as usize;
            ids.swap(i, j);
        }
        let mut t = Table {
            id: ids,
            lon: vec![],
            lat: vec![],
            value: vec![],
            count: vec![],
            radio: vec![],
            name: vec![],
            when: vec![],
            flag: vec![],
        };
        for i in 0..n {
            let c = CENTRES[i % CENTRES.len()];
            let (mut lon, mut lat) = (c.0 + rng.next() - 0.5, c.1 + rng.next() - 0.5);
            if i % 50 == 49 {
                (lon, lat) = (t.lon[i - 1], t.lat[i - 1]);
            }
            if i % 250 == 10 && i >= 250 {
                (lon, lat) = (t.lon[i - 250], t.lat[i - 250]);
            }
            match i % 97 {
                5 => lat = f64::NAN,
                6 => lat = 88.0,
                7 => lon = 200.0,
                _ => {}
            }
            t.lon.push(lon);
            t.lat.push(lat);
            t.value
                .push((i % 13 != 0).then(|| (rng.next() * 1000.0).round() / 10.0));
            t.count.push((rng.next() * 100.0) as i32 - 20);
            t.radio
                .push((i % 29 != 0).then(|| RADIOS[(rng.next() * 4.0) as usize % 4]));
            t.name.push(format!("site-{}", t.id[i]));
            t.when.push(1_500_000_000 + (rng.next() * 1e8) as i64);
            t.flag.push(i % 3 == 0);
        }
        t
    }

    fn len(&self) -> usize {
        self.id.len()
    }

    fn slice(&self, range: std::ops::Range<usize>) -> Table {
        Table {
            id: self.id[range.clone()].to_vec(),
            lon: self.lon[range.clone()].to_vec(),
            lat: self.lat[range.clone()].to_vec(),
            value: self.value[range.clone()].to_vec(),
            count: self.count[range.clone()].to_vec(),
            radio: self.radio[range.clone()].to_vec(),
            name: self.name[range.clone()].to_vec(),
            when: self.when[range.clone()].to_vec(),
            flag: self.flag[range].to_vec(),
        }
    }

    fn expect(&self) -> Expect {
        let rows = (0..self.len())
            .map(|i| {
                let q = geo::lnglat_in_range(self.lon[i], self.lat[i])
                    .then(|| quantize_lnglat(self.lon[i], self.lat[i]));
                let attrs = BTreeMap::from([
                    ("id".to_string(), Val::Num(self.id[i] as f64)),
                    (
                        "value".to_string(),
                        self.value[i].map_or(Val::Null, Val::Num),
                    ),
                    ("count".to_string(), Val::Num(self.count[i] as f64)),
                    (
                        "radio".to_string(),
                        self.radio[i].map_or(Val::Null, |r| Val::Text(r.into())),
                    ),
                    ("name".to_string(), Val::Text(self.name[i].clone())),
                    ("when".to_string(), Val::Time(self.when[i] * 1_000_000)),
                    ("flag".to_string(), Val::Num(u8::from(self.flag[i]) as f64)),
                ]);
                (q, attrs)
            })
            .collect();
        let name_kind = if self.len() > 1024 {
            ColumnKind::String
        } else {
            ColumnKind::Categorical
        };
        Expect {
            rows,
            id: "id".into(),
            kinds: BTreeMap::from([
                ("id".to_string(), ColumnKind::Numeric),
                ("value".to_string(), ColumnKind::Numeric),
                ("count".to_string(), ColumnKind::Numeric),
                ("radio".to_string(), ColumnKind::Categorical),
                ("name".to_string(), name_kind),
                ("when".to_string(), ColumnKind::Temporal),
                ("flag".to_string(), ColumnKind::Numeric),
            ]),
        }
    }

    /// The attribute columns, as a Parquet/Arrow writer would store them.
    fn attr_columns(&self) -> Vec<(Field, ArrayRef)> {
        vec![
            (
                Field::new("id", DataType::Int64, false),
                Arc::new(Int64Array::from(self.id.clone())),
            ),
            (
                Field::new("value", DataType::Float64, true),
                Arc::new(Float64Array::from(self.value.clone())),
            ),
            (
                Field::new("count", DataType::Int32, false),
                Arc::new(Int32Array::from(self.count.clone())),
            ),
            (
                Field::new("radio", DataType::Utf8, true),
                Arc::new(StringArray::from(self.radio.clone())),
            ),
            (
                Field::new("name", DataType::Utf8, false),
                Arc::new(StringArray::from(self.name.clone())),
            ),
            (
                Field::new(
                    "when",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    false,
                ),
                Arc::new(
                    TimestampMillisecondArray::from(
                        self.when.iter().map(|s| s * 1000).collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            (
                Field::new("flag", DataType::Boolean, false),
                Arc::new(BooleanArray::from(self.flag.clone())),
            ),
        ]
    }

    /// A record batch with the positions encoded as `coords` says.
    fn batch(&self, coords: Coords) -> RecordBatch {
        let mut cols: Vec<(Field, ArrayRef)> = Vec::new();
        let f64s = |v: &[f64]| -> ArrayRef { Arc::new(Float64Array::from(v.to_vec())) };
        let meters: Vec<(f64, f64)> = self
            .lon
            .iter()
            .zip(&self.lat)
            .map(|(&x, &y)| {
                if geo::lnglat_in_range(x, y) {
                    geo::lnglat_to_meters(x, y)
                } else {
                    (f64::NAN, f64::NAN)
                }
            })
            .collect();
        match coords {
            Coords::LonLat(x, y) => {
                cols.push((Field::new(x, DataType::Float64, true), f64s(&self.lon)));
                cols.push((Field::new(y, DataType::Float64, true), f64s(&self.lat)));
            }
            Coords::Meters(x, y) => {
                let (mx, my): (Vec<f64>, Vec<f64>) = meters.iter().copied().unzip();
                cols.push((Field::new(x, DataType::Float64, true), f64s(&mx)));
                cols.push((Field::new(y, DataType::Float64, true), f64s(&my)));
            }
            Coords::Wkb | Coords::WkbMeters => {
                let pts: Vec<(f64, f64)> = if coords == Coords::Wkb {
                    self.lon
                        .iter()
                        .copied()
                        .zip(self.lat.iter().copied())
                        .collect()
                } else {
                    meters.clone()
                };
                let wkb: Vec<Vec<u8>> = pts.iter().map(|&(x, y)| wkb_point(x, y)).collect();
                let arr = BinaryArray::from_iter_values(wkb.iter());
                cols.push((
                    Field::new("geometry", DataType::Binary, true),
                    Arc::new(arr),
                ));
            }
            Coords::GeoArrowPoint => {
                let fields = Fields::from(vec![
                    Field::new("x", DataType::Float64, false),
                    Field::new("y", DataType::Float64, false),
                ]);
                let s =
                    StructArray::new(fields.clone(), vec![f64s(&self.lon), f64s(&self.lat)], None);
                cols.push((
                    Field::new("geometry", DataType::Struct(fields), true),
                    Arc::new(s),
                ));
            }
        }
        cols.extend(self.attr_columns());
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    /// CSV text: `id,lon,lat,value,count,radio,name,when,flag`, timestamps
    /// as RFC 3339, booleans as 0/1, nulls as empty fields.
    fn csv(&self) -> String {
        let mut s = String::from("id,lon,lat,value,count,radio,name,when,flag\n");
        for i in 0..self.len() {
            let when = chrono::DateTime::from_timestamp(self.when[i], 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            s += &format!(
                "{},{},{},{},{},{},{},{},{}\n",
                self.id[i],
                self.lon[i],
                self.lat[i],
                self.value[i].map_or(String::new(), |v| v.to_string()),
                self.count[i],
                self.radio[i].unwrap_or(""),
                self.name[i],
                when,
                u8::from(self.flag[i])
            );
        }
        s
    }
}

/// How a test file encodes positions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coords {
    /// Two degree columns with these names.
    LonLat(&'static str, &'static str),
    /// Two Web Mercator metre columns with these names.
    Meters(&'static str, &'static str),
    /// A WKB `geometry` column in degrees.
    Wkb,
    /// A WKB `geometry` column in Web Mercator metres.
    WkbMeters,
    /// A GeoArrow native point `geometry` column (struct of x, y).
    GeoArrowPoint,
}

fn quantize_lnglat(lon: f64, lat: f64) -> (u32, u32) {
    let (x, y) = geo::lnglat_to_meters(lon, lat);
    geo::quantize(x, y)
}

fn wkb_point(x: f64, y: f64) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend(1u32.to_le_bytes());
    v.extend(x.to_le_bytes());
    v.extend(y.to_le_bytes());
    v
}

fn geoparquet_meta(encoding: &str, crs: Option<serde_json::Value>) -> String {
    let mut col = serde_json::json!({"encoding": encoding, "geometry_types": ["Point"]});
    if let Some(crs) = crs {
        col["crs"] = crs;
    }
    serde_json::json!({"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": col}})
        .to_string()
}

fn epsg(code: u32) -> serde_json::Value {
    serde_json::json!({"type": "ProjectedCRS", "name": format!("EPSG {code}"), "id": {"authority": "EPSG", "code": code}})
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

fn write_parquet(path: &Path, batch: &RecordBatch, row_group_rows: usize, geo: Option<String>) {
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_key_value_metadata(geo.map(|g| vec![KeyValue::new("geo".into(), g)]))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn write_ipc(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, &batch.schema()).unwrap();
    // Two record batches, to read more than one.
    let half = batch.num_rows() / 2;
    w.write(&batch.slice(0, half)).unwrap();
    w.write(&batch.slice(half, batch.num_rows() - half))
        .unwrap();
    w.finish().unwrap();
}

// ---------------------------------------------------------------------------
// Packing helpers
// ---------------------------------------------------------------------------

fn options(inputs: &[&Path], out: &Path) -> PackOptions {
    let mut o = PackOptions::new(
        inputs.iter().map(|p| p.display().to_string()).collect(),
        out,
    );
    o.partition_rows = 200;
    o
}

fn pack_ok(o: &PackOptions) -> (PackReport, Dataset) {
    let report = pack::pack(o).unwrap_or_else(|e| panic!("pack failed: {e}"));
    let ds = Dataset::open(&o.out).unwrap_or_else(|e| panic!("open failed: {e}"));
    (report, ds)
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pointillist"));
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run pointillist")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The pack failed with a message containing `needle`, and left neither a
/// dataset nor a temporary directory behind.
fn assert_failed_cleanly(o: &Output, out: &Path, needle: &str) {
    let msg = text(o);
    assert!(!o.status.success(), "expected failure, got: {msg}");
    assert!(
        msg.contains(needle),
        "message should mention {needle:?}: {msg}"
    );
    assert_nothing_written(out);
}

fn temp_dirs(out: &Path) -> Vec<PathBuf> {
    let prefix = format!(".{}.tmp-", out.file_name().unwrap().to_str().unwrap());
    let parent = out.parent().unwrap();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

fn assert_nothing_written(out: &Path) {
    assert!(!out.exists(), "{} should not exist", out.display());
    assert!(
        temp_dirs(out).is_empty(),
        "temporary directories left: {:?}",
        temp_dirs(out)
    );
}

// ---------------------------------------------------------------------------
// The dataset checker
// ---------------------------------------------------------------------------

/// The value of column `name` at row `r` of partition `p`.
fn cell(ds: &Dataset, p: usize, name: &str, r: usize) -> Val {
    let col = ds.manifest.column(name).expect("column in manifest");
    let a = ds.partitions[p].column(name).expect("column in data");
    if a.is_null(r) {
        return Val::Null;
    }
    match col.kind {
        ColumnKind::Numeric => {
            let v = NumColumn::new(a).expect("numeric").get(r);
            if v.is_nan() { Val::Null } else { Val::Num(v) }
        }
        ColumnKind::Temporal => Val::Time(a.as_primitive::<TimestampMicrosecondType>().value(r)),
        ColumnKind::Categorical => {
            let code = a.as_dictionary::<Int16Type>().keys().value(r);
            Val::Text(col.categories[code as usize].clone())
        }
        ColumnKind::String => Val::Text(a.as_string::<i32>().value(r).to_string()),
        ColumnKind::Other => panic!("no other columns expected"),
    }
}

/// Check a packed dataset against what its input should give; returns the
/// ids in stored order.
fn check_dataset(ds: &Dataset, want: &Expect) -> Vec<i64> {
    let m = &ds.manifest;
    assert_eq!(m.rows as usize, want.kept(), "rows");
    assert_eq!(m.dropped_rows, want.dropped(), "dropped rows");
    // Columns: names, kinds, stored types.
    let names: BTreeSet<&str> = m.columns.iter().map(|c| c.name.as_str()).collect();
    let want_names: BTreeSet<&str> = want.kinds.keys().map(String::as_str).collect();
    assert_eq!(names, want_names, "columns");
    for c in &m.columns {
        assert_eq!(c.kind, want.kinds[&c.name], "kind of {}", c.name);
        if c.kind == ColumnKind::Categorical {
            assert_eq!(c.arrow_type, "Dictionary(Int16, Utf8)");
            let f = ds.schema.field_with_name(&c.name).unwrap();
            assert_eq!(
                f.data_type(),
                &DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
            );
        }
        if c.kind == ColumnKind::Temporal {
            assert!(
                matches!(
                    ds.schema.field_with_name(&c.name).unwrap().data_type(),
                    DataType::Timestamp(TimeUnit::Microsecond, _)
                ),
                "{} stays a timestamp",
                c.name
            );
        }
    }
    let mut by_id: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, (q, attrs)) in want.rows.iter().enumerate() {
        if q.is_some() {
            let Val::Num(id) = attrs[&want.id] else {
                panic!("ids are numbers")
            };
            assert!(by_id.insert(id as i64, i).is_none(), "test ids are unique");
        }
    }
    let mut seen: HashSet<i64> = HashSet::new();
    let mut order = Vec::new();
    let mut last_key = 0u64;
    let mut row_start = 0u64;
    let mut all = [u32::MAX, u32::MAX, 0, 0];
    // Column values of the whole dataset, for the statistics.
    let mut values: BTreeMap<String, Vec<Val>> = BTreeMap::new();
    for (pi, p) in ds.partitions.iter().enumerate() {
        let info = &p.info;
        assert!(!p.is_empty(), "partition {pi} is empty");
        assert_eq!(info.row_start, row_start, "partition {pi} row_start");
        assert_eq!(info.rows as usize, p.len(), "partition {pi} rows");
        row_start += info.rows;
        let keys: Vec<u64> = p
            .qx()
            .iter()
            .zip(p.qy())
            .map(|(&x, &y)| geo::hilbert(x, y))
            .collect();
        for &k in &keys {
            assert!(k >= last_key, "partition {pi}: Hilbert order broken");
            last_key = k;
        }
        assert_eq!(info.key_min, keys[0], "partition {pi} key_min");
        assert_eq!(
            info.key_max,
            *keys.last().unwrap(),
            "partition {pi} key_max"
        );
        let b = [
            *p.qx().iter().min().unwrap(),
            *p.qy().iter().min().unwrap(),
            *p.qx().iter().max().unwrap(),
            *p.qy().iter().max().unwrap(),
        ];
        assert_eq!(info.bounds.quantized, b, "partition {pi} bounds");
        let [w, so, e, n] = info.bounds.lnglat;
        all = [
            all[0].min(b[0]),
            all[1].min(b[1]),
            all[2].max(b[2]),
            all[3].max(b[3]),
        ];
        for r in 0..p.len() {
            let Val::Num(id) = cell(ds, pi, &want.id, r) else {
                panic!("null id")
            };
            let id = id as i64;
            order.push(id);
            assert!(seen.insert(id), "id {id} stored twice");
            let i = *by_id
                .get(&id)
                .unwrap_or_else(|| panic!("unexpected id {id}"));
            let (q, attrs) = &want.rows[i];
            assert_eq!(Some((p.qx()[r], p.qy()[r])), *q, "position of id {id}");
            let (mx, my) = geo::dequantize(p.qx()[r], p.qy()[r]);
            let (lon, lat) = geo::meters_to_lnglat(mx, my);
            let eps = 1e-9;
            assert!(
                lon >= w - eps && lon <= e + eps && lat >= so - eps && lat <= n + eps,
                "id {id} outside its partition's degree bounds"
            );
            for (name, v) in attrs {
                let got = cell(ds, pi, name, r);
                assert_eq!(&got, v, "column {name} of id {id}");
                values.entry(name.clone()).or_default().push(got);
            }
        }
        // Zone maps against this partition's rows.
        for c in &m.columns {
            let zone = &info.columns[&c.name];
            let vals: Vec<Val> = (0..p.len()).map(|r| cell(ds, pi, &c.name, r)).collect();
            let nulls = vals.iter().filter(|v| **v == Val::Null).count() as u64;
            assert_eq!(zone.nulls, nulls, "partition {pi} {} nulls", c.name);
            match c.kind {
                ColumnKind::Numeric | ColumnKind::Temporal => {
                    let (lo, hi) = min_max(&vals);
                    assert_eq!((zone.min, zone.max), (lo, hi), "partition {pi} {}", c.name);
                }
                ColumnKind::Categorical => {
                    let present: BTreeSet<u32> = vals
                        .iter()
                        .filter_map(|v| match v {
                            Val::Text(t) => {
                                Some(c.categories.iter().position(|l| l == t).unwrap() as u32)
                            }
                            _ => None,
                        })
                        .collect();
                    assert_eq!(
                        zone.categories.as_deref(),
                        Some(&present.into_iter().collect::<Vec<_>>()[..]),
                        "partition {pi} {} categories",
                        c.name
                    );
                }
                _ => {}
            }
        }
    }
    assert_eq!(seen.len(), want.kept(), "every row present once");
    assert_eq!(m.bounds.quantized, all, "dataset bounds");
    // Whole-dataset statistics.
    for c in &m.columns {
        let vals = &values[&c.name];
        let st = &c.stats;
        let nulls = vals.iter().filter(|v| **v == Val::Null).count() as u64;
        assert_eq!(st.nulls, nulls, "{} nulls", c.name);
        assert_eq!(st.count, vals.len() as u64 - nulls, "{} count", c.name);
        match c.kind {
            ColumnKind::Numeric | ColumnKind::Temporal => {
                let (lo, hi) = min_max(vals);
                assert_eq!((st.min, st.max), (lo, hi), "{} min/max", c.name);
                let nums: Vec<f64> = vals.iter().filter_map(as_f64).collect();
                let mean = nums.iter().sum::<f64>() / nums.len() as f64;
                let got = st.mean.unwrap();
                assert!(
                    (got - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                    "{} mean {got} vs {mean}",
                    c.name
                );
            }
            ColumnKind::Categorical => {
                let labels: BTreeSet<&str> = vals
                    .iter()
                    .filter_map(|v| match v {
                        Val::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                let labels: Vec<&str> = labels.into_iter().collect();
                assert_eq!(c.categories, labels, "{} categories (sorted)", c.name);
                let counts: Vec<u64> = labels
                    .iter()
                    .map(|l| {
                        vals.iter()
                            .filter(|v| **v == Val::Text(l.to_string()))
                            .count() as u64
                    })
                    .collect();
                assert_eq!(st.category_counts, counts, "{} category counts", c.name);
            }
            _ => {}
        }
    }
    order
}

fn as_f64(v: &Val) -> Option<f64> {
    match v {
        Val::Num(x) => Some(*x),
        Val::Time(t) => Some(*t as f64),
        _ => None,
    }
}

fn min_max(vals: &[Val]) -> (Option<f64>, Option<f64>) {
    let nums: Vec<f64> = vals.iter().filter_map(as_f64).collect();
    if nums.is_empty() {
        return (None, None);
    }
    (
        Some(nums.iter().copied().fold(f64::INFINITY, f64::min)),
        Some(nums.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    )
}

// ---------------------------------------------------------------------------
// Round trips, one per input format
// ---------------------------------------------------------------------------

#[test]
fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(1500, 1);
    let input = dir.path().join("points.parquet");
    write_parquet(&input, &t.batch(Coords::LonLat("lon", "lat")), 250, None);
    let (report, ds) = pack_ok(&options(&[&input], &dir.path().join("ds")));
    let want = t.expect();
    assert_eq!(report.rows as usize, want.kept());
    assert_eq!(report.dropped, want.dropped());
    assert!(want.dropped() > 0 && ds.partitions.len() > 5);
    check_dataset(&ds, &want);
    ds.verify().unwrap();
}

#[test]
fn geoparquet_wkb_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(1200, 2);
    let input = dir.path().join("points.parquet");
    write_parquet(
        &input,
        &t.batch(Coords::Wkb),
        400,
        Some(geoparquet_meta("WKB", None)),
    );
    let (_, ds) = pack_ok(&options(&[&input], &dir.path().join("ds")));
    check_dataset(&ds, &t.expect());
}

#[test]
fn geoparquet_web_mercator_crs_is_read_as_metres() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(300, 3);
    let input = dir.path().join("points.parquet");
    write_parquet(
        &input,
        &t.batch(Coords::WkbMeters),
        1000,
        Some(geoparquet_meta("WKB", Some(epsg(3857)))),
    );
    let (_, ds) = pack_ok(&options(&[&input], &dir.path().join("ds")));
    // Metres from lnglat_to_meters quantize to the same cells as the degrees.
    check_dataset(&ds, &t.expect());
}

#[test]
fn geoparquet_geoarrow_point_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(300, 4);
    let input = dir.path().join("points.parquet");
    write_parquet(
        &input,
        &t.batch(Coords::GeoArrowPoint),
        100,
        Some(geoparquet_meta("point", None)),
    );
    let (_, ds) = pack_ok(&options(&[&input], &dir.path().join("ds")));
    check_dataset(&ds, &t.expect());
}

#[test]
fn geoparquet_with_an_unsupported_crs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("utm.parquet");
    write_parquet(
        &input,
        &Table::new(50, 5).batch(Coords::WkbMeters),
        1000,
        Some(geoparquet_meta("WKB", Some(epsg(32633)))),
    );
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "reproject to EPSG:4326 or EPSG:3857");
}

#[test]
fn arrow_ipc_and_feather_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(600, 6);
    for ext in ["arrow", "feather"] {
        let input = dir.path().join(format!("points.{ext}"));
        write_ipc(&input, &t.batch(Coords::LonLat("lon", "lat")));
        let (_, ds) = pack_ok(&options(&[&input], &dir.path().join(format!("ds-{ext}"))));
        check_dataset(&ds, &t.expect());
    }
}

#[test]
fn csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(1100, 7);
    let input = dir.path().join("points.csv");
    std::fs::write(&input, t.csv()).unwrap();
    let (report, ds) = pack_ok(&options(&[&input], &dir.path().join("ds")));
    assert_eq!(report.bad_rows, 0);
    check_dataset(&ds, &t.expect());
    // The text timestamps are parsed as timestamps, 0/1 as numbers.
    let when = ds.manifest.column("when").unwrap();
    assert_eq!(when.arrow_type, "Timestamp(µs, \"UTC\")");
}

// ---------------------------------------------------------------------------
// OpenCelliD
// ---------------------------------------------------------------------------

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/opencellid_sample.csv")
}

/// What the sample should pack to, read with the `csv` crate.
fn opencellid_expect(path: &Path) -> Expect {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header.join(","),
        "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal"
    );
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let get = |name: &str| rec[header.iter().position(|h| h == name).unwrap()].to_string();
        let (lon, lat): (f64, f64) = (get("lon").parse().unwrap(), get("lat").parse().unwrap());
        let mut attrs = BTreeMap::new();
        for h in &header {
            let v = get(h);
            let val = match h.as_str() {
                "lon" | "lat" => continue,
                "radio" => Val::Text(v),
                "created" | "updated" => Val::Time(v.parse::<i64>().unwrap() * 1_000_000),
                _ => Val::Num(v.parse::<i64>().unwrap() as f64),
            };
            attrs.insert(h.clone(), val);
        }
        rows.push((Some(quantize_lnglat(lon, lat)), attrs));
    }
    let kinds = header
        .iter()
        .filter(|h| *h != "lon" && *h != "lat")
        .map(|h| {
            let k = match h.as_str() {
                "radio" => ColumnKind::Categorical,
                "created" | "updated" => ColumnKind::Temporal,
                _ => ColumnKind::Numeric,
            };
            (h.clone(), k)
        })
        .collect();
    Expect {
        rows,
        id: "cell".into(),
        kinds,
    }
}

#[test]
fn opencellid_sample_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let want = opencellid_expect(&sample_path());
    assert_eq!(want.rows.len(), 300);
    let (report, ds) = pack_ok(&options(&[&sample_path()], &dir.path().join("cells")));
    assert_eq!((report.rows, report.dropped, report.bad_rows), (300, 0, 0));
    check_dataset(&ds, &want);
    let radio = ds.manifest.column("radio").unwrap();
    assert_eq!(radio.categories, ["GSM", "LTE", "NR", "UMTS"]);
    // Seven cities, so the bounds span the world from São Paulo to Tokyo.
    let [w, so, e, n] = ds.manifest.bounds.lnglat;
    assert!(
        w < -74.0 && e > 139.0 && so < -23.0 && n > 52.0,
        "{w} {so} {e} {n}"
    );
}

#[test]
fn opencellid_without_header_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = std::fs::read_to_string(sample_path())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    let input = dir.path().join("262.csv");
    std::fs::write(&input, body).unwrap();
    let (_, ds) = pack_ok(&options(&[&input], &dir.path().join("cells")));
    check_dataset(&ds, &opencellid_expect(&sample_path()));
}

// ---------------------------------------------------------------------------
// Several inputs at once
// ---------------------------------------------------------------------------

#[test]
fn several_files_a_directory_and_a_glob() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(900, 8);
    let want = t.expect();
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    // Three formats, with different types for some columns (Int32 vs Int64,
    // Boolean vs integers, millisecond vs microsecond timestamps).
    let p0 = parts.join("part-0.parquet");
    let p1 = parts.join("part-1.csv");
    let p2 = parts.join("part-2.arrow");
    write_parquet(
        &p0,
        &t.slice(0..300).batch(Coords::LonLat("lon", "lat")),
        100,
        None,
    );
    std::fs::write(&p1, t.slice(300..600).csv()).unwrap();
    write_ipc(&p2, &t.slice(600..900).batch(Coords::LonLat("lon", "lat")));
    std::fs::write(parts.join("notes.md"), "ignored: not a point file").unwrap();

    let (_, ds) = pack_ok(&options(&[&p0, &p1, &p2], &dir.path().join("files")));
    check_dataset(&ds, &want);
    let (_, by_dir) = pack_ok(&options(&[&parts], &dir.path().join("dir")));
    assert!(
        check_dataset(&by_dir, &want) == check_dataset(&ds, &want),
        "a directory packs like its files listed one by one"
    );

    let glob = parts.join("part-[02].*");
    let mut o = options(&[], &dir.path().join("glob"));
    o.inputs = vec![glob.display().to_string()];
    let (_, by_glob) = pack_ok(&o);
    check_dataset(&by_glob, &want.filter(|i| !(300..600).contains(&i)));

    // A file named twice (directly and through a pattern) is read once.
    let mut o = options(&[&p0], &dir.path().join("twice"));
    o.inputs.push(parts.join("part-0.*").display().to_string());
    let (_, twice) = pack_ok(&o);
    check_dataset(&twice, &want.filter(|i| i < 300));

    // A pattern or directory that matches nothing is an error, not ignored.
    let out = dir.path().join("none");
    let r = run(&["pack", s(&p0), s(&parts.join("*.parqet")), "--out", s(&out)]);
    assert_failed_cleanly(&r, &out, "no .parquet, .arrow/.feather or .csv files found");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = run(&["pack", s(&p0), s(&empty), "--out", s(&out)]);
    assert_failed_cleanly(&r, &out, "no .parquet, .arrow/.feather or .csv files found");
    // A named file of an unknown type.
    let r = run(&["pack", s(&parts.join("notes.md")), "--out", s(&out)]);
    assert_failed_cleanly(&r, &out, "unknown file type");
}

#[test]
fn inputs_with_different_columns_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(&a, "lon,lat,v\n1,2,3\n").unwrap();
    std::fs::write(&b, "lon,lat,w\n1,2,3\n").unwrap();
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&a), s(&b), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "missing [\"v\"], extra [\"w\"]");
}

// ---------------------------------------------------------------------------
// Coordinates: detection and flags
// ---------------------------------------------------------------------------

#[test]
fn coordinate_columns_are_detected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(200, 9);
    for (i, (x, y)) in [("longitude", "latitude"), ("LNG", "Lat"), ("x", "y")]
        .into_iter()
        .enumerate()
    {
        let input = dir.path().join(format!("in-{i}.parquet"));
        write_parquet(&input, &t.batch(Coords::LonLat(x, y)), 1000, None);
        let (_, ds) = pack_ok(&options(&[&input], &dir.path().join(format!("ds-{i}"))));
        check_dataset(&ds, &t.expect());
    }
}

#[test]
fn coordinate_flags_override_detection() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(200, 10);
    let want = t.expect();
    // Names nothing detects: --lon/--lat.
    let odd = dir.path().join("odd.parquet");
    write_parquet(&odd, &t.batch(Coords::LonLat("east", "north")), 1000, None);
    let out = dir.path().join("odd-ds");
    let o = run(&["pack", s(&odd), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "no coordinate columns found");
    let o = run(&[
        "pack",
        s(&odd),
        "--out",
        s(&out),
        "--lon",
        "east",
        "--lat",
        "north",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    check_dataset(&Dataset::open(&out).unwrap(), &want);

    // Web Mercator metres: --x/--y --crs 3857.
    let m = dir.path().join("metres.parquet");
    write_parquet(&m, &t.batch(Coords::Meters("mx", "my")), 1000, None);
    let out = dir.path().join("metres-ds");
    let o = run(&[
        "pack",
        s(&m),
        "--out",
        s(&out),
        "--x",
        "mx",
        "--y",
        "my",
        "--crs",
        "3857",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    check_dataset(&Dataset::open(&out).unwrap(), &want);
    // The same columns read as degrees are almost all out of range.
    let out = dir.path().join("metres-as-degrees");
    let o = run(&["pack", s(&m), "--out", s(&out), "--x", "mx", "--y", "my"]);
    assert_failed_cleanly(&o, &out, "no rows with valid coordinates");

    // A flag naming a column that is not there.
    let out = dir.path().join("missing");
    let o = run(&[
        "pack",
        s(&odd),
        "--out",
        s(&out),
        "--lon",
        "lon",
        "--lat",
        "north",
    ]);
    assert_failed_cleanly(&o, &out, "coordinate column \"lon\" is not in the input");
    // Half a pair.
    let o = run(&["pack", s(&odd), "--out", s(&out), "--lon", "east"]);
    assert_failed_cleanly(&o, &out, "give both --lon and --lat");
    let o = run(&[
        "pack",
        s(&m),
        "--out",
        s(&out),
        "--x",
        "mx",
        "--y",
        "my",
        "--crs",
        "2154",
    ]);
    assert_failed_cleanly(&o, &out, "unsupported --crs 2154");
}

#[test]
fn ambiguous_coordinate_columns_need_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("amb.csv");
    std::fs::write(
        &input,
        "id,lon,longitude,lat\n1,13.4,99,52.5\n2,2.35,98,48.85\n",
    )
    .unwrap();
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "ambiguous longitude column");
    assert!(text(&o).contains("\"lon\"") && text(&o).contains("\"longitude\""));
    let o = run(&[
        "pack",
        s(&input),
        "--out",
        s(&out),
        "--lon",
        "lon",
        "--lat",
        "lat",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let ds = Dataset::open(&out).unwrap();
    // The unused candidate stays an attribute.
    assert!(ds.manifest.column("longitude").is_some());
    assert_eq!(ds.rows(), 2);
}

#[test]
fn columns_flag_keeps_only_the_named_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(100, 11);
    let input = dir.path().join("in.parquet");
    write_parquet(&input, &t.batch(Coords::LonLat("lon", "lat")), 1000, None);
    let mut o = options(&[&input], &dir.path().join("ds"));
    o.ingest.columns = Some(vec!["id".into(), "radio".into()]);
    let (_, ds) = pack_ok(&o);
    let names: Vec<&str> = ds
        .manifest
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["id", "radio"]);
    let out = dir.path().join("bad");
    let r = run(&["pack", s(&input), "--out", s(&out), "--columns", "id,nope"]);
    assert_failed_cleanly(&r, &out, "--columns names \"nope\"");
}

// ---------------------------------------------------------------------------
// The external sort
// ---------------------------------------------------------------------------

#[test]
fn spilled_pack_equals_in_memory_pack() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(3000, 12);
    let input = dir.path().join("in.parquet");
    // Twelve row groups: twelve units read in parallel, in any order.
    write_parquet(&input, &t.batch(Coords::LonLat("lon", "lat")), 250, None);
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let mut mem = options(&[&input], &dir.path().join("a/ds"));
    mem.partition_rows = 333;
    let mut spill = options(&[&input], &dir.path().join("b/ds"));
    spill.partition_rows = 333;
    spill.memory_limit = 1; // every batch spills a run
    let (r1, d1) = pack_ok(&mem);
    let (r2, d2) = pack_ok(&spill);
    assert_eq!(r1.spilled_runs, 0);
    assert!(r2.spilled_runs >= 10, "{} runs", r2.spilled_runs);
    let want = t.expect();
    let o1 = check_dataset(&d1, &want);
    let o2 = check_dataset(&d2, &want);
    let first_difference = o1.iter().zip(&o2).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "rows in a different order");
    // Rows sharing a position keep their input order, whichever way.
    let pos: Vec<(u32, u32)> = d1
        .partitions
        .iter()
        .flat_map(|p| p.qx().iter().copied().zip(p.qy().iter().copied()))
        .collect();
    let input_index: std::collections::HashMap<i64, usize> =
        t.id.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut ties = 0;
    for i in 1..o1.len() {
        if pos[i] == pos[i - 1] {
            ties += 1;
            assert!(input_index[&o1[i - 1]] < input_index[&o1[i]]);
        }
    }
    assert!(ties >= 60, "{ties} ties");
    assert_eq!(d1.partitions.len(), d2.partitions.len());
    for (a, b) in d1.partitions.iter().zip(&d2.partitions) {
        assert_eq!(a.batch, b.batch);
    }
    let (mut m1, mut m2) = (d1.manifest.clone(), d2.manifest.clone());
    m2.created = m1.created.clone();
    m1.source.clear();
    m2.source.clear();
    assert_eq!(m1, m2);
    // The data files are byte for byte the same.
    assert_eq!(
        std::fs::read(dir.path().join("a/ds").join(DATA_FILE)).unwrap(),
        std::fs::read(dir.path().join("b/ds").join(DATA_FILE)).unwrap()
    );
    // Nothing of the runs is left.
    assert!(temp_dirs(&spill.out).is_empty());
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn missing_coordinate_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nocoords.csv");
    std::fs::write(&input, "id,name,value\n1,a,2.5\n").unwrap();
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "no coordinate columns found");
    assert!(text(&o).contains("id, name, value"), "lists the columns");
}

#[test]
fn unreadable_or_truncated_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_parquet(
        &good,
        &Table::new(500, 13).batch(Coords::LonLat("lon", "lat")),
        100,
        None,
    );
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"this is not parquet at all").unwrap();
    for input in [&truncated, &garbage] {
        let out = dir.path().join("ds");
        let o = run(&["pack", s(input), "--out", s(&out)]);
        assert_failed_cleanly(&o, &out, "not a readable Parquet file");
        assert!(text(&o).contains(s(input)), "names the file: {}", text(&o));
    }
    // A footer that reads but data pages that do not: the failure comes
    // while reading, after the temporary directory exists.
    let mut damaged = bytes.clone();
    for b in &mut damaged[200..bytes.len() / 2] {
        *b = 0xA5;
    }
    let input = dir.path().join("damaged.parquet");
    std::fs::write(&input, damaged).unwrap();
    let out = dir.path().join("nested/deeper/ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, s(&input));
    // The parents the pack created for --out are gone again.
    assert!(!dir.path().join("nested").exists());
}

fn bad_rows_csv(dir: &Path) -> PathBuf {
    let mut body = b"id,lon,lat,v\n".to_vec();
    for i in 0..20 {
        body.extend(format!("{i},{},{},{i}\n", 10.0 + i as f64 * 0.1, 50.0).as_bytes());
        match i {
            4 => body.extend(b"100,13.4\n"),         // line 7: too few fields
            9 => body.extend(b"101,13.4,fifty,1\n"), // line 13: latitude is no number
            14 => body.extend(b"102,13.4,\xff\xfe,1\n"), // line 19: not UTF-8
            _ => {}
        }
    }
    body.extend(b"103,,,5\n"); // empty coordinates: dropped, not unparseable
    let p = dir.join("bad.csv");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn csv_rows_that_do_not_parse_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_rows_csv(dir.path());
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("packed 20 rows"), "{stdout}");
    assert!(stdout.contains("skipped 3 unparseable rows"), "{stdout}");
    assert!(stdout.contains("dropped 1 rows"), "{stdout}");
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.column("v").unwrap().kind, ColumnKind::Numeric);
    assert_eq!(ds.manifest.column("v").unwrap().stats.max, Some(19.0));
}

#[test]
fn csv_rows_that_do_not_parse_fail_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_rows_csv(dir.path());
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out), "--strict"]);
    assert_failed_cleanly(&o, &out, "line 7: 2 fields, expected 4");
    assert!(text(&o).contains("without --strict"), "{}", text(&o));
    // The other kinds of bad rows, each on its own.
    for (row, needle) in [
        (
            &b"101,13.4,fifty,1\n"[..],
            "line 3: column \"lat\": cannot parse \"fifty\"",
        ),
        (&b"102,13.4,\xff\xfe,1\n"[..], "line 3: not valid UTF-8"),
    ] {
        let mut body = b"id,lon,lat,v\n1,13.4,52.5,1\n".to_vec();
        body.extend(row);
        std::fs::write(&input, body).unwrap();
        let o = run(&["pack", s(&input), "--out", s(&out), "--strict"]);
        assert_failed_cleanly(&o, &out, needle);
    }
}

#[test]
fn all_coordinates_nan() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nan.csv");
    std::fs::write(&input, "lon,lat,v\nNaN,NaN,1\n,,2\nNaN,52.5,3\n").unwrap();
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "no rows with valid coordinates (3 dropped");
}

#[test]
fn an_existing_output_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "lon,lat\n13.4,52.5\n2.35,48.85\n").unwrap();
    let out = dir.path().join("ds");
    let first = run(&["pack", s(&sample_path()), "--out", s(&out)]);
    assert!(first.status.success(), "{}", text(&first));
    let manifest = std::fs::read(out.join(MANIFEST_FILE)).unwrap();
    let data = std::fs::read(out.join(DATA_FILE)).unwrap();

    let o = run(&["pack", s(&small), "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("already exists; pass --force"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(out.join(MANIFEST_FILE)).unwrap(), manifest);
    assert_eq!(std::fs::read(out.join(DATA_FILE)).unwrap(), data);
    assert!(temp_dirs(&out).is_empty());

    // A failing pack with --force leaves the old dataset alone too.
    let o = run(&[
        "pack",
        s(&dir.path().join("nope.csv")),
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(out.join(DATA_FILE)).unwrap(), data);

    let o = run(&["pack", s(&small), "--out", s(&out), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(Dataset::open(&out).unwrap().rows(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // --force never deletes a directory that is not a dataset.
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "…").unwrap();
    let o = run(&["pack", s(&small), "--out", s(&precious), "--force"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is not a Pointillist dataset"),
        "{}",
        text(&o)
    );
    assert!(precious.join("thesis.tex").exists());
    // An empty directory may be used.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["pack", s(&small), "--out", s(&empty), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_input_that_vanishes_after_planning() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(100, 14);
    let pq = dir.path().join("gone.parquet");
    write_parquet(&pq, &t.batch(Coords::LonLat("lon", "lat")), 1000, None);
    let csv = dir.path().join("gone.csv");
    std::fs::write(&csv, t.csv()).unwrap();
    for input in [pq, csv] {
        let files = ingest::expand_inputs(&[input.display().to_string()]).unwrap();
        let plan = ingest::plan(&files, &IngestOptions::default()).unwrap();
        std::fs::remove_file(&input).unwrap();
        let err = ingest::read_unit(&plan, &plan.units[0], &mut |_| Ok(())).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(s(&input)), "{msg}");
        assert!(msg.contains("No such file"), "{msg}");
    }
    // Through pack: a missing input is named, nothing is written.
    let out = dir.path().join("ds");
    let err = pack::pack(&options(&[&dir.path().join("gone.csv")], &out)).unwrap_err();
    assert!(matches!(err, PackError::Ingest(_)), "{err}");
    assert_nothing_written(&out);
}

#[test]
fn crs_option_default_is_degrees() {
    // IngestOptions::default reads x/y as degrees.
    assert_eq!(IngestOptions::default().crs, Crs::Wgs84);
}

// ---------------------------------------------------------------------------
// A killed pack
// ---------------------------------------------------------------------------

#[test]
fn a_killed_pack_leaves_no_dataset_and_the_next_pack_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big");
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "lon,lat\n13.4,52.5\n").unwrap();
    // Start with an input that takes a while to pack; if the pack still wins
    // the race to the end, try again with a bigger one.
    let mut rows = 300_000;
    let stale = loop {
        let input = dir.path().join(format!("big-{rows}.parquet"));
        let t = Table::new(rows, 15);
        write_parquet(&input, &t.batch(Coords::LonLat("lon", "lat")), 20_000, None);
        let mut child = bin()
            .args(["pack", s(&input), "--out", s(&out), "--memory-limit", "64K"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let spilled = loop {
            if let Some(tmp) = temp_dirs(&out)
                .into_iter()
                .find(|d| d.join("run-0.arrow").exists())
            {
                break Some(tmp);
            }
            if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        match spilled {
            Some(tmp) if !status.success() => break tmp,
            _ => {
                // Finished (or never spilled) before the kill: start over.
                assert!(rows < 5_000_000, "could not catch the pack in the act");
                let _ = std::fs::remove_dir_all(&out);
                for d in temp_dirs(&out) {
                    let _ = std::fs::remove_dir_all(d);
                }
                rows *= 2;
            }
        }
    };
    assert!(!out.exists(), "a killed pack must not leave a dataset");
    assert!(
        stale.exists(),
        "the killed pack's temporary directory stays"
    );
    let o = run(&["pack", s(&small), "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stale.exists(), "the next pack removes the stale directory");
    assert!(temp_dirs(&out).is_empty());
    assert_eq!(Dataset::open(&out).unwrap().rows(), 1);
}

// ---------------------------------------------------------------------------
// `pointillist info`
// ---------------------------------------------------------------------------

#[test]
fn info_describes_the_dataset_and_prints_the_manifest_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cells");
    let o = run(&[
        "pack",
        s(&sample_path()),
        "--out",
        s(&out),
        "--partition-rows",
        "64",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["info", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let info = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "dataset     cells",
        "rows        300",
        "partitions  5",
        "radio",
        "categorical",
        "GSM=",
        "created",
        "temporal",
        "averageSignal",
    ] {
        assert!(info.contains(needle), "info lacks {needle:?}:\n{info}");
    }
    let o = run(&["info", s(&out), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let printed: Manifest = serde_json::from_slice(&o.stdout).expect("--json prints the manifest");
    assert_eq!(printed, Dataset::open(&out).unwrap().manifest);

    // A damaged dataset: a clear error and a non-zero exit.
    std::fs::write(out.join(MANIFEST_FILE), "{").unwrap();
    let o = run(&["info", s(&out)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("invalid manifest"), "{}", text(&o));
}

// ---------------------------------------------------------------------------
// The store rejects damaged datasets
// ---------------------------------------------------------------------------

/// A small packed dataset (five partitions, categorical and string columns).
fn packed(dir: &Path) -> PathBuf {
    let input = dir.join("in.parquet");
    write_parquet(
        &input,
        &Table::new(1100, 16).batch(Coords::LonLat("lon", "lat")),
        1000,
        None,
    );
    let out = dir.join("ds");
    let mut o = options(&[&input], &out);
    o.partition_rows = 220;
    pack_ok(&o);
    out
}

fn open_err(dir: &Path) -> String {
    match Dataset::open(dir) {
        Ok(_) => panic!("a damaged dataset opened"),
        Err(e) => e.to_string(),
    }
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Manifest)) {
    let path = dir.join(MANIFEST_FILE);
    let mut m: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

fn overwrite(path: &Path, range: std::ops::Range<usize>, byte: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[range] {
        *b = byte;
    }
    std::fs::write(path, bytes).unwrap();
}

/// (offset, metadata length, body length) of each record batch block.
fn blocks(path: &Path) -> Vec<(usize, usize, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    let len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let footer = arrow_ipc::root_as_footer(&bytes[n - 10 - len..n - 10]).unwrap();
    footer
        .recordBatches()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b.offset() as usize,
                b.metaDataLength() as usize,
                b.bodyLength() as usize,
            )
        })
        .collect()
}

#[test]
fn store_opens_and_verifies_a_good_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::open(packed(dir.path())).unwrap();
    assert_eq!(ds.partitions.len(), 5);
    assert_eq!(ds.schema.field(0).name(), QX);
    assert_eq!(ds.schema.field(1).name(), QY);
    ds.verify().unwrap();
}

#[test]
fn store_rejects_a_truncated_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let e = open_err(&ds);
    assert!(
        e.contains("corrupt dataset") && e.contains("manifest says"),
        "{e}"
    );
    // Even with the manifest agreeing on the size, the footer is gone.
    edit_manifest(&ds, |m| m.data_bytes = len - 100);
    let e = open_err(&ds);
    assert!(e.contains("footer"), "{e}");
    // Cut to almost nothing.
    std::fs::write(&data, b"ARROW1").unwrap();
    edit_manifest(&ds, |m| m.data_bytes = 6);
    let e = open_err(&ds);
    assert!(e.contains("too short"), "{e}");
}

#[test]
fn store_rejects_garbage_in_the_footer() {
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let n = std::fs::metadata(&data).unwrap().len() as usize;
    overwrite(&data, n - 200..n - 10, 0x5A);
    let e = open_err(&ds);
    assert!(e.contains("footer"), "{e}");
    // The trailer's magic bytes.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    overwrite(&ds.join(DATA_FILE), n - 6..n, b'x');
    let e = open_err(&ds);
    assert!(e.contains("corrupt dataset"), "{e}");
    // The leading magic bytes.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    overwrite(&ds.join(DATA_FILE), 0..6, b'x');
    let e = open_err(&ds);
    assert!(e.contains("bad magic"), "{e}");
}

#[test]
fn store_rejects_garbage_in_the_middle() {
    for (what, byte) in [("metadata", 0x5Au8), ("metadata", 0xFF), ("metadata", 0x00)] {
        let dir = tempfile::tempdir().unwrap();
        let ds = packed(dir.path());
        let data = ds.join(DATA_FILE);
        let (off, meta, _) = blocks(&data)[2];
        // The record batch message of partition 2.
        overwrite(&data, off + 8..off + meta, byte);
        let e = open_err(&ds);
        assert!(e.contains("partition 2"), "{what} {byte:#x}: {e}");
    }
    // A whole block: metadata and column values.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let (off, meta, body) = blocks(&data)[1];
    overwrite(&data, off..off + meta + body, 0x33);
    let e = open_err(&ds);
    assert!(e.contains("partition 1"), "{e}");
    // Column values only: opening does not read them all, but the first and
    // last positions no longer match the manifest, and `verify` reads them.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let (off, meta, body) = blocks(&data)[3];
    overwrite(&data, off + meta..off + meta + body, 0x7F);
    match Dataset::open(&ds) {
        Err(e) => assert!(e.to_string().contains("partition 3"), "{e}"),
        Ok(d) => assert!(d.verify().is_err()),
    }
}

#[test]
fn store_damaged_category_codes_read_as_null() {
    // Codes are not read at open; out-of-range ones must not be trusted.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let d = Dataset::open(&ds).unwrap();
    let radio = d.schema.index_of("radio").unwrap();
    // Find the radio column's code buffer in partition 0's body via the
    // message: it is the (2 * radio + 1)-th buffer.
    let bytes = std::fs::read(&data).unwrap();
    let (off, meta, _) = blocks(&data)[0];
    let msg = arrow_ipc::root_as_message(&bytes[off + 8..off + meta]).unwrap();
    let rb = msg.header_as_record_batch().unwrap();
    let buffers = rb.buffers().unwrap();
    // Buffers before `radio`: two per column (validity, values), three for strings.
    let mut index = 0;
    for f in d.schema.fields().iter().take(radio) {
        index += if f.data_type() == &DataType::Utf8 {
            3
        } else {
            2
        };
    }
    let codes = buffers.get(index + 1);
    let start = off + meta + codes.offset() as usize;
    drop(d);
    overwrite(&data, start..start + 4, 0x7F); // codes 0x7F7F: far past 4 labels
    let d = Dataset::open(&ds).unwrap();
    let col = pointillist::store::column::CatColumn::new(d.partitions[0].column("radio").unwrap())
        .unwrap();
    assert_eq!(col.get(0), None);
    assert_eq!(col.get(1), None);
    let e = d.verify().unwrap_err().to_string();
    assert!(e.contains("radio"), "{e}");
}

#[test]
fn store_rejects_manifests_that_do_not_match() {
    type Edit = fn(&mut Manifest);
    let cases: [(&str, Edit, &str); 12] = [
        (
            "partition rows",
            |m| m.partitions[0].rows += 1,
            "starts at row",
        ),
        (
            "rows moved between partitions",
            |m| {
                m.partitions[0].rows += 1;
                m.partitions[1].rows -= 1;
                m.partitions[1].row_start += 1;
            },
            "partition 0 has 220 rows, manifest says 221",
        ),
        ("total rows", |m| m.rows += 1, "partitions hold"),
        (
            "a partition missing",
            |m| {
                let p = m.partitions.pop().unwrap();
                m.rows -= p.rows;
            },
            "5 record batches, manifest lists 4 partitions",
        ),
        ("data bytes", |m| m.data_bytes += 8, "manifest says"),
        ("version", |m| m.version = 99, "unsupported format"),
        (
            "format",
            |m| m.format = "other".into(),
            "unsupported format",
        ),
        (
            "key range",
            |m| m.partitions[2].key_min += 1,
            "partition 2: row 0 has Hilbert key",
        ),
        (
            "a column renamed",
            |m| m.columns[0].name = "renamed".into(),
            "does not match the manifest",
        ),
        (
            "a category dropped",
            |m| {
                let c = m.columns.iter_mut().find(|c| c.name == "radio").unwrap();
                c.categories.pop();
                c.stats.category_counts.pop();
            },
            "category code beyond",
        ),
        (
            "a column kind",
            |m| m.columns[0].kind = ColumnKind::Categorical,
            "does not match the manifest",
        ),
        (
            "bounds",
            |m| m.partitions[4].bounds.quantized[2] = 0,
            "outside the manifest's bounds",
        ),
    ];
    for (what, edit, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let ds = packed(dir.path());
        edit_manifest(&ds, edit);
        let e = open_err(&ds);
        assert!(e.contains(needle), "{what}: {e}");
    }
}

#[test]
fn store_rejects_invalid_or_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    std::fs::write(
        ds.join(MANIFEST_FILE),
        "{\"format\": \"pointillist-packed\",",
    )
    .unwrap();
    let e = open_err(&ds);
    assert!(e.contains("invalid manifest"), "{e}");
    std::fs::write(ds.join(MANIFEST_FILE), "[1, 2, 3]").unwrap();
    assert!(open_err(&ds).contains("invalid manifest"));
    std::fs::remove_file(ds.join(MANIFEST_FILE)).unwrap();
    let e = open_err(&ds);
    assert!(
        e.contains(MANIFEST_FILE) && e.contains("No such file"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    std::fs::remove_file(ds.join(DATA_FILE)).unwrap();
    let e = open_err(&ds);
    assert!(e.contains(DATA_FILE) && e.contains("No such file"), "{e}");

    let e = open_err(&dir.path().join("no-such-dataset"));
    assert!(e.contains("No such file"), "{e}");
}

/// File positions of the `Buffer` and `FieldNode` structs in the message of
/// record batch `p`: (buffers, nodes).
fn message_structs(path: &Path, p: usize) -> (Vec<usize>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let (off, meta, _) = blocks(path)[p];
    let fb = &bytes[off + 8..off + meta];
    let base = fb.as_ptr() as usize;
    let msg = arrow_ipc::root_as_message(fb).unwrap();
    let rb = msg.header_as_record_batch().unwrap();
    let at = |ptr: usize| off + 8 + ptr - base;
    let buffers = rb.buffers().unwrap();
    let nodes = rb.nodes().unwrap();
    (
        (0..buffers.len())
            .map(|k| at(buffers.get(k) as *const _ as usize))
            .collect(),
        (0..nodes.len())
            .map(|k| at(nodes.get(k) as *const _ as usize))
            .collect(),
    )
}

fn write_i64(path: &Path, at: usize, v: i64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn store_rejects_inconsistent_buffer_layouts() {
    // Well-formed messages whose buffers do not fit their columns: Arrow
    // would slice out of bounds (a panic) if they reached its decoder.
    // Buffers: _qx validity 0, values 1; _qy 2, 3; …; nodes: one per column.
    type Case = (
        &'static str,
        fn(&[usize], &[usize]) -> (usize, i64),
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            "offset past the body",
            |b, _| (b[1], 1 << 40),
            "outside the",
        ),
        (
            "negative offset",
            |b, _| (b[3], -64),
            "negative buffer offset",
        ),
        (
            "length past the body",
            |b, _| (b[1] + 8, 1 << 40),
            "outside the",
        ),
        (
            "values too short",
            |b, _| (b[3] + 8, 8),
            "bytes, 880 needed",
        ),
        (
            "more nulls than rows",
            |_, n| (n[0] + 8, 1_000),
            "more nulls than rows",
        ),
        (
            "a column longer than the batch",
            |_, n| (n[2], 221),
            "a column has 221 rows",
        ),
    ];
    for (what, at, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let ds = packed(dir.path());
        let data = ds.join(DATA_FILE);
        let (buffers, nodes) = message_structs(&data, 1);
        let (pos, v) = at(&buffers, &nodes);
        write_i64(&data, pos, v);
        let e = open_err(&ds);
        assert!(
            e.contains("partition 1") && e.contains(needle),
            "{what}: {e}"
        );
    }
}

#[test]
fn overview_is_written_and_damage_is_rejected() {
    use pointillist::store::OVERVIEW_FILE;
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let m = Dataset::open(&ds).unwrap().manifest;
    let ov = m.overview.clone().expect("packed with an overview");
    assert_eq!(ov.levels.first().unwrap().level, 8);
    assert_eq!(ov.levels.last().unwrap().level, 12);
    assert_eq!(ov.counts.len(), 25, "a count distribution per level 8..=32");
    // Every level's distribution accounts for every row exactly once.
    let opened = Dataset::open(&ds).unwrap();
    for level in 8..=32u32 {
        let z = level - 8;
        let stats = pointillist::raster::zoom::zoom_stats(
            &opened,
            z.min(30) as u8,
            256,
            &pointillist::query::Agg::Count,
            &[],
            None,
        )
        .unwrap();
        let total: f64 = stats.histogram.iter().map(|&(v, n)| v * n as f64).sum();
        assert_eq!(total as u64, m.rows, "level {level}");
    }
    drop(opened);
    let path = ds.join(OVERVIEW_FILE);
    let bytes = std::fs::read(&path).unwrap();

    // Truncated.
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    let e = open_err(&ds);
    assert!(
        e.contains("overview.bin") && e.contains("manifest says"),
        "{e}"
    );
    // Truncated, with a manifest that agrees on the size: arrays fall outside.
    edit_manifest(&ds, |m| m.overview.as_mut().unwrap().bytes -= 8);
    let e = open_err(&ds);
    assert!(e.contains("outside the file"), "{e}");
    std::fs::write(&path, &bytes).unwrap();
    edit_manifest(&ds, |m| m.overview.as_mut().unwrap().bytes += 8);
    Dataset::open(&ds).unwrap();
    // Misaligned or out-of-range offsets, levels out of order, and a
    // category count that does not match the schema.
    type Edit = fn(&mut Manifest);
    let cases: [(Edit, &str); 4] = [
        (
            |m| m.overview.as_mut().unwrap().levels[1].offset += 4,
            "aligned",
        ),
        (
            |m| m.overview.as_mut().unwrap().counts[3].offset = 1 << 40,
            "outside the file",
        ),
        (
            |m| m.overview.as_mut().unwrap().levels[0].level = 9,
            "unexpected level",
        ),
        (
            |m| {
                let ov = m.overview.as_mut().unwrap();
                ov.categorical.push(pointillist::store::OverviewColumn {
                    name: "nope".into(),
                    categories: 3,
                })
            },
            "does not match the schema",
        ),
    ];
    for (edit, want) in cases {
        let good = std::fs::read(ds.join(MANIFEST_FILE)).unwrap();
        edit_manifest(&ds, edit);
        let e = open_err(&ds);
        assert!(e.contains(want), "{want}: {e}");
        std::fs::write(ds.join(MANIFEST_FILE), good).unwrap();
    }
    // Missing file.
    std::fs::remove_file(&path).unwrap();
    let e = open_err(&ds);
    assert!(e.contains("overview.bin"), "{e}");
}

// ---------------------------------------------------------------------------
// Wide inputs: linear in columns, bounded above
// ---------------------------------------------------------------------------

/// A CSV of `cols` columns (lon, lat, then c2..) and `rows` rows.
fn wide_csv(path: &Path, cols: usize, rows: usize) {
    let mut t = String::from("lon,lat");
    for c in 2..cols {
        t.push_str(&format!(",c{c}"));
    }
    t.push('\n');
    for r in 0..rows {
        t.push_str(&format!("{}.5,{}.25", r % 90, r % 45));
        for c in 2..cols {
            t.push_str(&format!(",{}", (r * c) % 7));
        }
        t.push('\n');
    }
    std::fs::write(path, t).unwrap();
}

#[test]
fn a_csv_of_five_thousand_columns_packs() {
    // Once 9 s and 3.3 GB: a linear name lookup per column, and 64k-row
    // buffers per column.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.csv");
    wide_csv(&input, 5_002, 20);
    let out = dir.path().join("wide");
    let (report, ds) = pack_ok(&options(&[&input], &out));
    assert_eq!(report.rows, 20);
    assert_eq!(ds.manifest.columns.len(), 5_000);
    let c = ds.manifest.column("c4999").expect("last column kept");
    assert_eq!(c.stats.count, 20);
}

#[test]
fn inputs_over_the_column_limit_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("too-wide.csv");
    wide_csv(&input, ingest::MAX_COLUMNS + 1, 3);
    let out = dir.path().join("too-wide");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, &format!("at most {}", ingest::MAX_COLUMNS));
    assert!(ingest::batch_rows_for(5_000) < ingest::BATCH_ROWS);
    assert_eq!(ingest::batch_rows_for(10), ingest::BATCH_ROWS);
}
