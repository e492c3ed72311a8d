//! The one async door into the engine that every adapter uses. It exists because the engine is
//! synchronous on purpose (intake waits for a durable commit) while the adapters live on tokio:
//! the gateway runs the blocking work on tokio's blocking pool, so no adapter ever blocks a
//! runtime thread, and after a message that queued a reply it wakes the outbox worker, so
//! replies leave at once instead of at the next poll.
//!
//! Time comes from one injected [`Clock`], so a test can run adapters, intake and the outbox on
//! a virtual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use webcare_engine::store::IntakeReceipt;
use webcare_engine::{CaseError, ChannelKind, Inbound, Runtime, Store, StoreError};

/// Where "now" comes from: the engine's [`webcare_engine::Clock`], the system clock in
/// production and a `ManualClock` (or any `Fn() -> DateTime<Utc>`) in tests.
pub type Clock = webcare_engine::SharedClock;

/// Why the gateway could not take a message in or run a store call.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule of the case refused the change (claimed by somebody else, already sent).
    #[error(transparent)]
    Case(CaseError),
    /// The blocking task did not finish: it panicked, or the service is shutting down.
    #[error("the engine task stopped before it finished: {0}")]
    Stopped(String),
}

/// Cheap to clone: every adapter and handler holds one.
#[derive(Clone)]
pub struct Gateway {
    runtime: Arc<Runtime>,
    outbox: Arc<Notify>,
    /// Fired when a message opened or joined an escalation, so the inbox's SLA timer tells
    /// the team at once instead of at its next poll.
    escalations: Arc<Notify>,
    /// Per channel (in `ChannelKind::ALL` order): whether the outbox worker sends its replies.
    /// A reply the worker would not send anyway wakes nobody, so a busy channel without
    /// outbound delivery (the HTTP channel without a callback) costs the worker nothing.
    sends: Arc<[AtomicBool; ChannelKind::ALL.len()]>,
    clock: Clock,
}

impl Gateway {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Gateway {
            runtime,
            outbox: Arc::new(Notify::new()),
            escalations: Arc::new(Notify::new()),
            sends: Arc::new(std::array::from_fn(|_| AtomicBool::new(false))),
            clock: Arc::new(Utc::now),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The signal the outbox worker waits on.
    pub fn outbox_signal(&self) -> &Arc<Notify> {
        &self.outbox
    }

    /// The signal that an escalation opened or grew (a permit is kept while nobody waits, so
    /// one is never missed; several may fold into one wake-up).
    pub fn escalation_signal(&self) -> &Arc<Notify> {
        &self.escalations
    }

    /// Marks `channel` as one whose replies the outbox worker sends (it calls this when an
    /// adapter registers).
    pub fn sends_replies_on(&self, channel: ChannelKind) {
        if let Some(flag) = self.sends.get(channel_index(channel)) {
            flag.store(true, Ordering::Release);
        }
    }

    fn sends(&self, channel: ChannelKind) -> bool {
        self.sends
            .get(channel_index(channel))
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }

    /// Tells the outbox worker that a reply may be due now (a `Notify` permit is kept when the
    /// worker is busy, so a wake-up is never lost).
    pub fn wake_outbox(&self) {
        self.outbox.notify_one();
    }

    /// Takes one message in durably (see `webcare_engine::intake`) and wakes the outbox when it
    /// queued a reply. Acknowledge the platform only after this returns `Ok`.
    pub async fn accept(&self, message: Inbound) -> Result<IntakeReceipt, GatewayError> {
        self.take_in(message, false).await
    }

    /// Like [`Gateway::accept`] for a delivery whose response carries the reply: the reply is
    /// stored as sent in the intake transaction, so no later configuration can send it again.
    pub async fn accept_inline(&self, message: Inbound) -> Result<IntakeReceipt, GatewayError> {
        self.take_in(message, true).await
    }

    async fn take_in(&self, message: Inbound, inline: bool) -> Result<IntakeReceipt, GatewayError> {
        let runtime = Arc::clone(&self.runtime);
        let now = self.now();
        let channel = message.channel;
        let receipt = tokio::task::spawn_blocking(move || match inline {
            true => runtime.accept_inline(message, now),
            false => runtime.accept(message, now),
        })
        .await
        .map_err(|e| GatewayError::Stopped(e.to_string()))??;
        if receipt.outbox.is_some() && self.sends(channel) {
            self.wake_outbox();
        }
        if let Some(escalation) = receipt.escalation.filter(|_| !receipt.duplicate) {
            self.escalations.notify_one();
            // Several instances: the inbox pages open elsewhere, and the instance whose SLA
            // timer tells the team, hear of it too.
            if let Some(cluster) = self.runtime.store().cluster() {
                let signal = webcare_engine::cluster::Signal::Inbox { escalation };
                drop(tokio::task::spawn_blocking(move || {
                    if let Err(error) = cluster.publish(&signal) {
                        tracing::warn!(%error, "cannot tell the other instances of an escalation");
                    }
                }));
            }
        }
        Ok(receipt)
    }

    /// Runs one store call on the blocking pool.
    pub async fn store<R, E, F>(&self, f: F) -> Result<R, GatewayError>
    where
        F: FnOnce(&dyn Store) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: Into<GatewayError> + Send + 'static,
    {
        let runtime = Arc::clone(&self.runtime);
        let result = tokio::task::spawn_blocking(move || f(runtime.store().as_ref()))
            .await
            .map_err(|e| GatewayError::Stopped(e.to_string()))?
            .map_err(Into::into)?;
        Ok(result)
    }
}

/// A storage failure inside a case change stays a storage failure.
impl From<CaseError> for GatewayError {
    fn from(error: CaseError) -> Self {
        match error {
            CaseError::Store(error) => GatewayError::Store(error),
            conflict => GatewayError::Case(conflict),
        }
    }
}

fn channel_index(channel: ChannelKind) -> usize {
    ChannelKind::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or_default()
}
