//! `webcare forget --author ID`: the right to be forgotten (AVG/GDPR art. 17). Erases everything
//! one person wrote and the conversations that were theirs alone; the audit log records that it
//! happened, by whom and how much, but names the person only by a one-way hash.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Args;

use crate::config::StoreArgs;

#[derive(Args)]
pub struct ForgetArgs {
    /// The author's platform id, exactly as stored (the `author` of their messages).
    #[arg(long, value_name = "ID")]
    author: String,
    /// Who asks, for the audit log; default the `USER` of this shell.
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
}

pub fn run(store_args: &StoreArgs, args: ForgetArgs) -> anyhow::Result<ExitCode> {
    let (store, config) = super::open_store(store_args)?;
    let actor = args
        .actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let report = store.forget_author(&args.author, &actor, Utc::now())?;
    // Deleted entries leave their bytes in the file's free pages until reused; a rewrite into
    // a fresh file leaves nothing of them on disk.
    drop(store);
    super::backup::rewrite_store(&config.options)
        .context("the erasure is done, but rewriting the store file failed; run `webcare forget` again to finish")?;
    println!(
        "forgot `{}`: erased {} messages, {} conversations, {} escalations, {} outbox entries",
        args.author, report.messages, report.conversations, report.escalations, report.outbox
    );
    Ok(ExitCode::SUCCESS)
}
