//! The stamp every load-generator message carries in its chat text:
//! `lg <sender> <seq> <sent_us> <padding>`.
//!
//! `sender` is the global index of the sending client, `seq` counts that
//! sender's messages from 1 without gaps, and `sent_us` is the send time in
//! microseconds since the run's clock origin (one monotonic clock in one
//! process, so a receiver's latency is `now - sent_us` with no clock skew).
//! The stamp uses only ASCII digits, letters and spaces, so it appears
//! verbatim inside any JSON string and a receiver can find it without
//! unescaping.
//!
//! [`scan_message`] is the receive hot path: it recognises a `message` event
//! from its first bytes (Charla's `{"type":"message"` or Socket.IO's
//! `42["message",`) and reads the stamp straight out of the frame, skipping a
//! full JSON parse, and the message's room `id` beside it. Its tests check it
//! against the JSON that `charla-protocol` itself produces, so the shortcut
//! stays honest.

/// The first bytes of every stamped text.
pub const PREFIX: &str = "lg ";

/// What a receiver learns from a stamped message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub seq: u64,
    pub sent_us: u64,
}

/// The chat text for `stamp`, padded with `x` to at least `min_len` bytes.
pub fn encode(stamp: Stamp, min_len: usize) -> String {
    let mut text = format!("{PREFIX}{} {} {} ", stamp.sender, stamp.seq, stamp.sent_us);
    while text.len() < min_len {
        text.push('x');
    }
    text
}

/// Reads a stamp from a chat text (or anything that starts like one).
pub fn decode(text: &str) -> Option<Stamp> {
    let mut fields = text.strip_prefix(PREFIX)?.splitn(4, ' ');
    let sender = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let sent_us = fields.next()?.parse().ok()?;
    Some(Stamp {
        sender,
        seq,
        sent_us,
    })
}

/// Charla's `message` events start with their tag: serde writes an
/// internally tagged enum's tag first.
const CHARLA_MESSAGE: &str = r#"{"type":"message""#;
/// A Socket.IO `message` event: packet type 4 (message), 2 (event).
const SOCKETIO_MESSAGE: &str = r#"42["message","#;
/// Where a message's text starts, in both.
const TEXT_FIELD: &str = r#""text":""#;
/// The key of a message's room id (and of its sender's id, a string).
const ID_FIELD: &str = r#""id":"#;

/// The result of looking at one text frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A `message` event carrying a load-generator stamp, and the message's
    /// room id when the frame has a numeric one.
    Stamped(Stamp, Option<u64>),
    /// A `message` event without a stamp (someone else's message).
    Unstamped,
    /// Not a `message` event: parse it properly.
    Other,
}

/// Classifies a frame from either server without a full parse.
pub fn scan_message(frame: &str) -> Scanned {
    if !(frame.starts_with(CHARLA_MESSAGE) || frame.starts_with(SOCKETIO_MESSAGE)) {
        return Scanned::Other;
    }
    let Some(at) = frame.find(TEXT_FIELD) else {
        return Scanned::Unstamped;
    };
    match decode(&frame[at + TEXT_FIELD.len()..]) {
        Some(stamp) => Scanned::Stamped(stamp, message_id(frame)),
        None => Scanned::Unstamped,
    }
}

/// The first `"id":` key whose value is a number: the message's room id,
/// wherever the server put it among the fields (the sender's `id` is a
/// string, and a key cannot appear inside a JSON string, whose quotes are
/// escaped).
fn message_id(frame: &str) -> Option<u64> {
    let mut rest = frame;
    while let Some(at) = rest.find(ID_FIELD) {
        rest = &rest[at + ID_FIELD.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            return rest[..digits].parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use charla_protocol::{ChatMessage, Member, ServerMessage};

    #[test]
    fn stamps_round_trip_and_pad() {
        let stamp = Stamp {
            sender: 7,
            seq: 42,
            sent_us: 123_456,
        };
        let text = encode(stamp, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(decode(&text), Some(stamp));
        assert_eq!(decode(&encode(stamp, 0)), Some(stamp));
        assert_eq!(decode("hello"), None);
        assert_eq!(decode("lg 1 2"), None);
    }

    #[test]
    fn the_scanner_reads_charla_messages_as_the_protocol_crate_writes_them() {
        let stamp = Stamp {
            sender: 3,
            seq: 9,
            sent_us: 77,
        };
        let message = ServerMessage::Message(ChatMessage {
            room: "r0".into(),
            id: 12,
            from: Member {
                id: "00ff".into(),
                name: "lg-3".into(),
            },
            text: encode(stamp, 48),
            at: 1,
            ..ChatMessage::default()
        });
        assert_eq!(
            scan_message(&message.to_json()),
            Scanned::Stamped(stamp, Some(12))
        );
        let other = ServerMessage::Message(ChatMessage {
            room: "r0".into(),
            id: 13,
            from: Member {
                id: "00ff".into(),
                name: "ana".into(),
            },
            text: "hola \"lg 1 2 3\"".into(),
            at: 1,
            ..ChatMessage::default()
        });
        assert_eq!(scan_message(&other.to_json()), Scanned::Unstamped);
        // The id is found wherever it stands, after the sender's string id
        // too.
        let reordered = format!(
            r#"{{"type":"message","from":{{"id":"9","name":"x"}},"room":"r0","text":"{}","id":77,"at":1}}"#,
            encode(stamp, 0)
        );
        assert_eq!(scan_message(&reordered), Scanned::Stamped(stamp, Some(77)));
        let pong = ServerMessage::Pong { reference: None };
        assert_eq!(scan_message(&pong.to_json()), Scanned::Other);
    }

    #[test]
    fn the_scanner_reads_socketio_message_events() {
        let frame = r#"42["message",{"room":"r0","id":1,"from":{"id":"abc","name":"lg-0"},"text":"lg 0 1 5 xx","at":1}]"#;
        assert_eq!(
            scan_message(frame),
            Scanned::Stamped(
                Stamp {
                    sender: 0,
                    seq: 1,
                    sent_us: 5
                },
                Some(1)
            )
        );
        assert_eq!(
            scan_message(r#"42["presence",{"room":"r0"}]"#),
            Scanned::Other
        );
    }
}
