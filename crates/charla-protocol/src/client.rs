//! What a client sends: one JSON object per text frame, tagged by `"type"`.
//!
//! [`ClientMessage`] is the wire shape (what a client serialises, what the
//! server deserialises). [`parse_request`] turns one text frame into a
//! validated [`Request`], checking in the order of docs/protocol.md, rules 7
//! and 28: first the JSON shape and the `ref` (`bad_request`), then the room
//! name (`invalid_room`), then the name or text (`invalid_name`,
//! `invalid_text`).
//! Checks that need server state (`not_joined`, `too_many_rooms`,
//! `rate_limited`) come after, in the server. Every [`Rejection`] carries the
//! request's `ref` when it was a string (docs/protocol.md, rules 8 and 19).

use crate::{
    DisplayName, ErrorCode, MAX_EPOCH_CHARS, MAX_NAME_CHARS, MAX_REF_CHARS, MAX_ROOM_CHARS,
    MAX_TEXT_CHARS, MessageText, RoomName, SECRET_CHARS, Secret,
};
use serde::{Deserialize, Serialize};

/// A message from client to server, exactly as on the wire.
///
/// Every request may carry a `ref`, echoed by any error that answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Join a room; with `after`, replay retained messages with a larger id.
    /// `epoch` is the room's epoch from the `joined` the client last saw:
    /// when the room's id sequence has restarted since, the answer says so.
    Join {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Leave a room.
    Leave {
        room: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Post a message; a `ref` makes a resend idempotent.
    Say {
        room: String,
        text: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// The user is typing in a room.
    Typing {
        room: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Change the display name.
    Nick {
        name: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Application-level ping, answered by `pong`.
    Ping {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Subscribe to the live room directory.
    WatchRooms {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Stop the room directory events.
    UnwatchRooms {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Become a stable identity: present the secret the server issued
    /// earlier, or none to be issued one (docs/protocol.md, rule 49).
    Identify {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Replace the text of one of your messages.
    Edit {
        room: String,
        id: u64,
        text: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Delete one of your messages.
    Delete {
        room: String,
        id: u64,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

/// A request that passed every check this crate can make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The client's `ref`, at most [`MAX_REF_CHARS`] characters.
    pub reference: Option<String>,
    /// What the client asks for.
    pub command: Command,
}

/// The validated content of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Join {
        room: RoomName,
        after: Option<u64>,
        epoch: Option<String>,
    },
    Leave {
        room: RoomName,
    },
    Say {
        room: RoomName,
        text: MessageText,
    },
    Typing {
        room: RoomName,
    },
    Nick {
        name: DisplayName,
    },
    Ping,
    WatchRooms,
    UnwatchRooms,
    Identify {
        secret: Option<Secret>,
    },
    Edit {
        room: RoomName,
        id: u64,
        text: MessageText,
    },
    Delete {
        room: RoomName,
        id: u64,
    },
}

/// A refused request: the `error` event that answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<String>,
}

impl Rejection {
    /// A rejection with the standard human message for `code`.
    pub fn new(code: ErrorCode, reference: Option<String>) -> Rejection {
        Rejection {
            code,
            message: default_message(code),
            reference,
        }
    }
}

/// The plain-words explanation of each code, shown to people. The limits
/// in it are the crate's constants, so the words cannot drift from the rules.
pub fn default_message(code: ErrorCode) -> String {
    match code {
        ErrorCode::BadRequest => "the request is not a valid Charla message".to_owned(),
        ErrorCode::InvalidRoom => format!(
            "room names are 1 to {MAX_ROOM_CHARS} letters, digits, '-' or '_', \
             starting with a letter or digit"
        ),
        ErrorCode::InvalidName => {
            format!(
                "names are 1 to {MAX_NAME_CHARS} characters without control or invisible characters"
            )
        }
        ErrorCode::InvalidText => format!("messages are 1 to {MAX_TEXT_CHARS} characters"),
        ErrorCode::NotJoined => "join the room first".to_owned(),
        ErrorCode::TooManyRooms => "no more rooms can be joined".to_owned(),
        ErrorCode::RateLimited => "too many requests: slow down".to_owned(),
        ErrorCode::Unsupported => {
            "binary frames are not supported: send JSON text frames".to_owned()
        }
        ErrorCode::Unavailable => {
            "the message could not be stored and was not sent: try again".to_owned()
        }
        ErrorCode::IdentityLocked => {
            "identify once per connection, before joining any room".to_owned()
        }
        ErrorCode::UnknownMessage => "no such message in this room".to_owned(),
        ErrorCode::NotAuthor => "only its author can change this message".to_owned(),
        ErrorCode::Banned => "you are banned here".to_owned(),
    }
}

/// The white space JSON allows before a value (RFC 8259, section 2).
const JSON_WHITE_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Parses and validates one text frame from a client.
pub fn parse_request(text: &str) -> Result<Request, Rejection> {
    // serde reads a tagged enum from a JSON array as well as from an
    // object (`["ping"]` would be a ping): a request is an object only, and
    // an array has no `ref` to echo.
    if text.trim_start_matches(JSON_WHITE_SPACE).starts_with('[') {
        return Err(Rejection {
            code: ErrorCode::BadRequest,
            message: "malformed request: a request is a JSON object, not an array".to_owned(),
            reference: None,
        });
    }
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(message) => message.validate(),
        Err(error) => Err(Rejection {
            code: ErrorCode::BadRequest,
            message: format!("malformed request: {error}"),
            reference: string_ref_of(text),
        }),
    }
}

/// The `ref` of a malformed request, when it is there and is a string, so the
/// error can still echo it.
fn string_ref_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct RefProbe {
        #[serde(rename = "ref", default)]
        reference: Option<serde_json::Value>,
    }
    match serde_json::from_str::<RefProbe>(text).ok()?.reference? {
        serde_json::Value::String(reference) => Some(reference),
        _ => None,
    }
}

impl ClientMessage {
    /// The request's `ref`, if any.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ClientMessage::Join { reference, .. }
            | ClientMessage::Leave { reference, .. }
            | ClientMessage::Say { reference, .. }
            | ClientMessage::Typing { reference, .. }
            | ClientMessage::Nick { reference, .. }
            | ClientMessage::Ping { reference }
            | ClientMessage::WatchRooms { reference }
            | ClientMessage::UnwatchRooms { reference }
            | ClientMessage::Identify { reference, .. }
            | ClientMessage::Edit { reference, .. }
            | ClientMessage::Delete { reference, .. } => reference.as_deref(),
        }
    }

    /// Checks the `ref`, then the room name, then the name or text.
    pub fn validate(self) -> Result<Request, Rejection> {
        let reference = self.reference().map(str::to_owned);
        if reference
            .as_deref()
            .is_some_and(|r| r.chars().count() > MAX_REF_CHARS)
        {
            return Err(Rejection {
                code: ErrorCode::BadRequest,
                message: format!("ref is longer than {MAX_REF_CHARS} characters"),
                reference,
            });
        }
        let reject = |code| Rejection::new(code, reference.clone());
        if let ClientMessage::Join {
            epoch: Some(epoch), ..
        } = &self
            && epoch.chars().count() > MAX_EPOCH_CHARS
        {
            return Err(Rejection {
                code: ErrorCode::BadRequest,
                message: format!("epoch is longer than {MAX_EPOCH_CHARS} characters"),
                reference,
            });
        }
        let command = match self {
            ClientMessage::Join {
                room, after, epoch, ..
            } => Command::Join {
                room: RoomName::parse(&room).map_err(reject)?,
                after,
                epoch,
            },
            ClientMessage::Leave { room, .. } => Command::Leave {
                room: RoomName::parse(&room).map_err(reject)?,
            },
            ClientMessage::Say { room, text, .. } => {
                let room = RoomName::parse(&room).map_err(reject)?;
                let text = MessageText::parse(&text).map_err(reject)?;
                Command::Say { room, text }
            }
            ClientMessage::Typing { room, .. } => Command::Typing {
                room: RoomName::parse(&room).map_err(reject)?,
            },
            ClientMessage::Nick { name, .. } => Command::Nick {
                name: DisplayName::parse(&name).map_err(reject)?,
            },
            ClientMessage::Ping { .. } => Command::Ping,
            ClientMessage::WatchRooms { .. } => Command::WatchRooms,
            ClientMessage::UnwatchRooms { .. } => Command::UnwatchRooms,
            ClientMessage::Identify { secret, .. } => Command::Identify {
                secret: match secret {
                    None => None,
                    Some(raw) => Some(Secret::parse(&raw).ok_or_else(|| Rejection {
                        code: ErrorCode::BadRequest,
                        message: format!(
                            "secret must be {SECRET_CHARS} lowercase hex digits, as issued"
                        ),
                        reference: reference.clone(),
                    })?),
                },
            },
            ClientMessage::Edit { room, id, text, .. } => {
                let room = RoomName::parse(&room).map_err(reject)?;
                let text = MessageText::parse(&text).map_err(reject)?;
                Command::Edit { room, id, text }
            }
            ClientMessage::Delete { room, id, .. } => Command::Delete {
                room: RoomName::parse(&room).map_err(reject)?,
                id,
            },
        };
        Ok(Request { reference, command })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn round_trip(message: ClientMessage, expected: Value) {
        assert_eq!(serde_json::to_value(&message).unwrap(), expected);
        let back: ClientMessage = serde_json::from_value(expected).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn a_json_array_is_no_request() {
        for frame in [r#"["ping"]"#, r#" ["say","general","hi","r1"]"#, r#"[""]"#] {
            let rejection = parse_request(frame).unwrap_err();
            assert_eq!(rejection.code, ErrorCode::BadRequest, "{frame}");
            assert_eq!(rejection.reference, None, "{frame}");
        }
    }

    #[test]
    fn every_client_message_round_trips_to_the_contract_json() {
        round_trip(
            ClientMessage::Join {
                room: "general".into(),
                after: None,
                epoch: None,
                reference: None,
            },
            json!({"type": "join", "room": "general"}),
        );
        round_trip(
            ClientMessage::Join {
                room: "general".into(),
                after: Some(41),
                epoch: Some("5f0c".into()),
                reference: Some("r1".into()),
            },
            json!({"type": "join", "room": "general", "after": 41, "epoch": "5f0c", "ref": "r1"}),
        );
        round_trip(
            ClientMessage::Leave {
                room: "general".into(),
                reference: None,
            },
            json!({"type": "leave", "room": "general"}),
        );
        round_trip(
            ClientMessage::Say {
                room: "general".into(),
                text: "hola".into(),
                reference: Some("u-1".into()),
            },
            json!({"type": "say", "room": "general", "text": "hola", "ref": "u-1"}),
        );
        round_trip(
            ClientMessage::Typing {
                room: "general".into(),
                reference: None,
            },
            json!({"type": "typing", "room": "general"}),
        );
        round_trip(
            ClientMessage::Nick {
                name: "ana".into(),
                reference: None,
            },
            json!({"type": "nick", "name": "ana"}),
        );
        round_trip(
            ClientMessage::Ping { reference: None },
            json!({"type": "ping"}),
        );
        round_trip(
            ClientMessage::Ping {
                reference: Some("p".into()),
            },
            json!({"type": "ping", "ref": "p"}),
        );
        round_trip(
            ClientMessage::WatchRooms { reference: None },
            json!({"type": "watch_rooms"}),
        );
        round_trip(
            ClientMessage::UnwatchRooms { reference: None },
            json!({"type": "unwatch_rooms"}),
        );
    }

    #[test]
    fn valid_requests_are_normalised() {
        let request =
            parse_request(r#"{"type":"say","room":"General","text":"  hi  ","extra":1}"#).unwrap();
        assert_eq!(request.reference, None);
        assert_eq!(
            request.command,
            Command::Say {
                room: RoomName::parse("general").unwrap(),
                text: MessageText::parse("hi").unwrap()
            }
        );
        let request = parse_request(r#"{"type":"join","room":"a","after":null}"#).unwrap();
        assert_eq!(
            request.command,
            Command::Join {
                room: RoomName::parse("a").unwrap(),
                after: None,
                epoch: None
            }
        );
    }

    #[test]
    fn an_epoch_is_a_short_string() {
        let long = "e".repeat(MAX_EPOCH_CHARS + 1);
        let rejection = rejected(&format!(
            r#"{{"type":"join","room":"a","after":3,"epoch":"{long}","ref":"j"}}"#
        ));
        assert_eq!(rejection.code, ErrorCode::BadRequest);
        assert_eq!(rejection.reference.as_deref(), Some("j"));
        assert_eq!(
            rejected(r#"{"type":"join","room":"a","epoch":7}"#).code,
            ErrorCode::BadRequest
        );
    }

    fn rejected(text: &str) -> Rejection {
        parse_request(text).expect_err(text)
    }

    #[test]
    fn malformed_requests_are_bad_request() {
        for text in [
            "not json",
            "[1,2]",
            "42",
            "{}",
            r#"{"type":"dance"}"#,
            r#"{"type":"say","room":"a"}"#,
            r#"{"type":"say","room":"a","text":7}"#,
            r#"{"type":"join","room":5}"#,
            r#"{"type":"join","room":"a","after":-1}"#,
            r#"{"type":"join","room":"a","after":"1"}"#,
            r#"{"type":"ping","ref":7}"#,
            r#"{"type":"nick"}"#,
        ] {
            let rejection = rejected(text);
            assert_eq!(rejection.code, ErrorCode::BadRequest, "{text}");
            assert_eq!(rejection.reference, None, "{text}");
        }
    }

    #[test]
    fn bad_request_comes_before_invalid_room_and_echoes_a_string_ref() {
        let rejection = rejected(r#"{"type":"say","room":"NOT OK","ref":"x1"}"#);
        assert_eq!(rejection.code, ErrorCode::BadRequest);
        assert_eq!(rejection.reference.as_deref(), Some("x1"));
        let rejection = rejected(r#"{"type":"teleport","ref":"x2"}"#);
        assert_eq!(rejection.code, ErrorCode::BadRequest);
        assert_eq!(rejection.reference.as_deref(), Some("x2"));
    }

    #[test]
    fn refs_longer_than_64_characters_are_bad_request() {
        let ok = format!(r#"{{"type":"ping","ref":"{}"}}"#, "é".repeat(64));
        assert!(parse_request(&ok).is_ok());
        let long = "é".repeat(65);
        let rejection = rejected(&format!(
            r#"{{"type":"say","room":"a","text":"t","ref":"{long}"}}"#
        ));
        assert_eq!(rejection.code, ErrorCode::BadRequest);
        assert_eq!(rejection.reference.as_deref(), Some(long.as_str()));
    }

    #[test]
    fn invalid_room_comes_before_invalid_text() {
        for kind in ["join", "leave", "typing"] {
            let rejection = rejected(&format!(r#"{{"type":"{kind}","room":"no way","ref":"k"}}"#));
            assert_eq!(rejection.code, ErrorCode::InvalidRoom, "{kind}");
            assert_eq!(rejection.reference.as_deref(), Some("k"));
        }
        let rejection = rejected(r#"{"type":"say","room":"-x","text":""}"#);
        assert_eq!(rejection.code, ErrorCode::InvalidRoom);
        let rejection = rejected(r#"{"type":"say","room":"x","text":"   ","ref":"t"}"#);
        assert_eq!(rejection.code, ErrorCode::InvalidText);
        assert_eq!(rejection.reference.as_deref(), Some("t"));
    }

    #[test]
    fn default_messages_state_the_limits_of_the_rules() {
        assert_eq!(
            default_message(ErrorCode::InvalidRoom),
            "room names are 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"
        );
        assert_eq!(
            default_message(ErrorCode::InvalidName),
            "names are 1 to 32 characters without control or invisible characters"
        );
        assert_eq!(
            default_message(ErrorCode::InvalidText),
            "messages are 1 to 4000 characters"
        );
        for code in ErrorCode::ALL {
            assert!(!default_message(code).is_empty(), "{code}");
        }
    }

    #[test]
    fn invalid_nick_is_invalid_name() {
        let rejection = rejected(r#"{"type":"nick","name":"a\u0007b","ref":"n"}"#);
        assert_eq!(rejection.code, ErrorCode::InvalidName);
        assert_eq!(rejection.reference.as_deref(), Some("n"));
        assert_eq!(
            rejected(r#"{"type":"nick","name":"  "}"#).code,
            ErrorCode::InvalidName
        );
    }
}
