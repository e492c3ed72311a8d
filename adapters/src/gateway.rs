//! The one async door into the engine that every adapter uses. It exists because the engine is
//! synchronous on purpose (intake waits for a durable commit) while the adapters live on tokio:
//! the gateway runs the blocking work on tokio's blocking pool, so no adapter ever blocks a
//! runtime thread, and after a message that queued a reply it wakes the outbox worker, so
//! replies leave at once instead of at the next poll.
//!
//! Time comes from one injected [`Clock`], so a test can run adapters, intake and the outbox on
//! a virtual clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use webcare_engine::store::IntakeReceipt;
use webcare_engine::{Inbound, Runtime, Store, StoreError};

/// Where "now" comes from: the engine's [`webcare_engine::Clock`], the system clock in
/// production and a `ManualClock` (or any `Fn() -> DateTime<Utc>`) in tests.
pub type Clock = webcare_engine::SharedClock;

/// Why the gateway could not take a message in or run a store call.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task did not finish: it panicked, or the service is shutting down.
    #[error("the engine task stopped before it finished: {0}")]
    Stopped(String),
}

/// Cheap to clone: every adapter and handler holds one.
#[derive(Clone)]
pub struct Gateway {
    runtime: Arc<Runtime>,
    outbox: Arc<Notify>,
    clock: Clock,
}

impl Gateway {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Gateway {
            runtime,
            outbox: Arc::new(Notify::new()),
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

    /// Tells the outbox worker that a reply may be due now (a `Notify` permit is kept when the
    /// worker is busy, so a wake-up is never lost).
    pub fn wake_outbox(&self) {
        self.outbox.notify_one();
    }

    /// Takes one message in durably (see `webcare_engine::intake`) and wakes the outbox when it
    /// queued a reply. Acknowledge the platform only after this returns `Ok`.
    pub async fn accept(&self, message: Inbound) -> Result<IntakeReceipt, GatewayError> {
        let runtime = Arc::clone(&self.runtime);
        let now = self.now();
        let receipt = tokio::task::spawn_blocking(move || runtime.accept(message, now))
            .await
            .map_err(|e| GatewayError::Stopped(e.to_string()))??;
        if receipt.outbox.is_some() {
            self.wake_outbox();
        }
        Ok(receipt)
    }

    /// Runs one store call on the blocking pool.
    pub async fn store<R, F>(&self, f: F) -> Result<R, GatewayError>
    where
        F: FnOnce(&dyn Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let runtime = Arc::clone(&self.runtime);
        let result = tokio::task::spawn_blocking(move || f(runtime.store().as_ref()))
            .await
            .map_err(|e| GatewayError::Stopped(e.to_string()))??;
        Ok(result)
    }
}
