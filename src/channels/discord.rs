//! `[discord]`: the Discord bot, answering direct messages and the guild channels listed in
//! `channels`. The bot token is never read from `webcare.toml`: it comes from
//! `DISCORD_BOT_TOKEN` or a token file. The section parses in every binary; the adapter runs
//! only where the `discord` feature is built in, and elsewhere says so.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Deserialize;
use webcare_engine::{ChannelKind, Mode};

use super::{Built, Env, Section};
use crate::secrets::read_secret;

/// `[discord]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
// Read only when the adapter is built in; without it the section must still parse.
#[cfg_attr(not(feature = "discord"), allow(dead_code))]
pub struct DiscordSection {
    /// Default on (when there is a token).
    pub enabled: Option<bool>,
    /// `live` (default), `shadow` (decide and escalate, send nothing automatic) or `listen`
    /// (decide and record only); see `webcare_engine::mode`.
    pub mode: Option<Mode>,
    /// A file holding the bot token (also `DISCORD_BOT_TOKEN_FILE`).
    pub token_file: Option<PathBuf>,
    /// Send REST calls here instead of `https://discord.com` (a rate-limiting proxy).
    pub api_url: Option<String>,
    /// The guild channels the bot answers in, by id; direct messages are always answered.
    pub channels: Option<DiscordChannels>,
}

/// Discord channel ids: a list (`[123, "456"]`) or, from the environment, `"123,456"` (or one
/// id, which the environment overlay reads as a number).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DiscordChannels {
    List(Vec<Snowflake>),
    One(u64),
    Text(String),
}

/// One Discord id, as a number or a string (ids are often copied as strings).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Snowflake {
    Number(u64),
    Text(String),
}

impl DiscordChannels {
    pub fn ids(&self) -> anyhow::Result<Vec<u64>> {
        let texts: Vec<String> = match self {
            DiscordChannels::List(list) => list
                .iter()
                .map(|id| match id {
                    Snowflake::Number(n) => n.to_string(),
                    Snowflake::Text(t) => t.clone(),
                })
                .collect(),
            DiscordChannels::One(id) => vec![id.to_string()],
            DiscordChannels::Text(text) => text
                .split([',', ' '])
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        texts
            .iter()
            .map(|t| {
                t.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|id| *id != 0)
                    .ok_or_else(|| {
                        anyhow!("`[discord] channels`: `{t}` is not a Discord channel id")
                    })
            })
            .collect()
    }
}

impl Section for DiscordSection {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn build(&self, base: Option<&Path>, env: Env<'_>) -> anyhow::Result<Built> {
        // Checked even when the adapter does not run: a wrong id is a mistake in the file.
        let channels = match &self.channels {
            Some(channels) => channels.ids()?,
            None => Vec::new(),
        };
        if !self.enabled.unwrap_or(true) {
            return Ok(Built::Off(
                "discord: skipped (enabled = false in [discord])".into(),
            ));
        }
        let token = read_secret(
            "Discord token",
            "DISCORD_BOT_TOKEN",
            self.token_file.as_deref(),
            base,
            env,
        )?;
        match token {
            #[cfg(feature = "discord")]
            Some(token) => Ok(Built::Runs(Box::new(adapter::Discord(
                webcare_adapters::discord::DiscordConfig {
                    api_url: self.api_url.clone().filter(|u| !u.is_empty()),
                    channels: channels.into_iter().collect(),
                    ..webcare_adapters::discord::DiscordConfig::new(token)
                },
            )))),
            #[cfg(feature = "discord")]
            None => Ok(Built::Off(
                "discord: skipped (no token: set DISCORD_BOT_TOKEN or [discord] token_file)".into(),
            )),
            // Here a token would not help, so the line does not ask for one.
            #[cfg(not(feature = "discord"))]
            _ => {
                let _ = channels;
                Ok(Built::Off(
                    "discord: skipped (not built into this binary)".into(),
                ))
            }
        }
    }
}

#[cfg(feature = "discord")]
mod adapter {
    use std::sync::Arc;

    use anyhow::Context;
    use webcare_adapters::discord::{self, DiscordConfig, DiscordDeliver};
    use webcare_engine::ChannelKind;

    use crate::channels::{Channel, Wiring};

    #[derive(Debug)]
    pub(super) struct Discord(pub(super) DiscordConfig);

    impl Channel for Discord {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Discord
        }

        fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String> {
            let config = self.0;
            let deliver = DiscordDeliver::new(&config).context("discord")?;
            wiring
                .worker
                .register(ChannelKind::Discord, Arc::new(deliver));
            let line = format!(
                "discord: gateway{}, direct messages and {} configured channel{}",
                config
                    .api_url
                    .as_deref()
                    .map(|u| format!(" via {u}"))
                    .unwrap_or_default(),
                config.channels.len(),
                if config.channels.len() == 1 { "" } else { "s" }
            );
            let gateway = wiring.gateway.clone();
            // Two gateway sessions would take every message in twice: only the leader holds one.
            crate::cluster::spawn_led(
                wiring.tasks,
                wiring.leader.clone(),
                wiring.shutdown,
                "discord",
                move |stop| {
                    let (gateway, config) = (gateway.clone(), config.clone());
                    async move {
                        if let Err(error) = discord::run(gateway, config, stop).await {
                            tracing::error!(%error, "discord: the adapter stopped");
                        }
                    }
                },
            );
            Ok(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn described(built: Built) -> String {
        match built {
            Built::Off(why) => why,
            Built::Runs(channel) => format!("runs: {channel:?}"),
        }
    }

    #[test]
    fn without_a_token_it_is_skipped_and_an_unreadable_token_file_is_an_error() -> anyhow::Result<()>
    {
        let why = described(DiscordSection::default().build(None, &none)?);
        let expected = if cfg!(feature = "discord") {
            "DISCORD_BOT_TOKEN"
        } else {
            "not built"
        };
        assert!(
            why.starts_with("discord: skipped") && why.contains(expected),
            "{why}"
        );

        let dir = tempfile::tempdir()?;
        let missing = DiscordSection {
            token_file: Some("nope.token".into()),
            ..DiscordSection::default()
        };
        let error = missing
            .build(Some(dir.path()), &none)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("nope.token"), "{error}");
        Ok(())
    }

    #[cfg(feature = "discord")]
    #[test]
    fn the_token_comes_from_a_file_and_never_prints() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("discord.token"), "from-file\n")?;
        let section = DiscordSection {
            token_file: Some("discord.token".into()),
            channels: Some(DiscordChannels::Text("123, 456".into())),
            ..DiscordSection::default()
        };
        let printed = described(section.build(Some(dir.path()), &none)?);
        assert!(printed.starts_with("runs: Discord"), "{printed}");
        assert!(printed.contains("{123, 456}"), "{printed}");
        assert!(!printed.contains("from-file"), "{printed}");
        Ok(())
    }
}
