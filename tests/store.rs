//! The packed store rejects damaged datasets without panicking: truncated
//! or garbled data files, manifests that do not match, inconsistent buffer
//! layouts, a damaged overview.

mod pack_fixture;

use pack_fixture::*;

// ---------------------------------------------------------------------------
// The store rejects damaged datasets
// ---------------------------------------------------------------------------

/// A small packed dataset (five partitions, categorical and string columns).
fn packed(dir: &Path) -> PathBuf {
    let input = dir.join("in.parquet");
    write_parquet(
        &input,
        &Table::new(1100, 16).batch(Coords::LonLat("lon", "lat")),
        1000,
        None,
    );
    let out = dir.join("ds");
    let mut o = options(&[&input], &out);
    o.partition_rows = 220;
    pack_ok(&o);
    out
}

fn open_err(dir: &Path) -> String {
    match Dataset::open(dir) {
        Ok(_) => panic!("a damaged dataset opened"),
        Err(e) => e.to_string(),
    }
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Manifest)) {
    let path = dir.join(MANIFEST_FILE);
    let mut m: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

fn overwrite(path: &Path, range: std::ops::Range<usize>, byte: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[range] {
        *b = byte;
    }
    std::fs::write(path, bytes).unwrap();
}

/// (offset, metadata length, body length) of each record batch block.
fn blocks(path: &Path) -> Vec<(usize, usize, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    let len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let footer = arrow_ipc::root_as_footer(&bytes[n - 10 - len..n - 10]).unwrap();
    footer
        .recordBatches()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b.offset() as usize,
                b.metaDataLength() as usize,
                b.bodyLength() as usize,
            )
        })
        .collect()
}

#[test]
fn store_opens_and_verifies_a_good_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::open(packed(dir.path())).unwrap();
    assert_eq!(ds.partitions.len(), 5);
    assert_eq!(ds.schema.field(0).name(), QX);
    assert_eq!(ds.schema.field(1).name(), QY);
    ds.verify().unwrap();
}

#[test]
fn store_rejects_a_truncated_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let e = open_err(&ds);
    assert!(
        e.contains("corrupt dataset") && e.contains("manifest says"),
        "{e}"
    );
    // Even with the manifest agreeing on the size, the footer is gone.
    edit_manifest(&ds, |m| m.data_bytes = len - 100);
    let e = open_err(&ds);
    assert!(e.contains("footer"), "{e}");
    // Cut to almost nothing.
    std::fs::write(&data, b"ARROW1").unwrap();
    edit_manifest(&ds, |m| m.data_bytes = 6);
    let e = open_err(&ds);
    assert!(e.contains("too short"), "{e}");
}

#[test]
fn store_rejects_garbage_in_the_footer() {
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let n = std::fs::metadata(&data).unwrap().len() as usize;
    overwrite(&data, n - 200..n - 10, 0x5A);
    let e = open_err(&ds);
    assert!(e.contains("footer"), "{e}");
    // The trailer's magic bytes.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    overwrite(&ds.join(DATA_FILE), n - 6..n, b'x');
    let e = open_err(&ds);
    assert!(e.contains("corrupt dataset"), "{e}");
    // The leading magic bytes.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    overwrite(&ds.join(DATA_FILE), 0..6, b'x');
    let e = open_err(&ds);
    assert!(e.contains("bad magic"), "{e}");
}

#[test]
fn store_rejects_garbage_in_the_middle() {
    for (what, byte) in [("metadata", 0x5Au8), ("metadata", 0xFF), ("metadata", 0x00)] {
        let dir = tempfile::tempdir().unwrap();
        let ds = packed(dir.path());
        let data = ds.join(DATA_FILE);
        let (off, meta, _) = blocks(&data)[2];
        // The record batch message of partition 2.
        overwrite(&data, off + 8..off + meta, byte);
        let e = open_err(&ds);
        assert!(e.contains("partition 2"), "{what} {byte:#x}: {e}");
    }
    // A whole block: metadata and column values.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let (off, meta, body) = blocks(&data)[1];
    overwrite(&data, off..off + meta + body, 0x33);
    let e = open_err(&ds);
    assert!(e.contains("partition 1"), "{e}");
    // Column values only: opening does not read them all, but the first and
    // last positions no longer match the manifest, and `verify` reads them.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let (off, meta, body) = blocks(&data)[3];
    overwrite(&data, off + meta..off + meta + body, 0x7F);
    match Dataset::open(&ds) {
        Err(e) => assert!(e.to_string().contains("partition 3"), "{e}"),
        Ok(d) => assert!(d.verify().is_err()),
    }
}

#[test]
fn store_damaged_category_codes_read_as_null() {
    // Codes are not read at open; out-of-range ones must not be trusted.
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let data = ds.join(DATA_FILE);
    let d = Dataset::open(&ds).unwrap();
    let radio = d.schema.index_of("radio").unwrap();
    // Find the radio column's code buffer in partition 0's body via the
    // message: it is the (2 * radio + 1)-th buffer.
    let bytes = std::fs::read(&data).unwrap();
    let (off, meta, _) = blocks(&data)[0];
    let msg = arrow_ipc::root_as_message(&bytes[off + 8..off + meta]).unwrap();
    let rb = msg.header_as_record_batch().unwrap();
    let buffers = rb.buffers().unwrap();
    // Buffers before `radio`: two per column (validity, values), three for strings.
    let mut index = 0;
    for f in d.schema.fields().iter().take(radio) {
        index += if f.data_type() == &DataType::Utf8 {
            3
        } else {
            2
        };
    }
    let codes = buffers.get(index + 1);
    let start = off + meta + codes.offset() as usize;
    drop(d);
    overwrite(&data, start..start + 4, 0x7F); // codes 0x7F7F: far past 4 labels
    let d = Dataset::open(&ds).unwrap();
    let col = pointillist::store::column::CatColumn::new(d.partitions[0].column("radio").unwrap())
        .unwrap();
    assert_eq!(col.get(0), None);
    assert_eq!(col.get(1), None);
    let e = d.verify().unwrap_err().to_string();
    assert!(e.contains("radio"), "{e}");
}

#[test]
fn store_rejects_manifests_that_do_not_match() {
    type Edit = fn(&mut Manifest);
    let cases: [(&str, Edit, &str); 12] = [
        (
            "partition rows",
            |m| m.partitions[0].rows += 1,
            "starts at row",
        ),
        (
            "rows moved between partitions",
            |m| {
                m.partitions[0].rows += 1;
                m.partitions[1].rows -= 1;
                m.partitions[1].row_start += 1;
            },
            "partition 0 has 220 rows, manifest says 221",
        ),
        ("total rows", |m| m.rows += 1, "partitions hold"),
        (
            "a partition missing",
            |m| {
                let p = m.partitions.pop().unwrap();
                m.rows -= p.rows;
            },
            "5 record batches, manifest lists 4 partitions",
        ),
        ("data bytes", |m| m.data_bytes += 8, "manifest says"),
        ("version", |m| m.version = 99, "unsupported format"),
        (
            "format",
            |m| m.format = "other".into(),
            "unsupported format",
        ),
        (
            "key range",
            |m| m.partitions[2].key_min += 1,
            "partition 2: row 0 has Hilbert key",
        ),
        (
            "a column renamed",
            |m| m.columns[0].name = "renamed".into(),
            "does not match the manifest",
        ),
        (
            "a category dropped",
            |m| {
                let c = m.columns.iter_mut().find(|c| c.name == "radio").unwrap();
                c.categories.pop();
                c.stats.category_counts.pop();
            },
            "category code beyond",
        ),
        (
            "a column kind",
            |m| m.columns[0].kind = ColumnKind::Categorical,
            "does not match the manifest",
        ),
        (
            "bounds",
            |m| m.partitions[4].bounds.quantized[2] = 0,
            "outside the manifest's bounds",
        ),
    ];
    for (what, edit, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let ds = packed(dir.path());
        edit_manifest(&ds, edit);
        let e = open_err(&ds);
        assert!(e.contains(needle), "{what}: {e}");
    }
}

#[test]
fn store_rejects_invalid_or_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    std::fs::write(
        ds.join(MANIFEST_FILE),
        "{\"format\": \"pointillist-packed\",",
    )
    .unwrap();
    let e = open_err(&ds);
    assert!(e.contains("invalid manifest"), "{e}");
    std::fs::write(ds.join(MANIFEST_FILE), "[1, 2, 3]").unwrap();
    assert!(open_err(&ds).contains("invalid manifest"));
    std::fs::remove_file(ds.join(MANIFEST_FILE)).unwrap();
    let e = open_err(&ds);
    assert!(
        e.contains(MANIFEST_FILE) && e.contains("No such file"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    std::fs::remove_file(ds.join(DATA_FILE)).unwrap();
    let e = open_err(&ds);
    assert!(e.contains(DATA_FILE) && e.contains("No such file"), "{e}");

    let e = open_err(&dir.path().join("no-such-dataset"));
    assert!(e.contains("No such file"), "{e}");
}

/// File positions of the `Buffer` and `FieldNode` structs in the message of
/// record batch `p`: (buffers, nodes).
fn message_structs(path: &Path, p: usize) -> (Vec<usize>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let (off, meta, _) = blocks(path)[p];
    let fb = &bytes[off + 8..off + meta];
    let base = fb.as_ptr() as usize;
    let msg = arrow_ipc::root_as_message(fb).unwrap();
    let rb = msg.header_as_record_batch().unwrap();
    let at = |ptr: usize| off + 8 + ptr - base;
    let buffers = rb.buffers().unwrap();
    let nodes = rb.nodes().unwrap();
    (
        (0..buffers.len())
            .map(|k| at(buffers.get(k) as *const _ as usize))
            .collect(),
        (0..nodes.len())
            .map(|k| at(nodes.get(k) as *const _ as usize))
            .collect(),
    )
}

fn write_i64(path: &Path, at: usize, v: i64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn store_rejects_inconsistent_buffer_layouts() {
    // Well-formed messages whose buffers do not fit their columns: Arrow
    // would slice out of bounds (a panic) if they reached its decoder.
    // Buffers: _qx validity 0, values 1; _qy 2, 3; …; nodes: one per column.
    type Case = (
        &'static str,
        fn(&[usize], &[usize]) -> (usize, i64),
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            "offset past the body",
            |b, _| (b[1], 1 << 40),
            "outside the",
        ),
        (
            "negative offset",
            |b, _| (b[3], -64),
            "negative buffer offset",
        ),
        (
            "length past the body",
            |b, _| (b[1] + 8, 1 << 40),
            "outside the",
        ),
        (
            "values too short",
            |b, _| (b[3] + 8, 8),
            "bytes, 880 needed",
        ),
        (
            "more nulls than rows",
            |_, n| (n[0] + 8, 1_000),
            "more nulls than rows",
        ),
        (
            "a column longer than the batch",
            |_, n| (n[2], 221),
            "a column has 221 rows",
        ),
    ];
    for (what, at, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let ds = packed(dir.path());
        let data = ds.join(DATA_FILE);
        let (buffers, nodes) = message_structs(&data, 1);
        let (pos, v) = at(&buffers, &nodes);
        write_i64(&data, pos, v);
        let e = open_err(&ds);
        assert!(
            e.contains("partition 1") && e.contains(needle),
            "{what}: {e}"
        );
    }
}

#[test]
fn overview_is_written_and_damage_is_rejected() {
    use pointillist::store::OVERVIEW_FILE;
    let dir = tempfile::tempdir().unwrap();
    let ds = packed(dir.path());
    let m = Dataset::open(&ds).unwrap().manifest;
    let ov = m.overview.clone().expect("packed with an overview");
    assert_eq!(ov.levels.first().unwrap().level, 8);
    assert_eq!(ov.levels.last().unwrap().level, 12);
    assert_eq!(ov.counts.len(), 25, "a count distribution per level 8..=32");
    // Every level's distribution accounts for every row exactly once.
    let opened = Dataset::open(&ds).unwrap();
    for level in 8..=32u32 {
        let z = level - 8;
        let stats = pointillist::raster::zoom::zoom_stats(
            &opened,
            z.min(30) as u8,
            256,
            &pointillist::query::Agg::Count,
            &[],
            None,
        )
        .unwrap();
        let total: f64 = stats.histogram.iter().map(|&(v, n)| v * n as f64).sum();
        assert_eq!(total as u64, m.rows, "level {level}");
    }
    drop(opened);
    let path = ds.join(OVERVIEW_FILE);
    let bytes = std::fs::read(&path).unwrap();

    // Truncated.
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    let e = open_err(&ds);
    assert!(
        e.contains("overview.bin") && e.contains("manifest says"),
        "{e}"
    );
    // Truncated, with a manifest that agrees on the size: arrays fall outside.
    edit_manifest(&ds, |m| m.overview.as_mut().unwrap().bytes -= 8);
    let e = open_err(&ds);
    assert!(e.contains("outside the file"), "{e}");
    std::fs::write(&path, &bytes).unwrap();
    edit_manifest(&ds, |m| m.overview.as_mut().unwrap().bytes += 8);
    Dataset::open(&ds).unwrap();
    // Misaligned or out-of-range offsets, levels out of order, and a
    // category count that does not match the schema.
    type Edit = fn(&mut Manifest);
    let cases: [(Edit, &str); 4] = [
        (
            |m| m.overview.as_mut().unwrap().levels[1].offset += 4,
            "aligned",
        ),
        (
            |m| m.overview.as_mut().unwrap().counts[3].offset = 1 << 40,
            "outside the file",
        ),
        (
            |m| m.overview.as_mut().unwrap().levels[0].level = 9,
            "unexpected level",
        ),
        (
            |m| {
                let ov = m.overview.as_mut().unwrap();
                ov.categorical.push(pointillist::store::OverviewColumn {
                    name: "nope".into(),
                    categories: 3,
                })
            },
            "does not match the schema",
        ),
    ];
    for (edit, want) in cases {
        let good = std::fs::read(ds.join(MANIFEST_FILE)).unwrap();
        edit_manifest(&ds, edit);
        let e = open_err(&ds);
        assert!(e.contains(want), "{want}: {e}");
        std::fs::write(ds.join(MANIFEST_FILE), good).unwrap();
    }
    // Missing file.
    std::fs::remove_file(&path).unwrap();
    let e = open_err(&ds);
    assert!(e.contains("overview.bin"), "{e}");
}

#[test]
fn store_checks_the_cell_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.parquet");
    write_parquet(
        &input,
        &Table::new(1100, 16).batch(Coords::LonLat("lon", "lat")),
        1000,
        None,
    );
    let out = dir.path().join("ds");
    let mut o = options(&[&input], &out);
    o.stats_share = 1.0;
    pack_ok(&o);
    let ds = Dataset::open(&out).unwrap();
    let info = ds.manifest.stats.clone().expect("statistics kept");
    assert!(!info.columns.is_empty());
    for c in &info.columns {
        let cells = ds.stats.as_ref().unwrap().column(&c.name).unwrap();
        let values: u64 = cells.n.iter().sum();
        let stats = &ds.manifest.column(&c.name).unwrap().stats;
        assert_eq!(
            values, stats.count,
            "{}: every value is in one cell",
            c.name
        );
    }
    drop(ds);

    // A share too small for any column keeps none (and says which).
    let small = dir.path().join("small");
    let mut o = options(&[&input], &small);
    o.stats_share = 1e-6;
    pack_ok(&o);
    let m = Dataset::open(&small).unwrap().manifest;
    assert!(m.stats.unwrap().columns.is_empty());

    // A truncated file, or one the manifest describes wrongly, is refused.
    let path = out.join(STATS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    let e = open_err(&out);
    assert!(e.contains(STATS_FILE), "{e}");
    std::fs::write(&path, &bytes).unwrap();
    edit_manifest(&out, |m| m.stats.as_mut().unwrap().columns[0].cells += 1);
    assert!(open_err(&out).contains(STATS_FILE));
    edit_manifest(&out, |m| {
        let c = &mut m.stats.as_mut().unwrap().columns[0];
        c.cells -= 1;
        c.name = "nope".into();
    });
    let e = open_err(&out);
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn released_pages_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut ds = Dataset::open(packed(dir.path())).unwrap();
    let sum = |ds: &Dataset| -> u64 {
        ds.partitions
            .iter()
            .flat_map(|p| p.qx().iter().zip(p.qy()))
            .map(|(&x, &y)| x as u64 ^ (y as u64) << 7)
            .fold(0, u64::wrapping_add)
    };
    let before = sum(&ds);
    ds.release_scanned = true;
    for (i, p) in ds.partitions.iter().enumerate() {
        ds.release(i, 0..p.len(), &[QX, QY]);
    }
    assert_eq!(sum(&ds), before);
    assert!(ds.verify().is_ok());
}

/// Pages of `file` mapped into this process (the `Rss` of its mappings in
/// `/proc/self/smaps`), in KiB.
#[cfg(target_os = "linux")]
fn mapped_kib(file: &std::path::Path) -> u64 {
    let name = file.canonicalize().unwrap().to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut ours = false;
    let mut kib = 0;
    for line in smaps.lines() {
        // A mapping's header starts with its address; its fields with a
        // capitalized name.
        if line.starts_with(|c: char| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            ours = line.ends_with(&name);
        } else if ours && let Some(v) = line.strip_prefix("Rss:") {
            kib += v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap();
        }
    }
    kib
}

#[test]
#[cfg(target_os = "linux")]
fn a_released_scan_leaves_no_page_of_its_columns_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = packed(dir.path());
    let mut ds = Dataset::open(&path).unwrap();
    let data = path.join("data.arrow");
    let touch = |ds: &Dataset| -> u64 {
        ds.partitions
            .iter()
            .flat_map(|p| p.qx().iter().zip(p.qy()))
            .map(|(&x, &y)| u64::from(x ^ y))
            .sum()
    };
    touch(&ds);
    assert!(mapped_kib(&data) > 0, "the scan mapped the coordinates");
    ds.release_scanned = true;
    for (i, p) in ds.partitions.iter().enumerate() {
        ds.release(i, 0..p.len(), &[QX, QY]);
    }
    // Rounded out, the releases drop the pages at the columns' edges too
    // (and the metadata between them, which a reader faults back in).
    assert_eq!(mapped_kib(&data), 0);
    // Planning a pass over every row reads no coordinate.
    let spans = pointillist::query::all_rows(&ds, 1 << 18);
    assert_eq!(
        spans.iter().map(|s| s.rows.len() as u64).sum::<u64>(),
        ds.rows()
    );
    assert_eq!(mapped_kib(&data), 0);
    touch(&ds);
}
