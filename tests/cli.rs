//! `pointillist render` takes the server's parameters, parsed by the same
//! code: every style option exists on both, and the same options give the
//! same pixels.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use pointillist::server::{AppState, ServerConfig, router};
use std::path::Path;
use std::process::Command;
use tower::ServiceExt;

/// `pointillist render DS --tile 8/75/96 -o OUT FLAGS...` (flags may
/// name another `--tile`).
fn render(ds: &Path, out: &Path, flags: &[&str]) -> std::process::Output {
    let tile = if flags.contains(&"--tile") {
        &[][..]
    } else {
        &["--tile", "8/75/96"][..]
    };
    Command::new(env!("CARGO_BIN_EXE_pointillist"))
        .arg("render")
        .arg(ds)
        .args(tile)
        .arg("-o")
        .arg(out)
        .args(flags)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_and_server_share_parameters_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    let ds = common::packed_towers(&root, "towers", 5_000, 4);
    let state = AppState::new(ServerConfig {
        datasets: vec![root.clone()],
        ..ServerConfig::default()
    });
    for (flags, query) in [
        (
            vec![
                "--how",
                "log",
                "--shape",
                "square",
                "--spread",
                "1",
                "--alpha",
                "200",
                "--min-alpha",
                "10",
            ],
            "how=log&shape=square&spread=1&alpha=200&min_alpha=10",
        ),
        (
            vec![
                "--agg",
                "count_cat:radio",
                "--color-key",
                "LTE:#ff0000,NR:blue",
                "--dynspread",
                "0.5,2",
            ],
            "agg=count_cat:radio&color_key=LTE:%23ff0000,NR:blue&dynspread=0.5,2",
        ),
        (
            vec![
                "--rescale-discrete-levels",
                "--filter",
                "created:2012-01-01..2017-12-31T23:59:59Z",
                "--tile-size",
                "512",
            ],
            "rescale_discrete_levels=true&filter=created:2012-01-01..2017-12-31T23:59:59Z&tile_size=512",
        ),
        // A filtered z2 tile: both answer it, and its colour scale, from
        // the query's cells.
        (
            vec!["--tile", "2/1/1", "--filter", "range:100..2000"],
            "filter=range:100..2000",
        ),
    ] {
        let out = dir.path().join("t.png");
        let o = render(&ds, &out, &flags);
        assert!(
            o.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let cli = std::fs::read(&out).unwrap();
        let r = router(state.clone())
            .oneshot(
                Request::get(format!(
                    "/tiles/towers/{}.png?{query}",
                    if flags.contains(&"--tile") {
                        "2/1/1"
                    } else {
                        "8/75/96"
                    }
                ))
                .body(Body::empty())
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        let served = r.into_body().collect().await.unwrap().to_bytes();
        assert!(cli == served, "{flags:?}: the CLI and the server disagree");
    }
    // Both ask the same planner, and say what it chose.
    let out = dir.path().join("p.png");
    let o = render(
        &ds,
        &out,
        &[
            "--tile",
            "2/1/1",
            "--filter",
            "range:100..2000",
            "--timings",
            "1",
        ],
    );
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("\"plan\":\"cells\"") && t.contains("\"scale_plan\":\"cells\""),
        "{t}"
    );
    let o = render(&ds, &out, &["--tile", "0/0/0", "--timings", "1"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"plan\":\"overview\""));
    // `.webp` writes the server's WebP tile; timings measure both formats.
    let webp = dir.path().join("t.webp");
    let o = render(&ds, &webp, &["--agg", "count_cat:radio", "--timings", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(t["format"], "webp");
    for k in ["png_ms", "webp_ms", "png_bytes", "webp_bytes"] {
        assert!(t[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {t}");
    }
    let r = router(state.clone())
        .oneshot(
            Request::get("/tiles/towers/8/75/96.webp?agg=count_cat:radio")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let served = r.into_body().collect().await.unwrap().to_bytes();
    assert!(
        std::fs::read(&webp).unwrap() == served,
        "the CLI and the server disagree"
    );
    assert_eq!(
        t["webp_bytes"].as_u64(),
        Some(served.len() as u64),
        "timings measure the tile written"
    );
    // The server's rules hold on the command line too.
    for (flags, needle) in [
        (vec!["--tile-size", "300"], "tile_size"),
        (vec!["--how", "eq_hist", "--span", "1,2"], "span"),
        (vec!["--alpha", "10", "--min-alpha", "20"], "min_alpha"),
    ] {
        let out = dir.path().join("bad.png");
        let o = render(&ds, &out, &flags);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(needle),
            "{flags:?}: {err}"
        );
        assert!(!out.exists());
    }
    let gif = dir.path().join("t.gif");
    let o = render(&ds, &gif, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(".webp"), "{err}");
    assert!(!gif.exists());
}

#[test]
fn errors_name_their_cause_once_and_help_names_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pointillist"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = run(&["pack", "missing.parquet", "--out", "out"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert_eq!(err.matches("no such file or directory").count(), 1, "{err}");
    let o = run(&["info", "nosuchdir"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("nosuchdir"), "{err}");
    assert!(err.matches("os error 2").count() <= 1, "{err}");
    assert!(
        err.matches("no such file or directory").count() == 1,
        "{err}"
    );
    // Logs to a pipe carry no colour codes.
    let o = run(&["gen", "towers", "--rows", "100", "--out", "t.parquet"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("INFO"));
    assert!(!o.stderr.contains(&0x1b), "ANSI codes in piped logs");
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).to_string();
    for v in ["RUST_LOG", "POINTILLIST_ADMIN_TOKEN", "AWS_ENDPOINT_URL"] {
        assert!(help.contains(v), "--help does not name {v}");
    }
}

#[test]
fn pack_help_states_the_default_memory_limit_pack_uses() {
    let out = Command::new(env!("CARGO_BIN_EXE_pointillist"))
        .args(["pack", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let at = help.find("--memory-limit").expect("the flag is documented");
    let tail = &help[at..];
    let start = tail.find("[default: ").expect("a default is stated") + "[default: ".len();
    let mib: u64 = tail[start..]
        .split('M')
        .next()
        .unwrap()
        .parse()
        .expect("the default is in MiB");
    assert_eq!(mib << 20, pointillist::pack::DEFAULT_MEMORY_LIMIT);
}

/// Over a dataset large enough for sampled colour scales (more than twice
/// the sample), a filtered z2 tile builds its query's cells, and its colour
/// scale then comes from them, in the CLI as in the server: the same plan
/// and the same pixels, not a sampled scale in one and an exact one in the
/// other.
#[tokio::test]
async fn a_tile_that_builds_cells_takes_its_scale_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir(&root).unwrap();
    let rows = 2 * pointillist::raster::sample::DEFAULT_SAMPLE_ROWS as usize + 50_000;
    let ds = common::packed_towers(&root, "big", rows, 5);
    let out = dir.path().join("t.png");
    let flags = ["--tile", "2/1/1", "--filter", "range:100..2000"];
    let o = render(&ds, &out, &[&flags[..], &["--timings", "1"]].concat());
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("\"plan\":\"cells\"") && t.contains("\"scale_plan\":\"cells\""),
        "{t}"
    );
    let o = render(&ds, &out, &flags);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = std::fs::read(&out).unwrap();
    let state = AppState::new(ServerConfig {
        datasets: vec![root.clone()],
        ..ServerConfig::default()
    });
    let r = router(state)
        .oneshot(
            Request::get("/tiles/big/2/1/1.png?filter=range:100..2000")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let served = r.into_body().collect().await.unwrap().to_bytes();
    assert!(cli == served, "the CLI and the server disagree");
}
