//! Viewport and tile cover: for any box and budget the cover is bounded,
//! sorted, disjoint and holds every point of the box.
#![no_main]

include!("../cases/cover.rs");

libfuzzer_sys::fuzz_target!(|input: Input| check(input));
