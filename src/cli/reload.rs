//! `webcare reload`: asks the running service to read its rules directory again, check it,
//! run its golden cases and put it in force; the same as `POST /api/v1/rulebook/reload` and as
//! the watcher does on a change. A rejected rulebook leaves the old one running; the command
//! prints every `file:line:column` error the service found and exits 1, so a governance lead
//! (or a deploy script) sees at once what to fix.

use std::process::ExitCode;

use anyhow::bail;
use reqwest::StatusCode;

use super::admin::{Admin, AdminArgs};
use crate::admin_api::{self, ReloadOutcome};
use crate::config::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

pub fn run(store_args: &StoreArgs, args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let admin = Admin::connect(store_args, &args.admin)?;
    let answer = admin.call(true, admin_api::RELOAD, None)?;
    let outcome = serde_json::from_value::<ReloadOutcome>(answer.body.clone());
    match (answer.status, outcome) {
        (StatusCode::OK, Ok(ReloadOutcome::Activated { version, previous })) => {
            println!(
                "rulebook {version} is active (was {previous}); new messages are decided with it"
            );
            Ok(ExitCode::SUCCESS)
        }
        (StatusCode::OK, Ok(ReloadOutcome::Unchanged { version })) => {
            println!("rulebook {version} is already active; the files did not change");
            Ok(ExitCode::SUCCESS)
        }
        (_, Ok(ReloadOutcome::Rejected { running, errors })) => {
            for error in &errors {
                eprintln!("{error}");
            }
            let count = errors.len();
            eprintln!(
                "the rulebook was rejected ({count} error{}); rulebook {running} keeps running",
                if count == 1 { "" } else { "s" },
            );
            Ok(ExitCode::from(1))
        }
        (status, _) => bail!(
            "the service at {} answered {status}: {}",
            admin.url(),
            answer.body["error"].as_str().unwrap_or("no explanation")
        ),
    }
}
