//! Logging in and out. The login form carries a token of its own (double-submit cookie), since
//! there is no session yet; wrong passwords are counted per login and address before the
//! password is checked (see [`crate::auth`]), and unknown logins cost the same time as known
//! ones.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use webcare_adapters::secret::same_secret;
use webcare_engine::teams::describe_duration;

use super::{
    ClientAddr, Ctx, SESSION_COOKIE, error_page, form_session, lang_of, layout, respond, session,
    set_cookie, zone,
};
use crate::Inbox;
use crate::actions;
use crate::auth::{self, cookie, verify_password};

const LOGIN_COOKIE: &str = "webcare_login";

fn login_page(
    inbox: &Inbox,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    message: Option<&str>,
) -> Response {
    let ctx = Ctx::new(lang_of(headers, None), zone(inbox), None);
    let t = ctx.t;
    let body = html! {
        h1 { (t.log_in) }
        @if let Some(message) = message {
            p.error #login-error { (message) }
        }
        form.login method="post" action="/inbox/login" {
            input type="hidden" name="csrf" value=(token);
            label { (t.login) " " input name="login" #login autocomplete="username" required autofocus; }
            label { (t.password) " " input type="password" name="password" #password autocomplete="current-password" required; }
            button #login-submit { (t.log_in) }
        }
    };
    let mut response = respond(status, layout(&ctx, t.log_in, None, body));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(inbox, LOGIN_COOKIE, token, 3600),
    );
    response
}

pub(super) async fn login_form(State(inbox): State<Inbox>, headers: HeaderMap) -> Response {
    if session(&inbox, &headers).await.is_ok() {
        return Redirect::to("/inbox").into_response();
    }
    login_page(
        &inbox,
        &headers,
        StatusCode::OK,
        &auth::random_hex(16),
        None,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    csrf: String,
    login: String,
    password: String,
}

pub(super) async fn login(
    State(inbox): State<Inbox>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers, None);
    let t = lang.texts();
    let expected = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie(c, LOGIN_COOKIE))
        .unwrap_or("");
    if expected.is_empty() || !same_secret(expected.as_bytes(), form.csrf.as_bytes()) {
        return login_page(
            &inbox,
            &headers,
            StatusCode::FORBIDDEN,
            &auth::random_hex(16),
            Some(t.form_expired_login),
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
        let minutes = u32::try_from((seconds + 59) / 60).unwrap_or(u32::MAX);
        let mut response = login_page(
            &inbox,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &auth::random_hex(16),
            Some(&lang.try_again_in(&describe_duration(minutes, lang.engine()))),
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
        Err(e) => {
            let ctx = Ctx::new(lang, zone(&inbox), None);
            let unavailable = crate::actions::ActionError::Unavailable(e.to_string());
            return error_page(
                &ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                &ctx.refusal(&unavailable),
            );
        }
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
            &headers,
            StatusCode::UNAUTHORIZED,
            &auth::random_hex(16),
            Some(t.wrong_password),
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
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(
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
