//! Writes sorted rows as partitions of the packed Arrow IPC file and builds
//! the manifest.

use super::stats::Accumulator;
use super::{PackError, SortRow, gather, io};
use crate::store::{
    Bounds, ColumnInfo, ColumnKind, ColumnZone, DATA_FILE, FORMAT_VERSION, Manifest, PartitionInfo,
    QX, QY,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, UInt16Type, UInt32Type};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Column {
    name: String,
    kind: ColumnKind,
    /// For categorical columns: each input code's position among the
    /// sorted labels, and the sorted labels.
    dict: Option<(Vec<i16>, Arc<StringArray>)>,
    acc: Accumulator,
}

type IpcFile = arrow_ipc::writer::FileWriter<BufWriter<std::fs::File>>;

/// The data file's writer on a thread of its own, so that encoding and
/// writing one partition overlaps gathering the next (two in flight).
struct Sink {
    tx: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    thread: Option<std::thread::JoinHandle<Result<BufWriter<std::fs::File>, PackError>>>,
}

impl Sink {
    fn start(mut writer: IpcFile) -> Sink {
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let thread = std::thread::Builder::new()
            .name("pack-writer".into())
            .spawn(move || {
                for batch in rx {
                    writer.write(&batch)?;
                }
                writer.finish()?;
                Ok(writer.into_inner()?)
            });
        match thread {
            Ok(t) => Sink {
                tx: Some(tx),
                thread: Some(t),
            },
            // No thread to be had: `send` reports it.
            Err(_) => Sink {
                tx: None,
                thread: None,
            },
        }
    }

    /// Queue a batch; fails with the writer's error if it stopped.
    fn send(&mut self, batch: RecordBatch) -> Result<(), PackError> {
        match &self.tx {
            Some(tx) if tx.send(batch).is_ok() => Ok(()),
            _ => self.finish().map(|_| ()).and(Err(PackError::Options(
                "the data file's writer stopped".into(),
            ))),
        }
    }

    /// Close the file's IPC stream and hand back the buffered file.
    fn finish(&mut self) -> Result<BufWriter<std::fs::File>, PackError> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(PackError::Options("the data file's writer panicked".into()))
            }),
            None => Err(PackError::Options(
                "the data file's writer could not start or has finished".into(),
            )),
        }
    }
}

/// Appends partitions (one record batch each) to the data file.
pub struct PartitionWriter {
    path: PathBuf,
    writer: Sink,
    schema: SchemaRef,
    columns: Vec<Column>,
    partitions: Vec<PartitionInfo>,
    rows: u64,
    bounds: [u32; 4],
    /// Seconds spent gathering rows, encoding columns (dictionaries, zone
    /// maps) and waiting for the writer thread to take a batch (`write_s`:
    /// near 0 while writing keeps up), logged at the end.
    seconds: [f64; 3],
}

impl PartitionWriter {
    /// Create the data file in `dir`. `input` is the schema of the gathered
    /// batches (`_qx`, `_qy`, attributes); `categories[i]` turns attribute `i`
    /// (`UInt16` codes into those labels) into a dictionary column whose
    /// labels are sorted.
    pub fn create(
        dir: &Path,
        input: &SchemaRef,
        categories: &[Option<Vec<String>>],
    ) -> Result<Self, PackError> {
        let mut fields = vec![
            Field::new(QX, DataType::UInt32, false),
            Field::new(QY, DataType::UInt32, false),
        ];
        let mut columns = Vec::new();
        for (i, f) in input.fields().iter().skip(2).enumerate() {
            let cats = categories
                .get(i)
                .cloned()
                .flatten()
                .filter(|_| f.data_type() == &DataType::UInt16);
            let (field, dict) = match cats {
                Some(labels) => {
                    let mut sorted: Vec<(usize, String)> = labels.into_iter().enumerate().collect();
                    sorted.sort_unstable_by(|a, b| a.1.cmp(&b.1));
                    let mut position = vec![0i16; sorted.len()];
                    for (p, (code, _)) in sorted.iter().enumerate() {
                        position[*code] = p as i16;
                    }
                    let values = Arc::new(StringArray::from_iter_values(
                        sorted.iter().map(|(_, l)| l.as_str()),
                    ));
                    let dt =
                        DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8));
                    (Field::new(f.name(), dt, true), Some((position, values)))
                }
                None => (Field::new(f.name(), f.data_type().clone(), true), None),
            };
            let kind = ColumnKind::of(field.data_type());
            let ncat = dict.as_ref().map_or(0, |d| d.1.len());
            fields.push(field);
            columns.push(Column {
                name: f.name().clone(),
                kind,
                dict,
                acc: Accumulator::new(ncat),
            });
        }
        let schema = Arc::new(Schema::new(fields));
        let path = dir.join(DATA_FILE);
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        // The default options align buffers to 64 bytes, which the zero-copy reader requires.
        let writer = arrow_ipc::writer::FileWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            &schema,
        )?;
        Ok(PartitionWriter {
            path,
            writer: Sink::start(writer),
            schema,
            columns,
            partitions: Vec::new(),
            rows: 0,
            bounds: [u32::MAX, u32::MAX, 0, 0],
            seconds: [0.0; 3],
        })
    }

    /// Write one partition made of `rows` (key, batch, row) of `batches`,
    /// sorted by key.
    pub(crate) fn write(
        &mut self,
        batches: &[RecordBatch],
        rows: &[SortRow],
    ) -> Result<(), PackError> {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(());
        };
        let t = std::time::Instant::now();
        let mut cols = gather(batches, rows)?;
        self.seconds[0] += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let qx = cols[0].as_primitive::<UInt32Type>().values();
        let qy = cols[1].as_primitive::<UInt32Type>().values();
        let b = [
            *qx.iter().min().expect("non-empty"),
            *qy.iter().min().expect("non-empty"),
            *qx.iter().max().expect("non-empty"),
            *qy.iter().max().expect("non-empty"),
        ];
        self.bounds = [
            self.bounds[0].min(b[0]),
            self.bounds[1].min(b[1]),
            self.bounds[2].max(b[2]),
            self.bounds[3].max(b[3]),
        ];
        // Columns are independent: encode dictionaries and fold statistics
        // for all of them in parallel.
        let attrs = cols.split_off(2);
        let done: Vec<(ArrayRef, ColumnZone)> = self
            .columns
            .par_iter_mut()
            .zip(attrs)
            .map(
                |(col, array)| -> Result<(ArrayRef, ColumnZone), PackError> {
                    let array = match &col.dict {
                        Some((position, values)) => {
                            let codes = super::labels::map_codes::<Int16Type>(
                                array.as_primitive::<UInt16Type>(),
                                position,
                            );
                            Arc::new(DictionaryArray::<Int16Type>::try_new(
                                codes,
                                values.clone() as ArrayRef,
                            )?)
                        }
                        None => array,
                    };
                    let zone = col.acc.add(col.kind, &array);
                    Ok((array, zone))
                },
            )
            .collect::<Result<_, _>>()?;
        let mut zones = BTreeMap::new();
        for (col, (array, zone)) in self.columns.iter().zip(done) {
            cols.push(array);
            zones.insert(col.name.clone(), zone);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        self.seconds[1] += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        self.writer.send(batch)?;
        self.seconds[2] += t.elapsed().as_secs_f64();
        self.partitions.push(PartitionInfo {
            row_start: self.rows,
            rows: rows.len() as u64,
            key_min: first.0,
            key_max: last.0,
            bounds: Bounds::from_quantized(b[0], b[1], b[2], b[3]),
            columns: zones,
        });
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Close the data file (flushed and synced) and describe it.
    pub fn finish(
        mut self,
        name: &str,
        dropped: u64,
        source: Vec<String>,
    ) -> Result<Manifest, PackError> {
        let [gather_s, encode_s, write_s] = self.seconds;
        tracing::info!(
            partitions = self.partitions.len(),
            gather_s = format!("{gather_s:.2}"),
            encode_s = format!("{encode_s:.2}"),
            write_s = format!("{write_s:.2}"),
            "partitions written"
        );
        let mut inner = self.writer.finish()?;
        inner.flush().map_err(io(&self.path))?;
        let file = inner.into_inner().map_err(|e| PackError::Io {
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&self.path))?;
        let data_bytes = file.metadata().map_err(io(&self.path))?.len();
        let columns = self
            .columns
            .iter()
            .zip(self.schema.fields().iter().skip(2))
            .map(|(c, f)| ColumnInfo {
                name: c.name.clone(),
                kind: c.kind,
                arrow_type: f.data_type().to_string(),
                categories: c
                    .dict
                    .as_ref()
                    .map(|(_, v)| v.iter().flatten().map(str::to_string).collect())
                    .unwrap_or_default(),
                stats: c.acc.finish(c.kind),
            })
            .collect();
        let b = self.bounds;
        Ok(Manifest {
            format: "pointillist-packed".into(),
            version: FORMAT_VERSION,
            name: name.to_string(),
            rows: self.rows,
            dropped_rows: dropped,
            bounds: Bounds::from_quantized(b[0], b[1], b[2], b[3]),
            columns,
            partitions: self.partitions,
            data_bytes,
            source,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            overview: None,
            stats: None,
        })
    }
}
