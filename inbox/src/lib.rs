//! The support team's inbox: where escalations are worked. Agents and leads log in, see their
//! teams' queues with counts, age, SLA countdown and load, open an escalation with its whole
//! context (the conversation, internal notes, category, topics, reasons, the rule that
//! escalated it and the rulebook version, and an explain panel with every step of each
//! message's decision) and claim, reply, note, reassign, resolve or hand it back to the bot.
//! Leads also turn the service's crisis switch. The same actions are a JSON REST API under
//! `/api/v1/escalations`. Beside the web side run the SLA timer, which walks an escalation up
//! its team's chain when nobody answered in time, and the notifier, which tells a team's own
//! channel.
//!
//! It is its own crate, outside the engine, because it is a web application with sessions and
//! passwords; the engine only gains the records it needs in the store.
//!
//! # Layout
//!
//! - [`auth`]: passwords, API tokens, sessions, CSRF, the login rate limit.
//! - [`actions`]: every action once, with its access check, audit and side effects; both the
//!   pages and the API call these, so the two can never disagree.
//! - [`pages`]: the server-rendered HTML (maud templates; no JS framework, one small script for
//!   live updates, notifications, shortcuts and canned replies).
//! - [`text`]: every word of the pages, in Dutch and English.
//! - [`api`]: the JSON REST API.
//! - [`explain`]: the explain panel of an escalation (every step of each message's decision).
//! - [`kept`]: an action just refused, kept for the page the browser is sent back to.
//! - [`CrisisSwitch`]: how the leads' crisis switch reaches the running service.
//! - [`sla`]: the SLA timer and the chain.
//! - [`notify`]: notifications to a team's webhook, Telegram group or Discord channel.

pub mod actions;
pub mod api;
pub mod auth;
pub mod explain;
pub mod kept;
pub mod notify;
pub mod pages;
pub mod sla;
pub mod text;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use chrono::Duration;
use tokio::sync::broadcast;
use webcare_adapters::gateway::Gateway;
use webcare_engine::Rulebook;

use crate::auth::{LoginLimiter, Sessions};
use crate::kept::KeptStore;
use crate::notify::Notifier;

/// The inbox's settings; the runtime form of `[inbox]` in `webcare.toml`.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// Mark the session cookie `Secure` (on whenever a TLS proxy is in front).
    pub secure_cookies: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// Wrong passwords allowed per login and per address within `login_window`.
    pub login_failures: usize,
    pub login_window: Duration,
    /// Rows per team on the queue page (the counts always cover all).
    pub page_rows: usize,
    /// The approved WhatsApp template an agent's reply after the 24-hour window goes out as
    /// (`[meta] reply_template`); without one such a reply is refused in the reply form.
    pub reply_template: Option<String>,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            secure_cookies: false,
            session_ttl: Duration::hours(10),
            login_failures: 5,
            login_window: Duration::minutes(15),
            page_rows: 200,
            reply_template: None,
        }
    }
}

/// The running service's crisis switch, as the inbox reaches it. `webcare run` hands the inbox
/// the same switch its admin API turns (`src/governance.rs`), so a lead's click in the inbox,
/// `POST /api/v1/crisis` and `webcare crisis` are one code path with one audit entry and one
/// log line; the inbox only adds that a lead, and no agent, may use it.
pub trait CrisisSwitch: Send + Sync {
    /// Sets the switch (`None`: follow the rulebook's `crisis_mode`) as `actor`, audited;
    /// resolves to whether crisis mode is on now.
    fn set<'a>(
        &'a self,
        on: Option<bool>,
        actor: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// The inbox's shared state; cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Gateway,
    config: InboxConfig,
    sessions: Sessions,
    limiter: LoginLimiter,
    /// Something changed (an action, a breach): open pages refresh (SSE).
    changes: broadcast::Sender<()>,
    notifier: Option<Notifier>,
    /// Set once by the service; without it the crisis page shows the state but cannot switch.
    crisis: OnceLock<Arc<dyn CrisisSwitch>>,
    /// The last older rulebook version compiled for an explanation.
    explain_cache: Arc<Mutex<Option<Arc<Rulebook>>>>,
    /// Actions just refused, per session and escalation, for the page the refusal redirects
    /// to (in the store of several instances: the redirect may reach another one).
    kept: KeptStore,
}

impl Inbox {
    pub fn new(gateway: Gateway, config: InboxConfig, notifier: Option<Notifier>) -> Self {
        // Several instances on one PostgreSQL: sessions and login counts in the database, and
        // the changes another instance made refresh the pages open here (see `changed`).
        let cluster = gateway.runtime().store().cluster();
        let limiter = LoginLimiter::new(config.login_failures, config.login_window)
            .shared_by(cluster.clone());
        let (changes, _) = broadcast::channel(64);
        let sessions = match &cluster {
            Some(cluster) => {
                let local = changes.clone();
                cluster.subscribe(Box::new(move |received| {
                    use webcare_engine::cluster::Signal;
                    let news = matches!(
                        received.signal,
                        Signal::Inbox { .. } | Signal::Access { .. } | Signal::Resync
                    );
                    if news && !received.own {
                        let _ = local.send(());
                    }
                }));
                Sessions::shared(Arc::clone(cluster))
            }
            None => Sessions::default(),
        };
        Inbox {
            inner: Arc::new(Inner {
                gateway,
                config,
                sessions,
                limiter,
                changes,
                notifier,
                crisis: OnceLock::new(),
                explain_cache: Arc::default(),
                kept: KeptStore::new(cluster),
            }),
        }
    }

    /// Connects the leads' crisis switch to the service (once; later calls are ignored).
    pub fn with_crisis_switch(self, switch: Arc<dyn CrisisSwitch>) -> Self {
        let _ = self.inner.crisis.set(switch);
        self
    }

    pub fn crisis_switch(&self) -> Option<&Arc<dyn CrisisSwitch>> {
        self.inner.crisis.get()
    }

    pub fn gateway(&self) -> &Gateway {
        &self.inner.gateway
    }

    pub fn config(&self) -> &InboxConfig {
        &self.inner.config
    }

    pub fn notifier(&self) -> Option<&Notifier> {
        self.inner.notifier.as_ref()
    }

    /// Tells `escalation`'s team, if it has a channel, that `event` happened; the notification
    /// names the category of the message that opened the escalation. Never waits for delivery.
    pub async fn notify(
        &self,
        event: notify::Event,
        escalation: &webcare_engine::store::Escalation,
        rulebook: &webcare_engine::Rulebook,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let Some(notifier) = self.notifier() else {
            return;
        };
        if !notifier.covers(&escalation.team) {
            return;
        }
        let category = match escalation.messages.first() {
            Some(first) => {
                let (channel, first) = (escalation.channel, first.clone());
                match self
                    .gateway()
                    .store(move |s| s.message(channel, &first))
                    .await
                {
                    Ok(message) => message.map(|m| m.decision.diagnostics.category.as_str()),
                    Err(error) => {
                        // The notification still goes out, without the category.
                        tracing::warn!(escalation = escalation.id, %error, "notify: cannot read the opening message");
                        None
                    }
                }
            }
            None => None,
        };
        notifier.send(event, escalation, category, rulebook, now);
    }

    /// Tells open pages that something changed: here at once, and on the other instances of
    /// a shared store through a signal (an agent's browser may be on any of them).
    pub fn changed(&self) {
        self.changed_about(0);
    }

    /// [`Inbox::changed`] for a change of escalation `escalation` (`0`: not one), which the
    /// signal to the other instances names.
    pub fn changed_about(&self, escalation: u64) {
        let _ = self.inner.changes.send(());
        if let Some(cluster) = self.gateway().runtime().store().cluster() {
            let publish = move || {
                let signal = webcare_engine::cluster::Signal::Inbox { escalation };
                if let Err(error) = cluster.publish(&signal) {
                    tracing::warn!(%error, "inbox: cannot tell the other instances of a change");
                }
            };
            // A database call: never on a runtime thread, and the caller does not wait.
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn_blocking(publish)),
                Err(_) => publish(),
            }
        }
    }

    pub(crate) fn kept(&self) -> &KeptStore {
        &self.inner.kept
    }

    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.inner.changes.subscribe()
    }

    /// Whether `headers` carry a live inbox session or a valid API token (any role): for other
    /// pages that only people of the organisation may see, such as the dashboard.
    pub async fn authenticate(&self, headers: &axum::http::HeaderMap) -> bool {
        if pages::session_of(self, headers).await.is_some() {
            return true;
        }
        api::token_user(self, headers).await
    }

    /// The pages under `/inbox` and the API under `/api/v1/escalations`.
    pub fn routes(&self) -> Router {
        pages::routes(self.clone()).merge(api::routes(self.clone()))
    }
}
