//! `parse_request` against docs/protocol.md: the check order (rules 7 and
//! 28), the `ref` rules (rules 7, 8 and 19) and the normal form of an
//! accepted request.
//!
//! Properties, for any text frame:
//! - a frame is accepted only if it is a JSON object of one of the
//!   `ClientMessage` shapes, and refused with the code of the first rule it
//!   breaks, in the contract's order: shape and `ref`, then `epoch`
//!   (`bad_request`), then the room (`invalid_room`), then the name or text;
//! - an accepted request's `ref` is the frame's, at most `MAX_REF_CHARS`
//!   characters; its room, name and text parse again to themselves, and the
//!   request written back as JSON parses to the same request;
//! - every refusal echoes the frame's `ref` when the frame is a JSON object
//!   with exactly one `ref` and that is a string (of any length), and
//!   carries none otherwise; its message is the standard one for its code
//!   unless it is a `bad_request`.
//!
//! The frame's `ref` is read here by a scanner of its own (see
//! [`RefField`]), not by the parser's code. Room, name and text validity come
//! from the name parsers, whose rules the `names` target checks.
//!
//! A frame that is a JSON array is refused as `bad_request` with no ref
//! echoed: serde would read a tagged enum from a sequence too (`["ping"]`),
//! which this target found (the input is kept in
//! `fuzz/regressions/parse_request/`); the parser now refuses arrays first.

use charla_protocol::client::default_message;
use charla_protocol::{
    Secret,
    ClientMessage, Command, DisplayName, ErrorCode, MAX_EPOCH_CHARS, MAX_REF_CHARS, MessageText,
    Rejection, Request, RoomName, parse_request,
};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// The white space JSON allows before a value (RFC 8259, section 2).
const JSON_WHITE_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Whether `frame` is (or starts like) a JSON array.
fn is_json_array(frame: &str) -> bool {
    frame.trim_start_matches(JSON_WHITE_SPACE).starts_with('[')
}

/// What a frame holds under the key `ref`, read without the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RefField {
    /// The frame is not a JSON object, has no `ref`, or has `"ref": null`
    /// (which the contract's optional fields read as absent).
    Absent,
    /// Exactly one `ref`, a string.
    Text(String),
    /// Exactly one `ref`, neither a string nor null.
    NotText,
    /// The key `ref` appears more than once.
    Repeated,
}

/// Deserialises a JSON object into the [`RefField`] it carries, looking at
/// every key (so a repeated `ref` is seen) and skipping other values.
struct RefScan(RefField);

impl<'de> Deserialize<'de> for RefScan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RefScan, D::Error> {
        deserializer.deserialize_map(RefScanVisitor)
    }
}

struct RefScanVisitor;

impl<'de> Visitor<'de> for RefScanVisitor {
    type Value = RefScan;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RefScan, A::Error> {
        let mut field = RefField::Absent;
        let mut seen = 0_usize;
        while let Some(key) = map.next_key::<String>()? {
            if key != "ref" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            seen += 1;
            field = match map.next_value::<serde_json::Value>()? {
                serde_json::Value::Null => RefField::Absent,
                serde_json::Value::String(text) => RefField::Text(text),
                _ => RefField::NotText,
            };
        }
        if seen > 1 {
            field = RefField::Repeated;
        }
        Ok(RefScan(field))
    }
}

/// The `ref` of `frame`; [`RefField::Absent`] when it is not a JSON object.
fn ref_field(frame: &str) -> RefField {
    serde_json::from_str::<RefScan>(frame).map_or(RefField::Absent, |scan| scan.0)
}

/// Runs `frame` through `parse_request` and checks every property.
pub fn check(frame: &str) {
    let outcome = parse_request(frame);
    if is_json_array(frame) {
        let rejection = outcome.expect_err("a JSON array is no request");
        assert_eq!(rejection.code, ErrorCode::BadRequest, "an array");
        assert_eq!(rejection.reference, None, "an array has no ref to echo");
        return;
    }
    let field = ref_field(frame);
    check_ref(&outcome, &field);
    match (&outcome, serde_json::from_str::<ClientMessage>(frame)) {
        (Ok(request), Ok(message)) => check_accepted(frame, request, &message),
        (Err(rejection), Ok(message)) => check_refused(rejection, &message),
        (Err(rejection), Err(_)) => {
            assert_eq!(rejection.code, ErrorCode::BadRequest, "malformed frame");
            assert!(rejection.message.starts_with("malformed request: "));
        }
        (Ok(request), Err(error)) => {
            panic!("accepted {request:?} from a frame that is no ClientMessage: {error}")
        }
    }
}

/// Rules 7, 8 and 19: what happens to the frame's `ref`.
fn check_ref(outcome: &Result<Request, Rejection>, field: &RefField) {
    let echoed = match outcome {
        Ok(request) => {
            assert!(
                matches!(field, RefField::Absent | RefField::Text(_)),
                "accepted a frame whose ref is {field:?}"
            );
            if let Some(reference) = &request.reference {
                assert!(
                    reference.chars().count() <= MAX_REF_CHARS,
                    "accepted a ref of more than {MAX_REF_CHARS} characters"
                );
            }
            &request.reference
        }
        Err(rejection) => {
            if matches!(field, RefField::NotText) {
                assert_eq!(rejection.code, ErrorCode::BadRequest, "a ref not a string");
            }
            &rejection.reference
        }
    };
    let expected = match field {
        RefField::Text(text) => Some(text),
        RefField::Absent | RefField::NotText | RefField::Repeated => None,
    };
    assert_eq!(echoed.as_ref(), expected, "the frame's ref is {field:?}");
}

/// The code of the first rule (7, then 28) that a well-shaped message
/// breaks, or `None` when it breaks none.
fn expected_refusal(message: &ClientMessage) -> Option<ErrorCode> {
    let longer_than = |text: &str, limit: usize| text.chars().count() > limit;
    if message
        .reference()
        .is_some_and(|reference| longer_than(reference, MAX_REF_CHARS))
    {
        return Some(ErrorCode::BadRequest);
    }
    let room_ok = |room: &str| RoomName::parse(room).is_ok();
    let refusal = |ok: bool, code| (!ok).then_some(code);
    match message {
        ClientMessage::Join { room, epoch, .. } => {
            if epoch
                .as_deref()
                .is_some_and(|epoch| longer_than(epoch, MAX_EPOCH_CHARS))
            {
                return Some(ErrorCode::BadRequest);
            }
            refusal(room_ok(room), ErrorCode::InvalidRoom)
        }
        ClientMessage::Leave { room, .. } | ClientMessage::Typing { room, .. } => {
            refusal(room_ok(room), ErrorCode::InvalidRoom)
        }
        ClientMessage::Say { room, text, .. } => refusal(room_ok(room), ErrorCode::InvalidRoom)
            .or_else(|| refusal(MessageText::parse(text).is_ok(), ErrorCode::InvalidText)),
        ClientMessage::Nick { name, .. } => {
            refusal(DisplayName::parse(name).is_ok(), ErrorCode::InvalidName)
        }
        ClientMessage::Edit { room, text, .. } => refusal(room_ok(room), ErrorCode::InvalidRoom)
            .or_else(|| refusal(MessageText::parse(text).is_ok(), ErrorCode::InvalidText)),
        ClientMessage::Delete { room, .. } => refusal(room_ok(room), ErrorCode::InvalidRoom),
        ClientMessage::Identify { secret, .. } => refusal(
            secret.as_deref().is_none_or(|s| Secret::parse(s).is_some()),
            ErrorCode::BadRequest,
        ),
        ClientMessage::Ping { .. }
        | ClientMessage::WatchRooms { .. }
        | ClientMessage::UnwatchRooms { .. } => None,
    }
}

/// A well-shaped message refused: by the first rule it breaks.
fn check_refused(rejection: &Rejection, message: &ClientMessage) {
    let Some(code) = expected_refusal(message) else {
        panic!("refused {message:?}, which breaks no rule: {rejection:?}");
    };
    assert_eq!(rejection.code, code, "refusing {message:?}");
    if code == ErrorCode::BadRequest {
        assert!(!rejection.message.is_empty(), "an error says why");
    } else {
        assert_eq!(rejection.message, default_message(code));
    }
}

/// An accepted request: a JSON object that breaks no rule, normalised the
/// way the name parsers do it, and stable when written back.
fn check_accepted(frame: &str, request: &Request, message: &ClientMessage) {
    assert!(
        matches!(
            serde_json::from_str::<serde_json::Value>(frame),
            Ok(serde_json::Value::Object(_))
        ),
        "accepted a frame that is not a JSON object"
    );
    assert_eq!(expected_refusal(message), None, "accepted {message:?}");
    assert_eq!(request.reference.as_deref(), message.reference());
    let same_room = |parsed: &RoomName, raw: &str| {
        assert_eq!(RoomName::parse(raw).as_ref(), Ok(parsed));
        assert_eq!(RoomName::parse(parsed.as_str()).as_ref(), Ok(parsed));
    };
    match (&request.command, message) {
        (
            Command::Join { room, after, epoch },
            ClientMessage::Join {
                room: raw,
                after: raw_after,
                epoch: raw_epoch,
                ..
            },
        ) => {
            same_room(room, raw);
            assert_eq!((after, epoch), (raw_after, raw_epoch));
        }
        (Command::Leave { room }, ClientMessage::Leave { room: raw, .. })
        | (Command::Typing { room }, ClientMessage::Typing { room: raw, .. }) => {
            same_room(room, raw);
        }
        (
            Command::Say { room, text },
            ClientMessage::Say {
                room: raw_room,
                text: raw_text,
                ..
            },
        ) => {
            same_room(room, raw_room);
            assert_eq!(MessageText::parse(raw_text).as_ref(), Ok(text));
            assert_eq!(MessageText::parse(text.as_str()).as_ref(), Ok(text));
        }
        (Command::Nick { name }, ClientMessage::Nick { name: raw, .. }) => {
            assert_eq!(DisplayName::parse(raw).as_ref(), Ok(name));
            assert_eq!(DisplayName::parse(name.as_str()).as_ref(), Ok(name));
        }
        (
            Command::Edit { room, id, text },
            ClientMessage::Edit {
                room: raw_room,
                id: raw_id,
                text: raw_text,
                ..
            },
        ) => {
            same_room(room, raw_room);
            assert_eq!(id, raw_id);
            assert_eq!(MessageText::parse(raw_text).as_ref(), Ok(text));
        }
        (
            Command::Delete { room, id },
            ClientMessage::Delete {
                room: raw_room,
                id: raw_id,
                ..
            },
        ) => {
            same_room(room, raw_room);
            assert_eq!(id, raw_id);
        }
        (Command::Identify { secret }, ClientMessage::Identify { secret: raw, .. }) => {
            assert_eq!(secret.as_ref().map(Secret::expose), raw.as_deref());
        }
        (Command::Ping, ClientMessage::Ping { .. })
        | (Command::WatchRooms, ClientMessage::WatchRooms { .. })
        | (Command::UnwatchRooms, ClientMessage::UnwatchRooms { .. }) => {}
        (command, message) => panic!("{message:?} became {command:?}"),
    }
    let written = serde_json::to_string(&normal_form(request))
        .expect("a ClientMessage of strings and numbers always serialises");
    assert_eq!(
        parse_request(&written).as_ref(),
        Ok(request),
        "the request written back as {written}"
    );
}

/// The wire message that says exactly what `request` says, in normal form.
fn normal_form(request: &Request) -> ClientMessage {
    let reference = request.reference.clone();
    match &request.command {
        Command::Join { room, after, epoch } => ClientMessage::Join {
            room: room.as_str().to_owned(),
            after: *after,
            epoch: epoch.clone(),
            reference,
        },
        Command::Leave { room } => ClientMessage::Leave {
            room: room.as_str().to_owned(),
            reference,
        },
        Command::Say { room, text } => ClientMessage::Say {
            room: room.as_str().to_owned(),
            text: text.as_str().to_owned(),
            reference,
        },
        Command::Typing { room } => ClientMessage::Typing {
            room: room.as_str().to_owned(),
            reference,
        },
        Command::Nick { name } => ClientMessage::Nick {
            name: name.as_str().to_owned(),
            reference,
        },
        Command::Ping => ClientMessage::Ping { reference },
        Command::WatchRooms => ClientMessage::WatchRooms { reference },
        Command::UnwatchRooms => ClientMessage::UnwatchRooms { reference },
        Command::Identify { secret } => ClientMessage::Identify {
            secret: secret.as_ref().map(|s| s.expose().to_owned()),
            reference,
        },
        Command::Edit { room, id, text } => ClientMessage::Edit {
            room: room.as_str().to_owned(),
            id: *id,
            text: text.as_str().to_owned(),
            reference,
        },
        Command::Delete { room, id } => ClientMessage::Delete {
            room: room.as_str().to_owned(),
            id: *id,
            reference,
        },
    }
}
