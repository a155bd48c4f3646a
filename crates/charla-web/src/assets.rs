//! The browser client's files (the workspace's top-level `assets/`: ES
//! modules, CSS, the icon), embedded in the binary by rust-embed.
//!
//! With the `debug-embed` feature debug builds embed too, so every build
//! serves the files it was compiled with and never reads the working
//! directory. Lookups are by exact relative path in a compiled-in map, so a
//! request like `../Cargo.toml` simply finds nothing.

use rust_embed::RustEmbed;
use std::borrow::Cow;

#[derive(RustEmbed)]
#[folder = "../../assets/"]
struct Files;

/// One embedded file, ready to serve.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The file's bytes (borrowed from the binary).
    pub bytes: Cow<'static, [u8]>,
    /// `Content-Type`, with `charset=utf-8` for text.
    pub content_type: String,
    /// A strong `ETag` (quoted) from the content hash: browsers revalidate
    /// and get `304` until a new binary ships different bytes.
    pub etag: String,
}

/// The embedded file at `path` (relative to `assets/`, no leading slash).
pub fn asset(path: &str) -> Option<Asset> {
    let file = Files::get(path)?;
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash[..12]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    );
    Some(Asset {
        content_type: content_type(path, file.metadata.mimetype()),
        bytes: file.data,
        etag,
    })
}

/// Every embedded path, for tests and diagnostics.
pub fn paths() -> impl Iterator<Item = Cow<'static, str>> {
    Files::iter()
}

/// The content type to serve: JavaScript as `text/javascript` (the one the
/// HTML standard names for module scripts, which `nosniff` checks), text
/// types with an explicit charset, anything else as mime-guess says.
fn content_type(path: &str, guessed: &str) -> String {
    if path.ends_with(".js") || path.ends_with(".mjs") {
        return "text/javascript; charset=utf-8".to_owned();
    }
    if guessed.starts_with("text/") || guessed == "image/svg+xml" {
        return format!("{guessed}; charset=utf-8");
    }
    guessed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_entry_points_are_embedded_with_their_types() {
        let css = asset("charla.css").expect("charla.css is embedded");
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        for module in [
            "js/lobby.js",
            "js/room.js",
            "js/room-view.js",
            "js/tabs.js",
            "js/dom.js",
            "js/facts.js",
            "js/connection.js",
        ] {
            let js = asset(module).unwrap_or_else(|| panic!("{module} is embedded"));
            assert_eq!(js.content_type, "text/javascript; charset=utf-8");
            assert!(!js.bytes.is_empty());
        }
        let icon = asset("icon.svg").expect("icon.svg is embedded");
        assert!(icon.content_type.starts_with("image/svg+xml"));
    }

    #[test]
    fn every_module_import_resolves_to_an_embedded_file() {
        // Module imports are relative (`from './dom.js'`): each must name an
        // embedded file, or the page fails to load with no build step to
        // notice.
        for path in paths().filter(|path| path.ends_with(".js")) {
            let file = asset(&path).unwrap();
            let text = String::from_utf8_lossy(&file.bytes);
            for import in text.split("from './").skip(1) {
                let name = &import[..import.find('\'').expect("a closing quote")];
                let target = format!("js/{name}");
                assert!(asset(&target).is_some(), "{path} imports missing {target}");
            }
        }
    }

    #[test]
    fn etags_are_quoted_and_follow_the_content() {
        let css = asset("charla.css").unwrap();
        let js = asset("js/room.js").unwrap();
        assert!(css.etag.starts_with('"') && css.etag.ends_with('"'));
        assert_eq!(css.etag.len(), 26);
        assert_ne!(css.etag, js.etag);
        assert_eq!(css.etag, asset("charla.css").unwrap().etag);
    }

    #[test]
    fn nothing_outside_the_folder_is_found() {
        for path in ["", "../Cargo.toml", "/charla.css", "js/", "missing.js"] {
            assert!(asset(path).is_none(), "{path}");
        }
    }

    #[test]
    fn no_asset_uses_inner_html() {
        // User text must only ever reach the page as text.
        for path in paths() {
            let file = asset(&path).unwrap();
            let text = String::from_utf8_lossy(&file.bytes);
            assert!(!text.contains("innerHTML"), "{path} uses innerHTML");
            assert!(!text.contains("insertAdjacentHTML"), "{path}");
            assert!(!text.contains("document.write"), "{path}");
        }
    }
}
