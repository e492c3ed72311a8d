//! `webcare user`: the people who log in to the inbox. Passwords are read from stdin (one line;
//! with a terminal, a prompt with echo off) and stored only as an argon2id hash; an API token is
//! printed once and stored only as its SHA-256, so a lost token is replaced, never recovered.
//!
//! While `webcare run` holds the store, the change goes to the running service instead (admin
//! API `POST /api/v1/users`, see `governance.rs`): the password is hashed and the token made
//! here, so neither travels.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webcare_engine::Store;
use webcare_engine::store::{self, Role, StoreError, User};
use webcare_inbox::auth::{hash_password, new_api_token, token_digest};

use super::admin::{Admin, AdminArgs};
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

/// What a `webcare user` command changes or reads, decided before the store is touched: the
/// password is already hashed and a new token is only its digest, so what is applied (here,
/// or by the running service that holds the store) carries no secret.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Put(User),
    AddToken { login: String, digest: [u8; 32] },
    Revoke { login: String },
    Remove { login: String },
    List,
}

/// What came of a [`Change`], as it is printed.
#[derive(Serialize, Deserialize)]
pub struct Outcome {
    lines: Vec<String>,
}

/// Applies `change` to `store` in `actor`'s name.
pub fn apply(
    store: &dyn Store,
    change: Change,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let missing = |login: &str| anyhow!("user `{login}` does not exist (`webcare user list`)");
    let line = match change {
        Change::Put(user) => {
            let (login, role) = (user.login.clone(), user.role);
            store.put_user(user, actor, now)?;
            format!("user {login} saved ({})", role.as_str())
        }
        Change::AddToken { login, digest } => {
            if store.user(&login)?.is_none() {
                return Err(missing(&login));
            }
            store.add_api_token(&login, digest, now)?;
            return Ok(Outcome { lines: Vec::new() });
        }
        Change::Revoke { login } => match store.revoke_api_tokens(&login, actor, now) {
            Ok(n) => format!("revoked {n} API tokens of {login}"),
            Err(store::CaseError::NoSuchUser(_)) => return Err(missing(&login)),
            Err(e) => return Err(e.into()),
        },
        Change::Remove { login } => {
            if !store.remove_user(&login, actor, now)? {
                return Err(missing(&login));
            }
            format!("user {login} removed; their sessions and API tokens no longer work")
        }
        Change::List => {
            let lines = store
                .users()?
                .into_iter()
                .map(|u| {
                    format!(
                        "{}\t{}\t{}\t{}",
                        u.login,
                        u.role.as_str(),
                        u.teams.join(","),
                        u.name
                    )
                })
                .collect();
            return Ok(Outcome { lines });
        }
    };
    Ok(Outcome { lines: vec![line] })
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
            Change::Put(User {
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
            Change::AddToken { login, digest }
        }
        UserCommand::List => Change::List,
        UserCommand::Revoke { login } => Change::Revoke { login },
        UserCommand::Remove { login } => Change::Remove { login },
    };
    let config = store_args.resolve()?;
    let outcome = match store::open(&config.options) {
        Ok(store) => apply(&*store, change, &actor, now)?,
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
    change: &Change,
) -> anyhow::Result<Outcome> {
    let admin = Admin::connect(store_args, service).context(
        "the store is in use by `webcare run`, which manages users instead when asked with its admin token",
    )?;
    eprintln!(
        "the store is in use by `webcare run`; asking it at {}",
        admin.url()
    );
    let answer = admin.call(
        true,
        "/api/v1/users",
        Some(serde_json::to_value(change).context("the user change")?),
    )?;
    if answer.status.is_success()
        && let Ok(outcome) = serde_json::from_value::<Outcome>(answer.body.clone())
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
    Ok(password)
}
