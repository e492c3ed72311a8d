//! `webcare run`: the service. It reads `webcare.toml` (optional) and the `WEBCARE_*`
//! environment, opens the store, loads the rulebook and hands everything to
//! [`crate::service`], which prints what runs where and serves until SIGINT or SIGTERM.
//! With no configuration at all it runs the embedded rulebook on a redb store in `./data`, the
//! web chat and the HTTP channel on `http://127.0.0.1:8080/`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use webcare_engine::Runtime;

use crate::config::{self, StoreArgs};
use crate::service::{self, Settings};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Address to listen on (default `127.0.0.1:8080`; port 0 picks a free port). Also
    /// `WEBCARE_SERVER_LISTEN` or `[server] listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub fn run(
    rules: Option<&Path>,
    store_args: &StoreArgs,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let (file, base) = config::load_with_env(store_args, &vars)?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut settings = Settings::build(&file, base.as_deref(), &env)?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    settings.rules_dir = rules.map(Path::to_path_buf);
    let rulebook = super::load_rulebook(rules)?;
    let (store, store_config) = super::open_store(store_args)?;
    println!(
        "rulebook: {} {} ({})",
        rulebook.name,
        rulebook.version,
        rules.map_or_else(|| "embedded".to_owned(), |p| p.display().to_string())
    );
    println!(
        "store: {} in {}",
        store_config.options.backend,
        store_config.options.data_dir.display()
    );
    // The store keeps every rulebook version the service runs, before it decides anything.
    webcare_engine::store::save_rulebook(&*store, &rulebook, "run", chrono::Utc::now())?;
    let runtime = Arc::new(Runtime::new(rulebook, store));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("webcare")
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(service::run(runtime, settings, service::signals()))?;
    Ok(ExitCode::SUCCESS)
}
