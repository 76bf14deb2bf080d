//! Zoom colour scales: exact pass versus bounded sample, cost and accuracy.
//!
//! ```sh
//! cargo bench --bench scales -- bench-data/towers-40000000.pack [SAMPLE_ROWS [NUMERIC [CATEGORICAL]]]
//! cargo bench --bench scales -- bench-data/ais-20000000.pack 262144 sog vessel_type
//! ```
//!
//! For each zoom and aggregation, with a new range filter each time (as a
//! brush sends): the exact scale's time (one pass over every row that
//! passes), the sampled scale's time (median of 5), and how far the sampled
//! scale's colours are from the exact ones over the zoom's real pixels
//! (`render::scale_accuracy`). Every case has a range filter, which the
//! overview cannot answer, so every exact scale reads rows, as a new filter
//! makes it; the overview stays, as the server has it (the estimate of a
//! sample that sees one count consults its unfiltered distributions).

use pointillist::query::{Agg, Filter};
use pointillist::raster::{sample, zoom};
use pointillist::render::{Style, scale_accuracy};
use pointillist::store::{ColumnKind, Dataset};
use std::time::Instant;

fn ms<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64() * 1e3)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scales benchmark: run it with `cargo bench --bench scales -- DIR`");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "bench-data/towers-40000000.pack".into());
    let budget: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(sample::DEFAULT_SAMPLE_ROWS);
    let ds = match Dataset::open(&dir) {
        Ok(ds) => ds,
        Err(e) => {
            eprintln!("cannot open {dir}: {e} (pack one with scripts/bench_pack.sh)");
            std::process::exit(1);
        }
    };
    let m = &ds.manifest;
    println!(
        "{dir}: {} rows, sample budget {budget} rows, {} threads",
        m.rows,
        rayon::current_num_threads()
    );
    println!(
        "{:<22} {:>3} {:>10} {:>10} {:>8} {:>9} {:>8} {:>8} {:>7} {:>5}",
        "agg",
        "z",
        "exact ms",
        "sample ms",
        "speedup",
        "pixels",
        "differ",
        ">16 lvl",
        "mean",
        "max"
    );
    // A numeric column filters (and is averaged), a categorical one splits:
    // the ones named, else the first of each kind (`range` and `radio` for
    // towers).
    let named = |i: usize, kind: ColumnKind| {
        m.columns
            .iter()
            .find(|c| c.kind == kind && args.get(i).is_none_or(|n| *n == c.name))
    };
    let numeric = named(2, ColumnKind::Numeric).expect("a numeric column");
    let (lo0, hi0) = (
        numeric.stats.min.unwrap_or(0.0),
        numeric.stats.max.unwrap_or(1.0),
    );
    let categorical = named(3, ColumnKind::Categorical);
    let mut aggs = vec!["count".to_string(), format!("mean:{}", numeric.name)];
    if let Some(c) = categorical {
        aggs.push(format!("count_cat:{}", c.name));
    }
    let style = Style::default();
    let mut k = 0u32;
    for agg in &aggs {
        let agg = Agg::parse(agg).expect("agg");
        for z in [5u8, 6, 8, 10, 12, 14] {
            // A new range each time: no cache of any kind can answer it.
            k += 1;
            // A new range each time (a tenth of the column's span, moving):
            // no cache of any kind can answer it.
            let w = (hi0 - lo0) / 10.0;
            let lo = lo0 + w * (0.1 + 0.037 * k as f64);
            let f = vec![
                Filter::parse(&format!("{}:{lo}..{}", numeric.name, lo + 4.0 * w), m)
                    .expect("filter"),
            ];
            let (exact, t_exact) = ms(|| zoom::zoom_stats(&ds, z, 256, &agg, &f, None));
            let exact = exact.expect("exact");
            let mut times = Vec::new();
            let mut est = None;
            for _ in 0..5 {
                let (e, t) = ms(|| sample::zoom_stats(&ds, z, 256, &agg, &f, budget, None));
                times.push(t);
                est = e.expect("sample");
            }
            times.sort_by(f64::total_cmp);
            let t_sample = times[2];
            let Some(est) = est else {
                println!(
                    "{:<22} {z:>3} {t_exact:>10.1} {:>10} (pixels too large to sample: exact)",
                    agg.to_text(),
                    "-"
                );
                continue;
            };
            match scale_accuracy(&exact, &est, &agg, &style).expect("accuracy") {
                Some(a) => println!(
                    "{:<22} {z:>3} {t_exact:>10.1} {t_sample:>10.2} {:>7.0}x {:>9} {:>7.1}% {:>7.2}% {:>7.2} {:>5}",
                    agg.to_text(),
                    t_exact / t_sample,
                    a.pixels,
                    a.differ * 100.0,
                    a.beyond_16 * 100.0,
                    a.mean_levels,
                    a.max_levels
                ),
                None => println!("{:<22} {z:>3} (empty)", agg.to_text()),
            }
        }
    }
}
