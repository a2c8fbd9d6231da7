//! libFuzzer entry point for [`regpress_fuzz::layout`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    regpress_fuzz::layout(data);
});
