//! The name rules of docs/protocol.md ("Names and limits" and rule 2) as
//! properties of `RoomName::parse`, `DisplayName::parse` and
//! `MessageText::parse`. Each parser is checked both ways: what it accepts
//! follows the rule and parses again to itself, and what it refuses breaks
//! the rule. The oracles are written out here, sharing no code with the
//! parsers.
//!
//! The display-name property also asks that no character is of Unicode
//! general category Cf (format characters such as U+202E, U+200B, U+2066 and
//! U+FEFF), Zl or Zp, but for a zero-width joiner between two emoji (rule
//! 2). That assertion is marked `CF ASSERTION` below.

use charla_protocol::{
    DisplayName, ErrorCode, MAX_NAME_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS, MessageText, RoomName,
};
use unicode_properties::{GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

/// Whether `c` is a format character (general category Cf): invisible
/// characters that reorder, join or hide text, such as the right-to-left
/// override U+202E or the zero-width space U+200B; or a line or paragraph
/// separator.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Whether `text` holds a format character that is not the joiner of an
/// emoji sequence: U+200D with a non-ASCII emoji (or U+FE0F after one)
/// before it and a non-ASCII emoji after it.
pub fn has_stray_format_char(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let emoji = |c: char| !c.is_ascii() && c.is_emoji_char();
    (0..chars.len()).any(|i| {
        if !is_format_char(chars[i]) {
            return false;
        }
        let joins = chars[i] == '\u{200d}'
            && i > 0
            && (emoji(chars[i - 1]) || chars[i - 1] == '\u{fe0f}')
            && chars.get(i + 1).is_some_and(|c| emoji(*c));
        !joins
    })
}

/// Runs `raw` through the three parsers and checks every name rule.
pub fn check(raw: &str) {
    check_room_name(raw);
    check_display_name(raw);
    check_message_text(raw);
}

/// Whether `name` matches `^[a-z0-9][a-z0-9_-]{0,63}$` (63 being
/// `MAX_ROOM_CHARS - 1`).
fn matches_room_pattern(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| matches!(c, 'a'..='z' | '0'..='9'));
    first_ok
        && name.chars().count() <= MAX_ROOM_CHARS
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

/// A room name is the input lowercased in ASCII only, and valid exactly when
/// that lowercase form matches the pattern.
fn check_room_name(raw: &str) {
    let lowered = raw.to_ascii_lowercase();
    match RoomName::parse(raw) {
        Ok(room) => {
            assert!(
                matches_room_pattern(room.as_str()),
                "accepted room {room:?} does not match the pattern"
            );
            assert_eq!(
                room.as_str(),
                lowered,
                "a room name is its input lowercased"
            );
            assert_eq!(
                RoomName::parse(room.as_str()).as_ref(),
                Ok(&room),
                "a room name parses to itself"
            );
        }
        Err(code) => {
            assert_eq!(code, ErrorCode::InvalidRoom);
            assert!(
                !matches_room_pattern(&lowered),
                "refused room {raw:?} whose lowercase form matches the pattern"
            );
        }
    }
}

/// A display name is the input trimmed of white space, 1 to
/// `MAX_NAME_CHARS` scalar values, with no control character anywhere.
fn check_display_name(raw: &str) {
    let trimmed = raw.trim();
    let length_ok = (1..=MAX_NAME_CHARS).contains(&trimmed.chars().count());
    match DisplayName::parse(raw) {
        Ok(name) => {
            let text = name.as_str();
            assert_eq!(text, trimmed, "a display name is its input trimmed");
            assert!(length_ok, "accepted name {text:?} has a wrong length");
            assert!(
                !text.starts_with(char::is_whitespace) && !text.ends_with(char::is_whitespace),
                "accepted name {text:?} is not trimmed"
            );
            assert!(
                !text.chars().any(char::is_control),
                "accepted name {text:?} holds a control character"
            );
            assert_eq!(
                DisplayName::parse(text).as_ref(),
                Ok(&name),
                "a display name parses to itself"
            );
            // CF ASSERTION: no format character but an emoji's joiner.
            assert!(
                !has_stray_format_char(text),
                "accepted name {text:?} holds a format character (Cf)"
            );
        }
        Err(code) => {
            assert_eq!(code, ErrorCode::InvalidName);
            let broken = !length_ok
                || trimmed.chars().any(char::is_control)
                || has_stray_format_char(trimmed);
            assert!(broken, "refused name {raw:?} breaks no rule");
        }
    }
}

/// Message text is the input trimmed, 1 to `MAX_TEXT_CHARS` scalar values;
/// any character may appear inside.
fn check_message_text(raw: &str) {
    let trimmed = raw.trim();
    let length_ok = (1..=MAX_TEXT_CHARS).contains(&trimmed.chars().count());
    match MessageText::parse(raw) {
        Ok(text) => {
            assert_eq!(text.as_str(), trimmed, "message text is its input trimmed");
            assert!(length_ok, "accepted text has a wrong length");
            assert_eq!(
                MessageText::parse(text.as_str()).as_ref(),
                Ok(&text),
                "message text parses to itself"
            );
        }
        Err(code) => {
            assert_eq!(code, ErrorCode::InvalidText);
            assert!(!length_ok, "refused text {raw:?} has a valid length");
        }
    }
}
