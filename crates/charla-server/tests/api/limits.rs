//! Flood control (docs/protocol.md, rules 10, 21 and 28), rooms per session,
//! and the cap on rooms in memory with eviction (rules 22 and 34).

use crate::helpers::{Client, burst_friendly, spawn_app_with};
use charla_protocol::{ErrorCode, ServerMessage};
use serde_json::json;

#[actix_web::test]
async fn the_bucket_starts_full_and_refuses_the_say_beyond_the_burst() {
    // A refill so slow that no token comes back during the test.
    let app = spawn_app_with(|c| {
        c.msg_burst = 3;
        c.msg_rate = 0.001;
    })
    .await;
    let mut ana = app.member("ana", "general").await;
    for n in 1..=3 {
        ana.say("general", &format!("m{n}")).await;
        assert_eq!(ana.expect_message().await.id, n);
    }
    ana.say_with_ref("general", "one too many", "flood").await;
    assert_eq!(
        ana.expect_error().await,
        (ErrorCode::RateLimited, Some("flood".into()))
    );
    assert_eq!(
        app.history("general", "").await.len(),
        3,
        "the refused say was not stored"
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("charla_rate_limited_total 1\n"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn nick_takes_a_token_and_invalid_requests_do_not() {
    let app = spawn_app_with(|c| {
        c.msg_burst = 2;
        c.msg_rate = 0.001;
    })
    .await;
    let mut ana = app.member("ana", "general").await;
    // Invalid requests take nothing.
    for _ in 0..5 {
        ana.say("general", "   ").await;
        assert_eq!(ana.expect_error().await.0, ErrorCode::InvalidText);
    }
    ana.send_json(json!({"type": "nick", "name": "ana2"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Presence { .. }));
    ana.say("general", "one").await;
    ana.expect_message().await;
    ana.send_json(json!({"type": "nick", "name": "ana3", "ref": "n"}))
        .await;
    assert_eq!(
        ana.expect_error().await,
        (ErrorCode::RateLimited, Some("n".into()))
    );
    ana.say("general", "two").await;
    assert_eq!(ana.expect_error().await.0, ErrorCode::RateLimited);
}

#[actix_web::test]
async fn tokens_refill_at_the_configured_rate() {
    let app = spawn_app_with(|c| {
        c.msg_burst = 1;
        c.msg_rate = 50.0;
    })
    .await;
    let mut ana = app.member("ana", "general").await;
    ana.say("general", "first").await;
    ana.expect_message().await;
    // Keep trying: a token comes back within a few tens of milliseconds, so
    // a later say passes (bounded attempts, each a full round trip).
    let mut passed = false;
    for _ in 0..10_000 {
        ana.say("general", "again").await;
        match ana.recv().await {
            ServerMessage::Message(_) => {
                passed = true;
                break;
            }
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(passed, "the bucket refills");
}

#[actix_web::test]
async fn flood_control_off_lets_everything_through() {
    let app = spawn_app_with(burst_friendly).await;
    let mut ana = app.member("ana", "general").await;
    for n in 0..100 {
        ana.say("general", &format!("m{n}")).await;
    }
    for n in 1..=100 {
        assert_eq!(ana.expect_message().await.id, n);
    }
}

#[actix_web::test]
async fn one_room_beyond_the_per_session_limit_is_too_many_rooms() {
    let app = spawn_app_with(|c| c.max_rooms_per_session = 2).await;
    let mut ana = app.connect("ana").await;
    ana.join("one").await;
    ana.join("two").await;
    ana.send_json(json!({"type": "join", "room": "three", "ref": "j"}))
        .await;
    assert_eq!(
        ana.expect_error().await,
        (ErrorCode::TooManyRooms, Some("j".into()))
    );
    ana.join("two").await; // rejoining a joined room is not a new room
    ana.send_json(json!({"type": "leave", "room": "one"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    ana.join("three").await;
}

#[actix_web::test]
async fn a_new_room_beyond_the_cap_evicts_the_least_recently_active_empty_room() {
    // In memory (`:memory:`), eviction is all the room had: its history goes.
    let app = spawn_app_with(|c| {
        c.max_rooms = 2;
        c.database = ":memory:".into();
    })
    .await;
    let mut ana = app.member("ana", "old").await;
    ana.say("old", "in old").await;
    ana.expect_message().await;
    ana.join("newer").await;
    ana.say("newer", "in newer").await;
    ana.expect_message().await;
    for room in ["old", "newer"] {
        ana.send_json(json!({"type": "leave", "room": room})).await;
        assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    }
    // Both rooms are empty and kept for their history; a third evicts "old".
    ana.join("third").await;
    assert!(
        app.history("old", "").await.is_empty(),
        "the evicted room's history went"
    );
    assert_eq!(
        app.history("newer", "").await.len(),
        1,
        "the more recent one stays"
    );
    // With every room occupied, nothing can go.
    ana.join("newer").await;
    let mut bob = app.connect("bob").await;
    bob.send_json(json!({"type": "join", "room": "fourth", "ref": "full"}))
        .await;
    assert_eq!(
        bob.expect_error().await,
        (ErrorCode::TooManyRooms, Some("full".into()))
    );
}

#[actix_web::test]
async fn an_evicted_room_keeps_its_history_and_its_ids_on_disk() {
    let app = spawn_app_with(|c| c.max_rooms = 2).await;
    let mut ana = app.member("ana", "old").await;
    for text in ["one", "two"] {
        ana.say_with_ref("old", text, text).await;
    }
    ana.barrier().await;
    let epoch = joined_epoch(&mut ana, "newer").await;
    for room in ["old", "newer"] {
        ana.send_json(json!({"type": "leave", "room": room})).await;
        assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    }
    ana.join("third").await; // evicts "old" from memory
    let texts: Vec<String> = app
        .history("old", "")
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["one", "two"], "read from disk while evicted");
    let (_, history, complete) = ana.join_after("old", 1).await;
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [2]);
    assert!(complete);
    ana.say_with_ref("old", "three", "three").await;
    ana.say_with_ref("old", "one again", "one").await;
    let acks: Vec<u64> = ana
        .barrier()
        .await
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Ack { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [3, 1], "ids continue and the ref window came back");
    assert_eq!(
        joined_epoch(&mut ana, "old").await,
        epoch,
        "one epoch per file"
    );
}

#[actix_web::test]
async fn in_memory_a_restarted_sequence_is_told_by_its_epoch() {
    let app = spawn_app_with(|c| {
        c.max_rooms = 1;
        c.database = ":memory:".into();
    })
    .await;
    let mut ana = app.connect("ana").await;
    let epoch = joined_epoch(&mut ana, "r").await;
    for text in ["a", "b", "c"] {
        ana.say("r", text).await;
        ana.expect_message().await;
    }
    ana.send_json(json!({"type": "leave", "room": "r"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    ana.join("other").await; // evicts "r": its sequence restarts
    ana.send_json(json!({"type": "leave", "room": "other"}))
        .await;
    assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    let fresh = joined_epoch(&mut ana, "r").await;
    assert_ne!(fresh, epoch);
    for text in ["x", "y", "z", "w"] {
        ana.say("r", text).await;
        ana.expect_message().await;
    }
    // Id 3 exists again, but it is not the 3 the client saw.
    ana.send_json(json!({"type": "leave", "room": "r"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    ana.send_json(json!({"type": "join", "room": "r", "after": 3, "epoch": epoch}))
        .await;
    let (_, history, complete) = ana.expect_joined().await;
    assert!(!complete, "a restarted sequence is never complete");
    assert_eq!(history.len(), 4);
    ana.send_json(json!({"type": "leave", "room": "r"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    ana.send_json(json!({"type": "join", "room": "r", "after": 3, "epoch": fresh}))
        .await;
    let (_, history, complete) = ana.expect_joined().await;
    assert!(complete);
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [4]);
}

/// Joins `room` and answers the epoch of its `joined`.
async fn joined_epoch(client: &mut Client, room: &str) -> String {
    client
        .send_json(json!({"type": "join", "room": room}))
        .await;
    match client.recv_skipping_presence().await {
        ServerMessage::Joined { epoch, .. } => epoch,
        other => panic!("expected joined, got {other:?}"),
    }
}
