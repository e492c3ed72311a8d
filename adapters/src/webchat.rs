//! The web chat: a WebSocket endpoint, a small widget an organisation embeds with one
//! `<script src="https://…/webchat/widget.js" defer></script>` tag, and a demo page at `/`.
//! It exists because the organisation's own website is where many citizens ask first, and it is
//! the one channel webcare fully controls, so it shows the whole loop: the bot's answer, the
//! holding reply when a message is escalated, and later a human agent's replies.
//!
//! **Protocol** (JSON text frames). The widget connects to `/webchat/ws?conversation=<id>`; a
//! missing or malformed id gets a fresh random one. The server sends `hello` (the id, which the
//! widget keeps in `localStorage`) and the `transcript` (the visitor's messages and every reply
//! so far, so a reload loses nothing). The widget sends `{"type":"message","id","text"}`; the
//! id is the widget's own, so a message resent after a reconnect is taken in once. The server
//! answers `ack` once the message is stored, and `reply` frames whenever the outbox delivers one
//! into the conversation. Each line says who wrote it (`from`): `visitor`, `reply` (the bot)
//! or `agent` (a person answering from the inbox), and the widget labels an agent's line, so
//! the visitor knows when a human has taken over. A reply is the bot's when it is the reply
//! of the decision on the message it answers; an agent's reply is queued against the
//! conversation's last message with the agent's own text.
//!
//! **Replies go through the outbox** like on every channel: [`WebChatDeliver`] pushes a reply to
//! the sockets open on its conversation, and counts as delivered even when none is open, because
//! the reply is then in the transcript the visitor gets on their next visit.
//!
//! **Several instances** (PostgreSQL): the instance whose outbox worker delivers a reply may not
//! be the one holding the visitor's socket. It pushes to the sockets it holds and announces the
//! reply (`Signal::Webchat`, see `relay`); the instance that holds the conversation's socket
//! reads the entry and pushes it, one announcement after the other, so replies arrive in their
//! order.
//!
//! **Abuse** is contained per socket: frames over the size limit, binary frames, frames that
//! are not a message, and more messages than the rate limit allows close that socket (and only
//! that one) with a close code that says why. A socket too slow to take its pushes is dropped
//! rather than let its queue grow. The limits that a reconnect must not reset are kept per
//! client address and per conversation, not per socket: open sockets per address
//! (`max_per_address`; one visitor holding many sockets no longer locks everybody else out),
//! and two token buckets every message draws from, one for its conversation and one for the
//! address it came from. The address is the peer the web server saw (`ConnectInfo`); behind a
//! reverse proxy that is the proxy, so raise the per-address limits there.
//!
//! **Transcript paging.** On connect the widget gets the last [`WebChatConfig::page`] lines,
//! with `earlier: true` when there are more; it asks for more with
//! `{"type":"earlier","skip":N}` (N lines it already has) and gets `{"type":"earlier","items",
//! "more"}`. A conversation of a thousand messages is no longer sent whole on every connect.
//!
//! Untrusted text never becomes HTML: the widget only ever sets `textContent`, and the pages
//! here are static.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use webcare_engine::store::{OutboxEntry, OutboxStatus, StoredMessage};
use webcare_engine::{ChannelKind, Inbound};

use crate::delivery::{BoxFuture, Deliver, DeliveryError};

mod frame;
mod limits;
mod relay;
use crate::gateway::Gateway;
use limits::{Bucket, Limits, MAX_BUCKETS, RateLimit, page_of};

const DEMO_PAGE: &str = include_str!("../assets/index.html");
const WIDGET_JS: &str = include_str!("../assets/widget.js");
const WIDGET_CSS: &str = include_str!("../assets/widget.css");

/// Close codes (RFC 6455 §7.4.1) that tell the widget why.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_INVALID: u16 = 1007;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;

/// Pushes queued for one socket before it counts as too slow and is dropped.
const SOCKET_QUEUE: usize = 64;

/// The web chat's limits; the runtime form of `[webchat]`.
#[derive(Debug, Clone)]
pub struct WebChatConfig {
    /// The largest frame a visitor may send, in bytes.
    pub max_frame: usize,
    /// The longest message text, in characters.
    pub max_text: usize,
    /// Messages a visitor may send at once…
    pub burst: u32,
    /// …and per second after that.
    pub per_second: f64,
    /// Open sockets at most; more are refused with 503.
    pub max_connections: usize,
    /// Open sockets from one client address at most; more are refused with 429.
    pub max_per_address: usize,
    /// Messages one client address may send at once, over all its conversations…
    pub address_burst: u32,
    /// …and per second after that.
    pub address_per_second: f64,
    /// Transcript lines sent on connect and per `earlier` request.
    pub page: usize,
}

impl Default for WebChatConfig {
    fn default() -> Self {
        WebChatConfig {
            max_frame: 8 * 1024,
            max_text: 2000,
            burst: 10,
            per_second: 1.0,
            max_connections: 10_000,
            max_per_address: 16,
            address_burst: 30,
            address_per_second: 3.0,
            page: 50,
        }
    }
}

/// One open socket, as the hub knows it.
struct Socket {
    id: u64,
    push: mpsc::Sender<Outgoing>,
}

struct Inner {
    gateway: Gateway,
    config: WebChatConfig,
    /// Open sockets by conversation. A std mutex: held only to clone or edit the small list,
    /// never across an await.
    sockets: Mutex<HashMap<String, Vec<Socket>>>,
    next_socket: AtomicU64,
    open: AtomicUsize,
    shutdown: watch::Sender<bool>,
    ids: std::collections::hash_map::RandomState,
    /// Sockets per address and the shared token buckets; a std mutex held only for a lookup.
    limits: Mutex<Limits>,
}

/// The web chat: routes, the outbox's [`Deliver`] for the channel, and shutdown. Cheap to clone.
#[derive(Clone)]
pub struct WebChat {
    inner: Arc<Inner>,
}

/// Frames the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Outgoing {
    Hello {
        conversation: String,
    },
    Transcript {
        items: Vec<Item>,
        /// Whether older lines exist (ask with `earlier`).
        earlier: bool,
    },
    Earlier {
        items: Vec<Item>,
        more: bool,
    },
    Ack {
        id: String,
        action: &'static str,
        duplicate: bool,
    },
    Reply {
        #[serde(flatten)]
        item: Item,
    },
    Error {
        error: String,
    },
    /// Not sent as JSON: closes the socket with this code.
    #[serde(skip)]
    Close {
        code: u16,
        reason: String,
    },
}

/// One line of the conversation.
#[derive(Debug, Clone, Serialize)]
struct Item {
    /// `visitor`, `reply` (the bot) or `agent` (a person in the inbox).
    from: &'static str,
    /// The widget's message id, or `r<outbox id>` for a reply.
    id: String,
    text: String,
    at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Connect {
    conversation: Option<String>,
}

impl WebChat {
    pub fn new(gateway: Gateway, config: WebChatConfig) -> Self {
        let cluster = gateway.runtime().store().cluster();
        let chat = WebChat {
            inner: Arc::new(Inner {
                gateway,
                config,
                sockets: Mutex::new(HashMap::new()),
                next_socket: AtomicU64::new(1),
                open: AtomicUsize::new(0),
                shutdown: watch::Sender::new(false),
                ids: std::collections::hash_map::RandomState::new(),
                limits: Mutex::new(Limits::default()),
            }),
        };
        if let Some(cluster) = cluster {
            relay::start(&chat, cluster.as_ref());
        }
        chat
    }

    /// `/` (the demo page), `/webchat/widget.js`, `/webchat/widget.css` and `/webchat/ws`.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/", get(demo_page))
            .route("/webchat/widget.js", get(widget_js))
            .route("/webchat/widget.css", get(widget_css))
            .route("/webchat/ws", get(connect))
            .with_state(self.clone())
    }

    /// The outbox's way into this channel.
    pub fn deliver(&self) -> Arc<dyn Deliver> {
        Arc::new(WebChatDeliver(self.clone()))
    }

    /// Asks every open socket to close ("going away": the widget reconnects to the next
    /// instance); a message being taken in is finished first.
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// How many sockets are open now.
    pub fn open_sockets(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// An unguessable conversation id: 128 bits from two SipHash outputs under this process's
    /// random keys, over a counter and the time (a PRF, so ids cannot be predicted from others).
    fn new_conversation(&self) -> String {
        let n = self.inner.next_socket.fetch_add(1, Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let mut words = [0u64; 2];
        for (i, word) in words.iter_mut().enumerate() {
            let mut hasher = self.inner.ids.build_hasher();
            hasher.write_u64(n);
            hasher.write_i64(nanos);
            hasher.write_usize(i);
            *word = hasher.finish();
        }
        format!("w{:016x}{:016x}", words[0], words[1])
    }

    fn register(&self, conversation: &str, push: mpsc::Sender<Outgoing>) -> u64 {
        let id = self.inner.next_socket.fetch_add(1, Ordering::Relaxed);
        let mut sockets = self.lock();
        sockets
            .entry(conversation.to_owned())
            .or_default()
            .push(Socket { id, push });
        id
    }

    fn unregister(&self, conversation: &str, id: u64) {
        let mut sockets = self.lock();
        if let Some(list) = sockets.get_mut(conversation) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                sockets.remove(conversation);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Socket>>> {
        // A panic while holding it cannot leave the map inconsistent (every edit is one call).
        self.inner
            .sockets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pushes a reply to every socket of its conversation; a socket whose queue is full is
    /// dropped (its writer ends, the widget reconnects and reads the transcript).
    fn push(&self, entry: &OutboxEntry, from: &'static str) -> usize {
        let frame = Outgoing::Reply {
            item: reply_item(entry, from),
        };
        let mut sockets = self.lock();
        let Some(list) = sockets.get_mut(&entry.conversation) else {
            return 0;
        };
        let mut delivered = 0;
        list.retain(|socket| match socket.push.try_send(frame.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(_) => false,
        });
        delivered
    }

    fn has_sockets(&self, conversation: &str) -> bool {
        self.lock().contains_key(conversation)
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        // Every edit is one call; a panic cannot leave the counts half-changed.
        self.inner
            .limits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a socket for `address`; false when the address has its maximum open.
    fn open_for(&self, address: IpAddr) -> bool {
        let mut limits = self.limits();
        let open = limits.per_address.entry(address).or_default();
        if *open >= self.inner.config.max_per_address {
            return false;
        }
        *open += 1;
        true
    }

    fn closed_for(&self, address: IpAddr) {
        let mut limits = self.limits();
        if let Some(open) = limits.per_address.get_mut(&address) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                limits.per_address.remove(&address);
            }
        }
    }

    /// Takes one token from the conversation's bucket and one from the address's; both must
    /// have one. These outlive the socket, so reconnecting does not refill them.
    fn allow(&self, conversation: &str, address: Option<IpAddr>) -> bool {
        let config = &self.inner.config;
        let mut limits = self.limits();
        if limits.buckets.len() > MAX_BUCKETS {
            limits.buckets.retain(|_, bucket| !bucket.is_full());
        }
        let conversation = limits
            .buckets
            .entry(Bucket::Conversation(conversation.to_owned()))
            .or_insert_with(|| RateLimit::new(config.burst, config.per_second))
            .take();
        let address = address.is_none_or(|address| {
            limits
                .buckets
                .entry(Bucket::Address(address))
                .or_insert_with(|| RateLimit::new(config.address_burst, config.address_per_second))
                .take()
        });
        conversation && address
    }
}

/// Who wrote `entry`: the bot when it is the reply of the decision on the message it answers
/// (`answered`), else a person in the inbox.
fn author(entry: &OutboxEntry, answered: Option<&StoredMessage>) -> &'static str {
    match answered {
        Some(m) if m.decision.action.reply() == Some(entry.text.as_str()) => "reply",
        _ => "agent",
    }
}

fn reply_item(entry: &OutboxEntry, from: &'static str) -> Item {
    Item {
        from,
        id: format!("r{}", entry.id),
        text: entry.text.clone(),
        at: entry.created_at,
    }
}

/// The web chat's [`Deliver`]: see the module docs.
pub struct WebChatDeliver(WebChat);

impl Deliver for WebChatDeliver {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            // The visitor's socket may be held by another instance (see `relay`).
            self.0.announce(entry).await?;
            // Nobody is looking: the reply is in the transcript of the next visit.
            if !self.0.has_sockets(&entry.conversation) {
                return Ok(());
            }
            let id = entry.in_reply_to.clone();
            let answered = self
                .0
                .inner
                .gateway
                .store(move |store| store.message(ChannelKind::Webchat, &id))
                .await
                .map_err(|e| DeliveryError::Temporary(format!("webchat: {e}")))?;
            let sockets = self.0.push(entry, author(entry, answered.as_ref()));
            tracing::debug!(
                outbox = entry.id,
                sockets,
                "webchat: reply in the transcript"
            );
            Ok(())
        })
    }
}

async fn demo_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        DEMO_PAGE,
    )
        .into_response()
}

async fn widget_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

async fn widget_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WIDGET_CSS,
    )
        .into_response()
}

/// The same rule for conversation ids and message ids from the widget.
fn valid_id(id: &str, min: usize) -> bool {
    (min..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn connect(
    State(chat): State<WebChat>,
    Query(query): Query<Connect>,
    extensions: axum::http::Extensions,
    upgrade: WebSocketUpgrade,
) -> Response {
    if chat.inner.open.load(Ordering::Relaxed) >= chat.inner.config.max_connections {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open chats; try again",
        )
            .into_response();
    }
    if *chat.inner.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    // The service always serves with the peer's address; a router served without it (some
    // tests) has no per-address limits.
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(address) = address
        && !chat.open_for(address)
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many open chats from this address; close one and try again",
        )
            .into_response();
    }
    let guard = AddressGuard {
        chat: chat.clone(),
        address,
    };
    // Ids webcare handed out are 33 characters; accepting 16 or more leaves room for an
    // organisation that issues its own, and too short to guess is refused.
    let conversation = query
        .conversation
        .filter(|id| valid_id(id, 16))
        .unwrap_or_else(|| chat.new_conversation());
    let max = chat.inner.config.max_frame;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session(chat, conversation, guard, socket))
}

/// Gives the address's socket back when the session ends (or the upgrade never happens).
struct AddressGuard {
    chat: WebChat,
    address: Option<IpAddr>,
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        if let Some(address) = self.address {
            self.chat.closed_for(address);
        }
    }
}

/// One socket: a writer task that owns the sending half, and this reader loop.
async fn session(chat: WebChat, conversation: String, guard: AddressGuard, socket: WebSocket) {
    chat.inner.open.fetch_add(1, Ordering::Relaxed);
    let (sink, mut stream) = socket.split();
    let (push, queue) = mpsc::channel(SOCKET_QUEUE);
    let socket_id = chat.register(&conversation, push.clone());
    let writer = tokio::spawn(write_frames(sink, queue));

    let _ = push
        .send(Outgoing::Hello {
            conversation: conversation.clone(),
        })
        .await;
    let page = chat.inner.config.page.max(1);
    match transcript(&chat.inner.gateway, &conversation).await {
        Ok(items) => {
            let (items, earlier) = page_of(items, 0, page);
            let _ = push.send(Outgoing::Transcript { items, earlier }).await;
        }
        Err(error) => {
            tracing::error!(error = %error, "webchat: cannot read the transcript");
            let _ = push
                .send(Outgoing::Error {
                    error: "the conversation so far could not be loaded".into(),
                })
                .await;
        }
    }

    let mut shutdown = chat.inner.shutdown.subscribe();
    let close = loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = shutdown.wait_for(|stop| *stop) => {
                break Some((CLOSE_GOING_AWAY, "the server is restarting; reconnect"));
            }
        };
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => break None,
            Some(Err(error)) => {
                // Oversized frames end here (tungstenite refuses them), as do broken sockets.
                let too_big = error.to_string().to_ascii_lowercase().contains("too long")
                    || error.to_string().to_ascii_lowercase().contains("too big");
                tracing::debug!(error = %error, "webchat: socket error");
                break too_big.then_some((CLOSE_TOO_BIG, "message too large"));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                break Some((CLOSE_UNSUPPORTED, "only JSON text frames are accepted"));
            }
            Some(Ok(Message::Text(text))) => text,
        };
        if !chat.allow(&conversation, guard.address) {
            break Some((CLOSE_POLICY, "too many messages; slow down"));
        }
        let (id, text) = match frame::read(text.as_str(), chat.inner.config.max_text) {
            frame::Frame::Message { id, text } => (id, text),
            frame::Frame::Earlier { skip } => {
                let frame = match transcript(&chat.inner.gateway, &conversation).await {
                    Ok(items) => {
                        let (items, more) = page_of(items, skip, page);
                        Outgoing::Earlier { items, more }
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "webchat: cannot read the transcript");
                        Outgoing::Error {
                            error: "earlier messages could not be loaded".into(),
                        }
                    }
                };
                if push.send(frame).await.is_err() {
                    break None;
                }
                continue;
            }
            frame::Frame::Blank => continue,
            frame::Frame::TooLong => {
                let _ = push
                    .send(Outgoing::Error {
                        error: format!(
                            "messages can be at most {} characters",
                            chat.inner.config.max_text
                        ),
                    })
                    .await;
                continue;
            }
            frame::Frame::Close(code, reason) => break Some((code, reason)),
        };
        // One message at a time per socket: order within a conversation is kept.
        let frame = take_in(&chat.inner.gateway, &conversation, &id, &text).await;
        if push.send(frame).await.is_err() {
            break None;
        }
    };
    chat.unregister(&conversation, socket_id);
    if let Some((code, reason)) = close {
        let _ = push
            .send(Outgoing::Close {
                code,
                reason: reason.into(),
            })
            .await;
    }
    drop(push);
    let _ = writer.await;
    chat.inner.open.fetch_sub(1, Ordering::Relaxed);
    drop(guard);
}

async fn take_in(gateway: &Gateway, conversation: &str, id: &str, text: &str) -> Outgoing {
    let mut message = Inbound::from_text(
        // Scoped by conversation: widget ids are only unique within one.
        format!("{conversation}:{id}"),
        ChannelKind::Webchat,
        text,
        gateway.now(),
    );
    message.conversation = conversation.to_owned();
    message.author = format!("visitor:{conversation}");
    match gateway.accept(message).await {
        Ok(receipt) => Outgoing::Ack {
            id: id.to_owned(),
            action: receipt.decision.action.name(),
            duplicate: receipt.duplicate,
        },
        Err(error) => {
            tracing::error!(error = %error, "webchat: intake failed");
            Outgoing::Error {
                error: "your message could not be received; please send it again".into(),
            }
        }
    }
}

/// The visitor's messages and the replies, in time order; dead replies (never delivered) are
/// left out.
async fn transcript(
    gateway: &Gateway,
    conversation: &str,
) -> Result<Vec<Item>, crate::gateway::GatewayError> {
    let key = conversation.to_owned();
    let (messages, replies) = gateway
        .store(move |store| {
            Ok::<_, webcare_engine::StoreError>((
                store.conversation_messages(ChannelKind::Webchat, &key)?,
                store.conversation_outbox(ChannelKind::Webchat, &key)?,
            ))
        })
        .await?;
    let prefix = format!("{conversation}:");
    let by_id: HashMap<&str, &StoredMessage> = messages
        .iter()
        .map(|stored| (stored.message.id.as_str(), stored))
        .collect();
    let mut items: Vec<Item> = messages
        .iter()
        .map(|stored| Item {
            from: "visitor",
            id: stored
                .message
                .id
                .strip_prefix(&prefix)
                .unwrap_or(&stored.message.id)
                .to_owned(),
            text: stored.message.text.clone(),
            at: stored.message.received_at,
        })
        .chain(
            replies
                .iter()
                .filter(|entry| entry.status != OutboxStatus::Dead)
                .map(|entry| {
                    let answered = by_id.get(entry.in_reply_to.as_str()).copied();
                    reply_item(entry, author(entry, answered))
                }),
        )
        .collect();
    // Stable: a reply created in the same microsecond as its question stays after it.
    items.sort_by_key(|item| item.at);
    Ok(items)
}

/// Sends queued frames until the queue closes or a close frame was sent; pings every 25 s so
/// proxies keep an idle chat open.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    let mut ping = tokio::time::interval(Duration::from_secs(25));
    ping.tick().await;
    loop {
        let frame = tokio::select! {
            frame = queue.recv() => frame,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let message = match frame {
            None => break,
            Some(Outgoing::Close { code, reason }) => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: Utf8Bytes::from(reason),
                    })))
                    .await;
                return;
            }
            Some(frame) => match serde_json::to_string(&frame) {
                Ok(json) => Message::Text(json.into()),
                Err(error) => {
                    tracing::error!(error = %error, "webchat: cannot encode a frame");
                    continue;
                }
            },
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("abcDEF-123_x", 1));
        assert!(!valid_id("", 1));
        assert!(!valid_id("short", 16));
        assert!(!valid_id("<script>alert(1)</script>", 1));
        assert!(!valid_id(&"a".repeat(65), 1));
    }
}
