//! The JSON HTTP API (docs/protocol.md, "HTTP"): `/api/rooms` (rule 23),
//! history pages (rule 13), posting (rule 14), `/healthz` and `/metrics`.

use crate::helpers::{TestApp, burst_friendly, spawn_app, spawn_app_with};
use charla_protocol::api::RoomList;
use charla_protocol::{ChatMessage, RoomSummary};
use serde_json::{Value, json};

fn ids(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

async fn post(app: &TestApp, room: &str, authorization: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = app
        .http()
        .post(app.url(&format!("/api/rooms/{room}/messages")))
        .insert_header(("Content-Type", "application/json"));
    if let Some(authorization) = authorization {
        request = request.insert_header(("Authorization", authorization));
    }
    let mut response = request
        .send_body(body.to_owned())
        .await
        .expect("POST succeeds");
    let status = response.status().as_u16();
    let body = response.body().await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn api_rooms_lists_rooms_with_members_most_first_then_by_name() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "zeta").await;
    ana.say("zeta", "one").await;
    let _bob = app.member("bob", "zeta").await;
    let _carol = app.member("carol", "beta").await;
    let _dan = app.member("dan", "alpha").await;
    let mut eve = app.member("eve", "gone").await;
    eve.send_json(json!({"type": "leave", "room": "gone"}))
        .await;
    eve.recv().await;
    ana.barrier().await;
    let (status, body) = app.get_json("/api/rooms").await;
    assert_eq!(status, 200);
    let list: RoomList = serde_json::from_value(body).unwrap();
    assert_eq!(
        list.rooms,
        [
            RoomSummary {
                name: "zeta".into(),
                members: 2,
                last_id: 1
            },
            RoomSummary {
                name: "alpha".into(),
                members: 1,
                last_id: 0
            },
            RoomSummary {
                name: "beta".into(),
                members: 1,
                last_id: 0
            },
        ]
    );
}

#[actix_web::test]
async fn history_pages_follow_rule_13() {
    let app = spawn_app_with(burst_friendly).await;
    let mut ana = app.member("ana", "general").await;
    for n in 1..=300 {
        ana.say("general", &format!("m{n}")).await;
    }
    ana.barrier().await;
    let newest = app.history("general", "").await;
    assert_eq!(
        ids(&newest),
        (251..=300).collect::<Vec<_>>(),
        "default limit 50, newest"
    );
    assert_eq!(
        ids(&app.history("general", "?limit=3").await),
        [298, 299, 300]
    );
    assert_eq!(
        ids(&app.history("general", "?before=10&limit=3").await),
        [7, 8, 9]
    );
    assert_eq!(
        ids(&app.history("general", "?after=10&limit=3").await),
        [11, 12, 13]
    );
    assert_eq!(
        ids(&app.history("general", "?after=10&before=14").await),
        [11, 12, 13]
    );
    assert_eq!(
        app.history("general", "?limit=1000").await.len(),
        200,
        "at most 200"
    );
    assert!(app.history("general", "?after=300").await.is_empty());
    assert_eq!(
        app.history("General", "?limit=1").await[0].room,
        "general",
        "paths are lowercased"
    );
    assert!(
        app.history("never-used", "").await.is_empty(),
        "a valid empty room is 200 []"
    );
    let (status, body) = app.get_json("/api/rooms/general/messages?after=ten").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    let (status, body) = app.get_json("/api/rooms/no%20way/messages").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("invalid_room"))
    );
}

#[actix_web::test]
async fn posting_without_a_configured_token_is_forbidden() {
    let app = spawn_app().await;
    let (status, _) = post(
        &app,
        "general",
        Some("Bearer anything"),
        r#"{"from":"bot","text":"hi"}"#,
    )
    .await;
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn posting_needs_exactly_the_bearer_token() {
    let app = spawn_app_with(|c| c.api_token = Some("s3cret".into())).await;
    let body = r#"{"from":"bot","text":"hi"}"#;
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("bearer s3cret"),
        Some("s3cret"),
        Some("Bearer  s3cret"),
    ] {
        let (status, _) = post(&app, "general", authorization, body).await;
        assert_eq!(status, 401, "{authorization:?}");
    }
    assert!(app.history("general", "").await.is_empty());
}

#[actix_web::test]
async fn posting_validates_the_body() {
    let app = spawn_app_with(|c| c.api_token = Some("s3cret".into())).await;
    let auth = Some("Bearer s3cret");
    for body in [
        "not json",
        "{}",
        r#"{"from":"bot"}"#,
        r#"{"from":"bot","text":5}"#,
    ] {
        let (status, reply) = post(&app, "general", auth, body).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (400, Some("bad_request")),
            "{body}"
        );
    }
    let (status, reply) = post(&app, "general", auth, r#"{"from":"  ","text":"hi"}"#).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("invalid_name"))
    );
    let long = json!({"from": "bot", "text": "x".repeat(4001)}).to_string();
    let (status, reply) = post(&app, "general", auth, &long).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("invalid_text"))
    );
    let (status, _) = post(&app, "bad%20room", auth, r#"{"from":"bot","text":"hi"}"#).await;
    assert_eq!(status, 404);
    assert!(app.history("general", "").await.is_empty());
}

#[actix_web::test]
async fn a_posted_message_continues_the_sequence_and_is_broadcast() {
    let app = spawn_app_with(|c| c.api_token = Some("s3cret".into())).await;
    let mut ana = app.member("ana", "general").await;
    ana.say("general", "from ws").await;
    assert_eq!(ana.expect_message().await.id, 1);
    let (status, reply) = post(
        &app,
        "GENERAL",
        Some("Bearer s3cret"),
        r#"{"from":" deploy-bot ","text":" shipped "}"#,
    )
    .await;
    assert_eq!((status, reply), (201, json!({"id": 2})));
    let message = ana.expect_message().await;
    assert_eq!((message.id, message.text.as_str()), (2, "shipped"));
    assert_eq!(
        (message.from.id.as_str(), message.from.name.as_str()),
        ("api", "deploy-bot")
    );
}

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    assert_eq!(
        app.get_json("/healthz").await,
        (200, json!({"status": "ok"}))
    );
}

#[actix_web::test]
async fn metrics_count_connections_rooms_and_messages() {
    let app = spawn_app().await;
    let mut ana = app.member("ana", "one").await;
    let _bob = app.member("bob", "two").await;
    ana.say("one", "hi").await;
    ana.expect_message().await;
    ana.say("nowhere", "hi").await;
    ana.expect_error().await;
    let response = app.http().get(app.url("/metrics")).send().await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = app.get_text("/metrics").await;
    for line in [
        "charla_connections 2",
        "charla_rooms 2",
        "charla_messages_total 1",
        "charla_deliveries_total 1",
        "charla_errors_total{code=\"not_joined\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("charla_fanout_seconds_bucket"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
}
