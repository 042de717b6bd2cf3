#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cleave_fuzz::redirect_targets(data));
