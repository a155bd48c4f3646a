//! Transport rules (docs/protocol.md, "Connecting" and "How the server
//! closes a connection"): the upgrade (names, origin, connection cap: rules
//! 1, 4, 24), frames (binary, size limit: rule 3), heartbeat (rule 29), slow
//! consumers (rules 15 and 30) and shutdown (rules 25 and 35).

use crate::helpers::{Client, Event, burst_friendly, spawn_app, spawn_app_with};
use charla_protocol::{ErrorCode, PresenceEvent, ServerMessage};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

#[actix_web::test]
async fn welcome_is_first_and_carries_the_chosen_name() {
    let app = spawn_app().await;
    let client = app.connect("  ana  ").await;
    assert_eq!(client.name, "ana", "names are trimmed");
    assert!(!client.session.is_empty());
    let other = app.connect("ana").await;
    assert_ne!(
        client.session, other.session,
        "names are not unique, sessions are"
    );
}

#[actix_web::test]
async fn without_a_name_the_server_picks_guest_and_four_digits() {
    let app = spawn_app().await;
    let client = app.try_connect("", &[]).await.expect("upgrade");
    let digits = client.name.strip_prefix("guest-").expect("guest- prefix");
    assert_eq!(digits.len(), 4, "{}", client.name);
    assert!(
        digits.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        client.name
    );
}

#[actix_web::test]
async fn an_invalid_name_is_refused_with_400_before_the_upgrade() {
    let app = spawn_app().await;
    for query in [
        "?name=",
        "?name=%20%20",
        "?name=a%07b",
        &format!("?name={}", "x".repeat(33)),
    ] {
        assert_eq!(
            app.try_connect(query, &[]).await.err(),
            Some(400),
            "{query}"
        );
    }
}

#[actix_web::test]
async fn cross_site_origins_are_refused_with_403() {
    let app = spawn_app_with(|c| c.allowed_origins = vec!["https://friend.example".into()]).await;
    let host = format!("127.0.0.1:{}", app.port);
    let same = format!("http://{host}");
    assert!(
        app.try_connect("", &[("Origin", &same)]).await.is_ok(),
        "same host passes"
    );
    assert!(
        app.try_connect("", &[("Origin", "https://friend.example")])
            .await
            .is_ok(),
        "listed origin passes"
    );
    assert_eq!(
        app.try_connect("", &[("Origin", "https://evil.example")])
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        app.try_connect("", &[("Origin", "null")]).await.err(),
        Some(403)
    );
    assert_eq!(
        app.try_connect("", &[("Origin", "http://127.0.0.1:1")])
            .await
            .err(),
        Some(403),
        "another port is another origin"
    );
    assert!(
        app.try_connect("", &[]).await.is_ok(),
        "no Origin: a non-browser client"
    );
}

#[actix_web::test]
async fn a_wildcard_allows_any_origin_but_null() {
    let app = spawn_app_with(|c| c.allowed_origins = vec!["*".into()]).await;
    assert!(
        app.try_connect("", &[("Origin", "https://anywhere.example")])
            .await
            .is_ok()
    );
    assert_eq!(
        app.try_connect("", &[("Origin", "null")]).await.err(),
        Some(403)
    );
}

#[actix_web::test]
async fn a_binary_frame_is_unsupported_and_the_connection_stays() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    client.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(client.expect_error().await, (ErrorCode::Unsupported, None));
    client
        .send_json(json!({"type": "ping", "ref": "still-here"}))
        .await;
    assert_eq!(
        client.recv().await,
        ServerMessage::Pong {
            reference: Some("still-here".into())
        }
    );
}

/// A ping request padded with an ignored field to exactly `size` bytes.
fn ping_of_size(size: usize) -> String {
    let head = r#"{"type":"ping","ref":"big","pad":""#;
    let tail = r#""}"#;
    let padded = format!("{head}{}{tail}", "a".repeat(size - head.len() - tail.len()));
    assert_eq!(padded.len(), size);
    padded
}

#[actix_web::test]
async fn a_message_of_exactly_the_limit_passes_and_one_byte_more_closes_with_1009() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    client.send_raw(Message::text(ping_of_size(65_536))).await;
    assert_eq!(
        client.recv().await,
        ServerMessage::Pong {
            reference: Some("big".into())
        }
    );
    client.send_raw(Message::text(ping_of_size(65_537))).await;
    assert_eq!(client.expect_close().await.0, 1009);
}

/// Sends `text` as three fragments: text, continuation, final continuation.
async fn send_fragmented(client: &mut Client, text: &str) {
    let third = text.len() / 3;
    let (a, rest) = text.as_bytes().split_at(third);
    let (b, c) = rest.split_at(third);
    client
        .send_raw(Message::Frame(Frame::message(
            a.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    client
        .send_raw(Message::Frame(Frame::message(
            b.to_vec(),
            OpCode::Data(Data::Continue),
            false,
        )))
        .await;
    client
        .send_raw(Message::Frame(Frame::message(
            c.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
}

#[actix_web::test]
async fn the_limit_counts_a_fragmented_message_whole() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    send_fragmented(&mut client, &ping_of_size(65_536)).await;
    assert_eq!(
        client.recv().await,
        ServerMessage::Pong {
            reference: Some("big".into())
        }
    );
    send_fragmented(&mut client, &ping_of_size(65_537)).await;
    assert_eq!(client.expect_close().await.0, 1009);
}

#[actix_web::test]
async fn the_frame_limit_follows_the_configuration() {
    let app = spawn_app_with(|c| c.max_frame_bytes = 2048).await;
    let mut client = app.connect("ana").await;
    client.send_raw(Message::text(ping_of_size(2048))).await;
    assert_eq!(
        client.recv().await,
        ServerMessage::Pong {
            reference: Some("big".into())
        }
    );
    client.send_raw(Message::text(ping_of_size(2049))).await;
    assert_eq!(client.expect_close().await.0, 1009);
}

#[actix_web::test]
async fn application_ping_is_answered_with_pong_and_its_ref() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    client.send_json(json!({"type": "ping"})).await;
    assert_eq!(client.recv().await, ServerMessage::Pong { reference: None });
    client
        .send_json(json!({"type": "ping", "ref": "p-1"}))
        .await;
    assert_eq!(
        client.recv().await,
        ServerMessage::Pong {
            reference: Some("p-1".into())
        }
    );
}

#[actix_web::test]
async fn a_silent_client_is_dropped_after_the_timeout_and_a_live_one_is_not() {
    let app = spawn_app_with(|c| {
        c.heartbeat = Duration::from_millis(50);
        c.client_timeout = Duration::from_millis(300);
    })
    .await;
    let mut watcher = app.member("watcher", "hb").await;
    let mut silent = app.member("silent", "hb").await;
    let silent_id = silent.session.clone();
    // The silent client now stops reading, so it answers no ping. The watcher
    // keeps reading (tungstenite answers pings as it reads) and sees the
    // silent one leave, which takes at least the timeout.
    loop {
        match watcher.recv().await {
            ServerMessage::Presence {
                event: PresenceEvent::Leave,
                member,
                count,
                ..
            } => {
                assert_eq!(member.id, silent_id);
                assert_eq!(count, 1);
                break;
            }
            ServerMessage::Presence { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let (code, reason) = silent.expect_close().await;
    assert_eq!((code, reason.as_str()), (1001, "heartbeat timeout"));
    // The live client is still served after more than the timeout.
    assert!(watcher.barrier().await.is_empty());
}

#[actix_web::test]
async fn a_reader_that_stops_reading_is_closed_with_1008_while_others_keep_receiving() {
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.outbox_frames = 8;
    })
    .await;
    let mut sender = app.member("sender", "slow").await;
    let mut reader = app.member("reader", "slow").await;
    let mut stalled = app.connect_small_buffer("stalled").await;
    stalled.join("slow").await;
    let stalled_id = stalled.session.clone();
    let text = "x".repeat(4000);
    let mut expected_id = 0;
    let mut stalled_left = false;
    // Bounded: the stalled client's buffers hold a few megabytes at most.
    for _ in 0..5_000 {
        sender.say("slow", &text).await;
        expected_id += 1;
        // The sender and the reader get every message, in order, while the
        // stalled member is dropped.
        for client in [&mut sender, &mut reader] {
            loop {
                match client.recv().await {
                    ServerMessage::Message(message) => {
                        assert_eq!(message.id, expected_id);
                        break;
                    }
                    ServerMessage::Presence {
                        event: PresenceEvent::Leave,
                        member,
                        ..
                    } => {
                        assert_eq!(member.id, stalled_id);
                        stalled_left = true;
                    }
                    ServerMessage::Presence { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        if stalled_left {
            break;
        }
    }
    assert!(stalled_left, "the stalled member was never closed");
    // Once it reads again, it gets what was already on its way, then 1008.
    assert_eq!(stalled.expect_close().await, (1008, "too slow".to_owned()));
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("charla_slow_consumers_total 1\n"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn beyond_the_connection_cap_upgrades_get_503_and_the_others_stay() {
    let app = spawn_app_with(|c| c.max_connections = 2).await;
    let mut first = app.member("one", "cap").await;
    let mut second = app.member("two", "cap").await;
    assert_eq!(app.try_connect("?name=three", &[]).await.err(), Some(503));
    let response = app.http().get(app.url("/ws")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "5");
    // The first session is untouched: it only heard the second join.
    let heard = first.barrier().await;
    assert!(
        matches!(
            heard.as_slice(),
            [ServerMessage::Presence {
                event: PresenceEvent::Join,
                ..
            }]
        ),
        "{heard:?}"
    );
    second.barrier().await;
    // A place frees once a session ends: when the others see it leave.
    drop(first);
    match second.recv().await {
        ServerMessage::Presence {
            event: PresenceEvent::Leave,
            ..
        } => {}
        other => panic!("expected the first to leave, got {other:?}"),
    }
    assert!(
        app.try_connect("?name=three", &[]).await.is_ok(),
        "a freed place is reusable"
    );
}

#[actix_web::test]
async fn shutdown_closes_every_session_with_1001_and_refuses_new_upgrades() {
    let mut app = spawn_app_with(|c| {
        burst_friendly(c);
        c.outbox_frames = 10_000;
    })
    .await;
    let mut ana = app.member("ana", "bye").await;
    let mut bob = app.member("bob", "bye").await;
    // A member that stops reading while more is on its way than the socket
    // buffers hold (4 MiB of send buffer at most here): its writer is still
    // busy when the shutdown begins, so the shutdown has to wait for it.
    let mut stalled = app.connect_small_buffer("stalled").await;
    stalled.join("bye").await;
    let text = "x".repeat(4000);
    const FLOOD: u64 = 1500;
    for _ in 0..FLOOD {
        ana.say("bye", &text).await;
    }
    for n in 1..=FLOOD {
        assert_eq!(ana.expect_message().await.id, n);
    }
    app.begin_shutdown();
    assert_eq!(ana.expect_close().await.0, 1001);
    // While that session is still draining, new upgrades are refused.
    assert_eq!(app.try_connect("?name=late", &[]).await.err(), Some(503));
    assert_eq!(bob.expect_close().await.0, 1001);
    // The stalled member reads again: what was already written, then 1001.
    let mut delivered = 0;
    let code = loop {
        match stalled.next_event().await {
            Event::Message(ServerMessage::Message(message)) => {
                delivered += 1;
                assert_eq!(message.id, delivered, "in order, without gaps");
            }
            Event::Message(_) => {}
            Event::Closed(frame) => break frame.map(|f| u16::from(f.code)),
        }
    };
    assert_eq!(code, Some(1001));
    assert!(delivered > 0 && delivered < FLOOD, "delivered {delivered}");
    app.shutdown().await.expect("the server exits cleanly");
}
