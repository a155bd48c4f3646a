//! Validated names and text. Each type can only be built through its `parse`,
//! so a value that reaches the server's state has passed the contract's rules
//! (docs/protocol.md, "Names and limits" and rule 2):
//!
//! - a room name is ASCII-lowercased, then holds 1 to [`MAX_ROOM_CHARS`] of
//!   `a-z`, `0-9`, `_` and `-` and starts with a letter or digit (lowercasing
//!   only ASCII keeps look-alikes such as the Kelvin sign out);
//! - a display name is trimmed of Unicode white space, holds 1 to
//!   [`MAX_NAME_CHARS`] Unicode scalar values and no control character (C0,
//!   DEL, C1) anywhere;
//! - message text is trimmed and holds 1 to [`MAX_TEXT_CHARS`] Unicode scalar
//!   values.

use crate::{ErrorCode, MAX_NAME_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    /// Trims `raw` and checks length and control characters.
    pub fn parse(raw: &str) -> Result<DisplayName, ErrorCode> {
        let name = raw.trim();
        let chars = name.chars().count();
        if (1..=MAX_NAME_CHARS).contains(&chars) && !name.chars().any(char::is_control) {
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
        for bad in [
            "",
            "   ",
            "a\u{0}b",
            "a\tb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9f}",
            &"x".repeat(33),
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
