//! `webcare crisis on|off|auto|status`: the crisis switch of the running service, the same
//! switch as `POST /api/v1/crisis` and the leads' switch in the inbox. While crisis mode is on
//! the governance script sends every message to a person with the crisis holding reply (see
//! docs/rulebook.md); `auto` hands the setting back to the rulebook's `crisis_mode`. Every
//! switch is written to the audit log by the service.

use std::process::ExitCode;

use anyhow::bail;
use reqwest::StatusCode;

use super::admin::{Admin, AdminArgs, Answer};
use crate::admin_api::{self, CrisisRequest, CrisisState};
use crate::config::StoreArgs;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Switch {
    /// Crisis mode on: every message goes to a person.
    On,
    /// Crisis mode off, whatever the rulebook says.
    Off,
    /// Follow the rulebook's `crisis_mode` again.
    Auto,
    /// Show the switch without changing it.
    Status,
}

#[derive(Debug, clap::Args)]
pub struct CrisisArgs {
    /// `on`, `off`, `auto` (follow the rulebook) or `status`.
    #[arg(value_enum)]
    switch: Switch,
    #[command(flatten)]
    admin: AdminArgs,
}

pub fn run(store_args: &StoreArgs, args: CrisisArgs) -> anyhow::Result<ExitCode> {
    let admin = Admin::connect(store_args, &args.admin)?;
    let set = |on| -> anyhow::Result<Answer> {
        let body = serde_json::to_value(CrisisRequest { on })?;
        admin.call(true, admin_api::CRISIS, Some(body))
    };
    let answer = match args.switch {
        Switch::Status => admin.call(false, admin_api::CRISIS, None)?,
        Switch::On => set(Some(true))?,
        Switch::Off => set(Some(false))?,
        Switch::Auto => set(None)?,
    };
    if answer.status != StatusCode::OK {
        bail!(
            "the service at {} answered {}: {}",
            admin.url(),
            answer.status,
            answer.body["error"].as_str().unwrap_or("no explanation")
        );
    }
    let Ok(state) = serde_json::from_value::<CrisisState>(answer.body.clone()) else {
        bail!(
            "the service at {} gave no crisis state: {}",
            admin.url(),
            answer.body
        );
    };
    println!("{}", describe(&state));
    if !matches!(args.switch, Switch::Status) {
        println!("(the switch is in the service's audit log)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `crisis mode is ON (switched on): …`, in words a lead can act on.
fn describe(state: &CrisisState) -> String {
    let why = match state.switch {
        Some(true) => "switched on",
        Some(false) => "switched off",
        None => "as the rulebook says",
    };
    if state.crisis_mode {
        format!(
            "crisis mode is ON ({why}): every message goes to a person with the crisis holding reply; `webcare crisis auto` hands it back to the rulebook"
        )
    } else {
        format!("crisis mode is off ({why}): the rulebook decides as usual")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_reads_as_what_it_does() {
        let state = |crisis_mode, switch| CrisisState {
            crisis_mode,
            switch,
        };
        assert!(describe(&state(true, Some(true))).starts_with("crisis mode is ON (switched on)"));
        assert_eq!(
            describe(&state(false, None)),
            "crisis mode is off (as the rulebook says): the rulebook decides as usual"
        );
    }
}
