//! People, not sockets (docs/protocol.md, rules 49 and 50): stable
//! identities, and edits and deletes of one's own messages, over `/ws` and
//! the HTTP API. What survives a restart of the binary is tested in
//! tests/deploy/test_people.py.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use charla_protocol::{ChatMessage, ErrorCode, ServerMessage};
use serde_json::{Value, json};

/// A `DELETE` of a message through the moderation API.
async fn moderator_delete(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.http().delete(app.url(path));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.expect("DELETE succeeds");
    let body = response.body().await.expect("a body");
    (
        response.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn by_id(history: &[ChatMessage], id: u64) -> &ChatMessage {
    history
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("id {id} is in {history:?}"))
}

#[actix_web::test]
async fn an_identity_is_the_same_member_on_every_connection_that_presents_its_secret() {
    let app = spawn_app().await;
    let mut first = app.connect("ana").await;
    let session = first.session.clone();
    let (id, secret) = first.identify(None).await;
    let secret = secret.expect("a new identity comes with its secret");
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(id.len(), 16);
    assert_ne!(id, session, "the identity replaces the connection's id");
    first.join("general").await;
    first.say("general", "hola").await;
    assert_eq!(first.expect_message().await.from.id, id);
    drop(first);

    let mut again = app.connect("ana").await;
    let (same, issued) = again.identify(Some(&secret)).await;
    assert_eq!(same, id, "the same secret is the same member");
    assert_eq!(issued, None, "a presented secret is never echoed");
    let (members, history, _) = again.join("general").await;
    assert_eq!(members[0].id, id);
    assert_eq!(history[0].from.id, id, "its past messages are its own");

    let mut other = app.connect("ana").await;
    let (stranger, _) = other.identify(None).await;
    assert_ne!(stranger, id, "another identity, although named alike");
}

#[actix_web::test]
async fn identify_comes_once_and_before_any_join() {
    let app = spawn_app().await;
    let mut late = app.member("ana", "general").await;
    late.send_json(json!({"type": "identify", "ref": "i1"}))
        .await;
    assert_eq!(
        late.expect_error().await,
        (ErrorCode::IdentityLocked, Some("i1".into()))
    );
    let mut twice = app.connect("bo").await;
    twice.identify(None).await;
    twice
        .send_json(json!({"type": "identify", "ref": "i2"}))
        .await;
    assert_eq!(
        twice.expect_error().await,
        (ErrorCode::IdentityLocked, Some("i2".into()))
    );
    for secret in ["short", &"A".repeat(64), &"g".repeat(64)] {
        twice
            .send_json(json!({"type": "identify", "secret": secret, "ref": "i3"}))
            .await;
        assert_eq!(
            twice.expect_error().await,
            (ErrorCode::BadRequest, Some("i3".into())),
            "{secret}"
        );
    }
}

#[actix_web::test]
async fn an_edit_reaches_every_member_and_history_shows_the_new_text() {
    let app = spawn_app().await;
    let mut ana = app.connect("ana").await;
    ana.identify(None).await;
    ana.join("general").await;
    let mut bo = app.member("bo", "general").await;
    ana.say_with_ref("general", "helo", "s1").await;
    let id = ana.expect_ack("s1").await;
    ana.expect_message().await;
    bo.expect_message().await;

    ana.send_json(
        json!({"type": "edit", "room": "general", "id": id, "text": " hello ", "ref": "e1"}),
    )
    .await;
    let entry_id = ana.expect_ack("e1").await;
    assert_eq!(entry_id, id + 1, "an edit is the room's next entry");
    for client in [&mut ana, &mut bo] {
        let entry = client.expect_message().await;
        assert_eq!(entry.id, entry_id);
        assert_eq!(entry.edits, Some(id));
        assert_eq!(entry.text, "hello", "edited text is trimmed like a say");
    }
    // A resend of the edit's ref is acknowledged with the same id, once.
    ana.send_json(
        json!({"type": "edit", "room": "general", "id": id, "text": "again", "ref": "e1"}),
    )
    .await;
    assert_eq!(ana.expect_ack("e1").await, entry_id);
    assert!(
        ana.barrier().await.is_empty(),
        "a resent edit is not broadcast again"
    );

    let mut late = app.connect("cy").await;
    let (_, history, _) = late.join("general").await;
    let edited = by_id(&history, id);
    assert_eq!(edited.text, "hello");
    assert_eq!(edited.edited, Some(by_id(&history, entry_id).at));
    let (_, resumed, complete) = late.join_after("general", id).await;
    assert!(complete);
    assert_eq!(resumed.len(), 1, "a resume gets the edit entry");
    assert_eq!(resumed[0].edits, Some(id));
    let page = app.history("general", "").await;
    assert_eq!(by_id(&page, id).text, "hello");
    assert_eq!(by_id(&page, id).edited, edited.edited);
    assert_eq!(by_id(&page, entry_id).edits, Some(id));
}

#[actix_web::test]
async fn a_delete_leaves_a_tombstone_and_no_copy_of_the_words() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bo = app.member("bo", "general").await;
    ana.say_with_ref("general", "my phone is 555", "s1").await;
    let id = ana.expect_ack("s1").await;
    ana.expect_message().await;
    ana.send_json(json!({"type": "edit", "room": "general", "id": id, "text": "my phone is 556", "ref": "e1"}))
        .await;
    let edit_id = ana.expect_ack("e1").await;
    ana.expect_message().await;
    ana.send_json(json!({"type": "delete", "room": "general", "id": id, "ref": "d1"}))
        .await;
    let delete_id = ana.expect_ack("d1").await;
    let entry = ana.expect_message().await;
    assert_eq!(
        (entry.id, entry.deletes, entry.text.as_str()),
        (delete_id, Some(id), "")
    );
    for _ in 0..3 {
        bo.expect_message().await;
    }

    let (_, history, _) = bo.join("general").await;
    for listing in [history, app.history("general", "").await] {
        let deleted = by_id(&listing, id);
        assert!(deleted.deleted);
        assert_eq!(deleted.text, "");
        assert_eq!(
            by_id(&listing, edit_id).text,
            "",
            "the edit's text goes too"
        );
        assert!(
            listing
                .iter()
                .all(|m| !m.text.contains("555") && !m.text.contains("556"))
        );
    }
    // A deleted message can be neither edited nor deleted again.
    for request in [
        json!({"type": "edit", "room": "general", "id": id, "text": "x", "ref": "e2"}),
        json!({"type": "delete", "room": "general", "id": id, "ref": "d2"}),
    ] {
        ana.send_json(request).await;
        assert_eq!(ana.expect_error().await.0, ErrorCode::UnknownMessage);
    }
}

#[actix_web::test]
async fn only_the_author_may_change_a_message_and_only_a_message() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "general").await;
    let mut bo = app.member("bo", "general").await;
    ana.say_with_ref("general", "mine", "s1").await;
    let id = ana.expect_ack("s1").await;
    ana.expect_message().await;
    bo.expect_message().await;
    let cases = [
        (
            json!({"type": "edit", "room": "general", "id": id, "text": "yours", "ref": "r1"}),
            ErrorCode::NotAuthor,
        ),
        (
            json!({"type": "delete", "room": "general", "id": id, "ref": "r2"}),
            ErrorCode::NotAuthor,
        ),
        (
            json!({"type": "delete", "room": "general", "id": id + 5, "ref": "r3"}),
            ErrorCode::UnknownMessage,
        ),
        (
            json!({"type": "delete", "room": "other", "id": id, "ref": "r4"}),
            ErrorCode::NotJoined,
        ),
        (
            json!({"type": "edit", "room": "general", "id": id, "text": "  ", "ref": "r5"}),
            ErrorCode::InvalidText,
        ),
        (
            json!({"type": "edit", "room": "general", "id": "1", "text": "x", "ref": "r6"}),
            ErrorCode::BadRequest,
        ),
    ];
    for (request, expected) in cases {
        bo.send_json(request.clone()).await;
        let (code, reference) = bo.expect_error().await;
        assert_eq!(code, expected, "{request}");
        assert_eq!(reference.as_deref(), request["ref"].as_str());
    }
    // An entry is not a message: an edit of an edit is unknown.
    ana.send_json(
        json!({"type": "edit", "room": "general", "id": id, "text": "mine!", "ref": "e1"}),
    )
    .await;
    let entry = ana.expect_ack("e1").await;
    ana.expect_message().await;
    ana.send_json(
        json!({"type": "edit", "room": "general", "id": entry, "text": "x", "ref": "e2"}),
    )
    .await;
    assert_eq!(ana.expect_error().await.0, ErrorCode::UnknownMessage);
    // Nothing refused was stored.
    let history = app.history("general", "").await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(by_id(&history, id).text, "mine!");
}

#[actix_web::test]
async fn a_moderator_deletes_any_message_with_the_token_only() {
    let app = spawn_app_with(|config| config.api_token = Some("s3cret".into())).await;
    let mut ana = app.member("ana", "general").await;
    ana.say_with_ref("general", "spam spam", "s1").await;
    let id = ana.expect_ack("s1").await;
    ana.expect_message().await;
    let path = format!("/api/rooms/general/messages/{id}");
    assert_eq!(moderator_delete(&app, &path, None).await.0, 401);
    assert_eq!(moderator_delete(&app, &path, Some("wrong")).await.0, 401);
    let (status, body) = moderator_delete(&app, &path, Some("s3cret")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id + 1);
    let entry = ana.expect_message().await;
    assert_eq!(entry.deletes, Some(id));
    assert_eq!(
        (entry.from.id.as_str(), entry.from.name.as_str()),
        ("api", "moderator")
    );
    let (status, body) = moderator_delete(&app, &path, Some("s3cret")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_message"))
    );
    let missing = "/api/rooms/general/messages/999";
    assert_eq!(moderator_delete(&app, missing, Some("s3cret")).await.0, 404);
    let (_, metrics) = app.get("/metrics").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(r#"charla_moderation_total{action="delete"} 1"#),
        "{metrics}"
    );

    let closed = spawn_app().await;
    assert_eq!(
        moderator_delete(&closed, &path, Some("s3cret")).await.0,
        403
    );
}

#[actix_web::test]
async fn an_anonymous_connection_edits_its_own_messages_while_it_lasts() {
    let app = spawn_app().await;
    let mut bot = app.member("bot", "general").await;
    bot.say_with_ref("general", "build 41 failed", "s1").await;
    let id = bot.expect_ack("s1").await;
    bot.expect_message().await;
    bot.send_json(json!({"type": "edit", "room": "general", "id": id, "text": "build 41 passed", "ref": "e1"}))
        .await;
    bot.expect_ack("e1").await;
    match bot.recv().await {
        ServerMessage::Message(entry) => assert_eq!(entry.edits, Some(id)),
        other => panic!("expected the edit, got {other:?}"),
    }
}
