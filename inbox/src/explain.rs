//! The explain panel of an escalation: for each message in it, what `webcare explain` shows
//! in a terminal — the normalised text, every topic with the keywords that matched, what the
//! escalation script proposed, what governance changed, the decision, the reasons and the
//! rulebook version.
//!
//! The store keeps each decision's diagnostics, not its script trace, so the message is decided
//! again with the facts it was decided with, by the rulebook version that decided it: the
//! running one when the versions match, else the version's files the store kept when it was put
//! in force (compiled on the blocking pool, and the last one kept, since an agent opens several
//! escalations of the same day). The crisis switch of that moment is not stored; see
//! [`Rulebook::explain_again`] for how the panel finds it. Whatever it cannot reproduce, it
//! says so rather than guess.

use std::sync::Arc;

use webcare_engine::pipeline::ScriptStep;
use webcare_engine::store::StoredMessage;
use webcare_engine::{Decision, Rulebook, RulebookSource, StoreError, Trace};

use crate::Inbox;
use crate::actions::{ActionError, EscalationView};

/// One message of an escalation, explained.
#[derive(Debug, Clone)]
pub struct Explained {
    /// The message as stored (redacted when the store redacts).
    pub message: StoredMessage,
    /// The decision made again, with its diagnostics.
    pub decision: Decision,
    pub trace: Trace,
    /// The rulebook version the explanation used.
    pub rulebook: String,
    /// What the reader must know: an old version that could not be loaded, the crisis switch,
    /// a decision that came out differently.
    pub notes: Vec<String>,
}

impl Explained {
    /// The escalation script's verdict in words.
    pub fn proposal(&self) -> String {
        describe_step(self.trace.proposal.as_ref())
    }

    /// What the governance script did with the proposal: nothing, a change, or an error.
    pub fn governance(&self) -> String {
        match &self.trace.review {
            Some(review) if Some(review) == self.trace.proposal.as_ref() => {
                "let the proposal through unchanged".to_owned()
            }
            Some(review) => format!("changed it: {}", describe_step(Some(review))),
            None => describe_step(None),
        }
    }
}

fn describe_step(step: Option<&Result<ScriptStep, String>>) -> String {
    match step {
        None => "did not run".to_owned(),
        Some(Err(error)) => format!("failed: {error}"),
        Some(Ok(step)) => step.to_string(),
    }
}

/// The most messages one panel explains: the most recent ones of a long escalation.
pub const MAX_EXPLAINED: usize = 20;

/// Explains the messages of the escalation (the last [`MAX_EXPLAINED`]), oldest first.
pub async fn explain(inbox: &Inbox, view: &EscalationView) -> Result<Vec<Explained>, ActionError> {
    let ids = &view.escalation.messages;
    let messages: Vec<StoredMessage> = ids[ids.len().saturating_sub(MAX_EXPLAINED)..]
        .iter()
        .filter_map(|id| view.messages.iter().find(|m| &m.message.id == id))
        .cloned()
        .collect();
    let running = inbox.gateway().runtime().rulebook();
    let cache = Arc::clone(&inbox.inner.explain_cache);
    Ok(inbox
        .gateway()
        .store(move |store| {
            let mut out = Vec::with_capacity(messages.len());
            for stored in messages {
                let version = &stored.decision.diagnostics.rulebook;
                let mut notes = Vec::new();
                let rulebook = if *version == running.version {
                    Arc::clone(&running)
                } else {
                    let cached = cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                        .filter(|r| r.version == *version);
                    match cached {
                        Some(rulebook) => rulebook,
                        None => {
                            let kept = store.rulebook_version(version)?.map(|files| {
                                RulebookSource::from_files(&files).and_then(Rulebook::compile)
                            });
                            match kept {
                                Some(Ok(rulebook)) => {
                                    let rulebook = Arc::new(rulebook);
                                    *cache.lock().unwrap_or_else(|p| p.into_inner()) =
                                        Some(Arc::clone(&rulebook));
                                    rulebook
                                }
                                Some(Err(errors)) => {
                                    notes.push(format!("rulebook {version} decided this message; it is kept but no longer loads ({errors}), so the running rulebook {} explains it and the steps may differ", running.version));
                                    Arc::clone(&running)
                                }
                                None => {
                                    notes.push(format!("rulebook {version} decided this message but is not in the store, so the running rulebook {} explains it and the steps may differ", running.version));
                                    Arc::clone(&running)
                                }
                            }
                        }
                    }
                };
                let (decision, trace, note) =
                    rulebook.explain_again(&stored.message, &stored.facts, &stored.decision);
                notes.extend(note);
                out.push(Explained {
                    rulebook: rulebook.version.clone(),
                    message: stored,
                    decision,
                    trace,
                    notes,
                });
            }
            Ok::<_, StoreError>(out)
        })
        .await?)
}
