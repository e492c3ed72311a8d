//! Notifications to a team's own channel when an escalation arrives, is reassigned to it,
//! breaches its SLA, or waits on the team again (the customer wrote after a person answered,
//! or reopened it): a webhook (Slack and Teams bridges; JSON with a `text` line, signed with
//! HMAC-SHA256 like the HTTP channel's callbacks when a secret is set), a Telegram group or a
//! Discord channel (through the platform adapters' own [`Deliver`], so rate limits and errors
//! are handled the way replies are).
//!
//! A notification names the escalation, team, priority, category and deadline and links to the
//! inbox; it never carries what the customer wrote, because a team channel is often outside
//! the organisation's own systems. The Telegram and Discord kinds send the webhook's `text`
//! line, so every kind says the same.
//!
//! A platform notification borrows the outbox's [`OutboxEntry`] shape but not its ids: the
//! adapters remember the parts of a split reply already sent by entry id, so a notification
//! carries an id from a range the store never hands out ([`NOTIFICATION_IDS`]) and cannot be
//! mistaken for a reply being retried.
//!
//! Delivery is retried with backoff (temporary failures and rate limits) on a worker task; the
//! queue is in memory, so a notification still being retried when the service stops is lost
//! (the escalation itself is durable and in the inbox, and a breach is notified at every step
//! of the chain).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::mpsc;
use webcare_adapters::delivery::{Deliver, DeliveryError};
use webcare_adapters::http::SigningKey;
use webcare_engine::store::{Escalation, OutboxEntry, OutboxStatus};
use webcare_engine::teams::describe_deadline;
use webcare_engine::{ChannelKind, Rulebook};

/// The first id of the platform notifications' own range (the store's outbox ids count up
/// from 1 and never get near it).
pub const NOTIFICATION_IDS: u64 = 1 << 63;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Event {
    #[serde(rename = "escalation.arrived")]
    Arrived,
    #[serde(rename = "escalation.reassigned")]
    Reassigned,
    #[serde(rename = "escalation.breached")]
    Breached,
    /// The customer wrote again after a person answered: it waits on the team again.
    #[serde(rename = "escalation.follow_up")]
    FollowUp,
    #[serde(rename = "escalation.reopened")]
    Reopened,
}

impl From<webcare_engine::case::Announce> for Event {
    fn from(kind: webcare_engine::case::Announce) -> Self {
        use webcare_engine::case::Announce;
        match kind {
            Announce::Arrived => Event::Arrived,
            Announce::FollowUp => Event::FollowUp,
            Announce::Reopened => Event::Reopened,
        }
    }
}

/// A webhook target.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: Option<SigningKey>,
}

/// Where one team is told; the runtime form of `[notifications.<team>]`.
#[derive(Debug, Clone, Default)]
pub struct TeamChannels {
    pub webhook: Option<Webhook>,
    pub telegram_chat: Option<String>,
    pub discord_channel: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub teams: BTreeMap<String, TeamChannels>,
    /// The inbox's public base URL (`https://webcare.example.org`) for links; none without it.
    pub base_url: Option<String>,
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            teams: BTreeMap::new(),
            base_url: None,
            max_attempts: 6,
            base_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The webhook body.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    #[serde(rename = "type")]
    pub event: Event,
    pub escalation: u64,
    pub team: String,
    pub priority: String,
    pub category: Option<String>,
    pub deadline: Option<chrono::DateTime<Utc>>,
    pub url: Option<String>,
    /// One line for chat bridges (Slack's and Teams' `text`).
    pub text: String,
}

#[derive(Debug, Clone)]
enum Target {
    Webhook(Webhook),
    Platform(ChannelKind, String),
}

impl Target {
    /// For the log: the kind, never the URL (it often holds a bridge's token).
    fn kind(&self) -> &'static str {
        match self {
            Target::Webhook(_) => "webhook",
            Target::Platform(channel, _) => channel.as_str(),
        }
    }
}

#[derive(Debug)]
struct Job {
    /// In [`NOTIFICATION_IDS`]; the same for every attempt.
    id: u64,
    target: Target,
    notification: Notification,
    attempts: u32,
}

/// Queues notifications; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    config: Arc<NotifyConfig>,
    queue: mpsc::UnboundedSender<Job>,
    next_id: Arc<AtomicU64>,
}

/// Delivers what the [`Notifier`] queued; run it with [`NotifyWorker::run`].
pub struct NotifyWorker {
    config: Arc<NotifyConfig>,
    queue: mpsc::UnboundedReceiver<Job>,
    retry: mpsc::UnboundedSender<Job>,
    client: reqwest::Client,
    telegram: Option<Arc<dyn Deliver>>,
    discord: Option<Arc<dyn Deliver>>,
}

/// Why the notifier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Names the team only: a webhook URL often carries the bridge's token.
    #[error("the webhook URL of team `{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("cannot build the HTTP client for webhooks: {0}")]
    Client(String),
}

impl Notifier {
    /// `telegram` and `discord` send into a group or channel given as the entry's
    /// conversation; without them those targets are skipped with a warning.
    pub fn new(
        config: NotifyConfig,
        telegram: Option<Arc<dyn Deliver>>,
        discord: Option<Arc<dyn Deliver>>,
    ) -> Result<(Notifier, NotifyWorker), NotifyError> {
        for (team, channels) in &config.teams {
            if let Some(hook) = &channels.webhook {
                let ok = reqwest::Url::parse(&hook.url)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    return Err(NotifyError::BadUrl(team.clone()));
                }
            }
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("webcare/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        let config = Arc::new(config);
        let (sender, receiver) = mpsc::unbounded_channel();
        Ok((
            Notifier {
                config: Arc::clone(&config),
                queue: sender.clone(),
                next_id: Arc::new(AtomicU64::new(NOTIFICATION_IDS)),
            },
            NotifyWorker {
                config,
                queue: receiver,
                retry: sender,
                client,
                telegram,
                discord,
            },
        ))
    }

    /// Whether `team` has any channel configured.
    pub fn covers(&self, team: &str) -> bool {
        self.config.teams.contains_key(team)
    }

    /// Queues `event` about `escalation` for its (current) team's channels. `category` is the
    /// category of the message that opened it (see [`crate::Inbox::notify`]). Never waits:
    /// delivery and its retries happen on the [`NotifyWorker`].
    pub fn send(
        &self,
        event: Event,
        escalation: &Escalation,
        category: Option<&str>,
        rulebook: &Rulebook,
        now: chrono::DateTime<Utc>,
    ) {
        let Some(channels) = self.config.teams.get(&escalation.team) else {
            return;
        };
        let notification = self.describe(event, escalation, category, rulebook, now);
        let mut targets = Vec::new();
        if let Some(hook) = &channels.webhook {
            targets.push(Target::Webhook(hook.clone()));
        }
        if let Some(chat) = &channels.telegram_chat {
            targets.push(Target::Platform(ChannelKind::Telegram, chat.clone()));
        }
        if let Some(channel) = &channels.discord_channel {
            targets.push(Target::Platform(ChannelKind::Discord, channel.clone()));
        }
        for target in targets {
            let _ = self.queue.send(Job {
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                target,
                notification: notification.clone(),
                attempts: 0,
            });
        }
    }

    fn describe(
        &self,
        event: Event,
        escalation: &Escalation,
        category: Option<&str>,
        rulebook: &Rulebook,
        now: chrono::DateTime<Utc>,
    ) -> Notification {
        let teams = rulebook.teams();
        let team_name = teams
            .get(&escalation.team)
            .map_or(escalation.team.as_str(), |t| t.name_en.as_str());
        let what = match event {
            Event::Arrived => "new escalation",
            Event::Reassigned => "escalation reassigned",
            Event::Breached => "SLA breached, escalated",
            Event::FollowUp => "customer wrote again on escalation",
            Event::Reopened => "escalation reopened",
        };
        let now = teams.local(now);
        let due = escalation
            .sla_deadline
            .map(|d| {
                format!(
                    "; answer {}",
                    describe_deadline(now, teams.local(d), webcare_engine::decision::Language::En)
                )
            })
            .unwrap_or_default();
        let url = self.config.base_url.as_ref().map(|base| {
            format!(
                "{}/inbox/escalations/{}",
                base.trim_end_matches('/'),
                escalation.id
            )
        });
        let link = url.as_ref().map(|u| format!(" {u}")).unwrap_or_default();
        let category_text = category
            .map(|c| format!(", category {c}"))
            .unwrap_or_default();
        Notification {
            event,
            escalation: escalation.id,
            team: escalation.team.clone(),
            priority: escalation.priority.as_str().to_owned(),
            category: category.map(str::to_owned),
            deadline: escalation.sla_deadline,
            text: format!(
                "webcare: {what} #{} for {team_name}, priority {}{category_text}{due}.{link}",
                escalation.id, escalation.priority
            ),
            url,
        }
    }
}

impl NotifyWorker {
    /// Delivers until `shutdown`; retries run concurrently so one slow target holds up no other.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let job = tokio::select! {
                job = self.queue.recv() => job,
                () = &mut shutdown => return,
            };
            let Some(job) = job else { return };
            let worker = Sender {
                client: self.client.clone(),
                telegram: self.telegram.clone(),
                discord: self.discord.clone(),
            };
            let retry = self.retry.clone();
            let config = Arc::clone(&self.config);
            tokio::spawn(async move {
                let mut job = job;
                let (escalation, team, target) = (
                    job.notification.escalation,
                    job.notification.team.clone(),
                    job.target.kind(),
                );
                match worker.deliver(&job).await {
                    Ok(()) => {
                        tracing::info!(escalation, %team, target, "notify: sent");
                    }
                    Err(error) => {
                        // A rate limit is waited out without counting, as in the outbox.
                        let wait = match &error {
                            DeliveryError::RateLimited { retry_after } => Some(*retry_after),
                            DeliveryError::Temporary(_) => {
                                job.attempts += 1;
                                (job.attempts < config.max_attempts).then(|| {
                                    config
                                        .base_delay
                                        .saturating_mul(1 << (job.attempts - 1).min(10))
                                })
                            }
                            DeliveryError::Permanent(_) => None,
                        };
                        match wait {
                            Some(wait) => {
                                tracing::warn!(escalation, %team, target, %error, retry_in = ?wait, "notify: failed, will retry");
                                tokio::time::sleep(wait).await;
                                let _ = retry.send(job);
                            }
                            None => {
                                tracing::error!(escalation, %team, target, %error, "notify: given up");
                            }
                        }
                    }
                }
            });
        }
    }
}

struct Sender {
    client: reqwest::Client,
    telegram: Option<Arc<dyn Deliver>>,
    discord: Option<Arc<dyn Deliver>>,
}

impl Sender {
    async fn deliver(&self, job: &Job) -> Result<(), DeliveryError> {
        match &job.target {
            Target::Webhook(hook) => self.webhook(hook, &job.notification).await,
            Target::Platform(channel, conversation) => {
                let deliver = match channel {
                    ChannelKind::Telegram => self.telegram.as_ref(),
                    ChannelKind::Discord => self.discord.as_ref(),
                    _ => None,
                };
                let Some(deliver) = deliver else {
                    return Err(DeliveryError::Permanent(format!(
                        "no {channel} adapter runs to send team notifications"
                    )));
                };
                let now = Utc::now();
                let entry = OutboxEntry {
                    id: job.id,
                    channel: *channel,
                    conversation: conversation.clone(),
                    in_reply_to: String::new(),
                    text: job.notification.text.clone(),
                    attempts: job.attempts,
                    last_error: None,
                    status: OutboxStatus::Pending,
                    created_at: now,
                    next_attempt_at: now,
                };
                deliver.deliver(&entry).await
            }
        }
    }

    async fn webhook(&self, hook: &Webhook, body: &Notification) -> Result<(), DeliveryError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| DeliveryError::Permanent(format!("cannot encode: {e}")))?;
        let mut request = self
            .client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &hook.secret {
            request = request.header(webcare_adapters::http::SIGNATURE_HEADER, key.sign(&bytes));
        }
        // The URL often holds the bridge's token: errors never show it.
        let response = request
            .body(bytes)
            .send()
            .await
            .map_err(|e| DeliveryError::Temporary(format!("webhook: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.as_u16() == 429 {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(5), Duration::from_secs);
            Err(DeliveryError::RateLimited { retry_after })
        } else if status.is_server_error() || status.as_u16() == 408 {
            Err(DeliveryError::Temporary(format!(
                "webhook answered {status}"
            )))
        } else {
            Err(DeliveryError::Permanent(format!(
                "webhook answered {status}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use webcare_adapters::delivery::BoxFuture;
    use webcare_engine::Priority;
    use webcare_engine::store::EscalationStatus;

    use super::*;

    #[derive(Default)]
    struct Recording(Mutex<Vec<OutboxEntry>>);

    impl Deliver for Recording {
        fn deliver<'a>(
            &'a self,
            entry: &'a OutboxEntry,
        ) -> BoxFuture<'a, Result<(), DeliveryError>> {
            self.0.lock().unwrap().push(entry.clone());
            Box::pin(async { Ok(()) })
        }
    }

    /// The adapters remember the parts of a split reply by entry id: a notification with an
    /// outbox entry's id would skip parts of that reply, or be skipped itself.
    #[tokio::test]
    async fn platform_notifications_carry_ids_no_reply_has_and_no_customer_text() {
        let mut config = NotifyConfig::default();
        config.teams.insert(
            "webcare".into(),
            TeamChannels {
                telegram_chat: Some("-100123".into()),
                discord_channel: Some("4004".into()),
                ..TeamChannels::default()
            },
        );
        let (telegram, discord) = (
            Arc::new(Recording::default()),
            Arc::new(Recording::default()),
        );
        let (notifier, worker) = Notifier::new(
            config,
            Some(Arc::clone(&telegram) as Arc<dyn Deliver>),
            Some(Arc::clone(&discord) as Arc<dyn Deliver>),
        )
        .unwrap();
        tokio::spawn(worker.run(std::future::pending()));
        let now = Utc::now();
        let escalation = Escalation {
            id: 5,
            channel: ChannelKind::Webchat,
            conversation: "visitor-1".into(),
            team: "webcare".into(),
            priority: Priority::High,
            reason: "complaint about waste collection".into(),
            status: EscalationStatus::Open,
            created_at: now,
            sla_deadline: None,
            messages: vec!["visitor-1:m1".into()],
            history: Vec::new(),
            case: Default::default(),
        };
        let rulebook = Rulebook::embedded().unwrap();
        notifier.send(
            Event::Arrived,
            &escalation,
            Some("complaint"),
            &rulebook,
            now,
        );
        notifier.send(
            Event::Breached,
            &escalation,
            Some("complaint"),
            &rulebook,
            now,
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while telegram.0.lock().unwrap().len() < 2 || discord.0.lock().unwrap().len() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "not delivered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut ids = Vec::new();
        for (entries, conversation) in [(&telegram.0, "-100123"), (&discord.0, "4004")] {
            for entry in entries.lock().unwrap().iter() {
                assert_eq!(entry.conversation, conversation);
                assert!(entry.in_reply_to.is_empty(), "quotes nothing");
                assert!(entry.id >= NOTIFICATION_IDS, "{}", entry.id);
                assert!(
                    entry.text.contains("#5") && entry.text.contains("category complaint"),
                    "{}",
                    entry.text
                );
                assert!(!entry.text.contains("waste"), "{}", entry.text);
                ids.push(entry.id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4, "every notification has its own id");
    }
}
