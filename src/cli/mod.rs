//! The subcommands, one module each, and what they share: loading the rulebook, opening the
//! store.

pub mod admin;
pub mod backup;
pub mod chat;
pub mod check;
pub mod crisis;
pub mod eval;
pub mod explain;
pub mod forget;
pub mod ingest;
pub mod load;
pub mod migrate;
pub mod reload;
pub mod replay;
pub mod report;
pub mod run;
pub mod user;
pub mod versions;

use std::path::Path;

use anyhow::anyhow;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use webcare_engine::{Rulebook, Store};

use crate::config::{StoreArgs, StoreConfig};

/// Loads `--rules DIR` or the embedded default. A rulebook with any error is refused whole,
/// with every error on its own line.
pub fn load_rulebook(dir: Option<&Path>) -> anyhow::Result<Rulebook> {
    let loaded = match dir {
        Some(dir) => Rulebook::from_dir(dir),
        None => Rulebook::embedded(),
    };
    loaded.map_err(|errors| {
        let count = errors.0.len();
        let plural = if count == 1 { "" } else { "s" };
        anyhow!("{errors}\nthe rulebook has {count} error{plural}; nothing was run")
    })
}

/// Parses `--at` as local time in the rulebook's time zone (`2026-11-23 10:00`) or RFC 3339.
pub fn parse_at(rulebook: &Rulebook, at: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    let Some(at) = at else {
        return Ok(Utc::now());
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(at) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M")
        .ok()
        .and_then(|local| {
            rulebook
                .teams()
                .timezone
                .from_local_datetime(&local)
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow!("`--at {at}` is not a time like `2026-11-23 10:00`"))
}

/// Opens the store the global options and `webcare.toml` choose.
pub fn open_store(args: &StoreArgs) -> anyhow::Result<(std::sync::Arc<dyn Store>, StoreConfig)> {
    let config = args.resolve()?;
    let store = webcare_engine::store::open(&config.options)?;
    Ok((store, config))
}
