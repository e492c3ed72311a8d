//! The chat platforms of `webcare run`: Telegram and Discord. It exists so [`crate::service`]
//! starts them in one call and stays free of platform details: here the `[telegram]` and
//! `[discord]` sections and the environment become adapter settings, the bot tokens are read
//! (only from `TELEGRAM_BOT_TOKEN` / `DISCORD_BOT_TOKEN` or a token file, never from
//! `webcare.toml`, and kept in a [`Secret`] that never prints), and each adapter with a token
//! registers its delivery with the outbox worker and starts its intake loop. An adapter without
//! a token, switched off, or not built into this binary is skipped with one line saying why.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use tokio::task::JoinSet;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::OutboxWorker;
use webcare_adapters::secret::Secret;

use crate::config::{DiscordSection, TelegramSection};
use crate::service::Shutdown;

/// The platform adapters that will run, and a line for each one that will not.
#[derive(Debug, Clone, Default)]
pub struct Platforms {
    #[cfg(feature = "telegram")]
    pub telegram: Option<webcare_adapters::telegram::TelegramConfig>,
    #[cfg(feature = "discord")]
    pub discord: Option<webcare_adapters::discord::DiscordConfig>,
    /// `telegram: skipped (…)`, one per adapter that does not run.
    pub skipped: Vec<String>,
}

impl Platforms {
    /// Reads the sections and the tokens. `env` reads one environment variable; `base` is the
    /// directory relative token files are relative to. A token file that is configured but
    /// cannot be read is an error: the operator asked for the adapter.
    pub fn build(
        telegram: &TelegramSection,
        discord: &DiscordSection,
        base: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Platforms> {
        let mut platforms = Platforms::default();

        let telegram_token = if telegram.enabled.unwrap_or(true) {
            read_secret(
                "Telegram token",
                "TELEGRAM_BOT_TOKEN",
                telegram.token_file.as_deref(),
                base,
                env,
            )?
        } else {
            None
        };
        match telegram_token {
            #[cfg(feature = "telegram")]
            Some(token) => {
                use webcare_adapters::telegram::TelegramConfig;
                let defaults = TelegramConfig::new(token);
                let webhook = match telegram.webhook_url.clone().filter(|u| !u.is_empty()) {
                    Some(url) => Some(webcare_adapters::telegram::WebhookConfig {
                        url,
                        secret: read_secret(
                            "Telegram webhook secret",
                            "TELEGRAM_WEBHOOK_SECRET",
                            telegram.webhook_secret_file.as_deref(),
                            base,
                            env,
                        )?,
                    }),
                    None => None,
                };
                platforms.telegram = Some(TelegramConfig {
                    webhook,
                    api_url: telegram
                        .api_url
                        .clone()
                        .filter(|u| !u.is_empty())
                        .unwrap_or(defaults.api_url.clone()),
                    poll_timeout: telegram
                        .poll_timeout_secs
                        .map_or(defaults.poll_timeout, std::time::Duration::from_secs),
                    ..defaults
                });
            }
            #[cfg(not(feature = "telegram"))]
            Some(_) => platforms
                .skipped
                .push("telegram: skipped (not built into this binary)".into()),
            None if !telegram.enabled.unwrap_or(true) => platforms
                .skipped
                .push("telegram: skipped (enabled = false in [telegram])".into()),
            None => platforms.skipped.push(
                "telegram: skipped (no token: set TELEGRAM_BOT_TOKEN or [telegram] token_file)"
                    .into(),
            ),
        }

        let discord_token = if discord.enabled.unwrap_or(true) {
            read_secret(
                "Discord token",
                "DISCORD_BOT_TOKEN",
                discord.token_file.as_deref(),
                base,
                env,
            )?
        } else {
            None
        };
        let channels = match &discord.channels {
            Some(channels) => channels.ids()?,
            None => Vec::new(),
        };
        match discord_token {
            #[cfg(feature = "discord")]
            Some(token) => {
                use webcare_adapters::discord::DiscordConfig;
                platforms.discord = Some(DiscordConfig {
                    api_url: discord.api_url.clone().filter(|u| !u.is_empty()),
                    channels: channels.into_iter().collect(),
                    ..DiscordConfig::new(token)
                });
            }
            #[cfg(not(feature = "discord"))]
            Some(_) => {
                let _ = channels;
                platforms
                    .skipped
                    .push("discord: skipped (not built into this binary)".into())
            }
            None if !discord.enabled.unwrap_or(true) => platforms
                .skipped
                .push("discord: skipped (enabled = false in [discord])".into()),
            None => platforms.skipped.push(
                "discord: skipped (no token: set DISCORD_BOT_TOKEN or [discord] token_file)".into(),
            ),
        }
        Ok(platforms)
    }

    /// Registers each adapter's delivery with `worker` and spawns its intake loop on
    /// `adapters`, stopping at `shutdown`; pushes one line per platform to `lines`.
    /// Telegram's webhook mode mounts its route on `router`.
    pub fn start(
        self,
        gateway: &Gateway,
        worker: &mut OutboxWorker,
        router: &mut axum::Router,
        adapters: &mut JoinSet<()>,
        shutdown: &Shutdown,
        lines: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        #[cfg(not(any(feature = "telegram", feature = "discord")))]
        let _ = (gateway, worker, router, adapters, shutdown);
        #[cfg(all(feature = "discord", not(feature = "telegram")))]
        let _ = &router;

        #[cfg(feature = "telegram")]
        if let Some(config) = self.telegram {
            use std::sync::Arc;
            use webcare_adapters::telegram::{self, TelegramDeliver};
            use webcare_engine::ChannelKind;

            let deliver = TelegramDeliver::new(&config).context("telegram")?;
            worker.register(ChannelKind::Telegram, Arc::new(deliver));
            let (gateway, stop) = (gateway.clone(), shutdown.wait());
            if let Some(webhook) = &config.webhook {
                let url = webhook.url.clone();
                let secured = webhook.secret.is_some();
                let hook =
                    telegram::TelegramWebhook::new(gateway, config.clone()).context("telegram")?;
                *router = std::mem::take(router).merge(hook.routes());
                // Only the origin: the path is the webhook's address, as good as a password
                // when there is no secret token.
                lines.push(format!(
                    "telegram: webhook via {} ({}), Bot API {}",
                    crate::service::origin_of(&url),
                    if secured {
                        "secret token set"
                    } else {
                        "no secret token: set TELEGRAM_WEBHOOK_SECRET"
                    },
                    config.api_url
                ));
                adapters.spawn(async move {
                    if let Err(error) = hook.run(stop).await {
                        tracing::error!(%error, "telegram: the adapter stopped");
                    }
                });
            } else {
                lines.push(format!("telegram: long polling {}", config.api_url));
                adapters.spawn(async move {
                    if let Err(error) = telegram::run(gateway, config, stop).await {
                        tracing::error!(%error, "telegram: the adapter stopped");
                    }
                });
            }
        }

        #[cfg(feature = "discord")]
        if let Some(config) = self.discord {
            use std::sync::Arc;
            use webcare_adapters::discord::{self, DiscordDeliver};
            use webcare_engine::ChannelKind;

            let deliver = DiscordDeliver::new(&config).context("discord")?;
            worker.register(ChannelKind::Discord, Arc::new(deliver));
            lines.push(format!(
                "discord: gateway{}, direct messages and {} configured channel{}",
                config
                    .api_url
                    .as_deref()
                    .map(|u| format!(" via {u}"))
                    .unwrap_or_default(),
                config.channels.len(),
                if config.channels.len() == 1 { "" } else { "s" }
            ));
            let (gateway, stop) = (gateway.clone(), shutdown.wait());
            adapters.spawn(async move {
                if let Err(error) = discord::run(gateway, config, stop).await {
                    tracing::error!(%error, "discord: the adapter stopped");
                }
            });
        }

        lines.extend(self.skipped);
        Ok(())
    }
}

/// The secret from `variable`, else from `<variable>_FILE` or the section's `*_file` key.
pub(crate) fn read_secret(
    what: &str,
    variable: &str,
    token_file: Option<&Path>,
    base: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Secret>> {
    if let Some(token) = env(variable).map(Secret::new).filter(|t| !t.is_empty()) {
        return Ok(Some(token));
    }
    let path = env(&format!("{variable}_FILE"))
        .map(PathBuf::from)
        .or_else(|| {
            token_file.map(|p| match base {
                Some(base) if p.is_relative() => base.join(p),
                _ => p.to_owned(),
            })
        });
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the {what} file `{}`", path.display()))?;
    let token = Secret::new(text);
    if token.is_empty() {
        return Err(anyhow!("the {what} file `{}` is empty", path.display()));
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn without_tokens_both_are_skipped_with_a_reason() -> anyhow::Result<()> {
        let platforms = Platforms::build(
            &TelegramSection::default(),
            &DiscordSection::default(),
            None,
            &none,
        )?;
        assert_eq!(platforms.skipped.len(), 2);
        assert!(platforms.skipped[0].contains("TELEGRAM_BOT_TOKEN"));
        assert!(platforms.skipped[1].contains("DISCORD_BOT_TOKEN"));
        Ok(())
    }

    #[cfg(feature = "telegram")]
    #[test]
    fn the_webhook_secret_comes_from_the_environment_or_a_file_and_never_prints()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("hook.secret"), "from_file-1\n")?;
        let telegram = TelegramSection {
            webhook_url: Some("https://bot.example.org/telegram/updates".into()),
            webhook_secret_file: Some("hook.secret".into()),
            ..TelegramSection::default()
        };
        let token = |name: &str| (name == "TELEGRAM_BOT_TOKEN").then(|| "123:abc".to_owned());
        let build = |env: &dyn Fn(&str) -> Option<String>| {
            Platforms::build(&telegram, &DiscordSection::default(), Some(dir.path()), env)
        };
        let from_file = build(&token)?
            .telegram
            .and_then(|t| t.webhook)
            .ok_or_else(|| anyhow!("webhook mode"))?;
        assert_eq!(from_file.url, "https://bot.example.org/telegram/updates");
        assert_eq!(
            from_file.secret.as_ref().map(|s| s.expose()),
            Some("from_file-1")
        );
        assert!(!format!("{from_file:?}").contains("from_file-1"));

        let env = |name: &str| match name {
            "TELEGRAM_WEBHOOK_SECRET" => Some("from_env".to_owned()),
            other => token(other),
        };
        let from_env = build(&env)?.telegram.and_then(|t| t.webhook);
        assert_eq!(
            from_env
                .and_then(|w| w.secret)
                .map(|s| s.expose().to_owned()),
            Some("from_env".to_owned())
        );

        let polling = Platforms::build(
            &TelegramSection::default(),
            &DiscordSection::default(),
            None,
            &token,
        )?;
        assert!(polling.telegram.is_some_and(|t| t.webhook.is_none()));
        Ok(())
    }

    #[cfg(all(feature = "telegram", feature = "discord"))]
    #[test]
    fn tokens_come_from_the_environment_or_a_file_and_never_print() -> anyhow::Result<()> {
        use crate::config::DiscordChannels;

        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("discord.token"), "from-file\n")?;
        let telegram = TelegramSection {
            api_url: Some("http://127.0.0.1:8081".into()),
            poll_timeout_secs: Some(5),
            ..TelegramSection::default()
        };
        let discord = DiscordSection {
            token_file: Some("discord.token".into()),
            channels: Some(DiscordChannels::Text("123, 456".into())),
            ..DiscordSection::default()
        };
        let env = |name: &str| (name == "TELEGRAM_BOT_TOKEN").then(|| "123:from-env".to_owned());
        let platforms = Platforms::build(&telegram, &discord, Some(dir.path()), &env)?;
        assert!(platforms.skipped.is_empty(), "{:?}", platforms.skipped);
        let tg = platforms
            .telegram
            .clone()
            .ok_or_else(|| anyhow!("telegram on"))?;
        assert_eq!(tg.token.expose(), "123:from-env");
        assert_eq!(tg.api_url, "http://127.0.0.1:8081");
        assert_eq!(tg.poll_timeout, std::time::Duration::from_secs(5));
        let dc = platforms
            .discord
            .clone()
            .ok_or_else(|| anyhow!("discord on"))?;
        assert_eq!(dc.token.expose(), "from-file");
        assert_eq!(dc.channels.iter().copied().collect::<Vec<_>>(), [123, 456]);
        let printed = format!("{platforms:?}");
        assert!(
            !printed.contains("from-env") && !printed.contains("from-file"),
            "{printed}"
        );

        let off = TelegramSection {
            enabled: Some(false),
            ..TelegramSection::default()
        };
        let platforms = Platforms::build(&off, &DiscordSection::default(), None, &env)?;
        assert!(platforms.telegram.is_none());
        assert!(platforms.skipped[0].contains("enabled = false"));

        let missing = DiscordSection {
            token_file: Some("nope.token".into()),
            ..DiscordSection::default()
        };
        let error = Platforms::build(
            &TelegramSection::default(),
            &missing,
            Some(dir.path()),
            &none,
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(error.contains("nope.token"), "{error}");
        Ok(())
    }
}
