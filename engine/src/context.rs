//! What a decision depends on besides the message itself: who owns the conversation, what the
//! store counted about it (the case rules' [`ConversationFacts`]), and the crisis switch. Plain
//! inputs with no behaviour, in a module of their own so the rulebook (whose golden cases carry
//! them) and the pipeline (which reads them) can use them without importing each other.

// The conversation's facts are the case rules' (see `crate::case`); re-exported here for the
// rulebook and the pipeline, which only read them.
pub use crate::case::{ConversationFacts, ConversationState};

/// Facts from outside the message that a decision may depend on.
#[derive(Debug, Clone, Default)]
pub struct DecideContext {
    pub conversation: ConversationFacts,
    /// The running service's crisis switch; `None` uses the rulebook's setting.
    pub crisis_mode: Option<bool>,
}
