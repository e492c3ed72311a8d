//! The web chat across instances (see the module docs of `webchat`, *Several instances*): the
//! announcements of replies other instances delivered, pushed to the sockets held here. Its own
//! file so the socket handling in `webchat.rs` reads without it.

use std::sync::Arc;

use tokio::sync::mpsc;
use webcare_engine::ChannelKind;
use webcare_engine::cluster::{Cluster, Signal};
use webcare_engine::store::OutboxEntry;

use super::{WebChat, author};
use crate::delivery::DeliveryError;

/// Listens for [`Signal::Webchat`] from other instances and pushes each reply to the sockets of
/// its conversation held here. Needs the tokio runtime (the service starts the web chat on it).
pub(super) fn start(chat: &WebChat, cluster: &dyn Cluster) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    // One queue and one task: the pushes keep the order of the announcements.
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, String)>();
    cluster.subscribe(Box::new(move |received| {
        if let Signal::Webchat {
            outbox,
            conversation,
        } = received.signal
            && !received.own
        {
            let _ = tx.send((outbox, conversation));
        }
    }));
    let weak = Arc::downgrade(&chat.inner);
    runtime.spawn(async move {
        while let Some((outbox, conversation)) = rx.recv().await {
            let Some(inner) = weak.upgrade() else { return };
            let chat = WebChat { inner };
            if chat.has_sockets(&conversation) {
                chat.push_from_elsewhere(outbox).await;
            }
        }
    });
}

impl WebChat {
    /// With several instances: announces a reply this one delivers, so the instance holding
    /// the visitor's socket pushes it. It counts as delivered only once the announcement is out
    /// (a failed one is retried by the outbox).
    pub(super) async fn announce(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let Some(cluster) = self.inner.gateway.runtime().store().cluster() else {
            return Ok(());
        };
        let signal = Signal::Webchat {
            outbox: entry.id,
            conversation: entry.conversation.clone(),
        };
        self.inner
            .gateway
            .store(move |_| cluster.publish(&signal))
            .await
            .map_err(|e| DeliveryError::Temporary(format!("webchat: {e}")))
    }

    /// Pushes outbox entry `id`, which another instance delivered, to the sockets held here.
    async fn push_from_elsewhere(&self, id: u64) {
        let found = self
            .inner
            .gateway
            .store(move |store| {
                let entry = store.outbox_entry(id)?;
                let answered = match &entry {
                    Some(e) => store.message(ChannelKind::Webchat, &e.in_reply_to)?,
                    None => None,
                };
                Ok::<_, webcare_engine::StoreError>(entry.map(|e| (e, answered)))
            })
            .await;
        match found {
            Ok(Some((entry, answered))) => {
                let sockets = self.push(&entry, author(&entry, answered.as_ref()));
                tracing::debug!(outbox = id, sockets, "webchat: reply from another instance");
            }
            Ok(None) => {}
            Err(error) => {
                // The visitor reads it in the transcript on their next connect.
                tracing::warn!(outbox = id, %error, "webchat: cannot read a reply another instance sent");
            }
        }
    }
}
