//! libFuzzer entry point for [`regpress_fuzz::sbom`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    regpress_fuzz::sbom(data);
});
