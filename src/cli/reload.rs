//! `webcare reload`: asks the running service to read its rules directory again, check it,
//! run its golden cases and put it in force; the same as `POST /api/v1/rulebook/reload` and as
//! the watcher does on a change. A rejected rulebook leaves the old one running; the command
//! prints every `file:line:column` error the service found and exits 1, so a governance lead
//! (or a deploy script) sees at once what to fix.

use std::process::ExitCode;

use anyhow::bail;
use reqwest::StatusCode;

use super::admin::{Admin, AdminArgs};
use crate::config::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

pub fn run(store_args: &StoreArgs, args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let admin = Admin::connect(store_args, &args.admin)?;
    let answer = admin.call(true, "/api/v1/rulebook/reload", None)?;
    let body = &answer.body;
    let text = |key: &str| body[key].as_str().unwrap_or("?").to_owned();
    match (answer.status, body["status"].as_str()) {
        (StatusCode::OK, Some("activated")) => {
            println!(
                "rulebook {} is active (was {}); new messages are decided with it",
                text("version"),
                text("previous")
            );
            Ok(ExitCode::SUCCESS)
        }
        (StatusCode::OK, Some("unchanged")) => {
            println!(
                "rulebook {} is already active; the files did not change",
                text("version")
            );
            Ok(ExitCode::SUCCESS)
        }
        (_, Some("rejected")) => {
            let errors: Vec<&str> = body["errors"]
                .as_array()
                .map(|errors| errors.iter().filter_map(|e| e.as_str()).collect())
                .unwrap_or_default();
            for error in &errors {
                eprintln!("{error}");
            }
            let count = errors.len();
            eprintln!(
                "the rulebook was rejected ({count} error{}); rulebook {} keeps running",
                if count == 1 { "" } else { "s" },
                text("running")
            );
            Ok(ExitCode::from(1))
        }
        (status, _) => bail!(
            "the service at {} answered {status}: {}",
            admin.url(),
            body["error"].as_str().unwrap_or("no explanation")
        ),
    }
}
