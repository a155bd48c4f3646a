//! Ordering, delivery and idempotency (docs/protocol.md, "Ordering, delivery
//! and resends"): ids, acks, concurrent senders, resume with `after` (rule
//! 27), history on join, and `ref` deduplication.

use crate::helpers::{burst_friendly, spawn_app, spawn_app_with};
use charla_protocol::{ChatMessage, ErrorCode, ServerMessage};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

fn ids(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

#[actix_web::test]
async fn a_message_reaches_every_member_the_sender_included() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.member("bob", "general").await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    ana.say("general", "  hola, bob  ").await;
    let for_bob = bob.expect_message().await;
    let for_ana = ana.expect_message().await;
    assert_eq!(for_bob, for_ana);
    assert_eq!(for_bob.id, 1, "ids start at 1");
    assert_eq!(for_bob.text, "hola, bob", "text is trimmed");
    assert_eq!(for_bob.from, ana.as_member());
    assert_eq!(for_bob.room, "general");
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        (before..=after).contains(&for_bob.at),
        "at is unix milliseconds"
    );
}

#[actix_web::test]
async fn the_sender_gets_its_ack_before_its_own_copy() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    ana.say_with_ref("general", "first", "ref-1").await;
    assert_eq!(
        ana.recv().await,
        ServerMessage::Ack {
            reference: "ref-1".into(),
            room: "general".into(),
            id: 1
        }
    );
    assert_eq!(ana.expect_message().await.id, 1);
    ana.say("general", "no ref, no ack").await;
    assert!(matches!(ana.recv().await, ServerMessage::Message(m) if m.id == 2));
}

#[actix_web::test]
async fn concurrent_senders_produce_contiguous_ascending_ids_for_every_receiver() {
    const SENDERS: usize = 4;
    const EACH: usize = 60;
    let app = spawn_app_with(burst_friendly).await;
    let mut clients = Vec::new();
    for n in 0..SENDERS {
        clients.push(app.member(&format!("sender-{n}"), "race").await);
    }
    let mut listener = app.member("listener", "race").await;
    // Drain the presence events of later joiners.
    for client in &mut clients {
        client.barrier().await;
    }
    let mut tasks = Vec::new();
    for mut client in clients {
        tasks.push(actix_web::rt::spawn(async move {
            for n in 0..EACH {
                client.say("race", &format!("{} #{n}", client.name)).await;
            }
            let mut seen = Vec::new();
            while seen.len() < SENDERS * EACH {
                seen.push(client.expect_message().await);
            }
            seen
        }));
    }
    let mut seen_by_listener = Vec::new();
    while seen_by_listener.len() < SENDERS * EACH {
        seen_by_listener.push(listener.expect_message().await);
    }
    let expected: Vec<u64> = (1..=(SENDERS * EACH) as u64).collect();
    assert_eq!(ids(&seen_by_listener), expected);
    for task in tasks {
        let seen = task.await.unwrap();
        assert_eq!(
            seen, seen_by_listener,
            "every member sees the same sequence"
        );
    }
    // Each sender's own messages keep their order within the sequence.
    for n in 0..SENDERS {
        let own: Vec<String> = seen_by_listener
            .iter()
            .filter(|m| m.from.name == format!("sender-{n}"))
            .map(|m| m.text.clone())
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("sender-{n} #{i}")).collect();
        assert_eq!(own, sent);
    }
}

#[actix_web::test]
async fn joining_without_after_sends_the_last_join_history_messages() {
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.join_history = 5;
    })
    .await;
    let mut ana = app.member("ana", "general").await;
    for n in 1..=8 {
        ana.say("general", &format!("m{n}")).await;
        ana.expect_message().await;
    }
    let mut bob = app.connect("bob").await;
    let (_, history, complete) = bob.join("general").await;
    assert_eq!(ids(&history), [4, 5, 6, 7, 8]);
    assert!(complete);
    assert_eq!(history[0].text, "m4");
}

#[actix_web::test]
async fn resuming_with_after_replays_exactly_what_was_missed() {
    let app = spawn_app_with(burst_friendly).await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.member("bob", "general").await;
    for n in 1..=3 {
        ana.say("general", &format!("m{n}")).await;
    }
    for _ in 1..=3 {
        bob.expect_message().await;
    }
    drop(bob);
    for n in 4..=6 {
        ana.say("general", &format!("m{n}")).await;
    }
    for _ in 1..=6 {
        ana.expect_message().await;
    }
    let mut bob = app.connect("bob").await;
    let (_, history, complete) = bob.join_after("general", 3).await;
    assert_eq!(ids(&history), [4, 5, 6]);
    assert!(complete);
    // Live messages continue right after the replay, with no gap.
    ana.say("general", "m7").await;
    assert_eq!(bob.expect_message().await.id, 7);
    let (_, history, complete) = bob.join_after("general", 7).await;
    assert!(history.is_empty() && complete, "nothing missed");
}

#[actix_web::test]
async fn complete_is_false_when_missed_messages_are_gone() {
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.history = 5;
        c.join_history = 5;
    })
    .await;
    let mut ana = app.member("ana", "general").await;
    for n in 1..=10 {
        ana.say("general", &format!("m{n}")).await;
    }
    for _ in 1..=10 {
        ana.expect_message().await;
    }
    let mut bob = app.connect("bob").await;
    let (_, history, complete) = bob.join_after("general", 2).await;
    assert_eq!(ids(&history), [6, 7, 8, 9, 10]);
    assert!(!complete, "3, 4 and 5 are gone");
    let (_, history, complete) = bob.join_after("general", 5).await;
    assert_eq!(ids(&history), [6, 7, 8, 9, 10]);
    assert!(complete, "nothing after 5 was dropped");
}

#[actix_web::test]
async fn after_beyond_the_last_id_means_the_sequence_restarted() {
    let app = spawn_app_with(|c| c.join_history = 2).await;
    let mut ana = app.member("ana", "general").await;
    for n in 1..=3 {
        ana.say("general", &format!("m{n}")).await;
        ana.expect_message().await;
    }
    let mut bob = app.connect("bob").await;
    let (_, history, complete) = bob.join_after("general", 57).await;
    assert_eq!(
        ids(&history),
        [2, 3],
        "the recent history, as without after"
    );
    assert!(!complete, "the client must not assume continuity");
}

#[actix_web::test]
async fn a_resent_ref_is_acked_with_the_original_id_and_not_broadcast_again() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bob = app.member("bob", "general").await;
    ana.say_with_ref("general", "once", "uuid-1").await;
    assert!(matches!(
        ana.recv_skipping_presence().await,
        ServerMessage::Ack { id: 1, .. }
    ));
    ana.expect_message().await;
    assert_eq!(bob.expect_message().await.id, 1);
    // Resent with other text: still the original id (docs/protocol.md,
    // rule 19).
    ana.say_with_ref("general", "once, edited", "uuid-1").await;
    assert_eq!(
        ana.recv().await,
        ServerMessage::Ack {
            reference: "uuid-1".into(),
            room: "general".into(),
            id: 1
        }
    );
    // From another connection (docs/protocol.md, rule 9).
    let mut ana_again = app.member("ana", "general").await;
    ana_again.say_with_ref("general", "once", "uuid-1").await;
    assert!(matches!(
        ana_again.recv().await,
        ServerMessage::Ack { id: 1, .. }
    ));
    // Bob saw nothing new: the next message he gets is the next id.
    ana.say("general", "twice").await;
    assert_eq!(bob.expect_message().await.id, 2);
    assert_eq!(ana.expect_message().await.id, 2);
    assert_eq!(app.history("general", "").await.len(), 2);
    // The same ref in another room is a new message.
    ana.join("other").await;
    ana.say_with_ref("other", "elsewhere", "uuid-1").await;
    assert!(
        matches!(ana.recv_skipping_presence().await, ServerMessage::Ack { id: 1, ref room, .. } if room == "other")
    );
    assert_eq!(ana.expect_message().await.room, "other");
}

#[actix_web::test]
async fn refs_are_remembered_beyond_the_retained_history() {
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.history = 3;
        c.join_history = 3;
    })
    .await;
    let mut ana = app.member("ana", "general").await;
    ana.say_with_ref("general", "old", "keep-me").await;
    for n in 0..20 {
        ana.say("general", &format!("filler {n}")).await;
    }
    ana.say_with_ref("general", "old", "keep-me").await;
    let mut acks = Vec::new();
    while acks.len() < 2 {
        if let ServerMessage::Ack { id, .. } = ana.recv().await {
            acks.push(id);
        }
    }
    assert_eq!(acks, [1, 1]);
}

#[actix_web::test]
async fn history_entries_are_message_events() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    ana.say("general", "kept").await;
    let live = ana.expect_message().await;
    let mut bob = app.connect("bob").await;
    let (_, history, _) = bob.join("general").await;
    assert_eq!(
        history,
        [live],
        "the same object as the live event (rule 17)"
    );
}

#[actix_web::test]
async fn a_join_during_a_flood_gets_history_then_live_messages_without_gap_or_duplicate() {
    const FLOOD: u64 = 400;
    // A queue that holds the whole flood: this test is about order, not about
    // slow consumers, and debug builds on a busy machine write slowly.
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.outbox_frames = 1024;
    })
    .await;
    let mut ana = app.member("ana", "busy").await;
    let flood = actix_web::rt::spawn(async move {
        for n in 0..FLOOD {
            ana.say("busy", &format!("m{n}")).await;
        }
        for _ in 0..FLOOD {
            ana.expect_message().await;
        }
    });
    // Bob joins while the flood is under way: docs/protocol.md, rule 11.
    let mut bob = app.connect("bob").await;
    bob.send_json(serde_json::json!({"type": "join", "room": "busy"}))
        .await;
    let (_, history, complete) = match bob.recv().await {
        ServerMessage::Joined {
            history,
            complete,
            members,
            ..
        } => (members, history, complete),
        other => panic!("joined must come before any message of the room, got {other:?}"),
    };
    assert!(complete);
    let mut seen = ids(&history);
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "history is contiguous: {seen:?}"
    );
    let mut next = seen.last().map_or(1, |last| last + 1);
    while next <= FLOOD {
        let message = bob.expect_message().await;
        assert_eq!(
            message.id, next,
            "live messages continue the history exactly"
        );
        seen.push(message.id);
        next += 1;
    }
    flood.await.unwrap();
}

#[actix_web::test]
async fn answers_after_a_say_wait_until_it_is_stored() {
    // Rule 36 with the durable store: a `say` is answered only once stored,
    // and what the session asked after it is answered after it.
    let app = spawn_app_with(burst_friendly).await;
    let mut ana = app.member("ana", "general").await;
    for n in 0..50 {
        ana.say_with_ref("general", &format!("m{n}"), &format!("s{n}"))
            .await;
        ana.send_json(json!({"type": "leave", "room": "nowhere", "ref": format!("l{n}")}))
            .await;
    }
    for n in 0..50u64 {
        match ana.recv().await {
            ServerMessage::Ack { reference, id, .. } => {
                assert_eq!((reference, id), (format!("s{n}"), n + 1));
            }
            other => panic!("expected the ack of s{n}, got {other:?}"),
        }
        assert_eq!(ana.expect_message().await.text, format!("m{n}"));
        assert_eq!(
            ana.expect_error().await,
            (ErrorCode::NotJoined, Some(format!("l{n}")))
        );
    }
}
