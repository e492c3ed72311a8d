//! The inbox in `webcare run`: the `[inbox]` and `[notifications.<team>]` sections, and the one
//! call [`crate::service`] makes to mount the inbox, start the SLA timer and the notifier. It
//! exists so the service stays a list of parts and the inbox's settings live next to the
//! inbox's wiring.
//!
//! Secrets stay out of `webcare.toml`, as everywhere: a webhook's signing secret comes from
//! `WEBCARE_NOTIFY_<TEAM>_SECRET` (team id upper-cased), Telegram and Discord notifications go
//! through the platform adapters, which read their own tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use axum::Router;
use serde::Deserialize;
use tokio::task::JoinSet;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::http::SigningKey;
use webcare_adapters::outbox::OutboxWorker;
use webcare_engine::{ChannelKind, SharedClock, SystemClock};
use webcare_inbox::notify::{Notifier, NotifyConfig, TeamChannels, Webhook};
use webcare_inbox::sla::SlaTimer;
use webcare_inbox::{Inbox, InboxConfig};

use crate::shutdown::Shutdown;

/// `[inbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSection {
    /// Default on.
    pub enabled: Option<bool>,
    /// Mark the session cookie `Secure`; turn on behind a TLS proxy. Default off.
    #[serde(default)]
    pub secure_cookies: bool,
    /// The public address of webcare (`https://webcare.example.org`), for links in
    /// notifications.
    pub public_url: Option<String>,
    /// Hours a login lasts; default 10.
    pub session_hours: Option<u32>,
    /// Wrong passwords per login and per address before a pause; default 5 in 15 minutes.
    pub login_failures: Option<usize>,
    pub login_window_minutes: Option<u32>,
    /// How often the SLA timer looks at least; default 30 s (it also wakes at each deadline).
    pub sla_poll_secs: Option<u64>,
}

/// `[notifications.<team>]`: where a team hears about its escalations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSection {
    /// A URL that takes a JSON POST (Slack/Teams bridges).
    pub webhook: Option<String>,
    /// A Telegram group's chat id (needs the Telegram adapter).
    pub telegram_chat: Option<String>,
    /// A Discord channel id (needs the Discord adapter).
    pub discord_channel: Option<String>,
}

/// The inbox's runtime settings and the clock the whole service runs on.
#[derive(Clone)]
pub struct InboxSettings {
    pub enabled: bool,
    pub config: InboxConfig,
    pub notify: NotifyConfig,
    pub sla_poll: Duration,
    /// Intake, the outbox worker, the SLA timer and the inbox read "now" here: the system
    /// clock in production, a manual one in tests.
    pub clock: SharedClock,
}

impl std::fmt::Debug for InboxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxSettings")
            .field("enabled", &self.enabled)
            .field("config", &self.config)
            .field(
                "teams notified",
                &self.notify.teams.keys().collect::<Vec<_>>(),
            )
            .field("sla_poll", &self.sla_poll)
            .finish_non_exhaustive()
    }
}

impl InboxSettings {
    /// The inbox refuses an agent's WhatsApp reply after the 24-hour window unless `[meta]`
    /// names an approved template to send it as (`None` or blank: refused).
    pub fn with_reply_template(mut self, template: Option<&str>) -> Self {
        self.config.reply_template = template
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        self
    }

    pub fn build(
        section: &InboxSection,
        notifications: &BTreeMap<String, NotificationSection>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<InboxSettings> {
        let defaults = InboxConfig::default();
        let config = InboxConfig {
            secure_cookies: section.secure_cookies,
            session_ttl: section.session_hours.map_or(defaults.session_ttl, |h| {
                chrono::Duration::hours(i64::from(h.max(1)))
            }),
            login_failures: section.login_failures.unwrap_or(defaults.login_failures),
            login_window: section
                .login_window_minutes
                .map_or(defaults.login_window, |m| {
                    chrono::Duration::minutes(i64::from(m.max(1)))
                }),
            ..defaults
        };
        let mut teams = BTreeMap::new();
        for (team, channels) in notifications {
            let secret_var = format!("WEBCARE_NOTIFY_{}_SECRET", team.to_ascii_uppercase());
            let webhook = channels
                .webhook
                .clone()
                .filter(|u| !u.is_empty())
                .map(|url| Webhook {
                    url,
                    secret: env(&secret_var).map(SigningKey::new),
                });
            if webhook.is_none()
                && channels.telegram_chat.is_none()
                && channels.discord_channel.is_none()
            {
                return Err(anyhow!(
                    "`[notifications.{team}]` names no channel; set `webhook`, `telegram_chat` or `discord_channel`"
                ));
            }
            // Checked now: a typo would otherwise surface only as a failed notification on
            // the day the first escalation arrives.
            if let Some(chat) = &channels.telegram_chat
                && chat.trim().parse::<i64>().is_err()
            {
                return Err(anyhow!(
                    "`[notifications.{team}] telegram_chat`: `{chat}` is not a Telegram chat id (a group's id is a negative number, like `-1001234567890`)"
                ));
            }
            if let Some(channel) = &channels.discord_channel
                && !channel.trim().parse::<u64>().is_ok_and(|id| id != 0)
            {
                return Err(anyhow!(
                    "`[notifications.{team}] discord_channel`: `{channel}` is not a Discord channel id"
                ));
            }
            teams.insert(
                team.clone(),
                TeamChannels {
                    webhook,
                    telegram_chat: channels.telegram_chat.as_ref().map(|c| c.trim().to_owned()),
                    discord_channel: channels
                        .discord_channel
                        .as_ref()
                        .map(|c| c.trim().to_owned()),
                },
            );
        }
        Ok(InboxSettings {
            enabled: section.enabled.unwrap_or(true),
            config,
            notify: NotifyConfig {
                teams,
                base_url: section.public_url.clone(),
                ..NotifyConfig::default()
            },
            sla_poll: Duration::from_secs(section.sla_poll_secs.unwrap_or(30).max(1)),
            clock: Arc::new(SystemClock),
        })
    }
}

/// Mounts the inbox on `router` (with `crisis`, the service's crisis switch) and starts the SLA
/// timer (on the leading instance, with `leader`) and the notifier on `tasks`; returns
/// the router and one line for each thing that runs (or does not).
/// Call after the platform adapters registered with `worker`, so Telegram and Discord
/// notifications can go through their deliveries.
// The service's parts the inbox hangs on, each borrowed once from `service::run`; a struct for
// them would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn start(
    settings: &InboxSettings,
    gateway: &Gateway,
    worker: &OutboxWorker,
    router: Router,
    tasks: &mut JoinSet<()>,
    shutdown: &Shutdown,
    addr: std::net::SocketAddr,
    crisis: Arc<dyn webcare_inbox::CrisisSwitch>,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
) -> anyhow::Result<(Router, Vec<String>, Option<Inbox>)> {
    let mut lines = Vec::new();
    if !settings.enabled {
        lines.push("inbox: off".into());
        return Ok((router, lines, None));
    }
    let notifier = if settings.notify.teams.is_empty() {
        None
    } else {
        let telegram = worker.deliver_for(ChannelKind::Telegram);
        let discord = worker.deliver_for(ChannelKind::Discord);
        for (team, channels) in &settings.notify.teams {
            if channels.telegram_chat.is_some() && telegram.is_none() {
                lines.push(format!("notifications: {team}: telegram_chat needs the Telegram adapter (set TELEGRAM_BOT_TOKEN)"));
            }
            if channels.discord_channel.is_some() && discord.is_none() {
                lines.push(format!("notifications: {team}: discord_channel needs the Discord adapter (set DISCORD_BOT_TOKEN)"));
            }
        }
        let (notifier, notify_worker) = Notifier::new(settings.notify.clone(), telegram, discord)?;
        tasks.spawn(notify_worker.run(shutdown.wait()));
        let names: Vec<&str> = settings.notify.teams.keys().map(String::as_str).collect();
        lines.push(format!("notifications: {}", names.join(", ")));
        Some(notifier)
    };
    // The leads' crisis switch is the admin API's (`crate::governance`), so both audit alike.
    let inbox =
        Inbox::new(gateway.clone(), settings.config.clone(), notifier).with_crisis_switch(crisis);
    // With several instances one timer runs, the leader's; a new leader's catches up on what
    // the old one had not told yet (the store keeps it per escalation).
    let (timer_inbox, poll) = (inbox.clone(), settings.sla_poll);
    let led = leader.is_some();
    crate::cluster::spawn_led(tasks, leader, shutdown, "sla timer", move |stop| {
        SlaTimer::new(timer_inbox.clone(), poll).run(stop)
    });
    lines.push(format!(
        "inbox: http://{addr}/inbox (SLA timer on{})",
        if led { " the leading instance" } else { "" }
    ));
    Ok((router.merge(inbox.routes()), lines, Some(inbox)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(toml: &str) -> anyhow::Result<InboxSettings> {
        let notifications: BTreeMap<String, NotificationSection> = toml::from_str(toml)?;
        InboxSettings::build(&InboxSection::default(), &notifications, &|_| None)
    }

    #[test]
    fn team_channels_are_checked_when_the_service_starts() -> anyhow::Result<()> {
        let settings =
            build("[webcare]\ntelegram_chat = \" -1001234567890 \"\ndiscord_channel = \"4004\"\n")?;
        let team = &settings.notify.teams["webcare"];
        assert_eq!(team.telegram_chat.as_deref(), Some("-1001234567890"));
        assert_eq!(team.discord_channel.as_deref(), Some("4004"));

        for (bad, key) in [
            (
                "[webcare]\ntelegram_chat = \"@webcare_team\"\n",
                "telegram_chat",
            ),
            (
                "[webcare]\ndiscord_channel = \"#webcare\"\n",
                "discord_channel",
            ),
            ("[webcare]\ndiscord_channel = \"0\"\n", "discord_channel"),
            ("[webcare]\n", "names no channel"),
        ] {
            let error = build(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(key), "{bad}: {error}");
        }
        Ok(())
    }
}
