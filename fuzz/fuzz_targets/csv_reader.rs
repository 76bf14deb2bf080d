//! `pack` of an arbitrary CSV file: it packs, or fails with an error that
//! leaves nothing behind; it never panics.
#![no_main]

include!("../cases/csv_reader.rs");

libfuzzer_sys::fuzz_target!(|input: &[u8]| check(input));
