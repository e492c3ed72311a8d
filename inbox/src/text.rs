//! Every word the inbox's pages show, in Dutch and English, in this one module: a translator
//! (or a team lead who dislikes a word) edits one file. Pages take their words from [`Texts`]
//! (one static per language, so a word missing in one language does not compile) and the
//! methods of [`Lang`] for words around a number or a name.
//!
//! The words for a refused action are in [`refusals`]. What is not here on purpose: the
//! rulebook's own words (team names come from `teams.toml` in both languages, the scripts'
//! reasons from the scripts), the customer's text, and the JSON API's error messages, which
//! stay English for scripts.

mod refusals;

pub use refusals::local_time;

use webcare_engine::decision::Category;
use webcare_engine::store::Role;
use webcare_engine::{ChannelKind, Priority};

/// The language of the pages for one person: chosen in the header (a cookie), else the
/// browser's `Accept-Language`, else English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

/// The cookie that keeps a person's choice.
pub const LANG_COOKIE: &str = "webcare_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first of Dutch and English in an `Accept-Language` header, by weight.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut fields = part.trim().split(';');
            let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::parse(primary) else {
                continue;
            };
            let weight = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Nl => &NL,
            Lang::En => &EN,
        }
    }

    /// The engine's language, for the rulebook's texts (team names, durations, deadlines).
    pub fn engine(self) -> webcare_engine::decision::Language {
        match self {
            Lang::Nl => webcare_engine::decision::Language::Nl,
            Lang::En => webcare_engine::decision::Language::En,
        }
    }

    /// "2 h 5 min" / "2 u 5 min", "45 min", "3 d 4 h" / "3 d 4 u".
    pub fn span(self, minutes: i64) -> String {
        let m = minutes.abs();
        let h = match self {
            Lang::Nl => "u",
            Lang::En => "h",
        };
        match m {
            0..60 => format!("{m} min"),
            60..1440 => format!("{} {h} {} min", m / 60, m % 60),
            _ => format!("{} d {} {h}", m / 1440, (m % 1440) / 60),
        }
    }

    pub fn overdue(self, span: &str) -> String {
        match self {
            Lang::Nl => format!("{span} te laat"),
            Lang::En => format!("overdue {span}"),
        }
    }

    pub fn due_in(self, span: &str) -> String {
        match self {
            Lang::Nl => format!("over {span}"),
            Lang::En => format!("in {span}"),
        }
    }

    pub fn ago(self, span: &str) -> String {
        match self {
            Lang::Nl => format!("{span} geleden"),
            Lang::En => format!("{span} ago"),
        }
    }

    pub fn claimed_by(self, who: &str) -> String {
        match self {
            Lang::Nl => format!("geclaimd door {who}"),
            Lang::En => format!("claimed by {who}"),
        }
    }

    pub fn resolved_by(self, who: &str) -> String {
        match self {
            Lang::Nl => format!("afgerond door {who}"),
            Lang::En => format!("resolved by {who}"),
        }
    }

    pub fn escalations(self, n: usize) -> String {
        match (self, n) {
            (Lang::Nl, 1) => "1 escalatie".to_owned(),
            (Lang::Nl, n) => format!("{n} escalaties"),
            (Lang::En, 1) => "1 escalation".to_owned(),
            (Lang::En, n) => format!("{n} escalations"),
        }
    }

    pub fn members(self, n: usize) -> String {
        match self {
            Lang::Nl => format!("{n} leden"),
            Lang::En => format!("{n} members"),
        }
    }

    pub fn and_more(self, n: usize) -> String {
        match self {
            Lang::Nl => format!("… en nog {n} (de meest urgente staan bovenaan)"),
            Lang::En => format!("… and {n} more (most urgent shown first)"),
        }
    }

    pub fn escalation_title(self, id: u64) -> String {
        match self {
            Lang::Nl => format!("Escalatie #{id}"),
            Lang::En => format!("Escalation #{id}"),
        }
    }

    pub fn reply_label(self, channel: &str) -> String {
        match self {
            Lang::Nl => format!("Antwoord aan de klant (via {channel})"),
            Lang::En => format!("Reply to the customer (sent on {channel})"),
        }
    }

    pub fn times_in(self, zone: &str) -> String {
        match self {
            Lang::Nl => format!("Tijden in {zone}"),
            Lang::En => format!("Times in {zone}"),
        }
    }

    pub fn window_open(self, until: &str, left: &str) -> String {
        match self {
            Lang::Nl => format!("open tot {until} (nog {left})"),
            Lang::En => format!("open until {until} ({left} left)"),
        }
    }

    /// A platform's report on a sent reply, for its line in the conversation.
    pub fn delivered_at(self, at: &str) -> String {
        match self {
            Lang::Nl => format!("afgeleverd {at}"),
            Lang::En => format!("delivered {at}"),
        }
    }

    pub fn read_at(self, at: &str) -> String {
        match self {
            Lang::Nl => format!("gelezen {at}"),
            Lang::En => format!("read {at}"),
        }
    }

    /// The platform could not deliver a reply it had taken: its error code and title.
    pub fn failed_on(self, channel: &str, at: &str, code: i64, title: &str) -> String {
        match self {
            Lang::Nl => format!(
                "mislukt volgens {channel} ({at}): {code} {title}; de klant heeft het niet gekregen"
            ),
            Lang::En => {
                format!("failed on {channel} ({at}): {code} {title}; the customer did not get it")
            }
        }
    }

    /// The window is closed and a reply goes out as the approved template `name`.
    pub fn window_template(self, since: &str, name: &str) -> String {
        match self {
            Lang::Nl => format!(
                "gesloten sinds {since}: een antwoord gaat uit als het goedgekeurde sjabloon `{name}`"
            ),
            Lang::En => {
                format!("closed since {since}: a reply goes out as the approved template `{name}`")
            }
        }
    }

    /// The window is closed and a person may still answer with the human-agent tag.
    pub fn window_human_agent(self, since: &str, until: &str) -> String {
        match self {
            Lang::Nl => format!(
                "gesloten sinds {since}: een antwoord gaat tot {until} uit gemarkeerd als antwoord van een medewerker"
            ),
            Lang::En => format!(
                "closed since {since}: a reply goes out tagged as a human agent's until {until}"
            ),
        }
    }

    /// The window is closed and no reply can go out until the customer writes again.
    pub fn window_refused(self, since: &str) -> String {
        match self {
            Lang::Nl => format!(
                "gesloten sinds {since}: een antwoord wordt geweigerd tot de klant opnieuw schrijft (op WhatsApp kan het alleen met een goedgekeurd sjabloon, [meta] reply_template)"
            ),
            Lang::En => format!(
                "closed since {since}: a reply is refused until the customer writes again (on WhatsApp only an approved template can go out, [meta] reply_template)"
            ),
        }
    }

    pub fn last_of(self, shown: usize, all: usize) -> String {
        match self {
            Lang::Nl => format!(
                "De laatste {shown} van de {all} berichten in deze escalatie; <code>webcare explain MESSAGE_ID</code> legt elk ander uit."
            ),
            Lang::En => format!(
                "The last {shown} of the {all} messages in this escalation; <code>webcare explain MESSAGE_ID</code> explains any other."
            ),
        }
    }

    pub fn try_again_in(self, wait: &str) -> String {
        match self {
            Lang::Nl => format!("Te veel verkeerde wachtwoorden. Probeer het over {wait} opnieuw."),
            Lang::En => format!("Too many wrong passwords. Try again in {wait}."),
        }
    }

    pub fn waits_since(self, since: &str) -> String {
        match self {
            Lang::Nl => format!("de klant wacht sinds {since}"),
            Lang::En => format!("the customer waits since {since}"),
        }
    }

    pub fn score(self, score: u8) -> String {
        match self {
            Lang::Nl => format!("{score} van 5"),
            Lang::En => format!("{score} of 5"),
        }
    }

    pub fn crisis_is(self, on: bool) -> (&'static str, &'static str, &'static str) {
        // (before, state, after) around the <strong> state.
        match (self, on) {
            (Lang::Nl, true) => ("Crisismodus staat ", "aan", ""),
            (Lang::Nl, false) => ("Crisismodus staat ", "uit", ""),
            (Lang::En, true) => ("Crisis mode is ", "on", ""),
            (Lang::En, false) => ("Crisis mode is ", "off", ""),
        }
    }

    pub fn priority(self, p: Priority) -> &'static str {
        match (self, p) {
            (Lang::Nl, Priority::Urgent) => "urgent",
            (Lang::Nl, Priority::High) => "hoog",
            (Lang::Nl, Priority::Normal) => "normaal",
            (Lang::Nl, Priority::Low) => "laag",
            (Lang::En, p) => p.as_str(),
        }
    }

    /// A person's role, beside their name in the header.
    pub fn role(self, r: Role) -> &'static str {
        match (self, r) {
            (Lang::Nl, Role::Agent) => "medewerker",
            (Lang::Nl, Role::Lead) => "teamleider",
            (Lang::En, r) => r.as_str(),
        }
    }

    pub fn channel(self, c: ChannelKind) -> &'static str {
        match (self, c) {
            (_, ChannelKind::Telegram) => "Telegram",
            (_, ChannelKind::Discord) => "Discord",
            (Lang::Nl, ChannelKind::Webchat) => "webchat",
            (Lang::En, ChannelKind::Webchat) => "web chat",
            (_, ChannelKind::Http) => "HTTP",
            (_, ChannelKind::Terminal) => "terminal",
            (_, ChannelKind::Whatsapp) => "WhatsApp",
            (_, ChannelKind::Messenger) => "Messenger",
            (_, ChannelKind::Instagram) => "Instagram",
            (Lang::Nl, ChannelKind::Email) => "e-mail",
            (Lang::En, ChannelKind::Email) => "e-mail",
        }
    }

    pub fn category(self, c: Category) -> &'static str {
        match (self, c) {
            (Lang::Nl, Category::Question) => "Vraag",
            (Lang::Nl, Category::Complaint) => "Klacht",
            (Lang::Nl, Category::Report) => "Melding",
            (Lang::Nl, Category::Compliment) => "Compliment",
            (Lang::Nl, Category::Press) => "Pers",
            (Lang::Nl, Category::Legal) => "Juridisch",
            (Lang::Nl, Category::Crisis) => "Crisis",
            (Lang::Nl, Category::Abuse) => "Bedreiging of belediging",
            (Lang::Nl, Category::Spam) => "Spam",
            (Lang::Nl, Category::Idea) => "Idee",
            (Lang::Nl, Category::Lead) => "Kans",
            (Lang::Nl, Category::Unknown) => "Onbekend onderwerp",
            (Lang::Nl, Category::Distress) => "Iemand in nood",
            (Lang::En, Category::Question) => "Question",
            (Lang::En, Category::Complaint) => "Complaint",
            (Lang::En, Category::Report) => "Report",
            (Lang::En, Category::Compliment) => "Compliment",
            (Lang::En, Category::Press) => "Press",
            (Lang::En, Category::Legal) => "Legal",
            (Lang::En, Category::Crisis) => "Crisis",
            (Lang::En, Category::Abuse) => "Threat or insult",
            (Lang::En, Category::Spam) => "Spam",
            (Lang::En, Category::Idea) => "Idea",
            (Lang::En, Category::Lead) => "Lead",
            (Lang::En, Category::Unknown) => "Unknown topic",
            (Lang::En, Category::Distress) => "Person in distress",
        }
    }

    /// A team's name from `teams.toml` in this language.
    pub fn team_name(self, team: &webcare_engine::teams::Team) -> &str {
        team.name_in(self.engine())
    }
}

/// The fixed words of the pages; see [`Lang::texts`].
pub struct Texts {
    pub html_lang: &'static str,
    pub brand: &'static str,
    pub crisis_link: &'static str,
    pub log_out: &'static str,
    pub language: &'static str,
    /// The button that asks for desktop notifications, and its label once they are on.
    pub notify_ask: &'static str,
    pub notify_active: &'static str,
    pub shortcuts: &'static str,
    pub shortcuts_help: &'static str,
    pub error: &'static str,
    pub back_to_queues: &'static str,
    pub form_expired: &'static str,
    pub form_expired_login: &'static str,
    pub wrong_password: &'static str,
    pub log_in: &'static str,
    pub login: &'static str,
    pub password: &'static str,
    // The queue.
    pub queues: &'static str,
    pub team: &'static str,
    pub open: &'static str,
    pub claimed: &'static str,
    pub overdue: &'static str,
    pub due_within_hour: &'static str,
    pub oldest: &'static str,
    pub load: &'static str,
    pub priority: &'static str,
    pub status: &'static str,
    pub channel: &'static str,
    pub customer: &'static str,
    pub message: &'static str,
    pub reason: &'static str,
    pub age: &'static str,
    pub sla_due: &'static str,
    pub answered: &'static str,
    /// The first-response SLA after the response, in the report's words.
    pub sla_met: &'static str,
    pub sla_breached: &'static str,
    pub sla_pending: &'static str,
    pub no_sla: &'static str,
    /// The flag of a customer who wrote again after a person answered.
    pub waiting: &'static str,
    pub waiting_label: &'static str,
    /// What a desktop notification says happened to an escalation already known.
    pub news_follow_up: &'static str,
    pub news_reopened: &'static str,
    pub linked: &'static str,
    pub satisfaction: &'static str,
    pub asked_no_answer: &'static str,
    pub no_team: &'static str,
    pub all_teams: &'static str,
    pub any: &'static str,
    pub status_open: &'static str,
    pub status_claimed: &'static str,
    pub mine: &'static str,
    pub unassigned: &'static str,
    pub search: &'static str,
    pub search_placeholder: &'static str,
    pub filter: &'static str,
    pub clear: &'static str,
    pub nothing_matches: &'static str,
    pub claim: &'static str,
    pub open_it: &'static str,
    pub not_your_team: &'static str,
    // One escalation.
    pub conversation: &'static str,
    pub work_it: &'static str,
    pub canned_reply: &'static str,
    pub send_reply: &'static str,
    pub note_label: &'static str,
    pub add_note: &'static str,
    pub reassign_to: &'static str,
    pub reassign: &'static str,
    pub resolve: &'static str,
    pub handback: &'static str,
    pub next: &'static str,
    pub history: &'static str,
    pub details: &'static str,
    pub created: &'static str,
    pub sla: &'static str,
    pub reply_window: &'static str,
    pub reply_not_sent: &'static str,
    /// Above a refused reply's text on a closed escalation, where there is no form to send it.
    pub unsent_reply: &'static str,
    pub category: &'static str,
    pub topics: &'static str,
    pub rules: &'static str,
    pub why: &'static str,
    pub script_errors: &'static str,
    pub rulebook: &'static str,
    pub conversation_id: &'static str,
    pub waiting_to_send: &'static str,
    pub sent: &'static str,
    pub undeliverable: &'static str,
    pub internal_note: &'static str,
    pub bot: &'static str,
    pub other_conversations: &'static str,
    pub no_other_conversations: &'static str,
    pub with_a_person: &'static str,
    pub with_the_bot: &'static str,
    pub closed: &'static str,
    pub messages: &'static str,
    pub last_activity: &'static str,
    pub no_next: &'static str,
    // The explain panel.
    pub why_step_by_step: &'static str,
    pub normalised: &'static str,
    pub none_matched: &'static str,
    pub main_topic: &'static str,
    pub matched: &'static str,
    pub category_language_sentiment: &'static str,
    pub escalation_script: &'static str,
    pub governance_script: &'static str,
    pub decision: &'static str,
    pub reasons: &'static str,
    // The crisis switch.
    pub crisis_mode: &'static str,
    pub crisis_banner: &'static str,
    pub switched_on: &'static str,
    pub switched_off: &'static str,
    pub as_the_rulebook_says: &'static str,
    pub crisis_explained: &'static str,
    pub crisis_not_connected: &'static str,
    pub crisis_switch_on: &'static str,
    pub crisis_switch_off: &'static str,
    pub crisis_follow_rulebook: &'static str,
    pub crisis_audited: &'static str,
    pub rulebook_setting: &'static str,
}

pub static EN: Texts = Texts {
    html_lang: "en",
    brand: "webcare inbox",
    crisis_link: "Crisis switch",
    log_out: "Log out",
    language: "Language",
    notify_ask: "Desktop notifications",
    notify_active: "Desktop notifications on",
    shortcuts: "Keyboard",
    shortcuts_help: "j / k: next / previous · o or Enter: open · c: claim · r: reply · e: resolve · n: next escalation · /: search",
    error: "Error",
    back_to_queues: "Back to the queues",
    form_expired: "the form expired; reload the page and try again",
    form_expired_login: "The form expired; please log in again.",
    wrong_password: "Wrong login or password.",
    log_in: "Log in",
    login: "Login",
    password: "Password",
    queues: "Queues",
    team: "Team",
    open: "Open",
    claimed: "Claimed",
    overdue: "Overdue",
    due_within_hour: "Due within 1 h",
    oldest: "Oldest",
    load: "Load per member",
    priority: "Priority",
    status: "Status",
    channel: "Channel",
    customer: "Customer",
    message: "Message",
    reason: "Reason",
    age: "Age",
    sla_due: "SLA due",
    answered: "answered",
    sla_met: "SLA met",
    sla_breached: "SLA breached",
    sla_pending: "SLA pending",
    no_sla: "no SLA",
    waiting: "waiting",
    waiting_label: "Waiting",
    news_follow_up: "the customer wrote again",
    news_reopened: "reopened",
    linked: "Linked",
    satisfaction: "Satisfaction",
    asked_no_answer: "asked, no answer yet",
    no_team: "You are in no team yet; ask a lead to add you.",
    all_teams: "All my teams",
    any: "any",
    status_open: "open",
    status_claimed: "claimed",
    mine: "Mine",
    unassigned: "Unassigned",
    search: "Search",
    search_placeholder: "words in the messages",
    filter: "Filter",
    clear: "Clear",
    nothing_matches: "No escalation matches these filters.",
    claim: "Claim",
    open_it: "Open",
    not_your_team: "is not one of your teams",
    conversation: "Conversation",
    work_it: "Work it",
    canned_reply: "Canned reply",
    send_reply: "Send reply",
    note_label: "Internal note (colleagues only)",
    add_note: "Add note",
    reassign_to: "Reassign to",
    reassign: "Reassign",
    resolve: "Resolve",
    handback: "Hand back to the bot",
    next: "Next escalation",
    history: "History",
    details: "Details",
    created: "Created",
    sla: "SLA",
    reply_window: "Reply window",
    reply_not_sent: "Not sent",
    unsent_reply: "Your reply, not sent: copy it to keep it",
    category: "Category",
    topics: "Topics",
    rules: "Rules",
    why: "Why",
    script_errors: "Script errors",
    rulebook: "Rulebook",
    conversation_id: "conversation",
    waiting_to_send: "waiting to be sent",
    sent: "sent",
    undeliverable: "could not be delivered",
    internal_note: "internal note",
    bot: "bot",
    other_conversations: "This customer's other conversations",
    no_other_conversations: "None: this is their only conversation.",
    with_a_person: "with a person",
    with_the_bot: "with the bot",
    closed: "closed",
    messages: "messages",
    last_activity: "last activity",
    no_next: "No other escalation is waiting in your queues.",
    why_step_by_step: "Why: the decision step by step",
    normalised: "Normalised",
    none_matched: "none matched",
    main_topic: "main",
    matched: "matched",
    category_language_sentiment: "Category, language, sentiment",
    escalation_script: "Escalation script",
    governance_script: "Governance script",
    decision: "Decision",
    reasons: "Reasons",
    crisis_mode: "Crisis mode",
    crisis_banner: "Crisis mode is on: every message is escalated to a person, with the crisis holding reply.",
    switched_on: "switched on",
    switched_off: "switched off",
    as_the_rulebook_says: "as the rulebook says",
    crisis_explained: "While it is on, every message goes to a person: the bot answers nothing automatically and sends the crisis holding reply; escalations keep their team.",
    crisis_not_connected: "The crisis switch is not connected in this service; use <code>webcare crisis</code>.",
    crisis_switch_on: "Switch crisis mode on",
    crisis_switch_off: "Switch crisis mode off",
    crisis_follow_rulebook: "Follow the rulebook",
    crisis_audited: "Every switch is written to the audit log with your login.",
    rulebook_setting: "The rulebook's own setting is",
};

pub static NL: Texts = Texts {
    html_lang: "nl",
    brand: "webcare inbox",
    crisis_link: "Crisisschakelaar",
    log_out: "Uitloggen",
    language: "Taal",
    notify_ask: "Bureaubladmeldingen",
    notify_active: "Bureaubladmeldingen aan",
    shortcuts: "Toetsenbord",
    shortcuts_help: "j / k: volgende / vorige · o of Enter: openen · c: oppakken · r: antwoorden · e: afronden · n: volgende escalatie · /: zoeken",
    error: "Fout",
    back_to_queues: "Terug naar de wachtrijen",
    form_expired: "het formulier is verlopen; laad de pagina opnieuw en probeer het nog eens",
    form_expired_login: "Het formulier is verlopen; log opnieuw in.",
    wrong_password: "Verkeerde gebruikersnaam of wachtwoord.",
    log_in: "Inloggen",
    login: "Gebruikersnaam",
    password: "Wachtwoord",
    queues: "Wachtrijen",
    team: "Team",
    open: "Open",
    claimed: "Opgepakt",
    overdue: "Te laat",
    due_within_hour: "Binnen 1 uur",
    oldest: "Oudste",
    load: "Belasting per lid",
    priority: "Prioriteit",
    status: "Status",
    channel: "Kanaal",
    customer: "Klant",
    message: "Bericht",
    reason: "Reden",
    age: "Leeftijd",
    sla_due: "SLA-deadline",
    answered: "beantwoord",
    sla_met: "SLA gehaald",
    sla_breached: "SLA niet gehaald",
    sla_pending: "SLA loopt",
    no_sla: "geen SLA",
    waiting: "wacht",
    waiting_label: "Wacht",
    news_follow_up: "de klant schreef opnieuw",
    news_reopened: "heropend",
    linked: "Gekoppeld",
    satisfaction: "Tevredenheid",
    asked_no_answer: "gevraagd, nog geen antwoord",
    no_team: "Je zit nog in geen enkel team; vraag een teamleider je toe te voegen.",
    all_teams: "Al mijn teams",
    any: "alle",
    status_open: "open",
    status_claimed: "opgepakt",
    mine: "Van mij",
    unassigned: "Niet toegewezen",
    search: "Zoeken",
    search_placeholder: "woorden in de berichten",
    filter: "Filteren",
    clear: "Wissen",
    nothing_matches: "Geen escalatie past bij deze filters.",
    claim: "Oppakken",
    open_it: "Openen",
    not_your_team: "is niet een van jouw teams",
    conversation: "Gesprek",
    work_it: "Afhandelen",
    canned_reply: "Standaardantwoord",
    send_reply: "Antwoord versturen",
    note_label: "Interne notitie (alleen voor collega's)",
    add_note: "Notitie toevoegen",
    reassign_to: "Doorzetten naar",
    reassign: "Doorzetten",
    resolve: "Afronden",
    handback: "Teruggeven aan de bot",
    next: "Volgende escalatie",
    history: "Geschiedenis",
    details: "Gegevens",
    created: "Aangemaakt",
    sla: "SLA",
    reply_window: "Antwoordvenster",
    reply_not_sent: "Niet verstuurd",
    unsent_reply: "Uw antwoord, niet verstuurd: kopieer het om het te bewaren",
    category: "Categorie",
    topics: "Onderwerpen",
    rules: "Regels",
    why: "Waarom",
    script_errors: "Scriptfouten",
    rulebook: "Regelboek",
    conversation_id: "gesprek",
    waiting_to_send: "wacht op verzending",
    sent: "verzonden",
    undeliverable: "kon niet worden bezorgd",
    internal_note: "interne notitie",
    bot: "bot",
    other_conversations: "Andere gesprekken van deze klant",
    no_other_conversations: "Geen: dit is het enige gesprek.",
    with_a_person: "bij een collega",
    with_the_bot: "bij de bot",
    closed: "gesloten",
    messages: "berichten",
    last_activity: "laatst actief",
    no_next: "Er wacht geen andere escalatie in je wachtrijen.",
    why_step_by_step: "Waarom: de beslissing stap voor stap",
    normalised: "Genormaliseerd",
    none_matched: "geen herkend",
    main_topic: "hoofdonderwerp",
    matched: "herkend aan",
    category_language_sentiment: "Categorie, taal, sentiment",
    escalation_script: "Escalatiescript",
    governance_script: "Governancescript",
    decision: "Beslissing",
    reasons: "Redenen",
    crisis_mode: "Crisismodus",
    crisis_banner: "Crisismodus staat aan: elk bericht gaat naar een collega, met het crisis-wachtbericht.",
    switched_on: "aangezet",
    switched_off: "uitgezet",
    as_the_rulebook_says: "zoals het regelboek zegt",
    crisis_explained: "Zolang hij aan staat, gaat elk bericht naar een collega: de bot beantwoordt niets automatisch en stuurt het crisis-wachtbericht; escalaties houden hun team.",
    crisis_not_connected: "De crisisschakelaar is in deze dienst niet aangesloten; gebruik <code>webcare crisis</code>.",
    crisis_switch_on: "Crisismodus aanzetten",
    crisis_switch_off: "Crisismodus uitzetten",
    crisis_follow_rulebook: "Het regelboek volgen",
    crisis_audited: "Elke omzetting komt met je gebruikersnaam in het auditlog.",
    rulebook_setting: "De eigen instelling van het regelboek is",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_dutch_or_english_by_weight() {
        assert_eq!(
            Lang::from_accept_language("nl-NL,nl;q=0.9,en;q=0.8"),
            Some(Lang::Nl)
        );
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("de-DE, en;q=0.5, nl;q=0.7"),
            Some(Lang::Nl)
        );
        assert_eq!(Lang::from_accept_language("de, fr"), None);
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(Lang::En.span(125), "2 h 5 min");
        assert_eq!(Lang::Nl.span(125), "2 u 5 min");
        assert_eq!(Lang::En.span(-45), "45 min");
        assert_eq!(Lang::En.span(3 * 1440 + 240), "3 d 4 h");
    }
}
