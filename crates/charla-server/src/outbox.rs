//! A session's outbound path: a **bounded** queue of frames and the writer
//! task that alone owns the socket's sending half.
//!
//! Everyone who talks to a client (its session actor, the room registry)
//! pushes into its [`Outbox`] with `try_send`, so nobody ever waits on a
//! socket. A full queue is the slow-consumer signal: the pusher closes the
//! outbox with 1008 instead of waiting. One writer task drains the queue in
//! order (spawned futures on an actor would complete out of order) and sends
//! the close frame itself, after the frames already handed to actix-ws, so
//! the client sees its close code rather than a dropped connection.
//!
//! Frames hold [`ByteString`]s: a broadcast is serialised once and each
//! member's queue receives a clone of the same reference-counted buffer.

use actix_ws::{CloseCode, CloseReason};
use bytestring::ByteString;
use charla_protocol::ServerMessage;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How long the writer keeps trying to hand over the close frame to a client
/// that is not reading, before it gives the connection up.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// One frame for the writer to send.
#[derive(Debug)]
pub enum Frame {
    /// A JSON text frame, shared between every recipient of a broadcast.
    Text(ByteString),
    /// A protocol-level ping (heartbeat).
    Ping,
    /// The answer to a client's protocol-level ping.
    Pong(actix_web::web::Bytes),
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum NotQueued {
    /// The queue is full: the client is a slow consumer.
    Full,
    /// A close was asked for: the frame would never be sent.
    Closing,
}

/// The sending side of a session's outbound queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    queue: mpsc::Sender<Frame>,
    closer: Arc<Closer>,
}

/// The writer's end: the queue receiver and the close signal.
#[derive(Debug)]
pub struct OutboxReceiver {
    queue: mpsc::Receiver<Frame>,
    closer: Arc<Closer>,
}

/// The close request: the first reason set wins, and the notification is kept
/// until the writer looks, so it cannot be lost.
#[derive(Debug, Default)]
struct Closer {
    reason: OnceLock<CloseReason>,
    notify: Notify,
}

impl Outbox {
    /// A queue holding at most `capacity` frames.
    pub fn channel(capacity: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(capacity);
        let closer = Arc::new(Closer::default());
        (
            Outbox {
                queue: sender,
                closer: closer.clone(),
            },
            OutboxReceiver {
                queue: receiver,
                closer,
            },
        )
    }

    /// Queues a frame without waiting.
    pub fn push(&self, frame: Frame) -> Result<(), NotQueued> {
        if self.is_closing() {
            return Err(NotQueued::Closing);
        }
        self.queue.try_send(frame).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => NotQueued::Full,
            mpsc::error::TrySendError::Closed(_) => NotQueued::Closing,
        })
    }

    /// Queues already serialised JSON.
    pub fn push_text(&self, text: ByteString) -> Result<(), NotQueued> {
        self.push(Frame::Text(text))
    }

    /// Serialises `message` for this one recipient and queues it.
    pub fn send(&self, message: &ServerMessage) -> Result<(), NotQueued> {
        self.push_text(message.to_json().into())
    }

    /// Asks the writer to close the connection with `code`. Frames still in
    /// the queue are dropped; the first close asked for wins.
    pub fn close(&self, code: CloseCode, description: &str) {
        let reason = CloseReason {
            code,
            description: Some(description.to_owned()),
        };
        if self.closer.reason.set(reason).is_ok() {
            self.closer.notify.notify_one();
        }
    }

    /// Whether a close was asked for.
    pub fn is_closing(&self) -> bool {
        self.closer.reason.get().is_some()
    }
}

/// Drains the queue into the socket in order until the outbox is closed or
/// every [`Outbox`] is gone, then sends the close frame.
pub async fn run_writer(mut session: actix_ws::Session, mut outbox: OutboxReceiver) {
    loop {
        if outbox.closer.reason.get().is_some() {
            break;
        }
        let frame = tokio::select! {
            biased;
            () = outbox.closer.notify.notified() => break,
            frame = outbox.queue.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
        };
        let sent = tokio::select! {
            biased;
            () = outbox.closer.notify.notified() => break,
            sent = send_frame(&mut session, frame) => sent,
        };
        if sent.is_err() {
            // The connection is gone: nobody is left to read a close frame.
            return;
        }
    }
    let reason = outbox.closer.reason.get().cloned().or(Some(CloseReason {
        code: CloseCode::Normal,
        description: None,
    }));
    // A client that never reads again never frees room for the close frame:
    // give up after the grace so the connection can be torn down.
    let _ = tokio::time::timeout(CLOSE_GRACE, session.close(reason)).await;
}

async fn send_frame(session: &mut actix_ws::Session, frame: Frame) -> Result<(), actix_ws::Closed> {
    match frame {
        Frame::Text(text) => session.text(text).await,
        Frame::Ping => session.ping(b"").await,
        Frame::Pong(payload) => session.pong(&payload).await,
    }
}
