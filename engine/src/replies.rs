//! The team's canned replies (`replies.toml`): texts a colleague picks in the inbox's reply box
//! and edits before sending, titled and in Dutch and English. They live in the rulebook, not in
//! the inbox's store, so they are reviewed, tested and versioned with the templates they sit
//! beside: a reply that promises something is as much policy as a template the bot sends.
//! They are not the bot's templates: those are written for a machine to send unedited, these
//! for a person to start from, with the customer's name and the escalation's deadline filled in.

use std::ops::Range;

use crate::decision::Language;

/// The placeholders a canned reply may use; the inbox fills them when the reply box opens.
pub const PLACEHOLDERS: [&str; 4] = ["name", "deadline", "team", "agent"];

/// One canned reply, as compiled from `replies.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedReply {
    /// The table name in `replies.toml`; stable, so a page can refer to it.
    pub id: String,
    pub title_nl: String,
    pub title_en: String,
    pub nl: String,
    pub en: String,
    /// The teams that are offered it; empty: every team.
    pub teams: Vec<String>,
}

/// What fills a canned reply's placeholders.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyVars<'a> {
    /// The customer's name as the platform gave it; empty when unknown.
    pub name: &'a str,
    /// The escalation's deadline in words, in the reply's language.
    pub deadline: &'a str,
    pub team: &'a str,
    pub agent: &'a str,
}

impl CannedReply {
    pub fn title(&self, language: Language) -> &str {
        match language {
            Language::Nl => &self.title_nl,
            Language::En => &self.title_en,
        }
    }

    pub fn text(&self, language: Language) -> &str {
        match language {
            Language::Nl => &self.nl,
            Language::En => &self.en,
        }
    }

    /// Whether `team` is offered this reply.
    pub fn for_team(&self, team: &str) -> bool {
        self.teams.is_empty() || self.teams.iter().any(|t| t == team)
    }

    /// The text in `language` with its placeholders filled. An unknown name leaves no gap:
    /// "Beste {name}," becomes "Beste," rather than "Beste ,".
    pub fn fill(&self, language: Language, vars: &ReplyVars<'_>) -> String {
        let mut text = self.text(language).to_owned();
        if vars.name.is_empty() {
            text = text.replace(" {name}", "");
        }
        for (name, value) in [
            ("{name}", vars.name),
            ("{deadline}", vars.deadline),
            ("{team}", vars.team),
            ("{agent}", vars.agent),
        ] {
            text = text.replace(name, value);
        }
        text
    }
}

/// Every canned reply of a rulebook, in file order (a team lead orders them by use).
#[derive(Debug, Clone, Default)]
pub struct CannedReplies {
    replies: Vec<CannedReply>,
}

impl CannedReplies {
    pub fn new(replies: Vec<CannedReply>) -> Self {
        CannedReplies { replies }
    }

    pub fn all(&self) -> &[CannedReply] {
        &self.replies
    }

    pub fn get(&self, id: &str) -> Option<&CannedReply> {
        self.replies.iter().find(|r| r.id == id)
    }

    /// The replies offered to `team`, in file order.
    pub fn for_team<'a>(&'a self, team: &'a str) -> impl Iterator<Item = &'a CannedReply> + 'a {
        self.replies.iter().filter(move |r| r.for_team(team))
    }
}

/// Placeholders in `text` that [`PLACEHOLDERS`] does not know, with their byte ranges.
pub fn unknown_placeholders(text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('{') {
        let start = rest + open;
        let Some(close) = text[start..].find('}') else {
            break;
        };
        let name = &text[start + 1..start + close];
        if !PLACEHOLDERS.contains(&name) {
            out.push((name.to_owned(), start..start + close + 1));
        }
        rest = start + close + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> CannedReply {
        CannedReply {
            id: "thanks".into(),
            title_nl: "Bedankt".into(),
            title_en: "Thanks".into(),
            nl: "Beste {name}, we reageren {deadline}. Groet, {agent} van {team}".into(),
            en: "Dear {name}, we reply {deadline}.".into(),
            teams: vec!["webcare".into()],
        }
    }

    #[test]
    fn placeholders_are_filled_and_a_missing_name_leaves_no_gap() {
        let vars = ReplyVars {
            name: "Ann",
            deadline: "vandaag vóór 14:00",
            team: "het webcareteam",
            agent: "Anna",
        };
        assert_eq!(
            reply().fill(Language::Nl, &vars),
            "Beste Ann, we reageren vandaag vóór 14:00. Groet, Anna van het webcareteam"
        );
        let nameless = ReplyVars { name: "", ..vars };
        assert_eq!(
            reply().fill(Language::En, &nameless),
            "Dear, we reply vandaag vóór 14:00."
        );
    }

    #[test]
    fn unknown_placeholders_are_found_with_their_place() {
        let found = unknown_placeholders("Hoi {name}, zie {link} en {naam}");
        let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["link", "naam"]);
        assert_eq!(found[0].1, 16..22);
    }

    #[test]
    fn a_reply_for_one_team_is_offered_to_that_team_only() {
        let all = CannedReplies::new(vec![reply()]);
        assert_eq!(all.for_team("webcare").count(), 1);
        assert_eq!(all.for_team("legal").count(), 0);
    }
}
