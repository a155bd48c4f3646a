//! A session's outbound path: a queue of frames **bounded in frames and in
//! bytes**, and the writer task that alone owns the socket's sending half.
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
//!
//! The queue is a `VecDeque` behind a mutex with one [`AtomicWaker`] for the
//! writer, rather than a channel: an idle session's queue holds no
//! allocation at all (a bounded tokio channel allocates a 32-slot block and
//! its cache-padded state, about 1.8 KiB, up front), a push wakes the writer
//! only when the queue goes from empty to non-empty, and the writer checks
//! for a close with an atomic load instead of registering a waiter per
//! frame. Invariants: at most `capacity` frames and `byte_capacity` bytes
//! of text wait in the queue (one frame larger than the byte bound is let
//! into an empty queue, so no single frame can wedge a connection; nothing
//! the server builds is that large, see `JOINED_PAGE_SHARE`); frames leave
//! in the order they came; once a close is asked for nothing more is queued
//! and what is queued is dropped.
//!
//! The bytes counted are those waiting here. Beyond them actix-ws holds at
//! most 32 frames it has accepted and not yet encoded, and the kernel its
//! socket buffer.

use actix_ws::{CloseCode, CloseReason};
use bytestring::ByteString;
use charla_protocol::ServerMessage;
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

/// How long the writer keeps trying to hand over the close frame to a client
/// that is not reading, before it gives the connection up.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// A drained queue whose buffer grew beyond this many frames (a burst) gives
/// the memory back, so a once-busy idle session costs what a new one does.
pub(crate) const SHRINK_ABOVE_FRAMES: usize = 32;

/// One frame for the writer to send.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A JSON text frame, shared between every recipient of a broadcast.
    Text(ByteString),
    /// A protocol-level ping (heartbeat).
    Ping,
    /// The answer to a client's protocol-level ping.
    Pong(actix_web::web::Bytes),
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotQueued {
    /// The queue is full: the client is a slow consumer.
    Full,
    /// A close was asked for: the frame would never be sent.
    Closing,
}

/// The sending side of a session's outbound queue. Cheap to clone.
#[derive(Debug)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// The writer's end of the queue.
#[derive(Debug)]
pub(crate) struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// The frames waiting, and their text's size.
#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
}

impl Frame {
    /// What the frame counts against the byte bound: its payload.
    fn bytes(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Ping => 0,
            Frame::Pong(payload) => payload.len(),
        }
    }
}

/// What the pushers and the writer share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    byte_capacity: usize,
    /// The writer's waker: woken when the queue stops being empty, when a
    /// close is asked for, and when the last [`Outbox`] goes.
    writer: AtomicWaker,
    /// The close request: the first reason set wins.
    reason: OnceLock<CloseReason>,
    /// Live [`Outbox`] handles; at zero the writer closes normally.
    senders: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock cannot leave the queue half-changed
        // (push_back and pop_front are single steps), so a poisoned lock is
        // still a usable queue.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_closing(&self) -> bool {
        self.reason.get().is_some()
    }

    /// The next frame; `None` once a close is asked for or every sender is
    /// gone.
    fn poll_next(&self, cx: &mut std::task::Context<'_>) -> Poll<Option<Frame>> {
        if self.is_closing() {
            return Poll::Ready(None);
        }
        let mut queue = self.lock();
        if let Some(frame) = queue.frames.pop_front() {
            queue.bytes -= frame.bytes();
            if queue.frames.is_empty() && queue.frames.capacity() > SHRINK_ABOVE_FRAMES {
                queue.frames.shrink_to(0);
            }
            return Poll::Ready(Some(frame));
        }
        // Registered while the lock is held: a push that finds the queue
        // empty takes the lock after this, so its wake sees this waker.
        self.writer.register(cx.waker());
        drop(queue);
        if self.is_closing() || self.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// Ready once a close is asked for.
    fn poll_closing(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.is_closing() {
            return Poll::Ready(());
        }
        self.writer.register(cx.waker());
        if self.is_closing() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Outbox {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.writer.wake();
        }
    }
}

impl Outbox {
    /// A queue holding at most `capacity` frames and `byte_capacity` bytes.
    pub(crate) fn channel(capacity: usize, byte_capacity: usize) -> (Outbox, OutboxReceiver) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            capacity,
            byte_capacity,
            writer: AtomicWaker::new(),
            reason: OnceLock::new(),
            senders: AtomicUsize::new(1),
        });
        (
            Outbox {
                shared: shared.clone(),
            },
            OutboxReceiver { shared },
        )
    }

    /// Queues a frame without waiting.
    pub(crate) fn push(&self, frame: Frame) -> Result<(), NotQueued> {
        if self.shared.is_closing() {
            return Err(NotQueued::Closing);
        }
        let mut queue = self.shared.lock();
        let bytes = queue.bytes + frame.bytes();
        let over_bytes = bytes > self.shared.byte_capacity && !queue.frames.is_empty();
        if queue.frames.len() >= self.shared.capacity || over_bytes {
            return Err(NotQueued::Full);
        }
        queue.frames.push_back(frame);
        queue.bytes = bytes;
        let was_empty = queue.frames.len() == 1;
        drop(queue);
        // The writer only sleeps on an empty queue; while frames wait it is
        // busy and comes back for them, so only the first one needs a wake.
        if was_empty {
            self.shared.writer.wake();
        }
        Ok(())
    }

    /// Queues already serialised JSON.
    pub(crate) fn push_text(&self, text: ByteString) -> Result<(), NotQueued> {
        self.push(Frame::Text(text))
    }

    /// Serialises `message` for this one recipient and queues it.
    pub(crate) fn send(&self, message: &ServerMessage) -> Result<(), NotQueued> {
        self.push_text(message.to_json().into())
    }

    /// Asks the writer to close the connection with `code`. Frames still in
    /// the queue are dropped; the first close asked for wins.
    pub(crate) fn close(&self, code: CloseCode, description: &str) {
        let reason = CloseReason {
            code,
            description: Some(description.to_owned()),
        };
        if self.shared.reason.set(reason).is_ok() {
            *self.shared.lock() = Queue::default();
            self.shared.writer.wake();
        }
    }
}

/// Drains the queue into the socket in order until the outbox is closed or
/// every [`Outbox`] is gone, then sends the close frame.
pub(crate) async fn run_writer(mut session: actix_ws::Session, outbox: OutboxReceiver) {
    let shared = &outbox.shared;
    while let Some(frame) = poll_fn(|cx| shared.poll_next(cx)).await {
        // Sending first: when actix-ws has room (almost always) the frame
        // goes at once and the close signal is never polled. Only a client
        // that stopped reading leaves the send pending, and then a close
        // (1008 for a slow consumer) must still get through.
        let sent = tokio::select! {
            biased;
            sent = send_frame(&mut session, frame) => sent,
            () = poll_fn(|cx| shared.poll_closing(cx)) => break,
        };
        if sent.is_err() {
            // The connection is gone: nobody is left to read a close frame.
            return;
        }
    }
    let reason = shared.reason.get().cloned().or(Some(CloseReason {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Waker};

    fn next(receiver: &OutboxReceiver) -> Poll<Option<Frame>> {
        receiver
            .shared
            .poll_next(&mut Context::from_waker(Waker::noop()))
    }

    fn text(frame: Poll<Option<Frame>>) -> String {
        match frame {
            Poll::Ready(Some(Frame::Text(text))) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_leave_in_order_and_the_queue_is_bounded() {
        let (outbox, receiver) = Outbox::channel(3, 1 << 20);
        assert!(next(&receiver).is_pending());
        for i in 0..3 {
            outbox.push_text(format!("{i}").into()).unwrap();
        }
        assert_eq!(outbox.push_text("3".into()), Err(NotQueued::Full));
        assert_eq!(text(next(&receiver)), "0");
        outbox.push_text("4".into()).unwrap();
        assert_eq!(text(next(&receiver)), "1");
        assert_eq!(text(next(&receiver)), "2");
        assert_eq!(text(next(&receiver)), "4");
        assert!(next(&receiver).is_pending());
    }

    #[test]
    fn a_close_drops_what_waits_and_refuses_more() {
        let (outbox, receiver) = Outbox::channel(8, 1 << 20);
        outbox.push_text("a".into()).unwrap();
        outbox.close(CloseCode::Policy, "too slow");
        outbox.close(CloseCode::Normal, "");
        assert_eq!(outbox.push_text("b".into()), Err(NotQueued::Closing));
        assert!(matches!(next(&receiver), Poll::Ready(None)));
        let reason = receiver.shared.reason.get().unwrap();
        assert_eq!(reason.code, CloseCode::Policy);
    }

    #[test]
    fn the_writer_ends_when_every_outbox_is_gone() {
        let (outbox, receiver) = Outbox::channel(8, 1 << 20);
        let clone = outbox.clone();
        drop(outbox);
        clone.push_text("last".into()).unwrap();
        drop(clone);
        assert_eq!(text(next(&receiver)), "last");
        assert!(matches!(next(&receiver), Poll::Ready(None)));
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let (outbox, receiver) = Outbox::channel(1024, 1 << 20);
        for _ in 0..500 {
            outbox.push(Frame::Ping).unwrap();
        }
        while let Poll::Ready(Some(_)) = next(&receiver) {}
        assert!(receiver.shared.lock().frames.capacity() <= SHRINK_ABOVE_FRAMES);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_too() {
        let (outbox, receiver) = Outbox::channel(100, 10);
        outbox.push_text("aaaa".into()).unwrap();
        outbox.push_text("bbbbbb".into()).unwrap();
        assert_eq!(outbox.push_text("c".into()), Err(NotQueued::Full));
        // Pings carry nothing and always fit the byte bound.
        outbox.push(Frame::Ping).unwrap();
        assert_eq!(text(next(&receiver)), "aaaa");
        outbox.push_text("cccc".into()).unwrap();
        assert_eq!(receiver.shared.lock().bytes, 10);
    }

    #[test]
    fn one_large_frame_still_fits_an_empty_queue() {
        let (outbox, receiver) = Outbox::channel(100, 10);
        outbox.push_text("x".repeat(50).into()).unwrap();
        assert_eq!(outbox.push_text("y".into()), Err(NotQueued::Full));
        assert_eq!(text(next(&receiver)).len(), 50);
        assert_eq!(receiver.shared.lock().bytes, 0);
        outbox.push_text("y".into()).unwrap();
    }
}
