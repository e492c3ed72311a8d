//! `webcare run`: the service. It reads `webcare.toml` (optional) and the `WEBCARE_*`
//! environment, opens the store, loads the rulebook and hands everything to
//! [`crate::service`], which prints what runs where and serves until SIGINT or SIGTERM.
//! With no configuration at all it runs the embedded rulebook on a redb store in `./data`, the
//! web chat and the HTTP channel on `http://127.0.0.1:8080/`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use webcare_engine::{Rulebook, Runtime};

use crate::config::{self, StoreArgs};
use crate::service::{self, Settings};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Address to listen on (default `127.0.0.1:8080`; port 0 picks a free port). Also
    /// `WEBCARE_SERVER_LISTEN` or `[server] listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

/// The most threads intake and other store calls run on at once (see [`run`]).
pub const BLOCKING_THREADS: usize = 16;

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
    // A broken candidate stops the start, like a broken live rulebook: a shadow run that
    // silently decided nothing would measure nothing.
    let shadow = settings
        .shadow_rules
        .as_deref()
        .map(load_shadow)
        .transpose()?;
    let (store, store_config) = super::open_store(store_args)?;
    settings.data_dir = store_config.options.data_dir.clone();
    println!(
        "rulebook: {} {} ({})",
        rulebook.name,
        rulebook.version,
        rules.map_or_else(|| "embedded".to_owned(), |p| p.display().to_string())
    );
    println!("store: {store_config}");
    // The store keeps every rulebook version the service runs, before it decides anything.
    webcare_engine::store::save_rulebook(&*store, &rulebook, "run", chrono::Utc::now())?;
    // The crisis switch a lead set stays where they put it across a restart.
    let crisis = store
        .crisis_switch()
        .context("cannot read the crisis switch from the store")?;
    let mut runtime = Runtime::new(rulebook, store).with_modes(settings.modes);
    if let Some(on) = crisis {
        runtime.set_crisis_override(Some(on));
        println!(
            "crisis switch: {} (set by a lead before the restart; `webcare crisis auto` follows the rulebook again)",
            if on { "ON" } else { "off" }
        );
    }
    if let Some(shadow) = shadow {
        runtime = runtime.with_shadow(shadow);
    }
    let runtime = Arc::new(runtime);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("webcare")
        // Intake waits for a durable commit on the blocking pool, and commits go one at a time:
        // with tokio's default of 512 threads, 256 waiting clients made 500 threads and 0.8 GB.
        // Sixteen keep the store busy; more requests wait as small tasks, not threads.
        .max_blocking_threads(BLOCKING_THREADS)
        // Messages are decided, and a reloaded rulebook's golden cases run, on these threads:
        // they need the stack the deepest allowed script takes.
        .thread_stack_size(webcare_engine::script::DECIDE_STACK_BYTES)
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(service::run(runtime, settings, crate::shutdown::signals()))?;
    Ok(ExitCode::SUCCESS)
}

/// Compiles the `[shadow] rules` candidate; its errors name file, line and column as
/// `webcare check` does.
fn load_shadow(dir: &Path) -> anyhow::Result<Rulebook> {
    Rulebook::from_dir(dir).map_err(|errors| {
        let count = errors.0.len();
        let plural = if count == 1 { "" } else { "s" };
        anyhow!(
            "{errors}\nthe shadow rulebook `{}` ([shadow] rules) has {count} error{plural}; nothing was run",
            dir.display()
        )
    })
}
