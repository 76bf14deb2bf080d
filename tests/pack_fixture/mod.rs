//! Shared fixtures of the pack and store tests: a sample table and its
//! expected packed form, writers for every input format, pack helpers and
//! the dataset checker.

// A prelude for three test files: each uses a part of it.
#![allow(dead_code, unused_imports)]

pub use arrow_array::cast::AsArray;
pub use arrow_array::types::{Int16Type, TimestampMicrosecondType};
pub use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, StructArray, TimestampMillisecondArray,
};
pub use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
pub use pointillist::geo;
pub use pointillist::ingest::{self, Crs, IngestOptions};
pub use pointillist::pack::{self, PackError, PackOptions, PackReport};
pub use pointillist::store::column::NumColumn;
pub use pointillist::store::{
    ColumnKind, DATA_FILE, Dataset, MANIFEST_FILE, Manifest, QX, QY, STATS_FILE,
};
pub use std::collections::{BTreeMap, BTreeSet, HashSet};
pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output};
pub use std::sync::Arc;

// ---------------------------------------------------------------------------
// A sample table and its expected packed form
// ---------------------------------------------------------------------------

/// An attribute value as the packed dataset should hold it.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Num(f64),
    Text(String),
    /// Microseconds since the epoch.
    Time(i64),
}

/// One input row: its quantized position (`None`: dropped for a bad
/// coordinate) and attribute values by column name.
pub type ExpectedRow = (Option<(u32, u32)>, BTreeMap<String, Val>);

/// What a pack of some input must produce.
pub struct Expect {
    /// Every input row, in input order.
    pub rows: Vec<ExpectedRow>,
    /// The unique id column.
    pub id: String,
    /// Kind of every attribute column.
    pub kinds: BTreeMap<String, ColumnKind>,
}

impl Expect {
    pub fn kept(&self) -> usize {
        self.rows.iter().filter(|r| r.0.is_some()).count()
    }

    pub fn dropped(&self) -> u64 {
        (self.rows.len() - self.kept()) as u64
    }

    /// Only the rows `keep` says yes to.
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Expect {
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

pub const RADIOS: [&str; 4] = ["GSM", "LTE", "NR", "UMTS"];
pub const CENTRES: [(f64, f64); 4] = [(13.4, 52.5), (-74.0, 40.7), (139.7, 35.7), (-46.6, -23.5)];

/// Rows of a synthetic point table with one column of each interesting kind.
#[derive(Clone)]
pub struct Table {
    pub id: Vec<i64>,
    pub lon: Vec<f64>,
    pub lat: Vec<f64>,
    pub value: Vec<Option<f64>>,
    pub count: Vec<i32>,
    pub radio: Vec<Option<&'static str>>,
    pub name: Vec<String>,
    /// Unix seconds.
    pub when: Vec<i64>,
    pub flag: Vec<bool>,
}

/// A small deterministic generator (xorshift64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f64 {
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
    pub fn new(n: usize, seed: u64) -> Table {
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

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn slice(&self, range: std::ops::Range<usize>) -> Table {
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

    pub fn expect(&self) -> Expect {
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
    pub fn attr_columns(&self) -> Vec<(Field, ArrayRef)> {
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
    pub fn batch(&self, coords: Coords) -> RecordBatch {
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
    pub fn csv(&self) -> String {
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
pub enum Coords {
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

pub fn quantize_lnglat(lon: f64, lat: f64) -> (u32, u32) {
    let (x, y) = geo::lnglat_to_meters(lon, lat);
    geo::quantize(x, y)
}

pub fn wkb_point(x: f64, y: f64) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend(1u32.to_le_bytes());
    v.extend(x.to_le_bytes());
    v.extend(y.to_le_bytes());
    v
}

pub fn geoparquet_meta(encoding: &str, crs: Option<serde_json::Value>) -> String {
    let mut col = serde_json::json!({"encoding": encoding, "geometry_types": ["Point"]});
    if let Some(crs) = crs {
        col["crs"] = crs;
    }
    serde_json::json!({"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": col}})
        .to_string()
}

pub fn epsg(code: u32) -> serde_json::Value {
    serde_json::json!({"type": "ProjectedCRS", "name": format!("EPSG {code}"), "id": {"authority": "EPSG", "code": code}})
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

pub fn write_parquet(path: &Path, batch: &RecordBatch, row_group_rows: usize, geo: Option<String>) {
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

pub fn write_ipc(path: &Path, batch: &RecordBatch) {
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

pub fn options(inputs: &[&Path], out: &Path) -> PackOptions {
    let mut o = PackOptions::new(
        inputs.iter().map(|p| p.display().to_string()).collect(),
        out,
    );
    o.partition_rows = 200;
    o
}

pub fn pack_ok(o: &PackOptions) -> (PackReport, Dataset) {
    let report = pack::pack(o).unwrap_or_else(|e| panic!("pack failed: {e}"));
    let ds = Dataset::open(&o.out).unwrap_or_else(|e| panic!("open failed: {e}"));
    (report, ds)
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pointillist"));
    c.env("RUST_LOG", "warn");
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run pointillist")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The pack failed with a message containing `needle`, and left neither a
/// dataset nor a temporary directory behind.
pub fn assert_failed_cleanly(o: &Output, out: &Path, needle: &str) {
    let msg = text(o);
    assert!(!o.status.success(), "expected failure, got: {msg}");
    assert!(
        msg.contains(needle),
        "message should mention {needle:?}: {msg}"
    );
    assert_nothing_written(out);
}

pub fn temp_dirs(out: &Path) -> Vec<PathBuf> {
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

pub fn assert_nothing_written(out: &Path) {
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
pub fn cell(ds: &Dataset, p: usize, name: &str, r: usize) -> Val {
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
pub fn check_dataset(ds: &Dataset, want: &Expect) -> Vec<i64> {
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

pub fn as_f64(v: &Val) -> Option<f64> {
    match v {
        Val::Num(x) => Some(*x),
        Val::Time(t) => Some(*t as f64),
        _ => None,
    }
}

pub fn min_max(vals: &[Val]) -> (Option<f64>, Option<f64>) {
    let nums: Vec<f64> = vals.iter().filter_map(as_f64).collect();
    if nums.is_empty() {
        return (None, None);
    }
    (
        Some(nums.iter().copied().fold(f64::INFINITY, f64::min)),
        Some(nums.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    )
}

/// The committed OpenCelliD sample.
pub fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/opencellid_sample.csv")
}
