//! The inbox's HTML: server-rendered pages that work without JavaScript (every action is a
//! plain form post), with one small script (`assets/inbox.js`) for what a workplace needs
//! live: the queue refreshes itself when the server says something changed (SSE), the title
//! counts what waits, desktop notifications on request, keyboard shortcuts, canned replies.
//!
//! Pages are maud templates: checked when the crate compiles, and every value is escaped
//! unless a template marks it as markup with `PreEscaped` (done only for our own fixed
//! texts). The Content-Security-Policy allows scripts from this origin only, so even a
//! mistake there could not run a customer's `<script>`. Each form carries the session's CSRF
//! token; the login form carries a token of its own (double-submit cookie). Every word comes
//! from [`crate::text`], in the person's language; every time is in the rulebook's time zone,
//! which the header names.
//!
//! # Layout
//!
//! - this file: routes, the page frame, sessions, language, local time;
//! - [`login`]: logging in and out;
//! - [`queue`]: the queues with filters, search and previews, and the "next" jump;
//! - [`escalation`]: one escalation, conversation and reply box first, and its actions;
//! - [`why`]: the explain panel (every step of each message's decision), collapsed;
//! - [`crisis`]: the leads' crisis switch;
//! - [`live`]: server-sent events that tell open pages something changed.

mod crisis;
mod escalation;
mod live;
mod login;
mod queue;
mod why;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use webcare_engine::store::Role;

use crate::Inbox;
use crate::actions::ActionError;
use crate::auth::{Actor, cookie};
use crate::text::{LANG_COOKIE, Lang, Texts};
use webcare_adapters::secret::same_secret;

pub use escalation::{ReplyBox, render_escalation};
pub use queue::{Filters, render_queue};

pub(crate) const SESSION_COOKIE: &str = "webcare_session";
const CSS: &str = include_str!("../../assets/inbox.css");
const JS: &str = include_str!("../../assets/inbox.js");

pub fn routes(inbox: Inbox) -> Router {
    Router::new()
        .route("/inbox", get(queue::queue))
        .route("/inbox/queue", get(queue::fragment))
        .route("/inbox/next", get(queue::next))
        .route("/inbox/language", get(language))
        .route("/inbox/login", get(login::login_form).post(login::login))
        .route("/inbox/logout", post(login::logout))
        .route("/inbox/events", get(live::events))
        .route(
            "/inbox/crisis",
            get(crisis::crisis_page).post(crisis::crisis_switch),
        )
        .route("/inbox/escalations/{id}", get(escalation::escalation))
        .route("/inbox/escalations/{id}/{action}", post(escalation::act))
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
fn respond(status: StatusCode, body: String) -> Response {
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

/// What every page needs to speak to one person: their language, the rulebook's time zone,
/// and who they are (none on the login page).
pub struct Ctx<'a> {
    pub lang: Lang,
    pub t: &'static Texts,
    pub tz: Tz,
    pub actor: Option<&'a Actor>,
}

impl<'a> Ctx<'a> {
    pub fn new(lang: Lang, tz: Tz, actor: Option<&'a Actor>) -> Self {
        Ctx {
            lang,
            t: lang.texts(),
            tz,
            actor,
        }
    }

    /// `at` in the rulebook's time zone, with the zone's abbreviation: "2026-11-30 10:15 CET".
    pub fn time(&self, at: DateTime<Utc>) -> String {
        crate::text::local_time(at, self.tz)
    }

    /// Why `error` refused an action, in the person's words and local time.
    pub fn refusal(&self, error: &crate::actions::ActionError) -> String {
        self.lang.refusal(error, self.tz)
    }

    /// The hidden CSRF field of the person's forms.
    pub fn csrf(&self) -> Markup {
        let token = self
            .actor
            .and_then(|a| a.csrf.as_deref())
            .unwrap_or_default();
        html! { input type="hidden" name="csrf" value=(token); }
    }
}

/// The page around `body`; `count`, when given, leads the title (what waits in the queue), so
/// a background tab shows it.
fn layout(ctx: &Ctx<'_>, title: &str, count: Option<usize>, body: Markup) -> String {
    let t = ctx.t;
    html! {
        (DOCTYPE)
        html lang=(t.html_lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title {
                    @if let Some(n) = count { "(" (n) ") " }
                    (title) " · " (t.brand)
                }
                link rel="stylesheet" href="/inbox/assets/inbox.css";
                script src="/inbox/assets/inbox.js" defer {}
            }
            body data-title=(format!("{title} · {}", t.brand)) {
                header {
                    a.brand href="/inbox" { (t.brand) }
                    span.tz #timezone { (ctx.lang.times_in(ctx.tz.name())) }
                    nav.lang {
                        @for (lang, label) in [(Lang::Nl, "NL"), (Lang::En, "EN")] {
                            @if lang == ctx.lang {
                                strong lang=(lang.code()) { (label) }
                            } @else {
                                a #(format!("lang-{}", lang.code())) href=(format!("/inbox/language?to={}", lang.code())) lang=(lang.code()) { (label) }
                            }
                        }
                    }
                    @if let Some(actor) = ctx.actor {
                        @if actor.user.role == Role::Lead {
                            a #crisis-link href="/inbox/crisis" { (t.crisis_link) }
                        }
                        button #notify-toggle type="button" hidden data-on=(t.notify_active) { (t.notify_ask) }
                        span.who { (actor.user.name) " (" (ctx.lang.role(actor.user.role)) ")" }
                        form.inline method="post" action="/inbox/logout" {
                            (ctx.csrf())
                            button { (t.log_out) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

fn error_page(ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { (status.as_u16()) }
        p.error { (message) }
        p { a href="/inbox" { (ctx.t.back_to_queues) } }
    };
    respond(status, layout(ctx, ctx.t.error, None, body))
}

/// The person's language: the one they chose when logged in (kept with their user, so it
/// follows them to another browser), else the one chosen in this browser (a cookie, for the
/// login page), else their browser's, else English.
pub fn lang_of(headers: &HeaderMap, actor: Option<&Actor>) -> Lang {
    let chosen = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie(c, LANG_COOKIE))
        .and_then(Lang::parse);
    actor
        .and_then(|a| a.lang)
        .or(chosen)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::En)
}

/// The rulebook's time zone: the one its office hours, SLA deadlines and holding replies use.
fn zone(inbox: &Inbox) -> Tz {
    inbox.gateway().runtime().rulebook().teams().timezone
}

#[derive(Debug, Deserialize)]
struct LanguageQuery {
    to: String,
}

/// Keeps a person's language choice with their user when they are logged in, and in a cookie
/// for this browser's login page, and goes back where they were (only to a page of the
/// inbox, so the link cannot send anyone elsewhere).
async fn language(
    axum::extract::State(inbox): axum::extract::State<Inbox>,
    headers: HeaderMap,
    Query(query): Query<LanguageQuery>,
) -> Response {
    let Some(lang) = Lang::parse(&query.to) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Ok(actor) = session(&inbox, &headers).await {
        let login = actor.user.login;
        let stored = inbox
            .gateway()
            .store(move |s| s.set_user_language(&login, lang.code()))
            .await;
        if let Err(error) = stored {
            let ctx = Ctx::new(lang, zone(&inbox), None);
            return error_page(
                &ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                &ctx.refusal(&ActionError::Unavailable(error.to_string())),
            );
        }
    }
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/inbox").map(|at| r[at..].to_owned()))
        .filter(|path| !path.starts_with("/inbox/language"))
        .unwrap_or_else(|| "/inbox".to_owned());
    let mut response = Redirect::to(&back).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&inbox, LANG_COOKIE, lang.code(), 365 * 24 * 3600),
    );
    response
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
    let (user, lang) = inbox
        .gateway()
        .store(move |s| {
            Ok::<_, webcare_engine::store::StoreError>((s.user(&login)?, s.user_language(&login)?))
        })
        .await
        .map_err(|e| {
            let ctx = Ctx::new(lang_of(headers, None), zone(inbox), None);
            error_page(
                &ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                &ctx.refusal(&ActionError::Unavailable(e.to_string())),
            )
        })?;
    let user = user.ok_or_else(to_login)?;
    // A new password, role or teams, or a removal and re-add, ends the session.
    if !inbox.inner.sessions.still_valid(value, &user) {
        return Err(to_login());
    }
    Ok(Actor {
        user,
        csrf: Some(csrf),
        lang: lang.as_deref().and_then(Lang::parse),
        session: Some(crate::auth::token_digest(value)),
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
        let ctx = Ctx::new(lang_of(headers, Some(&actor)), zone(inbox), Some(&actor));
        return Err(error_page(&ctx, StatusCode::FORBIDDEN, ctx.t.form_expired));
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

/// Our own fixed texts that hold a little markup (`<code>`), never anything from outside.
fn fixed(text: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(text)
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
