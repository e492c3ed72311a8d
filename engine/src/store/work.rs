//! The records of the support team's work on escalations: who may log in to the inbox (users
//! and their API tokens), and what happened to an escalation besides intake (internal notes,
//! agent replies, reassignments, SLA breaches). They live in the store, next to the
//! escalations, because they must survive restarts and be erased together with the
//! conversation they are about (`forget`, retention).
//!
//! Passwords and tokens are never stored: a user carries an argon2 PHC string, a token is
//! stored as the SHA-256 digest of its text (tokens are long random strings, so a fast hash is
//! enough; a password is short and guessable, so it gets the slow one). Hashing happens in the
//! caller, so the store never sees a secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::Priority;

/// What a user may do in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and works the escalations of their own teams only.
    Agent,
    /// Sees and works every team's escalations.
    Lead,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Lead => "lead",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "lead" => Ok(Role::Lead),
            _ => Err(format!("unknown role `{s}`; expected agent or lead")),
        }
    }
}

/// A person who logs in to the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The key: unique, as typed at the login form.
    pub login: String,
    /// The name colleagues see on claims, replies and notes.
    pub name: String,
    pub role: Role,
    /// The teams whose queues an agent works (rulebook team ids).
    pub teams: Vec<String>,
    /// An argon2 PHC string (`$argon2id$v=19$…`); never a password.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// Whether this user may see and act on escalations of `team`.
    pub fn may_work(&self, team: &str) -> bool {
        self.role == Role::Lead || self.teams.iter().any(|t| t == team)
    }
}

/// An internal note: for colleagues, never sent to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub author: String,
    pub text: String,
}

/// A reply an agent sent from the inbox; the text is in the outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    pub at: DateTime<Utc>,
    pub author: String,
    pub outbox: u64,
}

/// One SLA breach and the step up the chain it caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreach {
    pub escalation: u64,
    /// The deadline that passed. The breach applies only while it is still the escalation's
    /// deadline, which is what makes handling a breach idempotent across restarts.
    pub deadline: DateTime<Utc>,
    pub from_team: String,
    /// The team that takes over (the same team when the chain has ended).
    pub to_team: String,
    pub from_priority: Priority,
    pub to_priority: Priority,
    /// The next deadline, from `to_team`'s SLA for `to_priority`.
    pub next_deadline: Option<DateTime<Utc>>,
    /// When the breach was handled.
    pub at: DateTime<Utc>,
}

/// Everything the inbox added to one escalation, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationWork {
    pub notes: Vec<Note>,
    pub replies: Vec<AgentReply>,
    pub breaches: Vec<SlaBreach>,
    /// When an agent first replied: the first human response, which stops the SLA clock.
    pub first_response_at: Option<DateTime<Utc>>,
}
