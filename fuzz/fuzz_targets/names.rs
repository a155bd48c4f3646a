//! Fuzz target `names`: any UTF-8 input is a room name, a display name and
//! a message text at once, checked by `charla_fuzz::names`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(raw) = charla_fuzz::as_text(data) {
        charla_fuzz::names::check(raw);
    }
});
