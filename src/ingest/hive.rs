//! Hive-style partition folders (`radio=LTE/part-0.parquet`), as DuckDB,
//! Spark, Athena and Overture write them: each `key=value` folder on a
//! file's path is a column of every row of the file, typed like any other
//! column (integers, floats, else text, which becomes categorical).

use super::IngestError;
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Hive's name for a partition whose value was null.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The `key=value` folders on `path`, outermost first; values are
/// percent-decoded (Hive escapes `/`, `=` and the like) and Hive's null
/// partition is `None`.
pub(super) fn values(path: &Path) -> Vec<(String, Option<String>)> {
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    dir.components()
        .filter_map(|c| {
            let c = c.as_os_str().to_str()?;
            let (k, v) = c.split_once('=')?;
            if k.is_empty() {
                return None;
            }
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            Some((
                k.to_string(),
                (v != NULL_PARTITION && !v.is_empty()).then(|| v.into_owned()),
            ))
        })
        .collect()
}

/// The partition columns of `files`: every file must sit under the same
/// keys, in the same order (mixed layouts are refused rather than filled
/// with nulls). A key's type is Int64 when every value is an integer,
/// Float64 when every value is a number, and text otherwise.
pub(super) fn fields(files: &[PathBuf]) -> Result<Vec<Field>, IngestError> {
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = values(first).into_iter().map(|(k, _)| k).collect();
    let mut ints = vec![true; keys.len()];
    let mut floats = vec![true; keys.len()];
    for f in files {
        let vals = values(f);
        if vals.len() != keys.len() || vals.iter().zip(&keys).any(|((k, _), key)| k != key) {
            return Err(IngestError::Schema {
                path: f.clone(),
                message: format!(
                    "Hive partition folders {:?} differ from {}'s {keys:?}; every file must sit under the same key=value folders",
                    vals.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                    first.display()
                ),
            });
        }
        for (i, (_, v)) in vals.iter().enumerate() {
            if let Some(v) = v {
                ints[i] &= v.parse::<i64>().is_ok();
                floats[i] &= v.parse::<f64>().is_ok_and(f64::is_finite);
            }
        }
    }
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let t = if ints[i] {
                DataType::Int64
            } else if floats[i] {
                DataType::Float64
            } else {
                DataType::Utf8
            };
            Field::new(k, t, true)
        })
        .collect())
}

/// `schema` with the partition columns after the file's own; a column
/// that is both in the file and a folder name is refused as ambiguous.
pub(super) fn with_fields(
    path: &Path,
    schema: &SchemaRef,
    hive: &[Field],
) -> Result<SchemaRef, IngestError> {
    if hive.is_empty() {
        return Ok(schema.clone());
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for h in hive {
        if schema.field_with_name(h.name()).is_ok() {
            return Err(IngestError::Schema {
                path: path.to_path_buf(),
                message: format!(
                    "column {:?} is both in the file and a Hive partition folder",
                    h.name()
                ),
            });
        }
        fields.push(h.clone());
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// `batch` with one constant column per partition key appended.
pub(super) fn append(
    path: &Path,
    batch: &RecordBatch,
    hive: &[Field],
    values: &[(String, Option<String>)],
) -> Result<RecordBatch, IngestError> {
    let n = batch.num_rows();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (f, (_, v)) in hive.iter().zip(values) {
        let text: ArrayRef = Arc::new(StringArray::from_iter(std::iter::repeat_n(v.as_deref(), n)));
        let typed = arrow_cast::cast(&text, f.data_type()).map_err(|e| super::fmt_err(path, e))?;
        fields.push(f.clone());
        columns.push(typed);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| super::fmt_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_become_typed_values() {
        let p = Path::new(
            "data/year=2024/radio=LTE%2F5G/city=__HIVE_DEFAULT_PARTITION__/part-0.parquet",
        );
        assert_eq!(
            values(p),
            vec![
                ("year".into(), Some("2024".into())),
                ("radio".into(), Some("LTE/5G".into())),
                ("city".into(), None),
            ]
        );
        let files = vec![
            PathBuf::from("d/year=2024/mcc=1.5/part.parquet"),
            PathBuf::from("d/year=2025/mcc=x/part.parquet"),
        ];
        let f = fields(&files).unwrap();
        assert_eq!(f[0].data_type(), &DataType::Int64);
        assert_eq!(f[1].data_type(), &DataType::Utf8);
        let mixed = vec![
            PathBuf::from("d/year=2024/part.parquet"),
            PathBuf::from("d/radio=LTE/part.parquet"),
        ];
        assert!(fields(&mixed).is_err());
    }
}
