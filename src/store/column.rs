//! Typed, zero-copy views of numeric and categorical columns.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;

/// Values readable as `f64`, implemented for every primitive a column may hold.
pub trait AsF64: Copy + Send + Sync + 'static {
    /// The value as `f64`.
    fn as_f64(self) -> f64;
}

macro_rules! impl_as_f64 {
    ($($t:ty),*) => { $(impl AsF64 for $t { #[inline(always)] fn as_f64(self) -> f64 { self as f64 } })* };
}
impl_as_f64!(f64, f32, i64, i32, i16, i8, u64, u32, u16, u8);

/// A numeric (or temporal) column's values as a typed slice plus its validity.
#[derive(Clone, Copy, Debug)]
pub enum NumSlice<'a> {
    /// Float64 values.
    F64(&'a [f64]),
    /// Float32 values.
    F32(&'a [f32]),
    /// Int64 values (also timestamps, in µs).
    I64(&'a [i64]),
    /// Int32 values.
    I32(&'a [i32]),
    /// Int16 values.
    I16(&'a [i16]),
    /// Int8 values.
    I8(&'a [i8]),
    /// UInt64 values.
    U64(&'a [u64]),
    /// UInt32 values.
    U32(&'a [u32]),
    /// UInt16 values.
    U16(&'a [u16]),
    /// UInt8 values.
    U8(&'a [u8]),
}

/// A numeric column: typed values plus nulls.
#[derive(Clone, Copy, Debug)]
pub struct NumColumn<'a> {
    /// The values.
    pub values: NumSlice<'a>,
    /// Validity, if the column has nulls.
    pub nulls: Option<&'a NullBuffer>,
}

/// Run `$body` with `$s` bound to the concrete slice of a [`NumSlice`], so
/// hot loops are monomorphized per element type instead of matching per row.
#[macro_export]
macro_rules! with_num_slice {
    ($view:expr, |$s:ident| $body:expr) => {
        match $view {
            $crate::store::column::NumSlice::F64($s) => $body,
            $crate::store::column::NumSlice::F32($s) => $body,
            $crate::store::column::NumSlice::I64($s) => $body,
            $crate::store::column::NumSlice::I32($s) => $body,
            $crate::store::column::NumSlice::I16($s) => $body,
            $crate::store::column::NumSlice::I8($s) => $body,
            $crate::store::column::NumSlice::U64($s) => $body,
            $crate::store::column::NumSlice::U32($s) => $body,
            $crate::store::column::NumSlice::U16($s) => $body,
            $crate::store::column::NumSlice::U8($s) => $body,
        }
    };
}

impl<'a> NumColumn<'a> {
    /// View an array as numbers: primitive numerics and timestamps (µs).
    /// Booleans and strings return `None`.
    pub fn new(array: &'a ArrayRef) -> Option<NumColumn<'a>> {
        let values = match array.data_type() {
            DataType::Float64 => NumSlice::F64(array.as_primitive::<Float64Type>().values()),
            DataType::Float32 => NumSlice::F32(array.as_primitive::<Float32Type>().values()),
            DataType::Int64 => NumSlice::I64(array.as_primitive::<Int64Type>().values()),
            DataType::Int32 => NumSlice::I32(array.as_primitive::<Int32Type>().values()),
            DataType::Int16 => NumSlice::I16(array.as_primitive::<Int16Type>().values()),
            DataType::Int8 => NumSlice::I8(array.as_primitive::<Int8Type>().values()),
            DataType::UInt64 => NumSlice::U64(array.as_primitive::<UInt64Type>().values()),
            DataType::UInt32 => NumSlice::U32(array.as_primitive::<UInt32Type>().values()),
            DataType::UInt16 => NumSlice::U16(array.as_primitive::<UInt16Type>().values()),
            DataType::UInt8 => NumSlice::U8(array.as_primitive::<UInt8Type>().values()),
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
                NumSlice::I64(array.as_primitive::<TimestampMicrosecondType>().values())
            }
            _ => return None,
        };
        Some(NumColumn {
            values,
            nulls: array.nulls(),
        })
    }

    /// Value at `i` as `f64`; NaN when null.
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        if let Some(n) = self.nulls {
            if n.is_null(i) {
                return f64::NAN;
            }
        }
        with_num_slice!(self.values, |s| s[i].as_f64())
    }
}

/// Dictionary codes of a categorical column (Int16 keys into the manifest's
/// category list).
#[derive(Clone, Copy, Debug)]
pub struct CatColumn<'a> {
    /// Codes per row. A code may lie outside `0..categories` in a damaged
    /// file ([`crate::store::Dataset::open`] does not read every code); read
    /// them through [`CatColumn::get`], or check them against `categories`.
    pub codes: &'a [i16],
    /// Validity.
    pub nulls: Option<&'a NullBuffer>,
    /// Number of categories (labels in the dictionary).
    pub categories: usize,
}

impl<'a> CatColumn<'a> {
    /// View a `Dictionary<Int16, Utf8>` array's codes.
    pub fn new(array: &'a ArrayRef) -> Option<CatColumn<'a>> {
        let dict = array.as_dictionary_opt::<Int16Type>()?;
        Some(CatColumn {
            codes: dict.keys().values(),
            nulls: dict.keys().nulls(),
            categories: dict.values().len(),
        })
    }

    /// Code at `i`, or `None` when null (or not a valid code).
    #[inline]
    pub fn get(&self, i: usize) -> Option<usize> {
        if let Some(n) = self.nulls {
            if n.is_null(i) {
                return None;
            }
        }
        // A negative code becomes a large usize and fails the same test.
        let c = self.codes[i] as u16 as usize;
        (c < self.categories).then_some(c)
    }
}
