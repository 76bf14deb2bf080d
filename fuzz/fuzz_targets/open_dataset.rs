//! `Dataset::open` on mutated datasets: the input is a manifest, a data
//! file and an overview (see `split`); whatever opens must also survive
//! `verify` and a few queries, and nothing may panic or fault.
#![no_main]

include!("../cases/open_dataset.rs");

libfuzzer_sys::fuzz_target!(|input: &[u8]| check(input));
