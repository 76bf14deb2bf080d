//! `pack`: read inputs, project to Web Mercator, sort along the Hilbert curve
//! (in memory, or by external merge sort when the input exceeds the memory
//! limit), cut partitions with zone maps and write the dataset atomically.

mod labels;
pub mod memory;
mod overview;
mod stats;
mod writer;

use crate::ingest::{self, IngestError, IngestOptions, Plan, PointBatch};
use crate::store::{MANIFEST_FILE, Manifest, QX, QY};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
pub use writer::PartitionWriter;

/// Default rows per partition.
pub const DEFAULT_PARTITION_ROWS: usize = 262_144;
/// Default memory budget for buffered rows before spilling sorted runs:
/// 40M towers (56 bytes a row with their sort rows) pack in memory, and a
/// pack's peak stays under 3 GiB (about a fifth above the buffered bytes).
pub const DEFAULT_MEMORY_LIMIT: u64 = 2304 << 20;
/// Default bound on the per-cell statistics, as a share of the data.
pub const DEFAULT_STATS_SHARE: f64 = 0.25;
/// Name of the Hilbert key column in spilled runs.
const KEY: &str = "_h";
/// Name of the input-ordinal column in spilled runs (breaks key ties).
const ORD: &str = "_ord";

/// Why a pack failed. Nothing is left at the output path in any case.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Reading the inputs failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The output exists and `--force` was not given.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// Every input row was dropped.
    #[error(
        "no rows with valid coordinates ({dropped} dropped for NaN or out-of-range coordinates, {bad} unparseable)"
    )]
    NoRows {
        /// Rows dropped.
        dropped: u64,
        /// Rows that did not parse.
        bad: u64,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Arrow failed to build or write data.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A bad option.
    #[error("{0}")]
    Options(String),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Options of `pointillist pack`.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Input files, directories or globs.
    pub inputs: Vec<String>,
    /// Output dataset directory.
    pub out: PathBuf,
    /// How inputs are read.
    pub ingest: IngestOptions,
    /// Rows per partition.
    pub partition_rows: usize,
    /// Bytes of buffered rows before a sorted run is spilled to disk.
    pub memory_limit: u64,
    /// Replace an existing output.
    pub force: bool,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
    /// Finest overview level (zoom + log2 tile size) to precompute; 0 for
    /// no overview. See [`crate::store::overview`].
    pub overview_level: u32,
    /// Per-cell statistics of numeric columns ([`crate::store::stats`]) may
    /// take up to this share of the data's bytes; columns (in schema order)
    /// that would not fit are left out. 0 for none.
    pub stats_share: f64,
}

impl PackOptions {
    /// Options with defaults for everything but inputs and output.
    pub fn new(inputs: Vec<String>, out: impl Into<PathBuf>) -> Self {
        PackOptions {
            inputs,
            out: out.into(),
            ingest: IngestOptions::default(),
            partition_rows: DEFAULT_PARTITION_ROWS,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            force: false,
            progress: false,
            overview_level: crate::store::overview::DEFAULT_LEVEL,
            stats_share: DEFAULT_STATS_SHARE,
        }
    }
}

/// What a pack did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PackReport {
    /// Rows written.
    pub rows: u64,
    /// Rows dropped for NaN / out-of-range coordinates.
    pub dropped: u64,
    /// CSV rows skipped because they did not parse.
    pub bad_rows: u64,
    /// Partitions written.
    pub partitions: usize,
    /// Sorted runs spilled to disk (0 when the input fit in memory).
    pub spilled_runs: usize,
    /// Wall time.
    pub seconds: f64,
}

/// The temporary directory a pack writes into, next to the output. Unless
/// the pack commits, dropping it deletes the directory and any parent
/// directories the pack created, so a failed pack leaves nothing behind.
struct Staging {
    path: PathBuf,
    /// Directories created for the output's parent, deepest first.
    created: Vec<PathBuf>,
    committed: bool,
}

impl Staging {
    /// Create `parent/{prefix}{pid}-{nanos}`, and `parent` itself if needed.
    fn create(parent: &Path, prefix: &str) -> Result<Staging, PackError> {
        let mut created = Vec::new();
        let mut p = parent.to_path_buf();
        while !p.as_os_str().is_empty() && !p.exists() {
            created.push(p.clone());
            match p.parent() {
                Some(q) => p = q.to_path_buf(),
                None => break,
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut stage = Staging {
            path: parent.join(format!("{prefix}{}-{nanos}", std::process::id())),
            created,
            committed: false,
        };
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        if let Err(e) = std::fs::create_dir(&stage.path) {
            // Nothing to delete but the parents.
            let path = std::mem::take(&mut stage.path);
            return Err(io(&path)(e));
        }
        Ok(stage)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        for d in &self.created {
            // Only empty directories: another process may have used them since.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Whether process `pid` is running. Only Linux can tell (through /proc);
/// elsewhere every process counts as running, so nothing is cleaned up.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Remove temporary directories (and set-aside old datasets) left by packs
/// of the same output that were killed: their owner process no longer exists.
fn clean_stale(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !process_alive(pid) {
                tracing::info!(path = %e.path().display(), "removing stale temporary pack directory");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Whether `dir` may be replaced by `--force`: an existing dataset (it has
/// a manifest) or an empty directory. Anything else is refused, so a typo
/// in `--out` cannot delete an unrelated directory.
fn replaceable(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file()
        || std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// One buffered row in the sort order: its Hilbert key, then the batch
/// and the row within the batch. Tuples compare field by field, so with
/// batches numbered in input order, ties on the key keep input order.
pub(crate) type SortRow = (u64, u32, u32);

/// Bytes a buffered row costs beyond its columns: its [`SortRow`].
const SORT_ROW_BYTES: u64 = std::mem::size_of::<SortRow>() as u64;

/// Rows buffered in memory before a sort.
#[derive(Default)]
struct Buffer {
    /// The rows' attributes; their coordinates follow from their keys.
    batches: Vec<RecordBatch>,
    /// Every buffered row's key and place, filled as batches arrive so no
    /// per-batch key vectors wait beside it; batch numbers are arrival order
    /// until [`Buffer::into_input_order`].
    order: Vec<SortRow>,
    /// Input ordinal of each batch's first row.
    ordinals: Vec<u64>,
    bytes: u64,
    rows: u64,
}

impl Buffer {
    /// An empty buffer with room for `rows` sort rows reserved (address
    /// space only: pages are touched as rows arrive).
    fn with_capacity(rows: usize) -> Self {
        Buffer {
            order: Vec::with_capacity(rows),
            ..Buffer::default()
        }
    }

    fn push(&mut self, batch: RecordBatch, keys: &[u64], ordinal: u64) {
        let n = keys.len() as u64;
        self.bytes += batch.get_array_memory_size() as u64 + SORT_ROW_BYTES * n;
        self.rows += n;
        let slot = self.batches.len() as u32;
        self.order
            .extend(keys.iter().enumerate().map(|(r, &k)| (k, slot, r as u32)));
        self.batches.push(batch);
        self.ordinals.push(ordinal);
    }

    /// Recount the buffered bytes (after batches changed form).
    fn recount(&mut self) {
        self.bytes = self
            .batches
            .iter()
            .map(|b| b.get_array_memory_size() as u64)
            .sum::<u64>()
            + SORT_ROW_BYTES * self.rows;
    }

    /// Put the batches in input order. Readers deliver batches in whatever
    /// order the threads finish them; numbering them by ordinal makes the
    /// row order below depend on the inputs only.
    fn into_input_order(mut self) -> Self {
        let mut by_ordinal: Vec<u32> = (0..self.batches.len() as u32).collect();
        by_ordinal.sort_unstable_by_key(|&b| self.ordinals[b as usize]);
        if by_ordinal.iter().enumerate().all(|(i, &b)| i as u32 == b) {
            return self;
        }
        let mut rank = vec![0u32; by_ordinal.len()];
        for (new, &old) in by_ordinal.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        let mut batches: Vec<Option<RecordBatch>> = std::mem::take(&mut self.batches)
            .into_iter()
            .map(Some)
            .collect();
        self.batches = by_ordinal
            .iter()
            .map(|&b| batches[b as usize].take().expect("each batch once"))
            .collect();
        self.ordinals = by_ordinal
            .iter()
            .map(|&b| self.ordinals[b as usize])
            .collect();
        self.order
            .par_iter_mut()
            .for_each(|o| o.1 = rank[o.1 as usize]);
        self
    }

    /// Sort the rows along the curve, in place. With the batches in input
    /// order, ties on the key are broken by input position, the same
    /// tie-break as the merge of spilled runs.
    fn sort(&mut self) {
        debug_assert!(self.ordinals.is_sorted());
        self.order.par_sort_unstable();
    }
}

/// Pack inputs into a dataset directory.
///
/// The dataset is written to a temporary directory next to `out` and renamed
/// into place at the end, so `out` holds either the old state or the complete
/// new dataset; a failed or killed pack leaves no dataset at `out`, and a
/// killed pack's temporary directory is removed by the next pack of `out`.
pub fn pack(opts: &PackOptions) -> Result<PackReport, PackError> {
    let start = Instant::now();
    if opts.partition_rows == 0 {
        return Err(PackError::Options(
            "--partition-rows must be at least 1".into(),
        ));
    }
    let out = &opts.out;
    check_out(out, opts.force)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| PackError::Options(format!("bad output path {}", out.display())))?;
    let files = ingest::expand_inputs(&opts.inputs)?;
    let plan = ingest::plan(&files, &opts.ingest)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.tmp-");
    clean_stale(&parent, &prefix);
    let mut stage = Staging::create(&parent, &prefix)?;
    tracing::info!(files = files.len(), units = plan.units.len(), coords = ?plan.coords, "packing");

    let read = read_inputs(&plan, opts, &stage.path)?;
    let (dropped, bad) = (read.dropped, read.bad);
    let mut writer = PartitionWriter::create(
        &stage.path,
        &read.batch_schema(&plan.attrs),
        &read.categories(),
    )?;
    let spilled_runs = write_sorted(read, opts, &stage.path, &mut writer)?;
    let mut manifest = writer.finish(
        &name,
        dropped,
        files.iter().map(|f| f.display().to_string()).collect(),
    )?;
    if opts.overview_level > 0 {
        manifest = with_overview(&stage.path, manifest, opts.overview_level)?;
    }
    if opts.stats_share > 0.0 {
        manifest = with_stats(&stage.path, manifest, opts.stats_share)?;
    }
    let mpath = stage.path.join(MANIFEST_FILE);
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| PackError::Options(e.to_string()))?;
    write_synced(&mpath, &json)?;
    sync_dir(&stage.path);
    commit(&mut stage, out, opts.force)?;
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(
        rows = manifest.rows,
        partitions = manifest.partitions.len(),
        spilled_runs,
        seconds = format!("{seconds:.2}"),
        rows_per_s = format!("{:.0}", manifest.rows as f64 / seconds),
        "packed {}",
        out.display()
    );
    Ok(PackReport {
        rows: manifest.rows,
        dropped,
        bad_rows: bad,
        partitions: manifest.partitions.len(),
        spilled_runs,
        seconds,
    })
}

/// Every input row, read: the rows still in memory, the sorted runs
/// spilled to disk, and what was learnt on the way.
struct ReadInputs {
    buffer: Buffer,
    runs: Vec<PathBuf>,
    spilled_rows: u64,
    dropped: u64,
    bad: u64,
    /// What each string attribute turned out to be.
    strings: labels::StringColumns,
}

impl ReadInputs {
    /// Per attribute: the labels of a column that stayed coded (in code
    /// order), which the writer turns into a dictionary with sorted labels.
    fn categories(&self) -> Vec<Option<Vec<String>>> {
        self.strings
            .0
            .iter()
            .map(|s| {
                s.as_ref()
                    .and_then(|s| s.categories())
                    .map(<[String]>::to_vec)
            })
            .collect()
    }

    /// The schema of the batches the writer gathers: coded string columns
    /// hold `UInt16` codes.
    fn batch_schema(&self, attrs: &SchemaRef) -> SchemaRef {
        let mut fields = vec![
            Arc::new(Field::new(QX, DataType::UInt32, false)),
            Arc::new(Field::new(QY, DataType::UInt32, false)),
        ];
        for (f, s) in attrs.fields().iter().zip(&self.strings.0) {
            fields.push(match s.as_ref().and_then(|s| s.categories()) {
                Some(_) => Arc::new(Field::new(f.name(), DataType::UInt16, true)),
                None => f.clone(),
            });
        }
        Arc::new(Schema::new(fields))
    }
}

/// Phase 1: read the inputs in parallel, project and key every row, and
/// spill a sorted run whenever the buffer passes the memory limit.
fn read_inputs(plan: &Plan, opts: &PackOptions, stage: &Path) -> Result<ReadInputs, PackError> {
    let bar = progress_bar(opts.progress, plan.rows_hint, "reading");
    // Readers run on their own pool: the main thread's spill sorts use the
    // global pool, which must not be filled with readers blocked on the channel.
    let threads = rayon::current_num_threads();
    let readers = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("pack-reader-{i}"))
        .build()
        .map_err(|e| PackError::Options(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<PointBatch>(threads * 2);
    let mut read = ReadInputs {
        // Room for every row the inputs announce, up to about the most a run
        // holds (a sort row and at least a few bytes of attributes a row; a
        // run of rows with fewer grows past it), so the sort rows are not
        // copied as they grow.
        buffer: Buffer::with_capacity(
            plan.rows_hint
                .unwrap_or(0)
                .min(opts.memory_limit / (SORT_ROW_BYTES + 8)) as usize,
        ),
        runs: Vec::new(),
        spilled_rows: 0,
        dropped: 0,
        bad: 0,
        strings: labels::StringColumns::new(&plan.attrs),
    };
    let consumed: Result<(), PackError> = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            readers.install(|| {
                plan.units.par_iter().try_for_each(|u| {
                    let tx = tx.clone();
                    ingest::read_unit(plan, u, &mut |b| {
                        tx.send(b).map_err(|_| IngestError::Aborted)
                    })
                })
            })
        });
        let mut result = Ok(());
        for b in rx.iter() {
            bar.inc(b.keys.len() as u64 + b.dropped + b.bad_rows);
            if let Err(e) = read.take(b, opts.memory_limit, stage) {
                result = Err(e);
                break;
            }
        }
        drop(rx);
        match producer.join() {
            // A reader error explains an early stop better than `Aborted`.
            Ok(Err(IngestError::Aborted)) => result,
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(())) => result,
            Err(_) => Err(PackError::Options("an input reader panicked".into())),
        }
    });
    consumed?;
    bar.finish_and_clear();
    tracing::info!(
        rows = read.buffer.rows + read.spilled_rows,
        buffered_bytes = read.buffer.bytes,
        "read"
    );
    read.buffer = std::mem::take(&mut read.buffer).into_input_order();
    if read.buffer.rows + read.spilled_rows == 0 {
        return Err(PackError::NoRows {
            dropped: read.dropped,
            bad: read.bad,
        });
    }
    if read.dropped > 0 || read.bad > 0 {
        tracing::warn!(
            dropped = read.dropped,
            bad_rows = read.bad,
            "rows skipped: NaN/out-of-range coordinates (dropped) or unparseable (bad)"
        );
    }
    Ok(read)
}

impl ReadInputs {
    /// Take one batch; spill the buffer as a sorted run once it is full.
    fn take(&mut self, b: PointBatch, memory_limit: u64, stage: &Path) -> Result<(), PackError> {
        self.dropped += b.dropped;
        self.bad += b.bad_rows;
        let (batch, decoded) = self
            .strings
            .take(b.batch, &b.labels, &mut self.buffer.batches)?;
        if decoded {
            // Decoded columns grew the buffered batches.
            self.buffer.recount();
        }
        self.buffer.push(batch, &b.keys, b.ordinal);
        if self.buffer.bytes >= memory_limit {
            let path = stage.join(format!("run-{}.arrow", self.runs.len()));
            let mut full = std::mem::take(&mut self.buffer).into_input_order();
            spill(&mut full, &path)?;
            self.spilled_rows += full.rows;
            self.runs.push(path);
            // The next run reuses the sort rows' allocation.
            let mut order = full.order;
            order.clear();
            self.buffer = Buffer {
                order,
                ..Buffer::default()
            };
        }
        Ok(())
    }
}

/// Phase 2: write the rows in curve order, from memory when nothing was
/// spilled, else by merging the runs. Returns the number of runs.
fn write_sorted(
    read: ReadInputs,
    opts: &PackOptions,
    stage: &Path,
    writer: &mut PartitionWriter,
) -> Result<usize, PackError> {
    let decoders = read.strings.decoders();
    let ReadInputs {
        mut buffer,
        mut runs,
        spilled_rows,
        ..
    } = read;
    let bar = progress_bar(opts.progress, Some(buffer.rows + spilled_rows), "writing");
    let spilled_runs = if runs.is_empty() {
        let t = Instant::now();
        buffer.sort();
        tracing::info!(
            rows = buffer.rows,
            seconds = format!("{:.2}", t.elapsed().as_secs_f64()),
            "sorted in memory"
        );
        for chunk in buffer.order.chunks(opts.partition_rows) {
            writer.write(&buffer.batches, chunk)?;
            bar.inc(chunk.len() as u64);
        }
        0
    } else {
        if buffer.rows > 0 {
            let path = stage.join(format!("run-{}.arrow", runs.len()));
            spill(&mut buffer, &path)?;
            runs.push(path);
        }
        drop(buffer);
        merge(&runs, &decoders, opts.partition_rows, writer, &bar)?;
        for r in &runs {
            let _ = std::fs::remove_file(r);
        }
        runs.len()
    };
    bar.finish_and_clear();
    Ok(spilled_runs)
}

/// Phase 3: the overview, computed from the written data as a reader sees it.
fn with_overview(stage: &Path, manifest: Manifest, level: u32) -> Result<Manifest, PackError> {
    let t = Instant::now();
    let mut ds = crate::store::Dataset::open_with_manifest(stage, manifest)
        .map_err(|e| PackError::Options(format!("reopening the packed data: {e}")))?;
    // A billion rows are many times the memory pack may use.
    ds.release_scanned = true;
    let info = overview::build(&ds, stage, level).map_err(io(stage))?;
    tracing::info!(
        levels = info.levels.len(),
        cells = info.levels.last().map_or(0, |l| l.cells),
        seconds = format!("{:.2}", t.elapsed().as_secs_f64()),
        "overview"
    );
    let mut manifest = ds.manifest;
    manifest.overview = Some(info);
    Ok(manifest)
}

/// Phase 4: per-cell statistics of each numeric column, one pass a column,
/// written a column at a time, while they fit in `share` of the data.
fn with_stats(stage: &Path, manifest: Manifest, share: f64) -> Result<Manifest, PackError> {
    use crate::query::Agg;
    use crate::raster::cells::QueryCells;
    let t = Instant::now();
    let mut ds = crate::store::Dataset::open_with_manifest(stage, manifest)
        .map_err(|e| PackError::Options(format!("reopening the packed data: {e}")))?;
    ds.release_scanned = true;
    let budget = (ds.manifest.data_bytes as f64 * share) as u64;
    let mut writer = crate::store::stats::StatsWriter::create(stage).map_err(io(stage))?;
    let (mut bytes, mut left_out) = (0u64, Vec::new());
    for c in &ds.manifest.columns {
        let agg = Agg::Sum(c.name.clone());
        if agg.validate(&ds.manifest).is_err() {
            continue;
        }
        // At most every unfiltered cell of the level holds a value: skip a
        // column that could not fit before paying its pass.
        let most = QueryCells::estimate_bytes(&ds, &agg);
        if bytes + most > budget {
            left_out.push(c.name.as_str());
            continue;
        }
        let cells =
            QueryCells::compute_moments(&ds, &agg, &[], None, crate::raster::zoom::Moments::All)
                .map_err(|e| PackError::Options(format!("statistics of {}: {e}", c.name)))?;
        let Some(stats) = cells.to_stats() else {
            continue;
        };
        writer.add(&c.name, &stats).map_err(io(stage))?;
        bytes += stats.file_bytes();
    }
    let info = writer.finish().map_err(io(stage))?;
    tracing::info!(
        columns = info.columns.len(),
        bytes = info.bytes,
        share = format!("{:.3}", info.bytes as f64 / ds.manifest.data_bytes.max(1) as f64),
        left_out = ?left_out,
        seconds = format!("{:.2}", t.elapsed().as_secs_f64()),
        "cell statistics"
    );
    let mut manifest = ds.manifest;
    manifest.stats = Some(info);
    Ok(manifest)
}

/// Refuse an output that exists, unless `force` and it is replaceable.
fn check_out(out: &Path, force: bool) -> Result<(), PackError> {
    if out.symlink_metadata().is_err() {
        return Ok(());
    }
    if !force {
        return Err(PackError::Exists(out.to_path_buf()));
    }
    if !out.is_dir() {
        return Err(PackError::Options(format!(
            "{} exists and is not a directory; refusing to replace it",
            out.display()
        )));
    }
    if !replaceable(out) {
        return Err(PackError::Options(format!(
            "{} exists and is not a Pointillist dataset (it has no {MANIFEST_FILE}); \
             refusing to replace it, even with --force",
            out.display()
        )));
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Make a directory's entries durable (best effort: not every platform can
/// sync a directory).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Move the finished temporary directory into place. With `--force` an old
/// dataset is moved aside first and deleted only after the rename succeeded.
fn commit(stage: &mut Staging, out: &Path, force: bool) -> Result<(), PackError> {
    // The output may have appeared while the pack ran.
    check_out(out, force)?;
    let old = if out.symlink_metadata().is_ok() {
        let mut aside = stage.path.clone().into_os_string();
        aside.push(".old");
        let aside = PathBuf::from(aside);
        std::fs::rename(out, &aside).map_err(io(out))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&stage.path, out) {
        if let Some(aside) = &old {
            let _ = std::fs::rename(aside, out);
        }
        return Err(io(out)(e));
    }
    stage.committed = true;
    if let Some(parent) = out.parent() {
        sync_dir(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        });
    }
    if let Some(aside) = old {
        let _ = std::fs::remove_dir_all(aside);
    }
    Ok(())
}

fn progress_bar(enabled: bool, len: Option<u64>, msg: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>8} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}

/// Sort the buffer (in input order) and write it as a run file with each
/// row's key and input ordinal, in batches.
fn spill(buffer: &mut Buffer, path: &Path) -> Result<(), PackError> {
    let t = Instant::now();
    buffer.sort();
    let order = &buffer.order;
    let schema = buffer.batches[0].schema();
    // Attributes, key and ordinal: the key holds the coordinates.
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(KEY, DataType::UInt64, false)));
    fields.push(Arc::new(Field::new(ORD, DataType::UInt64, false)));
    let run_schema = Arc::new(Schema::new(fields));
    let file = std::fs::File::create(path).map_err(io(path))?;
    // zstd shrinks the runs by 45% (LZ4 by 25%) for about 20% more pack
    // time: at a billion rows the input, the runs and the output must share
    // one disk.
    let options = arrow_ipc::writer::IpcWriteOptions::default()
        .try_with_compression(Some(arrow_ipc::CompressionType::ZSTD))?;
    let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(
        std::io::BufWriter::new(file),
        &run_schema,
        options,
    )?;
    for chunk in order.chunks(ingest::BATCH_ROWS) {
        let mut cols = gather_attributes(&buffer.batches, chunk)?;
        cols.push(Arc::new(UInt64Array::from_iter_values(
            chunk.iter().map(|o| o.0),
        )));
        cols.push(Arc::new(UInt64Array::from_iter_values(
            chunk
                .iter()
                .map(|&(_, b, r)| buffer.ordinals[b as usize] + r as u64),
        )));
        w.write(&RecordBatch::try_new(run_schema.clone(), cols)?)?;
    }
    w.finish()?;
    tracing::info!(
        rows = buffer.rows,
        seconds = format!("{:.2}", t.elapsed().as_secs_f64()),
        "spilled sorted run {}",
        path.display()
    );
    Ok(())
}

/// Gather rows (key, batch, row) of attribute batches into the columns of
/// a packed batch: `_qx` and `_qy` (from the keys), then the attributes.
pub(crate) fn gather(
    batches: &[RecordBatch],
    rows: &[SortRow],
) -> Result<Vec<ArrayRef>, PackError> {
    let ((qx, qy), attrs) = rayon::join(
        || {
            let (xs, ys): (Vec<u32>, Vec<u32>) = rows
                .iter()
                .map(|&(k, _, _)| crate::geo::hilbert_point(k))
                .unzip();
            (UInt32Array::from(xs), UInt32Array::from(ys))
        },
        || gather_attributes(batches, rows),
    );
    let mut cols: Vec<ArrayRef> = vec![Arc::new(qx), Arc::new(qy)];
    cols.extend(attrs?);
    Ok(cols)
}

/// Gather rows (key, batch, row) from several batches into new columns,
/// one column per task.
fn gather_attributes(
    batches: &[RecordBatch],
    rows: &[SortRow],
) -> Result<Vec<ArrayRef>, PackError> {
    let ncols = batches.first().map_or(0, RecordBatch::num_columns);
    (0..ncols)
        .into_par_iter()
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            gather_column(&arrays, rows)
        })
        .collect()
}

/// One column of [`gather`]: fixed-width columns without nulls (most of a
/// pack's bytes) are copied by a typed loop straight from the sort rows;
/// anything else goes through Arrow's `interleave`.
fn gather_column(arrays: &[&dyn Array], rows: &[SortRow]) -> Result<ArrayRef, PackError> {
    /// The gather of values `T` wide, whatever their logical type.
    fn typed<T: arrow_buffer::ArrowNativeType>(
        arrays: &[&dyn Array],
        rows: &[SortRow],
    ) -> Result<ArrayRef, PackError> {
        let datas: Vec<arrow_data::ArrayData> = arrays.iter().map(|a| a.to_data()).collect();
        let slices: Vec<&[T]> = datas.iter().map(|d| d.buffer::<T>(0)).collect();
        let values: Vec<T> = rows
            .iter()
            .map(|&(_, b, r)| slices[b as usize][r as usize])
            .collect();
        let data = arrow_data::ArrayData::builder(arrays[0].data_type().clone())
            .len(rows.len())
            .add_buffer(arrow_buffer::Buffer::from_vec(values))
            .build()?;
        Ok(arrow_array::make_array(data))
    }
    let dt = arrays[0].data_type();
    let plain = dt.is_primitive()
        && arrays
            .iter()
            .all(|a| a.null_count() == 0 && a.data_type() == dt);
    match dt.primitive_width() {
        Some(1) if plain => typed::<u8>(arrays, rows),
        Some(2) if plain => typed::<u16>(arrays, rows),
        Some(4) if plain => typed::<u32>(arrays, rows),
        Some(8) if plain => typed::<u64>(arrays, rows),
        _ => {
            let idx: Vec<(usize, usize)> = rows
                .iter()
                .map(|&(_, b, r)| (b as usize, r as usize))
                .collect();
            Ok(arrow_select::interleave::interleave(arrays, &idx)?)
        }
    }
}

/// A cursor over one sorted run.
struct RunCursor {
    reader: arrow_ipc::reader::FileReader<std::io::BufReader<std::fs::File>>,
    /// Slot of the current batch in the merge's batch list.
    slot: usize,
    keys: arrow_buffer::ScalarBuffer<u64>,
    ords: arrow_buffer::ScalarBuffer<u64>,
    row: usize,
    /// Bytes at the start of the run file already given back to the disk.
    freed: u64,
    /// Give blocks back in steps this large ([`FREE_STEP`] in a pack).
    free_step: u64,
}

/// The merge gives a run's disk blocks back in steps this large.
const FREE_STEP: u64 = 64 << 20;

/// Give back the disk blocks of `len` bytes of `file` from `offset`, keeping
/// its size (Linux `fallocate` hole punching; the range then reads as
/// zeros). Returns whether the file system did it: one that cannot keeps
/// the bytes, which only costs disk space.
fn free_blocks(file: &std::fs::File, offset: u64, len: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{FallocateFlags, fallocate};
        fallocate(
            file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        )
        .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        false
    }
}

impl RunCursor {
    /// A cursor before the first batch of the run at `path`.
    fn open(path: &Path, free_step: u64) -> Result<RunCursor, PackError> {
        // Writable, so that the blocks read can be given back.
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        Ok(RunCursor {
            reader: arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(f), None)?,
            slot: 0,
            keys: Vec::new().into(),
            ords: Vec::new().into(),
            row: 0,
            freed: 0,
            free_step,
        })
    }

    /// Columns of the run's batches besides the key and the ordinal.
    fn data_cols(&self) -> usize {
        self.reader.schema().fields().len() - 2
    }

    /// The head's (key, ordinal), the merge order.
    fn head(&self) -> (u64, u64) {
        (self.keys[self.row], self.ords[self.row])
    }

    /// Load the next non-empty batch into `slots`; false at the end of the run.
    fn advance(
        &mut self,
        slots: &mut Vec<RecordBatch>,
        data_cols: usize,
        decoders: &[Option<Arc<arrow_array::StringArray>>],
    ) -> Result<bool, PackError> {
        for b in self.reader.by_ref() {
            let b = b?;
            if b.num_rows() == 0 {
                continue;
            }
            let column = |name: &str| -> Result<arrow_buffer::ScalarBuffer<u64>, PackError> {
                let c = b.column_by_name(name).ok_or_else(|| {
                    PackError::Options(format!("spilled run lacks its {name} column"))
                })?;
                Ok(c.as_primitive::<arrow_array::types::UInt64Type>()
                    .values()
                    .clone())
            };
            self.keys = column(KEY)?;
            self.ords = column(ORD)?;
            self.row = 0;
            let mut data = b.project(&(0..data_cols).collect::<Vec<_>>())?;
            // A column coded when this run was spilled may have ended as strings.
            for (ci, labels) in decoders.iter().enumerate() {
                if let Some(labels) = labels {
                    data = labels::decode(&data, ci, labels)?;
                }
            }
            slots.push(data);
            self.slot = slots.len() - 1;
            self.free_read();
            return Ok(true);
        }
        Ok(false)
    }

    /// Give back the run's blocks before the batch just read, in
    /// whole steps: the merge reads each run once, front to back, and
    /// holds what it read in memory, so at a billion rows the runs shrink
    /// as the partitions grow, instead of the disk holding both in full.
    fn free_read(&mut self) {
        use std::io::Seek;
        let Ok(at) = self.reader.get_mut().stream_position() else {
            return;
        };
        let upto = at / self.free_step * self.free_step;
        if upto > self.freed {
            free_blocks(
                self.reader.get_ref().get_ref(),
                self.freed,
                upto - self.freed,
            );
            self.freed = upto;
        }
    }
}

/// K-way merge of sorted runs into partitions, in (key, input ordinal) order:
/// the order an in-memory sort of all rows gives.
fn merge(
    runs: &[PathBuf],
    decoders: &[Option<Arc<arrow_array::StringArray>>],
    partition_rows: usize,
    writer: &mut PartitionWriter,
    bar: &ProgressBar,
) -> Result<(), PackError> {
    use std::cmp::Reverse;
    // Batches referenced by the partition being assembled (run columns
    // without key and ordinal); a slot is only dropped once that partition
    // is written.
    let mut slots: Vec<RecordBatch> = Vec::new();
    let mut cursors: Vec<Option<RunCursor>> = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (i, r) in runs.iter().enumerate() {
        let mut c = RunCursor::open(r, FREE_STEP)?;
        let data_cols = c.data_cols();
        if c.advance(&mut slots, data_cols, decoders)? {
            heap.push(Reverse((c.head(), i)));
            cursors.push(Some(c));
        } else {
            cursors.push(None);
        }
    }
    let data_cols = slots.first().map_or(0, |b| b.num_columns());
    let mut idx: Vec<SortRow> = Vec::with_capacity(partition_rows);
    while let Some(Reverse(((key, _), i))) = heap.pop() {
        let c = cursors[i].as_mut().expect("a cursor in the heap is live");
        idx.push((key, c.slot as u32, c.row as u32));
        c.row += 1;
        if c.row < c.keys.len() || c.advance(&mut slots, data_cols, decoders)? {
            heap.push(Reverse((c.head(), i)));
        } else {
            cursors[i] = None;
        }
        if idx.len() == partition_rows || heap.is_empty() {
            writer.write(&slots, &idx)?;
            bar.inc(idx.len() as u64);
            idx.clear();
            // Keep only the batches cursors still stand in, renumbering them.
            let mut kept = Vec::with_capacity(cursors.len());
            for c in cursors.iter_mut().flatten() {
                kept.push(slots[c.slot].clone());
                c.slot = kept.len() - 1;
            }
            slots = kept;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_merged_run_gives_back_its_blocks_and_reads_in_full() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let n = 300_000u64;
        // Values that zstd cannot shrink much, so the run spans many steps.
        let values: Vec<u64> = (0..n)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(values.clone()))])
            .unwrap();
        let mut buffer = Buffer::with_capacity(n as usize);
        buffer.push(batch, &values, 0);
        let path = dir.path().join("run-0.arrow");
        spill(&mut buffer, &path).unwrap();
        let full = std::fs::metadata(&path).unwrap().blocks();
        let step = 64 << 10;
        let mut c = RunCursor::open(&path, step).unwrap();
        let data_cols = c.data_cols();
        let (mut slots, mut read) = (Vec::new(), Vec::new());
        let mut least = full;
        while c.advance(&mut slots, data_cols, &[]).unwrap() {
            let col = slots[c.slot]
                .column(0)
                .as_primitive::<arrow_array::types::UInt64Type>();
            assert_eq!(col.values()[..], c.keys[..], "a row's value is its key");
            read.extend_from_slice(&c.keys);
            least = least.min(std::fs::metadata(&path).unwrap().blocks());
        }
        let mut sorted = values;
        sorted.sort_unstable();
        assert_eq!(read, sorted, "every row, in key order, once");
        if !punches_holes(dir.path()) {
            eprintln!("this file system cannot punch holes; the blocks stay");
            return;
        }
        assert!(
            least * 2 < full,
            "blocks were not given back while reading: {full} -> {least}"
        );
    }

    /// Whether the file system under `dir` gives blocks back.
    #[cfg(target_os = "linux")]
    fn punches_holes(dir: &Path) -> bool {
        let path = dir.join("probe");
        std::fs::write(&path, vec![1u8; 1 << 20]).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.sync_all().unwrap();
        free_blocks(&f, 0, 1 << 20)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn freed_blocks_read_as_zeros_and_leave_the_size_and_the_rest() {
        use std::io::Write;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.arrow");
        let bytes: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8 | 1).collect();
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&bytes).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let before = f.metadata().unwrap().blocks();
        let half = 2u64 << 20;
        if !free_blocks(&f, 0, half) {
            eprintln!("this file system cannot punch holes; nothing to check");
            return;
        }
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), bytes.len() as u64, "the size stays");
        // 512-byte blocks: at least half the file's blocks are gone.
        assert!(
            meta.blocks() <= before - half / 512,
            "{} blocks before, {} after",
            before,
            meta.blocks()
        );
        let read = std::fs::read(&path).unwrap();
        assert!(read[..half as usize].iter().all(|&b| b == 0));
        assert_eq!(read[half as usize..], bytes[half as usize..]);
    }
}
