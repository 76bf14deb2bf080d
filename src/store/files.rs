//! Keeping a mapped dataset safe from its files being changed in place.
//!
//! A dataset's data and overview files are memory-mapped. If another process
//! truncates or rewrites one of them in place (`truncate`, `cp new old`, an
//! editor saving over it), the next read of a page beyond the new end raises
//! SIGBUS, which kills the whole process and every dataset it serves.
//! Replacing a file with `mv` is safe: the mapping keeps the old inode.
//!
//! The design, in two layers:
//!
//! 1. **Read leases** (Linux `fcntl(F_SETLEASE, F_RDLCK)`). While the server
//!    holds a read lease on a file, any `open(O_WRONLY|O_RDWR|O_TRUNC)` or
//!    `truncate(2)` of it by another process *blocks* in the kernel and the
//!    server is sent SIGIO. The server's signal task then [`retire`]s the
//!    dataset: new requests get 503, the requests already reading it finish
//!    (they are bounded by their deadline), and only then are the leases
//!    released, which lets the writer go on. No read of a mapping can race
//!    with the change. The kernel breaks a lease by force after
//!    `/proc/sys/fs/lease-break-time` seconds (45 by default), longer than any
//!    request's deadline.
//! 2. **A size check before every scan**, for files on which no lease could
//!    be taken (another user's files without `CAP_LEASE`, file systems
//!    without leases such as NFS): [`FileWatch::enter`] compares each file's
//!    size with the mapped size and retires the dataset on a mismatch. This
//!    catches every change made between requests, but not a truncation in
//!    the microseconds-to-seconds of a scan already running; that residual
//!    window exists only without leases and is documented.
//!
//! [`retire`]: FileWatch::retire

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether this process may take leases: set once a SIGIO handler is in
/// place (the default action of SIGIO ends the process).
static LEASES_ENABLED: AtomicBool = AtomicBool::new(false);

/// Allow [`FileWatch::take_leases`]. Call only after installing a handler for
/// SIGIO that calls [`FileWatch::lease_breaking`] and [`FileWatch::retire`].
pub fn enable_leases() {
    LEASES_ENABLED.store(true, Ordering::SeqCst);
}

/// How long [`FileWatch::retire`] waits for readers before giving up on
/// them (the kernel's default lease-break time is 45 s).
const RETIRE_WAIT: Duration = Duration::from_secs(40);

/// One mapped file, kept open so that its lease (tied to the descriptor)
/// and its size can be checked.
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    file: File,
    len: u64,
    leased: AtomicBool,
}

/// The mapped files of one dataset and whether it may still be read.
#[derive(Debug, Default)]
pub struct FileWatch {
    files: Vec<Watched>,
    broken: AtomicBool,
    readers: AtomicUsize,
    reason: Mutex<Option<String>>,
    /// A remote dataset's fetcher: its object may change under it, and its
    /// cache is trimmed while no reader is inside.
    remote: std::sync::OnceLock<std::sync::Arc<super::remote::Lazy>>,
    /// Set while the cache is trimmed: new readers wait.
    trimming: AtomicBool,
}

/// A dataset unusable because one of its files changed under it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dataset unavailable: {0}; restore it and reload the catalog")]
pub struct Retired(pub String);

/// Proof that a reader is inside a dataset: while it lives, [`FileWatch::retire`]
/// waits before letting a writer change the files.
#[derive(Debug)]
pub struct ReadGuard<'a>(&'a FileWatch);

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        if self.0.readers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle();
        }
    }
}

impl FileWatch {
    /// Watch `file` (open, read-only) at `path`, mapped with `len` bytes.
    pub(crate) fn add(&mut self, path: &Path, file: File, len: u64) {
        self.files.push(Watched {
            path: path.to_path_buf(),
            file,
            len,
            leased: AtomicBool::new(false),
        });
    }

    /// Fetch a remote dataset's data through `lazy`: its changes retire
    /// the dataset, and its cache is trimmed between readers.
    pub(crate) fn hook(&mut self, lazy: std::sync::Arc<super::remote::Lazy>) {
        let _ = self.remote.set(lazy);
    }

    /// The last reader left: trim a remote dataset's cache if it grew past
    /// its bound. A reader arriving meanwhile waits in [`FileWatch::enter`]
    /// (`trimming` and `readers` are each written before the other is read,
    /// both sequentially consistent, so the two sides cannot both go on).
    fn idle(&self) {
        let Some(lazy) = self.remote.get() else {
            return;
        };
        if !lazy.wants_eviction()
            || self
                .trimming
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        if self.readers.load(Ordering::SeqCst) == 0 {
            lazy.evict();
        }
        self.trimming.store(false, Ordering::SeqCst);
    }

    /// Enter the dataset to read its mappings, or learn why it is retired.
    /// Without a lease on a file, its size is checked first.
    pub fn enter(&self) -> Result<ReadGuard<'_>, Retired> {
        loop {
            self.readers.fetch_add(1, Ordering::SeqCst);
            if !self.trimming.load(Ordering::SeqCst) {
                break;
            }
            // A cache trim is under way: step out until it is done.
            self.readers.fetch_sub(1, Ordering::SeqCst);
            while self.trimming.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        }
        let guard = ReadGuard(self);
        if let Some(why) = self.remote.get().and_then(|l| l.changed()) {
            drop(guard);
            self.mark(why);
            return Err(self.why());
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(self.why());
        }
        for w in &self.files {
            if w.leased.load(Ordering::SeqCst) {
                continue;
            }
            let now = w.file.metadata().map(|m| m.len()).ok();
            if now != Some(w.len) {
                let reason = format!(
                    "{} changed in place (was {} bytes, now {})",
                    w.path.display(),
                    w.len,
                    now.map_or("unreadable".to_string(), |n| format!("{n} bytes"))
                );
                drop(guard);
                self.mark(reason);
                return Err(self.why());
            }
        }
        Ok(guard)
    }

    /// Why the dataset is retired, if it is.
    pub fn retired(&self) -> Option<Retired> {
        if let Some(why) = self.remote.get().and_then(|l| l.changed()) {
            self.mark(why);
        }
        self.broken.load(Ordering::SeqCst).then(|| self.why())
    }

    fn why(&self) -> Retired {
        let r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        Retired(r.clone().unwrap_or_else(|| "a data file changed".into()))
    }

    fn mark(&self, reason: String) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            tracing::error!(reason = %reason, "dataset retired: a mapped file is being changed in place");
            *r = Some(reason);
        }
        self.broken.store(true, Ordering::SeqCst);
    }

    /// Take a read lease on every file (see the module docs); returns how
    /// many were taken. Does nothing until [`enable_leases`] was called.
    pub fn take_leases(&self) -> usize {
        if !LEASES_ENABLED.load(Ordering::SeqCst) {
            return 0;
        }
        let mut n = 0;
        for w in &self.files {
            match lease::take(&w.file) {
                Ok(()) => {
                    w.leased.store(true, Ordering::SeqCst);
                    n += 1;
                }
                Err(e) => tracing::warn!(
                    path = %w.path.display(),
                    error = %e,
                    "no read lease: changes in place are caught by a size check before each scan"
                ),
            }
        }
        n
    }

    /// Whether a writer is waiting on one of this dataset's leases.
    pub fn lease_breaking(&self) -> bool {
        self.files
            .iter()
            .any(|w| w.leased.load(Ordering::SeqCst) && lease::breaking(&w.file))
    }

    /// Stop serving the dataset: new readers are refused, the readers inside
    /// finish (waiting at most 40 s), then the leases are released so that
    /// the writer may go on. Blocks; run it off the async runtime.
    pub fn retire(&self, reason: String) {
        self.mark(reason);
        let start = Instant::now();
        while self.readers.load(Ordering::SeqCst) > 0 && start.elapsed() < RETIRE_WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        for w in &self.files {
            if w.leased.swap(false, Ordering::SeqCst) {
                lease::release(&w.file);
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod lease {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    pub fn take(file: &File) -> std::io::Result<()> {
        // SAFETY: fcntl on a descriptor that `file` owns and keeps open;
        // F_SETLEASE takes an integer argument and touches no memory of ours.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// During a lease break F_GETLEASE reports the lease type the breaker
    /// needs (F_UNLCK for a writer) instead of the one held.
    pub fn breaking(file: &File) -> bool {
        // SAFETY: as in `take`; F_GETLEASE takes no argument.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLEASE) };
        r == libc::F_UNLCK
    }

    pub fn release(file: &File) {
        // SAFETY: as in `take`.
        let _ = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    }
}

#[cfg(not(target_os = "linux"))]
mod lease {
    use std::fs::File;

    pub fn take(_: &File) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "file leases need Linux",
        ))
    }

    pub fn breaking(_: &File) -> bool {
        false
    }

    pub fn release(_: &File) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_in_place_retires_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.arrow");
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        let mut w = FileWatch::default();
        w.add(&p, File::open(&p).unwrap(), 4096);
        drop(w.enter().expect("intact"));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(100)
            .unwrap();
        let e = w.enter().unwrap_err();
        assert!(e.0.contains("changed in place"), "{e}");
        assert!(w.retired().is_some());
        assert_eq!(w.readers.load(Ordering::SeqCst), 0, "refused readers leave");
    }

    #[test]
    fn retire_waits_for_readers() {
        let w = std::sync::Arc::new(FileWatch::default());
        let g = w.enter().unwrap();
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.retire("test".into()));
        // A new reader is refused as soon as retiring began...
        while w.retired().is_none() {
            std::thread::yield_now();
        }
        assert!(w.enter().is_err());
        // ...but retire returns only once the reader inside has left.
        assert!(!t.is_finished());
        drop(g);
        t.join().unwrap();
        assert_eq!(w.readers.load(Ordering::SeqCst), 0);
    }
}
