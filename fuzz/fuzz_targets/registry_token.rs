//! libFuzzer entry point for [`regpress_fuzz::registry_token`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    regpress_fuzz::registry_token(data);
});
