//! `webcare.toml` and the global store options. The file is optional; every setting has a
//! default, and the command line and the environment override the file, so one deployment can
//! keep its settings in a file while a test or a one-off run points elsewhere with `--data`.
//!
//! Precedence, strongest first: `--data`/`--store`, `WEBCARE_DATA_DIR`/`WEBCARE_STORE`, the
//! `[store]` section of the config file, the defaults (`./data`, redb). A relative `data_dir`
//! in the file is relative to the file, so the file can move with its data.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde::Deserialize;
use webcare_engine::store::{Backend, StoreOptions};

/// The config file as written. Unknown keys are errors: a typo must not silently fall back
/// to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub store: StoreSection,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `redb` (default) or `sled`.
    pub backend: Option<Backend>,
    /// Default `./data`; created on first run.
    pub data_dir: Option<PathBuf>,
    /// Delete messages older than this many days (checked when `ingest` starts).
    pub retention_days: Option<u32>,
    /// Replace e-mail addresses, phone numbers, IBANs and BSNs in stored text.
    #[serde(default)]
    pub redact: bool,
}

/// The global options that choose the store.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Data directory (default `./data`, created on first run). Also `WEBCARE_DATA_DIR`.
    #[arg(long = "data", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store backend: `redb` (default) or `sled`. Also `WEBCARE_STORE`.
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

/// Reads and checks a config file.
pub fn load_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file `{}`", path.display()))?;
    parse(&text).with_context(|| format!("in the config file `{}`", path.display()))
}

fn parse(text: &str) -> anyhow::Result<ConfigFile> {
    Ok(toml::from_str(text)?)
}

impl StoreArgs {
    /// Combines the command line, the environment and the config file.
    pub fn resolve(&self) -> anyhow::Result<StoreConfig> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.resolve_with(env("WEBCARE_DATA_DIR"), env("WEBCARE_STORE"))
    }

    fn resolve_with(
        &self,
        env_data: Option<String>,
        env_store: Option<String>,
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
            None => match (section.data_dir, base) {
                (Some(dir), Some(base)) if dir.is_relative() => base.join(dir),
                (Some(dir), _) => dir,
                (None, _) => PathBuf::from("data"),
            },
        };
        Ok(StoreConfig {
            options: StoreOptions {
                backend,
                data_dir,
                redact: section.redact,
            },
            retention_days: section.retention_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let from_file = args.resolve_with(None, None)?;
        assert_eq!(from_file.options.backend, Backend::Sled);
        assert_eq!(from_file.options.data_dir, dir.path().join("store"));

        let from_env = args.resolve_with(Some("/env".into()), Some("redb".into()))?;
        assert_eq!(from_env.options.backend, Backend::Redb);
        assert_eq!(from_env.options.data_dir, PathBuf::from("/env"));

        args.data_dir = Some("/cli".into());
        args.backend = Some("sled".into());
        let from_cli = args.resolve_with(Some("/env".into()), Some("redb".into()))?;
        assert_eq!(from_cli.options.backend, Backend::Sled);
        assert_eq!(from_cli.options.data_dir, PathBuf::from("/cli"));
        Ok(())
    }
}
