//! The parallel, streaming, atomic Parquet pipeline behind [`generate`].

use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::{
    ChunkSource, DemoKind, GenError, GenOptions, GenReport, Projected, ais, derive_seed, towers,
};

/// Stream constant for chunk seeds (see [`derive_seed`]).
const CHUNK_STREAM: u64 = 0x6368_756e_6b73; // "chunks"

/// Upper bound on `row_group_rows`: a chunk is materialised in memory (about
/// 50 bytes a row before encoding, times two chunks per thread), so this
/// keeps a typo from turning into an out-of-memory abort.
pub const MAX_ROW_GROUP_ROWS: usize = 1 << 26;

/// One encoded row group on its way to the writer thread.
struct EncodedChunk {
    rows: usize,
    columns: Vec<ArrowColumnChunk>,
}

/// Generates the dataset described by `opts` and writes it to `opts.out`.
///
/// The work is split into chunks of `opts.row_group_rows` rows; each chunk
/// becomes one row group. Chunks are generated and Parquet-encoded in
/// parallel on the *current* rayon pool (so `pool.install(|| generate(..))`
/// controls the parallelism), at most two chunks per thread at a time, which
/// bounds memory to a few chunks regardless of `rows`. A separate thread
/// appends the encoded row groups to the file in chunk order. The output is
/// identical for any number of threads.
///
/// The file is written to `.{name}.tmp-{pid}` next to `opts.out` and renamed
/// over it only on success; on any error the temporary file is removed and
/// an existing file at `opts.out` is left untouched.
///
/// Progress is shown on stderr when it is a terminal, and a summary is
/// logged with `tracing::info!`.
pub fn generate(opts: &GenOptions) -> Result<GenReport, GenError> {
    if !(1..=MAX_ROW_GROUP_ROWS).contains(&opts.row_group_rows) {
        return Err(GenError::InvalidOptions(format!(
            "row_group_rows must be between 1 and {MAX_ROW_GROUP_ROWS}, got {}",
            opts.row_group_rows
        )));
    }
    let start = Instant::now();
    let mut source: Box<dyn ChunkSource> = match opts.kind {
        DemoKind::Towers => Box::new(towers::TowerModel::new()?),
        DemoKind::Ais => Box::new(ais::AisModel::new(opts.seed, opts.rows)?),
    };
    if let Some(columns) = &opts.columns {
        source = Box::new(Projected::new(opts.kind, source, columns)?);
    }

    let mut tmp = TempFile::create(&opts.out)?;
    let file = tmp
        .file
        .take()
        .ok_or_else(|| GenError::InvalidOptions("temp file".into()))?;
    let row_groups = write_parquet(file, source.as_ref(), opts)?;
    let bytes = std::fs::metadata(&tmp.path)
        .map(|m| m.len())
        .map_err(|e| io_err(&tmp.path, e))?;
    tmp.commit(&opts.out)?;

    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(
        kind = %opts.kind,
        rows = opts.rows,
        row_groups,
        bytes,
        seconds = format!("{seconds:.2}"),
        rows_per_sec = format!("{:.0}", opts.rows as f64 / seconds.max(1e-9)),
        out = %opts.out.display(),
        "generated demo data"
    );
    Ok(GenReport {
        rows: opts.rows,
        seconds,
        row_groups,
        bytes,
    })
}

/// Writer settings. zstd(1) costs ~1.5x snappy's encode time but gives
/// ~20% smaller files. Float columns use BYTE_STREAM_SPLIT, which groups
/// the (compressible) sign/exponent bytes so zstd gets more out of them and
/// spends less time on incompressible mantissas. Dictionary encoding is
/// switched off globally because most columns (coordinates, ids,
/// timestamps) are high-cardinality and the writer would waste time
/// building dictionaries only to fall back; it is switched back on for the
/// low-cardinality columns.
fn writer_properties(
    source: &dyn ChunkSource,
    opts: &GenOptions,
) -> Result<WriterProperties, GenError> {
    let zstd = ZstdLevel::try_new(1)?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "pointillist.gen".to_string(),
            format!(
                r#"{{"kind":"{}","rows":{},"seed":{},"row_group_rows":{}}}"#,
                opts.kind, opts.rows, opts.seed, opts.row_group_rows
            ),
        )]));
    for name in source.dictionary_columns() {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*name), true);
    }
    for field in source.schema().fields() {
        if matches!(field.data_type(), DataType::Float32 | DataType::Float64)
            && !source.dictionary_columns().contains(&field.name().as_str())
        {
            b = b.set_column_encoding(
                ColumnPath::from(field.name().as_str()),
                Encoding::BYTE_STREAM_SPLIT,
            );
        }
    }
    Ok(b.build())
}

/// Runs the chunk pipeline into `file`; returns the number of row groups.
fn write_parquet(
    file: File,
    source: &dyn ChunkSource,
    opts: &GenOptions,
) -> Result<usize, GenError> {
    let schema = source.schema();
    let props = writer_properties(source, opts)?;
    let sink = BufWriter::with_capacity(1 << 20, file);
    // ArrowWriter sets up the Parquet schema and embeds the Arrow schema in
    // the footer; we then drive its low-level halves ourselves so column
    // encoding can run on the rayon pool instead of the writer thread.
    let (mut file_writer, factory) =
        ArrowWriter::try_new(sink, schema, Some(props))?.into_serialized_writer()?;

    let rgr = opts.row_group_rows as u64;
    let n_chunks = opts.rows.div_ceil(rgr);
    let window = (2 * rayon::current_num_threads()).max(2) as u64;
    let progress = progress_bar(opts.rows);

    let (tx, rx) = mpsc::sync_channel::<EncodedChunk>(window as usize);
    let result = std::thread::scope(|s| {
        let bar = progress.clone();
        let fw = &mut file_writer;
        let writer_thread = s.spawn(move || -> Result<usize, GenError> {
            let mut written = 0;
            for chunk in rx {
                let mut rg = fw.next_row_group()?;
                for col in chunk.columns {
                    col.append_to_row_group(&mut rg)?;
                }
                rg.close()?;
                written += 1;
                bar.inc(chunk.rows as u64);
            }
            Ok(written)
        });

        let produced = (|| -> Result<(), GenError> {
            let mut next = 0u64;
            while next < n_chunks {
                let end = (next + window).min(n_chunks);
                let encoded: Vec<Result<EncodedChunk, GenError>> = (next..end)
                    .into_par_iter()
                    .map(|i| {
                        let rows = (opts.rows - i * rgr).min(rgr) as usize;
                        let batch = source.chunk(derive_seed(opts.seed, CHUNK_STREAM, i), rows)?;
                        encode_chunk(&factory, i as usize, &batch)
                    })
                    .collect();
                for chunk in encoded {
                    if tx.send(chunk?).is_err() {
                        // The writer thread stopped early; its error is
                        // reported by the join below.
                        return Ok(());
                    }
                }
                next = end;
            }
            Ok(())
        })();
        drop(tx);
        let written = writer_thread.join().map_err(|_| GenError::WriterPanicked);
        // A writer error is the root cause when both sides failed.
        let written = written??;
        produced?;
        Ok::<usize, GenError>(written)
    });
    progress.finish_and_clear();
    let row_groups = result?;
    file_writer.finish()?;
    Ok(row_groups)
}

/// Encodes one batch into Parquet column chunks (compressed pages in memory).
fn encode_chunk(
    factory: &ArrowRowGroupWriterFactory,
    index: usize,
    batch: &RecordBatch,
) -> Result<EncodedChunk, GenError> {
    let mut writers = factory.create_column_writers(index)?;
    let mut writers_iter = writers.iter_mut();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, array)? {
            let w = writers_iter
                .next()
                .ok_or_else(|| GenError::InvalidOptions("schema/column mismatch".into()))?;
            w.write(&leaf)?;
        }
    }
    let columns = writers
        .into_iter()
        .map(|w| w.close())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EncodedChunk {
        rows: batch.num_rows(),
        columns,
    })
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal
/// (logs, CI, tests).
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

fn io_err(path: &Path, source: std::io::Error) -> GenError {
    GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary output file next to the destination that deletes itself
/// unless [`TempFile::commit`] renamed it into place. Being in the same
/// directory keeps the rename atomic (same filesystem).
struct TempFile {
    path: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl TempFile {
    fn create(out: &Path) -> Result<Self, GenError> {
        let name = out.file_name().ok_or_else(|| {
            GenError::InvalidOptions(format!("output path {} has no file name", out.display()))
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let path = out.with_file_name(tmp_name);
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        Ok(Self {
            path,
            file: Some(file),
            committed: false,
        })
    }

    fn commit(mut self, out: &Path) -> Result<(), GenError> {
        self.file = None;
        std::fs::rename(&self.path, out).map_err(|e| io_err(out, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            self.file = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
