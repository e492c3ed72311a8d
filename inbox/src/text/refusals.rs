//! The words for a refused action ([`ActionError`]) on the pages: the API keeps the errors'
//! own English messages with UTC times for scripts, while a person reads them in their
//! language with times in the rulebook's zone, like every other word of the pages. Apart from
//! the other words only because they are many and the facts they need (ids, teams, times)
//! differ per refusal.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use webcare_engine::case::window::Refused;

use super::Lang;
use crate::actions::{ActionError, MAX_TEXT, Writing};

/// `at` in zone `tz`, with the zone's abbreviation: "2026-11-30 10:15 CET".
pub fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

impl Lang {
    /// Why `error` refused the action, for a person reading the page; times in `tz`.
    pub fn refusal(self, error: &ActionError, tz: Tz) -> String {
        use ActionError::*;
        let nl = self == Lang::Nl;
        let writing = |w: &Writing| match (nl, w) {
            (true, Writing::Reply) => "het antwoord",
            (true, Writing::Note) => "de notitie",
            (false, Writing::Reply) => "the reply",
            (false, Writing::Note) => "the note",
        };
        match error {
            NotFound(id) if nl => format!("Escalatie {id} bestaat niet."),
            NotFound(id) => format!("Escalation {id} does not exist."),
            Forbidden { id, team } if nl => {
                format!("Escalatie {id} hoort bij team `{team}`, en dat is niet een van uw teams.")
            }
            Forbidden { id, team } => {
                format!("Escalation {id} belongs to team `{team}`, which is not one of yours.")
            }
            LeadsOnly if nl => "Alleen een teamleider kan de crisisstand omzetten.".to_owned(),
            LeadsOnly => "Only a lead may switch crisis mode.".to_owned(),
            AlreadyClaimed { id, by } if nl => {
                format!("Escalatie {id} is al opgepakt door {by}.")
            }
            AlreadyClaimed { id, by } => format!("Escalation {id} is already claimed by {by}."),
            AlreadyResolved(id) if nl => format!("Escalatie {id} is al afgehandeld."),
            AlreadyResolved(id) => format!("Escalation {id} is already resolved."),
            AlreadyWithTeam { id, team } if nl => {
                format!("Escalatie {id} ligt al bij `{team}`.")
            }
            AlreadyWithTeam { id, team } => format!("Escalation {id} is already with `{team}`."),
            Empty(w) if nl => format!("{} is leeg.", capital(writing(w))),
            Empty(w) => format!("{} is empty.", capital(writing(w))),
            TooLong(w) if nl => format!("{} is langer dan {MAX_TEXT} bytes.", capital(writing(w))),
            TooLong(w) => format!("{} is longer than {MAX_TEXT} bytes.", capital(writing(w))),
            UnknownTeam(team) if nl => format!("Onbekend team `{team}`."),
            UnknownTeam(team) => format!("Unknown team `{team}`."),
            UnknownSwitch(switch) if nl => {
                format!("Onbekende stand `{switch}`; kies aan, uit of automatisch.")
            }
            UnknownSwitch(switch) => {
                format!("Unknown switch `{switch}`; expected on, off or automatic.")
            }
            UnknownAction(action) if nl => format!("Onbekende actie `{action}`."),
            UnknownAction(action) => format!("Unknown action `{action}`."),
            Unavailable(detail) if nl => {
                format!("De opslag is niet bereikbaar; probeer het opnieuw ({detail}).")
            }
            Unavailable(detail) => format!("The store is unavailable; try again ({detail})."),
            CrisisNotConnected if nl => {
                "De crisisschakelaar is in deze dienst niet aangesloten.".to_owned()
            }
            CrisisNotConnected => "The crisis switch is not connected in this service.".to_owned(),
            OutsideWindow {
                channel,
                last,
                closes,
                refused,
            } => self.window_refusal(
                self.channel(*channel),
                &local_time(*last, tz),
                &local_time(*closes, tz),
                refused,
            ),
        }
    }

    /// Why a reply cannot go out after the platform's customer service window.
    pub fn window_refusal(
        self,
        channel: &str,
        last: &str,
        closed: &str,
        refused: &Refused,
    ) -> String {
        let nl = self == Lang::Nl;
        let head = if nl {
            format!(
                "{channel}: buiten het klantenservicevenster van 24 uur (de klant schreef het laatst op {last}, het venster sloot op {closed})"
            )
        } else {
            format!(
                "{channel}: outside the 24-hour customer service window (the customer last wrote at {last}, the window closed at {closed})"
            )
        };
        let tail = match (nl, refused) {
            (true, Refused::Bot { .. }) => {
                "de bot antwoordt daarna niet, een medewerker moet het opvolgen"
            }
            (false, Refused::Bot { .. }) => {
                "the bot does not reply after it, a person must follow up"
            }
            (true, Refused::NoTemplate { .. }) => {
                "een antwoord van een medewerker kan dan alleen als goedgekeurd sjabloon en er is er geen ingesteld ([meta] reply_template), dus het is niet verstuurd"
            }
            (false, Refused::NoTemplate { .. }) => {
                "an agent's reply needs an approved template and none is configured ([meta] reply_template), so it was not sent"
            }
            (true, Refused::TooLate { .. }) => {
                "en de 7 dagen waarin een medewerker nog mag antwoorden zijn voorbij; het is niet verstuurd"
            }
            (false, Refused::TooLate { .. }) => {
                "and the 7 days in which a person may still answer are over; it was not sent"
            }
        };
        match refused {
            Refused::TooLate { .. } => format!("{head}, {tail}"),
            _ => format!("{head}; {tail}"),
        }
    }
}

fn capital(words: &str) -> String {
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_refusal_reads_in_the_persons_language_with_local_times() {
        let last = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        let refused = ActionError::OutsideWindow {
            channel: webcare_engine::ChannelKind::Whatsapp,
            last,
            closes: last + chrono::Duration::hours(24),
            refused: Refused::NoTemplate {
                closed: String::new(),
            },
        };
        let tz = chrono_tz::Europe::Amsterdam;
        let nl = Lang::Nl.refusal(&refused, tz);
        assert!(
            nl.contains("het venster sloot op 2026-12-01 10:00 CET"),
            "{nl}"
        );
        assert!(nl.contains("niet verstuurd"), "{nl}");
        assert!(!nl.contains("UTC"), "{nl}");
        let en = Lang::En.refusal(&refused, tz);
        assert!(
            en.contains("the window closed at 2026-12-01 10:00 CET"),
            "{en}"
        );
        let claimed = ActionError::AlreadyClaimed {
            id: 7,
            by: "bram".into(),
        };
        assert_eq!(
            Lang::Nl.refusal(&claimed, tz),
            "Escalatie 7 is al opgepakt door bram."
        );
        assert_eq!(
            Lang::Nl.refusal(&ActionError::Empty(Writing::Note), tz),
            "De notitie is leeg."
        );
    }
}
