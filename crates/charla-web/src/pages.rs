//! One struct per HTML page. Each derives [`askama::Template`] from a file in
//! the workspace's `templates/`; askama checks the templates at build time
//! and escapes every value (user text included) by default.
//!
//! The room page is the one with data: it renders a room's recent history
//! and members so the page is readable without JavaScript, and carries the
//! id of the last message it rendered (`data-last-id`) so the live client
//! resumes exactly there. Pages hand data to the client only in `data-*`
//! attributes: the Content-Security-Policy forbids inline scripts.
//!
//! The pages that run a script (the lobby and the room) also carry
//! [`ServerFacts`] on `<body>`: the limits this server enforces and the ids
//! it uses. The client reads them once at boot instead of repeating them, so
//! they have one home each: `charla-protocol`'s constants, or the server's
//! `Config` for what an operator can change.

use crate::clock;
use askama::Template;
use charla_protocol::{
    API_SENDER_ID, ChatMessage, MAX_NAME_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS, Member, RoomSummary,
};

/// What the client must know about this server, rendered by
/// `templates/server_facts.html` as `data-*` attributes on `<body>`:
///
/// | attribute | value |
/// |---|---|
/// | `data-max-rooms-per-session` | rooms one connection may join (the server's `Config`) |
/// | `data-max-name-chars` | [`MAX_NAME_CHARS`] |
/// | `data-max-text-chars` | [`MAX_TEXT_CHARS`] |
/// | `data-max-room-chars` | [`MAX_ROOM_CHARS`] |
/// | `data-api-sender-id` | [`API_SENDER_ID`] |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerFacts {
    max_rooms_per_session: usize,
    max_name_chars: usize,
    max_text_chars: usize,
    max_room_chars: usize,
    api_sender_id: &'static str,
}

impl ServerFacts {
    /// The facts of a server that lets one connection join
    /// `max_rooms_per_session` rooms; the rest are the contract's constants
    /// (docs/protocol.md, "Names and limits").
    pub fn new(max_rooms_per_session: usize) -> ServerFacts {
        ServerFacts {
            max_rooms_per_session,
            max_name_chars: MAX_NAME_CHARS,
            max_text_chars: MAX_TEXT_CHARS,
            max_room_chars: MAX_ROOM_CHARS,
            api_sender_id: API_SENDER_ID,
        }
    }
}

/// Distinct name colours; the client (`assets/js/format.js`) uses the same
/// count and the same hash, so a person keeps their colour across renders.
pub const NAME_HUES: u32 = 8;

/// Hex digits of a member id shown as its tag next to the name (`#9c41`),
/// so two members with the same name are told apart; the client
/// (`tagOf` in `assets/js/format.js`) shows the same.
pub const TAG_CHARS: usize = 4;

/// The tag shown next to a member's name: `#` and the first
/// [`TAG_CHARS`] characters of its member id (an identity's id is the same
/// on every connection and after every restart, docs/protocol.md rule 49).
/// Empty for the HTTP API's sender, which shows a badge instead.
pub fn tag_of(id: &str) -> String {
    if id == API_SENDER_ID {
        return String::new();
    }
    let short: String = id.chars().take(TAG_CHARS).collect();
    format!("#{short}")
}

/// The colour class of a member: a stable hash of the member id.
///
/// Kept identical to `hueOf` in `assets/js/format.js`: `h = h * 31 + c`
/// over UTF-16 code units, wrapping at 32 bits (ids are ASCII, so bytes and
/// code units agree).
pub fn hue_of(id: &str) -> u32 {
    let hash = id.encode_utf16().fold(0u32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(u32::from(unit))
    });
    hash % NAME_HUES
}

/// `GET /`: the lobby with the live room directory.
#[derive(Debug, Template)]
#[template(path = "lobby.html")]
pub struct LobbyPage {
    rooms: Vec<RoomSummary>,
    facts: ServerFacts,
}

impl LobbyPage {
    /// The lobby listing `rooms` (rooms with members, most members first).
    pub fn new(rooms: Vec<RoomSummary>, facts: ServerFacts) -> LobbyPage {
        LobbyPage { rooms, facts }
    }
}

/// One member line of the room page.
#[derive(Debug)]
pub struct MemberView {
    id: String,
    name: String,
    tag: String,
    hue: u32,
}

/// One message of the room page, in its current state (edited, deleted),
/// with its times pre-formatted.
#[derive(Debug)]
pub struct MessageView {
    id: u64,
    from_id: String,
    from_name: String,
    tag: String,
    text: String,
    at: u64,
    /// The `at` of its latest edit, when it was edited.
    edited: Option<u64>,
    deleted: bool,
    /// RFC 3339 UTC, for `<time datetime>`.
    datetime: String,
    /// `HH:MM UTC`, shown until the client localises it.
    time: String,
    hue: u32,
    via_api: bool,
}

impl From<ChatMessage> for MessageView {
    fn from(message: ChatMessage) -> MessageView {
        MessageView {
            id: message.id,
            hue: hue_of(&message.from.id),
            via_api: message.from.id == API_SENDER_ID,
            tag: tag_of(&message.from.id),
            edited: message.edited,
            deleted: message.deleted,
            from_id: message.from.id,
            from_name: message.from.name,
            text: message.text,
            at: message.at,
            datetime: clock::rfc3339(message.at),
            time: clock::short_utc(message.at),
        }
    }
}

/// `GET /rooms/{room}`: recent history and members, then live.
#[derive(Debug, Template)]
#[template(path = "room.html")]
pub struct RoomPage {
    room: String,
    members: Vec<MemberView>,
    messages: Vec<MessageView>,
    /// Id of the room's last entry the page knows (a message, or an edit
    /// or delete entry, which is applied to its message instead of shown);
    /// 0 when there is none.
    last_id: u64,
    /// `at` and `from.id` of that entry, with `last_id` its fingerprint:
    /// the client checks its first resumed entry against it (chat.js).
    last_at: u64,
    last_from_id: String,
    /// Whether messages older than the first rendered one exist (the
    /// client offers "load older messages").
    has_older: bool,
    facts: ServerFacts,
}

impl RoomPage {
    /// The page of `room` (already validated and lowercased) with its
    /// current `members` and recent `history` (ascending ids), on a server
    /// described by `facts`.
    pub fn new(
        room: &str,
        members: Vec<Member>,
        history: Vec<ChatMessage>,
        facts: ServerFacts,
    ) -> RoomPage {
        let (last_id, last_at, last_from_id) = history
            .last()
            .map_or((0, 0, String::new()), |m| (m.id, m.at, m.from.id.clone()));
        let has_older = history.first().is_some_and(|m| m.id > 1);
        RoomPage {
            room: room.to_owned(),
            members: members
                .into_iter()
                .map(|m| MemberView {
                    hue: hue_of(&m.id),
                    tag: tag_of(&m.id),
                    id: m.id,
                    name: m.name,
                })
                .collect(),
            // Messages carry their current state, so the entries that
            // changed them have nothing more to show (docs/protocol.md,
            // rule 50).
            messages: history
                .into_iter()
                .filter(|m| m.target().is_none())
                .map(MessageView::from)
                .collect(),
            last_id,
            last_at,
            last_from_id,
            has_older,
            facts,
        }
    }

    /// Id of the room's last entry the page knows; the client joins with
    /// `after` derived from it.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }
}

/// The 404 page: an invalid room name, or a path that is nothing here.
#[derive(Debug, Template)]
#[template(path = "not_found.html")]
pub struct NotFoundPage {
    heading: String,
    detail: String,
    /// What was asked for, shown back (escaped) so a typo is easy to spot.
    asked: String,
}

impl NotFoundPage {
    /// `/rooms/{raw}` where `raw` is not a valid room name.
    pub fn invalid_room(raw: &str) -> NotFoundPage {
        NotFoundPage {
            heading: "That is not a room name".to_owned(),
            detail: format!(
                "Room names are 1 to {MAX_ROOM_CHARS} letters, digits, '-' or '_', and \
                 start with a letter or a digit."
            ),
            asked: raw.to_owned(),
        }
    }

    /// Any other path that matches nothing.
    pub fn unknown_path(path: &str) -> NotFoundPage {
        NotFoundPage {
            heading: "Nothing here".to_owned(),
            detail: "This page does not exist. Rooms live at /rooms/<name>.".to_owned(),
            asked: path.to_owned(),
        }
    }
}

/// The friendly page for a 5xx: what happened in plain words, no internals.
#[derive(Debug, Default, Template)]
#[template(path = "server_error.html")]
pub struct ServerErrorPage;

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, name: &str) -> Member {
        Member {
            id: id.into(),
            name: name.into(),
        }
    }

    /// The facts of a server configured away from the usual 16 rooms.
    fn facts() -> ServerFacts {
        ServerFacts::new(5)
    }

    fn message(id: u64, from: Member, text: &str) -> ChatMessage {
        ChatMessage {
            room: "general".into(),
            id,
            from,
            text: text.into(),
            at: 1_700_000_000_000,
            ..ChatMessage::default()
        }
    }

    #[test]
    fn hues_match_the_client_hash() {
        // Expected values printed by `hueOf` from assets/js/format.js (Node).
        for (id, hue) in [
            ("", 0),
            ("api", 2),
            ("0000000000000001", 1),
            ("7fffffffffffffff", 7),
            ("3a9f02c4b1d7e655", 1),
        ] {
            assert_eq!(hue_of(id), hue, "{id:?}");
        }
    }

    #[test]
    fn the_room_page_escapes_user_text_and_carries_its_last_id() {
        let ana = member("00000000000000a1", "<b>ana</b>");
        let page = RoomPage::new(
            "general",
            vec![ana.clone()],
            vec![
                message(41, ana.clone(), "<img src=x onerror=alert(1)>"),
                message(42, member("api", "bot \"q\""), "a & b"),
            ],
            facts(),
        );
        assert_eq!(page.last_id(), 42);
        let html = page.render().unwrap();
        assert!(html.contains("data-last-id=\"42\""), "{html}");
        assert!(html.contains("data-room=\"general\""));
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{html}"
        );
        assert!(!html.contains("<b>ana</b>"));
        assert!(html.contains("a &#38; b"));
        assert!(html.contains("datetime=\"2023-11-14T22:13:20Z\""));
        assert!(html.contains("22:13 UTC"));
        assert!(html.contains("data-has-older=\"true\""));
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains(" style="), "no inline style");
        assert!(!html.contains(" onclick"), "no inline handler");
        assert!(html.contains("<script type=\"module\" src=\"/assets/js/room.js\"></script>"));
    }

    #[test]
    fn the_room_page_shows_messages_as_they_are_now_and_hides_the_entries() {
        let ana = member("9c41d07e2b85f3a6", "ana");
        let other = member("5b0e11aa22bb33cc", "ana");
        let mut edited = message(1, ana.clone(), "hello, fixed");
        edited.edited = Some(1_700_000_060_000);
        let mut deleted = message(2, other.clone(), "");
        deleted.deleted = true;
        let mut edit = message(3, ana.clone(), "hello, fixed");
        edit.edits = Some(1);
        edit.at = 1_700_000_060_000;
        let mut delete = message(4, other.clone(), "");
        delete.deletes = Some(2);
        delete.at = 1_700_000_070_000;
        let page = RoomPage::new(
            "general",
            vec![ana, other],
            vec![edited, deleted, edit, delete],
            facts(),
        );
        assert_eq!(page.last_id(), 4, "the last entry, not the last message");
        let html = page.render().unwrap();
        assert_eq!(html.matches("<li class=\"message ").count(), 2, "{html}");
        assert!(html.contains("data-last-id=\"4\""));
        assert!(html.contains("data-last-at=\"1700000070000\""));
        assert!(html.contains("data-last-from-id=\"5b0e11aa22bb33cc\""));
        assert!(html.contains("data-edited-at=\"1700000060000\""), "{html}");
        assert!(html.contains("(edited)"));
        assert!(html.contains("message hue-"), "{html}");
        assert!(html.contains(" deleted\" data-id=\"2\""), "{html}");
        assert!(html.contains("This message was deleted."));
        // Two members named alike are told apart by their tags, in the
        // messages and in the member list.
        assert_eq!(html.matches(">#9c41</span>").count(), 2, "{html}");
        assert_eq!(html.matches(">#5b0e</span>").count(), 2, "{html}");
    }

    #[test]
    fn tags_are_the_start_of_the_member_id_and_the_api_has_none() {
        assert_eq!(tag_of("9c41d07e2b85f3a6"), "#9c41");
        assert_eq!(tag_of(API_SENDER_ID), "");
    }

    #[test]
    fn an_empty_room_renders_with_last_id_zero() {
        let page = RoomPage::new("quiet", Vec::new(), Vec::new(), facts());
        assert_eq!(page.last_id(), 0);
        let html = page.render().unwrap();
        assert!(html.contains("data-last-id=\"0\""));
        assert!(html.contains("data-has-older=\"false\""));
    }

    #[test]
    fn the_lobby_lists_rooms_and_explains_itself() {
        let html = LobbyPage::new(
            vec![RoomSummary {
                name: "general".into(),
                members: 3,
                last_id: 9,
            }],
            facts(),
        )
        .render()
        .unwrap();
        assert!(html.contains("href=\"/rooms/general\""));
        assert!(html.contains("3 online"));
        assert!(html.contains("Charla"));
        assert!(html.contains("<script type=\"module\" src=\"/assets/js/lobby.js\"></script>"));
        let empty = LobbyPage::new(Vec::new(), facts()).render().unwrap();
        assert!(empty.contains("Nobody is chatting"));
    }

    #[test]
    fn pages_with_a_script_carry_the_server_facts_on_body() {
        let expected = [
            "data-max-rooms-per-session=\"5\"".to_owned(),
            format!("data-max-name-chars=\"{MAX_NAME_CHARS}\""),
            format!("data-max-text-chars=\"{MAX_TEXT_CHARS}\""),
            format!("data-max-room-chars=\"{MAX_ROOM_CHARS}\""),
            format!("data-api-sender-id=\"{API_SENDER_ID}\""),
        ];
        let lobby = LobbyPage::new(Vec::new(), facts()).render().unwrap();
        let room = RoomPage::new("general", Vec::new(), Vec::new(), facts())
            .render()
            .unwrap();
        for html in [lobby, room] {
            let body = &html[html.find("<body").unwrap()..];
            let body_tag = &body[..body.find('>').unwrap()];
            for attribute in &expected {
                assert!(
                    body_tag.contains(attribute.as_str()),
                    "{attribute} in {body_tag}"
                );
            }
        }
    }

    #[test]
    fn form_limits_come_from_the_contract() {
        let lobby = LobbyPage::new(Vec::new(), facts()).render().unwrap();
        assert!(
            lobby.contains(&format!("maxlength=\"{MAX_NAME_CHARS}\"")),
            "{lobby}"
        );
        assert!(lobby.contains(&format!("maxlength=\"{MAX_ROOM_CHARS}\"")));
        let pattern = format!("{{0,{}}}\"", MAX_ROOM_CHARS - 1);
        assert!(lobby.contains(&pattern), "{pattern} in {lobby}");
        let room = RoomPage::new("general", Vec::new(), Vec::new(), facts())
            .render()
            .unwrap();
        let text_limit = format!("maxlength=\"{MAX_TEXT_CHARS}\"");
        assert_eq!(room.matches(&text_limit).count(), 2, "{room}");
    }

    #[test]
    fn error_pages_escape_what_was_asked() {
        let html = NotFoundPage::invalid_room("<script>x</script>")
            .render()
            .unwrap();
        assert!(
            html.contains("&#60;script&#62;x&#60;/script&#62;"),
            "{html}"
        );
        assert!(!html.contains("<script>x"));
        let html = ServerErrorPage.render().unwrap();
        assert!(html.contains("Something went wrong"));
    }
}
