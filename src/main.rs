//! `webcare`: the composition root. It loads a rulebook (the embedded default or `--rules DIR`)
//! and hands it to one of the commands below; all decisions are made by `webcare-engine`.
//!
//! # Layout
//!
//! - `cli/chat.rs`: `webcare chat`, the rulebook in a terminal.
//! - `cli/check.rs`: `webcare check` and `webcare test`, for governance leads and CI.
//! - `cli/replay.rs`: `webcare replay`, batch decisions without side effects.
//! - `cli/eval.rs`: `webcare eval`, the rulebook's decisions measured against labelled messages.
//! - `cli/ingest.rs`, `cli/forget.rs`, `cli/versions.rs`, `cli/backup.rs`: `webcare ingest`,
//!   `webcare forget`, `webcare backup` and `webcare restore`,
//!   and `webcare versions`, the store.
//! - `governance.rs`: hot reload of the rulebook and the crisis switch in `webcare run`, and
//!   its admin API; `cli/reload.rs` and `cli/crisis.rs` (`webcare reload`, `webcare crisis`)
//!   are clients of it, through `cli/admin.rs`.
//! - `admin_api.rs`: the admin API's paths, requests and answers, and the reports and user
//!   changes it makes, shared by `governance.rs` and the commands that call it.
//! - `cli/report.rs`: `webcare report`, KPIs and trends of a period (weekly digest, quarterly
//!   report).
//! - `config.rs`: `webcare.toml` (gathering each part's section) and the global store options;
//!   `secrets.rs`: tokens and secrets, from the environment or a file, never from the file.
//! - `inbox.rs`, `cli/user.rs`: the support team's inbox in `webcare run`, and its users.
//! - `channels/`: the channels of `webcare run`, one module each (HTTP channel, web chat, and
//!   Telegram and Discord behind the features `telegram` and `discord`, on by default): its
//!   config section, its secrets, and how it starts.
//! - `cluster.rs`: several instances on one PostgreSQL store: following the rulebook and crisis
//!   switch the others set, and the leader that runs Telegram polling and the Discord gateway.
//! - `dashboard.rs`: the live dashboard and Prometheus `/metrics` of `webcare run`.
//! - `cli/run.rs`, `service.rs`: `webcare run`, the service: the channels, the outbox worker,
//!   the inbox and the admin API around one runtime; `shutdown.rs`, the signal they all stop on;
//!   `server.rs`, the web server's accept loop with its timeouts and connection cap;
//!   `health.rs`, `/healthz`, unhealthy while intake cannot write.
//! - `cli/load.rs`: `webcare load`, the bounded load generator for the HTTP channel.

mod admin_api;
mod channels;
mod cli;
mod cluster;
mod config;
mod dashboard;
mod governance;
mod health;
mod inbox;
mod secrets;
mod server;
mod service;
mod shutdown;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A rules-driven webcare engine: answers, escalates or logs every customer message, and says why.
#[derive(Parser)]
#[command(name = "webcare", version, about, long_about = None)]
struct Args {
    /// Rulebook directory (rulebook.toml, topics.toml, …). Without it the embedded default
    /// rulebook of a Dutch municipality is used.
    #[arg(long, global = true, value_name = "DIR")]
    rules: Option<PathBuf>,
    #[command(flatten)]
    store: config::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: the web chat (demo page at `/`), the HTTP channel, the configured
    /// platform adapters and the outbox, until Ctrl-C or SIGTERM. Needs no configuration.
    Run(cli::run::RunArgs),
    /// Load a running webcare's HTTP channel on this machine (loopback only, bounded) and
    /// print messages/s and the latency from request to decision.
    Load(cli::load::LoadArgs),
    /// Talk to the rulebook in the terminal: type a message, see the reply or the escalation
    /// and why. Nothing is stored or sent.
    Chat(cli::chat::ChatArgs),
    /// Validate the rulebook and scripts; every error names file, line and column.
    Check,
    /// Run the rulebook's golden cases (tests.toml); prints each failure with expected and
    /// actual, ends with `N passed, N failed`, and exits non-zero on any failure.
    Test(cli::check::TestArgs),
    /// Decide a file of messages (one JSON object per line) without side effects, writing one
    /// JSON decision per line to stdout. Bad lines are reported on stderr with their number and
    /// skipped; the exit status is 1 if any line was skipped.
    Replay(cli::replay::ReplayArgs),
    /// Decide every labelled message of a file (one JSON object per line: `text`, `category`,
    /// optionally `topic` and `lang`) and measure the decisions against the labels: acceptable
    /// share, critical recall, automation rate, precision and recall per category, the
    /// confusion matrix and every critical miss with its reasons. Exits 1 when the rulebook's
    /// [eval] thresholds fail, 2 when the file cannot be used.
    Eval(cli::eval::EvalArgs),
    /// Decide and durably store messages (one JSON object per line), printing `ack <id>
    /// <action>` for each once it is on disk. A message delivered twice is stored once.
    Ingest(cli::ingest::IngestArgs),
    /// Erase one author's messages and conversations from the store (right to be forgotten);
    /// the audit log keeps that it happened, without their data.
    Forget(cli::forget::ForgetArgs),
    /// Write a consistent copy of the store into DIR (owner only); while `webcare run` holds
    /// the store, the service makes the copy through its admin API (WEBCARE_ADMIN_TOKEN).
    Backup(cli::backup::BackupArgs),
    /// Put a copy made by `webcare backup DIR` back as the store (the service stopped); the
    /// store it replaces is moved aside, never deleted.
    Restore(cli::backup::RestoreArgs),
    /// Explain one stored decision step by step: the normalised text, the topics and keywords
    /// that matched, what each script said, the rulebook version and the reasons.
    Explain(cli::explain::ExplainArgs),
    /// Manage the people who log in to the inbox: `user add LOGIN --role agent --team webcare`
    /// (password on stdin), `user token LOGIN` (a new API token, shown once), `user list`.
    User(cli::user::UserArgs),
    /// KPIs of a period from the store: volume, automation and escalation rates, unanswered
    /// messages, first response and resolution times, SLA, first-time resolution, sentiment and
    /// trending topics; as table, CSV, JSON or a self-contained HTML page (`--preset weekly`,
    /// `--preset quarterly`).
    Report(cli::report::ReportArgs),
    /// List the rulebook versions the store kept: which rules were in force, since when, and
    /// who put them there.
    Versions(cli::versions::VersionsArgs),
    /// Ask the running service to reload its rules directory: checked, tested, then put in
    /// force. A rejected rulebook prints its file:line:column errors and exits 1; the old one
    /// keeps running. Needs WEBCARE_ADMIN_TOKEN (or WEBCARE_ADMIN_TOKEN_FILE).
    Reload(cli::reload::ReloadArgs),
    /// The running service's crisis switch: `on` (every message goes to a person), `off`,
    /// `auto` (follow the rulebook) or `status`. Audited. Needs WEBCARE_ADMIN_TOKEN.
    Crisis(cli::crisis::CrisisArgs),
    /// Bring the PostgreSQL store's schema up to date (`webcare migrate`), or copy an
    /// embedded store into an empty PostgreSQL database and check the counts (`webcare migrate
    /// --from DATA_DIR --to postgres://…`).
    Migrate(cli::migrate::MigrateArgs),
}

/// redb stops on some damaged files with an assertion, which the store catches and turns into
/// a clear error ("restore it from a backup…"); the assertion's own message and backtrace
/// would only bury that error, so panics raised inside redb are not printed. Every other panic
/// is reported as before.
fn quiet_storage_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_redb = info.location().is_some_and(|at| {
            let file = at.file().replace('\\', "/");
            file.contains("/redb-") || file.contains("/redb/")
        });
        if !in_redb {
            report(info);
        }
    }));
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Warnings by default (a Telegram token refused, a callback failing): an
                // operator must see why nothing arrives. Script errors are part of every
                // decision's diagnostics and printed where they matter, so the engine's own
                // warnings stay off unless asked (RUST_LOG).
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,webcare_engine=error")
                }),
        )
        .init();
    quiet_storage_panics();
    let args = Args::parse();
    // Every command may decide messages (chat, test, eval, a reload's golden cases), and the
    // rulebook's scripts need more stack than the main thread has: the command runs on a
    // thread of its own with the stack the deepest allowed script takes.
    let command = std::thread::Builder::new()
        .name("webcare".into())
        .stack_size(webcare_engine::script::DECIDE_STACK_BYTES)
        .spawn(move || dispatch(args));
    let result = match command {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the command stopped on an internal error"))),
        Err(error) => Err(anyhow::anyhow!(
            "cannot start the command's thread: {error}"
        )),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(args: Args) -> anyhow::Result<ExitCode> {
    let rules = args.rules.as_deref();
    match args.command {
        Command::Run(run) => cli::run::run(rules, &args.store, run),
        Command::Load(load) => cli::load::run(load),
        Command::Chat(chat) => cli::chat::run(rules, chat),
        Command::Check => cli::check::check(rules),
        Command::Test(test) => cli::check::test(rules, test),
        Command::Replay(replay) => cli::replay::run(rules, &args.store, replay),
        Command::Eval(eval) => cli::eval::run(rules, eval),
        Command::Ingest(ingest) => cli::ingest::run(rules, &args.store, ingest),
        Command::Forget(forget) => cli::forget::run(&args.store, forget),
        Command::Backup(backup) => cli::backup::backup(&args.store, backup),
        Command::Restore(restore) => cli::backup::restore(&args.store, restore),
        Command::Explain(explain) => cli::explain::run(rules, &args.store, explain),
        Command::User(user) => cli::user::run(rules, &args.store, user),
        Command::Report(report) => cli::report::run(rules, &args.store, report),
        Command::Versions(versions) => cli::versions::run(&args.store, versions),
        Command::Reload(reload) => cli::reload::run(&args.store, reload),
        Command::Crisis(crisis) => cli::crisis::run(&args.store, crisis),
        Command::Migrate(migrate) => cli::migrate::run(&args.store, migrate),
    }
}
