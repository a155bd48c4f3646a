//! What the server sends: one JSON object per text frame, tagged by `"type"`.
//!
//! A room's history entries are the same objects as live `message` events,
//! `"type":"message"` included (docs/protocol.md, rule 17), so a client handles both with one
//! code path.

use crate::ErrorCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A member of a room as others see it: the server-chosen session id and the
/// current display name (names are not unique; ids are).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
}

/// One entry of a room, live or from history: a chat message, or the edit
/// or deletion of one (docs/protocol.md, rule 50).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub room: String,
    /// Per-room id: starts at 1, grows by exactly 1.
    pub id: u64,
    pub from: Member,
    /// The text; empty once the message (or the message an edit entry
    /// edits) is deleted, and on a delete entry.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub at: u64,
    /// On a message that was edited: the `at` of its latest edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<u64>,
    /// On a message that was deleted: true (and `text` is empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// On an edit entry: the id of the message it gave this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits: Option<u64>,
    /// On a delete entry: the id of the message it deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletes: Option<u64>,
}

impl ChatMessage {
    /// The message an edit or delete entry changes; `None` for a message.
    pub fn target(&self) -> Option<u64> {
        self.edits.or(self.deletes)
    }

    /// Applies `entry`, an edit or a delete of this message, to it.
    pub fn apply(&mut self, entry: &ChatMessage) {
        if entry.edits == Some(self.id) && !self.deleted {
            self.text.clone_from(&entry.text);
            self.edited = Some(entry.at);
        } else if entry.deletes == Some(self.id) {
            self.text.clear();
            self.deleted = true;
        }
    }
}

/// What happened to a room's membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    Join,
    Leave,
    Rename,
}

/// One line of the room directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub name: String,
    pub members: usize,
    /// Id of the room's newest message; 0 when it has none.
    pub last_id: u64,
}

/// A message from server to client, exactly as on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection.
    Welcome { session: String, name: String },
    /// Answer to `join`: the members, the history to show, and whether that
    /// history is complete since the requested `after`.
    Joined {
        room: String,
        /// Names the room's id sequence: equal across reconnects while ids
        /// continue, different once they restarted. Empty when read from a
        /// server older than epochs.
        #[serde(default)]
        epoch: String,
        members: Vec<Member>,
        #[serde(
            serialize_with = "serialize_history",
            deserialize_with = "deserialize_history"
        )]
        history: Vec<ChatMessage>,
        complete: bool,
        /// True when `history` was cut to fit the connection's page of
        /// history: more messages follow the last one in it. Join again
        /// with `after` set to that id to get them (docs/protocol.md,
        /// rule 43). Absent (false) otherwise.
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
    },
    /// Answer to `leave`.
    Left { room: String },
    /// A message in a joined room, sent to every member, the sender included.
    Message(ChatMessage),
    /// To the sender of a `say` with a `ref`, once the message has its id.
    Ack {
        #[serde(rename = "ref")]
        reference: String,
        room: String,
        id: u64,
    },
    /// Membership changed; `count` is the member count after the change.
    Presence {
        room: String,
        event: PresenceEvent,
        member: Member,
        count: usize,
    },
    /// Another member is typing.
    Typing { room: String, member: Member },
    /// Answer to `ping`.
    Pong {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Room directory snapshot for a session that sent `watch_rooms`.
    Rooms { rooms: Vec<RoomSummary> },
    /// Answer to `identify`: the connection's member id from now on, and
    /// the secret when the server just issued it.
    Identity {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// A moderator removed this connection from a room (a kick, or a ban:
    /// then `until` says when the ban ends).
    Kicked {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// A request was refused; the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// With `banned`: when the ban ends, in Unix milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
}

impl ServerMessage {
    /// The JSON text of this message. Serialising these types cannot fail:
    /// they hold only strings, integers, booleans and sequences of them.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

/// The JSON of a `message` event for `message`, serialised from a borrow:
/// the server's hot path turns a stored message into its broadcast without
/// cloning it.
pub fn message_event_json(message: &ChatMessage) -> String {
    serde_json::to_string(&TaggedRef::Message(message)).expect("chat messages always serialise")
}

/// The length in bytes of [`message_event_json`]'s output, without building
/// it: what a message costs in a connection's queue or a `joined` page.
pub fn message_event_len(message: &ChatMessage) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, &TaggedRef::Message(message))
        .expect("chat messages always serialise");
    count.0
}

/// A history entry on the wire: a `message` event, tag included.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TaggedRef<'a> {
    Message(&'a ChatMessage),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Tagged {
    Message(ChatMessage),
}

/// Leaves a flag out of the JSON while it is false (old clients never see
/// it).
fn is_false(value: &bool) -> bool {
    !*value
}

fn serialize_history<S: Serializer>(history: &[ChatMessage], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(history.iter().map(TaggedRef::Message))
}

fn deserialize_history<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChatMessage>, D::Error> {
    let entries = Vec::<Tagged>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|Tagged::Message(message)| message)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn round_trip(message: ServerMessage, expected: Value) {
        assert_eq!(serde_json::to_value(&message).unwrap(), expected);
        assert_eq!(
            serde_json::from_str::<Value>(&message.to_json()).unwrap(),
            expected
        );
        let back: ServerMessage = serde_json::from_value(expected).unwrap();
        assert_eq!(back, message);
    }

    fn ana() -> Member {
        Member {
            id: "s1".into(),
            name: "ana".into(),
        }
    }

    fn hello(id: u64) -> ChatMessage {
        ChatMessage {
            room: "general".into(),
            id,
            from: ana(),
            text: "hola".into(),
            at: 1_700_000_000_000,
            ..ChatMessage::default()
        }
    }

    fn hello_json(id: u64) -> Value {
        json!({"type": "message", "room": "general", "id": id,
               "from": {"id": "s1", "name": "ana"}, "text": "hola", "at": 1_700_000_000_000u64})
    }

    #[test]
    fn a_message_event_length_is_its_json_length() {
        let mut message = hello(7);
        message.text = "\"quoted\" 👍 \u{1}".into();
        assert_eq!(
            message_event_len(&message),
            message_event_json(&message).len()
        );
    }

    #[test]
    fn every_server_message_round_trips_to_the_contract_json() {
        round_trip(
            ServerMessage::Welcome {
                session: "s1".into(),
                name: "guest-0042".into(),
            },
            json!({"type": "welcome", "session": "s1", "name": "guest-0042"}),
        );
        round_trip(
            ServerMessage::Joined {
                room: "general".into(),
                epoch: "5f0c".into(),
                members: vec![ana()],
                history: vec![hello(1), hello(2)],
                complete: true,
                more: false,
            },
            json!({"type": "joined", "room": "general", "epoch": "5f0c", "members": [{"id": "s1", "name": "ana"}],
                   "history": [hello_json(1), hello_json(2)], "complete": true}),
        );
        round_trip(
            ServerMessage::Joined {
                room: "general".into(),
                epoch: "5f0c".into(),
                members: vec![],
                history: vec![hello(1)],
                complete: true,
                more: true,
            },
            json!({"type": "joined", "room": "general", "epoch": "5f0c", "members": [],
                   "history": [hello_json(1)], "complete": true, "more": true}),
        );
        round_trip(
            ServerMessage::Left {
                room: "general".into(),
            },
            json!({"type": "left", "room": "general"}),
        );
        round_trip(ServerMessage::Message(hello(7)), hello_json(7));
        round_trip(
            ServerMessage::Ack {
                reference: "u-1".into(),
                room: "general".into(),
                id: 7,
            },
            json!({"type": "ack", "ref": "u-1", "room": "general", "id": 7}),
        );
        for (event, name) in [
            (PresenceEvent::Join, "join"),
            (PresenceEvent::Leave, "leave"),
            (PresenceEvent::Rename, "rename"),
        ] {
            round_trip(
                ServerMessage::Presence {
                    room: "general".into(),
                    event,
                    member: ana(),
                    count: 3,
                },
                json!({"type": "presence", "room": "general", "event": name,
                       "member": {"id": "s1", "name": "ana"}, "count": 3}),
            );
        }
        round_trip(
            ServerMessage::Typing {
                room: "general".into(),
                member: ana(),
            },
            json!({"type": "typing", "room": "general", "member": {"id": "s1", "name": "ana"}}),
        );
        round_trip(
            ServerMessage::Pong { reference: None },
            json!({"type": "pong"}),
        );
        round_trip(
            ServerMessage::Pong {
                reference: Some("p".into()),
            },
            json!({"type": "pong", "ref": "p"}),
        );
        round_trip(
            ServerMessage::Rooms {
                rooms: vec![RoomSummary {
                    name: "general".into(),
                    members: 2,
                    last_id: 0,
                }],
            },
            json!({"type": "rooms", "rooms": [{"name": "general", "members": 2, "last_id": 0}]}),
        );
        for code in ErrorCode::ALL {
            round_trip(
                ServerMessage::Error {
                    code,
                    message: "why".into(),
                    reference: Some("r".into()),
                    until: None,
                },
                json!({"type": "error", "code": code.as_str(), "message": "why", "ref": "r"}),
            );
        }
        round_trip(
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                message: "slow".into(),
                reference: None,
                until: None,
            },
            json!({"type": "error", "code": "rate_limited", "message": "slow"}),
        );
        round_trip(
            ServerMessage::Error {
                code: ErrorCode::Banned,
                message: "banned".into(),
                reference: None,
                until: Some(1_800_000_000_000),
            },
            json!({"type": "error", "code": "banned", "message": "banned", "until": 1_800_000_000_000u64}),
        );
        round_trip(
            ServerMessage::Identity {
                id: "0123456789abcdef".into(),
                secret: None,
            },
            json!({"type": "identity", "id": "0123456789abcdef"}),
        );
        round_trip(
            ServerMessage::Kicked {
                room: "general".into(),
                reason: Some("spam".into()),
                until: Some(5),
            },
            json!({"type": "kicked", "room": "general", "reason": "spam", "until": 5}),
        );
        let mut edit = hello(8);
        edit.edits = Some(7);
        let mut edit_json = hello_json(8);
        edit_json["edits"] = json!(7);
        round_trip(ServerMessage::Message(edit.clone()), edit_json);
        let mut edited = hello(7);
        edited.apply(&edit);
        assert_eq!(edited.edited, Some(edit.at));
        let mut delete = hello(9);
        delete.text.clear();
        delete.deletes = Some(7);
        edited.apply(&delete);
        let mut deleted_json = hello_json(7);
        deleted_json["text"] = json!("");
        deleted_json["edited"] = json!(1_700_000_000_000u64);
        deleted_json["deleted"] = json!(true);
        round_trip(ServerMessage::Message(edited), deleted_json);
    }

    #[test]
    fn borrowed_message_events_match_owned_ones() {
        assert_eq!(
            message_event_json(&hello(3)),
            ServerMessage::Message(hello(3)).to_json()
        );
    }

    #[test]
    fn history_entries_without_their_tag_are_rejected() {
        let untagged = json!({"type": "joined", "room": "general", "members": [],
            "history": [{"room": "general", "id": 1, "from": {"id": "s1", "name": "ana"}, "text": "x", "at": 1}],
            "complete": true});
        assert!(serde_json::from_value::<ServerMessage>(untagged).is_err());
    }
}
