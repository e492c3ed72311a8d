//! The new part of an e-mail reply. A resident who answers a mail sends the whole thread back:
//! "Super, dank je wel!" above "Op 6 nov. schreef Team Belastingen: > Beste mevrouw, … een
//! betalingsregeling …". Deciding on all of it answers the municipality's own words: the formal
//! history reads as a legal letter, its topics as the resident's question. So a message is
//! decided on what stands above the first reply header or quoted line; the message itself is
//! stored whole. A forwarded message is kept whole: what is forwarded is what the resident asks
//! about.
//!
//! The e-mail channel already hands over only a mail's new words, without signature and
//! disclaimers (`adapters/src/email/body.rs`, which knows the mail's headers); this is for the
//! text that arrives as it was pasted or bridged: the HTTP channel, the web chat, a contact form.

/// The text above the quoted history of a reply, trimmed; the whole text when nothing is quoted
/// or when nothing stands above the quote.
pub fn new_text(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let next = lines.peek().copied().unwrap_or("");
        if starts_history(line, next) {
            let above = text[..offset].trim();
            return if above.is_empty() { text } else { above };
        }
        offset += line.len();
    }
    text
}

/// Whether `line` (followed by `next`) begins the quoted history: a quoted line, a reply header
/// ("Op 5 nov. 2026 om 14:02 schreef …:", "On Mon, … wrote:"), the marker of a reply in Outlook,
/// or Outlook's header block ("Van: …" then "Verzonden: …"). A sentence that begins like a
/// header ("Op welke dag … ik schreef al eerder.") does not end with a colon.
fn starts_history(line: &str, next: &str) -> bool {
    let line = line.trim();
    if line.starts_with('>') || (line.contains("-----") && is_reply_marker(line)) {
        return true;
    }
    // A header ends with a colon, on its line or, when the mail program wrapped it, the next.
    let ends_header = line.ends_with(':') || next.trim_end().ends_with(':');
    let header = |opening: &str, verbs: &[&str]| {
        ends_header
            && starts_with_ignoring_case(line, opening)
            && verbs.iter().any(|verb| line.to_lowercase().contains(verb))
    };
    header("op ", &["schreef", "geschreven"])
        || header("on ", &[" wrote"])
        || header("am ", &["schrieb"])
        || header("le ", &["a écrit"])
        || (["van:", "from:"]
            .iter()
            .any(|f| starts_with_ignoring_case(line, f))
            && ["verzonden:", "sent:", "datum:", "date:"]
                .iter()
                .any(|f| starts_with_ignoring_case(next.trim_start(), f)))
}

fn is_reply_marker(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.contains("original message-----") || lower.contains("oorspronkelijk bericht-----")
}

/// Every message passes here, so no line is lowercased unless it may be a header.
fn starts_with_ignoring_case(line: &str, prefix: &str) -> bool {
    line.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::new_text;

    #[test]
    fn a_reply_is_decided_on_what_stands_above_the_quoted_mail() {
        let reply = "Super, dank je wel voor het meedenken!\n\nVerzonden vanaf mijn iPhone\n\n\
            Op 6 nov. 2026 om 11:48 heeft Team Belastingen <belastingen@dalvoort.nl> het volgende geschreven:\n\n\
            > Beste mevrouw Ensing,\n> Wij hebben een betalingsregeling voor u getroffen.";
        assert_eq!(
            new_text(reply),
            "Super, dank je wel voor het meedenken!\n\nVerzonden vanaf mijn iPhone"
        );
        let english = "Thanks, that helps.\nOn Mon, 3 Nov 2026 at 09:12, Gemeente <info@gemeente.nl> wrote:\n> Dear Sir,";
        assert_eq!(new_text(english), "Thanks, that helps.");
        let quoted_only = "Nog steeds niks gehoord\n> wanneer wordt mijn container geleegd?";
        assert_eq!(new_text(quoted_only), "Nog steeds niks gehoord");
    }

    #[test]
    fn outlook_headers_begin_the_history_but_a_contact_form_does_not() {
        let outlook = "Prima, bedankt.\n\nVan: Gemeente Dalvoort\nVerzonden: maandag 3 november 2026 10:00\nAan: J. de Vries\nOnderwerp: uw melding";
        assert_eq!(new_text(outlook), "Prima, bedankt.");
        let form = "Onderwerp: Gevonden voorwerpen\nNaam: Ilse ter Horst\nBericht: Ik ben mijn gehoorapparaat verloren.";
        assert_eq!(new_text(form), form);
    }

    #[test]
    fn a_message_that_is_only_a_quote_or_has_none_is_kept_whole() {
        let forward_only = "> Beste meneer, uw aanvraag is afgewezen.";
        assert_eq!(new_text(forward_only), forward_only);
        let plain = "Hallo,\nOp welke dag wordt het papier opgehaald? Ik schreef al eerder.";
        assert_eq!(new_text(plain), plain);
    }
}
