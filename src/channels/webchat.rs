//! `[webchat]`: the WebSocket web chat, its embeddable widget and the demo page at `/`. At
//! shutdown every socket is asked to close after the message it is taking in, and the service
//! waits until they have, so no visitor's message is cut off halfway.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use webcare_adapters::webchat::{WebChat, WebChatConfig};
use webcare_engine::{ChannelKind, Mode};

use super::{Built, Channel, Env, Section, Wiring};

/// `[webchat]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebChatSection {
    /// Default on.
    pub enabled: Option<bool>,
    /// `live` (default), `shadow` (decide and escalate, send nothing automatic) or `listen`
    /// (decide and record only); see `webcare_engine::mode`.
    pub mode: Option<Mode>,
    /// The largest frame a visitor may send; default 8192 bytes.
    pub max_frame_bytes: Option<usize>,
    /// The longest message; default 2000 characters.
    pub max_text_chars: Option<usize>,
    /// Messages a visitor may send at once (default 10) and per second after that (default 1).
    pub burst: Option<u32>,
    pub per_second: Option<f64>,
    /// Open chats at most; default 10000.
    pub max_connections: Option<usize>,
    /// Open chats from one client address at most; default 16.
    pub max_per_address: Option<usize>,
    /// Messages one client address may send at once (default 30) and per second after that
    /// (default 3), over all its chats; `burst` and `per_second` hold per conversation, across
    /// reconnects.
    pub address_burst: Option<u32>,
    pub address_per_second: Option<f64>,
    /// Transcript lines sent on connect and per "earlier messages" request; default 50.
    pub transcript_page: Option<usize>,
}

impl Section for WebChatSection {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webchat
    }

    fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn build(&self, _base: Option<&Path>, _env: Env<'_>) -> anyhow::Result<Built> {
        if !self.enabled.unwrap_or(true) {
            return Ok(Built::Off("web chat: off".into()));
        }
        let defaults = WebChatConfig::default();
        Ok(Built::Runs(Box::new(Web(WebChatConfig {
            max_frame: self.max_frame_bytes.unwrap_or(defaults.max_frame),
            max_text: self.max_text_chars.unwrap_or(defaults.max_text),
            burst: self.burst.unwrap_or(defaults.burst),
            per_second: self.per_second.unwrap_or(defaults.per_second),
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            max_per_address: self.max_per_address.unwrap_or(defaults.max_per_address),
            address_burst: self.address_burst.unwrap_or(defaults.address_burst),
            address_per_second: self
                .address_per_second
                .unwrap_or(defaults.address_per_second),
            page: self.transcript_page.unwrap_or(defaults.page).max(1),
        }))))
    }
}

#[derive(Debug)]
struct Web(WebChatConfig);

impl Channel for Web {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webchat
    }

    fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String> {
        let chat = WebChat::new(wiring.gateway.clone(), self.0);
        wiring.mount(chat.routes());
        wiring.worker.register(ChannelKind::Webchat, chat.deliver());
        let stop = wiring.shutdown.wait();
        wiring.tasks.spawn(async move {
            stop.await;
            chat.shut_down();
            while chat.open_sockets() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Ok(format!("web chat: http://{}/", wiring.addr))
    }
}
