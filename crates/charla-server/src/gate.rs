//! The bound on a session's requests waiting at the registry: a
//! [`RequestGate`] the session counts into and the registry counts out of,
//! and [`Gated`], the session's frame stream, which stops being read while
//! the gate is full.
//!
//! So a client that sends faster than the registry answers is slowed down
//! by TCP itself (its frames wait in the socket, then in its own send
//! buffer) instead of filling the registry's mailbox; nothing is refused
//! or lost. Invariant: at most [`MAX_WAITING_REQUESTS`] requests of one
//! session are in the registry's mailbox at once (a frame is only read
//! while fewer wait, and it adds at most one).

use futures_util::Stream;
use futures_util::task::AtomicWaker;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// Requests one session may have handed to the registry and not yet had
/// handled; its socket is not read meanwhile.
pub(crate) const MAX_WAITING_REQUESTS: usize = 64;

/// A session's count of requests waiting at the registry.
#[derive(Debug, Default)]
pub(crate) struct RequestGate {
    waiting: AtomicUsize,
    /// The session's stream, parked while the gate is full.
    reader: AtomicWaker,
}

impl RequestGate {
    /// A request was handed to the registry.
    pub(crate) fn entered(&self) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
    }

    /// The registry handled one of the session's requests.
    pub(crate) fn handled(&self) {
        if self.waiting.fetch_sub(1, Ordering::AcqRel) >= MAX_WAITING_REQUESTS {
            self.reader.wake();
        }
    }

    fn is_full(&self) -> bool {
        self.waiting.load(Ordering::Acquire) >= MAX_WAITING_REQUESTS
    }
}

/// A session's incoming frames, read only while its gate has room.
pub(crate) struct Gated<S> {
    inner: S,
    gate: std::sync::Arc<RequestGate>,
}

impl<S> Gated<S> {
    pub(crate) fn new(inner: S, gate: std::sync::Arc<RequestGate>) -> Gated<S> {
        Gated { inner, gate }
    }
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.gate.is_full() {
            // Registered before the second look: a `handled` in between
            // sees this waker.
            self.gate.reader.register(cx.waker());
            if self.gate.is_full() {
                return Poll::Pending;
            }
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::Arc;
    use std::task::Waker;

    #[test]
    fn a_full_gate_stops_the_stream_until_a_request_is_handled() {
        let gate = Arc::new(RequestGate::default());
        let mut stream = Gated::new(futures_util::stream::iter(0..), gate.clone());
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..MAX_WAITING_REQUESTS {
            assert!(stream.poll_next_unpin(&mut cx).is_ready());
            gate.entered();
        }
        assert!(stream.poll_next_unpin(&mut cx).is_pending());
        gate.handled();
        assert!(stream.poll_next_unpin(&mut cx).is_ready());
    }
}
