//! Adapters: the edges where platform events become [`webcare_engine::Inbound`] messages and
//! decisions go back out. Each platform is a module; the ones that need a platform SDK sit
//! behind a cargo feature so the engine and its tests build without them.
//!
//! # Layout
//!
//! - [`jsonl`]: one JSON message per line, the batch format of `webcare replay` and of
//!   exports from other tools.
//! - [`delivery`]: the [`delivery::Deliver`] trait every platform implements to send replies.
//! - [`gateway`]: the async door into the engine (durable intake on the blocking pool).
//! - [`outbox`]: the worker that sends every reply, with retries, backoff and dead letters.
//! - `http` (feature `http`, default): `POST /api/v1/messages` and signed reply callbacks.
//! - `webchat` (feature `webchat`, default): the WebSocket web chat, its embeddable widget and
//!   the demo page (assets in `adapters/assets/`).
//! - [`secret`]: bot tokens, never logged.
//! - [`split`]: per-platform length limits; long replies become several messages, sent in
//!   order and resumed after a failure by one [`split::SplitSender`] for every platform.
//! - `telegram` (feature `telegram`): long polling with teloxide, and `sendMessage` delivery.
//! - `discord` (feature `discord`): the serenity gateway, and channel message delivery.
//! - `email` (feature `email`): IMAP IDLE intake and SMTP replies in the mail's own thread.
//! - `meta` (feature `meta`): WhatsApp, Messenger and Instagram through the Graph API webhook
//!   and Send API, with the 24-hour customer service window.

pub mod delivery;
#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "email")]
pub mod email;
pub mod gateway;
#[cfg(feature = "http")]
pub mod http;
pub mod jsonl;
#[cfg(feature = "meta")]
pub mod meta;
pub mod outbox;
pub mod secret;
pub mod split;
#[cfg(feature = "telegram")]
pub mod telegram;
#[cfg(feature = "webchat")]
pub mod webchat;
