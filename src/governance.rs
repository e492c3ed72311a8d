//! Safe rule changes in the running service: hot reload of the rulebook and the crisis switch.
//!
//! A new rulebook is read, compiled (every file:line:column error collected) and its own golden
//! cases are run **before** it replaces the running one; only a rulebook that passes all three
//! is swapped in, atomically (see [`Runtime::activate`]): messages being decided finish
//! on the version they started with, the next one uses the new version. A rejected rulebook
//! leaves the old one running, and both outcomes land in the log and the audit log.
//!
//! Reloads come from a watcher that polls the rules directory (file sizes and modification
//! times, once a second; no platform file-notification API, so it behaves the same on every
//! file system, including network mounts), from `POST /api/v1/rulebook/reload`, and from
//! `webcare reload`. One reload runs at a time.
//!
//! The admin API is off unless a token is configured (`WEBCARE_ADMIN_TOKEN` or
//! `WEBCARE_ADMIN_TOKEN_FILE`): changing the rules or the crisis switch is a lead's action and
//! must be authorised and audited. The same crisis switch is in the inbox for leads (see
//! `crate::inbox`): there the inbox's own login is the authorisation, and the lead's login is
//! the actor in the audit log.
//!
//! The API's paths, requests and answers are `crate::admin_api`'s, which the commands that
//! call it (`webcare reload`, `crisis`, `report`, `user`) use too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use webcare_adapters::secret::Secret;
use webcare_engine::store::NewAudit;
use webcare_engine::{Rulebook, RulebookSource, Runtime};
use webcare_inbox::auth::LoginLimiter;

use crate::admin_api::{
    self, CrisisRequest, CrisisState, ReloadOutcome, ReportRequest, UserChange,
};

pub struct Governance {
    runtime: Arc<Runtime>,
    rules_dir: Option<PathBuf>,
    admin_token: Option<Secret>,
    /// One reload at a time: two overlapping reloads could activate in the wrong order.
    reloading: tokio::sync::Mutex<()>,
    /// One crisis switch change at a time.
    switching: tokio::sync::Mutex<()>,
    /// Wrong admin tokens per client address (see [`limit_admin_failures`]).
    failures: Arc<LoginLimiter>,
}

/// Wrong admin tokens one client address may send within [`ADMIN_FAILURE_WINDOW`] minutes
/// before it waits (429), even with the right one.
const ADMIN_FAILURES: usize = 10;
const ADMIN_FAILURE_WINDOW: i64 = 15;

impl Governance {
    pub fn new(
        runtime: Arc<Runtime>,
        rules_dir: Option<PathBuf>,
        admin_token: Option<Secret>,
    ) -> Self {
        let cluster = runtime.store().cluster();
        Governance {
            runtime,
            rules_dir,
            admin_token,
            reloading: tokio::sync::Mutex::new(()),
            switching: tokio::sync::Mutex::new(()),
            // Shared by every instance on a PostgreSQL store: guesses spread over the
            // instances behind a load balancer count together.
            failures: Arc::new(
                LoginLimiter::new(
                    ADMIN_FAILURES,
                    chrono::Duration::minutes(ADMIN_FAILURE_WINDOW),
                )
                .shared_by(cluster),
            ),
        }
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    pub fn rules_dir(&self) -> Option<&Path> {
        self.rules_dir.as_deref()
    }

    /// Reads, checks, tests and (when all pass) activates the rulebook in the rules directory.
    pub async fn reload(&self, actor: &str) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock().await;
        let running = self.runtime.rulebook().version.clone();
        let Some(dir) = self.rules_dir.clone() else {
            return ReloadOutcome::Rejected {
                running,
                errors: vec![
                    "the service runs the embedded rulebook; start it with `--rules DIR` to reload rules"
                        .to_owned(),
                ],
            };
        };
        let candidate = tokio::task::spawn_blocking(move || candidate(&dir)).await;
        let outcome = match candidate {
            Err(panic) => ReloadOutcome::Rejected {
                running,
                errors: vec![format!("checking the rulebook failed: {panic}")],
            },
            Ok(Err(errors)) => ReloadOutcome::Rejected { running, errors },
            Ok(Ok(rulebook)) if rulebook.version == running => {
                ReloadOutcome::Unchanged { version: running }
            }
            Ok(Ok(rulebook)) => {
                // `activate` keeps the version's files in the store before swapping it in, so
                // every decision it makes can be explained later with its exact rules.
                let version = rulebook.version.clone();
                let runtime = Arc::clone(&self.runtime);
                let by = actor.to_owned();
                let activated = tokio::task::spawn_blocking(move || {
                    runtime.activate(rulebook, &by, chrono::Utc::now())
                })
                .await;
                match activated {
                    Ok(Ok(_)) => ReloadOutcome::Activated {
                        version,
                        previous: running,
                    },
                    Ok(Err(e)) => ReloadOutcome::Rejected {
                        running,
                        errors: vec![format!(
                            "the rulebook could not be kept in the store, so it was not activated: {e}"
                        )],
                    },
                    Err(panic) => ReloadOutcome::Rejected {
                        running,
                        errors: vec![format!("activating the rulebook failed: {panic}")],
                    },
                }
            }
        };
        self.record(actor, &outcome).await;
        outcome
    }

    /// Logs and audits a reload. The audit details hold rulebook positions, never customer text.
    async fn record(&self, actor: &str, outcome: &ReloadOutcome) {
        let (action, subject, details) = match outcome {
            ReloadOutcome::Activated { version, previous } => {
                tracing::info!(%version, %previous, %actor, "rulebook activated");
                (
                    "rulebook.activate",
                    version.clone(),
                    format!("previous {previous}"),
                )
            }
            ReloadOutcome::Unchanged { .. } => return,
            ReloadOutcome::Rejected { running, errors } => {
                tracing::warn!(%running, %actor, errors = %errors.join("\n"), "rulebook rejected; the running version stays");
                let mut details: String = errors
                    .iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n");
                if errors.len() > 20 {
                    details.push_str(&format!("\n… and {} more", errors.len() - 20));
                }
                ("rulebook.reject", running.clone(), details)
            }
        };
        let entry = NewAudit {
            at: chrono::Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject,
            details,
        };
        let store = Arc::clone(self.runtime.store());
        let written = tokio::task::spawn_blocking(move || store.append_audit(entry)).await;
        if !matches!(written, Ok(Ok(_))) {
            tracing::error!("could not write the audit entry for a rulebook reload");
        }
    }

    /// Sets the crisis switch (`None`: follow the rulebook): stores it durably with its audit
    /// entry first, so it survives a restart, then puts it in force. Should the store fail, the
    /// switch is still put in force (in a crisis that matters more) and the failure is logged:
    /// it then lasts until the service stops.
    pub async fn set_crisis(&self, on: Option<bool>, actor: &str) -> bool {
        // One change at a time, so the stored switch and the one in force are the same one.
        let _one = self.switching.lock().await;
        let store = Arc::clone(self.runtime.store());
        let by = actor.to_owned();
        let stored = tokio::task::spawn_blocking(move || {
            store.set_crisis_switch(on, &by, chrono::Utc::now())
        })
        .await;
        self.runtime.set_crisis_override(on);
        let now_on = self.runtime.crisis_mode();
        tracing::warn!(crisis_mode = now_on, %actor, "crisis switch changed");
        let stored = match stored {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            tracing::error!(
                "could not store the crisis switch, it will not survive a restart: {e}"
            );
        }
        now_on
    }

    /// Polls the rules directory and reloads when a file changed, until `stop` completes.
    pub async fn watch(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let Some(dir) = self.rules_dir.clone() else {
            return;
        };
        tokio::pin!(stop);
        let mut seen = fingerprint(&dir).await;
        // A change made between loading the rulebook and this first look is already in `seen`:
        // compare what is on disk with what runs, once, so it is not missed.
        let running = self.runtime.rulebook().version.clone();
        let on_disk = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || RulebookSource::from_dir(&dir).map(|s| s.version()))
                .await
        };
        if matches!(on_disk, Ok(Ok(version)) if version != running) {
            self.reload_changed(&dir).await;
        }
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let now = fingerprint(&dir).await;
            if now == seen {
                continue;
            }
            // Editors write a file in several steps; let them finish.
            tokio::time::sleep(Duration::from_millis(300)).await;
            seen = fingerprint(&dir).await;
            self.reload_changed(&dir).await;
        }
    }

    /// The watcher's reload; a rejected rulebook is logged, the running one stays.
    async fn reload_changed(&self, dir: &Path) {
        if let ReloadOutcome::Rejected { errors, .. } = self.reload("watcher").await {
            tracing::warn!(
                "the changed rulebook in `{}` was rejected:\n{}",
                dir.display(),
                errors.join("\n")
            );
        }
    }

    /// The admin API: reload, rulebook status, crisis switch, and the reports and user changes
    /// that `webcare report` and `webcare user` ask for while this service holds the store.
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route(admin_api::RULEBOOK, get(rulebook_status))
            .route(admin_api::RELOAD, post(reload_handler))
            .route(admin_api::CRISIS, get(crisis_status).post(crisis_handler))
            .route(admin_api::REPORT, post(report_handler))
            .route(admin_api::USERS, post(users_handler))
            .route(admin_api::BACKUP, post(backup_handler))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self.failures),
                limit_admin_failures,
            ))
            .with_state(self)
    }

    /// The actor of an authorised admin request, or why it is refused. The token authorises;
    /// `X-Webcare-Actor` (which `webcare reload` and `webcare crisis` fill with the user at
    /// the terminal) only names who used it, as `admin (anna)` in the audit log.
    fn authorise(&self, headers: &HeaderMap) -> Result<String, Refusal> {
        let Some(token) = &self.admin_token else {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "the admin API is off; set WEBCARE_ADMIN_TOKEN (or WEBCARE_ADMIN_TOKEN_FILE) to enable it",
            ));
        };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            None => Err(Refusal(
                StatusCode::UNAUTHORIZED,
                "send `Authorization: Bearer <admin token>`",
            )),
            Some(given) if token.matches(given.as_bytes()) => Ok(actor_of(headers)),
            Some(_) => Err(Refusal(StatusCode::UNAUTHORIZED, "wrong admin token")),
        }
    }
}

/// Counts every admin request against its client address before the token is checked, and
/// gives the attempt back unless the answer was 401: guessing the token is limited to
/// [`ADMIN_FAILURES`] tries per address and window, while a correct client never waits.
async fn limit_admin_failures(
    State(failures): State<Arc<LoginLimiter>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let addr = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let key = format!("admin:{addr}");
    if let Err(wait) = failures.attempt(&[&key], chrono::Utc::now()) {
        let seconds = wait.num_seconds().max(1);
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(serde_json::json!({
                "error": format!("too many wrong admin tokens from this address; try again in {seconds} s")
            })),
        )
            .into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::UNAUTHORIZED {
        failures.give_back(&key);
    }
    response
}

/// The inbox's crisis switch for leads is this one: same override, same audit entry (with the
/// lead's login as the actor), same log line.
impl webcare_inbox::CrisisSwitch for Governance {
    fn set<'a>(
        &'a self,
        on: Option<bool>,
        actor: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(self.set_crisis(on, actor))
    }
}

/// `admin`, or `admin (NAME)` with the `X-Webcare-Actor` header: printable, at most 64
/// characters, so the audit log cannot be stuffed or garbled through it.
fn actor_of(headers: &HeaderMap) -> String {
    let name: String = headers
        .get("x-webcare-actor")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "admin".to_owned()
    } else {
        format!("admin ({name})")
    }
}

/// Reads and checks the rulebook in `dir`: compiled whole, every golden case passing.
fn candidate(dir: &Path) -> Result<Rulebook, Vec<String>> {
    let to_strings = |errors: webcare_engine::RulebookErrors| -> Vec<String> {
        errors.0.iter().map(ToString::to_string).collect()
    };
    let source = RulebookSource::from_dir(dir).map_err(to_strings)?;
    let rulebook = Rulebook::compile(source).map_err(to_strings)?;
    let failures: Vec<String> = rulebook
        .run_golden()
        .iter()
        .filter(|o| !o.passed())
        .map(|o| {
            format!(
                "{}: golden case `{}` fails: {}",
                o.case.location,
                o.case.name,
                o.failures.join("; ")
            )
        })
        .collect();
    if failures.is_empty() {
        Ok(rulebook)
    } else {
        Err(failures)
    }
}

/// Size and modification time of every file in the rules directory and the directories its
/// scripts live in (`../scripts` by default), so a change to either is seen.
async fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut dirs = vec![dir.clone()];
        if let Ok(source) = RulebookSource::from_dir(&dir) {
            for script in [&source.escalation.path, &source.governance.path] {
                if let Some(parent) = script.parent()
                    && !dirs.contains(&parent.to_path_buf())
                {
                    dirs.push(parent.to_path_buf());
                }
            }
        }
        let mut files = Vec::new();
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                {
                    files.push((entry.path(), meta.len(), meta.modified().ok()));
                }
            }
        }
        files.sort();
        files
    })
    .await
    .unwrap_or_default()
}

/// Why an admin request is refused; small, so the happy path carries no big error value.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn rulebook_status(State(g): State<Arc<Governance>>, headers: HeaderMap) -> Response {
    if let Err(refused) = g.authorise(&headers) {
        return refused.into_response();
    }
    let rulebook = g.runtime.rulebook();
    Json(serde_json::json!({
        "name": rulebook.name,
        "version": rulebook.version,
        "rules_dir": g.rules_dir.as_ref().map(|d| d.display().to_string()),
        "crisis_mode": g.runtime.crisis_mode(),
    }))
    .into_response()
}

async fn reload_handler(State(g): State<Arc<Governance>>, headers: HeaderMap) -> Response {
    let actor = match g.authorise(&headers) {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    let outcome = g.reload(&actor).await;
    let status = match outcome {
        ReloadOutcome::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (status, Json(outcome)).into_response()
}

async fn crisis_status(State(g): State<Arc<Governance>>, headers: HeaderMap) -> Response {
    if let Err(refused) = g.authorise(&headers) {
        return refused.into_response();
    }
    Json(CrisisState {
        crisis_mode: g.runtime.crisis_mode(),
        switch: g.runtime.crisis_override(),
    })
    .into_response()
}

async fn crisis_handler(
    State(g): State<Arc<Governance>>,
    headers: HeaderMap,
    body: Result<Json<CrisisRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let actor = match g.authorise(&headers) {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"on\": true|false|null}}: {rejection}"),
            );
        }
    };
    let on = g.set_crisis(request.on, &actor).await;
    Json(CrisisState {
        crisis_mode: on,
        switch: request.on,
    })
    .into_response()
}

/// A report of the running service's store, with the running rulebook's teams; the period
/// comes resolved from `webcare report`.
async fn report_handler(
    State(g): State<Arc<Governance>>,
    headers: HeaderMap,
    body: Result<Json<ReportRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(refused) = g.authorise(&headers) {
        return refused.into_response();
    }
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("a report request: {rejection}"),
            );
        }
    };
    let store = Arc::clone(g.runtime.store());
    let rulebook = g.runtime.rulebook();
    let made = tokio::task::spawn_blocking(move || request.make(&*store, &rulebook)).await;
    match made {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A `webcare user` change (add, token, revoke, remove, list) made while this service holds
/// the store; the audit log names who typed it, as `admin (anna)`.
async fn users_handler(
    State(g): State<Arc<Governance>>,
    headers: HeaderMap,
    body: Result<Json<UserChange>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let actor = match g.authorise(&headers) {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    let Json(change) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("a user change: {rejection}"),
            );
        }
    };
    let store = Arc::clone(g.runtime.store());
    let made =
        tokio::task::spawn_blocking(move || change.apply(&*store, &actor, chrono::Utc::now()))
            .await;
    match made {
        Ok(Ok(outcome)) => Json(outcome).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `POST /api/v1/backup {"target"}`: a consistent copy of the store into the new file (or
/// directory, for sled) `target`, an absolute path on this machine, made while the service
/// keeps taking messages in.
async fn backup_handler(
    State(g): State<Arc<Governance>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let actor = match g.authorise(&headers) {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    let Some(target) = body["target"].as_str().map(PathBuf::from) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "`target` is missing");
    };
    if !target.is_absolute() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`target` must be an absolute path",
        );
    }
    let store = Arc::clone(g.runtime.store());
    let written = target.clone();
    let made = tokio::task::spawn_blocking(move || store.backup(&written)).await;
    match made {
        Ok(Ok(())) => {
            tracing::info!(%actor, target = %target.display(), "store backed up");
            Json(serde_json::json!({ "backup": target })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the backup stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_header_names_who_used_the_token_and_nothing_more() {
        let mut headers = HeaderMap::new();
        assert_eq!(actor_of(&headers), "admin");
        headers.insert(
            "x-webcare-actor",
            axum::http::HeaderValue::from_static("anna"),
        );
        assert_eq!(actor_of(&headers), "admin (anna)");
        let long = "x".repeat(200);
        headers.insert(
            "x-webcare-actor",
            axum::http::HeaderValue::from_str(&format!("{long}\tz"))
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("?")),
        );
        assert_eq!(actor_of(&headers), format!("admin ({})", "x".repeat(64)));
    }
}
