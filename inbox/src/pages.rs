//! The inbox's HTML: server-rendered pages that work without JavaScript (every action is a
//! plain form post), with one small script that refreshes the live parts of a page when the
//! server says something changed (SSE) and fills the reply box from a canned reply.
//!
//! Pages: the queues (`/inbox`), one escalation with its explain panel
//! (`/inbox/escalations/{id}`), the crisis switch for leads (`/inbox/crisis`), the login.
//!
//! Everything that came from outside (customer text, names, reasons, template texts) goes
//! through [`escape`]; the Content-Security-Policy allows scripts from this origin only, so
//! even a mistake there could not run a customer's `<script>`. Each form carries the session's
//! CSRF token; the login form carries a token of its own (double-submit cookie).

use std::convert::Infallible;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use webcare_engine::Rulebook;
use webcare_engine::html::{escape, escape_into};
use webcare_engine::store::{Escalation, EscalationStatus, OutboxStatus, Role, User};
use webcare_engine::teams::describe_duration;

use crate::Inbox;
use crate::actions::{self, ActionError, CrisisState, EscalationView};
use webcare_adapters::secret::same_secret;

use crate::auth::{self, Actor, cookie, verify_password};
use crate::explain::Explained;

const SESSION_COOKIE: &str = "webcare_session";
const LOGIN_COOKIE: &str = "webcare_login";
const CSS: &str = include_str!("../assets/inbox.css");
const JS: &str = include_str!("../assets/inbox.js");

pub fn routes(inbox: Inbox) -> Router {
    Router::new()
        .route("/inbox", get(queue))
        .route("/inbox/login", get(login_form).post(login))
        .route("/inbox/logout", post(logout))
        .route("/inbox/events", get(events))
        .route("/inbox/crisis", get(crisis_page).post(crisis_switch))
        .route("/inbox/escalations/{id}", get(escalation))
        .route("/inbox/escalations/{id}/{action}", post(act))
        .route(
            "/inbox/assets/inbox.css",
            get(|| async { asset(CSS, "text/css") }),
        )
        .route(
            "/inbox/assets/inbox.js",
            get(|| async { asset(JS, "text/javascript") }),
        )
        .with_state(inbox)
}

fn asset(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, format!("{mime}; charset=utf-8")),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// An HTML response with the inbox's safety headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The page around `body`.
fn layout(title: &str, actor: Option<&Actor>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    escape_into(title, &mut out);
    out.push_str(" · webcare inbox</title><link rel=\"stylesheet\" href=\"/inbox/assets/inbox.css\"><script src=\"/inbox/assets/inbox.js\" defer></script></head><body><header><a href=\"/inbox\" class=\"brand\">webcare inbox</a>");
    if let Some(actor) = actor {
        if actor.user.role == Role::Lead {
            out.push_str("<a href=\"/inbox/crisis\" id=\"crisis-link\">Crisis switch</a>");
        }
        let _ = write!(
            out,
            "<span class=\"who\">{} ({})</span><form method=\"post\" action=\"/inbox/logout\" class=\"inline\">{}<button>Log out</button></form>",
            escape(&actor.user.name),
            actor.user.role.as_str(),
            csrf_field(actor)
        );
    }
    out.push_str("</header><main>");
    out.push_str(body);
    out.push_str("</main></body></html>");
    out
}

fn csrf_field(actor: &Actor) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(actor.csrf.as_deref().unwrap_or(""))
    )
}

fn error_page(actor: Option<&Actor>, status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/inbox\">Back to the queues</a></p>",
        status.as_u16(),
        escape(message)
    );
    html(status, layout("Error", actor, &body))
}

/// The session's user, if the request has a live session.
pub(crate) async fn session_of(inbox: &Inbox, headers: &HeaderMap) -> Option<Actor> {
    session(inbox, headers).await.ok()
}

/// The session's user, or `Err` with the redirect to the login page.
async fn session(inbox: &Inbox, headers: &HeaderMap) -> Result<Actor, Response> {
    let to_login = || Redirect::to("/inbox/login").into_response();
    let value = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie(c, SESSION_COOKIE))
        .ok_or_else(to_login)?;
    let now = inbox.gateway().now();
    let (login, csrf) = inbox.inner.sessions.get(value, now).ok_or_else(to_login)?;
    let user = inbox
        .gateway()
        .store(move |s| s.user(&login))
        .await
        .map_err(|e| error_page(None, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))?
        .ok_or_else(to_login)?;
    // A new password, role or teams, or a removal and re-add, ends the session.
    if !inbox.inner.sessions.still_valid(value, &user) {
        return Err(to_login());
    }
    Ok(Actor {
        user,
        csrf: Some(csrf),
    })
}

/// The session's user for a form post, if the form carries the session's CSRF token; else the
/// login redirect or a 403 page.
async fn form_session(inbox: &Inbox, headers: &HeaderMap, csrf: &str) -> Result<Actor, Response> {
    let actor = session(inbox, headers).await?;
    if !same_secret(
        actor.csrf.as_deref().unwrap_or("").as_bytes(),
        csrf.as_bytes(),
    ) {
        return Err(error_page(
            Some(&actor),
            StatusCode::FORBIDDEN,
            "the form expired; reload the page and try again",
        ));
    }
    Ok(actor)
}

fn set_cookie(inbox: &Inbox, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if inbox.config().secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's address, when the server was started with connection info.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

// --- login --------------------------------------------------------------------------------

fn login_page(inbox: &Inbox, status: StatusCode, token: &str, message: Option<&str>) -> Response {
    let mut body = String::from("<h1>Log in</h1>");
    if let Some(message) = message {
        let _ = write!(
            body,
            "<p class=\"error\" id=\"login-error\">{}</p>",
            escape(message)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/inbox/login\" class=\"login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>Login <input name=\"login\" id=\"login\" autocomplete=\"username\" required autofocus></label><label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label><button id=\"login-submit\">Log in</button></form>",
        escape(token)
    );
    let mut response = html(status, layout("Log in", None, &body));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(inbox, LOGIN_COOKIE, token, 3600),
    );
    response
}

async fn login_form(State(inbox): State<Inbox>, headers: HeaderMap) -> Response {
    if session(&inbox, &headers).await.is_ok() {
        return Redirect::to("/inbox").into_response();
    }
    login_page(&inbox, StatusCode::OK, &auth::random_hex(16), None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    csrf: String,
    login: String,
    password: String,
}

async fn login(
    State(inbox): State<Inbox>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie(c, LOGIN_COOKIE))
        .unwrap_or("");
    if expected.is_empty() || !same_secret(expected.as_bytes(), form.csrf.as_bytes()) {
        return login_page(
            &inbox,
            StatusCode::FORBIDDEN,
            &auth::random_hex(16),
            Some("The form expired; please log in again."),
        );
    }
    let now = inbox.gateway().now();
    let addr = addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    // Per login at this address (see `crate::auth`): nobody elsewhere can lock Anna out.
    let login_key = format!("login:{}@{addr}", shorten(&form.login));
    let addr_key = format!("ip:{addr}");
    let keys = [login_key.as_str(), addr_key.as_str()];
    // Counted before the password is checked, so parallel guesses cannot pass together.
    if let Err(wait) = inbox.inner.limiter.attempt(&keys, now) {
        let seconds = wait.num_seconds().max(1);
        let mut response = login_page(
            &inbox,
            StatusCode::TOO_MANY_REQUESTS,
            &auth::random_hex(16),
            Some(&format!(
                "Too many wrong passwords. Try again in {}.",
                describe_duration(
                    u32::try_from((seconds + 59) / 60).unwrap_or(u32::MAX),
                    webcare_engine::decision::Language::En
                )
            )),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let login = form.login.clone();
    let user = inbox.gateway().store(move |s| s.user(&login)).await;
    let user = match user {
        Ok(user) => user,
        Err(e) => return error_page(None, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let password = form.password;
    // Verify against a dummy hash for unknown logins too, so timing does not tell which
    // logins exist.
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        // Whatever was typed as a login goes into the audit log shortened: a megabyte "login"
        // must not grow the store.
        let typed = shorten(&form.login);
        actions::audit(
            &inbox,
            &typed,
            "inbox.login_failed",
            format!("user {typed}"),
        )
        .await;
        return login_page(
            &inbox,
            StatusCode::UNAUTHORIZED,
            &auth::random_hex(16),
            Some("Wrong login or password."),
        );
    };
    inbox.inner.limiter.attempt_succeeded(&login_key, &addr_key);
    let (value, _) = inbox
        .inner
        .sessions
        .open(&user, now, inbox.config().session_ttl);
    actions::audit(
        &inbox,
        &user.login,
        "inbox.login",
        format!("user {}", user.login),
    )
    .await;
    let mut response = Redirect::to("/inbox").into_response();
    let ttl = inbox.config().session_ttl.num_seconds();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&inbox, SESSION_COOKIE, &value, ttl),
    );
    response
}

/// The longest login kept in the audit log and the rate limiter's keys.
const MAX_LOGIN_SHOWN: usize = 64;

/// `login` cut to [`MAX_LOGIN_SHOWN`] characters, marked with `…` when cut.
fn shorten(login: &str) -> String {
    match login.char_indices().nth(MAX_LOGIN_SHOWN) {
        Some((end, _)) => format!("{}…", &login[..end]),
        None => login.to_owned(),
    }
}

/// A hash of a random password, made once, for the timing of unknown logins.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(&auth::random_hex(16)).unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let actor = match form_session(&inbox, &headers, &form.csrf).await {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    if let Some(value) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie(c, SESSION_COOKIE))
    {
        inbox.inner.sessions.close(value);
    }
    actions::audit(
        &inbox,
        &actor.user.login,
        "inbox.logout",
        format!("user {}", actor.user.login),
    )
    .await;
    let mut response = Redirect::to("/inbox/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&inbox, SESSION_COOKIE, "", 0),
    );
    response
}

// --- the queues -----------------------------------------------------------------------------

/// "2 h 5 min", "45 min", "3 d 4 h".
fn span(minutes: i64) -> String {
    let m = minutes.abs();
    match m {
        0..60 => format!("{m} min"),
        60..1440 => format!("{} h {} min", m / 60, m % 60),
        _ => format!("{} d {} h", m / 1440, (m % 1440) / 60),
    }
}

#[derive(Debug, Default, Deserialize)]
struct QueueQuery {
    team: Option<String>,
}

/// Team rows and per-team tables; rendered as one string (10,000 open escalations must render
/// well within 200 ms).
pub fn render_queue(
    rulebook: &Rulebook,
    user: &User,
    escalations: &[Escalation],
    only_team: Option<&str>,
    now: DateTime<Utc>,
    rows: usize,
) -> String {
    let teams = rulebook.teams();
    let visible: Vec<&webcare_engine::teams::Team> = teams
        .all()
        .iter()
        .filter(|t| user.may_work(&t.id))
        .filter(|t| only_team.is_none_or(|only| only == t.id))
        .collect();
    let mut by_team: std::collections::HashMap<&str, Vec<&Escalation>> =
        std::collections::HashMap::new();
    for e in escalations {
        by_team.entry(e.team.as_str()).or_default().push(e);
    }
    let mut out =
        String::with_capacity(256 * escalations.len().min(rows * visible.len().max(1)) + 4096);
    out.push_str("<h1>Queues</h1><section id=\"summary\" data-live><table class=\"summary\"><thead><tr><th>Team</th><th>Open</th><th>Claimed</th><th>Overdue</th><th>Due within 1 h</th><th>Oldest</th><th>Load per member</th></tr></thead><tbody>");
    for team in &visible {
        let list = by_team
            .get(team.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let claimed = list
            .iter()
            .filter(|e| matches!(e.status, EscalationStatus::Claimed { .. }))
            .count();
        let overdue = list
            .iter()
            .filter(|e| e.sla_deadline.is_some_and(|d| d <= now))
            .count();
        let soon = list
            .iter()
            .filter(|e| {
                e.sla_deadline
                    .is_some_and(|d| d > now && (d - now).num_minutes() < 60)
            })
            .count();
        let oldest = list
            .iter()
            .map(|e| e.created_at)
            .min()
            .map_or_else(|| "–".to_owned(), |t| span((now - t).num_minutes()));
        let members = team.members.len().max(1);
        let _ = write!(
            out,
            "<tr id=\"team-{id}\"><td><a href=\"/inbox?team={id}\">{name}</a></td><td class=\"count-open\">{open}</td><td>{claimed}</td><td class=\"{oc}\">{overdue}</td><td>{soon}</td><td>{oldest}</td><td>{load:.1} ({members} members)</td></tr>",
            id = escape(&team.id),
            name = escape(&team.name_en),
            open = list.len() - claimed,
            oc = if overdue > 0 { "sla-overdue" } else { "" },
            load = list.len() as f64 / members as f64,
            members = team.members.len(),
        );
    }
    out.push_str("</tbody></table></section><section id=\"queues\" data-live>");
    for team in &visible {
        let mut list: Vec<&Escalation> = by_team.get(team.id.as_str()).cloned().unwrap_or_default();
        if list.is_empty() {
            continue;
        }
        // Most urgent first: waiting on us (a follow-up too), soonest deadline first; answered
        // ones last.
        list.sort_by_key(|e| crate::sla::queue_key(e));
        let _ = write!(
            out,
            "<h2>{} <small>{} escalations</small></h2><table class=\"queue\" data-team=\"{}\"><thead><tr><th>#</th><th>Priority</th><th>Status</th><th>Channel</th><th>Age</th><th>SLA</th><th>Reason</th></tr></thead><tbody>",
            escape(&team.name_en),
            list.len(),
            escape(&team.id)
        );
        for e in list.iter().take(rows) {
            let (sla, class) = crate::sla::cell(e, now);
            let mut status = match &e.status {
                EscalationStatus::Claimed { by } => format!("claimed by {}", escape(by)),
                other => other.name().to_owned(),
            };
            if crate::sla::follow_up(e) {
                status.push_str(" <span class=\"waiting\">waiting</span>");
            }
            let _ = write!(
                out,
                "<tr class=\"escalation\" id=\"esc-{id}\"><td><a href=\"/inbox/escalations/{id}\">#{id}</a></td><td class=\"prio-{p}\">{p}</td><td>{status}</td><td>{ch}</td><td>{age}</td><td class=\"{class}\">{sla}</td><td>",
                id = e.id,
                p = e.priority.as_str(),
                ch = e.channel.as_str(),
                age = span((now - e.created_at).num_minutes()),
            );
            escape_into(&e.reason, &mut out);
            out.push_str("</td></tr>");
        }
        if list.len() > rows {
            let _ = write!(
                out,
                "<tr><td colspan=\"7\">… and {} more (most urgent shown first)</td></tr>",
                list.len() - rows
            );
        }
        out.push_str("</tbody></table>");
    }
    if visible.is_empty() {
        out.push_str("<p>You are in no team yet; ask a lead to add you.</p>");
    }
    out.push_str("</section>");
    out
}

async fn queue(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let actor = match session(&inbox, &headers).await {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    if let Some(team) = &query.team
        && !actor.user.may_work(team)
    {
        return error_page(
            Some(&actor),
            StatusCode::FORBIDDEN,
            &format!("team `{team}` is not one of yours"),
        );
    }
    let escalations = match actions::list(&inbox, &actor).await {
        Ok(list) => list,
        Err(e) => return error_page(Some(&actor), e.status(), &e.to_string()),
    };
    let rulebook = inbox.gateway().runtime().rulebook();
    let mut body = crisis_banner(actions::crisis_state(&inbox));
    body.push_str(&render_queue(
        &rulebook,
        &actor.user,
        &escalations,
        query.team.as_deref(),
        inbox.gateway().now(),
        inbox.config().page_rows,
    ));
    html(StatusCode::OK, layout("Queues", Some(&actor), &body))
}

// --- one escalation -------------------------------------------------------------------------

/// One line of the conversation, for sorting by time.
struct Line<'a> {
    at: DateTime<Utc>,
    kind: &'static str,
    who: String,
    text: &'a str,
    note: String,
}

/// The escalation page; `explained` fills its explain panel (empty: no panel).
/// Until when a free reply may be sent, on a channel with a customer service window
/// (WhatsApp, Messenger, Instagram): after it, a reply needs an approved template (WhatsApp)
/// or the human-agent tag (Messenger, Instagram, 7 days), or it is refused with the reason.
fn reply_window(
    channel: webcare_engine::ChannelKind,
    view: &EscalationView,
    now: DateTime<Utc>,
) -> Option<String> {
    let window = channel.reply_window()?;
    let last = view.messages.iter().map(|m| m.message.received_at).max()?;
    let closes = last + window;
    Some(if now < closes {
        format!(
            "<span id=\"window\">open until {} ({} left)</span>",
            closes.format("%Y-%m-%d %H:%M UTC"),
            span((closes - now).num_minutes())
        )
    } else {
        format!(
            "<span id=\"window\" class=\"sla-overdue\">closed since {}: a reply goes out only as the approved template on WhatsApp ([meta] reply_template) or, within 7 days, tagged as a human agent's on Messenger and Instagram; otherwise it is refused with the reason</span>",
            closes.format("%Y-%m-%d %H:%M UTC")
        )
    })
}

pub fn render_escalation(
    rulebook: &Rulebook,
    actor: &Actor,
    view: &EscalationView,
    explained: &[Explained],
    now: DateTime<Utc>,
) -> String {
    let e = &view.escalation;
    let teams = rulebook.teams();
    let team_name = teams
        .get(&e.team)
        .map_or(e.team.as_str(), |t| t.name_en.as_str());
    let (sla, class) = crate::sla::cell(e, now);
    let status = match &e.status {
        EscalationStatus::Claimed { by } => format!("claimed by {}", escape(by)),
        EscalationStatus::Resolved { by } => format!("resolved by {}", escape(by)),
        EscalationStatus::Open => "open".to_owned(),
    };
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<h1>Escalation #{id} <small>{team} · <span class=\"prio-{p}\">{p}</span> · <span id=\"status\">{status}</span></small></h1>",
        id = e.id,
        team = escape(team_name),
        p = e.priority.as_str(),
    );
    out.push_str("<section id=\"facts\" data-live><dl class=\"facts\">");
    let opening = view.opening().map(|m| &m.decision);
    let mut fact = |name: &str, value: String| {
        let _ = write!(out, "<dt>{name}</dt><dd>{value}</dd>");
    };
    fact(
        "Channel",
        format!(
            "{} · conversation <code>{}</code>",
            e.channel.as_str(),
            escape(&e.conversation)
        ),
    );
    fact(
        "Created",
        format!(
            "{} ({} ago)",
            e.created_at.format("%Y-%m-%d %H:%M UTC"),
            span((now - e.created_at).num_minutes())
        ),
    );
    fact(
        "SLA",
        format!("<span class=\"{class}\" id=\"sla\">{sla}</span>"),
    );
    if let Some(since) = e.case.waiting_since {
        fact(
            "Waiting",
            format!(
                "<span class=\"waiting\" id=\"waiting\">the customer waits since {}</span>",
                since.format("%Y-%m-%d %H:%M UTC")
            ),
        );
    }
    if !view.linked.is_empty() {
        // The conversation's other cases: a message for another team went to that team's own
        // escalation.
        let links: Vec<String> = view
            .linked
            .iter()
            .map(|l| {
                format!(
                    "<a class=\"linked\" href=\"/inbox/escalations/{id}\">#{id}</a> {team} ({status})",
                    id = l.id,
                    team = escape(&l.team),
                    status = l.status.name()
                )
            })
            .collect();
        fact("Linked", links.join(", "));
    }
    if let Some(survey) = &e.case.survey {
        fact(
            "Satisfaction",
            match survey.score {
                Some(score) => format!("<span id=\"satisfaction\">{score} of 5</span>"),
                None => "<span id=\"satisfaction\">asked, no answer yet</span>".to_owned(),
            },
        );
    }
    if let Some(window) = reply_window(e.channel, view, now) {
        fact("Reply window", window);
    }
    fact("Reason", escape(&e.reason));
    if let Some(d) = opening {
        fact("Category", escape(d.diagnostics.category.as_str()));
        let topics: Vec<String> = d
            .diagnostics
            .topics
            .iter()
            .map(|t| {
                format!(
                    "{} <small>({})</small>",
                    escape(&t.topic),
                    escape(&t.matched.join(", "))
                )
            })
            .collect();
        fact(
            "Topics",
            if topics.is_empty() {
                "–".into()
            } else {
                topics.join(", ")
            },
        );
        fact(
            "Rules",
            format!(
                "<code id=\"rules\">{}</code>",
                escape(&d.diagnostics.rules.join(" · "))
            ),
        );
        fact("Why", escape(&d.diagnostics.reasons.join("; ")));
        if !d.diagnostics.script_errors.is_empty() {
            fact(
                "Script errors",
                escape(&d.diagnostics.script_errors.join("; ")),
            );
        }
        fact(
            "Rulebook",
            format!(
                "<code id=\"rulebook\">{}</code>",
                escape(&d.diagnostics.rulebook)
            ),
        );
    }
    out.push_str("</dl></section>");
    render_explained(explained, view.escalation.messages.len(), &mut out);

    // The conversation: customer messages, the bot's and the agents' replies, internal notes.
    let mut lines: Vec<Line<'_>> = Vec::new();
    for m in &view.messages {
        lines.push(Line {
            at: m.message.received_at,
            kind: "customer",
            who: m.message.author.clone(),
            text: &m.message.text,
            note: String::new(),
        });
    }
    for r in &view.replies {
        let agent = view.work.replies.iter().find(|a| a.outbox == r.id);
        let status = match r.status {
            OutboxStatus::Pending => "waiting to be sent",
            OutboxStatus::Sent { .. } => "sent",
            OutboxStatus::Dead => "could not be delivered",
        };
        lines.push(Line {
            at: r.created_at,
            kind: if agent.is_some() { "agent" } else { "bot" },
            who: agent.map_or_else(|| "bot".to_owned(), |a| a.author.clone()),
            text: &r.text,
            note: status.to_owned(),
        });
    }
    for n in &view.work.notes {
        lines.push(Line {
            at: n.at,
            kind: "note",
            who: n.author.clone(),
            text: &n.text,
            note: "internal note".to_owned(),
        });
    }
    lines.sort_by_key(|l| l.at);
    out.push_str(
        "<section id=\"conversation\" data-live><h2>Conversation</h2><ol class=\"conversation\">",
    );
    for l in &lines {
        let _ = write!(
            out,
            "<li class=\"line {kind}\"><div class=\"meta\">{who} · {at}{note}</div><div class=\"text\">",
            kind = l.kind,
            who = escape(&l.who),
            at = l.at.format("%Y-%m-%d %H:%M"),
            note = if l.note.is_empty() {
                String::new()
            } else {
                format!(" · {}", escape(&l.note))
            },
        );
        escape_into(l.text, &mut out);
        out.push_str("</div></li>");
    }
    out.push_str("</ol></section>");

    // Actions.
    let csrf = csrf_field(actor);
    let base = format!("/inbox/escalations/{}", e.id);
    let open = !matches!(e.status, EscalationStatus::Resolved { .. });
    if open {
        out.push_str("<section class=\"actions\"><h2>Work it</h2>");
        if e.status == EscalationStatus::Open {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"{base}/claim\">{csrf}<button id=\"claim\">Claim</button></form>"
            );
        }
        let language = opening.map_or(rulebook.default_language, |d| d.diagnostics.language);
        let templates = rulebook.templates();
        let mut canned: Vec<(&str, &str)> = templates
            .ids()
            .filter_map(|id| templates.text(id, language).map(|t| (id, t)))
            .filter(|(_, text)| !text.contains('{'))
            .collect();
        canned.sort();
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{base}/reply\" class=\"reply\">{csrf}<label>Canned reply <select name=\"canned\" id=\"canned\"><option value=\"\">—</option>"
        );
        for (id, text) in &canned {
            let _ = write!(
                out,
                "<option value=\"{}\" data-text=\"{}\">{}</option>",
                escape(id),
                escape(text),
                escape(id)
            );
        }
        let _ = write!(
            out,
            "</select></label><label>Reply to the customer (sent on {}) <textarea name=\"text\" id=\"reply-text\" rows=\"4\"></textarea></label><button id=\"send-reply\">Send reply</button></form>",
            e.channel.as_str()
        );
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{base}/note\" class=\"note\">{csrf}<label>Internal note (colleagues only) <textarea name=\"text\" id=\"note-text\" rows=\"2\"></textarea></label><button id=\"add-note\">Add note</button></form>"
        );
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{base}/reassign\" class=\"inline\">{csrf}<label>Reassign to <select name=\"team\" id=\"team\">"
        );
        for t in teams.all().iter().filter(|t| t.id != e.team) {
            let _ = write!(
                out,
                "<option value=\"{}\">{}</option>",
                escape(&t.id),
                escape(&t.name_en)
            );
        }
        let _ = write!(
            out,
            "</select></label><button id=\"reassign\">Reassign</button></form>"
        );
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{base}/resolve\" class=\"inline\">{csrf}<button id=\"resolve\">Resolve</button></form>"
        );
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{base}/handback\" class=\"inline\">{csrf}<button id=\"handback\">Hand back to the bot</button></form>"
        );
        out.push_str("</section>");
    }

    out.push_str("<section id=\"history\" data-live><h2>History</h2><ul class=\"history\">");
    for h in &e.history {
        let _ = write!(
            out,
            "<li>{} · {} · ",
            h.at.format("%Y-%m-%d %H:%M"),
            escape(&h.actor)
        );
        escape_into(&h.change, &mut out);
        out.push_str("</li>");
    }
    out.push_str("</ul></section>");
    out
}

async fn escalation(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let actor = match session(&inbox, &headers).await {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    match actions::view(&inbox, &actor, id).await {
        Ok(view) => {
            // The page without its explain panel beats no page: the panel is a help, and an
            // unreadable old rulebook version must not hide the escalation.
            let explained = crate::explain::explain(&inbox, &view)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, escalation = id, "inbox: cannot explain");
                    Vec::new()
                });
            let rulebook = inbox.gateway().runtime().rulebook();
            let body =
                render_escalation(&rulebook, &actor, &view, &explained, inbox.gateway().now());
            html(
                StatusCode::OK,
                layout(&format!("Escalation #{id}"), Some(&actor), &body),
            )
        }
        Err(e) => error_page(Some(&actor), e.status(), &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    canned: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

async fn act(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Path((id, action)): Path<(u64, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let actor = match form_session(&inbox, &headers, &form.csrf).await {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let back = format!("/inbox/escalations/{id}");
    let result: Result<String, ActionError> = match action.as_str() {
        "claim" => actions::claim(&inbox, &actor, id).await.map(|_| back),
        "reply" => {
            let mut text = form.text.unwrap_or_default();
            if text.trim().is_empty()
                && let Some(canned) = form.canned.filter(|c| !c.is_empty())
            {
                let rulebook = inbox.gateway().runtime().rulebook();
                text = rulebook
                    .templates()
                    .text(&canned, rulebook.default_language)
                    .unwrap_or_default()
                    .to_owned();
            }
            actions::reply(&inbox, &actor, id, &text)
                .await
                .map(|_| back)
        }
        "note" => actions::note(&inbox, &actor, id, form.text.as_deref().unwrap_or(""))
            .await
            .map(|_| back),
        "reassign" => actions::reassign(&inbox, &actor, id, form.team.as_deref().unwrap_or(""))
            .await
            .map(|_| "/inbox".to_owned()),
        "resolve" => actions::resolve(&inbox, &actor, id)
            .await
            .map(|_| "/inbox".to_owned()),
        "handback" => actions::handback(&inbox, &actor, id)
            .await
            .map(|_| "/inbox".to_owned()),
        other => Err(ActionError::Invalid(format!("unknown action `{other}`"))),
    };
    match result {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => error_page(Some(&actor), e.status(), &e.to_string()),
    }
}

/// The explain panel: every step of each escalated message's decision. Topics, keywords,
/// reasons, rules and version are the stored diagnostics (what happened); the normalised text
/// and the scripts' verdicts come from deciding again (see [`crate::explain`]).
fn render_explained(explained: &[Explained], escalated: usize, out: &mut String) {
    if explained.is_empty() {
        return;
    }
    out.push_str("<section id=\"explain\"><details open><summary><h2>Why: the decision step by step</h2></summary>");
    if escalated > explained.len() {
        let _ = write!(
            out,
            "<p>The last {} of the {escalated} messages in this escalation; <code>webcare explain MESSAGE_ID</code> explains any other.</p>",
            explained.len()
        );
    }
    for x in explained {
        let d = &x.message.decision.diagnostics;
        let _ = write!(
            out,
            "<article class=\"explain\" data-message=\"{}\"><dl class=\"facts\"><dt>Message</dt><dd><code>{}</code> <span class=\"explain-text\">",
            escape(&x.message.message.id),
            escape(&x.message.message.id)
        );
        escape_into(&x.message.message.text, out);
        out.push_str("</span></dd><dt>Normalised</dt><dd class=\"explain-normalised\">");
        escape_into(&x.trace.normalized, out);
        out.push_str("</dd><dt>Topics</dt><dd class=\"explain-topics\">");
        if d.topics.is_empty() {
            out.push_str("none matched");
        } else {
            out.push_str("<ul>");
            for (i, t) in d.topics.iter().enumerate() {
                let _ = write!(
                    out,
                    "<li><strong>{}</strong>{} · {} · matched <code>{}</code></li>",
                    escape(&t.topic),
                    if i == 0 { " (main)" } else { "" },
                    escape(t.category.as_str()),
                    escape(&t.matched.join(", "))
                );
            }
            out.push_str("</ul>");
        }
        let _ = write!(
            out,
            "</dd><dt>Category, language, sentiment</dt><dd>{}, {}, {} ({})</dd>",
            escape(d.category.as_str()),
            d.language.as_str(),
            d.sentiment.label.as_str(),
            d.sentiment.score
        );
        let _ = write!(
            out,
            "<dt>Escalation script</dt><dd class=\"explain-proposal\">{}</dd><dt>Governance script</dt><dd class=\"explain-governance\">{}</dd>",
            escape(&x.proposal()),
            escape(&x.governance())
        );
        let stored = &x.message.decision.action;
        let mut decided = stored.name().to_owned();
        if let Some(team) = stored.team() {
            decided.push_str(&format!(" to `{team}`"));
        }
        if let Some(priority) = stored.priority() {
            decided.push_str(&format!(", priority {priority}"));
        }
        let _ = write!(
            out,
            "<dt>Decision</dt><dd>{}</dd><dt>Reasons</dt><dd><ul class=\"explain-reasons\">",
            escape(&decided)
        );
        for reason in &d.reasons {
            let _ = write!(out, "<li>{}</li>", escape(reason));
        }
        let _ = write!(
            out,
            "</ul></dd><dt>Rules</dt><dd><code>{}</code></dd>",
            escape(&d.rules.join(" · "))
        );
        if !d.script_errors.is_empty() {
            let _ = write!(
                out,
                "<dt>Script errors</dt><dd>{}</dd>",
                escape(&d.script_errors.join("; "))
            );
        }
        let _ = write!(
            out,
            "<dt>Rulebook</dt><dd><code class=\"explain-version\">{}</code></dd></dl>",
            escape(&d.rulebook)
        );
        for note in &x.notes {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(note));
        }
        out.push_str("</article>");
    }
    out.push_str("</details></section>");
}

// --- the crisis switch ----------------------------------------------------------------------

/// A line on the queue page while crisis mode is on, for everyone: it changes what reaches them.
fn crisis_banner(state: CrisisState) -> String {
    if state.on {
        "<p class=\"error\" id=\"crisis-banner\">Crisis mode is on: every message is escalated to a person, with the crisis holding reply.</p>".to_owned()
    } else {
        String::new()
    }
}

fn render_crisis(state: CrisisState, actor: &Actor, connected: bool) -> String {
    let why = match state.switch {
        Some(true) => "switched on",
        Some(false) => "switched off",
        None => "as the rulebook says",
    };
    let mut out = String::from("<h1>Crisis mode</h1><section id=\"crisis\">");
    let _ = write!(
        out,
        "<p id=\"crisis-state\" class=\"{}\">Crisis mode is <strong>{}</strong> ({why}).</p><p>While it is on, every message goes to a person: the bot answers nothing automatically and sends the crisis holding reply; escalations keep their team. The rulebook's own setting is <code>crisis_mode = {}</code>.</p>",
        if state.on { "crisis-on" } else { "crisis-off" },
        if state.on { "on" } else { "off" },
        state.rulebook
    );
    if !connected {
        out.push_str("<p class=\"error\">The crisis switch is not connected in this service; use <code>webcare crisis</code>.</p></section>");
        return out;
    }
    let csrf = csrf_field(actor);
    for (value, id, label) in [
        ("on", "crisis-on", "Switch crisis mode on"),
        ("off", "crisis-off", "Switch crisis mode off"),
        ("auto", "crisis-auto", "Follow the rulebook"),
    ] {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/inbox/crisis\" class=\"inline\">{csrf}<input type=\"hidden\" name=\"switch\" value=\"{value}\"><button id=\"{id}\">{label}</button></form>"
        );
    }
    out.push_str("<p>Every switch is written to the audit log with your login.</p></section>");
    out
}

async fn crisis_page(State(inbox): State<Inbox>, headers: HeaderMap) -> Response {
    let actor = match session(&inbox, &headers).await {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    if actor.user.role != Role::Lead {
        let refused = ActionError::LeadsOnly("switch crisis mode");
        return error_page(Some(&actor), refused.status(), &refused.to_string());
    }
    let body = render_crisis(
        actions::crisis_state(&inbox),
        &actor,
        inbox.crisis_switch().is_some(),
    );
    html(StatusCode::OK, layout("Crisis mode", Some(&actor), &body))
}

#[derive(Debug, Deserialize)]
struct CrisisForm {
    csrf: String,
    switch: String,
}

async fn crisis_switch(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Form(form): Form<CrisisForm>,
) -> Response {
    let actor = match form_session(&inbox, &headers, &form.csrf).await {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let on = match form.switch.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        "auto" => None,
        other => {
            let invalid = ActionError::Invalid(format!(
                "unknown switch `{other}`; expected on, off or auto"
            ));
            return error_page(Some(&actor), invalid.status(), &invalid.to_string());
        }
    };
    match actions::set_crisis(&inbox, &actor, on).await {
        Ok(_) => Redirect::to("/inbox/crisis").into_response(),
        Err(e) => error_page(Some(&actor), e.status(), &e.to_string()),
    }
}

// --- live updates ---------------------------------------------------------------------------

async fn events(State(inbox): State<Inbox>, headers: HeaderMap) -> Response {
    if session(&inbox, &headers).await.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let changes = inbox.subscribe();
    let stream = futures_util::stream::unfold(changes, |mut changes| async move {
        use tokio::sync::broadcast::error::RecvError;
        match changes.recv().await {
            Ok(()) | Err(RecvError::Lagged(_)) => Some((
                Ok::<_, Infallible>(SseEvent::default().event("changed").data("")),
                changes,
            )),
            Err(RecvError::Closed) => None,
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
