//! The leads' crisis switch, and the banner everyone sees while crisis mode is on (it changes
//! what reaches them: every message comes to a person).

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use webcare_engine::store::Role;

use super::{Ctx, error_page, fixed, form_session, lang_of, layout, respond, session, zone};
use crate::Inbox;
use crate::actions::{self, ActionError, CrisisState};

/// A line on the queue page while crisis mode is on, for everyone.
pub(super) fn banner(ctx: &Ctx<'_>, state: CrisisState) -> Markup {
    html! {
        @if state.on {
            p.error #crisis-banner { (ctx.t.crisis_banner) }
        }
    }
}

fn render(ctx: &Ctx<'_>, state: CrisisState, connected: bool) -> Markup {
    let t = ctx.t;
    let why = match state.switch {
        Some(true) => t.switched_on,
        Some(false) => t.switched_off,
        None => t.as_the_rulebook_says,
    };
    let (before, word, after) = ctx.lang.crisis_is(state.on);
    html! {
        h1 { (t.crisis_mode) }
        section #crisis {
            p #crisis-state class=(if state.on { "crisis-on" } else { "crisis-off" }) {
                (before) strong { (word) } (after) " (" (why) ")."
            }
            p {
                (t.crisis_explained) " " (t.rulebook_setting) " "
                code { "crisis_mode = " (state.rulebook) } "."
            }
            @if connected {
                @for (value, id, label) in [
                    ("on", "crisis-on", t.crisis_switch_on),
                    ("off", "crisis-off", t.crisis_switch_off),
                    ("auto", "crisis-auto", t.crisis_follow_rulebook),
                ] {
                    form.inline method="post" action="/inbox/crisis" {
                        (ctx.csrf())
                        input type="hidden" name="switch" value=(value);
                        button #(id) { (label) }
                    }
                }
                p { (t.crisis_audited) }
            } @else {
                p.error { (fixed(t.crisis_not_connected)) }
            }
        }
    }
}

pub(super) async fn crisis_page(State(inbox): State<Inbox>, headers: HeaderMap) -> Response {
    let actor = match session(&inbox, &headers).await {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
    if actor.user.role != Role::Lead {
        let refused = ActionError::LeadsOnly;
        return error_page(&ctx, refused.status(), &ctx.refusal(&refused));
    }
    let body = render(
        &ctx,
        actions::crisis_state(&inbox),
        inbox.crisis_switch().is_some(),
    );
    respond(StatusCode::OK, layout(&ctx, ctx.t.crisis_mode, None, body))
}

#[derive(Debug, Deserialize)]
pub(super) struct CrisisForm {
    csrf: String,
    switch: String,
}

pub(super) async fn crisis_switch(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Form(form): Form<CrisisForm>,
) -> Response {
    let actor = match form_session(&inbox, &headers, &form.csrf).await {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
    let on = match form.switch.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        "auto" => None,
        other => {
            let invalid = ActionError::UnknownSwitch(other.to_owned());
            return error_page(&ctx, invalid.status(), &ctx.refusal(&invalid));
        }
    };
    match actions::set_crisis(&inbox, &actor, on).await {
        Ok(_) => Redirect::to("/inbox/crisis").into_response(),
        Err(e) => error_page(&ctx, e.status(), &ctx.refusal(&e)),
    }
}
