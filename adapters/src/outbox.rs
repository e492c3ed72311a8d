//! The outbox worker: the only code that sends replies. It exists so that every reply, the
//! bot's and later an agent's, leaves through one durable path: intake stores the reply in the
//! outbox in the same transaction as the decision, and this worker takes due entries from the
//! store, hands each to the [`Deliver`] of its channel, and records the outcome.
//!
//! Sending to a platform and recording it cannot be one atomic step, so the worker keeps the
//! window between them as small as it can and lets platforms drop a repeat where they can:
//!
//! - each reply is recorded as sent right after its own send, and at most one reply per
//!   conversation is in flight;
//! - right before a send the store is asked whether this process may still send it
//!   ([`Store::outbox_take`]): on PostgreSQL another instance may have taken over a reply
//!   whose claim ran out while it waited in this worker's batch;
//! - a graceful stop starts no new send and waits for the ones in flight to be recorded, so it
//!   never repeats a reply; the replies it was handed and did not start it gives back
//!   ([`Store::outbox_release`]), so another instance need not wait for their claims to run out;
//! - only a crash (SIGKILL, power) between a send and its record sends that reply again, once,
//!   when the outbox is read next. The HTTP callback carries the reply id as `Idempotency-Key`
//!   and Discord gets it as the message's `nonce` with `enforce_nonce`, so both drop the
//!   repeat; Telegram has nothing of the kind.
//!
//! Outcomes, and why:
//!
//! - `Ok`: sent.
//! - [`DeliveryError::RateLimited`]: the platform said when to come back; the entry waits that
//!   long and the attempt is not counted, so obeying a rate limit never kills a reply.
//! - [`DeliveryError::Temporary`]: retried with exponential backoff (base × 2ⁿ⁻¹, at most the
//!   maximum, plus up to 20 % jitter so a platform outage does not end in a retry storm), until
//!   `max_attempts`.
//! - [`DeliveryError::Permanent`], or the last attempt failed: dead, and in the same transaction
//!   an escalation opens for the rulebook's default team ("reply could not be delivered: …"):
//!   an unanswered customer is the worst outcome, so a human must know.
//!
//! Replies to one conversation reach the platform in the order they were queued, also across
//! retries: the store hands out only the oldest pending reply of each conversation (so a batch
//! delivered concurrently never holds two of one conversation), and a round that finished a
//! reply looks again at once for the next.
//!
//! Only channels with a registered adapter are asked for ([`Store::due_outbox_for`]); replies
//! for a channel whose adapter is not running stay pending until it runs again.
//!
//! The worker wakes on the gateway's `Notify` (intake queued a reply), at the earliest retry it
//! scheduled, and at a slow poll for entries another process queued. When the shutdown future
//! completes it starts no new delivery, not even within a batch, and returns once the
//! deliveries in flight are recorded (each takes at most `send_timeout`).
//!
//! [`Store::due_outbox_for`]: webcare_engine::Store::due_outbox_for
//! [`Store::outbox_take`]: webcare_engine::Store::outbox_take
//! [`Store::outbox_release`]: webcare_engine::Store::outbox_release

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{FutureExt, StreamExt};
use webcare_engine::CaseError;
use webcare_engine::ChannelKind;
use webcare_engine::store::OutboxEntry;

use crate::delivery::{Deliver, DeliveryError};
use crate::gateway::{Gateway, GatewayError};

/// How much longer than `send_timeout` a reply is held for the send: time to record it.
pub const HOLD_MARGIN: Duration = Duration::from_secs(5);

/// How the worker retries; the runtime form of `[outbox]` in `webcare.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// The wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Failed attempts (rate limits not counted) after which a reply is given up.
    pub max_attempts: u32,
    /// Entries taken from the store per round.
    pub batch: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// One delivery may take this long before it counts as a temporary failure.
    pub send_timeout: Duration,
    /// Look for due entries at least this often, also without a wake-up (entries queued by
    /// another process, retries scheduled before a restart).
    pub poll: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            max_attempts: 5,
            batch: 256,
            concurrency: 32,
            send_timeout: Duration::from_secs(15),
            poll: Duration::from_secs(5),
        }
    }
}

impl OutboxConfig {
    /// The wait before attempt `failures + 1`, `failures >= 1`, with the entry's jitter.
    pub fn backoff(&self, failures: u32, entry_id: u64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let base = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        // Deterministic per entry (tests can bound it) yet spread across entries.
        let jitter_permille = entry_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54; // 0..1023
        let jitter = base.mul_f64((jitter_permille.min(1000) as f64) / 5000.0);
        (base + jitter).min(self.max_delay)
    }
}

/// What happened to one entry; returned by [`OutboxWorker::deliver_one`] for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Rate limited; not counted as an attempt.
    Postponed {
        until: DateTime<Utc>,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Given up; escalation `escalation` opened for the default team.
    Dead {
        escalation: u64,
        error: String,
    },
    /// The store refused to record the outcome (the entry was finished or erased meanwhile, or
    /// a store error); logged.
    NotRecorded(String),
}

/// See the module docs.
pub struct OutboxWorker {
    gateway: Gateway,
    config: OutboxConfig,
    routes: HashMap<ChannelKind, Arc<dyn Deliver>>,
    /// Retry times this worker scheduled; the earliest decides when it wakes next.
    retries: Mutex<BinaryHeap<Reverse<DateTime<Utc>>>>,
}

impl OutboxWorker {
    pub fn new(gateway: Gateway, config: OutboxConfig) -> Self {
        OutboxWorker {
            gateway,
            config,
            routes: HashMap::new(),
            retries: Mutex::new(BinaryHeap::new()),
        }
    }

    /// Sends the replies of `channel` through `deliver`. One adapter per channel; a second
    /// registration replaces the first.
    pub fn register(&mut self, channel: ChannelKind, deliver: Arc<dyn Deliver>) {
        self.gateway.sends_replies_on(channel);
        self.routes.insert(channel, deliver);
    }

    /// The delivery registered for `channel`, for others that send into the same platform
    /// (the inbox's team notifications).
    pub fn deliver_for(&self, channel: ChannelKind) -> Option<Arc<dyn Deliver>> {
        self.routes.get(&channel).cloned()
    }

    /// The channels whose replies this worker sends.
    pub fn channels(&self) -> Vec<ChannelKind> {
        let mut channels: Vec<ChannelKind> = self.routes.keys().copied().collect();
        channels.sort_by_key(|c| c.as_str());
        channels
    }

    /// Runs until `shutdown` completes; then finishes the deliveries in flight and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let channels = self.channels();
        let mut shutdown = std::pin::pin!(shutdown);
        if channels.is_empty() {
            shutdown.await;
            return;
        }
        let signal = Arc::clone(self.gateway.outbox_signal());
        loop {
            // Drain everything due, batch by batch; checking for shutdown between batches only,
            // so a batch that started is finished.
            loop {
                if (&mut shutdown).now_or_never().is_some() {
                    return;
                }
                match self.round(&channels, &mut shutdown).await {
                    // Stopped within the batch; the shutdown future is spent.
                    Ok(None) => return,
                    // A full batch, or one that finished replies (the next of their
                    // conversations may now be due): look again at once.
                    Ok(Some((taken, finished))) if taken >= self.config.batch || finished > 0 => {
                        continue;
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::error!(error = %error, "outbox: cannot read due replies; retrying in 1 s");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = &mut shutdown => return,
                        }
                    }
                }
            }
            let wait = self.next_wake();
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown => return,
            }
        }
    }

    /// How long to sleep: until the earliest retry this worker scheduled, at most `poll`.
    fn next_wake(&self) -> Duration {
        let now = self.gateway.now();
        let mut retries = self.retries.lock().unwrap_or_else(|p| p.into_inner());
        while retries.peek().is_some_and(|Reverse(at)| *at <= now) {
            retries.pop();
        }
        match retries.peek() {
            // A retry that just became due: look again at once (1 ms, so clock rounding
            // between the heap and the store cannot make a busy loop).
            Some(Reverse(at)) => (*at - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_millis(1))
                .min(self.config.poll),
            None => self.config.poll,
        }
    }

    /// One batch: take due entries and deliver them, `concurrency` at a time. The store gives at
    /// most one reply per conversation, so delivering them concurrently keeps each
    /// conversation's order. Returns how many entries it took, and how many of them are
    /// finished (sent or given up).
    /// A stop (`shutdown` completing) lets the deliveries in flight finish and starts no more:
    /// the rest stay pending, for the next start or another instance once the claim runs out.
    /// `None` when it stopped.
    async fn round(
        &self,
        channels: &[ChannelKind],
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<Option<(usize, usize)>, GatewayError> {
        let now = self.gateway.now();
        let limit = self.config.batch;
        let channels = channels.to_vec();
        let due = self
            .gateway
            .store(move |store| store.due_outbox_for(now, &channels, limit))
            .await?;
        let n = due.len();
        let finished = AtomicUsize::new(0);
        let stopping = AtomicBool::new(false);
        let unsent = Mutex::new(Vec::new());
        let deliveries = futures_util::stream::iter(due).for_each_concurrent(
            self.config.concurrency.max(1),
            |entry| {
                let (finished, stopping, unsent) = (&finished, &stopping, &unsent);
                async move {
                    if stopping.load(Ordering::Acquire) {
                        if let Ok(mut unsent) = unsent.lock() {
                            unsent.push(entry.id);
                        }
                        return;
                    }
                    if let Outcome::Sent | Outcome::Dead { .. } = self.deliver_one(entry).await {
                        finished.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
        );
        let mut deliveries = std::pin::pin!(deliveries);
        tokio::select! {
            () = &mut deliveries => Ok(Some((n, finished.load(Ordering::Relaxed)))),
            () = shutdown => {
                stopping.store(true, Ordering::Release);
                deliveries.await;
                // Given back, so another instance need not wait for the claims to run out.
                let ids = std::mem::take(&mut *unsent.lock().unwrap_or_else(|p| p.into_inner()));
                if !ids.is_empty()
                    && let Err(error) = self.gateway.store(move |s| s.outbox_release(&ids)).await
                {
                    tracing::warn!(error = %error, "outbox: cannot give back the replies not sent; another instance sends them when their claims run out");
                }
                Ok(None)
            }
        }
    }

    /// Delivers one entry and records the outcome in the store.
    pub async fn deliver_one(&self, entry: OutboxEntry) -> Outcome {
        let Some(deliver) = self.routes.get(&entry.channel) else {
            return Outcome::NotRecorded(format!("no adapter for {}", entry.channel));
        };
        // Held for the whole send, so no other instance starts the same one meanwhile.
        let (id, hold) = (entry.id, self.config.send_timeout + HOLD_MARGIN);
        match self.gateway.store(move |s| s.outbox_take(id, hold)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(outbox = id, "outbox: another instance took this reply over");
                return Outcome::NotRecorded("taken over by another instance".into());
            }
            Err(error) => {
                tracing::error!(outbox = id, error = %error, "outbox: cannot take the reply; it stays pending");
                return Outcome::NotRecorded(error.to_string());
            }
        }
        let sent =
            match tokio::time::timeout(self.config.send_timeout, deliver.deliver(&entry)).await {
                Ok(result) => result,
                Err(_) => Err(DeliveryError::Temporary(format!(
                    "no answer from {} within {} s",
                    entry.channel,
                    self.config.send_timeout.as_secs_f64()
                ))),
            };
        let now = self.gateway.now();
        let outcome = match sent {
            Ok(()) => self
                .gateway
                .store(move |s| s.outbox_sent(id, now))
                .await
                .map(|_| Outcome::Sent),
            Err(DeliveryError::RateLimited { retry_after }) => {
                let until = now
                    + chrono::Duration::from_std(retry_after)
                        .unwrap_or_else(|_| chrono::Duration::days(1));
                let reason = DeliveryError::RateLimited { retry_after }.to_string();
                self.schedule(until);
                self.gateway
                    .store(move |s| s.outbox_postponed(id, &reason, until, now))
                    .await
                    .map(|_| Outcome::Postponed { until })
            }
            Err(DeliveryError::Temporary(error))
                if entry.attempts + 1 < self.config.max_attempts =>
            {
                let wait = self.config.backoff(entry.attempts + 1, id);
                let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                self.schedule(at);
                let message = error.clone();
                self.gateway
                    .store(move |s| s.outbox_failed(id, &message, Some(at), now))
                    .await
                    .map(|_| Outcome::Retry { at, error })
            }
            Err(DeliveryError::Temporary(error) | DeliveryError::Permanent(error)) => {
                self.dead_letter(&entry, error, now).await
            }
        };
        match outcome {
            Ok(outcome) => {
                log(&entry, &outcome);
                outcome
            }
            Err(error) => {
                let finished = matches!(
                    error,
                    GatewayError::Case(
                        CaseError::OutboxFinished(_) | CaseError::NoSuchOutboxEntry(_)
                    )
                );
                if finished {
                    tracing::debug!(outbox = id, error = %error, "outbox: entry finished or erased meanwhile");
                } else {
                    tracing::error!(outbox = id, error = %error, "outbox: cannot record the delivery outcome");
                }
                Outcome::NotRecorded(error.to_string())
            }
        }
    }

    async fn dead_letter(
        &self,
        entry: &OutboxEntry,
        error: String,
        now: DateTime<Utc>,
    ) -> Result<Outcome, GatewayError> {
        let (team, deadline) = dead_letter_route(&self.gateway, now);
        let id = entry.id;
        let message = error.clone();
        let dead = self
            .gateway
            .store(move |s| s.outbox_dead_letter(id, &message, &team, deadline, now))
            .await?;
        Ok(Outcome::Dead {
            escalation: dead.escalation.id,
            error,
        })
    }

    fn schedule(&self, at: DateTime<Utc>) {
        self.retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Reverse(at));
    }
}

/// Where a reply that could not be delivered goes: the rulebook's default team, with its SLA
/// deadline at high priority from `now`.
pub fn dead_letter_route(gateway: &Gateway, now: DateTime<Utc>) -> (String, Option<DateTime<Utc>>) {
    let rulebook = gateway.runtime().rulebook();
    let team = rulebook.default_team.clone();
    let teams = rulebook.teams();
    let deadline = teams
        .get(&team)
        .and_then(|t| t.sla_deadline(teams.local(now), webcare_engine::Priority::High))
        .map(|due| due.with_timezone(&Utc));
    (team, deadline)
}

fn log(entry: &OutboxEntry, outcome: &Outcome) {
    let channel = entry.channel.as_str();
    match outcome {
        Outcome::Sent => {
            tracing::debug!(outbox = entry.id, channel, "outbox: reply sent");
        }
        Outcome::Postponed { until } => {
            tracing::info!(outbox = entry.id, channel, until = %until, "outbox: rate limited, waiting");
        }
        Outcome::Retry { at, error } => {
            tracing::warn!(outbox = entry.id, channel, attempt = entry.attempts + 1, retry_at = %at, error = %error, "outbox: delivery failed, will retry");
        }
        Outcome::Dead { escalation, error } => {
            tracing::error!(outbox = entry.id, channel, escalation, error = %error, "outbox: reply could not be delivered; escalated to the default team");
        }
        Outcome::NotRecorded(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_bounded_jitter() {
        let config = OutboxConfig {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            ..OutboxConfig::default()
        };
        for id in 0..50 {
            let first = config.backoff(1, id);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1200));
            let third = config.backoff(3, id);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_millis(4800));
            assert!(config.backoff(30, id) <= Duration::from_secs(10));
            assert_eq!(config.backoff(u32::MAX, id), config.backoff(40, id));
        }
    }
}
