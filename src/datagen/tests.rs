//! End-to-end tests of the generators: small files written to a temp dir
//! and read back with the Parquet reader.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType, UInt32Type,
};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

fn opts(kind: DemoKind, rows: u64, seed: u64, dir: &Path, name: &str) -> GenOptions {
    GenOptions {
        kind,
        rows,
        seed,
        out: dir.join(name),
        row_group_rows: 8192,
        columns: None,
    }
}

#[test]
fn columns_keep_the_rows_and_drop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let full = opts(DemoKind::Ais, 20_000, 3, dir.path(), "full.parquet");
    let mut lean = opts(DemoKind::Ais, 20_000, 3, dir.path(), "lean.parquet");
    lean.columns = Some(vec!["sog".into(), "mmsi".into()]);
    generate(&full).unwrap();
    generate(&lean).unwrap();
    let (schema, _, lean_b) = read_back(&lean.out);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["lon", "lat", "mmsi", "sog"]);
    let (_, _, full_b) = read_back(&full.out);
    for c in ["lon", "lat"] {
        assert_eq!(f64_col(&lean_b, c), f64_col(&full_b, c), "{c}");
    }
    let mut bad = opts(DemoKind::Ais, 10, 3, dir.path(), "bad.parquet");
    bad.columns = Some(vec!["speed".into()]);
    let e = generate(&bad).unwrap_err().to_string();
    assert!(e.contains("\"speed\"") && e.contains("sog"), "{e}");
    assert!(!bad.out.exists());
}

/// Reads a whole file back: (schema, row-group count, batches).
fn read_back(path: &Path) -> (SchemaRef, usize, Vec<RecordBatch>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let batches = builder
        .with_batch_size(65_536)
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    (schema, groups, batches)
}

fn f64_col(batches: &[RecordBatch], name: &str) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// Dictionary column decoded to strings.
fn dict_col(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let d = b
            .column_by_name(name)
            .unwrap()
            .as_dictionary::<arrow_array::types::Int8Type>();
        let values = d.values().as_string::<i32>();
        out.extend(
            d.keys()
                .values()
                .iter()
                .map(|&k| values.value(k as usize).to_string()),
        );
    }
    out
}

fn no_temp_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-"))
}

#[test]
fn kind_parses() {
    assert_eq!("towers".parse::<DemoKind>().unwrap(), DemoKind::Towers);
    assert_eq!(" AIS ".parse::<DemoKind>().unwrap(), DemoKind::Ais);
    assert!(matches!(
        "ships".parse::<DemoKind>(),
        Err(GenError::UnknownKind(_))
    ));
    assert_eq!(DemoKind::Ais.to_string(), "ais");
}

#[test]
fn towers_schema_rows_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(DemoKind::Towers, 20_000, 1, dir.path(), "t.parquet");
    let report = generate(&o).unwrap();
    assert_eq!(report.rows, 20_000);
    assert_eq!(report.row_groups, 3);
    assert!(report.bytes > 0 && report.seconds >= 0.0);
    let (schema, groups, batches) = read_back(&o.out);
    assert_eq!(groups, 3);
    assert_eq!(schema.fields(), towers::schema().fields());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 20_000);
    assert!(no_temp_files(dir.path()));
}

#[test]
fn ais_schema_rows_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(DemoKind::Ais, 10_000, 1, dir.path(), "a.parquet");
    generate(&o).unwrap();
    let (schema, groups, batches) = read_back(&o.out);
    assert_eq!(groups, 2);
    assert_eq!(schema.fields(), ais::schema().fields());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10_000);
}

#[test]
fn zero_rows_gives_valid_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [DemoKind::Towers, DemoKind::Ais] {
        let o = opts(kind, 0, 1, dir.path(), &format!("{kind}.parquet"));
        let r = generate(&o).unwrap();
        assert_eq!((r.rows, r.row_groups), (0, 0));
        let (schema, groups, batches) = read_back(&o.out);
        assert_eq!(groups, 0);
        assert_eq!(
            schema.fields().len(),
            if kind == DemoKind::Towers { 11 } else { 8 }
        );
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }
}

#[test]
fn bad_options_are_errors_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(DemoKind::Towers, 10, 1, dir.path(), "x.parquet");
    o.row_group_rows = 0;
    assert!(matches!(generate(&o), Err(GenError::InvalidOptions(_))));
    o.row_group_rows = MAX_ROW_GROUP_ROWS + 1;
    assert!(matches!(generate(&o), Err(GenError::InvalidOptions(_))));
    let o = opts(
        DemoKind::Towers,
        10,
        1,
        &dir.path().join("missing"),
        "x.parquet",
    );
    assert!(matches!(generate(&o), Err(GenError::Io { .. })));
    let o = GenOptions::new(DemoKind::Ais, 10, "/");
    assert!(generate(&o).is_err());
    assert!(no_temp_files(dir.path()));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn deterministic_per_seed_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [DemoKind::Towers, DemoKind::Ais] {
        let a = opts(kind, 12_000, 42, dir.path(), "a.parquet");
        let b = opts(kind, 12_000, 42, dir.path(), "b.parquet");
        let c = opts(kind, 12_000, 43, dir.path(), "c.parquet");
        generate(&a).unwrap();
        generate(&b).unwrap();
        generate(&c).unwrap();
        let (fa, fb, fc) = (
            std::fs::read(&a.out).unwrap(),
            std::fs::read(&b.out).unwrap(),
            std::fs::read(&c.out).unwrap(),
        );
        assert_eq!(fa, fb, "{kind}: same seed must give the same bytes");
        let (_, _, ba) = read_back(&a.out);
        let (_, _, bc) = read_back(&c.out);
        assert_ne!(
            f64_col(&ba, "lon"),
            f64_col(&bc, "lon"),
            "{kind}: seeds must differ"
        );
        // Regenerating over an existing file replaces it atomically.
        generate(&c).unwrap();
        assert_eq!(std::fs::read(&c.out).unwrap(), fc);
    }
}

#[test]
fn output_independent_of_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [DemoKind::Towers, DemoKind::Ais] {
        let mut one = opts(kind, 30_000, 7, dir.path(), "one.parquet");
        one.row_group_rows = 3_000; // 10 chunks: several windows even with 1 thread
        let mut many = one.clone();
        many.out = dir.path().join("many.parquet");
        let pool1 = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let pool4 = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        pool1.install(|| generate(&one)).unwrap();
        pool4.install(|| generate(&many)).unwrap();
        assert_eq!(
            std::fs::read(&one.out).unwrap(),
            std::fs::read(&many.out).unwrap(),
            "{kind}"
        );
    }
}

fn assert_valid_coords(lon: &[f64], lat: &[f64]) {
    assert_eq!(lon.len(), lat.len());
    for (&x, &y) in lon.iter().zip(lat) {
        assert!(x.is_finite() && (-180.0..=180.0).contains(&x), "lon {x}");
        assert!(y.is_finite() && (-90.0..=90.0).contains(&y), "lat {y}");
    }
}

#[test]
fn towers_look_like_towers() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(DemoKind::Towers, 50_000, 3, dir.path(), "t.parquet");
    generate(&o).unwrap();
    let (_, _, batches) = read_back(&o.out);
    let (lon, lat) = (f64_col(&batches, "lon"), f64_col(&batches, "lat"));
    assert_valid_coords(&lon, &lat);

    // Most points are within 1 degree of a real city: bucket cities into
    // a 1-degree grid and look at the 3x3 neighbourhood of each point.
    let cities = cities::cities().unwrap();
    let mut grid = vec![Vec::new(); 360 * 180];
    let cell = |lat: f64, lon: f64| {
        (
            (lat + 90.0).floor().clamp(0.0, 179.0) as usize,
            (lon + 180.0).floor().clamp(0.0, 359.0) as usize,
        )
    };
    for c in cities {
        let (r, k) = cell(c.lat, c.lon);
        grid[r * 360 + k].push((c.lat, c.lon));
    }
    let near = lon
        .iter()
        .zip(&lat)
        .filter(|&(&x, &y)| {
            let (r, k) = cell(y, x);
            (r.saturating_sub(1)..=(r + 1).min(179)).any(|rr| {
                (k.saturating_sub(1)..=(k + 1).min(359)).any(|kk| {
                    grid[rr * 360 + kk]
                        .iter()
                        .any(|&(cy, cx)| (cy - y).abs() <= 1.0 && (cx - x).abs() <= 1.0)
                })
            })
        })
        .count();
    assert!(
        near as f64 > 0.95 * lon.len() as f64,
        "only {near} of {} near a city",
        lon.len()
    );

    // Spread over the world, not a few blobs: many distinct 5-degree cells,
    // every inhabited continent represented.
    let mut cells = std::collections::HashSet::new();
    for (&x, &y) in lon.iter().zip(&lat) {
        cells.insert(((x / 5.0).floor() as i32, (y / 5.0).floor() as i32));
    }
    assert!(cells.len() > 300, "{} cells", cells.len());
    let in_box = |x0: f64, x1: f64, y0: f64, y1: f64| {
        lon.iter()
            .zip(&lat)
            .filter(|&(&x, &y)| x >= x0 && x < x1 && y >= y0 && y < y1)
            .count()
    };
    for (name, b) in [
        ("Europe", (-10.0, 40.0, 35.0, 70.0)),
        ("North America", (-130.0, -60.0, 15.0, 60.0)),
        ("South America", (-82.0, -34.0, -56.0, 12.0)),
        ("Africa", (-18.0, 52.0, -35.0, 35.0)),
        ("Asia", (60.0, 150.0, 0.0, 55.0)),
        ("Oceania", (110.0, 180.0, -48.0, -10.0)),
    ] {
        assert!(in_box(b.0, b.1, b.2, b.3) > 100, "too few towers in {name}");
    }

    // Radio mix: all five, LTE most common, plausible dates.
    let radio = dict_col(&batches, "radio");
    let created: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("created")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec()
        })
        .collect();
    let count = |r: &str| radio.iter().filter(|x| *x == r).count();
    for r in towers::RADIOS {
        assert!(count(r) > 100, "{r}: {}", count(r));
    }
    assert!(towers::RADIOS.iter().all(|r| count("LTE") >= count(r)));
    for (r, &t) in radio.iter().zip(&created) {
        assert!((micros_at(2003, 1, 1)..micros_at(2025, 1, 1)).contains(&t));
        match r.as_str() {
            "NR" => assert!(t >= micros_at(2019, 1, 1)),
            "LTE" => assert!(t >= micros_at(2010, 1, 1)),
            _ => {}
        }
    }

    // Other columns in range.
    let b = &batches[0];
    let range = b
        .column_by_name("range")
        .unwrap()
        .as_primitive::<Int32Type>();
    assert!(range.values().iter().all(|&r| (100..=50_000).contains(&r)));
    let signal = b
        .column_by_name("averageSignal")
        .unwrap()
        .as_primitive::<Int32Type>();
    let zeros = signal.values().iter().filter(|&&s| s == 0).count();
    assert!(zeros > signal.len() / 2 && zeros < signal.len());
    assert!(
        signal
            .values()
            .iter()
            .all(|&s| s == 0 || (-121..=-51).contains(&s))
    );
    let cell = b
        .column_by_name("cell")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert!(cell.values().iter().all(|&c| c >= 0));
    assert_eq!(b.column_by_name("mcc").unwrap().null_count(), 0);
}

#[test]
fn ais_looks_like_shipping() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(DemoKind::Ais, 40_000, 5, dir.path(), "a.parquet");
    generate(&o).unwrap();
    let (_, _, batches) = read_back(&o.out);
    let (lon, lat) = (f64_col(&batches, "lon"), f64_col(&batches, "lat"));
    assert_valid_coords(&lon, &lat);

    let ts: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("timestamp")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec()
        })
        .collect();
    let (min, max) = (ts.iter().min().unwrap(), ts.iter().max().unwrap());
    assert!(*min >= ais::WINDOW_START_US && *max < ais::WINDOW_START_US + ais::WINDOW_US);
    assert!(
        max - min > ais::WINDOW_US * 9 / 10,
        "timestamps should span the window"
    );

    let types = dict_col(&batches, "vessel_type");
    for t in ais::VESSEL_TYPES {
        assert!(types.iter().any(|x| x == t), "no {t}");
    }
    let mut mmsi_type = std::collections::HashMap::new();
    for b in &batches {
        let m = b
            .column_by_name("mmsi")
            .unwrap()
            .as_primitive::<UInt32Type>();
        let sog = b
            .column_by_name("sog")
            .unwrap()
            .as_primitive::<Float32Type>();
        let cog = b
            .column_by_name("cog")
            .unwrap()
            .as_primitive::<Float32Type>();
        let len = b
            .column_by_name("length")
            .unwrap()
            .as_primitive::<Float32Type>();
        assert!(
            m.values()
                .iter()
                .all(|&m| (100_000_000..1_000_000_000).contains(&m))
        );
        assert!(sog.values().iter().all(|&s| (0.0..40.0).contains(&s)));
        assert!(cog.values().iter().all(|&c| (0.0..360.0).contains(&c)));
        assert!(len.values().iter().all(|&l| (5.0..=400.0).contains(&l)));
    }
    // One type per vessel.
    for (m, t) in batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("mmsi")
                .unwrap()
                .as_primitive::<UInt32Type>()
                .values()
                .to_vec()
        })
        .zip(&types)
    {
        assert_eq!(mmsi_type.entry(m).or_insert(t), &t);
    }

    // Densest near ports: a good share of reports within 50 km of a port,
    // but plenty at sea too.
    let model = ais::AisModel::new(5, 40_000).unwrap();
    let near = lon
        .iter()
        .zip(&lat)
        .filter(|&(&x, &y)| ais::km_to_nearest_port(&model, y, x) < 50.0)
        .count();
    let frac = near as f64 / lon.len() as f64;
    assert!((0.25..0.9).contains(&frac), "near-port share {frac}");
}

/// Manual hook for timing and eyeballing output (no CLI in this module):
///
/// ```sh
/// GEN_KIND=towers GEN_ROWS=40000000 GEN_OUT=/tmp/towers.parquet \
///   cargo test --release --lib datagen::tests::manual_generate -- --ignored --nocapture
/// ```
#[test]
#[ignore]
fn manual_generate() {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let o = GenOptions {
        kind: var("GEN_KIND", "towers").parse().unwrap(),
        rows: var("GEN_ROWS", "1000000").parse().unwrap(),
        seed: var("GEN_SEED", "0").parse().unwrap(),
        out: var("GEN_OUT", "/tmp/pointillist-gen.parquet").into(),
        row_group_rows: var("GEN_RG", &DEFAULT_ROW_GROUP_ROWS.to_string())
            .parse()
            .unwrap(),
        columns: None,
    };
    let r = generate(&o).unwrap();
    println!(
        "{} rows of {} in {:.2} s ({:.1} M rows/s), {} row groups, {:.1} MB",
        r.rows,
        o.kind,
        r.seconds,
        r.rows as f64 / r.seconds / 1e6,
        r.row_groups,
        r.bytes as f64 / 1e6
    );
}
