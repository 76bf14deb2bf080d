//! Packed datasets on S3-compatible object storage, read through a local
//! disk cache.
//!
//! A remote dataset is served from the same memory mapping as a local one,
//! so every query path stays zero-copy: the cache holds a **sparse** copy of
//! `data.arrow`, as long as the object, into which byte ranges are written
//! as requests need them. What is where:
//!
//! - At open, `manifest.json`, the overview and the cell statistics are
//!   fetched whole (they are small, and answer the low zooms); of the data
//!   file, only its footer, the metadata of every record batch and the
//!   dictionaries, which is what decoding needs.
//! - A query's columns are fetched per partition, one HTTP range request
//!   per column chunk, coalesced and fetched in parallel
//!   ([`object_store::coalesce_ranges`]) when a scan names its spans first
//!   ([`crate::store::Dataset::prefetch_spans`]), and one chunk at a time
//!   when a path reads a column without announcing it
//!   ([`crate::store::Partition::column`] fetches on first use).
//! - Every range is asked for with `If-Match` on the ETag the data file had
//!   at open, so one dataset never mixes two versions: an object replaced
//!   under the server fails the request (503) and retires the dataset until
//!   it is reloaded, which opens the new version in a cache directory of its
//!   own. In a bucket that keeps versions, ranges are read from the version
//!   opened, so an upload does not disturb the server at all until it
//!   reloads. A response shorter than asked is refused too.
//! - The cache is byte-bounded, least recently used first. Fetched chunks
//!   are listed in an index with their CRC-32, rewritten atomically (a
//!   temporary file, then rename) after every fetch; a chunk is listed only
//!   once its bytes are written, and checked against its CRC the first time
//!   a restarted server uses it, so a torn or corrupted cache entry is
//!   dropped and fetched again. Eviction punches holes in the sparse file,
//!   and runs only while no request reads the dataset
//!   ([`crate::store::FileWatch`] holds new readers back for the few
//!   milliseconds it takes), so no scan can see a chunk vanish under it.
//!
//! A storage error in the middle of a scan cannot be returned through the
//! engine's plain slice accessors, so it unwinds with an [`Unavailable`]
//! payload ([`std::panic::resume_unwind`], which runs no panic hook), and
//! the server's compute boundary turns it into 503 with `Retry-After`. No
//! partial result is cached: the unwinding skips every cache insert.

use super::{DATA_FILE, Dataset, MANIFEST_FILE, Manifest, OVERVIEW_FILE, STATS_FILE, StoreError};
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig,
};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// URL scheme of datasets on S3-compatible storage.
pub const SCHEME: &str = "s3://";

/// The index of fetched ranges in a cache directory.
const INDEX_FILE: &str = "chunks.json";

/// Ranges closer than this are fetched by one request.
const COALESCE: u64 = 1 << 20;

/// A request's data could not be fetched from object storage: the payload a
/// scan unwinds with, answered with 503 and `Retry-After`.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

/// Whether `root` names object storage rather than a local path.
pub fn is_remote(root: &Path) -> bool {
    root.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

/// The disk cache shared by every remote dataset of a process, and the
/// S3 settings they are opened with.
#[derive(Debug)]
pub struct ObjectCache {
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    options: BTreeMap<String, String>,
    timeout: Duration,
}

impl ObjectCache {
    /// A cache in `dir` bounded to `limit_mb` MiB. `options` override the
    /// S3 settings read from the standard `AWS_*` environment variables
    /// (keys as `object_store`'s `AmazonS3ConfigKey` spells them:
    /// `endpoint`, `allow_http`, `region`, ...). Requests to storage time
    /// out after `timeout`.
    pub fn new(
        dir: PathBuf,
        limit_mb: u64,
        options: BTreeMap<String, String>,
        timeout: Duration,
    ) -> ObjectCache {
        ObjectCache {
            dir,
            limit: limit_mb.saturating_mul(1 << 20),
            used: AtomicU64::new(0),
            clock: AtomicU64::new(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            options,
            timeout,
        }
    }

    /// Bytes of fetched data the cache holds now.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The cache's byte bound.
    pub fn limit_bytes(&self) -> u64 {
        self.limit
    }

    /// Reads of a column chunk that found it in the cache.
    pub fn chunk_hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Reads of a column chunk that had to fetch it.
    pub fn chunk_misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in &self.options {
            let key: AmazonS3ConfigKey = k
                .parse()
                .map_err(|_| format!("unknown S3 setting {k:?} in the configuration"))?;
            b = b.with_config(key, v.clone());
        }
        // Retries stay inside one request's deadline: a tile is worth
        // retrying once, not for object_store's default three minutes.
        // Set through the config keys, so that the client settings from
        // the environment (AWS_ALLOW_HTTP, proxies) stay.
        let client = |k: ClientConfigKey| AmazonS3ConfigKey::Client(k);
        let ms = self.timeout.as_millis().max(1);
        for (key, value) in [
            (ClientConfigKey::Timeout, format!("{ms}ms")),
            (
                ClientConfigKey::ConnectTimeout,
                format!("{}ms", ms.min(5000)),
            ),
        ] {
            if b.get_config_value(&client(key)).is_none() {
                b = b.with_config(client(key), value);
            }
        }
        let b = b.with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: self.timeout,
        });
        // The builder's errors name settings, never their values.
        b.build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| format!("S3 configuration: {e}"))
    }
}

/// Split `s3://bucket/prefix` into the bucket and the prefix (no slashes at
/// either end).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix(SCHEME)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// The process's runtime for storage I/O. Scans run on rayon threads and
/// block on their fetches; one runtime, never dropped, serves them all.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pointillist-s3")
            .enable_all()
            .build()
            .expect("a tokio runtime for object storage")
    })
}

/// Run a storage future to completion from synchronous code, on or off
/// another runtime's thread.
fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| runtime().block_on(f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        runtime().block_on(f)
    }
}

/// A readable description of a storage error: names the bucket and object,
/// never a credential.
fn describe(bucket: &str, e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => "not found".to_string(),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            format!(
                "access to bucket {bucket:?} denied: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            )
        }
        object_store::Error::Precondition { .. } => {
            "the object changed since the dataset was opened (its ETag differs)".to_string()
        }
        e => e.to_string(),
    }
}

/// The object `file` under `prefix` (the bucket's root when empty).
fn object_key(prefix: &str, file: &str) -> ObjPath {
    ObjPath::from(if prefix.is_empty() {
        file.to_string()
    } else {
        format!("{prefix}/{file}")
    })
}

/// The datasets under `url`: the prefix itself when it holds a manifest,
/// otherwise each sub-prefix that does. Returns `(name, prefix)` pairs.
pub fn list(cache: &ObjectCache, url: &str) -> Result<Vec<(String, String)>, StoreError> {
    let remote = |message: String| StoreError::Remote {
        url: url.to_string(),
        message,
    };
    let (bucket, prefix) =
        parse_url(url).ok_or_else(|| remote("expected s3://BUCKET[/PREFIX]".into()))?;
    let store = cache.store(&bucket).map_err(remote)?;
    let head = block_on(store.head(&object_key(&prefix, MANIFEST_FILE)));
    match head {
        Ok(_) => {
            let name = prefix.rsplit('/').next().filter(|n| !n.is_empty());
            return Ok(vec![(name.unwrap_or(&bucket).to_string(), prefix)]);
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(remote(describe(&bucket, &e))),
    }
    let dir = (!prefix.is_empty()).then(|| ObjPath::from(prefix.as_str()));
    let listing = block_on(store.list_with_delimiter(dir.as_ref()))
        .map_err(|e| remote(describe(&bucket, &e)))?;
    let mut out = Vec::new();
    for p in listing.common_prefixes {
        let sub = p.to_string();
        let name = sub.rsplit('/').next().unwrap_or_default().to_string();
        match block_on(store.head(&object_key(&sub, MANIFEST_FILE))) {
            Ok(_) => out.push((name, sub)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(describe(&bucket, &e))),
        }
    }
    if out.is_empty() {
        return Err(remote(
            "no packed dataset (manifest.json) at or under this prefix".into(),
        ));
    }
    out.sort();
    Ok(out)
}

/// The bytes of the manifest at `s3://bucket/prefix`: a reload compares
/// them with the served dataset's, to keep what did not change, and hands
/// them to [`open`] otherwise.
pub fn manifest_bytes(
    cache: &ObjectCache,
    bucket: &str,
    prefix: &str,
) -> Result<Bytes, StoreError> {
    let url = format!("{SCHEME}{bucket}/{prefix}");
    let remote = |message: String| StoreError::Remote {
        url: url.clone(),
        message,
    };
    let store = cache.store(bucket).map_err(remote)?;
    let key = object_key(prefix, MANIFEST_FILE);
    block_on(async { store.get(&key).await?.bytes().await })
        .map_err(|e| remote(describe(bucket, &e)))
}

/// What a remote dataset was opened from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `s3://bucket/prefix` of the dataset.
    pub url: String,
    /// The manifest's bytes as fetched (a reload compares them).
    pub manifest: Vec<u8>,
}

/// Open the dataset at `s3://bucket/prefix` (from [`list`]), whose
/// manifest is `text` (from [`manifest_bytes`]).
pub fn open(
    cache: &Arc<ObjectCache>,
    bucket: &str,
    prefix: &str,
    text: Bytes,
) -> Result<Dataset, StoreError> {
    let url = format!("{SCHEME}{bucket}/{prefix}");
    let remote = |message: String| StoreError::Remote {
        url: url.clone(),
        message,
    };
    let store = cache.store(bucket).map_err(remote)?;
    let key = |f: &str| object_key(prefix, f);
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| StoreError::Manifest {
        path: PathBuf::from(format!("{url}/{MANIFEST_FILE}")),
        message: e.to_string(),
    })?;
    let data_key = key(DATA_FILE);
    let meta = block_on(store.head(&data_key)).map_err(|e| remote(describe(bucket, &e)))?;
    if meta.size != manifest.data_bytes {
        return Err(remote(format!(
            "{DATA_FILE} is {} bytes, its manifest says {}: an upload in progress, or a mixed copy",
            meta.size, manifest.data_bytes
        )));
    }
    let etag = meta.e_tag.clone();
    let version = meta.version.clone();
    // One directory per object and version: two versions never share one.
    let pin = hex::encode(
        &sha2::Sha256::digest(
            format!("{}|{}", etag.as_deref().unwrap_or(""), manifest.version()).as_bytes(),
        )[..8],
    );
    let place = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
    let parent = cache.dir.join(&place);
    let dir = parent.join(&pin);
    let io = |path: &Path, source: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    // Older versions of this dataset are of no further use: a server still
    // mapping one keeps its inodes until it lets go.
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for e in entries.flatten() {
            if e.file_name() != pin.as_str() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    write_atomic(&dir.join(MANIFEST_FILE), &text).map_err(|e| io(&dir.join(MANIFEST_FILE), e))?;
    let mut whole = Vec::new();
    if let Some(o) = &manifest.overview {
        whole.push((OVERVIEW_FILE, o.bytes));
    }
    if let Some(s) = &manifest.stats {
        whole.push((STATS_FILE, s.bytes));
    }
    let data_path = dir.join(DATA_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&data_path)
        .map_err(|e| io(&data_path, e))?;
    let mut index = Index::load(&dir, &file);
    for (file, bytes) in &whole {
        let path = dir.join(file);
        let listed = index.files.get(*file).copied();
        if listed.is_none() || file_crc(&path, *bytes) != listed {
            let body = block_on(async { store.get(&key(file)).await?.bytes().await })
                .map_err(|e| remote(describe(bucket, &e)))?;
            if body.len() as u64 != *bytes {
                return Err(remote(format!(
                    "{file} is {} bytes, its manifest says {bytes}",
                    body.len()
                )));
            }
            write_atomic(&path, &body).map_err(|e| io(&path, e))?;
            index.files.insert(file.to_string(), crc32fast::hash(&body));
        }
    }
    let len = file.metadata().map_err(|e| io(&data_path, e))?.len();
    if len != manifest.data_bytes {
        file.set_len(0).map_err(|e| io(&data_path, e))?;
        file.set_len(manifest.data_bytes)
            .map_err(|e| io(&data_path, e))?;
        index.pinned.clear();
        index.chunks.clear();
    }
    let lazy = Arc::new(Lazy {
        cache: cache.clone(),
        store,
        url: format!("{url}/{DATA_FILE}"),
        bucket: bucket.to_string(),
        key: data_key,
        etag,
        version,
        file,
        dir: dir.clone(),
        index: Mutex::new(index),
        chunks: OnceLock::new(),
        changed: Mutex::new(None),
        over: AtomicBool::new(false),
    });
    let mut ds = Dataset::open_remote(&dir, manifest, lazy.clone())?;
    ds.origin = Some(Origin {
        url,
        manifest: text.to_vec(),
    });
    lazy.persist();
    Ok(ds)
}

/// Write `bytes` to `path` through a temporary file in the same directory
/// and a rename, so the path holds either nothing or all of it.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The CRC-32 of a whole file, if it has the expected size.
fn file_crc(path: &Path, bytes: u64) -> Option<u32> {
    let data = std::fs::read(path).ok()?;
    (data.len() as u64 == bytes).then(|| crc32fast::hash(&data))
}

/// Which ranges of the sparse data file hold fetched bytes, and the CRC-32
/// of the whole files beside it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Index {
    /// Metadata every open needs (footer, record-batch headers,
    /// dictionaries, a few coordinates), kept for the dataset's life:
    /// start → (end, CRC-32).
    pinned: BTreeMap<u64, (u64, u32)>,
    /// Column chunks, evictable: start → (end, CRC-32).
    chunks: BTreeMap<u64, (u64, u32)>,
    files: BTreeMap<String, u32>,
}

impl Index {
    /// The index of a cache directory; pinned ranges whose bytes no longer
    /// match (a torn write, a hole punched by an eviction) are dropped and
    /// fetched again.
    fn load(dir: &Path, file: &File) -> Index {
        let mut index: Index = std::fs::read(dir.join(INDEX_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        index.pinned.retain(|&start, &mut (end, crc)| {
            let mut buf = vec![0u8; end.saturating_sub(start) as usize];
            read_at(file, &mut buf, start).is_ok() && crc32fast::hash(&buf) == crc
        });
        index
    }
}

/// A chunk's state.
const MISSING: u8 = 0;
/// Listed in the index by an earlier run, not yet checked against its CRC.
const UNCHECKED: u8 = 1;
const PRESENT: u8 = 2;

/// The bytes of one column of one partition.
#[derive(Debug)]
struct Chunk {
    range: Range<u64>,
    state: AtomicU8,
    used: AtomicU64,
    lock: Mutex<()>,
}

/// The fetching side of one remote dataset's sparse data file.
pub(crate) struct Lazy {
    cache: Arc<ObjectCache>,
    store: Arc<dyn ObjectStore>,
    url: String,
    bucket: String,
    key: ObjPath,
    etag: Option<String>,
    /// The object version opened, where the bucket keeps versions: ranges
    /// are then read from it, so an upload over the object does not
    /// disturb a running server until it reloads.
    version: Option<String>,
    file: File,
    dir: PathBuf,
    index: Mutex<Index>,
    /// `[partition][column]`, once decoding has placed the columns.
    chunks: OnceLock<Vec<Vec<Chunk>>>,
    /// Why the dataset may no longer be read (its object changed).
    changed: Mutex<Option<String>>,
    /// Whether the cache grew past its bound since the last eviction.
    over: AtomicBool,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Lazy {
    /// Fetch the ranges (byte offsets of the data file) not yet on disk;
    /// kept for the dataset's life. Used while opening.
    pub(crate) fn need(&self, ranges: &[Range<usize>]) -> Result<(), String> {
        let missing: Vec<Range<u64>> = {
            let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            ranges
                .iter()
                .filter(|r| r.start < r.end)
                .map(|r| r.start as u64..r.end as u64)
                .filter(|r| {
                    !index
                        .pinned
                        .range(..=r.start)
                        .next_back()
                        .is_some_and(|(&s, &(e, _))| s <= r.start && r.end <= e)
                })
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let got = self.fetch(&missing)?;
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        for (r, bytes) in missing.iter().zip(&got) {
            index
                .pinned
                .insert(r.start, (r.end, crc32fast::hash(bytes)));
        }
        Ok(())
    }

    /// Fetch `ranges` with `If-Match` on the opened version, coalesced and
    /// in parallel, and write them into the sparse file.
    fn fetch(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, String> {
        if let Some(why) = self.changed() {
            return Err(why);
        }
        let store = &self.store;
        let key = &self.key;
        let etag = &self.etag;
        let version = &self.version;
        let got = block_on(object_store::coalesce_ranges(
            ranges,
            |r: Range<u64>| async move {
                let opts = GetOptions {
                    if_match: etag.clone(),
                    version: version.clone(),
                    range: Some(GetRange::Bounded(r.clone())),
                    ..GetOptions::default()
                };
                let res = store.get_opts(key, opts).await?;
                // A server that ignores If-Match still reports the ETag.
                if etag.is_some() && res.meta.e_tag.is_some() && res.meta.e_tag != *etag {
                    return Err(object_store::Error::Precondition {
                        path: key.to_string(),
                        source: "ETag differs".into(),
                    });
                }
                res.bytes().await
            },
            COALESCE,
        ));
        let got = got.map_err(|e| {
            let why = format!("{}: {}", self.url, describe(&self.bucket, &e));
            if matches!(e, object_store::Error::Precondition { .. }) {
                tracing::error!(url = %self.url, "object changed under the server; dataset retired until reloaded");
                *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
            }
            why
        })?;
        for (r, bytes) in ranges.iter().zip(&got) {
            if bytes.len() as u64 != r.end - r.start {
                return Err(format!(
                    "{}: truncated response: {} bytes for range {}..{}",
                    self.url,
                    bytes.len(),
                    r.start,
                    r.end
                ));
            }
        }
        for (r, bytes) in ranges.iter().zip(&got) {
            if let Err(e) = write_at(&self.file, bytes, r.start) {
                // Whatever part reached the disk is not listed, so it is
                // never read as data; free it.
                punch(&self.file, r.start, r.end - r.start);
                return Err(format!("object cache {}: {e}", self.dir.display()));
            }
        }
        metrics::counter!("pointillist_object_bytes_fetched_total")
            .increment(got.iter().map(|b| b.len() as u64).sum());
        metrics::counter!("pointillist_object_ranges_fetched_total").increment(got.len() as u64);
        Ok(got)
    }

    /// Why the dataset may no longer be read, if its object changed.
    pub(crate) fn changed(&self) -> Option<String> {
        self.changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Place the column chunks once the partitions are decoded:
    /// `spans[partition][column]` are byte ranges of the data file.
    pub(crate) fn place(&self, spans: Vec<Vec<Range<u64>>>) {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let mut used = 0;
        let chunks = spans
            .into_iter()
            .map(|cols| {
                cols.into_iter()
                    .map(|range| {
                        let listed = index
                            .chunks
                            .get(&range.start)
                            .is_some_and(|&(e, _)| e == range.end);
                        if listed {
                            used += range.end - range.start;
                        }
                        Chunk {
                            range,
                            state: AtomicU8::new(if listed { UNCHECKED } else { MISSING }),
                            used: AtomicU64::new(0),
                            lock: Mutex::new(()),
                        }
                    })
                    .collect()
            })
            .collect();
        self.cache.used.fetch_add(used, Ordering::Relaxed);
        let _ = self.chunks.set(chunks);
    }

    /// Make the chunks of `columns` of `partition` readable, fetching what
    /// is missing. A failure unwinds with [`Unavailable`].
    pub(crate) fn ensure(&self, partition: usize, columns: &[usize]) {
        self.ensure_many(&mut columns.iter().map(|&c| (partition, c)));
    }

    /// [`Lazy::ensure`] for many `(partition, column)` pairs at once: one
    /// batch of coalesced, parallel range requests.
    pub(crate) fn ensure_many(&self, pairs: &mut dyn Iterator<Item = (usize, usize)>) {
        let Some(chunks) = self.chunks.get() else {
            return;
        };
        let tick = self.cache.tick();
        let mut missing: Vec<(usize, usize)> = Vec::new();
        let mut hits = 0;
        for (p, c) in pairs {
            let Some(ch) = chunks.get(p).and_then(|cols| cols.get(c)) else {
                continue;
            };
            ch.used.store(tick, Ordering::Relaxed);
            if ch.state.load(Ordering::Acquire) != PRESENT {
                missing.push((p, c));
            } else {
                hits += 1;
            }
        }
        if hits > 0 {
            self.cache.hits.fetch_add(hits, Ordering::Relaxed);
        }
        if missing.is_empty() {
            return;
        }
        self.cache
            .misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        if let Err(why) = self.fill(chunks, missing) {
            metrics::counter!("pointillist_object_errors_total").increment(1);
            std::panic::resume_unwind(Box::new(Unavailable(why)));
        }
    }

    fn fill(&self, chunks: &[Vec<Chunk>], mut missing: Vec<(usize, usize)>) -> Result<(), String> {
        // Locks are taken in one global order, so two scans needing
        // overlapping chunks cannot deadlock; the second waits for the
        // first's fetch and finds the chunks present.
        missing.sort_unstable();
        missing.dedup();
        let _locks: Vec<_> = missing
            .iter()
            .map(|&(p, c)| chunks[p][c].lock.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let mut todo = Vec::new();
        for &(p, c) in &missing {
            let ch = &chunks[p][c];
            match ch.state.load(Ordering::Acquire) {
                PRESENT => {}
                UNCHECKED if self.intact(ch) => ch.state.store(PRESENT, Ordering::Release),
                UNCHECKED => {
                    tracing::warn!(dir = %self.dir.display(), offset = ch.range.start, "object cache entry corrupted; fetching it again");
                    self.unlist(ch);
                    todo.push(ch);
                }
                _ => todo.push(ch),
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let ranges: Vec<Range<u64>> = todo.iter().map(|ch| ch.range.clone()).collect();
        let got = self.fetch(&ranges)?;
        let mut added = 0;
        {
            let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            for (ch, bytes) in todo.iter().zip(&got) {
                index
                    .chunks
                    .insert(ch.range.start, (ch.range.end, crc32fast::hash(bytes)));
                ch.state.store(PRESENT, Ordering::Release);
                added += bytes.len() as u64;
            }
        }
        self.persist();
        let used = self.cache.used.fetch_add(added, Ordering::Relaxed) + added;
        if used > self.cache.limit {
            self.over.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether a chunk listed by an earlier run still holds its bytes.
    fn intact(&self, ch: &Chunk) -> bool {
        let crc = {
            let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            index.chunks.get(&ch.range.start).map(|&(_, crc)| crc)
        };
        let mut buf = vec![0u8; (ch.range.end - ch.range.start) as usize];
        crc.is_some()
            && read_at(&self.file, &mut buf, ch.range.start).is_ok()
            && crc == Some(crc32fast::hash(&buf))
    }

    fn unlist(&self, ch: &Chunk) {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if index.chunks.remove(&ch.range.start).is_some() {
            self.cache
                .used
                .fetch_sub(ch.range.end - ch.range.start, Ordering::Relaxed);
        }
    }

    /// Write the index (atomically). Failing to is harmless: the next run
    /// fetches again what it does not list.
    fn persist(&self) {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(bytes) = serde_json::to_vec(&*index) {
            if let Err(e) = write_atomic(&self.dir.join(INDEX_FILE), &bytes) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the object cache index");
            }
        }
    }

    /// Whether [`Lazy::evict`] has work.
    pub(crate) fn wants_eviction(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }

    /// Drop least recently used chunks until the cache is back under its
    /// bound. Only called while no request reads the dataset.
    pub(crate) fn evict(&self) {
        self.over.store(false, Ordering::Relaxed);
        let Some(chunks) = self.chunks.get() else {
            return;
        };
        let limit = self.cache.limit;
        if self.cache.used.load(Ordering::Relaxed) <= limit {
            return;
        }
        let mut held: Vec<&Chunk> = chunks
            .iter()
            .flatten()
            .filter(|c| c.state.load(Ordering::Acquire) != MISSING)
            .collect();
        held.sort_unstable_by_key(|c| c.used.load(Ordering::Relaxed));
        let mut dropped = 0u64;
        for ch in held {
            if self.cache.used.load(Ordering::Relaxed) <= limit {
                break;
            }
            ch.state.store(MISSING, Ordering::Release);
            self.unlist(ch);
            punch(&self.file, ch.range.start, ch.range.end - ch.range.start);
            dropped += ch.range.end - ch.range.start;
        }
        if dropped > 0 {
            metrics::counter!("pointillist_object_cache_evicted_bytes_total").increment(dropped);
            self.persist();
        }
    }
}

impl Drop for Lazy {
    fn drop(&mut self) {
        // The bytes stay on disk for the next run, but no longer count
        // against this process's bound.
        if let Some(chunks) = self.chunks.get() {
            let held: u64 = chunks
                .iter()
                .flatten()
                .filter(|c| c.state.load(Ordering::Relaxed) != MISSING)
                .map(|c| c.range.end - c.range.start)
                .sum();
            self.cache
                .used
                .fetch_sub(held.min(self.cache.used_bytes()), Ordering::Relaxed);
        }
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn write_at(_: &File, _: &[u8], _: u64) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the object cache needs a Unix file system",
    ))
}

#[cfg(not(unix))]
fn read_at(_: &File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the object cache needs a Unix file system",
    ))
}

/// Give a range of the sparse file back to the file system. Only ranges no
/// reader can be inside are punched (see the module docs).
#[cfg(target_os = "linux")]
fn punch(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: fallocate on a descriptor `file` owns and keeps open; it takes
    // integers only and touches no memory of ours. The mapping of the file
    // reads zeros where a hole is punched, which is memory-safe, and the
    // punched ranges are marked missing before this call, so nothing reads
    // them as data again before they are fetched.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            n,
        )
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not punch a hole in the object cache");
    }
}

#[cfg(not(target_os = "linux"))]
fn punch(_: &File, _: u64, _: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://data/packs/towers/"),
            Some(("data".into(), "packs/towers".into()))
        );
        assert_eq!(parse_url("s3://data"), Some(("data".into(), String::new())));
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(parse_url("/local/dir"), None);
        assert!(is_remote(Path::new("s3://b/p")));
        assert!(!is_remote(Path::new("data/s3:")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_punched_range_reads_zeros_and_keeps_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 3 * 4096]).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        punch(&f, 4096, 4096);
        let back = std::fs::read(&p).unwrap();
        assert_eq!(back.len(), 3 * 4096);
        assert!(back[..4096].iter().all(|&b| b == 7));
        assert!(back[4096..8192].iter().all(|&b| b == 0));
        assert!(back[8192..].iter().all(|&b| b == 7));
    }
}
