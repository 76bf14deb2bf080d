//! The query-string, parameter and filter parsers against a real manifest:
//! any input is parsed or refused with an error, never a panic.
#![no_main]

include!("../cases/query_params.rs");

libfuzzer_sys::fuzz_target!(|input: &[u8]| check(input));
