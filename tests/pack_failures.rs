//! `pointillist pack` when things go wrong, and `pointillist info`: the
//! external sort equals the in-memory one, bad inputs fail with a clear
//! message and write nothing, a killed pack leaves no dataset.

mod pack_fixture;

use pack_fixture::*;

// ---------------------------------------------------------------------------
// The external sort
// ---------------------------------------------------------------------------

#[test]
fn spilled_pack_equals_in_memory_pack() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(3000, 12);
    let input = dir.path().join("in.parquet");
    // Twelve row groups: twelve units read in parallel, in any order.
    write_parquet(&input, &t.batch(Coords::LonLat("lon", "lat")), 250, None);
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let mut mem = options(&[&input], &dir.path().join("a/ds"));
    mem.partition_rows = 333;
    let mut spill = options(&[&input], &dir.path().join("b/ds"));
    spill.partition_rows = 333;
    spill.memory_limit = 1; // every batch spills a run
    let (r1, d1) = pack_ok(&mem);
    let (r2, d2) = pack_ok(&spill);
    assert_eq!(r1.spilled_runs, 0);
    assert!(r2.spilled_runs >= 10, "{} runs", r2.spilled_runs);
    let want = t.expect();
    let o1 = check_dataset(&d1, &want);
    let o2 = check_dataset(&d2, &want);
    let first_difference = o1.iter().zip(&o2).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "rows in a different order");
    // Rows sharing a position keep their input order, whichever way.
    let pos: Vec<(u32, u32)> = d1
        .partitions
        .iter()
        .flat_map(|p| p.qx().iter().copied().zip(p.qy().iter().copied()))
        .collect();
    let input_index: std::collections::HashMap<i64, usize> =
        t.id.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut ties = 0;
    for i in 1..o1.len() {
        if pos[i] == pos[i - 1] {
            ties += 1;
            assert!(input_index[&o1[i - 1]] < input_index[&o1[i]]);
        }
    }
    assert!(ties >= 60, "{ties} ties");
    assert_eq!(d1.partitions.len(), d2.partitions.len());
    for (a, b) in d1.partitions.iter().zip(&d2.partitions) {
        assert_eq!(a.batch, b.batch);
    }
    let (mut m1, mut m2) = (d1.manifest.clone(), d2.manifest.clone());
    m2.created = m1.created.clone();
    m1.source.clear();
    m2.source.clear();
    assert_eq!(m1, m2);
    // The data files are byte for byte the same.
    assert_eq!(
        std::fs::read(dir.path().join("a/ds").join(DATA_FILE)).unwrap(),
        std::fs::read(dir.path().join("b/ds").join(DATA_FILE)).unwrap()
    );
    // Nothing of the runs is left.
    assert!(temp_dirs(&spill.out).is_empty());
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn missing_coordinate_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nocoords.csv");
    std::fs::write(&input, "id,name,value\n1,a,2.5\n").unwrap();
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "no coordinate columns found");
    assert!(text(&o).contains("id, name, value"), "lists the columns");
}

#[test]
fn unreadable_or_truncated_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_parquet(
        &good,
        &Table::new(500, 13).batch(Coords::LonLat("lon", "lat")),
        100,
        None,
    );
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"this is not parquet at all").unwrap();
    for input in [&truncated, &garbage] {
        let out = dir.path().join("ds");
        let o = run(&["pack", s(input), "--out", s(&out)]);
        assert_failed_cleanly(&o, &out, "not a readable Parquet file");
        assert!(text(&o).contains(s(input)), "names the file: {}", text(&o));
    }
    // A footer that reads but data pages that do not: the failure comes
    // while reading, after the temporary directory exists.
    let mut damaged = bytes.clone();
    for b in &mut damaged[200..bytes.len() / 2] {
        *b = 0xA5;
    }
    let input = dir.path().join("damaged.parquet");
    std::fs::write(&input, damaged).unwrap();
    let out = dir.path().join("nested/deeper/ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, s(&input));
    // The parents the pack created for --out are gone again.
    assert!(!dir.path().join("nested").exists());
}

fn bad_rows_csv(dir: &Path) -> PathBuf {
    let mut body = b"id,lon,lat,v\n".to_vec();
    for i in 0..20 {
        body.extend(format!("{i},{},{},{i}\n", 10.0 + i as f64 * 0.1, 50.0).as_bytes());
        match i {
            4 => body.extend(b"100,13.4\n"),         // line 7: too few fields
            9 => body.extend(b"101,13.4,fifty,1\n"), // line 13: latitude is no number
            14 => body.extend(b"102,13.4,\xff\xfe,1\n"), // line 19: not UTF-8
            _ => {}
        }
    }
    body.extend(b"103,,,5\n"); // empty coordinates: dropped, not unparseable
    let p = dir.join("bad.csv");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn csv_rows_that_do_not_parse_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_rows_csv(dir.path());
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("packed 20 rows"), "{stdout}");
    assert!(stdout.contains("skipped 3 unparseable rows"), "{stdout}");
    assert!(stdout.contains("dropped 1 rows"), "{stdout}");
    // Each skipped row is shown with its line and reason.
    let stderr = String::from_utf8_lossy(&o.stderr);
    for (line, why) in [
        ("line=7", "fields"),
        ("line=13", "fifty"),
        ("line=19", "UTF-8"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("does not parse") && l.contains(line) && l.contains(why)),
            "no example for {line}: {stderr}"
        );
    }
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.column("v").unwrap().kind, ColumnKind::Numeric);
    assert_eq!(ds.manifest.column("v").unwrap().stats.max, Some(19.0));
}

#[test]
fn csv_rows_that_do_not_parse_fail_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let input = bad_rows_csv(dir.path());
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out), "--strict"]);
    assert_failed_cleanly(&o, &out, "line 7: 2 fields, expected 4");
    assert!(text(&o).contains("without --strict"), "{}", text(&o));
    // The other kinds of bad rows, each on its own.
    for (row, needle) in [
        (
            &b"101,13.4,fifty,1\n"[..],
            "line 3: column \"lat\": cannot parse \"fifty\"",
        ),
        (&b"102,13.4,\xff\xfe,1\n"[..], "line 3: not valid UTF-8"),
    ] {
        let mut body = b"id,lon,lat,v\n1,13.4,52.5,1\n".to_vec();
        body.extend(row);
        std::fs::write(&input, body).unwrap();
        let o = run(&["pack", s(&input), "--out", s(&out), "--strict"]);
        assert_failed_cleanly(&o, &out, needle);
    }
}

#[test]
fn all_coordinates_nan() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nan.csv");
    std::fs::write(&input, "lon,lat,v\nNaN,NaN,1\n,,2\nNaN,52.5,3\n").unwrap();
    let out = dir.path().join("ds");
    let o = run(&["pack", s(&input), "--out", s(&out)]);
    assert_failed_cleanly(&o, &out, "no rows with valid coordinates (3 dropped");
}

#[test]
fn an_existing_output_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "lon,lat\n13.4,52.5\n2.35,48.85\n").unwrap();
    let out = dir.path().join("ds");
    let first = run(&["pack", s(&sample_path()), "--out", s(&out)]);
    assert!(first.status.success(), "{}", text(&first));
    let manifest = std::fs::read(out.join(MANIFEST_FILE)).unwrap();
    let data = std::fs::read(out.join(DATA_FILE)).unwrap();

    let o = run(&["pack", s(&small), "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("already exists; pass --force"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(out.join(MANIFEST_FILE)).unwrap(), manifest);
    assert_eq!(std::fs::read(out.join(DATA_FILE)).unwrap(), data);
    assert!(temp_dirs(&out).is_empty());

    // A failing pack with --force leaves the old dataset alone too.
    let o = run(&[
        "pack",
        s(&dir.path().join("nope.csv")),
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(out.join(DATA_FILE)).unwrap(), data);

    let o = run(&["pack", s(&small), "--out", s(&out), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(Dataset::open(&out).unwrap().rows(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // --force never deletes a directory that is not a dataset.
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "…").unwrap();
    let o = run(&["pack", s(&small), "--out", s(&precious), "--force"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is not a Pointillist dataset"),
        "{}",
        text(&o)
    );
    assert!(precious.join("thesis.tex").exists());
    // An empty directory may be used.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["pack", s(&small), "--out", s(&empty), "--force"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_input_that_vanishes_after_planning() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::new(100, 14);
    let pq = dir.path().join("gone.parquet");
    write_parquet(&pq, &t.batch(Coords::LonLat("lon", "lat")), 1000, None);
    let csv = dir.path().join("gone.csv");
    std::fs::write(&csv, t.csv()).unwrap();
    for input in [pq, csv] {
        let files = ingest::expand_inputs(&[input.display().to_string()]).unwrap();
        let plan = ingest::plan(&files, &IngestOptions::default()).unwrap();
        std::fs::remove_file(&input).unwrap();
        let err = ingest::read_unit(&plan, &plan.units[0], &mut |_| Ok(())).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(s(&input)), "{msg}");
        assert!(msg.contains("No such file"), "{msg}");
    }
    // Through pack: a missing input is named, nothing is written.
    let out = dir.path().join("ds");
    let err = pack::pack(&options(&[&dir.path().join("gone.csv")], &out)).unwrap_err();
    assert!(matches!(err, PackError::Ingest(_)), "{err}");
    assert_nothing_written(&out);
}

#[test]
fn crs_option_default_is_degrees() {
    // IngestOptions::default gives no CRS: x/y read as degrees.
    assert_eq!(IngestOptions::default().crs, None);
    assert_eq!(Crs::default(), Crs::Wgs84);
}

// ---------------------------------------------------------------------------
// A killed pack
// ---------------------------------------------------------------------------

#[test]
fn a_killed_pack_leaves_no_dataset_and_the_next_pack_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big");
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "lon,lat\n13.4,52.5\n").unwrap();
    // Start with an input that takes a while to pack; if the pack still wins
    // the race to the end, try again with a bigger one.
    let mut rows = 300_000;
    let stale = loop {
        let input = dir.path().join(format!("big-{rows}.parquet"));
        let t = Table::new(rows, 15);
        write_parquet(&input, &t.batch(Coords::LonLat("lon", "lat")), 20_000, None);
        let mut child = bin()
            .args(["pack", s(&input), "--out", s(&out), "--memory-limit", "64K"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let spilled = loop {
            if let Some(tmp) = temp_dirs(&out)
                .into_iter()
                .find(|d| d.join("run-0.arrow").exists())
            {
                break Some(tmp);
            }
            if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        match spilled {
            Some(tmp) if !status.success() => break tmp,
            _ => {
                // Finished (or never spilled) before the kill: start over.
                assert!(rows < 5_000_000, "could not catch the pack in the act");
                let _ = std::fs::remove_dir_all(&out);
                for d in temp_dirs(&out) {
                    let _ = std::fs::remove_dir_all(d);
                }
                rows *= 2;
            }
        }
    };
    assert!(!out.exists(), "a killed pack must not leave a dataset");
    assert!(
        stale.exists(),
        "the killed pack's temporary directory stays"
    );
    let o = run(&["pack", s(&small), "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stale.exists(), "the next pack removes the stale directory");
    assert!(temp_dirs(&out).is_empty());
    assert_eq!(Dataset::open(&out).unwrap().rows(), 1);
}

// ---------------------------------------------------------------------------
// `pointillist info`
// ---------------------------------------------------------------------------

#[test]
fn info_describes_the_dataset_and_prints_the_manifest_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cells");
    let o = run(&[
        "pack",
        s(&sample_path()),
        "--out",
        s(&out),
        "--partition-rows",
        "64",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["info", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let info = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "dataset     cells",
        "rows        300",
        "partitions  5",
        "radio",
        "categorical",
        "GSM=",
        "created",
        "temporal",
        "averageSignal",
    ] {
        assert!(info.contains(needle), "info lacks {needle:?}:\n{info}");
    }
    let o = run(&["info", s(&out), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let printed: Manifest = serde_json::from_slice(&o.stdout).expect("--json prints the manifest");
    assert_eq!(printed, Dataset::open(&out).unwrap().manifest);

    // A damaged dataset: a clear error and a non-zero exit.
    std::fs::write(out.join(MANIFEST_FILE), "{").unwrap();
    let o = run(&["info", s(&out)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("invalid manifest"), "{}", text(&o));
}
