//! Request validation over `/ws` (docs/protocol.md, "Errors"): the error
//! codes and the order of checks (rules 7 and 28), `ref` echoes (rules 8 and
//! 19), and that a refused request changes nothing.

use crate::helpers::spawn_app;
use charla_protocol::ErrorCode;
use serde_json::json;

#[actix_web::test]
async fn malformed_requests_are_bad_request_and_echo_a_string_ref() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    let cases = [
        ("not json at all".to_owned(), None),
        ("[1, 2, 3]".to_owned(), None),
        (r#"{"no_type": true, "ref": "r1"}"#.to_owned(), Some("r1")),
        (r#"{"type": "dance", "ref": "r2"}"#.to_owned(), Some("r2")),
        (
            r#"{"type": "say", "room": "general", "ref": "r3"}"#.to_owned(),
            Some("r3"),
        ),
        (
            r#"{"type": "say", "room": "general", "text": 42, "ref": "r4"}"#.to_owned(),
            Some("r4"),
        ),
        (
            r#"{"type": "join", "room": "general", "after": "x", "ref": "r5"}"#.to_owned(),
            Some("r5"),
        ),
        (r#"{"type": "ping", "ref": 17}"#.to_owned(), None),
        (
            format!(r#"{{"type": "ping", "ref": "{}"}}"#, "r".repeat(65)),
            None,
        ),
    ];
    for (text, reference) in cases {
        client
            .send_raw(tokio_tungstenite::tungstenite::Message::text(text.clone()))
            .await;
        let (code, echoed) = client.expect_error().await;
        assert_eq!(code, ErrorCode::BadRequest, "{text}");
        if text.contains(&"r".repeat(65)) {
            assert_eq!(
                echoed.as_deref(),
                Some("r".repeat(65).as_str()),
                "a string ref is echoed"
            );
        } else {
            assert_eq!(echoed.as_deref(), reference, "{text}");
        }
    }
}

#[actix_web::test]
async fn unknown_extra_fields_are_ignored() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    client
        .send_json(json!({"type": "join", "room": "general", "colour": "blue", "nested": {"a": 1}}))
        .await;
    client.expect_joined().await;
}

#[actix_web::test]
async fn a_long_ref_on_a_say_stores_nothing() {
    let app = spawn_app().await;
    let mut client = app.member("ana", "general").await;
    client
        .say_with_ref("general", "hello", &"r".repeat(65))
        .await;
    assert_eq!(client.expect_error().await.0, ErrorCode::BadRequest);
    assert!(app.history("general", "").await.is_empty());
}

#[actix_web::test]
async fn invalid_room_names_are_invalid_room_for_every_room_request() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    for request in [
        json!({"type": "join", "room": "bad room", "ref": "a"}),
        json!({"type": "leave", "room": "-bad", "ref": "b"}),
        json!({"type": "say", "room": "b@d", "text": "hi", "ref": "c"}),
        json!({"type": "typing", "room": "", "ref": "d"}),
        json!({"type": "join", "room": "x".repeat(65), "ref": "e"}),
    ] {
        let reference = request["ref"].as_str().unwrap().to_owned();
        client.send_json(request).await;
        assert_eq!(
            client.expect_error().await,
            (ErrorCode::InvalidRoom, Some(reference))
        );
    }
}

#[actix_web::test]
async fn room_requests_outside_a_joined_room_are_not_joined() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    for request in [
        json!({"type": "say", "room": "elsewhere", "text": "hi", "ref": "s"}),
        json!({"type": "typing", "room": "elsewhere", "ref": "t"}),
        json!({"type": "leave", "room": "elsewhere", "ref": "l"}),
    ] {
        let reference = request["ref"].as_str().unwrap().to_owned();
        client.send_json(request).await;
        assert_eq!(
            client.expect_error().await,
            (ErrorCode::NotJoined, Some(reference))
        );
    }
    assert!(
        app.history("elsewhere", "").await.is_empty(),
        "nothing was stored"
    );
}

#[actix_web::test]
async fn checks_run_in_the_order_of_rule_7() {
    let app = spawn_app().await;
    let mut client = app.connect("ana").await;
    // Malformed and not joined: the shape is checked first.
    client
        .send_json(json!({"type": "say", "room": "elsewhere", "ref": "1"}))
        .await;
    assert_eq!(
        client.expect_error().await,
        (ErrorCode::BadRequest, Some("1".into()))
    );
    // Invalid room and not joined: the name comes before membership.
    client
        .send_json(json!({"type": "say", "room": "NO WAY", "text": "hi", "ref": "2"}))
        .await;
    assert_eq!(
        client.expect_error().await,
        (ErrorCode::InvalidRoom, Some("2".into()))
    );
    // A valid room not joined.
    client
        .send_json(json!({"type": "say", "room": "elsewhere", "text": "hi", "ref": "3"}))
        .await;
    assert_eq!(
        client.expect_error().await,
        (ErrorCode::NotJoined, Some("3".into()))
    );
}

#[actix_web::test]
async fn bad_text_is_invalid_text_and_stores_nothing() {
    let app = spawn_app().await;
    let mut client = app.member("ana", "general").await;
    for (text, reference) in [("   ".to_owned(), "blank"), ("x".repeat(4001), "long")] {
        client.say_with_ref("general", &text, reference).await;
        assert_eq!(
            client.expect_error().await,
            (ErrorCode::InvalidText, Some(reference.into()))
        );
    }
    client
        .say("general", &format!("  {}  ", "é".repeat(4000)))
        .await;
    let message = client.expect_message().await;
    assert_eq!(
        message.text.chars().count(),
        4000,
        "4000 characters pass, trimmed"
    );
    assert_eq!(app.history("general", "").await.len(), 1);
}

#[actix_web::test]
async fn bad_names_are_invalid_name_and_keep_the_old_name() {
    let app = spawn_app().await;
    let mut client = app.member("ana", "general").await;
    for name in ["", "   ", "tab\there", &"n".repeat(33)] {
        client
            .send_json(json!({"type": "nick", "name": name, "ref": "n"}))
            .await;
        assert_eq!(
            client.expect_error().await,
            (ErrorCode::InvalidName, Some("n".into()))
        );
    }
    client.say("general", "still ana").await;
    assert_eq!(client.expect_message().await.from.name, "ana");
}

#[actix_web::test]
async fn room_names_are_case_insensitive() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "General").await;
    let mut bob = app.member("bob", "GENERAL").await;
    ana.say("gEnErAl", "hola").await;
    let message = bob.expect_message().await;
    assert_eq!(message.room, "general");
    assert_eq!(ana.expect_message().await.id, message.id);
}
