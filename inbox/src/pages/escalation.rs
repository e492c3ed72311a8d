//! One escalation, laid out for the person answering it: the conversation and the reply box
//! first (with the team's canned replies, filled in for this customer), the facts that matter
//! for the answer beside them (customer, channel, SLA due in local time, the reply window, the
//! reason in words), the customer's other conversations on any channel, the history, and the
//! "why" for auditors collapsed below (see [`super::why`]). Also every action's form post.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use webcare_engine::case::window;
use webcare_engine::replies::{CannedReply, ReplyVars};
use webcare_engine::store::{ConversationState, EscalationStatus, OutboxStatus, Receipt};
use webcare_engine::teams::describe_deadline;
use webcare_engine::{ChannelKind, Rulebook};

use super::queue::{customer_name, human_reason, status_text};
use super::{Ctx, error_page, form_session, lang_of, layout, respond, session, why, zone};
use crate::Inbox;
use crate::actions::{self, ActionError, EscalationView};
use crate::auth::Actor;
use crate::explain::Explained;
use crate::kept::Kept;

/// One line of the conversation, for sorting by time.
struct Line<'a> {
    at: DateTime<Utc>,
    kind: &'static str,
    who: String,
    text: &'a str,
    note: &'static str,
    /// A sent reply's receipt: what the platform reported after it took it.
    receipt: Option<&'a Receipt>,
}

/// The reply box's state beyond the escalation itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyBox<'a> {
    /// `[meta] reply_template`: whether a WhatsApp reply after the window can go out.
    pub template: Option<&'a str>,
    /// A reply just refused: its text (kept in the box) and the reason.
    pub refused: Option<(&'a str, &'a str)>,
    /// Why another action on this escalation was just refused.
    pub refused_action: Option<&'a str>,
}

/// When the customer last wrote: the start of the customer service window.
fn last_customer_message(view: &EscalationView) -> Option<DateTime<Utc>> {
    view.messages.iter().map(|m| m.message.received_at).max()
}

/// Until when a free reply may be sent, on a channel with a customer service window
/// (WhatsApp, Messenger, Instagram), and after it how a reply goes out or that it is refused
/// (the rule of [`window::route`], the one the Meta adapter sends by).
fn reply_window(
    ctx: &Ctx<'_>,
    channel: ChannelKind,
    view: &EscalationView,
    template: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Markup> {
    let length = channel.reply_window()?;
    let last = last_customer_message(view)?;
    let closes = last + length;
    let since = ctx.time(closes);
    Some(
        match window::route(channel, last, now, length, false, template.is_some()) {
            Ok(window::Route::Free) => {
                html! { span #window { (ctx.lang.window_open(&since, &ctx.lang.span((closes - now).num_minutes()))) } }
            }
            Ok(window::Route::Template) => {
                html! { span #window .sla-overdue { (ctx.lang.window_template(&since, template.unwrap_or_default())) } }
            }
            Ok(window::Route::HumanAgent) => {
                let until = ctx.time(last + window::HUMAN_AGENT_WINDOW);
                html! { span #window .sla-overdue { (ctx.lang.window_human_agent(&since, &until)) } }
            }
            Err(_) => {
                html! { span #window .sla-overdue { (ctx.lang.window_refused(&since)) } }
            }
        },
    )
}

/// Why an agent's reply would be refused now, if it would: shown in the reply form before
/// the agent writes it, not only after sending.
fn reply_refusal(
    ctx: &Ctx<'_>,
    channel: ChannelKind,
    view: &EscalationView,
    template: Option<&str>,
    now: DateTime<Utc>,
) -> Option<String> {
    let length = channel.reply_window()?;
    let last = last_customer_message(view)?;
    window::route(channel, last, now, length, false, template.is_some())
        .err()
        .map(|refused| {
            ctx.refusal(&ActionError::OutsideWindow {
                channel,
                last,
                closes: last + length,
                refused,
            })
        })
}

/// A canned reply's text for this escalation, in the customer's language, with the customer's
/// name, the deadline (the escalation's, else the team's SLA from now), the team and the agent.
pub fn canned_text(
    rulebook: &Rulebook,
    reply: &CannedReply,
    view: &EscalationView,
    actor: &Actor,
    now: DateTime<Utc>,
) -> String {
    let e = &view.escalation;
    let language = view.opening().map_or(rulebook.default_language, |m| {
        m.decision.diagnostics.language
    });
    let teams = rulebook.teams();
    let team = teams.get(&e.team);
    let local_now = teams.local(now);
    let deadline = e
        .sla_deadline
        .map(|d| teams.local(d))
        .or_else(|| team.and_then(|t| t.sla_deadline(local_now, e.priority)))
        .map(|d| describe_deadline(local_now, d, language))
        .unwrap_or_default();
    let name = view
        .messages
        .iter()
        .rev()
        .find_map(|m| m.message.metadata.get("display_name"))
        .map(String::as_str)
        .unwrap_or("");
    reply.fill(
        language,
        &ReplyVars {
            name,
            deadline: &deadline,
            team: team.map_or(e.team.as_str(), |t| t.name_in(language)),
            agent: &actor.user.name,
        },
    )
}

/// The escalation page; `explained` fills its explain panel (empty: no panel).
pub fn render_escalation(
    ctx: &Ctx<'_>,
    rulebook: &Rulebook,
    view: &EscalationView,
    explained: &[Explained],
    reply: ReplyBox<'_>,
    now: DateTime<Utc>,
) -> Markup {
    let (t, lang) = (ctx.t, ctx.lang);
    let Some(actor) = ctx.actor else {
        return html! {};
    };
    let e = &view.escalation;
    let teams = rulebook.teams();
    let team_name = teams
        .get(&e.team)
        .map_or(e.team.as_str(), |team| lang.team_name(team));
    let (sla, sla_class) = crate::sla::cell_in(e, now, lang);
    let opening = view.opening();
    let base = format!("/inbox/escalations/{}", e.id);
    let open = !matches!(e.status, EscalationStatus::Resolved { .. });
    let customer = view.messages.last().map(|m| customer_name(&m.message));

    // The conversation: customer messages, the bot's and the agents' replies, internal notes.
    let mut lines: Vec<Line<'_>> = Vec::new();
    for m in &view.messages {
        lines.push(Line {
            at: m.message.received_at,
            kind: "customer",
            who: customer_name(&m.message).to_owned(),
            text: &m.message.text,
            note: "",
            receipt: None,
        });
    }
    for r in &view.replies {
        let agent = view.work.replies.iter().find(|a| a.outbox == r.id);
        lines.push(Line {
            at: r.created_at,
            kind: if agent.is_some() { "agent" } else { "bot" },
            who: agent.map_or_else(|| t.bot.to_owned(), |a| a.author.clone()),
            text: &r.text,
            note: match r.status {
                OutboxStatus::Pending => t.waiting_to_send,
                OutboxStatus::Sent { .. } => t.sent,
                OutboxStatus::Dead => t.undeliverable,
            },
            receipt: view.receipt(r.id),
        });
    }
    for n in &view.work.notes {
        lines.push(Line {
            at: n.at,
            kind: "note",
            who: n.author.clone(),
            text: &n.text,
            note: t.internal_note,
            receipt: None,
        });
    }
    lines.sort_by_key(|l| l.at);

    // A refused reply's reason, else the reason a reply would be refused now.
    let refusal = reply
        .refused
        .map(|(_, reason)| reason.to_owned())
        .or_else(|| reply_refusal(ctx, e.channel, view, reply.template, now));
    let kept = reply.refused.map_or("", |(text, _)| text);
    let csrf = ctx.csrf();
    let canned: Vec<(&CannedReply, String)> = rulebook
        .replies()
        .for_team(&e.team)
        .map(|r| (r, canned_text(rulebook, r, view, actor, now)))
        .collect();

    html! {
        @if let Some(message) = reply.refused_action {
            p.error #action-refused role="alert" { (message) }
        }
        h1 {
            (lang.escalation_title(e.id)) " "
            small {
                (team_name) " · "
                span class=(format!("prio-{}", e.priority.as_str())) { (lang.priority(e.priority)) }
                " · " span #status { (status_text(lang, &e.status)) }
            }
        }
        div.workspace {
            div.work {
                section #conversation data-live {
                    h2 { (t.conversation) }
                    ol.conversation {
                        @for l in &lines {
                            li class=(format!("line {}", l.kind)) {
                                div.meta {
                                    (l.who) " · " (ctx.time(l.at))
                                    @if !l.note.is_empty() { " · " (l.note) }
                                    @if let Some(r) = l.receipt {
                                        @if let Some(at) = r.delivered_at { " · " span.delivered { (lang.delivered_at(&ctx.time(at))) } }
                                        @if let Some(at) = r.read_at { " · " span.read { (lang.read_at(&ctx.time(at))) } }
                                        @if let Some(f) = &r.failed {
                                            " · " span.failed.sla-overdue { (lang.failed_on(lang.channel(e.channel), &ctx.time(f.at), f.code, &f.title)) }
                                        }
                                    }
                                }
                                div.text { (l.text) }
                            }
                        }
                    }
                }
                @if !open && let Some((text, reason)) = reply.refused {
                    // Resolved meanwhile (by a colleague): no form to send from, but what the
                    // agent wrote and why it was not sent stay on screen.
                    section.actions #actions {
                        p.error #reply-refused role="alert" { (t.reply_not_sent) ": " (reason) }
                        label { (t.unsent_reply) textarea #reply-text rows="5" readonly { (text) } }
                    }
                }
                @if open {
                    section.actions #actions {
                        form.reply method="post" action=(format!("{base}/reply")) {
                            (csrf)
                            @if !canned.is_empty() {
                                label { (t.canned_reply) " "
                                    select name="canned" #canned {
                                        option value="" { "—" }
                                        @for (reply, text) in &canned {
                                            option value=(reply.id) data-text=(text) { (reply.title(lang.engine())) }
                                        }
                                    }
                                }
                            }
                            @if let Some(reason) = &refusal {
                                p.error #reply-refused role="alert" { (t.reply_not_sent) ": " (reason) }
                            }
                            label { (lang.reply_label(lang.channel(e.channel)))
                                textarea name="text" #reply-text rows="5" { (kept) }
                            }
                            div.buttons {
                                button #send-reply { (t.send_reply) }
                            }
                        }
                        div.buttons {
                            @if e.status == EscalationStatus::Open {
                                form.inline method="post" action=(format!("{base}/claim")) { (csrf) button #claim { (t.claim) } }
                            }
                            form.inline method="post" action=(format!("{base}/resolve")) { (csrf) button #resolve { (t.resolve) } }
                            form.inline method="post" action=(format!("{base}/handback")) { (csrf) button #handback { (t.handback) } }
                            a.button #next href=(format!("/inbox/next?from={}", e.id)) { (t.next) }
                        }
                        form.note method="post" action=(format!("{base}/note")) {
                            (csrf)
                            label { (t.note_label) textarea name="text" #note-text rows="2" {} }
                            div.buttons { button #add-note { (t.add_note) } }
                        }
                        form.inline method="post" action=(format!("{base}/reassign")) {
                            (csrf)
                            label { (t.reassign_to) " "
                                select name="team" #team {
                                    @for other in teams.all().iter().filter(|other| other.id != e.team) {
                                        option value=(other.id) { (lang.team_name(other)) }
                                    }
                                }
                            }
                            " " button #reassign { (t.reassign) }
                        }
                    }
                } @else {
                    p { a.button #next href=(format!("/inbox/next?from={}", e.id)) { (t.next) } }
                }
            }
            aside.context {
                section #facts data-live {
                    h2 { (t.details) }
                    dl.facts {
                        dt { (t.customer) }
                        dd #customer { (customer.unwrap_or("–")) }
                        dt { (t.channel) }
                        dd { (lang.channel(e.channel)) " · " (t.conversation_id) " " code { (e.conversation) } }
                        dt { (t.created) }
                        dd { (ctx.time(e.created_at)) " (" (lang.ago(&lang.span((now - e.created_at).num_minutes()))) ")" }
                        dt { (t.sla) }
                        dd {
                            @if let Some(d) = e.sla_deadline { (ctx.time(d)) " · " }
                            span #sla class=(sla_class) { (sla) }
                        }
                        @if let Some(since) = e.case.waiting_since {
                            dt { (t.waiting_label) }
                            dd { span.waiting #waiting { (lang.waits_since(&ctx.time(since))) } }
                        }
                        @if !view.linked.is_empty() {
                            // The conversation's other cases: a message for another team went to
                            // that team's own escalation.
                            dt { (t.linked) }
                            dd {
                                @for (i, l) in view.linked.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    a.linked href=(format!("/inbox/escalations/{}", l.id)) { "#" (l.id) }
                                    " "
                                    (teams.get(&l.team).map_or(l.team.as_str(), |team| lang.team_name(team)))
                                    " (" (status_text(lang, &l.status)) ")"
                                }
                            }
                        }
                        @if let Some(survey) = &e.case.survey {
                            dt { (t.satisfaction) }
                            dd {
                                span #satisfaction {
                                    @match survey.score {
                                        Some(score) => (lang.score(score)),
                                        None => (t.asked_no_answer),
                                    }
                                }
                            }
                        }
                        @if let Some(window) = reply_window(ctx, e.channel, view, reply.template, now) {
                            dt { (t.reply_window) } dd { (window) }
                        }
                        dt { (t.reason) }
                        dd #reason { (human_reason(&e.reason, lang)) }
                        @if let Some(m) = opening {
                            @let d = &m.decision.diagnostics;
                            dt { (t.category) }
                            dd { (lang.category(d.category)) }
                            dt { (t.topics) }
                            dd {
                                @if d.topics.is_empty() { "–" }
                                @for (i, topic) in d.topics.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (topic.topic) " " small { "(" (topic.matched.join(", ")) ")" }
                                }
                            }
                        }
                    }
                }
                section #others {
                    h2 { (t.other_conversations) }
                    @if view.others.is_empty() {
                        p { small { (t.no_other_conversations) } }
                    } @else {
                        ul.others {
                            @for c in &view.others {
                                li {
                                    @if let Some(id) = c.open_escalation {
                                        a href=(format!("/inbox/escalations/{id}")) { (lang.escalation_title(id)) }
                                        " · "
                                    }
                                    (lang.channel(c.channel)) " " code { (c.id) }
                                    br;
                                    small {
                                        (match c.state {
                                            ConversationState::Human => t.with_a_person,
                                            ConversationState::Bot => t.with_the_bot,
                                            ConversationState::Closed => t.closed,
                                        })
                                        " · " (c.messages) " " (t.messages)
                                        " · " (t.last_activity) " " (ctx.time(c.last_activity))
                                    }
                                }
                            }
                        }
                    }
                }
                section #history data-live {
                    h2 { (t.history) }
                    ul.history {
                        @for h in &e.history {
                            li { (ctx.time(h.at)) " · " (h.actor) " · " (h.change) }
                        }
                    }
                }
            }
        }
        (why::render(ctx, opening.map(|m| &m.decision), explained, e.messages.len()))
    }
}

pub(super) async fn escalation(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let actor = match session(&inbox, &headers).await {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
    let now = inbox.gateway().now();
    let kept = actor
        .session
        .and_then(|session| inbox.kept().kept(session, id, now));
    escalation_page(&inbox, &ctx, &actor, id, kept.as_ref()).await
}

/// The escalation page; `kept` is an action just refused here, shown with its reason (a
/// refused reply in the reply form, with its text kept so the agent loses nothing).
async fn escalation_page(
    inbox: &Inbox,
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: u64,
    kept: Option<&Kept>,
) -> Response {
    match actions::view(inbox, actor, id).await {
        Ok(view) => {
            // The page without its explain panel beats no page: the panel is a help, and an
            // unreadable old rulebook version must not hide the escalation.
            let explained = crate::explain::explain(inbox, &view)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, escalation = id, "inbox: cannot explain");
                    Vec::new()
                });
            let rulebook = inbox.gateway().runtime().rulebook();
            let message = kept.map(|k| ctx.refusal(&k.error)).unwrap_or_default();
            let reply = ReplyBox {
                template: inbox.config().reply_template.as_deref(),
                refused: kept
                    .filter(|k| k.reply)
                    .map(|k| (k.text.as_str(), message.as_str())),
                refused_action: kept.filter(|k| !k.reply).map(|_| message.as_str()),
            };
            let now = inbox.gateway().now();
            let body = render_escalation(ctx, &rulebook, &view, &explained, reply, now);
            respond(
                StatusCode::OK,
                layout(ctx, &ctx.lang.escalation_title(id), None, body),
            )
        }
        Err(e) => error_page(ctx, e.status(), &ctx.refusal(&e)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ActionForm {
    csrf: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    canned: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

pub(super) async fn act(
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
    // What the last refusal kept goes with the next action on this escalation.
    if let Some(session) = actor.session {
        inbox.kept().forget(session, id);
    }
    let mut written = String::new();
    let result: Result<String, ActionError> = match action.as_str() {
        "claim" => actions::claim(&inbox, &actor, id)
            .await
            .map(|_| back.clone()),
        "reply" => {
            let mut text = form.text.unwrap_or_default();
            // Without JavaScript the canned reply is not copied into the box: a reply with
            // an empty box and a chosen canned reply sends that reply, filled in.
            if text.trim().is_empty()
                && let Some(canned) = form.canned.filter(|c| !c.is_empty())
            {
                let rulebook = inbox.gateway().runtime().rulebook();
                if let (Some(reply), Ok(view)) = (
                    rulebook.replies().get(&canned),
                    actions::view(&inbox, &actor, id).await,
                ) {
                    text = canned_text(&rulebook, reply, &view, &actor, inbox.gateway().now());
                }
            }
            let done = actions::reply(&inbox, &actor, id, &text).await;
            written = text;
            done.map(|_| back.clone())
        }
        "note" => actions::note(&inbox, &actor, id, form.text.as_deref().unwrap_or(""))
            .await
            .map(|_| back.clone()),
        "reassign" => actions::reassign(&inbox, &actor, id, form.team.as_deref().unwrap_or(""))
            .await
            .map(|_| "/inbox".to_owned()),
        "resolve" => actions::resolve(&inbox, &actor, id)
            .await
            .map(|_| "/inbox".to_owned()),
        "handback" => actions::handback(&inbox, &actor, id)
            .await
            .map(|_| "/inbox".to_owned()),
        other => Err(ActionError::UnknownAction(other.to_owned())),
    };
    let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
    match result {
        Ok(to) => Redirect::to(&to).into_response(),
        // A refusal on an escalation the person may see (claimed meanwhile, refused by the
        // reply window, empty): back to its page, which says why and keeps a refused reply's
        // text. Post/redirect/get, so reloading that page never sends the form again.
        Err(e)
            if matches!(
                e.status(),
                StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
            ) =>
        {
            let reply = action == "reply";
            let kept = Kept {
                error: e,
                text: if reply { written } else { String::new() },
                reply,
            };
            if let Some(session) = actor.session {
                inbox.kept().keep(session, id, &kept, inbox.gateway().now());
            }
            Redirect::to(&back).into_response()
        }
        Err(e) => error_page(&ctx, e.status(), &ctx.refusal(&e)),
    }
}
