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
    let config = dir.path().join("pointillist.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\ndatasets = [{:?}]\ncache_mb = 0\n{toml}",
            root.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pointillist"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
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
