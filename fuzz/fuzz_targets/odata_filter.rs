//! The property checks are in `easyauth_fuzzing::odata_filter` (crates/fuzzing), shared with the
//! corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| easyauth_fuzzing::odata_filter(data));
