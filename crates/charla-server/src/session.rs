//! One actor per WebSocket connection: it reads the client's frames, keeps
//! the heartbeat, answers what needs no shared state (`ping`, malformed
//! requests, binary frames) and hands every room request to the registry.
//!
//! The actor never writes to the socket itself: it pushes into its
//! [`Outbox`], whose writer task owns the sending half. It never waits
//! either: a full outbox closes the connection as a slow consumer.
//!
//! Every request but `say` and `nick` (which flood control prices at the
//! registry) takes a token from the session's request budget
//! (`CHARLA_REQUEST_RATE`, `CHARLA_REQUEST_BURST`), and so does every
//! refused one: with none left the request is answered `rate_limited` and
//! goes nowhere. Requests waiting at the registry are bounded by the
//! session's [`RequestGate`]: while it is full the socket is not read.
//!
//! Invariants:
//! - `welcome` is the first frame queued, before the registry knows the
//!   session, so nothing can overtake it;
//! - requests reach the registry in the order the client sent them (one
//!   sender, one FIFO mailbox);
//! - the session leaves every room when the actor stops, whatever stopped it.

use crate::address::ClientAddress;
use crate::bucket::TokenBucket;
use crate::gate::RequestGate;
use crate::metrics::Metrics;
use crate::outbox::{Frame, NotQueued, Outbox};
use crate::registry::{
    Change, Connect, Disconnect, Identify, Join, Leave, Registry, Rename, Say, SessionId, Typing,
    UnwatchRooms, WatchRooms,
};
use crate::state::ConnectionPermit;
use actix::prelude::*;
use actix_ws::{AggregatedMessage, CloseCode, ProtocolError};
use charla_protocol::{
    Command, ErrorCode, Member, Rejection, Request, ServerMessage, parse_request,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The writer task finished: the connection is closed or gone.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WriterDone;

/// The per-connection actor.
pub(crate) struct ChatSession {
    id: SessionId,
    member: Member,
    outbox: Outbox,
    registry: Addr<Registry>,
    metrics: Arc<Metrics>,
    heartbeat: Duration,
    client_timeout: Duration,
    last_heard: Instant,
    /// The request budget (see the module's comment).
    requests: TokenBucket,
    request_rate: f64,
    request_burst: u32,
    /// Requests handed to the registry and not yet handled: the session
    /// counts in, the registry out, and the socket is read only while
    /// there is room.
    gate: Arc<RequestGate>,
    address: ClientAddress,
    span: tracing::Span,
    /// One of the `CHARLA_MAX_CONNECTIONS` places, freed as the actor stops
    /// (before the registry hears of it, so a place is free by the time the
    /// other members see this session leave).
    permit: Option<ConnectionPermit>,
}

/// What a session needs besides its own connection: where requests go,
/// where it counts, and its heartbeat timings.
pub(crate) struct SessionLinks {
    pub(crate) registry: Addr<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    /// Time between two server pings.
    pub(crate) heartbeat: Duration,
    /// Silence after which the connection is dropped.
    pub(crate) client_timeout: Duration,
    /// The request budget's refill per second and size.
    pub(crate) request_rate: f64,
    pub(crate) request_burst: u32,
}

impl ChatSession {
    pub(crate) fn new(
        id: SessionId,
        member: Member,
        outbox: Outbox,
        links: SessionLinks,
        permit: ConnectionPermit,
        address: ClientAddress,
        gate: Arc<RequestGate>,
    ) -> ChatSession {
        let span = tracing::info_span!("session", session = %id);
        let SessionLinks {
            registry,
            metrics,
            heartbeat,
            client_timeout,
            request_rate,
            request_burst,
        } = links;
        ChatSession {
            id,
            member,
            outbox,
            registry,
            metrics,
            heartbeat,
            client_timeout,
            last_heard: Instant::now(),
            requests: TokenBucket::full(request_burst),
            request_rate,
            request_burst,
            gate,
            address,
            span,
            permit: Some(permit),
        }
    }

    /// Queues a frame for this client; a full queue means a slow consumer.
    fn push(&self, frame: Frame, ctx: &mut Context<Self>) {
        if self.outbox.push(frame) == Err(NotQueued::Full) {
            self.metrics.slow_consumer();
            self.close(CloseCode::Policy, "too slow", ctx);
        }
    }

    fn reply(&self, message: &ServerMessage, ctx: &mut Context<Self>) {
        self.push(Frame::Text(message.to_json().into()), ctx);
    }

    /// Answers a refused request, with `rate_limited` instead once the
    /// request budget is spent: refusing costs the server too.
    fn reject(&mut self, mut rejection: Rejection, ctx: &mut Context<Self>) {
        if !self.take_request_token() {
            rejection = Rejection::new(ErrorCode::RateLimited, rejection.reference);
        }
        self.answer_rejection(rejection, ctx);
    }

    fn answer_rejection(&self, rejection: Rejection, ctx: &mut Context<Self>) {
        self.metrics.error(rejection.code);
        let error = ServerMessage::Error {
            code: rejection.code,
            message: rejection.message,
            reference: rejection.reference,
            until: None,
        };
        self.reply(&error, ctx);
    }

    /// Asks the writer to close with `code` and stops reading; the writer
    /// sends the close frame after what is already on its way.
    fn close(&self, code: CloseCode, reason: &str, ctx: &mut Context<Self>) {
        self.outbox.close(code, reason);
        ctx.stop();
    }

    fn handle_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        match parse_request(text) {
            Ok(request) => self.dispatch(request, ctx),
            Err(rejection) => self.reject(rejection, ctx),
        }
    }

    fn take_request_token(&mut self) -> bool {
        self.requests.take(self.request_rate, self.request_burst)
    }

    /// Hands a valid request to whoever answers it, once it has paid a
    /// request token (but `say` and `nick`, priced by flood control).
    fn dispatch(&mut self, request: Request, ctx: &mut Context<Self>) {
        let Request { reference, command } = request;
        let session = self.id;
        let priced_by_flood_control = matches!(
            command,
            Command::Say { .. }
                | Command::Nick { .. }
                | Command::Edit { .. }
                | Command::Delete { .. }
        );
        if !priced_by_flood_control && !self.take_request_token() {
            self.answer_rejection(Rejection::new(ErrorCode::RateLimited, reference), ctx);
            return;
        }
        if !matches!(command, Command::Ping) {
            self.gate.entered();
        }
        match command {
            Command::Ping => self.reply(&ServerMessage::Pong { reference }, ctx),
            Command::Join { room, after, epoch } => self.registry.do_send(Join {
                session,
                room,
                after,
                epoch,
                reference,
            }),
            Command::Leave { room } => self.registry.do_send(Leave {
                session,
                room,
                reference,
            }),
            Command::Say { room, text } => self.registry.do_send(Say {
                session,
                room,
                text,
                reference,
            }),
            Command::Typing { room } => self.registry.do_send(Typing {
                session,
                room,
                reference,
            }),
            Command::Nick { name } => self.registry.do_send(Rename {
                session,
                name,
                reference,
            }),
            Command::WatchRooms => self.registry.do_send(WatchRooms { session }),
            Command::UnwatchRooms => self.registry.do_send(UnwatchRooms { session }),
            Command::Identify { secret } => self.registry.do_send(Identify {
                session,
                secret,
                reference,
            }),
            Command::Edit { room, id, text } => self.registry.do_send(Change {
                session,
                room,
                id,
                text: Some(text),
                reference,
            }),
            Command::Delete { room, id } => self.registry.do_send(Change {
                session,
                room,
                id,
                text: None,
                reference,
            }),
        }
    }

    /// Maps a read error to its close code: 1009 for a message over the
    /// limit (a single frame, or a fragmented message in total), 1007 for
    /// text that is not UTF-8, 1002 for anything else.
    fn close_for(&self, error: &ProtocolError, ctx: &mut Context<Self>) {
        let (code, reason) = match error {
            ProtocolError::Overflow => (CloseCode::Size, "message too big"),
            // actix-ws reports an oversized fragmented message as an I/O
            // error of kind `Other`, and invalid UTF-8 as `InvalidData`.
            ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                (CloseCode::Invalid, "text is not UTF-8")
            }
            ProtocolError::Io(_) => (CloseCode::Size, "message too big"),
            _ => (CloseCode::Protocol, "protocol error"),
        };
        tracing::debug!(parent: &self.span, error = %error, "closing after a read error");
        self.close(code, reason, ctx);
    }
}

impl Actor for ChatSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(parent: &self.span, name = %self.member.name, "session opened");
        let welcome = ServerMessage::Welcome {
            session: self.member.id.clone(),
            name: self.member.name.clone(),
        };
        self.reply(&welcome, ctx);
        self.registry.do_send(Connect {
            session: self.id,
            member: self.member.clone(),
            outbox: self.outbox.clone(),
            gate: self.gate.clone(),
            address: self.address,
        });
        ctx.run_interval(self.heartbeat, |session, ctx| {
            if session.last_heard.elapsed() > session.client_timeout {
                tracing::info!(parent: &session.span, "heartbeat timed out");
                session.close(CloseCode::Away, "heartbeat timeout", ctx);
            } else {
                // A full queue is left to the next broadcast to judge: a ping
                // is not worth closing anyone over.
                let _ = session.outbox.push(Frame::Ping);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Normal closure unless a more specific close was already asked for.
        self.outbox.close(CloseCode::Normal, "");
        self.permit.take();
        self.registry.do_send(Disconnect { session: self.id });
        tracing::info!(parent: &self.span, "session closed");
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for ChatSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => self.handle_text(&text, ctx),
            Ok(AggregatedMessage::Binary(_)) => {
                self.reject(Rejection::new(ErrorCode::Unsupported, None), ctx);
            }
            Ok(AggregatedMessage::Ping(payload)) => self.push(Frame::Pong(payload), ctx),
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(reason)) => {
                // Echo the client's code, as RFC 6455 asks.
                let code = reason.map_or(CloseCode::Normal, |r| r.code);
                self.close(code, "", ctx);
            }
            Err(error) => self.close_for(&error, ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<WriterDone> for ChatSession {
    type Result = ();

    fn handle(&mut self, _msg: WriterDone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
