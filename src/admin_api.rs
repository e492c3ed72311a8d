//! The admin API's wire: its paths, every request and answer, and what the requests that touch
//! the store do. Both ends use this module: the running service serves the API
//! (`crate::governance`), and the commands that talk to it (`webcare reload`, `crisis`,
//! `report`, `user`, in `crate::cli`) send the same types. A report or a user change is made
//! here whether the command opens the store itself or the service that holds it does, so the
//! two ways cannot drift apart; and neither end has to import the other.

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webcare_engine::report::{self, ReportOptions, html::Preset};
use webcare_engine::store::{CaseError, Store, User};
use webcare_engine::{ChannelKind, Rulebook};

/// `GET`: the rulebook in force.
pub const RULEBOOK: &str = "/api/v1/rulebook";
/// `POST`: reload the rules directory; answers a [`ReloadOutcome`].
pub const RELOAD: &str = "/api/v1/rulebook/reload";
/// `GET` the crisis switch, `POST` a [`CrisisRequest`]; both answer a [`CrisisState`].
pub const CRISIS: &str = "/api/v1/crisis";
/// `POST` a [`ReportRequest`]; answers a [`ReportAnswer`].
pub const REPORT: &str = "/api/v1/report";
/// `POST` a [`UserChange`]; answers a [`UserOutcome`].
pub const USERS: &str = "/api/v1/users";
/// `POST {"dir": "/abs/path"}`: the running service writes a consistent copy of its store
/// into that directory on its own disk (`webcare backup`).
pub const BACKUP: &str = "/api/v1/backup";

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ReloadOutcome {
    /// The new version is in force.
    Activated { version: String, previous: String },
    /// The files hold the version already running.
    Unchanged { version: String },
    /// Refused; the old version keeps running. `errors` are `file:line:column: message`.
    Rejected {
        running: String,
        errors: Vec<String>,
    },
}

/// A change of the crisis switch.
#[derive(Debug, Serialize, Deserialize)]
pub struct CrisisRequest {
    /// `true` on, `false` off, `null` back to the rulebook's setting.
    pub on: Option<bool>,
}

/// The crisis switch as it stands.
#[derive(Debug, Serialize, Deserialize)]
pub struct CrisisState {
    /// Whether crisis mode is in force now.
    pub crisis_mode: bool,
    /// The switch a lead set; `None` follows the rulebook.
    pub switch: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresetArg {
    Weekly,
    Quarterly,
}

/// A report to make, with its period resolved: what `webcare report` sends to a running
/// service.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReportRequest {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub channel: Option<ChannelKind>,
    pub team: Option<String>,
    pub ftr_days: i64,
    pub min_messages: u64,
    pub format: Format,
    pub preset: Option<PresetArg>,
}

/// A report, rendered, and the number of messages it is based on.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReportAnswer {
    pub text: String,
    pub messages: u64,
}

impl ReportRequest {
    /// The report this asks for, from `store`, with `rulebook`'s teams.
    pub fn make(&self, store: &dyn Store, rulebook: &Rulebook) -> anyhow::Result<ReportAnswer> {
        let mut options = ReportOptions::new(self.since, self.until, self.now);
        options.channel = self.channel;
        options.team = self.team.clone();
        options.ftr_days = self.ftr_days;
        options.min_messages = self.min_messages;
        if let Some(team) = &options.team
            && rulebook.teams().get(team).is_none()
        {
            bail!("the rulebook has no team `{team}`");
        }
        let report =
            report::gather::report(store, &options, rulebook.teams(), &rulebook.default_team)
                .context("reading the store")?;
        let text = match self.format {
            Format::Table => report::render::table(&report),
            Format::Csv => report::render::csv(&report),
            Format::Json => {
                let mut json = serde_json::to_string_pretty(&report).context("report as JSON")?;
                json.push('\n');
                json
            }
            Format::Html => report::html::page(
                &report,
                match self.preset {
                    Some(PresetArg::Weekly) => Preset::Weekly,
                    Some(PresetArg::Quarterly) => Preset::Quarterly,
                    None => Preset::Full,
                },
            ),
        };
        Ok(ReportAnswer {
            text,
            messages: report.messages,
        })
    }
}

/// What a `webcare user` command changes or reads, decided before the store is touched: the
/// password is already hashed and a new token is only its digest, so what is applied (by the
/// command, or by the running service that holds the store) carries no secret.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserChange {
    Put(User),
    AddToken { login: String, digest: [u8; 32] },
    Revoke { login: String },
    Remove { login: String },
    List,
}

/// What came of a [`UserChange`], as it is printed.
#[derive(Serialize, Deserialize)]
pub struct UserOutcome {
    pub lines: Vec<String>,
}

impl UserChange {
    /// Applies the change to `store` in `actor`'s name.
    pub fn apply(
        self,
        store: &dyn Store,
        actor: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<UserOutcome> {
        let missing = |login: &str| anyhow!("user `{login}` does not exist (`webcare user list`)");
        let line = match self {
            UserChange::Put(user) => {
                let (login, role) = (user.login.clone(), user.role);
                store.put_user(user, actor, now)?;
                format!("user {login} saved ({})", role.as_str())
            }
            UserChange::AddToken { login, digest } => {
                if store.user(&login)?.is_none() {
                    return Err(missing(&login));
                }
                store.add_api_token(&login, digest, now)?;
                return Ok(UserOutcome { lines: Vec::new() });
            }
            UserChange::Revoke { login } => match store.revoke_api_tokens(&login, actor, now) {
                Ok(n) => format!("revoked {n} API tokens of {login}"),
                Err(CaseError::NoSuchUser(_)) => return Err(missing(&login)),
                Err(e) => return Err(e.into()),
            },
            UserChange::Remove { login } => {
                if !store.remove_user(&login, actor, now)? {
                    return Err(missing(&login));
                }
                format!("user {login} removed; their sessions and API tokens no longer work")
            }
            UserChange::List => {
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
                return Ok(UserOutcome { lines });
            }
        };
        Ok(UserOutcome { lines: vec![line] })
    }
}
