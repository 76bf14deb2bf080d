//! The default memory limit of a pack, from the memory the process may use.
//!
//! A fixed default would be the wrong size in a container or on a small
//! machine: a pack given 2304 MiB of buffered rows inside a 2 GiB cgroup is
//! OOM-killed instead of spilling sorted runs. So the default is
//! [`DEFAULT_MEMORY_LIMIT`], or [`SHARE`] of the process's cgroup limit or
//! of the machine's RAM where that is smaller: a pack's peak is about a fifth
//! above its buffered rows, plus the reader's and writer's buffers (some
//! 250 MiB for Parquet row groups of a million rows), so half leaves that
//! room inside 512 MiB.

use super::DEFAULT_MEMORY_LIMIT;

/// The share of a smaller memory bound the buffered rows may take.
pub const SHARE: f64 = 0.5;

/// A default memory limit and, when it was cut, what cut it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryDefault {
    /// Bytes of buffered rows before sorted runs spill.
    pub bytes: u64,
    /// The bound it is [`SHARE`] of (`"cgroup"` or `"RAM"`, and its bytes),
    /// or `None` for [`DEFAULT_MEMORY_LIMIT`] itself.
    pub bound: Option<(&'static str, u64)>,
}

/// The default for this process: its cgroup's memory limit and the
/// machine's RAM, as Linux reports them (neither elsewhere).
pub fn default_memory_limit() -> MemoryDefault {
    choose(cgroup_limit(), ram())
}

/// [`DEFAULT_MEMORY_LIMIT`], or [`SHARE`] of the smaller bound when that is
/// less.
pub fn choose(cgroup: Option<u64>, ram: Option<u64>) -> MemoryDefault {
    let bound = [cgroup.map(|b| ("cgroup", b)), ram.map(|b| ("RAM", b))]
        .into_iter()
        .flatten()
        .min_by_key(|b| b.1);
    match bound {
        Some((what, b)) if (b as f64 * SHARE) < DEFAULT_MEMORY_LIMIT as f64 => MemoryDefault {
            bytes: (b as f64 * SHARE) as u64,
            bound: Some((what, b)),
        },
        _ => MemoryDefault {
            bytes: DEFAULT_MEMORY_LIMIT,
            bound: None,
        },
    }
}

/// A cgroup memory limit file's value: `max` (v2) or a number of at least
/// 2^60 (v1's "unlimited", a page-rounded i64::MAX) is no limit.
pub fn parse_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    (n < 1 << 60).then_some(n)
}

/// The tightest memory limit of this process's cgroup and its ancestors,
/// v2 or v1. Under a cgroup namespace (a container) the path is `/`; where
/// the path named in `/proc/self/cgroup` is not mounted (a container
/// without one), the mount's root is the container's own cgroup.
fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<u64> = None;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, file) = if id == "0" && controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut dir = std::path::PathBuf::from(root);
        dir.push(path.trim_start_matches('/'));
        let mut at = Some(dir.as_path());
        while let Some(d) = at.filter(|d| d.starts_with(root)) {
            let limit = std::fs::read_to_string(d.join(file)).ok();
            if let Some(l) = limit.as_deref().and_then(parse_limit) {
                best = Some(best.map_or(l, |b| b.min(l)));
            }
            at = d.parent();
        }
    }
    best
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn ram() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&info)
}

/// The `MemTotal:  N kB` line of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_total(info: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_share_of_a_smaller_bound() {
        let gib = 1u64 << 30;
        // A roomy machine, no cgroup limit: the fixed default.
        assert_eq!(choose(None, Some(24 * gib)).bytes, DEFAULT_MEMORY_LIMIT);
        assert_eq!(choose(None, None).bound, None);
        // A 2 GiB container on that machine: half the container.
        let c = choose(Some(2 * gib), Some(24 * gib));
        assert_eq!(c.bound, Some(("cgroup", 2 * gib)));
        assert_eq!(c.bytes, (2.0 * gib as f64 * SHARE) as u64);
        // A small machine with a larger cgroup: RAM decides.
        assert_eq!(choose(Some(8 * gib), Some(gib)).bound, Some(("RAM", gib)));
        // A cgroup roomier than the default needs: the default.
        assert_eq!(choose(Some(16 * gib), None).bytes, DEFAULT_MEMORY_LIMIT);
    }

    #[test]
    fn cgroup_and_meminfo_texts_parse() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("2147483648\n"), Some(2 << 30));
        assert_eq!(parse_limit(""), None);
        let info = "MemTotal:       24683792 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_mem_total(info), Some(24_683_792 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB"), None);
    }
}
