//! The floor peer of Charla's benchmarks (BENCHMARKS.md): what fan-out costs
//! on this stack with no protocol work beyond the frames themselves.
//!
//! One tokio thread (a current-thread runtime), tokio-tungstenite, and a room
//! table of unbounded per-connection queues. It answers `join` with an empty
//! `joined`, `leave` with `left`, and turns `say` into a `message` event with
//! a per-room id, serialised once and shared by every member's queue. Each
//! connection has a writer task that sends what is queued and flushes once
//! per batch. There is nothing else: no welcome, presence, history, store,
//! acknowledgement, dedupe, limits, validation or heartbeat. That is the
//! point: Charla's figures divided by this one's are what its protocol and
//! safety cost, on the same machine in the same run.
//!
//! Usage: `PORT=29180 charla-floor` (listens on 127.0.0.1 only; `PORT=0`
//! takes a free port). Its first line on stdout names the address.

use charla_protocol::server::message_event_json;
use charla_protocol::{ChatMessage, ClientMessage, Member, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Each connection's read buffer: the frames the load generator sends are
/// small, and tungstenite's default (128 KiB) would make the idle figure
/// measure that buffer instead of the floor.
const READ_BUFFER_BYTES: usize = 1024;

/// A room: its last id and its members' queues, by connection number.
#[derive(Default)]
struct Room {
    last_id: u64,
    members: HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>,
}

/// Every room, shared by the connections of the one thread.
type Rooms = Rc<RefCell<HashMap<String, Room>>>;

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| std::io::Error::other(format!("PORT is not a port: {port}")))?,
        Err(_) => 29180,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        // The bound address, for whoever started it with PORT=0 (the smoke test).
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "charla-floor listening on {}",
            listener.local_addr()?
        )?;
        stdout.flush()?;
        drop(stdout);
        let rooms = Rooms::default();
        let mut next_connection = 0_u64;
        loop {
            let (stream, _) = listener.accept().await?;
            next_connection += 1;
            tokio::task::spawn_local(serve(stream, next_connection, rooms.clone()));
        }
    })
}

/// One connection, from handshake to close.
async fn serve(stream: TcpStream, connection: u64, rooms: Rooms) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = socket.split();
    let (queue, mut queued) = mpsc::unbounded_channel::<Utf8Bytes>();
    let writer = tokio::task::spawn_local(async move {
        while let Some(first) = queued.recv().await {
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            while let Ok(next) = queued.try_recv() {
                if sink.feed(Message::Text(next)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let me = Member {
        id: format!("f{connection}"),
        name: format!("m{connection}"),
    };
    let mut joined: Vec<String> = Vec::new();
    while let Some(Ok(frame)) = source.next().await {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(request) = serde_json::from_str::<ClientMessage>(&text) else {
            continue;
        };
        match request {
            ClientMessage::Join { room, .. } => {
                let reply = ServerMessage::Joined {
                    room: room.clone(),
                    epoch: "floor".into(),
                    members: Vec::new(),
                    history: Vec::new(),
                    complete: true,
                    more: false,
                };
                let _ = queue.send(reply.to_json().into());
                let mut rooms = rooms.borrow_mut();
                let entry = rooms.entry(room.clone()).or_default();
                entry.members.insert(connection, queue.clone());
                if !joined.contains(&room) {
                    joined.push(room);
                }
            }
            ClientMessage::Leave { room, .. } => {
                leave(&rooms, &room, connection);
                joined.retain(|r| *r != room);
                let _ = queue.send(ServerMessage::Left { room }.to_json().into());
            }
            ClientMessage::Say { room, text, .. } => {
                let mut rooms = rooms.borrow_mut();
                let Some(entry) = rooms.get_mut(&room) else {
                    continue;
                };
                entry.last_id += 1;
                let message = ChatMessage {
                    id: entry.last_id,
                    from: me.clone(),
                    text,
                    at: now_ms(),
                    room,
                    ..ChatMessage::default()
                };
                let frame = Utf8Bytes::from(message_event_json(&message));
                for member in entry.members.values() {
                    let _ = member.send(frame.clone());
                }
            }
            _ => {}
        }
    }
    for room in &joined {
        leave(&rooms, room, connection);
    }
    drop(queue);
    writer.abort();
}

fn leave(rooms: &Rooms, room: &str, connection: u64) {
    let mut rooms = rooms.borrow_mut();
    if let Some(entry) = rooms.get_mut(room) {
        entry.members.remove(&connection);
        if entry.members.is_empty() {
            rooms.remove(room);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
