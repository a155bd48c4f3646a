//! The node's subscription to `charla:events`: every event published by any
//! node's scripts, in one total order, parsed here and handed to the
//! registry. When the subscription drops (Redis restarted, network lost)
//! the registry is told, and the task subscribes again with backoff; the
//! registry then reads again what it holds, since events were missed.

use super::{EVENTS_CHANNEL, MAX_RECONNECT_DELAY, Seated};
use actix::{Message, Recipient};
use charla_protocol::{ChatMessage, Member, api};
use futures_util::StreamExt;
use redis::Client;
use serde::Deserialize;
use std::time::Duration;

/// One event from the channel.
#[derive(Debug, Deserialize, Message)]
#[rtype(result = "()")]
pub(crate) struct Event {
    /// Its number in the global event sequence.
    pub(crate) seq: u64,
    /// The node whose script published it.
    pub(crate) node: String,
    #[serde(flatten)]
    pub(crate) body: Body,
}

/// What happened.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Body {
    Message {
        message: ChatMessage,
    },
    Join {
        room: String,
        member: Seated,
        count: usize,
    },
    Rename {
        room: String,
        member: Seated,
        count: usize,
    },
    Leave {
        room: String,
        member: Seated,
        count: usize,
    },
    Typing {
        room: String,
        member: Member,
    },
    /// A ban was stored (rule 52): every node enforces it.
    Ban {
        ban: api::Ban,
    },
    /// A ban was lifted.
    Unban {
        id: String,
    },
    /// A member is to leave a room (rule 51): each node removes its own
    /// connections.
    Kick {
        room: String,
        member: String,
        reason: Option<String>,
    },
}

impl Body {
    /// The room the event is about.
    pub(crate) fn room(&self) -> &str {
        match self {
            Body::Message { message } => &message.room,
            Body::Join { room, .. }
            | Body::Rename { room, .. }
            | Body::Leave { room, .. }
            | Body::Typing { room, .. }
            | Body::Kick { room, .. } => room,
            Body::Ban { .. } | Body::Unban { .. } => "",
        }
    }
}

/// The subscription is up (true) or lost (false).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Subscribed(pub(crate) bool);

/// Subscribes and forwards events until the registry is gone, subscribing
/// again after every loss.
pub(crate) fn start(client: Client, events: Recipient<Event>, status: Recipient<Subscribed>) {
    actix_rt::spawn(async move {
        let mut delay = Duration::from_millis(50);
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(EVENTS_CHANNEL).await {
                    Ok(()) => {
                        delay = Duration::from_millis(50);
                        if status.try_send(Subscribed(true)).is_err() && !status.connected() {
                            return;
                        }
                        let mut stream = pubsub.into_on_message();
                        while let Some(message) = stream.next().await {
                            match serde_json::from_slice::<Event>(message.get_payload_bytes()) {
                                Ok(event) => events.do_send(event),
                                Err(error) => {
                                    tracing::error!(error = %error, "skipping an event that does not parse");
                                }
                            }
                        }
                        tracing::warn!("lost the Redis subscription; subscribing again");
                    }
                    Err(error) => tracing::warn!(error = %error, "cannot subscribe to Redis"),
                },
                Err(error) => {
                    tracing::warn!(error = %error, "cannot reach Redis for the subscription")
                }
            }
            if !status.connected() {
                return;
            }
            status.do_send(Subscribed(false));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    });
}
