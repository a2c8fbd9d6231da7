//! libFuzzer entry point for [`regpress_fuzz::id_token`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    regpress_fuzz::id_token(data);
});
