//! Server-sent events that tell open pages something changed (an escalation arrived, a
//! colleague claimed or answered one, a breach moved one); the page's script then fetches the
//! fresh parts itself. The event carries no content, only a sequence number, so nothing an
//! agent may not see travels down a stream every session shares.
//!
//! Each event has a non-empty `data:` line: browsers drop an event whose data is empty, which
//! is why the queue once never updated in a browser although the stream looked right.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::session;
use crate::Inbox;

/// Tells a browser to wait this long before reconnecting after the stream ended (a restart).
const RETRY: std::time::Duration = std::time::Duration::from_secs(3);

/// One `changed` event as the stream sends it.
pub(crate) fn changed(seq: u64) -> SseEvent {
    SseEvent::default()
        .event("changed")
        .id(seq.to_string())
        .data(seq.to_string())
}

pub(super) async fn events(State(inbox): State<Inbox>, headers: HeaderMap) -> Response {
    if session(&inbox, &headers).await.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let changes = inbox.subscribe();
    // The first message only sets the browser's reconnect delay (no event: nothing to refresh).
    let hello = SseEvent::default().retry(RETRY).comment("connected");
    let start = futures_util::stream::once(async move { Ok::<_, Infallible>(hello) });
    let stream = futures_util::stream::unfold((changes, 0u64), |(mut changes, seq)| async move {
        use tokio::sync::broadcast::error::RecvError;
        match changes.recv().await {
            // Several changes missed at once (a burst) are one refresh for the page.
            Ok(()) | Err(RecvError::Lagged(_)) => {
                let seq = seq + 1;
                Some((Ok::<_, Infallible>(changed(seq)), (changes, seq)))
            }
            Err(RecvError::Closed) => None,
        }
    });
    Sse::new(futures_util::StreamExt::chain(start, stream))
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use futures_util::StreamExt;

    /// What a browser receives for one change: an event name and a non-empty data line,
    /// without which `EventSource` drops the event.
    #[tokio::test]
    async fn a_change_is_an_event_with_data() {
        let stream =
            futures_util::stream::iter([Ok::<_, std::convert::Infallible>(super::changed(7))]);
        let response = axum::response::sse::Sse::new(stream).into_response();
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.contains("event: changed\n"), "{text:?}");
        assert!(text.contains("data: 7\n"), "{text:?}");
        assert!(text.ends_with("\n\n"), "{text:?}");
    }
}
