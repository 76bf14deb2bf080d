//! The real `pointillist serve` process under events that once killed it:
//! a data file truncated in place under a running server, slow clients,
//! the connection cap. Each test starts its own server on a free port.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
    /// Everything the server logged.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `pointillist serve` on `root` with extra TOML settings, and wait
/// for the address it prints.
fn start(dir: tempfile::TempDir, root: &Path, toml: &str) -> Server {
    start_in(dir, root, toml, None)
}

/// [`start`], with the server joining the cgroup whose `cgroup.procs` is
/// given before it runs.
fn start_in(dir: tempfile::TempDir, root: &Path, toml: &str, procs: Option<&Path>) -> Server {
    let config = dir.path().join("pointillist.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\ndatasets = [{:?}]\ncache_mb = 0\n{toml}",
            root.display().to_string()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_pointillist");
    let mut command = match procs {
        None => Command::new(bin),
        Some(procs) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!(
                    "echo $$ > {} && exec \"$0\" \"$@\"",
                    procs.display()
                ))
                .arg(bin);
            c
        }
    };
    let mut child = command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("POINTILLIST_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let addr = loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        assert!(n > 0, "server exited before listening:\n{log}");
        log.push_str(&line);
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on http://".len()..].trim().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    let kept = std::sync::Arc::new(std::sync::Mutex::new(log));
    let sink = kept.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut err, &mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    Server {
        child,
        addr,
        log: kept,
        _dir: dir,
    }
}

/// One HTTP/1.1 request on a new connection: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn two_datasets() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    common::packed_towers(&root, "a", 5_000, 1);
    common::packed_towers(&root, "b", 5_000, 2);
    (dir, root)
}

#[test]
fn a_file_truncated_in_place_fails_only_its_dataset() {
    let (dir, root) = two_datasets();
    let s = start(dir, &root, "");
    let tile = |d: &str, q: &str| get(&s.addr, &format!("/tiles/{d}/8/75/96.png{q}"));
    assert_eq!(tile("a", "").0, 200);
    assert_eq!(tile("b", "").0, 200);
    for (ds, file) in [("a", "data.arrow"), ("b", "overview.bin")] {
        // `cp short data.arrow` (an open with O_TRUNC, then a write) and
        // `truncate -s 100 overview.bin` (an open for writing, then
        // ftruncate). With the server's read lease the open blocks until
        // the server has retired the dataset; without a lease, the size
        // check before the next scan catches it.
        let path = root.join(ds).join(file);
        if file == "data.arrow" {
            std::fs::write(&path, b"a shorter file").unwrap();
        } else {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(100).unwrap();
        }
        let (status, body) = tile(ds, "?agg=count_cat:radio");
        assert_eq!(status, 503, "{ds}: {body}");
        assert!(body.contains("\"error\""), "{body}");
        let (status, _) = get(
            &s.addr,
            &format!("/datasets/{ds}/count?filter=range:1..100"),
        );
        assert_eq!(status, 503);
    }
    // The process lives on; a healthy third look at the catalog still works.
    assert_eq!(get(&s.addr, "/health").0, 200);
    assert_eq!(get(&s.addr, "/datasets").0, 200);
}

#[test]
fn the_explorers_world_view_is_answered() {
    let (dir, root) = two_datasets();
    let s = start(dir, &root, "");
    let world = "bbox=-180,-85.051129,180,85.051129";
    let (status, body) = get(&s.addr, &format!("/datasets/a/count?{world}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"count\":5000"), "{body}");
    let (status, _) = get(&s.addr, &format!("/datasets/a/histogram/range?{world}"));
    assert_eq!(status, 200);
    let (status, body) = get(
        &s.addr,
        &format!("/datasets/a/aggregate?{world}&width=4096&height=4096&agg=std:range"),
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(get(&s.addr, "/health").0, 200);
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let (dir, root) = two_datasets();
    let s = start(
        dir,
        &root,
        "header_timeout_ms = 300\nidle_timeout_ms = 20000\ntimeout_ms = 10000\n",
    );
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // Half a header, then nothing: the server closes the connection (a
    // read returns EOF, or a 408 and EOF) instead of waiting for ever.
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut buf = Vec::new();
    let r = c.read_to_end(&mut buf);
    assert!(r.is_ok(), "server kept the slow connection open: {r:?}");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    assert_eq!(get(&s.addr, "/health").0, 200);
}

#[test]
fn connections_beyond_the_cap_wait() {
    let (dir, root) = two_datasets();
    let s = start(dir, &root, "max_connections = 1\n");
    // One keep-alive connection holds the only slot.
    let mut first = TcpStream::connect(&s.addr).unwrap();
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    first
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let n = first.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A second client is not served while the first holds the slot...
    let mut second = TcpStream::connect(&s.addr).unwrap();
    second
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(second.read(&mut buf).is_err(), "served past the cap");
    // ...and is served as soon as the first leaves.
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut out = Vec::new();
    second.read_to_end(&mut out).unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

/// Passes over the rows longer than `long_pass_ms` are logged with their
/// dataset and lane (0 here, so every pass is), and `/metrics` reports the
/// bytes the process read from storage.
#[test]
fn long_passes_are_logged_and_storage_reads_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    common::packed_towers(&root, "towers", 5_000, 1);
    let s = start(dir, &root, "long_pass_ms = 0\n");
    let (status, _) = get(&s.addr, "/tiles/towers/8/75/96.png?filter=range:100..2000");
    assert_eq!(status, 200);
    // The line is written when the pass ends, before the response; the
    // reader thread may still be copying it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = s.log.lock().unwrap().clone();
        if log.contains("long pass over the rows") {
            assert!(log.contains("dataset=towers"), "{log}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no long-pass line:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, metrics) = get(&s.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("pointillist_storage_read_bytes"),
        "{metrics}"
    );
}

/// A memory cgroup with a byte limit, removed (after its processes are
/// gone) on drop. `None` where this process may not make one: not root, or
/// no memory controller.
struct MemoryCgroup {
    dir: std::path::PathBuf,
}

impl MemoryCgroup {
    fn new(name: &str, limit: u64) -> Option<MemoryCgroup> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let dir = if v2 {
            let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
            Path::new("/sys/fs/cgroup").join(name)
        } else {
            Path::new("/sys/fs/cgroup/memory").join(name)
        };
        std::fs::create_dir_all(&dir).ok()?;
        let cg = MemoryCgroup { dir };
        let limit_file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        std::fs::write(cg.dir.join(limit_file), limit.to_string()).ok()?;
        if v2 {
            let _ = std::fs::write(cg.dir.join("memory.swap.max"), "0");
        }
        Some(cg)
    }

    /// OOM kills the cgroup has seen.
    fn oom_kills(&self) -> u64 {
        ["memory.events", "memory.oom_control"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
                    .collect::<Vec<u64>>()
            })
            .sum()
    }

    /// The most memory the cgroup's processes were charged at once (v1), or
    /// now (v2, which keeps no maximum before 5.19).
    fn peak(&self) -> u64 {
        ["memory.max_usage_in_bytes", "memory.peak", "memory.current"]
            .iter()
            .find_map(|f| {
                std::fs::read_to_string(self.dir.join(f))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Issue #12: a server whose data is several times its memory limit
/// answers a scripted trace (pans and zooms with a new range filter each
/// time, histograms, counts, the points under a cursor) without being
/// killed. Needs root for the cgroup; elsewhere it says so and passes.
#[test]
fn a_server_inside_a_small_memory_cgroup_answers_a_trace() {
    const LIMIT: u64 = 128 << 20;
    let Some(cg) = MemoryCgroup::new(&format!("pointillist-test-{}", std::process::id()), LIMIT)
    else {
        eprintln!("skipped: a memory cgroup needs root and the memory controller");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_pointillist");
    let parquet = dir.path().join("towers.parquet");
    let root = dir.path().join("catalog");
    let data = root.join("towers");
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new(bin)
        .args(["gen", "towers", "--rows", "8000000", "--out"])
        .arg(&parquet));
    // The pack itself runs inside 512 MiB, less than its 8M buffered rows
    // (56 bytes each): its default memory limit follows the cgroup's, so it
    // spills sorted runs instead of being killed.
    let pack_cg = MemoryCgroup::new(
        &format!("pointillist-pack-{}", std::process::id()),
        512 << 20,
    )
    .expect("a second cgroup");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec \"$0\" \"$@\"",
            pack_cg.dir.join("cgroup.procs").display()
        ))
        .arg(bin)
        .arg("pack")
        .arg(&parquet)
        .arg("--out")
        .arg(&data)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pack inside 512 MiB: {log}");
    assert!(
        log.contains("memory limit 256 MiB: 50% of the 512 MiB cgroup limit"),
        "{log}"
    );
    assert!(!log.contains("spilled_runs=0"), "no run spilled: {log}");
    assert_eq!(pack_cg.oom_kills(), 0, "the pack's cgroup saw OOM kills");
    drop(pack_cg);
    let bytes: u64 = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        bytes > 3 * LIMIT,
        "the data ({bytes} B) must dwarf the limit"
    );
    // The packed pages were cached (and charged) outside the cgroup: drop
    // them, so the server must read its data through its own limit.
    ok(&mut Command::new("sync"));
    std::fs::write("/proc/sys/vm/drop_caches", "1").unwrap();

    let procs = cg.dir.join("cgroup.procs");
    let mut s = start_in(
        dir,
        &root,
        "memory_budget_mb = 32\nmax_grid_mb = 2\ntimeout_ms = 600000\nidle_timeout_ms = 700000\n",
        Some(&procs),
    );
    // A fixed trace: deterministic ranges, a new one on every request.
    let mut trace = Vec::new();
    let mut lo = 100;
    for z in [0u32, 2, 4, 6, 8, 10, 12] {
        // Around Europe's towers (lon 10, lat 50).
        let n = 1u32 << z;
        let x = ((10.0 + 180.0) / 360.0 * n as f64) as u32;
        let y = ((1.0
            - (50f64.to_radians().tan() + 1.0 / 50f64.to_radians().cos()).ln()
                / std::f64::consts::PI)
            / 2.0
            * n as f64) as u32;
        for agg in ["count", "count_cat:radio", "mean:range"] {
            lo += 37;
            trace.push(format!(
                "/tiles/towers/{z}/{x}/{y}.png?agg={agg}&filter=range:{lo}..{}",
                lo + 5_000
            ));
        }
    }
    trace.push("/datasets/towers/histogram/range?filter=radio:in:LTE".into());
    trace.push("/datasets/towers/histogram/samples?filter=range:300..900".into());
    trace.push("/datasets/towers/count?filter=range:10..20000".into());
    trace.push("/datasets/towers/points?lon=10&lat=50&radius_px=20&z=8".into());
    for path in &trace {
        let (status, body) = get(&s.addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            s.child.try_wait().unwrap().is_none(),
            "the server died at {path}"
        );
    }
    eprintln!("cgroup peak {} MiB of {} MiB", cg.peak() >> 20, LIMIT >> 20);
    assert_eq!(cg.oom_kills(), 0, "the cgroup saw OOM kills");
    let _ = s.child.kill();
    let _ = s.child.wait();
}

#[test]
fn an_empty_catalog_says_how_to_add_datasets() {
    for (toml, says) in [
        ("", "set POINTILLIST_ADMIN_TOKEN"),
        ("admin_token = \"t\"\n", "add some and POST /admin/reload"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("empty");
        std::fs::create_dir(&root).unwrap();
        let s = start(dir, &root, toml);
        let log = s.log.lock().unwrap().clone();
        assert!(log.contains(says), "{toml:?}: {log}");
    }
}
