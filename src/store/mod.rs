//! A packed dataset on disk: the manifest plus one memory-mapped Arrow IPC
//! file, decoded without copying.
//!
//! Opening reads only the manifest and the IPC footer and metadata; column
//! values stay in the page cache and are touched only when a query reads them,
//! so datasets larger than RAM open in milliseconds.

pub mod column;
pub mod files;
pub mod manifest;
pub mod overview;
pub mod remote;
pub mod stats;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, UInt32Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::convert::try_fb_to_schema;
use arrow_ipc::reader::{FileDecoder, read_footer_length};
use arrow_ipc::{Block, root_as_footer};
use arrow_schema::{DataType, Schema, SchemaRef};
pub use files::{FileWatch, ReadGuard, Retired};
pub use manifest::*;
pub use overview::Overview;
pub use stats::{STATS_FILE, Stats, StatsInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a dataset cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON for this format.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Object storage refused or failed a request.
    #[error("{url}: {message}")]
    Remote {
        /// The dataset's or object's `s3://` URL.
        url: String,
        /// What went wrong (never a credential).
        message: String,
    },
    /// The data file does not match the manifest or is damaged.
    #[error("{path}: corrupt dataset: {message}")]
    Corrupt {
        /// The data file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One partition, decoded zero-copy from the mapping.
#[derive(Debug, Clone)]
pub struct Partition {
    /// The manifest's description (bounds, zone maps, key range).
    pub info: PartitionInfo,
    /// The partition's columns.
    pub batch: RecordBatch,
    qx: arrow_buffer::ScalarBuffer<u32>,
    qy: arrow_buffer::ScalarBuffer<u32>,
    /// For a dataset on object storage: where its column chunks are
    /// fetched from on first use, and this partition's index.
    remote: Option<(Arc<remote::Lazy>, usize)>,
}

impl Partition {
    /// Quantized x of every row (see [`crate::geo`]).
    #[inline]
    pub fn qx(&self) -> &[u32] {
        self.touch(0);
        &self.qx
    }

    /// Quantized y of every row (from the north).
    #[inline]
    pub fn qy(&self) -> &[u32] {
        self.touch(1);
        &self.qy
    }

    /// Make column `i` readable: a no-op for a local dataset; for a remote
    /// one, fetches the column's chunk of this partition if missing.
    #[inline]
    fn touch(&self, i: usize) {
        if let Some((lazy, p)) = &self.remote {
            lazy.ensure(*p, &[i]);
        }
    }

    /// Rows in the partition.
    #[inline]
    pub fn len(&self) -> usize {
        self.qx.len()
    }

    /// Whether the partition has no rows.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.qx.is_empty()
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        let i = self.batch.schema_ref().index_of(name).ok()?;
        self.touch(i);
        Some(self.batch.column(i))
    }

    /// Rows whose Hilbert key lies in `lo..=hi`, as a half-open index range.
    /// Rows are sorted by key, so this is two binary searches, or none when
    /// the range holds the partition's whole key span: a whole-map pass
    /// then touches no coordinate page to plan (over a billion rows, the
    /// searches' faults mapped 2.4 GB before the first row was read).
    pub fn key_rows(&self, lo: u64, hi: u64) -> std::ops::Range<usize> {
        if hi < self.info.key_min || lo > self.info.key_max {
            return 0..0;
        }
        if lo <= self.info.key_min && hi >= self.info.key_max {
            return 0..self.len();
        }
        let (qx, qy) = (self.qx(), self.qy());
        let key = |i: usize| crate::geo::hilbert(qx[i], qy[i]);
        let start = partition_point(self.len(), |i| key(i) < lo);
        let end = partition_point(self.len(), |i| key(i) <= hi);
        start..end.max(start)
    }
}

/// Binary search over indices `0..n` for the first index where `pred` is false.
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// An opened packed dataset.
#[derive(Debug)]
pub struct Dataset {
    /// Directory it was opened from.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Arrow schema of the data file.
    pub schema: SchemaRef,
    /// Partitions in Hilbert order.
    pub partitions: Vec<Partition>,
    /// Precomputed overviews, when the dataset was packed with them.
    pub overview: Option<Overview>,
    /// Per-cell statistics of numeric columns, when packed with them.
    pub stats: Option<Stats>,
    /// The mapped files, guarded against changes in place: readers of the
    /// mappings in a long-lived process [`FileWatch::enter`] first.
    pub files: FileWatch,
    /// The data file's mapping, for read-ahead advice.
    mapping: Arc<memmap2::Mmap>,
    /// Where a dataset on object storage came from (`None`: a local one).
    pub origin: Option<remote::Origin>,
    remote: Option<Arc<remote::Lazy>>,
    /// Whether scans drop the pages they read from this process's mapping
    /// as they finish them ([`Dataset::release`]): `pack`'s passes over a
    /// dataset larger than memory would otherwise keep every page they
    /// touched in their RSS. Off in the server, which rereads hot pages.
    pub release_scanned: bool,
}

/// Whether [`Dataset::prefetch`] advises the kernel (the default). It is
/// process-wide because it is an I/O policy of the machine the server runs
/// on (local SSD, network disk, page cache size), not of one dataset.
static READ_AHEAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turn [`Dataset::prefetch`]'s read-ahead advice on or off for the process
/// (`serve --no-read-ahead`, for measuring what it buys).
pub fn set_read_ahead(on: bool) {
    READ_AHEAD.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl Dataset {
    /// Open a packed dataset directory: read the manifest, map the data file
    /// and decode its partitions zero-copy, checking them against the manifest.
    ///
    /// Opening costs O(partitions + columns), whatever the row count: it
    /// reads the manifest and the IPC metadata (footer, one message header per
    /// partition) and checks the layout of every buffer against it, but never
    /// reads column values, except the values of high-cardinality string
    /// columns, whose offsets and UTF-8 must be valid before anything can
    /// read them safely. Dictionary codes of categorical columns are not
    /// checked here; [`column::CatColumn::get`] treats a code outside the
    /// labels as null, and [`Dataset::verify`] checks them all.
    pub fn open(dir: impl AsRef<Path>) -> Result<Dataset, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let mpath = dir.join(MANIFEST_FILE);
        let text = std::fs::read(&mpath).map_err(|source| StoreError::Io {
            path: mpath.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| StoreError::Manifest {
                path: mpath.clone(),
                message: e.to_string(),
            })?;
        Dataset::open_with_manifest(dir, manifest)
    }

    /// [`Dataset::open`] with the manifest already in hand (as `pack` has it
    /// before writing it): the same checks, without reading `manifest.json`.
    pub fn open_with_manifest(
        dir: impl AsRef<Path>,
        manifest: Manifest,
    ) -> Result<Dataset, StoreError> {
        Dataset::open_from(dir.as_ref(), manifest, None)
    }

    /// Open a dataset whose `data.arrow` in `dir` is the sparse cache copy
    /// of an object, filled by `lazy` ([`remote`]).
    pub(crate) fn open_remote(
        dir: &Path,
        manifest: Manifest,
        lazy: Arc<remote::Lazy>,
    ) -> Result<Dataset, StoreError> {
        Dataset::open_from(dir, manifest, Some(lazy))
    }

    fn open_from(
        dir: &Path,
        manifest: Manifest,
        lazy: Option<Arc<remote::Lazy>>,
    ) -> Result<Dataset, StoreError> {
        let dir = dir.to_path_buf();
        let mpath = dir.join(MANIFEST_FILE);
        if manifest.format != "pointillist-packed" || manifest.version != FORMAT_VERSION {
            return Err(StoreError::Manifest {
                path: mpath,
                message: format!(
                    "unsupported format {:?} version {} (this build reads {:?} version {FORMAT_VERSION})",
                    manifest.format, manifest.version, "pointillist-packed"
                ),
            });
        }
        check_manifest(&manifest).map_err(|message| StoreError::Manifest {
            path: mpath.clone(),
            message,
        })?;
        let dpath = dir.join(DATA_FILE);
        let corrupt = |message: String| StoreError::Corrupt {
            path: dpath.clone(),
            message,
        };
        let (file, len) = open_sized(&dpath, manifest.data_bytes)?;
        if len < (ARROW_MAGIC_PADDED.len() + 10) as u64 {
            return Err(corrupt("file too short for an Arrow IPC file".into()));
        }
        // SAFETY: the file is opened read-only and its length was checked
        // against the manifest above. Packed files are written once to a temporary
        // directory and renamed into place, never modified in place, so the
        // mapping cannot shrink under us through Pointillist itself; a dataset
        // replaced on disk gets a new inode while this mapping keeps the old one.
        // A change in place by another process is fenced off by `files`
        // (read leases, or a size check before each scan: see `store::files`).
        // The sparse cache copy of a remote dataset is written in place, but
        // only into ranges no reader is inside (see `store::remote`), and
        // never resized while mapped.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| StoreError::Io {
            path: dpath.clone(),
            source,
        })?;
        let mmap = Arc::new(mmap);
        // Opening touches a few pages per partition, scattered over the file.
        // With the default read-around every such fault on a cold file reads
        // ahead (hundreds of KB), which made opening read much of the file;
        // random access reads just those pages. Queries scan, so the default
        // comes back once the metadata is decoded.
        #[cfg(unix)]
        let _ = mmap.advise(memmap2::Advice::Random);
        let buffer = Buffer::from(bytes::Bytes::from_owner(Mapping(mmap.clone())));
        let source = match &lazy {
            Some(l) => Source::Remote(l),
            None => Source::Local(&mmap),
        };
        let decoded = decode(&buffer, &manifest, &source);
        #[cfg(unix)]
        let _ = mmap.advise(memmap2::Advice::Normal);
        let (schema, mut partitions) = decoded.map_err(corrupt)?;
        let mut files = FileWatch::default();
        if let Some(l) = &lazy {
            let base = buffer.as_ptr() as usize;
            l.place(
                partitions
                    .iter()
                    .map(|p| {
                        p.batch
                            .columns()
                            .iter()
                            .map(|c| {
                                let r = column_span(&c.to_data(), base, buffer.len());
                                r.start as u64..r.end as u64
                            })
                            .collect()
                    })
                    .collect(),
            );
            for (i, p) in partitions.iter_mut().enumerate() {
                p.remote = Some((l.clone(), i));
            }
            files.hook(l.clone());
        } else {
            files.add(&dpath, file, len);
        }
        let overview = overview::Overview::open(&dir, &manifest, &mut files)?;
        let stats = stats::Stats::open(&dir, &manifest, &mut files)?;
        Ok(Dataset {
            dir,
            manifest,
            schema,
            partitions,
            overview,
            stats,
            files,
            mapping: mmap,
            origin: None,
            remote: lazy,
            release_scanned: false,
        })
    }

    /// Whether the dataset's data is fetched from object storage.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Get ready to scan `columns` over `spans` (partition, rows) in one
    /// go: for a remote dataset, fetch every missing column chunk they
    /// cover in one batch of coalesced, parallel requests; for a local one,
    /// [`Dataset::prefetch`] each span.
    pub fn prefetch_spans(&self, spans: &[(usize, std::ops::Range<usize>)], columns: &[&str]) {
        match &self.remote {
            Some(lazy) => {
                let idx: Vec<usize> = columns
                    .iter()
                    .filter_map(|c| self.schema.index_of(c).ok())
                    .collect();
                lazy.ensure_many(
                    &mut spans
                        .iter()
                        .flat_map(|(p, _)| idx.iter().map(move |&c| (*p, c))),
                );
            }
            None => {
                for (p, rows) in spans {
                    self.prefetch(*p, rows.clone(), columns);
                }
            }
        }
    }

    /// Ask the kernel to start reading `rows` of `partition` for the
    /// fixed-width `columns` (`MADV_WILLNEED`), so that a scan about to read
    /// them waits on one batch of parallel reads instead of a page fault
    /// at a time. Resident pages cost nothing; it is only advice, so
    /// unknown or variable-width columns are skipped and errors ignored.
    pub fn prefetch(&self, partition: usize, rows: std::ops::Range<usize>, columns: &[&str]) {
        if !READ_AHEAD.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        for r in self.column_ranges(partition, rows, columns) {
            #[cfg(unix)]
            let _ = self
                .mapping
                .advise_range(memmap2::Advice::WillNeed, r.start, r.end - r.start);
        }
    }

    /// Byte ranges (relative to the mapping) of the fixed-width `columns`
    /// of `rows` of `partition`.
    fn column_ranges(
        &self,
        partition: usize,
        rows: std::ops::Range<usize>,
        columns: &[&str],
    ) -> Vec<std::ops::Range<usize>> {
        let Some(part) = self.partitions.get(partition) else {
            return Vec::new();
        };
        let base = self.mapping.as_ptr() as usize;
        let end_of_map = base + self.mapping.len();
        let mut out = Vec::with_capacity(columns.len());
        for name in columns {
            let Some(col) = part.batch.column_by_name(name) else {
                continue;
            };
            let data = col.to_data();
            let width = match data.data_type() {
                DataType::Dictionary(k, _) => k.primitive_width(),
                t => t.primitive_width(),
            };
            let (Some(width), Some(buf)) = (width, data.buffers().first()) else {
                continue;
            };
            let at = |row: usize| buf.as_ptr() as usize + (data.offset() + row) * width;
            let (start, end) = (at(rows.start), at(rows.end));
            if start >= base && end <= end_of_map && start < end {
                out.push(start - base..end - base);
            }
        }
        out
    }

    /// Drop the pages of `columns` over `rows` of `partition` from this
    /// process's mapping once a scan is done with them (when
    /// [`Dataset::release_scanned`] is set): they stay in the page cache,
    /// where the kernel can evict them, but no longer count in the RSS.
    ///
    /// The range is rounded out to 2 MiB. A fault maps a large page-cache
    /// folio (up to 2 MiB) whole on recent kernels, so a scan's last fault
    /// can map pages of the next range, which another thread may have
    /// released already, and rounding in to whole pages left the pages at
    /// each column's edges mapped. A reader still inside the rounded part
    /// faults its pages back in from the page cache.
    pub fn release(&self, partition: usize, rows: std::ops::Range<usize>, columns: &[&str]) {
        if !self.release_scanned {
            return;
        }
        const FOLIO: usize = 2 << 20;
        for r in self.column_ranges(partition, rows, columns) {
            let lo = r.start / FOLIO * FOLIO;
            let hi = r.end.next_multiple_of(FOLIO).min(self.mapping.len());
            if lo < hi {
                // SAFETY: the mapping is a shared, read-only mapping of a
                // file nobody writes (see `open_with_manifest`). For such a
                // mapping MADV_DONTNEED only removes page-table entries: the
                // next read of any byte, by this thread or another still
                // reading it, faults the same bytes back in from the page
                // cache or the file, so no reference ever sees the contents
                // change. A test reads the data before and after.
                #[cfg(unix)]
                let _ = unsafe {
                    self.mapping.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        lo,
                        hi - lo,
                    )
                };
            }
        }
    }

    /// Dataset name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.manifest.rows
    }

    /// Check every row, which [`Dataset::open`] does not: full Arrow
    /// validation of every column (dictionary codes included), Hilbert order
    /// within and across partitions, each row inside its partition's bounds
    /// and key range. Reads the whole data file.
    pub fn verify(&self) -> Result<(), StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            path: self.dir.join(DATA_FILE),
            message,
        };
        let mut last_key = 0u64;
        for (i, p) in self.partitions.iter().enumerate() {
            for (f, c) in p.batch.schema().fields().iter().zip(p.batch.columns()) {
                c.to_data()
                    .validate_full()
                    .map_err(|e| corrupt(format!("partition {i}, column {:?}: {e}", f.name())))?;
            }
            let [x0, y0, x1, y1] = p.info.bounds.quantized;
            for (r, (&x, &y)) in p.qx().iter().zip(p.qy()).enumerate() {
                let key = crate::geo::hilbert(x, y);
                if key < last_key {
                    return Err(corrupt(format!(
                        "partition {i}, row {r}: rows are not in Hilbert order"
                    )));
                }
                last_key = key;
                if !(x0..=x1).contains(&x) || !(y0..=y1).contains(&y) {
                    return Err(corrupt(format!(
                        "partition {i}, row {r}: outside the partition's bounds"
                    )));
                }
                if !(p.info.key_min..=p.info.key_max).contains(&key) {
                    return Err(corrupt(format!(
                        "partition {i}, row {r}: outside the partition's key range"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The mapped data file, owner of every buffer decoded from it.
/// A shared mapping as the owner of Arrow buffers.
pub(crate) struct Mapping(pub(crate) Arc<memmap2::Mmap>);

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Open a file that must be exactly `expected` bytes long. A mapping of a
/// file shorter than what we touch raises SIGBUS, so every mapped file's
/// size is checked before mapping, against what the manifest recorded.
pub(crate) fn open_sized(path: &Path, expected: u64) -> Result<(std::fs::File, u64), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len != expected {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: format!("file is {len} bytes, manifest says {expected}"),
        });
    }
    Ok((file, len))
}

/// The first 8 bytes of an Arrow IPC file.
const ARROW_MAGIC_PADDED: [u8; 8] = *b"ARROW1\0\0";

/// Consistency of the manifest on its own (cheap: metadata only), so that
/// code trusting it (category tables indexed by code, row ranges) cannot be
/// led out of bounds.
fn check_manifest(m: &Manifest) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for c in &m.columns {
        if c.name == QX || c.name == QY || !names.insert(c.name.as_str()) {
            return Err(format!("column {:?} is listed twice or reserved", c.name));
        }
        let ncat = c.categories.len();
        if c.kind == ColumnKind::Categorical {
            if ncat > i16::MAX as usize + 1 {
                return Err(format!("column {:?} has too many categories", c.name));
            }
            if !c.stats.category_counts.is_empty() && c.stats.category_counts.len() != ncat {
                return Err(format!(
                    "column {:?}: {} category counts for {ncat} categories",
                    c.name,
                    c.stats.category_counts.len()
                ));
            }
        }
        for (i, p) in m.partitions.iter().enumerate() {
            let bad = p
                .columns
                .get(&c.name)
                .and_then(|z| z.categories.as_ref())
                .is_some_and(|codes| codes.iter().any(|&code| code as usize >= ncat));
            if bad {
                return Err(format!(
                    "partition {i}: column {:?} lists a category code beyond its {ncat} categories",
                    c.name
                ));
            }
        }
    }
    let mut row = 0u64;
    for (i, p) in m.partitions.iter().enumerate() {
        if p.row_start != row {
            return Err(format!(
                "partition {i} starts at row {}, expected {row}",
                p.row_start
            ));
        }
        if p.rows == 0 || p.key_min > p.key_max {
            return Err(format!(
                "partition {i} is empty or has an inverted key range"
            ));
        }
        row = row
            .checked_add(p.rows)
            .ok_or("row counts overflow".to_string())?;
    }
    if row != m.rows {
        return Err(format!(
            "partitions hold {row} rows, manifest says {}",
            m.rows
        ));
    }
    Ok(())
}

/// How a column's buffers are laid out, for the types a pack writes. Other
/// types are decoded with Arrow's full validation instead.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// Validity + values of a fixed width (bytes).
    Fixed(usize),
    /// Validity + i32 offsets + UTF-8 bytes.
    Utf8,
    /// Validity + i16 codes into the file's dictionary of labels.
    Dict16,
}

impl Layout {
    fn of(t: &DataType) -> Option<Layout> {
        match t {
            DataType::Dictionary(k, v) if **k == DataType::Int16 && **v == DataType::Utf8 => {
                Some(Layout::Dict16)
            }
            DataType::Utf8 => Some(Layout::Utf8),
            t if t.is_primitive() => t.primitive_width().map(Layout::Fixed),
            _ => None,
        }
    }
}

/// Check a record batch message against the schema's layouts before Arrow
/// builds arrays from it without validation: the message is a record batch,
/// uncompressed, every buffer lies inside the block's body and is aligned for
/// its type, and every column has the batch's length and buffers long enough
/// for it. This reads only the message's metadata.
fn check_batch_layout(
    block: &Buffer,
    meta_len: usize,
    layouts: &[Layout],
) -> Result<usize, String> {
    let message = parse_message(block, meta_len)?;
    let batch = message
        .header_as_record_batch()
        .ok_or("block does not hold a record batch")?;
    if batch.compression().is_some() {
        return Err("record batch is compressed; packed data never is".into());
    }
    let len = usize::try_from(batch.length()).map_err(|_| "negative row count")?;
    let nodes = batch.nodes().ok_or("record batch lists no field nodes")?;
    let buffers = batch.buffers().ok_or("record batch lists no buffers")?;
    let expected: usize = layouts
        .iter()
        .map(|l| if *l == Layout::Utf8 { 3 } else { 2 })
        .sum();
    if nodes.len() != layouts.len() || buffers.len() != expected {
        return Err(format!(
            "{} field nodes and {} buffers for {} columns",
            nodes.len(),
            buffers.len(),
            layouts.len()
        ));
    }
    let body = block.slice(meta_len);
    let base = body.as_ptr() as usize;
    let mut bufs = buffers.iter();
    // (length, alignment) checked for the next buffer.
    let mut next = |need: usize, align: usize| -> Result<(), String> {
        let b = bufs.next().ok_or("missing buffer")?;
        let (off, blen) = (b.offset(), b.length());
        let (Ok(off), Ok(blen)) = (usize::try_from(off), usize::try_from(blen)) else {
            return Err("negative buffer offset or length".into());
        };
        if off.checked_add(blen).is_none_or(|end| end > body.len()) {
            return Err(format!(
                "buffer {off}+{blen} lies outside the {}-byte body",
                body.len()
            ));
        }
        if blen < need {
            return Err(format!("buffer of {blen} bytes, {need} needed"));
        }
        if (base + off) % align != 0 {
            return Err("misaligned buffer".into());
        }
        Ok(())
    };
    for (node, layout) in nodes.iter().zip(layouts) {
        if usize::try_from(node.length()) != Ok(len) {
            return Err(format!(
                "a column has {} rows, the batch {len}",
                node.length()
            ));
        }
        let nulls = usize::try_from(node.null_count()).map_err(|_| "negative null count")?;
        if nulls > len {
            return Err("more nulls than rows".into());
        }
        next(if nulls > 0 { len.div_ceil(8) } else { 0 }, 1)?;
        match *layout {
            Layout::Fixed(w) => next(len * w, w.clamp(1, 16))?,
            Layout::Dict16 => next(len * 2, 2)?,
            Layout::Utf8 => {
                next(if len > 0 { (len + 1) * 4 } else { 0 }, 4)?;
                next(0, 1)?;
            }
        }
    }
    Ok(len)
}

/// Parse the IPC message at the start of a block (continuation marker,
/// length, flatbuffer), without panicking on short input.
fn parse_message(block: &Buffer, meta_len: usize) -> Result<arrow_ipc::Message<'_>, String> {
    let meta = block
        .get(..meta_len)
        .ok_or("block shorter than its metadata")?;
    let fb = match meta {
        [0xff, 0xff, 0xff, 0xff, _, _, _, _, rest @ ..] => rest,
        [_, _, _, _, rest @ ..] if meta_len >= 8 => rest,
        _ => return Err("metadata too short for a message".into()),
    };
    arrow_ipc::root_as_message(fb).map_err(|e| format!("unreadable message: {e}"))
}

/// Check that every buffer of any message lies inside its block's body, so
/// Arrow's decoder cannot slice out of bounds.
fn check_buffers_in_body(block: &Buffer, meta_len: usize) -> Result<(), String> {
    let message = parse_message(block, meta_len)?;
    let batch = match message.header_type() {
        arrow_ipc::MessageHeader::RecordBatch => message.header_as_record_batch(),
        arrow_ipc::MessageHeader::DictionaryBatch => {
            message.header_as_dictionary_batch().and_then(|d| d.data())
        }
        t => return Err(format!("unexpected {t:?} message")),
    }
    .ok_or("message without a record batch")?;
    if batch.compression().is_some() {
        return Err("compressed message; packed data never is".into());
    }
    let body = block.len() - meta_len;
    for b in batch.buffers().into_iter().flatten() {
        let end = usize::try_from(b.offset())
            .ok()
            .zip(usize::try_from(b.length()).ok())
            .and_then(|(o, l)| o.checked_add(l));
        if end.is_none_or(|end| end > body) {
            return Err(format!(
                "buffer {}+{} lies outside the {body}-byte body",
                b.offset(),
                b.length()
            ));
        }
    }
    Ok(())
}

/// Where the bytes of a data file being opened come from.
enum Source<'a> {
    /// A local file: its pages are read on first touch, and
    /// [`Source::hint`] asks the kernel to read them ahead.
    Local(&'a memmap2::Mmap),
    /// The sparse copy of an object: ranges are fetched before they are read.
    Remote(&'a remote::Lazy),
}

impl Source<'_> {
    /// These ranges are about to be read.
    fn hint(&self, ranges: &[std::ops::Range<usize>]) -> Result<(), String> {
        match self {
            Source::Local(_m) => {
                for r in ranges {
                    #[cfg(unix)]
                    let _ = _m.advise_range(memmap2::Advice::WillNeed, r.start, r.len());
                    #[cfg(not(unix))]
                    let _ = r;
                }
                Ok(())
            }
            Source::Remote(l) => l.need(ranges),
        }
    }

    /// These ranges must be readable before going on.
    fn need(&self, ranges: &[std::ops::Range<usize>]) -> Result<(), String> {
        match self {
            Source::Local(_) => Ok(()),
            Source::Remote(l) => l.need(ranges),
        }
    }
}

/// The bytes of the mapping (`base`, `len` bytes) that an array's buffers
/// span, its nulls and children included; a dictionary's values, which
/// live in the file's dictionary batches, are not part of it.
fn column_span(data: &arrow_data::ArrayData, base: usize, len: usize) -> std::ops::Range<usize> {
    let mut lo = usize::MAX;
    let mut hi = 0usize;
    let mut add = |ptr: *const u8, n: usize| {
        let a = ptr as usize;
        if n > 0 && a >= base && a + n <= base + len {
            lo = lo.min(a - base);
            hi = hi.max(a - base + n);
        }
    };
    fn walk(d: &arrow_data::ArrayData, add: &mut dyn FnMut(*const u8, usize)) {
        if let Some(nb) = d.nulls() {
            let b = nb.buffer();
            add(b.as_ptr(), b.len());
        }
        for b in d.buffers() {
            add(b.as_ptr(), b.len());
        }
        if !matches!(d.data_type(), DataType::Dictionary(..)) {
            for c in d.child_data() {
                walk(c, add);
            }
        }
    }
    walk(data, &mut add);
    if lo > hi { 0..0 } else { lo..hi }
}

/// The byte range of `s` inside the mapping that starts at `base`.
fn range_of<T>(s: &[T], base: usize) -> std::ops::Range<usize> {
    let a = (s.as_ptr() as usize).saturating_sub(base);
    a..a + std::mem::size_of_val(s)
}

fn decode(
    buffer: &Buffer,
    manifest: &Manifest,
    source: &Source<'_>,
) -> Result<(SchemaRef, Vec<Partition>), String> {
    let n = buffer.len();
    source.need(&[0..ARROW_MAGIC_PADDED.len(), n - 10..n])?;
    if buffer[..6] != ARROW_MAGIC_PADDED[..6] {
        return Err("not an Arrow IPC file (bad magic bytes)".into());
    }
    let trailer: [u8; 10] = buffer[n - 10..].try_into().expect("10 bytes");
    let footer_len = read_footer_length(trailer).map_err(|e| e.to_string())?;
    if footer_len + 10 + ARROW_MAGIC_PADDED.len() > n {
        return Err("footer length exceeds file".into());
    }
    let footer_bytes = n - 10 - footer_len..n - 10;
    source.need(std::slice::from_ref(&footer_bytes))?;
    let footer =
        root_as_footer(&buffer[footer_bytes]).map_err(|e| format!("unreadable footer: {e}"))?;
    let schema = try_fb_to_schema(footer.schema().ok_or("footer has no schema")?)
        .map_err(|e| format!("footer schema: {e}"))?;
    let schema = Arc::new(schema);
    check_schema(&schema, manifest)?;
    let mut decoder =
        FileDecoder::new(schema.clone(), footer.version()).with_require_alignment(true);
    let whole_block = |b: &Block| {
        let start = usize::try_from(b.offset()).unwrap_or(n).min(n);
        let len = usize::try_from(b.metaDataLength())
            .unwrap_or(0)
            .saturating_add(usize::try_from(b.bodyLength()).unwrap_or(0));
        start..start.saturating_add(len).min(n)
    };
    let dictionaries: Vec<_> = footer
        .dictionaries()
        .iter()
        .flatten()
        .map(whole_block)
        .collect();
    source.need(&dictionaries)?;
    for block in footer.dictionaries().iter().flatten() {
        let (data, meta) = block_slice(buffer, block)?;
        check_buffers_in_body(&data, meta).map_err(|e| format!("dictionary: {e}"))?;
        decoder
            .read_dictionary(block, &data)
            .map_err(|e| format!("dictionary: {e}"))?;
    }
    let blocks = footer
        .recordBatches()
        .ok_or("footer lists no record batches")?;
    if blocks.len() != manifest.partitions.len() {
        return Err(format!(
            "{} record batches, manifest lists {} partitions",
            blocks.len(),
            manifest.partitions.len()
        ));
    }
    // Each partition's metadata is read on a page fault of its own; on a
    // cold cache and thousands of partitions (a billion rows) one fault
    // at a time took a second. Asking for them all first lets the disk
    // (or object storage) read them in parallel.
    let metadata: Vec<_> = blocks
        .iter()
        .filter_map(|b| {
            let offset = usize::try_from(b.offset()).ok()?;
            let len = usize::try_from(b.metaDataLength()).ok()?;
            (offset.saturating_add(len) <= n).then_some(offset..offset + len)
        })
        .collect();
    source.hint(&metadata)?;
    let checks = BatchChecks::of(&schema);
    let base = buffer.as_ptr() as usize;
    if checks.layouts.is_some() {
        // SAFETY: every record batch is checked by `check_batch_layout`
        // before it is decoded: buffers inside the block, aligned and long
        // enough for their column's length and type, so building the arrays
        // cannot read out of bounds. Fixed-width values are valid for any
        // bits. The remaining invariants are checked after decoding: string
        // columns are fully validated (offsets, UTF-8), dictionary labels were
        // validated when read above, and dictionary codes are only read
        // through bounds-checked accessors (`CatColumn::get`, Arrow's
        // `TypedDictionaryArray`).
        decoder = unsafe { decoder.with_skip_validation(true) };
    }
    let mut parts = Vec::with_capacity(blocks.len());
    for (i, (block, info)) in blocks.iter().zip(&manifest.partitions).enumerate() {
        if checks.layouts.is_none() {
            // Arrow's full validation reads every value.
            source.need(&[whole_block(block)])?;
        }
        let batch = checks.decode(i, buffer, block, &decoder, info, source)?;
        let (qx, qy) = (coord(&batch, i, QX)?, coord(&batch, i, QY)?);
        if let (Some(x), Some(y)) = (qx.len().checked_sub(1), qy.len().checked_sub(1)) {
            source.need(&[
                range_of(&qx[..1], base),
                range_of(&qx[x..], base),
                range_of(&qy[..1], base),
                range_of(&qy[y..], base),
            ])?;
        }
        check_keys(
            i,
            info,
            &qx,
            &qy,
            parts.last().map(|p: &Partition| p.info.key_max),
        )?;
        if i == 0 {
            check_categories(&batch, manifest)?;
        }
        parts.push(Partition {
            info: info.clone(),
            batch,
            qx,
            qy,
            remote: None,
        });
    }
    Ok((schema, parts))
}

/// A block's bytes (metadata and body) and its metadata length, checked to
/// lie inside the file.
fn block_slice(buffer: &Buffer, b: &Block) -> Result<(Buffer, usize), String> {
    let n = buffer.len();
    let (Ok(start), Ok(meta), Ok(body)) = (
        usize::try_from(b.offset()),
        usize::try_from(b.metaDataLength()),
        usize::try_from(b.bodyLength()),
    ) else {
        return Err("negative block offset or length".into());
    };
    let end = start
        .checked_add(meta)
        .and_then(|e| e.checked_add(body))
        .filter(|&e| e <= n)
        .ok_or_else(|| format!("block at {start} extends past the {n}-byte file"))?;
    Ok((buffer.slice_with_length(start, end - start), meta))
}

/// How the record batches of one schema are checked.
struct BatchChecks {
    /// Packed data (primitive, string and dictionary columns) is decoded
    /// without Arrow's per-value validation, after the layout checks;
    /// anything else (`None`) gets Arrow's full validation.
    layouts: Option<Vec<Layout>>,
    /// String columns, validated in full after a layout-checked decode.
    utf8_cols: Vec<usize>,
    schema: SchemaRef,
}

impl BatchChecks {
    fn of(schema: &SchemaRef) -> BatchChecks {
        BatchChecks {
            layouts: schema
                .fields()
                .iter()
                .map(|f| Layout::of(f.data_type()))
                .collect(),
            utf8_cols: schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.data_type() == &DataType::Utf8)
                .map(|(i, _)| i)
                .collect(),
            schema: schema.clone(),
        }
    }

    /// Partition `i`: its layout checked, decoded, its row count and
    /// strings checked.
    fn decode(
        &self,
        i: usize,
        buffer: &Buffer,
        block: &Block,
        decoder: &FileDecoder,
        info: &PartitionInfo,
        source: &Source<'_>,
    ) -> Result<RecordBatch, String> {
        let (data, meta) = block_slice(buffer, block)?;
        match &self.layouts {
            Some(l) => {
                let rows = check_batch_layout(&data, meta, l)
                    .map_err(|e| format!("partition {i}: {e}"))?;
                if rows as u64 != info.rows {
                    return Err(format!(
                        "partition {i} has {rows} rows, manifest says {}",
                        info.rows
                    ));
                }
            }
            None => {
                check_buffers_in_body(&data, meta).map_err(|e| format!("partition {i}: {e}"))?
            }
        }
        let batch = decoder
            .read_record_batch(block, &data)
            .map_err(|e| format!("partition {i}: {e}"))?
            .ok_or_else(|| format!("partition {i}: empty block"))?;
        if batch.num_rows() as u64 != info.rows {
            return Err(format!(
                "partition {i} has {} rows, manifest says {}",
                batch.num_rows(),
                info.rows
            ));
        }
        if self.layouts.is_some() {
            let base = buffer.as_ptr() as usize;
            let spans: Vec<_> = self
                .utf8_cols
                .iter()
                .map(|&c| column_span(&batch.column(c).to_data(), base, buffer.len()))
                .collect();
            source.need(&spans)?;
            for &c in &self.utf8_cols {
                batch.column(c).to_data().validate_full().map_err(|e| {
                    format!(
                        "partition {i}, column {:?}: {e}",
                        self.schema.field(c).name()
                    )
                })?;
            }
        }
        Ok(batch)
    }
}

/// A quantized coordinate column of partition `i`: UInt32 without nulls.
fn coord(
    batch: &RecordBatch,
    i: usize,
    name: &str,
) -> Result<arrow_buffer::ScalarBuffer<u32>, String> {
    let a = batch
        .column_by_name(name)
        .ok_or_else(|| format!("partition {i}: no {name} column"))?;
    let a = a
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| format!("partition {i}: {name} is not UInt32"))?;
    if a.null_count() > 0 {
        return Err(format!("partition {i}: {name} has nulls"));
    }
    Ok(a.values().clone())
}

/// The first and last rows must agree with the manifest's key range and
/// bounds (two rows per partition, so opening stays O(partitions)), and
/// partitions must follow the curve.
fn check_keys(
    i: usize,
    info: &PartitionInfo,
    qx: &[u32],
    qy: &[u32],
    previous_key_max: Option<u64>,
) -> Result<(), String> {
    let [x0, y0, x1, y1] = info.bounds.quantized;
    for r in [0, qx.len() - 1] {
        let key = crate::geo::hilbert(qx[r], qy[r]);
        if (r == 0 && key != info.key_min) || (r > 0 && key != info.key_max) {
            return Err(format!(
                "partition {i}: row {r} has Hilbert key {key}, manifest range is {}..={}",
                info.key_min, info.key_max
            ));
        }
        if !(x0..=x1).contains(&qx[r]) || !(y0..=y1).contains(&qy[r]) {
            return Err(format!(
                "partition {i}: row {r} lies outside the manifest's bounds"
            ));
        }
    }
    if previous_key_max.is_some_and(|prev| info.key_min < prev) {
        return Err(format!("partition {i} is out of Hilbert order"));
    }
    Ok(())
}

/// The data file's columns must be `_qx`, `_qy` and the manifest's columns,
/// in order, with the types and kinds the manifest records.
fn check_schema(schema: &Schema, manifest: &Manifest) -> Result<(), String> {
    let fields = schema.fields();
    if fields.len() != manifest.columns.len() + 2 {
        return Err(format!(
            "{} columns in the data file, manifest lists {} (plus {QX}, {QY})",
            fields.len(),
            manifest.columns.len()
        ));
    }
    for (f, name) in fields.iter().zip([QX, QY]) {
        if f.name() != name || f.data_type() != &DataType::UInt32 {
            return Err(format!(
                "column {:?} ({}) where {name} (UInt32) belongs",
                f.name(),
                f.data_type()
            ));
        }
    }
    for (f, c) in fields.iter().skip(2).zip(&manifest.columns) {
        let t = f.data_type();
        if f.name() != &c.name || t.to_string() != c.arrow_type || ColumnKind::of(t) != c.kind {
            return Err(format!(
                "column {:?} ({t}) does not match the manifest's {:?} ({}, {:?})",
                f.name(),
                c.name,
                c.arrow_type,
                c.kind
            ));
        }
    }
    Ok(())
}

/// A categorical column's dictionary must hold the manifest's labels.
fn check_categories(batch: &RecordBatch, manifest: &Manifest) -> Result<(), String> {
    for c in &manifest.columns {
        if c.kind != ColumnKind::Categorical {
            continue;
        }
        let labels = batch
            .column_by_name(&c.name)
            .and_then(|a| a.as_dictionary_opt::<Int16Type>())
            .map(|d| d.values().clone())
            .ok_or_else(|| format!("column {:?} is not a dictionary", c.name))?;
        let labels = labels
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column {:?}: labels are not strings", c.name))?;
        let same = labels.len() == c.categories.len()
            && labels
                .iter()
                .zip(&c.categories)
                .all(|(l, m)| l == Some(m.as_str()));
        if !same {
            return Err(format!(
                "column {:?}: the data file's {} labels differ from the manifest's {} categories",
                c.name,
                labels.len(),
                c.categories.len()
            ));
        }
    }
    Ok(())
}
