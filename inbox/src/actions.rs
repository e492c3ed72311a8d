//! Every inbox action once: the access check (an agent works only their teams' escalations, a
//! lead all), the store call that does and audits it, and what follows (wake the outbox after
//! a reply, tell a team it got an escalation, refresh open pages). The HTML pages and the JSON
//! API are thin shells around these functions, so the two cannot drift apart.
//!
//! A reply is the first response that stops the SLA clock, not a claim: in webcare practice a
//! customer is answered when they get an answer, and a claim nobody follows up is exactly what
//! the SLA is there to catch.

use axum::http::StatusCode;
use webcare_adapters::gateway::GatewayError;
use webcare_engine::case::window;
use webcare_engine::store::Role;
use webcare_engine::store::{
    Conversation, Escalation, EscalationStatus, EscalationWork, NewAudit, OutboxEntry, Receipt,
    StoredMessage,
};
use webcare_engine::{CaseError, StoreError};

use crate::Inbox;
use crate::auth::Actor;
use crate::notify::Event;

/// The longest reply or note, in bytes.
pub const MAX_TEXT: usize = 8 * 1024;

/// Why an action was refused; each maps to one HTTP status. The messages here are the JSON
/// API's (English, times in UTC); the pages say the same in the person's language and the
/// rulebook's time zone ([`crate::text::Lang::refusal`]), so each variant carries the facts,
/// not finished words.
/// Serializable so a refusal can be kept for the page the browser is sent back to, which
/// another instance may serve (see [`crate::kept`]).
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ActionError {
    #[error("escalation {0} does not exist")]
    NotFound(u64),
    #[error("escalation {id} belongs to team `{team}`, which is not one of yours")]
    Forbidden { id: u64, team: String },
    #[error("only a lead may switch crisis mode")]
    LeadsOnly,
    #[error("escalation {id} is already claimed by {by}")]
    AlreadyClaimed { id: u64, by: String },
    #[error("escalation {0} is already resolved")]
    AlreadyResolved(u64),
    #[error("escalation {id} is already with `{team}`")]
    AlreadyWithTeam { id: u64, team: String },
    #[error("the {0} is empty")]
    Empty(Writing),
    #[error("the {0} is longer than {MAX_TEXT} bytes")]
    TooLong(Writing),
    #[error("unknown team `{0}`")]
    UnknownTeam(String),
    #[error("unknown switch `{0}`; expected on, off or auto")]
    UnknownSwitch(String),
    #[error("unknown action `{0}`; expected claim, reply, note, reassign, resolve or handback")]
    UnknownAction(String),
    #[error("the store is unavailable; try again ({0})")]
    Unavailable(String),
    #[error("the crisis switch is not connected in this service")]
    CrisisNotConnected,
    /// The reply could never go out (the platform's customer service window): when the
    /// customer last wrote, when the window closed, and what would have made it possible.
    #[error("{refused}")]
    OutsideWindow {
        channel: webcare_engine::ChannelKind,
        last: chrono::DateTime<chrono::Utc>,
        closes: chrono::DateTime<chrono::Utc>,
        refused: window::Refused,
    },
}

/// What an agent wrote, for the messages about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Writing {
    Reply,
    Note,
}

impl std::fmt::Display for Writing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writing::Reply => "reply",
            Writing::Note => "note",
        })
    }
}

impl ActionError {
    pub fn status(&self) -> StatusCode {
        use ActionError::*;
        match self {
            NotFound(_) => StatusCode::NOT_FOUND,
            Forbidden { .. } | LeadsOnly => StatusCode::FORBIDDEN,
            AlreadyClaimed { .. }
            | AlreadyResolved(_)
            | AlreadyWithTeam { .. }
            | OutsideWindow { .. } => StatusCode::CONFLICT,
            Empty(_) | TooLong(_) | UnknownTeam(_) | UnknownSwitch(_) | UnknownAction(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Unavailable(_) | CrisisNotConnected => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<GatewayError> for ActionError {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Case(CaseError::NoSuchEscalation(id)) => ActionError::NotFound(id),
            GatewayError::Case(CaseError::AlreadyClaimed { id, by }) => {
                ActionError::AlreadyClaimed { id, by }
            }
            GatewayError::Case(CaseError::AlreadyResolved(id)) => ActionError::AlreadyResolved(id),
            other => ActionError::Unavailable(other.to_string()),
        }
    }
}

/// One escalation with everything needed to work it.
#[derive(Debug, Clone)]
pub struct EscalationView {
    pub escalation: Escalation,
    pub work: EscalationWork,
    /// The conversation's messages with their decisions, oldest first.
    pub messages: Vec<StoredMessage>,
    /// The conversation's replies (the bot's and the agents'), oldest first.
    pub replies: Vec<OutboxEntry>,
    /// The conversation's other escalations (other teams' cases, earlier ones), oldest first.
    pub linked: Vec<Escalation>,
    /// The customer's other conversations (the same author, any channel), latest first, at
    /// most [`MAX_OTHERS`]: what else they asked is context for the answer.
    pub others: Vec<Conversation>,
    /// What the platform reported about sent replies (delivered, read, failed), by outbox id.
    pub receipts: Vec<(u64, Receipt)>,
}

/// The most other conversations of a customer shown beside an escalation.
pub const MAX_OTHERS: usize = 10;

impl EscalationView {
    /// The decision of the message that opened the escalation.
    pub fn opening(&self) -> Option<&StoredMessage> {
        let first = self.escalation.messages.first()?;
        self.messages.iter().find(|m| &m.message.id == first)
    }

    /// The platform's receipt of reply `outbox`, if it reported one.
    pub fn receipt(&self, outbox: u64) -> Option<&Receipt> {
        self.receipts
            .iter()
            .find_map(|(id, receipt)| (*id == outbox).then_some(receipt))
    }
}

/// The escalations `actor` may see that are open or claimed, oldest first.
pub async fn list(inbox: &Inbox, actor: &Actor) -> Result<Vec<Escalation>, ActionError> {
    let user = actor.user.clone();
    Ok(inbox
        .gateway()
        .store(move |s| {
            let mut all = s.open_escalations()?;
            all.retain(|e| user.may_work(&e.team));
            Ok::<_, StoreError>(all)
        })
        .await?)
}

/// The escalation, if `actor` may work it.
async fn checked(inbox: &Inbox, actor: &Actor, id: u64) -> Result<Escalation, ActionError> {
    let escalation = inbox
        .gateway()
        .store(move |s| s.escalation(id))
        .await?
        .ok_or(ActionError::NotFound(id))?;
    if !actor.user.may_work(&escalation.team) {
        return Err(ActionError::Forbidden {
            id,
            team: escalation.team,
        });
    }
    Ok(escalation)
}

pub async fn view(inbox: &Inbox, actor: &Actor, id: u64) -> Result<EscalationView, ActionError> {
    let escalation = checked(inbox, actor, id).await?;
    let (channel, conversation) = (escalation.channel, escalation.conversation.clone());
    let (work, messages, replies, mut linked, others, receipts) = inbox
        .gateway()
        .store(move |s| {
            let messages = s.conversation_messages(channel, &conversation)?;
            // Every author who wrote in this conversation is the customer (a group chat has
            // several); their other conversations are read in the same store job.
            let mut authors: Vec<&str> =
                messages.iter().map(|m| m.message.author.as_str()).collect();
            authors.sort_unstable();
            authors.dedup();
            let mut others = Vec::new();
            for author in authors {
                for (ch, conv) in s.author_conversations(author)? {
                    if (ch, conv.as_str()) == (channel, conversation.as_str())
                        || others
                            .iter()
                            .any(|o: &Conversation| o.channel == ch && o.id == conv)
                    {
                        continue;
                    }
                    if let Some(found) = s.conversation(ch, &conv)? {
                        others.push(found);
                    }
                }
            }
            others.sort_by_key(|o| std::cmp::Reverse(o.last_activity));
            others.truncate(MAX_OTHERS);
            Ok::<_, StoreError>((
                s.escalation_work(id)?,
                messages,
                s.conversation_outbox(channel, &conversation)?,
                s.conversation_escalations(channel, &conversation)?,
                others,
                s.outbox_receipts(channel, &conversation)?,
            ))
        })
        .await?;
    linked.retain(|e| e.id != id);
    Ok(EscalationView {
        escalation,
        work,
        messages,
        replies,
        linked,
        others,
        receipts,
    })
}

pub async fn claim(inbox: &Inbox, actor: &Actor, id: u64) -> Result<Escalation, ActionError> {
    checked(inbox, actor, id).await?;
    let (login, now) = (actor.user.login.clone(), inbox.gateway().now());
    let escalation = inbox
        .gateway()
        .store(move |s| s.claim_escalation(id, &login, now))
        .await?;
    inbox.changed_about(id);
    Ok(escalation)
}

fn text_of(text: &str, what: Writing) -> Result<String, ActionError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ActionError::Empty(what));
    }
    if text.len() > MAX_TEXT {
        return Err(ActionError::TooLong(what));
    }
    Ok(text.to_owned())
}

/// How an agent's reply in `escalation`'s conversation would go out now, or why it could
/// not: the customer service window of WhatsApp, Messenger and Instagram, by the same rule
/// the Meta adapter sends by.
pub async fn reply_route(
    inbox: &Inbox,
    escalation: &Escalation,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<window::Route, ActionError> {
    let channel = escalation.channel;
    let Some(length) = channel.reply_window() else {
        return Ok(window::Route::Free);
    };
    let conversation = escalation.conversation.clone();
    let found = inbox
        .gateway()
        .store(move |s| s.conversation(channel, &conversation))
        .await?;
    let Some(found) = found else {
        return Ok(window::Route::Free);
    };
    let has_template = inbox.config().reply_template.is_some();
    let last = found.last_activity;
    window::route(channel, last, now, length, false, has_template).map_err(|refused| {
        ActionError::OutsideWindow {
            channel,
            last,
            closes: last + length,
            refused,
        }
    })
}

/// Sends `text` to the customer through the outbox, into the channel they wrote on. A reply
/// that the platform's customer service window would never let out is refused here, with the
/// reason, rather than queued to become a dead letter.
pub async fn reply(
    inbox: &Inbox,
    actor: &Actor,
    id: u64,
    text: &str,
) -> Result<(Escalation, OutboxEntry), ActionError> {
    let text = text_of(text, Writing::Reply)?;
    let escalation = checked(inbox, actor, id).await?;
    let (login, now) = (actor.user.login.clone(), inbox.gateway().now());
    reply_route(inbox, &escalation, now).await?;
    let done = inbox
        .gateway()
        .store(move |s| s.reply_to_escalation(id, &login, &text, now))
        .await?;
    inbox.gateway().wake_outbox();
    inbox.changed_about(id);
    Ok(done)
}

pub async fn note(
    inbox: &Inbox,
    actor: &Actor,
    id: u64,
    text: &str,
) -> Result<EscalationWork, ActionError> {
    let text = text_of(text, Writing::Note)?;
    checked(inbox, actor, id).await?;
    let (login, now) = (actor.user.login.clone(), inbox.gateway().now());
    let work = inbox
        .gateway()
        .store(move |s| s.add_escalation_note(id, &login, &text, now))
        .await?;
    inbox.changed_about(id);
    Ok(work)
}

/// Moves the escalation to `team`, with that team's SLA for its priority from now.
pub async fn reassign(
    inbox: &Inbox,
    actor: &Actor,
    id: u64,
    team: &str,
) -> Result<Escalation, ActionError> {
    let escalation = checked(inbox, actor, id).await?;
    let rulebook = inbox.gateway().runtime().rulebook();
    let teams = rulebook.teams();
    let Some(target) = teams.get(team) else {
        return Err(ActionError::UnknownTeam(team.to_owned()));
    };
    if escalation.team == team {
        return Err(ActionError::AlreadyWithTeam {
            id,
            team: team.to_owned(),
        });
    }
    let now = inbox.gateway().now();
    let deadline = target
        .sla_deadline(teams.local(now), escalation.priority)
        .map(|d| d.with_timezone(&chrono::Utc));
    let (login, team) = (actor.user.login.clone(), team.to_owned());
    let escalation = inbox
        .gateway()
        .store(move |s| s.reassign_escalation(id, &team, deadline, &login, now))
        .await?;
    inbox
        .notify(Event::Reassigned, &escalation, &rulebook, now)
        .await;
    inbox.changed_about(id);
    Ok(escalation)
}

pub async fn resolve(inbox: &Inbox, actor: &Actor, id: u64) -> Result<Escalation, ActionError> {
    checked(inbox, actor, id).await?;
    let (login, now) = (actor.user.login.clone(), inbox.gateway().now());
    // The satisfaction question, when the rulebook asks one (the case rules decide whether).
    let survey = webcare_engine::rulebook::cases::survey_ask(&inbox.gateway().runtime().rulebook());
    let escalation = inbox
        .gateway()
        .store(move |s| s.resolve_and_ask(id, &login, now, survey))
        .await?;
    inbox.gateway().wake_outbox();
    inbox.changed_about(id);
    Ok(escalation)
}

/// Hands the conversation back to the bot: the escalation closes (resolving it already gives
/// the conversation back) and the audit log says it was a hand-back, not a solution.
pub async fn handback(inbox: &Inbox, actor: &Actor, id: u64) -> Result<Escalation, ActionError> {
    let escalation = checked(inbox, actor, id).await?;
    if let EscalationStatus::Resolved { .. } = escalation.status {
        return Err(ActionError::AlreadyResolved(id));
    }
    let (login, now) = (actor.user.login.clone(), inbox.gateway().now());
    let escalation = inbox
        .gateway()
        .store(move |s| s.hand_back_escalation(id, &login, now))
        .await?;
    inbox.changed_about(id);
    Ok(escalation)
}

/// The crisis switch as a lead sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrisisState {
    /// Whether crisis mode is on now.
    pub on: bool,
    /// The switch: `Some` overrides the rulebook, `None` follows it.
    pub switch: Option<bool>,
    /// The running rulebook's own `crisis_mode`.
    pub rulebook: bool,
}

pub fn crisis_state(inbox: &Inbox) -> CrisisState {
    let runtime = inbox.gateway().runtime();
    CrisisState {
        on: runtime.crisis_mode(),
        switch: runtime.crisis_override(),
        rulebook: runtime.rulebook().crisis_mode,
    }
}

/// Turns the service's crisis switch (`None`: back to the rulebook). Leads only; the switch
/// itself audits it with the lead's login, as it does for the admin API.
pub async fn set_crisis(
    inbox: &Inbox,
    actor: &Actor,
    on: Option<bool>,
) -> Result<CrisisState, ActionError> {
    if actor.user.role != Role::Lead {
        return Err(ActionError::LeadsOnly);
    }
    let Some(switch) = inbox.crisis_switch() else {
        return Err(ActionError::CrisisNotConnected);
    };
    switch.set(on, &actor.user.login).await;
    inbox.changed();
    Ok(crisis_state(inbox))
}

/// Records an inbox event that is not an escalation action (logins) in the audit log.
pub async fn audit(inbox: &Inbox, actor: &str, action: &str, subject: String) {
    let entry = NewAudit {
        at: inbox.gateway().now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject,
        details: String::new(),
    };
    if let Err(error) = inbox.gateway().store(move |s| s.append_audit(entry)).await {
        tracing::warn!(error = %error, "inbox: cannot write the audit log");
    }
}
