//! The queues (`/inbox`): a summary per team (open, claimed, overdue, due soon, oldest, load)
//! over everything the person may work, then one table per team of what the filters let
//! through, most urgent first, each row with the customer, a preview of their latest message,
//! the reason in words, age and SLA due in local time, and a claim button.
//!
//! Filters (team, status, priority, channel, mine, unassigned) are plain query parameters, so
//! a filtered view is a link a colleague can share and the page works without JavaScript.
//! Search looks for every word in the texts of an escalation's messages and the customer's
//! name. The fragment (`/inbox/queue`) is the same two sections without the page around them,
//! which the page's script fetches when the server says something changed.
//!
//! With 10,000 open escalations the page must render well within 200 ms: filters on the
//! escalation records come first, message texts are read (in one store read) only for what
//! a search must look at and for the rows shown, and only the most urgent `page_rows` per team
//! are rendered.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use webcare_engine::decision::Category;
use webcare_engine::store::{Escalation, EscalationStatus};
use webcare_engine::{ChannelKind, Inbound, Priority, Rulebook};

use super::{Ctx, crisis, error_page, lang_of, layout, respond, session, zone};
use crate::Inbox;
use crate::actions;
use crate::auth::Actor;
use crate::text::Lang;

/// The query of `/inbox` as a form sends it: empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
pub(super) struct QueueQuery {
    team: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    channel: Option<String>,
    mine: Option<String>,
    unassigned: Option<String>,
    q: Option<String>,
}

/// Which status the queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Open,
    Claimed,
}

/// The queue's filters, parsed; a value that names nothing known is ignored, as a shared link
/// from an older version should still open.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub team: Option<String>,
    pub status: Option<StatusFilter>,
    pub priority: Option<Priority>,
    pub channel: Option<ChannelKind>,
    /// Claimed by the person looking.
    pub mine: bool,
    /// Claimed by nobody.
    pub unassigned: bool,
    /// The search as typed.
    pub search: String,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Filters {
    fn from_query(query: &QueueQuery) -> Self {
        Filters {
            team: given(&query.team).map(str::to_owned),
            status: given(&query.status).and_then(|s| match s {
                "open" => Some(StatusFilter::Open),
                "claimed" => Some(StatusFilter::Claimed),
                _ => None,
            }),
            priority: given(&query.priority).and_then(|p| p.parse().ok()),
            channel: given(&query.channel).and_then(|c| c.parse().ok()),
            mine: given(&query.mine).is_some(),
            unassigned: given(&query.unassigned).is_some(),
            search: given(&query.q).unwrap_or_default().to_owned(),
        }
    }

    /// Whether any filter but the team is set (the team only narrows the summary too).
    pub fn narrows(&self) -> bool {
        self.status.is_some()
            || self.priority.is_some()
            || self.channel.is_some()
            || self.mine
            || self.unassigned
            || !self.search.is_empty()
    }

    /// The search's words, lowercased; every one must occur.
    fn words(&self) -> Vec<String> {
        self.search
            .to_lowercase()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Whether `e` passes the filters on the escalation record itself (everything but the
    /// search, which needs the messages).
    fn keeps(&self, e: &Escalation, login: &str) -> bool {
        if self.team.as_deref().is_some_and(|t| t != e.team) {
            return false;
        }
        let claimed_by = match &e.status {
            EscalationStatus::Claimed { by } => Some(by.as_str()),
            _ => None,
        };
        match self.status {
            Some(StatusFilter::Open) if claimed_by.is_some() => return false,
            Some(StatusFilter::Claimed) if claimed_by.is_none() => return false,
            _ => {}
        }
        (self.priority.is_none_or(|p| p == e.priority))
            && (self.channel.is_none_or(|c| c == e.channel))
            && (!self.mine || claimed_by == Some(login))
            && (!self.unassigned || claimed_by.is_none())
    }

    /// The query string of these filters, for the fragment the script fetches.
    fn query_string(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(team) = &self.team {
            pairs.push(("team", team.clone()));
        }
        if let Some(status) = self.status {
            let s = match status {
                StatusFilter::Open => "open",
                StatusFilter::Claimed => "claimed",
            };
            pairs.push(("status", s.to_owned()));
        }
        if let Some(p) = self.priority {
            pairs.push(("priority", p.as_str().to_owned()));
        }
        if let Some(c) = self.channel {
            pairs.push(("channel", c.as_str().to_owned()));
        }
        if self.mine {
            pairs.push(("mine", "1".to_owned()));
        }
        if self.unassigned {
            pairs.push(("unassigned", "1".to_owned()));
        }
        if !self.search.is_empty() {
            pairs.push(("q", self.search.clone()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Everything the queue page shows, read from the store.
pub struct QueueData {
    /// Every open or claimed escalation the person may work (the summary counts these).
    pub all: Vec<Escalation>,
    /// Per shown team, the indexes into `all` that pass the filters, most urgent first, and
    /// how many passed in all (more than are shown when cut at the page's rows).
    pub tables: Vec<(String, Vec<usize>, usize)>,
    /// The messages read, by channel and id: previews and the customer's name.
    pub messages: HashMap<(ChannelKind, String), Inbound>,
}

/// Reads what the queue shows for `actor` with `filters`.
pub async fn load(
    inbox: &Inbox,
    actor: &Actor,
    filters: &Filters,
    rows: usize,
) -> Result<QueueData, actions::ActionError> {
    let all = actions::list(inbox, actor).await?;
    let login = actor.user.login.as_str();
    let mut kept: Vec<usize> = (0..all.len())
        .filter(|&i| filters.keeps(&all[i], login))
        .collect();
    let mut messages = HashMap::new();
    let words = filters.words();
    if !words.is_empty() {
        let keys: Vec<(ChannelKind, String)> = kept
            .iter()
            .flat_map(|&i| {
                let channel = all[i].channel;
                all[i].messages.iter().map(move |m| (channel, m.clone()))
            })
            .collect();
        let found = inbox
            .gateway()
            .store(move |s| s.inbound_messages(&keys))
            .await?;
        // The store answers in the order asked, so each escalation's messages are the next
        // ones in `found`: no map of 10,000 texts, no key copied to look one up.
        let mut found = found.into_iter().peekable();
        let mut matched = Vec::with_capacity(kept.len());
        for i in kept {
            let e = &all[i];
            let mut haystack = String::new();
            let mut latest = None;
            for id in &e.messages {
                let Some(m) = found.next_if(|m| m.channel == e.channel && &m.id == id) else {
                    continue;
                };
                haystack.push_str(&m.text.to_lowercase());
                haystack.push('\n');
                haystack.push_str(&customer_name(&m).to_lowercase());
                haystack.push('\n');
                latest = Some(m);
            }
            if words.iter().all(|w| haystack.contains(w.as_str())) {
                matched.push(i);
                // Kept for the row's preview (the latest message is the last of them).
                if let Some(m) = latest.filter(|m| e.messages.last() == Some(&m.id)) {
                    messages.insert((m.channel, m.id.clone()), m);
                }
            }
        }
        kept = matched;
    }
    let mut by_team: HashMap<&str, Vec<usize>> = HashMap::new();
    for i in kept {
        by_team.entry(all[i].team.as_str()).or_default().push(i);
    }
    let mut tables: Vec<(String, Vec<usize>, usize)> = by_team
        .into_iter()
        .map(|(team, mut list)| {
            list.sort_by_cached_key(|&i| crate::sla::queue_key(&all[i]));
            let total = list.len();
            list.truncate(rows);
            (team.to_owned(), list, total)
        })
        .collect();
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    // The previews of the rows shown, unless the search read them already.
    let wanted: Vec<(ChannelKind, String)> = tables
        .iter()
        .flat_map(|(_, list, _)| list.iter())
        .filter_map(|&i| {
            let e = &all[i];
            let last = e.messages.last()?;
            let key = (e.channel, last.clone());
            (!messages.contains_key(&key)).then_some(key)
        })
        .collect();
    if !wanted.is_empty() {
        messages.extend(read_messages(inbox, wanted).await?);
    }
    Ok(QueueData {
        all,
        tables,
        messages,
    })
}

async fn read_messages(
    inbox: &Inbox,
    keys: Vec<(ChannelKind, String)>,
) -> Result<HashMap<(ChannelKind, String), Inbound>, actions::ActionError> {
    let found = inbox
        .gateway()
        .store(move |s| s.inbound_messages(&keys))
        .await?;
    Ok(found
        .into_iter()
        .map(|m| ((m.channel, m.id.clone()), m))
        .collect())
}

/// The customer's name as the platform gave it, else their id on the platform.
pub(super) fn customer_name(m: &Inbound) -> &str {
    m.metadata
        .get("display_name")
        .map(String::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(&m.author)
}

/// The first `max` characters of `text` on one line, with `…` when cut.
pub(super) fn preview(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// The escalation's reason in words: the category of the message that opened it and what the
/// rules said about it, without the matching's internals ("recognised `complaint`
/// (complaint) from schandalig, woedend"), which the "why" panel of the escalation keeps.
pub(super) fn human_reason(reason: &str, lang: Lang) -> String {
    let mut category = None;
    let mut said = Vec::new();
    for part in reason.split("; ") {
        if let Some(rest) = part.strip_prefix("recognised `") {
            category = rest
                .split_once("` (")
                .and_then(|(_, rest)| rest.split_once(')'))
                .and_then(|(c, _)| c.parse::<Category>().ok());
        } else if part == "no topic recognised"
            || part.starts_with("not counted (negated)")
            || part.starts_with("classifier")
            || part.starts_with("governance adjusted")
        {
            continue;
        } else {
            said.push(part);
        }
    }
    match (category, said.is_empty()) {
        (Some(c), true) => lang.category(c).to_owned(),
        (Some(c), false) => format!("{} · {}", lang.category(c), said.join("; ")),
        (None, _) => said.join("; "),
    }
}

/// The status cell: "open", "claimed by anna".
pub(super) fn status_text(lang: Lang, status: &EscalationStatus) -> String {
    match status {
        EscalationStatus::Claimed { by } => lang.claimed_by(by),
        EscalationStatus::Resolved { by } => lang.resolved_by(by),
        EscalationStatus::Open => lang.texts().status_open.to_owned(),
    }
}

/// How many escalations wait for someone in the person's queues: unclaimed ones, and claimed
/// ones whose customer wrote again after an answer. The page title's count.
pub fn waiting(data: &QueueData) -> usize {
    data.all
        .iter()
        .filter(|e| e.status == EscalationStatus::Open || crate::sla::follow_up(e))
        .count()
}

/// The summary and the tables (the live part of the page).
pub fn render_queue(
    ctx: &Ctx<'_>,
    rulebook: &Rulebook,
    data: &QueueData,
    filters: &Filters,
    now: DateTime<Utc>,
) -> Markup {
    let (t, lang) = (ctx.t, ctx.lang);
    let Some(actor) = ctx.actor else {
        return html! {};
    };
    let teams = rulebook.teams();
    let visible: Vec<&webcare_engine::teams::Team> = teams
        .all()
        .iter()
        .filter(|team| actor.user.may_work(&team.id))
        .filter(|team| filters.team.as_deref().is_none_or(|only| only == team.id))
        .collect();
    let mut per_team: HashMap<&str, Vec<&Escalation>> = HashMap::new();
    for e in &data.all {
        per_team.entry(e.team.as_str()).or_default().push(e);
    }
    let csrf = ctx.csrf();
    html! {
        section #summary data-live {
            table.summary {
                thead { tr {
                    th { (t.team) } th { (t.open) } th { (t.claimed) } th { (t.overdue) }
                    th { (t.due_within_hour) } th { (t.oldest) } th { (t.load) }
                } }
                tbody {
                    @for team in &visible {
                        @let list = per_team.get(team.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
                        @let claimed = list.iter().filter(|e| matches!(e.status, EscalationStatus::Claimed { .. })).count();
                        @let overdue = list.iter().filter(|e| e.sla_deadline.is_some_and(|d| d <= now)).count();
                        @let soon = list.iter().filter(|e| e.sla_deadline.is_some_and(|d| d > now && (d - now).num_minutes() < 60)).count();
                        @let oldest = list.iter().map(|e| e.created_at).min();
                        @let members = team.members.len().max(1);
                        tr #(format!("team-{}", team.id)) {
                            td { a href=(format!("/inbox?team={}", encode(&team.id))) { (lang.team_name(team)) } }
                            td.count-open { (list.len() - claimed) }
                            td { (claimed) }
                            td class=(if overdue > 0 { "sla-overdue" } else { "" }) { (overdue) }
                            td { (soon) }
                            td { @if let Some(o) = oldest { (lang.span((now - o).num_minutes())) } @else { "–" } }
                            td { (format!("{:.1}", list.len() as f64 / members as f64)) " (" (lang.members(team.members.len())) ")" }
                        }
                    }
                }
            }
        }
        section #queues data-live data-count=(waiting(data)) data-query=(filters.query_string()) data-follow-up=(ctx.t.news_follow_up) data-reopened=(ctx.t.news_reopened) {
            @for team in &visible {
                @if let Some((_, list, total)) = data.tables.iter().find(|(id, _, _)| *id == team.id) {
                    h2 { (lang.team_name(team)) " " small { (lang.escalations(*total)) } }
                    table.queue data-team=(team.id) {
                        thead { tr {
                            th { "#" } th { (t.priority) } th { (t.status) } th { (t.channel) }
                            th { (t.customer) } th { (t.message) } th { (t.reason) } th { (t.age) }
                            th { (t.sla_due) } th {}
                        } }
                        tbody {
                            @for &i in list {
                                (row(ctx, &data.all[i], data, &csrf, now))
                            }
                            @if *total > list.len() {
                                tr { td colspan="10" { (lang.and_more(*total - list.len())) } }
                            }
                        }
                    }
                }
            }
            @if visible.is_empty() {
                p { (t.no_team) }
            } @else if data.tables.is_empty() && filters.narrows() {
                p #nothing { (t.nothing_matches) }
            }
        }
    }
}

fn row(
    ctx: &Ctx<'_>,
    e: &Escalation,
    data: &QueueData,
    csrf: &Markup,
    now: DateTime<Utc>,
) -> Markup {
    let lang = ctx.lang;
    let url = format!("/inbox/escalations/{}", e.id);
    let (sla, class) = crate::sla::cell_in(e, now, lang);
    let latest = e
        .messages
        .last()
        .and_then(|id| data.messages.get(&(e.channel, id.clone())));
    // For the desktop notifications of an escalation that waits on us again: `data-news`
    // changes with each customer message after an answer and is empty while nothing waits,
    // `data-reopened` counts reopenings (never the customer's words; see `assets/inbox.js`).
    let news = e
        .case
        .waiting_since
        .map_or(String::new(), |t| t.timestamp_micros().to_string());
    html! {
        tr.escalation #(format!("esc-{}", e.id)) data-id=(e.id) data-href=(url) data-news=(news) data-reopened=(e.case.reopened) {
            td { a href=(url) { "#" (e.id) } }
            td class=(format!("prio-{}", e.priority.as_str())) { (lang.priority(e.priority)) }
            td.status {
                (status_text(lang, &e.status))
                @if crate::sla::follow_up(e) { " " span.waiting { (ctx.t.waiting) } }
            }
            td.channel { (lang.channel(e.channel)) }
            td.customer { @if let Some(m) = latest { (customer_name(m)) } }
            td.preview { @if let Some(m) = latest { (preview(&m.text, 140)) } }
            td.reason { (human_reason(&e.reason, lang)) }
            td.age { (lang.span((now - e.created_at).num_minutes())) }
            td class=(format!("sla {class}")) {
                @if let Some(d) = e.sla_deadline { time datetime=(d.to_rfc3339()) { (ctx.time(d)) } br; }
                small.countdown { (sla) }
            }
            td.act {
                @if e.status == EscalationStatus::Open {
                    form.inline.claim method="post" action=(format!("{url}/claim")) {
                        (csrf)
                        button.claim { (ctx.t.claim) }
                    }
                }
            }
        }
    }
}

/// The filters as a form (GET, so a filtered view is a link).
fn filter_form(ctx: &Ctx<'_>, rulebook: &Rulebook, filters: &Filters) -> Markup {
    let (t, lang) = (ctx.t, ctx.lang);
    let Some(actor) = ctx.actor else {
        return html! {};
    };
    let teams = rulebook.teams();
    html! {
        form #filters method="get" action="/inbox" {
            label { (t.team) " "
                select name="team" #filter-team {
                    option value="" { (t.all_teams) }
                    @for team in teams.all().iter().filter(|team| actor.user.may_work(&team.id)) {
                        option value=(team.id) selected[filters.team.as_deref() == Some(team.id.as_str())] { (lang.team_name(team)) }
                    }
                }
            }
            label { (t.status) " "
                select name="status" #filter-status {
                    option value="" { (t.any) }
                    option value="open" selected[filters.status == Some(StatusFilter::Open)] { (t.status_open) }
                    option value="claimed" selected[filters.status == Some(StatusFilter::Claimed)] { (t.status_claimed) }
                }
            }
            label { (t.priority) " "
                select name="priority" #filter-priority {
                    option value="" { (t.any) }
                    @for p in Priority::ALL.iter().rev() {
                        option value=(p.as_str()) selected[filters.priority == Some(*p)] { (lang.priority(*p)) }
                    }
                }
            }
            label { (t.channel) " "
                select name="channel" #filter-channel {
                    option value="" { (t.any) }
                    @for c in ChannelKind::ALL {
                        option value=(c.as_str()) selected[filters.channel == Some(c)] { (lang.channel(c)) }
                    }
                }
            }
            label.check { input type="checkbox" name="mine" value="1" #filter-mine checked[filters.mine]; " " (t.mine) }
            label.check { input type="checkbox" name="unassigned" value="1" #filter-unassigned checked[filters.unassigned]; " " (t.unassigned) }
            label.search { (t.search) " "
                input type="search" name="q" #search value=(filters.search) placeholder=(t.search_placeholder);
            }
            button #apply-filters { (t.filter) }
            " "
            a href="/inbox" #clear-filters { (t.clear) }
        }
    }
}

/// Reads the queue for the request, or the page that says why not.
async fn prepared(
    inbox: &Inbox,
    headers: &HeaderMap,
    query: &QueueQuery,
) -> Result<(Actor, Filters, QueueData), Response> {
    let actor = session(inbox, headers).await?;
    let ctx = Ctx::new(lang_of(headers, Some(&actor)), zone(inbox), Some(&actor));
    let filters = Filters::from_query(query);
    if let Some(team) = &filters.team
        && !actor.user.may_work(team)
    {
        return Err(error_page(
            &ctx,
            StatusCode::FORBIDDEN,
            &format!("team `{team}` {}", ctx.t.not_your_team),
        ));
    }
    match load(inbox, &actor, &filters, inbox.config().page_rows).await {
        Ok(data) => Ok((actor, filters, data)),
        Err(e) => Err(error_page(&ctx, e.status(), &ctx.refusal(&e))),
    }
}

pub(super) async fn queue(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let (actor, filters, data) = match prepared(&inbox, &headers, &query).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
    let rulebook = inbox.gateway().runtime().rulebook();
    let now = inbox.gateway().now();
    let body = html! {
        h1 { (ctx.t.queues) }
        (crisis::banner(&ctx, actions::crisis_state(&inbox)))
        (filter_form(&ctx, &rulebook, &filters))
        (render_queue(&ctx, &rulebook, &data, &filters, now))
        p.shortcuts { small { (ctx.t.shortcuts) ": " (ctx.t.shortcuts_help) } }
    };
    respond(
        StatusCode::OK,
        layout(&ctx, ctx.t.queues, Some(waiting(&data)), body),
    )
}

/// The live part of the queue alone, for the page's script.
pub(super) async fn fragment(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let (actor, filters, data) = match prepared(&inbox, &headers, &query).await {
        Ok(ready) => ready,
        Err(response) => return response,
    };
    let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
    let rulebook = inbox.gateway().runtime().rulebook();
    let body = render_queue(&ctx, &rulebook, &data, &filters, inbox.gateway().now());
    respond(StatusCode::OK, body.into_string())
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NextQuery {
    from: Option<u64>,
}

/// "Next": the most urgent escalation in the person's queues that nobody else claimed, other
/// than the one they come from; the queue when there is none.
pub(super) async fn next(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let actor = match session(&inbox, &headers).await {
        Ok(actor) => actor,
        Err(redirect) => return redirect,
    };
    let all = match actions::list(&inbox, &actor).await {
        Ok(all) => all,
        Err(e) => {
            let ctx = Ctx::new(lang_of(&headers, Some(&actor)), zone(&inbox), Some(&actor));
            return error_page(&ctx, e.status(), &ctx.refusal(&e));
        }
    };
    let login = actor.user.login.as_str();
    let next = all
        .iter()
        .filter(|e| Some(e.id) != query.from)
        .filter(|e| match &e.status {
            EscalationStatus::Open => true,
            EscalationStatus::Claimed { by } => by == login,
            EscalationStatus::Resolved { .. } => false,
        })
        .min_by_key(|e| crate::sla::queue_key(e));
    match next {
        Some(e) => Redirect::to(&format!("/inbox/escalations/{}", e.id)).into_response(),
        None => Redirect::to("/inbox").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_reads_as_words() {
        let reason = "recognised `complaint` (complaint) from schandalig, woedend; strongly negative complaint";
        assert_eq!(
            human_reason(reason, Lang::Nl),
            "Klacht · strongly negative complaint"
        );
        assert_eq!(
            human_reason("recognised `press` (press) from journalist", Lang::En),
            "Press"
        );
        assert_eq!(
            human_reason(
                "no topic recognised; no known topic: a colleague answers",
                Lang::En
            ),
            "no known topic: a colleague answers"
        );
    }

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview("a\n b  c", 10), "a b c");
        assert_eq!(preview("abcdef", 3), "abc…");
    }

    #[test]
    fn filter_links_encode_the_search() {
        let filters = Filters {
            search: "gas lek & brand".into(),
            mine: true,
            ..Filters::default()
        };
        assert_eq!(filters.query_string(), "mine=1&q=gas%20lek%20%26%20brand");
    }
}
