//! libFuzzer entry point for [`regpress_fuzz::bundle`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    regpress_fuzz::bundle(data);
});
