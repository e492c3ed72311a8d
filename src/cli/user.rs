//! `webcare user`: the people who log in to the inbox. Passwords are read from stdin (one line;
//! with a terminal, a prompt with echo off) and stored only as an argon2id hash; an API token is
//! printed once and stored only as its SHA-256, so a lost token is replaced, never recovered.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use chrono::Utc;
use webcare_engine::store::{Role, StoreError, User};
use webcare_inbox::auth::{hash_password, new_api_token, token_digest};

use crate::config::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
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
    let (store, _) = super::open_store(store_args)?;
    let now = Utc::now();
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    match args.command {
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
            let user = User {
                name: name.unwrap_or_else(|| login.clone()),
                login: login.clone(),
                role,
                teams,
                password_hash: hash_password(&password)?,
                created_at: now,
            };
            store.put_user(user, &actor, now)?;
            println!("user {login} saved ({})", role.as_str());
        }
        UserCommand::Token { login } => {
            if store.user(&login)?.is_none() {
                return Err(anyhow!(
                    "user `{login}` does not exist; add it with `webcare user add`"
                ));
            }
            let token = new_api_token();
            store.add_api_token(&login, token_digest(&token), now)?;
            println!("{token}");
            eprintln!("this token is shown only once; store it safely");
        }
        UserCommand::Revoke { login } => match store.revoke_api_tokens(&login, &actor, now) {
            Ok(n) => println!("revoked {n} API tokens of {login}"),
            Err(StoreError::NoSuchUser(_)) => {
                return Err(anyhow!(
                    "user `{login}` does not exist (`webcare user list`)"
                ));
            }
            Err(e) => return Err(e.into()),
        },
        UserCommand::Remove { login } => {
            if !store.remove_user(&login, &actor, now)? {
                return Err(anyhow!(
                    "user `{login}` does not exist (`webcare user list`)"
                ));
            }
            println!("user {login} removed; their sessions and API tokens no longer work");
        }
        UserCommand::List => {
            for user in store.users()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    user.login,
                    user.role.as_str(),
                    user.teams.join(","),
                    user.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
