//! The life of a case: what a decided message does to its conversation and escalation, and
//! every later step (claim, reply, note, reassign, SLA breach, dead letter, resolve, hand
//! back), as plain functions and types without I/O. It exists so a backend never holds a
//! business rule of its own: the store reads, calls the rule here and writes the result in one
//! transaction, and a new backend cannot get the rules subtly different. Each rule is tested
//! here without opening a database.
//!
//! # Layout
//!
//! - [`conversation`]: who owns a conversation, its counters, and the facts a decision reads.
//! - [`intake`]: what one decided message changes ([`IntakeEffects`]), by channel mode: each
//!   message to the team its decision names, joining, reopening or opening that team's case.
//! - [`state`]: [`CaseState`], what an escalation keeps besides its status: waiting on us, the
//!   first-response SLA, reopenings, the customer, the satisfaction answer.
//! - [`sla`]: [`SlaOutcome`], met or breached, one definition for the inbox and the report.
//! - [`satisfaction`]: when to ask a customer for a score, and what reply is one.
//! - [`escalation`]: the transitions of an escalation, each with its conflicts.
//! - [`outbox`]: a reply's way out: sent, failed, postponed, given up, and the order per
//!   conversation.
//! - [`window`]: the customer service window of WhatsApp, Messenger and Instagram: how a
//!   reply may go out after the customer's last message, for the Meta adapter and the inbox.
//! - [`history`]: the words of an escalation's history.
//! - [`error`]: [`CaseError`], the conflicts a person can run into.

pub mod conversation;
pub mod error;
pub mod escalation;
pub mod history;
pub mod intake;
pub mod outbox;
pub mod satisfaction;
pub mod sla;
pub mod state;
pub mod window;

pub use conversation::{ConversationFacts, ConversationState, Tally};
pub use error::CaseError;
pub use escalation::EscalationStatus;
pub use intake::{CaseInput, EscalationEffect, IntakeEffects};
pub use sla::SlaOutcome;
pub use state::{Announce, CaseState, Survey};
