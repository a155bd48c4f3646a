//! One load-generator client, speaking either Charla's protocol (to Charla or
//! to the floor peer, which speaks a subset of it) or Socket.IO
//! (Engine.IO v4 over a plain WebSocket), behind one interface: connect,
//! join, say, leave, and the next [`Event`].
//!
//! Charla requests are built from `charla_protocol::ClientMessage` and
//! every frame that is not a stamped `message` is parsed as a
//! `charla_protocol::ServerMessage`. Socket.IO frames are Engine.IO packets:
//! `0` open, `2` ping (answered `3`), `40` connect, `42[...]` an event,
//! `43<id>[...]` the answer to an event sent with ack id `<id>`. The peer in
//! `bench/peers/socketio` uses the same event names and payloads as Charla.
//!
//! Every client disables Nagle's algorithm, as the servers do, so latency
//! figures are not 40 ms delayed-ACK artefacts.
//!
//! Against an IPv4 loopback URL each client connects from a loopback
//! address of its own (127.1.0.0 onwards: all of 127.0.0.0/8 is loopback on
//! Linux), so that the server's limits per client address see many people,
//! as they would in production, rather than one host holding every socket.

use crate::marker::{self, Scanned, Stamp};
use charla_protocol::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A boxed error: the load generator reports, it does not recover.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Per-connection read buffer. Messages here are small, ten thousand idle
/// clients should not each reserve tungstenite's default 128 KiB, and
/// tungstenite zeroes the free part of this buffer before every read: at
/// 16 KiB that zeroing alone was 15 % of the load generator's CPU in a
/// fixed-rate fan-out (one frame per read).
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Which server the load generator talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Charla's own protocol on `/ws`.
    Charla,
    /// The Socket.IO peer, Engine.IO v4 over WebSocket on `/socket.io/`.
    Socketio,
    /// The floor peer (`bench/peers/floor`): the subset of Charla's
    /// protocol the scenarios use (`join`, `leave`, `say`, `message`), on
    /// `/ws`.
    Floor,
}

impl Target {
    /// Whether the target speaks Charla's JSON protocol (Charla itself, or
    /// the floor peer's subset of it).
    pub fn speaks_charla(self) -> bool {
        matches!(self, Target::Charla | Target::Floor)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Charla => "charla",
            Target::Floor => "floor",
            Target::Socketio => "socketio",
        })
    }
}

/// What the server told a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A `message` event carrying a load-generator stamp, and its room id
    /// (Charla's ids are the cluster's; the Socket.IO peer numbers per
    /// process).
    Stamped(Stamp, Option<u64>),
    /// The answer to `join`.
    Joined { room: String },
    /// The answer to `leave`.
    Left { room: String },
    /// The server refused a request.
    Error(String),
    /// The server closed the connection (with its close code, if any).
    Closed(Option<u16>),
    /// Anything else (presence, welcome, pings, other messages).
    Other,
}

/// What a Socket.IO ack id was for.
#[derive(Debug)]
enum Pending {
    Join(String),
    Leave(String),
}

/// The next client's own loopback source address: 127.1.0.0, 127.1.0.1,
/// and so on (16.7 million before it wraps).
fn next_source_address() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % (127 << 16);
    let [_, high, middle, low] = n.to_be_bytes();
    Ipv4Addr::new(127, 1 + high, middle, low)
}

/// One connected client.
pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    target: Target,
    next_ack: u64,
    pending: HashMap<u64, Pending>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `base` (`ws://127.0.0.1:PORT`) as display name `name`,
    /// and for Socket.IO completes the Engine.IO and namespace handshakes.
    pub async fn connect(base: &str, target: Target, name: &str) -> Result<Client, Error> {
        let base = base.trim_end_matches('/');
        let url = match target {
            Target::Charla | Target::Floor => format!("{base}/ws?name={name}"),
            Target::Socketio => format!("{base}/socket.io/?EIO=4&transport=websocket&name={name}"),
        };
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let request = url.into_client_request()?;
        let loopback = request
            .uri()
            .host()
            .and_then(|host| host.parse::<Ipv4Addr>().ok())
            .filter(Ipv4Addr::is_loopback);
        let (socket, _response) = match (loopback, request.uri().port_u16()) {
            (Some(host), Some(port)) => {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(IpAddr::V4(next_source_address()), 0))?;
                let stream = socket
                    .connect(SocketAddr::new(IpAddr::V4(host), port))
                    .await?;
                stream.set_nodelay(true)?;
                tokio_tungstenite::client_async_with_config(
                    request,
                    MaybeTlsStream::Plain(stream),
                    Some(config),
                )
                .await?
            }
            _ => tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?,
        };
        let mut client = Client {
            socket,
            target,
            next_ack: 0,
            pending: HashMap::new(),
        };
        if target == Target::Socketio {
            client.socketio_handshake().await?;
        }
        Ok(client)
    }

    /// Engine.IO `0{...}` open, then the namespace connect `40` / `40{...}`.
    async fn socketio_handshake(&mut self) -> Result<(), Error> {
        let open = self.next_text().await?;
        if !open.starts_with('0') {
            return Err(format!("expected an Engine.IO open packet, got {open:?}").into());
        }
        self.send_text("40".to_owned()).await?;
        loop {
            let frame = self.next_text().await?;
            if frame.starts_with("40") {
                return Ok(());
            }
            if frame.starts_with("44") {
                return Err(format!("namespace connect refused: {frame}").into());
            }
        }
    }

    async fn next_text(&mut self) -> Result<String, Error> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
            }
        }
    }

    async fn send_text(&mut self, text: String) -> Result<(), Error> {
        self.socket.send(Message::Text(text.into())).await?;
        Ok(())
    }

    fn charla_json(message: &ClientMessage) -> String {
        serde_json::to_string(message).expect("client messages always serialise")
    }

    fn ack_id(&mut self, pending: Pending) -> u64 {
        let id = self.next_ack;
        self.next_ack += 1;
        self.pending.insert(id, pending);
        id
    }

    /// Asks to join `room`; the answer arrives as [`Event::Joined`].
    pub async fn join(&mut self, room: &str) -> Result<(), Error> {
        let text = match self.target {
            Target::Charla | Target::Floor => Client::charla_json(&ClientMessage::Join {
                room: room.to_owned(),
                after: None,
                epoch: None,
                reference: None,
            }),
            Target::Socketio => {
                let id = self.ack_id(Pending::Join(room.to_owned()));
                format!("42{id}{}", serde_json::json!(["join", room]))
            }
        };
        self.send_text(text).await
    }

    /// Asks to leave `room`; the answer arrives as [`Event::Left`].
    pub async fn leave(&mut self, room: &str) -> Result<(), Error> {
        let text = match self.target {
            Target::Charla | Target::Floor => Client::charla_json(&ClientMessage::Leave {
                room: room.to_owned(),
                reference: None,
            }),
            Target::Socketio => {
                let id = self.ack_id(Pending::Leave(room.to_owned()));
                format!("42{id}{}", serde_json::json!(["leave", room]))
            }
        };
        self.send_text(text).await
    }

    /// Posts `text` in `room` (no `ref`: no `ack` comes back).
    pub async fn say(&mut self, room: &str, text: String) -> Result<(), Error> {
        let frame = match self.target {
            Target::Charla | Target::Floor => Client::charla_json(&ClientMessage::Say {
                room: room.to_owned(),
                text,
                reference: None,
            }),
            Target::Socketio => format!(
                "42{}",
                serde_json::json!(["say", {"room": room, "text": text}])
            ),
        };
        self.send_text(frame).await
    }

    /// Joins `room` and waits for the answer, ignoring whatever comes first.
    pub async fn join_and_wait(&mut self, room: &str) -> Result<(), Error> {
        self.join(room).await?;
        loop {
            match self.next_event().await? {
                Event::Joined { room: joined } if joined == room => return Ok(()),
                Event::Error(error) => return Err(format!("join {room}: {error}").into()),
                Event::Closed(code) => {
                    return Err(format!("closed while joining {room}: {code:?}").into());
                }
                _ => {}
            }
        }
    }

    /// The next event; the read error of a broken connection is an `Err`.
    pub async fn next_event(&mut self) -> Result<Event, Error> {
        let frame = match self.socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Ok(Event::Closed(frame.map(|f| u16::from(f.code))));
            }
            None => return Ok(Event::Closed(None)),
            Some(Ok(_)) => return Ok(Event::Other),
            Some(Err(error)) => return Err(error.into()),
        };
        match marker::scan_message(&frame) {
            Scanned::Stamped(stamp, id) => return Ok(Event::Stamped(stamp, id)),
            Scanned::Unstamped => return Ok(Event::Other),
            Scanned::Other => {}
        }
        match self.target {
            Target::Charla | Target::Floor => Ok(charla_event(&frame)),
            Target::Socketio => self.socketio_event(&frame).await,
        }
    }

    async fn socketio_event(&mut self, frame: &str) -> Result<Event, Error> {
        if frame == "2" {
            // Engine.IO heartbeat: the client answers the server's ping.
            self.send_text("3".to_owned()).await?;
            return Ok(Event::Other);
        }
        if frame.starts_with('1') {
            return Ok(Event::Closed(None));
        }
        if let Some(rest) = frame.strip_prefix("43") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let id: u64 = rest[..digits].parse()?;
            return Ok(match self.pending.remove(&id) {
                Some(Pending::Join(room)) => Event::Joined { room },
                Some(Pending::Leave(room)) => Event::Left { room },
                None => Event::Other,
            });
        }
        if frame.starts_with("44") {
            return Ok(Event::Error(frame.to_owned()));
        }
        Ok(Event::Other)
    }

    /// Closes the connection politely (a close frame, then waits briefly
    /// for the server's).
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await;
    }
}

/// Events a load-generator client only skips: recognised by their tag (serde
/// writes it first) so that setup, when every join tells every member, does
/// not parse hundreds of thousands of them.
const CHARLA_SKIPPED: [&str; 3] = [
    r#"{"type":"presence""#,
    r#"{"type":"typing""#,
    r#"{"type":"rooms""#,
];

/// A Charla frame that is not a stamped message.
fn charla_event(frame: &str) -> Event {
    if CHARLA_SKIPPED.iter().any(|tag| frame.starts_with(tag)) {
        return Event::Other;
    }
    match serde_json::from_str::<ServerMessage>(frame) {
        Ok(ServerMessage::Joined { room, .. }) => Event::Joined { room },
        Ok(ServerMessage::Left { room }) => Event::Left { room },
        Ok(ServerMessage::Error { code, message, .. }) => {
            Event::Error(format!("{}: {message}", code.as_str()))
        }
        Ok(_) => Event::Other,
        Err(error) => Event::Error(format!("unreadable frame ({error}): {frame}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use charla_protocol::ErrorCode;

    #[test]
    fn charla_frames_become_events() {
        let joined = ServerMessage::Joined {
            room: "r0".into(),
            epoch: "e0".into(),
            members: vec![],
            history: vec![],
            complete: true,
            more: false,
        };
        assert_eq!(
            charla_event(&joined.to_json()),
            Event::Joined { room: "r0".into() }
        );
        let error = ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            reference: None,
            until: None,
        };
        assert!(
            matches!(charla_event(&error.to_json()), Event::Error(e) if e.starts_with("rate_limited"))
        );
        assert_eq!(
            charla_event(&ServerMessage::Left { room: "r0".into() }.to_json()),
            Event::Left { room: "r0".into() }
        );
    }
}
