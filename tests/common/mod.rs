//! Shared fixtures: small deterministic point datasets packed into temp dirs.
#![allow(dead_code)]

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pointillist::pack::{PackOptions, pack};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Write a towers-like Parquet file of `n` rows (clustered around a few
/// cities), deterministic for a seed.
pub fn write_towers(path: &Path, n: usize, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let centers = [(-74.0, 40.7), (2.35, 48.85), (139.7, 35.7), (-0.12, 51.5)];
    let radios = ["GSM", "LTE", "NR", "UMTS"];
    let (mut lon, mut lat, mut radio, mut range, mut created, mut id) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let c = centers[i % centers.len()];
        lon.push(c.0 + (rnd() - 0.5) * 1.0);
        lat.push(c.1 + (rnd() - 0.5) * 1.0);
        radio.push(radios[(rnd() * 4.0) as usize % 4]);
        range.push((rnd() * 5000.0).round());
        created.push(1_300_000_000_000_000i64 + (rnd() * 3e14) as i64);
        id.push(i as i64);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("lon", DataType::Float64, false),
        Field::new("lat", DataType::Float64, false),
        Field::new("radio", DataType::Utf8, false),
        Field::new("range", DataType::Float64, false),
        Field::new(
            "created",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("id", DataType::Int64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(lon)),
        Arc::new(Float64Array::from(lat)),
        Arc::new(StringArray::from(radio)),
        Arc::new(Float64Array::from(range)),
        Arc::new(TimestampMicrosecondArray::from(created)),
        Arc::new(Int64Array::from(id)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Pack `n` towers into `dir/name`; returns the dataset path.
pub fn packed_towers(dir: &Path, name: &str, n: usize, seed: u64) -> PathBuf {
    let input = dir.join(format!("{name}-{seed}.parquet"));
    write_towers(&input, n, seed);
    let out = dir.join(name);
    let mut o = PackOptions::new(vec![input.display().to_string()], &out);
    o.partition_rows = 1000;
    o.force = true;
    pack(&o).unwrap();
    std::fs::remove_file(input).unwrap();
    out
}
