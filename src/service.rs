//! The running service behind `webcare run`: the composition root that wires the engine's
//! [`Runtime`] to the web server (HTTP channel, web chat), the outbox worker and the platform
//! adapters, and shuts them down in the right order. It exists as its own module so the wiring
//! is in one place and reads top to bottom: settings → what runs → shutdown.
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
use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinSet;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::http::{self, CallbackDeliver, HttpChannel, HttpChannelConfig, SigningKey};
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::webchat::{WebChat, WebChatConfig};
use webcare_engine::{ChannelKind, ChannelModes, Mode, Runtime};

use crate::config::ConfigFile;
use crate::platforms::Platforms;

/// Everything `webcare run` needs besides the runtime, after file, environment and command
/// line were combined. Built by [`Settings::build`]; secrets are read there and never printed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    /// The inbox, the SLA timer, notifications, and the clock the service runs on.
    pub inbox: crate::inbox::InboxSettings,
    pub http: Option<HttpChannelConfig>,
    pub webchat: Option<WebChatConfig>,
    pub outbox: OutboxConfig,
    pub platforms: Platforms,
    /// The rules directory to watch and reload; `None` runs the embedded rulebook.
    pub rules_dir: Option<std::path::PathBuf>,
    /// Enables the admin API (reload, crisis switch); from the environment or a file only.
    pub admin_token: Option<webcare_adapters::secret::Secret>,
    /// Each channel's mode (`live` unless set); the runtime applies them.
    pub modes: ChannelModes,
    /// The shadow (candidate) rulebook's directory, from `[shadow] rules`.
    pub shadow_rules: Option<std::path::PathBuf>,
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

        let section = &file.http_channel;
        let http = if section.enabled.unwrap_or(true) {
            let secret_file = env("WEBCARE_HTTP_SECRET_FILE")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    section.secret_file.as_ref().map(|p| match base {
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
            Some(HttpChannelConfig {
                callback_url: section.callback_url.clone().filter(|u| !u.is_empty()),
                secret,
                require_signature: section.require_signature,
                max_body: section
                    .max_body_kib
                    .map_or(http::DEFAULT_MAX_BODY, |kib| kib.saturating_mul(1024)),
                callback_timeout: Duration::from_secs(section.callback_timeout_secs.unwrap_or(10)),
            })
        } else {
            None
        };

        let section = &file.webchat;
        let webchat = section.enabled.unwrap_or(true).then(|| {
            let defaults = WebChatConfig::default();
            WebChatConfig {
                max_frame: section.max_frame_bytes.unwrap_or(defaults.max_frame),
                max_text: section.max_text_chars.unwrap_or(defaults.max_text),
                burst: section.burst.unwrap_or(defaults.burst),
                per_second: section.per_second.unwrap_or(defaults.per_second),
                max_connections: section.max_connections.unwrap_or(defaults.max_connections),
            }
        });

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
        let platforms = Platforms::build(&file.telegram, &file.discord, base, env)?;
        let admin_token =
            crate::platforms::read_secret("admin token", "WEBCARE_ADMIN_TOKEN", None, base, env)?;
        let mut modes = ChannelModes::default();
        for (channel, mode) in [
            (ChannelKind::Http, file.http_channel.mode),
            (ChannelKind::Webchat, file.webchat.mode),
            (ChannelKind::Telegram, file.telegram.mode),
            (ChannelKind::Discord, file.discord.mode),
        ] {
            modes.set(channel, mode.unwrap_or_default());
        }
        let shadow_rules = file.shadow.rules.as_ref().map(|p| match base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.clone(),
        });
        Ok(Settings {
            listen,
            inbox: crate::inbox::InboxSettings::build(&file.inbox, &file.notifications, env)?,
            http,
            webchat,
            outbox,
            platforms,
            rules_dir: None,
            admin_token,
            modes,
            shadow_rules,
        })
    }
}

/// A shutdown signal every part can wait on; cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Completes once shutdown was asked for.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.clone();
        async move {
            // An error means the sender is gone: that is a shutdown too.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }
}

/// Prints one line of what runs where; stdout, so scripts (and the tests) can read it.
fn say(line: impl AsRef<str>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// `scheme://host[:port]` of a URL, for printing: the path or query may hold a token.
pub(crate) fn origin_of(url: &str) -> String {
    let origin = url.split_once("://").and_then(|(scheme, rest)| {
        let authority = rest.split(['/', '?', '#']).next()?;
        let host = authority.rsplit('@').next()?;
        Some(format!("{scheme}://{host}"))
    });
    origin.unwrap_or_else(|| "(invalid URL)".into())
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
    let (stop_sender, stop_receiver) = watch::channel(false);
    let shutdown = Shutdown(stop_receiver);
    let mut worker = OutboxWorker::new(gateway.clone(), settings.outbox.clone());
    let mut adapters: JoinSet<()> = JoinSet::new();
    let mut lines = Vec::new();

    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", settings.listen))?;
    let addr = listener.local_addr()?;
    let mut router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    router = router.merge(crate::dashboard::routes(gateway.clone()));
    adapters.spawn(crate::dashboard::early_warning(
        gateway.clone(),
        shutdown.wait(),
    ));
    lines.push(format!(
        "dashboard: http://{addr}/dashboard, metrics: http://{addr}/metrics"
    ));

    let mode_of = |channel| mode_note(gateway.runtime().mode(channel));
    let mut http_channel = None;
    if let Some(config) = settings.http.clone() {
        lines.push(format!(
            "http channel: POST http://{addr}/api/v1/messages{}{}",
            if config.require_signature {
                " (signature required)"
            } else {
                ""
            },
            mode_of(ChannelKind::Http)
        ));
        match &config.callback_url {
            Some(url) => {
                let deliver =
                    CallbackDeliver::new(url, config.secret.clone(), config.callback_timeout)?;
                worker.register(ChannelKind::Http, Arc::new(deliver));
                lines.push(format!(
                    "http channel: replies to {}{}",
                    origin_of(url),
                    if config.secret.is_some() {
                        " (signed)"
                    } else {
                        " (unsigned: set WEBCARE_HTTP_SECRET)"
                    }
                ));
            }
            None => {
                lines.push("http channel: replies in the response only (no callback_url)".into())
            }
        }
        let channel = HttpChannel::new(gateway.clone(), config)?;
        router = router.merge(channel.routes());
        http_channel = Some(channel);
    } else {
        lines.push("http channel: off".into());
    }

    let webchat = settings
        .webchat
        .clone()
        .map(|config| WebChat::new(gateway.clone(), config));
    if let Some(chat) = &webchat {
        router = router.merge(chat.routes());
        worker.register(ChannelKind::Webchat, chat.deliver());
        lines.push(format!(
            "web chat: http://{addr}/{}",
            mode_of(ChannelKind::Webchat)
        ));
    } else {
        lines.push("web chat: off".into());
    }

    // ---- Platform adapters ----------------------------------------------------------------
    // Each platform adapter is started here. With its token it registers its `Deliver` for its
    // channel (`worker.register(ChannelKind::…, Arc::new(…))`), spawns its intake loop on
    // `adapters` with `shutdown.wait()` as its stop signal, takes messages in through
    // `gateway.accept(…)` (Telegram's webhook mode mounts its route on `router`), and pushes
    // one line saying where it runs; without a token it pushes one line saying why it is
    // skipped. Nothing else in this function needs to change.
    settings.platforms.clone().start(
        &gateway,
        &mut worker,
        &mut router,
        &mut adapters,
        &shutdown,
        &mut lines,
    )?;
    // ---------------------------------------------------------------------------------------

    for channel in [ChannelKind::Telegram, ChannelKind::Discord] {
        let mode = gateway.runtime().mode(channel);
        if mode != Mode::Live {
            lines.push(format!("{channel}:{}", mode_note(mode)));
        }
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

    let (with_inbox, inbox_lines) = crate::inbox::start(
        &settings.inbox,
        &gateway,
        &worker,
        router,
        &mut adapters,
        &shutdown,
        addr,
        Arc::clone(&governance) as Arc<dyn webcare_inbox::CrisisSwitch>,
    )?;
    router = with_inbox;
    lines.extend(inbox_lines);

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
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.wait());
    // Boxed, so it can be dropped (with the routes it holds) once it has finished.
    let mut server = Box::pin(server.into_future());

    // Run until asked to stop (or the server fails), then stop everything in order.
    let served = tokio::select! {
        result = &mut server => Some(result),
        () = stop => None,
    };
    say("webcare: shutting down; finishing messages in flight");
    stop_sender.send_replace(true);
    if let Some(chat) = &webchat {
        chat.shut_down();
    }
    let drained = tokio::time::timeout(Duration::from_secs(30), async move {
        let result = match served {
            Some(result) => result,
            None => (&mut server).await,
        };
        drop(server);
        if let Some(chat) = &webchat {
            while chat.open_sockets() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while adapters.join_next().await.is_some() {}
        if let Some(channel) = http_channel {
            channel.finish().await;
        }
        result
    })
    .await;
    let result = match drained {
        Ok(result) => result.context("the web server failed"),
        Err(_) => Err(anyhow!("shutdown took longer than 30 s; stopped anyway")),
    };
    if tokio::time::timeout(Duration::from_secs(30), worker_task)
        .await
        .is_err()
    {
        tracing::warn!("outbox: deliveries still in flight after 30 s; they stay pending");
    }
    say("webcare: stopped");
    result
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn signals() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
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

    #[test]
    fn settings_default_and_read_secrets_from_env_or_file() -> anyhow::Result<()> {
        let none = |_: &str| None;
        let settings = Settings::build(&ConfigFile::default(), None, &none)?;
        assert_eq!(settings.listen, "127.0.0.1:8080");
        let http = settings.http.ok_or_else(|| anyhow!("http on by default"))?;
        assert!(http.secret.is_none() && http.callback_url.is_none());
        assert!(settings.webchat.is_some());
        assert_eq!(settings.outbox.max_attempts, 5);

        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("secret"), "from-file\n")?;
        let mut file = ConfigFile::default();
        file.http_channel.secret_file = Some("secret".into());
        file.http_channel.require_signature = true;
        let settings = Settings::build(&file, Some(dir.path()), &none)?;
        let key = settings
            .http
            .and_then(|h| h.secret)
            .ok_or_else(|| anyhow!("secret read"))?;
        assert!(key.verify(b"x", &SigningKey::new("from-file").sign(b"x")));
        assert_eq!(format!("{key:?}"), "***");

        let env = |name: &str| (name == "WEBCARE_HTTP_SECRET").then(|| "from-env".to_owned());
        let settings = Settings::build(&file, Some(dir.path()), &env)?;
        let key = settings
            .http
            .and_then(|h| h.secret)
            .ok_or_else(|| anyhow!("secret read"))?;
        assert!(key.verify(b"x", &SigningKey::new("from-env").sign(b"x")));
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
