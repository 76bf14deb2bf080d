//! Engine benchmark: aggregation of 256² tiles on a packed dataset versus the
//! memory-bandwidth floor for the bytes the z0 count must read.
//!
//! ```sh
//! cargo bench --bench tiles -- bench-data/towers40m [kernel|cells]
//! ```
//!
//! The floor is a parallel sum over the very `_qx`/`_qy` arrays the z0 count
//! reads (same mapping, same page cache), so the ratio isolates the
//! kernel's overhead above streaming the bytes. Prints medians of 9 runs.

use pointillist::geo::TileId;
use pointillist::query::{Agg, Filter, View};
use pointillist::raster::aggregate;
use pointillist::store::Dataset;
use rayon::prelude::*;
use std::time::Instant;

// The server's allocator: passes that build vectors of cells allocate as
// they do there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn tile_of(lon: f64, lat: f64, z: u32) -> TileId {
    let (mx, my) = pointillist::geo::lnglat_to_meters(lon, lat);
    let (qx, qy) = pointillist::geo::quantize(mx, my);
    let s = 32 - z;
    TileId::new(z, (qx as u64) >> s, (qy as u64) >> s).expect("valid tile")
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`; the
    // benchmark needs a 40M-row dataset that CI does not build, so it only
    // measures under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("tiles benchmark: run it with `cargo bench --bench tiles -- DIR`");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "bench-data/towers40m".into());
    // An optional second argument keeps one section: `kernel`, `cells` or
    // `hist`.
    let only = args.get(1).map(String::as_str);
    let t = Instant::now();
    // Query cells take their boundaries from the overview: they get a
    // dataset that keeps it.
    let with_overview = Dataset::open(&dir).ok();
    let ds = match Dataset::open(&dir) {
        // The kernel is measured against the floor, so tiles are aggregated
        // from the rows, not answered from the pack-time overview.
        Ok(mut ds) => {
            ds.overview = None;
            ds
        }
        Err(e) => {
            eprintln!("cannot open {dir}: {e} (pack one with scripts/bench_pack.sh)");
            std::process::exit(2);
        }
    };
    println!(
        "dataset {dir}: {} rows, {} partitions, opened in {:.2} ms, {} threads",
        ds.rows(),
        ds.partitions.len(),
        t.elapsed().as_secs_f64() * 1e3,
        rayon::current_num_threads()
    );
    if only.is_none_or(|o| o == "kernel") {
        kernel(&ds);
    }
    if let Some(ds) = &with_overview {
        if only.is_none_or(|o| o == "cells") {
            query_cells(ds);
        }
        if only.is_none_or(|o| o == "hist") {
            histograms(ds);
        }
    }
}

/// The floor for reading `cols` whole: their value buffers (a
/// dictionary's codes) summed as words, every byte read once.
fn floor_of(ds: &Dataset, cols: &[&str]) -> f64 {
    median_ms(|| {
        let s: u64 = ds
            .partitions
            .par_iter()
            .map(|p| {
                cols.iter()
                    .map(|c| {
                        let data = p.column(c).expect("column").to_data();
                        data.buffers()[0]
                            .as_slice()
                            .chunks_exact(8)
                            .fold(0u64, |a, w| {
                                a.wrapping_add(u64::from_le_bytes(w.try_into().expect("8")))
                            })
                    })
                    .fold(0u64, u64::wrapping_add)
            })
            .reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(s);
    })
}

/// The crossfilter histograms of `scripts/bench_engines.sh` (a `radio` and
/// a 64-bin `created` histogram, each under two filters, a new `range`
/// bound each run, no cached bitsets) against the floor for the three
/// columns each reads.
fn histograms(ds: &Dataset) {
    use pointillist::query::histogram::histogram;
    let (Some(_), Some(_), Some(_)) = (
        ds.manifest.column("range"),
        ds.manifest.column("radio"),
        ds.manifest.column("created"),
    ) else {
        return;
    };
    let floor = floor_of(ds, &["range", "radio", "created"]);
    println!(
        "{:<26} {:>10} {:>10} {:>7}",
        "histogram, 2 filters", "ms", "floor", "ratio"
    );
    let mut bound = 2000u32;
    let parse = |f: &str| Filter::parse(f, &ds.manifest).expect("filter");
    for (name, column, bins, other) in [
        ("radio", "radio", 0, "created:2012-01-01..2020-12-31"),
        ("created, 64 bins", "created", 64, "radio:in:LTE,NR"),
    ] {
        let ms = median_ms(|| {
            bound += 1;
            let f = [parse(&format!("range:0..{bound}")), parse(other)];
            std::hint::black_box(
                histogram(ds, column, bins, None, &f, &[], None).expect("histogram"),
            );
        });
        println!("{name:<26} {ms:>10.2} {floor:>10.2} {:>6.2}x", ms / floor);
    }
}

/// The row kernel against the floor of the coordinates it reads.
fn kernel(ds: &Dataset) {
    let bytes = ds.rows() as f64 * 8.0;
    let floor = median_ms(|| {
        let s: u64 = ds
            .partitions
            .par_iter()
            .flat_map(|p| p.qx().par_chunks(1 << 16).zip(p.qy().par_chunks(1 << 16)))
            .map(|(x, y)| {
                x.iter().map(|&v| v as u64).sum::<u64>() + y.iter().map(|&v| v as u64).sum::<u64>()
            })
            .sum();
        std::hint::black_box(s);
    });
    println!(
        "floor: sum of _qx,_qy ({:.0} MB): {floor:.2} ms ({:.1} GB/s)",
        bytes / 1e6,
        bytes / floor / 1e6
    );
    let z0 = View::tile(TileId::new(0, 0, 0).expect("z0"), 256).expect("view");
    let z0_ms = median_ms(|| {
        std::hint::black_box(aggregate(ds, &z0, &Agg::Count, &[], None).expect("agg"));
    });
    println!(
        "z0 count aggregate: {z0_ms:.2} ms = {:.2}x the floor",
        z0_ms / floor
    );
    let filter: Vec<Filter> = if ds.manifest.column("radio").is_some() {
        vec![Filter::In {
            column: "radio".into(),
            values: vec!["LTE".into(), "NR".into()],
        }]
    } else {
        Vec::new()
    };
    let cat = ds
        .manifest
        .columns
        .iter()
        .find(|c| c.kind == pointillist::store::ColumnKind::Categorical)
        .map(|c| Agg::CountCat(c.name.clone()));
    println!(
        "{:<20} {:>10} {:>10} {:>14} {:>10}",
        "view (aggregate ms)", "rows", "count", "count+filter", "count_cat"
    );
    for (name, tile) in [
        ("z0 world", TileId::new(0, 0, 0).expect("z0")),
        ("z4 western Europe", TileId::new(4, 7, 5).expect("z4")),
        ("z8 New York", tile_of(-73.99, 40.73, 8)),
        ("z12 New York", tile_of(-73.99, 40.73, 12)),
    ] {
        let v = View::tile(tile, 256).expect("view");
        let rows = aggregate(ds, &v, &Agg::Count, &[], None)
            .expect("agg")
            .rows_scanned;
        let run = |agg: &Agg, f: &[Filter]| {
            median_ms(|| {
                std::hint::black_box(aggregate(ds, &v, agg, f, None).expect("agg"));
            })
        };
        let c = run(&Agg::Count, &[]);
        let cf = run(&Agg::Count, &filter);
        let cc = cat.as_ref().map_or(f64::NAN, |a| run(a, &[]));
        println!(
            "{name:<20} {rows:>10} {c:>10.3} {cf:>14.3} {cc:>10.3}   tile {}/{}/{}",
            tile.z, tile.x, tile.y
        );
    }
}

/// Query cells (one pass over every row, as a new filter's first low-zoom
/// tile makes them) with a new `range` filter each run, against the floor
/// for the columns each pass reads.
fn query_cells(ds: &Dataset) {
    use pointillist::raster::cells::QueryCells;
    let (Some(_), Some(_)) = (ds.manifest.column("range"), ds.manifest.column("radio")) else {
        return;
    };
    println!(
        "{:<26} {:>10} {:>10} {:>7}",
        "query cells, new filter", "ms", "floor", "ratio"
    );
    let mut bound = 100u32;
    for (name, agg, cols) in [
        ("count, no filter", Agg::Count, vec![]),
        ("count, range filter", Agg::Count, vec!["range"]),
        (
            "count_cat:radio, range",
            Agg::CountCat("radio".into()),
            vec!["range", "radio"],
        ),
        (
            "mean:range, range",
            Agg::Mean("range".into()),
            vec!["range"],
        ),
    ] {
        if std::env::var("CASE").is_ok_and(|c| !name.starts_with(&c)) {
            continue;
        }
        let floor = floor_of(ds, &cols);
        let ms = median_ms(|| {
            bound += 1;
            let f = Filter::Range {
                column: "range".into(),
                min: f64::from(bound),
                max: 3000.0,
            };
            let f = if cols.is_empty() { vec![] } else { vec![f] };
            std::hint::black_box(QueryCells::compute(ds, &agg, &f, None).expect("cells"));
        });
        println!("{name:<26} {ms:>10.2} {floor:>10.2} {:>6.2}x", ms / floor);
    }
}
