//! How replies leave webcare. Every platform adapter implements [`Deliver`] for its channel; the
//! outbox worker takes due entries from the durable outbox and hands each to the adapter of its
//! channel, then records the outcome (sent, retry later, or dead) in the store. Adapters never
//! send replies on their own, so a reply survives a crash and is retried with backoff.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use webcare_engine::store::OutboxEntry;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a platform did not take a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The platform asked to wait (HTTP 429, Telegram `retry_after`, Discord rate limits).
    /// Retried after the wait without counting toward the dead-letter limit.
    #[error("rate limited; retry after {}s", retry_after.as_secs_f64())]
    RateLimited { retry_after: Duration },
    /// Worth retrying with backoff: network errors, 5xx.
    #[error("{0}")]
    Temporary(String),
    /// Will never work (chat deleted, bot blocked, 4xx other than 429): dead at once.
    #[error("{0}")]
    Permanent(String),
}

/// One platform's way of sending a reply into a conversation.
pub trait Deliver: Send + Sync {
    /// Sends `entry.text` into `entry.conversation`. Must not return `Ok` unless the platform
    /// accepted the message.
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>>;
}
