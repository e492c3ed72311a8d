//! Several `webcare run` instances on one shared store: what they tell each other, who among
//! them runs what only one may run, and the little state a person's browser needs from
//! whichever instance it reaches. It exists because the embedded stores are opened by one
//! process, so everything below was process memory until now; on PostgreSQL the database is
//! the only coordinator (no second system), and this trait is how the service reaches it.
//!
//! - **Signals** ([`Signal`]): a change one instance makes that the others must act on within a
//!   second. The store announces its own durable changes in the same transaction (a rulebook
//!   activation, the crisis switch, a user's access), so an announcement is never lost between
//!   a commit and a send, and a change made by any process is announced. The inbox and the web
//!   chat announce what is only news ([`Cluster::publish`]). A signal says *what* changed, never
//!   the new value: the receiver reads the store, so a late or repeated signal is harmless, and
//!   a missed one is caught by the service's periodic re-check ([`Cluster::state`]). After the
//!   listener lost its connection it delivers [`Signal::Resync`]: re-read everything.
//! - **Leadership** ([`Cluster::campaign`]): Telegram long polling and the Discord gateway must
//!   run on exactly one instance (two pollers would steal each other's updates; two gateway
//!   sessions would take every message in twice). One instance holds a lock for a role, the
//!   others wait and take it over when the holder dies.
//! - **Inbox sessions and login limits** ([`SharedSession`], [`Cluster::limit_attempt`]): a
//!   browser behind a load balancer reaches any instance, so its session and the count of wrong
//!   passwords must be the same on all of them.
//! - **An inbox action just refused** ([`Cluster::keep`]): the browser is sent back to the
//!   escalation page, which may be served by another instance, and must still show why and
//!   the reply the agent wrote.
//!
//! [`Store::cluster`](crate::Store::cluster) returns `None` for the embedded backends: one
//! process, nothing to coordinate, and everything stays in memory as before.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// What changed. See the module docs: the receiver reads the new state from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// A rulebook version was put in force (its files are in the store).
    Rulebook { version: String },
    /// The crisis switch was set.
    Crisis,
    /// A user's access changed: removed, changed, API tokens revoked, or a session ended.
    Access { login: String },
    /// Something an open inbox page shows changed (an escalation, `0` when not one).
    Inbox { escalation: u64 },
    /// A reply went into a web chat conversation: the instance holding the visitor's socket
    /// pushes it.
    Webchat { outbox: u64, conversation: String },
    /// The listener was disconnected and is back: signals may have been missed.
    Resync,
}

/// A signal as it arrived, with whether this instance sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub signal: Signal,
    /// Sent by this instance (its own listener hears it too).
    pub own: bool,
}

/// What the periodic re-check compares with what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedState {
    /// The rulebook version activated last, by any instance.
    pub rulebook: Option<String>,
    /// The crisis switch as stored (`None`: follow the rulebook).
    pub crisis: Option<bool>,
}

/// One inbox session as the instances share it; the cookie itself is never stored, only its
/// SHA-256 (the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSession {
    pub login: String,
    pub csrf: String,
    pub expires: DateTime<Utc>,
    /// The user stamp at login (`webcare_inbox::auth::user_stamp`).
    pub stamp: [u8; 32],
}

/// Called with each signal on the listener's own thread: keep it short (hand it on).
pub type OnSignal = Box<dyn Fn(Received) + Send + Sync>;

/// Called with `true` when this instance became the leader of a role, `false` when it lost it.
pub type OnLeadership = Box<dyn Fn(bool) + Send + Sync>;

/// How the instances on one shared store coordinate; see the module docs. Every method may
/// block on the database: call them from a blocking thread.
pub trait Cluster: Send + Sync {
    /// This instance's name (unique per process and store).
    fn instance(&self) -> &str;

    /// Announces `signal` to every instance (this one included).
    fn publish(&self, signal: &Signal) -> Result<(), StoreError>;

    /// Calls `on` with every signal from now on, on a dedicated connection that reconnects by
    /// itself (then [`Signal::Resync`]).
    fn subscribe(&self, on: OnSignal);

    /// Campaigns for `role` on a connection of its own: returns whether this instance leads
    /// now, and calls `on` on every change after that, until the store is dropped. The
    /// holder's connection holds the lock; when its process dies the database ends the
    /// session and another instance takes over within [`LEADER_RETRY`] (plus the database's
    /// keepalive time when the holder's machine vanished without closing its connection).
    fn campaign(&self, role: &str, on: OnLeadership) -> Result<bool, StoreError>;

    /// The shared state the periodic re-check compares with what runs.
    fn state(&self) -> Result<SharedState, StoreError>;

    /// Stores a new session under the SHA-256 of its cookie.
    fn session_open(&self, digest: [u8; 32], session: &SharedSession) -> Result<(), StoreError>;

    /// The live session with that digest at `now`.
    fn session(
        &self,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<SharedSession>, StoreError>;

    /// Ends the session (logout, or a user that changed); announced as [`Signal::Access`].
    fn session_close(&self, digest: [u8; 32]) -> Result<(), StoreError>;

    /// Counts a login attempt against every key, unless one of them already has `max` within
    /// `window`: then nothing is counted and `Ok(Err(wait))` says how long. Check and count
    /// are one transaction under a lock per key, so attempts on two instances at once cannot
    /// both slip past the limit.
    fn limit_attempt(
        &self,
        keys: &[&str],
        now: DateTime<Utc>,
        max: usize,
        window: chrono::Duration,
    ) -> Result<Result<(), chrono::Duration>, StoreError>;

    /// How long an outbox claim of this instance lasts before another instance may take the
    /// reply over (its worker died); the default suits a send timeout of 15 s. Must stay longer
    /// than a delivery may take, or a slow reply could be sent twice.
    fn set_claim(&self, lease: Duration);

    /// Forgets every attempt of `key` (`all`), or only its latest (the attempt was no failure).
    fn limit_forget(&self, key: &str, all: bool) -> Result<(), StoreError>;

    /// Keeps `kept` (the inbox's account of an action just refused, with the agent's unsent
    /// text) for the session with cookie digest `session` on escalation `escalation` from
    /// `now` until `expires`, replacing what was kept there. It ends with the session.
    fn keep(
        &self,
        session: [u8; 32],
        escalation: u64,
        kept: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// What [`Cluster::keep`] kept there and has not expired at `now`.
    fn kept(
        &self,
        session: [u8; 32],
        escalation: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    /// Forgets what was kept there.
    fn forget_kept(&self, session: [u8; 32], escalation: u64) -> Result<(), StoreError>;
}

/// How often an instance that waits for a role tries to take it.
pub const LEADER_RETRY: Duration = Duration::from_secs(2);

/// The name the NOTIFY channel and the logs use.
pub const CHANNEL: &str = "webcare";
