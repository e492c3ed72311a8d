//! The webcare engine: for every customer message, decide to **answer** it from a reviewed
//! template, **escalate** it to a human team with a truthful holding reply, or **log** it, and
//! say why. No platform SDK lives here; adapters feed [`Inbound`] messages in and act on the
//! [`Decision`]s that come out.
//!
//! # Layout
//!
//! - [`message`]: the platform-neutral inbound message.
//! - [`decision`]: the decision and its diagnostics.
//! - [`rulebook`]: loading, validating and compiling a rulebook (files → runtime types).
//! - [`quoted`]: the new part of an e-mail reply, which is what a message is decided on.
//! - [`normalize`], [`matcher`], [`lexicon`]: text → topics, sentiment, language.
//! - [`language`]: which language a message is in, beyond Dutch and English (whatlang).
//! - [`features`]: countable facts about the raw text (links, phone numbers, amounts, emoji,
//!   capitals) for the rule scripts, in one pass.
//! - [`teams`], [`templates`]: office hours and the texts the bot may send.
//! - [`replies`]: the team's canned replies, which people pick and edit in the inbox.
//! - [`script`]: the sandboxed Rhai escalation and governance scripts.
//! - [`signals`]: what else a message says: its language, the classifier's guess, text facts.
//! - [`context`]: what a decision depends on besides the message (conversation facts, the
//!   crisis switch).
//! - [`pipeline`]: one message through all of the above.
//! - [`golden`]: running the rulebook's own test cases, and their coverage.
//!
//! [`Rulebook`] is compiled in [`rulebook`], decides in [`pipeline`] and runs its golden cases
//! in [`golden`]: one `impl` block in each, so each layer only imports the ones below it.
//! - [`examples`]: labelled example messages, for the classifier and for `webcare eval`.
//! - [`classifier`]: the learned second opinion, a text classifier trained on those examples.
//! - [`eval`]: decisions measured against labelled messages: acceptable share, critical
//!   recall, precision and recall per category, the confusion matrix.
//! - [`diff`]: the replay diff, how decisions change under a candidate rulebook.
//! - [`html`]: escaping for the pages webcare renders itself.
//! - [`case`]: the life of a case as plain rules without I/O: what a decided message does to
//!   its conversation and escalation, claim, reply, reassign, breach, dead letter, resolve.
//! - [`store`]: the durable record of messages, decisions, conversations, escalations, outbox
//!   and audit log, with the redb and sled backends and PostgreSQL for several instances.
//! - [`runtime`]: what the running service shares: the rulebook in force (hot-swappable), the
//!   store and the crisis switch.
//! - [`intake`]: one message through dedupe, decision and one durable transaction.
//! - [`mode`]: channel modes (`live`, `shadow`, `listen`): which effects a decision has.
//! - [`cluster`]: several instances on one PostgreSQL store: signals between them, the leader
//!   of Telegram polling and the Discord gateway, shared inbox sessions and login limits.
//! - [`clock`]: where the running service's "now" comes from (a manual clock in tests).
//! - [`metrics`]: live counters and the decision latency histogram for `/metrics`.
//! - [`report`]: KPIs and trends over the stored history, as table, CSV, JSON or an HTML page.

pub mod case;
pub mod classifier;
pub mod clock;
pub mod cluster;
pub mod context;
pub mod decision;
pub mod diff;
pub mod eval;
pub mod examples;
pub mod features;
pub mod golden;
pub mod html;
pub mod intake;
pub mod language;
pub mod lexicon;
pub mod matcher;
pub mod message;
pub mod metrics;
pub mod mode;
pub mod normalize;
pub mod pipeline;
pub mod quoted;
pub mod replies;
pub mod report;
pub mod rulebook;
pub mod runtime;
pub mod script;
pub mod signals;
pub mod store;
pub mod teams;
pub mod templates;

pub use case::{CaseError, ConversationFacts, ConversationState};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use context::DecideContext;
pub use decision::{Action, Category, Decision, DecisionRecord, Diagnostics, Priority};
pub use intake::Intake;
pub use message::{ChannelKind, Inbound};
pub use mode::{ChannelModes, Mode};
pub use pipeline::Trace;
pub use rulebook::{Rulebook, RulebookError, RulebookErrors, RulebookSource};
pub use runtime::{IntakeFailure, Runtime};
pub use store::{Store, StoreError};
