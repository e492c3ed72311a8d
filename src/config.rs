//! `webcare.toml` and the global store options. The file is optional; every setting has a
//! default, and the command line and the environment override the file, so one deployment can
//! keep its settings in a file while a test or a one-off run points elsewhere with `--data`.
//!
//! Precedence, strongest first: `--data`/`--store`, `WEBCARE_DATA_DIR`/`WEBCARE_STORE`, the
//! `[store]` section of the config file, the defaults (`./data`, redb). A relative `data_dir`
//! in the file is relative to the file, so the file can move with its data. The PostgreSQL URL
//! of `backend = "postgres"` is a secret: `WEBCARE_STORE_URL`, `WEBCARE_STORE_URL_FILE` or
//! `[store] url_file`, never `url` in the file; [`StoreConfig`]'s Display shows it without
//! the password.
//!
//! Each channel's section is defined next to the channel (`crate::channels`), the inbox's next
//! to the inbox; this file gathers them into one [`ConfigFile`] and lays the environment over
//! it. Secrets are never in the file (`crate::secrets`).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde::Deserialize;
use webcare_engine::store::postgres::PgUrl;
use webcare_engine::store::{Backend, StoreOptions};

use crate::channels::Section;
use crate::channels::discord::DiscordSection;
use crate::channels::email::EmailSection;
use crate::channels::http::HttpChannelSection;
use crate::channels::meta::MetaSection;
use crate::channels::telegram::TelegramSection;
use crate::channels::webchat::WebChatSection;

/// The config file as written. Unknown keys are errors: a typo must not silently fall back
/// to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub http_channel: HttpChannelSection,
    #[serde(default)]
    pub webchat: WebChatSection,
    #[serde(default)]
    pub outbox: OutboxSection,
    #[serde(default)]
    pub telegram: TelegramSection,
    #[serde(default)]
    pub discord: DiscordSection,
    #[serde(default)]
    pub meta: MetaSection,
    #[serde(default)]
    pub email: EmailSection,
    #[serde(default)]
    pub shadow: ShadowSection,
    #[serde(default)]
    pub inbox: crate::inbox::InboxSection,
    /// `[notifications.<team>]`, one per team that wants to hear about its escalations.
    #[serde(default)]
    pub notifications: std::collections::BTreeMap<String, crate::inbox::NotificationSection>,
}

impl ConfigFile {
    /// Every channel's section, in the order `webcare run` starts them and says so.
    pub fn channels(&self) -> [&dyn Section; 6] {
        [
            &self.http_channel,
            &self.webchat,
            &self.telegram,
            &self.discord,
            &self.meta,
            &self.email,
        ]
    }
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `redb` (default), `sled` or `postgres`.
    pub backend: Option<Backend>,
    /// A file holding the PostgreSQL URL of `backend = "postgres"` (relative to the config
    /// file); `WEBCARE_STORE_URL` or `WEBCARE_STORE_URL_FILE` win over it.
    pub url_file: Option<PathBuf>,
    /// Default `./data`; created on first run.
    pub data_dir: Option<PathBuf>,
    /// Delete messages older than this many days: when `ingest` starts, and under `webcare
    /// run` at start and every `retention_interval_secs` (default 3600).
    pub retention_days: Option<u32>,
    pub retention_interval_secs: Option<u64>,
    /// Replace e-mail addresses, phone numbers, IBANs and BSNs in stored text.
    #[serde(default)]
    pub redact: bool,
    /// PostgreSQL with several instances: seconds an instance's claim on a reply lasts before
    /// another instance may send it (its worker died); default 60. Keep it above
    /// `[outbox] send_timeout_secs`.
    pub claim_secs: Option<u64>,
}

/// `[shadow]`: a candidate rulebook that decides every message beside the live one. Its
/// decisions are stored and never acted on; `webcare replay --from-store --shadow` compares
/// them with the live ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowSection {
    /// The candidate rulebook's directory (relative to the config file); compiled and checked
    /// when the service starts. Also `WEBCARE_SHADOW_RULES`.
    pub rules: Option<PathBuf>,
}

/// `[server]`: the web server of `webcare run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on; default `127.0.0.1:8080` (loopback: put a TLS proxy in front).
    pub listen: Option<String>,
    /// Seconds a client may take to send a request head, and a kept-alive connection may stay
    /// idle; default 10.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request body may take to arrive; default 30.
    pub body_timeout_secs: Option<u64>,
    /// Open connections at most (web chat sockets included); more wait; default 512.
    pub max_connections: Option<usize>,
    /// Serve `/dashboard` and `/metrics` without a login or token; default false.
    pub public_dashboard: Option<bool>,
}

/// `[outbox]`: how replies are retried.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSection {
    /// The wait after the first failed attempt, doubled after each further one; default 2000.
    pub base_delay_ms: Option<u64>,
    /// The longest wait between attempts; default 300 s.
    pub max_delay_secs: Option<u64>,
    /// Failed attempts (rate limits not counted) before a reply is given up and escalated;
    /// default 5.
    pub max_attempts: Option<u32>,
    /// Deliveries in flight at once; default 32.
    pub concurrency: Option<usize>,
    /// The longest one delivery may take; default 15 s.
    pub send_timeout_secs: Option<u64>,
}

/// The sections whose keys can be set as `WEBCARE_<SECTION>_<KEY>` (e.g.
/// `WEBCARE_SERVER_LISTEN`, `WEBCARE_OUTBOX_MAX_ATTEMPTS`), longest name first so
/// `http_channel` is not read as a section `http`. `[store]` has its own variables
/// (`WEBCARE_DATA_DIR`, `WEBCARE_STORE`).
const ENV_SECTIONS: [&str; 7] = [
    "http_channel",
    "telegram",
    "discord",
    "webchat",
    "server",
    "outbox",
    "shadow",
];

/// Keys that name credentials; refused in the file and never taken from these variables.
const SECRET_KEYS: [&str; 4] = ["secret", "token", "bot_token", "webhook_secret"];

/// Reads the config file the options choose (or none) and lays the `WEBCARE_<SECTION>_<KEY>`
/// variables in `vars` over it. Returns the config and the directory relative paths in the
/// file are relative to.
pub fn load_with_env(
    args: &StoreArgs,
    vars: &[(String, String)],
) -> anyhow::Result<(ConfigFile, Option<PathBuf>)> {
    let (text, path, base) = match &args.config {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file `{}`", path.display()))?,
            Some(path.clone()),
            path.parent().map(Path::to_owned),
        ),
        None => {
            let default = Path::new("webcare.toml");
            if default.exists() {
                (
                    std::fs::read_to_string(default)
                        .context("cannot read the config file `webcare.toml`")?,
                    Some(default.to_owned()),
                    None,
                )
            } else {
                (String::new(), None, None)
            }
        }
    };
    let where_ = path
        .as_deref()
        .map(|p| format!("the config file `{}`", p.display()))
        .unwrap_or_else(|| "the WEBCARE_* environment variables".into());
    let config = overlay(&text, vars).with_context(|| format!("in {where_}"))?;
    Ok((config, base))
}

/// The database URL holds a password: refused in the file, like the other secrets.
fn refuse_store_url(table: &toml::Table) -> anyhow::Result<()> {
    if table
        .get("store")
        .and_then(|s| s.as_table())
        .is_some_and(|keys| keys.contains_key("url"))
    {
        return Err(anyhow!(
            "`[store] url`: the database URL holds a password, so it is never read from the config file; set WEBCARE_STORE_URL, or `url_file` with the path of a file that holds it"
        ));
    }
    Ok(())
}

fn overlay(text: &str, vars: &[(String, String)]) -> anyhow::Result<ConfigFile> {
    let mut table: toml::Table = toml::from_str(text)?;
    refuse_store_url(&table)?;
    for (section, value) in &table {
        if section == "store"
            && value
                .as_table()
                .is_some_and(|keys| keys.contains_key("url"))
        {
            return Err(anyhow!(
                "`[store] url`: the database URL holds a password, so it is never read from the config file; set WEBCARE_STORE_URL, or `url_file` with the path of a file that holds it"
            ));
        }
        if let Some(keys) = value.as_table()
            && let Some(key) = keys.keys().find(|k| SECRET_KEYS.contains(&k.as_str()))
        {
            return Err(anyhow!(
                "`[{section}] {key}`: secrets are never read from the config file; set them in the environment or with a `*_file` path"
            ));
        }
    }
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("WEBCARE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = ENV_SECTIONS.iter().find_map(|section| {
            rest.strip_prefix(section)
                .and_then(|k| k.strip_prefix('_'))
                .map(|key| (*section, key))
        }) else {
            continue;
        };
        if key.is_empty() || SECRET_KEYS.contains(&key) {
            continue;
        }
        // Numbers and booleans as TOML reads them; anything else is a string.
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| v.is_bool() || v.is_integer() || v.is_float())
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(keys) = entry.as_table_mut() else {
            return Err(anyhow!("`{section}` must be a section"));
        };
        keys.insert(key.to_owned(), value);
    }
    toml::Value::Table(table)
        .try_into::<ConfigFile>()
        .map_err(|e| anyhow!("{e}"))
}

/// The global options that choose the store.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Data directory (default `./data`, created on first run). Also `WEBCARE_DATA_DIR`.
    #[arg(long = "data", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store backend: `redb` (default), `sled` or `postgres` (URL in `WEBCARE_STORE_URL`).
    /// Also `WEBCARE_STORE`.
    #[arg(long = "store", global = true, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Config file; by default `webcare.toml` in the current directory, if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The store settings after every source was considered.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub options: StoreOptions,
    pub retention_days: Option<u32>,
}

/// Where the store is, for people: the data directory, or the database without its password.
impl fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.options.backend, &self.options.url) {
            (Backend::Postgres, Some(url)) => write!(f, "postgres at {url}"),
            (backend, _) => write!(f, "{backend} in {}", self.options.data_dir.display()),
        }
    }
}

/// Reads and checks a config file.
pub fn load_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file `{}`", path.display()))?;
    parse(&text).with_context(|| format!("in the config file `{}`", path.display()))
}

fn parse(text: &str) -> anyhow::Result<ConfigFile> {
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        refuse_store_url(&table)?;
    }
    // Parsed again as the config, so errors keep their line and column.
    Ok(toml::from_str(text)?)
}

impl StoreArgs {
    /// Combines the command line, the environment and the config file.
    pub fn resolve(&self) -> anyhow::Result<StoreConfig> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.resolve_with(env("WEBCARE_DATA_DIR"), env("WEBCARE_STORE"), &env)
    }

    fn resolve_with(
        &self,
        env_data: Option<String>,
        env_store: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<StoreConfig> {
        let (file, base) = match &self.config {
            Some(path) => (load_file(path)?, path.parent().map(Path::to_owned)),
            None => {
                let default = Path::new("webcare.toml");
                if default.exists() {
                    (load_file(default)?, None)
                } else {
                    (ConfigFile::default(), None)
                }
            }
        };
        let section = file.store;
        let backend = match self.backend.clone().or(env_store) {
            Some(name) => name.parse::<Backend>().map_err(|e| anyhow!("{e}"))?,
            None => section.backend.unwrap_or_default(),
        };
        let data_dir = match self.data_dir.clone().or(env_data.map(PathBuf::from)) {
            Some(dir) => dir,
            None => match (section.data_dir, base.clone()) {
                (Some(dir), Some(base)) if dir.is_relative() => base.join(dir),
                (Some(dir), _) => dir,
                (None, _) => PathBuf::from("data"),
            },
        };
        let url = crate::secrets::read_secret(
            "store URL",
            "WEBCARE_STORE_URL",
            section.url_file.as_deref(),
            base.as_deref(),
            env,
        )?
        .map(|secret| PgUrl::new(secret.expose()));
        if backend == Backend::Postgres && url.is_none() {
            return Err(anyhow!(
                "the postgres store needs its database URL: set WEBCARE_STORE_URL (e.g. postgres://webcare:PASSWORD@db.example/webcare), WEBCARE_STORE_URL_FILE, or `url_file` in `[store]`"
            ));
        }
        Ok(StoreConfig {
            options: StoreOptions {
                backend,
                data_dir,
                redact: section.redact,
                cache_bytes: None,
                url,
            },
            retention_days: section.retention_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::discord::DiscordChannels;
    use webcare_engine::Mode;

    #[test]
    fn the_two_instance_example_in_docs_deploy_reads() -> anyhow::Result<()> {
        let file = overlay(include_str!("../docs/deploy/webcare.toml"), &[])?;
        assert_eq!(file.store.backend, Some(Backend::Postgres));
        assert_eq!(file.store.claim_secs, Some(60));
        assert!(file.inbox.secure_cookies);
        Ok(())
    }

    #[test]
    fn the_store_section_parses_and_rejects_typos() -> anyhow::Result<()> {
        let file = parse(
            "[store]\nbackend = \"sled\"\ndata_dir = \"/var/lib/webcare\"\nretention_days = 90\nredact = true\n",
        )?;
        assert_eq!(file.store.backend, Some(Backend::Sled));
        assert_eq!(file.store.retention_days, Some(90));
        assert!(file.store.redact);
        let error = parse("[store]\nretention_dayz = 9\n")
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("retention_dayz"), "{error}");
        assert!(parse("[store]\nbackend = \"mysql\"\n").is_err());
        Ok(())
    }

    #[test]
    fn environment_variables_override_the_file_and_secrets_stay_out() -> anyhow::Result<()> {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let file = "[server]\nlisten = \"0.0.0.0:80\"\n[outbox]\nmax_attempts = 3\n";
        let config = overlay(
            file,
            &vars(&[
                ("WEBCARE_SERVER_LISTEN", "127.0.0.1:9999"),
                ("WEBCARE_HTTP_CHANNEL_REQUIRE_SIGNATURE", "true"),
                ("WEBCARE_HTTP_CHANNEL_CALLBACK_URL", "http://127.0.0.1:1/cb"),
                ("WEBCARE_WEBCHAT_PER_SECOND", "2.5"),
                ("WEBCARE_HTTP_SECRET", "not-a-config-key"),
                ("WEBCARE_DATA_DIR", "/elsewhere"),
            ]),
        )?;
        assert_eq!(config.server.listen.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(config.outbox.max_attempts, Some(3));
        assert_eq!(config.http_channel.require_signature, Some(true));
        assert_eq!(
            config.http_channel.callback_url.as_deref(),
            Some("http://127.0.0.1:1/cb")
        );
        assert_eq!(config.webchat.per_second, Some(2.5));

        let modes = overlay(
            "[webchat]\nmode = \"shadow\"\n[shadow]\nrules = \"candidate\"\n",
            &vars(&[
                ("WEBCARE_HTTP_CHANNEL_MODE", "listen"),
                ("WEBCARE_TELEGRAM_MODE", "live"),
                ("WEBCARE_SHADOW_RULES", "/etc/webcare/candidate"),
            ]),
        )?;
        assert_eq!(modes.http_channel.mode, Some(Mode::Listen));
        assert_eq!(modes.webchat.mode, Some(Mode::Shadow));
        assert_eq!(modes.telegram.mode, Some(Mode::Live));
        assert_eq!(modes.discord.mode, None);
        assert_eq!(
            modes.shadow.rules.as_deref(),
            Some(Path::new("/etc/webcare/candidate"))
        );
        let wrong = overlay("[discord]\nmode = \"pilot\"\n", &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            wrong.contains("pilot") && wrong.contains("listen"),
            "{wrong}"
        );

        let typo = overlay("", &vars(&[("WEBCARE_OUTBOX_MAX_ATTEMPS", "3")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(typo.contains("max_attemps"), "{typo}");
        let secret = overlay("[http_channel]\nsecret = \"hunter2\"\n", &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            secret.contains("never read from the config file"),
            "{secret}"
        );
        assert!(!secret.contains("hunter2"));
        Ok(())
    }

    #[test]
    fn platform_sections_parse_and_tokens_stay_out_of_the_file() -> anyhow::Result<()> {
        let file = "[telegram]\ntoken_file = \"/run/secrets/telegram\"\napi_url = \"http://127.0.0.1:8081\"\n\
                    [discord]\nchannels = [1234567890123456789, \"42\"]\n";
        let config = overlay(file, &[])?;
        assert_eq!(
            config.telegram.token_file.as_deref(),
            Some(Path::new("/run/secrets/telegram"))
        );
        let channels = config.discord.channels.map(|c| c.ids()).transpose()?;
        assert_eq!(channels, Some(vec![1234567890123456789, 42]));

        let from_env = overlay(
            "",
            &[
                ("WEBCARE_DISCORD_CHANNELS".to_owned(), "7, 8".to_owned()),
                (
                    "WEBCARE_TELEGRAM_POLL_TIMEOUT_SECS".to_owned(),
                    "5".to_owned(),
                ),
            ],
        )?;
        let channels = from_env.discord.channels.map(|c| c.ids()).transpose()?;
        assert_eq!(channels, Some(vec![7, 8]));
        assert_eq!(from_env.telegram.poll_timeout_secs, Some(5));
        let one = overlay(
            "",
            &[("WEBCARE_DISCORD_CHANNELS".to_owned(), "3003".to_owned())],
        )?;
        let channels = one.discord.channels.map(|c| c.ids()).transpose()?;
        assert_eq!(channels, Some(vec![3003]));

        for bad in [
            "[telegram]\ntoken = \"123:abc\"\n",
            "[telegram]\nwebhook_secret = \"abc\"\n",
            "[discord]\nbot_token = \"abc\"\n",
        ] {
            let error = overlay(bad, &[])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("never read from the config file"), "{error}");
            assert!(!error.contains("abc"), "{error}");
        }
        let wrong = DiscordChannels::Text("12, general".into()).ids();
        assert!(wrong.is_err_and(|e| e.to_string().contains("`general`")));
        assert!(overlay("[telegram]\npoll_timeout = 5\n", &[]).is_err());
        Ok(())
    }

    #[test]
    fn command_line_beats_environment_beats_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("webcare.toml");
        std::fs::write(
            &config,
            "[store]\nbackend = \"sled\"\ndata_dir = \"store\"\n",
        )?;
        let mut args = StoreArgs {
            config: Some(config),
            ..StoreArgs::default()
        };
        let from_file = args.resolve_with(None, None, &|_| None)?;
        assert_eq!(from_file.options.backend, Backend::Sled);
        assert_eq!(from_file.options.data_dir, dir.path().join("store"));

        let from_env = args.resolve_with(Some("/env".into()), Some("redb".into()), &|_| None)?;
        assert_eq!(from_env.options.backend, Backend::Redb);
        assert_eq!(from_env.options.data_dir, PathBuf::from("/env"));

        args.data_dir = Some("/cli".into());
        args.backend = Some("sled".into());
        let from_cli = args.resolve_with(Some("/env".into()), Some("redb".into()), &|_| None)?;
        assert_eq!(from_cli.options.backend, Backend::Sled);
        assert_eq!(from_cli.options.data_dir, PathBuf::from("/cli"));
        Ok(())
    }

    #[test]
    fn the_postgres_url_is_a_secret_from_the_environment_or_a_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("webcare.toml");
        let args = StoreArgs {
            config: Some(config.clone()),
            ..StoreArgs::default()
        };
        let url = "postgres://webcare:s3cret@db.example/webcare";

        // Never in the file itself.
        std::fs::write(
            &config,
            format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"),
        )?;
        let refused = args.resolve_with(None, None, &|_| None);
        assert!(refused.is_err_and(|e| format!("{e:#}").contains("WEBCARE_STORE_URL")));

        // Missing: says where to put it.
        std::fs::write(&config, "[store]\nbackend = \"postgres\"\n")?;
        let missing = args.resolve_with(None, None, &|_| None);
        assert!(missing.is_err_and(|e| e.to_string().contains("WEBCARE_STORE_URL")));

        // From the environment; shown without the password.
        let env = |name: &str| (name == "WEBCARE_STORE_URL").then(|| url.to_owned());
        let resolved = args.resolve_with(None, None, &env)?;
        assert_eq!(resolved.options.backend, Backend::Postgres);
        assert_eq!(resolved.options.url.as_ref().map(|u| u.expose()), Some(url));
        let shown = format!("{resolved} {resolved:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres at `postgres://webcare:***@db.example/webcare`"),
            "{shown}"
        );

        // From `url_file`, relative to the config file.
        std::fs::write(dir.path().join("db-url"), format!("{url}\n"))?;
        std::fs::write(
            &config,
            "[store]\nbackend = \"postgres\"\nurl_file = \"db-url\"\n",
        )?;
        let resolved = args.resolve_with(None, None, &|_| None)?;
        assert_eq!(resolved.options.url.as_ref().map(|u| u.expose()), Some(url));
        Ok(())
    }
}
