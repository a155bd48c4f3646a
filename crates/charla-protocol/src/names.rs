//! Validated names and text. Each type can only be built through its `parse`,
//! so a value that reaches the server's state has passed the contract's rules
//! (docs/protocol.md, "Names and limits" and rule 2):
//!
//! - a room name is ASCII-lowercased, then holds 1 to [`MAX_ROOM_CHARS`] of
//!   `a-z`, `0-9`, `_` and `-` and starts with a letter or digit (lowercasing
//!   only ASCII keeps look-alikes such as the Kelvin sign out);
//! - a display name is trimmed of Unicode white space, holds 1 to
//!   [`MAX_NAME_CHARS`] Unicode scalar values and no control character (C0,
//!   DEL, C1), format character (general category Cf: bidi controls such as
//!   U+202E, zero-width characters such as U+200B, U+FEFF) or line or
//!   paragraph separator anywhere: nothing in a name can reorder or hide
//!   the text around it, or make two names look alike by invisible means.
//!   The one exception is the zero-width joiner between two emoji, which
//!   is how emoji such as 👩‍🚀 are written;
//! - message text is trimmed and holds 1 to [`MAX_TEXT_CHARS`] Unicode scalar
//!   values.

use crate::{ErrorCode, MAX_NAME_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS, SECRET_CHARS};
use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_properties::{GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

/// A valid, lowercased room name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    /// Lowercases `raw` and checks it against the room-name pattern.
    pub fn parse(raw: &str) -> Result<RoomName, ErrorCode> {
        let name = raw.to_ascii_lowercase();
        let bytes = name.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes[1.min(bytes.len())..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if first_ok && rest_ok && bytes.len() <= MAX_ROOM_CHARS {
            Ok(RoomName(name))
        } else {
            Err(ErrorCode::InvalidRoom)
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for RoomName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A valid, trimmed display name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims `raw` and checks its length and that it has no invisible or
    /// reordering character.
    pub fn parse(raw: &str) -> Result<DisplayName, ErrorCode> {
        let name = raw.trim();
        let chars = name.chars().count();
        if (1..=MAX_NAME_CHARS).contains(&chars) && !has_forbidden_char(name) {
            Ok(DisplayName(name.to_owned()))
        } else {
            Err(ErrorCode::InvalidName)
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The zero-width joiner: Cf, but the glue of emoji sequences (👩‍🚀).
const ZERO_WIDTH_JOINER: char = '\u{200d}';
/// Variation selector 16, asking for emoji presentation (Mn, allowed).
const EMOJI_PRESENTATION: char = '\u{fe0f}';

/// Whether `name` holds a control character (Cc), a format character (Cf)
/// or a line or paragraph separator (Zl, Zp), but for a zero-width joiner
/// inside an emoji sequence.
fn has_forbidden_char(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    chars.iter().enumerate().any(|(i, &c)| {
        let forbidden = matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        );
        forbidden && !(c == ZERO_WIDTH_JOINER && joins_emoji(&chars, i))
    })
}

/// Whether the joiner at `at` stands between an emoji (possibly with its
/// presentation selector) and another emoji.
fn joins_emoji(chars: &[char], at: usize) -> bool {
    let is_emoji = |c: &char| !c.is_ascii() && c.is_emoji_char();
    let before = at
        .checked_sub(1)
        .and_then(|i| chars.get(i))
        .is_some_and(|c| *c == EMOJI_PRESENTATION || is_emoji(c));
    before && chars.get(at + 1).is_some_and(is_emoji)
}

/// Valid, trimmed message text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageText(String);

impl MessageText {
    /// Trims `raw` and checks its length.
    pub fn parse(raw: &str) -> Result<MessageText, ErrorCode> {
        let text = raw.trim();
        let chars = text.chars().count();
        if (1..=MAX_TEXT_CHARS).contains(&chars) {
            Ok(MessageText(text.to_owned()))
        } else {
            Err(ErrorCode::InvalidText)
        }
    }

    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// An identity's secret as a client presents it: [`SECRET_CHARS`]
/// lowercase hex digits (docs/protocol.md, rule 49). Its `Debug` never
/// prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Checks the shape of a presented secret.
    pub fn parse(raw: &str) -> Option<Secret> {
        let valid = raw.len() == SECRET_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Secret(raw.to_owned()))
    }

    /// The secret's hex digits.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_lowercased_and_checked() {
        assert_eq!(RoomName::parse("General").unwrap().as_str(), "general");
        assert_eq!(RoomName::parse("a").unwrap().as_str(), "a");
        assert_eq!(RoomName::parse("0-rust_es").unwrap().as_str(), "0-rust_es");
        assert_eq!(RoomName::parse(&"a".repeat(64)).unwrap().as_str().len(), 64);
        for bad in [
            "",
            "-lead",
            "_lead",
            "has space",
            "dot.ted",
            "ünï",
            "\u{212A}elvin",
            "a/b",
            &"a".repeat(65),
        ] {
            assert_eq!(RoomName::parse(bad), Err(ErrorCode::InvalidRoom), "{bad:?}");
        }
    }

    #[test]
    fn display_names_are_trimmed_counted_in_scalars_and_free_of_controls() {
        assert_eq!(
            DisplayName::parse("  ana \u{3000}").unwrap().as_str(),
            "ana"
        );
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
        // An astronaut is three scalar values: ten fit in 32, eleven do not.
        assert!(DisplayName::parse(&"👩‍🚀".repeat(10)).is_ok());
        assert!(DisplayName::parse(&"👩‍🚀".repeat(11)).is_err());
        assert!(DisplayName::parse(&"👍".repeat(32)).is_ok());
        // Emoji sequences keep their joiners: a rainbow flag, a family.
        assert!(DisplayName::parse("ana 🏳\u{fe0f}\u{200d}🌈").is_ok());
        assert!(DisplayName::parse("👨\u{200d}👩\u{200d}👧").is_ok());
        for bad in [
            "",
            "   ",
            "a\u{0}b",
            "a\tb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9f}",
            &"x".repeat(33),
            // Bidi overrides and isolates, zero-width characters, a BOM,
            // a line separator: all would hide or reorder text.
            "ana\u{202e}",
            "\u{202e}ana",
            "an\u{200b}a",
            "a\u{2066}b\u{2069}",
            "a\u{200e}",
            "\u{feff}ana",
            "a\u{2028}b",
            // A joiner that joins no emoji.
            "an\u{200d}a",
            "👍\u{200d}",
            "1\u{200d}2",
        ] {
            assert_eq!(
                DisplayName::parse(bad),
                Err(ErrorCode::InvalidName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_text_is_trimmed_and_limited_to_4000_scalars() {
        assert_eq!(MessageText::parse("  hi\n").unwrap().as_str(), "hi");
        assert_eq!(MessageText::parse("a\nb").unwrap().as_str(), "a\nb");
        assert!(MessageText::parse(&"ß".repeat(4000)).is_ok());
        assert!(MessageText::parse(&format!("  {}  ", "x".repeat(4000))).is_ok());
        assert_eq!(MessageText::parse(""), Err(ErrorCode::InvalidText));
        assert_eq!(MessageText::parse(" \n\t "), Err(ErrorCode::InvalidText));
        assert_eq!(
            MessageText::parse(&"x".repeat(4001)),
            Err(ErrorCode::InvalidText)
        );
    }
}
