//! A public deployment against one hostile client: the byte budget of a
//! connection and `joined` pages (rule 43), the request budget and the
//! bound on requests waiting at the registry (rule 44), new rooms per
//! address (rule 45), connections per address and trusted proxies (rule
//! 46), names that could reorder or hide text (rule 2), and resumes under
//! random disconnects.

use crate::helpers::{Client, Event, TestApp, burst_friendly, spawn_app_with};
use charla_protocol::{ChatMessage, ErrorCode, ServerMessage};
use futures_util::future::join_all;
use serde_json::json;
use std::time::{Duration, Instant};

/// The longest a member may wait for its own echo while an attack runs.
const ECHO_BOUND: Duration = Duration::from_millis(200);

/// Resident memory of this process (the server runs in it), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib * 1024
}

/// The value of one counter in `/metrics`.
async fn counter(app: &TestApp, name: &str) -> u64 {
    let metrics = app.get_text("/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Says `text` in `room` and waits for the echo; answers the round trip.
async fn echo_time(client: &mut Client, room: &str, text: &str) -> Duration {
    let start = Instant::now();
    client.say(room, text).await;
    let message = client.expect_message().await;
    assert_eq!(message.text, text);
    start.elapsed()
}

#[actix_web::test]
async fn a_reader_that_never_reads_cannot_make_the_server_hold_its_history_again_and_again() {
    // In memory: the bystander's echo then waits on nothing but the rooms
    // (the SQLite store would be filing the 16 MB written just before).
    let app = spawn_app_with(|c| {
        c.database = ":memory:".into();
        c.msg_rate = 0.0;
        c.history = 1000;
    })
    .await;
    // 1,000 messages of 4,000 emoji (16 KB each, 16 MB in all).
    let mut filler = app.member("filler", "big").await;
    let text = "😀".repeat(4000);
    for _ in 0..1000 {
        filler.say("big", &text).await;
        filler.expect_message().await;
    }
    drop(filler);
    let mut bystander = app.member("bystander", "quiet").await;
    let before = rss_bytes();

    let mut attacker = app.connect_small_buffer("attacker").await;
    for n in 0..300 {
        attacker
            .send_json(json!({"type": "join", "room": "big", "after": 0, "ref": format!("j{n}")}))
            .await;
    }
    // While the server deals with it, the bystander is served as usual.
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        slowest = slowest.max(echo_time(&mut bystander, "quiet", &format!("still here {n}")).await);
    }
    // The attacker is closed as too slow once its queue holds its byte
    // budget: the server does not keep building `joined` for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&app, "charla_slow_consumers_total").await == 0 {
        assert!(Instant::now() < deadline, "the attacker was never closed");
        slowest = slowest.max(echo_time(&mut bystander, "quiet", "waiting").await);
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the server held {} MiB for one client",
        grown >> 20
    );
    assert!(
        slowest < ECHO_BOUND,
        "a member in another room waited {slowest:?} for its echo"
    );
    let (code, reason) = attacker.expect_close().await;
    assert_eq!((code, reason.as_str()), (1008, "too slow"));
}

/// Joins `room` after `after` and follows `more` with further joins until
/// the history is complete; answers every message of it, in order, and the
/// number of pages.
async fn resume_paged(
    client: &mut Client,
    room: &str,
    mut after: u64,
) -> (Vec<ChatMessage>, usize) {
    let mut history = Vec::new();
    let mut pages = 0;
    loop {
        client
            .send_json(json!({"type": "join", "room": room, "after": after}))
            .await;
        let (page, more) = loop {
            match client.recv_skipping_presence().await {
                ServerMessage::Joined { history, more, .. } => break (history, more),
                ServerMessage::Message(_) => {}
                other => panic!("expected joined, got {other:?}"),
            }
        };
        pages += 1;
        if let Some(last) = page.last() {
            after = last.id;
        }
        history.extend(page);
        if !more {
            return (history, pages);
        }
    }
}

#[actix_web::test]
async fn a_long_resume_comes_in_pages_that_fit_the_budget_and_lose_nothing() {
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.outbox_bytes = 128 << 10;
    })
    .await;
    let mut ana = app.member("ana", "long").await;
    let text = "x".repeat(1000);
    for _ in 0..200 {
        ana.say("long", &text).await;
        ana.expect_message().await;
    }
    let mut bob = app.connect("bob").await;
    let (history, pages) = resume_paged(&mut bob, "long", 0).await;
    let ids: Vec<u64> = history.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<_>>(),
        "every message once, in order"
    );
    // 128 KiB / 8 = 16 KiB a page: about 15 messages of 1 KB each.
    assert!(pages >= 12, "the history came in {pages} pages");
    // A join without `after` gets the newest messages that fit one page.
    bob.send_json(json!({"type": "join", "room": "long"})).await;
    match bob.recv_skipping_presence().await {
        ServerMessage::Joined { history, more, .. } => {
            assert!(!more);
            assert_eq!(history.last().map(|m| m.id), Some(200));
            assert!(history.len() < 50, "cut to the page: {}", history.len());
        }
        other => panic!("expected joined, got {other:?}"),
    }
}

#[actix_web::test]
async fn join_and_leave_spam_is_rate_limited_and_no_honest_member_pays_for_it() {
    let app = spawn_app_with(|c| {
        c.outbox_frames = 256;
        // The test's 102 clients share one address.
        c.max_connections_per_ip = 200;
    })
    .await;
    let mut members = Vec::new();
    for n in 0..100 {
        members.push(app.member(&format!("m{n}"), "crowd").await);
    }
    // Each member reads on its own, as a browser does, until it sees the
    // closing message.
    let readers: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            actix_web::rt::spawn(async move {
                loop {
                    match member.next_event().await {
                        Event::Message(ServerMessage::Message(m)) if m.text == "the end" => {
                            return Ok(member);
                        }
                        Event::Message(_) => {}
                        Event::Closed(frame) => return Err(frame),
                    }
                }
            })
        })
        .collect();
    let mut attacker = app.connect("attacker").await;
    let mut limited = 0;
    // In batches, reading the answers between them: the attacker reads
    // (one that does not is closed as too slow, see above).
    for batch in 0..100 {
        for n in 0..100 {
            let n = batch * 100 + n;
            attacker
                .send_json(json!({"type": "join", "room": "crowd", "ref": format!("j{n}")}))
                .await;
            attacker
                .send_json(json!({"type": "leave", "room": "crowd", "ref": format!("l{n}")}))
                .await;
        }
        // The last request's answer (an error either way: the attacker is
        // not in the room after a leave, or its budget is spent) ends the
        // batch; nothing overtakes it but refusals of the budget itself.
        loop {
            if let ServerMessage::Error {
                code, reference, ..
            } = attacker.recv().await
            {
                if code == ErrorCode::RateLimited {
                    limited += 1;
                }
                if reference.as_deref() == Some(&format!("l{}", batch * 100 + 99)) {
                    break;
                }
            }
        }
    }
    assert!(limited > 19_000, "only {limited} of 20,000 were refused");
    let mut speaker = app.member("speaker", "crowd").await;
    let start = Instant::now();
    speaker.say("crowd", "the end").await;
    for reader in join_all(readers).await {
        if let Err(frame) = reader.expect("the reader task ends") {
            panic!("an honest member was closed: {frame:?}");
        }
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < ECHO_BOUND,
        "the say took {elapsed:?} to reach 100 members"
    );
    assert_eq!(counter(&app, "charla_slow_consumers_total").await, 0);
}

#[actix_web::test]
async fn every_request_kind_costs_from_the_request_budget() {
    let app = spawn_app_with(|c| {
        c.request_burst = 6;
        c.request_rate = 0.001;
    })
    .await;
    let mut ana = app.connect("ana").await;
    // Six pass (pings, and refusals, cost the same)...
    ana.send_json(json!({"type": "ping", "ref": "p1"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Pong { .. }));
    ana.send_json(json!({"type": "nonsense", "ref": "x"})).await;
    assert_eq!(ana.expect_error().await.0, ErrorCode::BadRequest);
    ana.send_json(json!({"type": "watch_rooms"})).await;
    assert!(matches!(ana.recv().await, ServerMessage::Rooms { .. }));
    ana.send_json(json!({"type": "unwatch_rooms"})).await;
    ana.send_json(json!({"type": "typing", "room": "general", "ref": "t"}))
        .await;
    assert_eq!(ana.expect_error().await.0, ErrorCode::NotJoined);
    ana.join("general").await;
    // ...then every kind is refused, its ref echoed.
    for (request, reference) in [
        (json!({"type": "ping", "ref": "p2"}), "p2"),
        (json!({"type": "join", "room": "other", "ref": "j"}), "j"),
        (json!({"type": "leave", "room": "general", "ref": "l"}), "l"),
        (
            json!({"type": "typing", "room": "general", "ref": "t2"}),
            "t2",
        ),
        (json!({"type": "unwatch_rooms", "ref": "u"}), "u"),
        (json!({"type": "nonsense", "ref": "n"}), "n"),
    ] {
        ana.send_json(request).await;
        assert_eq!(
            ana.expect_error().await,
            (ErrorCode::RateLimited, Some(reference.into()))
        );
    }
    // `say` is priced by flood control alone, and still works.
    ana.say("general", "hello").await;
    assert_eq!(ana.expect_message().await.text, "hello");
}

#[actix_web::test]
async fn a_refused_say_is_flood_controlled_too() {
    let app = spawn_app_with(|c| {
        c.msg_burst = 3;
        c.msg_rate = 0.001;
    })
    .await;
    let mut ana = app.connect("ana").await;
    for n in 0..3 {
        ana.say_with_ref("nowhere", "hi", &format!("s{n}")).await;
        assert_eq!(ana.expect_error().await.0, ErrorCode::NotJoined);
    }
    ana.say_with_ref("nowhere", "hi", "s3").await;
    assert_eq!(
        ana.expect_error().await,
        (ErrorCode::RateLimited, Some("s3".into()))
    );
}

#[actix_web::test]
async fn room_churn_from_one_address_cannot_flush_another_rooms_history() {
    let app = spawn_app_with(|c| {
        c.database = ":memory:".into();
        c.max_rooms = 100;
        c.msg_rate = 0.0;
        c.request_rate = 0.0;
    })
    .await;
    let mut ana = app.member("ana", "keep").await;
    for n in 1..=10 {
        ana.say("keep", &format!("m{n}")).await;
        ana.expect_message().await;
    }
    ana.send_json(json!({"type": "leave", "room": "keep"}))
        .await;
    assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    let mut churner = app.connect("churner").await;
    let mut created = 0;
    let mut limited = 0;
    for n in 0..1000 {
        let room = format!("churn-{n}");
        churner
            .send_json(json!({"type": "join", "room": room}))
            .await;
        match churner.recv_skipping_presence().await {
            ServerMessage::Joined { .. } => {
                created += 1;
                churner.say(&room, "x").await;
                churner.expect_message().await;
                churner
                    .send_json(json!({"type": "leave", "room": room}))
                    .await;
                assert!(matches!(churner.recv().await, ServerMessage::Left { .. }));
            }
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // Ana's room was this address's first of its 30 a minute.
    assert_eq!(created, 29, "CHARLA_NEW_ROOMS_PER_MINUTE's burst");
    assert_eq!(limited, 971);
    let kept = app.history("keep", "").await;
    assert_eq!(kept.len(), 10, "the room kept its messages");
}

#[actix_web::test]
async fn an_address_gets_32_connections_and_the_33rd_upgrade_is_429() {
    let app = spawn_app_with(|_| {}).await;
    let mut open = Vec::new();
    for n in 0..32 {
        open.push(app.connect(&format!("c{n}")).await);
    }
    assert_eq!(app.try_connect("", &[]).await.err(), Some(429));
    // A forged header from an untrusted peer changes nothing.
    let forged = [("x-forwarded-for", "203.0.113.7")];
    assert_eq!(app.try_connect("", &forged).await.err(), Some(429));
    assert_eq!(counter(&app, "charla_address_refusals_total").await, 2);
    // A place comes back when a connection goes.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match app.try_connect("", &[]).await {
            Ok(client) => {
                open.push(client);
                break;
            }
            Err(status) => {
                assert_eq!(status, 429);
                assert!(Instant::now() < deadline, "the place never came back");
                tokio::task::yield_now().await;
            }
        }
    }
}

#[actix_web::test]
async fn the_429_says_when_to_retry_and_why() {
    let app = spawn_app_with(|c| c.max_connections_per_ip = 1).await;
    let _first = app.connect("first").await;
    let response = app
        .http()
        .get(app.ws_url(""))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "5"
    );
}

#[actix_web::test]
async fn behind_one_trusted_proxy_forwarded_addresses_are_counted_apart() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = 1;
        c.max_connections_per_ip = 2;
    })
    .await;
    let one = [("x-forwarded-for", "198.51.100.1")];
    // The proxy appends the address it saw; what the client put in front is
    // not believed.
    let two = [("x-forwarded-for", "198.51.100.1, 198.51.100.2")];
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(
            app.try_connect("", &one)
                .await
                .expect("198.51.100.1 has room"),
        );
        open.push(
            app.try_connect("", &two)
                .await
                .expect("198.51.100.2 has room"),
        );
    }
    assert_eq!(app.try_connect("", &one).await.err(), Some(429));
    assert_eq!(app.try_connect("", &two).await.err(), Some(429));
    // The proxy itself (no header) is a third address.
    open.push(app.try_connect("", &[]).await.expect("the peer has room"));
}

#[actix_web::test]
async fn names_that_reorder_or_hide_text_are_refused_at_the_upgrade() {
    let app = spawn_app_with(|_| {}).await;
    for name in [
        "ana%E2%80%AE",
        "an%E2%80%8Ba",
        "%E2%81%A6x%E2%81%A9",
        "%EF%BB%BFana",
    ] {
        assert_eq!(
            app.try_connect(&format!("?name={name}"), &[]).await.err(),
            Some(400),
            "{name}"
        );
    }
    // An emoji written with joiners is a name like any other.
    let astronaut = app
        .try_connect("?name=%F0%9F%91%A9%E2%80%8D%F0%9F%9A%80", &[])
        .await
        .expect("👩‍🚀 is a valid name");
    assert_eq!(astronaut.name, "👩\u{200d}🚀");
    let mut ana = app.connect("ana").await;
    ana.send_json(json!({"type": "nick", "name": "ana\u{202e}", "ref": "n"}))
        .await;
    assert_eq!(
        ana.expect_error().await,
        (ErrorCode::InvalidName, Some("n".into()))
    );
}

#[actix_web::test]
async fn healthz_proves_the_registry_answers() {
    let app = spawn_app_with(|_| {}).await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    // The registry runs on this test's thread (the HTTP workers have their
    // own): while this thread waits for the answer below, the registry
    // cannot answer the probe, as if it were stuck.
    let port = app.port;
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        answer.send(response).unwrap();
    });
    let response = answered.recv().expect("an answer");
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("registry_unresponsive"), "{response}");
    // Free again, the registry answers at once.
    let (status, _) = app.get_json("/healthz").await;
    assert_eq!(status, 200);
}

/// Appends `id` to what a reader has seen: it must be the next one.
fn see(seen: &mut Vec<u64>, id: u64, reader: u64) {
    let expected = seen.last().map_or(1, |last| last + 1);
    assert_eq!(id, expected, "reader {reader}: a gap or a duplicate");
    seen.push(id);
}

/// One soak client: reads `room`, drops its connection at random and
/// resumes with `after`, following `more` (rule 43); answers every id it
/// saw, after checking each was the next one.
async fn soak_reader(app: &TestApp, room: &str, stop: Instant, reader: u64) -> Vec<u64> {
    let mut rng = fastrand::Rng::with_seed(reader);
    let mut seen: Vec<u64> = Vec::new();
    while Instant::now() < stop {
        let mut client = app.connect("reader").await;
        // Live messages that come while the pages are read: the last page
        // reaches at least as far as the first of them (rule 43).
        let mut live = Vec::new();
        loop {
            let after = seen.last().copied().unwrap_or(0);
            client
                .send_json(json!({"type": "join", "room": room, "after": after}))
                .await;
            let (page, more) = loop {
                match client.recv_skipping_presence().await {
                    ServerMessage::Joined {
                        history,
                        more,
                        complete,
                        ..
                    } => {
                        assert!(complete, "the history is long enough to hold it all");
                        break (history, more);
                    }
                    ServerMessage::Message(m) => live.push(m.id),
                    other => panic!("unexpected {other:?}"),
                }
            };
            for message in page {
                see(&mut seen, message.id, reader);
            }
            if !more {
                break;
            }
        }
        let last = seen.last().copied().unwrap_or(0);
        for id in live.drain(..).filter(|id| *id > last) {
            see(&mut seen, id, reader);
        }
        // Read live for a random while, then drop the connection.
        let until = Instant::now() + Duration::from_millis(rng.u64(50..500));
        while Instant::now() < until.min(stop) {
            match tokio::time::timeout(Duration::from_millis(50), client.next_event()).await {
                Ok(Event::Message(ServerMessage::Message(m))) => see(&mut seen, m.id, reader),
                Ok(Event::Message(_)) | Err(_) => {}
                Ok(Event::Closed(frame)) => panic!("reader {reader} was closed: {frame:?}"),
            }
        }
    }
    seen
}

#[actix_web::test]
async fn a_soak_of_random_disconnects_and_resumes_loses_and_doubles_nothing() {
    let soak = Duration::from_secs(
        std::env::var("CHARLA_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let app = spawn_app_with(|c| {
        burst_friendly(c);
        c.history = 100_000;
        // Small pages, so long resumes come in several.
        c.outbox_bytes = 128 << 10;
    })
    .await;
    let stop = Instant::now() + soak;
    let mut sender = app.member("sender", "soak").await;
    let sending = async {
        let mut sent = 0u64;
        let text = "y".repeat(400);
        while Instant::now() < stop {
            sender.say("soak", &text).await;
            sender.expect_message().await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sent
    };
    let readers = join_all((0..6).map(|n| soak_reader(&app, "soak", stop, n)));
    let (sent, seen) = futures_util::join!(sending, readers);
    assert!(sent > 1000, "only {sent} messages in {soak:?}");
    for (reader, ids) in seen.iter().enumerate() {
        // Each reader checked every id was the next; each got far.
        assert!(
            ids.len() as u64 * 2 > sent,
            "reader {reader} saw {} of {sent}",
            ids.len()
        );
    }
}

/// The value of one gauge in `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> u64 {
    counter(app, name).await
}

#[actix_web::test]
async fn history_in_memory_stays_within_its_budget_and_nothing_stored_is_lost() {
    const BUDGET: u64 = 100_000;
    let app = spawn_app_with(|c| {
        c.msg_rate = 0.0;
        c.request_rate = 0.0;
        c.new_rooms_per_minute = 0;
        c.history_memory_bytes = BUDGET as usize;
    })
    .await;
    let mut ana = app.connect("ana").await;
    let text = "z".repeat(1000);
    for room in 0..20 {
        let room = format!("budget-{room}");
        ana.join(&room).await;
        for _ in 0..20 {
            ana.say(&room, &text).await;
            ana.expect_message().await;
        }
        ana.send_json(json!({"type": "leave", "room": room})).await;
        assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
        // 20 messages of 1 KB a room: 400 KB in all, four times the budget.
        let held = gauge(&app, "charla_history_memory_bytes").await;
        assert!(held <= BUDGET, "{held} bytes held in memory");
    }
    assert!(gauge(&app, "charla_history_memory_bytes").await > 0);
    // The rooms that left memory read their history back from the disk.
    for room in 0..20 {
        let room = format!("budget-{room}");
        assert_eq!(app.history(&room, "").await.len(), 20, "{room} over HTTP");
        let (_, history, complete) = ana.join_after(&room, 0).await;
        assert!(complete);
        assert_eq!(history.len(), 20, "{room} on a resume");
        ana.send_json(json!({"type": "leave", "room": room})).await;
        assert!(matches!(ana.recv().await, ServerMessage::Left { .. }));
    }
}
