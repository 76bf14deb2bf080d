//! Files as the real tools write them (tests/fixtures/written-by/, made by
//! scripts/make_fixtures.py with geopandas, GDAL through pyogrio, DuckDB,
//! Polars, pandas and pyarrow): each packs, with every row's position to
//! 1e-7° and its attributes as written. Damaged ones fail cleanly.

use pointillist::pack::{PackOptions, pack};
use pointillist::query::points::{Attr, attributes};
use pointillist::store::Dataset;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const N: i64 = 24;
const RADIOS: [&str; 4] = ["GSM", "LTE", "NR", "UMTS"];

/// Row `i` as scripts/make_fixtures.py writes it: (lon, lat, name, range,
/// radio, created in epoch µs).
/// `britain`: the points in Great Britain (for the British National Grid).
fn expected(i: i64, britain: bool) -> (f64, f64, String, f64, &'static str, i64) {
    let created = (1_577_836_800 + i * 86_400 + i) * 1_000_000;
    let (lon, lat) = if britain {
        (-6.0 + i as f64 * 0.35, 50.0 + i as f64 * 0.3)
    } else {
        (-170.0 + i as f64 * 14.25, -60.0 + i as f64 * 5.0)
    };
    (
        lon + 0.123456,
        lat + 0.654321,
        format!("site-{i}"),
        i as f64 * 12.5,
        RADIOS[(i % 4) as usize],
        created,
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/written-by")
        .join(name)
}

/// Every row of `ds` by id: its position and attributes.
/// Rows by id: position (lon, lat) and attributes by name.
type Rows = BTreeMap<i64, ((f64, f64), BTreeMap<String, Attr>)>;

fn rows(ds: &Dataset) -> Rows {
    let mut out = BTreeMap::new();
    for (p, part) in ds.partitions.iter().enumerate() {
        for r in 0..part.batch.num_rows() {
            let (mx, my) = pointillist::geo::dequantize(part.qx()[r], part.qy()[r]);
            let pos = pointillist::geo::meters_to_lnglat(mx, my);
            let attrs: BTreeMap<String, Attr> = attributes(ds, p, r).into_iter().collect();
            let id = match attrs.get("id") {
                Some(Attr::Int(i)) => *i,
                Some(Attr::UInt(u)) => *u as i64,
                Some(Attr::Number(x)) => *x as i64,
                other => panic!("id is {other:?}"),
            };
            assert!(out.insert(id, (pos, attrs)).is_none(), "id {id} twice");
        }
    }
    out
}

fn pack_fixture(name: &str, tol: f64) -> Rows {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    pack(&PackOptions::new(
        vec![fixture(name).display().to_string()],
        &out,
    ))
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let ds = Dataset::open(&out).unwrap();
    let got = rows(&ds);
    assert_eq!(got.len() as i64, N, "{name}: rows");
    for (id, ((lon, lat), attrs)) in &got {
        let (elon, elat, ename, erange, eradio, ecreated) = expected(*id, name.contains("bng"));
        assert!(
            (lon - elon).abs() < tol && (lat - elat).abs() < tol,
            "{name}: row {id} at ({lon}, {lat}), written at ({elon}, {elat})"
        );
        assert_eq!(attrs.get("name"), Some(&Attr::Text(ename)), "{name}: name");
        assert_eq!(
            attrs.get("radio"),
            Some(&Attr::Text(eradio.into())),
            "{name}: radio"
        );
        match attrs.get("range") {
            Some(Attr::Number(x)) => assert_eq!(*x, erange, "{name}: range"),
            Some(Attr::Int(x)) => assert_eq!(*x as f64, erange, "{name}: range"),
            other => panic!("{name}: range is {other:?}"),
        }
        // Formats with a time type keep it; text formats keep the text.
        match attrs.get("created") {
            Some(Attr::Time(us)) => assert_eq!(*us, ecreated, "{name}: created"),
            Some(Attr::Text(t)) => assert!(t.starts_with("2020"), "{name}: created {t}"),
            other => panic!("{name}: created is {other:?}"),
        }
    }
    got
}

/// Files in WGS 84 keep positions to the quantization (about 1e-7°).
const EXACT: f64 = 1e-7;

#[test]
fn geopandas_geoparquet() {
    pack_fixture("geopandas.parquet", EXACT);
}

#[test]
fn geopandas_geoparquet_in_utm_is_reprojected() {
    // Written through PROJ, read back through proj4rs.
    pack_fixture("geopandas_utm32n.parquet", 1e-6);
}

#[test]
fn gdal_geopackage() {
    pack_fixture("gdal.gpkg", EXACT);
}

#[test]
fn gdal_geojson_and_geojsonseq() {
    pack_fixture("gdal.geojson", EXACT);
    pack_fixture("gdal.geojsonl", EXACT);
}

#[test]
fn gdal_flatgeobuf_in_wgs84_and_british_national_grid() {
    pack_fixture("gdal.fgb", EXACT);
    pack_fixture("gdal_bng.fgb", 1e-6);
}

#[test]
fn gdal_shapefile_plain_and_zipped() {
    pack_fixture("shp/gdal.shp", EXACT);
    pack_fixture("gdal_shp.zip", EXACT);
}

#[test]
fn duckdb_parquet_csv_gz_and_hive_partitions() {
    pack_fixture("duckdb.parquet", EXACT);
    pack_fixture("duckdb.csv.gz", EXACT);
    // radio comes back from the radio=… folders.
    pack_fixture("duckdb_hive", EXACT);
}

#[test]
fn polars_ipc_zstd_parquet_and_tsv() {
    pack_fixture("polars_zstd.arrow", EXACT);
    pack_fixture("polars.parquet", EXACT);
    pack_fixture("polars.tsv", EXACT);
}

#[test]
fn pandas_feather_lz4_and_csv_gz() {
    pack_fixture("pandas.feather", EXACT);
    pack_fixture("pandas.csv.gz", EXACT);
}

#[test]
fn pyarrow_stream_codecs_and_exact_types() {
    pack_fixture("pyarrow.arrows", EXACT);
    pack_fixture("pyarrow_gzip.parquet", EXACT);
    pack_fixture("pyarrow_brotli.parquet", EXACT);
    // uint64 beyond 2^53 and int64 come back exactly, as /points gives them.
    let got = pack_fixture("pyarrow_types.parquet", EXACT);
    for (id, (_, attrs)) in got {
        assert_eq!(
            attrs["big"],
            Attr::UInt(7_425_725_167_743_237_483 + id as u64)
        );
        assert_eq!(attrs["count"], Attr::Int(2495 + id));
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pointillist"))
        .args(args)
        .output()
        .unwrap()
}

/// A damaged input: non-zero exit, the message, nothing written.
fn refused(input: &Path, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let o = run(&[
        "pack",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{} packed", input.display());
    assert!(err.contains(needle), "{}: {err}", input.display());
    assert!(!out.exists(), "{}: output left behind", input.display());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary files left"
    );
}

#[test]
fn damaged_and_unusable_gis_files_fail_cleanly() {
    refused(&fixture("bad_lines.gpkg"), "has no point layer");
    refused(&fixture("bad_nodbf/gdal.shp"), "no .dbf");
    // A truncated FlatGeobuf and GeoPackage.
    let dir = tempfile::tempdir().unwrap();
    for name in ["gdal.fgb", "gdal.gpkg", "gdal.geojson"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let cut = dir.path().join(name);
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        let o = run(&[
            "pack",
            cut.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "truncated {name} packed");
        assert!(!dir.path().join("o").exists());
    }
}
