//! The test harness: [`spawn_app`] starts the real server on a random
//! loopback port with a tweaked [`Config`], and [`Client`] is a real
//! WebSocket client (tokio-tungstenite) with typed helpers.
//!
//! Every wait is on an event (a frame, a close, the server task ending);
//! [`WAIT`] only bounds a wait so a broken server fails the test instead of
//! hanging it. Set `TEST_LOG=1` to see the server's logs.

use charla_protocol::{ChatMessage, ErrorCode, Member, ServerMessage};
use charla_server::{Application, Config};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::TcpListener;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound of any single wait; a healthy server answers in milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server.
pub struct TestApp {
    pub port: u16,
    /// The directory of the server's database (the durable default), removed
    /// when the app is dropped.
    _data: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Starts the server with the defaults, changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let mut config = Config::defaults();
        config.log_filter = "debug".into();
        charla_server::telemetry::init(&config);
    }
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::defaults();
    config.database = data.path().join("charla.db").display().to_string();
    tweak(&mut config);
    config.validate().expect("test configuration is valid");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let application = Application::with_listener(listener, config)
        .await
        .expect("build the server");
    let port = application.port();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = actix_web::rt::spawn(application.run_until_stopped(async move {
        let _ = stop.await;
    }));
    TestApp {
        port,
        _data: data,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// Starts the server with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

impl TestApp {
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws{}", self.port, query)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Connects as `name` and reads the `welcome`.
    pub async fn connect(&self, name: &str) -> Client {
        let query = format!("?name={}", urlencode(name));
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(&query))
            .await
            .expect("the upgrade succeeds");
        Client::welcomed(ws).await
    }

    /// Connects as `name` and joins `room`, reading the `joined`.
    pub async fn member(&self, name: &str, room: &str) -> Client {
        let mut client = self.connect(name).await;
        client.join(room).await;
        client
    }

    /// Attempts an upgrade with extra headers; answers the HTTP status of a
    /// refusal, or the connected client.
    pub async fn try_connect(&self, query: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
        let mut request = self.ws_url(query).into_client_request().unwrap();
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName =
                name.parse().expect("a valid header name");
            request
                .headers_mut()
                .insert(name, value.parse().expect("a valid header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Client::welcomed(ws).await),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("unexpected upgrade failure: {other}"),
        }
    }

    /// Connects over a socket with a tiny receive buffer: a client that
    /// stops reading fills it fast.
    pub async fn connect_small_buffer(&self, name: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket
            .connect(format!("127.0.0.1:{}", self.port).parse().unwrap())
            .await
            .unwrap();
        let url = self.ws_url(&format!("?name={}", urlencode(name)));
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("the upgrade succeeds");
        Client::welcomed(ws).await
    }

    pub fn http(&self) -> awc::Client {
        awc::Client::default()
    }

    /// GETs a path: the status and the body.
    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut response = self
            .http()
            .get(self.url(path))
            .send()
            .await
            .expect("GET succeeds");
        let body = response.body().await.expect("a body");
        (response.status().as_u16(), body.to_vec())
    }

    /// GETs a path and parses the JSON answer.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// GETs a path and answers the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        String::from_utf8(self.get(path).await.1).expect("UTF-8")
    }

    /// The history of `room` through the HTTP API.
    pub async fn history(&self, room: &str, query: &str) -> Vec<ChatMessage> {
        let (status, body) = self
            .get_json(&format!("/api/rooms/{room}/messages{query}"))
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["messages"].clone()).expect("messages")
    }

    /// Triggers the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Triggers the graceful shutdown and waits for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.begin_shutdown();
        let server = self.server.take().expect("the server runs");
        tokio::time::timeout(WAIT, server)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a client read: a server message, or the close that ended it.
#[derive(Debug)]
pub enum Event {
    Message(ServerMessage),
    Closed(Option<CloseFrame>),
}

/// A connected WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub session: String,
    pub name: String,
}

impl Client {
    /// Connects to a WebSocket URL (of a server started some other way,
    /// such as the binary) and reads the `welcome`.
    pub async fn connect_url(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the upgrade succeeds");
        Client::welcomed(ws).await
    }

    async fn welcomed(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        let mut client = Client {
            ws,
            session: String::new(),
            name: String::new(),
        };
        match client.recv().await {
            ServerMessage::Welcome { session, name } => {
                client.session = session;
                client.name = name;
            }
            other => panic!("the first message must be welcome, got {other:?}"),
        }
        client
    }

    /// This client as other members see it.
    pub fn as_member(&self) -> Member {
        Member {
            id: self.session.clone(),
            name: self.name.clone(),
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_raw(Message::text(value.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("the frame is sent");
    }

    /// The next event, skipping protocol pings and pongs.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrives in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("server sent an invalid message {text}: {e}"));
                    return Event::Message(message);
                }
                Some(Ok(Message::Close(frame))) => return Event::Closed(frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(tungstenite::Error::ConnectionClosed)) | None => {
                    return Event::Closed(None);
                }
                Some(Err(error)) => panic!("connection failed: {error}"),
            }
        }
    }

    /// The next server message; panics on a close.
    pub async fn recv(&mut self) -> ServerMessage {
        match self.next_event().await {
            Event::Message(message) => message,
            Event::Closed(frame) => panic!("closed while a message was expected: {frame:?}"),
        }
    }

    /// The next message that is not a presence event.
    pub async fn recv_skipping_presence(&mut self) -> ServerMessage {
        loop {
            match self.recv().await {
                ServerMessage::Presence { .. } => {}
                other => return other,
            }
        }
    }

    /// Reads (and drops) everything up to the close; answers its code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.next_event().await {
                Event::Message(_) => {}
                Event::Closed(Some(frame)) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Event::Closed(None) => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Joins `room` and answers the `joined` content.
    pub async fn join(&mut self, room: &str) -> (Vec<Member>, Vec<ChatMessage>, bool) {
        self.send_json(serde_json::json!({"type": "join", "room": room}))
            .await;
        self.expect_joined().await
    }

    /// Joins with `after` and answers the `joined` content.
    pub async fn join_after(
        &mut self,
        room: &str,
        after: u64,
    ) -> (Vec<Member>, Vec<ChatMessage>, bool) {
        self.send_json(serde_json::json!({"type": "join", "room": room, "after": after}))
            .await;
        self.expect_joined().await
    }

    pub async fn expect_joined(&mut self) -> (Vec<Member>, Vec<ChatMessage>, bool) {
        match self.recv_skipping_presence().await {
            ServerMessage::Joined {
                members,
                history,
                complete,
                ..
            } => (members, history, complete),
            other => panic!("expected joined, got {other:?}"),
        }
    }

    pub async fn say(&mut self, room: &str, text: &str) {
        self.send_json(serde_json::json!({"type": "say", "room": room, "text": text}))
            .await;
    }

    pub async fn say_with_ref(&mut self, room: &str, text: &str, reference: &str) {
        self.send_json(
            serde_json::json!({"type": "say", "room": room, "text": text, "ref": reference}),
        )
        .await;
    }

    /// Sends `identify` (with `secret`, or asking for a new identity) and
    /// answers the `identity`: the id, and the secret when one was issued.
    /// From then on this client's member id is that id.
    pub async fn identify(&mut self, secret: Option<&str>) -> (String, Option<String>) {
        let request = match secret {
            Some(secret) => serde_json::json!({"type": "identify", "secret": secret}),
            None => serde_json::json!({"type": "identify"}),
        };
        self.send_json(request).await;
        match self.recv_skipping_presence().await {
            ServerMessage::Identity { id, secret } => {
                self.session.clone_from(&id);
                (id, secret)
            }
            other => panic!("expected identity, got {other:?}"),
        }
    }

    /// The next `ack`'s id, skipping presence events; asserts its `ref`.
    pub async fn expect_ack(&mut self, reference: &str) -> u64 {
        match self.recv_skipping_presence().await {
            ServerMessage::Ack {
                reference: acked,
                id,
                ..
            } => {
                assert_eq!(acked, reference, "the ack carries the request's ref");
                id
            }
            other => panic!("expected an ack, got {other:?}"),
        }
    }

    /// The next chat message, skipping presence events.
    pub async fn expect_message(&mut self) -> ChatMessage {
        match self.recv_skipping_presence().await {
            ServerMessage::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next error's code and echoed ref, skipping presence events.
    pub async fn expect_error(&mut self) -> (ErrorCode, Option<String>) {
        match self.recv_skipping_presence().await {
            ServerMessage::Error {
                code,
                reference,
                message,
                ..
            } => {
                assert!(!message.is_empty(), "errors carry a human message");
                (code, reference)
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// A barrier through the registry: sends a request only the registry
    /// answers (leaving a room never joined) and answers every message that
    /// arrived before that answer. Whatever the registry did for this client
    /// before it handled the barrier is among them, the answers to its
    /// `say`s included: the registry holds later answers back until those
    /// are stored (docs/protocol.md, rule 36: a `ping` would not do, its
    /// `pong` can overtake).
    pub async fn barrier(&mut self) -> Vec<ServerMessage> {
        let reference = format!("barrier-{}", fastrand::u64(..));
        self.send_json(
            serde_json::json!({"type": "leave", "room": "zz-barrier", "ref": reference}),
        )
        .await;
        let mut before = Vec::new();
        loop {
            match self.recv().await {
                ServerMessage::Error {
                    code: ErrorCode::NotJoined,
                    reference: Some(r),
                    ..
                } if r == reference => {
                    return before;
                }
                other => before.push(other),
            }
        }
    }
}

/// For tests that send bursts faster than a person could: flood control and
/// the request budget off, and a per-session queue deep enough that a debug build on a busy machine
/// never counts as a slow consumer (tests about slow consumers set their own).
pub fn burst_friendly(config: &mut Config) {
    config.msg_rate = 0.0;
    config.request_rate = 0.0;
    config.outbox_frames = 8192;
    config.outbox_bytes = 64 << 20;
}
