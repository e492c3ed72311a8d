//! The channels of `webcare run`, each built from its own config section the way Vector builds
//! a source from its config: a platform's module owns its `[section]` (a serde type), turns it
//! with the environment into a [`Channel`] or one line saying why it does not run
//! ([`Section::build`]), and starts it ([`Channel::start`]) with the gateway and the shutdown
//! signal. [`crate::service`] only walks the list, so a new platform is a new module here and one
//! entry in [`crate::config::ConfigFile::channels`], not another branch in the service.
//!
//! Secrets never come from `webcare.toml`: each module reads its own from the environment or a
//! file ([`crate::secrets::read_secret`]) and keeps them in types that never print them.
//!
//! # Layout
//!
//! - `http.rs`: `[http_channel]`, `POST /api/v1/messages` and signed reply callbacks.
//! - `webchat.rs`: `[webchat]`, the WebSocket web chat and its demo page.
//! - `telegram.rs`: `[telegram]`, long polling or a webhook (feature `telegram`).
//! - `discord.rs`: `[discord]`, the gateway and channel messages (feature `discord`).
//! - `email.rs`: `[email]`, IMAP IDLE intake and SMTP replies (feature `email`).
//! - `meta.rs`: `[meta]`, WhatsApp, Messenger and Instagram by one signed webhook (feature
//!   `meta`).

pub mod discord;
pub mod email;
pub mod http;
pub mod meta;
pub mod telegram;
pub mod webchat;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use tokio::task::JoinSet;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::OutboxWorker;
use webcare_engine::{ChannelKind, Mode};

use crate::shutdown::Shutdown;

/// One variable of the environment (injected in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A channel's section of `webcare.toml`.
pub trait Section {
    fn kind(&self) -> ChannelKind;
    /// Every channel the section's mode applies to (one platform may serve several).
    fn kinds(&self) -> Vec<ChannelKind> {
        vec![self.kind()]
    }
    /// `live`, `shadow` or `listen`, when the section sets it.
    fn mode(&self) -> Option<Mode>;
    /// The channel this section asks for. `base` is the directory relative paths in the file
    /// are relative to. A secret file that is configured but cannot be read is an error: the
    /// operator asked for the channel.
    fn build(&self, base: Option<&Path>, env: Env<'_>) -> anyhow::Result<Built>;
}

/// What a section builds.
#[derive(Debug)]
pub enum Built {
    Runs(Box<dyn Channel>),
    /// It does not run; the line that says why (`telegram: skipped (no token: …)`).
    Off(String),
}

/// A channel with its settings read, ready to start.
pub trait Channel: Debug + Send {
    fn kind(&self) -> ChannelKind;
    /// Registers the channel's delivery with the outbox worker, mounts its routes, and spawns
    /// its intake loop (and what it must finish at shutdown) on the service's tasks, each
    /// stopping at `wiring.shutdown`. Returns the line that says where it runs.
    fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String>;
}

/// The parts of the service a channel hangs on when it starts.
pub struct Wiring<'a> {
    pub gateway: &'a Gateway,
    pub worker: &'a mut OutboxWorker,
    pub router: &'a mut Router,
    /// Waited for at shutdown before the outbox worker stops, so the replies of the last
    /// messages a channel took in still go out.
    pub tasks: &'a mut JoinSet<()>,
    pub shutdown: &'a Shutdown,
    /// With several instances on PostgreSQL: `true` while this instance leads, and only the
    /// leader polls Telegram or holds the Discord gateway (see `crate::cluster::spawn_led`).
    /// `None` with an embedded store: this instance is the only one.
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// Where the web server listens, for the lines that say where to reach a channel.
    pub addr: SocketAddr,
    /// The store's directory: relative state files of a channel live here.
    // Only the e-mail channel keeps a state file; without it the field is unread.
    #[cfg_attr(not(feature = "email"), allow(dead_code))]
    pub data_dir: &'a Path,
}

impl Wiring<'_> {
    /// Serves `routes` on the service's web server.
    pub fn mount(&mut self, routes: Router) {
        *self.router = std::mem::take(self.router).merge(routes);
    }
}

/// `scheme://host[:port]` of a URL, for printing: the path or query may hold a token.
pub fn origin_of(url: &str) -> String {
    let origin = url.split_once("://").and_then(|(scheme, rest)| {
        let authority = rest.split(['/', '?', '#']).next()?;
        let host = authority.rsplit('@').next()?;
        Some(format!("{scheme}://{host}"))
    });
    origin.unwrap_or_else(|| "(invalid URL)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_keep_only_the_origin() {
        assert_eq!(
            origin_of("https://user:pw@bridge.example:8443/hook?token=abc"),
            "https://bridge.example:8443"
        );
        assert_eq!(origin_of("nonsense"), "(invalid URL)");
    }
}
