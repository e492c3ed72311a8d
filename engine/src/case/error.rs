//! The conflicts of a case: what a person (or a worker) asked that the case's rules refuse,
//! kept apart from storage failures so a caller can tell "somebody else claimed it" from "the
//! disk is full", and so a new backend reports the same conflicts in the same words.

use crate::message::ChannelKind;
use crate::store::StoreError;

/// Why a change to a case did not happen. Messages say what happened; the store's own
/// failures pass through unchanged.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("escalation {0} does not exist")]
    NoSuchEscalation(u64),
    #[error("escalation {id} is already claimed by `{by}`")]
    AlreadyClaimed { id: u64, by: String },
    #[error("escalation {0} is already resolved")]
    AlreadyResolved(u64),
    #[error("outbox entry {0} does not exist")]
    NoSuchOutboxEntry(u64),
    #[error("outbox entry {0} was already sent or given up")]
    OutboxFinished(u64),
    #[error("conversation `{conversation}` on {channel} does not exist")]
    NoSuchConversation {
        channel: ChannelKind,
        conversation: String,
    },
    #[error("user `{0}` does not exist")]
    NoSuchUser(String),
    /// Not a conflict: the store could not read or write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CaseError {
    pub fn no_such_conversation(channel: ChannelKind, conversation: &str) -> Self {
        CaseError::NoSuchConversation {
            channel,
            conversation: conversation.to_owned(),
        }
    }
}
