//! `[http_channel]`: the generic HTTP channel, for any system that can post JSON
//! (`POST /api/v1/messages`). The bot's reply comes back in the response and, with a
//! `callback_url`, is also posted there, signed when there is a secret. The signing secret is
//! never read from `webcare.toml` (it would end up in backups and version control): it comes
//! from `WEBCARE_HTTP_SECRET` or a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Deserialize;
use webcare_adapters::http::{
    self as adapter, CallbackDeliver, HttpChannel, HttpChannelConfig, SigningKey,
};
use webcare_engine::{ChannelKind, Mode};

use super::{Built, Channel, Env, Section, Wiring, origin_of};

/// `[http_channel]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpChannelSection {
    /// Default on.
    pub enabled: Option<bool>,
    /// `live` (default), `shadow` (decide and escalate, send nothing automatic) or `listen`
    /// (decide and record only); see `webcare_engine::mode`.
    pub mode: Option<Mode>,
    /// Where replies are posted (signed); without it the bot's reply is only in the response.
    pub callback_url: Option<String>,
    /// A file holding the signing secret (also `WEBCARE_HTTP_SECRET_FILE`).
    pub secret_file: Option<PathBuf>,
    /// Refuse inbound requests without a valid `X-Webcare-Signature`; on by default once a
    /// secret is set (`false` lets a secret sign callbacks only).
    pub require_signature: Option<bool>,
    /// The largest request body; default 64 KiB.
    pub max_body_kib: Option<usize>,
    /// The longest a callback may take; default 10 s.
    pub callback_timeout_secs: Option<u64>,
}

impl Section for HttpChannelSection {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Http
    }

    fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn build(&self, base: Option<&Path>, env: Env<'_>) -> anyhow::Result<Built> {
        Ok(match self.config(base, env)? {
            Some(config) => Built::Runs(Box::new(Http(config))),
            None => Built::Off("http channel: off".into()),
        })
    }
}

impl HttpChannelSection {
    /// The adapter's settings; `None` when the channel is switched off.
    fn config(
        &self,
        base: Option<&Path>,
        env: Env<'_>,
    ) -> anyhow::Result<Option<HttpChannelConfig>> {
        if !self.enabled.unwrap_or(true) {
            return Ok(None);
        }
        let secret_file = env("WEBCARE_HTTP_SECRET_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                self.secret_file.as_ref().map(|p| match base {
                    Some(base) if p.is_relative() => base.join(p),
                    _ => p.clone(),
                })
            });
        let secret = match (env("WEBCARE_HTTP_SECRET"), secret_file) {
            (Some(secret), _) => Some(secret),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!("cannot read the HTTP channel secret `{}`", path.display())
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let secret = match secret {
            Some(s) if s.is_empty() => {
                return Err(anyhow!("the HTTP channel secret is empty"));
            }
            other => other.map(SigningKey::new),
        };
        let require_signature = self.require_signature.unwrap_or(secret.is_some());
        Ok(Some(HttpChannelConfig {
            callback_url: self.callback_url.clone().filter(|u| !u.is_empty()),
            secret,
            // A configured secret is enforced unless switched off explicitly.
            require_signature,
            max_body: self
                .max_body_kib
                .map_or(adapter::DEFAULT_MAX_BODY, |kib| kib.saturating_mul(1024)),
            callback_timeout: Duration::from_secs(self.callback_timeout_secs.unwrap_or(10)),
        }))
    }
}

#[derive(Debug)]
struct Http(HttpChannelConfig);

impl Channel for Http {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Http
    }

    fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String> {
        let config = self.0;
        let replies = match &config.callback_url {
            Some(url) => {
                let deliver =
                    CallbackDeliver::new(url, config.secret.clone(), config.callback_timeout)?;
                wiring.worker.register(ChannelKind::Http, Arc::new(deliver));
                format!(
                    "replies to {}{}",
                    origin_of(url),
                    if config.secret.is_some() {
                        " (signed)"
                    } else {
                        " (unsigned: set WEBCARE_HTTP_SECRET)"
                    }
                )
            }
            None => "replies in the response only (no callback_url)".into(),
        };
        let line = format!(
            "http channel: POST http://{}/api/v1/messages{} — {replies}",
            wiring.addr,
            match (config.require_signature, config.secret.is_some()) {
                (true, _) => " (signature required)",
                (false, true) => " (signature NOT checked: require_signature = false)",
                (false, false) => " (unsigned: set WEBCARE_HTTP_SECRET to require signatures)",
            },
        );
        let channel = HttpChannel::new(wiring.gateway.clone(), config)?;
        wiring.mount(channel.routes());
        // Replies given in responses are marked sent until the last request is served.
        let stop = wiring.shutdown.wait();
        wiring.tasks.spawn(async move {
            stop.await;
            channel.finish().await;
        });
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        section: &HttpChannelSection,
        base: Option<&Path>,
        env: Env<'_>,
    ) -> anyhow::Result<HttpChannelConfig> {
        section
            .config(base, env)?
            .ok_or_else(|| anyhow!("http on by default"))
    }

    #[test]
    fn the_secret_comes_from_the_environment_or_a_file_and_never_prints() -> anyhow::Result<()> {
        let none = |_: &str| None;
        let http = config(&HttpChannelSection::default(), None, &none)?;
        assert!(http.secret.is_none() && http.callback_url.is_none());

        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("secret"), "from-file\n")?;
        let section = HttpChannelSection {
            secret_file: Some("secret".into()),
            ..HttpChannelSection::default()
        };
        let key = config(&section, Some(dir.path()), &none)?
            .secret
            .ok_or_else(|| anyhow!("secret read"))?;
        assert!(key.verify(b"x", &SigningKey::new("from-file").sign(b"x")));
        assert_eq!(format!("{key:?}"), "***");

        let env = |name: &str| (name == "WEBCARE_HTTP_SECRET").then(|| "from-env".to_owned());
        let key = config(&section, Some(dir.path()), &env)?
            .secret
            .ok_or_else(|| anyhow!("secret read"))?;
        assert!(key.verify(b"x", &SigningKey::new("from-env").sign(b"x")));
        Ok(())
    }

    #[test]
    fn a_configured_secret_is_enforced_unless_switched_off() -> anyhow::Result<()> {
        let env = |name: &str| (name == "WEBCARE_HTTP_SECRET").then(|| "from-env".to_owned());
        let none = |_: &str| None;
        let section = HttpChannelSection::default();
        assert!(config(&section, None, &env)?.require_signature);
        assert!(!config(&section, None, &none)?.require_signature);
        let off = HttpChannelSection {
            require_signature: Some(false),
            ..HttpChannelSection::default()
        };
        assert!(!config(&off, None, &env)?.require_signature);
        Ok(())
    }
}
