//! Membership and presence (docs/protocol.md, rules 6, 12, 18), typing
//! (rules 5 and 21), and the live room directory (`watch_rooms`, rules 23
//! and 33).

use crate::helpers::{spawn_app, spawn_app_with};
use charla_protocol::{ErrorCode, PresenceEvent, RoomSummary, ServerMessage};
use serde_json::json;

fn presence(message: ServerMessage) -> (PresenceEvent, String, String, usize) {
    match message {
        ServerMessage::Presence {
            event,
            member,
            count,
            room,
        } => (event, member.id, room, count),
        other => panic!("expected presence, got {other:?}"),
    }
}

#[actix_web::test]
async fn joining_lists_the_members_and_tells_the_others_only() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.connect("bob").await;
    let (members, history, complete) = bob.join("general").await;
    let mut names: Vec<_> = members
        .iter()
        .map(|m| (m.name.as_str(), m.id.as_str()))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [("ana", ana.session.as_str()), ("bob", bob.session.as_str())]
    );
    assert!(history.is_empty());
    assert!(complete, "without after, complete is true (rule 17)");
    assert_eq!(
        presence(ana.recv().await),
        (
            PresenceEvent::Join,
            bob.session.clone(),
            "general".into(),
            2
        )
    );
    assert!(
        bob.barrier().await.is_empty(),
        "no presence about oneself (rule 18)"
    );
}

#[actix_web::test]
async fn joining_again_is_harmless() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.member("bob", "general").await;
    presence(ana.recv().await);
    let (members, _, _) = bob.join("general").await;
    assert_eq!(members.len(), 2, "the count did not change (rule 6)");
    assert!(
        ana.barrier().await.is_empty(),
        "no presence for a repeated join"
    );
}

#[actix_web::test]
async fn leaving_answers_left_and_tells_the_others_with_the_new_count() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.member("bob", "general").await;
    presence(ana.recv().await);
    bob.send_json(json!({"type": "leave", "room": "general"}))
        .await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Left {
            room: "general".into()
        }
    );
    assert_eq!(
        presence(ana.recv().await),
        (
            PresenceEvent::Leave,
            bob.session.clone(),
            "general".into(),
            1
        )
    );
    bob.send_json(json!({"type": "leave", "room": "general", "ref": "again"}))
        .await;
    assert_eq!(
        bob.expect_error().await,
        (ErrorCode::NotJoined, Some("again".into()))
    );
    bob.say("general", "after leaving").await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::NotJoined);
}

#[actix_web::test]
async fn a_closed_connection_leaves_every_room() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "one").await;
    ana.join("two").await;
    let mut bob = app.member("bob", "one").await;
    bob.join("two").await;
    let bob_id = bob.session.clone();
    presence(ana.recv().await);
    presence(ana.recv().await);
    drop(bob);
    let mut left = vec![presence(ana.recv().await), presence(ana.recv().await)];
    left.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        left,
        [
            (PresenceEvent::Leave, bob_id.clone(), "one".into(), 1),
            (PresenceEvent::Leave, bob_id, "two".into(), 1)
        ]
    );
}

#[actix_web::test]
async fn a_rename_reaches_every_member_of_every_joined_room_the_renamer_included() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "one").await;
    ana.join("two").await;
    let mut bob = app.member("bob", "one").await;
    presence(ana.recv().await);
    ana.send_json(json!({"type": "nick", "name": "  Ana María  "}))
        .await;
    let renamed = charla_protocol::Member {
        id: ana.session.clone(),
        name: "Ana María".into(),
    };
    let mut seen_by_ana = Vec::new();
    for _ in 0..2 {
        match ana.recv().await {
            ServerMessage::Presence {
                event: PresenceEvent::Rename,
                member,
                count,
                room,
            } => {
                assert_eq!(member, renamed);
                seen_by_ana.push((room, count));
            }
            other => panic!("expected a rename, got {other:?}"),
        }
    }
    seen_by_ana.sort();
    assert_eq!(seen_by_ana, [("one".to_owned(), 2), ("two".to_owned(), 1)]);
    match bob.recv().await {
        ServerMessage::Presence {
            event: PresenceEvent::Rename,
            member,
            count,
            room,
        } => {
            assert_eq!((member, room.as_str(), count), (renamed, "one", 2));
        }
        other => panic!("expected a rename, got {other:?}"),
    }
    ana.say("one", "hola").await;
    assert_eq!(bob.expect_message().await.from.name, "Ana María");
}

#[actix_web::test]
async fn typing_goes_to_the_others_once_per_second_and_never_back() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.member("bob", "general").await;
    presence(ana.recv().await);
    ana.send_json(json!({"type": "typing", "room": "general"}))
        .await;
    ana.send_json(json!({"type": "typing", "room": "general"}))
        .await;
    ana.say("general", "done typing").await;
    match bob.recv().await {
        ServerMessage::Typing { room, member } => {
            assert_eq!(
                (room.as_str(), member.id.as_str()),
                ("general", ana.session.as_str())
            );
        }
        other => panic!("expected typing, got {other:?}"),
    }
    // The second hint within the second was dropped: the message is next.
    assert!(matches!(bob.recv().await, ServerMessage::Message(_)));
    // The sender never gets its own hint.
    assert!(matches!(ana.recv().await, ServerMessage::Message(_)));
}

#[actix_web::test]
async fn watch_rooms_sends_the_directory_at_once_and_on_changes() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "busy").await;
    let _bob = app.member("bob", "busy").await;
    presence(ana.recv().await);
    let mut lobby = app.connect("lobby").await;
    let mut other_lobby = app.connect("other-lobby").await;
    lobby.send_json(json!({"type": "watch_rooms"})).await;
    other_lobby.send_json(json!({"type": "watch_rooms"})).await;
    let expected = vec![RoomSummary {
        name: "busy".into(),
        members: 2,
        last_id: 0,
    }];
    assert_eq!(
        lobby.recv().await,
        ServerMessage::Rooms {
            rooms: expected.clone()
        }
    );
    assert_eq!(
        other_lobby.recv().await,
        ServerMessage::Rooms { rooms: expected }
    );

    let _carol = app.member("carol", "quiet").await;
    let expected = vec![
        RoomSummary {
            name: "busy".into(),
            members: 2,
            last_id: 0,
        },
        RoomSummary {
            name: "quiet".into(),
            members: 1,
            last_id: 0,
        },
    ];
    assert_eq!(
        lobby.recv().await,
        ServerMessage::Rooms {
            rooms: expected.clone()
        }
    );
    assert_eq!(
        other_lobby.recv().await,
        ServerMessage::Rooms { rooms: expected }
    );

    lobby.send_json(json!({"type": "unwatch_rooms"})).await;
    lobby.barrier().await;
    let _dan = app.member("dan", "third").await;
    // The one still watching sees the change; the other got nothing before
    // its next answer from the registry.
    assert!(matches!(
        other_lobby.recv().await,
        ServerMessage::Rooms { .. }
    ));
    assert!(lobby.barrier().await.is_empty());
}

#[actix_web::test]
async fn the_directory_lists_at_most_100_rooms_with_members_most_first() {
    let app = spawn_app_with(|c| {
        c.max_rooms_per_session = 128;
        c.request_rate = 0.0;
        c.new_rooms_per_minute = 0;
    })
    .await;
    let mut crowd = app.connect("crowd").await;
    for n in 0..105 {
        crowd.join(&format!("room-{n:03}")).await;
    }
    let _second = app.member("second", "room-104").await;
    let mut lobby = app.connect("lobby").await;
    lobby.send_json(json!({"type": "watch_rooms"})).await;
    match lobby.recv().await {
        ServerMessage::Rooms { rooms } => {
            assert_eq!(rooms.len(), 100);
            assert_eq!((rooms[0].name.as_str(), rooms[0].members), ("room-104", 2));
            assert_eq!(rooms[1].name, "room-000", "ties are ordered by name");
            assert_eq!(rooms[99].name, "room-098");
        }
        other => panic!("expected rooms, got {other:?}"),
    }
}
