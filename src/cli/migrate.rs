//! `webcare migrate`: brings a PostgreSQL store's schema up to date (what every start does too,
//! for operators who migrate before they roll out), and with `--from DATA_DIR` copies an
//! embedded store into an empty PostgreSQL database and checks the counts (see
//! `webcare_engine::store::postgres::copy`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use webcare_engine::store::postgres::{self, PgUrl};
use webcare_engine::store::{self, Backend, StoreOptions};

use crate::config::StoreArgs;

#[derive(Args)]
pub struct MigrateArgs {
    /// The data directory of an embedded store (redb or sled) to copy into PostgreSQL. Stop
    /// the webcare that uses it first.
    #[arg(long, value_name = "DATA_DIR")]
    from: Option<PathBuf>,
    /// The PostgreSQL database (`postgres://USER:PASSWORD@HOST/DB`); by default
    /// WEBCARE_STORE_URL (or its file). Prefer the variable on a shared machine: other users
    /// can read a command line.
    #[arg(long, value_name = "URL")]
    to: Option<String>,
}

pub fn run(store_args: &StoreArgs, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = match &args.to {
        Some(to) if PgUrl::is_url(to) => PgUrl::new(to.as_str()),
        Some(_) => bail!("`--to` must be a PostgreSQL URL (postgres://USER:PASSWORD@HOST/DB)"),
        None => store_args.resolve()?.options.url.ok_or_else(|| {
            anyhow!(
                "no PostgreSQL database given: pass `--to postgres://…` or set WEBCARE_STORE_URL"
            )
        })?,
    };
    let Some(from) = args.from else {
        let applied = postgres::migrate(&url).with_context(|| format!("cannot migrate {url}"))?;
        if applied.is_empty() {
            println!("{url}: the schema is up to date");
        }
        for (version, name) in applied {
            println!("{url}: applied migration {version} ({name})");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let backend = [Backend::Redb, Backend::Sled]
        .into_iter()
        .find(|b| b.path_in(&from).exists())
        .ok_or_else(|| anyhow!("there is no redb or sled store in `{}`", from.display()))?;
    let source = store::open(&StoreOptions {
        backend,
        data_dir: from.clone(),
        redact: false,
        // Every record is read once: a small cache keeps the memory flat.
        cache_bytes: Some(64 << 20),
        url: None,
    })
    .with_context(|| format!("cannot open the {backend} store in `{}`", from.display()))?;
    let report = postgres::copy::copy(&*source, &url)
        .with_context(|| format!("cannot copy `{}` to {url}", from.display()))?;
    println!(
        "copied the {backend} store in `{}` to {url}: {report}; the counts match",
        from.display()
    );
    println!(
        "API tokens are not copied (the embedded store keeps only their digests): make new ones with `webcare user token LOGIN`"
    );
    Ok(ExitCode::SUCCESS)
}
