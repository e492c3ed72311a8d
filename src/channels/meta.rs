//! `[meta]`: WhatsApp Business, Messenger and Instagram through one Graph API webhook served on
//! webcare's own web server. The three secrets never come from `webcare.toml`: the app secret
//! (`META_APP_SECRET`, which signs every delivery), the verify token (`META_VERIFY_TOKEN`, for
//! Meta's subscription check) and the access token (`META_ACCESS_TOKEN`, for the Send API) come
//! from the environment or files. The channel runs only when all three are there, because
//! without any one of them it would either take unsigned messages or never answer. One mode
//! applies to the three channels.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use webcare_engine::{ChannelKind, Mode};

use super::{Built, Env, Section};
use crate::secrets::read_secret;

/// `[meta]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "meta"), allow(dead_code))]
pub struct MetaSection {
    /// Default on (when the three secrets are there).
    pub enabled: Option<bool>,
    /// `live` (default), `shadow` or `listen`, for WhatsApp, Messenger and Instagram alike.
    pub mode: Option<Mode>,
    /// Files holding the secrets (also `META_APP_SECRET_FILE` and so on).
    pub app_secret_file: Option<PathBuf>,
    pub verify_token_file: Option<PathBuf>,
    pub access_token_file: Option<PathBuf>,
    /// The path Meta posts to on webcare's server; default `/meta/webhook`.
    pub webhook_path: Option<String>,
    /// The Graph API; default `https://graph.facebook.com`.
    pub graph_url: Option<String>,
    /// Default `v21.0`.
    pub api_version: Option<String>,
    /// The approved WhatsApp template (one body parameter) an agent's reply after the 24-hour
    /// window is sent as; without it such a reply is refused with the reason.
    pub reply_template: Option<String>,
    /// The template's language code; default `nl`.
    pub reply_template_language: Option<String>,
}

impl Section for MetaSection {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    fn kinds(&self) -> Vec<ChannelKind> {
        vec![
            ChannelKind::Whatsapp,
            ChannelKind::Messenger,
            ChannelKind::Instagram,
        ]
    }

    fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn build(&self, base: Option<&Path>, env: Env<'_>) -> anyhow::Result<Built> {
        if !self.enabled.unwrap_or(true) {
            return Ok(Built::Off(
                "meta: skipped (enabled = false in [meta])".into(),
            ));
        }
        let read = |what, variable, file: &Option<PathBuf>| {
            read_secret(what, variable, file.as_deref(), base, env)
        };
        let app_secret = read("Meta app secret", "META_APP_SECRET", &self.app_secret_file)?;
        let verify = read(
            "Meta verify token",
            "META_VERIFY_TOKEN",
            &self.verify_token_file,
        )?;
        let access = read(
            "Meta access token",
            "META_ACCESS_TOKEN",
            &self.access_token_file,
        )?;
        let missing: Vec<&str> = [
            (app_secret.is_none(), "META_APP_SECRET"),
            (verify.is_none(), "META_VERIFY_TOKEN"),
            (access.is_none(), "META_ACCESS_TOKEN"),
        ]
        .into_iter()
        .filter_map(|(gone, name)| gone.then_some(name))
        .collect();
        match (app_secret, verify, access) {
            #[cfg(feature = "meta")]
            (Some(app_secret), Some(verify), Some(access)) => {
                let config = self.config(app_secret, verify, access)?;
                Ok(Built::Runs(Box::new(adapter::Meta(config))))
            }
            #[cfg(not(feature = "meta"))]
            (Some(_), Some(_), Some(_)) => Ok(Built::Off(
                "meta: skipped (not built into this binary)".into(),
            )),
            _ if missing.len() == 3 => Ok(Built::Off(
                "meta: skipped (no secrets: set META_APP_SECRET, META_VERIFY_TOKEN and META_ACCESS_TOKEN, or the [meta] *_file keys)".into(),
            )),
            _ => Ok(Built::Off(format!(
                "meta: skipped (missing {}; all three of META_APP_SECRET, META_VERIFY_TOKEN and META_ACCESS_TOKEN are needed)",
                missing.join(", ")
            ))),
        }
    }
}

#[cfg(feature = "meta")]
mod adapter {
    use std::sync::Arc;

    use anyhow::Context;
    use webcare_adapters::meta::{CHANNELS, MetaConfig, MetaWebhook, ReplyTemplate};
    use webcare_adapters::secret::Secret;
    use webcare_engine::ChannelKind;

    use super::MetaSection;
    use crate::channels::{Channel, Wiring};

    #[derive(Debug)]
    pub(super) struct Meta(pub(super) MetaConfig);

    impl MetaSection {
        pub(super) fn config(
            &self,
            app_secret: Secret,
            verify: Secret,
            access: Secret,
        ) -> anyhow::Result<MetaConfig> {
            let defaults = MetaConfig::new(app_secret, verify, access);
            let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
            let config = MetaConfig {
                webhook_path: set(&self.webhook_path).unwrap_or(defaults.webhook_path.clone()),
                graph_url: set(&self.graph_url).unwrap_or(defaults.graph_url.clone()),
                api_version: set(&self.api_version).unwrap_or(defaults.api_version.clone()),
                reply_template: set(&self.reply_template).map(|name| ReplyTemplate {
                    name,
                    language: set(&self.reply_template_language).unwrap_or_else(|| "nl".into()),
                }),
                ..defaults
            };
            webcare_adapters::meta::check_path(&config.webhook_path).context("[meta]")?;
            Ok(config)
        }
    }

    impl Channel for Meta {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Whatsapp
        }

        fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String> {
            let config = self.0;
            let line = format!(
                "meta: whatsapp, messenger, instagram via webhook http://{}{} (signed deliveries only), Graph API {} {}, {}",
                wiring.addr,
                config.webhook_path,
                config.graph_url,
                config.api_version,
                match &config.reply_template {
                    Some(t) => format!(
                        "agent replies after the 24-hour window as template `{}`",
                        t.name
                    ),
                    None =>
                        "agent replies after the 24-hour window refused (no reply_template)".into(),
                }
            );
            let hook = MetaWebhook::new(wiring.gateway.clone(), config).context("meta")?;
            for channel in CHANNELS {
                let deliver = hook.deliver(channel).context("meta")?;
                wiring.worker.register(channel, Arc::new(deliver));
            }
            wiring.mount(hook.routes());
            Ok(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(built: Built) -> String {
        match built {
            Built::Off(why) => why,
            Built::Runs(channel) => format!("runs: {channel:?}"),
        }
    }

    #[test]
    fn without_all_three_secrets_it_is_skipped_and_says_which_are_missing() -> anyhow::Result<()> {
        let none = |_: &str| None;
        let why = line(MetaSection::default().build(None, &none)?);
        assert!(why.starts_with("meta: skipped (no secrets"), "{why}");
        let some = |name: &str| (name == "META_APP_SECRET").then(|| "s3cr3t".to_owned());
        let why = line(MetaSection::default().build(None, &some)?);
        assert!(
            why.contains("META_VERIFY_TOKEN") && why.contains("META_ACCESS_TOKEN"),
            "{why}"
        );
        assert!(!why.contains("s3cr3t"));
        Ok(())
    }

    #[cfg(feature = "meta")]
    #[test]
    fn with_the_secrets_it_runs_and_never_prints_them() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("access.token"), "EAAG-from-file\n")?;
        let env = |name: &str| match name {
            "META_APP_SECRET" => Some("app-s3cr3t".to_owned()),
            "META_VERIFY_TOKEN" => Some("verify-s3cr3t".to_owned()),
            _ => None,
        };
        let section = MetaSection {
            access_token_file: Some("access.token".into()),
            reply_template: Some("antwoord".into()),
            ..MetaSection::default()
        };
        let built = line(section.build(Some(dir.path()), &env)?);
        assert!(built.starts_with("runs"), "{built}");
        for secret in ["app-s3cr3t", "verify-s3cr3t", "EAAG-from-file"] {
            assert!(!built.contains(secret), "{built}");
        }
        let bad = MetaSection {
            webhook_path: Some("/api/meta".into()),
            ..MetaSection::default()
        };
        let all = |name: &str| name.starts_with("META_").then(|| "x".to_owned());
        assert!(bad.build(None, &all).is_err());
        Ok(())
    }
}
