//! String attributes while a pack reads: coded as categories for as long as
//! they have at most [`CATEGORY_LIMIT`] distinct values, plain strings once
//! they have more.
//!
//! Readers code each batch against its own labels ([`crate::ingest::PointBatch::labels`]);
//! here those codes are renumbered into one numbering per column, in order
//! of first appearance, so buffered and spilled rows hold two-byte codes and
//! the partition writer only maps codes to the sorted labels' positions.

use super::PackError;
use crate::ingest::CATEGORY_LIMIT;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt16Type;
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch, StringArray, UInt16Array,
};
use arrow_schema::{DataType, Field, Schema};
use std::collections::HashMap;
use std::sync::Arc;

/// What one string attribute is, as far as the batches read so far tell.
#[derive(Debug)]
pub(crate) enum StringColumn {
    /// Every batch so far had few labels: buffered and spilled rows hold
    /// codes into `labels`.
    Coded {
        index: HashMap<String, u16>,
        labels: Vec<String>,
    },
    /// Too many labels: a plain string column. Rows spilled while it was
    /// still coded are decoded with `labels` when the runs are merged.
    Strings { labels: Arc<StringArray> },
}

impl StringColumn {
    fn new() -> Self {
        StringColumn::Coded {
            index: HashMap::new(),
            labels: Vec::new(),
        }
    }

    /// The column's labels in code order, while it is coded.
    pub(crate) fn categories(&self) -> Option<&[String]> {
        match self {
            StringColumn::Coded { labels, .. } => Some(labels),
            StringColumn::Strings { .. } => None,
        }
    }

    /// Labels that decode codes in spilled runs, once the column is strings.
    pub(crate) fn decoder(&self) -> Option<Arc<StringArray>> {
        match self {
            StringColumn::Coded { .. } => None,
            StringColumn::Strings { labels } => Some(labels.clone()),
        }
    }
}

/// The string attributes of a pack, by attribute index (None: not a string).
#[derive(Debug)]
pub(crate) struct StringColumns(pub(crate) Vec<Option<StringColumn>>);

impl StringColumns {
    /// One state per attribute of `attrs`; strings start coded.
    pub(crate) fn new(attrs: &Schema) -> Self {
        StringColumns(
            attrs
                .fields()
                .iter()
                .map(|f| (f.data_type() == &DataType::Utf8).then(StringColumn::new))
                .collect(),
        )
    }

    /// Renumber the codes of `attrs` (a batch's attributes, coded against
    /// `batch_labels`) into each column's numbering, or
    /// turn the column into strings when it passes the limit; `buffered`
    /// (batches taken before, all in the column's current form) are decoded
    /// when that happens. Returns the batch in the columns' current form,
    /// and whether buffered batches were decoded.
    pub(crate) fn take(
        &mut self,
        attrs: RecordBatch,
        batch_labels: &[(usize, Vec<String>)],
        buffered: &mut [RecordBatch],
    ) -> Result<(RecordBatch, bool), PackError> {
        let mut batch = attrs;
        let mut flipped = false;
        for (ci, state) in self.0.iter_mut().enumerate() {
            let Some(state) = state else { continue };
            let local = batch_labels.iter().find(|(i, _)| *i == ci).map(|(_, l)| l);
            let coded_within_limit = match (&mut *state, local) {
                (StringColumn::Coded { index, labels }, Some(local)) => {
                    let table: Vec<u16> = local
                        .iter()
                        .map(|l| {
                            let next = labels.len() as u16;
                            *index.entry(l.clone()).or_insert_with(|| {
                                labels.push(l.clone());
                                next
                            })
                        })
                        .collect();
                    (labels.len() <= CATEGORY_LIMIT).then_some(table)
                }
                _ => None,
            };
            if let Some(table) = coded_within_limit {
                let codes = batch.column(ci).as_primitive::<UInt16Type>();
                let renumbered = map_codes::<UInt16Type>(codes, &table);
                batch = replace(&batch, ci, Arc::new(renumbered))?;
                continue;
            }
            // Strings from here on: this batch decodes with its own labels
            // and, if the column was coded, the buffered ones with the
            // column's (which the labels just added to it do not disturb).
            if let Some(local) = local {
                batch = decode(&batch, ci, &StringArray::from_iter_values(local))?;
            }
            flipped |= flip(state, ci, buffered)?;
        }
        Ok((batch, flipped))
    }

    /// Per attribute: labels decoding spilled codes of a column that ended
    /// as strings.
    pub(crate) fn decoders(&self) -> Vec<Option<Arc<StringArray>>> {
        self.0
            .iter()
            .map(|s| s.as_ref().and_then(StringColumn::decoder))
            .collect()
    }
}

/// Turn a coded column into strings, decoding the buffered batches; false
/// if it was strings already.
fn flip(
    state: &mut StringColumn,
    ci: usize,
    buffered: &mut [RecordBatch],
) -> Result<bool, PackError> {
    let StringColumn::Coded { labels, .. } = state else {
        return Ok(false);
    };
    let labels = Arc::new(StringArray::from(std::mem::take(labels)));
    for b in buffered.iter_mut() {
        *b = decode(b, ci, &labels)?;
    }
    tracing::debug!(
        column = ci,
        labels = labels.len(),
        "too many labels to be a category; kept as strings"
    );
    *state = StringColumn::Strings { labels };
    Ok(true)
}

/// `codes` mapped through `table` (code → new value), nulls kept. A code
/// past the table (only under a null: readers code nothing else that way)
/// maps to the default value.
pub(crate) fn map_codes<T: ArrowPrimitiveType>(
    codes: &UInt16Array,
    table: &[T::Native],
) -> PrimitiveArray<T> {
    let values = codes
        .values()
        .iter()
        .map(|&c| table.get(c as usize).copied().unwrap_or_default())
        .collect();
    PrimitiveArray::new(values, codes.nulls().cloned())
}

/// Column `ci` of `batch`, if it holds codes, replaced by their labels.
pub(crate) fn decode(
    batch: &RecordBatch,
    ci: usize,
    labels: &StringArray,
) -> Result<RecordBatch, PackError> {
    let Some(codes) = batch.column(ci).as_primitive_opt::<UInt16Type>() else {
        return Ok(batch.clone());
    };
    let strings = arrow_select::take::take(labels, codes, None)?;
    replace(batch, ci, strings)
}

/// `batch` with column `ci` replaced (and its field retyped).
fn replace(batch: &RecordBatch, ci: usize, array: ArrayRef) -> Result<RecordBatch, PackError> {
    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    if fields[ci].data_type() != array.data_type() {
        fields[ci] = Arc::new(Field::new(
            fields[ci].name(),
            array.data_type().clone(),
            true,
        ));
    }
    let mut columns = batch.columns().to_vec();
    columns[ci] = array;
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(codes: &[u16]) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("s", DataType::UInt16, true)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(UInt16Array::from(codes.to_vec()))],
        )
        .unwrap()
    }

    fn strings(b: &RecordBatch) -> Vec<Option<String>> {
        b.column(0)
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

    fn labels(l: &[&str]) -> Vec<(usize, Vec<String>)> {
        vec![(0, l.iter().map(|s| s.to_string()).collect())]
    }

    #[test]
    fn codes_are_renumbered_then_decoded_when_a_column_has_too_many_labels() {
        let attrs = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        let mut cols = StringColumns::new(&attrs);
        let mut buffered = Vec::new();
        // Batch labels in each batch's own order; codes into one numbering.
        let (b1, f) = cols
            .take(coded(&[0, 1, 0]), &labels(&["b", "a"]), &mut buffered)
            .unwrap();
        assert!(!f);
        assert_eq!(
            b1.column(0).as_primitive::<UInt16Type>().values(),
            &[0, 1, 0]
        );
        buffered.push(b1);
        let (b2, _) = cols
            .take(coded(&[1, 0]), &labels(&["a", "c"]), &mut buffered)
            .unwrap();
        assert_eq!(b2.column(0).as_primitive::<UInt16Type>().values(), &[2, 1]);
        buffered.push(b2);
        assert_eq!(
            cols.0[0].as_ref().unwrap().categories().unwrap(),
            &["b", "a", "c"]
        );
        // A batch of plain strings (too many labels in it): every buffered
        // batch is decoded, and the column stays strings.
        let plain = RecordBatch::try_new(
            Arc::new(attrs.clone()),
            vec![Arc::new(StringArray::from(vec!["x", "y"]))],
        )
        .unwrap();
        let (b3, f) = cols.take(plain, &[], &mut buffered).unwrap();
        assert!(f);
        assert_eq!(strings(&b3), [Some("x".into()), Some("y".into())]);
        assert_eq!(
            strings(&buffered[0]),
            ["b", "a", "b"].map(|s| Some(s.to_string()))
        );
        assert_eq!(
            strings(&buffered[1]),
            ["c", "a"].map(|s| Some(s.to_string()))
        );
        // Later coded batches decode with their own labels.
        let (b4, f) = cols
            .take(coded(&[0, 0]), &labels(&["q"]), &mut buffered)
            .unwrap();
        assert!(!f);
        assert_eq!(strings(&b4), ["q", "q"].map(|s| Some(s.to_string())));
        // Runs spilled while coded decode with the labels from before.
        let d = cols.decoders();
        let d = d[0].as_ref().unwrap();
        assert_eq!(d.iter().flatten().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert!(cols.0[0].as_ref().unwrap().categories().is_none());
    }

    #[test]
    fn a_column_passing_the_limit_across_batches_becomes_strings() {
        let attrs = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        let mut cols = StringColumns::new(&attrs);
        let mut buffered = Vec::new();
        let half = CATEGORY_LIMIT / 2 + 1;
        for part in 0..2 {
            let names: Vec<String> = (0..half).map(|i| format!("{part}-{i}")).collect();
            let codes: Vec<u16> = (0..half as u16).collect();
            let (b, flipped) = cols
                .take(coded(&codes), &[(0, names.clone())], &mut buffered)
                .unwrap();
            assert_eq!(flipped, part == 1);
            if part == 1 {
                // This batch decodes with its own labels.
                assert_eq!(strings(&b)[3].as_deref(), Some("1-3"));
                assert_eq!(strings(&buffered[0])[3].as_deref(), Some("0-3"));
            }
            buffered.push(b);
        }
    }
}
