//! `[email]`: the organisation's mailbox, read over IMAP (IDLE) and answered over SMTP in the
//! customer's thread. The password is never read from `webcare.toml`: it comes from
//! `EMAIL_PASSWORD` (or `EMAIL_PASSWORD_FILE` / `password_file`), and an SMTP login of its own
//! from `EMAIL_SMTP_PASSWORD`. The channel runs when `address`, `imap_host` and `smtp_host`
//! are set and there is a password; otherwise its start line says what is missing.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use webcare_engine::{ChannelKind, Mode};

use super::{Built, Env, Section};
use crate::secrets::read_secret;

/// `[email]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "email"), allow(dead_code))]
pub struct EmailSection {
    /// Default on (when it is configured).
    pub enabled: Option<bool>,
    pub mode: Option<Mode>,
    /// The organisation's address (`gemeente@example.org`): replies come from it.
    pub address: Option<String>,
    pub imap_host: Option<String>,
    /// Default 993 with `tls`, 143 otherwise.
    pub imap_port: Option<u16>,
    /// `tls` (default) or `none` (a server on the same machine only).
    pub imap_security: Option<String>,
    pub smtp_host: Option<String>,
    /// Default 465 with `tls`, 587 with `starttls`, 25 with `none`.
    pub smtp_port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    pub smtp_security: Option<String>,
    /// The IMAP login; default the address.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// An SMTP login of its own (password in `EMAIL_SMTP_PASSWORD`); default the IMAP login.
    pub smtp_username: Option<String>,
    pub smtp_password_file: Option<PathBuf>,
    /// Default `INBOX`.
    pub mailbox: Option<String>,
    /// Where the mailbox position is kept; default `email-position.json` in the data directory.
    pub state_file: Option<PathBuf>,
    /// How often IDLE is issued again, in minutes; default 25 (servers may end it after 29).
    pub idle_renew_minutes: Option<u64>,
    /// A PEM file of CA certificates to trust for IMAP and SMTP over TLS besides the public
    /// roots (a mail server with a certificate of the organisation's own CA); relative to the
    /// config file.
    pub ca_file: Option<PathBuf>,
}

impl Section for EmailSection {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn mode(&self) -> Option<Mode> {
        self.mode
    }

    fn build(&self, base: Option<&Path>, env: Env<'_>) -> anyhow::Result<Built> {
        if !self.enabled.unwrap_or(true) {
            return Ok(Built::Off(
                "email: skipped (enabled = false in [email])".into(),
            ));
        }
        let missing: Vec<&str> = [
            (self.address.is_none(), "address"),
            (self.imap_host.is_none(), "imap_host"),
            (self.smtp_host.is_none(), "smtp_host"),
        ]
        .into_iter()
        .filter_map(|(gone, key)| gone.then_some(key))
        .collect();
        if missing.len() == 3 {
            return Ok(Built::Off("email: skipped (no [email] section)".into()));
        }
        if !missing.is_empty() {
            return Ok(Built::Off(format!(
                "email: skipped (set {} in [email])",
                missing.join(", ")
            )));
        }
        let password = read_secret(
            "e-mail password",
            "EMAIL_PASSWORD",
            self.password_file.as_deref(),
            base,
            env,
        )?;
        let smtp_password = read_secret(
            "SMTP password",
            "EMAIL_SMTP_PASSWORD",
            self.smtp_password_file.as_deref(),
            base,
            env,
        )?;
        match password {
            #[cfg(feature = "email")]
            Some(password) => Ok(Built::Runs(Box::new(adapter::Email(self.config(
                password,
                smtp_password,
                base,
            )?)))),
            #[cfg(not(feature = "email"))]
            Some(_) => {
                let _ = smtp_password;
                Ok(Built::Off(
                    "email: skipped (not built into this binary)".into(),
                ))
            }
            None => {
                let _ = smtp_password;
                Ok(Built::Off(
                    "email: skipped (no password: set EMAIL_PASSWORD or [email] password_file)"
                        .into(),
                ))
            }
        }
    }
}

#[cfg(feature = "email")]
mod adapter {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::{Context, anyhow};
    use webcare_adapters::email::{self, EmailConfig, EmailDeliver, Security, Server};
    use webcare_adapters::secret::Secret;
    use webcare_engine::ChannelKind;

    use super::EmailSection;
    use crate::channels::{Channel, Wiring};

    #[derive(Debug)]
    pub(super) struct Email(pub(super) EmailConfig);

    fn security(value: Option<&str>, default: Security, key: &str) -> anyhow::Result<Security> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("tls") => Ok(Security::Tls),
            Some("starttls") if key == "smtp_security" => Ok(Security::Starttls),
            Some("none") => Ok(Security::None),
            Some(other) => Err(anyhow!(
                "[email] {key} = `{other}`: expected {}",
                if key == "smtp_security" {
                    "tls, starttls or none"
                } else {
                    "tls or none"
                }
            )),
        }
    }

    impl EmailSection {
        pub(super) fn config(
            &self,
            password: Secret,
            smtp_password: Option<Secret>,
            base: Option<&Path>,
        ) -> anyhow::Result<EmailConfig> {
            let address = self.address.clone().unwrap_or_default();
            let imap_security = security(
                self.imap_security.as_deref(),
                Security::Tls,
                "imap_security",
            )?;
            let smtp_security = security(
                self.smtp_security.as_deref(),
                Security::Starttls,
                "smtp_security",
            )?;
            let username = self.username.clone().unwrap_or_else(|| address.clone());
            let smtp_login = match (&self.smtp_username, smtp_password) {
                (Some(user), Some(pw)) => Some((user.clone(), pw)),
                (None, Some(pw)) => Some((username.clone(), pw)),
                (_, None) if smtp_security == Security::None => None,
                (user, None) => Some((
                    user.clone().unwrap_or_else(|| username.clone()),
                    password.clone(),
                )),
            };
            let state_file = self.state_file.clone().map(|p| match base {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            });
            let ca_file = self.ca_file.clone().map(|p| match base {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            });
            if let Some(path) = &ca_file {
                // Said at start, not as a TLS failure on the first connection.
                webcare_adapters::email::read_ca_file(path).context("[email] ca_file")?;
            }
            Ok(EmailConfig {
                address,
                imap: Server {
                    host: self.imap_host.clone().unwrap_or_default(),
                    port: self.imap_port.unwrap_or(match imap_security {
                        Security::Tls => 993,
                        _ => 143,
                    }),
                    security: imap_security,
                },
                smtp: Server {
                    host: self.smtp_host.clone().unwrap_or_default(),
                    port: self.smtp_port.unwrap_or(match smtp_security {
                        Security::Tls => 465,
                        Security::Starttls => 587,
                        Security::None => 25,
                    }),
                    security: smtp_security,
                },
                username,
                password,
                smtp_login,
                mailbox: self.mailbox.clone().unwrap_or_else(|| "INBOX".into()),
                // Relative (or unset): resolved in the data directory when the channel starts.
                state_file: state_file.unwrap_or_else(|| "email-position.json".into()),
                ca_file,
                idle_renew: Duration::from_secs(
                    60 * self.idle_renew_minutes.unwrap_or(25).clamp(1, 28),
                ),
                retry_delay: Duration::from_secs(1),
                max_retry_delay: Duration::from_secs(300),
            })
        }
    }

    impl Channel for Email {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Email
        }

        fn start(self: Box<Self>, wiring: &mut Wiring<'_>) -> anyhow::Result<String> {
            let mut config = self.0;
            if config.state_file.is_relative() {
                config.state_file = wiring.data_dir.join(&config.state_file);
            }
            let deliver = EmailDeliver::new(&config, wiring.gateway.clone()).context("email")?;
            wiring
                .worker
                .register(ChannelKind::Email, Arc::new(deliver));
            let line = format!(
                "email: {} via IMAP {}:{} (IDLE, {}) and SMTP {}:{} ({}), position in {}",
                config.address,
                config.imap.host,
                config.imap.port,
                config.mailbox,
                config.smtp.host,
                config.smtp.port,
                match config.smtp.security {
                    Security::Tls => "tls",
                    Security::Starttls => "starttls",
                    Security::None => "no encryption",
                },
                config.state_file.display()
            );
            let (gateway, stop) = (wiring.gateway.clone(), wiring.shutdown.wait());
            wiring.tasks.spawn(async move {
                if let Err(error) = email::run(gateway, config, stop).await {
                    tracing::error!(%error, "email: the adapter stopped");
                }
            });
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
            Built::Runs(channel) => format!("runs {}", channel.kind()),
        }
    }

    #[test]
    fn it_runs_only_when_configured_and_says_what_is_missing() -> anyhow::Result<()> {
        let none = |_: &str| None;
        assert_eq!(
            line(EmailSection::default().build(None, &none)?),
            "email: skipped (no [email] section)"
        );
        let partial = EmailSection {
            address: Some("gemeente@example.org".into()),
            ..EmailSection::default()
        };
        let why = line(partial.build(None, &none)?);
        assert!(why.contains("imap_host, smtp_host"), "{why}");
        let full = EmailSection {
            address: Some("gemeente@example.org".into()),
            imap_host: Some("imap.example.org".into()),
            smtp_host: Some("smtp.example.org".into()),
            ..EmailSection::default()
        };
        assert!(line(full.build(None, &none)?).contains("EMAIL_PASSWORD"));
        let password = |name: &str| (name == "EMAIL_PASSWORD").then(|| "pw-s3cr3t".to_owned());
        let built = line(full.build(None, &password)?);
        if cfg!(feature = "email") {
            assert_eq!(built, "runs email");
        }
        assert!(!built.contains("pw-s3cr3t"));
        Ok(())
    }

    #[cfg(feature = "email")]
    #[test]
    fn a_ca_file_without_a_certificate_is_refused_at_start_with_its_path() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), "not a certificate\n")?;
        let section = EmailSection {
            address: Some("gemeente@example.org".into()),
            imap_host: Some("imap.example.org".into()),
            smtp_host: Some("smtp.example.org".into()),
            ca_file: Some("ca.pem".into()),
            ..EmailSection::default()
        };
        let password = |name: &str| (name == "EMAIL_PASSWORD").then(|| "pw".to_owned());
        let error = match section.build(Some(dir.path()), &password) {
            Ok(built) => panic!("accepted: {}", line(built)),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("ca_file"), "{error}");
        assert!(
            error.contains(&dir.path().join("ca.pem").display().to_string()),
            "{error}"
        );
        Ok(())
    }
}
