//! Moderation over HTTP (docs/protocol.md, "Moderation"; rules 51 and 52):
//! kicks, bans of identities and addresses from a room or the whole server,
//! listing and lifting them, their check order, their metrics, bans that
//! outlive a restart of the binary, and all of it across two nodes on one
//! Redis.

use crate::helpers::{Client, TestApp, WAIT, spawn_app_with};
use charla_protocol::{ErrorCode, PresenceEvent, ServerMessage};
use charla_server::Config;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

const TOKEN: &str = "moderator-token";
const AUTH: &str = "Bearer moderator-token";
/// Ten minutes, in seconds: longer than any test.
const TEN_MINUTES: u64 = 600;

fn with_token(config: &mut Config) {
    config.api_token = Some(TOKEN.into());
}

fn now_millis() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// One HTTP call to `base` (`http://127.0.0.1:port`): the status and the
/// JSON answer (`null` for an empty body).
async fn call_at(
    base: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let http = awc::Client::default();
    let url = format!("{base}{path}");
    let mut request = match method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        "DELETE" => http.delete(url),
        other => panic!("no {other} here"),
    };
    if let Some(authorization) = authorization {
        request = request.insert_header(("Authorization", authorization));
    }
    let mut response = match body {
        Some(body) => request
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_string())
            .await
            .expect("the request succeeds"),
        None => request.send().await.expect("the request succeeds"),
    };
    let status = response.status().as_u16();
    let body = response.body().await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    call_at(&app.url(""), method, path, authorization, body).await
}

async fn kick(app: &TestApp, room: &str, body: Value) -> (u16, Value) {
    call(
        app,
        "POST",
        &format!("/api/rooms/{room}/kick"),
        Some(AUTH),
        Some(body),
    )
    .await
}

async fn ban(app: &TestApp, body: Value) -> Value {
    let (status, answer) = call(app, "POST", "/api/bans", Some(AUTH), Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

/// Asks for a new identity: answers its id and secret.
async fn identify(client: &mut Client) -> (String, String) {
    client.send_json(json!({"type": "identify"})).await;
    match client.recv().await {
        ServerMessage::Identity {
            id,
            secret: Some(secret),
        } => (id, secret),
        other => panic!("expected identity, got {other:?}"),
    }
}

/// Presents `secret`: answers the id.
async fn identify_with(client: &mut Client, secret: &str) -> String {
    client
        .send_json(json!({"type": "identify", "secret": secret}))
        .await;
    match client.recv().await {
        ServerMessage::Identity { id, secret: None } => id,
        other => panic!("expected identity, got {other:?}"),
    }
}

/// The next `kicked` (skipping presence events): its room, reason and
/// until.
async fn expect_kicked(client: &mut Client) -> (String, Option<String>, Option<u64>) {
    match client.recv_skipping_presence().await {
        ServerMessage::Kicked {
            room,
            reason,
            until,
        } => (room, reason, until),
        other => panic!("expected kicked, got {other:?}"),
    }
}

/// The next `presence` `leave`: whose and the count.
async fn expect_leave(client: &mut Client) -> (String, usize) {
    match client.recv().await {
        ServerMessage::Presence {
            event: PresenceEvent::Leave,
            member,
            count,
            ..
        } => (member.id, count),
        other => panic!("expected presence leave, got {other:?}"),
    }
}

/// The next error, which must be `banned` with a `ref` and an `until`:
/// answers its ref, until and message.
async fn expect_banned(client: &mut Client) -> (Option<String>, u64, String) {
    match client.recv_skipping_presence().await {
        ServerMessage::Error {
            code: ErrorCode::Banned,
            message,
            reference,
            until: Some(until),
        } => (reference, until, message),
        other => panic!("expected banned with until, got {other:?}"),
    }
}

async fn try_join(client: &mut Client, room: &str, reference: &str) {
    client
        .send_json(json!({"type": "join", "room": room, "ref": reference}))
        .await;
}

/// Connects as `name` from `address`, as a trusting proxy would report it.
async fn connect_from(app: &TestApp, name: &str, address: &str) -> Client {
    app.try_connect(&format!("?name={name}"), &[("X-Forwarded-For", address)])
        .await
        .unwrap_or_else(|status| panic!("upgrade refused with {status}"))
}

#[actix_web::test]
async fn moderation_needs_the_token() {
    let calls = [
        (
            "POST",
            "/api/rooms/general/kick",
            Some(json!({"member": "x"})),
        ),
        (
            "POST",
            "/api/bans",
            Some(json!({"address": "192.0.2.1", "seconds": 60})),
        ),
        ("GET", "/api/bans", None),
        ("DELETE", "/api/bans/0123456789abcdef", None),
    ];
    let without = spawn_app_with(|_| {}).await;
    for (method, path, body) in &calls {
        let (status, answer) = call(&without, method, path, Some(AUTH), body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
    }
    let app = spawn_app_with(with_token).await;
    for (method, path, body) in &calls {
        for authorization in [None, Some("Bearer wrong"), Some(TOKEN)] {
            let (status, answer) = call(&app, method, path, authorization, body.clone()).await;
            assert_eq!(
                (status, answer["error"].as_str()),
                (401, Some("unauthorized")),
                "{method} {path} {authorization:?}"
            );
        }
    }
    let (status, answer) = call(&app, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!((status, answer), (200, json!({"bans": []})));
}

#[actix_web::test]
async fn a_kick_removes_every_connection_of_the_member_and_tells_the_others() {
    let app = spawn_app_with(with_token).await;
    let mut ana = app.member("ana", "general").await;
    let mut tab1 = app.connect("bob").await;
    let (bob, secret) = identify(&mut tab1).await;
    let mut tab2 = app.connect("bob").await;
    assert_eq!(identify_with(&mut tab2, &secret).await, bob);
    tab1.join("general").await;
    tab1.join("other").await;
    tab2.join("general").await;
    ana.barrier().await;
    tab1.barrier().await;

    let (status, answer) = kick(
        &app,
        "General",
        json!({"member": bob, "reason": "  cool off "}),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"kicked": 2})));
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            expect_kicked(tab).await,
            ("general".to_owned(), Some("cool off".to_owned()), None)
        );
        let after = tab.barrier().await;
        assert!(
            after.is_empty(),
            "the connections leaving together are not told about each other: {after:?}"
        );
    }
    assert_eq!(expect_leave(&mut ana).await, (bob.clone(), 2));
    assert_eq!(expect_leave(&mut ana).await, (bob.clone(), 1));
    let (_, body) = app.get_json("/api/rooms").await;
    assert_eq!(
        body["rooms"],
        json!([{"name": "general", "members": 1, "last_id": 0}, {"name": "other", "members": 1, "last_id": 0}])
    );

    // Still connected, still in its other room, and free to come back.
    tab1.say("other", "still here").await;
    assert_eq!(tab1.expect_message().await.text, "still here");
    let (members, _, _) = tab1.join("general").await;
    assert_eq!(members.len(), 2);
    match ana.recv().await {
        ServerMessage::Presence {
            event: PresenceEvent::Join,
            member,
            count: 2,
            ..
        } => assert_eq!(member.id, bob),
        other => panic!("expected presence join, got {other:?}"),
    }

    // An anonymous connection is kicked by its session id; without a reason.
    let ana_id = ana.session.clone();
    let (status, answer) = kick(&app, "general", json!({"member": ana_id})).await;
    assert_eq!((status, answer), (200, json!({"kicked": 1})));
    assert_eq!(
        expect_kicked(&mut ana).await,
        ("general".to_owned(), None, None)
    );
    assert_eq!(expect_leave(&mut tab1).await, (ana_id, 1));

    // Nobody to kick is no error.
    for (room, member) in [("general", "0123456789abcdef"), ("empty", bob.as_str())] {
        let (status, answer) = kick(&app, room, json!({"member": member})).await;
        assert_eq!((status, answer), (200, json!({"kicked": 0})), "{room}");
    }
}

#[actix_web::test]
async fn a_kick_checks_its_path_and_body() {
    let app = spawn_app_with(with_token).await;
    let (status, answer) = kick(&app, "no%20way", json!({"member": "x"})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("invalid_room"))
    );
    for body in [
        json!({}),
        json!({"member": 7}),
        json!({"member": ""}),
        json!({"member": "x", "reason": " "}),
        json!({"member": "x", "reason": "x".repeat(201)}),
        json!({"member": "x", "reason": "bell\u{7}"}),
    ] {
        let (status, answer) = kick(&app, "general", body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("bad_request")),
            "{body}"
        );
    }
    let (status, _) = kick(
        &app,
        "general",
        json!({"member": "x", "reason": "x".repeat(200)}),
    )
    .await;
    assert_eq!(status, 200, "200 characters is the longest reason");
}

#[actix_web::test]
async fn a_room_ban_of_an_identity_keeps_it_out_of_that_room_only() {
    let app = spawn_app_with(with_token).await;
    let mut ana = app.member("ana", "general").await;
    let mut mallory = app.connect("mallory").await;
    let (id, secret) = identify(&mut mallory).await;
    mallory.join("general").await;
    mallory.join("other").await;
    ana.barrier().await;

    let before = now_millis();
    let banned = ban(
        &app,
        json!({"identity": id, "room": "General", "seconds": TEN_MINUTES, "reason": "spam"}),
    )
    .await;
    let until = banned["until"].as_u64().expect("until");
    assert!(
        (before + TEN_MINUTES * 1000..=now_millis() + TEN_MINUTES * 1000).contains(&until),
        "until is now plus the seconds: {banned}"
    );
    let ban_id = banned["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        banned,
        json!({"id": ban_id, "identity": id, "room": "general", "until": until, "reason": "spam"})
    );
    assert_eq!(
        expect_kicked(&mut mallory).await,
        ("general".to_owned(), Some("spam".to_owned()), Some(until))
    );
    assert_eq!(expect_leave(&mut ana).await, (id.clone(), 1));

    try_join(&mut mallory, "general", "j1").await;
    let (reference, refused_until, message) = expect_banned(&mut mallory).await;
    assert_eq!((reference.as_deref(), refused_until), (Some("j1"), until));
    assert!(
        message.starts_with("you are banned from this room until 20") && message.contains("Z"),
        "{message}"
    );
    mallory.say_with_ref("general", "let me in", "s1").await;
    let (reference, refused_until, _) = expect_banned(&mut mallory).await;
    assert_eq!((reference.as_deref(), refused_until), (Some("s1"), until));

    // Other rooms are open to it.
    mallory.say("other", "still here").await;
    assert_eq!(mallory.expect_message().await.text, "still here");
    mallory.join("third").await;

    // The ban follows the identity to another connection, not the address.
    let mut again = app.connect("mallory").await;
    identify_with(&mut again, &secret).await;
    try_join(&mut again, "general", "j2").await;
    assert_eq!(expect_banned(&mut again).await.1, until);
    let mut anonymous = app.connect("someone").await;
    anonymous.join("general").await;
    assert!(
        ana.barrier().await.iter().all(|event| !matches!(
            event,
            ServerMessage::Presence { member, .. } if member.id == id
        )),
        "the banned identity never joined again"
    );
}

#[actix_web::test]
async fn a_server_ban_of_an_address_keeps_it_out_of_every_room() {
    // In memory (bans last as long as the process), behind one trusted
    // proxy so that clients can come from several addresses.
    let app = spawn_app_with(|config| {
        with_token(config);
        config.database = ":memory:".into();
        config.trusted_proxies = 1;
    })
    .await;
    let mut mallory = connect_from(&app, "mallory", "203.0.113.7").await;
    mallory.join("general").await;
    mallory.join("other").await;
    let mut ana = connect_from(&app, "ana", "198.51.100.1").await;
    ana.join("general").await;
    let mut eve = connect_from(&app, "eve", "2001:db8:1:2::1").await;
    eve.join("general").await;
    ana.barrier().await;

    let banned = ban(
        &app,
        json!({"address": "203.0.113.7", "seconds": TEN_MINUTES}),
    )
    .await;
    let until = banned["until"].as_u64().unwrap();
    assert_eq!(
        banned,
        json!({"id": banned["id"], "address": "203.0.113.7", "until": until})
    );
    let mut rooms = vec![
        expect_kicked(&mut mallory).await,
        expect_kicked(&mut mallory).await,
    ];
    rooms.sort();
    assert_eq!(
        rooms,
        [
            ("general".to_owned(), None, Some(until)),
            ("other".to_owned(), None, Some(until))
        ]
    );
    assert_eq!(expect_leave(&mut ana).await, (mallory.session.clone(), 2));

    for room in ["general", "other", "brand-new"] {
        try_join(&mut mallory, room, room).await;
        let (reference, refused_until, message) = expect_banned(&mut mallory).await;
        assert_eq!((reference.as_deref(), refused_until), (Some(room), until));
        assert!(message.contains("this server"), "{message}");
    }
    // A new connection from that address opens, but gets in nowhere.
    let mut again = connect_from(&app, "mallory2", "203.0.113.7").await;
    try_join(&mut again, "general", "j").await;
    assert_eq!(expect_banned(&mut again).await.1, until);
    ana.say("general", "unaffected").await;
    assert_eq!(ana.expect_message().await.text, "unaffected");
    assert_eq!(eve.expect_message().await.text, "unaffected");

    // IPv6 counts by its /64, as connections are counted (rule 46).
    let banned = ban(
        &app,
        json!({"address": "2001:db8:1:2::ffff", "room": "general", "seconds": 60}),
    )
    .await;
    assert_eq!(banned["address"], "2001:db8:1:2::/64");
    assert_eq!(expect_kicked(&mut eve).await.0, "general");
    let mut neighbour = connect_from(&app, "eve2", "2001:db8:1:2:aaaa::2").await;
    try_join(&mut neighbour, "general", "n").await;
    expect_banned(&mut neighbour).await;
    let mut elsewhere = connect_from(&app, "eve3", "2001:db8:1:3::1").await;
    elsewhere.join("general").await;
}

#[actix_web::test]
async fn bans_are_listed_and_lifted() {
    let app = spawn_app_with(with_token).await;
    // The test client's address, as the server sees it without proxies.
    let by_address = ban(
        &app,
        json!({"address": "127.0.0.1", "room": "general", "seconds": TEN_MINUTES, "reason": "cool off"}),
    )
    .await;
    let by_identity = ban(&app, json!({"identity": "0123456789abcdef", "seconds": 60})).await;
    let (status, listed) = call(&app, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!(
        (status, listed),
        (200, json!({"bans": [by_identity, by_address]})),
        "soonest to end first"
    );
    assert_ne!(by_identity["id"], by_address["id"]);

    let mut ana = app.connect("ana").await;
    try_join(&mut ana, "general", "j1").await;
    let (_, _, message) = expect_banned(&mut ana).await;
    assert!(message.ends_with(": cool off"), "{message}");
    ana.join("other").await;

    let path = format!("/api/bans/{}", by_address["id"].as_str().unwrap());
    let (status, answer) = call(&app, "DELETE", &path, Some(AUTH), None).await;
    assert_eq!((status, answer), (204, Value::Null));
    let (_, listed) = call(&app, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!(listed, json!({"bans": [by_identity]}));
    let (status, answer) = call(&app, "DELETE", &path, Some(AUTH), None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_ban"))
    );
    ana.join("general").await;
}

#[actix_web::test]
async fn a_ban_checks_its_body() {
    let app = spawn_app_with(with_token).await;
    for body in [
        json!({"seconds": 60}),
        json!({"identity": "0123456789abcdef", "address": "127.0.0.1", "seconds": 60}),
        json!({"identity": "0123456789abcdef"}),
        json!({"identity": "0123456789abcdef", "seconds": 0}),
        json!({"identity": "0123456789abcdef", "seconds": 31_536_001}),
        json!({"identity": "0123456789abcdef", "seconds": 1.5}),
        json!({"identity": "guest", "seconds": 60}),
        json!({"address": "localhost", "seconds": 60}),
        json!({"address": "127.0.0.1", "room": "no way", "seconds": 60}),
        json!({"address": "127.0.0.1", "seconds": 60, "reason": "x".repeat(201)}),
    ] {
        let (status, answer) =
            call(&app, "POST", "/api/bans", Some(AUTH), Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("bad_request")),
            "{body}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, listed) = call(&app, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!(listed, json!({"bans": []}), "a refused ban is not kept");
    let longest = ban(
        &app,
        json!({"identity": "0123456789abcdef", "seconds": 31_536_000, "reason": "x".repeat(200)}),
    )
    .await;
    assert!(longest["until"].as_u64().unwrap() > now_millis() + 31_535_000_000);
}

#[actix_web::test]
async fn the_ban_check_comes_after_the_request_checks_and_before_the_rooms() {
    let app = spawn_app_with(|config| {
        with_token(config);
        config.new_rooms_per_minute = 1;
        config.msg_burst = 1;
        config.msg_rate = 0.001;
    })
    .await;
    let mut mallory = app.connect("mallory").await;
    let (id, _) = identify(&mut mallory).await;
    let banned = ban(&app, json!({"identity": id, "seconds": TEN_MINUTES})).await;

    // What the connection checks itself comes first.
    mallory
        .send_json(json!({"type": "join", "room": "no way", "ref": "r1"}))
        .await;
    assert_eq!(
        mallory.expect_error().await,
        (ErrorCode::InvalidRoom, Some("r1".to_owned()))
    );
    mallory
        .send_json(json!({"type": "say", "room": "a", "text": " ", "ref": "r2"}))
        .await;
    assert_eq!(
        mallory.expect_error().await,
        (ErrorCode::InvalidText, Some("r2".to_owned()))
    );
    // Banned joins spend no new-room token (one a minute here).
    for room in ["a", "b", "c"] {
        try_join(&mut mallory, room, room).await;
        expect_banned(&mut mallory).await;
    }
    // A banned say takes a flood-control token, as one refused as
    // `not_joined` does (rule 28): the second finds none.
    mallory.say_with_ref("a", "hi", "s1").await;
    expect_banned(&mut mallory).await;
    mallory.say_with_ref("a", "hi", "s2").await;
    assert_eq!(
        mallory.expect_error().await,
        (ErrorCode::RateLimited, Some("s2".to_owned()))
    );

    let path = format!("/api/bans/{}", banned["id"].as_str().unwrap());
    assert_eq!(call(&app, "DELETE", &path, Some(AUTH), None).await.0, 204);
    mallory.join("d").await;
}

#[actix_web::test]
async fn metrics_count_moderation_and_banned_refusals() {
    let app = spawn_app_with(with_token).await;
    let mut ana = app.member("ana", "general").await;
    let ana_id = ana.session.clone();
    assert_eq!(
        kick(&app, "general", json!({"member": ana_id})).await.1,
        json!({"kicked": 1})
    );
    expect_kicked(&mut ana).await;
    assert_eq!(
        kick(&app, "general", json!({"member": ana_id})).await.1,
        json!({"kicked": 0}),
        "a kick of nobody takes no effect and is not counted"
    );
    let banned = ban(&app, json!({"identity": ana_id, "seconds": TEN_MINUTES})).await;
    try_join(&mut ana, "general", "j").await;
    expect_banned(&mut ana).await;
    ana.say_with_ref("general", "hi", "s").await;
    expect_banned(&mut ana).await;
    let path = format!("/api/bans/{}", banned["id"].as_str().unwrap());
    assert_eq!(call(&app, "DELETE", &path, Some(AUTH), None).await.0, 204);
    assert_eq!(call(&app, "DELETE", &path, Some(AUTH), None).await.0, 404);

    let text = app.get_text("/metrics").await;
    for line in [
        "charla_moderation_total{action=\"kick\"} 1",
        "charla_moderation_total{action=\"ban\"} 1",
        "charla_moderation_total{action=\"unban\"} 1",
        "charla_banned_refusals_total 2",
        "charla_errors_total{code=\"banned\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

/// The `charla` binary on a database file, killed when dropped.
struct Binary {
    child: Child,
    base: String,
}

impl Binary {
    /// Starts the binary on `database` and waits for the line saying where
    /// it listens.
    fn start(database: &std::path::Path) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_charla"))
            .env_clear()
            .env("PORT", "0")
            .env("CHARLA_HOST", "127.0.0.1")
            .env("CHARLA_DATABASE", database)
            .env("CHARLA_API_TOKEN", TOKEN)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("its output is piped");
        let (found, listening) = mpsc::channel();
        // Reads every line, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if event["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("charla is listening"))
                    && let Some(port) = event["port"].as_u64()
                {
                    let _ = found.send(port);
                }
            }
        });
        let port = listening
            .recv_timeout(WAIT)
            .expect("the binary says where it listens");
        Binary {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Kills it at once (SIGKILL): what was answered must already be on disk.
    fn kill(mut self) {
        self.child.kill().expect("the binary is killed");
        self.child.wait().expect("the binary is reaped");
    }

    fn ws(&self) -> String {
        format!("{}/ws?name=mallory", self.base.replacen("http", "ws", 1))
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn a_ban_outlives_a_restart_of_the_binary() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let database = data.path().join("charla.db");

    let server = Binary::start(&database);
    let mut mallory = Client::connect_url(&server.ws()).await;
    let (id, secret) = identify(&mut mallory).await;
    let post = |body: Value| {
        let base = server.base.clone();
        async move { call_at(&base, "POST", "/api/bans", Some(AUTH), Some(body)).await }
    };
    let (status, by_identity) = post(json!({"identity": id, "seconds": TEN_MINUTES})).await;
    assert_eq!(status, 201, "{by_identity}");
    let (status, by_address) =
        post(json!({"address": "127.0.0.1", "room": "quiet", "seconds": TEN_MINUTES})).await;
    assert_eq!(status, 201, "{by_address}");
    // Killed right after the answers: they came once the rows were committed.
    server.kill();

    let server = Binary::start(&database);
    let (status, listed) = call_at(&server.base, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!(
        (status, listed),
        (200, json!({"bans": [by_identity, by_address]}))
    );
    let mut mallory = Client::connect_url(&server.ws()).await;
    identify_with(&mut mallory, &secret).await;
    try_join(&mut mallory, "general", "j").await;
    assert_eq!(
        expect_banned(&mut mallory).await.1,
        by_identity["until"].as_u64().unwrap()
    );
    let mut anonymous = Client::connect_url(&server.ws()).await;
    try_join(&mut anonymous, "quiet", "q").await;
    expect_banned(&mut anonymous).await;
    anonymous.join("general").await;

    let path = format!("/api/bans/{}", by_identity["id"].as_str().unwrap());
    let (status, _) = call_at(&server.base, "DELETE", &path, Some(AUTH), None).await;
    assert_eq!(status, 204);
    server.kill();

    let server = Binary::start(&database);
    let (_, listed) = call_at(&server.base, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!(listed, json!({"bans": [by_address]}), "the lift was stored");
    let mut mallory = Client::connect_url(&server.ws()).await;
    identify_with(&mut mallory, &secret).await;
    mallory.join("general").await;
}

/// A `redis-server` on a free loopback port, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one and waits until it accepts connections; `None` when
    /// `redis-server` is not installed.
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take().expect("its output is piped");
        let (ready, is_ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = ready.send(());
                }
            }
        });
        is_ready
            .recv_timeout(WAIT)
            .expect("redis-server gets ready");
        Some(Redis { child, port })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two nodes on `redis`, with the token.
async fn two_nodes(redis: &Redis) -> (TestApp, TestApp) {
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let node = || {
        let url = url.clone();
        spawn_app_with(move |config| {
            with_token(config);
            config.redis_url = Some(url.as_str().into());
        })
    };
    (node().await, node().await)
}

#[actix_web::test]
async fn with_redis_a_ban_or_kick_through_one_node_holds_on_every_node() {
    let Some(redis) = Redis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    let mut ana = b.connect("ana").await;
    let (id, secret) = identify(&mut ana).await;
    ana.join("general").await;
    let mut bo = a.member("bo", "general").await;

    // A ban through node A removes ana from node B, and B refuses her.
    let imposed = ban(
        &a,
        json!({"identity": id, "room": "general", "seconds": TEN_MINUTES, "reason": "spam"}),
    )
    .await;
    let (room, reason, until) = expect_kicked(&mut ana).await;
    assert_eq!(
        (room.as_str(), reason.as_deref()),
        ("general", Some("spam"))
    );
    assert_eq!(until, imposed["until"].as_u64());
    assert_eq!(
        expect_leave(&mut bo).await.0,
        id,
        "node A's members see her go"
    );
    try_join(&mut ana, "general", "j1").await;
    assert_eq!(expect_banned(&mut ana).await.0.as_deref(), Some("j1"));
    let (status, listed) = call(&b, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!((status, listed), (200, json!({"bans": [imposed.clone()]})));

    // A kick through node B removes bo from node A.
    let (status, answer) = kick(
        &b,
        "general",
        json!({"member": bo.session, "reason": "cool off"}),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"kicked": 1})));
    let (_, reason, until) = expect_kicked(&mut bo).await;
    assert_eq!((reason.as_deref(), until), (Some("cool off"), None));

    // The ban is Redis's: a node started later enforces it at once.
    let c = two_nodes_third(&redis).await;
    let mut again = c.connect("ana").await;
    identify_with(&mut again, &secret).await;
    try_join(&mut again, "general", "j2").await;
    assert_eq!(expect_banned(&mut again).await.0.as_deref(), Some("j2"));

    // Lifted through node A, it is lifted on node C too.
    let path = format!("/api/bans/{}", imposed["id"].as_str().unwrap());
    assert_eq!(call(&a, "DELETE", &path, Some(AUTH), None).await.0, 204);
    assert_eq!(call(&c, "DELETE", &path, Some(AUTH), None).await.0, 404);
    let (_, listed) = call(&c, "GET", "/api/bans", Some(AUTH), None).await;
    assert_eq!(listed, json!({"bans": []}));
    again.join("general").await;
}

/// One more node on `redis`.
async fn two_nodes_third(redis: &Redis) -> TestApp {
    let url = format!("redis://127.0.0.1:{}", redis.port);
    spawn_app_with(move |config| {
        with_token(config);
        config.redis_url = Some(url.as_str().into());
    })
    .await
}
