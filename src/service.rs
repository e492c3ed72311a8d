//! The running service behind `webcare run`: the composition root that wires the engine's
//! [`Runtime`] to the web server, the channels (`crate::channels`, started from a list, each
//! printing one line that says where it runs or why it does not), the outbox worker, the admin
//! API and the inbox, and shuts them down in the right order. It exists as its own module so
//! the wiring is in one place and reads top to bottom: settings → what runs → shutdown.
//!
//! Shutdown order, and why: the web server stops accepting and finishes the requests in flight
//! (each waits for its durable intake), web chat sockets are asked to close after the message
//! they are taking in, the platform adapters stop polling, and only then does the outbox worker
//! stop (after its deliveries in flight), so the replies of the last messages still go out
//! when their adapter can send them. What is not sent stays in the durable outbox for the next
//! start.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::task::JoinSet;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_engine::{ChannelModes, Mode, Runtime};

use crate::channels::{Built, Wiring};
use crate::config::ConfigFile;

/// Everything `webcare run` needs besides the runtime, after file, environment and command
/// line were combined. Built by [`Settings::build`]; secrets are read there and never printed.
#[derive(Debug)]
pub struct Settings {
    pub listen: String,
    /// The web server's timeouts and connection cap (`[server]`).
    pub limits: crate::server::Limits,
    /// `[server] public_dashboard`: the dashboard and `/metrics` without a login.
    pub public_dashboard: bool,
    /// `[store] claim_secs`: the outbox claim lease on PostgreSQL.
    pub claim: Option<Duration>,
    /// `[store] retention_days` and how often it runs.
    pub retention: Option<(u32, Duration)>,
    /// The inbox, the SLA timer, notifications, and the clock the service runs on.
    pub inbox: crate::inbox::InboxSettings,
    /// Every channel in the order they start: each runs, or says why not.
    pub channels: Vec<Built>,
    pub outbox: OutboxConfig,
    /// The rules directory to watch and reload; `None` runs the embedded rulebook.
    pub rules_dir: Option<std::path::PathBuf>,
    /// Enables the admin API (reload, crisis switch); from the environment or a file only.
    pub admin_token: Option<webcare_adapters::secret::Secret>,
    /// Each channel's mode (`live` unless set); the runtime applies them.
    pub modes: ChannelModes,
    /// The shadow (candidate) rulebook's directory, from `[shadow] rules`.
    pub shadow_rules: Option<std::path::PathBuf>,
    /// The store's directory, where channels keep their own small state (the mailbox
    /// position of the e-mail channel); `webcare run` sets the one the store opened.
    pub data_dir: std::path::PathBuf,
}

impl Settings {
    /// Turns the config sections into runtime settings. `env` reads one environment variable
    /// (injected for tests); `base` is the directory relative paths in the file are relative to.
    pub fn build(
        file: &ConfigFile,
        base: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let listen = file
            .server
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".into());

        let mut modes = ChannelModes::default();
        let mut channels = Vec::new();
        for section in file.channels() {
            for kind in section.kinds() {
                modes.set(kind, section.mode().unwrap_or_default());
            }
            channels.push(section.build(base, env)?);
        }

        let section = &file.outbox;
        let defaults = OutboxConfig::default();
        let outbox = OutboxConfig {
            base_delay: section
                .base_delay_ms
                .map_or(defaults.base_delay, Duration::from_millis),
            max_delay: section
                .max_delay_secs
                .map_or(defaults.max_delay, Duration::from_secs),
            max_attempts: section.max_attempts.unwrap_or(defaults.max_attempts).max(1),
            concurrency: section.concurrency.unwrap_or(defaults.concurrency).max(1),
            send_timeout: section
                .send_timeout_secs
                .map_or(defaults.send_timeout, Duration::from_secs),
            ..defaults
        };
        let admin_token =
            crate::secrets::read_secret("admin token", "WEBCARE_ADMIN_TOKEN", None, base, env)?;
        if let Some(token) = &admin_token {
            crate::secrets::check_admin_token(token)?;
        }
        let shadow_rules = file.shadow.rules.as_ref().map(|p| match base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.clone(),
        });
        let server_defaults = crate::server::Limits::default();
        let limits = crate::server::Limits {
            header_timeout: file
                .server
                .header_timeout_secs
                .map_or(server_defaults.header_timeout, |s| {
                    Duration::from_secs(s.max(1))
                }),
            body_timeout: file
                .server
                .body_timeout_secs
                .map_or(server_defaults.body_timeout, |s| {
                    Duration::from_secs(s.max(1))
                }),
            max_connections: file
                .server
                .max_connections
                .map_or(server_defaults.max_connections, |n| n.max(1)),
            ..server_defaults
        };
        Ok(Settings {
            data_dir: std::path::PathBuf::from("data"),
            listen,
            limits,
            public_dashboard: file.server.public_dashboard.unwrap_or(false),
            claim: file.store.claim_secs.map(|s| Duration::from_secs(s.max(1))),
            retention: file.store.retention_days.map(|days| {
                let every = file.store.retention_interval_secs.unwrap_or(3600).max(1);
                (days, Duration::from_secs(every))
            }),
            inbox: crate::inbox::InboxSettings::build(&file.inbox, &file.notifications, env)?
                .with_reply_template(file.meta.reply_template.as_deref()),
            channels,
            outbox,
            rules_dir: None,
            admin_token,
            modes,
            shadow_rules,
        })
    }
}

/// Prints one line of what runs where; stdout, so scripts (and the tests) can read it.
fn say(line: impl AsRef<str>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// What a channel's mode means, for the line that says where it runs; empty when live.
fn mode_note(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "",
        Mode::Shadow => {
            " (shadow mode: decisions recorded, escalations go to the inbox, nothing automatic is sent)"
        }
        Mode::Listen => {
            " (listen mode: decisions recorded only; nothing is sent or escalated, answer these messages elsewhere)"
        }
    }
}

/// Runs the service until `stop` completes, then shuts down in order (see the module docs).
pub async fn run(
    runtime: Arc<Runtime>,
    settings: Settings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gateway = Gateway::new(runtime).with_clock(settings.inbox.clock.clone());
    let (trigger, shutdown) = crate::shutdown::channel();
    let mut worker = OutboxWorker::new(gateway.clone(), settings.outbox.clone());
    let mut adapters: JoinSet<()> = JoinSet::new();
    let mut lines = Vec::new();

    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", settings.listen))?;
    let addr = listener.local_addr()?;
    if let Some((days, every)) = settings.retention {
        // Once before anything is served, then on a timer: old messages go without a restart.
        retention(&gateway, days).await;
        adapters.spawn(retain(gateway.clone(), days, every, shutdown.wait()));
        lines.push(format!(
            "retention: messages older than {days} days are deleted every {} s",
            every.as_secs()
        ));
    }
    let mut router = crate::health::routes(gateway.clone());
    adapters.spawn(crate::dashboard::early_warning(
        gateway.clone(),
        shutdown.wait(),
    ));
    lines.push(format!(
        "dashboard: http://{addr}/dashboard, metrics: http://{addr}/metrics{}",
        if settings.public_dashboard {
            " (public: [server] public_dashboard = true)"
        } else {
            " (inbox login, or `Authorization: Bearer` with an inbox API token or the admin token)"
        }
    ));

    // Several instances on PostgreSQL: follow the others, and campaign for the platforms that
    // must run once; the line says whether this one leads or waits.
    let coordination = crate::cluster::start(&gateway, &mut adapters, &shutdown).await?;
    if let (Some(cluster), Some(lease)) = (gateway.runtime().store().cluster(), settings.claim) {
        cluster.set_claim(lease);
    }
    let leader = coordination.map(|c| {
        lines.push(c.line);
        c.leader
    });

    // One line per channel: where it runs (and in which mode), or why it does not.
    let mut wiring = Wiring {
        leader: leader.clone(),
        gateway: &gateway,
        worker: &mut worker,
        router: &mut router,
        tasks: &mut adapters,
        shutdown: &shutdown,
        addr,
        data_dir: &settings.data_dir,
    };
    for channel in settings.channels {
        lines.push(match channel {
            Built::Runs(channel) => {
                let mode = gateway.runtime().mode(channel.kind());
                format!("{}{}", channel.start(&mut wiring)?, mode_note(mode))
            }
            Built::Off(why) => why,
        });
    }

    if let Some(shadow) = gateway.runtime().shadow() {
        lines.push(format!(
            "shadow rulebook: {} {} decides every message beside the live one; nothing of it is sent (compare with `webcare replay --from-store --shadow`)",
            shadow.name, shadow.version
        ));
    }

    // Rule changes while running: the watcher and the admin API (see `crate::governance`).
    let governance = Arc::new(crate::governance::Governance::new(
        Arc::clone(gateway.runtime()),
        settings.rules_dir.clone(),
        settings.admin_token.clone(),
    ));
    router = router.merge(Arc::clone(&governance).routes());
    if let Some(dir) = governance.rules_dir() {
        lines.push(format!(
            "rulebook: reloads when `{}` changes",
            dir.display()
        ));
    }
    lines.push(if governance.admin_enabled() {
        format!("admin api: http://{addr}/api/v1/rulebook/reload, /api/v1/crisis")
    } else {
        "admin api: off (set WEBCARE_ADMIN_TOKEN to reload rules and switch crisis mode)".into()
    });
    adapters.spawn(Arc::clone(&governance).watch(shutdown.wait()));

    let (with_inbox, inbox_lines, inbox) = crate::inbox::start(
        &settings.inbox,
        &gateway,
        &worker,
        router,
        &mut adapters,
        &shutdown,
        addr,
        Arc::clone(&governance) as Arc<dyn webcare_inbox::CrisisSwitch>,
        leader,
    )?;
    router = with_inbox;
    lines.extend(inbox_lines);
    // After the inbox: its sessions and API tokens open the dashboard.
    router = router.merge(crate::dashboard::routes(
        gateway.clone(),
        crate::dashboard::Access {
            public: settings.public_dashboard,
            inbox,
            admin_token: settings.admin_token.clone(),
        },
    ));

    let channels: Vec<&str> = worker.channels().iter().map(|c| c.as_str()).collect();
    lines.push(if channels.is_empty() {
        "outbox: no channel can send replies; they wait in the store".into()
    } else {
        format!("outbox: sends replies on {}", channels.join(", "))
    });
    for line in &lines {
        say(line);
    }
    tracing::info!(%addr, "webcare is running");

    let worker_task = tokio::spawn(worker.run(shutdown.wait()));
    // With the client's address: the inbox rate-limits wrong passwords per address too.
    // Header, body and idle timeouts and a connection cap: see `crate::server`.
    let server = crate::server::serve(listener, router, settings.limits, shutdown.wait());
    // Boxed, so it can be dropped (with the routes it holds) once it has finished.
    let mut server = Box::pin(async move {
        server.await;
        Ok::<(), std::io::Error>(())
    });

    // Run until asked to stop (or the server fails), then stop everything in order.
    let served = tokio::select! {
        result = &mut server => Some(result),
        () = stop => None,
    };
    say("webcare: shutting down; finishing messages in flight");
    trigger.fire();
    let drained = tokio::time::timeout(Duration::from_secs(30), async move {
        let result = match served {
            Some(result) => result,
            None => (&mut server).await,
        };
        // The server's routes go with it, so what the channels finish at shutdown can end.
        drop(server);
        while adapters.join_next().await.is_some() {}
        result
    })
    .await;
    let result = match drained {
        Ok(result) => result.context("the web server failed"),
        Err(_) => Err(anyhow!("shutdown took longer than 30 s; stopped anyway")),
    };
    // A delivery in flight takes at most `send_timeout`; cutting it short between the send and
    // its record would send that reply again after the restart.
    let finish = (settings.outbox.send_timeout + webcare_adapters::outbox::HOLD_MARGIN)
        .max(Duration::from_secs(30));
    if tokio::time::timeout(finish, worker_task).await.is_err() {
        tracing::warn!(
            "outbox: deliveries still in flight after {} s; they stay pending",
            finish.as_secs()
        );
    }
    say("webcare: stopped");
    result
}

/// Deletes what is older than `days`, and says how much.
async fn retention(gateway: &Gateway, days: u32) {
    let now = gateway.now();
    let cutoff = now - chrono::Duration::days(i64::from(days));
    match gateway
        .store(move |s| s.purge_before(cutoff, "retention", now))
        .await
    {
        Ok(report) if report.messages + report.conversations + report.outbox > 0 => {
            tracing::info!(
                days,
                messages = report.messages,
                conversations = report.conversations,
                escalations = report.escalations,
                outbox = report.outbox,
                "retention: deleted"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "retention: failed; will try again"),
    }
}

/// Runs [`retention`] every `every` until shutdown.
async fn retain(
    gateway: Gateway,
    days: u32,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => retention(&gateway, days).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_the_web_channels_run_and_the_platforms_say_why_not() -> anyhow::Result<()> {
        let none = |_: &str| None;
        let settings = Settings::build(&ConfigFile::default(), None, &none)?;
        assert_eq!(settings.listen, "127.0.0.1:8080");
        assert_eq!(settings.outbox.max_attempts, 5);
        let channels: Vec<String> = settings
            .channels
            .iter()
            .map(|built| match built {
                Built::Runs(channel) => format!("runs {}", channel.kind()),
                Built::Off(why) => why.clone(),
            })
            .collect();
        assert_eq!(channels[..2], ["runs http", "runs webchat"]);
        assert!(channels[2].starts_with("telegram: skipped"), "{channels:?}");
        assert!(channels[3].starts_with("discord: skipped"), "{channels:?}");
        Ok(())
    }

    #[test]
    fn modes_are_per_channel_and_the_shadow_rules_are_relative_to_the_file() -> anyhow::Result<()> {
        let none = |_: &str| None;
        let settings = Settings::build(&ConfigFile::default(), None, &none)?;
        assert_eq!(settings.modes, ChannelModes::default());
        assert_eq!(settings.shadow_rules, None);

        let mut file = ConfigFile::default();
        file.http_channel.mode = Some(Mode::Listen);
        file.discord.mode = Some(Mode::Shadow);
        file.shadow.rules = Some("candidate".into());
        let settings = Settings::build(&file, Some(Path::new("/etc/webcare")), &none)?;
        use webcare_engine::ChannelKind;
        assert_eq!(settings.modes.get(ChannelKind::Http), Mode::Listen);
        assert_eq!(settings.modes.get(ChannelKind::Discord), Mode::Shadow);
        assert_eq!(settings.modes.get(ChannelKind::Webchat), Mode::Live);
        assert_eq!(settings.modes.get(ChannelKind::Telegram), Mode::Live);
        assert_eq!(
            settings.shadow_rules.as_deref(),
            Some(Path::new("/etc/webcare/candidate"))
        );
        assert!(mode_note(Mode::Listen).contains("nothing is sent or escalated"));
        assert_eq!(mode_note(Mode::Live), "");
        Ok(())
    }
}
