//! Datasets on S3-compatible object storage, against a real S3 server
//! (moto's server mode, speaking HTTP S3) that `scripts/test.sh` starts and
//! names in `POINTILLIST_TEST_S3`. Without it these tests say so and pass.
//!
//! Faults are injected by a proxy between the server and the store that
//! refuses connections, cuts range responses short or answers 403 as S3
//! does for an unknown access key (moto accepts any key).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt};
use pointillist::server::{AppState, ServerConfig, router};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use tower::ServiceExt;

const SECRET: &str = "not-a-real-secret-key";

/// The S3 endpoint of the test server, or `None` (the test then skips).
fn endpoint() -> Option<String> {
    let e = std::env::var("POINTILLIST_TEST_S3")
        .ok()
        .filter(|e| !e.is_empty());
    if e.is_none() {
        eprintln!("skipped: POINTILLIST_TEST_S3 is not set (scripts/test.sh starts an S3 server)");
    }
    e
}

/// A bucket of its own for each test.
fn bucket(endpoint: &str, name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let bucket = format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(host).expect("S3 server reachable");
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    bucket
}

/// Turn on versioning for a bucket (S3's PutBucketVersioning).
fn keep_versions(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>";
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "PUT /{bucket}?versioning HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "versioning: {reply}");
}

fn store(endpoint: &str, bucket: &str) -> impl ObjectStore {
    AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key(SECRET)
        .build()
        .unwrap()
}

/// Upload a packed dataset directory, as `aws s3 sync` would (the
/// manifest last, so a reader never sees a manifest before its data).
async fn upload(endpoint: &str, bucket: &str, dir: &Path, prefix: &str) {
    let s = store(endpoint, bucket);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| p.ends_with("manifest.json"));
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let key = object_store::path::Path::from(format!("{prefix}/{name}"));
        s.put(&key, std::fs::read(&f).unwrap().into())
            .await
            .unwrap();
    }
}

fn s3_options(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("endpoint", endpoint),
        ("allow_http", "true"),
        ("region", "us-east-1"),
        ("access_key_id", "test"),
        ("secret_access_key", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn get(state: &Arc<AppState>, uri: &str) -> Resp {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn send(state: &Arc<AppState>, req: Request<Body>) -> Resp {
    let r = router(state.clone()).oneshot(req).await.unwrap();
    Resp {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.into_body().collect().await.unwrap().to_bytes().to_vec(),
    }
}

async fn reload(state: &Arc<AppState>) -> serde_json::Value {
    let r = send(
        state,
        Request::post("/admin/reload")
            .header(header::AUTHORIZATION, "Bearer tok")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    serde_json::from_slice(&r.body).unwrap()
}

/// Requests that read rows (every one has a filter, so no overview or
/// manifest statistic answers it), per dataset name.
fn requests(name: &str) -> Vec<String> {
    let f = "filter=range:0..2500";
    vec![
        format!("/tiles/{name}/0/0/0.png?{f}"),
        format!("/tiles/{name}/3/2/3.png?{f}&agg=count_cat:radio"),
        format!("/tiles/{name}/8/75/96.png?{f}"),
        format!("/tiles/{name}/8/75/96.png?agg=mean:range&filter=radio:in:LTE"),
        format!("/tiles/{name}/4/4/6.png?agg=max:created&{f}&scale=tile"),
        format!("/datasets/{name}/histogram/range?bins=30&filter=radio:in:LTE,NR"),
        format!("/datasets/{name}/histogram/radio?{f}"),
        format!("/datasets/{name}/histogram/created?{f}&filter=radio:in:GSM"),
        format!("/datasets/{name}/count?{f}"),
        format!("/datasets/{name}/points?lon=-74&lat=40.7&z=8&radius_px=40"),
    ]
}

/// Every request answers the same bytes from both datasets.
async fn same_as_local(state: &Arc<AppState>, local: &str, remote: &str) {
    for (a, b) in requests(local).iter().zip(requests(remote)) {
        let (l, r) = (get(state, a).await, get(state, &b).await);
        assert_eq!(
            l.status,
            StatusCode::OK,
            "{a}: {}",
            String::from_utf8_lossy(&l.body)
        );
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{b}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(l.body == r.body, "{b} differs from {a}");
    }
}

/// After a reload, `remote` answers exactly what the local catalog
/// `other` (holding the new version as `local`) answers.
async fn serves_the_new_version(state: &Arc<AppState>, other: &Path) {
    let local2 = AppState::new(ServerConfig {
        datasets: vec![other.to_path_buf()],
        ..ServerConfig::default()
    });
    for (a, b) in requests("local").iter().zip(requests("remote")) {
        let (l, r) = (get(&local2, a).await, get(state, &b).await);
        assert_eq!(r.status, StatusCode::OK, "{b}");
        assert!(l.body == r.body, "{b} is not the new version's");
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    cache: std::path::PathBuf,
    bucket: String,
}

/// A local catalog holding `local` (n towers, seed), uploaded to
/// `s3://BUCKET/cat/remote`.
async fn setup(endpoint: &str, test: &str, n: usize, seed: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    let ds = common::packed_towers(&root, "local", n, seed);
    let bucket = bucket(endpoint, test);
    upload(endpoint, &bucket, &ds, "cat/remote").await;
    let cache = dir.path().join("object-cache");
    Setup {
        _dir: dir,
        root,
        cache,
        bucket,
    }
}

fn config(s: &Setup, s3: BTreeMap<String, String>) -> ServerConfig {
    ServerConfig {
        datasets: vec![s.root.clone(), format!("s3://{}/cat", s.bucket).into()],
        object_cache: Some(s.cache.clone()),
        admin_token: Some("tok".into()),
        s3,
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_datasets_answer_exactly_as_the_local_pack() {
    let Some(ep) = endpoint() else { return };
    let s = setup(&ep, "same", 20_000, 1).await;
    let state = AppState::new(config(&s, s3_options(&ep)));
    let cat = state.catalog.load();
    assert!(cat.errors.is_empty(), "{:?}", cat.errors);
    assert!(cat.datasets["remote"].dataset.is_remote());
    same_as_local(&state, "local", "remote").await;
    let d = get(&state, "/datasets/remote").await;
    let l = get(&state, "/datasets/local").await;
    let (d, l): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&d.body).unwrap(),
        serde_json::from_slice(&l.body).unwrap(),
    );
    assert_eq!(
        d["version"], l["version"],
        "one version, wherever it is stored"
    );
    let fetched = state.objects.used_bytes();
    assert!(fetched > 0, "data chunks were fetched");
    drop(cat);
    drop(state);

    // A second server finds the chunks in the cache; one of them corrupted
    // on disk is dropped and fetched again.
    let index: serde_json::Value = {
        let dirs: Vec<_> = walk(&s.cache)
            .into_iter()
            .filter(|p| p.ends_with("chunks.json"))
            .collect();
        assert_eq!(dirs.len(), 1, "one cache directory per dataset version");
        serde_json::from_slice(&std::fs::read(&dirs[0]).unwrap()).unwrap()
    };
    let data = walk(&s.cache)
        .into_iter()
        .find(|p| p.ends_with("data.arrow"))
        .unwrap();
    let (start, entry) = index["chunks"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .expect("a data chunk is listed");
    let start: u64 = start.parse().unwrap();
    let end = entry[0].as_u64().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        f.write_all_at(&vec![0xA5; (end - start) as usize], start)
            .unwrap();
    }
    let state = AppState::new(config(&s, s3_options(&ep)));
    assert!(
        state.catalog.load().errors.is_empty(),
        "{:?}",
        state.catalog.load().errors
    );
    same_as_local(&state, "local", "remote").await;
    let mut back = vec![0u8; (end - start) as usize];
    {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&data)
            .unwrap()
            .read_exact_at(&mut back, start)
            .unwrap();
    }
    assert!(
        back.iter().any(|&b| b != 0xA5),
        "the corrupted chunk was fetched again"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_cache_stays_within_its_bound_between_requests() {
    let Some(ep) = endpoint() else { return };
    let s = setup(&ep, "bound", 60_000, 3).await;
    let mut c = config(&s, s3_options(&ep));
    c.object_cache_mb = 1;
    let state = AppState::new(c);
    assert!(state.catalog.load().errors.is_empty());
    for round in 0..2 {
        for (a, b) in requests("local").iter().zip(requests("remote")) {
            let (l, r) = (get(&state, a).await, get(&state, &b).await);
            assert_eq!(r.status, StatusCode::OK, "{b}");
            assert!(l.body == r.body, "round {round}: {b} differs");
            assert!(
                state.objects.used_bytes() <= state.objects.limit_bytes(),
                "{} bytes cached over a bound of {}",
                state.objects.used_bytes(),
                state.objects.limit_bytes()
            );
        }
    }
}

/// What the fault proxy does with the next connections.
const FORWARD: u8 = 0;
const REFUSE: u8 = 1;
const TRUNCATE: u8 = 2;
const DENY: u8 = 3;
/// Holds each new connection until the mode changes, then forwards it: a
/// bucket that takes its time.
const HOLD: u8 = 4;

/// A proxy in front of the S3 server, one request per connection.
struct Proxy {
    url: String,
    mode: Arc<AtomicU8>,
    /// Connections that have waited in [`HOLD`].
    held: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let up = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let held = Arc::new(AtomicUsize::new(0));
        let (m, h) = (mode.clone(), held.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, h, up) = (m.clone(), h.clone(), up.clone());
                std::thread::spawn(move || {
                    let mut mode = m.load(Ordering::SeqCst);
                    if mode == HOLD {
                        h.fetch_add(1, Ordering::SeqCst);
                        while mode == HOLD {
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            mode = m.load(Ordering::SeqCst);
                        }
                    }
                    let _ = relay(conn, &up, mode);
                });
            }
        });
        Proxy { url, mode, held }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Read an HTTP message head and as much body as Content-Length says.
fn read_message(s: &mut TcpStream, no_body: bool) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; if no_body { 0 } else { len }];
    s.read_exact(&mut body)?;
    Ok((head, body))
}

/// The head with `Connection: close` and, when given, a new Content-Length.
fn rewrite(head: &str, len: Option<usize>) -> String {
    let mut out = String::new();
    for l in head.trim_end().lines() {
        let k = l.split(':').next().unwrap_or("").to_ascii_lowercase();
        if k == "connection" || (len.is_some() && k == "content-length") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    if let Some(n) = len {
        out.push_str(&format!("Content-Length: {n}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn relay(mut client: TcpStream, upstream: &str, mode: u8) -> std::io::Result<()> {
    if mode == REFUSE {
        return Ok(());
    }
    let (head, body) = read_message(&mut client, false)?;
    if mode == DENY {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidAccessKeyId</Code>\
                   <Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>";
        write!(
            client,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return Ok(());
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(rewrite(&head, None).as_bytes())?;
    up.write_all(&body)?;
    let (rhead, mut rbody) = read_message(&mut up, head.starts_with("HEAD "))?;
    let partial = rhead.starts_with("HTTP/1.1 206");
    if mode == TRUNCATE && partial && !rbody.is_empty() {
        rbody.truncate(rbody.len() / 2);
    }
    let len = (!head.starts_with("HEAD ")).then_some(rbody.len());
    client.write_all(rewrite(&rhead, len).as_bytes())?;
    client.write_all(&rbody)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_are_503_and_heal() {
    let Some(ep) = endpoint() else { return };
    let s = setup(&ep, "faults", 20_000, 5).await;
    let proxy = Proxy::start(&ep);
    let opts = s3_options(&proxy.url);

    // Unreachable at start: reported and skipped, the others serve.
    proxy.set(REFUSE);
    let state = AppState::new(config(&s, opts));
    {
        let cat = state.catalog.load();
        assert!(!cat.datasets.contains_key("remote"));
        assert!(
            cat.errors
                .iter()
                .any(|(p, _)| p.to_string_lossy().starts_with("s3://"))
        );
        assert!(cat.remote_needs_retry());
    }
    assert_eq!(
        get(&state, &requests("local")[0]).await.status,
        StatusCode::OK
    );

    // Reachable again: a reload (or the retry timer) brings it in.
    proxy.set(FORWARD);
    let r = reload(&state).await;
    assert!(
        r["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "remote"),
        "{r}"
    );
    assert!(!state.catalog.load().remote_needs_retry());
    let tile = "/tiles/remote/8/75/96.png?filter=range:0..2500";
    assert_eq!(get(&state, tile).await.status, StatusCode::OK);

    // Storage down, a truncated range, a key refused: each request that
    // needs new data is 503 with Retry-After and a JSON error; the server
    // goes on serving.
    let cold = [
        "/datasets/remote/histogram/created?filter=range:0..1000",
        "/datasets/remote/histogram/id?filter=range:0..1000",
        "/datasets/remote/histogram/radio?filter=created:2015-01-01..2030-01-01",
    ];
    for (mode, uri, says) in [
        (REFUSE, cold[0], "s3://"),
        (TRUNCATE, cold[1], "s3://"),
        (DENY, cold[2], &s.bucket[..]),
    ] {
        proxy.set(mode);
        let r = get(&state, uri).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "mode {mode}: {uri}"
        );
        assert!(r.headers.contains_key(header::RETRY_AFTER));
        let e: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains(says), "mode {mode}: {msg}");
        assert!(!msg.contains(SECRET), "a credential in an error: {msg}");
        assert_eq!(get(&state, "/health").await.status, StatusCode::OK);
        assert_eq!(
            get(&state, tile).await.status,
            StatusCode::OK,
            "fetched data still serves"
        );
    }

    // Wrong credentials at open: the error names the bucket, not the secret.
    proxy.set(DENY);
    let denied = AppState::new(config(&s, s3_options(&proxy.url)));
    let errs = &denied.catalog.load().errors;
    let msg = errs
        .iter()
        .find(|(p, _)| p.to_string_lossy().starts_with("s3://"))
        .map(|(_, e)| e.clone())
        .expect("refused");
    assert!(msg.contains(&s.bucket) && msg.contains("denied"), "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");

    // Healed: the same requests answer what the local pack answers.
    proxy.set(FORWARD);
    for uri in cold {
        let r = get(&state, uri).await;
        let l = get(&state, &uri.replace("/remote/", "/local/")).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(r.body == l.body, "{uri}");
    }
}

/// A tile whose planning waits on a slow bucket must not hold a runtime
/// worker: with one worker, `/health` still answers while the tile waits.
/// The waits are on std channels and threads, not tokio timers, so that the
/// old behaviour (a blocked worker drives no timer) fails instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_bucket_never_holds_a_runtime_worker() {
    let Some(ep) = endpoint() else { return };
    let s = setup(&ep, "slow", 20_000, 9).await;
    let proxy = Proxy::start(&ep);
    let state = AppState::new(config(&s, s3_options(&proxy.url)));
    assert!(state.catalog.load().datasets.contains_key("remote"));

    proxy.set(HOLD);
    let (tile_tx, tile_rx) = std::sync::mpsc::channel();
    let st = state.clone();
    tokio::spawn(async move {
        let r = get(&st, "/tiles/remote/8/75/96.png?filter=range:0..2500").await;
        let _ = tile_tx.send(r.status);
    });
    let waited = std::time::Instant::now();
    while proxy.held.load(Ordering::SeqCst) == 0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(60),
            "the tile never reached the bucket"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (health_tx, health_rx) = std::sync::mpsc::channel();
    let st = state.clone();
    tokio::spawn(async move {
        let _ = health_tx.send(get(&st, "/health").await.status);
    });
    let health = health_rx.recv_timeout(std::time::Duration::from_secs(20));
    proxy.set(FORWARD);
    assert_eq!(
        health.ok(),
        Some(StatusCode::OK),
        "/health waited behind a tile's storage read"
    );
    let tile = tile_rx.recv_timeout(std::time::Duration::from_secs(60));
    assert_eq!(tile.ok(), Some(StatusCode::OK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_under_the_server_is_never_mixed_in() {
    let Some(ep) = endpoint() else { return };
    let s = setup(&ep, "swap", 20_000, 7).await;
    let state = AppState::new(config(&s, s3_options(&ep)));
    let tile = "/tiles/remote/8/75/96.png?filter=range:0..2500";
    assert_eq!(get(&state, tile).await.status, StatusCode::OK);

    // A new version is uploaded over the old one.
    let other = s.root.parent().unwrap().join("v2");
    std::fs::create_dir(&other).unwrap();
    let v2 = common::packed_towers(&other, "local", 30_000, 8);
    upload(&ep, &s.bucket, &v2, "cat/remote").await;

    // The next fetch sees the ETag change: 503, and the dataset is retired
    // rather than answered from two versions.
    let r = get(
        &state,
        "/datasets/remote/histogram/created?filter=range:0..1000",
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let e: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(e["error"].as_str().unwrap().contains("changed"), "{e}");
    assert_eq!(
        get(&state, tile).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(state.catalog.load().remote_needs_retry());

    // Reloaded, it serves the new version, exactly.
    reload(&state).await;
    serves_the_new_version(&state, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_bucket_serves_the_opened_version_until_reload() {
    let Some(ep) = endpoint() else { return };
    // Versioning on before the first upload, so v1 has a version id.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    let v1 = common::packed_towers(&root, "local", 20_000, 9);
    let bucket = bucket(&ep, "versions");
    keep_versions(&ep, &bucket);
    upload(&ep, &bucket, &v1, "cat/remote").await;
    let s = Setup {
        root,
        cache: dir.path().join("object-cache"),
        bucket,
        _dir: dir,
    };
    let state = AppState::new(config(&s, s3_options(&ep)));
    assert!(state.catalog.load().errors.is_empty());
    let other = s.root.parent().unwrap().join("v2");
    std::fs::create_dir(&other).unwrap();
    let v2 = common::packed_towers(&other, "local", 30_000, 10);
    upload(&ep, &s.bucket, &v2, "cat/remote").await;

    // Nothing was fetched before the upload: every request below reads
    // new ranges, all from the version opened.
    same_as_local(&state, "local", "remote").await;

    reload(&state).await;
    serves_the_new_version(&state, &other).await;
}

/// A tmpfs of `mb` MiB mounted for the test's life (needs root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_disk_is_503_and_heals_when_space_returns() {
    let Some(ep) = endpoint() else { return };
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small file system for the cache needs root");
        return;
    }
    let mut s = setup(&ep, "diskfull", 60_000, 11).await;
    s.cache = s._dir.path().join("small-disk");
    let Some(_disk) = Tmpfs::mount(&s.cache, 4) else {
        eprintln!("skipped: could not mount a tmpfs");
        return;
    };
    let state = AppState::new(config(&s, s3_options(&ep)));
    assert!(
        state.catalog.load().errors.is_empty(),
        "{:?}",
        state.catalog.load().errors
    );
    // Another program fills the disk but for a few pages.
    let filler = s.cache.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![1u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mut refused = 0;
    for (a, b) in requests("local").iter().zip(requests("remote")) {
        let (l, r) = (get(&state, a).await, get(&state, &b).await);
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            refused += 1;
            assert!(r.headers.contains_key(header::RETRY_AFTER));
            let e: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert!(e["error"].as_str().unwrap().contains("object cache"), "{e}");
        } else {
            assert_eq!(r.status, StatusCode::OK, "{b}");
            assert!(
                l.body == r.body,
                "{b}: a full disk must not change an answer"
            );
        }
    }
    assert!(
        refused > 0,
        "the disk was full, some fetch must have failed"
    );
    // Space is back: the failed entries were dropped, and are fetched again.
    std::fs::remove_file(&filler).unwrap();
    same_as_local(&state, "local", "remote").await;
}
