//! `[telegram]`: the Telegram bot, by long polling or, with `webhook_url`, by a webhook served
//! on webcare's own web server. The bot token is never read from `webcare.toml`: it comes from
//! `TELEGRAM_BOT_TOKEN` or a token file. The section parses in every binary; the adapter runs
//! only where the `telegram` feature is built in, and elsewhere says so.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use webcare_engine::{ChannelKind, Mode};

use super::{Built, Env, Section};
use crate::secrets::read_secret;

/// `[telegram]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
// Read only when the adapter is built in; without it the section must still parse.
#[cfg_attr(not(feature = "telegram"), allow(dead_code))]
pub struct TelegramSection {
    /// Default on (when there is a token).
    pub enabled: Option<bool>,
    /// `live` (default), `shadow` (decide and escalate, send nothing automatic) or `listen`
    /// (decide and record only); see `webcare_engine::mode`.
    pub mode: Option<Mode>,
    /// A file holding the bot token (also `TELEGRAM_BOT_TOKEN_FILE`).
    pub token_file: Option<PathBuf>,
    /// The Bot API server without a trailing slash; default `https://api.telegram.org` (a
    /// self-hosted `telegram-bot-api` server goes here).
    pub api_url: Option<String>,
    /// How long one long poll waits for news; default 25 s.
    pub poll_timeout_secs: Option<u64>,
    /// Webhook mode instead of long polling: the public HTTPS URL Telegram posts updates to
    /// (`https://webcare.example.org/telegram/updates`); webcare serves its path on its own
    /// web server. The secret token comes from `TELEGRAM_WEBHOOK_SECRET` or a file.
    pub webhook_url: Option<String>,
    /// A file holding the webhook's secret token (also `TELEGRAM_WEBHOOK_SECRET_FILE`).
    pub webhook_secret_file: Option<PathBuf>,
}

impl Section for TelegramSection {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn build(&self, base: Option<&Path>, env: Env<'_>) -> anyhow::Result<Built> {
        if !self.enabled.unwrap_or(true) {
            return Ok(Built::Off(
                "telegram: skipped (enabled = false in [telegram])".into(),
            ));
        }
        let token = read_secret(
            "Telegram token",
            "TELEGRAM_BOT_TOKEN",
            self.token_file.as_deref(),
            base,
            env,
        )?;
        match token {
            #[cfg(feature = "telegram")]
            Some(token) => Ok(Built::Runs(Box::new(adapter::Telegram(
                self.config(token, base, env)?,
            )))),
            #[cfg(feature = "telegram")]
            None => Ok(Built::Off(
                "telegram: skipped (no token: set TELEGRAM_BOT_TOKEN or [telegram] token_file)"
                    .into(),
            )),
            // Here a token would not help, so the line does not ask for one.
            #[cfg(not(feature = "telegram"))]
            _ => Ok(Built::Off(
                "telegram: skipped (not built into this binary)".into(),
            )),
        }
    }
}

#[cfg(feature = "telegram")]
mod adapter {
    use std::path::Path;
    use std::sync::Arc;

    use anyhow::Context;
    use webcare_adapters::secret::Secret;
    use webcare_adapters::telegram::{
        self, TelegramConfig, TelegramDeliver, TelegramWebhook, WebhookConfig,
    };
    use webcare_engine::ChannelKind;

    use super::TelegramSection;
    use crate::channels::{Channel, Env, Wiring, origin_of};
    use crate::secrets::read_secret;

    #[derive(Debug)]
    pub(super) struct Telegram(pub(super) TelegramConfig);

    impl TelegramSection {
        /// The adapter's settings with `token`, the webhook's secret read.
        pub(super) fn config(
            &self,
            token: Secret,
            base: Option<&Path>,
            env: Env<'_>,
        ) -> anyhow::Result<TelegramConfig> {
            let defaults = TelegramConfig::new(token);
            let webhook = match self.webhook_url.clone().filter(|u| !u.is_empty()) {
                Some(url) => Some(WebhookConfig {
                    url,
                    secret: read_secret(
                        "Telegram webhook secret",
                        "TELEGRAM_WEBHOOK_SECRET",
                        self.webhook_secret_file.as_deref(),
                        base,
                        env,
                    )?,
                }),
                None => None,
            };
            Ok(TelegramConfig {
                webhook,
                api_url: self
                    .api_url
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or(defaults.api_url.clone()),
                poll_timeout: self
                    .poll_timeout_secs
                    .map_or(defaults.poll_timeout, std::time::Duration::from_secs),
                ..defaults
            })
        }
    }

    impl Channel for Telegram {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Telegram
        }

        fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String> {
            let config = self.0;
            let deliver = TelegramDeliver::new(&config).context("telegram")?;
            wiring
                .worker
                .register(ChannelKind::Telegram, Arc::new(deliver));
            let (gateway, stop) = (wiring.gateway.clone(), wiring.shutdown.wait());
            let Some(webhook) = &config.webhook else {
                let line = format!(
                    "telegram: long polling {}{}",
                    config.api_url,
                    if wiring.leader.is_some() {
                        " (on the leading instance)"
                    } else {
                        ""
                    }
                );
                drop(stop);
                // Two pollers of one bot would take each other's updates: only the leader polls.
                crate::cluster::spawn_led(
                    wiring.tasks,
                    wiring.leader.clone(),
                    wiring.shutdown,
                    "telegram",
                    move |stop| {
                        let (gateway, config) = (gateway.clone(), config.clone());
                        async move {
                            if let Err(error) = telegram::run(gateway, config, stop).await {
                                tracing::error!(%error, "telegram: the adapter stopped");
                            }
                        }
                    },
                );
                return Ok(line);
            };
            // Only the origin: the path is the webhook's address, as good as a password when
            // there is no secret token.
            let line = format!(
                "telegram: webhook via {} ({}), Bot API {}",
                origin_of(&webhook.url),
                if webhook.secret.is_some() {
                    "secret token set"
                } else {
                    "no secret token: set TELEGRAM_WEBHOOK_SECRET"
                },
                config.api_url
            );
            let hook = TelegramWebhook::new(gateway, config).context("telegram")?;
            wiring.mount(hook.routes());
            wiring.tasks.spawn(async move {
                if let Err(error) = hook.run(stop).await {
                    tracing::error!(%error, "telegram: the adapter stopped");
                }
            });
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

    fn skipped(built: Built) -> String {
        match built {
            Built::Off(why) => why,
            Built::Runs(channel) => format!("runs: {channel:?}"),
        }
    }

    #[test]
    fn without_a_token_it_is_skipped_with_a_reason() -> anyhow::Result<()> {
        let why = skipped(TelegramSection::default().build(None, &none)?);
        let expected = if cfg!(feature = "telegram") {
            "TELEGRAM_BOT_TOKEN"
        } else {
            "not built"
        };
        assert!(
            why.starts_with("telegram: skipped") && why.contains(expected),
            "{why}"
        );
        let off = TelegramSection {
            enabled: Some(false),
            ..TelegramSection::default()
        };
        let token = |name: &str| (name == "TELEGRAM_BOT_TOKEN").then(|| "123:abc".to_owned());
        assert!(skipped(off.build(None, &token)?).contains("enabled = false"));
        Ok(())
    }

    #[cfg(feature = "telegram")]
    #[test]
    fn the_token_and_the_webhook_secret_come_from_the_environment_or_a_file_and_never_print()
    -> anyhow::Result<()> {
        use anyhow::anyhow;
        use webcare_adapters::secret::Secret;

        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("hook.secret"), "from_file-1\n")?;
        let section = TelegramSection {
            webhook_url: Some("https://bot.example.org/telegram/updates".into()),
            webhook_secret_file: Some("hook.secret".into()),
            ..TelegramSection::default()
        };
        let token = || Secret::new("123:abc");
        let from_file = section
            .config(token(), Some(dir.path()), &none)?
            .webhook
            .ok_or_else(|| anyhow!("webhook mode"))?;
        assert_eq!(from_file.url, "https://bot.example.org/telegram/updates");
        assert_eq!(
            from_file.secret.as_ref().map(|s| s.expose()),
            Some("from_file-1")
        );
        assert!(!format!("{from_file:?}").contains("from_file-1"));

        let env = |name: &str| (name == "TELEGRAM_WEBHOOK_SECRET").then(|| "from_env".to_owned());
        let from_env = section.config(token(), Some(dir.path()), &env)?.webhook;
        assert_eq!(
            from_env
                .and_then(|w| w.secret)
                .map(|s| s.expose().to_owned()),
            Some("from_env".to_owned())
        );

        let polling = TelegramSection {
            api_url: Some("http://127.0.0.1:8081".into()),
            poll_timeout_secs: Some(5),
            ..TelegramSection::default()
        };
        let config = polling.config(token(), None, &none)?;
        assert!(config.webhook.is_none());
        assert_eq!(config.api_url, "http://127.0.0.1:8081");
        assert_eq!(config.poll_timeout, std::time::Duration::from_secs(5));

        let env = |name: &str| (name == "TELEGRAM_BOT_TOKEN").then(|| "123:from-env".to_owned());
        let built = polling.build(None, &env)?;
        let printed = format!("{built:?}");
        assert!(
            printed.contains("Telegram") && !printed.contains("from-env"),
            "{printed}"
        );
        Ok(())
    }
}
