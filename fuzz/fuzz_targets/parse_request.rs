//! Fuzz target `parse_request`: any UTF-8 input is one text frame, checked
//! by `charla_fuzz::request` (check order, `ref` echo, normal form).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(frame) = charla_fuzz::as_text(data) {
        charla_fuzz::request::check(frame);
    }
});
