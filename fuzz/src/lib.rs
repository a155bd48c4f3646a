//! Properties of Charla's wire contract (`charla-protocol`) that must hold
//! for any input a client can send, checked by the cargo-fuzz targets in
//! `fuzz_targets/` and, on the committed seeds, by `cargo test` here.
//!
//! The targets only hand libFuzzer's bytes to these checks, so the checks
//! can be read, tested and reused without libFuzzer. docs/fuzzing.md tells
//! how to run them.
//!
//! # Layout
//!
//! - [`request`]: `parse_request` against the check order and the `ref`
//!   rules (docs/protocol.md, rules 7, 8, 19 and 28).
//! - [`names`]: `RoomName::parse`, `DisplayName::parse` and
//!   `MessageText::parse` against the name rules, both ways, and their
//!   idempotence.

pub mod names;
pub mod request;

/// The input as text, when it is UTF-8: a WebSocket text frame always is
/// (the server never sees other bytes as a request), so other inputs are
/// skipped rather than made valid, which would fuzz a different input.
pub fn as_text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file under `dir` (relative to this crate), read as text.
    fn files(dir: &str) -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                (path.display().to_string(), text)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_request_seed_passes() {
        let seeds = files("seeds/parse_request");
        assert!(!seeds.is_empty());
        for (path, text) in seeds {
            eprintln!("{path}");
            super::request::check(&text);
        }
    }

    #[test]
    fn every_name_seed_passes() {
        let seeds = files("seeds/names");
        assert!(!seeds.is_empty());
        for (path, text) in seeds {
            eprintln!("{path}");
            super::names::check(&text);
        }
    }
}
