//! `webcare user`: the people who log in to the inbox. Passwords are read from stdin (one line;
//! with a terminal, a prompt with echo off) and stored only as an argon2id hash; an API token is
//! printed once and stored only as its SHA-256, so a lost token is replaced, never recovered.
//!
//! While `webcare run` holds the store, the change goes to the running service instead (admin
//! API `POST /api/v1/users`, applied by the same code in `crate::admin_api`): the password is
//! hashed and the token made here, so neither travels.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use chrono::Utc;
use webcare_engine::store::{self, Role, StoreError, User};
use webcare_inbox::auth::{hash_password, new_api_token, token_digest};

use super::admin::{Admin, AdminArgs};
use crate::admin_api::{self, UserChange, UserOutcome};
use crate::config::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
    /// Where to send the change while `webcare run` holds the store.
    #[command(flatten)]
    service: AdminArgs,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user, or replace one with the same login (a new password, role or teams). The
    /// password is read from stdin.
    Add {
        login: String,
        /// The name colleagues see.
        #[arg(long)]
        name: Option<String>,
        /// `agent` (their teams' escalations) or `lead` (all).
        #[arg(long, default_value = "agent")]
        role: String,
        /// A team whose queue they work (repeat for more).
        #[arg(long = "team", value_name = "TEAM")]
        teams: Vec<String>,
    },
    /// Print a new API token for the REST API (`Authorization: Bearer …`); shown only once.
    Token { login: String },
    /// List the users with their role and teams.
    List,
    /// Revoke every API token of a user (the user keeps their password).
    Revoke { login: String },
    /// Remove a user who no longer works the inbox: their password, open browser sessions and
    /// API tokens stop working at once; their name stays on what they did.
    Remove { login: String },
}

pub fn run(
    rules: Option<&std::path::Path>,
    store_args: &StoreArgs,
    args: UserArgs,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let mut token = None;
    let change = match args.command {
        UserCommand::Add {
            login,
            name,
            role,
            teams,
        } => {
            let login = login.trim().to_owned();
            if login.is_empty() || login.len() > 64 || login.contains(char::is_whitespace) {
                return Err(anyhow!(
                    "`{login}` is not a login: 1 to 64 characters, no spaces"
                ));
            }
            let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
            let rulebook = super::load_rulebook(rules)?;
            for team in &teams {
                if rulebook.teams().get(team).is_none() {
                    let known: Vec<&str> = rulebook
                        .teams()
                        .all()
                        .iter()
                        .map(|t| t.id.as_str())
                        .collect();
                    return Err(anyhow!(
                        "unknown team `{team}`; the rulebook has {}",
                        known.join(", ")
                    ));
                }
            }
            if role == Role::Agent && teams.is_empty() {
                return Err(anyhow!("an agent needs at least one `--team`"));
            }
            let password = read_password()?;
            UserChange::Put(User {
                name: name.unwrap_or_else(|| login.clone()),
                login,
                role,
                teams,
                password_hash: hash_password(&password)?,
                created_at: now,
            })
        }
        UserCommand::Token { login } => {
            let new = new_api_token();
            let digest = token_digest(&new);
            token = Some(new);
            UserChange::AddToken { login, digest }
        }
        UserCommand::List => UserChange::List,
        UserCommand::Revoke { login } => UserChange::Revoke { login },
        UserCommand::Remove { login } => UserChange::Remove { login },
    };
    let config = store_args.resolve()?;
    let outcome = match store::open(&config.options) {
        Ok(store) => change.apply(&*store, &actor, now)?,
        Err(StoreError::Locked { .. }) => through_service(store_args, &args.service, &change)?,
        Err(e) => return Err(e.into()),
    };
    for line in outcome.lines {
        println!("{line}");
    }
    if let Some(token) = token {
        println!("{token}");
        eprintln!("this token is shown only once; store it safely");
    }
    Ok(ExitCode::SUCCESS)
}

/// The change made by the `webcare run` that holds the store, through its admin API.
fn through_service(
    store_args: &StoreArgs,
    service: &AdminArgs,
    change: &UserChange,
) -> anyhow::Result<UserOutcome> {
    let admin = Admin::connect(store_args, service).context(
        "the store is in use by `webcare run`, which manages users instead when asked with its admin token",
    )?;
    eprintln!(
        "the store is in use by `webcare run`; asking it at {}",
        admin.url()
    );
    let answer = admin.call(
        true,
        admin_api::USERS,
        Some(serde_json::to_value(change).context("the user change")?),
    )?;
    if answer.status.is_success()
        && let Ok(outcome) = serde_json::from_value::<UserOutcome>(answer.body.clone())
    {
        return Ok(outcome);
    }
    Err(anyhow!(
        "{}",
        answer.body["error"]
            .as_str()
            .unwrap_or("the service refused the change")
    ))
}

/// One line from stdin; with a terminal, a prompt on stderr and echo off while typing.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("password: ");
        let _ = std::io::stderr().flush();
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read.context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(anyhow!("the password is empty (give it on stdin)"));
    }
    // Before anything is hashed or sent: a weak password is refused with what to do.
    webcare_inbox::auth::check_password(&password)?;
    Ok(password)
}
