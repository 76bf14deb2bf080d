//! Open benchmark: time and heap of `Dataset::open` on a packed dataset.
//!
//! ```sh
//! cargo bench --bench open -- bench-data/towers-40000000.pack
//! ```
//!
//! Heap is measured with dhat's allocator: bytes live once the dataset is
//! open (what an open dataset keeps) and the peak during the open (what
//! opening it costs), both counted from just before the call. Time is the
//! median of 15 opens, the manifest and footers warm in the page cache,
//! taken before the heap profiler starts (it slows every allocation).

use pointillist::store::Dataset;
use std::time::Instant;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`; the
    // dataset it needs is built by scripts/bench_pack.sh, not by CI.
    if !std::env::args().any(|a| a == "--bench") {
        println!("open benchmark: run it with `cargo bench --bench open -- DIR`");
        return;
    }
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "bench-data/towers-40000000.pack".into());
    // Warm the page cache and the allocator.
    drop(Dataset::open(&dir).unwrap_or_else(|e| {
        eprintln!("cannot open {dir}: {e} (pack one with scripts/bench_pack.sh)");
        std::process::exit(2);
    }));
    // Timed before any profiler runs: without one, dhat's allocator only
    // forwards to the system allocator.
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            let d = Dataset::open(&dir).expect("opened once already");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            drop(d);
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let ds = Dataset::open(&dir).expect("opened once already");
    let after = dhat::HeapStats::get();
    let live = after.curr_bytes.saturating_sub(before.curr_bytes);
    // Peak bytes since start minus what was live before approximates the
    // open's own peak: nothing else allocates in between.
    let peak = after.max_bytes.saturating_sub(before.curr_bytes);
    println!(
        "dataset {dir}: {} rows, {} partitions, {} columns",
        ds.rows(),
        ds.partitions.len(),
        ds.manifest.columns.len()
    );
    println!(
        "open: median {:.2} ms (min {:.2}, max {:.2}) over {} opens",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    println!(
        "heap: {:.2} MB live after open, {:.2} MB peak during open, {} allocations",
        live as f64 / 1e6,
        peak as f64 / 1e6,
        after.total_blocks - before.total_blocks
    );
}
