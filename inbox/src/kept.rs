//! An action just refused on an escalation page (a reply outside the customer service window,
//! an escalation a colleague claimed first, an empty note), kept for the page the refusal
//! redirects to: post/redirect/get, so reloading that page never sends the form again. It
//! keeps why (put in words when shown, so in the language the person reads then) and, for a
//! reply, the text they wrote, so they lose nothing.
//!
//! Behind a load balancer the redirect may reach another instance, so with a shared store it
//! is kept in the database ([`Cluster::keep`]); with an embedded store (one process) in memory.
//! Either way as the same JSON, keyed to the browser session and the escalation, and for
//! [`TTL`] at most: it holds the agent's unsent text, which is no record to keep. Until then
//! it stays until the person's next action on that escalation, so a reload still shows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webcare_engine::cluster::Cluster;

use crate::actions::ActionError;
use crate::auth::blocking;

/// How long a refusal and its text are kept.
pub const TTL: chrono::Duration = chrono::Duration::minutes(10);

/// More refusals in memory than this are dropped all at once: a bound, never reached by people.
const MAX_KEPT: usize = 10_000;

/// An action just refused on an escalation.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Kept {
    pub error: ActionError,
    pub text: String,
    /// Whether it was a reply (shown in the reply form) or another action (above the page).
    pub reply: bool,
}

/// In memory: the JSON and when it expires, by session digest and escalation.
type Memory = HashMap<([u8; 32], u64), (String, DateTime<Utc>)>;

/// Where refusals are kept: the shared store of several instances, or this process.
#[derive(Default)]
pub(crate) struct KeptStore {
    memory: Mutex<Memory>,
    shared: Option<Arc<dyn Cluster>>,
}

impl KeptStore {
    pub fn new(shared: Option<Arc<dyn Cluster>>) -> Self {
        KeptStore {
            shared,
            ..KeptStore::default()
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `kept` for session `session`'s next view of escalation `id`.
    pub fn keep(&self, session: [u8; 32], id: u64, kept: &Kept, now: DateTime<Utc>) {
        let json = match serde_json::to_string(kept) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, escalation = id, "inbox: cannot keep a refused action");
                return;
            }
        };
        let expires = now + TTL;
        if let Some(cluster) = &self.shared {
            // Should the database fail, the page still says why when it can work it out again
            // (the reply window); only the text is lost, as it was before it was shared.
            if let Err(error) = blocking(|| cluster.keep(session, id, &json, now, expires)) {
                tracing::error!(%error, escalation = id, "inbox: cannot keep a refused action");
            }
            return;
        }
        let mut memory = self.memory();
        memory.retain(|_, (_, until)| *until > now);
        if memory.len() >= MAX_KEPT {
            memory.clear();
        }
        memory.insert((session, id), (json, expires));
    }

    /// What was kept for session `session` on escalation `id`, unless it expired.
    pub fn kept(&self, session: [u8; 32], id: u64, now: DateTime<Utc>) -> Option<Kept> {
        let json = match &self.shared {
            Some(cluster) => match blocking(|| cluster.kept(session, id, now)) {
                Ok(json) => json?,
                Err(error) => {
                    tracing::warn!(%error, escalation = id, "inbox: cannot read a refused action");
                    return None;
                }
            },
            None => self
                .memory()
                .get(&(session, id))
                .filter(|(_, until)| *until > now)
                .map(|(json, _)| json.clone())?,
        };
        match serde_json::from_str(&json) {
            Ok(kept) => Some(kept),
            Err(error) => {
                // Kept by another version of webcare during an upgrade: the page without it.
                tracing::warn!(%error, escalation = id, "inbox: cannot read a refused action");
                None
            }
        }
    }

    pub fn forget(&self, session: [u8; 32], id: u64) {
        if let Some(cluster) = &self.shared {
            if let Err(error) = blocking(|| cluster.forget_kept(session, id)) {
                tracing::warn!(%error, escalation = id, "inbox: cannot forget a refused action");
            }
            return;
        }
        self.memory().remove(&(session, id));
    }
}
