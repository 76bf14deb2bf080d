//! `pointillist pack`, end to end: every input format round-trips through
//! `pack` and [`Dataset::open`] with every row present exactly once (each
//! row carries a unique id), attributes intact, rows in Hilbert order,
//! partition bounds, key ranges, zone maps and manifest statistics right;
//! several inputs, coordinate detection and flags, and wide inputs.

mod pack_fixture;

use pack_fixture::*;
use std::sync::Arc;

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

/// Points on a lon/lat grid over UTM zone 32N (6°E–12°E), with their
/// coordinates in EPSG:32632 (forward through proj4rs).
fn utm32_points() -> Vec<(i64, f64, f64, f64, f64)> {
    let src = proj4rs::Proj::from_epsg_code(4326).unwrap();
    let dst = proj4rs::Proj::from_epsg_code(32632).unwrap();
    let mut out = Vec::new();
    for i in 0..60 {
        let (lon, lat) = (6.0 + (i % 12) as f64 * 0.5, 1.0 + (i / 12) as f64 * 14.0);
        let mut p = (lon.to_radians(), lat.to_radians(), 0.0);
        proj4rs::transform::transform(&src, &dst, &mut p).unwrap();
        out.push((i as i64, lon, lat, p.0, p.1));
    }
    out
}

/// Every row's position, by its `id`, within 1e-7° of where it was.
fn assert_positions(ds: &pointillist::store::Dataset, want: &[(i64, f64, f64, f64, f64)]) {
    use arrow_array::cast::AsArray;
    let mut seen = 0;
    for part in &ds.partitions {
        let ids = part.batch.column_by_name("id").unwrap();
        let ids = arrow_cast::cast(ids, &arrow_schema::DataType::Int64).unwrap();
        let ids = ids.as_primitive::<arrow_array::types::Int64Type>();
        for r in 0..part.batch.num_rows() {
            let (_, lon, lat, _, _) = want[ids.value(r) as usize];
            let (mx, my) = pointillist::geo::dequantize(part.qx()[r], part.qy()[r]);
            let (glon, glat) = pointillist::geo::meters_to_lnglat(mx, my);
            assert!(
                (glon - lon).abs() < 1e-7 && (glat - lat).abs() < 1e-7,
                "row {}: ({glon}, {glat}) vs ({lon}, {lat})",
                ids.value(r)
            );
            seen += 1;
        }
    }
    assert_eq!(seen, want.len());
}

#[test]
fn projected_crs_inputs_are_reprojected() {
    let dir = tempfile::tempdir().unwrap();
    let pts = utm32_points();
    // GeoParquet in UTM 32N: the CRS comes from the `geo` metadata.
    let geometry: Vec<Vec<u8>> = pts.iter().map(|p| wkb_point(p.3, p.4)).collect();
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("geometry", arrow_schema::DataType::Binary, false),
    ]));
    let batch = arrow_array::RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow_array::Int64Array::from_iter_values(
                pts.iter().map(|p| p.0),
            )),
            Arc::new(arrow_array::BinaryArray::from_iter_values(geometry.iter())),
        ],
    )
    .unwrap();
    let input = dir.path().join("utm.parquet");
    write_parquet(
        &input,
        &batch,
        1000,
        Some(geoparquet_meta("WKB", Some(epsg(32632)))),
    );
    let (_, ds) = pack_ok(&options(&[&input], &dir.path().join("geo")));
    assert_positions(&ds, &pts);

    // A CSV of eastings and northings with --crs.
    let csv = dir.path().join("utm.csv");
    let mut body = String::from("id,easting,northing\n");
    for p in &pts {
        body.push_str(&format!("{},{:.6},{:.6}\n", p.0, p.3, p.4));
    }
    std::fs::write(&csv, body).unwrap();
    let out = dir.path().join("csv");
    let o = run(&[
        "pack",
        s(&csv),
        "--out",
        s(&out),
        "--x",
        "easting",
        "--y",
        "northing",
        "--crs",
        "EPSG:32632",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_positions(&pointillist::store::Dataset::open(&out).unwrap(), &pts);

    // An unknown EPSG code fails cleanly, naming it.
    let out = dir.path().join("unknown");
    let o = run(&[
        "pack",
        s(&csv),
        "--out",
        s(&out),
        "--x",
        "easting",
        "--y",
        "northing",
        "--crs",
        "EPSG:1",
    ]);
    assert_failed_cleanly(&o, &out, "unknown or unsupported CRS EPSG:1");
    // So does a GeoParquet CRS with no EPSG code.
    let odd = dir.path().join("odd.parquet");
    let custom = serde_json::json!({"type": "ProjectedCRS", "name": "My local grid"});
    write_parquet(
        &odd,
        &batch,
        1000,
        Some(geoparquet_meta("WKB", Some(custom))),
    );
    let out = dir.path().join("odd");
    let o = run(&["pack", s(&odd), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "name its EPSG code with --crs");
    // ... and --crs names it.
    let o = run(&["pack", s(&odd), "--out", s(&out), "--crs", "32632"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_positions(&pointillist::store::Dataset::open(&out).unwrap(), &pts);
}

#[test]
fn wkt_and_hex_wkb_text_columns_are_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    // QGIS' and GDAL's CSV export: a WKT column; PostGIS': hex EWKB.
    let wkt = dir.path().join("wkt.csv");
    std::fs::write(
        &wkt,
        "id;WKT;name\n0;POINT (2.35 48.85);paris\n1;POINT Z (-0.1276 51.5072 12);london\n2;LINESTRING (0 0, 1 1);line\n3;POINT EMPTY;empty\n",
    )
    .unwrap();
    let (report, ds) = pack_ok(&options(&[&wkt], &dir.path().join("wkt")));
    assert_eq!(
        (report.rows, report.dropped),
        (2, 2),
        "non-points are dropped and counted"
    );
    let want = [(0, 2.35, 48.85, 0.0, 0.0), (1, -0.1276, 51.5072, 0.0, 0.0)];
    assert_positions(&ds, &want);
    assert!(
        ds.manifest.column("WKT").is_none(),
        "the geometry is not an attribute"
    );

    let hex = dir.path().join("hex.csv");
    std::fs::write(
        &hex,
        "id,shape\n0,0101000020E6100000CDCCCCCCCCCC0240CDCCCCCCCC6C4840\n1,0101000000DA1B7C613255C0BFFE43FAEDEBC04940\n",
    )
    .unwrap();
    let out = dir.path().join("hex");
    let o = run(&["pack", s(&hex), "--out", s(&out), "--geometry", "shape"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_positions(&pointillist::store::Dataset::open(&out).unwrap(), &want);
}

/// `pack - …` with `input` on standard input.
fn pack_stdin(input: &[u8], args: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = bin()
        .args(["pack", "-"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    // A pack that fails early stops reading: the write may then fail.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn standard_input_and_pipes_are_read_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    // More rows than the schema sample, gzip-compressed, on standard input.
    let mut csv = String::from("id,lon,lat,radio\n");
    let want: Vec<(i64, f64, f64, f64, f64)> = (0..30_000)
        .map(|i| {
            (
                i,
                -170.0 + (i % 3400) as f64 * 0.1,
                -80.0 + (i / 3400) as f64 * 0.5,
                0.0,
                0.0,
            )
        })
        .collect();
    for (i, lon, lat, _, _) in &want {
        csv.push_str(&format!(
            "{i},{lon},{lat},{}\n",
            ["GSM", "LTE"][(*i % 2) as usize]
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let out = dir.path().join("stdin");
    let o = pack_stdin(&gz, &["--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let ds = pointillist::store::Dataset::open(&out).unwrap();
    assert_positions(&ds, &want);
    assert_eq!(
        ds.manifest.column("radio").unwrap().categories,
        ["GSM", "LTE"]
    );

    // A named pipe, written while the pack reads it.
    let fifo = dir.path().join("towers.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let (fifo, csv) = (fifo.clone(), csv.clone());
        std::thread::spawn(move || std::fs::write(fifo, csv).unwrap())
    };
    let out = dir.path().join("fifo");
    let o = run(&["pack", s(&fifo), "--out", s(&out)]);
    writer.join().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_positions(&pointillist::store::Dataset::open(&out).unwrap(), &want);

    // An Arrow IPC stream and a GeoJSON sequence, told by their first bytes.
    let t = Table::new(300, 11);
    let ipc = dir.path().join("t.arrows");
    let batch = t.batch(Coords::LonLat("lon", "lat"));
    let mut w = arrow_ipc::writer::StreamWriter::try_new(
        std::fs::File::create(&ipc).unwrap(),
        &batch.schema(),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let out = dir.path().join("ipc");
    let o = pack_stdin(&std::fs::read(&ipc).unwrap(), &["--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    check_dataset(
        &pointillist::store::Dataset::open(&out).unwrap(),
        &t.expect(),
    );
    let seq = b"{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[2.35,48.85]},\"properties\":{\"id\":0}}\n";
    let out = dir.path().join("seq");
    let o = pack_stdin(seq, &["--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_positions(
        &pointillist::store::Dataset::open(&out).unwrap(),
        &[(0, 2.35, 48.85, 0.0, 0.0)],
    );

    // Parquet needs its footer: refused with a message, nothing written.
    let pq = dir.path().join("p.parquet");
    write_parquet(&pq, &batch, 100, None);
    let out = dir.path().join("pq");
    let o = pack_stdin(&std::fs::read(&pq).unwrap(), &["--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "Parquet needs a file it can seek in");
    let o = pack_stdin(b"GP", &["--out", s(&out), "--format", "gpkg"]);
    assert_failed_cleanly(&o, &out, "GeoPackage needs a file it can seek in");
    let o = pack_stdin(b"a,b\n", &["--out", s(&out), "--format", "xls"]);
    assert_failed_cleanly(&o, &out, "unknown --format");
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

#[test]
fn a_geoparquet_bbox_covering_column_is_not_an_attribute() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StructArray};
    use arrow_schema::{DataType, Field};
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(500, 12);
    let b = t.batch(Coords::Wkb);
    let n = b.num_rows();
    let side = |v: f64| Arc::new(Float64Array::from(vec![v; n])) as ArrayRef;
    let bbox: ArrayRef = Arc::new(StructArray::from(
        ["xmin", "ymin", "xmax", "ymax"]
            .into_iter()
            .zip([-180.0, -85.0, 180.0, 85.0])
            .map(|(k, v)| (Arc::new(Field::new(k, DataType::Float64, false)), side(v)))
            .collect::<Vec<_>>(),
    ));
    let mut fields: Vec<_> = b.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(
        "bbox",
        bbox.data_type().clone(),
        false,
    )));
    let mut cols = b.columns().to_vec();
    cols.push(bbox);
    let batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap();
    let mut geo: serde_json::Value = serde_json::from_str(&geoparquet_meta("WKB", None)).unwrap();
    geo["columns"]["geometry"]["covering"] = serde_json::json!({"bbox": {
        "xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
        "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"]}});
    let input = dir.path().join("covering.parquet");
    write_parquet(&input, &batch, 200, Some(geo.to_string()));
    let (_, ds) = pack_ok(&options(&[&input], &dir.path().join("ds")));
    assert!(
        ds.manifest.column("bbox").is_none(),
        "the covering column was kept"
    );
    check_dataset(&ds, &t.expect());
}

#[test]
fn compressed_and_delimited_text_round_trips() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(900, 8);
    let csv = t.csv();
    assert!(
        !csv.contains([';', '\t', '|']),
        "the fixture's text has no other delimiter"
    );
    let gzip = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let bzip = |text: &str| {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("cell_towers.csv.gz", gzip(&csv)),
        (
            "points.csv.zst",
            zstd::encode_all(csv.as_bytes(), 3).unwrap(),
        ),
        ("points.csv.bz2", bzip(&csv)),
        ("points.tsv", csv.replace(',', "\t").into_bytes()),
        ("semicolons.csv.gz", gzip(&csv.replace(',', ";"))),
        ("pipes.txt", csv.replace(',', "|").into_bytes()),
        // Compressed, whatever the name says.
        ("really-gzip.csv", gzip(&csv)),
    ];
    for (name, bytes) in files {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).unwrap();
        let (report, ds) = pack_ok(&options(&[&input], &dir.path().join(format!("ds-{name}"))));
        assert_eq!(report.bad_rows, 0, "{name}");
        check_dataset(&ds, &t.expect());
    }
    // A truncated gzip is an error, and leaves nothing behind.
    let whole = gzip(&csv);
    let cut = dir.path().join("cut.csv.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let out = dir.path().join("cut");
    let r = run(&["pack", s(&cut), "--out", s(&out)]);
    assert_failed_cleanly(&r, &out, "cut.csv.gz");
}

#[test]
fn decimal_commas_and_a_delimiter_flag() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(600, 13);
    let csv = t.csv();
    // European style: `;` between fields, decimal commas.
    let euro = dir.path().join("europe.csv");
    std::fs::write(&euro, csv.replace(',', ";").replace('.', ",")).unwrap();
    let out = dir.path().join("euro");
    let r = run(&["pack", s(&euro), "--out", s(&out), "--decimal-comma"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    check_dataset(&Dataset::open(&out).unwrap(), &t.expect());
    // A header that fools the detection: two commas and two pipes.
    let pipes = dir.path().join("pipes.txt");
    let text = csv.replace(',', "|").replacen("flag\n", "a,b,c\n", 1);
    std::fs::write(&pipes, text).unwrap();
    let out = dir.path().join("pipes");
    let r = run(&["pack", s(&pipes), "--out", s(&out), "--delimiter", "|"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let ds = Dataset::open(&out).unwrap();
    assert!(ds.manifest.column("a,b,c").is_some());
    let r = run(&[
        "pack",
        s(&pipes),
        "--out",
        s(&dir.path().join("x")),
        "--delimiter",
        "ab",
    ]);
    assert!(!r.status.success());
}

#[test]
fn arrow_ipc_streams_and_compressed_ipc_round_trip() {
    use arrow_ipc::CompressionType;
    use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(700, 9);
    let batch = t.batch(Coords::LonLat("lon", "lat"));
    let opts =
        |c: Option<CompressionType>| IpcWriteOptions::default().try_with_compression(c).unwrap();
    let cases = [
        ("points.arrows", false, None),
        ("stream-named.arrow", false, None),
        (
            "pandas-default.feather",
            true,
            Some(CompressionType::LZ4_FRAME),
        ),
        ("polars-zstd.arrow", true, Some(CompressionType::ZSTD)),
        ("zstd.arrows", false, Some(CompressionType::ZSTD)),
    ];
    for (name, file_format, compression) in cases {
        let input = dir.path().join(name);
        let f = std::fs::File::create(&input).unwrap();
        if file_format {
            let mut w =
                FileWriter::try_new_with_options(f, &batch.schema(), opts(compression)).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
        } else {
            let mut w =
                StreamWriter::try_new_with_options(f, &batch.schema(), opts(compression)).unwrap();
            w.write(&batch.slice(0, 300)).unwrap();
            w.write(&batch.slice(300, 400)).unwrap();
            w.finish().unwrap();
        }
        let (_, ds) = pack_ok(&options(&[&input], &dir.path().join(format!("ds-{name}"))));
        check_dataset(&ds, &t.expect());
    }
}

#[test]
fn parquet_with_every_codec_round_trips() {
    use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(800, 10);
    let batch = t.batch(Coords::LonLat("lon", "lat"));
    for (name, codec) in [
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
        ("lz4", Compression::LZ4),
        ("lz4_raw", Compression::LZ4_RAW),
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("none", Compression::UNCOMPRESSED),
    ] {
        let input = dir.path().join(format!("{name}.parquet"));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(codec)
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&input).unwrap(),
            batch.schema(),
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let (_, ds) = pack_ok(&options(&[&input], &dir.path().join(format!("ds-{name}"))));
        check_dataset(&ds, &t.expect());
    }
}

// ---------------------------------------------------------------------------
// OpenCelliD
// ---------------------------------------------------------------------------

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
    assert_failed_cleanly(
        &r,
        &out,
        "no .parquet, .arrow/.feather/.arrows, .csv/.tsv (optionally compressed), .geojson, .shp, .fgb or .gpkg files found",
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = run(&["pack", s(&p0), s(&empty), "--out", s(&out)]);
    assert_failed_cleanly(
        &r,
        &out,
        "no .parquet, .arrow/.feather/.arrows, .csv/.tsv (optionally compressed), .geojson, .shp, .fgb or .gpkg files found",
    );
    // A named file of an unknown type.
    let r = run(&["pack", s(&parts.join("notes.md")), "--out", s(&out)]);
    assert_failed_cleanly(&r, &out, "unknown file type");
}

#[test]
fn hive_partition_folders_become_columns() {
    // DuckDB's `COPY … (PARTITION_BY (year, radio))` layout, nested, with
    // the writer's bookkeeping files beside it.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("towers");
    let mut lte = 0;
    for (year, radio, rows) in [
        (2023, "GSM", 3),
        (2023, "LTE", 4),
        (2024, "LTE", 2),
        (2024, "NR", 1),
    ] {
        let d = root
            .join(format!("year={year}"))
            .join(format!("radio={radio}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut csv = String::from("lon,lat,range\n");
        for i in 0..rows {
            csv.push_str(&format!("{}.5,{}.25,{}\n", i, year - 2000, i * 10));
        }
        std::fs::write(d.join("part-0.csv"), csv).unwrap();
        if radio == "LTE" {
            lte += rows;
        }
    }
    std::fs::write(root.join("_SUCCESS"), "").unwrap();
    std::fs::create_dir_all(root.join(".tmp")).unwrap();
    std::fs::write(root.join(".tmp/junk.csv"), "not,a\ncsv").unwrap();
    let (report, ds) = pack_ok(&options(&[&root], &dir.path().join("ds")));
    assert_eq!(report.rows, 10);
    let m = &ds.manifest;
    let radio = m.column("radio").expect("radio column from the folders");
    assert_eq!(radio.categories, ["GSM", "LTE", "NR"]);
    let year = m.column("year").expect("year column from the folders");
    assert_eq!(
        (year.stats.min, year.stats.max),
        (Some(2023.0), Some(2024.0))
    );
    let f = pointillist::query::Filter::parse("radio:in:LTE", m).unwrap();
    let n = pointillist::query::histogram::count(&ds, None, &[f], &[], None).unwrap();
    assert_eq!(n, lte as u64);
    // A year's rows all carry that year.
    let f = pointillist::query::Filter::parse("year:2024..2024", m).unwrap();
    let n = pointillist::query::histogram::count(&ds, None, &[f], &[], None).unwrap();
    assert_eq!(n, 3);

    // Files under different partition keys are refused, with nothing written.
    let mixed = dir.path().join("mixed");
    for sub in ["radio=LTE", "mcc=262"] {
        std::fs::create_dir_all(mixed.join(sub)).unwrap();
        std::fs::write(mixed.join(sub).join("p.csv"), "lon,lat\n1,2\n").unwrap();
    }
    let out = dir.path().join("mixed-ds");
    let r = run(&["pack", s(&mixed), "--out", s(&out)]);
    assert_failed_cleanly(&r, &out, "Hive partition folders");
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
        "EPSG:x",
    ]);
    assert_failed_cleanly(&o, &out, "expected EPSG:NNNN");
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
