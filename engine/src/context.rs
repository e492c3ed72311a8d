//! What a decision depends on besides the message itself: who owns the conversation, what the
//! store counted about it, and the crisis switch. These are plain inputs with no behaviour, in
//! a module of their own so the rulebook (whose golden cases carry them), the pipeline (which
//! reads them) and the store (which counts them) can all use them without importing each
//! other.

use serde::{Deserialize, Serialize};

/// Who owns a conversation right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationState {
    /// The bot answers.
    #[default]
    Bot,
    /// A human agent owns it; the bot stays silent.
    Human,
    Closed,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Bot => "bot",
            ConversationState::Human => "human",
            ConversationState::Closed => "closed",
        }
    }
}

/// What the store knows about the conversation a message belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationFacts {
    pub state: ConversationState,
    pub messages_today: i64,
    pub auto_replies: i64,
    pub complaints_24h: i64,
    pub complaints_7d: i64,
}

/// Facts from outside the message that a decision may depend on.
#[derive(Debug, Clone, Default)]
pub struct DecideContext {
    pub conversation: ConversationFacts,
    /// The running service's crisis switch; `None` uses the rulebook's setting.
    pub crisis_mode: Option<bool>,
}
