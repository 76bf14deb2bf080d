//! The set of served datasets, swapped atomically on reload.

use super::ApiError;
use crate::store::remote::{self, ObjectCache};
use crate::store::{Dataset, MANIFEST_FILE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A served dataset plus a generation number that changes whenever it is
/// (re)loaded, so caches never serve pixels of a replaced dataset.
#[derive(Debug)]
pub struct Entry {
    /// The one name the dataset is known by everywhere — routes,
    /// `/datasets`, TileJSON, the explorer — which is its directory's name
    /// (the manifest's `name` is only where it was packed first, and a
    /// copied or renamed directory would otherwise advertise a dead route).
    pub name: String,
    /// The mapped dataset. Requests in flight hold their own `Arc`, so a
    /// replaced dataset stays mapped until they finish.
    pub dataset: Dataset,
    /// Load generation.
    pub generation: u64,
}

impl Entry {
    /// Hold the dataset's files for a read outside a compute job (see
    /// [`crate::store::files`]). A handler's planning reads the mapped
    /// coordinates too (the binary searches of [`crate::query::rows_in`]),
    /// and for a remote dataset that read fetches them: only a holder's
    /// reads are fenced against a changed file, and the object cache is
    /// trimmed back under its bound when the last holder leaves.
    pub fn reading(&self) -> Result<crate::store::files::ReadGuard<'_>, ApiError> {
        self.dataset
            .files
            .enter()
            .map_err(|r| ApiError::unavailable(format!("{}: {r}", self.name)))
    }

    /// Runs a handler's planning `f` (binary searches over the mapped
    /// coordinates, zone maps) over the dataset while [`Entry::reading`].
    /// A remote dataset's reads there are object fetches that block their
    /// thread: they run on tokio's blocking pool, so a slow or cold bucket
    /// never holds a runtime worker (and with it `/health` and every other
    /// request on that worker). A local dataset's searches take
    /// microseconds and run in place.
    pub async fn planning<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Dataset) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        if !self.dataset.is_remote() {
            let _inside = self.reading()?;
            return Ok(f(&self.dataset));
        }
        let entry = self.clone();
        tokio::task::spawn_blocking(move || {
            let _inside = entry.reading()?;
            Ok(f(&entry.dataset))
        })
        .await
        .map_err(|e| ApiError::internal(format!("planning {}: {e}", self.name)))?
    }

    /// [`crate::query::rows_in`], as [`Entry::planning`].
    pub async fn rows_in(self: &Arc<Self>, ranges: Vec<(u64, u64)>) -> Result<u64, ApiError> {
        self.planning(move |ds| crate::query::rows_in(ds, &ranges))
            .await
    }

    /// [`crate::query::rows_in_bbox`], as [`Entry::planning`].
    pub async fn rows_in_bbox(
        self: &Arc<Self>,
        bbox: Option<crate::geo::MercatorBox>,
    ) -> Result<u64, ApiError> {
        self.planning(move |ds| crate::query::rows_in_bbox(ds, bbox.as_ref()))
            .await
    }
}

/// Datasets by name.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Served datasets.
    pub datasets: BTreeMap<String, Arc<Entry>>,
    /// Datasets that failed to open, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Whether a name is safe as a dataset name: no path tricks, URL-safe.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Catalog {
    /// Scan the roots: a root holding a manifest is one dataset; any other
    /// directory is a catalog whose sub-directories are datasets. Datasets
    /// that fail to open are reported and skipped. Entries whose data did not
    /// change (same manifest creation time and size) keep their mapping.
    ///
    /// A root `s3://BUCKET/PREFIX` is read from object storage through
    /// `objects` ([`remote`]): a dataset when the prefix holds a manifest,
    /// otherwise a catalog of the sub-prefixes that do.
    pub fn load(
        roots: &[PathBuf],
        previous: Option<&Catalog>,
        objects: &Arc<ObjectCache>,
    ) -> Catalog {
        let mut cat = Catalog::default();
        for root in roots {
            if remote::is_remote(root) {
                cat.add_remote(root, previous, objects);
            } else if root.join(MANIFEST_FILE).is_file() {
                cat.add(root, previous);
            } else {
                match std::fs::read_dir(root) {
                    Ok(entries) => {
                        let mut dirs: Vec<PathBuf> = entries
                            .flatten()
                            .map(|e| e.path())
                            .filter(|p| p.is_dir() && p.join(MANIFEST_FILE).is_file())
                            .collect();
                        dirs.sort();
                        for d in dirs {
                            cat.add(&d, previous);
                        }
                    }
                    Err(e) => cat.errors.push((root.clone(), e.to_string())),
                }
            }
        }
        cat
    }

    /// Whether any root on object storage failed to open, or serves a
    /// dataset whose object changed: worth retrying.
    pub fn remote_needs_retry(&self) -> bool {
        self.errors
            .iter()
            .any(|(p, _)| p.to_str().is_some_and(|s| s.starts_with(remote::SCHEME)))
            || self
                .datasets
                .values()
                .any(|e| e.dataset.origin.is_some() && e.dataset.files.retired().is_some())
    }

    fn add_remote(&mut self, root: &Path, previous: Option<&Catalog>, objects: &Arc<ObjectCache>) {
        let url = root.to_string_lossy().to_string();
        let found = match remote::list(objects, &url) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(url = %url, error = %e, "skipping object storage that failed to list");
                self.errors.push((root.to_path_buf(), e.to_string()));
                return;
            }
        };
        let (bucket, _) = remote::parse_url(&url).unwrap_or_default();
        for (name, prefix) in found {
            let here = PathBuf::from(format!("{}{bucket}/{prefix}", remote::SCHEME));
            if !self.admits(&name, &here) {
                continue;
            }
            let text = match remote::manifest_bytes(objects, &bucket, &prefix) {
                Ok(text) => text,
                Err(e) => {
                    self.insert(name, here, Err(e));
                    continue;
                }
            };
            let prev = previous.and_then(|p| p.datasets.get(&name)).filter(|prev| {
                let same = prev
                    .dataset
                    .origin
                    .as_ref()
                    .is_some_and(|o| Path::new(&o.url) == here && text[..] == o.manifest[..]);
                same && prev.dataset.files.retired().is_none()
            });
            if let Some(prev) = prev {
                self.datasets.insert(name, prev.clone());
                continue;
            }
            self.insert(name, here, remote::open(objects, &bucket, &prefix, text));
        }
    }

    fn add(&mut self, dir: &Path, previous: Option<&Catalog>) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // Hidden directories are temporary packs in progress.
        if name.starts_with('.') || !self.admits(&name, dir) {
            return;
        }
        let fingerprint = std::fs::read(dir.join(MANIFEST_FILE)).ok();
        if let (Some(prev), Some(fp)) = (previous.and_then(|p| p.datasets.get(&name)), &fingerprint)
        {
            let same_dir = prev.dataset.dir == dir;
            let same_manifest = serde_json::from_slice::<crate::store::Manifest>(fp)
                .map(|m| m == prev.dataset.manifest)
                .unwrap_or(false);
            if same_dir && same_manifest && prev.dataset.files.retired().is_none() {
                self.datasets.insert(name, prev.clone());
                return;
            }
        }
        self.insert(name, dir.to_path_buf(), Dataset::open(dir));
    }

    /// Whether `name` (of the dataset at `from`) may be served: a valid
    /// name, not taken yet. Otherwise the reason is reported.
    fn admits(&mut self, name: &str, from: &Path) -> bool {
        let why = if !valid_name(name) {
            format!("invalid dataset name {name:?}")
        } else if self.datasets.contains_key(name) {
            format!("duplicate dataset name {name:?}")
        } else {
            return true;
        };
        self.errors.push((from.to_path_buf(), why));
        false
    }

    /// Serve a newly opened dataset under `name`, or report why `from`
    /// could not be opened.
    fn insert(
        &mut self,
        name: String,
        from: PathBuf,
        opened: Result<Dataset, crate::store::StoreError>,
    ) {
        match opened {
            Ok(dataset) => {
                let leased = dataset.files.take_leases();
                tracing::info!(dataset = %name, from = %from.display(), rows = dataset.rows(), leased, "dataset loaded");
                self.datasets.insert(
                    name.clone(),
                    Arc::new(Entry {
                        name,
                        dataset,
                        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
                    }),
                );
            }
            Err(e) => {
                tracing::error!(path = %from.display(), error = %e, "skipping dataset that failed to open");
                self.errors.push((from, e.to_string()));
            }
        }
    }
}
