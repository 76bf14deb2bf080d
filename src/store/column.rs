//! Typed, zero-copy views of numeric and categorical columns.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;

/// Values readable as `f64`, implemented for every primitive a column may hold.
pub trait AsF64: Copy + Send + Sync + 'static {
    /// Whether the type is an integer (values are exact in `i64`).
    const INTEGER: bool;
    /// The value as `f64`.
    fn as_f64(self) -> f64;
    /// The value as `i64` (saturating for floats and huge `u64`).
    fn as_i64(self) -> i64;
    /// Clear each `mask[i]` whose `s[i]` lies outside `lo..=hi`.
    ///
    /// Integers compare natively against `ceil(lo)..=floor(hi)` — the same
    /// rows as comparing in `f64`, for every value `f64` holds exactly — so
    /// the loop needs no per-row int-to-float conversion and vectorizes.
    fn and_in_range(s: &[Self], lo: f64, hi: f64, mask: &mut [bool]);
}

macro_rules! impl_as_f64_int {
    ($($t:ty),*) => { $(impl AsF64 for $t {
        const INTEGER: bool = true;
        #[inline(always)] fn as_f64(self) -> f64 { self as f64 }
        #[inline(always)] fn as_i64(self) -> i64 { self as i64 }
        fn and_in_range(s: &[Self], lo: f64, hi: f64, mask: &mut [bool]) {
            if lo > <$t>::MAX as f64 || hi < <$t>::MIN as f64 || lo > hi {
                mask.fill(false);
                return;
            }
            // Float-to-int casts saturate, so open bounds (±inf) clamp to the type.
            let (lo, hi) = (lo.ceil() as $t, hi.floor() as $t);
            for (m, &v) in mask.iter_mut().zip(s) {
                *m &= (v >= lo) & (v <= hi);
            }
        }
    })* };
}
macro_rules! impl_as_f64_float {
    ($($t:ty),*) => { $(impl AsF64 for $t {
        const INTEGER: bool = false;
        #[inline(always)] fn as_f64(self) -> f64 { self as f64 }
        #[inline(always)] fn as_i64(self) -> i64 { self as i64 }
        fn and_in_range(s: &[Self], lo: f64, hi: f64, mask: &mut [bool]) {
            for (m, &v) in mask.iter_mut().zip(s) {
                let v = v as f64;
                *m &= (v >= lo) & (v <= hi);
            }
        }
    })* };
}
impl_as_f64_int!(i64, i32, i16, i8, u64, u32, u16, u8);
impl_as_f64_float!(f64, f32);

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

#[cfg(test)]
mod tests {
    use super::AsF64;
    use proptest::prelude::*;

    fn check<T: AsF64 + std::fmt::Debug>(
        values: &[T],
        lo: f64,
        hi: f64,
    ) -> Result<(), TestCaseError> {
        let mut mask = vec![true; values.len()];
        T::and_in_range(values, lo, hi, &mut mask);
        for (v, m) in values.iter().zip(&mask) {
            let f = v.as_f64();
            prop_assert_eq!(*m, f >= lo && f <= hi, "{:?} in {}..={}", v, lo, hi);
        }
        Ok(())
    }

    fn bound() -> impl Strategy<Value = f64> {
        prop_oneof![
            -1e5f64..1e5,
            (-40_000i32..40_000).prop_map(f64::from),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e300),
            Just(-1e300),
        ]
    }

    proptest! {
        #[test]
        fn native_integer_ranges_match_f64(xs in prop::collection::vec(any::<i32>(), 0..64), small in prop::collection::vec(-300i32..300, 0..64), lo in bound(), hi in bound()) {
            check(&xs, lo, hi)?;
            let as_i8: Vec<i8> = small.iter().map(|&v| v.clamp(-128, 127) as i8).collect();
            let as_u16: Vec<u16> = small.iter().map(|&v| v.unsigned_abs() as u16).collect();
            let as_i64: Vec<i64> = small.iter().map(|&v| v as i64 * 1_000_003).collect();
            check(&as_i8, lo, hi)?;
            check(&as_u16, lo, hi)?;
            check(&as_i64, lo, hi)?;
            check(&small.iter().map(|&v| v as f32 / 3.0).collect::<Vec<_>>(), lo, hi)?;
        }
    }
}
