//! The running service's shared core: the rulebook in force, the store, and the crisis switch.
//! Every adapter and every web handler holds one `Arc<Runtime>` and nothing else of the engine.
//!
//! The rulebook sits behind an [`ArcSwap`]: a message takes a snapshot once and is decided
//! entirely by that version, while a reload swaps in a new, fully validated rulebook atomically.
//! Reading it is a lock-free pointer load, so the per-message path takes no lock.
//!
//! The channel modes and the shadow rulebook are set once when the service starts (a change
//! of either is a restart: both decide what a pilot measures, which should stay stable over a
//! measurement window).
//!
//! The runtime also remembers whether intake can write: a message the store refused (a full
//! disk, PostgreSQL down) marks it failing, the next stored message or a successful
//! [`Runtime::intake_health`] probe marks it healthy again, so `/healthz` tells a load balancer
//! the truth and recovers by itself.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::intake::Intake;
use crate::message::{ChannelKind, Inbound};
use crate::metrics::Metrics;
use crate::mode::{ChannelModes, Mode};
use crate::rulebook::Rulebook;
use crate::store::{IntakeReceipt, Store, StoreError};

const CRISIS_FROM_RULEBOOK: u8 = 0;
const CRISIS_OFF: u8 = 1;
const CRISIS_ON: u8 = 2;

pub struct Runtime {
    rulebook: ArcSwap<Rulebook>,
    store: Arc<dyn Store>,
    crisis: AtomicU8,
    metrics: Metrics,
    modes: ChannelModes,
    shadow: Option<Arc<Rulebook>>,
    /// Since when, and why, intake cannot write; `None` while it can.
    intake_failure: Mutex<Option<IntakeFailure>>,
}

/// Intake could not store a message: since when (the first failure in a row), and the last
/// reason the store gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeFailure {
    pub since: DateTime<Utc>,
    pub reason: String,
}

impl Runtime {
    pub fn new(rulebook: Rulebook, store: Arc<dyn Store>) -> Self {
        Runtime {
            rulebook: ArcSwap::from_pointee(rulebook),
            store,
            crisis: AtomicU8::new(CRISIS_FROM_RULEBOOK),
            metrics: Metrics::default(),
            modes: ChannelModes::default(),
            shadow: None,
            intake_failure: Mutex::new(None),
        }
    }

    /// Sets the mode of every channel (all `live` unless set).
    pub fn with_modes(mut self, modes: ChannelModes) -> Self {
        self.modes = modes;
        self
    }

    /// A candidate rulebook (already compiled, so valid) that decides every message beside the
    /// one in force; its decisions are stored and never acted on.
    pub fn with_shadow(mut self, shadow: Rulebook) -> Self {
        self.shadow = Some(Arc::new(shadow));
        self
    }

    /// The mode of `channel`.
    pub fn mode(&self, channel: ChannelKind) -> Mode {
        self.modes.get(channel)
    }

    /// The shadow rulebook, if one runs.
    pub fn shadow(&self) -> Option<&Arc<Rulebook>> {
        self.shadow.as_ref()
    }

    /// The rulebook in force now; hold the snapshot for the whole of one message.
    pub fn rulebook(&self) -> Arc<Rulebook> {
        self.rulebook.load_full()
    }

    /// Puts a new (already compiled, so already valid) rulebook in force and returns the old one.
    /// Messages being decided finish on the version they started with.
    pub fn replace_rulebook(&self, rulebook: Rulebook) -> Arc<Rulebook> {
        self.rulebook.swap(Arc::new(rulebook))
    }

    /// Keeps `rulebook`'s files in the store as activated by `actor`, then puts it in force:
    /// the store has every version before any message is decided with it, so every decision
    /// can be explained later with its exact rules. A store error leaves the old rulebook
    /// running. Blocking (a durable commit): call it from `spawn_blocking` in async code.
    pub fn activate(
        &self,
        rulebook: Rulebook,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Rulebook>, StoreError> {
        crate::store::save_rulebook(self.store.as_ref(), &rulebook, actor, now)?;
        Ok(self.replace_rulebook(rulebook))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The live counters `/metrics` exposes.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The crisis switch: `Some` overrides the rulebook's `crisis_mode`, `None` follows it.
    pub fn crisis_override(&self) -> Option<bool> {
        match self.crisis.load(Ordering::Acquire) {
            CRISIS_OFF => Some(false),
            CRISIS_ON => Some(true),
            _ => None,
        }
    }

    pub fn set_crisis_override(&self, on: Option<bool>) {
        let value = match on {
            None => CRISIS_FROM_RULEBOOK,
            Some(false) => CRISIS_OFF,
            Some(true) => CRISIS_ON,
        };
        self.crisis.store(value, Ordering::Release);
    }

    /// Whether crisis mode is on now, from the switch or else the rulebook.
    pub fn crisis_mode(&self) -> bool {
        self.crisis_override()
            .unwrap_or_else(|| self.rulebook.load().crisis_mode)
    }

    /// Takes one message in: dedupe, decide with the rulebook in force, store durably. Blocking
    /// (it waits for the durable commit): call it from `spawn_blocking` in async code.
    pub fn accept(
        &self,
        message: Inbound,
        now: DateTime<Utc>,
    ) -> Result<IntakeReceipt, StoreError> {
        self.take_in(message, now, false)
    }

    /// Like [`Runtime::accept`] for a delivery that carries its reply back itself (the HTTP
    /// channel without a callback): the reply is stored as sent in the intake transaction.
    pub fn accept_inline(
        &self,
        message: Inbound,
        now: DateTime<Utc>,
    ) -> Result<IntakeReceipt, StoreError> {
        self.take_in(message, now, true)
    }

    fn take_in(
        &self,
        message: Inbound,
        now: DateTime<Utc>,
        reply_inline: bool,
    ) -> Result<IntakeReceipt, StoreError> {
        let rulebook = self.rulebook();
        // Wall time on purpose, whatever clock `now` comes from: this is the latency the
        // process really had, for the histogram.
        let started = std::time::Instant::now();
        let mode = self.mode(message.channel);
        let result = Intake::new(&rulebook, self.store.as_ref())
            .with_crisis_mode(self.crisis_override())
            .with_mode(mode)
            .with_shadow(self.shadow.as_deref())
            .with_inline_reply(reply_inline)
            .accept(message, now);
        match &result {
            Ok(receipt) => {
                self.metrics
                    .record(&receipt.decision, receipt.duplicate, started.elapsed())
            }
            Err(_) => self.metrics.record_error(),
        }
        self.note_intake(now, result.as_ref().err());
        result
    }

    fn note_intake(&self, now: DateTime<Utc>, error: Option<&StoreError>) {
        // A poisoned lock only means another thread panicked while noting; the value is a
        // plain flag, still meaningful.
        let mut failure = self
            .intake_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *failure = error.map(|error| IntakeFailure {
            since: failure.as_ref().map_or(now, |f| f.since),
            reason: error.to_string(),
        });
    }

    /// The intake failure noted last, without touching the store (cheap).
    pub fn intake_failure(&self) -> Option<IntakeFailure> {
        self.intake_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether intake can write now. While the last intake failed, this probes the store with
    /// a small durable write and clears the failure when it succeeds, so health recovers
    /// without waiting for a message. Blocking when it probes: call it from `spawn_blocking`.
    pub fn intake_health(&self, now: DateTime<Utc>) -> Result<(), IntakeFailure> {
        if self.intake_failure().is_none() {
            return Ok(());
        }
        let probe = self.store.probe_write(now);
        self.note_intake(now, probe.as_ref().err());
        self.intake_failure().map_or(Ok(()), Err)
    }
}
